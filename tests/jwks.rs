//! Keys from a JWKS URL: a local key server on 127.0.0.1 that rotates keys mid-test.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use support::*;
use tiergate::token::{JwksOptions, KeySet, TokenErrorKind, Verifier};

#[derive(Clone, Default)]
struct KeyServer {
    body: Arc<Mutex<(StatusCode, String)>>,
    hits: Arc<AtomicUsize>,
}

impl KeyServer {
    fn publish(&self, keys: Vec<Value>) {
        *self.body.lock().unwrap() = (StatusCode::OK, json!({ "keys": keys }).to_string());
    }

    fn fail(&self) {
        *self.body.lock().unwrap() = (StatusCode::INTERNAL_SERVER_ERROR, "down".into());
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    async fn start(&self) -> String {
        async fn jwks(State(s): State<KeyServer>) -> (StatusCode, String) {
            s.hits.fetch_add(1, Ordering::SeqCst);
            s.body.lock().unwrap().clone()
        }
        let app = Router::new()
            .route("/jwks.json", get(jwks))
            .with_state(self.clone());
        format!("http://{}/jwks.json", serve(app).await)
    }
}

fn verifier(url: &str, cooldown: Duration) -> Verifier {
    Verifier::builder()
        .jwks_url(url)
        .jwks_options(JwksOptions::default().cooldown(cooldown))
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_after_one_refetch() {
    let server = KeyServer::default();
    server.publish(vec![ed25519_jwk("ed25519.pub.pem", "key-a")]);
    let url = server.start().await;
    let cooldown = Duration::from_millis(300);
    let v = verifier(&url, cooldown);
    let now = chrono::Utc::now();
    let token_a = sign_ed25519("ed25519.pem", "key-a", &payload(json!({ "plan": "pro" })));

    // First use: the set is fetched once, then the token verifies.
    let ok = v.verify_fetching(&token_a, now).await.unwrap();
    assert_eq!(ok.claims().plan(), Some("pro"));
    assert_eq!(server.hits(), 1);
    v.verify_fetching(&token_a, now).await.unwrap();
    assert_eq!(server.hits(), 1, "a known kid needs no fetch");

    // The issuer rotates: key-b in, key-a out.
    server.publish(vec![ed25519_jwk("ed25519-b.pub.pem", "key-b")]);
    tokio::time::sleep(cooldown).await;
    let token_b = sign_ed25519("ed25519-b.pem", "key-b", &payload(json!({ "plan": "pro" })));
    v.verify_fetching(&token_b, now).await.unwrap();
    assert_eq!(server.hits(), 2, "one refetch for the new kid");

    // The removed key no longer verifies.
    tokio::time::sleep(cooldown).await;
    let err = v.verify_fetching(&token_a, now).await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::UnknownKey);
    assert_eq!(v.jwks_stats().unwrap().keys, 1);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_at_most_once_per_cooldown() {
    let server = KeyServer::default();
    server.publish(vec![ed25519_jwk("ed25519.pub.pem", "key-a")]);
    let url = server.start().await;
    let cooldown = Duration::from_millis(500);
    let v = verifier(&url, cooldown);
    let now = chrono::Utc::now();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let v = v.clone();
        let token = sign_ed25519("ed25519.pem", &format!("made-up-{i}"), &payload(json!({})));
        tasks.push(tokio::spawn(
            async move { v.verify_fetching(&token, now).await },
        ));
    }
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::UnknownKey);
    }
    let elapsed = started.elapsed();
    let allowed = 1 + (elapsed.as_millis() / cooldown.as_millis()) as usize;
    assert!(
        server.hits() <= allowed,
        "{} fetches in {elapsed:?} with a {cooldown:?} cooldown",
        server.hits()
    );
    assert!(server.hits() >= 1);
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_last_good_set() {
    let server = KeyServer::default();
    server.publish(vec![ed25519_jwk("ed25519.pub.pem", "key-a")]);
    let url = server.start().await;
    let cooldown = Duration::from_millis(100);
    let v = verifier(&url, cooldown);
    let now = chrono::Utc::now();
    let token_a = sign_ed25519("ed25519.pem", "key-a", &payload(json!({})));
    v.verify_fetching(&token_a, now).await.unwrap();

    server.fail();
    tokio::time::sleep(cooldown).await;
    let unknown = sign_ed25519("ed25519.pem", "key-x", &payload(json!({})));
    assert_eq!(
        v.verify_fetching(&unknown, now).await.unwrap_err().kind(),
        TokenErrorKind::UnknownKey
    );
    assert_eq!(server.hits(), 2);
    assert_eq!(v.jwks_stats().unwrap().failures, 1);
    // The last good set still verifies.
    v.verify_fetching(&token_a, now).await.unwrap();
}

#[tokio::test]
async fn no_keys_ever_fetched_is_keys_unavailable() {
    let server = KeyServer::default();
    server.fail();
    let url = server.start().await;
    let v = verifier(&url, Duration::from_secs(30));
    let token = sign_ed25519("ed25519.pem", "key-a", &payload(json!({})));
    let err = v
        .verify_fetching(&token, chrono::Utc::now())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::KeysUnavailable);
}

