//! The sync engine's shared state: per-job leases (so replicas on one
//! database never run the same job at once), the shared schedule (each
//! job's next due time, in `sync_status`), a log of job runs, and the
//! single-resource reconciliation used by targeted refresh.
//!
//! A job is one (account, region, kind); global kinds use the region
//! `global`. Leases are rows with a holder and an expiry, taken with one
//! atomic upsert that only succeeds when no row exists, the row has
//! expired, or the caller already holds it.

use crate::{on_pool, ReadRow, Result, Store};
use skyhold_core::{Millis, ObservedResource, ResourceId};
use sqlx::Row;

/// The body of [`Store::apply_observed`] inside the caller's transaction
/// `$tx` (so an action's outcome and its refresh commit together). Evaluates
/// to `Result<bool>`: whether it wrote; `NotFound` when the row is missing,
/// `Corrupt` when the observation is of another resource (nothing written
/// in either case).
macro_rules! apply_observed_in {
    ($tx:expr, $id:expr, $observed:expr, $now:expr) => {
        'apply: {
            let id: skyhold_core::ResourceId = $id;
            let observed: Option<&skyhold_core::ObservedResource> = $observed;
            let now: skyhold_core::Millis = $now;
            let row = match sqlx::query(crate::resources::SELECT_RESOURCE_BY_ID_WITH_FINGERPRINT)
                .bind(id.0)
                .fetch_optional(&mut *$tx)
                .await
            {
                Ok(Some(row)) => row,
                Ok(None) => break 'apply Err(crate::StoreError::NotFound),
                Err(e) => break 'apply Err(e.into()),
            };
            let old = match crate::resources::resource_from_row(&row) {
                Ok(old) => old,
                Err(e) => break 'apply Err(e),
            };
            let kind = old.observed.kind;
            let (event, changes) = match observed {
                None if old.deleted_at.is_some() => break 'apply Ok(false),
                None => {
                    if let Err(e) = sqlx::query("UPDATE resources SET deleted_at = $1 WHERE id = $2")
                        .bind(now)
                        .bind(id.0)
                        .execute(&mut *$tx)
                        .await
                    {
                        break 'apply Err(e.into());
                    }
                    ("disappeared", Vec::new())
                }
                Some(o) => {
                    if o.kind != kind || o.provider_id != old.observed.provider_id {
                        break 'apply Err(crate::StoreError::Corrupt(format!(
                            "refresh of {} {} returned {} {}",
                            kind, old.observed.provider_id, o.kind, o.provider_id
                        )));
                    }
                    let gone = crate::resources::is_terminal(kind, &o.state);
                    let deleted = if gone { Some(old.deleted_at.unwrap_or(now)) } else { None };
                    let fp = o.fingerprint();
                    let old_fp: String = match sqlx::Row::try_get(&row, "fingerprint") {
                        Ok(f) => f,
                        Err(e) => break 'apply Err(e.into()),
                    };
                    if old_fp == fp && old.deleted_at == deleted {
                        break 'apply Ok(false);
                    }
                    let event = match (old.deleted_at.is_some(), deleted.is_some()) {
                        (true, false) => "reappeared",
                        (false, true) => "disappeared",
                        _ => "changed",
                    };
                    if let Err(e) = crate::resources::rewrite_row!(&mut *$tx, o, fp, now, deleted, id.0).await {
                        break 'apply Err(e.into());
                    }
                    (event, skyhold_core::diff(&old.observed, o))
                }
            };
            let name = observed.map_or(old.observed.name.as_str(), |o| o.name.as_str());
            match sqlx::query(
                "INSERT INTO resource_events (resource_id, account, region, kind, provider_id, name, at, event, changes) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(id.0)
            .bind(old.account.as_str())
            .bind(&old.region)
            .bind(kind.as_str())
            .bind(&old.observed.provider_id)
            .bind(name)
            .bind(now)
            .bind(event)
            .bind(serde_json::to_string(&changes).unwrap_or_else(|_| "[]".into()))
            .execute(&mut *$tx)
            .await
            {
                Ok(_) => Ok(true),
                Err(e) => Err(e.into()),
            }
        }
    };
}
pub(crate) use apply_observed_in;

