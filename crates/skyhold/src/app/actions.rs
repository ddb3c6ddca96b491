//! The action pipeline, the one path of every state change on a resource:
//! authorize → intent recorded (`actions` row, `running`) → provider call
//! with the action's idempotency key → targeted re-read of the touched
//! resource → outcome, refreshed row and audit entry recorded in one
//! transaction. Actions left unsettled by a crash are re-read and settled,
//! never repeated ([`App::settle_actions`]).

use super::access::{resource_target, Action, Actor, Object};
use super::App;
use crate::auth;
use crate::error::AppError;
use skyhold_core::access::{owner_subject, OWNER_TAG};
use skyhold_core::audit::{self, AuditDraft};
use skyhold_core::expiry::{Expiry, ExpiryRequest, EXPIRES_TAG, KEEP_TAG};
use skyhold_core::{
    now_millis, ActionId, Millis, ObservedResource, PowerAction, Resource, ResourceId,
    ResourceKind, Subject, UserId,
};
use skyhold_store::{ActionRow, NewAction, Outcome, Refresh, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// What to do to a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Power(PowerAction),
    /// Write `skyhold:owner` (a user name or `group:NAME`).
    SetOwner(String),
    /// Make an own image of an instance.
    CreateImage {
        name: String,
        description: String,
        no_reboot: bool,
    },
    /// Deregister an own image.
    Deregister,
    /// Change `skyhold:expires-at` as asked (resolved against the current
    /// expiry, the clock and the cap before it runs, into `SetExpiry`).
    Expire(ExpiryRequest),
    /// Write `skyhold:expires-at` (a time or `never`).
    SetExpiry(Expiry),
    /// Write the `skyhold:keep` opt-out with its reason, or remove it.
    SetKeep(Option<String>),
    /// Delete a resource of a kind that expires (an instance is
    /// terminated), first snapshotting what holds data when asked.
    Delete {
        final_snapshot: bool,
    },
}

impl Op {
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Power(p) => p.as_str(),
            Op::SetOwner(_) => "set_owner",
            Op::CreateImage { .. } => "create_image",
            Op::Deregister => "deregister",
            Op::Expire(_) | Op::SetExpiry(_) => "set_expiry",
            Op::SetKeep(_) => "set_keep",
            Op::Delete { .. } => "delete",
        }
    }

    fn action(&self) -> Action {
        match self {
            Op::Power(PowerAction::Start) => Action::StartResource,
            Op::Power(PowerAction::Stop) => Action::StopResource,
            Op::Power(PowerAction::Reboot) => Action::RebootResource,
            Op::Power(PowerAction::Terminate) => Action::TerminateResource,
            Op::SetOwner(_) => Action::SetOwner,
            Op::CreateImage { .. } => Action::CreateImage,
            Op::Deregister => Action::DeregisterImage,
            Op::Expire(ExpiryRequest::Never) | Op::SetExpiry(Expiry::Never) => Action::NeverExpire,
            Op::Expire(_) | Op::SetExpiry(_) => Action::SetExpiry,
            Op::SetKeep(_) => Action::KeepResource,
            Op::Delete { .. } => Action::TerminateResource,
        }
    }

    fn params(&self) -> serde_json::Value {
        match self {
            Op::Power(_) | Op::Deregister | Op::Expire(_) => serde_json::json!({}),
            Op::SetExpiry(e) => serde_json::json!({"expires_at": e.tag_value()}),
            Op::SetKeep(k) => serde_json::json!({"keep": k}),
            Op::SetOwner(o) => serde_json::json!({"owner": o}),
            Op::Delete { final_snapshot } => serde_json::json!({"final_snapshot": final_snapshot}),
            Op::CreateImage {
                name,
                description,
                no_reboot,
            } => {
                serde_json::json!({"name": name, "description": description, "no_reboot": no_reboot})
            }
        }
    }
}

/// A resource's name, else its provider id.
pub fn display_name(o: &ObservedResource) -> &str {
    if o.name.is_empty() {
        &o.provider_id
    } else {
        &o.name
    }
}

