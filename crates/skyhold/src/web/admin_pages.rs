//! The pages of people: Users (admins manage, auditors read), the signed-in
//! user's Profile (password, email, SSH keys) and Groups (admins create and
//! delete; whoever manages a group changes its members). Each handler calls
//! one `App` function; the check happens there. `App::allows` only chooses
//! which forms to show.

use super::common::{PageError, PageResult};
use super::forms::{confirm_page, csrf_field, done, failed, notice, Fields};
use super::ui::{empty, page, time};
use super::AppState;
use crate::app::{Action, Actor, Object, UserChange};
use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::html;
use serde::Deserialize;
use skyhold_core::{GroupId, Role, SshKeyId, UserId};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(users).post(create_user))
        .route("/users/{id}/update", post(update_user))
        .route("/profile", get(profile))
        .route("/profile/password", post(change_password))
        .route("/profile/email", post(set_email))
        .route("/profile/ssh-keys", post(add_ssh_key))
        .route("/profile/ssh-keys/{id}/delete", post(delete_ssh_key))
        .route("/groups", get(groups).post(create_group))
        .route("/groups/{id}/delete", post(delete_group))
        .route("/groups/{id}/members", post(add_member))
        .route("/groups/{id}/members/remove", post(remove_member))
}

#[derive(Deserialize, Default)]
struct DoneQuery {
    done: Option<String>,
}

fn id_of<T>(raw: &str, what: &str, make: fn(i64) -> T) -> Result<T, AppError> {
    raw.parse::<i64>()
        .map(make)
        .map_err(|_| AppError::bad_parameter("id", format!("not a {what} id: {raw:?}")))
}

fn parse_role(v: &str) -> Result<Role, AppError> {
    Role::parse(v.trim())
        .ok_or_else(|| AppError::bad_parameter("role", "use admin, member, viewer or auditor"))
}

fn role_select(selected: Role) -> maud::Markup {
    html! {
        select name="role" aria-label="Role" {
            @for r in Role::ALL { option value=(r.as_str()) selected[r == selected] { (r.as_str()) } }
        }
    }
}

// ---------------------------------------------------------------- users

const USER_NOTICES: &[(&str, &str)] = &[
    ("created", "User created."),
    ("role", "Role changed."),
    ("password", "Password reset; the user's sessions ended."),
    (
        "disabled",
        "User disabled; their sessions and tokens ended.",
    ),
    ("enabled", "User enabled."),
    ("updated", "User updated."),
];

async fn users(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Query(q): Query<DoneQuery>,
) -> PageResult {
    let users = app.users(&actor).await?;
    let manage = app.allows(&actor, Action::ManageUsers, Object::None);
    let body = html! {
        h1 { "Users" }
        (notice(q.done.as_deref(), USER_NOTICES))
        table.grid {
            thead { tr {
                th { "Name" } th { "Role" } th { "Email" } th { "Source" } th { "Disabled" } th { "Created" }
                @if manage { th { "Change" } }
            } }
            tbody { @for u in &users {
                tr class=[u.disabled.then_some("deleted")] {
                    td { (u.username) @if u.id == actor.user_id { " " span.dim { "(you)" } } }
                    td { (u.role.as_str()) }
                    td { (empty(&u.email)) }
                    td { (u.source) }
                    td { @if u.disabled { "yes, since " (time(u.disabled_at)) } @else { span.dim { "no" } } }
                    td { (time(Some(u.created_at))) }
                    @if manage {
                        @let action = format!("/users/{}/update", u.id);
                        td { div.rowforms {
                            @if u.id != actor.user_id {
                                form.inline method="post" action=(action) {
                                    (csrf_field(&actor))
                                    (role_select(u.role))
                                    button type="submit" { "Set role" }
                                }
                            }
                            @if u.id == actor.user_id {
                                a href="/profile" { "Change your password on your profile" }
                            } @else {
                            form.inline method="post" action=(action) {
                                (csrf_field(&actor))
                                input type="password" name="password" placeholder="new password" autocomplete="new-password" minlength="8" size="14" aria-label={"New password for " (u.username)} required;
                                button type="submit" { "Reset password" }
                            }
                            }
                            @if u.id != actor.user_id {
                                @if u.disabled {
                                    form.inline method="post" action=(action) {
                                        (csrf_field(&actor))
                                        input type="hidden" name="disabled" value="false";
                                        button type="submit" { "Enable" }
                                    }
                                } @else {
                                    form.inline method="post" action=(action) data-confirm={"Disable " (u.username) "? Their sessions and tokens end at once."} {
                                        (csrf_field(&actor))
                                        input type="hidden" name="username" value=(u.username);
                                        input type="hidden" name="disabled" value="true";
                                        button.danger type="submit" { "Disable" }
                                    }
                                }
                            }
                        } }
                    }
                }
            } }
        }
        @if manage {
            h2 { "New user" }
            form.panel method="post" action="/users" {
                (csrf_field(&actor))
                input type="text" name="username" placeholder="user name" size="14" maxlength="64" aria-label="User name" required;
                input type="password" name="password" placeholder="password (8+ characters)" autocomplete="new-password" minlength="8" aria-label="Password" required;
                (role_select(Role::Member))
                input type="email" name="email" placeholder="email (optional)" aria-label="Email";
                button.primary type="submit" { "Create user" }
            }
        }
    };
    Ok(page(
        "Users",
        Some((&actor, &app.enabled_kinds())),
        "users",
        body,
    ))
}

