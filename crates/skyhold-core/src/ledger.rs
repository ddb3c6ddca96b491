//! The usage ledger's rules, with no I/O: what a resource is billed for in
//! the state it was observed in (`billing`), and how an observation moves
//! its intervals (`reconcile`): an open interval is kept while the billing
//! is the same, closed at the best known time when it stops or changes,
//! and a new one opened. The store applies the result; running the rules
//! again over the same observation yields nothing to do.

use crate::prices::Product;
use crate::{Millis, ResourceKind};

/// Hours in a month, as AWS counts them for GiB-month prices.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// What a resource costs while it stays in its current state: one
/// `quantity` (GiB, nodes, or 1) of `product` of `rtype`.
#[derive(Debug, Clone, PartialEq)]
pub struct Billing {
    pub product: Product,
    /// The instance type, DB class, cache node type, volume type or load
    /// balancer type ('' where the product has none).
    pub rtype: String,
    pub quantity: i64,
}

/// How an interval's end (or start) was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// When skyhold saw it (a sync's listing time).
    Observed,
    /// The provider's own time for the change (an instance's state
    /// transition, a resource's launch or creation time).
    TransitionTime,
    /// The last listing that still showed it billable: the resource
    /// vanished, or was seen gone, without a time of its own.
    LastSeen,
    /// A skyhold action's time (a stop or a deletion through skyhold).
    Action,
}

impl How {
    pub fn as_str(self) -> &'static str {
        match self {
            How::Observed => "observed",
            How::TransitionTime => "transition_time",
            How::LastSeen => "last_seen",
            How::Action => "action",
        }
    }

    pub fn parse(s: &str) -> Option<How> {
        [
            How::Observed,
            How::TransitionTime,
            How::LastSeen,
            How::Action,
        ]
        .into_iter()
        .find(|h| h.as_str() == s)
    }
}

/// The kinds that cost money while they exist or run.
pub const BILLABLE_KINDS: [ResourceKind; 7] = [
    ResourceKind::Instance,
    ResourceKind::Volume,
    ResourceKind::Snapshot,
    ResourceKind::ElasticIp,
    ResourceKind::LoadBalancer,
    ResourceKind::DbInstance,
    ResourceKind::CacheCluster,
];

impl Product {
    /// The name stored in the ledger and shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::InstanceHour => "instance-hour",
            Product::DbInstanceHour => "db-instance-hour",
            Product::CacheNodeHour => "cache-node-hour",
            Product::VolumeGibMonth => "volume-gib-month",
            Product::SnapshotGibMonth => "snapshot-gib-month",
            Product::IdleEipHour => "idle-eip-hour",
            Product::LoadBalancerHour => "load-balancer-hour",
        }
    }

    pub fn parse(s: &str) -> Option<Product> {
        Product::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub const ALL: [Product; 7] = [
        Product::InstanceHour,
        Product::DbInstanceHour,
        Product::CacheNodeHour,
        Product::VolumeGibMonth,
        Product::SnapshotGibMonth,
        Product::IdleEipHour,
        Product::LoadBalancerHour,
    ];

    /// How many of the product's units one quantity held for an hour is
    /// (a GiB-month price is per 730 hours).
    pub fn units_per_hour(self) -> f64 {
        match self {
            Product::VolumeGibMonth | Product::SnapshotGibMonth => 1.0 / HOURS_PER_MONTH,
            _ => 1.0,
        }
    }
}

/// What a resource in `state` is billed for, or `None` while it costs
/// nothing (a stopped instance, an associated elastic IP, anything gone).
/// `size_gib` is a volume's or snapshot's size; `nodes` a cache cluster's
/// node count.
pub fn billing(
    kind: ResourceKind,
    state: &str,
    rtype: &str,
    size_gib: i64,
    nodes: i64,
    gone: bool,
) -> Option<Billing> {
    if gone {
        return None;
    }
    let one = |product: Product, rtype: &str, quantity: i64| {
        Some(Billing {
            product,
            rtype: rtype.to_owned(),
            quantity,
        })
    };
    match kind {
        ResourceKind::Instance => match state {
            "running" => one(Product::InstanceHour, rtype, 1),
            _ => None,
        },
        ResourceKind::DbInstance => match state {
            "stopped" | "stopping" | "creating" | "deleting" | "deleted" | "failed" => None,
            _ => one(Product::DbInstanceHour, rtype, 1),
        },
        ResourceKind::CacheCluster => match state {
            "creating" | "deleting" | "deleted" | "create-failed" => None,
            _ => one(Product::CacheNodeHour, rtype, nodes.max(1)),
        },
        ResourceKind::Volume => match state {
            "deleting" | "deleted" | "error" => None,
            _ => one(Product::VolumeGibMonth, rtype, size_gib.max(0)),
        },
        ResourceKind::Snapshot => match state {
            "error" => None,
            _ => one(Product::SnapshotGibMonth, "", size_gib.max(0)),
        },
        ResourceKind::ElasticIp => match state {
            "unassociated" => one(Product::IdleEipHour, "", 1),
            _ => None,
        },
        ResourceKind::LoadBalancer => one(Product::LoadBalancerHour, rtype, 1),
        _ => None,
    }
}

