//! Launches against moto through the SDK, on the backend under test: tags
//! on create, quotas that hold under concurrency, on-behalf launches, field
//! errors that launch and reserve nothing, idempotency, and the recovery of
//! a launch whose RunInstances answer was lost.

use crate::harness::*;
use crate::proxy::{Fault, FaultProxy};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skyhold_aws::testkit::{emulator_account, Aws};
use skyhold_aws::AwsProvider;
use skyhold_core::{ObservedResource, Provider, ResourceKind, Role};
use std::time::{Duration, Instant};

const REGION: &str = "us-east-1";

fn blueprint(name: &str, account: &str) -> Value {
    json!({
        "name": name, "account": account, "region": REGION,
        "image": "ami-12c6146b", "instance_types": ["t3.*"],
        "default_type": "t3.micro", "login_user": "ubuntu",
        "default_ttl": "8h", "max_ttl": "24h",
        "packages": ["r-base"], "tags": {"team": "lab"},
        "user_data": "#cloud-config\nhostname: {{name}}\n",
        "dns_zone": "dev.example.com", "dns_name_pattern": "{{name}}.dev.example.com",
    })
}

/// The instances moto holds for an account, read through the SDK.
async fn moto_instances(spec: &AccountSpec) -> Vec<ObservedResource> {
    moto_instances_at(&spec.endpoint, &spec.account_id).await
}

async fn moto_instances_at(endpoint: &str, account_id: &str) -> Vec<ObservedResource> {
    let p = AwsProvider::new(emulator_account(endpoint, account_id));
    p.list(REGION, ResourceKind::Instance)
        .await
        .expect("list instances")
        .into_iter()
        .filter(|i| i.state != "terminated")
        .collect()
}

/// A server with account `lab`, blueprint `dev-box` and users `ann`
/// (operate on it) and `cy` (no grant); returns their tokens.
async fn setup(endpoint: &str) -> (TestServer, AccountSpec, String, String) {
    setup_with(endpoint, "").await
}

