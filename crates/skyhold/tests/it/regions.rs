//! `regions = "all-enabled"`: regions resolved through the provider.

use crate::harness::*;
use serde_json::Value;

fn all_enabled(toml: String) -> String {
    toml.lines()
        .map(|l| {
            if l.starts_with("regions = ") {
                "regions = \"all-enabled\"".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn status_of<'a>(items: &'a Value, account: &str, region: &str, kind: &str) -> Option<&'a Value> {
    items
        .as_array()?
        .iter()
        .find(|s| s["account"] == account && s["region"] == region && s["kind"] == kind)
}

/// A failure to resolve an account's regions is that account's error and
/// does not stop the other accounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_resolution_error_shows_on_its_account_only() {
    let moto = shared_moto();
    // Nothing listens on port 1: resolution fails whatever the adapter does.
    let broken = AccountSpec::new("noregions", "http://127.0.0.1:1", &["us-east-1"])
        .with_kinds(&["key_pair"]);
    let fine = AccountSpec::new("fine", moto, &["us-east-1"]).with_kinds(&["key_pair"]);
    let server = TestServer::start_edited(&[broken, fine], |t| {
        if t.contains("noregions") {
            all_enabled(t)
        } else {
            t
        }
    })
    .await;
    let report = server.sync().await;
    let reports = report["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1, "only the fine account has jobs: {report}");
    assert_eq!(reports[0]["account"], "fine");
    assert_eq!(reports[0]["ok"], true);
    let status = server.get("/api/v1/sync/status").await;
    let s = status_of(&status["items"], "noregions", "*", "regions").expect("region status");
    assert!(
        s["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("resolving enabled regions"),
        "{s}"
    );
    assert!(status_of(&status["items"], "fine", "us-east-1", "key_pair").is_some());
    server.stop().await;
}

/// Against moto: the account syncs every region moto reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_enabled_regions_sync_every_region_moto_reports() {
    let moto = shared_moto();
    let spec = AccountSpec::new("everywhere", moto, &["us-east-1"]).with_kinds(&["key_pair"]);
    ec2(moto, &spec.account_id, "eu-west-1")
        .await
        .create_key_pair("far-away")
        .await
        .unwrap();
    let server = TestServer::start_edited(&[spec], all_enabled).await;
    let report = server.sync().await;
    assert_eq!(report["failed"], 0, "{report}");
    let regions: Vec<&str> = report["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["region"].as_str().unwrap())
        .collect();
    assert!(
        regions.len() > 2 && regions.contains(&"us-east-1") && regions.contains(&"eu-west-1"),
        "{regions:?}"
    );
    let status = server.get("/api/v1/sync/status").await;
    let s = status_of(&status["items"], "everywhere", "*", "regions").expect("region status");
    assert_eq!(s["count"].as_u64(), Some(regions.len() as u64), "{s}");
    let kps = server.all("kind=key_pair").await;
    assert!(
        kps.iter()
            .any(|k| k["region"] == "eu-west-1" && k["name"] == "far-away"),
        "{kps:?}"
    );
    server.stop().await;
}
