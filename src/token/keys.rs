//! Verification keys, each bound to exactly one algorithm.
//!
//! Binding a key to one algorithm is what defeats algorithm-confusion attacks: a
//! token that says `HS256` can never be checked against an RSA public key used as an
//! HMAC secret, because that key only ever verifies `RS256` (or whatever it was
//! loaded for).

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{AlgorithmFamily, DecodingKey};

use super::algorithm::Algorithm;

use super::hmac_key::HmacKey;

/// The shortest HMAC secret accepted, in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// Why a key could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// An HMAC secret shorter than [`MIN_HMAC_SECRET_BYTES`].
    #[error(
        "the HMAC secret is {len} bytes; use at least {MIN_HMAC_SECRET_BYTES} random bytes (e.g. `openssl rand -base64 32`)"
    )]
    SecretTooShort {
        /// The secret's length.
        len: usize,
    },
    /// The algorithm does not fit the kind of key (e.g. `RS256` with a secret).
    #[error("{alg:?} cannot be used with {what}; {help}")]
    WrongAlgorithm {
        /// The algorithm asked for.
        alg: Algorithm,
        /// The kind of key given.
        what: &'static str,
        /// What to use instead.
        help: &'static str,
    },
    /// The PEM or JWK could not be read as a public key for the algorithm.
    #[error("not a valid {alg:?} public key: {reason}")]
    Invalid {
        /// The algorithm the key was loaded for.
        alg: Algorithm,
        /// The parser's message.
        reason: String,
    },
    /// A JWK this verifier does not use for signatures (symmetric, `use: enc`,
    /// an unsupported curve or algorithm).
    #[error("JWK skipped: {0}")]
    Unusable(&'static str),
}

