//! The application layer: the domain functions that the web pages, the JSON
//! API, the CLI (through the API) and the background jobs all call, and the
//! one authorization function every one of them goes through.

use crate::auth::{self, LoginLimiter};
use crate::config::Config;
use crate::error::AppError;
use crate::sync::{KindReport, SyncEngine};
use serde::Serialize;
use skyhold_core::{
    now_millis, AccountName, Millis, Resource, ResourceId, ResourceKind, ResourceQuery, Role,
    TokenId, UserId,
};
use skyhold_store::{ApiToken, ChangeEvent, EventQuery, Page, Store, SyncStatus};
use std::sync::Arc;
use std::time::Duration;

/// Who is asking, and how they proved it.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: UserId,
    pub username: String,
    pub role: Role,
    pub via: AuthVia,
}

#[derive(Debug, Clone)]
pub enum AuthVia {
    /// A browser session; forms must carry this CSRF token.
    Session {
        csrf: String,
    },
    Token(TokenId),
}

/// Everything an actor can ask for. Adding a capability means adding a
/// variant here and a line in [`authorize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ViewInventory,
    ViewAccounts,
    ViewSyncStatus,
    TriggerSync,
    /// Re-read one resource from its provider (targeted refresh). Allowed
    /// to viewers too: it only reads, and only one resource.
    RefreshResource,
    ManageOwnTokens,
}

/// The one authorization check. Every domain function calls it first.
pub fn authorize(actor: &Actor, action: Action) -> Result<(), AppError> {
    let allowed = match (actor.role, action) {
        (Role::Admin, _) => true,
        (
            Role::Viewer,
            Action::ViewInventory
            | Action::ViewAccounts
            | Action::ViewSyncStatus
            | Action::RefreshResource
            | Action::ManageOwnTokens,
        ) => true,
        (Role::Viewer, Action::TriggerSync) => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "role {} may not {action:?}",
            actor.role.as_str()
        )))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    pub name: String,
    pub provider: String,
    pub regions: Vec<String>,
    pub endpoint_url: Option<String>,
    /// How credentials are obtained (never the credentials).
    pub auth: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourceDetail {
    pub resource: Resource,
    /// Its change history, newest first.
    pub history: Vec<ChangeEvent>,
    /// Related resources, grouped by kind.
    pub related: Vec<(ResourceKind, Vec<Resource>)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub per_kind: Vec<(String, i64)>,
    pub instances_by_state: Vec<(String, i64)>,
    pub instances_by_account: Vec<(String, i64)>,
    pub instances_by_region: Vec<(String, i64)>,
    pub instances_by_type: Vec<(String, i64)>,
    /// vCPUs and memory (MiB) of running instances of known types.
    pub running_vcpus: u64,
    pub running_memory_mib: u64,
    /// Running instances whose type's size is not known.
    pub running_unknown_type: i64,
    pub volume_gib: i64,
    pub unattached_volumes: i64,
    pub unassociated_ips: i64,
    /// Alarms whose state is ALARM.
    pub alarms_in_alarm: i64,
    /// Instances stopped for more than `stopped_days` days.
    pub stopped_days: u32,
    pub stopped_long: i64,
    pub sync: Vec<SyncStatus>,
}

