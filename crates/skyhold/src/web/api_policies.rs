//! The policies API: the expiry policy's preview (with an unsaved change),
//! its passes (including those held by the mass-action cap), running a
//! pass now, confirming a held one; and the notification outbox.

use super::api::id_param;
use super::api_access::pairs;
use super::openapi::{ApiError, IdempotencyKey, ReadErrors, WriteErrors};
use super::AppState;
use crate::app::Actor;
use crate::error::AppError;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Serialize;
use skyhold_core::idle::IdleRules;
use skyhold_core::policy::{ExpiryRules, RawRules};
use skyhold_core::ResourceId;
use skyhold_store::{Notification, PolicyRun};
use utoipa::{IntoParams, ToSchema};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/policies/preview", get(preview))
        .route("/api/v1/policies/runs", get(list_runs).post(run_now))
        .route("/api/v1/policies/runs/{id}", get(get_run))
        .route("/api/v1/policies/runs/{id}/confirm", post(confirm_run))
        .route("/api/v1/notifications", get(list_notifications))
}

/// A change to the global expiry rules to preview (each optional; unset
/// ones stay as configured).
#[allow(dead_code)] // documents the parameters; the handler parses them itself
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// `expiry` (the default) or `idle` (what the idle policy would warn
    /// and stop, reading the metrics as a pass does; its change is given
    /// by `cpu_below`, `network_below_bytes`, `for`, `warn_before`, `mode`
    /// and `max_actions_per_pass`).
    pub policy: Option<String>,
    /// Warning points, comma-separated: `24h,1h`.
    pub warn: Option<String>,
    /// `stop`, `terminate` or `none`.
    pub action: Option<String>,
    /// A duration, or `never`.
    pub terminate_after: Option<String>,
    pub snapshot_before_terminate: Option<bool>,
    /// `enforce` or `dry-run`.
    pub mode: Option<String>,
    pub max_actions_per_pass: Option<u32>,
}

fn max_actions(v: &str) -> Result<u32, AppError> {
    v.parse()
        .map_err(|_| AppError::bad_parameter("max_actions_per_pass", "a whole number, at least 1"))
}

/// The change to the global idle rules a preview query describes
/// (`cpu_below`, `network_below_bytes`, `for`, `warn_before`, `mode`,
/// `max_actions_per_pass`; `None`: none).
pub(super) fn idle_change(raw: Option<&str>) -> Result<Option<IdleRules>, AppError> {
    let mut r = IdleRules::default();
    let mut any = false;
    let number = |k: &str, v: &str| {
        v.parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| AppError::bad_parameter(k, "a number"))
    };
    let duration = |k: &str, v: &str| {
        skyhold_core::search::parse_duration(v).map_err(|m| AppError::bad_parameter(k, m))
    };
    for (k, v) in pairs(raw) {
        let v = v.trim().to_owned();
        if v.is_empty() || k == "policy" {
            continue;
        }
        any = true;
        match k.as_str() {
            "cpu_below" => r.cpu_below = Some(number(&k, &v)?),
            "network_below_bytes" => r.network_below_bytes = Some(number(&k, &v)?),
            "for" => r.for_ms = Some(duration(&k, &v)?),
            "warn_before" => r.warn_before_ms = Some(duration(&k, &v)?),
            "mode" => {
                r.mode = Some(
                    skyhold_core::policy::Mode::parse(&v)
                        .ok_or_else(|| AppError::bad_parameter("mode", "enforce or dry-run"))?,
                )
            }
            "max_actions_per_pass" => r.max_actions_per_pass = Some(max_actions(&v)?),
            other => {
                return Err(AppError::bad_parameter(
                    &skyhold_core::clip(other, 40),
                    "unknown parameter of the idle preview (use policy, cpu_below, \
                     network_below_bytes, for, warn_before, mode, max_actions_per_pass)",
                ))
            }
        }
    }
    if !any {
        return Ok(None);
    }
    r.validate()
        .map_err(|(field, m)| AppError::bad_parameter(field, m))?;
    Ok(Some(r))
}

