//! Sign-in through an OpenID Connect provider: the authorization code flow
//! with PKCE (`[auth.oidc]`).
//!
//! `oidc_begin` discovers the provider (cached), makes the authorization
//! URL with a fresh state, nonce and PKCE verifier, and seals those (with
//! the redirect URI and where to go afterwards) into a short-lived value
//! that the edge keeps in an HttpOnly cookie. The value is signed with
//! HMAC-SHA256 under a key derived from the client secret, so every replica
//! sharing the configuration can check it and no browser can forge it.
//! `oidc_finish` checks the returned `state` against it, exchanges the code
//! (with the verifier), lets `openidconnect` verify the ID token (signature
//! against the provider's JWKS, issuer, audience, expiry, nonce), maps the
//! claims to a user (found, or created with `auto_create`), syncs role and
//! groups from `groups_claim`, and audits every outcome as a `login` with
//! auth `oidc`.

use super::access::{Actor, AuthVia, RequestCtx};
use super::identity::{user_target, validate_email, UserChange};
use super::App;
use crate::config::{OidcConfig, OIDC_CALLBACK_PATH};
use crate::error::AppError;
use base64::Engine;
use hmac::{Hmac, Mac};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthenticationFlow, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IdTokenFields, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use skyhold_core::audit::{self, AuditDraft};
use skyhold_core::{clip, now_millis, Millis, Role};
use skyhold_store::User;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The claims beyond the standard ones (where `groups_claim` is read).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct OtherClaims(HashMap<String, serde_json::Value>);

impl AdditionalClaims for OtherClaims {}

type IdFields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type TokenResp = StandardTokenResponse<IdFields, CoreTokenType>;

/// The client as `from_provider_metadata` makes it (authorization endpoint
/// set, token and userinfo endpoints as discovered).
type OidcClient = openidconnect::Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResp,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How long discovered metadata and keys are used before asking again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// How long a started login may take at the provider.
pub const PENDING_TTL: Duration = Duration::from_secs(600);
/// Timeout of each request to the provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

struct Discovered {
    client: OidcClient,
    http: reqwest::Client,
    at: Instant,
}

/// The OIDC side of the `App`: configuration, the signing key of pending
/// logins, and the discovered provider (fetched on first use, kept for
/// `METADATA_TTL`; a failed discovery is retried at the next login).
pub struct Oidc {
    config: OidcConfig,
    public_url: Option<String>,
    secure: bool,
    state_key: [u8; 32],
    provider: tokio::sync::Mutex<Option<Arc<Discovered>>>,
}

/// What a started login leaves in the browser (sealed): checked and used
/// by the callback, once.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    redirect: String,
    next: String,
    expires: Millis,
}

/// A started login: send the browser to `authorize_url`, keep `cookie`.
pub struct OidcStart {
    pub authorize_url: String,
    pub cookie: String,
}

/// What the provider sent back to the callback, and the pending cookie.
#[derive(Debug, Default)]
pub struct OidcCallback<'a> {
    pub code: Option<&'a str>,
    pub state: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_description: Option<&'a str>,
    pub cookie: Option<&'a str>,
}

/// A refused callback: the error to show and the audit reason code.
struct Refusal {
    code: &'static str,
    error: AppError,
}

fn refuse(code: &'static str, error: AppError) -> Refusal {
    Refusal { code, error }
}

fn role_strength(r: Role) -> u8 {
    match r {
        Role::Admin => 3,
        Role::Auditor => 2,
        Role::Member => 1,
        Role::Viewer => 0,
    }
}

/// The role for `groups`: the strongest mapped one, else the default.
pub fn mapped_role(config: &OidcConfig, groups: &[String]) -> Role {
    groups
        .iter()
        .filter_map(|g| config.role_mapping.get(g).copied())
        .max_by_key(|r| role_strength(*r))
        .unwrap_or(config.default_role)
}

