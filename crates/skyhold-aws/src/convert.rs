//! SDK types → domain types. Nothing outside this crate sees an SDK type.

use aws_sdk_ec2::types::{
    Address, Image, Instance, IpPermission, KeyPairInfo, LaunchTemplate, SecurityGroup, Snapshot,
    Subnet, Tag, Volume, Vpc,
};
use aws_smithy_types::DateTime;
use serde_json::{json, Map, Value};
use skyhold_core::{ObservedResource, ResourceKind};
use std::collections::BTreeMap;

fn tags(ts: &[Tag]) -> BTreeMap<String, String> {
    ts.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

fn fill_common(o: &mut ObservedResource, ts: &[Tag]) {
    o.tags = tags(ts);
    if let Some(n) = o.tags.get("Name") {
        o.name = n.clone();
    }
}

/// Sets tags; the `Name` tag names the resource only
/// when it has no name of its own.
pub(crate) fn set_tags(o: &mut ObservedResource, tags: BTreeMap<String, String>) {
    o.tags = tags;
    if o.name.is_empty() {
        if let Some(n) = o.tags.get("Name") {
            o.name = n.clone();
        }
    }
}

/// When a stopped instance was stopped, from its `StateTransitionReason`
/// ("User initiated (2026-01-01 12:00:00 GMT)"), as Unix milliseconds.
/// `None` when the reason carries no such time.
pub(crate) fn stopped_at(reason: &str) -> Option<i64> {
    let start = reason.rfind('(')? + 1;
    let inner = reason[start..].strip_suffix(')')?;
    // AWS writes GMT; moto writes UTC.
    let inner = inner.trim();
    let stamp = inner
        .strip_suffix("GMT")
        .or_else(|| inner.strip_suffix("UTC"))?
        .trim();
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

pub(crate) fn millis(t: Option<&DateTime>) -> Option<i64> {
    t.and_then(|t| t.to_millis().ok())
}

pub(crate) fn rfc3339(ms: Option<i64>) -> Value {
    ms.map(|m| Value::String(skyhold_core::rfc3339(m)))
        .unwrap_or(Value::Null)
}

pub(crate) fn put(attrs: &mut Map<String, Value>, key: &str, v: Option<&str>) {
    if let Some(v) = v.filter(|v| !v.is_empty()) {
        attrs.insert(key.to_owned(), Value::String(v.to_owned()));
    }
}

pub(crate) fn instance(i: &Instance) -> ObservedResource {
    let mut o = ObservedResource::new(ResourceKind::Instance, i.instance_id().unwrap_or_default());
    fill_common(&mut o, i.tags());
    o.state = i
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    o.rtype = i
        .instance_type()
        .map(|t| t.as_str().to_owned())
        .unwrap_or_default();
    o.private_ip = i.private_ip_address().unwrap_or_default().to_owned();
    o.public_ip = i.public_ip_address().unwrap_or_default().to_owned();
    o.created_at = millis(i.launch_time());
    let a = &mut o.attributes;
    put(a, "instance_type", Some(&o.rtype));
    put(a, "private_ip", Some(&o.private_ip));
    put(a, "public_ip", Some(&o.public_ip));
    // The primary IPv6 address, else the first of the first interface
    // that has one (what the DNS reconciler writes as AAAA).
    let ipv6 = i.ipv6_address().or_else(|| {
        i.network_interfaces()
            .iter()
            .flat_map(|n| n.ipv6_addresses())
            .find_map(|x| x.ipv6_address())
    });
    put(a, "ipv6_address", ipv6);
    a.insert("launch_time".into(), rfc3339(o.created_at));
    // When it stopped or terminated, by the provider's clock: the usage
    // ledger closes a running interval there.
    let transition = match o.state.as_str() {
        "stopped" | "stopping" => Some("stopped_at"),
        "terminated" | "shutting-down" => Some("terminated_at"),
        _ => None,
    };
    if let Some(key) = transition {
        if let Some(t) = i.state_transition_reason().and_then(stopped_at) {
            a.insert(key.into(), rfc3339(Some(t)));
        }
    }
    put(
        a,
        "availability_zone",
        i.placement().and_then(|p| p.availability_zone()),
    );
    put(a, "image_id", i.image_id());
    put(a, "key_name", i.key_name());
    put(a, "vpc_id", i.vpc_id());
    put(a, "subnet_id", i.subnet_id());
    put(a, "private_dns_name", i.private_dns_name());
    put(a, "public_dns_name", i.public_dns_name());
    put(a, "architecture", i.architecture().map(|x| x.as_str()));
    put(a, "platform", i.platform_details());
    put(a, "root_device_name", i.root_device_name());
    put(
        a,
        "state_reason",
        i.state_reason().and_then(|r| r.message()),
    );
    put(
        a,
        "iam_instance_profile",
        i.iam_instance_profile().and_then(|p| p.arn()),
    );
    if let Some(m) = i.monitoring().and_then(|m| m.state()) {
        a.insert("monitoring".into(), json!(m.as_str()));
    }
    if let Some(c) = i.cpu_options() {
        if let (Some(cores), Some(threads)) = (c.core_count(), c.threads_per_core()) {
            a.insert("vcpus".into(), json!(cores * threads));
        }
    }
    let groups: Vec<Value> = i
        .security_groups()
        .iter()
        .map(|g| json!({"id": g.group_id(), "name": g.group_name()}))
        .collect();
    a.insert("security_groups".into(), Value::Array(groups));
    let mut volume_ids = Vec::new();
    let devices: Vec<Value> = i
        .block_device_mappings()
        .iter()
        .map(|b| {
            let vol = b.ebs().and_then(|e| e.volume_id());
            if let Some(v) = vol {
                volume_ids.push(json!(v));
            }
            json!({"device": b.device_name(), "volume_id": vol})
        })
        .collect();
    a.insert("block_devices".into(), Value::Array(devices));
    a.insert("volume_ids".into(), Value::Array(volume_ids));
    o
}

pub(crate) fn volume(v: &Volume) -> ObservedResource {
    let mut o = ObservedResource::new(ResourceKind::Volume, v.volume_id().unwrap_or_default());
    fill_common(&mut o, v.tags());
    o.state = v.state().map(|s| s.as_str().to_owned()).unwrap_or_default();
    o.rtype = v
        .volume_type()
        .map(|t| t.as_str().to_owned())
        .unwrap_or_default();
    o.size_gib = i64::from(v.size().unwrap_or(0));
    o.created_at = millis(v.create_time());
    let a = &mut o.attributes;
    a.insert("size_gib".into(), json!(o.size_gib));
    put(a, "volume_type", Some(&o.rtype));
    a.insert("create_time".into(), rfc3339(o.created_at));
    put(a, "availability_zone", v.availability_zone());
    put(a, "snapshot_id", v.snapshot_id());
    if let Some(iops) = v.iops() {
        a.insert("iops".into(), json!(iops));
    }
    if let Some(e) = v.encrypted() {
        a.insert("encrypted".into(), json!(e));
    }
    let att: Vec<Value> = v
        .attachments()
        .iter()
        .map(|x| json!({"instance_id": x.instance_id(), "device": x.device(), "state": x.state().map(|s| s.as_str())}))
        .collect();
    let instance_ids: Vec<Value> = v
        .attachments()
        .iter()
        .filter_map(|x| x.instance_id())
        .map(|s| json!(s))
        .collect();
    a.insert("attachments".into(), Value::Array(att));
    a.insert("instance_ids".into(), Value::Array(instance_ids));
    o
}

pub(crate) fn image(i: &Image) -> ObservedResource {
    let mut o = ObservedResource::new(ResourceKind::Image, i.image_id().unwrap_or_default());
    fill_common(&mut o, i.tags());
    if o.name.is_empty() {
        o.name = i.name().unwrap_or_default().to_owned();
    }
    o.state = i.state().map(|s| s.as_str().to_owned()).unwrap_or_default();
    o.rtype = i
        .architecture()
        .map(|x| x.as_str().to_owned())
        .unwrap_or_default();
    o.created_at = i
        .creation_date()
        .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
        .map(|d| d.timestamp_millis());
    let a = &mut o.attributes;
    put(a, "image_name", i.name());
    put(a, "description", i.description());
    put(a, "architecture", Some(&o.rtype));
    put(a, "creation_date", i.creation_date());
    put(
        a,
        "root_device_type",
        i.root_device_type().map(|x| x.as_str()),
    );
    put(
        a,
        "virtualization_type",
        i.virtualization_type().map(|x| x.as_str()),
    );
    put(a, "platform", i.platform_details());
    if let Some(p) = i.public() {
        a.insert("public".into(), json!(p));
    }
    let snaps: Vec<Value> = i
        .block_device_mappings()
        .iter()
        .filter_map(|b| b.ebs().and_then(|e| e.snapshot_id()))
        .map(|s| json!(s))
        .collect();
    a.insert("snapshot_ids".into(), Value::Array(snaps));
    o
}

fn rules(perms: &[IpPermission]) -> Value {
    Value::Array(
        perms
            .iter()
            .map(|p| {
                let proto = match p.ip_protocol() {
                    Some("-1") | None => "all",
                    Some(x) => x,
                };
                let mut sources: Vec<String> = p
                    .ip_ranges()
                    .iter()
                    .filter_map(|r| r.cidr_ip())
                    .map(str::to_owned)
                    .collect();
                sources.extend(
                    p.ipv6_ranges()
                        .iter()
                        .filter_map(|r| r.cidr_ipv6())
                        .map(str::to_owned),
                );
                sources.extend(
                    p.user_id_group_pairs()
                        .iter()
                        .filter_map(|g| g.group_id())
                        .map(str::to_owned),
                );
                sources.extend(
                    p.prefix_list_ids()
                        .iter()
                        .filter_map(|g| g.prefix_list_id())
                        .map(str::to_owned),
                );
                json!({
                    "protocol": proto,
                    "from_port": p.from_port(),
                    "to_port": p.to_port(),
                    "sources": sources,
                })
            })
            .collect(),
    )
}

pub(crate) fn security_group(g: &SecurityGroup) -> ObservedResource {
    let mut o = ObservedResource::new(
        ResourceKind::SecurityGroup,
        g.group_id().unwrap_or_default(),
    );
    fill_common(&mut o, g.tags());
    if o.name.is_empty() {
        o.name = g.group_name().unwrap_or_default().to_owned();
    }
    o.state = "available".to_owned();
    let a = &mut o.attributes;
    put(a, "group_name", g.group_name());
    put(a, "description", g.description());
    put(a, "vpc_id", g.vpc_id());
    a.insert("ingress".into(), rules(g.ip_permissions()));
    a.insert("egress".into(), rules(g.ip_permissions_egress()));
    o
}

pub(crate) fn key_pair(k: &KeyPairInfo) -> ObservedResource {
    let id = k.key_pair_id().or(k.key_name()).unwrap_or_default();
    let mut o = ObservedResource::new(ResourceKind::KeyPair, id);
    fill_common(&mut o, k.tags());
    if o.name.is_empty() {
        o.name = k.key_name().unwrap_or_default().to_owned();
    }
    o.state = "available".to_owned();
    o.rtype = k
        .key_type()
        .map(|t| t.as_str().to_owned())
        .unwrap_or_default();
    o.created_at = millis(k.create_time());
    let a = &mut o.attributes;
    put(a, "key_name", k.key_name());
    put(a, "fingerprint", k.key_fingerprint());
    put(a, "key_type", Some(&o.rtype));
    a.insert("create_time".into(), rfc3339(o.created_at));
    o
}

pub(crate) fn snapshot(x: &Snapshot) -> ObservedResource {
    let mut o = ObservedResource::new(ResourceKind::Snapshot, x.snapshot_id().unwrap_or_default());
    fill_common(&mut o, x.tags());
    o.state = x.state().map(|s| s.as_str().to_owned()).unwrap_or_default();
    o.rtype = x
        .storage_tier()
        .map(|t| t.as_str().to_owned())
        .unwrap_or_default();
    o.size_gib = i64::from(x.volume_size().unwrap_or(0));
    o.created_at = millis(x.start_time());
    let a = &mut o.attributes;
    put(a, "volume_id", x.volume_id());
    a.insert("volume_size_gib".into(), json!(o.size_gib));
    put(a, "description", x.description());
    put(a, "progress", x.progress());
    a.insert("start_time".into(), rfc3339(o.created_at));
    if let Some(e) = x.encrypted() {
        a.insert("encrypted".into(), json!(e));
    }
    o
}

pub(crate) fn elastic_ip(x: &Address) -> ObservedResource {
    let id = x.allocation_id().or(x.public_ip()).unwrap_or_default();
    let mut o = ObservedResource::new(ResourceKind::ElasticIp, id);
    fill_common(&mut o, x.tags());
    o.public_ip = x.public_ip().unwrap_or_default().to_owned();
    o.private_ip = x.private_ip_address().unwrap_or_default().to_owned();
    if o.name.is_empty() {
        o.name = o.public_ip.clone();
    }
    let linked = |v: Option<&str>| v.is_some_and(|v| !v.is_empty());
    o.state = if linked(x.association_id()) || linked(x.instance_id()) {
        "associated"
    } else {
        "unassociated"
    }
    .to_owned();
    o.rtype = x
        .domain()
        .map(|d| d.as_str().to_owned())
        .unwrap_or_default();
    let a = &mut o.attributes;
    put(a, "public_ip", x.public_ip());
    put(a, "private_ip", x.private_ip_address());
    put(a, "instance_id", x.instance_id());
    put(a, "allocation_id", x.allocation_id());
    put(a, "association_id", x.association_id());
    put(a, "network_interface_id", x.network_interface_id());
    put(a, "domain", Some(&o.rtype));
    o
}

pub(crate) fn vpc(x: &Vpc) -> ObservedResource {
    let mut o = ObservedResource::new(ResourceKind::Vpc, x.vpc_id().unwrap_or_default());
    fill_common(&mut o, x.tags());
    o.state = x.state().map(|s| s.as_str().to_owned()).unwrap_or_default();
    let a = &mut o.attributes;
    put(a, "cidr_block", x.cidr_block());
    if let Some(d) = x.is_default() {
        a.insert("is_default".into(), json!(d));
    }
    put(a, "dhcp_options_id", x.dhcp_options_id());
    put(
        a,
        "instance_tenancy",
        x.instance_tenancy().map(|t| t.as_str()),
    );
    o
}

pub(crate) fn subnet(x: &Subnet) -> ObservedResource {
    let mut o = ObservedResource::new(ResourceKind::Subnet, x.subnet_id().unwrap_or_default());
    fill_common(&mut o, x.tags());
    o.state = x.state().map(|s| s.as_str().to_owned()).unwrap_or_default();
    let a = &mut o.attributes;
    put(a, "vpc_id", x.vpc_id());
    put(a, "cidr_block", x.cidr_block());
    put(a, "availability_zone", x.availability_zone());
    if let Some(n) = x.available_ip_address_count() {
        a.insert("available_ip_address_count".into(), json!(n));
    }
    if let Some(m) = x.map_public_ip_on_launch() {
        a.insert("map_public_ip_on_launch".into(), json!(m));
    }
    if let Some(d) = x.default_for_az() {
        a.insert("default_for_az".into(), json!(d));
    }
    o
}

pub(crate) fn launch_template(x: &LaunchTemplate) -> ObservedResource {
    let mut o = ObservedResource::new(
        ResourceKind::LaunchTemplate,
        x.launch_template_id().unwrap_or_default(),
    );
    fill_common(&mut o, x.tags());
    if o.name.is_empty() {
        o.name = x.launch_template_name().unwrap_or_default().to_owned();
    }
    o.state = "available".to_owned();
    o.created_at = millis(x.create_time());
    let a = &mut o.attributes;
    put(a, "launch_template_name", x.launch_template_name());
    if let Some(v) = x.default_version_number() {
        a.insert("default_version".into(), json!(v));
    }
    if let Some(v) = x.latest_version_number() {
        a.insert("latest_version".into(), json!(v));
    }
    put(a, "created_by", x.created_by());
    a.insert("create_time".into(), rfc3339(o.created_at));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopped_at_is_parsed_from_the_transition_reason() {
        let t = stopped_at("User initiated (2026-01-01 12:00:00 GMT)").unwrap();
        assert_eq!(skyhold_core::rfc3339(t), "2026-01-01T12:00:00Z");
        let t = stopped_at("Server.ScheduledStop (2025-12-31 23:59:59 GMT)").unwrap();
        assert_eq!(skyhold_core::rfc3339(t), "2025-12-31T23:59:59Z");
        let t = stopped_at("User initiated (2026-03-04 05:06:07 UTC)").unwrap();
        assert_eq!(skyhold_core::rfc3339(t), "2026-03-04T05:06:07Z");
        assert_eq!(stopped_at("User initiated"), None);
        assert_eq!(stopped_at(""), None);
        assert_eq!(stopped_at("User initiated (yesterday GMT)"), None);
        assert_eq!(stopped_at("User initiated (2026-01-01 12:00:00)"), None);
    }

    #[test]
    fn name_tag_names_only_unnamed_resources() {
        let tags: BTreeMap<String, String> = [("Name", "tagged"), ("owner", "alice")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut o = ObservedResource::new(ResourceKind::Queue, "q");
        o.name = "orders".into();
        set_tags(&mut o, tags.clone());
        assert_eq!(o.name.as_str(), "orders");
        let mut o = ObservedResource::new(ResourceKind::Queue, "q");
        set_tags(&mut o, tags);
        assert_eq!(o.name, "tagged");
    }
}
