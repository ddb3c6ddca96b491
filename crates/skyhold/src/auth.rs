//! Credentials: argon2id password hashes, random tokens (stored only as
//! SHA-256 digests), and the login rate limiter.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash to verify against when the user does not exist, so a wrong user
/// name takes as long as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default())
}

/// `bytes` random bytes, hex-encoded, with an optional prefix.
pub fn random_token(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    format!("{prefix}{}", hex::encode(buf))
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Constant-time string comparison (for CSRF tokens).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Failed logins, counted per (user, client address) and per client
/// address, each with its own threshold, so an attacker elsewhere cannot
/// lock the real user out: five wrong passwords for `ann` from one address
/// lock out `ann` from that address only (and 50 from one address lock out
/// that address). Each lockout doubles the next one, up to an hour.
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Tally>>,
}

#[derive(Debug, Clone, Copy)]
struct Tally {
    failures: u32,
    since: Instant,
    /// Lockouts so far (the next lasts base · 2^n).
    lockouts: u32,
    locked_until: Option<Instant>,
}

/// The base lockout and how long failures are remembered.
const WINDOW: Duration = Duration::from_secs(300);
const MAX_LOCKOUT: Duration = Duration::from_secs(3600);

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl LoginLimiter {
    pub fn new() -> Self {
        Self {
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The keys a login attempt counts under.
    pub fn keys(username: &str, client: &str) -> [String; 2] {
        [
            format!("user-ip:{}|{client}", crate::auth::sha256_hex(username)),
            format!("ip:{client}"),
        ]
    }

    fn threshold(key: &str) -> u32 {
        if key.starts_with("ip:") {
            50
        } else {
            5
        }
    }

    /// `Err(retry_after)` if any of `keys` is locked out.
    pub fn check(&self, keys: &[String]) -> Result<(), Duration> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for k in keys {
            if let Some(until) = map.get(k).and_then(|t| t.locked_until) {
                if until > now {
                    return Err(until - now);
                }
            }
        }
        Ok(())
    }

    pub fn failed(&self, keys: &[String]) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() > 100_000 {
            map.retain(|_, t| {
                now.duration_since(t.since) < MAX_LOCKOUT || t.locked_until.is_some_and(|u| u > now)
            });
        }
        for k in keys {
            let t = map.entry(k.clone()).or_insert(Tally {
                failures: 0,
                since: now,
                lockouts: 0,
                locked_until: None,
            });
            if now.duration_since(t.since) >= WINDOW && t.locked_until.is_none_or(|u| u <= now) {
                t.failures = 0;
                t.since = now;
            }
            t.failures += 1;
            if t.failures >= Self::threshold(k) {
                let lock = (WINDOW * 2u32.saturating_pow(t.lockouts.min(10))).min(MAX_LOCKOUT);
                t.locked_until = Some(now + lock);
                t.lockouts += 1;
                t.failures = 0;
                t.since = now;
            }
        }
    }

    pub fn succeeded(&self, keys: &[String]) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Only the (user, address) pair is forgiven: a success from one
        // address says nothing about the others.
        if let Some(k) = keys.first() {
            map.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "garbage"));
    }

    #[test]
    fn limiter_locks_one_user_at_one_address_only() {
        let l = LoginLimiter::new();
        let attacker = LoginLimiter::keys("admin", "10.0.0.9").to_vec();
        let real = LoginLimiter::keys("admin", "127.0.0.1").to_vec();
        for _ in 0..5 {
            assert!(l.check(&attacker).is_ok());
            l.failed(&attacker);
        }
        assert!(
            l.check(&attacker).is_err(),
            "the attacker's address is locked out"
        );
        assert!(l.check(&real).is_ok(), "the real user elsewhere is not");
        // The second lockout lasts longer than the first.
        let first = l.check(&attacker).unwrap_err();
        assert!(first <= WINDOW);
        l.succeeded(&real);
        assert!(l.check(&real).is_ok());
    }

    #[test]
    fn limiter_locks_an_address_trying_many_users() {
        let l = LoginLimiter::new();
        for i in 0..50 {
            l.failed(&LoginLimiter::keys(&format!("user{i}"), "10.0.0.9"));
        }
        assert!(l.check(&LoginLimiter::keys("someone", "10.0.0.9")).is_err());
        assert!(l.check(&LoginLimiter::keys("someone", "127.0.0.1")).is_ok());
    }

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        assert_ne!(random_token("x_", 16), random_token("x_", 16));
        assert_eq!(sha256_hex("a"), sha256_hex("a"));
        assert!(ct_eq("abc", "abc") && !ct_eq("abc", "abd") && !ct_eq("a", "ab"));
    }
}