/// The values of the groups claim: a list of strings or one string.
fn groups_of(claims: &OtherClaims, name: &str) -> Vec<String> {
    match claims.0.get(name) {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// A Host header fit to build a URL from (name or address, optional port).
fn sane_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

impl Oidc {
    pub fn new(config: &OidcConfig, public_url: Option<&str>, secure: bool) -> Self {
        // The key of pending-login values: derived from the client secret,
        // which every replica has, and distinct from it.
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(config.client_secret.expose().as_bytes())
                .expect("HMAC takes keys of any length");
        mac.update(b"skyhold oidc pending login v1");
        let state_key: [u8; 32] = mac.finalize().into_bytes().into();
        Oidc {
            config: config.clone(),
            public_url: public_url.map(str::to_owned),
            secure,
            state_key,
            provider: tokio::sync::Mutex::new(None),
        }
    }

    pub fn display_name(&self) -> &str {
        &self.config.display_name
    }

    /// The redirect URI: `redirect_url`, else `public_url` + the callback
    /// path, else built from the request's Host.
    fn redirect_uri(&self, host: Option<&str>) -> Result<String, AppError> {
        if let Some(u) = &self.config.redirect_url {
            return Ok(u.clone());
        }
        if let Some(p) = &self.public_url {
            return Ok(format!("{p}{OIDC_CALLBACK_PATH}"));
        }
        match host {
            Some(h) if sane_host(h) => {
                let scheme = if self.secure { "https" } else { "http" };
                Ok(format!("{scheme}://{h}{OIDC_CALLBACK_PATH}"))
            }
            _ => Err(AppError::BadRequest(
                "cannot tell this server's address for the OIDC redirect; set public_url".into(),
            )),
        }
    }

    /// The provider's metadata and keys, discovered on first use and again
    /// after `METADATA_TTL`.
    async fn provider(&self) -> Result<Arc<Discovered>, AppError> {
        let mut slot = self.provider.lock().await;
        if let Some(d) = slot.as_ref() {
            if d.at.elapsed() < METADATA_TTL {
                return Ok(d.clone());
            }
        }
        let unavailable = |what: &str, e: &dyn std::fmt::Display| {
            tracing::warn!(issuer = %self.config.issuer, error = %e, "OIDC {what} failed");
            AppError::Unavailable(format!(
                "the identity provider could not be reached ({what} failed); try again later"
            ))
        };
        // Following redirects would let a provider's answer point skyhold
        // at another address (SSRF), so none are followed.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|e| unavailable("building the HTTP client", &e))?;
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| unavailable("parsing the issuer", &e))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| unavailable("discovery", &e))?;
        let client = OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(
                self.config.client_secret.expose().to_owned(),
            )),
        );
        let d = Arc::new(Discovered {
            client,
            http,
            at: Instant::now(),
        });
        *slot = Some(d.clone());
        Ok(d)
    }

    /// Drops the cached metadata and keys (without waiting for a
    /// discovery in progress).
    fn forget_provider(&self) {
        if let Ok(mut slot) = self.provider.try_lock() {
            *slot = None;
        }
    }

    fn seal(&self, p: &Pending) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let body = b64.encode(serde_json::to_vec(p).expect("a pending login serializes"));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.state_key).expect("key");
        mac.update(body.as_bytes());
        format!("{body}.{}", b64.encode(mac.finalize().into_bytes()))
    }

    fn open(&self, sealed: &str) -> Result<Pending, &'static str> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (body, tag) = sealed.split_once('.').ok_or("malformed login cookie")?;
        let tag = b64.decode(tag).map_err(|_| "malformed login cookie")?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.state_key).expect("key");
        mac.update(body.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| "the login cookie's signature is wrong")?;
        let bytes = b64.decode(body).map_err(|_| "malformed login cookie")?;
        let p: Pending = serde_json::from_slice(&bytes).map_err(|_| "malformed login cookie")?;
        if p.expires < now_millis() {
            return Err("the login took too long");
        }
        Ok(p)
    }
}

impl App {
    /// The configured OIDC provider, if any.
    pub fn oidc(&self) -> Option<&Oidc> {
        self.oidc.as_ref()
    }

