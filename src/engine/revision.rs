//! Which policy is running: the SHA-256 of its file.

use std::fmt;

/// A policy revision: the SHA-256 of the policy file's bytes. Two instances serving
/// the same file report the same revision.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Revision(pub(crate) [u8; 32]);

impl Revision {
    pub(crate) fn of(source: &str) -> Revision {
        use sha2::Digest;
        Revision(sha2::Sha256::digest(source.as_bytes()).into())
    }

    /// All 64 hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Shows the first 12 hex digits, like a short git hash.
impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Revision({self})")
    }
}
