//! The decision for one request (route lookup + evaluation, for a caller whose
//! Entitlements are built; building them is measured separately in `parts`),
//! on generated policies of 10 to 10,000 routes and 3 to 300 plans, and the same
//! decisions made by cedar-policy, whose answers are checked to agree first.
//!
//! Run: `cd benches/compare && CARGO_TARGET_DIR=../../target cargo bench --bench engine`
//! (a crate of its own, so tiergate's tests do not compile two policy engines).
//! Results are summarized in the README.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::hint::black_box;
use std::str::FromStr;
use std::time::Duration;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityUid, PolicySet,
    Request, RestrictedExpression,
};
use chrono::{DateTime, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::json;
use tiergate::{Claims, Policy};

/// One generated policy in both languages.
struct Generated {
    yaml: String,
    cedar: String,
    /// The same rules in Rego, for regorus: one `allow` body per alternative.
    rego: String,
    plans: usize,
    paths: Vec<String>,
}

fn features_for(routes: usize, plans: usize) -> usize {
    (routes / 5).max(20).max(plans)
}

fn lowest_plan(feature: usize, plans: usize) -> usize {
    (feature * 7) % plans
}

fn admin_grants(feature: usize) -> bool {
    feature.is_multiple_of(5)
}

/// A linear tier list p0 < p1 < … (each extends the previous), features spread over
/// it, an `admin` role, a trial, and routes of four kinds: a feature, feature + role,
/// a minimum tier, feature or enough seats.
fn generate(routes: usize, plans: usize) -> Generated {
    let nf = features_for(routes, plans);
    let mut y = String::from("version: 1\nplans:\n");
    for p in 0..plans {
        let own: Vec<String> = (0..nf)
            .filter(|&f| lowest_plan(f, plans) == p)
            .map(|f| format!("f{f}"))
            .collect();
        let extends = if p == 0 {
            String::new()
        } else {
            format!("extends: p{}, ", p - 1)
        };
        let _ = writeln!(y, "  p{p}: {{ {extends}features: [{}] }}", own.join(", "));
    }
    let _ = writeln!(y, "default_plan: p0\ntrial: {{ plan: p{} }}", plans / 2);
    let admin: Vec<String> = (0..nf)
        .filter(|&f| admin_grants(f))
        .map(|f| format!("f{f}"))
        .collect();
    let _ = writeln!(
        y,
        "roles:\n  admin: {{ features: [{}] }}\n  member: {{}}",
        admin.join(", ")
    );
    y.push_str("features:\n");
    for f in 0..nf {
        let _ = writeln!(y, "  f{f}: {{}}");
    }
    y.push_str("routes:\n");
    let mut cedar = String::new();
    let mut rego = String::from("package tiergate\nimport rego.v1\ndefault allow := false\n");
    let mut paths = Vec::new();
    for i in 0..routes {
        let f = i % nf;
        let (pattern, cedar_path, example) = match i % 3 {
            0 => (
                format!("/api/s{i}"),
                format!("context.path == \"/api/s{i}\""),
                format!("/api/s{i}"),
            ),
            1 => (
                format!("/api/p{i}/{{id}}"),
                format!("context.path like \"/api/p{i}/*\""),
                format!("/api/p{i}/42"),
            ),
            _ => (
                format!("/api/w{i}/{{*rest}}"),
                format!("context.path like \"/api/w{i}/*\""),
                format!("/api/w{i}/a/b"),
            ),
        };
        let rego_path = match i % 3 {
            0 => format!("input.path == \"/api/s{i}\""),
            1 => format!("startswith(input.path, \"/api/p{i}/\")"),
            _ => format!("startswith(input.path, \"/api/w{i}/\")"),
        };
        // The route's condition as alternatives, each a conjunction (Rego's "or" is
        // several bodies for one rule).
        let plan_of = |p: usize| format!("\"p{p}\" in input.plans");
        let mut has_f = vec![plan_of(lowest_plan(f, plans))];
        if admin_grants(f) {
            has_f.push("input.admin".to_owned());
        }
        let alternatives: Vec<String> = match i % 4 {
            0 => has_f,
            1 => has_f.iter().map(|h| format!("{h}; input.admin")).collect(),
            2 => vec![plan_of(i % plans)],
            _ => has_f
                .into_iter()
                .chain(["input.seats >= 3".to_owned()])
                .collect(),
        };
        for alt in alternatives {
            let _ = writeln!(
                rego,
                "allow if {{ input.method == \"GET\"; {rego_path}; {alt} }}"
            );
        }
        let has_f = {
            let plan = format!("principal in Plan::\"p{}\"", lowest_plan(f, plans));
            if admin_grants(f) {
                format!("({plan} || principal in Role::\"admin\")")
            } else {
                plan
            }
        };
        let (require, cedar_cond) = match i % 4 {
            0 => (format!("f{f}"), has_f),
            1 => (
                format!("{{ all: [f{f}, {{ role: admin }}] }}"),
                format!("({has_f} && principal in Role::\"admin\")"),
            ),
            2 => (
                format!("{{ plan_at_least: p{} }}", i % plans),
                format!("principal in Plan::\"p{}\"", i % plans),
            ),
            _ => (
                format!("{{ any: [f{f}, {{ seats: {{ at_least: 3 }} }}] }}"),
                format!("({has_f} || principal.seats >= 3)"),
            ),
        };
        let _ = writeln!(
            y,
            "  - {{ path: \"{pattern}\", methods: [GET], require: {require} }}"
        );
        let _ = writeln!(
            cedar,
            "permit(principal, action == Action::\"GET\", resource) when {{ {cedar_path} && {cedar_cond} }};"
        );
        paths.push(example);
    }
    y.push_str("unmatched: deny\n");
    Generated {
        yaml: y,
        cedar,
        rego,
        plans,
        paths,
    }
}

/// A caller: plan index, admin or not, seats, trial active or not.
#[derive(Clone, Copy)]
struct Caller {
    plan: usize,
    admin: bool,
    seats: i64,
    trial: bool,
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn claims_of(c: Caller) -> Claims {
    let mut o = json!({ "plan": format!("p{}", c.plan), "role": if c.admin { "admin" } else { "member" }, "seats": c.seats.to_string() });
    if c.trial {
        o["trial_ends"] = json!("2026-06-20");
    }
    Claims::from_object(&o)
}

/// What a Cedar user builds per request from the same claims: the user entity (its
/// parents are the plans it holds, own and trial, plus its role) and the request.
fn cedar_request(c: Caller, plans: usize, path: &str) -> (Request, Entities) {
    let effective = if c.trial {
        c.plan.max(plans / 2)
    } else {
        c.plan
    };
    let user = EntityUid::from_str("User::\"u\"").unwrap();
    let mut parents: HashSet<EntityUid> = (0..=effective)
        .map(|p| EntityUid::from_str(&format!("Plan::\"p{p}\"")).unwrap())
        .collect();
    if c.admin {
        parents.insert(EntityUid::from_str("Role::\"admin\"").unwrap());
    }
    let attrs = HashMap::from([("seats".to_owned(), RestrictedExpression::new_long(c.seats))]);
    let entity = Entity::new(user.clone(), attrs, parents).unwrap();
    let entities = Entities::from_entities([entity], None).unwrap();
    let context = Context::from_pairs([(
        "path".to_owned(),
        RestrictedExpression::new_string(path.to_owned()),
    )])
    .unwrap();
    let request = Request::new(
        user,
        EntityUid::from_str("Action::\"GET\"").unwrap(),
        EntityUid::from_str("Route::\"r\"").unwrap(),
        context,
        None,
    )
    .unwrap();
    (request, entities)
}

/// What a Rego user passes as `input` for the same caller: the plans they hold (own
/// and trial, each with the tiers below), their role, seats, and the request.
fn rego_input(c: Caller, plans: usize, path: &str) -> regorus::Value {
    let effective = if c.trial {
        c.plan.max(plans / 2)
    } else {
        c.plan
    };
    let held: Vec<String> = (0..=effective).map(|p| format!("p{p}")).collect();
    let input =
        json!({ "method": "GET", "path": path, "plans": held, "admin": c.admin, "seats": c.seats });
    regorus::Value::from_json_str(&input.to_string()).expect("valid JSON")
}

fn rego_allows(engine: &mut regorus::Engine, input: regorus::Value) -> bool {
    engine.set_input(input);
    engine
        .eval_rule("data.tiergate.allow".to_owned())
        .expect("the rule evaluates")
        == regorus::Value::from(true)
}

/// A deterministic sample of callers and paths (plus unmatched paths).
fn sample(g: &Generated, n: usize) -> Vec<(Caller, String)> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|_| {
            let caller = Caller {
                plan: (next() % g.plans as u64) as usize,
                admin: next() % 10 < 3,
                seats: (next() % 6) as i64,
                trial: next() % 10 < 3,
            };
            let path = if next() % 20 == 0 {
                "/api/none/1".to_owned()
            } else {
                g.paths[(next() % g.paths.len() as u64) as usize].clone()
            };
            (caller, path)
        })
        .collect()
}

