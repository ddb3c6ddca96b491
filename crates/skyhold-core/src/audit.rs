//! The audit log's entries and their hash chain.
//!
//! Each entry carries a gap-free sequence number (from 1), the hash of the
//! entry before it (`prev_hash`; 64 zeros for the first) and its own `hash`:
//! the lower-case hex SHA-256 of the entry's **canonical encoding**, which is
//! the JSON object of every field except `hash`, with keys sorted
//! (recursively), no whitespace, strings UTF-8 (not `\u`-escaped beyond what
//! JSON requires), integers as integers and absent values as `null`. That is
//! exactly what Python's
//! `json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
//! writes for an exported JSONL line with `hash` removed, so an auditor can
//! recompute the chain in a few lines (README, "Audit log").

use crate::Millis;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How the actor proved who they are.
pub mod auth {
    pub const PASSWORD: &str = "password";
    pub const SESSION: &str = "session";
    pub const TOKEN: &str = "token";
    pub const PROXY: &str = "proxy";
    pub const OIDC: &str = "oidc";
    pub const SYSTEM: &str = "system";
    /// Nobody was authenticated (a failed login, an untrusted header).
    pub const NONE: &str = "none";
}

/// How an audited attempt ended.
pub mod outcome {
    pub const OK: &str = "ok";
    pub const DENIED: &str = "denied";
    pub const FAILED: &str = "failed";
}

/// What an entry is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditTarget {
    /// `resource`, `user`, `group`, `grant`, `token`, `session`, `account`,
    /// `action`, `audit`, or '' when the entry is about no object.
    pub kind: String,
    /// skyhold's id of it (resource id, user id, …), '' when none.
    pub id: String,
    pub provider_id: String,
    pub account: String,
    pub region: String,
    pub name: String,
}

/// An entry before it is appended: everything but its place in the chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditDraft {
    pub time: Millis,
    /// The user's id; `None` for the system or an unknown user.
    pub actor_id: Option<i64>,
    /// The user name, or `system:` plus the job or policy.
    pub actor: String,
    /// One of [`auth`].
    pub auth: String,
    pub client_ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub idempotency_key: String,
    /// What was attempted: `login`, `resource.stop`, `grant.create`, …
    pub action: String,
    pub target: AuditTarget,
    /// One of [`outcome`].
    pub outcome: String,
    /// Why it was denied or failed (an error code and message), '' on success.
    pub reason: String,
    /// For changes: the value before and after (never a secret).
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// A stored entry: a draft with its sequence number and hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub draft: AuditDraft,
    pub prev_hash: String,
    pub hash: String,
}

/// Longest stored text field (user agents, reasons); longer values are cut.
pub const FIELD_MAX_CHARS: usize = 500;

impl AuditDraft {
    /// Cuts over-long fields and replaces NUL characters (which
    /// PostgreSQL's text refuses) with U+FFFD, so an entry stays small and
    /// storable whatever came in.
    pub fn bounded(mut self) -> Self {
        for f in [
            &mut self.actor,
            &mut self.client_ip,
            &mut self.user_agent,
            &mut self.request_id,
            &mut self.idempotency_key,
            &mut self.reason,
            &mut self.target.name,
            &mut self.target.provider_id,
        ] {
            if f.chars().count() > FIELD_MAX_CHARS {
                *f = crate::clip(f, FIELD_MAX_CHARS);
            }
        }
        for f in [
            &mut self.actor,
            &mut self.auth,
            &mut self.client_ip,
            &mut self.user_agent,
            &mut self.request_id,
            &mut self.idempotency_key,
            &mut self.action,
            &mut self.outcome,
            &mut self.reason,
            &mut self.target.kind,
            &mut self.target.id,
            &mut self.target.provider_id,
            &mut self.target.account,
            &mut self.target.region,
            &mut self.target.name,
        ] {
            if f.contains('\0') {
                *f = f.replace('\0', "\u{FFFD}");
            }
        }
        self
    }

    /// Places the draft in the chain after `prev_hash` as entry `seq`.
    pub fn seal(self, seq: i64, prev_hash: &str) -> AuditEntry {
        let mut e = AuditEntry {
            seq,
            draft: self,
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        e
    }
}

impl AuditEntry {
    /// The entry as a JSON object with every field (the export format).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The canonical encoding: every field but `hash`, keys sorted.
    pub fn canonical(&self) -> String {
        let mut v = self.to_json();
        if let Value::Object(m) = &mut v {
            m.remove("hash");
        }
        canonical_json(&v)
    }

    pub fn compute_hash(&self) -> String {
        hex_sha256(self.canonical().as_bytes())
    }
}

fn hex_sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// JSON with object keys sorted at every depth and no whitespace (the
/// sorting does not depend on how `serde_json` orders its maps).
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The result of checking a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    /// Entries checked.
    pub checked: u64,
    /// The first entry (sequence number) that is missing, altered or does
    /// not link to the one before it.
    pub first_bad_seq: Option<i64>,
    /// What is wrong there.
    pub problem: Option<String>,
    /// The last good entry: (seq, hash).
    pub head: Option<(i64, String)>,
}

/// Checks a chain entry by entry, in order. Feed it entries by ascending
/// `seq`; it stops judging at the first problem (later entries still count
/// as checked only up to there).
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    /// The next expected sequence number (`None`: take the first as given,
    /// for a partial export).
    expect_seq: Option<i64>,
    /// The expected `prev_hash` of the next entry (`None`: unknown).
    expect_prev: Option<String>,
    report: VerifyReport,
}

impl ChainVerifier {
    /// For a whole chain: it must start at 1 after the genesis hash.
    pub fn from_start() -> Self {
        Self {
            expect_seq: Some(1),
            expect_prev: Some(GENESIS_HASH.to_owned()),
            report: VerifyReport {
                ok: true,
                checked: 0,
                first_bad_seq: None,
                problem: None,
                head: None,
            },
        }
    }

