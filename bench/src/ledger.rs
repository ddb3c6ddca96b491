//! (h) the usage ledger and spend reports: 90 days of ledger for the
//! query benchmark's resources, built the way a server builds it (four
//! listings a month apart through `apply_listing` and the ledger's
//! reconciler, a third of the instances changing state at each), then the
//! p50/p99 server time of spend reports over HTTP.

use crate::{bench_accounts, fresh_db, gen_scope, percentile, sample, spawn_server, Lcg, REGIONS};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use skyhold_core::ledger::BILLABLE_KINDS;
use skyhold_core::{AccountName, ObservedResource, ResourceKind};
use skyhold_store::Store;
use std::time::Instant;

const DAY: i64 = 86_400_000;

pub async fn spend_bench(backend: &str, total: usize, requests: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = fresh_db(backend, dir.path(), "spend").await?;
    let store = Store::connect(&url).await?;
    let now = skyhold_core::now_millis();
    let passes = [now - 90 * DAY, now - 60 * DAY, now - 30 * DAY, now - DAY];
    let per_scope = total / 20;
    let t = Instant::now();
    let (mut opened, mut closed) = (0usize, 0usize);
    for (pi, at) in passes.iter().enumerate() {
        let mut rng = Lcg(42);
        let mut scope = 0;
        for a in bench_accounts() {
            let account = AccountName::parse(&a).map_err(anyhow::Error::msg)?;
            for region in REGIONS {
                let mut all = gen_scope(&mut rng, scope, per_scope, now);
                for (i, o) in all.iter_mut().enumerate() {
                    // Everything exists from before the first listing; a
                    // third of the instances changes state at each.
                    o.created_at = Some(passes[0] - (i as i64 % 1000) * 60_000);
                    if o.kind == ResourceKind::Instance {
                        o.state = if (i + pi) % 3 == 0 {
                            "stopped"
                        } else {
                            "running"
                        }
                        .into();
                    }
                }
                for kind in BILLABLE_KINDS {
                    let part: Vec<ObservedResource> =
                        all.iter().filter(|o| o.kind == kind).cloned().collect();
                    store
                        .apply_listing(&account, region, kind, &part, *at)
                        .await?;
                    let s = store.reconcile_ledger(&account, region, kind, *at).await?;
                    opened += s.opened;
                    closed += s.closed;
                }
                scope += 1;
            }
        }
    }
    let seed_secs = t.elapsed().as_secs_f64();
    store.analyze().await?;
    store.close().await;

    let server = spawn_server(&url, dir.path())?;
    let http = reqwest::Client::new();
    let tok: Value = http
        .post(format!("{}/api/v1/auth/token", server.url))
        .json(&json!({"username": "admin", "password": "bench-password"}))
        .send()
        .await?
        .json()
        .await?;
    let token = tok["token"].as_str().context("token")?.to_owned();
    let probes = [
        (
            "by owner and account, 90 days (target)",
            "group_by=owner,account&from=90d",
        ),
        ("by owner and account, this month", "group_by=owner,account"),
        (
            "by account and kind, 30 days",
            "group_by=account,kind&from=30d",
        ),
        (
            "by owner, one user, 90 days",
            "group_by=owner&from=90d&user=alice",
        ),
        ("by day, 90 days (chart)", "group_by=day&from=90d"),
    ];
    println!("## (h) spend reports from the usage ledger — {backend}\n");
    println!(
        "{total} resources as in (b); 90 days of ledger built by 4 listings a month apart through the \
         ledger's reconciler ({opened} intervals opened, {closed} closed) in {seed_secs:.1} s; \
         {requests} requests per row after 20 warm-up requests; server time from `server-timing`.\n"
    );
    println!("| report | p50 ms | p99 ms | rows |\n|---|---:|---:|---:|");
    for (label, q) in probes {
        let url = format!("{}/api/v1/reports/spend?{q}", server.url);
        for _ in 0..20 {
            sample(&http, &url, &token).await?;
        }
        let mut server_ms = Vec::with_capacity(requests);
        for _ in 0..requests {
            server_ms.push(sample(&http, &url, &token).await?.0);
        }
        server_ms.sort_by(f64::total_cmp);
        let body: Value = http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        println!(
            "| {label} | {:.1} | {:.1} | {} |",
            percentile(&server_ms, 0.5),
            percentile(&server_ms, 0.99),
            body["rows"].as_array().map_or(0, Vec::len)
        );
    }
    println!();
    Ok(())
}
