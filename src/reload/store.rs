//! The store: the running policy, swapped whole on a good reload and kept on a bad
//! one, with its status and a channel of revisions.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::engine::compiled::Compiled;
use crate::engine::{Policy, Revision};
use crate::policy::{PolicyError, read_policy_file};
use crate::telemetry;

/// The last rejected reload: what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// The full rendered error (code frames included).
    pub message: String,
    /// The line of the first problem, when the file was read but invalid.
    pub line: Option<usize>,
    /// Its column.
    pub column: Option<usize>,
    /// When the reload was rejected.
    pub at: SystemTime,
}

/// What the store is serving and how its reloads have gone.
#[derive(Debug, Clone)]
pub struct StoreStatus {
    /// The policy file, when the store follows one.
    pub path: Option<PathBuf>,
    /// The active policy's revision.
    pub revision: Revision,
    /// When the active policy was loaded.
    pub loaded_at: SystemTime,
    /// The last rejected reload, until a later reload succeeds or the file is back
    /// to the active content.
    pub last_error: Option<LastError>,
    /// Policies swapped in since the store was opened (the first load not counted).
    pub reloads: u64,
    /// Reloads rejected since the store was opened.
    pub rejections: u64,
}

/// What a successful [`PolicyStore::reload`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReloadOutcome {
    /// The file's content is the active policy's; nothing changed.
    Unchanged(Revision),
    /// A new policy is active.
    Swapped {
        /// The revision replaced.
        from: Revision,
        /// The revision now active.
        to: Revision,
    },
}

/// Milliseconds since the Unix epoch (at least 1, so 0 can mean "not failing").
fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}

struct State {
    loaded_at: SystemTime,
    last_error: Option<LastError>,
    reloads: u64,
    rejections: u64,
}

struct Inner {
    active: ArcSwap<Compiled>,
    path: Option<PathBuf>,
    state: Mutex<State>,
    /// Serializes reloads (the watcher and manual calls), never taken by requests.
    reloading: Mutex<()>,
    revisions: watch::Sender<Revision>,
    /// 0 when off.
    max_staleness_ms: AtomicU64,
    /// Since when (unix milliseconds) the file has failed to load; 0 while it loads.
    /// An atomic, not part of `state`, because every request reads it when a
    /// maximum staleness is set.
    failing_since_ms: AtomicU64,
}

