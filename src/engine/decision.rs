//! The answer to "may this caller do X?": allow or deny, why, under which rule,
//! and which plan would change the answer.
//!
//! ```
//! use tiergate::{Claims, Policy, Reason};
//!
//! let policy = Policy::from_yaml(tiergate::EXAMPLE_POLICY)?;
//! let claims = Claims::from_object(&serde_json::json!({ "plan": "free" }));
//! let ent = policy.entitlements(&claims, chrono::Utc::now());
//!
//! let d = ent.check_route("POST", "/api/reports/export");
//! assert!(!d.allowed());
//! assert_eq!(d.reason(), Reason::FeatureNotInPlan);
//! assert_eq!(d.feature(), Some("reports.export"));
//! assert_eq!(d.upgrade_to(), Some("starter"));
//! assert_eq!(d.rule().map(|r| r.pattern()), Some("/api/reports/export"));
//! # Ok::<(), tiergate::PolicyError>(())
//! ```

use std::fmt;

use serde::Serialize;
use serde::ser::SerializeStruct;

use super::compiled::{Compiled, FeatureId, LimitId, PlanId, RoleId, RuleId};
use super::limit::Limit;
use super::revision::Revision;
use crate::claims::Notes;

/// A stable, snake_case reason code for a decision. Codes are part of the API:
/// clients may branch on them, so they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// Allowed: the route is marked `public`.
    Public,
    /// Allowed: the route (or feature) requirement holds.
    Granted,
    /// Allowed: the route has no requirement beyond a valid token, or no route
    /// matched and the policy says `unmatched: authenticated`.
    Authenticated,
    /// Allowed: usage is below the limit.
    WithinLimit,
    /// Denied: the caller's plan does not include the feature.
    FeatureNotInPlan,
    /// Denied: a role is required (the feature comes only from a role, or the rule names one).
    RoleRequired,
    /// Denied: the rule requires a particular plan or tier.
    PlanRequired,
    /// Denied: the feature came only from a trial that has ended.
    TrialExpired,
    /// Denied: the rule requires an active trial and the caller has none.
    TrialRequired,
    /// Denied: the caller does not have enough seats.
    SeatsRequired,
    /// Denied: usage has reached the plan's limit.
    LimitReached,
    /// Denied: no route matches and the policy says `unmatched: deny`.
    NoMatchingRoute,
    /// Denied: a `not:` or `trial: expired|none` condition did not hold.
    ConditionNotMet,
    /// Denied: the code asked about a feature the policy does not declare.
    UnknownFeature,
    /// Denied: the code asked about a limit no plan sets.
    UnknownLimit,
}

impl Reason {
    /// Every reason code, for documentation and coverage checks.
    pub const ALL: [Reason; 15] = [
        Reason::Public,
        Reason::Granted,
        Reason::Authenticated,
        Reason::WithinLimit,
        Reason::FeatureNotInPlan,
        Reason::RoleRequired,
        Reason::PlanRequired,
        Reason::TrialExpired,
        Reason::TrialRequired,
        Reason::SeatsRequired,
        Reason::LimitReached,
        Reason::NoMatchingRoute,
        Reason::ConditionNotMet,
        Reason::UnknownFeature,
        Reason::UnknownLimit,
    ];

    /// The snake_case code, e.g. `"feature_not_in_plan"`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Public => "public",
            Reason::Granted => "granted",
            Reason::Authenticated => "authenticated",
            Reason::WithinLimit => "within_limit",
            Reason::FeatureNotInPlan => "feature_not_in_plan",
            Reason::RoleRequired => "role_required",
            Reason::PlanRequired => "plan_required",
            Reason::TrialExpired => "trial_expired",
            Reason::TrialRequired => "trial_required",
            Reason::SeatsRequired => "seats_required",
            Reason::LimitReached => "limit_reached",
            Reason::NoMatchingRoute => "no_matching_route",
            Reason::ConditionNotMet => "condition_not_met",
            Reason::UnknownFeature => "unknown_feature",
            Reason::UnknownLimit => "unknown_limit",
        }
    }

    /// Parses a code as written in policy test files.
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A route rule of the policy, as a decision refers to it.
#[derive(Clone, Copy)]
pub struct RuleRef<'p> {
    policy: &'p Compiled,
    id: RuleId,
}

impl<'p> RuleRef<'p> {
    pub(crate) fn new(policy: &'p Compiled, id: RuleId) -> Self {
        RuleRef { policy, id }
    }

    /// The route pattern as written, e.g. `/api/reports/{*rest}`.
    pub fn pattern(&self) -> &'p str {
        &self.policy.rule_def(self.id).pattern
    }

    /// The methods the rule names, or `None` when it covers every method.
    pub fn methods(&self) -> Option<impl Iterator<Item = &'p str>> {
        self.policy
            .rule_def(self.id)
            .methods
            .as_ref()
            .map(|ms| ms.iter().map(|m| &**m))
    }

    /// The 1-based line of the rule in the policy file.
    pub fn line(&self) -> u32 {
        self.policy.rule_def(self.id).line
    }

    /// `false` when the rule says `enforce: false` (observe mode): the layer logs a
    /// denial of this rule as a would-be denial and lets the request through.
    pub fn enforced(&self) -> bool {
        self.policy.rule_def(self.id).enforce
    }
}

impl fmt::Debug for RuleRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (line {})", self.pattern(), self.line())
    }
}

impl Serialize for RuleRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Rule", 3)?;
        st.serialize_field("pattern", self.pattern())?;
        st.serialize_field("methods", &self.methods().map(|m| m.collect::<Vec<_>>()))?;
        st.serialize_field("line", &self.line())?;
        st.end()
    }
}

