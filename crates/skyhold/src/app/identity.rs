//! Identity: users (created, changed, disabled), logins, browser sessions,
//! API tokens, and each user's own profile (password, email, SSH keys).
//! Every change and every login attempt is audited.

use super::access::{Action, Actor, AuthVia, Held, Object, RequestCtx};
use super::App;
use crate::auth;
use crate::error::AppError;
use serde::Serialize;
use skyhold_core::audit::{self, AuditTarget};
use skyhold_core::{now_millis, GroupId, Level, Millis, Role, SshKeyId, TokenId, UserId};
use skyhold_store::{ApiToken, NewUser, SshKey, StoreError, User, UserPatch};

/// A user as the API and pages show it (never the password hash).
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub id: UserId,
    pub username: String,
    pub role: Role,
    pub email: String,
    pub disabled: bool,
    pub disabled_at: Option<Millis>,
    /// `local`, `proxy` or `oidc`.
    pub source: String,
    pub created_at: Millis,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id,
            username: u.username.clone(),
            role: u.role,
            email: u.email.clone(),
            disabled: u.disabled_at.is_some(),
            disabled_at: u.disabled_at,
            source: u.source.clone(),
            created_at: u.created_at,
        }
    }
}

/// The signed-in user's own view of themselves.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    #[serde(flatten)]
    pub user: UserView,
    pub groups: Vec<String>,
    /// How this request was authenticated.
    pub auth: String,
    pub ssh_keys: Vec<SshKey>,
}

/// A change an admin asks for.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub password: Option<String>,
    pub email: Option<String>,
}

pub(crate) fn user_target(id: Option<UserId>, name: &str) -> AuditTarget {
    AuditTarget {
        kind: "user".into(),
        id: id.map(|i| i.to_string()).unwrap_or_default(),
        name: name.to_owned(),
        ..Default::default()
    }
}

fn validate_password(p: &str) -> Result<(), AppError> {
    let n = p.chars().count();
    if !(8..=1024).contains(&n) {
        return Err(AppError::bad_parameter(
            "password",
            "must be at least 8 characters (and at most 1024)",
        ));
    }
    Ok(())
}

pub(crate) fn validate_email(e: &str) -> Result<String, AppError> {
    let e = e.trim();
    if e.is_empty() {
        return Ok(String::new());
    }
    let ok = e.len() <= 254
        && e.split('@').count() == 2
        && !e.starts_with('@')
        && !e.ends_with('@')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e.to_owned())
    } else {
        Err(AppError::bad_parameter(
            "email",
            "expected an address like ann@example.com",
        ))
    }
}

pub(crate) fn validate_username(u: &str) -> Result<(), AppError> {
    skyhold_core::access::validate_principal_name("user", u)
        .map_err(|m| AppError::bad_parameter("username", m))
}

/// The modulus size of an `ssh-rsa` key blob (string type, mpint e,
/// mpint n), in bits.
fn rsa_bits(blob: &[u8]) -> Option<usize> {
    let mut rest = blob;
    let mut next = || -> Option<&[u8]> {
        let n = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let v = rest.get(4..4 + n)?;
        rest = &rest[4 + n..];
        Some(v)
    };
    let _kind = next()?;
    let _e = next()?;
    let n = next()?;
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => &n[i..],
        None => return Some(0),
    };
    Some(n.len() * 8 - n[0].leading_zeros() as usize)
}

