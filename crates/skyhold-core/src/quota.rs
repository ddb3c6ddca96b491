//! Quotas: limits per user and per group, with one default for every user
//! and one for every group, and overrides per user or group. A launch must
//! fit every quota that applies (the owner's own and each of the owner's
//! groups'), so the effective limit is the most restrictive one, never a
//! sum. This module is the arithmetic; counting usage and reserving it
//! race-free is the store's (one transaction per check-and-reserve).

use crate::instance_types;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Whose quota: a named user or group, or the default of every user or
/// every group. Written `user:ann`, `group:dev`, `default:user`,
/// `default:group`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaSubject {
    DefaultUser,
    DefaultGroup,
    User(String),
    Group(String),
}

impl QuotaSubject {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "default:user" => return Ok(QuotaSubject::DefaultUser),
            "default:group" => return Ok(QuotaSubject::DefaultGroup),
            _ => {}
        }
        let (kind, name) = s.trim().split_once(':').ok_or_else(|| {
            format!(
                "invalid quota subject {:?}: use user:NAME, group:NAME, default:user or default:group",
                crate::clip(s, 80)
            )
        })?;
        crate::access::validate_principal_name(kind, name)?;
        match kind {
            "user" => Ok(QuotaSubject::User(name.to_owned())),
            "group" => Ok(QuotaSubject::Group(name.to_owned())),
            _ => Err(format!(
                "invalid quota subject {:?}: use user:NAME, group:NAME, default:user or default:group",
                crate::clip(s, 80)
            )),
        }
    }

    /// The stored key (`user:ann`, `default:group`, …).
    pub fn key(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for QuotaSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuotaSubject::DefaultUser => f.write_str("default:user"),
            QuotaSubject::DefaultGroup => f.write_str("default:group"),
            QuotaSubject::User(n) => write!(f, "user:{n}"),
            QuotaSubject::Group(n) => write!(f, "group:{n}"),
        }
    }
}

/// What a quota bounds. Money comes with the cost issue (a fifth dimension
/// here, and a column in `quotas`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Instances,
    Vcpus,
    MemoryGib,
    VolumeGib,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [
        Dimension::Instances,
        Dimension::Vcpus,
        Dimension::MemoryGib,
        Dimension::VolumeGib,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Instances => "instances",
            Dimension::Vcpus => "vcpus",
            Dimension::MemoryGib => "memory_gib",
            Dimension::VolumeGib => "volume_gib",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount in every dimension: what is used, what a launch asks for, or
/// (as `Option`s in [`Limits`]) what is allowed. Memory is counted in MiB
/// and shown in GiB, so small types are not rounded away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub instances: u64,
    pub vcpus: u64,
    pub memory_mib: u64,
    pub volume_gib: u64,
}

impl Amount {
    /// What `count` instances of `instance_type`, each with `volume_gib` of
    /// root volume, take. `None` for a type whose size is unknown (a
    /// quota on vCPUs or memory cannot then be checked: refused by the
    /// caller, never guessed).
    pub fn of_instances(instance_type: &str, count: u64, volume_gib: u64) -> Option<Self> {
        let s = instance_types::specs(instance_type)?;
        Some(Amount {
            instances: count,
            vcpus: count * u64::from(s.vcpus),
            memory_mib: count * s.memory_mib,
            volume_gib: count * volume_gib,
        })
    }

    pub fn plus(self, o: Amount) -> Amount {
        Amount {
            instances: self.instances.saturating_add(o.instances),
            vcpus: self.vcpus.saturating_add(o.vcpus),
            memory_mib: self.memory_mib.saturating_add(o.memory_mib),
            volume_gib: self.volume_gib.saturating_add(o.volume_gib),
        }
    }

    /// The amount in one dimension, in that dimension's unit (memory in
    /// whole GiB, rounded up).
    pub fn get(&self, d: Dimension) -> u64 {
        match d {
            Dimension::Instances => self.instances,
            Dimension::Vcpus => self.vcpus,
            Dimension::MemoryGib => self.memory_mib.div_ceil(1024),
            Dimension::VolumeGib => self.volume_gib,
        }
    }
}

/// Limits of one quota; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub instances: Option<u64>,
    pub vcpus: Option<u64>,
    pub memory_gib: Option<u64>,
    pub volume_gib: Option<u64>,
}

impl Limits {
    pub fn get(&self, d: Dimension) -> Option<u64> {
        match d {
            Dimension::Instances => self.instances,
            Dimension::Vcpus => self.vcpus,
            Dimension::MemoryGib => self.memory_gib,
            Dimension::VolumeGib => self.volume_gib,
        }
    }

    pub fn is_unlimited(&self) -> bool {
        Dimension::ALL.iter().all(|d| self.get(*d).is_none())
    }
}

/// One quota that applies to a launch: whose it is (the override's subject,
/// or the default it falls back to, with the subject it is applied to),
/// its limits and the subject's usage (inventory plus reservations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applicable {
    /// The user or group it bounds (`user:ann`, `group:dev`).
    pub subject: QuotaSubject,
    /// Where the limits come from: `subject` itself (an override) or
    /// `default:user` / `default:group`.
    pub source: QuotaSubject,
    pub limits: Limits,
    pub usage: Amount,
}

