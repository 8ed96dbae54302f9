//! The floor the claims server's load benchmark (`benches/server_load.sh`) is held
//! to, measured in the same run: what the database and the signing key can do with
//! nothing of the server around them.
//!
//! - `writes`: the SQL of one claims merge (claim the user row, lock and read it,
//!   update it, append the audit entry) as bare sqlx transactions from N tasks, on the
//!   same kind of pool the server writes through (SQLite: WAL, one writer connection,
//!   as any SQLite writer must be; PostgreSQL: 16 connections, `FOR UPDATE`).
//! - `mint-user`, `mint-machine`: what a token mint must do, bare, from N tasks: its
//!   SQL (the client's secret hash; for a user token, the user's row) and an Ed25519
//!   signature of the token (jsonwebtoken over aws-lc-rs, as the server signs).
//! - `sign`: bare Ed25519 signing alone, on every core (a reference figure).
//!
//! ```sh
//! cargo run --release --features server --example server_floor -- writes sqlite:///tmp/f.db 64 5
//! cargo run --release --features server --example server_floor -- sign - 64 5
//! ```
//! Prints one JSON line: `{"what", "per_sec", "p50_ms", "p99_ms", "errors"}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, latencies: &mut [f64], errors: usize, elapsed: Duration) {
    latencies.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "what": what,
            "per_sec": latencies.len() as f64 / elapsed.as_secs_f64(),
            "p50_ms": percentile(latencies, 0.50),
            "p99_ms": percentile(latencies, 0.99),
            "errors": errors,
        })
    );
}

