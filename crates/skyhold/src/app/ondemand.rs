//! On-demand reads through an account's provider: stack templates, alarm
//! history, bucket objects and presigned downloads.

use super::{Action, Actor, App, Object, OBJECT_URL_TTL};
use crate::error::AppError;
use skyhold_core::{now_millis, Resource, ResourceId, ResourceKind};
use std::sync::Arc;

impl App {
    async fn live_target(
        &self,
        actor: &Actor,
        action: Action,
        id: ResourceId,
        kind: ResourceKind,
    ) -> Result<(Resource, Arc<dyn skyhold_core::Provider>), AppError> {
        let r = self.store.get_resource(id).await.map_err(|e| match e {
            skyhold_store::StoreError::NotFound => AppError::NotFound(format!("resource {id}")),
            other => other.into(),
        })?;
        self.authorize(actor, action, Object::Resource(&r)).await?;
        if r.observed.kind != kind {
            return Err(AppError::BadRequest(format!(
                "resource {id} is a {}, not a {kind}",
                r.observed.kind
            )));
        }
        if r.deleted_at.is_some() {
            return Err(AppError::NotFound(format!("resource {id} (it is gone)")));
        }
        let provider = self.sync.provider(&r.account).ok_or_else(|| {
            AppError::NotFound(format!("account {} (no longer configured)", r.account))
        })?;
        Ok((r, provider))
    }

    /// A stack's template: fetched from the provider on first use, then
    /// served from the database until the stack changes.
    pub async fn stack_template(
        &self,
        actor: &Actor,
        id: ResourceId,
    ) -> Result<(Resource, String), AppError> {
        let (r, provider) = self
            .live_target(actor, Action::ViewResource, id, ResourceKind::Stack)
            .await?;
        let a = &r.observed.attributes;
        let version = format!(
            "{}|{}",
            a.get("updated_time").and_then(|v| v.as_str()).unwrap_or(""),
            r.observed.created_at.unwrap_or(0)
        );
        if let Some(body) = self.store.cached_template(r.id, &version).await? {
            return Ok((r, body));
        }
        let body = provider
            .stack_template(&r.region, &r.observed.provider_id)
            .await?;
        self.store
            .put_template(r.id, &version, &body, now_millis())
            .await?;
        Ok((r, body))
    }

    /// An alarm's state history, newest first, read from the provider.
    pub async fn alarm_history(
        &self,
        actor: &Actor,
        id: ResourceId,
    ) -> Result<Vec<skyhold_core::AlarmHistoryItem>, AppError> {
        let (r, provider) = self
            .live_target(actor, Action::ViewResource, id, ResourceKind::Alarm)
            .await?;
        Ok(provider.alarm_history(&r.region, &r.observed.name).await?)
    }

    /// The bucket resource `id`, if its account's configuration lets its
    /// objects be browsed.
    async fn browsable(
        &self,
        actor: &Actor,
        id: ResourceId,
    ) -> Result<(Resource, Arc<dyn skyhold_core::Provider>), AppError> {
        let (r, provider) = self
            .live_target(actor, Action::BrowseObjects, id, ResourceKind::Bucket)
            .await?;
        let allowed = self
            .config
            .account(&r.account)
            .is_some_and(|a| a.may_browse(&r.observed.provider_id));
        if !allowed {
            return Err(AppError::Forbidden(format!(
                "object browsing is not enabled for bucket {} (an admin lists it in browse_buckets)",
                r.observed.provider_id
            )));
        }
        Ok((r, provider))
    }

    /// Whether the objects of this bucket may be browsed (for links).
    pub fn may_browse(&self, r: &Resource) -> bool {
        r.observed.kind == ResourceKind::Bucket
            && self
                .config
                .account(&r.account)
                .is_some_and(|a| a.may_browse(&r.observed.provider_id))
    }

    /// One page of a bucket's objects and prefixes below `prefix`.
    pub async fn bucket_objects(
        &self,
        actor: &Actor,
        id: ResourceId,
        prefix: &str,
        token: Option<&str>,
    ) -> Result<(Resource, skyhold_core::ObjectPage), AppError> {
        if prefix.len() > 1024 {
            return Err(AppError::bad_parameter("prefix", "at most 1024 bytes"));
        }
        // The listing echoes the prefix in XML, which cannot carry control
        // characters (S3 would need EncodingType=url; moto fails).
        if prefix.chars().any(char::is_control) {
            return Err(AppError::bad_parameter("prefix", "no control characters"));
        }
        if token.is_some_and(|t| t.len() > 4096) {
            return Err(AppError::bad_parameter("token", "use next_token as given"));
        }
        let (r, provider) = self.browsable(actor, id).await?;
        let page = provider
            .list_objects(&r.region, &r.observed.provider_id, prefix, token)
            .await
            .map_err(|e| match (token, e.kind) {
                // The token is the caller's input, passed through: S3
                // refuses one it did not issue (InvalidArgument; moto fails
                // with a 500). That is a bad parameter, not a provider
                // failure; throttling, denial and unreachability stay theirs.
                (Some(_), skyhold_core::ProviderErrorKind::Other) => AppError::bad_parameter(
                    "token",
                    format!(
                        "not accepted by the provider (use next_token as given): {}",
                        skyhold_core::clip(&e.message, 200)
                    ),
                ),
                _ => e.into(),
            })?;
        Ok((r, page))
    }

    /// A short-lived URL that downloads one object of a browsable bucket.
    pub async fn object_url(
        &self,
        actor: &Actor,
        id: ResourceId,
        key: &str,
    ) -> Result<String, AppError> {
        if key.is_empty() || key.len() > 1024 {
            return Err(AppError::bad_parameter("key", "1 to 1024 bytes"));
        }
        let (r, provider) = self.browsable(actor, id).await?;
        tracing::info!(user = %actor.username, bucket = %r.observed.provider_id, key, "object download");
        Ok(provider
            .presign_get(&r.region, &r.observed.provider_id, key, OBJECT_URL_TTL)
            .await?)
    }
}
