//! Page furniture: layout, navigation, small formatting helpers, and the
//! embedded stylesheet and script (no build step).

use crate::app::{decide, Action, Actor, AuthVia, Decision, Object, Policy};
use axum::http::header;
use axum::response::IntoResponse;
use maud::{html, Markup, DOCTYPE};
use skyhold_core::{Millis, ResourceKind};

pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}

pub async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        JS,
    )
}

pub async fn favicon() -> impl IntoResponse {
    let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#151a24"/><path d="M3 11h10M5 8h6M7 5h2" stroke="#7aa2ff" stroke-width="1.6"/></svg>"##;
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        svg,
    )
}

/// The list page path of a kind.
pub fn kind_path(k: ResourceKind) -> &'static str {
    match k {
        ResourceKind::Instance => "/instances",
        ResourceKind::Volume => "/volumes",
        ResourceKind::Image => "/images",
        ResourceKind::SecurityGroup => "/security-groups",
        ResourceKind::KeyPair => "/key-pairs",
        ResourceKind::Snapshot => "/snapshots",
        ResourceKind::ElasticIp => "/elastic-ips",
        ResourceKind::Vpc => "/vpcs",
        ResourceKind::Subnet => "/subnets",
        ResourceKind::LaunchTemplate => "/launch-templates",
        ResourceKind::LoadBalancer => "/load-balancers",
        ResourceKind::TargetGroup => "/target-groups",
        ResourceKind::AutoScalingGroup => "/auto-scaling-groups",
        ResourceKind::DbInstance => "/db-instances",
        ResourceKind::DynamodbTable => "/dynamodb-tables",
        ResourceKind::CacheCluster => "/cache-clusters",
        ResourceKind::ReplicationGroup => "/replication-groups",
        ResourceKind::Stack => "/stacks",
        ResourceKind::HostedZone => "/hosted-zones",
        ResourceKind::DnsRecord => "/dns-records",
        ResourceKind::Queue => "/queues",
        ResourceKind::Topic => "/topics",
        ResourceKind::Bucket => "/buckets",
        ResourceKind::Alarm => "/alarms",
    }
}

