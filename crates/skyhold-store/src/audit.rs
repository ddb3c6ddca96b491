//! The audit log: appends that keep the hash chain (serialized by the one
//! `audit_head` row), filtered reads, and the ordered walk that export and
//! verify use. Entries are never updated or deleted by skyhold.

use crate::{on_pool, BeginWrite, ReadRow, Result, Store, StoreError};
use skyhold_core::audit::{AuditDraft, AuditEntry, AuditTarget};
use skyhold_core::Millis;

/// Which entries to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Exact actor name.
    pub actor: Option<String>,
    /// Exact action, or a prefix ending in `.` (`resource.` for every
    /// resource action).
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// `kind` or `kind:id`.
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    /// Only entries with a smaller seq (the cursor).
    pub before_seq: Option<i64>,
    pub limit: i64,
    /// For members: only entries about them or what they manage.
    pub scope: Option<AuditScope>,
}

/// The entries a member may read: their own acts, acts on them, and acts on
/// the objects they manage.
#[derive(Debug, Clone, Default)]
pub struct AuditScope {
    pub user_id: i64,
    /// Owner values that are theirs (`ann`, `group:dev`, …): entries about
    /// resources with one of these owners.
    pub owners: Vec<String>,
    /// Resource ids they manage through a grant.
    pub resource_ids: Vec<String>,
    /// Accounts they manage through a grant.
    pub accounts: Vec<String>,
    /// Group and user ids (as text) they manage.
    pub group_ids: Vec<String>,
    pub user_ids: Vec<String>,
}

const COLS: &str = "seq, time, actor_id, actor, auth, client_ip, user_agent, request_id, \
    idempotency_key, action, target_kind, target_id, target_provider_id, target_account, \
    target_region, target_name, outcome, reason, old_value, new_value, prev_hash, hash";

fn json_col(v: Option<String>) -> Result<Option<serde_json::Value>> {
    v.map(|s| {
        serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("audit value: {e}")))
    })
    .transpose()
}

fn entry_from_row(
    r: &impl ReadRow,
    old: Option<String>,
    new: Option<String>,
) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.int("seq")?,
        draft: AuditDraft {
            time: r.int("time")?,
            actor_id: r.opt_int("actor_id")?,
            actor: r.text("actor")?,
            auth: r.text("auth")?,
            client_ip: r.text("client_ip")?,
            user_agent: r.text("user_agent")?,
            request_id: r.text("request_id")?,
            idempotency_key: r.text("idempotency_key")?,
            action: r.text("action")?,
            target: AuditTarget {
                kind: r.text("target_kind")?,
                id: r.text("target_id")?,
                provider_id: r.text("target_provider_id")?,
                account: r.text("target_account")?,
                region: r.text("target_region")?,
                name: r.text("target_name")?,
            },
            outcome: r.text("outcome")?,
            reason: r.text("reason")?,
            old: json_col(old)?,
            new: json_col(new)?,
        },
        prev_hash: r.text("prev_hash")?,
        hash: r.text("hash")?,
    })
}

