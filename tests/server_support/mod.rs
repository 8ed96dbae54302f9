//! The reference server's test harness, shared by the server test files: a server
//! on real sockets over SQLite (a temp file) or the machine's PostgreSQL
//! (127.0.0.1:5432, database `test`, a fresh schema per test).
#![allow(dead_code, unused_macros)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tiergate::server::RateLimits;
use tiergate::server::test_util::{self as server, Db};
use tiergate::server::{ServeOptions, Server};
use tiergate::token::Verifier;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Harness {
    pub api: String,
    pub demo: String,
    pub db: Db,
    pub url: String,
    pub issuer: String,
    pub client: (String, String),
    pub http: reqwest::Client,
}

/// Leftovers of runs more than an hour old are removed; younger ones may belong to
/// a run still going (another terminal, CI), so they stay.
pub const STALE_SECS: i64 = 3600;

pub async fn database_url(backend: Backend, name: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let unique = format!(
        "{name}_{now}_{}",
        server::random_id("t").trim_start_matches("t_")
    );
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("tiergate-server-tests");
            std::fs::create_dir_all(&dir).unwrap();
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok());
                if old.is_some_and(|age| age.as_secs() as i64 > STALE_SECS) {
                    std::fs::remove_file(entry.path()).ok();
                }
            }
            format!("sqlite://{}", dir.join(format!("{unique}.db")).display())
        }
        Backend::Postgres => {
            let base = postgres_base();
            let schema = format!("tg_{unique}");
            // A schema of its own, so tests never see each other's rows.
            sqlx::any::install_default_drivers();
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&base)
                .await
                .expect("PostgreSQL at TIERGATE_TEST_POSTGRES or 127.0.0.1:5432 (database test) is running");
            let names: Vec<(String,)> =
                sqlx::query_as("SELECT CAST(schema_name AS TEXT) FROM information_schema.schemata WHERE schema_name LIKE 'tg_%'")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            for (old,) in names {
                let created = old.rsplit('_').nth(1).and_then(|t| t.parse::<i64>().ok());
                if created.is_some_and(|t| now - t > STALE_SECS) {
                    sqlx::query(&format!("DROP SCHEMA IF EXISTS {old} CASCADE"))
                        .execute(&mut conn)
                        .await
                        .ok();
                }
            }
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&mut conn)
                .await
                .unwrap();
            format!("{base}?options=-c%20search_path%3D{schema}")
        }
    }
}

pub async fn start(backend: Backend, name: &str, limits: RateLimits) -> Harness {
    let url = database_url(backend, name).await;
    start_on(&url, limits).await
}

/// A server (with its demo app) on an existing database.
pub async fn start_on(url: &str, limits: RateLimits) -> Harness {
    start_with(url, limits, |_| {}).await
}

/// A server on an existing database, with options changed by `tweak`.
pub async fn start_with(
    url: &str,
    limits: RateLimits,
    tweak: impl FnOnce(&mut ServeOptions),
) -> Harness {
    let url = url.to_owned();
    let mut options = ServeOptions {
        policy: concat!(env!("CARGO_MANIFEST_DIR"), "/policies/saas.yaml").into(),
        database_url: url.clone(),
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        demo_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        token_ttl: Duration::from_secs(300),
        rate_limits: limits,
        ..ServeOptions::default()
    };
    tweak(&mut options);
    let server = Server::bind(options).await.unwrap();
    let api = format!("http://{}", server.addr());
    let demo = format!("http://{}", server.demo_addr().unwrap());
    let issuer = server.issuer().to_owned();
    tokio::spawn(server.run());
    let db = Db::connect(&url).await.unwrap();
    let client = server::create_client(&db, "tests").await.unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    Harness {
        api,
        demo,
        db,
        url,
        issuer,
        client,
        http,
    }
}

impl Harness {
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.api))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A GET with the test client's credentials as HTTP Basic.
    pub async fn get_as_client(&self, path: &str) -> reqwest::Response {
        let url = format!("{}{path}", self.api);
        let req = self
            .http
            .get(url)
            .basic_auth(&self.client.0, Some(&self.client.1));
        req.send().await.unwrap()
    }

    pub fn with_client(&self, mut body: Value) -> Value {
        body["client_id"] = json!(self.client.0);
        body["client_secret"] = json!(self.client.1);
        body
    }

    pub async fn set_claims(&self, email: &str, claims: Value) -> (u16, Value) {
        self.post(
            "/api/platform/claims",
            self.with_client(json!({ "email": email, "claims": claims })),
        )
        .await
    }

    pub async fn token_for(&self, email: &str) -> String {
        let (status, body) = self
            .post(
                "/api/platform/tokens",
                self.with_client(json!({ "email": email })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub fn verifier(&self) -> Verifier {
        Verifier::builder()
            .jwks_url(format!("{}/.well-known/jwks.json", self.api))
            .issuer(&self.issuer)
            .audience("tiergate-demo")
            .require_type("at+jwt")
            .build()
            .unwrap()
    }

    pub async fn demo(&self, method: reqwest::Method, path: &str, token: &str) -> (u16, Value) {
        let res = self
            .http
            .request(method, format!("{}{path}", self.demo))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if !super::postgres_ready(concat!("postgres::", stringify!($name))).await { return; }
                super::$name(super::Backend::Postgres).await
            })*
        }
    };
}

/// The PostgreSQL the tests use: `$TIERGATE_TEST_POSTGRES`, or the machine's.
pub fn postgres_base() -> String {
    std::env::var("TIERGATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Whether PostgreSQL answers; when it does not, the test is skipped with one line
/// (or fails, in CI: see `support::outside_part`).
pub async fn postgres_ready(test: &str) -> bool {
    static READY: tokio::sync::OnceCell<bool> = tokio::sync::OnceCell::const_new();
    let up = *READY
        .get_or_init(|| async {
            sqlx::any::install_default_drivers();
            let connect = <sqlx::AnyConnection as sqlx::Connection>::connect(&postgres_base());
            matches!(
                tokio::time::timeout(Duration::from_secs(3), connect).await,
                Ok(Ok(_))
            )
        })
        .await;
    crate::support::outside_part(
        test,
        "PostgreSQL",
        up,
        "start PostgreSQL on 127.0.0.1:5432 with a database `test` (trust auth), or set TIERGATE_TEST_POSTGRES=postgres://…",
    )
}

/// A harness's HTTP client with the test client's credentials in the body.
pub fn creds(h: &Harness) -> serde_json::Value {
    json!({ "client_id": h.client.0, "client_secret": h.client.1 })
}

/// Creates the admin `root@example.com`, signs in to the dashboard, and returns the
/// session cookie's `name=id` pair.
pub async fn admin_cookie(h: &Harness) -> String {
    server::create_admin(&h.db, "root@example.com", "a long admin password")
        .await
        .unwrap();
    let res = h
        .http
        .post(format!("{}/api/dashboard/login", h.api))
        .json(&json!({ "email": "root@example.com", "password": "a long admin password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let c = res.headers()["set-cookie"].to_str().unwrap();
    c.split(';').next().unwrap().to_owned()
}

impl Harness {
    /// `POST /oauth/token` (client credentials) with these credentials as HTTP Basic.
    pub fn oauth_request(&self, id: &str, secret: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/oauth/token", self.api))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
    }
}

/// A wrong sign-in whose `X-Forwarded-For` says `xff`; its status.
pub async fn login_forwarded(h: &Harness, xff: &str) -> u16 {
    h.http
        .post(format!("{}/api/auth/login", h.api))
        .header("x-forwarded-for", xff)
        .json(&json!({ "email": "a@example.com", "password": "guess guess" }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
