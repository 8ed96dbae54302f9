//! Evaluating a condition for one caller, explaining a failure, and finding the
//! plan that would fix it. Pure functions over [`Compiled`]; no allocation.

use super::bitset::{FeatureSet, NO_FEATURES, RoleSet};
use super::compiled::{Compiled, Cond, FeatureId, LimitId, PlanId, RoleId, TrialPhase};
use super::decision::Reason;
use super::limit::Limit;

/// The per-request facts conditions are evaluated against.
#[derive(Clone, Copy)]
pub(crate) struct Subject<'a> {
    /// The plan the caller is on before any trial (claimed, default, or fallback).
    pub base_plan: PlanId,
    /// The plan that applies now: the base plan, lifted by an active trial.
    pub plan: PlanId,
    pub trial: TrialPhase,
    pub roles: &'a RoleSet,
    pub seats: Option<u64>,
    /// Features the token grants by name (declared ones only).
    pub granted: &'a FeatureSet,
}

/// Why a condition did not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure {
    pub reason: Reason,
    pub feature: Option<FeatureId>,
    pub role: Option<RoleId>,
}

impl Failure {
    fn new(reason: Reason) -> Self {
        Failure {
            reason,
            feature: None,
            role: None,
        }
    }
}

impl Compiled {
    /// The plan an active trial lifts `base` to (never lower than `base`).
    #[inline]
    pub(crate) fn effective_plan(&self, base: PlanId, trial: TrialPhase) -> PlanId {
        match (trial, self.trial_plan) {
            (TrialPhase::Active, Some(t)) => base.max(t),
            _ => base,
        }
    }

    /// The trial plan, while the caller's trial is active.
    #[inline]
    fn active_trial_plan(&self, s: &Subject<'_>) -> Option<PlanId> {
        self.trial_plan.filter(|_| s.trial == TrialPhase::Active)
    }

    /// Whether the caller's own plan, an active trial's plan, a role or the token
    /// grants the feature, before its `when` condition (which a granted feature
    /// obeys too: a grant stands in for the plan, not for the seats or role a
    /// feature needs). A trial adds the trial plan's features
    /// to the caller's own, so it never takes away what their plan has (even when
    /// plans branch and the trial plan does not extend theirs).
    #[inline]
    fn grants(&self, s: &Subject<'_>, f: FeatureId) -> bool {
        self.plan_def(s.base_plan).features.contains(f)
            || self
                .active_trial_plan(s)
                .is_some_and(|t| self.plan_def(t).features.contains(f))
            || s.roles.any(|r| self.role_def(r).features.contains(f))
            || s.granted.contains(f)
    }

    /// The caller's value for a limit: their plan's, or an active trial plan's if higher.
    #[inline]
    pub(crate) fn limit_for(&self, s: &Subject<'_>, l: LimitId) -> Limit {
        let own = self.plan_def(s.base_plan).limit(l);
        match self.active_trial_plan(s) {
            Some(t) => own.max(self.plan_def(t).limit(l)),
            None => own,
        }
    }

    /// Whether the caller has the feature now.
    #[inline]
    pub(crate) fn has_feature(&self, s: &Subject<'_>, f: FeatureId) -> bool {
        self.grants(s, f)
            && match &self.feature_def(f).when {
                Some(c) => self.eval(c, s),
                None => true,
            }
    }

    pub(crate) fn eval(&self, c: &Cond, s: &Subject<'_>) -> bool {
        match c {
            Cond::Feature(f) => self.has_feature(s, *f),
            Cond::PlanIn(ps) => ps.contains(&s.plan),
            Cond::PlanAtLeast(p) => s.plan >= *p,
            Cond::Role(rs) => rs.iter().any(|r| s.roles.contains(*r)),
            Cond::Trial(t) => s.trial == *t,
            Cond::SeatsAtLeast(n) => s.seats.is_some_and(|have| have >= *n),
            Cond::All(cs) => cs.iter().all(|c| self.eval(c, s)),
            Cond::Any(cs) => cs.iter().any(|c| self.eval(c, s)),
            // Without the token's grants: a grant adds features and must never take
            // one away, which `not: { feature: x }` would do if it counted here.
            Cond::Not(c) => !self.eval(
                c,
                &Subject {
                    granted: &NO_FEATURES,
                    ..*s
                },
            ),
        }
    }

