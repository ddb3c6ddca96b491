//! The provider seam: the one trait between the domain and each backend.
//! Adapters convert provider types into [`ObservedResource`]s here.

use crate::{Millis, ObservedResource, ResourceKind};
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// The provider asked us to slow down; retry later, never tombstone.
    Throttled,
    /// Credentials were refused or lack permission.
    Denied,
    /// The endpoint could not be reached (DNS, connect, timeout).
    Unreachable,
    /// The resource is not in a state that allows the action
    /// (`IncorrectInstanceState`).
    InvalidState,
    /// The provider forbids the action on this resource (termination
    /// protection, `OperationNotPermitted`).
    NotPermitted,
    /// The resource does not exist (any more).
    NotFound,
    /// Anything else the provider answered with.
    Other,
}

#[derive(Debug, Clone)]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    pub message: String,
}

impl ProviderError {
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ProviderErrorKind::Throttled => "throttled",
            ProviderErrorKind::Denied => "access denied",
            ProviderErrorKind::Unreachable => "endpoint unreachable",
            ProviderErrorKind::InvalidState => "invalid state",
            ProviderErrorKind::NotPermitted => "not permitted",
            ProviderErrorKind::NotFound => "not found",
            ProviderErrorKind::Other => "provider error",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for ProviderError {}

/// One entry of a bucket listing below a prefix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketObject {
    pub key: String,
    pub size: i64,
    pub modified: Option<Millis>,
}

/// One page of a bucket listing: the "folders" (common prefixes, ending in
/// `/`) and the objects directly below the prefix.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ObjectPage {
    pub prefixes: Vec<String>,
    pub objects: Vec<BucketObject>,
    /// Pass back to get the next page.
    pub next_token: Option<String>,
}

/// One entry of an alarm's history (state changes, configuration updates).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmHistoryItem {
    pub time: Millis,
    /// `StateUpdate`, `ConfigurationUpdate`, `Action`.
    pub item_type: String,
    pub summary: String,
}

/// A power action on an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    Start,
    Stop,
    Reboot,
    Terminate,
}

impl PowerAction {
    pub const ALL: [PowerAction; 4] = [
        PowerAction::Start,
        PowerAction::Stop,
        PowerAction::Reboot,
        PowerAction::Terminate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::Start => "start",
            PowerAction::Stop => "stop",
            PowerAction::Reboot => "reboot",
            PowerAction::Terminate => "terminate",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        PowerAction::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The state the instance ends in, and the states on the way there.
    pub fn target_state(self) -> (&'static str, &'static [&'static str]) {
        match self {
            PowerAction::Start | PowerAction::Reboot => ("running", &["pending"]),
            PowerAction::Stop => ("stopped", &["stopping"]),
            PowerAction::Terminate => ("terminated", &["shutting-down"]),
        }
    }
}

/// What the provider said when it accepted a change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActReceipt {
    /// The provider's request id (for support cases and the audit trail).
    pub request_id: String,
}

/// An image as a launch needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    pub id: String,
    pub name: String,
    /// The device the root volume attaches as (`/dev/xvda`), to size it.
    pub root_device_name: String,
    /// The root volume's size in the image, if it says.
    pub root_volume_gib: Option<u32>,
    pub created_at: Option<Millis>,
}

/// One server to start (one RunInstances call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    pub image_id: String,
    pub instance_type: String,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
    /// Plain text; the adapter encodes it as the provider wants.
    pub user_data: String,
    /// The root device and its size, when the launch sizes it.
    pub root_volume: Option<(String, u32)>,
    /// Set on the instance and its volumes as they are created.
    pub tags: Vec<(String, String)>,
    /// The provider's idempotency token (derived from the launch).
    pub client_token: String,
}

/// An image to make of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImage {
    pub name: String,
    pub description: String,
    /// Image the running instance without stopping it first (the file
    /// systems may then be inconsistent).
    pub no_reboot: bool,
    /// Set on the image and its snapshots as they are created.
    pub tags: Vec<(String, String)>,
}

