//! A limit's value: a count, or unlimited.

use std::fmt;

use serde::Serialize;

/// A numeric limit a plan grants. Ordered: any count is below `Unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Limit {
    /// At most this many.
    Count(u64),
    /// No limit.
    Unlimited,
}

impl Limit {
    /// Whether one more is allowed when `used` are in use (room while `used` is below the limit).
    pub fn allows(self, used: u64) -> bool {
        match self {
            Limit::Count(n) => used < n,
            Limit::Unlimited => true,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Count(n) => write!(f, "{n}"),
            Limit::Unlimited => f.write_str("unlimited"),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Count(n) => s.serialize_u64(*n),
            Limit::Unlimited => s.serialize_str("unlimited"),
        }
    }
}
