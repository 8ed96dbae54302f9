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

mod claims_section;
pub(crate) mod compile;
mod diagnostic;
pub(crate) mod model;
pub(crate) mod parse;
#[cfg(feature = "cli")]
mod schema;
#[cfg(feature = "cli")]
mod schema_names;
pub(crate) mod suggest;
pub(crate) mod validate;

use std::path::Path;
use std::sync::Arc;

pub use diagnostic::{Diagnostic, Diagnostics, PolicyError};
pub use parse::MAX_POLICY_BYTES;

use chrono::{DateTime, Utc};

use crate::claims::{Claims, ClaimsMapping};
use crate::engine::compiled::Access;
use crate::engine::{Entitlements, Limit, Policy, Revision, RuleRef};

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

    /// What this caller is entitled to at `now`. Pure: the same claims and time
    /// always give the same answer. Malformed claims are treated as absent and
    /// recorded in [`Entitlements::notes`]; this never fails.
    pub fn entitlements(&self, claims: &Claims, now: DateTime<Utc>) -> Entitlements {
        Entitlements::new(self.clone(), claims, now.timestamp())
    }

    /// The content hash of the policy file.
    pub fn revision(&self) -> Revision {
        self.0.revision
    }

    /// The name the policy was loaded under (usually its file path).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Plan names in tier order, lowest first.
    pub fn plans(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.plans.iter().map(|p| &*p.name)
    }

    /// The plan a caller without a (valid, known) plan claim is on.
    pub fn default_plan(&self) -> &str {
        &self.0.plan_def(self.0.default_plan).name
    }

    /// The plan an active trial lifts a caller to, if the policy has a trial.
    pub fn trial_plan(&self) -> Option<&str> {
        self.0.trial_plan.map(|p| &*self.0.plan_def(p).name)
    }

    /// The description of a plan, if it has one.
    pub fn plan_description(&self, plan: &str) -> Option<&str> {
        let id = *self.0.plan_ids.get(plan)?;
        self.0.plan_def(id).description.as_deref()
    }

    /// Declared feature names, in declaration order.
    pub fn features(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.features.iter().map(|f| &*f.name)
    }

    /// The description of a feature, if it has one.
    pub fn feature_description(&self, feature: &str) -> Option<&str> {
        let id = *self.0.feature_ids.get(feature)?;
        self.0.feature_def(id).description.as_deref()
    }

    /// Declared role names, in declaration order.
    pub fn roles(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.roles.iter().map(|r| &*r.name)
    }

    /// Names of every limit any plan sets.
    pub fn limits(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.limits.iter().map(|l| &**l)
    }

    /// The features a plan grants by itself (with inheritance; without roles or trial).
    pub fn plan_features(&self, plan: &str) -> Option<impl Iterator<Item = &str>> {
        let id = *self.0.plan_ids.get(plan)?;
        Some(
            self.0
                .plan_def(id)
                .features
                .iter()
                .map(|f| &*self.0.feature_def(f).name),
        )
    }

    /// A plan's value for a limit (with inheritance). `None` if the plan or limit is unknown.
    pub fn plan_limit(&self, plan: &str, limit: &str) -> Option<Limit> {
        let p = *self.0.plan_ids.get(plan)?;
        let l = *self.0.limit_ids.get(limit)?;
        Some(self.0.plan_def(p).limit(l))
    }

    /// The rule governing `method path`, if one matches.
    pub fn rule_for(&self, method: &str, path: &str) -> Option<RuleRef<'_>> {
        self.0
            .table
            .lookup(method, path)
            .map(|id| RuleRef::new(&self.0, id))
    }

    /// The policy's `claims:` section: where it reads each subscription claim in a
    /// token. `None` when it has none; the layer then reads the verifier's claims
    /// location (by default the reference server's layout, `preset: tiergate`).
    pub fn claims_mapping(&self) -> Option<&ClaimsMapping> {
        self.0.claims.as_ref()
    }

    /// Whether `method path` is marked `public` (needs no token at all).
    pub fn is_public(&self, method: &str, path: &str) -> bool {
        self.0
            .table
            .lookup(method, path)
            .is_some_and(|id| matches!(self.0.rule_def(id).access, Access::Public))
    }
}

/// Reads a policy file with the size cap applied before reading it whole.
/// The JSON Schema (draft 2020-12) of the policy language, derived from the
/// parser's own types: what `tiergate schema` prints, for editors
/// (yaml-language-server, JetBrains) to complete, document and check a policy
/// as it is typed.
#[cfg(feature = "cli")]
pub fn json_schema() -> serde_json::Value {
    schema::policy_schema()
}

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
