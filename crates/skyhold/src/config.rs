//! One typed configuration: a TOML file (optional) plus `SKYHOLD_*`
//! environment overrides. Every problem is reported with the file, line and
//! key it concerns; secrets are held in [`Secret`]s and never printed.

use serde::Deserialize;
use skyhold_aws::{AwsAccount, Credentials};
use skyhold_core::{ids::validate_region, AccountName, ResourceKind, Role, Secret};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod notifications;
mod policies;
pub use notifications::{EmailConfig, Notifications, SmtpTls, WebhookConfig};
pub use policies::Policies;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/skyhold.db";

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// The default interval of every sync job (account, region, kind).
    pub sync_interval: Duration,
    /// Each job's next run is its interval plus a random part of up to
    /// this fraction of it, so jobs (and replicas) spread out.
    pub sync_jitter: f64,
    /// How long a replica's lease on a running job lasts unless renewed (it
    /// is renewed every third of it while the job runs). A crashed
    /// replica's jobs are taken over once their leases expire.
    pub sync_lease: Duration,
    /// How many sync jobs run at once in this process, in total.
    pub sync_concurrency: usize,
    /// Run a sync right after start (default true).
    pub sync_on_start: bool,
    /// Mark cookies Secure (set when served over https).
    pub secure_cookies: bool,
    pub session_ttl: Duration,
    /// How long change events are kept.
    pub history_retention: Duration,
    /// The dashboard counts instances stopped for more than this many days.
    pub stopped_days: u32,
    /// Tag keys read for a resource's owner after `skyhold:owner`, in order.
    pub owner_tag_keys: Vec<String>,
    /// The URL people reach skyhold at (`https://sky.example.com`, no
    /// trailing slash): the base of the OIDC redirect URI.
    pub public_url: Option<String>,
    pub auth: AuthConfig,
    /// Where the audit log's head (seq, hash, time) is written every
    /// `audit_anchor_interval`, so a rewrite of the whole table is
    /// detectable from outside the database.
    pub audit_anchor: Option<AuditAnchor>,
    pub audit_anchor_interval: Duration,
    /// How long an action waits for the provider to accept it. An action
    /// unsettled for longer than this (plus 5 s) died with its process and
    /// is settled by re-reading its resource.
    pub action_timeout: Duration,
    /// DNS records of launched servers name their private address even
    /// when they have a public one (`dns_address = "private"`; default
    /// `"public"`: the public address if any, else the private).
    pub dns_private: bool,
    pub accounts: Vec<AccountConfig>,
    /// `[policies]`: the global ones (an account's override them).
    pub policies: Policies,
    /// `[notifications]`: how the outbox is delivered.
    pub notifications: Notifications,
    /// `[[prices]]`: single prices over the shipped and imported ones.
    pub prices: Vec<PriceOverride>,
}

/// `[[prices]]`: one price set by the operator (private pricing).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceOverride {
    pub product: skyhold_core::prices::Product,
    pub region: String,
    pub rtype: String,
    pub usd: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    product: String,
    region: String,
    #[serde(rename = "type", default)]
    rtype: String,
    usd: f64,
}

/// `audit_anchor`: a file to append a JSON line to, or a URL to POST to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditAnchor {
    File(PathBuf),
    Webhook(url::Url),
}

/// `[auth]`: how people sign in.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Local users with passwords (default true; `false` refuses every
    /// password login).
    pub local: bool,
    /// `[auth.proxy]`: identity from a trusted reverse proxy's header.
    pub proxy: Option<ProxyAuth>,
    /// `[auth.oidc]`: sign-in through an OpenID Connect provider.
    pub oidc: Option<OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            local: true,
            proxy: None,
            oidc: None,
        }
    }
}

/// `[auth.proxy]`: a reverse proxy (Apache/nginx basic auth, an SSO proxy)
/// names the user in a header. The header is honoured only when the TCP
/// peer is inside `trusted`; from anywhere else it is ignored (and the
/// attempt audited), so nobody can simply send it themselves.
#[derive(Debug, Clone)]
pub struct ProxyAuth {
    /// The header naming the user, e.g. `X-Remote-User` (lower-cased).
    pub header: String,
    /// An optional header listing the user's groups, comma-separated.
    pub groups_header: Option<String>,
    pub trusted: Vec<ipnet::IpNet>,
    /// Create unknown users (with `default_role`).
    pub auto_create: bool,
    pub default_role: skyhold_core::Role,
    /// Make the user's memberships match `groups_header` (existing groups).
    pub sync_groups: bool,
}

impl ProxyAuth {
    /// Whether a request from `peer` may name its user in the header.
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(&peer))
    }
}

/// The path of the OIDC redirect URI (the callback route).
pub const OIDC_CALLBACK_PATH: &str = "/auth/oidc/callback";

/// `[auth.oidc]`: one OpenID Connect provider (authorization code flow
/// with PKCE, a confidential client).
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer exactly as the provider names it (discovery reads
    /// `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Always contains `openid`.
    pub scopes: Vec<String>,
    /// The ID token claim listing the user's groups (e.g. `groups`).
    pub groups_claim: Option<String>,
    /// Group (claim value) → role; the strongest matching role wins.
    pub role_mapping: BTreeMap<String, Role>,
    /// The role when no mapping matches (default viewer).
    pub default_role: Role,
    /// Create unknown users at their first sign-in (default false).
    pub auto_create: bool,
    /// The redirect URI registered at the provider; None: `public_url` +
    /// the callback path, else the request's Host.
    pub redirect_url: Option<String>,
    /// The login button's text.
    pub display_name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    local: Option<bool>,
    proxy: Option<RawProxy>,
    oidc: Option<RawOidc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProxy {
    header: String,
    groups_header: Option<String>,
    trusted: Vec<String>,
    #[serde(default)]
    auto_create: bool,
    default_role: Option<String>,
    #[serde(default)]
    sync_groups: bool,
}

fn header_name(key: &str, v: &str) -> Result<String, String> {
    let ok =
        !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(format!(
            "{key}: {:?} is not a header name (letters, digits and '-')",
            skyhold_core::clip(v, 40)
        ))
    }
}

