//! The ledger rolled up by UTC day (`ledger_keys`, `ledger_days`,
//! `ledger_rolled`), so that a spend report over any range of whole days
//! costs about two index reads per key, however long the ledger is.
//!
//! A key is everything a report groups or prices by (owner, group,
//! account, region, blueprint, kind, product, type). Each `ledger_days`
//! row holds a key's unit-milliseconds (quantity × ms, and plain ms) of one
//! day and its running total through that day; a report takes the running
//! totals at its edges. Each listing scope has a `rolled_to` time `R`.
//!
//! The invariant, kept in the same transaction as every ledger write:
//! the rollup holds each closed interval's whole span, and each open
//! interval's span from its start up to its scope's `R` (a negative span
//! when it opened after `R`); each key's `open_q`/`open_n` are the
//! quantity and count of its open intervals. A report adds
//! `open_q × (now − R)` per key for the part not rolled up yet. So:
//! - opening an interval at `s` adds the span `[s, R)`;
//! - closing one at `e` adds `[R, e)`;
//! - a ledger pass at `t` adds `[R, t)` for every open quantity of its
//!   scope and sets `R = t`.
//!
//! The rollup of intervals written before it existed is built from the
//! ledger at the first start (`ensure_ledger_rollup`).

use crate::ledger::{UsageBucket, UsageField, UsageFilter};
use crate::{on_pool, BeginWrite, ReadRow, Result, Store, WriteTx};
use skyhold_core::Millis;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};

pub(crate) const DAY_MS: Millis = 86_400_000;

/// Day rows per statement (6 values a row).
const DAYS_BATCH: usize = 2_000;

/// Midnight UTC of `t`'s day.
pub(crate) fn day_of(t: Millis) -> Millis {
    t - t.rem_euclid(DAY_MS)
}

/// A key within its listing scope (account, region, kind).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Tail {
    pub owner: String,
    pub grp: String,
    pub blueprint: String,
    pub product: String,
    pub rtype: String,
}

/// A day's change: (day, quantity × ms, ms).
pub(crate) type DayChange = (Millis, i64, i64);

/// What one transaction adds to one scope's rollup, gathered in memory
/// and written by [`RollupTx::flush_rollup`]. A span costs the same
/// whatever its length: its partial first and last days are kept per day,
/// its whole days as a step up at the first and down after the last (a
/// difference array), expanded per day only when written.
#[derive(Debug, Default)]
pub(crate) struct ScopeRollup {
    /// The keys touched, each by its index in `tails`.
    index: HashMap<Tail, usize>,
    tails: Vec<Tail>,
    /// (key, day) → the change of that day's (quantity × ms, ms) by
    /// partial days, signed.
    parts: BTreeMap<(usize, Millis), (i64, i64)>,
    /// (key, day) → the change, from that day on, of what every whole day
    /// adds.
    steps: BTreeMap<(usize, Millis), (i64, i64)>,
    /// key → change of (open quantity, open count).
    opens: HashMap<usize, (i64, i64)>,
}

impl ScopeRollup {
    fn key(&mut self, tail: &Tail) -> usize {
        if let Some(k) = self.index.get(tail) {
            return *k;
        }
        self.tails.push(tail.clone());
        self.index.insert(tail.clone(), self.tails.len() - 1);
        self.tails.len() - 1
    }

    /// Adds `n` intervals of quantity `q` over `[from, to)`, split at UTC
    /// midnights; negative when `to < from`.
    pub(crate) fn add(&mut self, tail: &Tail, from: Millis, to: Millis, q: i64, n: i64) {
        if from == to || (q == 0 && n == 0) {
            return;
        }
        let (lo, hi, sign) = if from < to {
            (from, to, 1)
        } else {
            (to, from, -1)
        };
        let k = self.key(tail);
        let mut part = |day: Millis, len: Millis| {
            let e = self.parts.entry((k, day)).or_default();
            e.0 += sign * q * len;
            e.1 += sign * n * len;
        };
        let (first, last) = (day_of(lo), day_of(hi - 1));
        if first == last {
            part(first, hi - lo);
            return;
        }
        part(first, first + DAY_MS - lo);
        part(last, hi - last);
        if last - first > DAY_MS {
            for (day, s) in [(first + DAY_MS, sign), (last, -sign)] {
                let e = self.steps.entry((k, day)).or_default();
                e.0 += s * q * DAY_MS;
                e.1 += s * n * DAY_MS;
            }
        }
    }

    /// An interval of `tail` opened (`n = 1`) or closed (`n = -1`).
    pub(crate) fn open(&mut self, tail: &Tail, q: i64, n: i64) {
        let k = self.key(tail);
        let e = self.opens.entry(k).or_default();
        e.0 += q;
        e.1 += n;
    }

