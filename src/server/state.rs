//! What every handler shares: the state, the request helpers (JSON bodies that name
//! the wrong field, the client's address) and the user's JSON shape. The API, the
//! dashboard's JSON and its pages all take these from here; none takes from another.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::db::{Db, UserRow};
use super::limits::Limiter;
use super::problem::ApiError;
use super::secrets::Hasher;
use super::signing::Signer;
use crate::PolicyStore;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler shares.
pub struct AppState {
    pub(crate) db: Db,
    pub(crate) store: PolicyStore,
    pub(crate) signer: Signer,
    pub(crate) issuer: String,
    /// The `aud` of user tokens.
    pub(crate) audience: String,
    /// The `aud` of machine (client-credentials) tokens: another one, so a gated app
    /// that accepts user tokens refuses machine tokens unless it opts in.
    pub(crate) machine_audience: String,
    pub(crate) limits: Limiter,
    pub(crate) hasher: Hasher,
    pub(crate) trusted_proxies: Vec<IpAddr>,
    pub(crate) sessions: super::session::SessionConfig,
    /// A refresh token reused within this long is a race, not theft.
    pub(crate) refresh_race_grace: std::time::Duration,
}

/// The state as handlers hold it.
pub type Shared = Arc<AppState>;

/// The address a request's rate limits are charged to (see [`super::client_addr`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<Shared> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        Ok(ClientAddr(super::client_addr::client_addr(
            peer,
            &parts.headers,
            &s.trusted_proxies,
        )))
    }
}

/// Parses a JSON body; unknown or missing fields are named.
pub fn parse<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                r.status(),
                "body_too_large",
                format!("the body is over {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", r.body_text())
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        let text = e.to_string();
        let field = ["unknown field `", "missing field `"]
            .iter()
            .find_map(|p| text.split(p).nth(1).and_then(|rest| rest.split('`').next()))
            .map(str::to_owned);
        match field {
            Some(f) => ApiError::field(f, text),
            None if e.is_data() => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", text)
            }
            None => ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", text),
        }
    })
}

/// A query string's rejection as problem+json naming the parameter where it can.
pub fn query_error(e: &axum::extract::rejection::QueryRejection) -> ApiError {
    let text = e.body_text();
    // serde_urlencoded says "…: <field>: <why>".
    let field = text
        .trim_start_matches("Failed to deserialize query string: ")
        .split_once(':')
        .map(|(f, _)| f.trim().to_owned())
        .filter(|f| !f.is_empty() && !f.contains(' '));
    let mut err = ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", text);
    if let Some(f) = field {
        err = err.with_field(f);
    }
    err
}

/// A user as the API shows them. Unreadable stored claims are shown as
/// `"claims": null` with the raw text beside them, never as `{}`.
pub fn user_json(u: &UserRow) -> Value {
    let updated = chrono::DateTime::from_timestamp_millis(u.updated_at).map(|t| t.to_rfc3339());
    let mut v = json!({
        "user_id": u.id,
        "email": u.email,
        "claims": u.claims,
        "claims_version": u.claims_version,
        "updated_at": updated,
    });
    if let (Some(raw), Some(o)) = (&u.unreadable, v.as_object_mut()) {
        o.insert("claims".into(), Value::Null);
        o.insert("claims_unreadable".into(), json!(raw));
    }
    v
}

/// 409 for a user whose stored claims are not a JSON object: nothing is written on
/// top of them and no token is minted from them.
pub fn unreadable(email: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "stored_claims_unreadable",
        format!(
            "the stored claims of {email} are not a JSON object (written by hand or an older \
             version); nothing was changed. Fix the row in the database, then retry"
        ),
    )
}
