//! base64url without padding, as JWS segments are written (RFC 7515 §2), decoded
//! with SIMD where the CPU has it (`base64-simd`). It is as strict as the `base64`
//! crate that `jsonwebtoken` uses: no padding, no other alphabet, no non-zero
//! trailing bits (so a segment has exactly one encoding); a test holds the two to
//! the same answers.

use base64_simd::{AsOut, URL_SAFE_NO_PAD};

/// Decodes `segment` into the front of `out`; the decoded length, or `None` when
/// the segment is not base64url or does not fit.
pub(crate) fn decode_into(segment: &str, out: &mut [u8]) -> Option<usize> {
    let n = decoded_len(segment)?;
    let out = out.get_mut(..n)?;
    URL_SAFE_NO_PAD
        .decode(segment.as_bytes(), out.as_out())
        .ok()
        .map(|d| d.len())
}

/// How many bytes `segment` decodes to, or `None` when no base64url segment is that
/// long (the characters are checked by the decoding itself).
pub(crate) fn decoded_len(segment: &str) -> Option<usize> {
    URL_SAFE_NO_PAD.decoded_length(segment.as_bytes()).ok()
}

/// Decodes `segment` into a buffer of exactly its decoded length.
pub(crate) fn decode_to_vec(segment: &str) -> Option<Vec<u8>> {
    let n = decoded_len(segment)?;
    let mut out = vec![0; n];
    decode_into(segment, &mut out)?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use proptest::prelude::*;

    fn reference(s: &str) -> Option<Vec<u8>> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

        #[test]
        fn decodes_exactly_what_the_base64_crate_decodes(s in "[A-Za-z0-9_=+/-]{0,70}") {
            prop_assert_eq!(decode_to_vec(&s), reference(&s));
        }

        #[test]
        fn round_trips_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let s = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert_eq!(decode_to_vec(&s), Some(bytes));
        }
    }

    #[test]
    fn non_canonical_trailing_bits_padding_and_short_buffers_are_refused() {
        // "QQ" is "A"; "QR" has a non-zero trailing bit.
        assert_eq!(decode_to_vec("QQ"), Some(b"A".to_vec()));
        assert_eq!(decode_to_vec("QR"), None);
        assert_eq!(decode_to_vec("QUI"), Some(b"AB".to_vec()));
        assert_eq!(decode_to_vec("QUJ"), None);
        assert_eq!(decode_to_vec("QQ=="), None);
        assert_eq!(decode_to_vec("Q"), None);
        assert_eq!(decode_into("QUJD", &mut [0u8; 2]), None);
        assert_eq!(decode_into("QUJD", &mut [0u8; 3]), Some(3));
    }
}
