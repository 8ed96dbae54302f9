//! A token split into its three parts, with the header decoded and read.
//!
//! Runs on every verification, so it allocates nothing for a real token: the header
//! is base64-decoded onto the stack (a scratch buffer the caller owns) and `kid` and
//! `typ` are borrowed from it. Only a header over [`HEADER_ON_STACK`] bytes, which no
//! issuer sends, spills to the heap.
//!
//! Better still, it is usually not decoded at all: an issuer puts the same header
//! (same `alg`, `kid`, `typ`) on every token it signs, so the verifier remembers the
//! last few header segments of tokens that verified ([`HeaderMemo`]) and a token
//! whose header segment is byte-for-byte one of them reuses what was read from it.
//! Reading a header depends on nothing but its bytes, so the answer is the same.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::{ArcSwapOption, Guard};

use super::algorithm::Algorithm;
use serde::Deserialize;

use super::b64;
use super::error::{TokenError, TokenErrorKind as Kind};
use crate::claims::key::Key as Text;

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
        if (segment.len() / 4).saturating_mul(3).saturating_add(3) <= HEADER_ON_STACK {
            let n = b64::decode_into(segment, &mut self.stack).ok_or_else(bad)?;
            self.stack.get(..n).ok_or_else(bad)
        } else {
            self.heap = b64::decode_to_vec(segment).ok_or_else(bad)?;
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

/// A header segment and what was read from it.
pub(crate) struct ReadHeader {
    segment: Box<str>,
    alg: Algorithm,
    kid: Option<Box<str>>,
    typ: Option<Box<str>>,
    crit: bool,
}

/// Headers remembered per verifier.
const REMEMBERED: usize = 4;

/// The header segments of the last few tokens that verified, already read. Only
/// verified tokens are remembered, so junk tokens cannot push real headers out.
/// Lock-free: a lookup is a few atomic loads and a comparison of ~40 bytes.
pub(crate) struct HeaderMemo {
    slots: [ArcSwapOption<ReadHeader>; REMEMBERED],
    next: AtomicUsize,
}

impl Default for HeaderMemo {
    fn default() -> Self {
        HeaderMemo {
            slots: Default::default(),
            next: AtomicUsize::new(0),
        }
    }
}

impl HeaderMemo {
    fn find(&self, segment: &str) -> Option<Guard<Option<Arc<ReadHeader>>>> {
        self.slots.iter().find_map(|slot| {
            let g = slot.load();
            g.as_ref()
                .is_some_and(|h| &*h.segment == segment)
                .then_some(g)
        })
    }

    /// Remembers the header of a token that just verified.
    pub(crate) fn remember(&self, p: &Parsed<'_, '_>) {
        let Members::Decoded { kid, typ } = &p.members else {
            return;
        };
        let read = ReadHeader {
            segment: p.header.into(),
            alg: p.alg,
            kid: kid.as_deref().map(Box::from),
            typ: typ.as_deref().map(Box::from),
            crit: p.crit,
        };
        let i = self.next.fetch_add(1, Ordering::Relaxed) % REMEMBERED;
        if let Some(slot) = self.slots.get(i) {
            slot.store(Some(Arc::new(read)));
        }
    }
}

/// Whether every byte is base64url or `.`, and how many dots there are. Each is
/// written without an early exit (and kept apart: one fold with both stops the
/// compiler vectorizing) so it checks many bytes per instruction.
pub(crate) fn token_alphabet_and_dots(bytes: &[u8]) -> (bool, usize) {
    let ok = bytes.iter().fold(true, |ok, &b| {
        ok & (b.is_ascii_uppercase()
            | b.is_ascii_lowercase()
            | b.is_ascii_digit()
            | (b == b'-')
            | (b == b'_')
            | (b == b'.'))
    });
    // Counted in bytes, 255 at a time, so sixteen bytes go in one instruction.
    let dots = bytes
        .chunks(255)
        // At most 255 bytes a chunk: the count cannot wrap.
        .map(|c| {
            usize::from(
                c.iter()
                    .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == b'.'))),
            )
        })
        .sum();
    (ok, dots)
}

/// A token split into its parts (borrowed from the token, lifetime `'t`), with
/// the header read (borrowed from its scratch, lifetime `'h`).
pub(crate) struct Parsed<'t, 'h> {
    /// The header segment, still base64.
    pub header: &'t str,
    pub message: &'t str,
    pub payload: &'t str,
    pub signature: &'t str,
    pub alg: Algorithm,
    pub crit: bool,
    members: Members<'h>,
}