/// Puts one observed resource into the inventory inside `$tx`: rewrites
/// its row when skyhold knows it already, else inserts it with an
/// "appeared" event. Evaluates to `Result<ResourceId>`.
macro_rules! upsert_observed_in {
    ($tx:expr, $account:expr, $region:expr, $o:expr, $now:expr) => {
        'upsert: {
            let (account, region, o, now): (&str, &str, &skyhold_core::ObservedResource, skyhold_core::Millis) =
                ($account, $region, $o, $now);
            let existing: Option<i64> = match sqlx::query_scalar(
                "SELECT id FROM resources WHERE account = $1 AND region = $2 AND kind = $3 AND provider_id = $4",
            )
            .bind(account)
            .bind(region)
            .bind(o.kind.as_str())
            .bind(&o.provider_id)
            .fetch_optional(&mut *$tx)
            .await
            {
                Ok(v) => v,
                Err(e) => break 'upsert Err(crate::StoreError::from(e)),
            };
            if let Some(id) = existing {
                break 'upsert crate::jobs::apply_observed_in!($tx, skyhold_core::ResourceId(id), Some(o), now).map(|_| skyhold_core::ResourceId(id));
            }
            let deleted = crate::resources::is_terminal(o.kind, &o.state).then_some(now);
            let id: i64 = match sqlx::query_scalar(
                "INSERT INTO resources (account, region, kind, provider_id, name, state, rtype, owner, \
                 private_ip, public_ip, created_at, size_gib, tags, attributes, search, fingerprint, \
                 first_seen, last_seen, deleted_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $18) \
                 RETURNING id",
            )
            .bind(account)
            .bind(region)
            .bind(o.kind.as_str())
            .bind(&o.provider_id)
            .bind(&o.name)
            .bind(&o.state)
            .bind(&o.rtype)
            .bind(&o.owner)
            .bind(&o.private_ip)
            .bind(&o.public_ip)
            .bind(o.created_at.unwrap_or(0))
            .bind(o.size_gib)
            .bind(serde_json::to_string(&o.tags).unwrap_or_default())
            .bind(serde_json::Value::Object(o.attributes.clone()).to_string())
            .bind(o.search_text())
            .bind(o.fingerprint())
            .bind(now)
            .bind(deleted)
            .fetch_one(&mut *$tx)
            .await
            {
                Ok(id) => id,
                Err(e) => break 'upsert Err(crate::StoreError::from(e)),
            };
            match sqlx::query(
                "INSERT INTO resource_events (resource_id, account, region, kind, provider_id, name, at, event, changes) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'appeared', '[]')",
            )
            .bind(id)
            .bind(account)
            .bind(region)
            .bind(o.kind.as_str())
            .bind(&o.provider_id)
            .bind(&o.name)
            .bind(now)
            .execute(&mut *$tx)
            .await
            {
                Ok(_) => Ok(skyhold_core::ResourceId(id)),
                Err(e) => Err(crate::StoreError::from(e)),
            }
        }
    };
}
pub(crate) use upsert_observed_in;

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    Acquired,
    /// Another holder has an unexpired lease.
    HeldBy {
        holder: String,
        expires_at: Millis,
    },
}

/// What one job attempt ended with, as recorded in `sync_status`.
#[derive(Debug, Clone)]
pub struct JobOutcome<'a> {
    pub started: Millis,
    pub duration_ms: i64,
    /// The item count, or (error class, message).
    pub result: std::result::Result<i64, (&'a str, &'a str)>,
    /// When the job is next due.
    pub next_due: Millis,
    /// The replica that ran it.
    pub holder: &'a str,
    /// Attempts in a row (this one included) that ended throttled.
    pub throttled_in_row: i64,
}

/// The recorded schedule of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub account: String,
    pub region: String,
    pub kind: String,
    pub last_attempt: Millis,
    pub next_due: Option<Millis>,
    pub throttled_in_row: i64,
}

/// One logged job run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyncRun {
    pub id: i64,
    pub account: String,
    pub region: String,
    pub kind: String,
    pub holder: String,
    pub started_at: Millis,
    pub ended_at: Option<Millis>,
    pub outcome: Option<String>,
}

/// The status row that records an account's region resolution
/// (`regions = "all-enabled"`): region `*`, kind `regions`.
pub const REGIONS_STATUS_REGION: &str = "*";
pub const REGIONS_STATUS_KIND: &str = "regions";

fn job_state(r: &impl ReadRow) -> Result<JobState> {
    Ok(JobState {
        account: r.text("account")?,
        region: r.text("region")?,
        kind: r.text("kind")?,
        last_attempt: r.int("last_attempt")?,
        next_due: r.opt_int("next_due")?,
        throttled_in_row: r.int("throttled_in_row")?,
    })
}

