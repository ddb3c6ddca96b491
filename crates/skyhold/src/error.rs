//! The application layer's one error type. Each variant has a stable code
//! (the JSON API's `error.code`); the HTTP status is decided at the edge
//! (`web::error`). Internal details are logged there, never shown.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("authentication required")]
    Unauthenticated,
    #[error("wrong user name or password")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("invalid parameter '{parameter}': {message}")]
    BadParameter { parameter: String, message: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("too many failed attempts; try again in {} seconds", .0.as_secs().max(1))]
    RateLimited(Duration),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    /// The cloud provider refused or failed a call.
    #[error("provider: {0}")]
    Provider(String),
    /// The provider refused skyhold's credentials or permissions.
    #[error("provider refused access: {0}")]
    ProviderDenied(String),
    /// The provider asked us to slow down.
    #[error("provider throttled the request: {0}")]
    ProviderThrottled(String),
    /// The resource's state does not allow the action.
    #[error("{0}")]
    InvalidState(String),
    /// The provider forbids the action on this resource (termination
    /// protection).
    #[error("{0}")]
    NotPermitted(String),
    /// A destructive action was asked for without the confirmation.
    #[error("{0}")]
    ConfirmationRequired(String),
    /// An Idempotency-Key was reused for another request (or its first
    /// request is still running).
    #[error("{0}")]
    IdempotencyConflict(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// A blueprint field that does not pass (the API adds `field`).
    #[error("invalid blueprint: {field}: {message}")]
    InvalidBlueprint { field: String, message: String },
    /// A launch that does not fit a quota (the API adds `quota`).
    #[error("{0}")]
    QuotaExceeded(Box<skyhold_core::quota::Exceeded>),
    /// A launch refused by a money budget (the API adds `budget`).
    #[error("{0}")]
    BudgetExceeded(Box<BudgetExceeded>),
    /// A launch would reuse the name of a live server (or of one being
    /// launched).
    #[error("{0}")]
    NameTaken(String),
    /// An expiry further from now than the maximum TTL allows (the API
    /// adds `cap`).
    #[error("{0}")]
    TtlExceedsMax(Box<TtlCap>),
    /// An SSH public key that cannot be used (format, type, size).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated => "unauthenticated",
            AppError::InvalidCredentials => "invalid_credentials",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::BadParameter { .. } => "invalid_parameter",
            AppError::BadRequest(_) => "bad_request",
            AppError::RateLimited(_) => "rate_limited",
            AppError::Conflict(_) => "conflict",
            AppError::Unavailable(_) => "unavailable",
            AppError::Provider(_) => "provider_error",
            AppError::ProviderDenied(_) => "provider_denied",
            AppError::ProviderThrottled(_) => "provider_throttled",
            AppError::InvalidState(_) => "invalid_state",
            AppError::NotPermitted(_) => "not_permitted",
            AppError::ConfirmationRequired(_) => "confirmation_required",
            AppError::IdempotencyConflict(_) => "idempotency_conflict",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::InvalidBlueprint { .. } => "invalid_blueprint",
            AppError::QuotaExceeded(_) => "quota_exceeded",
            AppError::BudgetExceeded(_) => "budget_exceeded",
            AppError::NameTaken(_) => "name_taken",
            AppError::InvalidKey(_) => "invalid_key",
            AppError::TtlExceedsMax(_) => "ttl_exceeds_max",
            AppError::Internal(_) => "internal",
        }
    }

    /// The field a refusal is about, where it names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::InvalidBlueprint { field, .. } => Some(field),
            AppError::BadParameter { parameter, .. } => Some(parameter),
            AppError::InvalidKey(_) => Some("public_key"),
            AppError::TtlExceedsMax(_) => Some("expires_at"),
            _ => None,
        }
    }

    pub fn bad_parameter(parameter: &str, message: impl Into<String>) -> Self {
        AppError::BadParameter {
            parameter: parameter.to_owned(),
            message: message.into(),
        }
    }
}

/// The budget a launch would go over: whose, its limit, and the month's
/// spend so far and projected.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BudgetExceeded {
    /// The budget's subject (`user:ann`, `group:dev`).
    pub subject: String,
    /// Where its limit comes from (`user:ann`, `default:user`, ...).
    pub source: String,
    pub limit_usd: f64,
    pub spend_usd: f64,
    pub projected_usd: f64,
    /// What the launch adds to the month's projection.
    pub launch_usd: f64,
}

impl std::fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the monthly budget of {} (from {}) is ${:.2}: spent ${:.2} this month, ${:.2} projected",
            self.subject, self.source, self.limit_usd, self.spend_usd, self.projected_usd
        )
    }
}

/// The cap an expiry exceeded: the maximum TTL, where it comes from, and
/// the latest expiry it allows now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TtlCap {
    pub max_ttl: String,
    pub source: String,
    pub latest: String,
}

impl std::fmt::Display for TtlCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the maximum TTL is {} (from {}): expiry at most {}",
            self.max_ttl, self.source, self.latest
        )
    }
}

/// A page size given as `?limit=`: a whole number from 1 to 1000.
pub fn page_limit<T: TryFrom<u32>>(raw: &str) -> Result<T, AppError> {
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| AppError::bad_parameter("limit", "a whole number from 1 to 1000"))
}

impl From<skyhold_store::StoreError> for AppError {
    fn from(e: skyhold_store::StoreError) -> Self {
        match e {
            skyhold_store::StoreError::NotFound => AppError::NotFound("resource".into()),
            skyhold_store::StoreError::Conflict(what) => {
                AppError::Conflict(format!("{what} already exists"))
            }
            skyhold_store::StoreError::Invalid(what) => AppError::BadRequest(what),
            skyhold_store::StoreError::NameTaken(name) => AppError::NameTaken(format!(
                "a server named {name} exists already (or is being launched): choose another name"
            )),
            other => AppError::Internal(other.into()),
        }
    }
}

impl From<skyhold_core::QueryError> for AppError {
    fn from(e: skyhold_core::QueryError) -> Self {
        AppError::BadParameter {
            parameter: e.parameter,
            message: e.message,
        }
    }
}

impl From<skyhold_core::ProviderError> for AppError {
    fn from(e: skyhold_core::ProviderError) -> Self {
        use skyhold_core::ProviderErrorKind as K;
        let m = e.message;
        match e.kind {
            K::Denied => AppError::ProviderDenied(m),
            K::Throttled => AppError::ProviderThrottled(m),
            K::InvalidState => AppError::InvalidState(m),
            K::NotPermitted => AppError::NotPermitted(m),
            K::NotFound => AppError::NotFound(m),
            K::Unreachable => AppError::Provider(format!("endpoint unreachable: {m}")),
            K::Other => AppError::Provider(m),
        }
    }
}

impl From<skyhold_core::blueprint::FieldError> for AppError {
    fn from(e: skyhold_core::blueprint::FieldError) -> Self {
        AppError::InvalidBlueprint {
            field: e.field,
            message: e.message,
        }
    }
}
