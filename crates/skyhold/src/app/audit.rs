//! The audit log as the domain sees it: recording entries (`record`, for
//! attempts that change nothing else; changes are recorded by the store in
//! their own transaction), reading with filters and paging, export, verify,
//! and anchoring the head outside the database.

use super::access::{Action, Actor, Object};
use super::App;
use crate::error::AppError;
use skyhold_core::audit::{AuditDraft, AuditEntry, ChainVerifier, VerifyReport};
use skyhold_core::{now_millis, Level, Millis, Role};
use skyhold_store::{AuditQuery, AuditScope};

/// Entries per page when walking the whole log.
const WALK_PAGE: i64 = 5_000;

/// The filters of the audit page, API and CLI, parsed.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// `kind` or `kind:id` (`resource:42`, `user:3`).
    pub target: Option<String>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    pub cursor: Option<i64>,
    pub limit: i64,
}

impl AuditFilter {
    /// From query pairs: `actor`, `action`, `outcome`, `target`, `since`,
    /// `until` (RFC 3339, a date, or a duration back from now), `cursor`,
    /// `limit` (1-1000, default 100). Unknown parameters are refused.
    pub fn parse(pairs: &[(String, String)], allow_export: bool) -> Result<Self, AppError> {
        let mut f = AuditFilter {
            limit: 100,
            ..Default::default()
        };
        let now = now_millis();
        for (k, v) in pairs {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            let text = |max: usize| -> Result<String, AppError> {
                if v.chars().count() > max || v.chars().any(char::is_control) {
                    Err(AppError::bad_parameter(
                        k,
                        format!("at most {max} characters, no control characters"),
                    ))
                } else {
                    Ok(v.to_owned())
                }
            };
            match k.as_str() {
                "actor" => f.actor = Some(text(200)?),
                "action" => f.action = Some(text(100)?),
                "outcome" => {
                    if !matches!(v, "ok" | "denied" | "failed") {
                        return Err(AppError::bad_parameter(
                            "outcome",
                            "use ok, denied or failed",
                        ));
                    }
                    f.outcome = Some(v.to_owned());
                }
                "target" => f.target = Some(text(200)?),
                "since" => {
                    f.since = Some(super::parse_since(v, now).map_err(|_| {
                        AppError::bad_parameter(
                            "since",
                            "a time (2026-01-31, RFC 3339) or a duration back from now (24h, 7d)",
                        )
                    })?)
                }
                "until" => {
                    f.until = Some(super::parse_since(v, now).map_err(|_| {
                        AppError::bad_parameter(
                            "until",
                            "a time (2026-01-31, RFC 3339) or a duration back from now (24h, 7d)",
                        )
                    })?)
                }
                "cursor" => {
                    f.cursor = Some(v.parse().ok().filter(|n: &i64| *n > 0).ok_or_else(|| {
                        AppError::bad_parameter("cursor", "use next_cursor as given")
                    })?)
                }
                "limit" => f.limit = crate::error::page_limit(v)?,
                "format" if allow_export => {}
                other => {
                    return Err(AppError::bad_parameter(
                        &skyhold_core::clip(other, 40),
                        "unknown parameter",
                    ))
                }
            }
        }
        Ok(f)
    }
}

impl App {
    /// Appends an entry that records no other change (a login, a denial,
    /// a failure). Never fails the caller: if the log cannot be written
    /// the error is logged loudly (the request itself already happened or
    /// was refused).
    pub async fn record(&self, draft: &AuditDraft) {
        let (done, wait) = tokio::sync::oneshot::channel();
        let queued = self
            .audit_queue
            .as_ref()
            .is_some_and(|q| q.send((draft.clone(), done)).is_ok());
        let result = if queued {
            wait.await
                .unwrap_or_else(|_| Err("the audit writer stopped".to_owned()))
        } else {
            self.store
                .append_audit(draft)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        if let Err(e) = result {
            tracing::error!(error = %e, action = %draft.action, "could not write the audit log");
        }
    }

    /// What a member or viewer may read: entries about them and about the
    /// objects they manage.
    fn audit_scope(&self, actor: &Actor) -> Option<AuditScope> {
        if matches!(actor.role, Role::Admin | Role::Auditor) {
            return None;
        }
        let managed = |kind: &str| -> Vec<String> {
            actor
                .grants
                .iter()
                .filter(|g| g.object_kind == kind && g.level == Level::Manage)
                .map(|g| g.object_key.clone())
                .collect()
        };
        Some(AuditScope {
            user_id: actor.user_id.0,
            owners: actor.owner_values(),
            resource_ids: managed("resource"),
            accounts: managed("account"),
            group_ids: managed("group"),
            user_ids: managed("user"),
        })
    }

    /// One page of entries, newest first, and the cursor of the next page.
    pub async fn audit_entries(
        &self,
        actor: &Actor,
        f: &AuditFilter,
    ) -> Result<(Vec<AuditEntry>, Option<i64>), AppError> {
        self.authorize(actor, Action::ViewAudit, Object::None)
            .await?;
        let (target_kind, target_id) = match f.target.as_deref().map(|t| t.split_once(':')) {
            None => (None, None),
            Some(None) => (f.target.clone(), None),
            Some(Some((k, i))) => (Some(k.to_owned()), Some(i.to_owned())),
        };
        let q = AuditQuery {
            actor: f.actor.clone(),
            action: f.action.clone(),
            outcome: f.outcome.clone(),
            target_kind,
            target_id,
            since: f.since,
            until: f.until,
            before_seq: f.cursor,
            limit: f.limit,
            scope: self.audit_scope(actor),
        };
        let mut entries = self.store.list_audit(&q).await?;
        let next = if entries.len() as i64 > f.limit {
            entries.truncate(f.limit as usize);
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        Ok((entries, next))
    }

    /// Walks the log oldest first (within `since`/`until`), a page at a
    /// time, handing each page to `each` (export streams through this).
    pub async fn audit_walk(
        &self,
        actor: &Actor,
        since: Option<Millis>,
        until: Option<Millis>,
        mut each: impl FnMut(&[AuditEntry]) -> Result<(), AppError>,
    ) -> Result<u64, AppError> {
        self.authorize(actor, Action::ExportAudit, Object::None)
            .await?;
        let mut after = 0;
        let mut n = 0u64;
        loop {
            let page = self
                .store
                .audit_after(after, since, until, WALK_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            n += page.len() as u64;
            each(&page)?;
            if (page.len() as i64) < WALK_PAGE {
                break;
            }
        }
        Ok(n)
    }

    /// Writes the chain's head (seq, hash, time) to the configured anchor:
    /// a JSON line appended to a file, or a JSON POST to a webhook. A later
    /// rewrite of the whole table cannot match the anchored hashes.
    pub async fn anchor_audit(&self) -> Result<Option<serde_json::Value>, AppError> {
        let Some(anchor) = &self.config.audit_anchor else {
            return Ok(None);
        };
        let (seq, hash) = self.store.audit_head().await?;
        let line = serde_json::json!({"seq": seq, "hash": hash, "time": skyhold_core::rfc3339(now_millis())});
        match anchor {
            crate::config::AuditAnchor::File(path) => {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        AppError::Unavailable(format!("audit anchor {}: {e}", path.display()))
                    })?;
                writeln!(f, "{line}").map_err(|e| {
                    AppError::Unavailable(format!("audit anchor {}: {e}", path.display()))
                })?;
            }
            crate::config::AuditAnchor::Webhook(url) => {
                let res = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| AppError::Internal(e.into()))?
                    .post(url.clone())
                    .json(&line)
                    .send()
                    .await
                    .map_err(|e| AppError::Unavailable(format!("audit anchor webhook: {e}")))?;
                if !res.status().is_success() {
                    return Err(AppError::Unavailable(format!(
                        "audit anchor webhook answered {}",
                        res.status()
                    )));
                }
            }
        }
        Ok(Some(line))
    }

