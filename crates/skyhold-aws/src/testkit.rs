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

    /// The snapshots skyhold took of `of` (an instance or volume id) before
    /// deleting it (tagged `skyhold:final-snapshot-of`).
    pub async fn final_snapshots_of(&self, of: &str) -> Result<Vec<String>, BoxError> {
        let out = self
            .client
            .describe_snapshots()
            .owner_ids("self")
            .filters(
                Filter::builder()
                    .name(format!("tag:{}", crate::lifecycle::FINAL_SNAPSHOT_OF_TAG))
                    .values(of)
                    .build(),
            )
            .send()
            .await?;
        Ok(out
            .snapshots()
            .iter()
            .filter_map(|s| s.snapshot_id().map(str::to_owned))
            .collect())
    }

    /// Sets a tag on an EC2 resource behind skyhold's back.
    pub async fn set_tag(&self, id: &str, key: &str, value: &str) -> Result<(), BoxError> {
        self.client
            .create_tags()
            .resources(id)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await?;
        Ok(())
    }

    /// Whether a volume exists.
    pub async fn volume_exists(&self, id: &str) -> Result<bool, BoxError> {
        let out = self
            .client
            .describe_volumes()
            .filters(Filter::builder().name("volume-id").values(id).build())
            .send()
            .await?;
        Ok(!out.volumes().is_empty())
    }

    /// An instance's state name (`running`, `stopped`, …).
    pub async fn instance_state(&self, id: &str) -> Result<String, BoxError> {
        Ok(self
            .described(id)
            .await?
            .and_then(|i| Some(i.state()?.name()?.as_str().to_owned()))
            .unwrap_or_default())
    }

    /// One instance as DescribeInstances shows it (`None`: not found).
    async fn described(&self, id: &str) -> Result<Option<aws_sdk_ec2::types::Instance>, BoxError> {
        let out = self
            .client
            .describe_instances()
            .instance_ids(id)
            .send()
            .await?;
        Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .cloned())
    }

    /// An instance's tags as the provider stores them.
    pub async fn instance_tags(
        &self,
        id: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, BoxError> {
        let out = self
            .client
            .describe_instances()
            .instance_ids(id)
            .send()
            .await?;
        Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .flat_map(|i| i.tags())
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect())
    }

    /// An instance's user data, decoded.
    pub async fn user_data(&self, id: &str) -> Result<String, BoxError> {
        let out = self
            .client
            .describe_instance_attribute()
            .instance_id(id)
            .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
            .send()
            .await?;
        let b64 = out.user_data().and_then(|u| u.value()).unwrap_or_default();
        let bytes = aws_smithy_types::base64::decode(b64)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The key pair an instance was launched with.
    pub async fn instance_key_name(&self, id: &str) -> Result<String, BoxError> {
        Ok(self
            .described(id)
            .await?
            .and_then(|i| i.key_name().map(str::to_owned))
            .unwrap_or_default())
    }

    /// Gives an instance's first network interface the IPv6 address
    /// `address` (`add` true) or takes it away again.
    pub async fn set_instance_ipv6(
        &self,
        id: &str,
        address: &str,
        add: bool,
    ) -> Result<(), BoxError> {
        let eni = self
            .described(id)
            .await?
            .and_then(|i| {
                i.network_interfaces()
                    .iter()
                    .find_map(|n| n.network_interface_id().map(str::to_owned))
            })
            .ok_or("the instance has no network interface")?;
        if add {
            self.client
                .assign_ipv6_addresses()
                .network_interface_id(eni)
                .ipv6_addresses(address)
                .send()
                .await?;
        } else {
            self.client
                .unassign_ipv6_addresses()
                .network_interface_id(eni)
                .ipv6_addresses(address)
                .send()
                .await?;
        }
        Ok(())
    }

    /// The names of the account's key pairs in this region.
    pub async fn key_pair_names(&self) -> Result<Vec<String>, BoxError> {
        let out = self.client.describe_key_pairs().send().await?;
        Ok(out
            .key_pairs()
            .iter()
            .filter_map(|k| k.key_name().map(str::to_owned))
            .collect())
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

    /// An own image of an instance, named `name`; returns its id.
    pub async fn create_image(&self, instance_id: &str, name: &str) -> Result<String, BoxError> {
        let out = self
            .client
            .create_image()
            .instance_id(instance_id)
            .name(name)
            .send()
            .await?;
        Ok(out.image_id().unwrap_or_default().to_owned())
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

/// One emulator account in one region, with a client for every service
/// skyhold lists. Each helper creates one realistic resource (with the
/// relations skyhold shows) and returns its ids.
#[derive(Clone)]
pub struct Aws {
    pub region: String,
    pub ec2: Ec2,
    pub elb: aws_sdk_elasticloadbalancing::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub rds: aws_sdk_rds::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub elasticache: aws_sdk_elasticache::Client,
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub route53: aws_sdk_route53::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub s3: aws_sdk_s3::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

/// An application load balancer with one HTTP listener forwarding to one
/// target group.
#[derive(Debug, Clone)]
pub struct Alb {
    pub arn: String,
    pub dns_name: String,
    pub target_group_arn: String,
    pub listener_arn: String,
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
}

/// A queue with a dead-letter queue.
#[derive(Debug, Clone)]
pub struct QueuePair {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
}

impl Aws {
    pub async fn connect(endpoint: &str, account_id: &str, region: &str) -> Result<Self, BoxError> {
        let conf = sdk_config(&emulator_account(endpoint, account_id), region).await;
        let s3conf = aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build();
        Ok(Self {
            region: region.to_owned(),
            ec2: Ec2::connect(endpoint, account_id, region).await?,
            elb: aws_sdk_elasticloadbalancing::Client::new(&conf),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&conf),
            autoscaling: aws_sdk_autoscaling::Client::new(&conf),
            rds: aws_sdk_rds::Client::new(&conf),
            dynamodb: aws_sdk_dynamodb::Client::new(&conf),
            elasticache: aws_sdk_elasticache::Client::new(&conf),
            cloudformation: aws_sdk_cloudformation::Client::new(&conf),
            route53: aws_sdk_route53::Client::new(&conf),
            sqs: aws_sdk_sqs::Client::new(&conf),
            sns: aws_sdk_sns::Client::new(&conf),
            s3: aws_sdk_s3::Client::from_conf(s3conf),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&conf),
        })
    }

    /// The default VPC and its default subnets (one per zone).
    pub async fn default_network(&self) -> Result<(String, Vec<String>), BoxError> {
        let vpcs = self
            .ec2
            .client
            .describe_vpcs()
            .filters(Filter::builder().name("is-default").values("true").build())
            .send()
            .await?;
        let vpc_id = vpcs
            .vpcs()
            .first()
            .and_then(|v| v.vpc_id())
            .ok_or("no default VPC")?
            .to_owned();
        let subnets = self
            .ec2
            .client
            .describe_subnets()
            .filters(Filter::builder().name("vpc-id").values(&vpc_id).build())
            .send()
            .await?;
        let mut ids: Vec<(String, String)> = subnets
            .subnets()
            .iter()
            .filter_map(|s| Some((s.availability_zone()?.to_owned(), s.subnet_id()?.to_owned())))
            .collect();
        ids.sort();
        Ok((vpc_id, ids.into_iter().map(|(_, s)| s).collect()))
    }

    /// A classic load balancer (HTTP 80 → 8080) with `instance_ids` registered.
    pub async fn create_classic_lb(
        &self,
        name: &str,
        instance_ids: &[String],
        tags: &[(&str, &str)],
    ) -> Result<String, BoxError> {
        use aws_sdk_elasticloadbalancing::types::{Instance, Listener, Tag};
        let mut req = self
            .elb
            .create_load_balancer()
            .load_balancer_name(name)
            .availability_zones(format!("{}a", self.region))
            .listeners(
                Listener::builder()
                    .protocol("HTTP")
                    .load_balancer_port(80)
                    .instance_protocol("HTTP")
                    .instance_port(8080)
                    .build()?,
            );
        for (k, v) in tags {
            req = req.tags(Tag::builder().key(*k).value(*v).build()?);
        }
        let out = req.send().await?;
        if !instance_ids.is_empty() {
            let mut reg = self
                .elb
                .register_instances_with_load_balancer()
                .load_balancer_name(name);
            for id in instance_ids {
                reg = reg.instances(Instance::builder().instance_id(id).build());
            }
            reg.send().await?;
        }
        Ok(out.dns_name().unwrap_or_default().to_owned())
    }

    /// An ALB in the default VPC: HTTP 80 forwarding to an instance target
    /// group (port 8080) with `instance_ids` registered.
    pub async fn create_alb(
        &self,
        name: &str,
        instance_ids: &[String],
        tags: &[(&str, &str)],
    ) -> Result<Alb, BoxError> {
        use aws_sdk_elasticloadbalancingv2::types::{
            Action, ActionTypeEnum, ProtocolEnum, Tag, TargetDescription, TargetTypeEnum,
        };
        let (vpc_id, subnets) = self.default_network().await?;
        let subnet_ids: Vec<String> = subnets.into_iter().take(2).collect();
        let mut req = self
            .elbv2
            .create_load_balancer()
            .name(name)
            .set_subnets(Some(subnet_ids.clone()));
        for (k, v) in tags {
            req = req.tags(Tag::builder().key(*k).value(*v).build());
        }
        let lb = req.send().await?;
        let lb = lb.load_balancers().first().ok_or("no load balancer made")?;
        let arn = lb.load_balancer_arn().unwrap_or_default().to_owned();
        let tg = self
            .elbv2
            .create_target_group()
            .name(format!("{name}-tg"))
            .protocol(ProtocolEnum::Http)
            .port(8080)
            .vpc_id(&vpc_id)
            .target_type(TargetTypeEnum::Instance)
            .health_check_path("/health")
            .send()
            .await?;
        let tg_arn = tg
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .ok_or("no target group made")?
            .to_owned();
        if !instance_ids.is_empty() {
            let mut reg = self.elbv2.register_targets().target_group_arn(&tg_arn);
            for id in instance_ids {
                reg = reg.targets(TargetDescription::builder().id(id).port(8080).build());
            }
            reg.send().await?;
        }
        let listener = self
            .elbv2
            .create_listener()
            .load_balancer_arn(&arn)
            .protocol(ProtocolEnum::Http)
            .port(80)
            .default_actions(
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .target_group_arn(&tg_arn)
                    .build(),
            )
            .send()
            .await?;
        Ok(Alb {
            arn,
            dns_name: lb.dns_name().unwrap_or_default().to_owned(),
            target_group_arn: tg_arn,
            listener_arn: listener
                .listeners()
                .first()
                .and_then(|l| l.listener_arn())
                .unwrap_or_default()
                .to_owned(),
            vpc_id,
            subnet_ids,
        })
    }

    /// An Auto Scaling group from a launch template (default version),
    /// attached to `target_group_arns`.
    pub async fn create_asg(
        &self,
        name: &str,
        launch_template_id: &str,
        (min, desired, max): (i32, i32, i32),
        target_group_arns: &[String],
    ) -> Result<(), BoxError> {
        use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag};
        self.autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_id(launch_template_id)
                    .version("$Default")
                    .build(),
            )
            .min_size(min)
            .desired_capacity(desired)
            .max_size(max)
            .availability_zones(format!("{}a", self.region))
            .set_target_group_arns(Some(target_group_arns.to_vec()))
            .tags(
                Tag::builder()
                    .key("owner")
                    .value("platform")
                    .propagate_at_launch(true)
                    .build(),
            )
            .send()
            .await?;
        Ok(())
    }

    /// A DB instance's status (`available`, `stopped`, …), `None` once it
    /// is gone.
    pub async fn db_status(&self, id: &str) -> Result<Option<String>, BoxError> {
        let out = self.rds.describe_db_instances().send().await?;
        Ok(out
            .db_instances()
            .iter()
            .find(|d| d.db_instance_identifier() == Some(id))
            .map(|d| d.db_instance_status().unwrap_or_default().to_owned()))
    }

    /// The DB snapshots of a DB instance.
    pub async fn db_snapshots_of(&self, id: &str) -> Result<Vec<String>, BoxError> {
        let out = self
            .rds
            .describe_db_snapshots()
            .db_instance_identifier(id)
            .send()
            .await?;
        Ok(out
            .db_snapshots()
            .iter()
            .filter_map(|s| s.db_snapshot_identifier().map(str::to_owned))
            .collect())
    }

    /// A PostgreSQL DB instance (`db.t3.micro`, `storage_gib` GiB, gp2).
    pub async fn create_db_instance(
        &self,
        id: &str,
        storage_gib: i32,
        tags: &[(&str, &str)],
    ) -> Result<String, BoxError> {
        let mut req = self
            .rds
            .create_db_instance()
            .db_instance_identifier(id)
            .engine("postgres")
            .engine_version("16.3")
            .db_instance_class("db.t3.micro")
            .allocated_storage(storage_gib)
            .storage_type("gp2")
            .master_username("skyhold")
            .master_user_password("not-a-real-password");
        for (k, v) in tags {
            req = req.tags(aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build());
        }
        let out = req.send().await?;
        Ok(out
            .db_instance()
            .and_then(|d| d.db_instance_arn())
            .unwrap_or_default()
            .to_owned())
    }

    /// An on-demand DynamoDB table keyed by `pk` holding `items` items.
    pub async fn create_table(&self, name: &str, items: usize) -> Result<String, BoxError> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
            ScalarAttributeType,
        };
        let out = self
            .dynamodb
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .tags(
                aws_sdk_dynamodb::types::Tag::builder()
                    .key("owner")
                    .value("data")
                    .build()?,
            )
            .send()
            .await?;
        for n in 0..items {
            self.dynamodb
                .put_item()
                .table_name(name)
                .item("pk", AttributeValue::S(format!("item-{n}")))
                .item("body", AttributeValue::S("x".repeat(16)))
                .send()
                .await?;
        }
        Ok(out
            .table_description()
            .and_then(|t| t.table_arn())
            .unwrap_or_default()
            .to_owned())
    }

    /// A one-node Redis cache cluster.
    pub async fn create_cache_cluster(&self, id: &str) -> Result<(), BoxError> {
        self.elasticache
            .create_cache_cluster()
            .cache_cluster_id(id)
            .engine("redis")
            .cache_node_type("cache.t3.micro")
            .num_cache_nodes(1)
            .send()
            .await?;
        Ok(())
    }

    /// A Redis replication group.
    pub async fn create_replication_group(
        &self,
        id: &str,
        description: &str,
    ) -> Result<(), BoxError> {
        self.elasticache
            .create_replication_group()
            .replication_group_id(id)
            .replication_group_description(description)
            .engine("redis")
            .cache_node_type("cache.t3.micro")
            .num_cache_clusters(2)
            .send()
            .await?;
        Ok(())
    }

    /// A stack from `template` with `parameters`; returns its id.
    pub async fn create_stack(
        &self,
        name: &str,
        template: &str,
        parameters: &[(&str, &str)],
    ) -> Result<String, BoxError> {
        let mut req = self
            .cloudformation
            .create_stack()
            .stack_name(name)
            .template_body(template);
        for (k, v) in parameters {
            req = req.parameters(
                aws_sdk_cloudformation::types::Parameter::builder()
                    .parameter_key(*k)
                    .parameter_value(*v)
                    .build(),
            );
        }
        let out = req.send().await?;
        Ok(out.stack_id().unwrap_or_default().to_owned())
    }

    /// Deletes a stack (what it created goes with it).
    pub async fn delete_stack(&self, name: &str) -> Result<(), BoxError> {
        self.cloudformation
            .delete_stack()
            .stack_name(name)
            .send()
            .await?;
        Ok(())
    }

    /// A public hosted zone; returns its id without the `/hostedzone/` prefix.
    pub async fn create_zone(&self, name: &str, comment: &str) -> Result<String, BoxError> {
        let out = self
            .route53
            .create_hosted_zone()
            .name(name)
            .caller_reference(format!("skyhold-{name}"))
            .hosted_zone_config(
                aws_sdk_route53::types::HostedZoneConfig::builder()
                    .comment(comment)
                    .private_zone(false)
                    .build(),
            )
            .send()
            .await?;
        let id = out.hosted_zone().map(|z| z.id()).ok_or("no zone made")?;
        Ok(id.strip_prefix("/hostedzone/").unwrap_or(id).to_owned())
    }

    /// Creates or replaces one plain record set.
    pub async fn upsert_record(
        &self,
        zone_id: &str,
        name: &str,
        rtype: &str,
        ttl: i64,
        values: &[&str],
    ) -> Result<(), BoxError> {
        use aws_sdk_route53::types::{ResourceRecord, ResourceRecordSet, RrType};
        let mut set = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::from(rtype))
            .ttl(ttl);
        for v in values {
            set = set.resource_records(ResourceRecord::builder().value(*v).build()?);
        }
        self.change_record(zone_id, set.build()?).await
    }

    /// Creates or replaces many plain record sets in one change batch.
    pub async fn upsert_records(
        &self,
        zone_id: &str,
        names: &[String],
        rtype: &str,
        values: &[&str],
    ) -> Result<(), BoxError> {
        use aws_sdk_route53::types::{
            Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
        };
        let mut batch = ChangeBatch::builder();
        for name in names {
            let mut set = ResourceRecordSet::builder()
                .name(name)
                .r#type(RrType::from(rtype))
                .ttl(60);
            for v in values {
                set = set.resource_records(ResourceRecord::builder().value(*v).build()?);
            }
            batch = batch.changes(
                Change::builder()
                    .action(ChangeAction::Upsert)
                    .resource_record_set(set.build()?)
                    .build()?,
            );
        }
        self.route53
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch.build()?)
            .send()
            .await?;
        Ok(())
    }

    /// Creates or replaces an alias A record pointing at `dns_name`.
    pub async fn upsert_alias(
        &self,
        zone_id: &str,
        name: &str,
        dns_name: &str,
    ) -> Result<(), BoxError> {
        use aws_sdk_route53::types::{AliasTarget, ResourceRecordSet, RrType};
        let set = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::A)
            .alias_target(
                AliasTarget::builder()
                    .hosted_zone_id("Z35SXDOTRQ7X7K")
                    .dns_name(dns_name)
                    .evaluate_target_health(false)
                    .build()?,
            )
            .build()?;
        self.change_record(zone_id, set).await
    }

    async fn change_record(
        &self,
        zone_id: &str,
        set: aws_sdk_route53::types::ResourceRecordSet,
    ) -> Result<(), BoxError> {
        use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch};
        self.route53
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(
                ChangeBatch::builder()
                    .changes(
                        Change::builder()
                            .action(ChangeAction::Upsert)
                            .resource_record_set(set)
                            .build()?,
                    )
                    .build()?,
            )
            .send()
            .await?;
        Ok(())
    }

    /// A queue whose dead-letter queue is `<name>-dlq` (after 3 receives),
    /// holding `messages` messages.
    pub async fn create_queue_with_dlq(
        &self,
        name: &str,
        messages: usize,
    ) -> Result<QueuePair, BoxError> {
        use aws_sdk_sqs::types::QueueAttributeName;
        let dlq_url = self
            .sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await?
            .queue_url()
            .unwrap_or_default()
            .to_owned();
        let dlq_arn = self.queue_arn(&dlq_url).await?;
        let policy = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"3"}}"#);
        let url = self
            .sqs
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::RedrivePolicy, policy)
            .tags("owner", "orders-team")
            .send()
            .await?
            .queue_url()
            .unwrap_or_default()
            .to_owned();
        for n in 0..messages {
            self.sqs
                .send_message()
                .queue_url(&url)
                .message_body(format!("message {n}"))
                .send()
                .await?;
        }
        let arn = self.queue_arn(&url).await?;
        Ok(QueuePair {
            url,
            arn,
            dlq_url,
            dlq_arn,
        })
    }

    pub async fn queue_arn(&self, url: &str) -> Result<String, BoxError> {
        use aws_sdk_sqs::types::QueueAttributeName;
        let r = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?;
        Ok(r.attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .ok_or("queue has no ARN")?
            .clone())
    }

    /// A topic with a display name, subscribed by each of `queue_arns` (SQS)
    /// and `emails` (which stay pending confirmation).
    pub async fn create_topic(
        &self,
        name: &str,
        display_name: &str,
        queue_arns: &[&str],
        emails: &[&str],
    ) -> Result<String, BoxError> {
        let arn = self
            .sns
            .create_topic()
            .name(name)
            .attributes("DisplayName", display_name)
            .send()
            .await?
            .topic_arn()
            .unwrap_or_default()
            .to_owned();
        for q in queue_arns {
            self.sns
                .subscribe()
                .topic_arn(&arn)
                .protocol("sqs")
                .endpoint(*q)
                .send()
                .await?;
        }
        for e in emails {
            self.sns
                .subscribe()
                .topic_arn(&arn)
                .protocol("email")
                .endpoint(*e)
                .send()
                .await?;
        }
        Ok(arn)
    }

    /// A bucket in this client's region, tagged with `tags`.
    pub async fn create_bucket(&self, name: &str, tags: &[(&str, &str)]) -> Result<(), BoxError> {
        use aws_sdk_s3::types::{
            BucketLocationConstraint, CreateBucketConfiguration, Tag, Tagging,
        };
        let mut req = self.s3.create_bucket().bucket(name);
        if self.region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        req.send().await?;
        if !tags.is_empty() {
            let mut t = Tagging::builder();
            for (k, v) in tags {
                t = t.tag_set(Tag::builder().key(*k).value(*v).build()?);
            }
            self.s3
                .put_bucket_tagging()
                .bucket(name)
                .tagging(t.build()?)
                .send()
                .await?;
        }
        Ok(())
    }

    pub async fn put_object(&self, bucket: &str, key: &str, body: &[u8]) -> Result<(), BoxError> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()))
            .send()
            .await?;
        Ok(())
    }

    /// A CPU alarm on one instance (average > `threshold` % for 2 × 5 min).
    pub async fn create_alarm(
        &self,
        name: &str,
        instance_id: &str,
        threshold: f64,
    ) -> Result<(), BoxError> {
        use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
        self.cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .alarm_description("CPU too high")
            .namespace("AWS/EC2")
            .metric_name("CPUUtilization")
            .statistic(Statistic::Average)
            .period(300)
            .evaluation_periods(2)
            .threshold(threshold)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .dimensions(
                Dimension::builder()
                    .name("InstanceId")
                    .value(instance_id)
                    .build(),
            )
            .actions_enabled(true)
            .send()
            .await?;
        Ok(())
    }

    /// Puts datapoints of an instance's `AWS/EC2` metric (moto makes
    /// none of its own): (time, value) pairs.
    pub async fn put_instance_metric(
        &self,
        instance_id: &str,
        metric: &str,
        points: &[(i64, f64)],
    ) -> Result<(), BoxError> {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
        for chunk in points.chunks(500) {
            let data = chunk
                .iter()
                .map(|(t, v)| {
                    MetricDatum::builder()
                        .metric_name(metric)
                        .dimensions(
                            Dimension::builder()
                                .name("InstanceId")
                                .value(instance_id)
                                .build(),
                        )
                        .timestamp(aws_smithy_types::DateTime::from_millis(*t))
                        .value(*v)
                        .build()
                })
                .collect::<Vec<_>>();
            self.cloudwatch
                .put_metric_data()
                .namespace("AWS/EC2")
                .set_metric_data(Some(data))
                .send()
                .await?;
        }
        Ok(())
    }

    pub async fn set_alarm_state(
        &self,
        name: &str,
        state: &str,
        reason: &str,
    ) -> Result<(), BoxError> {
        self.cloudwatch
            .set_alarm_state()
            .alarm_name(name)
            .state_value(aws_sdk_cloudwatch::types::StateValue::from(state))
            .state_reason(reason)
            .send()
            .await?;
        Ok(())
    }
}

/// A small CloudFormation template: an SQS queue and an SNS topic, named
/// from the `Env` parameter, with the queue URL as an output.
pub const SAMPLE_TEMPLATE: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Description": "skyhold sample: a queue and a topic",
  "Parameters": {
    "Env": {"Type": "String", "Default": "dev"}
  },
  "Resources": {
    "JobsQueue": {
      "Type": "AWS::SQS::Queue",
      "Properties": {"QueueName": {"Fn::Join": ["-", ["jobs", {"Ref": "Env"}]]}}
    },
    "AlertsTopic": {
      "Type": "AWS::SNS::Topic",
      "Properties": {"TopicName": {"Fn::Join": ["-", ["alerts", {"Ref": "Env"}]]}}
    }
  },
  "Outputs": {
    "QueueUrl": {"Description": "The jobs queue", "Value": {"Ref": "JobsQueue"}}
  }
}
"#;
