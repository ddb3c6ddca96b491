//! The HTTP edge: routing, authentication of every request, error → status
//! mapping, metrics. Handlers are thin: they parse input, call one
//! application function, and render.

mod action_pages;
mod admin_pages;
mod api;
mod api_access;
mod api_expiry;
mod api_launch;
mod api_launches;
mod api_policies;
mod api_spend;
mod audit_page;
mod common;
mod forms;
mod launch_pages;
mod oidc;
mod openapi;
mod pages;
mod permissions;
mod policy_pages;
mod services;
mod ui;
mod views;

use crate::app::{Actor, App, AuthVia, RequestCtx};
use crate::error::AppError;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use axum_extra::extract::CookieJar;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub const SESSION_COOKIE: &str = "skyhold_session";

pub type AppState = Arc<App>;

/// The process-wide Prometheus recorder (installed once).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [
            0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
            .expect("static bucket list is valid")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed (tests in one process).
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// The whole HTTP application.
pub fn router(app: AppState) -> Router {
    metrics_handle();
    let public = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|| async { metrics_handle().render() }))
        .route("/login", get(pages::login_form).post(pages::login_submit))
        .route("/auth/oidc/login", get(oidc::begin))
        .route("/auth/oidc/callback", get(oidc::callback))
        .route("/static/app.css", get(ui::css))
        .route("/static/app.js", get(ui::js))
        .route("/favicon.ico", get(ui::favicon))
        .route("/api/v1/auth/token", axum::routing::post(api::create_token))
        .merge(api_launches::instance_routes());

    let protected = Router::new()
        .merge(pages::routes())
        .merge(api::routes())
        .merge(api_access::routes())
        .merge(api_expiry::routes())
        .merge(api_policies::routes())
        .merge(api_spend::routes())
        .merge(api_launch::routes())
        .merge(api_launches::routes())
        .merge(views::routes())
        .merge(services::routes())
        .merge(admin_pages::routes())
        .merge(permissions::routes())
        .merge(action_pages::routes())
        .merge(audit_page::routes())
        .merge(launch_pages::routes())
        .merge(policy_pages::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), require_actor))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        // Nothing behind a login is cached by browsers or proxies.
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            ),
        );

    public
        .merge(protected)
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(observe))
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
        )
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ),
        )
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        )
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("DENY"),
            ),
        )
        .with_state(app)
}

