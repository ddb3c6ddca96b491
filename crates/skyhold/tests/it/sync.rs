//! Sync against moto through the real SDK: paging, isolation, tombstones,
//! failures that change nothing.

use crate::harness::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_a_thousand_instances_across_pages() {
    let moto = shared_moto();
    let mut spec = AccountSpec::new("big", moto, &["us-east-1"]);
    // 105 reservations of 10; moto pages DescribeInstances by reservation, so
    // a page size of 20 reservations means six pages of up to 200 instances.
    spec.page_size = Some(20);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let ids = ec2
        .launch(1050, 10, "bulk", &[("owner", "loadtest")])
        .await
        .unwrap();
    assert_eq!(ids.len(), 1050);
    let server = TestServer::start(&[spec]).await;

    let report = server.sync().await;
    assert_eq!(report["failed"], 0, "{report}");
    let instance_report = report["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "instance")
        .unwrap()
        .clone();
    assert_eq!(instance_report["count"], 1050);
    assert_eq!(instance_report["inserted"], 1050);

    let items = server.all("kind=instance&limit=400").await;
    assert_eq!(
        items.len(),
        1050,
        "three API pages must hold every instance once"
    );
    let mut seen: Vec<&str> = items
        .iter()
        .map(|i| i["provider_id"].as_str().unwrap())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 1050);
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(seen, expected);

    // A second sync with nothing changed writes no resource rows.
    let again = server.sync().await;
    for r in again["reports"].as_array().unwrap() {
        assert_eq!(
            (
                r["inserted"].as_u64(),
                r["updated"].as_u64(),
                r["tombstoned"].as_u64()
            ),
            (Some(0), Some(0), Some(0)),
            "{r}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_are_kept_apart() {
    let moto = shared_moto();
    let a = AccountSpec::new("alpha", moto, &["us-east-1"]);
    let b = AccountSpec::new("beta", moto, &["us-east-1"]);
    ec2(moto, &a.account_id, "us-east-1")
        .await
        .launch(3, 3, "alpha-web", &[])
        .await
        .unwrap();
    ec2(moto, &b.account_id, "us-east-1")
        .await
        .launch(2, 1, "beta-db", &[])
        .await
        .unwrap();
    let server = TestServer::start(&[a, b]).await;
    server.sync().await;

    let alpha = server.all("kind=instance&account=alpha").await;
    let beta = server.all("kind=instance&account=beta").await;
    assert_eq!(alpha.len(), 3);
    assert_eq!(beta.len(), 2);
    assert!(alpha
        .iter()
        .all(|i| i["account"] == "alpha" && i["name"].as_str().unwrap().starts_with("alpha-web")));
    assert!(beta
        .iter()
        .all(|i| i["account"] == "beta" && i["name"].as_str().unwrap().starts_with("beta-db")));
    let both = server.all("kind=instance").await;
    assert_eq!(both.len(), 5);

    // Each account's own security groups and key pairs too.
    let sg_accounts: Vec<String> = server
        .all("kind=security_group")
        .await
        .iter()
        .map(|s| s["account"].as_str().unwrap().to_owned())
        .collect();
    assert!(sg_accounts.contains(&"alpha".to_owned()) && sg_accounts.contains(&"beta".to_owned()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_instances_get_a_tombstone() {
    let moto = shared_moto();
    let spec = AccountSpec::new("tomb", moto, &["us-east-1"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let ids = ec2.launch(3, 1, "victim", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    assert_eq!(server.all("kind=instance").await.len(), 3);

    ec2.terminate(&ids[..1]).await.unwrap();
    server.sync().await;
    let live = server.all("kind=instance").await;
    assert_eq!(live.len(), 2, "a terminated instance is hidden by default");
    assert!(live.iter().all(|i| i["provider_id"] != ids[0].as_str()));
    let all = server.all("kind=instance&include_deleted=true").await;
    let gone = all
        .iter()
        .find(|i| i["provider_id"] == ids[0].as_str())
        .expect("still listed with include_deleted");
    assert_eq!(gone["state"], "terminated");
    assert!(gone["deleted_at"].is_string(), "{gone}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_that_vanish_between_syncs_get_a_tombstone() {
    let moto = Moto::start(); // dedicated: this test resets it
    let spec = AccountSpec::new("vanish", &moto.endpoint, &["us-east-1"]);
    let ec2 = ec2(&moto.endpoint, &spec.account_id, "us-east-1").await;
    ec2.launch(4, 2, "ephemeral", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    assert_eq!(server.all("kind=instance").await.len(), 4);
    let id = server.all("kind=instance").await[0]["id"].as_i64().unwrap();

    moto.reset().await; // every instance is gone from the listing
    let report = server.sync().await;
    let inst = report["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "instance")
        .unwrap()
        .clone();
    assert_eq!(inst["tombstoned"], 4, "{inst}");
    assert!(server.all("kind=instance").await.is_empty());
    let one = server.get(&format!("/api/v1/resources/{id}")).await;
    assert!(one["deleted_at"].is_string(), "{one}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_account_keeps_its_data_and_shows_its_error() {
    let shared = shared_moto();
    let mut doomed = Moto::start();
    let ok = AccountSpec::new("healthy", shared, &["us-east-1"]);
    let bad = AccountSpec::new("flaky", &doomed.endpoint, &["us-east-1"]);
    let ok_ec2 = ec2(shared, &ok.account_id, "us-east-1").await;
    ok_ec2.launch(2, 1, "steady", &[]).await.unwrap();
    ec2(&doomed.endpoint, &bad.account_id, "us-east-1")
        .await
        .launch(3, 1, "flaky-app", &[])
        .await
        .unwrap();
    let server = TestServer::start(&[ok, bad]).await;
    server.sync().await;
    assert_eq!(server.all("kind=instance&account=flaky").await.len(), 3);

    doomed.kill();
    ok_ec2.launch(1, 1, "steady-new", &[]).await.unwrap();
    let report = server.sync().await;
    assert!(report["failed"].as_u64().unwrap() >= 1, "{report}");

    // The failing account's data is untouched, the healthy one moved on.
    let flaky = server.all("kind=instance&account=flaky").await;
    assert_eq!(flaky.len(), 3);
    assert!(flaky.iter().all(|i| i["deleted_at"].is_null()));
    assert_eq!(server.all("kind=instance&account=healthy").await.len(), 3);

    let status = server.get("/api/v1/sync/status").await;
    let rows = status["items"].as_array().unwrap();
    let flaky_inst = rows
        .iter()
        .find(|r| r["account"] == "flaky" && r["kind"] == "instance")
        .unwrap();
    let err = flaky_inst["last_error"].as_str().expect("error recorded");
    assert!(err.contains("unreachable"), "{err}");
    assert!(
        flaky_inst["last_success"].is_string(),
        "the earlier success is kept"
    );
    assert_eq!(flaky_inst["count"], 3);
    let healthy = rows
        .iter()
        .find(|r| r["account"] == "healthy" && r["kind"] == "instance")
        .unwrap();
    assert!(healthy["last_error"].is_null());
    assert_eq!(healthy["count"], 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_is_synced_with_its_key_fields() {
    let moto = shared_moto();
    let spec = AccountSpec::new("kinds", moto, &["eu-west-1"]);
    let ec2 = ec2(moto, &spec.account_id, "eu-west-1").await;
    let ids = ec2
        .launch(1, 1, "app", &[("owner", "carol"), ("env", "prod")])
        .await
        .unwrap();
    let vol = ec2.create_volume(42, "scratch").await.unwrap();
    ec2.create_key_pair("carol-laptop").await.unwrap();
    let sg = ec2
        .create_security_group("ssh-only", "10.1.2.0/24")
        .await
        .unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;

    let inst = &server.all("kind=instance").await[0];
    assert_eq!(inst["provider_id"], ids[0].as_str());
    assert_eq!(inst["owner"], "carol");
    assert_eq!(inst["tags"]["env"], "prod");
    assert_eq!(inst["attributes"]["instance_type"], "t3.micro");
    assert!(
        inst["attributes"]["private_ip"].is_string()
            && inst["attributes"]["launch_time"].is_string(),
        "{inst}"
    );

    let vols = server.all("kind=volume").await;
    let v = vols
        .iter()
        .find(|v| v["provider_id"] == vol.as_str())
        .expect("volume");
    assert_eq!(v["attributes"]["size_gib"], 42);
    assert_eq!(v["name"], "scratch");

    let keys = server.all("kind=key_pair").await;
    assert!(keys.iter().any(|k| k["name"] == "carol-laptop"));
    let sgs = server.all("kind=security_group").await;
    let g = sgs
        .iter()
        .find(|g| g["provider_id"] == sg.as_str())
        .expect("security group");
    let rules: &Vec<Value> = g["attributes"]["ingress"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r["from_port"] == 22 && r["sources"][0] == "10.1.2.0/24"),
        "{g}"
    );

    // The detail view relates the instance to its volumes and groups.
    let id = inst["id"].as_i64().unwrap();
    let detail = server.get(&format!("/api/v1/resources/{id}")).await;
    assert!(
        detail["related"]["volume"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{detail}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_storage_and_template_kinds_with_their_relations() {
    let moto = shared_moto();
    let spec = AccountSpec::new("net", moto, &["us-west-2"]);
    let ec2 = ec2(moto, &spec.account_id, "us-west-2").await;
    let (vpc, subnet) = ec2.create_vpc_with_subnet("lab-net").await.unwrap();
    ec2.create_key_pair("lab-key").await.unwrap();
    let inst = ec2
        .launch_into(&subnet, "lab-key", "lab-box")
        .await
        .unwrap();
    let eip = ec2.attach_elastic_ip(&inst).await.unwrap();
    let vol = ec2.create_volume(10, "lab-data").await.unwrap();
    let snap = ec2.create_snapshot(&vol, "nightly").await.unwrap();
    let lt = ec2.create_launch_template("lab-template").await.unwrap();
    let server = TestServer::start(&[spec]).await;
    let report = server.sync().await;
    assert_eq!(report["failed"], 0, "{report}");

    let find = |items: &[Value], pid: &str| items.iter().find(|i| i["provider_id"] == pid).cloned();
    let vpcs = server.all("kind=vpc").await;
    let v = find(&vpcs, &vpc).expect("vpc synced");
    assert_eq!(v["name"], "lab-net");
    assert_eq!(v["attributes"]["cidr_block"], "10.42.0.0/16");
    let s = find(&server.all("kind=subnet").await, &subnet).expect("subnet synced");
    assert_eq!(s["attributes"]["vpc_id"], vpc.as_str());
    let e = find(&server.all("kind=elastic_ip").await, &eip).expect("elastic ip synced");
    assert_eq!(
        (e["state"].as_str(), e["attributes"]["instance_id"].as_str()),
        (Some("associated"), Some(inst.as_str()))
    );
    let sn = find(&server.all("kind=snapshot").await, &snap).expect("snapshot synced");
    assert_eq!(sn["attributes"]["volume_id"], vol.as_str());
    let t = find(&server.all("kind=launch_template").await, &lt).expect("launch template synced");
    assert_eq!(t["name"], "lab-template");

    // Relations, both ways.
    let related = |v: &Value, kind: &str| -> Vec<String> {
        v["related"][kind]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x["provider_id"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let inst_id = find(&server.all("kind=instance").await, &inst).unwrap()["id"]
        .as_i64()
        .unwrap();
    let detail = server.get(&format!("/api/v1/resources/{inst_id}")).await;
    assert_eq!(related(&detail, "subnet"), vec![subnet.clone()]);
    assert_eq!(related(&detail, "vpc"), vec![vpc.clone()]);
    assert_eq!(related(&detail, "elastic_ip"), vec![eip.clone()]);
    assert_eq!(related(&detail, "key_pair").len(), 1);
    let vpc_detail = server.get(&format!("/api/v1/resources/{}", v["id"])).await;
    assert!(related(&vpc_detail, "subnet").contains(&subnet));
    assert!(related(&vpc_detail, "instance").contains(&inst));
    let vol_id = find(&server.all("kind=volume").await, &vol).unwrap()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        related(
            &server.get(&format!("/api/v1/resources/{vol_id}")).await,
            "snapshot"
        ),
        vec![snap.clone()]
    );
    let snap_detail = server.get(&format!("/api/v1/resources/{}", sn["id"])).await;
    assert_eq!(related(&snap_detail, "volume"), vec![vol.clone()]);
    let key = &server.all("kind=key_pair&q=lab-key").await[0];
    assert_eq!(
        related(
            &server
                .get(&format!("/api/v1/resources/{}", key["id"]))
                .await,
            "instance"
        ),
        vec![inst.clone()]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_kinds_are_synced() {
    let moto = shared_moto();
    let spec =
        AccountSpec::new("narrow", moto, &["us-east-1"]).with_kinds(&["instance", "key_pair"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    ec2.launch(1, 1, "only", &[]).await.unwrap();
    ec2.create_volume(5, "ignored").await.unwrap();
    let server = TestServer::start(&[spec]).await;
    let report = server.sync().await;
    let kinds: Vec<&str> = report["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["instance", "key_pair"]);
    assert!(server.all("kind=volume").await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_record_appeared_changed_and_disappeared_events() {
    let moto = shared_moto();
    let spec = AccountSpec::new("hist", moto, &["us-east-1"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let first = ec2.launch(3, 1, "svc", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let baseline = server.get("/api/v1/changes?since=1h").await;
    assert!(
        baseline["items"].as_array().unwrap().is_empty(),
        "the first sync is a baseline: {baseline}"
    );

    let added = ec2.launch(1, 1, "late", &[]).await.unwrap();
    ec2.stop(&first[..1]).await.unwrap();
    ec2.terminate(&first[1..2]).await.unwrap();
    server.sync().await;
    // Nothing changed since: a second sync adds no events.
    server.sync().await;

    let items = server.get("/api/v1/changes?since=1h&kind=instance").await["items"]
        .as_array()
        .unwrap()
        .clone();
    let by = |pid: &str| {
        items
            .iter()
            .filter(|e| e["provider_id"] == pid)
            .cloned()
            .collect::<Vec<Value>>()
    };
    let appeared = by(&added[0]);
    assert_eq!(appeared.len(), 1, "{items:?}");
    assert_eq!(appeared[0]["event"], "appeared");
    let stopped = by(&first[0]);
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0]["event"], "changed");
    let state = stopped[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "state")
        .expect("state change")
        .clone();
    assert_eq!(
        (state["from"].as_str(), state["to"].as_str()),
        (Some("running"), Some("stopped"))
    );
    let gone = by(&first[1]);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0]["event"], "disappeared");
    assert!(
        by(&first[2]).is_empty(),
        "an untouched instance has no events"
    );
    assert_eq!(items.len(), 3);

    // The resource's own timeline, and the Changes API's paging and checks.
    let id = stopped[0]["resource_id"].as_i64().unwrap();
    let detail = server.get(&format!("/api/v1/resources/{id}")).await;
    assert_eq!(detail["history"].as_array().unwrap().len(), 1);
    let page = server.get("/api/v1/changes?since=1h&limit=2").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let next = page["next_cursor"].as_str().expect("a next page");
    let rest = server
        .get(&format!("/api/v1/changes?since=1h&limit=2&cursor={next}"))
        .await;
    assert!(!rest["items"].as_array().unwrap().is_empty());
    let (status, body) = server
        .request(
            reqwest::Method::GET,
            "/api/v1/changes?since=yesterdayish",
            Some(&server.token),
            None,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("'since'"));
    server.stop().await;
}