/// The kinds grouped by service, in the order given (the navigation's menus).
fn by_service(kinds: &[ResourceKind]) -> Vec<(&'static str, Vec<ResourceKind>)> {
    let mut groups: Vec<(&'static str, Vec<ResourceKind>)> = Vec::new();
    for k in kinds.iter().copied() {
        match groups.iter_mut().find(|(s, _)| *s == k.service()) {
            Some((_, g)) => g.push(k),
            None => groups.push((k.service(), vec![k])),
        }
    }
    groups
}

/// Whether the navigation offers a page decided by role alone (users, the
/// audit log): `decide` on no object, which needs no policy.
fn may(actor: &Actor, action: Action) -> bool {
    decide(&Policy::default(), actor, action, Object::None) == Decision::Allow
}

pub fn csrf_of(actor: &Actor) -> &str {
    match &actor.via {
        AuthVia::Session { csrf, .. } => csrf,
        _ => "",
    }
}

/// A full page. `nav` is the signed-in user and the kinds to offer in the
/// navigation (none on the login and error pages).
pub fn page(
    title: &str,
    nav: Option<(&Actor, &[ResourceKind])>,
    active: &str,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · skyhold" }
                link rel="stylesheet" href="/static/app.css";
                link rel="icon" href="/favicon.ico" type="image/svg+xml";
                script src="/static/app.js" defer {}
            }
            body {
                @if let Some((a, kinds)) = nav {
                    header.top {
                        a.brand href="/" { "skyhold" }
                        nav {
                            a href="/" class=[(active == "dashboard").then_some("on")] { "Dashboard" }
                            @for (service, group) in by_service(kinds) {
                                @if let [k] = group.as_slice() {
                                    a href=(kind_path(*k)) class=[(active == k.as_str()).then_some("on")] { (k.label()) }
                                } @else {
                                    details.menu {
                                        summary class=[group.iter().any(|k| active == k.as_str()).then_some("on")] { (service) }
                                        div {
                                            @for k in &group {
                                                a href=(kind_path(*k)) class=[(active == k.as_str()).then_some("on")] { (k.label()) }
                                            }
                                        }
                                    }
                                }
                            }
                            a href="/blueprints" class=[(active == "blueprints").then_some("on")] { "Launch" }
                            a href="/changes" class=[(active == "changes").then_some("on")] { "Changes" }
                            a href="/views" class=[(active == "views").then_some("on")] { "Views" }
                            a href="/sync" class=[(active == "sync").then_some("on")] { "Sync" }
                            a href="/reports" class=[(active == "reports").then_some("on")] { "Reports" }
                            details.menu {
                                summary class=[matches!(active, "orphans" | "groups" | "users" | "audit" | "quotas" | "policies" | "notifications").then_some("on")] { "Access" }
                                div {
                                    a href="/orphans" class=[(active == "orphans").then_some("on")] { "Orphans" }
                                    @if may(a, Action::ViewGroups) { a href="/groups" class=[(active == "groups").then_some("on")] { "Groups" } }
                                    @if may(a, Action::ViewUsers) { a href="/users" class=[(active == "users").then_some("on")] { "Users" } }
                                    @if may(a, Action::ViewAudit) { a href="/audit" class=[(active == "audit").then_some("on")] { "Audit log" } }
                                    @if may(a, Action::ViewQuotas) { a href="/quotas" class=[(active == "quotas").then_some("on")] { "Quotas" } }
                                    @if may(a, Action::ViewPolicies) { a href="/policies" class=[(active == "policies").then_some("on")] { "Policies" } }
                                    @if may(a, Action::ViewNotifications) { a href="/notifications" class=[(active == "notifications").then_some("on")] { "Notifications" } }
                                }
                            }
                        }
                        form.quick method="get" action="/search" role="search" {
                            input type="search" name="q" placeholder="Search everything" aria-label="Search everything";
                        }
                        div.who {
                            a href="/profile" title="Your profile" class=[(active == "profile").then_some("on")] { (a.username) " " span.role { "(" (a.role.as_str()) ")" } }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(csrf_of(a));
                                button.link type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn state_badge(state: &str) -> Markup {
    let class = match state {
        "running" | "available" | "in-use" | "ok" => "s-good",
        "pending" | "stopping" | "shutting-down" | "creating" => "s-warn",
        "terminated" | "deleted" | "deleting" | "error" | "failed" | "deregistered" => "s-bad",
        _ => "s-idle",
    };
    html! { span class={"badge " (class)} { (state) } }
}

pub fn time(ms: Option<Millis>) -> Markup {
    match ms {
        None | Some(0) => html! { span.dim { "—" } },
        Some(ms) => {
            let t = skyhold_core::rfc3339(ms);
            html! { time datetime=(t) title=(t) { (t.replace('T', " ").trim_end_matches('Z')) } }
        }
    }
}

/// "3d 4h", "12m": how long ago.
pub fn age(ms: Option<Millis>, now: Millis) -> String {
    let Some(ms) = ms.filter(|m| *m > 0) else {
        return String::new();
    };
    let s = (now - ms).max(0) / 1000;
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

pub fn empty(s: &str) -> Markup {
    if s.is_empty() {
        html! { span.dim { "—" } }
    } else {
        html! { (s) }
    }
}

const CSS: &str = r#"
:root { --fg:#1d2330; --dim:#6b7385; --line:#e3e6ec; --bg:#f6f7f9; --acc:#2f5bea; --good:#1a7f37; --warn:#9a6700; --bad:#cf222e; }
* { box-sizing: border-box; }
body { margin:0; font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
a { color: var(--acc); text-decoration: none; } a:hover { text-decoration: underline; }
header.top { display:flex; align-items:center; gap:16px; padding:6px 16px; min-height:44px; background:#151a24; color:#d8dce6; }
header.top a { color:#c4cad6; } header.top a.on { color:#fff; font-weight:600; box-shadow: inset 0 -2px 0 #7aa2ff; }
.who { white-space:nowrap; flex:none; }
header.top nav { display:flex; flex-wrap:wrap; gap:4px 12px; flex:1 1 auto; min-width:0; font-size:12.5px; white-space:nowrap; }
form.quick input { background:#232a38; border-color:#39424f; color:#e6e9ef; width:170px; } header.top nav a { display:flex; align-items:center; }
.brand { font-weight:700; color:#fff !important; letter-spacing:.3px; }
.who { margin-left:auto; display:flex; gap:10px; align-items:center; } .role { color:#8f98aa; font-size:11px; }
button.link { background:none; border:0; color:#c4cad6; cursor:pointer; font:inherit; padding:0; }
main { padding:16px; max-width: 1600px; margin: 0 auto; }
h1 { font-size:18px; margin:4px 0 12px; } h2 { font-size:14px; margin:18px 0 8px; }
.dim { color:var(--dim); } .mono, td.mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size:12px; }
form.filters { display:flex; flex-wrap:wrap; gap:8px; align-items:center; background:#fff; border:1px solid var(--line); padding:8px; border-radius:6px; margin-bottom:10px; }
input, select, button { font:inherit; padding:4px 7px; border:1px solid #c9ced8; border-radius:4px; background:#fff; }
input[type=search] { min-width: 280px; }
button.primary { background:var(--acc); color:#fff; border-color:var(--acc); cursor:pointer; }
table.grid { width:100%; border-collapse:collapse; background:#fff; border:1px solid var(--line); border-radius:6px; }
table.grid th, table.grid td { padding:5px 8px; border-bottom:1px solid var(--line); text-align:left; white-space:nowrap; }
table.grid th { background:#fafbfc; position:sticky; top:0; font-weight:600; font-size:12px; color:#444c5c; }
table.grid th a { color:inherit; } table.grid tr:hover td { background:#f3f6ff; }
table.grid td.wrap { white-space: normal; word-break: break-word; }
tr.deleted td { color:#9aa1ae; text-decoration: line-through; }
.badge { display:inline-block; padding:0 7px; border-radius:9px; font-size:11px; font-weight:600; line-height:18px; }
.s-good { background:#dafbe1; color:var(--good); } .s-warn { background:#fff8c5; color:var(--warn); }
.s-bad { background:#ffebe9; color:var(--bad); } .s-idle { background:#eaeef2; color:#57606a; }
.pager { display:flex; gap:14px; align-items:center; margin:10px 0; color:var(--dim); }
.cards { display:grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap:12px; }
.card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:12px; }
.card h2 { margin-top:0; } .big { font-size:26px; font-weight:700; }
svg.chart { display:block; max-width:100%; } svg.chart text { font-size:12px; fill:#1d2330; } svg.chart text.n { fill:#6b7385; }
svg.chart rect { fill:#7aa2ff; } svg.chart a:hover rect { fill:#2f5bea; } svg.chart a:hover text.lbl { fill:#2f5bea; }
dl.facts { display:grid; grid-template-columns: 180px 1fr; gap:4px 12px; background:#fff; border:1px solid var(--line); border-radius:6px; padding:10px 12px; margin:0; }
dl.facts dt { color:var(--dim); } dl.facts dd { margin:0; word-break: break-word; }
.error { background:#ffebe9; border:1px solid #ffcecb; color:#82071e; padding:8px 10px; border-radius:6px; margin-bottom:10px; }
.ok { background:#dafbe1; border:1px solid #aceebb; padding:8px 10px; border-radius:6px; margin-bottom:10px; }
.login { max-width:340px; margin:80px auto; background:#fff; border:1px solid var(--line); border-radius:8px; padding:22px; }
.login label { display:block; margin:10px 0 4px; } .login input { width:100%; } .login button { margin-top:14px; width:100%; }
a.button { display:block; box-sizing:border-box; text-align:center; padding:5px 7px; border:1px solid var(--acc); border-radius:4px; text-decoration:none; }
a.button.primary { background:var(--acc); color:#fff; } .login p.oidc { margin:14px 0 0; }
details.menu { position:relative; } details.menu summary { cursor:pointer; color:#c4cad6; list-style:none; }
details.menu summary::-webkit-details-marker { display:none; } details.menu summary::after { content:" ▾"; font-size:10px; }
details.menu summary.on { color:#fff; font-weight:600; }
details.menu > div { position:absolute; top:22px; left:-8px; z-index:20; background:#151a24; border:1px solid #39424f; border-radius:6px; padding:6px 10px; display:flex; flex-direction:column; gap:4px; min-width:170px; }
form.inline { display:inline-flex; gap:6px; align-items:center; margin:0; } .saveview { margin:8px 0; }
.crumbs { margin:6px 0 10px; } .crumbs a { margin-right:2px; }
pre.json { background:#fff; border:1px solid var(--line); border-radius:6px; padding:8px; overflow:auto; font-size:12px; }
button.danger { background:#fff; color:var(--bad); border-color:#f0a8a8; cursor:pointer; } button.link.danger { border:0; background:none; padding:0 2px; }
.actions { display:flex; flex-wrap:wrap; gap:8px; align-items:center; margin:8px 0; }
.rowforms { display:flex; flex-wrap:wrap; gap:6px 12px; } .member { display:inline-flex; align-items:center; gap:2px; margin-right:10px; }
form.panel { display:flex; flex-wrap:wrap; gap:8px; align-items:center; background:#fff; border:1px solid var(--line); padding:8px; border-radius:6px; margin-bottom:10px; }
.bulkbar { margin-top:8px; } td.pick, th.pick { width:24px; }
"#;

const JS: &str = r#"
// Forms that change something ask first when they carry data-confirm (the
// server asks on a page of its own without JavaScript; answering here skips
// that step). A data-select-all checkbox ticks every row of its form.
document.addEventListener('DOMContentLoaded', function () {
  document.addEventListener('submit', function (e) {
    var f = e.target;
    if (!f.hasAttribute || !f.hasAttribute('data-confirm')) { return; }
    if (!window.confirm(f.getAttribute('data-confirm'))) { e.preventDefault(); return; }
    if (!f.querySelector('input[name=confirmed]')) {
      var c = document.createElement('input');
      c.type = 'hidden'; c.name = 'confirmed'; c.value = '1';
      f.appendChild(c);
    }
  });
  document.addEventListener('change', function (e) {
    var all = e.target;
    if (!all.hasAttribute || !all.hasAttribute('data-select-all') || !all.form) { return; }
    Array.prototype.forEach.call(all.form.elements, function (b) {
      if (b.type === 'checkbox' && b.name === 'id') { b.checked = all.checked; }
    });
  });
});
// Small conveniences; every page works without them.
document.addEventListener('DOMContentLoaded', function () {
  var form = document.querySelector('form.filters');
  // Counts arrive after the rows (they can cost more than the page).
  function fillCounts(root) {
    root.querySelectorAll('[data-count]').forEach(function (el) {
      if (!window.fetch) { el.textContent = ''; return; }
      fetch(el.getAttribute('data-count'), { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (c) {
          if (!c) { el.textContent = ''; return; }
          el.textContent = (c.more ? 'more than ' + c.cap : c.count) + ' matching';
        })
        .catch(function () { el.textContent = ''; });
    });
  }
  fillCounts(document);
  // One navigation menu open at a time; a click elsewhere closes it.
  document.addEventListener('click', function (e) {
    document.querySelectorAll('details.menu[open]').forEach(function (d) {
      if (!d.contains(e.target)) { d.removeAttribute('open'); }
    });
  });
  document.querySelectorAll('form.filters select, form.filters input[type=checkbox]').forEach(function (el) {
    el.addEventListener('change', function () { el.form.submit(); });
  });
  document.addEventListener('keydown', function (e) {
    var s = document.querySelector('form.filters input[type=search]');
    if (e.key === '/' && s && document.activeElement !== s) { e.preventDefault(); s.focus(); s.select(); }
  });
  // Results follow the search box as you type: fetch the same page with the
  // new query and swap in its #results, keeping the URL shareable.
  var box = form && form.querySelector('input[name=q]');
  var results = document.getElementById('results');
  if (!box || !results || !window.fetch) { return; }
  var timer = null, seq = 0;
  box.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var params = new URLSearchParams(new FormData(form));
      params.delete('cursor');
      var url = form.getAttribute('action') + '?' + params.toString();
      var mine = ++seq;
      fetch(url, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          if (mine !== seq) { return; }
          var doc = new DOMParser().parseFromString(html, 'text/html');
          var fresh = doc.getElementById('results');
          if (fresh) { results.innerHTML = fresh.innerHTML; history.replaceState(null, '', url); fillCounts(results); }
        });
    }, 250);
  });
});
"#;
