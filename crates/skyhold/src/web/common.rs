//! What the web modules share, so they depend on this leaf module and not on
//! each other: the HTML error page (`PageError`), the CSRF check of forms,
//! the login redirect rule (`safe_next`), cookies, and the parsing of
//! inventory query strings and object-browser parameters.

use super::status_of;
use super::ui::{csrf_of, page};
use crate::app::Actor;
use crate::error::AppError;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, SameSite};
use maud::{html, Markup};
use serde::Deserialize;
use skyhold_core::ResourceQuery;

/// An error shown as an HTML page.
pub struct PageError(pub AppError);

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        if let AppError::Internal(e) = &self.0 {
            tracing::error!(error = ?e, "internal error");
        }
        let body = page(
            "Error",
            None,
            "",
            html! {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                div.error { (skyhold_core::clip(&self.0.to_string(), 1000)) }
                p { a href="/" { "Back to the dashboard" } }
            },
        );
        (status, body).into_response()
    }
}

pub type PageResult = Result<Markup, PageError>;

/// Only same-origin paths are followed after login (no open redirects):
/// the value is parsed as a URL relative to a placeholder origin and kept
/// only if it stays on that origin, as a path and query. Control
/// characters and backslashes (which browsers drop or turn into slashes,
/// making `/\t/evil.example/` a link to another host) are refused outright.
pub fn safe_next(next: Option<&str>) -> String {
    const ORIGIN: &str = "http://skyhold.invalid";
    let Some(n) = next else { return "/".to_owned() };
    if !n.starts_with('/')
        || n.len() > 2000
        || n.chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return "/".to_owned();
    }
    let Ok(base) = url::Url::parse(ORIGIN) else {
        return "/".to_owned();
    };
    match base.join(n) {
        Ok(u) if u.origin() == base.origin() && !n.starts_with("//") => {
            let mut out = u.path().to_owned();
            if let Some(q) = u.query() {
                out.push('?');
                out.push_str(q);
            }
            out
        }
        _ => "/".to_owned(),
    }
}

pub fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .build()
}

pub fn check_csrf(actor: &Actor, sent: &str) -> Result<(), PageError> {
    if crate::auth::ct_eq(csrf_of(actor), sent) && !sent.is_empty() {
        Ok(())
    } else {
        Err(PageError(AppError::Forbidden(
            "the form's security token is missing or stale; reload the page".into(),
        )))
    }
}

/// An inventory query from a raw query string (lists, search, counts).
pub fn parse_query(raw: Option<&str>) -> Result<ResourceQuery, AppError> {
    let raw = raw.unwrap_or("");
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    Ok(ResourceQuery::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ObjectsQuery {
    #[serde(default)]
    pub prefix: String,
    pub token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyQuery {
    pub key: String,
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_local_only() {
        assert_eq!(
            safe_next(Some("/instances?state=running")),
            "/instances?state=running"
        );
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
        // What a form decodes `next=/%09/evil.example/` into, and friends:
        // browsers drop tabs and newlines, leaving `//evil.example/`.
        for bad in [
            "/\t/evil.example/",
            "/\n/evil.example",
            "/\r\n/x",
            "/\u{1}x",
            "/\\evil.example",
            "/ /x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(
            safe_next(Some("/%09/x")),
            "/%09/x",
            "an encoded tab stays encoded"
        );
        assert_eq!(safe_next(Some("/a/../b?x=1#frag")), "/b?x=1");
    }
}
