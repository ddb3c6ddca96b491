//! Server-rendered HTML pages. Filters live in the URL (GET forms), so every
//! view can be bookmarked; forms that change anything are POSTs carrying the
//! session's CSRF token.

use super::common::{check_csrf, cookie, parse_query, safe_next, PageError, PageResult};
use super::ui::{age, csrf_of, empty, kind_path, page, state_badge, time};
use super::{status_of, AppState, SESSION_COOKIE};
use crate::app::{Action, Actor, Object};
use crate::error::AppError;
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use axum_extra::extract::cookie::Cookie;
use axum_extra::extract::CookieJar;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use skyhold_core::{
    now_millis, Millis, Resource, ResourceId, ResourceKind, ResourceQuery, SortKey,
};

const LOGIN_CSRF_COOKIE: &str = "skyhold_login_csrf";

pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route("/", get(dashboard))
        .route("/logout", post(logout))
        .route("/resources/{id}", get(detail))
        .route("/resources/{id}/refresh", post(refresh_now))
        .route("/changes", get(changes_page))
        .route("/sync", get(sync_page).post(sync_now));
    for k in ResourceKind::ALL {
        r = r.route(
            kind_path(k),
            get(move |s: State<AppState>, a: Extension<Actor>, q: RawQuery| list(s, a, q, Some(k))),
        );
    }
    r.route(
        "/search",
        get(|s: State<AppState>, a: Extension<Actor>, q: RawQuery| list(s, a, q, None)),
    )
}

// ---------------------------------------------------------------- login

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
    error: Option<String>,
}

pub async fn login_form(
    State(app): State<AppState>,
    jar: CookieJar,
    Query(q): Query<LoginQuery>,
) -> Response {
    // Reuse a pending token: a second GET (another tab, a favicon request
    // that bounced here) must not invalidate the form already shown.
    let csrf = jar
        .get(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| crate::auth::random_token("", 16));
    let jar = jar.add(cookie(
        LOGIN_CSRF_COOKIE,
        csrf.clone(),
        app.config.secure_cookies,
    ));
    let next = safe_next(q.next.as_deref());
    // With [auth.oidc]: a button to the provider; with local = false, only it.
    let oidc = app.oidc().map(|o| {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &next)
            .finish();
        (o.display_name().to_owned(), format!("/auth/oidc/login?{q}"))
    });
    let oidc_button = html! {
        @if let Some((label, href)) = &oidc {
            p.oidc { a.button.primary #oidc-login href=(href) { (label) } }
        }
    };
    let body = page(
        "Log in",
        None,
        "",
        html! {
            @if app.config.auth.local {
                form.login method="post" action="/login" {
                    h1 { "skyhold" }
                    @if let Some(e) = &q.error { div.error { (e) } }
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="next" value=(next);
                    label for="username" { "User name" }
                    input #username name="username" autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input #password name="password" type="password" autocomplete="current-password" required;
                    button.primary type="submit" { "Log in" }
                    (oidc_button)
                }
            } @else {
                div.login {
                    h1 { "skyhold" }
                    @if let Some(e) = &q.error { div.error { (e) } }
                    (oidc_button)
                    @if oidc.is_none() {
                        p { "Password login is turned off ([auth] local = false) and no other way to sign in is configured." }
                    }
                }
            }
        },
    );
    (jar, body).into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

pub async fn login_submit(State(app): State<AppState>, jar: CookieJar, req: Request) -> Response {
    let ctx = super::request_ctx(&req);
    let form = <Form<LoginForm> as axum::extract::FromRequest<()>>::from_request(req, &()).await;
    let Ok(Form(f)) = form else {
        return PageError(AppError::BadRequest("the login form was incomplete".into()))
            .into_response();
    };
    let next = safe_next(f.next.as_deref());
    let back = |msg: &str| {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("error", msg)
            .append_pair("next", &next)
            .finish();
        Redirect::to(&format!("/login?{q}")).into_response()
    };
    let expected = jar
        .get(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if expected.is_empty() || !crate::auth::ct_eq(&expected, &f.csrf) {
        return back("Your login form expired; please try again.");
    }
    match app.login(f.username.trim(), &f.password, &ctx).await {
        Ok(actor) => match app.start_session(&actor, "password").await {
            Ok(token) => {
                let jar = jar
                    .remove(Cookie::build(LOGIN_CSRF_COOKIE).path("/").build())
                    .add(cookie(SESSION_COOKIE, token, app.config.secure_cookies));
                (jar, Redirect::to(&next)).into_response()
            }
            Err(e) => PageError(e).into_response(),
        },
        Err(e @ (AppError::InvalidCredentials | AppError::RateLimited(_))) => {
            let status = status_of(&e);
            let mut res = back(&e.to_string());
            if status == StatusCode::TOO_MANY_REQUESTS {
                tracing::warn!(client = %ctx.client_ip, "login rate limited");
            }
            res.headers_mut()
                .insert("x-login-error", axum::http::HeaderValue::from_static("1"));
            res
        }
        Err(e) => PageError(e).into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
    account: Option<String>,
}

async fn logout(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    jar: CookieJar,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    check_csrf(&actor, &f.csrf)?;
    if let Some(c) = jar.get(SESSION_COOKIE) {
        app.end_session(&actor, c.value()).await?;
    }
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/").build());
    Ok((jar, Redirect::to("/login")).into_response())
}

// ---------------------------------------------------------------- lists

struct Col {
    sort: Option<SortKey>,
    label: &'static str,
    cell: fn(&Resource, Millis) -> Markup,
    /// When set, the cell shows this attribute instead of calling `cell`.
    attr: Option<&'static str>,
}

impl Col {
    fn new(
        sort: Option<SortKey>,
        label: &'static str,
        cell: fn(&Resource, Millis) -> Markup,
    ) -> Col {
        Col {
            sort,
            label,
            cell,
            attr: None,
        }
    }

    /// A column showing one attribute.
    fn attr(label: &'static str, key: &'static str) -> Col {
        Col {
            sort: None,
            label,
            cell: |_, _| html! {},
            attr: Some(key),
        }
    }

    fn render(&self, r: &Resource, now: Millis) -> Markup {
        match self.attr {
            Some(key) => value_cell(attr(r, key).unwrap_or(&Value::Null)),
            None => (self.cell)(r, now),
        }
    }
}

fn attr<'a>(r: &'a Resource, key: &str) -> Option<&'a Value> {
    r.observed.attributes.get(key)
}

fn attr_str<'a>(r: &'a Resource, key: &str) -> &'a str {
    attr(r, key).and_then(Value::as_str).unwrap_or("")
}

