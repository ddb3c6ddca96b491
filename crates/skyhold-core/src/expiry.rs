//! Expiry: when a resource should go, kept in its cloud tag
//! `skyhold:expires-at` (RFC 3339 UTC, or `never`), and the rules for
//! changing it: a new expiry is never further from now than the cap that
//! applies (the `max_ttl` of the resource's blueprint, else of its account,
//! else the global one), and `never` needs more than ownership. Pure: the
//! caller supplies the clock and the cap.

use crate::resource::ResourceKind;
use crate::Millis;

pub use crate::launch::EXPIRES_TAG;

/// The opt-out tag: its value is the reason. Honoured only when skyhold
/// wrote it (or the account trusts the tag as it is).
pub const KEEP_TAG: &str = "skyhold:keep";

/// The tag value of a resource that must never expire.
pub const NEVER: &str = "never";

/// The kinds that cost money while they exist, and so can expire.
pub const EXPIRABLE: [ResourceKind; 8] = [
    ResourceKind::Instance,
    ResourceKind::Volume,
    ResourceKind::Snapshot,
    ResourceKind::Image,
    ResourceKind::ElasticIp,
    ResourceKind::LoadBalancer,
    ResourceKind::DbInstance,
    ResourceKind::CacheCluster,
];

pub fn expirable(kind: ResourceKind) -> bool {
    EXPIRABLE.contains(&kind)
}

/// A resource's expiry as its tag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No tag: nothing was decided.
    Unset,
    At(Millis),
    Never,
    /// A tag skyhold cannot read (written by hand); treated as unset, and
    /// shown as it is.
    Unreadable,
}

impl Expiry {
    /// Reads a tag value (`None`: no tag).
    pub fn from_tag(v: Option<&str>) -> Self {
        match v.map(str::trim) {
            None | Some("") => Expiry::Unset,
            Some(v) if v.eq_ignore_ascii_case(NEVER) => Expiry::Never,
            Some(v) => chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| Expiry::At(t.timestamp_millis()))
                .unwrap_or(Expiry::Unreadable),
        }
    }

    /// The tag value that records it (`None` for unset).
    pub fn tag_value(self) -> Option<String> {
        match self {
            Expiry::At(t) => Some(crate::rfc3339(t)),
            Expiry::Never => Some(NEVER.to_owned()),
            Expiry::Unset | Expiry::Unreadable => None,
        }
    }

    pub fn at(self) -> Option<Millis> {
        match self {
            Expiry::At(t) => Some(t),
            _ => None,
        }
    }
}

/// What someone asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryRequest {
    /// Expire this long from now.
    In(i64),
    /// Expire at this time.
    At(Millis),
    /// Push the expiry this much later (from now if it has passed).
    Extend(i64),
    /// Never expire.
    Never,
}

/// The cap on how far from now an expiry may be, and where it comes from
/// (`blueprint web@3`, `account acme`, `policies.expiry`), for the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cap {
    pub max_ttl_ms: i64,
    pub source: String,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpiryError {
    /// Further from now than the cap allows (`ttl_exceeds_max`).
    ExceedsMax { cap: Cap, latest: Millis },
    /// A time that has passed, or a duration that is not positive.
    NotInFuture(String),
    /// `extend` on a resource without an expiry.
    NothingToExtend(String),
}

