//! Stage 2: check what the policy means, and resolve every name to an id.
//!
//! All problems are collected, not just the first, so a person fixing a policy
//! sees the whole list at once. The output, [`Checked`], is what the compile stage
//! builds tables from; it cannot refer to a name that does not exist.

use std::collections::HashMap;

use serde_saphyr::{Location, Spanned};

use super::diagnostic::Diagnostic;
use super::model::{Condition, LimitValue, OneOrMany, PolicyDoc, TrialCond, Unmatched};
use super::parse::loc;
use super::suggest::did_you_mean;
use crate::engine::compiled::{Access, Cond, TrialPhase};
use crate::engine::routes::{METHODS, method_index, parse_pattern};

pub(crate) struct CheckedPlan {
    pub name: String,
    pub description: Option<String>,
    pub extends: Option<u32>,
    pub features: Vec<u32>,
    pub limits: Vec<(u32, LimitValue)>,
}

pub(crate) struct CheckedFeature {
    pub name: String,
    pub description: Option<String>,
    pub when: Option<Cond>,
}

pub(crate) struct CheckedRole {
    pub name: String,
    pub features: Vec<u32>,
}

pub(crate) struct CheckedRule {
    pub pattern: String,
    pub methods: Option<Vec<usize>>,
    pub line: u32,
    pub access: Access,
    pub enforce: bool,
}

/// A policy whose every name resolves: ready to compile.
pub(crate) struct Checked {
    pub plans: Vec<CheckedPlan>,
    pub default_plan: u32,
    pub trial_plan: Option<u32>,
    pub features: Vec<CheckedFeature>,
    pub roles: Vec<CheckedRole>,
    pub limits: Vec<String>,
    pub rules: Vec<CheckedRule>,
    pub unmatched_allows: bool,
    /// The `claims:` section, when the policy has one.
    pub claims: Option<crate::ClaimsMapping>,
}

/// Names used in a policy: letters, digits and `. _ - :`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

struct Names {
    ids: HashMap<String, u32>,
    order: Vec<String>,
    /// Name comparisons left for suggestions. Every unknown name is compared with
    /// every declared one, so without a bound a file of 10,000 unknown references took
    /// 37 s to report; past the bound, errors come without "did you mean".
    suggestions_left: std::cell::Cell<usize>,
}

/// Name comparisons one policy may spend on "did you mean": ~20 ms of the ~1–2 µs each
/// costs for 20-character names (200,000 took 0.4 s on a file with 2,000 declared and
/// 10,000 unknown names). Enough for a hundred typos among two hundred names.
const SUGGESTION_BUDGET: usize = 20_000;

impl Names {
    fn new<'a>(names: impl Iterator<Item = &'a str>) -> Names {
        let order: Vec<String> = names.map(str::to_owned).collect();
        let ids = order
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        Names {
            ids,
            order,
            suggestions_left: std::cell::Cell::new(SUGGESTION_BUDGET),
        }
    }

    fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    fn suggest(&self, name: &str) -> Option<&str> {
        let left = self.suggestions_left.get();
        if left < self.order.len() {
            return None;
        }
        self.suggestions_left
            .set(left.saturating_sub(self.order.len()));
        did_you_mean(name, self.order.iter().map(String::as_str))
    }

    /// The id of `name`, adding it in first-seen order if it is new (limits are
    /// declared by use, not in a section of their own).
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.get(name) {
            return id;
        }
        let id = self.order.len() as u32;
        self.ids.insert(name.to_owned(), id);
        self.order.push(name.to_owned());
        id
    }
}

struct Checker {
    diags: Vec<Diagnostic>,
    plans: Names,
    features: Names,
    roles: Names,
}

impl Checker {
    fn error(&mut self, at: &Location, width: usize, message: String, help: String) {
        let (line, column) = loc(at);
        self.diags
            .push(Diagnostic::at(line, column, width, message).help(help));
    }

    /// Resolves a name of `kind` ("plan", "feature", "role"), reporting an unknown one.
    fn resolve(&mut self, kind: &str, name: &str, at: &Location) -> Option<u32> {
        let names = match kind {
            "plan" => &self.plans,
            "feature" => &self.features,
            _ => &self.roles,
        };
        if let Some(id) = names.get(name) {
            return Some(id);
        }
        let section = format!("{kind}s");
        let help = match names.suggest(name) {
            Some(s) => format!("did you mean `{s}`?"),
            None if names.order.is_empty() => {
                format!("no {section} are declared; add one under `{section}:`")
            }
            None => format!(
                "declare `{name}` under `{section}:`, or use one of: {}",
                preview(&names.order)
            ),
        };
        self.error(
            at,
            name.chars().count(),
            format!("unknown {kind} `{name}`"),
            help,
        );
        None
    }

