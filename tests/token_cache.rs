//! The verified-token cache answers exactly what a fresh verification would: a hit
//! still checks `exp`, `nbf` and `iat` against the clock, a token that failed is
//! never stored, and a token is found by its whole bytes, never by its hash alone.

mod support;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use support::*;
use tiergate::token::Algorithm;
use tiergate::token::{CacheOptions, TokenErrorKind, Verifier};

fn cached_verifier(options: CacheOptions) -> Verifier {
    Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .leeway(std::time::Duration::from_secs(0))
        .token_cache(Some(options))
        .build()
        .unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

/// A token valid from `nbf` to `exp` (unix seconds), issued at `iat`.
fn token(iat: i64, nbf: i64, exp: i64, plan: &str) -> String {
    sign(
        Algorithm::HS256,
        "hmac",
        &json!({
            "sub": "usr_1", "iss": ISSUER, "aud": AUDIENCE,
            "iat": iat, "nbf": nbf, "exp": exp, "claims": { "plan": plan },
        }),
    )
}

const T: i64 = 1_800_000_000;

#[test]
fn a_repeated_token_is_stored_once_and_answers_the_same() {
    let v = cached_verifier(CacheOptions::default());
    let t = token(T, T, T + 300, "pro");
    let first = v.verify(&t, at(T + 1)).unwrap();
    assert_eq!(v.cached_tokens(), 1);
    let again = v.verify(&t, at(T + 2)).unwrap();
    assert_eq!(v.cached_tokens(), 1);
    assert_eq!(again.claims(), first.claims());
    assert_eq!(again.subject(), Some("usr_1"));
}

#[test]
fn a_hit_still_checks_the_clock() {
    let v = cached_verifier(CacheOptions::default());
    let t = token(T, T + 10, T + 300, "pro");
    v.verify(&t, at(T + 20)).unwrap();
    assert_eq!(v.cached_tokens(), 1);
    // Later than `exp`: expired, although the token is in the cache.
    let err = v.verify(&t, at(T + 300)).unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Expired);
    // A clock that went back before `nbf` (and before `iat`): not valid yet, as a
    // fresh verification would say.
    let v = cached_verifier(CacheOptions::default());
    v.verify(&t, at(T + 20)).unwrap();
    let err = v.verify(&t, at(T + 5)).unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::NotYetValid);
    let t = token(T + 10, T - 100, T + 300, "pro");
    let v = cached_verifier(CacheOptions::default());
    v.verify(&t, at(T + 20)).unwrap();
    let err = v.verify(&t, at(T)).unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::IssuedInFuture);
}

#[test]
fn a_token_that_failed_is_never_stored() {
    let v = cached_verifier(CacheOptions::default());
    let good = token(T, T, T + 300, "pro");
    let (message, signature) = good.rsplit_once('.').unwrap();
    let wrong = format!("{message}.{}", &signature.replace(&signature[..4], "AAAA"));
    for _ in 0..2 {
        let err = v.verify(&wrong, at(T + 1)).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::BadSignature);
        assert_eq!(v.cached_tokens(), 0);
    }
    // An expired token, correctly signed: refused, not stored.
    let old = token(T - 600, T - 600, T - 300, "pro");
    assert_eq!(
        v.verify(&old, at(T)).unwrap_err().kind(),
        TokenErrorKind::Expired
    );
    assert_eq!(v.cached_tokens(), 0);
}

#[test]
fn a_token_sharing_a_cached_tokens_tail_is_not_served_from_the_cache() {
    // The cache hashes a token's last 32 bytes. A forged token that keeps a cached
    // token's signature (so its tail is the same) and changes its payload must be
    // compared in full and refused.
    let v = cached_verifier(CacheOptions::default());
    let good = token(T, T, T + 300, "free");
    v.verify(&good, at(T + 1)).unwrap();
    let [header, _, signature] = good.split('.').collect::<Vec<_>>()[..] else {
        unreachable!()
    };
    let richer = token(T, T, T + 300, "enterprise");
    let payload = richer.split('.').nth(1).unwrap();
    let forged = format!("{header}.{payload}.{signature}");
    assert_eq!(&forged[forged.len() - 32..], &good[good.len() - 32..]);
    let err = v.verify(&forged, at(T + 2)).unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::BadSignature);
    assert_eq!(
        v.verify(&good, at(T + 2)).unwrap().claims().plan(),
        Some("free")
    );
}

