//! Blueprints: admins define them; grants on a blueprint decide who sees it
//! (`view`) and who launches from it (`operate`). Every change writes a new
//! version with its audit entry.

use super::access::{Action, Actor, Object};
use super::App;
use crate::error::AppError;
use skyhold_core::audit::AuditTarget;
use skyhold_core::blueprint::{BlueprintSpec, FieldError};
use skyhold_core::now_millis;
use skyhold_store::{BlueprintRow, StoreError};

pub(crate) fn blueprint_target(b: &BlueprintRow) -> AuditTarget {
    AuditTarget {
        kind: "blueprint".into(),
        id: b.id.to_string(),
        name: b.spec.name.clone(),
        ..Default::default()
    }
}

/// `8h`, `2d` → milliseconds; '' → none. For TTL fields of forms, flags
/// and bodies.
pub fn parse_ttl(field: &str, s: &str) -> Result<Option<i64>, FieldError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    skyhold_core::search::parse_duration(s)
        .map(Some)
        .map_err(|m| FieldError::new(field, m))
}

impl App {
    /// The live blueprint named (or numbered) `name_or_id`, unchecked.
    pub async fn find_blueprint(&self, name_or_id: &str) -> Result<BlueprintRow, AppError> {
        self.store
            .blueprint(name_or_id.trim(), None)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => AppError::NotFound(format!(
                    "blueprint {:?}",
                    skyhold_core::clip(name_or_id, 80)
                )),
                o => o.into(),
            })
    }

    /// The blueprints the actor may see, by name.
    pub async fn blueprints(&self, actor: &Actor) -> Result<Vec<BlueprintRow>, AppError> {
        self.authorize(actor, Action::ViewBlueprints, Object::None)
            .await?;
        let mut all = self.store.list_blueprints().await?;
        all.retain(|b| self.allows(actor, Action::ViewBlueprint, Object::Blueprint(b.id)));
        Ok(all)
    }

    /// One blueprint (view on it), at its current version or `version`.
    pub async fn blueprint(
        &self,
        actor: &Actor,
        name_or_id: &str,
        version: Option<i64>,
    ) -> Result<BlueprintRow, AppError> {
        let b = self.find_blueprint(name_or_id).await?;
        self.authorize(actor, Action::ViewBlueprint, Object::Blueprint(b.id))
            .await?;
        match version {
            None => Ok(b),
            Some(v) => self
                .store
                .blueprint(&b.id.to_string(), Some(v))
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => {
                        AppError::NotFound(format!("version {v} of blueprint {}", b.spec.name))
                    }
                    o => o.into(),
                }),
        }
    }

    /// Everything about a spec that the configuration and the providers
    /// can tell: its fields, its accounts and regions, and in each of
    /// those its image and subnets.
    async fn check_blueprint(&self, spec: &BlueprintSpec) -> Result<(), AppError> {
        spec.validate()?;
        let image = spec.image_ref()?;
        for a in &spec.accounts {
            let name = skyhold_core::AccountName::parse(a).ok();
            let acct = name.as_ref().and_then(|n| self.config.account(n));
            let (Some(name), Some(acct)) = (name, acct) else {
                return Err(FieldError::new("account", format!("no account named {a:?}")).into());
            };
            for r in &spec.regions {
                if !acct.regions.is_empty() && !acct.regions.iter().any(|x| x == r) {
                    return Err(FieldError::new(
                        "region",
                        format!(
                            "account {a} does not sync region {r} (it has {})",
                            acct.regions.join(", ")
                        ),
                    )
                    .into());
                }
            }
            let Some(provider) = self.sync.provider(&name) else {
                continue;
            };
            for r in &spec.regions {
                self.check_in_provider(provider.as_ref(), a, r, spec, &image)
                    .await?;
            }
        }
        Ok(())
    }

    /// The image `image` names in one account and region, or a field error
    /// on `image` saying it is not there.
    pub(super) async fn find_image(
        &self,
        provider: &dyn skyhold_core::Provider,
        account: &str,
        region: &str,
        image: &skyhold_core::blueprint::ImageRef,
    ) -> Result<skyhold_core::ImageInfo, AppError> {
        use skyhold_core::blueprint::ImageRef;
        let found = tokio::time::timeout(self.config.action_timeout, provider.image(region, image))
            .await
            .map_err(|_| {
                AppError::Provider(format!("{account}/{region} did not answer in time"))
            })??;
        found.ok_or_else(|| {
            FieldError::new(
                "image",
                match image {
                    ImageRef::Ami(id) => format!("image {id} does not exist in {account}/{region}"),
                    ImageRef::NewestMatching(p) => {
                        format!("no own image in {account}/{region} has a name matching {p:?}")
                    }
                },
            )
            .into()
        })
    }

    /// The image and the subnets of a spec, as one account's provider
    /// shows them in one region.
    async fn check_in_provider(
        &self,
        provider: &dyn skyhold_core::Provider,
        account: &str,
        region: &str,
        spec: &BlueprintSpec,
        image: &skyhold_core::blueprint::ImageRef,
    ) -> Result<(), AppError> {
        self.find_image(provider, account, region, image).await?;
        self.blueprint_zone(provider, spec).await?;
        let timeout = self.config.action_timeout;
        let late = || AppError::Provider(format!("{account}/{region} did not answer in time"));
        for sn in &spec.subnet_ids {
            let seen = tokio::time::timeout(
                timeout,
                provider.describe(region, skyhold_core::ResourceKind::Subnet, sn),
            )
            .await
            .map_err(|_| late())??;
            if seen.is_none() {
                return Err(FieldError::new(
                    "subnet_ids",
                    format!("subnet {sn} does not exist in {account}/{region}"),
                )
                .into());
            }
        }
        Ok(())
    }

    /// Creates a blueprint at version 1. `spec` is the request as parsed:
    /// its errors are reported only after the actor is allowed to create
    /// (who may not learns nothing from them, and the denial is audited).
    pub async fn create_blueprint(
        &self,
        actor: &Actor,
        spec: Result<BlueprintSpec, AppError>,
    ) -> Result<BlueprintRow, AppError> {
        self.authorize(actor, Action::ManageBlueprints, Object::None)
            .await?;
        let spec = spec?;
        self.check_blueprint(&spec).await?;
        let mut d = actor.audit(
            "blueprint.create",
            AuditTarget {
                kind: "blueprint".into(),
                name: spec.name.clone(),
                ..Default::default()
            },
        );
        d.new = Some(serde_json::json!({ "spec": spec_summary(&spec) }));
        Ok(self
            .store
            .create_blueprint(&spec, Some(actor.user_id.0), now_millis(), &d)
            .await?)
    }

    /// Writes `edit(current spec)` as the next version, if the blueprint
    /// is still at `expected_version` (or at any version when `None`).
    /// The blueprint must be visible (else 404) and manageable; only then
    /// is the edit applied, so its errors reach only those allowed. An
    /// edit that changes nothing writes no version.
    pub async fn update_blueprint(
        &self,
        actor: &Actor,
        name_or_id: &str,
        expected_version: Option<i64>,
        edit: impl FnOnce(&BlueprintSpec) -> Result<BlueprintSpec, AppError>,
    ) -> Result<BlueprintRow, AppError> {
        let b = self.blueprint(actor, name_or_id, None).await?;
        self.authorize(actor, Action::ManageBlueprints, Object::Blueprint(b.id))
            .await?;
        let spec = edit(&b.spec)?;
        if spec == b.spec && expected_version.is_none_or(|v| v == b.current_version) {
            return Ok(b);
        }
        self.check_blueprint(&spec).await?;
        let mut d = actor.audit("blueprint.update", blueprint_target(&b));
        d.new = Some(serde_json::json!({ "spec": spec_summary(&spec) }));
        Ok(self
            .store
            .update_blueprint(
                b.id,
                expected_version.unwrap_or(b.current_version),
                &spec,
                Some(actor.user_id.0),
                now_millis(),
                &d,
            )
            .await?)
    }

    pub async fn delete_blueprint(&self, actor: &Actor, name_or_id: &str) -> Result<(), AppError> {
        let b = self.find_blueprint(name_or_id).await?;
        self.authorize(actor, Action::ManageBlueprints, Object::Blueprint(b.id))
            .await?;
        let mut d = actor.audit("blueprint.delete", blueprint_target(&b));
        d.old = Some(serde_json::json!({ "version": b.current_version }));
        self.store
            .delete_blueprint(b.id, now_millis(), &d)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => AppError::NotFound(format!("blueprint {}", b.spec.name)),
                o => o.into(),
            })
    }
}

/// What the audit entry keeps of a spec: the whole spec but its user data
/// (which may carry secrets of the operator's), replaced by its length.
fn spec_summary(spec: &BlueprintSpec) -> serde_json::Value {
    let mut v = serde_json::to_value(spec).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "user_data".into(),
            serde_json::json!(format!("({} bytes)", spec.user_data.len())),
        );
    }
    v
}