/// Appends `$draft` (an `&AuditDraft`) to the chain inside the open write
/// transaction `$tx` and evaluates to the sealed entry. The `UPDATE` of the
/// head row takes its lock, so appenders (any replica) line up there, and
/// a rolled-back transaction leaves no gap.
macro_rules! append_audit {
    ($tx:expr, $draft:expr) => {{
        let draft: &skyhold_core::audit::AuditDraft = $draft;
        let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
            .fetch_one(&mut *$tx)
            .await?;
        let seq: i64 = sqlx::Row::try_get(&head, "seq")?;
        let prev: String = sqlx::Row::try_get(&head, "hash")?;
        let e = draft.clone().bounded().seal(seq, &prev);
        let d = &e.draft;
        let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
        sqlx::query(
            "INSERT INTO audit_log (seq, time, actor_id, actor, auth, client_ip, user_agent, request_id, \
             idempotency_key, action, target_kind, target_id, target_provider_id, target_account, \
             target_region, target_name, outcome, reason, old_value, new_value, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
        )
        .bind(e.seq)
        .bind(d.time)
        .bind(d.actor_id)
        .bind(&d.actor)
        .bind(&d.auth)
        .bind(&d.client_ip)
        .bind(&d.user_agent)
        .bind(&d.request_id)
        .bind(&d.idempotency_key)
        .bind(&d.action)
        .bind(&d.target.kind)
        .bind(&d.target.id)
        .bind(&d.target.provider_id)
        .bind(&d.target.account)
        .bind(&d.target.region)
        .bind(&d.target.name)
        .bind(&d.outcome)
        .bind(&d.reason)
        .bind(json(&d.old))
        .bind(json(&d.new))
        .bind(&e.prev_hash)
        .bind(&e.hash)
        .execute(&mut *$tx)
        .await?;
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
            .bind(&e.hash)
            .execute(&mut *$tx)
            .await?;
        e
    }};
}
pub(crate) use append_audit;

/// Adds the WHERE clause of `q` to `sql`, with `$n` placeholders counted
/// from `n`; returns the values to bind, in order.
fn filters(q: &AuditQuery, sql: &mut String) -> Vec<Bind> {
    let mut binds: Vec<Bind> = Vec::new();
    let mut clauses: Vec<String> = Vec::new();
    let mut push = |clause: &str, b: Bind, binds: &mut Vec<Bind>| {
        binds.push(b);
        clauses.push(clause.replace('?', &format!("${}", binds.len())));
    };
    if let Some(a) = &q.actor {
        push("actor = ?", Bind::Text(a.clone()), &mut binds);
    }
    if let Some(a) = &q.action {
        if let Some(prefix) = a.strip_suffix('.') {
            let escaped = prefix
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            push(
                "action LIKE ? ESCAPE '\\'",
                Bind::Text(format!("{escaped}.%")),
                &mut binds,
            );
        } else {
            push("action = ?", Bind::Text(a.clone()), &mut binds);
        }
    }
    if let Some(o) = &q.outcome {
        push("outcome = ?", Bind::Text(o.clone()), &mut binds);
    }
    if let Some(k) = &q.target_kind {
        push("target_kind = ?", Bind::Text(k.clone()), &mut binds);
    }
    if let Some(i) = &q.target_id {
        push("target_id = ?", Bind::Text(i.clone()), &mut binds);
    }
    if let Some(t) = q.since {
        push("time >= ?", Bind::Int(t), &mut binds);
    }
    if let Some(t) = q.until {
        push("time < ?", Bind::Int(t), &mut binds);
    }
    if let Some(s) = q.before_seq {
        push("seq < ?", Bind::Int(s), &mut binds);
    }
    if let Some(sc) = &q.scope {
        let mut any: Vec<String> = Vec::new();
        binds.push(Bind::Int(sc.user_id));
        any.push(format!("actor_id = ${}", binds.len()));
        binds.push(Bind::Text(sc.user_id.to_string()));
        any.push(format!(
            "(target_kind = 'user' AND target_id = ${})",
            binds.len()
        ));
        let mut list = |col: &str, kind: Option<&str>, values: &[String], binds: &mut Vec<Bind>| {
            if values.is_empty() {
                return;
            }
            let mut ph = Vec::new();
            for v in values.iter().take(1000) {
                binds.push(Bind::Text(v.clone()));
                ph.push(format!("${}", binds.len()));
            }
            let kind = kind
                .map(|k| format!("target_kind = '{k}' AND "))
                .unwrap_or_default();
            any.push(format!("({kind}{col} IN ({}))", ph.join(", ")));
        };
        list("target_id", Some("resource"), &sc.resource_ids, &mut binds);
        list("target_account", None, &sc.accounts, &mut binds);
        list("target_id", Some("group"), &sc.group_ids, &mut binds);
        list("target_id", Some("user"), &sc.user_ids, &mut binds);
        if !sc.owners.is_empty() {
            let mut ph = Vec::new();
            for v in sc.owners.iter().take(1000) {
                binds.push(Bind::Text(v.clone()));
                ph.push(format!("${}", binds.len()));
            }
            any.push(format!(
                "(target_kind = 'resource' AND target_id IN \
                 (SELECT CAST(id AS TEXT) FROM resources WHERE owner IN ({})))",
                ph.join(", ")
            ));
        }
        clauses.push(format!("({})", any.join(" OR ")));
    }
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    binds
}

