//! Saved views as pages: the list of the user's named searches, saving one
//! (from that page or from any list page's "Save as view" form), deleting one.

use super::common::{check_csrf, PageError, PageResult};
use super::ui::{csrf_of, page, time};
use super::AppState;
use crate::app::Actor;
use crate::error::AppError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use maud::{html, Markup};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/views", get(list).post(save))
        .route("/views/{id}/delete", post(delete))
}

/// The link that runs a view: the cross-kind search with its text.
pub fn view_href(query: &str) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.append_pair("q", query);
    format!("/search?{}", s.finish())
}

/// The small "Save as view" form shown under a search.
pub fn save_form(actor: &Actor, query: &str) -> Markup {
    html! {
        form.inline method="post" action="/views" {
            input type="hidden" name="csrf" value=(csrf_of(actor));
            input type="hidden" name="q" value=(query);
            input type="text" name="name" placeholder="view name" size="14" maxlength="64" aria-label="View name" required;
            button type="submit" { "Save as view" }
        }
    }
}

async fn render(
    app: &AppState,
    actor: &Actor,
    error: Option<&AppError>,
    typed: (&str, &str),
) -> PageResult {
    let views = app.views(actor).await?;
    let body = html! {
        h1 { "Saved views" }
        p.dim { "Named searches, yours only. A view runs the cross-kind search with its text; the CLI runs one with "
            code { "skyhold ls --view NAME" } "." }
        @if let Some(e) = error { div.error { (e.to_string()) } }
        @if views.is_empty() {
            p.dim { "No saved views yet. Save one from any list or search page, or below." }
        } @else {
            table.grid {
                thead { tr { th { "Name" } th { "Search" } th { "Saved" } th {} } }
                tbody { @for v in &views {
                    tr {
                        td { a href=(view_href(&v.query)) { (v.name) } }
                        td { span.mono { (v.query) } }
                        td { (time(Some(v.created_at))) }
                        td {
                            form.inline method="post" action={"/views/" (v.id) "/delete"} {
                                input type="hidden" name="csrf" value=(csrf_of(actor));
                                button.link type="submit" { "Delete" }
                            }
                        }
                    }
                } }
            }
        }
        h2 { "New view" }
        form.filters method="post" action="/views" {
            input type="hidden" name="csrf" value=(csrf_of(actor));
            input type="text" name="name" value=(typed.0) placeholder="name" size="16" maxlength="64" aria-label="Name" required;
            input type="search" name="q" value=(typed.1) placeholder="kind:instance state:running -tag:owner" aria-label="Search" required;
            button.primary type="submit" { "Save" }
        }
    };
    Ok(page(
        "Saved views",
        Some((actor, &app.enabled_kinds())),
        "views",
        body,
    ))
}

async fn list(State(app): State<AppState>, Extension(actor): Extension<Actor>) -> PageResult {
    render(&app, &actor, None, ("", "")).await
}

#[derive(Deserialize)]
struct SaveForm {
    csrf: String,
    name: String,
    q: String,
}

async fn save(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Form(f): Form<SaveForm>,
) -> Result<Response, PageError> {
    check_csrf(&actor, &f.csrf)?;
    match app.save_view(&actor, &f.name, &f.q).await {
        Ok(v) => Ok(Redirect::to(&view_href(&v.query)).into_response()),
        // A bad name or search, or a duplicate name: shown on the views
        // page with what was typed, so nothing is lost.
        Err(e @ (AppError::BadParameter { .. } | AppError::Conflict(_))) => {
            let status = match e {
                AppError::Conflict(_) => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            let body = render(&app, &actor, Some(&e), (&f.name, &f.q)).await?;
            Ok((status, body).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: String,
}

async fn delete(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Result<Redirect, PageError> {
    check_csrf(&actor, &f.csrf)?;
    let id = id
        .parse()
        .map(skyhold_core::ViewId)
        .map_err(|_| AppError::bad_parameter("id", format!("not a view id: {id:?}")))?;
    app.delete_view(&actor, id).await?;
    Ok(Redirect::to("/views"))
}
