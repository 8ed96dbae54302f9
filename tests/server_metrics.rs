//! `tiergate serve --metrics-addr`: the Prometheus page, apart from the API, with
//! the server's counters (claims changes, tokens minted, authentication failures,
//! rate-limited requests, latency per route) and the demo app's decisions. One test
//! in its own binary: it installs the process's global recorder.

#[macro_use]
mod server_support;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use server_support::*;
use tiergate::server::test_util as server;
use tiergate::server::{RateLimits, ServeOptions, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_page_counts_what_the_server_and_the_demo_app_did() {
    let url = database_url(Backend::Sqlite, "metrics").await;
    let mut limits = RateLimits::off();
    limits.failed_auth_per_client = 2;
    let options = ServeOptions {
        policy: concat!(env!("CARGO_MANIFEST_DIR"), "/policies/saas.yaml").into(),
        database_url: url.clone(),
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        demo_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        rate_limits: limits,
        ..ServeOptions::default()
    };
    let server = Server::bind(options).await.unwrap();
    let api = format!("http://{}", server.addr());
    let demo = format!("http://{}", server.demo_addr().unwrap());
    let page = format!("http://{}/metrics", server.metrics_addr().unwrap());
    tokio::spawn(server.run());
    let db = server::Db::connect(&url).await.unwrap();
    let (id, secret) = server::create_client(&db, "tests").await.unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{api}{path}"))
            .basic_auth(&id, Some(&secret))
            .json(&body)
            .send()
    };
    let res = post(
        "/api/platform/claims",
        json!({ "email": "ada@example.com", "claims": { "plan": "free" } }),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let res = post(
        "/api/platform/tokens",
        json!({ "email": "ada@example.com" }),
    )
    .await
    .unwrap();
    let token = res.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path, want) in [
        (reqwest::Method::GET, "/api/dashboard", 200),
        (reqwest::Method::POST, "/api/reports/export", 403),
    ] {
        let res = http
            .request(method, format!("{demo}{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), want);
    }
    // Three wrong secrets: two failures counted, then the client's budget is spent.
    for _ in 0..3 {
        http.get(format!("{api}/api/platform/claims?email=ada@example.com"))
            .basic_auth(&id, Some("wrong"))
            .send()
            .await
            .unwrap();
    }
    let text = http.get(&page).send().await.unwrap().text().await.unwrap();
    let has = |line: &str| {
        assert!(
            text.lines().any(|l| l == line),
            "no line `{line}` in:\n{text}"
        )
    };
    has(r#"tiergate_server_claims_changes_total{kind="claims"} 1"#);
    has(r#"tiergate_server_tokens_minted_total{kind="user"} 1"#);
    has(r#"tiergate_server_auth_failures_total{kind="client"} 3"#);
    has(r#"tiergate_server_rate_limited_total{limit="failed_auth_client"} 1"#);
    has(
        r#"tiergate_decisions_total{outcome="denied",reason="feature_not_in_plan",rule="/api/reports/export",plan="free",feature="reports.export",upgrade_to="starter"} 1"#,
    );
    has(
        r#"tiergate_decisions_total{outcome="allowed",reason="granted",rule="/api/dashboard",plan="free",feature="dashboard",upgrade_to=""} 1"#,
    );
    has(r#"tiergate_token_verifications_total{result="ok",alg="EdDSA"} 1"#);
    has(r#"tiergate_jwks_fetches_total{outcome="ok"} 1"#);
    assert!(
        text.lines().any(|l| l.starts_with(
            r#"tiergate_server_request_duration_seconds_count{route="/api/platform/claims",method="POST",status="2xx"}"#
        )),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with(r#"tiergate_policy_info{revision=""#) && l.ends_with(" 1")),
        "{text}"
    );
    // The API's own port has no metrics page.
    let res = http.get(format!("{api}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404);
}
