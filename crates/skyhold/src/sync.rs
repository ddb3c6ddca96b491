//! The sync engine. The unit of work is a *job*: one (account, region,
//! kind) listing reconciled with the cache. Global kinds
//! ([`ResourceKind::is_global`]) have one job per account, in the region
//! [`GLOBAL_REGION`].
//!
//! Every job has its own interval (per-kind override, else the account's,
//! else the global one) plus jitter. The schedule is shared through the
//! database: a job is due when its recorded `next_due` has passed, and
//! whoever runs it first writes the next one. Before running a job a
//! replica takes the job's lease (a row with its holder id and an expiry,
//! taken atomically, renewed while the job runs, released at the end), so
//! replicas on one database split the work and never run one job twice at
//! once; a crashed replica's lease expires and another takes the job over.
//!
//! Jobs run in parallel, bounded by a global semaphore (`sync_concurrency`)
//! and one per account (`max_concurrency`). A failed listing records its
//! error and changes no resource row; a throttled one is retried with an
//! exponential backoff (capped at the job's interval).

use crate::config::{AccountConfig, Config};
use serde::Serialize;
use skyhold_core::{
    now_millis, AccountName, Millis, Provider, ProviderErrorKind, ResourceKind, GLOBAL_REGION,
};
use skyhold_store::{JobState, LeaseOutcome, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OwnedMutexGuard, Semaphore};

/// The outcome of one job (one (account, region, kind) listing).
#[derive(Debug, Clone, Serialize)]
pub struct KindReport {
    pub account: String,
    pub region: String,
    pub kind: ResourceKind,
    pub ok: bool,
    pub count: usize,
    pub inserted: u64,
    pub updated: u64,
    pub tombstoned: u64,
    pub duration_ms: u64,
    /// Of `duration_ms`, the usage ledger's pass after the listing.
    pub ledger_ms: u64,
    pub error: Option<String>,
    /// The class of the error: throttled, denied, unreachable, other,
    /// store, lease_lost.
    pub error_kind: Option<String>,
    /// Set when the job was not run here because another replica holds
    /// its lease (it is running there).
    pub held_by: Option<String>,
}

impl KindReport {
    fn new(job: &Job) -> Self {
        Self {
            account: job.account.to_string(),
            region: job.region.clone(),
            kind: job.kind,
            ok: false,
            count: 0,
            inserted: 0,
            updated: 0,
            tombstoned: 0,
            duration_ms: 0,
            ledger_ms: 0,
            error: None,
            error_kind: None,
            held_by: None,
        }
    }

    fn fail(mut self, kind: &str, message: String) -> Self {
        self.error_kind = Some(kind.to_owned());
        self.error = Some(message);
        self
    }
}

/// One (account, region, kind) job.
struct Job {
    account: AccountName,
    region: String,
    kind: ResourceKind,
    interval: Duration,
    /// Held while the job runs in this process.
    running: Arc<Mutex<()>>,
}

struct AccountState {
    config: AccountConfig,
    provider: Arc<dyn Provider>,
    limit: Arc<Semaphore>,
    jobs: std::sync::RwLock<Vec<Arc<Job>>>,
    /// For `regions = "all-enabled"`: when the regions are next asked for
    /// (None: never resolved). The lock also serializes resolutions.
    next_resolve: Mutex<Option<Instant>>,
}

