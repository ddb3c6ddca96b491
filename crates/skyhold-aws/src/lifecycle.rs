//! The end of a resource's life: stopping a DB instance, and deleting any
//! kind that costs money while it exists, with a final snapshot where it
//! holds data (the expiry ladder's last step).

use crate::{classify, invalid, RegionClients};
use skyhold_core::{ActReceipt, ObservedResource, PowerAction, ProviderError, ResourceKind};

/// The tag on a final snapshot naming what it was taken of.
pub(crate) const FINAL_SNAPSHOT_OF_TAG: &str = "skyhold:final-snapshot-of";

fn receipt(id: Option<&str>) -> ActReceipt {
    ActReceipt {
        request_id: id.unwrap_or_default().to_owned(),
    }
}

/// Starts or stops a DB instance.
pub(crate) async fn power_db(
    rc: &RegionClients,
    id: &str,
    action: PowerAction,
) -> Result<ActReceipt, ProviderError> {
    use aws_sdk_rds::operation::RequestId;
    let rds = rc.rds();
    let rid = match action {
        PowerAction::Stop => rds
            .stop_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
            .map_err(|e| classify("StopDBInstance", e))?
            .request_id()
            .map(str::to_owned),
        PowerAction::Start => rds
            .start_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
            .map_err(|e| classify("StartDBInstance", e))?
            .request_id()
            .map(str::to_owned),
        other => {
            return Err(invalid(&format!(
                "{} of a DB instance (start and stop only)",
                other.as_str()
            )))
        }
    };
    Ok(receipt(rid.as_deref()))
}

/// A snapshot of one EBS volume, tagged with what it was taken of.
async fn snapshot_volume(
    rc: &RegionClients,
    volume_id: &str,
    of: &str,
    label: &str,
) -> Result<(), ProviderError> {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    rc.ec2()
        .create_snapshot()
        .volume_id(volume_id)
        .description(format!("skyhold final snapshot of {of} ({label})"))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Snapshot)
                .tags(Tag::builder().key(FINAL_SNAPSHOT_OF_TAG).value(of).build())
                .tags(Tag::builder().key("Name").value(label).build())
                .build(),
        )
        .send()
        .await
        .map_err(|e| classify("CreateSnapshot", e))?;
    Ok(())
}

/// The EBS volumes attached to an instance.
async fn instance_volumes(rc: &RegionClients, id: &str) -> Result<Vec<String>, ProviderError> {
    let out = rc
        .ec2()
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .map_err(|e| classify("DescribeInstances", e))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|m| m.ebs().and_then(|e| e.volume_id()))
        .map(str::to_owned)
        .collect())
}

/// Deletes one resource (see [`skyhold_core::Provider::delete`]).
pub(crate) async fn delete(
    rc: &RegionClients,
    r: &ObservedResource,
    final_snapshot: Option<&str>,
) -> Result<ActReceipt, ProviderError> {
    let id = r.provider_id.as_str();
    if id.is_empty() {
        return Err(invalid("an empty resource id"));
    }
    let rid: Option<String> = match r.kind {
        ResourceKind::Instance => {
            use aws_sdk_ec2::operation::RequestId;
            if let Some(label) = final_snapshot {
                for v in instance_volumes(rc, id).await? {
                    snapshot_volume(rc, &v, id, label).await?;
                }
            }
            rc.ec2()
                .terminate_instances()
                .instance_ids(id)
                .send()
                .await
                .map_err(|e| classify("TerminateInstances", e))?
                .request_id()
                .map(str::to_owned)
        }
        ResourceKind::Volume => {
            use aws_sdk_ec2::operation::RequestId;
            if let Some(label) = final_snapshot {
                snapshot_volume(rc, id, id, label).await?;
            }
            rc.ec2()
                .delete_volume()
                .volume_id(id)
                .send()
                .await
                .map_err(|e| classify("DeleteVolume", e))?
                .request_id()
                .map(str::to_owned)
        }
        ResourceKind::Snapshot => {
            use aws_sdk_ec2::operation::RequestId;
            rc.ec2()
                .delete_snapshot()
                .snapshot_id(id)
                .send()
                .await
                .map_err(|e| classify("DeleteSnapshot", e))?
                .request_id()
                .map(str::to_owned)
        }
        ResourceKind::Image => {
            return crate::launch::deregister_image(rc, id).await;
        }
        ResourceKind::ElasticIp => {
            use aws_sdk_ec2::operation::RequestId;
            let req = rc.ec2().release_address();
            let req = if id.starts_with("eipalloc-") {
                req.allocation_id(id)
            } else {
                req.public_ip(id)
            };
            req.send()
                .await
                .map_err(|e| classify("ReleaseAddress", e))?
                .request_id()
                .map(str::to_owned)
        }
        ResourceKind::LoadBalancer if id.starts_with("arn:") => {
            use aws_sdk_elasticloadbalancingv2::operation::RequestId;
            rc.elbv2()
                .delete_load_balancer()
                .load_balancer_arn(id)
                .send()
                .await
                .map_err(|e| classify("DeleteLoadBalancer", e))?
                .request_id()
                .map(str::to_owned)
        }
        ResourceKind::LoadBalancer => {
            use aws_sdk_elasticloadbalancing::operation::RequestId;
            rc.elb()
                .delete_load_balancer()
                .load_balancer_name(id)
                .send()
                .await
                .map_err(|e| classify("DeleteLoadBalancer (classic)", e))?
                .request_id()
                .map(str::to_owned)
        }
        ResourceKind::DbInstance => {
            use aws_sdk_rds::operation::RequestId;
            let req = rc.rds().delete_db_instance().db_instance_identifier(id);
            let req = match final_snapshot {
                Some(label) => req.final_db_snapshot_identifier(snapshot_identifier(label)),
                None => req.skip_final_snapshot(true),
            };
            req.send()
                .await
                .map_err(|e| classify("DeleteDBInstance", e))?
                .request_id()
                .map(str::to_owned)
        }
        ResourceKind::CacheCluster => {
            use aws_sdk_elasticache::operation::RequestId;
            // Only Redis clusters take a final snapshot; memcached holds
            // nothing to keep.
            let redis = r
                .attributes
                .get("engine")
                .and_then(|v| v.as_str())
                .is_some_and(|e| e.starts_with("redis") || e.starts_with("valkey"));
            let req = rc.elasticache().delete_cache_cluster().cache_cluster_id(id);
            let req = match final_snapshot {
                Some(label) if redis => req.final_snapshot_identifier(snapshot_identifier(label)),
                _ => req,
            };
            req.send()
                .await
                .map_err(|e| classify("DeleteCacheCluster", e))?
                .request_id()
                .map(str::to_owned)
        }
        kind => {
            return Err(ProviderError::new(
                skyhold_core::ProviderErrorKind::NotPermitted,
                format!("deleting a {kind} is not supported"),
            ))
        }
    };
    Ok(receipt(rid.as_deref()))
}

/// A snapshot identifier RDS and ElastiCache accept: letters, digits and
/// hyphens, starting with a letter, no double or trailing hyphen, at most
/// 255 characters.
fn snapshot_identifier(label: &str) -> String {
    let mut out = String::from("skyhold-");
    for c in label.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let mut out: String = out.chars().take(255).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn snapshot_identifiers_are_what_rds_accepts() {
        assert_eq!(
            super::snapshot_identifier("db1 final @ 2026-12-03"),
            "skyhold-db1-final-2026-12-03"
        );
        assert_eq!(super::snapshot_identifier("--"), "skyhold");
    }
}