    /// Each touched key's days that change, in day order: (day, quantity
    /// × ms, ms).
    pub(crate) fn day_changes(&self) -> Vec<(&Tail, Vec<DayChange>)> {
        let mut out = Vec::new();
        for (k, tail) in self.tails.iter().enumerate() {
            let range = (k, Millis::MIN)..(k + 1, Millis::MIN);
            let parts: Vec<(Millis, (i64, i64))> = self
                .parts
                .range(range.clone())
                .map(|((_, d), v)| (*d, *v))
                .collect();
            let steps: Vec<(Millis, (i64, i64))> = self
                .steps
                .range(range)
                .map(|((_, d), v)| (*d, *v))
                .collect();
            let (mut pi, mut si) = (0, 0);
            let (mut rate_q, mut rate_m) = (0i64, 0i64);
            let mut days = Vec::new();
            let next_point = |pi: usize, si: usize| {
                let p = parts.get(pi).map(|x| x.0);
                let s = steps.get(si).map(|x| x.0);
                match (p, s) {
                    (Some(p), Some(s)) => Some(p.min(s)),
                    (p, s) => p.or(s),
                }
            };
            let mut day = next_point(0, 0);
            while let Some(d) = day {
                while si < steps.len() && steps[si].0 == d {
                    rate_q += steps[si].1 .0;
                    rate_m += steps[si].1 .1;
                    si += 1;
                }
                let (mut q, mut m) = (rate_q, rate_m);
                if pi < parts.len() && parts[pi].0 == d {
                    q += parts[pi].1 .0;
                    m += parts[pi].1 .1;
                    pi += 1;
                }
                if q != 0 || m != 0 {
                    days.push((d, q, m));
                }
                day = if rate_q != 0 || rate_m != 0 {
                    Some(d + DAY_MS)
                } else {
                    next_point(pi, si)
                };
            }
            if !days.is_empty() {
                out.push((tail, days));
            }
        }
        out
    }
}

/// A listing scope: account, region, kind.
pub(crate) type Scope<'a> = (&'a str, &'a str, &'a str);

/// Rollup writes inside a write transaction, on either backend.
pub(crate) trait RollupTx {
    /// The scope's `R`, locked until the transaction ends (PostgreSQL),
    /// set to `init` when the scope has none yet.
    fn rolled_to(
        &mut self,
        scope: Scope<'_>,
        init: Millis,
    ) -> impl std::future::Future<Output = Result<Millis>> + Send;

