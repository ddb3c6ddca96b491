//! The one authorization check: who is asking (`Actor`, with the groups and
//! grants loaded once per request), what they ask for (`Action`), on which
//! object (`Object`), and `decide`, the pure function that answers. Every
//! domain function calls [`App::authorize`], which applies `decide` and
//! writes refusals to the audit log. List queries get the same answer as a
//! SQL filter from [`visibility`].

use super::App;
use crate::config::Config;
use crate::error::AppError;
use skyhold_core::access::owner_subject;
use skyhold_core::audit::{self, AuditDraft, AuditTarget};
use skyhold_core::{
    now_millis, AccountName, BlueprintId, GroupId, Level, Resource, ResourceId, Role, Subject,
    TokenId, UserId, Visibility,
};
use std::collections::HashSet;

/// Who is asking, how they proved it, what they hold, and where the request
/// came from (for the audit log).
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: UserId,
    pub username: String,
    pub role: Role,
    pub via: AuthVia,
    /// The groups the user belongs to: (id, name).
    pub groups: Vec<(GroupId, String)>,
    /// The grants held directly or through a group.
    pub grants: Vec<Held>,
    pub ctx: RequestCtx,
}

/// One grant an actor holds: a level on an object (stored kind and key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub object_kind: String,
    pub object_key: String,
    pub level: Level,
}

/// Where a request came from; empty for jobs and the CLI on the database.
#[derive(Debug, Clone, Default)]
pub struct RequestCtx {
    pub client_ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub idempotency_key: String,
    /// Why a job acts (a policy's reason), written to the audit entry.
    pub reason: String,
}

#[derive(Debug, Clone)]
pub enum AuthVia {
    /// A browser session; forms must carry this CSRF token. `method` is
    /// how it was started (`password`, `proxy`, `oidc`).
    Session {
        csrf: String,
        method: String,
    },
    Token(TokenId),
    /// A trusted reverse proxy's identity header, on this request.
    Proxy,
    /// skyhold itself: a background job, a policy, the CLI on the database.
    System(String),
}

impl AuthVia {
    /// How the actor authenticated, as the audit log writes it.
    pub fn audit_name(&self) -> &str {
        match self {
            AuthVia::Session { method, .. } if method == audit::auth::PASSWORD => {
                audit::auth::SESSION
            }
            AuthVia::Session { method, .. } => method,
            AuthVia::Token(_) => audit::auth::TOKEN,
            AuthVia::Proxy => audit::auth::PROXY,
            AuthVia::System(_) => audit::auth::SYSTEM,
        }
    }
}

impl Actor {
    /// skyhold acting on its own (`system:JOB`): admin rights, no user.
    pub fn system(job: &str) -> Self {
        Actor {
            user_id: UserId(0),
            username: format!("system:{job}"),
            role: Role::Admin,
            via: AuthVia::System(job.to_owned()),
            groups: Vec::new(),
            grants: Vec::new(),
            ctx: RequestCtx::default(),
        }
    }

    pub fn is_system(&self) -> bool {
        matches!(self.via, AuthVia::System(_))
    }

    /// Whether an owner value (`ann`, `group:dev`) names this actor or one
    /// of their groups.
    pub fn owns(&self, owner: &str) -> bool {
        match owner_subject(owner) {
            Some(Subject::User(u)) => u == self.username,
            Some(Subject::Group(g)) => self.groups.iter().any(|(_, n)| *n == g),
            None => false,
        }
    }

    /// The owner values that are this actor's: their name and `group:G`
    /// for each of their groups.
    pub fn owner_values(&self) -> Vec<String> {
        std::iter::once(self.username.clone())
            .chain(self.groups.iter().map(|(_, g)| format!("group:{g}")))
            .collect()
    }

    fn held(&self, kind: &str, key: &str) -> Option<Level> {
        self.grants
            .iter()
            .filter(|g| g.object_kind == kind && g.object_key == key)
            .map(|g| g.level)
            .max()
    }

