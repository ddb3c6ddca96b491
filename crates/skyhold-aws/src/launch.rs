//! Launching: image lookup, RunInstances with tags on create, and the
//! lookup by launch tag that finds what a lost answer started.

use crate::{classify, convert, invalid, not_found, RegionClients};
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, Image, InstanceType, ResourceType, Tag,
    TagSpecification,
};
use skyhold_core::blueprint::{glob_match, ImageRef};
use skyhold_core::{
    ActReceipt, ImageInfo, NewImage, ObservedResource, ProviderError, ProviderErrorKind, RunSpec,
};

fn info(i: &Image) -> ImageInfo {
    let root = i.root_device_name().unwrap_or_default().to_owned();
    let root_volume_gib = i
        .block_device_mappings()
        .iter()
        .find(|b| b.device_name() == Some(root.as_str()))
        .and_then(|b| b.ebs())
        .and_then(|e| e.volume_size())
        .and_then(|s| u32::try_from(s).ok());
    ImageInfo {
        id: i.image_id().unwrap_or_default().to_owned(),
        name: i.name().unwrap_or_default().to_owned(),
        root_device_name: root,
        root_volume_gib,
        created_at: i
            .creation_date()
            .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
            .map(|d| d.timestamp_millis()),
    }
}

/// The image `image` names (an own image for a pattern: the newest by
/// creation date whose name matches; ties go to the larger id).
pub(crate) async fn image(
    rc: &RegionClients,
    image: &ImageRef,
) -> Result<Option<ImageInfo>, ProviderError> {
    let ec2 = rc.ec2();
    match image {
        ImageRef::Ami(id) => match ec2.describe_images().image_ids(id).send().await {
            Ok(r) => Ok(r
                .images()
                .iter()
                .find(|i| i.image_id() == Some(id.as_str()))
                .map(info)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(classify("DescribeImages", e)),
        },
        ImageRef::NewestMatching(pattern) => {
            // The name filter narrows on the provider's side; the match is
            // checked again here with skyhold's own glob (`*` only).
            let r = ec2
                .describe_images()
                .owners("self")
                .filters(Filter::builder().name("name").values(pattern).build())
                .send()
                .await
                .map_err(|e| classify("DescribeImages", e))?;
            Ok(r.images()
                .iter()
                .filter(|i| glob_match(pattern, i.name().unwrap_or_default()))
                .filter(|i| i.state().is_none_or(|s| s.as_str() == "available"))
                .map(info)
                .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id))))
        }
    }
}

/// One RunInstances call for one instance, with its tags on the instance
/// and its volumes from the start and the launch's ClientToken.
pub(crate) async fn run_instance(
    rc: &RegionClients,
    spec: &RunSpec,
) -> Result<ObservedResource, ProviderError> {
    if spec.image_id.is_empty() || spec.instance_type.is_empty() {
        return Err(invalid("an image and an instance type"));
    }
    if spec.client_token.is_empty() || spec.client_token.len() > 64 {
        return Err(invalid("a client token of 1-64 characters"));
    }
    let tags: Vec<Tag> = spec
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let on = |t: ResourceType| {
        TagSpecification::builder()
            .resource_type(t)
            .set_tags(Some(tags.clone()))
            .build()
    };
    let mut req = rc
        .ec2()
        .run_instances()
        .image_id(&spec.image_id)
        .instance_type(InstanceType::from(spec.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .client_token(&spec.client_token)
        .tag_specifications(on(ResourceType::Instance))
        .tag_specifications(on(ResourceType::Volume))
        .set_security_group_ids(
            (!spec.security_group_ids.is_empty()).then(|| spec.security_group_ids.clone()),
        )
        .set_subnet_id(spec.subnet_id.clone())
        .set_key_name(spec.key_name.clone());
    if !spec.user_data.is_empty() {
        req = req.user_data(aws_smithy_types::base64::encode(spec.user_data.as_bytes()));
    }
    if let Some((device, gib)) = &spec.root_volume {
        req = req.block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(device)
                .ebs(
                    EbsBlockDevice::builder()
                        .volume_size(i32::try_from(*gib).unwrap_or(i32::MAX))
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        );
    }
    let out = req.send().await.map_err(|e| classify("RunInstances", e))?;
    out.instances()
        .first()
        .map(convert::instance)
        .ok_or_else(|| {
            ProviderError::new(
                ProviderErrorKind::Other,
                "RunInstances answered without an instance",
            )
        })
}

/// Live instances whose tag `key` is `value` (every page).
pub(crate) async fn instances_tagged(
    rc: &RegionClients,
    key: &str,
    value: &str,
) -> Result<Vec<ObservedResource>, ProviderError> {
    let mut pages = rc
        .ec2()
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{key}"))
                .values(value)
                .build(),
        )
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(p) = pages.next().await {
        let p = p.map_err(|e| classify("DescribeInstances", e))?;
        out.extend(
            p.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .map(convert::instance)
                .filter(|o| {
                    o.state != "terminated" && o.tags.get(key).map(String::as_str) == Some(value)
                }),
        );
    }
    Ok(out)
}

/// Imports `public_key` as key pair `name` unless a pair of that name
/// exists (the name carries the key's fingerprint, so one of that name is
/// this key). Returns whether it was imported.
pub(crate) async fn ensure_key_pair(
    rc: &RegionClients,
    name: &str,
    public_key: &str,
) -> Result<bool, ProviderError> {
    match rc.ec2().describe_key_pairs().key_names(name).send().await {
        Ok(r) if r.key_pairs().iter().any(|k| k.key_name() == Some(name)) => return Ok(false),
        Ok(_) => {}
        Err(e) if not_found(&e) => {}
        Err(e) => return Err(classify("DescribeKeyPairs", e)),
    }
    let r = rc
        .ec2()
        .import_key_pair()
        .key_name(name)
        .public_key_material(aws_smithy_types::Blob::new(public_key.as_bytes()))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::KeyPair)
                .tags(Tag::builder().key("skyhold:managed").value("true").build())
                .build(),
        )
        .send()
        .await;
    match r {
        Ok(_) => Ok(true),
        // Imported by a concurrent launch in the meantime.
        Err(e) if crate::services::error_code(&e) == Some("InvalidKeyPair.Duplicate") => Ok(false),
        Err(e) => Err(classify("ImportKeyPair", e)),
    }
}

