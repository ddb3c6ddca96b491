//! The JSON API of acting safely: users and the caller's profile, groups,
//! grants, actions on resources, owners, and the audit log. Handlers parse,
//! call one `App` function and render; the check and the audit entries
//! happen inside those functions. Each handler carries its OpenAPI
//! description (`#[utoipa::path]`, gathered in `openapi.rs`).

use super::api::{body, id_param, resource_out, ResourceOut};
use super::openapi::{
    level_schema, power_schema, role_schema, ApiError, IdPath, IdempotencyKey, NamePath,
    ReadErrors, ResourcePath, WriteErrors,
};
use super::AppState;
use crate::app::{Actor, AuditFilter, Op, UserChange, UserView};
use crate::error::AppError;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use skyhold_core::{
    rfc3339, ActionId, GrantId, GroupId, PowerAction, ResourceId, Role, SshKeyId, UserId,
};
use skyhold_store::{ActionRow, Grant, Group};
use utoipa::{IntoParams, ToSchema};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/password", post(change_password))
        .route("/api/v1/me/email", post(set_email))
        .route("/api/v1/me/keys", get(list_ssh_keys).post(add_ssh_key))
        .route("/api/v1/me/keys/{id}", delete(delete_ssh_key))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{id}", get(get_user).patch(update_user))
        .route("/api/v1/groups", get(list_groups).post(create_group))
        .route(
            "/api/v1/groups/{id}",
            get(get_group).patch(update_group).delete(delete_group),
        )
        .route("/api/v1/groups/{id}/members", post(add_member))
        .route(
            "/api/v1/groups/{id}/members/{username}",
            delete(remove_member),
        )
        .route("/api/v1/grants", get(list_grants).post(put_grant))
        .route("/api/v1/grants/{id}", delete(delete_grant))
        .route("/api/v1/resources/{id}/actions", post(act))
        .route("/api/v1/resources/{id}/owner", post(set_owner))
        .route("/api/v1/resources/{id}/image", post(create_image))
        .route("/api/v1/resources/{id}/deregister", post(deregister))
        .route("/api/v1/actions", get(list_actions))
        .route("/api/v1/actions/{id}", get(get_action))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/audit/export", get(audit_export))
        .route("/api/v1/audit/verify", get(audit_verify))
}

