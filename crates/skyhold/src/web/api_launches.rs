//! The JSON API of launches: launch servers from a blueprint (or preview
//! what a launch would do and take), read a launch, list launches.

use super::api::{body, id_param};
use super::api_access::pairs;
use super::api_launch::{usage_out, QuotaUsageOut};
use super::openapi::{ApiError, IdPath, IdempotencyKey, ReadErrors, WriteErrors};
use super::AppState;
use crate::app::{Actor, LaunchPreview};
use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use skyhold_core::launch::LaunchInput;
use skyhold_core::quota::Dimension;
use skyhold_core::{rfc3339, LaunchId};
use skyhold_store::LaunchRow;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/launches", get(list_launches).post(create_launch))
        .route("/api/v1/launches/{id}", get(get_launch))
        .route("/api/v1/resources/{id}/ssh", get(ssh_target))
}

/// Routes authenticated by something other than a user: the key hook
/// (the instance's own secret, checked by `App::authorized_keys`).
pub fn instance_routes() -> Router<AppState> {
    Router::new().route("/keys/{id}/authorized_keys", get(authorized_keys))
}

/// `GET /keys/{provider_instance_id}/authorized_keys` with
/// `Authorization: Bearer INSTANCE_SECRET`: the keys of everyone who may
/// operate the instance, as plain text in authorized_keys format.
async fn authorized_keys(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let secret = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .trim()
        .to_owned();
    let text = |status: StatusCode, body: String| {
        (
            status,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            body,
        )
            .into_response()
    };
    match app.authorized_keys(id.trim(), &secret).await {
        Ok(keys) => text(StatusCode::OK, keys),
        Err(AppError::Unauthenticated) => {
            let mut r = text(
                StatusCode::UNAUTHORIZED,
                "the instance's secret is missing or wrong\n".into(),
            );
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            r
        }
        Err(AppError::NotFound(m)) => text(StatusCode::NOT_FOUND, format!("{m} not found\n")),
        Err(e) => {
            tracing::warn!(error = %e, "the key hook failed");
            text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n".into())
        }
    }
}

/// A launch request: the launch form's fields.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchBody {
    /// The blueprint's name or id.
    pub blueprint: String,
    /// The server's name; with `count` > 1 the servers are `NAME-1`…`NAME-N`.
    pub name: String,
    /// An instance type the blueprint allows (default: the blueprint's).
    #[serde(rename = "type")]
    pub instance_type: Option<String>,
    /// 1 to 20 (default 1).
    pub count: Option<u32>,
    /// Packages the blueprint offers, installed by cloud-init.
    #[serde(default)]
    pub packages: Vec<String>,
    /// `8h`, `3d`, or `never` (default: the blueprint's TTL), at most the
    /// blueprint's maximum.
    pub ttl: Option<String>,
    /// Launch on someone's behalf: a user name or `group:NAME` (needs manage
    /// on them).
    pub owner: Option<String>,
    /// One of the blueprint's accounts (default: its first).
    pub account: Option<String>,
    /// One of the blueprint's regions (default: its first).
    pub region: Option<String>,
    /// The root volume's size, up to the blueprint's maximum.
    pub root_volume_gib: Option<u32>,
    /// Which of the owner's SSH keys the servers get (name, fingerprint or
    /// id; default their newest), imported as `skyhold-USER-FINGERPRINT8`.
    pub key: Option<String>,
    /// Launch nothing: answer with what the launch would do and take.
    #[serde(default)]
    pub dry_run: bool,
    /// Answer once the servers run and have their addresses (at most five
    /// minutes).
    #[serde(default)]
    pub wait: bool,
}

impl LaunchBody {
    fn input(&self) -> LaunchInput {
        LaunchInput {
            name: self.name.clone(),
            instance_type: self.instance_type.clone(),
            count: self.count,
            packages: self.packages.clone(),
            ttl: self.ttl.clone(),
            owner: self.owner.clone(),
            account: self.account.clone(),
            region: self.region.clone(),
            root_volume_gib: self.root_volume_gib,
            key: self.key.clone(),
        }
    }
}