impl std::fmt::Display for ExpiryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpiryError::ExceedsMax { cap, latest } => write!(
                f,
                "the maximum TTL is {} (from {}): expiry at most {}",
                crate::search::format_duration(cap.max_ttl_ms),
                cap.source,
                crate::rfc3339(*latest)
            ),
            ExpiryError::NotInFuture(m) | ExpiryError::NothingToExtend(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ExpiryError {}

/// The new expiry `req` asks for, given the current one, `now` and the
/// cap (`None`: no cap). `never` is not capped here: whether the actor may
/// ask for it is the authorization check's question.
pub fn resolve(
    req: ExpiryRequest,
    current: Expiry,
    now: Millis,
    cap: Option<&Cap>,
) -> Result<Expiry, ExpiryError> {
    let at = match req {
        ExpiryRequest::Never => return Ok(Expiry::Never),
        ExpiryRequest::In(d) => {
            if d <= 0 {
                return Err(ExpiryError::NotInFuture(
                    "the duration must be positive".into(),
                ));
            }
            now.saturating_add(d)
        }
        ExpiryRequest::At(t) => {
            if t <= now {
                return Err(ExpiryError::NotInFuture(format!(
                    "{} has passed",
                    crate::rfc3339(t)
                )));
            }
            t
        }
        ExpiryRequest::Extend(d) => {
            if d <= 0 {
                return Err(ExpiryError::NotInFuture(
                    "the extension must be positive".into(),
                ));
            }
            match current {
                Expiry::At(t) => t.max(now).saturating_add(d),
                Expiry::Never => {
                    return Err(ExpiryError::NothingToExtend(
                        "it never expires: there is nothing to extend (set a time instead)".into(),
                    ))
                }
                Expiry::Unset | Expiry::Unreadable => {
                    return Err(ExpiryError::NothingToExtend(
                        "it has no expiry to extend (set one instead)".into(),
                    ))
                }
            }
        }
    };
    if let Some(cap) = cap {
        let latest = now.saturating_add(cap.max_ttl_ms);
        if at > latest {
            return Err(ExpiryError::ExceedsMax {
                cap: cap.clone(),
                latest,
            });
        }
    }
    Ok(Expiry::At(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn cap(h: i64) -> Cap {
        Cap {
            max_ttl_ms: h * H,
            source: "blueprint web@2".into(),
        }
    }

    #[test]
    fn tags_read_and_write_back() {
        assert_eq!(Expiry::from_tag(None), Expiry::Unset);
        assert_eq!(Expiry::from_tag(Some(" ")), Expiry::Unset);
        assert_eq!(Expiry::from_tag(Some("NEVER")), Expiry::Never);
        assert_eq!(Expiry::from_tag(Some("tomorrow")), Expiry::Unreadable);
        let t = Expiry::from_tag(Some("2026-12-03T10:00:00Z"));
        assert_eq!(t.at(), Some(1_796_292_000_000));
        assert_eq!(t.tag_value().as_deref(), Some("2026-12-03T10:00:00Z"));
        // Offsets are read as the instant they name.
        assert_eq!(Expiry::from_tag(Some("2026-12-03T11:00:00+01:00")), t);
        assert_eq!(Expiry::Never.tag_value().as_deref(), Some("never"));
        assert_eq!(Expiry::Unset.tag_value(), None);
    }

    #[test]
    fn requests_resolve_within_the_cap() {
        let now = 100 * H;
        let c = cap(24);
        let r = |req, cur| resolve(req, cur, now, Some(&c));
        assert_eq!(
            r(ExpiryRequest::In(3 * H), Expiry::Unset),
            Ok(Expiry::At(now + 3 * H))
        );
        // Exactly the cap is allowed; a millisecond more is not.
        assert_eq!(
            r(ExpiryRequest::In(24 * H), Expiry::Unset),
            Ok(Expiry::At(now + 24 * H))
        );
        match r(ExpiryRequest::At(now + 24 * H + 1), Expiry::Unset) {
            Err(ExpiryError::ExceedsMax { cap, latest }) => {
                assert_eq!(
                    (cap.source.as_str(), latest),
                    ("blueprint web@2", now + 24 * H)
                );
            }
            other => panic!("{other:?}"),
        }
        // Extending adds to the current expiry, or to now once it passed.
        assert_eq!(
            r(ExpiryRequest::Extend(2 * H), Expiry::At(now + H)),
            Ok(Expiry::At(now + 3 * H))
        );
        assert_eq!(
            r(ExpiryRequest::Extend(2 * H), Expiry::At(now - 5 * H)),
            Ok(Expiry::At(now + 2 * H))
        );
        assert!(matches!(
            r(ExpiryRequest::Extend(20 * H), Expiry::At(now + 5 * H)),
            Err(ExpiryError::ExceedsMax { .. })
        ));
        assert!(matches!(
            r(ExpiryRequest::Extend(H), Expiry::Unset),
            Err(ExpiryError::NothingToExtend(_))
        ));
        assert!(matches!(
            r(ExpiryRequest::Extend(H), Expiry::Never),
            Err(ExpiryError::NothingToExtend(_))
        ));
        assert!(matches!(
            r(ExpiryRequest::At(now), Expiry::Unset),
            Err(ExpiryError::NotInFuture(_))
        ));
        assert!(matches!(
            r(ExpiryRequest::In(0), Expiry::Unset),
            Err(ExpiryError::NotInFuture(_))
        ));
        // Never is not the cap's to refuse; no cap, no bound.
        assert_eq!(r(ExpiryRequest::Never, Expiry::At(now)), Ok(Expiry::Never));
        assert_eq!(
            resolve(ExpiryRequest::In(1000 * H), Expiry::Unset, now, None),
            Ok(Expiry::At(now + 1000 * H))
        );
    }
}
