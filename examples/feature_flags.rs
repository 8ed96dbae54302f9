//! Per-request feature questions in a handler: `has`, `limit`, `within_limit`, `trial`.
//!
//! ```text
//! cargo run --example feature_flags            # serves 127.0.0.1:3001
//! curl -X POST -H "authorization: Bearer $TOKEN" \
//!      -d '{"existing_projects": 3}' -H 'content-type: application/json' \
//!      http://127.0.0.1:3001/api/projects
//! ```
//!
//! The route rule only needs a signed-in caller; the handler decides what to offer.

use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tiergate::token::{Algorithm, Verifier};
use tiergate::{Entitlements, Limit, Policy, TierGate, Trial};

/// The policy: saas.yaml, with `/api/projects` open to every signed-in caller.
pub fn policy() -> Policy {
    let yaml = tiergate::EXAMPLE_POLICY.replace(
        "  - { path: /api/me }",
        "  - { path: /api/me }\n  - { path: /api/projects, methods: [POST] }",
    );
    Policy::from_yaml(&yaml).expect("the example policy is valid")
}

#[derive(Deserialize)]
pub struct NewProject {
    existing_projects: u64,
}

/// Creates a project if the caller's plan allows one more, and says what else
/// their plan offers.
async fn create_project(
    ent: Entitlements,
    Json(req): Json<NewProject>,
) -> (axum::http::StatusCode, Json<Value>) {
    let limit = ent.within_limit("projects", req.existing_projects);
    if !limit.allowed() {
        return (
            axum::http::StatusCode::PAYMENT_REQUIRED,
            Json(json!({
                "error": limit.explanation(),
                "reason": limit.reason(),
                "upgrade_to": limit.upgrade_to(),
            })),
        );
    }
    let projects_left = match ent.limit("projects") {
        Some(Limit::Count(n)) => json!(n - req.existing_projects - 1),
        Some(Limit::Unlimited) => json!("unlimited"),
        None => json!(0),
    };
    let trial_banner = match ent.trial() {
        Trial::Active { days_left, .. } => Some(format!("{days_left} days left in your trial")),
        Trial::Expired { .. } => Some("your trial has ended".to_owned()),
        Trial::None => None,
    };
    (
        axum::http::StatusCode::CREATED,
        Json(json!({
            "created": true,
            "projects_left": projects_left,
            "offer_csv_export": ent.has("reports.export"),
            "offer_sso_setup": ent.has("sso"),
            "trial_banner": trial_banner,
        })),
    )
}

pub fn app(gate: &TierGate) -> Router {
    Router::new()
        .route("/api/projects", post(create_project))
        .layer(gate.layer())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("TIERGATE_SECRET")
        .unwrap_or_else(|_| "tiergate-dev-secret-change-me-0123456789".to_owned());
    let gate = TierGate::builder()
        .policy(policy())
        .verifier(
            Verifier::builder()
                .hmac_secret(Algorithm::HS256, secret)
                .issuer("http://127.0.0.1:8080")
                .audience("tiergate-demo")
                .build()?,
        )
        .build()?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("feature_flags on http://{addr}");
    axum::serve(listener, app(&gate)).await?;
    Ok(())
}