fn name_cell(r: &Resource, _: Millis) -> Markup {
    let label = if r.observed.name.is_empty() {
        r.observed.provider_id.as_str()
    } else {
        r.observed.name.as_str()
    };
    html! { a href={"/resources/" (r.id)} { (label) } }
}

/// A list's "Expires" cell: how long until the expiry (or since it
/// passed), the time on hover; `never`; empty when unset.
fn expires_cell(r: &Resource, now: Millis) -> Markup {
    use skyhold_core::expiry::{Expiry, EXPIRES_TAG};
    let tag = r.observed.tags.get(EXPIRES_TAG).map(String::as_str);
    match Expiry::from_tag(tag) {
        Expiry::At(t) if t > now => html! {
            span title=(skyhold_core::rfc3339(t)) { "in " (age(Some(now), t)) }
        },
        Expiry::At(t) => html! {
            span.error title=(skyhold_core::rfc3339(t)) { "passed " (age(Some(t), now)) " ago" }
        },
        Expiry::Never => html! { "never" },
        Expiry::Unreadable => html! { span.dim title=(tag.unwrap_or_default()) { "unreadable" } },
        Expiry::Unset => html! {},
    }
}

fn columns(kind: ResourceKind) -> Vec<Col> {
    let account = Col::new(
        Some(SortKey::Account),
        "Account",
        |r, _| html! { (r.account) },
    );
    let region = Col::new(Some(SortKey::Region), "Region", |r, _| html! { (r.region) });
    let name = Col::new(Some(SortKey::Name), "Name", name_cell);
    let state = Col::new(Some(SortKey::State), "State", |r, _| {
        state_badge(&r.observed.state)
    });
    let id = |label| {
        Col::new(Some(SortKey::ProviderId), label, |r, _| {
            html! { span.mono { (r.observed.provider_id) } }
        })
    };
    let created = |label| {
        Col::new(Some(SortKey::LaunchTime), label, |r, _| {
            time(r.observed.created_at)
        })
    };
    let rtype = |label| Col::new(Some(SortKey::Type), label, |r, _| empty(&r.observed.rtype));
    let size = |label| Col::new(None, label, |r, _| html! { (r.observed.size_gib) " GiB" });
    match kind {
        ResourceKind::Instance => vec![
            account,
            region,
            name,
            id("Instance ID"),
            state,
            Col::new(
                Some(SortKey::Type),
                "Type",
                |r, _| html! { (r.observed.rtype) },
            ),
            Col::new(
                Some(SortKey::PrivateIp),
                "Private IP",
                |r, _| html! { span.mono { (empty(&r.observed.private_ip)) } },
            ),
            Col::new(
                Some(SortKey::PublicIp),
                "Public IP",
                |r, _| html! { span.mono { (empty(&r.observed.public_ip)) } },
            ),
            created("Launched"),
            Col::new(
                Some(SortKey::LaunchTime),
                "Age",
                |r, now| html! { (age(r.observed.created_at, now)) },
            ),
            Col::new(Some(SortKey::Owner), "Owner", |r, _| {
                empty(&r.observed.owner)
            }),
            Col::new(None, "Expires", expires_cell),
        ],
        ResourceKind::Volume => vec![
            account,
            region,
            name,
            id("Volume ID"),
            state,
            Col::new(
                Some(SortKey::Type),
                "Type",
                |r, _| html! { (r.observed.rtype) },
            ),
            Col::new(None, "Size", |r, _| html! { (r.observed.size_gib) " GiB" }),
            Col::new(None, "Attached to", |r, _| {
                let ids: Vec<&str> = attr(r, "instance_ids")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                html! { span.mono { (empty(&ids.join(", "))) } }
            }),
            created("Created"),
            Col::new(Some(SortKey::Owner), "Owner", |r, _| {
                empty(&r.observed.owner)
            }),
        ],
        ResourceKind::Image => vec![
            account,
            region,
            name,
            id("Image ID"),
            state,
            Col::new(
                Some(SortKey::Type),
                "Architecture",
                |r, _| html! { (r.observed.rtype) },
            ),
            Col::new(None, "Root device", |r, _| {
                empty(attr_str(r, "root_device_type"))
            }),
            created("Created"),
        ],
        ResourceKind::SecurityGroup => vec![
            account,
            region,
            name,
            id("Group ID"),
            Col::new(
                None,
                "VPC",
                |r, _| html! { span.mono { (empty(attr_str(r, "vpc_id"))) } },
            ),
            Col::new(
                None,
                "Inbound rules",
                |r, _| html! { (attr(r, "ingress").and_then(Value::as_array).map_or(0, Vec::len)) },
            ),
            Col::new(None, "Description", |r, _| {
                empty(attr_str(r, "description"))
            }),
        ],
        ResourceKind::Snapshot => vec![
            account,
            region,
            name,
            id("Snapshot ID"),
            state,
            Col::new(None, "Size", |r, _| html! { (r.observed.size_gib) " GiB" }),
            Col::attr("Volume", "volume_id"),
            Col::attr("Description", "description"),
            created("Started"),
            Col::new(Some(SortKey::Owner), "Owner", |r, _| {
                empty(&r.observed.owner)
            }),
        ],
        ResourceKind::ElasticIp => vec![
            account,
            region,
            name,
            Col::new(
                Some(SortKey::PublicIp),
                "Public IP",
                |r, _| html! { span.mono { (empty(&r.observed.public_ip)) } },
            ),
            state,
            Col::attr("Instance", "instance_id"),
            Col::new(
                Some(SortKey::PrivateIp),
                "Private IP",
                |r, _| html! { span.mono { (empty(&r.observed.private_ip)) } },
            ),
            id("Allocation ID"),
        ],
        ResourceKind::Vpc => vec![
            account,
            region,
            name,
            id("VPC ID"),
            state,
            Col::attr("CIDR", "cidr_block"),
            Col::attr("Default", "is_default"),
        ],
        ResourceKind::Subnet => vec![
            account,
            region,
            name,
            id("Subnet ID"),
            state,
            Col::attr("VPC", "vpc_id"),
            Col::attr("CIDR", "cidr_block"),
            Col::attr("Zone", "availability_zone"),
            Col::attr("Free IPs", "available_ip_address_count"),
        ],
        ResourceKind::LaunchTemplate => vec![
            account,
            region,
            name,
            id("Template ID"),
            Col::attr("Default version", "default_version"),
            Col::attr("Latest version", "latest_version"),
            created("Created"),
        ],
        ResourceKind::KeyPair => vec![
            account,
            region,
            name,
            id("Key pair ID"),
            Col::new(
                Some(SortKey::Type),
                "Type",
                |r, _| html! { (r.observed.rtype) },
            ),
            Col::new(
                None,
                "Fingerprint",
                |r, _| html! { span.mono { (attr_str(r, "fingerprint")) } },
            ),
            created("Created"),
        ],
        ResourceKind::LoadBalancer => vec![
            account,
            region,
            name,
            rtype("Type"),
            state,
            Col::attr("DNS name", "dns_name"),
            Col::attr("Scheme", "scheme"),
            created("Created"),
        ],
        ResourceKind::TargetGroup => vec![
            account,
            region,
            name,
            rtype("Target type"),
            state,
            Col::attr("Protocol", "protocol"),
            Col::attr("Port", "port"),
            Col::attr("Healthy", "healthy_count"),
            Col::attr("Unhealthy", "unhealthy_count"),
        ],
        ResourceKind::AutoScalingGroup => vec![
            account,
            region,
            name,
            Col::attr("Desired", "desired_capacity"),
            Col::attr("Min", "min_size"),
            Col::attr("Max", "max_size"),
            Col::attr("Launch template", "launch_template_name"),
            created("Created"),
        ],
        ResourceKind::DbInstance => vec![
            account,
            region,
            name,
            state,
            rtype("Class"),
            Col::attr("Engine", "engine"),
            Col::attr("Version", "engine_version"),
            size("Storage"),
            Col::attr("Multi-AZ", "multi_az"),
            Col::attr("Endpoint", "endpoint"),
        ],
        ResourceKind::DynamodbTable => vec![
            account,
            region,
            name,
            state,
            rtype("Billing"),
            Col::attr("Items", "item_count"),
            Col::attr("Bytes", "size_bytes"),
            created("Created"),
        ],
        ResourceKind::CacheCluster => vec![
            account,
            region,
            name,
            state,
            rtype("Node type"),
            Col::attr("Engine", "engine"),
            Col::attr("Version", "engine_version"),
            Col::attr("Nodes", "num_nodes"),
            Col::attr("Endpoint", "endpoint"),
        ],
        ResourceKind::ReplicationGroup => vec![
            account,
            region,
            name,
            state,
            rtype("Node type"),
            Col::attr("Members", "member_clusters"),
            Col::attr("Primary endpoint", "primary_endpoint"),
        ],
        ResourceKind::Stack => vec![
            account,
            region,
            name,
            state,
            Col::attr("Description", "description"),
            created("Created"),
        ],
        ResourceKind::HostedZone => vec![
            account,
            name,
            id("Zone ID"),
            state,
            Col::attr("Records", "record_count"),
            Col::attr("Comment", "comment"),
        ],
        ResourceKind::DnsRecord => vec![
            account,
            name,
            rtype("Type"),
            Col::attr("Values", "values"),
            Col::attr("Alias target", "alias_target"),
            Col::attr("TTL", "ttl"),
            Col::attr("Zone", "zone_name"),
        ],
        ResourceKind::Queue => vec![
            account,
            region,
            name,
            Col::attr("Visible", "visible_messages"),
            Col::attr("In flight", "in_flight_messages"),
            Col::attr("Dead-letter target", "dead_letter_target_arn"),
            created("Created"),
        ],
        ResourceKind::Topic => vec![
            account,
            region,
            name,
            Col::attr("Subscriptions", "subscription_count"),
            Col::attr("Display name", "display_name"),
        ],
        ResourceKind::Bucket => vec![account, region, name, created("Created")],
        ResourceKind::Alarm => vec![
            account,
            region,
            name,
            state,
            Col::attr("Metric", "metric"),
            Col::attr("Namespace", "namespace"),
            Col::attr("Comparison", "comparison"),
            Col::attr("Threshold", "threshold"),
            Col::attr("State since", "state_updated"),
        ],
    }
}