/// Sums `(key, count)` pairs by key, largest first (ties by key).
fn tally<'a>(pairs: impl Iterator<Item = (&'a str, i64)>) -> Vec<(String, i64)> {
    let mut m: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for (k, n) in pairs {
        *m.entry(k).or_default() += n;
    }
    let mut v: Vec<(String, i64)> = m.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Listing pages count matches up to this many (beyond: "more than 1000"),
/// so a broad search never pays for counting every row.
pub const COUNT_CAP: i64 = 1_000;

pub struct App {
    pub store: Store,
    pub config: Arc<Config>,
    pub sync: Arc<SyncEngine>,
    limiter: LoginLimiter,
}

impl App {
    pub fn new(store: Store, config: Arc<Config>, sync: Arc<SyncEngine>) -> Self {
        Self {
            store,
            config,
            sync,
            limiter: LoginLimiter::new(5, Duration::from_secs(300)),
        }
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
        let hash = auth::hash_password(&pw)?;
        self.store
            .create_user("admin", &hash, Role::Admin, now_millis())
            .await?;
        Ok(generated.then_some(pw))
    }

    /// Creates a user.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<UserId, AppError> {
        create_user(&self.store, username, password, role).await
    }

    /// Checks a user name and password, rate-limited per user and per client.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &str,
    ) -> Result<Actor, AppError> {
        let keys = [format!("user:{username}"), format!("ip:{client}")];
        self.limiter.check(&keys).map_err(AppError::RateLimited)?;
        let user = self.store.user_by_name(username).await?;
        let hash = user
            .as_ref()
            .map_or(auth::dummy_hash(), |u| u.password_hash.as_str())
            .to_owned();
        let pw = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || auth::verify_password(&pw, &hash))
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        match user {
            Some(u) if ok => {
                self.limiter.succeeded(&keys);
                Ok(Actor {
                    user_id: u.id,
                    username: u.username,
                    role: u.role,
                    via: AuthVia::Session {
                        csrf: String::new(),
                    },
                })
            }
            _ => {
                self.limiter.failed(&keys);
                tracing::info!(user = %username, client = %client, "failed login");
                Err(AppError::InvalidCredentials)
            }
        }
    }

    /// Starts a browser session; returns the cookie value (only its hash is stored).
    pub async fn start_session(&self, actor: &Actor) -> Result<String, AppError> {
        let token = auth::random_token("", 32);
        let csrf = auth::random_token("", 16);
        let now = now_millis();
        let ttl = self.config.session_ttl.as_millis() as Millis;
        self.store
            .create_session(
                &auth::sha256_hex(&token),
                actor.user_id,
                &csrf,
                now,
                now + ttl,
            )
            .await?;
        Ok(token)
    }

    pub async fn session_actor(&self, cookie: &str) -> Result<Option<Actor>, AppError> {
        let s = self
            .store
            .session(&auth::sha256_hex(cookie), now_millis())
            .await?;
        Ok(s.map(|s| Actor {
            user_id: s.user.id,
            username: s.user.username,
            role: s.user.role,
            via: AuthVia::Session { csrf: s.csrf },
        }))
    }

    pub async fn end_session(&self, cookie: &str) -> Result<(), AppError> {
        Ok(self.store.delete_session(&auth::sha256_hex(cookie)).await?)
    }

    /// Issues an API token for the actor; the secret is returned once.
    pub async fn issue_token(
        &self,
        actor: &Actor,
        name: &str,
    ) -> Result<(TokenId, String), AppError> {
        authorize(actor, Action::ManageOwnTokens)?;
        let name = name.trim();
        if name.len() > 100 {
            return Err(AppError::bad_parameter("name", "at most 100 characters"));
        }
        let token = auth::random_token("shk_", 24);
        let id = self
            .store
            .create_token(
                actor.user_id,
                &auth::sha256_hex(&token),
                if name.is_empty() { "api" } else { name },
                now_millis(),
            )
            .await?;
        Ok((id, token))
    }

    pub async fn token_actor(&self, token: &str) -> Result<Option<Actor>, AppError> {
        if !token.starts_with("shk_") || token.len() > 200 {
            return Ok(None);
        }
        let found = self
            .store
            .token_user(&auth::sha256_hex(token), now_millis())
            .await?;
        Ok(found.map(|(u, id)| Actor {
            user_id: u.id,
            username: u.username,
            role: u.role,
            via: AuthVia::Token(id),
        }))
    }

    pub async fn list_tokens(&self, actor: &Actor) -> Result<Vec<ApiToken>, AppError> {
        authorize(actor, Action::ManageOwnTokens)?;
        Ok(self.store.list_tokens(actor.user_id).await?)
    }

    pub async fn revoke_token(&self, actor: &Actor, id: TokenId) -> Result<(), AppError> {
        authorize(actor, Action::ManageOwnTokens)?;
        self.store
            .revoke_token(actor.user_id, id, now_millis())
            .await
            .map_err(|e| match e {
                skyhold_store::StoreError::NotFound => AppError::NotFound(format!("token {id}")),
                other => other.into(),
            })
    }

    pub async fn list_resources(&self, actor: &Actor, q: &ResourceQuery) -> Result<Page, AppError> {
        authorize(actor, Action::ViewInventory)?;
        Ok(self.store.list_resources(q).await?)
    }

    pub async fn count_resources(&self, actor: &Actor, q: &ResourceQuery) -> Result<i64, AppError> {
        authorize(actor, Action::ViewInventory)?;
        Ok(self.store.count_resources(q, COUNT_CAP).await?)
    }

    pub async fn resource(
        &self,
        actor: &Actor,
        id: ResourceId,
    ) -> Result<ResourceDetail, AppError> {
        authorize(actor, Action::ViewInventory)?;
        let r = self.store.get_resource(id).await.map_err(|e| match e {
            skyhold_store::StoreError::NotFound => AppError::NotFound(format!("resource {id}")),
            other => other.into(),
        })?;
        let mut related = Vec::new();
        for (kind, rel) in relations(r.observed.kind) {
            let found = match rel {
                Rel::Ids(key) => {
                    let ids = attr_ids(&r, key);
                    self.store
                        .resources_by_provider_ids(&r.account, &r.region, kind, &ids)
                        .await?
                }
                Rel::Names(key) => {
                    let names = attr_ids(&r, key);
                    self.store
                        .resources_by_names(&r.account, &r.region, kind, &names)
                        .await?
                }
                Rel::MentionId => {
                    let needle =
                        serde_json::Value::String(r.observed.provider_id.clone()).to_string();
                    self.store
                        .resources_mentioning(&r.account, &r.region, kind, &needle)
                        .await?
                }
                Rel::MentionName(key) => {
                    let needle = format!(
                        "{}:{}",
                        serde_json::Value::String(key.to_owned()),
                        serde_json::Value::String(r.observed.name.clone())
                    );
                    self.store
                        .resources_mentioning(&r.account, &r.region, kind, &needle)
                        .await?
                }
            };
            let found = found.into_iter().filter(|x| x.id != r.id);
            match related
                .iter_mut()
                .find(|(k, _): &&mut (ResourceKind, Vec<Resource>)| *k == kind)
            {
                Some((_, list)) => {
                    for x in found {
                        if !list.iter().any(|y| y.id == x.id) {
                            list.push(x);
                        }
                    }
                }
                None => {
                    let list: Vec<Resource> = found.collect();
                    if !list.is_empty() {
                        related.push((kind, list));
                    }
                }
            }
        }
        let history = self
            .store
            .list_events(&EventQuery {
                resource: Some(r.id),
                limit: 100,
                ..Default::default()
            })
            .await?;
        Ok(ResourceDetail {
            resource: r,
            history,
            related,
        })
    }

    /// The kinds synced for at least one account, in display order (all
    /// kinds when no account is configured): what the navigation shows.
    pub fn enabled_kinds(&self) -> Vec<ResourceKind> {
        if self.config.accounts.is_empty() {
            return ResourceKind::ALL.to_vec();
        }
        ResourceKind::ALL
            .into_iter()
            .filter(|k| self.config.accounts.iter().any(|a| a.kinds.contains(k)))
            .collect()
    }

    pub fn accounts(&self, actor: &Actor) -> Result<Vec<AccountView>, AppError> {
        authorize(actor, Action::ViewAccounts)?;
        Ok(self
            .config
            .accounts
            .iter()
            .map(|a| AccountView {
                name: a.name.to_string(),
                provider: a.provider.clone(),
                regions: a.regions.clone(),
                endpoint_url: a.endpoint_url.clone(),
                auth: a.auth_summary.clone(),
            })
            .collect())
    }

    /// Change events, newest first, from raw query pairs: `since` (RFC 3339,
    /// a date, or a duration back from now such as `24h`; default 24h),
    /// `kind`, `account`, `limit` (1-1000, default 100) and `cursor`.
    /// Returns the events and the cursor of the next page.
    pub async fn changes(
        &self,
        actor: &Actor,
        pairs: &[(String, String)],
    ) -> Result<(Vec<ChangeEvent>, Option<i64>), AppError> {
        authorize(actor, Action::ViewInventory)?;
        let mut q = EventQuery {
            since: now_millis() - 86_400_000,
            limit: 100,
            ..Default::default()
        };
        for (k, v) in pairs {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            match k.as_str() {
                "since" => q.since = parse_since(v, now_millis())?,
                "kind" => {
                    q.kind = Some(ResourceKind::parse(v).ok_or_else(|| {
                        AppError::bad_parameter("kind", format!("unknown kind {v:?}"))
                    })?)
                }
                "account" => {
                    q.account = Some(
                        AccountName::parse(v).map_err(|m| AppError::bad_parameter("account", m))?,
                    )
                }
                "limit" => {
                    q.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| {
                            AppError::bad_parameter(
                                "limit",
                                "must be a whole number from 1 to 1000",
                            )
                        })?
                }
                "cursor" => {
                    q.before_id = Some(v.parse().map_err(|_| {
                        AppError::bad_parameter("cursor", "use next_cursor as given")
                    })?)
                }
                other => return Err(AppError::bad_parameter(other, "unknown parameter")),
            }
        }
        let mut events = self.store.list_events(&q).await?;
        let next = if events.len() > q.limit as usize {
            events.truncate(q.limit as usize);
            events.last().map(|e| e.id)
        } else {
            None
        };
        Ok((events, next))
    }

    /// Targeted refresh: reads one resource afresh from its provider and
    /// applies the result to its row alone (a change event when it changed,
    /// a tombstone when it is gone). Returns the updated resource.
    pub async fn refresh_resource(
        &self,
        actor: &Actor,
        id: ResourceId,
    ) -> Result<Resource, AppError> {
        authorize(actor, Action::RefreshResource)?;
        let not_found = |e| match e {
            skyhold_store::StoreError::NotFound => AppError::NotFound(format!("resource {id}")),
            other => other.into(),
        };
        let r = self.store.get_resource(id).await.map_err(not_found)?;
        let provider = self.sync.provider(&r.account).ok_or_else(|| {
            AppError::Conflict(format!("account {} is not configured any more", r.account))
        })?;
        let o = &r.observed;
        tracing::info!(user = %actor.username, resource = %id, kind = %o.kind, "refresh requested");
        let fresh = provider
            .describe(&r.region, o.kind, &o.provider_id)
            .await
            .map_err(|e| AppError::Unavailable(format!("refreshing {}: {e}", o.provider_id)))?;
        self.store
            .apply_observed(id, fresh.as_ref(), now_millis())
            .await
            .map_err(not_found)?;
        self.store.get_resource(id).await.map_err(not_found)
    }

    pub async fn sync_status(&self, actor: &Actor) -> Result<Vec<SyncStatus>, AppError> {
        authorize(actor, Action::ViewSyncStatus)?;
        Ok(self.store.sync_statuses().await?)
    }

    /// Starts a sync of every account (or one). With `wait`, returns the
    /// per-listing reports when done; otherwise returns at once.
    pub async fn trigger_sync(
        &self,
        actor: &Actor,
        account: Option<&str>,
        wait: bool,
    ) -> Result<Option<Vec<KindReport>>, AppError> {
        authorize(actor, Action::TriggerSync)?;
        let account = match account.map(str::trim).filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => {
                let name =
                    AccountName::parse(a).map_err(|m| AppError::bad_parameter("account", m))?;
                if self.config.account(&name).is_none() {
                    return Err(AppError::NotFound(format!("account {name}")));
                }
                Some(name)
            }
        };
        tracing::info!(user = %actor.username, account = ?account.as_ref().map(|a| a.to_string()), wait, "sync requested");
        if wait {
            Ok(Some(self.sync.run(account.as_ref()).await))
        } else {
            let engine = self.sync.clone();
            tokio::spawn(async move {
                engine.run(account.as_ref()).await;
            });
            Ok(None)
        }
    }

    pub async fn dashboard(&self, actor: &Actor) -> Result<Dashboard, AppError> {
        authorize(actor, Action::ViewInventory)?;
        let s = &self.store;
        // Every count comes from the summary table the store keeps as rows
        // change (a few hundred rows), not from scanning resources.
        let summary = s.summary().await?;
        let of_kind = |kind: &'static str| summary.iter().filter(move |r| r.kind == kind);
        let count_of = |kind: &'static str, state: &str| {
            of_kind(kind)
                .filter(|r| r.state == state)
                .map(|r| r.count)
                .sum::<i64>()
        };
        let (mut vcpus, mut memory, mut unknown) = (0u64, 0u64, 0i64);
        for g in of_kind("instance").filter(|g| g.state == "running") {
            match skyhold_core::instance_types::specs(&g.rtype) {
                Some(sp) => {
                    vcpus += u64::from(sp.vcpus) * g.count as u64;
                    memory += sp.memory_mib * g.count as u64;
                }
                None => unknown += g.count,
            }
        }
        let stopped_days = self.config.stopped_days;
        let stopped_before =
            now_millis().saturating_sub(i64::from(stopped_days).saturating_mul(86_400_000));
        let instances = || of_kind("instance");
        Ok(Dashboard {
            per_kind: tally(summary.iter().map(|r| (r.kind.as_str(), r.count))),
            instances_by_state: tally(instances().map(|g| (g.state.as_str(), g.count))),
            instances_by_account: tally(instances().map(|g| (g.account.as_str(), g.count))),
            instances_by_region: tally(instances().map(|g| (g.region.as_str(), g.count))),
            instances_by_type: tally(instances().map(|g| (g.rtype.as_str(), g.count))),
            running_vcpus: vcpus,
            running_memory_mib: memory,
            running_unknown_type: unknown,
            volume_gib: of_kind("volume").map(|r| r.size_gib).sum(),
            unattached_volumes: count_of("volume", "available"),
            unassociated_ips: count_of("elastic_ip", "unassociated"),
            alarms_in_alarm: count_of("alarm", "alarm"),
            stopped_days,
            stopped_long: s
                .stopped_before(&skyhold_core::rfc3339(stopped_before))
                .await?,
            sync: s.sync_statuses().await?,
        })
    }
}