impl Store {
    /// Takes (or extends, when already ours) the lease of a job until
    /// `now + ttl_ms`. Atomic on both backends.
    pub async fn acquire_lease(
        &self,
        account: &str,
        region: &str,
        kind: &str,
        holder: &str,
        now: Millis,
        ttl_ms: i64,
    ) -> Result<LeaseOutcome> {
        on_pool!(self, p => {
            let got: Option<String> = sqlx::query_scalar(
                "INSERT INTO sync_leases (account, region, kind, holder, acquired_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (account, region, kind) DO UPDATE SET \
                   holder = excluded.holder, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at \
                 WHERE sync_leases.expires_at <= excluded.acquired_at OR sync_leases.holder = excluded.holder \
                 RETURNING holder",
            )
            .bind(account)
            .bind(region)
            .bind(kind)
            .bind(holder)
            .bind(now)
            .bind(now + ttl_ms)
            .fetch_optional(p)
            .await?;
            if got.is_some() {
                return Ok(LeaseOutcome::Acquired);
            }
            let row = sqlx::query(
                "SELECT holder, expires_at FROM sync_leases WHERE account = $1 AND region = $2 AND kind = $3",
            )
            .bind(account)
            .bind(region)
            .bind(kind)
            .fetch_optional(p)
            .await?;
            match row {
                Some(r) => Ok(LeaseOutcome::HeldBy { holder: r.text("holder")?, expires_at: r.int("expires_at")? }),
                // Released between the two statements: the caller may ask again.
                None => Ok(LeaseOutcome::HeldBy { holder: String::new(), expires_at: now }),
            }
        })
    }