    fn check_name(&mut self, kind: &str, name: &Spanned<String>) {
        if !valid_name(&name.value) {
            self.error(
                &name.referenced,
                name.value.chars().count(),
                format!("`{}` is not a valid {kind} name", name.value),
                "names use letters, digits, `.`, `_`, `-` and `:` (no spaces)".to_owned(),
            );
        }
    }

    /// Resolves `plan: [...]` or `role: [...]`: every name must exist, and the list
    /// must not be empty.
    fn resolve_list(&mut self, kind: &str, list: &Spanned<OneOrMany>) -> Option<Vec<u32>> {
        let items = list.value.items(list.referenced);
        if items.is_empty() {
            let example = if kind == "plan" {
                "plan: [pro]"
            } else {
                "role: admin"
            };
            self.error(
                &list.referenced,
                4,
                format!("`{kind}: []` names no {kind}"),
                format!("list at least one {kind}, e.g. `{example}`"),
            );
            return None;
        }
        let ids: Vec<Option<u32>> = items
            .iter()
            .map(|(n, l)| self.resolve(kind, n, l))
            .collect();
        ids.into_iter().collect()
    }

    /// Lowers a condition, resolving names. `in_when` forbids feature references
    /// (a feature's `when` naming features could loop).
    fn lower(&mut self, c: &Spanned<Condition>, in_when: bool) -> Option<Cond> {
        let at = &c.referenced;
        match &c.value {
            Condition::Feature(name) => {
                if in_when {
                    self.error(
                        at,
                        name.chars().count(),
                        format!("a feature's `when` cannot name a feature (`{name}`)"),
                        "`when` may use plan, plan_at_least, role, trial and seats".to_owned(),
                    );
                    return None;
                }
                self.resolve("feature", name, at).map(Cond::Feature)
            }
            Condition::Plan(list) => self
                .resolve_list("plan", list)
                .map(|v| Cond::PlanIn(v.into())),
            Condition::PlanAtLeast(p) => self
                .resolve("plan", &p.value, &p.referenced)
                .map(Cond::PlanAtLeast),
            Condition::Role(list) => self
                .resolve_list("role", list)
                .map(|v| Cond::Role(v.into())),
            Condition::Trial(t) => Some(Cond::Trial(match t.value {
                TrialCond::Active => TrialPhase::Active,
                TrialCond::Expired => TrialPhase::Expired,
                TrialCond::None => TrialPhase::None,
            })),
            Condition::Seats(s) => Some(Cond::SeatsAtLeast(s.at_least.value)),
            Condition::All(cs) | Condition::Any(cs) => {
                let all = matches!(c.value, Condition::All(_));
                if cs.is_empty() {
                    let key = if all { "all" } else { "any" };
                    self.error(
                        at,
                        3,
                        format!("`{key}: []` has no conditions"),
                        format!(
                            "list the conditions, e.g. `{key}: [reports.view, {{ role: admin }}]`"
                        ),
                    );
                    return None;
                }
                let lowered: Vec<Option<Cond>> =
                    cs.iter().map(|c| self.lower(c, in_when)).collect();
                let lowered: Vec<Cond> = lowered.into_iter().collect::<Option<_>>()?;
                Some(if all {
                    Cond::All(lowered.into())
                } else {
                    Cond::Any(lowered.into())
                })
            }
            Condition::Not(inner) => self.lower(inner, in_when).map(|c| Cond::Not(Box::new(c))),
        }
    }
}

fn preview(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(6).map(String::as_str).collect();
    let more = names.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} (and {more} more)", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

