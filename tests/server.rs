//! The reference claims server over real sockets, on SQLite (a temp file) and on the
//! machine's PostgreSQL (127.0.0.1:5432, database `test`, a fresh schema per test).

#[macro_use]
mod server_support;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use server_support::*;
use tiergate::server::RateLimits;
use tiergate::server::test_util::{self as server, Db};
use tiergate::server::{ServeOptions, Server};

on_both!(
    claims_are_set_merged_and_removed,
    invalid_claims_and_bodies_name_the_field,
    an_idempotency_key_replays_the_first_response,
    wrong_credentials_look_the_same_whether_or_not_the_client_exists,
    minted_tokens_carry_the_stored_claims_and_verify_with_the_jwks,
    refresh_picks_up_changed_claims_and_a_reused_refresh_token_fails,
    rotated_keys_keep_old_tokens_valid_and_sign_new_ones_with_the_new_kid,
    the_demo_app_gates_exactly_as_the_policy_says,
    machine_tokens_follow_rfc_6749,
    dashboard_sessions_are_strict_and_rotate,
    dashboard_api_finds_edits_and_previews_users,
);

async fn claims_are_set_merged_and_removed(b: Backend) {
    let h = start(b, "merge", RateLimits::off()).await;
    let (status, body) = h
        .set_claims(
            "Ada@Example.com",
            json!({ "plan": "free", "seats": "5", "team": "red" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], "ada@example.com");
    assert!(body["user_id"].as_str().unwrap().starts_with("usr_"));
    let (_, body) = h
        .set_claims("ada@example.com", json!({ "plan": "pro", "team": null }))
        .await;
    assert_eq!(body["claims"], json!({ "plan": "pro", "seats": "5" }));

    let res = h
        .get_as_client("/api/platform/claims?email=ada@example.com")
        .await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        res.json::<Value>().await.unwrap()["claims"],
        json!({ "plan": "pro", "seats": "5" })
    );

    let res = h
        .get_as_client("/api/platform/audit?email=ada@example.com")
        .await;
    let audit: Value = res.json().await.unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["actor"], format!("client:{}", h.client.0));
    assert_eq!(
        entries[0]["before"],
        json!({ "plan": "free", "seats": "5", "team": "red" })
    );
    assert_eq!(entries[0]["after"], json!({ "plan": "pro", "seats": "5" }));
}