async fn create_user(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let result = async {
        let role = parse_role(f.required("role")?)?;
        app.create_user(
            &actor,
            f.required("username")?,
            f.get("password"),
            role,
            f.get("email"),
        )
        .await
    }
    .await;
    Ok(match result {
        Ok(_) => done("/users", "created"),
        Err(e) => failed(&app, &actor, "users", e, "/users"),
    })
}

async fn update_user(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let parsed = (|| {
        let id = id_of(&id, "user", UserId)?;
        let change = UserChange {
            role: Some(f.get("role"))
                .filter(|r| !r.is_empty())
                .map(parse_role)
                .transpose()?,
            password: Some(f.get("password"))
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
            disabled: match f.get("disabled") {
                "" => None,
                "true" => Some(true),
                "false" => Some(false),
                _ => return Err(AppError::bad_parameter("disabled", "use true or false")),
            },
            email: None,
        };
        if change.role.is_none() && change.password.is_none() && change.disabled.is_none() {
            return Err(AppError::bad_parameter(
                "role",
                "nothing to change: give a role, a password or disabled",
            ));
        }
        Ok((id, change))
    })();
    let (id, change) = match parsed {
        Ok(p) => p,
        Err(e) => return Ok(failed(&app, &actor, "users", e, "/users")),
    };
    if change.disabled == Some(true) && !f.confirmed() {
        let who = skyhold_core::clip(f.get("username"), 64);
        let who = if who.is_empty() {
            format!("user {id}")
        } else {
            who
        };
        return Ok(confirm_page(
            &app,
            &actor,
            "users",
            &format!("Disable {who}? Their sessions and API tokens end at once; they cannot log in until enabled again."),
            &format!("/users/{id}/update"),
            &f,
            "Disable",
            "/users",
        ));
    }
    let code = match (change.disabled, change.role, &change.password) {
        (Some(true), ..) => "disabled",
        (Some(false), ..) => "enabled",
        (None, Some(_), None) => "role",
        (None, None, Some(_)) => "password",
        _ => "updated",
    };
    Ok(match app.update_user(&actor, id, &change).await {
        Ok(_) => done("/users", code),
        Err(e) => failed(&app, &actor, "users", e, "/users"),
    })
}

// ---------------------------------------------------------------- profile

const PROFILE_NOTICES: &[(&str, &str)] = &[
    ("email", "Email saved."),
    ("key_added", "SSH key added."),
    ("key_deleted", "SSH key deleted."),
];

