//! The layer's side of the claims-change feed, against a feed of our own making
//! on loopback (so each failure mode can be staged): which tokens are refused and
//! which are not, and what happens when the feed lies or goes away.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use support::*;
use tiergate::token::{Algorithm, Verifier};
use tiergate::{ClaimsChanges, Entitlements, Issuer, Policy, TierGate};

const CLAIMS_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/token-claims-change";

/// A feed: SETs in order, served after a cursor; `up` false answers 503.
#[derive(Clone, Default)]
struct Feed {
    sets: Arc<Mutex<Vec<String>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Feed {
    /// Publishes a change of `sub`'s claims to `version`, signed with `key`.
    fn publish(&self, sub: &str, version: Option<u64>, key: &[u8]) {
        let mut sets = self.sets.lock().unwrap();
        let mut event = json!({ "event_timestamp": now(), "changed_claims": ["plan"] });
        if let Some(v) = version {
            event["claims_version"] = json!(v);
        }
        let payload = json!({
            "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "jti": format!("e{}", sets.len()),
            "sub_id": { "format": "iss_sub", "iss": ISSUER, "sub": sub },
            "events": { CLAIMS_CHANGE: event },
        });
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("secevent+jwt".into());
        let set = jsonwebtoken::encode(&header, &payload, &EncodingKey::from_secret(key)).unwrap();
        sets.push(set);
    }
}

async fn page(State(feed): State<Feed>, uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if feed.down.load(std::sync::atomic::Ordering::Relaxed) {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let after: usize = after(&uri).unwrap_or(0);
    // A short long-poll, so the follower is not spinning.
    for _ in 0..10 {
        if feed.sets.lock().unwrap().len() > after {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sets = feed.sets.lock().unwrap().clone();
    let new: serde_json::Map<String, Value> = sets
        .iter()
        .enumerate()
        .skip(after)
        .map(|(i, s)| (format!("e{i}"), json!(s)))
        .collect();
    Json(json!({ "sets": new, "moreAvailable": false, "cursor": sets.len().max(after).to_string(), "window_seconds": 600 }))
        .into_response()
}

/// The `after` query parameter.
fn after(uri: &axum::http::Uri) -> Option<usize> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("after="))?
        .parse()
        .ok()
}

async fn start_feed() -> (Feed, String) {
    let feed = Feed::default();
    let app = Router::new()
        .route("/feed", get(page))
        .with_state(feed.clone());
    let addr = serve(app).await;
    (feed, format!("http://{addr}/feed"))
}

fn verifier() -> Verifier {
    Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap()
}

fn changes(url: &str) -> ClaimsChanges {
    ClaimsChanges::new(url).retry(Duration::from_millis(20), Duration::from_millis(100))
}

/// A gate with the example policy, the test issuer, following the feed at `url`.
fn following(url: &str) -> TierGate {
    TierGate::builder()
        .policy(Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap())
        .verifier(verifier())
        .claims_changes(changes(url))
        .build()
        .unwrap()
}

fn app(gate: &TierGate) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|ent: Option<Entitlements>| async move {
                ent.map_or("anonymous".to_owned(), |e| e.plan().to_owned())
            }),
        )
        .route("/api/dashboard", get(|| async { "dashboard" }))
        .layer(gate.layer())
}

fn token(sub: &str, cv: Option<u64>, iat: i64) -> String {
    let mut p = payload(json!({ "plan": "pro" }));
    p["sub"] = json!(sub);
    p["iat"] = json!(iat);
    if let Some(cv) = cv {
        p["cv"] = json!(cv);
    }
    sign(Algorithm::HS256, "hmac", &p)
}

async fn status(base: &str, path: &str, token: &str) -> (u16, Value, Option<String>) {
    let res = client()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let code = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = res.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(json!(text)),
        challenge,
    )
}