/// Both engines must decide the same before either is timed.
fn assert_agreement(g: &Generated, policy: &Policy, cedar: &PolicySet) {
    let authorizer = Authorizer::new();
    let (mut allowed, mut denied) = (0, 0);
    for (caller, path) in sample(g, 1_000) {
        let ours = policy
            .entitlements(&claims_of(caller), now())
            .check_route("GET", &path)
            .allowed();
        let (req, ents) = cedar_request(caller, g.plans, &path);
        let theirs =
            authorizer.is_authorized(&req, cedar, &ents).decision() == CedarDecision::Allow;
        assert_eq!(
            ours, theirs,
            "engines disagree on {path} for plan p{} admin={} seats={} trial={}",
            caller.plan, caller.admin, caller.seats, caller.trial
        );
        if ours { allowed += 1 } else { denied += 1 }
    }
    assert!(
        allowed > 100 && denied > 100,
        "the sample exercises both answers ({allowed} allowed, {denied} denied)"
    );
}

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for plans in [3usize, 30, 300] {
        for routes in [10usize, 100, 1_000, 10_000] {
            let g = generate(routes, plans);
            let policy = Policy::from_yaml(&g.yaml).expect("generated policy loads");
            let at = now();
            let inputs: Vec<(tiergate::Entitlements, String)> = sample(&g, 64)
                .into_iter()
                .map(|(c, p)| (policy.entitlements(&claims_of(c), at), p))
                .collect();
            let mut k = 0usize;
            group.bench_function(
                BenchmarkId::new(format!("tiergate/{plans}_plans"), routes),
                |b| {
                    b.iter(|| {
                        let (ent, path) = &inputs[k & 63];
                        k = k.wrapping_add(1);
                        black_box(ent.check_route("GET", black_box(path)).allowed())
                    })
                },
            );
        }
    }
    group.finish();

    let mut group = c.benchmark_group("cedar");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    for routes in [10usize, 100, 1_000, 10_000] {
        let g = generate(routes, 3);
        let policy = Policy::from_yaml(&g.yaml).unwrap();
        let cedar = PolicySet::from_str(&g.cedar).expect("generated Cedar policies parse");
        // Both engines must agree before either is timed; checked once, and only when
        // a Cedar benchmark of this size is selected.
        let mut agreed = false;
        let authorizer = Authorizer::new();
        let callers = sample(&g, 64);
        let prebuilt: Vec<(Request, Entities)> = callers
            .iter()
            .map(|(c, p)| cedar_request(*c, g.plans, p))
            .collect();
        let mut k = 0usize;
        group.bench_function(BenchmarkId::new("is_authorized", routes), |b| {
            if !agreed {
                assert_agreement(&g, &policy, &cedar);
                agreed = true;
            }
            b.iter(|| {
                let (req, ents) = &prebuilt[k & 63];
                k = k.wrapping_add(1);
                black_box(
                    authorizer
                        .is_authorized(black_box(req), &cedar, ents)
                        .decision(),
                )
            })
        });
        group.bench_function(BenchmarkId::new("build_and_authorize", routes), |b| {
            if !agreed {
                assert_agreement(&g, &policy, &cedar);
                agreed = true;
            }
            b.iter(|| {
                let (caller, path) = &callers[k & 63];
                k = k.wrapping_add(1);
                let (req, ents) = cedar_request(*caller, g.plans, path);
                black_box(authorizer.is_authorized(&req, &cedar, &ents).decision())
            })
        });
    }
    group.finish();
}

