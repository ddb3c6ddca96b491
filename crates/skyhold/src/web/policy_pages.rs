//! The pages of policies and money: Reports (spend with a daily chart, by
//! the same query as the API), Policies (what the expiry and idle rules
//! would do now and in 24 h, the passes with held ones to confirm, run
//! now, budgets) and Notifications (the outbox with each delivery's
//! state). Thin: each calls the same app functions as the API.

use super::api_spend::spend_query;
use super::common::{PageError, PageResult};
use super::forms::{csrf_field, done, failed, notice, Fields};
use super::ui::{page, time};
use super::AppState;
use crate::app::{Actor, PolicyDecision, SpendQuery, EXPIRY, IDLE};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{html, Markup};
use skyhold_store::UsageField;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/reports", get(reports))
        .route("/policies", get(policies))
        .route("/policies/run", post(run_now))
        .route("/policies/runs/{id}/confirm", post(confirm))
        .route("/notifications", get(notifications))
        .route("/extend/{token}", get(extend_form).post(extend_now))
}

/// An expiry warning's link: what it would do, and a button (a GET never
/// changes anything: mail scanners follow links).
async fn extend_form(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(token): Path<String>,
) -> PageResult {
    let o = app.extend_offer(&actor, &token).await?;
    let name = crate::app::display_name(&o.resource.observed).to_owned();
    let body = html! {
        h1 { "Extend " (name) }
        p {
            (o.resource.observed.kind.label()) " " a href={"/resources/" (o.resource.id)} { (name) }
            " in " (o.resource.account) " / " (o.resource.region) " expires "
            @match o.expires_at { Some(t) => { (time(Some(t))) }, None => { "never (no expiry set)" } }
            "."
        }
        @if let Some(why) = &o.spent {
            div.error role="alert" { "This link cannot be used again: " (why) ". Set the expiry on the resource's page instead." }
        } @else {
            form method="post" action={"/extend/" (token)} {
                (csrf_field(&actor))
                button type="submit" { "Extend by " (skyhold_core::search::format_duration(o.extend_ms)) }
            }
            p.dim { "The maximum TTL still applies; the link works once." }
        }
    };
    Ok(nav(&app, &actor, "Extend", "", body))
}

async fn extend_now(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let back = format!(
        "/extend/{}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    Ok(match app.use_extend_link(&actor, &token).await {
        Ok(a) if a.state == "succeeded" => {
            done(&format!("/resources/{}", a.resource_id), "extended")
        }
        Ok(a) => failed(
            &app,
            &actor,
            "",
            crate::error::AppError::Provider(format!("{}: {}", a.error_code, a.error)),
            &back,
        ),
        Err(e) => failed(&app, &actor, "", e, &back),
    })
}

fn nav(app: &AppState, actor: &Actor, title: &str, active: &str, body: Markup) -> Markup {
    page(title, Some((actor, &app.enabled_kinds())), active, body)
}

/// Daily spend as an SVG column chart, drawn on the server.
fn day_chart(days: &[(String, f64)]) -> Markup {
    const H: f64 = 120.0;
    const W: usize = 14;
    let max = days.iter().map(|d| d.1).fold(0.0, f64::max).max(0.01);
    let width = (days.len() * W).max(W) + 50;
    html! {
        svg.chart width=(width) height=(H as i64 + 30) viewBox={"0 0 " (width) " " (H as i64 + 30)} role="img" aria-label="Spend per day" {
            text x="0" y="10" class="n" { (format!("${max:.2}")) }
            @for (i, (day, usd)) in days.iter().enumerate() {
                @let h = (usd / max * H).max(if *usd > 0.0 { 1.0 } else { 0.0 });
                @let x = 50 + i * W;
                g {
                    title { (day) ": $" (format!("{usd:.2}")) }
                    rect x=(x) y=(format!("{:.1}", 14.0 + H - h)) width=(W - 3) height=(format!("{h:.1}")) rx="1" {}
                }
                @if i == 0 || i + 1 == days.len() {
                    text x=(x) y=(H as i64 + 28) class="lbl" { (day) }
                }
            }
        }
    }
}

