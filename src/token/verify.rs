//! The verifier: one pass from the raw token to typed, trusted claims.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::cache::TokenCache;
use super::error::{TokenError, TokenErrorKind as Kind};
use super::keyset::{KeySet, Miss};
use super::parsed::{HeaderMemo, HeaderScratch, Parsed, refused_for};
use super::signature::{self, Method, SignedPayload};
use super::verified::ClaimsFrom;
use super::verified::VerifiedToken;
use crate::claims::reader::ClaimsSource;
use crate::claims::reader::{Member, NumericDate, Registered};
use crate::claims::{ClaimsLocation, ClaimsMapping};
use crate::telemetry;

/// Tokens longer than this are refused before any decoding (8 KiB).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

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
pub struct Verifier(pub(super) Arc<VerifierInner>);

pub(crate) struct VerifierInner {
    pub(super) keys: KeySet,
    #[cfg(feature = "jwks")]
    pub(crate) jwks: Option<Arc<super::jwks::Jwks>>,
    pub(super) issuers: Vec<String>,
    pub(super) audiences: Vec<String>,
    pub(super) leeway: i64,
    pub(super) typ: Option<String>,
    pub(super) max_len: usize,
    pub(super) location: ClaimsLocation,
    pub(super) cache: Option<TokenCache>,
    /// Headers of recently verified tokens, already read.
    pub(super) headers: HeaderMemo,
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

impl Verifier {
    /// Verifies with the keys at hand. With a JWKS source, a token whose `kid` is not
    /// yet known fails with [`Kind::UnknownKey`]; [`verify_fetching`](Self::verify_fetching)
    /// refetches the key set first (what the layer does).
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<VerifiedToken, TokenError> {
        self.verify_at(token, now.timestamp())
    }

    /// [`verify`](Self::verify) at `now` in unix seconds (what the layer calls: it
    /// never needs a calendar date).
    pub(crate) fn verify_at(&self, token: &str, now: i64) -> Result<VerifiedToken, TokenError> {
        self.verify_at_reading(token, now, None)
    }

