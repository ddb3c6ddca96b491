//! The action pipeline's rows (intent written before the provider call,
//! outcome after, with its refresh and audit entry in the same transaction) and the API's
//! idempotency keys.

use crate::audit::append_audit;
use crate::jobs::apply_observed_in;
use crate::{on_pool, BeginWrite, ReadRow, Result, Store, StoreError};
use skyhold_core::audit::{AuditDraft, AuditEntry};
use skyhold_core::{ActionId, Millis, ObservedResource, ResourceId, UserId};
use sqlx::Row;

/// One requested action and where it stands.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActionRow {
    pub id: ActionId,
    /// `start`, `stop`, `reboot`, `terminate`, `set_owner`.
    pub kind: String,
    pub resource_id: ResourceId,
    pub account: String,
    pub region: String,
    pub resource_kind: String,
    pub provider_id: String,
    pub resource_name: String,
    pub requested_by: Option<UserId>,
    pub requested_by_name: String,
    /// The user or group the action was taken for ('' when for oneself).
    pub on_behalf_of: String,
    pub params: serde_json::Value,
    pub idempotency_key: String,
    /// `pending`, `running`, `succeeded`, `failed`.
    pub state: String,
    pub provider_request_id: String,
    pub error_code: String,
    pub error: String,
    /// What the action made (`{"image_id": …}`), `{}` for most.
    pub result: serde_json::Value,
    pub created_at: Millis,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
}

/// An action about to be attempted.
#[derive(Debug, Clone)]
pub struct NewAction<'a> {
    pub kind: &'a str,
    pub resource_id: ResourceId,
    pub account: &'a str,
    pub region: &'a str,
    pub resource_kind: &'a str,
    pub provider_id: &'a str,
    pub resource_name: &'a str,
    pub requested_by: Option<UserId>,
    pub requested_by_name: &'a str,
    pub on_behalf_of: &'a str,
    pub params: &'a serde_json::Value,
    pub idempotency_key: &'a str,
}

/// How an action ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub succeeded: bool,
    pub provider_request_id: String,
    pub error_code: String,
    pub error: String,
    /// What the action made (JSON object); `Null` stores `{}`.
    pub result: serde_json::Value,
}

/// A targeted refresh to apply with an action's outcome: the resource and
/// what a fresh read of it showed (`None`: it is gone).
#[derive(Debug, Clone, Copy)]
pub struct Refresh<'a> {
    pub resource: ResourceId,
    pub observed: Option<&'a ObservedResource>,
}

/// What a request under an idempotency key should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is new: run the request, then record its response.
    Fresh,
    /// The same request ran before: answer with its response.
    Replay { status: u16, body: String },
    /// The same key came with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

const COLS: &str = "id, kind, resource_id, account, region, resource_kind, provider_id, resource_name, \
    requested_by, requested_by_name, on_behalf_of, params, idempotency_key, state, provider_request_id, \
    error_code, error, result, created_at, started_at, finished_at";

fn action_from_row(r: &impl ReadRow) -> Result<ActionRow> {
    let params = r.text("params")?;
    Ok(ActionRow {
        id: ActionId(r.int("id")?),
        kind: r.text("kind")?,
        resource_id: ResourceId(r.int("resource_id")?),
        account: r.text("account")?,
        region: r.text("region")?,
        resource_kind: r.text("resource_kind")?,
        provider_id: r.text("provider_id")?,
        resource_name: r.text("resource_name")?,
        requested_by: r.opt_int("requested_by")?.map(UserId),
        requested_by_name: r.text("requested_by_name")?,
        on_behalf_of: r.text("on_behalf_of")?,
        params: serde_json::from_str(&params)
            .map_err(|e| StoreError::Corrupt(format!("action params: {e}")))?,
        idempotency_key: r.text("idempotency_key")?,
        state: r.text("state")?,
        provider_request_id: r.text("provider_request_id")?,
        error_code: r.text("error_code")?,
        error: r.text("error")?,
        result: serde_json::from_str(&r.text("result")?)
            .map_err(|e| StoreError::Corrupt(format!("action result: {e}")))?,
        created_at: r.int("created_at")?,
        started_at: r.opt_int("started_at")?,
        finished_at: r.opt_int("finished_at")?,
    })
}