async fn invalid_claims_and_bodies_name_the_field(b: Backend) {
    let h = start(b, "invalid", RateLimits::off()).await;
    let cases = [
        (
            json!({ "plan": "prp" }),
            "claims.plan",
            "did you mean `pro`?",
        ),
        (
            json!({ "role": "owner" }),
            "claims.role",
            "unknown role `owner`",
        ),
        (
            json!({ "trial_ends": "soon" }),
            "claims.trial_ends",
            "a date",
        ),
        (json!({ "seats": -1 }), "claims.seats", "whole number"),
        (json!({ "seats": "five" }), "claims.seats", "whole number"),
        (
            json!({ "features": ["sso", "ssso"] }),
            "claims.features",
            "unknown feature `ssso`",
        ),
        (
            json!({ "features": [7] }),
            "claims.features",
            "a feature is a string",
        ),
    ];
    for (claims, field, hint) in cases {
        let (status, body) = h.set_claims("bob@example.com", claims.clone()).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some(field)),
            "{claims}: {body}"
        );
        assert!(body["detail"].as_str().unwrap().contains(hint), "{body}");
    }
    let (status, body) = h
        .post(
            "/api/platform/claims",
            h.with_client(json!({ "email": "bob@example.com", "claims": {}, "colour": 1 })),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("colour")),
        "{body}"
    );
    let (status, body) = h
        .post(
            "/api/platform/claims",
            h.with_client(json!({ "claims": {} })),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("email")),
        "{body}"
    );
    let (status, body) = h.set_claims("not-an-email", json!({})).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("email")),
        "{body}"
    );
    let res = h
        .http
        .post(format!("{}/api/platform/claims", h.api))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let huge = json!({ "email": "bob@example.com", "claims": { "x": "y".repeat(100_000) } });
    let (status, _) = h.post("/api/platform/claims", h.with_client(huge)).await;
    assert_eq!(status, 413);
    // Nothing was stored by any of these.
    assert!(
        h.db.user_by_email("bob@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

async fn an_idempotency_key_replays_the_first_response(b: Backend) {
    let h = start(b, "idem", RateLimits::off()).await;
    let body = h.with_client(json!({ "email": "cy@example.com", "claims": { "plan": "starter" } }));
    let send = |body: Value| {
        h.http
            .post(format!("{}/api/platform/claims", h.api))
            .header("idempotency-key", "evt_123")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let again = send(body.clone()).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let user = h.db.user_by_email("cy@example.com").await.unwrap().unwrap();
    assert_eq!(
        h.db.audit(&user.id).await.unwrap().len(),
        1,
        "the replay changed nothing"
    );

    let mut other = body.clone();
    other["claims"]["plan"] = json!("pro");
    let res = send(other).await.unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>().await.unwrap()["reason"],
        "idempotency_key_reused"
    );
}

async fn wrong_credentials_look_the_same_whether_or_not_the_client_exists(b: Backend) {
    let h = start(b, "creds", RateLimits::off()).await;
    let claims = json!({ "email": "d@example.com", "claims": {} });
    let mut wrong_secret = claims.clone();
    wrong_secret["client_id"] = json!(h.client.0);
    wrong_secret["client_secret"] = json!("nope");
    let mut no_client = claims.clone();
    no_client["client_id"] = json!("cli_doesnotexist");
    no_client["client_secret"] = json!("nope");
    let (s1, b1) = h.post("/api/platform/claims", wrong_secret).await;
    let (s2, b2) = h.post("/api/platform/claims", no_client).await;
    assert_eq!((s1, &b1), (s2, &b2));
    assert_eq!(s1, 401);
    assert_eq!(b1["reason"], "invalid_client");
    let (s3, b3) = h.post("/api/platform/claims", claims).await;
    assert_eq!((s3, b3["reason"].as_str()), (401, Some("invalid_client")));
}

async fn minted_tokens_carry_the_stored_claims_and_verify_with_the_jwks(b: Backend) {
    let h = start(b, "mint", RateLimits::off()).await;
    h.set_claims(
        "eve@example.com",
        json!({ "plan": "pro", "role": "admin", "trial_ends": "2026-04-15", "seats": "5" }),
    )
    .await;
    let token = h.token_for("eve@example.com").await;
    let verified = h
        .verifier()
        .verify_fetching(&token, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(verified.email(), Some("eve@example.com"));
    assert_eq!(verified.claims().plan(), Some("pro"));
    assert_eq!(verified.claims().seats(), Some(5));
    assert!(verified.subject().unwrap().starts_with("usr_"));
    assert!(verified.get("jti").is_some());
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert!(header.kid.is_some());

    let (status, _) = h
        .post(
            "/api/platform/tokens",
            h.with_client(json!({ "email": "nobody@example.com" })),
        )
        .await;
    assert_eq!(status, 404);
    let oidc: Value = h
        .http
        .get(format!("{}/.well-known/openid-configuration", h.api))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        oidc["jwks_uri"],
        format!("{}/.well-known/jwks.json", h.issuer)
    );
}

async fn refresh_picks_up_changed_claims_and_a_reused_refresh_token_fails(b: Backend) {
    // Reuse within the race grace is refused without revoking; past it, reuse revokes
    // the family (tests/server_security.rs covers the grace itself).
    let url = database_url(b, "refresh").await;
    let h = start_with(&url, RateLimits::off(), |o| {
        o.refresh_race_grace = Duration::from_millis(0)
    })
    .await;
    let body = h.with_client(json!({ "email": "fay@example.com", "claims": { "plan": "free" }, "password": "a long password" }));
    assert_eq!(h.post("/api/platform/claims", body).await.0, 200);
    let (status, bad) = h
        .post(
            "/api/auth/login",
            json!({ "email": "fay@example.com", "password": "wrong password" }),
        )
        .await;
    assert_eq!(
        (status, bad["reason"].as_str()),
        (401, Some("invalid_credentials"))
    );
    let (status, nobody) = h
        .post(
            "/api/auth/login",
            json!({ "email": "nobody@example.com", "password": "wrong password" }),
        )
        .await;
    assert_eq!(
        (status, &nobody),
        (401, &bad),
        "no hint whether the account exists"
    );

    let (status, tokens) = h
        .post(
            "/api/auth/login",
            json!({ "email": "fay@example.com", "password": "a long password" }),
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let v = h.verifier();
    let first = v
        .verify_fetching(tokens["access_token"].as_str().unwrap(), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(first.claims().plan(), Some("free"));

    h.set_claims("fay@example.com", json!({ "plan": "starter" }))
        .await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, next) = h
        .post("/api/auth/refresh", json!({ "refresh_token": refresh }))
        .await;
    assert_eq!(status, 200, "{next}");
    let second = v
        .verify_fetching(next["access_token"].as_str().unwrap(), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(second.claims().plan(), Some("starter"));
    assert_ne!(next["refresh_token"], tokens["refresh_token"], "rotated");

    let (status, body) = h
        .post("/api/auth/refresh", json!({ "refresh_token": refresh }))
        .await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (401, Some("invalid_refresh_token"))
    );
    // Reuse revoked the whole family, including the token issued after it.
    let (status, _) = h
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": next["refresh_token"] }),
        )
        .await;
    assert_eq!(status, 401);
}

async fn rotated_keys_keep_old_tokens_valid_and_sign_new_ones_with_the_new_kid(b: Backend) {
    let h = start(b, "rotate", RateLimits::off()).await;
    h.set_claims("gus@example.com", json!({ "plan": "pro" }))
        .await;
    let old = h.token_for("gus@example.com").await;
    let old_kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();
    let new_kid = tiergate::server::rotate_keys(&h.url).await.unwrap();
    // The server re-reads its keys at most a second later.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new = h.token_for("gus@example.com").await;
    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid.unwrap(),
        new_kid
    );

    let jwks: Value = h
        .http
        .get(format!("{}/.well-known/jwks.json", h.api))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );
    let v = h.verifier();
    v.verify_fetching(&old, chrono::Utc::now()).await.unwrap();
    v.verify_fetching(&new, chrono::Utc::now()).await.unwrap();
}

