//! Shared by the layer's integration tests: real keys, real tokens, real sockets.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use tiergate::token::Algorithm;

pub const ISSUER: &str = "https://auth.test";
pub const AUDIENCE: &str = "tiergate-test";
pub const SECRET: &[u8] = b"a test secret that is long enough, 48 bytes long";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/keys").join(name)).unwrap()
}

/// Every algorithm the verifier supports, with the test key that signs it.
pub const ALGORITHMS: [(Algorithm, &str); 12] = [
    (Algorithm::HS256, "hmac"),
    (Algorithm::HS384, "hmac"),
    (Algorithm::HS512, "hmac"),
    (Algorithm::RS256, "rsa"),
    (Algorithm::RS384, "rsa"),
    (Algorithm::RS512, "rsa"),
    (Algorithm::PS256, "rsa"),
    (Algorithm::PS384, "rsa"),
    (Algorithm::PS512, "rsa"),
    (Algorithm::ES256, "p256"),
    (Algorithm::ES384, "p384"),
    (Algorithm::EdDSA, "ed25519"),
];

/// The signing library's name for a tiergate algorithm (the two share names).
pub fn jwt(alg: Algorithm) -> jsonwebtoken::Algorithm {
    alg.name().parse().unwrap()
}

pub fn encoding_key(alg: Algorithm, name: &str) -> EncodingKey {
    if name == "hmac" {
        return EncodingKey::from_secret(SECRET);
    }
    let pem = key_file(&format!("{name}.pem"));
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem).unwrap(),
        _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
    }
}

/// The kid the test gates give each (algorithm, key) pair.
pub fn kid(alg: Algorithm, name: &str) -> String {
    format!("{name}-{alg:?}")
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A payload with valid registered claims and these subscription claims.
pub fn payload(claims: Value) -> Value {
    json!({
        "sub": "usr_1", "email": "ada@example.com", "iss": ISSUER, "aud": AUDIENCE,
        "iat": now(), "exp": now() + 300, "claims": claims,
    })
}

pub fn sign(alg: Algorithm, name: &str, payload: &Value) -> String {
    let mut header = Header::new(jwt(alg));
    header.kid = Some(kid(alg, name));
    jsonwebtoken::encode(&header, payload, &encoding_key(alg, name)).unwrap()
}

pub fn hs256(claims: Value) -> String {
    sign(Algorithm::HS256, "hmac", &payload(claims))
}

/// A token from raw header and payload JSON, signed with HS256 over exactly those bytes.
pub fn forge(header: &Value, payload: &Value, key: &[u8]) -> String {
    let msg = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let sig = jsonwebtoken::crypto::sign(
        msg.as_bytes(),
        &EncodingKey::from_secret(key),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{msg}.{sig}")
}

/// Serves an axum router on 127.0.0.1 (a random port) until the test ends.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A public JWK for a test key: Ed25519 (`OKP`) from the last 32 bytes of its SPKI.
pub fn ed25519_jwk(pub_pem_file: &str, kid: &str) -> Value {
    let pem = String::from_utf8(key_file(pub_pem_file)).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let x = &der[der.len() - 32..];
    json!({ "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(x), "kid": kid, "use": "sig", "alg": "EdDSA" })
}

pub fn sign_ed25519(private_pem_file: &str, kid: &str, payload: &Value) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_ed_pem(&key_file(private_pem_file)).unwrap();
    jsonwebtoken::encode(&header, payload, &key).unwrap()
}

/// The one skip policy for parts from outside Rust (PostgreSQL, Chromium and
/// chromedriver, test vectors in `../shared`): a test whose part is missing prints
/// one line saying what was skipped and how to enable it, and returns early — except
/// under `CI=true` or `TIERGATE_TEST_REQUIRE=all`, where a missing part fails the
/// test. Returns whether the test may go on.
pub fn outside_part(test: &str, part: &str, available: bool, how: &str) -> bool {
    if available {
        return true;
    }
    let required = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("TIERGATE_TEST_REQUIRE").is_ok_and(|v| v == "all");
    assert!(
        !required,
        "{test} needs {part}, which is not here (with CI=true or TIERGATE_TEST_REQUIRE=all a missing part fails): {how}"
    );
    // Written to the process's stderr directly: the test harness captures `eprintln!`
    // of a passing test, and a skip must be seen.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs {part}, which is not here; to run it: {how}"
    );
    false
}
