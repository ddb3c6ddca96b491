//! Acting from the pages: the detail page's action buttons and owner form
//! ([`panel`], [`owner_form`]), the bulk form of list pages (each selected
//! row acted on by itself through `App::act`, the result reported per row),
//! and the Orphans page (resources matching `is:orphan`) where admins
//! assign owners to selected rows. Every form is a POST with the session's
//! CSRF token; `App::act` decides and audits, `App::allows` only chooses
//! the buttons.

use super::common::{PageError, PageResult};
use super::forms::{csrf_field, failed, href, local_path, Fields};
use super::ui::{empty, page, state_badge, time};
use super::AppState;
use crate::app::{Action, Actor, App, KeepStatus, Object, Op};
use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{html, Markup};
use skyhold_core::{PowerAction, Resource, ResourceId, ResourceKind, ResourceQuery};
use skyhold_store::ActionRow;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/resources/{id}/act", post(act))
        .route("/resources/{id}/owner", post(set_owner))
        .route("/resources/{id}/expiry", post(set_expiry))
        .route("/resources/{id}/keep", post(set_keep))
        .route("/resources/{id}/image", post(create_image))
        .route("/resources/{id}/deregister", post(deregister))
        .route("/bulk", post(bulk))
        .route("/orphans", get(orphans))
        .route("/orphans/claim", post(claim))
}

/// At most this many rows in one bulk request.
const BULK_MAX: usize = 100;

/// What a refusal's stable code means, for the banner after the redirect.
fn refusal_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "confirmation_required" => {
            "This cannot be undone: type the resource's name (or id) into the box to confirm."
        }
        "invalid_state" => "The resource's state does not allow this action now (it may be gone, or between states).",
        "not_permitted" => "The provider does not permit this action on this resource (termination protection, or a kind it cannot tag).",
        "provider_denied" => "The cloud refused skyhold's credentials for this call: the operator policy lacks the permission.",
        "provider_throttled" => "The cloud is throttling requests; try again in a moment.",
        "provider_error" => "The cloud provider failed the call; see the recent actions below.",
        "unavailable" => "The resource could not be re-read from the provider afterwards.",
        "invalid_parameter" | "bad_request" => "The action does not apply to this resource as asked.",
        "conflict" => "The action conflicts with the configuration (is the account still configured?).",
        "idempotency_conflict" => "Another request for this action is still running.",
        _ => return None,
    })
}

fn is_final(state: &str) -> bool {
    matches!(state, "terminated" | "shutting-down")
}

/// The buttons an actor gets on an instance in its current state.
fn buttons(app: &App, actor: &Actor, r: &Resource) -> Vec<PowerAction> {
    if r.observed.kind != ResourceKind::Instance || r.deleted_at.is_some() {
        return Vec::new();
    }
    let state = r.observed.state.as_str();
    let may = |a| app.allows(actor, a, Object::Resource(r));
    let mut out = Vec::new();
    if state == "stopped" && may(Action::StartResource) {
        out.push(PowerAction::Start);
    }
    if state == "running" && may(Action::StopResource) {
        out.push(PowerAction::Stop);
    }
    if state == "running" && may(Action::RebootResource) {
        out.push(PowerAction::Reboot);
    }
    if !is_final(state) && may(Action::TerminateResource) {
        out.push(PowerAction::Terminate);
    }
    out
}

fn label(p: PowerAction) -> &'static str {
    match p {
        PowerAction::Start => "Start",
        PowerAction::Stop => "Stop",
        PowerAction::Reboot => "Reboot",
        PowerAction::Terminate => "Terminate",
    }
}

fn display_name(r: &Resource) -> &str {
    if r.observed.name.is_empty() {
        &r.observed.provider_id
    } else {
        &r.observed.name
    }
}

fn action_state(a: &ActionRow) -> Markup {
    let class = match a.state.as_str() {
        "succeeded" => "s-good",
        "failed" => "s-bad",
        _ => "s-warn",
    };
    html! { span class={"badge " (class)} { (a.state) } }
}

