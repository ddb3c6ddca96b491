//! What an outside probe of the demo found, each pinned by a test: open
//! redirects after login, metric labels from client input, lockouts from
//! elsewhere, control characters in searches, missing security headers,
//! unbounded or plain-text error bodies.

use crate::harness::*;
use crate::pages::{extract, post_form, text};
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn browser_from(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(addr.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Submits the login form with `next` and returns the response.
async fn login_with_next(
    server: &TestServer,
    browser: &reqwest::Client,
    password: &str,
    next: &str,
) -> reqwest::Response {
    let form = text(browser, server, "/login").await;
    let csrf = extract(&form, "name=\"csrf\" value=\"").expect("csrf field");
    post_form(
        browser,
        server,
        "/login",
        &[
            ("username", "admin"),
            ("password", password),
            ("csrf", &csrf),
            ("next", next),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_redirects_stay_on_this_site() {
    let server = TestServer::start(&[]).await;
    for next in [
        "/\t/evil.example/",
        "/\n/evil.example",
        "/\u{1}x",
        "//evil.example",
        "/\\evil.example",
    ] {
        let b = browser_from("127.0.0.1");
        let res = login_with_next(&server, &b, ADMIN_PASSWORD, next).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(res.headers()["location"], "/", "{next:?}");
    }
    let b = browser_from("127.0.0.1");
    let res = login_with_next(&server, &b, ADMIN_PASSWORD, "/instances?state=running").await;
    assert_eq!(res.headers()["location"], "/instances?state=running");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_elsewhere_do_not_lock_out_the_real_user() {
    let server = TestServer::start(&[]).await;
    let attacker = browser_from("127.0.0.2");
    for _ in 0..8 {
        login_with_next(&server, &attacker, "wrong-password", "/").await;
    }
    // The attacker's address is locked out (429 on the API too)...
    let res = attacker
        .post(format!("{}/api/v1/auth/token", server.url))
        .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // ...the real user elsewhere is not.
    let real = browser_from("127.0.0.1");
    let res = login_with_next(&server, &real, ADMIN_PASSWORD, "/").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("skyhold_session="));
    assert!(cookie, "the real user got a session");
    // The rate-limited attempts are audited.
    let (_, log) = server
        .request(
            Method::GET,
            "/api/v1/audit?action=login&outcome=denied",
            Some(&server.token),
            None,
        )
        .await;
    let items = log["items"].as_array().unwrap();
    assert!(
        items.iter().any(|e| e["client_ip"] == "127.0.0.2"
            && e["reason"].as_str().unwrap().starts_with("rate_limited")),
        "{log}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_labels_come_from_fixed_sets() {
    let server = TestServer::start(&[]).await;
    let weird = "Q".repeat(2000);
    for i in 0..5 {
        let m = Method::from_bytes(format!("{weird}{i}").as_bytes()).unwrap();
        let _ = server
            .http
            .request(m, format!("{}/healthz", server.url))
            .send()
            .await;
    }
    let metrics = server
        .http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains(&"Q".repeat(8)),
        "a client's method became a label"
    );
    assert!(
        metrics.contains("method=\"other\""),
        "{}",
        &metrics[..metrics.len().min(2000)]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_searches_are_a_400_naming_q() {
    let server = TestServer::start(&[]).await;
    for path in [
        "/api/v1/resources?q=abc%00def",
        "/api/v1/resources/count?q=abc%00def",
    ] {
        let (status, v) = server
            .request(Method::GET, path, Some(&server.token), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_eq!(v["error"]["code"], "invalid_parameter", "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("'q'"),
            "{v}"
        );
    }
    let (status, page) = server.page("/search?q=abc%00def").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    let (status, v) = server
        .send(
            Method::POST,
            "/api/v1/views",
            &server.token,
            serde_json::json!({"name": "x", "q": "a\u{0}b"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_are_set() {
    let server = TestServer::start(&[]).await;
    let res = server
        .http
        .get(format!("{}/login", server.url))
        .send()
        .await
        .unwrap();
    let h = res.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(h["referrer-policy"], "same-origin");
    for path in ["/api/v1/me", "/", "/instances"] {
        let res = server
            .http
            .get(format!("{}{path}", server.url))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_are_bounded_json() {
    let server = TestServer::start(&[]).await;
    let huge = "a".repeat(30_000);
    let res = server
        .http
        .get(format!("{}/api/v1/changes?account={huge}", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body = res.text().await.unwrap();
    assert!(body.len() < 2_000, "echoed {} bytes", body.len());
    // A body over the limit, a path that is not UTF-8, a wrong method.
    let big = vec![b' '; 2 * 1024 * 1024];
    let res = server
        .http
        .post(format!("{}/api/v1/views", server.url))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // The rest of the body was never read: the connection is not reused.
    assert_eq!(res.headers()["connection"], "close");
    let v: Value = res.json().await.expect("JSON 413");
    assert_eq!(v["error"]["code"], "payload_too_large");
    for (method, path) in [
        (Method::GET, "/api/v1/resources/%FF%FE"),
        (Method::PUT, "/api/v1/resources"),
    ] {
        let res = server
            .http
            .request(method.clone(), format!("{}{path}", server.url))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_client_error(),
            "{method} {path}: {}",
            res.status()
        );
        let v: Value = res
            .json()
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON"));
        assert!(v["error"]["code"].is_string(), "{v}");
    }
    server.stop().await;
}
