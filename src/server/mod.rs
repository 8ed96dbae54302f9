//! The reference claims-issuing server (feature `server`): sets a user's claims
//! (client credentials, e.g. after a Stripe webhook, or an admin in the dashboard at
//! `/dashboard`), issues the signed access tokens, publishes its keys — on SQLite by
//! default, PostgreSQL by URL.
//!
//! ```no_run
//! use tiergate::server::{ServeOptions, Server};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind(ServeOptions {
//!     demo_addr: Some("127.0.0.1:3000".parse()?),
//!     ..ServeOptions::default()
//! })
//! .await?;
//! println!("claims API on http://{}", server.addr());
//! server.run().await?;
//! # Ok(()) }
//! ```

// The server's rooms are its own: users configure it through `ServeOptions` and
// run it through `Server`; nothing else of it is public (see `test_util`).
mod access_token;
mod api;
mod claims_feed;
mod claims_form;
mod client_addr;
mod client_auth;
mod dashboard_api;
mod dashboard_layout;
mod dashboard_ops;
mod dashboard_pages;
mod db;
mod demo;
mod input;
mod limits;
mod problem;
mod prometheus;
mod secrets;
mod session;
mod signing;
mod state;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use db::DbError;
pub use input::normalize_email;
pub use limits::RateLimits;
pub use session::SessionConfig;

use db::Db;
use secrets::random_id;

use crate::token::Verifier;
use crate::{PolicyStore, TierGate, WatchOptions};

