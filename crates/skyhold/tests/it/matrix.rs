//! The authorization matrix: every route × every kind of caller (admin; a
//! member who owns the object; a member granted operate through a group; a
//! member who manages a group; a member with nothing; a viewer; an auditor)
//! × the objects that matter (owned, granted, plain, in a restricted
//! account), each answered allowed, 403 or 404. Routes are read from the
//! router's source, so a route added without a row here fails the test.

use crate::harness::*;
use crate::pages::extract;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skyhold_core::{Level, Role};
use std::collections::{BTreeMap, BTreeSet};

/// What a caller should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Anything but 401, 403 and 404 (the action may still fail on its
    /// input: that comes after the check).
    Allowed,
    Forbidden,
    Hidden,
    /// Not refused by the check (a 404 only says the object is not theirs).
    Owned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Admin,
    /// ann: owns resource O.
    Owner,
    /// bob: in group dev, which has operate on resource G.
    GroupGrant,
    /// carl: manage on group dev, nothing on resources.
    GroupManager,
    /// dora: a member with nothing.
    Member,
    Viewer,
    Auditor,
}

const EVERYONE: [Who; 7] = [
    Who::Admin,
    Who::Owner,
    Who::GroupGrant,
    Who::GroupManager,
    Who::Member,
    Who::Viewer,
    Who::Auditor,
];

/// The resources the `{id}` routes are tried on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Res {
    /// Owned by ann (tag owner=ann), open account.
    Owned,
    /// Group dev has operate on it, open account.
    Granted,
    /// Nobody's, open account.
    Plain,
    /// Nobody's, in the restricted account.
    Restricted,
}

const RESOURCES: [Res; 4] = [Res::Owned, Res::Granted, Res::Plain, Res::Restricted];

/// The level `who` has on `r` (None: not visible).
fn level(who: Who, r: Res) -> Option<Level> {
    let base = match (who, r) {
        (Who::Admin, _) => Some(Level::Manage),
        (Who::Auditor, _) => Some(Level::View),
        (_, Res::Restricted) => None,
        (Who::Owner, Res::Owned) => Some(Level::Manage),
        (Who::GroupGrant, Res::Granted) => Some(Level::Operate),
        _ => Some(Level::View),
    };
    match who {
        Who::Viewer | Who::Auditor => base.map(|l| l.min(Level::View)),
        _ => base,
    }
}

/// Who decides a route.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Any,
    /// Any caller may ask; the object is looked up among their own (a
    /// missing one is a 404 for everyone, never a 403).
    Own,
    Admin,
    AdminAuditor,
    /// Needs this level on the resource in the path.
    OnResource(Level),
    /// Needs manage on group dev (admins and carl).
    ManageGroup,
    /// Reading an account's or a group's grants: manage on it, or auditor.
    GrantsOfGroup,
    GrantsOfAccount,
    /// Needs this level on blueprint mx-bp (bob has operate on it; a
    /// grant to a user, as group dev's members change during the run).
    OnBlueprint(Level),
    /// Admins change blueprints; those who cannot see one get a 404.
    ManageBlueprint,
    /// Exempting a resource from expiry (keep): admins, or a manage
    /// *grant* (none here), never ownership; hidden where not visible.
    Exempt,
}

/// The level `who` has on blueprint mx-bp (None: not visible).
fn blueprint_level(who: Who) -> Option<Level> {
    match who {
        Who::Admin => Some(Level::Manage),
        Who::Auditor => Some(Level::View),
        Who::GroupGrant => Some(Level::Operate),
        _ => None,
    }
}

fn expect(rule: Rule, who: Who, r: Option<Res>) -> Expect {
    let yes = |b: bool| {
        if b {
            Expect::Allowed
        } else {
            Expect::Forbidden
        }
    };
    match rule {
        Rule::Any => Expect::Allowed,
        Rule::Own => Expect::Owned,
        Rule::Admin => yes(who == Who::Admin),
        Rule::AdminAuditor => yes(matches!(who, Who::Admin | Who::Auditor)),
        Rule::ManageGroup => yes(matches!(who, Who::Admin | Who::GroupManager)),
        Rule::GrantsOfGroup => yes(matches!(who, Who::Admin | Who::GroupManager | Who::Auditor)),
        Rule::GrantsOfAccount => yes(matches!(who, Who::Admin | Who::Auditor)),
        Rule::OnBlueprint(need) => match blueprint_level(who) {
            None => Expect::Hidden,
            Some(have) if have >= need => Expect::Allowed,
            Some(_) => Expect::Forbidden,
        },
        Rule::ManageBlueprint => match blueprint_level(who) {
            None => Expect::Hidden,
            Some(_) => yes(who == Who::Admin),
        },
        Rule::Exempt => match level(who, r.expect("a resource row")) {
            None => Expect::Hidden,
            Some(_) => yes(who == Who::Admin),
        },
        Rule::OnResource(need) => match level(who, r.expect("a resource row")) {
            None => Expect::Hidden,
            Some(have) if have >= need => Expect::Allowed,
            Some(_) => Expect::Forbidden,
        },
    }
}

