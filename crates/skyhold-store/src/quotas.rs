//! Quotas and their reservations. Usage is counted from the inventory (what
//! an owner's live instances and volumes take, from the `owner_usage`
//! counters the resources table's triggers keep) plus the unexpired
//! reservations of launches in flight; checking a launch and reserving its
//! amount happen in one transaction, serialized per quota subject (SQLite:
//! `BEGIN IMMEDIATE`; PostgreSQL: one advisory lock per subject, taken in
//! sorted order inside the `quota_reserve` function), so concurrent
//! launches cannot overshoot a limit.

use crate::audit::append_audit;
use crate::{on_pool, BeginWrite, ReadRow, Result, Store, StoreError};
use skyhold_core::audit::AuditDraft;
use skyhold_core::quota::{self, Amount, Applicable, Exceeded, Limits, QuotaSubject};
use skyhold_core::{Millis, ReservationId};

/// One stored quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRow {
    pub subject: QuotaSubject,
    pub limits: Limits,
    pub updated_at: Millis,
}

/// A quota subject as the check needs it: which subject, the default it
/// falls back to, and whose resources count as its usage (owner values as
/// the owner tag holds them: `ann`, `group:dev`).
#[derive(Debug, Clone)]
pub struct QuotaScope {
    pub subject: QuotaSubject,
    pub fallback: QuotaSubject,
    pub owners: Vec<String>,
}

fn limits_from_row(r: &impl ReadRow) -> Result<Limits> {
    let get = |c: &str| -> Result<Option<u64>> { Ok(r.opt_int(c)?.map(|v| v.max(0) as u64)) };
    Ok(Limits {
        instances: get("instances")?,
        vcpus: get("vcpus")?,
        memory_gib: get("memory_gib")?,
        volume_gib: get("volume_gib")?,
    })
}

fn opt(v: Option<u64>) -> Option<i64> {
    v.map(|v| v.min(i64::MAX as u64) as i64)
}

/// `$first, $first+1, …` for `n` binds.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The limits that apply to each scope (its own, else its fallback's,
/// else none), read with `$exec` in one query. Evaluates to
/// `Vec<(QuotaSubject, Limits)>` in `$scopes`' order (errors return from
/// the enclosing function).
macro_rules! limits_in {
    ($exec:expr, $scopes:expr) => {{
        let scopes: &[QuotaScope] = $scopes;
        let mut keys: Vec<String> = scopes
            .iter()
            .flat_map(|s| [s.subject.key(), s.fallback.key()])
            .collect();
        keys.sort();
        keys.dedup();
        let sql = format!(
            "SELECT subject, instances, vcpus, memory_gib, volume_gib FROM quotas WHERE subject IN ({})",
            placeholders(1, keys.len())
        );
        let mut q = sqlx::query(&sql);
        for k in &keys {
            q = q.bind(k);
        }
        let mut stored = std::collections::HashMap::new();
        for r in q.fetch_all(&mut *$exec).await? {
            stored.insert(r.text("subject")?, limits_from_row(&r)?);
        }
        scopes
            .iter()
            .map(|s| match (stored.get(&s.subject.key()), stored.get(&s.fallback.key())) {
                (Some(l), _) => (s.subject.clone(), *l),
                (None, Some(l)) => (s.fallback.clone(), *l),
                (None, None) => (s.subject.clone(), Limits::default()),
            })
            .collect::<Vec<(QuotaSubject, Limits)>>()
    }};
}

/// What each owner uses, in ONE statement (so one snapshot: on
/// PostgreSQL's READ COMMITTED every statement has its own, and a launch
/// settling between two, its reservation deleted and its instances
/// inserted, would be counted in neither): the `owner_usage` counters the
/// resources table's triggers keep (instances not stopped by type,
/// volumes) and the unexpired reservations. The owners are one bind
/// (`$owners`, in the form `$sql` reads them: a text array on PostgreSQL,
/// a JSON array on SQLite). Evaluates to `HashMap<owner, Amount>`.
macro_rules! usage_in {
    ($exec:expr, $sql:expr, $owners:expr, $now:expr) => {{
        let rows = sqlx::query($sql)
            .bind($now)
            .bind($owners)
            .fetch_all(&mut *$exec)
            .await?;
        usage_from_rows(&rows)?
    }};
}