/// A key that verifies signatures of one algorithm, optionally with a key id (`kid`).
#[derive(Clone)]
pub struct VerifyingKey {
    /// Shared with every token it verifies (a reference count, not a copy).
    pub(crate) kid: Option<Arc<str>>,
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
    /// For HMAC keys: the key's hash states, computed once (jsonwebtoken
    /// recomputes them for every token).
    pub(crate) hmac: Option<HmacKey>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material (an HMAC secret is a password).
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// An HMAC secret for `HS256`, `HS384` or `HS512`; at least 32 bytes.
    pub fn hmac(alg: Algorithm, secret: impl AsRef<[u8]>) -> Result<VerifyingKey, KeyError> {
        let secret = secret.as_ref();
        if family(alg) != AlgorithmFamily::Hmac {
            return Err(KeyError::WrongAlgorithm {
                alg,
                what: "an HMAC secret",
                help: "use HS256, HS384 or HS512, or load a public key with VerifyingKey::from_pem",
            });
        }
        if secret.len() < MIN_HMAC_SECRET_BYTES {
            return Err(KeyError::SecretTooShort { len: secret.len() });
        }
        Ok(VerifyingKey {
            kid: None,
            alg,
            key: DecodingKey::from_secret(secret),
            hmac: HmacKey::new(alg, secret),
        })
    }

    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`, or `BEGIN RSA PUBLIC KEY`)
    /// for an RSA (`RS*`, `PS*`), EC (`ES256`, `ES384`) or Ed25519 (`EdDSA`) algorithm.
    pub fn from_pem(alg: Algorithm, pem: impl AsRef<[u8]>) -> Result<VerifyingKey, KeyError> {
        let pem = pem.as_ref();
        let key = match family(alg) {
            AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(pem),
            AlgorithmFamily::Ec => DecodingKey::from_ec_pem(pem),
            AlgorithmFamily::Ed => DecodingKey::from_ed_pem(pem),
            AlgorithmFamily::Hmac => {
                return Err(KeyError::WrongAlgorithm {
                    alg,
                    what: "a PEM key",
                    help: "an HMAC secret is not a PEM key; use VerifyingKey::hmac",
                });
            }
        }
        .map_err(|e| KeyError::Invalid {
            alg,
            reason: e.to_string(),
        })?;
        Ok(VerifyingKey {
            kid: None,
            alg,
            key,
            hmac: None,
        })
    }

    /// A PEM public key of any supported type (Ed25519, EC, RSA), as one key per
    /// algorithm its type can use ([`algorithms_like`]), each bound to its own: the
    /// token's header then chooses among the key's own algorithms, never across
    /// types. For tools that verify with a key file and no configured algorithm.
    pub fn from_pem_any_algorithm(pem: impl AsRef<[u8]>) -> Result<Vec<VerifyingKey>, KeyError> {
        let pem = pem.as_ref();
        let mut last = None;
        for representative in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
            match VerifyingKey::from_pem(representative, pem) {
                Ok(_) => {
                    return algorithms_like(representative)
                        .iter()
                        .map(|&alg| VerifyingKey::from_pem(alg, pem))
                        .collect();
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(KeyError::Unusable("an empty PEM")))
    }

    /// A public key from a JWK, bound to its `alg` member or, when that is absent,
    /// to the algorithm its type implies (`EC` P-256 → `ES256`, P-384 → `ES384`,
    /// `OKP` Ed25519 → `EdDSA`, `RSA` → `RS256`). Symmetric (`oct`) keys and keys
    /// marked `use: enc` are refused: a published key set must never carry secrets.
    pub fn from_jwk(jwk: &Jwk) -> Result<VerifyingKey, KeyError> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return Err(KeyError::Unusable("marked `use: enc`"));
        }
        let implied = match &jwk.algorithm {
            AlgorithmParameters::OctetKey(_) => {
                return Err(KeyError::Unusable("a symmetric (`oct`) key"));
            }
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err(KeyError::Unusable("an unsupported curve")),
            },
            AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                EllipticCurve::Ed25519 => Algorithm::EdDSA,
                _ => return Err(KeyError::Unusable("an unsupported curve")),
            },
            _ => return Err(KeyError::Unusable("an unknown key type")),
        };
        let alg = match jwk.common.key_algorithm {
            None => implied,
            Some(ka) => match key_algorithm(ka) {
                Some(alg) if family(alg) == family(implied) => alg,
                _ => {
                    return Err(KeyError::Unusable(
                        "an `alg` that does not fit the key type",
                    ));
                }
            },
        };
        // An EC key's curve must be the algorithm's curve.
        if family(alg) == AlgorithmFamily::Ec && alg != implied {
            return Err(KeyError::Unusable("an `alg` that does not fit the curve"));
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| KeyError::Invalid {
            alg,
            reason: e.to_string(),
        })?;
        Ok(VerifyingKey {
            kid: jwk.common.key_id.as_deref().map(Arc::from),
            alg,
            key,
            hmac: None,
        })
    }

    /// Gives the key an id: a token whose header names this `kid` is checked with it.
    pub fn with_kid(mut self, kid: impl AsRef<str>) -> VerifyingKey {
        self.kid = Some(Arc::from(kid.as_ref()));
        self
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// The algorithms a key of the same type as `alg` can use: `HS256` → HS256, HS384,
/// HS512; `RS256` → the three RSASSA-PKCS1 and three PSS ones; `ES256` → ES256,
/// ES384; `EdDSA` → EdDSA. A [`VerifyingKey`] is still bound to exactly one of them;
/// tools that take a key file without an algorithm (`tiergate token`, `explain`)
/// use this to know which to try, so no tool keeps a table of its own.
///
/// ```
/// use tiergate::token::{Algorithm, algorithms_like};
/// assert_eq!(algorithms_like(Algorithm::ES384), [Algorithm::ES256, Algorithm::ES384]);
/// ```
pub fn algorithms_like(alg: Algorithm) -> &'static [Algorithm] {
    use Algorithm as A;
    match family(alg) {
        AlgorithmFamily::Hmac => &[A::HS256, A::HS384, A::HS512],
        AlgorithmFamily::Rsa => &[A::RS256, A::RS384, A::RS512, A::PS256, A::PS384, A::PS512],
        AlgorithmFamily::Ec => &[A::ES256, A::ES384],
        AlgorithmFamily::Ed => &[A::EdDSA],
    }
}

pub(crate) fn family(alg: Algorithm) -> AlgorithmFamily {
    alg.family()
}

fn key_algorithm(ka: KeyAlgorithm) -> Option<Algorithm> {
    use KeyAlgorithm as K;
    Some(match ka {
        K::HS256 => Algorithm::HS256,
        K::HS384 => Algorithm::HS384,
        K::HS512 => Algorithm::HS512,
        K::ES256 => Algorithm::ES256,
        K::ES384 => Algorithm::ES384,
        K::RS256 => Algorithm::RS256,
        K::RS384 => Algorithm::RS384,
        K::RS512 => Algorithm::RS512,
        K::PS256 => Algorithm::PS256,
        K::PS384 => Algorithm::PS384,
        K::PS512 => Algorithm::PS512,
        K::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}
