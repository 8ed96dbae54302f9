//! # tiergate
//!
//! Gate features by subscription tier. A product team writes one YAML policy
//! that says what each plan, role, trial and seat count may do; tiergate compiles
//! it once and answers, per request and without allocating, "may this caller do
//! X?" — with a reason and, when the answer is no, the cheapest plan that says yes.
//!
//! ```
//! use tiergate::{Claims, Policy, Reason};
//! use chrono::{TimeZone, Utc};
//!
//! let policy = Policy::from_yaml(tiergate::EXAMPLE_POLICY)?;
//!
//! // The claims as they arrive on an access token (strings are fine).
//! let claims = Claims::from_object(&serde_json::json!({
//!     "plan": "free", "role": "member", "trial_ends": "2026-04-15", "seats": "1"
//! }));
//!
//! // During the trial the caller is lifted to pro…
//! let during = Utc.with_ymd_and_hms(2026, 4, 10, 12, 0, 0).unwrap();
//! let ent = policy.entitlements(&claims, during);
//! assert_eq!(ent.plan(), "pro");
//! assert!(ent.check_route("GET", "/api/sso/config").allowed());
//!
//! // …and after it the same request is denied, with the reason and the way out.
//! let after = Utc.with_ymd_and_hms(2026, 4, 16, 0, 0, 0).unwrap();
//! let ent = policy.entitlements(&claims, after);
//! let d = ent.check_route("GET", "/api/sso/config");
//! assert_eq!(d.reason(), Reason::TrialExpired);
//! assert_eq!(d.upgrade_to(), Some("pro"));
//! # Ok::<(), tiergate::PolicyError>(())
//! ```
//!
//! The policy language is documented in `docs/policy.md`. The modules:
//!
//! - [`policy`]: loading a policy — parse, validate (located errors), compile.
//! - [`engine`]: the compiled [`Policy`], [`Entitlements`] and [`Decision`]s.
//! - [`claims`]: reading `plan`, `role`, `trial_ends`, `seats` tolerantly, and [`Notes`]
//!   on what could not be read; the one payload reader every token goes through;
//!   [`ClaimsMapping`] and its presets, for tokens from Auth0, Clerk, Keycloak,
//!   Cognito and other identity providers (`docs/identity-providers.md`).
//! - [`reload`]: [`PolicyStore`], the active policy swapped on file changes.
//! - [`token`]: access-token verification (keys, JWKS, the checks `jsonwebtoken` leaves open).
//! - [`layer`]: [`TierGate`], the tower layer for axum and tonic, with one or several
//!   [`Issuer`]s; [`require_feature`]; following an issuer's claims-change feed
//!   (`ClaimsChanges`, feature `claims-changes`, on by default) so a plan change takes
//!   effect in seconds, not at token expiry (`docs/claims-changes.md`).
//! - `extract` (feature `axum`): extractors for [`Entitlements`] and the verified token;
//!   `grpc` (feature `tonic`): the same for tonic handlers.
//! - [`policy_test`]: running `*.test.yaml` cases; [`diff`]: what a change does;
//!   [`matrix`]: the plans side by side.
//!
//! - `server` (feature `server`): the reference claims-issuing server behind
//!   `tiergate serve`, with its admin dashboard: `ServeOptions` and `Server`, nothing
//!   of its insides.
//!
//! Dependencies point one way, from the server and the CLI down to `claims`; the
//! module map is in `docs/architecture.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// No panic reachable from input: every unwrap, expect, panic, index, slice and
// overflowing operation in src/ is either gone (`get`, `saturating_*`, `checked_*`)
// or carries an `allow` with the one-line reason it cannot fire. (Tests are exempt.)
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

pub mod claims;
pub mod diff;
pub mod engine;
#[cfg(feature = "axum")]
pub mod extract;
#[cfg(feature = "tonic")]
pub mod grpc;
pub mod layer;
pub mod matrix;
pub mod policy;
pub mod policy_test;
pub mod reload;
#[cfg(feature = "server")]
pub mod server;
mod telemetry;
pub mod token;

pub use claims::{Claims, ClaimsLocation, ClaimsMapping, Notes, PresetError};
pub use engine::{
    Decision, Entitlements, Limit, LimitUsage, PlanSource, Policy, Reason, Revision, RuleRef,
    Summary, Trial,
};
pub use layer::{
    Caller, DenialBody, Issuer, TierGate, TierGateBuilder, TierGateLayer, require_feature,
};
#[cfg(feature = "claims-changes")]
pub use layer::{ClaimsChanges, ClaimsChangesStatus};
pub use policy::{Diagnostic, Diagnostics, PolicyError};
pub use reload::{PolicyStore, WatchOptions};

/// The example SaaS policy shipped as `policies/saas.yaml` (free → starter → pro →
/// enterprise, a pro trial, admin and member roles), for docs and tests.
pub const EXAMPLE_POLICY: &str = include_str!("../policies/saas.yaml");

/// Hooks for tiergate's own benchmarks (feature `test-util`): the counts the layer
/// makes, alone. Not a public API.
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod telemetry_hooks {
    /// One decision count, as the layer makes it (`instance`: the policy's).
    pub fn decision(instance: u64, labels: &[(&'static str, &str)]) {
        crate::telemetry::increment_for_policy(crate::telemetry::DECISIONS, instance, labels);
    }

    /// One token-cache hit count, as the verifier makes it.
    pub fn cache_hit() {
        crate::telemetry::increment(crate::telemetry::TOKEN_CACHE, &[("result", "hit")]);
    }
}
