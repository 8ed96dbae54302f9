//! `tiergate serve`, `client create`, `admin create`, `keys rotate` (feature `server`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;
use tiergate::server::{self, RateLimits, ServeOptions, Server, SessionConfig};

/// The database every server command takes.
#[derive(Args, Debug, Clone)]
pub struct DatabaseArg {
    /// `sqlite://tiergate.db` (created on first use) or `postgres://user@host/db`.
    #[arg(
        long,
        env = "TIERGATE_DATABASE_URL",
        default_value = "sqlite://tiergate.db"
    )]
    pub database_url: String,
}

/// `tiergate serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The policy file: hot-reloaded on change, and on SIGHUP.
    #[arg(long, default_value = "policies/saas.yaml")]
    pub policy: PathBuf,
    #[command(flatten)]
    pub db: DatabaseArg,
    /// Where the claims API, token endpoints and JWKS listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// The `iss` of issued tokens (default `http://ADDR`).
    #[arg(long)]
    pub issuer: Option<String>,
    /// The `aud` of issued tokens.
    #[arg(long, default_value = "tiergate-demo")]
    pub audience: String,
    /// Access-token lifetime: 300, 300s, 5m, 1h.
    #[arg(long, default_value = "5m")]
    pub token_ttl: String,
    /// Also serve the gated demo app here (every allowed route answers 200).
    #[arg(long)]
    pub demo_addr: Option<SocketAddr>,
    /// Serve Prometheus metrics (GET /metrics) on this address, apart from the API
    /// (keep it private: e.g. 127.0.0.1:9464). Off by default.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// The `aud` of machine tokens from /oauth/token (default `AUDIENCE:machine`).
    #[arg(long)]
    pub machine_audience: Option<String>,
    /// Sign-in attempts per minute per account (0: off).
    #[arg(long, default_value_t = 10)]
    pub sign_in_limit: u32,
    /// Sign-in attempts per minute per client address (0: off).
    #[arg(long, default_value_t = 30)]
    pub sign_in_limit_per_address: u32,
    /// Failed client authentications per minute per client id (0: off). Valid
    /// credentials are never limited.
    #[arg(long, default_value_t = 30)]
    pub failed_auth_limit: u32,
    /// Failed client authentications per minute per client address (0: off).
    #[arg(long, default_value_t = 60)]
    pub failed_auth_limit_per_address: u32,
    /// A proxy in front whose X-Forwarded-For / Forwarded names the client (repeat
    /// for several). From other peers those headers are ignored.
    #[arg(long = "trusted-proxy")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The server is reached over HTTPS (through a proxy): dashboard cookies become
    /// `Secure` with a `__Host-` name.
    #[arg(long)]
    pub secure_cookies: bool,
}

