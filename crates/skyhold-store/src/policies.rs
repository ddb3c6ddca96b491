//! Policy passes (`policy_runs`), the steps they took (`policy_steps`,
//! unique per policy, resource, step and deadline) and the notification
//! outbox (`notifications` with one `notification_deliveries` row per
//! channel), written in the transaction of the decision it reports.

use crate::resources::{resource_from_row, SELECT_RESOURCE};
use crate::{on_pool, BeginWrite, ReadRow, Result, Store, StoreError};
use skyhold_core::{Millis, Resource, ResourceId};

/// One policy pass.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyRun {
    pub id: i64,
    pub policy: String,
    pub mode: String,
    /// `timer`, `demand` or `confirm`.
    pub cause: String,
    pub requested_by: String,
    pub holder: String,
    /// `running`, `done`, `held`, `confirmed`, `failed`.
    pub state: String,
    pub started_at: Millis,
    pub ended_at: Option<Millis>,
    pub counts: serde_json::Value,
    pub plan: serde_json::Value,
    pub note: String,
    pub confirms: Option<i64>,
    pub confirmed_by: String,
    pub confirmed_at: Option<Millis>,
}

/// What a pass recorded for one step of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    pub resource_id: ResourceId,
    /// `warn:<ms>`, `stop`, `terminate`.
    pub step: String,
    pub due_at: Millis,
    /// `sent`, `acting`, `done`, `failed`, `skipped`.
    pub state: String,
    pub attempts: i64,
    pub action_id: Option<i64>,
    /// When it was first recorded (a warning: when it was sent).
    pub created_at: Millis,
}

/// A step to record.
#[derive(Debug, Clone)]
pub struct NewStep<'a> {
    pub policy: &'a str,
    pub resource_id: ResourceId,
    pub step: &'a str,
    pub due_at: Millis,
    pub run_id: i64,
    pub state: &'a str,
    pub attempts: i64,
    pub action_id: Option<i64>,
    pub reason: &'a str,
}

/// A notification for the outbox, with the channels it goes to.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    /// One notification per key, ever (a warning point, an alert).
    pub dedupe_key: &'a str,
    pub kind: &'a str,
    pub recipient: &'a str,
    pub email: &'a str,
    pub subject: &'a str,
    pub body: &'a serde_json::Value,
    pub resource_id: Option<ResourceId>,
    /// `email`, `webhook:0`, …
    pub channels: &'a [String],
}

/// A warning: its step, its notification and, for expiry warnings, the
/// single-use extend link the message carries.
#[derive(Debug, Clone)]
pub struct NewWarning<'a> {
    pub step: NewStep<'a>,
    pub notification: NewNotification<'a>,
    pub extend_link: Option<NewExtendLink<'a>>,
}

/// An extend link to store (only its token's hash is kept).
#[derive(Debug, Clone)]
pub struct NewExtendLink<'a> {
    pub token_hash: &'a str,
    pub extend_ms: i64,
    pub expires_at: Millis,
}

/// A notification and its deliveries.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Notification {
    pub id: i64,
    pub dedupe_key: String,
    pub kind: String,
    pub recipient: String,
    pub email: String,
    pub subject: String,
    pub body: serde_json::Value,
    pub resource_id: Option<ResourceId>,
    pub created_at: Millis,
    pub deliveries: Vec<Delivery>,
}

/// One channel's delivery of a notification.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    pub id: i64,
    pub notification_id: i64,
    pub channel: String,
    /// `pending`, `sending`, `sent`, `dead`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Millis,
    pub last_error: String,
    pub sent_at: Option<Millis>,
}

const RUN_COLS: &str =
    "id, policy, mode, cause, requested_by, holder, state, started_at, ended_at, \
    counts, plan, note, confirms, confirmed_by, confirmed_at";

fn json(text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}