#[test]
fn unusable_and_ambiguous_jwks_entries_are_skipped() {
    let doc = json!({ "keys": [
        ed25519_jwk("ed25519.pub.pem", "good"),
        { "kty": "oct", "k": "c2VjcmV0", "kid": "symmetric" },
        { "kty": "OKP", "crv": "Ed25519", "x": ed25519_jwk("ed25519.pub.pem", "enc")["x"], "kid": "enc", "use": "enc" },
        ed25519_jwk("ed25519.pub.pem", "twice"),
        ed25519_jwk("ed25519-b.pub.pem", "twice"),
        { "kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "p521" },
    ]});
    let (set, skipped) = KeySet::from_jwks(doc.to_string().as_bytes()).unwrap();
    let kids: Vec<_> = set.keys().iter().map(|k| k.kid().unwrap()).collect();
    assert_eq!(kids, ["good"]);
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    assert_eq!(
        KeySet::from_jwks(b"[]").unwrap_err(),
        tiergate::token::JwksError::NotAnObject
    );
    // The fuzzer's find: serde reads a struct from an array too, so `[[…]]` was taken
    // for a key set with entries. A key set is an object with a `keys` list.
    let good = ed25519_jwk("ed25519.pub.pem", "good");
    let as_array = json!([[good.clone()]]).to_string();
    assert!(KeySet::from_jwks(as_array.as_bytes()).is_err());
    assert!(KeySet::from_jwks(b"[[2]]").is_err());
    assert_eq!(
        KeySet::from_jwks(br#"{"keys": {"a": 1}}"#).unwrap_err(),
        tiergate::token::JwksError::NoKeysList
    );
    let (set, _) = KeySet::from_jwks(json!({ "keys": [good] }).to_string().as_bytes()).unwrap();
    assert_eq!(set.keys().len(), 1);
}

#[test]
fn plain_http_is_refused_except_to_loopback() {
    let build = |url: &str| {
        Verifier::builder()
            .jwks_url(url)
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build()
    };
    assert!(build("http://auth.example.com/jwks.json").is_err());
    assert!(build("https://auth.example.com/jwks.json").is_ok());
    assert!(build("http://127.0.0.1:9/jwks.json").is_ok());
    assert!(build("http://[::1]:9/jwks.json").is_ok());
}

#[tokio::test]
async fn the_layer_refetches_for_a_new_kid_and_then_serves_the_request() {
    let server = KeyServer::default();
    server.publish(vec![ed25519_jwk("ed25519.pub.pem", "key-a")]);
    let url = server.start().await;
    let gate = tiergate::TierGate::builder()
        .policy(tiergate::Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap())
        .verifier(verifier(&url, Duration::from_millis(200)))
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/api/me",
            get(|ent: tiergate::Entitlements| async move { ent.plan().to_owned() }),
        )
        .layer(gate.layer());
    let base = format!("http://{}", serve(app).await);
    let token = sign_ed25519(
        "ed25519.pem",
        "key-a",
        &payload(json!({ "plan": "starter" })),
    );
    let res = client()
        .get(format!("{base}/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (res.status().as_u16(), res.text().await.unwrap().as_str()),
        (200, "starter")
    );
    assert_eq!(server.hits(), 1);

    let stranger = sign_ed25519("ed25519-b.pem", "key-b", &payload(json!({ "plan": "pro" })));
    let res = client()
        .get(format!("{base}/api/me"))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["reason"], "unknown_key");
}

#[tokio::test]
async fn oidc_discovery_finds_the_key_set() {
    let server = KeyServer::default();
    server.publish(vec![ed25519_jwk("ed25519.pub.pem", "key-a")]);
    let jwks_url = server.start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let doc = json!({ "issuer": issuer, "jwks_uri": jwks_url }).to_string();
    let app = Router::new().route(
        "/.well-known/openid-configuration",
        get(move || async move { doc }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let v = Verifier::builder()
        .oidc_issuer(&issuer)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let mut p = payload(json!({ "plan": "pro" }));
    p["iss"] = json!(issuer);
    let token = sign_ed25519("ed25519.pem", "key-a", &p);
    let ok = v.verify_fetching(&token, chrono::Utc::now()).await.unwrap();
    assert_eq!(ok.issuer(), Some(issuer.as_str()));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn an_old_set_is_refreshed_in_the_background_so_removed_keys_stop_verifying() {
    let server = KeyServer::default();
    server.publish(vec![ed25519_jwk("ed25519.pub.pem", "key-a")]);
    let url = server.start().await;
    let v = Verifier::builder()
        .jwks_url(&url)
        .jwks_options(
            JwksOptions::default()
                .cooldown(Duration::from_millis(50))
                .refresh_interval(Duration::from_millis(200)),
        )
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let now = chrono::Utc::now();
    let token_a = sign_ed25519("ed25519.pem", "key-a", &payload(json!({})));
    v.verify_fetching(&token_a, now).await.unwrap();

    server.publish(vec![ed25519_jwk("ed25519-b.pub.pem", "key-b")]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    // This request still sees the old set and starts a refresh without waiting for it.
    v.verify_fetching(&token_a, now).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.hits() < 2 {
        assert!(Instant::now() < deadline, "no background refresh");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while v.verify(&token_a, now).is_ok() {
        assert!(Instant::now() < deadline, "the removed key still verifies");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        v.verify(&token_a, now).unwrap_err().kind(),
        TokenErrorKind::UnknownKey
    );
}