async fn the_demo_app_gates_exactly_as_the_policy_says(b: Backend) {
    use reqwest::Method;
    let h = start(b, "demo", RateLimits::off()).await;
    h.set_claims("hal@example.com", json!({ "plan": "free" }))
        .await;
    let free = h.token_for("hal@example.com").await;
    let (status, body) = h.demo(Method::GET, "/api/dashboard", &free).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["entitlements"]["plan"], "free");
    assert_eq!(body["rule"]["pattern"], "/api/dashboard");
    let (status, body) = h.demo(Method::POST, "/api/reports/export", &free).await;
    assert_eq!(
        (status, body["reason"].as_str(), body["upgrade_to"].as_str()),
        (403, Some("feature_not_in_plan"), Some("starter"))
    );
    let (status, body) = h.demo(Method::GET, "/api/dashboard", "garbage").await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (401, Some("malformed_token"))
    );

    // The upgrade reaches the user's next token.
    h.set_claims("hal@example.com", json!({ "plan": "starter" }))
        .await;
    let starter = h.token_for("hal@example.com").await;
    let (status, body) = h.demo(Method::POST, "/api/reports/export", &starter).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["entitlements"]["plan"], "starter");
    let (status, _) = h.demo(Method::GET, "/api/sso/config", &starter).await;
    assert_eq!(status, 403);
}

