//! What skyhold caches: resources as observed from a provider, and as stored.

use crate::{AccountName, Millis, ResourceId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The kinds of resource skyhold knows. The string form is used in the API,
/// the CLI and the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Instance,
    Volume,
    Snapshot,
    Image,
    SecurityGroup,
    KeyPair,
    ElasticIp,
    Vpc,
    Subnet,
    LaunchTemplate,
    LoadBalancer,
    TargetGroup,
    AutoScalingGroup,
    DbInstance,
    DynamodbTable,
    CacheCluster,
    ReplicationGroup,
    Stack,
    HostedZone,
    DnsRecord,
    Queue,
    Topic,
    Bucket,
    Alarm,
}

/// The region name under which global kinds (Route 53) are stored: they are
/// synced once per account, not once per region.
pub const GLOBAL_REGION: &str = "global";

impl ResourceKind {
    pub const ALL: [ResourceKind; 24] = [
        ResourceKind::Instance,
        ResourceKind::Volume,
        ResourceKind::Snapshot,
        ResourceKind::Image,
        ResourceKind::SecurityGroup,
        ResourceKind::KeyPair,
        ResourceKind::ElasticIp,
        ResourceKind::Vpc,
        ResourceKind::Subnet,
        ResourceKind::LaunchTemplate,
        ResourceKind::LoadBalancer,
        ResourceKind::TargetGroup,
        ResourceKind::AutoScalingGroup,
        ResourceKind::DbInstance,
        ResourceKind::DynamodbTable,
        ResourceKind::CacheCluster,
        ResourceKind::ReplicationGroup,
        ResourceKind::Stack,
        ResourceKind::HostedZone,
        ResourceKind::DnsRecord,
        ResourceKind::Queue,
        ResourceKind::Topic,
        ResourceKind::Bucket,
        ResourceKind::Alarm,
    ];