/// A limit check's numbers, carried on a limit decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LimitUsage {
    /// The caller's limit.
    pub limit: Limit,
    /// The usage the caller reported.
    pub used: u64,
}

/// One decision. Borrowed from the [`crate::Entitlements`] it was made for, so making
/// one allocates nothing and costs no reference-count traffic.
#[derive(Clone, Copy)]
pub struct Decision<'p> {
    pub(crate) policy: &'p Compiled,
    pub(crate) allowed: bool,
    pub(crate) reason: Reason,
    pub(crate) rule: Option<RuleId>,
    pub(crate) feature: Option<FeatureId>,
    pub(crate) role: Option<RoleId>,
    pub(crate) limit: Option<(LimitId, LimitUsage)>,
    pub(crate) plan: PlanId,
    pub(crate) upgrade_to: Option<PlanId>,
    pub(crate) notes: Notes,
}

impl<'p> Decision<'p> {
    /// Whether the caller may proceed.
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// Why.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The route rule that decided, for route decisions that matched one.
    pub fn rule(&self) -> Option<RuleRef<'p>> {
        self.rule.map(|id| RuleRef::new(self.policy, id))
    }

    /// The feature the decision is about (the one checked, or the one a rule needed).
    pub fn feature(&self) -> Option<&'p str> {
        self.feature.map(|f| &*self.policy.feature_def(f).name)
    }

    /// The role that would allow it, for `role_required`.
    pub fn role(&self) -> Option<&'p str> {
        self.role.map(|r| &*self.policy.role_def(r).name)
    }

    /// The limit's name and numbers, for limit decisions.
    pub fn limit(&self) -> Option<(&'p str, LimitUsage)> {
        self.limit.map(|(id, u)| (self.policy.limit_name(id), u))
    }

    /// The caller's effective plan when the decision was made.
    pub fn plan(&self) -> &'p str {
        &self.policy.plan_def(self.plan).name
    }

    /// For a denial: the lowest plan above the caller's own (claimed) plan on which this
    /// caller would be allowed; `None` when no plan would (a role is missing, say) or
    /// when allowed.
    pub fn upgrade_to(&self) -> Option<&'p str> {
        self.upgrade_to.map(|p| &*self.policy.plan_def(p).name)
    }

    /// The revision of the policy that decided.
    pub fn revision(&self) -> Revision {
        self.policy.revision
    }

    /// Claims that were malformed or unknown and treated as absent.
    pub fn notes(&self) -> Notes {
        self.notes
    }

    /// One sentence for the person who was refused (or let in), naming the plan that
    /// would help: what the layer sends as a 403's `detail`.
    pub fn explanation(&self) -> String {
        let plan = self.plan();
        let feature = self.feature().unwrap_or("this");
        let mut text = match self.reason {
            Reason::Public => "The route is public.".to_owned(),
            Reason::Granted => format!("Allowed: the {plan} plan grants it."),
            Reason::Authenticated => "Allowed for any signed-in caller.".to_owned(),
            Reason::WithinLimit => "Allowed: usage is within the limit.".to_owned(),
            Reason::FeatureNotInPlan => format!("The {plan} plan does not include {feature}."),
            Reason::RoleRequired => match self.role() {
                Some(role) => format!("This needs the {role} role."),
                None => format!("{feature} comes only with a role you do not have."),
            },
            Reason::PlanRequired => format!("This is not available on the {plan} plan."),
            Reason::TrialExpired => format!("{feature} came with your trial, which has ended."),
            Reason::TrialRequired => "This is available only during a trial.".to_owned(),
            Reason::SeatsRequired => format!("{feature} needs more seats."),
            Reason::LimitReached => match self.limit() {
                Some((name, u)) => format!("You have used {} of {} {name}.", u.used, u.limit),
                None => "The limit is reached.".to_owned(),
            },
            Reason::NoMatchingRoute => "No policy rule covers this request.".to_owned(),
            Reason::ConditionNotMet => "A condition of this rule does not hold.".to_owned(),
            Reason::UnknownFeature => "The policy does not declare this feature.".to_owned(),
            Reason::UnknownLimit => "The policy does not set this limit.".to_owned(),
        };
        if let Some(up) = self.upgrade_to() {
            text.push_str(&format!(" The {up} plan includes it."));
        }
        text
    }
}

impl fmt::Debug for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decision")
            .field("allowed", &self.allowed)
            .field("reason", &self.reason)
            .field("rule", &self.rule())
            .field("feature", &self.feature())
            .field("role", &self.role())
            .field("limit", &self.limit())
            .field("plan", &self.plan())
            .field("upgrade_to", &self.upgrade_to())
            .field("notes", &self.notes.codes().collect::<Vec<_>>())
            .field("revision", &self.revision())
            .finish()
    }
}

impl Serialize for Decision<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Decision", 10)?;
        st.serialize_field("allowed", &self.allowed)?;
        st.serialize_field("reason", &self.reason)?;
        st.serialize_field("rule", &self.rule())?;
        st.serialize_field("feature", &self.feature())?;
        st.serialize_field("role", &self.role())?;
        st.serialize_field(
            "limit",
            &self.limit().map(|(name, u)| {
                serde_json::json!({
                    "name": name, "limit": u.limit, "used": u.used
                })
            }),
        )?;
        st.serialize_field("plan", self.plan())?;
        st.serialize_field("upgrade_to", &self.upgrade_to())?;
        st.serialize_field("notes", &self.notes)?;
        st.serialize_field("revision", &self.revision().to_string())?;
        st.end()
    }
}
