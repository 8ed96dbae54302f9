//! The tower `Service` and its response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::admission::{Admission, Admitted};
use super::body::DenialBody;
use super::caller::Caller;
use super::gate::TierGate;

impl TierGate {
    /// The tower layer: `.layer(gate.layer())` on an axum `Router` or a tonic `Server`.
    pub fn layer(&self) -> TierGateLayer {
        TierGateLayer { gate: self.clone() }
    }
}

/// The tower [`Layer`] of a [`TierGate`].
#[derive(Clone, Debug)]
pub struct TierGateLayer {
    gate: TierGate,
}

impl<S> Layer<S> for TierGateLayer {
    type Service = TierGateService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TierGateService::new(self.gate.clone(), inner)
    }
}

/// The service a [`TierGateLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct TierGateService<S> {
    gate: TierGate,
    inner: S,
}

impl<S> TierGateService<S> {
    pub(crate) fn new(gate: TierGate, inner: S) -> Self {
        TierGateService { gate, inner }
    }

    /// The wrapped service (tower's usual accessor).
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, taking the gate off.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The gate this service applies.
    pub fn gate(&self) -> &TierGate {
        &self.gate
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pin_project! {
    /// The response future of [`TierGateService`] (and of the `require_feature` guard).
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        state: State<F, B, E>,
    }
}

pin_project! {
    #[project = Projection]
    enum State<F, B, E> {
        // Admitted: the inner service's future.
        Inner { #[pin] future: F },
        // Denied: the response, taken once.
        Denied { response: Option<Box<Response<Full<Bytes>>>> },
        // Waiting for a JWKS refetch, then deciding and maybe calling the inner service.
        Fetching { future: BoxFuture<Result<Response<B>, E>> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn inner(future: F) -> Self {
        ResponseFuture {
            state: State::Inner { future },
        }
    }

    pub(crate) fn denied(response: Response<Full<Bytes>>) -> Self {
        ResponseFuture {
            state: State::Denied {
                response: Some(Box::new(response)),
            },
        }
    }

    fn fetching(future: BoxFuture<Result<Response<B>, E>>) -> Self {
        ResponseFuture {
            state: State::Fetching { future },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: DenialBody,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            // The inner service's response, as it is: no body to rewrap.
            Projection::Inner { future } => future.poll(cx),
            Projection::Denied { response } => match response.take() {
                Some(res) => Poll::Ready(Ok((*res).map(B::from_denial))),
                // The Future contract: polling a completed future is the caller's bug.
                #[allow(clippy::panic)]
                None => panic!("ResponseFuture polled after completion"),
            },
            Projection::Fetching { future } => future.as_mut().poll(cx),
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for TierGateService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: DenialBody + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let admission = self
            .gate
            .0
            .admit(req.method(), req.uri().path(), req.headers());
        match admission {
            Admission::Pass(ext) => {
                insert(&mut req, ext);
                ResponseFuture::inner(self.inner.call(req))
            }
            Admission::Deny(response) => ResponseFuture::denied(response),
            Admission::Fetch(token, issuer) => {
                // The inner service was made ready by poll_ready; take that one and
                // leave a clone for the next call (tower's usual pattern).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let gate = self.gate.clone();
                ResponseFuture::fetching(Box::pin(async move {
                    let g = &gate.0;
                    let now = g.now_secs();
                    let (verifier, own_mapping) = g.issuer(issuer);
                    let policy = g.store.policy();
                    let mapping = own_mapping.or(policy.claims_mapping());
                    let verified = verifier.verify_fetching_at(&token, now, mapping).await;
                    let path = req.uri().path().to_owned();
                    match g.finish(
                        req.method(),
                        &path,
                        req.headers(),
                        now,
                        issuer,
                        verified.map(Some),
                    ) {
                        Ok(ext) => {
                            insert(&mut req, ext);
                            inner.call(req).await
                        }
                        Err(res) => Ok(res.map(ResBody::from_denial)),
                    }
                }))
            }
        }
    }
}

fn insert<B>(req: &mut Request<B>, ext: Admitted) {
    let caller = match ext {
        Some((token, ent)) => Caller::verified(token, ent),
        None => Caller::anonymous(),
    };
    req.extensions_mut().insert(caller);
}