    /// Starts an audit entry for an attempt by this actor.
    pub fn audit(&self, action: &str, target: AuditTarget) -> AuditDraft {
        AuditDraft {
            time: now_millis(),
            actor_id: (!self.is_system()).then_some(self.user_id.0),
            actor: self.username.clone(),
            auth: self.via.audit_name().to_owned(),
            client_ip: self.ctx.client_ip.clone(),
            user_agent: self.ctx.user_agent.clone(),
            request_id: self.ctx.request_id.clone(),
            idempotency_key: self.ctx.idempotency_key.clone(),
            action: action.to_owned(),
            target,
            outcome: audit::outcome::OK.to_owned(),
            ..Default::default()
        }
    }
}

/// Everything an actor can ask for. Adding a capability means adding a
/// variant here, its name, and its line in [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Lists, search, counts, dashboard, changes (rows filtered by
    /// [`visibility`]).
    ViewInventory,
    /// One resource's page.
    ViewResource,
    ViewAccounts,
    ViewSyncStatus,
    TriggerSync,
    /// Re-read one resource from its provider (operate).
    RefreshResource,
    StartResource,
    StopResource,
    RebootResource,
    TerminateResource,
    /// Write `skyhold:owner` (manage).
    SetOwner,
    /// Set, extend or clear `skyhold:expires-at` within the cap (manage).
    SetExpiry,
    /// Make a resource never expire: admins, or a manage grant on the
    /// resource or its account (owning it is not enough).
    NeverExpire,
    /// Write or remove the `skyhold:keep` opt-out (as `NeverExpire`).
    KeepResource,
    /// Make an image of an instance (operate).
    CreateImage,
    /// Deregister an own image (manage).
    DeregisterImage,
    /// List and download objects of the buckets the configuration enables.
    BrowseObjects,
    ManageOwnTokens,
    /// Saved views are per user: each manages only their own.
    ManageOwnViews,
    /// One's own password, email and SSH keys.
    ManageOwnProfile,
    ViewUsers,
    ManageUsers,
    /// Act on a user's behalf (manage on the user; launches, next issue).
    ActFor,
    ViewGroups,
    /// Create and delete groups.
    ManageGroups,
    /// Add and remove members (manage on the group).
    ManageMembers,
    /// See who holds what on an object (manage on it).
    ViewGrants,
    /// Grant, change and revoke on an object (manage on it).
    ChangeGrants,
    /// Read the audit log (members and viewers: the entries about them and
    /// what they manage).
    ViewAudit,
    /// Export or verify the whole log.
    ExportAudit,
    ViewActions,
    /// List the blueprints one may see (each filtered by `ViewBlueprint`).
    ViewBlueprints,
    /// One blueprint (view on it).
    ViewBlueprint,
    /// Create, edit and delete blueprints (admins).
    ManageBlueprints,
    /// Launch from a blueprint (operate on it).
    LaunchFrom,
    /// See every quota (admins and auditors; everyone sees their own).
    ViewQuotas,
    /// Set and remove quotas and defaults (admins).
    ManageQuotas,
    /// The policies' preview and passes (admins and auditors).
    ViewPolicies,
    /// Run a policy pass now (admins).
    RunPolicies,
    /// Confirm a pass held by the mass-action cap (admins).
    ConfirmPolicyRun,
    /// The notification outbox and its deliveries (admins and auditors).
    ViewNotifications,
    /// Usage and spend reports (everyone: their own and their groups').
    ViewSpend,
    /// Everyone's usage and spend (admins and auditors).
    ViewAllSpend,
}

