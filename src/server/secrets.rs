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
//! - **Passwords** that people choose get argon2id, through a [`Hasher`]: one
//!   thread per core and a bounded queue; beyond that it answers [`Busy`] at once (a
//!   503 with `Retry-After`), so a flood of wrong passwords costs bounded memory
//!   (~19 MiB per hashing thread) and never delays the valid calls that do not hash.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

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
#[non_exhaustive]
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

type Job = Box<dyn FnOnce() + Send>;

/// argon2id on a fixed set of threads (one per core by default) fed by a bounded
/// queue: a call that finds the queue full, or waits longer than `max_wait`, is
/// answered [`Busy`] at once.
///
/// Fixed threads rather than tokio's blocking pool because of memory: each argon2id
/// hash allocates 19 MiB, and the allocator keeps what a thread freed for that
/// thread's next use. On the blocking pool every hash may land on another of up to
/// 512 threads, and a flood of 224 wrong passwords left 225 MB resident after ten
/// hashes; on two fixed threads the same flood stays near 2 × 19 MiB.
#[derive(Debug, Clone)]
pub struct Hasher {
    queue: std::sync::mpsc::SyncSender<Job>,
    max_wait: Duration,
}

impl Default for Hasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Hasher::new(cores, cores.saturating_mul(4), Duration::from_secs(2))
    }
}

impl Hasher {
    /// A hasher with `threads` threads, `queued` calls waiting at most, each for at
    /// most `max_wait`. The threads end when the last clone of the hasher is dropped.
    pub fn new(threads: usize, queued: usize, max_wait: Duration) -> Hasher {
        let (queue, jobs) = std::sync::mpsc::sync_channel::<Job>(queued);
        let jobs = Arc::new(std::sync::Mutex::new(jobs));
        for i in 0..threads.max(1) {
            let jobs = jobs.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("tiergate-hash-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while taking a job, not while hashing.
                        let job = match jobs.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // every hasher is gone
                        }
                    }
                });
            if spawned.is_err() {
                tracing::error!(target: "tiergate::server", "cannot start a password hashing thread");
            }
        }
        Hasher { queue, max_wait }
    }

    /// Runs `work` on a hashing thread, or answers `Busy` when the queue is full or
    /// the wait is over. Work whose caller has stopped waiting is skipped.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if !tx.is_closed() {
                let _ = tx.send(work());
            }
        });
        self.queue.try_send(job).map_err(|_| Busy)?;
        match tokio::time::timeout(self.max_wait, rx).await {
            Ok(Ok(v)) => Ok(v),
            _ => Err(Busy),
        }
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
            match &stored {
                Some(h) => verify_now(&password, h),
                None => {
                    let _ = verify_now(&password, dummy);
                    false
                }
            }
        })
        .await
    }
}

/// The largest memory cost a stored hash may ask for (64 MiB): hashes are ours, so
/// a bigger one was not written by this server and is not run.
const MAX_M_COST_KIB: u32 = 64 * 1024;

thread_local! {
    /// argon2's working memory, kept by each thread that hashes and reused: a
    /// fresh 19 MiB allocation per hash is what the allocator failed to give back
    /// (resident memory grew by 19 MiB per hash up to ~210 MB).
    static BLOCKS: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// argon2 into `out`, in this thread's reused memory.
fn argon2_into(
    argon: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> bool {
    BLOCKS.with(|blocks| {
        let Ok(mut blocks) = blocks.try_borrow_mut() else {
            return false;
        };
        let need = params.block_count();
        if blocks.len() < need {
            blocks.resize(need, Block::default());
        }
        blocks.get_mut(..need).is_some_and(|b| {
            argon
                .hash_password_into_with_memory(password, salt, out, b)
                .is_ok()
        })
    })
}

/// Hashes a password with argon2id (default parameters) into a PHC string,
/// synchronously (the CLI, and the hasher's threads).
pub fn hash_now(password: &str) -> String {
    let mut salt = [0u8; 16];
    fill_random(&mut salt);
    let params = Params::default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let phc = argon2_into(&argon, &params, password.as_bytes(), &salt, &mut out)
        .then(|| {
            let salt = SaltString::encode_b64(&salt).ok()?;
            Some(
                PasswordHash {
                    algorithm: argon2::ARGON2ID_IDENT,
                    version: Some(Version::V0x13.into()),
                    params: ParamsString::try_from(&params).ok()?,
                    salt: Some(salt.as_salt()),
                    hash: Some(Output::new(&out).ok()?),
                }
                .to_string(),
            )
        })
        .flatten();
    // Only an argon2 bug could fail here: the answer is a hash nothing matches.
    phc.unwrap_or_else(|| "!unhashable".to_owned())
}

/// Checks a password against a PHC string, synchronously; `false` for anything that
/// is not an argon2 hash this server could have written.
fn verify_now(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = parsed
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .unwrap_or(Version::V0x13);
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST_KIB {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    argon2_into(&argon, &params, password.as_bytes(), salt, &mut out)
        // `Output`'s equality is constant-time.
        && Output::new(&out).is_ok_and(|o| o == expected)
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
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let blocked = |hasher: &Hasher| {
            let hasher = hasher.clone();
            let gate = gate.clone();
            let started_tx = started_tx.clone();
            tokio::spawn(async move {
                hasher
                    .run(move || {
                        let _ = started_tx.send(());
                        gate.lock().map(|g| g.recv().is_ok()).unwrap_or(false)
                    })
                    .await
            })
        };
        let running = blocked(&hasher);
        tokio::task::spawn_blocking(move || started.recv())
            .await
            .unwrap()
            .unwrap();
        // The one thread is busy; two calls fit in the queue.
        let queued = [blocked(&hasher), blocked(&hasher)];
        tokio::time::sleep(Duration::from_millis(100)).await;
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
        let h = hash_now("a password");
        assert!(hasher.verify("a password", Some(&h)).await.unwrap());
    }

    #[test]
    fn hashes_read_and_written_by_the_argon2_crate_itself_agree_with_ours() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(verify_now("correct horse", &theirs));
        assert!(!verify_now("wrong", &theirs));
        let ours = hash_now("correct horse");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        for junk in [
            "",
            "$argon2id$",
            "!unhashable",
            "$argon2id$v=19$m=999999999,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
        ] {
            assert!(!verify_now("x", junk), "{junk}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_whose_caller_gave_up_is_skipped() {
        let hasher = Hasher::new(1, 4, Duration::from_millis(50));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let slow = hasher.clone();
        let first = tokio::spawn(async move {
            slow.run(move || {
                let _ = started_tx.send(());
                gate.recv().is_ok()
            })
            .await
        });
        tokio::task::spawn_blocking(move || started.recv())
            .await
            .unwrap()
            .unwrap();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let late = hasher
            .run(move || flag.store(true, std::sync::atomic::Ordering::SeqCst))
            .await;
        assert_eq!(late, Err(Busy), "waited past max_wait");
        release.send(()).unwrap();
        // The first caller's own wait ran out too; whether its task saw the timer or the
        // finished work first depends on scheduling, and either answer is right.
        let first = first.await.unwrap();
        assert!(matches!(first, Err(Busy) | Ok(true)), "{first:?}");
        assert_eq!(hasher.run(|| 7).await, Ok(7));
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst), "skipped");
    }
}
