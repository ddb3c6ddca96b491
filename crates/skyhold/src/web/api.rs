//! JSON API handlers under `/api/v1`. Each parses its input, calls one
//! application function and serializes the result. Each carries its
//! OpenAPI description (`#[utoipa::path]`; the document is gathered in
//! `openapi.rs`), and its bodies are typed (`ToSchema`).

use super::common::parse_query;
use super::openapi::{
    kind_schema, permission_schema, IdPath, IdempotencyKey, ReadErrors, ResourceFilter,
    ResourcePaging, ResourcePath, WriteErrors,
};
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
use serde::{Deserialize, Serialize};
use serde_json::Value;
use skyhold_core::{rfc3339, Resource, ResourceId, TokenId};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

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
#[derive(Serialize, ToSchema)]
#[schema(as = Resource)]
pub struct ResourceOut {
    /// The caller's permission on it (null: none beyond what lists show).
    #[schema(schema_with = permission_schema)]
    pub permission: Option<&'static str>,
    pub id: i64,
    /// The provider's id (`i-0abc…`, an ARN, a bucket name).
    pub provider_id: String,
    #[schema(schema_with = kind_schema)]
    pub kind: &'static str,
    pub account: String,
    pub region: String,
    pub name: String,
    pub state: String,
    /// Instance type, volume type, image architecture…
    #[serde(rename = "type")]
    pub rtype: String,
    /// The owner from the tags (`ann`, `group:dev`), '' when none.
    pub owner: String,
    pub tags: BTreeMap<String, String>,
    /// Kind-specific fields (README, "Kinds and their key fields").
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, Value>,
    #[schema(format = DateTime)]
    pub first_seen: String,
    #[schema(format = DateTime)]
    pub last_seen: String,
    /// When it disappeared from its provider (tombstoned).
    #[schema(format = DateTime)]
    pub deleted_at: Option<String>,
    /// Its expiry from `skyhold:expires-at`: RFC 3339, `never`, or null
    /// when unset or unreadable (the tag itself is in `tags`).
    pub expires_at: Option<String>,
}

pub fn resource_out(r: &Resource, permission: Option<skyhold_core::Level>) -> ResourceOut {
    let o = &r.observed;
    ResourceOut {
        permission: permission.map(|l| l.as_str()),
        id: r.id.0,
        provider_id: o.provider_id.clone(),
        kind: o.kind.as_str(),
        account: r.account.to_string(),
        region: r.region.clone(),
        name: o.name.clone(),
        state: o.state.clone(),
        rtype: o.rtype.clone(),
        owner: o.owner.clone(),
        tags: o.tags.clone(),
        attributes: o.attributes.clone(),
        first_seen: rfc3339(r.first_seen),
        last_seen: rfc3339(r.last_seen),
        deleted_at: r.deleted_at.map(rfc3339),
        expires_at: skyhold_core::expiry::Expiry::from_tag(
            o.tags
                .get(skyhold_core::expiry::EXPIRES_TAG)
                .map(String::as_str),
        )
        .tag_value(),
    }
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    username: String,
    password: String,
    /// A label for the token (at most 100 characters; default `api`).
    #[serde(default)]
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    /// The secret, shown this once: send it as `Authorization: Bearer …`.
    pub token: String,
    pub id: i64,
    pub username: String,
    #[schema(schema_with = super::openapi::role_schema)]
    pub role: skyhold_core::Role,
}