impl Action {
    /// The name written to the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ViewInventory => "inventory.read",
            Action::ViewResource => "resource.read",
            Action::ViewAccounts => "account.list",
            Action::ViewSyncStatus => "sync.status",
            Action::TriggerSync => "sync.run",
            Action::RefreshResource => "resource.refresh",
            Action::StartResource => "resource.start",
            Action::StopResource => "resource.stop",
            Action::RebootResource => "resource.reboot",
            Action::TerminateResource => "resource.terminate",
            Action::SetOwner => "resource.set_owner",
            Action::SetExpiry => "resource.set_expiry",
            Action::NeverExpire => "resource.never_expire",
            Action::KeepResource => "resource.keep",
            Action::CreateImage => "resource.create_image",
            Action::DeregisterImage => "resource.deregister",
            Action::BrowseObjects => "bucket.browse",
            Action::ManageOwnTokens => "token.manage",
            Action::ManageOwnViews => "view.manage",
            Action::ManageOwnProfile => "profile.manage",
            Action::ViewUsers => "user.list",
            Action::ManageUsers => "user.manage",
            Action::ActFor => "user.act_for",
            Action::ViewGroups => "group.list",
            Action::ManageGroups => "group.manage",
            Action::ManageMembers => "group.members",
            Action::ViewGrants => "grant.list",
            Action::ChangeGrants => "grant.change",
            Action::ViewAudit => "audit.read",
            Action::ExportAudit => "audit.export",
            Action::ViewActions => "action.list",
            Action::ViewBlueprints => "blueprint.list",
            Action::ViewBlueprint => "blueprint.read",
            Action::ManageBlueprints => "blueprint.manage",
            Action::LaunchFrom => "blueprint.launch",
            Action::ViewQuotas => "quota.list",
            Action::ManageQuotas => "quota.manage",
            Action::ViewPolicies => "policy.read",
            Action::RunPolicies => "policy.run",
            Action::ConfirmPolicyRun => "policy.confirm",
            Action::ViewNotifications => "notification.list",
            Action::ViewSpend => "spend.read",
            Action::ViewAllSpend => "spend.read_all",
        }
    }
}

/// What an action is about.
#[derive(Debug, Clone, Copy)]
pub enum Object<'a> {
    /// Nothing in particular (a list, the sync, one's own profile).
    None,
    Account(&'a AccountName),
    Resource(&'a Resource),
    Group(GroupId),
    User(UserId),
    Blueprint(BlueprintId),
}

/// What the configuration says about visibility: the restricted accounts.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    restricted: HashSet<String>,
}

impl Policy {
    pub fn from_config(c: &Config) -> Self {
        Policy {
            restricted: c
                .accounts
                .iter()
                .filter(|a| a.restricted)
                .map(|a| a.name.to_string())
                .collect(),
        }
    }

    pub fn is_restricted(&self, account: &str) -> bool {
        self.restricted.contains(account)
    }
}

/// The answer of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused; the object may be shown (403).
    Deny(String),
    /// Refused, and the object's existence is not revealed (404).
    Hide,
}

/// The actor's effective level on an object: admins manage everything;
/// otherwise the highest of ownership (manage), grants on the object, and
/// for a resource grants on its account; an unrestricted account's
/// resources are visible to all. Viewers and auditors never exceed `view`
/// (auditors see restricted accounts too).
pub fn level_on(policy: &Policy, actor: &Actor, object: Object<'_>) -> Option<Level> {
    if actor.role == Role::Admin {
        return Some(Level::Manage);
    }
    let found = match object {
        Object::None => Some(Level::View),
        Object::Account(a) => {
            let held = actor.held("account", a.as_str());
            let open = (!policy.is_restricted(a.as_str()) || actor.role == Role::Auditor)
                .then_some(Level::View);
            held.max(open)
        }
        Object::Resource(r) => {
            let owner = actor.owns(&r.observed.owner).then_some(Level::Manage);
            let on_resource = actor.held("resource", &r.id.to_string());
            let on_account = actor.held("account", r.account.as_str());
            let open = (!policy.is_restricted(r.account.as_str()) || actor.role == Role::Auditor)
                .then_some(Level::View);
            owner.max(on_resource).max(on_account).max(open)
        }
        // Groups and users are visible to everyone signed in; levels above
        // that come from grants.
        Object::Group(g) => actor.held("group", &g.to_string()).max(Some(Level::View)),
        Object::User(u) => {
            let own = (u == actor.user_id).then_some(Level::View);
            actor
                .held("user", &u.to_string())
                .max(own)
                .max(Some(Level::View))
        }
        // Blueprints show only to grant holders (and auditors, who read
        // everything).
        Object::Blueprint(b) => actor
            .held("blueprint", &b.to_string())
            .max((actor.role == Role::Auditor).then_some(Level::View)),
    };
    match actor.role {
        Role::Viewer | Role::Auditor => found.map(|l| l.min(Level::View)),
        _ => found,
    }
}

