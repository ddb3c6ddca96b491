//! (j) ingest: the store side of syncing N resources (the provider
//! excluded): each (account, region, kind) listing reconciled by
//! `apply_listing`, then its usage-ledger pass and its recorded status, as
//! a sync job does; then the planner statistics the engine refreshes after
//! a large run. Three passes over the same generated inventory: a first
//! sync into an empty database, a pass where nothing changed, and one where
//! 1% of the resources changed.

use crate::{bench_accounts, fresh_db, gen_scope, Lcg, REGIONS};
use anyhow::Result;
use skyhold_core::{AccountName, Millis, ObservedResource, ResourceKind};
use skyhold_store::Store;
use std::sync::Arc;
use std::time::Instant;

/// What one pass over every scope wrote and how long its store side took.
#[derive(Default)]
pub(crate) struct Pass {
    /// Wall seconds of the pass, statistics included (listings are
    /// generated while earlier scopes are applied).
    pub wall: f64,
    /// Seconds spent generating the listings (overlapping the rest).
    pub generating: f64,
    /// Seconds in `apply_listing` (the resource rows and change events),
    /// summed over the jobs.
    pub apply: f64,
    /// Seconds in the usage-ledger passes.
    pub ledger: f64,
    /// Seconds in statistics after the pass (when rows were written).
    pub analyze: f64,
    pub inserted: u64,
    pub updated: u64,
    pub tombstoned: u64,
    pub events: u64,
}

impl Pass {
    fn written(&self) -> u64 {
        self.inserted + self.updated + self.tombstoned
    }
}

/// How a pass alters the generated inventory before it is applied.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    None,
    /// Every 100th resource: an instance changes state (running ones stop,
    /// others start), any other resource gets a new tag.
    OnePercent,
}

fn alter(all: &mut [ObservedResource], change: Change, now: Millis) {
    if change == Change::None {
        return;
    }
    for o in all.iter_mut().step_by(100) {
        if o.kind == ResourceKind::Instance {
            if o.state == "running" {
                o.state = "stopped".into();
                o.attributes.insert(
                    "stopped_at".into(),
                    serde_json::json!(skyhold_core::rfc3339(now)),
                );
            } else {
                o.state = "running".into();
                o.attributes.remove("stopped_at");
            }
        } else {
            o.tags.insert("reviewed".into(), "2026-12".into());
        }
    }
}

/// Jobs applied at once, as a sync's scheduler runs them (each account's
/// limit is 4 by default).
const JOBS_AT_ONCE: usize = 4;

/// One sync pass of `total` resources (the inventory generated at
/// `generated_at`, so every pass sees the same resources) observed at
/// `now`, `JOBS_AT_ONCE` scopes at a time. Each scope's listing is
/// generated (not timed) before its store side starts.
pub(crate) async fn sync_pass(
    store: &Store,
    total: usize,
    generated_at: Millis,
    now: Millis,
    change: Change,
) -> Result<Pass> {
    let t0 = Instant::now();
    let mut rng = Lcg(42);
    let per_scope = total / 20;
    let mut scope = 0;
    let slots = Arc::new(tokio::sync::Semaphore::new(JOBS_AT_ONCE));
    let mut jobs = tokio::task::JoinSet::new();
    let mut generating = 0.0;
    for a in bench_accounts() {
        let account = AccountName::parse(&a).map_err(anyhow::Error::msg)?;
        for region in REGIONS {
            let slot = slots.clone().acquire_owned().await?;
            let t = Instant::now();
            let mut all = gen_scope(&mut rng, scope, per_scope, generated_at);
            alter(&mut all, change, now);
            generating += t.elapsed().as_secs_f64();
            let (store, account) = (store.clone(), account.clone());
            jobs.spawn(async move {
                let _slot = slot;
                apply_scope(&store, &account, region, all, now).await
            });
            scope += 1;
        }
    }
    let mut pass = Pass::default();
    while let Some(done) = jobs.join_next().await {
        let p = done??;
        pass.apply += p.apply;
        pass.ledger += p.ledger;
        pass.inserted += p.inserted;
        pass.updated += p.updated;
        pass.tombstoned += p.tombstoned;
        pass.events += p.events;
    }
    pass.generating = generating;
    // As the sync engine's housekeeping does after a run that wrote rows.
    if pass.written() > 0 {
        let t = Instant::now();
        store.analyze().await?;
        pass.analyze = t.elapsed().as_secs_f64();
    }
    pass.wall = t0.elapsed().as_secs_f64();
    Ok(pass)
}