pub(crate) fn validate(doc: &PolicyDoc) -> Result<Checked, Vec<Diagnostic>> {
    let mut ck = Checker {
        diags: Vec::new(),
        plans: Names::new(doc.plans.value.0.iter().map(|(k, _)| k.value.as_str())),
        features: Names::new(doc.features.0.iter().map(|(k, _)| k.value.as_str())),
        roles: Names::new(doc.roles.0.iter().map(|(k, _)| k.value.as_str())),
    };

    if doc.version.value != 1 {
        ck.error(
            &doc.version.referenced,
            doc.version.value.to_string().len(),
            format!("unsupported policy version {}", doc.version.value),
            "this tiergate reads `version: 1`".to_owned(),
        );
    }
    if doc.plans.value.0.is_empty() {
        ck.error(
            &doc.plans.referenced,
            1,
            "the policy declares no plans".to_owned(),
            "add plans under `plans:`, lowest tier first, e.g. `free: { features: [dashboard] }`"
                .to_owned(),
        );
    }

    for (name, _) in &doc.features.0 {
        ck.check_name("feature", name);
    }
    for (name, _) in &doc.roles.0 {
        ck.check_name("role", name);
    }

    // Plans: names, parents, features, limits.
    let mut limit_names = Names::new(std::iter::empty());
    let mut plans = Vec::new();
    let mut parents: Vec<Option<(u32, Location)>> = Vec::new();
    for (name, plan) in &doc.plans.value.0 {
        ck.check_name("plan", name);
        let extends = plan.extends.as_ref().and_then(|e| {
            ck.resolve("plan", &e.value, &e.referenced)
                .map(|id| (id, e.referenced))
        });
        parents.push(extends);
        let features = plan
            .features
            .iter()
            .filter_map(|f| ck.resolve("feature", &f.value, &f.referenced))
            .collect();
        let mut limits = Vec::new();
        for (lname, value) in &plan.limits.0 {
            ck.check_name("limit", lname);
            limits.push((limit_names.intern(&lname.value), value.value));
        }
        plans.push(CheckedPlan {
            name: name.value.clone(),
            description: plan.description.clone(),
            extends: extends.map(|(id, _)| id),
            features,
            limits,
        });
    }
    check_extends(&mut ck, doc, &parents);
    if ck.diags.is_empty() {
        check_limits_never_drop(&mut ck, doc, &plans, &limit_names.order);
    }

    let default_plan = match &doc.default_plan {
        Some(d) => ck.resolve("plan", &d.value, &d.referenced).unwrap_or(0),
        None => 0,
    };
    let trial_plan = doc
        .trial
        .as_ref()
        .and_then(|t| ck.resolve("plan", &t.plan.value, &t.plan.referenced));

    let roles = doc
        .roles
        .0
        .iter()
        .map(|(name, role)| CheckedRole {
            name: name.value.clone(),
            features: role
                .features
                .iter()
                .filter_map(|f| ck.resolve("feature", &f.value, &f.referenced))
                .collect(),
        })
        .collect();

    let features = doc
        .features
        .0
        .iter()
        .map(|(name, f)| CheckedFeature {
            name: name.value.clone(),
            description: f.description.clone(),
            when: f.when.as_ref().and_then(|w| ck.lower(w, true)),
        })
        .collect();

    let rules = check_routes(&mut ck, doc);
    let claims = doc
        .claims
        .as_ref()
        .and_then(|c| super::claims_section::check(c, &mut ck.diags));

    if ck.diags.is_empty() {
        Ok(Checked {
            plans,
            default_plan,
            trial_plan,
            features,
            roles,
            limits: limit_names.order,
            rules,
            unmatched_allows: doc
                .unmatched
                .as_ref()
                .is_some_and(|u| u.value == Unmatched::Authenticated),
            claims,
        })
    } else {
        Err(ck.diags)
    }
}

