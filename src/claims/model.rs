//! The claims as tiergate holds them: each one absent, understood, or malformed.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use smallvec::SmallVec;
use smol_str::SmolStr;

use super::notes::Notes;

/// One claim's value: absent, understood, or present but not understood.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Claim<T> {
    #[default]
    Absent,
    Valid(T),
    Malformed,
}

impl<T> Claim<T> {
    pub(crate) fn valid(&self) -> Option<&T> {
        match self {
            Claim::Valid(v) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn is_malformed(&self) -> bool {
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
    /// Features the token grants outside the plan (add-ons), when the claims
    /// mapping reads any.
    pub(crate) features: Claim<Names>,
    pub(crate) custom: Map<String, Value>,
}

impl Claims {
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

    /// The features the token grants by name (an add-on bought without changing
    /// plan). Only those the policy declares count; see `docs/identity-providers.md`.
    pub fn features(&self) -> impl Iterator<Item = &str> {
        self.features.valid().into_iter().flatten().map(|r| &**r)
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
            (self.features.is_malformed(), Notes::MALFORMED_FEATURES),
        ] {
            if bad {
                n.insert(note);
            }
        }
        n
    }
}
