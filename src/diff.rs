//! What changes for customers between two versions of a policy: per plan and role,
//! features gained and lost and limits changed; per route, which plans and roles
//! gain or lose access. Anything that takes something away from an existing plan
//! is flagged as a downgrade.
//!
//! ```
//! use tiergate::{Policy, diff::PolicyDiff};
//!
//! let old = Policy::from_yaml("version: 1\nplans:\n  free: { features: [a] }\n  pro: { extends: free, features: [b] }\nfeatures: { a: {}, b: {} }\n")?;
//! let new = Policy::from_yaml("version: 1\nplans:\n  free: { features: [a, b] }\n  pro: { extends: free }\nfeatures: { a: {}, b: {} }\n")?;
//! let d = PolicyDiff::between(&old, &new);
//! assert_eq!(d.plans[0].gained, ["b"]);           // free gains b
//! assert!(!d.has_downgrades());
//! # Ok::<(), tiergate::PolicyError>(())
//! ```
//!
//! Route access for a plan is evaluated for a caller on that plan with no role, no
//! trial and seat conditions taken as met; for a role, for a caller on the default
//! plan holding that role.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::bitset::RoleSet;
use crate::engine::compiled::{Access, Compiled, TrialPhase};
use crate::engine::eval::Subject;
use crate::engine::{Limit, Policy};

/// A limit's value before and after (`None`: the plan or limit did not exist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitChange {
    /// The limit's name.
    pub limit: String,
    /// Before.
    pub old: Option<Limit>,
    /// After.
    pub new: Option<Limit>,
}

impl LimitChange {
    fn is_downgrade(&self) -> bool {
        match (self.old, self.new) {
            (Some(old), Some(new)) => new < old,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// What changed for one plan or role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantChange {
    /// The plan or role.
    pub name: String,
    /// `added`, `removed` or `changed`.
    pub status: &'static str,
    /// Features it now has that it did not.
    pub gained: Vec<String>,
    /// Features it had and no longer has.
    pub lost: Vec<String>,
    /// Limits whose value changed (plans only).
    pub limits: Vec<LimitChange>,
    /// Whether an existing plan or role loses something.
    pub downgrade: bool,
}

/// What changed for one route rule (pattern + methods).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteChange {
    /// e.g. `POST /api/reports/export` or `* /healthz` for every method.
    pub route: String,
    /// `added`, `removed` or `changed`.
    pub status: &'static str,
    /// Plans and roles (`role admin`) that can now use it and could not.
    pub gained: Vec<String>,
    /// Plans and roles that could use it and no longer can.
    pub lost: Vec<String>,
    /// Whether an existing plan or role loses access.
    pub downgrade: bool,
}

/// The differences between two policies, as customers would feel them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDiff {
    /// Plans added, removed or changed, in the new tier order (removed plans last).
    pub plans: Vec<GrantChange>,
    /// Roles added, removed or changed.
    pub roles: Vec<GrantChange>,
    /// Routes whose access changed.
    pub routes: Vec<RouteChange>,
}

fn plan_features(c: &Compiled, name: &str) -> Option<BTreeSet<String>> {
    let &id = c.plan_ids.get(name)?;
    Some(
        c.plan_def(id)
            .features
            .iter()
            .map(|f| c.feature_def(f).name.to_string())
            .collect(),
    )
}

fn role_features(c: &Compiled, name: &str) -> Option<BTreeSet<String>> {
    let &id = c.role_ids.get(name)?;
    Some(
        c.role_def(id)
            .features
            .iter()
            .map(|f| c.feature_def(f).name.to_string())
            .collect(),
    )
}

// `rule` < `c.rules.len()`: the callers iterate over the rules' indices.
#[allow(clippy::indexing_slicing)]
fn route_key(c: &Compiled, rule: usize) -> String {
    let r = &c.rules[rule];
    match &r.methods {
        Some(ms) => format!("{} {}", ms.join(","), r.pattern),
        None => format!("* {}", r.pattern),
    }
}

