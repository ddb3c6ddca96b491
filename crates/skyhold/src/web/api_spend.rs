//! The usage API: spend reports (JSON or CSV), one resource's ledger,
//! and money budgets.

use super::api::body;
use super::api::id_param;
use super::api_access::pairs;
use super::openapi::{ApiError, IdempotencyKey, ReadErrors, WriteErrors};
use super::AppState;
use crate::app::{Actor, SpendQuery};
use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use skyhold_core::ResourceId;
use skyhold_store::Interval;
use utoipa::{IntoParams, ToSchema};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/reports/spend", get(spend))
        .route("/api/v1/ledger", get(ledger))
        .route("/api/v1/budgets", get(list_budgets).post(set_budget))
        .route("/api/v1/budgets/{subject}", delete(delete_budget))
        .route("/api/v1/me/budgets", get(my_budgets))
}

#[allow(dead_code)] // documents the parameters; the handler parses them itself
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SpendParams {
    /// Comma-separated: `owner`, `group`, `account`, `region`,
    /// `blueprint`, `kind`, and `day` or `month` (default `owner`).
    pub group_by: Option<String>,
    /// RFC 3339, a date, or a duration back from now (`30d`); default the
    /// start of this month (UTC).
    pub from: Option<String>,
    /// As `from`; default now.
    pub to: Option<String>,
    /// Only this user's resources.
    pub user: Option<String>,
    /// Only this group's (its own and its members').
    pub group: Option<String>,
    pub account: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// A spend query from the query string (shared with the Reports page).
pub(super) fn spend_query(
    raw: Option<&str>,
    now: skyhold_core::Millis,
) -> Result<(SpendQuery, bool), AppError> {
    let p = pairs(raw);
    let get = |k: &str| {
        p.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    for (k, _) in &p {
        if ![
            "group_by", "from", "to", "user", "group", "account", "format",
        ]
        .contains(&k.as_str())
        {
            return Err(AppError::bad_parameter(k, "unknown parameter"));
        }
    }
    let mut q = SpendQuery::parse(get("group_by"), get("from"), get("to"), now)?;
    q.user = get("user").map(str::to_owned);
    q.group = get("group").map(str::to_owned);
    q.account = get("account").map(str::to_owned);
    let csv = match get("format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(AppError::bad_parameter("format", "json or csv")),
    };
    Ok((q, csv))
}

#[utoipa::path(
    get,
    path = "/api/v1/reports/spend",
    tag = "usage",
    summary = "Spend from the usage ledger and prices, grouped (admins and auditors: everyone's; others: their own and their groups')",
    description = "Rows carry the group-by fields, `hours` and `usd`; usage with no price is \
        listed in `unpriced`, never counted as 0. `month_to_date_usd` and `month_projected_usd` \
        cover the current month for the same owners (the rest of the month at the last hour's rate).",
    params(SpendParams),
    responses(
        (status = 200, body = crate::app::SpendReport),
        (status = 400, response = ApiError),
        (status = 403, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn spend(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let (q, csv) = spend_query(raw.as_deref(), app.now())?;
    let report = app.spend(&actor, &q).await?;
    if csv {
        return Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            crate::app::spend_csv(&report),
        )
            .into_response());
    }
    Ok(Json(report).into_response())
}

#[allow(dead_code)] // documents the parameters; the handler parses them itself
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerParams {
    /// The resource's id.
    pub resource: i64,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct LedgerPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Interval>,
}

#[utoipa::path(
    get,
    path = "/api/v1/ledger",
    tag = "usage",
    summary = "One resource's usage intervals, oldest first, with how each began and ended",
    description = "`start_how`/`end_how`: `observed` (seen by a sync), `transition_time` (the \
        provider's own time of the change), `last_seen` (it vanished: closed at the last listing \
        that showed it), `action` (a skyhold action's time). An open interval has no `ended_at`.",
    params(LedgerParams),
    responses(
        (status = 200, body = LedgerPage),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn ledger(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Json<LedgerPage>, AppError> {
    let p = pairs(raw.as_deref());
    let id = p
        .iter()
        .find(|(k, _)| k == "resource")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| AppError::bad_parameter("resource", "required: a resource id"))?;
    let id = id_param(id, "resource", ResourceId)?;
    Ok(Json(LedgerPage {
        items: app.ledger(&actor, id).await?,
    }))
}

/// A budget to set.
#[derive(serde::Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct BudgetBody {
    /// `user:NAME`, `group:NAME`, `default:user` or `default:group`.
    pub subject: String,
    /// The monthly limit in USD.
    pub monthly_usd: f64,
    /// `block` (the default: warn at 80 % and 100 %, refuse launches at
    /// 100 %), `warn` (warn only) or `stop` (block, and stop the running
    /// instances an hour after the 100 % warning).
    pub on_exceed: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct BudgetList {
    pub items: Vec<crate::app::BudgetView>,
}

#[utoipa::path(
    get,
    path = "/api/v1/budgets",
    tag = "usage",
    summary = "Every budget, with this month's spend and projection for user and group budgets (admins, auditors)",
    responses(
        (status = 200, body = BudgetList),
        (status = 403, response = ApiError),
        ReadErrors,
    )
)]
pub(super) async fn list_budgets(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<BudgetList>, AppError> {
    Ok(Json(BudgetList {
        items: app.budgets(&actor).await?,
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/budgets",
    tag = "usage",
    summary = "Set a monthly money budget: a default or an override (admins)",
    params(IdempotencyKey),
    request_body = BudgetBody,
    responses(
        (status = 200, body = Object),
        (status = 400, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn set_budget(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    bytes: Bytes,
) -> Result<Json<skyhold_store::BudgetRow>, AppError> {
    let b: BudgetBody = body(&bytes)?;
    Ok(Json(
        app.set_budget(&actor, &b.subject, b.monthly_usd, b.on_exceed.as_deref())
            .await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/api/v1/budgets/{subject}",
    tag = "usage",
    summary = "Remove a budget (admins)",
    params(("subject" = String, Path, description = "`user:NAME`, `group:NAME`, `default:user` or `default:group`"), IdempotencyKey),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, response = ApiError),
        (status = 404, response = ApiError),
        WriteErrors,
    )
)]
pub(super) async fn delete_budget(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(subject): Path<String>,
) -> Result<StatusCode, AppError> {
    app.delete_budget(&actor, &subject).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Serialize, ToSchema)]
pub struct MyBudgets {
    /// The budgets that bound what you own: yours, then your groups'.
    pub items: Vec<crate::app::BudgetStatus>,
}

#[utoipa::path(
    get,
    path = "/api/v1/me/budgets",
    tag = "usage",
    summary = "Your budgets and your groups', with this month's spend and projection",
    responses(
        (status = 200, body = MyBudgets),
        ReadErrors,
    )
)]
pub(super) async fn my_budgets(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<MyBudgets>, AppError> {
    Ok(Json(MyBudgets {
        items: app.my_budgets(&actor).await?,
    }))
}