async fn readyz(State(app): State<AppState>) -> Response {
    match app.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

async fn not_found(req: Request) -> Response {
    let msg = format!("no such page: {}", req.uri().path());
    if is_api(req.uri().path()) {
        AppError::NotFound(msg).into_response()
    } else {
        common::PageError(AppError::NotFound(msg)).into_response()
    }
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// The pages use only their own scripts and styles.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Every API error is the JSON error shape with a stable code, including the
/// ones axum's extractors answer in plain text (a body over the limit, a
/// path that is not UTF-8, a wrong method).
async fn json_errors(req: Request, next: Next) -> Response {
    let api = is_api(req.uri().path());
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !api || !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let message = skyhold_core::clip(String::from_utf8_lossy(&text).trim(), 300);
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        message
    };
    let mut out = (status, Json(openapi::error_body(code, message))).into_response();
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    close_if_unread(status, &mut out);
    out
}

/// A body refused as too large was not read to its end: the connection
/// cannot carry another request, so the client is told not to reuse it.
fn close_if_unread(status: StatusCode, res: &mut Response<Body>) {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

/// Latency histogram and a Server-Timing header on every response.
async fn observe(req: Request, next: Next) -> Response {
    let start = Instant::now();
    // Label values come only from fixed sets (known methods, matched route
    // templates): a client cannot grow the metrics with made-up methods or
    // paths.
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let mut res = next.run(req).await;
    let elapsed = start.elapsed();
    let status = res.status().as_u16().to_string();
    metrics::histogram!(
        "http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => status
    )
    .record(elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={:.3}", elapsed.as_secs_f64() * 1000.0))
    {
        res.headers_mut().insert("server-timing", v);
    }
    res
}

/// The client address as seen on the socket (identity headers from proxies
/// are not trusted).
pub fn client_addr(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Where a request came from, for the audit log: the socket's address, the
/// user agent and `Idempotency-Key` (cut to bounded lengths), and a request
/// id (the client's `X-Request-Id` when it is sane, else a new one).
pub fn request_ctx(req: &Request) -> RequestCtx {
    let header = |name: &str, max: usize| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| skyhold_core::clip(v.trim(), max))
            .unwrap_or_default()
    };
    let rid = header("x-request-id", 64);
    let request_id = if !rid.is_empty()
        && rid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        rid
    } else {
        crate::auth::random_token("req-", 8)
    };
    RequestCtx {
        client_ip: client_addr(req),
        user_agent: header("user-agent", 300),
        request_id,
        idempotency_key: header("idempotency-key", 200),
        reason: String::new(),
    }
}

/// Resolves the actor from a bearer token or a session cookie; refuses the
/// request otherwise. Unsafe methods with a cookie session on the API need
/// the session's CSRF token in `X-CSRF-Token`.
async fn require_actor(
    State(app): State<AppState>,
    jar: CookieJar,
    mut req: Request,
    next: Next,
) -> Response {
    let api = is_api(req.uri().path());
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned());
    let ctx = request_ctx(&req);
    let mut new_cookie = None;
    let proxied = match (&bearer, &app.config.auth.proxy) {
        (None, Some(p)) => match proxy_header(p, &req) {
            Some(h) => proxy_identity(&app, p, h, &ctx).await,
            None => None,
        },
        _ => None,
    };
    let actor: Result<Option<Actor>, AppError> = match (proxied, &bearer, jar.get(SESSION_COOKIE)) {
        (Some((p, name, groups)), _, cookie) => {
            match app
                .proxy_sign_in(&p, &name, groups, cookie.map(|c| c.value()), ctx)
                .await
            {
                Ok((a, token)) => {
                    new_cookie = token;
                    Ok(Some(a))
                }
                Err(e) => Err(e),
            }
        }
        (None, Some(t), _) => app.token_actor(t, ctx).await,
        (None, None, Some(c)) => app.session_actor(c.value(), ctx).await,
        (None, None, None) => Ok(None),
    };
    let actor = match actor {
        Ok(Some(a)) => a,
        Ok(None) => {
            if api || bearer.is_some() {
                return AppError::Unauthenticated.into_response();
            }
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let next_q: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("next", target)
                .finish();
            return Redirect::to(&format!("/login?{next_q}")).into_response();
        }
        Err(e) => return e.into_response(),
    };
    if api && !matches!(*req.method(), Method::GET | Method::HEAD) {
        if let AuthVia::Session { csrf, .. } = &actor.via {
            let sent = req
                .headers()
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !crate::auth::ct_eq(sent, csrf) {
                return AppError::Forbidden("missing or wrong X-CSRF-Token header".into())
                    .into_response();
            }
        }
    }
    let key = actor.ctx.idempotency_key.clone();
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD);
    req.extensions_mut().insert(actor.clone());
    let mut res = if api && unsafe_method && !key.is_empty() {
        idempotent(&app, &actor, &key, req, next).await
    } else {
        next.run(req).await
    };
    if let Some(token) = new_cookie {
        let c = common::cookie(SESSION_COOKIE, token, app.config.secure_cookies);
        if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// The user (and groups) a reverse proxy names, when `[auth.proxy]` is
/// configured and the header is present: honoured only from a trusted peer.
/// From anywhere else the header is ignored, the attempt audited, and the
/// request authenticated as if it were not there.
async fn proxy_identity(
    app: &App,
    p: &crate::config::ProxyAuth,
    (name, peer, groups): ProxyHeader,
    ctx: &RequestCtx,
) -> Option<(crate::config::ProxyAuth, String, Option<Vec<String>>)> {
    if !peer.is_some_and(|ip| p.trusts(ip)) {
        let mut d = skyhold_core::audit::AuditDraft {
            time: skyhold_core::now_millis(),
            actor: skyhold_core::clip(&name, 100),
            auth: skyhold_core::audit::auth::NONE.into(),
            client_ip: ctx.client_ip.clone(),
            user_agent: ctx.user_agent.clone(),
            request_id: ctx.request_id.clone(),
            action: "login".into(),
            outcome: skyhold_core::audit::outcome::DENIED.into(),
            ..Default::default()
        };
        d.reason = format!(
            "untrusted_proxy: the {} header came from {}, not a trusted proxy; ignored",
            p.header, ctx.client_ip
        );
        app.record(&d).await;
        tracing::warn!(client = %ctx.client_ip, header = %p.header, "identity header from an untrusted address ignored");
        return None;
    }
    Some((p.clone(), name, groups))
}

/// (user named, TCP peer, groups named) when the identity header is present.
type ProxyHeader = (String, Option<std::net::IpAddr>, Option<Vec<String>>);

fn proxy_header(p: &crate::config::ProxyAuth, req: &Request) -> Option<ProxyHeader> {
    let name = req.headers().get(p.header.as_str())?;
    let name = name.to_str().unwrap_or("").trim().to_owned();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let groups = p.groups_header.as_deref().map(|h| {
        req.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(',')
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty())
            .collect()
    });
    Some((name, peer, groups))
}

