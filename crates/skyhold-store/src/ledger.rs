//! The usage ledger (`ledger`, `ledger_scopes`): intervals of each
//! resource's billable state, reconciled from the cached resources after
//! each listing (`reconcile_ledger`) and after skyhold's own actions
//! (`reconcile_ledger_resource`), by the rules of `skyhold_core::ledger`.
//! Each pass runs in one write transaction: a crash loses the pass, never
//! half of it, and the next pass redoes it from the same rows.

use crate::rollup::{RollupTx, ScopeRollup, Tail};
use crate::{on_pool, BeginWrite, ReadRow, Result, Store, StoreError};
use skyhold_core::ledger::{self, Billing, Observation, Op, OpenInterval};
use skyhold_core::prices::Product;
use skyhold_core::{AccountName, Millis, ResourceId, ResourceKind};
use std::collections::HashMap;

/// One interval of the ledger.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Interval {
    pub id: i64,
    pub resource_id: i64,
    pub account: String,
    pub region: String,
    pub kind: String,
    pub provider_id: String,
    pub product: String,
    pub rtype: String,
    pub quantity: i64,
    pub owner: String,
    pub group: String,
    pub blueprint: String,
    pub started_at: Millis,
    pub start_how: String,
    pub ended_at: Option<Millis>,
    pub end_how: String,
}

/// What one ledger pass wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LedgerStats {
    pub opened: usize,
    pub closed: usize,
}

/// Unit-hours of one (fields, product, region, type) bucket of a report,
/// before pricing. `fields` follow the report's group-by order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UsageBucket {
    pub fields: Vec<String>,
    pub product: String,
    pub region: String,
    pub rtype: String,
    pub account: String,
    /// Quantity × hours (GiB-hours for storage).
    pub unit_hours: f64,
    /// Hours the resources were billed (not multiplied by quantity).
    pub hours: f64,
}

/// A report's grouping column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageField {
    Owner,
    Group,
    Account,
    Region,
    Blueprint,
    Kind,
    /// The UTC day (YYYY-MM-DD) the hours fall on.
    Day,
    /// The UTC month (YYYY-MM).
    Month,
}

