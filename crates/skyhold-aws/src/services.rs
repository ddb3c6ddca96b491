//! Every kind beyond EC2: load balancing, Auto Scaling, RDS, DynamoDB,
//! ElastiCache, CloudFormation, Route 53, SQS, SNS, S3 and CloudWatch.
//!
//! Each `list_*` follows every page of its listing and the per-resource
//! calls it needs (tags, target health, stack resources…), and converts at
//! the seam. Any failing call fails the whole listing of that kind.

use crate::convert::{millis, put, rfc3339, set_tags};
use crate::{clamp_page, classify, AwsProvider, RegionClients, GLOBAL_CLIENT_REGION};
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use serde_json::{json, Map, Value};
use skyhold_core::{ObservedResource, ProviderError, ProviderErrorKind, ResourceKind};
use std::collections::{BTreeMap, BTreeSet, HashMap};

type Res<T> = Result<T, ProviderError>;

/// Lists one of the non-EC2 kinds.
pub(crate) async fn list(
    p: &AwsProvider,
    rc: &RegionClients,
    kind: ResourceKind,
) -> Res<Vec<ObservedResource>> {
    let page = p.account.page_size;
    use ResourceKind as K;
    match kind {
        K::LoadBalancer => load_balancers(rc, page).await,
        K::TargetGroup => target_groups(rc, page).await,
        K::AutoScalingGroup => auto_scaling_groups(rc, page).await,
        K::DbInstance => db_instances(rc, page, None).await,
        K::DynamodbTable => dynamodb_tables(rc, page).await,
        K::CacheCluster => cache_clusters(rc, page).await,
        K::ReplicationGroup => replication_groups(rc, page).await,
        K::Stack => stacks(rc, None).await,
        K::HostedZone => hosted_zones(rc).await,
        K::DnsRecord => dns_records(rc).await,
        K::Queue => queues(rc, page).await,
        K::Topic => topics(rc).await,
        K::Bucket => buckets(p, rc).await,
        K::Alarm => alarms(rc, page, None).await,
        other => Err(ProviderError::new(
            ProviderErrorKind::Other,
            format!("listing {other} is not implemented"),
        )),
    }
}

/// The error code of a service error, if it is one.
pub(crate) fn error_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

fn strs<'a>(it: impl IntoIterator<Item = &'a str>) -> Value {
    Value::Array(it.into_iter().map(|s| json!(s)).collect())
}

fn kv_tags<'a>(
    it: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    it.into_iter()
        .filter_map(|(k, v)| Some((k?.to_owned(), v.unwrap_or_default().to_owned())))
        .collect()
}