/// The level an action needs on its object, or `None` for actions decided
/// by role alone.
fn required(action: Action) -> Option<Level> {
    use Action as A;
    match action {
        A::ViewResource | A::BrowseObjects | A::ViewBlueprint => Some(Level::View),
        A::RefreshResource
        | A::StartResource
        | A::StopResource
        | A::RebootResource
        | A::CreateImage
        | A::LaunchFrom => Some(Level::Operate),
        A::TerminateResource
        | A::DeregisterImage
        | A::SetOwner
        | A::SetExpiry
        | A::NeverExpire
        | A::KeepResource
        | A::ActFor
        | A::ManageMembers
        | A::ViewGrants
        | A::ChangeGrants => Some(Level::Manage),
        _ => None,
    }
}

/// The one decision: may `actor` do `action` on `object`?
pub fn decide(policy: &Policy, actor: &Actor, action: Action, object: Object<'_>) -> Decision {
    use Action as A;
    let role = actor.role;
    if role == Role::Admin {
        return Decision::Allow;
    }
    let by_role = |ok: bool| {
        if ok {
            Decision::Allow
        } else {
            Decision::Deny(format!(
                "role {} may not {}",
                role.as_str(),
                action.as_str()
            ))
        }
    };
    // Managing a blueprint one cannot even see does not reveal it.
    if action == A::ManageBlueprints
        && matches!(object, Object::Blueprint(_))
        && level_on(policy, actor, object).is_none()
    {
        return Decision::Hide;
    }
    match action {
        A::ViewInventory
        | A::ViewAccounts
        | A::ViewSyncStatus
        | A::ManageOwnTokens
        | A::ManageOwnViews
        | A::ManageOwnProfile
        | A::ViewGroups
        | A::ViewAudit
        | A::ViewActions
        | A::ViewBlueprints
        | A::ViewSpend => return by_role(true),
        A::TriggerSync
        | A::ManageUsers
        | A::ManageGroups
        | A::ManageBlueprints
        | A::ManageQuotas
        | A::RunPolicies
        | A::ConfirmPolicyRun => return by_role(false),
        A::ViewUsers
        | A::ExportAudit
        | A::ViewQuotas
        | A::ViewPolicies
        | A::ViewNotifications
        | A::ViewAllSpend => return by_role(role == Role::Auditor),
        _ => {}
    }
    // Auditors read every object's grants.
    if action == A::ViewGrants && role == Role::Auditor {
        return Decision::Allow;
    }
    // Never expiring (or keeping) takes a grant: what an owner holds by
    // owning is not enough to exempt it from every expiry policy.
    if let (A::NeverExpire | A::KeepResource, Object::Resource(r)) = (action, object) {
        let granted = actor
            .held("resource", &r.id.to_string())
            .max(actor.held("account", r.account.as_str()));
        return match level_on(policy, actor, object) {
            None => Decision::Hide,
            Some(_) if role == Role::Member && granted >= Some(Level::Manage) => Decision::Allow,
            Some(_) => Decision::Deny(format!(
                "{} needs an admin, or a manage grant on the resource or its account \
                 (owning it is not enough)",
                action.as_str()
            )),
        };
    }
    let need = required(action).unwrap_or(Level::Manage);
    match level_on(policy, actor, object) {
        None => Decision::Hide,
        Some(have) if have >= need => Decision::Allow,
        Some(have) => {
            let why = match role {
                Role::Viewer | Role::Auditor => {
                    format!(
                        "role {} never acts ({} needs {need})",
                        role.as_str(),
                        action.as_str()
                    )
                }
                _ => format!(
                    "{} needs {need} permission; you have {have}",
                    action.as_str()
                ),
            };
            Decision::Deny(why)
        }
    }
}

/// The rows of the inventory `actor` may see, as a filter for list
/// queries: `None` when they see everything.
pub fn visibility(policy: &Policy, actor: &Actor) -> Option<Visibility> {
    if matches!(actor.role, Role::Admin | Role::Auditor) {
        return None;
    }
    let mut hidden: Vec<String> = policy
        .restricted
        .iter()
        .filter(|a| actor.held("account", a).is_none())
        .cloned()
        .collect();
    if hidden.is_empty() {
        return None;
    }
    hidden.sort();
    let granted_ids = actor
        .grants
        .iter()
        .filter(|g| g.object_kind == "resource")
        .filter_map(|g| g.object_key.parse().ok().map(ResourceId))
        .collect();
    Some(Visibility {
        hidden_accounts: hidden,
        granted_ids,
        owners: actor.owner_values(),
    })
}

