//! A tonic gRPC server gated by method path, plus a handler that reads Entitlements.
//!
//! The service is gRPC health checking (its generated code ships in `tonic-health`,
//! so no protoc is needed). The policy gates `Check` for every plan and `Watch` for
//! `team` and up; a missing token is UNAUTHENTICATED (16), a plan without the
//! feature PERMISSION_DENIED (7) with `tiergate-upgrade-to` metadata.
//!
//! ```text
//! cargo run --example tonic_app                  # serves 127.0.0.1:50051
//! grpcurl -plaintext -H "authorization: Bearer $TOKEN" 127.0.0.1:50051 grpc.health.v1.Health/Check
//! ```

use std::pin::Pin;

use tiergate::grpc::RequestExt;
use tiergate::token::{Algorithm, Verifier};
use tiergate::{Policy, TierGate};
use tonic::codegen::tokio_stream::{self, Stream};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The policy: gRPC methods are paths.
pub const POLICY: &str = r#"
version: 1
plans:
  free: { features: [status.read] }
  team: { extends: free, features: [status.watch] }
features:
  status.read: {}
  status.watch: { description: Stream status changes }
routes:
  - { path: /grpc.health.v1.Health/Check, require: status.read }
  - { path: /grpc.health.v1.Health/Watch, require: status.watch }
"#;

/// A health service whose answers depend on the caller's plan.
#[derive(Debug, Default)]
pub struct PlanAwareHealth;

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for PlanAwareHealth {
    async fn check(
        &self,
        req: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        // Fails closed (INTERNAL) if this service were ever mounted without the layer.
        let ent = req.require_entitlements()?;
        tracing::info!(plan = ent.plan(), "health check");
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        req: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        // Gating in code as well as by route, for a feature the route does not name.
        req.require_feature("status.watch")?;
        let once = HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        };
        Ok(Response::new(Box::pin(tokio_stream::once(Ok(once)))))
    }
}

pub fn gate(secret: &str) -> Result<TierGate, Box<dyn std::error::Error>> {
    Ok(TierGate::builder()
        .policy(Policy::from_yaml(POLICY)?)
        .verifier(
            Verifier::builder()
                .hmac_secret(Algorithm::HS256, secret)
                .issuer("http://127.0.0.1:8080")
                .audience("tiergate-demo")
                .build()?,
        )
        .build()?)
}

/// Serves the gated health service on `listener` until the future is dropped.
pub async fn serve(
    gate: TierGate,
    listener: tokio::net::TcpListener,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .layer(gate.layer())
        .add_service(HealthServer::new(PlanAwareHealth))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("TIERGATE_SECRET")
        .unwrap_or_else(|_| "tiergate-dev-secret-change-me-0123456789".to_owned());
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:50051".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("tonic_app on {addr}");
    serve(gate(&secret)?, listener).await?;
    Ok(())
}
