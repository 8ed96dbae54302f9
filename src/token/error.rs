//! Why a token was refused, as a stable code and a sentence that never quotes the token.

use std::borrow::Cow;
use std::fmt;

use super::keys::KeyError;

/// What was wrong with a token. Each kind has a stable snake_case [`code`](Self::code)
/// that the layer sends as the problem's `reason`, so clients can branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenErrorKind {
    /// No token in the request.
    MissingToken,
    /// Two `Authorization` headers (or a header and a cookie that disagree).
    AmbiguousCredentials,
    /// An `Authorization` header with a scheme other than `Bearer`.
    UnsupportedScheme,
    /// Longer than the configured maximum (8 KiB by default).
    TokenTooLarge,
    /// Not three base64url segments, bad base64 or JSON, or bytes outside the alphabet.
    MalformedToken,
    /// `alg: none` in any casing: an unsigned token.
    UnsignedToken,
    /// An `alg` this verifier does not implement.
    UnsupportedAlgorithm,
    /// The header's `alg` is not the algorithm the key is bound to.
    AlgorithmMismatch,
    /// The header has a `crit` member: extensions this verifier does not understand.
    CriticalHeader,
    /// The header's `typ` is not the required one (e.g. `at+jwt`).
    WrongType,
    /// No key with the token's `kid` (after a JWKS refetch, if configured).
    UnknownKey,
    /// The keys could not be fetched and none were ever loaded.
    KeysUnavailable,
    /// The signature does not verify.
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    IssuedInFuture,
    /// A required claim (`exp`, `iss`, `aud`) is absent.
    MissingClaim,
    /// A registered claim has the wrong type (e.g. `exp` as a string), or a claim
    /// tiergate reads appears twice in the payload.
    InvalidClaim,
    /// `iss` is not an accepted issuer.
    WrongIssuer,
    /// `aud` names none of the accepted audiences.
    WrongAudience,
    /// The token was minted before its subject's latest claims change (published
    /// on the issuer's claims-change feed): the client should get a new token.
    ClaimsChanged,
    /// The issuer's claims-change feed has been unreachable for longer than the
    /// configured bound, so whether the token is still current is unknown (503).
    ClaimsChangesUnavailable,
}

impl TokenErrorKind {
    /// The stable code, e.g. `"expired"`.
    pub fn code(self) -> &'static str {
        use TokenErrorKind::*;
        match self {
            MissingToken => "missing_token",
            AmbiguousCredentials => "ambiguous_credentials",
            UnsupportedScheme => "unsupported_scheme",
            TokenTooLarge => "token_too_large",
            MalformedToken => "malformed_token",
            UnsignedToken => "unsigned_token",
            UnsupportedAlgorithm => "unsupported_algorithm",
            AlgorithmMismatch => "algorithm_mismatch",
            CriticalHeader => "critical_header",
            WrongType => "wrong_type",
            UnknownKey => "unknown_key",
            KeysUnavailable => "keys_unavailable",
            BadSignature => "bad_signature",
            Expired => "expired",
            NotYetValid => "not_yet_valid",
            IssuedInFuture => "issued_in_future",
            MissingClaim => "missing_claim",
            InvalidClaim => "invalid_claim",
            WrongIssuer => "wrong_issuer",
            WrongAudience => "wrong_audience",
            ClaimsChanged => "claims_changed",
            ClaimsChangesUnavailable => "claims_changes_unavailable",
        }
    }

    /// Every kind, for documentation and coverage checks.
    pub const ALL: [TokenErrorKind; 20] = {
        use TokenErrorKind::*;
        [
            MissingToken,
            AmbiguousCredentials,
            UnsupportedScheme,
            TokenTooLarge,
            MalformedToken,
            UnsignedToken,
            UnsupportedAlgorithm,
            AlgorithmMismatch,
            CriticalHeader,
            WrongType,
            UnknownKey,
            KeysUnavailable,
            BadSignature,
            Expired,
            NotYetValid,
            IssuedInFuture,
            MissingClaim,
            InvalidClaim,
            WrongIssuer,
            WrongAudience,
        ]
    };
}

/// A refused token: the kind and a human sentence. Neither ever contains the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    kind: TokenErrorKind,
    detail: Cow<'static, str>,
}

impl TokenError {
    pub(crate) fn new(kind: TokenErrorKind, detail: impl Into<Cow<'static, str>>) -> TokenError {
        TokenError {
            kind,
            detail: detail.into(),
        }
    }

    /// What kind of problem it is.
    pub fn kind(&self) -> TokenErrorKind {
        self.kind
    }

    /// The stable code (same as `kind().code()`).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// A sentence for the `WWW-Authenticate` description and the problem's `detail`.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.detail)
    }
}

impl std::error::Error for TokenError {}

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
    /// The claims location names a registered claim (`iss`, `sub`, `aud`, `exp`,
    /// `nbf`, `iat`, `jti`), whose value the verifier checks itself.
    #[error(
        "the claims location `{0}` is a registered claim the verifier checks itself; put the subscription claims under their own key, e.g. ClaimsLocation::Nested(\"claims\".into())"
    )]
    RegisteredClaimsLocation(String),
}