impl AccountState {
    fn jobs(&self) -> Vec<Arc<Job>> {
        self.jobs.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// How often an account's enabled regions are asked for again.
const REGION_REFRESH: Duration = Duration::from_secs(3600);
/// How soon a failed region resolution is retried.
const REGION_RETRY: Duration = Duration::from_secs(60);
/// The first backoff after a throttled attempt; it doubles with each
/// throttled attempt in a row, up to the job's interval.
const THROTTLE_BACKOFF: Duration = Duration::from_secs(30);
/// Logged job runs are kept this long.
const RUN_LOG_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// API idempotency keys (and the responses they replay) are kept this long.
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(86_400);
/// A run (or background period) that wrote this many resource rows
/// refreshes the planner's statistics.
const ANALYZE_AFTER_WRITES: u64 = 1000;
/// How often the background loop prunes history and updates gauges.
const HOUSEKEEPING: Duration = Duration::from_secs(60);

/// What every job task needs, shared.
struct Ctx {
    store: Store,
    limit: Arc<Semaphore>,
    interval: Duration,
    jitter: f64,
    lease: Duration,
    history_retention: Duration,
    /// Tag keys read for the owner after `skyhold:owner`.
    owner_tag_keys: Vec<String>,
    /// This process's lease holder id: pid and a random part.
    holder: String,
    /// When this engine was built (jobs never run are first due relative
    /// to it when the first sync is not run at start).
    started_at: Millis,
    /// Resource rows written by background jobs since the last analyze.
    written: AtomicU64,
}

pub struct SyncEngine {
    ctx: Arc<Ctx>,
    accounts: Vec<Arc<AccountState>>,
}

/// Whether a job task was started by the scheduler (runs only if still
/// due once its lease is held) or on demand (runs regardless).
enum Mode {
    Scheduled {
        guard: OwnedMutexGuard<()>,
        run_first: bool,
    },
    OnDemand,
}

impl SyncEngine {
    /// Builds the engine from the configured accounts, with one provider per
    /// account from `make_provider`.
    pub fn new(
        store: Store,
        config: &Config,
        make_provider: impl Fn(&AccountConfig) -> Arc<dyn Provider>,
    ) -> Self {
        let holder = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        let ctx = Arc::new(Ctx {
            store,
            limit: Arc::new(Semaphore::new(config.sync_concurrency)),
            interval: config.sync_interval,
            jitter: config.sync_jitter,
            lease: config.sync_lease,
            history_retention: config.history_retention,
            owner_tag_keys: config.owner_tag_keys.clone(),
            holder,
            started_at: now_millis(),
            written: AtomicU64::new(0),
        });
        let accounts = config
            .accounts
            .iter()
            .map(|a| {
                let state = AccountState {
                    config: a.clone(),
                    provider: make_provider(a),
                    limit: Arc::new(Semaphore::new(a.max_concurrency)),
                    jobs: std::sync::RwLock::new(Vec::new()),
                    next_resolve: Mutex::new(None),
                };
                if !a.all_enabled_regions {
                    set_jobs(&state, &a.regions, config.sync_interval);
                }
                Arc::new(state)
            })
            .collect();
        Self { ctx, accounts }
    }

    /// This process's lease holder id (shown as "holder" in the status).
    pub fn holder(&self) -> &str {
        &self.ctx.holder
    }

    /// The provider of an account (for targeted refresh).
    pub fn provider(&self, account: &AccountName) -> Option<Arc<dyn Provider>> {
        self.accounts
            .iter()
            .find(|a| &a.config.name == account)
            .map(|a| a.provider.clone())
    }

    /// The jobs of an account as (region, kind), after region resolution.
    pub fn jobs(&self, account: &AccountName) -> Vec<(String, ResourceKind)> {
        self.accounts
            .iter()
            .filter(|a| &a.config.name == account)
            .flat_map(|a| a.jobs())
            .map(|j| (j.region.clone(), j.kind))
            .collect()
    }

    /// For `regions = "all-enabled"`: asks the provider for the account's
    /// regions when they were never resolved or are due again, and updates
    /// the account's jobs. An error is recorded as the account's status
    /// (and the previous jobs, if any, are kept).
    async fn resolve_regions(&self, acct: &AccountState) {
        if !acct.config.all_enabled_regions {
            return;
        }
        let mut next = acct.next_resolve.lock().await;
        if next.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let name = acct.config.name.as_str();
        let now = now_millis();
        let recorded = match acct.provider.enabled_regions().await {
            Ok(mut regions) => {
                regions.sort();
                regions.dedup();
                regions.retain(|r| {
                    let ok = skyhold_core::ids::validate_region(r).is_ok();
                    if !ok {
                        tracing::warn!(account = name, region = %r, "ignoring an invalid region name");
                    }
                    ok
                });
                tracing::info!(
                    account = name,
                    regions = regions.len(),
                    "enabled regions resolved"
                );
                set_jobs(acct, &regions, self.ctx.interval);
                *next = Some(Instant::now() + REGION_REFRESH);
                self.ctx
                    .store
                    .record_regions(name, now, &self.ctx.holder, Ok(regions.len()))
                    .await
            }
            Err(e) => {
                let msg = format!("resolving enabled regions: {e}");
                tracing::warn!(account = name, error = %msg, "region resolution failed");
                *next = Some(Instant::now() + REGION_RETRY);
                self.ctx
                    .store
                    .record_regions(name, now, &self.ctx.holder, Err(&msg))
                    .await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, "recording region resolution");
        }
    }

    /// Runs every job now (or those of one account), whether due or not,
    /// and returns what each did. A job running in another replica is not
    /// run twice: its report says `held_by`. Never fails as a whole: errors
    /// are per job.
    pub async fn run(&self, account: Option<&AccountName>) -> Vec<KindReport> {
        let mut tasks = Vec::new();
        for acct in &self.accounts {
            if account.is_some_and(|a| a != &acct.config.name) {
                continue;
            }
            self.resolve_regions(acct).await;
            for job in acct.jobs() {
                tasks.push(tokio::spawn(run_job(
                    self.ctx.clone(),
                    acct.clone(),
                    job,
                    Mode::OnDemand,
                )));
            }
        }
        let mut reports = Vec::new();
        for t in tasks {
            match t.await {
                Ok(Some(r)) => reports.push(r),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "sync task panicked"),
            }
        }
        let written: u64 = reports
            .iter()
            .map(|r| r.inserted + r.updated + r.tombstoned)
            .sum();
        self.housekeeping(written).await;
        reports
    }

    /// Statistics after many writes, pruning of old history, gauges.
    async fn housekeeping(&self, written: u64) {
        let store = &self.ctx.store;
        if written >= ANALYZE_AFTER_WRITES {
            if let Err(e) = store.analyze().await {
                tracing::warn!(error = %e, "refreshing planner statistics");
            }
        }
        let now = now_millis();
        let horizon = now.saturating_sub(self.ctx.history_retention.as_millis() as i64);
        match store.prune_events(horizon).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "old change events removed"),
            Err(e) => tracing::warn!(error = %e, "pruning change events"),
        }
        let runs_horizon = now.saturating_sub(RUN_LOG_RETENTION.as_millis() as i64);
        if let Err(e) = store.prune_runs(runs_horizon).await {
            tracing::warn!(error = %e, "pruning the sync run log");
        }
        let keys_horizon = now.saturating_sub(IDEMPOTENCY_RETENTION.as_millis() as i64);
        if let Err(e) = store.prune_idempotency(keys_horizon).await {
            tracing::warn!(error = %e, "pruning idempotency keys");
        }
        if let Ok(counts) = store.count_by(None, skyhold_store::CountBy::Kind).await {
            for k in ResourceKind::ALL {
                let n = counts
                    .iter()
                    .find(|(name, _)| name == k.as_str())
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("skyhold_resources", "kind" => k.as_str()).set(n as f64);
            }
        }
    }

    /// The background scheduler: every tick it reads the shared schedule
    /// and starts the jobs that are due and not already running here,
    /// until `shutdown` fires. With `run_first`, jobs never run before are
    /// due at once; otherwise one interval after start.
    pub fn spawn_loop(
        self: Arc<Self>,
        run_first: bool,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let tick = (self.ctx.lease / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
        tokio::spawn(async move {
            let mut running = tokio::task::JoinSet::new();
            let mut last_housekeeping = Instant::now();
            loop {
                for acct in &self.accounts {
                    self.resolve_regions(acct).await;
                }
                self.start_due_jobs(run_first, &mut running).await;
                while let Some(done) = running.try_join_next() {
                    match done {
                        Ok(Some(r)) => {
                            self.ctx.written.fetch_add(
                                r.inserted + r.updated + r.tombstoned,
                                Ordering::Relaxed,
                            );
                        }
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, "sync task panicked"),
                    }
                }
                if last_housekeeping.elapsed() >= HOUSEKEEPING {
                    last_housekeeping = Instant::now();
                    let written = self.ctx.written.swap(0, Ordering::Relaxed);
                    self.housekeeping(written).await;
                }
                tokio::select! {
                    _ = tokio::time::sleep(tick) => {}
                    _ = shutdown.changed() => break,
                }
            }
            // Stop what still runs and hand its leases back at once, so
            // another replica need not wait for them to expire.
            running.abort_all();
            while running.join_next().await.is_some() {}
            if let Err(e) = self.ctx.store.release_all_leases(&self.ctx.holder).await {
                tracing::warn!(error = %e, "releasing sync leases");
            }
        })
    }

    async fn start_due_jobs(
        &self,
        run_first: bool,
        running: &mut tokio::task::JoinSet<Option<KindReport>>,
    ) {
        let schedule = match self.ctx.store.job_schedule().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "reading the sync schedule");
                return;
            }
        };
        let by_key: HashMap<(&str, &str, &str), &JobState> = schedule
            .iter()
            .map(|s| ((s.account.as_str(), s.region.as_str(), s.kind.as_str()), s))
            .collect();
        let now = now_millis();
        for acct in &self.accounts {
            for job in acct.jobs() {
                let state = by_key
                    .get(&(job.account.as_str(), job.region.as_str(), job.kind.as_str()))
                    .copied();
                if due_at(state, &job, self.ctx.started_at, run_first) > now {
                    continue;
                }
                // Already running (or queued) in this process: leave it.
                let Ok(guard) = job.running.clone().try_lock_owned() else {
                    continue;
                };
                running.spawn(run_job(
                    self.ctx.clone(),
                    acct.clone(),
                    job,
                    Mode::Scheduled { guard, run_first },
                ));
            }
        }
    }
}