    /// For a slice of a chain (an export with `since`): the first entry is
    /// taken on trust, every later one must follow it.
    pub fn from_anywhere() -> Self {
        let mut v = Self::from_start();
        v.expect_seq = None;
        v.expect_prev = None;
        v
    }

    fn fail(&mut self, seq: i64, problem: String) {
        self.report.ok = false;
        self.report.first_bad_seq = Some(seq);
        self.report.problem = Some(problem);
    }

    pub fn failed(&self) -> bool {
        !self.report.ok
    }

    /// Checks the next entry.
    pub fn push(&mut self, e: &AuditEntry) {
        if self.failed() {
            return;
        }
        if let Some(want) = self.expect_seq {
            if e.seq != want {
                let problem = if e.seq > want {
                    format!("entries {want}..{} are missing", e.seq - 1)
                } else {
                    format!("entry {} appears out of order after {}", e.seq, want - 1)
                };
                self.fail(want.min(e.seq), problem);
                return;
            }
        }
        if let Some(prev) = &self.expect_prev {
            if &e.prev_hash != prev {
                self.fail(
                    e.seq,
                    format!("entry {} does not link to the entry before it", e.seq),
                );
                return;
            }
        }
        if e.compute_hash() != e.hash {
            self.fail(
                e.seq,
                format!("entry {} was altered (its hash does not match)", e.seq),
            );
            return;
        }
        self.report.checked += 1;
        self.expect_seq = Some(e.seq + 1);
        self.expect_prev = Some(e.hash.clone());
        self.report.head = Some((e.seq, e.hash.clone()));
    }

    /// Ends the check. `head` is the chain's recorded head (seq, hash),
    /// when known: entries missing at the end are caught against it.
    pub fn finish(mut self, head: Option<(i64, &str)>) -> VerifyReport {
        if let (false, Some((seq, hash))) = (self.failed(), head) {
            let last = self.report.head.as_ref().map_or(0, |h| h.0);
            if seq > last {
                self.fail(last + 1, format!("entries {}..{seq} are missing", last + 1));
            } else if seq == last
                && seq > 0
                && self.report.head.as_ref().is_some_and(|h| h.1 != hash)
            {
                self.fail(seq, format!("entry {seq} differs from the recorded head"));
            }
        }
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let e = AuditDraft {
                    time: 1_700_000_000_000 + seq,
                    actor: "ann".into(),
                    action: "resource.stop".into(),
                    outcome: outcome::OK.into(),
                    new: Some(json!({"state": "stopped", "tags": {"b": "1", "a": "2"}})),
                    ..Default::default()
                }
                .seal(seq, &prev);
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    fn verify(entries: &[AuditEntry], head: Option<(i64, &str)>) -> VerifyReport {
        let mut v = ChainVerifier::from_start();
        for e in entries {
            v.push(e);
        }
        v.finish(head)
    }

    #[test]
    fn bounded_drafts_carry_no_nul_and_no_overlong_field() {
        let d = AuditDraft {
            actor: "ev\0il".into(),
            target: AuditTarget {
                name: "x\0".into(),
                ..Default::default()
            },
            user_agent: "u".repeat(FIELD_MAX_CHARS + 10),
            ..Default::default()
        }
        .bounded();
        assert_eq!(d.actor, "ev\u{FFFD}il");
        assert_eq!(d.target.name, "x\u{FFFD}");
        // Cut to FIELD_MAX_CHARS, then an ellipsis.
        assert_eq!(d.user_agent.chars().count(), FIELD_MAX_CHARS + 1);
        assert!(d.user_agent.ends_with('…'));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = json!({"b": {"z": 1, "a": [ {"y": "\n", "x": null} ]}, "a": "é"});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":"é","b":{"a":[{"x":null,"y":"\n"}],"z":1}}"#
        );
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = chain(5);
        let r = verify(&c, Some((5, &c[4].hash)));
        assert!(r.ok, "{r:?}");
        assert_eq!((r.checked, r.first_bad_seq), (5, None));
        // The canonical form leaves out the hash and keeps the link.
        assert!(!c[0].canonical().contains(&c[0].hash));
        assert!(c[1].canonical().contains(&c[0].hash));
    }

    #[test]
    fn an_edit_a_deletion_and_a_cut_tail_are_named() {
        let mut c = chain(5);
        c[2].draft.actor = "mallory".into();
        assert_eq!(verify(&c, None).first_bad_seq, Some(3));

        let mut c = chain(5);
        c.remove(1);
        let r = verify(&c, None);
        assert_eq!((r.first_bad_seq, r.checked), (Some(2), 1));

        // A re-hashed edit breaks the next link.
        let mut c = chain(5);
        c[2].draft.reason = "x".into();
        c[2].hash = c[2].compute_hash();
        assert_eq!(verify(&c, None).first_bad_seq, Some(4));

        let c = chain(5);
        let head = c[4].hash.clone();
        assert_eq!(verify(&c[..3], Some((5, &head))).first_bad_seq, Some(4));
    }

    #[test]
    fn a_slice_verifies_from_anywhere() {
        let c = chain(6);
        let mut v = ChainVerifier::from_anywhere();
        for e in &c[2..] {
            v.push(e);
        }
        let r = v.finish(None);
        assert!(r.ok && r.checked == 4, "{r:?}");
    }

    #[test]
    fn long_fields_are_cut() {
        let d = AuditDraft {
            user_agent: "x".repeat(5000),
            ..Default::default()
        }
        .bounded();
        assert!(d.user_agent.chars().count() <= FIELD_MAX_CHARS + 1);
    }
}
