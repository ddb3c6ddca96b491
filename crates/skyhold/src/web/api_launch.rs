//! The JSON API of self-service launch, first part: blueprints (admins
//! define them, grants decide who sees them) and quotas (admins set
//! defaults and overrides; everyone reads their own). Handlers parse, call
//! one `App` function and render; each carries its OpenAPI description.

use super::api::body;
use super::openapi::{ApiError, IdempotencyKey, NamePath, ReadErrors, WriteErrors};
use super::AppState;
use crate::app::{parse_ttl, Actor, Object};
use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use skyhold_core::blueprint::{BlueprintSpec, KeyMode};
use skyhold_core::policy::ExpiryRules;
use skyhold_core::quota::{Applicable, Limits};
use skyhold_core::rfc3339;
use skyhold_store::{BlueprintRow, QuotaRow};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/blueprints",
            get(list_blueprints).post(create_blueprint),
        )
        .route(
            "/api/v1/blueprints/{id}",
            get(get_blueprint)
                .patch(update_blueprint)
                .delete(delete_blueprint),
        )
        .route("/api/v1/quotas", get(list_quotas).post(set_quota))
        .route("/api/v1/quotas/{subject}", delete(delete_quota))
        .route("/api/v1/me/quota", get(my_quota))
}

/// The query's pairs, refusing any key but `allowed`.
fn query(raw: Option<&str>, allowed: &[&str]) -> Result<Vec<(String, String)>, AppError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    for (k, _) in &pairs {
        if !allowed.contains(&k.as_str()) {
            return Err(AppError::bad_parameter(
                &skyhold_core::clip(k, 40),
                format!("unknown parameter (use {})", allowed.join(", ")),
            ));
        }
    }
    Ok(pairs)
}

pub(super) fn ttl_text(ms: Option<i64>) -> Option<String> {
    ms.map(skyhold_core::search::format_duration)
}

/// One account or region, or a list of allowed ones (the first is the
/// default).
#[derive(Deserialize, Serialize, ToSchema, Clone, Debug)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A blueprint as written by `POST` (every field) and `PATCH` (the fields
/// to change, plus `version`: the version the change was made from).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlueprintBody {
    name: Option<String>,
    description: Option<String>,
    /// An account name, or a list of allowed ones.
    account: Option<OneOrMany>,
    /// A region, or a list of allowed ones.
    region: Option<OneOrMany>,
    /// `ami-…`, or `newest:PATTERN` (the newest own image whose name matches).
    image: Option<String>,
    /// Allowed types: names, or patterns with `*` (`t3.*`).
    instance_types: Option<Vec<String>>,
    default_type: Option<String>,
    subnet_ids: Option<Vec<String>>,
    security_group_ids: Option<Vec<String>>,
    root_volume_gib: Option<u32>,
    max_root_volume_gib: Option<u32>,
    /// `owner_key` (default) or `none`.
    #[schema(value_type = Option<String>)]
    key_mode: Option<KeyMode>,
    login_user: Option<String>,
    /// cloud-init or a script; `{{name}}`, `{{owner}}`, `{{fqdn}}`.
    user_data: Option<String>,
    /// Packages a user may tick at launch.
    packages: Option<Vec<String>>,
    /// `8h`, `2d`; '' for none.
    default_ttl: Option<String>,
    max_ttl: Option<String>,
    /// The expiry ladder's rules over the account's and the global ones:
    /// `{warn: ["24h","1h"], action: "stop"|"terminate"|"none",
    /// terminate_after: "7d"|"never", snapshot_before_terminate, mode:
    /// "enforce"|"dry-run", max_actions_per_pass}`, each optional.
    #[schema(value_type = Option<Object>)]
    expiry_policy: Option<skyhold_core::policy::RawRules>,
    /// The idle policy's rules over the account's and the global ones:
    /// `{cpu_below, network_below_bytes, for_ms, warn_before_ms, mode,
    /// max_actions_per_pass}`, each optional.
    #[schema(value_type = Option<Object>)]
    idle_policy: Option<skyhold_core::idle::IdleRules>,
    /// A Route 53 hosted zone (id or name).
    dns_zone: Option<String>,
    /// `{{name}}.dev.example.com`.
    dns_name_pattern: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    /// PATCH only: the version the edit was made from (a newer one is a 409).
    version: Option<i64>,
}

