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

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use decision::{Decision, LimitUsage, Reason, RuleRef};
pub(crate) use entitlements::TokenPart;
pub use entitlements::{Entitlements, PlanSource, Summary, Trial};

pub(crate) use bitset::BitSet;
use compiled::{Access, Compiled};

use crate::claims::Claims;

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

impl Policy {
    /// What this caller is entitled to at `now`. Pure: the same claims and time
    /// always give the same answer. Malformed claims are treated as absent and
    /// recorded in [`Entitlements::notes`]; this never fails.
    pub fn entitlements(&self, claims: &Claims, now: DateTime<Utc>) -> Entitlements {
        Entitlements::new(self.clone(), claims, now.timestamp())
    }

    /// The content hash of the policy file.
    pub fn revision(&self) -> Revision {
        self.0.revision
    }

    /// The name the policy was loaded under (usually its file path).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Plan names in tier order, lowest first.
    pub fn plans(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.plans.iter().map(|p| &*p.name)
    }

    /// The plan a caller without a (valid, known) plan claim is on.
    pub fn default_plan(&self) -> &str {
        &self.0.plan_def(self.0.default_plan).name
    }

    /// The plan an active trial lifts a caller to, if the policy has a trial.
    pub fn trial_plan(&self) -> Option<&str> {
        self.0.trial_plan.map(|p| &*self.0.plan_def(p).name)
    }

    /// The description of a plan, if it has one.
    pub fn plan_description(&self, plan: &str) -> Option<&str> {
        let id = *self.0.plan_ids.get(plan)?;
        self.0.plan_def(id).description.as_deref()
    }

    /// Declared feature names, in declaration order.
    pub fn features(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.features.iter().map(|f| &*f.name)
    }

    /// The description of a feature, if it has one.
    pub fn feature_description(&self, feature: &str) -> Option<&str> {
        let id = *self.0.feature_ids.get(feature)?;
        self.0.feature_def(id).description.as_deref()
    }

    /// Declared role names, in declaration order.
    pub fn roles(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.roles.iter().map(|r| &*r.name)
    }

    /// Names of every limit any plan sets.
    pub fn limits(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.limits.iter().map(|l| &**l)
    }

    /// The features a plan grants by itself (with inheritance; without roles or trial).
    pub fn plan_features(&self, plan: &str) -> Option<impl Iterator<Item = &str>> {
        let id = *self.0.plan_ids.get(plan)?;
        Some(
            self.0
                .plan_def(id)
                .features
                .iter()
                .map(|f| &*self.0.feature_def(f).name),
        )
    }

    /// A plan's value for a limit (with inheritance). `None` if the plan or limit is unknown.
    pub fn plan_limit(&self, plan: &str, limit: &str) -> Option<Limit> {
        let p = *self.0.plan_ids.get(plan)?;
        let l = *self.0.limit_ids.get(limit)?;
        Some(self.0.plan_def(p).limit(l))
    }

    /// The rule governing `method path`, if one matches.
    pub fn rule_for(&self, method: &str, path: &str) -> Option<RuleRef<'_>> {
        self.0
            .table
            .lookup(method, path)
            .map(|id| RuleRef::new(&self.0, id))
    }

    /// Whether `method path` is marked `public` (needs no token at all).
    pub fn is_public(&self, method: &str, path: &str) -> bool {
        self.0
            .table
            .lookup(method, path)
            .is_some_and(|id| matches!(self.0.rule_def(id).access, Access::Public))
    }
}