async fn machine_tokens_follow_rfc_6749(b: Backend) {
    let h = start(b, "oauth", RateLimits::off()).await;
    let res = h
        .oauth_request(&h.client.0, &h.client.1)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let machine = body["access_token"].as_str().unwrap();
    // RFC 9068: `sub` is the client; the audience is the machine one, so a verifier
    // for user tokens refuses it and one that opts in accepts it.
    let refused = h
        .verifier()
        .verify_fetching(machine, chrono::Utc::now())
        .await
        .unwrap_err();
    assert_eq!(refused.kind().code(), "wrong_audience", "{refused}");
    let t = tiergate::token::Verifier::builder()
        .jwks_url(format!("{}/.well-known/jwks.json", h.api))
        .issuer(&h.issuer)
        .audience("tiergate-demo:machine")
        .require_type("at+jwt")
        .build()
        .unwrap()
        .verify_fetching(machine, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(t.subject(), Some(h.client.0.as_str()));

    let res = h
        .http
        .post(format!("{}/oauth/token", h.api))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let res = h
        .http
        .post(format!("{}/oauth/token", h.api))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "x"),
            ("client_secret", "y"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_rate_limited_before_any_hashing() {
    let mut limits = RateLimits::off();
    limits.sign_in_per_address = 3;
    let h = start(Backend::Sqlite, "ratelimit", limits).await;
    for _ in 0..3 {
        let (status, _) = h
            .post(
                "/api/auth/login",
                json!({ "email": "x@example.com", "password": "whatever1" }),
            )
            .await;
        assert_eq!(status, 401);
    }
    let res = h
        .http
        .post(format!("{}/api/auth/login", h.api))
        .json(&json!({ "email": "x@example.com", "password": "whatever1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    // The keys stay readable: only the sensitive endpoints are limited.
    let res = h
        .http
        .get(format!("{}/.well-known/jwks.json", h.api))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[allow(dead_code)]
#[path = "../examples/stripe_webhook.rs"]
mod stripe_webhook;

/// Signs a payload the way Stripe does.
fn stripe_signature(secret: &str, payload: &str, t: i64) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, format!("{t}.{payload}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_subscription_event_sets_the_claims_once() {
    let h = start(Backend::Sqlite, "stripe", RateLimits::off()).await;
    let secret = "whsec_test_secret";
    let hook = std::sync::Arc::new(stripe_webhook::Webhook {
        endpoint_secret: secret.into(),
        claims_api: h.api.clone(),
        client_id: h.client.0.clone(),
        client_secret: h.client.1.clone(),
        http: h.http.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/stripe", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, stripe_webhook::router(hook))
            .await
            .unwrap()
    });

    let event = json!({
        "id": "evt_1", "type": "customer.subscription.updated",
        "data": { "object": {
            "status": "trialing", "trial_end": 1_800_000_000i64, "metadata": { "email": "ivy@example.com" },
            "items": { "data": [{ "quantity": 4, "price": { "lookup_key": "pro" } }] },
        }},
    })
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let send = |sig: String| {
        h.http
            .post(&url)
            .header("stripe-signature", sig)
            .body(event.clone())
            .send()
    };

    let res = send(stripe_signature(secret, &event, now)).await.unwrap();
    assert_eq!(res.status(), 200);
    let user =
        h.db.user_by_email("ivy@example.com")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        Value::Object(user.claims.clone()),
        json!({ "plan": "pro", "seats": 4, "trial_ends": 1_800_000_000i64 })
    );
    // Stripe retries: the same event changes nothing more.
    assert_eq!(
        send(stripe_signature(secret, &event, now))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(h.db.audit(&user.id).await.unwrap().len(), 1);

    for bad in [
        stripe_signature("whsec_wrong", &event, now),
        stripe_signature(secret, &event, now - 3600),
        "t=1".into(),
    ] {
        assert_eq!(send(bad).await.unwrap().status(), 400);
    }
}

/// `tiergate serve` reloads its policy on SIGHUP and says which revision is active.
#[cfg(unix)]
#[test]
fn serve_reloads_the_policy_on_sighup() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = std::env::temp_dir().join(format!("tiergate-sighup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, tiergate::EXAMPLE_POLICY).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tiergate"))
        .args(["serve", "--addr", "127.0.0.1:0", "--policy"])
        .arg(&policy)
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.join("hup.db").display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_line = || lines.next().expect("serve exited").unwrap();
    while !next_line().contains("policy:") {}

    let edited = format!("{}\n# edited\n", tiergate::EXAMPLE_POLICY);
    std::fs::write(&policy, &edited).unwrap();
    let new_revision = tiergate::Policy::from_yaml(&edited)
        .unwrap()
        .revision()
        .to_string();
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let line = loop {
        let line = next_line();
        if line.starts_with("SIGHUP:") {
            break line;
        }
    };
    child.kill().ok();
    child.wait().ok();
    std::fs::remove_dir_all(&dir).ok();
    // Whichever came first, the watcher or the signal, the edited file is now active.
    assert!(line.contains(&new_revision), "{line}");
}

/// Signs in to the dashboard; returns the `Set-Cookie` header and the `name=id` pair.
async fn dashboard_login(h: &Harness, email: &str, password: &str) -> (u16, Option<String>) {
    let res = h
        .http
        .post(format!("{}/api/dashboard/login", h.api))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap();
    let cookie = res
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), cookie)
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn dashboard_sessions_are_strict_and_rotate(b: Backend) {
    let h = start(b, "session", RateLimits::off()).await;
    server::create_admin(&h.db, "root@example.com", "a long admin password")
        .await
        .unwrap();

    let (wrong, _) = dashboard_login(&h, "root@example.com", "wrong password").await;
    let (nobody, _) = dashboard_login(&h, "nobody@example.com", "wrong password").await;
    assert_eq!((wrong, nobody), (401, 401));

    let (status, cookie) = dashboard_login(&h, "Root@Example.com", "a long admin password").await;
    assert_eq!(status, 200);
    let cookie = cookie.unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(cookie.starts_with("tiergate_session="), "{cookie}");
    let first = pair(&cookie);
    let users = |c: String| {
        h.http
            .get(format!("{}/api/dashboard/users", h.api))
            .header("cookie", c)
            .send()
    };
    assert_eq!(users(first.clone()).await.unwrap().status(), 200);
    assert_eq!(
        h.http
            .get(format!("{}/api/dashboard/users", h.api))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // Signing in again gives a new id; the old one stops working.
    let res = h
        .http
        .post(format!("{}/api/dashboard/login", h.api))
        .header("cookie", first.clone())
        .json(&json!({ "email": "root@example.com", "password": "a long admin password" }))
        .send()
        .await
        .unwrap();
    let second = pair(res.headers()["set-cookie"].to_str().unwrap());
    assert_ne!(first, second);
    assert_eq!(users(first).await.unwrap().status(), 401);
    assert_eq!(users(second.clone()).await.unwrap().status(), 200);

    // A cross-site state change is refused, whatever the cookie.
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let res = h
            .http
            .put(format!("{}/api/dashboard/users/x/claims", h.api))
            .header("cookie", second.clone())
            .header(name, value)
            .json(&json!({ "claims": { "plan": "enterprise" } }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{name}: {value}");
    }

    // Signing out ends the session.
    let res = h
        .http
        .post(format!("{}/api/dashboard/logout", h.api))
        .header("cookie", second.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(users(second).await.unwrap().status(), 401);
}

async fn dashboard_api_finds_edits_and_previews_users(b: Backend) {
    let h = start(b, "dashapi", RateLimits::off()).await;
    server::create_admin(&h.db, "root@example.com", "a long admin password")
        .await
        .unwrap();
    let (_, cookie) = dashboard_login(&h, "root@example.com", "a long admin password").await;
    let cookie = pair(&cookie.unwrap());
    for i in 0..25 {
        h.set_claims(
            &format!("user{i:02}@example.com"),
            json!({ "plan": "free" }),
        )
        .await;
    }
    h.set_claims(
        "ada@example.com",
        json!({ "plan": "free", "trial_ends": "2026-04-15", "seats": "3" }),
    )
    .await;
    let get = |path: String| {
        h.http
            .get(format!("{}{path}", h.api))
            .header("cookie", cookie.clone())
            .send()
    };

    let list: Value = get("/api/dashboard/users?search=USER&page=2".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (list["total"].as_i64(), list["pages"].as_i64()),
        (Some(25), Some(2))
    );
    assert_eq!(list["users"].as_array().unwrap().len(), 5);
    assert_eq!(list["users"][0]["email"], "user20@example.com");
    let list: Value = get("/api/dashboard/users?search=ada".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ada = &list["users"][0];
    assert_eq!(
        (ada["email"].as_str(), ada["seats"].as_u64()),
        (Some("ada@example.com"), Some(3))
    );
    let id = ada["id"].as_str().unwrap().to_owned();

    // Access on the trial's last day, and the day after.
    let during: Value = get(format!("/api/dashboard/users/{id}?at=2026-04-15"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(during["entitlements"]["plan"], "pro");
    let after: Value = get(format!("/api/dashboard/users/{id}?at=2026-04-16"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["entitlements"]["plan"], "free");
    assert_eq!(after["entitlements"]["trial"]["state"], "expired");

    let put = |body: Value| {
        h.http
            .put(format!("{}/api/dashboard/users/{id}/claims", h.api))
            .header("cookie", cookie.clone())
            .json(&body)
            .send()
    };
    let res = put(json!({ "claims": { "seats": -1 } })).await.unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(res.json::<Value>().await.unwrap()["field"], "claims.seats");
    let res = put(json!({ "claims": { "plan": "starter", "seats": 5 } }))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let view: Value = get(format!("/api/dashboard/users/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["user"]["claims"]["plan"], "starter");
    assert_eq!(view["audit"][0]["actor"], "admin:root@example.com");
    assert_eq!(view["audit"][0]["after"]["seats"], 5);

    // The list filtered by each user's plan and trial under the running policy, now.
    let list = |path: &'static str| {
        let get = &get;
        async move {
            get(path.into())
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let starter = list("/api/dashboard/users?plan=starter").await;
    assert_eq!(starter["total"], 1, "{starter}");
    assert_eq!(starter["users"][0]["email"], "ada@example.com");
    let expired = list("/api/dashboard/users?trial=expired").await;
    assert_eq!(expired["total"], 1, "{expired}");
    let free = list("/api/dashboard/users?plan=free&trial=none&search=user&page=2").await;
    assert_eq!(
        (free["total"].as_i64(), free["pages"].as_i64()),
        (Some(25), Some(2))
    );
    assert_eq!(free["users"].as_array().unwrap().len(), 5);
    assert_eq!(free["users"][0]["email"], "user20@example.com");
    assert_eq!(list("/api/dashboard/users?plan=pro").await["total"], 0);
    // The policy page's content: users per plan now, every plan listed in tier order.
    let policy = list("/api/dashboard/policy").await;
    assert_eq!(
        policy["users_per_plan"],
        json!([["free", 25], ["starter", 1], ["pro", 0], ["enterprise", 0]]),
        "{policy}"
    );
    assert_eq!(policy["matrix"]["plans"][0], "free");
    assert_eq!(policy["trials_ending"], json!([]));
    assert!(policy["last_rejected"].is_null());

    let res = h
        .http
        .post(format!("{}/api/dashboard/users", h.api))
        .header("cookie", cookie.clone())
        .json(&json!({ "email": "new@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(
        h.db.user_by_email("new@example.com")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_sessions_end_after_the_idle_and_the_absolute_timeout() {
    use tiergate::server::SessionConfig;
    for (idle, absolute) in [
        (Duration::from_millis(1500), Duration::from_secs(3600)),
        (Duration::from_secs(3600), Duration::from_millis(1500)),
    ] {
        let url = database_url(Backend::Sqlite, "timeouts").await;
        let server = Server::bind(ServeOptions {
            policy: concat!(env!("CARGO_MANIFEST_DIR"), "/policies/saas.yaml").into(),
            database_url: url.clone(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            rate_limits: RateLimits::off(),
            sessions: SessionConfig {
                idle,
                absolute,
                secure: false,
            },
            ..ServeOptions::default()
        })
        .await
        .unwrap();
        let api = format!("http://{}", server.addr());
        tokio::spawn(server.run());
        let db = Db::connect(&url).await.unwrap();
        server::create_admin(&db, "root@example.com", "a long admin password")
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let res = http
            .post(format!("{api}/api/dashboard/login"))
            .json(&json!({ "email": "root@example.com", "password": "a long admin password" }))
            .send()
            .await
            .unwrap();
        let cookie = pair(res.headers()["set-cookie"].to_str().unwrap());
        let users = || {
            http.get(format!("{api}/api/dashboard/users"))
                .header("cookie", cookie.clone())
                .send()
        };
        assert_eq!(
            users().await.unwrap().status(),
            200,
            "idle {idle:?}, absolute {absolute:?}"
        );
        // Used again within the idle time: still valid (unless the absolute limit is near).
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(users().await.unwrap().status(), 200);
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(
            users().await.unwrap().status(),
            401,
            "idle {idle:?}, absolute {absolute:?}"
        );
    }
}