    /// Writes `r` (one scope's) and, with `roll = Some((R, t))`, rolls the
    /// scope's open quantities over `[R, t)` and sets its `R` to `t`.
    fn flush_rollup(
        &mut self,
        scope: Scope<'_>,
        r: ScopeRollup,
        roll: Option<(Millis, Millis)>,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
}

macro_rules! impl_rollup_tx {
    ($db:ty) => {
        impl RollupTx for WriteTx<$db> {
            async fn rolled_to(&mut self, scope: Scope<'_>, init: Millis) -> Result<Millis> {
                let (account, region, kind) = scope;
                Ok(sqlx::query_scalar(
                    "INSERT INTO ledger_rolled (account, region, kind, rolled_to) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (account, region, kind) DO UPDATE SET rolled_to = ledger_rolled.rolled_to \
                     RETURNING rolled_to",
                )
                .bind(account)
                .bind(region)
                .bind(kind)
                .bind(init)
                .fetch_one(&mut **self)
                .await?)
            }

            async fn flush_rollup(
                &mut self,
                scope: Scope<'_>,
                mut r: ScopeRollup,
                roll: Option<(Millis, Millis)>,
            ) -> Result<()> {
                let (account, region, kind) = scope;
                // The scope's keys: id, open quantity, open count.
                let mut keys: HashMap<Tail, (i64, i64, i64)> = HashMap::new();
                for row in sqlx::query(
                    "SELECT id, owner, grp, blueprint, product, rtype, open_q, open_n FROM ledger_keys \
                     WHERE account = $1 AND region = $2 AND kind = $3",
                )
                .bind(account)
                .bind(region)
                .bind(kind)
                .fetch_all(&mut **self)
                .await?
                {
                    keys.insert(
                        Tail {
                            owner: row.text("owner")?,
                            grp: row.text("grp")?,
                            blueprint: row.text("blueprint")?,
                            product: row.text("product")?,
                            rtype: row.text("rtype")?,
                        },
                        (row.int("id")?, row.int("open_q")?, row.int("open_n")?),
                    );
                }
                let new: Vec<Tail> =
                    r.tails.iter().filter(|t| !keys.contains_key(*t)).cloned().collect();
                let mut new_keys = std::collections::HashSet::new();
                for t in new {
                    if keys.contains_key(&t) {
                        continue;
                    }
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO ledger_keys (owner, grp, account, region, blueprint, kind, product, rtype) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    )
                    .bind(&t.owner)
                    .bind(&t.grp)
                    .bind(account)
                    .bind(region)
                    .bind(&t.blueprint)
                    .bind(kind)
                    .bind(&t.product)
                    .bind(&t.rtype)
                    .fetch_one(&mut **self)
                    .await?;
                    keys.insert(t, (id, 0, 0));
                    new_keys.insert(id);
                }
                for (i, (q, n)) in std::mem::take(&mut r.opens) {
                    if q == 0 && n == 0 {
                        continue;
                    }
                    let k = keys.get_mut(&r.tails[i]).expect("key inserted above");
                    k.1 += q;
                    k.2 += n;
                    sqlx::query("UPDATE ledger_keys SET open_q = open_q + $1, open_n = open_n + $2 WHERE id = $3")
                        .bind(q)
                        .bind(n)
                        .bind(k.0)
                        .execute(&mut **self)
                        .await?;
                }
                if let Some((from, to)) = roll {
                    for (t, (_, q, n)) in &keys {
                        r.add(t, from, to, *q, *n);
                    }
                    sqlx::query(
                        "INSERT INTO ledger_rolled (account, region, kind, rolled_to) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (account, region, kind) DO UPDATE SET rolled_to = excluded.rolled_to",
                    )
                    .bind(account)
                    .bind(region)
                    .bind(kind)
                    .bind(to)
                    .execute(&mut **self)
                    .await?;
                }
                // Per key: its days' changes (in day order), the change of
                // its totals and the days it touched.
                let mut by_key: Vec<(i64, Vec<DayChange>)> = Vec::new();
                let mut totals: BTreeMap<i64, (i64, i64, Millis, Millis)> = BTreeMap::new();
                for (t, days) in r.day_changes() {
                    let id = keys[t].0;
                    let e = totals.entry(id).or_insert((0, 0, days[0].0, days[0].0));
                    for (day, dq, dm) in &days {
                        e.0 += dq;
                        e.1 += dm;
                        e.2 = e.2.min(*day);
                        e.3 = e.3.max(*day);
                    }
                    by_key.push((id, days));
                }
                // The rows from each key's first changed day on, with their
                // running totals recomputed, written back in batches.
                let mut rows: Vec<(i64, Millis, i64, i64, i64, i64)> = Vec::new();
                for (id, deltas) in by_key {
                    let first = deltas[0].0;
                    let mut days: BTreeMap<Millis, (i64, i64)> = BTreeMap::new();
                    let (mut cum_q, mut cum_m) = (0, 0);
                    if !new_keys.contains(&id) {
                        // From the last day before `first` (its totals are
                        // the base) on.
                        for row in sqlx::query(
                            "SELECT day, qms, ms, cum_qms, cum_ms FROM ledger_days WHERE key_id = $1 \
                             AND day >= COALESCE((SELECT MAX(day) FROM ledger_days \
                             WHERE key_id = $1 AND day < $2), $2)",
                        )
                        .bind(id)
                        .bind(first)
                        .fetch_all(&mut **self)
                        .await?
                        {
                            let day = row.int("day")?;
                            if day < first {
                                (cum_q, cum_m) = (row.int("cum_qms")?, row.int("cum_ms")?);
                            } else {
                                days.insert(day, (row.int("qms")?, row.int("ms")?));
                            }
                        }
                    }
                    for (day, dq, dm) in deltas {
                        let e = days.entry(day).or_default();
                        e.0 += dq;
                        e.1 += dm;
                    }
                    for (day, (q, m)) in days {
                        cum_q += q;
                        cum_m += m;
                        rows.push((id, day, q, m, cum_q, cum_m));
                    }
                }
                for chunk in rows.chunks(DAYS_BATCH) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO ledger_days (key_id, day, qms, ms, cum_qms, cum_ms) ",
                    );
                    qb.push_values(chunk, |mut b, (id, day, q, m, cq, cm)| {
                        b.push_bind(*id)
                            .push_bind(*day)
                            .push_bind(*q)
                            .push_bind(*m)
                            .push_bind(*cq)
                            .push_bind(*cm);
                    });
                    qb.push(
                        " ON CONFLICT (key_id, day) DO UPDATE SET qms = excluded.qms, ms = excluded.ms, \
                         cum_qms = excluded.cum_qms, cum_ms = excluded.cum_ms",
                    );
                    qb.build().execute(&mut **self).await?;
                }
                for (id, (q, m, first, last)) in totals {
                    sqlx::query(
                        "UPDATE ledger_keys SET cum_qms = cum_qms + $1, cum_ms = cum_ms + $2, \
                         first_day = CASE WHEN first_day IS NULL OR first_day > $3 THEN $3 ELSE first_day END, \
                         last_day = CASE WHEN last_day IS NULL OR last_day < $4 THEN $4 ELSE last_day END \
                         WHERE id = $5",
                    )
                    .bind(q)
                    .bind(m)
                    .bind(first)
                    .bind(last)
                    .bind(id)
                    .execute(&mut **self)
                    .await?;
                }
                Ok(())
            }
        }
    };
}

impl_rollup_tx!(sqlx::Sqlite);
impl_rollup_tx!(sqlx::Postgres);

/// A key's columns as `account/region/kind/owner/grp/blueprint/product/rtype`.
fn key_text<R: ReadRow>(r: &R) -> Result<String> {
    Ok([
        "account",
        "region",
        "kind",
        "owner",
        "grp",
        "blueprint",
        "product",
        "rtype",
    ]
    .iter()
    .map(|c| r.text(c))
    .collect::<Result<Vec<_>>>()?
    .join("/"))
}

