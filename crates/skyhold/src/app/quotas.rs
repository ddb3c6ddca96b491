//! Quotas: admins set defaults (`default:user`, `default:group`) and
//! overrides (`user:NAME`, `group:NAME`); everyone sees their own usage
//! against each limit. Which quotas apply to a launch, and whose resources
//! count as each one's usage, is decided here; the store checks and
//! reserves in one transaction.

use super::access::{Action, Actor, Object};
use super::App;
use crate::error::AppError;
use skyhold_core::audit::AuditTarget;
use skyhold_core::quota::{Applicable, Limits, QuotaSubject};
use skyhold_core::{now_millis, Subject};
use skyhold_store::{QuotaRow, QuotaScope, StoreError};

pub(super) fn quota_target(subject: &QuotaSubject) -> AuditTarget {
    AuditTarget {
        kind: "quota".into(),
        name: subject.to_string(),
        ..Default::default()
    }
}

impl App {
    /// The quotas that bound what `owner` (a user name or `group:NAME`)
    /// holds: a user's own (override, else `default:user`) and each of
    /// their groups' (override, else `default:group`); a group's own. A
    /// user's usage is what they own; a group's is what its members and
    /// the group own.
    pub async fn quota_scopes(&self, owner: &Subject) -> Result<Vec<QuotaScope>, AppError> {
        let group_scope = |g: skyhold_store::Group| {
            let mut owners: Vec<String> = g.members;
            owners.push(format!("group:{}", g.name));
            QuotaScope {
                subject: QuotaSubject::Group(g.name),
                fallback: QuotaSubject::DefaultGroup,
                owners,
            }
        };
        Ok(match owner {
            Subject::User(name) => {
                let mut scopes = vec![QuotaScope {
                    subject: QuotaSubject::User(name.clone()),
                    fallback: QuotaSubject::DefaultUser,
                    owners: vec![name.clone()],
                }];
                scopes.extend(
                    self.store
                        .groups_of_member(name)
                        .await?
                        .into_iter()
                        .map(group_scope),
                );
                scopes
            }
            Subject::Group(name) => self
                .store
                .group_by_name(name)
                .await?
                .into_iter()
                .map(group_scope)
                .collect(),
        })
    }

    /// The actor's own quotas: limits, where they come from, and usage.
    pub async fn my_quota(&self, actor: &Actor) -> Result<Vec<Applicable>, AppError> {
        self.authorize(actor, Action::ManageOwnProfile, Object::None)
            .await?;
        let scopes = self
            .quota_scopes(&Subject::User(actor.username.clone()))
            .await?;
        Ok(self.store.quota_usage(&scopes, now_millis()).await?)
    }

    /// Every stored quota (admins and auditors).
    pub async fn quotas(&self, actor: &Actor) -> Result<Vec<QuotaRow>, AppError> {
        self.authorize(actor, Action::ViewQuotas, Object::None)
            .await?;
        Ok(self.store.list_quotas().await?)
    }

    /// Limits and usage for one subject's quota as a launch would see them
    /// (admins and auditors).
    pub async fn quota_of(
        &self,
        actor: &Actor,
        subject: &str,
    ) -> Result<Vec<Applicable>, AppError> {
        self.authorize(actor, Action::ViewQuotas, Object::None)
            .await?;
        let subject = self.resolve_quota_subject(subject).await?;
        let owner = match &subject {
            QuotaSubject::User(n) => Subject::User(n.clone()),
            QuotaSubject::Group(n) => Subject::Group(n.clone()),
            _ => return Ok(Vec::new()),
        };
        let scopes = self.quota_scopes(&owner).await?;
        Ok(self.store.quota_usage(&scopes, now_millis()).await?)
    }

    /// Parses a subject and checks that the user or group exists.
    pub(super) async fn resolve_quota_subject(&self, s: &str) -> Result<QuotaSubject, AppError> {
        let subject = QuotaSubject::parse(s).map_err(|m| AppError::bad_parameter("subject", m))?;
        match &subject {
            QuotaSubject::User(n) => {
                self.store.user_by_name(n).await?.ok_or_else(|| {
                    AppError::bad_parameter("subject", format!("no user named {n:?}"))
                })?;
            }
            QuotaSubject::Group(n) => {
                self.group_by_name(n).await.map_err(|_| {
                    AppError::bad_parameter("subject", format!("no group named {n:?}"))
                })?;
            }
            QuotaSubject::DefaultUser | QuotaSubject::DefaultGroup => {}
        }
        Ok(subject)
    }

    /// Sets the limits of a default or an override (admins).
    pub async fn set_quota(
        &self,
        actor: &Actor,
        subject: &str,
        limits: Limits,
    ) -> Result<QuotaRow, AppError> {
        self.authorize(actor, Action::ManageQuotas, Object::None)
            .await?;
        let subject = self.resolve_quota_subject(subject).await?;
        let mut d = actor.audit("quota.set", quota_target(&subject));
        d.new = Some(serde_json::to_value(limits).unwrap_or_default());
        let now = now_millis();
        self.store
            .set_quota(&subject, &limits, Some(actor.user_id.0), now, &d)
            .await?;
        Ok(QuotaRow {
            subject,
            limits,
            updated_at: now,
        })
    }

    /// Removes an override (the default applies again) or a default
    /// (unlimited again).
    pub async fn delete_quota(&self, actor: &Actor, subject: &str) -> Result<(), AppError> {
        self.authorize(actor, Action::ManageQuotas, Object::None)
            .await?;
        let subject =
            QuotaSubject::parse(subject).map_err(|m| AppError::bad_parameter("subject", m))?;
        let d = actor.audit("quota.delete", quota_target(&subject));
        self.store
            .delete_quota(&subject, &d)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => AppError::NotFound(format!("quota of {subject}")),
                o => o.into(),
            })
    }
}