/// Parses an OpenSSH public key line (`TYPE BASE64 [comment]`) and returns
/// (normalized key, SHA256 fingerprint as `ssh-keygen -l` prints it).
pub fn parse_ssh_key(line: &str) -> Result<(String, String), AppError> {
    use base64::Engine;
    let bad = |m: &str| AppError::InvalidKey(m.to_owned());
    let line = line.trim();
    if line.len() > 16_384 || line.chars().any(|c| c.is_control()) {
        return Err(bad("one line of at most 16 KB"));
    }
    let mut parts = line.split_whitespace();
    let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
        return Err(bad(
            "expected 'TYPE BASE64 [comment]', as in ~/.ssh/id_ed25519.pub",
        ));
    };
    const TYPES: [&str; 7] = [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    ];
    if kind == "ssh-dss" {
        return Err(bad(
            "DSA keys are refused (weak, and disabled by OpenSSH since 7.0); use ssh-ed25519",
        ));
    }
    if !TYPES.contains(&kind) {
        return Err(bad(&format!(
            "unknown key type; use one of {}",
            TYPES.join(", ")
        )));
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad("the key is not valid base64"))?;
    // The blob starts with the key type as an SSH string.
    let named = blob
        .get(..4)
        .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        .and_then(|n| blob.get(4..4 + n));
    if named != Some(kind.as_bytes()) {
        return Err(bad("the key data does not match its type"));
    }
    if kind == "ssh-rsa" {
        let bits = rsa_bits(&blob).ok_or_else(|| bad("the RSA key data is damaged"))?;
        if bits < 2048 {
            return Err(bad(&format!(
                "this RSA key has {bits} bits; use at least 2048 (or ssh-ed25519)"
            )));
        }
    }
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&blob);
    let fp = format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    );
    let comment: Vec<&str> = parts.collect();
    let key = if comment.is_empty() {
        format!("{kind} {b64}")
    } else {
        format!("{kind} {b64} {}", comment.join(" "))
    };
    Ok((key, fp))
}

impl App {
    /// Loads what the authorization check needs about a user: their groups
    /// and the grants they hold directly or through them.
    pub(crate) async fn actor_for(
        &self,
        u: User,
        via: AuthVia,
        ctx: RequestCtx,
    ) -> Result<Actor, AppError> {
        let groups = self.store.user_groups(u.id).await?;
        let ids: Vec<GroupId> = groups.iter().map(|(g, _)| *g).collect();
        let grants = self
            .store
            .grants_held(u.id, &ids)
            .await?
            .into_iter()
            .filter_map(|(object_kind, object_key, level)| {
                Some(Held {
                    level: Level::parse(&level).ok()?,
                    object_kind,
                    object_key,
                })
            })
            .collect();
        Ok(Actor {
            user_id: u.id,
            username: u.username,
            role: u.role,
            via,
            groups,
            grants,
            ctx,
        })
    }

