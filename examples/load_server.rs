//! The server `benches/load.sh` puts under load: a small app on 127.0.0.1, with or
//! without the tiergate layer. Prints one line with a token for the chosen mode.
//!
//! ```text
//! cargo run --release --example load_server -- MODE PORT POLICY_FILE
//! ```
//!
//! MODE: `plain` (no layer), `hs256`, `hs256-nocache`, `eddsa` (with the token
//! cache), `eddsa-nocache`. Each new active policy revision is printed to stderr.

use axum::Router;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tiergate::TierGate;
use tiergate::token::{CacheOptions, Verifier};

const SECRET: &[u8] = b"a load-test secret that is long enough, 48 bytes";
const ISS: &str = "http://127.0.0.1:8080";
const AUD: &str = "tiergate-demo";

fn key(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).expect("test keys")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, port, policy] = &args[..] else {
        return Err("usage: load_server MODE PORT POLICY_FILE".into());
    };
    let now = chrono::Utc::now().timestamp();
    let payload = json!({
        "sub": "usr_8f2a41", "email": "ada@example.com", "iss": ISS, "aud": AUD,
        "iat": now, "exp": now + 3600, "jti": "b7d1e0f4a9c2",
        "claims": { "plan": "pro", "role": "admin", "trial_ends": "2026-04-15", "seats": "5" },
    });
    let (alg, encoding, verifier) = match mode.as_str() {
        "plain" | "hs256" | "hs256-nocache" => (
            Algorithm::HS256,
            EncodingKey::from_secret(SECRET),
            Verifier::builder().hmac_secret(tiergate::token::Algorithm::HS256, SECRET),
        ),
        "eddsa" | "eddsa-nocache" => (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(&key("ed25519.pem"))?,
            Verifier::builder()
                .public_key_pem(tiergate::token::Algorithm::EdDSA, key("ed25519.pub.pem")),
        ),
        other => return Err(format!("unknown mode {other}").into()),
    };
    let cache = (!mode.ends_with("-nocache")).then(CacheOptions::default);
    let verifier = verifier
        .issuer(ISS)
        .audience(AUD)
        .token_cache(cache)
        .build()?;
    let token = jsonwebtoken::encode(&Header::new(alg), &payload, &encoding)?;

    let app = Router::new()
        .route("/api/dashboard", get(|| async { "dashboard" }))
        .route(
            "/api/reports/export",
            axum::routing::post(|| async { "csv" }),
        );
    let app = if mode == "plain" {
        app
    } else {
        // A short debounce, so each of the load test's rewrites (one every ~90 ms)
        // becomes a new active revision instead of one burst.
        let watch = tiergate::WatchOptions {
            debounce: std::time::Duration::from_millis(20),
            ..Default::default()
        };
        let gate = TierGate::builder()
            .policy_file(policy)
            .watch(Some(watch))
            .verifier(verifier)
            .build()?;
        // One stderr line per new active revision, so the load test can count reloads.
        let mut revisions = gate.store().subscribe();
        tokio::spawn(async move {
            while revisions.changed().await.is_ok() {
                eprintln!("revision {}", *revisions.borrow());
            }
        });
        app.layer(gate.layer())
    };
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("{token}");
    axum::serve(listener, app).await?;
    Ok(())
}