    /// [`verify_at`](Self::verify_at), reading the claims through `mapping` when
    /// one is given (instead of the claims location).
    pub(crate) fn verify_at_reading(
        &self,
        token: &str,
        now: i64,
        mapping: Option<&ClaimsMapping>,
    ) -> Result<VerifiedToken, TokenError> {
        let generation = self.key_generation();
        match self.cached_at(token.as_bytes(), now, generation) {
            Some(hit) => Ok(hit),
            None => self.verify_fresh_at(token, now, generation, mapping),
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
        let hit = cache.get(token, now, self.0.leeway, generation)?;
        telemetry::increment(telemetry::TOKEN_CACHE, &[("result", "hit")]);
        Some(hit)
    }

    /// Verifies without looking in the cache, and stores the token there when it
    /// verifies, tagged with `generation` (read before verifying, so an entry is never
    /// tagged with a newer key set than the one that verified it).
    pub(crate) fn verify_fresh_at(
        &self,
        token: &str,
        now: i64,
        generation: u64,
        mapping: Option<&ClaimsMapping>,
    ) -> Result<VerifiedToken, TokenError> {
        let source = match mapping {
            Some(m) => ClaimsSource::Mapping(m),
            None => ClaimsSource::Location(&self.0.location),
        };
        if self.0.cache.is_some() {
            telemetry::increment(telemetry::TOKEN_CACHE, &[("result", "miss")]);
        }
        let verified = self.verify_with(token, now, Method::Fastest, Some(&self.0.headers), source);
        let (result, alg) = match &verified {
            Ok(v) => ("ok", v.algorithm().name()),
            Err(e) => (e.code(), "unknown"),
        };
        telemetry::increment(
            telemetry::VERIFICATIONS,
            &[("result", result), ("alg", alg)],
        );
        let verified = verified?;
        if let Some(cache) = &self.0.cache {
            cache.insert(token.as_bytes(), &verified, now, self.0.leeway, generation);
        }
        Ok(verified)
    }

    /// The issuers this verifier accepts (`iss`); empty when it accepts any.
    pub fn issuers(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.issuers.iter().map(String::as_str)
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

    /// Verifies with every signature checked by `jsonwebtoken::crypto` (never the
    /// precomputed HMAC states) and no remembered headers: for the differential
    /// tests that hold the two signature checks to the same answers.
    #[cfg(feature = "test-util")]
    #[doc(hidden)]
    pub fn verify_general_path(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<VerifiedToken, TokenError> {
        let source = ClaimsSource::Location(&self.0.location);
        self.verify_with(token, now.timestamp(), Method::Library, None, source)
    }

    /// Verifies: header, key and signature, then the payload, read once by the
    /// one payload reader ([`crate::claims::reader`]). A failure's reason goes
    /// through [`refused_for`], which puts a malformed token's reason first.
    fn verify_with(
        &self,
        token: &str,
        now: i64,
        method: Method,
        memo: Option<&HeaderMemo>,
        source: ClaimsSource<'_>,
    ) -> Result<VerifiedToken, TokenError> {
        let verify = || {
            let mut scratch = HeaderScratch::new();
            let parsed = Parsed::new(token, self.0.max_len, &mut scratch, memo)?;
            self.check_header(&parsed)?;
            let (key_id, signed) = self.find_key(&parsed, method)?;
            let mut verified = VerifiedToken::blank(parsed.alg, key_id);
            let inner = verified.unique();
            let json = signed.decode(&mut inner.raw_payload)?;
            let registered = json.read(source, &mut inner.claims)?;
            inner.claims_from = match source {
                ClaimsSource::Location(_) => ClaimsFrom::Location,
                ClaimsSource::Mapping(m) => ClaimsFrom::Mapping(m.id),
            };
            let times = self.check_registered(&registered, now)?;
            inner.subject = registered
                .sub
                .as_ref()
                .and_then(Member::as_str)
                .map(Into::into);
            (inner.expires_at, inner.not_before, inner.issued_at) =
                (times.exp, times.nbf, times.iat);
            inner.claims_version = match registered.cv {
                Some(NumericDate::Secs(v)) => u64::try_from(v).ok(),
                _ => None,
            };
            if let Some(memo) = memo {
                memo.remember(&parsed);
            }
            Ok(verified)
        };
        verify().map_err(|e| refused_for(token, e))
    }

    /// Like [`verify`](Self::verify), but when the token names a `kid` no loaded key
    /// has, refetches the JWKS (at most once per cooldown, one fetch in flight for
    /// all requests) and tries again.
    pub async fn verify_fetching(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<VerifiedToken, TokenError> {
        self.verify_fetching_at(token, now.timestamp(), None).await
    }

    pub(crate) async fn verify_fetching_at(
        &self,
        token: &str,
        now: i64,
        mapping: Option<&ClaimsMapping>,
    ) -> Result<VerifiedToken, TokenError> {
        let first = self.verify_at_reading(token, now, mapping);
        #[cfg(feature = "jwks")]
        if let (Err(e), Some(jwks)) = (&first, &self.0.jwks)
            && e.kind() == Kind::UnknownKey
        {
            jwks.refetch().await;
            return self
                .verify_at_reading(token, now, mapping)
                .map_err(|e| jwks.explain(e));
        }
        first
    }

    /// Where this verifier reads claims when no mapping is given.
    pub(crate) fn claims_location(&self) -> &ClaimsLocation {
        &self.0.location
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

    pub(super) fn check_header(&self, p: &Parsed<'_, '_>) -> Result<(), TokenError> {
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

    /// Finds the key that verifies the signature; returns its `kid` and the payload
    /// that signature covers, the only way to read it.
    pub(super) fn find_key<'t>(
        &self,
        p: &Parsed<'t, '_>,
        method: Method,
    ) -> Result<(Option<Arc<str>>, SignedPayload<'t>), TokenError> {
        let (kid, alg) = (p.kid(), p.alg);
        #[cfg_attr(not(feature = "jwks"), allow(unused_mut))]
        let mut miss = match self.0.keys.candidates(kid, alg) {
            Ok(mut keys) => {
                return keys
                    .find_map(|k| signature::check(p, k, method).map(|s| (k.kid.clone(), s)))
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
                        .find_map(|k| signature::check(p, k, method).map(|s| (k.kid.clone(), s)))
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

    /// `exp`, `nbf`, `iat`, `iss`, `aud`, in this order, whichever way the signature
    /// was checked. Returns the time claims.
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
            match reg.iss.as_ref().map(Member::as_str) {
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
                Some(Member::Str(a)) => accepted(a),
                Some(Member::Json(Value::Array(list))) => {
                    if !list.iter().all(Value::is_string) {
                        return Err(not_strings());
                    }
                    list.iter().filter_map(Value::as_str).any(accepted)
                }
                Some(Member::Json(_)) => return Err(not_strings()),
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
