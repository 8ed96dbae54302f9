//! Keys from a JWKS URL: fetched on demand, cached, refetched on an unknown `kid`
//! at most once per cooldown, one fetch in flight.
//!
//! The request path never waits on a lock held across network I/O: the key set is
//! an `ArcSwap` snapshot, and the fetch runs in its own task while requests that
//! need it wait on a `watch` channel. A failed fetch keeps the last good set.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::error::ConfigError;
use super::error::{TokenError, TokenErrorKind};
use super::keyset::KeySet;

/// Where the key set comes from.
#[derive(Debug, Clone)]
pub(crate) enum JwksLocation {
    Url(String),
    /// An OIDC issuer: the JWKS URL is read from its discovery document.
    Discovery(String),
}

/// Tuning for the JWKS cache.
#[derive(Debug, Clone)]
pub struct JwksOptions {
    cooldown: Duration,
    timeout: Duration,
    max_body_bytes: usize,
    refresh_interval: Duration,
}

impl Default for JwksOptions {
    fn default() -> Self {
        JwksOptions {
            cooldown: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            max_body_bytes: 256 * 1024,
            refresh_interval: Duration::from_secs(600),
        }
    }
}

impl JwksOptions {
    /// The shortest time between two fetches caused by unknown `kid`s (default 30 s):
    /// a flood of made-up `kid`s costs at most one fetch per cooldown.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The whole fetch, connect to last byte (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest JWKS document read (default 256 KiB).
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// How old the set may get before a request triggers a background refresh
    /// (default 10 minutes), so removed keys stop verifying.
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }
}

/// What the cache has done, for status pages and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksStats {
    /// Fetches started.
    pub fetches: u64,
    /// Fetches that failed (the previous set stayed).
    pub failures: u64,
    /// Keys in the current set.
    pub keys: usize,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    in_flight: Option<watch::Receiver<bool>>,
    jwks_uri: Option<String>,
}

pub(crate) struct Jwks {
    location: JwksLocation,
    options: JwksOptions,
    client: reqwest::Client,
    keys: ArcSwap<KeySet>,
    loaded: AtomicBool,
    /// When the current set was loaded, in milliseconds since `epoch` (read on the
    /// request path, so an atomic rather than a lock).
    loaded_at_ms: AtomicU64,
    epoch: Instant,
    state: Mutex<FetchState>,
    fetches: AtomicU64,
    failures: AtomicU64,
    /// Bumped with every key set stored: cached verifications from an older set
    /// are not used.
    generation: AtomicU64,
}