/// Replaces an account's jobs for `regions`, keeping the existing job
/// objects (and their running locks) for keys that remain.
fn set_jobs(acct: &AccountState, regions: &[String], global: Duration) {
    let c = &acct.config;
    let mut wanted: Vec<(String, ResourceKind)> = Vec::new();
    for &kind in &c.kinds {
        if kind.is_global() {
            wanted.push((GLOBAL_REGION.to_owned(), kind));
        } else {
            wanted.extend(regions.iter().map(|r| (r.clone(), kind)));
        }
    }
    let mut jobs = acct.jobs.write().unwrap_or_else(|p| p.into_inner());
    let old = std::mem::take(&mut *jobs);
    *jobs = wanted
        .into_iter()
        .map(|(region, kind)| {
            old.iter()
                .find(|j| j.region == region && j.kind == kind)
                .cloned()
                .unwrap_or_else(|| {
                    Arc::new(Job {
                        account: c.name.clone(),
                        region,
                        kind,
                        interval: c.interval_for(kind, global),
                        running: Arc::new(Mutex::new(())),
                    })
                })
        })
        .collect();
}

/// When a job is due, from its recorded state: the recorded `next_due`;
/// for a row without one (written before schedules were recorded), its
/// last attempt plus its interval; for a job never run, now (`run_first`)
/// or one interval after start.
fn due_at(state: Option<&JobState>, job: &Job, started_at: Millis, run_first: bool) -> Millis {
    let interval = job.interval.as_millis() as i64;
    match state {
        Some(s) => s.next_due.unwrap_or(s.last_attempt + interval),
        None if run_first => 0,
        None => started_at + interval,
    }
}

