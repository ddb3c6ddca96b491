//! The AWS adapter: the only part of skyhold that imports `aws-sdk-*`.
//!
//! It turns an account's configuration into SDK clients (default chain,
//! profile, static keys, or an assumed role), follows every page of every
//! listing, and converts SDK types into [`ObservedResource`]s at the seam.
//! SDK errors become [`ProviderError`]s classified as throttling, denial,
//! unreachable endpoint or other.

mod convert;
mod dns;
mod launch;
mod lifecycle;
mod services;
#[cfg(feature = "testkit")]
pub mod testkit;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use skyhold_core::GLOBAL_REGION;
use skyhold_core::{
    ActReceipt, AlarmHistoryItem, BucketObject, ImageInfo, ObjectPage, ObservedResource,
    PowerAction, Provider, ProviderError, ProviderErrorKind, ResourceKind, RunSpec, Secret,
};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Mutex;

/// How an account authenticates. Secrets are held in [`Secret`]s.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// The SDK's default chain: environment, shared profile, SSO, IMDS.
    DefaultChain,
    /// A named profile from the shared config/credentials files.
    Profile(String),
    /// Static access keys.
    Static {
        access_key_id: String,
        secret_access_key: Secret,
    },
    /// A role assumed from base credentials.
    AssumeRole {
        base: Box<Credentials>,
        role_arn: String,
        external_id: Option<Secret>,
        session_name: String,
        session_duration: Option<Duration>,
    },
}

#[derive(Debug, Clone)]
pub struct AwsAccount {
    pub credentials: Credentials,
    /// An EC2-compatible endpoint instead of AWS's (used for emulators).
    pub endpoint_url: Option<String>,
    /// Page size asked of paginated calls (clamped to what each API allows).
    pub page_size: i32,
    /// Attempts per call, including the first (SDK standard retry with backoff).
    pub max_attempts: u32,
}

impl AwsAccount {
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            endpoint_url: None,
            page_size: 1000,
            max_attempts: 3,
        }
    }
}

/// The SDK clients of one account in one region, each built on first use
/// from the same [`SdkConfig`] (credentials, retries, timeouts, endpoint).
pub(crate) struct RegionClients {
    conf: SdkConfig,
    path_style: bool,
    ec2: OnceLock<aws_sdk_ec2::Client>,
    elb: OnceLock<aws_sdk_elasticloadbalancing::Client>,
    elbv2: OnceLock<aws_sdk_elasticloadbalancingv2::Client>,
    autoscaling: OnceLock<aws_sdk_autoscaling::Client>,
    rds: OnceLock<aws_sdk_rds::Client>,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    elasticache: OnceLock<aws_sdk_elasticache::Client>,
    cloudformation: OnceLock<aws_sdk_cloudformation::Client>,
    route53: OnceLock<aws_sdk_route53::Client>,
    sqs: OnceLock<aws_sdk_sqs::Client>,
    sns: OnceLock<aws_sdk_sns::Client>,
    s3: OnceLock<aws_sdk_s3::Client>,
    cloudwatch: OnceLock<aws_sdk_cloudwatch::Client>,
}

macro_rules! lazy_client {
    ($($name:ident: $krate:ident),* $(,)?) => {
        impl RegionClients {
            $(pub(crate) fn $name(&self) -> $krate::Client {
                self.$name.get_or_init(|| $krate::Client::new(&self.conf)).clone()
            })*
        }
    };
}

lazy_client!(
    ec2: aws_sdk_ec2,
    elb: aws_sdk_elasticloadbalancing,
    elbv2: aws_sdk_elasticloadbalancingv2,
    autoscaling: aws_sdk_autoscaling,
    rds: aws_sdk_rds,
    dynamodb: aws_sdk_dynamodb,
    elasticache: aws_sdk_elasticache,
    cloudformation: aws_sdk_cloudformation,
    route53: aws_sdk_route53,
    sqs: aws_sdk_sqs,
    sns: aws_sdk_sns,
    cloudwatch: aws_sdk_cloudwatch,
);

impl RegionClients {
    fn new(conf: SdkConfig, path_style: bool) -> Self {
        Self {
            conf,
            path_style,
            ec2: OnceLock::new(),
            elb: OnceLock::new(),
            elbv2: OnceLock::new(),
            autoscaling: OnceLock::new(),
            rds: OnceLock::new(),
            dynamodb: OnceLock::new(),
            elasticache: OnceLock::new(),
            cloudformation: OnceLock::new(),
            route53: OnceLock::new(),
            sqs: OnceLock::new(),
            sns: OnceLock::new(),
            s3: OnceLock::new(),
            cloudwatch: OnceLock::new(),
        }
    }

