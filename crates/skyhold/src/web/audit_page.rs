//! The Audit page: the log newest first with its filters in the URL (a GET
//! form: actor, action, outcome, target, since, until), paging by
//! `next_cursor`, links to the export (the API, same origin, with the
//! session cookie) and a "Verify chain" button for those who may export.
//! Members and viewers see what `App::audit_entries` gives them: the
//! entries about them and what they manage.

use super::common::{PageError, PageResult};
use super::forms::{csrf_field, href, Fields};
use super::ui::{empty, page, time};
use super::AppState;
use crate::app::{Action, Actor, AuditFilter, Object};
use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{html, Markup};
use skyhold_core::audit::AuditEntry;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/audit", get(audit))
        .route("/audit/verify", post(verify))
}

const FILTERS: [(&str, &str, &str); 6] = [
    ("actor", "actor", "ann"),
    ("action", "action", "resource. or grant.put"),
    ("outcome", "outcome", ""),
    ("target", "target", "resource:42"),
    ("since", "since", "24h, 2026-01-31"),
    ("until", "until", "RFC 3339"),
];

fn outcome_badge(o: &str) -> Markup {
    let class = match o {
        "ok" => "s-good",
        "denied" => "s-warn",
        _ => "s-bad",
    };
    html! { span class={"badge " (class)} { (o) } }
}

fn target_cell(e: &AuditEntry) -> Markup {
    let t = &e.draft.target;
    html! {
        @if t.kind.is_empty() { span.dim { "—" } } @else {
            @let key = if t.id.is_empty() { t.kind.clone() } else { format!("{}:{}", t.kind, t.id) };
            @if t.kind == "resource" && !t.id.is_empty() {
                a href={"/resources/" (t.id)} { (key) }
            } @else {
                span.mono { (key) }
            }
            @if !t.name.is_empty() { " " (t.name) }
        }
    }
}

async fn audit(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let value = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map_or("", |(_, v)| v.as_str())
    };
    // A filter that does not parse is shown above the table, with the
    // form as typed; nothing is listed.
    let (entries, next, error) = match AuditFilter::parse(&pairs, false) {
        Ok(f) => {
            let (e, n) = app.audit_entries(&actor, &f).await?;
            (e, n, None)
        }
        Err(e @ AppError::BadParameter { .. }) => (Vec::new(), None, Some(e)),
        Err(e) => return Err(e.into()),
    };
    let export = app.allows(&actor, Action::ExportAudit, Object::None);
    let filtered: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(k, v)| k != "cursor" && !v.trim().is_empty())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let older = next.map(|n| {
        let mut p = filtered.clone();
        let n = n.to_string();
        p.push(("cursor", &n));
        href("/audit", &p)
    });
    let export_href = |format: &str| {
        let mut p = vec![("format", format)];
        p.extend(
            filtered
                .iter()
                .filter(|(k, _)| matches!(*k, "since" | "until")),
        );
        href("/api/v1/audit/export", &p)
    };
    let body = html! {
        h1 { "Audit log" }
        @if !export {
            p.dim { "You see the entries about you and about what you manage." }
        }
        form.filters method="get" action="/audit" {
            @for (name, label, hint) in FILTERS {
                @if name == "outcome" {
                    select name="outcome" aria-label="Outcome" {
                        option value="" { "any outcome" }
                        @for o in ["ok", "denied", "failed"] { option value=(o) selected[value("outcome") == o] { (o) } }
                    }
                } @else {
                    input type="text" name=(name) value=(value(name)) placeholder={(label) ": " (hint)} size="16" aria-label=(label);
                }
            }
            @if !value("limit").is_empty() { input type="hidden" name="limit" value=(value("limit")); }
            button.primary type="submit" { "Filter" }
            a href="/audit" { "Reset" }
        }
        @if export {
            div.filters {
                "Export " a href=(export_href("jsonl")) { "JSON Lines" } " · " a href=(export_href("csv")) { "CSV" }
                span.dim { "(the whole log, or since/until)" }
                form.inline method="post" action="/audit/verify" {
                    (csrf_field(&actor))
                    button type="submit" { "Verify chain" }
                }
            }
        }
        @if let Some(e) = &error { div.error role="alert" { (e.to_string()) } }
        @if entries.is_empty() {
            @if error.is_none() { p.dim { "No entries match." } }
        } @else {
            table.grid {
                thead { tr {
                    th { "Seq" } th { "Time" } th { "Actor" } th { "Auth" } th { "Client IP" }
                    th { "Action" } th { "Target" } th { "Outcome" } th { "Reason" }
                } }
                tbody { @for e in &entries {
                    @let d = &e.draft;
                    tr {
                        td.mono { (e.seq) }
                        td { (time(Some(d.time))) }
                        td { (d.actor) }
                        td { (d.auth) }
                        td.mono { (empty(&d.client_ip)) }
                        td.mono { (d.action) }
                        td { (target_cell(e)) }
                        td { (outcome_badge(&d.outcome)) }
                        td.wrap { (empty(&d.reason)) }
                    }
                } }
            }
        }
        div.pager {
            @if !value("cursor").is_empty() { a href=(href("/audit", &filtered)) { "« Newest" } }
            @if let Some(o) = &older { a href=(o) { "Older »" } }
        }
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        page(
            "Audit log",
            Some((&actor, &app.enabled_kinds())),
            "audit",
            body,
        ),
    )
        .into_response())
}

/// "Verify chain": walks the whole log against its recorded head.
async fn verify(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> PageResult {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let r = app.verify_audit(&actor).await?;
    let body = html! {
        h1 { "Audit chain" }
        @if r.ok {
            div.ok role="status" { "The chain is intact: " (r.checked) " entries checked." }
        } @else {
            div.error role="alert" {
                "The chain is broken"
                @if let Some(s) = r.first_bad_seq { " at entry " (s) }
                ": " (r.problem.as_deref().unwrap_or("unknown problem")) "."
            }
        }
        dl.facts {
            dt { "OK" } dd { (if r.ok { "yes" } else { "no" }) }
            dt { "Entries checked" } dd { (r.checked) }
            dt { "First bad entry" } dd { @match r.first_bad_seq { Some(s) => { (s) }, None => { span.dim { "none" } } } }
            dt { "Head" } dd.mono { @match &r.head { Some((seq, hash)) => { (seq) " " (hash) }, None => { span.dim { "—" } } } }
        }
        p { a href="/audit" { "« Back to the audit log" } }
    };
    Ok(page(
        "Audit chain",
        Some((&actor, &app.enabled_kinds())),
        "audit",
        body,
    ))
}