/// When a job that started at `started` is next due: after its interval
/// plus up to `jitter` of it; after a throttled attempt, after an
/// exponential backoff instead (30s, 60s, … up to the interval).
pub fn next_due(
    started: Millis,
    interval: Duration,
    jitter: f64,
    throttled_in_row: i64,
    random: f64,
) -> Millis {
    let base = if throttled_in_row > 0 {
        let shift = (throttled_in_row - 1).clamp(0, 20) as u32;
        THROTTLE_BACKOFF.saturating_mul(1 << shift).min(interval)
    } else {
        interval
    };
    let extra = base.as_secs_f64() * jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0);
    started + base.as_millis() as i64 + (extra * 1000.0) as i64
}

fn error_kind(k: ProviderErrorKind) -> &'static str {
    match k {
        ProviderErrorKind::Throttled => "throttled",
        ProviderErrorKind::Denied => "denied",
        ProviderErrorKind::Unreachable => "unreachable",
        ProviderErrorKind::InvalidState
        | ProviderErrorKind::NotPermitted
        | ProviderErrorKind::NotFound
        | ProviderErrorKind::Other => "other",
    }
}

/// One job task: local lock, concurrency permits, lease, (for scheduled
/// runs) the due check, the listing, the recorded outcome, the release.
/// Returns None when a scheduled job turned out not to be due here.
async fn run_job(
    ctx: Arc<Ctx>,
    acct: Arc<AccountState>,
    job: Arc<Job>,
    mode: Mode,
) -> Option<KindReport> {
    let (_guard, scheduled) = match mode {
        Mode::Scheduled { guard, run_first } => (guard, Some(run_first)),
        Mode::OnDemand => (job.running.clone().lock_owned().await, None),
    };
    let _permit = ctx.limit.clone().acquire_owned().await.ok()?;
    let _account_permit = acct.limit.clone().acquire_owned().await.ok()?;
    let store = &ctx.store;
    let (a, r, k) = (job.account.as_str(), job.region.as_str(), job.kind.as_str());
    let lease_ms = ctx.lease.as_millis() as i64;
    let report = KindReport::new(&job);
    let mut lease = store
        .acquire_lease(a, r, k, &ctx.holder, now_millis(), lease_ms)
        .await;
    // Released between the upsert and the look-up of its holder: ask again.
    for _ in 0..3 {
        if !matches!(&lease, Ok(LeaseOutcome::HeldBy { holder, .. }) if holder.is_empty()) {
            break;
        }
        lease = store
            .acquire_lease(a, r, k, &ctx.holder, now_millis(), lease_ms)
            .await;
    }
    match lease {
        Ok(LeaseOutcome::Acquired) => {}
        Ok(LeaseOutcome::HeldBy { holder, .. }) => {
            return match scheduled {
                Some(_) => None,
                None => {
                    tracing::info!(account = a, region = r, kind = k, %holder, "job runs in another replica; not run twice");
                    let mut report = report;
                    report.held_by = Some(holder);
                    Some(report)
                }
            };
        }
        Err(e) => {
            tracing::warn!(account = a, region = r, kind = k, error = %e, "taking a sync lease");
            return scheduled
                .is_none()
                .then(|| report.fail("store", format!("taking the job's lease: {e}")));
        }
    }
    let state = match store.job_state(a, r, k).await {
        Ok(s) => s,
        Err(e) => {
            let _ = store.release_lease(a, r, k, &ctx.holder).await;
            tracing::warn!(error = %e, "reading a job's schedule");
            return scheduled
                .is_none()
                .then(|| report.fail("store", format!("reading the job's schedule: {e}")));
        }
    };
    if let Some(run_first) = scheduled {
        // Another replica may have run it since the schedule was read.
        if due_at(state.as_ref(), &job, ctx.started_at, run_first) > now_millis() {
            let _ = store.release_lease(a, r, k, &ctx.holder).await;
            return None;
        }
    }
    let started = now_millis();
    let run_id = match store.start_run(a, r, k, &ctx.holder, started).await {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(error = %e, "logging a sync run");
            None
        }
    };
    let t0 = Instant::now();
    let work = sync_job(
        store,
        &acct,
        &job,
        started,
        report.clone(),
        &ctx.owner_tag_keys,
    );
    let renew = async {
        let mut every = tokio::time::interval(ctx.lease / 3);
        every.tick().await;
        loop {
            every.tick().await;
            match store
                .renew_lease(a, r, k, &ctx.holder, now_millis(), lease_ms)
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(error = %e, "renewing a sync lease"),
            }
        }
    };
    let mut report = tokio::select! {
        rep = work => rep,
        () = renew => report.fail(
            "lease_lost",
            "the job's lease expired and another replica took it over; this attempt was abandoned".to_owned(),
        ),
    };
    let elapsed = t0.elapsed();
    report.duration_ms = elapsed.as_millis() as u64;
    let labels = [
        ("account", a.to_owned()),
        ("region", r.to_owned()),
        ("kind", k.to_owned()),
    ];
    metrics::histogram!("skyhold_sync_duration_seconds", &labels).record(elapsed.as_secs_f64());
    if let Some(e) = &report.error {
        metrics::counter!("skyhold_sync_errors_total", &labels).increment(1);
        tracing::warn!(account = a, region = r, kind = k, error = %e, "sync failed");
    }
    let throttled_in_row = if report.error_kind.as_deref() == Some("throttled") {
        state.as_ref().map_or(0, |s| s.throttled_in_row) + 1
    } else {
        0
    };
    let due = next_due(
        started,
        job.interval,
        ctx.jitter,
        throttled_in_row,
        rand::random::<f64>(),
    );
    let outcome = skyhold_store::JobOutcome {
        started,
        duration_ms: elapsed.as_millis() as i64,
        result: match (&report.error, &report.error_kind) {
            (Some(m), Some(kind)) => Err((kind.as_str(), m.as_str())),
            (Some(m), None) => Err(("other", m.as_str())),
            (None, _) => Ok(report.count as i64),
        },
        next_due: due,
        holder: &ctx.holder,
        throttled_in_row,
    };
    if let Err(e) = store.record_job(a, r, k, &outcome).await {
        tracing::error!(error = %e, "recording sync status");
    }
    if let Some(id) = run_id {
        let what = report.error_kind.as_deref().unwrap_or("ok");
        if let Err(e) = store.end_run(id, now_millis(), what).await {
            tracing::warn!(error = %e, "logging the end of a sync run");
        }
    }
    if let Err(e) = store.release_lease(a, r, k, &ctx.holder).await {
        tracing::warn!(error = %e, "releasing a sync lease");
    }
    Some(report)
}

