//! The usage ledger and spend: intervals built from listings with known
//! times (a stop seen after an outage, a termination missed between two
//! syncs, one seen terminated), closed at the best known time, idempotent
//! on reruns; spend within 1 % of hours × list price; and the ledger
//! following a listing from moto and a stop through skyhold.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skyhold_core::prices::PriceTable;
use skyhold_core::{AccountName, Millis, ObservedResource, ResourceKind};

const H: Millis = 3_600_000;
const REGION: &str = "us-east-1";

fn instance(id: &str, owner: &str, itype: &str, state: &str, launched: Millis) -> ObservedResource {
    let mut o = ObservedResource::new(ResourceKind::Instance, id);
    o.name = id.to_owned();
    o.state = state.to_owned();
    o.rtype = itype.to_owned();
    o.owner = owner.to_owned();
    o.created_at = Some(launched);
    o.tags.insert("skyhold:owner".into(), owner.into());
    o
}

fn with_time(mut o: ObservedResource, key: &str, at: Millis) -> ObservedResource {
    o.attributes
        .insert(key.into(), json!(skyhold_core::rfc3339(at)));
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_is_hours_times_list_price_even_when_observations_are_missed() {
    let server = TestServer::start(&[]).await;
    let store = &server.app().store;
    let acct = AccountName::parse("books").unwrap();
    // A round hour well in the past, so "now" never clips the intervals.
    let t0 = (skyhold_core::now_millis() / H - 48) * H;
    let sync = |items: Vec<ObservedResource>, at: Millis| {
        let acct = acct.clone();
        async move {
            store
                .apply_listing(&acct, REGION, ResourceKind::Instance, &items, at)
                .await
                .unwrap();
            store
                .reconcile_ledger(&acct, REGION, ResourceKind::Instance, at)
                .await
                .unwrap()
        }
    };
    let a = |state| instance("i-a", "ann", "t3.micro", state, t0);
    let b = |state| instance("i-b", "bob", "m5.large", state, t0);
    let c = |state| instance("i-c", "ann", "m5.large", state, t0 + H);
    // Two syncs see i-a and i-b running, the second also i-c (launched
    // between them).
    let s1 = sync(vec![a("running"), b("running")], t0 + H / 2).await;
    assert_eq!((s1.opened, s1.closed), (2, 0));
    let s = sync(vec![a("running"), b("running"), c("running")], t0 + 2 * H).await;
    assert_eq!((s.opened, s.closed), (1, 0));
    // Rerunning the ledger over the same listing changes nothing.
    let again = store
        .reconcile_ledger(&acct, REGION, ResourceKind::Instance, t0 + 2 * H)
        .await
        .unwrap();
    assert_eq!((again.opened, again.closed), (0, 0));
    // An outage of six hours. Meanwhile i-a stopped at t0+4h, i-b was
    // terminated and vanished, i-c is seen terminated at t0+3h.
    let s = sync(
        vec![
            with_time(a("stopped"), "stopped_at", t0 + 4 * H),
            with_time(c("terminated"), "terminated_at", t0 + 3 * H),
        ],
        t0 + 8 * H,
    )
    .await;
    assert_eq!((s.opened, s.closed), (0, 3));
    let s = sync(
        vec![with_time(a("stopped"), "stopped_at", t0 + 4 * H)],
        t0 + 9 * H,
    )
    .await;
    assert_eq!((s.opened, s.closed), (0, 0));

    // The rollup written pass by pass is the one built from the ledger.
    let incremental = store.ledger_rollup_dump().await.unwrap();
    assert!(
        incremental.iter().any(|l| l.starts_with("day ")),
        "{incremental:?}"
    );
    store.rebuild_ledger_rollup().await.unwrap();
    assert_eq!(store.ledger_rollup_dump().await.unwrap(), incremental);

    // Each interval closed at the best known time, saying how.
    let ids: Vec<Value> = server.all("kind=instance&include_deleted=true").await;
    let id_of = |p: &str| {
        ids.iter()
            .find(|r| r["provider_id"] == p)
            .unwrap_or_else(|| panic!("{p} in {ids:?}"))["id"]
            .as_i64()
            .unwrap()
    };
    let ledger = |p: &str| {
        let id = id_of(p);
        let server = &server;
        async move { server.get(&format!("/api/v1/ledger?resource={id}")).await["items"].clone() }
    };
    let la = ledger("i-a").await;
    assert_eq!(la.as_array().unwrap().len(), 1, "{la}");
    assert_eq!(la[0]["started_at"], t0);
    assert_eq!(la[0]["start_how"], "transition_time");
    assert_eq!(
        (la[0]["ended_at"].as_i64(), la[0]["end_how"].as_str()),
        (Some(t0 + 4 * H), Some("transition_time"))
    );
    let lb = ledger("i-b").await;
    assert_eq!(
        (lb[0]["ended_at"].as_i64(), lb[0]["end_how"].as_str()),
        (Some(t0 + 2 * H), Some("last_seen"))
    );
    let lc = ledger("i-c").await;
    assert_eq!(lc[0]["started_at"], t0 + H);
    assert_eq!(
        (lc[0]["ended_at"].as_i64(), lc[0]["end_how"].as_str()),
        (Some(t0 + 3 * H), Some("transition_time"))
    );

    // Spend: 4 h of t3.micro for ann, 2 h of m5.large for ann (i-c) and 2
    // for bob, at the shipped list prices.
    let list = |t: &str| PriceTable::builtin().instance_hour(REGION, t).unwrap();
    let want_ann = 4.0 * list("t3.micro") + 2.0 * list("m5.large");
    let want_bob = 2.0 * list("m5.large");
    let from = skyhold_core::rfc3339(t0 - H);
    let to = skyhold_core::rfc3339(t0 + 10 * H);
    let r = server
        .get(&format!(
            "/api/v1/reports/spend?group_by=owner,account&from={from}&to={to}"
        ))
        .await;
    let row = |owner: &str| {
        r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["fields"]["owner"] == owner)
            .unwrap_or_else(|| panic!("{owner} in {r}"))
            .clone()
    };
    let close = |got: f64, want: f64| (got - want).abs() <= want * 0.01;
    assert!(
        close(row("ann")["usd"].as_f64().unwrap(), want_ann),
        "{r} vs {want_ann}"
    );
    assert!(
        close(row("bob")["usd"].as_f64().unwrap(), want_bob),
        "{r} vs {want_bob}"
    );
    assert_eq!(row("ann")["hours"], 6.0);
    assert_eq!(row("ann")["fields"]["account"], "books");
    assert!(r["unpriced"].as_array().unwrap().is_empty(), "{r}");

    // By day, the same total; as CSV, one line per owner.
    let by_day = server
        .get(&format!(
            "/api/v1/reports/spend?group_by=day&from={from}&to={to}"
        ))
        .await;
    assert!(
        close(by_day["total_usd"].as_f64().unwrap(), want_ann + want_bob),
        "{by_day}"
    );
    let (s, csv) = server
        .request(
            Method::GET,
            &format!("/api/v1/reports/spend?group_by=owner&from={from}&to={to}&format=csv"),
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let csv = csv.as_str().unwrap_or_default().to_owned();
    assert!(csv.starts_with("owner,hours,usd\n"), "{csv}");
    assert_eq!(csv.lines().count(), 3, "{csv}");

    // A member sees only their own.
    let ann = server.user_token("ann", skyhold_core::Role::Member).await;
    let (s, mine) = server
        .send(
            Method::GET,
            &format!("/api/v1/reports/spend?group_by=owner&from={from}&to={to}"),
            &ann,
            Value::Null,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{mine}");
    let owners: Vec<&str> = mine["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fields"]["owner"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["ann"]);

    // By group: ann's hours count for her group, bob's for none.
    for (path, body) in [
        ("/api/v1/groups", json!({"name": "dev"})),
        ("/api/v1/groups/dev/members", json!({"username": "ann"})),
    ] {
        let (s, v) = server
            .send(Method::POST, path, &server.token, body, None)
            .await;
        assert!(s.is_success(), "{path}: {v}");
    }
    let by_group = server
        .get(&format!(
            "/api/v1/reports/spend?group_by=group&from={from}&to={to}"
        ))
        .await;
    let group_usd = |g: &str| {
        by_group["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["fields"]["group"] == g)
            .unwrap_or_else(|| panic!("{g:?} in {by_group}"))["usd"]
            .as_f64()
            .unwrap()
    };
    assert!(close(group_usd("dev"), want_ann), "{by_group}");
    assert!(close(group_usd(""), want_bob), "{by_group}");
    // By day over forty days (summed from the days, not the running
    // totals): the same total, all of it on the days of the intervals.
    let long = server
        .get(&format!(
            "/api/v1/reports/spend?group_by=day&from={}&to={to}",
            skyhold_core::rfc3339(t0 - 40 * 24 * H)
        ))
        .await;
    assert!(
        close(long["total_usd"].as_f64().unwrap(), want_ann + want_bob),
        "{long}"
    );
    assert!(long["rows"].as_array().unwrap().len() <= 2, "{long}");

    // Bad parameters name themselves.
    let (s, e) = server
        .send(
            Method::GET,
            "/api/v1/reports/spend?group_by=colour",
            &server.token,
            Value::Null,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e.to_string().contains("group_by"), "{e}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_through_skyhold_closes_the_interval_at_the_action() {
    let moto = shared_moto();
    let spec = AccountSpec::new("ledg", moto, &[REGION]).with_kinds(&["instance", "volume"]);
    let ec2 = ec2(moto, &spec.account_id, REGION).await;
    ec2.launch(1, 1, "ledg-web", &[("skyhold:owner", "ann")])
        .await
        .unwrap();
    let server = TestServer::start(std::slice::from_ref(&spec)).await;
    server.sync().await;
    let inst = server.all("kind=instance").await;
    let id = inst[0]["id"].as_i64().unwrap();
    let l = server.get(&format!("/api/v1/ledger?resource={id}")).await["items"].clone();
    assert_eq!(l.as_array().unwrap().len(), 1, "{l}");
    assert!(l[0]["ended_at"].is_null());
    assert_eq!(l[0]["product"], "instance-hour");
    assert_eq!(l[0]["owner"], "ann");
    // Volumes are in the ledger too (GiB-months).
    let vols = server.all("kind=volume").await;
    assert!(!vols.is_empty());
    let vid = vols[0]["id"].as_i64().unwrap();
    let lv = server.get(&format!("/api/v1/ledger?resource={vid}")).await["items"].clone();
    assert_eq!(lv[0]["product"], "volume-gib-month", "{lv}");

    let (s, a) = server
        .send(
            Method::POST,
            &format!("/api/v1/resources/{id}/actions"),
            &server.token,
            json!({"action": "stop"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{a}");
    let l = server.get(&format!("/api/v1/ledger?resource={id}")).await["items"].clone();
    assert_eq!(l[0]["end_how"], "action", "{l}");
    let ended = l[0]["ended_at"].as_i64().unwrap();
    let started =
        chrono::DateTime::parse_from_rfc3339(a["started_at"].as_str().unwrap_or_default())
            .map(|t| t.timestamp_millis())
            .unwrap_or(ended);
    assert!((ended - started).abs() < 1000, "{a} {l}");
    // The next sync changes nothing (the stop is already recorded).
    server.sync().await;
    let again = server.get(&format!("/api/v1/ledger?resource={id}")).await["items"].clone();
    assert_eq!(again, l);
    // The rollup the action and the syncs kept is the one the ledger gives.
    let store = &server.app().store;
    let incremental = store.ledger_rollup_dump().await.unwrap();
    store.rebuild_ledger_rollup().await.unwrap();
    assert_eq!(store.ledger_rollup_dump().await.unwrap(), incremental);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_offer_prices_and_overrides_price_the_ledger() {
    let server = TestServer::start_with(
        &[],
        "[[prices]]\nproduct = \"volume-gib-month\"\nregion = \"us-east-1\"\ntype = \"gp3\"\nusd = 0.073\n",
    )
    .await;
    let app = server.app();
    let offer = server.db.dir.path().join("offer.csv");
    std::fs::write(
        &offer,
        "\"FormatVersion\",\"v1.0\"\n\
         \"SKU\",\"TermType\",\"Unit\",\"PricePerUnit\",\"Currency\",\"Product Family\",\"Region Code\",\"Instance Type\",\"Operating System\",\"Tenancy\",\"Pre Installed S/W\",\"Volume API Name\",\"usageType\"\n\
         \"A\",\"OnDemand\",\"Hrs\",\"1.5\",\"USD\",\"Compute Instance\",\"us-east-1\",\"t3.micro\",\"Linux\",\"Shared\",\"NA\",\"\",\"BoxUsage:t3.micro\"\n\
         \"B\",\"OnDemand\",\"GB-Mo\",\"0.08\",\"USD\",\"Storage\",\"us-east-1\",\"\",\"\",\"\",\"\",\"gp3\",\"EBS:VolumeUsage.gp3\"\n\
         \"C\",\"OnDemand\",\"Hrs\",\"9.9\",\"USD\",\"Compute Instance\",\"us-east-1\",\"t3.micro\",\"Windows\",\"Shared\",\"NA\",\"\",\"BoxUsage:t3.micro\"\n",
    )
    .unwrap();
    let config = server.db.dir.path().join("skyhold.toml");
    let out = server.cli(
        &[
            "prices",
            "import",
            offer.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2 prices"));
    // A file that is not an offer file is refused, naming why.
    let bad = server.db.dir.path().join("bad.csv");
    std::fs::write(&bad, "a,b\n1,2\n").unwrap();
    let out = server.cli(
        &[
            "prices",
            "import",
            bad.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a price list offer file"));

    use skyhold_core::prices::Product;
    assert_eq!(app.reload_prices().await.unwrap(), 2);
    // Imported over shipped; the config's override over imported.
    assert_eq!(
        app.price(Product::InstanceHour, "x", REGION, "t3.micro"),
        Some(1.5)
    );
    assert_eq!(
        app.price(Product::VolumeGibMonth, "x", REGION, "gp3"),
        Some(0.073)
    );
    assert_eq!(
        app.price(Product::InstanceHour, "x", REGION, "t9.nonesuch"),
        None
    );

    // Two hours of t3.micro at the imported price.
    let acct = AccountName::parse("books").unwrap();
    let now = app.now();
    let t0 = (now / H - 10) * H;
    app.store
        .apply_listing(
            &acct,
            REGION,
            ResourceKind::Instance,
            &[instance("i-p", "ann", "t3.micro", "running", t0)],
            t0 + H,
        )
        .await
        .unwrap();
    app.store
        .reconcile_ledger(&acct, REGION, ResourceKind::Instance, t0 + H)
        .await
        .unwrap();
    // Open, it counts up to now: the part after the last pass is added
    // to the rollup's at read time.
    let before = app.now();
    let r = server
        .get(&format!(
            "/api/v1/reports/spend?group_by=owner&from={}",
            skyhold_core::rfc3339(t0)
        ))
        .await;
    let after = app.now();
    let hours = r["rows"][0]["hours"].as_f64().unwrap();
    let (lo, hi) = (
        (before - t0) as f64 / H as f64,
        (after - t0) as f64 / H as f64,
    );
    assert!(
        hours >= lo - 0.001 && hours <= hi + 0.001,
        "{hours} not in {lo}..{hi}: {r}"
    );
    let stopped = with_time(
        instance("i-p", "ann", "t3.micro", "stopped", t0),
        "stopped_at",
        t0 + 2 * H,
    );
    app.store
        .apply_listing(
            &acct,
            REGION,
            ResourceKind::Instance,
            &[stopped],
            t0 + 3 * H,
        )
        .await
        .unwrap();
    app.store
        .reconcile_ledger(&acct, REGION, ResourceKind::Instance, t0 + 3 * H)
        .await
        .unwrap();
    let r = server
        .get(&format!(
            "/api/v1/reports/spend?group_by=owner&from={}&to={}",
            skyhold_core::rfc3339(t0),
            skyhold_core::rfc3339(t0 + 2 * H)
        ))
        .await;
    assert_eq!(r["total_usd"], 3.0, "{r}");
    server.stop().await;
}

/// Reports over ranges that start inside a key's days read its running
/// total at the edge; the live part counts the open interval up to now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_inside_the_ledger_read_the_running_totals_at_their_edges() {
    use skyhold_store::{UsageField, UsageFilter};
    const D: Millis = 24 * H;
    let server = TestServer::start(&[]).await;
    let store = &server.app().store;
    let acct = AccountName::parse("books").unwrap();
    let now = skyhold_core::now_millis();
    let d0 = now - now.rem_euclid(D) - 20 * D;
    let pass = |state: &'static str, at: Millis, stopped: Option<Millis>| {
        let acct = acct.clone();
        async move {
            let mut o = instance("i-long", "ann", "m5.large", state, d0 + H);
            if let Some(t) = stopped {
                o = with_time(o, "stopped_at", t);
            }
            store
                .apply_listing(&acct, REGION, ResourceKind::Instance, &[o], at)
                .await
                .unwrap();
            store
                .reconcile_ledger(&acct, REGION, ResourceKind::Instance, at)
                .await
                .unwrap();
        }
    };
    // Running from d0+1h, seen at d0+2h and d0+3d, stopped at d0+5d+6h,
    // seen stopped at d0+6d; a second one runs from d0+10d and is open.
    pass("running", d0 + 2 * H, None).await;
    pass("running", d0 + 3 * D, None).await;
    pass("stopped", d0 + 6 * D, Some(d0 + 5 * D + 6 * H)).await;
    let open = instance("i-open", "ann", "t3.micro", "running", d0 + 10 * D);
    store
        .apply_listing(&acct, REGION, ResourceKind::Instance, &[open], d0 + 11 * D)
        .await
        .unwrap();
    store
        .reconcile_ledger(&acct, REGION, ResourceKind::Instance, d0 + 11 * D)
        .await
        .unwrap();
    let hours = |rtype: &'static str, from: Millis, to: Millis| async move {
        store
            .usage(
                &[UsageField::Owner],
                &[("r".into(), from, to)],
                &UsageFilter::default(),
                now,
            )
            .await
            .unwrap()
            .iter()
            .filter(|b| b.rtype == rtype)
            .map(|b| b.hours)
            .sum::<f64>()
    };
    // Days 2 to 4 whole, then 6 h of day 5.
    assert_eq!(hours("m5.large", d0 + 2 * D, d0 + 9 * D).await, 78.0);
    // Day 1 to day 3: 72 h; from the first day: all 5 days 5 h.
    assert_eq!(hours("m5.large", d0 + D, d0 + 4 * D).await, 72.0);
    assert_eq!(hours("m5.large", d0, now).await, 125.0);
    // The open one: from d0+10d to now, whatever the range's start.
    let want = (now - (d0 + 10 * D)) as f64 / H as f64;
    for from in [d0 + 10 * D, d0 + 12 * D - 1] {
        let got = hours("t3.micro", from - from.rem_euclid(D), now).await;
        let want = if from > d0 + 10 * D {
            (now - (d0 + 11 * D)) as f64 / H as f64
        } else {
            want
        };
        assert!((got - want).abs() < 0.001, "{got} vs {want}");
    }
    // Rebuilt from the ledger, the same.
    let incremental = store.ledger_rollup_dump().await.unwrap();
    store.rebuild_ledger_rollup().await.unwrap();
    assert_eq!(store.ledger_rollup_dump().await.unwrap(), incremental);
    server.stop().await;
}

/// A pass reads only the rows written since the last one: a row a
/// targeted refresh rewrote between two listings (which then find it
/// unchanged, so they do not write it) is still reconciled by the next
/// pass, and a pass over rows nobody wrote since changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_reconciles_rows_a_refresh_wrote_since_the_last_one() {
    let server = TestServer::start(&[]).await;
    let store = &server.app().store;
    let acct = AccountName::parse("books").unwrap();
    let t0 = (skyhold_core::now_millis() / H - 48) * H;
    let pass = |items: Vec<ObservedResource>, at: Millis| {
        let acct = acct.clone();
        async move {
            store
                .apply_listing(&acct, REGION, ResourceKind::Instance, &items, at)
                .await
                .unwrap();
            store
                .reconcile_ledger(&acct, REGION, ResourceKind::Instance, at)
                .await
                .unwrap()
        }
    };
    let running = instance("i-r", "ann", "t3.micro", "running", t0);
    let s = pass(vec![running.clone()], t0 + H).await;
    assert_eq!((s.opened, s.closed), (1, 0));
    // Nothing written since: nothing to do.
    let s = pass(vec![running], t0 + 2 * H).await;
    assert_eq!((s.opened, s.closed), (0, 0));
    // A refresh sees it stopped; the next listing sees the same.
    let stopped = with_time(
        instance("i-r", "ann", "t3.micro", "stopped", t0),
        "stopped_at",
        t0 + 2 * H + H / 2,
    );
    let id = store
        .resources_by_provider_ids(
            &acct,
            Some(REGION),
            Some(ResourceKind::Instance),
            &["i-r".to_owned()],
        )
        .await
        .unwrap()[0]
        .id;
    assert!(store
        .apply_observed(id, Some(&stopped), t0 + 2 * H + H / 2)
        .await
        .unwrap());
    let s = pass(vec![stopped], t0 + 3 * H).await;
    assert_eq!((s.opened, s.closed), (0, 1));
    let ledger = store.ledger_of(id).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].ended_at, Some(t0 + 2 * H + H / 2));
}