    /// Extends a lease we hold. False when it is no longer ours (it expired
    /// and another holder took it over).
    pub async fn renew_lease(
        &self,
        account: &str,
        region: &str,
        kind: &str,
        holder: &str,
        now: Millis,
        ttl_ms: i64,
    ) -> Result<bool> {
        on_pool!(self, p => {
            let n = sqlx::query(
                "UPDATE sync_leases SET expires_at = $1 \
                 WHERE account = $2 AND region = $3 AND kind = $4 AND holder = $5",
            )
            .bind(now + ttl_ms)
            .bind(account)
            .bind(region)
            .bind(kind)
            .bind(holder)
            .execute(p)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// Gives a lease back (no-op when it is not ours).
    pub async fn release_lease(
        &self,
        account: &str,
        region: &str,
        kind: &str,
        holder: &str,
    ) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query(
                "DELETE FROM sync_leases WHERE account = $1 AND region = $2 AND kind = $3 AND holder = $4",
            )
            .bind(account)
            .bind(region)
            .bind(kind)
            .bind(holder)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// Gives back every lease of a holder (at shutdown).
    pub async fn release_all_leases(&self, holder: &str) -> Result<u64> {
        on_pool!(self, p => {
            Ok(sqlx::query("DELETE FROM sync_leases WHERE holder = $1")
                .bind(holder)
                .execute(p)
                .await?
                .rows_affected())
        })
    }

    /// The recorded schedule of one job (None before its first attempt).
    pub async fn job_state(
        &self,
        account: &str,
        region: &str,
        kind: &str,
    ) -> Result<Option<JobState>> {
        on_pool!(self, p => {
            let row = sqlx::query(
                "SELECT account, region, kind, last_attempt, next_due, throttled_in_row FROM sync_status \
                 WHERE account = $1 AND region = $2 AND kind = $3",
            )
            .bind(account)
            .bind(region)
            .bind(kind)
            .fetch_optional(p)
            .await?;
            row.as_ref().map(job_state).transpose()
        })
    }

    /// The recorded schedule of every job: one small read per scheduler tick.
    pub async fn job_schedule(&self) -> Result<Vec<JobState>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT account, region, kind, last_attempt, next_due, throttled_in_row FROM sync_status",
            )
            .fetch_all(p)
            .await?;
            rows.iter().map(job_state).collect()
        })
    }

    /// Records a job attempt: its outcome, who ran it and when it is next
    /// due. On failure the last success and count are kept.
    pub async fn record_job(
        &self,
        account: &str,
        region: &str,
        kind: &str,
        o: &JobOutcome<'_>,
    ) -> Result<()> {
        let (success, count, error_kind, error) = match o.result {
            Ok(n) => (Some(o.started), n, None, None),
            Err((k, m)) => (None, 0, Some(k), Some(m)),
        };
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO sync_status (account, region, kind, last_attempt, last_success, duration_ms, item_count, \
                   last_error, next_due, holder, error_kind, throttled_in_row) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (account, region, kind) DO UPDATE SET \
                   last_attempt = excluded.last_attempt, \
                   last_success = COALESCE(excluded.last_success, sync_status.last_success), \
                   duration_ms = excluded.duration_ms, \
                   item_count = CASE WHEN excluded.last_error IS NULL THEN excluded.item_count ELSE sync_status.item_count END, \
                   last_error = excluded.last_error, next_due = excluded.next_due, holder = excluded.holder, \
                   error_kind = excluded.error_kind, throttled_in_row = excluded.throttled_in_row",
            )
            .bind(account)
            .bind(region)
            .bind(kind)
            .bind(o.started)
            .bind(success)
            .bind(o.duration_ms)
            .bind(count)
            .bind(error)
            .bind(o.next_due)
            .bind(o.holder)
            .bind(error_kind)
            .bind(o.throttled_in_row)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// Records how an account's regions were resolved (`regions =
    /// "all-enabled"`): the number found, or the error, in the status row
    /// (`*`, `regions`) so it shows beside the account's jobs.
    pub async fn record_regions(
        &self,
        account: &str,
        now: Millis,
        holder: &str,
        result: std::result::Result<usize, &str>,
    ) -> Result<()> {
        let outcome = JobOutcome {
            started: now,
            duration_ms: 0,
            result: match result {
                Ok(n) => Ok(n as i64),
                Err(m) => Err(("regions", m)),
            },
            next_due: now,
            holder,
            throttled_in_row: 0,
        };
        self.record_job(
            account,
            REGIONS_STATUS_REGION,
            REGIONS_STATUS_KIND,
            &outcome,
        )
        .await
    }

    /// Logs the start of a job run; returns its id for [`Store::end_run`].
    pub async fn start_run(
        &self,
        account: &str,
        region: &str,
        kind: &str,
        holder: &str,
        now: Millis,
    ) -> Result<i64> {
        on_pool!(self, p => {
            Ok(sqlx::query_scalar(
                "INSERT INTO sync_runs (account, region, kind, holder, started_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(account)
            .bind(region)
            .bind(kind)
            .bind(holder)
            .bind(now)
            .fetch_one(p)
            .await?)
        })
    }

    pub async fn end_run(&self, id: i64, now: Millis, outcome: &str) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("UPDATE sync_runs SET ended_at = $1, outcome = $2 WHERE id = $3")
                .bind(now)
                .bind(outcome)
                .bind(id)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    /// Logged runs that started at or after `since`, oldest first.
    pub async fn sync_runs(&self, since: Millis) -> Result<Vec<SyncRun>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT id, account, region, kind, holder, started_at, ended_at, outcome FROM sync_runs \
                 WHERE started_at >= $1 ORDER BY started_at, id",
            )
            .bind(since)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(SyncRun {
                        id: r.int("id")?,
                        account: r.text("account")?,
                        region: r.text("region")?,
                        kind: r.text("kind")?,
                        holder: r.text("holder")?,
                        started_at: r.int("started_at")?,
                        ended_at: r.opt_int("ended_at")?,
                        outcome: r.try_get("outcome")?,
                    })
                })
                .collect()
        })
    }

    /// Forgets logged runs that started before `before`.
    pub async fn prune_runs(&self, before: Millis) -> Result<u64> {
        on_pool!(self, p => {
            Ok(sqlx::query("DELETE FROM sync_runs WHERE started_at < $1")
                .bind(before)
                .execute(p)
                .await?
                .rows_affected())
        })
    }

    /// Reconciles ONE resource with a fresh read of it (targeted refresh):
    /// `Some` rewrites the row when it changed (with a change event), `None`
    /// tombstones it (with a "disappeared" event). No other row is touched.
    /// Returns whether anything was written.
    pub async fn apply_observed(
        &self,
        id: ResourceId,
        observed: Option<&ObservedResource>,
        now: Millis,
    ) -> Result<bool> {
        on_pool!(self, p => {
            let mut tx = crate::BeginWrite::begin_write(p).await?;
            let wrote = apply_observed_in!(tx, id, observed, now)?;
            if wrote {
                tx.commit().await?;
            }
            Ok(wrote)
        })
    }
}