async fn reports(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let raw = raw.unwrap_or_default();
    let (q, _) = spend_query(Some(&raw), app.now())?;
    let report = app.spend(&actor, &q).await?;
    let daily = SpendQuery {
        group_by: vec![UsageField::Day],
        ..q.clone()
    };
    let days: Vec<(String, f64)> = app
        .spend(&actor, &daily)
        .await?
        .rows
        .into_iter()
        .map(|r| (r.fields.get("day").cloned().unwrap_or_default(), r.usd))
        .collect();
    let group_by = report.group_by.join(",");
    let csv = if raw.is_empty() {
        "/api/v1/reports/spend?format=csv".to_owned()
    } else {
        format!("/api/v1/reports/spend?{raw}&format=csv")
    };
    let budgets = app.my_budgets(&actor).await.unwrap_or_default();
    let body = html! {
        h1 { "Reports" }
        form.filters method="get" action="/reports" {
            label { "Group by " input name="group_by" value=(group_by) size="28" title="owner, group, account, region, blueprint, kind, day or month"; }
            label { "From " input name="from" value=(report.from) size="22" title="a date, RFC 3339 time or a duration back (30d)"; }
            label { "To " input name="to" value=(report.to) size="22"; }
            button type="submit" { "Show" }
            " " a href=(csv) { "CSV" }
        }
        div.cards {
            div.card { h2 { "Spend in range" } div.big { (format!("${:.2}", report.total_usd)) } }
            div.card { h2 { "This month so far" } div.big { (format!("${:.2}", report.month_to_date_usd)) } }
            div.card { h2 { "This month, projected" } div.big { (format!("${:.2}", report.month_projected_usd)) } }
        }
        div.card {
            h2 { "Spend per day" }
            @if days.is_empty() { p.dim { "No usage in this range." } } @else { (day_chart(&days)) }
        }
        table {
            thead { tr { @for f in &report.group_by { th { (f) } } th.num { "hours" } th.num { "USD" } } }
            tbody {
                @for r in &report.rows {
                    tr {
                        @for f in &report.group_by {
                            td { (r.fields.get(f).map(String::as_str).filter(|v| !v.is_empty()).unwrap_or("—")) }
                        }
                        td.num { (format!("{:.1}", r.hours)) }
                        td.num { (format!("{:.2}", r.usd)) }
                    }
                }
            }
        }
        @if !report.unpriced.is_empty() {
            h2 { "Unpriced (not counted)" }
            p.dim { "Usage with no known price: import a price list (skyhold prices import) or set [[prices]]." }
            table {
                thead { tr { th { "product" } th { "type" } th { "region" } th.num { "unit-hours" } } }
                tbody { @for u in &report.unpriced { tr { td { (u.product) } td { (u.rtype) } td { (u.region) } td.num { (format!("{:.1}", u.hours)) } } } }
            }
        }
        @if !budgets.is_empty() {
            h2 { "Your budgets" }
            (budget_table(&budgets))
        }
        p.dim { "Prices: " (report.prices_source.lines().nth(1).unwrap_or("the shipped table")) }
    };
    Ok(nav(&app, &actor, "Reports", "reports", body))
}

fn budget_table(b: &[crate::app::BudgetStatus]) -> Markup {
    html! {
        table {
            thead { tr { th { "budget" } th { "from" } th.num { "limit" } th.num { "spent" } th.num { "projected" } th.num { "used" } th { "at 100 %" } } }
            tbody {
                @for s in b {
                    tr {
                        td { (s.subject) } td { (s.source) }
                        td.num { (format!("${:.2}", s.limit_usd)) }
                        td.num { (format!("${:.2}", s.spend_usd)) }
                        td.num { (format!("${:.2}", s.projected_usd)) }
                        td.num class=[(s.percent >= 80.0).then_some("warn")] { (format!("{:.0} %", s.percent)) }
                        td { (if s.on_exceed == "warn" { "warn" } else { "warn, refuse launches" }) }
                    }
                }
            }
        }
    }
}

fn decisions(items: &[PolicyDecision]) -> Markup {
    html! {
        @if items.is_empty() { p.dim { "Nothing." } } @else {
            table {
                thead { tr { th { "policy" } th { "step" } th { "due" } th { "resource" } th { "owner" } th { "account" } th { "why" } } }
                tbody {
                    @for d in items {
                        tr {
                            td { (d.policy) } td { (d.step) } td { (d.due_at) }
                            td { a href={"/resources/" (d.resource_id)} { (if d.name.is_empty() { &d.provider_id } else { &d.name }) } " " span.dim { (d.kind) } }
                            td { (d.owner) } td { (d.account) } td { (d.reason) }
                        }
                    }
                }
            }
        }
    }
}

