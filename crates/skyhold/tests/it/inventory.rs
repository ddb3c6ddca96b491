//! Inventory views over seeded data (no emulator needed): the dashboard's
//! figures from the trigger-kept summary, `stopped>Nd` searches, and the
//! relation table across the new kinds, including DNS records (global)
//! pointing into a region.

use crate::harness::*;
use serde_json::{json, Value};
use skyhold_core::{rfc3339, AccountName, ObservedResource, ResourceKind, GLOBAL_REGION};
use skyhold_store::Store;

const DAY: i64 = 86_400_000;

fn res(kind: ResourceKind, id: &str, state: &str) -> ObservedResource {
    let mut o = ObservedResource::new(kind, id);
    o.name = id.to_owned();
    o.state = state.to_owned();
    o
}

fn stopped(id: &str, days_ago: i64) -> ObservedResource {
    let mut o = res(ResourceKind::Instance, id, "stopped");
    o.rtype = "t3.micro".into();
    o.attributes.insert(
        "stopped_at".into(),
        json!(rfc3339(skyhold_core::now_millis() - days_ago * DAY)),
    );
    o
}

async fn apply(store: &Store, region: &str, kind: ResourceKind, items: Vec<ObservedResource>) {
    store
        .apply_listing(
            &AccountName::parse("acme").unwrap(),
            region,
            kind,
            &items,
            1_000,
        )
        .await
        .unwrap();
}

