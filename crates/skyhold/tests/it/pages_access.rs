//! The pages of acting safely as a browser uses them (session cookie, CSRF
//! token from the page, plain form posts, no JavaScript): Users, Profile,
//! Groups and the detail page's permissions, against moto through the SDK.

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

async fn user_id(server: &TestServer, name: &str) -> i64 {
    let users = server.get("/api/v1/users").await;
    users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == name)
        .unwrap_or_else(|| panic!("no user {name}"))["id"]
        .as_i64()
        .unwrap()
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
async fn users_page_creates_changes_and_disables_users() {
    let server = TestServer::start(&[]).await;
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;
    let (status, page) = get(&admin, &server, "/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("New user") && page.contains("admin"),
        "{page}"
    );
    assert!(page.contains("href=\"/users\"") && page.contains("href=\"/profile\""));
    let token = csrf(&page);
    let carol = [
        ("username", "carol"),
        ("password", "carol-password"),
        ("role", "member"),
        ("email", "carol@example.com"),
    ];

    // Without the session's token (missing or forged) nothing is created.
    let (status, _, _) = post(&admin, &server, "/users", &carol).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut forged = carol.to_vec();
    forged.push(("csrf", "forged"));
    let (status, _, body) = post(&admin, &server, "/users", &forged).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("security token"), "{body}");
    let (status, _) = server.login_token("carol", "carol-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // With it, the user is created and listed (never the password hash).
    let mut form = carol.to_vec();
    form.push(("csrf", &token));
    let (status, loc, _) = post(&admin, &server, "/users", &form).await;
    assert_eq!(
        (status, loc.as_str()),
        (StatusCode::SEE_OTHER, "/users?done=created")
    );
    let (_, page) = get(&admin, &server, &loc).await;
    assert!(page.contains("User created."), "{page}");
    assert!(page.contains("carol") && page.contains("carol@example.com"));
    assert!(!page.contains("$argon2"), "a password hash is on the page");
    let (status, _) = server.login_token("carol", "carol-password").await;
    assert_eq!(status, StatusCode::CREATED);

    // Bad input is a readable refusal, not a 500.
    let (status, _, body) = post(
        &admin,
        &server,
        "/users",
        &[
            ("csrf", &token),
            ("username", "dan"),
            ("password", "short"),
            ("role", "member"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("password") && body.contains("8 characters"),
        "{body}"
    );
    let (status, _, _) = post(
        &admin,
        &server,
        "/users",
        &[
            ("csrf", &token),
            ("username", "dan"),
            ("password", "long-enough"),
            ("role", "emperor"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Change the role, reset the password.
    let id = user_id(&server, "carol").await;
    let path = format!("/users/{id}/update");
    let (status, loc, _) = post(
        &admin,
        &server,
        &path,
        &[("csrf", &token), ("role", "viewer")],
    )
    .await;
    assert_eq!(
        (status, loc.as_str()),
        (StatusCode::SEE_OTHER, "/users?done=role")
    );
    let users = server.get("/api/v1/users").await;
    assert!(users.to_string().contains("\"role\":\"viewer\""), "{users}");
    let (status, _, _) = post(
        &admin,
        &server,
        &path,
        &[("csrf", &token), ("password", "carol-new-password")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = server.login_token("carol", "carol-new-password").await;
    assert_eq!(status, StatusCode::CREATED);

    // Disabling asks first (a page of its own); nothing changes until
    // the confirmed form comes back.
    let disable = [
        ("csrf", token.as_str()),
        ("disabled", "true"),
        ("username", "carol"),
    ];
    let (status, _, body) = post(&admin, &server, &path, &disable).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("Please confirm") && body.contains("Disable carol"),
        "{body}"
    );
    assert!(body.contains("name=\"confirmed\" value=\"1\""), "{body}");
    let (status, _) = server.login_token("carol", "carol-new-password").await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "not disabled before confirming"
    );
    let mut confirmed = disable.to_vec();
    confirmed.push(("confirmed", "1"));
    let (status, loc, _) = post(&admin, &server, &path, &confirmed).await;
    assert_eq!(
        (status, loc.as_str()),
        (StatusCode::SEE_OTHER, "/users?done=disabled")
    );
    let (status, _) = server.login_token("carol", "carol-new-password").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a disabled user cannot log in"
    );
    let (_, page) = get(&admin, &server, "/users").await;
    assert!(page.contains("yes, since"), "{page}");
    // An admin cannot disable themselves: refused with the reason.
    let me = user_id(&server, "admin").await;
    let (status, _, body) = post(
        &admin,
        &server,
        &format!("/users/{me}/update"),
        &[("csrf", &token), ("disabled", "true"), ("confirmed", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("cannot disable yourself"), "{body}");

    // Members see no Users page and no link to it.
    server
        .create_user("dave", "dave-password", Role::Member)
        .await;
    let dave = login(&server, "dave", "dave-password").await;
    let (status, _) = get(&dave, &server, "/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, home) = get(&dave, &server, "/").await;
    assert!(!home.contains("href=\"/users\"") && home.contains("href=\"/profile\""));
    let dave_token = csrf(&home);
    let (status, _, _) = post(
        &dave,
        &server,
        "/users",
        &[
            ("csrf", &dave_token),
            ("username", "eve"),
            ("password", "eve-password"),
            ("role", "admin"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
}

/// A syntactically valid ed25519 public key line.
fn ssh_key(comment: &str) -> String {
    use base64::Engine;
    let mut blob = Vec::new();
    blob.extend_from_slice(&11u32.to_be_bytes());
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&32u32.to_be_bytes());
    blob.extend_from_slice(&[9u8; 32]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    format!("ssh-ed25519 {b64} {comment}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_changes_email_ssh_keys_and_password() {
    let server = TestServer::start(&[]).await;
    server
        .create_user("ann", "ann-password-1", Role::Member)
        .await;
    let ann = login(&server, "ann", "ann-password-1").await;
    let (status, page) = get(&ann, &server, "/profile").await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        "ann",
        "member",
        "Signed in with",
        "Change password",
        "No keys yet.",
    ] {
        assert!(page.contains(needle), "profile lacks {needle}");
    }
    let token = csrf(&page);

    let (status, loc, _) = post(
        &ann,
        &server,
        "/profile/email",
        &[("csrf", &token), ("email", "ann@example.com")],
    )
    .await;
    assert_eq!(
        (status, loc.as_str()),
        (StatusCode::SEE_OTHER, "/profile?done=email")
    );
    let (_, page) = get(&ann, &server, &loc).await;
    assert!(page.contains("Email saved.") && page.contains("ann@example.com"));
    let (status, _, _) = post(
        &ann,
        &server,
        "/profile/email",
        &[("csrf", &token), ("email", "not an address")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // SSH keys: added with a fingerprint, refused when malformed, deleted
    // after confirmation.
    let key = ssh_key("ann@laptop");
    let (status, loc, _) = post(
        &ann,
        &server,
        "/profile/ssh-keys",
        &[("csrf", &token), ("name", "laptop"), ("public_key", &key)],
    )
    .await;
    assert_eq!(
        (status, loc.as_str()),
        (StatusCode::SEE_OTHER, "/profile?done=key_added")
    );
    let (_, page) = get(&ann, &server, "/profile").await;
    assert!(
        page.contains("laptop") && page.contains("SHA256:"),
        "{page}"
    );
    let (status, _, body) = post(
        &ann,
        &server,
        "/profile/ssh-keys",
        &[
            ("csrf", &token),
            ("name", "x"),
            ("public_key", "ssh-ed25519 nope"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("public_key"), "{body}");
    let key_id = extract(&page, "action=\"/profile/ssh-keys/")
        .and_then(|s| s.split('/').next().map(str::to_owned))
        .expect("a delete form");
    let delete = format!("/profile/ssh-keys/{key_id}/delete");
    let (status, _, body) = post(
        &ann,
        &server,
        &delete,
        &[("csrf", &token), ("name", "laptop")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Please confirm"), "{body}");
    let (_, page) = get(&ann, &server, "/profile").await;
    assert!(page.contains("SHA256:"), "deleted before confirming");
    let (status, loc, _) = post(
        &ann,
        &server,
        &delete,
        &[("csrf", &token), ("confirmed", "1")],
    )
    .await;
    assert_eq!(
        (status, loc.as_str()),
        (StatusCode::SEE_OTHER, "/profile?done=key_deleted")
    );
    let (_, page) = get(&ann, &server, "/profile").await;
    assert!(!page.contains("SHA256:"), "{page}");

    // The password: the current one must be right.
    let (status, _, body) = post(
        &ann,
        &server,
        "/profile/password",
        &[
            ("csrf", &token),
            ("current_password", "wrong-password"),
            ("new_password", "ann-password-2"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("current_password"), "{body}");
    let (status, _, _) = post(
        &ann,
        &server,
        "/profile/password",
        &[
            ("current_password", "ann-password-1"),
            ("new_password", "ann-password-2"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no csrf token");
    let (status, loc, _) = post(
        &ann,
        &server,
        "/profile/password",
        &[
            ("csrf", &token),
            ("current_password", "ann-password-1"),
            ("new_password", "ann-password-2"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(loc.starts_with("/login?"), "{loc}");
    // The change ended the session; the new password works, the old not.
    let res = ann
        .get(format!("{}/profile", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        server.login_token("ann", "ann-password-1").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.login_token("ann", "ann-password-2").await.0,
        StatusCode::CREATED
    );
    let again = login(&server, "ann", "ann-password-2").await;
    assert_eq!(get(&again, &server, "/profile").await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_page_creates_groups_and_changes_members() {
    let server = TestServer::start(&[]).await;
    server
        .create_user("bob", "bob-password", Role::Member)
        .await;
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;
    let (_, page) = get(&admin, &server, "/groups").await;
    let token = csrf(&page);
    let (status, loc, _) = post(
        &admin,
        &server,
        "/groups",
        &[("csrf", &token), ("name", "dev")],
    )
    .await;
    assert_eq!(
        (status, loc.as_str()),
        (StatusCode::SEE_OTHER, "/groups?done=created")
    );
    let groups = server.get("/api/v1/groups").await;
    let gid = groups["items"][0]["id"].as_i64().unwrap();
    let (status, loc, _) = post(
        &admin,
        &server,
        &format!("/groups/{gid}/members"),
        &[("csrf", &token), ("username", "bob")],
    )
    .await;
    assert_eq!(
        (status, loc.as_str()),
        (StatusCode::SEE_OTHER, "/groups?done=member_added")
    );
    let (_, page) = get(&admin, &server, &loc).await;
    assert!(
        page.contains("bob") && page.contains("Member added."),
        "{page}"
    );
    assert_eq!(server.get("/api/v1/groups/dev").await["members"][0], "bob");
    // An unknown user is a readable 404.
    let (status, _, body) = post(
        &admin,
        &server,
        &format!("/groups/{gid}/members"),
        &[("csrf", &token), ("username", "nobody")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("nobody"), "{body}");
    // bob sees the group, but no forms.
    let bob = login(&server, "bob", "bob-password").await;
    let (status, page) = get(&bob, &server, "/groups").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("dev") && !page.contains("Create group") && !page.contains("Add member"));
    let bob_token = csrf(&page);
    let (status, _, _) = post(
        &bob,
        &server,
        &format!("/groups/{gid}/members/remove"),
        &[
            ("csrf", &bob_token),
            ("username", "bob"),
            ("confirmed", "1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Removing a member and deleting the group ask first.
    let remove = format!("/groups/{gid}/members/remove");
    let (status, _, body) = post(
        &admin,
        &server,
        &remove,
        &[("csrf", &token), ("username", "bob")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Please confirm"));
    let (status, _, _) = post(
        &admin,
        &server,
        &remove,
        &[("csrf", &token), ("username", "bob"), ("confirmed", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        server.get("/api/v1/groups/dev").await["members"],
        serde_json::json!([])
    );
    let delete = format!("/groups/{gid}/delete");
    let (status, _, _) = post(&admin, &server, &delete, &[("csrf", &token)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.get("/api/v1/groups").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (status, loc, _) = post(
        &admin,
        &server,
        &delete,
        &[("csrf", &token), ("confirmed", "1")],
    )
    .await;
    assert_eq!(
        (status, loc.as_str()),
        (StatusCode::SEE_OTHER, "/groups?done=deleted")
    );
    assert_eq!(
        server.get("/api/v1/groups").await["items"],
        serde_json::json!([])
    );
    server.stop().await;
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