    /// Creates the first admin if there are no users. Returns the generated
    /// password when none was given, so the caller can print it once.
    pub async fn bootstrap_admin(
        &self,
        password: Option<&str>,
    ) -> Result<Option<String>, AppError> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let (pw, generated) = match password {
            Some(p) if !p.is_empty() => (p.to_owned(), false),
            _ => (auth::random_token("", 12), true),
        };
        let system = Actor::system("bootstrap");
        match self
            .insert_user(&system, "admin", &pw, Role::Admin, "", "local")
            .await
        {
            Ok(_) => Ok(generated.then_some(pw)),
            // Another replica starting at the same moment created it first.
            Err(AppError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn insert_user(
        &self,
        actor: &Actor,
        username: &str,
        password: &str,
        role: Role,
        email: &str,
        source: &str,
    ) -> Result<UserView, AppError> {
        validate_username(username)?;
        validate_password(password)?;
        let email = validate_email(email)?;
        let hash = auth::hash_password(password)?;
        let mut d = actor.audit("user.create", user_target(None, username));
        d.new = Some(serde_json::json!({"role": role.as_str(), "email": email, "source": source}));
        let (id, _) = self
            .store
            .create_user(
                &NewUser {
                    username,
                    password_hash: &hash,
                    role,
                    email: &email,
                    source,
                },
                now_millis(),
                &d,
            )
            .await?;
        let u = self
            .store
            .user_by_id(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("user {id}")))?;
        Ok(UserView::from(&u))
    }

    /// Creates a local user (admins).
    pub async fn create_user(
        &self,
        actor: &Actor,
        username: &str,
        password: &str,
        role: Role,
        email: &str,
    ) -> Result<UserView, AppError> {
        self.authorize(actor, Action::ManageUsers, Object::None)
            .await?;
        self.insert_user(actor, username, password, role, email, "local")
            .await
    }

    /// Creates a user first seen through a trusted proxy header or an OIDC
    /// login (`auto_create`), with an unusable password.
    pub(crate) async fn auto_create_user(
        &self,
        username: &str,
        role: Role,
        email: &str,
        source: &str,
        ctx: &RequestCtx,
    ) -> Result<User, AppError> {
        let mut system = Actor::system(&format!("{source}-auto-create"));
        system.ctx = ctx.clone();
        let pw = auth::random_token("", 32);
        match self
            .insert_user(&system, username, &pw, role, email, source)
            .await
        {
            Ok(_) | Err(AppError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        self.store
            .user_by_name(username)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("user {username}")))
    }

    /// Signs in the user a trusted reverse proxy names in its header (the
    /// edge has checked the peer address). Reuses the browser's session when
    /// it belongs to that user; otherwise creates the user if `auto_create`,
    /// syncs their groups if configured, starts a `proxy` session (so forms
    /// and API writes carry a CSRF token) and returns its cookie.
    pub async fn proxy_sign_in(
        &self,
        cfg: &crate::config::ProxyAuth,
        username: &str,
        groups: Option<Vec<String>>,
        cookie: Option<&str>,
        ctx: RequestCtx,
    ) -> Result<(Actor, Option<String>), AppError> {
        let name = username.trim();
        if let Some(c) = cookie {
            if let Some(a) = self.session_actor(c, ctx.clone()).await? {
                if a.username == name {
                    return Ok((a, None));
                }
            }
        }
        let mut d = AuditDraft {
            time: now_millis(),
            actor: skyhold_core::clip(name, 100),
            auth: audit::auth::PROXY.into(),
            client_ip: ctx.client_ip.clone(),
            user_agent: ctx.user_agent.clone(),
            request_id: ctx.request_id.clone(),
            action: "login".into(),
            target: user_target(None, &skyhold_core::clip(name, 100)),
            outcome: audit::outcome::DENIED.into(),
            ..Default::default()
        };
        if let Err(e) = validate_username(name) {
            d.reason = format!("invalid_parameter: {e}");
            self.record(&d).await;
            return Err(AppError::Forbidden(format!(
                "the proxy named an invalid user: {e}"
            )));
        }
        let user = match self.store.user_by_name(name).await? {
            Some(u) => u,
            None if cfg.auto_create => {
                self.auto_create_user(name, cfg.default_role, "", "proxy", &ctx)
                    .await?
            }
            None => {
                d.reason = "unknown_user: not known to skyhold and auto_create is off".into();
                self.record(&d).await;
                return Err(AppError::Forbidden(format!(
                    "user {name} is not known to skyhold; an admin must create it"
                )));
            }
        };
        d.actor_id = Some(user.id.0);
        d.target.id = user.id.to_string();
        if user.disabled_at.is_some() {
            d.reason = "disabled: the user is disabled".into();
            self.record(&d).await;
            return Err(AppError::Forbidden(format!("user {name} is disabled")));
        }
        if cfg.sync_groups {
            self.sync_groups(&user, groups.unwrap_or_default(), &ctx)
                .await?;
        }
        let first = self
            .actor_for(
                user,
                AuthVia::Session {
                    csrf: String::new(),
                    method: audit::auth::PROXY.into(),
                },
                ctx.clone(),
            )
            .await?;
        let token = self.start_session(&first, audit::auth::PROXY).await?;
        let actor = self
            .session_actor(&token, ctx)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        d.outcome = audit::outcome::OK.into();
        self.record(&d).await;
        Ok((actor, Some(token)))
    }

    /// Makes `user`'s memberships match `wanted` (groups that exist; others
    /// are ignored), audited as `system:proxy`.
    async fn sync_groups(
        &self,
        user: &User,
        wanted: Vec<String>,
        ctx: &RequestCtx,
    ) -> Result<(), AppError> {
        let mut system = Actor::system("proxy");
        system.ctx = ctx.clone();
        let have = self.store.user_groups(user.id).await?;
        let all = self.store.list_groups().await?;
        for g in all.iter().filter(|g| wanted.contains(&g.name)) {
            if !have.iter().any(|(id, _)| *id == g.id) {
                self.add_member(&system, g.id, &user.username).await?;
            }
        }
        for (id, name) in &have {
            if !wanted.contains(name) {
                self.remove_member(&system, *id, &user.username).await?;
            }
        }
        Ok(())
    }

    pub async fn users(&self, actor: &Actor) -> Result<Vec<UserView>, AppError> {
        self.authorize(actor, Action::ViewUsers, Object::None)
            .await?;
        Ok(self
            .store
            .list_users()
            .await?
            .iter()
            .map(UserView::from)
            .collect())
    }

    /// A user by id or by name (the CLI and API accept either).
    pub async fn find_user(&self, name_or_id: &str) -> Result<User, AppError> {
        let by_name = self.store.user_by_name(name_or_id).await?;
        let found = match by_name {
            Some(u) => Some(u),
            None => match name_or_id.parse::<i64>() {
                Ok(n) => self.store.user_by_id(UserId(n)).await?,
                Err(_) => None,
            },
        };
        found.ok_or_else(|| {
            AppError::NotFound(format!("user {:?}", skyhold_core::clip(name_or_id, 80)))
        })
    }

    /// Changes a user's role, email, password or disabled state (admins).
    /// Disabling ends their sessions and tokens at once.
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: UserId,
        change: &UserChange,
    ) -> Result<UserView, AppError> {
        self.authorize(actor, Action::ManageUsers, Object::User(id))
            .await?;
        let target = self
            .store
            .user_by_id(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("user {id}")))?;
        if id == actor.user_id
            && (change.disabled == Some(true) || change.role.is_some_and(|r| r != Role::Admin))
        {
            return Err(AppError::Conflict(
                "you cannot disable yourself or give up your own admin role".into(),
            ));
        }
        let mut patch = UserPatch {
            role: change.role,
            disabled: change.disabled,
            ..Default::default()
        };
        if let Some(e) = &change.email {
            patch.email = Some(validate_email(e)?);
        }
        if let Some(p) = &change.password {
            validate_password(p)?;
            patch.password_hash = Some(auth::hash_password(p)?);
        }
        let action = match change.disabled {
            Some(true) => "user.disable",
            Some(false) => "user.enable",
            None => "user.update",
        };
        let mut d = actor.audit(action, user_target(Some(id), &target.username));
        let mut old = serde_json::Map::new();
        let mut new = serde_json::Map::new();
        if let Some(r) = change.role {
            old.insert("role".into(), target.role.as_str().into());
            new.insert("role".into(), r.as_str().into());
        }
        if let Some(e) = &patch.email {
            old.insert("email".into(), target.email.clone().into());
            new.insert("email".into(), e.clone().into());
        }
        if let Some(dis) = change.disabled {
            old.insert("disabled".into(), target.disabled_at.is_some().into());
            new.insert("disabled".into(), dis.into());
        }
        if change.password.is_some() {
            // Never the password: only that it changed.
            new.insert("password".into(), "reset".into());
        }
        d.old = Some(old.into());
        d.new = Some(new.into());
        self.store
            .update_user(id, &patch, now_millis(), &d)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => AppError::NotFound(format!("user {id}")),
                o => o.into(),
            })?;
        let u = self
            .store
            .user_by_id(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("user {id}")))?;
        Ok(UserView::from(&u))
    }

    /// The signed-in user's profile.
    pub async fn me(&self, actor: &Actor) -> Result<Profile, AppError> {
        self.authorize(actor, Action::ManageOwnProfile, Object::None)
            .await?;
        let u = self
            .store
            .user_by_id(actor.user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        Ok(Profile {
            user: UserView::from(&u),
            groups: actor.groups.iter().map(|(_, n)| n.clone()).collect(),
            auth: actor.via.audit_name().to_owned(),
            ssh_keys: self.store.list_ssh_keys(actor.user_id).await?,
        })
    }

    /// Changes the actor's own password; the current one must be given.
    /// Every session of the user ends (the caller logs in again); API tokens stay.
    pub async fn change_own_password(
        &self,
        actor: &Actor,
        current: &str,
        new: &str,
    ) -> Result<(), AppError> {
        self.authorize(actor, Action::ManageOwnProfile, Object::None)
            .await?;
        validate_password(new)?;
        let u = self
            .store
            .user_by_id(actor.user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let (cur, hash) = (current.to_owned(), u.password_hash.clone());
        let ok = tokio::task::spawn_blocking(move || auth::verify_password(&cur, &hash))
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        let mut d = actor.audit("profile.password", user_target(Some(u.id), &u.username));
        if !ok {
            d.outcome = audit::outcome::FAILED.into();
            d.reason = "invalid_credentials: the current password is wrong".into();
            self.record(&d).await;
            return Err(AppError::bad_parameter(
                "current_password",
                "is not your current password",
            ));
        }
        d.new = Some(serde_json::json!({"password": "changed"}));
        let patch = UserPatch {
            password_hash: Some(auth::hash_password(new)?),
            ..Default::default()
        };
        self.store
            .update_user(u.id, &patch, now_millis(), &d)
            .await?;
        Ok(())
    }

    pub async fn set_own_email(&self, actor: &Actor, email: &str) -> Result<(), AppError> {
        self.authorize(actor, Action::ManageOwnProfile, Object::None)
            .await?;
        let email = validate_email(email)?;
        let u = self
            .store
            .user_by_id(actor.user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let mut d = actor.audit("profile.email", user_target(Some(u.id), &u.username));
        d.old = Some(serde_json::json!({"email": u.email}));
        d.new = Some(serde_json::json!({"email": email}));
        let patch = UserPatch {
            email: Some(email),
            ..Default::default()
        };
        self.store
            .update_user(u.id, &patch, now_millis(), &d)
            .await?;
        Ok(())
    }

    pub async fn add_ssh_key(
        &self,
        actor: &Actor,
        name: &str,
        public_key: &str,
    ) -> Result<SshKeyId, AppError> {
        self.authorize(actor, Action::ManageOwnProfile, Object::None)
            .await?;
        let (key, fp) = parse_ssh_key(public_key)?;
        let name = name.trim();
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AppError::bad_parameter("name", "at most 100 characters"));
        }
        let name = if name.is_empty() {
            key.split_whitespace().nth(2).unwrap_or("key").to_owned()
        } else {
            name.to_owned()
        };
        let mut d = actor.audit(
            "profile.ssh_key.add",
            user_target(Some(actor.user_id), &actor.username),
        );
        d.new = Some(serde_json::json!({"name": name, "fingerprint": fp}));
        Ok(self
            .store
            .add_ssh_key(actor.user_id, &name, &key, &fp, now_millis(), &d)
            .await?)
    }

    pub async fn delete_ssh_key(&self, actor: &Actor, id: SshKeyId) -> Result<(), AppError> {
        self.authorize(actor, Action::ManageOwnProfile, Object::None)
            .await?;
        let mut d = actor.audit(
            "profile.ssh_key.delete",
            user_target(Some(actor.user_id), &actor.username),
        );
        d.old = Some(serde_json::json!({"key_id": id.0}));
        self.store
            .delete_ssh_key(actor.user_id, id, &d)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => AppError::NotFound(format!("ssh key {id}")),
                o => o.into(),
            })
    }

    /// Checks a user name and password, rate-limited per (user, client
    /// address) and per address, and audits the attempt either way.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        ctx: &RequestCtx,
    ) -> Result<Actor, AppError> {
        let client = ctx.client_ip.as_str();
        let keys = auth::LoginLimiter::keys(username, client);
        let mut d = AuditDraft {
            time: now_millis(),
            actor: skyhold_core::clip(username, 100),
            auth: audit::auth::PASSWORD.into(),
            client_ip: ctx.client_ip.clone(),
            user_agent: ctx.user_agent.clone(),
            request_id: ctx.request_id.clone(),
            action: "login".into(),
            target: user_target(None, &skyhold_core::clip(username, 100)),
            outcome: audit::outcome::OK.into(),
            ..Default::default()
        };
        if let Err(wait) = self.limiter.check(&keys) {
            d.outcome = audit::outcome::DENIED.into();
            d.reason = format!("rate_limited: retry in {} s", wait.as_secs().max(1));
            self.record(&d).await;
            tracing::info!(user = ?skyhold_core::clip(username, 100), client, "login rate-limited");
            return Err(AppError::RateLimited(wait));
        }
        // A name with control characters names nobody (and PostgreSQL
        // would refuse a NUL in it): a failed login like any unknown name.
        let user = if self.config.auth.local && !username.chars().any(char::is_control) {
            self.store.user_by_name(username).await?
        } else {
            None
        };
        let hash = user
            .as_ref()
            .map_or(auth::dummy_hash(), |u| u.password_hash.as_str())
            .to_owned();
        let pw = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || auth::verify_password(&pw, &hash))
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        match user {
            Some(u) if ok && u.disabled_at.is_none() => {
                self.limiter.succeeded(&keys);
                d.actor_id = Some(u.id.0);
                d.target.id = u.id.to_string();
                self.record(&d).await;
                self.actor_for(
                    u,
                    AuthVia::Session {
                        csrf: String::new(),
                        method: audit::auth::PASSWORD.into(),
                    },
                    ctx.clone(),
                )
                .await
            }
            other => {
                self.limiter.failed(&keys);
                d.outcome = audit::outcome::FAILED.into();
                d.reason = match &other {
                    Some(u) if ok && u.disabled_at.is_some() => "disabled: the user is disabled",
                    _ => "invalid_credentials: wrong user name or password",
                }
                .into();
                if let Some(u) = &other {
                    d.actor_id = Some(u.id.0);
                    d.target.id = u.id.to_string();
                }
                self.record(&d).await;
                // Debug formatting escapes newlines and control characters,
                // so a crafted user name cannot forge log lines.
                tracing::info!(user = ?skyhold_core::clip(username, 100), client, "failed login");
                Err(AppError::InvalidCredentials)
            }
        }
    }

    /// Starts a browser session; returns the cookie value (only its hash is
    /// stored). `method`: `password`, `proxy` or `oidc`.
    pub async fn start_session(&self, actor: &Actor, method: &str) -> Result<String, AppError> {
        let token = auth::random_token("", 32);
        let csrf = auth::random_token("", 16);
        let now = now_millis();
        let ttl = self.config.session_ttl.as_millis() as Millis;
        self.store
            .create_session(
                &auth::sha256_hex(&token),
                actor.user_id,
                &csrf,
                method,
                now,
                now + ttl,
            )
            .await?;
        Ok(token)
    }

    pub async fn session_actor(
        &self,
        cookie: &str,
        ctx: RequestCtx,
    ) -> Result<Option<Actor>, AppError> {
        let Some(s) = self
            .store
            .session(&auth::sha256_hex(cookie), now_millis())
            .await?
        else {
            return Ok(None);
        };
        let via = AuthVia::Session {
            csrf: s.csrf,
            method: s.method,
        };
        Ok(Some(self.actor_for(s.user, via, ctx).await?))
    }

    /// Ends the session behind `cookie` (logout), audited.
    pub async fn end_session(&self, actor: &Actor, cookie: &str) -> Result<(), AppError> {
        self.store.delete_session(&auth::sha256_hex(cookie)).await?;
        let d = actor.audit("logout", user_target(Some(actor.user_id), &actor.username));
        self.record(&d).await;
        Ok(())
    }

    /// Issues an API token for the actor; the secret is returned once.
    pub async fn issue_token(
        &self,
        actor: &Actor,
        name: &str,
    ) -> Result<(TokenId, String), AppError> {
        self.authorize(actor, Action::ManageOwnTokens, Object::None)
            .await?;
        let name = name.trim();
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AppError::bad_parameter(
                "name",
                "at most 100 characters, no control characters",
            ));
        }
        let name = if name.is_empty() { "api" } else { name };
        let token = auth::random_token("shk_", 24);
        let id = self
            .store
            .create_token(actor.user_id, &auth::sha256_hex(&token), name, now_millis())
            .await?;
        let mut d = actor.audit(
            "token.create",
            AuditTarget {
                kind: "token".into(),
                id: id.to_string(),
                name: name.to_owned(),
                ..Default::default()
            },
        );
        d.new = Some(serde_json::json!({"user": actor.username}));
        self.record(&d).await;
        Ok((id, token))
    }

    pub async fn token_actor(
        &self,
        token: &str,
        ctx: RequestCtx,
    ) -> Result<Option<Actor>, AppError> {
        if !token.starts_with("shk_") || token.len() > 200 {
            return Ok(None);
        }
        let Some((u, id)) = self
            .store
            .token_user(&auth::sha256_hex(token), now_millis())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.actor_for(u, AuthVia::Token(id), ctx).await?))
    }

    pub async fn list_tokens(&self, actor: &Actor) -> Result<Vec<ApiToken>, AppError> {
        self.authorize(actor, Action::ManageOwnTokens, Object::None)
            .await?;
        Ok(self.store.list_tokens(actor.user_id).await?)
    }

    pub async fn revoke_token(&self, actor: &Actor, id: TokenId) -> Result<(), AppError> {
        self.authorize(actor, Action::ManageOwnTokens, Object::None)
            .await?;
        self.store
            .revoke_token(actor.user_id, id, now_millis())
            .await
            .map_err(|e| match e {
                StoreError::NotFound => AppError::NotFound(format!("token {id}")),
                other => other.into(),
            })?;
        let d = actor.audit(
            "token.revoke",
            AuditTarget {
                kind: "token".into(),
                id: id.to_string(),
                ..Default::default()
            },
        );
        self.record(&d).await;
        Ok(())
    }
}

use skyhold_core::audit::AuditDraft;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_keys_parse_and_fingerprint() {
        // The blob of an ed25519 key: string "ssh-ed25519" + 32 key bytes.
        use base64::Engine;
        let mut blob = Vec::new();
        blob.extend_from_slice(&11u32.to_be_bytes());
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&32u32.to_be_bytes());
        blob.extend_from_slice(&[7u8; 32]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
        let (key, fp) = parse_ssh_key(&format!("ssh-ed25519 {b64} ann@laptop\n")).unwrap();
        assert_eq!(key, format!("ssh-ed25519 {b64} ann@laptop"));
        assert!(fp.starts_with("SHA256:") && !fp.ends_with('='));
        assert!(
            parse_ssh_key(&format!("ssh-rsa {b64}")).is_err(),
            "type mismatch"
        );
        assert!(parse_ssh_key("ssh-ed25519 not*base64").is_err());
        assert!(parse_ssh_key("hello").is_err());
    }

    #[test]
    fn emails_and_passwords() {
        assert!(validate_email("ann@example.com").is_ok());
        assert_eq!(validate_email(" ").unwrap(), "");
        for bad in ["ann", "a@b@c", "@x", "a b@c"] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
    }
}