/// The same decisions in regorus (OPA's Rego, interpreted in Rust), checked to agree
/// with tiergate on 300 sampled requests first. Up to 1,000 routes: every `allow`
/// body is evaluated for every request, so 10,000 would take minutes per sample.
fn rego(c: &mut Criterion) {
    let mut group = c.benchmark_group("regorus");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    for routes in [10usize, 100, 1_000] {
        let g = generate(routes, 3);
        let policy = Policy::from_yaml(&g.yaml).unwrap();
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("tiergate.rego".to_owned(), g.rego.clone())
            .expect("generated Rego parses");
        let callers = sample(&g, 64);
        let inputs: Vec<regorus::Value> = callers
            .iter()
            .map(|(c, p)| rego_input(*c, g.plans, p))
            .collect();
        let mut agreed = false;
        let mut k = 0usize;
        group.bench_function(BenchmarkId::new("eval_rule", routes), |b| {
            if !agreed {
                let (mut allowed, mut denied) = (0, 0);
                for (caller, path) in sample(&g, 300) {
                    let ours = policy
                        .entitlements(&claims_of(caller), now())
                        .check_route("GET", &path)
                        .allowed();
                    let theirs = rego_allows(&mut engine, rego_input(caller, g.plans, &path));
                    assert_eq!(ours, theirs, "tiergate and regorus disagree on {path}");
                    if ours { allowed += 1 } else { denied += 1 }
                }
                assert!(
                    allowed > 30 && denied > 30,
                    "{allowed} allowed, {denied} denied"
                );
                agreed = true;
            }
            b.iter(|| {
                let input = inputs[k & 63].clone();
                k = k.wrapping_add(1);
                black_box(rego_allows(&mut engine, input))
            })
        });
    }
    group.finish();
}