fn required<T>(v: Option<T>, field: &str) -> Result<T, AppError> {
    v.ok_or_else(|| AppError::InvalidBlueprint {
        field: field.to_owned(),
        message: "required".into(),
    })
}

impl BlueprintBody {
    /// `base` with this body's fields applied (`None` base: every required
    /// field must be present).
    pub(super) fn apply(self, base: Option<BlueprintSpec>) -> Result<BlueprintSpec, AppError> {
        let ttl =
            |field: &str, v: Option<String>, old: Option<i64>| -> Result<Option<i64>, AppError> {
                match v {
                    Some(s) => Ok(parse_ttl(field, &s)?),
                    None => Ok(old),
                }
            };
        let policy = |old: Option<ExpiryRules>| -> Result<ExpiryRules, AppError> {
            match self.expiry_policy.clone() {
                Some(raw) => raw
                    .parse()
                    .map_err(|(field, m)| AppError::InvalidBlueprint {
                        field: format!("expiry_policy.{field}"),
                        message: m,
                    }),
                None => Ok(old.unwrap_or_default()),
            }
        };
        let spec = match base {
            Some(b) => BlueprintSpec {
                expiry_policy: policy(Some(b.expiry_policy.clone()))?,
                idle_policy: self.idle_policy.clone().unwrap_or(b.idle_policy),
                name: self.name.unwrap_or(b.name),
                description: self.description.unwrap_or(b.description),
                accounts: self.account.map(OneOrMany::into_vec).unwrap_or(b.accounts),
                regions: self.region.map(OneOrMany::into_vec).unwrap_or(b.regions),
                image: self.image.unwrap_or(b.image),
                instance_types: self.instance_types.unwrap_or(b.instance_types),
                default_type: self.default_type.unwrap_or(b.default_type),
                subnet_ids: self.subnet_ids.unwrap_or(b.subnet_ids),
                security_group_ids: self.security_group_ids.unwrap_or(b.security_group_ids),
                root_volume_gib: self.root_volume_gib.or(b.root_volume_gib),
                max_root_volume_gib: self.max_root_volume_gib.or(b.max_root_volume_gib),
                key_mode: self.key_mode.unwrap_or(b.key_mode),
                login_user: self.login_user.unwrap_or(b.login_user),
                user_data: self.user_data.unwrap_or(b.user_data),
                packages: self.packages.unwrap_or(b.packages),
                default_ttl_ms: ttl("default_ttl", self.default_ttl, b.default_ttl_ms)?,
                max_ttl_ms: ttl("max_ttl", self.max_ttl, b.max_ttl_ms)?,
                dns_zone: self.dns_zone.unwrap_or(b.dns_zone),
                dns_name_pattern: self.dns_name_pattern.unwrap_or(b.dns_name_pattern),
                tags: self.tags.unwrap_or(b.tags),
            },
            None => BlueprintSpec {
                expiry_policy: policy(None)?,
                idle_policy: self.idle_policy.clone().unwrap_or_default(),
                name: required(self.name, "name")?,
                description: self.description.unwrap_or_default(),
                accounts: required(self.account, "account")?.into_vec(),
                regions: required(self.region, "region")?.into_vec(),
                image: required(self.image, "image")?,
                instance_types: required(self.instance_types, "instance_types")?,
                default_type: required(self.default_type, "default_type")?,
                subnet_ids: self.subnet_ids.unwrap_or_default(),
                security_group_ids: self.security_group_ids.unwrap_or_default(),
                root_volume_gib: self.root_volume_gib,
                max_root_volume_gib: self.max_root_volume_gib,
                key_mode: self.key_mode.unwrap_or_default(),
                login_user: required(self.login_user, "login_user")?,
                user_data: self.user_data.unwrap_or_default(),
                packages: self.packages.unwrap_or_default(),
                default_ttl_ms: ttl("default_ttl", self.default_ttl, None)?,
                max_ttl_ms: ttl("max_ttl", self.max_ttl, None)?,
                dns_zone: self.dns_zone.unwrap_or_default(),
                dns_name_pattern: self.dns_name_pattern.unwrap_or_default(),
                tags: self.tags.unwrap_or_default(),
            },
        };
        Ok(spec)
    }
}

