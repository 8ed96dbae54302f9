//! What one caller may do right now: their effective plan, trial, roles, seats,
//! and the answers to feature, limit and route questions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::bitset::{FeatureSet, RoleSet};
use super::compiled::Policy;
use super::compiled::{Access, Compiled, Cond, PlanId, TrialPhase};
use super::decision::{Decision, LimitUsage, Reason};
use super::eval::Subject;
use super::limit::Limit;
use super::revision::Revision;
use crate::claims::Notes;
use crate::claims::{Claim, Claims};

const DAY: i64 = 86_400;

/// Where the caller's effective plan came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanSource {
    /// The `plan` claim names it.
    Claim,
    /// There is no `plan` claim; the policy's `default_plan` applies.
    Default,
    /// The `plan` claim is unknown to the policy or malformed; `default_plan` applies
    /// (see [`Entitlements::notes`]).
    Fallback,
    /// An active trial lifted the caller to the trial plan.
    Trial,
}

/// The caller's trial, as of the time the entitlements were computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Trial {
    /// No `trial_ends` claim (or a malformed one).
    None,
    /// The trial runs until `ends` (exclusive).
    Active {
        /// The instant the trial ends.
        ends: DateTime<Utc>,
        /// Whole days left, rounded up: 1 on the trial's last day.
        days_left: u32,
    },
    /// The trial ended at `ended`.
    Expired {
        /// The instant the trial ended.
        ended: DateTime<Utc>,
    },
}

/// A caller's entitlements under one policy revision at one instant.
///
/// Build with [`Policy::entitlements`]. Holds the policy it was computed from, so
/// a handler's answers stay consistent even if the policy is reloaded mid-request.
#[derive(Clone)]
pub struct Entitlements {
    policy: Policy,
    base_plan: PlanId,
    claimed: Option<PlanId>,
    plan: PlanId,
    source: PlanSource,
    trial: TrialPhase,
    trial_end: i64,
    now: i64,
    roles: RoleSet,
    seats: Option<u64>,
    granted: FeatureSet,
    notes: Notes,
}

/// What a token's claims resolve to under one compiled policy, before the clock is
/// read: the plan the claims name, the roles, the seats and the notes. It depends
/// only on the token and the policy, so the layer keeps it with the verified token
/// (`layer::admission::entitlements_for`) and a cache hit skips the name lookups.
#[derive(Clone, Debug)]
pub(crate) struct TokenPart {
    /// Which compiled policy it was resolved against ([`Compiled::instance`]).
    instance: u64,
    base_plan: PlanId,
    source: PlanSource,
    /// The end of the trial (`trial_ends`, unix seconds), when the claim is valid.
    trial_end: Option<i64>,
    roles: RoleSet,
    seats: Option<u64>,
    /// The declared features the token grants by name.
    granted: FeatureSet,
    notes: Notes,
}

impl TokenPart {
    /// Resolves `claims` under `policy`.
    pub(crate) fn of(policy: &Policy, claims: &Claims) -> TokenPart {
        TokenPart::resolve(&policy.0, claims)
    }

    /// Whether it was resolved under this compiled `policy` (not an earlier one).
    pub(crate) fn belongs_to(&self, policy: &Policy) -> bool {
        self.instance == policy.0.instance
    }

    fn resolve(c: &Compiled, claims: &Claims) -> TokenPart {
        let mut notes = claims.notes();
        let (base_plan, source) = match &claims.plan {
            Claim::Valid(name) => match c.plan_ids.get(&**name) {
                Some(&id) => (id, PlanSource::Claim),
                None => {
                    notes.insert(Notes::UNKNOWN_PLAN);
                    (c.default_plan, PlanSource::Fallback)
                }
            },
            Claim::Absent => (c.default_plan, PlanSource::Default),
            Claim::Malformed => (c.default_plan, PlanSource::Fallback),
        };
        let mut roles = RoleSet::default();
        for name in claims.roles() {
            match c.role_ids.get(name) {
                Some(&id) => roles.insert(id, c.roles.len()),
                None => notes.insert(Notes::UNKNOWN_ROLE),
            }
        }
        let mut granted = FeatureSet::default();
        for name in claims.features() {
            match c.feature_ids.get(name) {
                Some(&id) => granted.insert(id, c.features.len()),
                None => notes.insert(Notes::UNKNOWN_FEATURE),
            }
        }
        TokenPart {
            instance: c.instance,
            base_plan,
            source,
            trial_end: match claims.trial_ends {
                Claim::Valid(end) => Some(end),
                _ => None,
            },
            roles,
            seats: claims.seats(),
            granted,
            notes,
        }
    }
}

