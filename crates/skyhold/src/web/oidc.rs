//! OIDC sign-in routes (public, like `/login`): `GET /auth/oidc/login`
//! sends the browser to the provider, `GET /auth/oidc/callback` is the
//! redirect URI. The pending login lives in a signed, HttpOnly cookie
//! scoped to `/auth/oidc`; the checks are in `app::oidc`.

use super::common::{cookie, safe_next};
use super::ui::page;
use super::{request_ctx, status_of, AppState, SESSION_COOKIE};
use crate::app::OidcCallback;
use crate::error::AppError;
use axum::extract::{Query, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use maud::html;
use serde::Deserialize;

/// The cookie holding the sealed pending login.
pub const OIDC_COOKIE: &str = "skyhold_oidc";
const OIDC_COOKIE_PATH: &str = "/auth/oidc";

#[derive(Deserialize, Default)]
pub struct BeginQuery {
    next: Option<String>,
}

pub async fn begin(State(app): State<AppState>, jar: CookieJar, req: Request) -> Response {
    let q = Query::<BeginQuery>::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default();
    let next = safe_next(q.next.as_deref());
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    match app.oidc_begin(host, &next).await {
        Ok(start) => {
            let c = Cookie::build((OIDC_COOKIE, start.cookie))
                .path(OIDC_COOKIE_PATH)
                .http_only(true)
                // Lax: the provider sends the browser back with a top-level GET.
                .same_site(SameSite::Lax)
                .secure(app.config.secure_cookies)
                .build();
            (jar.add(c), Redirect::to(&start.authorize_url)).into_response()
        }
        Err(e) => refused(e),
    }
}

#[derive(Deserialize, Default)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub async fn callback(State(app): State<AppState>, jar: CookieJar, req: Request) -> Response {
    let ctx = request_ctx(&req);
    let q = Query::<CallbackQuery>::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default();
    let cb = OidcCallback {
        code: q.code.as_deref(),
        state: q.state.as_deref(),
        error: q.error.as_deref(),
        error_description: q.error_description.as_deref(),
        cookie: jar.get(OIDC_COOKIE).map(|c| c.value()),
    };
    let result = app.oidc_finish(&cb, &ctx).await;
    // A pending login is used once, whatever the outcome.
    let jar = jar.remove(Cookie::build(OIDC_COOKIE).path(OIDC_COOKIE_PATH).build());
    let (actor, next) = match result {
        Ok(v) => v,
        Err(e) => return (jar, refused(e)).into_response(),
    };
    match app.start_session(&actor, "oidc").await {
        Ok(token) => {
            let jar = jar.add(cookie(SESSION_COOKIE, token, app.config.secure_cookies));
            (jar, Redirect::to(&safe_next(Some(&next)))).into_response()
        }
        Err(e) => (jar, refused(e)).into_response(),
    }
}

/// A refused sign-in: its status and why, with the way back.
fn refused(e: AppError) -> Response {
    let status = status_of(&e);
    if let AppError::Internal(err) = &e {
        tracing::error!(error = ?err, "internal error");
    }
    let body = page(
        "Sign-in refused",
        None,
        "",
        html! {
            div.login {
                h1 { "Sign-in refused" }
                div.error { (e.to_string()) }
                p { a href="/login" { "Back to the login page" } }
            }
        },
    );
    (status, body).into_response()
}
