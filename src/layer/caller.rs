//! What the layer hands on to the service it wraps: one request extension,
//! [`Caller`], with the caller's verified token and [`Entitlements`].
//!
//! One extension rather than two, because every insert into `http::Extensions`
//! is a heap allocation and this happens on every request. Handlers rarely read it
//! directly — axum's `Entitlements` and `VerifiedToken` extractors, tonic's
//! `tiergate::grpc::RequestExt` and [`require_feature`](super::require_feature)
//! do — but tower middleware behind the layer can:
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use tiergate::{Caller, Policy, TierGate};
//! use tiergate::token::{Algorithm, Verifier};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let gate = TierGate::builder()
//!     .policy(Policy::from_yaml(tiergate::EXAMPLE_POLICY)?)
//!     .verifier(
//!         Verifier::builder()
//!             .hmac_secret(Algorithm::HS256, b"an example secret of at least 32 bytes!")
//!             .issuer("https://auth.example.com")
//!             .audience("my-api")
//!             .build()?,
//!     )
//!     .build()?;
//!
//! // An inner service that answers with the caller's plan (in a body type the
//! // layer can also write its denials in: see `tiergate::DenialBody`).
//! let app = gate.layer().layer(service_fn(|req: Request<()>| async move {
//!     let caller = req.extensions().get::<Caller>().expect("the layer always adds one");
//!     let plan = caller.entitlements().map_or("anonymous", |e| e.plan()).to_owned();
//!     Ok::<_, Infallible>(Response::new(Full::from(plan)))
//! }));
//!
//! // `/healthz` is public: no token, so an anonymous Caller.
//! let res = app.oneshot(Request::get("/healthz").body(())?).await?;
//! # use http_body_util::BodyExt;
//! let body = res.into_body().collect().await?.to_bytes();
//! assert_eq!(body, "anonymous");
//! # Ok(()) }
//! ```

use crate::Entitlements;
use crate::token::VerifiedToken;

/// The caller of a request that passed the layer: verified, with a token and
/// Entitlements, or anonymous (a public route reached without a valid token).
#[derive(Clone, Debug)]
pub struct Caller(Option<(VerifiedToken, Entitlements)>);

impl Caller {
    pub(crate) fn verified(token: VerifiedToken, entitlements: Entitlements) -> Caller {
        Caller(Some((token, entitlements)))
    }

    pub(crate) fn anonymous() -> Caller {
        Caller(None)
    }

    /// The caller's Entitlements; `None` for an anonymous caller.
    pub fn entitlements(&self) -> Option<&Entitlements> {
        self.0.as_ref().map(|(_, e)| e)
    }

    /// The caller's verified token; `None` for an anonymous caller.
    pub fn token(&self) -> Option<&VerifiedToken> {
        self.0.as_ref().map(|(t, _)| t)
    }

    /// Whether the request came without a valid token (only possible on a public route).
    pub fn is_anonymous(&self) -> bool {
        self.0.is_none()
    }
}