fn host_port(host: Option<&str>, port: Option<i32>) -> Option<String> {
    let host = host.filter(|h| !h.is_empty())?;
    Some(match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
}

// ---------------------------------------------------------------- load balancing

async fn load_balancers(rc: &RegionClients, page: i32) -> Res<Vec<ObservedResource>> {
    let mut out = Vec::new();
    // Classic load balancers: id = name.
    let elb = rc.elb();
    let mut classic = Vec::new();
    let mut pages = elb
        .describe_load_balancers()
        .page_size(clamp_page(page, 400))
        .into_paginator()
        .send();
    while let Some(pg) = pages.next().await {
        let pg = pg.map_err(|e| classify("DescribeLoadBalancers (classic)", e))?;
        classic.extend(pg.load_balancer_descriptions().iter().cloned());
    }
    let mut classic_tags: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    let names: Vec<String> = classic
        .iter()
        .filter_map(|l| l.load_balancer_name())
        .map(str::to_owned)
        .collect();
    for chunk in names.chunks(20) {
        let r = elb
            .describe_tags()
            .set_load_balancer_names(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| classify("DescribeTags (classic)", e))?;
        for d in r.tag_descriptions() {
            if let Some(n) = d.load_balancer_name() {
                classic_tags.insert(
                    n.to_owned(),
                    kv_tags(d.tags().iter().map(|t| (Some(t.key()), t.value()))),
                );
            }
        }
    }
    for l in &classic {
        let name = l.load_balancer_name().unwrap_or_default();
        let mut o = ObservedResource::new(ResourceKind::LoadBalancer, name);
        o.name = name.to_owned();
        o.state = "active".into();
        o.rtype = "classic".into();
        o.created_at = millis(l.created_time());
        let a = &mut o.attributes;
        put(a, "dns_name", l.dns_name());
        put(a, "scheme", l.scheme());
        put(a, "vpc_id", l.vpc_id());
        a.insert(
            "subnet_ids".into(),
            strs(l.subnets().iter().map(String::as_str)),
        );
        a.insert(
            "security_groups".into(),
            strs(l.security_groups().iter().map(String::as_str)),
        );
        a.insert(
            "availability_zones".into(),
            strs(l.availability_zones().iter().map(String::as_str)),
        );
        let listeners: Vec<Value> = l
            .listener_descriptions()
            .iter()
            .filter_map(|d| d.listener())
            .map(|x| {
                json!({
                    "protocol": x.protocol(),
                    "port": x.load_balancer_port(),
                    "instance_protocol": x.instance_protocol(),
                    "instance_port": x.instance_port(),
                })
            })
            .collect();
        a.insert("listeners".into(), Value::Array(listeners));
        a.insert(
            "instance_ids".into(),
            strs(l.instances().iter().filter_map(|i| i.instance_id())),
        );
        a.insert("target_group_arns".into(), json!([]));
        a.insert("created_time".into(), rfc3339(o.created_at));
        set_tags(&mut o, classic_tags.remove(name).unwrap_or_default());
        out.push(o);
    }

    // Application, network and gateway load balancers: id = ARN.
    let v2 = rc.elbv2();
    let mut lbs = Vec::new();
    let mut pages = v2
        .describe_load_balancers()
        .page_size(clamp_page(page, 400))
        .into_paginator()
        .send();
    while let Some(pg) = pages.next().await {
        let pg = pg.map_err(|e| classify("DescribeLoadBalancers", e))?;
        lbs.extend(pg.load_balancers().iter().cloned());
    }
    if lbs.is_empty() {
        return Ok(out);
    }
    // Which target groups serve which load balancer.
    let mut tgs_of: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut pages = v2
        .describe_target_groups()
        .page_size(clamp_page(page, 400))
        .into_paginator()
        .send();
    while let Some(pg) = pages.next().await {
        let pg = pg.map_err(|e| classify("DescribeTargetGroups", e))?;
        for tg in pg.target_groups() {
            for lb in tg.load_balancer_arns() {
                tgs_of
                    .entry(lb.clone())
                    .or_default()
                    .insert(tg.target_group_arn().unwrap_or_default().to_owned());
            }
        }
    }
    let arns: Vec<String> = lbs
        .iter()
        .filter_map(|l| l.load_balancer_arn())
        .map(str::to_owned)
        .collect();
    let tags = v2_tags(rc, &arns).await?;
    for l in &lbs {
        let arn = l.load_balancer_arn().unwrap_or_default();
        let mut o = ObservedResource::new(ResourceKind::LoadBalancer, arn);
        o.name = l.load_balancer_name().unwrap_or_default().to_owned();
        o.state = l
            .state()
            .and_then(|s| s.code())
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        o.rtype = l
            .r#type()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default();
        o.created_at = millis(l.created_time());
        let mut listeners = Vec::new();
        let mut pages = v2
            .describe_listeners()
            .load_balancer_arn(arn)
            .page_size(clamp_page(page, 400))
            .into_paginator()
            .send();
        let tg_set = tgs_of.entry(arn.to_owned()).or_default();
        while let Some(pg) = pages.next().await {
            let pg = pg.map_err(|e| classify("DescribeListeners", e))?;
            for x in pg.listeners() {
                let mut forward = None;
                for act in x.default_actions() {
                    if let Some(tg) = act.target_group_arn() {
                        forward.get_or_insert(tg.to_owned());
                        tg_set.insert(tg.to_owned());
                    }
                    if let Some(fc) = act.forward_config() {
                        for t in fc.target_groups() {
                            if let Some(tg) = t.target_group_arn() {
                                forward.get_or_insert(tg.to_owned());
                                tg_set.insert(tg.to_owned());
                            }
                        }
                    }
                }
                let mut v = json!({
                    "protocol": x.protocol().map(|p| p.as_str()),
                    "port": x.port(),
                });
                if let Some(f) = forward {
                    v["default_target_group_arn"] = json!(f);
                }
                listeners.push(v);
            }
        }
        let a = &mut o.attributes;
        put(a, "dns_name", l.dns_name());
        put(a, "scheme", l.scheme().map(|s| s.as_str()));
        put(a, "vpc_id", l.vpc_id());
        put(
            a,
            "ip_address_type",
            l.ip_address_type().map(|s| s.as_str()),
        );
        a.insert(
            "subnet_ids".into(),
            strs(l.availability_zones().iter().filter_map(|z| z.subnet_id())),
        );
        a.insert(
            "availability_zones".into(),
            strs(l.availability_zones().iter().filter_map(|z| z.zone_name())),
        );
        a.insert(
            "security_groups".into(),
            strs(l.security_groups().iter().map(String::as_str)),
        );
        a.insert("listeners".into(), Value::Array(listeners));
        a.insert(
            "target_group_arns".into(),
            strs(tg_set.iter().map(String::as_str)),
        );
        a.insert("created_time".into(), rfc3339(o.created_at));
        set_tags(&mut o, tags.get(arn).cloned().unwrap_or_default());
        out.push(o);
    }
    Ok(out)
}

/// Tags of ELBv2 resources (load balancers or target groups), 20 per call.
async fn v2_tags(
    rc: &RegionClients,
    arns: &[String],
) -> Res<HashMap<String, BTreeMap<String, String>>> {
    let mut out = HashMap::new();
    for chunk in arns.chunks(20) {
        let r = rc
            .elbv2()
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| classify("DescribeTags", e))?;
        for d in r.tag_descriptions() {
            if let Some(arn) = d.resource_arn() {
                out.insert(
                    arn.to_owned(),
                    kv_tags(d.tags().iter().map(|t| (t.key(), t.value()))),
                );
            }
        }
    }
    Ok(out)
}

/// A target group's state: `unused` when it has no targets or serves no
/// load balancer, `unhealthy` when any target is not healthy, else `healthy`.
pub(crate) fn target_group_state(lb_count: usize, healths: &[&str]) -> &'static str {
    if lb_count == 0 || healths.is_empty() {
        "unused"
    } else if healths.iter().any(|h| *h != "healthy") {
        "unhealthy"
    } else {
        "healthy"
    }
}

async fn target_groups(rc: &RegionClients, page: i32) -> Res<Vec<ObservedResource>> {
    let v2 = rc.elbv2();
    let mut groups = Vec::new();
    let mut pages = v2
        .describe_target_groups()
        .page_size(clamp_page(page, 400))
        .into_paginator()
        .send();
    while let Some(pg) = pages.next().await {
        let pg = pg.map_err(|e| classify("DescribeTargetGroups", e))?;
        groups.extend(pg.target_groups().iter().cloned());
    }
    let arns: Vec<String> = groups
        .iter()
        .filter_map(|g| g.target_group_arn())
        .map(str::to_owned)
        .collect();
    let tags = v2_tags(rc, &arns).await?;
    let mut out = Vec::with_capacity(groups.len());
    for g in &groups {
        let arn = g.target_group_arn().unwrap_or_default();
        let health = v2
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(|e| classify("DescribeTargetHealth", e))?;
        let mut targets = Vec::new();
        let mut instance_ids = Vec::new();
        let mut healths = Vec::new();
        let instance_type = g.target_type().is_none_or(|t| t.as_str() == "instance");
        for d in health.target_health_descriptions() {
            let id = d.target().and_then(|t| t.id()).unwrap_or_default();
            let h = d
                .target_health()
                .and_then(|h| h.state())
                .map(|s| s.as_str())
                .unwrap_or("unknown");
            healths.push(h);
            targets.push(json!({
                "id": id,
                "port": d.target().and_then(|t| t.port()),
                "health": h,
            }));
            if instance_type && !id.is_empty() {
                instance_ids.push(json!(id));
            }
        }
        let healthy = healths.iter().filter(|h| **h == "healthy").count();
        let unhealthy = healths.iter().filter(|h| **h == "unhealthy").count();
        let mut o = ObservedResource::new(ResourceKind::TargetGroup, arn);
        o.name = g.target_group_name().unwrap_or_default().to_owned();
        o.state = target_group_state(g.load_balancer_arns().len(), &healths).to_owned();
        o.rtype = g
            .target_type()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_else(|| "instance".into());
        let a = &mut o.attributes;
        put(a, "protocol", g.protocol().map(|p| p.as_str()));
        if let Some(port) = g.port() {
            a.insert("port".into(), json!(port));
        }
        put(a, "vpc_id", g.vpc_id());
        put(a, "health_check_path", g.health_check_path());
        a.insert(
            "load_balancer_arns".into(),
            strs(g.load_balancer_arns().iter().map(String::as_str)),
        );
        a.insert("targets".into(), Value::Array(targets));
        a.insert("instance_ids".into(), Value::Array(instance_ids));
        a.insert("healthy_count".into(), json!(healthy));
        a.insert("unhealthy_count".into(), json!(unhealthy));
        set_tags(&mut o, tags.get(arn).cloned().unwrap_or_default());
        out.push(o);
    }
    Ok(out)
}

