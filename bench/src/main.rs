//! skyhold's benchmarks (not timed tests): the numbers in docs/PERFORMANCE.md.
//!
//! (a) sync: a full skyhold sync of 4 account/regions holding 2,000 instances
//!     in moto, against the bare paginated SDK listings of the same data;
//! (b) queries: N resources written as a first sync writes them (20
//!     account/regions), users, groups and grants, then p50/p99 server time
//!     of the resources API, the list and search pages, the bounded counts
//!     and the dashboard, for an admin and for a member under per-object
//!     permissions, on SQLite and PostgreSQL; above 100,000 resources at
//!     100,000 too, with a scaling table (`query.rs`);
//! (c) memory: the server's resident set after (b);
//! (d)-(f) the permissions seed, actions and the audit log (`access.rs`);
//! (g) launches (`launch.rs`);
//! (h) the usage ledger's spend reports (`ledger.rs`);
//! (i) policy passes over 100,000 resources (`policies.rs`);
//! (j) ingest: the store side of syncing N resources (`ingest.rs`).
//!
//! Run with `bench/run` (release build). Results are printed as Markdown.

mod access;
mod ingest;
mod launch;
mod ledger;
mod policies;
mod query;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use skyhold_core::{ObservedResource, ResourceKind};
use skyhold_store::Store;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repo root")
}

fn pg_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let only = flag("--only");
    let resources: usize = flag("--resources")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(100_000);
    let requests: usize = flag("--requests")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(400);
    let backends: Vec<String> = flag("--backends")
        .unwrap_or_else(|| "sqlite,postgres".into())
        .split(',')
        .map(str::to_owned)
        .collect();

    println!("# skyhold benchmark\n");
    println!(
        "machine: {} cores, {}; build: release\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem_total()
    );
    if only.as_deref().is_none_or(|o| o == "sync") {
        for b in &backends {
            sync_bench(b).await?;
        }
    }
    if only.as_deref().is_none_or(|o| o == "ingest") {
        for b in &backends {
            ingest::ingest_bench(b, resources).await?;
        }
    }
    if only
        .as_deref()
        .is_none_or(|o| o == "query" || o == "access")
    {
        for b in &backends {
            query::query_bench(b, resources, requests).await?;
        }
    }
    if only.as_deref().is_none_or(|o| o == "actions") {
        for b in &backends {
            access::action_bench(b, 300).await?;
        }
    }
    if only.as_deref().is_none_or(|o| o == "launch") {
        for b in &backends {
            launch::launch_bench(b, resources, 300).await?;
        }
    }
    if only.as_deref().is_none_or(|o| o == "spend") {
        for b in &backends {
            ledger::spend_bench(b, resources, requests.min(200)).await?;
        }
    }
    if only.as_deref().is_none_or(|o| o == "policy") {
        for b in &backends {
            policies::policy_bench(b, resources).await?;
        }
    }
    if only.as_deref().is_none_or(|o| o == "audit") {
        for b in &backends {
            access::audit_bench(b, 10).await?;
        }
    }
    Ok(())
}

fn mem_total() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or_else(
            || "unknown memory".into(),
            |kb| format!("{} GiB RAM", kb / 1024 / 1024),
        )
}

// ------------------------------------------------------------------ databases

/// A fresh database of the given backend: a temp SQLite file or a new schema.
async fn fresh_db(backend: &str, dir: &Path, tag: &str) -> Result<String> {
    match backend {
        "sqlite" => {
            let path = dir.join(format!("{tag}.db"));
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
            }
            Ok(format!("sqlite://{}", path.display()))
        }
        "postgres" => {
            let schema = format!("skyhold_bench_{tag}");
            let admin = sqlx::PgPool::connect(&pg_url())
                .await
                .context("connect to PostgreSQL (TEST_DATABASE_URL)")?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&admin)
                .await?;
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&admin)
                .await?;
            admin.close().await;
            let base = pg_url();
            let sep = if base.contains('?') { '&' } else { '?' };
            Ok(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
        }
        other => bail!("unknown backend {other}"),
    }
}

