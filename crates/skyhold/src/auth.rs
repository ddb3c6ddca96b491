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

/// Failed logins per key (user name, client address) within a window.
pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` if any of `keys` is locked out.
    pub fn check(&self, keys: &[String]) -> Result<(), Duration> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for k in keys {
            if let Some((n, since)) = map.get(k) {
                let elapsed = now.duration_since(*since);
                if *n >= self.max_failures && elapsed < self.window {
                    return Err(self.window - elapsed);
                }
            }
        }
        Ok(())
    }

    pub fn failed(&self, keys: &[String]) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() > 100_000 {
            let window = self.window;
            map.retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        for k in keys {
            let e = map.entry(k.clone()).or_insert((0, now));
            if now.duration_since(e.1) >= self.window {
                *e = (0, now);
            }
            e.0 += 1;
        }
    }

    pub fn succeeded(&self, keys: &[String]) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
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
    fn limiter_locks_after_failures_and_resets_on_success() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let k = vec!["user:bob".to_owned()];
        for _ in 0..3 {
            assert!(l.check(&k).is_ok());
            l.failed(&k);
        }
        assert!(l.check(&k).is_err());
        l.succeeded(&k);
        assert!(l.check(&k).is_ok());
    }

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        assert_ne!(random_token("x_", 16), random_token("x_", 16));
        assert_eq!(sha256_hex("a"), sha256_hex("a"));
        assert!(ct_eq("abc", "abc") && !ct_eq("abc", "abd") && !ct_eq("a", "ab"));
    }
}