fn states_of(kind: ResourceKind) -> &'static [&'static str] {
    match kind {
        ResourceKind::Instance => &[
            "pending",
            "running",
            "stopping",
            "stopped",
            "shutting-down",
            "terminated",
        ],
        ResourceKind::Volume => &["creating", "available", "in-use", "deleting", "error"],
        ResourceKind::Image => &["pending", "available", "failed"],
        ResourceKind::Snapshot => &["pending", "completed", "error"],
        ResourceKind::ElasticIp => &["associated", "unassociated"],
        ResourceKind::Alarm => &["ok", "alarm", "insufficient_data"],
        ResourceKind::DbInstance => &[
            "available",
            "creating",
            "modifying",
            "stopped",
            "stopping",
            "starting",
            "deleting",
        ],
        ResourceKind::HostedZone => &["public", "private"],
        _ => &[],
    }
}

fn href(path: &str, pairs: &[(&str, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    let q = s.finish();
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{q}")
    }
}

async fn list(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
    kind: Option<ResourceKind>,
) -> Result<Response, PageError> {
    // A search that does not parse is shown next to the search box (with
    // the text as typed), not as an error page.
    let (mut q, raw_q, search_error) = match parse_query(raw.as_deref()) {
        Ok(q) => (q, None, None),
        Err(AppError::BadParameter { parameter, message }) if parameter == "q" => {
            let pairs: Vec<(String, String)> =
                url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            let typed = pairs.iter().find(|(k, _)| k == "q").map(|(_, v)| v.clone());
            let rest = pairs
                .iter()
                .filter(|(k, _)| k != "q")
                .map(|(k, v)| (k.as_str(), v.as_str()));
            (
                ResourceQuery::from_pairs(rest).map_err(AppError::from)?,
                typed,
                Some(message),
            )
        }
        Err(e) => return Err(e.into()),
    };
    if kind.is_some() {
        q.kind = kind;
    }
    let page_data = if search_error.is_some() {
        skyhold_store::Page {
            items: Vec::new(),
            next_cursor: None,
        }
    } else {
        app.list_resources(&actor, &q).await?
    };
    // A first page that is also the last one already holds the whole count;
    // otherwise the page is sent at once and the browser asks for the
    // (bounded) count separately, so counting never delays the rows.
    let total = (page_data.next_cursor.is_none() && q.cursor.is_none())
        .then_some(page_data.items.len() as i64);
    let count_href = {
        let mut p: Vec<(&str, String)> = q
            .to_pairs()
            .into_iter()
            .filter(|(k, _)| !matches!(*k, "cursor" | "limit" | "sort"))
            .collect();
        if let Some(k) = kind {
            p.retain(|(key, _)| *key != "kind");
            p.push(("kind", k.as_str().to_owned()));
        }
        href("/api/v1/resources/count", &p)
    };
    let accounts = app.accounts(&actor).await?;
    let mut regions: Vec<String> = accounts.iter().flat_map(|a| a.regions.clone()).collect();
    regions.sort();
    regions.dedup();
    let path = kind.map_or("/search", kind_path);
    let title = kind.map_or("Search", ResourceKind::label);
    let base: Vec<(&str, String)> = q
        .to_pairs()
        .into_iter()
        .filter(|(k, _)| *k != "kind" || kind.is_none())
        .collect();
    let now = app.now();
    let view_text = q.as_search_text();
    let has_filter = !(q.search.is_empty()
        && q.accounts.is_empty()
        && q.regions.is_empty()
        && q.states.is_empty()
        && q.types.is_empty());
    let cols = kind.map_or_else(search_columns, columns);
    // Bulk actions: a checkbox on each row the actor may operate.
    let pick: Vec<bool> = page_data
        .items
        .iter()
        .map(|r| super::action_pages::bulk_selectable(&app, &actor, r))
        .collect();
    let bulk = search_error.is_none() && pick.iter().any(|p| *p);
    let here = match raw.as_deref() {
        Some(r) if !r.is_empty() => format!("{path}?{r}"),
        _ => path.to_owned(),
    };
    let states: &[&str] = kind.map_or(&[], states_of);
    let sort_href = |key: SortKey| {
        let desc = q.sort == key && !q.descending;
        let mut p: Vec<(&str, String)> =
            base.iter().filter(|(k, _)| *k != "sort").cloned().collect();
        p.push((
            "sort",
            if desc {
                format!("-{}", key.as_str())
            } else {
                key.as_str().to_owned()
            },
        ));
        href(path, &p)
    };
    let sel = |list: &[String], v: &str| list.iter().any(|x| x == v);
    let first_account = q
        .accounts
        .first()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let body = html! {
        h1 { (title) }
        form.filters method="get" action=(path) {
            input type="search" name="q" value=(raw_q.clone().unwrap_or_else(|| q.search.to_string())) placeholder="Search: words, state:running, type:t3.*, tag:env=prod, -tag:owner, age>7d   ( / )" aria-label="Search";
            select name="account" aria-label="Account" {
                option value="" { "All accounts" }
                @for a in &accounts { option value=(a.name) selected[first_account == a.name] { (a.name) } }
            }
            select name="region" aria-label="Region" {
                option value="" { "All regions" }
                @for r in &regions { option value=(r) selected[sel(&q.regions, r)] { (r) } }
            }
            @if !states.is_empty() {
                select name="state" aria-label="State" {
                    option value="" { "Any state" }
                    @for s in states { option value=(s) selected[sel(&q.states, s)] { (s) } }
                }
            }
            input type="text" name="type" value=(q.types.join(",")) placeholder="type" size="10" aria-label="Type";
            @if q.sort != SortKey::Name || q.descending {
                input type="hidden" name="sort" value=(if q.descending { format!("-{}", q.sort.as_str()) } else { q.sort.as_str().to_owned() });
            }
            label { input type="checkbox" name="include_deleted" value="true" checked[q.include_deleted]; " deleted" }
            button.primary type="submit" { "Filter" }
            a href=(path) { "Reset" }
        }
        div #results {
        @if let Some(e) = &search_error {
            div.error { "Search: " (e) }
            p.dim { "Terms: words, kind:, account:, region:, state:, type:, owner:, name:, id: (globs * ?, lists a,b), tag:KEY=VALUE, tag:KEY, age>7d, launched<2026-01-01; a leading - negates." }
        } @else if page_data.items.is_empty() {
            p.dim { "Nothing matches. " @if total == Some(0) && q.search.is_empty() { "Has a sync run yet? See " a href="/sync" { "Sync" } "." } }
        } @else {
            table.grid {
                thead { tr {
                    @if bulk { th.pick { input type="checkbox" form="bulk" data-select-all aria-label="Select all rows"; } }
                    @for c in &cols {
                        th { @match c.sort {
                            Some(k) => { a href=(sort_href(k)) { (c.label) @if q.sort == k { (if q.descending { " ▾" } else { " ▴" }) } } }
                            None => { (c.label) }
                        } }
                    }
                } }
                tbody {
                    @for (r, p) in page_data.items.iter().zip(&pick) {
                        tr class=[r.deleted_at.is_some().then_some("deleted")] {
                            @if bulk { td.pick { @if *p { input type="checkbox" name="id" value=(r.id.0) form="bulk" aria-label="Select this row"; } } }
                            @for c in &cols { td { (c.render(r, now)) } }
                        }
                    }
                }
            }
            @if bulk {
                form #bulk method="post" action="/bulk" data-confirm="Apply this action to every selected row?" {
                    input type="hidden" name="csrf" value=(csrf_of(&actor));
                    (super::action_pages::bulk_bar(&here, kind))
                }
            }
        }
        @if has_filter && search_error.is_none() {
            div.saveview { (super::views::save_form(&actor, &view_text)) }
        }
        div.pager {
            @match total {
                Some(n) => { span { (n) " matching" } }
                None => { span.count data-count=(count_href) { "counting…" } }
            }
            @if q.cursor.is_some() { a href=(href(path, &base)) { "« First page" } }
            @if let Some(c) = &page_data.next_cursor {
                @let next: Vec<(&str, String)> = base.iter().cloned().chain([("cursor", c.encode())]).collect();
                a href=(href(path, &next)) { "Next page »" }
            }
        }
        }
    };
    let status = if search_error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let active = kind.map_or("search", ResourceKind::as_str);
    Ok((
        status,
        page(title, Some((&actor, &app.enabled_kinds())), active, body),
    )
        .into_response())
}