/// Creates a user in `store`: the one place user names and passwords are
/// validated and hashed (also used by `skyhold user add`, which runs without
/// a server).
pub async fn create_user(
    store: &Store,
    username: &str,
    password: &str,
    role: Role,
) -> Result<UserId, AppError> {
    validate_username(username)?;
    if password.chars().count() < 8 {
        return Err(AppError::bad_parameter(
            "password",
            "must be at least 8 characters",
        ));
    }
    let hash = auth::hash_password(password)?;
    Ok(store
        .create_user(username, &hash, role, now_millis())
        .await?)
}

/// `since` for the change history: RFC 3339, a date (midnight UTC), or a
/// duration back from `now` (`24h`, `7d`).
pub fn parse_since(v: &str, now: Millis) -> Result<Millis, AppError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis()));
    }
    if let Ok(d) = humantime::parse_duration(v) {
        return Ok(now.saturating_sub(d.as_millis() as i64));
    }
    Err(AppError::bad_parameter(
        "since",
        format!("{v:?} is not a time (2026-01-31, RFC 3339) or a duration back from now (24h, 7d)"),
    ))
}

/// How a resource finds its relatives within its account and region.
enum Rel {
    /// Provider ids held in one of its attributes (a string, a list of
    /// strings, or a list of objects with an "id").
    Ids(&'static str),
    /// Names held in one of its attributes (key pairs are referenced by name).
    Names(&'static str),
    /// The other kind's resources whose attributes mention this one's id.
    MentionId,
    /// The other kind's resources whose attribute `key` holds this one's name.
    MentionName(&'static str),
}

/// The relation table: both directions of every link a detail page shows.
fn relations(kind: ResourceKind) -> Vec<(ResourceKind, Rel)> {
    use ResourceKind as K;
    match kind {
        K::Instance => vec![
            (K::Volume, Rel::Ids("volume_ids")),
            (K::SecurityGroup, Rel::Ids("security_groups")),
            (K::Image, Rel::Ids("image_id")),
            (K::Subnet, Rel::Ids("subnet_id")),
            (K::Vpc, Rel::Ids("vpc_id")),
            (K::KeyPair, Rel::Names("key_name")),
            (K::ElasticIp, Rel::MentionId),
        ],
        K::Volume => vec![
            (K::Instance, Rel::Ids("instance_ids")),
            (K::Snapshot, Rel::MentionId),
            (K::Snapshot, Rel::Ids("snapshot_id")),
        ],
        K::Snapshot => vec![
            (K::Volume, Rel::Ids("volume_id")),
            (K::Image, Rel::MentionId),
        ],
        K::Image => vec![
            (K::Snapshot, Rel::Ids("snapshot_ids")),
            (K::Instance, Rel::MentionId),
        ],
        K::SecurityGroup => vec![(K::Vpc, Rel::Ids("vpc_id")), (K::Instance, Rel::MentionId)],
        K::Subnet => vec![(K::Vpc, Rel::Ids("vpc_id")), (K::Instance, Rel::MentionId)],
        K::Vpc => vec![
            (K::Subnet, Rel::MentionId),
            (K::SecurityGroup, Rel::MentionId),
            (K::Instance, Rel::MentionId),
        ],
        K::ElasticIp => vec![(K::Instance, Rel::Ids("instance_id"))],
        K::KeyPair => vec![(K::Instance, Rel::MentionName("key_name"))],
        K::LaunchTemplate => vec![],
        _ => vec![],
    }
}

/// The ids (or names) an attribute holds.
fn attr_ids(r: &Resource, key: &str) -> Vec<String> {
    match r.observed.attributes.get(key) {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().or_else(|| v.get("id").and_then(|x| x.as_str())))
            .map(str::to_owned)
            .collect(),
        Some(serde_json::Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn validate_username(u: &str) -> Result<(), AppError> {
    let ok = !u.is_empty()
        && u.len() <= 64
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AppError::bad_parameter(
            "username",
            "use 1-64 characters of letters, digits, '-', '_', '.', '@'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: UserId(1),
            username: "u".into(),
            role,
            via: AuthVia::Token(TokenId(1)),
        }
    }

    #[test]
    fn viewers_read_but_do_not_sync() {
        let v = actor(Role::Viewer);
        assert!(authorize(&v, Action::ViewInventory).is_ok());
        assert!(matches!(
            authorize(&v, Action::TriggerSync),
            Err(AppError::Forbidden(_))
        ));
        assert!(authorize(&actor(Role::Admin), Action::TriggerSync).is_ok());
        // Targeted refresh only reads, one resource: viewers may.
        assert!(authorize(&v, Action::RefreshResource).is_ok());
    }
}