    /// S3 addresses buckets by path (`endpoint/bucket/key`) when an endpoint
    /// is configured: emulators on loopback have no per-bucket host names.
    pub(crate) fn s3(&self) -> aws_sdk_s3::Client {
        self.s3
            .get_or_init(|| {
                let conf = aws_sdk_s3::config::Builder::from(&self.conf)
                    .force_path_style(self.path_style)
                    .build();
                aws_sdk_s3::Client::from_conf(conf)
            })
            .clone()
    }
}

/// One AWS account. Builds the clients of a region on first use.
pub struct AwsProvider {
    pub(crate) account: AwsAccount,
    regions: Mutex<HashMap<String, Arc<RegionClients>>>,
    /// Bucket name → the region it lives in (GetBucketLocation), which never
    /// changes for a bucket name while the bucket exists.
    pub(crate) bucket_regions: Mutex<HashMap<String, String>>,
}

impl AwsProvider {
    pub fn new(account: AwsAccount) -> Self {
        Self {
            account,
            regions: Mutex::new(HashMap::new()),
            bucket_regions: Mutex::new(HashMap::new()),
        }
    }

    /// The clients for `region`; global kinds use us-east-1.
    pub(crate) async fn clients(&self, region: &str) -> Arc<RegionClients> {
        let region = if region == GLOBAL_REGION {
            GLOBAL_CLIENT_REGION
        } else {
            region
        };
        let mut regions = self.regions.lock().await;
        if let Some(c) = regions.get(region) {
            return c.clone();
        }
        let conf = sdk_config(&self.account, region).await;
        let c = Arc::new(RegionClients::new(
            conf,
            self.account.endpoint_url.is_some(),
        ));
        regions.insert(region.to_owned(), c.clone());
        c
    }
}

/// Where calls for global services (Route 53, S3 bucket listing) are sent.
pub(crate) const GLOBAL_CLIENT_REGION: &str = "us-east-1";

fn base_loader(account: &AwsAccount, region: &str) -> aws_config::ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .retry_config(RetryConfig::standard().with_max_attempts(account.max_attempts.max(1)))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(60))
                .operation_timeout(Duration::from_secs(300))
                .build(),
        );
    if let Some(url) = &account.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader
}

/// The SDK configuration for one account in one region.
pub async fn sdk_config(account: &AwsAccount, region: &str) -> SdkConfig {
    with_credentials(
        base_loader(account, region),
        &account.credentials,
        account,
        region,
    )
    .await
}

fn with_credentials<'a>(
    loader: aws_config::ConfigLoader,
    creds: &'a Credentials,
    account: &'a AwsAccount,
    region: &'a str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = SdkConfig> + Send + 'a>> {
    Box::pin(async move {
        match creds {
            Credentials::DefaultChain => loader.load().await,
            Credentials::Profile(p) => loader.profile_name(p).load().await,
            Credentials::Static {
                access_key_id,
                secret_access_key,
            } => {
                let c = aws_sdk_ec2::config::Credentials::new(
                    access_key_id,
                    secret_access_key.expose(),
                    None,
                    None,
                    "skyhold-config",
                );
                loader.credentials_provider(c).load().await
            }
            Credentials::AssumeRole {
                base,
                role_arn,
                external_id,
                session_name,
                session_duration,
            } => {
                let base_conf =
                    with_credentials(base_loader(account, region), base, account, region).await;
                let mut b = aws_config::sts::AssumeRoleProvider::builder(role_arn)
                    .session_name(session_name)
                    .region(Region::new(region.to_owned()))
                    .configure(&base_conf);
                if let Some(id) = external_id {
                    b = b.external_id(id.expose());
                }
                if let Some(d) = session_duration {
                    b = b.session_length(*d);
                }
                loader.credentials_provider(b.build().await).load().await
            }
        }
    })
}

/// Classifies an SDK error at the seam.
pub(crate) fn classify<E, R>(op: &str, e: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let kind = match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => ProviderErrorKind::Unreachable,
        SdkError::ServiceError(se) => classify_code(se.err().code().unwrap_or_default()),
        _ => ProviderErrorKind::Other,
    };
    let message = match &e {
        SdkError::ServiceError(se) => format!(
            "{op}: {}: {}",
            se.err().code().unwrap_or("Error"),
            se.err().message().unwrap_or("no message")
        ),
        _ => format!("{op}: {}", DisplayErrorContext(&e)),
    };
    ProviderError::new(kind, message)
}