/// A destructive action needs the resource's name or id typed back.
fn confirm_named(r: &Resource, confirm: Option<&str>, doing: &str) -> Result<(), AppError> {
    let named = confirm.map(str::trim).filter(|c| !c.is_empty());
    let matches = named.is_some_and(|c| {
        c == r.observed.provider_id || (!r.observed.name.is_empty() && c == r.observed.name)
    });
    if matches {
        return Ok(());
    }
    Err(AppError::ConfirmationRequired(format!(
        "{doing} {} cannot be undone: confirm with its name or id ({})",
        r.observed.provider_id,
        if r.observed.name.is_empty() {
            &r.observed.provider_id
        } else {
            &r.observed.name
        }
    )))
}

/// AMI names: 3-128 characters of letters, digits and `( ) [ ] . / - ' @ _`
/// and spaces, as EC2 allows.
fn check_image_name(name: &str) -> Result<(), AppError> {
    let ok = (3..=128).contains(&name.chars().count())
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '(' | ')' | '[' | ']' | '.' | '/' | '-' | '\'' | '@' | '_' | ' '
                )
        });
    if ok {
        Ok(())
    } else {
        Err(AppError::bad_parameter(
            "name",
            "3-128 characters: letters, digits, spaces and ( ) [ ] . / - ' @ _",
        ))
    }
}

/// The tag marking an image as made by one action (so a retry or a
/// recovery finds it instead of making another).
pub(crate) const IMAGE_ACTION_TAG: &str = "skyhold:action-id";

impl App {
    fn not_found(id: ResourceId) -> impl Fn(StoreError) -> AppError {
        move |e| match e {
            StoreError::NotFound => AppError::NotFound(format!("resource {id}")),
            o => o.into(),
        }
    }

