//! The action pipeline against moto through the SDK: power actions, the
//! owner tag, idempotent retries, refusals, and the audit trail they leave.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skyhold_core::Role;
use std::time::{Duration, Instant};

fn find(items: &[Value], provider_id: &str) -> Value {
    items
        .iter()
        .find(|i| i["provider_id"] == provider_id)
        .cloned()
        .unwrap_or_else(|| panic!("{provider_id} not listed"))
}

async fn act(
    server: &TestServer,
    token: &str,
    id: i64,
    body: Value,
    key: Option<&str>,
) -> (StatusCode, Value) {
    server
        .send(
            Method::POST,
            &format!("/api/v1/resources/{id}/actions"),
            token,
            body,
            key,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_start_and_terminate_go_through_the_pipeline() {
    let moto = shared_moto();
    let spec = AccountSpec::new("acts", moto, &["us-east-1"]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let ids = ec2.launch(2, 2, "actme", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let items = server.all("kind=instance").await;
    let target = find(&items, &ids[0]);
    let id = target["id"].as_i64().unwrap();
    assert_eq!(target["permission"], "manage", "admins manage everything");

    // Stop: the new state is visible without a sync, within 5 s.
    let t0 = Instant::now();
    let (status, a) = act(
        &server,
        &server.token,
        id,
        json!({"action": "stop"}),
        Some("stop-1"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{a}");
    assert_eq!(a["state"], "succeeded", "{a}");
    assert_eq!(a["action"], "stop");
    let d = server.get(&format!("/api/v1/resources/{id}")).await;
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(d["state"], "stopped", "{d}");
    // The change history shows it.
    assert!(d["history"].to_string().contains("stopped"), "{d}");

    // The same key and body: the first result, no second provider call
    // (the instance is stopped, so a second StopInstances would be visible
    // as a second action row).
    let (status, again) = act(
        &server,
        &server.token,
        id,
        json!({"action": "stop"}),
        Some("stop-1"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["id"], a["id"], "{again}");
    let (_, list) = server
        .request(
            Method::GET,
            &format!("/api/v1/actions?resource={id}"),
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    // The same key with another body is refused with a clear code.
    let (status, e) = act(
        &server,
        &server.token,
        id,
        json!({"action": "start"}),
        Some("stop-1"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "idempotency_conflict", "{e}");

    // Start with wait: returns once running.
    let (status, a) = act(
        &server,
        &server.token,
        id,
        json!({"action": "start", "wait": true}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{a}");
    assert_eq!(
        server.get(&format!("/api/v1/resources/{id}")).await["state"],
        "running"
    );

    // Terminate needs the name (or id) typed back.
    let (status, e) = act(
        &server,
        &server.token,
        id,
        json!({"action": "terminate"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "confirmation_required", "{e}");
    let (status, e) = act(
        &server,
        &server.token,
        id,
        json!({"action": "terminate", "confirm": "wrong"}),
        None,
    )
    .await;
    assert_eq!(e["error"]["code"], "confirmation_required", "{status} {e}");
    let (status, a) = act(
        &server,
        &server.token,
        id,
        json!({"action": "terminate", "confirm": ids[0]}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{a}");
    let d = server.get(&format!("/api/v1/resources/{id}")).await;
    assert!(
        d["state"] == "terminated" || !d["deleted_at"].is_null(),
        "{d}"
    );

    // Acting on it again is an invalid state, recorded as a refusal.
    let (status, e) = act(&server, &server.token, id, json!({"action": "start"}), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "invalid_state", "{e}");
    // Bad input names the field.
    let (status, e) = act(
        &server,
        &server.token,
        id,
        json!({"action": "explode"}),
        None,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_parameter")),
        "{e}"
    );

    // Every step is in the audit log, with outcome and the action's id.
    let (_, log) = server
        .request(
            Method::GET,
            "/api/v1/audit?action=resource.&limit=50",
            Some(&server.token),
            None,
        )
        .await;
    let entries = log["items"].as_array().expect("items").clone();
    let outcomes: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in [
        ("resource.stop", "ok"),
        ("resource.start", "ok"),
        ("resource.terminate", "ok"),
        ("resource.terminate", "denied"),
        ("resource.start", "denied"),
    ] {
        assert!(
            outcomes.iter().any(|(a, o)| a == want.0 && o == want.1),
            "{want:?} missing from {outcomes:?}"
        );
    }
    let stop = entries
        .iter()
        .find(|e| e["action"] == "resource.stop")
        .unwrap();
    assert_eq!(stop["target"]["provider_id"], ids[0]);
    assert_eq!(stop["idempotency_key"], "stop-1");
    assert_eq!(stop["auth"], "token");
    assert_eq!(stop["old"]["state"], "running");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_and_grants_decide_who_may_act() {
    let moto = shared_moto();
    let spec = AccountSpec::new("perms", moto, &["us-east-1"]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let ids = ec2.launch(3, 3, "shared", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let ann = server.user_token("ann", Role::Member).await;
    let bob = server.user_token("bob", Role::Member).await;
    let vic = server.user_token("vic", Role::Viewer).await;
    let items = server.all("kind=instance").await;
    let [a, b, c] = [0, 1, 2].map(|i| find(&items, &ids[i])["id"].as_i64().unwrap());

    // Nobody but admins may act on an orphan; everyone may see it.
    for t in [&ann, &bob, &vic] {
        let (status, e) = act(&server, t, a, json!({"action": "stop"}), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
        assert_eq!(e["error"]["code"], "forbidden");
    }
    let orphans = server.all("q=is:orphan").await;
    assert_eq!(orphans.len(), 3, "{orphans:?}");

    // The admin gives instance a to ann: the owner tag is written in the
    // cloud and read back.
    let (status, v) = server
        .send(
            Method::POST,
            &format!("/api/v1/resources/{a}/owner"),
            &server.token,
            json!({"owner": "ann"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["resource"]["owner"], "ann", "{v}");
    let tags = ec2.instance_tags(&ids[0]).await.unwrap();
    assert_eq!(
        tags.get("skyhold:owner").map(String::as_str),
        Some("ann"),
        "{tags:?}"
    );
    assert_eq!(server.all("q=owner:ann").await.len(), 1);
    assert_eq!(server.all("q=is:orphan").await.len(), 2);

    // ann (owner: manage) may stop it; bob may not; the viewer never acts.
    let (status, e) = act(&server, &bob, a, json!({"action": "stop"}), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    let (status, e) = act(&server, &ann, a, json!({"action": "stop"}), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{e}");

    // A grant through a group: dev gets operate on b; bob joins dev.
    let (s1, g) = server
        .send(
            Method::POST,
            "/api/v1/groups",
            &server.token,
            json!({"name": "dev"}),
            None,
        )
        .await;
    assert_eq!(s1, StatusCode::CREATED, "{g}");
    let (s2, _) = server
        .send(
            Method::POST,
            "/api/v1/groups/dev/members",
            &server.token,
            json!({"username": "bob"}),
            None,
        )
        .await;
    assert_eq!(s2, StatusCode::OK);
    let (s3, grant) = server
        .send(
            Method::POST,
            "/api/v1/grants",
            &server.token,
            json!({"subject": "group:dev", "object": format!("resource:{b}"), "level": "operate"}),
            None,
        )
        .await;
    assert_eq!(s3, StatusCode::CREATED, "{grant}");
    let (status, e) = act(&server, &bob, b, json!({"action": "stop"}), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{e}");
    // operate is not manage: no terminate, no owner change.
    let (status, e) = act(
        &server,
        &bob,
        b,
        json!({"action": "terminate", "confirm": ids[1]}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    let (status, _) = server
        .send(
            Method::POST,
            &format!("/api/v1/resources/{b}/owner"),
            &bob,
            json!({"owner": "bob"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Items carry the caller's permission.
    let mine = server
        .request(
            Method::GET,
            "/api/v1/resources?kind=instance",
            Some(&bob),
            None,
        )
        .await
        .1;
    let perm = |id: i64| {
        mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap()["permission"]
            .clone()
    };
    assert_eq!(
        (perm(a), perm(b), perm(c)),
        (json!("view"), json!("operate"), json!("view"))
    );
    // Members do not manage groups; bob cannot grant himself more.
    let (status, _) = server
        .send(
            Method::POST,
            "/api/v1/groups",
            &bob,
            json!({"name": "mine"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .send(
            Method::POST,
            "/api/v1/grants",
            &bob,
            json!({"subject": "user:bob", "object": format!("resource:{b}"), "level": "manage"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Revoking the grant takes effect on the next request.
    let (status, _) = server
        .send(
            Method::DELETE,
            &format!("/api/v1/grants/{}", grant["id"]),
            &server.token,
            json!({}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = act(&server, &bob, b, json!({"action": "start"}), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Denials are audited; ann reads her own entries, not bob's.
    let (_, log) = server
        .request(
            Method::GET,
            "/api/v1/audit?outcome=denied&limit=100",
            Some(&server.token),
            None,
        )
        .await;
    let denied = log["items"].as_array().unwrap();
    assert!(
        denied
            .iter()
            .any(|e| e["actor"] == "bob" && e["action"] == "resource.terminate"),
        "{log}"
    );
    let (_, mine) = server
        .request(Method::GET, "/api/v1/audit?limit=200", Some(&ann), None)
        .await;
    let mine = mine["items"].as_array().unwrap();
    assert!(!mine.is_empty());
    assert!(
        mine.iter()
            .all(|e| e["actor"] != "bob"
                || e["target"]["id"].as_str() == Some(a.to_string().as_str())),
        "{mine:?}"
    );
    // Members may not export or verify the whole log.
    let (status, _) = server
        .request(Method::GET, "/api/v1/audit/verify", Some(&ann), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_accounts_show_only_to_grant_holders() {
    let moto = shared_moto();
    let open = AccountSpec::new("open", moto, &["us-east-1"]).with_kinds(&["instance"]);
    let secret = AccountSpec::new("secret", moto, &["us-east-1"])
        .with_kinds(&["instance"])
        .with_line("restricted = true");
    let e1 = ec2(moto, &open.account_id, "us-east-1").await;
    let e2 = ec2(moto, &secret.account_id, "us-east-1").await;
    let pubs = e1.launch(2, 2, "pub", &[]).await.unwrap();
    let hidden = e2.launch(2, 2, "priv", &[]).await.unwrap();
    let server = TestServer::start(&[open, secret]).await;
    server.sync().await;
    let ann = server.user_token("ann", Role::Member).await;
    let aud = server.user_token("audrey", Role::Auditor).await;
    let count = |v: &Value| v["items"].as_array().map_or(0, Vec::len);
    let list = |t: String| {
        let server = &server;
        async move {
            server
                .request(
                    Method::GET,
                    "/api/v1/resources?kind=instance",
                    Some(&t),
                    None,
                )
                .await
                .1
        }
    };
    assert_eq!(count(&list(server.token.clone()).await), 4);
    assert_eq!(
        count(&list(aud.clone()).await),
        4,
        "auditors see restricted accounts"
    );
    assert_eq!(count(&list(ann.clone()).await), 2, "members do not");
    let all = server.all("kind=instance").await;
    let secret_id = find(&all, &hidden[0])["id"].as_i64().unwrap();
    // Hidden means not found, on the API and the pages.
    let (status, _) = server
        .request(
            Method::GET,
            &format!("/api/v1/resources/{secret_id}"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, accts) = server
        .request(Method::GET, "/api/v1/accounts", Some(&ann), None)
        .await;
    assert_eq!(count(&accts), 1, "{accts}");
    let (_, dash) = server
        .request(Method::GET, "/api/v1/dashboard", Some(&ann), None)
        .await;
    assert!(!dash.to_string().contains("secret"), "{dash}");
    // A grant on one resource shows that resource alone.
    let (status, g) = server
        .send(
            Method::POST,
            "/api/v1/grants",
            &server.token,
            json!({"subject": "user:ann", "object": format!("resource:{secret_id}"), "level": "view"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{g}");
    assert_eq!(count(&list(ann.clone()).await), 3);
    // Free text too, page by page (a page of one row makes PostgreSQL's
    // index walk fill its pages with the visibility filter applied).
    for q in ["kind=instance&q=p", "q=p", "kind=instance&q=priv"] {
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, page) = server
                .request(
                    Method::GET,
                    &format!("/api/v1/resources?{q}&limit=1{cursor}"),
                    Some(&ann),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for item in page["items"].as_array().unwrap() {
                seen.push(item["provider_id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        let want: Vec<&String> = if q.ends_with("priv") {
            vec![&hidden[0]]
        } else {
            vec![&hidden[0], &pubs[0], &pubs[1]]
        };
        let mut want: Vec<String> = want.into_iter().cloned().collect();
        want.sort();
        seen.sort();
        assert_eq!(seen, want, "{q}");
    }
    let (status, _) = server
        .request(
            Method::GET,
            &format!("/api/v1/resources/{secret_id}"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A grant on the account shows all of it.
    server
        .send(
            Method::POST,
            "/api/v1/grants",
            &server.token,
            json!({"subject": "user:ann", "object": "account:secret", "level": "view"}),
            None,
        )
        .await;
    assert_eq!(count(&list(ann.clone()).await), 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_ends_their_tokens_at_once() {
    let server = TestServer::start(&[]).await;
    let ann = server.user_token("ann", Role::Member).await;
    let (status, _) = server
        .request(Method::GET, "/api/v1/me", Some(&ann), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = server
        .send(
            Method::PATCH,
            "/api/v1/users/ann",
            &server.token,
            json!({"disabled": true}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["disabled"], true);
    let (status, _) = server
        .request(Method::GET, "/api/v1/me", Some(&ann), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.login_token("ann", "ann-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Members cannot manage users; admins cannot disable themselves.
    let bob = server.user_token("bob", Role::Member).await;
    let (status, _) = server
        .send(
            Method::POST,
            "/api/v1/users",
            &bob,
            json!({"username": "x", "password": "long enough", "role": "admin"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .send(
            Method::PATCH,
            "/api/v1/users/admin",
            &server.token,
            json!({"disabled": true}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, v) = server
        .send(
            Method::PATCH,
            "/api/v1/users/bob",
            &server.token,
            json!({"role": "root"}),
            None,
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_parameter"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_refusals_become_stable_codes() {
    let moto = shared_moto();
    let proxy = crate::proxy::FaultProxy::start(moto).await;
    let spec =
        AccountSpec::new("refuse", &proxy.endpoint, &["us-east-1"]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let ids = ec2.launch(1, 1, "refused", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let id = find(&server.all("kind=instance").await, &ids[0])["id"]
        .as_i64()
        .unwrap();
    for (aws_code, status, code) in [
        (
            "IncorrectInstanceState",
            StatusCode::CONFLICT,
            "invalid_state",
        ),
        (
            "OperationNotPermitted",
            StatusCode::CONFLICT,
            "not_permitted",
        ),
        (
            "UnauthorizedOperation",
            StatusCode::BAD_GATEWAY,
            "provider_denied",
        ),
        (
            "RequestLimitExceeded",
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_throttled",
        ),
    ] {
        proxy.set(
            "Action=StopInstances",
            crate::proxy::Fault::Error {
                status: if aws_code == "RequestLimitExceeded" {
                    503
                } else {
                    400
                },
                body: crate::proxy::ec2_error(aws_code, "refused by the test"),
            },
        );
        let (s, e) = act(&server, &server.token, id, json!({"action": "stop"}), None).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (status, Some(code)),
            "{aws_code}: {e}"
        );
        assert!(
            e["error"]["message"].as_str().unwrap().contains(aws_code),
            "{e}"
        );
    }
    // Each refusal is a failed action row and a failed audit entry.
    let (_, list) = server
        .request(
            Method::GET,
            &format!("/api/v1/actions?resource={id}"),
            Some(&server.token),
            None,
        )
        .await;
    let rows = list["items"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{list}");
    assert!(
        rows.iter()
            .all(|a| a["state"] == "failed" && a["error"]["code"].is_string()),
        "{list}"
    );
    let (_, log) = server
        .request(
            Method::GET,
            "/api/v1/audit?action=resource.stop&outcome=failed",
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(log["items"].as_array().unwrap().len(), 4, "{log}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_the_provider_call_settles_on_restart_without_a_second_call() {
    let moto = shared_moto();
    let proxy = crate::proxy::FaultProxy::start(moto).await;
    let spec = AccountSpec::new("crash", &proxy.endpoint, &["us-east-1"]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let ids = ec2.launch(1, 1, "crashy", &[]).await.unwrap();
    let db = TestDb::new().await;
    let config = replica_config(
        &db,
        "crash.toml",
        "sync_on_start = true\naction_timeout = \"4s\"",
        &spec,
    );
    let http = reqwest::Client::new();
    let mut first = crate::replicas::Replica::start(&config);
    let t1 = admin_token(&http, &first.url).await;
    // Wait for the first sync to list the instance.
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let v: Value = http
            .get(format!("{}/api/v1/resources?kind=instance", first.url))
            .bearer_auth(&t1)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(i) = v["items"].as_array().and_then(|a| a.first()) {
            break i["id"].as_i64().unwrap();
        }
        assert!(Instant::now() < deadline, "the instance was never synced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The proxy holds StopInstances; the server is killed while it waits.
    proxy.set(
        "Action=StopInstances",
        crate::proxy::Fault::Delay(Duration::from_secs(60)),
    );
    let stop = http
        .post(format!("{}/api/v1/resources/{id}/actions", first.url))
        .bearer_auth(&t1)
        .json(&json!({"action": "stop"}));
    let pending = tokio::spawn(async move { stop.send().await.map(|r| r.status()) });
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let v: Value = http
            .get(format!("{}/api/v1/actions?resource={id}", first.url))
            .bearer_auth(&t1)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["items"][0]["state"] == "running" && proxy.count("Action=StopInstances") == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the action never reached the provider: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill();
    assert!(
        pending.await.unwrap().is_err(),
        "the request died with the server"
    );

    // The restarted server re-reads the instance and settles the row.
    let second = crate::replicas::Replica::start(&config);
    let t2 = admin_token(&http, &second.url).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let settled = loop {
        let v: Value = http
            .get(format!("{}/api/v1/actions?resource={id}", second.url))
            .bearer_auth(&t2)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let a = v["items"][0].clone();
        if a["state"] != "running" && a["state"] != "pending" {
            break a;
        }
        assert!(Instant::now() < deadline, "never settled: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The held call never reached AWS, so the instance still runs and the
    // action is recorded as interrupted, not retried.
    assert_eq!(settled["state"], "failed", "{settled}");
    assert_eq!(settled["error"]["code"], "interrupted", "{settled}");
    assert_eq!(
        proxy.count("Action=StopInstances"),
        1,
        "a second StopInstances was sent"
    );
    assert_eq!(ec2.instance_state(&ids[0]).await.unwrap(), "running");
    let (_, _) = (t2, second);
}

/// The store's idempotency keys: a fresh claim, a replay once completed, a
/// conflict for another body, a running claim taken over only when stale,
/// and pruning by age (the background housekeeping keeps a day).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_replay_conflict_take_over_and_prune() {
    use skyhold_core::UserId;
    use skyhold_store::{IdempotencyClaim, Store};
    let db = TestDb::new().await;
    let s = Store::connect(&db.url).await.expect("store");
    let (u, stale) = (UserId(1), 1_000);
    let claim = |key: &'static str, hash: &'static str, now: i64| {
        let s = s.clone();
        async move { s.claim_idempotency(u, key, hash, now, stale).await.unwrap() }
    };
    assert_eq!(claim("k1", "h", 100).await, IdempotencyClaim::Fresh);
    assert_eq!(claim("k1", "h", 200).await, IdempotencyClaim::InProgress);
    assert_eq!(claim("k1", "other", 200).await, IdempotencyClaim::Mismatch);
    // Another user's key of the same name is theirs.
    assert_eq!(
        s.claim_idempotency(UserId(2), "k1", "h", 200, stale)
            .await
            .unwrap(),
        IdempotencyClaim::Fresh
    );
    s.complete_idempotency(u, "k1", 202, "{\"id\":1}")
        .await
        .unwrap();
    assert_eq!(
        claim("k1", "h", 300).await,
        IdempotencyClaim::Replay {
            status: 202,
            body: "{\"id\":1}".into()
        }
    );
    // A claim whose request died is taken over after `stale_after`, not before.
    assert_eq!(claim("k2", "h", 100).await, IdempotencyClaim::Fresh);
    assert_eq!(claim("k2", "h", 1_100).await, IdempotencyClaim::InProgress);
    assert_eq!(claim("k2", "h", 1_101).await, IdempotencyClaim::Fresh);
    // Released keys can be claimed again at once.
    s.release_idempotency(u, "k2").await.unwrap();
    assert_eq!(claim("k2", "h", 1_102).await, IdempotencyClaim::Fresh);
    // Pruning forgets keys created before the horizon, and only those.
    assert_eq!(s.prune_idempotency(1_000).await.unwrap(), 2);
    assert_eq!(claim("k1", "other", 1_200).await, IdempotencyClaim::Fresh);
    assert_eq!(claim("k2", "h", 1_200).await, IdempotencyClaim::InProgress);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_does_not_cut_the_action() {
    let moto = shared_moto();
    let proxy = crate::proxy::FaultProxy::start(moto).await;
    let spec =
        AccountSpec::new("hangup", &proxy.endpoint, &["us-east-1"]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let ids = ec2.launch(1, 1, "hangup", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let id = find(&server.all("kind=instance").await, &ids[0])["id"]
        .as_i64()
        .unwrap();
    // The provider takes its time; the client gives up long before.
    proxy.set(
        "Action=StopInstances",
        crate::proxy::Fault::Delay(Duration::from_secs(2)),
    );
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let res = impatient
        .post(format!("{}/api/v1/resources/{id}/actions", server.url))
        .bearer_auth(&server.token)
        .json(&json!({"action": "stop"}))
        .send()
        .await;
    assert!(res.is_err(), "the client hung up first: {res:?}");
    // The pipeline goes on without it: the admin's own action settles as
    // succeeded (not a recovery pass, which runs minutes later), once.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, v) = server
            .request(
                Method::GET,
                &format!("/api/v1/actions?resource={id}"),
                Some(&server.token),
                None,
            )
            .await;
        let a = &v["items"][0];
        if a["state"] == "succeeded" {
            break;
        }
        assert!(
            a.is_null() || a["state"] == "running",
            "the action ended otherwise: {v}"
        );
        assert!(Instant::now() < deadline, "the action was cut: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(proxy.count("Action=StopInstances"), 1);
    let (_, log) = server
        .request(
            Method::GET,
            "/api/v1/audit?action=resource.stop",
            Some(&server.token),
            None,
        )
        .await;
    let entry = &log["items"][0];
    assert_eq!(entry["actor"], "admin", "{log}");
    assert_eq!(entry["outcome"], "ok", "{log}");
    assert_ne!(
        ec2.instance_state(&ids[0]).await.unwrap(),
        "running",
        "stopped in the cloud"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_are_names_and_giving_a_resource_away_answers_without_it() {
    let moto = shared_moto();
    let spec = AccountSpec::new("vault", moto, &["us-east-1"])
        .with_kinds(&["instance"])
        .with_line("restricted = true");
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let ids = ec2.launch(1, 1, "given", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let ann = server.user_token("ann", Role::Member).await;
    let bob = server.user_token("bob", Role::Member).await;
    let id = find(&server.all("kind=instance").await, &ids[0])["id"]
        .as_i64()
        .unwrap();
    let owner = |token: String, owner: String| {
        let server = &server;
        async move {
            server
                .send(
                    Method::POST,
                    &format!("/api/v1/resources/{id}/owner"),
                    &token,
                    json!({"owner": owner}),
                    None,
                )
                .await
        }
    };
    let (status, v) = owner(server.token.clone(), "ann".into()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // An id is not a name: the tag would name nobody.
    let users = server.get("/api/v1/users").await;
    let bob_id = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, e) = owner(ann.clone(), bob_id.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "invalid_parameter", "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("'owner'"),
        "{e}"
    );
    // ann gives it to bob: in a restricted account she no longer sees it,
    // so the answer carries the action and no resource (not a 404).
    let (status, v) = owner(ann.clone(), "bob".into()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "succeeded", "{v}");
    assert!(v["resource"].is_null(), "{v}");
    let (status, _) = server
        .request(
            Method::GET,
            &format!("/api/v1/resources/{id}"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, r) = server
        .request(
            Method::GET,
            &format!("/api/v1/resources/{id}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["owner"], "bob", "{r}");
    server.stop().await;
}
