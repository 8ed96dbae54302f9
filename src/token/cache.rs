//! A bounded cache of verified tokens, so a token used for many requests is
//! verified once.
//!
//! Keyed by the whole token: one of its signature characters picks the shard, a
//! fast (randomly seeded) hash of its length and last 32 bytes picks the slot, and
//! the map compares the full bytes, never the hash alone. Only tokens that verified
//! are stored. A full shard makes room for an eighth of itself, stale entries first. An entry lives no longer than the token's `exp` (plus leeway) and the
//! configured maximum age, and `exp`, `nbf` and `iat` are checked against the clock
//! on every hit, so a hit answers exactly what a fresh verification would. What a
//! token's claims resolve to under a policy (plan and role ids) is kept with the
//! token, tagged with the compiled policy it came from, and not used under any
//! other, so a policy reload needs no flush; an entry verified with an older JWKS
//! key set is never used.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::verified::VerifiedToken;

/// Size limits and lifetime of the verified-token cache.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    max_entries: usize,
    max_bytes: usize,
    max_age: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            max_entries: 10_000,
            max_bytes: 16 * 1024 * 1024,
            max_age: Duration::from_secs(60),
        }
    }
}

impl CacheOptions {
    /// At most this many tokens (default 10,000).
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// At most about this many bytes of tokens and payloads (default 16 MiB).
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    /// An entry is verified again after this long even if its token is still valid
    /// (default 60 s).
    pub fn max_age(mut self, d: Duration) -> Self {
        self.max_age = d;
        self
    }
}

const SHARDS: usize = 16;

struct Entry {
    token: VerifiedToken,
    /// Unix seconds after which the entry is not used.
    stale_at: i64,
    generation: u64,
    bytes: usize,
}

type Shard = RwLock<HashMap<Box<[u8]>, Entry, TailHash>>;

/// Hashes a token by its length and its last [`TAIL`] bytes only. Those bytes are
/// signature bytes, as unpredictable as the whole token for every token that can be
/// in the cache (only verified tokens are stored), so hashing the other few hundred
/// bytes buys nothing. The map still compares whole tokens on lookup. Seeded at
/// random, as foldhash's `RandomState` is.
#[derive(Clone, Default)]
struct TailHash(foldhash::fast::RandomState);

const TAIL: usize = 32;

impl BuildHasher for TailHash {
    type Hasher = TailHasher;
    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

struct TailHasher(foldhash::fast::FoldHasher<'static>);

impl std::hash::Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write_usize(bytes.len());
        self.0.write(
            bytes
                .get(bytes.len().saturating_sub(TAIL)..)
                .unwrap_or(bytes),
        );
    }
    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

pub(crate) struct TokenCache {
    shards: Box<[Shard]>,
    options: CacheOptions,
    bytes: AtomicUsize,
}

impl TokenCache {
    pub(crate) fn new(options: CacheOptions) -> TokenCache {
        TokenCache {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(HashMap::default()))
                .collect(),
            options,
            bytes: AtomicUsize::new(0),
        }
    }

