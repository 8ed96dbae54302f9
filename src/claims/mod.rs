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

pub(crate) mod key;
mod location;
mod mapping;
mod members;
mod model;
mod node;
mod notes;
mod presets;
pub(crate) mod reader;

pub use location::ClaimsLocation;
pub use mapping::{ClaimsMapping, ReadFrom, pointer_escape};
pub(crate) use mapping::{Pointer, Source, check_pointer};
#[cfg(feature = "server")]
pub(crate) use members::{parse_seats, parse_trial_ends};
pub(crate) use model::Claim;
pub use model::Claims;
pub use notes::Notes;
pub use presets::{PRESETS, PresetError};

#[cfg(test)]
mod tests {
    use super::members::{parse_seats, parse_trial_ends};
    use super::*;
    use chrono::DateTime;
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
