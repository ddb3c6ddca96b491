//! JSON API handlers under `/api/v1`. Each parses its input, calls one
//! application function and serializes the result.

use super::common::parse_query;
use super::AppState;
use crate::app::{Actor, AuthVia};
use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use skyhold_core::{rfc3339, Resource, ResourceId, TokenId};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/token", delete(revoke_current_token))
        .route("/api/v1/tokens", get(list_tokens))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route("/api/v1/resources", get(list_resources))
        .route("/api/v1/resources/count", get(count_resources))
        .route("/api/v1/resources/{id}", get(get_resource))
        .route("/api/v1/resources/{id}/template", get(stack_template))
        .route("/api/v1/resources/{id}/alarm-history", get(alarm_history))
        .route("/api/v1/resources/{id}/objects", get(bucket_objects))
        .route("/api/v1/resources/{id}/objects/url", get(object_url))
        .route("/api/v1/resources/{id}/refresh", post(refresh_resource))
        .route("/api/v1/accounts", get(accounts))
        .route("/api/v1/changes", get(changes))
        .route("/api/v1/sync", post(sync))
        .route("/api/v1/sync/status", get(sync_status))
        .route("/api/v1/dashboard", get(dashboard))
        .route("/api/v1/views", get(list_views).post(create_view))
        .route("/api/v1/views/{id}", delete(delete_view))
        .route("/api/v1/openapi.json", get(super::openapi::document))
}

/// Parses a JSON body into `T`, with a JSON error naming what is wrong.
pub(super) fn body<T: DeserializeOwned + Default>(bytes: &Bytes) -> Result<T, AppError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))
}

pub(super) fn id_param<T>(raw: &str, what: &str, make: fn(i64) -> T) -> Result<T, AppError> {
    raw.parse::<i64>()
        .map(make)
        .map_err(|_| AppError::bad_parameter("id", format!("not a {what} id: {raw:?}")))
}

/// A resource as the API shows it, with the caller's permission on it.
pub fn resource_json(r: &Resource, permission: Option<skyhold_core::Level>) -> Value {
    let o = &r.observed;
    json!({
        "permission": permission.map(|l| l.as_str()),
        "id": r.id,
        "provider_id": o.provider_id,
        "kind": o.kind,
        "account": r.account,
        "region": r.region,
        "name": o.name,
        "state": o.state,
        "type": o.rtype,
        "owner": o.owner,
        "tags": o.tags,
        "attributes": o.attributes,
        "first_seen": rfc3339(r.first_seen),
        "last_seen": rfc3339(r.last_seen),
        "deleted_at": r.deleted_at.map(rfc3339),
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    username: String,
    password: String,
    #[serde(default)]
    name: String,
}

/// `POST /api/v1/auth/token`: the one API route that needs no token.
pub async fn create_token(State(app): State<AppState>, req: Request) -> Result<Response, AppError> {
    let ctx = super::request_ctx(&req);
    let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|_| AppError::BadRequest("body too large".into()))?;
    let t: TokenRequest = body(&bytes)?;
    if t.username.is_empty() {
        return Err(AppError::bad_parameter("username", "required"));
    }
    let actor = app.login(&t.username, &t.password, &ctx).await?;
    let (id, token) = app.issue_token(&actor, &t.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": token, "id": id, "username": actor.username, "role": actor.role})),
    )
        .into_response())
}

