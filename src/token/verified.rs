//! A verified token: what the verifier hands the layer and the handlers.
//!
//! ```
//! use tiergate::token::{Algorithm, Verifier};
//! # use jsonwebtoken::{encode, EncodingKey, Header};
//! # use chrono::Utc;
//! # let secret = b"an example secret of at least 32 bytes!";
//! # let verifier = Verifier::builder().hmac_secret(Algorithm::HS256, secret)
//! #     .issuer("https://auth.example.com").audience("my-api").build()?;
//! # let payload = serde_json::json!({"sub": "usr_1", "iss": "https://auth.example.com",
//! #     "aud": "my-api", "exp": Utc::now().timestamp() + 300, "team": "blue",
//! #     "claims": {"plan": "pro"}});
//! # let token = encode(&Header::new(jsonwebtoken::Algorithm::HS256), &payload,
//! #     &EncodingKey::from_secret(secret)).unwrap();
//! let verified = verifier.verify(&token, Utc::now())?;
//! assert_eq!(verified.subject(), Some("usr_1"));
//! assert_eq!(verified.claims().plan(), Some("pro"));
//! // Members tiergate does not model, parsed when first asked for:
//! assert_eq!(verified.get("team"), Some(&serde_json::json!("blue")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::{Arc, OnceLock};

use super::algorithm::Algorithm;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use smallvec::SmallVec;
use smol_str::SmolStr;

use crate::claims::Claims;
use crate::engine::TokenPart;

/// A token whose signature and registered claims checked out.
///
/// Cheap to clone (one reference count): the layer puts it into the request's
/// extensions, where handlers read it (in axum, as an extractor).
#[derive(Clone)]
pub struct VerifiedToken(Arc<TokenInner>);

/// Payloads up to this many bytes (nearly every access token's) are kept inside the
/// token's one allocation; longer ones get a second.
pub(crate) const INLINE_PAYLOAD: usize = 384;

/// The decoded payload JSON.
pub(crate) type RawPayload = SmallVec<[u8; INLINE_PAYLOAD]>;

pub(super) struct TokenInner {
    /// The whole payload, parsed when first asked for (verification reads only what it
    /// checks and the claims, so most requests never need it).
    payload: OnceLock<Map<String, Value>>,
    /// The decoded payload JSON, kept for that.
    pub(super) raw_payload: RawPayload,
    pub(super) claims: Claims,
    /// `sub`, when it is a string.
    pub(super) subject: Option<SmolStr>,
    algorithm: Algorithm,
    key_id: Option<Arc<str>>,
    pub(super) expires_at: i64,
    pub(super) not_before: Option<i64>,
    pub(super) issued_at: Option<i64>,
    /// `cv`: the claims version it was minted from, when it is a whole number ≥ 0.
    pub(super) claims_version: Option<u64>,
    /// What the claims resolve to under the first policy that read them (see
    /// the layer's `admission::entitlements_for`): kept here so that a cached
    /// token's requests skip the plan and role lookups.
    policy_part: OnceLock<TokenPart>,
    /// What read `claims`: the verifier's location or a claims mapping.
    pub(super) claims_from: ClaimsFrom,
}

/// What read a verified token's claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClaimsFrom {
    /// The verifier's claims location.
    Location,
    /// The claims mapping with this id.
    Mapping(u64),
}

impl VerifiedToken {
    /// A token with no payload or claims yet, for the verifier to fill in place
    /// through [`unique`](Self::unique): the payload is decoded straight into the
    /// token's own allocation, and nothing of the token's size is moved.
    pub(super) fn blank(algorithm: Algorithm, key_id: Option<Arc<str>>) -> VerifiedToken {
        VerifiedToken(Arc::new(TokenInner {
            payload: OnceLock::new(),
            raw_payload: RawPayload::new(),
            claims: Claims::default(),
            subject: None,
            algorithm,
            key_id,
            expires_at: 0,
            not_before: None,
            issued_at: None,
            claims_version: None,
            policy_part: OnceLock::new(),
            claims_from: ClaimsFrom::Location,
        }))
    }

