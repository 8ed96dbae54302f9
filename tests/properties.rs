//! Property tests: the compiled evaluator against a deliberately naive reference
//! written here from the documented semantics (recursive inheritance, linear route
//! scan, no bitsets, no tables), on random policies, claims, times and paths.
//! Policies are rendered to YAML so the whole parse → validate → compile path runs.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use tiergate::{Claims, Entitlements, Policy, Reason};

// ---------- the model ----------

#[derive(Clone, Debug)]
enum CondM {
    Feature(usize),
    PlanIn(Vec<usize>),
    PlanAtLeast(usize),
    Role(Vec<usize>),
    Trial(u8), // 0 active, 1 expired, 2 none
    Seats(u64),
    All(Vec<CondM>),
    Any(Vec<CondM>),
    Not(Box<CondM>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Lim {
    Count(u64),
    Unlimited,
}

#[derive(Clone, Debug)]
struct PlanM {
    extends: Option<usize>,
    features: Vec<usize>,
    limits: Vec<(usize, Lim)>,
}

#[derive(Clone, Debug)]
enum AccessM {
    Public,
    Authenticated,
    Require(CondM),
}

#[derive(Clone, Debug)]
struct RouteM {
    pattern: usize,
    methods: Option<Vec<&'static str>>,
    access: AccessM,
}

#[derive(Clone, Debug)]
struct Model {
    plans: Vec<PlanM>,
    features: Vec<Option<CondM>>, // each feature's `when`
    roles: Vec<Vec<usize>>,
    trial: Option<usize>,
    default_plan: usize,
    routes: Vec<RouteM>,
    unmatched_authenticated: bool,
    n_limits: usize,
}

const GROUPS: usize = 2;
/// Patterns: per group, a static path, a static and a `{param}` sibling, a static and a
/// `{*rest}` sibling (a param and a catch-all never share a position: matchit forbids it).
fn pattern(i: usize) -> String {
    let g = i / 5;
    match i % 5 {
        0 => format!("/s{g}"),
        1 => format!("/g{g}/fixed"),
        2 => format!("/g{g}/{{id}}"),
        3 => format!("/h{g}/fixed"),
        _ => format!("/h{g}/{{*rest}}"),
    }
}
const N_PATTERNS: usize = GROUPS * 5;

fn request_paths() -> Vec<String> {
    let mut v = vec!["/nowhere".to_owned()];
    for g in 0..GROUPS {
        for p in [
            "/s{g}",
            "/g{g}/fixed",
            "/g{g}/x7",
            "/g{g}",
            "/h{g}/fixed",
            "/h{g}/a/b",
            "/h{g}",
        ] {
            v.push(p.replace("{g}", &g.to_string()));
        }
    }
    v
}
const REQUEST_METHODS: [&str; 5] = ["GET", "POST", "HEAD", "DELETE", "PROPFIND"];

// ---------- rendering to YAML ----------

/// `p0, p2` for `names("p", &[0, 2])`.
fn names(prefix: &str, ids: &[usize]) -> String {
    ids.iter()
        .map(|i| format!("{prefix}{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cond_yaml(c: &CondM) -> String {
    match c {
        CondM::Feature(f) => format!("f{f}"),
        CondM::PlanIn(ps) => format!("{{ plan: [{}] }}", names("p", ps)),
        CondM::PlanAtLeast(p) => format!("{{ plan_at_least: p{p} }}"),
        CondM::Role(rs) => format!("{{ role: [{}] }}", names("r", rs)),
        CondM::Trial(t) => format!(
            "{{ trial: {} }}",
            ["active", "expired", "none"][*t as usize]
        ),
        CondM::Seats(n) => format!("{{ seats: {{ at_least: {n} }} }}"),
        CondM::All(cs) => format!(
            "{{ all: [{}] }}",
            cs.iter().map(cond_yaml).collect::<Vec<_>>().join(", ")
        ),
        CondM::Any(cs) => format!(
            "{{ any: [{}] }}",
            cs.iter().map(cond_yaml).collect::<Vec<_>>().join(", ")
        ),
        CondM::Not(c) => format!("{{ not: {} }}", cond_yaml(c)),
    }
}

fn lim_yaml(l: Lim) -> String {
    match l {
        Lim::Count(n) => n.to_string(),
        Lim::Unlimited => "unlimited".into(),
    }
}

fn to_yaml(m: &Model) -> String {
    let mut y = String::from("version: 1\nplans:\n");
    for (i, p) in m.plans.iter().enumerate() {
        y += &format!("  p{i}:\n");
        if let Some(e) = p.extends {
            y += &format!("    extends: p{e}\n");
        }
        y += &format!("    features: [{}]\n", names("f", &p.features));
        let limits: Vec<String> = p
            .limits
            .iter()
            .map(|(l, v)| format!("l{l}: {}", lim_yaml(*v)))
            .collect();
        y += &format!("    limits: {{ {} }}\n", limits.join(", "));
    }
    y += &format!("default_plan: p{}\n", m.default_plan);
    if let Some(t) = m.trial {
        y += &format!("trial: {{ plan: p{t} }}\n");
    }
    y += "roles:\n";
    for (i, r) in m.roles.iter().enumerate() {
        y += &format!("  r{i}: {{ features: [{}] }}\n", names("f", r));
    }
    y += "features:\n";
    for (i, w) in m.features.iter().enumerate() {
        match w {
            Some(c) => y += &format!("  f{i}: {{ when: {} }}\n", cond_yaml(c)),
            None => y += &format!("  f{i}: {{}}\n"),
        }
    }
    y += "routes:\n";
    for r in &m.routes {
        y += &format!("  - {{ path: \"{}\"", pattern(r.pattern));
        if let Some(ms) = &r.methods {
            y += &format!(", methods: [{}]", ms.join(", "));
        }
        match &r.access {
            AccessM::Public => y += ", public: true",
            AccessM::Authenticated => {}
            AccessM::Require(c) => y += &format!(", require: {}", cond_yaml(c)),
        }
        y += " }\n";
    }
    y += &format!(
        "unmatched: {}\n",
        if m.unmatched_authenticated {
            "authenticated"
        } else {
            "deny"
        }
    );
    y
}

// ---------- the naive reference ----------

struct Who {
    base: usize,
    trial: u8, // 0 active, 1 expired, 2 none
    roles: Vec<usize>,
    seats: Option<u64>,
}

impl Model {
    fn plan_features(&self, p: usize) -> BTreeSet<usize> {
        let mut s: BTreeSet<usize> = self.plans[p].features.iter().copied().collect();
        if let Some(parent) = self.plans[p].extends {
            s.extend(self.plan_features(parent));
        }
        s
    }

    fn plan_limit(&self, p: usize, l: usize) -> Lim {
        if let Some((_, v)) = self.plans[p].limits.iter().find(|(x, _)| *x == l) {
            return *v;
        }
        match self.plans[p].extends {
            Some(parent) => self.plan_limit(parent, l),
            None => Lim::Count(0),
        }
    }

    fn effective(&self, w: &Who) -> usize {
        match self.trial {
            Some(t) if w.trial == 0 && t > w.base => t,
            _ => w.base,
        }
    }

    fn trial_active(&self, w: &Who) -> Option<usize> {
        self.trial.filter(|_| w.trial == 0)
    }

    /// Own plan's features, plus the trial plan's while the trial is active, plus roles'.
    fn has(&self, w: &Who, f: usize) -> bool {
        let granted = self.plan_features(w.base).contains(&f)
            || self
                .trial_active(w)
                .is_some_and(|t| self.plan_features(t).contains(&f))
            || w.roles.iter().any(|r| self.roles[*r].contains(&f));
        granted && self.features[f].as_ref().is_none_or(|c| self.eval(c, w))
    }

    fn eval(&self, c: &CondM, w: &Who) -> bool {
        match c {
            CondM::Feature(f) => self.has(w, *f),
            CondM::PlanIn(ps) => ps.contains(&self.effective(w)),
            CondM::PlanAtLeast(p) => self.effective(w) >= *p,
            CondM::Role(rs) => rs.iter().any(|r| w.roles.contains(r)),
            CondM::Trial(t) => w.trial == *t,
            CondM::Seats(n) => w.seats.is_some_and(|s| s >= *n),
            CondM::All(cs) => cs.iter().all(|c| self.eval(c, w)),
            CondM::Any(cs) => cs.iter().any(|c| self.eval(c, w)),
            CondM::Not(c) => !self.eval(c, w),
        }
    }

    /// A plan's limit, or the active trial plan's if higher.
    fn limit(&self, w: &Who, l: usize) -> Lim {
        let own = self.plan_limit(w.base, l);
        match self.trial_active(w).map(|t| self.plan_limit(t, l)) {
            Some(Lim::Unlimited) => Lim::Unlimited,
            Some(Lim::Count(t)) => match own {
                Lim::Count(o) => Lim::Count(o.max(t)),
                Lim::Unlimited => Lim::Unlimited,
            },
            None => own,
        }
    }

    /// The lowest plan above the caller's own on which `ok` holds.
    fn upgrade(&self, w: &Who, ok: impl Fn(&Who) -> bool) -> Option<usize> {
        (w.base + 1..self.plans.len()).find(|&p| {
            ok(&Who {
                base: p,
                trial: w.trial,
                roles: w.roles.clone(),
                seats: w.seats,
            })
        })
    }

    /// The rule governing `method path`, as docs/policy.md describes it.
    fn route(&self, method: &str, path: &str) -> Option<&RouteM> {
        let governing = |pat: usize| -> Option<&RouteM> {
            let named = |m: &str| {
                self.routes.iter().find(|r| {
                    r.pattern == pat && r.methods.as_ref().is_some_and(|ms| ms.contains(&m))
                })
            };
            let standard = [
                "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
            ];
            let explicit = if standard.contains(&method) {
                named(method)
            } else {
                None
            };
            explicit
                .or_else(|| if method == "HEAD" { named("GET") } else { None })
                .or_else(|| {
                    self.routes
                        .iter()
                        .find(|r| r.pattern == pat && r.methods.is_none())
                })
        };
        let mut best: Option<(usize, &RouteM)> = None;
        for pat in 0..N_PATTERNS {
            let p = pattern(pat);
            let rank = if p.contains("{*") {
                2
            } else if p.contains('{') {
                1
            } else {
                0
            };
            if matches(&p, path)
                && let Some(r) = governing(pat)
                && best.is_none_or(|(b, _)| rank < b)
            {
                best = Some((rank, r));
            }
        }
        best.map(|(_, r)| r)
    }
}

fn matches(pattern: &str, path: &str) -> bool {
    let (pp, qq): (Vec<&str>, Vec<&str>) =
        (pattern.split('/').collect(), path.split('/').collect());
    for (i, seg) in pp.iter().enumerate() {
        if seg.starts_with("{*") {
            return qq.len() > i && !qq[i..].join("/").is_empty();
        }
        match qq.get(i) {
            Some(q) if seg.starts_with('{') => {
                if q.is_empty() {
                    return false;
                }
            }
            Some(q) if q == seg => {}
            _ => return false,
        }
    }
    pp.len() == qq.len()
}

// ---------- claims ----------

#[derive(Clone, Debug)]
struct ClaimsM {
    plan: u8,       // 0 absent, 1 unknown, 2 malformed, 3.. known plan (x - 3) % n
    roles: Vec<u8>, // indexes; 9 = unknown role
    roles_malformed: bool,
    trial: u8, // 0 absent, 1 active, 2 expired, 3 malformed
    trial_days: i64,
    seats: Option<u64>,
    seats_form: u8, // 0 number, 1 string, 2 malformed
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 0).unwrap()
}

impl ClaimsM {
    fn json(&self, m: &Model) -> Value {
        let mut o = serde_json::Map::new();
        match self.plan {
            0 => {}
            1 => {
                o.insert("plan".into(), json!("platinum"));
            }
            2 => {
                o.insert("plan".into(), json!(42));
            }
            x => {
                o.insert(
                    "plan".into(),
                    json!(format!("p{}", (x as usize - 3) % m.plans.len())),
                );
            }
        }
        if self.roles_malformed {
            o.insert("role".into(), json!(["r0", 5]));
        } else if !self.roles.is_empty() {
            let names: Vec<String> = self
                .roles
                .iter()
                .map(|r| {
                    if *r == 9 || m.roles.is_empty() {
                        "ghost".into()
                    } else {
                        format!("r{}", *r as usize % m.roles.len())
                    }
                })
                .collect();
            o.insert("role".into(), json!(names));
        }
        let day = (now() + Duration::days(self.trial_days))
            .format("%Y-%m-%d")
            .to_string();
        let past = (now() - Duration::days(self.trial_days.abs() + 1))
            .format("%Y-%m-%d")
            .to_string();
        match self.trial {
            1 => {
                o.insert("trial_ends".into(), json!(day));
            }
            2 => {
                o.insert("trial_ends".into(), json!(past));
            }
            3 => {
                o.insert("trial_ends".into(), json!("soon"));
            }
            _ => {}
        }
        if let Some(s) = self.seats {
            let v = match self.seats_form {
                0 => json!(s),
                1 => json!(s.to_string()),
                _ => json!("five"),
            };
            o.insert("seats".into(), v);
        }
        Value::Object(o)
    }

    fn who(&self, m: &Model) -> Who {
        let base = match self.plan {
            x if x >= 3 => (x as usize - 3) % m.plans.len(),
            _ => m.default_plan,
        };
        let roles = if self.roles_malformed || m.roles.is_empty() {
            vec![]
        } else {
            self.roles
                .iter()
                .filter(|r| **r != 9)
                .map(|r| *r as usize % m.roles.len())
                .collect()
        };
        let trial = match self.trial {
            1 if self.trial_days >= 0 => 0,
            1 | 2 => 1,
            _ => 2,
        };
        let seats = if self.seats_form == 2 {
            None
        } else {
            self.seats
        };
        Who {
            base,
            trial,
            roles,
            seats,
        }
    }
}

// ---------- strategies ----------

fn leaf(
    n_plans: usize,
    n_features: usize,
    n_roles: usize,
    features: bool,
    monotone: bool,
) -> BoxedStrategy<CondM> {
    let mut options: Vec<BoxedStrategy<CondM>> = vec![
        (0..n_plans).prop_map(CondM::PlanAtLeast).boxed(),
        (0u64..4).prop_map(CondM::Seats).boxed(),
        Just(CondM::Trial(0)).boxed(),
    ];
    if features {
        options.push((0..n_features).prop_map(CondM::Feature).boxed());
        options.push((0..n_features).prop_map(CondM::Feature).boxed());
    }
    if n_roles > 0 {
        options.push(
            prop::collection::vec(0..n_roles, 1..3)
                .prop_map(CondM::Role)
                .boxed(),
        );
    }
    if !monotone {
        options.push(
            prop::collection::vec(0..n_plans, 1..3)
                .prop_map(CondM::PlanIn)
                .boxed(),
        );
        options.push((1u8..3).prop_map(CondM::Trial).boxed());
    }
    proptest::strategy::Union::new(options).boxed()
}

fn cond(
    n_plans: usize,
    n_features: usize,
    n_roles: usize,
    features: bool,
    monotone: bool,
) -> BoxedStrategy<CondM> {
    leaf(n_plans, n_features, n_roles, features, monotone)
        .prop_recursive(2, 8, 3, move |inner| {
            let mut options = vec![
                prop::collection::vec(inner.clone(), 1..3)
                    .prop_map(CondM::All)
                    .boxed(),
                prop::collection::vec(inner.clone(), 1..3)
                    .prop_map(CondM::Any)
                    .boxed(),
            ];
            if !monotone {
                options.push(inner.prop_map(|c| CondM::Not(Box::new(c))).boxed());
            }
            proptest::strategy::Union::new(options)
        })
        .boxed()
}

fn model(monotone: bool) -> impl Strategy<Value = Model> {
    (1usize..5, 1usize..6, 0usize..3, 1usize..3).prop_flat_map(
        move |(n_plans, n_features, n_roles, n_limits)| {
            let plans = (0..n_plans)
                .map(|i| {
                    (
                        if i == 0 {
                            Just(None).boxed()
                        } else {
                            prop::option::of(0..i).boxed()
                        },
                        prop::collection::vec(0..n_features, 0..3),
                        prop::collection::vec((0..n_limits, prop::option::of(0u64..20)), 0..2),
                    )
                        .prop_map(|(extends, features, limits)| PlanM {
                            extends,
                            features,
                            limits: limits
                                .into_iter()
                                .map(|(l, v)| (l, v.map_or(Lim::Unlimited, Lim::Count)))
                                .collect(),
                        })
                })
                .collect::<Vec<_>>();
            let features = prop::collection::vec(
                prop::option::weighted(0.3, cond(n_plans, n_features, n_roles, false, monotone)),
                n_features,
            );
            let roles = prop::collection::vec(prop::collection::vec(0..n_features, 0..3), n_roles);
            let access = prop_oneof![
                1 => Just(AccessM::Public),
                1 => Just(AccessM::Authenticated),
                6 => cond(n_plans, n_features, n_roles, true, monotone).prop_map(AccessM::Require),
            ];
            let methods = prop_oneof![
                Just(None),
                Just(Some(vec!["GET"])),
                Just(Some(vec!["POST"])),
                Just(Some(vec!["GET", "POST"])),
            ];
            let routes = prop::collection::vec(
                (0..N_PATTERNS, methods, access).prop_map(|(pattern, methods, access)| RouteM {
                    pattern,
                    methods,
                    access,
                }),
                1..8,
            );
            (
                plans,
                features,
                roles,
                prop::option::of(0..n_plans),
                0..n_plans,
                routes,
                any::<bool>(),
            )
                .prop_map(
                    move |(
                        plans,
                        features,
                        roles,
                        trial,
                        default_plan,
                        routes,
                        unmatched_authenticated,
                    )| {
                        let mut m = Model {
                            plans,
                            features,
                            roles,
                            trial,
                            default_plan,
                            routes,
                            unmatched_authenticated,
                            n_limits,
                        };
                        normalize(&mut m);
                        m
                    },
                )
        },
    )
}

/// Makes a random model valid: no duplicate (path, method) rules, and no plan
/// lowering a limit it inherits.
fn normalize(m: &mut Model) {
    let mut seen: Vec<(usize, Option<&'static str>)> = Vec::new();
    m.routes.retain(|r| {
        let keys: Vec<Option<&'static str>> = match &r.methods {
            Some(ms) => ms.iter().map(|x| Some(*x)).collect(),
            None => vec![None],
        };
        if keys.iter().any(|k| seen.contains(&(r.pattern, *k))) {
            return false;
        }
        seen.extend(keys.into_iter().map(|k| (r.pattern, k)));
        true
    });
    for p in 0..m.plans.len() {
        let Some(parent) = m.plans[p].extends else {
            continue;
        };
        let fixed: Vec<(usize, Lim)> = m.plans[p]
            .limits
            .iter()
            .map(|&(l, v)| {
                let inherited = m.plan_limit(parent, l);
                let lower = match (v, inherited) {
                    (Lim::Count(a), Lim::Count(b)) => a < b,
                    (Lim::Count(_), Lim::Unlimited) => true,
                    _ => false,
                };
                (l, if lower { inherited } else { v })
            })
            .collect();
        m.plans[p].limits = fixed;
    }
    // A plan may name the same limit twice in the generator; YAML would reject it.
    for p in &mut m.plans {
        let mut seen = BTreeSet::new();
        p.limits.retain(|(l, _)| seen.insert(*l));
    }
}

fn claims_m() -> impl Strategy<Value = ClaimsM> {
    (
        0u8..9,
        prop::collection::vec(prop_oneof![0u8..3, Just(9u8)], 0..3),
        prop::bool::weighted(0.1),
        0u8..4,
        -3i64..30,
        prop::option::of(0u64..5),
        0u8..3,
    )
        .prop_map(
            |(plan, roles, roles_malformed, trial, trial_days, seats, seats_form)| ClaimsM {
                plan,
                roles,
                roles_malformed,
                trial,
                trial_days,
                seats,
                seats_form,
            },
        )
}

fn lim_of(l: tiergate::Limit) -> Lim {
    match l {
        tiergate::Limit::Count(n) => Lim::Count(n),
        tiergate::Limit::Unlimited => Lim::Unlimited,
    }
}

fn lim_allows(l: Lim, used: u64) -> bool {
    match l {
        Lim::Count(n) => used < n,
        Lim::Unlimited => true,
    }
}

fn compile(m: &Model) -> Policy {
    let yaml = to_yaml(m);
    Policy::from_yaml(&yaml).unwrap_or_else(|e| panic!("generated policy must load:\n{yaml}\n{e}"))
}

/// Everything `before` may do (every request, every feature), `after` may do too.
fn assert_keeps_access(
    before: &Entitlements,
    after: &Entitlements,
    context: &str,
) -> Result<(), TestCaseError> {
    for method in REQUEST_METHODS {
        for path in request_paths() {
            if before.check_route(method, &path).allowed() {
                prop_assert!(
                    after.check_route(method, &path).allowed(),
                    "{} {} lost {}",
                    method,
                    path,
                    context
                );
            }
        }
    }
    for feature in before.policy().features() {
        prop_assert!(
            !before.has(feature) || after.has(feature),
            "feature {} lost {}",
            feature,
            context
        );
    }
    Ok(())
}

// ---------- properties ----------

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn compiled_evaluator_agrees_with_the_naive_reference(m in model(false), cs in prop::collection::vec(claims_m(), 1..5)) {
        let policy = compile(&m);
        for c in &cs {
            let ent = policy.entitlements(&Claims::from_object(&c.json(&m)), now());
            let who = c.who(&m);
            let plan = m.effective(&who);
            prop_assert_eq!(ent.plan(), format!("p{plan}"));
            for method in REQUEST_METHODS {
                for path in request_paths() {
                    let d = ent.check_route(method, &path);
                    let (allowed, upgrade, reason) = match m.route(method, &path) {
                        None => (m.unmatched_authenticated, None, None),
                        Some(r) => match &r.access {
                            AccessM::Public => (true, None, Some(Reason::Public)),
                            AccessM::Authenticated => (true, None, Some(Reason::Authenticated)),
                            AccessM::Require(cond) => {
                                let ok = m.eval(cond, &who);
                                let up = if ok { None } else { m.upgrade(&who, |w| m.eval(cond, w)) };
                                (ok, up, ok.then_some(Reason::Granted))
                            }
                        },
                    };
                    prop_assert_eq!(d.allowed(), allowed, "{} {} for {:?}", method, path, c);
                    prop_assert_eq!(d.upgrade_to().map(str::to_owned), upgrade.map(|p| format!("p{p}")), "{} {}", method, path);
                    if let Some(r) = reason {
                        prop_assert_eq!(d.reason(), r);
                    }
                    if m.route(method, &path).is_none() && !allowed {
                        prop_assert_eq!(d.reason(), Reason::NoMatchingRoute);
                    }
                    prop_assert_eq!(d.rule().map(|r| r.pattern().to_owned()), m.route(method, &path).map(|r| pattern(r.pattern)));
                }
            }
            for f in 0..m.features.len() {
                let name = format!("f{f}");
                let has = m.has(&who, f);
                prop_assert_eq!(ent.has(&name), has, "feature {}", name);
                let d = ent.check(&name);
                prop_assert_eq!(d.allowed(), has);
                let up = if has { None } else { m.upgrade(&who, |w| m.has(w, f)) };
                prop_assert_eq!(d.upgrade_to().map(str::to_owned), up.map(|p| format!("p{p}")), "feature {}", name);
            }
            for l in 0..m.n_limits {
                let name = format!("l{l}");
                if !m.plans.iter().any(|p| p.limits.iter().any(|(x, _)| *x == l)) {
                    prop_assert_eq!(ent.limit(&name), None, "no plan sets {}", name);
                    prop_assert_eq!(ent.within_limit(&name, 0).reason(), Reason::UnknownLimit);
                    continue;
                }
                let limit = m.limit(&who, l);
                prop_assert_eq!(ent.limit(&name).map(lim_of), Some(limit));
                for used in [0u64, 3, 19, 25] {
                    let d = ent.within_limit(&name, used);
                    prop_assert_eq!(d.allowed(), lim_allows(limit, used));
                    let up = if lim_allows(limit, used) { None } else {
                        m.upgrade(&who, |w| lim_allows(m.limit(w, l), used))
                    };
                    prop_assert_eq!(d.upgrade_to().map(str::to_owned), up.map(|p| format!("p{p}")));
                }
            }
        }
    }

    #[test]
    fn adding_a_feature_to_a_plan_never_removes_access(m in model(true), cs in prop::collection::vec(claims_m(), 1..4), pick in any::<(prop::sample::Index, prop::sample::Index)>()) {
        let before = compile(&m);
        let mut grown = m.clone();
        let p = pick.0.index(grown.plans.len());
        let f = pick.1.index(grown.features.len());
        grown.plans[p].features.push(f);
        let after = compile(&grown);
        for c in &cs {
            let claims = Claims::from_object(&c.json(&m));
            let (a, b) = (before.entitlements(&claims, now()), after.entitlements(&claims, now()));
            assert_keeps_access(&a, &b, &format!("after adding f{f} to p{p}"))?;
        }
    }

    #[test]
    fn a_plan_never_has_less_than_the_plan_it_extends(m in model(true), cs in prop::collection::vec(claims_m(), 1..4)) {
        let policy = compile(&m);
        for (child, plan) in m.plans.iter().enumerate() {
            let Some(parent) = plan.extends else { continue };
            let (cn, pn) = (format!("p{child}"), format!("p{parent}"));
            let child_features: BTreeSet<&str> = policy.plan_features(&cn).unwrap().collect();
            for f in policy.plan_features(&pn).unwrap() {
                prop_assert!(child_features.contains(f));
            }
            for l in policy.limits() {
                let (c, p) = (lim_of(policy.plan_limit(&cn, l).unwrap()), lim_of(policy.plan_limit(&pn, l).unwrap()));
                prop_assert!(match (c, p) { (Lim::Unlimited, _) => true, (Lim::Count(_), Lim::Unlimited) => false, (Lim::Count(a), Lim::Count(b)) => a >= b }, "{} {:?} < {} {:?}", cn, c, pn, p);
            }
            for c in &cs {
                let mut on_child = c.json(&m);
                let mut on_parent = on_child.clone();
                on_child["plan"] = json!(cn);
                on_parent["plan"] = json!(pn);
                let (ce, pe) = (policy.entitlements(&Claims::from_object(&on_child), now()), policy.entitlements(&Claims::from_object(&on_parent), now()));
                assert_keeps_access(&pe, &ce, &format!("on {cn}, which extends {pn}"))?;
            }
        }
    }

    #[test]
    fn an_invalid_claim_never_grants_more_than_an_absent_one(m in model(false), c in claims_m(), which in 0usize..4) {
        let policy = compile(&m);
        let key = ["plan", "role", "trial_ends", "seats"][which];
        let bad = [json!({"tier": "pro"}), json!(7), json!("soon"), json!("five")][which].clone();
        let mut invalid = c.json(&m);
        let mut absent = invalid.clone();
        invalid[key] = bad;
        absent.as_object_mut().unwrap().remove(key);
        let (bad_e, none_e) = (policy.entitlements(&Claims::from_object(&invalid), now()), policy.entitlements(&Claims::from_object(&absent), now()));
        prop_assert!(!bad_e.notes().is_empty(), "the malformed {} is noted", key);
        for method in REQUEST_METHODS {
            for path in request_paths() {
                let (x, y) = (bad_e.check_route(method, &path), none_e.check_route(method, &path));
                prop_assert_eq!((x.allowed(), x.reason(), x.upgrade_to()), (y.allowed(), y.reason(), y.upgrade_to()), "{} {}", method, path);
            }
        }
        for f in policy.features() {
            prop_assert_eq!(bad_e.has(f), none_e.has(f));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Features granted by the token (`features` claim) only ever add: every request
    /// and feature allowed without the grant is allowed with it (even under `not`),
    /// a feature gained is one the token named and the policy declares, and a
    /// granted feature without a `when` is always held.
    #[test]
    fn a_token_grant_only_adds_declared_features(
        m in model(false),
        cs in prop::collection::vec(claims_m(), 1..4),
        grants in prop::collection::vec(0usize..12, 0..4),
    ) {
        let policy = compile(&m);
        // Indices past the policy's features name features it does not declare.
        let names: Vec<String> = grants.iter().map(|g| format!("f{g}")).collect();
        for c in &cs {
            let plain = c.json(&m);
            let mut granted = plain.clone();
            granted["features"] = json!(names);
            let before = policy.entitlements(&Claims::from_object(&plain), now());
            let after = policy.entitlements(&Claims::from_object(&granted), now());
            assert_keeps_access(&before, &after, "by a grant")?;
            for f in policy.features() {
                if after.has(f) && !before.has(f) {
                    prop_assert!(names.iter().any(|n| n == f), "{} came from nowhere", f);
                }
            }
            for (g, name) in grants.iter().zip(&names) {
                match m.features.get(*g) {
                    Some(None) => prop_assert!(after.has(name), "granted {} without a `when`", name),
                    Some(Some(_)) => {}
                    None => prop_assert!(
                        after.notes().codes().any(|n| n == "unknown_feature"),
                        "{} is not declared and not noted", name
                    ),
                }
            }
        }
    }
}
