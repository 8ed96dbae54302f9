//! A payload's subscription claim members, collected one by one (a repeated one
//! is refused) and then read into [`Claims`]: the reading rules for each claim.

use chrono::{DateTime, NaiveDate};
use serde_json::Value;

use super::model::{Claim, Claims, Name, Names};

/// The subscription claims' raw values, collected member by member (a repeated one
/// is refused: see [`Took`]) and then read, by the one payload reader ([`reader`]).
pub(crate) struct ClaimMembers<V> {
    plan: Option<V>,
    role: Option<V>,
    roles: Option<V>,
    trial_ends: Option<V>,
    seats: Option<V>,
    features: Option<V>,
}

impl<V> Default for ClaimMembers<V> {
    fn default() -> Self {
        ClaimMembers {
            plan: None,
            role: None,
            roles: None,
            trial_ends: None,
            seats: None,
            features: None,
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
            "features" => &mut self.features,
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
        claims.features = read(&self.features, read_roles);
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
