//! `[policies]`, globally and per account (`[accounts.policies]`): what
//! the policy reconcilers and the expiry rules read: how often the passes
//! run (`interval`, global only), the expiry cap (`[policies.expiry]
//! max_ttl`) and the expiry ladder's rules (the rest of
//! `[policies.expiry]`, see [`skyhold_core::policy`]).

use serde::Deserialize;
use skyhold_core::idle::IdleRules;
use skyhold_core::policy::{ExpiryRules, Mode, RawRules};
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicies {
    interval: Option<String>,
    expiry: Option<RawExpiry>,
    idle: Option<RawIdle>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdle {
    cpu_below: Option<f64>,
    network_below_bytes: Option<f64>,
    #[serde(rename = "for")]
    for_: Option<String>,
    action: Option<String>,
    warn_before: Option<String>,
    mode: Option<String>,
    max_actions_per_pass: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpiry {
    max_ttl: Option<String>,
    warn: Option<Vec<String>>,
    action: Option<String>,
    terminate_after: Option<String>,
    snapshot_before_terminate: Option<bool>,
    mode: Option<String>,
    max_actions_per_pass: Option<u32>,
}

/// How often the policy passes run when `interval` is not set.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// The policies of one scope (global or an account); `None` fields are
/// not set there (an account's unset field falls back to the global one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies {
    /// How far from now an expiry may be set (milliseconds).
    pub max_ttl_ms: Option<i64>,
    /// How often the passes run; `None`: never on a timer (`"off"`), on
    /// demand only. Global only.
    pub interval: Option<Duration>,
    /// The expiry ladder's rules set at this level.
    pub expiry: ExpiryRules,
    /// The idle policy's rules set at this level (off unless some level
    /// sets `cpu_below`).
    pub idle: IdleRules,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            max_ttl_ms: None,
            interval: Some(DEFAULT_INTERVAL),
            expiry: ExpiryRules::default(),
            idle: IdleRules::default(),
        }
    }
}

/// The configuration key of an expiry rule's field.
fn expiry_key(field: &str) -> &'static str {
    match field {
        "warn" => "policies.expiry.warn",
        "action" => "policies.expiry.action",
        "terminate_after" => "policies.expiry.terminate_after",
        "mode" => "policies.expiry.mode",
        "max_actions_per_pass" => "policies.expiry.max_actions_per_pass",
        _ => "policies.expiry",
    }
}

impl RawPolicies {
    /// Validated, or the key (under `policies.`) and what is wrong.
    /// `global`: the top-level table (an account's has no `interval`).
    pub(super) fn parse(self, global: bool) -> Result<Policies, (&'static str, String)> {
        let mut out = Policies::default();
        if let Some(v) = self.interval {
            if !global {
                return Err((
                    "policies.interval",
                    "set the passes' interval globally, in [policies]".into(),
                ));
            }
            out.interval = if v.trim() == "off" {
                None
            } else {
                let ms = skyhold_core::search::parse_duration(v.trim())
                    .map_err(|m| ("policies.interval", m))?;
                if ms < 1000 {
                    return Err((
                        "policies.interval",
                        "at least 1s (or \"off\": on demand only)".into(),
                    ));
                }
                Some(Duration::from_millis(ms as u64))
            };
        }
        if let Some(e) = self.expiry {
            if let Some(v) = e.max_ttl {
                let ms = skyhold_core::search::parse_duration(v.trim())
                    .map_err(|m| ("policies.expiry.max_ttl", m))?;
                if ms <= 0 {
                    return Err(("policies.expiry.max_ttl", "must be positive".into()));
                }
                out.max_ttl_ms = Some(ms);
            }
            out.expiry = RawRules {
                warn: e.warn,
                action: e.action,
                terminate_after: e.terminate_after,
                snapshot_before_terminate: e.snapshot_before_terminate,
                mode: e.mode,
                max_actions_per_pass: e.max_actions_per_pass,
            }
            .parse()
            .map_err(|(field, m)| (expiry_key(field), m))?;
        }
        if let Some(i) = self.idle {
            out.idle = i.parse()?;
        }
        Ok(out)
    }
}

impl RawIdle {
    fn parse(self) -> Result<IdleRules, (&'static str, String)> {
        let duration = |key: &'static str, v: &str| {
            skyhold_core::search::parse_duration(v.trim()).map_err(|m| (key, m))
        };
        if let Some(a) = &self.action {
            if a.trim() != "stop" {
                return Err(("policies.idle.action", "stop (the only idle action)".into()));
            }
        }
        let rules = IdleRules {
            cpu_below: self.cpu_below,
            network_below_bytes: self.network_below_bytes,
            for_ms: self
                .for_
                .map(|v| duration("policies.idle.for", &v))
                .transpose()?,
            warn_before_ms: self
                .warn_before
                .map(|v| duration("policies.idle.warn_before", &v))
                .transpose()?,
            mode: match self.mode {
                None => None,
                Some(m) => Some(Mode::parse(m.trim()).ok_or((
                    "policies.idle.mode",
                    format!("{:?}: enforce or dry-run", skyhold_core::clip(&m, 32)),
                ))?),
            },
            max_actions_per_pass: self.max_actions_per_pass,
        };
        rules.validate().map_err(|(field, m)| {
            (
                match field {
                    "cpu_below" => "policies.idle.cpu_below",
                    "network_below_bytes" => "policies.idle.network_below_bytes",
                    "for" => "policies.idle.for",
                    "warn_before" => "policies.idle.warn_before",
                    "max_actions_per_pass" => "policies.idle.max_actions_per_pass",
                    _ => "policies.idle",
                },
                m,
            )
        })?;
        Ok(rules)
    }
}
