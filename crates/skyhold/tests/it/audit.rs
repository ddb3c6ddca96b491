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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_is_anchored_to_a_file_and_a_webhook() {
    // A webhook on loopback that keeps what it receives.
    let got: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let keep = got.clone();
    let hook = axum::Router::new().route(
        "/anchor",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("anchor.jsonl");
    for anchor in [
        file.to_str().unwrap().to_owned(),
        format!("http://{hook_addr}/anchor"),
    ] {
        let server = TestServer::start_with(
            &[],
            &format!("audit_anchor = {anchor:?}\naudit_anchor_interval = \"1s\"\n"),
        )
        .await;
        some_history(&server).await;
        // Anchoring on demand writes the current head...
        let line = server
            .app()
            .anchor_audit()
            .await
            .unwrap()
            .expect("configured");
        let v = verify(&server).await;
        // (the report's head is the last entry checked, before verify's own)
        assert_eq!(line["seq"], v["head"]["seq"], "{line} {v}");
        assert_eq!(line["hash"], v["head"]["hash"], "{line} {v}");
        // ...and the background task keeps doing it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let seen = loop {
            let lines: Vec<Value> = if anchor.starts_with("http") {
                got.lock().unwrap().clone()
            } else {
                std::fs::read_to_string(&file)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            };
            if lines.len() >= 2 {
                break lines;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no anchor written to {anchor}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        // Each anchored hash is the hash of the entry with that seq.
        let export = server
            .http
            .get(format!("{}/api/v1/audit/export", server.url))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for a in &seen {
            let seq = a["seq"].as_i64().unwrap();
            let entry: Value = export
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .find(|e| e["seq"] == seq)
                .unwrap_or_else(|| panic!("anchored seq {seq} not exported"));
            assert_eq!(entry["hash"], a["hash"], "{a}");
        }
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_append_one_unbroken_chain() {
    if backend() != Backend::Postgres {
        eprintln!("PostgreSQL only (SQLite is one process's file)");
        return;
    }
    let db = TestDb::new().await;
    let config = db.dir.path().join("replica.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = {:?}\nsync_on_start = false\n",
            db.url
        ),
    )
    .unwrap();
    let a = crate::replicas::Replica::start(&config);
    let b = crate::replicas::Replica::start(&config);
    let http = reqwest::Client::new();
    let mut tokens = Vec::new();
    for r in [&a, &b] {
        let v: Value = http
            .post(format!("{}/api/v1/auth/token", r.url))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(v["token"].as_str().expect("token").to_owned());
    }
    // 100 audited changes at once, alternating between the processes.
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (url, token) = if i % 2 == 0 {
            (&a.url, &tokens[0])
        } else {
            (&b.url, &tokens[1])
        };
        let req = http
            .post(format!("{url}/api/v1/groups"))
            .bearer_auth(token)
            .json(&json!({"name": format!("g{i}")}));
        tasks.push(tokio::spawn(
            async move { req.send().await.map(|r| r.status()) },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), StatusCode::CREATED);
    }
    let v: Value = http
        .get(format!("{}/api/v1/audit/verify", a.url))
        .bearer_auth(&tokens[0])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["ok"], true, "{v}");
    // Every entry is there, numbered without a gap.
    let export = http
        .get(format!("{}/api/v1/audit/export", b.url))
        .bearer_auth(&tokens[1])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let seqs: Vec<i64> = export
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    let created = export
        .lines()
        .filter(|l| l.contains("\"group.create\""))
        .count();
    assert_eq!(created, 100);
    assert!(v["checked"].as_i64().unwrap() >= 100 + 2, "{v}");
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_in_a_login_are_refused_and_recorded_safely() {
    let server = TestServer::start(&[]).await;
    let http = reqwest::Client::builder()
        .local_address("127.0.0.3".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    // Past the rate limit too, where the attempt is recorded before any
    // lookup (PostgreSQL refuses a NUL in text: the entry must not fail,
    // nor take the entries queued with it).
    let mut limited = false;
    for _ in 0..12 {
        let res = http
            .post(format!("{}/api/v1/auth/token", server.url))
            .json(&json!({"username": "ad\u{0}min", "password": "not the password"}))
            .send()
            .await
            .unwrap();
        let status = res.status();
        assert!(
            matches!(
                status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ),
            "{status}: {}",
            res.text().await.unwrap()
        );
        limited |= status == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(limited, "the attempts reached the rate limit");
    let (_, log) = server
        .request(
            Method::GET,
            "/api/v1/audit?action=login&limit=100",
            Some(&server.token),
            None,
        )
        .await;
    let items = log["items"].as_array().unwrap();
    let ours: Vec<&Value> = items
        .iter()
        .filter(|e| e["client_ip"] == "127.0.0.3")
        .collect();
    assert_eq!(ours.len(), 12, "every attempt is recorded: {log}");
    assert!(ours.iter().all(|e| e["actor"] == "ad\u{FFFD}min"), "{log}");
    assert!(
        ours.iter()
            .any(|e| e["reason"].as_str().unwrap().starts_with("rate_limited")),
        "{log}"
    );
    let v = verify(&server).await;
    assert_eq!(v["ok"], true, "{v}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_prefix_filters_match_underscores_literally() {
    let server = TestServer::start(&[]).await;
    let ann = server.user_token("ann", Role::Member).await;
    let key = ssh_key("ann@laptop");
    let (status, v) = server
        .send(
            Method::POST,
            "/api/v1/me/keys",
            &ann,
            json!({"name": "laptop", "public_key": key}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let count = |q: &'static str| {
        let server = &server;
        async move {
            let (status, v) = server
                .request(Method::GET, q, Some(&server.token), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v["items"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("/api/v1/audit?action=profile.ssh_key.").await, 1);
    // `_` is not a wildcard: "sshXkey" matches nothing.
    assert_eq!(count("/api/v1/audit?action=profile.sshXkey.").await, 0);
    assert_eq!(count("/api/v1/audit?action=profile.%25.").await, 0);
    server.stop().await;
}
