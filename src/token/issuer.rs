//! Which issuer a token names, read before it is verified, so that a gate that
//! accepts several issuers hands the token to the one verifier configured for its
//! `iss` (never to each in turn). The verifier then checks `iss` again, signed.

use std::borrow::Cow;

use serde::Deserialize;

use super::b64;

/// The payload's `iss`, when the token has three segments and its payload is a
/// JSON object with exactly one string `iss`. Unverified: only for routing.
pub(crate) fn peek_issuer(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Iss<'a> {
        #[serde(borrow)]
        iss: Cow<'a, str>,
    }
    let mut parts = token.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    let json = b64::decode_to_vec(payload)?;
    // serde's derive refuses a repeated `iss`: a token naming two issuers names none.
    let found: Iss<'_> = serde_json::from_slice(&json).ok()?;
    Some(found.iss.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn token(payload: &str) -> String {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            b.encode(r#"{"alg":"HS256"}"#),
            b.encode(payload)
        )
    }

    #[test]
    fn reads_one_string_iss_and_nothing_else() {
        assert_eq!(
            peek_issuer(&token(r#"{"sub":"u","iss":"https://a.example"}"#)).as_deref(),
            Some("https://a.example")
        );
        assert_eq!(peek_issuer(&token(r#"{"iss":"a","iss":"b"}"#)), None);
        assert_eq!(peek_issuer(&token(r#"{"iss":7}"#)), None);
        assert_eq!(peek_issuer(&token(r#"{"sub":"u"}"#)), None);
        assert_eq!(peek_issuer("only.two"), None);
        assert_eq!(peek_issuer(&format!("{}.x", token(r#"{"iss":"a"}"#))), None);
    }
}