/// Largest API request body accepted.
pub const MAX_BODY: usize = 256 * 1024;

/// `Idempotency-Key` on a state-changing API request: the first response
/// to (user, key) is kept with a digest of the request; the same request
/// again gets that response (the handler does not run twice), another
/// request under the same key is a 409 `idempotency_conflict`.
async fn idempotent(app: &App, actor: &Actor, key: &str, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return AppError::PayloadTooLarge(MAX_BODY).into_response(),
    };
    let digest = crate::auth::sha256_hex(&format!(
        "{} {}\n{}",
        parts.method,
        parts.uri.path(),
        String::from_utf8_lossy(&bytes)
    ));
    use skyhold_store::IdempotencyClaim as C;
    match app.claim_idempotency(actor, key, &digest).await {
        Err(e) => e.into_response(),
        Ok(C::Mismatch) => AppError::IdempotencyConflict(
            "this Idempotency-Key was used for a different request; use a new key".into(),
        )
        .into_response(),
        Ok(C::InProgress) => AppError::IdempotencyConflict(
            "the first request with this Idempotency-Key is still running; retry later".into(),
        )
        .into_response(),
        Ok(C::Replay { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut res = (status, body).into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res.headers_mut()
                .insert("idempotent-replay", HeaderValue::from_static("true"));
            res
        }
        Ok(C::Fresh) => {
            let res = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            let (rparts, rbody) = res.into_parts();
            let rbytes = axum::body::to_bytes(rbody, 16 * 1024 * 1024)
                .await
                .unwrap_or_default();
            app.finish_idempotency(actor, key, rparts.status.as_u16(), &rbytes)
                .await;
            Response::from_parts(rparts, Body::from(rbytes))
        }
    }
}

/// JSON errors for the API: `{"error": {"code", "message"}}`.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = status_of(&self);
        if let AppError::Internal(e) = &self {
            tracing::error!(error = ?e, "internal error");
        }
        // Messages may quote input; they are cut so a huge value is not
        // echoed back whole.
        let message = skyhold_core::clip(&self.to_string(), 1000);
        let mut body = openapi::error_body(self.code(), message);
        body.error.field = self.field().map(str::to_owned);
        if let AppError::QuotaExceeded(e) = &self {
            body.error.quota = Some((**e).clone());
        }
        if let AppError::TtlExceedsMax(c) = &self {
            body.error.cap = Some((**c).clone());
        }
        if let AppError::BudgetExceeded(b) = &self {
            body.error.budget = Some((**b).clone());
        }
        let mut res = (status, Json(body)).into_response();
        decorate(&self, &mut res);
        res
    }
}

pub fn status_of(e: &AppError) -> StatusCode {
    match e {
        AppError::Unauthenticated | AppError::InvalidCredentials => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::BadParameter { .. }
        | AppError::BadRequest(_)
        | AppError::InvalidBlueprint { .. }
        | AppError::TtlExceedsMax(_) => StatusCode::BAD_REQUEST,
        AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        AppError::Conflict(_)
        | AppError::InvalidState(_)
        | AppError::NotPermitted(_)
        | AppError::IdempotencyConflict(_)
        | AppError::QuotaExceeded(_)
        | AppError::BudgetExceeded(_)
        | AppError::NameTaken(_) => StatusCode::CONFLICT,
        AppError::ConfirmationRequired(_) | AppError::InvalidKey(_) => StatusCode::BAD_REQUEST,
        AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        AppError::ProviderThrottled(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::ProviderDenied(_) => StatusCode::BAD_GATEWAY,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Provider(_) => StatusCode::BAD_GATEWAY,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn decorate(e: &AppError, res: &mut Response<Body>) {
    close_if_unread(status_of(e), res);
    match e {
        AppError::RateLimited(d) => {
            if let Ok(v) = HeaderValue::from_str(&d.as_secs().max(1).to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        AppError::Unauthenticated | AppError::InvalidCredentials => {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
}
