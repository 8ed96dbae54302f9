//! The signature check, and the only way to a token's payload.
//!
//! Reading claims before the signature is checked is the classic JWT mistake: a
//! parser bug, or a decision taken on the claims, is then open to anyone who can
//! send a token. Here it cannot be written: the payload reader takes a
//! [`SignedJson`], made only by decoding a [`SignedPayload`], which only [`check`]
//! makes, and only when a key verifies the signature over the header and payload.
//! (Both types have private fields, so no other module can build one.)
//!
//! Two ways to check: HMAC from the key's precomputed hash states
//! ([`super::hmac_key`], without allocating), everything else — and every key in
//! the differential tests' [`Method::Library`] — through `jsonwebtoken::crypto`.

use super::error::{TokenError, TokenErrorKind as Kind};
use super::keys::VerifyingKey;
use super::parsed::{Parsed, malformed};
use super::verified::RawPayload;
use crate::claims::Claims;
use crate::claims::reader::{self, ClaimsSource, ReadError, Registered};

/// How to check a signature.
#[derive(Clone, Copy)]
pub(crate) enum Method {
    /// The precomputed HMAC states where the key has them; the library otherwise.
    Fastest,
    /// `jsonwebtoken::crypto` for every key.
    #[cfg_attr(not(feature = "test-util"), allow(dead_code))]
    Library,
}

/// The payload segment (still base64url) of a token whose signature verified.
pub(crate) struct SignedPayload<'t> {
    segment: &'t str,
}

/// Checks the token's signature with `key`; the payload it covers when it verifies.
pub(crate) fn check<'t>(
    p: &Parsed<'t, '_>,
    key: &VerifyingKey,
    method: Method,
) -> Option<SignedPayload<'t>> {
    let ok = match (method, &key.hmac) {
        (Method::Fastest, Some(hmac)) => {
            let mut sig = [0u8; 64];
            super::b64::decode_into(p.signature, &mut sig)
                .and_then(|n| sig.get(..n))
                .is_some_and(|s| hmac.verify(p.message.as_bytes(), s))
        }
        _ => jsonwebtoken::crypto::verify(
            p.signature,
            p.message.as_bytes(),
            &key.key,
            key.alg.to_jsonwebtoken(),
        )
        .unwrap_or(false),
    };
    ok.then_some(SignedPayload { segment: p.payload })
}

impl SignedPayload<'_> {
    /// Decodes the payload into `out` (the token's own buffer) as UTF-8 text.
    pub(crate) fn decode(self, out: &mut RawPayload) -> Result<SignedJson<'_>, TokenError> {
        let bad = || malformed("the payload is not valid base64url");
        out.resize(super::b64::decoded_len(self.segment).ok_or_else(bad)?, 0);
        super::b64::decode_into(self.segment, out).ok_or_else(bad)?;
        match std::str::from_utf8(out) {
            Ok(text) => Ok(SignedJson { text }),
            Err(_) => Err(malformed("the payload is not valid JSON")),
        }
    }
}

/// A signed payload's JSON text.
pub(crate) struct SignedJson<'b> {
    text: &'b str,
}

impl<'b> SignedJson<'b> {
    /// The text, for payloads that are not access tokens (security events).
    #[cfg(feature = "claims-changes")]
    pub(crate) fn text(&self) -> &'b str {
        self.text
    }

    /// Reads it with the one payload reader: the registered claims are returned,
    /// the subscription claims (at a location, or through a mapping) written into
    /// `claims`.
    pub(crate) fn read(
        self,
        source: ClaimsSource<'_>,
        claims: &mut Claims,
    ) -> Result<Registered<'b>, TokenError> {
        reader::read_json(self.text, source, claims).map_err(|e| match e {
            ReadError::NotJson => malformed("the payload is not valid JSON"),
            ReadError::NotObject => malformed("the payload is not a JSON object"),
            ReadError::Repeated(name) => TokenError::new(
                Kind::InvalidClaim,
                format!("the token repeats `{name}`; a claim tiergate reads may appear once"),
            ),
        })
    }
}
