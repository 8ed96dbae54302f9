//! The compiled policy and the questions a request asks of it.
//!
//! A [`Policy`] is compiled once from YAML and shared (it is an `Arc` inside). Per
//! request, [`Policy::entitlements`] turns a caller's [`Claims`] and the current time
//! into [`Entitlements`]; every question after that — a route, a feature, a limit —
//! is a few array lookups and returns a [`Decision`] without allocating.
//!
//! ```
//! use tiergate::{Claims, Limit, Policy};
//!
//! let policy = Policy::from_yaml(tiergate::EXAMPLE_POLICY)?;
//! let claims = Claims::from_object(&serde_json::json!({
//!     "plan": "starter", "role": "admin", "seats": "5"
//! }));
//! let ent = policy.entitlements(&claims, chrono::Utc::now());
//!
//! assert!(ent.has("reports.export"));
//! assert!(!ent.has("sso"));
//! assert_eq!(ent.limit("projects"), Some(Limit::Count(10)));
//! assert!(ent.within_limit("projects", 9).allowed());
//! assert_eq!(ent.within_limit("projects", 10).upgrade_to(), Some("pro"));
//! assert!(ent.check_route("POST", "/api/members/invite").allowed());
//! # Ok::<(), tiergate::PolicyError>(())
//! ```

pub(crate) mod bitset;
pub(crate) mod compiled;
mod decision;
mod entitlements;
pub(crate) mod eval;
pub(crate) mod routes;

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

pub use decision::{Decision, LimitUsage, Reason, RuleRef};
pub(crate) use entitlements::TokenPart;
pub use entitlements::{Entitlements, PlanSource, Summary, Trial};

pub(crate) use bitset::BitSet;
use compiled::Compiled;

/// A numeric limit a plan grants. Ordered: any count is below `Unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Limit {
    /// At most this many.
    Count(u64),
    /// No limit.
    Unlimited,
}

impl Limit {
    /// Whether one more is allowed when `used` are in use (room while `used` is below the limit).
    pub fn allows(self, used: u64) -> bool {
        match self {
            Limit::Count(n) => used < n,
            Limit::Unlimited => true,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Count(n) => write!(f, "{n}"),
            Limit::Unlimited => f.write_str("unlimited"),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Count(n) => s.serialize_u64(*n),
            Limit::Unlimited => s.serialize_str("unlimited"),
        }
    }
}

/// A policy revision: the SHA-256 of the policy file's bytes. Two instances serving
/// the same file report the same revision.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Revision(pub(crate) [u8; 32]);

impl Revision {
    pub(crate) fn of(source: &str) -> Revision {
        use sha2::Digest;
        Revision(sha2::Sha256::digest(source.as_bytes()).into())
    }

    /// All 64 hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Shows the first 12 hex digits, like a short git hash.
impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Revision({self})")
    }
}

/// A compiled tier policy. Cheap to clone (one reference count); immutable.
///
/// Load one with [`Policy::from_yaml`] or [`Policy::from_file`].
#[derive(Clone)]
pub struct Policy(pub(crate) Arc<Compiled>);

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