impl Store {
    /// Records the intent just before the provider call, as `running` (the
    /// call follows at once, so no separate `pending` → `running` write).
    /// `Conflict` when an action with this idempotency key exists already
    /// (the caller then reads it).
    pub async fn create_action(&self, a: &NewAction<'_>, now: Millis) -> Result<ActionRow> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!(
                "INSERT INTO actions (kind, resource_id, account, region, resource_kind, provider_id, resource_name, \
                 requested_by, requested_by_name, on_behalf_of, params, idempotency_key, state, provider_request_id, \
                 error_code, error, created_at, started_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'running', '', '', '', $13, $13) \
                 RETURNING {COLS}"
            ))
            .bind(a.kind)
            .bind(a.resource_id.0)
            .bind(a.account)
            .bind(a.region)
            .bind(a.resource_kind)
            .bind(a.provider_id)
            .bind(a.resource_name)
            .bind(a.requested_by.map(|u| u.0))
            .bind(a.requested_by_name)
            .bind(a.on_behalf_of)
            .bind(a.params.to_string())
            .bind(a.idempotency_key)
            .bind(now)
            .fetch_one(p)
            .await
            .map_err(|e| crate::map_unique(e, "an action with this idempotency key"))?;
            action_from_row(&row)
        })
    }

    /// Settles an unsettled action (`succeeded` or `failed`), applies the
    /// targeted refresh `refresh` when given (as
    /// [`Store::apply_observed`] would), puts a resource it `created` into
    /// the action's account and region, and appends the audit entry, all in
    /// one transaction. `NotFound` if the action was settled already. A
    /// refresh that does not fit (the row is missing, or the observation is
    /// of another resource) is skipped, never at the cost of the outcome.
    pub async fn finish_action(
        &self,
        id: ActionId,
        outcome: &Outcome,
        now: Millis,
        audit: &AuditDraft,
        refresh: Option<Refresh<'_>>,
        created: Option<&ObservedResource>,
    ) -> Result<(ActionRow, AuditEntry)> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let result = match &outcome.result {
                serde_json::Value::Null => "{}".to_owned(),
                v => v.to_string(),
            };
            let row = sqlx::query(&format!(
                "UPDATE actions SET state = $1, provider_request_id = $2, error_code = $3, error = $4, \
                 finished_at = $5, result = $7 WHERE id = $6 AND state IN ('pending', 'running') RETURNING {COLS}"
            ))
            .bind(if outcome.succeeded { "succeeded" } else { "failed" })
            .bind(&outcome.provider_request_id)
            .bind(&outcome.error_code)
            .bind(&outcome.error)
            .bind(now)
            .bind(id.0)
            .bind(result)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
            let a = action_from_row(&row)?;
            if let Some(r) = refresh {
                match apply_observed_in!(tx, r.resource, r.observed, now) {
                    Ok(_) => {}
                    Err(e @ (StoreError::NotFound | StoreError::Corrupt(_))) => {
                        tracing::warn!(resource = %r.resource, error = %e, "refresh after an action skipped");
                    }
                    Err(e) => return Err(e),
                }
            }
            // A resource the action made (an image) is in the inventory at once.
            if let Some(o) = created {
                crate::jobs::upsert_observed_in!(tx, a.account.as_str(), a.region.as_str(), o, now)?;
            }
            // Last, so the audit head is locked for the shortest time.
            let e = append_audit!(tx, audit);
            tx.commit().await?;
            Ok((a, e))
        })
    }

    pub async fn action(&self, id: ActionId) -> Result<ActionRow> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!("SELECT {COLS} FROM actions WHERE id = $1"))
                .bind(id.0)
                .fetch_optional(p)
                .await?
                .ok_or(StoreError::NotFound)?;
            action_from_row(&row)
        })
    }

    /// The latest succeeded action of `kind` on a resource (skyhold's own
    /// record of what it last wrote there, e.g. the keep tag and who set
    /// it).
    pub async fn last_succeeded_action(
        &self,
        resource: ResourceId,
        kind: &str,
    ) -> Result<Option<ActionRow>> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!(
                "SELECT {COLS} FROM actions WHERE resource_id = $1 AND kind = $2 AND state = 'succeeded' \
                 ORDER BY id DESC LIMIT 1"
            ))
            .bind(resource.0)
            .bind(kind)
            .fetch_optional(p)
            .await?;
            row.as_ref().map(action_from_row).transpose()
        })
    }

    pub async fn action_by_key(&self, key: &str) -> Result<Option<ActionRow>> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!("SELECT {COLS} FROM actions WHERE idempotency_key = $1"))
                .bind(key)
                .fetch_optional(p)
                .await?;
            row.as_ref().map(action_from_row).transpose()
        })
    }

    /// Actions, newest first, optionally of one resource and/or requested by
    /// one user; `before` is the paging cursor. At most `limit` + 1.
    pub async fn list_actions(
        &self,
        resource: Option<ResourceId>,
        requested_by: Option<UserId>,
        before: Option<ActionId>,
        limit: i64,
    ) -> Result<Vec<ActionRow>> {
        let mut sql = format!("SELECT {COLS} FROM actions WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if resource.is_some() {
            sql.push_str(&format!(" AND resource_id = ${}", next()));
        }
        if requested_by.is_some() {
            sql.push_str(&format!(" AND requested_by = ${}", next()));
        }
        if before.is_some() {
            sql.push_str(&format!(" AND id < ${}", next()));
        }
        sql.push_str(&format!(
            " ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 1000) + 1
        ));
        on_pool!(self, p => {
            let mut q = sqlx::query(&sql);
            if let Some(r) = resource {
                q = q.bind(r.0);
            }
            if let Some(u) = requested_by {
                q = q.bind(u.0);
            }
            if let Some(b) = before {
                q = q.bind(b.0);
            }
            let rows = q.fetch_all(p).await?;
            rows.iter().map(action_from_row).collect()
        })
    }

    /// Actions left `pending` or `running` (by a crash), oldest first.
    pub async fn unsettled_actions(&self) -> Result<Vec<ActionRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(&format!(
                "SELECT {COLS} FROM actions WHERE state IN ('pending', 'running') ORDER BY id LIMIT 10000"
            ))
            .fetch_all(p)
            .await?;
            rows.iter().map(action_from_row).collect()
        })
    }

    /// Claims `key` for `user`'s request with digest `request_hash`. A claim
    /// still running after `stale_after` ms is taken over (its request died
    /// with its process).
    pub async fn claim_idempotency(
        &self,
        user: UserId,
        key: &str,
        request_hash: &str,
        now: Millis,
        stale_after: Millis,
    ) -> Result<IdempotencyClaim> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(user.0).bind(key).bind(request_hash).bind(now)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 1 {
                tx.commit().await?;
                return Ok(IdempotencyClaim::Fresh);
            }
            let row = sqlx::query(
                "SELECT request_hash, status, response, created_at FROM idempotency_keys WHERE user_id = $1 AND key = $2",
            )
            .bind(user.0).bind(key)
            .fetch_one(&mut *tx)
            .await?;
            let claim = if row.text("request_hash")? != request_hash {
                IdempotencyClaim::Mismatch
            } else {
                match (row.opt_int("status")?, row.try_get::<Option<String>, _>("response")?) {
                    (Some(status), Some(body)) => IdempotencyClaim::Replay { status: status as u16, body },
                    _ if now - row.int("created_at")? > stale_after => {
                        sqlx::query("UPDATE idempotency_keys SET created_at = $1 WHERE user_id = $2 AND key = $3")
                            .bind(now).bind(user.0).bind(key)
                            .execute(&mut *tx).await?;
                        IdempotencyClaim::Fresh
                    }
                    _ => IdempotencyClaim::InProgress,
                }
            };
            tx.commit().await?;
            Ok(claim)
        })
    }

    /// Records the response to a claimed key.
    pub async fn complete_idempotency(
        &self,
        user: UserId,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("UPDATE idempotency_keys SET status = $1, response = $2 WHERE user_id = $3 AND key = $4")
                .bind(i64::from(status)).bind(body).bind(user.0).bind(key)
                .execute(p).await?;
            Ok(())
        })
    }

    /// Gives a claimed key back (the request failed in a way worth retrying).
    pub async fn release_idempotency(&self, user: UserId, key: &str) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND status IS NULL")
                .bind(user.0).bind(key)
                .execute(p).await?;
            Ok(())
        })
    }

    /// Forgets keys older than `before`.
    pub async fn prune_idempotency(&self, before: Millis) -> Result<u64> {
        on_pool!(self, p => {
            let r = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1").bind(before).execute(p).await?;
            Ok(r.rows_affected())
        })
    }
}