/// The detail page's Actions section: the outcome of the action just
/// asked for (`action` row id, or the `refused` code), the buttons, and
/// the resource's recent actions.
pub fn panel(
    app: &App,
    actor: &Actor,
    r: &Resource,
    recent: &[ActionRow],
    action: Option<i64>,
    refused: Option<&str>,
) -> Markup {
    let shown = action.and_then(|id| recent.iter().find(|a| a.id.0 == id));
    let refused = refused.and_then(|c| refusal_text(c).map(|t| (c, t)));
    let power = buttons(app, actor, r);
    let path = format!("/resources/{}/act", r.id.0);
    let name = display_name(r);
    html! {
        @if let Some(a) = shown {
            @if a.state == "failed" {
                div.error role="alert" { (a.kind) " failed: " (a.error_code) ": " (a.error) }
            } @else {
                div.ok role="status" { (a.kind) " " (a.state) "." @if a.kind != "set_owner" { " The state below was re-read from the provider." } }
            }
        }
        @if let Some((code, text)) = refused {
            div.error role="alert" { "Not done (" (code) "): " (text) }
        }
        @if !power.is_empty() {
            div.actions {
                @for p in &power {
                    @if *p == PowerAction::Terminate {
                        form.inline method="post" action=(path) {
                            (csrf_field(actor))
                            input type="hidden" name="action" value="terminate";
                            input type="text" name="confirm" placeholder={"type " (name) " to terminate"} size="24" aria-label={"Type " (name) " to confirm termination"} required autocomplete="off";
                            button.danger type="submit" { "Terminate" }
                        }
                    } @else if *p == PowerAction::Start {
                        form.inline method="post" action=(path) {
                            (csrf_field(actor))
                            input type="hidden" name="action" value="start";
                            button.primary type="submit" { "Start" }
                        }
                    } @else {
                        form.inline method="post" action=(path) data-confirm={(label(*p)) " " (name) "?"} {
                            (csrf_field(actor))
                            input type="hidden" name="action" value=(p.as_str());
                            button type="submit" { (label(*p)) }
                        }
                    }
                }
            }
        }
        @if r.deleted_at.is_none() && r.observed.kind == ResourceKind::Instance
            && app.allows(actor, Action::CreateImage, Object::Resource(r)) {
            details.panel {
                summary { "Create an image of it" }
                form method="post" action={"/resources/" (r.id.0) "/image"} {
                    (csrf_field(actor))
                    input type="text" name="name" placeholder={(name) "-YYYYMMDD-HHMMSS"} size="28" maxlength="128" aria-label="Image name";
                    input type="text" name="description" placeholder="description" size="28" maxlength="255" aria-label="Image description";
                    label.inline { input type="checkbox" name="no_reboot" value="1"; " without rebooting" }
                    button type="submit" { "Create image" }
                    p.dim { "By default the instance reboots so its file systems are consistent in the image (a short outage). Without rebooting there is no outage, but files being written may be caught half-written." }
                }
            }
        }
        @if r.deleted_at.is_none() && r.observed.kind == ResourceKind::Image
            && app.allows(actor, Action::DeregisterImage, Object::Resource(r)) {
            form.inline method="post" action={"/resources/" (r.id.0) "/deregister"} {
                (csrf_field(actor))
                input type="text" name="confirm" placeholder={"type " (name) " to deregister"} size="24" aria-label={"Type " (name) " to confirm"} required autocomplete="off";
                button.danger type="submit" { "Deregister image" }
            }
        }
        @if recent.is_empty() {
            p.dim { "No actions on it yet." }
        } @else {
            table.grid {
                thead { tr { th { "When" } th { "Action" } th { "By" } th { "State" } th { "Result" } } }
                tbody { @for a in recent {
                    tr {
                        td { (time(Some(a.created_at))) }
                        td { (a.kind) @if let Some(o) = a.params.get("owner").and_then(|v| v.as_str()) { " → " (o) } @if let Some(x) = a.params.get("expires_at").and_then(|v| v.as_str()) { " → " (x) } }
                        td { (a.requested_by_name) }
                        td { (action_state(a)) }
                        td.wrap { @if a.state == "failed" { (a.error_code) ": " (a.error) } @else { span.dim.mono { (empty(&a.provider_request_id)) } } }
                    }
                } }
            }
        }
    }
}

/// The "Set owner" form, for those who manage the resource.
pub fn owner_form(app: &App, actor: &Actor, r: &Resource) -> Markup {
    html! {
        @if r.deleted_at.is_none() && app.allows(actor, Action::SetOwner, Object::Resource(r)) {
            form.inline method="post" action={"/resources/" (r.id.0) "/owner"} {
                (csrf_field(actor))
                input type="text" name="owner" value=(r.observed.owner) placeholder="ann or group:dev" size="16" aria-label="New owner" required;
                button type="submit" { "Set owner" }
            }
        }
    }
}

