//! Sync leases and the shared schedule in the store, on SQLite and
//! PostgreSQL: acquire, conflict, renew, expiry takeover, release; and the
//! engine's on-demand run not running a job another replica holds.

use crate::harness::*;
use skyhold_store::{JobOutcome, LeaseOutcome, Store};

async fn store() -> (TestDb, Store) {
    let db = TestDb::new().await;
    let store = Store::connect(&db.url).await.expect("store");
    (db, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_acquire_conflict_renew_expire_and_release() {
    let (_db, s) = store().await;
    let job = ("acct", "us-east-1", "instance");
    let t = 1_000_000;
    let take = |holder: &'static str, now: i64| {
        let s = s.clone();
        async move {
            s.acquire_lease(job.0, job.1, job.2, holder, now, 10_000)
                .await
                .unwrap()
        }
    };
    assert_eq!(take("a", t).await, LeaseOutcome::Acquired);
    // Held: another holder is refused and told who holds it until when.
    assert_eq!(
        take("b", t + 1).await,
        LeaseOutcome::HeldBy {
            holder: "a".into(),
            expires_at: t + 10_000
        }
    );
    // The holder may take it again (extends it).
    assert_eq!(take("a", t + 2).await, LeaseOutcome::Acquired);
    // Another job is independent.
    assert_eq!(
        s.acquire_lease(job.0, job.1, "volume", "b", t, 10_000)
            .await
            .unwrap(),
        LeaseOutcome::Acquired
    );
    // Renewal by the holder extends; by anyone else it fails.
    assert!(s
        .renew_lease(job.0, job.1, job.2, "a", t + 5_000, 10_000)
        .await
        .unwrap());
    assert!(!s
        .renew_lease(job.0, job.1, job.2, "b", t + 5_000, 10_000)
        .await
        .unwrap());
    // Not expired at the old expiry, since it was renewed.
    assert!(matches!(
        take("b", t + 12_000).await,
        LeaseOutcome::HeldBy { .. }
    ));
    // Expired: taken over, and the old holder can no longer renew.
    assert_eq!(take("b", t + 15_000).await, LeaseOutcome::Acquired);
    assert!(!s
        .renew_lease(job.0, job.1, job.2, "a", t + 15_001, 10_000)
        .await
        .unwrap());
    // Release by a non-holder does nothing; by the holder frees it.
    s.release_lease(job.0, job.1, job.2, "a").await.unwrap();
    assert!(matches!(
        take("a", t + 15_002).await,
        LeaseOutcome::HeldBy { .. }
    ));
    s.release_lease(job.0, job.1, job.2, "b").await.unwrap();
    assert_eq!(take("a", t + 15_003).await, LeaseOutcome::Acquired);
    // Releasing everything of a holder.
    assert_eq!(s.release_all_leases("b").await.unwrap(), 1);
    assert_eq!(s.release_all_leases("b").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acquisitions_have_one_winner() {
    let (_db, s) = store().await;
    for round in 0..5i64 {
        let now = 1_000_000 + round * 100_000;
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.acquire_lease("a", "r", "vpc", &format!("h{i}"), now, 50_000)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            if t.await.unwrap() == LeaseOutcome::Acquired {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_and_run_log_are_recorded() {
    let (_db, s) = store().await;
    assert!(s.job_state("a", "r", "vpc").await.unwrap().is_none());
    let o = JobOutcome {
        started: 100,
        duration_ms: 5,
        result: Err(("throttled", "throttled: slow down")),
        next_due: 30_100,
        holder: "h1",
        throttled_in_row: 1,
    };
    s.record_job("a", "r", "vpc", &o).await.unwrap();
    let st = s.job_state("a", "r", "vpc").await.unwrap().unwrap();
    assert_eq!((st.next_due, st.throttled_in_row), (Some(30_100), 1));
    let status = s.sync_statuses().await.unwrap();
    assert_eq!(status[0].error_kind.as_deref(), Some("throttled"));
    assert_eq!(status[0].holder.as_deref(), Some("h1"));
    assert_eq!(status[0].running_on, None);

    let id = s.start_run("a", "r", "vpc", "h2", 200).await.unwrap();
    s.end_run(id, 250, "ok").await.unwrap();
    let runs = s.sync_runs(0).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (
            runs[0].holder.as_str(),
            runs[0].started_at,
            runs[0].ended_at
        ),
        ("h2", 200, Some(250))
    );
    assert_eq!(s.prune_runs(201).await.unwrap(), 1);
    assert!(s.sync_runs(0).await.unwrap().is_empty());
}

/// "Sync now" does not run a job that another replica holds: its report
/// says where it runs, and the job's status is not touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_now_skips_jobs_held_by_another_replica() {
    let moto = shared_moto();
    let spec = AccountSpec::new("held", moto, &["us-east-1"]).with_kinds(&["vpc", "key_pair"]);
    let server = TestServer::start(&[spec]).await;
    let store = &server.app().store;
    let far = skyhold_core::now_millis() + 600_000;
    assert_eq!(
        store
            .acquire_lease(
                "held",
                "us-east-1",
                "vpc",
                "other-replica",
                far - 600_000,
                600_000
            )
            .await
            .unwrap(),
        LeaseOutcome::Acquired
    );
    let report = server.sync().await;
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["held_elsewhere"], 1, "{report}");
    let reports = report["reports"].as_array().unwrap();
    let vpc = reports.iter().find(|r| r["kind"] == "vpc").unwrap();
    assert_eq!(vpc["held_by"], "other-replica");
    assert_eq!(vpc["ok"], false);
    let kp = reports.iter().find(|r| r["kind"] == "key_pair").unwrap();
    assert_eq!(kp["ok"], true, "{kp}");
    let status = server.get("/api/v1/sync/status").await;
    let items = status["items"].as_array().unwrap();
    assert!(items.iter().all(|s| s["kind"] != "vpc"), "{status}");
    let kp = items.iter().find(|s| s["kind"] == "key_pair").unwrap();
    assert_eq!(kp["holder"], server.app().sync.holder(), "{kp}");
    assert!(kp["next_due_ms"].as_i64().unwrap() > kp["last_attempt_ms"].as_i64().unwrap());
    // Once released, it runs here.
    store
        .release_lease("held", "us-east-1", "vpc", "other-replica")
        .await
        .unwrap();
    let report = server.sync().await;
    assert_eq!(report["held_elsewhere"], 0, "{report}");
    server.stop().await;
}