impl Store {
    /// The rollup as text lines, in a canonical order and without rows
    /// that add nothing: what the incremental writes and a rebuild must
    /// agree on (tests, diagnostics).
    pub async fn ledger_rollup_dump(&self) -> Result<Vec<String>> {
        on_pool!(self, p => {
            let mut out = Vec::new();
            for r in sqlx::query(
                "SELECT k.account, k.region, k.kind, k.owner, k.grp, k.blueprint, k.product, k.rtype, \
                 k.open_q, k.open_n, k.cum_qms, k.cum_ms FROM ledger_keys k \
                 WHERE k.open_q <> 0 OR k.open_n <> 0 OR k.cum_qms <> 0 OR k.cum_ms <> 0 \
                 ORDER BY k.account, k.region, k.kind, k.owner, k.grp, k.blueprint, k.product, k.rtype",
            )
            .fetch_all(p)
            .await?
            {
                let key = key_text(&r)?;
                out.push(format!(
                    "key {key} open {}x{} total {} {}",
                    r.int("open_n")?,
                    r.int("open_q")?,
                    r.int("cum_qms")?,
                    r.int("cum_ms")?
                ));
            }
            for r in sqlx::query(
                "SELECT k.account, k.region, k.kind, k.owner, k.grp, k.blueprint, k.product, k.rtype, \
                 d.day, d.qms, d.ms, d.cum_qms, d.cum_ms FROM ledger_days d JOIN ledger_keys k ON k.id = d.key_id \
                 WHERE d.qms <> 0 OR d.ms <> 0 \
                 ORDER BY k.account, k.region, k.kind, k.owner, k.grp, k.blueprint, k.product, k.rtype, d.day",
            )
            .fetch_all(p)
            .await?
            {
                let key = key_text(&r)?;
                out.push(format!(
                    "day {key} {} {} {} through {} {}",
                    r.int("day")?,
                    r.int("qms")?,
                    r.int("ms")?,
                    r.int("cum_qms")?,
                    r.int("cum_ms")?
                ));
            }
            for r in sqlx::query("SELECT account, region, kind, rolled_to FROM ledger_rolled ORDER BY account, region, kind")
                .fetch_all(p)
                .await?
            {
                out.push(format!(
                    "rolled {}/{}/{} to {}",
                    r.text("account")?,
                    r.text("region")?,
                    r.text("kind")?,
                    r.int("rolled_to")?
                ));
            }
            Ok(out)
        })
    }
}

impl Store {
    /// Builds the rollup from the ledger unless it has been built: once,
    /// at the first start after the rollup's migration (a no-op on a new
    /// database). Replicas starting together build it once.
    pub(crate) async fn ensure_ledger_rollup(&self) -> Result<()> {
        let built: Option<i64> = on_pool!(self, p => {
            sqlx::query_scalar("SELECT id FROM ledger_rollup_built")
                .fetch_optional(p)
                .await?
        });
        if built.is_none() {
            self.build_ledger_rollup(false).await?;
        }
        Ok(())
    }

    /// Rebuilds the whole rollup from the ledger's intervals in one
    /// transaction (each scope's `R` is its last reconciled listing). The
    /// result is what the incremental writes keep, which tests compare.
    pub async fn rebuild_ledger_rollup(&self) -> Result<()> {
        self.build_ledger_rollup(true).await
    }

