//! Following an issuer's claims-change feed, so a plan change reaches the gate in
//! seconds rather than when the token expires.
//!
//! ```no_run
//! use std::time::Duration;
//! use tiergate::token::Verifier;
//! use tiergate::{ClaimsChanges, TierGate};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::builder()
//!     .jwks_url("https://claims.example.com/.well-known/jwks.json")
//!     .issuer("https://claims.example.com")
//!     .audience("my-api")
//!     .build()?;
//! let gate = TierGate::builder()
//!     .policy_file("policies/saas.yaml")
//!     .verifier(verifier)
//!     .claims_changes(
//!         ClaimsChanges::new("https://claims.example.com/api/platform/claims-changes")
//!             .client_credentials("cli_…", "…")
//!             // Optional: past a minute without the feed, answer 503 instead of
//!             // deciding on claims that may be stale.
//!             .max_staleness(Duration::from_secs(60)),
//!     )
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! A background task (one request in flight, long-polling) reads the feed's
//! Security Event Tokens, checks each with the issuer's own verifier (signature,
//! `typ: secevent+jwt`, `iss`, `aud`), and keeps, per subject, the latest claims
//! version for the window (see `freshness`). A token of that issuer minted before
//! its subject's latest change is answered 401 `claims_changed`, with
//! `WWW-Authenticate: Bearer error="invalid_token"`, so a standard client refreshes
//! — on a token-cache hit too. When the feed cannot be reached the gate keeps what
//! it knows, logs, and reports it in [`TierGate::claims_changes_status`]; with
//! [`max_staleness`](ClaimsChanges::max_staleness) a longer outage turns that
//! issuer's requests into 503 `claims_changes_unavailable`. See
//! `docs/claims-changes.md` for the guarantees and the failure modes.
//!
//! [`TierGate::claims_changes_status`]: crate::TierGate::claims_changes_status

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};

use super::freshness::{Freshness, Stale};
use crate::token::{TokenError, TokenErrorKind, Verifier};

/// The CAEP events that make earlier tokens stale: a change of claims, and revoked
/// sessions (a new password, a reused refresh token).
const EVENTS: [&str; 2] = [
    "https://schemas.openid.net/secevent/caep/event-type/token-claims-change",
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
];

/// Where and how to follow an issuer's claims-change feed.
#[derive(Clone)]
pub struct ClaimsChanges {
    url: String,
    credentials: Option<(String, String)>,
    wait: Duration,
    window: Option<Duration>,
    max_staleness: Option<Duration>,
    max_subjects: usize,
    retry: (Duration, Duration),
}

impl std::fmt::Debug for ClaimsChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimsChanges")
            .field("url", &self.url)
            .field("client_id", &self.credentials.as_ref().map(|c| &c.0))
            .field("wait", &self.wait)
            .field("window", &self.window)
            .field("max_staleness", &self.max_staleness)
            .field("max_subjects", &self.max_subjects)
            .finish_non_exhaustive()
    }
}

impl ClaimsChanges {
    /// The feed's URL (the reference server's is `{issuer}/api/platform/claims-changes`,
    /// advertised as `claims_changes_endpoint` in its OpenID configuration).
    pub fn new(url: impl Into<String>) -> ClaimsChanges {
        ClaimsChanges {
            url: url.into(),
            credentials: None,
            wait: Duration::from_secs(20),
            window: None,
            max_staleness: None,
            max_subjects: 200_000,
            retry: (Duration::from_millis(250), Duration::from_secs(30)),
        }
    }

    /// The client credentials the feed asks for (sent as HTTP Basic).
    pub fn client_credentials(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.credentials = Some((id.into(), secret.into()));
        self
    }

