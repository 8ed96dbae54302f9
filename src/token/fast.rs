//! The HMAC fast path: the same checks as the general path, with the work that
//! does not need doing left out.
//!
//! `jsonwebtoken` rebuilds the HMAC key schedule for every token, and the general
//! path parses the whole payload into a `serde_json::Map` (an allocation per member)
//! before looking at five of its members. Here the key's HMAC states are computed
//! once per key ([`super::hmac_key`]), the signature is decoded onto the stack, and
//! the payload is read in one pass ([`super::scan`] for plain JSON, serde_json for
//! the rest) that keeps only `exp`, `nbf`, `iat`, `iss`, `aud` and the claims object;
//! the full payload is parsed later, only if a handler asks for it. The differential tests
//! (`tests/fast_path.rs`) hold both paths to the same answers and reasons.

// This module meets untrusted input: indexing and arithmetic are linted here.
#![cfg_attr(
    not(test),
    warn(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]
use std::borrow::Cow;
use std::fmt;

use serde::Deserialize as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::keys::VerifyingKey;
use crate::claims::{ClaimMember, ClaimMembers, Claims, MemberValue};

/// Checks an HMAC signature with the key's precomputed state, without allocating.
pub(crate) fn hmac_signature_ok(key: &VerifyingKey, message: &[u8], signature_b64: &str) -> bool {
    let Some(hmac) = &key.hmac else {
        return false;
    };
    let mut sig = [0u8; 64];
    match super::b64::decode_into(signature_b64, &mut sig) {
        Some(n) => sig.get(..n).is_some_and(|s| hmac.verify(message, s)),
        None => false,
    }
}

/// Any JSON value, read and dropped. Unlike `serde::de::IgnoredAny` it is parsed
/// as fully as a `serde_json::Value` would be (numbers in range, strings valid
/// UTF-8), so the fast path refuses exactly the payloads the general path refuses.
pub(crate) struct Skip;

impl<'de> de::Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Skip;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_unit<E>(self) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(Skip)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
                while map.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(Skip)
            }
        }
        d.deserialize_any(V)
    }
}

/// A NumericDate claim (`exp`, `nbf`, `iat`) as read: seconds (a fraction
/// truncated, a whole number past `i64` saturated, as `serde_json::Number`'s
/// `as_f64` then `as i64` gives), or not a number at all. Read straight from the
/// JSON on the fast path, from a `Value` on the general one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum NumericDate {
    Secs(i64),
    NotANumber,
}

impl NumericDate {
    pub(crate) fn of(v: &Value) -> NumericDate {
        match v {
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => NumericDate::Secs(i),
                (None, Some(f)) if f.is_finite() => NumericDate::Secs(f as i64),
                _ => NumericDate::NotANumber,
            },
            _ => NumericDate::NotANumber,
        }
    }
}

