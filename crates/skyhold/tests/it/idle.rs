//! The idle policy against moto through the SDK: CloudWatch datapoints
//! put for each instance (moto makes none), read back with GetMetricData;
//! the injected clock moved forward, never slept. An idle instance is
//! warned once, then stopped through the pipeline with its reason; a busy
//! one and one without datapoints ("no data") are left running.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skyhold_aws::testkit::Aws;
use skyhold_core::Role;

const REGION: &str = "us-east-1";
const H: i64 = 3_600_000;

async fn idle_pass(server: &TestServer) -> Value {
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/policies/runs?policy=idle",
            &server.token,
            json!({}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["policy"], "idle", "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_instance_is_warned_then_stopped_and_no_data_is_never_idle() {
    let moto = shared_moto();
    let spec = AccountSpec::new("idl", moto, &[REGION]).with_kinds(&["instance"]);
    let aws = Aws::connect(moto, &spec.account_id, REGION).await.unwrap();
    let owner = [("skyhold:owner", "ann")];
    let quiet = aws.ec2.launch(1, 1, "idl-quiet", &owner).await.unwrap();
    let busy = aws.ec2.launch(1, 1, "idl-busy", &owner).await.unwrap();
    let blind = aws.ec2.launch(1, 1, "idl-blind", &owner).await.unwrap();
    // Seven hours of five-minute datapoints from the launch on (the
    // clock is moved into them below).
    let t0 = skyhold_core::now_millis();
    let series = |v: f64| -> Vec<(i64, f64)> { (0..=84).map(|i| (t0 + i * 300_000, v)).collect() };
    aws.put_instance_metric(&quiet[0], "CPUUtilization", &series(1.0))
        .await
        .unwrap();
    aws.put_instance_metric(&busy[0], "CPUUtilization", &series(60.0))
        .await
        .unwrap();
    let server = TestServer::start_with(
        std::slice::from_ref(&spec),
        "[policies]\ninterval = \"off\"\n[policies.idle]\ncpu_below = 5.0\n\
         for = \"6h\"\nwarn_before = \"1h\"\n",
    )
    .await;
    server
        .app()
        .create_user(
            &skyhold::app::Actor::system("test"),
            "ann",
            "ann-password-1",
            Role::Member,
            "ann@example.test",
        )
        .await
        .unwrap();
    server.sync().await;

    // Running for an hour: too soon for anything.
    server.app().clock.advance(H);
    let run = idle_pass(&server).await;
    assert!(run["counts"].get("warned").is_none(), "{run}");

    // After 5.5 h the quiet one is warned (the stop an hour later); the
    // blind one is reported as no data; the busy one is left alone.
    server.app().clock.advance(H * 9 / 2);
    // The preview says so first, and writes nothing.
    let preview = server.get("/api/v1/policies/preview?policy=idle").await;
    assert_eq!(preview["policy"], "idle", "{preview}");
    assert_eq!(preview["candidates"], 3, "{preview}");
    let steps = |items: &Value| -> Vec<(String, String)> {
        items
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap().to_owned(),
                    d["step"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let quiet_warn = vec![("idl-quiet-0".to_owned(), "warn".to_owned())];
    let quiet_stop = vec![("idl-quiet-0".to_owned(), "stop".to_owned())];
    assert_eq!(steps(&preview["now_items"]), quiet_warn, "{preview}");
    assert_eq!(steps(&preview["next_24h"]), quiet_stop, "{preview}");
    assert!(
        preview["exempt"].as_array().unwrap().iter().any(
            |e| e["name"] == "idl-blind-0" && e["why"].as_str().unwrap().starts_with("no data")
        ),
        "{preview}"
    );
    // A change tried before it is saved: under 0.5 % nothing is idle; in
    // dry-run the warning is what it would do.
    let strict = server
        .get("/api/v1/policies/preview?policy=idle&cpu_below=0.5")
        .await;
    assert_eq!(steps(&strict["now_items"]), vec![], "{strict}");
    assert_eq!(strict["rules"]["cpu_below"], 0.5, "{strict}");
    let dry = server
        .get("/api/v1/policies/preview?policy=idle&mode=dry-run")
        .await;
    assert_eq!(steps(&dry["now_items"]), quiet_warn, "{dry}");
    assert_eq!(dry["now_items"][0]["outcome"], "would (dry-run)", "{dry}");
    for bad in [
        "policy=nap",
        "policy=idle&warn=1h",
        "policy=idle&cpu_below=500",
        "policy=idle&for=soon",
    ] {
        let (s, e) = server
            .send(
                Method::GET,
                &format!("/api/v1/policies/preview?{bad}"),
                &server.token,
                Value::Null,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {e}");
        let named = bad.rsplit('&').next().unwrap().split('=').next().unwrap();
        assert!(e.to_string().contains(named), "{bad}: {e}");
    }
    // The Policies page shows it on request, and a change tried there.
    let (s, html) = server.page("/policies?idle=preview").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("Due now (1)") && html.contains("idl-quiet-0"),
        "{html}"
    );
    let (s, html) = server
        .page("/policies?idle=preview&idle_cpu_below=0.5&idle_for=6h")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("Due now (0)") && html.contains("unsaved idle change"),
        "{html}"
    );
    let run = idle_pass(&server).await;
    assert_eq!(run["counts"]["warned"], 1, "{run}");
    // Warned: the preview shows only the stop to come.
    let preview = server.get("/api/v1/policies/preview?policy=idle").await;
    assert_eq!(steps(&preview["now_items"]), vec![], "{preview}");
    assert_eq!(steps(&preview["next_24h"]), quiet_stop, "{preview}");
    assert_eq!(run["counts"]["no_data"], 1, "{run}");
    let notes = server.get("/api/v1/notifications?limit=50").await;
    let warning = notes["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "idle.warning")
        .unwrap_or_else(|| panic!("an idle warning in {notes}"))
        .clone();
    assert_eq!(warning["recipient"], "user:ann");
    assert!(
        warning["subject"]
            .as_str()
            .unwrap()
            .contains("idl-quiet-0 is idle"),
        "{warning}"
    );
    assert!(
        warning["body"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("idle: cpu avg 1.0% < 5% over 5h30m"),
        "{warning}"
    );
    // The policy report says which instance has no data.
    let blind_id = server
        .all("kind=instance")
        .await
        .iter()
        .find(|r| r["name"] == "idl-blind-0")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(run["counts"]["no_data_ids"], json!([blind_id]), "{run}");

    // The next pass warns no one again and stops no one yet.
    let again = idle_pass(&server).await;
    assert!(again["counts"].get("warned").is_none(), "{again}");
    assert!(again["counts"].get("stopped").is_none(), "{again}");

    // An hour after the warning (idle over the whole 6 h): stopped through
    // the pipeline, the reason in the audit log.
    server.app().clock.advance(H);
    let run = idle_pass(&server).await;
    assert_eq!(run["counts"]["stopped"], 1, "{run}");
    assert_eq!(aws.ec2.instance_state(&quiet[0]).await.unwrap(), "stopped");
    assert_eq!(aws.ec2.instance_state(&busy[0]).await.unwrap(), "running");
    assert_eq!(aws.ec2.instance_state(&blind[0]).await.unwrap(), "running");
    let audit = server
        .get("/api/v1/audit?action=resource.stop&limit=10")
        .await;
    let entry = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"]["name"] == "idl-quiet-0")
        .unwrap_or_else(|| panic!("a stop entry: {audit}"))
        .clone();
    assert_eq!(entry["actor"], "system:policy:idle", "{entry}");
    let reason = entry["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("idle: cpu avg 1.0% < 5% over 6h")
            && reason.contains("warned 1h before"),
        "{reason}"
    );
    // Stopped: never again, however often the policy runs.
    let after = idle_pass(&server).await;
    assert!(after["counts"].get("stopped").is_none(), "{after}");
    // An unknown policy is a clear 400.
    let (s, e) = server
        .send(
            Method::POST,
            "/api/v1/policies/runs?policy=nap",
            &server.token,
            json!({}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    server.stop().await;
}