#[test]
fn the_cache_stays_within_its_entry_bound() {
    let v = cached_verifier(CacheOptions::default().max_entries(64));
    for i in 0..1_000 {
        v.verify(&token(T + i, T, T + 3_000, "pro"), at(T + 1_000))
            .unwrap();
        assert!(v.cached_tokens() <= 64, "{} entries", v.cached_tokens());
    }
    // Still answering correctly after evictions.
    let t = token(T, T, T + 3_000, "starter");
    assert_eq!(
        v.verify(&t, at(T + 1_000)).unwrap().claims().plan(),
        Some("starter")
    );
}

#[test]
fn the_cache_stays_within_its_byte_bound() {
    // Each entry counts the token and about twice its payload: a 4 KiB budget holds
    // only a few ~350-byte tokens.
    let v = cached_verifier(CacheOptions::default().max_bytes(4 * 1024));
    for i in 0..200 {
        v.verify(&token(T + i, T, T + 3_000, "pro"), at(T + 1_000))
            .unwrap();
    }
    let held = v.cached_tokens();
    assert!((1..=12).contains(&held), "{held} entries in 4 KiB");
}

#[test]
fn without_the_cache_nothing_is_stored() {
    let v = Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .token_cache(None)
        .build()
        .unwrap();
    let t = hs256(json!({ "plan": "pro" }));
    v.verify(&t, Utc::now()).unwrap();
    v.verify(&t, Utc::now()).unwrap();
    assert_eq!(v.cached_tokens(), 0);
}

/// Plans in tier order, `pro` first or last: the same name gets a different id in
/// each, so a part of the decision remembered from the other policy would be wrong.
fn two_plans(pro_first: bool) -> String {
    let (first, second) = if pro_first {
        ("pro: {}", "basic: { extends: pro, features: [export] }")
    } else {
        ("basic: {}", "pro: { extends: basic, features: [export] }")
    };
    format!(
        "version: 1\nplans:\n  {first}\n  {second}\ndefault_plan: {}\n\
         features:\n  export: {{}}\nroutes:\n  - {{ path: /export, require: export }}\n",
        if pro_first { "pro" } else { "basic" }
    )
}

/// The cache keeps what a token's claims resolve to under the policy that first
/// read them; after a reload the same cached token is decided by the new policy
/// (and by the old one again once it is back, compiled afresh).
#[tokio::test]
async fn a_cached_token_is_decided_by_the_policy_running_now() {
    use tower::{Layer, ServiceExt, service_fn};
    let dir = std::env::temp_dir().join(format!("tiergate-cache-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.yaml");
    std::fs::write(&path, two_plans(false)).unwrap();
    let store = tiergate::PolicyStore::open(&path).unwrap();
    let gate = tiergate::TierGate::builder()
        .store(store.clone())
        .verifier(cached_verifier(CacheOptions::default()))
        .build()
        .unwrap();
    let app = gate.layer().layer(service_fn(|_: http::Request<()>| async {
        // An empty body of a type the layer can write its denials in.
        Ok::<_, std::convert::Infallible>(http::Response::new(
            http_body_util::Full::<bytes::Bytes>::default(),
        ))
    }));
    let token = hs256(json!({ "plan": "pro" }));
    let request = || {
        http::Request::get("/export")
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .unwrap()
    };
    let status = |res: http::Response<_>| res.status().as_u16();
    assert_eq!(
        status(app.clone().oneshot(request()).await.unwrap()),
        200,
        "pro has export"
    );
    assert_eq!(
        status(app.clone().oneshot(request()).await.unwrap()),
        200,
        "and again from the cache"
    );
    assert_eq!(gate.verifier().cached_tokens(), 1);

    std::fs::write(&path, two_plans(true)).unwrap();
    store.reload().unwrap();
    assert_eq!(
        status(app.clone().oneshot(request()).await.unwrap()),
        403,
        "pro is now the lowest plan, without export"
    );
    assert_eq!(status(app.clone().oneshot(request()).await.unwrap()), 403);
    assert_eq!(
        gate.verifier().cached_tokens(),
        1,
        "the token stayed cached"
    );

    std::fs::write(&path, two_plans(false)).unwrap();
    store.reload().unwrap();
    assert_eq!(status(app.clone().oneshot(request()).await.unwrap()), 200);
    let _ = std::fs::remove_dir_all(&dir);
}