/// Lists the job's kind and reconciles the cache with the listing.
async fn sync_job(
    store: &Store,
    acct: &AccountState,
    job: &Job,
    started: Millis,
    mut report: KindReport,
    owner_keys: &[String],
) -> KindReport {
    match acct.provider.list(&job.region, job.kind).await {
        Ok(mut items) => {
            // The owner comes from tags, read the way the configuration says.
            for o in &mut items {
                o.owner = skyhold_core::access::owner_from_tags(&o.tags, owner_keys);
            }
            let applied = store
                .apply_listing(&job.account, &job.region, job.kind, &items, started)
                .await;
            match applied {
                Ok(stats) => {
                    // The usage ledger follows the listing; a failure is
                    // mended by the next pass (the scope's checkpoint has
                    // not moved), so it does not fail the sync.
                    let ledger_start = std::time::Instant::now();
                    let ledger = store
                        .reconcile_ledger(&job.account, &job.region, job.kind, started)
                        .await;
                    report.ledger_ms = ledger_start.elapsed().as_millis() as u64;
                    if let Err(e) = ledger {
                        tracing::warn!(account = %job.account, region = %job.region, kind = %job.kind.as_str(), error = %e, "the usage ledger");
                    }
                    report.ok = true;
                    report.count = items.len();
                    report.inserted = stats.inserted;
                    report.updated = stats.updated;
                    report.tombstoned = stats.tombstoned;
                    report
                }
                Err(e) => report.fail("store", format!("storing listing: {e}")),
            }
        }
        Err(e) => report.fail(error_kind(e.kind), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_due_adds_the_interval_and_at_most_the_jitter() {
        let i = Duration::from_secs(600);
        assert_eq!(next_due(1_000, i, 0.1, 0, 0.0), 1_000 + 600_000);
        assert_eq!(next_due(1_000, i, 0.1, 0, 1.0), 1_000 + 660_000);
        let mid = next_due(1_000, i, 0.1, 0, 0.5);
        assert!(mid > 601_000 && mid < 661_000);
        assert_eq!(next_due(0, i, 0.0, 0, 0.9), 600_000);
    }

    #[test]
    fn throttled_jobs_back_off_exponentially_up_to_the_interval() {
        let i = Duration::from_secs(600);
        let d: Vec<i64> = (1..=7).map(|n| next_due(0, i, 0.0, n, 0.0)).collect();
        assert_eq!(
            d,
            vec![30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000]
        );
        // No overflow for long streaks.
        assert_eq!(next_due(0, i, 0.0, 10_000, 0.0), 600_000);
    }
}
