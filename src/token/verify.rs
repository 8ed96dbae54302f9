//! The verifier: one pass from the raw token to typed, trusted claims.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde_json::{Map, Value};
use smallvec::SmallVec;

use super::cache::{CacheOptions, TokenCache};
use super::error::{TokenError, TokenErrorKind as Kind};
use super::fast::{self, HotPayload, NumericDate};
use super::keys::{KeyError, VerifyingKey};
use super::keyset::{KeySet, Miss};
use super::parsed::{HeaderMemo, HeaderScratch, Parsed, malformed, refused_for};
use crate::claims::{ClaimMember, Claims, ClaimsLocation, MemberValue};
use crate::engine::TokenPart;

/// Tokens longer than this are refused before any decoding (8 KiB).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A token whose signature and registered claims checked out.
///
/// Cheap to clone (one reference count): the layer puts it into the request's
/// extensions, where handlers read it (in axum, as an extractor).
#[derive(Clone)]
pub struct VerifiedToken(Arc<TokenInner>);

/// Payloads up to this many bytes (nearly every access token's) are kept inside the
/// token's one allocation; longer ones get a second.
const INLINE_PAYLOAD: usize = 384;

/// The decoded payload JSON.
type RawPayload = SmallVec<[u8; INLINE_PAYLOAD]>;

struct TokenInner {
    /// The whole payload, parsed when first asked for (the fast path never needs it).
    payload: OnceLock<Map<String, Value>>,
    /// The decoded payload JSON, kept for that.
    raw_payload: RawPayload,
    claims: Claims,
    algorithm: Algorithm,
    key_id: Option<Arc<str>>,
    expires_at: i64,
    not_before: Option<i64>,
    issued_at: Option<i64>,
    /// What the claims resolve to under the first policy that read them (see
    /// [`Entitlements::for_token`](crate::Entitlements)): kept here so that a cached
    /// token's requests skip the plan and role lookups.
    policy_part: OnceLock<TokenPart>,
}

impl TokenInner {
    /// Records the registered times the verifier checked.
    fn set_times(&mut self, times: Times) {
        (self.expires_at, self.not_before, self.issued_at) = (times.exp, times.nbf, times.iat);
    }
}

impl VerifiedToken {
    /// A token with no payload or claims yet, for the verifier to fill in place
    /// through [`unique`](Self::unique): the payload is decoded straight into the
    /// token's own allocation, and nothing of the token's size is moved.
    fn blank(algorithm: Algorithm, key_id: Option<Arc<str>>) -> VerifiedToken {
        VerifiedToken(Arc::new(TokenInner {
            payload: OnceLock::new(),
            raw_payload: RawPayload::new(),
            claims: Claims::default(),
            algorithm,
            key_id,
            expires_at: 0,
            not_before: None,
            issued_at: None,
            policy_part: OnceLock::new(),
        }))
    }

    /// The inside of a token made by [`blank`](Self::blank) and not yet shared.
    fn unique(&mut self) -> &mut TokenInner {
        // `blank` made this Arc and nothing has cloned it yet; no input reaches this.
        #[allow(clippy::expect_used)]
        Arc::get_mut(&mut self.0).expect("a blank token is not shared before it is filled in")
    }

    pub(crate) fn policy_part(&self) -> &OnceLock<TokenPart> {
        &self.0.policy_part
    }

    /// The `sub` claim, when it is a string.
    pub fn subject(&self) -> Option<&str> {
        self.get_str("sub")
    }

    /// The `email` claim, when it is a string.
    pub fn email(&self) -> Option<&str> {
        self.get_str("email")
    }

    /// The `iss` claim.
    pub fn issuer(&self) -> Option<&str> {
        self.get_str("iss")
    }

