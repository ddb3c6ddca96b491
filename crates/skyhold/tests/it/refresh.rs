//! Targeted refresh of one resource: API, CLI and the detail page's button,
//! against moto through the real SDK.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};

async fn refresh(server: &TestServer, id: i64) -> Value {
    let (status, v) = server
        .request(
            Method::POST,
            &format!("/api/v1/resources/{id}/refresh"),
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

fn id_of(items: &[Value], provider_id: &str) -> i64 {
    items
        .iter()
        .find(|i| i["provider_id"] == provider_id)
        .and_then(|i| i["id"].as_i64())
        .unwrap_or_else(|| panic!("{provider_id} not listed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_updates_one_resource_and_records_the_change() {
    let moto = shared_moto();
    let spec = AccountSpec::new("fresh", moto, &["us-east-1"]).with_kinds(&["instance", "volume"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let ids = ec2.launch(3, 3, "refreshme", &[]).await.unwrap();
    let vol = ec2.create_volume(8, "scratch").await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let before = server.all("kind=instance").await;
    assert_eq!(before.len(), 3);
    assert!(before.iter().all(|i| i["state"] == "running"));
    let target = id_of(&before, &ids[0]);

    // Changed in the provider; no sync runs (the interval is an hour).
    ec2.stop(&ids[..1]).await.unwrap();
    let t0 = Instant::now();
    let fresh = refresh(&server, target).await;
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(fresh["state"], "stopped", "{fresh}");
    let history = fresh["history"].as_array().expect("history");
    assert_eq!(history.len(), 1, "{fresh}");
    assert_eq!(history[0]["event"], "changed");
    assert!(
        history[0]["changes"].to_string().contains("stopped"),
        "{}",
        history[0]
    );
    let detail = server.get(&format!("/api/v1/resources/{target}")).await;
    assert_eq!(detail["state"], "stopped");

    // The other instances were not touched: same state, no events.
    for other in ids.iter().skip(1) {
        let id = id_of(&before, other);
        let d = server.get(&format!("/api/v1/resources/{id}")).await;
        let old = before.iter().find(|i| i["id"] == id).unwrap();
        assert_eq!(d["state"], "running");
        assert_eq!(d["last_seen"], old["last_seen"], "{d}");
        assert_eq!(d["history"].as_array().map(Vec::len), Some(0), "{d}");
    }

    // Refreshing again with nothing changed records nothing more.
    let again = refresh(&server, target).await;
    assert_eq!(again["history"].as_array().map(Vec::len), Some(1));

    // A resource gone from the provider is tombstoned by its refresh.
    let vols = server.all("kind=volume").await;
    let vid = id_of(&vols, &vol);
    ec2.delete_volume(&vol).await.unwrap();
    let gone = refresh(&server, vid).await;
    assert!(gone["deleted_at"].is_string(), "{gone}");
    assert_eq!(gone["history"][0]["event"], "disappeared", "{gone}");
    assert!(server
        .all("kind=volume")
        .await
        .iter()
        .all(|v| v["provider_id"] != vol.as_str()));

    // A terminated instance is tombstoned too (it lingers as "terminated").
    ec2.terminate(&ids[1..2]).await.unwrap();
    let t = refresh(&server, id_of(&before, &ids[1])).await;
    assert_eq!(t["state"], "terminated");
    assert!(t["deleted_at"].is_string(), "{t}");

    // Unknown ids and bad ids are clear errors.
    let (status, v) = server
        .request(
            Method::POST,
            "/api/v1/resources/999999/refresh",
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, _) = server
        .request(
            Method::POST,
            "/api/v1/resources/abc/refresh",
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = server
        .request(
            Method::POST,
            &format!("/api/v1/resources/{target}/refresh"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_refresh_prints_the_fresh_resource() {
    let moto = shared_moto();
    let spec = AccountSpec::new("clifresh", moto, &["us-east-1"]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let ids = ec2.launch(1, 1, "cli-refresh", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let id = id_of(&server.all("kind=instance").await, &ids[0]);
    let out = server.cli(
        &["login", &server.url, "--username", "admin"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert!(out.status.success());
    ec2.stop(&ids).await.unwrap();
    let out = server.cli(&["refresh", &id.to_string(), "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["state"], "stopped", "{v}");
    let out = server.cli(&["refresh", &id.to_string()], "");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped"));
    let out = server.cli(&["refresh", "424242"], "");
    assert!(!out.status.success());
    server.stop().await;
}

/// The detail page's Refresh button: a POST form with the CSRF token that
/// refreshes and redirects back to the page, which shows the new state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_button_refreshes_and_returns_to_the_page() {
    use crate::pages::{browser_login, extract, post_form, text};
    let moto = shared_moto();
    let spec = AccountSpec::new("button", moto, &["us-east-1"]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let ids = ec2.launch(1, 1, "buttoned", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let id = id_of(&server.all("kind=instance").await, &ids[0]);
    let browser = browser_login(&server).await;
    let page = text(&browser, &server, &format!("/resources/{id}")).await;
    let action = format!("action=\"/resources/{id}/refresh\"");
    assert!(page.contains(&action), "no Refresh form");
    let csrf = extract(&page, "name=\"csrf\" value=\"").expect("csrf");
    let badge = |state: &str, class: &str| format!("<span class=\"badge {class}\">{state}</span>");
    assert!(page.contains(&badge("running", "s-good")));
    ec2.stop(&ids).await.unwrap();
    let path = format!("/resources/{id}/refresh");
    let forged = post_form(&browser, &server, &path, &[("csrf", "forged")]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let res = post_form(&browser, &server, &path, &[("csrf", csrf.as_str())]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], format!("/resources/{id}"));
    let page = text(&browser, &server, &format!("/resources/{id}")).await;
    assert!(
        page.contains(&badge("stopped", "s-idle")) && !page.contains(&badge("running", "s-good")),
        "the page shows the new state"
    );
    server.stop().await;
}

/// `skyhold status` shows when each job is next due and which replica ran it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_status_shows_next_due_and_replica() {
    let moto = shared_moto();
    let spec = AccountSpec::new("clistatus", moto, &["us-east-1"]).with_kinds(&["vpc"]);
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let out = server.cli(
        &["login", &server.url, "--username", "admin"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert!(out.status.success());
    let out = server.cli(&["status"], "");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("NEXT DUE") && text.contains("REPLICA"),
        "{text}"
    );
    assert!(text.contains(server.app().sync.holder()), "{text}");
    server.stop().await;
}