/// One row: a route, how a request to it is made, and its rule.
struct Row {
    method: Method,
    /// The route template as registered (`/api/v1/resources/{id}`).
    route: &'static str,
    /// A JSON body (API) or form fields (pages; the CSRF token is added).
    body: Option<Value>,
    query: &'static str,
    rule: Rule,
}

fn row(method: Method, route: &'static str, rule: Rule) -> Row {
    Row {
        method,
        route,
        body: None,
        query: "",
        rule,
    }
}

fn with(mut r: Row, body: Value) -> Row {
    r.body = Some(body);
    r
}

fn q(mut r: Row, query: &'static str) -> Row {
    r.query = query;
    r
}

/// Every route of the router, from its source: `.route("PATH", get(..).post(..))`.
pub(crate) fn registered_routes() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        let mut rest = src.as_str();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            let call = balanced(rest);
            let Some(p) = call.find('"') else { continue };
            let after = &call[p + 1..];
            let Some(end) = after.find('"') else { continue };
            let route = &after[..end];
            let methods = &after[end..];
            for (m, needle) in [
                ("GET", "get("),
                ("POST", "post("),
                ("PATCH", "patch("),
                ("DELETE", "delete("),
                ("PUT", "put("),
            ] {
                if methods.contains(needle) {
                    out.insert((m.to_owned(), route.to_owned()));
                }
            }
        }
    }
    out
}

/// The text of a call up to its closing parenthesis.
fn balanced(s: &str) -> &str {
    let mut depth = 1;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &s[..i];
                }
            }
            _ => {}
        }
    }
    s
}