fn run_from_row(r: &impl ReadRow) -> Result<PolicyRun> {
    Ok(PolicyRun {
        id: r.int("id")?,
        policy: r.text("policy")?,
        mode: r.text("mode")?,
        cause: r.text("cause")?,
        requested_by: r.text("requested_by")?,
        holder: r.text("holder")?,
        state: r.text("state")?,
        started_at: r.int("started_at")?,
        ended_at: r.opt_int("ended_at")?,
        counts: json(&r.text("counts")?)?,
        plan: json(&r.text("plan")?)?,
        note: r.text("note")?,
        confirms: r.opt_int("confirms")?,
        confirmed_by: r.text("confirmed_by")?,
        confirmed_at: r.opt_int("confirmed_at")?,
    })
}

const NOTE_COLS: &str =
    "id, dedupe_key, kind, recipient, email, subject, body, resource_id, created_at";
const DELIVERY_COLS: &str =
    "id, notification_id, channel, state, attempts, next_attempt_at, last_error, sent_at";

fn notification_from_row(r: &impl ReadRow) -> Result<Notification> {
    Ok(Notification {
        id: r.int("id")?,
        dedupe_key: r.text("dedupe_key")?,
        kind: r.text("kind")?,
        recipient: r.text("recipient")?,
        email: r.text("email")?,
        subject: r.text("subject")?,
        body: json(&r.text("body")?)?,
        resource_id: r.opt_int("resource_id")?.map(ResourceId),
        created_at: r.int("created_at")?,
        deliveries: Vec::new(),
    })
}

fn delivery_from_row(r: &impl ReadRow) -> Result<Delivery> {
    Ok(Delivery {
        id: r.int("id")?,
        notification_id: r.int("notification_id")?,
        channel: r.text("channel")?,
        state: r.text("state")?,
        attempts: r.int("attempts")?,
        next_attempt_at: r.int("next_attempt_at")?,
        last_error: r.text("last_error")?,
        sent_at: r.opt_int("sent_at")?,
    })
}

/// Inserts a notification and its deliveries in `$tx` unless its key was
/// used already; evaluates to whether it was new.
macro_rules! insert_notification_in {
    ($tx:expr, $n:expr, $now:expr) => {{
        let n: &NewNotification<'_> = $n;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO notifications (dedupe_key, kind, recipient, email, subject, body, resource_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        )
        .bind(n.dedupe_key)
        .bind(n.kind)
        .bind(n.recipient)
        .bind(n.email)
        .bind(n.subject)
        .bind(n.body.to_string())
        .bind(n.resource_id.map(|r| r.0))
        .bind($now)
        .fetch_optional(&mut *$tx)
        .await?;
        if let Some(id) = id {
            for c in n.channels {
                sqlx::query(
                    "INSERT INTO notification_deliveries \
                     (notification_id, channel, state, attempts, next_attempt_at, last_error) \
                     VALUES ($1, $2, 'pending', 0, $3, '')",
                )
                .bind(id)
                .bind(c)
                .bind($now)
                .execute(&mut *$tx)
                .await?;
            }
        }
        id.is_some()
    }};
}

/// Inserts a step unless its (policy, resource, step, due) is recorded
/// and settled; true when written.
macro_rules! insert_step_in {
    ($tx:expr, $s:expr, $now:expr) => {{
        let s: &NewStep<'_> = $s;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO policy_steps (policy, resource_id, step, due_at, run_id, state, attempts, action_id, \
             reason, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
             ON CONFLICT (policy, resource_id, step, due_at) DO UPDATE SET run_id = excluded.run_id, \
             state = excluded.state, attempts = excluded.attempts, action_id = excluded.action_id, \
             reason = excluded.reason, updated_at = excluded.updated_at \
             WHERE policy_steps.state IN ('acting', 'failed') RETURNING id",
        )
        .bind(s.policy)
        .bind(s.resource_id.0)
        .bind(s.step)
        .bind(s.due_at)
        .bind(s.run_id)
        .bind(s.state)
        .bind(s.attempts)
        .bind(s.action_id)
        .bind(s.reason)
        .bind($now)
        .fetch_optional(&mut *$tx)
        .await?;
        id.is_some()
    }};
}