    /// Starts an OIDC login: the provider's authorization URL and the
    /// sealed pending login for the browser's cookie. `next` must already
    /// be a safe local path.
    pub async fn oidc_begin(&self, host: Option<&str>, next: &str) -> Result<OidcStart, AppError> {
        let o = self
            .oidc
            .as_ref()
            .ok_or_else(|| AppError::NotFound("OIDC login (not configured)".into()))?;
        let redirect = o.redirect_uri(host)?;
        let redirect_url = RedirectUrl::new(redirect.clone())
            .map_err(|_| AppError::BadRequest("the OIDC redirect URI is not a URL".into()))?;
        let provider = o.provider().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = provider
            .client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_redirect_uri(Cow::Owned(redirect_url))
            .set_pkce_challenge(challenge);
        for s in o.config.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = req.url();
        let cookie = o.seal(&Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            redirect,
            next: next.to_owned(),
            expires: now_millis() + PENDING_TTL.as_millis() as Millis,
        });
        Ok(OidcStart {
            authorize_url: url.to_string(),
            cookie,
        })
    }

    /// Finishes an OIDC login at the callback: the signed-in actor and the
    /// path to go to. Every outcome is audited (`login`, auth `oidc`).
    pub async fn oidc_finish(
        &self,
        cb: &OidcCallback<'_>,
        ctx: &RequestCtx,
    ) -> Result<(Actor, String), AppError> {
        let Some(o) = self.oidc.as_ref() else {
            return Err(AppError::NotFound("OIDC login (not configured)".into()));
        };
        let mut d = AuditDraft {
            time: now_millis(),
            auth: audit::auth::OIDC.into(),
            client_ip: ctx.client_ip.clone(),
            user_agent: ctx.user_agent.clone(),
            request_id: ctx.request_id.clone(),
            action: "login".into(),
            target: user_target(None, ""),
            outcome: audit::outcome::OK.into(),
            ..Default::default()
        };
        match self.oidc_verify(o, cb, ctx, &mut d).await {
            Ok((user, next)) => {
                d.actor = user.username.clone();
                d.actor_id = Some(user.id.0);
                d.target = user_target(Some(user.id), &user.username);
                self.record(&d).await;
                let via = AuthVia::Session {
                    csrf: String::new(),
                    method: audit::auth::OIDC.into(),
                };
                Ok((self.actor_for(user, via, ctx.clone()).await?, next))
            }
            Err(r) => {
                d.outcome = audit::outcome::FAILED.into();
                d.reason = format!("{}: {}", r.code, clip(&r.error.to_string(), 300));
                self.record(&d).await;
                tracing::info!(
                    user = ?d.actor,
                    client = %ctx.client_ip,
                    reason = %d.reason,
                    "failed OIDC login"
                );
                Err(r.error)
            }
        }
    }

    /// The checks of `oidc_finish`; fills the draft's actor as soon as the
    /// claimed user name is known.
    async fn oidc_verify(
        &self,
        o: &Oidc,
        cb: &OidcCallback<'_>,
        ctx: &RequestCtx,
        d: &mut AuditDraft,
    ) -> Result<(User, String), Refusal> {
        let bad_state = |m: &str| {
            refuse(
                "bad_state",
                AppError::BadRequest(format!("{m}; start the login again")),
            )
        };
        let Some(sealed) = cb.cookie else {
            return Err(bad_state("no login is in progress in this browser"));
        };
        let pending = o.open(sealed).map_err(bad_state)?;
        let state = cb.state.filter(|s| !s.is_empty());
        if let Some(state) = state {
            if !crate::auth::ct_eq(state, &pending.state) {
                return Err(bad_state("the provider's answer does not match this login"));
            }
        }
        // An error answer is a refusal either way (some providers leave the
        // state out of it); anything else needs the state.
        if let Some(e) = cb.error {
            let desc = cb.error_description.unwrap_or("");
            return Err(refuse(
                "provider_error",
                AppError::Forbidden(format!(
                    "the identity provider refused the login: {} {}",
                    clip(e, 100),
                    clip(desc, 200)
                )),
            ));
        }
        if state.is_none() {
            return Err(bad_state("the provider's answer has no state"));
        }
        let Some(code) = cb.code.filter(|c| !c.is_empty()) else {
            return Err(bad_state("the provider's answer has no code"));
        };
        let provider = o
            .provider()
            .await
            .map_err(|e| refuse("provider_unreachable", e))?;
        let redirect = RedirectUrl::new(pending.redirect.clone())
            .map_err(|_| bad_state("malformed login cookie"))?;
        let exchange = provider
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| {
                refuse(
                    "provider_error",
                    AppError::Unavailable(format!("the provider has no token endpoint: {e}")),
                )
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
            .set_redirect_uri(Cow::Owned(redirect));
        let token = exchange.request_async(&provider.http).await.map_err(|e| {
            tracing::warn!(error = %e, "OIDC code exchange failed");
            let error = match e {
                RequestTokenError::ServerResponse(r) => AppError::Forbidden(format!(
                    "the identity provider did not accept the login's code ({})",
                    clip(r.error().as_ref(), 100)
                )),
                _ => AppError::Unavailable(
                    "the identity provider's token endpoint could not be reached; try again".into(),
                ),
            };
            refuse("token_exchange", error)
        })?;
        let id_token = token.id_token().ok_or_else(|| {
            refuse(
                "invalid_token",
                AppError::Forbidden("the identity provider sent no ID token".into()),
            )
        })?;
        let verifier = provider.client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &Nonce::new(pending.nonce.clone()))
            .map_err(|e| {
                if matches!(e, ClaimsVerificationError::SignatureVerification(_)) {
                    // Perhaps the provider rotated its keys: discover again
                    // at the next login.
                    o.forget_provider();
                }
                refuse(
                    "invalid_token",
                    AppError::Forbidden(format!("the ID token was refused: {e}")),
                )
            })?;

        // preferred_username, else a (not unverified) email, else sub.
        let email = claims
            .email()
            .filter(|_| claims.email_verified() != Some(false))
            .map(|e| e.as_str().to_owned());
        let username = claims
            .preferred_username()
            .map(|u| u.as_str().to_owned())
            .or_else(|| email.clone())
            .unwrap_or_else(|| claims.subject().as_str().to_owned());
        d.actor = clip(&username, 100);
        d.target = user_target(None, &d.actor);
        super::identity::validate_username(&username).map_err(|e| {
            refuse(
                "invalid_username",
                AppError::Forbidden(format!("the identity provider's user name is refused: {e}")),
            )
        })?;
        let groups = o
            .config
            .groups_claim
            .as_deref()
            .map(|c| groups_of(claims.additional_claims(), c));
        let role = mapped_role(&o.config, groups.as_deref().unwrap_or_default());
        let store_err = |e: AppError| refuse("internal", e);

        let user = match self.store.user_by_name(&username).await {
            Err(e) => return Err(store_err(e.into())),
            Ok(Some(u)) => u,
            Ok(None) if o.config.auto_create => {
                let email = email
                    .as_deref()
                    .and_then(|e| validate_email(e).ok())
                    .unwrap_or_default();
                self.auto_create_user(&username, role, &email, "oidc", ctx)
                    .await
                    .map_err(store_err)?
            }
            Ok(None) => {
                return Err(refuse(
                    "unknown_user",
                    AppError::Forbidden(format!(
                        "there is no skyhold user {:?}; ask an admin to create it",
                        clip(&username, 100)
                    )),
                ))
            }
        };
        if user.disabled_at.is_some() {
            d.actor_id = Some(user.id.0);
            d.target.id = user.id.to_string();
            return Err(refuse(
                "disabled",
                AppError::Forbidden("this user is disabled".into()),
            ));
        }
        let user = match groups {
            Some(groups) => self
                .oidc_sync(&user, role, &groups, ctx)
                .await
                .map_err(store_err)?,
            None => user,
        };
        Ok((user, pending.next))
    }

    /// Makes the user's role the mapped one and their memberships those of
    /// the existing groups named in the claim (audited as `system:oidc`).
    async fn oidc_sync(
        &self,
        user: &User,
        role: Role,
        groups: &[String],
        ctx: &RequestCtx,
    ) -> Result<User, AppError> {
        let mut system = Actor::system("oidc");
        system.ctx = ctx.clone();
        if user.role != role {
            let change = UserChange {
                role: Some(role),
                ..Default::default()
            };
            self.update_user(&system, user.id, &change).await?;
        }
        for g in self.store.list_groups().await? {
            let member = g.members.iter().any(|m| m == &user.username);
            let wanted = groups.iter().any(|n| n == &g.name);
            if wanted && !member {
                self.add_member(&system, g.id, &user.username).await?;
            } else if member && !wanted {
                self.remove_member(&system, g.id, &user.username).await?;
            }
        }
        self.store
            .user_by_id(user.id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("user {}", user.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn oidc(extra: &str) -> OidcConfig {
        let src = format!(
            "[auth.oidc]\nissuer = \"http://127.0.0.1:1\"\nclient_id = \"sky\"\nclient_secret = \"s\"\n{extra}"
        );
        Config::parse(None, &src, &|_| None)
            .unwrap()
            .auth
            .oidc
            .unwrap()
    }

    #[test]
    fn the_strongest_mapped_role_wins() {
        let c = oidc(
            "groups_claim = \"groups\"\nrole_mapping = { ops = \"member\", audit = \"auditor\", root = \"admin\" }\n",
        );
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(mapped_role(&c, &g(&["ops", "audit"])), Role::Auditor);
        assert_eq!(mapped_role(&c, &g(&["ops", "root", "audit"])), Role::Admin);
        assert_eq!(mapped_role(&c, &g(&["ops"])), Role::Member);
        assert_eq!(mapped_role(&c, &g(&["other"])), Role::Viewer);
        let c = oidc("groups_claim = \"groups\"\ndefault_role = \"member\"\n");
        assert_eq!(mapped_role(&c, &[]), Role::Member);
    }

    #[test]
    fn pending_logins_are_signed_and_expire() {
        let o = Oidc::new(&oidc(""), None, false);
        let mut p = Pending {
            state: "s".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            redirect: "http://x/auth/oidc/callback".into(),
            next: "/".into(),
            expires: now_millis() + 60_000,
        };
        let sealed = o.seal(&p);
        assert_eq!(o.open(&sealed).unwrap().state, "s");
        let (body, tag) = sealed.split_once('.').unwrap();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut forged: Pending = serde_json::from_slice(&b64.decode(body).unwrap()).unwrap();
        forged.next = "/elsewhere".into();
        let forged = format!("{}.{tag}", b64.encode(serde_json::to_vec(&forged).unwrap()));
        assert!(
            o.open(&forged).is_err(),
            "a changed body keeps no signature"
        );
        // Another secret, another key.
        let other = Oidc::new(&oidc("").tap_secret("t"), None, false);
        assert!(other.open(&sealed).is_err());
        p.expires = now_millis() - 1;
        assert!(o.open(&o.seal(&p)).is_err(), "expired");
        assert!(o.open("garbage").is_err());
    }

    trait TapSecret {
        fn tap_secret(self, s: &str) -> Self;
    }
    impl TapSecret for OidcConfig {
        fn tap_secret(mut self, s: &str) -> Self {
            self.client_secret = skyhold_core::Secret::new(s);
            self
        }
    }

    #[test]
    fn redirect_uri_prefers_configuration() {
        let o = Oidc::new(&oidc(""), Some("https://sky.example.com"), true);
        assert_eq!(
            o.redirect_uri(Some("evil.example")).unwrap(),
            "https://sky.example.com/auth/oidc/callback"
        );
        let o = Oidc::new(
            &oidc("redirect_url = \"https://a.example/sky/auth/oidc/callback\"\n"),
            Some("https://sky.example.com"),
            true,
        );
        assert_eq!(
            o.redirect_uri(None).unwrap(),
            "https://a.example/sky/auth/oidc/callback"
        );
        let o = Oidc::new(&oidc(""), None, false);
        assert_eq!(
            o.redirect_uri(Some("127.0.0.1:8080")).unwrap(),
            "http://127.0.0.1:8080/auth/oidc/callback"
        );
        assert!(o.redirect_uri(Some("a/b@c")).is_err());
        assert!(o.redirect_uri(None).is_err());
    }
}
