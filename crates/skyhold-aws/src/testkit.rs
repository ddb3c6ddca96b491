//! Helpers that create resources in an EC2 emulator (moto) through the same
//! SDK, for tests, the benchmark and the demo. Only compiled with the
//! `testkit` feature; never part of the shipped binary.

use crate::{sdk_config, AwsAccount, Credentials};
use aws_sdk_ec2::types::{Filter, InstanceType, ResourceType, Tag, TagSpecification};
use aws_sdk_ec2::Client;
use skyhold_core::Secret;

/// The credentials an emulator account is reached with: a role assumed in
/// that account (moto acts as the account named in the role ARN).
pub fn emulator_account(endpoint: &str, account_id: &str) -> AwsAccount {
    let mut a = AwsAccount::new(Credentials::AssumeRole {
        base: Box::new(Credentials::Static {
            access_key_id: "testing".into(),
            secret_access_key: Secret::new("testing"),
        }),
        role_arn: format!("arn:aws:iam::{account_id}:role/skyhold"),
        external_id: None,
        session_name: "skyhold-test".into(),
        session_duration: None,
    });
    a.endpoint_url = Some(endpoint.to_owned());
    a
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An EC2 client acting as one emulator account in one region.
#[derive(Clone)]
pub struct Ec2 {
    pub client: Client,
    image_id: String,
}

impl Ec2 {
    pub async fn connect(endpoint: &str, account_id: &str, region: &str) -> Result<Self, BoxError> {
        let conf = sdk_config(&emulator_account(endpoint, account_id), region).await;
        let client = Client::new(&conf);
        // A name filter keeps this fast: moto lists ~1,300 amazon images otherwise.
        let images = client
            .describe_images()
            .owners("amazon")
            .filters(
                Filter::builder()
                    .name("name")
                    .values("amzn2-ami-hvm-*-x86_64-gp2")
                    .build(),
            )
            .send()
            .await?;
        let image_id = images
            .images()
            .iter()
            .find_map(|i| i.image_id())
            .ok_or("the emulator offers no amazon images")?
            .to_owned();
        Ok(Self { client, image_id })
    }

    /// Launches `count` instances, `per_reservation` per RunInstances call,
    /// named `{prefix}-{n}`, with the given extra tags. Returns their ids.
    pub async fn launch(
        &self,
        count: usize,
        per_reservation: usize,
        prefix: &str,
        extra_tags: &[(&str, &str)],
    ) -> Result<Vec<String>, BoxError> {
        let mut ids = Vec::with_capacity(count);
        let mut n = 0;
        while n < count {
            let batch = per_reservation.max(1).min(count - n);
            let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
            // One Name per reservation (tags apply to every instance in the call).
            spec = spec.tags(
                Tag::builder()
                    .key("Name")
                    .value(format!("{prefix}-{n}"))
                    .build(),
            );
            for (k, v) in extra_tags {
                spec = spec.tags(Tag::builder().key(*k).value(*v).build());
            }
            let out = self
                .client
                .run_instances()
                .image_id(&self.image_id)
                .instance_type(InstanceType::T3Micro)
                .min_count(batch as i32)
                .max_count(batch as i32)
                .tag_specifications(spec.build())
                .send()
                .await?;
            ids.extend(
                out.instances()
                    .iter()
                    .filter_map(|i| i.instance_id())
                    .map(str::to_owned),
            );
            n += batch;
        }
        Ok(ids)
    }

    pub async fn terminate(&self, ids: &[String]) -> Result<(), BoxError> {
        self.client
            .terminate_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await?;
        Ok(())
    }

    pub async fn stop(&self, ids: &[String]) -> Result<(), BoxError> {
        self.client
            .stop_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await?;
        Ok(())
    }

    pub async fn create_volume(&self, size_gib: i32, name: &str) -> Result<String, BoxError> {
        let az = format!(
            "{}a",
            self.client
                .config()
                .region()
                .map(|r| r.as_ref())
                .unwrap_or("us-east-1")
        );
        let out = self
            .client
            .create_volume()
            .availability_zone(az)
            .size(size_gib)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Volume)
                    .tags(Tag::builder().key("Name").value(name).build())
                    .build(),
            )
            .send()
            .await?;
        Ok(out.volume_id().unwrap_or_default().to_owned())
    }

    pub async fn delete_volume(&self, id: &str) -> Result<(), BoxError> {
        self.client.delete_volume().volume_id(id).send().await?;
        Ok(())
    }

    pub async fn create_snapshot(
        &self,
        volume_id: &str,
        description: &str,
    ) -> Result<String, BoxError> {
        let out = self
            .client
            .create_snapshot()
            .volume_id(volume_id)
            .description(description)
            .send()
            .await?;
        Ok(out.snapshot_id().unwrap_or_default().to_owned())
    }

    /// Allocates an elastic IP and associates it with `instance_id`.
    pub async fn attach_elastic_ip(&self, instance_id: &str) -> Result<String, BoxError> {
        let out = self.client.allocate_address().send().await?;
        let id = out.allocation_id().unwrap_or_default().to_owned();
        self.client
            .associate_address()
            .allocation_id(&id)
            .instance_id(instance_id)
            .send()
            .await?;
        Ok(id)
    }

    /// A VPC with one subnet; returns (vpc id, subnet id).
    pub async fn create_vpc_with_subnet(&self, name: &str) -> Result<(String, String), BoxError> {
        let tags = |rt: ResourceType| {
            TagSpecification::builder()
                .resource_type(rt)
                .tags(Tag::builder().key("Name").value(name).build())
                .build()
        };
        let vpc = self
            .client
            .create_vpc()
            .cidr_block("10.42.0.0/16")
            .tag_specifications(tags(ResourceType::Vpc))
            .send()
            .await?;
        let vpc_id = vpc
            .vpc()
            .and_then(|v| v.vpc_id())
            .unwrap_or_default()
            .to_owned();
        let subnet = self
            .client
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block("10.42.1.0/24")
            .tag_specifications(tags(ResourceType::Subnet))
            .send()
            .await?;
        let subnet_id = subnet
            .subnet()
            .and_then(|s| s.subnet_id())
            .unwrap_or_default()
            .to_owned();
        Ok((vpc_id, subnet_id))
    }

    /// Launches one instance into `subnet_id` with key pair `key_name`.
    pub async fn launch_into(
        &self,
        subnet_id: &str,
        key_name: &str,
        name: &str,
    ) -> Result<String, BoxError> {
        let out = self
            .client
            .run_instances()
            .image_id(&self.image_id)
            .instance_type(InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .subnet_id(subnet_id)
            .key_name(key_name)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(Tag::builder().key("Name").value(name).build())
                    .build(),
            )
            .send()
            .await?;
        Ok(out
            .instances()
            .first()
            .and_then(|i| i.instance_id())
            .unwrap_or_default()
            .to_owned())
    }

    pub async fn create_launch_template(&self, name: &str) -> Result<String, BoxError> {
        let data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
            .image_id(&self.image_id)
            .instance_type(InstanceType::T3Micro)
            .build();
        let out = self
            .client
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(data)
            .send()
            .await?;
        Ok(out
            .launch_template()
            .and_then(|t| t.launch_template_id())
            .unwrap_or_default()
            .to_owned())
    }

    pub async fn create_key_pair(&self, name: &str) -> Result<(), BoxError> {
        self.client.create_key_pair().key_name(name).send().await?;
        Ok(())
    }

    /// A security group in the default VPC with an ssh rule from `cidr`.
    pub async fn create_security_group(&self, name: &str, cidr: &str) -> Result<String, BoxError> {
        let out = self
            .client
            .create_security_group()
            .group_name(name)
            .description(name)
            .send()
            .await?;
        let id = out.group_id().unwrap_or_default().to_owned();
        self.client
            .authorize_security_group_ingress()
            .group_id(&id)
            .ip_protocol("tcp")
            .from_port(22)
            .to_port(22)
            .cidr_ip(cidr)
            .send()
            .await?;
        Ok(id)
    }
}