    pub fn as_str(self) -> &'static str {
        self.meta().0
    }

    /// Human label, plural, for pages and tables.
    pub fn label(self) -> &'static str {
        self.meta().1
    }

    /// The service a kind belongs to, for grouping in the navigation.
    pub fn service(self) -> &'static str {
        self.meta().2
    }

    /// (name, label, service)
    fn meta(self) -> (&'static str, &'static str, &'static str) {
        use ResourceKind as K;
        match self {
            K::Instance => ("instance", "Instances", "EC2"),
            K::Volume => ("volume", "Volumes", "EC2"),
            K::Image => ("image", "Images", "EC2"),
            K::SecurityGroup => ("security_group", "Security groups", "EC2"),
            K::KeyPair => ("key_pair", "Key pairs", "EC2"),
            K::Snapshot => ("snapshot", "Snapshots", "EC2"),
            K::ElasticIp => ("elastic_ip", "Elastic IPs", "EC2"),
            K::Vpc => ("vpc", "VPCs", "VPC"),
            K::Subnet => ("subnet", "Subnets", "VPC"),
            K::LaunchTemplate => ("launch_template", "Launch templates", "EC2"),
            K::LoadBalancer => ("load_balancer", "Load balancers", "Load balancing"),
            K::TargetGroup => ("target_group", "Target groups", "Load balancing"),
            K::AutoScalingGroup => ("auto_scaling_group", "Auto Scaling groups", "Auto Scaling"),
            K::DbInstance => ("db_instance", "DB instances", "Databases"),
            K::DynamodbTable => ("dynamodb_table", "DynamoDB tables", "Databases"),
            K::CacheCluster => ("cache_cluster", "Cache clusters", "Databases"),
            K::ReplicationGroup => ("replication_group", "Replication groups", "Databases"),
            K::Stack => ("stack", "Stacks", "CloudFormation"),
            K::HostedZone => ("hosted_zone", "Hosted zones", "DNS"),
            K::DnsRecord => ("dns_record", "DNS records", "DNS"),
            K::Queue => ("queue", "Queues", "Messaging"),
            K::Topic => ("topic", "Topics", "Messaging"),
            K::Bucket => ("bucket", "Buckets", "S3"),
            K::Alarm => ("alarm", "Alarms", "CloudWatch"),
        }
    }

    /// Global kinds are listed once per account (under [`GLOBAL_REGION`]),
    /// not once per region.
    pub fn is_global(self) -> bool {
        matches!(self, ResourceKind::HostedZone | ResourceKind::DnsRecord)
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One resource as a provider listing returned it, already converted to
/// domain terms by the adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedResource {
    pub kind: ResourceKind,
    pub provider_id: String,
    pub name: String,
    pub state: String,
    /// Instance type, volume type, image architecture…: the "type" column.
    pub rtype: String,
    pub owner: String,
    pub private_ip: String,
    pub public_ip: String,
    /// Launch / creation time, if the provider reports one.
    pub created_at: Option<Millis>,
    /// Size in GiB for volumes; 0 elsewhere.
    pub size_gib: i64,
    pub tags: BTreeMap<String, String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl ObservedResource {
    pub fn new(kind: ResourceKind, provider_id: impl Into<String>) -> Self {
        Self {
            kind,
            provider_id: provider_id.into(),
            name: String::new(),
            state: String::new(),
            rtype: String::new(),
            owner: String::new(),
            private_ip: String::new(),
            public_ip: String::new(),
            created_at: None,
            size_gib: 0,
            tags: BTreeMap::new(),
            attributes: serde_json::Map::new(),
        }
    }

    /// Lower-case text that free-text search matches against: name, id,
    /// addresses, DNS names and endpoints, and tag values, in that order,
    /// cut to `SEARCH_TEXT_MAX_BYTES` (the database indexes carry it).
    pub fn search_text(&self) -> String {
        let mut s = String::with_capacity(128);
        for part in [
            &self.name,
            &self.provider_id,
            &self.private_ip,
            &self.public_ip,
        ] {
            if !part.is_empty() {
                s.push_str(part);
                s.push('\n');
            }
        }
        for key in SEARCHED_ATTRIBUTES {
            match self.attributes.get(key) {
                Some(serde_json::Value::String(v)) if !v.is_empty() => {
                    s.push_str(v);
                    s.push('\n');
                }
                Some(serde_json::Value::Array(list)) => {
                    for v in list.iter().filter_map(serde_json::Value::as_str) {
                        s.push_str(v);
                        s.push('\n');
                    }
                }
                _ => {}
            }
        }
        for v in self.tags.values() {
            s.push_str(v);
            s.push('\n');
        }
        let mut s = s.to_lowercase();
        if s.len() > SEARCH_TEXT_MAX_BYTES {
            let mut end = SEARCH_TEXT_MAX_BYTES;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
        }
        s
    }

    /// A stable digest of everything stored for this resource, so a sync can
    /// skip rows that did not change without comparing field by field.
    pub fn fingerprint(&self) -> String {
        // serde_json output of this struct is deterministic: BTreeMap tags and
        // serde_json::Map (ordered by key without the preserve_order feature).
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{:016x}{:08x}", fnv1a64(&json), json.len())
    }
}

/// Attributes that free text also searches: DNS names and endpoints (a
/// record's values, a load balancer's or database's address).
/// The most text free-text search matches per resource. PostgreSQL keeps
/// `search` in B-tree name indexes, whose entries must stay under 2,704
/// bytes with the name beside it; 1,500 bytes is far more than a name, id,
/// addresses and a few dozen tag values need.
pub const SEARCH_TEXT_MAX_BYTES: usize = 1_500;

const SEARCHED_ATTRIBUTES: [&str; 7] = [
    "public_dns_name",
    "private_dns_name",
    "dns_name",
    "endpoint",
    "primary_endpoint",
    "values",
    "alias_target",
];

/// One field that differs between two observations of a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// `state`, `name`, `tags.env`, `attributes.instance_type`, …
    pub field: String,
    pub from: serde_json::Value,
    pub to: serde_json::Value,
}

