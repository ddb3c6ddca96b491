//! Domain types shared by every part of skyhold: typed ids, resources, the
//! provider seam and the inventory query. This crate knows no SQL, no HTTP
//! and no cloud SDK.

pub mod access;
pub mod audit;
pub mod blueprint;
pub mod expiry;
pub mod idle;
pub mod ids;
pub mod instance_types;
pub mod ladder;
pub mod launch;
pub mod ledger;
pub mod policy;
pub mod prices;
pub mod provider;
pub mod query;
pub mod quota;
pub mod resource;
pub mod search;

pub use access::{Level, ObjectRef, Subject};
pub use ids::{
    AccountName, ActionId, BlueprintId, GrantId, GroupId, LaunchId, ReservationId, ResourceId,
    SshKeyId, TokenId, UserId, ViewId,
};
pub use provider::{
    ActReceipt, AlarmHistoryItem, BucketObject, ImageInfo, NewImage, ObjectPage, PowerAction,
    Provider, ProviderError, ProviderErrorKind, RunSpec,
};
pub use query::{Cursor, QueryError, ResourceQuery, SortKey, Visibility};
pub use resource::{
    diff, FieldChange, ObservedResource, Resource, ResourceKind, Role, GLOBAL_REGION,
};

/// Milliseconds since the Unix epoch: the one time representation stored and
/// compared everywhere (the edge renders RFC 3339).
pub type Millis = i64;

pub fn now_millis() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// The time as skyhold's deadlines read it (expiry, and the policies to
/// come): the system clock plus an offset, zero unless a test (or a demo)
/// moves it forward to pass a deadline without waiting for it. Clones
/// share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> Millis {
        now_millis().saturating_add(self.offset_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Moves this clock (and its clones) `ms` forward.
    pub fn advance(&self, ms: i64) {
        self.offset_ms
            .fetch_add(ms, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Renders stored milliseconds as RFC 3339 (UTC, second precision).
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// `s` cut to at most `max` characters (an ellipsis marks the cut), for
/// echoing user input in errors and logs without echoing megabytes.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// A secret value (password, secret key). Debug and Display redact it, and it
/// is never serialized; code that needs the value calls [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod secret_tests {
    use super::Secret;

    #[test]
    fn secrets_are_redacted() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