/// Where `kid` and `typ` are held.
enum Members<'h> {
    /// Decoded from this token's header (borrowed from the scratch).
    Decoded {
        kid: Option<Cow<'h, str>>,
        typ: Option<Cow<'h, str>>,
    },
    /// In a remembered header.
    Remembered(Guard<Option<Arc<ReadHeader>>>),
}

impl<'t, 'h> Parsed<'t, 'h> {
    /// Checks size and alphabet, splits the token and reads its header, from the
    /// memo when it holds that exact header segment.
    pub(crate) fn new(
        token: &'t str,
        max_len: usize,
        scratch: &'h mut HeaderScratch,
        memo: Option<&HeaderMemo>,
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
        // The first dot ends the (short) header, the last starts the (short)
        // signature, so neither search crosses the payload. A dot between them, or
        // any character outside base64url, fails a segment's decoding later; see
        // [`refused_for`] for the reason that is then given.
        let (first, last) = match (token.find('.'), token.rfind('.')) {
            (Some(first), Some(last)) if first < last => (first, last),
            _ => return Err(three_parts()),
        };
        // `first` and `last` are the positions of ASCII dots, so every cut below is on
        // a character boundary and in range.
        let part = |r: std::ops::Range<usize>| token.get(r).unwrap_or_default();
        let (h, payload, signature) = (
            part(0..first),
            part(first.saturating_add(1)..last),
            part(last.saturating_add(1)..token.len()),
        );
        if h.is_empty() || payload.is_empty() {
            return Err(malformed("the token's header or payload is empty"));
        }
        let message = part(0..last);
        if let Some(found) = memo.and_then(|m| m.find(h))
            && let Some(read) = &*found
        {
            return Ok(Parsed {
                header: h,
                message,
                payload,
                signature,
                alg: read.alg,
                crit: read.crit,
                members: Members::Remembered(found),
            });
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
            header: h,
            message,
            payload,
            signature,
            alg,
            crit: header.crit.is_some(),
            members: Members::Decoded {
                kid: header.kid.map(|t| t.0),
                typ: header.typ.map(|t| t.0),
            },
        })
    }

    /// The header's `kid`.
    pub(crate) fn kid(&self) -> Option<&str> {
        match &self.members {
            Members::Decoded { kid, .. } => kid.as_deref(),
            Members::Remembered(g) => g.as_ref().and_then(|r| r.kid.as_deref()),
        }
    }

    /// The header's `typ`.
    pub(crate) fn typ(&self) -> Option<&str> {
        match &self.members {
            Members::Decoded { typ, .. } => typ.as_deref(),
            Members::Remembered(g) => g.as_ref().and_then(|r| r.typ.as_deref()),
        }
    }
}

pub(crate) fn malformed(detail: &'static str) -> TokenError {
    TokenError::new(Kind::MalformedToken, detail)
}

fn three_parts() -> TokenError {
    malformed("a JWT has three parts separated by `.`")
}

