//! The change history: events written by `apply_listing`, read back for the
//! Changes page, a resource's timeline and the API; pruned by retention.

use crate::{on_pool, ReadRow, Result, Store};
use skyhold_core::{AccountName, Millis, ResourceId, ResourceKind};
use sqlx::QueryBuilder;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ChangeEvent {
    pub id: i64,
    pub resource_id: Option<ResourceId>,
    pub account: String,
    pub region: String,
    pub kind: String,
    pub provider_id: String,
    pub name: String,
    pub at: Millis,
    pub event: String,
    /// `[{field, from, to}]`
    pub changes: serde_json::Value,
}

/// Which events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub since: Millis,
    pub kind: Option<ResourceKind>,
    pub account: Option<AccountName>,
    pub resource: Option<ResourceId>,
    /// Only events older than this id (the cursor of the previous page).
    pub before_id: Option<i64>,
    pub limit: u32,
}

fn event_from_row(row: &impl ReadRow) -> Result<ChangeEvent> {
    let changes = row.text("changes")?;
    Ok(ChangeEvent {
        id: row.int("id")?,
        resource_id: row.opt_int("resource_id")?.map(ResourceId),
        account: row.text("account")?,
        region: row.text("region")?,
        kind: row.text("kind")?,
        provider_id: row.text("provider_id")?,
        name: row.text("name")?,
        at: row.int("at")?,
        event: row.text("event")?,
        changes: serde_json::from_str(&changes).unwrap_or(serde_json::Value::Array(Vec::new())),
    })
}

impl Store {
    /// Events matching `q`, newest first (one more than `q.limit` tells the
    /// caller there is a next page).
    pub async fn list_events(&self, q: &EventQuery) -> Result<Vec<ChangeEvent>> {
        on_pool!(self, p => {
            let mut qb = QueryBuilder::new(
                "SELECT id, resource_id, account, region, kind, provider_id, name, at, event, changes \
                 FROM resource_events WHERE at >= ",
            );
            qb.push_bind(q.since);
            if let Some(k) = q.kind {
                qb.push(" AND kind = ").push_bind(k.as_str());
            }
            if let Some(a) = &q.account {
                qb.push(" AND account = ").push_bind(a.as_str().to_owned());
            }
            if let Some(r) = q.resource {
                qb.push(" AND resource_id = ").push_bind(r.0);
            }
            if let Some(b) = q.before_id {
                qb.push(" AND id < ").push_bind(b);
            }
            qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(q.limit) + 1);
            let rows = qb.build().fetch_all(p).await?;
            rows.iter().map(event_from_row).collect()
        })
    }

    /// Deletes events older than `before`; returns how many.
    pub async fn prune_events(&self, before: Millis) -> Result<u64> {
        on_pool!(self, p => {
            let r = sqlx::query("DELETE FROM resource_events WHERE at < $1").bind(before).execute(p).await?;
            Ok(r.rows_affected())
        })
    }
}
