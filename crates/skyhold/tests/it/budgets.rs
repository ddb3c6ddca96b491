//! Money budgets: spend from the ledger against a user's budget; a spent
//! blocking budget refuses a launch naming itself, a warning budget lets
//! it through; warnings at 80 % and 100 % once a month. The injected clock
//! puts "now" mid-month, so the month's spend is the seeded hours'.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use skyhold_aws::testkit::emulator_account;
use skyhold_aws::AwsProvider;
use skyhold_core::{AccountName, ObservedResource, Provider, ResourceKind, Role};

const REGION: &str = "us-east-1";
const H: i64 = 3_600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_refuses_launches_and_warns_once() {
    let moto = shared_moto();
    let spec = AccountSpec::new("bud", moto, &[REGION]).with_kinds(&["instance"]);
    let server = TestServer::start_with(
        std::slice::from_ref(&spec),
        "[policies]\ninterval = \"off\"\n",
    )
    .await;
    let admin = server.token.clone();
    let app = server.app();
    // Mid next month, whatever day the test runs on.
    let now = app.now();
    let mid = skyhold::app::month_start(now + 32 * 24 * H) + 14 * 24 * H;
    app.clock.advance(mid - now);
    let now = app.now();
    // ann has had an m5.large running for ten hours.
    let acct = AccountName::parse("bud").unwrap();
    let mut o = ObservedResource::new(ResourceKind::Instance, "i-budget");
    o.state = "running".into();
    o.rtype = "m5.large".into();
    o.owner = "ann".into();
    o.created_at = Some(now - 10 * H);
    app.store
        .apply_listing(&acct, REGION, ResourceKind::Instance, &[o], now)
        .await
        .unwrap();
    app.store
        .reconcile_ledger(&acct, REGION, ResourceKind::Instance, now)
        .await
        .unwrap();
    let spent = 10.0
        * skyhold_core::prices::PriceTable::builtin()
            .instance_hour(REGION, "m5.large")
            .unwrap();
    let ann = server.user_token("ann", Role::Member).await;

    // A blueprint ann may launch from.
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/blueprints",
            &admin,
            json!({"name": "box", "account": "bud", "region": REGION,
                   "image": "ami-12c6146b", "instance_types": ["t3.*"],
                   "default_type": "t3.micro", "login_user": "ubuntu"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/grants",
            &admin,
            json!({"subject": "user:ann", "object": "blueprint:box", "level": "operate"}),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");

    // Bad budgets name their field.
    for (body, field) in [
        (
            json!({"subject": "user:nobody", "monthly_usd": 1.0}),
            "subject",
        ),
        (
            json!({"subject": "user:ann", "monthly_usd": -1.0}),
            "monthly_usd",
        ),
        (
            json!({"subject": "user:ann", "monthly_usd": 1.0, "on_exceed": "panic"}),
            "on_exceed",
        ),
    ] {
        let (s, e) = server
            .send(Method::POST, "/api/v1/budgets", &admin, body, None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    // A default of 10x the spend: 10 %, no warning; ann's override below
    // it: spent.
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/budgets",
            &admin,
            json!({"subject": "default:user", "monthly_usd": spent * 10.0}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(app.run_budget_pass().await.unwrap(), 0);
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/budgets",
            &admin,
            json!({"subject": "user:ann", "monthly_usd": spent * 0.9}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, mine) = server
        .send(
            Method::GET,
            "/api/v1/me/budgets",
            &ann,
            serde_json::Value::Null,
            None,
        )
        .await;
    let b = &mine["items"][0];
    assert_eq!(b["subject"], "user:ann", "{mine}");
    assert!(
        (b["spend_usd"].as_f64().unwrap() - spent).abs() < 0.011,
        "{mine} vs {spent}"
    );
    assert!(b["percent"].as_f64().unwrap() > 100.0, "{mine}");

    // The launch is refused, naming the budget; the preview says so first.
    let form = json!({"blueprint": "box", "name": "web"});
    let mut dry = form.clone();
    dry["dry_run"] = true.into();
    let (s, p) = server
        .send(Method::POST, "/api/v1/launches", &ann, dry, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["budget_exceeded"]["subject"], "user:ann", "{p}");
    assert!(p["month_cost_usd"].as_f64().unwrap() > 0.0, "{p}");
    let (s, e) = server
        .send(Method::POST, "/api/v1/launches", &ann, form.clone(), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "budget_exceeded", "{e}");
    assert_eq!(e["error"]["budget"]["source"], "user:ann", "{e}");
    assert!(
        (e["error"]["budget"]["limit_usd"].as_f64().unwrap() - spent * 0.9).abs() < 1e-9,
        "{e}"
    );
    let listed = AwsProvider::new(emulator_account(moto, &spec.account_id))
        .list(REGION, ResourceKind::Instance)
        .await
        .unwrap();
    assert!(listed.is_empty(), "nothing was launched: {listed:?}");

    // One warning at 100 %, not repeated.
    assert_eq!(app.run_budget_pass().await.unwrap(), 1);
    assert_eq!(app.run_budget_pass().await.unwrap(), 0);
    let notes = server.get("/api/v1/notifications?limit=20").await;
    let w = notes["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "budget.warning")
        .unwrap_or_else(|| panic!("{notes}"))
        .clone();
    assert!(
        w["body"]["reason"]
            .as_str()
            .unwrap()
            .contains("further launches are refused"),
        "{w}"
    );

    // A budget that only warns lets the launch through.
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/budgets",
            &admin,
            json!({"subject": "user:ann", "monthly_usd": spent * 0.9, "on_exceed": "warn"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, l) = server
        .send(Method::POST, "/api/v1/launches", &ann, form, None)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let web = l["instances"][0]["provider_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{l}"))
        .to_owned();

    // (A sync sees it running, and drops the seeded row moto never had.)
    server.sync().await;

    // A budget that stops: an hour after its 100 % warning (sent above),
    // ann's running instances are stopped through the pipeline, once.
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/budgets",
            &admin,
            json!({"subject": "user:ann", "monthly_usd": spent * 0.9, "on_exceed": "stop"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let budget_pass = || async {
        let (s, v) = server
            .send(
                Method::POST,
                "/api/v1/policies/runs?policy=budget",
                &admin,
                json!({}),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    };
    let run = budget_pass().await;
    assert!(
        run["counts"].get("stopped").is_none(),
        "within the grace period: {run}"
    );
    app.clock.advance(H);
    let run = budget_pass().await;
    assert_eq!(run["counts"]["stopped"], 1, "{run}");
    let ec2 = skyhold_aws::testkit::Ec2::connect(moto, &spec.account_id, REGION)
        .await
        .unwrap();
    assert_eq!(ec2.instance_state(&web).await.unwrap(), "stopped");
    let audit = server
        .get("/api/v1/audit?action=resource.stop&limit=5")
        .await;
    assert_eq!(
        audit["items"][0]["actor"], "system:policy:budget",
        "{audit}"
    );
    assert!(
        audit["items"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("budget: user:ann spent $"),
        "{audit}"
    );
    let again = budget_pass().await;
    assert!(again["counts"].get("stopped").is_none(), "{again}");
    server.stop().await;
}
