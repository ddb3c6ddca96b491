//! Identity from a reverse proxy's header: honoured only from the trusted
//! address (127.0.0.1 here), ignored and audited from any other
//! (127.0.0.2), with users created and groups synced as configured.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PROXY: &str = r#"
[auth.proxy]
header = "X-Remote-User"
groups_header = "X-Remote-Groups"
trusted = ["127.0.0.1/32"]
auto_create = true
default_role = "member"
sync_groups = true
"#;

fn client_from(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(addr.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn me(
    c: &reqwest::Client,
    server: &TestServer,
    user: &str,
    groups: &str,
) -> (StatusCode, Value) {
    let res = c
        .get(format!("{}/api/v1/me", server.url))
        .header("x-remote-user", user)
        .header("x-remote-groups", groups)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_counts_only_from_the_trusted_proxy() {
    let server = TestServer::start_with(&[], PROXY).await;
    server
        .send(
            Method::POST,
            "/api/v1/groups",
            &server.token,
            json!({"name": "dev"}),
            None,
        )
        .await;

    // From the proxy: ann is created as a member, in group dev.
    let proxy = client_from("127.0.0.1");
    let (status, v) = me(&proxy, &server, "ann", "dev, unknown-group").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["username"].as_str(),
            v["role"].as_str(),
            v["auth"].as_str()
        ),
        (Some("ann"), Some("member"), Some("proxy"))
    );
    assert_eq!(v["groups"], json!(["dev"]), "{v}");
    // The session it started carries on (and a header naming someone else
    // switches users).
    let (status, v) = me(&proxy, &server, "ann", "dev").await;
    assert_eq!(
        (status, v["username"].as_str()),
        (StatusCode::OK, Some("ann"))
    );
    let (_, v) = me(&proxy, &server, "bob", "").await;
    assert_eq!(v["username"], "bob");
    assert_eq!(v["groups"], json!([]));

    // From anywhere else the header is ignored: no identity, no user.
    let outsider = client_from("127.0.0.2");
    let (status, _) = me(&outsider, &server, "admin", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = me(&outsider, &server, "mallory", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, users) = server
        .request(Method::GET, "/api/v1/users", Some(&server.token), None)
        .await;
    assert!(!users.to_string().contains("mallory"), "{users}");
    // ...and the attempt is in the audit log.
    let (_, log) = server
        .request(
            Method::GET,
            "/api/v1/audit?action=login&outcome=denied",
            Some(&server.token),
            None,
        )
        .await;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["client_ip"] == "127.0.0.2"
                && e["reason"].as_str().unwrap().starts_with("untrusted_proxy")),
        "{log}"
    );

    // Groups follow the header at the next sign-in.
    let fresh = client_from("127.0.0.1");
    let (_, v) = me(&fresh, &server, "ann", "").await;
    assert_eq!(v["groups"], json!([]), "{v}");

    // Writes through a proxy session need its CSRF token, like any session.
    let res = fresh
        .post(format!("{}/api/v1/views", server.url))
        .header("x-remote-user", "ann")
        .json(&json!({"name": "x", "q": "web"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // A disabled user is refused even through the proxy.
    server
        .send(
            Method::PATCH,
            "/api/v1/users/ann",
            &server.token,
            json!({"disabled": true}),
            None,
        )
        .await;
    let (status, _) = me(&client_from("127.0.0.1"), &server, "ann", "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_need_auto_create() {
    let server = TestServer::start_with(
        &[],
        "[auth.proxy]\nheader = \"X-Remote-User\"\ntrusted = [\"127.0.0.1\"]\n",
    )
    .await;
    let (status, v) = me(&client_from("127.0.0.1"), &server, "zed", "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not known"),
        "{v}"
    );
    server
        .create_user("zed", "zed-password", skyhold_core::Role::Viewer)
        .await;
    let (status, v) = me(&client_from("127.0.0.1"), &server, "zed", "").await;
    assert_eq!(
        (status, v["role"].as_str()),
        (StatusCode::OK, Some("viewer"))
    );
    server.stop().await;
}
