//! The application layer: the domain functions that the web pages, the JSON
//! API, the CLI (through the API) and the background jobs all call, and the
//! one authorization function every one of them goes through. One module per
//! domain area:
//!
//! - `access`: who is asking (`Actor`), what they ask (`Action`) on which
//!   `Object`, and the one check (`decide`, applied by `App::authorize`);
//! - `identity`: users, logins, sessions, API tokens, profiles;
//! - `oidc`: sign-in through an OpenID Connect provider;
//! - `grants`: groups, members and grants;
//! - `actions`: the action pipeline (power actions, owner changes);
//! - `audit`: recording, reading, exporting and verifying the audit log;
//! - `inventory`: listings, details, the dashboard, changes, sync, refresh;
//! - `relations`: how a detail page finds a resource's relatives;
//! - `ondemand`: live reads through a provider (templates, alarm history,
//!   bucket objects);
//! - `notify`: delivering the notification outbox (mail, webhooks);
//! - `idle`: the idle policy's evaluation (metrics in batches, verdicts);
//! - `policies`: the expiry and idle policies' passes (the ladder as a reconciler),
//!   its preview, held passes and their confirmation;
//! - `spend`: usage and spend from the ledger and prices, the month's
//!   projection;
//! - `budgets`: money budgets (defaults, overrides, launch checks, the
//!   80 % and 100 % warnings);
//! - `views`: saved views.

mod access;
mod actions;
mod audit;
mod blueprints;
mod budgets;
mod dns;
mod expiry;
mod grants;
mod identity;
mod idle;
mod inventory;
mod launches;
mod notify;
mod oidc;
mod ondemand;
mod policies;
mod quotas;
mod relations;
mod spend;
mod views;

pub use access::{
    decide, level_on, visibility, Action, Actor, AuthVia, Decision, Held, Object, Policy,
    RequestCtx,
};
pub use actions::{display_name, Op};
pub use audit::{verify_lines, verify_store, AuditFilter};
pub use blueprints::parse_ttl;
pub use budgets::{BudgetStatus, BudgetView};
pub use dns::DnsPass;
pub use expiry::{parse_request as parse_expiry_request, ExtendOffer, KeepStatus};
pub use identity::{parse_ssh_key, Profile, UserChange, UserView};
pub use inventory::{parse_since, AccountView, Dashboard, ResourceDetail};
pub use launches::{Commands, LaunchPreview, SshTarget};
pub use notify::{signature as webhook_signature, DeliveryPass, DELIVERY_HEADER, SIGNATURE_HEADER};
pub use oidc::{Oidc, OidcCallback, OidcStart};
pub use policies::{
    Cause, Exempt, PolicyDecision, Preview, PreviewCount, EXPIRY, IDLE, PREVIEW_HORIZON_MS,
};
pub use spend::{month_start, spend_csv, SpendQuery, SpendReport, SpendRow, Unpriced};

use crate::auth::LoginLimiter;
use crate::config::Config;
use crate::sync::SyncEngine;
use skyhold_store::Store;
use std::sync::Arc;
use std::time::Duration;

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
    policy: Policy,
    oidc: Option<Oidc>,
    /// The group-commit writer of standalone audit entries (`record`);
    /// `None` outside a runtime (entries are then appended one by one).
    audit_queue: Option<tokio::sync::mpsc::UnboundedSender<audit::QueuedEntry>>,
    /// The clock deadlines are read from (tests move it forward).
    pub clock: skyhold_core::Clock,
    /// Prices imported from offer files (`skyhold prices import`), reread
    /// by `reload_prices`.
    imported_prices: std::sync::RwLock<Arc<skyhold_core::prices::PriceTable>>,
}

impl App {
    pub fn new(store: Store, config: Arc<Config>, sync: Arc<SyncEngine>) -> Self {
        Self {
            audit_queue: audit::spawn_audit_writer(store.clone()),
            store,
            policy: Policy::from_config(&config),
            oidc: config
                .auth
                .oidc
                .as_ref()
                .map(|o| Oidc::new(o, config.public_url.as_deref(), config.secure_cookies)),
            config,
            sync,
            limiter: LoginLimiter::new(),
            clock: skyhold_core::Clock::default(),
            imported_prices: Default::default(),
        }
    }

    /// Now, as deadlines read it.
    pub fn now(&self) -> skyhold_core::Millis {
        self.clock.now()
    }
}