/// The resource's expiry and, for those who manage it, the forms that set
/// it ("in", "extend by", "never" where allowed).
pub fn expiry_field(app: &App, actor: &Actor, r: &Resource) -> Markup {
    use skyhold_core::expiry::{Expiry, EXPIRES_TAG};
    let tag = r.observed.tags.get(EXPIRES_TAG).map(String::as_str);
    let shown = match Expiry::from_tag(tag) {
        Expiry::Unset => "never set".to_owned(),
        Expiry::Never => "never".to_owned(),
        Expiry::At(t) => skyhold_core::rfc3339(t),
        Expiry::Unreadable => format!("{:?} (unreadable)", tag.unwrap_or_default()),
    };
    let action = format!("/resources/{}/expiry", r.id.0);
    html! {
        (shown)
        @if r.deleted_at.is_none()
            && skyhold_core::expiry::expirable(r.observed.kind)
            && app.allows(actor, Action::SetExpiry, Object::Resource(r))
        {
            " "
            form.inline method="post" action=(action) {
                (csrf_field(actor))
                input type="text" name="in" placeholder="3d" size="5" aria-label="Expire in (e.g. 3d, 8h)" required;
                button type="submit" { "Expire in" }
            }
            " "
            form.inline method="post" action=(action) {
                (csrf_field(actor))
                input type="text" name="extend" placeholder="2d" size="5" aria-label="Extend by (e.g. 2d)" required;
                button type="submit" { "Extend" }
            }
            @if app.allows(actor, Action::NeverExpire, Object::Resource(r)) {
                " "
                form.inline method="post" action=(action) {
                    (csrf_field(actor))
                    input type="hidden" name="never" value="1";
                    button type="submit" { "Never expire" }
                }
            }
        }
    }
}

/// The keep opt-out (honoured or only reported) and, for those allowed,
/// its forms.
pub fn keep_field(app: &App, actor: &Actor, r: &Resource, keep: &KeepStatus) -> Markup {
    let action = format!("/resources/{}/keep", r.id.0);
    let allowed =
        r.deleted_at.is_none() && app.allows(actor, Action::KeepResource, Object::Resource(r));
    html! {
        @match keep {
            KeepStatus::None => { span.dim { "no" } }
            KeepStatus::Trusted { reason, by, at } => {
                "kept: " (reason)
                @if !by.is_empty() { span.dim { " (set by " (by) " " (time(*at)) ")" } }
                @else { span.dim { " (the account trusts the tag)" } }
            }
            KeepStatus::Untrusted { reason } => {
                "kept: " (reason) " "
                span.error { "set outside skyhold: not honoured" }
            }
        }
        @if allowed {
            " "
            form.inline method="post" action=(action) {
                (csrf_field(actor))
                input type="text" name="reason" placeholder="why it must stay" size="18" maxlength="256" aria-label="Why it must stay" required;
                button type="submit" { "Keep" }
            }
            @if !matches!(keep, KeepStatus::None) {
                " "
                form.inline method="post" action=(action) {
                    (csrf_field(actor))
                    input type="hidden" name="off" value="1";
                    button type="submit" { "Stop keeping" }
                }
            }
        }
    }
}

/// Where the detail page goes after an action: the action's row, or the
/// stable code of the refusal. Refusals that hide or forbid the resource
/// are error pages (403/404).
fn after_action(
    app: &App,
    actor: &Actor,
    id: i64,
    result: Result<ActionRow, AppError>,
) -> Result<Response, PageError> {
    let detail = format!("/resources/{id}");
    match result {
        Ok(a) => Ok(Redirect::to(&href(
            &format!("{detail}#actions"),
            &[("action", &a.id.0.to_string())],
        ))
        .into_response()),
        Err(e @ (AppError::Forbidden(_) | AppError::NotFound(_))) => {
            Ok(failed(app, actor, "", e, &detail))
        }
        Err(e @ (AppError::Unauthenticated | AppError::Internal(_))) => Err(e.into()),
        Err(e) => Ok(Redirect::to(&href(
            &format!("{detail}#actions"),
            &[("refused", e.code())],
        ))
        .into_response()),
    }
}

fn resource_id(raw: &str) -> Result<i64, AppError> {
    raw.parse::<i64>()
        .map_err(|_| AppError::bad_parameter("id", format!("not a resource id: {raw:?}")))
}