/// One scope's jobs, kind by kind, as each sync job does its store side.
async fn apply_scope(
    store: &Store,
    account: &AccountName,
    region: &str,
    all: Vec<ObservedResource>,
    now: Millis,
) -> Result<Pass> {
    let mut pass = Pass::default();
    let mut by_kind: Vec<Vec<ObservedResource>> = vec![Vec::new(); ResourceKind::ALL.len()];
    for o in all {
        let i = ResourceKind::ALL
            .iter()
            .position(|k| *k == o.kind)
            .unwrap_or(0);
        by_kind[i].push(o);
    }
    for (kind, part) in ResourceKind::ALL.iter().zip(by_kind) {
        let t = Instant::now();
        let stats = store
            .apply_listing(account, region, *kind, &part, now)
            .await?;
        pass.apply += t.elapsed().as_secs_f64();
        drop(part);
        let t = Instant::now();
        store.reconcile_ledger(account, region, *kind, now).await?;
        store
            .record_sync(account, region, *kind, now, 0, Ok(stats.inserted as i64))
            .await?;
        pass.ledger += t.elapsed().as_secs_f64();
        pass.inserted += stats.inserted;
        pass.updated += stats.updated;
        pass.tombstoned += stats.tombstoned;
        pass.events += stats.events;
    }
    Ok(pass)
}

/// The database's size on disk (SQLite: the file and its WAL; PostgreSQL:
/// every table of the schema with its indexes and TOAST).
pub(crate) async fn db_bytes(store: &Store, url: &str) -> Result<u64> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        store.checkpoint().await?;
        let mut n = 0;
        for ext in ["", "-wal"] {
            n += std::fs::metadata(format!("{path}{ext}")).map_or(0, |m| m.len());
        }
        Ok(n)
    } else {
        Ok(store.size_bytes().await?)
    }
}

/// This process's peak resident set (VmHWM), in MiB.
pub(crate) fn peak_rss_mib() -> u64 {
    crate::rss_kb(std::process::id()).1 / 1024
}

pub async fn ingest_bench(backend: &str, total: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = fresh_db(backend, dir.path(), "ingest").await?;
    let store = Store::connect(&url).await?;
    let generated_at = skyhold_core::now_millis();
    // Passes one default sync interval (5 minutes) apart.
    let pass_at = |i: i64| generated_at + i * 300_000;
    let first = sync_pass(&store, total, generated_at, pass_at(0), Change::None).await?;
    let again = sync_pass(&store, total, generated_at, pass_at(1), Change::None).await?;
    let changed = sync_pass(&store, total, generated_at, pass_at(2), Change::OnePercent).await?;
    let bytes = db_bytes(&store, &url).await?;
    store.close().await;
    println!("## (j) ingest, store side — {backend}\n");
    println!("{total} resources as in (b) (20 account/regions, 19 kinds), generated in memory and reconciled scope by scope, each scope's kinds one after another as sync jobs do: `apply_listing`, then the usage-ledger pass and the recorded status; {JOBS_AT_ONCE} scopes at a time (a sync runs up to 4 jobs of an account at once); after a pass that wrote rows, the planner statistics the engine refreshes. Passes 5 minutes apart (the default sync interval) in the data's time. Wall time is the pass's; the apply and ledger columns are summed over the concurrent jobs; generating the listings (not skyhold's work) overlapped the store's and is shown apart.\n");
    println!("| pass | wall s | apply_listing s (jobs summed) | ledger + status s (jobs summed) | statistics s | generating s | rows inserted | rows updated | rows tombstoned | change events | target |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (label, p, target) in [
        ("first sync, empty database", &first, "< 60 s"),
        ("nothing changed", &again, "< 20 s, 0 rows"),
        ("1% changed", &changed, "< 30 s"),
    ] {
        println!(
            "| {label} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {target} |",
            p.wall,
            p.apply,
            p.ledger,
            p.analyze,
            p.generating,
            p.inserted,
            p.updated,
            p.tombstoned,
            p.events
        );
    }
    println!(
        "\ndatabase size: {:.0} MiB, {:.0} bytes per resource; peak resident set of the process (the generated listings included): {} MiB (target < 200 MB)\n",
        bytes as f64 / 1048576.0,
        bytes as f64 / total as f64,
        peak_rss_mib()
    );
    crate::drop_schema_unless_kept(backend, "ingest", &url, dir).await
}
