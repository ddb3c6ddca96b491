//! The AWS adapter: the only part of skyhold that imports `aws-sdk-*`.
//!
//! It turns an account's configuration into SDK clients (default chain,
//! profile, static keys, or an assumed role), follows every page of every
//! listing, and converts SDK types into [`ObservedResource`]s at the seam.
//! SDK errors become [`ProviderError`]s classified as throttling, denial,
//! unreachable endpoint or other.

mod convert;
#[cfg(feature = "testkit")]
pub mod testkit;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::Client;
use skyhold_core::{
    ObservedResource, Provider, ProviderError, ProviderErrorKind, ResourceKind, Secret,
};
use std::collections::HashMap;
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

/// One AWS account. Builds one EC2 client per region, on first use.
pub struct AwsProvider {
    account: AwsAccount,
    clients: Mutex<HashMap<String, Client>>,
}

impl AwsProvider {
    pub fn new(account: AwsAccount) -> Self {
        Self {
            account,
            clients: Mutex::new(HashMap::new()),
        }
    }

    async fn client(&self, region: &str) -> Client {
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(region) {
            return c.clone();
        }
        let conf = sdk_config(&self.account, region).await;
        let client = Client::new(&conf);
        clients.insert(region.to_owned(), client.clone());
        client
    }
}

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
        _ => ProviderErrorKind::Other,
    }
}

fn clamp_page(size: i32, max: i32) -> i32 {
    size.clamp(5, max)
}

#[async_trait::async_trait]
impl Provider for AwsProvider {
    async fn list(
        &self,
        region: &str,
        kind: ResourceKind,
    ) -> Result<Vec<ObservedResource>, ProviderError> {
        let client = self.client(region).await;
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
            other => {
                return Err(ProviderError::new(
                    ProviderErrorKind::Other,
                    format!("listing {other} is not implemented yet"),
                ))
            }
        }
        Ok(out)
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
