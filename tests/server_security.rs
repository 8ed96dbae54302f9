//! The claims server under attack: one test per finding of the outside security
//! review (issue 16), each reproducing the attack and asserting what happens now.
//! Storage-dependent findings run on SQLite and on PostgreSQL. The flood of finding
//! 1, which measures the process's memory, has a test binary of its own
//! (`tests/server_flood.rs`).

#[macro_use]
mod server_support;
mod support;

use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Value, json};
use server_support::*;
use tiergate::server::RateLimits;

on_both!(
    finding_2_claim_values_no_part_can_hold_are_refused_and_odd_stored_ones_never_panic,
    finding_3_setting_a_password_revokes_the_users_refresh_tokens,
    finding_5_look_alike_emails_are_refused_and_never_reach_another_account,
    clients_created_with_an_argon2_hash_keep_working_and_are_rehashed_on_first_use,
    finding_10_concurrent_refreshes_have_one_winner_and_reuse_revokes_only_its_family,
);

/// An HTTP client whose connections come from this loopback address.
fn client_from(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(addr.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn finding_2_claim_values_no_part_can_hold_are_refused_and_odd_stored_ones_never_panic(
    b: Backend,
) {
    let h = start(b, "values", RateLimits::off()).await;
    for bad in [
        json!(-8334601228800i64),
        json!(253402300801i64),
        json!("-1"),
        json!("10000-01-01"),
    ] {
        let (status, body) = h
            .set_claims("odd@example.com", json!({ "trial_ends": bad }))
            .await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["field"], "claims.trial_ends");
        assert!(
            body["detail"].as_str().unwrap().contains("9999-12-31"),
            "{body}"
        );
    }
    let (status, _) = h
        .set_claims("odd@example.com", json!({ "trial_ends": "9999-12-31" }))
        .await;
    assert_eq!(status, 200);

    // Rows that an older version or a hand edit left behind.
    let (_, weird) = h
        .set_claims("weird@example.com", json!({ "plan": "free" }))
        .await;
    let weird_id = weird["user_id"].as_str().unwrap().to_owned();
    h.db.overwrite_claims_text(
        &weird_id,
        r#"{"trial_ends": -8334601228800, "seats": -1, "roles": [1, null], "plan": 7}"#,
    )
    .await
    .unwrap();
    let (_, broken) = h
        .set_claims("broken@example.com", json!({ "plan": "free" }))
        .await;
    let broken_id = broken["user_id"].as_str().unwrap().to_owned();
    h.db.overwrite_claims_text(&broken_id, "not json {")
        .await
        .unwrap();

    let cookie = admin_cookie(&h).await;
    let get = |path: String| {
        h.http
            .get(format!("{}{path}", h.api))
            .header("cookie", &cookie)
            .send()
    };
    for path in [
        "/dashboard/users".to_owned(),
        "/api/dashboard/users".to_owned(),
        format!("/dashboard/users/{weird_id}"),
        format!("/api/dashboard/users/{weird_id}"),
        format!("/dashboard/users/{broken_id}"),
        format!("/api/dashboard/users/{broken_id}"),
    ] {
        let res = get(path.clone()).await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
    let page = get(format!("/dashboard/users/{broken_id}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("unreadable") && page.contains("not json {"),
        "{page}"
    );
    let list = get("/dashboard/users".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("unreadable claims"));

    // Nothing is written on top of unreadable claims, and no token is minted from them.
    let (status, body) = h
        .set_claims("broken@example.com", json!({ "seats": 2 }))
        .await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (409, Some("stored_claims_unreadable"))
    );
    let (status, _) = h
        .post(
            "/api/platform/tokens",
            h.with_client(json!({ "email": "broken@example.com" })),
        )
        .await;
    assert_eq!(status, 409);
    let res = get(format!("/api/dashboard/users/{broken_id}"))
        .await
        .unwrap();
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["user"]["claims_unreadable"], "not json {");
    assert_eq!(view["user"]["claims"], Value::Null);
    let stored = h.db.user_by_id(&broken_id).await.unwrap().unwrap();
    assert_eq!(stored.unreadable.as_deref(), Some("not json {"));
}

async fn finding_3_setting_a_password_revokes_the_users_refresh_tokens(b: Backend) {
    let h = start(b, "revoke", RateLimits::off()).await;
    let set = |password: &str| {
        h.with_client(json!({ "email": "pat@example.com", "claims": {}, "password": password }))
    };
    assert_eq!(
        h.post("/api/platform/claims", set("the old password"))
            .await
            .0,
        200
    );
    let (_, tokens) = h
        .post(
            "/api/auth/login",
            json!({ "email": "pat@example.com", "password": "the old password" }),
        )
        .await;
    let old_refresh = tokens["refresh_token"].clone();
    assert_eq!(
        h.post("/api/platform/claims", set("the new password"))
            .await
            .0,
        200
    );
    let (status, body) = h
        .post("/api/auth/refresh", json!({ "refresh_token": old_refresh }))
        .await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (401, Some("invalid_refresh_token"))
    );
    let (status, _) = h
        .post(
            "/api/auth/login",
            json!({ "email": "pat@example.com", "password": "the new password" }),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_4_failures_spend_their_own_budgets_and_never_a_valid_clients() {
    let h = start(Backend::Sqlite, "budgets", RateLimits::default()).await;
    let attacker = client_from("127.0.0.1");
    // 40 wrong sign-ins from this address: the address's sign-in budget (30) runs out.
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let res = attacker
            .post(format!("{}/api/auth/login", h.api))
            .json(&json!({ "email": "admin@example.com", "password": "guess guess" }))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // 70 wrong client secrets from this address: its failure budget (60) runs out.
    let mut limited = 0;
    for _ in 0..70 {
        let res = attacker
            .post(format!("{}/oauth/token", h.api))
            .basic_auth(&h.client.0, Some("wrong"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            limited += 1;
        }
    }
    assert!(limited > 0, "failures are limited");
    // The valid client on the same address: never refused.
    for _ in 0..5 {
        let res = attacker
            .post(format!("{}/oauth/token", h.api))
            .basic_auth(&h.client.0, Some(&h.client.1))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let res = attacker
            .post(format!("{}/api/platform/claims", h.api))
            .basic_auth(&h.client.0, Some(&h.client.1))
            .json(&json!({ "email": "paying@example.com", "claims": { "plan": "pro" } }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // One account: its own budget (10 a minute), whatever the addresses.
    let mut account = Vec::new();
    for i in 0..12 {
        let from = client_from(&format!("127.0.0.{}", 10 + i));
        let res = from
            .post(format!("{}/api/auth/login", h.api))
            .json(&json!({ "email": "target@example.com", "password": "guess guess" }))
            .send()
            .await
            .unwrap();
        account.push(res.status().as_u16());
    }
    assert_eq!(&account[..10], &[401; 10], "{account:?}");
    assert_eq!(&account[10..], &[429, 429], "{account:?}");
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_4_behind_a_trusted_proxy_the_forwarded_address_is_charged() {
    let mut limits = RateLimits::off();
    limits.sign_in_per_address = 2;
    let url = database_url(Backend::Sqlite, "proxy").await;
    let h = start_with(&url, limits, |o| {
        o.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    assert_eq!(login_forwarded(&h, "198.51.100.1").await, 401);
    assert_eq!(login_forwarded(&h, "198.51.100.1").await, 401);
    assert_eq!(login_forwarded(&h, "198.51.100.1").await, 429);
    assert_eq!(
        login_forwarded(&h, "198.51.100.2").await,
        401,
        "another client"
    );
    // A client cannot pick its budget by writing its own entry on the left.
    assert_eq!(login_forwarded(&h, "203.0.113.9, 198.51.100.1").await, 429);

    // From a peer that is not a trusted proxy the header changes nothing.
    let url = database_url(Backend::Sqlite, "noproxy").await;
    let h = start_with(&url, limits, |_| {}).await;
    assert_eq!(login_forwarded(&h, "198.51.100.1").await, 401);
    assert_eq!(login_forwarded(&h, "198.51.100.2").await, 401);
    assert_eq!(
        login_forwarded(&h, "198.51.100.3").await,
        429,
        "the peer's budget"
    );
}

async fn finding_5_look_alike_emails_are_refused_and_never_reach_another_account(b: Backend) {
    let h = start(b, "emails", RateLimits::off()).await;
    let kate = h.with_client(
        json!({ "email": "kate@example.com", "claims": {}, "password": "kate's password" }),
    );
    assert_eq!(h.post("/api/platform/claims", kate).await.0, 200);
    for bad in [
        "\u{212A}ate@example.com",  // Kelvin sign: lower-cases onto kate@
        "ka\u{200B}te@example.com", // zero-width space
        "k\u{0430}te@example.com",  // Cyrillic а among Latin letters
        "\u{FF4B}ate@example.com",  // fullwidth k
        "kate\u{0000}@example.com", // NUL
        "a@.",
        "kate@exa\u{0430}mple.com", // mixed-script domain
        "kate@@example.com",
    ] {
        let body = h.with_client(
            json!({ "email": bad, "claims": {}, "password": "the attacker's password" }),
        );
        let (status, res) = h.post("/api/platform/claims", body).await;
        assert_eq!(
            (status, res["field"].as_str()),
            (422, Some("email")),
            "{bad:?}: {res}"
        );
    }
    let (status, _) = h
        .post(
            "/api/auth/login",
            json!({ "email": "kate@example.com", "password": "kate's password" }),
        )
        .await;
    assert_eq!(status, 200, "Kate's password is still hers");
    // IDNA: the Unicode and the ASCII forms of one domain are one identity.
    let (_, a) = h.set_claims("ada@bücher.de", json!({ "seats": 1 })).await;
    let (_, b) = h
        .set_claims("ADA@xn--bcher-kva.de", json!({ "seats": 2 }))
        .await;
    assert_eq!(a["user_id"], b["user_id"]);
    assert_eq!(b["email"], "ada@xn--bcher-kva.de");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_6_machine_tokens_are_refused_on_user_routes() {
    let h = start(Backend::Sqlite, "machine", RateLimits::off()).await;
    let res = h
        .oauth_request(&h.client.0, &h.client.1)
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let machine = body["access_token"].as_str().unwrap();
    let (status, res) = h
        .demo(reqwest::Method::GET, "/api/dashboard", machine)
        .await;
    assert_eq!(
        (status, res["reason"].as_str()),
        (401, Some("wrong_audience")),
        "{res}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_7_claims_that_would_make_a_token_over_the_limit_are_refused() {
    let h = start(Backend::Sqlite, "large", RateLimits::off()).await;
    let key = "k".repeat(10_000);
    let (status, body) = h.set_claims("big@example.com", json!({ &key: 1 })).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], format!("claims.{key}"));
    // Many small claims that add up: refused too, naming the largest.
    let mut claims = serde_json::Map::new();
    for i in 0..200 {
        claims.insert(format!("c{i:03}"), json!("x".repeat(30 + i % 7)));
    }
    let (status, body) = h.set_claims("big@example.com", Value::Object(claims)).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("8192"), "{body}");
    // Up to the limit: minted, and the gated app takes it.
    let (status, _) = h
        .set_claims(
            "big@example.com",
            json!({ "plan": "pro", "notes": "n".repeat(5000) }),
        )
        .await;
    assert_eq!(status, 200);
    let token = h.token_for("big@example.com").await;
    assert!(token.len() <= tiergate::token::DEFAULT_MAX_TOKEN_BYTES);
    let (status, _) = h.demo(reqwest::Method::GET, "/api/dashboard", &token).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_8_two_client_authentication_methods_in_one_request_are_a_400() {
    let h = start(Backend::Sqlite, "twocreds", RateLimits::off()).await;
    for (basic_secret, body_secret) in [
        ("wrong", h.client.1.as_str()),
        (h.client.1.as_str(), "wrong"),
    ] {
        let res = h
            .http
            .post(format!("{}/api/platform/claims", h.api))
            .basic_auth(&h.client.0, Some(basic_secret))
            .json(&json!({
                "client_id": h.client.0, "client_secret": body_secret,
                "email": "x@example.com", "claims": {},
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(
            res.json::<Value>().await.unwrap()["reason"],
            "invalid_request"
        );
        let res = h
            .http
            .post(format!("{}/oauth/token", h.api))
            .basic_auth(&h.client.0, Some(basic_secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", h.client.0.as_str()),
                ("client_secret", body_secret),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(
            res.json::<Value>().await.unwrap()["error"],
            "invalid_request"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_9_dashboard_pages_and_json_carry_the_security_headers() {
    let h = start(Backend::Sqlite, "headers", RateLimits::off()).await;
    let cookie = admin_cookie(&h).await;
    for path in [
        "/dashboard/login",
        "/dashboard/users",
        "/api/dashboard/users",
    ] {
        for with_cookie in [false, true] {
            let mut req = h.http.get(format!("{}{path}", h.api));
            if with_cookie {
                req = req.header("cookie", &cookie);
            }
            let res = req.send().await.unwrap();
            let hd = res.headers();
            let csp = hd["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
            assert!(
                !csp.contains("unsafe-inline") && !csp.contains("script-src"),
                "{csp}"
            );
            assert_eq!(hd["x-frame-options"], "DENY");
            assert_eq!(hd["referrer-policy"], "no-referrer");
            assert_eq!(hd["x-content-type-options"], "nosniff");
            assert_eq!(hd["cache-control"], "no-store", "{path}");
        }
    }
    let page = h
        .http
        .get(format!("{}/dashboard/login", h.api))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("<script") && !page.contains("<style"),
        "no inline code"
    );
    let css = h
        .http
        .get(format!("{}/dashboard/style.css", h.api))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_10_the_smaller_items() {
    let h = start(Backend::Sqlite, "smaller", RateLimits::off()).await;
    // A 401 from the dashboard's JSON has no Basic challenge (no browser prompt);
    // the platform API, which takes Basic, still has one.
    let res = h
        .http
        .get(format!("{}/api/dashboard/users", h.api))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(!res.headers().contains_key("www-authenticate"));
    let res = h
        .http
        .get(format!("{}/api/platform/claims?email=a@example.com", h.api))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );

    // Paging is bounded; query errors are problem+json naming the parameter.
    let cookie = admin_cookie(&h).await;
    let get = |path: &str| {
        h.http
            .get(format!("{}{path}", h.api))
            .header("cookie", &cookie)
            .send()
    };
    let res = get("/api/dashboard/users?page=9223372036854775807")
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["page"], 1_000_000);
    assert_eq!(
        get("/dashboard/users?page=9223372036854775807")
            .await
            .unwrap()
            .status(),
        200
    );
    for path in [
        "/api/dashboard/users?page=abc",
        "/dashboard/users?page=99999999999999999999",
    ] {
        let res = get(path).await.unwrap();
        assert_eq!(res.status(), 400, "{path}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["field"], "page", "{body}");
    }

    // `role` and `roles` in one request: which one? Neither: a 422.
    let (status, body) = h
        .set_claims(
            "r@example.com",
            json!({ "role": "admin", "roles": ["member"] }),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("claims.roles"))
    );
}

async fn finding_10_concurrent_refreshes_have_one_winner_and_reuse_revokes_only_its_family(
    b: Backend,
) {
    let url = database_url(b, "families").await;
    let h = start_with(&url, RateLimits::off(), |o| {
        o.refresh_race_grace = Duration::from_millis(1500);
    })
    .await;
    let body = h.with_client(
        json!({ "email": "fam@example.com", "claims": {}, "password": "a long password" }),
    );
    assert_eq!(h.post("/api/platform/claims", body).await.0, 200);
    let login = || {
        h.post(
            "/api/auth/login",
            json!({ "email": "fam@example.com", "password": "a long password" }),
        )
    };
    let (_, phone) = login().await;
    let (_, laptop) = login().await;
    // Two refreshes of the phone's token at the same moment: one wins, and the
    // loser does not revoke the winner's new token.
    let refresh = |t: Value| h.post("/api/auth/refresh", json!({ "refresh_token": t }));
    let (a, b) = tokio::join!(
        refresh(phone["refresh_token"].clone()),
        refresh(phone["refresh_token"].clone())
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 401], "{a:?} {b:?}");
    let winner = if a.0 == 200 { a.1 } else { b.1 };
    let (status, next) = refresh(winner["refresh_token"].clone()).await;
    assert_eq!(status, 200, "the winner's token survived the race: {next}");

    // Past the grace, reuse of an old phone token revokes the phone's family only.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (status, body) = refresh(phone["refresh_token"].clone()).await;
    assert_eq!(status, 401);
    assert!(
        body["detail"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    let (status, _) = refresh(next["refresh_token"].clone()).await;
    assert_eq!(status, 401, "the phone's family is revoked");
    let (status, _) = refresh(laptop["refresh_token"].clone()).await;
    assert_eq!(status, 200, "the laptop's sign-in is another family");
}

/// Issue 15: clients made before secrets were keyed hashes have an argon2id hash;
/// their first successful call re-hashes it, and every call keeps working.
async fn clients_created_with_an_argon2_hash_keep_working_and_are_rehashed_on_first_use(
    b: Backend,
) {
    let h = start(b, "legacy", RateLimits::off()).await;
    let secret = tiergate::server::test_util::random_secret();
    let old = tiergate::server::test_util::hash_now(&secret);
    h.db.insert_client("cli_legacy", "made by 0.1", &old)
        .await
        .unwrap();
    let call = |secret: String| h.oauth_request("cli_legacy", &secret).send();
    assert_eq!(call("wrong".into()).await.unwrap().status(), 401);
    assert_eq!(
        h.db.client_secret_hash("cli_legacy")
            .await
            .unwrap()
            .as_deref(),
        Some(old.as_str()),
        "a failed call re-hashes nothing"
    );
    assert_eq!(call(secret.clone()).await.unwrap().status(), 200);
    let new =
        h.db.client_secret_hash("cli_legacy")
            .await
            .unwrap()
            .unwrap();
    assert!(new.starts_with("hmac-sha256$"), "{new}");
    assert_eq!(call(secret).await.unwrap().status(), 200);
    assert_eq!(call("wrong".into()).await.unwrap().status(), 401);
}