async fn revoke_current_token(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<StatusCode, AppError> {
    match actor.via {
        AuthVia::Token(id) => {
            app.revoke_token(&actor, id).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(AppError::BadRequest(
            "this request is not authenticated by a token".into(),
        )),
    }
}

async fn list_tokens(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, AppError> {
    let tokens = app.list_tokens(&actor).await?;
    let items: Vec<Value> = tokens
        .iter()
        .map(|t| {
            json!({
                "id": t.id, "name": t.name, "created_at": rfc3339(t.created_at),
                "last_used_at": t.last_used_at.map(rfc3339), "revoked_at": t.revoked_at.map(rfc3339),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

async fn revoke_token(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = id_param(&id, "token", TokenId)?;
    app.revoke_token(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_resources(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let q = parse_query(raw.as_deref())?;
    let page = app.list_resources(&actor, &q).await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|r| resource_json(r, app.permission(&actor, r)))
        .collect();
    Ok(Json(
        json!({"items": items, "next_cursor": page.next_cursor.map(|c| c.encode())}),
    ))
}

/// `GET /api/v1/resources/count?…`: how many resources match (the same
/// filters as the listing), counted up to a cap.
async fn count_resources(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let q = parse_query(raw.as_deref())?;
    let n = app.count_resources(&actor, &q).await?;
    let cap = crate::app::COUNT_CAP;
    Ok(Json(
        json!({"count": n.min(cap), "more": n > cap, "cap": cap}),
    ))
}

async fn get_resource(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = id_param(&id, "resource", ResourceId)?;
    let d = app.resource(&actor, id).await?;
    let mut v = resource_json(&d.resource, app.permission(&actor, &d.resource));
    let related: serde_json::Map<String, Value> = d
        .related
        .iter()
        .map(|(k, rs)| {
            let list = rs.iter().map(|r| json!({"id": r.id, "provider_id": r.observed.provider_id, "name": r.observed.name, "state": r.observed.state})).collect();
            (k.as_str().to_owned(), Value::Array(list))
        })
        .collect();
    v["related"] = Value::Object(related);
    v["history"] = Value::Array(d.history.iter().map(event_json).collect());
    Ok(Json(v))
}

/// Targeted refresh; answers like `GET /api/v1/resources/{id}` afterwards.
async fn refresh_resource(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = id_param(&raw, "resource", ResourceId)?;
    app.refresh_resource(&actor, id).await?;
    get_resource(State(app), Extension(actor), Path(raw)).await
}

async fn accounts(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, AppError> {
    let accounts = app.accounts(&actor).await?;
    let statuses = app.sync_status(&actor).await?;
    let items: Vec<Value> = accounts
        .iter()
        .map(|a| {
            let mine: Vec<_> = statuses.iter().filter(|s| s.account == a.name).collect();
            let last_success = mine.iter().filter_map(|s| s.last_success).min();
            let errors = mine.iter().filter(|s| s.last_error.is_some()).count();
            json!({
                "name": a.name, "provider": a.provider, "regions": a.regions,
                "endpoint_url": a.endpoint_url, "auth": a.auth,
                "last_full_success": last_success.map(rfc3339), "failing_listings": errors,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

pub fn event_json(e: &skyhold_store::ChangeEvent) -> Value {
    json!({
        "id": e.id, "at": rfc3339(e.at), "event": e.event, "resource_id": e.resource_id,
        "kind": e.kind, "account": e.account, "region": e.region,
        "provider_id": e.provider_id, "name": e.name, "changes": e.changes,
    })
}

async fn changes(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let (events, next) = app.changes(&actor, &pairs).await?;
    Ok(Json(json!({
        "items": events.iter().map(event_json).collect::<Vec<_>>(),
        "next_cursor": next.map(|n| n.to_string()),
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SyncRequest {
    account: Option<String>,
    #[serde(default)]
    wait: bool,
}

async fn sync(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let r: SyncRequest = body(&bytes)?;
    match app
        .trigger_sync(&actor, r.account.as_deref(), r.wait)
        .await?
    {
        Some(reports) => {
            // A job held by another replica runs there: not a failure here.
            let held = reports.iter().filter(|r| r.held_by.is_some()).count();
            let failed = reports.iter().filter(|r| !r.ok).count() - held;
            Ok(Json(json!({"status": "done", "listings": reports.len(), "failed": failed, "held_elsewhere": held, "reports": reports})).into_response())
        }
        None => Ok((StatusCode::ACCEPTED, Json(json!({"status": "started"}))).into_response()),
    }
}

pub fn status_json(s: &skyhold_store::SyncStatus) -> Value {
    json!({
        "account": s.account, "region": s.region, "kind": s.kind,
        "last_attempt": rfc3339(s.last_attempt), "last_success": s.last_success.map(rfc3339),
        "duration_ms": s.duration_ms, "count": s.item_count, "last_error": s.last_error,
        "error_kind": s.error_kind, "next_due": s.next_due.map(rfc3339),
        "next_due_ms": s.next_due, "last_attempt_ms": s.last_attempt,
        "holder": s.holder, "running_on": s.running_on, "throttled_in_row": s.throttled_in_row,
    })
}

async fn sync_status(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, AppError> {
    let items: Vec<Value> = app
        .sync_status(&actor)
        .await?
        .iter()
        .map(status_json)
        .collect();
    Ok(Json(json!({ "items": items })))
}

async fn dashboard(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, AppError> {
    let d = app.dashboard(&actor).await?;
    let obj = |v: &[(String, i64)]| -> Value {
        Value::Object(v.iter().map(|(k, n)| (k.clone(), json!(n))).collect())
    };
    Ok(Json(json!({
        "resources_per_kind": obj(&d.per_kind),
        "instances_by_state": obj(&d.instances_by_state),
        "instances_by_account": obj(&d.instances_by_account),
        "instances_by_region": obj(&d.instances_by_region),
        "instances_by_type": obj(&d.instances_by_type),
        "volume_gib": d.volume_gib,
        "running_vcpus": d.running_vcpus,
        "running_memory_mib": d.running_memory_mib,
        "running_unknown_type": d.running_unknown_type,
        "unattached_volumes": d.unattached_volumes,
        "unassociated_elastic_ips": d.unassociated_ips,
        "alarms_in_alarm": d.alarms_in_alarm,
        "stopped_days": d.stopped_days,
        "stopped_longer": d.stopped_long,
    })))
}

fn view_json(v: &skyhold_store::SavedView) -> Value {
    json!({"id": v.id, "name": v.name, "q": v.query, "created_at": rfc3339(v.created_at)})
}

async fn list_views(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, AppError> {
    let views = app.views(&actor).await?;
    Ok(Json(
        json!({ "items": views.iter().map(view_json).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ViewRequest {
    name: String,
    q: String,
}

async fn create_view(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let r: ViewRequest = body(&bytes)?;
    let v = app.save_view(&actor, &r.name, &r.q).await?;
    Ok((StatusCode::CREATED, Json(view_json(&v))).into_response())
}

async fn delete_view(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = id_param(&id, "view", skyhold_core::ViewId)?;
    app.delete_view(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn stack_template(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let (r, body) = app
        .stack_template(&actor, id_param(&id, "resource", ResourceId)?)
        .await?;
    Ok(Json(
        json!({"id": r.id, "stack": r.observed.name, "template": body}),
    ))
}

async fn alarm_history(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let items = app
        .alarm_history(&actor, id_param(&id, "resource", ResourceId)?)
        .await?;
    let items: Vec<Value> = items
        .iter()
        .map(|h| json!({"time": rfc3339(h.time), "type": h.item_type, "summary": h.summary}))
        .collect();
    Ok(Json(json!({ "items": items })))
}

async fn bucket_objects(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    query: Result<Query<super::common::ObjectsQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let (_, page) = app
        .bucket_objects(
            &actor,
            id_param(&id, "resource", ResourceId)?,
            &q.prefix,
            q.token.as_deref(),
        )
        .await?;
    let objects: Vec<Value> = page
        .objects
        .iter()
        .map(|o| json!({"key": o.key, "size": o.size, "modified": o.modified.map(rfc3339)}))
        .collect();
    Ok(Json(json!({
        "prefix": q.prefix, "prefixes": page.prefixes, "objects": objects,
        "next_token": page.next_token,
    })))
}

async fn object_url(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    query: Result<Query<super::common::KeyQuery>, QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let url = app
        .object_url(&actor, id_param(&id, "resource", ResourceId)?, &q.key)
        .await?;
    Ok(Json(json!({
        "url": url, "expires_in_seconds": crate::app::OBJECT_URL_TTL.as_secs(),
    })))
}