/// The routes that need no login, and the per-kind list pages (registered
/// in a loop over kinds, not by literal).
fn public_and_generated() -> BTreeSet<(String, String)> {
    let mut s: BTreeSet<(String, String)> = [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/auth/oidc/login"),
        ("GET", "/auth/oidc/callback"),
        ("GET", "/static/app.css"),
        ("GET", "/static/app.js"),
        ("GET", "/favicon.ico"),
        ("POST", "/api/v1/auth/token"),
        // The key hook: an instance's own secret (tests/it/launches.rs).
        ("GET", "/keys/{id}/authorized_keys"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    // `kind_path(k)` routes are not literals in the source.
    s.insert(("GET".into(), "kind_path".into()));
    s
}

fn api_rows() -> Vec<Row> {
    use Method as M;
    use Rule::*;
    vec![
        row(M::GET, "/api/v1/tokens", Any),
        row(M::DELETE, "/api/v1/tokens/{id}", Own),
        row(M::GET, "/api/v1/resources", Any),
        row(M::GET, "/api/v1/resources/count", Any),
        row(M::GET, "/api/v1/resources/{id}", OnResource(Level::View)),
        row(
            M::GET,
            "/api/v1/resources/{id}/template",
            OnResource(Level::View),
        ),
        row(
            M::GET,
            "/api/v1/resources/{id}/alarm-history",
            OnResource(Level::View),
        ),
        row(
            M::GET,
            "/api/v1/resources/{id}/objects",
            OnResource(Level::View),
        ),
        q(
            row(
                M::GET,
                "/api/v1/resources/{id}/objects/url",
                OnResource(Level::View),
            ),
            "key=x",
        ),
        row(
            M::POST,
            "/api/v1/resources/{id}/refresh",
            OnResource(Level::Operate),
        ),
        with(
            row(
                M::POST,
                "/api/v1/resources/{id}/actions",
                OnResource(Level::Operate),
            ),
            json!({"action": "reboot"}),
        ),
        with(
            row(
                M::POST,
                "/api/v1/resources/{id}/actions",
                OnResource(Level::Manage),
            ),
            json!({"action": "terminate"}),
        ),
        with(
            row(
                M::POST,
                "/api/v1/resources/{id}/owner",
                OnResource(Level::Manage),
            ),
            json!({"owner": "nosuchuser"}),
        ),
        // Nothing to extend: refused after the check, nothing changes.
        with(
            row(
                M::POST,
                "/api/v1/resources/{id}/expiry",
                OnResource(Level::Manage),
            ),
            json!({"extend": "1d"}),
        ),
        row(
            M::GET,
            "/api/v1/resources/{id}/keep",
            OnResource(Level::View),
        ),
        // An empty reason: refused after the check, nothing written.
        with(
            row(M::POST, "/api/v1/resources/{id}/keep", Exempt),
            json!({"reason": ""}),
        ),
        row(M::DELETE, "/api/v1/resources/{id}/keep", Exempt),
        row(M::GET, "/api/v1/accounts", Any),
        row(M::GET, "/api/v1/changes", Any),
        with(
            row(M::POST, "/api/v1/sync", Admin),
            json!({"account": "mx-open"}),
        ),
        row(M::GET, "/api/v1/sync/status", Any),
        row(M::GET, "/api/v1/dashboard", Any),
        row(M::GET, "/api/v1/views", Any),
        with(
            row(M::POST, "/api/v1/views", Any),
            json!({"name": "v", "q": "web"}),
        ),
        row(M::DELETE, "/api/v1/views/{id}", Own),
        row(M::GET, "/api/v1/openapi.json", Any),
        row(M::GET, "/api/v1/me", Any),
        with(
            row(M::POST, "/api/v1/me/password", Any),
            json!({"current_password": "wrong", "new_password": "whatever123"}),
        ),
        with(
            row(M::POST, "/api/v1/me/email", Any),
            json!({"email": "me@example.com"}),
        ),
        row(M::GET, "/api/v1/me/keys", Any),
        with(
            row(M::POST, "/api/v1/me/keys", Any),
            json!({"public_key": "not a key"}),
        ),
        row(M::DELETE, "/api/v1/me/keys/{id}", Own),
        row(M::GET, "/api/v1/users", AdminAuditor),
        with(
            row(M::POST, "/api/v1/users", Admin),
            json!({"username": "NEW", "password": "long enough", "role": "viewer"}),
        ),
        row(M::GET, "/api/v1/users/{id}", AdminAuditor),
        with(
            row(M::PATCH, "/api/v1/users/{id}", Admin),
            json!({"email": "carl@example.com"}),
        ),
        row(M::GET, "/api/v1/groups", Any),
        with(
            row(M::POST, "/api/v1/groups", Admin),
            json!({"name": "NEW"}),
        ),
        row(M::GET, "/api/v1/groups/{id}", Any),
        with(
            row(M::PATCH, "/api/v1/groups/{id}", ManageGroup),
            json!({"email": "dev@example.com"}),
        ),
        row(M::DELETE, "/api/v1/groups/{id}", Admin),
        with(
            row(M::POST, "/api/v1/groups/{id}/members", ManageGroup),
            json!({"username": "vic"}),
        ),
        row(
            M::DELETE,
            "/api/v1/groups/{id}/members/{username}",
            ManageGroup,
        ),
        row(M::GET, "/api/v1/grants", Any),
        q(
            row(M::GET, "/api/v1/grants", GrantsOfGroup),
            "object=group:dev",
        ),
        with(
            row(M::POST, "/api/v1/grants", OnResource(Level::Manage)),
            json!({"subject": "group:empty", "object": "resource:{id}", "level": "view"}),
        ),
        row(M::DELETE, "/api/v1/grants/{id}", OnResource(Level::Manage)),
        row(M::GET, "/api/v1/actions", Any),
        row(M::GET, "/api/v1/actions/{id}", Any),
        row(M::GET, "/api/v1/audit", Any),
        row(M::GET, "/api/v1/audit/export", AdminAuditor),
        row(M::GET, "/api/v1/audit/verify", AdminAuditor),
        row(M::GET, "/api/v1/blueprints", Any),
        with(
            row(M::POST, "/api/v1/blueprints", Admin),
            json!({"name": "NEW", "account": "mx-open", "region": "us-east-1",
                   "image": "ami-12c6146b", "instance_types": ["t3.*"],
                   "default_type": "t3.micro", "login_user": "ubuntu"}),
        ),
        row(M::GET, "/api/v1/blueprints/{id}", OnBlueprint(Level::View)),
        with(
            row(M::PATCH, "/api/v1/blueprints/{id}", ManageBlueprint),
            json!({"description": "edited"}),
        ),
        row(M::DELETE, "/api/v1/blueprints/{id}", ManageBlueprint),
        row(M::GET, "/api/v1/quotas", AdminAuditor),
        with(
            row(M::POST, "/api/v1/quotas", Admin),
            json!({"subject": "default:user", "instances": 50}),
        ),
        row(M::DELETE, "/api/v1/quotas/{subject}", Admin),
        row(M::GET, "/api/v1/me/quota", Any),
        row(M::GET, "/api/v1/policies/preview", AdminAuditor),
        row(M::GET, "/api/v1/policies/runs", AdminAuditor),
        row(M::GET, "/api/v1/policies/runs/{id}", AdminAuditor),
        row(M::POST, "/api/v1/policies/runs", Admin),
        row(M::POST, "/api/v1/policies/runs/{id}/confirm", Admin),
        row(M::GET, "/api/v1/notifications", AdminAuditor),
        row(M::GET, "/api/v1/reports/spend", Any),
        row(M::GET, "/api/v1/budgets", AdminAuditor),
        with(
            row(M::POST, "/api/v1/budgets", Admin),
            json!({"subject": "default:group", "monthly_usd": 1000.0}),
        ),
        row(M::DELETE, "/api/v1/budgets/{subject}", Admin),
        row(M::GET, "/api/v1/me/budgets", Any),
        q(
            row(M::GET, "/api/v1/ledger", OnResource(Level::View)),
            "resource={id}",
        ),
        with(
            row(M::POST, "/api/v1/launches", OnBlueprint(Level::Operate)),
            json!({"blueprint": "mx-bp", "name": "mxweb", "dry_run": true}),
        ),
        with(
            row(
                M::POST,
                "/api/v1/resources/{id}/image",
                OnResource(Level::Operate),
            ),
            json!({"name": "mx-image"}),
        ),
        with(
            row(
                M::POST,
                "/api/v1/resources/{id}/deregister",
                OnResource(Level::Manage),
            ),
            json!({"confirm": "x"}),
        ),
        row(
            M::GET,
            "/api/v1/resources/{id}/ssh",
            OnResource(Level::View),
        ),
        row(M::GET, "/api/v1/launches", Any),
        row(M::GET, "/api/v1/launches/{id}", Own),
        // Last: it revokes the token the request is made with.
        row(M::DELETE, "/api/v1/auth/token", Any),
    ]
}

fn page_rows() -> Vec<Row> {
    use Method as M;
    use Rule::*;
    vec![
        row(M::GET, "/", Any),
        row(M::GET, "/changes", Any),
        row(M::GET, "/sync", Any),
        row(M::GET, "/search", Any),
        row(M::GET, "kind_path", Any),
        row(M::GET, "/views", Any),
        row(M::GET, "/profile", Any),
        row(M::GET, "/groups", Any),
        row(M::GET, "/orphans", Any),
        row(M::GET, "/audit", Any),
        row(M::GET, "/users", AdminAuditor),
        row(M::GET, "/resources/{id}", OnResource(Level::View)),
        row(M::GET, "/resources/{id}/template", OnResource(Level::View)),
        row(M::GET, "/resources/{id}/objects", OnResource(Level::View)),
        q(
            row(
                M::GET,
                "/resources/{id}/objects/download",
                OnResource(Level::View),
            ),
            "key=x",
        ),
        row(M::GET, "/accounts/{name}/permissions", GrantsOfAccount),
        row(M::GET, "/groups/{id}/permissions", GrantsOfGroup),
        row(
            M::POST,
            "/resources/{id}/refresh",
            OnResource(Level::Operate),
        ),
        with(
            row(M::POST, "/resources/{id}/act", OnResource(Level::Operate)),
            json!({"action": "reboot"}),
        ),
        with(
            row(M::POST, "/resources/{id}/act", OnResource(Level::Manage)),
            json!({"action": "terminate"}),
        ),
        with(
            row(M::POST, "/resources/{id}/owner", OnResource(Level::Manage)),
            json!({"owner": "nosuchuser"}),
        ),
        with(
            row(M::POST, "/resources/{id}/expiry", OnResource(Level::Manage)),
            json!({"extend": "1d"}),
        ),
        with(
            row(M::POST, "/resources/{id}/keep", Exempt),
            json!({"reason": ""}),
        ),
        with(
            row(M::POST, "/resources/{id}/image", OnResource(Level::Operate)),
            json!({"name": "mx-page-image", "no_reboot": "1"}),
        ),
        with(
            row(
                M::POST,
                "/resources/{id}/deregister",
                OnResource(Level::Manage),
            ),
            json!({"confirm": "x"}),
        ),
        row(M::GET, "/blueprints", Any),
        row(M::GET, "/blueprints/new", Admin),
        with(
            row(M::POST, "/blueprints", Admin),
            json!({"name": "NEW", "account": "mx-open", "region": "us-east-1",
                   "image": "ami-12c6146b", "instance_types": "t3.*",
                   "default_type": "t3.micro", "login_user": "ubuntu"}),
        ),
        row(M::GET, "/blueprints/{id}/edit", ManageBlueprint),
        with(
            row(M::POST, "/blueprints/{id}/edit", ManageBlueprint),
            json!({"name": "mx-bp", "account": "mx-open", "region": "us-east-1",
                   "image": "ami-12c6146b", "instance_types": "t3.*",
                   "default_type": "t3.micro", "login_user": "ubuntu"}),
        ),
        row(M::POST, "/blueprints/{id}/delete", ManageBlueprint),
        row(
            M::GET,
            "/blueprints/{id}/launch",
            OnBlueprint(Level::Operate),
        ),
        with(
            row(
                M::POST,
                "/blueprints/{id}/launch",
                OnBlueprint(Level::Operate),
            ),
            json!({"name": "mxpage", "do": "preview"}),
        ),
        row(M::GET, "/launches", Any),
        row(M::GET, "/launches/{id}", Own),
        row(M::GET, "/quotas", AdminAuditor),
        with(
            row(M::POST, "/quotas", Admin),
            json!({"subject": "default:group", "instances": "9"}),
        ),
        row(M::POST, "/quotas/delete", Admin),
        row(M::GET, "/reports", Any),
        row(M::GET, "/policies", AdminAuditor),
        with(
            row(M::POST, "/policies/run", Admin),
            json!({"policy": "expiry"}),
        ),
        row(M::POST, "/policies/runs/{id}/confirm", Admin),
        row(M::GET, "/notifications", AdminAuditor),
        row(M::GET, "/extend/{token}", Own),
        row(M::POST, "/extend/{token}", Own),
        // Bulk forms act row by row and report refusals per row.
        with(
            row(M::POST, "/bulk", Any),
            json!({"action": "reboot", "id": "{id}"}),
        ),
        with(
            row(M::POST, "/orphans/claim", Any),
            json!({"owner": "nosuchuser", "id": "{id}"}),
        ),
        with(
            row(M::POST, "/users", Admin),
            json!({"username": "NEW", "password": "long enough", "role": "viewer"}),
        ),
        with(
            row(M::POST, "/users/{id}/update", Admin),
            json!({"role": "member"}),
        ),
        with(
            row(M::POST, "/profile/password", Any),
            json!({"current_password": "wrong", "new_password": "whatever123"}),
        ),
        with(
            row(M::POST, "/profile/email", Any),
            json!({"email": "me@example.com"}),
        ),
        with(
            row(M::POST, "/profile/ssh-keys", Any),
            json!({"public_key": "not a key"}),
        ),
        with(
            row(M::POST, "/profile/ssh-keys/{id}/delete", Own),
            json!({"confirmed": "1"}),
        ),
        with(row(M::POST, "/groups", Admin), json!({"name": "NEW"})),
        with(
            row(M::POST, "/groups/{id}/delete", Admin),
            json!({"confirmed": "1"}),
        ),
        with(
            row(M::POST, "/groups/{id}/members", ManageGroup),
            json!({"username": "vic"}),
        ),
        with(
            row(M::POST, "/groups/{id}/members/remove", ManageGroup),
            json!({"username": "vic", "confirmed": "1"}),
        ),
        with(
            row(M::POST, "/grants", OnResource(Level::Manage)),
            json!({"subject": "group:empty", "object": "resource:{id}", "level": "view"}),
        ),
        with(
            row(M::POST, "/grants/{id}/delete", OnResource(Level::Manage)),
            json!({"confirmed": "1"}),
        ),
        row(M::POST, "/audit/verify", AdminAuditor),
        with(row(M::POST, "/sync", Admin), json!({"account": "mx-open"})),
        with(
            row(M::POST, "/views", Any),
            json!({"name": "v", "q": "web"}),
        ),
        with(row(M::POST, "/views/{id}/delete", Own), json!({})),
        // Last: it ends the session.
        row(M::POST, "/logout", Any),
    ]
}

/// A signed-in caller: an API token and a browser session with its CSRF token.
struct Caller {
    who: Who,
    name: &'static str,
    token: String,
    browser: reqwest::Client,
    csrf: String,
}

async fn caller(server: &TestServer, who: Who, name: &'static str, password: &str) -> Caller {
    let (status, v) = server.login_token(name, password).await;
    assert_eq!(status, StatusCode::CREATED, "{name}: {v}");
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = crate::pages::text(&browser, server, "/login").await;
    let login_csrf = extract(&form, "name=\"csrf\" value=\"").unwrap();
    let res = crate::pages::post_form(
        &browser,
        server,
        "/login",
        &[
            ("username", name),
            ("password", password),
            ("csrf", &login_csrf),
            ("next", "/"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{name} signs in");
    let profile = crate::pages::text(&browser, server, "/profile").await;
    let csrf = extract(&profile, "name=\"csrf\" value=\"").expect("a form on the profile page");
    Caller {
        who,
        name,
        token: v["token"].as_str().unwrap().to_owned(),
        browser,
        csrf,
    }
}

/// The status a rule's answer may come back as.
fn judge(expect: Expect, status: StatusCode) -> bool {
    match expect {
        Expect::Allowed => !matches!(status.as_u16(), 401 | 403 | 404),
        Expect::Forbidden => status == StatusCode::FORBIDDEN,
        Expect::Hidden => status == StatusCode::NOT_FOUND,
        Expect::Owned => !matches!(status.as_u16(), 401 | 403),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_caller_as_the_one_check_decides() {
    // 1. Every registered route has a row.
    let mut covered: BTreeSet<(String, String)> = public_and_generated();
    for r in api_rows().iter().chain(page_rows().iter()) {
        covered.insert((r.method.to_string(), r.route.to_owned()));
    }
    let registered = registered_routes();
    assert!(
        registered.len() > 60,
        "the route scan found only {}",
        registered.len()
    );
    let missing: Vec<_> = registered.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the authorization matrix: {missing:?}"
    );
    let stale: Vec<_> = covered
        .iter()
        .filter(|r| r.1 != "kind_path" && !registered.contains(*r))
        .collect();
    assert!(
        stale.is_empty(),
        "matrix rows for routes that do not exist: {stale:?}"
    );

    // 2. Fixtures: an open and a restricted account, four instances.
    let moto = shared_moto();
    let open = AccountSpec::new("mx-open", moto, &["us-east-1"]).with_kinds(&["instance"]);
    let secret = AccountSpec::new("mx-secret", moto, &["us-east-1"])
        .with_kinds(&["instance"])
        .with_line("restricted = true");
    let e1 = ec2(moto, &open.account_id, "us-east-1").await;
    let e2 = ec2(moto, &secret.account_id, "us-east-1").await;
    let owned = e1.launch(1, 1, "owned", &[("owner", "ann")]).await.unwrap();
    let granted = e1.launch(1, 1, "granted", &[]).await.unwrap();
    let plain = e1.launch(1, 1, "plain", &[]).await.unwrap();
    let restricted = e2.launch(1, 1, "restricted", &[]).await.unwrap();
    let server = TestServer::start(&[open, secret]).await;
    server.sync().await;
    let all = server.all("kind=instance").await;
    let id_of = |pid: &str| {
        all.iter().find(|i| i["provider_id"] == pid).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let ids: BTreeMap<&str, i64> = [
        ("owned", id_of(&owned[0])),
        ("granted", id_of(&granted[0])),
        ("plain", id_of(&plain[0])),
        ("restricted", id_of(&restricted[0])),
    ]
    .into_iter()
    .collect();
    let res_id = |r: Res| match r {
        Res::Owned => ids["owned"],
        Res::Granted => ids["granted"],
        Res::Plain => ids["plain"],
        Res::Restricted => ids["restricted"],
    };
    let admin = server.token.clone();
    for (name, role) in [
        ("ann", Role::Member),
        ("bob", Role::Member),
        ("carl", Role::Member),
        ("dora", Role::Member),
        ("vic", Role::Viewer),
        ("audrey", Role::Auditor),
    ] {
        server
            .create_user(name, &format!("{name}-password"), role)
            .await;
    }
    for (path, body) in [
        ("/api/v1/groups", json!({"name": "dev"})),
        ("/api/v1/groups", json!({"name": "empty"})),
        ("/api/v1/groups/dev/members", json!({"username": "bob"})),
        (
            "/api/v1/grants",
            json!({"subject": "group:dev", "object": format!("resource:{}", ids["granted"]), "level": "operate"}),
        ),
        (
            "/api/v1/grants",
            json!({"subject": "user:carl", "object": "group:dev", "level": "manage"}),
        ),
        (
            "/api/v1/blueprints",
            json!({"name": "mx-bp", "account": "mx-open", "region": "us-east-1",
                   "image": "ami-12c6146b", "instance_types": ["t3.*"],
                   "default_type": "t3.micro", "login_user": "ubuntu"}),
        ),
        (
            "/api/v1/grants",
            json!({"subject": "user:bob", "object": "blueprint:mx-bp", "level": "operate"}),
        ),
    ] {
        let (s, v) = server.send(Method::POST, path, &admin, body, None).await;
        assert!(s.is_success(), "{path}: {v}");
    }
    let (_, a) = server
        .send(
            Method::POST,
            &format!("/api/v1/resources/{}/actions", ids["plain"]),
            &admin,
            json!({"action": "reboot"}),
            None,
        )
        .await;
    let action_id = a["id"].as_i64().expect("an action to read");
    let (_, carl) = server
        .request(Method::GET, "/api/v1/users/carl", Some(&admin), None)
        .await;
    let carl_id = carl["id"].as_i64().unwrap();
    let (_, dev) = server
        .request(Method::GET, "/api/v1/groups/dev", Some(&admin), None)
        .await;
    let dev_id = dev["id"].as_i64().unwrap();
    // A policy pass to read (and to refuse confirming: it is not held).
    let (s, run) = server
        .send(
            Method::POST,
            "/api/v1/policies/runs",
            &admin,
            json!({}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{run}");
    let run_id = run["id"].as_i64().unwrap();

    // The admin caller gets a token of its own: the matrix revokes it.
    let (_, t) = server.login_token("admin", ADMIN_PASSWORD).await;
    let mut callers = vec![Caller {
        who: Who::Admin,
        name: "admin",
        token: t["token"].as_str().unwrap().to_owned(),
        browser: crate::pages::browser_login(&server).await,
        csrf: String::new(),
    }];
    callers[0].csrf = extract(
        &crate::pages::text(&callers[0].browser, &server, "/profile").await,
        "name=\"csrf\" value=\"",
    )
    .unwrap();
    for (who, name) in [
        (Who::Owner, "ann"),
        (Who::GroupGrant, "bob"),
        (Who::GroupManager, "carl"),
        (Who::Member, "dora"),
        (Who::Viewer, "vic"),
        (Who::Auditor, "audrey"),
    ] {
        callers.push(caller(&server, who, name, &format!("{name}-password")).await);
    }
    assert_eq!(
        callers.iter().map(|c| c.who).collect::<Vec<_>>(),
        EVERYONE.to_vec()
    );

    // 3. Every row, every caller, every object.
    let mut failures = Vec::new();
    let mut n = 0;
    let mut fresh = 0;
    for (api, rows) in [(true, api_rows()), (false, page_rows())] {
        for r in &rows {
            let per_resource = r.route.contains("{id}")
                && (r.route.contains("/resources/") || r.route.contains("/grants/{id}"))
                || r.body
                    .as_ref()
                    .is_some_and(|b| b.to_string().contains("{id}"))
                || r.query.contains("{id}");
            let objects: Vec<Option<Res>> = if per_resource {
                RESOURCES.iter().copied().map(Some).collect()
            } else {
                vec![None]
            };
            for c in &callers {
                for obj in &objects {
                    fresh += 1;
                    // Objects a request consumes are made anew for it.
                    let rid = obj.map(res_id).unwrap_or(0);
                    let mut path = r.route.to_owned();
                    if r.route == "kind_path" {
                        path = "/instances".into();
                    }
                    let grant_id = if r.route.contains("/grants/{id}") {
                        let (_, g) = server
                            .send(Method::POST, "/api/v1/grants", &admin, json!({"subject": "group:empty", "object": format!("resource:{rid}"), "level": "view"}), None)
                            .await;
                        g["id"].as_i64().unwrap()
                    } else {
                        0
                    };
                    if r.route.contains("/members/") || r.route.ends_with("/members/remove") {
                        // Someone to remove: vic is (re)added first.
                        server
                            .send(
                                Method::POST,
                                "/api/v1/groups/dev/members",
                                &admin,
                                json!({"username": "vic"}),
                                None,
                            )
                            .await;
                    }
                    // Deleting a blueprint consumes it: a new one each, with
                    // the same grant; a quota to remove is set first.
                    let blueprint_ref = if r.method == Method::DELETE
                        && r.route == "/api/v1/blueprints/{id}"
                    {
                        let name = format!("tmpbp{fresh}");
                        let (s, v) = server
                            .send(
                                Method::POST,
                                "/api/v1/blueprints",
                                &admin,
                                json!({"name": name, "account": "mx-open", "region": "us-east-1",
                                       "image": "ami-12c6146b", "instance_types": ["t3.*"],
                                       "default_type": "t3.micro", "login_user": "ubuntu"}),
                                None,
                            )
                            .await;
                        assert!(s.is_success(), "{v}");
                        let (s, v) = server
                            .send(
                                Method::POST,
                                "/api/v1/grants",
                                &admin,
                                json!({"subject": "user:bob", "object": format!("blueprint:{name}"), "level": "operate"}),
                                None,
                            )
                            .await;
                        assert!(s.is_success(), "{v}");
                        name
                    } else {
                        "mx-bp".to_owned()
                    };
                    if r.route == "/api/v1/quotas/{subject}" {
                        server
                            .send(
                                Method::POST,
                                "/api/v1/quotas",
                                &admin,
                                json!({"subject": "default:group", "instances": 9}),
                                None,
                            )
                            .await;
                    }
                    // The API names groups, the pages use their ids; deleting
                    // one consumes it, so those rows get a new group each.
                    let deletes_group =
                        (api && r.method == Method::DELETE && r.route == "/api/v1/groups/{id}")
                            || r.route == "/groups/{id}/delete";
                    let group_ref = if deletes_group {
                        let name = format!("tmp{fresh}");
                        let (_, g) = server
                            .send(
                                Method::POST,
                                "/api/v1/groups",
                                &admin,
                                json!({"name": name}),
                                None,
                            )
                            .await;
                        if api {
                            name
                        } else {
                            g["id"].to_string()
                        }
                    } else if api {
                        "dev".to_owned()
                    } else {
                        dev_id.to_string()
                    };
                    path = path
                        .replace("/resources/{id}", &format!("/resources/{rid}"))
                        .replace("/grants/{id}", &format!("/grants/{grant_id}"))
                        .replace("/groups/{id}", &format!("/groups/{group_ref}"))
                        .replace(
                            "/users/{id}",
                            &format!(
                                "/users/{}",
                                if api {
                                    "carl".to_owned()
                                } else {
                                    carl_id.to_string()
                                }
                            ),
                        )
                        .replace("/actions/{id}", &format!("/actions/{action_id}"))
                        .replace("/policies/runs/{id}", &format!("/policies/runs/{run_id}"))
                        .replace("/blueprints/{id}", &format!("/blueprints/{blueprint_ref}"))
                        .replace("{subject}", "default:group")
                        .replace("/accounts/{name}", "/accounts/mx-open")
                        .replace("{username}", "vic")
                        .replace("{id}", "999999");
                    if !r.query.is_empty() {
                        path = format!("{path}?{}", r.query.replace("{id}", &rid.to_string()));
                    }
                    let body = r.body.as_ref().map(|b| {
                        let text = b
                            .to_string()
                            .replace("{id}", &rid.to_string())
                            .replace("\"NEW\"", &format!("\"new{fresh}\""));
                        serde_json::from_str::<Value>(&text).unwrap()
                    });
                    let status = if api {
                        let mut req = server
                            .http
                            .request(r.method.clone(), format!("{}{path}", server.url))
                            .bearer_auth(&c.token);
                        if let Some(b) = &body {
                            req = req.json(b);
                        }
                        req.send().await.unwrap().status()
                    } else {
                        let url = format!("{}{path}", server.url);
                        if r.method == Method::GET {
                            c.browser.get(url).send().await.unwrap().status()
                        } else {
                            let mut form: Vec<(String, String)> =
                                vec![("csrf".into(), c.csrf.clone())];
                            if let Some(Value::Object(m)) = &body {
                                for (k, v) in m {
                                    form.push((
                                        k.clone(),
                                        v.as_str().unwrap_or_default().to_owned(),
                                    ));
                                }
                            }
                            c.browser
                                .post(url)
                                .form(&form)
                                .send()
                                .await
                                .unwrap()
                                .status()
                        }
                    };
                    let want = expect(r.rule, c.who, *obj);
                    n += 1;
                    if !judge(want, status) {
                        failures.push(format!(
                            "{} {path} as {} ({:?}) on {obj:?}: got {status}, want {want:?}",
                            r.method, c.name, c.who
                        ));
                    }
                }
            }
        }
    }
    assert!(n > 500, "only {n} checks ran");
    assert!(
        failures.is_empty(),
        "{} of {n} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    server.stop().await;
}
