//! The compiled form of a policy: dense ids, bitsets and route tables.
//!
//! Built once per policy revision by [`crate::policy::compile`]; read-only after.
//! Every lookup a request needs is an index into a `Vec` or one hash of a short name.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::bitset::BitSet;
use super::limit::Limit;
use super::revision::Revision;
use super::routes::RouteTable;

pub(crate) type PlanId = u32;
pub(crate) type FeatureId = u32;
pub(crate) type RoleId = u32;
pub(crate) type LimitId = u32;
pub(crate) type RuleId = u32;

/// Name → dense id. foldhash is several times faster than SipHash on short keys
/// and keeps per-process random seeds.
pub(crate) type NameIndex = HashMap<Box<str>, u32, foldhash::fast::RandomState>;

/// The trial states a condition can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrialPhase {
    None,
    Active,
    Expired,
}

/// A condition with every name resolved to an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cond {
    Feature(FeatureId),
    PlanIn(Box<[PlanId]>),
    PlanAtLeast(PlanId),
    Role(Box<[RoleId]>),
    Trial(TrialPhase),
    SeatsAtLeast(u64),
    All(Box<[Cond]>),
    Any(Box<[Cond]>),
    Not(Box<Cond>),
}

#[derive(Debug)]
pub(crate) struct PlanDef {
    pub name: Box<str>,
    pub description: Option<Box<str>>,
    /// Own features plus everything inherited, resolved at compile time.
    pub features: BitSet,
    /// Indexed by [`LimitId`]; a limit neither set nor inherited is `Count(0)`.
    pub limits: Box<[Limit]>,
}

#[derive(Debug)]
pub(crate) struct FeatureDef {
    pub name: Box<str>,
    pub description: Option<Box<str>>,
    /// An extra condition (seats, plan, role, trial; never a feature) the feature needs.
    pub when: Option<Cond>,
    /// Every plan that grants it (with inheritance), in tier order.
    pub granting_plans: Box<[PlanId]>,
    /// The first role that grants it, if any role does.
    pub first_role: Option<RoleId>,
}

#[derive(Debug)]
pub(crate) struct RoleDef {
    pub name: Box<str>,
    pub features: BitSet,
}

#[derive(Debug)]
pub(crate) enum Access {
    Public,
    Authenticated,
    Require(Cond),
}

#[derive(Debug)]
pub(crate) struct RuleDef {
    pub pattern: Box<str>,
    pub methods: Option<Box<[Box<str>]>>,
    pub line: u32,
    pub access: Access,
    pub enforce: bool,
}

pub(crate) struct Compiled {
    pub name: Box<str>,
    /// Where the policy's `claims:` section reads claims from (`None`: not given).
    pub claims: Option<crate::claims::ClaimsMapping>,
    pub revision: Revision,
    /// Unique to this compilation in this process (unlike `revision`, which two
    /// compilations of the same file share): what per-token data derived from a
    /// policy is keyed by.
    pub instance: u64,
    pub plans: Vec<PlanDef>,
    pub plan_ids: NameIndex,
    pub default_plan: PlanId,
    pub trial_plan: Option<PlanId>,
    pub features: Vec<FeatureDef>,
    pub feature_ids: NameIndex,
    pub roles: Vec<RoleDef>,
    pub role_ids: NameIndex,
    pub limits: Vec<Box<str>>,
    pub limit_ids: NameIndex,
    pub rules: Vec<RuleDef>,
    pub table: RouteTable,
    /// `true` when unmatched requests from authenticated callers are allowed.
    pub unmatched_allows: bool,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("revision", &self.revision)
            .field("plans", &self.plans.len())
            .field("features", &self.features.len())
            .field("roles", &self.roles.len())
            .field("rules", &self.rules.len())
            .finish()
    }
}

// Every id indexes the vectors of the `Compiled` that handed it out: the compiler
// assigns ids as it pushes the entries, a plan's `limits` has one slot per limit id,
// and ids never cross policies (the layer checks `TokenPart::belongs_to`). So these
// lookups cannot miss; they are the only indexing into a compiled policy.
#[allow(clippy::indexing_slicing)]
impl Compiled {
    pub(crate) fn plan_def(&self, id: PlanId) -> &PlanDef {
        &self.plans[id as usize]
    }

    pub(crate) fn feature_def(&self, id: FeatureId) -> &FeatureDef {
        &self.features[id as usize]
    }

    pub(crate) fn role_def(&self, id: RoleId) -> &RoleDef {
        &self.roles[id as usize]
    }

    pub(crate) fn rule_def(&self, id: RuleId) -> &RuleDef {
        &self.rules[id as usize]
    }

    pub(crate) fn limit_name(&self, id: LimitId) -> &str {
        &self.limits[id as usize]
    }
}

#[allow(clippy::indexing_slicing)] // see `impl Compiled` above: one slot per limit id
impl PlanDef {
    pub(crate) fn limit(&self, id: LimitId) -> Limit {
        self.limits[id as usize]
    }
}

/// A compiled tier policy. Cheap to clone (one reference count); immutable.
///
/// Load one with [`Policy::from_yaml`] or [`Policy::from_file`].
#[derive(Clone)]
pub struct Policy(pub(crate) Arc<Compiled>);

impl Policy {
    /// This compilation's number, unique in the process (never reused): what data
    /// derived from this policy instance, or borrowed from it, is keyed by.
    pub(crate) fn instance(&self) -> u64 {
        self.0.instance
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