/// `POST /api/v1/auth/token`: the one API route that needs no token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/token",
    tag = "auth",
    summary = "Exchange a user name and password for an API token",
    security(()),
    request_body = TokenRequest,
    responses(
        (status = 201, description = "Issued", body = TokenCreated),
        (status = 400, response = super::openapi::ApiError),
        (status = 401, response = super::openapi::ApiError),
        (status = 413, response = super::openapi::ApiError),
        (status = 429, response = super::openapi::ApiError),
        (status = 500, response = super::openapi::ApiError),
    )
)]
pub async fn create_token(State(app): State<AppState>, req: Request) -> Result<Response, AppError> {
    let ctx = super::request_ctx(&req);
    let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|_| AppError::PayloadTooLarge(64 * 1024))?;
    let t: TokenRequest = body(&bytes)?;
    if t.username.is_empty() {
        return Err(AppError::bad_parameter("username", "required"));
    }
    let actor = app.login(&t.username, &t.password, &ctx).await?;
    let (id, token) = app.issue_token(&actor, &t.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token,
            id: id.0,
            username: actor.username,
            role: actor.role,
        }),
    )
        .into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/auth/token",
    tag = "auth",
    summary = "Revoke the token this request is authenticated with",
    params(IdempotencyKey),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, response = super::openapi::ApiError),
        WriteErrors,
    )
)]
pub(super) async fn revoke_current_token(
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

#[derive(Serialize, ToSchema)]
pub struct TokenOut {
    pub id: i64,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenOut>,
}

#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "auth",
    summary = "The caller's API tokens (never their secrets)",
    responses((status = 200, body = TokenList), ReadErrors)
)]
pub(super) async fn list_tokens(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<TokenList>, AppError> {
    let tokens = app.list_tokens(&actor).await?;
    let items = tokens
        .iter()
        .map(|t| TokenOut {
            id: t.id.0,
            name: t.name.clone(),
            created_at: rfc3339(t.created_at),
            last_used_at: t.last_used_at.map(rfc3339),
            revoked_at: t.revoked_at.map(rfc3339),
        })
        .collect();
    Ok(Json(TokenList { items }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "auth",
    summary = "Revoke one of the caller's tokens",
    params(IdPath, IdempotencyKey),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, response = super::openapi::ApiError),
        (status = 404, response = super::openapi::ApiError),
        WriteErrors,
    )
)]
pub(super) async fn revoke_token(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = id_param(&id, "token", TokenId)?;
    app.revoke_token(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct ResourcePage {
    pub items: Vec<ResourceOut>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/resources",
    tag = "inventory",
    summary = "List cached resources, filtered, sorted and paged",
    params(ResourceFilter, ResourcePaging),
    responses(
        (status = 200, body = ResourcePage),
        (status = 400, response = super::openapi::ApiError),
        ReadErrors,
    )
)]
pub(super) async fn list_resources(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ResourcePage>, AppError> {
    let q = parse_query(raw.as_deref())?;
    let page = app.list_resources(&actor, &q).await?;
    let items = page
        .items
        .iter()
        .map(|r| resource_out(r, app.permission(&actor, r)))
        .collect();
    Ok(Json(ResourcePage {
        items,
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Count {
    /// Matching resources, at most `cap`.
    pub count: i64,
    /// More than `cap` match.
    pub more: bool,
    pub cap: i64,
}

/// `GET /api/v1/resources/count?…`: how many resources match (the same
/// filters as the listing), counted up to a cap.
#[utoipa::path(
    get,
    path = "/api/v1/resources/count",
    tag = "inventory",
    summary = "How many resources match (the filters of /resources), counted up to a cap",
    params(ResourceFilter),
    responses(
        (status = 200, body = Count),
        (status = 400, response = super::openapi::ApiError),
        ReadErrors,
    )
)]
pub(super) async fn count_resources(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Count>, AppError> {
    let q = parse_query(raw.as_deref())?;
    let n = app.count_resources(&actor, &q).await?;
    let cap = crate::app::COUNT_CAP;
    Ok(Json(Count {
        count: n.min(cap),
        more: n > cap,
        cap,
    }))
}

/// A related resource, in brief.
#[derive(Serialize, ToSchema)]
pub struct RelatedOut {
    pub id: i64,
    pub provider_id: String,
    pub name: String,
    pub state: String,
}

/// One resource with its relatives (by kind) and its change history.
#[derive(Serialize, ToSchema)]
pub struct ResourceDetail {
    #[serde(flatten)]
    pub resource: ResourceOut,
    /// Related resources, by kind.
    pub related: BTreeMap<String, Vec<RelatedOut>>,
    /// Change events, newest first.
    pub history: Vec<EventOut>,
}

#[utoipa::path(
    get,
    path = "/api/v1/resources/{id}",
    tag = "inventory",
    summary = "One resource with its related resources and its change history",
    params(ResourcePath),
    responses(
        (status = 200, body = ResourceDetail),
        (status = 400, response = super::openapi::ApiError),
        (status = 404, response = super::openapi::ApiError),
        ReadErrors,
    )
)]
pub(super) async fn get_resource(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<ResourceDetail>, AppError> {
    let id = id_param(&id, "resource", ResourceId)?;
    let d = app.resource(&actor, id).await?;
    let related = d
        .related
        .iter()
        .map(|(k, rs)| {
            let list = rs
                .iter()
                .map(|r| RelatedOut {
                    id: r.id.0,
                    provider_id: r.observed.provider_id.clone(),
                    name: r.observed.name.clone(),
                    state: r.observed.state.clone(),
                })
                .collect();
            (k.as_str().to_owned(), list)
        })
        .collect();
    Ok(Json(ResourceDetail {
        resource: resource_out(&d.resource, app.permission(&actor, &d.resource)),
        related,
        history: d.history.iter().map(event_out).collect(),
    }))
}

/// Targeted refresh; answers like `GET /api/v1/resources/{id}` afterwards.
#[utoipa::path(
    post,
    path = "/api/v1/resources/{id}/refresh",
    tag = "inventory",
    summary = "Read this one resource from its provider now; answers as GET /resources/{id} (tombstoned when gone)",
    params(ResourcePath, IdempotencyKey),
    responses(
        (status = 200, body = ResourceDetail),
        (status = 400, response = super::openapi::ApiError),
        (status = 403, response = super::openapi::ApiError),
        (status = 404, response = super::openapi::ApiError),
        (status = 409, response = super::openapi::ApiError),
        (status = 502, response = super::openapi::ApiError),
        (status = 503, response = super::openapi::ApiError),
        WriteErrors,
    )
)]
pub(super) async fn refresh_resource(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(raw): Path<String>,
) -> Result<Json<ResourceDetail>, AppError> {
    let id = id_param(&raw, "resource", ResourceId)?;
    app.refresh_resource(&actor, id).await?;
    get_resource(State(app), Extension(actor), Path(raw)).await
}

#[derive(Serialize, ToSchema)]
pub struct AccountOut {
    pub name: String,
    /// `aws`.
    pub provider: String,
    pub regions: Vec<String>,
    pub endpoint_url: Option<String>,
    /// How credentials are obtained (never the credentials).
    pub auth: String,
    /// The oldest last success of its listings (null: some never succeeded).
    #[schema(format = DateTime)]
    pub last_full_success: Option<String>,
    /// Listings whose last attempt failed.
    pub failing_listings: usize,
}

#[derive(Serialize, ToSchema)]
pub struct AccountList {
    pub items: Vec<AccountOut>,
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts",
    tag = "inventory",
    summary = "The configured accounts and their sync health (never credentials)",
    responses((status = 200, body = AccountList), ReadErrors)
)]
pub(super) async fn accounts(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<AccountList>, AppError> {
    let accounts = app.accounts(&actor).await?;
    let statuses = app.sync_status(&actor).await?;
    let items = accounts
        .iter()
        .map(|a| {
            let mine: Vec<_> = statuses.iter().filter(|s| s.account == a.name).collect();
            let last_success = mine.iter().filter_map(|s| s.last_success).min();
            let errors = mine.iter().filter(|s| s.last_error.is_some()).count();
            AccountOut {
                name: a.name.clone(),
                provider: a.provider.clone(),
                regions: a.regions.clone(),
                endpoint_url: a.endpoint_url.clone(),
                auth: a.auth.clone(),
                last_full_success: last_success.map(rfc3339),
                failing_listings: errors,
            }
        })
        .collect();
    Ok(Json(AccountList { items }))
}

/// One change event: a resource appeared, changed, disappeared or reappeared.
#[derive(Serialize, ToSchema)]
pub struct EventOut {
    pub id: i64,
    #[schema(format = DateTime)]
    pub at: String,
    /// `appeared`, `changed`, `disappeared` or `reappeared`.
    pub event: String,
    pub resource_id: Option<i64>,
    pub kind: String,
    pub account: String,
    pub region: String,
    pub provider_id: String,
    pub name: String,
    /// For `changed`: what changed ([] otherwise).
    #[schema(value_type = Vec<FieldChange>)]
    pub changes: Value,
}

/// One changed field of a change event.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // the schema of the stored `changes` array (skyhold_core::diff)
pub struct FieldChange {
    /// `state`, `name`, `tags.KEY`, `attributes.KEY`, …
    field: String,
    /// The value before (any JSON value; null when absent).
    from: Value,
    /// The value after.
    to: Value,
}

pub fn event_out(e: &skyhold_store::ChangeEvent) -> EventOut {
    EventOut {
        id: e.id,
        at: rfc3339(e.at),
        event: e.event.clone(),
        resource_id: e.resource_id.map(|r| r.0),
        kind: e.kind.clone(),
        account: e.account.clone(),
        region: e.region.clone(),
        provider_id: e.provider_id.clone(),
        name: e.name.clone(),
        changes: e.changes.clone(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<EventOut>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The parameters of `GET /api/v1/changes`.
#[allow(dead_code)] // documents the parameters; the handler parses them itself
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// From when: RFC 3339, a date (`2026-01-31`), or a duration back from
    /// now (`24h`, `7d`). Default 24h.
    pub since: Option<String>,
    #[param(schema_with = kind_schema)]
    pub kind: Option<String>,
    /// One account name.
    pub account: Option<String>,
    /// Events per page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/changes",
    tag = "inventory",
    summary = "Change history (appeared, changed, disappeared, reappeared), newest first",
    params(ChangesQuery),
    responses(
        (status = 200, body = EventPage),
        (status = 400, response = super::openapi::ApiError),
        ReadErrors,
    )
)]
pub(super) async fn changes(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<EventPage>, AppError> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let (events, next) = app.changes(&actor, &pairs).await?;
    Ok(Json(EventPage {
        items: events.iter().map(event_out).collect(),
        next_cursor: next.map(|n| n.to_string()),
    }))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// One account (default: all).
    account: Option<String>,
    /// Answer when the sync is done (200 with the reports) instead of at once (202).
    #[serde(default)]
    wait: bool,
}

/// The outcome of one listing (account, region, kind) of a sync.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // the schema of crate::sync::KindReport, which is serialized
pub struct KindReport {
    account: String,
    region: String,
    #[schema(schema_with = kind_schema)]
    kind: String,
    ok: bool,
    count: u64,
    inserted: u64,
    updated: u64,
    tombstoned: u64,
    duration_ms: u64,
    /// Of `duration_ms`, the usage ledger's pass after the listing.
    ledger_ms: u64,
    error: Option<String>,
    /// throttled, denied, unreachable, other, store, lease_lost.
    error_kind: Option<String>,
    /// Another replica holds this job's lease (it runs there).
    held_by: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SyncDone {
    /// `done`.
    pub status: &'static str,
    pub listings: usize,
    pub failed: usize,
    pub held_elsewhere: usize,
    #[schema(value_type = Vec<KindReport>)]
    pub reports: Vec<crate::sync::KindReport>,
}

#[derive(Serialize, ToSchema)]
pub struct SyncStarted {
    /// `started`.
    pub status: &'static str,
}

#[utoipa::path(
    post,
    path = "/api/v1/sync",
    tag = "sync",
    summary = "Start a sync of every account or one (admins); with wait, answer when done",
    params(IdempotencyKey),
    request_body(content = Option<SyncRequest>, description = "Optional"),
    responses(
        (status = 200, description = "Done (`wait: true`)", body = SyncDone),
        (status = 202, description = "Started", body = SyncStarted),
        (status = 400, response = super::openapi::ApiError),
        (status = 404, response = super::openapi::ApiError),
        WriteErrors,
    )
)]
pub(super) async fn sync(
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
            Ok(Json(SyncDone {
                status: "done",
                listings: reports.len(),
                failed,
                held_elsewhere: held,
                reports,
            })
            .into_response())
        }
        None => Ok((
            StatusCode::ACCEPTED,
            Json(SyncStarted { status: "started" }),
        )
            .into_response()),
    }
}