// ---------------------------------------------------------------- auto scaling

async fn auto_scaling_groups(rc: &RegionClients, page: i32) -> Res<Vec<ObservedResource>> {
    let mut out = Vec::new();
    let mut pages = rc
        .autoscaling()
        .describe_auto_scaling_groups()
        .max_records(clamp_page(page, 100))
        .into_paginator()
        .send();
    while let Some(pg) = pages.next().await {
        let pg = pg.map_err(|e| classify("DescribeAutoScalingGroups", e))?;
        for g in pg.auto_scaling_groups() {
            let name = g.auto_scaling_group_name().unwrap_or_default();
            let mut o = ObservedResource::new(ResourceKind::AutoScalingGroup, name);
            o.name = name.to_owned();
            o.state = if g.status().is_some_and(|s| s.contains("Delete")) {
                "deleting"
            } else {
                "active"
            }
            .into();
            o.created_at = millis(g.created_time());
            let a = &mut o.attributes;
            a.insert("desired_capacity".into(), json!(g.desired_capacity()));
            a.insert("min_size".into(), json!(g.min_size()));
            a.insert("max_size".into(), json!(g.max_size()));
            a.insert(
                "instance_ids".into(),
                strs(g.instances().iter().filter_map(|i| i.instance_id())),
            );
            let lt = g.launch_template().or_else(|| {
                g.mixed_instances_policy()
                    .and_then(|m| m.launch_template())
                    .and_then(|l| l.launch_template_specification())
            });
            if let Some(lt) = lt {
                put(a, "launch_template_id", lt.launch_template_id());
                put(a, "launch_template_name", lt.launch_template_name());
                put(a, "launch_template_version", lt.version());
            }
            put(
                a,
                "launch_configuration_name",
                g.launch_configuration_name(),
            );
            a.insert(
                "target_group_arns".into(),
                strs(g.target_group_arns().iter().map(String::as_str)),
            );
            a.insert(
                "load_balancer_names".into(),
                strs(g.load_balancer_names().iter().map(String::as_str)),
            );
            a.insert(
                "availability_zones".into(),
                strs(g.availability_zones().iter().map(String::as_str)),
            );
            put(a, "arn", g.auto_scaling_group_arn());
            put(a, "health_check_type", g.health_check_type());
            put(a, "vpc_zone_identifier", g.vpc_zone_identifier());
            put(a, "status", g.status());
            a.insert("created_time".into(), rfc3339(o.created_at));
            set_tags(
                &mut o,
                kv_tags(g.tags().iter().map(|t| (t.key(), t.value()))),
            );
            out.push(o);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- databases

pub(crate) async fn db_instances(
    rc: &RegionClients,
    page: i32,
    id: Option<&str>,
) -> Res<Vec<ObservedResource>> {
    let mut out = Vec::new();
    let mut req = rc.rds().describe_db_instances();
    if let Some(id) = id {
        req = req.db_instance_identifier(id);
    } else {
        req = req.max_records(clamp_page(page.max(20), 100));
    }
    let mut pages = req.into_paginator().send();
    while let Some(pg) = pages.next().await {
        let pg = match pg {
            Ok(pg) => pg,
            Err(e) if id.is_some() && error_code(&e) == Some("DBInstanceNotFound") => {
                return Ok(out)
            }
            Err(e) => return Err(classify("DescribeDBInstances", e)),
        };
        for d in pg.db_instances() {
            let id = d.db_instance_identifier().unwrap_or_default();
            let mut o = ObservedResource::new(ResourceKind::DbInstance, id);
            o.name = id.to_owned();
            o.state = d.db_instance_status().unwrap_or_default().to_owned();
            o.rtype = d.db_instance_class().unwrap_or_default().to_owned();
            o.size_gib = i64::from(d.allocated_storage().unwrap_or(0));
            o.created_at = millis(d.instance_create_time());
            let a = &mut o.attributes;
            put(a, "engine", d.engine());
            put(a, "engine_version", d.engine_version());
            if let Some(ep) = d.endpoint() {
                if let Some(hp) = host_port(ep.address(), ep.port()) {
                    a.insert("endpoint".into(), json!(hp));
                }
            }
            a.insert("multi_az".into(), json!(d.multi_az().unwrap_or(false)));
            put(a, "storage_type", d.storage_type());
            a.insert("size_gib".into(), json!(o.size_gib));
            put(a, "vpc_id", d.db_subnet_group().and_then(|g| g.vpc_id()));
            a.insert(
                "security_groups".into(),
                strs(
                    d.vpc_security_groups()
                        .iter()
                        .filter_map(|g| g.vpc_security_group_id()),
                ),
            );
            put(a, "arn", d.db_instance_arn());
            put(a, "availability_zone", d.availability_zone());
            if let Some(p) = d.publicly_accessible() {
                a.insert("publicly_accessible".into(), json!(p));
            }
            a.insert("created_time".into(), rfc3339(o.created_at));
            set_tags(
                &mut o,
                kv_tags(d.tag_list().iter().map(|t| (t.key(), t.value()))),
            );
            out.push(o);
        }
    }
    Ok(out)
}

async fn dynamodb_tables(rc: &RegionClients, page: i32) -> Res<Vec<ObservedResource>> {
    let ddb = rc.dynamodb();
    let mut names = Vec::new();
    let mut pages = ddb
        .list_tables()
        .limit(clamp_page(page, 100))
        .into_paginator()
        .send();
    while let Some(pg) = pages.next().await {
        let pg = pg.map_err(|e| classify("ListTables", e))?;
        names.extend(pg.table_names().iter().cloned());
    }
    let mut out = Vec::with_capacity(names.len());
    for n in &names {
        // A table deleted between the two calls is simply gone.
        if let Some(o) = dynamodb_table(rc, n).await? {
            out.push(o);
        }
    }
    Ok(out)
}

pub(crate) async fn dynamodb_table(
    rc: &RegionClients,
    name: &str,
) -> Res<Option<ObservedResource>> {
    let ddb = rc.dynamodb();
    let t = match ddb.describe_table().table_name(name).send().await {
        Ok(r) => r,
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => return Ok(None),
        Err(e) => return Err(classify("DescribeTable", e)),
    };
    let Some(t) = t.table() else {
        return Ok(None);
    };
    let mut o = ObservedResource::new(ResourceKind::DynamodbTable, name);
    o.name = name.to_owned();
    o.state = t
        .table_status()
        .map(|s| s.as_str().to_lowercase())
        .unwrap_or_default();
    let pt = t.provisioned_throughput();
    let read = pt.and_then(|p| p.read_capacity_units()).unwrap_or(0);
    let write = pt.and_then(|p| p.write_capacity_units()).unwrap_or(0);
    let billing = t
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .map(|b| b.as_str().to_owned())
        .unwrap_or_else(|| {
            if read > 0 || write > 0 {
                "PROVISIONED".into()
            } else {
                "PAY_PER_REQUEST".into()
            }
        });
    o.rtype = billing.clone();
    o.created_at = millis(t.creation_date_time());
    let a = &mut o.attributes;
    a.insert("item_count".into(), json!(t.item_count().unwrap_or(0)));
    a.insert(
        "size_bytes".into(),
        json!(t.table_size_bytes().unwrap_or(0)),
    );
    a.insert("billing_mode".into(), json!(billing));
    a.insert("read_capacity".into(), json!(read));
    a.insert("write_capacity".into(), json!(write));
    put(a, "arn", t.table_arn());
    let keys: Vec<Value> = t
        .key_schema()
        .iter()
        .map(|k| json!({"name": k.attribute_name(), "type": k.key_type().as_str()}))
        .collect();
    a.insert("key_schema".into(), Value::Array(keys));
    a.insert("created_time".into(), rfc3339(o.created_at));
    let mut tags = BTreeMap::new();
    if let Some(arn) = t.table_arn() {
        let mut token: Option<String> = None;
        loop {
            let r = ddb
                .list_tags_of_resource()
                .resource_arn(arn)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify("ListTagsOfResource", e))?;
            tags.extend(kv_tags(
                r.tags().iter().map(|t| (Some(t.key()), Some(t.value()))),
            ));
            match r.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
    }
    set_tags(&mut o, tags);
    Ok(Some(o))
}

async fn elasticache_tags(rc: &RegionClients, arn: Option<&str>) -> Res<BTreeMap<String, String>> {
    let Some(arn) = arn else {
        return Ok(BTreeMap::new());
    };
    let r = rc
        .elasticache()
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|e| classify("ListTagsForResource (ElastiCache)", e))?;
    Ok(kv_tags(r.tag_list().iter().map(|t| (t.key(), t.value()))))
}

async fn cache_clusters(rc: &RegionClients, page: i32) -> Res<Vec<ObservedResource>> {
    let mut clusters = Vec::new();
    let mut pages = rc
        .elasticache()
        .describe_cache_clusters()
        .show_cache_node_info(true)
        .max_records(clamp_page(page.max(20), 100))
        .into_paginator()
        .send();
    while let Some(pg) = pages.next().await {
        let pg = pg.map_err(|e| classify("DescribeCacheClusters", e))?;
        clusters.extend(pg.cache_clusters().iter().cloned());
    }
    let mut out = Vec::with_capacity(clusters.len());
    for c in &clusters {
        let id = c.cache_cluster_id().unwrap_or_default();
        let mut o = ObservedResource::new(ResourceKind::CacheCluster, id);
        o.name = id.to_owned();
        o.state = c.cache_cluster_status().unwrap_or_default().to_owned();
        o.rtype = c.cache_node_type().unwrap_or_default().to_owned();
        o.created_at = millis(c.cache_cluster_create_time());
        let a = &mut o.attributes;
        put(a, "engine", c.engine());
        put(a, "engine_version", c.engine_version());
        a.insert("num_nodes".into(), json!(c.num_cache_nodes().unwrap_or(0)));
        let endpoint = c
            .configuration_endpoint()
            .and_then(|e| host_port(e.address(), e.port()))
            .or_else(|| {
                c.cache_nodes()
                    .iter()
                    .find_map(|n| n.endpoint())
                    .and_then(|e| host_port(e.address(), e.port()))
            });
        if let Some(e) = endpoint {
            a.insert("endpoint".into(), json!(e));
        }
        put(a, "replication_group_id", c.replication_group_id());
        put(a, "availability_zone", c.preferred_availability_zone());
        put(a, "arn", c.arn());
        a.insert(
            "security_groups".into(),
            strs(
                c.security_groups()
                    .iter()
                    .filter_map(|g| g.security_group_id()),
            ),
        );
        a.insert("created_time".into(), rfc3339(o.created_at));
        let tags = elasticache_tags(rc, c.arn()).await?;
        set_tags(&mut o, tags);
        out.push(o);
    }
    Ok(out)
}

async fn replication_groups(rc: &RegionClients, page: i32) -> Res<Vec<ObservedResource>> {
    let mut groups = Vec::new();
    let mut pages = rc
        .elasticache()
        .describe_replication_groups()
        .max_records(clamp_page(page.max(20), 100))
        .into_paginator()
        .send();
    while let Some(pg) = pages.next().await {
        let pg = pg.map_err(|e| classify("DescribeReplicationGroups", e))?;
        groups.extend(pg.replication_groups().iter().cloned());
    }
    let mut out = Vec::with_capacity(groups.len());
    for g in &groups {
        let id = g.replication_group_id().unwrap_or_default();
        let mut o = ObservedResource::new(ResourceKind::ReplicationGroup, id);
        o.name = id.to_owned();
        o.state = g.status().unwrap_or_default().to_owned();
        o.rtype = g.cache_node_type().unwrap_or_default().to_owned();
        o.created_at = millis(g.replication_group_create_time());
        let a = &mut o.attributes;
        put(a, "description", g.description());
        a.insert(
            "member_clusters".into(),
            strs(g.member_clusters().iter().map(String::as_str)),
        );
        let group = g.node_groups().first();
        if let Some(e) = group
            .and_then(|n| n.primary_endpoint())
            .and_then(|e| host_port(e.address(), e.port()))
        {
            a.insert("primary_endpoint".into(), json!(e));
        }
        if let Some(e) = group
            .and_then(|n| n.reader_endpoint())
            .and_then(|e| host_port(e.address(), e.port()))
        {
            a.insert("reader_endpoint".into(), json!(e));
        }
        if let Some(e) = g
            .configuration_endpoint()
            .and_then(|e| host_port(e.address(), e.port()))
        {
            a.insert("configuration_endpoint".into(), json!(e));
        }
        put(a, "engine", g.engine());
        put(a, "arn", g.arn());
        if let Some(m) = g.automatic_failover() {
            a.insert("automatic_failover".into(), json!(m.as_str()));
        }
        a.insert("created_time".into(), rfc3339(o.created_at));
        let tags = elasticache_tags(rc, g.arn()).await?;
        set_tags(&mut o, tags);
        out.push(o);
    }
    Ok(out)
}

// ---------------------------------------------------------------- cloudformation

/// Every stack not deleted (or the one named), with its resources.
pub(crate) async fn stacks(rc: &RegionClients, name: Option<&str>) -> Res<Vec<ObservedResource>> {
    let cf = rc.cloudformation();
    let mut found = Vec::new();
    let mut pages = cf
        .describe_stacks()
        .set_stack_name(name.map(str::to_owned))
        .into_paginator()
        .send();
    while let Some(pg) = pages.next().await {
        let pg = match pg {
            Ok(pg) => pg,
            // A named stack that does not exist is a ValidationError.
            Err(e)
                if name.is_some()
                    && error_code(&e) == Some("ValidationError")
                    && e.message().is_some_and(|m| m.contains("does not exist")) =>
            {
                return Ok(Vec::new())
            }
            Err(e) => return Err(classify("DescribeStacks", e)),
        };
        found.extend(pg.stacks().iter().cloned());
    }
    let mut out = Vec::with_capacity(found.len());
    for s in &found {
        let status = s
            .stack_status()
            .map(|x| x.as_str().to_owned())
            .unwrap_or_default();
        if status == "DELETE_COMPLETE" {
            continue;
        }
        let id = s.stack_id().unwrap_or_default();
        let mut o = ObservedResource::new(ResourceKind::Stack, id);
        o.name = s.stack_name().unwrap_or_default().to_owned();
        o.state = status;
        o.created_at = millis(s.creation_time());
        let mut resources = Vec::new();
        let mut pages = cf
            .list_stack_resources()
            .stack_name(id)
            .into_paginator()
            .send();
        while let Some(pg) = pages.next().await {
            let pg = pg.map_err(|e| classify("ListStackResources", e))?;
            for r in pg.stack_resource_summaries() {
                resources.push(json!({
                    "logical_id": r.logical_resource_id(),
                    "physical_id": r.physical_resource_id(),
                    "type": r.resource_type(),
                    "status": r.resource_status().map(|x| x.as_str()),
                }));
            }
        }
        let a = &mut o.attributes;
        let params: Map<String, Value> = s
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_owned(),
                    json!(p.parameter_value().unwrap_or_default()),
                ))
            })
            .collect();
        a.insert("parameters".into(), Value::Object(params));
        let outputs: Vec<Value> = s
            .outputs()
            .iter()
            .map(|x| {
                json!({
                    "key": x.output_key(),
                    "value": x.output_value(),
                    "description": x.description(),
                })
            })
            .collect();
        a.insert("outputs".into(), Value::Array(outputs));
        a.insert("resources".into(), Value::Array(resources));
        put(a, "description", s.description());
        put(a, "status_reason", s.stack_status_reason());
        a.insert("created_time".into(), rfc3339(o.created_at));
        a.insert(
            "updated_time".into(),
            rfc3339(millis(s.last_updated_time())),
        );
        set_tags(
            &mut o,
            kv_tags(s.tags().iter().map(|t| (t.key(), t.value()))),
        );
        out.push(o);
    }
    Ok(out)
}

