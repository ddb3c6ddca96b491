//! Saved views: per-user named searches through the API, the pages and the
//! CLI, with clear errors for bad names, bad searches and duplicates.

use crate::harness::*;
use crate::pages::{browser_login, extract, post_form, text};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skyhold_core::{AccountName, ObservedResource, ResourceKind, Role};

fn instance(id: &str, state: &str, owner: Option<&str>) -> ObservedResource {
    let mut o = ObservedResource::new(ResourceKind::Instance, id);
    o.name = format!("web-{id}");
    o.state = state.to_owned();
    if let Some(w) = owner {
        o.tags.insert("owner".into(), w.to_owned());
    }
    o
}

/// Seeds three instances straight into the store: one running without an
/// owner tag, one running with it, one stopped without it.
async fn seed(server: &TestServer) {
    let listing = vec![
        instance("i-a", "running", None),
        instance("i-b", "running", Some("ann")),
        instance("i-c", "stopped", None),
    ];
    server
        .app()
        .store
        .apply_listing(
            &AccountName::parse("acme").unwrap(),
            "eu-west-1",
            ResourceKind::Instance,
            &listing,
            1_000,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_through_the_api_are_per_user() {
    let server = TestServer::start(&[]).await;
    seed(&server).await;
    let t = Some(server.token.as_str());
    let (status, v) = server
        .request(
            Method::POST,
            "/api/v1/views",
            t,
            Some(json!({"name": "unowned", "q": "state:running -tag:owner"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["q"], "state:running -tag:owner");

    // The saved search finds exactly the running instance without an owner.
    let q = url_encode(v["q"].as_str().unwrap());
    let items = server.all(&format!("q={q}")).await;
    let ids: Vec<&str> = items
        .iter()
        .map(|i| i["provider_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["i-a"]);

    // A duplicate name conflicts; a bad search names its token; a blank
    // name is refused; unknown fields are refused.
    for (body, status, code, needle) in [
        (
            json!({"name": "unowned", "q": "state:stopped"}),
            StatusCode::CONFLICT,
            "conflict",
            "unowned",
        ),
        (
            json!({"name": "bad", "q": "state:running age>7x"}),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "age>7x",
        ),
        (
            json!({"name": "  ", "q": "state:running"}),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "name",
        ),
        (
            json!({"name": "x", "q": "state:running", "colour": 1}),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "colour",
        ),
    ] {
        let (s, v) = server
            .request(Method::POST, "/api/v1/views", t, Some(body.clone()))
            .await;
        assert_eq!(s, status, "{body}: {v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{v}"
        );
    }

    // Another user sees none of admin's views and cannot delete them.
    server
        .create_user("vic", "vic-password", Role::Viewer)
        .await;
    let (_, tok) = server.login_token("vic", "vic-password").await;
    let vic = tok["token"].as_str().unwrap().to_owned();
    let (s, list) = server
        .request(Method::GET, "/api/v1/views", Some(&vic), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"], json!([]));
    let id = v_id(&server.get("/api/v1/views").await, "unowned");
    let (s, _) = server
        .request(
            Method::DELETE,
            &format!("/api/v1/views/{id}"),
            Some(&vic),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Viewers may keep views of their own.
    let (s, _) = server
        .request(
            Method::POST,
            "/api/v1/views",
            Some(&vic),
            Some(json!({"name": "unowned", "q": "-tag:owner"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    let (s, _) = server
        .request(Method::DELETE, &format!("/api/v1/views/{id}"), t, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(server.get("/api/v1/views").await["items"], json!([]));
    server.stop().await;
}

fn v_id(list: &Value, name: &str) -> i64 {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .and_then(|v| v["id"].as_i64())
        .unwrap_or_else(|| panic!("no view {name} in {list}"))
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_a_view_from_a_list_page_and_run_it_from_the_cli() {
    let server = TestServer::start(&[]).await;
    seed(&server).await;
    let browser = browser_login(&server).await;
    // The instances page filtered by state, with a search: its "Save as
    // view" form carries the whole filter as one search.
    let html = text(&browser, &server, "/instances?state=running&q=-tag%3Aowner").await;
    let csrf = extract(&html, "name=\"csrf\" value=\"").expect("csrf");
    let q = extract(&html, "name=\"q\" value=\"kind:").expect("save form");
    let q = format!("kind:{}", q.replace("&quot;", "\""));
    assert_eq!(q, "kind:instance state:running -tag:owner");
    let res = post_form(
        &browser,
        &server,
        "/views",
        &[("csrf", csrf.as_str()), ("name", "no owner"), ("q", &q)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let html = text(&browser, &server, "/views").await;
    assert!(
        html.contains("no owner") && html.contains("-tag:owner"),
        "{html}"
    );

    // A bad search is shown on the views page with what was typed.
    let res = post_form(
        &browser,
        &server,
        "/views",
        &[("csrf", csrf.as_str()), ("name", "oops"), ("q", "tag:")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("missing tag key") && body.contains("value=\"oops\""),
        "{body}"
    );
    // Without the CSRF token nothing is saved.
    let res = post_form(&browser, &server, "/views", &[("name", "x"), ("q", "web")]).await;
    assert!(res.status().is_client_error());

    // The CLI lists the view and runs it.
    let out = server.cli(
        &["login", &server.url, "--username", "admin"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.cli(&["views"], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("no owner") && stdout.contains("state:running"),
        "{stdout}"
    );
    let out = server.cli(&["ls", "--view", "no owner", "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let items: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["i-a"]);
    let out = server.cli(&["views", "save", "stopped", "state:stopped"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.cli(&["views", "rm", "nope"], "");
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no saved view"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.cli(&["views", "rm", "stopped"], "");
    assert!(out.status.success());
    let out = server.cli(&["ls", "--view", "stopped"], "");
    assert!(!out.status.success());
    server.stop().await;
}
