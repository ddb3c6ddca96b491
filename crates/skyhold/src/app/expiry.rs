//! Setting a resource's expiry (`skyhold:expires-at`): the cap that
//! applies to it (its blueprint's `max_ttl`, else its account's, else the
//! global `[policies.expiry] max_ttl`) and the resolution of a request
//! against it. The change itself is an action (`Op::Expire`) through the
//! one pipeline: authorize (`manage`; `never` needs more), intent, tag
//! write, re-read, outcome and audit.

use super::access::Actor;
use super::actions::Op;
use super::App;
use crate::error::{AppError, TtlCap};
use skyhold_core::expiry::{self, Cap, Expiry, ExpiryError, ExpiryRequest, EXPIRES_TAG, KEEP_TAG};
use skyhold_core::launch::BLUEPRINT_TAG;
use skyhold_core::{Millis, Resource, ResourceId};
use skyhold_store::ActionRow;
use std::sync::Arc;

/// Whether a resource's `skyhold:keep` opt-out is honoured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepStatus {
    /// No keep tag.
    None,
    /// Honoured: skyhold wrote it (`by` who, `at` when), or the account
    /// trusts the tag (`by` empty, `at` none).
    Trusted {
        reason: String,
        by: String,
        at: Option<Millis>,
    },
    /// A keep tag skyhold did not write (or not with this value): reported,
    /// not honoured.
    Untrusted { reason: String },
}

/// The refusal for a kind that cannot expire.
pub(crate) fn not_expirable(r: &Resource) -> AppError {
    let kinds: Vec<&str> = expiry::EXPIRABLE.iter().map(|k| k.as_str()).collect();
    AppError::BadRequest(format!(
        "a {} cannot expire; expiry applies to {}",
        r.observed.kind,
        kinds.join(", ")
    ))
}