/// Columns of the cross-kind search page.
fn search_columns() -> Vec<Col> {
    vec![
        Col::new(
            Some(SortKey::Kind),
            "Kind",
            |r, _| html! { (r.observed.kind.as_str()) },
        ),
        Col::new(
            Some(SortKey::Account),
            "Account",
            |r, _| html! { (r.account) },
        ),
        Col::new(Some(SortKey::Region), "Region", |r, _| html! { (r.region) }),
        Col::new(Some(SortKey::Name), "Name", name_cell),
        Col::new(
            Some(SortKey::ProviderId),
            "ID",
            |r, _| html! { span.mono { (r.observed.provider_id) } },
        ),
        Col::new(Some(SortKey::State), "State", |r, _| {
            state_badge(&r.observed.state)
        }),
        Col::new(Some(SortKey::Type), "Type", |r, _| empty(&r.observed.rtype)),
        Col::new(Some(SortKey::Owner), "Owner", |r, _| {
            empty(&r.observed.owner)
        }),
        Col::new(Some(SortKey::LaunchTime), "Created", |r, _| {
            time(r.observed.created_at)
        }),
    ]
}

// ---------------------------------------------------------------- detail

fn value_cell(v: &Value) -> Markup {
    match v {
        Value::String(s) => empty(s),
        Value::Null => empty(""),
        Value::Array(a) if a.iter().all(Value::is_string) => {
            html! { (a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")) }
        }
        other => html! { span.mono { (other.to_string()) } },
    }
}

fn rules_table(title: &str, rules: Option<&Value>) -> Markup {
    let rules = rules.and_then(Value::as_array).cloned().unwrap_or_default();
    html! {
        h2 { (title) " (" (rules.len()) ")" }
        @if !rules.is_empty() {
            table.grid {
                thead { tr { th { "Protocol" } th { "Ports" } th { "Sources" } } }
                tbody { @for r in &rules {
                    @let from = r.get("from_port").and_then(Value::as_i64);
                    @let to = r.get("to_port").and_then(Value::as_i64);
                    tr {
                        td { (r.get("protocol").and_then(Value::as_str).unwrap_or("all")) }
                        td { @match (from, to) {
                            (Some(f), Some(t)) if f == t => { (f) }
                            (Some(f), Some(t)) => { (f) "–" (t) }
                            _ => { "all" }
                        } }
                        td.mono.wrap { (value_cell(r.get("sources").unwrap_or(&Value::Null))) }
                    }
                } }
            }
        }
    }
}

/// What the detail page shows after a form: the action just asked for
/// (`action`, its row id) or the code it was refused with (`refused`), and
/// a permission change (`done`). Anything else is ignored.
#[derive(Default)]
struct DetailQuery {
    action: Option<String>,
    refused: Option<String>,
    done: Option<String>,
}

impl DetailQuery {
    fn parse(raw: Option<&str>) -> Self {
        let mut q = DetailQuery::default();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let slot = match k.as_ref() {
                "action" => &mut q.action,
                "refused" => &mut q.refused,
                "done" => &mut q.done,
                _ => continue,
            };
            slot.get_or_insert_with(|| v.into_owned());
        }
        q
    }
}

async fn detail(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::bad_parameter("id", format!("not a resource id: {id:?}")))?;
    let after = DetailQuery::parse(raw.as_deref());
    let d = app.resource(&actor, ResourceId(id)).await?;
    let r = &d.resource;
    let o = &r.observed;
    let (recent, _) = app.actions(&actor, Some(r.id), None, None, 20).await?;
    let keep = app.keep_status(r).await?;
    let grants = if app.allows(&actor, Action::ViewGrants, Object::Resource(r)) {
        let object = format!("resource:{}", r.id.0);
        Some(app.grants(&actor, Some(&object), None).await?)
    } else {
        None
    };
    let title = if o.name.is_empty() {
        o.provider_id.clone()
    } else {
        o.name.clone()
    };
    let skip = super::services::sectioned_attributes(o.kind);
    let ledger = app.ledger(&actor, r.id).await?;
    let idle_no_data = o.kind == ResourceKind::Instance && app.idle_no_data(r.id).await;
    let history = if o.kind == ResourceKind::Alarm && r.deleted_at.is_none() {
        Some(app.alarm_history(&actor, r.id).await)
    } else {
        None
    };
    let body = html! {
        p.dim { a href=(kind_path(o.kind)) { (o.kind.label()) } " / " (o.provider_id) }
        h1 { (title) " " @if !o.state.is_empty() { (state_badge(&o.state)) } }
        (super::forms::notice(after.done.as_deref(), super::permissions::NOTICES))
        form.filters method="post" action=(format!("/resources/{}/refresh", r.id.0)) {
            input type="hidden" name="csrf" value=(csrf_of(&actor));
            button type="submit" title="Read this resource again from the provider now" { "Refresh" }
            a href="#actions" { "Actions" }
            @if grants.is_some() { a href="#permissions" { "Permissions" } }
        }
        @if let Some(t) = r.deleted_at { div.error { "This resource is gone: tombstoned at " (time(Some(t))) "." } }
        dl.facts {
            dt { "Account" } dd { (r.account) }
            dt { "Region" } dd { (r.region) }
            dt { "Kind" } dd { (o.kind.as_str()) }
            dt { "Provider ID" } dd.mono { (o.provider_id) }
            dt { "Type" } dd { (empty(&o.rtype)) }
            dt { "Owner" } dd { (empty(&o.owner)) " " (super::action_pages::owner_form(&app, &actor, r)) }
            @if skyhold_core::expiry::expirable(o.kind) {
                dt { "Expires" } dd { (super::action_pages::expiry_field(&app, &actor, r)) }
                dt { "Keep" } dd { (super::action_pages::keep_field(&app, &actor, r, &keep)) }
            }
            @if o.kind == ResourceKind::Instance { dt { "Age" } dd { (age(o.created_at, now_millis())) } }
            @if let Some(f) = o.tags.get(skyhold_core::launch::FQDN_TAG) { dt { "DNS name" } dd.mono { (f) } }
            dt { "First seen" } dd { (time(Some(r.first_seen))) }
            dt { "Last seen" } dd { (time(Some(r.last_seen))) }
            @if idle_no_data {
                dt { "Idle policy" } dd { "no data: no CloudWatch datapoints, so never stopped as idle" }
            }
        }
        @if !ledger.is_empty() {
            h2 #usage { "Usage (" (ledger.len()) " intervals)" }
            table {
                thead { tr { th { "billed for" } th { "type" } th.num { "quantity" } th { "from" } th { "until" } th { "owner" } } }
                tbody {
                    @for l in ledger.iter().rev().take(20) {
                        tr {
                            td { (l.product) } td { (empty(&l.rtype)) } td.num { (l.quantity) }
                            td { (time(Some(l.started_at))) " " span.dim { "(" (l.start_how) ")" } }
                            td { @match l.ended_at { Some(t) => { (time(Some(t))) " " span.dim { "(" (l.end_how) ")" } }, None => { "open" } } }
                            td { (empty(&l.owner)) }
                        }
                    }
                }
            }
        }
        h2 #actions { "Actions" }
        (super::action_pages::panel(&app, &actor, r, &recent,
            after.action.as_deref().and_then(|a| a.parse().ok()), after.refused.as_deref()))
        @if let Some(grants) = &grants {
            h2 #permissions { "Permissions (" (grants.len()) ")" }
            (super::permissions::section(&actor, &format!("resource:{}", r.id.0), grants,
                app.allows(&actor, Action::ChangeGrants, Object::Resource(r)),
                &format!("/resources/{}#permissions", r.id.0)))
            @if app.allows(&actor, Action::ViewGrants, Object::Account(&r.account)) {
                p { a href={"/accounts/" (r.account) "/permissions"} { "Permissions on the account " (r.account) } " apply to it too." }
            }
        }
        h2 { "Attributes" }
        dl.facts {
            @for (k, v) in o.attributes.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
                dt { (k) } dd { (value_cell(v)) }
            }
        }
        @if o.kind == ResourceKind::SecurityGroup {
            (rules_table("Inbound rules", o.attributes.get("ingress")))
            (rules_table("Outbound rules", o.attributes.get("egress")))
        }
        (super::services::sections(r, app.may_browse(r), history.as_ref()))
        h2 { "Tags (" (o.tags.len()) ")" }
        @if o.tags.is_empty() { p.dim { "No tags." } } @else {
            table.grid { thead { tr { th { "Key" } th { "Value" } } } tbody {
                @for (k, v) in &o.tags { tr { td.mono { (k) } td.wrap { (v) } } }
            } }
        }
        h2 { "History (" (d.history.len()) ")" }
        @if d.history.is_empty() { p.dim { "No changes seen since it was first synced." } } @else {
            (events_table(&d.history, false))
        }
        @for (kind, rs) in &d.related {
            h2 { (kind.label()) " (" (rs.len()) ")" }
            table.grid { thead { tr { th { "Name" } th { "ID" } th { "State" } th { "Type" } } } tbody {
                @for x in rs { tr class=[x.deleted_at.is_some().then_some("deleted")] {
                    td { (name_cell(x, 0)) } td.mono { (x.observed.provider_id) } td { (state_badge(&x.observed.state)) } td { (x.observed.rtype) }
                } }
            } }
        }
    };
    Ok(page(
        &title,
        Some((&actor, &app.enabled_kinds())),
        o.kind.as_str(),
        body,
    ))
}