/// The interval a resource has open.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenInterval {
    pub billing: Billing,
    pub started_at: Millis,
}

/// One observation of a resource, as the ledger needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// What it is billed for now (`billing`).
    pub billing: Option<Billing>,
    /// When the listing was taken (or the action finished).
    pub at: Millis,
    /// The previous listing of its scope, when it was still as the open
    /// interval says (None: never reconciled before).
    pub prev_seen: Option<Millis>,
    /// The provider's time of its last state change, where it has one
    /// (`stopped_at`, `terminated_at`).
    pub transition_at: Option<Millis>,
    /// When what it is billed for began by the provider's account
    /// (an instance's launch time, a volume's creation time), 0: unknown.
    pub began_at: Millis,
    /// The end of its latest closed interval.
    pub last_end: Option<Millis>,
    /// A skyhold action that caused this observation, and its time.
    pub action_at: Option<Millis>,
}

/// What the ledger must write for one observation.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Close {
        at: Millis,
        how: How,
    },
    Open {
        billing: Billing,
        at: Millis,
        how: How,
    },
}

fn same(a: &Billing, b: &Billing) -> bool {
    a.product == b.product && a.rtype == b.rtype && a.quantity == b.quantity
}

/// The ops that bring the ledger in line with `obs`: none when it already
/// is (so a rerun over the same observations changes nothing).
pub fn reconcile(open: Option<&OpenInterval>, obs: &Observation) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut reopen_at = None;
    if let Some(o) = open {
        if obs.billing.as_ref().is_some_and(|b| same(b, &o.billing)) {
            return ops;
        }
        let within = |t: Millis| t >= o.started_at && t <= obs.at;
        let (at, how) = if let Some(t) = obs.action_at.filter(|t| within(*t)) {
            (t, How::Action)
        } else if obs.billing.is_some() {
            // Still billable, for something else (a resize, a new type):
            // the change is seen now.
            (obs.at, How::Observed)
        } else if let Some(t) = obs.transition_at.filter(|t| within(*t)) {
            (t, How::TransitionTime)
        } else if let Some(t) = obs.prev_seen.filter(|t| within(*t)) {
            (t, How::LastSeen)
        } else {
            (o.started_at, How::LastSeen)
        };
        ops.push(Op::Close { at, how });
        reopen_at = Some((at, how));
    }
    if let Some(b) = &obs.billing {
        let (at, how) = match reopen_at {
            Some(x) => x,
            None if obs.action_at.is_some_and(|t| t <= obs.at) => {
                (obs.action_at.unwrap_or(obs.at), How::Action)
            }
            None => {
                let after_last = |t: Millis| obs.last_end.is_none_or(|e| t >= e);
                if obs.began_at > 0 && obs.began_at <= obs.at && after_last(obs.began_at) {
                    (obs.began_at, How::TransitionTime)
                } else {
                    (obs.at, How::Observed)
                }
            }
        };
        ops.push(Op::Open {
            billing: b.clone(),
            at,
            how,
        });
    }
    ops
}

