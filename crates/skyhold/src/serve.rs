//! Starting the server: store, first admin, sync engine, HTTP listener.

use crate::app::App;
use crate::config::Config;
use crate::sync::SyncEngine;
use anyhow::Context;
use skyhold_aws::AwsProvider;
use skyhold_core::Provider;
use skyhold_store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// A running server (used by `skyhold serve`, the tests and the benchmark).
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    /// The admin password, when it was generated at this start.
    pub generated_admin_password: Option<String>,
    shutdown: watch::Sender<bool>,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    sync_loop: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests and the background sync, then waits for both.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.http.await;
        let _ = self.sync_loop.await;
        self.app.store.close().await;
    }

    /// Waits until the HTTP server ends (Ctrl-C / SIGTERM in `serve`).
    pub async fn wait(self) -> anyhow::Result<()> {
        let Running {
            http,
            sync_loop,
            shutdown,
            app,
            ..
        } = self;
        let r = http.await;
        let _ = shutdown.send(true);
        let _ = sync_loop.await;
        app.store.close().await;
        r.context("http server task")?.context("http server")
    }
}

/// Opens the store and builds the application without serving it: for CLI
/// commands that work on the database directly (`--config`), so they go
/// through the same domain functions, check and audit log as the server.
pub async fn open_app(config: Config) -> anyhow::Result<Arc<App>> {
    let config = Arc::new(config);
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "opening database {}",
                skyhold_store::redact_url(&config.database_url)
            )
        })?;
    let engine = Arc::new(SyncEngine::new(store.clone(), &config, |a| {
        Arc::new(AwsProvider::new(a.aws.clone())) as Arc<dyn Provider>
    }));
    Ok(Arc::new(App::new(store, config, engine)))
}

/// Opens the store, creates the first admin if needed, starts the sync loop
/// and the HTTP server. `shutdown_signal` ends the server when it resolves.
pub async fn start(
    config: Config,
    admin_password: Option<&str>,
    shutdown_signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    let app = open_app(config).await?;
    let (config, engine) = (app.config.clone(), app.sync.clone());
    let generated_admin_password = app
        .bootstrap_admin(admin_password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Actions a crashed process left unsettled: re-read and settled, never
    // repeated. Younger ones may still be running here or in another
    // replica (a call and its re-read each take at most the action
    // timeout), so only older ones are settled, now and then every
    // `settle_after` for as long as the server runs.
    let settle_after = (app.config.action_timeout.as_millis() as i64) * 2 + 5_000;
    settle_unsettled(&app, settle_after).await;
    {
        let app = app.clone();
        tokio::spawn(async move {
            let every = std::time::Duration::from_millis(settle_after as u64);
            loop {
                tokio::time::sleep(every).await;
                settle_unsettled(&app, settle_after).await;
            }
        });
    }

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    if app.config.audit_anchor.is_some() {
        let app = app.clone();
        let every = app.config.audit_anchor_interval;
        let mut stop = rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                if let Err(e) = app.anchor_audit().await {
                    tracing::error!(error = %e, "could not anchor the audit log");
                }
            }
        });
    }

    if let Err(e) = app.reload_prices().await {
        tracing::warn!(error = %e, "reading imported prices");
    }
    if let Some(every) = app.config.policies.interval {
        spawn_policy_loop(app.clone(), every, rx.clone());
    }
    if !app.channels().is_empty() {
        spawn_delivery_loop(app.clone(), rx.clone());
    }
    let sync_loop = engine.clone().spawn_loop(config.sync_on_start, rx.clone());
    let router = crate::web::router(app.clone());
    let mut stop_rx = rx;
    let http = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = shutdown_signal => {}
                _ = stop_rx.changed() => {}
            }
        })
        .await
    });
    Ok(Running {
        addr,
        app,
        generated_admin_password,
        shutdown: tx,
        http,
        sync_loop,
    })
}

/// Settles the actions and launches a crashed process left behind (see
/// [`App::settle_actions`], [`App::settle_launches`]), then reconciles
/// the DNS records of launched servers ([`App::reconcile_dns`]).
async fn settle_unsettled(app: &App, settle_after: i64) {
    match app.settle_actions(settle_after).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(settled = n, "settled actions left by a crash"),
        Err(e) => tracing::warn!(error = %e, "settling actions left by a crash"),
    }
    match app.settle_launches().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(settled = n, "settled launches left by a crash"),
        Err(e) => tracing::warn!(error = %e, "settling launches left by a crash"),
    }
    // And keeps the DNS records of launched servers in step with them.
    match app.reconcile_dns(None).await {
        Ok(p) if p == Default::default() => {}
        Ok(p) => tracing::info!(
            written = p.written,
            removed = p.removed,
            waiting = p.waiting,
            failed = p.failed,
            "DNS records reconciled"
        ),
        Err(e) => tracing::warn!(error = %e, "reconciling DNS records"),
    }
}

/// How long a replica holds the policy lease for one pass (a pass that
/// takes longer may meet a second one: each step is still taken once).
const POLICY_LEASE_MS: i64 = 10 * 60_000;

/// Runs the policy passes every `every`, one replica at a time (the
/// `policy:expiry` lease).
fn spawn_policy_loop(app: Arc<App>, every: std::time::Duration, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = app.reload_prices().await {
                tracing::warn!(error = %e, "reading imported prices");
            }
            for policy in [crate::app::EXPIRY, crate::app::IDLE, "budget"] {
                run_policy_under_lease(&app, policy).await;
            }
        }
    });
}

/// Sends the outbox's due deliveries every few seconds (every replica:
/// each delivery is claimed before it is sent).
fn spawn_delivery_loop(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = app.deliver_notifications().await {
                tracing::warn!(error = %e, "delivering notifications");
            }
        }
    });
}

/// One timer pass of `policy` on the replica that takes its lease.
async fn run_policy_under_lease(app: &Arc<App>, policy: &'static str) {
    if policy == crate::app::IDLE && !app.idle_configured().await {
        return;
    }
    let holder = app.sync.holder().to_owned();
    let kind = format!("policy:{policy}");
    let now = skyhold_core::now_millis();
    match app
        .store
        .acquire_lease("", "", &kind, &holder, now, POLICY_LEASE_MS)
        .await
    {
        Ok(skyhold_store::LeaseOutcome::Acquired) => {}
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(error = %e, policy, "taking the policy lease");
            return;
        }
    }
    if policy == "budget" {
        if let Err(e) = app.run_budget_pass().await {
            tracing::error!(error = %e, "budget pass failed");
        }
        if app.budget_stops_configured().await {
            if let Err(e) = app
                .run_policy_pass("budget", crate::app::Cause::Timer, "system:policy")
                .await
            {
                tracing::error!(error = %e, "budget stop pass failed");
            }
        }
    } else {
        match app
            .run_policy_pass(policy, crate::app::Cause::Timer, "system:policy")
            .await
        {
            Ok(run) if run.state == "held" => {
                tracing::warn!(run = run.id, policy, note = %run.note, "policy pass held for confirmation")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, policy, "policy pass failed"),
        }
    }
    if let Err(e) = app.store.release_lease("", "", &kind, &holder).await {
        tracing::warn!(error = %e, "releasing the policy lease");
    }
}