fn classify_code(code: &str) -> ProviderErrorKind {
    match code {
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "RequestThrottled"
        | "SlowDown" => ProviderErrorKind::Throttled,
        "UnauthorizedOperation"
        | "AccessDenied"
        | "AccessDeniedException"
        | "AuthFailure"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "OptInRequired" => ProviderErrorKind::Denied,
        "IncorrectInstanceState" | "IncorrectState" | "InvalidInstanceState" => {
            ProviderErrorKind::InvalidState
        }
        "OperationNotPermitted" | "UnsupportedOperation" => ProviderErrorKind::NotPermitted,
        c if c.ends_with(".NotFound") => ProviderErrorKind::NotFound,
        _ => ProviderErrorKind::Other,
    }
}

/// Whether an EC2 error says the looked-up resource does not exist.
fn not_found<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    services::error_code(e).is_some_and(|c| c.ends_with(".NotFound") || c.ends_with(".Malformed"))
}

/// A request the adapter refuses before calling AWS.
/// Where a resource's tags are written: EC2 by id, load balancers by ARN
/// (v2) or name (classic), DB instances and cache clusters by the `arn`
/// attribute the listing stored.
enum TagTarget<'a> {
    Ec2(&'a str),
    Elbv2(&'a str),
    Elb(&'a str),
    Rds(&'a str),
    ElastiCache(&'a str),
}

impl<'a> TagTarget<'a> {
    fn of(r: &'a ObservedResource) -> Result<Self, ProviderError> {
        let id = r.provider_id.as_str();
        if id.is_empty() {
            return Err(invalid("a resource id"));
        }
        let arn = || {
            r.attributes
                .get("arn")
                .and_then(|v| v.as_str())
                .filter(|a| !a.is_empty())
                .ok_or_else(|| invalid("the resource's ARN (re-sync it first)"))
        };
        Ok(match r.kind {
            ResourceKind::Instance
            | ResourceKind::Volume
            | ResourceKind::Snapshot
            | ResourceKind::Image
            | ResourceKind::SecurityGroup
            | ResourceKind::Vpc
            | ResourceKind::Subnet
            | ResourceKind::ElasticIp
            | ResourceKind::KeyPair
            | ResourceKind::LaunchTemplate => TagTarget::Ec2(id),
            ResourceKind::LoadBalancer if id.starts_with("arn:") => TagTarget::Elbv2(id),
            ResourceKind::LoadBalancer => TagTarget::Elb(id),
            ResourceKind::DbInstance => TagTarget::Rds(arn()?),
            ResourceKind::CacheCluster => TagTarget::ElastiCache(arn()?),
            kind => {
                return Err(ProviderError::new(
                    ProviderErrorKind::NotPermitted,
                    format!("tags on a {kind} are not supported yet"),
                ))
            }
        })
    }
}

fn invalid(what: &str) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Other, format!("invalid request: {what}"))
}

pub(crate) fn clamp_page(size: i32, max: i32) -> i32 {
    size.clamp(5, max)
}

#[async_trait::async_trait]
impl Provider for AwsProvider {
    async fn list(
        &self,
        region: &str,
        kind: ResourceKind,
    ) -> Result<Vec<ObservedResource>, ProviderError> {
        let rc = self.clients(region).await;
        let client = rc.ec2();
        let page = self.account.page_size;
        let mut out = Vec::new();
        // Follows every page of a paginated call, converting each item.
        macro_rules! paged {
            ($req:expr, $op:literal, |$p:ident| $items:expr) => {{
                let mut pages = $req.into_paginator().send();
                while let Some($p) = pages.next().await {
                    let $p = $p.map_err(|e| classify($op, e))?;
                    out.extend($items);
                }
            }};
        }
        match kind {
            ResourceKind::Instance => paged!(
                client
                    .describe_instances()
                    .max_results(clamp_page(page, 1000)),
                "DescribeInstances",
                |p| p
                    .reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .map(convert::instance)
            ),
            ResourceKind::Volume => paged!(
                client.describe_volumes().max_results(clamp_page(page, 500)),
                "DescribeVolumes",
                |p| p.volumes().iter().map(convert::volume)
            ),
            ResourceKind::Snapshot => paged!(
                client
                    .describe_snapshots()
                    .owner_ids("self")
                    .max_results(clamp_page(page, 1000)),
                "DescribeSnapshots",
                |p| p.snapshots().iter().map(convert::snapshot)
            ),
            ResourceKind::Image => paged!(
                client
                    .describe_images()
                    .owners("self")
                    .max_results(clamp_page(page, 1000)),
                "DescribeImages",
                |p| p.images().iter().map(convert::image)
            ),
            ResourceKind::SecurityGroup => paged!(
                client
                    .describe_security_groups()
                    .max_results(clamp_page(page, 1000)),
                "DescribeSecurityGroups",
                |p| p.security_groups().iter().map(convert::security_group)
            ),
            ResourceKind::Vpc => paged!(
                client.describe_vpcs().max_results(clamp_page(page, 1000)),
                "DescribeVpcs",
                |p| p.vpcs().iter().map(convert::vpc)
            ),
            ResourceKind::Subnet => paged!(
                client
                    .describe_subnets()
                    .max_results(clamp_page(page, 1000)),
                "DescribeSubnets",
                |p| p.subnets().iter().map(convert::subnet)
            ),
            ResourceKind::LaunchTemplate => paged!(
                client
                    .describe_launch_templates()
                    .max_results(clamp_page(page, 200)),
                "DescribeLaunchTemplates",
                |p| p.launch_templates().iter().map(convert::launch_template)
            ),
            ResourceKind::KeyPair => {
                // Not paginated: one call returns all.
                let p = client
                    .describe_key_pairs()
                    .send()
                    .await
                    .map_err(|e| classify("DescribeKeyPairs", e))?;
                out.extend(p.key_pairs().iter().map(convert::key_pair));
            }
            ResourceKind::ElasticIp => {
                // Not paginated: one call returns all.
                let p = client
                    .describe_addresses()
                    .send()
                    .await
                    .map_err(|e| classify("DescribeAddresses", e))?;
                out.extend(p.addresses().iter().map(convert::elastic_ip));
            }
            other => return services::list(self, &rc, other).await,
        }
        Ok(out)
    }

    async fn power(
        &self,
        region: &str,
        kind: ResourceKind,
        provider_id: &str,
        action: PowerAction,
        _idempotency_key: &str,
    ) -> Result<ActReceipt, ProviderError> {
        // EC2's Start/Stop/Reboot/TerminateInstances take no ClientToken;
        // the action row's key guards against repeating them instead.
        use aws_sdk_ec2::operation::RequestId;
        if kind == ResourceKind::DbInstance && !provider_id.is_empty() {
            return lifecycle::power_db(&*self.clients(region).await, provider_id, action).await;
        }
        if kind != ResourceKind::Instance {
            return Err(invalid("power actions apply to instances and DB instances"));
        }
        if provider_id.is_empty() {
            return Err(invalid("an empty instance id"));
        }
        let rc = self.clients(region).await;
        let ec2 = rc.ec2();
        let request_id = match action {
            PowerAction::Start => ec2
                .start_instances()
                .instance_ids(provider_id)
                .send()
                .await
                .map_err(|e| classify("StartInstances", e))?
                .request_id()
                .map(str::to_owned),
            PowerAction::Stop => ec2
                .stop_instances()
                .instance_ids(provider_id)
                .send()
                .await
                .map_err(|e| classify("StopInstances", e))?
                .request_id()
                .map(str::to_owned),
            PowerAction::Reboot => ec2
                .reboot_instances()
                .instance_ids(provider_id)
                .send()
                .await
                .map_err(|e| classify("RebootInstances", e))?
                .request_id()
                .map(str::to_owned),
            PowerAction::Terminate => ec2
                .terminate_instances()
                .instance_ids(provider_id)
                .send()
                .await
                .map_err(|e| classify("TerminateInstances", e))?
                .request_id()
                .map(str::to_owned),
        };
        Ok(ActReceipt {
            request_id: request_id.unwrap_or_default(),
        })
    }

    async fn delete(
        &self,
        region: &str,
        resource: &ObservedResource,
        final_snapshot: Option<&str>,
    ) -> Result<ActReceipt, ProviderError> {
        lifecycle::delete(&*self.clients(region).await, resource, final_snapshot).await
    }

    async fn set_tags(
        &self,
        region: &str,
        resource: &ObservedResource,
        tags: &[(String, String)],
    ) -> Result<ActReceipt, ProviderError> {
        if tags.is_empty() {
            return Err(invalid("at least one tag"));
        }
        let rc = self.clients(region).await;
        let request_id = match TagTarget::of(resource)? {
            TagTarget::Ec2(id) => {
                use aws_sdk_ec2::operation::RequestId;
                let mut req = rc.ec2().create_tags().resources(id);
                for (k, v) in tags {
                    req = req.tags(aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
                }
                let out = req.send().await.map_err(|e| classify("CreateTags", e))?;
                out.request_id().map(str::to_owned)
            }
            TagTarget::Elbv2(arn) => {
                use aws_sdk_elasticloadbalancingv2::operation::RequestId;
                let mut req = rc.elbv2().add_tags().resource_arns(arn);
                for (k, v) in tags {
                    req = req.tags(
                        aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build(),
                    );
                }
                let out = req.send().await.map_err(|e| classify("AddTags", e))?;
                out.request_id().map(str::to_owned)
            }
            TagTarget::Elb(name) => {
                use aws_sdk_elasticloadbalancing::operation::RequestId;
                let mut req = rc.elb().add_tags().load_balancer_names(name);
                for (k, v) in tags {
                    let tag = aws_sdk_elasticloadbalancing::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .map_err(|e| invalid(&format!("tag {k}: {e}")))?;
                    req = req.tags(tag);
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| classify("AddTags (classic)", e))?;
                out.request_id().map(str::to_owned)
            }
            TagTarget::Rds(arn) => {
                use aws_sdk_rds::operation::RequestId;
                let mut req = rc.rds().add_tags_to_resource().resource_name(arn);
                for (k, v) in tags {
                    req = req.tags(aws_sdk_rds::types::Tag::builder().key(k).value(v).build());
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| classify("AddTagsToResource (RDS)", e))?;
                out.request_id().map(str::to_owned)
            }
            TagTarget::ElastiCache(arn) => {
                use aws_sdk_elasticache::operation::RequestId;
                let mut req = rc.elasticache().add_tags_to_resource().resource_name(arn);
                for (k, v) in tags {
                    req = req.tags(
                        aws_sdk_elasticache::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build(),
                    );
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| classify("AddTagsToResource (ElastiCache)", e))?;
                out.request_id().map(str::to_owned)
            }
        };
        Ok(ActReceipt {
            request_id: request_id.unwrap_or_default(),
        })
    }

    async fn remove_tags(
        &self,
        region: &str,
        resource: &ObservedResource,
        keys: &[String],
    ) -> Result<ActReceipt, ProviderError> {
        if keys.is_empty() {
            return Err(invalid("at least one tag key"));
        }
        let rc = self.clients(region).await;
        let request_id = match TagTarget::of(resource)? {
            TagTarget::Ec2(id) => {
                use aws_sdk_ec2::operation::RequestId;
                let mut req = rc.ec2().delete_tags().resources(id);
                for k in keys {
                    req = req.tags(aws_sdk_ec2::types::Tag::builder().key(k).build());
                }
                let out = req.send().await.map_err(|e| classify("DeleteTags", e))?;
                out.request_id().map(str::to_owned)
            }
            TagTarget::Elbv2(arn) => {
                use aws_sdk_elasticloadbalancingv2::operation::RequestId;
                let mut req = rc.elbv2().remove_tags().resource_arns(arn);
                for k in keys {
                    req = req.tag_keys(k);
                }
                let out = req.send().await.map_err(|e| classify("RemoveTags", e))?;
                out.request_id().map(str::to_owned)
            }
            TagTarget::Elb(name) => {
                use aws_sdk_elasticloadbalancing::operation::RequestId;
                let mut req = rc.elb().remove_tags().load_balancer_names(name);
                for k in keys {
                    req = req.tags(
                        aws_sdk_elasticloadbalancing::types::TagKeyOnly::builder()
                            .key(k)
                            .build(),
                    );
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| classify("RemoveTags (classic)", e))?;
                out.request_id().map(str::to_owned)
            }
            TagTarget::Rds(arn) => {
                use aws_sdk_rds::operation::RequestId;
                let mut req = rc.rds().remove_tags_from_resource().resource_name(arn);
                for k in keys {
                    req = req.tag_keys(k);
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| classify("RemoveTagsFromResource (RDS)", e))?;
                out.request_id().map(str::to_owned)
            }
            TagTarget::ElastiCache(arn) => {
                use aws_sdk_elasticache::operation::RequestId;
                let mut req = rc
                    .elasticache()
                    .remove_tags_from_resource()
                    .resource_name(arn);
                for k in keys {
                    req = req.tag_keys(k);
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| classify("RemoveTagsFromResource (ElastiCache)", e))?;
                out.request_id().map(str::to_owned)
            }
        };
        Ok(ActReceipt {
            request_id: request_id.unwrap_or_default(),
        })
    }

    async fn image(
        &self,
        region: &str,
        image: &skyhold_core::blueprint::ImageRef,
    ) -> Result<Option<ImageInfo>, ProviderError> {
        launch::image(&*self.clients(region).await, image).await
    }

    async fn run_instance(
        &self,
        region: &str,
        spec: &RunSpec,
    ) -> Result<ObservedResource, ProviderError> {
        launch::run_instance(&*self.clients(region).await, spec).await
    }

    async fn create_image(
        &self,
        region: &str,
        instance_id: &str,
        image: &skyhold_core::NewImage,
    ) -> Result<String, ProviderError> {
        launch::create_image(&*self.clients(region).await, instance_id, image).await
    }

    async fn image_named(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Option<ObservedResource>, ProviderError> {
        launch::image_named(&*self.clients(region).await, name).await
    }

    async fn deregister_image(
        &self,
        region: &str,
        image_id: &str,
    ) -> Result<ActReceipt, ProviderError> {
        launch::deregister_image(&*self.clients(region).await, image_id).await
    }

    async fn dns_zone(&self, zone: &str) -> Result<Option<(String, String)>, ProviderError> {
        dns::hosted_zone(self, zone).await
    }

    async fn dns_name_exists(&self, zone_id: &str, name: &str) -> Result<bool, ProviderError> {
        dns::record_exists(self, zone_id, name).await
    }

    async fn change_dns_record(
        &self,
        zone_id: &str,
        name: &str,
        rtype: &str,
        value: &str,
        delete: bool,
    ) -> Result<(), ProviderError> {
        dns::change_record(self, zone_id, name, rtype, value, 60, delete).await
    }

    async fn ensure_key_pair(
        &self,
        region: &str,
        name: &str,
        public_key: &str,
    ) -> Result<bool, ProviderError> {
        launch::ensure_key_pair(&*self.clients(region).await, name, public_key).await
    }

    async fn instances_tagged(
        &self,
        region: &str,
        key: &str,
        value: &str,
    ) -> Result<Vec<ObservedResource>, ProviderError> {
        launch::instances_tagged(&*self.clients(region).await, key, value).await
    }

    async fn describe(
        &self,
        region: &str,
        kind: ResourceKind,
        provider_id: &str,
    ) -> Result<Option<ObservedResource>, ProviderError> {
        if provider_id.is_empty() {
            return Err(invalid("an empty resource id"));
        }
        let rc = self.clients(region).await;
        let page = self.account.page_size;
        use ResourceKind as K;
        match kind {
            K::Instance => {
                let r = rc
                    .ec2()
                    .describe_instances()
                    .instance_ids(provider_id)
                    .send()
                    .await;
                match r {
                    Ok(r) => Ok(r
                        .reservations()
                        .iter()
                        .flat_map(|r| r.instances())
                        .find(|i| i.instance_id() == Some(provider_id))
                        .map(convert::instance)),
                    Err(e) if not_found(&e) => Ok(None),
                    Err(e) => Err(classify("DescribeInstances", e)),
                }
            }
            K::Volume => {
                let r = rc
                    .ec2()
                    .describe_volumes()
                    .volume_ids(provider_id)
                    .send()
                    .await;
                match r {
                    Ok(r) => Ok(r
                        .volumes()
                        .iter()
                        .find(|v| v.volume_id() == Some(provider_id))
                        .map(convert::volume)),
                    Err(e) if not_found(&e) => Ok(None),
                    Err(e) => Err(classify("DescribeVolumes", e)),
                }
            }
            K::DbInstance => Ok(services::db_instances(&rc, page, Some(provider_id))
                .await?
                .into_iter()
                .find(|r| r.provider_id == provider_id)),
            K::DynamodbTable => services::dynamodb_table(&rc, provider_id).await,
            K::Queue => services::queue(&rc, provider_id).await,
            K::Bucket => services::describe_bucket(self, &rc, provider_id).await,
            K::Stack => Ok(services::stacks(&rc, Some(provider_id))
                .await?
                .into_iter()
                .find(|r| r.provider_id == provider_id || r.name == provider_id)),
            K::Alarm => {
                // The id is the alarm ARN; DescribeAlarms looks up by name.
                let name = provider_id
                    .rsplit_once(":alarm:")
                    .map_or(provider_id, |(_, n)| n);
                Ok(services::alarms(&rc, page, Some(name))
                    .await?
                    .into_iter()
                    .find(|r| r.provider_id == provider_id || r.name == provider_id))
            }
            _ => Ok(self
                .list(region, kind)
                .await?
                .into_iter()
                .find(|r| r.provider_id == provider_id)),
        }
    }

    async fn enabled_regions(&self) -> Result<Vec<String>, ProviderError> {
        let rc = self.clients(GLOBAL_CLIENT_REGION).await;
        let r = rc
            .ec2()
            .describe_regions()
            .all_regions(true)
            .send()
            .await
            .map_err(|e| classify("DescribeRegions", e))?;
        let mut out: Vec<String> = r
            .regions()
            .iter()
            .filter(|r| {
                matches!(
                    r.opt_in_status(),
                    None | Some("opt-in-not-required" | "opted-in")
                )
            })
            .filter_map(|r| r.region_name())
            .map(str::to_owned)
            .collect();
        out.sort();
        Ok(out)
    }

    async fn stack_template(&self, region: &str, stack: &str) -> Result<String, ProviderError> {
        if stack.is_empty() {
            return Err(invalid("an empty stack name"));
        }
        let rc = self.clients(region).await;
        let r = rc
            .cloudformation()
            .get_template()
            .stack_name(stack)
            .template_stage(aws_sdk_cloudformation::types::TemplateStage::Original)
            .send()
            .await
            .map_err(|e| classify("GetTemplate", e))?;
        Ok(r.template_body().unwrap_or_default().to_owned())
    }

    async fn instance_metrics(
        &self,
        region: &str,
        instance_ids: &[String],
        start: i64,
        end: i64,
        period_s: i32,
        network: bool,
    ) -> Result<HashMap<String, skyhold_core::provider::InstanceMetrics>, ProviderError> {
        use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
        let mut out: HashMap<String, skyhold_core::provider::InstanceMetrics> = HashMap::new();
        if instance_ids.is_empty() || end <= start {
            return Ok(out);
        }
        let rc = self.clients(region).await;
        let metrics: &[(&str, &str, &str)] = if network {
            &[
                ("c", "CPUUtilization", "Average"),
                ("i", "NetworkIn", "Sum"),
                ("o", "NetworkOut", "Sum"),
            ]
        } else {
            &[("c", "CPUUtilization", "Average")]
        };
        // GetMetricData takes at most 500 queries a call.
        let per_call = 500 / metrics.len();
        for (batch_no, batch) in instance_ids.chunks(per_call).enumerate() {
            let mut queries = Vec::with_capacity(batch.len() * metrics.len());
            for (i, id) in batch.iter().enumerate() {
                for (prefix, name, stat) in metrics {
                    let metric = Metric::builder()
                        .namespace("AWS/EC2")
                        .metric_name(*name)
                        .dimensions(Dimension::builder().name("InstanceId").value(id).build())
                        .build();
                    queries.push(
                        MetricDataQuery::builder()
                            .id(format!("{prefix}{i}"))
                            .metric_stat(
                                MetricStat::builder()
                                    .metric(metric)
                                    .period(period_s)
                                    .stat(*stat)
                                    .build(),
                            )
                            .return_data(true)
                            .build(),
                    );
                }
            }
            let mut token: Option<String> = None;
            loop {
                let r = rc
                    .cloudwatch()
                    .get_metric_data()
                    .set_metric_data_queries(Some(queries.clone()))
                    .start_time(aws_smithy_types::DateTime::from_millis(start))
                    .end_time(aws_smithy_types::DateTime::from_millis(end))
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| classify("GetMetricData", e))?;
                for res in r.metric_data_results() {
                    let qid = res.id().unwrap_or_default();
                    let (prefix, idx) = qid.split_at(1.min(qid.len()));
                    let Some(id) = idx.parse::<usize>().ok().and_then(|i| batch.get(i)) else {
                        continue;
                    };
                    let m = out.entry(id.clone()).or_default();
                    let points = res
                        .timestamps()
                        .iter()
                        .zip(res.values())
                        .map(|(t, v)| (t.to_millis().unwrap_or(0), *v));
                    match prefix {
                        "c" => m.cpu.extend(points),
                        _ => {
                            // In and out of the same period add up.
                            for (t, v) in points {
                                match m.network_bytes.iter_mut().find(|(pt, _)| *pt == t) {
                                    Some(p) => p.1 += v,
                                    None => m.network_bytes.push((t, v)),
                                }
                            }
                        }
                    }
                }
                token = r.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            tracing::debug!(batch = batch_no, instances = batch.len(), "GetMetricData");
        }
        for m in out.values_mut() {
            m.cpu.sort_by_key(|p| p.0);
            m.network_bytes.sort_by_key(|p| p.0);
        }
        for id in instance_ids {
            out.entry(id.clone()).or_default();
        }
        Ok(out)
    }

    async fn alarm_history(
        &self,
        region: &str,
        alarm: &str,
    ) -> Result<Vec<AlarmHistoryItem>, ProviderError> {
        if alarm.is_empty() {
            return Err(invalid("an empty alarm name"));
        }
        // Accept the alarm's ARN (its resource id) as well as its name.
        let name = alarm.rsplit_once(":alarm:").map_or(alarm, |(_, n)| n);
        let rc = self.clients(region).await;
        let mut out = Vec::new();
        let mut pages = rc
            .cloudwatch()
            .describe_alarm_history()
            .alarm_name(name)
            .scan_by(aws_sdk_cloudwatch::types::ScanBy::TimestampDescending)
            .into_paginator()
            .send();
        while let Some(p) = pages.next().await {
            let p = p.map_err(|e| classify("DescribeAlarmHistory", e))?;
            for h in p.alarm_history_items() {
                out.push(AlarmHistoryItem {
                    time: convert::millis(h.timestamp()).unwrap_or(0),
                    item_type: h
                        .history_item_type()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                    summary: h.history_summary().unwrap_or_default().to_owned(),
                });
            }
        }
        // Newest first, whatever order the service used.
        out.sort_by_key(|h| std::cmp::Reverse(h.time));
        Ok(out)
    }

    async fn list_objects(
        &self,
        region: &str,
        bucket: &str,
        prefix: &str,
        token: Option<&str>,
    ) -> Result<ObjectPage, ProviderError> {
        if bucket.is_empty() {
            return Err(invalid("an empty bucket name"));
        }
        let rc = self.clients(region).await;
        let r = rc
            .s3()
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .delimiter("/")
            .max_keys(1000)
            .set_continuation_token(token.filter(|t| !t.is_empty()).map(str::to_owned))
            .send()
            .await
            .map_err(|e| classify("ListObjectsV2", e))?;
        Ok(ObjectPage {
            prefixes: r
                .common_prefixes()
                .iter()
                .filter_map(|p| p.prefix())
                .map(str::to_owned)
                .collect(),
            objects: r
                .contents()
                .iter()
                // A "folder" placeholder object is the prefix itself.
                .filter(|o| o.key().is_some_and(|k| k != prefix))
                .map(|o| BucketObject {
                    key: o.key().unwrap_or_default().to_owned(),
                    size: o.size().unwrap_or(0),
                    modified: convert::millis(o.last_modified()),
                })
                .collect(),
            next_token: if r.is_truncated().unwrap_or(false) {
                r.next_continuation_token().map(str::to_owned)
            } else {
                None
            },
        })
    }

    async fn presign_get(
        &self,
        region: &str,
        bucket: &str,
        key: &str,
        ttl: Duration,
    ) -> Result<String, ProviderError> {
        if bucket.is_empty() || key.is_empty() {
            return Err(invalid("an empty bucket name or object key"));
        }
        let conf = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl)
            .map_err(|e| invalid(&format!("a presigned URL lifetime of {ttl:?} ({e})")))?;
        let rc = self.clients(region).await;
        let r = rc
            .s3()
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(conf)
            .await
            .map_err(|e| classify("GetObject (presign)", e))?;
        Ok(r.uri().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_classified() {
        assert_eq!(
            classify_code("RequestLimitExceeded"),
            ProviderErrorKind::Throttled
        );
        assert_eq!(
            classify_code("UnauthorizedOperation"),
            ProviderErrorKind::Denied
        );
        assert_eq!(
            classify_code("InvalidParameterValue"),
            ProviderErrorKind::Other
        );
    }

    #[test]
    fn page_sizes_are_clamped() {
        assert_eq!(clamp_page(1, 1000), 5);
        assert_eq!(clamp_page(5000, 500), 500);
    }
}
