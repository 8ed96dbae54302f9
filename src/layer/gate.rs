//! The gate: the policy store, the verifier and the options, and the builder
//! that puts them together. The tower parts are in `service`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::claims::ClaimsMapping;
use crate::reload::{PolicyStore, WatchHandle, WatchOptions};
use crate::token::{ConfigError, VerifiedToken, Verifier};
use crate::{Entitlements, Policy, PolicyError};

/// The clock the gate reads: "now" for `exp`/`nbf`/`iat` and for trials.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A configured gate: the policy store, the verifier and the options. Cheap to
/// clone; [`layer`](Self::layer) wraps a router or server with it.
#[derive(Clone)]
pub struct TierGate(pub(super) Arc<GateInner>);

pub(crate) struct GateInner {
    pub(crate) store: PolicyStore,
    pub(crate) verifier: Verifier,
    pub(crate) enforce: bool,
    pub(crate) cookie: Option<String>,
    /// `None`: the system clock.
    pub(crate) clock: Option<Clock>,
    /// The builder's claims mapping, over the policy's.
    pub(crate) claims: Option<ClaimsMapping>,
    /// Issuers besides the main verifier's, each chosen by the token's `iss`.
    pub(crate) others: Box<[Issuer]>,
    /// Per issuer (0 the main verifier, then the others), its claims-change
    /// follower, if it has a feed.
    #[cfg(feature = "claims-changes")]
    pub(crate) followers: Box<[Option<Arc<super::claims_changes::Follower>>]>,
    _watch: Option<WatchHandle>,
}

/// Another issuer a gate accepts tokens from: its own verifier (keys or JWKS,
/// issuer, audience) and, optionally, its own claims mapping. For example users
/// signed in through the team's identity provider and machine tokens from the
/// reference server, in one layer:
///
/// ```
/// use tiergate::token::{Algorithm, Verifier};
/// use tiergate::{ClaimsMapping, Issuer, Policy, TierGate};
///
/// let users = Verifier::builder()
///     .hmac_secret(Algorithm::HS256, b"the identity provider's secret, 32+ bytes")
///     .issuer("https://acme.us.auth0.com/")
///     .audience("my-api")
///     .build()?;
/// let machines = Verifier::builder()
///     .hmac_secret(Algorithm::HS256, b"the claims server's own secret, 32+ bytes")
///     .issuer("https://claims.acme.internal")
///     .audience("my-api")
///     .build()?;
/// let gate = TierGate::builder()
///     .policy(Policy::from_yaml(tiergate::EXAMPLE_POLICY)?)
///     .verifier(users)
///     .claims_mapping(ClaimsMapping::preset("auth0", &[("namespace", "https://acme.com/")])?)
///     .issuer(Issuer::new(machines).claims_mapping(ClaimsMapping::tiergate()))
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Issuer {
    pub(crate) verifier: Verifier,
    pub(crate) claims: Option<ClaimsMapping>,
    #[cfg(feature = "claims-changes")]
    pub(crate) changes: Option<super::claims_changes::ClaimsChanges>,
}

impl Issuer {
    /// An issuer verified by `verifier`, which must name the issuer(s) (`.issuer(..)`).
    pub fn new(verifier: Verifier) -> Issuer {
        Issuer {
            verifier,
            claims: None,
            #[cfg(feature = "claims-changes")]
            changes: None,
        }
    }

    /// Follow this issuer's claims-change feed (see
    /// [`TierGateBuilder::claims_changes`]).
    #[cfg(feature = "claims-changes")]
    pub fn claims_changes(mut self, changes: super::claims_changes::ClaimsChanges) -> Issuer {
        self.changes = Some(changes);
        self
    }

    /// Where this issuer's tokens carry the subscription claims (otherwise the
    /// gate's mapping, the policy's `claims:` section, or the verifier's location).
    pub fn claims_mapping(mut self, mapping: ClaimsMapping) -> Issuer {
        self.claims = Some(mapping);
        self
    }
}

impl GateInner {
    /// Issuer `i`'s verifier and claims mapping: 0 is the main verifier (with the
    /// gate's mapping), then the others in the order they were added.
    pub(crate) fn issuer(&self, i: usize) -> (&Verifier, Option<&ClaimsMapping>) {
        match i.checked_sub(1).and_then(|j| self.others.get(j)) {
            Some(other) => (
                &other.verifier,
                other.claims.as_ref().or(self.claims.as_ref()),
            ),
            None => (&self.verifier, self.claims.as_ref()),
        }
    }

