//! An existing axum app, gated by tiergate in one line, with a "what can I do" endpoint.
//!
//! ```text
//! cargo run --example axum_app                       # serves 127.0.0.1:3000
//! TOKEN=$(cargo run -q --features cli --bin tiergate -- token --secret "$SECRET" --claims '{"plan":"free"}')
//! curl -H "authorization: Bearer $TOKEN" http://127.0.0.1:3000/api/me
//! curl -X POST -H "authorization: Bearer $TOKEN" http://127.0.0.1:3000/api/reports/export   # 403, upgrade_to starter
//! ```
//!
//! `SECRET` is the HS256 secret (`TIERGATE_SECRET`, or the development default printed
//! at start). The policy is `policies/saas.yaml`, watched: edit it while this runs.

use axum::routing::{get, post};
use axum::{Json, Router};
use tiergate::token::{Algorithm, Verifier};
use tiergate::{Entitlements, Summary, TierGate};

/// The development secret used when `TIERGATE_SECRET` is not set. Never use it in production.
pub const DEV_SECRET: &str = "tiergate-dev-secret-change-me-0123456789";

/// The app as it was before tiergate: plain handlers, no auth code.
pub fn routes() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/me", get(what_can_i_do))
        .route("/api/dashboard", get(|| async { "your dashboard" }))
        .route("/api/reports/{id}", get(|| async { "a report" }))
        .route("/api/reports/export", post(|| async { "report.csv" }))
        .route("/api/sso/config", get(|| async { "sso settings" }))
}

/// "What can I do": the caller's plan, trial, features and limits.
async fn what_can_i_do(ent: Entitlements) -> Json<Summary> {
    Json(ent.summary())
}

/// The gate: the watched policy file and an HS256 verifier in the reference
/// server's layout (`iss` http://127.0.0.1:8080, `aud` tiergate-demo).
pub fn gate(policy_file: &str, secret: &str) -> Result<TierGate, Box<dyn std::error::Error>> {
    let verifier = Verifier::builder()
        .hmac_secret(Algorithm::HS256, secret)
        .issuer("http://127.0.0.1:8080")
        .audience("tiergate-demo")
        .build()?;
    Ok(TierGate::builder()
        .policy_file(policy_file)
        .verifier(verifier)
        .build()?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("TIERGATE_SECRET").unwrap_or_else(|_| DEV_SECRET.to_owned());
    let gate = gate("policies/saas.yaml", &secret)?;
    let app = routes().layer(gate.layer()); // the one line
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "axum_app on http://{addr} (policy revision {})",
        gate.store().policy().revision()
    );
    println!(
        "mint a token: cargo run -q --features cli --bin tiergate -- token --secret {secret} --claims '{{\"plan\":\"free\"}}'"
    );
    axum::serve(listener, app).await?;
    Ok(())
}
