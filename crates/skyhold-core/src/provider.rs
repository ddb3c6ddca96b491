//! The provider seam: the one trait between the domain and each backend.
//! Adapters convert provider types into [`ObservedResource`]s here.

use crate::{ObservedResource, ResourceKind};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// The provider asked us to slow down; retry later, never tombstone.
    Throttled,
    /// Credentials were refused or lack permission.
    Denied,
    /// The endpoint could not be reached (DNS, connect, timeout).
    Unreachable,
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
            ProviderErrorKind::Other => "provider error",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for ProviderError {}

/// One connection to a provider (one account). A listing is either complete
/// or an error: an adapter never returns a partial listing as success.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// Lists every resource of `kind` in `region`, following every page.
    async fn list(
        &self,
        region: &str,
        kind: ResourceKind,
    ) -> Result<Vec<ObservedResource>, ProviderError>;
}
