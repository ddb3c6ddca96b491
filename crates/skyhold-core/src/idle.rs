//! The idle policy's rules and verdicts, with no I/O. An instance is idle
//! when its average CPU (and, if set, its network traffic) stayed below
//! the thresholds over the whole window `for`, counted from its last start
//! (time spent stopped never counts). No datapoints is "no data", never
//! idle. One warning per running period, `warn_before` ahead of the stop;
//! the stop is keyed by the warning's deadline.

use crate::policy::Mode;
use crate::Millis;
use serde::{Deserialize, Serialize};

/// The idle rules one level sets; `None`: not set here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdleRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_below: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_below_bytes: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_before_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_actions_per_pass: Option<u32>,
}

// Validated rules hold no NaN (`validate` refuses it), so equality is
// total: a blueprint spec compares whole.
impl Eq for IdleRules {}

/// The defaults besides the threshold (which turns the policy on): six
/// hours, a warning an hour before, enforce, 20 stops a pass.
pub const DEFAULT_FOR_MS: i64 = 6 * 3_600_000;
pub const DEFAULT_WARN_BEFORE_MS: i64 = 3_600_000;

/// The rules one instance gets, every field decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdleEffective {
    pub cpu_below: f64,
    pub network_below_bytes: Option<f64>,
    pub for_ms: i64,
    pub warn_before_ms: i64,
    pub mode: Mode,
    pub max_actions_per_pass: u32,
}

impl IdleRules {
    pub fn is_empty(&self) -> bool {
        *self == IdleRules::default()
    }

    /// `self` where it sets a field, else `under`'s.
    pub fn over(&self, under: &IdleRules) -> IdleRules {
        IdleRules {
            cpu_below: self.cpu_below.or(under.cpu_below),
            network_below_bytes: self.network_below_bytes.or(under.network_below_bytes),
            for_ms: self.for_ms.or(under.for_ms),
            warn_before_ms: self.warn_before_ms.or(under.warn_before_ms),
            mode: self.mode.or(under.mode),
            max_actions_per_pass: self.max_actions_per_pass.or(under.max_actions_per_pass),
        }
    }

    /// The effective rules, or `None` when no level sets `cpu_below` (the
    /// policy is off).
    pub fn effective(&self) -> Option<IdleEffective> {
        let for_ms = self.for_ms.unwrap_or(DEFAULT_FOR_MS);
        Some(IdleEffective {
            cpu_below: self.cpu_below?,
            network_below_bytes: self.network_below_bytes,
            for_ms,
            warn_before_ms: self
                .warn_before_ms
                .unwrap_or(DEFAULT_WARN_BEFORE_MS)
                .min(for_ms),
            mode: self.mode.unwrap_or_default(),
            max_actions_per_pass: self
                .max_actions_per_pass
                .unwrap_or(crate::policy::DEFAULT_MAX_ACTIONS),
        })
    }

    /// Checks what a level sets (`field` names the offending one).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(c) = self.cpu_below {
            if !(c > 0.0 && c <= 100.0) {
                return Err(("cpu_below", "a percentage above 0, at most 100".into()));
            }
        }
        if matches!(self.network_below_bytes, Some(n) if !(n > 0.0 && n.is_finite())) {
            return Err(("network_below_bytes", "a positive number of bytes".into()));
        }
        if matches!(self.for_ms, Some(ms) if ms < 60_000) {
            return Err(("for", "at least 1m".into()));
        }
        if matches!(self.warn_before_ms, Some(ms) if ms < 0) {
            return Err(("warn_before", "cannot be negative".into()));
        }
        if let (Some(w), Some(f)) = (self.warn_before_ms, self.for_ms) {
            if w >= f {
                return Err(("warn_before", "must be shorter than `for`".into()));
            }
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

/// What the metrics say of one running instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// No datapoints in the window: shown as "no data", never stopped.
    NoData,
    /// Running for less than the window needs (`for` less `warn_before`).
    TooSoon { running_ms: i64 },
    /// Above a threshold.
    Busy {
        cpu_avg: f64,
        network_avg: Option<f64>,
    },
    /// Below the thresholds over `window_ms` (from its start or `for`).
    Idle {
        cpu_avg: f64,
        network_avg: Option<f64>,
        window_ms: i64,
    },
}

fn average(points: &[(Millis, f64)], from: Millis, to: Millis) -> Option<f64> {
    let vals: Vec<f64> = points
        .iter()
        .filter(|(t, _)| *t >= from && *t <= to)
        .map(|(_, v)| *v)
        .collect();
    (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64)
}

/// Judges an instance running since `since` by its CPU and network
/// series, at `now`.
pub fn judge(
    rules: &IdleEffective,
    since: Millis,
    now: Millis,
    cpu: &[(Millis, f64)],
    network: &[(Millis, f64)],
) -> Verdict {
    let running_ms = now - since;
    let window_from = since.max(now - rules.for_ms);
    let Some(cpu_avg) = average(cpu, window_from, now) else {
        return Verdict::NoData;
    };
    let network_avg = match rules.network_below_bytes {
        Some(_) => match average(network, window_from, now) {
            Some(n) => Some(n),
            None => return Verdict::NoData,
        },
        None => None,
    };
    if running_ms < rules.for_ms - rules.warn_before_ms {
        return Verdict::TooSoon { running_ms };
    }
    let quiet = cpu_avg < rules.cpu_below
        && rules
            .network_below_bytes
            .zip(network_avg)
            .is_none_or(|(limit, n)| n < limit);
    if quiet {
        Verdict::Idle {
            cpu_avg,
            network_avg,
            window_ms: now - window_from,
        }
    } else {
        Verdict::Busy {
            cpu_avg,
            network_avg,
        }
    }
}

