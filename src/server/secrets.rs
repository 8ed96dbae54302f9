//! Secrets: generated client secrets (a fast keyed hash), human passwords (argon2id,
//! bounded), random ids.
//!
//! Two kinds of secret, two hashes:
//!
//! - **Client secrets** are 256 random bits the server generates. Nothing can guess
//!   them, so a slow hash buys nothing and costs ~30 ms of CPU and 19 MiB per call
//!   (41 writes/s on this machine's 2 cores). They are stored as
//!   `hmac-sha256$<salt>$<mac>` — HMAC-SHA256 keyed with a per-client random salt —
//!   and compared in constant time: ~1 µs. Clients created before this keep their
//!   argon2id hash until their first successful call, which re-hashes.
//! - **Passwords** that people choose get argon2id, through a [`Hasher`] that runs
//!   at most one hash per core and queues a bounded number more; beyond that it
//!   answers [`Busy`] at once (a 503 with `Retry-After`), so a flood of wrong
//!   passwords costs bounded memory (~19 MiB per running hash) and never delays
//!   the valid calls that do not hash at all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// Fills `buf` from the system's random source. The only failure is an OS without
/// one, where no secret could be made safely: stopping is the honest answer.
fn fill_random(buf: &mut [u8]) {
    #[allow(clippy::expect_used)] // no random source: nothing safe can continue
    getrandom::fill(buf).expect("the system random source works");
}

/// `n` random bytes as lower-case hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    fill_random(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random id with a type prefix, e.g. `usr_3f9a…`.
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_hex(12))
}

/// A random secret (32 bytes, base64url): client secrets, refresh tokens.
pub fn random_secret() -> String {
    let mut buf = [0u8; 32];
    fill_random(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 hex: how refresh tokens and session ids are stored (they are random,
/// so no salt is needed).
pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const CLIENT_HASH_PREFIX: &str = "hmac-sha256$";

fn client_mac(salt: &[u8], secret: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(salt)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(secret.as_bytes());
    mac
}

/// Hashes a generated client secret: `hmac-sha256$<salt>$<mac>` (base64url).
pub fn hash_client_secret(secret: &str) -> String {
    let mut salt = [0u8; 16];
    fill_random(&mut salt);
    let tag = client_mac(&salt, secret).finalize().into_bytes();
    format!(
        "{CLIENT_HASH_PREFIX}{}${}",
        URL_SAFE_NO_PAD.encode(salt),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Checks a client secret against a stored `hmac-sha256$…` hash in constant time.
/// `None` when the stored text is not such a hash.
fn check_hmac(secret: &str, stored: &str) -> Option<bool> {
    let rest = stored.strip_prefix(CLIENT_HASH_PREFIX)?;
    let (salt, tag) = rest.split_once('$')?;
    let salt = URL_SAFE_NO_PAD.decode(salt).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    Some(client_mac(&salt, secret).verify_slice(&tag).is_ok())
}

/// What checking a client secret found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCheck {
    /// The secret is right.
    Valid,
    /// The secret is right and its stored hash is an old argon2id one: store this
    /// instead.
    ValidRehash(String),
    /// Wrong secret, or no such client.
    Invalid,
}

/// Checks a client secret against its stored hash (`None`: no such client, checked
/// against a dummy so the answer takes the same time). Old argon2id hashes go
/// through `hasher`.
pub async fn check_client_secret(
    hasher: &Hasher,
    secret: &str,
    stored: Option<&str>,
) -> Result<ClientCheck, Busy> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let Some(stored) = stored else {
        let dummy = DUMMY.get_or_init(|| hash_client_secret(&random_secret()));
        let _ = check_hmac(secret, dummy);
        return Ok(ClientCheck::Invalid);
    };
    if let Some(ok) = check_hmac(secret, stored) {
        return Ok(if ok {
            ClientCheck::Valid
        } else {
            ClientCheck::Invalid
        });
    }
    // An argon2id hash from before client secrets were HMACs.
    if hasher.verify(secret, Some(stored)).await? {
        Ok(ClientCheck::ValidRehash(hash_client_secret(secret)))
    } else {
        Ok(ClientCheck::Invalid)
    }
}

/// The password hasher is at capacity: try again in a moment (503).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is at capacity; retry in a moment")]
pub struct Busy;

/// argon2id with bounded concurrency: at most `running` hashes at once (one per
/// core by default), at most `queued` more waiting, each for at most `max_wait`.
#[derive(Debug, Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    queued: usize,
    max_wait: Duration,
}

impl Default for Hasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Hasher::new(cores, cores.saturating_mul(4), Duration::from_secs(2))
    }
}

