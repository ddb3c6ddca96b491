//! The audit log: a hash chain that names the first entry an edit or a
//! deletion broke, on SQLite and PostgreSQL, through the API, the CLI and an
//! exported file.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skyhold_core::Role;

async fn verify(server: &TestServer) -> Value {
    let (status, v) = server
        .request(
            Method::GET,
            "/api/v1/audit/verify",
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

/// Writes a few audited changes (users, a group, grants).
async fn some_history(server: &TestServer) {
    for name in ["ann", "bob", "cid"] {
        server
            .create_user(name, "long enough pw", Role::Member)
            .await;
    }
    let (s, _) = server
        .send(
            Method::POST,
            "/api/v1/groups",
            &server.token,
            json!({"name": "dev"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    for u in ["ann", "bob"] {
        server
            .send(
                Method::POST,
                "/api/v1/groups/dev/members",
                &server.token,
                json!({"username": u}),
                None,
            )
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_first_edited_or_deleted_entry() {
    let server = TestServer::start(&[]).await;
    some_history(&server).await;
    let v = verify(&server).await;
    assert_eq!(v["ok"], true, "{v}");
    let n = v["checked"].as_i64().unwrap();
    assert!(n >= 7, "{v}");

    // An export verifies on its own, through the CLI.
    let res = server
        .http
        .get(format!("{}/api/v1/audit/export?format=jsonl", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let export = res.text().await.unwrap();
    // Everything verified, plus the entry that records the verification.
    assert_eq!(export.lines().count() as i64, n + 1);
    let file = server.db.dir.path().join("audit.jsonl");
    std::fs::write(&file, &export).unwrap();
    let out = server.cli(&["audit", "verify", "--file", file.to_str().unwrap()], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An edited line in the file is named.
    let edited = export.replacen("\"actor\":\"admin\"", "\"actor\":\"mallory\"", 1);
    assert_ne!(edited, export);
    std::fs::write(&file, &edited).unwrap();
    let out = server.cli(
        &[
            "audit",
            "verify",
            "--file",
            file.to_str().unwrap(),
            "--json",
        ],
        "",
    );
    assert!(!out.status.success());
    let r: Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(r["ok"], false, "{r}");
    assert!(r["first_bad_seq"].as_i64().is_some(), "{r}");

    // An entry edited in the database.
    server
        .db
        .tamper("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
        .await;
    let v = verify(&server).await;
    assert_eq!(
        (v["ok"].as_bool(), v["first_bad_seq"].as_i64()),
        (Some(false), Some(3)),
        "{v}"
    );
    // The CLI on the database says the same.
    let config = server.db.dir.path().join("skyhold.toml");
    let out = server.cli(
        &[
            "audit",
            "verify",
            "--config",
            config.to_str().unwrap(),
            "--json",
        ],
        "",
    );
    assert!(!out.status.success());
    let r: Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(r["first_bad_seq"], 3, "{r}");
    server.stop().await;

    // A deleted entry, on a fresh chain.
    let server = TestServer::start(&[]).await;
    some_history(&server).await;
    server
        .db
        .tamper("DELETE FROM audit_log WHERE seq = 5")
        .await;
    let v = verify(&server).await;
    assert_eq!(
        (v["ok"].as_bool(), v["first_bad_seq"].as_i64()),
        (Some(false), Some(5)),
        "{v}"
    );
    server.stop().await;

    // The last entry deleted: caught against the recorded head.
    let server = TestServer::start(&[]).await;
    some_history(&server).await;
    let last = verify(&server).await["checked"].as_i64().unwrap();
    // (verify itself appended an entry: the head is last + 1)
    server
        .db
        .tamper(&format!("DELETE FROM audit_log WHERE seq = {}", last + 1))
        .await;
    let v = verify(&server).await;
    assert_eq!(v["first_bad_seq"].as_i64(), Some(last + 1), "{v}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_tokens_are_audited_with_their_origin() {
    let server = TestServer::start(&[]).await;
    server
        .create_user("ann", "ann-password", Role::Member)
        .await;
    let (status, _) = server.login_token("ann", "wrong-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.login_token("ann", "ann-password").await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, log) = server
        .request(
            Method::GET,
            "/api/v1/audit?actor=ann",
            Some(&server.token),
            None,
        )
        .await;
    let items = log["items"].as_array().unwrap();
    let by = |action: &str, outcome: &str| {
        items
            .iter()
            .find(|e| e["action"] == action && e["outcome"] == outcome)
            .cloned()
            .unwrap_or_else(|| panic!("no {action}/{outcome} in {log}"))
    };
    let failed = by("login", "failed");
    assert_eq!(failed["client_ip"], "127.0.0.1");
    assert!(failed["reason"]
        .as_str()
        .unwrap()
        .starts_with("invalid_credentials"));
    by("login", "ok");
    by("token.create", "ok");
    // Filters and paging.
    let (_, page) = server
        .request(
            Method::GET,
            "/api/v1/audit?limit=2",
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_i64().expect("a next page");
    let (_, next) = server
        .request(
            Method::GET,
            &format!("/api/v1/audit?limit=2&cursor={cursor}"),
            Some(&server.token),
            None,
        )
        .await;
    assert!(next["items"][0]["seq"].as_i64().unwrap() < cursor);
    let (status, e) = server
        .request(
            Method::GET,
            "/api/v1/audit?outcome=maybe",
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_parameter"))
    );
    // CSV export has a header and one row per entry.
    let res = server
        .http
        .get(format!("{}/api/v1/audit/export?format=csv", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    let csv = res.text().await.unwrap();
    assert!(csv.starts_with("seq,time,"), "{csv}");
    server.stop().await;
}