/// [`setup`] with more top-level configuration.
async fn setup_with(endpoint: &str, extra: &str) -> (TestServer, AccountSpec, String, String) {
    let spec = AccountSpec::new("lab", endpoint, &[REGION]).with_kinds(&["instance"]);
    let server = TestServer::start_with_toml(std::slice::from_ref(&spec), extra, true).await;
    let aws = Aws::connect(shared_moto(), &spec.account_id, REGION)
        .await
        .unwrap();
    aws.create_zone("dev.example.com", "the blueprint's zone")
        .await
        .unwrap();
    let admin = server.token.clone();
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/blueprints",
            &admin,
            blueprint("dev-box", "lab"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let ann = server.user_token("ann", Role::Member).await;
    let cy = server.user_token("cy", Role::Member).await;
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/grants",
            &admin,
            json!({"subject": "user:ann", "object": "blueprint:dev-box", "level": "operate"}),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    (server, spec, ann, cy)
}

fn tag<'a>(o: &'a ObservedResource, k: &str) -> &'a str {
    o.tags.get(k).map(String::as_str).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launches_are_tagged_on_create_and_held_to_quotas() {
    let (server, spec, ann, cy) = setup(shared_moto()).await;
    let admin = server.token.clone();
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/quotas",
            &admin,
            json!({"subject": "default:user", "instances": 2, "vcpus": 8}),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");

    // The preview: the plan, the quota it takes and the command lines.
    let form = json!({"blueprint": "dev-box", "name": "web", "count": 2,
                      "packages": ["r-base"], "ttl": "12h", "dry_run": true});
    let (s, p) = server
        .send(Method::POST, "/api/v1/launches", &ann, form.clone(), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["request"]["instances"], 2, "{p}");
    assert_eq!(p["request"]["vcpus"], 4, "{p}");
    assert_eq!(p["quotas"][0]["subject"], "user:ann", "{p}");
    assert_eq!(p["quotas"][0]["source"], "default:user", "{p}");
    assert_eq!(p["remaining_after"]["instances"], 0, "{p}");
    assert!(p["exceeded"].is_null(), "{p}");
    assert_eq!(p["servers"][1]["name"], "web-2", "{p}");
    assert_eq!(p["servers"][1]["fqdn"], "web-2.dev.example.com", "{p}");
    assert_eq!(
        p["commands"]["skyhold"],
        "skyhold launch dev-box --name web --type t3.micro --count 2 --package r-base --ttl 12h"
    );
    let aws = p["commands"]["aws"].as_array().unwrap();
    assert_eq!(aws.len(), 2);
    assert!(
        aws[0].as_str().unwrap().starts_with(
            "aws ec2 run-instances --profile lab --region us-east-1 --image-id ami-12c6146b --instance-type t3.micro --count 1"
        ),
        "{p}"
    );
    let (_, again) = server
        .send(Method::POST, "/api/v1/launches", &ann, form.clone(), None)
        .await;
    assert_eq!(
        again["commands"], p["commands"],
        "the same form, the same commands"
    );
    assert!(
        moto_instances(&spec).await.is_empty(),
        "a dry run launches nothing"
    );

    // Someone without operate on the blueprint does not see it.
    let mut launch = form.clone();
    launch["dry_run"] = json!(false);
    let (s, v) = server
        .send(Method::POST, "/api/v1/launches", &cy, launch.clone(), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    // The launch: two servers, tagged on create, in the inventory at once.
    let (s, l) = server
        .send(
            Method::POST,
            "/api/v1/launches",
            &ann,
            launch.clone(),
            Some("k-1"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    assert_eq!(l["state"], "succeeded", "{l}");
    assert_eq!(l["owner"], "ann");
    assert_eq!(l["requested_by"], "ann");
    assert_eq!(l["instances"].as_array().unwrap().len(), 2, "{l}");
    assert_eq!(l["instances"][0]["name"], "web-1");
    assert_eq!(l["instances"][0]["fqdn"], "web-1.dev.example.com");
    let in_moto = moto_instances(&spec).await;
    assert_eq!(in_moto.len(), 2);
    let launch_tag = tag(&in_moto[0], "skyhold:launch-id").to_owned();
    assert!(launch_tag.starts_with("lch-"), "{launch_tag}");
    for i in &in_moto {
        assert_eq!(tag(i, "skyhold:owner"), "ann");
        assert_eq!(tag(i, "skyhold:creator"), "ann");
        assert_eq!(tag(i, "skyhold:blueprint"), "dev-box@1");
        assert_eq!(tag(i, "skyhold:launch-id"), launch_tag);
        assert_eq!(tag(i, "team"), "lab");
        let expires = chrono::DateTime::parse_from_rfc3339(tag(i, "skyhold:expires-at"))
            .expect("expires-at is RFC 3339");
        let hours = (expires.timestamp_millis() - skyhold_core::now_millis()) / 3_600_000;
        assert!((11..=12).contains(&hours), "{hours}");
    }
    let mut names: Vec<&str> = in_moto.iter().map(|i| tag(i, "Name")).collect();
    names.sort();
    assert_eq!(names, ["web-1", "web-2"]);
    let listed = server.all("kind=instance&q=owner:ann").await;
    assert_eq!(listed.len(), 2, "in the inventory without a sync");

    // The same Idempotency-Key answers with the first launch.
    let (s, replay) = server
        .send(
            Method::POST,
            "/api/v1/launches",
            &ann,
            launch.clone(),
            Some("k-1"),
        )
        .await;
    assert!(s.is_success(), "{replay}");
    assert_eq!(replay["id"], l["id"]);
    assert_eq!(moto_instances(&spec).await.len(), 2);

    // A name in use is refused before any call.
    let mut same = launch.clone();
    same["count"] = json!(1);
    same["name"] = json!("web-2");
    let (s, v) = server
        .send(Method::POST, "/api/v1/launches", &admin, same, None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "name_taken", "{v}");

    // The quota is full: refused with what it is, nothing launched or held.
    let mut third = launch.clone();
    third["name"] = json!("db");
    third["count"] = json!(1);
    let (s, v) = server
        .send(Method::POST, "/api/v1/launches", &ann, third, None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "quota_exceeded", "{v}");
    let q = &v["error"]["quota"];
    assert_eq!(q["subject"], "user:ann", "{v}");
    assert_eq!(q["dimension"], "instances", "{v}");
    assert_eq!(
        (
            q["limit"].as_u64(),
            q["usage"].as_u64(),
            q["request"].as_u64()
        ),
        (Some(2), Some(2), Some(1)),
        "{v}"
    );
    assert_eq!(moto_instances(&spec).await.len(), 2);
    let (_, mine) = server
        .send(Method::GET, "/api/v1/me/quota", &ann, json!(null), None)
        .await;
    assert_eq!(
        mine["items"][0]["usage"]["instances"], 2,
        "reservations were given back: {mine}"
    );

    // The launch can be read by its requester, not by others.
    let path = format!("/api/v1/launches/{}", l["id"]);
    let (s, got) = server
        .send(Method::GET, &path, &ann, json!(null), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["instances"], l["instances"]);
    let (s, _) = server
        .send(Method::GET, &path, &cy, json!(null), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = server
        .send(
            Method::GET,
            "/api/v1/launches?owner=ann",
            &admin,
            json!(null),
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    // Others' launches are filtered out before paging: cy's pages are
    // empty and end at once, ann's first page of one is hers.
    let (_, list) = server
        .send(
            Method::GET,
            "/api/v1/launches?limit=1",
            &cy,
            json!(null),
            None,
        )
        .await;
    assert_eq!(list["items"], json!([]), "{list}");
    assert!(list["next_cursor"].is_null(), "{list}");
    let (_, list) = server
        .send(
            Method::GET,
            "/api/v1/launches?limit=1",
            &ann,
            json!(null),
            None,
        )
        .await;
    assert_eq!(list["items"][0]["owner"], "ann", "{list}");

    // The audit log records the launch with its instances, and the refusal.
    let (_, audit) = server
        .send(
            Method::GET,
            "/api/v1/audit?action=launch.",
            &admin,
            json!(null),
            None,
        )
        .await;
    let items = audit["items"].as_array().unwrap();
    let ok = items
        .iter()
        .find(|e| e["outcome"] == "ok")
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(ok["new"]["instances"].as_array().unwrap().len(), 2, "{ok}");
    assert_eq!(ok["new"]["creator"], "ann");
    assert!(
        items.iter().any(|e| e["outcome"] == "denied"
            && e["reason"]
                .as_str()
                .unwrap_or_default()
                .starts_with("quota_exceeded")),
        "{audit}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launching_for_someone_else_needs_manage_on_them() {
    let (server, spec, _ann, _cy) = setup(shared_moto()).await;
    let admin = server.token.clone();
    let staff = server.user_token("staff", Role::Member).await;
    let stu = server.user_token("stu", Role::Member).await;
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/grants",
            &admin,
            json!({"subject": "user:staff", "object": "blueprint:dev-box", "level": "operate"}),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    let body = json!({"blueprint": "dev-box", "name": "stu-box", "owner": "stu"});
    let (s, v) = server
        .send(Method::POST, "/api/v1/launches", &staff, body.clone(), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(moto_instances(&spec).await.is_empty());
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/grants",
            &admin,
            json!({"subject": "user:staff", "object": "user:stu", "level": "manage"}),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    let (s, l) = server
        .send(Method::POST, "/api/v1/launches", &staff, body, None)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    assert_eq!(
        (l["owner"].as_str(), l["requested_by"].as_str()),
        (Some("stu"), Some("staff"))
    );
    let in_moto = moto_instances(&spec).await;
    assert_eq!(in_moto.len(), 1);
    assert_eq!(tag(&in_moto[0], "skyhold:owner"), "stu");
    assert_eq!(tag(&in_moto[0], "skyhold:creator"), "staff");
    // The owner sees the launch and owns the server.
    let path = format!("/api/v1/launches/{}", l["id"]);
    let (s, _) = server
        .send(Method::GET, &path, &stu, json!(null), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, r) = server
        .send(
            Method::GET,
            "/api/v1/resources?kind=instance",
            &stu,
            json!(null),
            None,
        )
        .await;
    assert_eq!(r["items"][0]["permission"], "manage", "{r}");
    // An unknown owner is a field error.
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/launches",
            &staff,
            json!({"blueprint": "dev-box", "name": "x1", "owner": "nobody"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["field"], "owner", "{v}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_launch_requests_name_the_field_and_launch_nothing() {
    let (server, spec, ann, _cy) = setup(shared_moto()).await;
    let cases = [
        (json!({"blueprint": "dev-box", "name": ""}), "name"),
        (json!({"blueprint": "dev-box", "name": "a b"}), "name"),
        (
            json!({"blueprint": "dev-box", "name": "ok", "count": 0}),
            "count",
        ),
        (
            json!({"blueprint": "dev-box", "name": "ok", "count": 99}),
            "count",
        ),
        (
            json!({"blueprint": "dev-box", "name": "ok", "type": "m5.large"}),
            "type",
        ),
        (
            json!({"blueprint": "dev-box", "name": "ok", "ttl": "3d"}),
            "ttl",
        ),
        (
            json!({"blueprint": "dev-box", "name": "ok", "ttl": "never"}),
            "ttl",
        ),
        (
            json!({"blueprint": "dev-box", "name": "ok", "ttl": "soon"}),
            "ttl",
        ),
        (
            json!({"blueprint": "dev-box", "name": "ok", "packages": ["emacs"]}),
            "packages",
        ),
        (
            json!({"blueprint": "dev-box", "name": "ok", "region": "eu-west-1"}),
            "region",
        ),
        (
            json!({"blueprint": "dev-box", "name": "ok", "account": "other"}),
            "account",
        ),
        (
            json!({"blueprint": "dev-box", "name": "ok", "root_volume_gib": 0}),
            "root_volume_gib",
        ),
        (json!({"blueprint": "", "name": "ok"}), "blueprint"),
    ];
    for (body, field) in cases {
        let (s, v) = server
            .send(Method::POST, "/api/v1/launches", &ann, body.clone(), None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["code"], "invalid_parameter", "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    for body in [
        json!({"blueprint": "dev-box", "name": "ok", "colour": "red"}),
        json!({"blueprint": "dev-box", "name": "ok", "count": "two"}),
        json!({"blueprint": "dev-box", "name": "ok", "count": -1}),
        json!("not an object"),
    ] {
        let (s, v) = server
            .send(Method::POST, "/api/v1/launches", &ann, body.clone(), None)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/launches",
            &ann,
            json!({"blueprint": "nope", "name": "ok"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(moto_instances(&spec).await.is_empty(), "nothing launched");
    let (_, mine) = server
        .send(Method::GET, "/api/v1/me/quota", &ann, json!(null), None)
        .await;
    assert_eq!(
        mine["items"][0]["usage"]["instances"], 0,
        "nothing reserved: {mine}"
    );
    let (_, list) = server
        .send(Method::GET, "/api/v1/launches", &ann, json!(null), None)
        .await;
    assert_eq!(list["items"], json!([]), "no launch recorded");
    server.stop().await;
}

/// A blueprint whose image is gone is refused with the field at fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_a_blueprint_field_error() {
    let (server, spec, ann, _cy) = setup(shared_moto()).await;
    let admin = server.token.clone();
    let mut b = blueprint("gone", "lab");
    b["image"] = json!("ami-0000000000000dead");
    let (s, v) = server
        .send(Method::POST, "/api/v1/blueprints", &admin, b, None)
        .await;
    // Refused at creation, when the provider is asked.
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "invalid_blueprint", "{v}");
    assert_eq!(v["error"]["field"], "image", "{v}");
    // newest:PATTERN finds the newest own image by name.
    let ec2 = ec2(shared_moto(), &spec.account_id, REGION).await;
    let ids = ec2.launch(1, 1, "imgsrc", &[]).await.unwrap();
    ec2.create_image(&ids[0], "golden-2026-01").await.unwrap();
    ec2.create_image(&ids[0], "golden-2026-02").await.unwrap();
    ec2.create_image(&ids[0], "silver-2026-03").await.unwrap();
    // The newest by creation date, the larger id among equals (moto dates
    // to the second, so both rules are in play).
    let p = AwsProvider::new(emulator_account(shared_moto(), &spec.account_id));
    let newest = p
        .list(REGION, ResourceKind::Image)
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.name.starts_with("golden-"))
        .max_by(|a, b| (a.created_at, &a.provider_id).cmp(&(b.created_at, &b.provider_id)))
        .unwrap();
    let mut b = blueprint("golden", "lab");
    b["image"] = json!("newest:golden-*");
    let (s, v) = server
        .send(Method::POST, "/api/v1/blueprints", &admin, b, None)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    server
        .send(
            Method::POST,
            "/api/v1/grants",
            &admin,
            json!({"subject": "user:ann", "object": "blueprint:golden", "level": "operate"}),
            None,
        )
        .await;
    let (s, p) = server
        .send(
            Method::POST,
            "/api/v1/launches",
            &ann,
            json!({"blueprint": "golden", "name": "g1", "dry_run": true}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["image"]["id"], newest.provider_id.as_str(), "{p}");
    assert_eq!(p["image"]["name"], newest.name.as_str(), "{p}");
    server.stop().await;
}

/// RunInstances took effect but its answer came after the action timeout:
/// the launch finds the instance by its tag instead of calling again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_run_instances_answer_is_adopted_by_tag_not_repeated() {
    let proxy = FaultProxy::start(shared_moto()).await;
    let (server, spec, ann, _cy) = setup_with(&proxy.endpoint, "action_timeout = \"2s\"\n").await;
    proxy.set(
        "Action=RunInstances",
        Fault::HoldAnswer(Duration::from_secs(5)),
    );
    let (s, l) = server
        .send(
            Method::POST,
            "/api/v1/launches",
            &ann,
            json!({"blueprint": "dev-box", "name": "late"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    assert_eq!(l["state"], "succeeded", "{l}");
    assert_eq!(l["instances"].as_array().map(Vec::len), Some(1), "{l}");
    assert_eq!(
        proxy.count("Action=RunInstances"),
        1,
        "RunInstances was sent again"
    );
    let in_moto = moto_instances(&spec).await;
    assert_eq!(in_moto.len(), 1);
    assert_eq!(
        l["instances"][0]["provider_id"],
        in_moto[0].provider_id.as_str()
    );
    server.stop().await;
}

/// A launch of three whose third RunInstances is refused: the two servers
/// that started are recorded (state `partial`, saying so), the third's
/// quota is given back, and nothing more is launched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_failed_launch_records_what_started_and_gives_back_the_rest() {
    let proxy = FaultProxy::start(shared_moto()).await;
    let (server, spec, ann, _cy) = setup(&proxy.endpoint).await;
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/quotas",
            &server.token,
            json!({"subject": "user:ann", "instances": 5}),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    // The third server's RunInstances carries its Name tag, part-3 (the
    // DNS name checks ask for `name=part-3.…`, not a tag `Value=`).
    proxy.set(
        "Value=part-3",
        Fault::Error {
            status: 400,
            body: crate::proxy::ec2_error(
                "InstanceLimitExceeded",
                "You have requested more instances than your current instance limit allows",
            ),
        },
    );
    let (s, l) = server
        .send(
            Method::POST,
            "/api/v1/launches",
            &ann,
            json!({"blueprint": "dev-box", "name": "part", "count": 3}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    assert_eq!(l["state"], "partial", "{l}");
    let names: Vec<&str> = l["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["part-1", "part-2"], "{l}");
    let error = l["error"]["message"]
        .as_str()
        .or(l["error"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("2 of 3 servers started") && error.contains("InstanceLimitExceeded"),
        "{l}"
    );
    assert_eq!(moto_instances(&spec).await.len(), 2);
    // What started counts; the third's reservation is gone.
    let (_, mine) = server
        .send(Method::GET, "/api/v1/me/quota", &ann, json!(null), None)
        .await;
    assert_eq!(mine["items"][0]["usage"]["instances"], 2, "{mine}");
    // The launch as stored says the same.
    let (_, got) = server
        .send(
            Method::GET,
            &format!("/api/v1/launches/{}", l["id"]),
            &ann,
            json!(null),
            None,
        )
        .await;
    assert_eq!(got["state"], "partial", "{got}");
    assert_eq!(got["instances"], l["instances"], "{got}");
    server.stop().await;
}

/// The server is killed while the proxy holds RunInstances' answer (the
/// instance exists, skyhold never heard): the restarted server settles
/// the launch from the launch tag, and nothing is launched twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_run_instances_settles_by_tag_on_restart() {
    let moto = shared_moto();
    let proxy = FaultProxy::start(moto).await;
    let spec = AccountSpec::new("crash", &proxy.endpoint, &[REGION]).with_kinds(&["instance"]);
    let db = TestDb::new().await;
    let config = replica_config(
        &db,
        "launch-crash.toml",
        "sync_on_start = false\naction_timeout = \"10s\"",
        &spec,
    );
    let http = reqwest::Client::new();
    let mut first = crate::replicas::Replica::start(&config);
    let t1 = admin_token(&http, &first.url).await;
    let mut bp = blueprint("crashy", "crash");
    bp["dns_zone"] = json!("");
    bp["dns_name_pattern"] = json!("");
    let r = http
        .post(format!("{}/api/v1/blueprints", first.url))
        .bearer_auth(&t1)
        .json(&bp)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    // The answer is held, and so is the lookup by tag that would follow
    // the launch's timeout: the process dies not knowing.
    proxy.set(
        "Action=RunInstances",
        Fault::HoldAnswer(Duration::from_secs(60)),
    );
    proxy.set(
        "Action=DescribeInstances",
        Fault::HoldAnswer(Duration::from_secs(60)),
    );
    let launch = http
        .post(format!("{}/api/v1/launches", first.url))
        .bearer_auth(&t1)
        .json(&json!({"blueprint": "crashy", "name": "survivor"}));
    let pending = tokio::spawn(async move { launch.send().await.map(|r| r.status()) });
    // Wait until moto has made the instance while its answer is held.
    let deadline = Instant::now() + Duration::from_secs(20);
    while moto_instances_at(moto, &spec.account_id).await.is_empty() {
        assert!(Instant::now() < deadline, "RunInstances never reached moto");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill();
    assert!(
        pending.await.unwrap().is_err(),
        "the request died with the server"
    );
    assert_eq!(proxy.count("Action=RunInstances"), 1);
    proxy.clear();

    let second = crate::replicas::Replica::start(&config);
    let t2 = admin_token(&http, &second.url).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let settled = loop {
        let v: Value = http
            .get(format!("{}/api/v1/launches", second.url))
            .bearer_auth(&t2)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let l = v["items"][0].clone();
        if l["state"] != "running" {
            break l;
        }
        assert!(Instant::now() < deadline, "never settled: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(settled["state"], "succeeded", "{settled}");
    let in_moto = moto_instances(&spec).await;
    assert_eq!(in_moto.len(), 1, "exactly the one instance asked for");
    assert_eq!(
        settled["instances"][0]["provider_id"],
        in_moto[0].provider_id.as_str()
    );
    assert_eq!(
        proxy.count("Action=RunInstances"),
        1,
        "RunInstances was sent again"
    );
    // The adopted instance is in the inventory, owned as launched.
    let v: Value = http
        .get(format!("{}/api/v1/resources?kind=instance", second.url))
        .bearer_auth(&t2)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["items"][0]["owner"], "admin", "{v}");
}

/// Server processes on a fresh database (two on PostgreSQL, one on
/// SQLite) with blueprint `racer` for moto account `account`, and an admin
/// token.
async fn racers(
    account: &str,
) -> (
    TestDb,
    AccountSpec,
    Vec<crate::replicas::Replica>,
    reqwest::Client,
    String,
) {
    let moto = shared_moto();
    let spec = AccountSpec::new(account, moto, &[REGION]).with_kinds(&["instance"]);
    let db = TestDb::new().await;
    let config = replica_config(&db, "race.toml", "sync_on_start = false", &spec);
    let processes = if backend() == Backend::Postgres { 2 } else { 1 };
    let replicas: Vec<_> = (0..processes)
        .map(|_| crate::replicas::Replica::start(&config))
        .collect();
    let http = reqwest::Client::new();
    let admin = admin_token(&http, &replicas[0].url).await;
    let mut bp = blueprint("racer", account);
    bp["dns_zone"] = json!("");
    bp["dns_name_pattern"] = json!("");
    let r = http
        .post(format!("{}/api/v1/blueprints", replicas[0].url))
        .bearer_auth(&admin)
        .json(&bp)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    (db, spec, replicas, http, admin)
}

/// Launches `bodies` at once, spread over `replicas`: each one's status
/// and answer, in order.
async fn launch_all(
    replicas: &[crate::replicas::Replica],
    http: &reqwest::Client,
    admin: &str,
    bodies: Vec<Value>,
) -> Vec<(StatusCode, Value)> {
    let mut tasks = Vec::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let url = replicas[i % replicas.len()].url.clone();
        let (http, admin) = (http.clone(), admin.to_owned());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(format!("{url}/api/v1/launches"))
                .bearer_auth(&admin)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Ten launches of one name at once (over two processes on PostgreSQL):
/// one server starts, nine are refused with `name_taken`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_launches_of_one_name_start_one_server() {
    let (_db, spec, replicas, http, admin) = racers("samename").await;
    let bodies = (0..10)
        .map(|_| json!({"blueprint": "racer", "name": "twin"}))
        .collect();
    let answers = launch_all(&replicas, &http, &admin, bodies).await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    for (s, v) in &answers {
        assert!(
            *s == StatusCode::CREATED
                || (*s == StatusCode::CONFLICT && v["error"]["code"] == "name_taken"),
            "{s}: {v}"
        );
    }
    assert_eq!(created, 1, "{answers:?}");
    assert_eq!(moto_instances(&spec).await.len(), 1);
}

/// 50 launches at once against a quota of 10 instances (on PostgreSQL
/// spread over two server processes): exactly 10 instances, and 40 clear
/// refusals naming the quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_launches_never_overshoot_a_quota() {
    let (_db, spec, replicas, http, admin) = racers("race").await;
    let r = http
        .post(format!("{}/api/v1/quotas", replicas[0].url))
        .bearer_auth(&admin)
        .json(&json!({"subject": "default:user", "instances": 10}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let bodies = (0..50)
        .map(|i| json!({"blueprint": "racer", "name": format!("r{i}")}))
        .collect();
    let mut created = 0;
    let mut refused = 0;
    for (status, v) in launch_all(&replicas, &http, &admin, bodies).await {
        match status {
            StatusCode::CREATED => {
                assert_eq!(v["state"], "succeeded", "{v}");
                created += 1;
            }
            StatusCode::CONFLICT => {
                assert_eq!(v["error"]["code"], "quota_exceeded", "{v}");
                assert_eq!(v["error"]["quota"]["limit"], 10, "{v}");
                assert_eq!(v["error"]["quota"]["dimension"], "instances", "{v}");
                refused += 1;
            }
            other => panic!("{other}: {v}"),
        }
    }
    assert_eq!((created, refused), (10, 40));
    assert_eq!(moto_instances(&spec).await.len(), 10);
}

fn out(o: &std::process::Output) -> (bool, String, String) {
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `skyhold launch`, `blueprint` and `quota` through the API: a dry run
/// prints the quota effect and the command lines, a launch waits for its
/// servers, bad flags are refused before anything is launched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_launches_previews_and_manages_blueprints_and_quotas() {
    let (server, spec, ann, _cy) = setup(shared_moto()).await;
    let admin = server.token.clone();
    let (ok, o, e) = out(&server.cli_as(
        &admin,
        &["quota", "set", "default:user", "--instances", "3"],
        "",
    ));
    assert!(ok, "{o}{e}");
    let (ok, o, e) = out(&server.cli_as(&ann, &["blueprint", "ls"], ""));
    assert!(ok && o.contains("dev-box"), "{o}{e}");
    let (ok, o, e) = out(&server.cli_as(
        &ann,
        &[
            "launch",
            "dev-box",
            "--name",
            "c1",
            "--package",
            "r-base",
            "--dry-run",
        ],
        "",
    ));
    assert!(ok, "{o}{e}");
    assert!(
        o.contains("Would launch 1 × t3.micro from dev-box@1"),
        "{o}"
    );
    assert!(o.contains("user:ann") && o.contains("default:user"), "{o}");
    assert!(
        o.contains("skyhold launch dev-box --name c1 --type t3.micro --package r-base"),
        "{o}"
    );
    assert!(o.contains("aws ec2 run-instances --profile lab"), "{o}");
    assert!(
        moto_instances(&spec).await.is_empty(),
        "a dry run launches nothing"
    );
    for (args, says) in [
        (vec!["launch", "dev-box", "--name", "bad name"], "name"),
        (
            vec!["launch", "dev-box", "--name", "c1", "--count", "0"],
            "count",
        ),
        (
            vec!["launch", "dev-box", "--name", "c1", "--ttl", "9d"],
            "ttl",
        ),
        (
            vec!["launch", "dev-box", "--name", "c1", "--count", "x"],
            "count",
        ),
        (vec!["launch", "dev-box"], "--name"),
        (vec!["launch", "nope", "--name", "c1"], "not found"),
    ] {
        let (ok, o, e) = out(&server.cli_as(&ann, &args, ""));
        assert!(!ok, "{args:?} succeeded: {o}");
        assert!(e.contains(says), "{args:?}: {e}");
    }
    assert!(moto_instances(&spec).await.is_empty(), "nothing launched");
    let (ok, o, e) = out(&server.cli_as(
        &ann,
        &["launch", "dev-box", "--name", "c1", "--wait", "--json"],
        "",
    ));
    assert!(ok, "{o}{e}");
    let v: Value = serde_json::from_str(&o).unwrap();
    assert_eq!(v["state"], "succeeded", "{v}");
    assert_eq!(v["instances"][0]["state"], "running", "{v}");
    assert!(
        v["instances"][0]["private_ip"]
            .as_str()
            .is_some_and(|ip| !ip.is_empty()),
        "the address it waited for: {v}"
    );
    assert!(e.contains("c1 (i-"), "progress on stderr: {e}");
    let (ok, o, e) = out(&server.cli_as(&ann, &["quota", "me"], ""));
    assert!(ok, "{o}{e}");
    let line = o
        .lines()
        .find(|l| l.contains("instances"))
        .unwrap_or_default();
    assert!(
        line.split_whitespace()
            .collect::<Vec<_>>()
            .ends_with(&["1", "3", "2"]),
        "in use 1, limit 3, left 2: {o}"
    );
    let (ok, o, e) = out(&server.cli_as(
        &admin,
        &[
            "blueprint",
            "edit",
            "dev-box",
            "description=edited",
            "default_type=t3.small",
        ],
        "",
    ));
    assert!(ok && o.contains("version 2"), "{o}{e}");
    // The same edit again changes nothing, so writes no version.
    let (ok, o, e) = out(&server.cli_as(
        &admin,
        &["blueprint", "edit", "dev-box", "description=edited"],
        "",
    ));
    assert!(ok && o.contains("version 2"), "{o}{e}");
    let (ok, o, e) = out(&server.cli_as(
        &admin,
        &["blueprint", "show", "dev-box", "--version", "1"],
        "",
    ));
    assert!(ok && o.contains("t3.micro"), "{o}{e}");
    let (ok, _, e) = out(&server.cli_as(&admin, &["blueprint", "rm", "dev-box"], ""));
    assert!(!ok && e.contains("--yes"), "{e}");
    // Keys from standard input, listed by fingerprint, removed by name.
    let (ok, o, e) = out(&server.cli_as(
        &ann,
        &["key", "add", "-", "--name", "lap"],
        &ssh_key("ann@lap"),
    ));
    assert!(ok && o.contains("added lap (SHA256:"), "{o}{e}");
    let (ok, _, e) = out(&server.cli_as(&ann, &["key", "add", "-"], &rsa_key(1024, "weak")));
    assert!(!ok && e.contains("2048"), "{e}");
    let (ok, o, e) = out(&server.cli_as(&ann, &["key", "ls"], ""));
    assert!(
        ok && o.contains("lap") && o.contains("ssh-ed25519"),
        "{o}{e}"
    );
    let (ok, o, e) = out(&server.cli_as(&ann, &["key", "rm", "lap"], ""));
    assert!(ok && o.contains("removed lap"), "{o}{e}");
    let (ok, _, e) = out(&server.cli_as(&ann, &["key", "rm", "lap"], ""));
    assert!(!ok && e.contains("no key"), "{e}");
    server.stop().await;
}

/// Keys: validated on the profile, imported at launch as
/// `skyhold-USER-FINGERPRINT8` (once), and served to the instance by the
/// key hook to everyone who may operate it, on the instance's own secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_imported_at_launch_and_served_by_the_key_hook() {
    let (server, spec, ann, cy) =
        setup_with(shared_moto(), "public_url = \"http://127.0.0.1:9\"\n").await;
    let admin = server.token.clone();
    let bob = server.user_token("bob", Role::Member).await;
    // Keys are checked: type, size, format; the refusal names the field.
    for (key, says) in [
        (rsa_key(1024, "old"), "1024 bits"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP8= old".to_owned(), "DSA"),
        ("ssh-ed25519 !!! x".to_owned(), "base64"),
        ("not a key".to_owned(), "unknown key type"),
        ("ssh-ed25519".to_owned(), "TYPE BASE64"),
    ] {
        let (s, v) = server
            .send(
                Method::POST,
                "/api/v1/me/keys",
                &ann,
                json!({"public_key": key}),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{key}: {v}");
        assert_eq!(v["error"]["code"], "invalid_key", "{v}");
        assert_eq!(v["error"]["field"], "public_key", "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
    let (s, k) = server
        .send(
            Method::POST,
            "/api/v1/me/keys",
            &ann,
            json!({"public_key": rsa_key(2048, "ann@big")}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let (s, k) = server
        .send(
            Method::POST,
            "/api/v1/me/keys",
            &ann,
            json!({"public_key": ssh_key("ann@laptop"), "name": "laptop"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let fp = k["fingerprint"].as_str().unwrap().to_owned();
    assert!(fp.starts_with("SHA256:"), "{k}");
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/me/keys",
            &bob,
            json!({"public_key": ssh_key("bob@desk")}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/me/keys",
            &cy,
            json!({"public_key": ssh_key("cy@desk")}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Two launches: the newest key is imported once, by its name.
    let mut ids = Vec::new();
    for name in ["k1", "k2"] {
        let (s, l) = server
            .send(
                Method::POST,
                "/api/v1/launches",
                &ann,
                json!({"blueprint": "dev-box", "name": name}),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{l}");
        ids.push(
            l["instances"][0]["provider_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let want = skyhold_core::launch::key_pair_name("ann", &fp);
    let ec2 = ec2(shared_moto(), &spec.account_id, REGION).await;
    assert_eq!(
        ec2.key_pair_names().await.unwrap(),
        std::slice::from_ref(&want)
    );
    assert_eq!(ec2.instance_key_name(&ids[0]).await.unwrap(), want);
    // A named key that does not exist is a field error.
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/launches",
            &ann,
            json!({"blueprint": "dev-box", "name": "k3", "key": "nope", "dry_run": true}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["field"], "key", "{v}");

    // The secret is in the user data (after the blueprint's own part).
    let ud = ec2.user_data(&ids[0]).await.unwrap();
    assert!(ud.contains("hostname: k1"), "{ud}");
    assert!(
        ud.contains("SKYHOLD_URL=") && ud.contains("http://127.0.0.1:9"),
        "{ud}"
    );
    let secret = ud
        .split_whitespace()
        .find(|w| w.starts_with("shi_"))
        .unwrap_or_else(|| panic!("no secret in {ud}"))
        .to_owned();
    let hook = |id: &str, secret: &str| {
        let req = server
            .http
            .get(format!("{}/keys/{id}/authorized_keys", server.url))
            .bearer_auth(secret);
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (s, keys) = hook(&ids[0], &secret).await;
    assert_eq!(s, StatusCode::OK, "{keys}");
    assert_eq!(keys.lines().count(), 2, "ann's two keys: {keys}");
    assert!(keys.contains("skyhold:ann:laptop"), "{keys}");
    assert!(!keys.contains("bob") && !keys.contains("cy"), "{keys}");
    // Access changes show at the next refresh: bob gets operate, cy view.
    let rid = server.all("kind=instance&q=name:k1").await[0]["id"].clone();
    for (who, level) in [("bob", "operate"), ("cy", "view")] {
        let (s, v) = server
            .send(
                Method::POST,
                "/api/v1/grants",
                &admin,
                json!({"subject": format!("user:{who}"), "object": format!("resource:{rid}"), "level": level}),
                None,
            )
            .await;
        assert!(s.is_success(), "{v}");
    }
    let (_, keys) = hook(&ids[0], &secret).await;
    assert!(keys.contains("skyhold:bob:"), "{keys}");
    assert!(!keys.contains("skyhold:cy:"), "view is not enough: {keys}");
    // The secret is the instance's own: wrong, missing or another's fail alike.
    for (id, secret) in [
        (ids[0].as_str(), "shi_wrong"),
        (ids[0].as_str(), ""),
        (ids[1].as_str(), secret.as_str()),
        ("i-nosuchthing", secret.as_str()),
    ] {
        let (s, body) = hook(id, secret).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{id} {secret}: {body}");
    }
    // Neither the secret nor its hash reaches the API or the audit log.
    let (_, l) = server
        .send(Method::GET, "/api/v1/launches", &admin, json!(null), None)
        .await;
    let (_, audit) = server
        .send(
            Method::GET,
            "/api/v1/audit?limit=1000",
            &admin,
            json!(null),
            None,
        )
        .await;
    let hash = sha256(&secret);
    for text in [l.to_string(), audit.to_string()] {
        assert!(!text.contains(&secret) && !text.contains(&hash));
    }
    server.stop().await;
}

fn sha256(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// `skyhold ssh` and `scp` by name, DNS name or id: the command built
/// (through --print, and through a stand-in `ssh` first on PATH that
/// records its arguments: nothing connects to the emulator's addresses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_and_scp_reach_servers_by_name() {
    let (server, spec, ann, cy) = setup(shared_moto()).await;
    for name in ["box", "twin"] {
        let (s, l) = server
            .send(
                Method::POST,
                "/api/v1/launches",
                &ann,
                json!({"blueprint": "dev-box", "name": name}),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{l}");
    }
    let r = server.all("kind=instance&q=name:box").await[0].clone();
    let pid = r["provider_id"].as_str().unwrap().to_owned();
    let (s, t) = server
        .send(
            Method::GET,
            &format!("/api/v1/resources/{}/ssh", r["id"]),
            &ann,
            json!(null),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["login_user"], "ubuntu", "{t}");
    assert_eq!(t["fqdn"], "box.dev.example.com", "{t}");
    let public = t["public_ip"].as_str().unwrap().to_owned();
    let private = t["private_ip"].as_str().unwrap().to_owned();
    let addr = if public.is_empty() {
        private.clone()
    } else {
        public.clone()
    };
    assert!(!addr.is_empty(), "{r}");
    let print = |args: &[&str]| {
        let o = server.cli_as(&ann, args, "");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).trim().to_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // By name, DNS name and id: the blueprint's login user.
    let want = format!("ssh ubuntu@{addr}");
    for target in ["box", "box.dev.example.com", pid.as_str()] {
        let (ok, o, e) = print(&["ssh", "--print", target]);
        assert!(ok, "{target}: {e}");
        assert_eq!(o, want, "{target}");
    }
    let (ok, o, e) = print(&[
        "ssh",
        "--print",
        "-l",
        "root",
        "-o",
        "Port=2222",
        "box",
        "--",
        "uname",
        "-a",
    ]);
    assert!(ok, "{e}");
    assert_eq!(o, format!("ssh -o Port=2222 root@{addr} uname -a"));
    if !public.is_empty() {
        let (_, o, _) = print(&["ssh", "--print", "--private", "box"]);
        assert_eq!(o, format!("ssh ubuntu@{private}"));
    }
    let (ok, o, e) = print(&["scp", "--print", "-r", "./notes", "box:/tmp/x y"]);
    assert!(ok, "{e}");
    assert_eq!(o, format!("scp -r ./notes 'ubuntu@{addr}:/tmp/x y'"));
    let (ok, _, e) = print(&["scp", "--print", "a", "b"]);
    assert!(!ok && e.contains("NAME:path"), "{e}");
    // Unknown, invisible and stopped servers are refused with the reason.
    let (ok, _, e) = print(&["ssh", "--print", "nope"]);
    assert!(!ok && e.contains("no instance named"), "{e}");
    // Seeing a server (view, as every member sees an open account) is
    // enough to be told how to reach it; sshd decides who gets in.
    let o = server.cli_as(&cy, &["ssh", "--print", "box"], "");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), want);
    let ec2 = ec2(shared_moto(), &spec.account_id, REGION).await;
    ec2.stop(std::slice::from_ref(&pid)).await.unwrap();
    let (s, _) = server
        .send(
            Method::POST,
            &format!("/api/v1/resources/{}/refresh", r["id"]),
            &ann,
            json!(null),
            None,
        )
        .await;
    assert!(s.is_success());
    let (ok, _, e) = print(&["ssh", "--print", "box"]);
    assert!(!ok && e.contains("skyhold start box"), "{e}");

    // Without --print the system ssh runs (here a stand-in that records).
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("args");
    let fake = dir.path().join("ssh");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\n", log.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let twin = server.all("kind=instance&q=name:twin").await[0].clone();
    let (_, t) = server
        .send(
            Method::GET,
            &format!("/api/v1/resources/{}/ssh", twin["id"]),
            &ann,
            json!(null),
            None,
        )
        .await;
    let twin_addr = match t["public_ip"].as_str().unwrap() {
        "" => t["private_ip"].as_str().unwrap().to_owned(),
        p => p.to_owned(),
    };
    let o = server.cli_env(
        &ann,
        &["ssh", "twin", "--", "echo", "hi there"],
        &[("PATH", path)],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let args = std::fs::read_to_string(&log).unwrap();
    assert_eq!(args, format!("ubuntu@{twin_addr}\necho\nhi there\n"));
    server.stop().await;
}

/// The pages: the blueprint editor, the launch form whose preview shows the
/// quota it takes and the command lines before anything is launched, the
/// launch page, quotas, and the image form of an instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_edit_blueprints_preview_and_launch() {
    use crate::pages::{browser_login, extract, post_form, text};
    let (server, spec, _ann, _cy) = setup(shared_moto()).await;
    let browser = browser_login(&server).await;
    let new = text(&browser, &server, "/blueprints/new").await;
    let csrf = extract(&new, "name=\"csrf\" value=\"").expect("csrf");
    let form = |extra: &[(&'static str, &'static str)]| {
        let mut f: Vec<(&str, String)> = vec![
            ("csrf", csrf.clone()),
            ("name", "web-box".into()),
            ("account", "lab".into()),
            ("region", REGION.into()),
            ("image", "ami-12c6146b".into()),
            ("instance_types", "t3.micro, t3.small".into()),
            ("default_type", "t3.micro".into()),
            ("login_user", "ubuntu".into()),
            ("key_mode", "owner_key".into()),
            ("packages", "r-base python3".into()),
            ("tags", "team=web\r\n".into()),
            ("default_ttl", "4h".into()),
            ("max_ttl", "1d".into()),
        ];
        for (k, v) in extra {
            f.retain(|(n, _)| n != k);
            f.push((k, v.to_string()));
        }
        f
    };
    // A bad field is refused with its name; nothing is created.
    let res = post_form(
        &browser,
        &server,
        "/blueprints",
        &form(&[("max_ttl", "1h")]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("ttl"));
    let res = post_form(&browser, &server, "/blueprints", &form(&[])).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let list = text(&browser, &server, "/blueprints").await;
    assert!(
        list.contains("web-box") && list.contains("Launch"),
        "{list}"
    );
    let id = server.get("/api/v1/blueprints/web-box").await["id"].clone();
    assert_eq!(
        server.get("/api/v1/blueprints/web-box").await["tags"]["team"],
        "web"
    );

    // A quota set on its page shows on the form's preview.
    let res = post_form(
        &browser,
        &server,
        "/quotas",
        &[
            ("csrf", csrf.as_str()),
            ("subject", "default:user"),
            ("instances", "3"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(text(&browser, &server, "/quotas")
        .await
        .contains("default:user"));
    let path = format!("/blueprints/{id}/launch");
    let page = text(&browser, &server, &path).await;
    assert!(page.contains("Before you launch"), "{page}");
    assert!(
        page.contains("skyhold launch web-box --name admin-1 --type t3.micro"),
        "{page}"
    );
    let preview = [
        ("csrf", csrf.as_str()),
        ("name", "w1"),
        ("type", "t3.small"),
        ("count", "2"),
        ("package", "r-base"),
        ("ttl", "2h"),
        ("do", "preview"),
    ];
    let res = post_form(&browser, &server, &path, &preview).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(
        page.contains(
            "skyhold launch web-box --name w1 --type t3.small --count 2 --package r-base --ttl 2h"
        ),
        "{page}"
    );
    assert!(
        page.contains("aws ec2 run-instances --profile lab"),
        "{page}"
    );
    assert!(
        page.contains("+2"),
        "the launch's share of the quota: {page}"
    );
    assert!(
        moto_instances(&spec).await.is_empty(),
        "a preview launches nothing"
    );
    // Too many for the quota: the preview says so, the launch is refused.
    let mut big = preview;
    big[3] = ("count", "4");
    let page = post_form(&browser, &server, &path, &big)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("would be refused"), "{page}");
    big[6] = ("do", "launch");
    let res = post_form(&browser, &server, &path, &big).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(moto_instances(&spec).await.is_empty());
    // Launch: to the launch's page, its servers listed.
    let mut go = preview;
    go[6] = ("do", "launch");
    let res = post_form(&browser, &server, &path, &go).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let at = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(at.starts_with("/launches/"), "{at}");
    let page = text(&browser, &server, &at).await;
    assert!(
        page.contains("w1-1") && page.contains("w1-2") && page.contains("succeeded"),
        "{page}"
    );
    assert_eq!(moto_instances(&spec).await.len(), 2);
    assert!(text(&browser, &server, "/launches").await.contains("w1"));
    let profile = text(&browser, &server, "/profile").await;
    assert!(profile.contains("Your quota"), "{profile}");

    // The instance page offers an image, with the reboot trade-off.
    let rid = server.all("kind=instance&q=name:w1-1").await[0]["id"].clone();
    let page = text(&browser, &server, &format!("/resources/{rid}")).await;
    assert!(
        page.contains("Create an image of it") && page.contains("without rebooting"),
        "{page}"
    );
    let res = post_form(
        &browser,
        &server,
        &format!("/resources/{rid}/image"),
        &[
            ("csrf", csrf.as_str()),
            ("name", "w1-image"),
            ("no_reboot", "1"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(server.all("kind=image&q=name:w1-image").await.len(), 1);
    server.stop().await;
}

/// The A records of (address, name) in a zone, read through the SDK.
async fn zone_records(aws: &Aws, zone: &str) -> Vec<(String, String)> {
    zone_records_of(aws, zone, "A").await
}

async fn zone_records_of(aws: &Aws, zone: &str, rtype: &str) -> Vec<(String, String)> {
    let r = aws
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    let mut out: Vec<(String, String)> = r
        .resource_record_sets()
        .iter()
        .filter(|s| s.r#type().as_str() == rtype)
        .flat_map(|s| {
            s.resource_records().iter().map(|v| {
                (
                    s.name().trim_end_matches('.').to_owned(),
                    v.value().to_owned(),
                )
            })
        })
        .collect();
    out.sort();
    out
}

/// DNS names: written once servers have addresses, refused when taken
/// (by another server or by a record skyhold did not make), removed when
/// the server is terminated, and records skyhold did not make untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_records_follow_the_servers_skyhold_launched() {
    let (server, spec, ann, _cy) = setup(shared_moto()).await;
    let admin = server.token.clone();
    let aws = Aws::connect(shared_moto(), &spec.account_id, REGION)
        .await
        .unwrap();
    let zones = aws.route53.list_hosted_zones().send().await.unwrap();
    let zone = zones.hosted_zones()[0]
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned();
    aws.upsert_record(&zone, "taken.dev.example.com", "A", 300, &["192.0.2.7"])
        .await
        .unwrap();
    // A zone that does not exist is a blueprint field error.
    let mut b = blueprint("nozone", "lab");
    b["dns_zone"] = json!("nowhere.example.org");
    b["dns_name_pattern"] = json!("{{name}}.nowhere.example.org");
    let (s, v) = server
        .send(Method::POST, "/api/v1/blueprints", &admin, b, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["field"], "dns_zone", "{v}");

    let (s, l) = server
        .send(
            Method::POST,
            "/api/v1/launches",
            &ann,
            json!({"blueprint": "dev-box", "name": "web", "count": 2}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let addr = |i: usize| {
        let s = &l["instances"][i];
        match s["public_ip"].as_str().unwrap() {
            "" => s["private_ip"].as_str().unwrap().to_owned(),
            p => p.to_owned(),
        }
    };
    let want = vec![
        ("taken.dev.example.com".to_owned(), "192.0.2.7".to_owned()),
        ("web-1.dev.example.com".to_owned(), addr(0)),
        ("web-2.dev.example.com".to_owned(), addr(1)),
    ];
    assert_eq!(zone_records(&aws, &zone).await, want);
    // A name the zone has already is refused before anything is launched.
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/launches",
            &ann,
            json!({"blueprint": "dev-box", "name": "taken"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "name_taken", "{v}");
    assert_eq!(moto_instances(&spec).await.len(), 2);
    // Terminated through skyhold: its record goes, the others stay.
    let rid = server.all("kind=instance&q=name:web-1").await[0]["id"].clone();
    let (s, v) = server
        .send(
            Method::POST,
            &format!("/api/v1/resources/{rid}/actions"),
            &ann,
            json!({"action": "terminate", "confirm": "web-1"}),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    assert_eq!(
        zone_records(&aws, &zone).await,
        vec![want[0].clone(), want[2].clone()]
    );
    // The reconciler is idempotent: another pass changes nothing.
    let pass = server.app().reconcile_dns(None).await.unwrap();
    assert_eq!(pass, skyhold::app::DnsPass::default());
    assert_eq!(
        zone_records(&aws, &zone).await,
        vec![want[0].clone(), want[2].clone()]
    );
    let (_, page) = server.page("/sync").await;
    assert!(
        page.contains("web-2.dev.example.com") && page.contains("removed"),
        "{page}"
    );
    // A server that gets an IPv6 address gets an AAAA record beside its A
    // record (seen by the next sync), and loses it with the address.
    let web2 = l["instances"][1]["provider_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(zone_records_of(&aws, &zone, "AAAA").await, vec![]);
    aws.ec2
        .set_instance_ipv6(&web2, "2001:db8::2", true)
        .await
        .unwrap();
    server.sync().await;
    let pass = server.app().reconcile_dns(None).await.unwrap();
    assert_eq!(pass.written, 1, "{pass:?}");
    let aaaa = vec![("web-2.dev.example.com".to_owned(), "2001:db8::2".to_owned())];
    assert_eq!(zone_records_of(&aws, &zone, "AAAA").await, aaaa);
    let pass = server.app().reconcile_dns(None).await.unwrap();
    assert_eq!(pass, skyhold::app::DnsPass::default());
    aws.ec2
        .set_instance_ipv6(&web2, "2001:db8::2", false)
        .await
        .unwrap();
    server.sync().await;
    let pass = server.app().reconcile_dns(None).await.unwrap();
    assert_eq!(pass.removed, 1, "{pass:?}");
    assert_eq!(zone_records_of(&aws, &zone, "AAAA").await, vec![]);
    assert_eq!(
        zone_records(&aws, &zone).await,
        vec![want[0].clone(), want[2].clone()],
        "the A records stay"
    );
    server.stop().await;
}