/// The idle step a pass takes for one instance.
#[derive(Debug, Clone, PartialEq)]
pub enum IdleStep {
    /// Warn now; the stop falls due at `stop_at`.
    Warn { stop_at: Millis },
    /// Stop: warned, the deadline `due_at` passed, idle over all of `for`.
    Stop { due_at: Millis },
}

/// What is due for an instance judged `verdict`, warned in this running
/// period at `warned` (None: not yet).
pub fn due(
    rules: &IdleEffective,
    verdict: &Verdict,
    since: Millis,
    now: Millis,
    warned: Option<Millis>,
) -> Option<IdleStep> {
    let Verdict::Idle { window_ms, .. } = verdict else {
        return None;
    };
    match warned.filter(|w| *w >= since) {
        None => Some(IdleStep::Warn {
            stop_at: now + rules.warn_before_ms,
        }),
        Some(w) => {
            let deadline = w + rules.warn_before_ms;
            (now >= deadline && *window_ms >= rules.for_ms && now - since >= rules.for_ms)
                .then_some(IdleStep::Stop { due_at: deadline })
        }
    }
}

/// A duration in words, to the minute: `6h`, `5h30m`, `45m`.
pub fn human(ms: i64) -> String {
    let m = ms.max(0) / 60_000;
    match (m / 60, m % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// The reason in words: `idle: cpu avg 1.2% < 5% over 6h`.
pub fn reason(rules: &IdleEffective, verdict: &Verdict) -> String {
    match verdict {
        Verdict::Idle {
            cpu_avg,
            network_avg,
            window_ms,
        } => {
            let mut s = format!(
                "idle: cpu avg {cpu_avg:.1}% < {}% over {}",
                rules.cpu_below,
                human(*window_ms)
            );
            if let (Some(n), Some(limit)) = (network_avg, rules.network_below_bytes) {
                s.push_str(&format!(", network avg {n:.0} B < {limit:.0} B"));
            }
            s
        }
        Verdict::Busy { cpu_avg, .. } => format!("busy: cpu avg {cpu_avg:.1}%"),
        Verdict::NoData => "no data: no CloudWatch datapoints in the window".into(),
        Verdict::TooSoon { running_ms } => {
            format!("running for {} only", human(*running_ms))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 3_600_000;

    fn rules() -> IdleEffective {
        IdleRules {
            cpu_below: Some(5.0),
            ..Default::default()
        }
        .effective()
        .unwrap()
    }

    fn flat(from: Millis, to: Millis, v: f64) -> Vec<(Millis, f64)> {
        (0..)
            .map(|i| from + i * 300_000)
            .take_while(|t| *t <= to)
            .map(|t| (t, v))
            .collect()
    }

    #[test]
    fn no_threshold_means_off_and_bad_values_are_named() {
        assert!(IdleRules::default().effective().is_none());
        let bad = IdleRules {
            cpu_below: Some(0.0),
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "cpu_below");
        let bad = IdleRules {
            for_ms: Some(H),
            warn_before_ms: Some(2 * H),
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "warn_before");
    }

    #[test]
    fn missing_data_is_never_idle() {
        let r = rules();
        assert_eq!(judge(&r, 0, 10 * H, &[], &[]), Verdict::NoData);
        // Datapoints only from before the last start do not count.
        assert_eq!(
            judge(&r, 5 * H, 12 * H, &flat(0, 4 * H, 0.5), &[]),
            Verdict::NoData
        );
    }

    #[test]
    fn idle_warns_then_stops_after_the_warning_and_the_window() {
        let r = rules();
        let now = 5 * H;
        let v = judge(&r, 0, now, &flat(0, now, 1.2), &[]);
        assert!(matches!(v, Verdict::Idle { .. }), "{v:?}");
        assert_eq!(reason(&r, &v), "idle: cpu avg 1.2% < 5% over 5h");
        assert_eq!(
            due(&r, &v, 0, now, None),
            Some(IdleStep::Warn { stop_at: 6 * H })
        );
        // Warned at 5h: nothing until 6h, then the stop keyed by 6h.
        assert_eq!(due(&r, &v, 0, now, Some(now)), None);
        let later = 6 * H;
        let v = judge(&r, 0, later, &flat(0, later, 1.2), &[]);
        assert_eq!(
            due(&r, &v, 0, later, Some(now)),
            Some(IdleStep::Stop { due_at: 6 * H })
        );
        // A warning from an earlier running period does not count.
        assert_eq!(
            due(&r, &v, H, later, Some(H / 2)),
            Some(IdleStep::Warn { stop_at: later + H })
        );
    }

    #[test]
    fn busy_and_young_instances_are_left_alone() {
        let r = rules();
        let v = judge(&r, 0, 8 * H, &flat(0, 8 * H, 40.0), &[]);
        assert!(matches!(v, Verdict::Busy { .. }));
        assert_eq!(due(&r, &v, 0, 8 * H, None), None);
        let v = judge(&r, 0, H, &flat(0, H, 0.1), &[]);
        assert_eq!(v, Verdict::TooSoon { running_ms: H });
    }

    #[test]
    fn network_must_be_quiet_too_when_set() {
        let mut r = rules();
        r.network_below_bytes = Some(1000.0);
        let cpu = flat(0, 7 * H, 0.5);
        let v = judge(&r, 0, 7 * H, &cpu, &flat(0, 7 * H, 50_000.0));
        assert!(matches!(v, Verdict::Busy { .. }), "{v:?}");
        let v = judge(&r, 0, 7 * H, &cpu, &flat(0, 7 * H, 10.0));
        assert!(matches!(v, Verdict::Idle { .. }), "{v:?}");
        assert_eq!(judge(&r, 0, 7 * H, &cpu, &[]), Verdict::NoData);
    }
}
