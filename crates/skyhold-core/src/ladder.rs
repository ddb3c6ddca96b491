//! The expiry ladder as a schedule: for one resource's expiry, when each
//! step is due (warn at each warn point before it, stop at it where the
//! kind can stop, terminate after the grace period), and which step a
//! policy pass should take now. Pure: the policy reconciler supplies the
//! clock, what it has already done and whether the resource still runs,
//! and acts through the pipeline with one idempotency key per (policy,
//! resource, step's due time).

use crate::resource::ResourceKind;
use crate::Millis;

/// What the ladder does when an expiry passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtExpiry {
    /// Stop what can stop (instances, DB instances); the rest wait for the
    /// grace period.
    Stop,
    /// Nothing at expiry itself: only the grace period's termination.
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    /// How long before the expiry each warning goes out (any order).
    pub warn_ms: Vec<i64>,
    pub at_expiry: AtExpiry,
    /// How long after the expiry it is terminated (deleted); `None`:
    /// never.
    pub terminate_after_ms: Option<i64>,
    pub snapshot_before_terminate: bool,
}

/// One step of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Tell the owner: it expires in `before_ms`.
    Warn {
        before_ms: i64,
    },
    Stop,
    Terminate {
        snapshot: bool,
    },
}

impl Step {
    pub fn as_str(&self) -> &'static str {
        match self {
            Step::Warn { .. } => "warn",
            Step::Stop => "stop",
            Step::Terminate { .. } => "terminate",
        }
    }
}

/// A step and when it is due.
pub type Scheduled = (Millis, Step);

/// Whether the kind has a stopped state (the rest can only be deleted).
pub fn can_stop(kind: ResourceKind) -> bool {
    matches!(kind, ResourceKind::Instance | ResourceKind::DbInstance)
}

/// Every step for an expiry at `expires_at`, with when it is due, in
/// order of time.
pub fn schedule(ladder: &Ladder, kind: ResourceKind, expires_at: Millis) -> Vec<Scheduled> {
    let mut warn = ladder.warn_ms.clone();
    warn.retain(|w| *w > 0);
    warn.sort_unstable_by(|a, b| b.cmp(a));
    warn.dedup();
    let mut out: Vec<Scheduled> = warn
        .into_iter()
        .map(|w| (expires_at.saturating_sub(w), Step::Warn { before_ms: w }))
        .collect();
    if ladder.at_expiry == AtExpiry::Stop && can_stop(kind) {
        out.push((expires_at, Step::Stop));
    }
    if let Some(grace) = ladder.terminate_after_ms {
        out.push((
            expires_at.saturating_add(grace.max(0)),
            Step::Terminate {
                snapshot: ladder.snapshot_before_terminate,
            },
        ));
    }
    out
}

/// The step a pass should take at `now`: the latest one that is due and
/// not `done` (a pass that comes late, after a long outage, takes the
/// latest due step only: a warning that was never sent is not sent once
/// its successor is due, and a stop is not done once termination is).
/// `running`: whether the resource is still running (a stop is taken only
/// then). Returns the step and its due time (the idempotency key's
/// deadline), and the earlier due steps now overtaken (to be recorded as
/// skipped, never taken later).
pub fn due(
    schedule: &[Scheduled],
    now: Millis,
    running: bool,
    done: impl Fn(Millis, Step) -> bool,
) -> Option<(Scheduled, Vec<Scheduled>)> {
    let latest = schedule.iter().rposition(|(at, _)| *at <= now)?;
    let (at, step) = schedule[latest];
    // A stop of what no longer runs (stopped by its owner, say) is not
    // needed; nor is a warning for an expiry that has passed.
    if done(at, step) || (step == Step::Stop && !running) {
        return None;
    }
    let overtaken = schedule[..latest]
        .iter()
        .filter(|s| s.0 <= now && !done(s.0, s.1))
        .copied()
        .collect();
    Some(((at, step), overtaken))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn ladder() -> Ladder {
        Ladder {
            warn_ms: vec![H, 24 * H, H],
            at_expiry: AtExpiry::Stop,
            terminate_after_ms: Some(7 * 24 * H),
            snapshot_before_terminate: true,
        }
    }

    #[test]
    fn the_schedule_orders_warnings_stop_and_termination() {
        let e = 100 * H;
        assert_eq!(
            schedule(&ladder(), ResourceKind::Instance, e),
            vec![
                (e - 24 * H, Step::Warn { before_ms: 24 * H }),
                (e - H, Step::Warn { before_ms: H }),
                (e, Step::Stop),
                (e + 7 * 24 * H, Step::Terminate { snapshot: true }),
            ]
        );
        // A volume cannot stop: warnings, then the grace period's end.
        let v = schedule(&ladder(), ResourceKind::Volume, e);
        assert!(!v.iter().any(|(_, s)| *s == Step::Stop), "{v:?}");
        assert_eq!(v.len(), 3);
        // Without a grace period nothing is ever terminated.
        let mut l = ladder();
        l.terminate_after_ms = None;
        assert!(!schedule(&l, ResourceKind::Instance, e)
            .iter()
            .any(|(_, s)| matches!(s, Step::Terminate { .. })));
    }

    #[test]
    fn each_pass_takes_the_latest_due_step_once() {
        let e = 100 * H;
        let s = schedule(&ladder(), ResourceKind::Instance, e);
        let none = |_: Millis, _: Step| false;
        // Before the first warning: nothing.
        assert_eq!(due(&s, e - 25 * H, true, none), None);
        // The 24 h warning, then nothing more until the next point.
        let ((at, step), skipped) = due(&s, e - 20 * H, true, none).unwrap();
        assert_eq!(
            (at, step, skipped.len()),
            (e - 24 * H, Step::Warn { before_ms: 24 * H }, 0)
        );
        let sent = |a: Millis, _: Step| a == e - 24 * H;
        assert_eq!(due(&s, e - 2 * H, true, sent), None);
        // Expired and running: stop.
        let warned = |a: Millis, _: Step| a < e;
        assert_eq!(due(&s, e + 1, true, warned).unwrap().0, (e, Step::Stop));
        // Already stopped (by anyone): no stop is due.
        assert_eq!(due(&s, e + 1, false, warned), None);
        // Back after a week-long outage: terminate, the warnings and the
        // stop it overtook listed to be recorded as skipped.
        let ((at, step), skipped) = due(&s, e + 8 * 24 * H, true, none).unwrap();
        assert_eq!(
            (at, step),
            (e + 7 * 24 * H, Step::Terminate { snapshot: true })
        );
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        // Once it is done, nothing is due again.
        let all = |_: Millis, _: Step| true;
        assert_eq!(due(&s, e + 9 * 24 * H, true, all), None);
    }
}