    /// Builds the rollup (`force`: even when built already).
    async fn build_ledger_rollup(&self, force: bool) -> Result<()> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            // Whoever writes the marker builds; a second replica starting
            // at the same time waits for its commit (PostgreSQL) and then
            // finds it built.
            let marked: Option<i64> = sqlx::query_scalar(if force {
                "INSERT INTO ledger_rollup_built (id, built_at) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET built_at = excluded.built_at RETURNING id"
            } else {
                "INSERT INTO ledger_rollup_built (id, built_at) VALUES (1, $1) \
                 ON CONFLICT (id) DO NOTHING RETURNING id"
            })
            .bind(skyhold_core::now_millis())
            .fetch_optional(&mut *tx)
            .await?;
            if marked.is_none() {
                return Ok(());
            }
            for table in ["ledger_days", "ledger_keys", "ledger_rolled"] {
                sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
            }
            let mut rolled: HashMap<(String, String, String), Millis> = HashMap::new();
            for r in sqlx::query("SELECT account, region, kind, observed_at FROM ledger_scopes")
                .fetch_all(&mut *tx)
                .await?
            {
                rolled.insert((r.text("account")?, r.text("region")?, r.text("kind")?), r.int("observed_at")?);
            }
            let mut scopes: BTreeMap<(String, String, String), ScopeRollup> = BTreeMap::new();
            let rows = sqlx::query(
                "SELECT account, region, kind, owner, grp, blueprint, product, rtype, quantity, started_at, ended_at \
                 FROM ledger",
            )
            .fetch_all(&mut *tx)
            .await?;
            // A scope the ledger has intervals of but no listing time for
            // (written by an action only) is rolled to its latest time.
            let mut latest: HashMap<(String, String, String), Millis> = HashMap::new();
            for r in &rows {
                let scope = (r.text("account")?, r.text("region")?, r.text("kind")?);
                if !rolled.contains_key(&scope) {
                    let t = r.opt_int("ended_at")?.unwrap_or(r.int("started_at")?);
                    let e = latest.entry(scope).or_insert(t);
                    *e = (*e).max(t);
                }
            }
            rolled.extend(latest);
            for r in &rows {
                let scope = (r.text("account")?, r.text("region")?, r.text("kind")?);
                let at = rolled[&scope];
                let tail = Tail {
                    owner: r.text("owner")?,
                    grp: r.text("grp")?,
                    blueprint: r.text("blueprint")?,
                    product: r.text("product")?,
                    rtype: r.text("rtype")?,
                };
                let q = r.int("quantity")?;
                let s = r.int("started_at")?;
                let acc = scopes.entry(scope).or_default();
                match r.opt_int("ended_at")? {
                    Some(e) => acc.add(&tail, s, e, q, 1),
                    None => {
                        acc.add(&tail, s, at, q, 1);
                        acc.open(&tail, q, 1);
                    }
                }
            }
            for ((account, region, kind), at) in &rolled {
                sqlx::query("INSERT INTO ledger_rolled (account, region, kind, rolled_to) VALUES ($1, $2, $3, $4)")
                    .bind(account)
                    .bind(region)
                    .bind(kind)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            for ((account, region, kind), acc) in scopes {
                tx.flush_rollup((&account, &region, &kind), acc, None).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

/// One key's usage in a report's buckets.
#[derive(Debug, Clone)]
pub struct KeyUsage {
    pub owner: String,
    pub grp: String,
    pub account: String,
    pub region: String,
    pub blueprint: String,
    pub kind: String,
    pub product: String,
    pub rtype: String,
    /// What bills now: quantity and count of its open intervals.
    pub open_q: i64,
    pub open_n: i64,
    /// Per bucket: unit-ms and ms.
    pub buckets: Vec<(i64, i64)>,
}

/// Sums by (fields, product, account, region, type).
type KeySums<'a> = HashMap<(Vec<String>, &'a str, &'a str, &'a str, &'a str), (i64, i64)>;

/// Each key's usage in a set of buckets, grouped as each caller asks.
#[derive(Debug, Clone, Default)]
pub struct UsageSet {
    pub labels: Vec<String>,
    pub keys: Vec<KeyUsage>,
    /// user name → the groups the user is in now (when asked for).
    groups: HashMap<String, Vec<String>>,
}

impl UsageSet {
    /// The buckets `which` grouped by `group_by` (a day or month field
    /// takes the bucket's label) and by what prices them.
    pub fn grouped(
        &self,
        group_by: &[UsageField],
        which: std::ops::Range<usize>,
    ) -> Vec<UsageBucket> {
        let mut sums: KeySums<'_> = HashMap::new();
        for k in &self.keys {
            for bi in which.clone() {
                let (q, m) = k.buckets[bi];
                if q == 0 && m == 0 {
                    continue;
                }
                for fields in self.fields_of(group_by, k, &self.labels[bi]) {
                    let e = sums
                        .entry((fields, &k.product, &k.account, &k.region, &k.rtype))
                        .or_default();
                    e.0 += q;
                    e.1 += m;
                }
            }
        }
        Self::out(sums, 3_600_000.0)
    }

    /// What bills now, per hour (`unit_hours`: quantity; `hours`: count),
    /// grouped by `group_by` (day and month fields empty).
    pub fn rate(&self, group_by: &[UsageField]) -> Vec<UsageBucket> {
        let mut sums: KeySums<'_> = HashMap::new();
        for k in self.keys.iter().filter(|k| k.open_q != 0 || k.open_n != 0) {
            for fields in self.fields_of(group_by, k, "") {
                let e = sums
                    .entry((fields, &k.product, &k.account, &k.region, &k.rtype))
                    .or_default();
                e.0 += k.open_q;
                e.1 += k.open_n;
            }
        }
        Self::out(sums, 1.0)
    }

    fn out(sums: KeySums<'_>, per: f64) -> Vec<UsageBucket> {
        let mut out: Vec<UsageBucket> = sums
            .into_iter()
            .map(
                |((fields, product, account, region, rtype), (q, m))| UsageBucket {
                    fields,
                    product: product.to_owned(),
                    account: account.to_owned(),
                    region: region.to_owned(),
                    rtype: rtype.to_owned(),
                    unit_hours: q as f64 / per,
                    hours: m as f64 / per,
                },
            )
            .collect();
        out.sort_by(|a, b| {
            (&a.fields, &a.product, &a.account, &a.region, &a.rtype)
                .cmp(&(&b.fields, &b.product, &b.account, &b.region, &b.rtype))
        });
        out
    }

    /// The group-by values a key's usage counts under (more than one set
    /// when grouped by group and its owner is in several groups).
    fn fields_of(&self, group_by: &[UsageField], k: &KeyUsage, label: &str) -> Vec<Vec<String>> {
        let mut sets = vec![Vec::with_capacity(group_by.len())];
        for f in group_by {
            let one = |v: &str| vec![v.to_owned()];
            let values: Vec<String> = match f {
                UsageField::Owner => one(&k.owner),
                UsageField::Group if !k.grp.is_empty() => one(&k.grp),
                UsageField::Group => match self.groups.get(&k.owner) {
                    Some(g) if !g.is_empty() => g.clone(),
                    _ => one(""),
                },
                UsageField::Account => one(&k.account),
                UsageField::Region => one(&k.region),
                UsageField::Blueprint => one(&k.blueprint),
                UsageField::Kind => one(&k.kind),
                UsageField::Day | UsageField::Month => one(label),
            };
            sets = sets
                .into_iter()
                .flat_map(|s| {
                    values.iter().map(move |v| {
                        let mut s = s.clone();
                        s.push(v.clone());
                        s
                    })
                })
                .collect();
        }
        sets
    }
}

/// Up to this many distinct bucket edges a report reads running totals at
/// each edge (two index reads per key and edge); beyond, it sums the days.
const MAX_EDGES: usize = 16;

/// Sums keyed by the report's fields (the bucket's label in place of a day
/// or month field) and what prices them.
type Sums = BTreeMap<(Vec<String>, String, String, String, String), (i64, i64)>;

/// The SQL of a report's group-by fields over `ledger_keys k` (joined
/// with the membership as `ug` for `group`); day and month are labels
/// added afterwards.
fn field_exprs(group_by: &[UsageField]) -> Vec<&'static str> {
    group_by
        .iter()
        .filter_map(|f| match f {
            UsageField::Owner => Some("k.owner"),
            UsageField::Group => Some("COALESCE(NULLIF(k.grp, ''), ug.grp, '')"),
            UsageField::Account => Some("k.account"),
            UsageField::Region => Some("k.region"),
            UsageField::Blueprint => Some("k.blueprint"),
            UsageField::Kind => Some("k.kind"),
            UsageField::Day | UsageField::Month => None,
        })
        .collect()
}

const MEMBERSHIP_JOIN: &str =
    " LEFT JOIN (SELECT u.username AS uname, g.name AS grp FROM group_members m \
     JOIN users u ON u.id = m.user_id JOIN groups g ON g.id = m.group_id) ug \
     ON k.grp = '' AND ug.uname = k.owner";

/// The fields of a result row (`f0`…), with `label` where the report
/// has its day or month field.
fn row_fields<R: ReadRow>(r: &R, group_by: &[UsageField], label: &str) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(group_by.len());
    let mut i = 0;
    for f in group_by {
        if matches!(f, UsageField::Day | UsageField::Month) {
            out.push(label.to_owned());
        } else {
            out.push(r.text(&format!("f{i}"))?);
            i += 1;
        }
    }
    Ok(out)
}

/// Adds one result row's pricing columns and sums to `sums`.
fn add_sum<R: ReadRow>(sums: &mut Sums, r: &R, fields: Vec<String>, q: i64, m: i64) -> Result<()> {
    if q == 0 && m == 0 {
        return Ok(());
    }
    let e = sums
        .entry((
            fields,
            r.text("product")?,
            r.text("account")?,
            r.text("region")?,
            r.text("rtype")?,
        ))
        .or_default();
    e.0 += q;
    e.1 += m;
    Ok(())
}

fn buckets_of(sums: Sums, per: f64) -> Vec<UsageBucket> {
    sums.into_iter()
        .map(
            |((fields, product, account, region, rtype), (q, m))| UsageBucket {
                fields,
                product,
                account,
                region,
                rtype,
                unit_hours: q as f64 / per,
                hours: m as f64 / per,
            },
        )
        .collect()
}

/// Buckets taken out to whole UTC days, and their distinct edges in order.
fn whole_days(
    buckets: &[(String, Millis, Millis)],
) -> (Vec<(String, Millis, Millis)>, Vec<Millis>) {
    let buckets: Vec<(String, Millis, Millis)> = buckets
        .iter()
        .map(|(l, s, e)| (l.clone(), day_of(*s), day_of(*e + DAY_MS - 1)))
        .collect();
    let mut edges: Vec<Millis> = buckets.iter().flat_map(|b| [b.1, b.2]).collect();
    edges.sort_unstable();
    edges.dedup();
    (buckets, edges)
}

/// `[r, now)` within `[s, e)`, negative when `now < r`.
fn signed_overlap(r: Millis, now: Millis, s: Millis, e: Millis) -> i64 {
    let (lo, hi, sign) = if r <= now { (r, now, 1) } else { (now, r, -1) };
    sign * (hi.min(e) - lo.max(s)).max(0)
}

/// Pushes the report's joins and filters after `FROM ledger_keys k …`.
macro_rules! push_key_filters {
    ($qb:expr, $group_by:expr, $filter:expr) => {{
        if $group_by.contains(&UsageField::Group) {
            $qb.push(MEMBERSHIP_JOIN);
        }
        $qb.push(" WHERE 1 = 1");
        if let Some(owners) = &$filter.owners {
            $qb.push(" AND k.owner IN (");
            let mut sep = $qb.separated(", ");
            for o in owners {
                sep.push_bind(o.clone());
            }
            $qb.push(")");
        }
        if let Some(a) = &$filter.account {
            $qb.push(" AND k.account = ").push_bind(a.clone());
        }
    }};
}

/// Pushes `GROUP BY` the fields and what prices them.
macro_rules! push_group_by {
    ($qb:expr, $exprs:expr, $first:expr) => {{
        $qb.push(" GROUP BY ");
        $qb.push($first);
        for e in $exprs.iter() {
            $qb.push(format!("{e}, "));
        }
        $qb.push("k.product, k.account, k.region, k.rtype");
    }};
}

impl Store {
    /// Unit-hours per bucket (label, start, end: whole UTC days; other
    /// times are taken out to their day's edges), grouped by `group_by`
    /// and by what prices them (product, account, region, type): the
    /// rollup, plus each key's open quantity from its scope's `R` up to
    /// `now`. Grouped by `group`, a user's hours count for each group the
    /// user is in now (a group's total is its own and its members', as
    /// with quotas). Few edges: from [`Store::usage_set`]; many (a daily
    /// chart): the days summed in SQL.
    pub async fn usage(
        &self,
        group_by: &[UsageField],
        buckets: &[(String, Millis, Millis)],
        filter: &UsageFilter,
        now: Millis,
    ) -> Result<Vec<UsageBucket>> {
        if buckets.is_empty() || filter.owners.as_ref().is_some_and(|o| o.is_empty()) {
            return Ok(Vec::new());
        }
        let (buckets, edges) = whole_days(buckets);
        if edges.len() <= MAX_EDGES {
            let set = self
                .usage_set(&buckets, filter, now, group_by.contains(&UsageField::Group))
                .await?;
            return Ok(set.grouped(group_by, 0..buckets.len()));
        }
        // Many buckets (a daily chart): the days summed in SQL.
        let exprs = field_exprs(group_by);
        let mut sums = Sums::new();
        {
            let from = edges.first().copied().unwrap_or(0);
            let to = edges.last().copied().unwrap_or(0);
            let bucket_of = |day: Millis| buckets.iter().position(|b| b.1 <= day && day < b.2);
            on_pool!(self, p => {
                // The days' sums.
                let mut qb = sqlx::QueryBuilder::new("SELECT d.day AS day, ");
                for (i, e) in exprs.iter().enumerate() {
                    qb.push(format!("{e} AS f{i}, "));
                }
                qb.push(
                    "k.product, k.account, k.region, k.rtype, CAST(SUM(d.qms) AS BIGINT) AS q, \
                     CAST(SUM(d.ms) AS BIGINT) AS m FROM ledger_days d JOIN ledger_keys k ON k.id = d.key_id",
                );
                push_key_filters!(qb, group_by, filter);
                qb.push(" AND d.day >= ").push_bind(from).push(" AND d.day < ").push_bind(to);
                push_group_by!(qb, exprs, "d.day, ");
                for r in qb.build().fetch_all(p).await? {
                    if let Some(bi) = bucket_of(r.int("day")?) {
                        let (q, m) = (r.int("q")?, r.int("m")?);
                        add_sum(&mut sums, &r, row_fields(&r, group_by, &buckets[bi].0)?, q, m)?;
                    }
                }
                // The open quantities from R to now, by R.
                let mut qb = sqlx::QueryBuilder::new("SELECT lr.rolled_to AS rolled_to, ");
                for (i, e) in exprs.iter().enumerate() {
                    qb.push(format!("{e} AS f{i}, "));
                }
                qb.push(
                    "k.product, k.account, k.region, k.rtype, CAST(SUM(k.open_q) AS BIGINT) AS q, \
                     CAST(SUM(k.open_n) AS BIGINT) AS m FROM ledger_keys k JOIN ledger_rolled lr \
                     ON lr.account = k.account AND lr.region = k.region AND lr.kind = k.kind",
                );
                push_key_filters!(qb, group_by, filter);
                qb.push(" AND k.open_n <> 0");
                push_group_by!(qb, exprs, "lr.rolled_to, ");
                for r in qb.build().fetch_all(p).await? {
                    let rolled = r.int("rolled_to")?;
                    let (q, m) = (r.int("q")?, r.int("m")?);
                    for (label, s, e) in &buckets {
                        let len = signed_overlap(rolled, now, *s, *e);
                        if len != 0 {
                            add_sum(&mut sums, &r, row_fields(&r, group_by, label)?, q * len, m * len)?;
                        }
                    }
                }
            });
        }
        Ok(buckets_of(sums, 3_600_000.0))
    }

