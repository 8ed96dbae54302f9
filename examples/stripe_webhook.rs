//! A Stripe webhook that keeps a user's claims in step with their subscription.
//!
//! It verifies the `Stripe-Signature` header (HMAC-SHA256 over `timestamp.payload`
//! with the endpoint secret, within a 5-minute tolerance), then maps a
//! `customer.subscription.created|updated|deleted` event to one claims API call,
//! with the event id as the `Idempotency-Key` (Stripe retries deliveries).
//!
//! ```text
//! STRIPE_WEBHOOK_SECRET=whsec_… TIERGATE_CLIENT_ID=cli_… TIERGATE_CLIENT_SECRET=… \
//!   cargo run --features server --example stripe_webhook      # serves 127.0.0.1:4242
//! ```
//!
//! Mapping (set these on the subscription in Stripe): `metadata.email` is the user,
//! the first item's `price.lookup_key` is the plan (`pro`), `quantity` the seats,
//! `trial_end` the trial end; a deleted or canceled subscription sets the plan to `free`.

use std::sync::Arc;

use aws_lc_rs::hmac;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// How long a signed event stays acceptable (Stripe's default tolerance).
pub const TOLERANCE_SECS: i64 = 300;

/// Where to send claims, and the secrets to do it with.
pub struct Webhook {
    pub endpoint_secret: String,
    pub claims_api: String,
    pub client_id: String,
    pub client_secret: String,
    pub http: reqwest::Client,
}

/// Checks `Stripe-Signature: t=…,v1=…[,v1=…]` against the payload at `now`.
pub fn verify_signature(
    secret: &str,
    header: &str,
    payload: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(sig),
            _ => {}
        }
    }
    let t = timestamp.ok_or("no timestamp (t=) in Stripe-Signature")?;
    if (now - t).abs() > TOLERANCE_SECS {
        return Err("the signature's timestamp is outside the tolerance (a replay?)");
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(payload);
    let ok = signatures
        .iter()
        .filter_map(|s| hex(s))
        .any(|tag| hmac::verify(&key, &signed, &tag).is_ok());
    if ok {
        Ok(())
    } else {
        Err("no v1 signature matches")
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// The claims a subscription event sets, and for whom.
pub fn claims_for(event: &Value) -> Option<(String, Value)> {
    let kind = event["type"].as_str()?;
    if !kind.starts_with("customer.subscription.") {
        return None;
    }
    let sub = &event["data"]["object"];
    let email = sub["metadata"]["email"].as_str()?.to_owned();
    let ended = kind == "customer.subscription.deleted" || sub["status"] == "canceled";
    let item = &sub["items"]["data"][0];
    let claims = if ended {
        json!({ "plan": "free", "seats": null, "trial_ends": null })
    } else {
        json!({
            "plan": item["price"]["lookup_key"].as_str()?,
            "seats": item["quantity"].as_u64().unwrap_or(1),
            "trial_ends": sub["trial_end"].as_i64(),
        })
    };
    Some((email, claims))
}

async fn receive(
    State(w): State<Arc<Webhook>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let sig = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Err(why) = verify_signature(
        &w.endpoint_secret,
        sig,
        &body,
        chrono::Utc::now().timestamp(),
    ) {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": why })));
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "not JSON" })),
        );
    };
    let Some((email, claims)) = claims_for(&event) else {
        return (StatusCode::OK, Json(json!({ "ignored": event["type"] })));
    };
    let res = w
        .http
        .post(format!("{}/api/platform/claims", w.claims_api))
        .basic_auth(&w.client_id, Some(&w.client_secret))
        .header("idempotency-key", event["id"].as_str().unwrap_or_default())
        .json(&json!({ "email": email, "claims": claims }))
        .send()
        .await;
    match res {
        Ok(r) if r.status().is_success() => {
            (StatusCode::OK, Json(r.json().await.unwrap_or(Value::Null)))
        }
        // A 4xx from the claims API (an unknown plan): tell Stripe, which will show it.
        Ok(r) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(r.json().await.unwrap_or(Value::Null)),
        ),
        // The claims API is down: 503 makes Stripe retry later.
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": e.to_string() })),
        ),
    }
}

pub fn router(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route("/webhooks/stripe", post(receive))
        .with_state(webhook)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |k: &str| std::env::var(k).map_err(|_| format!("set {k}"));
    let webhook = Arc::new(Webhook {
        endpoint_secret: env("STRIPE_WEBHOOK_SECRET")?,
        claims_api: std::env::var("TIERGATE_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:8080".into()),
        client_id: env("TIERGATE_CLIENT_ID")?,
        client_secret: env("TIERGATE_CLIENT_SECRET")?,
        http: reqwest::Client::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:4242").await?;
    println!("stripe_webhook on http://127.0.0.1:4242/webhooks/stripe");
    axum::serve(listener, router(webhook)).await?;
    Ok(())
}