/// One button of the detail page: `action` (start, stop, reboot,
/// terminate) and, for terminate, `confirm` (the name or id typed back).
async fn act(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let id = resource_id(&id)?;
    let power = match PowerAction::parse(f.get("action").trim()) {
        Some(p) => p,
        None => {
            let e = AppError::bad_parameter("action", "use start, stop, reboot or terminate");
            return Ok(failed(&app, &actor, "", e, &format!("/resources/{id}")));
        }
    };
    let confirm = Some(f.get("confirm")).filter(|c| !c.trim().is_empty());
    let result = app
        .act(&actor, ResourceId(id), Op::Power(power), confirm)
        .await;
    after_action(&app, &actor, id, result)
}

async fn set_owner(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let id = resource_id(&id)?;
    let owner = f.get("owner").trim().to_owned();
    let result = app
        .act(&actor, ResourceId(id), Op::SetOwner(owner), None)
        .await;
    match result {
        // A name that is no user or group: said as such, with the way back.
        Err(e @ AppError::BadParameter { .. }) => {
            Ok(failed(&app, &actor, "", e, &format!("/resources/{id}")))
        }
        other => after_action(&app, &actor, id, other),
    }
}

/// The expiry forms: one of `in`, `at`, `extend` or `never=1`.
async fn set_expiry(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let id = resource_id(&id)?;
    let back = format!("/resources/{id}");
    let given = |k: &str| Some(f.get(k)).filter(|v| !v.trim().is_empty());
    let req = match crate::app::parse_expiry_request(
        given("in"),
        given("at"),
        given("extend"),
        f.get("never") == "1",
    ) {
        Ok(r) => r,
        Err(e) => return Ok(failed(&app, &actor, "", e, &back)),
    };
    match app.set_expiry(&actor, ResourceId(id), req).await {
        // What was wrong with the value, said in full, with the way back.
        Err(
            e @ (AppError::BadParameter { .. }
            | AppError::BadRequest(_)
            | AppError::TtlExceedsMax(_)
            | AppError::InvalidState(_)),
        ) => Ok(failed(&app, &actor, "", e, &back)),
        other => after_action(&app, &actor, id, other),
    }
}

/// The keep forms: `reason`, or `off=1` to remove it.
async fn set_keep(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let id = resource_id(&id)?;
    let reason = (f.get("off") != "1").then(|| f.get("reason").trim().to_owned());
    match app.set_keep(&actor, ResourceId(id), reason).await {
        Err(e @ (AppError::BadParameter { .. } | AppError::BadRequest(_))) => {
            Ok(failed(&app, &actor, "", e, &format!("/resources/{id}")))
        }
        other => after_action(&app, &actor, id, other),
    }
}

async fn create_image(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let id = resource_id(&id)?;
    let name = match f.get("name").trim() {
        "" => match app.default_image_name(&actor, ResourceId(id)).await {
            Ok(n) => n,
            Err(e) => return after_action(&app, &actor, id, Err(e)),
        },
        n => n.to_owned(),
    };
    let op = Op::CreateImage {
        name,
        description: f.get("description").trim().to_owned(),
        no_reboot: f.get("no_reboot") == "1",
    };
    let result = app.act(&actor, ResourceId(id), op, None).await;
    match result {
        Err(e @ AppError::BadParameter { .. }) => {
            Ok(failed(&app, &actor, "", e, &format!("/resources/{id}")))
        }
        other => after_action(&app, &actor, id, other),
    }
}

async fn deregister(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let id = resource_id(&id)?;
    let confirm = Some(f.get("confirm")).filter(|c| !c.trim().is_empty());
    let result = app
        .act(&actor, ResourceId(id), Op::Deregister, confirm)
        .await;
    after_action(&app, &actor, id, result)
}

/// The selected rows of a bulk form (`id`, repeated), at most [`BULK_MAX`],
/// each once.
fn selected(f: &Fields) -> Result<Vec<ResourceId>, AppError> {
    let mut ids: Vec<ResourceId> = Vec::new();
    for raw in f.all("id") {
        let id = resource_id(raw.trim())?;
        if !ids.iter().any(|x| x.0 == id) {
            ids.push(ResourceId(id));
        }
    }
    if ids.is_empty() {
        return Err(AppError::bad_parameter("id", "select at least one row"));
    }
    if ids.len() > BULK_MAX {
        return Err(AppError::bad_parameter(
            "id",
            format!("at most {BULK_MAX} rows at once"),
        ));
    }
    Ok(ids)
}