/// CreateImage of one instance, tagged on create (image and snapshots).
pub(crate) async fn create_image(
    rc: &RegionClients,
    instance_id: &str,
    image: &NewImage,
) -> Result<String, ProviderError> {
    if instance_id.is_empty() || image.name.is_empty() {
        return Err(invalid("an instance id and an image name"));
    }
    let tags: Vec<Tag> = image
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    // The image is tagged on create. Its snapshots are tagged right after
    // with CreateTags: EC2 takes a snapshot TagSpecification here too, but
    // moto answers it with NotImplementedError, and the tests run on moto.
    let out = rc
        .ec2()
        .create_image()
        .instance_id(instance_id)
        .name(&image.name)
        .set_description((!image.description.is_empty()).then(|| image.description.clone()))
        .no_reboot(image.no_reboot)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .set_tags(Some(tags.clone()))
                .build(),
        )
        .send()
        .await
        .map_err(|e| classify("CreateImage", e))?;
    let id = out.image_id().map(str::to_owned).ok_or_else(|| {
        ProviderError::new(
            ProviderErrorKind::Other,
            "CreateImage answered without an image id",
        )
    })?;
    if let Err(e) = tag_snapshots(rc, &id, tags).await {
        // The image exists: its snapshots' tags are not worth failing it.
        tracing::warn!(image = %id, error = %e, "tagging the new image's snapshots failed");
    }
    Ok(id)
}

/// Tags the snapshots behind image `id`.
async fn tag_snapshots(rc: &RegionClients, id: &str, tags: Vec<Tag>) -> Result<(), ProviderError> {
    let r = rc
        .ec2()
        .describe_images()
        .image_ids(id)
        .send()
        .await
        .map_err(|e| classify("DescribeImages", e))?;
    let snaps: Vec<String> = r
        .images()
        .iter()
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|b| b.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
        .collect();
    if snaps.is_empty() {
        return Ok(());
    }
    rc.ec2()
        .create_tags()
        .set_resources(Some(snaps))
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| classify("CreateTags", e))?;
    Ok(())
}

/// The own image named `name`, if any.
pub(crate) async fn image_named(
    rc: &RegionClients,
    name: &str,
) -> Result<Option<ObservedResource>, ProviderError> {
    let r = rc
        .ec2()
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("name").values(name).build())
        .send()
        .await
        .map_err(|e| classify("DescribeImages", e))?;
    Ok(r.images()
        .iter()
        .find(|i| i.name() == Some(name))
        .map(convert::image))
}

pub(crate) async fn deregister_image(
    rc: &RegionClients,
    image_id: &str,
) -> Result<ActReceipt, ProviderError> {
    use aws_sdk_ec2::operation::RequestId;
    if image_id.is_empty() {
        return Err(invalid("an empty image id"));
    }
    let out = rc
        .ec2()
        .deregister_image()
        .image_id(image_id)
        .send()
        .await
        .map_err(|e| classify("DeregisterImage", e))?;
    Ok(ActReceipt {
        request_id: out.request_id().unwrap_or_default().to_owned(),
    })
}