    // Each arm subtracts its own lowest byte (0–63 in all), and `% SHARDS` indexes
    // the `SHARDS` shards `new` made.
    #[allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]
    fn shard(&self, token: &[u8]) -> &Shard {
        // A signature character (the next to last: the last may carry only a few
        // bits), as random as a hash for any token that can be stored, and no second
        // hash on top of the map's own.
        let c = token
            .len()
            .checked_sub(2)
            .and_then(|i| token.get(i))
            .copied()
            .unwrap_or(0);
        // Its base64 value (0–63), so each shard gets the same share of them.
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            _ => 63,
        };
        &self.shards[usize::from(sextet) % SHARDS]
    }

    /// The cached token, if it is there, verified with the current key set
    /// (`generation`) and still valid at `now`.
    pub(crate) fn get(
        &self,
        token: &[u8],
        now: i64,
        leeway: i64,
        generation: u64,
    ) -> Option<VerifiedToken> {
        let shard = self.shard(token).read().unwrap_or_else(|p| p.into_inner());
        let e = shard.get(token)?;
        let fresh =
            e.generation == generation && now < e.stale_at && e.token.still_valid(now, leeway);
        fresh.then(|| e.token.clone())
    }

    /// Remembers a token that just verified.
    // The sums are byte counts of what is in memory (and `freed` never exceeds what
    // the cache counted in), far from overflowing a usize.
    #[allow(clippy::arithmetic_side_effects)]
    pub(crate) fn insert(
        &self,
        token: &[u8],
        verified: &VerifiedToken,
        now: i64,
        leeway: i64,
        generation: u64,
    ) {
        let max_age = i64::try_from(self.options.max_age.as_secs()).unwrap_or(i64::MAX);
        let stale_at = verified
            .exp_secs()
            .saturating_add(leeway)
            .min(now.saturating_add(max_age));
        let bytes = token.len() + verified.approx_bytes();
        let per_shard = (self.options.max_entries / SHARDS).max(1);
        let mut shard = self.shard(token).write().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= per_shard
            || self.bytes.load(Ordering::Relaxed) + bytes > self.options.max_bytes
        {
            // Make room for the next eighth of the shard at once, so the work is paid
            // once per many inserts: first whatever has gone stale, then arbitrary
            // entries (the map's order follows the random hash). Never wrong: an
            // evicted token only costs a verification when it comes back.
            let keep = per_shard - per_shard.div_ceil(8);
            let mut freed = 0;
            shard.retain(|_, e| {
                let fresh = now < e.stale_at;
                if !fresh {
                    freed += e.bytes;
                }
                fresh
            });
            while shard.len() > keep
                || (self.bytes.load(Ordering::Relaxed).saturating_sub(freed) + bytes
                    > self.options.max_bytes
                    && !shard.is_empty())
            {
                let Some(victim) = shard.keys().next().cloned() else {
                    break;
                };
                if let Some(e) = shard.remove(&victim) {
                    freed += e.bytes;
                }
            }
            self.bytes.fetch_sub(freed, Ordering::Relaxed);
            if self.bytes.load(Ordering::Relaxed) + bytes > self.options.max_bytes {
                return;
            }
        }
        let entry = Entry {
            token: verified.clone(),
            stale_at,
            generation,
            bytes,
        };
        if let Some(old) = shard.insert(token.into(), entry) {
            self.bytes.fetch_sub(old.bytes, Ordering::Relaxed);
        }
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Entries held (for tests and status).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Algorithm, Verifier};

    const SECRET: &[u8] = b"a unit-test secret that is long enough, 48 bytes";
    const T: i64 = 1_800_000_000;

    fn verified(exp: i64) -> (String, VerifiedToken) {
        let payload = serde_json::json!({ "iss": "i", "aud": "a", "exp": exp, "claims": {} });
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &payload,
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let v = Verifier::builder()
            .hmac_secret(Algorithm::HS256, SECRET)
            .issuer("i")
            .audience("a")
            .token_cache(None)
            .build()
            .unwrap();
        let t = v.verify_at(&token, T).unwrap();
        (token, t)
    }

    #[test]
    fn a_full_cache_evicts_a_little_at_a_time() {
        let cache = TokenCache::new(CacheOptions::default().max_entries(1024));
        let (mut before, mut worst_drop) = (0usize, 0usize);
        for i in 0..3_000 {
            let (token, t) = verified(T + 3_600 + i);
            cache.insert(token.as_bytes(), &t, T, 0, 0);
            let now = cache.len();
            assert!(now <= 1024, "{now}");
            worst_drop = worst_drop.max(before.saturating_sub(now));
            before = now;
        }
        // A full shard (64 entries) makes room for an eighth of itself, not more.
        assert!(worst_drop <= 8, "dropped {worst_drop} entries at once");
        assert!(before >= 1024 * 3 / 4, "{before} entries left");
    }

    #[test]
    fn tokens_spread_evenly_over_the_shards() {
        let cache = TokenCache::new(CacheOptions::default());
        let mut per_shard = [0usize; SHARDS];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for &c in alphabet {
            let token = format!("h.p.sig{}A", c as char);
            let shard: *const Shard = cache.shard(token.as_bytes());
            let i = cache
                .shards
                .iter()
                .position(|s| std::ptr::eq(s, shard))
                .unwrap();
            per_shard[i] += 1;
        }
        assert_eq!(per_shard, [4; SHARDS]);
    }

    #[test]
    fn an_entry_lives_no_longer_than_its_maximum_age() {
        let cache = TokenCache::new(CacheOptions::default().max_age(Duration::from_secs(60)));
        let (token, t) = verified(T + 3_600);
        cache.insert(token.as_bytes(), &t, T, 0, 0);
        assert!(cache.get(token.as_bytes(), T + 59, 0, 0).is_some());
        assert!(cache.get(token.as_bytes(), T + 60, 0, 0).is_none());
    }

    #[test]
    fn an_entry_lives_no_longer_than_its_token() {
        let cache = TokenCache::new(CacheOptions::default());
        let (token, t) = verified(T + 10);
        cache.insert(token.as_bytes(), &t, T, 0, 0);
        assert!(cache.get(token.as_bytes(), T + 9, 0, 0).is_some());
        assert!(cache.get(token.as_bytes(), T + 10, 0, 0).is_none());
    }

    #[test]
    fn an_entry_from_an_older_key_set_is_not_used() {
        let cache = TokenCache::new(CacheOptions::default());
        let (token, t) = verified(T + 3_600);
        cache.insert(token.as_bytes(), &t, T, 0, 7);
        assert!(cache.get(token.as_bytes(), T + 1, 0, 7).is_some());
        // The JWKS was fetched again: generation 8.
        assert!(cache.get(token.as_bytes(), T + 1, 0, 8).is_none());
    }

    #[test]
    fn the_hash_reads_only_the_tail_but_lookups_compare_everything() {
        let h = TailHash::default();
        let tail = "x".repeat(TAIL);
        // Same length, same tail: the same hash…
        assert_eq!(
            h.hash_one(format!("a{tail}").as_bytes()),
            h.hash_one(format!("b{tail}").as_bytes())
        );
        // …but not the same entry.
        let cache = TokenCache::new(CacheOptions::default());
        let (token, t) = verified(T + 3_600);
        cache.insert(token.as_bytes(), &t, T, 0, 0);
        let mut twin = token.clone().into_bytes();
        twin[0] = if twin[0] == b'e' { b'f' } else { b'e' };
        let twin = String::from_utf8(twin).unwrap();
        assert_eq!(h.hash_one(token.as_bytes()), h.hash_one(twin.as_bytes()));
        assert!(cache.get(twin.as_bytes(), T + 1, 0, 0).is_none());
        assert!(cache.get(token.as_bytes(), T + 1, 0, 0).is_some());
    }
}