/// Reports `extends` cycles (once per cycle) and plans extending a higher tier.
///
/// Each plan has at most one parent, so one walk per plan that stops at any plan
/// already seen finds every cycle in linear time.
// Plan ids index `parents`, `seen`, `in_cycle` and `names`, all one entry per plan
// (a parent id was resolved from these plans' names), and `walk` slices from a
// position found in it.
#[allow(clippy::indexing_slicing)]
fn check_extends(ck: &mut Checker, doc: &PolicyDoc, parents: &[Option<(u32, Location)>]) {
    #[derive(Clone, Copy, PartialEq)]
    enum Seen {
        No,
        OnThisWalk,
        Done,
    }
    let names: Vec<&str> = doc
        .plans
        .value
        .0
        .iter()
        .map(|(k, _)| k.value.as_str())
        .collect();
    let mut seen = vec![Seen::No; parents.len()];
    let mut in_cycle = vec![false; parents.len()];
    for start in 0..parents.len() {
        let mut walk = Vec::new();
        let mut cur = start;
        while seen[cur] == Seen::No {
            seen[cur] = Seen::OnThisWalk;
            walk.push(cur);
            match parents[cur] {
                Some((p, _)) => cur = p as usize,
                None => break,
            }
        }
        if seen[cur] == Seen::OnThisWalk && parents[cur].is_some() {
            // `cur` was reached twice on this walk: the walk from it on is a cycle.
            let from = walk.iter().position(|&p| p == cur).unwrap_or(0);
            let members = &walk[from..];
            let first = members.iter().copied().min().unwrap_or(cur);
            let mut chain = vec![format!("`{}`", names[first])];
            let mut p = first;
            loop {
                p = parents[p].map_or(first, |(q, _)| q as usize);
                chain.push(format!("`{}`", names[p]));
                if p == first {
                    break;
                }
            }
            for &m in members {
                in_cycle[m] = true;
            }
            let (next, at) = parents[first].unwrap_or((first as u32, doc.plans.referenced));
            ck.error(
                &at,
                names[next as usize].len(),
                format!("plans extend each other in a cycle: {}", chain.join(" → ")),
                format!("remove `extends` from one of them: a plan extends only a plan listed above it (here `{}` is listed first)", names[first]),
            );
        }
        for p in walk {
            seen[p] = Seen::Done;
        }
    }
    for (i, parent) in parents.iter().enumerate() {
        if let Some((p, at)) = parent
            && (*p as usize) >= i
            && !in_cycle[i]
        {
            ck.error(
                at,
                names[*p as usize].len(),
                format!(
                    "plan `{}` extends `{}`, which is listed after it",
                    names[i], names[*p as usize]
                ),
                format!(
                    "plans are listed lowest tier first: move `{}` above `{}`",
                    names[*p as usize], names[i]
                ),
            );
        }
    }
}

/// A plan gets at least what it extends: a limit below the inherited value is a
/// mistake a customer would notice as a downgrade when moving up a tier.
// Limit ids index vectors of one slot per declared limit, plan ids the plans
// already resolved (a plan extends only an earlier one: checked before this runs),
// and `i`/`j` the document's own plans and limits being walked.
#[allow(clippy::indexing_slicing)]
fn check_limits_never_drop(
    ck: &mut Checker,
    doc: &PolicyDoc,
    plans: &[CheckedPlan],
    limits: &[String],
) {
    // Inherited values, resolved in tier order (parents come first; cycles were rejected).
    let mut resolved: Vec<Vec<Option<LimitValue>>> = Vec::with_capacity(plans.len());
    for (i, plan) in plans.iter().enumerate() {
        let inherited = plan
            .extends
            .and_then(|p| resolved.get(p as usize).cloned())
            .unwrap_or_else(|| vec![None; limits.len()]);
        let mut mine = inherited.clone();
        for (j, &(l, v)) in plan.limits.iter().enumerate() {
            if let (Some(parent), Some(p)) = (inherited[l as usize], plan.extends) {
                let lower = match (v, parent) {
                    (LimitValue::Count(a), LimitValue::Count(b)) => a < b,
                    (LimitValue::Count(_), LimitValue::Unlimited) => true,
                    (LimitValue::Unlimited, _) => false,
                };
                if lower {
                    let (spanned_name, value) = &doc.plans.value.0[i].1.limits.0[j];
                    let parent_name = &plans[p as usize].name;
                    let show = |v: LimitValue| match v {
                        LimitValue::Count(n) => n.to_string(),
                        LimitValue::Unlimited => "unlimited".to_owned(),
                    };
                    ck.error(
                        &value.referenced,
                        show(v).len(),
                        format!(
                            "plan `{}` sets `{}: {}`, less than the {} it gets from `{parent_name}`",
                            plan.name, spanned_name.value, show(v), show(parent)
                        ),
                        format!("a plan gets at least what it extends: raise it to {} or more, or stop extending `{parent_name}`", show(parent)),
                    );
                }
            }
            mine[l as usize] = Some(v);
        }
        resolved.push(mine);
    }
}

