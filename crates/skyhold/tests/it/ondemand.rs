//! On-demand reads through the account's provider, against moto: a stack's
//! template (served from the cache once fetched), an alarm's state changes,
//! and a browsable bucket's objects with presigned downloads.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use skyhold_aws::testkit::{Aws, SAMPLE_TEMPLATE};

async fn id_of(server: &TestServer, kind: &str, name: &str) -> i64 {
    server
        .all(&format!("kind={kind}"))
        .await
        .iter()
        .find(|r| r["name"] == name)
        .and_then(|r| r["id"].as_i64())
        .unwrap_or_else(|| panic!("no {kind} named {name}"))
}

async fn get_raw(server: &TestServer, path: &str) -> reqwest::Response {
    server
        .http
        .get(format!("{}{path}", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
}

async fn page_text(server: &TestServer, path: &str) -> String {
    server.page(path).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_alarm_history_and_bucket_objects() {
    let endpoint = shared_moto();
    let spec = AccountSpec::new("acme", endpoint, &["us-east-1"])
        .with_kinds(&["stack", "alarm", "bucket"])
        .with_line("browse_buckets = [\"open-logs\"]");
    let aws = Aws::connect(endpoint, &spec.account_id, "us-east-1")
        .await
        .unwrap();
    aws.create_stack("app", SAMPLE_TEMPLATE, &[("Env", "demo")])
        .await
        .unwrap();
    aws.create_alarm("cpu-high", "i-0123456789abcdef0", 80.0)
        .await
        .unwrap();
    aws.set_alarm_state("cpu-high", "ALARM", "load test")
        .await
        .unwrap();
    aws.set_alarm_state("cpu-high", "OK", "load gone")
        .await
        .unwrap();
    aws.create_bucket("open-logs", &[]).await.unwrap();
    aws.put_object("open-logs", "logs/2026/a.txt", b"hello")
        .await
        .unwrap();
    aws.put_object("open-logs", "top.txt", b"x").await.unwrap();
    aws.create_bucket("closed-data", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    let s = server.sync().await;
    assert_eq!(s["failed"], 0, "{s}");

    // The template, through the API and as a download from the page.
    let stack = id_of(&server, "stack", "app").await;
    let v = server
        .get(&format!("/api/v1/resources/{stack}/template"))
        .await;
    assert_eq!(v["template"], SAMPLE_TEMPLATE);
    let res = get_raw(&server, &format!("/resources/{stack}/template")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"app-template.json\""
    );
    assert_eq!(res.text().await.unwrap(), SAMPLE_TEMPLATE);
    // Once fetched it is served from the database: the stack can go.
    aws.delete_stack("app").await.unwrap();
    let v = server
        .get(&format!("/api/v1/resources/{stack}/template"))
        .await;
    assert_eq!(v["template"], SAMPLE_TEMPLATE);

    // The alarm's state changes as skyhold saw them (moto has no
    // DescribeAlarmHistory, so CloudWatch's own history is not read here;
    // the page says so and still shows the timeline).
    let alarm = id_of(&server, "alarm", "cpu-high").await;
    let before = server.get(&format!("/api/v1/resources/{alarm}")).await;
    assert_eq!(before["state"], "ok", "{before}");
    aws.set_alarm_state("cpu-high", "ALARM", "load again")
        .await
        .unwrap();
    server.sync().await;
    let after = server.get(&format!("/api/v1/resources/{alarm}")).await;
    assert_eq!(after["state"], "alarm");
    let change = &after["history"][0];
    assert_eq!(change["event"], "changed", "{after}");
    assert!(
        change["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["field"] == "state" && c["from"] == "ok" && c["to"] == "alarm"),
        "{after}"
    );
    let (s, v) = server
        .request(
            Method::GET,
            &format!("/api/v1/resources/{alarm}/alarm-history"),
            Some(server.token.as_str()),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("provider_error")),
        "{v}"
    );
    let html = page_text(&server, &format!("/resources/{alarm}")).await;
    assert!(
        html.contains("State history") && html.contains("could not be read"),
        "{html}"
    );

    // The enabled bucket browses level by level and downloads by URL.
    let open = id_of(&server, "bucket", "open-logs").await;
    let top = server
        .get(&format!("/api/v1/resources/{open}/objects"))
        .await;
    assert_eq!(top["prefixes"], serde_json::json!(["logs/"]), "{top}");
    let keys = |v: &Value| -> Vec<String> {
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(keys(&top), ["top.txt"]);
    let logs = server
        .get(&format!("/api/v1/resources/{open}/objects?prefix=logs/"))
        .await;
    assert_eq!(logs["prefixes"], serde_json::json!(["logs/2026/"]));
    let year = server
        .get(&format!(
            "/api/v1/resources/{open}/objects?prefix=logs/2026/"
        ))
        .await;
    assert_eq!(keys(&year), ["logs/2026/a.txt"]);
    assert_eq!(year["objects"][0]["size"], 5);
    let u = server
        .get(&format!(
            "/api/v1/resources/{open}/objects/url?key=logs/2026/a.txt"
        ))
        .await;
    let body = reqwest::get(u["url"].as_str().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "hello");
    let page = page_text(
        &server,
        &format!("/resources/{open}/objects?prefix=logs/2026/"),
    )
    .await;
    assert!(page.contains("a.txt") && page.contains("5 B"), "{page}");
    let res = get_raw(
        &server,
        &format!("/resources/{open}/objects/download?key=top.txt"),
    )
    .await;
    assert!(res.status().is_redirection());
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        reqwest::get(&location).await.unwrap().text().await.unwrap(),
        "x"
    );

    // Not enabled, wrong kind, unknown id, missing key: clear errors.
    let closed = id_of(&server, "bucket", "closed-data").await;
    let t = Some(server.token.as_str());
    for (path, status, code) in [
        (
            format!("/api/v1/resources/{closed}/objects"),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            format!("/api/v1/resources/{stack}/objects"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/api/v1/resources/999999/template".to_owned(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            format!("/api/v1/resources/{open}/objects/url"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            format!("/api/v1/resources/{alarm}/template"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        // A token the provider did not issue is the caller's mistake.
        (
            format!("/api/v1/resources/{open}/objects?token=not-a-token"),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
    ] {
        let (s, v) = server.request(Method::GET, &path, t, None).await;
        assert_eq!(s, status, "{path}: {v}");
        assert_eq!(v["error"]["code"], code, "{path}: {v}");
    }
    let closed_page = page_text(&server, &format!("/resources/{closed}")).await;
    assert!(
        closed_page.contains("Object browsing is off"),
        "{closed_page}"
    );
    server.stop().await;
}
