//! (i) policy passes at scale: the query benchmark's resources (100,000
//! by default) seeded straight into the store, every tenth expirable one
//! tagged to expire within the next two days, CloudWatch CPU datapoints
//! put in moto for 5,000 running instances; then one expiry pass and one
//! idle pass, in process. Skyhold's time is the pass's wall time less the
//! time it waited for GetMetricData (reported by the idle pass).

use crate::{bench_accounts, fresh_db, gen_scope, Lcg, Moto, REGIONS};
use anyhow::{anyhow, Result};
use skyhold_core::{AccountName, ObservedResource, ResourceKind};
use skyhold_store::Store;
use std::time::Instant;

fn account_id(i: usize) -> String {
    format!("31000000000{i}")
}

pub async fn policy_bench(backend: &str, total: usize) -> Result<()> {
    let moto = Moto::start()?;
    let dir = tempfile::tempdir()?;
    let url = fresh_db(backend, dir.path(), "policy").await?;
    let store = Store::connect(&url).await?;
    let now = skyhold_core::now_millis();
    let per_scope = total / 20;
    let mut rng = Lcg(42);
    let (mut scope, mut expiring, mut metered) = (0, 0usize, Vec::new());
    let t = Instant::now();
    for (ai, a) in bench_accounts().iter().enumerate() {
        let account = AccountName::parse(a).map_err(anyhow::Error::msg)?;
        for region in REGIONS {
            let mut all = gen_scope(&mut rng, scope, per_scope, now);
            for (i, o) in all.iter_mut().enumerate() {
                if skyhold_core::expiry::expirable(o.kind) && i % 10 == 0 {
                    let at = now + ((i as i64 * 7_919) % (48 * 3_600)) * 1000;
                    o.tags
                        .insert("skyhold:expires-at".into(), skyhold_core::rfc3339(at));
                    expiring += 1;
                }
                if o.kind == ResourceKind::Instance
                    && o.state == "running"
                    && metered.len() < 5_000
                    && i % 3 == 0
                {
                    metered.push((ai, region, o.provider_id.clone()));
                }
            }
            for kind in ResourceKind::ALL {
                let part: Vec<ObservedResource> =
                    all.iter().filter(|o| o.kind == kind).cloned().collect();
                store
                    .apply_listing(&account, region, kind, &part, now)
                    .await?;
            }
            scope += 1;
        }
    }
    let seed_secs = t.elapsed().as_secs_f64();
    store.analyze().await?;
    store.close().await;
    // An hour of five-minute datapoints at 1 % CPU for each metered instance.
    let t = Instant::now();
    let points: Vec<(i64, f64)> = (0..13)
        .map(|i| (now - 3_600_000 + i * 300_000, 1.0))
        .collect();
    let mut clients = std::collections::HashMap::new();
    for (ai, region, _) in &metered {
        if let std::collections::hash_map::Entry::Vacant(e) = clients.entry((*ai, *region)) {
            let c = skyhold_aws::testkit::Aws::connect(&moto.endpoint, &account_id(*ai), region)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            e.insert(c);
        }
    }
    for chunk in metered.chunks(50) {
        let puts = chunk.iter().map(|(ai, region, id)| {
            clients[&(*ai, *region)].put_instance_metric(id, "CPUUtilization", &points)
        });
        for r in futures::future::join_all(puts).await {
            r.map_err(|e| anyhow!("PutMetricData: {e}"))?;
        }
    }
    let metrics_secs = t.elapsed().as_secs_f64();

    let mut config = String::from(
        "listen = \"127.0.0.1:0\"\nsync_on_start = false\nsync_interval = \"24h\"\n\
         [policies]\ninterval = \"off\"\n[policies.expiry]\nwarn = [\"24h\", \"1h\"]\n\
         [policies.idle]\ncpu_below = 5.0\nfor = \"1h\"\nwarn_before = \"10m\"\n",
    );
    for (i, a) in bench_accounts().iter().enumerate() {
        config.push_str(&format!(
            "[[accounts]]\nname = \"{a}\"\nregions = {REGIONS:?}\nendpoint_url = \"{}\"\n\
             access_key_id = \"testing\"\nsecret_access_key = \"testing\"\nrole_arn = \"arn:aws:iam::{}:role/bench\"\n",
            moto.endpoint,
            account_id(i)
        ));
    }
    let mut cfg =
        skyhold::config::Config::parse(None, &config, &|_| None).map_err(|e| anyhow!("{e}"))?;
    cfg.database_url = url;
    let running =
        skyhold::serve::start(cfg, Some("bench-password"), std::future::pending()).await?;
    let app = running.app.clone();
    println!("## (i) policy passes — {backend}\n");
    println!(
        "{total} resources as in (b), seeded in {seed_secs:.1} s; {expiring} expire within 48 h (warn 24h and 1h); \
         CloudWatch datapoints put for {} running instances in {metrics_secs:.1} s; idle: cpu_below 5 % for 1 h. \
         One pass each, in process; skyhold time = wall time less the wait for GetMetricData.\n",
        metered.len()
    );
    println!("| pass | wall s | provider s | skyhold s | candidates | warned | no data |\n|---|---:|---:|---:|---:|---:|---:|");
    for policy in [skyhold::app::EXPIRY, skyhold::app::IDLE] {
        let t = Instant::now();
        let run = app
            .run_policy_pass(policy, skyhold::app::Cause::Demand, "bench")
            .await
            .map_err(|e| anyhow!("{policy} pass: {e}"))?;
        let wall = t.elapsed().as_secs_f64();
        let provider = run.counts["metrics_ms"].as_f64().unwrap_or(0.0) / 1000.0;
        println!(
            "| {policy} | {wall:.2} | {provider:.2} | {:.2} | {} | {} | {} |",
            wall - provider,
            run.counts["candidates"],
            run.counts.get("warned").cloned().unwrap_or(0.into()),
            run.counts.get("no_data").cloned().unwrap_or(0.into()),
        );
    }
    println!();
    running.stop().await;
    Ok(())
}