/// Who may use a rule: plan names, then `role NAME`s.
// `rule` < `c.rules.len()`, as for `route_key`.
#[allow(clippy::indexing_slicing)]
fn route_access(c: &Compiled, rule: usize) -> BTreeSet<String> {
    let mut who = BTreeSet::new();
    let no_roles = RoleSet::default();
    let allows = |s: &Subject<'_>| match &c.rules[rule].access {
        Access::Public | Access::Authenticated => true,
        Access::Require(cond) => c.eval(cond, s),
    };
    for (p, plan) in c.plans.iter().enumerate() {
        let s = Subject {
            base_plan: p as u32,
            plan: p as u32,
            trial: TrialPhase::None,
            roles: &no_roles,
            seats: Some(u64::MAX),
            granted: &no_roles,
        };
        if allows(&s) {
            who.insert(plan.name.to_string());
        }
    }
    for (r, role) in c.roles.iter().enumerate() {
        let mut roles = RoleSet::default();
        roles.insert(r as u32, c.roles.len());
        let s = Subject {
            base_plan: c.default_plan,
            plan: c.default_plan,
            trial: TrialPhase::None,
            roles: &roles,
            seats: Some(u64::MAX),
            granted: &no_roles,
        };
        let without = Subject {
            roles: &no_roles,
            ..s
        };
        // Only list a role where the role itself makes the difference.
        if allows(&s) && !allows(&without) {
            who.insert(format!("role {}", role.name));
        }
    }
    who
}

fn grant_change(
    name: &str,
    old: Option<BTreeSet<String>>,
    new: Option<BTreeSet<String>>,
    limits: Vec<LimitChange>,
) -> Option<GrantChange> {
    let (status, o, n) = match (old, new) {
        (None, None) => return None,
        (None, Some(n)) => ("added", BTreeSet::new(), n),
        (Some(o), None) => ("removed", o, BTreeSet::new()),
        (Some(o), Some(n)) => ("changed", o, n),
    };
    let gained: Vec<String> = n.difference(&o).cloned().collect();
    let lost: Vec<String> = o.difference(&n).cloned().collect();
    if status == "changed" && gained.is_empty() && lost.is_empty() && limits.is_empty() {
        return None;
    }
    let downgrade = status != "added"
        && (!lost.is_empty()
            || limits.iter().any(LimitChange::is_downgrade)
            || status == "removed");
    Some(GrantChange {
        name: name.to_owned(),
        status,
        gained,
        lost,
        limits,
        downgrade,
    })
}

impl PolicyDiff {
    /// Compares `old` with `new`.
    pub fn between(old: &Policy, new: &Policy) -> PolicyDiff {
        let (o, n): (&Compiled, &Compiled) = (&old.0, &new.0);
        let mut plan_names: Vec<String> = n.plans.iter().map(|p| p.name.to_string()).collect();
        plan_names.extend(
            o.plans
                .iter()
                .map(|p| p.name.to_string())
                .filter(|p| !n.plan_ids.contains_key(p.as_str())),
        );
        let mut limit_names: BTreeSet<&str> = o.limits.iter().map(|l| &**l).collect();
        limit_names.extend(n.limits.iter().map(|l| &**l));
        let plans = plan_names
            .iter()
            .filter_map(|p| {
                let limit_of = |c: &Compiled, l: &str| {
                    let (&pid, &lid) = (c.plan_ids.get(p.as_str())?, c.limit_ids.get(l)?);
                    Some(c.plan_def(pid).limit(lid))
                };
                let limits = limit_names
                    .iter()
                    .filter(|_| {
                        o.plan_ids.contains_key(p.as_str()) && n.plan_ids.contains_key(p.as_str())
                    })
                    .map(|l| LimitChange {
                        limit: (*l).to_owned(),
                        old: limit_of(o, l),
                        new: limit_of(n, l),
                    })
                    .filter(|c| c.old != c.new)
                    .collect();
                grant_change(p, plan_features(o, p), plan_features(n, p), limits)
            })
            .collect();

        let mut role_names: Vec<String> = n.roles.iter().map(|r| r.name.to_string()).collect();
        role_names.extend(
            o.roles
                .iter()
                .map(|r| r.name.to_string())
                .filter(|r| !n.role_ids.contains_key(r.as_str())),
        );
        let roles = role_names
            .iter()
            .filter_map(|r| grant_change(r, role_features(o, r), role_features(n, r), Vec::new()))
            .collect();

        let old_routes: Vec<(String, BTreeSet<String>)> = (0..o.rules.len())
            .map(|i| (route_key(o, i), route_access(o, i)))
            .collect();
        let new_routes: Vec<(String, BTreeSet<String>)> = (0..n.rules.len())
            .map(|i| (route_key(n, i), route_access(n, i)))
            .collect();
        let mut routes = Vec::new();
        for (key, access) in &new_routes {
            let before = old_routes.iter().find(|(k, _)| k == key).map(|(_, a)| a);
            let (status, before) = match before {
                Some(b) => ("changed", b.clone()),
                None => ("added", BTreeSet::new()),
            };
            let gained: Vec<String> = access.difference(&before).cloned().collect();
            let lost: Vec<String> = before.difference(access).cloned().collect();
            if status == "added" || !gained.is_empty() || !lost.is_empty() {
                routes.push(RouteChange {
                    route: key.clone(),
                    status,
                    downgrade: !lost.is_empty(),
                    gained,
                    lost,
                });
            }
        }
        for (key, access) in &old_routes {
            if !new_routes.iter().any(|(k, _)| k == key) {
                routes.push(RouteChange {
                    route: key.clone(),
                    status: "removed",
                    gained: Vec::new(),
                    lost: access.iter().cloned().collect(),
                    downgrade: !access.is_empty(),
                });
            }
        }
        PolicyDiff {
            plans,
            roles,
            routes,
        }
    }