/// Counts a waiter for as long as it waits, even when its request is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hasher {
    /// A hasher running at most `running` hashes, with `queued` more waiting at most
    /// `max_wait` each.
    pub fn new(running: usize, queued: usize, max_wait: Duration) -> Hasher {
        Hasher {
            permits: Arc::new(Semaphore::new(running.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            queued,
            max_wait,
        }
    }

    /// Runs `work` on a blocking thread once a permit is free, or answers `Busy`.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queued {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(Busy);
                }
                let _waiting = Waiting(&self.waiting);
                match tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned())
                    .await
                {
                    Ok(Ok(p)) => p,
                    _ => return Err(Busy),
                }
            }
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| Busy)
    }

    /// Hashes a password with argon2id.
    pub async fn hash(&self, password: &str) -> Result<String, Busy> {
        let password = password.to_owned();
        self.run(move || hash_now(&password)).await
    }

    /// Checks a password against a stored argon2id hash. With no stored hash (an
    /// unknown account), checks against a dummy hash anyway, so the answer takes the
    /// same time either way.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, Busy> {
        let password = password.to_owned();
        let stored = stored.map(str::to_owned);
        self.run(move || {
            static DUMMY: OnceLock<String> = OnceLock::new();
            let dummy = DUMMY.get_or_init(|| hash_now(&random_secret()));
            let (hash, real) = match &stored {
                Some(h) => (h.as_str(), true),
                None => (dummy.as_str(), false),
            };
            let ok = PasswordHash::new(hash).is_ok_and(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            });
            ok && real
        })
        .await
    }
}

/// Hashes a password synchronously (the CLI, and the hasher's blocking threads).
pub fn hash_now(password: &str) -> String {
    let mut salt = [0u8; 16];
    fill_random(&mut salt);
    // 16 bytes is always a valid salt, and the default parameters always hash: an
    // error here would be argon2's bug, answered with an unusable hash (never a match).
    SaltString::encode_b64(&salt)
        .ok()
        .and_then(|salt| {
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .ok()
                .map(|h| h.to_string())
        })
        .unwrap_or_else(|| "!unhashable".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_and_unknown_accounts_never_do() {
        let hasher = Hasher::default();
        let h = hasher.hash("correct horse").await.unwrap();
        assert!(hasher.verify("correct horse", Some(&h)).await.unwrap());
        assert!(!hasher.verify("wrong", Some(&h)).await.unwrap());
        assert!(!hasher.verify("anything", None).await.unwrap());
    }

    #[tokio::test]
    async fn client_secrets_use_a_keyed_hash_and_old_argon2_hashes_are_rehashed() {
        let hasher = Hasher::default();
        let secret = random_secret();
        let stored = hash_client_secret(&secret);
        assert!(stored.starts_with("hmac-sha256$"), "{stored}");
        assert_ne!(stored, hash_client_secret(&secret), "salted");
        let check = |s: &'static str, stored: Option<String>| {
            let hasher = hasher.clone();
            async move { check_client_secret(&hasher, s, stored.as_deref()).await }
        };
        let leaked: &'static str = Box::leak(secret.clone().into_boxed_str());
        assert_eq!(
            check(leaked, Some(stored.clone())).await,
            Ok(ClientCheck::Valid)
        );
        assert_eq!(check("wrong", Some(stored)).await, Ok(ClientCheck::Invalid));
        assert_eq!(check(leaked, None).await, Ok(ClientCheck::Invalid));
        let old = hash_now(&secret);
        let Ok(ClientCheck::ValidRehash(new)) = check(leaked, Some(old.clone())).await else {
            panic!("an argon2 hash of the right secret is valid and re-hashed");
        };
        assert_eq!(check(leaked, Some(new)).await, Ok(ClientCheck::Valid));
        assert_eq!(check("wrong", Some(old)).await, Ok(ClientCheck::Invalid));
        assert_eq!(
            check(leaked, Some("hmac-sha256$broken".into())).await,
            Ok(ClientCheck::Invalid),
            "a damaged stored hash never matches"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_hasher_answers_busy_at_once_instead_of_queueing_without_bound() {
        let hasher = Hasher::new(1, 2, Duration::from_secs(30));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let blocked = |hasher: &Hasher| {
            let hasher = hasher.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                hasher
                    .run(move || gate.lock().map(|g| g.recv().is_ok()).unwrap_or(false))
                    .await
            })
        };
        let running = blocked(&hasher);
        while hasher.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let queued = [blocked(&hasher), blocked(&hasher)];
        while hasher.waiting.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        for _ in 0..9 {
            assert_eq!(
                hasher.run(|| ()).await,
                Err(Busy),
                "beyond the queue: busy at once"
            );
        }
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        assert_eq!(running.await.unwrap(), Ok(true));
        for q in queued {
            assert_eq!(q.await.unwrap(), Ok(true), "the queued ones run");
        }
        assert_eq!(hasher.waiting.load(Ordering::Acquire), 0);
        let h = hash_now("a password");
        assert!(hasher.verify("a password", Some(&h)).await.unwrap());
    }
}