// ---------------------------------------------------------------- dashboard

/// A horizontal bar chart drawn as SVG on the server; each bar links to the
/// search that lists what it counts.
fn bars(title: &str, rows: &[(String, i64)], link: impl Fn(&str) -> String) -> Markup {
    const ROW: i64 = 20;
    const LABEL: i64 = 110;
    const BAR: i64 = 130;
    let rows = &rows[..rows.len().min(12)];
    let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let height = ROW * rows.len() as i64 + 4;
    html! {
        div.card {
            h2 { (title) }
            @if rows.is_empty() { p.dim { "None yet." } } @else {
                svg.chart width=(LABEL + BAR + 60) height=(height) viewBox={"0 0 " (LABEL + BAR + 60) " " (height)} role="img" aria-label=(title) {
                    @for (i, (k, n)) in rows.iter().enumerate() {
                        @let y = i as i64 * ROW;
                        @let w = (n * BAR / max).max(2);
                        a href=(link(k)) {
                            title { (k) ": " (n) }
                            text x="0" y=(y + 14) class="lbl" { (if k.is_empty() { "(none)" } else { k.as_str() }) }
                            rect x=(LABEL) y=(y + 4) width=(w) height="12" rx="2" {}
                            text x=(LABEL + w + 6) y=(y + 14) class="n" { (n) }
                        }
                    }
                }
            }
        }
    }
}

