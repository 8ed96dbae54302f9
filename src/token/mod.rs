//! Access-token verification: the gaps `jsonwebtoken` leaves open, closed.
//!
//! A [`Verifier`] checks, in this order, refusing at the first problem with a stable
//! [`TokenErrorKind`] code:
//!
//! 1. size (8 KiB by default) and form: three parts in base64url. A token with any
//!    other character, or another number of dots, is refused as malformed whatever
//!    else is wrong with it (checked once something fails: every segment is decoded
//!    strictly, so a token that verifies cannot break the form);
//! 2. the header: `alg: none` in any casing is refused, `crit` is refused, `typ` is
//!    checked when configured (`at+jwt`, RFC 9068); `jku`, `x5u`, `jwk` and `x5c` are
//!    never read, so a token cannot choose its own key;
//! 3. the key: by `kid`, and only keys bound to the header's `alg` (each key verifies
//!    exactly one algorithm, which defeats algorithm confusion);
//! 4. the signature (aws-lc through `jsonwebtoken::crypto`; HMAC from the key's
//!    precomputed states with RustCrypto's `hmac`) — only then is the payload read,
//!    once, by the one payload reader, which refuses a repeated claim;
//! 5. `exp` (required), `nbf`, `iat` with leeway, against the caller's clock; `iss`
//!    and `aud` are **required** when configured — a token that omits them is refused.
//!
//! ```
//! use tiergate::token::{Algorithm, TokenErrorKind, Verifier};
//! use chrono::Utc;
//!
//! let verifier = Verifier::builder()
//!     .public_key_pem(Algorithm::EdDSA, include_str!("../../tests/keys/ed25519.pub.pem"))
//!     .issuer("https://auth.example.com")
//!     .audience("my-api")
//!     .require_type("at+jwt")
//!     .build()?;
//!
//! // `{"alg":"none"}` with an empty signature: refused before any key is looked at.
//! let unsigned = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
//! let err = verifier.verify(unsigned, Utc::now()).unwrap_err();
//! assert_eq!(err.kind(), TokenErrorKind::UnsignedToken);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod algorithm;
mod b64;
mod builder;
mod cache;
mod error;
#[cfg(feature = "claims-changes")]
mod event;
mod hmac_key;
mod issuer;
#[cfg(feature = "jwks")]
mod jwks;
mod keys;
mod keyset;
mod parsed;
mod signature;
mod verified;
mod verify;

pub use crate::claims::reader::CLAIMS_VERSION_CLAIM;
pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use builder::VerifierBuilder;
pub use cache::CacheOptions;
pub use error::{ConfigError, TokenError, TokenErrorKind};
pub(crate) use issuer::peek_issuer;
#[cfg(feature = "jwks")]
pub use jwks::{JwksOptions, JwksStats};
pub use keys::{KeyError, MIN_HMAC_SECRET_BYTES, VerifyingKey, algorithms_like};
pub use keyset::{JwksError, KeySet};
pub(crate) use verified::ClaimsFrom;
pub use verified::VerifiedToken;
pub use verify::{DEFAULT_MAX_TOKEN_BYTES, Verifier};