/// Sums `usage_in!`'s rows per owner.
fn usage_from_rows(rows: &[impl ReadRow]) -> Result<std::collections::HashMap<String, Amount>> {
    let mut by_owner: std::collections::HashMap<String, Amount> = std::collections::HashMap::new();
    for r in rows {
        let held = |c: &str| -> Result<u64> { Ok(r.int(c)?.max(0) as u64) };
        let (n, gib) = (held("n")?, held("g")?);
        let used = if r.text("src")? == "q" {
            Amount {
                instances: n,
                vcpus: held("v")?,
                memory_mib: held("m")?,
                volume_gib: gib,
            }
        } else if r.text("kind")? == "volume" {
            Amount {
                volume_gib: gib,
                ..Default::default()
            }
        } else {
            // An unknown type counts as an instance; its vCPUs and memory
            // cannot be known.
            Amount::of_instances(&r.text("rtype")?, n, 0).unwrap_or(Amount {
                instances: n,
                ..Default::default()
            })
        };
        let e = by_owner.entry(r.text("o")?).or_default();
        *e = e.plus(used);
    }
    Ok(by_owner)
}

/// The vCPUs and memory of every instance type this process has met in a
/// quota check, for PostgreSQL's `quota_reserve` (which cannot size a type
/// itself; a type it is not given makes it ask again). A few hundred types
/// at most: as many as the inventory holds.
#[derive(Default)]
pub(crate) struct SizedTypes(std::sync::Mutex<std::collections::BTreeMap<String, (i64, i64)>>);

impl SizedTypes {
    /// Names, vCPUs and MiB, as three parallel arrays (an unknown type is
    /// sized 0, as `usage_from_rows` counts it).
    fn columns(&self) -> (Vec<String>, Vec<i64>, Vec<i64>) {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = (Vec::with_capacity(map.len()), Vec::new(), Vec::new());
        for (name, (v, m)) in map.iter() {
            out.0.push(name.clone());
            out.1.push(*v);
            out.2.push(*m);
        }
        out
    }

    fn learn(&self, types: Vec<String>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for t in types {
            let size = skyhold_core::instance_types::specs(&t)
                .map(|s| (i64::from(s.vcpus), s.memory_mib.min(i64::MAX as u64) as i64))
                .unwrap_or((0, 0));
            map.insert(t, size);
        }
    }
}

/// The limited scopes as `quota_reserve` takes them: their limits, four
/// per scope (instances, vCPUs, memory GiB, volume GiB; NULL unlimited),
/// and which owners each counts, as (scope index, lower-cased owner) pairs.
fn limited_scopes(
    scopes: &[QuotaScope],
    resolved: &[(QuotaSubject, Limits)],
) -> (Vec<Option<i64>>, Vec<i32>, Vec<String>) {
    let (mut limits, mut pair_scope, mut pair_owner) = (Vec::new(), Vec::new(), Vec::new());
    let limited = scopes
        .iter()
        .zip(resolved)
        .filter(|(_, (_, l))| !l.is_unlimited());
    for (i, (s, (_, l))) in limited.enumerate() {
        limits.extend([l.instances, l.vcpus, l.memory_gib, l.volume_gib].map(opt));
        let mut mine: Vec<String> = s.owners.iter().map(|o| o.to_lowercase()).collect();
        mine.sort();
        mine.dedup();
        for o in mine {
            pair_scope.push(i32::try_from(i).unwrap_or(i32::MAX));
            pair_owner.push(o);
        }
    }
    (limits, pair_scope, pair_owner)
}

