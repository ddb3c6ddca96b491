//! The expiry API: `POST /api/v1/resources/{id}/expiry` sets, extends or
//! clears a resource's `skyhold:expires-at`, and `/keep` writes, removes
//! or reports the `skyhold:keep` opt-out, through the action pipeline.

use super::api::{body, id_param};
use super::api_access::{acted_on, ActedOn};
use super::openapi::{ApiError, IdempotencyKey, ReadErrors, ResourcePath, WriteErrors};
use super::AppState;
use crate::app::{parse_expiry_request, Actor, KeepStatus};
use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use skyhold_core::ResourceId;
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/resources/{id}/expiry", post(set_expiry))
        .route(
            "/api/v1/resources/{id}/keep",
            get(get_keep).post(set_keep).delete(remove_keep),
        )
}

/// Exactly one of the four.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpiryBody {
    /// Expire this long from now: `3d`, `8h` (units s, m, h, d, w).
    #[serde(rename = "in")]
    r#in: Option<String>,
    /// Expire at this time (RFC 3339).
    at: Option<String>,
    /// Push the expiry this much later (from now once it has passed).
    extend: Option<String>,
    /// Never expire (admins, or a manage grant on the resource or its
    /// account).
    #[serde(default)]
    never: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/resources/{id}/expiry",
    tag = "actions",
    summary = "Set, extend or clear a resource's expiry (writes `skyhold:expires-at`; manage)",
    description = "The new expiry is at most the maximum TTL from now: the resource's blueprint's \
        `max_ttl`, else its account's `[accounts.policies.expiry] max_ttl`, else the global \
        `[policies.expiry] max_ttl`; beyond it, 400 `ttl_exceeds_max` with `cap`. Instances, \
        volumes, snapshots, images, elastic IPs, load balancers, DB instances and cache clusters \
        can expire.",
    params(ResourcePath, IdempotencyKey),
    request_body = ExpiryBody,
    responses(
        (status = 200, description = "The action and the resource afterwards", body = ActedOn),
        (status = 400, response = ApiError),
        (status = 403, response = ApiError),
        (status = 404, response = ApiError),
        (status = 409, response = ApiError),
        (status = 502, response = ApiError),
        (status = 503, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn set_expiry(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<ActedOn>, AppError> {
    let id = id_param(&id, "resource", ResourceId)?;
    let b: ExpiryBody = body(&bytes)?;
    let req = parse_expiry_request(
        b.r#in.as_deref(),
        b.at.as_deref(),
        b.extend.as_deref(),
        b.never,
    )?;
    let a = app.set_expiry(&actor, id, req).await?;
    Ok(Json(acted_on(&app, &actor, &a, id).await?))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepBody {
    /// Why it must not expire (1-256 characters), written as the tag's
    /// value.
    reason: String,
}

/// A resource's keep opt-out and whether it is honoured.
#[derive(Serialize, ToSchema)]
pub struct KeepOut {
    /// `none`, `trusted` (skyhold wrote it, or the account trusts the
    /// tag) or `untrusted` (set outside skyhold: reported, not honoured).
    pub state: &'static str,
    pub reason: Option<String>,
    /// Who set it through skyhold.
    pub by: Option<String>,
    #[schema(format = DateTime)]
    pub at: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/resources/{id}/keep",
    tag = "actions",
    summary = "A resource's keep opt-out and whether it is honoured",
    params(ResourcePath),
    responses(
        (status = 200, body = KeepOut),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn get_keep(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<KeepOut>, AppError> {
    let id = id_param(&id, "resource", ResourceId)?;
    Ok(Json(match app.resource_keep(&actor, id).await? {
        KeepStatus::None => KeepOut {
            state: "none",
            reason: None,
            by: None,
            at: None,
        },
        KeepStatus::Trusted { reason, by, at } => KeepOut {
            state: "trusted",
            reason: Some(reason),
            by: (!by.is_empty()).then_some(by),
            at: at.map(skyhold_core::rfc3339),
        },
        KeepStatus::Untrusted { reason } => KeepOut {
            state: "untrusted",
            reason: Some(reason),
            by: None,
            at: None,
        },
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/resources/{id}/keep",
    tag = "actions",
    summary = "Keep a resource: write the `skyhold:keep` opt-out (admins, or a manage grant)",
    params(ResourcePath, IdempotencyKey),
    request_body = KeepBody,
    responses(
        (status = 200, description = "The action and the resource afterwards", body = ActedOn),
        (status = 400, response = ApiError),
        (status = 403, response = ApiError),
        (status = 404, response = ApiError),
        (status = 502, response = ApiError),
        (status = 503, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn set_keep(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<ActedOn>, AppError> {
    let id = id_param(&id, "resource", ResourceId)?;
    let b: KeepBody = body(&bytes)?;
    let a = app
        .set_keep(&actor, id, Some(b.reason.trim().to_owned()))
        .await?;
    Ok(Json(acted_on(&app, &actor, &a, id).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/resources/{id}/keep",
    tag = "actions",
    summary = "Stop keeping a resource: remove the `skyhold:keep` tag",
    params(ResourcePath, IdempotencyKey),
    responses(
        (status = 200, description = "The action and the resource afterwards", body = ActedOn),
        (status = 400, response = ApiError),
        (status = 403, response = ApiError),
        (status = 404, response = ApiError),
        (status = 502, response = ApiError),
        (status = 503, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn remove_keep(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<ActedOn>, AppError> {
    let id = id_param(&id, "resource", ResourceId)?;
    let a = app.set_keep(&actor, id, None).await?;
    Ok(Json(acted_on(&app, &actor, &a, id).await?))
}
