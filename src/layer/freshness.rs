//! Which subjects' claims changed, and when: the part of the claims-change
//! follower that every request reads. A token is *stale* when it was minted before
//! its subject's latest change: by claims version (`cv`) when both the token and
//! the change carry one, else by time (`iat` at or before the change's second —
//! `iat` is whole seconds, so a token minted in the same second as the change is
//! taken as stale: a needless refresh, never a stale token accepted).
//!
//! Memory is bounded twice. Changes older than the window (the issuer's longest
//! token lifetime) are dropped, since a token minted before them has expired. And
//! the map holds at most `max_subjects`: past that, it is emptied and a *floor* is
//! raised — every token issued at or before the newest change it held is stale — so
//! forgetting never lets a stale token through; it makes every client refresh once.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use dashmap::DashMap;

use crate::token::VerifiedToken;

/// The latest change seen for one subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mark {
    /// The claims version after the change, when the event carried one.
    version: Option<u64>,
    /// When it changed, unix seconds.
    at: i64,
}

/// The subjects whose claims changed within the window.
pub(crate) struct Freshness {
    marks: DashMap<Box<str>, Mark, foldhash::fast::RandomState>,
    /// How many marks (kept by the one writer, read on every request: an empty
    /// map costs one load).
    len: AtomicUsize,
    /// Tokens issued at or before this (unix seconds) are stale; `i64::MIN`: none.
    floor: AtomicI64,
    /// The newest change ever recorded (for the floor), unix seconds.
    newest: AtomicI64,
    /// Changes older than this many seconds are dropped.
    window_secs: AtomicI64,
    max_subjects: usize,
}

/// Why a token is stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stale {
    /// Its subject's claims changed after it was minted.
    Changed,
    /// Minted before the floor (the map overflowed and was emptied).
    BeforeFloor,
}

impl Freshness {
    pub(crate) fn new(window_secs: i64, max_subjects: usize) -> Freshness {
        Freshness {
            marks: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            len: AtomicUsize::new(0),
            floor: AtomicI64::new(i64::MIN),
            newest: AtomicI64::new(i64::MIN),
            window_secs: AtomicI64::new(window_secs),
            max_subjects: max_subjects.max(1),
        }
    }

    /// Sets the window (the issuer's longest token lifetime, in seconds).
    pub(crate) fn set_window(&self, secs: i64) {
        self.window_secs.store(secs.max(1), Ordering::Relaxed);
    }

    pub(crate) fn window_secs(&self) -> i64 {
        self.window_secs.load(Ordering::Relaxed)
    }