// ------------------------------------------------------------------ (a) sync

struct Moto {
    endpoint: String,
    child: Child,
}

impl Moto {
    fn start() -> Result<Moto> {
        let root = repo_root();
        let mut child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("scripts/moto_child.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("start moto (run scripts/ensure-venv)")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("moto stdout")?).read_line(&mut line)?;
        let port: u16 = line.trim().parse().context("moto port")?;
        Ok(Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SYNC_ACCOUNTS: [(&str, &str); 2] = [("bench-a", "210000000001"), ("bench-b", "210000000002")];
const SYNC_REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const PAGE: i32 = 50;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn sync_bench(backend: &str) -> Result<()> {
    let moto = Moto::start()?;
    let per_scope = 500;
    let seed_start = Instant::now();
    let mut seeding = Vec::new();
    for (_, id) in SYNC_ACCOUNTS {
        for region in SYNC_REGIONS {
            let endpoint = moto.endpoint.clone();
            seeding.push(tokio::spawn(async move {
                let ec2 = skyhold_aws::testkit::Ec2::connect(&endpoint, id, region)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                ec2.launch(per_scope, 5, "bench", &[("owner", "bench")])
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
            }));
        }
    }
    for s in seeding {
        s.await??;
    }
    let seed_secs = seed_start.elapsed().as_secs_f64();

    let bare = || async {
        let t = Instant::now();
        let tasks: Vec<_> = SYNC_ACCOUNTS
            .iter()
            .flat_map(|(_, id)| SYNC_REGIONS.iter().map(move |r| (*id, *r)))
            .map(|(id, r)| {
                let e = moto.endpoint.clone();
                tokio::spawn(async move {
                    skyhold_aws::testkit::bare_listing(&e, id, r, PAGE)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))
                })
            })
            .collect();
        let mut n = 0;
        for task in tasks {
            n += task.await??;
        }
        Ok::<(f64, usize), anyhow::Error>((t.elapsed().as_secs_f64(), n))
    };

    let dir = tempfile::tempdir()?;
    let mut config =
        String::from("listen = \"127.0.0.1:0\"\nsync_on_start = false\nsync_interval = \"1h\"\n");
    for (name, id) in SYNC_ACCOUNTS {
        config.push_str(&format!(
            "[[accounts]]\nname = \"{name}\"\nregions = [\"us-east-1\", \"eu-west-1\"]\nendpoint_url = \"{}\"\n\
             access_key_id = \"testing\"\nsecret_access_key = \"testing\"\nrole_arn = \"arn:aws:iam::{id}:role/bench\"\npage_size = {PAGE}\n\
             kinds = [\"instance\", \"volume\", \"image\", \"security_group\", \"key_pair\"]\n",
            moto.endpoint
        ));
    }

    // The engine lists the same five kinds as the bare baseline.
    // Warm moto's per-account state and the SDK's credentials on both paths.
    let (_, listed) = bare().await?;
    let rounds = 5;
    let (mut bare_t, mut first_t, mut again_t) = (Vec::new(), Vec::new(), Vec::new());
    let mut again_written = 0u64;
    // The usage ledger's share: its passes' time summed over every job
    // (jobs run 4 at a time, so this overstates what it adds to the wall
    // time), against the sync's wall time.
    let (mut ledger_first, mut ledger_again) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let url = fresh_db(backend, dir.path(), &format!("sync{round}")).await?;
        let mut cfg = skyhold::config::Config::parse(None, &config, &|_| None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        cfg.database_url = url;
        let running =
            skyhold::serve::start(cfg, Some("bench-password"), std::future::pending()).await?;
        let (b, _) = bare().await?;
        bare_t.push(b);
        let t = Instant::now();
        let r1 = running.app.sync.run(None).await;
        first_t.push(t.elapsed().as_secs_f64());
        ledger_first.push(r1.iter().map(|r| r.ledger_ms).sum::<u64>() as f64 / 1000.0);
        if r1.iter().any(|r| !r.ok) {
            bail!("sync failed: {:?}", r1.iter().find(|r| !r.ok));
        }
        let t = Instant::now();
        let r2 = running.app.sync.run(None).await;
        again_t.push(t.elapsed().as_secs_f64());
        ledger_again.push(r2.iter().map(|r| r.ledger_ms).sum::<u64>() as f64 / 1000.0);
        again_written += r2
            .iter()
            .map(|r| r.inserted + r.updated + r.tombstoned)
            .sum::<u64>();
        running.stop().await;
    }
    let (b, f, a) = (
        median(&mut bare_t),
        median(&mut first_t),
        median(&mut again_t),
    );
    println!("## (a) sync vs bare paginated listings — {backend}\n");
    println!("2,000 instances (plus their 2,000 root volumes, groups, key pairs) over 4 account/regions in moto, seeded in {seed_secs:.1} s;");
    println!("page size {PAGE} on both sides; 4 scopes in parallel on both sides; median of {rounds} rounds; {listed} items per listing pass.\n");
    println!("| run | median seconds | ratio to bare |\n|---|---:|---:|");
    println!("| bare paginated SDK listings (5 kinds x 4 scopes) | {b:.3} | 1.00 |");
    println!(
        "| skyhold full sync, fresh database (inserts everything) | {f:.3} | {:.2} |",
        f / b
    );
    println!(
        "| skyhold full sync, nothing changed | {a:.3} | {:.2} |",
        a / b
    );
    println!("\nresource rows written by the no-change syncs (all rounds): {again_written}\n");
    let (lf, la) = (median(&mut ledger_first), median(&mut ledger_again));
    println!("usage ledger passes (summed over every job, median): first sync {lf:.3} s = {:.1} % of its wall time (opening 4,000 intervals); no-change sync {la:.3} s = {:.1} %\n",
        lf / f * 100.0, la / a * 100.0);
    Ok(())
}

// ------------------------------------------------------------------ (b) queries

/// A small deterministic generator (no seeding differences between runs).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() as usize) % xs.len()]
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ROLES: [&str; 10] = [
    "web",
    "api",
    "worker",
    "db",
    "cache",
    "ci-runner",
    "batch",
    "etl",
    "search",
    "gateway",
];
const OWNERS: [&str; 12] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "oscar",
];
const TYPES: [&str; 12] = [
    "t3.micro",
    "t3.small",
    "t3.medium",
    "t3.large",
    "m5.large",
    "m5.xlarge",
    "c5.large",
    "c5.xlarge",
    "r5.large",
    "r5.xlarge",
    "t2.micro",
    "g4dn.xlarge",
];
const PROJECTS: [&str; 8] = [
    "storefront",
    "payments",
    "search",
    "analytics",
    "mobile",
    "platform",
    "ml",
    "marketing",
];

/// The kinds beyond the EC2 core, each about 2% of a scope, so searches and
/// the dashboard run over a realistic mix.
const OTHER_KINDS: [ResourceKind; 13] = [
    ResourceKind::Snapshot,
    ResourceKind::LoadBalancer,
    ResourceKind::TargetGroup,
    ResourceKind::AutoScalingGroup,
    ResourceKind::DbInstance,
    ResourceKind::DynamodbTable,
    ResourceKind::CacheCluster,
    ResourceKind::Stack,
    ResourceKind::DnsRecord,
    ResourceKind::Queue,
    ResourceKind::Topic,
    ResourceKind::Bucket,
    ResourceKind::Alarm,
];

fn gen_scope(rng: &mut Lcg, scope: usize, per_scope: usize, now: i64) -> Vec<ObservedResource> {
    let n_inst = per_scope * 50 / 100;
    let n_vol = per_scope * 15 / 100;
    let n_sg = per_scope * 4 / 100;
    let n_img = per_scope * 2 / 100;
    let n_other = per_scope * 2 / 100;
    let n_key = per_scope - n_inst - n_vol - n_sg - n_img - n_other * OTHER_KINDS.len();
    let mut out = Vec::with_capacity(per_scope);
    for i in 0..n_inst {
        let mut o = ObservedResource::new(ResourceKind::Instance, format!("i-{scope:02x}{i:015x}"));
        let role = rng.pick(&ROLES);
        o.name = format!("{role}-{:04}", rng.below(5000));
        o.state = match rng.below(100) {
            0..=59 => "running",
            60..=86 => "stopped",
            87..=92 => "pending",
            _ => "stopping",
        }
        .to_owned();
        o.rtype = rng.pick(&TYPES).to_owned();
        o.private_ip = format!("10.{scope}.{}.{}", rng.below(256), rng.below(254) + 1);
        if rng.below(10) < 4 {
            o.public_ip = format!(
                "54.{}.{}.{}",
                rng.below(256),
                rng.below(256),
                rng.below(254) + 1
            );
        }
        o.created_at = Some(now - (rng.below(400 * 86_400) as i64) * 1000);
        o.tags.insert("Name".into(), o.name.clone());
        if rng.below(100) < 85 {
            o.owner = rng.pick(&OWNERS).to_owned();
            o.tags.insert("owner".into(), o.owner.clone());
        }
        o.tags.insert(
            "env".into(),
            rng.pick(&["prod", "staging", "dev"]).to_owned(),
        );
        o.tags
            .insert("project".into(), rng.pick(&PROJECTS).to_owned());
        let a = &mut o.attributes;
        a.insert("instance_type".into(), json!(o.rtype));
        a.insert("private_ip".into(), json!(o.private_ip));
        a.insert(
            "launch_time".into(),
            json!(skyhold_core::rfc3339(o.created_at.unwrap_or(0))),
        );
        if o.state == "stopped" {
            let stopped = now - (rng.below(120 * 86_400) as i64) * 1000;
            a.insert("stopped_at".into(), json!(skyhold_core::rfc3339(stopped)));
        }
        a.insert(
            "image_id".into(),
            json!(format!("ami-{:017x}", rng.below(50))),
        );
        a.insert("vpc_id".into(), json!(format!("vpc-{scope:017x}")));
        a.insert(
            "subnet_id".into(),
            json!(format!("subnet-{:017x}", rng.below(6))),
        );
        a.insert(
            "volume_ids".into(),
            json!([format!("vol-{scope:02x}{i:015x}")]),
        );
        a.insert(
            "security_groups".into(),
            json!([{"id": format!("sg-{:017x}", rng.below(40)), "name": role}]),
        );
        out.push(o);
    }
    for i in 0..n_vol {
        let mut o = ObservedResource::new(ResourceKind::Volume, format!("vol-{scope:02x}{i:015x}"));
        o.name = format!("data-{i}");
        o.state = if rng.below(10) < 8 {
            "in-use"
        } else {
            "available"
        }
        .to_owned();
        o.rtype = rng.pick(&["gp3", "gp2", "io1", "st1"]).to_owned();
        o.size_gib = (rng.below(500) + 8) as i64;
        o.created_at = Some(now - (rng.below(400 * 86_400) as i64) * 1000);
        o.attributes.insert("size_gib".into(), json!(o.size_gib));
        out.push(o);
    }
    for i in 0..n_sg {
        let mut o = ObservedResource::new(
            ResourceKind::SecurityGroup,
            format!("sg-{scope:02x}{i:015x}"),
        );
        o.name = format!("{}-{i}", rng.pick(&ROLES));
        o.state = "available".into();
        o.attributes.insert(
            "ingress".into(),
            json!([{"protocol": "tcp", "from_port": 22, "to_port": 22, "sources": ["10.0.0.0/8"]}]),
        );
        out.push(o);
    }
    for i in 0..n_img {
        let mut o = ObservedResource::new(ResourceKind::Image, format!("ami-{scope:02x}{i:015x}"));
        o.name = format!("golden-{}-{i}", rng.pick(&ROLES));
        o.state = "available".into();
        o.rtype = "x86_64".into();
        out.push(o);
    }
    for i in 0..n_key {
        let mut o =
            ObservedResource::new(ResourceKind::KeyPair, format!("key-{scope:02x}{i:015x}"));
        o.name = format!("{}-key-{i}", rng.pick(&OWNERS));
        o.state = "available".into();
        o.rtype = "rsa".into();
        out.push(o);
    }
    for kind in OTHER_KINDS {
        for i in 0..n_other {
            let mut o = ObservedResource::new(kind, format!("{kind}-{scope:02x}-{i:06}"));
            let project = rng.pick(&PROJECTS);
            o.name = format!("{project}-{}-{i}", kind.as_str().replace('_', "-"));
            o.state = match kind {
                ResourceKind::Alarm => rng.pick(&["ok", "ok", "ok", "alarm", "insufficient_data"]),
                ResourceKind::Stack => "CREATE_COMPLETE",
                ResourceKind::DbInstance | ResourceKind::CacheCluster => "available",
                _ => "active",
            }
            .to_owned();
            o.created_at = Some(now - (rng.below(400 * 86_400) as i64) * 1000);
            o.tags.insert("project".into(), project.to_owned());
            if rng.below(100) < 70 {
                o.owner = rng.pick(&OWNERS).to_owned();
                o.tags.insert("owner".into(), o.owner.clone());
            }
            o.attributes.insert(
                "arn".into(),
                json!(format!("arn:aws:{kind}:{scope}:{}", o.provider_id)),
            );
            out.push(o);
        }
    }
    out
}

fn bench_accounts() -> Vec<String> {
    (0..5).map(|i| format!("acct-{i:02}")).collect()
}

/// `total` resources as a first sync writes them (`ingest::sync_pass`),
/// with the statistics refreshed after; returns the seconds it took.
async fn seed(url: &str, total: usize) -> Result<f64> {
    let store = Store::connect(url).await?;
    let t = Instant::now();
    let now = skyhold_core::now_millis();
    ingest::sync_pass(&store, total, now, now, ingest::Change::None).await?;
    store.close().await;
    Ok(t.elapsed().as_secs_f64())
}

/// Drops a benchmark's PostgreSQL schema (its SQLite file goes with `dir`),
/// unless SKYHOLD_BENCH_KEEP asks to keep the database for a closer look
/// (EXPLAIN and such).
async fn drop_schema_unless_kept(
    backend: &str,
    tag: &str,
    url: &str,
    dir: tempfile::TempDir,
) -> Result<()> {
    if std::env::var_os("SKYHOLD_BENCH_KEEP").is_some() {
        eprintln!("kept the database: {url}");
        std::mem::forget(dir);
        return Ok(());
    }
    if backend == "postgres" {
        let admin = sqlx::PgPool::connect(&pg_url()).await?;
        sqlx::query(&format!(
            "DROP SCHEMA IF EXISTS skyhold_bench_{tag} CASCADE"
        ))
        .execute(&admin)
        .await?;
        admin.close().await;
    }
    Ok(())
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server(db_url: &str, dir: &Path) -> Result<Server> {
    spawn_server_with(db_url, dir, &[])
}

/// The server, with `restricted` accounts marked `restricted = true`.
fn spawn_server_with(db_url: &str, dir: &Path, restricted: &[&str]) -> Result<Server> {
    let exe = std::env::current_exe()?.with_file_name("skyhold");
    if !exe.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p skyhold`",
            exe.display()
        );
    }
    let mut config =
        String::from("listen = \"127.0.0.1:0\"\nsync_on_start = false\nsync_interval = \"24h\"\n");
    for a in bench_accounts() {
        // Never synced during the benchmark (no sync at start, daily interval).
        config.push_str(&format!(
            "[[accounts]]\nname = \"{a}\"\nregions = {REGIONS:?}\nendpoint_url = \"http://127.0.0.1:9\"\naccess_key_id = \"x\"\nsecret_access_key = \"y\"\n"
        ));
        if restricted.contains(&a.as_str()) {
            config.push_str("restricted = true\n");
        }
    }
    let path = dir.join("bench.toml");
    std::fs::write(&path, config)?;
    let mut child = Command::new(exe)
        .args(["serve", "--config"])
        .arg(&path)
        .env("SKYHOLD_DATABASE_URL", db_url)
        .env("SKYHOLD_ADMIN_PASSWORD", "bench-password")
        .env("SKYHOLD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("server stdout")?).read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("skyhold listening on ")
        .context("server did not start")?
        .to_owned();
    Ok(Server { child, url })
}

fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One timed request: (server ms from `server-timing`, client ms, rows in
/// the JSON `items`, if any).
async fn sample(http: &reqwest::Client, url: &str, token: &str) -> Result<(f64, f64, usize)> {
    let t = Instant::now();
    let res = http.get(url).bearer_auth(token).send().await?;
    let st = res.status();
    let timing = res
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = res.bytes().await?;
    let wall = t.elapsed().as_secs_f64() * 1000.0;
    if !st.is_success() {
        bail!("{url}: HTTP {st}: {}", String::from_utf8_lossy(&body));
    }
    let dur: f64 = timing
        .split("dur=")
        .nth(1)
        .and_then(|d| d.parse().ok())
        .context("server-timing header")?;
    let rows = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["items"].as_array().map(Vec::len))
        .unwrap_or(0);
    Ok((dur, wall, rows))
}

/// What a row of the query table measures (which target it counts toward).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A listing or search (API JSON or page): p99 < 20 ms.
    Listing,
    /// The bounded count a list page fetches after its rows (reported).
    Count,
    /// The dashboard: p99 < 50 ms.
    Dashboard,
}

/// One row of the query table: what to request, how often, and the timings.
struct Probe {
    role: Role,
    group: &'static str,
    label: String,
    url: String,
    n: usize,
    server: Vec<f64>,
    client: Vec<f64>,
    rows: usize,
    /// Whose token the requests carry; empty: `measure_all`'s.
    token: String,
}

impl Probe {
    fn new(role: Role, group: &'static str, label: String, url: String, n: usize) -> Self {
        Probe {
            role,
            group,
            label,
            url,
            n,
            server: Vec::with_capacity(n),
            client: Vec::with_capacity(n),
            rows: 0,
            token: String::new(),
        }
    }

    fn with_token(mut self, token: &str) -> Self {
        self.token = token.to_owned();
        self
    }

    fn token<'a>(&'a self, default: &'a str) -> &'a str {
        if self.token.is_empty() {
            default
        } else {
            &self.token
        }
    }

    /// (server p50, server p99, client p50, client p99).
    fn percentiles(&mut self) -> (f64, f64, f64, f64) {
        self.server.sort_by(f64::total_cmp);
        self.client.sort_by(f64::total_cmp);
        (
            percentile(&self.server, 0.5),
            percentile(&self.server, 0.99),
            percentile(&self.client, 0.5),
            percentile(&self.client, 0.99),
        )
    }
}

/// Times every probe: 20 warm-up requests each, then rounds in which each
/// probe that still wants samples gets one request. Interleaving spreads
/// the machine's own hiccups (a shared 2-core VM) over all rows instead of
/// piling a burst onto whichever query happened to run during it.
async fn measure_all(http: &reqwest::Client, token: &str, probes: &mut [Probe]) -> Result<()> {
    for p in probes.iter_mut() {
        for i in 0..20 {
            let (_, _, rows) = sample(http, &p.url, p.token(token)).await?;
            if i == 0 {
                p.rows = rows;
            }
        }
    }
    let rounds = probes.iter().map(|p| p.n).max().unwrap_or(0);
    for round in 0..rounds {
        for p in probes.iter_mut().filter(|p| round < p.n) {
            let (server, client, _) = sample(http, &p.url, p.token(token)).await?;
            p.server.push(server);
            p.client.push(client);
        }
    }
    Ok(())
}