/// Polls until `path` answers `want` with `token` (at most 3 s).
async fn eventually(base: &str, path: &str, token: &str, want: u16) -> Value {
    let start = Instant::now();
    loop {
        let (code, body, _) = status(base, path, token).await;
        if code == want {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "still {code}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_cached_token_is_refused_after_its_subjects_change_and_a_new_one_is_not() {
    let (feed, url) = start_feed().await;
    let gate = following(&url);
    let base = format!("http://{}", serve(app(&gate)).await);
    let old = token("usr_1", Some(3), now());
    // Verified once: now in the verified-token cache.
    assert_eq!(status(&base, "/api/dashboard", &old).await.0, 200);
    feed.publish("usr_1", Some(4), SECRET);
    let body = eventually(&base, "/api/dashboard", &old, 401).await;
    assert_eq!(body["reason"], "claims_changed");
    let (_, _, challenge) = status(&base, "/api/dashboard", &old).await;
    assert!(
        challenge
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\", error_description="),
    );
    // Minted from the new version (even in the same second): accepted.
    assert_eq!(
        status(&base, "/api/dashboard", &token("usr_1", Some(4), now()))
            .await
            .0,
        200
    );
    // Another subject is not touched.
    assert_eq!(
        status(&base, "/api/dashboard", &token("usr_2", Some(1), now()))
            .await
            .0,
        200
    );
    // A public route still answers a stale token, as it would no token.
    let (code, body, _) = status(&base, "/healthz", &old).await;
    assert_eq!((code, body), (200, json!("anonymous")));
    let s = &gate.claims_changes_status()[0];
    assert_eq!(s.changes_applied, 1);
    assert_eq!(s.subjects, 1);
    assert!(s.last_error.is_none());
}

#[tokio::test]
async fn without_a_version_the_issue_time_decides() {
    let (feed, url) = start_feed().await;
    let gate = following(&url);
    let base = format!("http://{}", serve(app(&gate)).await);
    let before = token("usr_1", None, now() - 10);
    feed.publish("usr_1", None, SECRET);
    eventually(&base, "/api/dashboard", &before, 401).await;
    // Issued in a later second than the change: fresh.
    let after = token("usr_1", None, now() + 2);
    assert_eq!(status(&base, "/api/dashboard", &after).await.0, 200);
}

#[tokio::test]
async fn a_forged_event_is_not_applied_and_the_status_says_why() {
    let (feed, url) = start_feed().await;
    let gate = following(&url);
    let base = format!("http://{}", serve(app(&gate)).await);
    let old = token("usr_1", Some(1), now());
    feed.publish(
        "usr_1",
        Some(2),
        b"not the issuer's key, but 32 bytes or more of it",
    );
    let start = Instant::now();
    while gate.claims_changes_status()[0].last_error.is_none() {
        assert!(start.elapsed() < Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = &gate.claims_changes_status()[0];
    assert!(
        s.last_error.as_deref().unwrap().contains("bad_signature"),
        "{s:?}"
    );
    assert_eq!(s.changes_applied, 0);
    // Nobody can log a user out (or in) by writing to the feed.
    assert_eq!(status(&base, "/api/dashboard", &old).await.0, 200);
}

#[tokio::test]
async fn an_unreachable_feed_past_the_bound_is_503_for_its_issuer_only() {
    let (feed, url) = start_feed().await;
    let other = Verifier::builder()
        .hmac_secret(
            Algorithm::HS256,
            b"the other issuer's secret, 32 bytes or more",
        )
        .issuer("https://other.test")
        .audience(AUDIENCE)
        .build()
        .unwrap();
    let gate = TierGate::builder()
        .policy(Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap())
        .verifier(verifier())
        .claims_changes(changes(&url).max_staleness(Duration::from_millis(500)))
        .issuer(Issuer::new(other))
        .build()
        .unwrap();
    let base = format!("http://{}", serve(app(&gate)).await);
    let mine = token("usr_1", Some(1), now());
    let mut theirs = payload(json!({ "plan": "pro" }));
    theirs["iss"] = json!("https://other.test");
    let theirs = forge(
        &json!({ "alg": "HS256", "typ": "JWT" }),
        &theirs,
        b"the other issuer's secret, 32 bytes or more",
    );
    assert_eq!(status(&base, "/api/dashboard", &mine).await.0, 200);
    feed.down.store(true, std::sync::atomic::Ordering::Relaxed);
    let body = eventually(&base, "/api/dashboard", &mine, 503).await;
    assert_eq!(body["reason"], "claims_changes_unavailable");
    assert!(gate.claims_changes_status()[0].stale);
    // The other issuer has no feed: unaffected.
    assert_eq!(status(&base, "/api/dashboard", &theirs).await.0, 200);
    // Back up: decisions resume.
    feed.down.store(false, std::sync::atomic::Ordering::Relaxed);
    eventually(&base, "/api/dashboard", &mine, 200).await;
}

#[tokio::test]
async fn without_a_bound_an_unreachable_feed_keeps_the_last_state() {
    let (feed, url) = start_feed().await;
    let gate = following(&url);
    let base = format!("http://{}", serve(app(&gate)).await);
    let old = token("usr_1", Some(1), now());
    feed.publish("usr_1", Some(2), SECRET);
    eventually(&base, "/api/dashboard", &old, 401).await;
    feed.down.store(true, std::sync::atomic::Ordering::Relaxed);
    let start = Instant::now();
    while gate.claims_changes_status()[0].failures == 0 {
        assert!(start.elapsed() < Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // What it knew still holds; fresh tokens still pass.
    assert_eq!(status(&base, "/api/dashboard", &old).await.0, 401);
    assert_eq!(
        status(&base, "/api/dashboard", &token("usr_1", Some(2), now()))
            .await
            .0,
        200
    );
    let s = &gate.claims_changes_status()[0];
    assert!(s.last_error.as_deref().unwrap().contains("503"), "{s:?}");
    assert!(!s.stale);
}
