//! Loading a policy: parse → validate → compile, each stage with its own errors.
//!
//! ```
//! use tiergate::Policy;
//!
//! let policy = Policy::from_yaml(r#"
//! version: 1
//! plans:
//!   free: { features: [dashboard] }
//!   pro:  { extends: free, features: [sso] }
//! features:
//!   dashboard: {}
//!   sso: {}
//! routes:
//!   - { path: /sso, require: sso }
//! "#)?;
//! assert_eq!(policy.plans().collect::<Vec<_>>(), ["free", "pro"]);
//!
//! // A typo is an error with its line, column and a fix, never a silent deny.
//! let err = Policy::from_yaml("version: 1\nplans:\n  free: { features: [dashbord] }\n").unwrap_err();
//! assert!(err.to_string().contains("unknown feature `dashbord`"));
//! # Ok::<(), tiergate::PolicyError>(())
//! ```

pub(crate) mod compile;
mod diagnostic;
pub(crate) mod model;
pub(crate) mod parse;
pub(crate) mod suggest;
pub(crate) mod validate;

use std::path::Path;
use std::sync::Arc;

pub use diagnostic::{Diagnostic, Diagnostics, PolicyError};
pub use parse::MAX_POLICY_BYTES;

use crate::engine::{Policy, Revision};

impl Policy {
    /// Compiles a policy from YAML text. Errors name the file as `<policy>`.
    pub fn from_yaml(source: &str) -> Result<Policy, PolicyError> {
        Policy::from_yaml_named(source, "<policy>")
    }

    /// Compiles a policy from YAML text, naming it `name` in errors and decisions.
    pub fn from_yaml_named(source: &str, name: &str) -> Result<Policy, PolicyError> {
        Policy::compile_source(source, name, Revision::of(source))
    }

    /// The three stages, for a caller that has already hashed `source` (the reloader
    /// compares revisions before compiling, and should not hash the file twice).
    pub(crate) fn compile_source(
        source: &str,
        name: &str,
        revision: Revision,
    ) -> Result<Policy, PolicyError> {
        let invalid = |items| PolicyError::Invalid(Diagnostics::new(name, source, items));
        let doc = parse::parse_policy(source).map_err(invalid)?;
        let checked = validate::validate(&doc).map_err(invalid)?;
        let compiled = compile::compile(checked, name, revision).map_err(|e| {
            invalid(vec![Diagnostic::at(
                0,
                0,
                1,
                format!("internal error building the route table: {e}"),
            )])
        })?;
        Ok(Policy(Arc::new(compiled)))
    }

    /// Reads and compiles a policy file (at most [`MAX_POLICY_BYTES`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Policy, PolicyError> {
        let path = path.as_ref();
        let source = read_policy_file(path)?;
        Policy::from_yaml_named(&source, &path.display().to_string())
    }
}

/// Reads a policy file with the size cap applied before reading it whole.
pub(crate) fn read_policy_file(path: &Path) -> Result<String, PolicyError> {
    let io = |source| PolicyError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_POLICY_BYTES as u64 {
        return Err(PolicyError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            max: MAX_POLICY_BYTES as u64,
        });
    }
    std::fs::read_to_string(path).map_err(io)
}
