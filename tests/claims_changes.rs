//! Fresh claims, end to end: the reference server publishes each change to a user
//! on its claims-change feed, and the gated demo app (which follows it, as
//! `tiergate serve` wires it) refuses a token minted before the change with 401
//! `claims_changed` — within 2 seconds at the 99th percentile over 50 changes, and
//! never refusing a token minted after one. The same with two instances on one
//! database, the change written through the other instance.

#[macro_use]
mod server_support;
mod support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use server_support::*;
use tiergate::server::RateLimits;

on_both!(
    a_changed_users_old_token_is_refused_within_two_seconds,
    a_change_through_another_instance_reaches_the_gated_app,
    a_reused_refresh_token_revokes_the_access_tokens_of_its_user,
    the_feed_is_authenticated_validated_and_says_no_claim_values,
    the_feed_long_polls_and_answers_when_a_change_commits,
);

const CHANGES: usize = 50;

/// The server's and the follower's logs, shown when a test fails: why a change
/// was late (a feed that failed, keys that could not be fetched) is in them.
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("tiergate::claims_changes=debug,tiergate::server=info,tiergate::jwks=info")
        .with_test_writer()
        .try_init();
}

/// How long `old` takes to be refused by `gate`'s demo app after the change that
/// was just written, polling every 10 ms for at most 5 s.
async fn time_to_refusal(gate: &Harness, old: &str, since: Instant) -> Duration {
    loop {
        let (status, body) = gate.demo(reqwest::Method::GET, "/api/dashboard", old).await;
        if status == 401 {
            assert_eq!(body["reason"], "claims_changed", "{body}");
            return since.elapsed();
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "the old token was still accepted 5 s after the change"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Writes `CHANGES` changes through `writer` (alternating seats, so every token is
/// allowed on `/api/dashboard` by the plan), each time checking that the token
/// minted before it is refused by `gate` and a token minted after it is accepted.
/// Returns the times to refusal, sorted.
async fn run_changes(writer: &Harness, gate: &Harness) -> Vec<Duration> {
    logs();
    let email = "ada@example.com";
    let (status, body) = writer
        .set_claims(email, json!({ "plan": "free", "seats": "1" }))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut times = Vec::with_capacity(CHANGES);
    for i in 0..CHANGES {
        let old = writer.token_for(email).await;
        let (status, body) = gate
            .demo(reqwest::Method::GET, "/api/dashboard", &old)
            .await;
        assert_eq!(
            status, 200,
            "a fresh token is accepted before the change: {body}"
        );
        let seats = (i % 2 + 2).to_string();
        let (status, body) = writer.set_claims(email, json!({ "seats": seats })).await;
        assert_eq!(status, 200, "{body}");
        let since = Instant::now();
        times.push(time_to_refusal(gate, &old, since).await);
        // A token minted after the change is accepted, every time (same second as
        // the change or not: it carries the new claims version).
        let new = writer.token_for(email).await;
        let (status, body) = gate
            .demo(reqwest::Method::GET, "/api/dashboard", &new)
            .await;
        assert_eq!(
            status, 200,
            "a token minted after change {i} was refused: {body}"
        );
        assert_eq!(
            body["entitlements"]["seats"],
            json!(seats.parse::<u32>().unwrap())
        );
    }
    times.sort();
    times
}

fn p99(times: &[Duration]) -> Duration {
    let i = (times.len() * 99).div_ceil(100).saturating_sub(1);
    times[i]
}

async fn a_changed_users_old_token_is_refused_within_two_seconds(b: Backend) {
    let h = start(b, "fresh_one", RateLimits::off()).await;
    let times = run_changes(&h, &h).await;
    println!(
        "{b:?}, one instance: {CHANGES} changes, refused after median {:?}, p99 {:?}, max {:?}",
        times[CHANGES / 2],
        p99(&times),
        times[CHANGES - 1]
    );
    assert!(p99(&times) <= Duration::from_secs(2), "{times:?}");
}

async fn a_change_through_another_instance_reaches_the_gated_app(b: Backend) {
    let url = database_url(b, "fresh_two").await;
    // Two instances of one deployment: one issuer name (behind one load balancer).
    let issuer = |o: &mut tiergate::server::ServeOptions| {
        o.issuer = Some("https://claims.example.test".into());
    };
    let gate = start_with(&url, RateLimits::off(), issuer).await;
    let writer = start_with(&url, RateLimits::off(), issuer).await;
    let times = run_changes(&writer, &gate).await;
    println!(
        "{b:?}, two instances: {CHANGES} changes written through the other, refused after median {:?}, p99 {:?}, max {:?}",
        times[CHANGES / 2],
        p99(&times),
        times[CHANGES - 1]
    );
    assert!(p99(&times) <= Duration::from_secs(2), "{times:?}");
}

async fn a_reused_refresh_token_revokes_the_access_tokens_of_its_user(b: Backend) {
    let url = database_url(b, "fresh_refresh").await;
    let h = start_with(&url, RateLimits::off(), |o| {
        o.refresh_race_grace = Duration::ZERO;
    })
    .await;
    let email = "grace@example.com";
    let body = h.with_client(json!({
        "email": email, "claims": { "plan": "pro" }, "password": "a long enough password"
    }));
    let (status, body) = h.post("/api/platform/claims", body).await;
    assert_eq!(status, 200, "{body}");
    let (status, login) = h
        .post(
            "/api/auth/login",
            json!({ "email": email, "password": "a long enough password" }),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let first_refresh = login["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) = h
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": first_refresh }),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let access = rotated["access_token"].as_str().unwrap().to_owned();
    let (status, _) = h
        .demo(reqwest::Method::GET, "/api/dashboard", &access)
        .await;
    assert_eq!(status, 200);
    // The first refresh token again, after the race grace: stolen. Its family is
    // revoked, and the access tokens it minted are refused by the gated app.
    let (status, reused) = h
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": first_refresh }),
        )
        .await;
    assert_eq!(status, 401, "{reused}");
    let since = Instant::now();
    let took = time_to_refusal(&h, &access, since).await;
    assert!(took <= Duration::from_secs(2), "{took:?}");
    // The feed says why: a CAEP session-revoked event.
    let feed: Value = h
        .get_as_client("/api/platform/claims-changes")
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<String> = feed["sets"]
        .as_object()
        .unwrap()
        .values()
        .map(|set| {
            let p = payload(set.as_str().unwrap());
            p["events"]
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .clone()
        })
        .collect();
    assert!(
        kinds.iter().any(|k| k.ends_with("/session-revoked")),
        "{kinds:?}"
    );
}

/// A SET's payload, unverified (the layer's tests verify them; here we read).
fn payload(set: &str) -> Value {
    let part = set.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn the_feed_is_authenticated_validated_and_says_no_claim_values(b: Backend) {
    let h = start(b, "feed_api", RateLimits::off()).await;
    let feed = format!("{}/api/platform/claims-changes", h.api);
    let res = h.http.get(&feed).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = h
        .http
        .get(&feed)
        .basic_auth(&h.client.0, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    for (query, field) in [
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("wait=31", "wait"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
    ] {
        let res = h
            .get_as_client(&format!("/api/platform/claims-changes?{query}"))
            .await;
        assert!(res.status().is_client_error(), "{query}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    let (_, user) = h
        .set_claims("lin@example.com", json!({ "plan": "pro", "seats": "7" }))
        .await;
    let (_, _) = h
        .set_claims("lin@example.com", json!({ "plan": "starter" }))
        .await;
    // Changes are numbered just after they commit: wait until the second is.
    let _ = h
        .get_as_client("/api/platform/claims-changes?after=1&wait=5")
        .await;
    let res = h
        .get_as_client("/api/platform/claims-changes?limit=1")
        .await;
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["moreAvailable"], true, "{page}");
    assert_eq!(page["cursor"], "1");
    assert_eq!(page["window_seconds"], 360);
    let res = h
        .get_as_client("/api/platform/claims-changes?after=1")
        .await;
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["moreAvailable"], false, "{page}");
    assert_eq!(page["cursor"], "2");
    let sets = page["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 1);
    let set = sets["chg-2"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(set.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "secevent+jwt");
    assert_eq!(header["alg"], "EdDSA");
    let p = payload(set);
    assert_eq!(p["iss"], h.issuer.as_str());
    assert_eq!(p["sub_id"]["sub"], user["user_id"]);
    assert_eq!(p["sub_id"]["format"], "iss_sub");
    let event =
        &p["events"]["https://schemas.openid.net/secevent/caep/event-type/token-claims-change"];
    assert_eq!(event["claims_version"], 2);
    assert_eq!(event["changed_claims"], json!(["plan"]));
    assert_eq!(event["initiating_entity"], "system");
    // Names, never values: no reader of the feed learns anyone's plan.
    assert!(!p.to_string().contains("starter"), "{p}");
    // A cursor from a reset database starts over; the OpenID configuration
    // advertises the feed.
    let page: Value = h
        .get_as_client("/api/platform/claims-changes?after=99")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["cursor"], "2", "{page}");
    let config: Value = h
        .http
        .get(format!("{}/.well-known/openid-configuration", h.api))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["claims_changes_endpoint"], format!("{feed}"));
    // Past the window the changes are dropped (bounded storage); a reader behind
    // them is moved on to the newest number, with nothing to apply.
    let dropped =
        h.db.prune_changes(tiergate::server::test_util::now_ms() + 1)
            .await
            .unwrap();
    assert_eq!(dropped, 2);
    let page: Value = h
        .get_as_client("/api/platform/claims-changes?after=0")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&page["sets"], &page["cursor"]),
        (&json!({}), &json!("2")),
        "{page}"
    );
}

async fn the_feed_long_polls_and_answers_when_a_change_commits(b: Backend) {
    let h = start(b, "feed_poll", RateLimits::off()).await;
    let (_, _) = h
        .set_claims("mo@example.com", json!({ "plan": "pro" }))
        .await;
    // Numbered (just after its commit) before the wait for the next one starts.
    let _ = h
        .get_as_client("/api/platform/claims-changes?after=0&wait=5")
        .await;
    let started = Instant::now();
    let waiting = h.get_as_client("/api/platform/claims-changes?after=1&wait=20");
    let write = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        h.set_claims("mo@example.com", json!({ "plan": "free" }))
            .await
    };
    let (res, (status, _)) = tokio::join!(waiting, write);
    assert_eq!(status, 200);
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["cursor"], "2", "{page}");
    // Answered by the change, not by the 20 s bound.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // With nothing new, `wait=1` answers empty after about a second.
    let page: Value = h
        .get_as_client("/api/platform/claims-changes?after=2&wait=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["sets"], json!({}));
    assert_eq!(page["cursor"], "2");
}
