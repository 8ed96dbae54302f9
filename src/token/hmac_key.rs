//! An HMAC key ready to verify: the hash states of the padded key (the inner and
//! outer pads) are computed once, when the key is loaded, and each token starts
//! from a copy of them. A copy is a few hundred bytes on the stack; aws-lc's HMAC
//! context copy crosses into C and back for every token, and `jsonwebtoken`
//! rebuilds the states from the secret every time.
//!
//! The hashing is RustCrypto's `sha2` (with the CPU's SHA extensions where it has
//! them), the construction RustCrypto's `hmac`, and the tag comparison constant
//! time. Checked against RFC 4231's vectors and, for random keys and messages,
//! against aws-lc.

use super::algorithm::Algorithm;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

/// A secret's precomputed HMAC state for one of `HS256`, `HS384`, `HS512`.
#[derive(Clone)]
pub(crate) enum HmacKey {
    Sha256(Hmac<Sha256>),
    Sha384(Hmac<Sha384>),
    Sha512(Hmac<Sha512>),
}

impl HmacKey {
    /// `None` for an algorithm that is not HMAC.
    pub(crate) fn new(alg: Algorithm, secret: &[u8]) -> Option<HmacKey> {
        // HMAC takes a key of any length (a long one is hashed first), so these
        // constructors do not fail; `ok()` keeps that from being a panic anyway.
        Some(match alg {
            Algorithm::HS256 => HmacKey::Sha256(Hmac::new_from_slice(secret).ok()?),
            Algorithm::HS384 => HmacKey::Sha384(Hmac::new_from_slice(secret).ok()?),
            Algorithm::HS512 => HmacKey::Sha512(Hmac::new_from_slice(secret).ok()?),
            _ => return None,
        })
    }

    /// Whether `tag` is the HMAC of `message`: the whole tag, compared in constant
    /// time (a truncated tag is refused).
    pub(crate) fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        match self {
            HmacKey::Sha256(m) => m.clone().chain_update(message).verify_slice(tag).is_ok(),
            HmacKey::Sha384(m) => m.clone().chain_update(message).verify_slice(tag).is_ok(),
            HmacKey::Sha512(m) => m.clone().chain_update(message).verify_slice(tag).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 4231 test cases 2 ("what do ya want for nothing?") and 6 (a 131-byte key,
    /// longer than a block, so it is hashed first).
    #[test]
    fn rfc_4231_vectors() {
        let cases = [
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                [
                    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                    "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
                    "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
                ],
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                [
                    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
                    "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
                    "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
                ],
            ),
        ];
        for (key, message, tags) in cases {
            for (alg, tag) in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
                .into_iter()
                .zip(tags)
            {
                let k = HmacKey::new(alg, &key).unwrap();
                let tag = hex(tag);
                assert!(k.verify(&message, &tag), "{alg:?}");
                assert!(
                    !k.verify(&message, &tag[..tag.len() - 1]),
                    "{alg:?} truncated"
                );
                let mut flipped = tag.clone();
                flipped[0] ^= 1;
                assert!(!k.verify(&message, &flipped), "{alg:?} flipped");
            }
        }
        assert!(HmacKey::new(Algorithm::RS256, b"key").is_none());
    }

    proptest! {
        /// The same answers as aws-lc for any key and message, right or wrong tag.
        #[test]
        fn agrees_with_aws_lc(
            key in prop::collection::vec(any::<u8>(), 0..200),
            message in prop::collection::vec(any::<u8>(), 0..400),
            which in 0usize..3,
            corrupt in any::<bool>(),
        ) {
            let (alg, lc) = [
                (Algorithm::HS256, aws_lc_rs::hmac::HMAC_SHA256),
                (Algorithm::HS384, aws_lc_rs::hmac::HMAC_SHA384),
                (Algorithm::HS512, aws_lc_rs::hmac::HMAC_SHA512),
            ][which];
            let lc_key = aws_lc_rs::hmac::Key::new(lc, &key);
            let mut tag = aws_lc_rs::hmac::sign(&lc_key, &message).as_ref().to_vec();
            if corrupt {
                let i = message.len() % tag.len();
                tag[i] ^= 0x40;
            }
            let ours = HmacKey::new(alg, &key).unwrap().verify(&message, &tag);
            prop_assert_eq!(ours, aws_lc_rs::hmac::verify(&lc_key, &message, &tag).is_ok());
            prop_assert_eq!(ours, !corrupt);
        }
    }
}
