//! (d) the users, groups and grants a member's reads are measured under (in
//! (b), `query.rs`); (e) skyhold's own overhead on a power action (authorize, intent, audit, outcome,
//! excluding the provider's calls); audit append throughput with the chain
//! verified afterwards.

use super::{fresh_db, percentile, Lcg, Moto};
use anyhow::{Context, Result};
use skyhold::app::{Actor, App, Op, RequestCtx};
use skyhold_core::audit::{AuditDraft, AuditTarget};
use skyhold_core::{
    ObservedResource, PowerAction, Provider, ProviderError, ResourceKind, Role as UserRole,
};
use skyhold_store::{NewUser, Store};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const MEMBER_PASSWORD: &str = "bench-member-password";

fn draft(action: &str) -> AuditDraft {
    AuditDraft {
        time: skyhold_core::now_millis(),
        actor: "system:bench".into(),
        auth: "system".into(),
        action: action.into(),
        target: AuditTarget::default(),
        outcome: "ok".into(),
        ..Default::default()
    }
}

/// 1,000 users (one of them the measured member), 100 groups with members,
/// 10,000 grants on resources, accounts and groups.
pub(crate) async fn seed_access(url: &str, total: usize) -> Result<f64> {
    let t = Instant::now();
    let store = Store::connect(url).await?;
    let hash = skyhold::auth::hash_password(MEMBER_PASSWORD)?;
    let now = skyhold_core::now_millis();
    let mut users = Vec::new();
    for i in 0..1000 {
        let name = if i == 0 {
            "member".to_owned()
        } else {
            format!("user{i:04}")
        };
        let u = NewUser {
            username: &name,
            password_hash: &hash,
            role: UserRole::Member,
            email: "",
            source: "local",
        };
        users.push(store.create_user(&u, now, &draft("user.create")).await?.0);
    }
    // The admin whose requests are the baseline (`serve` creates the first
    // admin only in an empty database).
    let admin_hash = skyhold::auth::hash_password("bench-password")?;
    let admin = NewUser {
        username: "admin",
        password_hash: &admin_hash,
        role: UserRole::Admin,
        email: "",
        source: "local",
    };
    store
        .create_user(&admin, now, &draft("user.create"))
        .await?;
    let mut groups = Vec::new();
    for g in 0..100 {
        groups.push(
            store
                .create_group(&format!("group{g:03}"), now, &draft("group.create"))
                .await?,
        );
    }
    let mut rng = Lcg(7);
    for (i, u) in users.iter().enumerate() {
        // Every user in one or two groups; the member in three.
        let n = if i == 0 {
            3
        } else {
            1 + (rng.next() % 2) as usize
        };
        for _ in 0..n {
            let g = groups[(rng.next() % 100) as usize];
            store.add_member(g, *u, &draft("group.member.add")).await?;
        }
    }
    let max_id = total as i64;
    for i in 0..10_000 {
        let (skind, sid) = if i % 3 == 0 {
            ("group", groups[(rng.next() % 100) as usize].0)
        } else {
            ("user", users[(rng.next() % 1000) as usize].0)
        };
        let level = ["view", "operate", "manage"][(rng.next() % 3) as usize];
        let (okind, okey) = match i % 50 {
            // Never on acct-04, the restricted account: there the member
            // sees only what it was granted, so the visibility filter is
            // in every one of its queries.
            0 => ("account", format!("acct-{:02}", rng.next() % 4)),
            1 => ("group", groups[(rng.next() % 100) as usize].0.to_string()),
            _ => ("resource", (1 + (rng.next() as i64 % max_id)).to_string()),
        };
        store
            .put_grant(
                (skind, sid),
                (okind, &okey),
                level,
                None,
                now,
                &draft("grant.put"),
            )
            .await?;
    }
    store.close().await;
    Ok(t.elapsed().as_secs_f64())
}

/// A provider that forwards to the real one (moto through the SDK) and
/// adds up the time spent in its calls, so the pipeline's own share can be
/// told apart.
struct Timed {
    inner: Arc<dyn Provider>,
    nanos: AtomicU64,
}

impl Timed {
    async fn time<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let t = Instant::now();
        let out = f.await;
        self.nanos
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        out
    }
}