/// The change a preview query describes (`None`: none).
pub(super) fn preview_change(raw: Option<&str>) -> Result<Option<ExpiryRules>, AppError> {
    let mut r = RawRules::default();
    let mut any = false;
    for (k, v) in pairs(raw) {
        let v = v.trim().to_owned();
        if v.is_empty() {
            continue;
        }
        match k.as_str() {
            "policy" => continue,
            _ => any = true,
        }
        match k.as_str() {
            "warn" => {
                r.warn = Some(
                    v.split(',')
                        .map(|w| w.trim().to_owned())
                        .filter(|w| !w.is_empty())
                        .collect(),
                )
            }
            "action" => r.action = Some(v),
            "terminate_after" => r.terminate_after = Some(v),
            "snapshot_before_terminate" => {
                r.snapshot_before_terminate = Some(match v.as_str() {
                    "true" | "on" | "1" => true,
                    "false" | "off" | "0" => false,
                    _ => {
                        return Err(AppError::bad_parameter(
                            "snapshot_before_terminate",
                            "true or false",
                        ))
                    }
                })
            }
            "mode" => r.mode = Some(v),
            "max_actions_per_pass" => r.max_actions_per_pass = Some(max_actions(&v)?),
            other => {
                return Err(AppError::bad_parameter(
                    &skyhold_core::clip(other, 40),
                    "unknown parameter (use policy, warn, action, terminate_after, \
                     snapshot_before_terminate, mode, max_actions_per_pass)",
                ))
            }
        }
    }
    if !any {
        return Ok(None);
    }
    r.parse()
        .map(Some)
        .map_err(|(field, m)| AppError::bad_parameter(field, m))
}

