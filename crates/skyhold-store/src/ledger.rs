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

/// Closes an open interval at `$at` (if still open), keeping the rollup.
macro_rules! close_interval {
    ($tx:expr, $o:expr, $at:expr, $how:expr, $roll:expr, $r:expr, $stats:expr) => {{
        let o: &OpenRow = $o;
        let at: Millis = $at;
        let done = sqlx::query(
            "UPDATE ledger SET ended_at = $1, end_how = $2 WHERE id = $3 AND ended_at IS NULL",
        )
        .bind(at)
        .bind($how.as_str())
        .bind(o.id)
        .execute(&mut *$tx)
        .await?
        .rows_affected();
        if done > 0 {
            let q = o.open.billing.quantity;
            $roll.add(&o.tail, $r, at, q, 1);
            $roll.open(&o.tail, -q, -1);
            $stats.closed += 1;
        }
    }};
}

/// Runs the rules for one row and writes what they say, inside `$tx`,
/// gathering the rollup's share in `$roll` (the scope rolled to `$r`).
macro_rules! apply_row {
    ($tx:expr, $scope:expr, $kind:expr, $row:expr, $open:expr, $obs:expr, $roll:expr, $r:expr, $stats:expr) => {{
        let (account, region): (&str, &str) = $scope;
        let row: &Row = $row;
        let open: Option<&OpenRow> = $open;
        let mut obs: Observation = $obs;
        let (billing, transition, blueprint) = observe($kind, row);
        obs.billing = billing;
        obs.transition_at = transition;
        obs.began_at = row.created_at;
        for op in ledger::reconcile(open.map(|o| &o.open), &obs) {
            match op {
                Op::Close { at, how } => {
                    if let Some(o) = open {
                        close_interval!($tx, o, at, how, $roll, $r, $stats);
                    }
                }
                Op::Open { billing, at, how } => {
                    let grp = row.owner.strip_prefix("group:").unwrap_or_default();
                    sqlx::query(
                        "INSERT INTO ledger (resource_id, account, region, kind, provider_id, product, rtype, \
                         quantity, owner, grp, blueprint, started_at, start_how, recorded_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    )
                    .bind(row.id)
                    .bind(account)
                    .bind(region)
                    .bind($kind.as_str())
                    .bind(&row.provider_id)
                    .bind(billing.product.as_str())
                    .bind(&billing.rtype)
                    .bind(billing.quantity)
                    .bind(&row.owner)
                    .bind(grp)
                    .bind(&blueprint)
                    .bind(at)
                    .bind(how.as_str())
                    .bind(obs.at)
                    .execute(&mut *$tx)
                    .await?;
                    let tail = Tail {
                        owner: row.owner.clone(),
                        grp: grp.to_owned(),
                        blueprint: blueprint.clone(),
                        product: billing.product.as_str().to_owned(),
                        rtype: billing.rtype.clone(),
                    };
                    $roll.add(&tail, at, $r, billing.quantity, 1);
                    $roll.open(&tail, billing.quantity, 1);
                    $stats.opened += 1;
                }
            }
        }
    }};
}

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
            let mut open: HashMap<i64, OpenRow> = HashMap::new();
            for r in sqlx::query(
                "SELECT id, resource_id, product, rtype, quantity, started_at, owner, grp, blueprint FROM ledger \
                 WHERE account = $1 AND region = $2 AND kind = $3 AND ended_at IS NULL",
            )
            .bind(account.as_str())
            .bind(region)
            .bind(kind.as_str())
            .fetch_all(&mut *tx)
            .await?
            {
                let (rid, o) = open_from(&r)?;
                open.insert(rid, o);
            }
            // Each resource's latest closed interval, in one read.
            let mut last_end: HashMap<i64, i64> = HashMap::new();
            for r in sqlx::query(
                "SELECT resource_id, MAX(ended_at) AS ended_at FROM ledger \
                 WHERE account = $1 AND region = $2 AND kind = $3 AND ended_at IS NOT NULL \
                 GROUP BY resource_id",
            )
            .bind(account.as_str())
            .bind(region)
            .bind(kind.as_str())
            .fetch_all(&mut *tx)
            .await?
            {
                last_end.insert(r.int("resource_id")?, r.int("ended_at")?);
            }
            // Live rows, and gone ones the ledger still has open. A
            // tombstone older than the last pass was closed then.
            let rows = sqlx::query(&format!(
                "SELECT {ROW_COLS} FROM resources r WHERE r.account = $1 AND r.region = $2 AND r.kind = $3 \
                 AND (r.deleted_at IS NULL OR r.deleted_at >= $4)"
            ))
            .bind(account.as_str())
            .bind(region)
            .bind(kind.as_str())
            .bind(prev.unwrap_or(0))
            .fetch_all(&mut *tx)
            .await?;
            let mut seen = std::collections::HashSet::with_capacity(rows.len());
            let scope = (account.as_str(), region);
            for r in &rows {
                let row = row_from(r)?;
                seen.insert(row.id);
                let o = open.get(&row.id);
                if o.is_none() && row.deleted_at.is_some() {
                    continue;
                }
                let mut obs = blank_observation(observed_at, prev, None);
                obs.last_end = last_end.get(&row.id).copied();
                apply_row!(tx, scope, kind, &row, o, obs, roll, rolled, stats);
            }
            // Open intervals whose row was tombstoned before the last pass
            // (or removed): closed where they were last seen.
            let stale: Vec<i64> = open.keys().filter(|id| !seen.contains(id)).copied().collect();
            for rid in stale {
                let o = &open[&rid];
                for op in ledger::reconcile(Some(&o.open), &blank_observation(observed_at, prev, None)) {
                    if let Op::Close { at, how } = op {
                        close_interval!(tx, o, at, how, roll, rolled, stats);
                    }
                }
            }
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
            let scope = (account.as_str(), region.as_str());
            let obs = blank_observation(action_at, prev, Some(action_at));
            let mut obs = obs;
            obs.last_end = sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(ended_at) FROM ledger WHERE resource_id = $1",
            )
            .bind(row.id)
            .fetch_one(&mut *tx)
            .await?;
            apply_row!(tx, scope, kind, &row, open.as_ref(), obs, roll, rolled, stats);
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