    /// Each key's usage in `buckets` (whole UTC days, at most
    /// [`MAX_EDGES`] distinct edges), from the running totals at the edges
    /// plus its open quantity from its scope's `R` to `now`; the groups
    /// of each member when `with_groups`. One query; grouping is
    /// [`UsageSet::grouped`]'s.
    pub async fn usage_set(
        &self,
        buckets: &[(String, Millis, Millis)],
        filter: &UsageFilter,
        now: Millis,
        with_groups: bool,
    ) -> Result<UsageSet> {
        let (buckets, edges) = whole_days(buckets);
        let mut set = UsageSet {
            labels: buckets.iter().map(|b| b.0.clone()).collect(),
            keys: Vec::new(),
            groups: HashMap::new(),
        };
        if buckets.is_empty() || filter.owners.as_ref().is_some_and(|o| o.is_empty()) {
            return Ok(set);
        }
        if with_groups {
            set.groups = self.groups_by_member().await?;
        }
        on_pool!(self, p => {
            let last_day: Option<i64> = sqlx::query_scalar("SELECT MAX(day) FROM ledger_days")
                .fetch_one(p)
                .await?;
            let last_day = last_day.unwrap_or(Millis::MIN);
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT k.owner, k.grp, k.account, k.region, k.blueprint, k.kind, k.product, k.rtype, \
                 k.open_q, k.open_n, lr.rolled_to, k.cum_qms, k.cum_ms",
            );
            // The running totals before each edge up to the last day (after
            // it, the key's whole total).
            let read: Vec<usize> = (0..edges.len()).filter(|i| edges[*i] <= last_day).collect();
            // A key whose first day is at or after the edge had nothing
            // before it, one whose last day is before it all of its total:
            // only the others are looked up (SQLite: a subquery per
            // column; PostgreSQL: one lateral probe for both).
            let sqlite = self.is_sqlite();
            for (j, i) in read.iter().enumerate() {
                for col in ["cum_qms", "cum_ms"] {
                    qb.push(", CASE WHEN k.first_day IS NULL OR k.first_day >= ")
                        .push_bind(edges[*i])
                        .push(" THEN 0 WHEN k.last_day < ")
                        .push_bind(edges[*i])
                        .push(format!(" THEN k.{col} ELSE "));
                    if sqlite {
                        qb.push(format!(
                            "(SELECT d.{col} FROM ledger_days d WHERE d.key_id = k.id AND d.day < "
                        ))
                        .push_bind(edges[*i])
                        .push(" ORDER BY d.day DESC LIMIT 1)");
                    } else {
                        qb.push(format!("e{j}.{col}"));
                    }
                    qb.push(" END");
                }
            }
            qb.push(
                " FROM ledger_keys k LEFT JOIN ledger_rolled lr \
                 ON lr.account = k.account AND lr.region = k.region AND lr.kind = k.kind",
            );
            if !sqlite {
                for (j, i) in read.iter().enumerate() {
                    qb.push(
                        " LEFT JOIN LATERAL (SELECT d.cum_qms, d.cum_ms FROM ledger_days d \
                         WHERE d.key_id = k.id AND d.day < ",
                    )
                    .push_bind(edges[*i])
                    .push(" AND k.first_day < ")
                    .push_bind(edges[*i])
                    .push(" AND k.last_day >= ")
                    .push_bind(edges[*i])
                    .push(format!(" ORDER BY d.day DESC LIMIT 1) e{j} ON true"));
                }
            }
            push_key_filters!(qb, [UsageField::Owner], filter);
            // Keys with nothing in the range and nothing open add nothing.
            qb.push(" AND (k.open_n <> 0 OR k.last_day >= ").push_bind(edges[0]).push(")");
            let edge = |x: Millis| edges.binary_search(&x).unwrap_or_default();
            for r in qb.build().fetch_all(p).await? {
                let total: (i64, i64) = (r.try_get(11)?, r.try_get(12)?);
                let mut at = vec![total; edges.len()];
                for (j, i) in read.iter().enumerate() {
                    let q: Option<i64> = r.try_get(13 + 2 * j)?;
                    let m: Option<i64> = r.try_get(14 + 2 * j)?;
                    at[*i] = (q.unwrap_or(0), m.unwrap_or(0));
                }
                let open: (i64, i64) = (r.try_get(8)?, r.try_get(9)?);
                let rolled: Option<i64> = r.try_get(10)?;
                let mut sums = Vec::with_capacity(buckets.len());
                for (_, s, e) in &buckets {
                    let (from, to) = (at[edge(*s)], at[edge(*e)]);
                    let live = rolled.map_or(0, |rt| signed_overlap(rt, now, *s, *e));
                    sums.push((to.0 - from.0 + open.0 * live, to.1 - from.1 + open.1 * live));
                }
                if sums.iter().all(|v| *v == (0, 0)) && open == (0, 0) {
                    continue;
                }
                let text = |i: usize| -> Result<String> { Ok(r.try_get(i)?) };
                set.keys.push(KeyUsage {
                    owner: text(0)?,
                    grp: text(1)?,
                    account: text(2)?,
                    region: text(3)?,
                    blueprint: text(4)?,
                    kind: text(5)?,
                    product: text(6)?,
                    rtype: text(7)?,
                    open_q: open.0,
                    open_n: open.1,
                    buckets: sums,
                });
            }
        });
        Ok(set)
    }

