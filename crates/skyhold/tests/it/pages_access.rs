//! The pages of acting safely as a browser uses them (session cookie, CSRF
//! token from the page, plain form posts, no JavaScript): Users, Profile,
//! Groups, the detail page's actions and permissions, bulk actions, the
//! Orphans page and the Audit page, against moto through the SDK.

use crate::harness::*;
use crate::pages::{extract, post_form, text};
use reqwest::{Method, StatusCode};
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

async fn state_of(server: &TestServer, id: i64) -> String {
    server.get(&format!("/api/v1/resources/{id}")).await["state"]
        .as_str()
        .unwrap()
        .to_owned()
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
    assert!(body.contains("invalid key"), "{body}");
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
async fn a_group_named_like_another_groups_id_is_never_taken_for_it() {
    let server = TestServer::start(&[]).await;
    server
        .create_user("bob", "bob-password", Role::Member)
        .await;
    let create = |name: String| {
        let server = &server;
        async move {
            server
                .send(
                    Method::POST,
                    "/api/v1/groups",
                    &server.token,
                    serde_json::json!({"name": name}),
                    None,
                )
                .await
        }
    };
    let (status, dev) = create("zdev".into()).await;
    assert_eq!(status, StatusCode::CREATED, "{dev}");
    let dev_id = dev["id"].as_i64().unwrap();
    // "1…" sorts before "zdev": a lookup by name-or-id that took the first
    // match would find this group for zdev's id.
    let (status, numeric) = create(dev_id.to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{numeric}");
    assert_eq!(numeric["name"], dev_id.to_string(), "{numeric}");
    assert_ne!(numeric["id"], dev["id"]);
    // The page route takes zdev's id; the member lands in zdev.
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;
    let (_, page) = get(&admin, &server, "/groups").await;
    let (status, _, _) = post(
        &admin,
        &server,
        &format!("/groups/{dev_id}/members"),
        &[("csrf", &csrf(&page)), ("username", "bob")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let groups = server.get("/api/v1/groups").await;
    let members = |name: &str| {
        groups["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
            .unwrap()["members"]
            .clone()
    };
    assert_eq!(members("zdev"), serde_json::json!(["bob"]), "{groups}");
    assert_eq!(
        members(&dev_id.to_string()),
        serde_json::json!([]),
        "{groups}"
    );
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
async fn detail_page_actions_follow_permission_and_state() {
    let moto = shared_moto();
    let spec = AccountSpec::new("pgact", moto, &["us-east-1"]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    ec2.launch(1, 1, "anns", &[("owner", "ann")]).await.unwrap();
    ec2.launch(1, 1, "stray", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    server
        .create_user("ann", "ann-password", Role::Member)
        .await;
    server
        .create_user("vic", "vic-password", Role::Viewer)
        .await;
    let id = resource_id(&server, "kind=instance&q=anns-0").await;
    let stray = resource_id(&server, "kind=instance&q=stray-0").await;
    let detail = format!("/resources/{id}");
    let act = format!("/resources/{id}/act");

    // A viewer sees the page and no button; posting one anyway is a 403.
    let vic = login(&server, "vic", "vic-password").await;
    let (status, page) = get(&vic, &server, &detail).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"actions\""), "{page}");
    assert!(
        !page.contains(&format!("action=\"{act}\"")),
        "buttons shown to a viewer"
    );
    assert!(!page.contains("Set owner"));
    let (status, _, body) = post(
        &vic,
        &server,
        &act,
        &[("csrf", &csrf(&page)), ("action", "stop")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("never acts"), "{body}");
    assert_eq!(state_of(&server, id).await, "running");

    // The owner gets Stop, Reboot, Terminate (with its name box) and the
    // owner form; no Start while it runs.
    let ann = login(&server, "ann", "ann-password").await;
    let (_, page) = get(&ann, &server, &detail).await;
    let token = csrf(&page);
    assert!(page.contains(&format!("action=\"{act}\"")), "{page}");
    for needle in [
        "name=\"action\" value=\"stop\"",
        "name=\"action\" value=\"reboot\"",
        "name=\"action\" value=\"terminate\"",
        "name=\"confirm\"",
        "data-confirm=",
        "Set owner",
    ] {
        assert!(page.contains(needle), "owner's page lacks {needle}");
    }
    assert!(!page.contains("name=\"action\" value=\"start\""));
    // Without the token: refused.
    let (status, _, _) = post(&ann, &server, &act, &[("action", "stop")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(state_of(&server, id).await, "running");

    // Stop: back on the page, the outcome and the new state.
    let (status, loc, _) = post(&ann, &server, &act, &[("csrf", &token), ("action", "stop")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(loc.starts_with(&format!("{detail}?action=")), "{loc}");
    let (_, page) = get(&ann, &server, &loc).await;
    assert!(page.contains("stop succeeded"), "{page}");
    assert!(
        page.contains("badge s-idle\">stopped<"),
        "the page shows the new state: {page}"
    );
    assert!(
        page.contains("name=\"action\" value=\"start\""),
        "Start once stopped"
    );
    assert!(!page.contains("name=\"action\" value=\"stop\""));
    // Recent actions list it, with who asked.
    assert!(
        page.contains("<td>ann</td>") && page.contains(">succeeded<"),
        "{page}"
    );
    assert_eq!(state_of(&server, id).await, "stopped");

    // Terminate without the typed name, or with a wrong one: refused, shown
    // with its code; the instance stays.
    for confirm in ["", "not-its-name"] {
        let (status, loc, _) = post(
            &ann,
            &server,
            &act,
            &[
                ("csrf", &token),
                ("action", "terminate"),
                ("confirm", confirm),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(loc.contains("refused=confirmation_required"), "{loc}");
        let (_, page) = get(&ann, &server, &loc).await;
        assert!(page.contains("Not done (confirmation_required)"), "{page}");
    }
    assert_eq!(state_of(&server, id).await, "stopped");
    // Bad input is readable.
    let (status, _, body) = post(
        &ann,
        &server,
        &act,
        &[("csrf", &token), ("action", "explode")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("start, stop, reboot or terminate"), "{body}");
    let (status, _, _) = post(
        &ann,
        &server,
        "/resources/nope/act",
        &[("csrf", &token), ("action", "stop")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // With the name typed back it goes.
    let (status, loc, _) = post(
        &ann,
        &server,
        &act,
        &[
            ("csrf", &token),
            ("action", "terminate"),
            ("confirm", "anns-0"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(loc.contains("action="), "{loc}");
    let (_, page) = get(&ann, &server, &loc).await;
    assert!(page.contains("terminate succeeded"), "{page}");
    let d = server.get(&format!("/api/v1/resources/{id}")).await;
    assert!(
        d["state"] == "terminated" || !d["deleted_at"].is_null(),
        "{d}"
    );

    // Not ann's: no buttons, and the action is refused.
    let (_, page) = get(&ann, &server, &format!("/resources/{stray}")).await;
    assert!(!page.contains(&format!("action=\"/resources/{stray}/act\"")));
    let (status, _, _) = post(
        &ann,
        &server,
        &format!("/resources/{stray}/act"),
        &[("csrf", &token), ("action", "stop")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(state_of(&server, stray).await, "running");

    // The admin sets an owner from the page: the tag is written.
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;
    let (_, page) = get(&admin, &server, &format!("/resources/{stray}")).await;
    let (status, loc, _) = post(
        &admin,
        &server,
        &format!("/resources/{stray}/owner"),
        &[("csrf", &csrf(&page)), ("owner", "ann")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = get(&admin, &server, &loc).await;
    assert!(page.contains("set_owner succeeded"), "{page}");
    assert_eq!(
        server.get(&format!("/api/v1/resources/{stray}")).await["owner"],
        "ann"
    );
    let (status, _, body) = post(
        &admin,
        &server,
        &format!("/resources/{stray}/owner"),
        &[("csrf", &csrf(&page)), ("owner", "nobody-by-that-name")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("no user named"), "{body}");
    assert_eq!(
        server.get(&format!("/api/v1/resources/{stray}")).await["owner"],
        "ann"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_page_sets_and_extends_expiry_within_the_cap() {
    let moto = shared_moto();
    let spec = AccountSpec::new("pgexp", moto, &["us-east-1"])
        .with_kinds(&["instance"])
        .with_line("[accounts.policies.expiry]\nmax_ttl = \"2d\"");
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    ec2.launch(1, 1, "anns", &[("owner", "ann")]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    server
        .create_user("ann", "ann-password", Role::Member)
        .await;
    let id = resource_id(&server, "kind=instance&q=anns-0").await;
    let detail = format!("/resources/{id}");
    let expiry = format!("/resources/{id}/expiry");
    let tag = || async {
        server.get(&format!("/api/v1/resources/{id}")).await["tags"]["skyhold:expires-at"].clone()
    };

    // The owner sees the expiry and its forms, but no "Never expire".
    let ann = login(&server, "ann", "ann-password").await;
    let (_, page) = get(&ann, &server, &detail).await;
    assert!(page.contains("never set"), "{page}");
    assert!(page.contains(&format!("action=\"{expiry}\"")), "{page}");
    assert!(!page.contains("Never expire"), "{page}");
    let (status, loc, _) = post(
        &ann,
        &server,
        &expiry,
        &[("csrf", &csrf(&page)), ("in", "1d")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = get(&ann, &server, &loc).await;
    assert!(page.contains("set_expiry succeeded"), "{page}");
    let set = tag().await;
    let set = set.as_str().expect("an expiry tag");
    assert!(page.contains(set), "the page shows {set}: {page}");
    // The list shows how long is left, the time on hover.
    let (_, list) = get(&ann, &server, "/instances").await;
    assert!(list.contains(&format!("title=\"{set}\">in 23h")), "{list}");
    // Beyond the cap: the refusal says why; nothing changes.
    let (status, _, body) = post(
        &ann,
        &server,
        &expiry,
        &[("csrf", &csrf(&page)), ("extend", "2d")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("maximum TTL is 2d (from account pgexp)"),
        "{body}"
    );
    assert_eq!(tag().await, set);
    // Never expiring is refused to the owner even when posted by hand.
    let (status, _, _) = post(
        &ann,
        &server,
        &expiry,
        &[("csrf", &csrf(&page)), ("never", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(tag().await, set);
    // The admin sees and uses it.
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;
    let (_, page) = get(&admin, &server, &detail).await;
    assert!(page.contains("Never expire"), "{page}");
    let (status, _, _) = post(
        &admin,
        &server,
        &expiry,
        &[("csrf", &csrf(&page)), ("never", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(tag().await, "never");
    // Keeping it: the admin's form; the owner sees who kept it, no form.
    let (status, _, _) = post(
        &admin,
        &server,
        &format!("/resources/{id}/keep"),
        &[("csrf", &csrf(&page)), ("reason", "demo day")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = get(&ann, &server, &detail).await;
    assert!(page.contains("kept: demo day"), "{page}");
    assert!(page.contains("set by admin"), "{page}");
    assert!(
        !page.contains(&format!("action=\"/resources/{id}/keep\"")),
        "{page}"
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

    // bob does not manage it: no Permissions section, no buttons.
    let bob = login(&server, "bob", "bob-password").await;
    let (_, page) = get(&bob, &server, &detail).await;
    assert!(!page.contains("id=\"permissions\"") && !page.contains("value=\"stop\""));
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
    // bob may operate now: the page gives him Stop.
    let (_, page) = get(&bob, &server, &detail).await;
    assert!(
        page.contains("value=\"stop\"") && !page.contains("value=\"terminate\""),
        "{page}"
    );

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_expiry_sets_each_selected_row_on_any_kind_that_expires() {
    let moto = shared_moto();
    let spec =
        AccountSpec::new("pgbulkexp", moto, &["us-east-1"]).with_kinds(&["instance", "volume"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    ec2.launch(1, 1, "anns", &[("owner", "ann")]).await.unwrap();
    ec2.create_volume(8, "scratch").await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let inst = resource_id(&server, "kind=instance&q=anns-0").await;
    let vol = resource_id(&server, "kind=volume&q=scratch").await;
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;
    // The volumes list offers expiry, not power actions.
    let (_, page) = get(&admin, &server, "/volumes").await;
    assert!(
        page.contains(&format!("name=\"id\" value=\"{vol}\"")),
        "{page}"
    );
    assert!(page.contains("value=\"expire\"") && !page.contains("value=\"stop\""));
    let ids = [inst.to_string(), vol.to_string()];
    let form = |action: &'static str, ttl: &'static str| {
        vec![
            ("csrf", csrf(&page)),
            ("action", action.to_owned()),
            ("ttl", ttl.to_owned()),
            ("back", "/search".to_owned()),
            ("id", ids[0].clone()),
            ("id", ids[1].clone()),
        ]
    };
    let send = |f: Vec<(&'static str, String)>| {
        let (admin, server) = (&admin, &server);
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(admin, server, "/bulk", &f).await
        }
    };
    let (status, _, body) = send(form("expire", "2d")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("2 of 2 succeeded"), "{body}");
    let tag = |id: i64| {
        let server = &server;
        async move {
            server.get(&format!("/api/v1/resources/{id}")).await["tags"]["skyhold:expires-at"]
                .as_str()
                .map(str::to_owned)
        }
    };
    let (a, b) = (tag(inst).await.unwrap(), tag(vol).await.unwrap());
    let (_, _, body) = send(form("extend", "1d")).await;
    assert!(body.contains("2 of 2 succeeded"), "{body}");
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_millis()
    };
    assert_eq!(ms(&tag(inst).await.unwrap()) - ms(&a), 86_400_000);
    assert_eq!(ms(&tag(vol).await.unwrap()) - ms(&b), 86_400_000);
    // A bad duration refuses the whole request; a power action on the
    // volume is refused for that row alone.
    let (status, _, body) = send(form("expire", "soon")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, _, body) = send(form("stop", "")).await;
    assert!(body.contains("1 of 2 succeeded"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_stop_reports_every_row() {
    let moto = shared_moto();
    let spec = AccountSpec::new("pgbulk", moto, &["us-east-1"]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    ec2.launch(2, 1, "anns", &[("owner", "ann")]).await.unwrap();
    ec2.launch(1, 1, "others", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    server
        .create_user("ann", "ann-password", Role::Member)
        .await;
    server
        .create_user("vic", "vic-password", Role::Viewer)
        .await;
    let a = resource_id(&server, "kind=instance&q=anns-0").await;
    let b = resource_id(&server, "kind=instance&q=anns-1").await;
    let c = resource_id(&server, "kind=instance&q=others-0").await;
    let checkbox = |id: i64| format!("name=\"id\" value=\"{id}\"");

    // ann's rows have checkboxes; the one she may not operate has none.
    let ann = login(&server, "ann", "ann-password").await;
    let (_, page) = get(&ann, &server, "/instances").await;
    assert!(
        page.contains(&checkbox(a)) && page.contains(&checkbox(b)),
        "{page}"
    );
    assert!(!page.contains(&checkbox(c)));
    assert!(page.contains("action=\"/bulk\""));
    let token = csrf(&page);

    // Posting all three: each row acted on by itself, reported by itself.
    let (status, _, body) = post(
        &ann,
        &server,
        "/bulk",
        &[
            ("csrf", &token),
            ("action", "stop"),
            ("back", "/instances"),
            ("id", &a.to_string()),
            ("id", &b.to_string()),
            ("id", &c.to_string()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("2 of 3 succeeded"), "{body}");
    assert_eq!(body.matches(">succeeded<").count(), 2, "{body}");
    assert!(
        body.contains(">refused<") && body.contains("forbidden"),
        "{body}"
    );
    assert!(body.contains("anns-0") && body.contains("anns-1"));
    assert!(body.contains(&format!("resource {c}")));
    assert_eq!(state_of(&server, a).await, "stopped");
    assert_eq!(state_of(&server, b).await, "stopped");
    assert_eq!(state_of(&server, c).await, "running");

    // Refused as a whole: no rows, terminate, no token.
    let (status, _, _) = post(
        &ann,
        &server,
        "/bulk",
        &[("csrf", &token), ("action", "start")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, body) = post(
        &ann,
        &server,
        "/bulk",
        &[
            ("csrf", &token),
            ("action", "terminate"),
            ("id", &a.to_string()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("one instance at a time"), "{body}");
    let (status, _, _) = post(
        &ann,
        &server,
        "/bulk",
        &[("action", "start"), ("id", &a.to_string())],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(state_of(&server, a).await, "stopped");

    // A viewer gets no checkboxes and no bulk form.
    let vic = login(&server, "vic", "vic-password").await;
    let (_, page) = get(&vic, &server, "/instances").await;
    assert!(
        page.contains("anns-0")
            && !page.contains("name=\"id\"")
            && !page.contains("action=\"/bulk\"")
    );

    // One Idempotency-Key on a bulk request still acts on every row.
    let (sa, sb) = (a.to_string(), b.to_string());
    let res = ann
        .post(format!("{}/bulk", server.url))
        .header("Idempotency-Key", "bulk-start-1")
        .form(&[
            ("csrf", token.as_str()),
            ("action", "start"),
            ("back", "/instances"),
            ("id", sa.as_str()),
            ("id", sb.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(body.contains("2 of 2 succeeded"), "{body}");
    assert_ne!(state_of(&server, a).await, "stopped");
    assert_ne!(state_of(&server, b).await, "stopped");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_page_lists_unowned_resources_and_admins_claim_them() {
    let moto = shared_moto();
    let spec = AccountSpec::new("pgorph", moto, &["us-east-1"]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    ec2.launch(1, 1, "owned", &[("owner", "ann")])
        .await
        .unwrap();
    let strays = ec2.launch(2, 1, "stray", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    server
        .create_user("ann", "ann-password", Role::Member)
        .await;
    let s0 = resource_id(&server, "kind=instance&q=stray-0").await;
    let s1 = resource_id(&server, "kind=instance&q=stray-1").await;

    let admin = login(&server, "admin", ADMIN_PASSWORD).await;
    let (_, home) = get(&admin, &server, "/").await;
    assert!(
        home.contains("href=\"/orphans\">Orphaned<"),
        "dashboard figure"
    );
    let (status, page) = get(&admin, &server, "/orphans").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("stray-0") && page.contains("stray-1"),
        "{page}"
    );
    assert!(
        !page.contains("owned-0"),
        "an owned instance is not an orphan"
    );
    assert!(page.contains(&format!("name=\"id\" value=\"{s0}\"")));
    let token = csrf(&page);
    // Narrowing down keeps is:orphan.
    let (_, page) = get(&admin, &server, "/orphans?q=stray-1").await;
    assert!(page.contains("stray-1") && !page.contains("stray-0") && !page.contains("owned-0"));

    // Claim one for ann: the tag is written, the row leaves the page.
    let (status, _, body) = post(
        &admin,
        &server,
        "/orphans/claim",
        &[("csrf", &token), ("owner", "ann"), ("id", &s0.to_string())],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("1 of 1 succeeded"), "{body}");
    let tags = ec2.instance_tags(&strays[0]).await.unwrap();
    assert_eq!(tags.get("skyhold:owner").map(String::as_str), Some("ann"));
    let (_, page) = get(&admin, &server, "/orphans").await;
    assert!(
        !page.contains("stray-0") && page.contains("stray-1"),
        "{page}"
    );
    // Without an owner: refused as a whole.
    let (status, _, _) = post(
        &admin,
        &server,
        "/orphans/claim",
        &[("csrf", &token), ("id", &s1.to_string())],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A member sees the orphans, cannot claim them.
    let ann = login(&server, "ann", "ann-password").await;
    let (status, page) = get(&ann, &server, "/orphans").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("stray-1") && !page.contains("name=\"id\""),
        "{page}"
    );
    let (status, _, body) = post(
        &ann,
        &server,
        "/orphans/claim",
        &[
            ("csrf", &csrf(&page)),
            ("owner", "ann"),
            ("id", &s1.to_string()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("0 of 1 succeeded") && body.contains("forbidden"),
        "{body}"
    );
    assert_eq!(
        server.get(&format!("/api/v1/resources/{s1}")).await["owner"],
        ""
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_page_filters_pages_verifies_and_scopes_entries() {
    let server = TestServer::start(&[]).await;
    server
        .create_user("ann", "ann-password", Role::Member)
        .await;
    server
        .create_user("bob", "bob-password", Role::Member)
        .await;
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;
    let ann = login(&server, "ann", "ann-password").await;
    let bob = login(&server, "bob", "bob-password").await;
    // Some history: ann changes her email, bob fails a grant, a bad login.
    let (_, page) = get(&ann, &server, "/profile").await;
    let (status, _, _) = post(
        &ann,
        &server,
        "/profile/email",
        &[("csrf", &csrf(&page)), ("email", "ann@example.com")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = get(&bob, &server, "/groups").await;
    let (status, _, _) = post(
        &bob,
        &server,
        "/groups",
        &[("csrf", &csrf(&page)), ("name", "bobs")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        server.login_token("ann", "wrong-password").await.0,
        StatusCode::UNAUTHORIZED
    );

    let (status, page) = get(&admin, &server, "/audit").await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        "Client IP",
        "profile.email",
        "group.manage",
        "user.create",
        "s-warn\">denied<",
        "s-bad\">failed<",
        "<td>bob</td>",
    ] {
        assert!(page.contains(needle), "audit page lacks {needle}: {page}");
    }
    assert!(page.contains("href=\"/api/v1/audit/export?format=jsonl\""));
    assert!(page.contains("href=\"/api/v1/audit/export?format=csv\""));
    assert!(page.contains("action=\"/audit/verify\""));

    // Filters from the URL.
    let (_, page) = get(&admin, &server, "/audit?actor=ann&action=profile.").await;
    assert!(
        page.contains("profile.email") && page.contains("<td>ann</td>"),
        "{page}"
    );
    assert!(
        !page.contains("<td>bob</td>") && !page.contains("user.create"),
        "{page}"
    );
    assert!(page.contains("value=\"ann\""), "the form keeps the filter");
    let (_, page) = get(&admin, &server, "/audit?outcome=denied").await;
    assert!(
        page.contains("group.manage") && !page.contains("s-good\">ok<"),
        "{page}"
    );
    let (_, page) = get(&admin, &server, "/audit?target=user&outcome=failed").await;
    assert!(
        page.contains("s-bad\">failed<") && !page.contains("s-warn\">denied<"),
        "{page}"
    );
    let (status, page) = get(&admin, &server, "/audit?outcome=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("outcome") && page.contains("use ok, denied or failed"),
        "{page}"
    );
    let (status, _) = get(&admin, &server, "/audit?since=yesterday-ish").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Paging: newest first, "Older" carries the cursor.
    let (_, first) = get(&admin, &server, "/audit?limit=2").await;
    let older = extract(&first, "<a href=\"/audit?").expect("an Older link");
    let older = format!("/audit?{}", older.replace("&amp;", "&"));
    assert!(
        older.contains("cursor=") && older.contains("limit=2"),
        "{older}"
    );
    let seqs = |html: &str| -> Vec<i64> {
        html.split("<td class=\"mono\">")
            .skip(1)
            .filter_map(|s| s.split('<').next()?.parse().ok())
            .collect()
    };
    let (s1, s2) = (seqs(&first), seqs(&get(&admin, &server, &older).await.1));
    assert_eq!((s1.len(), s2.len()), (2, 2), "{s1:?} {s2:?}");
    assert!(
        s1[0] > s1[1] && s1[1] > s2[0] && s2[0] > s2[1],
        "{s1:?} {s2:?}"
    );

    // The export link works with the session cookie.
    let res = admin
        .get(format!("{}/api/v1/audit/export?format=csv", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().starts_with("seq,time,"));

    // Verify chain.
    let (status, _, body) =
        post(&admin, &server, "/audit/verify", &[("csrf", &csrf(&first))]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("The chain is intact"), "{body}");
    let (status, _, _) = post(&admin, &server, "/audit/verify", &[("csrf", "nope")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A member sees only what concerns them: no export, no verify.
    let (status, page) = get(&ann, &server, "/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("profile.email") && page.contains("<td>ann</td>"),
        "{page}"
    );
    assert!(
        !page.contains("<td>bob</td>") && !page.contains("<td>admin</td>"),
        "{page}"
    );
    assert!(!page.contains("/api/v1/audit/export") && !page.contains("action=\"/audit/verify\""));
    let (status, _, _) = post(&ann, &server, "/audit/verify", &[("csrf", &csrf(&page))]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, page) = get(&ann, &server, "/audit?actor=bob").await;
    assert!(!page.contains("<td>bob</td>"), "{page}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_warnings_link_extends_once_after_login() {
    let moto = shared_moto();
    let spec = AccountSpec::new("xlink", moto, &["us-east-1"]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let soon = skyhold_core::rfc3339(skyhold_core::now_millis() + 2 * 3_600_000);
    ec2.launch(
        1,
        1,
        "xlink-web",
        &[
            ("skyhold:owner", "ann"),
            ("skyhold:expires-at", soon.as_str()),
        ],
    )
    .await
    .unwrap();
    let server = TestServer::start_with(
        std::slice::from_ref(&spec),
        "[policies]\ninterval = \"off\"\n[policies.expiry]\nwarn = [\"24h\"]\nmax_ttl = \"30d\"\n",
    )
    .await;
    server
        .create_user("ann", "ann-password-1", Role::Member)
        .await;
    server
        .create_user("cy", "cy-password-12", Role::Member)
        .await;
    server.sync().await;
    let (s, run) = server
        .send(
            Method::POST,
            "/api/v1/policies/runs",
            &server.token,
            serde_json::json!({}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{run}");
    let notes = server.get("/api/v1/notifications").await;
    let link = notes["items"][0]["body"]["extend_url"]
        .as_str()
        .unwrap_or_else(|| panic!("{notes}"))
        .to_owned();
    let path = link.trim_start_matches(&server.url).to_owned();
    assert!(path.starts_with("/extend/ext-"), "{path}");
    let id = resource_id(&server, "kind=instance").await;
    let path_of = format!("/api/v1/resources/{id}");
    let expiry = || async {
        server.get(&path_of).await["expires_at"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let before = expiry().await;

    // Someone without manage on it cannot use it (and does not use it up).
    let cy = login(&server, "cy", "cy-password-12").await;
    let (s, cy_page) = get(&cy, &server, &path).await;
    assert_eq!(s, StatusCode::OK, "{cy_page}");
    let (s, _, body) = post(&cy, &server, &path, &[("csrf", &csrf(&cy_page))]).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(expiry().await, before);
    // The owner sees what it does; a GET changes nothing.
    let ann = login(&server, "ann", "ann-password-1").await;
    let (s, page) = get(&ann, &server, &path).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("Extend by 1d"), "{page}");
    assert_eq!(expiry().await, before);
    let (s, loc, body) = post(&ann, &server, &path, &[("csrf", &csrf(&page))]).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(loc, format!("/resources/{id}?done=extended"));
    let after = expiry().await;
    let t = |v: &str| {
        chrono::DateTime::parse_from_rfc3339(v)
            .unwrap()
            .timestamp_millis()
    };
    assert_eq!(
        t(&after) - t(&before),
        24 * 3_600_000,
        "{before} -> {after}"
    );
    // Once only.
    let (s, _, body) = post(&ann, &server, &path, &[("csrf", &csrf(&page))]).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("cannot be used again"), "{body}");
    assert_eq!(expiry().await, after);
    // The Policies page previews an unsaved change, names a bad one, and
    // lists the passes; Reports and Notifications render.
    let (s, p) = server
        .page("/policies?terminate_after=2d&mode=dry-run")
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert!(p.contains("A preview of an unsaved change"), "{p}");
    let (s, p) = server.page("/policies?warn=soon").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{p}");
    let (s, p) = server.page("/policies").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        p.contains("xlink-web-0") && !p.contains("unsaved change"),
        "{p}"
    );
    let (s, p) = server.page("/reports?group_by=owner,kind&from=30d").await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert!(p.contains("Spend per day"), "{p}");
    let (s, p) = server.page("/notifications").await;
    assert_eq!(s, StatusCode::OK);
    assert!(p.contains("expiry.warning"), "{p}");
    // The extension is in the audit log as ann's.
    let audit = server
        .get("/api/v1/audit?action=resource.set_expiry&limit=5")
        .await;
    assert_eq!(audit["items"][0]["actor"], "ann", "{audit}");
    server.stop().await;
}
