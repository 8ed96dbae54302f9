//! The caller's subscription claims, read tolerantly.
//!
//! Tokens come from many issuers, and claim values often arrive as strings
//! (`"5"`, `"2026-04-15"`). Reading never fails: a value that cannot be understood
//! is kept as *malformed*, which the engine treats exactly like an absent claim and
//! names in the decision's [`Notes`]. A malformed claim therefore never grants more
//! than no claim at all.
//!
//! ```
//! use tiergate::{Claims, ClaimsLocation, Notes};
//! use serde_json::json;
//!
//! // The default location: a nested `claims` object.
//! let payload = json!({ "sub": "usr_8f2", "claims": {
//!     "plan": "pro", "role": "admin", "trial_ends": "2026-04-15", "seats": "5"
//! }});
//! let claims = Claims::from_payload(&payload, &ClaimsLocation::default());
//! assert_eq!(claims.plan(), Some("pro"));
//! assert_eq!(claims.seats(), Some(5));
//! assert_eq!(claims.trial_ends().unwrap().to_rfc3339(), "2026-04-16T00:00:00+00:00");
//!
//! // Namespaced claims at the top level, as Auth0 writes them; `seats: "five"` is malformed.
//! let payload = json!({ "https://example.com/plan": "starter", "https://example.com/seats": "five" });
//! let claims = Claims::from_payload(&payload, &ClaimsLocation::namespaced("https://example.com/"));
//! assert_eq!(claims.plan(), Some("starter"));
//! assert_eq!(claims.seats(), None);
//! assert!(claims.notes().contains(Notes::MALFORMED_SEATS));
//! ```

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use smallvec::SmallVec;
use smol_str::SmolStr;

mod notes;
pub(crate) mod reader;

pub use notes::Notes;

/// Where in the token payload the subscription claims live.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimsLocation {
    /// Inside an object under this key (default: `claims`, as the reference server writes them).
    Nested(String),
    /// Directly at the top level of the payload (`{"plan": "pro", ...}`).
    TopLevel,
    /// At the top level with a namespace prefix (`{"https://example.com/plan": "pro"}`).
    Namespaced(String),
}

impl Default for ClaimsLocation {
    fn default() -> Self {
        ClaimsLocation::Nested("claims".to_owned())
    }
}

impl ClaimsLocation {
    /// Claims under keys starting with `prefix`, e.g. `https://example.com/`.
    pub fn namespaced(prefix: impl Into<String>) -> Self {
        ClaimsLocation::Namespaced(prefix.into())
    }
}

/// One claim's value: absent, understood, or present but not understood.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Claim<T> {
    #[default]
    Absent,
    Valid(T),
    Malformed,
}

impl<T> Claim<T> {
    fn valid(&self) -> Option<&T> {
        match self {
            Claim::Valid(v) => Some(v),
            _ => None,
        }
    }

    fn is_malformed(&self) -> bool {
        matches!(self, Claim::Malformed)
    }
}

/// A plan or role name as a claim gives it: inline up to 23 bytes (every name a
/// policy is likely to have), so reading a token's claims allocates nothing for it.
pub(crate) type Name = SmolStr;

/// The role names: one inline (the usual single `role`), more on the heap.
pub(crate) type Names = SmallVec<[Name; 1]>;

/// The four subscription claims plus any custom ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims {
    pub(crate) plan: Claim<Name>,
    pub(crate) roles: Claim<Names>,
    /// The instant the trial ends (exclusive), in unix seconds.
    pub(crate) trial_ends: Claim<i64>,
    pub(crate) seats: Claim<u64>,
    pub(crate) custom: Map<String, Value>,
}

/// The subscription claims' raw values, collected member by member (a repeated one
/// is refused: see [`Took`]) and then read, by the one payload reader ([`reader`]).
pub(crate) struct ClaimMembers<V> {
    plan: Option<V>,
    role: Option<V>,
    roles: Option<V>,
    trial_ends: Option<V>,
    seats: Option<V>,
}