/// A blueprint at one version.
#[derive(Serialize, ToSchema)]
pub struct BlueprintOut {
    pub id: i64,
    pub name: String,
    /// The version shown.
    pub version: i64,
    /// The blueprint's current version.
    pub current_version: i64,
    pub description: String,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub image: String,
    pub instance_types: Vec<String>,
    pub default_type: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    pub root_volume_gib: Option<u32>,
    pub max_root_volume_gib: Option<u32>,
    /// `owner_key` or `none`.
    pub key_mode: String,
    pub login_user: String,
    /// The template (admins only: it is the operator's and may hold more
    /// than launchers need to see).
    pub user_data: Option<String>,
    pub packages: Vec<String>,
    pub default_ttl: Option<String>,
    pub max_ttl: Option<String>,
    /// The expiry rules it sets (only those it sets).
    #[schema(value_type = Object)]
    pub expiry_policy: skyhold_core::policy::RawRules,
    pub dns_zone: String,
    pub dns_name_pattern: String,
    pub tags: BTreeMap<String, String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

fn blueprint_out(app: &AppState, actor: &Actor, b: &BlueprintRow) -> BlueprintOut {
    let s = &b.spec;
    let admin = app.allows(
        actor,
        crate::app::Action::ManageBlueprints,
        Object::Blueprint(b.id),
    );
    BlueprintOut {
        id: b.id.0,
        name: s.name.clone(),
        version: b.version,
        current_version: b.current_version,
        description: s.description.clone(),
        accounts: s.accounts.clone(),
        regions: s.regions.clone(),
        image: s.image.clone(),
        instance_types: s.instance_types.clone(),
        default_type: s.default_type.clone(),
        subnet_ids: s.subnet_ids.clone(),
        security_group_ids: s.security_group_ids.clone(),
        root_volume_gib: s.root_volume_gib,
        max_root_volume_gib: s.max_root_volume_gib,
        key_mode: match s.key_mode {
            KeyMode::OwnerKey => "owner_key".into(),
            KeyMode::None => "none".into(),
        },
        login_user: s.login_user.clone(),
        user_data: admin.then(|| s.user_data.clone()),
        packages: s.packages.clone(),
        default_ttl: ttl_text(s.default_ttl_ms),
        max_ttl: ttl_text(s.max_ttl_ms),
        expiry_policy: s.expiry_policy.to_raw(),
        dns_zone: s.dns_zone.clone(),
        dns_name_pattern: s.dns_name_pattern.clone(),
        tags: s.tags.clone(),
        created_at: rfc3339(b.created_at),
        updated_at: rfc3339(b.updated_at),
    }
}

#[derive(Serialize, ToSchema)]
pub struct BlueprintList {
    pub items: Vec<BlueprintOut>,
}

#[utoipa::path(
    get,
    path = "/api/v1/blueprints",
    tag = "blueprints",
    summary = "The blueprints you may see (view on them; admins all)",
    responses(
        (status = 200, body = BlueprintList),
        ReadErrors,
    )
)]
pub(super) async fn list_blueprints(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<BlueprintList>, AppError> {
    let all = app.blueprints(&actor).await?;
    Ok(Json(BlueprintList {
        items: all.iter().map(|b| blueprint_out(&app, &actor, b)).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/blueprints",
    tag = "blueprints",
    summary = "Create a blueprint (admins)",
    params(IdempotencyKey),
    request_body = BlueprintBody,
    responses(
        (status = 201, description = "Created at version 1", body = BlueprintOut),
        (status = 400, response = ApiError),
        (status = 409, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn create_blueprint(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let spec = body::<BlueprintBody>(&bytes).and_then(|b| b.apply(None));
    let row = app.create_blueprint(&actor, spec).await?;
    Ok((StatusCode::CREATED, Json(blueprint_out(&app, &actor, &row))).into_response())
}

/// `?version=N`: an older version.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameter; the handler parses it itself
pub struct VersionQuery {
    /// A version to show instead of the current one.
    #[param(minimum = 1)]
    version: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/blueprints/{id}",
    tag = "blueprints",
    summary = "One blueprint, by id or name, at its current version or ?version=N",
    params(NamePath, VersionQuery),
    responses(
        (status = 200, body = BlueprintOut),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn get_blueprint(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<BlueprintOut>, AppError> {
    let mut version = None;
    for (_, v) in query(raw.as_deref(), &["version"])? {
        version = Some(
            v.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| AppError::bad_parameter("version", "a version number (1, 2, …)"))?,
        );
    }
    let b = app.blueprint(&actor, &id, version).await?;
    Ok(Json(blueprint_out(&app, &actor, &b)))
}

#[utoipa::path(
    patch,
    path = "/api/v1/blueprints/{id}",
    tag = "blueprints",
    summary = "Edit a blueprint (admins): writes its next version",
    params(NamePath, IdempotencyKey),
    request_body = BlueprintBody,
    responses(
        (status = 200, description = "The new version", body = BlueprintOut),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        (status = 409, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn update_blueprint(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<BlueprintOut>, AppError> {
    // The body is applied to the current spec only after the checks (a
    // hidden blueprint is a 404, an unmanageable one a 403, whatever the
    // body says).
    let parsed = body::<BlueprintBody>(&bytes);
    let expected = parsed.as_ref().ok().and_then(|b| b.version);
    let row = app
        .update_blueprint(&actor, &id, expected, move |current| {
            parsed?.apply(Some(current.clone()))
        })
        .await?;
    Ok(Json(blueprint_out(&app, &actor, &row)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/blueprints/{id}",
    tag = "blueprints",
    summary = "Delete a blueprint (admins); its versions stay for past launches",
    params(NamePath, IdempotencyKey),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn delete_blueprint(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    app.delete_blueprint(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Limits of one quota (`null`: unlimited).
#[derive(Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsBody {
    /// `user:NAME`, `group:NAME`, `default:user` or `default:group`.
    #[serde(default)]
    subject: String,
    instances: Option<u64>,
    vcpus: Option<u64>,
    memory_gib: Option<u64>,
    volume_gib: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct QuotaOut {
    pub subject: String,
    pub instances: Option<u64>,
    pub vcpus: Option<u64>,
    pub memory_gib: Option<u64>,
    pub volume_gib: Option<u64>,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

fn quota_out(q: &QuotaRow) -> QuotaOut {
    QuotaOut {
        subject: q.subject.to_string(),
        instances: q.limits.instances,
        vcpus: q.limits.vcpus,
        memory_gib: q.limits.memory_gib,
        volume_gib: q.limits.volume_gib,
        updated_at: rfc3339(q.updated_at),
    }
}

/// One quota as it applies: its limits, where they come from, the usage
/// (inventory plus launches in flight) and what remains.
#[derive(Serialize, ToSchema)]
pub struct QuotaUsageOut {
    /// The user or group it bounds.
    pub subject: String,
    /// Where the limits come from: the subject's override, or its default.
    pub source: String,
    #[schema(value_type = Object)]
    pub limits: Limits,
    /// In use: `instances`, `vcpus`, `memory_gib` (rounded up), `volume_gib`.
    pub usage: BTreeMap<String, u64>,
    /// What is left of each limited dimension.
    pub remaining: BTreeMap<String, u64>,
}

pub(super) fn usage_out(a: &Applicable) -> QuotaUsageOut {
    let mut usage = BTreeMap::new();
    let mut remaining = BTreeMap::new();
    for d in skyhold_core::quota::Dimension::ALL {
        usage.insert(d.as_str().to_owned(), a.usage.get(d));
        if let Some(l) = a.limits.get(d) {
            remaining.insert(d.as_str().to_owned(), l.saturating_sub(a.usage.get(d)));
        }
    }
    QuotaUsageOut {
        subject: a.subject.to_string(),
        source: a.source.to_string(),
        limits: a.limits,
        usage,
        remaining,
    }
}

#[derive(Serialize, ToSchema)]
pub struct QuotaList {
    /// The stored quotas (without `subject`), or (with it) how each quota
    /// that applies to that subject stands.
    pub items: Vec<QuotaOut>,
    pub applies: Vec<QuotaUsageOut>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameter; the handler parses it itself
pub struct SubjectQuery {
    /// `user:NAME` or `group:NAME`: the quotas that bound it, with usage.
    subject: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/quotas",
    tag = "quotas",
    summary = "Every stored quota; with ?subject= the quotas that apply to it, with usage (admins and auditors)",
    params(SubjectQuery),
    responses(
        (status = 200, body = QuotaList),
        (status = 400, response = ApiError),
        (status = 403, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn list_quotas(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<QuotaList>, AppError> {
    let mut subject = None;
    for (_, v) in query(raw.as_deref(), &["subject"])? {
        subject = Some(v);
    }
    let items = app.quotas(&actor).await?;
    let applies = match subject.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => app.quota_of(&actor, s).await?,
        None => Vec::new(),
    };
    Ok(Json(QuotaList {
        items: items.iter().map(quota_out).collect(),
        applies: applies.iter().map(usage_out).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/quotas",
    tag = "quotas",
    summary = "Set a default or an override (admins); null dimensions are unlimited",
    params(IdempotencyKey),
    request_body = LimitsBody,
    responses(
        (status = 200, body = QuotaOut),
        (status = 400, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn set_quota(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Json<QuotaOut>, AppError> {
    let b: LimitsBody = body(&bytes)?;
    let limits = Limits {
        instances: b.instances,
        vcpus: b.vcpus,
        memory_gib: b.memory_gib,
        volume_gib: b.volume_gib,
    };
    let q = app.set_quota(&actor, &b.subject, limits).await?;
    Ok(Json(quota_out(&q)))
}

/// A quota subject in the path.
#[allow(dead_code)] // documents the parameter; the handler parses it itself
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SubjectPath {
    /// `user:NAME`, `group:NAME`, `default:user` or `default:group`.
    pub subject: String,
}

#[utoipa::path(
    delete,
    path = "/api/v1/quotas/{subject}",
    tag = "quotas",
    summary = "Remove an override (the default applies again) or a default (admins)",
    params(SubjectPath, IdempotencyKey),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn delete_quota(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(subject): Path<String>,
) -> Result<StatusCode, AppError> {
    app.delete_quota(&actor, &subject).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct MyQuota {
    /// Each quota that bounds what you own: yours, then your groups'.
    pub items: Vec<QuotaUsageOut>,
}

#[utoipa::path(
    get,
    path = "/api/v1/me/quota",
    tag = "quotas",
    summary = "Your quotas: limits, where they come from, usage and what remains",
    responses(
        (status = 200, body = MyQuota),
        ReadErrors,
    )
)]
pub(super) async fn my_quota(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<MyQuota>, AppError> {
    let items = app.my_quota(&actor).await?;
    Ok(Json(MyQuota {
        items: items.iter().map(usage_out).collect(),
    }))
}
