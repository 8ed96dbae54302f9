//! The gated demo app: every path and method the policy allows answers 200 with the
//! caller's entitlements and the rule that let them in; everything else gets the
//! layer's 401/403. Try a policy with curl.

use axum::Json;
use axum::Router;
use axum::http::{Method, Uri};
use serde_json::{Value, json};

use crate::{Entitlements, TierGate};

/// The demo app behind `gate`.
pub fn router(gate: &TierGate) -> Router {
    Router::new().fallback(answer).layer(gate.layer())
}

async fn answer(method: Method, uri: Uri, ent: Option<Entitlements>) -> Json<Value> {
    let path = uri.path();
    match ent {
        Some(ent) => {
            let d = ent.check_route(method.as_str(), path);
            Json(json!({
                "allowed": true,
                "method": method.as_str(),
                "path": path,
                "reason": d.reason(),
                "rule": d.rule(),
                "entitlements": ent.summary(),
            }))
        }
        None => Json(
            json!({ "allowed": true, "method": method.as_str(), "path": path, "reason": "public" }),
        ),
    }
}
