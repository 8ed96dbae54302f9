//! Building a [`Verifier`]: keys, issuer, audience, leeway, claims location, cache.
//!
//! ```
//! use tiergate::token::{Algorithm, ConfigError, Verifier};
//!
//! // An issuer and an audience are required, or waived out loud.
//! let err = Verifier::builder()
//!     .hmac_secret(Algorithm::HS256, b"an example secret of at least 32 bytes!")
//!     .audience("my-api")
//!     .build()
//!     .unwrap_err();
//! assert_eq!(err, ConfigError::NoIssuer);
//! ```

use std::sync::Arc;
use std::time::Duration;

use super::algorithm::Algorithm;

use super::cache::{CacheOptions, TokenCache};
use super::error::ConfigError;
use super::keys::{KeyError, VerifyingKey};
use super::keyset::KeySet;
use super::parsed::HeaderMemo;
use super::verify::{DEFAULT_MAX_TOKEN_BYTES, Verifier, VerifierInner};
use crate::claims::ClaimsLocation;

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
        VerifierBuilder::new()
    }
}

impl VerifierBuilder {
    fn new() -> VerifierBuilder {
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
        if let ClaimsLocation::Nested(key) = &self.location
            && crate::claims::reader::REGISTERED.contains(&key.as_str())
        {
            return Err(ConfigError::RegisteredClaimsLocation(key.clone()));
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