/// Hours of `[start, end)` that fall inside `[from, to)`.
pub fn overlap_hours(start: Millis, end: Millis, from: Millis, to: Millis) -> f64 {
    let s = start.max(from);
    let e = end.min(to);
    if e <= s {
        0.0
    } else {
        (e - s) as f64 / 3_600_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 3_600_000;

    fn run(itype: &str) -> Option<Billing> {
        billing(ResourceKind::Instance, "running", itype, 0, 0, false)
    }

    fn obs(b: Option<Billing>, at: Millis) -> Observation {
        Observation {
            billing: b,
            at,
            prev_seen: None,
            transition_at: None,
            began_at: 0,
            last_end: None,
            action_at: None,
        }
    }

    #[test]
    fn billing_follows_the_kind_and_state() {
        assert!(run("t3.micro").is_some());
        assert!(billing(ResourceKind::Instance, "stopped", "t3.micro", 0, 0, false).is_none());
        assert!(billing(ResourceKind::Instance, "running", "t3.micro", 0, 0, true).is_none());
        let v = billing(ResourceKind::Volume, "in-use", "gp3", 100, 0, false).unwrap();
        assert_eq!(
            (v.product, v.rtype.as_str(), v.quantity),
            (Product::VolumeGibMonth, "gp3", 100)
        );
        assert!(billing(ResourceKind::ElasticIp, "associated", "vpc", 0, 0, false).is_none());
        assert!(billing(ResourceKind::ElasticIp, "unassociated", "vpc", 0, 0, false).is_some());
        let c = billing(
            ResourceKind::CacheCluster,
            "available",
            "cache.t3.micro",
            0,
            3,
            false,
        )
        .unwrap();
        assert_eq!(c.quantity, 3);
        assert!(billing(
            ResourceKind::DbInstance,
            "stopped",
            "db.t3.micro",
            0,
            0,
            false
        )
        .is_none());
        assert!(billing(ResourceKind::Vpc, "available", "", 0, 0, false).is_none());
    }

    #[test]
    fn a_new_running_instance_opens_at_its_launch_time() {
        let mut o = obs(run("t3.micro"), 10 * H);
        o.began_at = 2 * H;
        assert_eq!(
            reconcile(None, &o),
            vec![Op::Open {
                billing: run("t3.micro").unwrap(),
                at: 2 * H,
                how: How::TransitionTime
            }]
        );
        // A launch time before the last interval's end is not believed.
        o.last_end = Some(5 * H);
        assert_eq!(
            reconcile(None, &o),
            vec![Op::Open {
                billing: run("t3.micro").unwrap(),
                at: 10 * H,
                how: How::Observed
            }]
        );
    }

    #[test]
    fn the_same_billing_changes_nothing() {
        let open = OpenInterval {
            billing: run("t3.micro").unwrap(),
            started_at: H,
        };
        assert!(reconcile(Some(&open), &obs(run("t3.micro"), 9 * H)).is_empty());
    }

    #[test]
    fn a_stop_closes_at_the_transition_time_even_after_an_outage() {
        let open = OpenInterval {
            billing: run("t3.micro").unwrap(),
            started_at: H,
        };
        let mut o = obs(None, 50 * H);
        o.prev_seen = Some(2 * H);
        o.transition_at = Some(3 * H);
        assert_eq!(
            reconcile(Some(&open), &o),
            vec![Op::Close {
                at: 3 * H,
                how: How::TransitionTime
            }]
        );
        // A transition time outside the interval is not believed.
        o.transition_at = Some(0);
        assert_eq!(
            reconcile(Some(&open), &o),
            vec![Op::Close {
                at: 2 * H,
                how: How::LastSeen
            }]
        );
    }

    #[test]
    fn a_vanished_resource_closes_when_it_was_last_seen() {
        let open = OpenInterval {
            billing: run("t3.micro").unwrap(),
            started_at: H,
        };
        let mut o = obs(None, 4 * H);
        o.prev_seen = Some(3 * H);
        assert_eq!(
            reconcile(Some(&open), &o),
            vec![Op::Close {
                at: 3 * H,
                how: How::LastSeen
            }]
        );
        // Never listed since it opened: closed where it began, counting
        // nothing it cannot show.
        o.prev_seen = None;
        assert_eq!(
            reconcile(Some(&open), &o),
            vec![Op::Close {
                at: H,
                how: How::LastSeen
            }]
        );
    }

    #[test]
    fn an_action_closes_at_its_own_time() {
        let open = OpenInterval {
            billing: run("t3.micro").unwrap(),
            started_at: H,
        };
        let mut o = obs(None, 4 * H);
        o.action_at = Some(3 * H + 5);
        o.transition_at = Some(3 * H + 9);
        assert_eq!(
            reconcile(Some(&open), &o),
            vec![Op::Close {
                at: 3 * H + 5,
                how: How::Action
            }]
        );
    }

    #[test]
    fn a_change_closes_and_reopens_where_it_was_seen() {
        let open = OpenInterval {
            billing: billing(ResourceKind::Volume, "in-use", "gp3", 10, 0, false).unwrap(),
            started_at: H,
        };
        let bigger = billing(ResourceKind::Volume, "in-use", "gp3", 20, 0, false);
        let ops = reconcile(Some(&open), &obs(bigger.clone(), 4 * H));
        assert_eq!(
            ops,
            vec![
                Op::Close {
                    at: 4 * H,
                    how: How::Observed
                },
                Op::Open {
                    billing: bigger.unwrap(),
                    at: 4 * H,
                    how: How::Observed
                }
            ]
        );
    }

    #[test]
    fn overlap_is_clipped_to_the_range() {
        assert_eq!(overlap_hours(0, 10 * H, 2 * H, 5 * H), 3.0);
        assert_eq!(overlap_hours(6 * H, 10 * H, 2 * H, 5 * H), 0.0);
        assert_eq!(Product::parse("idle-eip-hour"), Some(Product::IdleEipHour));
        assert_eq!(How::parse("last_seen"), Some(How::LastSeen));
    }
}
