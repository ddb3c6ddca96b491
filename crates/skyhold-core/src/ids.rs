//! Typed ids: mixing up a user id and a resource id is a compile error, and a
//! value that fails validation never exists.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! int_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

int_id!(
    /// skyhold's own id for a cached resource (stable across syncs).
    ResourceId
);
int_id!(
    /// A skyhold user.
    UserId
);
int_id!(
    /// An API token (not the secret itself).
    TokenId
);
int_id!(
    /// A user's saved view (named search).
    ViewId
);
int_id!(
    /// A group of users.
    GroupId
);
int_id!(
    /// A permission grant (subject, object, level).
    GrantId
);
int_id!(
    /// One requested action (start, stop, set owner, ...).
    ActionId
);
int_id!(
    /// One SSH public key of a user.
    SshKeyId
);
int_id!(
    /// A launch preset (its versions share the id).
    BlueprintId
);
int_id!(
    /// Quota held for a launch until it settles (or expires).
    ReservationId
);
int_id!(
    /// One launch: a request for servers from a blueprint.
    LaunchId
);

/// The configured name of an account: 1–64 characters of `[a-z0-9_-]`,
/// starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AccountName(String);

impl AccountName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok_start = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if s.is_empty() || s.len() > 64 || !ok_start || !ok_chars {
            return Err(format!(
                "invalid account name {s:?}: use 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for AccountName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AccountName::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks an AWS-style region name (`us-east-1`, `eu-central-2`, `local`).
pub fn validate_region(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid region {s:?}: expected something like \"us-east-1\""
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        assert!(AccountName::parse("prod-eu_1").is_ok());
        for bad in ["", "-x", "Prod", "a b", &"x".repeat(65)] {
            assert!(AccountName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn regions() {
        assert!(validate_region("us-east-1").is_ok());
        assert!(validate_region("US_EAST").is_err());
        assert!(validate_region("").is_err());
    }
}
