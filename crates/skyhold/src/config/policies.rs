//! `[policies]`, globally and per account (`[accounts.policies]`): what
//! the policy reconcilers and the expiry rules read. So far the expiry
//! cap: `[policies.expiry] max_ttl`.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicies {
    expiry: Option<RawExpiry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpiry {
    max_ttl: Option<String>,
}

/// The policies of one scope (global or an account); `None` fields are
/// not set there (an account's unset field falls back to the global one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    /// How far from now an expiry may be set (milliseconds).
    pub max_ttl_ms: Option<i64>,
}

impl RawPolicies {
    /// Validated, or the key (under `policies.`) and what is wrong.
    pub(super) fn parse(self) -> Result<Policies, (&'static str, String)> {
        let mut out = Policies::default();
        if let Some(e) = self.expiry {
            if let Some(v) = e.max_ttl {
                let ms = skyhold_core::search::parse_duration(v.trim())
                    .map_err(|m| ("policies.expiry.max_ttl", m))?;
                if ms <= 0 {
                    return Err(("policies.expiry.max_ttl", "must be positive".into()));
                }
                out.max_ttl_ms = Some(ms);
            }
        }
        Ok(out)
    }
}