#[utoipa::path(
    get,
    path = "/api/v1/policies/preview",
    tag = "policies",
    summary = "What the expiry (or idle) policy would warn, stop and delete now and in the next 24 h (admins, auditors)",
    description = "With query parameters, the preview of a change to the global `[policies.expiry]` \
        rules before it is saved. `now_items` are the steps due now (`outcome`: `due`, or \
        `would (dry-run)`), `next_24h` those falling due within 24 hours, `by_owner_account` \
        their counts, `exempt` what is left alone and why (kept, unreadable tag). With \
        `policy=idle`, the idle policy's: warnings and stops due now (reading the metrics as \
        a pass does), the stops that follow within 24 h if the instances stay idle, and the \
        instances with no datapoints among `exempt`.",
    params(PreviewQuery),
    responses(
        (status = 200, body = Object),
        (status = 400, response = ApiError),
        (status = 403, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn preview(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<crate::app::Preview>, AppError> {
    match pairs(raw.as_deref())
        .into_iter()
        .find(|(k, _)| k == "policy")
        .map(|(_, v)| v)
        .as_deref()
    {
        None | Some("expiry") => Ok(Json(
            app.policy_preview(&actor, preview_change(raw.as_deref())?)
                .await?,
        )),
        Some("idle") => Ok(Json(
            app.idle_preview(&actor, idle_change(raw.as_deref())?)
                .await?,
        )),
        Some(_) => Err(AppError::bad_parameter("policy", "expiry or idle")),
    }
}

#[allow(dead_code)] // documents the parameters; the handler parses them itself
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct RunPage {
    /// Passes, newest first: `state` `running`, `done`, `held` (waiting for
    /// a confirmation), `confirmed` or `failed`; `counts`; `plan` (the
    /// stops and deletions, each with its `outcome`); `note`.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<PolicyRun>,
    pub next_cursor: Option<i64>,
}

/// A page's cursor and limit, and the other parameters `extra` allows.
type PageParams = (Option<i64>, i64, Vec<(String, String)>);

fn page(raw: Option<&str>, extra: &[&str]) -> Result<PageParams, AppError> {
    let (mut cursor, mut limit, mut rest) = (None, 50, Vec::new());
    for (k, v) in pairs(raw) {
        let t = v.trim();
        if t.is_empty() {
            continue;
        }
        match k.as_str() {
            "cursor" => cursor = Some(id_param(t, "cursor", |n| n)?),
            "limit" => limit = crate::error::page_limit::<i64>(t)?.min(500),
            k if extra.contains(&k) => rest.push((k.to_owned(), t.to_owned())),
            other => {
                return Err(AppError::bad_parameter(
                    &skyhold_core::clip(other, 40),
                    "unknown parameter",
                ))
            }
        }
    }
    Ok((cursor, limit, rest))
}

#[utoipa::path(
    get,
    path = "/api/v1/policies/runs",
    tag = "policies",
    summary = "Policy passes, newest first, including those held by the mass-action cap",
    params(PageQuery),
    responses(
        (status = 200, body = RunPage),
        (status = 400, response = ApiError),
        (status = 403, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn list_runs(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<RunPage>, AppError> {
    let (cursor, limit, _) = page(raw.as_deref(), &[])?;
    let (items, next_cursor) = app.policy_runs(&actor, cursor, limit).await?;
    Ok(Json(RunPage { items, next_cursor }))
}

#[utoipa::path(
    get,
    path = "/api/v1/policies/runs/{id}",
    tag = "policies",
    summary = "One policy pass",
    params(("id" = i64, Path, description = "The pass's id")),
    responses(
        (status = 200, body = Object),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn get_run(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<PolicyRun>, AppError> {
    let id = id_param(&id, "policy run", |n| n)?;
    Ok(Json(app.policy_run(&actor, id).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/policies/runs",
    tag = "policies",
    summary = "Run a pass of a policy now (admins): `?policy=expiry` (the default) or `idle`",
    params(IdempotencyKey, ("policy" = Option<String>, Query, description = "`expiry` (default) or `idle`")),
    responses(
        (status = 201, description = "The pass, finished", body = Object),
        (status = 400, response = ApiError),
        (status = 403, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn run_now(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<(StatusCode, Json<PolicyRun>), AppError> {
    let mut policy = "expiry".to_owned();
    for (k, v) in pairs(raw.as_deref()) {
        match k.as_str() {
            "policy" => policy = v,
            other => return Err(AppError::bad_parameter(other, "unknown parameter")),
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(app.run_policies_now(&actor, &policy).await?),
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/policies/runs/{id}/confirm",
    tag = "policies",
    summary = "Confirm a pass held by the mass-action cap and carry out its plan (admins)",
    description = "Each stop or deletion of the held plan is re-checked first (it may have been \
        extended, stopped or kept since); returns the pass that carried it out. 409 \
        `invalid_state` when the pass is not held.",
    params(("id" = i64, Path, description = "The held pass's id"), IdempotencyKey),
    responses(
        (status = 200, description = "The pass that carried out the plan", body = Object),
        (status = 400, response = ApiError),
        (status = 403, response = ApiError),
        (status = 404, response = ApiError),
        (status = 409, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn confirm_run(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<PolicyRun>, AppError> {
    let id = id_param(&id, "policy run", |n| n)?;
    Ok(Json(app.confirm_policy_run(&actor, id).await?))
}

#[allow(dead_code)] // documents the parameters; the handler parses them itself
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationsQuery {
    /// Only those about this resource (id).
    pub resource: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationPage {
    /// Newest first, each with its `deliveries` (one per channel: `state`
    /// `pending`, `sending`, `sent` or `dead`, `attempts`, `last_error`).
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Notification>,
    pub next_cursor: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    tag = "policies",
    summary = "The notification outbox with each delivery's state (admins, auditors)",
    params(NotificationsQuery),
    responses(
        (status = 200, body = NotificationPage),
        (status = 400, response = ApiError),
        (status = 403, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn list_notifications(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<NotificationPage>, AppError> {
    let (cursor, limit, rest) = page(raw.as_deref(), &["resource"])?;
    let resource = match rest.first() {
        Some((_, v)) => Some(id_param(v, "resource", ResourceId)?),
        None => None,
    };
    let (items, next_cursor) = app.notifications(&actor, resource, cursor, limit).await?;
    Ok(Json(NotificationPage { items, next_cursor }))
}
