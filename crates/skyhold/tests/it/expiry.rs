//! Expiry against moto through the SDK: `skyhold:expires-at` set, extended
//! and cleared through the action pipeline on every kind that costs money,
//! capped by the blueprint's, the account's or the global `max_ttl`,
//! `never` kept for admins and grant holders, every change and refusal
//! audited.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skyhold_aws::testkit::Aws;
use skyhold_core::Role;

const REGION: &str = "us-east-1";
const DAY: i64 = 86_400_000;

fn one(items: &[Value], name: &str) -> i64 {
    let found: Vec<&Value> = items.iter().filter(|i| i["name"] == name).collect();
    assert_eq!(found.len(), 1, "exactly one {name:?} in {items:#?}");
    found[0]["id"].as_i64().unwrap()
}

async fn expire(server: &TestServer, token: &str, id: i64, body: Value) -> (StatusCode, Value) {
    server
        .send(
            Method::POST,
            &format!("/api/v1/resources/{id}/expiry"),
            token,
            body,
            None,
        )
        .await
}

/// The expiry the resource's tag holds after an action (read back from
/// the provider by the action's targeted refresh), in milliseconds.
fn expires_at(v: &Value) -> i64 {
    let t = v["resource"]["tags"]["skyhold:expires-at"]
        .as_str()
        .unwrap_or_else(|| panic!("no expiry tag in {v}"));
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .timestamp_millis()
}