/// One server of a launch, as it was when the launch settled.
#[derive(Serialize, ToSchema)]
pub struct LaunchedServer {
    /// 1-based.
    pub index: u32,
    pub name: String,
    pub provider_id: String,
    pub state: String,
    pub private_ip: String,
    pub public_ip: String,
    /// From the blueprint's DNS pattern.
    pub fqdn: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LaunchError {
    pub code: String,
    pub message: String,
}

/// A launch and what it made.
#[derive(Serialize, ToSchema)]
pub struct LaunchOut {
    pub id: i64,
    /// `running` (calls in progress), `succeeded`, `partial` (some servers
    /// started; `error` says why the rest did not) or `failed`.
    pub state: String,
    pub blueprint: String,
    pub blueprint_version: i64,
    pub account: String,
    pub region: String,
    pub name: String,
    #[serde(rename = "type")]
    pub instance_type: String,
    pub count: i64,
    /// The owner: a user name or `group:NAME`.
    pub owner: String,
    /// Who asked for it (the creator).
    pub requested_by: String,
    pub instances: Vec<LaunchedServer>,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    pub error: Option<LaunchError>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
}

pub fn launch_out(l: &LaunchRow) -> LaunchOut {
    let fqdn = |index: u64| {
        l.params["servers"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["index"].as_u64() == Some(index)))
            .and_then(|s| s["fqdn"].as_str().map(str::to_owned))
    };
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    LaunchOut {
        id: l.id.0,
        state: l.state.clone(),
        blueprint: l.blueprint_name.clone(),
        blueprint_version: l.blueprint_version,
        account: l.account.clone(),
        region: l.region.clone(),
        name: l.name.clone(),
        instance_type: l.instance_type.clone(),
        count: l.count,
        owner: l.owner.clone(),
        requested_by: l.requested_by_name.clone(),
        instances: l
            .instances
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                let index = i["index"].as_u64().unwrap_or(0);
                LaunchedServer {
                    index: index as u32,
                    name: text(i, "name"),
                    provider_id: text(i, "provider_id"),
                    state: text(i, "state"),
                    private_ip: text(i, "private_ip"),
                    public_ip: text(i, "public_ip"),
                    fqdn: fqdn(index),
                }
            })
            .collect(),
        expires_at: l.params["expires_at"].as_str().map(str::to_owned),
        error: (!l.error_code.is_empty()).then(|| LaunchError {
            code: l.error_code.clone(),
            message: l.error.clone(),
        }),
        created_at: rfc3339(l.created_at),
        finished_at: l.finished_at.map(rfc3339),
    }
}

/// The equivalent command lines.
#[derive(Serialize, ToSchema)]
pub struct CommandsOut {
    /// `skyhold launch …`
    pub skyhold: String,
    /// One `aws ec2 run-instances …` per server.
    pub aws: Vec<String>,
}

/// What a launch would do and take (`dry_run`), launching nothing.
#[derive(Serialize, ToSchema)]
pub struct LaunchPreviewOut {
    pub blueprint: String,
    pub blueprint_version: i64,
    pub account: String,
    pub region: String,
    /// The image as the provider shows it now.
    #[schema(value_type = Object)]
    pub image: Value,
    #[serde(rename = "type")]
    pub instance_type: String,
    #[schema(value_type = Vec<Object>)]
    pub servers: Vec<Value>,
    pub packages: Vec<String>,
    pub owner: String,
    pub creator: String,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    pub root_volume_gib: Option<u32>,
    /// The key pair the servers get (imported at launch if missing).
    pub key_name: Option<String>,
    /// What the launch takes: `instances`, `vcpus`, `memory_gib` (rounded
    /// up), `volume_gib`.
    pub request: BTreeMap<String, u64>,
    /// Every quota that applies, with its usage now.
    pub quotas: Vec<QuotaUsageOut>,
    /// The room left after this launch in each limited dimension.
    pub remaining_after: BTreeMap<String, u64>,
    /// The quota the launch would exceed, if any (the launch would be
    /// refused with `quota_exceeded`).
    #[schema(value_type = Option<Object>)]
    pub exceeded: Option<skyhold_core::quota::Exceeded>,
    /// What the servers would cost from now to the end of the month at
    /// list price (null: unpriced).
    pub month_cost_usd: Option<f64>,
    /// Every money budget that applies, with this month's spend and
    /// projection.
    #[schema(value_type = Vec<Object>)]
    pub budgets: Vec<crate::app::BudgetStatus>,
    /// The budget that would refuse the launch (`budget_exceeded`).
    #[schema(value_type = Option<Object>)]
    pub budget_exceeded: Option<crate::error::BudgetExceeded>,
    pub commands: CommandsOut,
}