#[async_trait::async_trait]
impl Provider for Timed {
    async fn list(
        &self,
        region: &str,
        kind: ResourceKind,
    ) -> Result<Vec<ObservedResource>, ProviderError> {
        self.time(self.inner.list(region, kind)).await
    }
    async fn describe(
        &self,
        region: &str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<ObservedResource>, ProviderError> {
        self.time(self.inner.describe(region, kind, id)).await
    }
    async fn power(
        &self,
        region: &str,
        kind: ResourceKind,
        id: &str,
        action: PowerAction,
        key: &str,
    ) -> Result<skyhold_core::ActReceipt, ProviderError> {
        self.time(self.inner.power(region, kind, id, action, key))
            .await
    }
}

pub async fn action_bench(backend: &str, actions: usize) -> Result<()> {
    let moto = Moto::start()?;
    let account_id = "210000000009";
    let ec2 = skyhold_aws::testkit::Ec2::connect(&moto.endpoint, account_id, "us-east-1")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ec2.launch(1, 1, "bench-act", &[("owner", "member")])
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let dir = tempfile::tempdir()?;
    let url = fresh_db(backend, dir.path(), "actions").await?;
    let toml = format!(
        "database_url = {url:?}\nsync_on_start = false\n[[accounts]]\nname = \"bench\"\nregions = [\"us-east-1\"]\nkinds = [\"instance\"]\nendpoint_url = {:?}\naccess_key_id = \"x\"\nsecret_access_key = \"y\"\nrole_arn = \"arn:aws:iam::{account_id}:role/x\"\n",
        moto.endpoint
    );
    let config = skyhold::config::Config::parse(None, &toml, &|_| None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = Arc::new(config);
    let store = Store::connect(&config.database_url).await?;
    let timed = Arc::new(Timed {
        inner: Arc::new(skyhold_aws::AwsProvider::new(
            config.accounts[0].aws.clone(),
        )),
        nanos: AtomicU64::new(0),
    });
    let t2 = timed.clone();
    let engine = Arc::new(skyhold::sync::SyncEngine::new(
        store.clone(),
        &config,
        move |_| t2.clone() as Arc<dyn Provider>,
    ));
    let app = Arc::new(App::new(store.clone(), config.clone(), engine.clone()));
    app.create_user(
        &Actor::system("bench"),
        "member",
        MEMBER_PASSWORD,
        UserRole::Member,
        "",
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    engine.run(None).await;
    let actor = app
        .login("member", MEMBER_PASSWORD, &RequestCtx::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let page = app
        .list_resources(&actor, &Default::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = page.items.first().context("the instance was synced")?.id;
    let mut own = Vec::with_capacity(actions);
    for i in 0..actions + 20 {
        let before = timed.nanos.load(Ordering::Relaxed);
        let t = Instant::now();
        app.act(&actor, id, Op::Power(PowerAction::Reboot), None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let total = t.elapsed().as_nanos() as u64;
        let provider = timed.nanos.load(Ordering::Relaxed) - before;
        if i >= 20 {
            own.push(total.saturating_sub(provider) as f64 / 1e6);
        }
    }
    own.sort_by(|a, b| a.total_cmp(b));
    println!("## (e) a power action's own overhead — {backend}\n");
    println!("{actions} reboots of one instance in moto by its owner (a member) through `App::act`: authorize, intent row (written as running), provider call, re-read, then outcome, refreshed row and audit entry in one transaction (two commits per action). The provider's calls (RebootInstances, DescribeInstances) are timed by a forwarding wrapper and subtracted.\n");
    println!(
        "skyhold's own time per action: p50 {:.2} ms, p99 {:.2} ms (target p99 < 10 ms)\n",
        percentile(&own, 0.5),
        percentile(&own, 0.99)
    );
    store.close().await;
    drop(moto);
    Ok(())
}

pub async fn audit_bench(backend: &str, seconds: u64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = fresh_db(backend, dir.path(), "audit").await?;
    let config =
        skyhold::config::Config::parse(None, &format!("database_url = {url:?}\n"), &|_| None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Entries go through `App::record`, as logins and refusals do.
    let app = skyhold::serve::open_app(config).await?;
    let store = app.store.clone();
    println!("## (f) audit log appends — {backend}\n");
    println!("Standalone entries (as logins and refusals write them) through `App::record`, which groups the entries that queue up while a transaction commits into the next one. Each writer appends one entry at a time and waits for it.\n");
    println!("| writers | entries | seconds | entries/s |");
    println!("|---:|---:|---:|---:|");
    for writers in [1usize, 8, 32] {
        let n = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(seconds);
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..writers {
            let (app, n) = (app.clone(), n.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < until {
                    app.record(&draft("bench.append")).await;
                    n.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        let secs = t.elapsed().as_secs_f64();
        let count = n.load(Ordering::Relaxed);
        println!(
            "| {writers} | {count} | {secs:.1} | {:.0} |",
            count as f64 / secs
        );
    }
    let t = Instant::now();
    let report = skyhold::app::verify_store(&store)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "\nchain verified afterwards: ok = {}, {} entries checked in {:.1} s (target ≥ 500 entries/s with the chain intact)\n",
        report.ok,
        report.checked,
        t.elapsed().as_secs_f64()
    );
    store.close().await;
    Ok(())
}