/// An instance's metrics over a window: (time, value) per period, oldest
/// first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceMetrics {
    pub cpu: Vec<(Millis, f64)>,
    pub network_bytes: Vec<(Millis, f64)>,
}

fn unsupported(what: &str) -> ProviderError {
    ProviderError::new(
        ProviderErrorKind::Other,
        format!("{what} is not supported by this provider"),
    )
}

/// One connection to a provider (one account). A listing is either complete
/// or an error: an adapter never returns a partial listing as success.
///
/// Global kinds ([`ResourceKind::is_global`]) are listed with `region` set to
/// [`crate::resource::GLOBAL_REGION`].
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// Lists every resource of `kind` in `region`, following every page.
    async fn list(
        &self,
        region: &str,
        kind: ResourceKind,
    ) -> Result<Vec<ObservedResource>, ProviderError>;

    /// Reads one resource afresh (targeted refresh). `Ok(None)` means it no
    /// longer exists. The default lists the kind and picks the resource.
    async fn describe(
        &self,
        region: &str,
        kind: ResourceKind,
        provider_id: &str,
    ) -> Result<Option<ObservedResource>, ProviderError> {
        Ok(self
            .list(region, kind)
            .await?
            .into_iter()
            .find(|r| r.provider_id == provider_id))
    }

    /// Instances' CPU utilisation (average, percent) and, with `network`,
    /// network bytes (in + out, summed) per `period_s` seconds between
    /// `start` and `end`, asked in batches (never one call per instance).
    /// An instance with no datapoints has empty series: no data, never
    /// zero.
    async fn instance_metrics(
        &self,
        _region: &str,
        _instance_ids: &[String],
        _start: Millis,
        _end: Millis,
        _period_s: i32,
        _network: bool,
    ) -> Result<std::collections::HashMap<String, InstanceMetrics>, ProviderError> {
        Err(unsupported("instance metrics"))
    }

    /// The regions enabled for this account (for `regions = "all-enabled"`).
    async fn enabled_regions(&self) -> Result<Vec<String>, ProviderError> {
        Err(unsupported("listing regions"))
    }

    /// The template body of a stack (CloudFormation), as the provider stores it.
    async fn stack_template(&self, _region: &str, _stack: &str) -> Result<String, ProviderError> {
        Err(unsupported("stack templates"))
    }

    /// An alarm's history, newest first.
    async fn alarm_history(
        &self,
        _region: &str,
        _alarm: &str,
    ) -> Result<Vec<AlarmHistoryItem>, ProviderError> {
        Err(unsupported("alarm history"))
    }

    /// One page of the objects and prefixes directly below `prefix`.
    async fn list_objects(
        &self,
        _region: &str,
        _bucket: &str,
        _prefix: &str,
        _token: Option<&str>,
    ) -> Result<ObjectPage, ProviderError> {
        Err(unsupported("object browsing"))
    }

    /// Starts, stops, reboots or terminates one instance. `idempotency_key`
    /// is passed where the provider takes one.
    async fn power(
        &self,
        _region: &str,
        _kind: ResourceKind,
        _provider_id: &str,
        _action: PowerAction,
        _idempotency_key: &str,
    ) -> Result<ActReceipt, ProviderError> {
        Err(unsupported("power actions"))
    }

    /// Deletes one resource of a kind that costs money while it exists
    /// (an instance is terminated, an image deregistered, an address
    /// released). `final_snapshot`: first snapshot what holds data (an
    /// instance's or a volume's EBS volumes, a DB instance's final
    /// snapshot), named or tagged with this text.
    async fn delete(
        &self,
        _region: &str,
        _resource: &ObservedResource,
        _final_snapshot: Option<&str>,
    ) -> Result<ActReceipt, ProviderError> {
        Err(unsupported("deleting resources"))
    }

    /// Sets tags on one resource (existing keys are overwritten).
    async fn set_tags(
        &self,
        _region: &str,
        _resource: &ObservedResource,
        _tags: &[(String, String)],
    ) -> Result<ActReceipt, ProviderError> {
        Err(unsupported("tagging"))
    }

    /// Removes tags (by key) from one resource; keys it does not have are
    /// no error.
    async fn remove_tags(
        &self,
        _region: &str,
        _resource: &ObservedResource,
        _keys: &[String],
    ) -> Result<ActReceipt, ProviderError> {
        Err(unsupported("tagging"))
    }

    /// The image `image` names: an id, or the newest own image whose name
    /// matches a pattern (`*` any run of characters). `Ok(None)`: no such
    /// image.
    async fn image(
        &self,
        _region: &str,
        _image: &crate::blueprint::ImageRef,
    ) -> Result<Option<ImageInfo>, ProviderError> {
        Err(unsupported("images"))
    }

    /// Starts one instance, tagged as it is created. Returns it as
    /// observed in the answer.
    async fn run_instance(
        &self,
        _region: &str,
        _spec: &RunSpec,
    ) -> Result<ObservedResource, ProviderError> {
        Err(unsupported("launching"))
    }

    /// Makes sure a key pair named `name` with `public_key` exists (imports
    /// it unless one of that name does). Returns whether it was imported.
    async fn ensure_key_pair(
        &self,
        _region: &str,
        _name: &str,
        _public_key: &str,
    ) -> Result<bool, ProviderError> {
        Err(unsupported("key pairs"))
    }

    /// Makes an own image of an instance, tagged (with its snapshots) as it
    /// is created. Returns the image id. CreateImage takes no idempotency
    /// token: callers look for the image by name before calling again.
    async fn create_image(
        &self,
        _region: &str,
        _instance_id: &str,
        _image: &NewImage,
    ) -> Result<String, ProviderError> {
        Err(unsupported("creating images"))
    }

    /// The own image named `name` (names are unique per account and
    /// region), if any.
    async fn image_named(
        &self,
        _region: &str,
        _name: &str,
    ) -> Result<Option<ObservedResource>, ProviderError> {
        Err(unsupported("images"))
    }

    /// Deregisters an own image (its snapshots stay).
    async fn deregister_image(
        &self,
        _region: &str,
        _image_id: &str,
    ) -> Result<ActReceipt, ProviderError> {
        Err(unsupported("deregistering images"))
    }

    /// The DNS zone `zone` names (an id or a domain): `(id, domain)`.
    async fn dns_zone(&self, _zone: &str) -> Result<Option<(String, String)>, ProviderError> {
        Err(unsupported("DNS zones"))
    }

    /// Whether zone `zone_id` holds any record named `name`.
    async fn dns_name_exists(&self, _zone_id: &str, _name: &str) -> Result<bool, ProviderError> {
        Err(unsupported("DNS records"))
    }

    /// Creates or replaces (`delete` false), or deletes, the record
    /// `name` `rtype` `value` in zone `zone_id`.
    async fn change_dns_record(
        &self,
        _zone_id: &str,
        _name: &str,
        _rtype: &str,
        _value: &str,
        _delete: bool,
    ) -> Result<(), ProviderError> {
        Err(unsupported("DNS records"))
    }

    /// The live (not terminated) instances whose tag `key` is `value`.
    async fn instances_tagged(
        &self,
        region: &str,
        key: &str,
        value: &str,
    ) -> Result<Vec<ObservedResource>, ProviderError> {
        Ok(self
            .list(region, ResourceKind::Instance)
            .await?
            .into_iter()
            .filter(|r| r.tags.get(key).map(String::as_str) == Some(value))
            .filter(|r| r.state != "terminated")
            .collect())
    }

    /// A URL that downloads one object for `ttl` without further credentials.
    async fn presign_get(
        &self,
        _region: &str,
        _bucket: &str,
        _key: &str,
        _ttl: std::time::Duration,
    ) -> Result<String, ProviderError> {
        Err(unsupported("object downloads"))
    }
}
