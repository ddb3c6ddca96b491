//! The JSON API of acting safely: users and the caller's profile, groups,
//! grants, actions on resources, owners, and the audit log. Handlers parse,
//! call one `App` function and render; the check and the audit entries
//! happen inside those functions.

use super::api::{body, id_param, resource_json};
use super::AppState;
use crate::app::{Actor, AuditFilter, Op, UserChange, UserView};
use crate::error::AppError;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use skyhold_core::{
    rfc3339, ActionId, GrantId, GroupId, PowerAction, ResourceId, Role, SshKeyId, UserId,
};
use skyhold_store::{ActionRow, Grant, Group};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/password", post(change_password))
        .route("/api/v1/me/email", post(set_email))
        .route("/api/v1/me/ssh-keys", get(list_ssh_keys).post(add_ssh_key))
        .route("/api/v1/me/ssh-keys/{id}", delete(delete_ssh_key))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{id}", get(get_user).patch(update_user))
        .route("/api/v1/groups", get(list_groups).post(create_group))
        .route("/api/v1/groups/{id}", get(get_group).delete(delete_group))
        .route("/api/v1/groups/{id}/members", post(add_member))
        .route(
            "/api/v1/groups/{id}/members/{username}",
            delete(remove_member),
        )
        .route("/api/v1/grants", get(list_grants).post(put_grant))
        .route("/api/v1/grants/{id}", delete(delete_grant))
        .route("/api/v1/resources/{id}/actions", post(act))
        .route("/api/v1/resources/{id}/owner", post(set_owner))
        .route("/api/v1/actions", get(list_actions))
        .route("/api/v1/actions/{id}", get(get_action))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/audit/export", get(audit_export))
        .route("/api/v1/audit/verify", get(audit_verify))
}

fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn user_json(u: &UserView) -> Value {
    json!({
        "id": u.id, "username": u.username, "role": u.role, "email": u.email,
        "disabled": u.disabled, "disabled_at": u.disabled_at.map(rfc3339),
        "source": u.source, "created_at": rfc3339(u.created_at),
    })
}

fn group_json(g: &Group) -> Value {
    json!({"id": g.id, "name": g.name, "members": g.members, "created_at": rfc3339(g.created_at)})
}

fn grant_json(g: &Grant) -> Value {
    json!({
        "id": g.id,
        "subject": format!("{}:{}", g.subject_kind, g.subject_name),
        "object": format!("{}:{}", g.object_kind, g.object_name),
        "level": g.level,
        "created_at": rfc3339(g.created_at),
    })
}

pub fn action_json(a: &ActionRow) -> Value {
    json!({
        "id": a.id, "action": a.kind, "state": a.state,
        "resource": {"id": a.resource_id, "kind": a.resource_kind, "provider_id": a.provider_id,
                     "name": a.resource_name, "account": a.account, "region": a.region},
        "requested_by": a.requested_by_name, "on_behalf_of": a.on_behalf_of,
        "params": a.params,
        "provider_request_id": a.provider_request_id,
        "error": if a.state == "failed" { json!({"code": a.error_code, "message": a.error}) } else { Value::Null },
        "created_at": rfc3339(a.created_at),
        "started_at": a.started_at.map(rfc3339),
        "finished_at": a.finished_at.map(rfc3339),
    })
}

fn parse_role(v: &str) -> Result<Role, AppError> {
    Role::parse(v)
        .ok_or_else(|| AppError::bad_parameter("role", "use admin, member, viewer or auditor"))
}

