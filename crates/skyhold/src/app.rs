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
    TokenId, UserId, ViewId,
};
use skyhold_store::{ApiToken, ChangeEvent, EventQuery, Page, SavedView, Store, SyncStatus};
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
    /// Saved views are per user: each manages only their own.
    ManageOwnViews,
    /// List and download objects of the buckets the configuration enables.
    BrowseObjects,
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
            | Action::ManageOwnTokens
            | Action::ManageOwnViews
            | Action::BrowseObjects,
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

/// How long a presigned object download URL stays valid.
pub const OBJECT_URL_TTL: Duration = Duration::from_secs(300);

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
        match self
            .store
            .create_user("admin", &hash, Role::Admin, now_millis())
            .await
        {
            Ok(_) => Ok(generated.then_some(pw)),
            // Another replica starting at the same moment created it first.
            Err(skyhold_store::StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
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
        let mut related: Vec<(ResourceKind, Vec<Resource>)> = Vec::new();
        for (kind, rel) in relations(r.observed.kind) {
            // Global kinds (DNS) live under their own region and point into
            // every region of the account.
            let region = if kind.is_global() {
                Some(skyhold_core::GLOBAL_REGION)
            } else if r.observed.kind.is_global() {
                None
            } else {
                Some(r.region.as_str())
            };
            let found = match rel {
                Rel::Ids(key) => {
                    let ids = attr_ids(&r, key);
                    self.store
                        .resources_by_provider_ids(&r.account, region, Some(kind), &ids)
                        .await?
                }
                Rel::Names(key) => {
                    let names = attr_ids(&r, key);
                    self.store
                        .resources_by_names(&r.account, region, kind, &names)
                        .await?
                }
                Rel::MentionId => {
                    let needle =
                        serde_json::Value::String(r.observed.provider_id.clone()).to_string();
                    self.store
                        .resources_mentioning(&r.account, region, kind, &needle)
                        .await?
                }
                Rel::MentionName(key) => {
                    let needle = format!(
                        "{}:{}",
                        serde_json::Value::String(key.to_owned()),
                        serde_json::Value::String(r.observed.name.clone())
                    );
                    self.store
                        .resources_mentioning(&r.account, region, kind, &needle)
                        .await?
                }
                Rel::MentionValues(key) | Rel::MentionedBy(key) => {
                    let values = match rel {
                        Rel::MentionValues(_) => attr_ids(&r, key),
                        _ => own_values(&r, key),
                    };
                    // DNS names may be written with or without the final dot.
                    let mut needles = Vec::new();
                    for v in values.iter().take(20) {
                        let v = v.trim_end_matches('.');
                        if !v.is_empty() {
                            needles.push(v.to_owned());
                            if matches!(rel, Rel::MentionedBy(_)) {
                                needles.push(format!("{v}."));
                            }
                        }
                    }
                    let mut all = Vec::new();
                    for v in needles {
                        let needle = serde_json::Value::String(v).to_string();
                        all.extend(
                            self.store
                                .resources_mentioning(&r.account, region, kind, &needle)
                                .await?,
                        );
                    }
                    all
                }
                Rel::AnyIds(key) => {
                    let ids = attr_ids(&r, key);
                    self.store
                        .resources_by_provider_ids(&r.account, region, None, &ids)
                        .await?
                }
            };
            for x in found.into_iter().filter(|x| x.id != r.id) {
                let k = x.observed.kind;
                match related.iter_mut().find(|(g, _)| *g == k) {
                    Some((_, list)) => {
                        if !list.iter().any(|y| y.id == x.id) {
                            list.push(x);
                        }
                    }
                    None => related.push((k, vec![x])),
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
                regions: if a.all_enabled_regions {
                    // The regions resolved so far (none before the first
                    // resolution).
                    let mut r: Vec<String> = self
                        .sync
                        .jobs(&a.name)
                        .into_iter()
                        .map(|(region, _)| region)
                        .filter(|r| r != skyhold_core::GLOBAL_REGION)
                        .collect();
                    r.sort();
                    r.dedup();
                    r
                } else {
                    a.regions.clone()
                },
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

    /// A resource of `kind` and its account's provider, for on-demand reads.
    async fn live_target(
        &self,
        id: ResourceId,
        kind: ResourceKind,
    ) -> Result<(Resource, Arc<dyn skyhold_core::Provider>), AppError> {
        let r = self.store.get_resource(id).await.map_err(|e| match e {
            skyhold_store::StoreError::NotFound => AppError::NotFound(format!("resource {id}")),
            other => other.into(),
        })?;
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
        authorize(actor, Action::ViewInventory)?;
        let (r, provider) = self.live_target(id, ResourceKind::Stack).await?;
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
        authorize(actor, Action::ViewInventory)?;
        let (r, provider) = self.live_target(id, ResourceKind::Alarm).await?;
        Ok(provider.alarm_history(&r.region, &r.observed.name).await?)
    }

    /// The bucket resource `id`, if its account's configuration lets its
    /// objects be browsed.
    async fn browsable(
        &self,
        actor: &Actor,
        id: ResourceId,
    ) -> Result<(Resource, Arc<dyn skyhold_core::Provider>), AppError> {
        authorize(actor, Action::BrowseObjects)?;
        let (r, provider) = self.live_target(id, ResourceKind::Bucket).await?;
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
        if token.is_some_and(|t| t.len() > 4096) {
            return Err(AppError::bad_parameter("token", "use next_token as given"));
        }
        let (r, provider) = self.browsable(actor, id).await?;
        let page = provider
            .list_objects(&r.region, &r.observed.provider_id, prefix, token)
            .await?;
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

    /// The actor's saved views, by name.
    pub async fn views(&self, actor: &Actor) -> Result<Vec<SavedView>, AppError> {
        authorize(actor, Action::ManageOwnViews)?;
        Ok(self.store.list_views(actor.user_id).await?)
    }

    /// One of the actor's saved views, by name.
    pub async fn view(&self, actor: &Actor, name: &str) -> Result<SavedView, AppError> {
        authorize(actor, Action::ManageOwnViews)?;
        self.store
            .view_by_name(actor.user_id, name.trim())
            .await
            .map_err(|e| match e {
                skyhold_store::StoreError::NotFound => {
                    AppError::NotFound(format!("view {:?}", name.trim()))
                }
                other => other.into(),
            })
    }

    /// Saves a named search for the actor. The query must parse (errors
    /// name the offending token); names are unique per user.
    pub async fn save_view(
        &self,
        actor: &Actor,
        name: &str,
        query: &str,
    ) -> Result<SavedView, AppError> {
        authorize(actor, Action::ManageOwnViews)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(AppError::bad_parameter(
                "name",
                "use 1-64 characters, no control characters",
            ));
        }
        let query = query.trim();
        if query.is_empty() {
            return Err(AppError::bad_parameter("q", "a view needs a search"));
        }
        skyhold_core::search::parse(query, now_millis())
            .map_err(|e| AppError::bad_parameter("q", e.to_string()))?;
        Ok(self
            .store
            .create_view(actor.user_id, name, query, now_millis())
            .await?)
    }

    pub async fn delete_view(&self, actor: &Actor, id: ViewId) -> Result<(), AppError> {
        authorize(actor, Action::ManageOwnViews)?;
        self.store
            .delete_view(actor.user_id, id)
            .await
            .map_err(|e| match e {
                skyhold_store::StoreError::NotFound => AppError::NotFound(format!("view {id}")),
                other => other.into(),
            })
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

/// How a resource finds its relatives within its account (and region, or
/// across regions for global kinds such as DNS records).
#[derive(Clone, Copy)]
enum Rel {
    /// Provider ids held in one of its attributes (a string, a list of
    /// strings or of objects with an "id" or "physical_id", or an object's
    /// values).
    Ids(&'static str),
    /// Like `Ids`, of any kind (a stack's resources).
    AnyIds(&'static str),
    /// Names held in one of its attributes (key pairs are referenced by name).
    Names(&'static str),
    /// The other kind's resources whose attributes mention this one's id.
    MentionId,
    /// The other kind's resources whose attribute `key` holds this one's name.
    MentionName(&'static str),
    /// The other kind's resources whose attributes mention one of the values
    /// in this one's attribute `key` (a DNS record's addresses).
    MentionValues(&'static str),
    /// The other kind's resources whose attributes mention the value of this
    /// one's column or attribute `key` (the records pointing at an address).
    MentionedBy(&'static str),
}

/// The relation table: both directions of every link a detail page shows.
fn relations(kind: ResourceKind) -> Vec<(ResourceKind, Rel)> {
    use ResourceKind as K;
    let stack = (K::Stack, Rel::MentionId);
    match kind {
        K::Instance => vec![
            (K::Volume, Rel::Ids("volume_ids")),
            (K::SecurityGroup, Rel::Ids("security_groups")),
            (K::Image, Rel::Ids("image_id")),
            (K::Subnet, Rel::Ids("subnet_id")),
            (K::Vpc, Rel::Ids("vpc_id")),
            (K::KeyPair, Rel::Names("key_name")),
            (K::ElasticIp, Rel::MentionId),
            (K::LoadBalancer, Rel::MentionId),
            (K::TargetGroup, Rel::MentionId),
            (K::AutoScalingGroup, Rel::MentionId),
            (K::DnsRecord, Rel::MentionedBy("public_ip")),
            (K::DnsRecord, Rel::MentionedBy("public_dns_name")),
            (K::Alarm, Rel::MentionId),
            stack,
        ],
        K::Volume => vec![
            (K::Instance, Rel::Ids("instance_ids")),
            (K::Snapshot, Rel::MentionId),
            (K::Snapshot, Rel::Ids("snapshot_id")),
            stack,
        ],
        K::Snapshot => vec![
            (K::Volume, Rel::Ids("volume_id")),
            (K::Image, Rel::MentionId),
        ],
        K::Image => vec![
            (K::Snapshot, Rel::Ids("snapshot_ids")),
            (K::Instance, Rel::MentionId),
        ],
        K::SecurityGroup => vec![
            (K::Vpc, Rel::Ids("vpc_id")),
            (K::Instance, Rel::MentionId),
            (K::LoadBalancer, Rel::MentionId),
            (K::DbInstance, Rel::MentionId),
            stack,
        ],
        K::Subnet => vec![
            (K::Vpc, Rel::Ids("vpc_id")),
            (K::Instance, Rel::MentionId),
            (K::LoadBalancer, Rel::MentionId),
            stack,
        ],
        K::Vpc => vec![
            (K::Subnet, Rel::MentionId),
            (K::SecurityGroup, Rel::MentionId),
            (K::Instance, Rel::MentionId),
            (K::LoadBalancer, Rel::MentionId),
            (K::TargetGroup, Rel::MentionId),
            (K::DbInstance, Rel::MentionId),
            stack,
        ],
        K::ElasticIp => vec![
            (K::Instance, Rel::Ids("instance_id")),
            (K::DnsRecord, Rel::MentionedBy("public_ip")),
        ],
        K::KeyPair => vec![(K::Instance, Rel::MentionName("key_name"))],
        K::LaunchTemplate => vec![(K::AutoScalingGroup, Rel::MentionId), stack],
        K::LoadBalancer => vec![
            (K::TargetGroup, Rel::Ids("target_group_arns")),
            (K::Instance, Rel::Ids("instance_ids")),
            (K::SecurityGroup, Rel::Ids("security_groups")),
            (K::Subnet, Rel::Ids("subnet_ids")),
            (K::Vpc, Rel::Ids("vpc_id")),
            (K::AutoScalingGroup, Rel::MentionId),
            (K::DnsRecord, Rel::MentionedBy("dns_name")),
            stack,
        ],
        K::TargetGroup => vec![
            (K::LoadBalancer, Rel::Ids("load_balancer_arns")),
            (K::Instance, Rel::Ids("instance_ids")),
            (K::AutoScalingGroup, Rel::MentionId),
            (K::Vpc, Rel::Ids("vpc_id")),
            stack,
        ],
        K::AutoScalingGroup => vec![
            (K::Instance, Rel::Ids("instance_ids")),
            (K::LaunchTemplate, Rel::Ids("launch_template_id")),
            (K::TargetGroup, Rel::Ids("target_group_arns")),
            (K::LoadBalancer, Rel::Ids("load_balancer_names")),
            stack,
        ],
        K::DbInstance => vec![
            (K::SecurityGroup, Rel::Ids("security_groups")),
            (K::Vpc, Rel::Ids("vpc_id")),
            stack,
        ],
        K::DynamodbTable | K::Topic | K::Bucket => vec![stack],
        K::CacheCluster => vec![
            (K::ReplicationGroup, Rel::Ids("replication_group_id")),
            stack,
        ],
        K::ReplicationGroup => vec![(K::CacheCluster, Rel::Ids("member_clusters")), stack],
        K::Stack => vec![(K::Stack, Rel::AnyIds("resources"))],
        K::HostedZone => vec![(K::DnsRecord, Rel::MentionId)],
        K::DnsRecord => vec![
            (K::HostedZone, Rel::Ids("zone_id")),
            (K::Instance, Rel::MentionValues("values")),
            (K::LoadBalancer, Rel::MentionValues("values")),
            (K::LoadBalancer, Rel::MentionValues("alias_target")),
        ],
        K::Queue => vec![
            (K::Queue, Rel::MentionValues("dead_letter_target_arn")),
            (K::Queue, Rel::MentionedBy("arn")),
            stack,
        ],
        K::Alarm => vec![(K::Instance, Rel::Ids("dimensions"))],
    }
}

/// The ids (or names) an attribute holds.
fn attr_ids(r: &Resource, key: &str) -> Vec<String> {
    let id_of = |v: &serde_json::Value| {
        v.as_str()
            .or_else(|| v.get("id").and_then(|x| x.as_str()))
            .or_else(|| v.get("physical_id").and_then(|x| x.as_str()))
            .map(str::to_owned)
    };
    match r.observed.attributes.get(key) {
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(id_of).collect(),
        Some(serde_json::Value::Object(o)) => o.values().filter_map(id_of).collect(),
        Some(serde_json::Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// This resource's own value for `key`: a column (`public_ip`,
/// `private_ip`) or an attribute.
fn own_values(r: &Resource, key: &str) -> Vec<String> {
    let v = match key {
        "public_ip" => r.observed.public_ip.clone(),
        "private_ip" => r.observed.private_ip.clone(),
        _ => return attr_ids(r, key),
    };
    if v.is_empty() {
        Vec::new()
    } else {
        vec![v]
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