/// `tiergate client …`.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Create an API client; prints {"client_id", "client_secret"} once.
    Create {
        /// A name to recognise it by (e.g. "billing-webhook").
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

/// `tiergate admin …`.
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a dashboard admin (or set an existing admin's password).
    Create {
        #[arg(long)]
        email: String,
        /// At least 12 characters.
        #[arg(long, env = "TIERGATE_ADMIN_PASSWORD")]
        password: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

/// `tiergate keys …`.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make a new signing key active; old public keys stay in the JWKS until the
    /// tokens they signed have expired.
    Rotate {
        #[command(flatten)]
        db: DatabaseArg,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

pub fn serve(args: ServeArgs, ttl_secs: i64) -> Result<ExitCode, String> {
    tracing_init();
    let options = ServeOptions {
        policy: args.policy,
        database_url: args.db.database_url,
        addr: args.addr,
        issuer: args.issuer,
        audience: args.audience,
        token_ttl: Duration::from_secs(ttl_secs as u64),
        demo_addr: args.demo_addr,
        metrics_addr: args.metrics_addr,
        machine_audience: args.machine_audience,
        rate_limits: {
            let mut limits = RateLimits::default();
            limits.sign_in_per_account = args.sign_in_limit;
            limits.sign_in_per_address = args.sign_in_limit_per_address;
            limits.failed_auth_per_client = args.failed_auth_limit;
            limits.failed_auth_per_address = args.failed_auth_limit_per_address;
            limits
        },
        trusted_proxies: args.trusted_proxies,
        refresh_race_grace: Duration::from_secs(10),
        sessions: SessionConfig {
            secure: args.secure_cookies,
            ..Default::default()
        },
    };
    let database = options.database_url.clone();
    runtime()?.block_on(async move {
        let server = Server::bind(options).await.map_err(|e| e.to_string())?;
        // Before anything is printed: a SIGHUP sent as soon as the "policy:" line
        // shows must find the handler installed (unhandled, it ends the process).
        reload_on_sighup(server.store().clone());
        let addr = server.addr();
        println!("tiergate serve: claims API and tokens on http://{addr}  (database {database})");
        println!("  keys:    http://{addr}/.well-known/jwks.json   issuer {}", server.issuer());
        if let Some(demo) = server.demo_addr() {
            println!("  demo:    http://{demo}  (gated by the policy; every allowed route answers 200)");
        }
        if let Some(m) = server.metrics_addr() {
            println!("  metrics: http://{m}/metrics  (Prometheus)");
        }
        println!("  policy:  revision {}; edit the file or send SIGHUP to reload", server.store().policy().revision());
        if server.created_key() {
            println!("first start: created a signing key. Next:");
            println!("  create an API client:  cargo run --features server --bin tiergate -- client create --name backend");
            println!("  create an admin:       cargo run --features server --bin tiergate -- admin create --email you@example.com --password '…'");
        }
        server.run().await.map_err(|e| e.to_string())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP reloads the policy, as a long-running Unix server is expected to.
/// The handler is registered when this returns (not when the task first runs).
fn reload_on_sighup(store: tiergate::PolicyStore) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match store.reload() {
                    Ok(tiergate::reload::ReloadOutcome::Unchanged(rev)) => {
                        println!("SIGHUP: the policy file is unchanged (revision {rev})")
                    }
                    Ok(tiergate::reload::ReloadOutcome::Swapped { from, to }) => {
                        println!("SIGHUP: policy reloaded, revision {from} → {to}")
                    }
                    Ok(other) => println!("SIGHUP: {other:?}"),
                    Err(e) => {
                        eprintln!(
                            "SIGHUP: the policy was not reloaded; the last good one stays:\n{e}"
                        )
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = store;
}

fn tracing_init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

pub fn client(cmd: ClientCommand) -> Result<ExitCode, String> {
    let ClientCommand::Create { name, db } = cmd;
    let (id, secret) = runtime()?.block_on(async {
        server::create_client(&db.database_url, &name)
            .await
            .map_err(|e| format!("{}: {e}", db.database_url))
    })?;
    println!("{}", json!({ "client_id": id, "client_secret": secret }));
    Ok(ExitCode::SUCCESS)
}

pub fn admin(cmd: AdminCommand) -> Result<ExitCode, String> {
    let AdminCommand::Create {
        email,
        password,
        db,
    } = cmd;
    if password.chars().count() < 12 {
        return Err("--password: use at least 12 characters".into());
    }
    // The same rules as every other identity: no look-alikes, IDNA domains.
    let email = server::normalize_email(&email).map_err(|e| format!("--email: {e}"))?;
    runtime()?.block_on(async {
        server::create_admin(&db.database_url, &email, &password)
            .await
            .map_err(|e| format!("{}: {e}", db.database_url))
    })?;
    println!("admin {email} can sign in");
    Ok(ExitCode::SUCCESS)
}

pub fn keys(cmd: KeysCommand) -> Result<ExitCode, String> {
    let KeysCommand::Rotate { db } = cmd;
    let kid = runtime()?.block_on(async {
        server::rotate_keys(&db.database_url)
            .await
            .map_err(|e| format!("{}: {e}", db.database_url))
    })?;
    println!("new signing key {kid} is active; running servers pick it up within seconds");
    Ok(ExitCode::SUCCESS)
}
