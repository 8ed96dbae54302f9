//! Where in a token's payload the subscription claims live.

/// Where in the token payload the subscription claims live.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimsLocation {
    /// Inside an object under this key (default: `claims`, as the reference server writes them).
    Nested(String),
    /// Directly at the top level of the payload (`{"plan": "pro", ...}`).
    TopLevel,
    /// At the top level with a namespace prefix (`{"https://example.com/plan": "pro"}`).
    Namespaced(String),
}

impl Default for ClaimsLocation {
    fn default() -> Self {
        ClaimsLocation::Nested("claims".to_owned())
    }
}

impl ClaimsLocation {
    /// Claims under keys starting with `prefix`, e.g. `https://example.com/`.
    pub fn namespaced(prefix: impl Into<String>) -> Self {
        ClaimsLocation::Namespaced(prefix.into())
    }
}
