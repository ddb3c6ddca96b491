//! The pages of self-service launch: Blueprints (everyone sees those they
//! may; admins create, edit and delete them), the launch form of a
//! blueprint (its preview shows, before anything is submitted, the quota
//! the launch takes and what remains, and the equivalent command lines),
//! Launches, and Quotas (admins edit defaults and overrides). Each handler
//! calls one `App` function; the check happens there.

use super::api_launch::{ttl_text, BlueprintBody};
use super::common::{PageError, PageResult};
use super::forms::{confirm_page, csrf_field, done, failed, href, notice, Fields};
use super::ui::{empty, page, state_badge, time};
use super::AppState;
use crate::app::{Action, Actor, App, LaunchPreview, Object};
use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use skyhold_core::blueprint::{BlueprintSpec, KeyMode};
use skyhold_core::launch::LaunchInput;
use skyhold_core::quota::{Applicable, Dimension};
use skyhold_core::LaunchId;
use skyhold_store::{BlueprintRow, LaunchRow};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/blueprints", get(blueprints).post(create_blueprint))
        .route("/blueprints/new", get(new_blueprint))
        .route(
            "/blueprints/{id}/edit",
            get(edit_blueprint).post(update_blueprint),
        )
        .route("/blueprints/{id}/delete", post(delete_blueprint))
        .route("/blueprints/{id}/launch", get(launch_form).post(launch))
        .route("/launches", get(launches))
        .route("/launches/{id}", get(launch_detail))
        .route("/quotas", get(quotas).post(set_quota))
        .route("/quotas/delete", post(delete_quota))
}

#[derive(Deserialize, Default)]
struct DoneQuery {
    done: Option<String>,
}

fn nav(app: &App, actor: &Actor, title: &str, active: &str, body: Markup) -> Markup {
    page(title, Some((actor, &app.enabled_kinds())), active, body)
}

// ------------------------------------------------------------ blueprints

const BLUEPRINT_NOTICES: &[(&str, &str)] = &[
    ("created", "Blueprint created."),
    ("updated", "Blueprint saved as a new version."),
    (
        "deleted",
        "Blueprint removed; servers launched from it keep what they were launched with.",
    ),
];

async fn blueprints(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Query(q): Query<DoneQuery>,
) -> PageResult {
    let all = app.blueprints(&actor).await?;
    let manage = app.allows(&actor, Action::ManageBlueprints, Object::None);
    let body = html! {
        h1 { "Blueprints" }
        (notice(q.done.as_deref(), BLUEPRINT_NOTICES))
        p.dim { "Launch presets defined by the admins. Launch from those you have operate on; see "
            a href="/launches" { "your launches" } " and " a href="/profile#quota" { "your quota" } "." }
        @if manage { p { a.button href="/blueprints/new" { "New blueprint" } } }
        @if all.is_empty() { p.dim { "No blueprints you may see." } } @else {
            table.grid {
                thead { tr { th { "Name" } th { "Version" } th { "Where" } th { "Image" } th { "Types" } th { "TTL" } th { "Description" } th {} } }
                tbody { @for b in &all {
                    @let s = &b.spec;
                    tr {
                        td { (s.name) }
                        td { (b.version) }
                        td { (s.accounts.join(", ")) " / " (s.regions.join(", ")) }
                        td.mono { (s.image) }
                        td { (s.instance_types.join(", ")) }
                        td { (ttl_text(s.default_ttl_ms).unwrap_or_else(|| "none".into())) @if let Some(m) = ttl_text(s.max_ttl_ms) { " (max " (m) ")" } }
                        td.wrap { (empty(&s.description)) }
                        td { div.rowforms {
                            @if app.allows(&actor, Action::LaunchFrom, Object::Blueprint(b.id)) {
                                a.button.primary href={"/blueprints/" (b.id) "/launch"} { "Launch" }
                            }
                            @if manage {
                                a href={"/blueprints/" (b.id) "/edit"} { "Edit" }
                                form.inline method="post" action={"/blueprints/" (b.id) "/delete"} data-confirm={"Remove blueprint " (s.name) "?"} {
                                    (csrf_field(&actor))
                                    input type="hidden" name="name" value=(s.name);
                                    button.link.danger type="submit" { "Remove" }
                                }
                            }
                        } }
                    }
                } }
            }
        }
    };
    Ok(nav(&app, &actor, "Blueprints", "blueprints", body))
}