/// The last sync of one (account, region, kind).
#[derive(Serialize, ToSchema)]
pub struct SyncStatusOut {
    pub account: String,
    pub region: String,
    pub kind: String,
    #[schema(format = DateTime)]
    pub last_attempt: String,
    #[schema(format = DateTime)]
    pub last_success: Option<String>,
    pub duration_ms: i64,
    /// Resources in the last successful listing.
    pub count: i64,
    pub last_error: Option<String>,
    /// throttled, denied, unreachable, other, store.
    pub error_kind: Option<String>,
    #[schema(format = DateTime)]
    pub next_due: Option<String>,
    pub next_due_ms: Option<i64>,
    pub last_attempt_ms: i64,
    /// The replica that ran the last attempt.
    pub holder: Option<String>,
    /// The replica running it now.
    pub running_on: Option<String>,
    pub throttled_in_row: i64,
}

pub fn status_out(s: &skyhold_store::SyncStatus) -> SyncStatusOut {
    SyncStatusOut {
        account: s.account.clone(),
        region: s.region.clone(),
        kind: s.kind.clone(),
        last_attempt: rfc3339(s.last_attempt),
        last_success: s.last_success.map(rfc3339),
        duration_ms: s.duration_ms,
        count: s.item_count,
        last_error: s.last_error.clone(),
        error_kind: s.error_kind.clone(),
        next_due: s.next_due.map(rfc3339),
        next_due_ms: s.next_due,
        last_attempt_ms: s.last_attempt,
        holder: s.holder.clone(),
        running_on: s.running_on.clone(),
        throttled_in_row: s.throttled_in_row,
    }
}

