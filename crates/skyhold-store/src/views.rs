//! Saved views (named searches per user) and the dashboard's summary table.

use crate::{map_unique, on_pool, ReadRow, Result, Store, StoreError};
use serde::Serialize;
use skyhold_core::{Millis, UserId, ViewId};

/// A named search saved by one user.
#[derive(Debug, Clone, Serialize)]
pub struct SavedView {
    pub id: ViewId,
    pub name: String,
    /// The search, in the search language (`kind:instance -tag:owner`).
    pub query: String,
    pub created_at: Millis,
}

fn view_from_row(r: &impl ReadRow) -> Result<SavedView> {
    Ok(SavedView {
        id: ViewId(r.int("id")?),
        name: r.text("name")?,
        query: r.text("query")?,
        created_at: r.int("created_at")?,
    })
}

/// One row of the dashboard's summary: live resources of one (account,
/// region, kind, state, type), counted and sized.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryRow {
    pub account: String,
    pub region: String,
    pub kind: String,
    pub state: String,
    pub rtype: String,
    pub count: i64,
    pub size_gib: i64,
}

impl Store {
    /// Saves a view; `Conflict` if the user already has one of that name.
    pub async fn create_view(
        &self,
        user: UserId,
        name: &str,
        query: &str,
        now: Millis,
    ) -> Result<SavedView> {
        on_pool!(self, p => {
            let row = sqlx::query(
                "INSERT INTO saved_views (user_id, name, query, created_at) VALUES ($1, $2, $3, $4) \
                 RETURNING id, name, query, created_at",
            )
            .bind(user.0)
            .bind(name)
            .bind(query)
            .bind(now)
            .fetch_one(p)
            .await
            .map_err(|e| map_unique(e, &format!("view {name:?}")))?;
            view_from_row(&row)
        })
    }

    /// A user's views, by name.
    pub async fn list_views(&self, user: UserId) -> Result<Vec<SavedView>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT id, name, query, created_at FROM saved_views WHERE user_id = $1 ORDER BY name, id",
            )
            .bind(user.0)
            .fetch_all(p)
            .await?;
            rows.iter().map(view_from_row).collect()
        })
    }

    /// One of a user's views by name.
    pub async fn view_by_name(&self, user: UserId, name: &str) -> Result<SavedView> {
        on_pool!(self, p => {
            let row = sqlx::query(
                "SELECT id, name, query, created_at FROM saved_views WHERE user_id = $1 AND name = $2",
            )
            .bind(user.0)
            .bind(name)
            .fetch_optional(p)
            .await?
            .ok_or(StoreError::NotFound)?;
            view_from_row(&row)
        })
    }

    /// Deletes one of a user's views; `NotFound` if it is not theirs.
    pub async fn delete_view(&self, user: UserId, id: ViewId) -> Result<()> {
        on_pool!(self, p => {
            let r = sqlx::query("DELETE FROM saved_views WHERE id = $1 AND user_id = $2")
                .bind(id.0)
                .bind(user.0)
                .execute(p)
                .await?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    /// The summary of live resources (kept by triggers as rows change), one
    /// row per (account, region, kind, state, type) with at least one.
    pub async fn summary(&self) -> Result<Vec<SummaryRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT account, region, kind, state, rtype, n, size_gib FROM resource_summary WHERE n > 0",
            )
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(SummaryRow {
                        account: r.text("account")?,
                        region: r.text("region")?,
                        kind: r.text("kind")?,
                        state: r.text("state")?,
                        rtype: r.text("rtype")?,
                        count: r.int("n")?,
                        size_gib: r.int("size_gib")?,
                    })
                })
                .collect()
        })
    }
}

impl Store {
    /// A stack's cached template, if one was fetched for this `version`.
    pub async fn cached_template(
        &self,
        resource: skyhold_core::ResourceId,
        version: &str,
    ) -> Result<Option<String>> {
        on_pool!(self, p => {
            let body: Option<String> = sqlx::query_scalar(
                "SELECT body FROM stack_templates WHERE resource_id = $1 AND version = $2",
            )
            .bind(resource.0)
            .bind(version)
            .fetch_optional(p)
            .await?;
            Ok(body)
        })
    }

    /// Keeps a fetched template (replacing an older version's).
    pub async fn put_template(
        &self,
        resource: skyhold_core::ResourceId,
        version: &str,
        body: &str,
        now: Millis,
    ) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO stack_templates (resource_id, version, fetched_at, body) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (resource_id) DO UPDATE SET version = excluded.version, \
                 fetched_at = excluded.fetched_at, body = excluded.body",
            )
            .bind(resource.0)
            .bind(version)
            .bind(now)
            .bind(body)
            .execute(p)
            .await?;
            Ok(())
        })
    }
}