    /// Refuses a token its issuer's claims-change feed says is stale (or any of
    /// that issuer's tokens while the feed is down past its bound).
    #[cfg(feature = "claims-changes")]
    pub(crate) fn check_fresh(
        &self,
        issuer: usize,
        token: &VerifiedToken,
    ) -> Result<(), crate::token::TokenError> {
        match self.followers.get(issuer) {
            Some(Some(f)) => {
                f.ensure_running();
                f.check(token)
            }
            _ => Ok(()),
        }
    }

    /// How many issuers: the main verifier and the others.
    pub(crate) fn issuer_count(&self) -> usize {
        self.others.len().saturating_add(1)
    }

    /// "Now" in unix seconds, all a decision needs: the system clock is read without
    /// a detour through a calendar date (see [`clock`]).
    pub(crate) fn now_secs(&self) -> i64 {
        match &self.clock {
            Some(clock) => clock().timestamp(),
            None => super::clock::unix_secs(),
        }
    }
}

impl fmt::Debug for TierGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TierGate")
            .field("store", &self.0.store)
            .field("verifier", &self.0.verifier)
            .field("enforce", &self.0.enforce)
            .field("cookie", &self.0.cookie)
            .finish_non_exhaustive()
    }
}

impl TierGate {
    /// Starts a configuration: a policy and a verifier are required.
    pub fn builder() -> TierGateBuilder {
        TierGateBuilder {
            policy: None,
            verifier: None,
            enforce: true,
            cookie: None,
            clock: None,
            watch: Some(WatchOptions::default()),
            claims: None,
            others: Vec::new(),
            #[cfg(feature = "claims-changes")]
            changes: None,
        }
    }

    /// What the claims-change followers know, one per followed issuer (empty
    /// without [`TierGateBuilder::claims_changes`]).
    #[cfg(feature = "claims-changes")]
    pub fn claims_changes_status(&self) -> Vec<super::claims_changes::ClaimsChangesStatus> {
        self.0
            .followers
            .iter()
            .flatten()
            .map(|f| f.status())
            .collect()
    }

    /// The policy store, for status pages (`store().status()`) and manual reloads.
    pub fn store(&self) -> &PolicyStore {
        &self.0.store
    }

    /// The token verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.0.verifier
    }

    /// The time the gate uses for decisions: the injected clock, or the system
    /// clock. (The layer itself reads the system clock in whole seconds, from the
    /// kernel's coarse clock, which can be a few milliseconds behind this one.)
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0.clock {
            Some(clock) => clock(),
            None => Utc::now(),
        }
    }
}

/// Where the policy comes from.
enum PolicySource {
    File(PathBuf),
    Fixed(Policy),
    Store(PolicyStore),
}

/// Builds a [`TierGate`].
pub struct TierGateBuilder {
    policy: Option<PolicySource>,
    verifier: Option<Verifier>,
    enforce: bool,
    cookie: Option<String>,
    clock: Option<Clock>,
    watch: Option<WatchOptions>,
    claims: Option<ClaimsMapping>,
    others: Vec<Issuer>,
    #[cfg(feature = "claims-changes")]
    changes: Option<super::claims_changes::ClaimsChanges>,
}

impl fmt::Debug for TierGateBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TierGateBuilder")
            .field("verifier", &self.verifier)
            .field("enforce", &self.enforce)
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