/// A list field of the editor: comma- or space-separated.
fn words(v: &str) -> Value {
    Value::Array(
        v.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .map(|w| json!(w))
            .collect(),
    )
}

/// The editor's fields as the API's body, so both take one path.
fn body_of(f: &Fields) -> Result<BlueprintBody, AppError> {
    let mut m = Map::new();
    for k in [
        "name",
        "description",
        "image",
        "default_type",
        "login_user",
        "user_data",
        "default_ttl",
        "max_ttl",
        "dns_zone",
        "dns_name_pattern",
    ] {
        m.insert(k.into(), json!(f.get(k).trim()));
    }
    if !f.get("key_mode").trim().is_empty() {
        m.insert("key_mode".into(), json!(f.get("key_mode").trim()));
    }
    m.insert(
        "user_data".into(),
        json!(f.get("user_data").replace("\r\n", "\n")),
    );
    for k in [
        "account",
        "region",
        "instance_types",
        "subnet_ids",
        "security_group_ids",
        "packages",
    ] {
        m.insert(k.into(), words(f.get(k)));
    }
    for k in ["root_volume_gib", "max_root_volume_gib"] {
        let v = f.get(k).trim();
        if !v.is_empty() {
            let n: u32 = v
                .parse()
                .map_err(|_| AppError::bad_parameter(k, "a whole number of GiB"))?;
            m.insert(k.into(), json!(n));
        }
    }
    let mut tags = Map::new();
    for line in f
        .get("tags")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let Some((k, v)) = line.split_once('=') else {
            return Err(AppError::InvalidBlueprint {
                field: "tags".into(),
                message: format!(
                    "{:?}: write one KEY=VALUE per line",
                    skyhold_core::clip(line, 60)
                ),
            });
        };
        tags.insert(k.trim().to_owned(), json!(v.trim()));
    }
    m.insert("tags".into(), Value::Object(tags));
    serde_json::from_value(Value::Object(m)).map_err(|e| AppError::BadRequest(e.to_string()))
}

