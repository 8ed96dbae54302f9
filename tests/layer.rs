//! The tower layer over real sockets: an axum server on 127.0.0.1 called with
//! reqwest, tokens signed by real keys for every algorithm, and one test per attack.

mod support;

use std::time::Duration;

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use support::*;
use tiergate::token::Algorithm;
use tiergate::token::{VerifiedToken, Verifier, VerifyingKey};
use tiergate::{Entitlements, Policy, PolicyStore, TierGate, require_feature};

fn all_keys() -> tiergate::token::VerifierBuilder {
    let mut b = Verifier::builder().issuer(ISSUER).audience(AUDIENCE);
    for (alg, name) in ALGORITHMS {
        let key = if name == "hmac" {
            VerifyingKey::hmac(alg, SECRET).unwrap()
        } else {
            VerifyingKey::from_pem(alg, key_file(&format!("{name}.pub.pem"))).unwrap()
        };
        b = b.key(key.with_kid(kid(alg, name)));
    }
    b
}

fn gate_with(verifier: Verifier, policy: &str) -> TierGate {
    TierGate::builder()
        .policy(Policy::from_yaml(policy).unwrap())
        .verifier(verifier)
        .cookie("access_token")
        .build()
        .unwrap()
}

fn routes() -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|ent: Option<Entitlements>| async move {
                ent.map_or("anonymous".to_owned(), |e| e.plan().to_owned())
            }),
        )
        .route(
            "/api/me",
            get(|ent: Entitlements, token: VerifiedToken| async move {
                Json(json!({ "plan": ent.plan(), "sub": token.subject(), "alg": format!("{:?}", token.algorithm()) }))
            }),
        )
        .route("/api/reports/export", post(|| async { "exported" }))
        .route("/api/dashboard", get(|| async { "dashboard" }))
}

async fn start(gate: &TierGate) -> String {
    let addr = serve(routes().layer(gate.layer())).await;
    format!("http://{addr}")
}