// ---------------------------------------------------------------- route 53

pub(crate) fn zone_id(raw: &str) -> &str {
    raw.strip_prefix("/hostedzone/").unwrap_or(raw)
}

pub(crate) async fn all_zones(rc: &RegionClients) -> Res<Vec<aws_sdk_route53::types::HostedZone>> {
    let mut zones = Vec::new();
    let mut pages = rc.route53().list_hosted_zones().into_paginator().send();
    while let Some(pg) = pages.next().await {
        let pg = pg.map_err(|e| classify("ListHostedZones", e))?;
        zones.extend(pg.hosted_zones().iter().cloned());
    }
    Ok(zones)
}

async fn hosted_zones(rc: &RegionClients) -> Res<Vec<ObservedResource>> {
    let zones = all_zones(rc).await?;
    let mut out = Vec::with_capacity(zones.len());
    for z in &zones {
        let id = zone_id(z.id());
        let private = z.config().is_some_and(|c| c.private_zone());
        let mut o = ObservedResource::new(ResourceKind::HostedZone, id);
        o.name = z.name().to_owned();
        o.state = if private { "private" } else { "public" }.into();
        let a = &mut o.attributes;
        a.insert(
            "record_count".into(),
            json!(z.resource_record_set_count().unwrap_or(0)),
        );
        put(a, "comment", z.config().and_then(|c| c.comment()));
        a.insert("private".into(), json!(private));
        let r = rc
            .route53()
            .list_tags_for_resource()
            .resource_type(aws_sdk_route53::types::TagResourceType::Hostedzone)
            .resource_id(id)
            .send()
            .await
            .map_err(|e| classify("ListTagsForResource (Route 53)", e))?;
        let tags = r
            .resource_tag_set()
            .map(|s| kv_tags(s.tags().iter().map(|t| (t.key(), t.value()))))
            .unwrap_or_default();
        set_tags(&mut o, tags);
        out.push(o);
    }
    Ok(out)
}

