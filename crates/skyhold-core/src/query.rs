//! The inventory query: what the API's query string, the web filters and the
//! CLI flags all turn into. Parsing validates every parameter and names the
//! offending one, so handlers never see an invalid query.

use crate::{AccountName, ResourceKind};
use serde::{Deserialize, Serialize};
use std::fmt;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// Columns a listing can be sorted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Account,
    Region,
    Kind,
    Name,
    ProviderId,
    State,
    Type,
    PrivateIp,
    PublicIp,
    LaunchTime,
    Owner,
}

impl SortKey {
    pub const ALL: [SortKey; 11] = [
        SortKey::Account,
        SortKey::Region,
        SortKey::Kind,
        SortKey::Name,
        SortKey::ProviderId,
        SortKey::State,
        SortKey::Type,
        SortKey::PrivateIp,
        SortKey::PublicIp,
        SortKey::LaunchTime,
        SortKey::Owner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Account => "account",
            SortKey::Region => "region",
            SortKey::Kind => "kind",
            SortKey::Name => "name",
            SortKey::ProviderId => "provider_id",
            SortKey::State => "state",
            SortKey::Type => "type",
            SortKey::PrivateIp => "private_ip",
            SortKey::PublicIp => "public_ip",
            SortKey::LaunchTime => "launch_time",
            SortKey::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the column holds a number (times) rather than text.
    pub fn is_numeric(self) -> bool {
        matches!(self, SortKey::LaunchTime)
    }
}

/// Where the next page starts: the sort value and id of the last row seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub value: CursorValue,
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CursorValue {
    Int(i64),
    Text(String),
}

impl Cursor {
    /// Opaque, URL-safe encoding (hex of a small JSON document).
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        json.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(s: &str) -> Option<Self> {
        if !s.len().is_multiple_of(2) || s.len() > 4096 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect();
        serde_json::from_slice(&bytes?).ok()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceQuery {
    pub kind: Option<ResourceKind>,
    pub accounts: Vec<AccountName>,
    pub regions: Vec<String>,
    pub states: Vec<String>,
    pub types: Vec<String>,
    /// Free-text words; every word must match (name, id, IPs, tag values).
    /// The search-language query (`q`): free words, field, tag and time terms.
    pub search: crate::search::Search,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: u32,
    pub cursor: Option<Cursor>,
    pub include_deleted: bool,
    /// Set by the application layer for callers who may not see every
    /// account (never from the query string): `None` sees everything.
    pub visibility: Option<Visibility>,
}

/// What a caller may see when some accounts are restricted from them: every
/// resource outside `hidden_accounts`, and inside them only the resources
/// granted one by one or owned by one of `owners`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Visibility {
    pub hidden_accounts: Vec<String>,
    pub granted_ids: Vec<crate::ResourceId>,
    /// Owner values that are the caller's own (`ann`, `group:dev`).
    pub owners: Vec<String>,
}

impl Default for ResourceQuery {
    fn default() -> Self {
        Self {
            kind: None,
            accounts: Vec::new(),
            regions: Vec::new(),
            states: Vec::new(),
            types: Vec::new(),
            search: crate::search::Search::default(),
            sort: SortKey::Name,
            descending: false,
            limit: DEFAULT_LIMIT,
            cursor: None,
            include_deleted: false,
            visibility: None,
        }
    }
}

/// A query parameter that could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub parameter: String,
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid parameter '{}': {}",
            self.parameter, self.message
        )
    }
}

impl std::error::Error for QueryError {}

fn err(parameter: &str, message: impl Into<String>) -> QueryError {
    QueryError {
        parameter: parameter.to_owned(),
        message: message.into(),
    }
}

