//! What goes into a user's access token: the reference layout of its payload, the
//! size check a claims write passes before it is stored, and minting (with the
//! claims version the token was minted from). The platform
//! API and the dashboard's operations both take these from here.

use serde_json::{Map, Value, json};

use super::db::UserRow;
use super::problem::ApiError;
use super::state::{AppState, unreadable};

/// The largest token a gated app accepts by default; claims that would make a
/// bigger one are refused where they are set, not by every app later.
const MAX_TOKEN_BYTES: usize = crate::token::DEFAULT_MAX_TOKEN_BYTES;

/// Refuses claims whose token would be over [`MAX_TOKEN_BYTES`], naming the largest
/// claim. The estimate is an upper bound: the longest header the signer writes,
/// the payload with the longest `iat`/`exp`/`jti`, and an Ed25519 signature.
pub(crate) fn fits_in_a_token(
    s: &AppState,
    user: &UserRow,
    claims: &Map<String, Value>,
) -> Result<(), ApiError> {
    const HEADER_B64: usize = 128; // {"typ":"at+jwt","alg":"EdDSA","kid":"k…"} is ~80
    const SIGNATURE_B64: usize = 86;
    let payload = token_payload(
        s,
        &s.audience,
        &user.id,
        [
            ("email", json!(user.email)),
            ("claims", Value::Object(claims.clone())),
        ],
    );
    // iat, exp (up to 12 digits each), jti (24 hex) as the signer adds them, and
    // the claims version (up to 20 digits).
    let payload_len = Value::Object(payload).to_string().len().saturating_add(110);
    let total = payload_len
        .div_ceil(3)
        .saturating_mul(4)
        .saturating_add(HEADER_B64 + 1 + 1 + SIGNATURE_B64);
    if total <= MAX_TOKEN_BYTES {
        return Ok(());
    }
    let largest = claims
        .iter()
        .max_by_key(|(k, v)| k.len().saturating_add(v.to_string().len()))
        .map_or("claims".to_owned(), |(k, _)| format!("claims.{k}"));
    Err(ApiError::field(
        largest.clone(),
        format!(
            "with these claims the user's access token would be about {total} bytes, over the \
             {MAX_TOKEN_BYTES} a gated app accepts; `{largest}` is the largest claim: shorten it"
        ),
    ))
}

/// An access token's payload in the reference layout: `iss`, `aud`, `sub`, then
/// `extra` (the signer adds `iat`, `exp`, `jti`).
pub(crate) fn token_payload<const N: usize>(
    s: &AppState,
    audience: &str,
    sub: &str,
    extra: [(&str, Value); N],
) -> Map<String, Value> {
    let mut payload = Map::new();
    payload.insert("iss".into(), json!(s.issuer));
    payload.insert("aud".into(), json!(audience));
    payload.insert("sub".into(), json!(sub));
    for (k, v) in extra {
        payload.insert(k.into(), v);
    }
    payload
}

/// Mints an access token for a user from their stored claims.
pub(crate) async fn mint_for(s: &AppState, user: &UserRow) -> Result<String, ApiError> {
    if user.unreadable.is_some() {
        return Err(unreadable(&user.email));
    }
    let payload = token_payload(
        s,
        &s.audience,
        &user.id,
        [
            ("email", json!(user.email)),
            ("claims", Value::Object(user.claims.clone())),
            // The claims version the token was minted from: a gated app following
            // the claims-change feed refuses it once a later version is published
            // (`iat`, in whole seconds, cannot tell a token minted just after a
            // change from one minted just before).
            (
                crate::token::CLAIMS_VERSION_CLAIM,
                json!(user.claims_version),
            ),
        ],
    );
    Ok(s.signer.sign(payload).await?)
}