/// The audit target for a resource.
pub fn resource_target(r: &Resource) -> AuditTarget {
    AuditTarget {
        kind: "resource".into(),
        id: r.id.to_string(),
        provider_id: r.observed.provider_id.clone(),
        account: r.account.to_string(),
        region: r.region.clone(),
        name: r.observed.name.clone(),
    }
}

/// The audit target for an object.
pub fn object_target(object: Object<'_>) -> AuditTarget {
    match object {
        Object::None => AuditTarget::default(),
        Object::Account(a) => AuditTarget {
            kind: "account".into(),
            account: a.to_string(),
            name: a.to_string(),
            ..Default::default()
        },
        Object::Resource(r) => resource_target(r),
        Object::Group(g) => AuditTarget {
            kind: "group".into(),
            id: g.to_string(),
            ..Default::default()
        },
        Object::User(u) => AuditTarget {
            kind: "user".into(),
            id: u.to_string(),
            ..Default::default()
        },
        Object::Blueprint(b) => AuditTarget {
            kind: "blueprint".into(),
            id: b.to_string(),
            ..Default::default()
        },
    }
}

impl App {
    /// The one authorization check every domain function calls first:
    /// [`decide`], with each refusal written to the audit log. A hidden
    /// object is "not found" (its existence is not revealed).
    pub async fn authorize(
        &self,
        actor: &Actor,
        action: Action,
        object: Object<'_>,
    ) -> Result<(), AppError> {
        match decide(&self.policy, actor, action, object) {
            Decision::Allow => Ok(()),
            Decision::Deny(why) => {
                self.record_denial(actor, action, object, "forbidden", &why)
                    .await;
                Err(AppError::Forbidden(why))
            }
            Decision::Hide => {
                self.record_denial(
                    actor,
                    action,
                    object,
                    "not_found",
                    "not visible to the actor",
                )
                .await;
                Err(AppError::NotFound(match object {
                    Object::Resource(r) => format!("resource {}", r.id),
                    Object::Account(a) => format!("account {a}"),
                    Object::Group(g) => format!("group {g}"),
                    Object::User(u) => format!("user {u}"),
                    Object::Blueprint(b) => format!("blueprint {b}"),
                    Object::None => "object".into(),
                }))
            }
        }
    }

    async fn record_denial(
        &self,
        actor: &Actor,
        action: Action,
        object: Object<'_>,
        code: &str,
        why: &str,
    ) {
        let mut d = actor.audit(action.as_str(), object_target(object));
        d.outcome = audit::outcome::DENIED.into();
        d.reason = format!("{code}: {why}");
        self.record(&d).await;
    }

    /// Whether `decide` allows it, without recording anything: for pages
    /// deciding which buttons to show (the action itself is authorized
    /// again when asked for).
    pub fn allows(&self, actor: &Actor, action: Action, object: Object<'_>) -> bool {
        decide(&self.policy, actor, action, object) == Decision::Allow
    }

    /// The actor's effective level on a resource (for the `permission`
    /// field of listings and the buttons of pages).
    pub fn permission(&self, actor: &Actor, r: &Resource) -> Option<Level> {
        level_on(&self.policy, actor, Object::Resource(r))
    }

    /// The visibility filter for the actor's list queries.
    pub fn visibility(&self, actor: &Actor) -> Option<Visibility> {
        visibility(&self.policy, actor)
    }

    /// Whether the actor may see this resource.
    pub fn can_see(&self, actor: &Actor, r: &Resource) -> bool {
        self.permission(actor, r).is_some()
    }