    /// How long one request waits for a change (long poll; default 20 s, the
    /// reference server allows up to 30).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// How long a change matters: at least the issuer's longest access-token
    /// lifetime plus leeway. Default: the `window_seconds` the feed announces (one
    /// hour until it has).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = Some(window);
        self
    }

    /// Refuse this issuer's tokens with 503 `claims_changes_unavailable` once the
    /// feed has not answered for this long (counted from the start, or the last
    /// answer). Default: none — the gate keeps deciding on what it last knew, and
    /// says so in the log and in [`TierGate::claims_changes_status`](crate::TierGate::claims_changes_status).
    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = Some(bound);
        self
    }

    /// The most subjects remembered at once (default 200,000: about 16 MB, at the
    /// 81 bytes per subject measured for 100,000 in `freshness`'s tests). Past
    /// it, the map is emptied and every token issued before the newest change it
    /// held is refused once (clients refresh): never a stale token accepted.
    pub fn max_subjects(mut self, n: usize) -> Self {
        self.max_subjects = n;
        self
    }

    /// Backoff after a failed request: from `first`, doubling, up to `max`
    /// (default 250 ms to 30 s).
    pub fn retry(mut self, first: Duration, max: Duration) -> Self {
        self.retry = (first, max.max(first));
        self
    }
}

/// What a gate's feed follower knows, for status pages and health checks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClaimsChangesStatus {
    /// The feed's URL.
    pub url: String,
    /// When the feed last answered.
    pub last_success: Option<SystemTime>,
    /// Why the last request failed, if it did (cleared by a success).
    pub last_error: Option<String>,
    /// Requests that failed since the start.
    pub failures: u64,
    /// Changes applied since the start.
    pub changes_applied: u64,
    /// Subjects whose latest change is within the window.
    pub subjects: usize,
    /// The feed's cursor (where the next request starts).
    pub cursor: Option<String>,
    /// Whether requests of this issuer are refused for lack of the feed
    /// ([`ClaimsChanges::max_staleness`] passed).
    pub stale: bool,
}

/// A gate's follower of one issuer's feed: the map every request reads, and the
/// task that fills it.
pub(crate) struct Follower {
    config: ClaimsChanges,
    verifier: Verifier,
    fresh: Freshness,
    started: AtomicBool,
    created: Instant,
    /// Milliseconds after `created` of the last answer (0: none yet).
    last_success_ms: AtomicU64,
    state: Mutex<FollowState>,
}

#[derive(Default)]
struct FollowState {
    cursor: Option<String>,
    last_success: Option<SystemTime>,
    last_error: Option<String>,
    failures: u64,
    applied: u64,
}

/// What one request brought.
struct Polled {
    more: bool,
    sets: usize,
}

/// An empty answer that came back sooner than this did not wait for changes (a
/// feed that does not long-poll); the next request waits [`EMPTY_PAUSE`] first.
const QUICK_EMPTY: Duration = Duration::from_secs(1);
const EMPTY_PAUSE: Duration = Duration::from_millis(500);

/// One page of the feed.
struct Page {
    sets: Vec<String>,
    cursor: Option<String>,
    more: bool,
    window_secs: Option<i64>,
}

impl Follower {
    pub(crate) fn new(config: ClaimsChanges, verifier: Verifier) -> Arc<Follower> {
        let window = config.window.map_or(3600, |w| secs(w).max(1));
        let fresh = Freshness::new(window, config.max_subjects);
        let me = Arc::new(Follower {
            config,
            verifier,
            fresh,
            started: AtomicBool::new(false),
            created: Instant::now(),
            last_success_ms: AtomicU64::new(0),
            state: Mutex::new(FollowState::default()),
        });
        me.ensure_running();
        me
    }

    /// Starts the task if it is not running and a tokio runtime is at hand (the
    /// gate calls this on every request: one load once it runs).
    pub(crate) fn ensure_running(self: &Arc<Self>) {
        if self.started.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        runtime.spawn(follow(Arc::downgrade(self)));
    }

