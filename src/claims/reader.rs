//! The one payload reader: a single serde visitor that reads a token payload's
//! registered claims (`exp`, `nbf`, `iat`, `iss`, `aud`, `sub`) and its subscription
//! claims at any [`ClaimsLocation`], in one pass, for every algorithm.
//!
//! The token verifier runs it over the payload's JSON text (after the signature
//! check: see `token::signature`), and [`Claims::from_payload`] runs it over a
//! `serde_json::Value`, so there is one place that decides what a payload means:
//!
//! - a member tiergate reads may appear once: a payload that repeats `exp`, `plan`,
//!   the claims object, … is refused (RFC 7519 §4 allows it) rather than read as
//!   whichever copy a parser happens to keep;
//! - every value is read the way `serde_json::Value` reads it, whatever serde_json
//!   features other crates in the binary turn on: with `arbitrary_precision`, numbers
//!   arrive as a one-member map, which is handed to `Value`'s own visitor, so
//!   `exp: 1.8e9` means the same with and without it (checked by `checks/serde-features`);
//! - strings are borrowed from the payload where they have no escapes, and members
//!   nobody reads are skipped without building anything.
//!
//! ```
//! use tiergate::{Claims, ClaimsLocation};
//! use serde_json::json;
//!
//! // `Claims::from_payload` is this reader over a `Value`.
//! let payload = json!({ "exp": 1, "claims": { "plan": "pro", "seats": 3 } });
//! let claims = Claims::from_payload(&payload, &ClaimsLocation::default());
//! assert_eq!((claims.plan(), claims.seats()), (Some("pro"), Some(3)));
//! ```

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize as _;
use serde::de::DeserializeSeed as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::key::Key;
use super::location::ClaimsLocation;
use super::mapping::ClaimsMapping;
use super::members::{ClaimMember, ClaimMembers, MemberValue, Took};
use super::model::Claims;
use super::node::{NUMBER_TOKEN, Node, OUT_OF_RANGE};

/// Whether serde_json was built with `arbitrary_precision` (one crate in a binary
/// turning it on turns it on for all). Numbers then reach a visitor as a one-member
/// map holding their text, and the parser no longer refuses one beyond `f64`'s
/// range (`1e400`); the reader then refuses it itself, so a payload means the same
/// in every build. Asked once.
fn arbitrary_precision() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        serde_json::from_str::<Value>("1.50")
            .and_then(|v| serde_json::to_string(&v))
            .is_ok_and(|text| text == "1.50")
    })
}

fn out_of_range<E: de::Error>() -> E {
    E::custom(OUT_OF_RANGE)
}

/// Whether every number in `v` is within `f64`'s range (always so without
/// `arbitrary_precision`: the parser refused the payload already).
fn numbers_in_range(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
        Value::Array(items) => items.iter().all(numbers_in_range),
        Value::Object(members) => members.values().all(numbers_in_range),
        _ => true,
    }
}

/// The text of a number under `arbitrary_precision` (the value after
/// [`NUMBER_TOKEN`]), refused beyond `f64`'s range.
fn number_text<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    let text: Member<'de> = map.next_value()?;
    match text.as_str().map(str::parse::<f64>) {
        Some(Ok(f)) if f.is_finite() => Ok(()),
        _ => Err(out_of_range()),
    }
}

/// A `Value` read from a map or sequence, checked as above.
fn checked<E: de::Error>(v: Value) -> Result<Value, E> {
    if arbitrary_precision() && !numbers_in_range(&v) {
        return Err(out_of_range());
    }
    Ok(v)
}

/// Any JSON value, read and dropped. Unlike `serde::de::IgnoredAny` it is parsed
/// as fully as a `serde_json::Value` would be (numbers in range, strings valid), so
/// a payload is refused or accepted whether or not anybody reads a member.
struct Skip;

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
                if arbitrary_precision()
                    && let Some(Key(key)) = map.next_key::<Key<'de>>()?
                {
                    if key == NUMBER_TOKEN {
                        let text: Member<'de> = map.next_value()?;
                        let ok = text
                            .as_str()
                            .is_some_and(|t| t.parse::<f64>().is_ok_and(f64::is_finite));
                        return if ok { Ok(Skip) } else { Err(out_of_range()) };
                    }
                    map.next_value::<Skip>()?;
                }
                while map.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(Skip)
            }
        }
        d.deserialize_any(V)
    }
}