macro_rules! insert_extend_link_in {
    ($tx:expr, $l:expr, $resource:expr, $now:expr) => {{
        let l: &NewExtendLink<'_> = $l;
        let resource: ResourceId = $resource;
        sqlx::query(
            "INSERT INTO extend_links (token_hash, resource_id, extend_ms, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(l.token_hash)
        .bind(resource.0)
        .bind(l.extend_ms)
        .bind($now)
        .bind(l.expires_at)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Warnings written per transaction (long enough to amortise the commit,
/// short enough not to hold other writers up).
const WARNINGS_PER_TX: usize = 250;

impl Store {
    /// Writes a notification of its own (not a step's): false when its
    /// key was used already (nothing written).
    pub async fn add_notification(&self, n: &NewNotification<'_>, now: Millis) -> Result<bool> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let new = insert_notification_in!(tx, n, now);
            tx.commit().await?;
            Ok(new)
        })
    }

    /// Opens a pass's row (`running`).
    #[allow(clippy::too_many_arguments)]
    pub async fn start_policy_run(
        &self,
        policy: &str,
        mode: &str,
        cause: &str,
        requested_by: &str,
        holder: &str,
        confirms: Option<i64>,
        now: Millis,
    ) -> Result<i64> {
        on_pool!(self, p => {
            let _turn = p.write_turn().await?;
            Ok(sqlx::query_scalar(
                "INSERT INTO policy_runs (policy, mode, cause, requested_by, holder, state, started_at, \
                 counts, plan, note, confirms) VALUES ($1, $2, $3, $4, $5, 'running', $6, '{}', '[]', '', $7) \
                 RETURNING id",
            )
            .bind(policy)
            .bind(mode)
            .bind(cause)
            .bind(requested_by)
            .bind(holder)
            .bind(now)
            .bind(confirms)
            .fetch_one(p)
            .await?)
        })
    }

    /// Closes a pass's row with what it found and did (and, held, the
    /// plan waiting for confirmation); an alert goes into the outbox in
    /// the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_policy_run(
        &self,
        id: i64,
        state: &str,
        counts: &serde_json::Value,
        plan: &serde_json::Value,
        note: &str,
        alert: Option<&NewNotification<'_>>,
        now: Millis,
    ) -> Result<()> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            sqlx::query(
                "UPDATE policy_runs SET state = $1, counts = $2, plan = $3, note = $4, ended_at = $5 WHERE id = $6",
            )
            .bind(state)
            .bind(counts.to_string())
            .bind(plan.to_string())
            .bind(note)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if let Some(n) = alert {
                let _new = insert_notification_in!(tx, n, now);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn policy_run(&self, id: i64) -> Result<PolicyRun> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!("SELECT {RUN_COLS} FROM policy_runs WHERE id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
                .ok_or(StoreError::NotFound)?;
            run_from_row(&row)
        })
    }

    /// Passes, newest first, before `before` (an id); one more than
    /// `limit` when there are more.
    pub async fn policy_runs(&self, before: Option<i64>, limit: i64) -> Result<Vec<PolicyRun>> {
        on_pool!(self, p => {
            let rows = sqlx::query(&format!(
                "SELECT {RUN_COLS} FROM policy_runs WHERE id < $1 ORDER BY id DESC LIMIT $2"
            ))
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit.clamp(1, 500) + 1)
            .fetch_all(p)
            .await?;
            rows.iter().map(run_from_row).collect()
        })
    }

    /// The newest pass of `policy` held for confirmation, if any.
    pub async fn held_policy_run(&self, policy: &str) -> Result<Option<PolicyRun>> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!(
                "SELECT {RUN_COLS} FROM policy_runs WHERE policy = $1 AND state = 'held' ORDER BY id DESC LIMIT 1"
            ))
            .bind(policy)
            .fetch_optional(p)
            .await?;
            row.as_ref().map(run_from_row).transpose()
        })
    }

    /// Marks a held pass confirmed; false when it is not held (any more).
    pub async fn confirm_policy_run(&self, id: i64, by: &str, now: Millis) -> Result<bool> {
        on_pool!(self, p => {
            let _turn = p.write_turn().await?;
            let n = sqlx::query(
                "UPDATE policy_runs SET state = 'confirmed', confirmed_by = $1, confirmed_at = $2 \
                 WHERE id = $3 AND state = 'held'",
            )
            .bind(by)
            .bind(now)
            .bind(id)
            .execute(p)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// Every step `policy` recorded.
    pub async fn policy_steps(&self, policy: &str) -> Result<Vec<StepRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT resource_id, step, due_at, state, attempts, action_id, created_at FROM policy_steps WHERE policy = $1",
            )
            .bind(policy)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(StepRow {
                        resource_id: ResourceId(r.int("resource_id")?),
                        step: r.text("step")?,
                        due_at: r.int("due_at")?,
                        state: r.text("state")?,
                        attempts: r.int("attempts")?,
                        action_id: r.opt_int("action_id")?,
                        created_at: r.int("created_at")?,
                    })
                })
                .collect()
        })
    }

    /// Records a step, with its notification in the same transaction:
    /// new, or over one left `acting` (a crash) or `failed` (to retry).
    /// False when the step is recorded as taken already (nothing written:
    /// the step and its notification happen once).
    pub async fn record_step(
        &self,
        s: &NewStep<'_>,
        notification: Option<&NewNotification<'_>>,
        now: Millis,
    ) -> Result<bool> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let new = insert_step_in!(tx, s, now);
            if new {
                if let Some(n) = notification {
                    let _new = insert_notification_in!(tx, n, now);
                }
            }
            tx.commit().await?;
            Ok(new)
        })
    }

    /// Records a pass's warnings (step, notification and, for expiry, the
    /// extend link its message carries), a few hundred per transaction:
    /// each warning is all or nothing, and a warning point already
    /// recorded writes nothing. Returns, per warning, whether it is new.
    pub async fn record_warnings(
        &self,
        warnings: &[NewWarning<'_>],
        now: Millis,
    ) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(warnings.len());
        for chunk in warnings.chunks(WARNINGS_PER_TX) {
            on_pool!(self, p => {
                let mut tx = p.begin_write().await?;
                for w in chunk {
                    let new = insert_step_in!(tx, &w.step, now);
                    if new {
                        let _new = insert_notification_in!(tx, &w.notification, now);
                        if let Some(l) = &w.extend_link {
                            insert_extend_link_in!(tx, l, w.step.resource_id, now);
                        }
                    }
                    out.push(new);
                }
                tx.commit().await?;
            });
        }
        Ok(out)
    }

    /// Settles a step taken (`done`, `failed`) with its action, and its
    /// notification in the same transaction.
    pub async fn settle_step(
        &self,
        s: &NewStep<'_>,
        notification: Option<&NewNotification<'_>>,
        now: Millis,
    ) -> Result<()> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            sqlx::query(
                "UPDATE policy_steps SET state = $1, action_id = $2, reason = $3, attempts = $4, updated_at = $5, \
                 run_id = $6 WHERE policy = $7 AND resource_id = $8 AND step = $9 AND due_at = $10",
            )
            .bind(s.state)
            .bind(s.action_id)
            .bind(s.reason)
            .bind(s.attempts)
            .bind(now)
            .bind(s.run_id)
            .bind(s.policy)
            .bind(s.resource_id.0)
            .bind(s.step)
            .bind(s.due_at)
            .execute(&mut *tx)
            .await?;
            if let Some(n) = notification {
                let _new = insert_notification_in!(tx, n, now);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Live resources of `kinds` carrying the tag `key`.
    /// Every live instance in the `running` state (the idle policy's
    /// candidates).
    pub async fn running_instances(&self) -> Result<Vec<Resource>> {
        let sql = format!(
            "{SELECT_RESOURCE} WHERE r.deleted_at IS NULL AND r.kind = 'instance' AND r.state = 'running'"
        );
        on_pool!(self, p => {
            let rows = sqlx::query(&sql).fetch_all(p).await?;
            rows.iter().map(resource_from_row).collect()
        })
    }

    pub async fn resources_tagged(&self, kinds: &[&str], key: &str) -> Result<Vec<Resource>> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let list = (0..kinds.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "{SELECT_RESOURCE} WHERE r.deleted_at IS NULL AND r.tags LIKE $1 ESCAPE '\\' AND r.kind IN ({list})"
        );
        // Tags are stored as a JSON object: the key appears quoted (as
        // JSON writes it), then a colon; LIKE's `%` and `_` are escaped.
        let quoted = serde_json::Value::from(key).to_string();
        let escaped = quoted
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{escaped}:%");
        on_pool!(self, p => {
            let mut q = sqlx::query(&sql).bind(pattern.clone());
            for k in kinds {
                q = q.bind(*k);
            }
            let rows = q.fetch_all(p).await?;
            rows.iter().map(resource_from_row).collect()
        })
    }

    /// A notification was raised under `dedupe_key` already.
    pub async fn notification_exists(&self, dedupe_key: &str) -> Result<bool> {
        on_pool!(self, p => {
            let n: Option<i64> = sqlx::query_scalar("SELECT id FROM notifications WHERE dedupe_key = $1")
                .bind(dedupe_key)
                .fetch_optional(p)
                .await?;
            Ok(n.is_some())
        })
    }

    /// When the notification of `dedupe_key` was written, if it was.
    pub async fn notification_time(&self, dedupe_key: &str) -> Result<Option<Millis>> {
        on_pool!(self, p => {
            Ok(sqlx::query_scalar("SELECT created_at FROM notifications WHERE dedupe_key = $1")
                .bind(dedupe_key)
                .fetch_optional(p)
                .await?)
        })
    }

    /// Notifications, newest first, with their deliveries; one more than
    /// `limit` when there are more.
    pub async fn notifications(
        &self,
        before: Option<i64>,
        resource: Option<ResourceId>,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        on_pool!(self, p => {
            let rows = sqlx::query(&format!(
                "SELECT {NOTE_COLS} FROM notifications WHERE id < $1 AND ($2 = 0 OR resource_id = $2) \
                 ORDER BY id DESC LIMIT $3"
            ))
            .bind(before.unwrap_or(i64::MAX))
            .bind(resource.map_or(0, |r| r.0))
            .bind(limit.clamp(1, 500) + 1)
            .fetch_all(p)
            .await?;
            let mut out = rows.iter().map(notification_from_row).collect::<Result<Vec<_>>>()?;
            if let (Some(lo), Some(hi)) = (out.last().map(|n| n.id), out.first().map(|n| n.id)) {
                let ds = sqlx::query(&format!(
                    "SELECT {DELIVERY_COLS} FROM notification_deliveries WHERE notification_id BETWEEN $1 AND $2 \
                     ORDER BY id"
                ))
                .bind(lo)
                .bind(hi)
                .fetch_all(p)
                .await?;
                for d in ds.iter().map(delivery_from_row) {
                    let d = d?;
                    if let Some(n) = out.iter_mut().find(|n| n.id == d.notification_id) {
                        n.deliveries.push(d);
                    }
                }
            }
            Ok(out)
        })
    }

    /// Deliveries due at `now` (pending, or left `sending` by a crash past
    /// their claim), oldest first, each with its notification.
    pub async fn due_deliveries(
        &self,
        now: Millis,
        limit: i64,
    ) -> Result<Vec<(Delivery, Notification)>> {
        on_pool!(self, p => {
            let rows = sqlx::query(&format!(
                "SELECT {DELIVERY_COLS} FROM notification_deliveries \
                 WHERE state IN ('pending', 'sending') AND next_attempt_at <= $1 \
                 ORDER BY next_attempt_at, id LIMIT $2"
            ))
            .bind(now)
            .bind(limit.clamp(1, 1000))
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for d in rows.iter().map(delivery_from_row) {
                let d = d?;
                let n = sqlx::query(&format!("SELECT {NOTE_COLS} FROM notifications WHERE id = $1"))
                    .bind(d.notification_id)
                    .fetch_optional(p)
                    .await?;
                if let Some(n) = n {
                    out.push((d, notification_from_row(&n)?));
                }
            }
            Ok(out)
        })
    }

    /// Claims a due delivery until `until` (another worker, or this one
    /// after a crash, may take it again then). False: not due, or taken.
    pub async fn claim_delivery(&self, id: i64, now: Millis, until: Millis) -> Result<bool> {
        on_pool!(self, p => {
            let _turn = p.write_turn().await?;
            let n = sqlx::query(
                "UPDATE notification_deliveries SET state = 'sending', next_attempt_at = $1 \
                 WHERE id = $2 AND state IN ('pending', 'sending') AND next_attempt_at <= $3",
            )
            .bind(until)
            .bind(id)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// Records an attempt: `sent`, or `pending` again at `next_attempt_at`,
    /// or `dead`.
    pub async fn finish_delivery(
        &self,
        id: i64,
        state: &str,
        attempts: i64,
        next_attempt_at: Millis,
        error: &str,
        sent_at: Option<Millis>,
    ) -> Result<()> {
        on_pool!(self, p => {
            let _turn = p.write_turn().await?;
            sqlx::query(
                "UPDATE notification_deliveries SET state = $1, attempts = $2, next_attempt_at = $3, \
                 last_error = $4, sent_at = $5 WHERE id = $6",
            )
            .bind(state)
            .bind(attempts)
            .bind(next_attempt_at)
            .bind(error)
            .bind(sent_at)
            .bind(id)
            .execute(p)
            .await?;
            Ok(())
        })
    }
}

/// A link of an expiry warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendLink {
    pub resource_id: ResourceId,
    pub extend_ms: i64,
    pub expires_at: Millis,
    pub used_at: Option<Millis>,
    pub used_by: String,
}

impl Store {
    /// A link by its token's hash.
    pub async fn extend_link(&self, token_hash: &str) -> Result<Option<ExtendLink>> {
        on_pool!(self, p => {
            let r = sqlx::query(
                "SELECT resource_id, extend_ms, expires_at, used_at, used_by FROM extend_links WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(p)
            .await?;
            r.map(|r| {
                Ok(ExtendLink {
                    resource_id: ResourceId(r.int("resource_id")?),
                    extend_ms: r.int("extend_ms")?,
                    expires_at: r.int("expires_at")?,
                    used_at: r.opt_int("used_at")?,
                    used_by: r.text("used_by")?,
                })
            })
            .transpose()
        })
    }

    /// Claims a link for one use: false when it was used (or has
    /// expired) already.
    pub async fn use_extend_link(&self, token_hash: &str, by: &str, now: Millis) -> Result<bool> {
        on_pool!(self, p => {
            let _turn = p.write_turn().await?;
            let n = sqlx::query(
                "UPDATE extend_links SET used_at = $1, used_by = $2 \
                 WHERE token_hash = $3 AND used_at IS NULL AND expires_at > $1",
            )
            .bind(now)
            .bind(by)
            .bind(token_hash)
            .execute(p)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// Gives a claimed link back (the extension it was used for failed).
    pub async fn release_extend_link(&self, token_hash: &str) -> Result<()> {
        on_pool!(self, p => {
            let _turn = p.write_turn().await?;
            sqlx::query("UPDATE extend_links SET used_at = NULL, used_by = '' WHERE token_hash = $1")
                .bind(token_hash)
                .execute(p)
                .await?;
            Ok(())
        })
    }
}