    /// Whether the account is visible to the actor as a whole.
    pub fn can_see_account(&self, actor: &Actor, account: &str) -> bool {
        AccountName::parse(account)
            .ok()
            .is_some_and(|a| level_on(&self.policy, actor, Object::Account(&a)).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skyhold_core::{ObservedResource, ResourceKind};

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: UserId(7),
            username: "ann".into(),
            role,
            via: AuthVia::Token(TokenId(1)),
            groups: vec![(GroupId(3), "dev".into())],
            grants: Vec::new(),
            ctx: RequestCtx::default(),
        }
    }

    fn policy() -> Policy {
        Policy {
            restricted: ["secret".to_owned()].into_iter().collect(),
        }
    }

    fn resource(account: &str, owner: &str) -> Resource {
        let mut o = ObservedResource::new(ResourceKind::Instance, "i-1");
        o.owner = owner.into();
        Resource {
            id: ResourceId(42),
            account: AccountName::parse(account).unwrap(),
            region: "r-1".into(),
            observed: o,
            first_seen: 0,
            last_seen: 0,
            deleted_at: None,
        }
    }

    #[test]
    fn roles_decide_global_actions() {
        let p = policy();
        for role in Role::ALL {
            let a = actor(role);
            let d = |action| decide(&p, &a, action, Object::None) == Decision::Allow;
            assert!(d(Action::ViewInventory) && d(Action::ViewAudit), "{role:?}");
            assert_eq!(d(Action::TriggerSync), role == Role::Admin, "{role:?}");
            assert_eq!(d(Action::ManageUsers), role == Role::Admin, "{role:?}");
            assert_eq!(
                d(Action::ExportAudit),
                matches!(role, Role::Admin | Role::Auditor),
                "{role:?}"
            );
        }
    }

    #[test]
    fn owners_grants_and_restriction() {
        let p = policy();
        let open = resource("dev", "");
        let mine = resource("dev", "ann");
        let ours = resource("dev", "group:dev");
        let hidden = resource("secret", "");
        let m = actor(Role::Member);
        let stop =
            |a: &Actor, r: &Resource| decide(&p, a, Action::StopResource, Object::Resource(r));
        assert!(matches!(stop(&m, &open), Decision::Deny(_)));
        assert_eq!(stop(&m, &mine), Decision::Allow);
        assert_eq!(stop(&m, &ours), Decision::Allow);
        assert_eq!(stop(&m, &hidden), Decision::Hide);
        // A grant on the resource, or on its account.
        let mut g = m.clone();
        g.grants.push(Held {
            object_kind: "resource".into(),
            object_key: "42".into(),
            level: Level::Operate,
        });
        assert_eq!(stop(&g, &hidden), Decision::Allow);
        assert!(matches!(
            decide(&p, &g, Action::TerminateResource, Object::Resource(&hidden)),
            Decision::Deny(_)
        ));
        let mut acc = m.clone();
        acc.grants.push(Held {
            object_kind: "account".into(),
            object_key: "secret".into(),
            level: Level::Manage,
        });
        assert_eq!(
            decide(
                &p,
                &acc,
                Action::TerminateResource,
                Object::Resource(&hidden)
            ),
            Decision::Allow
        );
        // Viewers never act, even on what they own; auditors see restricted accounts.
        let v = actor(Role::Viewer);
        assert!(matches!(stop(&v, &mine), Decision::Deny(_)));
        assert_eq!(stop(&v, &hidden), Decision::Hide);
        let au = actor(Role::Auditor);
        assert_eq!(
            decide(&p, &au, Action::ViewResource, Object::Resource(&hidden)),
            Decision::Allow
        );
        assert!(matches!(stop(&au, &hidden), Decision::Deny(_)));
        assert_eq!(stop(&actor(Role::Admin), &hidden), Decision::Allow);
    }

