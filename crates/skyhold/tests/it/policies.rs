//! The expiry policy against moto through the SDK: each pass (on demand,
//! with the injected clock moved past each deadline, never slept for)
//! takes the one due step of each resource's ladder, once: a warning into
//! the outbox, a stop, a deletion with its final snapshot. Dry-run acts on
//! nothing, a trusted keep is honoured and an untrusted one reported, and
//! a pass over the mass-action cap acts on none until an admin confirms.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skyhold_aws::testkit::Aws;
use skyhold_core::Role;

const REGION: &str = "us-east-1";
const H: i64 = 3_600_000;

async fn pass(server: &TestServer, token: &str) -> Value {
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/policies/runs",
            token,
            json!({}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

fn plan_of<'a>(run: &'a Value, name: &str) -> Vec<&'a Value> {
    run["plan"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["name"] == name)
        .collect()
}

async fn notifications(server: &TestServer) -> Vec<Value> {
    server.get("/api/v1/notifications?limit=500").await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn id_of(items: &[Value], name: &str) -> i64 {
    let found: Vec<&Value> = items.iter().filter(|i| i["name"] == name).collect();
    assert_eq!(found.len(), 1, "exactly one {name:?} in {items:#?}");
    found[0]["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ladder_warns_stops_and_deletes_each_step_once() {
    let moto = shared_moto();
    let spec = AccountSpec::new("pol", moto, &[REGION]).with_kinds(&[
        "instance",
        "volume",
        "db_instance",
        "snapshot",
    ]);
    let aws = Aws::connect(moto, &spec.account_id, REGION).await.unwrap();
    let t0 = skyhold_core::now_millis();
    let expires = skyhold_core::rfc3339(t0 + 30 * H);
    let tags = [
        ("skyhold:owner", "ann"),
        ("skyhold:expires-at", expires.as_str()),
    ];
    let web = aws.ec2.launch(1, 1, "pol-web", &tags).await.unwrap();
    let vol = aws.ec2.create_volume(8, "pol-vol").await.unwrap();
    aws.create_db_instance("pol-db", 20, &tags).await.unwrap();
    let server = TestServer::start_with(
        std::slice::from_ref(&spec),
        "[policies]\ninterval = \"off\"\n[policies.expiry]\nwarn = [\"24h\", \"1h\"]\n\
         terminate_after = \"2d\"\nsnapshot_before_terminate = true\n",
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
    let admin = server.token.clone();
    // The volume's expiry is set through skyhold (the same time).
    let vol_id = id_of(&server.all("kind=volume").await, "pol-vol");
    let (s, v) = server
        .send(
            Method::POST,
            &format!("/api/v1/resources/{vol_id}/expiry"),
            &admin,
            json!({"at": expires}),
            None,
        )
        .await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("succeeded")),
        "{v}"
    );

    // Six hours before the first warning point: nothing is due.
    let run = pass(&server, &admin).await;
    assert_eq!(run["state"], "done", "{run}");
    assert_eq!(run["counts"]["candidates"], 3, "{run}");
    assert!(run["counts"].get("warned").is_none(), "{run}");
    assert!(notifications(&server).await.is_empty());

    // Past the 24 h point: one warning each, to the owner, in the outbox;
    // a second pass sends none again.
    server.app().clock.advance(7 * H);
    let run = pass(&server, &admin).await;
    assert_eq!(run["counts"]["warned"], 3, "{run}");
    let again = pass(&server, &admin).await;
    assert!(again["counts"].get("warned").is_none(), "{again}");
    let notes = notifications(&server).await;
    assert_eq!(notes.len(), 3, "{notes:#?}");
    let web_note = notes
        .iter()
        .find(|n| n["body"]["resource"]["name"] == "pol-web-0")
        .expect("a warning about the instance");
    assert_eq!(web_note["kind"], "expiry.warning");
    assert_eq!(web_note["recipient"], "user:ann");
    assert_eq!(web_note["email"], "ann@example.test");
    assert!(
        web_note["body"]["reason"]
            .as_str()
            .unwrap()
            .contains("in 1d"),
        "{web_note}"
    );
    // The volume has no owner: its warning goes to the admins.
    let vol_note = notes
        .iter()
        .find(|n| n["body"]["resource"]["name"] == "pol-vol")
        .unwrap();
    assert_eq!(vol_note["recipient"], "admins", "{vol_note}");

    // The preview sees the 1 h warning and the stops within 24 h.
    let p = server.get("/api/v1/policies/preview").await;
    assert!(p["now_items"].as_array().unwrap().is_empty(), "{p}");
    let next: Vec<(String, String)> = p["next_24h"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_owned(),
                d["step"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in [
        ("pol-web-0", "stop"),
        ("pol-db", "stop"),
        ("pol-vol", "warn"),
    ] {
        assert!(
            next.contains(&(want.0.into(), want.1.into())),
            "{want:?} in {next:?}"
        );
    }

    // Past the expiry (the pass came late: the 1 h warning of what stops is
    // overtaken, never sent later): stopped through the pipeline, with the
    // reason in the audit log; a volume cannot stop and gets its warning.
    server.app().clock.advance(24 * H);
    let run = pass(&server, &admin).await;
    assert_eq!(run["counts"]["stopped"], 2, "{run}");
    assert_eq!(plan_of(&run, "pol-web-0")[0]["outcome"], "done", "{run}");
    assert_eq!(aws.ec2.instance_state(&web[0]).await.unwrap(), "stopped");
    assert_eq!(
        aws.db_status("pol-db").await.unwrap().as_deref(),
        Some("stopped")
    );
    let audit = server
        .get("/api/v1/audit?action=resource.stop&limit=10")
        .await;
    let entry = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"]["name"] == "pol-web-0")
        .unwrap_or_else(|| panic!("a stop entry: {audit}"))
        .clone();
    assert_eq!(entry["actor"], "system:policy:expiry", "{entry}");
    let reason = entry["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("expired: expires-at ") && reason.contains("warned 1d before"),
        "{reason}"
    );
    let again = pass(&server, &admin).await;
    assert!(again["counts"].get("stopped").is_none(), "{again}");

    // After the grace period: deleted, each after its final snapshot.
    server.app().clock.advance(2 * 24 * H);
    let run = pass(&server, &admin).await;
    assert_eq!(run["counts"]["terminated"], 3, "{run}");
    assert_eq!(aws.ec2.instance_state(&web[0]).await.unwrap(), "terminated");
    assert!(!aws.ec2.volume_exists(&vol).await.unwrap());
    assert_eq!(aws.db_status("pol-db").await.unwrap(), None);
    assert!(!aws
        .ec2
        .final_snapshots_of(&web[0])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(aws.ec2.final_snapshots_of(&vol).await.unwrap().len(), 1);
    assert_eq!(aws.db_snapshots_of("pol-db").await.unwrap().len(), 1);
    let deleted = server.get("/api/v1/actions?limit=100").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "delete")
        .count();
    assert_eq!(deleted, 3);
    // Nothing is ever taken twice.
    let again = pass(&server, &admin).await;
    assert_eq!(again["counts"]["candidates"], 0, "{again}");
    let kinds: Vec<String> = notifications(&server)
        .await
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "expiry.deleted").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "expiry.stopped").count(),
        2,
        "{kinds:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_cap_a_pass_waits_for_a_confirmation_and_dry_run_acts_on_nothing() {
    let moto = shared_moto();
    let live = AccountSpec::new("cap", moto, &[REGION]).with_kinds(&["instance"]);
    let dry = AccountSpec::new("dry", moto, &[REGION])
        .with_kinds(&["instance"])
        .with_line("[accounts.policies.expiry]\nmode = \"dry-run\"");
    let aws = Aws::connect(moto, &live.account_id, REGION).await.unwrap();
    let aws_dry = Aws::connect(moto, &dry.account_id, REGION).await.unwrap();
    let past = skyhold_core::rfc3339(skyhold_core::now_millis() - H);
    let expired = [("skyhold:expires-at", past.as_str())];
    let ids = aws.ec2.launch(4, 1, "cap", &expired).await.unwrap();
    let dry_ids = aws_dry.ec2.launch(1, 1, "dry", &expired).await.unwrap();
    // A keep tag written outside skyhold: reported, not honoured.
    let untrusted = [
        ("skyhold:expires-at", past.as_str()),
        ("skyhold:keep", "mine"),
    ];
    let hand_ids = aws.ec2.launch(1, 1, "hand", &untrusted).await.unwrap();
    let server = TestServer::start_with(
        &[live, dry],
        "[policies]\ninterval = \"off\"\n[policies.expiry]\nwarn = []\nmax_actions_per_pass = 3\n",
    )
    .await;
    server.sync().await;
    let admin = server.token.clone();
    let member = server.user_token("mia", Role::Member).await;
    let instances = server.all("kind=instance").await;

    // An admin keeps one through skyhold: honoured.
    let kept = id_of(&instances, "cap-0");
    let (s, v) = server
        .send(
            Method::POST,
            &format!("/api/v1/resources/{kept}/keep"),
            &admin,
            json!({"reason": "demo on Friday"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // The preview: four stops due in enforce, one in dry-run; the kept
    // one is left alone and says why.
    let p = server.get("/api/v1/policies/preview").await;
    let now: Vec<&Value> = p["now_items"].as_array().unwrap().iter().collect();
    assert_eq!(now.len(), 5, "{p}");
    assert_eq!(
        now.iter()
            .filter(|d| d["outcome"] == "would (dry-run)")
            .count(),
        1,
        "{p}"
    );
    let hand = now.iter().find(|d| d["name"] == "hand-0").unwrap();
    assert_eq!(hand["untrusted_keep"], "mine", "{hand}");
    assert!(
        p["exempt"][0]["why"]
            .as_str()
            .unwrap()
            .contains("kept by admin"),
        "{p}"
    );
    // The CLI shows the same preview.
    let out = server.cli_as(&admin, &["policies", "preview", "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["now_items"].as_array().unwrap().len(), 5);
    // A change can be previewed before it is saved; a bad one is refused.
    let p2 = server.get("/api/v1/policies/preview?mode=dry-run").await;
    assert_eq!(
        p2["now_items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["mode"] == "dry-run")
            .count(),
        5,
        "{p2}"
    );
    let (s, e) = server
        .send(
            Method::GET,
            "/api/v1/policies/preview?action=explode",
            &admin,
            Value::Null,
            None,
        )
        .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("action")),
        "{e}"
    );
    let (s, _) = server
        .send(
            Method::GET,
            "/api/v1/policies/preview",
            &member,
            Value::Null,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Four stops exceed the cap of three: the pass acts on none, alerts
    // the admins and waits.
    let held = pass(&server, &admin).await;
    assert_eq!(held["state"], "held", "{held}");
    assert_eq!(held["counts"]["held"], 4, "{held}");
    assert_eq!(held["counts"]["would"], 1, "{held}");
    for id in &ids {
        assert_eq!(aws.ec2.instance_state(id).await.unwrap(), "running");
    }
    let alerts: Vec<Value> = notifications(&server)
        .await
        .into_iter()
        .filter(|n| n["kind"] == "policy.held")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["recipient"], "admins");
    // Later passes wait too, without another alert.
    let waiting = pass(&server, &admin).await;
    assert_eq!(waiting["state"], "done", "{waiting}");
    assert_eq!(waiting["counts"]["deferred"], 4, "{waiting}");
    assert!(
        waiting["note"].as_str().unwrap().contains("held"),
        "{waiting}"
    );

    // One is extended meanwhile: the confirmed pass re-checks and skips it.
    let extended = id_of(&instances, "cap-1");
    let (s, v) = server
        .send(
            Method::POST,
            &format!("/api/v1/resources/{extended}/expiry"),
            &admin,
            json!({"in": "3d"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Another is extended behind skyhold's back: only the re-read right
    // before acting can see it.
    let later = skyhold_core::rfc3339(skyhold_core::now_millis() + 48 * H);
    aws.ec2
        .set_tag(&ids[2], "skyhold:expires-at", &later)
        .await
        .unwrap();
    let held_id = held["id"].as_i64().unwrap();
    let (s, e) = server
        .send(
            Method::POST,
            &format!("/api/v1/policies/runs/{held_id}/confirm"),
            &member,
            json!({}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, done) = server
        .send(
            Method::POST,
            &format!("/api/v1/policies/runs/{held_id}/confirm"),
            &admin,
            json!({}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["cause"], "confirm", "{done}");
    assert_eq!(done["counts"]["stopped"], 2, "{done}");
    assert_eq!(done["counts"]["skipped"], 2, "{done}");
    assert_eq!(
        plan_of(&done, "cap-1")[0]["outcome"],
        "skipped: no longer due since the pass was held",
        "{done}"
    );
    let reread = plan_of(&done, "cap-2")[0]["outcome"].as_str().unwrap();
    assert!(
        reread.starts_with("skipped: no longer due after a re-read"),
        "{done}"
    );
    for (id, state) in [
        (&ids[1], "running"),
        (&ids[2], "running"),
        (&ids[3], "stopped"),
        (&hand_ids[0], "stopped"),
    ] {
        assert_eq!(aws.ec2.instance_state(id).await.unwrap(), state, "{id}");
    }
    // The kept one runs; dry-run acted on nothing.
    assert_eq!(aws.ec2.instance_state(&ids[0]).await.unwrap(), "running");
    assert_eq!(
        aws_dry.ec2.instance_state(&dry_ids[0]).await.unwrap(),
        "running"
    );
    // Confirming twice is refused; the runs list shows both.
    let (s, e) = server
        .send(
            Method::POST,
            &format!("/api/v1/policies/runs/{held_id}/confirm"),
            &admin,
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_state")),
        "{e}"
    );
    let runs = server.get("/api/v1/policies/runs").await;
    let states: Vec<&str> = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["done", "done", "confirmed"], "{runs}");
    server.stop().await;
}
