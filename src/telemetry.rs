//! tiergate's metrics, through the [`metrics`] facade: the names, and a per-thread
//! cache of counter handles so a request pays no allocation for its labels.
//!
//! tiergate installs no recorder. An application that wants the counters installs
//! one (e.g. `metrics-exporter-prometheus`) before serving; one that does not gets
//! the facade's no-op recorder. Every metric and its labels: `docs/metrics.md`.
//!
//! Why a cache of our own: `metrics::counter!` with label values that are not
//! `'static` (a rule's pattern, a plan's name — they come from the policy) builds an
//! owned key, one allocation per label, on every call and whatever the recorder, and
//! a Prometheus recorder then looks the key up in its registry. Here each thread
//! keeps the handle it was given, found by the *identity* of the label values — their
//! addresses and lengths, with the recorder's address and, for strings owned by a
//! compiled policy, that compilation's process-unique instance number — never by
//! hashing their bytes. Identity is enough: a `'static` string never changes, and a
//! policy's strings do not change while it lives; instance numbers are never reused,
//! so a string freed with one policy and reallocated by the next cannot be mistaken
//! for it. Hashing six labels' bytes with foldhash measured 37–45 ns a call; the
//! identities, a few nanoseconds. (The whole cost, with no recorder and with a
//! Prometheus one: the README's performance section.)

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use metrics::{Counter, Key, Label, Level, Metadata, Recorder};

/// Decisions of the layer: `outcome`, `reason`, `rule`, `plan`, `feature`, `upgrade_to`.
pub(crate) const DECISIONS: &str = "tiergate_decisions_total";
/// Tokens refused before any decision: `reason` (the token error's code).
pub(crate) const TOKENS_REFUSED: &str = "tiergate_tokens_refused_total";
/// Token verifications (signature checked, a cache miss): `result`, `alg`.
pub(crate) const VERIFICATIONS: &str = "tiergate_token_verifications_total";
/// Verified-token cache lookups: `result` (`hit`, `miss`).
pub(crate) const TOKEN_CACHE: &str = "tiergate_token_cache_total";
/// JWKS fetches: `outcome` (`ok`, `error`).
pub(crate) const JWKS_FETCHES: &str = "tiergate_jwks_fetches_total";
/// Policy reloads: `outcome` (`swapped`, `rejected`).
pub(crate) const POLICY_RELOADS: &str = "tiergate_policy_reloads_total";
/// The active policy revision: 1 for the running one, 0 for those it replaced.
pub(crate) const POLICY_INFO: &str = "tiergate_policy_info";
/// Claims-change feed requests of the layer's follower: `outcome` (`ok`, `error`).
pub(crate) const CLAIMS_FEED_POLLS: &str = "tiergate_claims_feed_polls_total";
/// Claims changes the follower applied.
pub(crate) const CLAIMS_FEED_CHANGES: &str = "tiergate_claims_feed_changes_total";

/// The reference server's claims changes: `kind` (`claims`, `revocation`).
pub(crate) const SERVER_CLAIMS_CHANGES: &str = "tiergate_server_claims_changes_total";
/// Access tokens the server minted: `kind` (`user`, `sign_in`, `refresh`, `machine`).
pub(crate) const SERVER_TOKENS_MINTED: &str = "tiergate_server_tokens_minted_total";
/// Failed authentications: `kind` (`client`, `password`, `refresh_token`).
pub(crate) const SERVER_AUTH_FAILURES: &str = "tiergate_server_auth_failures_total";
/// Requests refused by a rate limit: `limit` (`sign_in_account`, `sign_in_address`,
/// `failed_auth_client`, `failed_auth_address`).
pub(crate) const SERVER_RATE_LIMITED: &str = "tiergate_server_rate_limited_total";
/// Request latency per route (the route's pattern): `route`, `method`, `status` (`2xx`…).
pub(crate) const SERVER_REQUEST_SECONDS: &str = "tiergate_server_request_duration_seconds";

/// Metadata for tiergate's counters.
static METADATA: Metadata<'static> = Metadata::new("tiergate", Level::INFO, Some("tiergate"));

/// Past this many handles a thread's cache starts over (label sets are bounded by
/// the policy, but each new revision brings its own rules and plans).
const MAX_HANDLES: usize = 4096;

thread_local! {
    static HANDLES: RefCell<HashMap<u64, Counter, PassThrough>> =
        const { RefCell::new(HashMap::with_hasher(PassThrough)) };
}

/// Adds one to the counter `name` with these labels (values fixed in the program).
pub(crate) fn increment(name: &'static str, labels: &[(&'static str, &'static str)]) {
    count(name, STATIC_SCOPE, labels, 1);
}