    /// The subscription claims (`plan`, `role`, `trial_ends`, `seats`, custom).
    pub fn claims(&self) -> &Claims {
        &self.0.claims
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

/// A verifier configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key could not be loaded.
    #[error("{0}")]
    Key(#[from] KeyError),
    /// No static key and no JWKS URL.
    #[error("no verification keys: add one with .hmac_secret, .public_key_pem, .key or .jwks_url")]
    NoKeys,
    /// No issuer configured and not explicitly waived.
    #[error(
        "no issuer: call .issuer(\"https://auth.example.com\") with the `iss` your tokens carry, or .allow_any_issuer() if every issuer whose keys you trust is acceptable"
    )]
    NoIssuer,
    /// No audience configured and not explicitly waived.
    #[error(
        "no audience: call .audience(\"my-api\") with the `aud` your tokens carry, or .allow_any_audience() to accept tokens meant for any service"
    )]
    NoAudience,
    /// A JWKS URL that cannot be used.
    #[error("JWKS URL {url:?}: {reason}")]
    JwksUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Verifies access tokens: size and alphabet guard, header (`alg`, `kid`, `typ`,
/// `crit`), key, signature, then `exp`/`nbf`/`iat`/`iss`/`aud` against an injected
/// clock. Cheap to clone.
///
/// ```
/// use tiergate::token::{Algorithm, Verifier};
/// # use jsonwebtoken::{encode, EncodingKey, Header};
/// # use chrono::Utc;
/// let secret = b"an example secret of at least 32 bytes!";
/// let verifier = Verifier::builder()
///     .hmac_secret(Algorithm::HS256, secret)
///     .issuer("https://auth.example.com")
///     .audience("my-api")
///     .build()?;
///
/// # let now = Utc::now().timestamp();
/// # let payload = serde_json::json!({"sub": "usr_1", "iss": "https://auth.example.com",
/// #     "aud": "my-api", "exp": now + 300, "claims": {"plan": "pro"}});
/// # let token = encode(&Header::new(jsonwebtoken::Algorithm::HS256), &payload,
/// #     &EncodingKey::from_secret(secret)).unwrap();
/// let verified = verifier.verify(&token, Utc::now())?;
/// assert_eq!(verified.subject(), Some("usr_1"));
/// assert_eq!(verified.claims().plan(), Some("pro"));
///
/// let err = verifier.verify("not-a-token", Utc::now()).unwrap_err();
/// assert_eq!(err.code(), "malformed_token");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier(Arc<VerifierInner>);

pub(crate) struct VerifierInner {
    keys: KeySet,
    #[cfg(feature = "jwks")]
    pub(crate) jwks: Option<Arc<super::jwks::Jwks>>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: i64,
    typ: Option<String>,
    max_len: usize,
    location: ClaimsLocation,
    cache: Option<TokenCache>,
    /// Headers of recently verified tokens, already read.
    headers: HeaderMemo,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.0.keys.keys())
            .field("issuers", &self.0.issuers)
            .field("audiences", &self.0.audiences)
            .field("leeway", &self.0.leeway)
            .field("typ", &self.0.typ)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Verifier`]. Key errors are kept and reported by [`build`](Self::build),
/// so the chain reads top to bottom.
#[derive(Debug)]
pub struct VerifierBuilder {
    keys: Vec<VerifyingKey>,
    error: Option<ConfigError>,
    #[cfg(feature = "jwks")]
    jwks: Option<super::jwks::JwksLocation>,
    #[cfg(feature = "jwks")]
    jwks_options: super::jwks::JwksOptions,
    issuers: Vec<String>,
    any_issuer: bool,
    audiences: Vec<String>,
    any_audience: bool,
    leeway: Duration,
    typ: Option<String>,
    max_len: usize,
    location: ClaimsLocation,
    cache: Option<CacheOptions>,
}

impl Verifier {
    /// Starts a configuration: at least one key source, an issuer and an audience.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder {
            keys: Vec::new(),
            error: None,
            #[cfg(feature = "jwks")]
            jwks: None,
            #[cfg(feature = "jwks")]
            jwks_options: Default::default(),
            issuers: Vec::new(),
            any_issuer: false,
            audiences: Vec::new(),
            any_audience: false,
            leeway: Duration::from_secs(30),
            typ: None,
            max_len: DEFAULT_MAX_TOKEN_BYTES,
            location: ClaimsLocation::default(),
            cache: Some(CacheOptions::default()),
        }
    }

    /// Verifies with the keys at hand. With a JWKS source, a token whose `kid` is not
    /// yet known fails with [`Kind::UnknownKey`]; [`verify_fetching`](Self::verify_fetching)
    /// refetches the key set first (what the layer does).
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<VerifiedToken, TokenError> {
        self.verify_at(token, now.timestamp())
    }

    /// [`verify`](Self::verify) at `now` in unix seconds (what the layer calls: it
    /// never needs a calendar date).
    pub(crate) fn verify_at(&self, token: &str, now: i64) -> Result<VerifiedToken, TokenError> {
        let generation = self.key_generation();
        match self.cached_at(token.as_bytes(), now, generation) {
            Some(hit) => Ok(hit),
            None => self.verify_fresh_at(token, now, generation),
        }
    }

    /// The cache's verification of `token`, if it holds one made with key set
    /// `generation` that is valid at `now`. Takes the token's bytes: the layer looks a
    /// token up before it reads it as text, since a token found here needs no other
    /// check.
    pub(crate) fn cached_at(
        &self,
        token: &[u8],
        now: i64,
        generation: u64,
    ) -> Option<VerifiedToken> {
        let cache = self.0.cache.as_ref()?;
        cache.get(token, now, self.0.leeway, generation)
    }

    /// Verifies without looking in the cache, and stores the token there when it
    /// verifies, tagged with `generation` (read before verifying, so an entry is never
    /// tagged with a newer key set than the one that verified it).
    pub(crate) fn verify_fresh_at(
        &self,
        token: &str,
        now: i64,
        generation: u64,
    ) -> Result<VerifiedToken, TokenError> {
        let verified = self.verify_uncached(token, now)?;
        if let Some(cache) = &self.0.cache {
            cache.insert(token.as_bytes(), &verified, now, self.0.leeway, generation);
        }
        Ok(verified)
    }

    /// Which key set is current, for tagging cache entries (a JWKS refetch starts a
    /// new one). Read once per request, first: it also starts a JWKS refresh that is
    /// due.
    pub(crate) fn key_generation(&self) -> u64 {
        #[cfg(feature = "jwks")]
        if let Some(j) = &self.0.jwks {
            return j.current_generation();
        }
        0
    }

    /// Tokens in the verified-token cache.
    pub fn cached_tokens(&self) -> usize {
        self.0.cache.as_ref().map_or(0, TokenCache::len)
    }

    /// Verifies (fast path for HMAC with nested claims, general path otherwise). A
    /// failure's reason goes through [`refused_for`], which puts a malformed token's
    /// reason first, as on the general path.
    fn verify_uncached(&self, token: &str, now: i64) -> Result<VerifiedToken, TokenError> {
        let verify = || {
            let mut scratch = HeaderScratch::new();
            let parsed = Parsed::new(token, self.0.max_len, &mut scratch, Some(&self.0.headers))?;
            self.check_header(&parsed)?;
            let verified = match &self.0.location {
                ClaimsLocation::Nested(key) if parsed.alg.family() == AlgorithmFamily::Hmac => {
                    self.verify_fast(&parsed, now, key)
                }
                _ => self.verify_general(&parsed, now),
            }?;
            self.0.headers.remember(&parsed);
            Ok(verified)
        };
        verify().map_err(|e| refused_for(token, e))
    }

    /// Verifies on the general path only, never the HMAC fast path: for the
    /// differential tests that hold the two to the same answers.
    #[doc(hidden)]
    pub fn verify_general_path(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<VerifiedToken, TokenError> {
        let general = || {
            let mut scratch = HeaderScratch::new();
            let parsed = Parsed::new(token, self.0.max_len, &mut scratch, None)?;
            self.check_header(&parsed)?;
            self.verify_general(&parsed, now.timestamp())
        };
        general().map_err(|e| refused_for(token, e))
    }

    /// Like [`verify`](Self::verify), but when the token names a `kid` no loaded key
    /// has, refetches the JWKS (at most once per cooldown, one fetch in flight for
    /// all requests) and tries again.
    pub async fn verify_fetching(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<VerifiedToken, TokenError> {
        self.verify_fetching_at(token, now.timestamp()).await
    }

    pub(crate) async fn verify_fetching_at(
        &self,
        token: &str,
        now: i64,
    ) -> Result<VerifiedToken, TokenError> {
        let first = self.verify_at(token, now);
        #[cfg(feature = "jwks")]
        if let (Err(e), Some(jwks)) = (&first, &self.0.jwks)
            && e.kind() == Kind::UnknownKey
        {
            jwks.refetch().await;
            return self.verify_at(token, now).map_err(|e| jwks.explain(e));
        }
        first
    }

    /// What the JWKS cache has done, when keys come from a JWKS URL.
    #[cfg(feature = "jwks")]
    pub fn jwks_stats(&self) -> Option<super::jwks::JwksStats> {
        self.0.jwks.as_ref().map(|j| j.stats())
    }

    /// Whether a failed [`verify`](Self::verify) might succeed after a JWKS refetch.
    pub(crate) fn may_refetch(&self, err: &TokenError) -> bool {
        #[cfg(feature = "jwks")]
        if self.0.jwks.is_some() && err.kind() == Kind::UnknownKey {
            return true;
        }
        let _ = err;
        false
    }

    fn check_header(&self, p: &Parsed<'_, '_>) -> Result<(), TokenError> {
        if p.crit {
            return Err(TokenError::new(
                Kind::CriticalHeader,
                "the token header has `crit`: it depends on extensions this verifier does not implement",
            ));
        }
        if let Some(want) = &self.0.typ {
            let ok = p.typ().is_some_and(|t| {
                t.eq_ignore_ascii_case(want)
                    || t.strip_prefix("application/")
                        .is_some_and(|t| t.eq_ignore_ascii_case(want))
            });
            if !ok {
                return Err(TokenError::new(
                    Kind::WrongType,
                    format!("the token header's `typ` must be `{want}`"),
                ));
            }
        }
        Ok(())
    }

    /// The general path: any algorithm (signature through `jsonwebtoken::crypto`),
    /// the whole payload parsed into a map, any claims location.
    fn verify_general(&self, p: &Parsed<'_, '_>, now: i64) -> Result<VerifiedToken, TokenError> {
        let key_id = self.find_key(p, |k| p.signature_ok(k))?;
        let mut token = VerifiedToken::blank(p.alg, key_id);
        let inner = token.unique();
        decode_payload(p.payload, &mut inner.raw_payload)?;
        let payload = parse_payload(&inner.raw_payload)?;
        let times = self.check_registered(&Registered::from_map(&payload), now)?;
        inner.claims = Claims::from_payload_map(&payload, &self.0.location);
        inner.set_times(times);
        inner.payload = OnceLock::from(payload);
        Ok(token)
    }

    /// The HMAC fast path (see [`super::fast`]): the same checks and answers.
    fn verify_fast(
        &self,
        p: &Parsed<'_, '_>,
        now: i64,
        claims_key: &str,
    ) -> Result<VerifiedToken, TokenError> {
        let message = p.message.as_bytes();
        let key_id = self.find_key(p, |k| fast::hmac_signature_ok(k, message, p.signature))?;
        let mut token = VerifiedToken::blank(p.alg, key_id);
        let inner = token.unique();
        decode_payload(p.payload, &mut inner.raw_payload)?;
        // Invalid UTF-8 anywhere makes the general path's parse fail too.
        let text = std::str::from_utf8(&inner.raw_payload)
            .map_err(|_| malformed("the payload is not valid JSON"))?;
        let hot = HotPayload::parse(text, claims_key, &mut inner.claims).map_err(|e| {
            malformed(if e.is_data() {
                "the payload is not a JSON object"
            } else {
                "the payload is not valid JSON"
            })
        })?;
        let times = self.check_registered(&Registered::from_hot(&hot), now)?;
        inner.set_times(times);
        Ok(token)
    }

    /// Finds the key that verifies the signature; returns its `kid`.
    fn find_key(
        &self,
        p: &Parsed<'_, '_>,
        signature_ok: impl Fn(&VerifyingKey) -> bool,
    ) -> Result<Option<Arc<str>>, TokenError> {
        let (kid, alg) = (p.kid(), p.alg);
        #[cfg_attr(not(feature = "jwks"), allow(unused_mut))]
        let mut miss = match self.0.keys.candidates(kid, alg) {
            Ok(mut keys) => {
                return keys
                    .find(|k| signature_ok(k))
                    .map(|k| k.kid.clone())
                    .ok_or_else(bad_signature);
            }
            Err(miss) => miss,
        };
        #[cfg(feature = "jwks")]
        if let Some(jwks) = &self.0.jwks {
            let set = jwks.keys();
            match set.candidates(kid, alg) {
                Ok(mut keys) => {
                    return keys
                        .find(|k| signature_ok(k))
                        .map(|k| k.kid.clone())
                        .ok_or_else(bad_signature);
                }
                // A wrong algorithm from either source is the more useful answer.
                Err(m @ Miss::WrongAlgorithm(_)) => miss = m,
                Err(Miss::UnknownKid) => {}
            }
        }
        Err(match miss {
            Miss::WrongAlgorithm(bound) => TokenError::new(
                Kind::AlgorithmMismatch,
                format!("the token says `{alg:?}` but its key verifies only `{bound:?}`"),
            ),
            Miss::UnknownKid => TokenError::new(
                Kind::UnknownKey,
                match kid {
                    Some(_) => "no verification key has the token's `kid`",
                    None => "the token has no `kid` and no key without an id is configured",
                },
            ),
        })
    }

    /// `exp`, `nbf`, `iat`, `iss`, `aud`: the same checks, in the same order, for
    /// both paths. Returns `exp`.
    fn check_registered(&self, reg: &Registered<'_>, now: i64) -> Result<Times, TokenError> {
        let leeway = self.0.leeway;
        let Some(exp) = numeric_date(reg.exp, "exp")? else {
            return Err(missing("exp"));
        };
        if now >= exp.saturating_add(leeway) {
            return Err(TokenError::new(Kind::Expired, "the token has expired"));
        }
        let nbf = numeric_date(reg.nbf, "nbf")?;
        if let Some(nbf) = nbf
            && now.saturating_add(leeway) < nbf
        {
            return Err(TokenError::new(
                Kind::NotYetValid,
                "the token is not valid yet (`nbf`)",
            ));
        }
        let iat = numeric_date(reg.iat, "iat")?;
        if let Some(iat) = iat
            && iat > now.saturating_add(leeway)
        {
            return Err(TokenError::new(
                Kind::IssuedInFuture,
                "the token was issued in the future (`iat`); check the issuer's clock",
            ));
        }
        if !self.0.issuers.is_empty() {
            match reg.iss {
                None => return Err(missing("iss")),
                Some(Some(iss)) if self.0.issuers.iter().any(|i| i == iss) => {}
                Some(Some(_)) => {
                    return Err(TokenError::new(
                        Kind::WrongIssuer,
                        "the token's `iss` is not an accepted issuer",
                    ));
                }
                Some(None) => return Err(invalid("iss", "a string")),
            }
        }
        if !self.0.audiences.is_empty() {
            let accepted = |a: &str| self.0.audiences.iter().any(|x| x == a);
            let not_strings = || invalid("aud", "a string or an array of strings");
            let ok = match &reg.aud {
                None => return Err(missing("aud")),
                Some(AudView::One(Some(a))) => accepted(a),
                Some(AudView::One(None)) => return Err(not_strings()),
                Some(AudView::Values(list)) => {
                    if !list.iter().all(Value::is_string) {
                        return Err(not_strings());
                    }
                    list.iter().filter_map(Value::as_str).any(accepted)
                }
            };
            if !ok {
                return Err(TokenError::new(
                    Kind::WrongAudience,
                    "the token's `aud` names none of this service's audiences",
                ));
            }
        }
        Ok(Times { exp, nbf, iat })
    }
}

fn bad_signature() -> TokenError {
    TokenError::new(Kind::BadSignature, "the signature does not verify")
}

fn missing(claim: &'static str) -> TokenError {
    TokenError::new(
        Kind::MissingClaim,
        format!("the token has no `{claim}` claim"),
    )
}

fn invalid(claim: &'static str, want: &'static str) -> TokenError {
    TokenError::new(
        Kind::InvalidClaim,
        format!("the token's `{claim}` must be {want}"),
    )
}

/// A present NumericDate claim, as the checks need it.
fn numeric_date(
    value: Option<NumericDate>,
    claim: &'static str,
) -> Result<Option<i64>, TokenError> {
    match value {
        None => Ok(None),
        Some(NumericDate::Secs(s)) => Ok(Some(s)),
        Some(NumericDate::NotANumber) => Err(invalid(claim, "a number of seconds")),
    }
}

/// The time claims of a verified token.
struct Times {
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
}

/// The registered claims as either path found them.
struct Registered<'v> {
    exp: Option<NumericDate>,
    nbf: Option<NumericDate>,
    iat: Option<NumericDate>,
    /// `Some(None)`: present but not a string.
    iss: Option<Option<&'v str>>,
    aud: Option<AudView<'v>>,
}

enum AudView<'v> {
    /// A single value: `Some` when it is a string.
    One(Option<&'v str>),
    Values(&'v [Value]),
}

impl<'v> Registered<'v> {
    fn from_map(payload: &'v Map<String, Value>) -> Registered<'v> {
        Registered {
            exp: payload.get("exp").map(NumericDate::of),
            nbf: payload.get("nbf").map(NumericDate::of),
            iat: payload.get("iat").map(NumericDate::of),
            iss: payload.get("iss").map(|v| as_str(v.into())),
            aud: payload.get("aud").map(|v| aud_view(v.into())),
        }
    }

    fn from_hot(p: &'v HotPayload<'v>) -> Registered<'v> {
        Registered {
            exp: p.exp,
            nbf: p.nbf,
            iat: p.iat,
            iss: p.iss.as_ref().map(|m| as_str(m.view())),
            aud: p.aud.as_ref().map(|m| aud_view(m.view())),
        }
    }
}

fn as_str(v: MemberValue<'_>) -> Option<&str> {
    match v {
        MemberValue::Str(s) => Some(s),
        MemberValue::Json(_) => None,
    }
}

fn aud_view(v: MemberValue<'_>) -> AudView<'_> {
    match v {
        MemberValue::Str(s) => AudView::One(Some(s)),
        MemberValue::Json(Value::Array(list)) => AudView::Values(list),
        MemberValue::Json(_) => AudView::One(None),
    }
}

/// Decodes the payload segment into the token's buffer (inline up to
/// [`INLINE_PAYLOAD`] bytes).
fn decode_payload(segment: &str, out: &mut RawPayload) -> Result<(), TokenError> {
    let bad = || malformed("the payload is not valid base64url");
    out.resize(super::b64::decoded_len(segment).ok_or_else(bad)?, 0);
    super::b64::decode_into(segment, out)
        .map(drop)
        .ok_or_else(bad)
}

fn parse_payload(bytes: &[u8]) -> Result<Map<String, Value>, TokenError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(malformed("the payload is not a JSON object")),
        Err(_) => Err(malformed("the payload is not valid JSON")),
    }
}

impl VerifierBuilder {
    /// Adds a key.
    pub fn key(mut self, key: VerifyingKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds an HMAC secret (`HS256`/`HS384`/`HS512`, at least 32 bytes).
    pub fn hmac_secret(self, alg: Algorithm, secret: impl AsRef<[u8]>) -> Self {
        let key = VerifyingKey::hmac(alg, secret);
        self.push(key)
    }

    /// Adds a PEM public key bound to `alg`.
    pub fn public_key_pem(self, alg: Algorithm, pem: impl AsRef<[u8]>) -> Self {
        let key = VerifyingKey::from_pem(alg, pem);
        self.push(key)
    }

    fn push(mut self, key: Result<VerifyingKey, KeyError>) -> Self {
        match key {
            Ok(k) => self.keys.push(k),
            Err(e) => {
                self.error.get_or_insert(ConfigError::Key(e));
            }
        }
        self
    }

    /// Fetches keys from a JWKS URL (HTTPS; plain HTTP only to a loopback address),
    /// refetching when a token names an unknown `kid`.
    #[cfg(feature = "jwks")]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks = Some(super::jwks::JwksLocation::Url(url.into()));
        self
    }

    /// Finds the JWKS URL through OIDC discovery (`{issuer}/.well-known/openid-configuration`)
    /// and accepts `issuer` as the token issuer.
    #[cfg(feature = "jwks")]
    pub fn oidc_issuer(mut self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.issuers.push(issuer.clone());
        self.jwks = Some(super::jwks::JwksLocation::Discovery(issuer));
        self
    }

    /// Tunes the JWKS cache: cooldown, timeout, body limit, refresh interval.
    #[cfg(feature = "jwks")]
    pub fn jwks_options(mut self, options: super::jwks::JwksOptions) -> Self {
        self.jwks_options = options;
        self
    }

    /// Accepts tokens whose `iss` is this issuer (call again for more). Tokens without
    /// `iss` are refused.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accepts any issuer. Only for a key set that a single issuer owns.
    pub fn allow_any_issuer(mut self) -> Self {
        self.any_issuer = true;
        self
    }

    /// Accepts tokens whose `aud` names this audience (call again for more). Tokens
    /// without `aud` are refused.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts tokens for any audience.
    pub fn allow_any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Requires the header's `typ`, e.g. `at+jwt` (RFC 9068); `application/at+jwt` matches too.
    pub fn require_type(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Refuses longer tokens before decoding (default 8 KiB).
    pub fn max_token_bytes(mut self, max: usize) -> Self {
        self.max_len = max;
        self
    }

    /// Where the subscription claims sit in the payload (default: under `claims`).
    pub fn claims_location(mut self, location: ClaimsLocation) -> Self {
        self.location = location;
        self
    }

    /// The verified-token cache: on by default (10,000 tokens, 16 MiB, 60 s);
    /// `None` verifies every token every time.
    pub fn token_cache(mut self, options: Option<CacheOptions>) -> Self {
        self.cache = options;
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<Verifier, ConfigError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        #[cfg(feature = "jwks")]
        let jwks = match self.jwks {
            Some(location) => Some(Arc::new(super::jwks::Jwks::new(
                location,
                self.jwks_options,
            )?)),
            None => None,
        };
        #[cfg(feature = "jwks")]
        let has_jwks = jwks.is_some();
        #[cfg(not(feature = "jwks"))]
        let has_jwks = false;
        if self.keys.is_empty() && !has_jwks {
            return Err(ConfigError::NoKeys);
        }
        if self.issuers.is_empty() && !self.any_issuer {
            return Err(ConfigError::NoIssuer);
        }
        if self.audiences.is_empty() && !self.any_audience {
            return Err(ConfigError::NoAudience);
        }
        Ok(Verifier(Arc::new(VerifierInner {
            keys: KeySet::new(self.keys),
            #[cfg(feature = "jwks")]
            jwks,
            issuers: self.issuers,
            audiences: self.audiences,
            leeway: i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX),
            typ: self.typ,
            max_len: self.max_len,
            location: self.location,
            cache: self.cache.map(TokenCache::new),
            headers: HeaderMemo::default(),
        })))
    }
}