/// The per-row report of a bulk request.
fn report(
    app: &App,
    actor: &Actor,
    what: &str,
    rows: &[(ResourceId, Result<ActionRow, AppError>)],
    back: &str,
) -> Markup {
    let ok = rows.iter().filter(|(_, r)| r.is_ok()).count();
    let body = html! {
        h1 { (what) ": " (ok) " of " (rows.len()) " succeeded" }
        table.grid.bulk-report {
            thead { tr { th { "Resource" } th { "Outcome" } th { "Details" } } }
            tbody { @for (id, r) in rows {
                tr {
                    @match r {
                        Ok(a) => {
                            td { a href={"/resources/" (id.0)} { (if a.resource_name.is_empty() { &a.provider_id } else { &a.resource_name }) } " " span.dim.mono { (a.provider_id) } }
                            td { @if a.state == "failed" { span.badge.s-bad { "failed" } } @else { span.badge.s-good { "succeeded" } } }
                            td.wrap { @if a.state == "failed" { (a.error_code) ": " (a.error) } @else { (a.kind) " " (a.state) } }
                        }
                        Err(e) => {
                            td { a href={"/resources/" (id.0)} { "resource " (id.0) } }
                            td { span.badge.s-bad { "refused" } }
                            td.wrap { (e.code()) ": " (e.to_string()) }
                        }
                    }
                }
            } }
        }
        p { a href=(back) { "« Back to the list" } }
    };
    page(what, Some((actor, &app.enabled_kinds())), "", body)
}

/// The list pages' bulk form: `action` (start, stop, reboot) on every
/// selected `id`, each through `App::act` on its own.
async fn bulk(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let back = local_path(f.get("back"), "/instances");
    let parsed = (|| {
        let action = f.get("action").trim();
        let ttl = || -> Result<i64, AppError> {
            skyhold_core::search::parse_duration(f.get("ttl").trim())
                .map_err(|m| AppError::bad_parameter("ttl", m))
        };
        let op = match (action, PowerAction::parse(action)) {
            ("expire", _) => Op::Expire(skyhold_core::expiry::ExpiryRequest::In(ttl()?)),
            ("extend", _) => Op::Expire(skyhold_core::expiry::ExpiryRequest::Extend(ttl()?)),
            (_, Some(PowerAction::Terminate)) => {
                return Err(AppError::bad_parameter(
                    "action",
                    "terminate one instance at a time, from its page (it asks for its name)",
                ))
            }
            (_, Some(p)) => Op::Power(p),
            (_, None) => {
                return Err(AppError::bad_parameter(
                    "action",
                    "use start, stop, reboot, expire or extend",
                ))
            }
        };
        Ok((op, selected(&f)?))
    })();
    let (op, ids) = match parsed {
        Ok(p) => p,
        Err(e) => return Ok(failed(&app, &actor, "", e, &back)),
    };
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        rows.push((id, app.act(&actor, id, op.clone(), None).await));
    }
    let what = match &op {
        Op::Power(p) => format!("Bulk {}", p.as_str()),
        _ => format!("Bulk {} {}", f.get("action").trim(), f.get("ttl").trim()),
    };
    Ok(report(&app, &actor, &what, &rows, &back).into_response())
}

// ---------------------------------------------------------------- orphans

/// The orphans query: `is:orphan` and whatever else was asked (`q`
/// words, `kind`, `account`, paging).
fn orphan_query(pairs: &[(String, String)]) -> Result<(ResourceQuery, String), AppError> {
    let extra = pairs
        .iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let q = format!("is:orphan {extra}");
    let rest = pairs.iter().filter(|(k, _)| k != "q");
    let q = ResourceQuery::from_pairs(
        std::iter::once(("q", q.as_str())).chain(rest.map(|(k, v)| (k.as_str(), v.as_str()))),
    )?;
    Ok((q, extra))
}

