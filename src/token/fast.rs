//! The HMAC fast path: the same checks as the general path, with the work that
//! does not need doing left out.
//!
//! `jsonwebtoken` rebuilds the HMAC key schedule for every token, and the general
//! path parses the whole payload into a `serde_json::Map` (an allocation per member)
//! before looking at five of its members. Here the key schedule is computed once per
//! key, the signature is decoded onto the stack, and the payload is read in one pass
//! that keeps only `exp`, `nbf`, `iat`, `iss`, `aud` and the claims object; the full
//! payload is parsed later, only if a handler asks for it. The differential tests
//! (`tests/fast_path.rs`) hold both paths to the same answers and reasons.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::keys::VerifyingKey;
use crate::claims::{ClaimMember, ClaimMembers, Claims, MemberValue};

/// Checks an HMAC signature with the key's precomputed schedule, without allocating.
pub(crate) fn hmac_signature_ok(key: &VerifyingKey, message: &[u8], signature_b64: &str) -> bool {
    let Some(schedule) = &key.hmac else {
        return false;
    };
    let mut sig = [0u8; 64];
    match URL_SAFE_NO_PAD.decode_slice(signature_b64, &mut sig) {
        Ok(n) => aws_lc_rs::hmac::verify(schedule, message, &sig[..n]).is_ok(),
        Err(_) => false,
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

/// A JSON string, or anything else (whose value is never needed, only its kind).
pub(crate) enum StrOr<'a> {
    Str(Cow<'a, str>),
    Other,
}

impl<'de> de::Deserialize<'de> for StrOr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrOr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(StrOr::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrOr::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(StrOr::Str(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(StrOr::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(StrOr::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(StrOr::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(StrOr::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(StrOr::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(StrOr::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(StrOr::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// `aud`: a string, a list (whose members may be anything), or something else.
pub(crate) enum Aud<'a> {
    One(StrOr<'a>),
    Many(Vec<StrOr<'a>>),
}

impl<'de> de::Deserialize<'de> for Aud<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Aud<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(item) = seq.next_element::<StrOr<'de>>()? {
                    all.push(item);
                }
                Ok(Aud::Many(all))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Aud::One(StrOr::Str(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Aud::One(StrOr::Str(Cow::Owned(v.to_owned()))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Aud::One(StrOr::Other))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Aud::One(StrOr::Other))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Aud::One(StrOr::Other))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Aud::One(StrOr::Other))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Aud::One(StrOr::Other))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(Aud::One(StrOr::Other))
            }
        }
        d.deserialize_any(V)
    }
}

/// A claim member's value: a string borrowed from the payload where it can be
/// (the common case, no allocation), or any other JSON value, parsed as a
/// `serde_json::Value` would be.
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
    fn into_value(self) -> Value {
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

/// The claims object read member by member into [`Claims`], without building a
/// map first; anything but an object gives empty claims, as on the general path.
pub(crate) struct ClaimsValue(pub Claims);

impl<'de> de::Deserialize<'de> for ClaimsValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ClaimsValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ClaimsValue, A::Error> {
                let mut claims = Claims::default();
                let mut members = ClaimMembers::<Member<'de>>::default();
                while let Some(key) = map.next_key::<StrOr<'de>>()? {
                    let value: Member<'de> = map.next_value()?;
                    let StrOr::Str(key) = key else { continue };
                    if let Err(custom) = members.take(&key, value) {
                        claims.custom.insert(key.into_owned(), custom.into_value());
                    }
                }
                members.apply(&mut claims);
                Ok(ClaimsValue(claims))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ClaimsValue, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(ClaimsValue(Claims::default()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<ClaimsValue, E> {
                Ok(ClaimsValue(Claims::default()))
            }
            fn visit_i64<E>(self, _: i64) -> Result<ClaimsValue, E> {
                Ok(ClaimsValue(Claims::default()))
            }
            fn visit_u64<E>(self, _: u64) -> Result<ClaimsValue, E> {
                Ok(ClaimsValue(Claims::default()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<ClaimsValue, E> {
                Ok(ClaimsValue(Claims::default()))
            }
            fn visit_str<E>(self, _: &str) -> Result<ClaimsValue, E> {
                Ok(ClaimsValue(Claims::default()))
            }
            fn visit_unit<E>(self) -> Result<ClaimsValue, E> {
                Ok(ClaimsValue(Claims::default()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The members of a payload the verifier checks, read in one pass. A member that
/// appears twice keeps its last value, as `serde_json::Map` does.
#[derive(Default)]
pub(crate) struct HotPayload<'a> {
    pub exp: Option<Value>,
    pub nbf: Option<Value>,
    pub iat: Option<Value>,
    pub iss: Option<StrOr<'a>>,
    pub aud: Option<Aud<'a>>,
    /// The subscription claims under the claims key (the nested location).
    pub claims: Option<ClaimsValue>,
}

impl<'a> HotPayload<'a> {
    /// Reads a payload whose subscription claims sit under `claims_key`. `Err` when
    /// it is not a JSON object (or not JSON). Takes `str`, checked as UTF-8 once as a
    /// whole, so serde_json does not check each string again.
    pub(crate) fn parse(
        json: &'a str,
        claims_key: &str,
    ) -> Result<HotPayload<'a>, serde_json::Error> {
        struct V<'k> {
            claims_key: &'k str,
        }
        impl<'de> Visitor<'de> for V<'_> {
            type Value = HotPayload<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut p = HotPayload::default();
                while let Some(key) = map.next_key::<StrOr<'de>>()? {
                    let StrOr::Str(key) = key else { continue };
                    match &*key {
                        "exp" => p.exp = Some(map.next_value()?),
                        "nbf" => p.nbf = Some(map.next_value()?),
                        "iat" => p.iat = Some(map.next_value()?),
                        "iss" => p.iss = Some(map.next_value()?),
                        "aud" => p.aud = Some(map.next_value()?),
                        k if k == self.claims_key => p.claims = Some(map.next_value()?),
                        _ => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(p)
            }
        }
        let mut de = serde_json::Deserializer::from_str(json);
        let p = de.deserialize_map(V { claims_key })?;
        de.end()?;
        Ok(p)
    }
}