/// A NumericDate claim (`exp`, `nbf`, `iat`) as read: seconds (a fraction
/// truncated, a whole number past `i64` saturated, as `serde_json::Number`'s
/// `as_f64` then `as i64` gives), or not a number at all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum NumericDate {
    Secs(i64),
    NotANumber,
}

impl NumericDate {
    fn of(v: &Value) -> NumericDate {
        match v {
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => NumericDate::Secs(i),
                (None, Some(f)) if f.is_finite() => NumericDate::Secs(f as i64),
                _ => NumericDate::NotANumber,
            },
            _ => NumericDate::NotANumber,
        }
    }

    fn of_member(m: &Member<'_>) -> NumericDate {
        match m {
            Member::Str(_) => NumericDate::NotANumber,
            Member::Json(v) => NumericDate::of(v),
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
                Ok(NumericDate::of(&Value::from(v)))
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
            // An object — or, with serde_json's `arbitrary_precision`, a number in
            // disguise: `Value` tells the two apart.
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NumericDate, A::Error> {
                let v = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(NumericDate::of(&checked(v)?))
            }
        }
        d.deserialize_any(V)
    }
}

/// A member's value: a string borrowed from the payload where it can be (the
/// common case, no allocation), or any other JSON value, parsed as a
/// `serde_json::Value` would be. (serde's own `Cow<str>` always copies.)
#[derive(Clone, Debug)]
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

    /// The string, when the member is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Member::Str(s) => Some(s),
            Member::Json(_) => None,
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
                let v = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                checked(v).map(Member::Json)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let v = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                checked(v).map(Member::Json)
            }
        }
        d.deserialize_any(V)
    }
}

/// The registered claims the verifier checks, as found. `sub` is kept too: it names
/// whose claims these are.
#[derive(Default, Debug)]
pub(crate) struct Registered<'a> {
    pub exp: Option<NumericDate>,
    pub nbf: Option<NumericDate>,
    pub iat: Option<NumericDate>,
    pub iss: Option<Member<'a>>,
    pub aud: Option<Member<'a>>,
    pub sub: Option<Member<'a>>,
    /// `cv`: the issuer's claims version the token was minted from (see the
    /// layer's claims-change follower); a whole number when it is one.
    pub cv: Option<NumericDate>,
}

/// The claim in which tiergate's reference server writes the claims version a
/// token was minted from (a whole number that grows with every change to the user).
/// Read in the same pass as the registered claims, for the layer's claims-change
/// follower.
pub const CLAIMS_VERSION_CLAIM: &str = "cv";

/// The registered claim names (RFC 7519 §4.1). A claims location may not name one.
pub(crate) const REGISTERED: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

#[derive(Clone, Copy)]
enum Slot {
    Exp,
    Nbf,
    Iat,
    Iss,
    Aud,
    Sub,
    Cv,
}

impl Slot {
    fn of(name: &str) -> Option<Slot> {
        Some(match name {
            "exp" => Slot::Exp,
            "nbf" => Slot::Nbf,
            "iat" => Slot::Iat,
            "iss" => Slot::Iss,
            "aud" => Slot::Aud,
            "sub" => Slot::Sub,
            CLAIMS_VERSION_CLAIM => Slot::Cv,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Slot::Exp => "exp",
            Slot::Nbf => "nbf",
            Slot::Iat => "iat",
            Slot::Iss => "iss",
            Slot::Aud => "aud",
            Slot::Sub => "sub",
            Slot::Cv => CLAIMS_VERSION_CLAIM,
        }
    }
}

impl<'a> Registered<'a> {
    fn is_set(&self, slot: Slot) -> bool {
        match slot {
            Slot::Exp => self.exp.is_some(),
            Slot::Nbf => self.nbf.is_some(),
            Slot::Iat => self.iat.is_some(),
            Slot::Iss => self.iss.is_some(),
            Slot::Aud => self.aud.is_some(),
            Slot::Sub => self.sub.is_some(),
            Slot::Cv => self.cv.is_some(),
        }
    }

