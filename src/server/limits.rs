//! Rate limits that stop attackers, not customers.
//!
//! Four budgets, each a keyed GCRA bucket from `governor`, each per minute:
//!
//! | budget | key | spent by | answer when spent |
//! |---|---|---|---|
//! | sign-in per account | the email | every sign-in attempt, before hashing | 429 |
//! | sign-in per address | the client address | every sign-in attempt, before hashing | 429 |
//! | failed client authentication per client | the client id | wrong secrets only | 429 instead of 401 |
//! | failed client authentication per address | the client address | wrong secrets only | 429 instead of 401 |
//!
//! A client with the right secret is never refused, whoever failed before it from
//! the same address or with its id: checking a generated secret costs ~1 µs, so the
//! check always runs and only failures spend a budget. Sign-ins cost argon2id, so
//! their budgets are spent before the hash (successful sign-ins are rare enough to
//! count). An attacker can exhaust one account's sign-in budget and so delay that
//! person's sign-in by a minute; that is the price of capping guesses per account.
//!
//! (The module's example is its `example` test, below: the module is private.)

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Budgets per minute; `0` turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimits {
    /// Sign-in attempts per account (dashboard admins and users alike).
    pub sign_in_per_account: u32,
    /// Sign-in attempts per client address.
    pub sign_in_per_address: u32,
    /// Failed client authentications per client id.
    pub failed_auth_per_client: u32,
    /// Failed client authentications per client address.
    pub failed_auth_per_address: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            sign_in_per_account: 10,
            sign_in_per_address: 30,
            failed_auth_per_client: 30,
            failed_auth_per_address: 60,
        }
    }
}

impl RateLimits {
    /// Every budget off (tests and benchmarks that measure the rest).
    pub fn off() -> RateLimits {
        RateLimits {
            sign_in_per_account: 0,
            sign_in_per_address: 0,
            failed_auth_per_client: 0,
            failed_auth_per_address: 0,
        }
    }
}

/// Keys above this many make the next checks drop the buckets that are full again.
const PRUNE_ABOVE: usize = 10_000;

/// One keyed budget.
struct Budget<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    checks: AtomicU32,
}

impl<K: Hash + Eq + Clone> Budget<K> {
    fn new(per_minute: u32) -> Option<Budget<K>> {
        NonZeroU32::new(per_minute).map(|n| Budget {
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
            checks: AtomicU32::new(0),
        })
    }

    /// Spends one unit for `key`: `Err(seconds to wait)` when none is left.
    fn spend(&self, key: &K) -> Result<(), u64> {
        // Memory stays bounded: every 1,024 checks, forget keys whose bucket is full
        // again (they would behave exactly as new ones).
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(1024)
            && self.limiter.len() > PRUNE_ABOVE
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs().saturating_add(1)
        })
    }
}

/// Spends from `budget` (if configured); counts a refusal under `limit`.
fn spend<K: Hash + Eq + Clone>(
    budget: &Option<Budget<K>>,
    key: &K,
    limit: &'static str,
) -> Result<(), u64> {
    let spent = budget.as_ref().map_or(Ok(()), |b| b.spend(key));
    if spent.is_err() {
        crate::telemetry::increment(crate::telemetry::SERVER_RATE_LIMITED, &[("limit", limit)]);
    }
    spent
}

/// The server's budgets.
pub struct Limiter {
    sign_in_account: Option<Budget<String>>,
    sign_in_address: Option<Budget<IpAddr>>,
    failed_client: Option<Budget<String>>,
    failed_address: Option<Budget<IpAddr>>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").finish_non_exhaustive()
    }
}

impl Limiter {
    /// Budgets as configured.
    pub fn new(limits: &RateLimits) -> Limiter {
        Limiter {
            sign_in_account: Budget::new(limits.sign_in_per_account),
            sign_in_address: Budget::new(limits.sign_in_per_address),
            failed_client: Budget::new(limits.failed_auth_per_client),
            failed_address: Budget::new(limits.failed_auth_per_address),
        }
    }

    /// Spends one sign-in attempt of the address and then of the account (an address
    /// over its budget spends nothing of the account's). `Err(seconds to wait)`.
    pub fn sign_in(&self, account: &str, addr: IpAddr) -> Result<(), u64> {
        spend(&self.sign_in_address, &addr, "sign_in_address")?;
        spend(
            &self.sign_in_account,
            &account.to_owned(),
            "sign_in_account",
        )
    }

    /// Records a failed client authentication. `Err(seconds to wait)` when the
    /// client's or the address's failure budget is spent: answer 429, not 401.
    pub fn failed_auth(&self, client_id: &str, addr: IpAddr) -> Result<(), u64> {
        let by_addr = spend(&self.failed_address, &addr, "failed_auth_address");
        // Ids are attacker-chosen: cap their length so keys stay small.
        let id: String = client_id.chars().take(64).collect();
        let by_client = spend(&self.failed_client, &id, "failed_auth_client");
        by_addr.and(by_client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sign_in_budgets_are_per_account_and_per_address() {
        let l = Limiter::new(&RateLimits {
            sign_in_per_account: 3,
            sign_in_per_address: 5,
            ..RateLimits::off()
        });
        for _ in 0..3 {
            assert!(l.sign_in("kate@example.com", ip("192.0.2.1")).is_ok());
        }
        let wait = l.sign_in("kate@example.com", ip("192.0.2.2")).unwrap_err();
        assert!((1..=61).contains(&wait), "{wait}");
        assert!(l.sign_in("ada@example.com", ip("192.0.2.1")).is_ok());
        assert!(l.sign_in("bob@example.com", ip("192.0.2.1")).is_ok());
        assert!(
            l.sign_in("cy@example.com", ip("192.0.2.1")).is_err(),
            "five attempts from one address"
        );
    }

    #[test]
    fn failures_spend_the_clients_and_the_addresss_budgets() {
        let l = Limiter::new(&RateLimits {
            failed_auth_per_client: 2,
            failed_auth_per_address: 100,
            ..RateLimits::off()
        });
        assert!(l.failed_auth("cli_1", ip("192.0.2.1")).is_ok());
        assert!(l.failed_auth("cli_1", ip("192.0.2.2")).is_ok());
        assert!(l.failed_auth("cli_1", ip("192.0.2.3")).is_err());
        assert!(l.failed_auth("cli_2", ip("192.0.2.3")).is_ok());
    }

    #[test]
    fn off_means_off() {
        let l = Limiter::new(&RateLimits::off());
        for _ in 0..1000 {
            assert!(l.sign_in("a@example.com", ip("192.0.2.1")).is_ok());
            assert!(l.failed_auth("x", ip("192.0.2.1")).is_ok());
        }
    }
}

#[cfg(test)]
mod example {
    use super::{Limiter, RateLimits};
    use std::net::IpAddr;

    #[test]
    fn an_address_spends_its_failure_budget_across_clients() {
        let limits = RateLimits {
            failed_auth_per_address: 2,
            ..RateLimits::default()
        };
        let limiter = Limiter::new(&limits);
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(limiter.failed_auth("cli_a", addr).is_ok());
        assert!(limiter.failed_auth("cli_b", addr).is_ok());
        assert!(limiter.failed_auth("cli_c", addr).is_err()); // the address's failures are spent
    }
}
