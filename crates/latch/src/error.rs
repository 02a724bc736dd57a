//! `ApiError`: every error leaves Latch in Kratos' (herodot's) envelope
//! `{"error":{"id","code","status","reason","message","details"}}` with `Ory-Error-Id`.
//! The HTTP layer writes it out (`http::error`); the engine and handlers build it.

use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::limits::{LimitError, LimitKind, Limited};
use crate::store::StoreError;

/// An error answered to a client (boxed: errors travel in `Result`s on every path).
#[derive(Debug, Clone)]
pub struct ApiError(Box<ApiErrorData>);

/// The fields of an [`ApiError`].
#[derive(Debug, Clone)]
pub struct ApiErrorData {
    /// HTTP status (also `error.code`).
    pub status: StatusCode,
    /// Stable machine-readable id (`security_csrf_violation`, …); not every error has one.
    pub id: Option<String>,
    /// Human-readable, request-specific explanation.
    pub reason: Option<String>,
    /// Generic message for the status (herodot's defaults unless overridden).
    pub message: String,
    /// Extra structured data.
    pub details: Option<Value>,
    /// Keys placed next to `error` at the top level (`use_flow_id`, `redirect_browser_to`, …).
    pub extra: Map<String, Value>,
    /// Response headers that belong to the error (`Retry-After`, `RateLimit-*`).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    /// An error with herodot's default message for the status.
    pub fn new(status: StatusCode) -> ApiError {
        let message = match status.as_u16() {
            400 => "The request was malformed or contained invalid parameters",
            401 => "The request could not be authorized",
            403 => "The requested action was forbidden",
            404 => "The requested resource could not be found",
            405 => "The requested method is not allowed for this resource",
            409 => "The resource could not be created due to a conflict",
            410 => "The requested resource is no longer available because it has expired or is otherwise invalid.",
            413 => "The request body is too large",
            429 => "Too many requests were sent; please slow down",
            415 => "The request's content type is not supported",
            422 => "The request was well-formed but was unable to be followed due to semantic errors",
            431 => "The request's headers are too large",
            503 => "The service is temporarily unavailable",
            _ => "An internal server error occurred, please contact the system administrator",
        };
        ApiError(Box::new(ApiErrorData {
            status,
            id: None,
            reason: None,
            message: message.to_string(),
            details: None,
            extra: Map::new(),
            headers: Vec::new(),
        }))
    }

    /// 400 with a reason.
    pub fn bad_request(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST).reason(reason)
    }

    /// 404 with a reason.
    pub fn not_found(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND).reason(reason)
    }

    /// 409 as Kratos answers taken identifiers.
    pub fn conflict(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT).reason(reason)
    }

    /// 500; the cause is logged by the caller, never shown.
    pub fn internal() -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Sets `error.reason`.
    pub fn reason(mut self, reason: impl Into<String>) -> ApiError {
        self.reason = Some(reason.into());
        self
    }

    /// Sets `error.id`.
    pub fn id(mut self, id: &str) -> ApiError {
        self.id = Some(id.to_string());
        self
    }

    /// Overrides `error.message`.
    pub fn message(mut self, message: impl Into<String>) -> ApiError {
        self.message = message.into();
        self
    }

    /// Sets `error.details`.
    pub fn details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// Adds a top-level key next to `error`.
    pub fn extra(mut self, key: &str, value: Value) -> ApiError {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// Adds a response header (`Retry-After`, …).
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> ApiError {
        self.headers.push((name, value.into()));
        self
    }

    /// The flat `error` object (also what `/self-service/errors` returns).
    pub fn error_object(&self) -> Value {
        let mut e = Map::new();
        if let Some(id) = &self.id {
            e.insert("id".into(), json!(id));
        }
        e.insert("code".into(), json!(self.status.as_u16()));
        e.insert(
            "status".into(),
            json!(self.status.canonical_reason().unwrap_or("Error")),
        );
        if let Some(r) = &self.reason {
            e.insert("reason".into(), json!(r));
        }
        if let Some(d) = &self.details {
            e.insert("details".into(), d.clone());
        }
        e.insert("message".into(), json!(self.message));
        Value::Object(e)
    }

    /// The whole response body.
    pub fn body(&self) -> Value {
        let mut top = self.extra.clone();
        top.insert("error".into(), self.error_object());
        Value::Object(top)
    }
}

impl std::ops::Deref for ApiError {
    type Target = ApiErrorData;
    fn deref(&self) -> &ApiErrorData {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ApiErrorData {
        &mut self.0
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict(what) => ApiError::conflict(what),
            StoreError::NotFound => ApiError::not_found("Unable to locate the resource"),
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::internal()
            }
        }
    }
}

impl From<Limited> for ApiError {
    /// `429` (or `503` for a full hashing queue) with `Retry-After` and, where the limit has a
    /// window, the `RateLimit-*` headers of draft-ietf-httpapi-ratelimit-headers.
    fn from(l: Limited) -> ApiError {
        let secs = l.retry_after_secs();
        let (status, id) = match l.kind {
            LimitKind::HashingQueue => (StatusCode::SERVICE_UNAVAILABLE, "server_busy"),
            _ => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded"),
        };
        let mut e = ApiError::new(status)
            .id(id)
            .reason(l.explain())
            .details(json!({"retry_after_seconds": secs}))
            .header("retry-after", secs.to_string());
        if let Some(limit) = l.limit {
            e = e
                .header("ratelimit-limit", limit.to_string())
                .header("ratelimit-remaining", "0")
                .header("ratelimit-reset", secs.to_string());
        }
        e
    }
}

impl From<LimitError> for ApiError {
    fn from(e: LimitError) -> ApiError {
        match e {
            LimitError::Limited(l) => l.into(),
            LimitError::Store(e) => e.into(),
        }
    }
}
