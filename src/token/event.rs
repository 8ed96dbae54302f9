//! Security Event Tokens (RFC 8417) verified with an access-token verifier's keys,
//! issuer and audience: how the layer checks the claims-change feed's events. They
//! are told apart from access tokens by `typ: secevent+jwt` (required, so neither
//! can be passed off as the other) and carry no `exp`.

use serde_json::{Map, Value};

use super::error::{TokenError, TokenErrorKind as Kind};
use super::parsed::{HeaderScratch, Parsed, refused_for};
use super::signature::Method;
use super::verified::RawPayload;
use super::verify::Verifier;

/// The `typ` of a Security Event Token.
const SET_TYPE: &str = "secevent+jwt";

/// SETs up to this size are read (a feed's events are a few hundred bytes).
const MAX_SET_BYTES: usize = 16 * 1024;

impl Verifier {
    /// Verifies a Security Event Token: its header (`typ: secevent+jwt`, no
    /// `crit`), key and signature as for an access token (a JWKS is refetched once
    /// for an unknown `kid`), then `iss` and `aud` when this verifier requires them
    /// and `iat` not in the future. Returns the payload.
    pub(crate) async fn verify_event(
        &self,
        set: &str,
        now: i64,
    ) -> Result<Map<String, Value>, TokenError> {
        let first = self.verify_event_now(set, now);
        #[cfg(feature = "jwks")]
        if let (Err(e), Some(jwks)) = (&first, &self.0.jwks)
            && e.kind() == Kind::UnknownKey
        {
            jwks.refetch().await;
            return self.verify_event_now(set, now).map_err(|e| jwks.explain(e));
        }
        first
    }

    fn verify_event_now(&self, set: &str, now: i64) -> Result<Map<String, Value>, TokenError> {
        let verify = || {
            let mut scratch = HeaderScratch::new();
            let parsed = Parsed::new(set, MAX_SET_BYTES, &mut scratch, None)?;
            if parsed.crit {
                return Err(TokenError::new(
                    Kind::CriticalHeader,
                    "the event's header has `crit`",
                ));
            }
            let typ_ok = parsed.typ().is_some_and(|t| {
                let t = t.strip_prefix("application/").unwrap_or(t);
                t.eq_ignore_ascii_case(SET_TYPE)
            });
            if !typ_ok {
                return Err(TokenError::new(
                    Kind::WrongType,
                    "a security event's header `typ` must be `secevent+jwt`",
                ));
            }
            let (_, signed) = self.find_key(&parsed, Method::Fastest)?;
            let mut raw = RawPayload::new();
            let json = signed.decode(&mut raw)?;
            let payload: Map<String, Value> = serde_json::from_str(json.text())
                .map_err(|_| super::parsed::malformed("the event is not a JSON object"))?;
            self.check_event_claims(&payload, now)?;
            Ok(payload)
        };
        verify().map_err(|e| refused_for(set, e))
    }

    fn check_event_claims(&self, payload: &Map<String, Value>, now: i64) -> Result<(), TokenError> {
        let issuers = &self.0.issuers;
        if !issuers.is_empty() {
            let iss = payload.get("iss").and_then(Value::as_str);
            if !iss.is_some_and(|iss| issuers.iter().any(|i| i == iss)) {
                return Err(TokenError::new(
                    Kind::WrongIssuer,
                    "the event's `iss` is not an accepted issuer",
                ));
            }
        }
        let audiences = &self.0.audiences;
        if !audiences.is_empty() {
            let ok = match payload.get("aud") {
                Some(Value::String(a)) => audiences.contains(a),
                Some(Value::Array(list)) => list
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|a| audiences.iter().any(|x| x == a)),
                _ => false,
            };
            if !ok {
                return Err(TokenError::new(
                    Kind::WrongAudience,
                    "the event's `aud` names none of this service's audiences",
                ));
            }
        }
        match payload.get("iat").and_then(Value::as_i64) {
            Some(iat) if iat <= now.saturating_add(self.0.leeway) => Ok(()),
            Some(_) => Err(TokenError::new(
                Kind::IssuedInFuture,
                "the event was issued in the future (`iat`)",
            )),
            None => Err(TokenError::new(
                Kind::MissingClaim,
                "the event has no whole-number `iat`",
            )),
        }
    }
}