async fn orphans(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let (q, extra) = orphan_query(&pairs)?;
    let found = app.list_resources(&actor, &q).await?;
    let claimable: Vec<bool> = found
        .items
        .iter()
        .map(|r| app.allows(&actor, Action::SetOwner, Object::Resource(r)))
        .collect();
    let any = claimable.iter().any(|c| *c);
    let back = match raw.as_deref() {
        Some(r) if !r.is_empty() => format!("/orphans?{r}"),
        _ => "/orphans".to_owned(),
    };
    let next = found.next_cursor.as_ref().map(|c| {
        let mut p: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(k, _)| k != "cursor")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let c = c.encode();
        p.push(("cursor", &c));
        href("/orphans", &p)
    });
    let body = html! {
        h1 { "Orphaned resources" }
        p.dim { "Resources with no owner (no " code { "skyhold:owner" } " tag nor a configured owner tag) and no grant of their own: "
            a href=(href("/search", &[("q", "is:orphan")])) { "is:orphan" } " in the search. Only admins act on them until someone owns them." }
        form.filters method="get" action="/orphans" {
            input type="search" name="q" value=(extra) placeholder="narrow down: kind:instance, account:prod, words" aria-label="Search among orphans";
            button.primary type="submit" { "Filter" }
            a href="/orphans" { "Reset" }
        }
        @if found.items.is_empty() {
            p.dim { "No orphaned resources." }
        } @else {
            form method="post" action="/orphans/claim" {
                (csrf_field(&actor))
                input type="hidden" name="back" value=(back);
                table.grid {
                    thead { tr {
                        th { @if any { input type="checkbox" data-select-all aria-label="Select all"; } }
                        th { "Kind" } th { "Account" } th { "Region" } th { "Name" } th { "ID" } th { "State" } th { "Created" }
                    } }
                    tbody { @for (r, may) in found.items.iter().zip(&claimable) {
                        tr {
                            td { @if *may { input type="checkbox" name="id" value=(r.id.0) aria-label={"Select " (display_name(r))}; } }
                            td { (r.observed.kind.as_str()) }
                            td { (r.account) }
                            td { (r.region) }
                            td { a href={"/resources/" (r.id.0)} { (display_name(r)) } }
                            td.mono { (r.observed.provider_id) }
                            td { (state_badge(&r.observed.state)) }
                            td { (time(r.observed.created_at)) }
                        }
                    } }
                }
                @if any {
                    div.filters.bulkbar {
                        "Assign the selected rows to "
                        input type="text" name="owner" placeholder="ann or group:dev" size="16" aria-label="Owner" required;
                        button.primary type="submit" { "Set owner" }
                        span.dim { "writes the " code { "skyhold:owner" } " tag in the cloud" }
                    }
                }
            }
        }
        @if let Some(n) = &next {
            div.pager { a href=(n) { "Next page »" } }
        }
    };
    Ok(page(
        "Orphaned resources",
        Some((&actor, &app.enabled_kinds())),
        "orphans",
        body,
    ))
}

/// Claim or adopt: `owner` set on every selected `id` (`Op::SetOwner`).
async fn claim(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let back = local_path(f.get("back"), "/orphans");
    let parsed = (|| Ok::<_, AppError>((f.required("owner")?.to_owned(), selected(&f)?)))();
    let (owner, ids) = match parsed {
        Ok(p) => p,
        Err(e) => return Ok(failed(&app, &actor, "orphans", e, &back)),
    };
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        let op = Op::SetOwner(owner.clone());
        rows.push((id, app.act(&actor, id, op, None).await));
    }
    let what = format!("Set owner {owner}");
    Ok(report(&app, &actor, &what, &rows, &back).into_response())
}

/// Whether a list row gets a bulk checkbox: an instance the actor may
/// operate (the bulk actions are start, stop and reboot).
pub fn bulk_selectable(app: &App, actor: &Actor, r: &Resource) -> bool {
    let o = Object::Resource(r);
    r.deleted_at.is_none()
        && ((r.observed.kind == ResourceKind::Instance
            && app.allows(actor, Action::StopResource, o))
            || (skyhold_core::expiry::expirable(r.observed.kind)
                && app.allows(actor, Action::SetExpiry, o)))
}

/// The controls under a list's table when some rows are selectable.
/// Power actions are offered where the list can hold instances (`kind`
/// instance, or any kind); expiry wherever its kind can expire.
pub fn bulk_bar(back: &str, kind: Option<ResourceKind>) -> Markup {
    let power = kind.is_none_or(|k| k == ResourceKind::Instance);
    let expiry = kind.is_none_or(skyhold_core::expiry::expirable);
    html! {
        div.filters.bulkbar {
            input type="hidden" name="back" value=(back);
            "With the selected rows: "
            select name="action" aria-label="Bulk action" {
                @if power {
                    option value="stop" { "Stop" }
                    option value="start" { "Start" }
                    option value="reboot" { "Reboot" }
                }
                @if expiry {
                    option value="expire" { "Expire in…" }
                    option value="extend" { "Extend by…" }
                }
            }
            @if expiry {
                input type="text" name="ttl" placeholder="3d" size="5" aria-label="Expire in or extend by (e.g. 3d, 8h)";
            }
            button type="submit" { "Apply" }
            span.dim { "each row is checked and acted on by itself; the result lists every row" }
        }
    }
}
