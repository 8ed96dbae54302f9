//! A token split into its three parts, with the header decoded and read.
//!
//! Runs on every verification, so it allocates nothing for a real token: the header
//! is base64-decoded onto the stack (a scratch buffer the caller owns) and `kid` and
//! `typ` are borrowed from it. Only a header over [`HEADER_ON_STACK`] bytes, which no
//! issuer sends, spills to the heap.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::error::{TokenError, TokenErrorKind as Kind};
use super::keys::VerifyingKey;

/// Decoded header bytes kept on the stack.
const HEADER_ON_STACK: usize = 256;

/// Where a header is decoded to: the caller keeps it alive while the [`Parsed`]
/// that borrows from it is used.
pub(crate) struct HeaderScratch {
    stack: [u8; HEADER_ON_STACK],
    heap: Vec<u8>,
}

impl HeaderScratch {
    pub(crate) fn new() -> HeaderScratch {
        HeaderScratch {
            stack: [0; HEADER_ON_STACK],
            heap: Vec::new(),
        }
    }

    fn decode(&mut self, segment: &str) -> Result<&[u8], TokenError> {
        let bad = || malformed("the header is not valid base64url");
        // base64url without padding: 4 characters → 3 bytes, rounded up.
        if segment.len() / 4 * 3 + 3 <= HEADER_ON_STACK {
            let n = URL_SAFE_NO_PAD
                .decode_slice(segment, &mut self.stack)
                .map_err(|_| bad())?;
            Ok(&self.stack[..n])
        } else {
            self.heap = URL_SAFE_NO_PAD.decode(segment).map_err(|_| bad())?;
            Ok(&self.heap)
        }
    }
}

/// The header members the verifier reads. `jku`, `x5u`, `jwk` and `x5c` are never
/// read, so a token can never point the verifier at a key of its choosing.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default, borrow)]
    kid: Option<Text<'a>>,
    #[serde(default, borrow)]
    typ: Option<Text<'a>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// A JSON string, borrowed from the input when it has no escapes. (serde borrows
/// a bare `Cow<str>` field, but copies one inside an `Option`.)
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Whether every byte is base64url or `.`. Written without an early exit so the
/// compiler can check many bytes per instruction: this runs on every request.
pub(crate) fn in_token_alphabet(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & (b.is_ascii_uppercase()
            | b.is_ascii_lowercase()
            | b.is_ascii_digit()
            | (b == b'-')
            | (b == b'_')
            | (b == b'.'))
    })
}

/// A token split into its parts (borrowed from the token, lifetime `'t`), with
/// the header read (borrowed from its scratch, lifetime `'h`).
pub(crate) struct Parsed<'t, 'h> {
    pub message: &'t str,
    pub payload: &'t str,
    pub signature: &'t str,
    pub alg: Algorithm,
    pub kid: Option<Cow<'h, str>>,
    pub typ: Option<Cow<'h, str>>,
    pub crit: bool,
}

impl<'t, 'h> Parsed<'t, 'h> {
    /// Checks size and alphabet, splits the token and reads its header.
    pub(crate) fn new(
        token: &'t str,
        max_len: usize,
        scratch: &'h mut HeaderScratch,
    ) -> Result<Parsed<'t, 'h>, TokenError> {
        if token.len() > max_len {
            return Err(TokenError::new(
                Kind::TokenTooLarge,
                format!("the token is over {max_len} bytes"),
            ));
        }
        if token.is_empty() {
            return Err(TokenError::new(
                Kind::MissingToken,
                "the bearer token is empty",
            ));
        }
        if !in_token_alphabet(token.as_bytes()) {
            return Err(malformed(
                "the token has characters outside base64url and `.`",
            ));
        }
        let mut parts = token.splitn(4, '.');
        let (Some(h), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("a JWT has three parts separated by `.`"));
        };
        if h.is_empty() || payload.is_empty() {
            return Err(malformed("the token's header or payload is empty"));
        }
        let header: Header<'h> = serde_json::from_slice(scratch.decode(h)?)
            .map_err(|_| malformed("the header is not a JSON object with an `alg`"))?;
        if header.alg.eq_ignore_ascii_case("none") {
            return Err(TokenError::new(
                Kind::UnsignedToken,
                "unsigned tokens (`alg: none`) are never accepted",
            ));
        }
        let alg: Algorithm = header.alg.parse().map_err(|_| {
            TokenError::new(
                Kind::UnsupportedAlgorithm,
                "the token's `alg` is not a supported algorithm",
            )
        })?;
        Ok(Parsed {
            message: &token[..h.len() + 1 + payload.len()],
            payload,
            signature,
            alg,
            kid: header.kid.map(|t| t.0),
            typ: header.typ.map(|t| t.0),
            crit: header.crit.is_some(),
        })
    }

    /// The general path's signature check (`jsonwebtoken::crypto`, any algorithm).
    pub(crate) fn signature_ok(&self, key: &VerifyingKey) -> bool {
        jsonwebtoken::crypto::verify(self.signature, self.message.as_bytes(), &key.key, key.alg)
            .unwrap_or(false)
    }
}

pub(crate) fn malformed(detail: &'static str) -> TokenError {
    TokenError::new(Kind::MalformedToken, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn header_members_are_borrowed_from_the_scratch() {
        let token = format!(
            "{}.e30.c2ln",
            b64(r#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#)
        );
        let mut scratch = HeaderScratch::new();
        let p = Parsed::new(&token, 8192, &mut scratch).unwrap();
        assert_eq!(p.alg, Algorithm::HS256);
        assert!(matches!(p.kid, Some(Cow::Borrowed("k1"))));
        assert_eq!(p.typ.as_deref(), Some("JWT"));
        assert_eq!(p.payload, "e30");
        assert_eq!(p.signature, "c2ln");
    }

    #[test]
    fn a_header_too_big_for_the_stack_is_still_read() {
        let kid = "k".repeat(1000);
        let token = format!(
            "{}.e30.c2ln",
            b64(&format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#))
        );
        let mut scratch = HeaderScratch::new();
        let p = Parsed::new(&token, 8192, &mut scratch).unwrap();
        assert_eq!(p.kid.as_deref(), Some(kid.as_str()));
    }

    #[test]
    fn a_header_just_at_the_stack_limit_is_read_either_way() {
        // Lengths around the boundary, to catch an off-by-one in the size estimate.
        for pad in 200..260 {
            let json = format!(r#"{{"alg":"HS256","kid":"{}"}}"#, "x".repeat(pad));
            let token = format!("{}.e30.c2ln", b64(&json));
            let mut scratch = HeaderScratch::new();
            let p = Parsed::new(&token, 8192, &mut scratch).unwrap();
            assert_eq!(p.kid.map(|k| k.len()), Some(pad), "{pad}");
        }
    }

    #[test]
    fn escaped_header_members_are_unescaped() {
        let token = format!("{}.e30.c2ln", b64(r#"{"alg":"HS256","kid":"a\u0062c"}"#));
        let mut scratch = HeaderScratch::new();
        let p = Parsed::new(&token, 8192, &mut scratch).unwrap();
        assert_eq!(p.kid.as_deref(), Some("abc"));
    }
}