    /// Explains why `c` does not hold for `s`. Only meaningful when `eval` is false.
    pub(crate) fn failure(&self, c: &Cond, s: &Subject<'_>) -> Failure {
        match c {
            Cond::Feature(f) => self.feature_failure(*f, s),
            Cond::PlanIn(_) | Cond::PlanAtLeast(_) => Failure::new(Reason::PlanRequired),
            Cond::Role(rs) => Failure {
                reason: Reason::RoleRequired,
                feature: None,
                role: rs.first().copied(),
            },
            Cond::Trial(TrialPhase::Active) if s.trial == TrialPhase::Expired => {
                Failure::new(Reason::TrialExpired)
            }
            Cond::Trial(TrialPhase::Active) => Failure::new(Reason::TrialRequired),
            Cond::Trial(_) => Failure::new(Reason::ConditionNotMet),
            Cond::SeatsAtLeast(_) => Failure::new(Reason::SeatsRequired),
            Cond::All(cs) => cs
                .iter()
                .find(|c| !self.eval(c, s))
                .map(|c| self.failure(c, s))
                .unwrap_or(Failure::new(Reason::ConditionNotMet)),
            Cond::Any(cs) => cs
                .first()
                .map(|c| self.failure(c, s))
                .unwrap_or(Failure::new(Reason::ConditionNotMet)),
            Cond::Not(_) => Failure::new(Reason::ConditionNotMet),
        }
    }

    pub(crate) fn feature_failure(&self, f: FeatureId, s: &Subject<'_>) -> Failure {
        let def = &self.feature_def(f);
        if self.grants(s, f) {
            // Granted but its `when` fails: say what the `when` needs, naming the feature.
            let inner = def
                .when
                .as_ref()
                .map(|c| self.failure(c, s))
                .unwrap_or(Failure::new(Reason::ConditionNotMet));
            return Failure {
                feature: Some(f),
                ..inner
            };
        }
        let reason = if s.trial == TrialPhase::Expired && self.trial_would_grant(s, f) {
            Reason::TrialExpired
        } else if def.granting_plans.is_empty() && def.first_role.is_some() {
            Reason::RoleRequired
        } else {
            Reason::FeatureNotInPlan
        };
        Failure {
            reason,
            feature: Some(f),
            role: if reason == Reason::RoleRequired {
                def.first_role
            } else {
                None
            },
        }
    }

    /// Whether the feature would hold had the (now expired) trial still been active.
    fn trial_would_grant(&self, s: &Subject<'_>, f: FeatureId) -> bool {
        let Some(_) = self.trial_plan else {
            return false;
        };
        let lifted = Subject {
            plan: self.effective_plan(s.base_plan, TrialPhase::Active),
            trial: TrialPhase::Active,
            ..*s
        };
        self.has_feature(&lifted, f)
    }

    /// The plans a caller could buy: those above their own plan in tier order (a trial
    /// is not a purchase, so the search starts above the claimed plan, not the trial's).
    fn upgrades(&self, s: &Subject<'_>) -> std::ops::Range<PlanId> {
        s.base_plan.saturating_add(1)..self.plans.len() as u32
    }

    /// The lowest plan above the caller's own on which `c` would hold for this caller
    /// (same roles, seats and trial), if any.
    ///
    /// Two cheap steps bound the scan over plans: if `c` cannot hold even when every
    /// plan-dependent part is assumed to (a missing role, too few seats), no plan
    /// helps; otherwise the scan starts at the lowest plan that could possibly satisfy
    /// the condition's plan-dependent parts.
    pub(crate) fn upgrade_for(&self, c: &Cond, s: &Subject<'_>) -> Option<PlanId> {
        if !self.could_hold(c, s, true) {
            return None;
        }
        let start = self.lower_bound(c, s).max(s.base_plan.saturating_add(1));
        (start..self.plans.len() as u32).find(|&p| {
            let candidate = Subject {
                base_plan: p,
                plan: self.effective_plan(p, s.trial),
                ..*s
            };
            self.eval(c, &candidate)
        })
    }

    /// Whether a role, an active trial or the token grants the feature (whatever
    /// the plan).
    fn grants_without_plan(&self, s: &Subject<'_>, f: FeatureId) -> bool {
        self.active_trial_plan(s)
            .is_some_and(|t| self.plan_def(t).features.contains(f))
            || s.roles.any(|r| self.role_def(r).features.contains(f))
            || s.granted.contains(f)
    }