fn parse_proxy(p: RawProxy) -> Result<ProxyAuth, (&'static str, String)> {
    let header = header_name("header", &p.header).map_err(|m| ("auth.proxy.header", m))?;
    let groups_header = p
        .groups_header
        .as_deref()
        .map(|g| header_name("groups_header", g))
        .transpose()
        .map_err(|m| ("auth.proxy.groups_header", m))?;
    if p.trusted.is_empty() {
        return Err((
            "auth.proxy.trusted",
            "list the proxy's addresses (CIDR), e.g. [\"127.0.0.1/32\"]: the header is honoured only from them".into(),
        ));
    }
    let mut trusted = Vec::new();
    for t in &p.trusted {
        let net = t
            .parse::<ipnet::IpNet>()
            .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                (
                    "auth.proxy.trusted",
                    format!("{t:?} is not an address or CIDR range"),
                )
            })?;
        trusted.push(net);
    }
    let default_role = match p.default_role.as_deref() {
        None => skyhold_core::Role::Viewer,
        Some(r) => skyhold_core::Role::parse(r).ok_or((
            "auth.proxy.default_role",
            format!("{r:?}: use admin, member, viewer or auditor"),
        ))?,
    };
    if p.sync_groups && groups_header.is_none() {
        return Err(("auth.proxy.sync_groups", "needs groups_header".into()));
    }
    Ok(ProxyAuth {
        header,
        groups_header,
        trusted,
        auto_create: p.auto_create,
        default_role,
        sync_groups: p.sync_groups,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    client_secret_env: Option<String>,
    scopes: Option<Vec<String>>,
    groups_claim: Option<String>,
    #[serde(default)]
    role_mapping: BTreeMap<String, String>,
    default_role: Option<String>,
    auto_create: Option<bool>,
    redirect_url: Option<String>,
    display_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AccountConfig {
    pub name: AccountName,
    pub provider: String,
    /// The configured regions; empty when `all_enabled_regions`.
    pub regions: Vec<String>,
    /// `regions = "all-enabled"`: the regions are asked of the provider at
    /// start and again every hour.
    pub all_enabled_regions: bool,
    /// This account's interval (default: the global `sync_interval`).
    pub sync_interval: Option<Duration>,
    /// Per-kind intervals (`intervals = { dns_record = "1h" }`), which win
    /// over the account's and the global interval.
    pub intervals: BTreeMap<ResourceKind, Duration>,
    /// How many of this account's jobs run at once (default 4).
    pub max_concurrency: usize,
    /// The kinds synced for this account (default: all).
    pub kinds: Vec<ResourceKind>,
    pub endpoint_url: Option<String>,
    pub aws: AwsAccount,
    /// How credentials are obtained, for display (never the secret).
    pub auth_summary: String,
    /// Buckets whose objects may be browsed (`*` alone: all of them).
    pub browse_buckets: Vec<String>,
    /// Visible only to admins, auditors and subjects holding a grant on
    /// the account or on one of its resources.
    pub restricted: bool,
    /// `[accounts.policies]`: this account's, over the global ones.
    pub policies: Policies,
    /// Honour a `skyhold:keep` tag set outside skyhold (default false: it
    /// is reported, not trusted).
    pub trust_keep_tag: bool,
    /// A discount off every list price in this account (0.15: 15 % off).
    pub discount: f64,
}

impl AccountConfig {
    /// The interval of this account's `kind` job: the per-kind override,
    /// else the account's interval, else `global`.
    pub fn interval_for(&self, kind: ResourceKind, global: Duration) -> Duration {
        self.intervals
            .get(&kind)
            .copied()
            .or(self.sync_interval)
            .unwrap_or(global)
    }

    /// Whether the objects of `bucket` may be browsed (set by an admin in
    /// the configuration; nothing is browsable by default).
    pub fn may_browse(&self, bucket: &str) -> bool {
        self.browse_buckets.iter().any(|b| b == "*" || b == bucket)
    }
}

/// A configuration problem: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: Option<PathBuf>,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{}", p.display())?,
            None => f.write_str("configuration")?,
        }
        if let Some(l) = self.line {
            write!(f, ", line {l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ", key '{k}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    database_url: Option<String>,
    sync_interval: Option<String>,
    sync_jitter: Option<f64>,
    sync_lease: Option<String>,
    sync_concurrency: Option<usize>,
    sync_on_start: Option<bool>,
    secure_cookies: Option<bool>,
    session_ttl: Option<String>,
    history_retention: Option<String>,
    stopped_days: Option<u32>,
    owner_tag_keys: Option<Vec<String>>,
    public_url: Option<String>,
    auth: Option<RawAuth>,
    audit_anchor: Option<String>,
    audit_anchor_interval: Option<String>,
    action_timeout: Option<String>,
    dns_address: Option<String>,
    #[serde(default)]
    accounts: Vec<RawAccount>,
    policies: Option<policies::RawPolicies>,
    notifications: Option<notifications::RawNotifications>,
    #[serde(default)]
    prices: Vec<RawPrice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: String,
    provider: Option<String>,
    regions: Option<RawRegions>,
    kinds: Option<Vec<String>>,
    sync_interval: Option<String>,
    intervals: Option<BTreeMap<String, String>>,
    max_concurrency: Option<usize>,
    endpoint_url: Option<String>,
    profile: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<Secret>,
    access_key_id_env: Option<String>,
    secret_access_key_env: Option<String>,
    role_arn: Option<String>,
    external_id: Option<Secret>,
    session_name: Option<String>,
    session_duration: Option<String>,
    page_size: Option<i32>,
    max_attempts: Option<u32>,
    #[serde(default)]
    browse_buckets: Vec<String>,
    #[serde(default)]
    restricted: bool,
    policies: Option<policies::RawPolicies>,
    #[serde(default)]
    trust_keep_tag: bool,
    discount: Option<f64>,
}

/// `regions`: a list of names, or the word "all-enabled".
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRegions {
    List(Vec<String>),
    Word(String),
}

/// The word that makes an account sync every region enabled for it.
pub const ALL_ENABLED: &str = "all-enabled";

/// The shortest interval accepted (anything shorter would hammer the APIs).
const MIN_INTERVAL: Duration = Duration::from_secs(1);

fn parse_interval(s: &str) -> Result<Duration, String> {
    parse_duration(s).and_then(|d| {
        if d < MIN_INTERVAL {
            Err("must be at least 1s".to_owned())
        } else {
            Ok(d)
        }
    })
}

/// Where a key sits in the file, for error messages.
struct Locator<'a> {
    path: Option<&'a Path>,
    src: &'a str,
}

impl Locator<'_> {
    /// The line of `key` at top level (account None) or inside the n-th
    /// `[[accounts]]` table.
    fn line_of(&self, account: Option<usize>, key: &str) -> Option<usize> {
        let mut section: Option<usize> = None;
        let mut seen_accounts = 0usize;
        for (i, line) in self.src.lines().enumerate() {
            let t = line.trim();
            if t.starts_with("[[accounts]]") {
                section = Some(seen_accounts);
                seen_accounts += 1;
                if key.is_empty() && section == account {
                    return Some(i + 1);
                }
                continue;
            }
            if t.starts_with('[') {
                section = None;
                continue;
            }
            if section == account {
                if let Some((k, _)) = t.split_once('=') {
                    if k.trim() == key {
                        return Some(i + 1);
                    }
                }
            }
        }
        None
    }

    /// The line of `key` inside the `[table]` section (its header line when
    /// `key` is empty).
    fn line_in_table(&self, table: &str, key: &str) -> Option<usize> {
        let mut inside = false;
        for (i, line) in self.src.lines().enumerate() {
            let t = line.trim();
            if t.starts_with('[') {
                inside = t.trim_matches(|c| c == '[' || c == ']').trim() == table;
                if inside && key.is_empty() {
                    return Some(i + 1);
                }
                continue;
            }
            if inside {
                if let Some((k, _)) = t.split_once('=') {
                    if k.trim() == key {
                        return Some(i + 1);
                    }
                }
            }
        }
        None
    }

    /// An error about `key` of `[auth.oidc]`.
    fn oidc_err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: self.path.map(Path::to_path_buf),
            line: self
                .line_in_table("auth.oidc", key)
                .or_else(|| self.line_in_table("auth.oidc", ""))
                .or_else(|| self.line_in_table("auth", "oidc")),
            key: Some(format!("auth.oidc.{key}")),
            message: message.into(),
        }
    }

    fn err(&self, account: Option<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        let full_key = match account {
            Some(i) => format!("accounts[{i}].{key}"),
            None => key.to_owned(),
        };
        ConfigError {
            path: self.path.map(Path::to_path_buf),
            line: self
                .line_of(account, key)
                .or_else(|| account.and_then(|a| self.line_of(Some(a), ""))),
            key: Some(full_key),
            message: message.into(),
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{e} (expected a duration such as \"5m\" or \"90s\")"))
}