fn figure(title: &str, link: &str, value: Markup) -> Markup {
    html! { div.card { h2 { a href=(link) { (title) } } div.big { (value) } } }
}

/// A count made up to `COUNT_CAP` + 1 (more reads "more than" the cap).
fn bounded(n: i64) -> Markup {
    html! {
        @if n > crate::app::COUNT_CAP { "more than " (crate::app::COUNT_CAP) } @else { (n) }
    }
}

async fn dashboard(State(app): State<AppState>, Extension(actor): Extension<Actor>) -> PageResult {
    let d = app.dashboard(&actor).await?;
    let accounts = app.accounts(&actor).await?;
    let count = |k: ResourceKind| {
        d.per_kind
            .iter()
            .find(|(n, _)| n == k.as_str())
            .map_or(0, |(_, n)| *n)
    };
    let inst = |key: &'static str| move |v: &str| href("/instances", &[(key, v.to_owned())]);
    let body = html! {
        h1 { "Dashboard" }
        div.cards {
            @for k in app.enabled_kinds() {
                div.card { h2 { a href=(kind_path(k)) { (k.label()) } } div.big { (count(k)) } }
            }
        }
        h2 { "Capacity and waste" }
        div.cards {
            (figure("Running vCPUs", "/instances?state=running", html! { (d.running_vcpus) }))
            (figure("Running memory", "/instances?state=running", html! { (d.running_memory_mib / 1024) " GiB" }))
            @if d.running_unknown_type > 0 {
                (figure("Running, size unknown", "/instances?state=running", html! { (d.running_unknown_type) }))
            }
            (figure("Volume storage", "/volumes", html! { (d.volume_gib) " GiB" }))
            (figure("Unattached volumes", "/volumes?state=available", html! { (d.unattached_volumes) }))
            (figure("Unassociated elastic IPs", "/elastic-ips?state=unassociated", html! { (d.unassociated_ips) }))
            (figure(&format!("Stopped for more than {} days", d.stopped_days),
                &href("/instances", &[("q", format!("stopped>{}d", d.stopped_days))]),
                html! { (bounded(d.stopped_long)) }))
            (figure("Alarms in ALARM", "/alarms?state=alarm", html! { (d.alarms_in_alarm) }))
            (figure("Orphaned", "/orphans", html! { (bounded(d.orphans)) }))
        }
        h2 { "Instances" }
        div.cards {
            (bars("By state", &d.instances_by_state, inst("state")))
            (bars("By account", &d.instances_by_account, inst("account")))
            (bars("By region", &d.instances_by_region, inst("region")))
            (bars("By type", &d.instances_by_type, inst("type")))
        }
        h2 { "Accounts" }
        table.grid {
            thead { tr { th { "Account" } th { "Regions" } th { "Credentials" } th { "Last complete sync" } th { "Failing listings" } } }
            tbody { @for a in &accounts {
                @let mine: Vec<_> = d.sync.iter().filter(|s| s.account == a.name).collect();
                @let done = if mine.is_empty() || mine.iter().any(|s| s.last_success.is_none()) { None } else { mine.iter().filter_map(|s| s.last_success).min() };
                @let failing = mine.iter().filter(|s| s.last_error.is_some()).count();
                tr {
                    td { a href=(href("/instances", &[("account", a.name.clone())])) { (a.name) } }
                    td { (a.regions.join(", ")) }
                    td.dim { (a.auth) }
                    td { (time(done)) }
                    td { @if failing > 0 { a href="/sync" { span.badge.s-bad { (failing) } } } @else { span.dim { "0" } } }
                }
            } }
        }
    };
    Ok(page(
        "Dashboard",
        Some((&actor, &app.enabled_kinds())),
        "dashboard",
        body,
    ))
}

