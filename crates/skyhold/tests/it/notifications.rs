//! The notification outbox, delivered for real: mail to an aiosmtpd sink
//! on loopback, and a signed webhook to a loopback receiver that fails the
//! first two deliveries; retries wait for their backoff (the injected
//! clock moved, never slept), carry the same delivery id, and nothing is
//! sent twice.

use crate::harness::*;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skyhold_aws::testkit::Aws;
use skyhold_core::Role;
use std::sync::{Arc, Mutex};

const REGION: &str = "us-east-1";
const SECRET: &str = "a-webhook-secret-0123456789";

/// A receiver that answers 500 to its first `fail` requests, then 204,
/// and keeps each (headers, body).
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    fail: usize,
}

async fn receiver(fail: usize) -> (String, Receiver) {
    let r = Receiver {
        fail,
        ..Default::default()
    };
    let state = r.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                let mut seen = state.seen.lock().unwrap();
                seen.push((headers, body));
                if seen.len() <= state.fail {
                    AxStatus::INTERNAL_SERVER_ERROR
                } else {
                    AxStatus::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook?token=abc", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, r)
}

async fn deliveries(server: &TestServer) -> Vec<Value> {
    let v = server.get("/api/v1/notifications").await;
    v["items"].as_array().unwrap()[0]["deliveries"]
        .as_array()
        .unwrap()
        .clone()
}

fn channel<'a>(ds: &'a [Value], name: &str) -> &'a Value {
    ds.iter().find(|d| d["channel"] == name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warning_is_mailed_once_and_its_webhook_retried_until_it_lands() {
    let moto = shared_moto();
    let sink = SmtpSink::start();
    let (url, hook) = receiver(2).await;
    let spec = AccountSpec::new("note", moto, &[REGION]).with_kinds(&["instance"]);
    let aws = Aws::connect(moto, &spec.account_id, REGION).await.unwrap();
    let soon = skyhold_core::rfc3339(skyhold_core::now_millis() + 2 * 3_600_000);
    aws.ec2
        .launch(
            1,
            1,
            "note-web",
            &[
                ("skyhold:owner", "ann"),
                ("skyhold:expires-at", soon.as_str()),
            ],
        )
        .await
        .unwrap();
    let server = TestServer::start_with(
        std::slice::from_ref(&spec),
        &format!(
            "[policies]\ninterval = \"off\"\n[policies.expiry]\nwarn = [\"24h\"]\n\n\
             [notifications]\nretry_base = \"1m\"\nmax_attempts = 5\n\
             [notifications.email]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\ntls = \"none\"\n\
             from = \"skyhold <skyhold@example.test>\"\n\
             [[notifications.webhooks]]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n",
            sink.port
        ),
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
    let (s, run) = server
        .send(
            Method::POST,
            "/api/v1/policies/runs",
            &server.token,
            json!({}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{run}");
    assert_eq!(run["counts"]["warned"], 1, "{run}");
    let ds = deliveries(&server).await;
    assert_eq!(ds.len(), 2, "{ds:?}");
    assert!(ds.iter().all(|d| d["state"] == "pending"), "{ds:?}");

    // First attempt: the mail lands, the webhook fails and waits 1 min.
    let app = server.app();
    let p = app.deliver_notifications().await.unwrap();
    assert_eq!((p.sent, p.retrying, p.dead), (1, 1, 0));
    let mails = sink.messages();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("X-Envelope-To: ann@example.test"),
        "{}",
        mails[0]
    );
    assert!(
        mails[0].contains("Subject: skyhold: instance note-web-0 expires at"),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("expires: expires-at"), "{}", mails[0]);
    let ds = deliveries(&server).await;
    assert_eq!(channel(&ds, "email")["state"], "sent");
    let w = channel(&ds, "webhook:0");
    assert_eq!(
        (w["state"].as_str(), w["attempts"].as_i64()),
        (Some("pending"), Some(1))
    );
    assert!(
        w["last_error"].as_str().unwrap().contains("HTTP 500"),
        "{w}"
    );
    assert!(
        !w["last_error"].as_str().unwrap().contains("token=abc"),
        "{w}"
    );

    // Not due yet: nothing is sent.
    assert_eq!(
        app.deliver_notifications().await.unwrap(),
        Default::default()
    );
    // After 1 min, a second failure; after 2 more, it lands.
    app.clock.advance(60_000);
    let p = app.deliver_notifications().await.unwrap();
    assert_eq!((p.sent, p.retrying), (0, 1));
    app.clock.advance(60_000);
    assert_eq!(
        app.deliver_notifications().await.unwrap(),
        Default::default()
    );
    app.clock.advance(60_000);
    let p = app.deliver_notifications().await.unwrap();
    assert_eq!(p.sent, 1);
    let ds = deliveries(&server).await;
    let w = channel(&ds, "webhook:0");
    assert_eq!(
        (w["state"].as_str(), w["attempts"].as_i64()),
        (Some("sent"), Some(3))
    );

    // Three attempts, one delivery id, each signed over its body.
    let seen = hook.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let ids: Vec<&str> = seen
        .iter()
        .map(|(h, _)| h["x-skyhold-delivery"].to_str().unwrap())
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    for (h, body) in &seen {
        assert_eq!(
            h["x-skyhold-signature"].to_str().unwrap(),
            skyhold::app::webhook_signature(SECRET, body.as_bytes())
        );
        assert_ne!(
            h["x-skyhold-signature"].to_str().unwrap(),
            skyhold::app::webhook_signature("another-secret-0123456789", body.as_bytes())
        );
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["kind"], "expiry.warning");
        assert_eq!(v["resource"]["name"], "note-web-0");
    }
    // Later passes and deliveries send nothing again.
    app.clock.advance(3_600_000);
    let (_, again) = server
        .send(
            Method::POST,
            "/api/v1/policies/runs",
            &server.token,
            json!({}),
            None,
        )
        .await;
    assert!(again["counts"].get("warned").is_none(), "{again}");
    assert_eq!(
        app.deliver_notifications().await.unwrap(),
        Default::default()
    );
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(hook.seen.lock().unwrap().len(), 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_owned_resources_and_members_without_email_reach_the_groups_address() {
    let moto = shared_moto();
    let spec = AccountSpec::new("grpmail", moto, &[REGION]).with_kinds(&["instance"]);
    let aws = Aws::connect(moto, &spec.account_id, REGION).await.unwrap();
    let soon = skyhold_core::rfc3339(skyhold_core::now_millis() + 2 * 3_600_000);
    for (name, owner) in [
        ("gm-team", "group:dev"),
        ("gm-bob", "bob"),
        ("gm-nobody", "carl"),
    ] {
        aws.ec2
            .launch(
                1,
                1,
                name,
                &[
                    ("skyhold:owner", owner),
                    ("skyhold:expires-at", soon.as_str()),
                ],
            )
            .await
            .unwrap();
    }
    let server = TestServer::start_with(
        std::slice::from_ref(&spec),
        "[policies]\ninterval = \"off\"\n[policies.expiry]\nwarn = [\"24h\"]\n",
    )
    .await;
    server
        .create_user("bob", "bob-password-1", Role::Member)
        .await;
    let admin = server.token.clone();
    let (s, g) = server
        .send(
            Method::POST,
            "/api/v1/groups",
            &admin,
            json!({"name": "dev"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let (s, _) = server
        .send(
            Method::POST,
            "/api/v1/groups/dev/members",
            &admin,
            json!({"username": "bob"}),
            None,
        )
        .await;
    assert!(s.is_success());
    let (s, e) = server
        .send(
            Method::PATCH,
            "/api/v1/groups/dev",
            &admin,
            json!({"email": "not an address"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, g) = server
        .send(
            Method::PATCH,
            "/api/v1/groups/dev",
            &admin,
            json!({"email": "dev@example.test"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{g}");
    assert_eq!(g["email"], "dev@example.test");
    server.sync().await;
    let (s, run) = server
        .send(
            Method::POST,
            "/api/v1/policies/runs",
            &admin,
            json!({}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{run}");
    let notes = server.get("/api/v1/notifications").await;
    let to = |name: &str| {
        let n = notes["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["body"]["resource"]["name"] == format!("{name}-0"))
            .unwrap_or_else(|| panic!("{name} in {notes}"));
        (
            n["recipient"].as_str().unwrap().to_owned(),
            n["email"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        to("gm-team"),
        ("group:dev".into(), "dev@example.test".into())
    );
    assert_eq!(
        to("gm-bob"),
        ("group:dev".into(), "dev@example.test".into())
    );
    assert_eq!(to("gm-nobody"), ("admins".into(), String::new()));
    server.stop().await;
}
