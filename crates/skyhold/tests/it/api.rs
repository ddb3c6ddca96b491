//! The JSON API: validation, errors, accounts, OpenAPI.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_parameters_are_400_naming_the_parameter() {
    let server = TestServer::start(&[]).await;
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=lots", "limit"),
        ("limit=100000", "limit"),
        ("sort=colour", "sort"),
        ("kind=spaceship", "kind"),
        ("account=NOT%20VALID", "account"),
        ("region=Mars%20North", "region"),
        ("cursor=garbage", "cursor"),
        ("include_deleted=perhaps", "include_deleted"),
        ("order=sideways", "order"),
        ("frobnicate=1", "frobnicate"),
    ] {
        let (status, body) = server
            .request(
                Method::GET,
                &format!("/api/v1/resources?{query}"),
                Some(&server.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{query}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("'{param}'")),
            "{query}: message {msg:?} must name {param}"
        );
    }
    let (status, body) = server
        .request(
            Method::GET,
            "/api/v1/resources/abc",
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server
        .request(
            Method::GET,
            "/api/v1/resources/999999",
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_400_and_unknown_accounts_404() {
    let server = TestServer::start(&[]).await;
    let res = server
        .http
        .post(format!("{}/api/v1/sync", server.url))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "bad_request");

    let (status, v) = server
        .request(
            Method::POST,
            "/api/v1/sync",
            Some(&server.token),
            Some(json!({"wait": "yes"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, v) = server
        .request(
            Method::POST,
            "/api/v1/sync",
            Some(&server.token),
            Some(json!({"account": "nope"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_never_show_secrets() {
    let moto = shared_moto();
    let server = TestServer::start(&[AccountSpec::new("secretive", moto, &["us-east-1"])]).await;
    let v = server.get("/api/v1/accounts").await;
    let text = v.to_string();
    assert_eq!(v["items"][0]["name"], "secretive");
    assert!(v["items"][0]["auth"].as_str().unwrap().contains("role"));
    assert!(!text.contains("testing"), "secret key leaked: {text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics_are_public() {
    let moto = shared_moto();
    let spec = AccountSpec::new("metered", moto, &["us-east-1"]);
    ec2(moto, &spec.account_id, "us-east-1")
        .await
        .launch(1, 1, "m", &[])
        .await
        .unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    for path in ["/healthz", "/readyz"] {
        let (status, _) = server.request(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    server.get("/api/v1/resources").await;
    let (status, body) = server.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    for metric in [
        "http_request_duration_seconds_bucket",
        "skyhold_sync_duration_seconds",
        "skyhold_resources{kind=\"instance\"}",
    ] {
        assert!(text.contains(metric), "missing {metric}");
    }
    assert!(text.contains("account=\"metered\""));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_sort_and_search_work_together() {
    let moto = shared_moto();
    let spec = AccountSpec::new("search", moto, &["us-east-1"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let web = ec2
        .launch(3, 1, "web", &[("team", "Payments")])
        .await
        .unwrap();
    ec2.launch(2, 1, "batch", &[("team", "data")])
        .await
        .unwrap();
    ec2.stop(&web[..1]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;

    assert_eq!(server.all("kind=instance&state=stopped").await.len(), 1);
    assert_eq!(server.all("kind=instance&state=running").await.len(), 4);
    // Free text over tag values, case-insensitive; every word must match.
    assert_eq!(server.all("kind=instance&q=payments").await.len(), 3);
    assert_eq!(
        server.all("kind=instance&q=payments%20web-1").await.len(),
        1
    );
    assert_eq!(
        server.all("kind=instance&q=nothing-like-this").await.len(),
        0
    );
    // By id and by private IP.
    let one = &server.all(&format!("kind=instance&q={}", web[2])).await;
    assert_eq!(one.len(), 1);
    let ip = one[0]["attributes"]["private_ip"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(server
        .all(&format!("kind=instance&q={ip}"))
        .await
        .iter()
        .any(|i| i["provider_id"] == web[2].as_str()));

    // Sorting on every column pages through the same set, in order.
    for sort in [
        "name",
        "-name",
        "launch_time",
        "-launch_time",
        "state",
        "type",
        "private_ip",
        "owner",
        "provider_id",
        "account",
        "region",
        "public_ip",
        "kind",
    ] {
        let items = server
            .all(&format!("kind=instance&sort={sort}&limit=2"))
            .await;
        assert_eq!(items.len(), 5, "sort={sort}");
        let mut ids: Vec<i64> = items.iter().map(|i| i["id"].as_i64().unwrap()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5, "sort={sort} repeated a row");
    }
    let by_name: Vec<String> = server
        .all("kind=instance&sort=-name&limit=2")
        .await
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = by_name.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(by_name, sorted);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_language_over_the_api() {
    let moto = shared_moto();
    let spec = AccountSpec::new("lang", moto, &["us-east-1"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    ec2.launch(2, 1, "web", &[("owner", "alice"), ("env", "prod")])
        .await
        .unwrap();
    let db = ec2.launch(1, 1, "db", &[("env", "Dev")]).await.unwrap();
    ec2.launch(1, 1, "scratch", &[]).await.unwrap();
    ec2.stop(&db).await.unwrap();
    ec2.create_volume(8, "web-data").await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;

    let count = |q: &str| {
        let q = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
        let server = &server;
        async move { server.all(&format!("kind=instance&q={q}")).await.len() }
    };
    assert_eq!(
        count("state:running -tag:owner").await,
        1,
        "the scratch box"
    );
    assert_eq!(count("-state:running").await, 1);
    assert_eq!(count("state:running,stopped").await, 4);
    assert_eq!(count("type:t3.*").await, 4);
    assert_eq!(count("type:t2.*").await, 0);
    assert_eq!(count("tag:env=prod").await, 2);
    assert_eq!(
        count("tag:env=dev").await,
        1,
        "tag values match case-insensitively"
    );
    assert_eq!(count("tag:env").await, 3);
    assert_eq!(count("-tag:env").await, 1);
    assert_eq!(count("tag:Env").await, 0, "tag keys are exact");
    assert_eq!(count("owner:alice web").await, 2);
    assert_eq!(count("owner:ali*").await, 2);
    assert_eq!(count("name:web-?").await, 2);
    assert_eq!(count("-web").await, 2);
    assert_eq!(count("age<1h").await, 4);
    assert_eq!(count("age>7d").await, 0);
    assert_eq!(count("launched<2020-01-01").await, 0);
    assert_eq!(count("account:lang region:us-* kind:instance").await, 4);
    // Across kinds: the kind term instead of the kind parameter.
    let vols = server
        .all(&format!(
            "q={}",
            url::form_urlencoded::byte_serialize(b"kind:volume web").collect::<String>()
        ))
        .await;
    assert_eq!(vols.len(), 1);

    for (q, token) in [
        ("age>7x", "age>7x"),
        ("web state:", "state:"),
        ("\"open", "\""),
        ("kind:spaceship", "kind:spaceship"),
    ] {
        let enc = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
        let (status, body) = server
            .request(
                Method::GET,
                &format!("/api/v1/resources?q={enc}"),
                Some(&server.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("'q'") && msg.contains("column") && msg.contains(token),
            "{q}: {msg}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_figures_come_from_the_inventory() {
    let moto = shared_moto();
    let spec = AccountSpec::new("dash", moto, &["us-east-1"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let ids = ec2.launch(3, 1, "node", &[]).await.unwrap();
    ec2.stop(&ids[..1]).await.unwrap();
    ec2.create_volume(30, "spare").await.unwrap();
    ec2.client.allocate_address().send().await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let d = server.get("/api/v1/dashboard").await;
    assert_eq!(d["instances_by_state"]["running"], 2);
    assert_eq!(d["instances_by_state"]["stopped"], 1);
    assert_eq!(d["instances_by_type"]["t3.micro"], 3);
    // Two running t3.micro: 2 vCPUs and 1 GiB each.
    assert_eq!(
        (
            d["running_vcpus"].as_u64(),
            d["running_memory_mib"].as_u64()
        ),
        (Some(4), Some(2048))
    );
    assert_eq!(d["unattached_volumes"], 1);
    assert_eq!(d["unassociated_elastic_ips"], 1);
    assert!(d["volume_gib"].as_i64().unwrap() >= 30);
    // The page draws its charts as SVG, each bar a link to its search.
    let res = server
        .http
        .get(format!("{}/", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(
        html.contains("<svg") && html.contains("href=\"/instances?state=running\""),
        "dashboard chart links"
    );
    server.stop().await;
}
