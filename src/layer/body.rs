//! The response body of a gated service: the inner service's own body type, with
//! the layer's denials written in it.
//!
//! A layer that answered with a body type of its own (say `Either<B, Full<Bytes>>`)
//! would make axum box every response again to get back to its `Body`: an
//! allocation and ~75 ns per request in `benches/layer.rs`, denied or not. So a
//! gated service keeps its inner body type `B`, and the layer builds a denial's
//! problem+json (or empty gRPC) body as a `B` through [`DenialBody`], which is
//! implemented for axum's and tonic's bodies and the common `http-body-util` ones.
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use tiergate::DenialBody;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let body = axum::body::Body::from_denial(Full::new(Bytes::from_static(b"{}")));
//! assert_eq!(body.collect().await.unwrap().to_bytes(), "{}");
//! # }
//! ```

use bytes::Bytes;
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use http_body_util::{BodyExt, Full};

/// A response body type the layer can write a denial in. Implement it for your own
/// body type to gate a service that answers with one.
pub trait DenialBody: Sized {
    /// A body holding the layer's answer: a problem+json document over HTTP, empty
    /// over gRPC (where the status travels in the headers).
    fn from_denial(body: Full<Bytes>) -> Self;
}

impl DenialBody for Full<Bytes> {
    fn from_denial(body: Full<Bytes>) -> Self {
        body
    }
}

impl<E: 'static> DenialBody for UnsyncBoxBody<Bytes, E> {
    fn from_denial(body: Full<Bytes>) -> Self {
        body.map_err(|never| match never {}).boxed_unsync()
    }
}

impl<E: 'static> DenialBody for BoxBody<Bytes, E> {
    fn from_denial(body: Full<Bytes>) -> Self {
        body.map_err(|never| match never {}).boxed()
    }
}

#[cfg(feature = "axum")]
impl DenialBody for axum_core::body::Body {
    fn from_denial(body: Full<Bytes>) -> Self {
        axum_core::body::Body::new(body)
    }
}

#[cfg(feature = "tonic")]
impl DenialBody for tonic::body::Body {
    fn from_denial(body: Full<Bytes>) -> Self {
        tonic::body::Body::new(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn text<B>(body: B) -> Bytes
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: std::fmt::Debug,
    {
        body.collect().await.unwrap().to_bytes()
    }

    /// Every body type the layer can answer in carries the denial's bytes whole.
    #[tokio::test(flavor = "current_thread")]
    async fn each_body_type_carries_the_denial() {
        let denial = || Full::new(Bytes::from_static(br#"{"reason":"feature_not_in_plan"}"#));
        let want = Bytes::from_static(br#"{"reason":"feature_not_in_plan"}"#);
        assert_eq!(text(Full::from_denial(denial())).await, want);
        assert_eq!(
            text(UnsyncBoxBody::<Bytes, std::io::Error>::from_denial(denial())).await,
            want
        );
        assert_eq!(
            text(BoxBody::<Bytes, std::io::Error>::from_denial(denial())).await,
            want
        );
        #[cfg(feature = "axum")]
        assert_eq!(
            text(axum_core::body::Body::from_denial(denial())).await,
            want
        );
        #[cfg(feature = "tonic")]
        assert_eq!(text(tonic::body::Body::from_denial(denial())).await, want);
    }
}
