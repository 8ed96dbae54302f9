//! Finding 1 of the security review (issue 16): a flood of wrong client secrets and
//! wrong passwords from four addresses, each under its own rate limits. Before,
//! every attempt ran argon2id on its own blocking thread with 19 MiB: 2.2 GB resident
//! and a valid client waiting 3.8 s. Now client secrets are a keyed hash and
//! password hashing is bounded, so this test holds the process's peak memory under
//! 256 MB and a valid client's latency during the flood under 1 s. It has a test
//! binary of its own: the peak (`VmHWM`) is the whole process's.
//!
//! `cargo test --features server --test server_flood -- --nocapture` prints the figures.

#[macro_use]
mod server_support;
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use server_support::*;
use tiergate::server::RateLimits;

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_1_a_flood_of_wrong_secrets_and_passwords_keeps_memory_bounded_and_valid_clients_fast()
 {
    let h = start(Backend::Sqlite, "flood", RateLimits::default()).await;
    let body = h.with_client(
        json!({ "email": "user@example.com", "claims": {}, "password": "the right password" }),
    );
    assert_eq!(h.post("/api/platform/claims", body).await.0, 200);
    let before_kb = status_kb("VmRSS:");
    let mut worst_valid = Duration::ZERO;
    let mut answers = std::collections::BTreeMap::<u16, usize>::new();
    // One HTTP client per attacking address (connections come from 127.0.0.2–5).
    let attackers: Vec<reqwest::Client> = (0..4)
        .map(|i| {
            reqwest::Client::builder()
                .local_address(
                    format!("127.0.0.{}", 2 + i)
                        .parse::<std::net::IpAddr>()
                        .unwrap(),
                )
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap()
        })
        .collect();
    for _burst in 0..2 {
        let mut flood = Vec::new();
        for i in 0..112 {
            let from = attackers[i % 4].clone();
            let api = h.api.clone();
            let client_id = h.client.0.clone();
            flood.push(tokio::spawn(async move {
                let res = if i % 2 == 0 {
                    from.post(format!("{api}/oauth/token"))
                        .form(&[
                            ("grant_type", "client_credentials"),
                            ("client_id", client_id.as_str()),
                            ("client_secret", "wrong"),
                        ])
                        .send()
                        .await
                } else {
                    from.post(format!("{api}/api/auth/login"))
                        // A different account each time: past the per-account budget,
                        // so the hashing bound itself is what holds.
                        .json(&json!({ "email": format!("user{i}@example.com"), "password": "a wrong guess" }))
                        .send()
                        .await
                };
                res.map(|r| r.status().as_u16()).unwrap_or(0)
            }));
        }
        // A valid client from one of the flooding addresses, during the flood.
        for _ in 0..5 {
            let t = Instant::now();
            let res = h
                .oauth_request(&h.client.0, &h.client.1)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            worst_valid = worst_valid.max(t.elapsed());
        }
        for f in flood {
            *answers.entry(f.await.unwrap()).or_default() += 1;
        }
    }
    let peak_mb = status_kb("VmHWM:") / 1024;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_mb = status_kb("VmRSS:") / 1024;
    eprintln!(
        "flood: 2 × 112 requests from 4 addresses; answers {answers:?}; resident before {} MB, \
         peak {peak_mb} MB, after {idle_mb} MB; a valid client's slowest call {} ms",
        before_kb / 1024,
        worst_valid.as_millis()
    );
    assert!(
        !answers.contains_key(&0),
        "every request was answered: {answers:?}"
    );
    assert!(!answers.contains_key(&500), "{answers:?}");
    assert!(peak_mb < 256, "peak resident memory {peak_mb} MB");
    assert!(
        worst_valid < Duration::from_secs(1),
        "valid client waited {worst_valid:?}"
    );
}