    /// Runs one action on one resource through the pipeline and returns its
    /// settled row. `confirm` must name the resource (its name or provider
    /// id) for terminate. Under the same idempotency key the first action
    /// is returned and nothing is repeated.
    pub async fn act(
        self: &Arc<Self>,
        actor: &Actor,
        id: ResourceId,
        op: Op,
        confirm: Option<&str>,
    ) -> Result<ActionRow, AppError> {
        let r = self
            .store
            .get_resource(id)
            .await
            .map_err(Self::not_found(id))?;
        let action = op.action();
        self.authorize(actor, action, Object::Resource(&r)).await?;
        let op = match self.check_op(&r, op, confirm).await {
            Ok(op) => op,
            Err(e) => {
                let mut d = actor.audit(action.as_str(), resource_target(&r));
                d.outcome = audit::outcome::DENIED.into();
                d.reason = format!("{}: {e}", e.code());
                self.record(&d).await;
                return Err(e);
            }
        };
        // One key per (user, Idempotency-Key, resource, operation): a retry
        // finds the first action instead of calling the provider again,
        // and one key sent with a bulk request still acts on every row. A
        // fresh random key cannot have a prior action: it is not looked up.
        let key = if actor.ctx.idempotency_key.is_empty() {
            auth::random_token("act-", 16)
        } else {
            let key = format!(
                "u{}:{}:r{}:{}",
                actor.user_id,
                auth::sha256_hex(&actor.ctx.idempotency_key),
                r.id,
                op.kind()
            );
            if let Some(prior) = self.store.action_by_key(&key).await? {
                return Ok(prior);
            }
            key
        };
        // From here the pipeline runs in a task of its own: a client that
        // hangs up must not cut it between the call and its outcome.
        let (app, actor, op) = (Arc::clone(self), actor.clone(), op.clone());
        tokio::spawn(async move {
            let settled = app.record_and_run(&actor, &r, &op, &key).await;
            // A server stopped, started or gone may need its DNS record
            // rewritten or removed.
            if matches!(op, Op::Power(_)) && settled.as_ref().is_ok_and(|a| a.state == "succeeded")
            {
                if let Err(e) = app.reconcile_dns(Some(&r.observed.provider_id)).await {
                    tracing::warn!(error = %e, "DNS reconcile after an action");
                }
            }
            settled
        })
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("the action's task failed: {e}")))?
    }

    /// Intent row (`running`) under `key`, then [`App::run_action`]. The
    /// same key racing us here finds the other request's row.
    async fn record_and_run(
        &self,
        actor: &Actor,
        r: &Resource,
        op: &Op,
        key: &str,
    ) -> Result<ActionRow, AppError> {
        let params = op.params();
        let on_behalf_of = match op {
            Op::SetOwner(o) => o.clone(),
            _ => String::new(),
        };
        let row = match self
            .store
            .create_action(
                &NewAction {
                    kind: op.kind(),
                    resource_id: r.id,
                    account: r.account.as_str(),
                    region: &r.region,
                    resource_kind: r.observed.kind.as_str(),
                    provider_id: &r.observed.provider_id,
                    resource_name: &r.observed.name,
                    requested_by: (!actor.is_system()).then_some(actor.user_id),
                    requested_by_name: &actor.username,
                    on_behalf_of: &on_behalf_of,
                    params: &params,
                    idempotency_key: key,
                },
                now_millis(),
            )
            .await
        {
            Ok(row) => row,
            Err(StoreError::Conflict(_)) => {
                return self
                    .store
                    .action_by_key(key)
                    .await?
                    .ok_or_else(|| AppError::Conflict("action vanished".into()));
            }
            Err(e) => return Err(e.into()),
        };
        self.run_action(actor, r, row, op).await
    }

    /// The default name of an image of resource `id`: its name (or id) and
    /// the time, `web1-20261202-0915` (seconds added if that is taken is
    /// the provider's to refuse). The resource must be visible.
    pub async fn default_image_name(
        &self,
        actor: &Actor,
        id: ResourceId,
    ) -> Result<String, AppError> {
        let r = self
            .store
            .get_resource(id)
            .await
            .map_err(Self::not_found(id))?;
        self.authorize(actor, Action::ViewResource, Object::Resource(&r))
            .await?;
        let base = if r.observed.name.is_empty() {
            r.observed.provider_id.clone()
        } else {
            r.observed.name.clone()
        };
        let base: String = base
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '-'
                }
            })
            .take(100)
            .collect();
        Ok(format!(
            "{base}-{}",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ))
    }

    /// Refuses what the provider would refuse anyway, or what needs more
    /// from the caller; returns the operation to run (an expiry request
    /// resolved to the time it sets).
    async fn check_op(&self, r: &Resource, op: Op, confirm: Option<&str>) -> Result<Op, AppError> {
        if r.deleted_at.is_some() {
            return Err(AppError::InvalidState(format!(
                "resource {} is gone (terminated or deleted)",
                r.id
            )));
        }
        match &op {
            Op::Power(p) => {
                let db = r.observed.kind == ResourceKind::DbInstance
                    && matches!(p, PowerAction::Start | PowerAction::Stop);
                if r.observed.kind != ResourceKind::Instance && !db {
                    return Err(AppError::BadRequest(format!(
                        "{} applies to instances (start and stop to DB instances too); resource {} is a {}",
                        p.as_str(),
                        r.id,
                        r.observed.kind
                    )));
                }
                if *p == PowerAction::Terminate {
                    confirm_named(r, confirm, "terminating")?;
                }
            }
            Op::Expire(req) => return Ok(Op::SetExpiry(self.resolve_expiry(r, *req).await?)),
            Op::Delete { .. } => {
                if !skyhold_core::expiry::expirable(r.observed.kind) {
                    return Err(AppError::BadRequest(format!(
                        "deleting applies to the kinds that cost money while they exist; resource {} is a {}",
                        r.id, r.observed.kind
                    )));
                }
                confirm_named(r, confirm, "deleting")?;
            }
            Op::SetExpiry(_) => {
                if !skyhold_core::expiry::expirable(r.observed.kind) {
                    return Err(super::expiry::not_expirable(r));
                }
            }
            Op::SetKeep(reason) => {
                if !skyhold_core::expiry::expirable(r.observed.kind) {
                    return Err(super::expiry::not_expirable(r));
                }
                if let Some(reason) = reason {
                    let n = reason.chars().count();
                    if n == 0 || n > 256 || reason.chars().any(char::is_control) {
                        return Err(AppError::bad_parameter(
                            "reason",
                            "1 to 256 characters, no control characters",
                        ));
                    }
                }
            }
            Op::CreateImage {
                name, description, ..
            } => {
                if r.observed.kind != ResourceKind::Instance {
                    return Err(AppError::BadRequest(format!(
                        "images are made of instances; resource {} is a {}",
                        r.id, r.observed.kind
                    )));
                }
                check_image_name(name)?;
                if description.chars().count() > 255 || description.chars().any(char::is_control) {
                    return Err(AppError::bad_parameter(
                        "description",
                        "at most 255 characters, no control characters",
                    ));
                }
            }
            Op::Deregister => {
                if r.observed.kind != ResourceKind::Image {
                    return Err(AppError::BadRequest(format!(
                        "deregister applies to images; resource {} is a {}",
                        r.id, r.observed.kind
                    )));
                }
                confirm_named(r, confirm, "deregistering")?;
            }
            Op::SetOwner(o) => match owner_subject(o) {
                None => {
                    return Err(AppError::bad_parameter(
                        "owner",
                        "name a user or group:NAME",
                    ))
                }
                // Exact names only: an id here would be written to the tag
                // as it is and name nobody.
                Some(Subject::User(u)) => {
                    self.store.user_by_name(&u).await?.ok_or_else(|| {
                        AppError::bad_parameter(
                            "owner",
                            format!("no user named {:?}", skyhold_core::clip(&u, 64)),
                        )
                    })?;
                }
                Some(Subject::Group(g)) => {
                    self.group_by_name(&g).await.map_err(|_| {
                        AppError::bad_parameter(
                            "owner",
                            format!("no group named {:?}", skyhold_core::clip(&g, 64)),
                        )
                    })?;
                }
            },
        }
        Ok(op)
    }

    /// Provider call → targeted re-read (after a success) → outcome,
    /// refreshed row and audit entry in one transaction.
    async fn run_action(
        &self,
        actor: &Actor,
        r: &Resource,
        row: ActionRow,
        op: &Op,
    ) -> Result<ActionRow, AppError> {
        let provider = self.sync.provider(&r.account).ok_or_else(|| {
            AppError::Conflict(format!("account {} is not configured any more", r.account))
        })?;
        let o = &r.observed;
        // The call, and the id of what it made (an image).
        let call = async {
            match op {
                Op::Power(p) => provider
                    .power(&r.region, o.kind, &o.provider_id, *p, &row.idempotency_key)
                    .await
                    .map(|rc| (rc, None)),
                Op::SetOwner(owner) => provider
                    .set_tags(&r.region, o, &[(OWNER_TAG.to_owned(), owner.clone())])
                    .await
                    .map(|rc| (rc, None)),
                Op::SetExpiry(e) => {
                    let value = e.tag_value().ok_or_else(|| {
                        skyhold_core::ProviderError::new(
                            skyhold_core::ProviderErrorKind::Other,
                            "no expiry to write",
                        )
                    })?;
                    provider
                        .set_tags(&r.region, o, &[(EXPIRES_TAG.to_owned(), value)])
                        .await
                        .map(|rc| (rc, None))
                }
                Op::SetKeep(Some(reason)) => provider
                    .set_tags(&r.region, o, &[(KEEP_TAG.to_owned(), reason.clone())])
                    .await
                    .map(|rc| (rc, None)),
                Op::SetKeep(None) => provider
                    .remove_tags(&r.region, o, &[KEEP_TAG.to_owned()])
                    .await
                    .map(|rc| (rc, None)),
                Op::Expire(_) => Err(skyhold_core::ProviderError::new(
                    skyhold_core::ProviderErrorKind::Other,
                    "an expiry request runs only once resolved",
                )),
                Op::CreateImage {
                    name,
                    description,
                    no_reboot,
                } => {
                    // CreateImage takes no token: an image of this name made
                    // by this very action is the answer; one made otherwise
                    // is a refusal.
                    if let Some(img) = provider.image_named(&r.region, name).await? {
                        if img.tags.get(IMAGE_ACTION_TAG) == Some(&row.id.to_string()) {
                            return Ok((
                                skyhold_core::ActReceipt::default(),
                                Some(img.provider_id),
                            ));
                        }
                        return Err(skyhold_core::ProviderError::new(
                            skyhold_core::ProviderErrorKind::InvalidState,
                            format!(
                                "an image named {name:?} exists already ({})",
                                img.provider_id
                            ),
                        ));
                    }
                    let tags = vec![
                        (OWNER_TAG.to_owned(), actor.username.clone()),
                        (
                            skyhold_core::launch::CREATOR_TAG.to_owned(),
                            actor.username.clone(),
                        ),
                        (IMAGE_ACTION_TAG.to_owned(), row.id.to_string()),
                        ("skyhold:source-instance".to_owned(), o.provider_id.clone()),
                    ];
                    let image = skyhold_core::NewImage {
                        name: name.clone(),
                        description: description.clone(),
                        no_reboot: *no_reboot,
                        tags,
                    };
                    provider
                        .create_image(&r.region, &o.provider_id, &image)
                        .await
                        .map(|id| (skyhold_core::ActReceipt::default(), Some(id)))
                }
                Op::Deregister => provider
                    .deregister_image(&r.region, &o.provider_id)
                    .await
                    .map(|rc| (rc, None)),
                Op::Delete { final_snapshot } => {
                    let label =
                        final_snapshot.then(|| format!("{}-final-{}", display_name(o), row.id));
                    provider
                        .delete(&r.region, o, label.as_deref())
                        .await
                        .map(|rc| (rc, None))
                }
            }
        };
        let timeout = self.config.action_timeout;
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(r) => r.map_err(AppError::from),
            Err(_) => Err(AppError::Provider(format!(
                "the provider did not answer within {} s",
                timeout.as_secs()
            ))),
        };
        let mut d = actor.audit(op.action().as_str(), resource_target(r));
        d.idempotency_key = actor.ctx.idempotency_key.clone();
        // Why a policy acted (`expired: …`), for the record.
        d.reason = actor.ctx.reason.clone();
        let outcome = match &result {
            Ok((receipt, made)) => {
                d.old = Some(match op {
                    Op::SetOwner(_) => serde_json::json!({"owner": o.owner}),
                    Op::Expire(_) | Op::SetExpiry(_) => {
                        serde_json::json!({"expires_at": o.tags.get(EXPIRES_TAG)})
                    }
                    Op::SetKeep(_) => serde_json::json!({"keep": o.tags.get(KEEP_TAG)}),
                    _ => serde_json::json!({"state": o.state}),
                });
                d.new = Some(match op {
                    Op::Power(p) => {
                        serde_json::json!({"state": p.target_state().0, "action_id": row.id.0})
                    }
                    Op::SetOwner(owner) => {
                        serde_json::json!({"owner": owner, "action_id": row.id.0})
                    }
                    Op::CreateImage {
                        name, no_reboot, ..
                    } => serde_json::json!({
                        "image_id": made, "name": name, "no_reboot": no_reboot, "action_id": row.id.0
                    }),
                    Op::Deregister => {
                        serde_json::json!({"state": "deregistered", "action_id": row.id.0})
                    }
                    Op::Delete { final_snapshot } => serde_json::json!({
                        "state": "deleted", "final_snapshot": final_snapshot, "action_id": row.id.0
                    }),
                    Op::Expire(_) | Op::SetExpiry(_) | Op::SetKeep(_) => {
                        let mut v = op.params();
                        v["action_id"] = row.id.0.into();
                        v
                    }
                });
                Outcome {
                    succeeded: true,
                    provider_request_id: receipt.request_id.clone(),
                    result: match made {
                        Some(id) => serde_json::json!({"image_id": id}),
                        None => serde_json::Value::Null,
                    },
                    ..Default::default()
                }
            }
            Err(e) => {
                d.outcome = audit::outcome::FAILED.into();
                d.reason = if actor.ctx.reason.is_empty() {
                    format!("{}: {e}", e.code())
                } else {
                    format!("{}; {}: {e}", actor.ctx.reason, e.code())
                };
                d.new = Some(serde_json::json!({"action_id": row.id.0}));
                Outcome {
                    succeeded: false,
                    error_code: e.code().to_owned(),
                    error: e.to_string(),
                    ..Default::default()
                }
            }
        };
        // Targeted refresh: the new state (or owner) is visible at once,
        // committed with the outcome.
        let fresh = match &result {
            Ok(_) => match tokio::time::timeout(timeout, self.observe(r)).await {
                Ok(Ok(fresh)) => Some(fresh),
                Ok(Err(e)) => {
                    tracing::warn!(resource = %r.id, error = %e, "refresh after an action failed");
                    None
                }
                Err(_) => {
                    tracing::warn!(resource = %r.id, "refresh after an action timed out");
                    None
                }
            },
            Err(_) => None,
        };
        let refresh = fresh.as_ref().map(|f| Refresh {
            resource: r.id,
            observed: f.as_ref(),
        });
        // What the action made, read from the provider, into the inventory.
        let created = match &result {
            Ok((_, Some(image_id))) => self.observe_new(r, ResourceKind::Image, image_id).await,
            _ => None,
        };
        let (settled, _) = self
            .store
            .finish_action(
                row.id,
                &outcome,
                now_millis(),
                &d,
                refresh,
                created.as_ref(),
            )
            .await?;
        // The usage ledger follows at once: a stop closes the running
        // interval at the action's time (a failure here is mended by the
        // next sync's ledger pass, from the provider's transition time).
        if result.is_ok() && fresh.is_some() {
            let at = settled.started_at.unwrap_or(settled.created_at);
            if let Err(e) = self.store.reconcile_ledger_resource(r.id, at).await {
                tracing::warn!(resource = %r.id, error = %e, "the ledger after an action");
            }
        }
        result?;
        Ok(settled)
    }

    /// Reads a resource an action made (in `r`'s account and region), with
    /// its owner from its tags; `None` if it cannot be read now (the next
    /// sync lists it).
    async fn observe_new(
        &self,
        r: &Resource,
        kind: ResourceKind,
        provider_id: &str,
    ) -> Option<ObservedResource> {
        let provider = self.sync.provider(&r.account)?;
        let read = tokio::time::timeout(
            self.config.action_timeout,
            provider.describe(&r.region, kind, provider_id),
        )
        .await;
        match read {
            Ok(Ok(Some(mut o))) => {
                o.owner =
                    skyhold_core::access::owner_from_tags(&o.tags, &self.config.owner_tag_keys);
                Some(o)
            }
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                tracing::warn!(resource = provider_id, error = %e, "reading a new resource failed");
                None
            }
            Err(_) => None,
        }
    }

    /// Reads one resource afresh from its provider (`None`: it is gone),
    /// with its owner taken from its tags.
    async fn observe(&self, r: &Resource) -> Result<Option<ObservedResource>, AppError> {
        let provider = self.sync.provider(&r.account).ok_or_else(|| {
            AppError::Conflict(format!("account {} is not configured any more", r.account))
        })?;
        let o = &r.observed;
        let mut fresh = provider
            .describe(&r.region, o.kind, &o.provider_id)
            .await
            .map_err(|e| AppError::Unavailable(format!("refreshing {}: {e}", o.provider_id)))?;
        if let Some(f) = fresh.as_mut() {
            f.owner = skyhold_core::access::owner_from_tags(&f.tags, &self.config.owner_tag_keys);
        }
        Ok(fresh)
    }

    /// Reads one resource afresh from its provider and stores the result
    /// (no authorization: callers have decided already).
    pub(crate) async fn reread(&self, r: &Resource) -> Result<Resource, AppError> {
        let fresh = self.observe(r).await?;
        self.store
            .apply_observed(r.id, fresh.as_ref(), now_millis())
            .await
            .map_err(Self::not_found(r.id))?;
        self.store
            .get_resource(r.id)
            .await
            .map_err(Self::not_found(r.id))
    }

    /// Waits (up to five minutes) until the resource of a succeeded power
    /// action reaches the action's end state, re-reading it every second.
    pub async fn wait_for_action(
        &self,
        actor: &Actor,
        a: &ActionRow,
    ) -> Result<ActionRow, AppError> {
        let Some(p) = PowerAction::parse(&a.kind).filter(|_| a.state == "succeeded") else {
            return Ok(a.clone());
        };
        let (end, _) = p.target_state();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        let mut r = self
            .store
            .get_resource(a.resource_id)
            .await
            .map_err(Self::not_found(a.resource_id))?;
        loop {
            let state = if r.deleted_at.is_some() {
                "terminated"
            } else {
                r.observed.state.as_str()
            };
            if state == end || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            r = self.reread(&r).await?;
        }
        self.action(actor, a.id).await
    }

    /// Claims an API idempotency key for the actor's request.
    pub async fn claim_idempotency(
        &self,
        actor: &Actor,
        key: &str,
        request_hash: &str,
    ) -> Result<skyhold_store::IdempotencyClaim, AppError> {
        let stale = (self.config.action_timeout.as_millis() as Millis) * 5;
        Ok(self
            .store
            .claim_idempotency(actor.user_id, key, request_hash, now_millis(), stale)
            .await?)
    }

    /// Records the response to a claimed key; a server error gives the key
    /// back so a retry runs again.
    pub async fn finish_idempotency(&self, actor: &Actor, key: &str, status: u16, body: &[u8]) {
        let r = if status >= 500 {
            self.store.release_idempotency(actor.user_id, key).await
        } else {
            self.store
                .complete_idempotency(actor.user_id, key, status, &String::from_utf8_lossy(body))
                .await
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "recording an idempotent response");
        }
    }

    pub async fn action(&self, actor: &Actor, id: ActionId) -> Result<ActionRow, AppError> {
        self.authorize(actor, Action::ViewActions, Object::None)
            .await?;
        let a = self.store.action(id).await.map_err(|e| match e {
            StoreError::NotFound => AppError::NotFound(format!("action {id}")),
            o => o.into(),
        })?;
        self.may_see_action(actor, &a).await?;
        Ok(a)
    }

    async fn may_see_action(&self, actor: &Actor, a: &ActionRow) -> Result<(), AppError> {
        if a.requested_by == Some(actor.user_id) {
            return Ok(());
        }
        let visible = match self.store.get_resource(a.resource_id).await {
            Ok(r) => self.can_see(actor, &r),
            Err(_) => matches!(
                actor.role,
                skyhold_core::Role::Admin | skyhold_core::Role::Auditor
            ),
        };
        if visible {
            Ok(())
        } else {
            Err(AppError::NotFound(format!("action {}", a.id)))
        }
    }

    /// Actions, newest first (of one resource and/or by one user), that the
    /// actor may see, and the next page's cursor.
    pub async fn actions(
        &self,
        actor: &Actor,
        resource: Option<ResourceId>,
        requested_by: Option<UserId>,
        cursor: Option<ActionId>,
        limit: i64,
    ) -> Result<(Vec<ActionRow>, Option<ActionId>), AppError> {
        self.authorize(actor, Action::ViewActions, Object::None)
            .await?;
        if let Some(id) = resource {
            let r = self
                .store
                .get_resource(id)
                .await
                .map_err(Self::not_found(id))?;
            self.authorize(actor, Action::ViewResource, Object::Resource(&r))
                .await?;
        }
        let mut rows = self
            .store
            .list_actions(resource, requested_by, cursor, limit)
            .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map(|a| a.id)
        } else {
            None
        };
        let mut out = Vec::with_capacity(rows.len());
        for a in rows {
            if self.may_see_action(actor, &a).await.is_ok() {
                out.push(a);
            }
        }
        Ok((out, next))
    }

    /// Settles actions left `pending` or `running` by a process that died
    /// (older than `older_than` ms): re-reads each resource and records what
    /// it shows, without calling the action again. Returns how many.
    pub async fn settle_actions(&self, older_than: Millis) -> Result<usize, AppError> {
        let now = now_millis();
        let system = Actor::system("recovery");
        let mut n = 0;
        for a in self.store.unsettled_actions().await? {
            if now - a.started_at.unwrap_or(a.created_at) < older_than {
                continue;
            }
            let r = match self.store.get_resource(a.resource_id).await {
                Ok(r) => r,
                Err(_) => continue,
            };
            if a.kind == "create_image" {
                match self.settle_image(&system, &a, &r).await {
                    Ok(true) => n += 1,
                    Ok(false) => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            let seen = self.reread(&r).await;
            let (succeeded, note) = match (&seen, a.kind.as_str()) {
                (Ok(now_r), kind) => {
                    let state = if now_r.deleted_at.is_some() {
                        "terminated"
                    } else {
                        now_r.observed.state.as_str()
                    };
                    let reached = match PowerAction::parse(kind) {
                        Some(p) => {
                            let (end, via) = p.target_state();
                            state == end || via.contains(&state)
                        }
                        None if kind == "deregister" || kind == "delete" => {
                            now_r.deleted_at.is_some() || now_r.observed.state == "terminated"
                        }
                        None => {
                            a.params.get("owner").and_then(|v| v.as_str())
                                == Some(now_r.observed.owner.as_str())
                        }
                    };
                    (
                        reached,
                        format!("settled after a restart: the resource is {state}"),
                    )
                }
                (Err(e), _) => (
                    false,
                    format!("settled after a restart: could not re-read it: {e}"),
                ),
            };
            let mut d: AuditDraft =
                system.audit(&format!("resource.{}", a.kind), resource_target(&r));
            d.new = Some(serde_json::json!({"action_id": a.id.0, "settled": true}));
            if !succeeded {
                d.outcome = audit::outcome::FAILED.into();
                d.reason = format!("interrupted: {note}; not retried");
            }
            let outcome = Outcome {
                succeeded,
                error_code: if succeeded {
                    String::new()
                } else {
                    "interrupted".into()
                },
                error: if succeeded {
                    String::new()
                } else {
                    format!("interrupted: {note}; not retried")
                },
                ..Default::default()
            };
            match self
                .store
                .finish_action(a.id, &outcome, now_millis(), &d, None, None)
                .await
            {
                Ok(_) => n += 1,
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }
}

impl App {
    /// Settles an interrupted create_image: the image this action made is
    /// found by its name and action tag (never made again). Returns whether
    /// it settled the row.
    async fn settle_image(
        &self,
        system: &Actor,
        a: &ActionRow,
        r: &Resource,
    ) -> Result<bool, AppError> {
        let Some(provider) = self.sync.provider(&r.account) else {
            return Ok(false);
        };
        let name = a.params["name"].as_str().unwrap_or_default();
        let found = match tokio::time::timeout(
            self.config.action_timeout,
            provider.image_named(&r.region, name),
        )
        .await
        {
            Ok(Ok(found)) => found,
            // The provider cannot tell now: the next pass asks again.
            _ => return Ok(false),
        };
        let mine = found.filter(|i| i.tags.get(IMAGE_ACTION_TAG) == Some(&a.id.to_string()));
        let mut d: AuditDraft = system.audit("resource.create_image", resource_target(r));
        let outcome = match &mine {
            Some(img) => {
                d.new = Some(
                    serde_json::json!({"action_id": a.id.0, "image_id": img.provider_id, "settled": true}),
                );
                Outcome {
                    succeeded: true,
                    result: serde_json::json!({"image_id": img.provider_id}),
                    ..Default::default()
                }
            }
            None => {
                let note = format!("interrupted: no image named {name:?} was made; not retried");
                d.outcome = audit::outcome::FAILED.into();
                d.reason = note.clone();
                d.new = Some(serde_json::json!({"action_id": a.id.0, "settled": true}));
                Outcome {
                    succeeded: false,
                    error_code: "interrupted".into(),
                    error: note,
                    ..Default::default()
                }
            }
        };
        let created = match &mine {
            Some(img) => {
                self.observe_new(r, ResourceKind::Image, &img.provider_id)
                    .await
            }
            None => None,
        };
        match self
            .store
            .finish_action(a.id, &outcome, now_millis(), &d, None, created.as_ref())
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
