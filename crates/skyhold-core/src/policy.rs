//! The rules of the policy reconcilers as configured at each level
//! (global `[policies.expiry]`, an account's, a blueprint's), partial at
//! each and merged most specific first, and the effective rules one
//! resource gets. Pure: parsing of durations is the caller's
//! (config, API), this module takes milliseconds.

use crate::ladder::{AtExpiry, Ladder};
use serde::{Deserialize, Serialize};

/// Whether a policy acts or only says what it would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    Enforce,
    DryRun,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::DryRun => "dry-run",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enforce" => Some(Mode::Enforce),
            "dry-run" => Some(Mode::DryRun),
            _ => None,
        }
    }
}

/// What happens when an expiry passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpiryAction {
    /// Stop what can stop; delete after the grace period.
    Stop,
    /// Delete at expiry (no grace period).
    Terminate,
    /// Nothing at expiry; delete after the grace period.
    None,
}

impl ExpiryAction {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stop" => Some(ExpiryAction::Stop),
            "terminate" => Some(ExpiryAction::Terminate),
            "none" => Some(ExpiryAction::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryAction::Stop => "stop",
            ExpiryAction::Terminate => "terminate",
            ExpiryAction::None => "none",
        }
    }
}

/// The grace period after expiry before deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grace {
    After(i64),
    Never,
}

/// The expiry rules one level sets; `None`: not set here (the next
/// level's, or the default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpiryRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_ms: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ExpiryAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminate_after: Option<Grace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_before_terminate: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_actions_per_pass: Option<u32>,
}

/// The defaults: warn a day and an hour before, stop at expiry, delete a
/// week later after a final snapshot, enforce, at most 20 stops and
/// deletions a pass.
pub const DEFAULT_WARN_MS: [i64; 2] = [24 * 3_600_000, 3_600_000];
pub const DEFAULT_GRACE_MS: i64 = 7 * 24 * 3_600_000;
pub const DEFAULT_MAX_ACTIONS: u32 = 20;

/// The rules one resource gets, every field decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effective {
    pub warn_ms: Vec<i64>,
    pub action: ExpiryAction,
    pub terminate_after: Grace,
    pub snapshot_before_terminate: bool,
    pub mode: Mode,
    pub max_actions_per_pass: u32,
}

impl ExpiryRules {
    pub fn is_empty(&self) -> bool {
        *self == ExpiryRules::default()
    }

    /// `self` where it sets a field, else `under`'s.
    pub fn over(&self, under: &ExpiryRules) -> ExpiryRules {
        ExpiryRules {
            warn_ms: self.warn_ms.clone().or_else(|| under.warn_ms.clone()),
            action: self.action.or(under.action),
            terminate_after: self.terminate_after.or(under.terminate_after),
            snapshot_before_terminate: self
                .snapshot_before_terminate
                .or(under.snapshot_before_terminate),
            mode: self.mode.or(under.mode),
            max_actions_per_pass: self.max_actions_per_pass.or(under.max_actions_per_pass),
        }
    }

    /// Every unset field at its default.
    pub fn effective(&self) -> Effective {
        Effective {
            warn_ms: self
                .warn_ms
                .clone()
                .unwrap_or_else(|| DEFAULT_WARN_MS.to_vec()),
            action: self.action.unwrap_or(ExpiryAction::Stop),
            terminate_after: self
                .terminate_after
                .unwrap_or(Grace::After(DEFAULT_GRACE_MS)),
            snapshot_before_terminate: self.snapshot_before_terminate.unwrap_or(true),
            mode: self.mode.unwrap_or_default(),
            max_actions_per_pass: self.max_actions_per_pass.unwrap_or(DEFAULT_MAX_ACTIONS),
        }
    }

    /// Checks what a level sets (`field` names the offending one).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(w) = &self.warn_ms {
            if w.iter().any(|ms| *ms <= 0) {
                return Err(("warn", "each warning point must be positive".into()));
            }
            if w.len() > 10 {
                return Err(("warn", "at most 10 warning points".into()));
            }
        }
        if matches!(self.terminate_after, Some(Grace::After(ms)) if ms < 0) {
            return Err((
                "terminate_after",
                "a grace period cannot be negative".into(),
            ));
        }
        if self.max_actions_per_pass == Some(0) {
            return Err((
                "max_actions_per_pass",
                "must be at least 1 (use mode = \"dry-run\" to act on none)".into(),
            ));
        }
        Ok(())
    }
}

/// Expiry rules as written (config, API): durations as text (`"24h"`),
/// `terminate_after = "never"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminate_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_before_terminate: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_actions_per_pass: Option<u32>,
}

