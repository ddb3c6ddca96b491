//! Route 53 records of launched servers: the zone a blueprint names, a
//! name already in it, and the UPSERT/DELETE of one A or AAAA record.

use crate::services::{all_zones, zone_id};
use crate::{classify, GLOBAL_CLIENT_REGION};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use skyhold_core::{ProviderError, ProviderErrorKind};

/// Names compare without the trailing dot and case.
fn norm(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The hosted zone `zone` names (an id, `/hostedzone/…`, or a domain):
/// `(id, name)`.
pub(crate) async fn hosted_zone(
    p: &crate::AwsProvider,
    zone: &str,
) -> Result<Option<(String, String)>, ProviderError> {
    let rc = p.clients(GLOBAL_CLIENT_REGION).await;
    let want = norm(zone);
    let id = zone_id(zone);
    Ok(all_zones(&rc)
        .await?
        .iter()
        .find(|z| zone_id(z.id()) == id || norm(z.name()) == want)
        .map(|z| (zone_id(z.id()).to_owned(), norm(z.name()))))
}

/// Whether the zone has any record named `name`.
pub(crate) async fn record_exists(
    p: &crate::AwsProvider,
    zone: &str,
    name: &str,
) -> Result<bool, ProviderError> {
    let rc = p.clients(GLOBAL_CLIENT_REGION).await;
    let r = rc
        .route53()
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .max_items(1)
        .send()
        .await
        .map_err(|e| classify("ListResourceRecordSets", e))?;
    Ok(r.resource_record_sets()
        .iter()
        .any(|s| norm(s.name()) == norm(name)))
}

/// UPSERTs (`delete` false) or DELETEs one record of one value.
pub(crate) async fn change_record(
    p: &crate::AwsProvider,
    zone: &str,
    name: &str,
    rtype: &str,
    value: &str,
    ttl: i64,
    delete: bool,
) -> Result<(), ProviderError> {
    let rc = p.clients(GLOBAL_CLIENT_REGION).await;
    let bad = |m: String| ProviderError::new(ProviderErrorKind::Other, m);
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::from(rtype))
        .ttl(ttl)
        .resource_records(
            ResourceRecord::builder()
                .value(value)
                .build()
                .map_err(|e| bad(e.to_string()))?,
        )
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let change = Change::builder()
        .action(if delete {
            ChangeAction::Delete
        } else {
            ChangeAction::Upsert
        })
        .resource_record_set(set)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let r = rc
        .route53()
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .comment("skyhold")
                .changes(change)
                .build()
                .map_err(|e| bad(e.to_string()))?,
        )
        .send()
        .await;
    match r {
        Ok(_) => Ok(()),
        // Deleting what is gone already is done.
        Err(e) if delete && crate::services::error_code(&e) == Some("InvalidChangeBatch") => Ok(()),
        Err(e) => Err(classify("ChangeResourceRecordSets", e)),
    }
}