    /// Whether any existing plan or role loses a feature, a limit or access to a route.
    pub fn has_downgrades(&self) -> bool {
        self.plans.iter().chain(&self.roles).any(|c| c.downgrade)
            || self.routes.iter().any(|r| r.downgrade)
    }

    /// Whether nothing changes for anyone.
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty() && self.roles.is_empty() && self.routes.is_empty()
    }

    /// A readable report for a terminal.
    pub fn to_text(&self) -> String {
        self.render(false)
    }

    /// A report for a pull-request comment.
    pub fn to_markdown(&self) -> String {
        self.render(true)
    }

    fn render(&self, markdown: bool) -> String {
        let mut out = String::new();
        let flag = |d: bool| {
            if !d {
                ""
            } else if markdown {
                " **⚠ downgrade**"
            } else {
                "  ⚠ DOWNGRADE"
            }
        };
        let heading = |out: &mut String, title: &str| {
            if markdown {
                let _ = writeln!(out, "\n### {title}\n");
            } else {
                let _ = writeln!(out, "{title}");
            }
        };
        let item = if markdown { "- " } else { "  " };
        if markdown {
            let _ = writeln!(out, "## Policy changes");
        }
        if self.is_empty() {
            let _ = writeln!(out, "{item}no change for any plan, role or route");
            return out;
        }
        if self.has_downgrades() {
            let _ = writeln!(
                out,
                "{}",
                if markdown {
                    "\n> **⚠ This change takes something away from an existing plan or role.**"
                } else {
                    "⚠ This change takes something away from an existing plan or role."
                }
            );
        }
        for (title, changes) in [("Plans", &self.plans), ("Roles", &self.roles)] {
            if changes.is_empty() {
                continue;
            }
            heading(&mut out, title);
            for c in changes {
                let mut parts = Vec::new();
                if c.status != "changed" {
                    parts.push(c.status.to_owned());
                }
                parts.extend(c.gained.iter().map(|f| format!("+{f}")));
                parts.extend(c.lost.iter().map(|f| format!("-{f}")));
                for l in &c.limits {
                    let show = |v: Option<Limit>| v.map_or("none".to_owned(), |v| v.to_string());
                    parts.push(format!("{} {} → {}", l.limit, show(l.old), show(l.new)));
                }
                let name = if markdown {
                    format!("`{}`", c.name)
                } else {
                    c.name.clone()
                };
                let _ = writeln!(
                    out,
                    "{item}{name}: {}{}",
                    parts.join(", "),
                    flag(c.downgrade)
                );
            }
        }
        if !self.routes.is_empty() {
            heading(&mut out, "Routes");
            for r in &self.routes {
                let mut parts = Vec::new();
                if r.status != "changed" {
                    parts.push(r.status.to_owned());
                }
                if !r.gained.is_empty() {
                    parts.push(format!("gains {}", r.gained.join(", ")));
                }
                if !r.lost.is_empty() {
                    parts.push(format!("loses {}", r.lost.join(", ")));
                }
                let route = if markdown {
                    format!("`{}`", r.route)
                } else {
                    r.route.clone()
                };
                let _ = writeln!(
                    out,
                    "{item}{route}: {}{}",
                    parts.join("; "),
                    flag(r.downgrade)
                );
            }
        }
        out
    }
}