    /// A bound on `c` over every plan the caller could be on. With `optimistic`, an
    /// upper bound (true if `c` holds on *some* plan); without, a lower bound (true
    /// only if it holds on *every* plan). Plan-independent leaves (role, trial,
    /// seats) are exact; `not` swaps the direction.
    fn could_hold(&self, c: &Cond, s: &Subject<'_>, optimistic: bool) -> bool {
        match c {
            Cond::Feature(f) => {
                let def = &self.feature_def(*f);
                let granted = if optimistic {
                    !def.granting_plans.is_empty() || self.grants_without_plan(s, *f)
                } else {
                    self.grants_without_plan(s, *f)
                };
                granted
                    && def
                        .when
                        .as_ref()
                        .is_none_or(|w| self.could_hold(w, s, optimistic))
            }
            Cond::PlanIn(_) | Cond::PlanAtLeast(_) => optimistic,
            Cond::All(cs) => cs.iter().all(|c| self.could_hold(c, s, optimistic)),
            Cond::Any(cs) => cs.iter().any(|c| self.could_hold(c, s, optimistic)),
            Cond::Not(c) => !self.could_hold(c, s, !optimistic),
            other => self.eval(other, s),
        }
    }

    /// A plan below which `c` fails for this caller on every candidate plan above
    /// their own; the upgrade scan starts there.
    fn lower_bound(&self, c: &Cond, s: &Subject<'_>) -> PlanId {
        match c {
            Cond::Feature(f) => {
                if self.grants_without_plan(s, *f) {
                    return 0;
                }
                // Only a plan granting it can help: the first such plan above the caller's.
                let plans = &self.feature_def(*f).granting_plans;
                let i = plans.partition_point(|&p| p <= s.base_plan);
                plans.get(i).copied().unwrap_or(self.plans.len() as PlanId)
            }
            Cond::PlanAtLeast(p) => match self.active_trial_plan(s) {
                Some(t) if t >= *p => 0,
                _ => *p,
            },
            // The effective plan is max(candidate, trial): below the smallest listed plan
            // only an active trial plan that is itself listed can satisfy it.
            Cond::PlanIn(ps) => match self.active_trial_plan(s) {
                Some(t) if ps.contains(&t) => 0,
                _ => ps.iter().copied().min().unwrap_or(0),
            },
            Cond::All(cs) => cs.iter().map(|c| self.lower_bound(c, s)).max().unwrap_or(0),
            Cond::Any(cs) => cs.iter().map(|c| self.lower_bound(c, s)).min().unwrap_or(0),
            // No plan changes a role, a trial or a seat count: true now is true on
            // every plan, false now is false on every plan.
            Cond::Role(_) | Cond::Trial(_) | Cond::SeatsAtLeast(_) => {
                if self.eval(c, s) {
                    0
                } else {
                    self.plans.len() as PlanId
                }
            }
            Cond::Not(_) => 0,
        }
    }

    /// [`Self::upgrade_for`] for a single feature. Without a `when`, neither a role
    /// nor an active trial grants it (or the caller would have it), so only the
    /// candidate plan's own features matter: a binary search in the feature's
    /// precomputed list of granting plans.
    pub(crate) fn upgrade_for_feature(&self, f: FeatureId, s: &Subject<'_>) -> Option<PlanId> {
        let def = &self.feature_def(f);
        if def.when.is_none() {
            let i = def.granting_plans.partition_point(|&p| p <= s.base_plan);
            return def.granting_plans.get(i).copied();
        }
        self.upgrade_for(&Cond::Feature(f), s)
    }

    /// The lowest plan above the caller's own whose limit (or the active trial's, if
    /// higher) leaves room when `used` are in use.
    pub(crate) fn upgrade_for_limit(
        &self,
        l: LimitId,
        used: u64,
        s: &Subject<'_>,
    ) -> Option<PlanId> {
        self.upgrades(s).find(|&p| {
            let candidate = Subject {
                base_plan: p,
                plan: self.effective_plan(p, s.trial),
                ..*s
            };
            self.limit_for(&candidate, l).allows(used)
        })
    }
}