impl<V> Default for ClaimMembers<V> {
    fn default() -> Self {
        ClaimMembers {
            plan: None,
            role: None,
            roles: None,
            trial_ends: None,
            seats: None,
        }
    }
}

/// A claim member's value as the reader sees it. Strings stand apart because the
/// reader borrows them straight from the decoded payload instead of building a
/// `serde_json::Value` (and a `String`) for each.
#[derive(Clone, Copy)]
pub(crate) enum MemberValue<'a> {
    Str(&'a str),
    Json(&'a Value),
}

impl MemberValue<'_> {
    fn is_null(self) -> bool {
        matches!(self, MemberValue::Json(Value::Null))
    }
}

/// A claim member's value, however it was parsed.
pub(crate) trait ClaimMember {
    fn view(&self) -> MemberValue<'_>;
}

impl<'a> From<&'a Value> for MemberValue<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::String(s) => MemberValue::Str(s),
            other => MemberValue::Json(other),
        }
    }
}

/// What [`ClaimMembers::take`] did with a member.
pub(crate) enum Took<V> {
    /// A subscription claim, kept.
    Kept,
    /// A subscription claim seen before: the payload is refused.
    Repeated,
    /// Not a subscription claim: given back.
    Other(V),
}

impl<V: ClaimMember> ClaimMembers<V> {
    /// Keeps `value` when `key` is a subscription claim seen for the first time.
    pub(crate) fn take(&mut self, key: &str, value: V) -> Took<V> {
        let slot = match key {
            "plan" => &mut self.plan,
            "role" => &mut self.role,
            "roles" => &mut self.roles,
            "trial_ends" => &mut self.trial_ends,
            "seats" => &mut self.seats,
            _ => return Took::Other(value),
        };
        if slot.is_some() {
            return Took::Repeated;
        }
        *slot = Some(value);
        Took::Kept
    }

    /// Reads the collected values into `claims`. `role` wins over `roles` unless it
    /// is `null`, whatever their order in the token.
    pub(crate) fn apply(self, claims: &mut Claims) {
        fn read<V: ClaimMember, T>(
            v: &Option<V>,
            f: impl Fn(MemberValue<'_>) -> Claim<T>,
        ) -> Claim<T> {
            v.as_ref().map_or(Claim::Absent, |v| f(v.view()))
        }
        claims.plan = read(&self.plan, read_plan);
        claims.roles = match &self.role {
            Some(r) if !r.view().is_null() => read_roles(r.view()),
            _ => read(&self.roles, read_roles),
        };
        claims.trial_ends = read(&self.trial_ends, |v| read_with(v, |v| parse_trial_ends(v)));
        claims.seats = read(&self.seats, |v| read_with(v, |v| parse_seats(v)));
    }
}

impl Claims {
    /// Reads the claims from a token payload at `location` (empty claims when the
    /// payload is not an object). The verifier reads token payloads with the same
    /// reader ([`reader`]), so both give the same claims.
    pub fn from_payload(payload: &Value, location: &ClaimsLocation) -> Claims {
        reader::read_parsed(payload, location)
    }

    /// [`from_payload`](Self::from_payload) for a payload already known to be an object.
    pub fn from_payload_map(payload: &Map<String, Value>, location: &ClaimsLocation) -> Claims {
        reader::read_parsed(reader::map_members(payload), location)
    }

    /// Reads the claims from the claims object itself: `{"plan": "pro", "seats": 5, ...}`.
    /// Anything that is not an object gives empty claims.
    pub fn from_object(object: &Value) -> Claims {
        reader::read_parsed_claims(object)
    }

    /// Reads the claims from the members of the claims object.
    pub fn from_map(map: &Map<String, Value>) -> Claims {
        reader::read_parsed_claims(reader::map_members(map))
    }

