//! Two real `skyhold serve` processes on one PostgreSQL database: they split
//! the sync jobs, never run one job at the same time, and one takes over
//! the jobs of the other after it is killed. PostgreSQL only (SQLite is
//! one process's file); on SQLite these tests print a note and return.

use crate::harness::*;
use crate::proxy::{Fault, FaultProxy};
use skyhold_store::{Store, SyncRun};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `skyhold serve` child process, killed (SIGKILL) when dropped.
pub(crate) struct Replica {
    child: Child,
    /// Its base URL, from the "listening on" line.
    pub url: String,
}

impl Replica {
    /// Starts `skyhold serve` and waits until it listens.
    pub(crate) fn start(config: &std::path::Path) -> Replica {
        let mut child = Command::new(env!("CARGO_BIN_EXE_skyhold"))
            .args(["serve", "--config"])
            .arg(config)
            .env("SKYHOLD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SKYHOLD_LOG", "warn")
            .env_remove("SKYHOLD_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start skyhold serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the first line");
        assert!(line.contains("listening"), "serve did not start: {line:?}");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_default()
            .to_owned();
        Replica { child, url }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether a lease holder id is this process's (`<pid>-<random>`).
    fn holds(&self, holder: &str) -> bool {
        holder.split('-').next() == Some(self.pid().to_string().as_str())
    }

    /// kill -9.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

fn write_config(db: &TestDb, spec: &AccountSpec) -> std::path::PathBuf {
    let toml = format!(
        "listen = \"127.0.0.1:0\"\ndatabase_url = {:?}\nsync_interval = \"2s\"\nsync_lease = \"2s\"\n\
         sync_on_start = true\n\n{}",
        db.url,
        account_toml(spec)
    );
    let path = db.dir.path().join("replica.toml");
    std::fs::write(&path, toml).expect("write config");
    path
}

/// Polls `f` until it returns Some, failing the test after `limit`.
async fn until<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn by_job(runs: &[SyncRun]) -> BTreeMap<(String, String, String), Vec<&SyncRun>> {
    let mut m: BTreeMap<_, Vec<&SyncRun>> = BTreeMap::new();
    for r in runs {
        m.entry((r.account.clone(), r.region.clone(), r.kind.clone()))
            .or_default()
            .push(r);
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_split_the_jobs_and_never_run_one_twice_at_once() {
    if backend() != Backend::Postgres {
        eprintln!("note: replicas test skipped; it runs with SKYHOLD_TEST_DB=postgres");
        return;
    }
    let moto = shared_moto();
    let proxy = FaultProxy::start(moto).await;
    // Every request a little slow, so runs last long enough to overlap if
    // the leases did not keep them apart.
    proxy.set("Action=", Fault::Delay(Duration::from_millis(300)));
    let spec = AccountSpec::new("replicas", &proxy.endpoint, &["us-east-1", "us-west-2"])
        .with_kinds(&["key_pair", "vpc", "security_group"]);
    let db = TestDb::new().await;
    let config = write_config(&db, &spec);
    let a = Replica::start(&config);
    let b = Replica::start(&config);
    let store = Store::connect(&db.url).await.expect("store");

    // Several rounds: every one of the 6 jobs completed at least 3 times,
    // and both replicas ran some.
    let runs = until(
        Duration::from_secs(120),
        "several rounds by both replicas",
        || {
            let store = store.clone();
            let (a, b) = (&a, &b);
            async move {
                let runs = store.sync_runs(0).await.ok()?;
                let jobs = by_job(&runs);
                let done = jobs.len() == 6
                    && jobs
                        .values()
                        .all(|rs| rs.iter().filter(|r| r.ended_at.is_some()).count() >= 3);
                let both = runs.iter().any(|r| a.holds(&r.holder))
                    && runs.iter().any(|r| b.holds(&r.holder));
                (done && both).then_some(runs)
            }
        },
    )
    .await;
    drop((a, b));
    for (job, rs) in by_job(&runs) {
        for w in rs.windows(2) {
            let end = w[0].ended_at.unwrap_or(i64::MAX);
            assert!(
                end <= w[1].started_at,
                "job {job:?} ran twice at once: {:?} and {:?}",
                w[0],
                w[1]
            );
        }
        assert!(
            rs.iter()
                .all(|r| r.outcome.as_deref().is_none_or(|o| o == "ok")),
            "{rs:?}"
        );
    }
    let statuses = store.sync_statuses().await.unwrap();
    assert_eq!(statuses.len(), 6, "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| s.last_error.is_none() && s.next_due.is_some()));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_job_is_taken_over_after_its_lease_expires() {
    if backend() != Backend::Postgres {
        eprintln!("note: replicas test skipped; it runs with SKYHOLD_TEST_DB=postgres");
        return;
    }
    let moto = shared_moto();
    let proxy = FaultProxy::start(moto).await;
    // The key pair listing is slow (4s, the lease is 2s and renewed), so a
    // replica is caught holding it.
    proxy.set(
        "Action=DescribeKeyPairs",
        Fault::Delay(Duration::from_secs(4)),
    );
    let spec = AccountSpec::new("takeover", &proxy.endpoint, &["us-east-1"])
        .with_kinds(&["key_pair", "vpc"]);
    let db = TestDb::new().await;
    let config = write_config(&db, &spec);
    let mut replicas = [Replica::start(&config), Replica::start(&config)];
    let store = Store::connect(&db.url).await.expect("store");

    let running = until(
        Duration::from_secs(60),
        "a key pair run in progress",
        || {
            let store = store.clone();
            async move {
                let runs = store.sync_runs(0).await.ok()?;
                runs.into_iter()
                    .find(|r| r.kind == "key_pair" && r.ended_at.is_none())
            }
        },
    )
    .await;
    let victim = replicas
        .iter()
        .position(|r| r.holds(&running.holder))
        .expect("the holder is one of the replicas");
    replicas[victim].kill();
    let killed_at = skyhold_core::now_millis();
    let survivor = &replicas[1 - victim];

    let taken_over = until(
        Duration::from_secs(60),
        "the survivor to run the job",
        || {
            let store = store.clone();
            async move {
                let runs = store.sync_runs(killed_at).await.ok()?;
                runs.into_iter().find(|r| {
                    r.kind == "key_pair"
                        && survivor.holds(&r.holder)
                        && r.outcome.as_deref() == Some("ok")
                })
            }
        },
    )
    .await;
    assert!(taken_over.started_at >= killed_at);
    // The killed run never finished, and nothing overlapped it after the kill.
    let all = store.sync_runs(0).await.unwrap();
    let killed = all.iter().find(|r| r.id == running.id).unwrap();
    assert_eq!(killed.ended_at, None);
    let status = store.sync_statuses().await.unwrap();
    let kp = status.iter().find(|s| s.kind == "key_pair").unwrap();
    assert!(survivor.holds(kp.holder.as_deref().unwrap_or("")), "{kp:?}");
    assert!(kp.last_success.is_some_and(|t| t >= killed_at), "{kp:?}");
    store.close().await;
}