impl ExpiryRules {
    /// As written (durations as text): what the API shows.
    pub fn to_raw(&self) -> RawRules {
        let text = crate::search::format_duration;
        RawRules {
            warn: self
                .warn_ms
                .as_ref()
                .map(|w| w.iter().map(|ms| text(*ms)).collect()),
            action: self.action.map(|a| a.as_str().to_owned()),
            terminate_after: self.terminate_after.map(|g| match g {
                Grace::After(ms) => text(ms),
                Grace::Never => "never".to_owned(),
            }),
            snapshot_before_terminate: self.snapshot_before_terminate,
            mode: self.mode.map(|m| m.as_str().to_owned()),
            max_actions_per_pass: self.max_actions_per_pass,
        }
    }
}

impl RawRules {
    /// Validated, or the field and what is wrong with it.
    pub fn parse(self) -> Result<ExpiryRules, (&'static str, String)> {
        let duration = |field: &'static str, v: &str| {
            crate::search::parse_duration(v.trim()).map_err(|m| (field, m))
        };
        let rules = ExpiryRules {
            warn_ms: match self.warn {
                None => None,
                Some(w) => Some(
                    w.iter()
                        .map(|v| duration("warn", v))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            },
            action: match self.action {
                None => None,
                Some(a) => Some(ExpiryAction::parse(a.trim()).ok_or((
                    "action",
                    format!("{:?}: stop, terminate or none", crate::clip(&a, 32)),
                ))?),
            },
            terminate_after: match self.terminate_after {
                None => None,
                Some(v) if v.trim() == "never" => Some(Grace::Never),
                Some(v) => Some(Grace::After(duration("terminate_after", &v)?)),
            },
            snapshot_before_terminate: self.snapshot_before_terminate,
            mode: match self.mode {
                None => None,
                Some(m) => Some(Mode::parse(m.trim()).ok_or((
                    "mode",
                    format!("{:?}: enforce or dry-run", crate::clip(&m, 32)),
                ))?),
            },
            max_actions_per_pass: self.max_actions_per_pass,
        };
        rules.validate()?;
        Ok(rules)
    }
}

impl Effective {
    /// The ladder these rules schedule.
    pub fn ladder(&self) -> Ladder {
        let (at_expiry, terminate_after_ms) = match (self.action, self.terminate_after) {
            (ExpiryAction::Terminate, _) => (AtExpiry::Nothing, Some(0)),
            (ExpiryAction::Stop, Grace::After(ms)) => (AtExpiry::Stop, Some(ms)),
            (ExpiryAction::Stop, Grace::Never) => (AtExpiry::Stop, None),
            (ExpiryAction::None, Grace::After(ms)) => (AtExpiry::Nothing, Some(ms)),
            (ExpiryAction::None, Grace::Never) => (AtExpiry::Nothing, None),
        };
        Ladder {
            warn_ms: self.warn_ms.clone(),
            at_expiry,
            terminate_after_ms,
            snapshot_before_terminate: self.snapshot_before_terminate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_level_wins_field_by_field() {
        let global = ExpiryRules {
            warn_ms: Some(vec![1000]),
            action: Some(ExpiryAction::Stop),
            max_actions_per_pass: Some(5),
            ..Default::default()
        };
        let account = ExpiryRules {
            terminate_after: Some(Grace::Never),
            mode: Some(Mode::DryRun),
            ..Default::default()
        };
        let blueprint = ExpiryRules {
            warn_ms: Some(vec![60_000]),
            ..Default::default()
        };
        let e = blueprint.over(&account.over(&global)).effective();
        assert_eq!(e.warn_ms, vec![60_000]);
        assert_eq!(e.action, ExpiryAction::Stop);
        assert_eq!(e.terminate_after, Grace::Never);
        assert_eq!(e.mode, Mode::DryRun);
        assert_eq!(e.max_actions_per_pass, 5);
        assert!(e.snapshot_before_terminate, "the default");
        assert_eq!(e.ladder().terminate_after_ms, None);
        // Nothing set: the defaults.
        let d = ExpiryRules::default().effective();
        assert_eq!(d.warn_ms, DEFAULT_WARN_MS.to_vec());
        assert_eq!(d.ladder().terminate_after_ms, Some(DEFAULT_GRACE_MS));
        assert_eq!(d.mode, Mode::Enforce);
    }

    #[test]
    fn terminate_at_expiry_has_no_grace_period_and_no_stop() {
        let e = ExpiryRules {
            action: Some(ExpiryAction::Terminate),
            terminate_after: Some(Grace::After(5)),
            ..Default::default()
        }
        .effective();
        let l = e.ladder();
        assert_eq!(
            (l.at_expiry, l.terminate_after_ms),
            (AtExpiry::Nothing, Some(0))
        );
        assert!(ExpiryRules {
            max_actions_per_pass: Some(0),
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(ExpiryRules {
            warn_ms: Some(vec![0]),
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