impl Jwks {
    pub(crate) fn new(location: JwksLocation, options: JwksOptions) -> Result<Jwks, ConfigError> {
        let url = match &location {
            JwksLocation::Url(u) | JwksLocation::Discovery(u) => u,
        };
        check_url(url)?;
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| ConfigError::JwksUrl {
                url: url.clone(),
                reason: "could not build an HTTP client",
            })?;
        Ok(Jwks {
            location,
            options,
            client,
            keys: ArcSwap::from_pointee(KeySet::default()),
            loaded: AtomicBool::new(false),
            loaded_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            state: Mutex::new(FetchState::default()),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            generation: AtomicU64::new(0),
        })
    }

    /// The current key set (the last good one).
    pub(crate) fn keys(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// The key set generation for this request, after starting a background
    /// refresh if the set is older than the refresh interval (called for every
    /// token, cached or not, so removed keys stop verifying on time).
    pub(crate) fn current_generation(self: &Arc<Self>) -> u64 {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        let age_ms = now_ms.saturating_sub(self.loaded_at_ms.load(Ordering::Relaxed));
        let refresh_ms = self.options.refresh_interval.as_millis() as u64;
        if self.loaded.load(Ordering::Relaxed) && age_ms >= refresh_ms {
            self.start_fetch();
        }
        self.generation()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn stats(&self) -> JwksStats {
        JwksStats {
            fetches: self.fetches.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            keys: self.keys.load().keys().len(),
        }
    }

    /// Turns "unknown key" into "keys unavailable" when no set was ever loaded.
    pub(crate) fn explain(&self, e: TokenError) -> TokenError {
        if e.kind() == TokenErrorKind::UnknownKey && !self.loaded.load(Ordering::Acquire) {
            return TokenError::new(
                TokenErrorKind::KeysUnavailable,
                "the verification keys could not be fetched; try again shortly",
            );
        }
        e
    }

    /// Refetches (unless the last attempt is within the cooldown) and waits for the
    /// fetch in flight.
    pub(crate) async fn refetch(self: &Arc<Self>) {
        if let Some(mut done) = self.start_fetch() {
            let _ = done.wait_for(|d| *d).await;
        }
    }

    /// Starts a fetch unless one is in flight (then returns its receiver) or the last
    /// attempt is within the cooldown (then `None`). Never blocks on I/O; without a
    /// tokio runtime it does nothing.
    fn start_fetch(self: &Arc<Self>) -> Option<watch::Receiver<bool>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let mut state = lock(&self.state);
        if let Some(rx) = &state.in_flight {
            return Some(rx.clone());
        }
        if state
            .last_attempt
            .is_some_and(|t| t.elapsed() < self.options.cooldown)
        {
            return None;
        }
        state.last_attempt = Some(Instant::now());
        let (tx, rx) = watch::channel(false);
        state.in_flight = Some(rx.clone());
        let known_uri = state.jwks_uri.clone();
        drop(state);
        let me = Arc::clone(self);
        runtime.spawn(async move {
            me.fetches.fetch_add(1, Ordering::Relaxed);
            let result = me.fetch(known_uri).await;
            let mut state = lock(&me.state);
            match result {
                Ok((set, uri)) => {
                    crate::telemetry::increment(crate::telemetry::JWKS_FETCHES, &[("outcome", "ok")]);
                    state.jwks_uri = Some(uri);
                    me.keys.store(Arc::new(set));
                    me.generation.fetch_add(1, Ordering::AcqRel);
                    me.loaded.store(true, Ordering::Release);
                    let at = me.epoch.elapsed().as_millis() as u64;
                    me.loaded_at_ms.store(at, Ordering::Relaxed);
                }
                Err(message) => {
                    crate::telemetry::increment(crate::telemetry::JWKS_FETCHES, &[("outcome", "error")]);
                    me.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(target: "tiergate::jwks", error = %message, "JWKS fetch failed; keeping the last good key set");
                }
            }
            state.in_flight = None;
            drop(state);
            let _ = tx.send(true);
        });
        Some(rx)
    }

    async fn fetch(&self, known_uri: Option<String>) -> Result<(KeySet, String), String> {
        let uri = match (known_uri, &self.location) {
            (Some(uri), _) => uri,
            (None, JwksLocation::Url(url)) => url.clone(),
            (None, JwksLocation::Discovery(issuer)) => self.discover(issuer).await?,
        };
        let body = self.get(&uri).await?;
        let (set, skipped) = KeySet::from_jwks(&body).map_err(|e| format!("{uri}: {e}"))?;
        for s in skipped {
            tracing::warn!(target: "tiergate::jwks", uri = %uri, "{s}");
        }
        if set.is_empty() {
            return Err(format!("{uri}: the key set has no usable signing keys"));
        }
        Ok((set, uri))
    }

    async fn discover(&self, issuer: &str) -> Result<String, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let body = self.get(&url).await?;
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))?;
        if doc.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
            return Err(format!("{url}: the document's `issuer` is not {issuer:?}"));
        }
        let uri = doc
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("{url}: no `jwks_uri`"))?;
        check_url(uri).map_err(|e| e.to_string())?;
        Ok(uri.to_owned())
    }

    /// GET with the status checked and the body bounded.
    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut response = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status()));
        }
        let max = self.options.max_body_bytes;
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(format!("{url}: the body is over {max} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len().saturating_add(chunk.len()) > max {
                return Err(format!("{url}: the body is over {max} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// HTTPS, or plain HTTP to a loopback address (tests, a sidecar).
fn check_url(url: &str) -> Result<(), ConfigError> {
    let bad = |reason| ConfigError::JwksUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| bad("not a URL"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or("");
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(bad(
                    "use https (plain http is allowed only to a loopback address)",
                ))
            }
        }
        _ => Err(bad("use an https:// URL")),
    }
}