/// Adds `n` to the counter `name` with these labels (values fixed in the program).
pub(crate) fn add(name: &'static str, labels: &[(&'static str, &'static str)], n: u64) {
    count(name, STATIC_SCOPE, labels, n);
}

/// Adds one to the counter `name`, with label values that are `'static` or owned by
/// the compiled policy whose instance number is `policy_instance` (and borrowed from
/// it while it lives).
pub(crate) fn increment_for_policy(
    name: &'static str,
    policy_instance: u64,
    labels: &[(&'static str, &str)],
) {
    // Instance numbers start at 0; the static scope is u64::MAX, which none reaches.
    count(name, policy_instance, labels, 1);
}

/// The scope of label values fixed in the program.
const STATIC_SCOPE: u64 = u64::MAX;

fn count(name: &'static str, scope: u64, labels: &[(&'static str, &str)], n: u64) {
    metrics::with_recorder(|recorder| {
        let id = identity(recorder, name, scope, labels);
        let cached = HANDLES.with(|handles| {
            let handles = handles.try_borrow().ok()?;
            handles.get(&id).map(|c| c.increment(n))
        });
        if cached.is_some() {
            return;
        }
        let key = Key::from_parts(
            name,
            labels
                .iter()
                .map(|(k, v)| Label::new(*k, (*v).to_owned()))
                .collect::<Vec<_>>(),
        );
        let counter = recorder.register_counter(&key, &METADATA);
        counter.increment(n);
        HANDLES.with(|handles| {
            if let Ok(mut handles) = handles.try_borrow_mut() {
                if handles.len() >= MAX_HANDLES {
                    handles.clear();
                }
                handles.insert(id, counter);
            }
        });
    });
}

/// Sets the gauge `name` with these labels (rare events: no cache).
pub(crate) fn set_gauge(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, (*v).to_owned()))
        .collect();
    metrics::gauge!(name, labels).set(value);
}

/// The identity of (recorder, metric, scope, label values), folded into 64 bits by
/// a multiply-rotate mix of their addresses and lengths, finished with a 64-bit
/// avalanche (MurmurHash3's) so that structured inputs (nearby addresses) spread.
/// The inputs are addresses, not data from a request: nobody outside chooses them.
/// Two different label sets meeting in 64 bits would count into one handle.
fn identity(
    recorder: &dyn Recorder,
    name: &'static str,
    scope: u64,
    labels: &[(&str, &str)],
) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |h: u64, x: u64| (h.rotate_left(5) ^ x).wrapping_mul(K);
    let addr = |s: &str| s.as_ptr() as u64;
    let recorder = std::ptr::from_ref(recorder).cast::<()>() as u64;
    let mut h = mix(mix(mix(0, recorder), addr(name)), scope);
    for (k, v) in labels {
        h = mix(mix(mix(h, addr(k)), addr(v)), v.len() as u64);
    }
    // fmix64
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The map's keys are already hashes.
#[derive(Clone, Copy, Default)]
struct PassThrough;

impl BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    type Counted = (String, Vec<(String, String)>, u64);

    fn counts(recorder: &DebuggingRecorder) -> Vec<Counted> {
        let mut out: Vec<_> = recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match value {
                DebugValue::Counter(n) => Some((
                    key.key().name().to_owned(),
                    key.key()
                        .labels()
                        .map(|l| (l.key().to_owned(), l.value().to_owned()))
                        .collect(),
                    n,
                )),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn each_recorder_gets_its_own_handles_and_labels_are_kept_apart() {
        let first = DebuggingRecorder::new();
        metrics::with_local_recorder(&first, || {
            increment(DECISIONS, &[("plan", "pro"), ("rule", "/a")]);
            increment(DECISIONS, &[("plan", "pro"), ("rule", "/a")]);
            increment(DECISIONS, &[("plan", "pr"), ("rule", "o/a")]);
        });
        // A recorder installed later is not handed the first one's handles.
        let second = DebuggingRecorder::new();
        metrics::with_local_recorder(&second, || {
            add(DECISIONS, &[("plan", "pro"), ("rule", "/a")], 5);
        });
        let pro = |n| {
            (
                DECISIONS.to_owned(),
                vec![("plan".into(), "pro".into()), ("rule".into(), "/a".into())],
                n,
            )
        };
        let split = (
            DECISIONS.to_owned(),
            vec![("plan".into(), "pr".into()), ("rule".into(), "o/a".into())],
            1,
        );
        assert_eq!(counts(&first), vec![split, pro(2)]);
        assert_eq!(counts(&second), vec![pro(5)]);
    }
}
