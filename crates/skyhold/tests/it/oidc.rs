//! OIDC login against a real provider (oidc-provider-mock on loopback): the
//! whole browser flow step by step (skyhold → provider's authorization form
//! → callback → session), the refusals (wrong audience, expired token,
//! forged nonce or issuer, bad or missing state, unknown or disabled user),
//! auto-creation with mapped roles, group sync, and their audit entries.

use crate::harness::*;
use crate::pages::extract;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skyhold_core::Role;

const CLIENT_ID: &str = "skyhold-tests";
const SECRET: &str = "oidc-client-secret-for-tests";

fn oidc_toml(issuer: &str, extra: &str) -> String {
    format!(
        "[auth.oidc]\nissuer = {issuer:?}\nclient_id = {CLIENT_ID:?}\nclient_secret = {SECRET:?}\n{extra}"
    )
}

/// skyhold with `[auth.oidc]` pointing at the shared provider.
async fn server(extra: &str) -> TestServer {
    TestServer::start_with_toml(&[], &oidc_toml(&shared_oidc().issuer, extra), true).await
}

/// A browser: a cookie store, redirects followed by hand.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no location in a {} answer", res.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// GET /auth/oidc/login, then the provider's authorization form submitted
/// as `sub`: the callback URL the provider sends the browser to.
async fn authorize(server: &TestServer, browser: &reqwest::Client, sub: &str) -> String {
    let res = browser
        .get(format!("{}/auth/oidc/login?next=/instances", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let authorize_url = location(&res);
    let issuer = &shared_oidc().issuer;
    assert!(
        authorize_url.starts_with(&format!("{issuer}/oauth2/authorize?")),
        "{authorize_url}"
    );
    assert_eq!(
        query_param(&authorize_url, "client_id").as_deref(),
        Some(CLIENT_ID)
    );
    assert_eq!(
        query_param(&authorize_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    for p in ["state", "nonce", "code_challenge"] {
        assert!(
            query_param(&authorize_url, p).is_some_and(|v| v.len() >= 16),
            "{p} in {authorize_url}"
        );
    }
    assert_eq!(
        query_param(&authorize_url, "redirect_uri"),
        Some(format!("{}/auth/oidc/callback", server.url))
    );
    // The provider's page is a form; the browser shows it, the user submits
    // their subject.
    let page = browser.get(&authorize_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("name=\"sub\""));
    let res = browser
        .post(&authorize_url)
        .form(&[("sub", sub)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "the provider's answer");
    let callback = location(&res);
    assert!(
        callback.starts_with(&format!("{}/auth/oidc/callback?", server.url)),
        "{callback}"
    );
    callback
}

/// The whole flow as `sub`: the callback's response.
async fn sign_in(server: &TestServer, browser: &reqwest::Client, sub: &str) -> reqwest::Response {
    let callback = authorize(server, browser, sub).await;
    browser.get(&callback).send().await.unwrap()
}

async fn me(server: &TestServer, browser: &reqwest::Client) -> (StatusCode, Value) {
    let res = browser
        .get(format!("{}/api/v1/me", server.url))
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

/// The `login` audit entries (newest first) with auth `oidc`.
async fn oidc_logins(server: &TestServer) -> Vec<Value> {
    let (status, log) = server
        .request(
            Method::GET,
            "/api/v1/audit?action=login&limit=200",
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["auth"] == "oidc")
        .cloned()
        .collect()
}

async fn refused_with(res: reqwest::Response, status: StatusCode, text: &str) {
    assert_eq!(res.status(), status);
    assert!(
        !res.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("skyhold_session=")),
        "a refused sign-in sets no session"
    );
    let body = res.text().await.unwrap();
    assert!(body.contains("Sign-in refused"), "{body}");
    assert!(body.contains(text), "{text:?} not in {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_user_signs_in_through_the_provider() {
    let server = server("").await;
    server
        .create_user("oidc-ann", "ann-password-123", Role::Member)
        .await;
    shared_oidc()
        .set_user(
            "oidc-ann-sub",
            json!({"preferred_username": "oidc-ann", "email": "ann@example.com"}),
        )
        .await;

    // The login page offers the provider next to the password form.
    let b = browser();
    let login = b
        .get(format!("{}/login?next=/instances", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("Sign in with OIDC"), "{login}");
    assert_eq!(
        extract(&login, "id=\"oidc-login\" href=\"").as_deref(),
        Some("/auth/oidc/login?next=%2Finstances")
    );
    assert!(login.contains("name=\"password\""));

    let callback = authorize(&server, &b, "oidc-ann-sub").await;
    let res = b.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/instances");
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("skyhold_session="))
        .expect("session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );

    // A protected page and the API work as that user.
    let (status, v) = me(&server, &b).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["username"], "oidc-ann");
    assert_eq!(v["role"], "member");
    assert_eq!(v["auth"], "oidc");
    let page = b
        .get(format!("{}/instances", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("oidc-ann"));

    // The callback is good once: the pending login is gone.
    let again = b.get(&callback).send().await.unwrap();
    refused_with(again, StatusCode::BAD_REQUEST, "no login is in progress").await;

    let logins = oidc_logins(&server).await;
    let ok = logins
        .iter()
        .find(|e| e["outcome"] == "ok")
        .unwrap_or_else(|| panic!("no ok OIDC login in {logins:?}"));
    assert_eq!(ok["actor"], "oidc-ann");
    assert_eq!(ok["client_ip"], "127.0.0.1");
    assert!(ok["actor_id"].as_i64().is_some());
    let replay = logins
        .iter()
        .find(|e| e["outcome"] == "failed")
        .expect("the replay is audited");
    assert!(replay["reason"].as_str().unwrap().starts_with("bad_state"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_are_refused_unless_auto_create() {
    let groups = "groups_claim = \"groups\"\n\
                  role_mapping = { \"sky-admins\" = \"admin\", \"sky-dev\" = \"member\", \"sky-audit\" = \"auditor\" }\n";
    let provider = shared_oidc();
    provider
        .set_user(
            "oidc-newbie",
            json!({"preferred_username": "oidc-newbie", "email": "newbie@example.com",
                   "groups": ["sky-dev", "sky-audit", "not-in-skyhold"]}),
        )
        .await;

    // Without auto_create: refused, audited, nobody created.
    let server_off = server(groups).await;
    let res = sign_in(&server_off, &browser(), "oidc-newbie").await;
    refused_with(res, StatusCode::FORBIDDEN, "no skyhold user").await;
    let failed = oidc_logins(&server_off).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["outcome"], "failed");
    assert_eq!(failed[0]["actor"], "oidc-newbie");
    assert!(failed[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("unknown_user"));
    let (status, _) = server_off
        .request(
            Method::GET,
            "/api/v1/users/oidc-newbie",
            Some(&server_off.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server_off.stop().await;

    // With auto_create: created with the strongest mapped role, in the
    // claim's groups that exist.
    let server = server(&format!("{groups}auto_create = true\n")).await;
    for g in ["sky-dev", "other"] {
        let (status, v) = server
            .request(
                Method::POST,
                "/api/v1/groups",
                Some(&server.token),
                Some(json!({"name": g})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let b = browser();
    let res = sign_in(&server, &b, "oidc-newbie").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, v) = me(&server, &b).await;
    assert_eq!(v["username"], "oidc-newbie");
    assert_eq!(v["role"], "auditor", "auditor beats member: {v}");
    assert_eq!(v["source"], "oidc");
    assert_eq!(v["email"], "newbie@example.com");
    assert_eq!(v["groups"], json!(["sky-dev"]));

    // The next sign-in follows the provider: new role, new memberships.
    provider
        .set_user(
            "oidc-newbie",
            json!({"preferred_username": "oidc-newbie", "groups": ["sky-admins", "other"]}),
        )
        .await;
    let b2 = browser();
    let res = sign_in(&server, &b2, "oidc-newbie").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, v) = me(&server, &b2).await;
    assert_eq!(v["role"], "admin", "{v}");
    assert_eq!(v["groups"], json!(["other"]));
    let dev = server.get("/api/v1/groups/sky-dev").await;
    assert_eq!(dev["members"], json!([]), "{dev}");

    // The changes are audited as system:oidc.
    let (_, log) = server
        .request(
            Method::GET,
            "/api/v1/audit?actor=system:oidc&limit=50",
            Some(&server.token),
            None,
        )
        .await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["user.update", "group.member.add", "group.member.remove"] {
        assert!(actions.contains(&a), "{a} not in {actions:?}");
    }
    let oks = oidc_logins(&server)
        .await
        .into_iter()
        .filter(|e| e["outcome"] == "ok")
        .count();
    assert_eq!(oks, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_with_a_wrong_audience_expiry_nonce_or_issuer_are_refused() {
    let server = server("").await;
    server
        .create_user("oidc-mallory", "mallory-password", Role::Member)
        .await;
    let provider = shared_oidc();
    let now = chrono::Utc::now().timestamp();
    // The provider signs these itself: the user's claims replace its own.
    let cases = [
        ("oidc-bad-aud", json!({"aud": "another-client"}), "audience"),
        (
            "oidc-bad-exp",
            json!({"exp": now - 600, "iat": now - 1200}),
            "expired",
        ),
        ("oidc-bad-nonce", json!({"nonce": "forged-nonce"}), "nonce"),
        (
            "oidc-bad-iss",
            json!({"iss": "http://127.0.0.1:9"}),
            "issuer",
        ),
    ];
    for (sub, bad, _) in &cases {
        let mut claims = json!({"preferred_username": "oidc-mallory"});
        claims
            .as_object_mut()
            .unwrap()
            .extend(bad.as_object().unwrap().clone());
        provider.set_user(sub, claims).await;
    }
    for (sub, _, why) in &cases {
        let b = browser();
        let res = sign_in(&server, &b, sub).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{sub}");
        let body = res.text().await.unwrap();
        assert!(body.contains("the ID token was refused"), "{sub}: {body}");
        assert!(
            body.to_lowercase().contains(why),
            "{sub}: {why} not in {body}"
        );
        let (status, _) = me(&server, &b).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{sub} has no session");
    }
    let logins = oidc_logins(&server).await;
    assert_eq!(logins.len(), cases.len(), "{logins:?}");
    for e in &logins {
        assert_eq!(e["outcome"], "failed");
        assert!(
            e["reason"].as_str().unwrap().starts_with("invalid_token"),
            "{e}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_missing_state_is_refused() {
    let server = server("").await;
    server
        .create_user("oidc-sam", "sam-password-123", Role::Viewer)
        .await;
    shared_oidc()
        .set_user("oidc-sam", json!({"preferred_username": "oidc-sam"}))
        .await;
    let b = browser();
    let callback = authorize(&server, &b, "oidc-sam").await;

    // Another browser (no pending login) cannot use the code.
    let res = browser().get(&callback).send().await.unwrap();
    refused_with(res, StatusCode::BAD_REQUEST, "no login is in progress").await;

    // A forged pending-login cookie is refused.
    let forged = browser()
        .get(&callback)
        .header("cookie", "skyhold_oidc=eyJzdGF0ZSI6IngifQ.AAAA")
        .send()
        .await
        .unwrap();
    refused_with(forged, StatusCode::BAD_REQUEST, "signature").await;

    // The right browser, a changed state.
    let state = query_param(&callback, "state").unwrap();
    let changed = callback.replace(&state, "not-the-state");
    let res = b.get(&changed).send().await.unwrap();
    refused_with(res, StatusCode::BAD_REQUEST, "does not match").await;

    // No state at all (a fresh login, so the cookie is there).
    let callback = authorize(&server, &b, "oidc-sam").await;
    let code = query_param(&callback, "code").unwrap();
    let res = b
        .get(format!("{}/auth/oidc/callback?code={code}", server.url))
        .send()
        .await
        .unwrap();
    refused_with(res, StatusCode::BAD_REQUEST, "has no state").await;
    let (status, _) = me(&server, &b).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The provider's refusal (the user pressed "Deny") is shown and audited.
    let res = b
        .get(format!("{}/auth/oidc/login", server.url))
        .send()
        .await
        .unwrap();
    let authorize_url = location(&res);
    let denied = b
        .post(&authorize_url)
        .form(&[("action", "deny")])
        .send()
        .await
        .unwrap();
    let res = b.get(location(&denied)).send().await.unwrap();
    refused_with(res, StatusCode::FORBIDDEN, "access_denied").await;

    let logins = oidc_logins(&server).await;
    let reasons: Vec<&str> = logins
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.starts_with("bad_state"))
            .count(),
        4,
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.starts_with("provider_error")));
    assert!(logins.iter().all(|e| e["outcome"] == "failed"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_users_and_bad_names_are_refused() {
    let server = server("auto_create = true\n").await;
    server
        .create_user("oidc-gone", "gone-password-1", Role::Member)
        .await;
    let (status, v) = server
        .request(
            Method::PATCH,
            "/api/v1/users/oidc-gone",
            Some(&server.token),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let provider = shared_oidc();
    provider
        .set_user("oidc-gone", json!({"preferred_username": "oidc-gone"}))
        .await;
    let res = sign_in(&server, &browser(), "oidc-gone").await;
    refused_with(res, StatusCode::FORBIDDEN, "disabled").await;

    // A name skyhold would not accept for a local user is refused too.
    provider
        .set_user("oidc-spaces", json!({"preferred_username": "Ann Smith"}))
        .await;
    let res = sign_in(&server, &browser(), "oidc-spaces").await;
    refused_with(res, StatusCode::FORBIDDEN, "user name is refused").await;

    // Without preferred_username, the email is the user name.
    provider
        .set_user("oidc-by-mail", json!({"email": "bea@example.com"}))
        .await;
    let b = browser();
    let res = sign_in(&server, &b, "oidc-by-mail").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, v) = me(&server, &b).await;
    assert_eq!(v["username"], "bea@example.com");
    assert_eq!(v["role"], "viewer", "the default role: {v}");

    let reasons: Vec<String> = oidc_logins(&server)
        .await
        .iter()
        .filter(|e| e["outcome"] == "failed")
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("disabled")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.starts_with("invalid_username")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_local_logins_the_page_offers_only_the_provider() {
    let extra = format!(
        "[auth]\nlocal = false\n\n{}display_name = \"Sign in with Corp ID\"\n",
        oidc_toml(&shared_oidc().issuer, "")
    );
    let server = TestServer::start_with_toml(&[], &extra, false).await;
    let b = browser();
    let login = b
        .get(format!("{}/login", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("Sign in with Corp ID"), "{login}");
    assert!(!login.contains("name=\"password\""), "{login}");
    let (status, _) = server.login_token("admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "password logins are off");

    server
        .create_user("oidc-corp", "corp-password-1", Role::Viewer)
        .await;
    shared_oidc()
        .set_user("oidc-corp", json!({"preferred_username": "oidc-corp"}))
        .await;
    let res = sign_in(&server, &b, "oidc-corp").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, v) = me(&server, &b).await;
    assert_eq!(v["username"], "oidc-corp");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redirect_uri_comes_from_the_configuration_when_set() {
    let issuer = &shared_oidc().issuer;
    let server = TestServer::start_with_toml(
        &[],
        &format!(
            "public_url = \"https://sky.example.com/\"\n{}",
            oidc_toml(issuer, "")
        ),
        true,
    )
    .await;
    let res = browser()
        .get(format!("{}/auth/oidc/login", server.url))
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_param(&location(&res), "redirect_uri").as_deref(),
        Some("https://sky.example.com/auth/oidc/callback")
    );
    server.stop().await;

    let server = TestServer::start_with_toml(
        &[],
        &oidc_toml(
            issuer,
            "redirect_url = \"https://proxy.example.com/sky/auth/oidc/callback\"\n",
        ),
        true,
    )
    .await;
    let res = browser()
        .get(format!("{}/auth/oidc/login", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_param(&location(&res), "redirect_uri").as_deref(),
        Some("https://proxy.example.com/sky/auth/oidc/callback")
    );
    server.stop().await;

    // Without [auth.oidc] there is no such route and no button.
    let plain = TestServer::start(&[]).await;
    let res = browser()
        .get(format!("{}/auth/oidc/login", plain.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (_, login) = plain.page("/login").await;
    assert!(!login.contains("oidc-login"));
    plain.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_is_retried_at_login_until_the_provider_answers() {
    // A port with nothing on it yet: skyhold starts anyway.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let server = TestServer::start_with_toml(&[], &oidc_toml(&issuer, ""), true).await;
    let res = browser()
        .get(format!("{}/auth/oidc/login", server.url))
        .send()
        .await
        .unwrap();
    refused_with(res, StatusCode::SERVICE_UNAVAILABLE, "could not be reached").await;

    // The provider comes up; the next login discovers it.
    let provider = OidcProvider::start(port);
    assert_eq!(provider.issuer, issuer);
    server
        .create_user("oidc-late", "late-password-1", Role::Viewer)
        .await;
    provider
        .set_user("oidc-late", json!({"preferred_username": "oidc-late"}))
        .await;
    let b = browser();
    let res = b
        .get(format!("{}/auth/oidc/login", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let authorize_url = location(&res);
    assert!(authorize_url.starts_with(&issuer), "{authorize_url}");
    let res = b
        .post(&authorize_url)
        .form(&[("sub", "oidc-late")])
        .send()
        .await
        .unwrap();
    let res = b.get(location(&res)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/");
    let (_, v) = me(&server, &b).await;
    assert_eq!(v["username"], "oidc-late");
    server.stop().await;
}
