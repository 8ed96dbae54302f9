//! axum extractors for what the layer verified: [`Entitlements`] and [`VerifiedToken`].
//!
//! ```
//! use tiergate::{Entitlements, token::VerifiedToken};
//!
//! // Behind the layer: the caller's entitlements and token.
//! async fn export(ent: Entitlements, token: VerifiedToken) -> String {
//!     format!("{} exports on {}", token.subject().unwrap_or("?"), ent.plan())
//! }
//!
//! // On a public route, where a caller may be anonymous.
//! async fn pricing(ent: Option<Entitlements>) -> String {
//!     ent.map_or("sign in to see your plan".into(), |e| format!("you are on {}", e.plan()))
//! }
//! ```
//!
//! They fail closed: on a route the layer does not cover, the request is answered
//! with a 500 problem that names the missing layer (never a panic, never a pass);
//! on a public route without a token, with 401.

use std::convert::Infallible;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::token::VerifiedToken;
use crate::{Caller, Entitlements};

/// The rejection of a missing extractor: 401 on a public route without a token,
/// otherwise 500 naming the missing layer.
#[derive(Debug)]
pub struct MissingGate(Response);

impl IntoResponse for MissingGate {
    fn into_response(self) -> Response {
        self.0
    }
}

fn rejection(parts: &Parts) -> MissingGate {
    MissingGate(
        crate::layer::missing_entitlements(&parts.extensions, &parts.headers).into_response(),
    )
}

impl<S: Send + Sync> FromRequestParts<S> for Entitlements {
    type Rejection = MissingGate;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .and_then(Caller::entitlements)
            .cloned()
            .ok_or_else(|| rejection(parts))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Entitlements {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .and_then(Caller::entitlements)
            .cloned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for VerifiedToken {
    type Rejection = MissingGate;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .and_then(Caller::token)
            .cloned()
            .ok_or_else(|| rejection(parts))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for VerifiedToken {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .and_then(Caller::token)
            .cloned())
    }
}