    /// Reads the slot's value straight from the payload.
    fn read<A: MapAccess<'a>>(&mut self, slot: Slot, map: &mut A) -> Result<(), A::Error> {
        match slot {
            Slot::Exp => self.exp = Some(map.next_value()?),
            Slot::Nbf => self.nbf = Some(map.next_value()?),
            Slot::Iat => self.iat = Some(map.next_value()?),
            Slot::Iss => self.iss = Some(map.next_value()?),
            Slot::Aud => self.aud = Some(map.next_value()?),
            Slot::Sub => self.sub = Some(map.next_value()?),
            Slot::Cv => self.cv = Some(map.next_value()?),
        }
        Ok(())
    }

    /// Sets the slot from a member that is a subscription claim too (claims at the
    /// top level).
    fn set(&mut self, slot: Slot, m: &Member<'a>) {
        match slot {
            Slot::Exp => self.exp = Some(NumericDate::of_member(m)),
            Slot::Nbf => self.nbf = Some(NumericDate::of_member(m)),
            Slot::Iat => self.iat = Some(NumericDate::of_member(m)),
            Slot::Iss => self.iss = Some(m.clone()),
            Slot::Aud => self.aud = Some(m.clone()),
            Slot::Sub => self.sub = Some(m.clone()),
            Slot::Cv => self.cv = Some(NumericDate::of_member(m)),
        }
    }
}

/// Why a payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// Not JSON text at all.
    NotJson,
    /// JSON, but not an object.
    NotObject,
    /// A member tiergate reads appears twice (named).
    Repeated(String),
}

/// Where a payload's subscription claims are: at a location, or where a claims
/// mapping says (the policy's `claims:` section).
#[derive(Clone, Copy)]
pub(crate) enum ClaimsSource<'a> {
    Location(&'a ClaimsLocation),
    Mapping(&'a ClaimsMapping),
}

/// Reads a payload's JSON text: its registered claims are returned, its
/// subscription claims written into `claims` (which must start empty). With a
/// mapping, the members its pointers start at are parsed in the same pass (a
/// repeated one is refused, as any member tiergate reads) and the rest skipped.
pub(crate) fn read_json<'a>(
    json: &'a str,
    source: ClaimsSource<'_>,
    claims: &mut Claims,
) -> Result<Registered<'a>, ReadError> {
    let mut repeated = None;
    let mut de = serde_json::Deserializer::from_str(json);
    let read = match source {
        ClaimsSource::Location(location) => de.deserialize_map(PayloadVisitor {
            location,
            claims,
            repeated: &mut repeated,
        }),
        ClaimsSource::Mapping(mapping) => de.deserialize_map(MappedPayloadVisitor {
            mapping,
            claims,
            repeated: &mut repeated,
        }),
    };
    let read = read.and_then(|r| de.end().map(|()| r));
    read.map_err(|e| match repeated {
        Some(name) => ReadError::Repeated(name),
        // "Not an object" only for JSON that is valid: `[1cla3]` is not JSON.
        None if e.is_data() && !e.to_string().starts_with(OUT_OF_RANGE) && is_json(json) => {
            ReadError::NotObject
        }
        None => ReadError::NotJson,
    })
}

/// Whether `json` is JSON text, as the reader reads it (numbers in range).
fn is_json(json: &str) -> bool {
    let mut de = serde_json::Deserializer::from_str(json);
    Skip::deserialize(&mut de).and_then(|_| de.end()).is_ok()
}