/// The id of a DNS record: `<zone id>/<name>/<type>[/<set identifier>]`.
pub(crate) fn record_id(zone: &str, name: &str, rtype: &str, set_id: Option<&str>) -> String {
    match set_id.filter(|s| !s.is_empty()) {
        Some(s) => format!("{zone}/{name}/{rtype}/{s}"),
        None => format!("{zone}/{name}/{rtype}"),
    }
}

async fn dns_records(rc: &RegionClients) -> Res<Vec<ObservedResource>> {
    let r53 = rc.route53();
    let zones = all_zones(rc).await?;
    let mut out = Vec::new();
    for z in &zones {
        let zid = zone_id(z.id());
        let mut next: Option<(String, aws_sdk_route53::types::RrType, Option<String>)> = None;
        loop {
            let mut req = r53.list_resource_record_sets().hosted_zone_id(zid);
            if let Some((name, t, set)) = next.take() {
                req = req
                    .start_record_name(name)
                    .start_record_type(t)
                    .set_start_record_identifier(set);
            }
            let pg = req
                .send()
                .await
                .map_err(|e| classify("ListResourceRecordSets", e))?;
            for r in pg.resource_record_sets() {
                let rtype = r.r#type().as_str();
                let id = record_id(zid, r.name(), rtype, r.set_identifier());
                let mut o = ObservedResource::new(ResourceKind::DnsRecord, id);
                o.name = r.name().to_owned();
                o.state = "active".into();
                o.rtype = rtype.to_owned();
                let a = &mut o.attributes;
                a.insert("zone_id".into(), json!(zid));
                a.insert("zone_name".into(), json!(z.name()));
                if let Some(ttl) = r.ttl() {
                    a.insert("ttl".into(), json!(ttl));
                }
                a.insert(
                    "values".into(),
                    strs(r.resource_records().iter().map(|v| v.value())),
                );
                if let Some(t) = r.alias_target() {
                    a.insert("alias_target".into(), json!(t.dns_name()));
                }
                put(a, "set_identifier", r.set_identifier());
                out.push(o);
            }
            if !pg.is_truncated() {
                break;
            }
            match (pg.next_record_name(), pg.next_record_type()) {
                (Some(n), Some(t)) => {
                    next = Some((
                        n.to_owned(),
                        t.clone(),
                        pg.next_record_identifier().map(str::to_owned),
                    ))
                }
                _ => break,
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- messaging

fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

async fn queues(rc: &RegionClients, page: i32) -> Res<Vec<ObservedResource>> {
    let mut urls = Vec::new();
    let mut pages = rc
        .sqs()
        .list_queues()
        .max_results(clamp_page(page, 1000))
        .into_paginator()
        .send();
    while let Some(pg) = pages.next().await {
        let pg = pg.map_err(|e| classify("ListQueues", e))?;
        urls.extend(pg.queue_urls().iter().cloned());
    }
    let mut out = Vec::with_capacity(urls.len());
    for u in &urls {
        if let Some(o) = queue(rc, u).await? {
            out.push(o);
        }
    }
    Ok(out)
}

fn int_attr(attrs: &HashMap<String, String>, k: &str) -> Value {
    attrs
        .get(k)
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(Value::Null, |n| json!(n))
}

pub(crate) async fn queue(rc: &RegionClients, url: &str) -> Res<Option<ObservedResource>> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let sqs = rc.sqs();
    let r = match sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e)
            if matches!(
                error_code(&e),
                Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist")
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(classify("GetQueueAttributes", e)),
    };
    let attrs: HashMap<String, String> = r
        .attributes()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let name = queue_name(url);
    let mut o = ObservedResource::new(ResourceKind::Queue, url);
    o.name = name.to_owned();
    o.state = "active".into();
    o.created_at = attrs
        .get("CreatedTimestamp")
        .and_then(|s| s.parse::<i64>().ok())
        .map(|s| s * 1000);
    let a = &mut o.attributes;
    a.insert(
        "visible_messages".into(),
        int_attr(&attrs, "ApproximateNumberOfMessages"),
    );
    a.insert(
        "in_flight_messages".into(),
        int_attr(&attrs, "ApproximateNumberOfMessagesNotVisible"),
    );
    a.insert(
        "delayed_messages".into(),
        int_attr(&attrs, "ApproximateNumberOfMessagesDelayed"),
    );
    if let Some(target) = attrs
        .get("RedrivePolicy")
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .and_then(|p| p["deadLetterTargetArn"].as_str().map(str::to_owned))
    {
        a.insert("dead_letter_target_arn".into(), json!(target));
    }
    put(a, "arn", attrs.get("QueueArn").map(String::as_str));
    a.insert(
        "fifo".into(),
        json!(attrs.get("FifoQueue").is_some_and(|v| v == "true") || name.ends_with(".fifo")),
    );
    a.insert(
        "visibility_timeout".into(),
        int_attr(&attrs, "VisibilityTimeout"),
    );
    a.insert(
        "retention_seconds".into(),
        int_attr(&attrs, "MessageRetentionPeriod"),
    );
    a.insert("created_time".into(), rfc3339(o.created_at));
    let tags = sqs
        .list_queue_tags()
        .queue_url(url)
        .send()
        .await
        .map_err(|e| classify("ListQueueTags", e))?;
    let tags = tags
        .tags()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    set_tags(&mut o, tags);
    Ok(Some(o))
}

async fn topics(rc: &RegionClients) -> Res<Vec<ObservedResource>> {
    let sns = rc.sns();
    let mut arns = Vec::new();
    let mut pages = sns.list_topics().into_paginator().send();
    while let Some(pg) = pages.next().await {
        let pg = pg.map_err(|e| classify("ListTopics", e))?;
        arns.extend(
            pg.topics()
                .iter()
                .filter_map(|t| t.topic_arn())
                .map(str::to_owned),
        );
    }
    let mut out = Vec::with_capacity(arns.len());
    for arn in &arns {
        let r = match sns.get_topic_attributes().topic_arn(arn).send().await {
            Ok(r) => r,
            Err(e) if error_code(&e) == Some("NotFound") => continue,
            Err(e) => return Err(classify("GetTopicAttributes", e)),
        };
        let attrs: HashMap<String, String> = r
            .attributes()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let mut o = ObservedResource::new(ResourceKind::Topic, arn);
        o.name = arn.rsplit(':').next().unwrap_or(arn).to_owned();
        o.state = "active".into();
        // Counted from the subscriptions themselves: the attributes lag on
        // AWS (eventually consistent) and are always 0 in moto.
        let (mut confirmed, mut pending) = (0i64, 0i64);
        let mut pages = sns
            .list_subscriptions_by_topic()
            .topic_arn(arn)
            .into_paginator()
            .send();
        while let Some(pg) = pages.next().await {
            let pg = pg.map_err(|e| classify("ListSubscriptionsByTopic", e))?;
            for s in pg.subscriptions() {
                match s.subscription_arn() {
                    Some("PendingConfirmation") => pending += 1,
                    Some("Deleted") | None => {}
                    Some(_) => confirmed += 1,
                }
            }
        }
        let a = &mut o.attributes;
        a.insert("subscription_count".into(), json!(confirmed + pending));
        a.insert("subscriptions_confirmed".into(), json!(confirmed));
        a.insert("subscriptions_pending".into(), json!(pending));
        put(
            a,
            "display_name",
            attrs.get("DisplayName").map(String::as_str),
        );
        a.insert(
            "fifo".into(),
            json!(attrs.get("FifoTopic").is_some_and(|v| v == "true")),
        );
        let t = sns
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| classify("ListTagsForResource (SNS)", e))?;
        set_tags(
            &mut o,
            kv_tags(t.tags().iter().map(|t| (Some(t.key()), Some(t.value())))),
        );
        out.push(o);
    }
    Ok(out)
}

// ---------------------------------------------------------------- s3

/// The region of a GetBucketLocation answer: empty means us-east-1, `EU`
/// is the legacy name of eu-west-1.
pub(crate) fn location_region(constraint: Option<&str>) -> String {
    match constraint.unwrap_or_default() {
        "" => "us-east-1".into(),
        "EU" => "eu-west-1".into(),
        r => r.to_owned(),
    }
}

/// The region a bucket lives in, cached per bucket name. `Ok(None)` when the
/// bucket does not exist.
pub(crate) async fn bucket_region(p: &AwsProvider, bucket: &str) -> Res<Option<String>> {
    if let Some(r) = p.bucket_regions.lock().await.get(bucket) {
        return Ok(Some(r.clone()));
    }
    let s3 = p.clients(GLOBAL_CLIENT_REGION).await.s3();
    let r = match s3.get_bucket_location().bucket(bucket).send().await {
        Ok(r) => r,
        Err(e) if error_code(&e) == Some("NoSuchBucket") => return Ok(None),
        Err(e) => return Err(classify("GetBucketLocation", e)),
    };
    let region = location_region(r.location_constraint().map(|c| c.as_str()));
    p.bucket_regions
        .lock()
        .await
        .insert(bucket.to_owned(), region.clone());
    Ok(Some(region))
}

async fn buckets(p: &AwsProvider, rc: &RegionClients) -> Res<Vec<ObservedResource>> {
    let region = rc.conf.region().map(|r| r.to_string()).unwrap_or_default();
    let global = p.clients(GLOBAL_CLIENT_REGION).await.s3();
    let mut all = Vec::new();
    let mut pages = global.list_buckets().into_paginator().send();
    while let Some(pg) = pages.next().await {
        let pg = pg.map_err(|e| classify("ListBuckets", e))?;
        all.extend(pg.buckets().iter().cloned());
    }
    let mut out = Vec::new();
    for b in &all {
        let Some(name) = b.name() else { continue };
        if bucket_region(p, name).await?.as_deref() != Some(region.as_str()) {
            continue;
        }
        out.push(bucket(rc, name, millis(b.creation_date()), &region).await?);
    }
    Ok(out)
}

async fn bucket(
    rc: &RegionClients,
    name: &str,
    created: Option<i64>,
    region: &str,
) -> Res<ObservedResource> {
    let mut o = ObservedResource::new(ResourceKind::Bucket, name);
    o.name = name.to_owned();
    o.state = "active".into();
    o.created_at = created;
    o.attributes.insert("region".into(), json!(region));
    o.attributes
        .insert("created_time".into(), rfc3339(o.created_at));
    let tags = match rc.s3().get_bucket_tagging().bucket(name).send().await {
        Ok(t) => kv_tags(t.tag_set().iter().map(|t| (Some(t.key()), Some(t.value())))),
        Err(e) if error_code(&e) == Some("NoSuchTagSet") => BTreeMap::new(),
        Err(e) => return Err(classify("GetBucketTagging", e)),
    };
    set_tags(&mut o, tags);
    Ok(o)
}

pub(crate) async fn describe_bucket(
    p: &AwsProvider,
    rc: &RegionClients,
    name: &str,
) -> Res<Option<ObservedResource>> {
    let region = rc.conf.region().map(|r| r.to_string()).unwrap_or_default();
    match bucket_region(p, name).await? {
        Some(r) if r == region => {}
        _ => return Ok(None),
    }
    // The creation date is only in ListBuckets.
    let global = p.clients(GLOBAL_CLIENT_REGION).await.s3();
    let mut created = None;
    let mut found = false;
    let mut pages = global.list_buckets().into_paginator().send();
    while let Some(pg) = pages.next().await {
        let pg = pg.map_err(|e| classify("ListBuckets", e))?;
        if let Some(b) = pg.buckets().iter().find(|b| b.name() == Some(name)) {
            created = millis(b.creation_date());
            found = true;
            break;
        }
    }
    if !found {
        p.bucket_regions.lock().await.remove(name);
        return Ok(None);
    }
    Ok(Some(bucket(rc, name, created, &region).await?))
}

// ---------------------------------------------------------------- cloudwatch

pub(crate) async fn alarms(
    rc: &RegionClients,
    page: i32,
    name: Option<&str>,
) -> Res<Vec<ObservedResource>> {
    use aws_sdk_cloudwatch::types::AlarmType;
    let cw = rc.cloudwatch();
    let mut out = Vec::new();
    let mut req = cw
        .describe_alarms()
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .max_records(clamp_page(page, 100));
    if let Some(n) = name {
        req = req.alarm_names(n);
    }
    let mut pages = req.into_paginator().send();
    while let Some(pg) = pages.next().await {
        let pg = pg.map_err(|e| classify("DescribeAlarms", e))?;
        for m in pg.metric_alarms() {
            let arn = m.alarm_arn().unwrap_or_default();
            let mut o = ObservedResource::new(ResourceKind::Alarm, arn);
            o.name = m.alarm_name().unwrap_or_default().to_owned();
            o.state = m
                .state_value()
                .map(|s| s.as_str().to_lowercase())
                .unwrap_or_default();
            o.rtype = "metric".into();
            let a = &mut o.attributes;
            put(a, "metric", m.metric_name());
            put(a, "namespace", m.namespace());
            put(a, "statistic", m.statistic().map(|s| s.as_str()));
            put(a, "extended_statistic", m.extended_statistic());
            if let Some(t) = m.threshold() {
                a.insert("threshold".into(), json!(t));
            }
            put(a, "comparison", m.comparison_operator().map(|c| c.as_str()));
            if let Some(p) = m.period() {
                a.insert("period".into(), json!(p));
            }
            if let Some(p) = m.evaluation_periods() {
                a.insert("evaluation_periods".into(), json!(p));
            }
            let dims: Map<String, Value> = m
                .dimensions()
                .iter()
                .filter_map(|d| Some((d.name()?.to_owned(), json!(d.value()))))
                .collect();
            a.insert("dimensions".into(), Value::Object(dims));
            put(a, "state_reason", m.state_reason());
            a.insert(
                "state_updated".into(),
                rfc3339(millis(m.state_updated_timestamp())),
            );
            a.insert(
                "actions_enabled".into(),
                json!(m.actions_enabled().unwrap_or(false)),
            );
            a.insert(
                "alarm_actions".into(),
                strs(m.alarm_actions().iter().map(String::as_str)),
            );
            put(a, "description", m.alarm_description());
            out.push(o);
        }
        for c in pg.composite_alarms() {
            let arn = c.alarm_arn().unwrap_or_default();
            let mut o = ObservedResource::new(ResourceKind::Alarm, arn);
            o.name = c.alarm_name().unwrap_or_default().to_owned();
            o.state = c
                .state_value()
                .map(|s| s.as_str().to_lowercase())
                .unwrap_or_default();
            o.rtype = "composite".into();
            let a = &mut o.attributes;
            put(a, "alarm_rule", c.alarm_rule());
            put(a, "state_reason", c.state_reason());
            a.insert(
                "state_updated".into(),
                rfc3339(millis(c.state_updated_timestamp())),
            );
            a.insert(
                "actions_enabled".into(),
                json!(c.actions_enabled().unwrap_or(false)),
            );
            a.insert(
                "alarm_actions".into(),
                strs(c.alarm_actions().iter().map(String::as_str)),
            );
            put(a, "description", c.alarm_description());
            out.push(o);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_locations_map_to_regions() {
        assert_eq!(location_region(None), "us-east-1");
        assert_eq!(location_region(Some("")), "us-east-1");
        assert_eq!(location_region(Some("EU")), "eu-west-1");
        assert_eq!(location_region(Some("eu-central-1")), "eu-central-1");
    }

    #[test]
    fn record_ids_carry_the_set_identifier_only_when_present() {
        assert_eq!(
            record_id("Z1", "www.example.com.", "A", None),
            "Z1/www.example.com./A"
        );
        assert_eq!(
            record_id("Z1", "www.example.com.", "A", Some("")),
            "Z1/www.example.com./A"
        );
        assert_eq!(
            record_id("Z1", "www.example.com.", "A", Some("blue")),
            "Z1/www.example.com./A/blue"
        );
        assert_eq!(zone_id("/hostedzone/Z1"), "Z1");
        assert_eq!(zone_id("Z1"), "Z1");
    }

    #[test]
    fn target_group_state_summarises_health() {
        assert_eq!(target_group_state(0, &["healthy"]), "unused");
        assert_eq!(target_group_state(1, &[]), "unused");
        assert_eq!(target_group_state(1, &["healthy", "healthy"]), "healthy");
        assert_eq!(target_group_state(1, &["healthy", "draining"]), "unhealthy");
    }

    #[test]
    fn queue_names_are_the_last_url_part() {
        assert_eq!(
            queue_name("http://127.0.0.1:5000/123456789012/orders.fifo"),
            "orders.fifo"
        );
        assert_eq!(
            host_port(Some("db.local"), Some(5432)).as_deref(),
            Some("db.local:5432")
        );
        assert_eq!(host_port(Some(""), Some(5432)), None);
    }
}