async fn get_with(base: &str, path: &str, token: &str) -> reqwest::Response {
    client()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn problem(res: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    if status >= 400 {
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    let body: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap_or(Value::Null);
    (status, challenge, body)
}

#[tokio::test]
async fn every_algorithm_verifies_with_its_own_key() {
    let base = start(&gate_with(
        all_keys().build().unwrap(),
        tiergate::EXAMPLE_POLICY,
    ))
    .await;
    for (alg, name) in ALGORITHMS {
        let token = sign(alg, name, &payload(json!({ "plan": "pro" })));
        let res = get_with(&base, "/api/me", &token).await;
        assert_eq!(res.status(), 200, "{alg:?}: {}", res.text().await.unwrap());
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body,
            json!({ "plan": "pro", "sub": "usr_1", "alg": format!("{alg:?}") })
        );
    }
}

/// Each attack and malformed token gets 401 with its reason, a Bearer challenge,
/// and a body that never echoes the token.
#[tokio::test]
async fn every_attack_is_a_401_with_its_reason() {
    let base = start(&gate_with(
        all_keys().build().unwrap(),
        tiergate::EXAMPLE_POLICY,
    ))
    .await;
    let p = |f: &dyn Fn(&mut Value)| {
        let mut v = payload(json!({ "plan": "pro" }));
        f(&mut v);
        v
    };
    let hs = |v: &Value| sign(Algorithm::HS256, "hmac", v);
    let rsa_public = key_file("rsa.pub.pem");
    let flipped = {
        let t = hs(&p(&|_| {}));
        let (msg, sig) = t.rsplit_once('.').unwrap();
        let mut sig = sig.as_bytes().to_vec();
        sig[3] = if sig[3] == b'A' { b'B' } else { b'A' };
        format!("{msg}.{}", String::from_utf8(sig).unwrap())
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", forge_unsigned("none"), "unsigned_token"),
        ("alg NONE", forge_unsigned("NONE"), "unsigned_token"),
        ("alg nOnE", forge_unsigned("nOnE"), "unsigned_token"),
        (
            "HS256 signed with the RSA public key",
            forge(
                &json!({ "alg": "HS256", "kid": "rsa-RS256" }),
                &p(&|_| {}),
                &rsa_public,
            ),
            "algorithm_mismatch",
        ),
        (
            "an algorithm that is not the key's",
            {
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
                h.kid = Some("ed25519-EdDSA".into());
                jsonwebtoken::encode(&h, &p(&|_| {}), &encoding_key(Algorithm::ES256, "p256"))
                    .unwrap()
            },
            "algorithm_mismatch",
        ),
        (
            "expired beyond the leeway",
            hs(&p(&|v| v["exp"] = json!(now() - 120))),
            "expired",
        ),
        (
            "nbf in the future",
            hs(&p(&|v| v["nbf"] = json!(now() + 120))),
            "not_yet_valid",
        ),
        (
            "iat in the future",
            hs(&p(&|v| v["iat"] = json!(now() + 600))),
            "issued_in_future",
        ),
        (
            "no exp",
            hs(&p(&|v| drop(v.as_object_mut().unwrap().remove("exp")))),
            "missing_claim",
        ),
        (
            "exp as a string",
            hs(&p(&|v| v["exp"] = json!("soon"))),
            "invalid_claim",
        ),
        (
            "no aud",
            hs(&p(&|v| drop(v.as_object_mut().unwrap().remove("aud")))),
            "missing_claim",
        ),
        (
            "wrong aud",
            hs(&p(&|v| v["aud"] = json!("another-api"))),
            "wrong_audience",
        ),
        (
            "wrong aud in a list",
            hs(&p(&|v| v["aud"] = json!(["a", "b"]))),
            "wrong_audience",
        ),
        (
            "no iss",
            hs(&p(&|v| drop(v.as_object_mut().unwrap().remove("iss")))),
            "missing_claim",
        ),
        (
            "wrong iss",
            hs(&p(&|v| v["iss"] = json!("https://evil.test"))),
            "wrong_issuer",
        ),
        (
            "crit present",
            forge(
                &json!({ "alg": "HS256", "kid": "hmac-HS256", "crit": ["exp"] }),
                &p(&|_| {}),
                SECRET,
            ),
            "critical_header",
        ),
        (
            "oversized",
            format!("{}.{}.{}", "a".repeat(5000), "b".repeat(5000), "c"),
            "token_too_large",
        ),
        (
            "bad characters",
            "eyJhbGciOiJIUzI1NiJ9.e30=.c2ln".to_owned(),
            "malformed_token",
        ),
        (
            "a tab inside the token",
            "eyJhbGciOiJIUzI1NiJ9.e30\t.c2ln".to_owned(),
            "malformed_token",
        ),
        (
            "a non-ASCII letter inside the token",
            "eyJhbGciOiJIUzI1NiJ9.e30\u{e9}.c2ln".to_owned(),
            "malformed_token",
        ),
        (
            "two parts",
            "eyJhbGciOiJIUzI1NiJ9.e30".to_owned(),
            "malformed_token",
        ),
        (
            "header not JSON",
            "bm90IGpzb24.e30.c2ln".to_owned(),
            "malformed_token",
        ),
        ("a flipped signature bit", flipped, "bad_signature"),
        (
            "a token from a removed key",
            sign_ed25519("ed25519-b.pem", "retired-2025", &p(&|_| {})),
            "unknown_key",
        ),
        (
            "an unknown alg",
            forge_header(&json!({ "alg": "HS999" })),
            "unsupported_algorithm",
        ),
    ];
    for (name, token, reason) in cases {
        let (status, challenge, body) = problem(get_with(&base, "/api/me", &token).await).await;
        assert_eq!(
            (status, body["reason"].as_str()),
            (401, Some(reason)),
            "{name}: {body}"
        );
        let challenge = challenge.unwrap_or_else(|| panic!("{name}: no WWW-Authenticate"));
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{name}: {challenge}"
        );
        assert!(
            !body.to_string().contains(&token),
            "{name}: the body echoes the token"
        );
        assert!(
            !challenge.contains(&token),
            "{name}: the challenge echoes the token"
        );
    }
}

fn forge_unsigned(alg: &str) -> String {
    use base64::Engine as _;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        b64(json!({ "alg": alg })),
        b64(payload(json!({ "plan": "enterprise" })))
    )
}

fn forge_header(header: &Value) -> String {
    forge(header, &payload(json!({})), SECRET)
}

#[tokio::test]
async fn within_the_leeway_an_expired_token_still_passes() {
    let base = start(&gate_with(
        all_keys().build().unwrap(),
        tiergate::EXAMPLE_POLICY,
    ))
    .await;
    let mut v = payload(json!({ "plan": "pro" }));
    v["exp"] = json!(now() - 10);
    let res = get_with(&base, "/api/me", &sign(Algorithm::HS256, "hmac", &v)).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn transport_errors_are_invalid_requests() {
    let base = start(&gate_with(
        all_keys().build().unwrap(),
        tiergate::EXAMPLE_POLICY,
    ))
    .await;
    let token = hs256(json!({ "plan": "pro" }));
    let res = client()
        .get(format!("{base}/api/me"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let (status, challenge, body) = problem(res).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (401, Some("ambiguous_credentials"))
    );
    assert!(
        challenge
            .unwrap()
            .starts_with("Bearer error=\"invalid_request\"")
    );

    let res = client()
        .get(format!("{base}/api/me"))
        .basic_auth("u", Some("p"))
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(res).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (401, Some("unsupported_scheme"))
    );

    let res = client().get(format!("{base}/api/me")).send().await.unwrap();
    let (status, challenge, body) = problem(res).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (401, Some("missing_token"))
    );
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer"),
        "RFC 6750: no error code without credentials"
    );
}