/// Reads the subscription claims of a payload already parsed (a `Value`, or a
/// map's members through [`map_members`]); anything but an object reads as no claims.
pub(crate) fn read_parsed<'de, D: Deserializer<'de>>(
    payload: D,
    location: &ClaimsLocation,
) -> Claims {
    let mut claims = Claims::default();
    let mut repeated = None;
    let read = payload.deserialize_map(PayloadVisitor {
        location,
        claims: &mut claims,
        repeated: &mut repeated,
    });
    // Parsed JSON cannot repeat a member, so the only failure is "not an object".
    match read {
        Ok(_) => claims,
        Err(_) => Claims::default(),
    }
}

/// Reads an already parsed claims object itself (`{"plan": "pro", …}`); anything
/// but an object reads as no claims.
pub(crate) fn read_parsed_claims<'de, D: Deserializer<'de>>(object: D) -> Claims {
    let mut claims = Claims::default();
    let mut repeated = None;
    let read = ClaimsInto {
        claims: &mut claims,
        repeated: &mut repeated,
    }
    .deserialize(object);
    match read {
        Ok(()) => claims,
        Err(_) => Claims::default(),
    }
}

/// A map's members as a deserializer, for the readers above.
pub(crate) fn map_members(
    map: &serde_json::Map<String, Value>,
) -> impl Deserializer<'_, Error = serde_json::Error> {
    de::value::MapDeserializer::new(
        map.iter()
            .map(|(k, v)| (de::value::BorrowedStrDeserializer::new(k), v)),
    )
}

struct PayloadVisitor<'l, 'c, 'r> {
    location: &'l ClaimsLocation,
    claims: &'c mut Claims,
    /// Set to the name of a repeated member before the error that stops the read.
    repeated: &'r mut Option<String>,
}

fn repeated_error<E: de::Error>(out: &mut Option<String>, name: &str) -> E {
    *out = Some(name.to_owned());
    E::custom("a repeated member")
}

impl<'de> Visitor<'de> for PayloadVisitor<'_, '_, '_> {
    type Value = Registered<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let PayloadVisitor {
            location,
            claims,
            repeated,
        } = self;
        let (nested, prefix) = match location {
            ClaimsLocation::Nested(key) => (Some(key.as_str()), None),
            ClaimsLocation::TopLevel => (None, Some("")),
            ClaimsLocation::Namespaced(prefix) => (None, Some(prefix.as_str())),
        };
        let mut reg = Registered::default();
        let mut members = ClaimMembers::<Member<'de>>::default();
        let mut seen_nested = false;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if nested == Some(&*key) {
                if std::mem::replace(&mut seen_nested, true) {
                    return Err(repeated_error(repeated, &key));
                }
                map.next_value_seed(ClaimsInto {
                    claims: &mut *claims,
                    repeated: &mut *repeated,
                })?;
                continue;
            }
            let slot = Slot::of(&key);
            if let Some(s) = slot
                && reg.is_set(s)
            {
                return Err(repeated_error(repeated, s.name()));
            }
            match (slot, prefix.and_then(|p| key.strip_prefix(p))) {
                (None, None) => {
                    map.next_value::<Skip>()?;
                }
                (Some(s), None) => reg.read(s, &mut map)?,
                (slot, Some(name)) => {
                    let value: Member<'de> = map.next_value()?;
                    if let Some(s) = slot {
                        reg.set(s, &value);
                    }
                    match members.take(name, value) {
                        Took::Kept => {}
                        Took::Repeated => return Err(repeated_error(repeated, &key)),
                        Took::Other(value) => {
                            claims.custom.insert(name.to_owned(), value.into_value());
                        }
                    }
                }
            }
        }
        if nested.is_none() {
            members.apply(claims);
        }
        Ok(reg)
    }
}

impl ClaimsMapping {
    /// Reads the claims from a payload's JSON text with the verifier's own pass
    /// (see `read_json`): only the members the mapping's pointers start at are
    /// parsed, the rest skipped. What a cached token's first request costs after a
    /// reload changed the mapping. A payload the verifier would refuse (not a JSON
    /// object, a member it reads given twice) reads as no claims.
    pub fn read_json(&self, payload: &[u8]) -> Claims {
        let mut claims = Claims::default();
        let read = std::str::from_utf8(payload)
            .ok()
            .and_then(|text| read_json(text, ClaimsSource::Mapping(self), &mut claims).ok());
        match read {
            Some(_) => claims,
            None => Claims::default(),
        }
    }
}

