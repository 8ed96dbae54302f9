//! The examples, run for real: each one's router or server on 127.0.0.1, called by a
//! client the way a user would.

mod support;

#[allow(dead_code)]
#[path = "../examples/axum_app.rs"]
mod axum_app;
#[allow(dead_code)]
#[path = "../examples/feature_flags.rs"]
mod feature_flags;
#[allow(dead_code)]
#[path = "../examples/tonic_app.rs"]
mod tonic_app;

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use support::{client, serve};
use tiergate::token::Algorithm;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const SECRET: &str = axum_app::DEV_SECRET;

/// A token in the reference server's layout.
fn token(claims: Value) -> String {
    let now = chrono::Utc::now().timestamp();
    let payload = json!({
        "sub": "usr_1", "iss": "http://127.0.0.1:8080", "aud": "tiergate-demo",
        "iat": now, "exp": now + 300, "claims": claims,
    });
    jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        &payload,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn axum_app_gates_the_existing_router_and_answers_what_can_i_do() {
    let policy = support::root().join("policies/saas.yaml");
    let gate = axum_app::gate(policy.to_str().unwrap(), SECRET).unwrap();
    let base = format!(
        "http://{}",
        serve(axum_app::routes().layer(gate.layer())).await
    );
    let free = token(json!({ "plan": "free", "trial_ends": "2999-01-01" }));

    let me: Value = client()
        .get(format!("{base}/api/me"))
        .bearer_auth(&free)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["plan"], "pro", "an active trial lifts free to pro: {me}");
    assert_eq!(me["plan_source"], "trial");
    assert!(me["features"].as_array().unwrap().contains(&json!("sso")));

    let expired = token(json!({ "plan": "free", "trial_ends": "2020-01-01" }));
    let res = client()
        .post(format!("{base}/api/reports/export"))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["reason"].as_str(), body["upgrade_to"].as_str()),
        (Some("trial_expired"), Some("starter"))
    );

    let res = client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn feature_flags_branches_on_limits_features_and_trial() {
    let gate = tiergate::TierGate::builder()
        .policy(feature_flags::policy())
        .verifier(
            tiergate::token::Verifier::builder()
                .hmac_secret(Algorithm::HS256, SECRET)
                .issuer("http://127.0.0.1:8080")
                .audience("tiergate-demo")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let base = format!("http://{}", serve(feature_flags::app(&gate)).await);
    let post = |t: String, used: u64| {
        let base = base.clone();
        async move {
            let res = client()
                .post(format!("{base}/api/projects"))
                .bearer_auth(t)
                .json(&json!({ "existing_projects": used }))
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = post(token(json!({ "plan": "free" })), 1).await;
    assert_eq!(status, 201);
    assert_eq!(body["projects_left"], 1);
    assert_eq!(body["offer_csv_export"], false);
    assert_eq!(body["trial_banner"], Value::Null);

    let (status, body) = post(token(json!({ "plan": "free" })), 3).await;
    assert_eq!(
        (status, body["reason"].as_str(), body["upgrade_to"].as_str()),
        (402, Some("limit_reached"), Some("starter"))
    );

    let (status, body) = post(
        token(json!({ "plan": "starter", "trial_ends": "2999-01-01" })),
        50,
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(body["projects_left"], "unlimited");
    assert_eq!(body["offer_sso_setup"], true);
    assert!(
        body["trial_banner"]
            .as_str()
            .unwrap()
            .ends_with("days left in your trial")
    );
}

#[tokio::test]
async fn tonic_app_answers_grpc_statuses() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tonic_app::serve(tonic_app::gate(SECRET).unwrap(), listener));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let call = |t: Option<String>| {
        let mut req = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        if let Some(t) = t {
            req.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        req
    };

    let ok = health
        .check(call(Some(token(json!({ "plan": "free" })))))
        .await
        .unwrap();
    assert_eq!(ok.get_ref().status, 1, "SERVING");

    let err = health.check(call(None)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(
        err.metadata().get("tiergate-reason").unwrap(),
        "missing_token"
    );

    let err = health
        .check(call(Some("not.a.token".into())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(
        err.metadata().get("tiergate-reason").unwrap(),
        "malformed_token"
    );

    let err = health
        .watch(call(Some(token(json!({ "plan": "free" })))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(err.metadata().get("tiergate-upgrade-to").unwrap(), "team");
    assert!(
        err.message().contains("does not include status.watch"),
        "{}",
        err.message()
    );

    let stream = health
        .watch(call(Some(token(json!({ "plan": "team" })))))
        .await;
    assert!(stream.is_ok());
}