/// The per-token step and the whole, at 1,000 routes and 3 plans: building the
/// Entitlements from parsed claims (once per token; the layer caches it), the route
/// lookup alone, and claims → Entitlements → decision together.
fn parts(c: &mut Criterion) {
    let mut group = c.benchmark_group("parts");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let g = generate(1_000, 3);
    let policy = Policy::from_yaml(&g.yaml).unwrap();
    let inputs: Vec<(Claims, String)> = sample(&g, 64)
        .into_iter()
        .map(|(c, p)| (claims_of(c), p))
        .collect();
    let at = now();
    let ents: Vec<_> = inputs
        .iter()
        .map(|(c, _)| policy.entitlements(c, at))
        .collect();
    let mut k = 0usize;
    group.bench_function("entitlements", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            black_box(policy.entitlements(black_box(&inputs[k & 63].0), at))
        })
    });
    group.bench_function("check_route", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            black_box(
                ents[k & 63]
                    .check_route("GET", black_box(&inputs[k & 63].1))
                    .allowed(),
            )
        })
    });
    group.bench_function("entitlements_and_decision", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            let (claims, path) = &inputs[k & 63];
            black_box(
                policy
                    .entitlements(black_box(claims), at)
                    .check_route("GET", black_box(path))
                    .allowed(),
            )
        })
    });
    group.bench_function("rule_for", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            black_box(
                policy
                    .rule_for("GET", black_box(&inputs[k & 63].1))
                    .is_some(),
            )
        })
    });
    group.finish();
}

fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    let g = generate(1_000, 300);
    group.bench_function("1000_routes_300_plans", |b| {
        b.iter(|| Policy::from_yaml(black_box(&g.yaml)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, engine, rego, parts, compile);
criterion_main!(benches);
