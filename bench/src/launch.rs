//! (g) launches: skyhold's own overhead on a launch at 100,000 resources
//! and 1,000 users (authorize, plan with user data and tags, the quota
//! check and reservation, intent, outcome with the new instance, audit),
//! with a provider stub standing in for EC2; and the quota check and
//! reservation under 50 concurrent launches against one group's quota.

use super::{fresh_db, percentile, seed};
use anyhow::{Context, Result};
use skyhold::app::{Actor, App, RequestCtx};
use skyhold_core::blueprint::{BlueprintSpec, ImageRef, KeyMode};
use skyhold_core::launch::LaunchInput;
use skyhold_core::quota::{Amount, Limits};
use skyhold_core::{ImageInfo, ObservedResource, Provider, ProviderError, ResourceKind, RunSpec};
use skyhold_store::Store;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Answers at once: the image, a new pending instance with the tags it was
/// given, nothing found by tag.
struct Stub {
    next: AtomicU64,
}

#[async_trait::async_trait]
impl Provider for Stub {
    async fn list(&self, _: &str, _: ResourceKind) -> Result<Vec<ObservedResource>, ProviderError> {
        Ok(Vec::new())
    }
    async fn describe(
        &self,
        _: &str,
        _: ResourceKind,
        _: &str,
    ) -> Result<Option<ObservedResource>, ProviderError> {
        Ok(None)
    }
    async fn image(&self, _: &str, image: &ImageRef) -> Result<Option<ImageInfo>, ProviderError> {
        Ok(Some(ImageInfo {
            id: image.to_string(),
            name: "bench-image".into(),
            root_device_name: "/dev/xvda".into(),
            root_volume_gib: Some(8),
            created_at: None,
        }))
    }
    async fn run_instance(
        &self,
        _: &str,
        spec: &RunSpec,
    ) -> Result<ObservedResource, ProviderError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut o = ObservedResource::new(ResourceKind::Instance, format!("i-bench{n:012x}"));
        o.state = "pending".into();
        o.rtype = spec.instance_type.clone();
        o.private_ip = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
        o.tags = spec.tags.iter().cloned().collect();
        o.name = o.tags.get("Name").cloned().unwrap_or_default();
        Ok(o)
    }
    async fn instances_tagged(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<Vec<ObservedResource>, ProviderError> {
        Ok(Vec::new())
    }
    async fn ensure_key_pair(&self, _: &str, _: &str, _: &str) -> Result<bool, ProviderError> {
        Ok(false)
    }
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub async fn launch_bench(backend: &str, total: usize, launches: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = fresh_db(backend, dir.path(), "launch").await?;
    let seed_secs = seed(&url, total).await?;
    let access_secs = super::access::seed_access(&url, total).await?;
    let toml = format!(
        "database_url = {url:?}\nsync_on_start = false\n[[accounts]]\nname = \"acct-00\"\nregions = [\"us-east-1\"]\n\
         endpoint_url = \"http://127.0.0.1:9\"\naccess_key_id = \"x\"\nsecret_access_key = \"y\"\n"
    );
    let config = Arc::new(skyhold::config::Config::parse(None, &toml, &|_| None).map_err(err)?);
    let store = Store::connect(&config.database_url).await?;
    let stub: Arc<dyn Provider> = Arc::new(Stub {
        next: AtomicU64::new(0),
    });
    let engine = Arc::new(skyhold::sync::SyncEngine::new(
        store.clone(),
        &config,
        move |_| stub.clone(),
    ));
    let app = Arc::new(App::new(store.clone(), config.clone(), engine));
    let system = Actor::system("bench");
    let spec = BlueprintSpec {
        name: "bench-box".into(),
        description: String::new(),
        accounts: vec!["acct-00".into()],
        regions: vec!["us-east-1".into()],
        image: "ami-0123456789abcdef0".into(),
        instance_types: vec!["t3.*".into()],
        default_type: "t3.small".into(),
        subnet_ids: vec![],
        security_group_ids: vec!["sg-0123456789abcdef0".into()],
        root_volume_gib: Some(20),
        max_root_volume_gib: Some(100),
        key_mode: KeyMode::OwnerKey,
        login_user: "ubuntu".into(),
        user_data: "#cloud-config\nhostname: {{name}}\nfqdn: {{name}}.bench\n".into(),
        packages: vec!["r-base".into()],
        default_ttl_ms: Some(8 * 3_600_000),
        max_ttl_ms: Some(24 * 3_600_000),
        expiry_policy: Default::default(),
        idle_policy: Default::default(),
        dns_zone: String::new(),
        dns_name_pattern: String::new(),
        tags: [("team".to_owned(), "bench".to_owned())]
            .into_iter()
            .collect(),
    };
    app.create_blueprint(&system, Ok(spec)).await.map_err(err)?;
    // Every quota applies and is checked (none is reached): the user's
    // default, and each of their groups'.
    let big = Limits {
        instances: Some(1_000_000),
        vcpus: Some(10_000_000),
        memory_gib: Some(10_000_000),
        volume_gib: Some(100_000_000),
    };
    for s in ["default:user", "default:group"] {
        app.set_quota(&system, s, big).await.map_err(err)?;
    }
    let group = app.create_group(&system, "launchers").await.map_err(err)?;
    let mut actors = Vec::new();
    for i in 0..50 {
        let name = if i == 0 {
            "member".to_owned()
        } else {
            format!("user{i:04}")
        };
        app.add_member(&system, group.id, &name)
            .await
            .map_err(err)?;
    }
    app.put_grant(&system, "group:launchers", "blueprint:bench-box", "operate")
        .await
        .map_err(err)?;
    for i in 0..50 {
        let name = if i == 0 {
            "member".to_owned()
        } else {
            format!("user{i:04}")
        };
        actors.push(
            app.login(
                &name,
                super::access::MEMBER_PASSWORD,
                &RequestCtx::default(),
            )
            .await
            .map_err(err)?,
        );
    }
    let input = |name: String| LaunchInput {
        name,
        packages: vec!["r-base".into()],
        ttl: Some("4h".into()),
        ..Default::default()
    };

    // One launch at a time by the member (in three groups and launchers).
    let mut own = Vec::with_capacity(launches);
    for i in 0..launches + 20 {
        let t = Instant::now();
        let l = app
            .launch(&actors[0], "bench-box", &input(format!("solo-{i}")))
            .await
            .map_err(err)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        anyhow::ensure!(l.state == "succeeded", "launch {} is {}", l.id, l.state);
        if i >= 20 {
            own.push(ms);
        }
    }
    own.sort_by(|a, b| a.total_cmp(b));

    // 50 at once, one per user, all under the launchers' quota: first the
    // check and reservation alone, then whole launches.
    let amount = Amount::of_instances("t3.small", 1, 20).context("t3.small is known")?;
    // The first round opens the pool's connections and plans each one's
    // statements (PostgreSQL plans the reservation's statement on a
    // connection's first call, under the lock): a warm-up, reported apart.
    let (mut reserve, mut warmup) = (Vec::new(), Vec::new());
    for round in 0..11 {
        let mut tasks = Vec::new();
        for a in &actors {
            let (app, a) = (app.clone(), a.clone());
            tasks.push(tokio::spawn(async move {
                let scopes = app
                    .quota_scopes(&skyhold_core::Subject::User(a.username.clone()))
                    .await
                    .map_err(err)?;
                let now = skyhold_core::now_millis();
                let t = Instant::now();
                let r = app
                    .store
                    .reserve_quota(&scopes, amount, &a.username, now, now + 60_000)
                    .await?;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                let (id, _) = r.map_err(|e| anyhow::anyhow!("round {round}: {e}"))?;
                anyhow::Ok((ms, id))
            }));
        }
        // Each reservation is held until the round is over, as a launch
        // holds its own until it settles (after its RunInstances calls),
        // then given back.
        let mut held = Vec::new();
        for t in tasks {
            let (ms, id) = t.await??;
            if round == 0 {
                warmup.push(ms);
            } else {
                reserve.push(ms);
            }
            held.push(id);
        }
        for id in held {
            anyhow::ensure!(
                app.store.release_reservation(id).await?,
                "reservation {id:?} gone"
            );
        }
    }
    reserve.sort_by(|a, b| a.total_cmp(b));
    warmup.sort_by(|a, b| a.total_cmp(b));
    let mut together = Vec::new();
    for round in 0..4 {
        let mut tasks = Vec::new();
        for (i, a) in actors.iter().enumerate() {
            let (app, a) = (app.clone(), a.clone());
            let name = format!("c{round}-{i}");
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let l = app
                    .launch(&a, "bench-box", &input(name))
                    .await
                    .map_err(err)?;
                anyhow::ensure!(l.state == "succeeded", "launch {} is {}", l.id, l.state);
                anyhow::Ok(t.elapsed().as_secs_f64() * 1e3)
            }));
        }
        for t in tasks {
            together.push(t.await??);
        }
    }
    together.sort_by(|a, b| a.total_cmp(b));

    println!("## (g) launches — {backend}\n");
    println!(
        "{total} resources seeded in {seed_secs:.0} s, 1,000 users / 100 groups / 10,000 grants in {access_secs:.0} s. \
         A blueprint with user data, a package, a TTL and tags; every launch checked against the user's quota and each of \
         their groups' (four for the member). The provider is a stub inside the benchmark that answers at once, so the \
         times are skyhold's own: authorize, plan (fields, names, user data, tags), the image lookup (stub), quota check and \
         reservation in one transaction, intent row, RunInstances (stub), then outcome, the instance into the inventory, \
         the reservation released and the audit entry in one transaction.\n"
    );
    println!("| measure | n | p50 | p99 | target |\n|---|---|---|---|---|");
    println!(
        "| one launch at a time | {} | {:.2} ms | {:.2} ms | p99 < 20 ms |",
        own.len(),
        percentile(&own, 0.5),
        percentile(&own, 0.99)
    );
    println!(
        "| quota check + reservation, 50 at once on one group (held until all 50 have theirs) | {} | {:.2} ms | {:.2} ms | p99 < 50 ms |",
        reserve.len(),
        percentile(&reserve, 0.5),
        percentile(&reserve, 0.99)
    );
    println!(
        "| the same, first round (warm-up: connections opened, statements planned; not counted above) | {} | {:.2} ms | {:.2} ms | |",
        warmup.len(),
        percentile(&warmup, 0.5),
        percentile(&warmup, 0.99)
    );
    println!(
        "| whole launches, 50 at once | {} | {:.2} ms | {:.2} ms | (for reference) |\n",
        together.len(),
        percentile(&together, 0.5),
        percentile(&together, 0.99)
    );
    store.close().await;
    Ok(())
}
