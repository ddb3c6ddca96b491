//! Groups (admins create and delete them; whoever manages a group manages
//! its members) and grants (whoever manages an object grants others on it).
//! Subjects and objects arrive by name (`user:ann`, `group:dev`,
//! `account:prod`, `resource:42`) and are stored by id.

use super::access::{Action, Actor, Object};
use super::identity::user_target;
use super::App;
use crate::error::AppError;
use skyhold_core::audit::AuditTarget;
use skyhold_core::{now_millis, GrantId, GroupId, Level, ObjectRef, Resource, Subject, UserId};
use skyhold_store::{Grant, GrantFilter, Group, StoreError};

fn group_target(id: Option<GroupId>, name: &str) -> AuditTarget {
    AuditTarget {
        kind: "group".into(),
        id: id.map(|i| i.to_string()).unwrap_or_default(),
        name: name.to_owned(),
        ..Default::default()
    }
}

/// An object resolved to what the check and the store need.
enum Resolved {
    Account(skyhold_core::AccountName),
    Resource(Box<Resource>),
    Group(Group),
    User(skyhold_store::User),
    Blueprint(Box<skyhold_store::BlueprintRow>),
}

impl Resolved {
    fn object(&self) -> Object<'_> {
        match self {
            Resolved::Account(a) => Object::Account(a),
            Resolved::Resource(r) => Object::Resource(r),
            Resolved::Group(g) => Object::Group(g.id),
            Resolved::User(u) => Object::User(u.id),
            Resolved::Blueprint(b) => Object::Blueprint(b.id),
        }
    }

    /// (stored kind, stored key)
    fn stored(&self) -> (&'static str, String) {
        match self {
            Resolved::Account(a) => ("account", a.to_string()),
            Resolved::Resource(r) => ("resource", r.id.to_string()),
            Resolved::Group(g) => ("group", g.id.to_string()),
            Resolved::User(u) => ("user", u.id.to_string()),
            Resolved::Blueprint(b) => ("blueprint", b.id.to_string()),
        }
    }

    fn target(&self) -> AuditTarget {
        match self {
            Resolved::Account(a) => super::access::object_target(Object::Account(a)),
            Resolved::Resource(r) => super::access::resource_target(r),
            Resolved::Group(g) => group_target(Some(g.id), &g.name),
            Resolved::User(u) => user_target(Some(u.id), &u.username),
            Resolved::Blueprint(b) => super::blueprints::blueprint_target(b),
        }
    }
}

impl App {
    pub async fn groups(&self, actor: &Actor) -> Result<Vec<Group>, AppError> {
        self.authorize(actor, Action::ViewGroups, Object::None)
            .await?;
        Ok(self.store.list_groups().await?)
    }

    /// The group named `name_or_id`, else the group with that id: a name
    /// always wins, so a group named "12" is never mistaken for group 12.
    pub async fn find_group(&self, name_or_id: &str) -> Result<Group, AppError> {
        let mut groups = self.store.list_groups().await?;
        let by_id = name_or_id.parse::<i64>().ok();
        let at = groups
            .iter()
            .position(|g| g.name == name_or_id)
            .or_else(|| by_id.and_then(|n| groups.iter().position(|g| g.id.0 == n)));
        match at {
            Some(i) => Ok(groups.swap_remove(i)),
            None => Err(AppError::NotFound(format!(
                "group {:?}",
                skyhold_core::clip(name_or_id, 80)
            ))),
        }
    }

    /// The group with exactly this id.
    pub async fn group_by_id(&self, id: GroupId) -> Result<Group, AppError> {
        self.store
            .list_groups()
            .await?
            .into_iter()
            .find(|g| g.id == id)
            .ok_or_else(|| AppError::NotFound(format!("group {id}")))
    }

    /// The group with exactly this name (never an id).
    pub async fn group_by_name(&self, name: &str) -> Result<Group, AppError> {
        self.store
            .list_groups()
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(|| AppError::NotFound(format!("group {:?}", skyhold_core::clip(name, 80))))
    }

    pub async fn create_group(&self, actor: &Actor, name: &str) -> Result<Group, AppError> {
        self.authorize(actor, Action::ManageGroups, Object::None)
            .await?;
        let name = name.trim();
        skyhold_core::access::validate_principal_name("group", name)
            .map_err(|m| AppError::bad_parameter("name", m))?;
        let d = actor.audit("group.create", group_target(None, name));
        self.store.create_group(name, now_millis(), &d).await?;
        self.group_by_name(name).await
    }