    /// user name → the groups the user is in now.
    async fn groups_by_member(&self) -> Result<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        on_pool!(self, p => {
            for r in sqlx::query(
                "SELECT u.username AS uname, g.name AS grp FROM group_members m \
                 JOIN users u ON u.id = m.user_id JOIN groups g ON g.id = m.group_id ORDER BY g.name",
            )
            .fetch_all(p)
            .await?
            {
                out.entry(r.text("uname")?).or_default().push(r.text("grp")?);
            }
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail() -> Tail {
        Tail {
            owner: "ann".into(),
            grp: String::new(),
            blueprint: String::new(),
            product: "instance-hour".into(),
            rtype: "t3.micro".into(),
        }
    }

    #[test]
    fn spans_split_at_midnight_and_cancel_when_reversed() {
        let mut r = ScopeRollup::default();
        let t = tail();
        let d = 20_000 * DAY_MS;
        r.add(&t, d - 3_600_000, d + 7_200_000, 2, 1);
        let days = |r: &ScopeRollup| -> Vec<DayChange> {
            r.day_changes().into_iter().flat_map(|(_, d)| d).collect()
        };
        assert_eq!(
            days(&r),
            [
                (d - DAY_MS, 7_200_000, 3_600_000),
                (d, 14_400_000, 7_200_000)
            ]
        );
        r.add(&t, d + 7_200_000, d - 3_600_000, 2, 1);
        assert_eq!(days(&r), []);
        r.add(&t, d, d, 5, 1);
        assert_eq!(days(&r), []);
    }

    #[test]
    fn long_spans_cover_every_day_once() {
        let mut r = ScopeRollup::default();
        let t = tail();
        let d = 20_000 * DAY_MS;
        // From 6 h before d to 3 h into d + 3 days: 6 h, three whole days,
        // 3 h; then one more whole day d+1 on top, and a span ending at a
        // midnight.
        r.add(&t, d - 6 * 3_600_000, d + 3 * DAY_MS + 3 * 3_600_000, 1, 1);
        r.add(&t, d + DAY_MS, d + 2 * DAY_MS, 2, 1);
        let h = 3_600_000;
        let days: Vec<DayChange> = r.day_changes().into_iter().flat_map(|(_, d)| d).collect();
        assert_eq!(
            days,
            [
                (d - DAY_MS, 6 * h, 6 * h),
                (d, DAY_MS, DAY_MS),
                (d + DAY_MS, 3 * DAY_MS, 2 * DAY_MS),
                (d + 2 * DAY_MS, DAY_MS, DAY_MS),
                (d + 3 * DAY_MS, 3 * h, 3 * h),
            ]
        );
        // Far apart spans: the days between are skipped, not visited.
        let mut r = ScopeRollup::default();
        r.add(&t, d, d + h, 1, 1);
        r.add(&t, d + 1000 * DAY_MS, d + 1000 * DAY_MS + h, 1, 1);
        let days: Vec<Millis> = r
            .day_changes()
            .into_iter()
            .flat_map(|(_, d)| d)
            .map(|x| x.0)
            .collect();
        assert_eq!(days, [d, d + 1000 * DAY_MS]);
    }
}