impl<'de> de::Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NumericDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_i64<E>(self, v: i64) -> Result<NumericDate, E> {
                Ok(NumericDate::Secs(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<NumericDate, E> {
                Ok(NumericDate::Secs(
                    i64::try_from(v).unwrap_or(v as f64 as i64),
                ))
            }
            fn visit_f64<E>(self, v: f64) -> Result<NumericDate, E> {
                Ok(NumericDate::of(&Value::from(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<NumericDate, E> {
                Ok(NumericDate::NotANumber)
            }
            fn visit_str<E>(self, _: &str) -> Result<NumericDate, E> {
                Ok(NumericDate::NotANumber)
            }
            fn visit_unit<E>(self) -> Result<NumericDate, E> {
                Ok(NumericDate::NotANumber)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NumericDate, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(NumericDate::NotANumber)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NumericDate, A::Error> {
                while map.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(NumericDate::NotANumber)
            }
        }
        d.deserialize_any(V)
    }
}

/// A member's value (or key): a string borrowed from the payload where it can be
/// (the common case, no allocation), or any other JSON value, parsed as a
/// `serde_json::Value` would be. (serde's own `Cow<str>` always copies.)
pub(crate) enum Member<'a> {
    Str(Cow<'a, str>),
    Json(Value),
}

impl ClaimMember for Member<'_> {
    fn view(&self) -> MemberValue<'_> {
        match self {
            Member::Str(s) => MemberValue::Str(s),
            Member::Json(v) => MemberValue::from(v),
        }
    }
}

impl Member<'_> {
    pub(crate) fn into_value(self) -> Value {
        match self {
            Member::Str(s) => Value::String(s.into_owned()),
            Member::Json(v) => v,
        }
    }
}

impl<'de> de::Deserialize<'de> for Member<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Member<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Member::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Member::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Member::Str(Cow::Owned(v)))
            }
            // The rest exactly as `serde_json::Value` reads them.
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Member::Json(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Member::Json(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Member::Json(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Member::Json(Value::from(v)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Member::Json(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Member::Json)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(Member::Json)
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads the claims object member by member into a [`Claims`] in place (no map
/// built first, and the struct is not moved around on the way out); anything but an
/// object leaves empty claims, as on the general path.
pub(crate) struct ClaimsInto<'c>(pub &'c mut Claims);

impl<'de> de::DeserializeSeed<'de> for ClaimsInto<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        struct V<'c>(&'c mut Claims);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                let mut members = ClaimMembers::<Member<'de>>::default();
                while let Some(key) = map.next_key::<Member<'de>>()? {
                    let value: Member<'de> = map.next_value()?;
                    let Member::Str(key) = key else { continue };
                    if let Err(custom) = members.take(&key, value) {
                        self.0.custom.insert(key.into_owned(), custom.into_value());
                    }
                }
                members.apply(self.0);
                Ok(())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(())
            }
            fn visit_bool<E>(self, _: bool) -> Result<(), E> {
                Ok(())
            }
            fn visit_i64<E>(self, _: i64) -> Result<(), E> {
                Ok(())
            }
            fn visit_u64<E>(self, _: u64) -> Result<(), E> {
                Ok(())
            }
            fn visit_f64<E>(self, _: f64) -> Result<(), E> {
                Ok(())
            }
            fn visit_str<E>(self, _: &str) -> Result<(), E> {
                Ok(())
            }
            fn visit_unit<E>(self) -> Result<(), E> {
                Ok(())
            }
        }
        d.deserialize_any(V(self.0))
    }
}

/// The members of a payload the verifier checks, read in one pass. A member that
/// appears twice keeps its last value, as `serde_json::Map` does.
#[derive(Default)]
pub(crate) struct HotPayload<'a> {
    pub exp: Option<NumericDate>,
    pub nbf: Option<NumericDate>,
    pub iat: Option<NumericDate>,
    pub iss: Option<Member<'a>>,
    pub aud: Option<Member<'a>>,
}

impl<'a> HotPayload<'a> {
    /// Reads a payload whose subscription claims sit under `claims_key`, those into
    /// `claims` (left empty when there are none: written in place, as they are the
    /// bulk of what is read). `Err` when it is not a JSON object (or not JSON).
    /// Plain JSON — nearly every payload — is read by [`super::scan`]; the rest by
    /// serde_json.
    pub(crate) fn parse(
        json: &'a str,
        claims_key: &str,
        claims: &mut Claims,
    ) -> Result<HotPayload<'a>, serde_json::Error> {
        match super::scan::hot_payload(json, claims_key, claims) {
            Some(p) => Ok(p),
            None => {
                // The scanner may have read some claims before it gave up.
                *claims = Claims::default();
                Self::parse_with_serde(json, claims_key, claims)
            }
        }
    }

    /// [`parse`](Self::parse) with serde_json alone. Takes `str`, checked as UTF-8
    /// once as a whole, so serde_json does not check each string again.
    pub(crate) fn parse_with_serde(
        json: &'a str,
        claims_key: &str,
        claims: &mut Claims,
    ) -> Result<HotPayload<'a>, serde_json::Error> {
        struct V<'k, 'c> {
            claims_key: &'k str,
            claims: &'c mut Claims,
        }
        impl<'de> Visitor<'de> for V<'_, '_> {
            type Value = HotPayload<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut p = HotPayload::default();
                while let Some(key) = map.next_key::<Member<'de>>()? {
                    let Member::Str(key) = key else { continue };
                    match &*key {
                        "exp" => p.exp = Some(map.next_value()?),
                        "nbf" => p.nbf = Some(map.next_value()?),
                        "iat" => p.iat = Some(map.next_value()?),
                        "iss" => p.iss = Some(map.next_value()?),
                        "aud" => p.aud = Some(map.next_value()?),
                        k if k == self.claims_key => {
                            // A repeated claims member: the last one counts, whole.
                            *self.claims = Claims::default();
                            map.next_value_seed(ClaimsInto(self.claims))?;
                        }
                        _ => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(p)
            }
        }
        let mut de = serde_json::Deserializer::from_str(json);
        let p = de.deserialize_map(V { claims_key, claims })?;
        de.end()?;
        Ok(p)
    }
}