/// Why a token that failed verification is refused. The characters and the
/// number of dots are checked only here, after a failure: a token that verifies
/// cannot break either rule (each segment went through a strict base64url
/// decoder, or matched a verified header byte for byte, and a third dot would sit
/// inside the payload, which then does not decode), so checking them on every
/// token, before anything else, bought nothing but time. A token breaking them
/// gets that reason, whatever else failed, as if they had been checked first.
pub(crate) fn refused_for(token: &str, error: TokenError) -> TokenError {
    // These two are decided before the characters are looked at.
    if matches!(error.kind(), Kind::TokenTooLarge | Kind::MissingToken) {
        return error;
    }
    match token_alphabet_and_dots(token.as_bytes()) {
        (false, _) => malformed("the token has characters outside base64url and `.`"),
        (true, dots) if dots != 2 => three_parts(),
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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
        let p = Parsed::new(&token, 8192, &mut scratch, None).unwrap();
        assert_eq!(p.alg, Algorithm::HS256);
        assert!(matches!(
            p.members,
            Members::Decoded {
                kid: Some(Cow::Borrowed("k1")),
                ..
            }
        ));
        assert_eq!(p.typ(), Some("JWT"));
        assert_eq!(p.payload, "e30");
        assert_eq!(p.signature, "c2ln");
    }

    #[test]
    fn only_three_non_empty_leading_parts_split() {
        let h = b64(r#"{"alg":"HS256"}"#);
        for (token, detail) in [
            (format!("{h}.e30"), "a JWT has three parts separated by `.`"),
            (
                format!("{h}..c2ln"),
                "the token's header or payload is empty",
            ),
            (
                ".e30.c2ln".to_owned(),
                "the token's header or payload is empty",
            ),
        ] {
            let mut scratch = HeaderScratch::new();
            let err = Parsed::new(&token, 8192, &mut scratch, None).err().unwrap();
            assert_eq!(err.detail(), detail, "{token}");
        }
        // An empty signature splits (and then fails the signature check).
        let token = format!("{h}.e30.");
        let mut scratch = HeaderScratch::new();
        assert_eq!(
            Parsed::new(&token, 8192, &mut scratch, None)
                .unwrap()
                .signature,
            ""
        );
    }

    #[test]
    fn a_header_too_big_for_the_stack_is_still_read() {
        let kid = "k".repeat(1000);
        let token = format!(
            "{}.e30.c2ln",
            b64(&format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#))
        );
        let mut scratch = HeaderScratch::new();
        let p = Parsed::new(&token, 8192, &mut scratch, None).unwrap();
        assert_eq!(p.kid(), Some(kid.as_str()));
    }

    #[test]
    fn a_header_just_at_the_stack_limit_is_read_either_way() {
        // Lengths around the boundary, to catch an off-by-one in the size estimate.
        for pad in 200..260 {
            let json = format!(r#"{{"alg":"HS256","kid":"{}"}}"#, "x".repeat(pad));
            let token = format!("{}.e30.c2ln", b64(&json));
            let mut scratch = HeaderScratch::new();
            let p = Parsed::new(&token, 8192, &mut scratch, None).unwrap();
            assert_eq!(p.kid().map(str::len), Some(pad), "{pad}");
        }
    }

    #[test]
    fn escaped_header_members_are_unescaped() {
        let token = format!("{}.e30.c2ln", b64(r#"{"alg":"HS256","kid":"a\u0062c"}"#));
        let mut scratch = HeaderScratch::new();
        let p = Parsed::new(&token, 8192, &mut scratch, None).unwrap();
        assert_eq!(p.kid(), Some("abc"));
    }

    #[test]
    fn a_remembered_header_reads_the_same_as_a_decoded_one() {
        let memo = HeaderMemo::default();
        let header = b64(r#"{"typ":"at+jwt","alg":"EdDSA","kid":"k\u0031","crit":null}"#);
        let token = format!("{header}.e30.c2ln");
        let mut scratch = HeaderScratch::new();
        let first = Parsed::new(&token, 8192, &mut scratch, Some(&memo)).unwrap();
        assert!(matches!(first.members, Members::Decoded { .. }));
        memo.remember(&first);
        let mut scratch = HeaderScratch::new();
        let again = Parsed::new(&token, 8192, &mut scratch, Some(&memo)).unwrap();
        assert!(matches!(again.members, Members::Remembered(_)));
        let read = |p: &Parsed<'_, '_>| {
            (
                p.alg,
                p.kid().map(str::to_owned),
                p.typ().map(str::to_owned),
                p.crit,
            )
        };
        assert_eq!(read(&first), read(&again));
        assert_eq!(
            (again.message, again.payload, again.signature),
            (first.message, first.payload, first.signature)
        );
        // A different header segment (one more space) is read afresh.
        let other = format!(
            "{}.e30.c2ln",
            b64(r#"{"typ":"at+jwt", "alg":"EdDSA","kid":"k1"}"#)
        );
        let mut scratch = HeaderScratch::new();
        let p = Parsed::new(&other, 8192, &mut scratch, Some(&memo)).unwrap();
        assert!(matches!(p.members, Members::Decoded { .. }));
        assert!(!p.crit);
    }

    #[test]
    fn the_memo_keeps_the_last_few_headers() {
        let memo = HeaderMemo::default();
        let tokens: Vec<String> = (0..REMEMBERED + 1)
            .map(|i| {
                format!(
                    "{}.e30.c2ln",
                    b64(&format!(r#"{{"alg":"HS256","kid":"k{i}"}}"#))
                )
            })
            .collect();
        for t in &tokens {
            let mut scratch = HeaderScratch::new();
            memo.remember(&Parsed::new(t, 8192, &mut scratch, Some(&memo)).unwrap());
        }
        let remembered = |t: &str| {
            let mut scratch = HeaderScratch::new();
            let p = Parsed::new(t, 8192, &mut scratch, Some(&memo)).unwrap();
            matches!(p.members, Members::Remembered(_))
        };
        // The first was pushed out by the last.
        assert!(!remembered(&tokens[0]));
        assert!(tokens[1..].iter().all(|t| remembered(t)));
    }
}