    pub async fn delete_group(&self, actor: &Actor, id: GroupId) -> Result<(), AppError> {
        self.authorize(actor, Action::ManageGroups, Object::Group(id))
            .await?;
        let g = self.group_by_id(id).await?;
        let mut d = actor.audit("group.delete", group_target(Some(id), &g.name));
        d.old = Some(serde_json::json!({"members": g.members}));
        self.store.delete_group(id, &d).await.map_err(|e| match e {
            StoreError::NotFound => AppError::NotFound(format!("group {id}")),
            o => o.into(),
        })
    }

    /// Adds a member (admins, or whoever manages the group).
    pub async fn add_member(
        &self,
        actor: &Actor,
        group: GroupId,
        username: &str,
    ) -> Result<Group, AppError> {
        self.authorize(actor, Action::ManageMembers, Object::Group(group))
            .await?;
        let g = self.group_by_id(group).await?;
        let u = self.find_user(username).await?;
        let mut d = actor.audit("group.member.add", group_target(Some(g.id), &g.name));
        d.new = Some(serde_json::json!({"member": u.username}));
        self.store.add_member(g.id, u.id, &d).await?;
        self.group_by_id(group).await
    }

    /// Sets where notifications about the group's resources go (manage
    /// on the group); '' removes it (the admins get them then).
    pub async fn set_group_email(
        &self,
        actor: &Actor,
        group: GroupId,
        email: &str,
    ) -> Result<Group, AppError> {
        self.authorize(actor, Action::ManageMembers, Object::Group(group))
            .await?;
        let email = email.trim();
        if !email.is_empty() && email.parse::<lettre::Address>().is_err() {
            return Err(AppError::bad_parameter(
                "email",
                format!(
                    "{:?} is not an email address",
                    skyhold_core::clip(email, 80)
                ),
            ));
        }
        let g = self.group_by_id(group).await?;
        let mut d = actor.audit("group.email", group_target(Some(g.id), &g.name));
        d.old = Some(serde_json::json!({"email": g.email}));
        d.new = Some(serde_json::json!({"email": email}));
        self.store.set_group_email(g.id, email, &d).await?;
        self.group_by_id(group).await
    }

