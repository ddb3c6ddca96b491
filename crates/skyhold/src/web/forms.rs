//! What the pages that change things share: reading a form body (with
//! repeated fields, such as the selected rows of a bulk action), the
//! confirmation step of destructive forms (a page of its own, so it works
//! without JavaScript; with it, a `confirm()` dialog answers for the page),
//! the page a refused form leads to, and notices chosen by a code in the
//! URL (fixed texts, never text taken from the URL).

use super::common::{check_csrf, PageError};
use super::status_of;
use super::ui::{csrf_of, page};
use crate::app::{Actor, App};
use crate::error::AppError;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};

/// A form body as `(name, value)` pairs, in order.
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Self {
        Fields(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, or "" when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name` (checkboxes sharing a name).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed value of a field that must be filled in.
    pub fn required(&self, name: &str) -> Result<&str, AppError> {
        let v = self.get(name).trim();
        if v.is_empty() {
            Err(AppError::bad_parameter(name, "is required"))
        } else {
            Ok(v)
        }
    }

    /// Whether the user answered the confirmation step (or dialog).
    pub fn confirmed(&self) -> bool {
        self.get("confirmed") == "1"
    }

    /// Checks the form's CSRF token against the session's.
    pub fn check_csrf(&self, actor: &Actor) -> Result<(), PageError> {
        check_csrf(actor, self.get("csrf"))
    }
}

/// Only local paths are followed (no open redirects); `fallback` otherwise.
pub fn local_path(p: &str, fallback: &str) -> String {
    if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && !p.contains('\n') {
        p.to_owned()
    } else {
        fallback.to_owned()
    }
}

/// A path (which may hold a query and a `#fragment`) with more query
/// pairs, encoded.
pub fn href(path: &str, pairs: &[(&str, &str)]) -> String {
    let (path, fragment) = match path.split_once('#') {
        Some((p, f)) => (p, format!("#{f}")),
        None => (path, String::new()),
    };
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    let q = s.finish();
    let sep = if q.is_empty() {
        ""
    } else if path.contains('?') {
        "&"
    } else {
        "?"
    };
    format!("{path}{sep}{q}{fragment}")
}

/// After a change: back to `path` with a notice code (a 303, so a reload
/// does not post again).
pub fn done(path: &str, code: &str) -> Response {
    Redirect::to(&href(path, &[("done", code)])).into_response()
}

/// The notice for a `done` code, from a fixed table; unknown codes show
/// nothing.
pub fn notice(code: Option<&str>, table: &[(&str, &str)]) -> Markup {
    let text = code.and_then(|c| table.iter().find(|(k, _)| *k == c).map(|(_, t)| *t));
    html! { @if let Some(t) = text { div.ok role="status" { (t) } } }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(actor: &Actor) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf_of(actor)); }
}

fn nav_page(app: &App, actor: &Actor, title: &str, active: &str, body: Markup) -> Markup {
    page(title, Some((actor, &app.enabled_kinds())), active, body)
}

/// A refused or failed form: its message, in the status of its error, with
/// a way back to where it came from.
pub fn failed(app: &App, actor: &Actor, active: &str, e: AppError, back: &str) -> Response {
    if let AppError::Internal(err) = &e {
        tracing::error!(error = ?err, "internal error");
    }
    let status = status_of(&e);
    let body = html! {
        h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
        div.error role="alert" { (e.to_string()) }
        p { a href=(back) { "« Back" } }
    };
    (status, nav_page(app, actor, "Refused", active, body)).into_response()
}

/// The confirmation step of a destructive form: the question, and the
/// same form again (every field but the token) with `confirmed=1`.
#[allow(clippy::too_many_arguments)]
pub fn confirm_page(
    app: &App,
    actor: &Actor,
    active: &str,
    question: &str,
    action: &str,
    fields: &Fields,
    button: &str,
    back: &str,
) -> Response {
    let body = html! {
        h1 { "Please confirm" }
        div.error { (question) }
        form.panel method="post" action=(action) {
            (csrf_field(actor))
            @for (k, v) in fields.0.iter().filter(|(k, _)| k != "csrf" && k != "confirmed") {
                input type="hidden" name=(k) value=(v);
            }
            input type="hidden" name="confirmed" value="1";
            button.danger type="submit" { (button) }
            a href=(back) { "Cancel" }
        }
    };
    nav_page(app, actor, "Please confirm", active, body).into_response()
}