/// [`PayloadVisitor`] for a claims mapping: the registered claims as there, and
/// the members the mapping's pointers start at kept (as `Value`s) for the mapping.
struct MappedPayloadVisitor<'m, 'c, 'r> {
    mapping: &'m ClaimsMapping,
    claims: &'c mut Claims,
    repeated: &'r mut Option<String>,
}

impl<'de> Visitor<'de> for MappedPayloadVisitor<'_, '_, '_> {
    type Value = Registered<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let wanted = self.mapping.members();
        let mut reg = Registered::default();
        let mut kept: Vec<(Cow<'de, str>, Node<'de>)> = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if let Some(s) = Slot::of(&key) {
                if reg.is_set(s) {
                    return Err(repeated_error(self.repeated, s.name()));
                }
                reg.read(s, &mut map)?;
            } else if wanted.contains(&&*key) {
                if kept.iter().any(|(k, _)| *k == key) {
                    return Err(repeated_error(self.repeated, &key));
                }
                let value: Node<'de> = map.next_value()?;
                kept.push((key, value));
            } else {
                map.next_value::<Skip>()?;
            }
        }
        *self.claims = self.mapping.read_members(&kept, None);
        Ok(reg)
    }
}

/// Reads the claims object member by member into a [`Claims`] in place (no map
/// built first); anything but an object leaves empty claims.
struct ClaimsInto<'c, 'r> {
    claims: &'c mut Claims,
    repeated: &'r mut Option<String>,
}

impl<'de> de::DeserializeSeed<'de> for ClaimsInto<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ClaimsInto<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut members = ClaimMembers::<Member<'de>>::default();
        let mut first = true;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if std::mem::take(&mut first) && arbitrary_precision() && key == NUMBER_TOKEN {
                // A number, not a claims object: no claims, as without the feature.
                return number_text(&mut map);
            }
            let value: Member<'de> = map.next_value()?;
            match members.take(&key, value) {
                Took::Kept => {}
                Took::Repeated => return Err(repeated_error(self.repeated, &key)),
                Took::Other(value) => {
                    self.claims
                        .custom
                        .insert(key.into_owned(), value.into_value());
                }
            }
        }
        members.apply(self.claims);
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

impl Claims {
    /// Reads the claims from a token payload at `location` (empty claims when the
    /// payload is not an object). The verifier reads token payloads with the same
    /// reader (this module), so both give the same claims.
    pub fn from_payload(payload: &Value, location: &ClaimsLocation) -> Claims {
        read_parsed(payload, location)
    }

    /// [`from_payload`](Self::from_payload) for a payload already known to be an object.
    pub fn from_payload_map(payload: &Map<String, Value>, location: &ClaimsLocation) -> Claims {
        read_parsed(map_members(payload), location)
    }

    /// Reads the claims from the claims object itself: `{"plan": "pro", "seats": 5, ...}`.
    /// Anything that is not an object gives empty claims.
    pub fn from_object(object: &Value) -> Claims {
        read_parsed_claims(object)
    }