fn near(got: i64, want: i64) -> bool {
    (got - want).abs() < 120_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_is_set_extended_and_capped_on_every_kind_that_costs() {
    let moto = shared_moto();
    let spec = AccountSpec::new("exp", moto, &[REGION])
        .with_kinds(&[
            "instance",
            "volume",
            "load_balancer",
            "db_instance",
            "cache_cluster",
            "security_group",
        ])
        .with_line("[accounts.policies.expiry]\nmax_ttl = \"7d\"");
    let aws = Aws::connect(moto, &spec.account_id, REGION).await.unwrap();
    let web = aws.ec2.launch(1, 1, "exp-web", &[]).await.unwrap();
    aws.ec2.create_volume(8, "exp-vol").await.unwrap();
    aws.create_alb("exp-alb", &[], &[]).await.unwrap();
    aws.create_db_instance("exp-db", 20, &[]).await.unwrap();
    aws.create_cache_cluster("exp-cache").await.unwrap();
    let server = TestServer::start(std::slice::from_ref(&spec)).await;
    server.sync().await;
    let admin = server.token.clone();

    // Every kind that costs money takes an expiry, written in the cloud
    // and read back at once.
    for (kind, name) in [
        ("instance", "exp-web-0"),
        ("volume", "exp-vol"),
        ("load_balancer", "exp-alb"),
        ("db_instance", "exp-db"),
        ("cache_cluster", "exp-cache"),
    ] {
        let id = one(&server.all(&format!("kind={kind}")).await, name);
        let t0 = skyhold_core::now_millis();
        let (s, v) = expire(&server, &admin, id, json!({"in": "3d"})).await;
        assert_eq!(s, StatusCode::OK, "{kind}: {v}");
        assert_eq!(v["state"], "succeeded", "{kind}: {v}");
        assert_eq!(v["action"], "set_expiry", "{v}");
        assert!(near(expires_at(&v), t0 + 3 * DAY), "{kind}: {v}");
        assert_eq!(
            v["resource"]["expires_at"], v["resource"]["tags"]["skyhold:expires-at"],
            "{v}"
        );
    }
    let tags = aws.ec2.instance_tags(&web[0]).await.unwrap();
    let in_moto = tags
        .get("skyhold:expires-at")
        .expect("the tag is in the cloud")
        .clone();
    let web_id = one(&server.all("kind=instance").await, "exp-web-0");

    // The account caps it at 7 days from now: a refusal names the cap and
    // changes nothing.
    let (s, e) = expire(&server, &admin, web_id, json!({"in": "8d"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "ttl_exceeds_max", "{e}");
    assert_eq!(e["error"]["cap"]["max_ttl"], "1w", "{e}");
    assert_eq!(e["error"]["cap"]["source"], "account exp", "{e}");
    let tags = aws.ec2.instance_tags(&web[0]).await.unwrap();
    assert_eq!(tags.get("skyhold:expires-at"), Some(&in_moto));

    // Extending adds to the expiry, within the cap.
    let before = chrono::DateTime::parse_from_rfc3339(&in_moto)
        .unwrap()
        .timestamp_millis();
    let (s, v) = expire(&server, &admin, web_id, json!({"extend": "2d"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(expires_at(&v), before + 2 * DAY, "{v}");
    let (s, e) = expire(&server, &admin, web_id, json!({"extend": "3d"})).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("ttl_exceeds_max")),
        "{e}"
    );

    // Bad requests: no part, two parts, a bad duration, a past time, an
    // unknown field; a kind that cannot expire.
    for (body, code) in [
        (json!({}), "bad_request"),
        (json!({"in": "1d", "never": true}), "bad_request"),
        (json!({"in": "1 day"}), "invalid_parameter"),
        (json!({"at": "2020-01-01T00:00:00Z"}), "bad_request"),
        (json!({"at": "soon"}), "invalid_parameter"),
        (json!({"in": "1d", "color": "red"}), "bad_request"),
    ] {
        let (s, e) = expire(&server, &admin, web_id, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert_eq!(e["error"]["code"], code, "{body}: {e}");
    }
    let sg = server.all("kind=security_group").await;
    let sg_id = sg[0]["id"].as_i64().unwrap();
    let (s, e) = expire(&server, &admin, sg_id, json!({"in": "1d"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot expire"),
        "{e}"
    );

    // An owner manages the expiry of what they own, but never expiring
    // takes an admin (or a manage grant).
    let ann = server.user_token("ann", Role::Member).await;
    let bob = server.user_token("bob", Role::Member).await;
    let (s, v) = server
        .send(
            Method::POST,
            &format!("/api/v1/resources/{web_id}/owner"),
            &admin,
            json!({"owner": "ann"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let t0 = skyhold_core::now_millis();
    let (s, v) = expire(&server, &ann, web_id, json!({"in": "1d"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(near(expires_at(&v), t0 + DAY), "{v}");
    let (s, e) = expire(&server, &bob, web_id, json!({"in": "1d"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, e) = expire(&server, &ann, web_id, json!({"never": true})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("owning it is not enough"),
        "{e}"
    );
    let (s, v) = expire(&server, &admin, web_id, json!({"never": true})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["resource"]["tags"]["skyhold:expires-at"], "never", "{v}");
    let (s, e) = expire(&server, &ann, web_id, json!({"extend": "1d"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "invalid_state", "{e}");

    // Every change is audited with the old and new expiry; refusals too.
    let (_, log) = server
        .request(
            Method::GET,
            "/api/v1/audit?action=resource.&limit=200",
            Some(&admin),
            None,
        )
        .await;
    let entries = log["items"].as_array().unwrap();
    let never = entries
        .iter()
        .find(|e| e["action"] == "resource.never_expire" && e["outcome"] == "ok")
        .unwrap_or_else(|| panic!("{entries:#?}"));
    assert_eq!(never["new"]["expires_at"], "never", "{never}");
    assert!(never["old"]["expires_at"].is_string(), "{never}");
    assert!(entries
        .iter()
        .any(|e| e["action"] == "resource.never_expire"
            && e["outcome"] == "denied"
            && e["actor"] == "ann"));
    assert!(entries.iter().any(|e| e["action"] == "resource.set_expiry"
        && e["outcome"] == "denied"
        && e["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("ttl_exceeds_max")));

    // Deadlines read the server's clock: ten days on, the volume's expiry
    // (three days) has passed, an extension counts from the new now, and
    // the cap too.
    server.app().clock.advance(10 * DAY);
    let vol = one(&server.all("kind=volume").await, "exp-vol");
    let t0 = skyhold_core::now_millis();
    let (s, v) = expire(&server, &admin, vol, json!({"extend": "1d"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(near(expires_at(&v), t0 + 11 * DAY), "{v}");
    let at = skyhold_core::rfc3339(t0 + 5 * DAY);
    let (s, e) = expire(&server, &admin, vol, json!({ "at": at })).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request")),
        "five days from the real now has passed on the server's clock: {e}"
    );
    let (s, v) = expire(&server, &admin, vol, json!({"in": "7d"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(near(expires_at(&v), t0 + 17 * DAY), "{v}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blueprints_max_ttl_caps_its_servers_and_the_global_one_the_rest() {
    let moto = shared_moto();
    let spec = AccountSpec::new("expbp", moto, &[REGION]).with_kinds(&["instance"]);
    let aws = Aws::connect(moto, &spec.account_id, REGION).await.unwrap();
    aws.ec2
        .launch(1, 1, "bp-web", &[("skyhold:blueprint", "capbox@1")])
        .await
        .unwrap();
    aws.ec2.launch(1, 1, "plain-web", &[]).await.unwrap();
    // A tag naming a blueprint by a number names none (names are never all
    // digits; it must not be read as capbox's id, 1).
    aws.ec2
        .launch(1, 1, "digits-web", &[("skyhold:blueprint", "1@1")])
        .await
        .unwrap();
    let server = TestServer::start_with_toml(
        std::slice::from_ref(&spec),
        "[policies.expiry]\nmax_ttl = \"30d\"\n",
        true,
    )
    .await;
    let admin = server.token.clone();
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/blueprints",
            &admin,
            json!({
                "name": "capbox", "account": "expbp", "region": REGION,
                "image": "ami-12c6146b", "instance_types": ["t3.*"],
                "default_type": "t3.micro", "login_user": "ubuntu", "max_ttl": "1d",
            }),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    server.sync().await;
    let items = server.all("kind=instance").await;
    let (bp, plain) = (one(&items, "bp-web-0"), one(&items, "plain-web-0"));
    let (s, e) = expire(&server, &admin, bp, json!({"in": "2d"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        (&e["error"]["cap"]["source"], &e["error"]["cap"]["max_ttl"]),
        (&json!("blueprint capbox"), &json!("1d")),
        "{e}"
    );
    let (s, v) = expire(&server, &admin, plain, json!({"in": "2d"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, e) = expire(&server, &admin, plain, json!({"in": "31d"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["cap"]["source"], "policies.expiry", "{e}");
    let digits = one(&items, "digits-web-0");
    let (s, e) = expire(&server, &admin, digits, json!({"in": "2d"})).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the blueprint's 1d cap must not apply: {e}"
    );
    server.stop().await;
}

/// The keep opt-out: written and removed through the pipeline by those
/// allowed (not by owning), honoured when skyhold wrote it, reported and
/// not honoured when set outside skyhold unless the account trusts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_tag_is_honoured_only_when_skyhold_wrote_it_or_the_account_trusts_it() {
    let moto = shared_moto();
    let spec = AccountSpec::new("keep", moto, &[REGION]).with_kinds(&["instance", "db_instance"]);
    let trusting = AccountSpec::new("keeptrust", moto, &[REGION])
        .with_kinds(&["instance"])
        .with_line("trust_keep_tag = true");
    let aws = Aws::connect(moto, &spec.account_id, REGION).await.unwrap();
    let mine = aws
        .ec2
        .launch(1, 1, "kept", &[("owner", "ann")])
        .await
        .unwrap();
    aws.ec2
        .launch(1, 1, "handkept", &[("skyhold:keep", "said so")])
        .await
        .unwrap();
    aws.create_db_instance("keep-db", 20, &[]).await.unwrap();
    let other = Aws::connect(moto, &trusting.account_id, REGION)
        .await
        .unwrap();
    other
        .ec2
        .launch(1, 1, "trusted", &[("skyhold:keep", "lab server")])
        .await
        .unwrap();
    let server = TestServer::start(&[spec, trusting]).await;
    server.sync().await;
    let admin = server.token.clone();
    let ann = server.user_token("ann", Role::Member).await;
    let items = server.all("kind=instance").await;
    let (kept, hand, trusted) = (
        one(&items, "kept-0"),
        one(&items, "handkept-0"),
        one(&items, "trusted-0"),
    );
    let db = one(&server.all("kind=db_instance").await, "keep-db");
    let status = |id: i64| {
        let server = &server;
        async move { server.get(&format!("/api/v1/resources/{id}/keep")).await }
    };
    let keep = |token: &str, id: i64, body: Value| {
        let (server, token) = (&server, token.to_owned());
        async move {
            server
                .send(
                    Method::POST,
                    &format!("/api/v1/resources/{id}/keep"),
                    &token,
                    body,
                    None,
                )
                .await
        }
    };

    // Owning it is not enough to keep it.
    let (s, e) = keep(&ann, kept, json!({"reason": "thesis run"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(status(kept).await["state"], "none");
    // An admin keeps it: written in the cloud, honoured, with who.
    let (s, v) = keep(&admin, kept, json!({"reason": "thesis run"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let tags = aws.ec2.instance_tags(&mine[0]).await.unwrap();
    assert_eq!(
        tags.get("skyhold:keep").map(String::as_str),
        Some("thesis run")
    );
    let st = status(kept).await;
    assert_eq!(
        (
            st["state"].as_str(),
            st["reason"].as_str(),
            st["by"].as_str()
        ),
        (Some("trusted"), Some("thesis run"), Some("admin")),
        "{st}"
    );
    assert!(st["at"].is_string(), "{st}");
    // Also on a DB instance (tagged by ARN).
    let (s, v) = keep(&admin, db, json!({"reason": "orders"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["resource"]["tags"]["skyhold:keep"], "orders", "{v}");
    assert_eq!(status(db).await["state"], "trusted");

    // Set by hand in the cloud: reported, not honoured, unless trusted.
    let st = status(hand).await;
    assert_eq!(
        (st["state"].as_str(), st["reason"].as_str()),
        (Some("untrusted"), Some("said so")),
        "{st}"
    );
    let st = status(trusted).await;
    assert_eq!(st["state"], "trusted", "{st}");
    assert!(st["by"].is_null(), "{st}");

    // Bad reasons are refused, nothing written.
    for bad in [
        json!({"reason": ""}),
        json!({"reason": "x".repeat(257)}),
        json!({}),
    ] {
        let (s, e) = keep(&admin, kept, bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    }
    // Removing it: gone from the cloud, and the status says so.
    let (s, v) = server
        .send(
            Method::DELETE,
            &format!("/api/v1/resources/{kept}/keep"),
            &admin,
            json!(null),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let tags = aws.ec2.instance_tags(&mine[0]).await.unwrap();
    assert!(!tags.contains_key("skyhold:keep"), "{tags:?}");
    assert_eq!(status(kept).await["state"], "none");
    // skyhold writing over a keep tag set by hand makes it skyhold's.
    let (s, _) = keep(&admin, hand, json!({"reason": "mine now"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(status(hand).await["state"], "trusted");
    server.stop().await;
}