/// A stable 64-bit advisory lock id for `key` (FNV-1a): the same in every
/// replica, whatever its build.
fn lock_id(key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// `usage_in!`'s statement with `$set` testing an owner value against the
/// owners bound as `$2` (`$1`: now).
macro_rules! usage_sql {
    ($set:literal) => {
        concat!(
            "SELECT 'r' AS src, owner AS o, kind, rtype, n, size_gib AS g, CAST(0 AS BIGINT) AS v, ",
            "CAST(0 AS BIGINT) AS m FROM owner_usage WHERE owner ", $set, " AND n > 0 ",
            "UNION ALL ",
            "SELECT 'q' AS src, LOWER(owner) AS o, '' AS kind, '' AS rtype, ",
            "CAST(COALESCE(SUM(instances), 0) AS BIGINT) AS n, CAST(COALESCE(SUM(volume_gib), 0) AS BIGINT) AS g, ",
            "CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS v, CAST(COALESCE(SUM(memory_mib), 0) AS BIGINT) AS m ",
            "FROM quota_reservations WHERE expires_at > $1 AND LOWER(owner) ", $set, " GROUP BY LOWER(owner)"
        )
    };
}
/// The owners as a text array on PostgreSQL, a JSON array on SQLite.
const USAGE_PG: &str = usage_sql!("= ANY($2)");
const USAGE_SQLITE: &str = usage_sql!("IN (SELECT value FROM json_each($2))");

/// The owners (lower-cased, once each) whose usage the limited scopes
/// count; an unlimited quota needs no counting.
fn counted_owners(scopes: &[QuotaScope], resolved: &[(QuotaSubject, Limits)]) -> Vec<String> {
    let mut owners: Vec<String> = scopes
        .iter()
        .zip(resolved)
        .filter(|(_, (_, l))| !l.is_unlimited())
        .flat_map(|(s, _)| s.owners.iter().map(|o| o.to_lowercase()))
        .collect();
    owners.sort();
    owners.dedup();
    owners
}

/// Each scope's limits and usage: the sum of its owners'.
fn applicable(
    scopes: &[QuotaScope],
    resolved: Vec<(QuotaSubject, Limits)>,
    by_owner: &std::collections::HashMap<String, Amount>,
) -> Vec<Applicable> {
    scopes
        .iter()
        .zip(resolved)
        .map(|(s, (source, limits))| {
            let mut usage = Amount::default();
            if !limits.is_unlimited() {
                let mut mine: Vec<String> = s.owners.iter().map(|o| o.to_lowercase()).collect();
                mine.sort();
                mine.dedup();
                for o in &mine {
                    if let Some(a) = by_owner.get(o) {
                        usage = usage.plus(*a);
                    }
                }
            }
            Applicable {
                subject: s.subject.clone(),
                source,
                limits,
                usage,
            }
        })
        .collect()
}

fn json_owners(owners: &[String]) -> String {
    serde_json::to_string(owners).unwrap_or_else(|_| "[]".into())
}

macro_rules! insert_reservation {
    ($tx:expr, $owner:expr, $a:expr, $now:expr, $expires:expr) => {{
        let a: Amount = $a;
        let clamp = |v: u64| v.min(i64::MAX as u64) as i64;
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO quota_reservations (owner, instances, vcpus, memory_mib, volume_gib, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind($owner)
        .bind(clamp(a.instances))
        .bind(clamp(a.vcpus))
        .bind(clamp(a.memory_mib))
        .bind(clamp(a.volume_gib))
        .bind($now)
        .bind($expires)
        .fetch_one(&mut *$tx)
        .await
        .map_err(StoreError::from)
    }};
}

impl Store {
    /// Sets (or replaces) the limits of `subject`, with its audit entry
    /// (whose old value is filled in here); returns the old limits.
    pub async fn set_quota(
        &self,
        subject: &QuotaSubject,
        limits: &Limits,
        by: Option<i64>,
        now: Millis,
        audit: &AuditDraft,
    ) -> Result<Option<Limits>> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let old = sqlx::query("SELECT instances, vcpus, memory_gib, volume_gib FROM quotas WHERE subject = $1")
                .bind(subject.key())
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| limits_from_row(&r))
                .transpose()?;
            sqlx::query(
                "INSERT INTO quotas (subject, instances, vcpus, memory_gib, volume_gib, updated_by, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (subject) DO UPDATE SET \
                 instances = excluded.instances, vcpus = excluded.vcpus, memory_gib = excluded.memory_gib, \
                 volume_gib = excluded.volume_gib, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            )
            .bind(subject.key())
            .bind(opt(limits.instances))
            .bind(opt(limits.vcpus))
            .bind(opt(limits.memory_gib))
            .bind(opt(limits.volume_gib))
            .bind(by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let mut d = audit.clone();
            d.old = old.map(|l| serde_json::to_value(l).unwrap_or_default());
            append_audit!(tx, &d);
            tx.commit().await?;
            Ok(old)
        })
    }

    /// Removes an override (the default applies again). `NotFound` if none.
    pub async fn delete_quota(&self, subject: &QuotaSubject, audit: &AuditDraft) -> Result<()> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let r = sqlx::query("DELETE FROM quotas WHERE subject = $1")
                .bind(subject.key())
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_audit!(tx, audit);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Every stored quota, defaults first, then by subject.
    pub async fn list_quotas(&self) -> Result<Vec<QuotaRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT subject, instances, vcpus, memory_gib, volume_gib, updated_at FROM quotas \
                 ORDER BY CASE WHEN subject LIKE 'default:%' THEN 0 ELSE 1 END, subject",
            )
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    let subject = QuotaSubject::parse(&r.text("subject")?)
                        .map_err(StoreError::Corrupt)?;
                    Ok(QuotaRow {
                        subject,
                        limits: limits_from_row(r)?,
                        updated_at: r.int("updated_at")?,
                    })
                })
                .collect()
        })
    }

    /// Limits and usage of each scope as they are now (for the launch form
    /// and the profile; nothing is held).
    pub async fn quota_usage(&self, scopes: &[QuotaScope], now: Millis) -> Result<Vec<Applicable>> {
        let by_owner = match &self.pool {
            crate::Pool::Sqlite(p) => {
                let mut c = p.acquire().await?;
                let resolved = limits_in!(c, scopes);
                let owners = counted_owners(scopes, &resolved);
                let used = usage_in!(c, USAGE_SQLITE, json_owners(&owners), now);
                (resolved, used)
            }
            crate::Pool::Postgres(p) => {
                let mut c = p.acquire().await?;
                let resolved = limits_in!(c, scopes);
                let owners = counted_owners(scopes, &resolved);
                let used = usage_in!(c, USAGE_PG, &owners, now);
                (resolved, used)
            }
        };
        Ok(applicable(scopes, by_owner.0, &by_owner.1))
    }

    /// Checks `request` against every scope and, if it fits all, reserves
    /// it for `owner` until `expires_at`, serialized per subject.
    /// `Ok(Err(_))` names the first quota exceeded (nothing held).
    ///
    /// The limits are read first, outside the lock (a quota edited at that
    /// very moment applies from the next launch). Under the lock there is
    /// as little as can be: every launch of a group waits for all those
    /// ahead of it, so this section is what 50 concurrent launches
    /// multiply. On SQLite it is the usage statement, the insert and the
    /// commit in one process; on PostgreSQL one call of the
    /// `quota_reserve` function (migration 0013), which locks, counts,
    /// checks and inserts in the server, so a waiting launch takes the
    /// lock without a round trip to its client.
    pub async fn reserve_quota(
        &self,
        scopes: &[QuotaScope],
        request: Amount,
        owner: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<std::result::Result<(ReservationId, Vec<Applicable>), Exceeded>> {
        let mut keys: Vec<String> = scopes
            .iter()
            .map(|s| format!("skyhold-quota:{}", s.subject.key()))
            .collect();
        keys.sort();
        keys.dedup();
        match &self.pool {
            crate::Pool::Sqlite(p) => {
                let resolved = {
                    let mut c = p.acquire().await?;
                    limits_in!(c, scopes)
                };
                let owners = json_owners(&counted_owners(scopes, &resolved));
                // BEGIN IMMEDIATE: the one writer is the lock. Under it:
                // usage, the check, the reservation, one commit.
                let mut tx = p.begin_write().await?;
                let by_owner = usage_in!(tx, USAGE_SQLITE, owners, now);
                let applicable = applicable(scopes, resolved, &by_owner);
                if let Err(e) = quota::check(&applicable, request) {
                    return Ok(Err(e));
                }
                let id = insert_reservation!(tx, owner, request, now, expires_at)?;
                tx.commit().await?;
                Ok(Ok((ReservationId(id), applicable)))
            }
            crate::Pool::Postgres(p) => {
                let mut conn = p.acquire().await?;
                let resolved = limits_in!(conn, scopes);
                let owners = counted_owners(scopes, &resolved);
                let locks: Vec<i64> = keys.iter().map(|k| lock_id(k)).collect();
                let (limits, pair_scope, pair_owner) = limited_scopes(scopes, &resolved);
                let req: Vec<i64> = [
                    request.instances,
                    request.vcpus,
                    request.memory_mib,
                    request.volume_gib,
                ]
                .iter()
                .map(|v| (*v).min(i64::MAX as u64) as i64)
                .collect();
                // Usually one call; a second only when the inventory holds
                // an instance type this process has not sized yet.
                for _ in 0..3 {
                    let (types, vcpus, mib) = self.sized_types.columns();
                    let rows = sqlx::query(
                        "SELECT src, o, kind, rtype, n, g, v, m FROM quota_reserve(\
                         $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(&locks)
                    .bind(now)
                    .bind(&owners)
                    .bind(&types)
                    .bind(&vcpus)
                    .bind(&mib)
                    .bind(&limits)
                    .bind(&pair_scope)
                    .bind(&pair_owner)
                    .bind(owner)
                    .bind(&req)
                    .bind(expires_at)
                    .fetch_all(&mut *conn)
                    .await?;
                    let (mut id, mut new_type) = (None, false);
                    let mut usage_rows = Vec::with_capacity(rows.len());
                    for r in rows {
                        match r.text("src")?.as_str() {
                            "i" => id = Some(r.int("n")?),
                            "u" => new_type = true,
                            _ => usage_rows.push(r),
                        }
                    }
                    if new_type {
                        let seen = usage_rows
                            .iter()
                            .filter(|r| r.text("src").is_ok_and(|s| s == "r"))
                            .map(|r| r.text("rtype"))
                            .collect::<Result<Vec<_>>>()?;
                        self.sized_types.learn(seen);
                        continue;
                    }
                    let by_owner = usage_from_rows(&usage_rows)?;
                    let applicable = applicable(scopes, resolved, &by_owner);
                    // The database decided with the same rows; the two
                    // checks agree unless one of them is wrong, and then
                    // the refusal wins.
                    return match (id, quota::check(&applicable, request)) {
                        (Some(id), Ok(())) => Ok(Ok((ReservationId(id), applicable))),
                        (None, Err(e)) => Ok(Err(e)),
                        (Some(id), Err(e)) => {
                            sqlx::query("DELETE FROM quota_reservations WHERE id = $1")
                                .bind(id)
                                .execute(&mut *conn)
                                .await?;
                            Ok(Err(e))
                        }
                        (None, Ok(())) => Err(StoreError::Corrupt(
                            "the database refused a reservation that fits every quota".into(),
                        )),
                    };
                }
                Err(StoreError::Corrupt(
                    "the inventory's instance types kept changing during a quota check".into(),
                ))
            }
        }
    }

    /// Gives a reservation back (its launch settled, and what it made is in
    /// the inventory now). `false` if it was gone already.
    pub async fn release_reservation(&self, id: ReservationId) -> Result<bool> {
        // On SQLite it waits its turn with the reservations instead of
        // polling for the lock.
        on_pool!(self, p => {
            let _turn = p.write_turn().await?;
            let r = sqlx::query("DELETE FROM quota_reservations WHERE id = $1")
                .bind(id.0)
                .execute(p)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// Deletes reservations that expired before `now` (housekeeping; they
    /// stopped counting when they expired). Returns how many.
    pub async fn prune_reservations(&self, now: Millis) -> Result<u64> {
        on_pool!(self, p => {
            let r = sqlx::query("DELETE FROM quota_reservations WHERE expires_at <= $1")
                .bind(now)
                .execute(p)
                .await?;
            Ok(r.rows_affected())
        })
    }
}