async fn me(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, AppError> {
    let p = app.me(&actor).await?;
    let mut v = user_json(&p.user);
    v["groups"] = json!(p.groups);
    v["auth"] = json!(p.auth);
    v["ssh_keys"] = json!(p.ssh_keys.len());
    Ok(Json(v))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<StatusCode, AppError> {
    let b: PasswordChange = body(&bytes)?;
    app.change_own_password(&actor, &b.current_password, &b.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EmailChange {
    email: String,
}

async fn set_email(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<StatusCode, AppError> {
    let b: EmailChange = body(&bytes)?;
    app.set_own_email(&actor, &b.email).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_ssh_keys(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, AppError> {
    let p = app.me(&actor).await?;
    let items: Vec<Value> = p
        .ssh_keys
        .iter()
        .map(|k| json!({"id": k.id, "name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint, "created_at": rfc3339(k.created_at)}))
        .collect();
    Ok(Json(json!({"items": items})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewKey {
    #[serde(default)]
    name: String,
    public_key: String,
}

async fn add_ssh_key(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let b: NewKey = body(&bytes)?;
    let id = app.add_ssh_key(&actor, &b.name, &b.public_key).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))).into_response())
}

async fn delete_ssh_key(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = id_param(&id, "ssh key", SshKeyId)?;
    app.delete_ssh_key(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_users(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, AppError> {
    let users = app.users(&actor).await?;
    Ok(Json(
        json!({"items": users.iter().map(user_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    username: String,
    password: String,
    role: String,
    #[serde(default)]
    email: String,
}

async fn create_user(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let b: NewUserBody = body(&bytes)?;
    let role = parse_role(&b.role)?;
    let u = app
        .create_user(&actor, b.username.trim(), &b.password, role, &b.email)
        .await?;
    Ok((StatusCode::CREATED, Json(user_json(&u))).into_response())
}

async fn get_user(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let users = app.users(&actor).await?;
    let found = users
        .iter()
        .find(|u| u.username == id || u.id.to_string() == id)
        .ok_or_else(|| AppError::NotFound(format!("user {:?}", skyhold_core::clip(&id, 80))))?;
    Ok(Json(user_json(found)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UserPatchBody {
    role: Option<String>,
    disabled: Option<bool>,
    password: Option<String>,
    email: Option<String>,
}

async fn update_user(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, AppError> {
    let b: UserPatchBody = body(&bytes)?;
    let change = UserChange {
        role: b.role.as_deref().map(parse_role).transpose()?,
        disabled: b.disabled,
        password: b.password,
        email: b.email,
    };
    let id = match id.parse::<i64>() {
        Ok(n) => UserId(n),
        Err(_) => app.find_user(&id).await?.id,
    };
    let u = app.update_user(&actor, id, &change).await?;
    Ok(Json(user_json(&u)))
}

async fn list_groups(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, AppError> {
    let groups = app.groups(&actor).await?;
    Ok(Json(
        json!({"items": groups.iter().map(group_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    name: String,
}

async fn create_group(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let b: NewGroup = body(&bytes)?;
    let g = app.create_group(&actor, &b.name).await?;
    Ok((StatusCode::CREATED, Json(group_json(&g))).into_response())
}

async fn group_id(app: &AppState, raw: &str) -> Result<GroupId, AppError> {
    Ok(app.find_group(raw).await?.id)
}

async fn get_group(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = group_id(&app, &id).await?;
    let g = app
        .groups(&actor)
        .await?
        .into_iter()
        .find(|g| g.id == id)
        .ok_or_else(|| AppError::NotFound(format!("group {id}")))?;
    Ok(Json(group_json(&g)))
}

async fn delete_group(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = group_id(&app, &id).await?;
    app.delete_group(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Member {
    username: String,
}

async fn add_member(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, AppError> {
    let b: Member = body(&bytes)?;
    let id = group_id(&app, &id).await?;
    let g = app.add_member(&actor, id, b.username.trim()).await?;
    Ok(Json(group_json(&g)))
}

async fn remove_member(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((id, username)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let id = group_id(&app, &id).await?;
    let g = app.remove_member(&actor, id, &username).await?;
    Ok(Json(group_json(&g)))
}

async fn list_grants(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let (mut object, mut subject) = (None, None);
    for (k, v) in pairs(raw.as_deref()) {
        match k.as_str() {
            "object" => object = Some(v),
            "subject" => subject = Some(v),
            other => {
                return Err(AppError::bad_parameter(
                    &skyhold_core::clip(other, 40),
                    "unknown parameter (use object, subject)",
                ))
            }
        }
    }
    let grants = app
        .grants(&actor, object.as_deref(), subject.as_deref())
        .await?;
    Ok(Json(
        json!({"items": grants.iter().map(grant_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewGrant {
    subject: String,
    object: String,
    level: String,
}

async fn put_grant(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let b: NewGrant = body(&bytes)?;
    let g = app
        .put_grant(&actor, &b.subject, &b.object, &b.level)
        .await?;
    Ok((StatusCode::CREATED, Json(grant_json(&g))).into_response())
}

async fn delete_grant(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = id_param(&id, "grant", GrantId)?;
    app.delete_grant(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActBody {
    action: String,
    confirm: Option<String>,
    #[serde(default)]
    wait: bool,
}

async fn act(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let id = id_param(&id, "resource", ResourceId)?;
    let b: ActBody = body(&bytes)?;
    let power = PowerAction::parse(b.action.trim())
        .ok_or_else(|| AppError::bad_parameter("action", "use start, stop, reboot or terminate"))?;
    let a = app
        .act(&actor, id, Op::Power(power), b.confirm.as_deref())
        .await?;
    let a = if b.wait {
        app.wait_for_action(&actor, &a).await?
    } else {
        a
    };
    Ok((StatusCode::ACCEPTED, Json(action_json(&a))).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OwnerBody {
    owner: String,
}

async fn set_owner(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, AppError> {
    let id = id_param(&id, "resource", ResourceId)?;
    let b: OwnerBody = body(&bytes)?;
    let a = app
        .act(&actor, id, Op::SetOwner(b.owner.trim().to_owned()), None)
        .await?;
    let r = app.resource(&actor, id).await?.resource;
    let mut v = action_json(&a);
    v["resource"] = resource_json(&r, app.permission(&actor, &r));
    Ok(Json(v))
}

async fn get_action(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = id_param(&id, "action", ActionId)?;
    Ok(Json(action_json(&app.action(&actor, id).await?)))
}

async fn list_actions(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let (mut resource, mut by, mut cursor, mut limit) = (None, None, None, 100);
    for (k, v) in pairs(raw.as_deref()) {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        match k.as_str() {
            "resource" => resource = Some(id_param(v, "resource", ResourceId)?),
            "actor" => by = Some(app.find_user(v).await?.id),
            "cursor" => cursor = Some(id_param(v, "action", ActionId)?),
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        AppError::bad_parameter("limit", "a whole number from 1 to 1000")
                    })?
            }
            other => {
                return Err(AppError::bad_parameter(
                    &skyhold_core::clip(other, 40),
                    "unknown parameter",
                ))
            }
        }
    }
    let (rows, next) = app.actions(&actor, resource, by, cursor, limit).await?;
    Ok(Json(
        json!({"items": rows.iter().map(action_json).collect::<Vec<_>>(), "next_cursor": next}),
    ))
}

async fn audit(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let f = AuditFilter::parse(&pairs(raw.as_deref()), false)?;
    let (entries, next) = app.audit_entries(&actor, &f).await?;
    Ok(Json(json!({
        "items": entries.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

const CSV_COLUMNS: [&str; 22] = [
    "seq",
    "time",
    "actor_id",
    "actor",
    "auth",
    "client_ip",
    "user_agent",
    "request_id",
    "idempotency_key",
    "action",
    "target_kind",
    "target_id",
    "target_provider_id",
    "target_account",
    "target_region",
    "target_name",
    "outcome",
    "reason",
    "old",
    "new",
    "prev_hash",
    "hash",
];

fn csv_field(v: &str) -> String {
    // Cells that a spreadsheet would run as a formula are prefixed.
    let v = if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

fn csv_row(e: &skyhold_core::audit::AuditEntry) -> String {
    let d = &e.draft;
    let opt = |v: &Option<Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    let cells = [
        e.seq.to_string(),
        rfc3339(d.time),
        d.actor_id.map(|i| i.to_string()).unwrap_or_default(),
        d.actor.clone(),
        d.auth.clone(),
        d.client_ip.clone(),
        d.user_agent.clone(),
        d.request_id.clone(),
        d.idempotency_key.clone(),
        d.action.clone(),
        d.target.kind.clone(),
        d.target.id.clone(),
        d.target.provider_id.clone(),
        d.target.account.clone(),
        d.target.region.clone(),
        d.target.name.clone(),
        d.outcome.clone(),
        d.reason.clone(),
        opt(&d.old),
        opt(&d.new),
        e.prev_hash.clone(),
        e.hash.clone(),
    ];
    let mut line = cells
        .iter()
        .map(|c| csv_field(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

async fn audit_export(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let pairs = pairs(raw.as_deref());
    let f = AuditFilter::parse(&pairs, true)?;
    let format = pairs
        .iter()
        .find(|(k, _)| k == "format")
        .map_or("jsonl", |(_, v)| v.as_str());
    let csv = match format {
        "jsonl" => false,
        "csv" => true,
        _ => return Err(AppError::bad_parameter("format", "use jsonl or csv")),
    };
    let mut out = String::new();
    if csv {
        out.push_str(&CSV_COLUMNS.join(","));
        out.push('\n');
    }
    app.audit_walk(&actor, f.since, f.until, |page| {
        for e in page {
            if csv {
                out.push_str(&csv_row(e));
            } else {
                out.push_str(&e.to_json().to_string());
                out.push('\n');
            }
        }
        Ok(())
    })
    .await?;
    let (ctype, ext) = if csv {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("application/x-ndjson", "jsonl")
    };
    Response::builder()
        .header(header::CONTENT_TYPE, ctype)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"skyhold-audit.{ext}\""),
        )
        .body(Body::from(out))
        .map_err(|e| AppError::Internal(e.into()))
}

async fn audit_verify(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, AppError> {
    let r = app.verify_audit(&actor).await?;
    Ok(Json(json!({
        "ok": r.ok, "checked": r.checked, "first_bad_seq": r.first_bad_seq, "problem": r.problem,
        "head": r.head.map(|(seq, hash)| json!({"seq": seq, "hash": hash})),
    })))
}
