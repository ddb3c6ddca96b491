//! The web pages as a browser uses them: login form with CSRF, lists with
//! filters in the URL, detail pages, sync form.

use crate::harness::*;
use reqwest::StatusCode;

/// Logs in through the form and returns a client holding the session cookie.
pub(crate) async fn browser_login(server: &TestServer) -> reqwest::Client {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = text(&browser, server, "/login?next=/instances").await;
    let csrf = extract(&form, "name=\"csrf\" value=\"").expect("csrf field");
    // A second visit to the login page (another tab) keeps the first form valid.
    let again = text(&browser, server, "/login").await;
    assert_eq!(
        extract(&again, "name=\"csrf\" value=\"").as_deref(),
        Some(csrf.as_str())
    );
    let res = post_form(
        &browser,
        server,
        "/login",
        &[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("csrf", &csrf),
            ("next", "/instances"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/instances");
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("skyhold_session="))
        .expect("session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    browser
}

pub(crate) async fn text(browser: &reqwest::Client, server: &TestServer, path: &str) -> String {
    browser
        .get(format!("{}{path}", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub(crate) async fn post_form<T: serde::Serialize + ?Sized>(
    browser: &reqwest::Client,
    server: &TestServer,
    path: &str,
    form: &T,
) -> reqwest::Response {
    browser
        .post(format!("{}{path}", server.url))
        .form(form)
        .send()
        .await
        .unwrap()
}

pub(crate) fn extract(html: &str, after: &str) -> Option<String> {
    let start = html.find(after)? + after.len();
    Some(html[start..].split('"').next()?.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_instances_filter_and_open_one() {
    let moto = shared_moto();
    let spec = AccountSpec::new("web", moto, &["us-east-1"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let ids = ec2
        .launch(2, 1, "frontend", &[("owner", "erin")])
        .await
        .unwrap();
    ec2.stop(&ids[..1]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let browser = browser_login(&server).await;

    let page = text(&browser, &server, "/instances").await;
    for needle in [
        "frontend-0",
        "frontend-1",
        "erin",
        "Private IP",
        "Launched",
        "2 matching",
    ] {
        assert!(page.contains(needle), "instances page lacks {needle}");
    }
    let page = text(&browser, &server, "/instances?state=stopped&sort=-name").await;
    assert!(
        page.contains("frontend-0") && !page.contains("frontend-1"),
        "filter from the URL"
    );

    let id = server.all("kind=instance&q=frontend-0").await[0]["id"]
        .as_i64()
        .unwrap();
    let detail = text(&browser, &server, &format!("/resources/{id}")).await;
    for needle in [ids[0].as_str(), "Attributes", "Tags", "owner", "Volumes"] {
        assert!(detail.contains(needle), "detail page lacks {needle}");
    }
    for path in [
        "/",
        "/volumes",
        "/images",
        "/security-groups",
        "/key-pairs",
        "/sync",
        "/changes",
        "/changes?since=7d&kind=instance",
        "/snapshots",
        "/elastic-ips",
        "/vpcs",
        "/subnets",
        "/launch-templates",
    ] {
        let res = browser
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    // The cross-kind search page, and a search that does not parse shown
    // inline next to the box (with the text as typed).
    let found = text(&browser, &server, "/search?q=owner%3Aerin+state%3Astopped").await;
    assert!(
        found.contains("frontend-0") && !found.contains("frontend-1"),
        "search page"
    );
    let res = browser
        .get(format!("{}/instances?q=age%3E7x", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("class=\"error\"") && html.contains("age&gt;7x") && html.contains("column 1"),
        "{html}"
    );
    assert!(
        html.contains("value=\"age&gt;7x\""),
        "the search box keeps the text as typed"
    );
    let res = browser
        .get(format!("{}/instances?limit=0", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("limit"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_their_csrf_token() {
    let server = TestServer::start(&[]).await;
    let browser = browser_login(&server).await;
    let res = post_form(&browser, &server, "/sync", &[("csrf", "forged")]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // With the session's own token it works.
    let page = text(&browser, &server, "/sync").await;
    let csrf = extract(&page, "name=\"csrf\" value=\"").unwrap();
    let res = post_form(&browser, &server, "/sync", &[("csrf", csrf.as_str())]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // The API refuses cookie-authenticated writes without the header.
    let res = browser
        .post(format!("{}/api/v1/sync", server.url))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // A login form posted without its cookie is refused.
    let res = server
        .http
        .post(format!("{}/login", server.url))
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("csrf", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?error="));
    // Logging out ends the session.
    let res = post_form(&browser, &server, "/logout", &[("csrf", csrf.as_str())]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = browser
        .get(format!("{}/instances", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    server.stop().await;
}