    #[test]
    fn owners_set_expiry_but_never_expiring_takes_a_grant() {
        let p = policy();
        let mine = resource("dev", "ann");
        let m = actor(Role::Member);
        let d = |a: &Actor, action| decide(&p, a, action, Object::Resource(&mine));
        assert_eq!(d(&m, Action::SetExpiry), Decision::Allow);
        assert!(matches!(d(&m, Action::NeverExpire), Decision::Deny(_)));
        let mut g = m.clone();
        g.grants.push(Held {
            object_kind: "account".into(),
            object_key: "dev".into(),
            level: Level::Manage,
        });
        assert_eq!(d(&g, Action::NeverExpire), Decision::Allow);
        let mut op = m.clone();
        op.grants.push(Held {
            object_kind: "resource".into(),
            object_key: "42".into(),
            level: Level::Operate,
        });
        assert!(matches!(d(&op, Action::NeverExpire), Decision::Deny(_)));
        assert_eq!(d(&actor(Role::Admin), Action::NeverExpire), Decision::Allow);
        // A viewer with a manage grant still never acts.
        let mut v = actor(Role::Viewer);
        v.grants = g.grants.clone();
        assert!(matches!(d(&v, Action::NeverExpire), Decision::Deny(_)));
        assert!(matches!(d(&v, Action::SetExpiry), Decision::Deny(_)));
        assert_eq!(
            decide(
                &p,
                &m,
                Action::NeverExpire,
                Object::Resource(&resource("secret", ""))
            ),
            Decision::Hide
        );
    }

    #[test]
    fn blueprints_show_to_grant_holders_and_launch_with_operate() {
        let p = policy();
        let b = Object::Blueprint(BlueprintId(7));
        let m = actor(Role::Member);
        let d = |a: &Actor, action| decide(&p, a, action, b);
        assert_eq!(d(&m, Action::ViewBlueprint), Decision::Hide);
        let mut viewer_grant = m.clone();
        viewer_grant.grants.push(Held {
            object_kind: "blueprint".into(),
            object_key: "7".into(),
            level: Level::View,
        });
        assert_eq!(d(&viewer_grant, Action::ViewBlueprint), Decision::Allow);
        assert!(matches!(
            d(&viewer_grant, Action::LaunchFrom),
            Decision::Deny(_)
        ));
        let mut launcher = m.clone();
        launcher.grants.push(Held {
            object_kind: "blueprint".into(),
            object_key: "7".into(),
            level: Level::Operate,
        });
        assert_eq!(d(&launcher, Action::LaunchFrom), Decision::Allow);
        // Managing blueprints and quotas is for admins; auditors read.
        assert!(matches!(
            d(&launcher, Action::ManageBlueprints),
            Decision::Deny(_)
        ));
        assert_eq!(d(&m, Action::ManageBlueprints), Decision::Hide);
        let au = actor(Role::Auditor);
        assert_eq!(d(&au, Action::ViewBlueprint), Decision::Allow);
        assert!(matches!(d(&au, Action::LaunchFrom), Decision::Deny(_)));
        for role in Role::ALL {
            let a = actor(role);
            let g = |action| decide(&p, &a, action, Object::None) == Decision::Allow;
            assert!(g(Action::ViewBlueprints), "{role:?}");
            assert_eq!(g(Action::ManageQuotas), role == Role::Admin, "{role:?}");
            assert_eq!(
                g(Action::ViewQuotas),
                matches!(role, Role::Admin | Role::Auditor),
                "{role:?}"
            );
            // Everyone reads spend (their own); admins and auditors all.
            assert!(g(Action::ViewSpend), "{role:?}");
            assert_eq!(
                g(Action::ViewAllSpend),
                matches!(role, Role::Admin | Role::Auditor),
                "{role:?}"
            );
        }
    }

    #[test]
    fn visibility_matches_the_decision() {
        let p = policy();
        let m = actor(Role::Member);
        let v = visibility(&p, &m).expect("member has a restricted account hidden");
        assert_eq!(v.hidden_accounts, vec!["secret".to_owned()]);
        assert_eq!(v.owners, vec!["ann".to_owned(), "group:dev".to_owned()]);
        assert!(visibility(&p, &actor(Role::Admin)).is_none());
        assert!(visibility(&p, &actor(Role::Auditor)).is_none());
        let mut acc = m.clone();
        acc.grants.push(Held {
            object_kind: "account".into(),
            object_key: "secret".into(),
            level: Level::View,
        });
        assert!(visibility(&p, &acc).is_none());
        // An owned resource in a hidden account is visible, alone.
        assert_eq!(
            level_on(&p, &m, Object::Resource(&resource("secret", "ann"))),
            Some(Level::Manage)
        );
    }
}
