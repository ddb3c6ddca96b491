//! The vocabulary of permissions: levels, subjects (who holds a grant),
//! objects (what a grant is on) and owners (read from cloud tags). The
//! decision itself lives in the application layer's one `authorize`.

use crate::ids::{AccountName, ResourceId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A permission level on an object. Ordered: `View < Operate < Manage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// See it (and, for an account, everything in it).
    View,
    /// Start, stop, reboot, refresh.
    Operate,
    /// Terminate, set owner and expiry, grant others on it.
    Manage,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::View, Level::Operate, Level::Manage];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::View => "view",
            Level::Operate => "operate",
            Level::Manage => "manage",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("unknown level {s:?}: use view, operate or manage"))
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a user or group name: 1-64 of letters, digits, `-_.@`.
pub fn validate_principal_name(what: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} name {:?}: use 1-64 characters of letters, digits, '-', '_', '.', '@'",
            crate::clip(s, 80)
        ))
    }
}

/// Who holds a grant: `user:NAME` or `group:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    User(String),
    Group(String),
}

impl Subject {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (kind, name) = s.split_once(':').ok_or_else(|| {
            format!(
                "subject {:?}: use user:NAME or group:NAME",
                crate::clip(s, 80)
            )
        })?;
        match kind {
            "user" => validate_principal_name("user", name).map(|()| Subject::User(name.into())),
            "group" => validate_principal_name("group", name).map(|()| Subject::Group(name.into())),
            _ => Err(format!(
                "subject {:?}: use user:NAME or group:NAME",
                crate::clip(s, 80)
            )),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(n) => write!(f, "user:{n}"),
            Subject::Group(n) => write!(f, "group:{n}"),
        }
    }
}

/// What a grant is on. Clusters join here later, through the same table and
/// the same check.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectRef {
    /// Every resource of the account.
    Account(AccountName),
    Resource(ResourceId),
    /// `manage` on a group: may manage its membership.
    Group(String),
    /// `manage` on a user: may act on that user's behalf.
    User(String),
    /// `view` shows a blueprint, `operate` launches from it (name or id).
    Blueprint(String),
}

impl ObjectRef {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "object {:?}: use account:NAME, resource:ID, group:NAME, user:NAME or blueprint:NAME",
                crate::clip(s, 80)
            )
        };
        let (kind, key) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "account" => AccountName::parse(key).map(ObjectRef::Account),
            "resource" => key
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .map(|n| ObjectRef::Resource(ResourceId(n)))
                .ok_or_else(|| {
                    format!(
                        "object {:?}: a resource id is a positive number",
                        crate::clip(s, 80)
                    )
                }),
            "group" => validate_principal_name("group", key).map(|()| ObjectRef::Group(key.into())),
            "user" => validate_principal_name("user", key).map(|()| ObjectRef::User(key.into())),
            "blueprint" => {
                validate_principal_name("blueprint", key).map(|()| ObjectRef::Blueprint(key.into()))
            }
            _ => Err(bad()),
        }
    }

    /// The stored kind (`account`, `resource`, `group`, `user`, `blueprint`).
    pub fn kind(&self) -> &'static str {
        match self {
            ObjectRef::Account(_) => "account",
            ObjectRef::Resource(_) => "resource",
            ObjectRef::Group(_) => "group",
            ObjectRef::User(_) => "user",
            ObjectRef::Blueprint(_) => "blueprint",
        }
    }

    /// The stored key: the account or principal name, or the resource id.
    pub fn key(&self) -> String {
        match self {
            ObjectRef::Account(a) => a.to_string(),
            ObjectRef::Resource(id) => id.to_string(),
            ObjectRef::Group(n) | ObjectRef::User(n) | ObjectRef::Blueprint(n) => n.clone(),
        }
    }

    /// Rebuilds an object from its stored kind and key.
    pub fn from_stored(kind: &str, key: &str) -> Result<Self, String> {
        Self::parse(&format!("{kind}:{key}"))
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.key())
    }
}

/// The tag skyhold writes (and reads first) for a resource's owner.
pub const OWNER_TAG: &str = "skyhold:owner";

/// The owner tag keys read after [`OWNER_TAG`] by default.
pub fn default_owner_tag_keys() -> Vec<String> {
    vec!["owner".into(), "Owner".into()]
}

/// A resource's owner from its tags: `skyhold:owner` first, then each of
/// `fallback` in order; the first non-empty value wins ('' when none).
pub fn owner_from_tags(tags: &BTreeMap<String, String>, fallback: &[String]) -> String {
    std::iter::once(OWNER_TAG)
        .chain(fallback.iter().map(String::as_str))
        .filter_map(|k| tags.get(k))
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
        .unwrap_or("")
        .to_owned()
}

/// Who an owner value names: a user (`ann`) or a group (`group:dev`).
pub fn owner_subject(owner: &str) -> Option<Subject> {
    let owner = owner.trim();
    if owner.is_empty() {
        return None;
    }
    match owner.strip_prefix("group:") {
        Some(g) => Some(Subject::Group(g.to_owned())),
        None => Some(Subject::User(owner.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_and_parse() {
        assert!(Level::View < Level::Operate && Level::Operate < Level::Manage);
        assert_eq!(Level::parse("operate"), Ok(Level::Operate));
        assert!(Level::parse("root").is_err());
    }

    #[test]
    fn subjects_and_objects_round_trip() {
        for s in ["user:ann", "group:dev"] {
            assert_eq!(Subject::parse(s).unwrap().to_string(), s);
        }
        for o in ["account:prod", "resource:42", "group:dev", "user:ann"] {
            let parsed = ObjectRef::parse(o).unwrap();
            assert_eq!(parsed.to_string(), o);
            assert_eq!(
                ObjectRef::from_stored(parsed.kind(), &parsed.key()).unwrap(),
                parsed
            );
        }
        for bad in [
            "ann",
            "team:x",
            "user:",
            "user:a b",
            "resource:x",
            "resource:-1",
            "account:Prod",
        ] {
            assert!(
                Subject::parse(bad).is_err() || ObjectRef::parse(bad).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(ObjectRef::parse("resource:0").is_err());
    }

    #[test]
    fn owner_tags_in_order() {
        let keys = default_owner_tag_keys();
        let mut t = BTreeMap::new();
        assert_eq!(owner_from_tags(&t, &keys), "");
        t.insert("Owner".to_owned(), "bob".to_owned());
        assert_eq!(owner_from_tags(&t, &keys), "bob");
        t.insert("owner".to_owned(), " ann ".to_owned());
        assert_eq!(owner_from_tags(&t, &keys), "ann");
        t.insert(OWNER_TAG.to_owned(), "group:dev".to_owned());
        assert_eq!(owner_from_tags(&t, &keys), "group:dev");
        assert_eq!(owner_from_tags(&t, &[]), "group:dev");
        t.insert(OWNER_TAG.to_owned(), "".to_owned());
        assert_eq!(owner_from_tags(&t, &[]), "");
        assert_eq!(
            owner_subject("group:dev"),
            Some(Subject::Group("dev".into()))
        );
        assert_eq!(owner_subject("ann"), Some(Subject::User("ann".into())));
        assert_eq!(owner_subject(" "), None);
    }
}
