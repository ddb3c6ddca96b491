//! The relation table: how a detail page finds a resource's relatives
//! within its account (and region, or across regions for global kinds).

use super::App;
use crate::error::AppError;
use skyhold_core::{Resource, ResourceKind};

impl App {
    /// A resource's related resources, grouped by kind in table order.
    pub(super) async fn related(
        &self,
        r: &Resource,
    ) -> Result<Vec<(ResourceKind, Vec<Resource>)>, AppError> {
        let mut related: Vec<(ResourceKind, Vec<Resource>)> = Vec::new();
        for (kind, rel) in relations(r.observed.kind) {
            // Global kinds (DNS) live under their own region and point into
            // every region of the account.
            let region = if kind.is_global() {
                Some(skyhold_core::GLOBAL_REGION)
            } else if r.observed.kind.is_global() {
                None
            } else {
                Some(r.region.as_str())
            };
            let found = match rel {
                Rel::Ids(key) => {
                    let ids = attr_ids(r, key);
                    self.store
                        .resources_by_provider_ids(&r.account, region, Some(kind), &ids)
                        .await?
                }
                Rel::Names(key) => {
                    let names = attr_ids(r, key);
                    self.store
                        .resources_by_names(&r.account, region, kind, &names)
                        .await?
                }
                Rel::MentionId => {
                    let needle =
                        serde_json::Value::String(r.observed.provider_id.clone()).to_string();
                    self.store
                        .resources_mentioning(&r.account, region, kind, &needle)
                        .await?
                }
                Rel::MentionName(key) => {
                    let needle = format!(
                        "{}:{}",
                        serde_json::Value::String(key.to_owned()),
                        serde_json::Value::String(r.observed.name.clone())
                    );
                    self.store
                        .resources_mentioning(&r.account, region, kind, &needle)
                        .await?
                }
                Rel::MentionValues(key) | Rel::MentionedBy(key) => {
                    let values = match rel {
                        Rel::MentionValues(_) => attr_ids(r, key),
                        _ => own_values(r, key),
                    };
                    // DNS names may be written with or without the final dot.
                    let mut needles = Vec::new();
                    for v in values.iter().take(20) {
                        let v = v.trim_end_matches('.');
                        if !v.is_empty() {
                            needles.push(v.to_owned());
                            if matches!(rel, Rel::MentionedBy(_)) {
                                needles.push(format!("{v}."));
                            }
                        }
                    }
                    let mut all = Vec::new();
                    for v in needles {
                        let needle = serde_json::Value::String(v).to_string();
                        all.extend(
                            self.store
                                .resources_mentioning(&r.account, region, kind, &needle)
                                .await?,
                        );
                    }
                    all
                }
                Rel::AnyIds(key) => {
                    let ids = attr_ids(r, key);
                    self.store
                        .resources_by_provider_ids(&r.account, region, None, &ids)
                        .await?
                }
            };
            for x in found.into_iter().filter(|x| x.id != r.id) {
                let k = x.observed.kind;
                match related.iter_mut().find(|(g, _)| *g == k) {
                    Some((_, list)) => {
                        if !list.iter().any(|y| y.id == x.id) {
                            list.push(x);
                        }
                    }
                    None => related.push((k, vec![x])),
                }
            }
        }
        Ok(related)
    }
}

