//! Delivering the outbox: each due delivery (one per notification and
//! channel) is claimed, sent by mail (SMTP through `lettre`) or webhook
//! (a signed JSON POST), and recorded as sent, or retried with
//! exponential backoff from `[notifications] retry_base` until
//! `max_attempts`, then `dead`. A notification is written once per
//! warning point (its dedupe key); a delivery is retried only after a
//! failure or after its claim lapsed (a crash mid-send), and webhook
//! receivers can drop a repeat by its `X-Skyhold-Delivery` id, the same on
//! every attempt.

use super::App;
use crate::config::{EmailConfig, SmtpTls, WebhookConfig};
use crate::error::AppError;
use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use skyhold_core::Role;
use skyhold_store::{Delivery, Notification};
use std::time::Duration;

/// How long a worker holds a delivery it is sending.
const CLAIM_MS: i64 = 5 * 60_000;

/// The longest wait between two attempts.
const MAX_BACKOFF_MS: i64 = 3_600_000;

/// The header carrying the HMAC-SHA256 of the body.
pub const SIGNATURE_HEADER: &str = "X-Skyhold-Signature";
/// The header carrying the notification's id (the same on every retry).
pub const DELIVERY_HEADER: &str = "X-Skyhold-Delivery";

/// What one delivery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryPass {
    pub sent: usize,
    pub retrying: usize,
    pub dead: usize,
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait before attempt `attempts + 1`: the base, doubled per failure.
fn backoff(base_ms: i64, attempts: i64) -> i64 {
    let doublings = (attempts - 1).clamp(0, 20) as u32;
    base_ms.saturating_mul(1 << doublings).min(MAX_BACKOFF_MS)
}

impl App {
    /// The channels a new notification goes to.
    pub(crate) fn channels(&self) -> Vec<String> {
        let n = &self.config.notifications;
        let mut out = Vec::new();
        if n.email.is_some() {
            out.push("email".to_owned());
        }
        out.extend((0..n.webhooks.len()).map(|i| format!("webhook:{i}")));
        out
    }

    /// Sends every delivery that is due now.
    pub async fn deliver_notifications(&self) -> Result<DeliveryPass, AppError> {
        let now = self.now();
        let mut pass = DeliveryPass::default();
        for (d, n) in self.store.due_deliveries(now, 100).await? {
            if !self.store.claim_delivery(d.id, now, now + CLAIM_MS).await? {
                continue;
            }
            let result = self.send(&d, &n).await;
            let attempts = d.attempts + 1;
            let now = self.now();
            let limits = &self.config.notifications;
            match result {
                Ok(()) => {
                    self.store
                        .finish_delivery(d.id, "sent", attempts, now, "", Some(now))
                        .await?;
                    pass.sent += 1;
                }
                Err(e) => {
                    let dead = attempts >= i64::from(limits.max_attempts);
                    let next = now + backoff(limits.retry_base.as_millis() as i64, attempts);
                    tracing::warn!(
                        notification = n.id, channel = %d.channel, attempts, dead, error = %e,
                        "a notification delivery failed"
                    );
                    self.store
                        .finish_delivery(
                            d.id,
                            if dead { "dead" } else { "pending" },
                            attempts,
                            next,
                            &skyhold_core::clip(&e, 500),
                            None,
                        )
                        .await?;
                    if dead {
                        pass.dead += 1;
                    } else {
                        pass.retrying += 1;
                    }
                }
            }
        }
        Ok(pass)
    }

    async fn send(&self, d: &Delivery, n: &Notification) -> Result<(), String> {
        let cfg = &self.config.notifications;
        if d.channel == "email" {
            let email = cfg
                .email
                .as_ref()
                .ok_or("mail is not configured any more")?;
            let to = if n.email.is_empty() {
                self.admin_emails().await?
            } else {
                vec![n.email.clone()]
            };
            if to.is_empty() {
                return Err(format!(
                    "no address for {}: set an email on the owner or an admin",
                    n.recipient
                ));
            }
            return send_mail(email, &to, n, self.config.public_url.as_deref()).await;
        }
        let i: usize = d
            .channel
            .strip_prefix("webhook:")
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| format!("unknown channel {:?}", d.channel))?;
        let hook = cfg
            .webhooks
            .get(i)
            .ok_or("this webhook is not configured any more")?;
        post_webhook(hook, n).await
    }

    async fn admin_emails(&self) -> Result<Vec<String>, String> {
        Ok(self
            .store
            .list_users()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|u| u.role == Role::Admin && u.disabled_at.is_none() && !u.email.is_empty())
            .map(|u| u.email)
            .collect())
    }
}