    /// Refuses a token minted before its subject's latest change, or any token of
    /// this issuer while the feed has been unreachable past the bound.
    pub(crate) fn check(&self, token: &crate::token::VerifiedToken) -> Result<(), TokenError> {
        if let Some(bound) = self.config.max_staleness
            && self.stale_at(Instant::now(), bound)
        {
            return Err(TokenError::new(
                TokenErrorKind::ClaimsChangesUnavailable,
                "the issuer's claims-change feed is unreachable, so whether this token's claims are current is unknown; try again shortly",
            ));
        }
        self.fresh.check(token).map_err(|why| {
            TokenError::new(
                TokenErrorKind::ClaimsChanged,
                match why {
                    Stale::Changed => {
                        "the token was minted before the subject's claims changed; get a new token (refresh) and retry"
                    }
                    Stale::BeforeFloor => {
                        "the token was minted before recent claims changes; get a new token (refresh) and retry"
                    }
                },
            )
        })
    }

    fn stale_at(&self, now: Instant, bound: Duration) -> bool {
        let last = Duration::from_millis(self.last_success_ms.load(Ordering::Relaxed));
        now.saturating_duration_since(self.created) > last.saturating_add(bound)
    }

    pub(crate) fn status(&self) -> ClaimsChangesStatus {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        ClaimsChangesStatus {
            url: self.config.url.clone(),
            last_success: state.last_success,
            last_error: state.last_error.clone(),
            failures: state.failures,
            changes_applied: state.applied,
            subjects: self.fresh.len(),
            cursor: state.cursor.clone(),
            stale: self
                .config
                .max_staleness
                .is_some_and(|b| self.stale_at(Instant::now(), b)),
        }
    }

    /// One request: fetch a page, verify every SET, apply them. Nothing is applied
    /// (and the cursor stays) unless every SET of the page verifies.
    async fn poll(&self, client: &reqwest::Client) -> Result<Polled, String> {
        let cursor = self.lock().cursor.clone();
        let page = self.fetch(client, cursor.as_deref()).await?;
        tracing::trace!(target: "tiergate::claims_changes", sets = page.sets.len(), cursor = ?page.cursor, "claims feed: page");
        let now = chrono::Utc::now().timestamp();
        let mut changes = Vec::with_capacity(page.sets.len());
        for set in &page.sets {
            let payload = self.verifier.verify_event(set, now).await.map_err(|e| {
                format!(
                    "a security event was refused: {} ({})",
                    e.detail(),
                    e.code()
                )
            })?;
            changes.extend(change_of(&payload));
        }
        if self.config.window.is_none()
            && let Some(w) = page.window_secs
        {
            self.fresh.set_window(w.max(1));
        }
        for (subject, version, at) in &changes {
            self.fresh.record(subject, *version, *at, now);
        }
        let since = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_success_ms.store(since.max(1), Ordering::Relaxed);
        let mut state = self.lock();
        if state.last_error.take().is_some() {
            tracing::info!(target: "tiergate::claims_changes", url = %self.config.url, "claims-change feed reachable again");
        }
        state.cursor = page.cursor.or(cursor);
        state.last_success = Some(SystemTime::now());
        state.applied = state.applied.saturating_add(changes.len() as u64);
        Ok(Polled {
            more: page.more,
            sets: page.sets.len(),
        })
    }

