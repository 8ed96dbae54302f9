//! API errors as RFC 9457 problem+json, each naming the field that is wrong.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A 4xx (or 5xx) the API answers with.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    reason: &'static str,
    detail: String,
    field: Option<String>,
    retry_after: Option<u64>,
    /// `WWW-Authenticate` on a 401: only where HTTP Basic is an accepted method, so
    /// a browser never pops a password prompt for the dashboard.
    challenge: Option<&'static str>,
}

impl ApiError {
    /// A problem with a status, a stable reason code and a sentence.
    pub fn new(status: StatusCode, reason: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            reason,
            detail: detail.into(),
            field: None,
            retry_after: None,
            challenge: None,
        }
    }

    /// The same problem, naming a field.
    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// 422 for one field of the request.
    pub fn field(field: impl Into<String>, detail: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", detail)
        }
    }

    /// 401 for bad client credentials: the same body whether or not the client exists.
    pub fn bad_client() -> ApiError {
        ApiError {
            challenge: Some("Basic realm=\"tiergate\""),
            ..ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "the client id or secret is wrong",
            )
        }
    }

    /// 401 for a request with no client credentials at all.
    pub fn no_client() -> ApiError {
        ApiError {
            challenge: Some("Basic realm=\"tiergate\""),
            ..ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "send client_id and client_secret in the body or as HTTP Basic credentials",
            )
        }
    }

    /// 400 for a request that authenticates the client twice (RFC 6749 §2.3).
    pub fn two_client_methods() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "use one client authentication method: client_id and client_secret in the body, \
             or HTTP Basic — not both",
        )
    }

    /// 503 with `Retry-After`: password hashing is at capacity.
    pub fn busy() -> ApiError {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the server is at capacity for password checks; retry in a second",
            )
        }
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many attempts; retry after the time in Retry-After",
            )
        }
    }

    /// 500 that logs the cause and tells the client nothing internal.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(target: "tiergate::server", error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; it has been logged",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body's own members (`type`, `status` and `reason` are added when it is sent).
    pub fn body(&self) -> Value {
        let mut body = json!({
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "detail": self.detail,
        });
        if let (Some(f), Some(o)) = (&self.field, body.as_object_mut()) {
            o.insert("field".into(), json!(f));
        }
        body
    }
}

impl From<super::secrets::Busy> for ApiError {
    fn from(_: super::secrets::Busy) -> Self {
        ApiError::busy()
    }
}

impl From<super::db::DbError> for ApiError {
    fn from(e: super::db::DbError) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = crate::layer::problem(self.status, self.reason, self.body()).into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(c) = self.challenge {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        res
    }
}
