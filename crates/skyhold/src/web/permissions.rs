//! Permissions: who holds which level on an object. The resource detail
//! page shows them as a section ([`section`]); accounts and groups have a
//! page of their own. One form adds a user or group with a level (or
//! changes the level it has), one removes a grant (after confirmation).
//! The check is `App::put_grant` / `delete_grant`'s; `App::allows` only
//! chooses whether to show the forms.

use super::common::{PageError, PageResult};
use super::forms::{confirm_page, csrf_field, done, failed, local_path, notice, Fields};
use super::ui::{page, time};
use super::AppState;
use crate::app::{Action, Actor, Object};
use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{html, Markup};
use serde::Deserialize;
use skyhold_core::{AccountName, GrantId, Level};
use skyhold_store::Grant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/accounts/{name}/permissions", get(account_page))
        .route("/groups/{id}/permissions", get(group_page))
        .route("/grants", post(put_grant))
        .route("/grants/{id}/delete", post(delete_grant))
}

pub const NOTICES: &[(&str, &str)] = &[
    ("grant_saved", "Permission saved."),
    ("grant_removed", "Permission removed."),
    ("extended", "Extended: the new expiry is below."),
];

fn level_select(selected: Level) -> Markup {
    html! {
        select name="level" aria-label="Level" {
            @for l in Level::ALL { option value=(l.as_str()) selected[l == selected] { (l.as_str()) } }
        }
    }
}

/// The grants on `object` (`resource:42`, `account:prod`, `group:dev`),
/// with the forms to change them when `can_change`; forms come back to
/// `back`.
pub fn section(
    actor: &Actor,
    object: &str,
    grants: &[Grant],
    can_change: bool,
    back: &str,
) -> Markup {
    html! {
        @if grants.is_empty() {
            p.dim { "Nobody holds a grant on it. " @if object.starts_with("resource:") { "The owner and admins manage it; grants on its account apply too." } }
        } @else {
            table.grid {
                thead { tr { th { "Who" } th { "Level" } th { "Since" } @if can_change { th {} } } }
                tbody { @for g in grants {
                    @let subject = format!("{}:{}", g.subject_kind, g.subject_name);
                    tr {
                        td { (subject) }
                        td {
                            @if can_change {
                                form.inline method="post" action="/grants" {
                                    (csrf_field(actor))
                                    input type="hidden" name="object" value=(object);
                                    input type="hidden" name="subject" value=(subject);
                                    input type="hidden" name="back" value=(back);
                                    (level_select(Level::parse(&g.level).unwrap_or(Level::View)))
                                    button type="submit" { "Change" }
                                }
                            } @else { (g.level) }
                        }
                        td { (time(Some(g.created_at))) }
                        @if can_change {
                            td {
                                form.inline method="post" action={"/grants/" (g.id) "/delete"} data-confirm={"Remove " (subject) "'s " (g.level) " permission?"} {
                                    (csrf_field(actor))
                                    input type="hidden" name="back" value=(back);
                                    input type="hidden" name="what" value={(subject) " (" (g.level) ")"};
                                    button.link.danger type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                } }
            }
        }
        @if can_change {
            form.panel method="post" action="/grants" {
                (csrf_field(actor))
                input type="hidden" name="object" value=(object);
                input type="hidden" name="back" value=(back);
                select name="subject_kind" aria-label="User or group" {
                    option value="user" { "user" }
                    option value="group" { "group" }
                }
                input type="text" name="subject_name" placeholder="name" size="14" aria-label="User or group name" required;
                (level_select(Level::Operate))
                button.primary type="submit" { "Grant" }
                span.dim { "view < operate (start, stop, reboot) < manage (terminate, owner, permissions)" }
            }
        }
    }
}

#[derive(Deserialize, Default)]
struct DoneQuery {
    done: Option<String>,
}

async fn object_page(
    app: &AppState,
    actor: &Actor,
    object: &str,
    title: &str,
    can_change: bool,
    active: &str,
    done_code: Option<&str>,
) -> PageResult {
    let grants = app.grants(actor, Some(object), None).await?;
    let back = format!(
        "/{}s/{}/permissions",
        object.split(':').next().unwrap_or(""),
        object.split_once(':').map_or("", |(_, n)| n)
    );
    let body = html! {
        h1 { "Permissions · " (title) }
        (notice(done_code, NOTICES))
        (section(actor, object, &grants, can_change, &back))
    };
    Ok(page(
        &format!("Permissions · {title}"),
        Some((actor, &app.enabled_kinds())),
        active,
        body,
    ))
}

async fn account_page(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    Query(q): Query<DoneQuery>,
) -> PageResult {
    let account = AccountName::parse(&name).map_err(|m| AppError::bad_parameter("account", m))?;
    let can_change = app.allows(&actor, Action::ChangeGrants, Object::Account(&account));
    object_page(
        &app,
        &actor,
        &format!("account:{account}"),
        &format!("account {account}"),
        can_change,
        "dashboard",
        q.done.as_deref(),
    )
    .await
}

async fn group_page(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    Query(q): Query<DoneQuery>,
) -> PageResult {
    let g = app.find_group(&name).await?;
    let can_change = app.allows(&actor, Action::ChangeGrants, Object::Group(g.id));
    object_page(
        &app,
        &actor,
        &format!("group:{}", g.name),
        &format!("group {} (manage = may change its members)", g.name),
        can_change,
        "groups",
        q.done.as_deref(),
    )
    .await
}

/// Adds a grant or changes its level: `object`, `subject` (or
/// `subject_kind` + `subject_name`), `level`, and `back`.
async fn put_grant(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let back = local_path(f.get("back"), "/");
    let subject = match f.get("subject").trim() {
        "" => format!(
            "{}:{}",
            f.get("subject_kind").trim(),
            f.get("subject_name").trim()
        ),
        s => s.to_owned(),
    };
    Ok(
        match app
            .put_grant(&actor, &subject, f.get("object"), f.get("level"))
            .await
        {
            Ok(_) => done(&back, "grant_saved"),
            Err(e) => failed(&app, &actor, "", e, &back),
        },
    )
}

async fn delete_grant(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let back = local_path(f.get("back"), "/");
    let id = match id.parse::<i64>() {
        Ok(n) => GrantId(n),
        Err(_) => {
            let e = AppError::bad_parameter("id", format!("not a grant id: {id:?}"));
            return Ok(failed(&app, &actor, "", e, &back));
        }
    };
    if !f.confirmed() {
        let what = skyhold_core::clip(f.get("what"), 120);
        return Ok(confirm_page(
            &app,
            &actor,
            "",
            &format!(
                "Remove the permission {}?",
                if what.is_empty() {
                    format!("#{id}")
                } else {
                    what
                }
            ),
            &format!("/grants/{id}/delete"),
            &f,
            "Remove",
            &back,
        ));
    }
    Ok(match app.delete_grant(&actor, id).await {
        Ok(()) => done(&back, "grant_removed"),
        Err(e) => failed(&app, &actor, "", e, &back),
    })
}