    /// Reads the claims from the members of the claims object.
    pub fn from_map(map: &Map<String, Value>) -> Claims {
        read_parsed_claims(map_members(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read<'a>(
        json: &'a str,
        location: &ClaimsLocation,
    ) -> Result<(Registered<'a>, Claims), ReadError> {
        let mut claims = Claims::default();
        read_json(json, ClaimsSource::Location(location), &mut claims).map(|r| (r, claims))
    }

    #[test]
    fn a_repeated_member_that_tiergate_reads_is_refused_and_named() {
        let nested = ClaimsLocation::default();
        for (json, name) in [
            (r#"{"exp":1,"exp":2}"#, "exp"),
            (r#"{"sub":"a","sub":"b"}"#, "sub"),
            (r#"{"claims":{},"claims":{"plan":"pro"}}"#, "claims"),
            (r#"{"claims":{"plan":"free","plan":"pro"}}"#, "plan"),
            (r#"{"claims":{"role":"a","role":"b"}}"#, "role"),
        ] {
            assert_eq!(
                read(json, &nested).err(),
                Some(ReadError::Repeated(name.into())),
                "{json}"
            );
        }
        let top = ClaimsLocation::TopLevel;
        assert_eq!(
            read(r#"{"seats":1,"seats":9}"#, &top).err(),
            Some(ReadError::Repeated("seats".into()))
        );
        // Members nobody reads may repeat; the last is kept, as in a map.
        let (_, claims) = read(r#"{"jti":1,"jti":2,"claims":{"x":1,"x":2}}"#, &nested).unwrap();
        assert_eq!(claims.custom()["x"], json!(2));
    }

    #[test]
    fn not_json_and_not_an_object_are_told_apart() {
        let loc = ClaimsLocation::default();
        assert_eq!(read("[1cla3]", &loc).err(), Some(ReadError::NotJson));
        assert_eq!(read("[1]", &loc).err(), Some(ReadError::NotObject));
        assert_eq!(read("\"x\"", &loc).err(), Some(ReadError::NotObject));
        assert_eq!(read("{} x", &loc).err(), Some(ReadError::NotJson));
        assert_eq!(read("", &loc).err(), Some(ReadError::NotJson));
    }

    #[test]
    fn top_level_claims_keep_registered_members_as_custom_and_read_them_once() {
        let (reg, claims) = read(
            r#"{"exp":1800000000,"iss":"me","plan":"pro"}"#,
            &ClaimsLocation::TopLevel,
        )
        .unwrap();
        assert_eq!(reg.exp, Some(NumericDate::Secs(1_800_000_000)));
        assert_eq!(reg.iss.as_ref().and_then(Member::as_str), Some("me"));
        assert_eq!(claims.plan(), Some("pro"));
        assert_eq!(claims.custom()["exp"], json!(1_800_000_000));
    }

    #[test]
    fn text_and_value_read_alike() {
        let text = r#"{"https://a/plan":"pro","https://a/seats":"4","https://a/x":[1],"y":2}"#;
        let loc = ClaimsLocation::namespaced("https://a/");
        let (_, from_text) = read(text, &loc).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(from_text, read_parsed(&value, &loc));
        assert_eq!(from_text.seats(), Some(4));
        assert_eq!(from_text.custom()["x"], json!([1]));
    }

    #[test]
    fn numeric_dates_read_as_serde_json_numbers_do() {
        let loc = ClaimsLocation::default();
        for (exp, want) in [
            ("1.8e9", NumericDate::Secs(1_800_000_000)),
            ("1800003600.0", NumericDate::Secs(1_800_003_600)),
            ("-0", NumericDate::Secs(0)),
            ("18446744073709551615", NumericDate::Secs(i64::MAX)),
            ("1e300", NumericDate::Secs(i64::MAX)),
            ("\"1\"", NumericDate::NotANumber),
            (
                "{\"$serde_json::private::Number\":\"1\"}",
                NumericDate::NotANumber,
            ),
        ] {
            let json = format!(r#"{{"exp":{exp}}}"#);
            let (reg, _) = read(&json, &loc).unwrap();
            assert_eq!(reg.exp, Some(want), "{exp}");
        }
    }
}

/// The two ways a mapping reads a payload agree, for every preset, on generated
/// payloads in the providers' shapes: in the verifier's one pass (this reader,
/// which `ClaimsMapping::read_json` also runs after a reload) and over a parsed
/// `Value` (`ClaimsMapping::read`, what `explain` and apps use).
#[cfg(test)]
mod mapped_differential {
    use super::*;
    use crate::claims::PRESETS;
    use proptest::prelude::*;
    use serde_json::json;

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(null)),
            Just(json!(true)),
            (0u64..20).prop_map(|n| json!(n)),
            Just(json!(-3.5)),
            prop::sample::select(vec![
                "pro",
                "free",
                "starter",
                "u:free,o:pro",
                "o:sso, o:api",
                "Plan.pro",
                "Role.admin",
                "admin",
                "",
                " ",
                "5",
                "2026-04-15",
                "sso,,scim",
                "plan.pro",
                "a\"b",
            ])
            .prop_map(|s| json!(s)),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "plan",
            "pla",
            "fea",
            "o",
            "rol",
            "claims",
            "role",
            "roles",
            "seats",
            "trial_ends",
            "features",
            "custom:plan",
            "cognito:groups",
            "custom:features",
            "realm_access",
            "resource_access",
            "my-api",
            "app_metadata",
            "user_role",
            "feature_flags",
            "v",
            "key",
            "entitlements",
            "groups",
            "urn:zitadel:iam:org:project:roles",
            "https://acme.com/plan",
            "https://acme.com/roles",
            "sub",
            "iss",
        ])
        .prop_map(str::to_owned)
    }

    /// Every pointer some preset reads.
    fn pointers() -> Vec<Vec<String>> {
        let mut all: Vec<Vec<String>> = presets()
            .iter()
            .flat_map(|m| {
                m.sources()
                    .into_iter()
                    .flat_map(|s| s.from.clone())
                    .collect::<Vec<_>>()
            })
            .map(|p| p.segments.iter().map(|s| s.to_string()).collect())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Puts `v` at `path`, making objects on the way (an existing non-object is
    /// replaced).
    fn set_at(root: &mut Value, path: &[String], v: Value) {
        let Some((first, rest)) = path.split_first() else {
            *root = v;
            return;
        };
        if !root.is_object() {
            *root = json!({});
        }
        let child = root
            .as_object_mut()
            .unwrap()
            .entry(first.clone())
            .or_insert(Value::Null);
        set_at(child, rest, v);
    }

    /// Random members, then values put where the presets look (strings, lists of
    /// strings or of objects with `key`, flag objects), so every preset finds
    /// something to read, of the right type or not.
    fn payload() -> impl Strategy<Value = Value> {
        let names = prop::collection::vec(
            prop_oneof![
                leaf(),
                prop::collection::vec(leaf(), 0..4).prop_map(Value::Array),
                prop::collection::vec(leaf(), 0..3).prop_map(|vs| Value::Array(
                    vs.into_iter().map(|v| json!({ "key": v })).collect()
                )),
                (leaf(), any::<bool>()).prop_map(
                    |(v, b)| json!({ "sso": { "v": b }, "plan.pro": { "1": v }, "api": v })
                ),
                value(),
            ],
            1..6,
        );
        (
            prop::collection::vec((key(), value()), 0..5),
            prop::collection::vec(prop::sample::select(pointers()), 1..6),
            names,
        )
            .prop_map(|(kv, at, vs)| {
                let mut p = Value::Object(kv.into_iter().collect());
                for (path, v) in at.iter().zip(vs) {
                    set_at(&mut p, path, v);
                }
                p
            })
    }

    fn presets() -> Vec<ClaimsMapping> {
        PRESETS
            .iter()
            .map(|name| {
                let params: &[(&str, &str)] = match *name {
                    "auth0" => &[("namespace", "https://acme.com/")],
                    "keycloak" => &[("client", "my-api")],
                    _ => &[],
                };
                ClaimsMapping::preset(name, params).unwrap()
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn one_pass_parsed_and_text_readings_agree(p in payload()) {
            let text = p.to_string();
            for m in presets() {
                let mut one_pass = Claims::default();
                // `sub` and `iss` as strings or not: the registered claims may be refused
                // on their own terms, which is not what this compares.
                if read_json(&text, ClaimsSource::Mapping(&m), &mut one_pass).is_err() {
                    continue;
                }
                let parsed = m.read(&p);
                prop_assert_eq!(&one_pass, &parsed, "{}\n{}", m, text);
                prop_assert_eq!(&m.read_json(text.as_bytes()), &parsed, "{}\n{}", m, text);
            }
        }
    }
}