async fn profile(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Query(q): Query<DoneQuery>,
) -> PageResult {
    let p = app.me(&actor).await?;
    let quotas = app.my_quota(&actor).await?;
    let u = &p.user;
    let body = html! {
        h1 { "Profile" }
        (notice(q.done.as_deref(), PROFILE_NOTICES))
        dl.facts {
            dt { "User name" } dd { (u.username) }
            dt { "Role" } dd { (u.role.as_str()) }
            dt { "Groups" } dd { @if p.groups.is_empty() { span.dim { "none" } } @else { (p.groups.join(", ")) } }
            dt { "Signed in with" } dd { (p.auth) }
            dt { "Account source" } dd { (u.source) }
            dt { "Email" } dd { (empty(&u.email)) }
            dt { "Created" } dd { (time(Some(u.created_at))) }
        }
        @if u.source == "local" {
            h2 { "Change password" }
            p.dim { "Changing it ends all your sessions, this one included: you log in again with the new password." }
            form.panel method="post" action="/profile/password" {
                (csrf_field(&actor))
                input type="password" name="current_password" placeholder="current password" autocomplete="current-password" aria-label="Current password" required;
                input type="password" name="new_password" placeholder="new password (8+ characters)" autocomplete="new-password" minlength="8" aria-label="New password" required;
                button.primary type="submit" { "Change password" }
            }
        }
        h2 { "Email" }
        form.panel method="post" action="/profile/email" {
            (csrf_field(&actor))
            input type="email" name="email" value=(u.email) placeholder="ann@example.com" size="30" aria-label="Email";
            button type="submit" { "Save email" }
        }
        h2 #quota { "Your quota" }
        (super::launch_pages::quota_table(&quotas, None))
        h2 { "SSH public keys (" (p.ssh_keys.len()) ")" }
        p.dim { "Your newest key is imported at launch as skyhold-" (u.username) "-FINGERPRINT8; the key hook serves every key below to the servers you may operate." }
        @if p.ssh_keys.is_empty() { p.dim { "No keys yet." } } @else {
            table.grid {
                thead { tr { th { "Name" } th { "Fingerprint" } th { "Type" } th { "Added" } th {} } }
                tbody { @for k in &p.ssh_keys {
                    tr {
                        td { (k.name) }
                        td.mono { (k.fingerprint) }
                        td.mono { (k.public_key.split_whitespace().next().unwrap_or("")) }
                        td { (time(Some(k.created_at))) }
                        td {
                            form.inline method="post" action={"/profile/ssh-keys/" (k.id) "/delete"} data-confirm={"Delete the SSH key " (k.name) "?"} {
                                (csrf_field(&actor))
                                input type="hidden" name="name" value=(k.name);
                                button.link.danger type="submit" { "Delete" }
                            }
                        }
                    }
                } }
            }
        }
        form.panel method="post" action="/profile/ssh-keys" {
            (csrf_field(&actor))
            input type="text" name="name" placeholder="name (laptop)" size="14" maxlength="100" aria-label="Key name";
            input type="text" name="public_key" placeholder="ssh-ed25519 AAAA… you@host" size="60" aria-label="Public key" required;
            button type="submit" { "Add key" }
        }
    };
    Ok(page(
        "Profile",
        Some((&actor, &app.enabled_kinds())),
        "profile",
        body,
    ))
}

async fn change_password(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    match app
        .change_own_password(&actor, f.get("current_password"), f.get("new_password"))
        .await
    {
        // Every session of the user ended with the change, this one too.
        Ok(()) => {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair(
                    "error",
                    "Your password was changed and your sessions ended; log in with the new password.",
                )
                .append_pair("next", "/profile")
                .finish();
            Ok(Redirect::to(&format!("/login?{q}")).into_response())
        }
        Err(e) => Ok(failed(&app, &actor, "profile", e, "/profile")),
    }
}

async fn set_email(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    Ok(match app.set_own_email(&actor, f.get("email")).await {
        Ok(()) => done("/profile", "email"),
        Err(e) => failed(&app, &actor, "profile", e, "/profile"),
    })
}

async fn add_ssh_key(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    Ok(
        match app
            .add_ssh_key(&actor, f.get("name"), f.get("public_key"))
            .await
        {
            Ok(_) => done("/profile", "key_added"),
            Err(e) => failed(&app, &actor, "profile", e, "/profile"),
        },
    )
}

async fn delete_ssh_key(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let id = match id_of(&id, "ssh key", SshKeyId) {
        Ok(id) => id,
        Err(e) => return Ok(failed(&app, &actor, "profile", e, "/profile")),
    };
    if !f.confirmed() {
        let name = skyhold_core::clip(f.get("name"), 100);
        return Ok(confirm_page(
            &app,
            &actor,
            "profile",
            &format!("Delete the SSH key {name:?}?"),
            &format!("/profile/ssh-keys/{id}/delete"),
            &f,
            "Delete key",
            "/profile",
        ));
    }
    Ok(match app.delete_ssh_key(&actor, id).await {
        Ok(()) => done("/profile", "key_deleted"),
        Err(e) => failed(&app, &actor, "profile", e, "/profile"),
    })
}

// ---------------------------------------------------------------- groups

const GROUP_NOTICES: &[(&str, &str)] = &[
    ("created", "Group created."),
    ("deleted", "Group deleted."),
    ("member_added", "Member added."),
    ("member_removed", "Member removed."),
];