pub(super) fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// A user (never the password).
#[derive(Serialize, ToSchema)]
pub struct UserOut {
    pub id: i64,
    pub username: String,
    #[schema(schema_with = role_schema)]
    pub role: Role,
    pub email: String,
    pub disabled: bool,
    #[schema(format = DateTime)]
    pub disabled_at: Option<String>,
    /// `local`, `proxy` or `oidc`.
    pub source: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

fn user_out(u: &UserView) -> UserOut {
    UserOut {
        id: u.id.0,
        username: u.username.clone(),
        role: u.role,
        email: u.email.clone(),
        disabled: u.disabled,
        disabled_at: u.disabled_at.map(rfc3339),
        source: u.source.clone(),
        created_at: rfc3339(u.created_at),
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserOut>,
}

#[derive(Serialize, ToSchema)]
pub struct GroupOut {
    pub id: i64,
    pub name: String,
    /// Member user names, sorted.
    pub members: Vec<String>,
    /// Where notifications about the group's resources go ('' for none:
    /// the admins get them).
    pub email: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

fn group_out(g: &Group) -> GroupOut {
    GroupOut {
        id: g.id.0,
        name: g.name.clone(),
        members: g.members.clone(),
        email: g.email.clone(),
        created_at: rfc3339(g.created_at),
    }
}

#[derive(Serialize, ToSchema)]
pub struct GroupList {
    pub items: Vec<GroupOut>,
}

/// Who holds what on an object.
#[derive(Serialize, ToSchema)]
pub struct GrantOut {
    pub id: i64,
    /// `user:NAME` or `group:NAME`.
    pub subject: String,
    /// `account:NAME`, `resource:ID`, `group:NAME` or `user:NAME`.
    pub object: String,
    #[schema(schema_with = level_schema)]
    pub level: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

fn grant_out(g: &Grant) -> GrantOut {
    GrantOut {
        id: g.id.0,
        subject: format!("{}:{}", g.subject_kind, g.subject_name),
        object: format!("{}:{}", g.object_kind, g.object_name),
        level: g.level.clone(),
        created_at: rfc3339(g.created_at),
    }
}

#[derive(Serialize, ToSchema)]
pub struct GrantList {
    pub items: Vec<GrantOut>,
}

/// The resource an action is about, as it was when asked.
#[derive(Serialize, ToSchema)]
pub struct ActionResource {
    pub id: i64,
    pub kind: String,
    pub provider_id: String,
    pub name: String,
    pub account: String,
    pub region: String,
}

/// Why an action failed.
#[derive(Serialize, ToSchema)]
pub struct ActionError {
    /// A stable code (as in the error shape).
    pub code: String,
    pub message: String,
}

/// An action on a resource and its outcome.
#[derive(Serialize, ToSchema)]
pub struct ActionOut {
    pub id: i64,
    /// `start`, `stop`, `reboot`, `terminate` or `set_owner`.
    pub action: String,
    /// `pending`, `running`, `succeeded`, `failed` or `interrupted`.
    pub state: String,
    pub resource: ActionResource,
    pub requested_by: String,
    /// The user or group it was taken for ('' when for oneself).
    pub on_behalf_of: String,
    #[schema(value_type = Object)]
    pub params: Value,
    pub provider_request_id: String,
    /// Set when `state` is `failed`.
    pub error: Option<ActionError>,
    /// What the action made: `{"image_id": …}` for create_image, else `{}`.
    #[schema(value_type = Object)]
    pub result: Value,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
}

pub fn action_out(a: &ActionRow) -> ActionOut {
    ActionOut {
        id: a.id.0,
        action: a.kind.clone(),
        state: a.state.clone(),
        resource: ActionResource {
            id: a.resource_id.0,
            kind: a.resource_kind.clone(),
            provider_id: a.provider_id.clone(),
            name: a.resource_name.clone(),
            account: a.account.clone(),
            region: a.region.clone(),
        },
        requested_by: a.requested_by_name.clone(),
        on_behalf_of: a.on_behalf_of.clone(),
        params: a.params.clone(),
        provider_request_id: a.provider_request_id.clone(),
        error: (a.state == "failed").then(|| ActionError {
            code: a.error_code.clone(),
            message: a.error.clone(),
        }),
        result: a.result.clone(),
        created_at: rfc3339(a.created_at),
        started_at: a.started_at.map(rfc3339),
        finished_at: a.finished_at.map(rfc3339),
    }
}

fn parse_role(v: &str) -> Result<Role, AppError> {
    Role::parse(v)
        .ok_or_else(|| AppError::bad_parameter("role", "use admin, member, viewer or auditor"))
}

/// The caller: their user, groups and how this request was authenticated.
#[derive(Serialize, ToSchema)]
pub struct MeOut {
    #[serde(flatten)]
    pub user: UserOut,
    pub groups: Vec<String>,
    /// `password`, `token`, `proxy` or `oidc`.
    pub auth: String,
    /// How many SSH keys they have.
    pub ssh_keys: usize,
}

#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "profile",
    summary = "Who you are: role, groups, how you authenticated",
    responses((status = 200, body = MeOut), ReadErrors)
)]
pub(super) async fn me(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<MeOut>, AppError> {
    let p = app.me(&actor).await?;
    Ok(Json(MeOut {
        user: user_out(&p.user),
        groups: p.groups,
        auth: p.auth,
        ssh_keys: p.ssh_keys.len(),
    }))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/me/password",
    tag = "profile",
    summary = "Change your password (the current one must be given); all your sessions end (tokens stay)",
    params(IdempotencyKey),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn change_password(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<StatusCode, AppError> {
    let b: PasswordChange = body(&bytes)?;
    app.change_own_password(&actor, &b.current_password, &b.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChange {
    /// '' clears it.
    email: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/me/email",
    tag = "profile",
    summary = "Set your email address",
    params(IdempotencyKey),
    request_body = EmailChange,
    responses(
        (status = 204, description = "Set"),
        (status = 400, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn set_email(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<StatusCode, AppError> {
    let b: EmailChange = body(&bytes)?;
    app.set_own_email(&actor, &b.email).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct SshKeyOut {
    pub id: i64,
    pub name: String,
    pub public_key: String,
    /// `SHA256:…`.
    pub fingerprint: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct SshKeyList {
    pub items: Vec<SshKeyOut>,
}

#[utoipa::path(
    get,
    path = "/api/v1/me/keys",
    tag = "profile",
    summary = "Your SSH public keys",
    responses((status = 200, body = SshKeyList), ReadErrors)
)]
pub(super) async fn list_ssh_keys(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<SshKeyList>, AppError> {
    let p = app.me(&actor).await?;
    let items = p.ssh_keys.iter().map(key_out).collect();
    Ok(Json(SshKeyList { items }))
}

fn key_out(k: &skyhold_store::SshKey) -> SshKeyOut {
    SshKeyOut {
        id: k.id.0,
        name: k.name.clone(),
        public_key: k.public_key.clone(),
        fingerprint: k.fingerprint.clone(),
        created_at: rfc3339(k.created_at),
    }
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// A label (default: the key's comment).
    #[serde(default)]
    name: String,
    /// One OpenSSH public key line (`ssh-ed25519 AAAA… comment`).
    public_key: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/me/keys",
    tag = "profile",
    summary = "Add an SSH public key",
    params(IdempotencyKey),
    request_body = NewKey,
    responses(
        (status = 201, description = "Added", body = SshKeyOut),
        (status = 400, response = ApiError),
        (status = 409, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn add_ssh_key(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let b: NewKey = body(&bytes)?;
    let id = app.add_ssh_key(&actor, &b.name, &b.public_key).await?;
    let p = app.me(&actor).await?;
    let k = p
        .ssh_keys
        .iter()
        .find(|k| k.id == id)
        .ok_or_else(|| AppError::NotFound(format!("ssh key {id}")))?;
    Ok((StatusCode::CREATED, Json(key_out(k))).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/me/keys/{id}",
    tag = "profile",
    summary = "Delete one of your SSH keys",
    params(IdPath, IdempotencyKey),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn delete_ssh_key(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = id_param(&id, "ssh key", SshKeyId)?;
    app.delete_ssh_key(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    summary = "Every user (admins and auditors)",
    responses(
        (status = 200, body = UserList),
        (status = 403, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn list_users(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<UserList>, AppError> {
    let users = app.users(&actor).await?;
    Ok(Json(UserList {
        items: users.iter().map(user_out).collect(),
    }))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    username: String,
    password: String,
    #[schema(schema_with = role_schema)]
    role: String,
    #[serde(default)]
    email: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    summary = "Create a local user (admins)",
    params(IdempotencyKey),
    request_body = NewUserBody,
    responses(
        (status = 201, description = "Created", body = UserOut),
        (status = 400, response = ApiError),
        (status = 409, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn create_user(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let b: NewUserBody = body(&bytes)?;
    let role = parse_role(&b.role)?;
    let u = app
        .create_user(&actor, b.username.trim(), &b.password, role, &b.email)
        .await?;
    Ok((StatusCode::CREATED, Json(user_out(&u))).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "users",
    summary = "One user, by id or name (admins and auditors)",
    params(NamePath),
    responses(
        (status = 200, body = UserOut),
        (status = 403, response = ApiError),
        (status = 404, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn get_user(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<UserOut>, AppError> {
    let users = app.users(&actor).await?;
    let found = users
        .iter()
        .find(|u| u.username == id || u.id.to_string() == id)
        .ok_or_else(|| AppError::NotFound(format!("user {:?}", skyhold_core::clip(&id, 80))))?;
    Ok(Json(user_out(found)))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatchBody {
    #[schema(schema_with = role_schema)]
    role: Option<String>,
    /// Disabling ends the user's sessions and tokens at once.
    disabled: Option<bool>,
    password: Option<String>,
    email: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}",
    tag = "users",
    summary = "Change a user's role, disabled state, password or email (admins)",
    params(NamePath, IdempotencyKey),
    request_body = UserPatchBody,
    responses(
        (status = 200, body = UserOut),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        (status = 409, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn update_user(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<UserOut>, AppError> {
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
    Ok(Json(user_out(&u)))
}

#[utoipa::path(
    get,
    path = "/api/v1/groups",
    tag = "groups",
    summary = "Every group and its members",
    responses((status = 200, body = GroupList), ReadErrors)
)]
pub(super) async fn list_groups(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<GroupList>, AppError> {
    let groups = app.groups(&actor).await?;
    Ok(Json(GroupList {
        items: groups.iter().map(group_out).collect(),
    }))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    name: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/groups",
    tag = "groups",
    summary = "Create a group (admins)",
    params(IdempotencyKey),
    request_body = NewGroup,
    responses(
        (status = 201, description = "Created", body = GroupOut),
        (status = 400, response = ApiError),
        (status = 409, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn create_group(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let b: NewGroup = body(&bytes)?;
    let g = app.create_group(&actor, &b.name).await?;
    Ok((StatusCode::CREATED, Json(group_out(&g))).into_response())
}

async fn group_id(app: &AppState, raw: &str) -> Result<GroupId, AppError> {
    Ok(app.find_group(raw).await?.id)
}

#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}",
    tag = "groups",
    summary = "One group, by id or name",
    params(NamePath),
    responses(
        (status = 200, body = GroupOut),
        (status = 404, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn get_group(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<GroupOut>, AppError> {
    let id = group_id(&app, &id).await?;
    let g = app
        .groups(&actor)
        .await?
        .into_iter()
        .find(|g| g.id == id)
        .ok_or_else(|| AppError::NotFound(format!("group {id}")))?;
    Ok(Json(group_out(&g)))
}

/// A change to a group.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    /// Where notifications about the group's resources (and its members'
    /// without an address) go; '' removes it.
    pub email: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/groups/{id}",
    tag = "groups",
    summary = "Set a group's notification address (manage on the group)",
    params(NamePath, IdempotencyKey),
    request_body = GroupPatch,
    responses(
        (status = 200, body = GroupOut),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn update_group(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<GroupOut>, AppError> {
    let b: GroupPatch = body(&bytes)?;
    let id = group_id(&app, &id).await?;
    let email = b
        .email
        .ok_or_else(|| AppError::bad_parameter("email", "required (\"\" removes it)"))?;
    let g = app.set_group_email(&actor, id, &email).await?;
    Ok(Json(group_out(&g)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}",
    tag = "groups",
    summary = "Delete a group and its grants (admins)",
    params(NamePath, IdempotencyKey),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn delete_group(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = group_id(&app, &id).await?;
    app.delete_group(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Member {
    username: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/groups/{id}/members",
    tag = "groups",
    summary = "Add a member (admins, or manage on the group)",
    params(NamePath, IdempotencyKey),
    request_body = Member,
    responses(
        (status = 200, description = "The group afterwards", body = GroupOut),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn add_member(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<GroupOut>, AppError> {
    let b: Member = body(&bytes)?;
    let id = group_id(&app, &id).await?;
    let g = app.add_member(&actor, id, b.username.trim()).await?;
    Ok(Json(group_out(&g)))
}

/// A group and a member in the path.
#[allow(dead_code)] // documents the parameters; the handler parses them itself
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MemberPath {
    /// The group's id or name.
    pub id: String,
    pub username: String,
}

#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}/members/{username}",
    tag = "groups",
    summary = "Remove a member (admins, or manage on the group)",
    params(MemberPath, IdempotencyKey),
    responses(
        (status = 200, description = "The group afterwards", body = GroupOut),
        (status = 404, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn remove_member(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((id, username)): Path<(String, String)>,
) -> Result<Json<GroupOut>, AppError> {
    let id = group_id(&app, &id).await?;
    let g = app.remove_member(&actor, id, &username).await?;
    Ok(Json(group_out(&g)))
}

/// The filters of `GET /api/v1/grants`.
#[allow(dead_code)] // documents the parameters; the handler parses them itself
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GrantsQuery {
    /// Grants on this object (`account:NAME`, `resource:ID`, `group:NAME`, `user:NAME`).
    pub object: Option<String>,
    /// Grants held by this subject (`user:NAME`, `group:NAME`).
    pub subject: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/grants",
    tag = "grants",
    summary = "Grants on an object or of a subject (manage on the object, or auditors)",
    params(GrantsQuery),
    responses(
        (status = 200, body = GrantList),
        (status = 400, response = ApiError),
        (status = 403, response = ApiError),
        (status = 404, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn list_grants(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<GrantList>, AppError> {
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
    Ok(Json(GrantList {
        items: grants.iter().map(grant_out).collect(),
    }))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    /// `user:NAME` or `group:NAME`.
    subject: String,
    /// `account:NAME`, `resource:ID`, `group:NAME` or `user:NAME`.
    object: String,
    #[schema(schema_with = level_schema)]
    level: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/grants",
    tag = "grants",
    summary = "Grant a level on an object (or change it); needs manage on the object",
    params(IdempotencyKey),
    request_body = NewGrant,
    responses(
        (status = 201, description = "The grant", body = GrantOut),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn put_grant(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let b: NewGrant = body(&bytes)?;
    let g = app
        .put_grant(&actor, &b.subject, &b.object, &b.level)
        .await?;
    Ok((StatusCode::CREATED, Json(grant_out(&g))).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/grants/{id}",
    tag = "grants",
    summary = "Revoke a grant; needs manage on its object",
    params(IdPath, IdempotencyKey),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn delete_grant(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id = id_param(&id, "grant", GrantId)?;
    app.delete_grant(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActBody {
    #[schema(schema_with = power_schema)]
    action: String,
    /// For terminate: the instance's name (or id when it has none), typed back.
    confirm: Option<String>,
    /// Answer when the action has settled (or the action timeout passed).
    #[serde(default)]
    wait: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/resources/{id}/actions",
    tag = "actions",
    summary = "Start, stop, reboot or terminate an instance (operate; terminate: manage)",
    params(ResourcePath, IdempotencyKey),
    request_body = ActBody,
    responses(
        (status = 202, description = "The action (settled when `wait`)", body = ActionOut),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        (status = 409, response = ApiError),
        (status = 502, response = ApiError),
        (status = 503, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn act(
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
    Ok((StatusCode::ACCEPTED, Json(action_out(&a))).into_response())
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageBody {
    /// The image's name (default: the instance's name and the time,
    /// `web1-20261202-0915`).
    name: Option<String>,
    description: Option<String>,
    /// Image the running instance without stopping it: no downtime, but
    /// file systems may be caught mid-write (default false: the instance
    /// reboots for a consistent image).
    #[serde(default)]
    no_reboot: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/resources/{id}/image",
    tag = "actions",
    summary = "Make an own image of an instance (operate); the image and its snapshots are tagged with creator and owner",
    params(ResourcePath, IdempotencyKey),
    request_body = ImageBody,
    responses(
        (status = 202, description = "The action; `result.image_id` is the new image", body = ActionOut),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        (status = 409, response = ApiError),
        (status = 502, response = ApiError),
        (status = 503, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn create_image(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let id = id_param(&id, "resource", ResourceId)?;
    let b: ImageBody = body(&bytes)?;
    let name = match b.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_owned(),
        None => app.default_image_name(&actor, id).await?,
    };
    let a = app
        .act(
            &actor,
            id,
            Op::CreateImage {
                name,
                description: b.description.unwrap_or_default().trim().to_owned(),
                no_reboot: b.no_reboot,
            },
            None,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(action_out(&a))).into_response())
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// The image's name (or id when it has none), typed back.
    confirm: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/resources/{id}/deregister",
    tag = "actions",
    summary = "Deregister an own image (manage; its snapshots stay)",
    params(ResourcePath, IdempotencyKey),
    request_body = ConfirmBody,
    responses(
        (status = 202, description = "The action", body = ActionOut),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        (status = 409, response = ApiError),
        (status = 502, response = ApiError),
        (status = 503, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn deregister(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, AppError> {
    let id = id_param(&id, "resource", ResourceId)?;
    let b: ConfirmBody = body(&bytes)?;
    let a = app
        .act(&actor, id, Op::Deregister, b.confirm.as_deref())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(action_out(&a))).into_response())
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnerBody {
    /// A user name, or `group:NAME`.
    owner: String,
}

/// An action on a resource (set-owner, expiry), with the resource as it is
/// afterwards (`null` when it is no longer visible to the caller).
#[derive(Serialize, ToSchema)]
pub struct ActedOn {
    #[serde(flatten)]
    pub action: ActionOutNoResource,
    pub resource: Option<ResourceOut>,
}

/// An action without its resource (see `ActedOn`).
#[derive(Serialize, ToSchema)]
pub struct ActionOutNoResource {
    pub id: i64,
    pub action: String,
    pub state: String,
    pub requested_by: String,
    pub on_behalf_of: String,
    #[schema(value_type = Object)]
    pub params: Value,
    pub provider_request_id: String,
    pub error: Option<ActionError>,
    #[schema(value_type = Object)]
    pub result: Value,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/resources/{id}/owner",
    tag = "actions",
    summary = "Set a resource's owner (writes the `skyhold:owner` tag; manage)",
    params(ResourcePath, IdempotencyKey),
    request_body = OwnerBody,
    responses(
        (status = 200, description = "The action and the resource afterwards", body = ActedOn),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        (status = 409, response = ApiError),
        (status = 502, response = ApiError),
        (status = 503, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn set_owner(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<ActedOn>, AppError> {
    let id = id_param(&id, "resource", ResourceId)?;
    let b: OwnerBody = body(&bytes)?;
    let a = app
        .act(&actor, id, Op::SetOwner(b.owner.trim().to_owned()), None)
        .await?;
    Ok(Json(acted_on(&app, &actor, &a, id).await?))
}

/// `a` with its resource as the caller sees it afterwards.
pub(super) async fn acted_on(
    app: &AppState,
    actor: &Actor,
    a: &ActionRow,
    id: ResourceId,
) -> Result<ActedOn, AppError> {
    let r = app.resource_after_action(actor, id).await?;
    let a = action_out(a);
    Ok(ActedOn {
        action: ActionOutNoResource {
            id: a.id,
            action: a.action,
            state: a.state,
            requested_by: a.requested_by,
            on_behalf_of: a.on_behalf_of,
            params: a.params,
            provider_request_id: a.provider_request_id,
            error: a.error,
            result: a.result,
            created_at: a.created_at,
            started_at: a.started_at,
            finished_at: a.finished_at,
        },
        resource: r.map(|r| resource_out(&r, app.permission(actor, &r))),
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/actions/{id}",
    tag = "actions",
    summary = "One action and its outcome",
    params(IdPath),
    responses(
        (status = 200, body = ActionOut),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn get_action(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<ActionOut>, AppError> {
    let id = id_param(&id, "action", ActionId)?;
    Ok(Json(action_out(&app.action(&actor, id).await?)))
}

/// The filters of `GET /api/v1/actions`.
#[allow(dead_code)] // documents the parameters; the handler parses them itself
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionsQuery {
    /// Actions on this resource (id).
    pub resource: Option<i64>,
    /// Actions asked by this user (name or id).
    pub actor: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Actions per page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ActionPage {
    pub items: Vec<ActionOut>,
    pub next_cursor: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/actions",
    tag = "actions",
    summary = "Actions and their outcome, newest first",
    params(ActionsQuery),
    responses(
        (status = 200, body = ActionPage),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn list_actions(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ActionPage>, AppError> {
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
            "limit" => limit = crate::error::page_limit(v)?,
            other => {
                return Err(AppError::bad_parameter(
                    &skyhold_core::clip(other, 40),
                    "unknown parameter",
                ))
            }
        }
    }
    let (rows, next) = app.actions(&actor, resource, by, cursor, limit).await?;
    Ok(Json(ActionPage {
        items: rows.iter().map(action_out).collect(),
        next_cursor: next.map(|n| n.0),
    }))
}

/// The filters of `GET /api/v1/audit`.
#[allow(dead_code)] // documents the parameters; the handler parses them itself
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The actor's user name (at most 200 characters).
    #[param(max_length = 200)]
    pub actor: Option<String>,
    /// The action (`login`, `resource.stop`, `grant.change`, …).
    #[param(max_length = 100)]
    pub action: Option<String>,
    #[param(inline)]
    pub outcome: Option<Outcome>,
    /// `kind` or `kind:id` (`resource:42`, `user:3`).
    #[param(max_length = 200)]
    pub target: Option<String>,
    /// From: RFC 3339, a date, or a duration back from now (`24h`, `7d`).
    pub since: Option<String>,
    /// Until: as `since`.
    pub until: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(minimum = 1)]
    pub cursor: Option<i64>,
    /// Entries per page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the accepted values; parsed by AuditFilter
pub enum Outcome {
    Ok,
    Denied,
    Failed,
}

/// The object an audit entry is about ('' fields when none).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // the schema of skyhold_core::audit::AuditTarget
pub struct AuditTargetSchema {
    /// `resource`, `user`, `group`, `grant`, `token`, `session`, `account`, `action`, `audit` or ''.
    kind: String,
    id: String,
    provider_id: String,
    account: String,
    region: String,
    name: String,
}

/// One entry of the audit log (the chain's fields included).
#[derive(Serialize, ToSchema)]
#[schema(as = AuditEntry)]
#[allow(dead_code)] // the schema of skyhold_core::audit::AuditEntry, which is serialized
pub struct AuditEntrySchema {
    seq: i64,
    /// Milliseconds since the epoch.
    time: i64,
    actor_id: Option<i64>,
    /// The user name, or `system:` plus the job or policy.
    actor: String,
    /// `password`, `token`, `proxy`, `oidc`, `system` or `none`.
    auth: String,
    client_ip: String,
    user_agent: String,
    request_id: String,
    idempotency_key: String,
    action: String,
    #[schema(value_type = AuditTargetSchema)]
    target: (),
    /// `ok`, `denied` or `failed`.
    outcome: String,
    /// Why it was denied or failed ('' on success).
    reason: String,
    /// Before and after, for changes (never a secret).
    #[schema(value_type = Option<Object>)]
    old: Option<Value>,
    #[schema(value_type = Option<Object>)]
    new: Option<Value>,
    prev_hash: String,
    hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    #[schema(value_type = Vec<AuditEntrySchema>)]
    pub items: Vec<skyhold_core::audit::AuditEntry>,
    pub next_cursor: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    summary = "The audit log, newest first (members and viewers: entries about them and what they manage)",
    params(AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn audit(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<AuditPage>, AppError> {
    let f = AuditFilter::parse(&pairs(raw.as_deref()), false)?;
    let (entries, next) = app.audit_entries(&actor, &f).await?;
    Ok(Json(AuditPage {
        items: entries,
        next_cursor: next,
    }))
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

/// The parameters of `GET /api/v1/audit/export`.
#[allow(dead_code)] // documents the parameters; the handler parses them itself
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// From: RFC 3339, a date, or a duration back from now.
    pub since: Option<String>,
    /// Until: as `since`.
    pub until: Option<String>,
    #[param(inline)]
    pub format: Option<ExportFormat>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the accepted values
pub enum ExportFormat {
    Jsonl,
    Csv,
}

#[utoipa::path(
    get,
    path = "/api/v1/audit/export",
    tag = "audit",
    summary = "The whole log (or a time range) as JSON lines or CSV, oldest first (admins and auditors)",
    params(ExportQuery),
    responses(
        (status = 200, description = "One entry per line", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 400, response = ApiError),
        (status = 403, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn audit_export(
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

/// The last good entry of the chain.
#[derive(Serialize, ToSchema)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

/// The result of checking the audit chain.
#[derive(Serialize, ToSchema)]
pub struct VerifyOut {
    pub ok: bool,
    /// Entries checked.
    pub checked: u64,
    /// The first entry that is missing, altered or does not link to the one before.
    pub first_bad_seq: Option<i64>,
    /// What is wrong there.
    pub problem: Option<String>,
    pub head: Option<ChainHead>,
}

#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    tag = "audit",
    summary = "Walk the audit chain and report the first missing, altered or unlinked entry (admins and auditors)",
    responses(
        (status = 200, body = VerifyOut),
        (status = 403, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn audit_verify(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<VerifyOut>, AppError> {
    let r = app.verify_audit(&actor).await?;
    Ok(Json(VerifyOut {
        ok: r.ok,
        checked: r.checked,
        first_bad_seq: r.first_bad_seq,
        problem: r.problem,
        head: r.head.map(|(seq, hash)| ChainHead { seq, hash }),
    }))
}