    async fn fetch(&self, client: &reqwest::Client, cursor: Option<&str>) -> Result<Page, String> {
        let mut url = reqwest::Url::parse(&self.config.url)
            .map_err(|e| format!("the feed URL is not a URL: {e}"))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("wait", &self.config.wait.as_secs().to_string());
            query.append_pair("limit", "1000");
            if let Some(c) = cursor {
                query.append_pair("after", c);
            }
        }
        let mut req = client
            .get(url)
            .timeout(self.config.wait.saturating_add(Duration::from_secs(10)));
        if let Some((id, secret)) = &self.config.credentials {
            req = req.basic_auth(id, Some(secret));
        }
        let res = req
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = res.status();
        let body = res
            .bytes()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(body.get(..300).unwrap_or(&body));
            return Err(format!("the feed answered {status}: {text}"));
        }
        let v: Map<String, Value> = serde_json::from_slice(&body)
            .map_err(|e| format!("the answer is not a JSON object: {e}"))?;
        let sets = match v.get("sets") {
            Some(Value::Object(sets)) => sets
                .values()
                .map(|s| s.as_str().map(str::to_owned).ok_or("a SET is not a string"))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
            Some(_) => return Err("`sets` is not an object".into()),
        };
        Ok(Page {
            sets,
            cursor: v.get("cursor").and_then(Value::as_str).map(str::to_owned),
            more: v
                .get("moreAvailable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            window_secs: v.get("window_seconds").and_then(Value::as_i64),
        })
    }

    fn failed(&self, error: String) {
        let mut state = self.lock();
        state.failures = state.failures.saturating_add(1);
        let first = state.last_error.is_none();
        if first {
            tracing::warn!(target: "tiergate::claims_changes", url = %self.config.url, error = %error, "claims-change feed unreachable; keeping what is known and retrying");
        } else {
            tracing::debug!(target: "tiergate::claims_changes", url = %self.config.url, error = %error, "claims-change feed still unreachable");
        }
        state.last_error = Some(error);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FollowState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The subject, version and time of each event in a SET that makes earlier
/// tokens stale. Events of other types are ignored.
fn change_of(payload: &Map<String, Value>) -> Vec<(String, Option<u64>, i64)> {
    let subject = payload
        .get("sub_id")
        .and_then(|s| s.get("sub"))
        .or_else(|| payload.get("sub"))
        .and_then(Value::as_str);
    let (Some(subject), Some(Value::Object(events))) = (subject, payload.get("events")) else {
        return Vec::new();
    };
    let iat = payload.get("iat").and_then(Value::as_i64).unwrap_or(0);
    events
        .iter()
        .filter(|(kind, _)| EVENTS.contains(&kind.as_str()))
        .map(|(_, body)| {
            let version = body.get("claims_version").and_then(Value::as_u64);
            let at = body
                .get("event_timestamp")
                .and_then(Value::as_i64)
                .unwrap_or(iat);
            (subject.to_owned(), version, at)
        })
        .collect()
}

/// The follower's task: poll, apply, back off on failure, prune now and then;
/// ends when the gate is dropped.
async fn follow(me: Weak<Follower>) {
    let client = reqwest::Client::new();
    let mut backoff = None::<Duration>;
    let mut pruned = Instant::now();
    loop {
        let Some(f) = me.upgrade() else { return };
        let started = Instant::now();
        let result = f.poll(&client).await;
        match &result {
            Ok(polled) => {
                crate::telemetry::increment(
                    crate::telemetry::CLAIMS_FEED_POLLS,
                    &[("outcome", "ok")],
                );
                if polled.sets > 0 {
                    crate::telemetry::add(
                        crate::telemetry::CLAIMS_FEED_CHANGES,
                        &[],
                        polled.sets as u64,
                    );
                }
            }
            Err(_) => crate::telemetry::increment(
                crate::telemetry::CLAIMS_FEED_POLLS,
                &[("outcome", "error")],
            ),
        }
        if pruned.elapsed() > Duration::from_secs(10) {
            f.fresh.prune(chrono::Utc::now().timestamp());
            pruned = Instant::now();
        }
        let pause = match result {
            Ok(polled) => {
                backoff = None;
                let quick = started.elapsed() < QUICK_EMPTY;
                (!polled.more && polled.sets == 0 && quick).then_some(EMPTY_PAUSE)
            }
            Err(e) => {
                f.failed(e);
                let (first, max) = f.config.retry;
                let next = backoff.map_or(first, |b| b.saturating_mul(2).min(max));
                backoff = Some(next);
                Some(next)
            }
        };
        drop(f);
        if let Some(p) = pause {
            tokio::time::sleep(p).await;
        }
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
