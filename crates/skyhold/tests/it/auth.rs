//! Authentication and authorization on every route.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const API_GETS: &[&str] = &[
    "/api/v1/me",
    "/api/v1/tokens",
    "/api/v1/resources",
    "/api/v1/resources/1",
    "/api/v1/accounts",
    "/api/v1/sync/status",
    "/api/v1/dashboard",
    "/api/v1/changes",
    "/api/v1/openapi.json",
    "/api/v1/no-such-route",
];
const PAGES: &[&str] = &[
    "/",
    "/instances",
    "/volumes",
    "/images",
    "/security-groups",
    "/key-pairs",
    "/resources/1",
    "/sync",
    "/changes",
    "/snapshots",
    "/vpcs",
    "/no-such-page",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_required_on_every_route() {
    let server = TestServer::start(&[]).await;
    for path in API_GETS {
        let (status, body) = server.request(Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "GET {path}");
        assert_eq!(body["error"]["code"], "unauthenticated", "GET {path}");
        let (status, _) = server
            .request(Method::GET, path, Some("shk_not-a-real-token"), None)
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "GET {path} with a bogus token"
        );
    }
    for (method, path) in [
        (Method::POST, "/api/v1/sync"),
        (Method::DELETE, "/api/v1/auth/token"),
        (Method::DELETE, "/api/v1/tokens/1"),
    ] {
        let (status, _) = server
            .request(method.clone(), path, None, Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    for path in PAGES {
        let res = server
            .http
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "GET {path}");
        let loc = res.headers()["location"].to_str().unwrap();
        assert!(loc.starts_with("/login?next="), "GET {path} -> {loc}");
    }
    for path in ["/sync", "/logout"] {
        let res = server
            .http
            .post(format!("{}{path}", server.url))
            .form(&[("csrf", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "POST {path}");
    }
    // The public ones.
    for path in [
        "/login",
        "/healthz",
        "/readyz",
        "/metrics",
        "/static/app.css",
    ] {
        let res = server
            .http
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_refused_then_rate_limited() {
    let server = TestServer::start(&[]).await;
    for _ in 0..5 {
        let (status, body) = server.login_token("admin", "wrong").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "invalid_credentials");
    }
    let (status, body) = server.login_token("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "locked out even with the right password: {body}"
    );
    assert_eq!(body["error"]["code"], "rate_limited");
    // Unknown users get the same answer as wrong passwords.
    let (status, body) = server.login_token("nobody", "x").await;
    assert!(
        status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
        "{body}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_stop_working() {
    let server = TestServer::start(&[]).await;
    let (status, v) = server
        .request(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD, "name": "laptop"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = v["token"].as_str().unwrap().to_owned();
    let id = v["id"].as_i64().unwrap();
    let (status, _) = server
        .request(Method::GET, "/api/v1/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = server
        .request(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server
        .request(Method::GET, "/api/v1/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = server
        .request(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "revoking twice");

    // Revoking the token in use.
    let (status, _) = server
        .request(
            Method::DELETE,
            "/api/v1/auth/token",
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .request(Method::GET, "/api/v1/me", Some(&server.token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The token list never carries secrets.
    let listing = server
        .app()
        .store
        .list_tokens(skyhold_core::UserId(1))
        .await
        .unwrap();
    assert!(listing.iter().all(|t| t.revoked_at.is_some()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_can_read_but_not_sync() {
    let server = TestServer::start(&[]).await;
    server
        .create_user("vera", "viewer-password", skyhold_core::Role::Viewer)
        .await;
    let (status, v) = server.login_token("vera", "viewer-password").await;
    assert_eq!(status, StatusCode::CREATED);
    let token = v["token"].as_str().unwrap();
    let (status, _) = server
        .request(Method::GET, "/api/v1/resources", Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .request(Method::POST, "/api/v1/sync", Some(token), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    server.stop().await;
}