/// A request as the API and the forms take it: exactly one of `in`, `at`,
/// `extend` (durations such as `3d`, a time in RFC 3339) or `never`.
pub fn parse_request(
    r#in: Option<&str>,
    at: Option<&str>,
    extend: Option<&str>,
    never: bool,
) -> Result<ExpiryRequest, AppError> {
    fn given(v: Option<&str>) -> Option<&str> {
        v.map(str::trim).filter(|v| !v.is_empty())
    }
    let (r#in, at, extend) = (given(r#in), given(at), given(extend));
    let n = [r#in.is_some(), at.is_some(), extend.is_some(), never]
        .iter()
        .filter(|b| **b)
        .count();
    if n != 1 {
        return Err(AppError::BadRequest(
            "give exactly one of in (e.g. \"3d\"), at (RFC 3339), extend (e.g. \"2d\") or never"
                .into(),
        ));
    }
    let duration = |field: &str, v: &str| {
        skyhold_core::search::parse_duration(v).map_err(|m| AppError::bad_parameter(field, m))
    };
    Ok(if let Some(v) = r#in {
        ExpiryRequest::In(duration("in", v)?)
    } else if let Some(v) = extend {
        ExpiryRequest::Extend(duration("extend", v)?)
    } else if let Some(v) = at {
        let t = chrono::DateTime::parse_from_rfc3339(v).map_err(|_| {
            AppError::bad_parameter("at", "a time in RFC 3339, like 2026-12-24T18:00:00Z")
        })?;
        ExpiryRequest::At(t.timestamp_millis())
    } else {
        ExpiryRequest::Never
    })
}

impl App {
    /// The cap on `r`'s expiry: its blueprint's `max_ttl` (the blueprint as
    /// it is now, named by the `skyhold:blueprint` tag), else its
    /// account's, else the global one; `None` when none is set.
    pub async fn expiry_cap(&self, r: &Resource) -> Result<Option<Cap>, AppError> {
        if let Some(name) = r
            .observed
            .tags
            .get(BLUEPRINT_TAG)
            .and_then(|v| v.rsplit_once('@').map(|(n, _)| n))
            // Names are never all digits; such a tag names no blueprint
            // (and must not be read as an id).
            .filter(|n| !n.is_empty() && !n.bytes().all(|b| b.is_ascii_digit()))
        {
            match self.store.blueprint(name, None).await {
                Ok(b) => {
                    if let Some(ms) = b.spec.max_ttl_ms {
                        return Ok(Some(Cap {
                            max_ttl_ms: ms,
                            source: format!("blueprint {}", b.spec.name),
                        }));
                    }
                }
                // A blueprint deleted since: the account's cap applies.
                Err(skyhold_store::StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(ms) = self
            .config
            .account(&r.account)
            .and_then(|a| a.policies.max_ttl_ms)
        {
            return Ok(Some(Cap {
                max_ttl_ms: ms,
                source: format!("account {}", r.account),
            }));
        }
        Ok(self.config.policies.max_ttl_ms.map(|ms| Cap {
            max_ttl_ms: ms,
            source: "policies.expiry".into(),
        }))
    }

    /// The expiry `req` sets on `r` now, or why not.
    pub(crate) async fn resolve_expiry(
        &self,
        r: &Resource,
        req: ExpiryRequest,
    ) -> Result<Expiry, AppError> {
        if !expiry::expirable(r.observed.kind) {
            return Err(not_expirable(r));
        }
        let current = Expiry::from_tag(r.observed.tags.get(EXPIRES_TAG).map(String::as_str));
        let cap = self.expiry_cap(r).await?;
        expiry::resolve(req, current, self.now(), cap.as_ref()).map_err(|e| match e {
            ExpiryError::ExceedsMax { cap, latest } => AppError::TtlExceedsMax(Box::new(TtlCap {
                max_ttl: skyhold_core::search::format_duration(cap.max_ttl_ms),
                source: cap.source,
                latest: skyhold_core::rfc3339(latest),
            })),
            ExpiryError::NotInFuture(m) => AppError::BadRequest(m),
            ExpiryError::NothingToExtend(m) => AppError::InvalidState(m),
        })
    }

    /// Whether `r`'s keep tag is honoured: trusted when the last keep
    /// skyhold wrote on it succeeded with this very value (who and when
    /// from that action), or when its account says `trust_keep_tag`.
    pub async fn keep_status(&self, r: &Resource) -> Result<KeepStatus, AppError> {
        let Some(reason) = r.observed.tags.get(KEEP_TAG).cloned() else {
            return Ok(KeepStatus::None);
        };
        if let Some(a) = self
            .store
            .last_succeeded_action(r.id, Op::SetKeep(None).kind())
            .await?
        {
            if a.params["keep"].as_str() == Some(reason.as_str()) {
                return Ok(KeepStatus::Trusted {
                    reason,
                    by: a.requested_by_name,
                    at: a.finished_at.or(Some(a.created_at)),
                });
            }
        }
        if self
            .config
            .account(&r.account)
            .is_some_and(|a| a.trust_keep_tag)
        {
            return Ok(KeepStatus::Trusted {
                reason,
                by: String::new(),
                at: None,
            });
        }
        Ok(KeepStatus::Untrusted { reason })
    }

    /// The keep status of a resource the actor may see.
    pub async fn resource_keep(
        &self,
        actor: &Actor,
        id: ResourceId,
    ) -> Result<KeepStatus, AppError> {
        let r = self.visible_resource(actor, id).await?;
        self.keep_status(&r).await
    }

    /// Writes (`Some(reason)`) or removes the keep opt-out through the
    /// action pipeline.
    pub async fn set_keep(
        self: &Arc<Self>,
        actor: &Actor,
        id: ResourceId,
        reason: Option<String>,
    ) -> Result<ActionRow, AppError> {
        self.act(actor, id, Op::SetKeep(reason), None).await
    }

    /// Sets, extends or clears (`never`) a resource's expiry through the
    /// action pipeline.
    pub async fn set_expiry(
        self: &Arc<Self>,
        actor: &Actor,
        id: ResourceId,
        req: ExpiryRequest,
    ) -> Result<ActionRow, AppError> {
        self.act(actor, id, Op::Expire(req), None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_need_exactly_one_valid_part() {
        assert_eq!(
            parse_request(Some("3d"), None, None, false).unwrap(),
            ExpiryRequest::In(3 * 86_400_000)
        );
        assert_eq!(
            parse_request(None, None, Some(" 2h "), false).unwrap(),
            ExpiryRequest::Extend(2 * 3_600_000)
        );
        assert_eq!(
            parse_request(None, Some("2026-12-03T10:00:00Z"), None, false).unwrap(),
            ExpiryRequest::At(1_796_292_000_000)
        );
        assert_eq!(
            parse_request(None, None, None, true).unwrap(),
            ExpiryRequest::Never
        );
        for bad in [
            parse_request(None, None, None, false),
            parse_request(Some("3d"), None, None, true),
            parse_request(Some("3d"), Some("2026-12-03T10:00:00Z"), None, false),
        ] {
            assert_eq!(bad.unwrap_err().code(), "bad_request");
        }
        let e = parse_request(Some("3 days"), None, None, false).unwrap_err();
        assert_eq!((e.code(), e.field()), ("invalid_parameter", Some("in")));
        let e = parse_request(None, Some("tomorrow"), None, false).unwrap_err();
        assert_eq!(e.field(), Some("at"));
    }
}

/// How much a warning's extend link adds (capped by the maximum TTL when
/// it is used), and how long the link stays usable.
pub const LINK_EXTEND_MS: i64 = 24 * 3_600_000;
pub const LINK_VALID_MS: i64 = 14 * 24 * 3_600_000;

/// What an extend link offers, for its confirmation page.
#[derive(Debug, Clone)]
pub struct ExtendOffer {
    pub resource: Resource,
    pub extend_ms: i64,
    pub expires_at: Option<Millis>,
    /// Why it cannot be used any more, if so.
    pub spent: Option<String>,
}

impl App {
    /// A new single-use link that extends a resource by a day, stored
    /// with the warning that carries it: its token's hash (all that is
    /// kept) and its URL (`/extend/<token>`, under `public_url` when
    /// configured).
    pub(crate) fn new_extend_link(&self) -> (String, String) {
        let token = crate::auth::random_token("ext-", 24);
        let base = self.config.public_url.as_deref().unwrap_or("");
        (
            crate::auth::sha256_hex(&token),
            format!("{}/extend/{token}", base.trim_end_matches('/')),
        )
    }

    /// The offer behind a link (the resource must be one the actor sees).
    pub async fn extend_offer(&self, actor: &Actor, token: &str) -> Result<ExtendOffer, AppError> {
        let link = self
            .store
            .extend_link(&crate::auth::sha256_hex(token))
            .await?
            .ok_or_else(|| AppError::NotFound("extend link".into()))?;
        let resource = self.visible_resource(actor, link.resource_id).await?;
        let spent = match link.used_at {
            Some(t) => Some(format!(
                "used by {} at {}",
                link.used_by,
                skyhold_core::rfc3339(t)
            )),
            None if link.expires_at <= self.now() => Some("the link has expired".into()),
            None => None,
        };
        let expires_at =
            match Expiry::from_tag(resource.observed.tags.get(EXPIRES_TAG).map(String::as_str)) {
                Expiry::At(t) => Some(t),
                _ => None,
            };
        Ok(ExtendOffer {
            resource,
            extend_ms: link.extend_ms,
            expires_at,
            spent,
        })
    }

    /// Uses a link once: extends its resource through the pipeline as
    /// `actor` (who needs manage on it, like any extension), the cap
    /// applied. A refused or failed extension leaves the link unused.
    pub async fn use_extend_link(
        self: &Arc<Self>,
        actor: &Actor,
        token: &str,
    ) -> Result<ActionRow, AppError> {
        let offer = self.extend_offer(actor, token).await?;
        if let Some(why) = offer.spent {
            return Err(AppError::InvalidState(format!(
                "this extend link cannot be used again: {why}"
            )));
        }
        let hash = crate::auth::sha256_hex(token);
        if !self
            .store
            .use_extend_link(&hash, &actor.username, self.now())
            .await?
        {
            return Err(AppError::InvalidState(
                "this extend link cannot be used again: it was just used".into(),
            ));
        }
        let result = self
            .set_expiry(
                actor,
                offer.resource.id,
                ExpiryRequest::Extend(offer.extend_ms),
            )
            .await;
        let ok = matches!(&result, Ok(a) if a.state == "succeeded");
        if !ok {
            self.store.release_extend_link(&hash).await?;
        }
        result
    }
}
