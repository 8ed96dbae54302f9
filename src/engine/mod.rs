//! The compiled policy and the questions a request asks of it.
//!
//! A [`Policy`] is compiled once from YAML and shared (it is an `Arc` inside). Per
//! request, [`Policy::entitlements`] turns a caller's [`Claims`](crate::Claims) and the current time
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
mod limit;
mod revision;
pub(crate) mod routes;

pub use decision::{Decision, LimitUsage, Reason, RuleRef};
pub(crate) use entitlements::TokenPart;
pub use entitlements::{Entitlements, PlanSource, Summary, Trial};

pub(crate) use bitset::BitSet;
pub use compiled::Policy;
pub use limit::Limit;
pub use revision::Revision;