/// An http(s) URL without query or fragment, returned without a trailing
/// slash.
fn parse_public_url(v: &str) -> Result<String, String> {
    match url::Url::parse(v) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && u.query().is_none()
                && u.fragment().is_none() =>
        {
            Ok(v.trim_end_matches('/').to_owned())
        }
        _ => Err(format!(
            "{:?} is not an http(s) URL such as \"https://sky.example.com\"",
            skyhold_core::clip(v, 100)
        )),
    }
}

fn role_names() -> String {
    Role::ALL.map(|r| r.as_str()).join(", ")
}

fn parse_oidc(
    loc: &Locator<'_>,
    o: RawOidc,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<OidcConfig, ConfigError> {
    let issuer = o
        .issuer
        .ok_or_else(|| loc.oidc_err("issuer", "is required (the provider's issuer URL)"))?;
    let issuer_ok = url::Url::parse(&issuer).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some()
            && u.query().is_none()
            && u.fragment().is_none()
    });
    if !issuer_ok {
        return Err(loc.oidc_err(
            "issuer",
            format!(
                "{:?} is not an http(s) URL such as \"https://login.example.com/realms/main\"",
                skyhold_core::clip(&issuer, 100)
            ),
        ));
    }
    let client_id = o
        .client_id
        .ok_or_else(|| loc.oidc_err("client_id", "is required"))?;
    if client_id.is_empty() || client_id.len() > 256 || client_id.chars().any(char::is_control) {
        return Err(loc.oidc_err("client_id", "must be 1-256 characters"));
    }
    let client_secret = match (o.client_secret, o.client_secret_env) {
        (Some(_), Some(_)) => {
            return Err(loc.oidc_err(
                "client_secret_env",
                "give client_secret or client_secret_env, not both",
            ))
        }
        (Some(s), None) => s,
        (None, Some(var)) => match env(&var) {
            Some(v) if !v.is_empty() => Secret::new(v),
            _ => {
                return Err(loc.oidc_err(
                    "client_secret_env",
                    format!("environment variable {var} is not set"),
                ))
            }
        },
        (None, None) => {
            return Err(loc.oidc_err(
                "client_secret",
                "is required (or client_secret_env, the name of a variable holding it)",
            ))
        }
    };
    if client_secret.expose().is_empty() {
        return Err(loc.oidc_err("client_secret", "must not be empty"));
    }
    let mut scopes: Vec<String> = Vec::new();
    let wanted = o
        .scopes
        .unwrap_or_else(|| ["openid", "email", "profile"].map(str::to_owned).to_vec());
    for sc in wanted {
        if sc.is_empty()
            || sc.len() > 100
            || !sc
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        {
            return Err(loc.oidc_err(
                "scopes",
                format!("{:?} is not a scope", skyhold_core::clip(&sc, 40)),
            ));
        }
        if !scopes.contains(&sc) {
            scopes.push(sc);
        }
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(loc.oidc_err("scopes", "must include \"openid\""));
    }
    let groups_claim = match o.groups_claim {
        None => None,
        Some(c) if !c.is_empty() && c.len() <= 100 && !c.chars().any(char::is_control) => Some(c),
        Some(_) => return Err(loc.oidc_err("groups_claim", "must be 1-100 characters")),
    };
    let mut role_mapping = BTreeMap::new();
    for (group, role) in o.role_mapping {
        let r = Role::parse(&role).ok_or_else(|| {
            loc.oidc_err(
                "role_mapping",
                format!(
                    "{group:?} = {:?}: not a role; use one of {}",
                    skyhold_core::clip(&role, 40),
                    role_names()
                ),
            )
        })?;
        if group.is_empty() {
            return Err(loc.oidc_err("role_mapping", "a group name must not be empty"));
        }
        role_mapping.insert(group, r);
    }
    if !role_mapping.is_empty() && groups_claim.is_none() {
        return Err(loc.oidc_err(
            "role_mapping",
            "needs groups_claim (the claim whose values are mapped)",
        ));
    }
    let default_role = match o.default_role {
        None => Role::Viewer,
        Some(r) => Role::parse(&r).ok_or_else(|| {
            loc.oidc_err(
                "default_role",
                format!(
                    "{:?} is not a role; use one of {}",
                    skyhold_core::clip(&r, 40),
                    role_names()
                ),
            )
        })?,
    };
    let redirect_url = match o.redirect_url {
        None => None,
        Some(u) => {
            let ok = url::Url::parse(&u).is_ok_and(|p| {
                matches!(p.scheme(), "http" | "https")
                    && p.host_str().is_some()
                    && p.path().ends_with(OIDC_CALLBACK_PATH)
                    && p.query().is_none()
                    && p.fragment().is_none()
            });
            if !ok {
                return Err(loc.oidc_err(
                    "redirect_url",
                    format!(
                        "{:?} is not an http(s) URL ending in {OIDC_CALLBACK_PATH}",
                        skyhold_core::clip(&u, 100)
                    ),
                ));
            }
            Some(u)
        }
    };
    let display_name = o
        .display_name
        .unwrap_or_else(|| "Sign in with OIDC".to_owned());
    let n = display_name.chars().count();
    if !(1..=100).contains(&n) || display_name.chars().any(char::is_control) {
        return Err(loc.oidc_err("display_name", "must be 1-100 characters"));
    }
    Ok(OidcConfig {
        issuer,
        client_id,
        client_secret,
        scopes,
        groups_claim,
        role_mapping,
        default_role,
        auto_create: o.auto_create.unwrap_or(false),
        redirect_url,
        display_name,
    })
}