/// Splits a comma-separated filter value, dropping empty parts.
fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl ResourceQuery {
    /// The free words that must match (not negated), lower-cased.
    pub fn positive_words(&self) -> Vec<String> {
        self.search.words().map(str::to_owned).collect()
    }

    /// Builds a query from `key=value` pairs (a URL query string, form fields
    /// or CLI flags). Empty values are ignored; unknown keys are rejected.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, QueryError> {
        let mut q = ResourceQuery::default();
        for (key, value) in pairs {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match key {
                "kind" => {
                    q.kind = Some(ResourceKind::parse(value).ok_or_else(|| {
                        let known: Vec<_> = ResourceKind::ALL.iter().map(|k| k.as_str()).collect();
                        err(
                            "kind",
                            format!(
                                "unknown kind {value:?}; expected one of {}",
                                known.join(", ")
                            ),
                        )
                    })?);
                }
                "account" => {
                    for a in list(value) {
                        q.accounts
                            .push(AccountName::parse(a).map_err(|m| err("account", m))?);
                    }
                }
                "region" => {
                    for r in list(value) {
                        crate::ids::validate_region(r).map_err(|m| err("region", m))?;
                        q.regions.push(r.to_owned());
                    }
                }
                "state" => {
                    for s in list(value) {
                        if s.len() > 64 {
                            return Err(err("state", "value too long"));
                        }
                        q.states.push(s.to_lowercase());
                    }
                }
                "type" => {
                    for t in list(value) {
                        if t.len() > 64 {
                            return Err(err("type", "value too long"));
                        }
                        q.types.push(t.to_owned());
                    }
                }
                "q" => {
                    q.search = crate::search::parse(value, crate::now_millis())
                        .map_err(|e| err("q", e.to_string()))?;
                }
                "sort" => {
                    let (desc, name) = match value.strip_prefix('-') {
                        Some(rest) => (true, rest),
                        None => (false, value),
                    };
                    q.sort = SortKey::parse(name).ok_or_else(|| {
                        let known: Vec<_> = SortKey::ALL.iter().map(|k| k.as_str()).collect();
                        err(
                            "sort",
                            format!(
                                "unknown sort column {name:?}; expected one of {} (prefix '-' for descending)",
                                known.join(", ")
                            ),
                        )
                    })?;
                    q.descending = desc;
                }
                "order" => {
                    q.descending = match value {
                        "asc" => false,
                        "desc" => true,
                        _ => return Err(err("order", "expected \"asc\" or \"desc\"")),
                    };
                }
                "limit" => {
                    let n: u32 = value.parse().map_err(|_| {
                        err("limit", format!("expected a whole number, got {value:?}"))
                    })?;
                    if n == 0 || n > MAX_LIMIT {
                        return Err(err("limit", format!("must be between 1 and {MAX_LIMIT}")));
                    }
                    q.limit = n;
                }
                "cursor" => {
                    q.cursor = Some(Cursor::decode(value).ok_or_else(|| {
                        err(
                            "cursor",
                            "not a cursor returned by this API (use next_cursor as given)",
                        )
                    })?);
                }
                "include_deleted" => {
                    q.include_deleted = match value {
                        "true" | "1" | "yes" | "on" => true,
                        "false" | "0" | "no" | "off" => false,
                        _ => return Err(err("include_deleted", "expected true or false")),
                    };
                }
                other => {
                    return Err(err(other, "unknown parameter"));
                }
            }
        }
        if let Some(c) = &q.cursor {
            let numeric = matches!(c.value, CursorValue::Int(_));
            if numeric != q.sort.is_numeric() {
                return Err(err("cursor", "cursor does not belong to this sort order"));
            }
        }
        Ok(q)
    }

    /// The query as `key=value` pairs, without cursor: for links that keep
    /// the current filters (bookmarkable URLs) and for the CLI.
    /// The whole filter as one search-language text: the kind and the
    /// account/region/state/type filters become field terms in front of the
    /// search (what a saved view stores).
    pub fn as_search_text(&self) -> String {
        use crate::search::{Field, Pattern, Term, TermKind};
        let mut terms = Vec::new();
        let kind = self.kind.map(|k| vec![k.as_str().to_owned()]);
        let accounts: Vec<String> = self.accounts.iter().map(|a| a.to_string()).collect();
        for (field, values) in [
            (Field::Kind, kind.unwrap_or_default()),
            (Field::Account, accounts),
            (Field::Region, self.regions.clone()),
            (Field::State, self.states.clone()),
            (Field::Type, self.types.clone()),
        ] {
            let values: Vec<Pattern> = values.iter().filter_map(|v| Pattern::new(v).ok()).collect();
            if !values.is_empty() {
                terms.push(Term {
                    negated: false,
                    kind: TermKind::Field { field, values },
                });
            }
        }
        terms.extend(self.search.terms.iter().cloned());
        crate::search::Search { terms }.to_string()
    }

    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Some(k) = self.kind {
            v.push(("kind", k.as_str().to_owned()));
        }
        let join = |xs: &[String]| xs.join(",");
        if !self.accounts.is_empty() {
            let a: Vec<String> = self.accounts.iter().map(|a| a.to_string()).collect();
            v.push(("account", join(&a)));
        }
        if !self.regions.is_empty() {
            v.push(("region", join(&self.regions)));
        }
        if !self.states.is_empty() {
            v.push(("state", join(&self.states)));
        }
        if !self.types.is_empty() {
            v.push(("type", join(&self.types)));
        }
        if !self.search.is_empty() {
            v.push(("q", self.search.to_string()));
        }
        if self.sort != SortKey::Name || self.descending {
            let s = if self.descending {
                format!("-{}", self.sort.as_str())
            } else {
                self.sort.as_str().to_owned()
            };
            v.push(("sort", s));
        }
        if self.limit != DEFAULT_LIMIT {
            v.push(("limit", self.limit.to_string()));
        }
        if self.include_deleted {
            v.push(("include_deleted", "true".to_owned()));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_query() {
        let q = ResourceQuery::from_pairs([
            ("kind", "instance"),
            ("account", "prod,dev"),
            ("state", "Running"),
            ("q", "Web  10.0.1"),
            ("sort", "-launch_time"),
            ("limit", "25"),
            ("include_deleted", "true"),
        ])
        .unwrap();
        assert_eq!(q.kind, Some(ResourceKind::Instance));
        assert_eq!(q.accounts.len(), 2);
        assert_eq!(q.states, vec!["running"]);
        assert_eq!(q.search.words().collect::<Vec<_>>(), vec!["web", "10.0.1"]);
        assert_eq!(q.sort, SortKey::LaunchTime);
        assert!(q.descending && q.include_deleted);
        assert_eq!(q.limit, 25);
    }

    #[test]
    fn names_the_bad_parameter() {
        for (k, v) in [
            ("limit", "0"),
            ("limit", "many"),
            ("limit", "5000"),
            ("sort", "colour"),
            ("kind", "buckets"),
            ("account", "Bad Name"),
            ("cursor", "zz"),
            ("include_deleted", "maybe"),
            ("region", "EU WEST"),
            ("frobnicate", "1"),
        ] {
            let e = ResourceQuery::from_pairs([(k, v)]).unwrap_err();
            assert_eq!(e.parameter, k, "{k}={v}");
        }
    }

    #[test]
    fn filters_fold_into_one_search() {
        let q = ResourceQuery::from_pairs([
            ("kind", "instance"),
            ("account", "team-a"),
            ("state", "running"),
            ("q", "web -tag:owner"),
        ])
        .expect("valid");
        let text = q.as_search_text();
        assert_eq!(
            text,
            "kind:instance account:team-a state:running web -tag:owner"
        );
        let again = ResourceQuery::from_pairs([("q", text.as_str())]).expect("parses back");
        assert_eq!(again.search.terms.len(), 5);
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor {
            value: CursorValue::Text("web-1".into()),
            id: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("7b7d"), None);
        assert_eq!(Cursor::decode("not hex"), None);
    }

    #[test]
    fn cursor_must_match_sort_type() {
        let c = Cursor {
            value: CursorValue::Text("x".into()),
            id: 1,
        }
        .encode();
        let e = ResourceQuery::from_pairs([("sort", "launch_time"), ("cursor", c.as_str())])
            .unwrap_err();
        assert_eq!(e.parameter, "cursor");
    }

    #[test]
    fn pairs_round_trip() {
        let q = ResourceQuery::from_pairs([("kind", "volume"), ("sort", "-name"), ("q", "db")])
            .unwrap();
        let pairs = q.to_pairs();
        let again = ResourceQuery::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        assert_eq!(q, again);
    }
}
