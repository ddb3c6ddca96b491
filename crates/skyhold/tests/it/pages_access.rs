//! The pages of acting safely as a browser uses them (session cookie, CSRF
//! token from the page, plain form posts, no JavaScript): the detail page's
//! permissions section and the account permissions page, against moto
//! through the SDK.

use crate::harness::*;
use crate::pages::{extract, post_form, text};
use reqwest::StatusCode;
use serde_json::Value;
use skyhold_core::Role;

/// Logs `user` in through the form; a client holding the session cookie.
async fn login(server: &TestServer, user: &str, password: &str) -> reqwest::Client {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = text(&browser, server, "/login").await;
    let csrf = extract(&form, "name=\"csrf\" value=\"").expect("login csrf");
    let res = post_form(
        &browser,
        server,
        "/login",
        &[
            ("username", user),
            ("password", password),
            ("csrf", &csrf),
            ("next", "/"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/", "login of {user} failed");
    browser
}

/// GET: status and text.
async fn get(browser: &reqwest::Client, server: &TestServer, path: &str) -> (StatusCode, String) {
    let res = browser
        .get(format!("{}{path}", server.url))
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

/// The session's CSRF token, read from a page (every page's logout form
/// carries it).
fn csrf(page: &str) -> String {
    extract(page, "name=\"csrf\" value=\"").expect("a csrf field on the page")
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// POSTs a form and returns (status, location, body).
async fn post(
    browser: &reqwest::Client,
    server: &TestServer,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let res = post_form(browser, server, path, form).await;
    let status = res.status();
    let loc = location(&res);
    (status, loc, res.text().await.unwrap())
}

async fn resource_id(server: &TestServer, query: &str) -> i64 {
    let items = server.all(query).await;
    assert_eq!(items.len(), 1, "{query}: {items:?}");
    items[0]["id"].as_i64().unwrap()
}

async fn grants_on(server: &TestServer, object: &str) -> Vec<Value> {
    server.get(&format!("/api/v1/grants?object={object}")).await["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_section_adds_changes_and_removes_a_grant() {
    let moto = shared_moto();
    let spec = AccountSpec::new("pgperm", moto, &["us-east-1"]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    ec2.launch(1, 1, "granted", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    server
        .create_user("bob", "bob-password", Role::Member)
        .await;
    let id = resource_id(&server, "kind=instance&q=granted-0").await;
    let detail = format!("/resources/{id}");
    let object = format!("resource:{id}");
    let back = format!("{detail}#permissions");

    // bob does not manage it: no Permissions section.
    let bob = login(&server, "bob", "bob-password").await;
    let (_, page) = get(&bob, &server, &detail).await;
    assert!(!page.contains("id=\"permissions\""));
    let bob_token = csrf(&page);

    let admin = login(&server, "admin", ADMIN_PASSWORD).await;
    let (_, page) = get(&admin, &server, &detail).await;
    assert!(
        page.contains("id=\"permissions\"") && page.contains("Nobody holds a grant"),
        "{page}"
    );
    assert!(page.contains("/accounts/pgperm/permissions"));
    let token = csrf(&page);
    let (status, loc, _) = post(
        &admin,
        &server,
        "/grants",
        &[
            ("csrf", &token),
            ("object", &object),
            ("subject_kind", "user"),
            ("subject_name", "bob"),
            ("level", "operate"),
            ("back", &back),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(loc, format!("{detail}?done=grant_saved#permissions"));
    let (_, page) = get(&admin, &server, &loc).await;
    assert!(
        page.contains("Permission saved.") && page.contains("user:bob"),
        "{page}"
    );
    let grants = grants_on(&server, &object).await;
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0]["level"], "operate");

    // Change the level (the row's form).
    let (status, _, _) = post(
        &admin,
        &server,
        "/grants",
        &[
            ("csrf", &token),
            ("object", &object),
            ("subject", "user:bob"),
            ("level", "manage"),
            ("back", &back),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let grants = grants_on(&server, &object).await;
    assert_eq!(
        (grants.len(), grants[0]["level"].as_str()),
        (1, Some("manage"))
    );
    // An unknown subject or level: readable refusals with a way back.
    let (status, _, body) = post(
        &admin,
        &server,
        "/grants",
        &[
            ("csrf", &token),
            ("object", &object),
            ("subject", "user:nobody"),
            ("level", "view"),
            ("back", &back),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body.contains("nobody") && body.contains(&format!("href=\"{back}\"")),
        "{body}"
    );
    let (status, _, _) = post(
        &admin,
        &server,
        "/grants",
        &[
            ("csrf", &token),
            ("object", &object),
            ("subject", "user:bob"),
            ("level", "god"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Remove: asks first, then removes.
    let gid = grants[0]["id"].as_i64().unwrap();
    let remove = format!("/grants/{gid}/delete");
    let (status, _, body) = post(
        &admin,
        &server,
        &remove,
        &[("csrf", &token), ("back", &back)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Please confirm"), "{body}");
    assert_eq!(grants_on(&server, &object).await.len(), 1);
    let (status, loc, _) = post(
        &admin,
        &server,
        &remove,
        &[("csrf", &token), ("back", &back), ("confirmed", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(loc, format!("{detail}?done=grant_removed#permissions"));
    assert!(grants_on(&server, &object).await.is_empty());
    // bob has nothing again: his own grant is refused.
    let (status, _, _) = post(
        &bob,
        &server,
        "/grants",
        &[
            ("csrf", &bob_token),
            ("object", &object),
            ("subject", "user:bob"),
            ("level", "manage"),
            ("back", &back),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(grants_on(&server, &object).await.is_empty());
    // A redirect never leaves the site.
    let (status, loc, _) = post(
        &admin,
        &server,
        "/grants",
        &[
            ("csrf", &token),
            ("object", &object),
            ("subject", "user:bob"),
            ("level", "view"),
            ("back", "https://evil.example/"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(loc.starts_with("/?done="), "{loc}");

    // Accounts have the same section on a page of their own.
    let (status, page) = get(&admin, &server, "/accounts/pgperm/permissions").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = post(
        &admin,
        &server,
        "/grants",
        &[
            ("csrf", &csrf(&page)),
            ("object", "account:pgperm"),
            ("subject", "user:bob"),
            ("level", "view"),
            ("back", "/accounts/pgperm/permissions"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = get(&admin, &server, "/accounts/pgperm/permissions").await;
    assert!(page.contains("user:bob"), "{page}");
    let (status, _) = get(&bob, &server, "/accounts/pgperm/permissions").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
}
