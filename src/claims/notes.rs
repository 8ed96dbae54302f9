//! Notes: what a decision was made in spite of.
//!
//! They live beside the claims because most of them are about a claim that could
//! not be read; the engine adds the two about the policy (an unknown plan or role).
//!
//! ```
//! use tiergate::Notes;
//!
//! let notes = Notes::from_code("malformed_seats").unwrap();
//! assert!(notes.contains(Notes::MALFORMED_SEATS));
//! assert_eq!(notes.codes().collect::<Vec<_>>(), ["malformed_seats"]);
//! ```

use serde::Serialize;
use serde::ser::SerializeSeq;

/// Things about the caller's claims that a decision was made in spite of: a claim
/// that could not be read (treated as absent) or a plan the policy does not know
/// (the default plan applied instead). Never a reason to fail; always worth logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Notes(u8);

impl Notes {
    /// The `plan` claim names a plan the policy does not declare; the default plan applied.
    pub const UNKNOWN_PLAN: Notes = Notes(1);
    /// The `plan` claim is not a non-empty string; treated as absent.
    pub const MALFORMED_PLAN: Notes = Notes(1 << 1);
    /// The `role` claim is not a string or a list of strings; treated as absent.
    pub const MALFORMED_ROLE: Notes = Notes(1 << 2);
    /// A role in the `role` claim is not declared by the policy; it grants nothing.
    pub const UNKNOWN_ROLE: Notes = Notes(1 << 3);
    /// The `trial_ends` claim is not a date, an RFC 3339 time or unix seconds; treated as absent.
    pub const MALFORMED_TRIAL_ENDS: Notes = Notes(1 << 4);
    /// The `seats` claim is not a whole number ≥ 0; treated as absent.
    pub const MALFORMED_SEATS: Notes = Notes(1 << 5);

    /// The `features` claim is not a string or a list of strings; treated as absent.
    pub const MALFORMED_FEATURES: Notes = Notes(1 << 6);
    /// A feature the token grants is not declared by the policy; it grants nothing.
    pub const UNKNOWN_FEATURE: Notes = Notes(1 << 7);

    const NAMED: [(Notes, &'static str); 8] = [
        (Notes::UNKNOWN_PLAN, "unknown_plan"),
        (Notes::MALFORMED_PLAN, "malformed_plan"),
        (Notes::MALFORMED_ROLE, "malformed_role"),
        (Notes::UNKNOWN_ROLE, "unknown_role"),
        (Notes::MALFORMED_TRIAL_ENDS, "malformed_trial_ends"),
        (Notes::MALFORMED_SEATS, "malformed_seats"),
        (Notes::MALFORMED_FEATURES, "malformed_features"),
        (Notes::UNKNOWN_FEATURE, "unknown_feature"),
    ];

    /// No notes.
    pub const fn empty() -> Notes {
        Notes(0)
    }

    /// Whether every note in `other` is set.
    pub const fn contains(self, other: Notes) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether there are no notes.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn insert(&mut self, other: Notes) {
        self.0 |= other.0;
    }

    /// The snake_case codes of the notes that are set.
    pub fn codes(self) -> impl Iterator<Item = &'static str> {
        Notes::NAMED
            .into_iter()
            .filter(move |(n, _)| self.contains(*n))
            .map(|(_, code)| code)
    }

    /// Parses a code such as `"unknown_plan"`.
    pub fn from_code(code: &str) -> Option<Notes> {
        Notes::NAMED
            .into_iter()
            .find(|(_, c)| *c == code)
            .map(|(n, _)| n)
    }
}

impl Serialize for Notes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for code in self.codes() {
            seq.serialize_element(code)?;
        }
        seq.end()
    }
}