pub fn preview_out(p: &LaunchPreview) -> LaunchPreviewOut {
    let mut request = BTreeMap::new();
    let mut remaining = BTreeMap::new();
    for d in Dimension::ALL {
        request.insert(d.as_str().to_owned(), p.request.get(d));
        if let Some(r) = p.remaining_after.get(d) {
            remaining.insert(d.as_str().to_owned(), r);
        }
    }
    LaunchPreviewOut {
        blueprint: p.blueprint.clone(),
        blueprint_version: p.blueprint_version,
        account: p.account.clone(),
        region: p.region.clone(),
        image: serde_json::to_value(&p.image).unwrap_or_default(),
        instance_type: p.instance_type.clone(),
        servers: p
            .servers
            .iter()
            .map(|s| serde_json::to_value(s).unwrap_or_default())
            .collect(),
        packages: p.packages.clone(),
        owner: p.owner.clone(),
        creator: p.creator.clone(),
        expires_at: p.expires_at.clone(),
        root_volume_gib: p.root_volume_gib,
        key_name: p.key_name.clone(),
        request,
        quotas: p.quotas.iter().map(usage_out).collect(),
        remaining_after: remaining,
        exceeded: p.exceeded.clone(),
        month_cost_usd: p.month_cost_usd.map(|c| (c * 100.0).round() / 100.0),
        budgets: p.budgets.clone(),
        budget_exceeded: p.budget_exceeded.clone(),
        commands: CommandsOut {
            skyhold: p.commands.skyhold.clone(),
            aws: p.commands.aws.clone(),
        },
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/launches",
    tag = "launches",
    summary = "Launch servers from a blueprint (operate on it; for someone else also manage on them), or preview with dry_run",
    params(IdempotencyKey),
    request_body = LaunchBody,
    responses(
        (status = 201, description = "The settled launch (`partial` says what is missing)", body = LaunchOut),
        (status = 200, description = "With dry_run: what it would do and take", body = LaunchPreviewOut),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        (status = 409, response = ApiError),
        (status = 502, response = ApiError),
        (status = 503, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn create_launch(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let b: LaunchBody = body(&bytes)?;
    if b.blueprint.trim().is_empty() {
        return Err(AppError::bad_parameter("blueprint", "name a blueprint"));
    }
    let input = b.input();
    if b.dry_run {
        let p = app.preview_launch(&actor, &b.blueprint, &input).await?;
        return Ok(Json(preview_out(&p)).into_response());
    }
    let l = app.launch(&actor, &b.blueprint, &input).await?;
    let l = if b.wait {
        app.wait_for_launch(&actor, &l).await?
    } else {
        l
    };
    Ok((StatusCode::CREATED, Json(launch_out(&l))).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/launches/{id}",
    tag = "launches",
    summary = "One launch: its state, servers and errors (who asked, the owner, admins and auditors)",
    params(IdPath),
    responses(
        (status = 200, body = LaunchOut),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn get_launch(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<LaunchOut>, AppError> {
    let id = id_param(&id, "launch", LaunchId)?;
    Ok(Json(launch_out(&app.launch_row(&actor, id).await?)))
}

/// The filters of `GET /api/v1/launches`.
#[allow(dead_code)] // documents the parameters; the handler parses them itself
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LaunchesQuery {
    /// Launches owned by this user name or `group:NAME`.
    pub owner: Option<String>,
    /// Launches asked for by this user (name or id).
    pub actor: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Launches per page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct LaunchPage {
    pub items: Vec<LaunchOut>,
    pub next_cursor: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/launches",
    tag = "launches",
    summary = "Launches you may see, newest first",
    params(LaunchesQuery),
    responses(
        (status = 200, body = LaunchPage),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn list_launches(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<LaunchPage>, AppError> {
    let (mut owner, mut by, mut cursor, mut limit) = (None, None, None, 100);
    for (k, v) in pairs(raw.as_deref()) {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        match k.as_str() {
            "owner" => owner = Some(v.to_owned()),
            "actor" => by = Some(app.find_user(v).await?.id),
            "cursor" => cursor = Some(id_param(v, "launch", LaunchId)?),
            "limit" => limit = crate::error::page_limit(v)?,
            other => {
                return Err(AppError::bad_parameter(
                    &skyhold_core::clip(other, 40),
                    "unknown parameter",
                ))
            }
        }
    }
    let (rows, next) = app
        .launches(&actor, owner.as_deref(), by, cursor, limit)
        .await?;
    Ok(Json(LaunchPage {
        items: rows.iter().map(launch_out).collect(),
        next_cursor: next.map(|n| n.0),
    }))
}

/// How to reach an instance with ssh.
#[derive(Serialize, ToSchema)]
pub struct SshOut {
    pub provider_id: String,
    pub name: String,
    pub state: String,
    pub public_ip: String,
    pub private_ip: String,
    /// Its DNS name, where its blueprint gave it one.
    pub fqdn: Option<String>,
    /// The login user of the blueprint it was launched from.
    pub login_user: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/resources/{id}/ssh",
    tag = "launches",
    summary = "How to reach an instance with ssh: addresses, DNS name, state and login user (view)",
    params(super::openapi::ResourcePath),
    responses(
        (status = 200, body = SshOut),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn ssh_target(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<SshOut>, AppError> {
    let id = id_param(&id, "resource", skyhold_core::ResourceId)?;
    let t = app.ssh_target(&actor, id).await?;
    Ok(Json(SshOut {
        provider_id: t.provider_id,
        name: t.name,
        state: t.state,
        public_ip: t.public_ip,
        private_ip: t.private_ip,
        fqdn: t.fqdn,
        login_user: t.login_user,
    }))
}
