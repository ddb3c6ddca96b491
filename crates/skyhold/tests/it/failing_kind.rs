//! One kind failing alone (access denied, throttled) while the others sync,
//! through a fault-injecting proxy in front of moto.

use crate::harness::*;
use crate::proxy::{ec2_error, Fault, FaultProxy};
use serde_json::Value;

fn find<'a>(items: &'a Value, kind: &str) -> &'a Value {
    items
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {items}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_kind_fails_alone() {
    let moto = shared_moto();
    let proxy = FaultProxy::start(moto).await;
    let kinds = ["key_pair", "vpc", "subnet", "security_group"];
    let spec = AccountSpec::new("denied", &proxy.endpoint, &["us-east-1"]).with_kinds(&kinds);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    ec2.create_key_pair("kp-denied").await.unwrap();
    proxy.set(
        "Action=DescribeKeyPairs",
        Fault::Error {
            status: 403,
            body: ec2_error("UnauthorizedOperation", "You are not authorized"),
        },
    );
    let server = TestServer::start(&[spec]).await;
    let report = server.sync().await;
    assert_eq!(report["failed"], 1, "{report}");
    let kp = find(&report["reports"], "key_pair");
    assert_eq!(
        (kp["ok"].as_bool(), kp["error_kind"].as_str()),
        (Some(false), Some("denied")),
        "{kp}"
    );
    for k in &kinds[1..] {
        let r = find(&report["reports"], k);
        assert_eq!(r["ok"], true, "{r}");
        assert!(r["count"].as_u64().unwrap() > 0, "{r}");
    }
    let status = server.get("/api/v1/sync/status").await;
    let kp = find(&status["items"], "key_pair");
    assert!(
        kp["last_error"]
            .as_str()
            .unwrap()
            .contains("not authorized"),
        "{kp}"
    );
    assert_eq!(kp["error_kind"], "denied");
    assert!(kp["last_success"].is_null());
    for k in &kinds[1..] {
        let s = find(&status["items"], k);
        assert!(
            s["last_error"].is_null() && s["last_success"].is_string(),
            "{s}"
        );
    }
    assert!(server.all("kind=key_pair").await.is_empty());
    assert!(!server.all("kind=vpc").await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_kind_keeps_its_rows_and_backs_off() {
    let moto = shared_moto();
    let proxy = FaultProxy::start(moto).await;
    let spec = AccountSpec::new("throttled", &proxy.endpoint, &["us-east-1"])
        .with_kinds(&["key_pair", "vpc"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    ec2.create_key_pair("kp-throttled").await.unwrap();
    let server = TestServer::start(&[spec]).await;
    let first = server.sync().await;
    assert_eq!(first["failed"], 0, "{first}");
    assert_eq!(server.all("kind=key_pair").await.len(), 1);

    proxy.set(
        "Action=DescribeKeyPairs",
        Fault::Error {
            status: 503,
            body: ec2_error("RequestLimitExceeded", "Request limit exceeded."),
        },
    );
    // Throttled twice in a row: the gap before the next try doubles (30s,
    // then 60s, plus at most 10% jitter), well before the hour interval.
    for (n, base) in [(1, 30_000i64), (2, 60_000)] {
        let report = server.sync().await;
        let kp = find(&report["reports"], "key_pair");
        assert_eq!(kp["error_kind"], "throttled", "{kp}");
        assert_eq!(find(&report["reports"], "vpc")["ok"], true);
        let status = server.get("/api/v1/sync/status").await;
        let s = find(&status["items"], "key_pair");
        assert_eq!(s["error_kind"], "throttled", "{s}");
        assert_eq!(s["throttled_in_row"], n, "{s}");
        let gap = s["next_due_ms"].as_i64().unwrap() - s["last_attempt_ms"].as_i64().unwrap();
        assert!(
            gap >= base && gap <= base + base / 10,
            "gap {gap} after {n} throttles: {s}"
        );
        // The rows are kept, never tombstoned.
        let rows = server.all("kind=key_pair").await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert!(rows[0]["deleted_at"].is_null());
    }

    proxy.clear();
    let report = server.sync().await;
    assert_eq!(report["failed"], 0, "{report}");
    let status = server.get("/api/v1/sync/status").await;
    let s = find(&status["items"], "key_pair");
    assert_eq!(s["throttled_in_row"], 0, "{s}");
    assert!(s["error_kind"].is_null());
    let gap = s["next_due_ms"].as_i64().unwrap() - s["last_attempt_ms"].as_i64().unwrap();
    assert!(gap >= 3_600_000, "back to the normal interval: {gap}");
    server.stop().await;
}