    /// The inside of a token made by [`blank`](Self::blank) and not yet shared.
    pub(super) fn unique(&mut self) -> &mut TokenInner {
        // `blank` made this Arc and nothing has cloned it yet; no input reaches this.
        #[allow(clippy::expect_used)]
        Arc::get_mut(&mut self.0).expect("a blank token is not shared before it is filled in")
    }

    pub(crate) fn policy_part(&self) -> &OnceLock<TokenPart> {
        &self.0.policy_part
    }

    /// The `sub` claim, when it is a string.
    pub fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }

    /// The `email` claim, when it is a string.
    pub fn email(&self) -> Option<&str> {
        self.get_str("email")
    }

    /// The `iss` claim.
    pub fn issuer(&self) -> Option<&str> {
        self.get_str("iss")
    }

    /// The subscription claims (`plan`, `role`, `trial_ends`, `seats`, custom), as the
    /// verifier read them: at its claims location, or, behind a `TierGate` whose
    /// policy has a `claims:` section, through that mapping (then without custom
    /// claims: read those from [`payload`](Self::payload)).
    pub fn claims(&self) -> &Claims {
        &self.0.claims
    }

    /// The payload's JSON text, as verified.
    pub(crate) fn claims_from(&self) -> ClaimsFrom {
        self.0.claims_from
    }

    pub(crate) fn raw_payload(&self) -> &[u8] {
        &self.0.raw_payload
    }

    /// The whole payload, for claims tiergate does not model.
    pub fn payload(&self) -> &Map<String, Value> {
        self.0.payload.get_or_init(|| {
            // It was valid JSON object text when verified; this cannot fail.
            serde_json::from_slice(&self.0.raw_payload).unwrap_or_default()
        })
    }

    /// One payload member.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.payload().get(name)
    }

    /// When the token expires (`exp`).
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.0.expires_at, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// When it was issued (`iat`, unix seconds), if it says.
    pub fn issued_at(&self) -> Option<i64> {
        self.0.issued_at
    }

    /// The claims version it was minted from (`cv`, set by tiergate's reference
    /// server), if it says: a gated app following the claims-change feed refuses
    /// it once its subject has a later version.
    pub fn claims_version(&self) -> Option<u64> {
        self.0.claims_version
    }

    /// The algorithm that verified it.
    pub fn algorithm(&self) -> Algorithm {
        self.0.algorithm
    }

    /// The `kid` of the key that verified it, if the key has one.
    pub fn key_id(&self) -> Option<&str> {
        self.0.key_id.as_deref()
    }

    /// Whether the time claims still hold at `now` (for a cached token).
    pub(crate) fn still_valid(&self, now: i64, leeway: i64) -> bool {
        now < self.0.expires_at.saturating_add(leeway)
            && self
                .0
                .not_before
                .is_none_or(|nbf| now.saturating_add(leeway) >= nbf)
            && self
                .0
                .issued_at
                .is_none_or(|iat| iat <= now.saturating_add(leeway))
    }

    pub(crate) fn exp_secs(&self) -> i64 {
        self.0.expires_at
    }

    /// Roughly what the token holds in memory, for the cache's byte budget: its
    /// allocation (with the payload inline, or the payload's own beside it) and room
    /// for the payload parsed into a map, should a handler ask for it.
    // Sizes of what is in memory: far from overflowing a usize.
    #[allow(clippy::arithmetic_side_effects)]
    pub(crate) fn approx_bytes(&self) -> usize {
        let raw = &self.0.raw_payload;
        let spilled = if raw.spilled() { raw.len() } else { 0 };
        std::mem::size_of::<TokenInner>() + spilled + raw.len()
    }

    fn get_str(&self, name: &str) -> Option<&str> {
        self.payload().get(name).and_then(Value::as_str)
    }
}

impl fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("sub", &self.subject())
            .field("alg", &self.0.algorithm)
            .field("kid", &self.0.key_id)
            .field("exp", &self.0.expires_at)
            .field("claims", &self.0.claims)
            .finish()
    }
}