/// How `tiergate serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The policy file (hot-reloaded; SIGHUP reloads it too).
    pub policy: PathBuf,
    /// `sqlite://tiergate.db` (default; created on first start) or `postgres://…`.
    pub database_url: String,
    /// The API's address.
    pub addr: SocketAddr,
    /// The `iss` of issued tokens; default `http://{addr}`.
    pub issuer: Option<String>,
    /// The `aud` of user tokens.
    pub audience: String,
    /// The `aud` of machine tokens (`/oauth/token`); default `{audience}:machine`.
    /// Different from the user audience, so an app gated for users refuses machine
    /// tokens unless its verifier accepts this audience too.
    pub machine_audience: Option<String>,
    /// Access-token lifetime.
    pub token_ttl: Duration,
    /// Also serve the gated demo app here.
    pub demo_addr: Option<SocketAddr>,
    /// Sign-in and failed-authentication budgets (see [`RateLimits`]).
    pub rate_limits: limits::RateLimits,
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers name the client (a load
    /// balancer in front); from anyone else those headers are ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// A refresh token used again within this long after its first use is refused
    /// without revoking anything (two tabs or a retry racing); used again later, it
    /// revokes its whole family (it was probably stolen). Default 10 s.
    pub refresh_race_grace: Duration,
    /// Dashboard sessions: timeouts, and `secure` when served behind HTTPS
    /// (cookies `Secure` with a `__Host-` name).
    pub sessions: session::SessionConfig,
    /// Serve Prometheus metrics (`GET /metrics`) on this address — the server's and
    /// the demo app's; off by default. Installs a global `metrics` recorder: one per
    /// process.
    pub metrics_addr: Option<SocketAddr>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            policy: PathBuf::from("policies/saas.yaml"),
            database_url: "sqlite://tiergate.db".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: None,
            audience: "tiergate-demo".into(),
            machine_audience: None,
            token_ttl: Duration::from_secs(300),
            demo_addr: None,
            rate_limits: limits::RateLimits::default(),
            trusted_proxies: Vec::new(),
            refresh_race_grace: Duration::from_secs(10),
            sessions: session::SessionConfig::default(),
            metrics_addr: None,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The policy file is missing or invalid.
    #[error("{0}")]
    Policy(#[from] crate::PolicyError),
    /// The database could not be opened or migrated.
    #[error("{0}")]
    Db(#[from] DbError),
    /// An address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The demo app's gate could not be built.
    #[error("demo app: {0}")]
    Demo(String),
    /// The metrics recorder could not be installed.
    #[error("metrics: {0}")]
    Metrics(String),
    /// Serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A bound server, ready to [`run`](Self::run).
pub struct Server {
    api: TcpListener,
    metrics: Option<(TcpListener, metrics_exporter_prometheus::PrometheusHandle)>,
    demo: Option<(TcpListener, TierGate)>,
    state: state::Shared,
    _watch: Option<crate::reload::WatchHandle>,
    created_key: bool,
}

impl Server {
    /// Opens the database (migrating it), loads the policy, creates the first signing
    /// key if there is none, and binds the addresses.
    pub async fn bind(options: ServeOptions) -> Result<Server, ServeError> {
        // First, so that what the rest of the start does is counted.
        let metrics = match options.metrics_addr {
            None => None,
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind { addr, source })?;
                Some((
                    listener,
                    prometheus::install().map_err(ServeError::Metrics)?,
                ))
            }
        };
        let db = Db::connect(&options.database_url).await?;
        let store = PolicyStore::open(&options.policy)?;
        let watch = store.watch(WatchOptions::default()).ok();
        let (signer, created_key) = signing::Signer::open(db.clone(), options.token_ttl).await?;
        let api = TcpListener::bind(options.addr)
            .await
            .map_err(|source| ServeError::Bind {
                addr: options.addr,
                source,
            })?;
        let addr = api.local_addr()?;
        let issuer = options
            .issuer
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let state = Arc::new(state::AppState {
            db,
            store: store.clone(),
            signer,
            issuer: issuer.clone(),
            audience: options.audience.clone(),
            machine_audience: options
                .machine_audience
                .clone()
                .unwrap_or_else(|| format!("{}:machine", options.audience)),
            limits: limits::Limiter::new(&options.rate_limits),
            hasher: secrets::Hasher::default(),
            trusted_proxies: options.trusted_proxies.clone(),
            sessions: options.sessions.clone(),
            refresh_race_grace: options.refresh_race_grace,
        });
        let demo = match options.demo_addr {
            None => None,
            Some(demo_addr) => {
                // The demo verifies tokens the way any app would: through the JWKS URL.
                let loopback = SocketAddr::from(([127, 0, 0, 1], addr.port()));
                let host = if addr.ip().is_unspecified() {
                    loopback
                } else {
                    addr
                };
                let verifier = Verifier::builder()
                    .jwks_url(format!("http://{host}/.well-known/jwks.json"))
                    .issuer(&issuer)
                    .audience(&options.audience)
                    .require_type("at+jwt")
                    .build()
                    .map_err(|e| ServeError::Demo(e.to_string()))?;
                // …and follows the claims-change feed the way any app would: over
                // HTTP, with client credentials of its own.
                let (feed_id, feed_secret) = demo_feed_client(&state.db).await?;
                let gate = TierGate::builder()
                    .store(store)
                    .verifier(verifier)
                    .claims_changes(
                        crate::ClaimsChanges::new(format!("http://{host}{}", claims_feed::PATH))
                            .client_credentials(feed_id, feed_secret),
                    )
                    .build()
                    .map_err(|e| ServeError::Demo(e.to_string()))?;
                let listener =
                    TcpListener::bind(demo_addr)
                        .await
                        .map_err(|source| ServeError::Bind {
                            addr: demo_addr,
                            source,
                        })?;
                Some((listener, gate))
            }
        };
        Ok(Server {
            api,
            metrics,
            demo,
            state,
            _watch: watch,
            created_key,
        })
    }

    /// The API's bound address.
    pub fn addr(&self) -> SocketAddr {
        // A listener bound by `bind` has an address; the fallback is never reached.
        self.api
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The metrics page's bound address, if it is served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The demo app's bound address, if it runs.
    pub fn demo_addr(&self) -> Option<SocketAddr> {
        self.demo.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Whether this start created the first signing key (a fresh database).
    pub fn created_key(&self) -> bool {
        self.created_key
    }

    /// The issuer URL tokens carry.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The policy store (for status and SIGHUP reloads).
    pub fn store(&self) -> &PolicyStore {
        &self.state.store
    }

    /// Serves until an error (or forever).
    pub async fn run(self) -> Result<(), ServeError> {
        let mut background = vec![
            tokio::spawn(claims_feed::prune_forever(self.state.clone())),
            // Numbers committed changes; any instance's wake this one's feed readers.
            tokio::spawn(self.state.db.clone().keep_feed(FEED_POLL)),
        ];
        if let Some((listener, handle)) = self.metrics {
            background.push(tokio::spawn(prometheus::upkeep_forever(handle.clone())));
            let page = prometheus::router(handle);
            background.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, page).await {
                    tracing::error!(target: "tiergate::server", error = %e, "the metrics page stopped");
                }
            }));
        }
        let _background = Background(background);
        let app = router(self.state.clone());
        let api = axum::serve(
            self.api,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        );
        match self.demo {
            None => api.await?,
            Some((listener, gate)) => {
                let demo = axum::serve(listener, demo::router(&gate));
                tokio::try_join!(async { api.await }, async { demo.await })?;
            }
        }
        Ok(())
    }
}