    /// The `plan` claim, if it is a non-empty string.
    pub fn plan(&self) -> Option<&str> {
        self.plan.valid().map(|p| &**p)
    }

    /// The roles from `role` (a string or a list of strings; `roles` is read too).
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.roles.valid().into_iter().flatten().map(|r| &**r)
    }

    /// The instant the trial ends. A date `2026-04-15` means active through the end of
    /// that day in UTC, so this is `2026-04-16T00:00:00Z`.
    pub fn trial_ends(&self) -> Option<DateTime<Utc>> {
        self.trial_ends
            .valid()
            .and_then(|s| DateTime::from_timestamp(*s, 0))
    }

    /// The seat count, from `5` or `"5"`.
    pub fn seats(&self) -> Option<u64> {
        self.seats.valid().copied()
    }

    /// Claims other than the four above, as they were in the token.
    pub fn custom(&self) -> &Map<String, Value> {
        &self.custom
    }

    /// Which claims were present but could not be read.
    pub fn notes(&self) -> Notes {
        let mut n = Notes::empty();
        for (bad, note) in [
            (self.plan.is_malformed(), Notes::MALFORMED_PLAN),
            (self.roles.is_malformed(), Notes::MALFORMED_ROLE),
            (self.trial_ends.is_malformed(), Notes::MALFORMED_TRIAL_ENDS),
            (self.seats.is_malformed(), Notes::MALFORMED_SEATS),
        ] {
            if bad {
                n.insert(note);
            }
        }
        n
    }
}

fn read_plan(v: MemberValue<'_>) -> Claim<Name> {
    match v {
        MemberValue::Json(Value::Null) => Claim::Absent,
        MemberValue::Str(s) if !s.trim().is_empty() => Claim::Valid(Name::new(s.trim())),
        _ => Claim::Malformed,
    }
}

fn read_roles(v: MemberValue<'_>) -> Claim<Names> {
    match v {
        MemberValue::Json(Value::Null) => Claim::Absent,
        MemberValue::Str(s) if !s.trim().is_empty() => {
            Claim::Valid(smallvec::smallvec![Name::new(s.trim())])
        }
        MemberValue::Json(Value::Array(items)) => {
            // All or nothing: keeping the readable half of a broken list could grant
            // more than the claim's author meant.
            let mut roles = Names::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) if !s.trim().is_empty() => roles.push(Name::new(s.trim())),
                    _ => return Claim::Malformed,
                }
            }
            Claim::Valid(roles)
        }
        _ => Claim::Malformed,
    }
}

/// `YYYY-MM-DD` (through the end of that day, UTC), RFC 3339, or unix seconds
/// (a number or a string of digits).
pub(crate) fn parse_trial_ends<'a>(v: impl Into<MemberValue<'a>>) -> Option<i64> {
    match v.into() {
        MemberValue::Json(Value::Number(n)) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        }),
        MemberValue::Str(s) => {
            let s = s.trim();
            if let Some(day) =
                plain_date(s).or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            {
                let next = day.succ_opt()?;
                return Some(next.and_hms_opt(0, 0, 0)?.and_utc().timestamp());
            }
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.timestamp());
            }
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                return s.parse().ok();
            }
            None
        }
        MemberValue::Json(_) => None,
    }
}

/// `YYYY-MM-DD` read directly: the common case, without chrono's format
/// interpreter. Anything else goes to chrono, which gives the same answer here.
fn plain_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit()
                .then(|| {
                    n.checked_mul(10)?
                        .checked_add(u32::from(c.wrapping_sub(b'0')))
                })
                .flatten()
        })
    };
    NaiveDate::from_ymd_opt(
        i32::try_from(digits(0..4)?).ok()?,
        digits(5..7)?,
        digits(8..10)?,
    )
}