async fn policies(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let code = pairs
        .iter()
        .find(|(k, _)| k == "done")
        .map(|(_, v)| v.clone());
    // A change to try (the API's preview parameters), never saved.
    let change = {
        // (Built in a block: the serializer is not Send.)
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs
            .iter()
            .filter(|(k, _)| k != "done" && k != "idle" && !k.starts_with("idle_"))
        {
            ser.append_pair(k, v);
        }
        ser.finish()
    };
    let change = super::api_policies::preview_change(Some(&change))?;
    let trying = change.is_some();
    let preview = app.policy_preview(&actor, change).await?;
    // The idle preview reads the metrics: on request only.
    let idle_configured = app.idle_configured().await;
    // An idle change to try: the form's `idle_*` fields.
    let idle_raw = {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            if let Some(k) = k.strip_prefix("idle_") {
                ser.append_pair(k, v);
            }
        }
        ser.finish()
    };
    let idle_change = super::api_policies::idle_change(Some(&idle_raw))?;
    let idle_trying = idle_change.is_some();
    let idle = if pairs.iter().any(|(k, v)| k == "idle" && v == "preview")
        && (idle_configured || idle_trying)
    {
        Some(app.idle_preview(&actor, idle_change).await?)
    } else {
        None
    };
    let idle_rules: skyhold_core::idle::IdleRules = idle
        .as_ref()
        .and_then(|p| serde_json::from_value(p.rules.clone()).ok())
        .unwrap_or_else(|| app.config.policies.idle.clone());
    let (runs, _) = app.policy_runs(&actor, None, 20).await?;
    let budgets = app.budgets(&actor).await.unwrap_or_default();
    let admin = app.allows(
        &actor,
        crate::app::Action::RunPolicies,
        crate::app::Object::None,
    );
    let rules: skyhold_core::policy::RawRules =
        serde_json::from_value(preview.rules.clone()).unwrap_or_default();
    let body = html! {
        h1 { "Policies" }
        (notice(code.as_deref(), &[("ran", "The pass ran: see the latest run below."), ("confirmed", "The held pass was confirmed and carried out.")]))
        p { "Expiry warns, stops and deletes what has expired; idle stop stops instances whose CPU stayed under the threshold. Every step goes through the action pipeline and the audit log; a pass over its cap is held here for confirmation." }
        @if admin {
            div.actions {
                @for p in [EXPIRY, IDLE] {
                    form method="post" action="/policies/run" {
                        (csrf_field(&actor))
                        input type="hidden" name="policy" value=(p);
                        button type="submit" { "Run " (p) " now" }
                    }
                }
            }
        }
        form.filters method="get" action="/policies" {
            "Try the global expiry rules: "
            label { "warn " input name="warn" size="10" value=(rules.warn.clone().unwrap_or_default().join(",")) placeholder="24h,1h"; }
            label { "at expiry " input name="action" size="9" value=(rules.action.clone().unwrap_or_default()) placeholder="stop"; }
            label { "delete after " input name="terminate_after" size="6" value=(rules.terminate_after.clone().unwrap_or_default()) placeholder="7d"; }
            label { "mode " input name="mode" size="8" value=(rules.mode.clone().unwrap_or_default()) placeholder="enforce"; }
            button type="submit" { "Preview" }
            @if trying { " " a href="/policies" { "as configured" } }
        }
        @if trying { div.ok role="status" { "A preview of an unsaved change: nothing is saved or done." } }
        h2 { "Expiry: due now (" (preview.now_items.len()) ")" }
        (decisions(&preview.now_items))
        h2 { "Expiry: in the next 24 h (" (preview.next_24h.len()) ")" }
        (decisions(&preview.next_24h))
        @if !preview.exempt.is_empty() {
            h2 { "Left alone" }
            table { tbody { @for e in &preview.exempt { tr { td { a href={"/resources/" (e.resource_id)} { (e.name) } } td { (e.owner) } td { (e.why) } } } } }
        }
        h2 { "Idle stop" }
        form.filters method="get" action="/policies" {
            input type="hidden" name="idle" value="preview";
            "Try the global idle rules: "
            label { "cpu below % " input name="idle_cpu_below" size="5" value=(idle_rules.cpu_below.map(|c| c.to_string()).unwrap_or_default()) placeholder="5"; }
            label { "for " input name="idle_for" size="5" value=(idle_rules.for_ms.map(skyhold_core::search::format_duration).unwrap_or_default()) placeholder="6h"; }
            label { "warn before " input name="idle_warn_before" size="5" value=(idle_rules.warn_before_ms.map(skyhold_core::search::format_duration).unwrap_or_default()) placeholder="1h"; }
            label { "mode " input name="idle_mode" size="8" value=(idle_rules.mode.map(|m| m.as_str()).unwrap_or_default()) placeholder="enforce"; }
            button type="submit" { "Preview idle stop" }
        }
        @if idle_trying { div.ok role="status" { "A preview of an unsaved idle change: nothing is saved or done." } }
        @match &idle {
            Some(p) => {
                p { "As of " (p.now) ", over " (p.candidates) " running instances:" }
                h3 { "Due now (" (p.now_items.len()) ")" }
                (decisions(&p.now_items))
                h3 { "Stops in the next 24 h if they stay idle (" (p.next_24h.len()) ")" }
                (decisions(&p.next_24h))
                @if !p.exempt.is_empty() {
                    h3 { "Left alone (no data is never idle)" }
                    table { tbody { @for e in &p.exempt { tr { td { a href={"/resources/" (e.resource_id)} { (e.name) } } td { (e.owner) } td { (e.why) } } } } }
                }
            }
            None if idle_configured => {
                p { a href="/policies?idle=preview" { "Preview idle stop now" } " (reads the instances' CloudWatch metrics, as a pass does)." }
            }
            None => {
                p { "No idle rules are configured (" code { "[policies.idle]" } ")." }
            }
        }
        h2 { "Passes" }
        table {
            thead { tr { th { "#" } th { "policy" } th { "cause" } th { "state" } th { "started" } th { "counts" } th { "note" } th {} } }
            tbody {
                @for r in &runs {
                    tr {
                        td { (r.id) } td { (r.policy) } td { (r.cause) } td { (r.state) } td { (time(Some(r.started_at))) }
                        td.mono { (counts_text(&r.counts)) }
                        td { (r.note) }
                        td {
                            @if r.state == "held" && admin {
                                form method="post" action={"/policies/runs/" (r.id) "/confirm"} {
                                    (csrf_field(&actor))
                                    button type="submit" data-confirm="Carry out this pass's stops and deletions (each re-checked first)?" { "Confirm" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Budgets" }
        @if budgets.is_empty() { p.dim { "No budgets (POST /api/v1/budgets, or skyhold budget set)." } } @else {
            table {
                thead { tr { th { "subject" } th.num { "USD a month" } th { "at 100 %" } th.num { "spent" } th.num { "projected" } th.num { "used" } } }
                tbody {
                    @for b in &budgets {
                        tr {
                            td { (b.budget.subject) } td.num { (format!("{:.2}", b.budget.monthly_usd)) } td { (b.budget.on_exceed) }
                            @if let Some(s) = &b.status {
                                td.num { (format!("{:.2}", s.spend_usd)) } td.num { (format!("{:.2}", s.projected_usd)) } td.num { (format!("{:.0} %", s.percent)) }
                            } @else { td {} td {} td {} }
                        }
                    }
                }
            }
        }
        p { a href="/notifications" { "Notifications and their delivery »" } }
    };
    Ok(nav(&app, &actor, "Policies", "policies", body))
}

/// A run's counts in words: `warned 2, stopped 1, no data 3`.
fn counts_text(c: &serde_json::Value) -> String {
    c.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| *k != "no_data_ids")
        .map(|(k, v)| format!("{} {v}", k.replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn run_now(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    Ok(match app.run_policies_now(&actor, f.get("policy")).await {
        Ok(_) => done("/policies", "ran"),
        Err(e) => failed(&app, &actor, "policies", e, "/policies"),
    })
}

async fn confirm(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = Fields::parse(&body);
    f.check_csrf(&actor)?;
    let id = match id.parse::<i64>() {
        Ok(id) => id,
        Err(_) => {
            let e = crate::error::AppError::bad_parameter("id", format!("not a run id: {id:?}"));
            return Ok(failed(&app, &actor, "policies", e, "/policies"));
        }
    };
    Ok(match app.confirm_policy_run(&actor, id).await {
        Ok(_) => done("/policies", "confirmed"),
        Err(e) => failed(&app, &actor, "policies", e, "/policies"),
    })
}

async fn notifications(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> PageResult {
    let (items, _) = app.notifications(&actor, None, None, 100).await?;
    let body = html! {
        h1 { "Notifications" }
        p { "The outbox: each notification is written with the decision it reports and delivered by mail and webhooks, retried with backoff until it lands." }
        @if items.is_empty() { p.dim { "None yet." } } @else {
            table {
                thead { tr { th { "#" } th { "when" } th { "kind" } th { "to" } th { "subject" } th { "deliveries" } } }
                tbody {
                    @for n in &items {
                        tr {
                            td { (n.id) } td { (time(Some(n.created_at))) } td { (n.kind) }
                            td { (n.recipient) @if !n.email.is_empty() { " " span.dim { (n.email) } } }
                            td { (n.subject) }
                            td {
                                @if n.deliveries.is_empty() { span.dim { "no channel configured" } }
                                @for d in &n.deliveries {
                                    div {
                                        (d.channel) ": " strong { (d.state) }
                                        @if d.attempts > 0 { " (" (d.attempts) " attempts)" }
                                        @if !d.last_error.is_empty() && d.state != "sent" { " " span.dim { (d.last_error) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(nav(&app, &actor, "Notifications", "notifications", body))
}