/// How often an instance looks for changes to number and for other instances'
/// numbers without being woken (PostgreSQL's notifications and its own commits wake
/// it at once).
const FEED_POLL: Duration = Duration::from_millis(250);

/// Tasks that end with the server.
struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The demo app's credentials for the claims-change feed: one client for every
/// instance on the database, its secret kept in the database's settings (beside
/// the signing keys), so any instance's demo can read the feed.
async fn demo_feed_client(db: &Db) -> Result<(String, String), ServeError> {
    const ID: &str = "cli_demo_feed";
    let secret = db
        .setting_or_insert("demo_feed_secret", secrets::random_secret)
        .await?;
    db.ensure_client(
        ID,
        "the demo app (claims-change feed)",
        &secrets::hash_client_secret(&secret),
    )
    .await?;
    Ok((ID.to_owned(), secret))
}

/// Every route of the API, the dashboard and its JSON, with the headers every
/// answer carries: a Content-Security-Policy that allows no script and no inline
/// style, no framing, no referrer, no MIME sniffing, and `Cache-Control: no-store`
/// unless the answer says otherwise (the JWKS and the stylesheet do).
pub(crate) fn router(state: state::Shared) -> axum::Router {
    use axum::http::{HeaderName, HeaderValue, header};
    use tower_http::set_header::SetResponseHeaderLayer;
    let always = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    axum::Router::new()
        .merge(api::router())
        .merge(claims_feed::router())
        .merge(dashboard_api::router())
        .merge(dashboard_pages::router())
        // Per matched route, so the latency's `route` label is the route's pattern.
        .route_layer(axum::middleware::from_fn(prometheus::track))
        .layer(axum::extract::DefaultBodyLimit::max(state::MAX_BODY_BYTES))
        .layer(always(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ))
        .layer(always(header::X_FRAME_OPTIONS, "DENY"))
        .layer(always(header::REFERRER_POLICY, "no-referrer"))
        .layer(always(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state)
}

/// Creates an API client in the database at `database_url` (migrating it first if
/// needed); returns `(client_id, client_secret)`. The secret is 256 random bits,
/// stored only as a keyed hash: it cannot be shown again.
pub async fn create_client(database_url: &str, name: &str) -> Result<(String, String), DbError> {
    create_client_in(&Db::connect(database_url).await?, name).await
}

pub(crate) async fn create_client_in(db: &Db, name: &str) -> Result<(String, String), DbError> {
    let id = random_id("cli");
    let secret = secrets::random_secret();
    db.insert_client(&id, name, &secrets::hash_client_secret(&secret))
        .await?;
    Ok((id, secret))
}

/// Creates an admin, or sets an existing admin's password (argon2id). `email` as
/// [`normalize_email`] gives it.
pub async fn create_admin(database_url: &str, email: &str, password: &str) -> Result<(), DbError> {
    create_admin_in(&Db::connect(database_url).await?, email, password).await
}

pub(crate) async fn create_admin_in(db: &Db, email: &str, password: &str) -> Result<(), DbError> {
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || secrets::hash_now(&password))
        .await
        .map_err(|_| DbError::from(sqlx::Error::WorkerCrashed))?;
    db.upsert_admin(email, &hash).await
}

/// Adds a new signing key; older keys stay published until their tokens expire.
/// Returns its `kid`.
pub async fn rotate_keys(database_url: &str) -> Result<String, DbError> {
    let db = Db::connect(database_url).await?;
    let key = signing::generate_key();
    db.rotate_in(&key).await?;
    Ok(key.kid)
}

/// Hooks for tiergate's own server tests (feature `test-util`): the database handle
/// and the secret helpers, to set up and inspect what the tests drive over HTTP.
/// Not a public API.
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod test_util {
    pub use super::db::*;
    pub use super::secrets::{hash_now, random_id, random_secret};

    /// [`super::create_client`] on an open database.
    pub async fn create_client(db: &Db, name: &str) -> Result<(String, String), DbError> {
        super::create_client_in(db, name).await
    }

    /// [`super::create_admin`] on an open database.
    pub async fn create_admin(db: &Db, email: &str, password: &str) -> Result<(), DbError> {
        super::create_admin_in(db, email, password).await
    }
}