async fn groups(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Query(q): Query<DoneQuery>,
) -> PageResult {
    let groups = app.groups(&actor).await?;
    let create = app.allows(&actor, Action::ManageGroups, Object::None);
    let body = html! {
        h1 { "Groups" }
        (notice(q.done.as_deref(), GROUP_NOTICES))
        p.dim { "Members inherit their groups' grants; an owner tag " code { "group:NAME" } " gives the group's members manage on the resource." }
        @if groups.is_empty() { p.dim { "No groups yet." } } @else {
            table.grid {
                thead { tr { th { "Group" } th { "Members" } th { "Created" } th {} } }
                tbody { @for g in &groups {
                    @let members = app.allows(&actor, Action::ManageMembers, Object::Group(g.id));
                    tr {
                        td { (g.name) }
                        td.wrap {
                            @if g.members.is_empty() { span.dim { "none" } }
                            @for m in &g.members {
                                span.member {
                                    (m)
                                    @if members {
                                        form.inline method="post" action={"/groups/" (g.id) "/members/remove"} data-confirm={"Remove " (m) " from " (g.name) "?"} {
                                            (csrf_field(&actor))
                                            input type="hidden" name="username" value=(m);
                                            input type="hidden" name="group" value=(g.name);
                                            button.link.danger type="submit" title={"Remove " (m)} { "×" }
                                        }
                                    }
                                }
                            }
                            @if members {
                                form.inline method="post" action={"/groups/" (g.id) "/members"} {
                                    (csrf_field(&actor))
                                    input type="text" name="username" placeholder="user name" size="12" aria-label={"Add a member to " (g.name)} required;
                                    button type="submit" { "Add member" }
                                }
                            }
                        }
                        td { (time(Some(g.created_at))) }
                        td {
                            @if app.allows(&actor, Action::ViewGrants, Object::Group(g.id)) {
                                a href={"/groups/" (g.name) "/permissions"} { "Permissions" } " "
                            }
                            @if create {
                                form.inline method="post" action={"/groups/" (g.id) "/delete"} data-confirm={"Delete the group " (g.name) "? Its grants go with it."} {
                                    (csrf_field(&actor))
                                    input type="hidden" name="group" value=(g.name);
                                    button.link.danger type="submit" { "Delete" }
                                }
                            }
                        }
                    }
                } }
            }
        }
        @if create {
            h2 { "New group" }
            form.panel method="post" action="/groups" {
                (csrf_field(&actor))
                input type="text" name="name" placeholder="group name" size="16" maxlength="64" aria-label="Group name" required;
                button.primary type="submit" { "Create group" }
            }
        }
    };
    Ok(page(
        "Groups",
        Some((&actor, &app.enabled_kinds())),
        "groups",
        body,
    ))
}

async fn create_group(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    Ok(match app.create_group(&actor, f.get("name")).await {
        Ok(_) => done("/groups", "created"),
        Err(e) => failed(&app, &actor, "groups", e, "/groups"),
    })
}

async fn delete_group(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let id = match id_of(&id, "group", GroupId) {
        Ok(id) => id,
        Err(e) => return Ok(failed(&app, &actor, "groups", e, "/groups")),
    };
    if !f.confirmed() {
        let name = skyhold_core::clip(f.get("group"), 64);
        return Ok(confirm_page(
            &app,
            &actor,
            "groups",
            &format!("Delete the group {name:?}? Its members lose the grants they had through it."),
            &format!("/groups/{id}/delete"),
            &f,
            "Delete group",
            "/groups",
        ));
    }
    Ok(match app.delete_group(&actor, id).await {
        Ok(()) => done("/groups", "deleted"),
        Err(e) => failed(&app, &actor, "groups", e, "/groups"),
    })
}

async fn add_member(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let result = async {
        let id = id_of(&id, "group", GroupId)?;
        app.add_member(&actor, id, f.required("username")?).await
    }
    .await;
    Ok(match result {
        Ok(_) => done("/groups", "member_added"),
        Err(e) => failed(&app, &actor, "groups", e, "/groups"),
    })
}

async fn remove_member(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let id = match id_of(&id, "group", GroupId) {
        Ok(id) => id,
        Err(e) => return Ok(failed(&app, &actor, "groups", e, "/groups")),
    };
    if !f.confirmed() {
        let (user, group) = (
            skyhold_core::clip(f.get("username"), 64),
            skyhold_core::clip(f.get("group"), 64),
        );
        return Ok(confirm_page(
            &app,
            &actor,
            "groups",
            &format!("Remove {user:?} from the group {group:?}?"),
            &format!("/groups/{id}/members/remove"),
            &f,
            "Remove member",
            "/groups",
        ));
    }
    let result = async { app.remove_member(&actor, id, f.required("username")?).await }.await;
    Ok(match result {
        Ok(_) => done("/groups", "member_removed"),
        Err(e) => failed(&app, &actor, "groups", e, "/groups"),
    })
}