#[derive(Serialize, ToSchema)]
pub struct SyncStatusList {
    pub items: Vec<SyncStatusOut>,
}

#[utoipa::path(
    get,
    path = "/api/v1/sync/status",
    tag = "sync",
    summary = "The last sync of every account, region and kind",
    responses((status = 200, body = SyncStatusList), ReadErrors)
)]
pub(super) async fn sync_status(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<SyncStatusList>, AppError> {
    let items = app
        .sync_status(&actor)
        .await?
        .iter()
        .map(status_out)
        .collect();
    Ok(Json(SyncStatusList { items }))
}

/// The dashboard's totals (what the caller may see).
#[derive(Serialize, ToSchema)]
pub struct DashboardOut {
    pub resources_per_kind: BTreeMap<String, i64>,
    pub instances_by_state: BTreeMap<String, i64>,
    pub instances_by_account: BTreeMap<String, i64>,
    pub instances_by_region: BTreeMap<String, i64>,
    pub instances_by_type: BTreeMap<String, i64>,
    pub volume_gib: i64,
    pub running_vcpus: u64,
    pub running_memory_mib: u64,
    /// Running instances whose type's size is not known.
    pub running_unknown_type: i64,
    pub unattached_volumes: i64,
    pub unassociated_elastic_ips: i64,
    pub alarms_in_alarm: i64,
    pub stopped_days: u32,
    /// Instances stopped for more than `stopped_days` days, counted up to
    /// 1,000 (1,001 means more than 1,000).
    pub stopped_longer: i64,
}

#[utoipa::path(
    get,
    path = "/api/v1/dashboard",
    tag = "inventory",
    summary = "The dashboard's totals",
    responses((status = 200, body = DashboardOut), ReadErrors)
)]
pub(super) async fn dashboard(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<DashboardOut>, AppError> {
    let d = app.dashboard(&actor).await?;
    let obj = |v: &[(String, i64)]| v.iter().cloned().collect::<BTreeMap<String, i64>>();
    Ok(Json(DashboardOut {
        resources_per_kind: obj(&d.per_kind),
        instances_by_state: obj(&d.instances_by_state),
        instances_by_account: obj(&d.instances_by_account),
        instances_by_region: obj(&d.instances_by_region),
        instances_by_type: obj(&d.instances_by_type),
        volume_gib: d.volume_gib,
        running_vcpus: d.running_vcpus,
        running_memory_mib: d.running_memory_mib,
        running_unknown_type: d.running_unknown_type,
        unattached_volumes: d.unattached_volumes,
        unassociated_elastic_ips: d.unassociated_ips,
        alarms_in_alarm: d.alarms_in_alarm,
        stopped_days: d.stopped_days,
        stopped_longer: d.stopped_long,
    }))
}

/// A saved view: a named search.
#[derive(Serialize, ToSchema)]
pub struct ViewOut {
    pub id: i64,
    pub name: String,
    /// The search, in the search language.
    pub q: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

fn view_out(v: &skyhold_store::SavedView) -> ViewOut {
    ViewOut {
        id: v.id.0,
        name: v.name.clone(),
        q: v.query.clone(),
        created_at: rfc3339(v.created_at),
    }
}

#[derive(Serialize, ToSchema)]
pub struct ViewList {
    pub items: Vec<ViewOut>,
}

#[utoipa::path(
    get,
    path = "/api/v1/views",
    tag = "views",
    summary = "The caller's saved views (named searches)",
    responses((status = 200, body = ViewList), ReadErrors)
)]
pub(super) async fn list_views(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<ViewList>, AppError> {
    let views = app.views(&actor).await?;
    Ok(Json(ViewList {
        items: views.iter().map(view_out).collect(),
    }))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewRequest {
    name: String,
    /// Search-language text; it must parse.
    q: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/views",
    tag = "views",
    summary = "Save a view; the search must parse",
    params(IdempotencyKey),
    request_body = ViewRequest,
    responses(
        (status = 201, description = "Saved", body = ViewOut),
        (status = 400, response = super::openapi::ApiError),
        (status = 409, response = super::openapi::ApiError),
        WriteErrors,
    )
)]
pub(super) async fn create_view(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let r: ViewRequest = body(&bytes)?;
    let v = app.save_view(&actor, &r.name, &r.q).await?;
    Ok((StatusCode::CREATED, Json(view_out(&v))).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/views/{id}",
    tag = "views",
    summary = "Delete one of the caller's views",
    params(IdPath, IdempotencyKey),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = super::openapi::ApiError),
        (status = 404, response = super::openapi::ApiError),
        WriteErrors,
    )
)]
pub(super) async fn delete_view(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = id_param(&id, "view", skyhold_core::ViewId)?;
    app.delete_view(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct TemplateOut {
    pub id: i64,
    /// The stack's name.
    pub stack: String,
    /// The template's text (JSON or YAML), as the provider stores it.
    pub template: String,
}

#[utoipa::path(
    get,
    path = "/api/v1/resources/{id}/template",
    tag = "on demand",
    summary = "A stack's template (fetched from the provider on first use, then cached)",
    params(ResourcePath),
    responses(
        (status = 200, body = TemplateOut),
        (status = 400, response = super::openapi::ApiError),
        (status = 404, response = super::openapi::ApiError),
        (status = 502, response = super::openapi::ApiError),
        (status = 503, response = super::openapi::ApiError),
        ReadErrors,
    )
)]
pub(super) async fn stack_template(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<TemplateOut>, AppError> {
    let (r, body) = app
        .stack_template(&actor, id_param(&id, "resource", ResourceId)?)
        .await?;
    Ok(Json(TemplateOut {
        id: r.id.0,
        stack: r.observed.name,
        template: body,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct AlarmHistoryOut {
    #[schema(format = DateTime)]
    pub time: String,
    /// `StateUpdate`, `ConfigurationUpdate`, `Action`.
    #[serde(rename = "type")]
    pub item_type: String,
    pub summary: String,
}

#[derive(Serialize, ToSchema)]
pub struct AlarmHistory {
    pub items: Vec<AlarmHistoryOut>,
}

#[utoipa::path(
    get,
    path = "/api/v1/resources/{id}/alarm-history",
    tag = "on demand",
    summary = "An alarm's history, newest first (read from the provider)",
    params(ResourcePath),
    responses(
        (status = 200, body = AlarmHistory),
        (status = 400, response = super::openapi::ApiError),
        (status = 404, response = super::openapi::ApiError),
        (status = 502, response = super::openapi::ApiError),
        (status = 503, response = super::openapi::ApiError),
        ReadErrors,
    )
)]
pub(super) async fn alarm_history(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<AlarmHistory>, AppError> {
    let items = app
        .alarm_history(&actor, id_param(&id, "resource", ResourceId)?)
        .await?;
    let items = items
        .iter()
        .map(|h| AlarmHistoryOut {
            time: rfc3339(h.time),
            item_type: h.item_type.clone(),
            summary: h.summary.clone(),
        })
        .collect();
    Ok(Json(AlarmHistory { items }))
}

/// The parameters of `GET /api/v1/resources/{id}/objects`.
#[allow(dead_code)] // documents the parameters; the handler parses them itself
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ObjectsParams {
    /// List below this prefix ('' for the top; no control characters).
    #[param(max_length = 1024)]
    pub prefix: Option<String>,
    /// `next_token` of the previous page.
    #[param(max_length = 4096)]
    pub token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BucketObjectOut {
    pub key: String,
    pub size: i64,
    #[schema(format = DateTime)]
    pub modified: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ObjectsPage {
    pub prefix: String,
    /// The "folders" directly below the prefix (ending in `/`).
    pub prefixes: Vec<String>,
    pub objects: Vec<BucketObjectOut>,
    /// Pass as `token` for the next page.
    pub next_token: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/resources/{id}/objects",
    tag = "on demand",
    summary = "One page of a browsable bucket's prefixes and objects below a prefix",
    params(ResourcePath, ObjectsParams),
    responses(
        (status = 200, body = ObjectsPage),
        (status = 400, response = super::openapi::ApiError),
        (status = 403, response = super::openapi::ApiError),
        (status = 404, response = super::openapi::ApiError),
        (status = 502, response = super::openapi::ApiError),
        (status = 503, response = super::openapi::ApiError),
        ReadErrors,
    )
)]
pub(super) async fn bucket_objects(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    query: Result<Query<super::common::ObjectsQuery>, QueryRejection>,
) -> Result<Json<ObjectsPage>, AppError> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let (_, page) = app
        .bucket_objects(
            &actor,
            id_param(&id, "resource", ResourceId)?,
            &q.prefix,
            q.token.as_deref(),
        )
        .await?;
    let objects = page
        .objects
        .iter()
        .map(|o| BucketObjectOut {
            key: o.key.clone(),
            size: o.size,
            modified: o.modified.map(rfc3339),
        })
        .collect();
    Ok(Json(ObjectsPage {
        prefix: q.prefix,
        prefixes: page.prefixes,
        objects,
        next_token: page.next_token,
    }))
}

/// The parameters of `GET /api/v1/resources/{id}/objects/url`.
#[allow(dead_code)] // documents the parameters; the handler parses them itself
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyParams {
    /// The object's key.
    #[param(min_length = 1, max_length = 1024)]
    pub key: String,
}

#[derive(Serialize, ToSchema)]
pub struct ObjectUrl {
    /// A presigned GET URL.
    pub url: String,
    pub expires_in_seconds: u64,
}

#[utoipa::path(
    get,
    path = "/api/v1/resources/{id}/objects/url",
    tag = "on demand",
    summary = "A presigned download URL for one object of a browsable bucket (valid 5 minutes)",
    params(ResourcePath, KeyParams),
    responses(
        (status = 200, body = ObjectUrl),
        (status = 400, response = super::openapi::ApiError),
        (status = 403, response = super::openapi::ApiError),
        (status = 404, response = super::openapi::ApiError),
        (status = 502, response = super::openapi::ApiError),
        (status = 503, response = super::openapi::ApiError),
        ReadErrors,
    )
)]
pub(super) async fn object_url(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    query: Result<Query<super::common::KeyQuery>, QueryRejection>,
) -> Result<Json<ObjectUrl>, AppError> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let url = app
        .object_url(&actor, id_param(&id, "resource", ResourceId)?, &q.key)
        .await?;
    Ok(Json(ObjectUrl {
        url,
        expires_in_seconds: crate::app::OBJECT_URL_TTL.as_secs(),
    }))
}