/// What changed from `old` to `new`: the columns, each tag and each
/// top-level attribute (values that are objects or lists compare whole).
pub fn diff(old: &ObservedResource, new: &ObservedResource) -> Vec<FieldChange> {
    use serde_json::Value;
    let mut out = Vec::new();
    let mut cmp = |field: String, from: Value, to: Value| {
        if from != to {
            out.push(FieldChange { field, from, to });
        }
    };
    let s = |v: &str| Value::String(v.to_owned());
    cmp("name".into(), s(&old.name), s(&new.name));
    cmp("state".into(), s(&old.state), s(&new.state));
    cmp("type".into(), s(&old.rtype), s(&new.rtype));
    cmp("owner".into(), s(&old.owner), s(&new.owner));
    cmp("private_ip".into(), s(&old.private_ip), s(&new.private_ip));
    cmp("public_ip".into(), s(&old.public_ip), s(&new.public_ip));
    cmp("size_gib".into(), old.size_gib.into(), new.size_gib.into());
    let keys: std::collections::BTreeSet<&String> =
        old.tags.keys().chain(new.tags.keys()).collect();
    for k in keys {
        let get = |r: &ObservedResource| r.tags.get(k).map_or(Value::Null, |v| s(v));
        cmp(format!("tags.{k}"), get(old), get(new));
    }
    let keys: std::collections::BTreeSet<&String> =
        old.attributes.keys().chain(new.attributes.keys()).collect();
    // Attributes that mirror a column above are reported once, as the column.
    const MIRRORED: [&str; 5] = [
        "instance_type",
        "private_ip",
        "public_ip",
        "size_gib",
        "volume_type",
    ];
    for k in keys.into_iter().filter(|k| !MIRRORED.contains(&k.as_str())) {
        let get = |r: &ObservedResource| r.attributes.get(k).cloned().unwrap_or(Value::Null);
        cmp(format!("attributes.{k}"), get(old), get(new));
    }
    out
}

fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A cached resource as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Resource {
    pub id: ResourceId,
    pub account: AccountName,
    pub region: String,
    #[serde(flatten)]
    pub observed: ObservedResource,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub deleted_at: Option<Millis>,
}

/// What a user may do. Decided in one place: the authorization function of
/// the application layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Acts on what they own or were granted.
    Member,
    /// Reads the inventory; never acts.
    Viewer,
    /// Reads the inventory and the whole audit log; never acts.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Member, Role::Viewer, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in ResourceKind::ALL {
            assert_eq!(ResourceKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ResourceKind::parse("buckets"), None);
        assert!(ResourceKind::DnsRecord.is_global() && !ResourceKind::Bucket.is_global());
    }

    #[test]
    fn fingerprint_tracks_content() {
        let mut a = ObservedResource::new(ResourceKind::Instance, "i-1");
        a.tags.insert("Name".into(), "web".into());
        let b = a.clone();
        assert_eq!(a.fingerprint(), b.fingerprint());
        a.state = "stopped".into();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn diff_names_each_changed_field() {
        let mut a = ObservedResource::new(ResourceKind::Instance, "i-1");
        a.state = "running".into();
        a.tags.insert("env".into(), "prod".into());
        a.attributes
            .insert("image_id".into(), serde_json::json!("ami-1"));
        let mut b = a.clone();
        assert!(diff(&a, &b).is_empty());
        b.state = "stopped".into();
        b.tags.remove("env");
        b.tags.insert("team".into(), "x".into());
        b.attributes
            .insert("image_id".into(), serde_json::json!("ami-2"));
        let fields: Vec<String> = diff(&a, &b).into_iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            vec!["state", "tags.env", "tags.team", "attributes.image_id"]
        );
        let c = &diff(&a, &b)[0];
        assert_eq!(
            (c.from.as_str(), c.to.as_str()),
            (Some("running"), Some("stopped"))
        );
    }

    #[test]
    fn search_text_is_cut_at_a_character_boundary() {
        let mut a = ObservedResource::new(ResourceKind::Instance, "i-1");
        for i in 0..40 {
            a.tags
                .insert(format!("k{i:02}"), format!("wert-{i}-{}", "ä".repeat(30)));
        }
        let text = a.search_text();
        assert!(text.len() <= SEARCH_TEXT_MAX_BYTES, "{}", text.len());
        assert!(text.len() > SEARCH_TEXT_MAX_BYTES - 4, "{}", text.len());
        assert!(text.starts_with("i-1\n"));
        // The first tags are searchable; the last is beyond the cut.
        assert!(text.contains("wert-0-"));
        assert!(!text.contains("wert-39-"));
    }

    #[test]
    fn search_text_is_lowercase_and_has_tag_values() {
        let mut a = ObservedResource::new(ResourceKind::Instance, "i-ABC");
        a.tags.insert("team".into(), "Payments".into());
        a.attributes.insert(
            "public_dns_name".into(),
            serde_json::json!("EC2-1.Example.com"),
        );
        let mut r = ObservedResource::new(ResourceKind::DnsRecord, "Z1/www/A");
        r.attributes
            .insert("values".into(), serde_json::json!(["203.0.113.9"]));
        let s = a.search_text();
        assert!(s.contains("i-abc") && s.contains("payments") && s.contains("ec2-1.example.com"));
        assert!(r.search_text().contains("203.0.113.9"));
    }
}