#[derive(Debug, Clone)]
enum Bind {
    Int(i64),
    Text(String),
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut q = $query;
        for b in $binds {
            q = match b {
                Bind::Int(i) => q.bind(*i),
                Bind::Text(t) => q.bind(t.clone()),
            };
        }
        q
    }};
}

impl Store {
    /// Appends one entry in its own transaction (for entries that record no
    /// other change: logins, denials, failures).
    pub async fn append_audit(&self, draft: &AuditDraft) -> Result<AuditEntry> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let e = append_audit!(tx, draft);
            tx.commit().await?;
            Ok(e)
        })
    }

    /// Appends several entries in one transaction (one commit for all):
    /// how the application groups the appends that arrive together.
    pub async fn append_audit_batch(&self, drafts: &[AuditDraft]) -> Result<Vec<AuditEntry>> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let mut out = Vec::with_capacity(drafts.len());
            for d in drafts {
                out.push(append_audit!(tx, d));
            }
            tx.commit().await?;
            Ok(out)
        })
    }

    /// Entries matching `q`, newest first, at most `q.limit` + 1 (the extra
    /// one tells the caller there is a next page).
    pub async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut sql = format!("SELECT {COLS} FROM audit_log");
        let binds = filters(q, &mut sql);
        sql.push_str(&format!(
            " ORDER BY seq DESC LIMIT {}",
            q.limit.clamp(1, 10_000) + 1
        ));
        on_pool!(self, p => {
            let rows = bind_all!(sqlx::query(&sql), &binds).fetch_all(p).await?;
            rows.iter()
                .map(|r| {
                    let old: Option<String> = sqlx::Row::try_get(r, "old_value")?;
                    let new: Option<String> = sqlx::Row::try_get(r, "new_value")?;
                    entry_from_row(r, old, new)
                })
                .collect()
        })
    }

    /// Up to `limit` entries with `seq > after`, oldest first, optionally
    /// within a time range: the walk behind export and verify.
    pub async fn audit_after(
        &self,
        after: i64,
        since: Option<Millis>,
        until: Option<Millis>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let mut sql = format!("SELECT {COLS} FROM audit_log WHERE seq > $1");
        if since.is_some() {
            sql.push_str(" AND time >= $2");
        }
        if until.is_some() {
            sql.push_str(if since.is_some() {
                " AND time < $3"
            } else {
                " AND time < $2"
            });
        }
        sql.push_str(&format!(" ORDER BY seq LIMIT {}", limit.clamp(1, 100_000)));
        on_pool!(self, p => {
            let mut query = sqlx::query(&sql).bind(after);
            if let Some(s) = since {
                query = query.bind(s);
            }
            if let Some(u) = until {
                query = query.bind(u);
            }
            let rows = query.fetch_all(p).await?;
            rows.iter()
                .map(|r| {
                    let old: Option<String> = sqlx::Row::try_get(r, "old_value")?;
                    let new: Option<String> = sqlx::Row::try_get(r, "new_value")?;
                    entry_from_row(r, old, new)
                })
                .collect()
        })
    }

    /// The chain's recorded head: (last seq, its hash); (0, genesis) when empty.
    pub async fn audit_head(&self) -> Result<(i64, String)> {
        on_pool!(self, p => {
            let r = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(p).await?;
            Ok((r.int("seq")?, r.text("hash")?))
        })
    }
}
