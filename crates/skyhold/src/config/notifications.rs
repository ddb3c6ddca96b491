//! `[notifications]`: how the outbox is delivered: retries
//! (`retry_base`), mail (`[notifications.email]`, SMTP with STARTTLS, TLS
//! or none) and webhooks (`[[notifications.webhooks]]`, each with its HMAC
//! secret).

use serde::Deserialize;
use skyhold_core::Secret;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotifications {
    retry_base: Option<String>,
    max_attempts: Option<u32>,
    email: Option<RawEmail>,
    #[serde(default)]
    webhooks: Vec<RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    tls: Option<String>,
    from: Option<String>,
    username: Option<String>,
    password_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Option<String>,
    secret: Option<Secret>,
    secret_env: Option<String>,
}

/// How mail reaches the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: Secret,
}

#[derive(Debug, Clone)]
pub struct Notifications {
    /// The first retry's delay; each next one doubles it (up to an hour).
    pub retry_base: Duration,
    /// After this many failed attempts a delivery is `dead`.
    pub max_attempts: u32,
    pub email: Option<EmailConfig>,
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications {
            retry_base: Duration::from_secs(30),
            max_attempts: 8,
            email: None,
            webhooks: Vec::new(),
        }
    }
}

impl RawNotifications {
    /// Validated, or the key and what is wrong with it.
    pub(super) fn parse(
        self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Notifications, (String, String)> {
        let err = |k: &str, m: &str| (format!("notifications.{k}"), m.to_owned());
        let mut out = Notifications::default();
        if let Some(v) = self.retry_base {
            let ms = skyhold_core::search::parse_duration(v.trim())
                .map_err(|m| err("retry_base", &m))?;
            if ms < 1000 {
                return Err(err("retry_base", "at least 1s"));
            }
            out.retry_base = Duration::from_millis(ms as u64);
        }
        if let Some(n) = self.max_attempts {
            if !(1..=50).contains(&n) {
                return Err(err("max_attempts", "1 to 50"));
            }
            out.max_attempts = n;
        }
        if let Some(e) = self.email {
            let host = e
                .smtp_host
                .filter(|h| !h.trim().is_empty())
                .ok_or_else(|| err("email.smtp_host", "is required"))?;
            let tls = match e.tls.as_deref().unwrap_or("starttls") {
                "none" => SmtpTls::None,
                "starttls" => SmtpTls::StartTls,
                "tls" => SmtpTls::Tls,
                _ => return Err(err("email.tls", "none, starttls or tls")),
            };
            let from = e
                .from
                .ok_or_else(|| err("email.from", "is required (skyhold@example.com)"))?;
            if from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(err(
                    "email.from",
                    "not an address (skyhold@example.com or \"skyhold <skyhold@example.com>\")",
                ));
            }
            let password = match e.password_env {
                None => None,
                Some(var) => Some(Secret::new(env(&var).ok_or_else(|| {
                    err(
                        "email.password_env",
                        &format!("the variable {var} is not set"),
                    )
                })?)),
            };
            if password.is_some() != e.username.is_some() {
                return Err(err(
                    "email.username",
                    "give username and password_env together (or neither)",
                ));
            }
            out.email = Some(EmailConfig {
                smtp_port: e.smtp_port.unwrap_or(match tls {
                    SmtpTls::None => 25,
                    SmtpTls::StartTls => 587,
                    SmtpTls::Tls => 465,
                }),
                smtp_host: host,
                tls,
                from,
                username: e.username,
                password,
            });
        }
        for (i, w) in self.webhooks.into_iter().enumerate() {
            let key = |k: &str| format!("webhooks[{i}].{k}");
            let url = w.url.ok_or_else(|| {
                (
                    format!("notifications.{}", key("url")),
                    "is required".into(),
                )
            })?;
            let ok = url::Url::parse(&url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
            if !ok {
                return Err((
                    format!("notifications.{}", key("url")),
                    "an http(s) URL".into(),
                ));
            }
            let secret = match (w.secret, w.secret_env) {
                (Some(s), None) => s,
                (None, Some(var)) => Secret::new(env(&var).ok_or_else(|| {
                    (
                        format!("notifications.{}", key("secret_env")),
                        format!("the variable {var} is not set"),
                    )
                })?),
                _ => {
                    return Err((
                        format!("notifications.{}", key("secret")),
                        "give secret or secret_env (one of them): deliveries are signed".into(),
                    ))
                }
            };
            if secret.expose().len() < 16 {
                return Err((
                    format!("notifications.{}", key("secret")),
                    "at least 16 characters".into(),
                ));
            }
            out.webhooks.push(WebhookConfig { url, secret });
        }
        Ok(out)
    }
}