/// `null` is absent; anything `parse` cannot read is malformed.
fn read_with<T>(v: MemberValue<'_>, parse: fn(MemberValue<'_>) -> Option<T>) -> Claim<T> {
    if v.is_null() {
        return Claim::Absent;
    }
    parse(v).map_or(Claim::Malformed, Claim::Valid)
}

/// A whole number ≥ 0, from a JSON number or a string of digits.
pub(crate) fn parse_seats<'a>(v: impl Into<MemberValue<'a>>) -> Option<u64> {
    match v.into() {
        MemberValue::Json(Value::Number(n)) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e15)
                .map(|f| f as u64)
        }),
        MemberValue::Str(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().ok()
            } else {
                None
            }
        }
        MemberValue::Json(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    #[test]
    fn trial_ends_accepts_date_rfc3339_and_unix_seconds() {
        assert_eq!(
            parse_trial_ends(&json!("2026-04-15")),
            Some(at("2026-04-16T00:00:00Z"))
        );
        assert_eq!(
            parse_trial_ends(&json!("2026-04-15T12:00:00+02:00")),
            Some(at("2026-04-15T10:00:00Z"))
        );
        assert_eq!(parse_trial_ends(&json!(1776211200)), Some(1776211200));
        assert_eq!(parse_trial_ends(&json!("1776211200")), Some(1776211200));
        for bad in [
            json!("soon"),
            json!("2026-13-01"),
            json!(true),
            json!([]),
            json!(""),
        ] {
            assert_eq!(parse_trial_ends(&bad), None, "{bad}");
        }
    }

    #[test]
    fn seats_accepts_numbers_and_digit_strings_only() {
        assert_eq!(parse_seats(&json!(5)), Some(5));
        assert_eq!(parse_seats(&json!("5")), Some(5));
        assert_eq!(parse_seats(&json!(5.0)), Some(5));
        for bad in [
            json!("five"),
            json!(-1),
            json!("-1"),
            json!(2.5),
            json!(null),
            json!(""),
        ] {
            assert_eq!(parse_seats(&bad), None, "{bad}");
        }
    }

    #[test]
    fn role_is_a_string_or_a_list_and_a_broken_list_is_malformed() {
        let c = Claims::from_object(&json!({ "role": ["admin", "member"] }));
        assert_eq!(c.roles().collect::<Vec<_>>(), ["admin", "member"]);
        let c = Claims::from_object(&json!({ "role": ["admin", 7] }));
        assert_eq!(c.roles().count(), 0);
        assert!(c.notes().contains(Notes::MALFORMED_ROLE));
        let c = Claims::from_object(&json!({ "roles": "admin" }));
        assert_eq!(c.roles().collect::<Vec<_>>(), ["admin"]);
    }

    #[test]
    fn malformed_values_are_noted_and_null_is_absent() {
        let c = Claims::from_object(&json!({
            "plan": 3, "trial_ends": "soon", "seats": "five", "role": null, "team": "blue"
        }));
        assert_eq!((c.plan(), c.trial_ends(), c.seats()), (None, None, None));
        let n = c.notes();
        assert!(n.contains(Notes::MALFORMED_PLAN));
        assert!(n.contains(Notes::MALFORMED_TRIAL_ENDS));
        assert!(n.contains(Notes::MALFORMED_SEATS));
        assert!(!n.contains(Notes::MALFORMED_ROLE));
        assert_eq!(c.custom().get("team"), Some(&json!("blue")));
    }

    #[test]
    fn locations() {
        let top = json!({ "plan": "pro", "sub": "u1" });
        assert_eq!(
            Claims::from_payload(&top, &ClaimsLocation::TopLevel).plan(),
            Some("pro")
        );
        assert_eq!(
            Claims::from_payload(&top, &ClaimsLocation::default()).plan(),
            None
        );
        let nested = json!({ "app": { "plan": "pro" } });
        let loc = ClaimsLocation::Nested("app".into());
        assert_eq!(Claims::from_payload(&nested, &loc).plan(), Some("pro"));
    }
}