/// Runs `op` in a loop on `tasks` tasks for `seconds`, timing each call; reports
/// the throughput, latency percentiles and failures as `what`.
async fn run_tasks<F, Fut>(what: &str, tasks: usize, seconds: u64, op: F)
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), sqlx::Error>> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (stop, op) = (stop.clone(), op.clone());
            tokio::spawn(async move {
                let (mut lat, mut errors, mut n) = (Vec::new(), 0usize, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let began = Instant::now();
                    match op(t, n).await {
                        Ok(()) => lat.push(began.elapsed().as_secs_f64() * 1000.0),
                        Err(_) => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut all, mut errors) = (Vec::new(), 0);
    for h in handles {
        let (lat, e) = h.await.expect("task");
        all.extend(lat);
        errors += e;
    }
    report(what, &mut all, errors, start.elapsed());
}

async fn writes(url: &str, tasks: usize, seconds: u64) {
    // The server's own connect makes the file (same mode, pragmas) and the schema.
    tiergate::server::create_client(url, "floor-writes")
        .await
        .expect("database");
    sqlx::any::install_default_drivers();
    let sqlite = url.starts_with("sqlite:");
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(if sqlite { 1 } else { 16 })
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    sqlx::query("PRAGMA busy_timeout = 10000")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA synchronous = NORMAL")
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .expect("pool");
    run_tasks("writes", tasks, seconds, move |t, n| {
        let pool = pool.clone();
        let email = format!("floor{t}-{}@example.com", n % 1000);
        async move {
            let mut tx = if sqlite {
                pool.begin_with("BEGIN IMMEDIATE").await?
            } else {
                pool.begin().await?
            };
            let now = chrono::Utc::now().timestamp_millis();
            sqlx::query("INSERT INTO users (id, email, claims, created_at, updated_at, claims_version) VALUES ($1, $2, '{}', $3, $3, 0) ON CONFLICT (email) DO NOTHING")
                .bind(format!("usr_{t}_{n}"))
                .bind(&email)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let lock = if sqlite { "" } else { " FOR UPDATE" };
            let row = sqlx::query(&format!("SELECT id, email, claims, password_hash, updated_at, claims_version FROM users WHERE email = $1{lock}"))
                .bind(&email)
                .fetch_one(&mut *tx)
                .await?;
            let id: String = sqlx::Row::try_get(&row, "id")?;
            let claims = json!({ "plan": "pro", "seats": n }).to_string();
            sqlx::query("UPDATE users SET claims = $1, password_hash = $2, updated_at = $3, claims_version = $4 WHERE id = $5")
                .bind(&claims)
                .bind(None::<String>)
                .bind(now)
                .bind(n as i64)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO audit (id, user_id, actor, before_claims, after_claims, at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(format!("aud_{t}_{n}"))
                .bind(&id)
                .bind("client:floor")
                .bind("{}")
                .bind(&claims)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
    })
    .await;
}

/// What a token mint must do, bare: its SQL and its signature, from `tasks` tasks.
async fn mints(what: &str, url: &str, tasks: usize, seconds: u64) {
    use aws_lc_rs::signature::Ed25519KeyPair;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let (client_id, _) = tiergate::server::create_client(url, "floor")
        .await
        .expect("client");
    sqlx::any::install_default_drivers();
    let sqlite = url.starts_with("sqlite:");
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(if sqlite { 8 } else { 16 })
        .connect(url)
        .await
        .expect("pool");
    sqlx::query("INSERT INTO users (id, email, claims, created_at, updated_at, claims_version) VALUES ('usr_floor', 'floor@example.com', '{\"plan\":\"pro\"}', 0, 0, 0) ON CONFLICT DO NOTHING")
        .execute(&pool)
        .await
        .expect("user");
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
    let key = EncodingKey::from_ed_der(pkcs8.as_ref());
    let user = what == "mint-user";
    run_tasks(what, tasks, seconds, move |_, _| {
        let (pool, key, client_id) = (pool.clone(), key.clone(), client_id.clone());
        async move {
            let row = sqlx::query("SELECT secret_hash FROM clients WHERE id = $1")
                .bind(&client_id)
                .fetch_optional(&pool)
                .await?;
            let _hash: Option<String> = row.map(|r| sqlx::Row::try_get(&r, "secret_hash")).transpose()?;
            let claims = if user {
                let row = sqlx::query("SELECT id, email, claims, password_hash, updated_at, claims_version FROM users WHERE email = $1")
                    .bind("floor@example.com")
                    .fetch_one(&pool)
                    .await?;
                let text: String = sqlx::Row::try_get(&row, "claims")?;
                serde_json::from_str(&text).unwrap_or_default()
            } else {
                json!({})
            };
            let mut header = Header::new(Algorithm::EdDSA);
            header.typ = Some("at+jwt".into());
            header.kid = Some("k20261201000000-abcdef".into());
            let now = chrono::Utc::now().timestamp();
            let payload = json!({
                "iss": "http://127.0.0.1:8080", "aud": "tiergate-demo", "sub": "usr_floor",
                "email": "floor@example.com", "claims": claims,
                "iat": now, "exp": now + 300, "jti": "0123456789abcdef01234567",
            });
            jsonwebtoken::encode(&header, &payload, &key).expect("sign");
            Ok(())
        }
    })
    .await;
}

fn sign(seconds: u64) {
    use aws_lc_rs::signature::Ed25519KeyPair;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
    let key = EncodingKey::from_ed_der(pkcs8.as_ref());
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let key = key.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let began = Instant::now();
                    let mut header = Header::new(Algorithm::EdDSA);
                    header.typ = Some("at+jwt".into());
                    header.kid = Some("k20261201000000-abcdef".into());
                    let now = chrono::Utc::now().timestamp();
                    let payload = json!({
                        "iss": "http://127.0.0.1:8080", "aud": "tiergate-demo", "sub": format!("usr_{n:024x}"),
                        "email": "bench@example.com", "claims": { "plan": "pro", "seats": "5" },
                        "iat": now, "exp": now + 300, "jti": format!("{n:024x}"),
                    });
                    let _token = jsonwebtoken::encode(&header, &payload, &key).expect("sign");
                    lat.push(began.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.join().expect("thread"));
    }
    report("sign", &mut all, 0, start.elapsed());
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map_or("writes", String::as_str);
    let url = args
        .get(2)
        .map_or("sqlite:///tmp/tiergate-floor.db", String::as_str);
    let tasks = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(64);
    let seconds = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(5);
    match what {
        "sign" => sign(seconds),
        "mint-user" | "mint-machine" => mints(what, url, tasks, seconds).await,
        _ => writes(url, tasks, seconds).await,
    }
}