impl Entitlements {
    pub(crate) fn new(policy: Policy, claims: &Claims, now: i64) -> Entitlements {
        let part = TokenPart::resolve(&policy.0, claims);
        Entitlements::from_part(policy, &part, now)
    }

    pub(crate) fn from_part(policy: Policy, part: &TokenPart, now: i64) -> Entitlements {
        let c: &Compiled = &policy.0;
        let (trial, trial_end) = match part.trial_end {
            Some(end) if now < end => (TrialPhase::Active, end),
            Some(end) => (TrialPhase::Expired, end),
            None => (TrialPhase::None, 0),
        };
        let claimed = (part.source == PlanSource::Claim).then_some(part.base_plan);
        let plan = c.effective_plan(part.base_plan, trial);
        let source = if plan != part.base_plan {
            PlanSource::Trial
        } else {
            part.source
        };
        Entitlements {
            base_plan: part.base_plan,
            claimed,
            plan,
            source,
            trial,
            trial_end,
            now,
            roles: part.roles.clone(),
            seats: part.seats,
            granted: part.granted.clone(),
            notes: part.notes,
            policy,
        }
    }

    #[inline]
    fn compiled(&self) -> &Compiled {
        &self.policy.0
    }

    #[inline]
    fn subject(&self) -> Subject<'_> {
        Subject {
            base_plan: self.base_plan,
            plan: self.plan,
            trial: self.trial,
            roles: &self.roles,
            seats: self.seats,
            granted: &self.granted,
        }
    }

    fn decision(&self, allowed: bool, reason: Reason) -> Decision<'_> {
        Decision {
            policy: self.compiled(),
            allowed,
            reason,
            rule: None,
            feature: None,
            role: None,
            limit: None,
            plan: self.plan,
            upgrade_to: None,
            notes: self.notes,
        }
    }

    /// The policy these entitlements were computed under.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The revision of that policy.
    pub fn revision(&self) -> Revision {
        self.compiled().revision
    }

    /// The effective plan: the claimed plan (or default), lifted by an active trial.
    pub fn plan(&self) -> &str {
        &self.compiled().plan_def(self.plan).name
    }

    /// Where the effective plan came from.
    pub fn plan_source(&self) -> PlanSource {
        self.source
    }

    /// The plan the caller's claim names, when the policy knows it (before any trial).
    pub fn claimed_plan(&self) -> Option<&str> {
        self.claimed.map(|p| &*self.compiled().plan_def(p).name)
    }

    /// The caller's trial now.
    pub fn trial(&self) -> Trial {
        // A `trial_ends` beyond what a date can hold is shown as the last (or first)
        // date there is, never as the epoch (a fuzzer found "active, ended 1970").
        let at = |t: i64| {
            DateTime::from_timestamp(t, 0).unwrap_or(if t > 0 {
                DateTime::<Utc>::MAX_UTC
            } else {
                DateTime::<Utc>::MIN_UTC
            })
        };
        match self.trial {
            TrialPhase::None => Trial::None,
            TrialPhase::Active => Trial::Active {
                ends: at(self.trial_end),
                // Saturating: `trial_ends` comes from the token and may be any i64
                // (a fuzzer found the plain sum overflowing).
                days_left: u32::try_from(
                    self.trial_end
                        .saturating_sub(self.now)
                        .saturating_add(DAY - 1)
                        / DAY,
                )
                .unwrap_or(u32::MAX),
            },
            TrialPhase::Expired => Trial::Expired {
                ended: at(self.trial_end),
            },
        }
    }

    /// The caller's seat count, if the claim is present and valid.
    pub fn seats(&self) -> Option<u64> {
        self.seats
    }

    /// The caller's roles that the policy declares, in declaration order.
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.roles
            .iter()
            .map(|r| &*self.compiled().role_def(r).name)
    }

    /// Claims that were malformed or unknown and treated as absent.
    pub fn notes(&self) -> Notes {
        self.notes
    }

    /// Whether the caller has `feature` now. An undeclared feature is never granted.
    pub fn has(&self, feature: &str) -> bool {
        self.compiled()
            .feature_ids
            .get(feature)
            .is_some_and(|&f| self.compiled().has_feature(&self.subject(), f))
    }

    /// [`Self::has`] with the reason and, when denied, the plan that would grant it.
    pub fn check(&self, feature: &str) -> Decision<'_> {
        let c = self.compiled();
        let Some(&f) = c.feature_ids.get(feature) else {
            return self.decision(false, Reason::UnknownFeature);
        };
        let s = self.subject();
        if c.has_feature(&s, f) {
            return Decision {
                feature: Some(f),
                ..self.decision(true, Reason::Granted)
            };
        }
        let failure = c.feature_failure(f, &s);
        Decision {
            feature: failure.feature,
            role: failure.role,
            upgrade_to: c.upgrade_for_feature(f, &s),
            ..self.decision(false, failure.reason)
        }
    }

    /// The caller's value for a limit (their plan's, or an active trial plan's if
    /// higher); `None` if no plan in the policy sets it.
    pub fn limit(&self, name: &str) -> Option<Limit> {
        let c = self.compiled();
        let &l = c.limit_ids.get(name)?;
        Some(c.limit_for(&self.subject(), l))
    }

    /// Whether the caller may add one more when `used` are in use (allowed while
    /// `used` is below the limit). Denied with `limit_reached` and `upgrade_to` the
    /// lowest plan with room.
    pub fn within_limit(&self, name: &str, used: u64) -> Decision<'_> {
        let c = self.compiled();
        let Some(&l) = c.limit_ids.get(name) else {
            return self.decision(false, Reason::UnknownLimit);
        };
        let s = self.subject();
        let limit = c.limit_for(&s, l);
        let usage = Some((l, LimitUsage { limit, used }));
        if limit.allows(used) {
            return Decision {
                limit: usage,
                ..self.decision(true, Reason::WithinLimit)
            };
        }
        let upgrade = c.upgrade_for_limit(l, used, &s);
        Decision {
            limit: usage,
            upgrade_to: upgrade,
            ..self.decision(false, Reason::LimitReached)
        }
    }

    /// The decision for a request: the most specific matching route rule, or the
    /// policy's `unmatched` setting when none matches.
    pub fn check_route(&self, method: &str, path: &str) -> Decision<'_> {
        let c = self.compiled();
        let Some(rule) = c.table.lookup(method, path) else {
            return if c.unmatched_allows {
                self.decision(true, Reason::Authenticated)
            } else {
                self.decision(false, Reason::NoMatchingRoute)
            };
        };
        let base = |allowed, reason| Decision {
            rule: Some(rule),
            ..self.decision(allowed, reason)
        };
        match &c.rule_def(rule).access {
            Access::Public => base(true, Reason::Public),
            Access::Authenticated => base(true, Reason::Authenticated),
            Access::Require(cond) => {
                let s = self.subject();
                if c.eval(cond, &s) {
                    let feature = match cond {
                        Cond::Feature(f) => Some(*f),
                        _ => None,
                    };
                    return Decision {
                        feature,
                        ..base(true, Reason::Granted)
                    };
                }
                let failure = c.failure(cond, &s);
                let upgrade_to = match cond {
                    Cond::Feature(f) => c.upgrade_for_feature(*f, &s),
                    _ => c.upgrade_for(cond, &s),
                };
                Decision {
                    feature: failure.feature,
                    role: failure.role,
                    upgrade_to,
                    ..base(false, failure.reason)
                }
            }
        }
    }

    /// Everything above in one serializable value, for a "what can I do" endpoint.
    pub fn summary(&self) -> Summary {
        let c = self.compiled();
        let s = self.subject();
        Summary {
            plan: self.plan().to_owned(),
            plan_source: self.source,
            claimed_plan: self.claimed_plan().map(str::to_owned),
            trial: self.trial(),
            roles: self.roles().map(str::to_owned).collect(),
            seats: self.seats,
            features: (0..c.features.len() as u32)
                .filter(|&f| c.has_feature(&s, f))
                .map(|f| c.feature_def(f).name.to_string())
                .collect(),
            limits: c
                .limits
                .iter()
                .enumerate()
                .map(|(i, name)| (name.to_string(), c.limit_for(&s, i as u32)))
                .collect(),
            notes: self.notes,
            revision: self.revision().to_string(),
        }
    }
}

impl std::fmt::Debug for Entitlements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entitlements")
            .field("plan", &self.plan())
            .field("plan_source", &self.source)
            .field("trial", &self.trial())
            .field("roles", &self.roles().collect::<Vec<_>>())
            .field("seats", &self.seats)
            .field("notes", &self.notes.codes().collect::<Vec<_>>())
            .finish()
    }
}

/// A serializable snapshot of a caller's entitlements.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The effective plan.
    pub plan: String,
    /// Where it came from.
    pub plan_source: PlanSource,
    /// The plan the claim names, when known to the policy.
    pub claimed_plan: Option<String>,
    /// The trial now.
    pub trial: Trial,
    /// Declared roles the caller holds.
    pub roles: Vec<String>,
    /// The seat count.
    pub seats: Option<u64>,
    /// Every feature the caller has now, in declaration order.
    pub features: Vec<String>,
    /// Every limit, by name.
    pub limits: BTreeMap<String, Limit>,
    /// Claims treated as absent, and why.
    pub notes: Notes,
    /// The policy revision.
    pub revision: String,
}
