//! The sync reconciler. One activation takes no input and is safe to re-run:
//! for every configured (account, region) it lists each kind through the
//! provider and reconciles the cache with the listing. Scopes run in parallel,
//! bounded by a semaphore; a failed listing records its error and changes no
//! resource row.

use crate::config::Config;
use serde::Serialize;
use skyhold_core::{now_millis, AccountName, Provider, ResourceKind};
use skyhold_store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// The outcome of one (account, region, kind) listing.
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
    pub error: Option<String>,
}

struct Scope {
    account: AccountName,
    region: String,
    kinds: Vec<ResourceKind>,
    provider: Arc<dyn Provider>,
    /// Held while the scope syncs, so one scope never runs twice at once
    /// within this process.
    running: Mutex<()>,
}

/// A run that wrote this many resource rows refreshes the planner's statistics.
const ANALYZE_AFTER_WRITES: u64 = 1000;

pub struct SyncEngine {
    store: Store,
    providers: HashMap<AccountName, Arc<dyn Provider>>,
    scopes: Vec<Arc<Scope>>,
    limit: Arc<Semaphore>,
    history_retention: Duration,
}

impl SyncEngine {
    /// Builds the engine from the configured accounts, with one provider per
    /// account from `make_provider`.
    pub fn new(
        store: Store,
        config: &Config,
        make_provider: impl Fn(&crate::config::AccountConfig) -> Arc<dyn Provider>,
    ) -> Self {
        let mut scopes = Vec::new();
        let mut providers: HashMap<AccountName, Arc<dyn Provider>> = HashMap::new();
        for a in &config.accounts {
            let p = providers
                .entry(a.name.clone())
                .or_insert_with(|| make_provider(a))
                .clone();
            for r in &a.regions {
                scopes.push(Arc::new(Scope {
                    account: a.name.clone(),
                    region: r.clone(),
                    kinds: a.kinds.clone(),
                    provider: p.clone(),
                    running: Mutex::new(()),
                }));
            }
        }
        Self {
            store,
            providers,
            scopes,
            limit: Arc::new(Semaphore::new(config.sync_concurrency)),
            history_retention: config.history_retention,
        }
    }

    /// The provider of a configured account (for on-demand reads such as a
    /// stack's template or a bucket's objects).
    pub fn provider(&self, account: &AccountName) -> Option<Arc<dyn Provider>> {
        self.providers.get(account).cloned()
    }

    /// Syncs every scope (or those of one account) and returns what each
    /// listing did. Never fails as a whole: errors are per listing.
    pub async fn run(&self, account: Option<&AccountName>) -> Vec<KindReport> {
        let tasks = self
            .scopes
            .iter()
            .filter(|s| account.is_none_or(|a| &s.account == a))
            .map(|s| {
                let s = s.clone();
                let store = self.store.clone();
                let limit = self.limit.clone();
                tokio::spawn(async move {
                    let _permit = limit.acquire_owned().await.ok();
                    let _running = s.running.lock().await;
                    sync_scope(&store, &s).await
                })
            })
            .collect::<Vec<_>>();
        let mut reports = Vec::new();
        for t in tasks {
            match t.await {
                Ok(r) => reports.extend(r),
                Err(e) => tracing::error!(error = %e, "sync task panicked"),
            }
        }
        let written: u64 = reports
            .iter()
            .map(|r| r.inserted + r.updated + r.tombstoned)
            .sum();
        if written >= ANALYZE_AFTER_WRITES {
            if let Err(e) = self.store.analyze().await {
                tracing::warn!(error = %e, "refreshing planner statistics");
            }
        }
        let horizon = now_millis().saturating_sub(self.history_retention.as_millis() as i64);
        match self.store.prune_events(horizon).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "old change events removed"),
            Err(e) => tracing::warn!(error = %e, "pruning change events"),
        }
        self.update_gauges().await;
        reports
    }

    async fn update_gauges(&self) {
        if let Ok(counts) = self
            .store
            .count_by(None, skyhold_store::CountBy::Kind)
            .await
        {
            for k in ResourceKind::ALL {
                let n = counts
                    .iter()
                    .find(|(name, _)| name == k.as_str())
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("skyhold_resources", "kind" => k.as_str()).set(n as f64);
            }
        }
    }

    /// Runs [`SyncEngine::run`] every `interval` until `shutdown` fires.
    pub fn spawn_loop(
        self: Arc<Self>,
        interval: Duration,
        run_first: bool,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            if !run_first {
                tick.tick().await;
            }
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let reports = self.run(None).await;
                        let failed = reports.iter().filter(|r| !r.ok).count();
                        tracing::info!(listings = reports.len(), failed, "background sync done");
                    }
                    _ = shutdown.changed() => break,
                }
            }
        })
    }
}

async fn sync_scope(store: &Store, s: &Scope) -> Vec<KindReport> {
    let mut out = Vec::with_capacity(s.kinds.len());
    for &kind in &s.kinds {
        let started = now_millis();
        let t0 = Instant::now();
        let listing = s.provider.list(&s.region, kind).await;
        let mut report = KindReport {
            account: s.account.to_string(),
            region: s.region.clone(),
            kind,
            ok: false,
            count: 0,
            inserted: 0,
            updated: 0,
            tombstoned: 0,
            duration_ms: 0,
            error: None,
        };
        let outcome = match listing {
            Ok(items) => match store
                .apply_listing(&s.account, &s.region, kind, &items, started)
                .await
            {
                Ok(stats) => {
                    report.ok = true;
                    report.count = items.len();
                    report.inserted = stats.inserted;
                    report.updated = stats.updated;
                    report.tombstoned = stats.tombstoned;
                    Ok(items.len() as i64)
                }
                Err(e) => Err(format!("storing listing: {e}")),
            },
            Err(e) => Err(e.to_string()),
        };
        let elapsed = t0.elapsed();
        report.duration_ms = elapsed.as_millis() as u64;
        let labels = [
            ("account", s.account.to_string()),
            ("region", s.region.clone()),
            ("kind", kind.as_str().to_owned()),
        ];
        metrics::histogram!("skyhold_sync_duration_seconds", &labels).record(elapsed.as_secs_f64());
        if let Err(e) = &outcome {
            metrics::counter!("skyhold_sync_errors_total", &labels).increment(1);
            tracing::warn!(account = %s.account, region = %s.region, kind = %kind, error = %e, "sync failed");
            report.error = Some(e.clone());
        }
        let recorded = store
            .record_sync(
                &s.account,
                &s.region,
                kind,
                started,
                elapsed.as_millis() as i64,
                outcome.as_ref().map(|n| *n).map_err(String::as_str),
            )
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, "recording sync status");
        }
        out.push(report);
    }
    out
}