/// The summary must equal a fresh count of live rows, whatever happened.
async fn assert_summary_matches(server: &TestServer) {
    let d = server.get("/api/v1/dashboard").await;
    let mut expected = serde_json::Map::new();
    for k in ResourceKind::ALL {
        let n = server.all(&format!("kind={k}&limit=1000")).await.len();
        if n > 0 {
            expected.insert(k.as_str().to_owned(), json!(n));
        }
    }
    assert_eq!(d["resources_per_kind"], Value::Object(expected), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_figures_follow_every_change() {
    let server = TestServer::start(&[]).await;
    let store = &server.app().store;
    let mut running = res(ResourceKind::Instance, "i-run", "running");
    running.rtype = "t3.large".into(); // 2 vCPUs, 8 GiB
    apply(
        store,
        "eu-west-1",
        ResourceKind::Instance,
        vec![running.clone(), stopped("i-old", 45), stopped("i-new", 3)],
    )
    .await;
    let mut vol = res(ResourceKind::Volume, "vol-1", "available");
    vol.size_gib = 40;
    apply(store, "eu-west-1", ResourceKind::Volume, vec![vol.clone()]).await;
    apply(
        store,
        "eu-west-1",
        ResourceKind::Alarm,
        vec![
            res(ResourceKind::Alarm, "cpu-high", "alarm"),
            res(ResourceKind::Alarm, "disk", "ok"),
        ],
    )
    .await;
    let d = server.get("/api/v1/dashboard").await;
    assert_eq!(d["running_vcpus"], 2, "{d}");
    assert_eq!(d["volume_gib"], 40);
    assert_eq!(d["unattached_volumes"], 1);
    assert_eq!(d["alarms_in_alarm"], 1);
    assert_eq!(
        (d["stopped_days"].clone(), d["stopped_longer"].clone()),
        (json!(30), json!(1))
    );
    assert_summary_matches(&server).await;

    // The figure's link is a search that lists the same instances.
    let found = server.all("q=stopped%3E30d").await;
    let ids: Vec<&str> = found
        .iter()
        .map(|r| r["provider_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["i-old"]);
    let found = server.all("q=-stopped%3E30d&kind=instance").await;
    assert_eq!(found.len(), 2);

    // Changes, tombstones and returns keep the summary exact.
    let mut bigger = vol.clone();
    bigger.size_gib = 100;
    bigger.state = "in-use".into();
    apply(store, "eu-west-1", ResourceKind::Volume, vec![bigger]).await;
    apply(
        store,
        "eu-west-1",
        ResourceKind::Instance,
        vec![running.clone()],
    )
    .await;
    apply(store, "eu-west-1", ResourceKind::Alarm, vec![]).await;
    let d = server.get("/api/v1/dashboard").await;
    assert_eq!(
        (d["volume_gib"].clone(), d["unattached_volumes"].clone()),
        (json!(100), json!(0))
    );
    assert_eq!(
        (d["alarms_in_alarm"].clone(), d["stopped_longer"].clone()),
        (json!(0), json!(0))
    );
    assert_summary_matches(&server).await;
    apply(
        store,
        "eu-west-1",
        ResourceKind::Instance,
        vec![running, stopped("i-old", 45)],
    )
    .await;
    assert_eq!(server.get("/api/v1/dashboard").await["stopped_longer"], 1);
    assert_summary_matches(&server).await;

    // The dashboard page shows the figures with their links.
    let (_, html) = server.page("/").await;
    assert!(html.contains("Stopped for more than 30 days"), "{html}");
    assert!(html.contains("q=stopped%3E30d") && html.contains("/alarms?state=alarm"));
    server.stop().await;
}

fn related(detail: &Value, kind: &str) -> Vec<String> {
    let mut v: Vec<String> = detail["related"][kind]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["provider_id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

async fn detail_of(server: &TestServer, kind: &str, id: &str) -> Value {
    let found = server
        .all(&format!("kind={kind}&include_deleted=true"))
        .await;
    let r = found
        .iter()
        .find(|r| r["provider_id"] == id)
        .unwrap_or_else(|| panic!("no {kind} {id}"));
    server.get(&format!("/api/v1/resources/{}", r["id"])).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relations_link_the_new_kinds_both_ways() {
    let server = TestServer::start(&[]).await;
    let store = &server.app().store;
    let r = "us-east-1";
    let mut i1 = res(ResourceKind::Instance, "i-1", "running");
    i1.public_ip = "203.0.113.7".into();
    // The adapter mirrors addresses into the attributes, as here.
    i1.attributes
        .insert("public_ip".into(), json!("203.0.113.7"));
    i1.attributes
        .insert("public_dns_name".into(), json!("ec2-1.example.com"));
    let i2 = res(ResourceKind::Instance, "i-2", "running");
    apply(store, r, ResourceKind::Instance, vec![i1, i2]).await;
    let tg_arn = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/1";
    let lb_arn = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/web/1";
    let mut lb = res(ResourceKind::LoadBalancer, lb_arn, "active");
    lb.attributes
        .insert("dns_name".into(), json!("web-1.elb.example.com"));
    lb.attributes
        .insert("target_group_arns".into(), json!([tg_arn]));
    apply(store, r, ResourceKind::LoadBalancer, vec![lb]).await;
    let mut tg = res(ResourceKind::TargetGroup, tg_arn, "healthy");
    tg.attributes
        .insert("load_balancer_arns".into(), json!([lb_arn]));
    tg.attributes
        .insert("instance_ids".into(), json!(["i-1", "i-2"]));
    apply(store, r, ResourceKind::TargetGroup, vec![tg]).await;
    let mut lt = res(ResourceKind::LaunchTemplate, "lt-1", "");
    lt.name = "web".into();
    apply(store, r, ResourceKind::LaunchTemplate, vec![lt]).await;
    let mut asg = res(ResourceKind::AutoScalingGroup, "web-asg", "active");
    asg.attributes.insert("instance_ids".into(), json!(["i-2"]));
    asg.attributes
        .insert("launch_template_id".into(), json!("lt-1"));
    asg.attributes
        .insert("target_group_arns".into(), json!([tg_arn]));
    apply(store, r, ResourceKind::AutoScalingGroup, vec![asg]).await;
    let q_url = "https://sqs.us-east-1.example.com/1/jobs";
    let mut queue = res(ResourceKind::Queue, q_url, "active");
    queue
        .attributes
        .insert("arn".into(), json!("arn:aws:sqs:us-east-1:1:jobs"));
    queue.attributes.insert(
        "dead_letter_target_arn".into(),
        json!("arn:aws:sqs:us-east-1:1:dlq"),
    );
    let mut dlq = res(
        ResourceKind::Queue,
        "https://sqs.us-east-1.example.com/1/dlq",
        "active",
    );
    dlq.attributes
        .insert("arn".into(), json!("arn:aws:sqs:us-east-1:1:dlq"));
    apply(store, r, ResourceKind::Queue, vec![queue, dlq]).await;
    let mut stack = res(
        ResourceKind::Stack,
        "arn:aws:cloudformation:us-east-1:1:stack/app/1",
        "CREATE_COMPLETE",
    );
    stack.attributes.insert(
        "resources".into(),
        json!([
            {"logical_id": "Jobs", "physical_id": q_url, "type": "AWS::SQS::Queue", "status": "CREATE_COMPLETE"},
            {"logical_id": "Web", "physical_id": "i-1", "type": "AWS::EC2::Instance", "status": "CREATE_COMPLETE"}
        ]),
    );
    apply(store, r, ResourceKind::Stack, vec![stack]).await;
    // DNS lives under the global region and points into us-east-1.
    let mut zone = res(ResourceKind::HostedZone, "Z1", "public");
    zone.name = "example.com.".into();
    apply(store, GLOBAL_REGION, ResourceKind::HostedZone, vec![zone]).await;
    let mut a = res(ResourceKind::DnsRecord, "Z1/www.example.com./A", "");
    a.attributes.insert("zone_id".into(), json!("Z1"));
    a.attributes.insert("values".into(), json!(["203.0.113.7"]));
    let mut alias = res(ResourceKind::DnsRecord, "Z1/app.example.com./A", "");
    alias.attributes.insert("zone_id".into(), json!("Z1"));
    alias
        .attributes
        .insert("alias_target".into(), json!("web-1.elb.example.com."));
    apply(
        store,
        GLOBAL_REGION,
        ResourceKind::DnsRecord,
        vec![a, alias],
    )
    .await;

    let d = detail_of(&server, "instance", "i-1").await;
    assert_eq!(related(&d, "target_group"), [tg_arn]);
    assert_eq!(related(&d, "dns_record"), ["Z1/www.example.com./A"]);
    assert_eq!(related(&d, "stack").len(), 1);
    let d = detail_of(&server, "instance", "i-2").await;
    assert_eq!(related(&d, "auto_scaling_group"), ["web-asg"]);
    let d = detail_of(&server, "load_balancer", lb_arn).await;
    assert_eq!(related(&d, "target_group"), [tg_arn]);
    assert_eq!(related(&d, "dns_record"), ["Z1/app.example.com./A"]);
    let d = detail_of(&server, "target_group", tg_arn).await;
    assert_eq!(related(&d, "load_balancer"), [lb_arn]);
    assert_eq!(related(&d, "instance"), ["i-1", "i-2"]);
    assert_eq!(related(&d, "auto_scaling_group"), ["web-asg"]);
    let d = detail_of(&server, "auto_scaling_group", "web-asg").await;
    assert_eq!(related(&d, "instance"), ["i-2"]);
    assert_eq!(related(&d, "launch_template"), ["lt-1"]);
    let d = detail_of(&server, "launch_template", "lt-1").await;
    assert_eq!(related(&d, "auto_scaling_group"), ["web-asg"]);
    let d = detail_of(
        &server,
        "stack",
        "arn:aws:cloudformation:us-east-1:1:stack/app/1",
    )
    .await;
    assert_eq!(related(&d, "queue"), [q_url]);
    assert_eq!(related(&d, "instance"), ["i-1"]);
    let d = detail_of(&server, "queue", q_url).await;
    assert_eq!(
        related(&d, "queue"),
        ["https://sqs.us-east-1.example.com/1/dlq"]
    );
    assert_eq!(related(&d, "stack").len(), 1);
    let d = detail_of(&server, "queue", "https://sqs.us-east-1.example.com/1/dlq").await;
    assert_eq!(related(&d, "queue"), [q_url]);
    let d = detail_of(&server, "dns_record", "Z1/www.example.com./A").await;
    assert_eq!(related(&d, "instance"), ["i-1"]);
    assert_eq!(related(&d, "hosted_zone"), ["Z1"]);
    let d = detail_of(&server, "dns_record", "Z1/app.example.com./A").await;
    assert_eq!(related(&d, "load_balancer"), [lb_arn]);
    let d = detail_of(&server, "hosted_zone", "Z1").await;
    assert_eq!(related(&d, "dns_record").len(), 2);

    // Detail pages of the new kinds render their sections.
    let id = d["id"].as_i64().unwrap();
    let (status, html) = server.page(&format!("/resources/{id}")).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(html.contains("DNS records (2)"), "{html}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_send_rows_first_and_count_on_request() {
    let server = TestServer::start(&[]).await;
    let items: Vec<ObservedResource> = (0..200)
        .map(|i| {
            res(
                ResourceKind::Instance,
                &format!("i-{i:03}"),
                if i % 4 == 0 { "stopped" } else { "running" },
            )
        })
        .collect();
    apply(
        &server.app().store,
        "eu-west-1",
        ResourceKind::Instance,
        items,
    )
    .await;
    let (_, html) = server.page("/instances?state=running").await;
    // 100 running instances on this page, 50 more on the next: the page
    // names the count request instead of counting.
    let href = crate::pages::extract(&html, "data-count=\"").expect("count link");
    let href = href.replace("&amp;", "&");
    assert!(href.starts_with("/api/v1/resources/count?"), "{href}");
    let c = server.get(&href).await;
    assert_eq!(c, json!({"count": 150, "more": false, "cap": 1000}));
    let c = server
        .get("/api/v1/resources/count?kind=instance&q=-state%3Arunning")
        .await;
    assert_eq!(c["count"], 50);
    let (status, v) = server
        .request(
            reqwest::Method::GET,
            "/api/v1/resources/count?q=age%3E7x",
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "invalid_parameter");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_has_a_list_page_and_a_detail_page() {
    let server = TestServer::start(&[]).await;
    for kind in ResourceKind::ALL {
        let region = if kind.is_global() {
            GLOBAL_REGION
        } else {
            "eu-west-1"
        };
        let mut o = res(kind, &format!("{kind}-1"), "active");
        o.name = format!("the-{kind}");
        apply(&server.app().store, region, kind, vec![o]).await;
    }
    for kind in ResourceKind::ALL {
        let path = format!("/{}s", kind.as_str().replace('_', "-"));
        let (status, html) = server.page(&path).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{path}");
        assert!(html.contains(&format!("the-{kind}")), "{path}: {html}");
        // The navigation offers every kind (grouped by service).
        assert!(html.contains(&format!("href=\"{path}\"")), "{path}");
        let id = server.all(&format!("kind={kind}")).await[0]["id"]
            .as_i64()
            .unwrap();
        let (status, html) = server.page(&format!("/resources/{id}")).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{kind} detail");
        assert!(html.contains(kind.label()), "{kind} detail");
    }
    server.stop().await;
}
