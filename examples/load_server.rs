//! The server `benches/load.sh` puts under load: a small app on 127.0.0.1, with or
//! without the tiergate layer. Prints one line with a token for the chosen mode.
//!
//! ```text
//! cargo run --release --example load_server -- MODE PORT POLICY_FILE
//! ```
//!
//! MODE: `plain` (no layer), `hs256`, `hs256-nocache`, `eddsa` (with the token
//! cache), `eddsa-nocache`, and `hs256-feed`: `hs256` following a claims-change
//! feed (served by this process on PORT+1) that holds 10,000 changed subjects —
//! the caller's among them, changed before its token was minted — and publishes 20
//! more changes a second while the load runs; `hs256-metrics`: `hs256` with a
//! Prometheus recorder installed (the page rendered every 5 s, as a scrape would).
//! Each new active policy revision is printed to stderr.

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
        "plain" | "hs256" | "hs256-nocache" | "hs256-feed" | "hs256-metrics" => (
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
    if mode == "hs256-metrics" {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                handle.run_upkeep();
                eprintln!("scraped {} bytes", handle.render().len());
            }
        });
    }
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
        let mut builder = TierGate::builder()
            .policy_file(policy)
            .watch(Some(watch))
            .verifier(verifier);
        if mode == "hs256-feed" {
            let port: u16 = port.parse()?;
            let feed = feed::serve(port.saturating_add(1), now).await?;
            builder = builder.claims_changes(tiergate::ClaimsChanges::new(feed));
        }
        let gate = builder.build()?;
        if mode == "hs256-feed" {
            // The steady state: every change already published has been applied.
            while gate.claims_changes_status()[0].subjects < feed::INITIAL {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
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

/// A claims-change feed for the load test: HS256-signed SETs, long-polled.
mod feed {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::extract::State;
    use axum::routing::get;
    use axum::{Json, Router};
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::{Value, json};

    /// Subjects changed before the load starts (the caller's among them).
    pub const INITIAL: usize = 10_000;

    type Sets = Arc<Mutex<Vec<String>>>;

    fn set(sub: &str, at: i64, i: usize) -> String {
        let payload = json!({
            "iss": super::ISS, "aud": super::AUD, "iat": at, "jti": format!("e{i}"),
            "sub_id": { "format": "iss_sub", "iss": super::ISS, "sub": sub },
            "events": { "https://schemas.openid.net/secevent/caep/event-type/token-claims-change":
                { "event_timestamp": at, "changed_claims": ["plan"] } },
        });
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("secevent+jwt".into());
        jsonwebtoken::encode(&header, &payload, &EncodingKey::from_secret(super::SECRET))
            .unwrap_or_default()
    }

    async fn page(State(sets): State<Sets>, uri: axum::http::Uri) -> Json<Value> {
        let after: usize = uri
            .query()
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix("after="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        for _ in 0..200 {
            if sets.lock().map(|s| s.len() > after).unwrap_or(true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Only the page is copied out (not every SET so far: that would be the
        // feed's cost, not the gate's).
        let (page, end, total) = match sets.lock() {
            Ok(all) => {
                let end = all.len().min(after.saturating_add(1000));
                let page: serde_json::Map<String, Value> = (after..end)
                    .filter_map(|i| all.get(i).map(|s| (format!("e{i}"), json!(s))))
                    .collect();
                (page, end, all.len())
            }
            Err(_) => (serde_json::Map::new(), after, after),
        };
        Json(
            json!({ "sets": page, "moreAvailable": end < total, "cursor": end.to_string(), "window_seconds": 3600 }),
        )
    }

    /// Serves the feed on `port`; returns its URL.
    pub async fn serve(port: u16, now: i64) -> Result<String, Box<dyn std::error::Error>> {
        let mut initial: Vec<String> = (0..INITIAL - 1)
            .map(|i| set(&format!("usr_{i:024x}"), now - 60, i))
            .collect();
        // The caller's own change, before its token was minted.
        initial.push(set("usr_8f2a41", now - 100, INITIAL - 1));
        let sets: Sets = Arc::new(Mutex::new(initial));
        let writer = sets.clone();
        tokio::spawn(async move {
            let mut i = INITIAL;
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let at = chrono::Utc::now().timestamp();
                if let Ok(mut s) = writer.lock() {
                    s.push(set(&format!("usr_live_{i}"), at, i));
                }
                i += 1;
            }
        });
        let app = Router::new().route("/feed", get(page)).with_state(sets);
        let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(format!("http://127.0.0.1:{port}/feed"))
    }
}