// Method indices come from `method_index`, so they index `METHODS`.
#[allow(clippy::indexing_slicing)]
fn check_routes(ck: &mut Checker, doc: &PolicyDoc) -> Vec<CheckedRule> {
    let mut rules = Vec::new();
    let mut seen: HashMap<(&str, Option<usize>), u64> = HashMap::new();
    let mut router = matchit::Router::new();
    let mut inserted: HashMap<&str, u64> = HashMap::new();
    for route in &doc.routes {
        let r = &route.value;
        let path = &r.path;
        let line = route.referenced.line();
        let mut ok = true;
        if !path.value.starts_with('/') {
            ck.error(
                &path.referenced,
                path.value.chars().count(),
                format!("route path `{}` does not start with `/`", path.value),
                format!("write `/{}`", path.value.trim_start_matches('/')),
            );
            ok = false;
        } else if let Err(e) = parse_pattern(&path.value) {
            ck.error(
                &path.referenced,
                path.value.chars().count(),
                format!("invalid route pattern `{}`: {e}", path.value),
                "patterns use `{name}` for one segment and `{*name}` (last) for the rest; write `{{` and `}}` for literal braces".to_owned(),
            );
            ok = false;
        } else if !inserted.contains_key(path.value.as_str()) {
            // The lookup tree is our own; matchit (axum's router) decides which sets of
            // patterns are allowed, so a policy accepts exactly what axum would route.
            match router.insert(path.value.as_str(), ()) {
                Ok(()) => {
                    inserted.insert(path.value.as_str(), line);
                }
                Err(e) => {
                    let (message, help) = describe_insert_error(&e, &path.value, &inserted);
                    ck.error(&path.referenced, path.value.chars().count(), message, help);
                    ok = false;
                }
            }
        }

        let methods = r.methods.as_ref().map(|ms| {
            if ms.is_empty() {
                ck.error(
                    &path.referenced,
                    1,
                    "`methods: []` lists no method".into(),
                    "list methods such as `[GET, POST]`, or remove `methods` to cover every method"
                        .into(),
                );
            }
            let mut idx = Vec::new();
            for m in ms {
                match method_index(&m.value) {
                    Some(i) if !idx.contains(&i) => idx.push(i),
                    Some(_) => {}
                    None => {
                        let upper = m.value.to_ascii_uppercase();
                        let help = if method_index(&upper).is_some() {
                            format!("methods are upper case: write `{upper}`")
                        } else {
                            format!("use one of: {}", METHODS.join(", "))
                        };
                        ck.error(
                            &m.referenced,
                            m.value.chars().count(),
                            format!("unknown HTTP method `{}`", m.value),
                            help,
                        );
                    }
                }
            }
            idx
        });

        if ok {
            let keys: Vec<Option<usize>> = match &methods {
                Some(ms) => ms.iter().map(|m| Some(*m)).collect(),
                None => vec![None],
            };
            for key in keys {
                if let Some(first) = seen.insert((path.value.as_str(), key), line) {
                    let what = key.map_or("every method".to_owned(), |m| METHODS[m].to_owned());
                    ck.error(
                        &path.referenced,
                        path.value.chars().count(),
                        format!(
                            "a second rule for `{}` ({what}); the first is on line {first}",
                            path.value
                        ),
                        "merge the two rules into one, or give them different `methods`".to_owned(),
                    );
                }
            }
        }

        let public = r.public.as_ref().is_some_and(|p| p.value);
        let enforce = r.enforce.as_ref().is_none_or(|e| e.value);
        if let (Some(e), true) = (&r.enforce, public) {
            ck.error(
                &e.referenced,
                1,
                "a route is `public: true` and has `enforce`".into(),
                "remove `enforce`: a public route denies no one, so there is nothing to observe"
                    .into(),
            );
        }
        let access = match (&r.require, public) {
            (Some(req), true) => {
                ck.error(
                    &req.referenced,
                    1,
                    "a route is `public: true` and has `require`".into(),
                    "remove `require` (public routes need no token) or remove `public: true`"
                        .into(),
                );
                None
            }
            (Some(req), false) => ck.lower(req, false).map(Access::Require),
            (None, true) => Some(Access::Public),
            (None, false) => Some(Access::Authenticated),
        };
        if let Some(access) = access {
            rules.push(CheckedRule {
                pattern: path.value.clone(),
                methods,
                line: line as u32,
                access,
                enforce,
            });
        }
    }
    rules
}

fn describe_insert_error(
    e: &matchit::InsertError,
    path: &str,
    inserted: &HashMap<&str, u64>,
) -> (String, String) {
    match e {
        matchit::InsertError::Conflict { with } => {
            let line = inserted.get(with.as_str()).map(|l| format!(" on line {l}")).unwrap_or_default();
            (
                format!("route `{path}` conflicts with `{with}`{line}"),
                "where two patterns share a position, use the same parameter name in both, and either `{name}` or `{*rest}` there, not both (axum's router has the same rule); or make one segment static".to_owned(),
            )
        }
        other => (
            format!("invalid route pattern `{path}`: {other}"),
            "patterns use `{name}` for one segment and `{*name}` (last) for the rest; write `{{` and `}}` for literal braces".to_owned(),
        ),
    }
}
