//! Images of instances through the action pipeline, against moto: tagged
//! on create, in the inventory at once, usable by blueprints, refused when
//! the name is taken, deregistered with confirmation, and found (never made
//! twice) after a crash between CreateImage and its answer.

use crate::harness::*;
use crate::proxy::{Fault, FaultProxy};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skyhold_aws::testkit::emulator_account;
use skyhold_aws::AwsProvider;
use skyhold_core::{ObservedResource, Provider, ResourceKind, Role};
use std::time::{Duration, Instant};

const REGION: &str = "us-east-1";

async fn own_images(endpoint: &str, account_id: &str) -> Vec<ObservedResource> {
    AwsProvider::new(emulator_account(endpoint, account_id))
        .list(REGION, ResourceKind::Image)
        .await
        .expect("list images")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_made_tagged_listed_and_deregistered() {
    let moto = shared_moto();
    let spec = AccountSpec::new("img", moto, &[REGION]).with_kinds(&["instance", "image"]);
    let ec2 = ec2(moto, &spec.account_id, REGION).await;
    let ids = ec2
        .launch(1, 1, "web", &[("skyhold:owner", "ann")])
        .await
        .unwrap();
    let server = TestServer::start(std::slice::from_ref(&spec)).await;
    server.sync().await;
    let admin = server.token.clone();
    let ann = server.user_token("ann", Role::Member).await;
    let cy = server.user_token("cy", Role::Member).await;
    let rid = server.all("kind=instance").await[0]["id"].clone();
    let path = format!("/api/v1/resources/{rid}/image");

    // Bad input: a field error, nothing made.
    for (body, field) in [
        (json!({"name": "x"}), "name"),
        (json!({"name": "bad\u{7}name"}), "name"),
        (
            json!({"name": "ok-name", "description": "d".repeat(300)}),
            "description",
        ),
    ] {
        let (s, v) = server
            .send(Method::POST, &path, &ann, body.clone(), None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    let (s, v) = server
        .send(Method::POST, &path, &ann, json!({"colour": 1}), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // cy may see the instance but not operate it.
    let (s, v) = server
        .send(Method::POST, &path, &cy, json!({"name": "cy-img"}), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(own_images(moto, &spec.account_id).await.is_empty());

    // The owner makes one: tagged on create, in the inventory at once.
    let (s, a) = server
        .send(
            Method::POST,
            &path,
            &ann,
            json!({"name": "golden-1", "description": "base", "no_reboot": true}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{a}");
    assert_eq!(a["state"], "succeeded", "{a}");
    let image_id = a["result"]["image_id"].as_str().unwrap().to_owned();
    let images = own_images(moto, &spec.account_id).await;
    assert_eq!(images.len(), 1);
    let img = &images[0];
    assert_eq!(img.provider_id, image_id);
    assert_eq!(
        img.tags.get("skyhold:owner").map(String::as_str),
        Some("ann")
    );
    assert_eq!(
        img.tags.get("skyhold:creator").map(String::as_str),
        Some("ann")
    );
    assert_eq!(
        img.tags.get("skyhold:action-id"),
        Some(&a["id"].to_string())
    );
    assert_eq!(img.tags.get("skyhold:source-instance"), Some(&ids[0]));
    // Its snapshots carry the same tags.
    let snaps: Vec<&str> = img.attributes["snapshot_ids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!snaps.is_empty(), "{img:?}");
    let all_snaps = AwsProvider::new(emulator_account(moto, &spec.account_id))
        .list(REGION, ResourceKind::Snapshot)
        .await
        .unwrap();
    for id in snaps {
        let s = all_snaps.iter().find(|s| s.provider_id == id).unwrap();
        assert_eq!(
            s.tags.get("skyhold:creator").map(String::as_str),
            Some("ann"),
            "{s:?}"
        );
    }
    let listed = server.all("kind=image").await;
    assert_eq!(
        listed.len(),
        1,
        "in the inventory without a sync: {listed:?}"
    );
    assert_eq!(listed[0]["owner"], "ann");
    // The same name again is refused; nothing more is made.
    let (s, v) = server
        .send(Method::POST, &path, &ann, json!({"name": "golden-1"}), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exists already"),
        "{v}"
    );
    assert_eq!(own_images(moto, &spec.account_id).await.len(), 1);
    // A default name is derived from the instance.
    let (s, a2) = server
        .send(Method::POST, &path, &admin, json!({}), None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{a2}");
    assert!(
        a2["params"]["name"].as_str().unwrap().starts_with("web-0-"),
        "{a2}"
    );

    // Blueprints can choose it.
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/blueprints",
            &admin,
            json!({"name": "from-golden", "account": "img", "region": REGION,
                   "image": "newest:golden-*", "instance_types": ["t3.*"],
                   "default_type": "t3.micro", "login_user": "ubuntu"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, p) = server
        .send(
            Method::POST,
            "/api/v1/launches",
            &admin,
            json!({"blueprint": "from-golden", "name": "g", "dry_run": true}),
            None,
        )
        .await;
    assert_eq!(p["image"]["id"], image_id.as_str(), "{p}");

    // Deregistering: manage, and the image's name typed back.
    let img_rid = listed[0]["id"].clone();
    let dpath = format!("/api/v1/resources/{img_rid}/deregister");
    let (s, v) = server
        .send(Method::POST, &dpath, &ann, json!({}), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "confirmation_required", "{v}");
    let (s, v) = server
        .send(
            Method::POST,
            &dpath,
            &ann,
            json!({"confirm": "golden-1"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["state"], "succeeded", "{v}");
    let left: Vec<String> = own_images(moto, &spec.account_id)
        .await
        .into_iter()
        .map(|i| i.provider_id)
        .collect();
    assert!(!left.contains(&image_id), "{left:?}");
    let (_, r) = server
        .send(
            Method::GET,
            &format!("/api/v1/resources/{img_rid}"),
            &admin,
            json!(null),
            None,
        )
        .await;
    assert!(!r["deleted_at"].is_null(), "tombstoned at once: {r}");

    // The CLI: create and wait, then remove.
    let o = server.cli_as(
        &ann,
        &[
            "image",
            "create",
            "web-0",
            "--name",
            "golden-2",
            "--no-reboot",
            "--wait",
        ],
        "",
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("(golden-2) of i-") && stdout.ends_with(": available\n"),
        "{stdout}"
    );
    let o = server.cli_as(&ann, &["image", "rm", "golden-2"], "");
    assert!(!o.status.success(), "rm without --yes off a terminal");
    let o = server.cli_as(&ann, &["image", "rm", "golden-2", "--yes"], "");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    server.stop().await;
}

/// The server dies while the proxy holds CreateImage's answer: on restart
/// the action settles from the image found by its name and action tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_create_image_settles_from_the_image_made() {
    let moto = shared_moto();
    let proxy = FaultProxy::start(moto).await;
    let spec = AccountSpec::new("imgcrash", &proxy.endpoint, &[REGION]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, REGION).await;
    ec2.launch(1, 1, "src", &[]).await.unwrap();
    let db = TestDb::new().await;
    let config = replica_config(
        &db,
        "img-crash.toml",
        "sync_on_start = true\naction_timeout = \"2s\"",
        &spec,
    );
    let http = reqwest::Client::new();
    let get = |url: String, t: String| {
        let http = http.clone();
        async move {
            http.get(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let mut first = crate::replicas::Replica::start(&config);
    let t1 = admin_token(&http, &first.url).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let rid = loop {
        let v = get(
            format!("{}/api/v1/resources?kind=instance", first.url),
            t1.clone(),
        )
        .await;
        if let Some(id) = v["items"][0]["id"].as_i64() {
            break id;
        }
        assert!(Instant::now() < deadline, "never synced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    proxy.set(
        "Action=CreateImage",
        Fault::HoldAnswer(Duration::from_secs(60)),
    );
    let req = http
        .post(format!("{}/api/v1/resources/{rid}/image", first.url))
        .bearer_auth(&t1)
        .json(&json!({"name": "survivor-img", "no_reboot": true}));
    let pending = tokio::spawn(async move { req.send().await.map(|r| r.status()) });
    let deadline = Instant::now() + Duration::from_secs(20);
    while own_images(moto, &spec.account_id).await.is_empty() {
        assert!(Instant::now() < deadline, "CreateImage never reached moto");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill();
    assert!(pending.await.unwrap().is_err());
    proxy.clear();

    let second = crate::replicas::Replica::start(&config);
    let t2 = admin_token(&http, &second.url).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let settled = loop {
        let v = get(
            format!("{}/api/v1/actions?resource={rid}", second.url),
            t2.clone(),
        )
        .await;
        let a = v["items"][0].clone();
        if a["state"] != "running" && a["state"] != "pending" {
            break a;
        }
        assert!(Instant::now() < deadline, "never settled: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let images = own_images(moto, &spec.account_id).await;
    assert_eq!(images.len(), 1, "one image, not two");
    assert_eq!(settled["state"], "succeeded", "{settled}");
    assert_eq!(
        settled["result"]["image_id"],
        images[0].provider_id.as_str(),
        "{settled}"
    );
    assert_eq!(proxy.count("Action=CreateImage"), 1);
}