fn editor(actor: &Actor, action: &str, b: Option<&BlueprintRow>) -> Markup {
    let s = b.map(|b| b.spec.clone());
    let v = |f: fn(&BlueprintSpec) -> String| s.as_ref().map(f).unwrap_or_default();
    let tags = s
        .as_ref()
        .map(|s| {
            s.tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let key_mode = s.as_ref().map(|s| s.key_mode).unwrap_or_default();
    html! {
        form.panel.editor method="post" action=(action) {
            (csrf_field(actor))
            @if let Some(b) = b { input type="hidden" name="version" value=(b.version); }
            label { "Name" input type="text" name="name" value=(v(|s| s.name.clone())) required; }
            label { "Description" input type="text" name="description" value=(v(|s| s.description.clone())) size="50"; }
            label { "Accounts (the first is the default)" input type="text" name="account" value=(v(|s| s.accounts.join(", "))) required; }
            label { "Regions (the first is the default)" input type="text" name="region" value=(v(|s| s.regions.join(", "))) required; }
            label { "Image: ami-… or newest:PATTERN" input type="text" name="image" value=(v(|s| s.image.clone())) required; }
            label { "Allowed instance types (t3.*)" input type="text" name="instance_types" value=(v(|s| s.instance_types.join(", "))) required; }
            label { "Default type" input type="text" name="default_type" value=(v(|s| s.default_type.clone())) required; }
            label { "Subnets" input type="text" name="subnet_ids" value=(v(|s| s.subnet_ids.join(", "))); }
            label { "Security groups" input type="text" name="security_group_ids" value=(v(|s| s.security_group_ids.join(", "))); }
            label { "Root volume GiB (default)" input type="number" min="1" name="root_volume_gib" value=(v(|s| s.root_volume_gib.map(|g| g.to_string()).unwrap_or_default())); }
            label { "Root volume GiB (maximum)" input type="number" min="1" name="max_root_volume_gib" value=(v(|s| s.max_root_volume_gib.map(|g| g.to_string()).unwrap_or_default())); }
            label { "Key pair" select name="key_mode" {
                option value="owner_key" selected[key_mode == KeyMode::OwnerKey] { "the owner's SSH key" }
                option value="none" selected[key_mode == KeyMode::None] { "none" }
            } }
            label { "Login user for ssh" input type="text" name="login_user" value=(v(|s| s.login_user.clone())) required; }
            label { "Default TTL (8h, 2d; empty: none)" input type="text" name="default_ttl" value=(v(|s| ttl_text(s.default_ttl_ms).unwrap_or_default())); }
            label { "Maximum TTL" input type="text" name="max_ttl" value=(v(|s| ttl_text(s.max_ttl_ms).unwrap_or_default())); }
            label { "Packages a user may tick" input type="text" name="packages" value=(v(|s| s.packages.join(", "))); }
            label { "DNS zone (Route 53 id or name)" input type="text" name="dns_zone" value=(v(|s| s.dns_zone.clone())); }
            label { "DNS name pattern ({{name}}.dev.example.com)" input type="text" name="dns_name_pattern" value=(v(|s| s.dns_name_pattern.clone())); }
            label { "User data: cloud-init or a script; {{name}}, {{owner}}, {{fqdn}}" textarea name="user_data" rows="8" cols="70" { (v(|s| s.user_data.clone())) } }
            label { "Extra tags, one KEY=VALUE per line" textarea name="tags" rows="3" cols="40" { (tags) } }
            button.primary type="submit" { @if b.is_some() { "Save as a new version" } @else { "Create blueprint" } }
            a href="/blueprints" { "Cancel" }
        }
    }
}

async fn new_blueprint(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> PageResult {
    app.authorize(&actor, Action::ManageBlueprints, Object::None)
        .await?;
    let body = html! { h1 { "New blueprint" } (editor(&actor, "/blueprints", None)) };
    Ok(nav(&app, &actor, "New blueprint", "blueprints", body))
}

async fn create_blueprint(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    // The form's errors come after the check (who may not create learns
    // nothing from them).
    let spec = body_of(&f).and_then(|b| b.apply(None));
    Ok(match app.create_blueprint(&actor, spec).await {
        Ok(_) => done("/blueprints", "created"),
        Err(e @ (AppError::Forbidden(_) | AppError::Unauthenticated)) => {
            failed(&app, &actor, "blueprints", e, "/blueprints")
        }
        Err(e) => failed(&app, &actor, "blueprints", e, "/blueprints/new"),
    })
}

async fn edit_blueprint(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> PageResult {
    let b = app.blueprint(&actor, &id, None).await?;
    app.authorize(&actor, Action::ManageBlueprints, Object::Blueprint(b.id))
        .await?;
    let body = html! {
        h1 { "Edit blueprint " (b.spec.name) }
        p.dim { "Version " (b.version) ". Saving writes version " (b.version + 1) "; servers launched from earlier versions keep what they were launched with." }
        (editor(&actor, &format!("/blueprints/{}/edit", b.id), Some(&b)))
    };
    Ok(nav(&app, &actor, "Edit blueprint", "blueprints", body))
}

async fn update_blueprint(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let back = format!("/blueprints/{id}/edit");
    let expected = f.get("version").trim().parse::<i64>().ok();
    let result = app
        .update_blueprint(&actor, &id, expected, |current| {
            body_of(&f).and_then(|b| b.apply(Some(current.clone())))
        })
        .await;
    Ok(match result {
        Ok(_) => done("/blueprints", "updated"),
        Err(e @ (AppError::Forbidden(_) | AppError::NotFound(_) | AppError::Unauthenticated)) => {
            failed(&app, &actor, "blueprints", e, "/blueprints")
        }
        Err(e) => failed(&app, &actor, "blueprints", e, &back),
    })
}

async fn delete_blueprint(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    // Asked only of those who may: the others are refused (or, when they
    // cannot see it, told it does not exist).
    let allowed = match app.blueprint(&actor, &id, None).await {
        Ok(b) => {
            app.authorize(&actor, Action::ManageBlueprints, Object::Blueprint(b.id))
                .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = allowed {
        return Ok(failed(&app, &actor, "blueprints", e, "/blueprints"));
    }
    if !f.confirmed() {
        let name = skyhold_core::clip(f.get("name"), 100);
        return Ok(confirm_page(
            &app,
            &actor,
            "blueprints",
            &format!("Remove blueprint {name:?}? Servers launched from it keep running."),
            &format!("/blueprints/{id}/delete"),
            &f,
            "Remove blueprint",
            "/blueprints",
        ));
    }
    Ok(match app.delete_blueprint(&actor, &id).await {
        Ok(()) => done("/blueprints", "deleted"),
        Err(e) => failed(&app, &actor, "blueprints", e, "/blueprints"),
    })
}

// ---------------------------------------------------------------- launch

/// The launch form's values (from the query of a preview, or the posted
/// form).
fn input_of(pairs: &[(String, String)]) -> Result<LaunchInput, AppError> {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let num = |k: &str| -> Result<Option<u32>, AppError> {
        get(k)
            .map(|v| {
                v.parse::<u32>()
                    .map_err(|_| AppError::bad_parameter(k, "a whole number"))
            })
            .transpose()
    };
    Ok(LaunchInput {
        name: get("name").unwrap_or_default(),
        instance_type: get("type"),
        count: num("count")?,
        packages: pairs
            .iter()
            .filter(|(k, _)| k == "package")
            .map(|(_, v)| v.clone())
            .collect(),
        ttl: get("ttl"),
        owner: get("owner"),
        account: get("account"),
        region: get("region"),
        root_volume_gib: num("root_volume_gib")?,
        key: get("key"),
    })
}

fn dim_name(d: Dimension) -> &'static str {
    match d {
        Dimension::Instances => "instances",
        Dimension::Vcpus => "vCPUs",
        Dimension::MemoryGib => "memory GiB",
        Dimension::VolumeGib => "volume GiB",
    }
}

/// Limits, usage and what is left of each quota, with what a launch would
/// add (`request`).
pub fn quota_table(quotas: &[Applicable], request: Option<&skyhold_core::quota::Amount>) -> Markup {
    html! {
        @if quotas.iter().all(|a| a.limits.is_unlimited()) {
            p.dim { "No quota limits this." }
        } @else {
            table.grid {
                thead { tr { th { "Quota" } th { "From" } th { "Dimension" } th { "In use" }
                    @if request.is_some() { th { "This launch" } th { "Left after" } } @else { th { "Left" } }
                    th { "Limit" } } }
                tbody { @for a in quotas { @for d in Dimension::ALL { @if let Some(limit) = a.limits.get(d) {
                    @let used = a.usage.get(d);
                    @let req = request.map(|r| r.get(d)).unwrap_or(0);
                    @let over = used + req > limit;
                    tr class=[over.then_some("deleted")] {
                        td { (a.subject.to_string()) }
                        td { (a.source.to_string()) }
                        td { (dim_name(d)) }
                        td { (used) }
                        @if request.is_some() { td { "+" (req) } }
                        td { @if over { strong { "over by " (used + req - limit) } } @else { (limit - used - req) } }
                        td { (limit) }
                    }
                } } } }
            }
        }
    }
}

fn preview_panel(p: &LaunchPreview) -> Markup {
    html! {
        section.preview {
            h2 { "Before you launch" }
            dl.facts {
                dt { "Servers" } dd { @for (i, s) in p.servers.iter().enumerate() { @if i > 0 { ", " } (s.name) @if let Some(f) = &s.fqdn { " (" (f) ")" } } }
                dt { "Where" } dd { (p.account) " / " (p.region) }
                dt { "Image" } dd.mono { (p.image.id) " " span.dim { (p.image.name) } }
                dt { "Type" } dd { (p.instance_type) }
                dt { "Owner" } dd { (p.owner) @if p.owner != p.creator { " (launched by " (p.creator) ")" } }
                dt { "Expires" } dd { (p.expires_at.clone().unwrap_or_else(|| "never".into())) }
                dt { "Key pair" } dd { (p.key_name.clone().unwrap_or_else(|| "none (add a key on your profile)".into())) }
            }
            h3 { "Quota" }
            (quota_table(&p.quotas, Some(&p.request)))
            @if let Some(e) = &p.exceeded {
                div.error role="alert" { "This launch would be refused: " (e.to_string()) }
            }
            h3 { "Cost and budget" }
            p {
                "Until the end of the month: "
                @match p.month_cost_usd {
                    Some(c) => { strong { (format!("${c:.2}")) } " at list price" }
                    None => { "unpriced (no price for " (p.instance_type) " in " (p.region) ")" }
                }
            }
            @if !p.budgets.is_empty() {
                table {
                    thead { tr { th { "Budget" } th { "Limit" } th { "Spent" } th { "Projected" } th { "Left" } } }
                    tbody {
                        @for b in &p.budgets {
                            tr {
                                td { (b.subject) @if b.source != b.subject { " (" (b.source) ")" } }
                                td { (format!("${:.2}", b.limit_usd)) }
                                td { (format!("${:.2}", b.spend_usd)) }
                                td { (format!("${:.2}", b.projected_usd)) }
                                td { (format!("${:.2}", (b.limit_usd - b.projected_usd - p.month_cost_usd.unwrap_or(0.0)).max(0.0))) }
                            }
                        }
                    }
                }
            }
            @if let Some(b) = &p.budget_exceeded {
                div.error role="alert" { "This launch would be refused: " (b.to_string()) }
            }
            h3 { "The same from the command line" }
            pre.command { (p.commands.skyhold) }
            @for c in &p.commands.aws { pre.command { (c) } }
        }
    }
}

async fn launch_form(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    form_page(&app, &actor, &id, &pairs).await
}

/// The launch form with the values `pairs` and, below it, the preview of
/// what they would launch and take (or why they would be refused).
async fn form_page(app: &App, actor: &Actor, id: &str, pairs: &[(String, String)]) -> PageResult {
    let (app, actor) = (app, actor);
    let b = app.blueprint(actor, id, None).await?;
    app.authorize(actor, Action::LaunchFrom, Object::Blueprint(b.id))
        .await?;
    let input = input_of(pairs)?;
    let s = &b.spec;
    // The preview: for the values given, or the blueprint's defaults with
    // an example name; a refusal is shown in place of it.
    let mut shown = input.clone();
    if shown.name.is_empty() {
        shown.name = format!(
            "{}-1",
            actor
                .username
                .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-")
        );
    }
    let preview = app.preview_launch(actor, id, &shown).await;
    let me = app.me(actor).await?;
    let action = format!("/blueprints/{}/launch", b.id);
    let value = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let body = html! {
        p.dim { a href="/blueprints" { "Blueprints" } " / " (s.name) " (version " (b.version) ")" }
        h1 { "Launch from " (s.name) }
        @if !s.description.is_empty() { p { (s.description) } }
        form.panel.editor method="post" action=(action) {
            (csrf_field(actor))
            label { "Name" input type="text" name="name" value=(shown.name) required pattern="[A-Za-z0-9][A-Za-z0-9._-]*" maxlength="63"; }
            label { "Type" select name="type" {
                @for t in s.instance_types.iter().filter(|t| !t.contains('*')) {
                    option selected[input.instance_type.as_deref().unwrap_or(&s.default_type) == t] { (t) }
                }
                @if !s.instance_types.contains(&s.default_type) { option selected[input.instance_type.is_none()] { (s.default_type) } }
                @if let Some(t) = input.instance_type.as_ref().filter(|t| !s.instance_types.contains(t) && **t != s.default_type) { option selected { (t) } }
            } span.dim { " allowed: " (s.instance_types.join(", ")) } }
            label { "Count" input type="number" name="count" min="1" max=(skyhold_core::launch::MAX_COUNT) value=(input.count.unwrap_or(1)); }
            @if s.accounts.len() > 1 { label { "Account" select name="account" { @for a in &s.accounts { option selected[input.account.as_ref() == Some(a)] { (a) } } } } }
            @if s.regions.len() > 1 { label { "Region" select name="region" { @for r in &s.regions { option selected[input.region.as_ref() == Some(r)] { (r) } } } } }
            @if !s.packages.is_empty() {
                fieldset { legend { "Packages" }
                    @for pk in &s.packages { label.inline { input type="checkbox" name="package" value=(pk) checked[input.packages.contains(pk)]; " " (pk) } }
                }
            }
            label { "Time to live (8h, 3d" @if s.max_ttl_ms.is_none() { ", never" } ")"
                input type="text" name="ttl" value=(value("ttl")) placeholder=(ttl_text(s.default_ttl_ms).unwrap_or_else(|| "never".into())) size="8";
                @if let Some(m) = ttl_text(s.max_ttl_ms) { span.dim { " at most " (m) } }
            }
            @if s.max_root_volume_gib.is_some() {
                label { "Root volume GiB" input type="number" name="root_volume_gib" min="1" max=(s.max_root_volume_gib.unwrap_or(16384)) value=(value("root_volume_gib")) placeholder=(s.root_volume_gib.map(|g| g.to_string()).unwrap_or_default()); }
            }
            @if s.key_mode == KeyMode::OwnerKey && me.ssh_keys.len() > 1 {
                label { "SSH key" select name="key" { @for k in me.ssh_keys.iter().rev() { option value=(k.fingerprint) selected[input.key.as_deref() == Some(k.fingerprint.as_str())] { (k.name) " " (k.fingerprint) } } } }
            }
            label { "On behalf of (a user or group:NAME; empty: yourself)" input type="text" name="owner" value=(value("owner")) size="16"; }
            div.actions {
                button type="submit" name="do" value="preview" { "Preview" }
                button.primary type="submit" name="do" value="launch" { "Launch" }
            }
        }
        @match &preview {
            Ok(p) => (preview_panel(p)),
            Err(e) => div.error role="alert" { "With these values the launch would be refused: " (e.to_string()) },
        }
    };
    Ok(nav(app, actor, "Launch", "blueprints", body))
}

/// The launch form's buttons: Preview shows the form again with its
/// preview; Launch launches.
async fn launch(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .into_owned()
        .filter(|(k, _)| k != "csrf")
        .collect();
    if f.get("do") != "launch" {
        return Ok(form_page(&app, &actor, &id, &pairs).await?.into_response());
    }
    let back = href(
        &format!("/blueprints/{id}/launch"),
        &pairs
            .iter()
            .filter(|(k, _)| k != "do")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    );
    let result = match input_of(&pairs) {
        Ok(input) => app.launch(&actor, &id, &input).await,
        Err(e) => Err(e),
    };
    Ok(match result {
        Ok(l) => Redirect::to(&format!("/launches/{}", l.id)).into_response(),
        Err(e) => failed(&app, &actor, "blueprints", e, &back),
    })
}

fn servers(l: &LaunchRow) -> Markup {
    html! {
        table.grid {
            thead { tr { th { "#" } th { "Name" } th { "Instance" } th { "State at launch" } th { "Private IP" } th { "Public IP" } } }
            tbody { @for i in l.instances.as_array().into_iter().flatten() {
                tr {
                    td { (i["index"]) }
                    td { (i["name"].as_str().unwrap_or("")) }
                    td.mono { a href={"/search?q=" (i["provider_id"].as_str().unwrap_or(""))} { (i["provider_id"].as_str().unwrap_or("")) } }
                    td { (state_badge(i["state"].as_str().unwrap_or(""))) }
                    td.mono { (empty(i["private_ip"].as_str().unwrap_or(""))) }
                    td.mono { (empty(i["public_ip"].as_str().unwrap_or(""))) }
                }
            } }
        }
    }
}

async fn launch_detail(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> PageResult {
    let id = id
        .parse::<i64>()
        .map(LaunchId)
        .map_err(|_| AppError::bad_parameter("id", "not a launch id"))?;
    let l = app.launch_row(&actor, id).await?;
    let body = html! {
        p.dim { a href="/launches" { "Launches" } " / " (l.id) }
        h1 { "Launch " (l.id) ": " (l.name) " " (state_badge(&l.state)) }
        @if !l.error.is_empty() { div.error role="alert" { (l.error_code) ": " (l.error) } }
        dl.facts {
            dt { "Blueprint" } dd { (l.blueprint_name) "@" (l.blueprint_version) }
            dt { "Where" } dd { (l.account) " / " (l.region) }
            dt { "Type" } dd { (l.instance_type) " × " (l.count) }
            dt { "Owner" } dd { (l.owner) }
            dt { "Launched by" } dd { (l.requested_by_name) }
            dt { "Expires" } dd { (l.params["expires_at"].as_str().unwrap_or("never")) }
            dt { "Asked at" } dd { (time(Some(l.created_at))) }
            dt { "Settled at" } dd { (time(l.finished_at)) }
        }
        h2 { "Servers" }
        (servers(&l))
    };
    Ok(nav(&app, &actor, "Launch", "blueprints", body))
}

async fn launches(State(app): State<AppState>, Extension(actor): Extension<Actor>) -> PageResult {
    let (rows, _) = app.launches(&actor, None, None, None, 200).await?;
    let body = html! {
        h1 { "Launches" }
        @if rows.is_empty() { p.dim { "No launches you may see yet. " a href="/blueprints" { "Launch from a blueprint" } "." } } @else {
            table.grid {
                thead { tr { th { "Id" } th { "Name" } th { "Blueprint" } th { "Owner" } th { "By" } th { "Servers" } th { "State" } th { "When" } } }
                tbody { @for l in &rows {
                    tr {
                        td { a href={"/launches/" (l.id)} { (l.id) } }
                        td { (l.name) }
                        td { (l.blueprint_name) "@" (l.blueprint_version) }
                        td { (l.owner) }
                        td { (l.requested_by_name) }
                        td { (l.instances.as_array().map_or(0, Vec::len)) " of " (l.count) }
                        td { (state_badge(&l.state)) }
                        td { (time(Some(l.created_at))) }
                    }
                } }
            }
        }
    };
    Ok(nav(&app, &actor, "Launches", "blueprints", body))
}

// ----------------------------------------------------------------- quotas

const QUOTA_NOTICES: &[(&str, &str)] = &[("set", "Quota saved."), ("deleted", "Quota removed.")];

async fn quotas(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Query(q): Query<DoneQuery>,
) -> PageResult {
    let all = app.quotas(&actor).await?;
    let manage = app.allows(&actor, Action::ManageQuotas, Object::None);
    let lim = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    let body = html! {
        h1 { "Quotas" }
        (notice(q.done.as_deref(), QUOTA_NOTICES))
        p.dim { "A launch must fit every quota that applies: the user's own (override, else default:user) and each of their groups' (override, else default:group). The tightest wins." }
        table.grid {
            thead { tr { th { "Subject" } th { "Instances" } th { "vCPUs" } th { "Memory GiB" } th { "Volume GiB" } th { "Updated" } @if manage { th {} } } }
            tbody { @for r in &all {
                tr {
                    td { (r.subject.to_string()) }
                    td { (lim(r.limits.instances)) } td { (lim(r.limits.vcpus)) } td { (lim(r.limits.memory_gib)) } td { (lim(r.limits.volume_gib)) }
                    td { (time(Some(r.updated_at))) }
                    @if manage { td {
                        form.inline method="post" action="/quotas/delete" data-confirm={"Remove the quota of " (r.subject.to_string()) "?"} {
                            (csrf_field(&actor))
                            input type="hidden" name="subject" value=(r.subject.to_string());
                            button.link.danger type="submit" { "Remove" }
                        }
                    } }
                }
            } }
        }
        @if manage {
            h2 { "Set a quota" }
            form.panel method="post" action="/quotas" {
                (csrf_field(&actor))
                input type="text" name="subject" placeholder="default:user, user:ann, group:dev" size="22" aria-label="Subject" required;
                input type="number" min="0" name="instances" placeholder="instances" aria-label="Instances";
                input type="number" min="0" name="vcpus" placeholder="vCPUs" aria-label="vCPUs";
                input type="number" min="0" name="memory_gib" placeholder="memory GiB" aria-label="Memory GiB";
                input type="number" min="0" name="volume_gib" placeholder="volume GiB" aria-label="Volume GiB";
                button.primary type="submit" { "Save" }
                span.dim { " Empty: unlimited." }
            }
        }
    };
    Ok(nav(&app, &actor, "Quotas", "quotas", body))
}

async fn set_quota(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let mut limits = skyhold_core::quota::Limits::default();
    for (k, slot) in [
        ("instances", &mut limits.instances),
        ("vcpus", &mut limits.vcpus),
        ("memory_gib", &mut limits.memory_gib),
        ("volume_gib", &mut limits.volume_gib),
    ] {
        let v = f.get(k).trim();
        if v.is_empty() {
            continue;
        }
        match v.parse::<u64>() {
            Ok(n) => *slot = Some(n),
            Err(_) => {
                let e = AppError::bad_parameter(k, "a whole number, or empty for unlimited");
                return Ok(failed(&app, &actor, "quotas", e, "/quotas"));
            }
        }
    }
    Ok(
        match app.set_quota(&actor, f.get("subject"), limits).await {
            Ok(_) => done("/quotas", "set"),
            Err(e) => failed(&app, &actor, "quotas", e, "/quotas"),
        },
    )
}

async fn delete_quota(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    if let Err(e) = app
        .authorize(&actor, Action::ManageQuotas, Object::None)
        .await
    {
        return Ok(failed(&app, &actor, "quotas", e, "/quotas"));
    }
    if !f.confirmed() {
        return Ok(confirm_page(
            &app,
            &actor,
            "quotas",
            &format!(
                "Remove the quota of {}?",
                skyhold_core::clip(f.get("subject"), 80)
            ),
            "/quotas/delete",
            &f,
            "Remove quota",
            "/quotas",
        ));
    }
    Ok(match app.delete_quota(&actor, f.get("subject")).await {
        Ok(()) => done("/quotas", "deleted"),
        Err(e) => failed(&app, &actor, "quotas", e, "/quotas"),
    })
}
