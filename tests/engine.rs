//! The engine's rules, through the public API: inheritance, limits, trials,
//! roles, `when`, route precedence, upgrade hints, tolerant claims.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use tiergate::{Claims, Limit, Notes, PlanSource, Policy, Reason, Trial};

fn saas() -> Policy {
    Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn claims(v: serde_json::Value) -> Claims {
    Claims::from_object(&v)
}

const TIERS: &str = r#"
version: 1
plans:
  free: { features: [a], limits: { projects: 3, storage: 1 } }
  mid: { extends: free, features: [b], limits: { projects: 10 } }
  top: { extends: mid, features: [c], limits: { projects: unlimited } }
  side: { features: [d] }
features: { a: {}, b: {}, c: {}, d: {} }
routes:
  - { path: /a, require: a }
"#;

#[test]
fn plans_inherit_features_and_children_override_limits() {
    let p = Policy::from_yaml(TIERS).unwrap();
    let top: Vec<_> = p.plan_features("top").unwrap().collect();
    assert_eq!(top, ["a", "b", "c"]);
    assert_eq!(p.plan_limit("mid", "projects"), Some(Limit::Count(10)));
    assert_eq!(p.plan_limit("top", "projects"), Some(Limit::Unlimited));
    assert_eq!(
        p.plan_limit("top", "storage"),
        Some(Limit::Count(1)),
        "inherited"
    );
    assert_eq!(
        p.plan_limit("side", "projects"),
        Some(Limit::Count(0)),
        "never set: zero"
    );
    assert_eq!(p.plan_limit("side", "nope"), None);
    // A plan that extends nothing does not inherit from the plan before it.
    assert_eq!(p.plan_features("side").unwrap().collect::<Vec<_>>(), ["d"]);
}

#[test]
fn within_limit_means_room_for_one_more() {
    let p = Policy::from_yaml(TIERS).unwrap();
    let ent = p.entitlements(&claims(json!({ "plan": "free" })), Utc::now());
    assert_eq!(ent.limit("projects"), Some(Limit::Count(3)));
    assert!(ent.within_limit("projects", 2).allowed());
    let d = ent.within_limit("projects", 3);
    assert_eq!(
        (d.allowed(), d.reason(), d.upgrade_to()),
        (false, Reason::LimitReached, Some("mid"))
    );
    let d = ent.within_limit("projects", 10);
    assert_eq!(d.upgrade_to(), Some("top"), "mid has only 10");
    let (name, usage) = d.limit().unwrap();
    assert_eq!(
        (name, usage.limit, usage.used),
        ("projects", Limit::Count(3), 10)
    );
    let top = p.entitlements(&claims(json!({ "plan": "top" })), Utc::now());
    assert!(top.within_limit("projects", u64::MAX).allowed());
    let d = top.within_limit("storage", 1);
    assert_eq!((d.reason(), d.upgrade_to()), (Reason::LimitReached, None));
}

#[test]
fn trial_lifts_to_at_least_the_trial_plan_and_reports_days_left() {
    let p = saas();
    let c = claims(json!({ "plan": "free", "trial_ends": "2026-04-15" }));
    let ent = p.entitlements(&c, at("2026-04-03T00:00:00Z"));
    assert_eq!(
        (ent.plan(), ent.plan_source(), ent.claimed_plan()),
        ("pro", PlanSource::Trial, Some("free"))
    );
    assert_eq!(
        ent.trial(),
        Trial::Active {
            ends: at("2026-04-16T00:00:00Z"),
            days_left: 13
        }
    );
    let last_day = p.entitlements(&c, at("2026-04-15T18:00:00Z"));
    assert!(matches!(
        last_day.trial(),
        Trial::Active { days_left: 1, .. }
    ));
    let after = p.entitlements(&c, at("2026-04-16T00:00:00Z"));
    assert_eq!(
        after.trial(),
        Trial::Expired {
            ended: at("2026-04-16T00:00:00Z")
        }
    );
    assert_eq!(
        (after.plan(), after.plan_source()),
        ("free", PlanSource::Claim)
    );

    let enterprise = claims(json!({ "plan": "enterprise", "trial_ends": "2026-04-15" }));
    let ent = p.entitlements(&enterprise, at("2026-04-03T00:00:00Z"));
    assert_eq!(
        (ent.plan(), ent.plan_source()),
        ("enterprise", PlanSource::Claim)
    );
}

#[test]
fn unknown_and_malformed_plans_fall_back_to_the_default_and_say_so() {
    let p = saas();
    let ent = p.entitlements(&claims(json!({ "plan": "platinum" })), Utc::now());
    assert_eq!(
        (ent.plan(), ent.plan_source(), ent.claimed_plan()),
        ("free", PlanSource::Fallback, None)
    );
    assert!(ent.notes().contains(Notes::UNKNOWN_PLAN));
    let d = ent.check("reports.export");
    assert!(
        d.notes().contains(Notes::UNKNOWN_PLAN),
        "the decision carries the note"
    );

    let ent = p.entitlements(&claims(json!({ "plan": ["pro"] })), Utc::now());
    assert_eq!(ent.plan(), "free");
    assert!(ent.notes().contains(Notes::MALFORMED_PLAN));

    let ent = p.entitlements(&claims(json!({})), Utc::now());
    assert_eq!(
        (ent.plan(), ent.plan_source()),
        ("free", PlanSource::Default)
    );
    assert!(ent.notes().is_empty());
}

#[test]
fn roles_grant_features_and_unknown_roles_grant_nothing() {
    let p = saas();
    let admin = p.entitlements(
        &claims(json!({ "plan": "free", "role": "admin" })),
        Utc::now(),
    );
    assert!(admin.has("billing"));
    assert_eq!(admin.roles().collect::<Vec<_>>(), ["admin"]);
    let ghost = p.entitlements(
        &claims(json!({ "plan": "free", "role": "owner" })),
        Utc::now(),
    );
    assert!(!ghost.has("billing"));
    assert!(ghost.notes().contains(Notes::UNKNOWN_ROLE));
    let d = ghost.check("billing");
    assert_eq!(
        (d.reason(), d.role(), d.upgrade_to()),
        (Reason::RoleRequired, Some("admin"), None)
    );
}

#[test]
fn a_when_condition_applies_however_the_feature_was_granted() {
    let p = saas();
    let one_seat = p.entitlements(&claims(json!({ "plan": "pro", "seats": 1 })), Utc::now());
    assert!(!one_seat.has("members.invite"));
    let d = one_seat.check("members.invite");
    assert_eq!(
        (d.reason(), d.feature(), d.upgrade_to()),
        (Reason::SeatsRequired, Some("members.invite"), None)
    );
    let two = p.entitlements(&claims(json!({ "plan": "pro", "seats": "2" })), Utc::now());
    assert!(two.has("members.invite"));
    assert_eq!(two.seats(), Some(2));
}

#[test]
fn a_feature_without_a_when_upgrades_to_the_lowest_plan_above_that_has_it() {
    let p = saas();
    let ent = p.entitlements(&claims(json!({ "plan": "free" })), Utc::now());
    assert_eq!(ent.check("reports.export").upgrade_to(), Some("starter"));
    assert_eq!(ent.check("sso").upgrade_to(), Some("pro"));
    assert_eq!(ent.check("scim").upgrade_to(), Some("enterprise"));
    assert_eq!(ent.check("nope").reason(), Reason::UnknownFeature);
    // With seats too few, the invite is not fixed by any plan.
    assert_eq!(ent.check("members.invite").upgrade_to(), None);
    let seated = p.entitlements(&claims(json!({ "plan": "free", "seats": 3 })), Utc::now());
    assert_eq!(seated.check("members.invite").upgrade_to(), Some("starter"));
}

#[test]
fn routes_most_specific_wins_and_get_covers_head() {
    let p = Policy::from_yaml(
        r#"
version: 1
plans: { free: { features: [x] }, pro: { extends: free, features: [y] } }
features: { x: {}, y: {} }
routes:
  - { path: "/files/{*rest}", require: x }
  - { path: /files/special/share, public: true }
  - { path: "/docs/{id}/share", require: y }
  - { path: /docs/new/share, require: x }
  - { path: /r, methods: [GET], require: x }
unmatched: authenticated
"#,
    )
    .unwrap();
    let ent = p.entitlements(&claims(json!({ "plan": "free" })), Utc::now());
    let pattern = |m: &str, path: &str| {
        ent.check_route(m, path)
            .rule()
            .map(|r| r.pattern().to_owned())
    };
    assert_eq!(
        pattern("GET", "/files/special/share").as_deref(),
        Some("/files/special/share")
    );
    assert_eq!(
        pattern("GET", "/files/7/share").as_deref(),
        Some("/files/{*rest}")
    );
    assert_eq!(
        pattern("GET", "/docs/7/share").as_deref(),
        Some("/docs/{id}/share")
    );
    assert_eq!(
        pattern("GET", "/docs/new/share").as_deref(),
        Some("/docs/new/share")
    );
    assert_eq!(pattern("HEAD", "/r").as_deref(), Some("/r"));
    let d = ent.check_route("GET", "/docs/7/share");
    assert_eq!(
        (d.reason(), d.upgrade_to()),
        (Reason::FeatureNotInPlan, Some("pro"))
    );
    let d = ent.check_route("POST", "/r");
    assert_eq!(
        (d.allowed(), d.reason(), d.rule().is_none()),
        (true, Reason::Authenticated, true)
    );
    assert!(p.is_public("GET", "/files/special/share"));
    assert!(!p.is_public("GET", "/files/1/share"));
    assert!(!p.is_public("GET", "/docs/1/share"));
    assert_eq!(p.rule_for("GET", "/files/special/share").unwrap().line(), 7);
}

#[test]
fn compound_conditions_explain_the_first_failure_and_find_the_upgrade() {
    let p = Policy::from_yaml(
        r#"
version: 1
plans: { free: {}, pro: { features: [x] }, max: { extends: pro } }
roles: { admin: {} }
features: { x: {} }
routes:
  - { path: /all, require: { all: [{ role: admin }, x] } }
  - { path: /any, require: { any: [{ plan: [max] }, { seats: { at_least: 9 } }] } }
  - { path: /not, require: { not: { plan_at_least: pro } } }
"#,
    )
    .unwrap();
    let ent = p.entitlements(
        &claims(json!({ "plan": "free", "role": "admin" })),
        Utc::now(),
    );
    let d = ent.check_route("GET", "/all");
    assert_eq!(
        (d.reason(), d.feature(), d.upgrade_to()),
        (Reason::FeatureNotInPlan, Some("x"), Some("pro"))
    );
    let d = ent.check_route("GET", "/any");
    assert_eq!(
        (d.reason(), d.upgrade_to()),
        (Reason::PlanRequired, Some("max"))
    );
    assert!(ent.check_route("GET", "/not").allowed());
    let pro = p.entitlements(&claims(json!({ "plan": "pro" })), Utc::now());
    let d = pro.check_route("GET", "/not");
    assert_eq!(
        (d.reason(), d.upgrade_to()),
        (Reason::ConditionNotMet, None)
    );
    let d = pro.check_route("GET", "/all");
    assert_eq!(
        (d.reason(), d.role(), d.upgrade_to()),
        (Reason::RoleRequired, Some("admin"), None)
    );
}

#[test]
fn decision_and_summary_serialize_for_clients() {
    let p = saas();
    let ent = p.entitlements(
        &claims(json!({ "plan": "free", "trial_ends": "2026-04-15", "seats": "five" })),
        Utc.with_ymd_and_hms(2026, 4, 20, 0, 0, 0).unwrap(),
    );
    let d = serde_json::to_value(ent.check_route("GET", "/api/sso/config")).unwrap();
    assert_eq!(d["allowed"], json!(false));
    assert_eq!(d["reason"], json!("trial_expired"));
    assert_eq!(d["feature"], json!("sso"));
    assert_eq!(d["upgrade_to"], json!("pro"));
    assert_eq!(d["plan"], json!("free"));
    assert_eq!(d["rule"]["pattern"], json!("/api/sso/config"));
    // The line the rule is written on in the shipped file.
    let line = tiergate::EXAMPLE_POLICY
        .lines()
        .position(|l| l.contains("path: /api/sso/config"))
        .unwrap()
        + 1;
    assert_eq!(d["rule"]["line"], json!(line));
    assert_eq!(d["notes"], json!(["malformed_seats"]));
    assert_eq!(d["revision"], json!(p.revision().to_string()));

    let s = serde_json::to_value(ent.summary()).unwrap();
    assert_eq!(s["plan"], json!("free"));
    assert_eq!(s["plan_source"], json!("claim"));
    assert_eq!(
        s["trial"],
        json!({ "state": "expired", "ended": "2026-04-16T00:00:00Z" })
    );
    assert_eq!(s["features"], json!(["dashboard", "reports.view"]));
    assert_eq!(
        s["limits"],
        json!({ "api_calls_per_day": 0, "projects": 3 })
    );
    assert_eq!(s["seats"], json!(null));
}

#[test]
fn the_revision_is_the_content_hash() {
    let a = Policy::from_yaml(TIERS).unwrap();
    let b = Policy::from_yaml(TIERS).unwrap();
    let c = Policy::from_yaml(&format!("{TIERS}\n# a comment\n")).unwrap();
    assert_eq!(a.revision(), b.revision());
    assert_ne!(a.revision(), c.revision());
    assert_eq!(a.revision().to_hex().len(), 64);
    assert_eq!(a.revision().to_string().len(), 12);
}
