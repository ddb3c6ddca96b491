//! The non-EC2 kinds against moto through the real SDK: each kind synced
//! with the fields it was created with, buckets per region, global kinds,
//! and the provider's other calls (templates, objects, presigned URLs,
//! regions, targeted describe).

use crate::harness::*;
use serde_json::Value;
use skyhold_aws::testkit::{emulator_account, Aws, SAMPLE_TEMPLATE};
use skyhold_aws::AwsProvider;
use skyhold_core::{Provider, ResourceKind, GLOBAL_REGION};
use std::time::Duration;

async fn aws(endpoint: &str, account_id: &str, region: &str) -> Aws {
    Aws::connect(endpoint, account_id, region)
        .await
        .expect("connect to moto")
}

fn one<'a>(items: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = items.iter().filter(|i| i["name"] == name).collect();
    assert_eq!(found.len(), 1, "exactly one {name:?} in {items:#?}");
    found[0]
}

fn str_list(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect();
    out.sort();
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_kind_is_synced_with_its_fields() {
    let moto = shared_moto();
    let spec = AccountSpec::new("svc", moto, &["us-east-1"]);
    let acct = spec.account_id.clone();
    let a = aws(moto, &acct, "us-east-1").await;

    let web = a.ec2.launch(2, 2, "web", &[]).await.unwrap();
    let classic_dns = a
        .create_classic_lb("legacy-web", &web, &[("owner", "alice")])
        .await
        .unwrap();
    let alb = a
        .create_alb("shop", &web, &[("owner", "bob"), ("env", "prod")])
        .await
        .unwrap();
    let lt = a.ec2.create_launch_template("shop-lt").await.unwrap();
    a.create_asg(
        "shop-asg",
        &lt,
        (1, 2, 4),
        std::slice::from_ref(&alb.target_group_arn),
    )
    .await
    .unwrap();
    a.create_db_instance("orders-db", 50, &[("owner", "carol")])
        .await
        .unwrap();
    a.create_table("sessions", 3).await.unwrap();
    a.create_cache_cluster("sessions-cache").await.unwrap();
    a.create_replication_group("shop-redis", "shop cache")
        .await
        .unwrap();
    let stack_id = a
        .create_stack("shop-stack", SAMPLE_TEMPLATE, &[("Env", "test")])
        .await
        .unwrap();
    let zone = a.create_zone("example.test.", "shop zone").await.unwrap();
    a.upsert_record(&zone, "www.example.test.", "A", 300, &["203.0.113.10"])
        .await
        .unwrap();
    a.upsert_alias(&zone, "shop.example.test.", &alb.dns_name)
        .await
        .unwrap();
    let q = a.create_queue_with_dlq("orders", 3).await.unwrap();
    let topic = a
        .create_topic("alerts", "Shop alerts", &[&q.arn], &["ops@example.test"])
        .await
        .unwrap();
    let bucket = format!("assets-{acct}");
    a.create_bucket(&bucket, &[("owner", "dave")])
        .await
        .unwrap();
    a.create_alarm("web-cpu-high", &web[0], 80.0).await.unwrap();
    a.set_alarm_state("web-cpu-high", "ALARM", "threshold crossed")
        .await
        .unwrap();

    let server = TestServer::start(&[spec]).await;
    let report = server.sync().await;
    assert_eq!(report["failed"], 0, "{report}");

    // Load balancers: the classic one by name, the ALB by ARN.
    let lbs = server.all("kind=load_balancer").await;
    assert_eq!(lbs.len(), 2, "{lbs:#?}");
    let classic = one(&lbs, "legacy-web");
    assert_eq!(classic["provider_id"], "legacy-web");
    assert_eq!(
        (&classic["type"], &classic["state"], &classic["owner"]),
        (
            &Value::from("classic"),
            &Value::from("active"),
            &Value::from("alice")
        )
    );
    assert_eq!(classic["attributes"]["dns_name"], classic_dns.as_str());
    assert_eq!(
        str_list(&classic["attributes"]["instance_ids"]),
        sorted(web.clone())
    );
    assert_eq!(classic["attributes"]["listeners"][0]["port"], 80);
    assert_eq!(classic["attributes"]["listeners"][0]["instance_port"], 8080);
    let shop = one(&lbs, "shop");
    assert_eq!(shop["provider_id"], alb.arn.as_str());
    assert_eq!(
        (&shop["type"], &shop["state"], &shop["owner"]),
        (
            &Value::from("application"),
            &Value::from("active"),
            &Value::from("bob")
        )
    );
    assert_eq!(shop["tags"]["env"], "prod");
    let sa = &shop["attributes"];
    assert_eq!(sa["dns_name"], alb.dns_name.as_str());
    assert_eq!(sa["vpc_id"], alb.vpc_id.as_str());
    assert_eq!(str_list(&sa["subnet_ids"]), sorted(alb.subnet_ids.clone()));
    assert_eq!(
        str_list(&sa["target_group_arns"]),
        vec![alb.target_group_arn.clone()]
    );
    assert_eq!(sa["listeners"][0]["protocol"], "HTTP");
    assert_eq!(sa["listeners"][0]["port"], 80);
    assert_eq!(
        sa["listeners"][0]["default_target_group_arn"],
        alb.target_group_arn.as_str()
    );

    // The target group and its registered instances.
    let tgs = server.all("kind=target_group").await;
    let tg = one(&tgs, "shop-tg");
    assert_eq!(tg["provider_id"], alb.target_group_arn.as_str());
    assert_eq!(tg["type"], "instance");
    let ta = &tg["attributes"];
    assert_eq!(
        (&ta["protocol"], &ta["port"]),
        (&Value::from("HTTP"), &Value::from(8080))
    );
    assert_eq!(str_list(&ta["load_balancer_arns"]), vec![alb.arn.clone()]);
    // The ASG registered its own instances in the group too.
    let tg_instances = str_list(&ta["instance_ids"]);
    assert!(web.iter().all(|i| tg_instances.contains(i)), "{ta}");
    assert_eq!(ta["targets"].as_array().unwrap().len(), tg_instances.len());
    let healthy = ta["healthy_count"].as_u64().unwrap();
    let unhealthy = ta["unhealthy_count"].as_u64().unwrap();
    assert!(healthy + unhealthy <= tg_instances.len() as u64);
    let expected_state = if unhealthy > 0 || healthy < tg_instances.len() as u64 {
        "unhealthy"
    } else {
        "healthy"
    };
    assert_eq!(tg["state"], expected_state, "{tg}");

    // The Auto Scaling group from the launch template, in the target group.
    let asgs = server.all("kind=auto_scaling_group").await;
    let asg = one(&asgs, "shop-asg");
    assert_eq!(
        (&asg["provider_id"], &asg["state"]),
        (&Value::from("shop-asg"), &Value::from("active"))
    );
    let aa = &asg["attributes"];
    assert_eq!(
        (&aa["min_size"], &aa["desired_capacity"], &aa["max_size"]),
        (&Value::from(1), &Value::from(2), &Value::from(4))
    );
    assert_eq!(aa["launch_template_id"], lt.as_str());
    assert_eq!(aa["launch_template_name"], "shop-lt");
    assert_eq!(aa["instance_ids"].as_array().unwrap().len(), 2);
    assert_eq!(
        str_list(&aa["target_group_arns"]),
        vec![alb.target_group_arn.clone()]
    );
    assert!(aa["arn"].as_str().unwrap().contains("shop-asg"));
    assert_eq!(asg["owner"], "platform");

    // RDS.
    let dbs = server.all("kind=db_instance").await;
    let db = one(&dbs, "orders-db");
    assert_eq!(db["type"], "db.t3.micro");
    assert_eq!(db["owner"], "carol");
    let da = &db["attributes"];
    assert_eq!(
        (&da["engine"], &da["size_gib"]),
        (&Value::from("postgres"), &Value::from(50))
    );
    assert_eq!(da["multi_az"], false);
    assert_eq!(da["storage_type"], "gp2");
    assert!(da["endpoint"].as_str().unwrap().ends_with(":5432"), "{da}");
    assert!(da["arn"].as_str().unwrap().ends_with(":db:orders-db"));

    // DynamoDB.
    let tables = server.all("kind=dynamodb_table").await;
    let t = one(&tables, "sessions");
    assert_eq!(
        (&t["state"], &t["type"]),
        (&Value::from("active"), &Value::from("PAY_PER_REQUEST"))
    );
    assert_eq!(t["attributes"]["item_count"], 3);
    assert_eq!(t["attributes"]["billing_mode"], "PAY_PER_REQUEST");
    assert_eq!(t["owner"], "data");

    // ElastiCache.
    let caches = server.all("kind=cache_cluster").await;
    let c = one(&caches, "sessions-cache");
    assert_eq!(c["type"], "cache.t3.micro");
    assert_eq!(
        (&c["attributes"]["engine"], &c["attributes"]["num_nodes"]),
        (&Value::from("redis"), &Value::from(1))
    );
    let rgs = server.all("kind=replication_group").await;
    let rg = one(&rgs, "shop-redis");
    assert_eq!(rg["attributes"]["description"], "shop cache");
    // moto makes one member cluster whatever NumCacheClusters says.
    assert!(str_list(&rg["attributes"]["member_clusters"]).contains(&"shop-redis-001".to_owned()));
    assert!(rg["attributes"]["primary_endpoint"]
        .as_str()
        .unwrap()
        .ends_with(":6379"));
    assert_eq!(rg["attributes"]["engine"], "redis");

    // CloudFormation: parameters, outputs and the resources it made.
    let stacks = server.all("kind=stack").await;
    let st = one(&stacks, "shop-stack");
    assert_eq!(st["provider_id"], stack_id.as_str());
    assert_eq!(st["state"], "CREATE_COMPLETE");
    let sta = &st["attributes"];
    assert_eq!(sta["parameters"]["Env"], "test");
    assert_eq!(sta["description"], "skyhold sample: a queue and a topic");
    assert_eq!(sta["outputs"][0]["key"], "QueueUrl");
    assert!(sta["outputs"][0]["value"]
        .as_str()
        .unwrap()
        .ends_with("/jobs-test"));
    let mut types: Vec<&str> = sta["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(types, vec!["AWS::SNS::Topic", "AWS::SQS::Queue"]);

    // Route 53.
    let zones = server.all("kind=hosted_zone").await;
    let z = one(&zones, "example.test.");
    assert_eq!(
        (&z["provider_id"], &z["state"]),
        (&Value::from(zone.as_str()), &Value::from("public"))
    );
    assert_eq!(z["attributes"]["comment"], "shop zone");
    assert_eq!(z["attributes"]["private"], false);
    let records = server.all("kind=dns_record").await;
    let www = one(&records, "www.example.test.");
    assert_eq!(www["provider_id"], format!("{zone}/www.example.test./A"));
    assert_eq!(www["type"], "A");
    assert_eq!(www["attributes"]["ttl"], 300);
    assert_eq!(str_list(&www["attributes"]["values"]), vec!["203.0.113.10"]);
    assert_eq!(www["attributes"]["zone_name"], "example.test.");
    let alias = one(&records, "shop.example.test.");
    assert_eq!(alias["attributes"]["alias_target"], alb.dns_name.as_str());
    // NS and SOA come with the zone.
    assert!(records.iter().any(|r| r["type"] == "SOA"));

    // SQS: the queue, its messages and its dead-letter queue.
    let queues = server.all("kind=queue").await;
    let orders = one(&queues, "orders");
    assert_eq!(orders["provider_id"], q.url.as_str());
    assert_eq!(orders["owner"], "orders-team");
    let qa = &orders["attributes"];
    assert_eq!(qa["visible_messages"], 3);
    assert_eq!(qa["in_flight_messages"], 0);
    assert_eq!(qa["dead_letter_target_arn"], q.dlq_arn.as_str());
    assert_eq!(
        (&qa["arn"], &qa["fifo"]),
        (&Value::from(q.arn.as_str()), &Value::from(false))
    );
    let dlq = one(&queues, "orders-dlq");
    assert_eq!(dlq["attributes"]["visible_messages"], 0);
    assert!(dlq["attributes"].get("dead_letter_target_arn").is_none());
    // The stack's queue is there too.
    assert_eq!(one(&queues, "jobs-test")["state"], "active");

    // SNS: one confirmed (SQS) and one pending (email) subscription.
    let topics = server.all("kind=topic").await;
    let al = one(&topics, "alerts");
    assert_eq!(al["provider_id"], topic.as_str());
    let ala = &al["attributes"];
    assert_eq!(ala["display_name"], "Shop alerts");
    assert_eq!(ala["subscription_count"], 2, "{ala}");
    assert_eq!(
        ala["subscriptions_confirmed"].as_i64().unwrap()
            + ala["subscriptions_pending"].as_i64().unwrap(),
        2
    );

    // S3.
    let buckets = server.all("kind=bucket").await;
    let b = one(&buckets, &bucket);
    assert_eq!(
        (&b["provider_id"], &b["state"]),
        (&Value::from(bucket.as_str()), &Value::from("active"))
    );
    assert_eq!(b["attributes"]["region"], "us-east-1");
    assert_eq!(b["owner"], "dave");

    // CloudWatch.
    let alarms = server.all("kind=alarm").await;
    let al = one(&alarms, "web-cpu-high");
    assert!(al["provider_id"]
        .as_str()
        .unwrap()
        .ends_with(":alarm:web-cpu-high"));
    assert_eq!(
        (&al["state"], &al["type"]),
        (&Value::from("alarm"), &Value::from("metric"))
    );
    let ala = &al["attributes"];
    assert_eq!(
        (&ala["metric"], &ala["namespace"]),
        (&Value::from("CPUUtilization"), &Value::from("AWS/EC2"))
    );
    assert_eq!(
        (&ala["statistic"], &ala["threshold"]),
        (&Value::from("Average"), &Value::from(80.0))
    );
    assert_eq!(ala["comparison"], "GreaterThanThreshold");
    assert_eq!(
        (&ala["period"], &ala["evaluation_periods"]),
        (&Value::from(300), &Value::from(2))
    );
    assert_eq!(ala["dimensions"]["InstanceId"], web[0].as_str());
    assert_eq!(ala["state_reason"], "threshold crossed");
    assert!(ala["state_updated"].as_str().unwrap().ends_with('Z'));
    assert_eq!(ala["actions_enabled"], true);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_appear_only_under_their_own_region() {
    let moto = shared_moto();
    let spec =
        AccountSpec::new("buckets", moto, &["us-east-1", "eu-west-1"]).with_kinds(&["bucket"]);
    let acct = spec.account_id.clone();
    let east = format!("east-{acct}");
    let west = format!("west-{acct}");
    aws(moto, &acct, "us-east-1")
        .await
        .create_bucket(&east, &[])
        .await
        .unwrap();
    aws(moto, &acct, "eu-west-1")
        .await
        .create_bucket(&west, &[("team", "eu")])
        .await
        .unwrap();
    let server = TestServer::start(&[spec]).await;
    let report = server.sync().await;
    assert_eq!(report["failed"], 0, "{report}");
    let all = server.all("kind=bucket").await;
    let mine: Vec<(&str, &str)> = all
        .iter()
        .filter(|b| b["name"] == east.as_str() || b["name"] == west.as_str())
        .map(|b| (b["name"].as_str().unwrap(), b["region"].as_str().unwrap()))
        .collect();
    let mut mine = mine;
    mine.sort();
    assert_eq!(
        mine,
        vec![(east.as_str(), "us-east-1"), (west.as_str(), "eu-west-1")]
    );
    let w = all.iter().find(|b| b["name"] == west.as_str()).unwrap();
    assert_eq!(w["attributes"]["region"], "eu-west-1");
    assert_eq!(w["tags"]["team"], "eu");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_kinds_are_listed_once_under_the_global_region() {
    let moto = shared_moto();
    let acct = new_account_id();
    let a = aws(moto, &acct, "us-east-1").await;
    let zone = a.create_zone("paged.test.", "many records").await.unwrap();
    // More records than one ListResourceRecordSets page (300) holds.
    let names: Vec<String> = (0..320)
        .map(|n| format!("host{n:03}.paged.test."))
        .collect();
    a.upsert_records(&zone, &names, "A", &["198.51.100.7"])
        .await
        .unwrap();
    let p = AwsProvider::new(emulator_account(moto, &acct));
    let zones = p
        .list(GLOBAL_REGION, ResourceKind::HostedZone)
        .await
        .unwrap();
    assert_eq!(zones.len(), 1);
    assert_eq!(zones[0].provider_id, zone);
    assert_eq!(zones[0].attributes["record_count"], 322);
    let records = p
        .list(GLOBAL_REGION, ResourceKind::DnsRecord)
        .await
        .unwrap();
    // 320 A records, plus the zone's NS and SOA, each once.
    assert_eq!(records.len(), 322);
    let mut ids: Vec<&str> = records.iter().map(|r| r.provider_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 322);
    let a_names: Vec<&str> = records
        .iter()
        .filter(|r| r.rtype == "A")
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(
        sorted(a_names.iter().map(|s| s.to_string()).collect()),
        names
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_reads_templates_objects_regions_and_single_resources() {
    let moto = shared_moto();
    let acct = new_account_id();
    let region = "us-west-2";
    let a = aws(moto, &acct, region).await;
    let p = AwsProvider::new(emulator_account(moto, &acct));

    // Stack templates come back as created.
    let stack_id = a
        .create_stack("tpl-stack", SAMPLE_TEMPLATE, &[])
        .await
        .unwrap();
    let body = p.stack_template(region, "tpl-stack").await.unwrap();
    assert_eq!(body, SAMPLE_TEMPLATE);
    let st = p
        .describe(region, ResourceKind::Stack, &stack_id)
        .await
        .unwrap()
        .expect("stack found");
    assert_eq!(
        (st.name.as_str(), st.state.as_str()),
        ("tpl-stack", "CREATE_COMPLETE")
    );

    // Objects: prefixes and objects at each level.
    let bucket = format!("files-{acct}");
    a.create_bucket(&bucket, &[]).await.unwrap();
    for (k, body) in [
        ("readme.txt", "top"),
        ("logs/2026/01.log", "jan"),
        ("logs/2026/02.log", "feb"),
        ("logs/latest.log", "latest"),
        ("img/logo.png", "png"),
    ] {
        a.put_object(&bucket, k, body.as_bytes()).await.unwrap();
    }
    let top = p.list_objects(region, &bucket, "", None).await.unwrap();
    assert_eq!(top.prefixes, vec!["img/", "logs/"]);
    let keys: Vec<&str> = top.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec!["readme.txt"]);
    assert_eq!(top.objects[0].size, 3);
    assert!(top.objects[0].modified.is_some());
    assert_eq!(top.next_token, None);
    let logs = p
        .list_objects(region, &bucket, "logs/", None)
        .await
        .unwrap();
    assert_eq!(logs.prefixes, vec!["logs/2026/"]);
    let keys: Vec<&str> = logs.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec!["logs/latest.log"]);
    let y = p
        .list_objects(region, &bucket, "logs/2026/", None)
        .await
        .unwrap();
    assert!(y.prefixes.is_empty());
    let keys: Vec<&str> = y.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec!["logs/2026/01.log", "logs/2026/02.log"]);
    assert!(p.list_objects(region, "", "", None).await.is_err());

    // A presigned URL downloads the bytes with a plain GET.
    let url = p
        .presign_get(
            region,
            &bucket,
            "logs/2026/02.log",
            Duration::from_secs(300),
        )
        .await
        .unwrap();
    assert!(url.starts_with(moto), "{url}");
    let got = reqwest::get(&url).await.unwrap();
    assert!(got.status().is_success(), "{}", got.status());
    assert_eq!(got.text().await.unwrap(), "feb");
    assert!(p
        .presign_get(region, &bucket, "", Duration::from_secs(300))
        .await
        .is_err());

    // Regions.
    let regions = p.enabled_regions().await.unwrap();
    for r in ["us-east-1", "us-west-2", "eu-west-1"] {
        assert!(regions.iter().any(|x| x == r), "{r} in {regions:?}");
    }

    // Describe finds a resource, and None once it is gone.
    let q = a.create_queue_with_dlq("describe-me", 1).await.unwrap();
    let found = p
        .describe(region, ResourceKind::Queue, &q.url)
        .await
        .unwrap()
        .expect("queue found");
    assert_eq!(found.attributes["visible_messages"], 1);
    a.sqs.delete_queue().queue_url(&q.url).send().await.unwrap();
    assert!(p
        .describe(region, ResourceKind::Queue, &q.url)
        .await
        .unwrap()
        .is_none());

    a.create_table("describe-table", 2).await.unwrap();
    let t = p
        .describe(region, ResourceKind::DynamodbTable, "describe-table")
        .await
        .unwrap()
        .expect("table found");
    assert_eq!(t.attributes["item_count"], 2);
    a.dynamodb
        .delete_table()
        .table_name("describe-table")
        .send()
        .await
        .unwrap();
    assert!(p
        .describe(region, ResourceKind::DynamodbTable, "describe-table")
        .await
        .unwrap()
        .is_none());

    a.create_db_instance("describe-db", 20, &[]).await.unwrap();
    let d = p
        .describe(region, ResourceKind::DbInstance, "describe-db")
        .await
        .unwrap()
        .expect("db found");
    assert_eq!(d.size_gib, 20);
    a.rds
        .delete_db_instance()
        .db_instance_identifier("describe-db")
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    assert!(p
        .describe(region, ResourceKind::DbInstance, "describe-db")
        .await
        .unwrap()
        .is_none());

    let b = p
        .describe(region, ResourceKind::Bucket, &bucket)
        .await
        .unwrap()
        .expect("bucket found");
    assert_eq!(b.attributes["region"], region);
    // The bucket is not in another region.
    assert!(p
        .describe("us-east-1", ResourceKind::Bucket, &bucket)
        .await
        .unwrap()
        .is_none());

    let ids = a.ec2.launch(1, 1, "describe-vm", &[]).await.unwrap();
    let i = p
        .describe(region, ResourceKind::Instance, &ids[0])
        .await
        .unwrap()
        .expect("instance found");
    assert_eq!(i.name, "describe-vm-0");
    assert!(p
        .describe(region, ResourceKind::Instance, "i-0123456789abcdef0")
        .await
        .unwrap()
        .is_none());

    a.create_alarm("describe-alarm", &ids[0], 50.0)
        .await
        .unwrap();
    let listed = p.list(region, ResourceKind::Alarm).await.unwrap();
    let arn = listed[0].provider_id.clone();
    let al = p
        .describe(region, ResourceKind::Alarm, &arn)
        .await
        .unwrap()
        .expect("alarm found");
    assert_eq!(al.name, "describe-alarm");

    a.cloudformation
        .delete_stack()
        .stack_name("tpl-stack")
        .send()
        .await
        .unwrap();
    assert!(p
        .describe(region, ResourceKind::Stack, &stack_id)
        .await
        .unwrap()
        .is_none());
    assert!(p.describe(region, ResourceKind::Queue, "").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_instances_carry_their_stop_time() {
    let moto = shared_moto();
    let acct = new_account_id();
    let e = ec2(moto, &acct, "us-east-1").await;
    let ids = e.launch(2, 1, "halt", &[]).await.unwrap();
    e.stop(&ids[..1]).await.unwrap();
    let p = AwsProvider::new(emulator_account(moto, &acct));
    let all = p.list("us-east-1", ResourceKind::Instance).await.unwrap();
    let stopped = all.iter().find(|i| i.provider_id == ids[0]).unwrap();
    assert_eq!(stopped.state, "stopped");
    let at = stopped.attributes["stopped_at"]
        .as_str()
        .expect("stopped_at");
    let t = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    let age = chrono::Utc::now().signed_duration_since(t);
    assert!(age.num_seconds() >= -5 && age.num_minutes() < 10, "{at}");
    assert!(at.ends_with('Z') && at.len() == 20, "{at}");
    let running = all.iter().find(|i| i.provider_id == ids[1]).unwrap();
    assert!(running.attributes.get("stopped_at").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_fails_every_kind_instead_of_listing_nothing() {
    let mut moto = Moto::start();
    let endpoint = moto.endpoint.clone();
    moto.kill();
    let mut account = emulator_account(&endpoint, &new_account_id());
    account.max_attempts = 1;
    let p = AwsProvider::new(account);
    for kind in ResourceKind::ALL {
        let region = if kind.is_global() {
            GLOBAL_REGION
        } else {
            "us-east-1"
        };
        let r = p.list(region, kind).await;
        assert!(r.is_err(), "{kind}: {r:?}");
    }
    assert!(p
        .list_objects("us-east-1", "some-bucket", "", None)
        .await
        .is_err());
    assert!(p.stack_template("us-east-1", "some-stack").await.is_err());
}