/// The plain-text mail of a notification.
fn mail_text(n: &Notification, public_url: Option<&str>) -> String {
    let b = &n.body;
    let mut text = String::new();
    if let Some(reason) = b["reason"].as_str() {
        text.push_str(reason);
        text.push_str("\n\n");
    }
    let r = &b["resource"];
    if r.is_object() {
        text.push_str(&format!(
            "Resource: {} {} ({}) in {} / {}\nOwner: {}\n",
            r["kind"].as_str().unwrap_or_default(),
            r["name"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or(r["provider_id"].as_str().unwrap_or_default()),
            r["provider_id"].as_str().unwrap_or_default(),
            r["account"].as_str().unwrap_or_default(),
            r["region"].as_str().unwrap_or_default(),
            r["owner"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("nobody"),
        ));
        if let Some(t) = b["expires_at"].as_str() {
            text.push_str(&format!("Expires at: {t}\n"));
        }
        if let Some(link) = b["extend_url"].as_str() {
            text.push_str(&format!(
                "\nExtend it by a day (once; you will be asked to sign in): {link}\n"
            ));
        }
        if let (Some(url), Some(id)) = (public_url, r["id"].as_i64()) {
            text.push_str(&format!(
                "\nExtend it or keep it: {}/resources/{id}\n",
                url.trim_end_matches('/')
            ));
        }
    }
    if let Some(o) = b["outcome"].as_str() {
        text.push_str(&format!("\nOutcome: {o}\n"));
    }
    text.push_str(&format!("\n-- skyhold (notification {})\n", n.id));
    text
}

async fn send_mail(
    cfg: &EmailConfig,
    to: &[String],
    n: &Notification,
    public_url: Option<&str>,
) -> Result<(), String> {
    let from: Mailbox = cfg.from.parse().map_err(|e| format!("from: {e}"))?;
    let mut m = Message::builder()
        .from(from)
        .subject(n.subject.clone())
        .message_id(Some(format!("<skyhold-{}@skyhold>", n.id)));
    for addr in to {
        let mb: Mailbox = addr
            .parse()
            .map_err(|e| format!("{:?} is not an address: {e}", skyhold_core::clip(addr, 100)))?;
        m = m.to(mb);
    }
    let msg = m
        .body(mail_text(n, public_url))
        .map_err(|e| format!("building the mail: {e}"))?;
    let builder = match cfg.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.smtp_host),
        SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.smtp_host)
            .map_err(|e| format!("SMTP: {e}"))?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.smtp_host)
            .map_err(|e| format!("SMTP: {e}"))?,
    };
    let mut builder = builder
        .port(cfg.smtp_port)
        .timeout(Some(Duration::from_secs(20)));
    if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.expose().to_owned()));
    }
    builder
        .build()
        .send(msg)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP {}:{}: {e}", cfg.smtp_host, cfg.smtp_port))
}

async fn post_webhook(hook: &WebhookConfig, n: &Notification) -> Result<(), String> {
    let mut payload = n.body.clone();
    payload["id"] = n.id.into();
    payload["subject"] = n.subject.clone().into();
    payload["recipient"] = n.recipient.clone().into();
    payload["created_at"] = skyhold_core::rfc3339(n.created_at).into();
    let body = payload.to_string();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let r = client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("skyhold/", env!("CARGO_PKG_VERSION")))
        .header(
            SIGNATURE_HEADER,
            signature(hook.secret.expose(), body.as_bytes()),
        )
        .header(DELIVERY_HEADER, n.id.to_string())
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST {}: {e}", redact(&hook.url)))?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "POST {}: HTTP {}",
            redact(&hook.url),
            r.status().as_u16()
        ))
    }
}

/// A webhook URL without its query (which may hold a token).
fn redact(url: &str) -> String {
    url.split('?').next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(super::backoff(30_000, 1), 30_000);
        assert_eq!(super::backoff(30_000, 2), 60_000);
        assert_eq!(super::backoff(30_000, 4), 240_000);
        assert_eq!(super::backoff(30_000, 30), 3_600_000);
    }

    #[test]
    fn the_signature_is_the_hex_hmac_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