    pub async fn remove_member(
        &self,
        actor: &Actor,
        group: GroupId,
        username: &str,
    ) -> Result<Group, AppError> {
        self.authorize(actor, Action::ManageMembers, Object::Group(group))
            .await?;
        let g = self.group_by_id(group).await?;
        let u = self.find_user(username).await?;
        let mut d = actor.audit("group.member.remove", group_target(Some(g.id), &g.name));
        d.old = Some(serde_json::json!({"member": u.username}));
        self.store
            .remove_member(g.id, u.id, &d)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => {
                    AppError::NotFound(format!("member {} of group {}", u.username, g.name))
                }
                o => o.into(),
            })?;
        self.group_by_id(group).await
    }

    async fn resolve_object(&self, o: &ObjectRef) -> Result<Resolved, AppError> {
        Ok(match o {
            ObjectRef::Account(a) => {
                if self.config.account(a).is_none() {
                    return Err(AppError::NotFound(format!("account {a}")));
                }
                Resolved::Account(a.clone())
            }
            ObjectRef::Resource(id) => Resolved::Resource(Box::new(
                self.store.get_resource(*id).await.map_err(|e| match e {
                    StoreError::NotFound => AppError::NotFound(format!("resource {id}")),
                    o => o.into(),
                })?,
            )),
            ObjectRef::Group(n) => Resolved::Group(self.find_group(n).await?),
            ObjectRef::User(n) => Resolved::User(self.find_user(n).await?),
            ObjectRef::Blueprint(n) => Resolved::Blueprint(Box::new(self.find_blueprint(n).await?)),
        })
    }

    async fn resolve_subject(&self, s: &Subject) -> Result<(&'static str, i64, String), AppError> {
        Ok(match s {
            Subject::User(n) => {
                let u = self.find_user(n).await?;
                ("user", u.id.0, format!("user:{}", u.username))
            }
            Subject::Group(n) => {
                let g = self.find_group(n).await?;
                ("group", g.id.0, format!("group:{}", g.name))
            }
        })
    }

    /// Gives `subject` `level` on `object` (or changes the level it has).
    /// Needs `manage` on the object.
    pub async fn put_grant(
        &self,
        actor: &Actor,
        subject: &str,
        object: &str,
        level: &str,
    ) -> Result<Grant, AppError> {
        let subject =
            Subject::parse(subject.trim()).map_err(|m| AppError::bad_parameter("subject", m))?;
        let object =
            ObjectRef::parse(object.trim()).map_err(|m| AppError::bad_parameter("object", m))?;
        let level = Level::parse(level.trim()).map_err(|m| AppError::bad_parameter("level", m))?;
        let resolved = self.resolve_object(&object).await?;
        self.authorize(actor, Action::ChangeGrants, resolved.object())
            .await?;
        let (skind, sid, sname) = self.resolve_subject(&subject).await?;
        let (okind, okey) = resolved.stored();
        let mut d = actor.audit("grant.put", resolved.target());
        d.new = Some(serde_json::json!({"subject": sname, "level": level.as_str()}));
        let (id, _) = self
            .store
            .put_grant(
                (skind, sid),
                (okind, &okey),
                level.as_str(),
                Some(actor.user_id).filter(|_| !actor.is_system()),
                now_millis(),
                &d,
            )
            .await?;
        Ok(self.store.grant(id).await?)
    }

    /// Removes a grant. Needs `manage` on its object.
    pub async fn delete_grant(&self, actor: &Actor, id: GrantId) -> Result<(), AppError> {
        let g = self.store.grant(id).await.map_err(|e| match e {
            StoreError::NotFound => AppError::NotFound(format!("grant {id}")),
            o => o.into(),
        })?;
        let object = ObjectRef::from_stored(&g.object_kind, &g.object_name)
            .or_else(|_| ObjectRef::from_stored(&g.object_kind, &g.object_key))
            .map_err(|m| AppError::Internal(anyhow::anyhow!("stored grant {id}: {m}")))?;
        let resolved = self.resolve_object(&object).await?;
        self.authorize(actor, Action::ChangeGrants, resolved.object())
            .await?;
        let mut d = actor.audit("grant.delete", resolved.target());
        d.old = Some(serde_json::json!({
            "subject": format!("{}:{}", g.subject_kind, g.subject_name),
            "level": g.level,
        }));
        self.store.delete_grant(id, &d).await.map_err(|e| match e {
            StoreError::NotFound => AppError::NotFound(format!("grant {id}")),
            o => o.into(),
        })
    }

    /// Grants on an object (needs `manage` on it; admins and auditors see
    /// all) and/or held by a subject. Without an object: admins and
    /// auditors see every grant; others the grants they hold.
    pub async fn grants(
        &self,
        actor: &Actor,
        object: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Vec<Grant>, AppError> {
        let mut f = GrantFilter::default();
        if let Some(o) = object.map(str::trim).filter(|o| !o.is_empty()) {
            let o = ObjectRef::parse(o).map_err(|m| AppError::bad_parameter("object", m))?;
            let resolved = self.resolve_object(&o).await?;
            self.authorize(actor, Action::ViewGrants, resolved.object())
                .await?;
            let (k, key) = resolved.stored();
            f.object = Some((k.to_owned(), key));
        } else {
            self.authorize(actor, Action::ViewGroups, Object::None)
                .await?;
        }
        if let Some(s) = subject.map(str::trim).filter(|s| !s.is_empty()) {
            let s = Subject::parse(s).map_err(|m| AppError::bad_parameter("subject", m))?;
            let (k, id, _) = self.resolve_subject(&s).await?;
            f.subject = Some((k.to_owned(), id));
        }
        let all = self.store.list_grants(&f).await?;
        let sees_all = matches!(
            actor.role,
            skyhold_core::Role::Admin | skyhold_core::Role::Auditor
        );
        if sees_all || f.object.is_some() {
            return Ok(all);
        }
        // Others see the grants they hold themselves.
        let mine = |g: &Grant| {
            (g.subject_kind == "user" && g.subject_id == actor.user_id.0)
                || (g.subject_kind == "group"
                    && actor.groups.iter().any(|(id, _)| id.0 == g.subject_id))
        };
        Ok(all.into_iter().filter(mine).collect())
    }

    /// Whether the actor may act on behalf of `user` (manage on the user).
    pub async fn may_act_for(&self, actor: &Actor, user: UserId) -> Result<(), AppError> {
        self.authorize(actor, Action::ActFor, Object::User(user))
            .await
    }
}