#[tokio::test]
async fn the_token_may_come_in_the_configured_cookie() {
    let base = start(&gate_with(
        all_keys().build().unwrap(),
        tiergate::EXAMPLE_POLICY,
    ))
    .await;
    let token = hs256(json!({ "plan": "starter" }));
    let res = client()
        .get(format!("{base}/api/me"))
        .header("cookie", format!("theme=dark; access_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["plan"], "starter");
}

#[tokio::test]
async fn a_denied_route_says_why_and_what_plan_would_allow_it() {
    let base = start(&gate_with(
        all_keys().build().unwrap(),
        tiergate::EXAMPLE_POLICY,
    ))
    .await;
    let token = hs256(json!({ "plan": "free" }));
    let res = client()
        .post(format!("{base}/api/reports/export"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, challenge, body) = problem(res).await;
    assert_eq!(status, 403);
    assert_eq!(challenge, None);
    assert_eq!(body["reason"], "feature_not_in_plan");
    assert_eq!(body["feature"], "reports.export");
    assert_eq!(body["plan"], "free");
    assert_eq!(body["upgrade_to"], "starter");
    assert_eq!(body["rule"]["pattern"], "/api/reports/export");
    let line = tiergate::EXAMPLE_POLICY
        .lines()
        .position(|l| l.contains("path: /api/reports/export,"))
        .unwrap()
        + 1;
    assert_eq!(body["rule"]["line"], line);
    assert_eq!(body["type"], "urn:tiergate:problem:feature_not_in_plan");
    assert_eq!(
        body["detail"],
        "The free plan does not include reports.export. The starter plan includes it."
    );

    // The same caller on starter is let through.
    let token = hs256(json!({ "plan": "starter" }));
    let res = client()
        .post(format!("{base}/api/reports/export"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (res.status().as_u16(), res.text().await.unwrap().as_str()),
        (200, "exported")
    );

    // A role requirement names the role.
    let token = hs256(json!({ "plan": "pro", "role": "member", "seats": 5 }));
    let res = client()
        .post(format!("{base}/api/members/invite"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(res).await;
    assert_eq!(
        (status, body["reason"].as_str(), body["role"].as_str()),
        (403, Some("role_required"), Some("admin"))
    );

    // No rule matches: `unmatched: deny`.
    let res = get_with(&base, "/nowhere", &token).await;
    let (status, _, body) = problem(res).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (403, Some("no_matching_route"))
    );
}

#[tokio::test]
async fn public_routes_need_no_token_but_use_a_valid_one() {
    let base = start(&gate_with(
        all_keys().build().unwrap(),
        tiergate::EXAMPLE_POLICY,
    ))
    .await;
    let res = client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (res.status().as_u16(), res.text().await.unwrap().as_str()),
        (200, "anonymous")
    );
    let res = get_with(&base, "/healthz", &hs256(json!({ "plan": "pro" }))).await;
    assert_eq!(res.text().await.unwrap(), "pro");
    // A bad token on a public route is ignored, not an error.
    let res = get_with(&base, "/healthz", "garbage").await;
    assert_eq!(
        (res.status().as_u16(), res.text().await.unwrap().as_str()),
        (200, "anonymous")
    );
}

#[tokio::test]
async fn observe_mode_logs_denials_and_lets_requests_through() {
    // The whole layer in observe mode.
    let gate = TierGate::builder()
        .policy(Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap())
        .verifier(all_keys().build().unwrap())
        .enforce(false)
        .build()
        .unwrap();
    let base = start(&gate).await;
    let free = hs256(json!({ "plan": "free" }));
    let res = client()
        .post(format!("{base}/api/reports/export"))
        .bearer_auth(&free)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // …but never for a missing token.
    let res = client()
        .post(format!("{base}/api/reports/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // One rule in observe mode (`enforce: false`); the others still enforce.
    let policy = tiergate::EXAMPLE_POLICY.replace(
        "- { path: /api/reports/export, methods: [POST], require: reports.export }",
        "- { path: /api/reports/export, methods: [POST], require: reports.export, enforce: false }",
    );
    assert_ne!(policy, tiergate::EXAMPLE_POLICY);
    let base = start(&gate_with(all_keys().build().unwrap(), &policy)).await;
    let res = client()
        .post(format!("{base}/api/reports/export"))
        .bearer_auth(&free)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = get_with(&base, "/api/sso/config", &free).await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn a_required_typ_refuses_other_types() {
    let gate = gate_with(
        all_keys().require_type("at+jwt").build().unwrap(),
        tiergate::EXAMPLE_POLICY,
    );
    let base = start(&gate).await;
    let plain = hs256(json!({}));
    let (status, _, body) = problem(get_with(&base, "/api/me", &plain).await).await;
    assert_eq!((status, body["reason"].as_str()), (401, Some("wrong_type")));
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = Some(kid(Algorithm::HS256, "hmac"));
    h.typ = Some("at+jwt".into());
    let typed = jsonwebtoken::encode(
        &h,
        &payload(json!({})),
        &encoding_key(Algorithm::HS256, "hmac"),
    )
    .unwrap();
    assert_eq!(get_with(&base, "/api/me", &typed).await.status(), 200);
}

#[tokio::test]
async fn a_stale_policy_fails_closed_with_503() {
    let dir = std::env::temp_dir().join(format!("tiergate-layer-stale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.yaml");
    std::fs::write(&path, tiergate::EXAMPLE_POLICY).unwrap();
    let store = PolicyStore::open(&path).unwrap();
    store.set_max_staleness(Some(Duration::from_millis(1)));
    let gate = TierGate::builder()
        .store(store.clone())
        .verifier(all_keys().build().unwrap())
        .build()
        .unwrap();
    let base = start(&gate).await;
    let token = hs256(json!({ "plan": "pro" }));
    assert_eq!(get_with(&base, "/api/me", &token).await.status(), 200);

    std::fs::write(&path, "version: 1\nplans: { free: { features: [nope] } }\n").unwrap();
    assert!(store.reload().is_err());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (status, _, body) = problem(get_with(&base, "/api/me", &token).await).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (503, Some("policy_stale"))
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_bad_policy_file_fails_the_build() {
    let dir = std::env::temp_dir().join(format!("tiergate-layer-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.yaml");
    std::fs::write(&path, "version: 1\nplans: { free: { features: [nope] } }\n").unwrap();
    let err = TierGate::builder()
        .policy_file(&path)
        .verifier(all_keys().build().unwrap())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn extractors_fail_closed_without_the_layer() {
    let base = format!("http://{}", serve(routes()).await);
    let res = client().get(format!("{base}/api/me")).send().await.unwrap();
    let (status, _, body) = problem(res).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (500, Some("gate_missing"))
    );
    assert!(body["detail"].as_str().unwrap().contains("layer"), "{body}");
}

#[tokio::test]
async fn require_feature_gates_in_code() {
    let gate = gate_with(
        all_keys().build().unwrap(),
        &tiergate::EXAMPLE_POLICY.replace("unmatched: deny", "unmatched: authenticated"),
    );
    let app = Router::new()
        .route("/code-gated/sso", get(|| async { "sso" }))
        .route_layer(require_feature("sso"))
        .layer(gate.layer());
    let base = format!("http://{}", serve(app).await);
    let (status, _, body) = problem(
        get_with(
            &base,
            "/code-gated/sso",
            &hs256(json!({ "plan": "starter" })),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["reason"].as_str(), body["upgrade_to"].as_str()),
        (403, Some("feature_not_in_plan"), Some("pro"))
    );
    let res = get_with(&base, "/code-gated/sso", &hs256(json!({ "plan": "pro" }))).await;
    assert_eq!(res.status(), 200);

    // Without the layer, the guard fails closed.
    let app = Router::new()
        .route("/x", get(|| async { "x" }))
        .route_layer(require_feature("sso"));
    let base = format!("http://{}", serve(app).await);
    assert_eq!(
        client()
            .get(format!("{base}/x"))
            .send()
            .await
            .unwrap()
            .status(),
        500
    );
}

#[test]
fn the_verifier_refuses_unsafe_configurations() {
    let short = Verifier::builder()
        .hmac_secret(Algorithm::HS256, b"short")
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build();
    assert!(short.unwrap_err().to_string().contains("at least 32"));
    let no_iss = Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .audience(AUDIENCE)
        .build();
    assert!(no_iss.unwrap_err().to_string().contains(".issuer("));
    let no_aud = Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .issuer(ISSUER)
        .build();
    assert!(no_aud.unwrap_err().to_string().contains(".audience("));
    let pem_as_hmac = VerifyingKey::hmac(Algorithm::RS256, SECRET);
    assert!(pem_as_hmac.is_err());
    let rsa_as_ec = VerifyingKey::from_pem(Algorithm::ES256, key_file("rsa.pub.pem"));
    assert!(rsa_as_ec.is_err());
}
