//! Client credentials (a backend's `client_id` and `client_secret`): read from the
//! body or HTTP Basic, and checked against the stored keyed hash. Every endpoint
//! that a backend calls (claims, tokens, the claims-change feed) takes them from here.

use axum::http::{HeaderMap, header};
use base64::Engine as _;

use super::problem::ApiError;
use super::secrets::{self, ClientCheck};
use super::state::{AppState, ClientAddr};

/// Client credentials from the body or HTTP Basic — one of them (RFC 6749 §2.3: a
/// request that uses both is a 400, whichever would have succeeded).
pub(crate) fn credentials(
    headers: &HeaderMap,
    id: Option<String>,
    secret: Option<String>,
) -> Result<(String, String), ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let basic = authorization.and_then(|v| {
        v.split_once(' ')
            .filter(|(s, _)| s.eq_ignore_ascii_case("basic"))
            .map(|(_, b)| b.trim())
    });
    let in_body = id.is_some() || secret.is_some();
    if in_body && basic.is_some() {
        return Err(ApiError::two_client_methods());
    }
    if in_body {
        return match (id, secret) {
            (Some(id), Some(secret)) => Ok((id, secret)),
            (None, _) => Err(ApiError::field(
                "client_id",
                "send client_id with client_secret",
            )),
            (_, None) => Err(ApiError::field(
                "client_secret",
                "send client_secret with client_id",
            )),
        };
    }
    let decoded = basic
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    match decoded.as_deref().and_then(|s| s.split_once(':')) {
        Some((id, secret)) => Ok((id.to_owned(), secret.to_owned())),
        None => Err(ApiError::no_client()),
    }
}

/// Checks client credentials. A missing client and a wrong secret take the same
/// time and get the same answer; a wrong secret spends the client's and the
/// address's failure budgets (429 once spent), a right one spends nothing.
pub(crate) async fn authenticate(
    s: &AppState,
    addr: ClientAddr,
    id: &str,
    secret: &str,
) -> Result<(), ApiError> {
    let stored = s.db.client_secret_hash(id).await?;
    match secrets::check_client_secret(&s.hasher, secret, stored.as_deref()).await? {
        ClientCheck::Valid => Ok(()),
        ClientCheck::ValidRehash(new) => {
            if let Some(old) = &stored {
                s.db.rehash_client_secret(id, old, &new).await?;
            }
            Ok(())
        }
        ClientCheck::Invalid => match failed(s, id, addr) {
            Ok(()) => Err(ApiError::bad_client()),
            Err(wait) => Err(ApiError::rate_limited(wait)),
        },
    }
}

/// Counts a failed client authentication and spends the failure budgets.
fn failed(s: &AppState, id: &str, addr: ClientAddr) -> Result<(), u64> {
    crate::telemetry::increment(
        crate::telemetry::SERVER_AUTH_FAILURES,
        &[("kind", "client")],
    );
    s.limits.failed_auth(id, addr.0)
}