/// A launch that does not fit: the first quota and dimension it exceeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exceeded {
    pub subject: String,
    pub source: String,
    pub dimension: Dimension,
    pub limit: u64,
    pub usage: u64,
    pub request: u64,
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "quota of {} exceeded ({}{}): {} {} in use + {} requested > limit {}",
            self.subject,
            self.dimension,
            if self.source == self.subject {
                String::new()
            } else {
                format!(", from {}", self.source)
            },
            self.usage,
            self.dimension,
            self.request,
            self.limit
        )
    }
}

/// Whether `request` fits every applicable quota; the first excess found
/// otherwise (quotas in the given order, dimensions in [`Dimension::ALL`]
/// order).
pub fn check(applicable: &[Applicable], request: Amount) -> Result<(), Exceeded> {
    for a in applicable {
        for d in Dimension::ALL {
            let Some(limit) = a.limits.get(d) else {
                continue;
            };
            let (usage, want) = (a.usage.get(d), request.get(d));
            // Memory is compared in MiB so rounding never lets one through.
            let over = match d {
                Dimension::MemoryGib => a
                    .usage
                    .memory_mib
                    .saturating_add(request.memory_mib)
                    .gt(&limit.saturating_mul(1024)),
                _ => usage.saturating_add(want) > limit,
            };
            if over && want > 0 {
                return Err(Exceeded {
                    subject: a.subject.to_string(),
                    source: a.source.to_string(),
                    dimension: d,
                    limit,
                    usage,
                    request: want,
                });
            }
        }
    }
    Ok(())
}

/// What remains of each dimension under every applicable quota (the most
/// restrictive one wins); `None` is unlimited. For the launch form.
pub fn remaining(applicable: &[Applicable]) -> Limits {
    let mut out = Limits::default();
    for d in Dimension::ALL {
        let left = applicable
            .iter()
            .filter_map(|a| a.limits.get(d).map(|l| l.saturating_sub(a.usage.get(d))))
            .min();
        match d {
            Dimension::Instances => out.instances = left,
            Dimension::Vcpus => out.vcpus = left,
            Dimension::MemoryGib => out.memory_gib = left,
            Dimension::VolumeGib => out.volume_gib = left,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(subject: &str, limits: Limits, usage: Amount) -> Applicable {
        let subject = QuotaSubject::parse(subject).unwrap();
        Applicable {
            source: subject.clone(),
            subject,
            limits,
            usage,
        }
    }

    #[test]
    fn subjects_parse_and_print_back() {
        for s in ["user:ann", "group:dev", "default:user", "default:group"] {
            assert_eq!(QuotaSubject::parse(s).unwrap().to_string(), s);
        }
        for bad in ["ann", "team:x", "user:", "user:a b", "default:team", ""] {
            assert!(QuotaSubject::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_restrictive_quota_decides() {
        let mine = q(
            "user:ann",
            Limits {
                instances: Some(10),
                ..Default::default()
            },
            Amount {
                instances: 2,
                ..Default::default()
            },
        );
        let group = q(
            "group:dev",
            Limits {
                instances: Some(5),
                ..Default::default()
            },
            Amount {
                instances: 4,
                ..Default::default()
            },
        );
        let one = Amount {
            instances: 1,
            ..Default::default()
        };
        let two = Amount {
            instances: 2,
            ..Default::default()
        };
        assert_eq!(check(&[mine.clone(), group.clone()], one), Ok(()));
        let e = check(&[mine.clone(), group.clone()], two).unwrap_err();
        assert_eq!(
            (e.subject.as_str(), e.dimension, e.limit, e.usage, e.request),
            ("group:dev", Dimension::Instances, 5, 4, 2)
        );
        assert_eq!(remaining(&[mine, group]).instances, Some(1));
    }

    #[test]
    fn unlimited_dimensions_and_empty_requests_always_fit() {
        let full = q(
            "user:ann",
            Limits {
                vcpus: Some(4),
                ..Default::default()
            },
            Amount {
                vcpus: 4,
                instances: 99,
                ..Default::default()
            },
        );
        let volume_only = Amount {
            volume_gib: 100,
            ..Default::default()
        };
        assert_eq!(check(std::slice::from_ref(&full), volume_only), Ok(()));
        assert_eq!(remaining(&[full]).instances, None);
    }

    #[test]
    fn memory_is_compared_in_mib() {
        let small = Amount::of_instances("t3.nano", 1, 8).unwrap();
        assert_eq!(small.memory_mib, 512);
        let quota = q(
            "user:ann",
            Limits {
                memory_gib: Some(1),
                ..Default::default()
            },
            Amount {
                memory_mib: 512,
                ..Default::default()
            },
        );
        assert_eq!(check(std::slice::from_ref(&quota), small), Ok(()));
        let e = check(&[quota], small.plus(small)).unwrap_err();
        assert_eq!(e.dimension, Dimension::MemoryGib);
        assert!(e.to_string().contains("user:ann"), "{e}");
    }

    #[test]
    fn amounts_of_instances_follow_the_type() {
        let a = Amount::of_instances("m5.xlarge", 3, 20).unwrap();
        assert_eq!((a.instances, a.vcpus, a.volume_gib), (3, 12, 60), "{a:?}");
        assert_eq!(Amount::of_instances("zz9.huge", 1, 8), None);
    }

    #[test]
    fn defaults_say_where_they_come_from() {
        let e = check(
            &[Applicable {
                subject: QuotaSubject::User("ann".into()),
                source: QuotaSubject::DefaultUser,
                limits: Limits {
                    instances: Some(0),
                    ..Default::default()
                },
                usage: Amount::default(),
            }],
            Amount {
                instances: 1,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.source, "default:user");
        assert!(e.to_string().contains("from default:user"), "{e}");
    }
}