/// The active policy, shared by every request and replaced atomically on reload.
/// Cheap to clone (one reference count).
#[derive(Clone)]
pub struct PolicyStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore")
            .field("status", &self.status())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave `State` half-updated in a way that
    // matters more than losing the status, so recover the guard rather than panic.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PolicyStore {
    /// Loads the policy file. A file that does not load is an error: the app should
    /// refuse to start rather than run without a policy (or with an allow-all one).
    pub fn open(path: impl AsRef<Path>) -> Result<PolicyStore, PolicyError> {
        let path = path.as_ref().to_owned();
        let policy = Policy::from_file(&path)?;
        Ok(PolicyStore::new(policy, Some(path)))
    }

    /// A store serving a policy built in code; it has no file, so it never reloads.
    pub fn fixed(policy: Policy) -> PolicyStore {
        PolicyStore::new(policy, None)
    }

    fn new(policy: Policy, path: Option<PathBuf>) -> PolicyStore {
        let (revisions, _) = watch::channel(policy.revision());
        telemetry::set_gauge(
            telemetry::POLICY_INFO,
            &[("revision", &policy.revision().to_string())],
            1.0,
        );
        PolicyStore {
            inner: Arc::new(Inner {
                active: ArcSwap::new(policy.0),
                path,
                state: Mutex::new(State {
                    loaded_at: SystemTime::now(),
                    last_error: None,
                    reloads: 0,
                    rejections: 0,
                }),
                reloading: Mutex::new(()),
                revisions,
                max_staleness_ms: AtomicU64::new(0),
                failing_since_ms: AtomicU64::new(0),
            }),
        }
    }

    /// After the file has failed to load for longer than `max`, [`Self::is_stale`]
    /// says so, and a gate can answer 503 instead of enforcing an outdated policy.
    /// `None` (the default) lets the last good policy serve indefinitely.
    pub fn set_max_staleness(&self, max: Option<Duration>) {
        let millis = max.map_or(0, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        self.inner.max_staleness_ms.store(millis, Ordering::Relaxed);
    }

    /// A snapshot of the active policy: one atomic load, no lock. Use one snapshot
    /// for a whole request.
    #[inline]
    pub fn policy(&self) -> Policy {
        Policy(self.inner.active.load_full())
    }

    /// The file the store follows, if any.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// A receiver that sees each new revision as it becomes active.
    pub fn subscribe(&self) -> watch::Receiver<Revision> {
        self.inner.revisions.subscribe()
    }

    /// The active revision, the last error and the counters.
    pub fn status(&self) -> StoreStatus {
        let state = lock(&self.inner.state);
        StoreStatus {
            path: self.inner.path.clone(),
            revision: self.inner.active.load().revision,
            loaded_at: state.loaded_at,
            last_error: state.last_error.clone(),
            reloads: state.reloads,
            rejections: state.rejections,
        }
    }

    /// Whether the file has failed to load for longer than the configured maximum
    /// staleness (always `false` when none is configured).
    pub fn is_stale(&self) -> bool {
        let max = match self.inner.max_staleness_ms.load(Ordering::Relaxed) {
            0 => return false,
            ms => Duration::from_millis(ms),
        };
        match self.inner.failing_since_ms.load(Ordering::Relaxed) {
            0 => false,
            since => unix_ms(SystemTime::now()).saturating_sub(since) > max.as_millis() as u64,
        }
    }

    /// Reads the file again and swaps in the new policy if its content changed.
    /// On any failure the active policy stays, the error is logged at `error` level
    /// and recorded in the status, and returned.
    pub fn reload(&self) -> Result<ReloadOutcome, PolicyError> {
        let Some(path) = &self.inner.path else {
            return Ok(ReloadOutcome::Unchanged(self.policy().revision()));
        };
        let _one_at_a_time = lock(&self.inner.reloading);
        let current = self.inner.active.load().revision;
        let outcome = read_policy_file(path).and_then(|source| {
            let revision = Revision::of(&source);
            if revision == current {
                return Ok(None);
            }
            Policy::compile_source(&source, &path.display().to_string(), revision).map(Some)
        });
        let mut state = lock(&self.inner.state);
        match outcome {
            Ok(None) => {
                state.last_error = None;
                self.inner.failing_since_ms.store(0, Ordering::Relaxed);
                Ok(ReloadOutcome::Unchanged(current))
            }
            Ok(Some(policy)) => {
                let to = policy.revision();
                self.inner.active.store(policy.0);
                state.loaded_at = SystemTime::now();
                state.last_error = None;
                self.inner.failing_since_ms.store(0, Ordering::Relaxed);
                state.reloads = state.reloads.saturating_add(1);
                drop(state);
                self.inner.revisions.send_replace(to);
                telemetry::increment(telemetry::POLICY_RELOADS, &[("outcome", "swapped")]);
                telemetry::set_gauge(
                    telemetry::POLICY_INFO,
                    &[("revision", &current.to_string())],
                    0.0,
                );
                telemetry::set_gauge(
                    telemetry::POLICY_INFO,
                    &[("revision", &to.to_string())],
                    1.0,
                );
                tracing::info!(path = %path.display(), from = %current, to = %to, "policy reloaded");
                Ok(ReloadOutcome::Swapped { from: current, to })
            }
            Err(err) => {
                let first = err.diagnostics().and_then(|d| d.items().first().cloned());
                let now = SystemTime::now();
                state.last_error = Some(LastError {
                    message: err.to_string(),
                    line: first.as_ref().map(|d| d.line).filter(|&l| l > 0),
                    column: first.as_ref().filter(|d| d.line > 0).map(|d| d.column),
                    at: now,
                });
                // Kept if already failing: the clock runs from the first failure.
                let _ = self.inner.failing_since_ms.compare_exchange(
                    0,
                    unix_ms(now),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                state.rejections = state.rejections.saturating_add(1);
                telemetry::increment(telemetry::POLICY_RELOADS, &[("outcome", "rejected")]);
                tracing::error!(
                    path = %path.display(),
                    active = %current,
                    "policy reload rejected; the last good policy stays active:\n{err}"
                );
                Err(err)
            }
        }
    }
}
