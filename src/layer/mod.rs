//! The tower layer: verify the access token, decide the route, hand `Entitlements`
//! to the handler. One layer serves axum routers and tonic servers alike.
//!
//! ```
//! use axum::{Router, routing::get};
//! use tiergate::{Entitlements, TierGate, Policy};
//! use tiergate::token::{Algorithm, Verifier};
//!
//! async fn export(ent: Entitlements) -> String {
//!     format!("exporting on the {} plan", ent.plan())
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let gate = TierGate::builder()
//!     .policy(Policy::from_yaml(tiergate::EXAMPLE_POLICY)?) // or .policy_file("policies/saas.yaml")
//!     .verifier(
//!         Verifier::builder()
//!             .hmac_secret(Algorithm::HS256, b"an example secret of at least 32 bytes!")
//!             .issuer("https://auth.example.com")
//!             .audience("my-api")
//!             .build()?,
//!     )
//!     .build()?;
//!
//! let app: Router = Router::new()
//!     .route("/api/reports/export", axum::routing::post(export))
//!     .route("/healthz", get(|| async { "ok" }))
//!     .layer(gate.layer());
//! # Ok(()) }
//! ```
//!
//! What a request meets, in order: a stale policy (past
//! [`PolicyStore::set_max_staleness`](crate::PolicyStore::set_max_staleness)) → 503; a public route → passes (with
//! Entitlements if a valid token came along); no or a bad token → 401 with a
//! `reason`; a denied rule → 403 with the reason, the plan and `upgrade_to`, unless
//! the layer or the rule is in observe mode; otherwise the handler runs with a
//! [`Caller`] (its [`Entitlements`](crate::Entitlements) and [`VerifiedToken`](crate::token::VerifiedToken)) in the request extensions.

mod admission;
mod body;
mod caller;
#[cfg(feature = "claims-changes")]
mod claims_changes;
mod clock;
#[cfg(feature = "claims-changes")]
mod freshness;
mod gate;
mod require_feature;
mod response;
mod service;

#[cfg(feature = "server")]
pub(crate) use admission::cookie_values;
#[cfg(feature = "server")]
pub(crate) use response::problem;

pub use body::DenialBody;
pub use caller::Caller;
#[cfg(feature = "claims-changes")]
pub use claims_changes::{ClaimsChanges, ClaimsChangesStatus};
pub use gate::{BuildError, Clock, Issuer, TierGate, TierGateBuilder};
pub use require_feature::{RequireFeature, RequireFeatureLayer, require_feature};
#[cfg(feature = "axum")]
pub(crate) use response::missing_entitlements;
pub use service::{ResponseFuture, TierGateLayer, TierGateService};
