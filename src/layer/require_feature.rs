//! A route-level guard for teams that prefer to gate in code: the request must
//! carry [`Entitlements`] (from the [`TierGate`](super::TierGate) layer) that
//! include a feature.
//!
//! ```
//! use axum::{Router, routing::post};
//! use tiergate::require_feature;
//!
//! let export: Router = Router::new()
//!     .route("/api/reports/export", post(|| async { "csv" }))
//!     .route_layer(require_feature("reports.export"));
//! // …then `.layer(gate.layer())` on the router that serves it.
//! ```
//!
//! A caller without the feature gets the same 403 (or gRPC PERMISSION_DENIED) the
//! layer sends, with `upgrade_to`. A request that never passed the layer gets a 500
//! naming the missing layer: never a pass.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::body::DenialBody;
use super::caller::Caller;
use super::response::{self, Protocol};
use super::service::ResponseFuture;

/// Requires `feature` of the caller's [`Entitlements`](crate::Entitlements).
pub fn require_feature(feature: impl Into<Arc<str>>) -> RequireFeatureLayer {
    RequireFeatureLayer {
        feature: feature.into(),
    }
}

/// The layer made by [`require_feature`].
#[derive(Clone, Debug)]
pub struct RequireFeatureLayer {
    feature: Arc<str>,
}

impl<S> Layer<S> for RequireFeatureLayer {
    type Service = RequireFeature<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireFeature {
            feature: self.feature.clone(),
            inner,
        }
    }
}

/// The service made by [`RequireFeatureLayer`].
#[derive(Clone, Debug)]
pub struct RequireFeature<S> {
    feature: Arc<str>,
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireFeature<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: DenialBody,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let Some(ent) = req
            .extensions()
            .get::<Caller>()
            .and_then(Caller::entitlements)
        else {
            let res = super::response::missing_entitlements(req.extensions(), req.headers());
            return ResponseFuture::denied(res);
        };
        let d = ent.check(&self.feature);
        if !d.allowed() {
            tracing::info!(
                target: "tiergate", feature = &*self.feature, allowed = false,
                reason = d.reason().code(), plan = d.plan(), upgrade_to = d.upgrade_to(),
                revision = %d.revision(), "denied by require_feature"
            );
            let res = response::forbidden(&d, Protocol::of(req.headers()));
            return ResponseFuture::denied(res);
        }
        ResponseFuture::inner(self.inner.call(req))
    }
}