/// The baseline a sync is measured against: the same paginated listings
/// skyhold makes for one (account, region), with nothing done to the
/// results but counting them. Returns the number of items listed.
pub async fn bare_listing(
    endpoint: &str,
    account_id: &str,
    region: &str,
    page_size: i32,
) -> Result<usize, BoxError> {
    let conf = sdk_config(&emulator_account(endpoint, account_id), region).await;
    let client = Client::new(&conf);
    let mut n = 0;
    let mut pages = client
        .describe_instances()
        .max_results(page_size.clamp(5, 1000))
        .into_paginator()
        .send();
    while let Some(p) = pages.next().await {
        n += p?
            .reservations()
            .iter()
            .map(|r| r.instances().len())
            .sum::<usize>();
    }
    let mut pages = client
        .describe_volumes()
        .max_results(page_size.clamp(5, 500))
        .into_paginator()
        .send();
    while let Some(p) = pages.next().await {
        n += p?.volumes().len();
    }
    let mut pages = client
        .describe_images()
        .owners("self")
        .max_results(page_size.clamp(5, 1000))
        .into_paginator()
        .send();
    while let Some(p) = pages.next().await {
        n += p?.images().len();
    }
    let mut pages = client
        .describe_security_groups()
        .max_results(page_size.clamp(5, 1000))
        .into_paginator()
        .send();
    while let Some(p) = pages.next().await {
        n += p?.security_groups().len();
    }
    n += client.describe_key_pairs().send().await?.key_pairs().len();
    Ok(n)
}
