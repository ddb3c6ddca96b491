//! Kind-specific parts of the detail pages (listeners, targets, a stack's
//! parameters, outputs and resources, an alarm's history, DNS values) and the
//! on-demand pages behind them: a stack's template download and a bucket's
//! object browser with presigned downloads.

use super::common::{KeyQuery, ObjectsQuery, PageError, PageResult};
use super::ui::{page, time};
use super::AppState;
use crate::app::Actor;
use crate::error::AppError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use maud::{html, Markup};
use serde_json::Value;
use skyhold_core::{AlarmHistoryItem, Resource, ResourceId, ResourceKind};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/resources/{id}/template", get(template))
        .route("/resources/{id}/objects", get(objects))
        .route("/resources/{id}/objects/download", get(download))
}

pub fn parse_id(raw: &str) -> Result<ResourceId, AppError> {
    raw.parse::<i64>()
        .map(ResourceId)
        .map_err(|_| AppError::bad_parameter("id", format!("not a resource id: {raw:?}")))
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A table of a list-of-objects attribute, one column per key.
fn objects_table(title: &str, list: Option<&Value>, cols: &[(&str, &str)]) -> Markup {
    let rows = list.and_then(Value::as_array).cloned().unwrap_or_default();
    html! {
        h2 { (title) " (" (rows.len()) ")" }
        @if !rows.is_empty() {
            table.grid {
                thead { tr { @for (label, _) in cols { th { (label) } } } }
                tbody { @for row in &rows {
                    tr { @for (_, key) in cols { td.wrap { (text(row.get(*key))) } } }
                } }
            }
        }
    }
}

/// A table of an object attribute's keys and values.
fn pairs_table(title: &str, obj: Option<&Value>) -> Markup {
    let map = obj.and_then(Value::as_object).cloned().unwrap_or_default();
    html! {
        h2 { (title) " (" (map.len()) ")" }
        @if !map.is_empty() {
            table.grid { thead { tr { th { "Key" } th { "Value" } } } tbody {
                @for (k, v) in &map { tr { td.mono { (k) } td.wrap { (text(Some(v))) } } }
            } }
        }
    }
}

/// The attributes the kind-specific sections show (left out of the generic
/// attribute list).
pub fn sectioned_attributes(kind: ResourceKind) -> &'static [&'static str] {
    match kind {
        ResourceKind::SecurityGroup => &["ingress", "egress"],
        ResourceKind::LoadBalancer => &["listeners"],
        ResourceKind::TargetGroup => &["targets"],
        ResourceKind::Stack => &["parameters", "outputs", "resources"],
        _ => &[],
    }
}

/// The kind-specific sections of a detail page. `history` is an alarm's
/// state history as read from the provider (or why it could not be).
pub fn sections(
    r: &Resource,
    may_browse: bool,
    history: Option<&Result<Vec<AlarmHistoryItem>, AppError>>,
) -> Markup {
    let a = &r.observed.attributes;
    html! {
        @match r.observed.kind {
            ResourceKind::LoadBalancer => {
                (objects_table("Listeners", a.get("listeners"), &[
                    ("Protocol", "protocol"), ("Port", "port"),
                    ("Forwards to", "default_target_group_arn"), ("Instance port", "instance_port"),
                ]))
            }
            ResourceKind::TargetGroup => {
                (objects_table("Targets", a.get("targets"), &[("Target", "id"), ("Port", "port"), ("Health", "health")]))
            }
            ResourceKind::Stack => {
                p { a href={"/resources/" (r.id) "/template"} { "Download the template" }
                    span.dim { " (fetched from CloudFormation on first use, then kept until the stack changes)" } }
                (pairs_table("Parameters", a.get("parameters")))
                (objects_table("Outputs", a.get("outputs"), &[("Key", "key"), ("Value", "value"), ("Description", "description")]))
                (objects_table("Resources", a.get("resources"), &[
                    ("Logical ID", "logical_id"), ("Physical ID", "physical_id"), ("Type", "type"), ("Status", "status"),
                ]))
            }
            ResourceKind::Bucket => {
                @if may_browse {
                    p { a href={"/resources/" (r.id) "/objects"} { "Browse objects" } }
                } @else {
                    p.dim { "Object browsing is off for this bucket (an admin can list it in the account's browse_buckets)." }
                }
            }
            ResourceKind::Alarm => {
                h2 { "State history" }
                @match history {
                    Some(Ok(items)) if items.is_empty() => { p.dim { "No history." } }
                    Some(Ok(items)) => {
                        table.grid { thead { tr { th { "Time" } th { "Type" } th { "Summary" } } } tbody {
                            @for h in items { tr { td { (time(Some(h.time))) } td { (h.item_type) } td.wrap { (h.summary) } } }
                        } }
                    }
                    Some(Err(e)) => {
                        p.dim { "CloudWatch's own history could not be read (" (e.to_string())
                            "); the state changes skyhold saw are in the History section below." }
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }
}

async fn template(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (r, body) = app.stack_template(&actor, parse_id(&id)?).await?;
    let ext = if body.trim_start().starts_with('{') {
        "json"
    } else {
        "yaml"
    };
    let name: String = r
        .observed
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}-template.{ext}\""),
            ),
        ],
        body,
    )
        .into_response())
}