    /// Checks the whole chain in the database against its recorded head.
    pub async fn verify_audit(&self, actor: &Actor) -> Result<VerifyReport, AppError> {
        self.authorize(actor, Action::ExportAudit, Object::None)
            .await?;
        let report = verify_store(&self.store).await?;
        let mut d = actor.audit("audit.verify", Default::default());
        if !report.ok {
            d.outcome = skyhold_core::audit::outcome::FAILED.into();
            d.reason = report.problem.clone().unwrap_or_default();
        }
        d.new = Some(
            serde_json::json!({"checked": report.checked, "first_bad_seq": report.first_bad_seq}),
        );
        self.record(&d).await;
        Ok(report)
    }
}

/// A queued entry and where to say it was written.
pub(crate) type QueuedEntry = (AuditDraft, tokio::sync::oneshot::Sender<Result<(), String>>);

/// Group commit for entries that record no other change: whatever has
/// queued up while the last transaction committed goes into the next one
/// (up to 256), so concurrent requests share a commit instead of each
/// waiting for its own. Order within the chain follows the queue.
pub(crate) fn spawn_audit_writer(
    store: skyhold_store::Store,
) -> Option<tokio::sync::mpsc::UnboundedSender<QueuedEntry>> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<QueuedEntry>();
    runtime.spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < 256 {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let drafts: Vec<AuditDraft> = batch.iter().map(|(d, _)| d.clone()).collect();
            if store.append_audit_batch(&drafts).await.is_ok() {
                for (_, done) in batch {
                    let _ = done.send(Ok(()));
                }
                continue;
            }
            // The batch rolled back as a whole: one entry that cannot be
            // stored must not take the others with it, so each is tried
            // on its own.
            for (d, done) in batch {
                let result = store
                    .append_audit_batch(std::slice::from_ref(&d))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let _ = done.send(result);
            }
        }
    });
    Some(tx)
}

/// Verifies the chain stored in `store` (also used by `skyhold audit
/// verify --config`, which runs without a server).
pub async fn verify_store(store: &skyhold_store::Store) -> Result<VerifyReport, AppError> {
    // The head is read first: entries appended while we walk are past it
    // and are not judged.
    let (head_seq, head_hash) = store.audit_head().await?;
    let mut v = ChainVerifier::from_start();
    let mut after = 0;
    'walk: loop {
        let page = store.audit_after(after, None, None, WALK_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            if e.seq > head_seq {
                break 'walk;
            }
            v.push(e);
            if v.failed() {
                break 'walk;
            }
        }
        if (page.len() as i64) < WALK_PAGE {
            break;
        }
    }
    Ok(v.finish(Some((head_seq, &head_hash))))
}

/// Verifies an exported JSONL file's lines (a whole export or a slice of
/// one taken with `since`).
pub fn verify_lines(
    lines: impl Iterator<Item = std::io::Result<String>>,
) -> Result<VerifyReport, String> {
    let mut v = None::<ChainVerifier>;
    for (i, line) in lines.enumerate() {
        let line = line.map_err(|e| format!("reading line {}: {e}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let e: AuditEntry = serde_json::from_str(&line)
            .map_err(|e| format!("line {}: not an audit entry: {e}", i + 1))?;
        let verifier = v.get_or_insert_with(|| {
            if e.seq == 1 {
                ChainVerifier::from_start()
            } else {
                ChainVerifier::from_anywhere()
            }
        });
        verifier.push(&e);
        if verifier.failed() {
            break;
        }
    }
    Ok(v.unwrap_or_else(ChainVerifier::from_start).finish(None))
}