/// How a resource finds its relatives within its account (and region, or
/// across regions for global kinds such as DNS records).
#[derive(Clone, Copy)]
enum Rel {
    /// Provider ids held in one of its attributes (a string, a list of
    /// strings or of objects with an "id" or "physical_id", or an object's
    /// values).
    Ids(&'static str),
    /// Like `Ids`, of any kind (a stack's resources).
    AnyIds(&'static str),
    /// Names held in one of its attributes (key pairs are referenced by name).
    Names(&'static str),
    /// The other kind's resources whose attributes mention this one's id.
    MentionId,
    /// The other kind's resources whose attribute `key` holds this one's name.
    MentionName(&'static str),
    /// The other kind's resources whose attributes mention one of the values
    /// in this one's attribute `key` (a DNS record's addresses).
    MentionValues(&'static str),
    /// The other kind's resources whose attributes mention the value of this
    /// one's column or attribute `key` (the records pointing at an address).
    MentionedBy(&'static str),
}

/// The relation table: both directions of every link a detail page shows.
fn relations(kind: ResourceKind) -> Vec<(ResourceKind, Rel)> {
    use ResourceKind as K;
    let stack = (K::Stack, Rel::MentionId);
    match kind {
        K::Instance => vec![
            (K::Volume, Rel::Ids("volume_ids")),
            (K::SecurityGroup, Rel::Ids("security_groups")),
            (K::Image, Rel::Ids("image_id")),
            (K::Subnet, Rel::Ids("subnet_id")),
            (K::Vpc, Rel::Ids("vpc_id")),
            (K::KeyPair, Rel::Names("key_name")),
            (K::ElasticIp, Rel::MentionId),
            (K::LoadBalancer, Rel::MentionId),
            (K::TargetGroup, Rel::MentionId),
            (K::AutoScalingGroup, Rel::MentionId),
            (K::DnsRecord, Rel::MentionedBy("public_ip")),
            (K::DnsRecord, Rel::MentionedBy("public_dns_name")),
            (K::Alarm, Rel::MentionId),
            stack,
        ],
        K::Volume => vec![
            (K::Instance, Rel::Ids("instance_ids")),
            (K::Snapshot, Rel::MentionId),
            (K::Snapshot, Rel::Ids("snapshot_id")),
            stack,
        ],
        K::Snapshot => vec![
            (K::Volume, Rel::Ids("volume_id")),
            (K::Image, Rel::MentionId),
        ],
        K::Image => vec![
            (K::Snapshot, Rel::Ids("snapshot_ids")),
            (K::Instance, Rel::MentionId),
        ],
        K::SecurityGroup => vec![
            (K::Vpc, Rel::Ids("vpc_id")),
            (K::Instance, Rel::MentionId),
            (K::LoadBalancer, Rel::MentionId),
            (K::DbInstance, Rel::MentionId),
            stack,
        ],
        K::Subnet => vec![
            (K::Vpc, Rel::Ids("vpc_id")),
            (K::Instance, Rel::MentionId),
            (K::LoadBalancer, Rel::MentionId),
            stack,
        ],
        K::Vpc => vec![
            (K::Subnet, Rel::MentionId),
            (K::SecurityGroup, Rel::MentionId),
            (K::Instance, Rel::MentionId),
            (K::LoadBalancer, Rel::MentionId),
            (K::TargetGroup, Rel::MentionId),
            (K::DbInstance, Rel::MentionId),
            stack,
        ],
        K::ElasticIp => vec![
            (K::Instance, Rel::Ids("instance_id")),
            (K::DnsRecord, Rel::MentionedBy("public_ip")),
        ],
        K::KeyPair => vec![(K::Instance, Rel::MentionName("key_name"))],
        K::LaunchTemplate => vec![(K::AutoScalingGroup, Rel::MentionId), stack],
        K::LoadBalancer => vec![
            (K::TargetGroup, Rel::Ids("target_group_arns")),
            (K::Instance, Rel::Ids("instance_ids")),
            (K::SecurityGroup, Rel::Ids("security_groups")),
            (K::Subnet, Rel::Ids("subnet_ids")),
            (K::Vpc, Rel::Ids("vpc_id")),
            (K::AutoScalingGroup, Rel::MentionId),
            (K::DnsRecord, Rel::MentionedBy("dns_name")),
            stack,
        ],
        K::TargetGroup => vec![
            (K::LoadBalancer, Rel::Ids("load_balancer_arns")),
            (K::Instance, Rel::Ids("instance_ids")),
            (K::AutoScalingGroup, Rel::MentionId),
            (K::Vpc, Rel::Ids("vpc_id")),
            stack,
        ],
        K::AutoScalingGroup => vec![
            (K::Instance, Rel::Ids("instance_ids")),
            (K::LaunchTemplate, Rel::Ids("launch_template_id")),
            (K::TargetGroup, Rel::Ids("target_group_arns")),
            (K::LoadBalancer, Rel::Ids("load_balancer_names")),
            stack,
        ],
        K::DbInstance => vec![
            (K::SecurityGroup, Rel::Ids("security_groups")),
            (K::Vpc, Rel::Ids("vpc_id")),
            stack,
        ],
        K::DynamodbTable | K::Topic | K::Bucket => vec![stack],
        K::CacheCluster => vec![
            (K::ReplicationGroup, Rel::Ids("replication_group_id")),
            stack,
        ],
        K::ReplicationGroup => vec![(K::CacheCluster, Rel::Ids("member_clusters")), stack],
        K::Stack => vec![(K::Stack, Rel::AnyIds("resources"))],
        K::HostedZone => vec![(K::DnsRecord, Rel::MentionId)],
        K::DnsRecord => vec![
            (K::HostedZone, Rel::Ids("zone_id")),
            (K::Instance, Rel::MentionValues("values")),
            (K::LoadBalancer, Rel::MentionValues("values")),
            (K::LoadBalancer, Rel::MentionValues("alias_target")),
        ],
        K::Queue => vec![
            (K::Queue, Rel::MentionValues("dead_letter_target_arn")),
            (K::Queue, Rel::MentionedBy("arn")),
            stack,
        ],
        K::Alarm => vec![(K::Instance, Rel::Ids("dimensions"))],
    }
}

/// The ids (or names) an attribute holds.
fn attr_ids(r: &Resource, key: &str) -> Vec<String> {
    let id_of = |v: &serde_json::Value| {
        v.as_str()
            .or_else(|| v.get("id").and_then(|x| x.as_str()))
            .or_else(|| v.get("physical_id").and_then(|x| x.as_str()))
            .map(str::to_owned)
    };
    match r.observed.attributes.get(key) {
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(id_of).collect(),
        Some(serde_json::Value::Object(o)) => o.values().filter_map(id_of).collect(),
        Some(serde_json::Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// This resource's own value for `key`: a column (`public_ip`,
/// `private_ip`) or an attribute.
fn own_values(r: &Resource, key: &str) -> Vec<String> {
    let v = match key {
        "public_ip" => r.observed.public_ip.clone(),
        "private_ip" => r.observed.private_ip.clone(),
        _ => return attr_ids(r, key),
    };
    if v.is_empty() {
        Vec::new()
    } else {
        vec![v]
    }
}