fn objects_href(id: ResourceId, prefix: &str, token: Option<&str>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.append_pair("prefix", prefix);
    if let Some(t) = token {
        s.append_pair("token", t);
    }
    format!("/resources/{id}/objects?{}", s.finish())
}

fn human_size(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

async fn objects(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    query: Result<Query<ObjectsQuery>, QueryRejection>,
) -> PageResult {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let id = parse_id(&id)?;
    let (r, listing) = app
        .bucket_objects(&actor, id, &q.prefix, q.token.as_deref())
        .await?;
    let bucket = &r.observed.provider_id;
    // Breadcrumbs: the bucket, then each "folder" of the prefix.
    let mut crumbs = vec![(bucket.clone(), String::new())];
    let mut acc = String::new();
    for part in q.prefix.split_inclusive('/') {
        acc.push_str(part);
        crumbs.push((part.to_owned(), acc.clone()));
    }
    let body = html! {
        p.dim { a href="/buckets" { "Buckets" } " / " a href={"/resources/" (r.id)} { (bucket) } }
        h1 { "Objects in " (bucket) }
        div.crumbs {
            @for (i, (label, prefix)) in crumbs.iter().enumerate() {
                @if i > 0 { " " }
                a href=(objects_href(id, prefix, None)) { (label) }
            }
        }
        @if listing.prefixes.is_empty() && listing.objects.is_empty() {
            p.dim { "Nothing here." }
        } @else {
            table.grid {
                thead { tr { th { "Name" } th { "Size" } th { "Modified" } } }
                tbody {
                    @for p in &listing.prefixes {
                        tr { td { a href=(objects_href(id, p, None)) { (p.strip_prefix(q.prefix.as_str()).unwrap_or(p)) } } td.dim { "folder" } td {} }
                    }
                    @for o in &listing.objects {
                        @let mut s = url::form_urlencoded::Serializer::new(String::new());
                        @let link = format!("/resources/{id}/objects/download?{}", s.append_pair("key", &o.key).finish());
                        tr {
                            td { a href=(link) title="Download (a link valid for 5 minutes)" { (o.key.strip_prefix(q.prefix.as_str()).unwrap_or(&o.key)) } }
                            td { (human_size(o.size)) }
                            td { (time(o.modified)) }
                        }
                    }
                }
            }
        }
        @if let Some(t) = &listing.next_token {
            div.pager { a href=(objects_href(id, &q.prefix, Some(t))) { "Next page »" } }
        }
    };
    Ok(page(
        &format!("Objects in {bucket}"),
        Some((&actor, &app.enabled_kinds())),
        "bucket",
        body,
    ))
}

async fn download(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    query: Result<Query<KeyQuery>, QueryRejection>,
) -> Result<Redirect, PageError> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let url = app.object_url(&actor, parse_id(&id)?, &q.key).await?;
    Ok(Redirect::to(&url))
}