// ---------------------------------------------------------------- changes

fn change_text(c: &Value) -> String {
    let show = |v: &Value| match v {
        Value::Null => "—".to_owned(),
        Value::String(s) if s.is_empty() => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!(
        "{}: {} → {}",
        c.get("field").and_then(Value::as_str).unwrap_or("?"),
        show(c.get("from").unwrap_or(&Value::Null)),
        show(c.get("to").unwrap_or(&Value::Null))
    )
}

fn events_table(events: &[skyhold_store::ChangeEvent], with_resource: bool) -> Markup {
    html! {
        table.grid {
            thead { tr {
                th { "When" } th { "Event" }
                @if with_resource { th { "Kind" } th { "Account" } th { "Region" } th { "Resource" } }
                th { "What changed" }
            } }
            tbody { @for e in events {
                tr {
                    td { (time(Some(e.at))) }
                    td { (state_badge(match e.event.as_str() { "appeared" | "reappeared" => "running", "disappeared" => "terminated", _ => "pending" })) " " (e.event) }
                    @if with_resource {
                        td { (e.kind) } td { (e.account) } td { (e.region) }
                        td { @match e.resource_id {
                            Some(id) => { a href={"/resources/" (id)} { (if e.name.is_empty() { &e.provider_id } else { &e.name }) } }
                            None => { (e.provider_id) }
                        } }
                    }
                    td.wrap { @for c in e.changes.as_array().map(Vec::as_slice).unwrap_or(&[]) { div.mono { (change_text(c)) } } }
                }
            } }
        }
    }
}

async fn changes_page(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let (events, next) = app.changes(&actor, &pairs).await?;
    let since = pairs
        .iter()
        .find(|(k, _)| k == "since")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "24h".into());
    let kind = pairs
        .iter()
        .find(|(k, _)| k == "kind")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let body = html! {
        h1 { "Changes" }
        form.filters method="get" action="/changes" {
            label { "Since " input type="text" name="since" value=(since) size="22" aria-label="Since"; }
            select name="kind" aria-label="Kind" {
                option value="" { "All kinds" }
                @for k in app.enabled_kinds() { option value=(k.as_str()) selected[kind == k.as_str()] { (k.label()) } }
            }
            button.primary type="submit" { "Show" }
            span.dim { "e.g. 24h, 7d, 2026-11-01" }
        }
        @if events.is_empty() { p.dim { "No changes in this period." } } @else { (events_table(&events, true)) }
        @if let Some(n) = next {
            @let mut p: Vec<(&str, String)> = pairs.iter().filter(|(k, _)| k != "cursor").map(|(k, v)| (k.as_str(), v.clone())).collect();
            div.pager { a href=(href("/changes", &{ p.push(("cursor", n.to_string())); p })) { "Older »" } }
        }
    };
    Ok(page(
        "Changes",
        Some((&actor, &app.enabled_kinds())),
        "changes",
        body,
    ))
}