impl TierGateBuilder {
    /// A policy file, loaded now (a bad file fails [`build`](Self::build): the app
    /// refuses to start rather than run without a policy) and watched for changes.
    pub fn policy_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.policy = Some(PolicySource::File(path.into()));
        self
    }

    /// A fixed, in-memory policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(PolicySource::Fixed(policy));
        self
    }

    /// A store you manage (shared with other parts of the app, watched or not).
    pub fn store(mut self, store: PolicyStore) -> Self {
        self.policy = Some(PolicySource::Store(store));
        self
    }

    /// Watch options for [`policy_file`](Self::policy_file) (default: 200 ms debounce,
    /// 10 s poll); `None` loads the file once and never watches it.
    pub fn watch(mut self, options: Option<WatchOptions>) -> Self {
        self.watch = options;
        self
    }

    /// The token verifier (keys, issuer, audience, leeway, claims location).
    pub fn verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// `false` is observe mode for the whole layer: denials are logged at `warn` as
    /// would-be denials and the request goes through (a missing or bad token still
    /// gets 401: observe mode is for rolling out tiers, not for skipping sign-in).
    pub fn enforce(mut self, enforce: bool) -> Self {
        self.enforce = enforce;
        self
    }

    /// Also read the token from this cookie when there is no `Authorization` header.
    pub fn cookie(mut self, name: impl Into<String>) -> Self {
        self.cookie = Some(name.into());
        self
    }

    /// Where to read the subscription claims in a token, overriding the policy's
    /// `claims:` section (for code that builds its policy in Rust). Without either,
    /// the verifier's claims location applies.
    pub fn claims_mapping(mut self, mapping: ClaimsMapping) -> Self {
        self.claims = Some(mapping);
        self
    }

    /// Also accept tokens from another issuer (see [`Issuer`]). Each token is
    /// verified by the one verifier whose issuers include its `iss`; a token naming
    /// an issuer no verifier accepts is refused (401 `wrong_issuer`). Every verifier
    /// of a gate with several must name its issuers, and no two the same one.
    pub fn issuer(mut self, issuer: Issuer) -> Self {
        self.others.push(issuer);
        self
    }

    /// Follow the main verifier's issuer's claims-change feed: tokens minted before
    /// their subject's latest change are refused with 401 `claims_changed` (see
    /// [`ClaimsChanges`](super::claims_changes::ClaimsChanges)). The follower runs on
    /// the tokio runtime the gate is built (or first used) in.
    #[cfg(feature = "claims-changes")]
    pub fn claims_changes(mut self, changes: super::claims_changes::ClaimsChanges) -> Self {
        self.changes = Some(changes);
        self
    }

    /// Replaces the system clock (tests pin "now").
    pub fn clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Loads the policy and checks the configuration.
    pub fn build(self) -> Result<TierGate, BuildError> {
        let verifier = self.verifier.ok_or(BuildError::NoVerifier)?;
        check_issuers(&verifier, &self.others)?;
        let (store, watch) = match self.policy.ok_or(BuildError::NoPolicy)? {
            PolicySource::Fixed(p) => (PolicyStore::fixed(p), None),
            PolicySource::Store(s) => (s, None),
            PolicySource::File(path) => {
                let store = PolicyStore::open(&path)?;
                let watch = match self.watch {
                    Some(options) => Some(store.watch(options).map_err(|e| BuildError::Watch {
                        path,
                        message: e.to_string(),
                    })?),
                    None => None,
                };
                (store, watch)
            }
        };
        #[cfg(feature = "claims-changes")]
        let followers = std::iter::once((&verifier, self.changes))
            .chain(self.others.iter().map(|o| (&o.verifier, o.changes.clone())))
            .map(|(v, c)| c.map(|c| super::claims_changes::Follower::new(c, v.clone())))
            .collect();
        Ok(TierGate(Arc::new(GateInner {
            store,
            verifier,
            enforce: self.enforce,
            cookie: self.cookie,
            clock: self.clock,
            claims: self.claims,
            others: self.others.into_boxed_slice(),
            #[cfg(feature = "claims-changes")]
            followers,
            _watch: watch,
        })))
    }
}

/// With several issuers, each verifier names its issuers and none shares one: the
/// token's `iss` must pick exactly one verifier.
fn check_issuers(main: &Verifier, others: &[Issuer]) -> Result<(), BuildError> {
    if others.is_empty() {
        return Ok(());
    }
    let all = std::iter::once(main).chain(others.iter().map(|o| &o.verifier));
    let mut seen: Vec<&str> = Vec::new();
    for (i, v) in all.enumerate() {
        if v.issuers().len() == 0 {
            return Err(BuildError::Issuers(format!(
                "verifier {} accepts any issuer; with several issuers each must name its own (`.issuer(\"https://…\")`)",
                i.saturating_add(1)
            )));
        }
        for iss in v.issuers() {
            if seen.contains(&iss) {
                return Err(BuildError::Issuers(format!(
                    "two verifiers accept the issuer `{iss}`; each issuer belongs to one"
                )));
            }
            seen.push(iss);
        }
    }
    Ok(())
}

/// Why a gate could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No `.policy`, `.policy_file` or `.store`.
    #[error("no policy: call .policy_file(\"policies/saas.yaml\"), .policy(..) or .store(..)")]
    NoPolicy,
    /// Several issuers that a token's `iss` cannot tell apart.
    #[error("issuers: {0}")]
    Issuers(String),
    /// No `.verifier`.
    #[error("no verifier: call .verifier(Verifier::builder()...build()?)")]
    NoVerifier,
    /// The policy file is missing or invalid.
    #[error("{0}")]
    Policy(#[from] PolicyError),
    /// The verifier configuration is invalid.
    #[error("{0}")]
    Verifier(#[from] ConfigError),
    /// The policy file could not be watched.
    #[error("cannot watch {path:?}: {message}")]
    Watch {
        /// The policy file.
        path: PathBuf,
        /// The watcher's error.
        message: String,
    },
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<TierGate>();
    is::<Entitlements>();
    is::<VerifiedToken>();
}