impl UsageField {
    pub const ALL: [UsageField; 8] = [
        UsageField::Owner,
        UsageField::Group,
        UsageField::Account,
        UsageField::Region,
        UsageField::Blueprint,
        UsageField::Kind,
        UsageField::Day,
        UsageField::Month,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UsageField::Owner => "owner",
            UsageField::Group => "group",
            UsageField::Account => "account",
            UsageField::Region => "region",
            UsageField::Blueprint => "blueprint",
            UsageField::Kind => "kind",
            UsageField::Day => "day",
            UsageField::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<UsageField> {
        UsageField::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// Which intervals a report counts.
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    /// Only these owners (user names, `group:NAME`); None: everyone.
    pub owners: Option<Vec<String>>,
    pub account: Option<String>,
}

/// The fields of a resource row the ledger reads.
struct Row {
    id: i64,
    provider_id: String,
    state: String,
    rtype: String,
    size_gib: i64,
    owner: String,
    created_at: Millis,
    deleted_at: Option<Millis>,
    tags: String,
    attributes: String,
}

const ROW_COLS: &str =
    "r.id, r.provider_id, r.state, r.rtype, r.size_gib, r.owner, r.created_at, r.deleted_at, r.tags, r.attributes";

fn row_from<R: ReadRow>(r: &R) -> Result<Row> {
    Ok(Row {
        id: r.int("id")?,
        provider_id: r.text("provider_id")?,
        state: r.text("state")?,
        rtype: r.text("rtype")?,
        size_gib: r.int("size_gib")?,
        owner: r.text("owner")?,
        created_at: r.int("created_at")?,
        deleted_at: r.opt_int("deleted_at")?,
        tags: r.text("tags")?,
        attributes: r.text("attributes")?,
    })
}

#[derive(serde::Deserialize, Default)]
struct Attrs {
    stopped_at: Option<String>,
    terminated_at: Option<String>,
    num_nodes: Option<i64>,
}

fn parse_time(s: &Option<String>) -> Option<Millis> {
    s.as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
}

/// What a row is billed for, what its ledger observation says besides,
/// and its blueprint (from the `skyhold:blueprint` tag, without version).
fn observe(kind: ResourceKind, r: &Row) -> (Option<Billing>, Option<Millis>, String) {
    let attrs: Attrs = serde_json::from_str(&r.attributes).unwrap_or_default();
    let billing = ledger::billing(
        kind,
        &r.state,
        &r.rtype,
        r.size_gib,
        attrs.num_nodes.unwrap_or(1),
        r.deleted_at.is_some(),
    );
    let transition = parse_time(&attrs.terminated_at).or(parse_time(&attrs.stopped_at));
    let blueprint = if billing.is_some() && r.tags.contains(skyhold_core::launch::BLUEPRINT_TAG) {
        serde_json::from_str::<HashMap<String, String>>(&r.tags)
            .ok()
            .and_then(|t| t.get(skyhold_core::launch::BLUEPRINT_TAG).cloned())
            .map(|b| b.split('@').next().unwrap_or_default().to_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    (billing, transition, blueprint)
}

struct OpenRow {
    id: i64,
    open: OpenInterval,
    /// Its rollup key within the scope.
    tail: Tail,
}

fn open_from<R: ReadRow>(r: &R) -> Result<(i64, OpenRow)> {
    let product = r.text("product")?;
    let billed = Product::parse(&product)
        .ok_or_else(|| StoreError::Corrupt(format!("ledger product {product:?}")))?;
    Ok((
        r.int("resource_id")?,
        OpenRow {
            id: r.int("id")?,
            open: OpenInterval {
                billing: Billing {
                    product: billed,
                    rtype: r.text("rtype")?,
                    quantity: r.int("quantity")?,
                },
                started_at: r.int("started_at")?,
            },
            tail: Tail {
                owner: r.text("owner")?,
                grp: r.text("grp")?,
                blueprint: r.text("blueprint")?,
                product,
                rtype: r.text("rtype")?,
            },
        },
    ))
}

const INTERVAL_COLS: &str =
    "id, resource_id, account, region, kind, provider_id, product, rtype, quantity, \
     owner, grp, blueprint, started_at, start_how, ended_at, end_how";

fn interval_from<R: ReadRow>(r: &R) -> Result<Interval> {
    Ok(Interval {
        id: r.int("id")?,
        resource_id: r.int("resource_id")?,
        account: r.text("account")?,
        region: r.text("region")?,
        kind: r.text("kind")?,
        provider_id: r.text("provider_id")?,
        product: r.text("product")?,
        rtype: r.text("rtype")?,
        quantity: r.int("quantity")?,
        owner: r.text("owner")?,
        group: r.text("grp")?,
        blueprint: r.text("blueprint")?,
        started_at: r.int("started_at")?,
        start_how: r.text("start_how")?,
        ended_at: r.opt_int("ended_at")?,
        end_how: r.text("end_how")?,
    })
}

/// The ledger writes a pass decided, made in batches by
/// [`LedgerTx::write_pending`]: closes first (a resource's new interval may
/// open where its old one closed), then opens.
#[derive(Default)]
struct Pending {
    closes: Vec<Close>,
    opens: Vec<NewInterval>,
}

struct Close {
    /// The interval's id.
    id: i64,
    at: Millis,
    how: &'static str,
    tail: Tail,
    quantity: i64,
}

struct NewInterval {
    resource_id: i64,
    provider_id: String,
    owner: String,
    started_at: Millis,
    start_how: &'static str,
    recorded_at: Millis,
    quantity: i64,
    /// Its rollup key (with product, type, group and blueprint).
    tail: Tail,
}

impl Pending {
    fn close(&mut self, o: &OpenRow, at: Millis, how: ledger::How) {
        self.closes.push(Close {
            id: o.id,
            at,
            how: how.as_str(),
            tail: o.tail.clone(),
            quantity: o.open.billing.quantity,
        });
    }

    /// Runs the rules for one row (with its open interval, if any) and
    /// queues what they say.
    fn plan(
        &mut self,
        kind: ResourceKind,
        row: &Row,
        open: Option<&OpenRow>,
        mut obs: Observation,
    ) {
        let (billing, transition, blueprint) = observe(kind, row);
        obs.billing = billing;
        obs.transition_at = transition;
        obs.began_at = row.created_at;
        for op in ledger::reconcile(open.map(|o| &o.open), &obs) {
            match op {
                Op::Close { at, how } => {
                    if let Some(o) = open {
                        self.close(o, at, how);
                    }
                }
                Op::Open { billing, at, how } => {
                    let grp = row.owner.strip_prefix("group:").unwrap_or_default();
                    self.opens.push(NewInterval {
                        resource_id: row.id,
                        provider_id: row.provider_id.clone(),
                        owner: row.owner.clone(),
                        started_at: at,
                        start_how: how.as_str(),
                        recorded_at: obs.at,
                        quantity: billing.quantity,
                        tail: Tail {
                            owner: row.owner.clone(),
                            grp: grp.to_owned(),
                            blueprint: blueprint.clone(),
                            product: billing.product.as_str().to_owned(),
                            rtype: billing.rtype,
                        },
                    });
                }
            }
        }
    }
}

/// How far before the last pass a pass re-reads rows (see
/// `reconcile_ledger`).
const RESCAN_MARGIN: Millis = 60_000;

/// Rows per ledger statement (14 values a row; SQLite allows 32,766).
const LEDGER_BATCH: usize = 1_000;

/// Ledger writes inside a write transaction, on either backend.
trait LedgerTx {
    /// Writes `p` for one scope, adding each interval's share to `roll`
    /// (the scope rolled to `r`) and counting it in `stats`. A close that
    /// finds its interval already closed changes nothing.
    fn write_pending(
        &mut self,
        scope: crate::rollup::Scope<'_>,
        p: Pending,
        roll: &mut ScopeRollup,
        r: Millis,
        stats: &mut LedgerStats,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
}

macro_rules! impl_ledger_tx {
    ($db:ty) => {
        impl LedgerTx for crate::WriteTx<$db> {
            async fn write_pending(
                &mut self,
                (account, region, kind): crate::rollup::Scope<'_>,
                p: Pending,
                roll: &mut ScopeRollup,
                r: Millis,
                stats: &mut LedgerStats,
            ) -> Result<()> {
                for chunk in p.closes.chunks(LEDGER_BATCH) {
                    let mut qb = sqlx::QueryBuilder::new("WITH v (id, ended_at, end_how) AS (");
                    qb.push_values(chunk, |mut b, c| {
                        b.push_bind(c.id).push_bind(c.at).push_bind(c.how);
                    });
                    qb.push(
                        ") UPDATE ledger SET ended_at = (SELECT v.ended_at FROM v WHERE v.id = ledger.id), \
                         end_how = (SELECT v.end_how FROM v WHERE v.id = ledger.id) \
                         WHERE id IN (SELECT id FROM v) AND ended_at IS NULL RETURNING id",
                    );
                    let done: std::collections::HashSet<i64> =
                        qb.build_query_scalar().fetch_all(&mut **self).await?.into_iter().collect();
                    for c in chunk.iter().filter(|c| done.contains(&c.id)) {
                        roll.add(&c.tail, r, c.at, c.quantity, 1);
                        roll.open(&c.tail, -c.quantity, -1);
                        stats.closed += 1;
                    }
                }
                for chunk in p.opens.chunks(LEDGER_BATCH) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO ledger (resource_id, account, region, kind, provider_id, product, rtype, \
                         quantity, owner, grp, blueprint, started_at, start_how, recorded_at) ",
                    );
                    qb.push_values(chunk, |mut b, o| {
                        b.push_bind(o.resource_id)
                            .push_bind(account)
                            .push_bind(region)
                            .push_bind(kind)
                            .push_bind(&o.provider_id)
                            .push_bind(&o.tail.product)
                            .push_bind(&o.tail.rtype)
                            .push_bind(o.quantity)
                            .push_bind(&o.owner)
                            .push_bind(&o.tail.grp)
                            .push_bind(&o.tail.blueprint)
                            .push_bind(o.started_at)
                            .push_bind(o.start_how)
                            .push_bind(o.recorded_at);
                    });
                    qb.build().execute(&mut **self).await?;
                    for o in chunk {
                        roll.add(&o.tail, o.started_at, r, o.quantity, 1);
                        roll.open(&o.tail, o.quantity, 1);
                        stats.opened += 1;
                    }
                }
                Ok(())
            }
        }
    };
}

impl_ledger_tx!(sqlx::Sqlite);
impl_ledger_tx!(sqlx::Postgres);

fn blank_observation(
    at: Millis,
    prev_seen: Option<Millis>,
    action_at: Option<Millis>,
) -> Observation {
    Observation {
        billing: None,
        at,
        prev_seen,
        transition_at: None,
        began_at: 0,
        last_end: None,
        action_at,
    }
}

impl Store {
    /// Brings the ledger of one listing scope in line with its cached
    /// resources as of the listing taken at `observed_at`. A scope already
    /// reconciled at or after `observed_at` is left alone, so reruns and
    /// late replicas change nothing.
    pub async fn reconcile_ledger(
        &self,
        account: &AccountName,
        region: &str,
        kind: ResourceKind,
        observed_at: Millis,
    ) -> Result<LedgerStats> {
        let mut stats = LedgerStats::default();
        if !ledger::BILLABLE_KINDS.contains(&kind) {
            return Ok(stats);
        }
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            // First, so that concurrent writers of the scope take turns.
            let rolled = tx
                .rolled_to((account.as_str(), region, kind.as_str()), observed_at)
                .await?;
            let mut roll = ScopeRollup::default();
            let prev: Option<i64> = sqlx::query_scalar(
                "SELECT observed_at FROM ledger_scopes WHERE account = $1 AND region = $2 AND kind = $3",
            )
            .bind(account.as_str())
            .bind(region)
            .bind(kind.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if prev.is_some_and(|p| p >= observed_at) {
                return Ok(stats);
            }
            // The rows written (or tombstoned) since shortly before the
            // last pass: a row unchanged since a pass that reconciled it is
            // a fixed point of the rules, so a pass where little changed
            // reads little. The margin re-reads rows another replica wrote
            // with a clock up to RESCAN_MARGIN behind (harmless: the rules
            // write nothing for a row already reconciled).
            // Rows stamped with the last pass's own time were written by
            // its listing and reconciled by it.
            let since = prev.map_or(0, |p| p.saturating_sub(RESCAN_MARGIN));
            let changed = "r.account = $1 AND r.region = $2 AND r.kind = $3 \
                 AND (r.deleted_at IS NULL OR r.deleted_at >= $4) \
                 AND ((r.last_seen >= $4 AND r.last_seen <> $5) \
                      OR (r.deleted_at IS NOT NULL AND r.deleted_at <> $5))";
            let rows = sqlx::query(&format!("SELECT {ROW_COLS} FROM resources r WHERE {changed}"))
                .bind(account.as_str())
                .bind(region)
                .bind(kind.as_str())
                .bind(since)
                .bind(prev.unwrap_or(-1))
                .fetch_all(&mut *tx)
                .await?;
            // Their open intervals and each one's latest closed interval:
            // a first pass reads the scope's (an index on open intervals
            // by scope), a later one those of the rows it read, by id.
            let mut open: HashMap<i64, OpenRow> = HashMap::new();
            let mut last_end: HashMap<i64, i64> = HashMap::new();
            let ids: Vec<i64> = rows.iter().map(|r| r.int("id")).collect::<Result<_>>()?;
            let chunks: Vec<&[i64]> = if prev.is_none() {
                vec![&[]]
            } else {
                ids.chunks(LEDGER_BATCH).collect()
            };
            for chunk in chunks {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT id, resource_id, product, rtype, quantity, started_at, owner, grp, blueprint \
                     FROM ledger WHERE ended_at IS NULL",
                );
                let mut last = sqlx::QueryBuilder::new(
                    "SELECT resource_id, MAX(ended_at) AS ended_at FROM ledger WHERE ended_at IS NOT NULL",
                );
                for qb in [&mut qb, &mut last] {
                    if prev.is_none() {
                        qb.push(" AND account = ")
                            .push_bind(account.as_str())
                            .push(" AND region = ")
                            .push_bind(region)
                            .push(" AND kind = ")
                            .push_bind(kind.as_str());
                    } else {
                        qb.push(" AND resource_id IN (");
                        let mut sep = qb.separated(", ");
                        for id in chunk {
                            sep.push_bind(*id);
                        }
                        qb.push(")");
                    }
                }
                last.push(" GROUP BY resource_id");
                for r in qb.build().fetch_all(&mut *tx).await? {
                    let (rid, o) = open_from(&r)?;
                    open.insert(rid, o);
                }
                for r in last.build().fetch_all(&mut *tx).await? {
                    last_end.insert(r.int("resource_id")?, r.int("ended_at")?);
                }
            }
            let mut pending = Pending::default();
            for r in &rows {
                let row = row_from(r)?;
                let o = open.get(&row.id);
                if o.is_none() && row.deleted_at.is_some() {
                    continue;
                }
                let mut obs = blank_observation(observed_at, prev, None);
                obs.last_end = last_end.get(&row.id).copied();
                pending.plan(kind, &row, o, obs);
            }
            tx.write_pending(
                (account.as_str(), region, kind.as_str()),
                pending,
                &mut roll,
                rolled,
                &mut stats,
            )
            .await?;
            sqlx::query(
                "INSERT INTO ledger_scopes (account, region, kind, observed_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (account, region, kind) DO UPDATE SET observed_at = excluded.observed_at",
            )
            .bind(account.as_str())
            .bind(region)
            .bind(kind.as_str())
            .bind(observed_at)
            .execute(&mut *tx)
            .await?;
            tx.flush_rollup(
                (account.as_str(), region, kind.as_str()),
                roll,
                Some((rolled, observed_at)),
            )
            .await?;
            tx.commit().await?;
            Ok(stats)
        })
    }

    /// Brings one resource's ledger in line with its cached row right
    /// after a skyhold action settled at `action_at` (a stop closes the
    /// running interval at the action's time).
    pub async fn reconcile_ledger_resource(
        &self,
        id: ResourceId,
        action_at: Millis,
    ) -> Result<LedgerStats> {
        let mut stats = LedgerStats::default();
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let Some(r) = sqlx::query(&format!(
                "SELECT {ROW_COLS}, r.account, r.region, r.kind FROM resources r WHERE r.id = $1"
            ))
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(stats);
            };
            let row = row_from(&r)?;
            let account = r.text("account")?;
            let region = r.text("region")?;
            let kind_s = r.text("kind")?;
            let Some(kind) = ResourceKind::parse(&kind_s) else {
                return Ok(stats);
            };
            if !ledger::BILLABLE_KINDS.contains(&kind) {
                return Ok(stats);
            }
            let rolled = tx.rolled_to((&account, &region, &kind_s), action_at).await?;
            let mut roll = ScopeRollup::default();
            let open = match sqlx::query(
                "SELECT id, resource_id, product, rtype, quantity, started_at, owner, grp, blueprint FROM ledger \
                 WHERE resource_id = $1 AND ended_at IS NULL",
            )
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?
            {
                Some(o) => Some(open_from(&o)?.1),
                None => None,
            };
            let prev: Option<i64> = sqlx::query_scalar(
                "SELECT observed_at FROM ledger_scopes WHERE account = $1 AND region = $2 AND kind = $3",
            )
            .bind(&account)
            .bind(&region)
            .bind(&kind_s)
            .fetch_optional(&mut *tx)
            .await?;
            let obs = blank_observation(action_at, prev, Some(action_at));
            let mut obs = obs;
            obs.last_end = sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(ended_at) FROM ledger WHERE resource_id = $1",
            )
            .bind(row.id)
            .fetch_one(&mut *tx)
            .await?;
            let mut pending = Pending::default();
            pending.plan(kind, &row, open.as_ref(), obs);
            tx.write_pending((&account, &region, &kind_s), pending, &mut roll, rolled, &mut stats)
                .await?;
            tx.flush_rollup((&account, &region, &kind_s), roll, None).await?;
            tx.commit().await?;
            Ok(stats)
        })
    }

    /// A resource's intervals, oldest first.
    pub async fn ledger_of(&self, id: ResourceId) -> Result<Vec<Interval>> {
        on_pool!(self, p => {
            let rows = sqlx::query(&format!(
                "SELECT {INTERVAL_COLS} FROM ledger WHERE resource_id = $1 ORDER BY started_at, id"
            ))
            .bind(id.0)
            .fetch_all(p)
            .await?;
            rows.iter().map(interval_from).collect()
        })
    }
}