/// The detail page's "Refresh" button: targeted refresh, then back.
async fn refresh_now(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    check_csrf(&actor, &f.csrf)?;
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::bad_parameter("id", format!("not a resource id: {id:?}")))?;
    app.refresh_resource(&actor, ResourceId(id)).await?;
    Ok(Redirect::to(&format!("/resources/{id}")))
}

// ---------------------------------------------------------------- sync

#[derive(Deserialize, Default)]
struct SyncPageQuery {
    started: Option<String>,
}

async fn sync_page(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Query(sq): Query<SyncPageQuery>,
) -> PageResult {
    let statuses = app.sync_status(&actor).await?;
    let accounts = app.accounts(&actor).await?;
    let records = app.dns_records(&actor, 100).await?;
    let can_sync = app.allows(
        &actor,
        crate::app::Action::TriggerSync,
        crate::app::Object::None,
    );
    let body = html! {
        h1 { "Sync" }
        @if sq.started.is_some() { div.ok { "Sync started. Reload this page to follow it." } }
        p.dim { "Each account, region and kind is a job, run every " (humantime::format_duration(app.config.sync_interval)) " (unless configured otherwise) by whichever replica takes it first, and on demand." }
        @if can_sync {
            form.filters method="post" action="/sync" {
                input type="hidden" name="csrf" value=(csrf_of(&actor));
                select name="account" aria-label="Account" {
                    option value="" { "All accounts" }
                    @for a in &accounts { option value=(a.name) { (a.name) } }
                }
                button.primary type="submit" { "Sync now" }
            }
        }
        table.grid {
            thead { tr { th { "Account" } th { "Region" } th { "Kind" } th { "Last attempt" } th { "Last success" } th { "Next due" } th { "Duration" } th { "Count" } th { "Replica" } th { "Last error" } } }
            tbody { @for s in &statuses { tr {
                td { (s.account) } td { (s.region) } td { (s.kind) }
                td { (time(Some(s.last_attempt))) } td { (time(s.last_success)) }
                td { (time(s.next_due)) }
                td { (s.duration_ms) " ms" } td { (s.item_count) }
                td { @if let Some(h) = &s.running_on { span.badge.s-good { "running" } " on " (h) } @else { (s.holder.as_deref().unwrap_or("—")) } }
                td.wrap { @if let Some(e) = &s.last_error {
                    @if s.error_kind.as_deref() == Some("throttled") { span.badge.s-warn { "throttled" } } @else { span.badge.s-bad { "error" } }
                    " " (e)
                } @else { span.dim { "—" } } }
            } } }
        }
        h2 #dns { "DNS records of launched servers" }
        p.dim { "Kept in step with their servers after every launch and action and every " (humantime::format_duration(std::time::Duration::from_millis((app.config.action_timeout.as_millis() as u64) * 2 + 5_000))) "; only records skyhold made are touched." }
        @if records.is_empty() { p.dim { "None yet." } } @else {
            table.grid {
                thead { tr { th { "Name" } th { "Type" } th { "Address" } th { "Instance" } th { "State" } th { "Updated" } th { "Last error" } } }
                tbody { @for r in &records { tr class=[(r.state == "removed").then_some("deleted")] {
                    td { (r.name) } td { (r.rtype) } td.mono { (empty(&r.value)) } td.mono { (r.provider_id) }
                    td { (r.state) } td { (time(Some(r.updated_at))) }
                    td.wrap { (empty(&r.error)) }
                } } }
            }
        }
    };
    Ok(page(
        "Sync",
        Some((&actor, &app.enabled_kinds())),
        "sync",
        body,
    ))
}

async fn sync_now(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Form(f): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    check_csrf(&actor, &f.csrf)?;
    app.trigger_sync(&actor, f.account.as_deref(), false)
        .await?;
    Ok(Redirect::to("/sync?started=1"))
}