impl Config {
    /// Loads the file at `path` (if any) and applies environment overrides
    /// from `env` (a lookup, so tests need not touch the process environment).
    pub fn load(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let src = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| ConfigError {
                path: Some(p.to_path_buf()),
                line: None,
                key: None,
                message: format!("cannot read: {e}"),
            })?,
            None => String::new(),
        };
        Self::parse(path, &src, env)
    }

    pub fn parse(
        path: Option<&Path>,
        src: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let loc = Locator { path, src };
        let raw: RawConfig = toml::from_str(src).map_err(|e| {
            let (line, key) = match e.span() {
                Some(span) => {
                    let line = src[..span.start.min(src.len())].matches('\n').count() + 1;
                    let text = src.lines().nth(line - 1).unwrap_or_default();
                    let key = text
                        .split_once('=')
                        .map(|(k, _)| k.trim().to_owned())
                        .filter(|k| !k.is_empty());
                    (Some(line), key)
                }
                None => (None, None),
            };
            ConfigError {
                path: path.map(Path::to_path_buf),
                line,
                key,
                message: e.message().to_owned(),
            }
        })?;

        let env_err = |var: &str, message: String| ConfigError {
            path: None,
            line: None,
            key: Some(var.to_owned()),
            message,
        };

        let listen_src = env("SKYHOLD_LISTEN")
            .map(|v| (v, true))
            .or(raw.listen.map(|v| (v, false)));
        let listen = match listen_src {
            None => DEFAULT_LISTEN
                .parse()
                .expect("default listen address parses"),
            Some((v, from_env)) => v.parse().map_err(|_| {
                let m = format!("{v:?} is not an address:port such as \"127.0.0.1:8080\"");
                if from_env {
                    env_err("SKYHOLD_LISTEN", m)
                } else {
                    loc.err(None, "listen", m)
                }
            })?,
        };

        let database_url = env("SKYHOLD_DATABASE_URL")
            .or(raw.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(loc.err(
                None,
                "database_url",
                "expected a sqlite:// or postgres:// URL",
            ));
        }

        let interval_src = env("SKYHOLD_SYNC_INTERVAL")
            .map(|v| (v, true))
            .or(raw.sync_interval.map(|v| (v, false)));
        let sync_interval = match interval_src {
            None => Duration::from_secs(300),
            Some((v, from_env)) => parse_interval(&v).map_err(|m| {
                if from_env {
                    env_err("SKYHOLD_SYNC_INTERVAL", m)
                } else {
                    loc.err(None, "sync_interval", m)
                }
            })?,
        };
        let sync_jitter = raw.sync_jitter.unwrap_or(0.1);
        if !(0.0..=1.0).contains(&sync_jitter) {
            return Err(loc.err(
                None,
                "sync_jitter",
                "must be a fraction between 0 and 1 (e.g. 0.1)",
            ));
        }
        let sync_lease = match raw.sync_lease {
            None => Duration::from_secs(60),
            Some(v) => parse_duration(&v)
                .and_then(|d| {
                    if d < Duration::from_secs(1) {
                        Err("must be at least 1s".to_owned())
                    } else {
                        Ok(d)
                    }
                })
                .map_err(|m| loc.err(None, "sync_lease", m))?,
        };
        let sync_concurrency = raw.sync_concurrency.unwrap_or(8);
        if !(1..=256).contains(&sync_concurrency) {
            return Err(loc.err(None, "sync_concurrency", "must be between 1 and 256"));
        }
        let session_ttl = match raw.session_ttl {
            None => Duration::from_secs(12 * 3600),
            Some(v) => parse_duration(&v).map_err(|m| loc.err(None, "session_ttl", m))?,
        };
        let history_retention = match raw.history_retention {
            None => Duration::from_secs(90 * 86_400),
            Some(v) => parse_duration(&v).map_err(|m| loc.err(None, "history_retention", m))?,
        };
        let stopped_days = raw.stopped_days.unwrap_or(30);
        if !(1..=3650).contains(&stopped_days) {
            return Err(loc.err(None, "stopped_days", "must be between 1 and 3650"));
        }
        let audit_anchor = match raw.audit_anchor.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(v) if v.starts_with("http://") || v.starts_with("https://") => {
                Some(AuditAnchor::Webhook(url::Url::parse(v).map_err(|e| {
                    loc.err(None, "audit_anchor", format!("not a URL: {e}"))
                })?))
            }
            Some(v) if v.contains("://") => {
                return Err(loc.err(None, "audit_anchor", "use a file path or an http(s):// URL"))
            }
            Some(v) => Some(AuditAnchor::File(PathBuf::from(v))),
        };
        let audit_anchor_interval = match &raw.audit_anchor_interval {
            None => Duration::from_secs(3600),
            Some(v) => parse_interval(v).map_err(|m| loc.err(None, "audit_anchor_interval", m))?,
        };
        let action_timeout = match &raw.action_timeout {
            None => Duration::from_secs(60),
            Some(v) => parse_interval(v).map_err(|m| loc.err(None, "action_timeout", m))?,
        };
        let dns_private = match raw.dns_address.as_deref() {
            None | Some("public") => false,
            Some("private") => true,
            Some(other) => {
                return Err(loc.err(
                    None,
                    "dns_address",
                    format!(
                        "{:?}: use \"public\" or \"private\"",
                        skyhold_core::clip(other, 40)
                    ),
                ))
            }
        };
        let owner_tag_keys = raw
            .owner_tag_keys
            .unwrap_or_else(skyhold_core::access::default_owner_tag_keys);
        for k in &owner_tag_keys {
            if k.is_empty() || k.len() > 128 || k.chars().any(char::is_control) {
                return Err(loc.err(
                    None,
                    "owner_tag_keys",
                    format!(
                        "{:?} is not a tag key (1-128 characters)",
                        skyhold_core::clip(k, 40)
                    ),
                ));
            }
        }
        let secure_cookies = match env("SKYHOLD_SECURE_COOKIES") {
            Some(v) => matches!(v.as_str(), "1" | "true" | "yes"),
            None => raw.secure_cookies.unwrap_or(false),
        };
        let public_url_src = env("SKYHOLD_PUBLIC_URL")
            .map(|v| (v, true))
            .or(raw.public_url.map(|v| (v, false)));
        let public_url = match public_url_src {
            None => None,
            Some((v, from_env)) => Some(parse_public_url(&v).map_err(|m| {
                if from_env {
                    env_err("SKYHOLD_PUBLIC_URL", m)
                } else {
                    loc.err(None, "public_url", m)
                }
            })?),
        };
        let (auth_local, raw_oidc, raw_proxy) = match raw.auth {
            Some(a) => (a.local.unwrap_or(true), a.oidc, a.proxy),
            None => (true, None, None),
        };
        let oidc = match raw_oidc {
            None => None,
            Some(o) => Some(parse_oidc(&loc, o, env)?),
        };

        let mut names = HashSet::new();
        let mut accounts = Vec::with_capacity(raw.accounts.len());
        for (i, a) in raw.accounts.into_iter().enumerate() {
            let at = Some(i);
            let name = AccountName::parse(&a.name).map_err(|m| loc.err(at, "name", m))?;
            if !names.insert(name.clone()) {
                return Err(loc.err(at, "name", format!("account {name} is defined twice")));
            }
            let provider = a.provider.unwrap_or_else(|| "aws".to_owned());
            if provider != "aws" {
                return Err(loc.err(
                    at,
                    "provider",
                    format!("unknown provider {provider:?}; supported: \"aws\""),
                ));
            }
            let (list, all_enabled_regions) = match a.regions {
                Some(RawRegions::List(l)) if !l.is_empty() => (l, false),
                Some(RawRegions::Word(w)) if w == ALL_ENABLED => (Vec::new(), true),
                Some(RawRegions::Word(w)) => {
                    return Err(loc.err(
                        at,
                        "regions",
                        format!("{w:?}: expected a list of regions or \"{ALL_ENABLED}\""),
                    ));
                }
                _ => {
                    return Err(loc.err(
                        at,
                        "regions",
                        "list at least one region, e.g. regions = [\"us-east-1\"], or regions = \"all-enabled\"",
                    ));
                }
            };
            let mut regions = Vec::new();
            for r in &list {
                validate_region(r).map_err(|m| loc.err(at, "regions", m))?;
                if !regions.contains(r) {
                    regions.push(r.clone());
                }
            }
            let account_interval = match &a.sync_interval {
                None => None,
                Some(v) => Some(parse_interval(v).map_err(|m| loc.err(at, "sync_interval", m))?),
            };
            let mut intervals = BTreeMap::new();
            for (k, v) in a.intervals.iter().flatten() {
                let kind = ResourceKind::parse(k).ok_or_else(|| {
                    loc.err(at, "intervals", format!("unknown kind {k:?} in intervals"))
                })?;
                let d =
                    parse_interval(v).map_err(|m| loc.err(at, "intervals", format!("{k}: {m}")))?;
                intervals.insert(kind, d);
            }
            let max_concurrency = a.max_concurrency.unwrap_or(4);
            if !(1..=64).contains(&max_concurrency) {
                return Err(loc.err(at, "max_concurrency", "must be between 1 and 64"));
            }
            let kinds = match &a.kinds {
                None => ResourceKind::ALL.to_vec(),
                Some(list) => {
                    let mut kinds = Vec::new();
                    for k in list {
                        let kind = ResourceKind::parse(k).ok_or_else(|| {
                            let known: Vec<&str> =
                                ResourceKind::ALL.iter().map(|k| k.as_str()).collect();
                            loc.err(
                                at,
                                "kinds",
                                format!("unknown kind {k:?}; known: {}", known.join(", ")),
                            )
                        })?;
                        if !kinds.contains(&kind) {
                            kinds.push(kind);
                        }
                    }
                    if kinds.is_empty() {
                        return Err(loc.err(
                            at,
                            "kinds",
                            "list at least one kind, or leave kinds out for all",
                        ));
                    }
                    kinds
                }
            };
            if let Some(u) = &a.endpoint_url {
                let ok = url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https"));
                if !ok {
                    return Err(loc.err(
                        at,
                        "endpoint_url",
                        format!("{u:?} is not an http(s) URL"),
                    ));
                }
            }
            let (base, mut summary) = match (&a.profile, &a.access_key_id, &a.access_key_id_env) {
                (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                    return Err(loc.err(
                        at,
                        "profile",
                        "give either profile or access keys, not both",
                    ));
                }
                (_, Some(_), Some(_)) => {
                    return Err(loc.err(
                        at,
                        "access_key_id_env",
                        "give access_key_id or access_key_id_env, not both",
                    ));
                }
                (Some(p), None, None) => (Credentials::Profile(p.clone()), format!("profile {p}")),
                (None, Some(ak), None) => {
                    let sk = a.secret_access_key.clone().ok_or_else(|| {
                        loc.err(
                            at,
                            "access_key_id",
                            "secret_access_key is required with access_key_id",
                        )
                    })?;
                    (
                        Credentials::Static {
                            access_key_id: ak.clone(),
                            secret_access_key: sk,
                        },
                        "static keys".to_owned(),
                    )
                }
                (None, None, Some(var)) => {
                    let sk_var = a.secret_access_key_env.clone().ok_or_else(|| {
                        loc.err(
                            at,
                            "access_key_id_env",
                            "secret_access_key_env is required with access_key_id_env",
                        )
                    })?;
                    let ak = env(var).ok_or_else(|| {
                        loc.err(
                            at,
                            "access_key_id_env",
                            format!("environment variable {var} is not set"),
                        )
                    })?;
                    let sk = env(&sk_var).ok_or_else(|| {
                        loc.err(
                            at,
                            "secret_access_key_env",
                            format!("environment variable {sk_var} is not set"),
                        )
                    })?;
                    (
                        Credentials::Static {
                            access_key_id: ak,
                            secret_access_key: Secret::new(sk),
                        },
                        format!("keys from ${var}"),
                    )
                }
                (None, None, None) => {
                    if a.secret_access_key.is_some() || a.secret_access_key_env.is_some() {
                        return Err(loc.err(
                            at,
                            "secret_access_key",
                            "needs access_key_id (or access_key_id_env)",
                        ));
                    }
                    (
                        Credentials::DefaultChain,
                        "default credential chain".to_owned(),
                    )
                }
            };
            let credentials = match &a.role_arn {
                None => {
                    if a.external_id.is_some() {
                        return Err(loc.err(at, "external_id", "external_id needs role_arn"));
                    }
                    base
                }
                Some(arn) => {
                    if !arn.starts_with("arn:") || !arn.contains(":role/") {
                        return Err(loc.err(
                            at,
                            "role_arn",
                            format!("{arn:?} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)"),
                        ));
                    }
                    let session_duration = match &a.session_duration {
                        None => None,
                        Some(v) => Some(
                            parse_duration(v).map_err(|m| loc.err(at, "session_duration", m))?,
                        ),
                    };
                    summary = format!("role {arn} assumed from {summary}");
                    Credentials::AssumeRole {
                        base: Box::new(base),
                        role_arn: arn.clone(),
                        external_id: a.external_id.clone(),
                        session_name: a
                            .session_name
                            .clone()
                            .unwrap_or_else(|| "skyhold".to_owned()),
                        session_duration,
                    }
                }
            };
            let mut aws = AwsAccount::new(credentials);
            aws.endpoint_url = a.endpoint_url.clone();
            if let Some(p) = a.page_size {
                if !(5..=1000).contains(&p) {
                    return Err(loc.err(at, "page_size", "must be between 5 and 1000"));
                }
                aws.page_size = p;
            }
            if let Some(m) = a.max_attempts {
                if !(1..=10).contains(&m) {
                    return Err(loc.err(at, "max_attempts", "must be between 1 and 10"));
                }
                aws.max_attempts = m;
            }
            for b in &a.browse_buckets {
                let ok = b == "*"
                    || ((3..=63).contains(&b.len())
                        && b.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-')
                        }));
                if !ok {
                    return Err(loc.err(
                        at,
                        "browse_buckets",
                        format!("{b:?} is not a bucket name (or \"*\" for all buckets)"),
                    ));
                }
            }
            let account_policies = match a.policies {
                None => Policies::default(),
                Some(p) => p.parse(false).map_err(|(key, m)| loc.err(at, key, m))?,
            };
            let discount = a.discount.unwrap_or(0.0);
            if !(0.0..1.0).contains(&discount) {
                return Err(loc.err(
                    at,
                    "discount",
                    "a fraction from 0 to below 1 (0.15: 15 % off list prices)",
                ));
            }
            accounts.push(AccountConfig {
                policies: account_policies,
                trust_keep_tag: a.trust_keep_tag,
                discount,
                name,
                browse_buckets: a.browse_buckets,
                restricted: a.restricted,
                provider,
                regions,
                all_enabled_regions,
                sync_interval: account_interval,
                intervals,
                max_concurrency,
                kinds,
                endpoint_url: a.endpoint_url,
                aws,
                auth_summary: summary,
            });
        }

        Ok(Config {
            listen,
            database_url,
            sync_interval,
            sync_jitter,
            sync_lease,
            sync_concurrency,
            sync_on_start: raw.sync_on_start.unwrap_or(true),
            secure_cookies,
            session_ttl,
            history_retention,
            stopped_days,
            owner_tag_keys,
            audit_anchor,
            audit_anchor_interval,
            action_timeout,
            dns_private,
            public_url,
            auth: AuthConfig {
                local: auth_local,
                proxy: match raw_proxy {
                    None => None,
                    Some(p) => Some(parse_proxy(p).map_err(|(key, m)| loc.err(None, key, m))?),
                },
                oidc,
            },
            accounts,
            policies: match raw.policies {
                None => Policies::default(),
                Some(p) => p.parse(true).map_err(|(key, m)| loc.err(None, key, m))?,
            },
            prices: raw
                .prices
                .into_iter()
                .enumerate()
                .map(|(i, p)| {
                    let key = |k: &str| format!("prices[{i}].{k}");
                    let product =
                        skyhold_core::prices::Product::parse(&p.product).ok_or_else(|| {
                            loc.err(
                                None,
                                &key("product"),
                                format!(
                                    "one of {}",
                                    skyhold_core::prices::Product::ALL
                                        .map(|p| p.as_str())
                                        .join(", ")
                                ),
                            )
                        })?;
                    skyhold_core::ids::validate_region(&p.region)
                        .map_err(|m| loc.err(None, &key("region"), m.to_string()))?;
                    if !(p.usd.is_finite() && p.usd >= 0.0) {
                        return Err(loc.err(None, &key("usd"), "a price in USD, 0 or more"));
                    }
                    Ok(PriceOverride {
                        product,
                        region: p.region,
                        rtype: p.rtype,
                        usd: p.usd,
                    })
                })
                .collect::<Result<_, ConfigError>>()?,
            notifications: match raw.notifications {
                None => Notifications::default(),
                Some(n) => n.parse(env).map_err(|(key, m)| loc.err(None, &key, m))?,
            },
        })
    }

    pub fn account(&self, name: &AccountName) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| &a.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse(src: &str) -> Result<Config, ConfigError> {
        Config::parse(Some(Path::new("sk.toml")), src, &no_env)
    }

    #[test]
    fn defaults_without_a_file() {
        let c = Config::parse(None, "", &no_env).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.sync_interval, Duration::from_secs(300));
    }

    #[test]
    fn env_overrides_the_file() {
        let env = |k: &str| match k {
            "SKYHOLD_LISTEN" => Some("127.0.0.1:9999".to_owned()),
            "SKYHOLD_DATABASE_URL" => Some("postgres://x@127.0.0.1/db".to_owned()),
            _ => None,
        };
        let c = Config::parse(
            None,
            "listen = \"127.0.0.1:1\"\nsync_interval = \"1m\"\n",
            &env,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert!(c.database_url.starts_with("postgres://"));
        assert_eq!(c.sync_interval, Duration::from_secs(60));
    }

    #[test]
    fn accounts_and_credentials() {
        let c = parse(
            r#"
[[accounts]]
name = "prod"
regions = ["us-east-1", "eu-west-1"]
role_arn = "arn:aws:iam::111111111111:role/skyhold"
external_id = "s3cret"
profile = "base"

[[accounts]]
name = "dev"
regions = ["us-east-1"]
access_key_id = "AKIA"
secret_access_key = "hush"
"#,
        )
        .unwrap();
        assert_eq!(c.accounts.len(), 2);
        assert!(c.accounts[0].auth_summary.contains("role"));
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("s3cret") && !dbg.contains("hush"),
            "secret in Debug output"
        );
    }

    #[test]
    fn policies_cap_expiry_globally_and_per_account() {
        let c = parse(
            "[policies.expiry]\nmax_ttl = \"30d\"\n\n[[accounts]]\nname = \"a\"\nregions = [\"us-east-1\"]\n\
             [accounts.policies.expiry]\nmax_ttl = \"7d\"\n\n[[accounts]]\nname = \"b\"\nregions = [\"us-east-1\"]\n",
        )
        .unwrap();
        assert_eq!(c.policies.max_ttl_ms, Some(30 * 86_400_000));
        assert_eq!(c.accounts[0].policies.max_ttl_ms, Some(7 * 86_400_000));
        assert_eq!(c.accounts[1].policies.max_ttl_ms, None);
        assert_eq!(parse("").unwrap().policies, Policies::default());
        let e = parse("[policies.expiry]\nmax_ttl = \"soon\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("policies.expiry.max_ttl"), "{e}");
        let e = parse("[policies.expiry]\nmax_ttl = \"0d\"\n").unwrap_err();
        assert!(e.message.contains("positive"), "{e}");
        // Idle rules parse; unknown keys and bad values are refused, named.
        let c = parse("[policies.idle]\ncpu_below = 5.0\nfor = \"2h\"\nwarn_before = \"30m\"\n")
            .unwrap();
        let idle = c.policies.idle.effective().unwrap();
        assert_eq!(
            (idle.cpu_below, idle.for_ms, idle.warn_before_ms),
            (5.0, 7_200_000, 1_800_000)
        );
        let e = parse("[policies.idle]\ncpu_under = 5.0\n").unwrap_err();
        assert!(e.message.contains("cpu_under"), "{e}");
        let e = parse("[policies.idle]\ncpu_below = 500.0\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("policies.idle.cpu_below"), "{e}");
        let e = parse("[policies.idle]\ncpu_below = 5.0\naction = \"terminate\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("policies.idle.action"), "{e}");
        let e = parse("[[accounts]]\nname = \"a\"\nregions = [\"us-east-1\"]\ndiscount = 1.5\n")
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("accounts[0].discount"), "{e}");
        let e = parse("[[prices]]\nproduct = \"gold-bar\"\nregion = \"us-east-1\"\nusd = 1.0\n")
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("prices[0].product"), "{e}");
        let e = parse("[[accounts]]\nname = \"a\"\nregions = [\"us-east-1\"]\n[accounts.policies.expiry]\nmax_ttl = \"x\"\n")
            .unwrap_err();
        assert_eq!(
            e.key.as_deref(),
            Some("accounts[0].policies.expiry.max_ttl"),
            "{e}"
        );
    }

    #[test]
    fn the_expiry_ladder_is_configured_globally_and_per_account() {
        use skyhold_core::policy::{ExpiryAction, Grace, Mode};
        let c = parse(
            "[policies]\ninterval = \"30s\"\n[policies.expiry]\nwarn = [\"24h\", \"1h\"]\naction = \"stop\"\n\
             terminate_after = \"7d\"\nsnapshot_before_terminate = false\nmode = \"dry-run\"\nmax_actions_per_pass = 5\n\n\
             [[accounts]]\nname = \"a\"\nregions = [\"us-east-1\"]\n[accounts.policies.expiry]\nterminate_after = \"never\"\n",
        )
        .unwrap();
        let g = &c.policies.expiry;
        assert_eq!(
            c.policies.interval,
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(g.warn_ms, Some(vec![86_400_000, 3_600_000]));
        assert_eq!(g.action, Some(ExpiryAction::Stop));
        assert_eq!(g.terminate_after, Some(Grace::After(7 * 86_400_000)));
        assert_eq!(g.snapshot_before_terminate, Some(false));
        assert_eq!(g.mode, Some(Mode::DryRun));
        assert_eq!(g.max_actions_per_pass, Some(5));
        assert_eq!(
            c.accounts[0].policies.expiry.terminate_after,
            Some(Grace::Never)
        );
        assert_eq!(
            parse("[policies]\ninterval = \"off\"\n")
                .unwrap()
                .policies
                .interval,
            None
        );
        for (text, key) in [
            ("[policies.expiry]\nwarn = [\"soon\"]\n", "policies.expiry.warn"),
            ("[policies.expiry]\naction = \"explode\"\n", "policies.expiry.action"),
            ("[policies.expiry]\nmode = \"maybe\"\n", "policies.expiry.mode"),
            ("[policies.expiry]\nmax_actions_per_pass = 0\n", "policies.expiry.max_actions_per_pass"),
            ("[policies]\ninterval = \"10ms\"\n", "policies.interval"),
            (
                "[[accounts]]\nname = \"a\"\nregions = [\"us-east-1\"]\n[accounts.policies]\ninterval = \"1m\"\n",
                "accounts[0].policies.interval",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{text}: {e}");
        }
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = parse("listen = \"127.0.0.1:8080\"\nsync_intervall = \"5m\"\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("sync_intervall"), "{e}");
        assert!(e.to_string().starts_with("sk.toml, line 2"), "{e}");

        let e = parse("sync_interval = 5\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(1), Some("sync_interval")));

        let e = parse("[[accounts]]\nname = \"a\"\nregions = [\"us-east-1\"]\n\n[[accounts]]\nname = \"b\"\nregions = [\"Not A Region\"]\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(7), Some("accounts[1].regions"))
        );

        let e = parse("sync_interval = \"soon\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sync_interval"));

        let e =
            parse("[[accounts]]\nname = \"a\"\nregions = [\"us-east-1\"]\nprovider = \"gcp\"\n")
                .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(4), Some("accounts[0].provider"))
        );

        let e =
            parse("[[accounts]]\nname = \"a\"\nregions = [\"us-east-1\"]\naccess_key_id = \"x\"\n")
                .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("accounts[0].access_key_id"));

        let e = parse("listen = [\n").unwrap_err();
        assert!(e.line.is_some());
    }

    #[test]
    fn kinds_default_to_all_and_are_checked() {
        let c = parse("[[accounts]]\nname = \"a\"\nregions = [\"x-1\"]\n").unwrap();
        assert_eq!(c.accounts[0].kinds, ResourceKind::ALL.to_vec());
        let c = parse(
            "[[accounts]]\nname = \"a\"\nregions = [\"x-1\"]\nkinds = [\"instance\", \"vpc\"]\n",
        )
        .unwrap();
        assert_eq!(
            c.accounts[0].kinds,
            vec![ResourceKind::Instance, ResourceKind::Vpc]
        );
        let e = parse("[[accounts]]\nname = \"a\"\nregions = [\"x-1\"]\nkinds = [\"buckets\"]\n")
            .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(4), Some("accounts[0].kinds"))
        );
    }

    #[test]
    fn intervals_jitter_and_concurrency() {
        let c = parse(
            "sync_interval = \"10m\"\nsync_jitter = 0.2\nsync_lease = \"30s\"\n\
             [[accounts]]\nname = \"a\"\nregions = [\"x-1\"]\nsync_interval = \"20m\"\n\
             max_concurrency = 2\nintervals = { dns_record = \"1h\", bucket = \"30m\" }\n\
             [[accounts]]\nname = \"b\"\nregions = [\"x-1\"]\n",
        )
        .unwrap();
        assert_eq!(c.sync_jitter, 0.2);
        assert_eq!(c.sync_lease, Duration::from_secs(30));
        let (a, b) = (&c.accounts[0], &c.accounts[1]);
        let g = c.sync_interval;
        assert_eq!(
            a.interval_for(ResourceKind::DnsRecord, g),
            Duration::from_secs(3600)
        );
        assert_eq!(
            a.interval_for(ResourceKind::Bucket, g),
            Duration::from_secs(1800)
        );
        assert_eq!(
            a.interval_for(ResourceKind::Vpc, g),
            Duration::from_secs(1200)
        );
        assert_eq!(
            b.interval_for(ResourceKind::Vpc, g),
            Duration::from_secs(600)
        );
        assert_eq!((a.max_concurrency, b.max_concurrency), (2, 4));

        // The subtable form is the same TOML.
        let c = parse("[[accounts]]\nname = \"a\"\nregions = [\"x-1\"]\n[accounts.intervals]\nqueue = \"2m\"\n").unwrap();
        assert_eq!(
            c.accounts[0].interval_for(ResourceKind::Queue, Duration::ZERO),
            Duration::from_secs(120)
        );

        let e = parse(
            "[[accounts]]\nname = \"a\"\nregions = [\"x-1\"]\nintervals = { buckets = \"1h\" }\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(4), Some("accounts[0].intervals"))
        );
        assert!(e.message.contains("buckets"), "{e}");
        let e = parse(
            "[[accounts]]\nname = \"a\"\nregions = [\"x-1\"]\nintervals = { bucket = \"soon\" }\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("accounts[0].intervals"));
        let e =
            parse("[[accounts]]\nname = \"a\"\nregions = [\"x-1\"]\nsync_interval = \"100ms\"\n")
                .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(4), Some("accounts[0].sync_interval"))
        );
        let e = parse("[[accounts]]\nname = \"a\"\nregions = [\"x-1\"]\nmax_concurrency = 0\n")
            .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(4), Some("accounts[0].max_concurrency"))
        );
        let e = parse("sync_jitter = 1.5\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(1), Some("sync_jitter")));
        let e = parse("sync_lease = \"0s\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sync_lease"));
    }

    #[test]
    fn regions_are_a_list_or_all_enabled() {
        let c = parse("[[accounts]]\nname = \"a\"\nregions = \"all-enabled\"\n").unwrap();
        assert!(c.accounts[0].all_enabled_regions);
        assert!(c.accounts[0].regions.is_empty());
        let c = parse("[[accounts]]\nname = \"a\"\nregions = [\"x-1\", \"x-1\"]\n").unwrap();
        assert!(!c.accounts[0].all_enabled_regions);
        assert_eq!(c.accounts[0].regions, vec!["x-1".to_owned()]);
        let e = parse("[[accounts]]\nname = \"a\"\nregions = \"all\"\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(3), Some("accounts[0].regions"))
        );
        assert!(e.message.contains("all-enabled"), "{e}");
        let e = parse("[[accounts]]\nname = \"a\"\nregions = []\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("accounts[0].regions"));
        let e = parse("[[accounts]]\nname = \"a\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("accounts[0].regions"));
        let e = parse("[[accounts]]\nname = \"a\"\nregions = 5\n").unwrap_err();
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn the_example_configuration_is_valid() {
        let src = include_str!("../../../skyhold.example.toml");
        let env = |k: &str| k.starts_with("LAB_AWS_").then(|| "x".to_owned());
        let c = Config::parse(Some(Path::new("skyhold.example.toml")), src, &env).unwrap();
        let team = c
            .accounts
            .iter()
            .find(|a| a.name.as_str() == "team-a")
            .unwrap();
        assert!(team.all_enabled_regions);
        assert_eq!(c.accounts.len(), 3);
        assert_eq!(c.stopped_days, 30);
        assert_eq!(
            team.interval_for(ResourceKind::DnsRecord, c.sync_interval),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn oidc_settings_are_checked() {
        let base = "[auth.oidc]\nissuer = \"https://id.example.com\"\nclient_id = \"sky\"\n";
        let c = parse(&format!("{base}client_secret = \"hush\"\n")).unwrap();
        let o = c.auth.oidc.as_ref().unwrap();
        assert_eq!(o.scopes, ["openid", "email", "profile"]);
        assert_eq!(o.default_role, Role::Viewer);
        assert!(!o.auto_create && o.groups_claim.is_none() && o.redirect_url.is_none());
        assert_eq!(o.display_name, "Sign in with OIDC");
        assert!(!format!("{c:?}").contains("hush"), "secret in Debug output");

        let env = |k: &str| (k == "OIDC_SECRET").then(|| "from-env".to_owned());
        let c = Config::parse(
            None,
            &format!(
                "public_url = \"https://sky.example.com/\"\n{base}client_secret_env = \"OIDC_SECRET\"\n\
                 groups_claim = \"groups\"\nrole_mapping = {{ ops = \"member\", root = \"admin\" }}\n\
                 default_role = \"auditor\"\nauto_create = true\nscopes = [\"openid\", \"groups\"]\n"
            ),
            &env,
        )
        .unwrap();
        assert_eq!(c.public_url.as_deref(), Some("https://sky.example.com"));
        let o = c.auth.oidc.unwrap();
        assert_eq!(o.client_secret.expose(), "from-env");
        assert_eq!(o.role_mapping.get("root"), Some(&Role::Admin));
        assert_eq!(o.default_role, Role::Auditor);

        let cases: &[(&str, &str)] = &[
            ("", "auth.oidc.client_secret"),
            (
                "client_secret = \"a\"\nclient_secret_env = \"B\"\n",
                "auth.oidc.client_secret_env",
            ),
            (
                "client_secret_env = \"UNSET\"\n",
                "auth.oidc.client_secret_env",
            ),
            (
                "client_secret = \"a\"\nscopes = [\"email\"]\n",
                "auth.oidc.scopes",
            ),
            (
                "client_secret = \"a\"\nrole_mapping = { ops = \"member\" }\n",
                "auth.oidc.role_mapping",
            ),
            (
                "client_secret = \"a\"\ngroups_claim = \"g\"\nrole_mapping = { ops = \"boss\" }\n",
                "auth.oidc.role_mapping",
            ),
            (
                "client_secret = \"a\"\ndefault_role = \"root\"\n",
                "auth.oidc.default_role",
            ),
            (
                "client_secret = \"a\"\nredirect_url = \"https://sky.example.com/cb\"\n",
                "auth.oidc.redirect_url",
            ),
            (
                "client_secret = \"a\"\ndisplay_name = \"\"\n",
                "auth.oidc.display_name",
            ),
        ];
        for (extra, key) in cases {
            let e = parse(&format!("{base}{extra}")).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(*key), "{extra}: {e}");
            assert!(e.line.is_some(), "{e}");
        }
        let e = parse("[auth.oidc]\nclient_id = \"sky\"\nclient_secret = \"a\"\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(1), Some("auth.oidc.issuer"))
        );
        let e = parse("[auth.oidc]\nissuer = \"id.example.com\"\nclient_id = \"sky\"\nclient_secret = \"a\"\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(2), Some("auth.oidc.issuer"))
        );
        let e = parse(&format!(
            "{base}client_secret = \"a\"\ngroup_claim = \"g\"\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("group_claim"), "{e}");
        let e = parse("public_url = \"sky.example.com\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("public_url"));
    }

    #[test]
    fn duplicate_account_names_are_rejected() {
        let e = parse("[[accounts]]\nname = \"a\"\nregions = [\"x-1\"]\n[[accounts]]\nname = \"a\"\nregions = [\"x-1\"]\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("accounts[1].name"));
    }

    #[test]
    fn dashboard_and_bucket_settings_are_checked() {
        let c = parse("stopped_days = 14\n[[accounts]]\nname = \"a\"\nregions = [\"x-1\"]\nbrowse_buckets = [\"logs.example-1\"]\n").unwrap();
        assert_eq!(c.stopped_days, 14);
        assert!(c.accounts[0].may_browse("logs.example-1"));
        assert!(!c.accounts[0].may_browse("other"));
        let c =
            parse("[[accounts]]\nname = \"a\"\nregions = [\"x-1\"]\nbrowse_buckets = [\"*\"]\n")
                .unwrap();
        assert_eq!(c.stopped_days, 30);
        assert!(c.accounts[0].may_browse("anything"));
        let e = parse("stopped_days = 0\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(1), Some("stopped_days")));
        let e = parse(
            "[[accounts]]\nname = \"a\"\nregions = [\"x-1\"]\nbrowse_buckets = [\"Bad_Name\"]\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(4), Some("accounts[0].browse_buckets"))
        );
    }
}