    /// Records that `subject`'s claims changed at `at` (to `version`). A change
    /// older than the window at `now` is ignored; an older change than the one
    /// held never lowers it.
    pub(crate) fn record(&self, subject: &str, version: Option<u64>, at: i64, now: i64) {
        if at < now.saturating_sub(self.window_secs()) {
            return;
        }
        let mark = Mark { version, at };
        match self.marks.get_mut(subject) {
            Some(mut held) => {
                held.version = match (held.version, version) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                held.at = held.at.max(at);
            }
            None => {
                if self.len.load(Ordering::Relaxed) >= self.max_subjects {
                    self.overflow();
                }
                self.marks.insert(subject.into(), mark);
                self.len.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.newest.fetch_max(at, Ordering::Relaxed);
    }

    /// Past `max_subjects`: forget every mark, and refuse every token issued at or
    /// before the newest change forgotten.
    fn overflow(&self) {
        let newest = self.newest.load(Ordering::Relaxed);
        self.floor.fetch_max(newest, Ordering::Relaxed);
        self.marks.clear();
        self.len.store(0, Ordering::Relaxed);
        tracing::warn!(
            target: "tiergate::claims_changes",
            max_subjects = self.max_subjects,
            "claims changes: more subjects changed within the window than the map holds; \
             every token issued before now is refused once (clients refresh)"
        );
    }

    /// Drops the marks (and the floor) older than the window at `now`.
    pub(crate) fn prune(&self, now: i64) {
        let cutoff = now.saturating_sub(self.window_secs());
        self.marks.retain(|_, m| m.at >= cutoff);
        let len = self.marks.len();
        self.len.store(len, Ordering::Relaxed);
        // A burst of changes leaves capacity behind; give most of it back.
        if len.saturating_mul(4) < self.marks.capacity() {
            self.marks.shrink_to_fit();
        }
        if self.floor.load(Ordering::Relaxed) < cutoff {
            self.floor.store(i64::MIN, Ordering::Relaxed);
        }
    }

    /// Whether `token` was minted before its subject's latest change.
    pub(crate) fn check(&self, token: &VerifiedToken) -> Result<(), Stale> {
        let floor = self.floor.load(Ordering::Relaxed);
        if floor != i64::MIN && token.issued_at().is_none_or(|iat| iat <= floor) {
            return Err(Stale::BeforeFloor);
        }
        if self.len.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let Some(subject) = token.subject() else {
            return Ok(());
        };
        let Some(mark) = self.marks.get(subject).map(|m| *m) else {
            return Ok(());
        };
        let stale = match (token.claims_version(), mark.version) {
            (Some(minted), Some(latest)) => minted < latest,
            _ => token.issued_at().is_none_or(|iat| iat <= mark.at),
        };
        if stale { Err(Stale::Changed) } else { Ok(()) }
    }

    /// How many subjects are held.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_version_or_time_wins_and_old_changes_are_ignored() {
        let f = Freshness::new(600, 10);
        f.record("usr_a", Some(3), 1_000, 1_000);
        f.record("usr_a", Some(2), 1_010, 1_010);
        assert_eq!(
            f.marks.get("usr_a").map(|m| *m),
            Some(Mark {
                version: Some(3),
                at: 1_010
            })
        );
        // Older than the window: a token minted before it has expired.
        f.record("usr_b", Some(1), 100, 1_000);
        assert!(f.marks.get("usr_b").is_none());
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn prune_drops_marks_older_than_the_window() {
        let f = Freshness::new(60, 10);
        f.record("usr_a", Some(1), 1_000, 1_000);
        f.record("usr_b", Some(1), 1_050, 1_050);
        f.prune(1_100);
        assert!(f.marks.get("usr_a").is_none());
        assert!(f.marks.get("usr_b").is_some());
        assert_eq!(f.len(), 1);
    }

    /// The bound: 100,000 subjects changed within the window fit in the
    /// stated size (`ClaimsChanges::max_subjects` documents ~100 bytes each), and
    /// once the window has passed they are gone and their memory returned.
    #[test]
    fn a_hundred_thousand_changes_fit_in_the_stated_size_and_leave_with_the_window() {
        const N: u64 = 100_000;
        const BOUND: i64 = 12 * 1024 * 1024;
        let f = Freshness::new(600, 200_000);
        let subjects: Vec<String> = (0..N).map(|i| format!("usr_{i:024x}")).collect();
        let held = allocation_counter::measure(|| {
            for (i, s) in subjects.iter().enumerate() {
                f.record(s, Some(i as u64), 1_000, 1_000);
            }
        });
        assert_eq!(f.len(), N as usize);
        println!(
            "{N} subjects: {} bytes held ({} per subject)",
            held.bytes_current,
            held.bytes_current / N as i64
        );
        assert!(held.bytes_current < BOUND, "{} bytes", held.bytes_current);
        let freed = allocation_counter::measure(|| f.prune(1_000 + 601));
        assert_eq!(f.len(), 0);
        assert!(f.marks.is_empty());
        assert!(
            freed.bytes_current < -(held.bytes_current * 3 / 4),
            "held {}, freed {}",
            held.bytes_current,
            -freed.bytes_current
        );
    }

    #[test]
    fn overflow_empties_the_map_and_raises_the_floor() {
        let f = Freshness::new(600, 2);
        f.record("usr_a", Some(1), 1_000, 1_000);
        f.record("usr_b", Some(1), 1_001, 1_001);
        f.record("usr_c", Some(1), 1_002, 1_002);
        assert_eq!(f.len(), 1);
        assert_eq!(f.floor.load(Ordering::Relaxed), 1_001);
        f.prune(1_001 + 601);
        assert_eq!(f.floor.load(Ordering::Relaxed), i64::MIN);
    }
}
