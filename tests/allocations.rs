//! Evaluation allocates nothing: a counting global allocator (this test binary only)
//! watches building Entitlements from parsed claims and every question asked of them.
//! (A caller with more than 128 declared roles would allocate once, for the role set.)

use chrono::{TimeZone, Utc};
use serde_json::json;
use tiergate::{Claims, Policy};

/// Allocations made on this thread while `f` runs. `allocation-counter` installs a
/// counting global allocator in this test binary only (it holds the `unsafe`, so this
/// crate has none).
fn allocations_in(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

#[test]
fn entitlements_and_decisions_allocate_nothing() {
    let policy = Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 4, 20, 0, 0, 0).unwrap();
    let callers = [
        json!({ "plan": "free", "trial_ends": "2026-04-15", "seats": "five" }),
        json!({ "plan": "starter", "role": ["admin", "member"], "seats": 3 }),
        json!({ "plan": "platinum", "role": "ghost" }),
        json!({ "plan": "pro", "trial_ends": "2026-05-01" }),
    ];
    let requests = [
        ("GET", "/api/reports/2026/q1"),
        ("GET", "/api/reports/export"),
        ("POST", "/api/reports/export"),
        ("POST", "/api/members/invite"),
        ("GET", "/api/sso/config"),
        ("PUT", "/api/scim/Users/1"),
        ("DELETE", "/nowhere"),
        ("GET", "/api/onboarding/upgrade-offer"),
    ];
    for c in &callers {
        let claims = Claims::from_object(c);
        let mut allowed = 0;
        let n = allocations_in(|| {
            let ent = policy.entitlements(&claims, now);
            for (m, p) in requests {
                let d = ent.check_route(m, p);
                allowed += usize::from(d.allowed());
                let _ = (d.reason(), d.upgrade_to(), d.rule(), d.feature(), d.notes());
            }
            for f in ["sso", "billing", "members.invite", "nope"] {
                allowed += usize::from(ent.has(f)) + usize::from(ent.check(f).allowed());
            }
            for l in ["projects", "api_calls_per_day", "nope"] {
                allowed += usize::from(ent.within_limit(l, 5).allowed());
                let _ = ent.limit(l);
            }
            let _ = (ent.plan(), ent.trial(), ent.seats(), ent.claimed_plan());
        });
        assert_eq!(n, 0, "{c}: {n} allocations");
        assert!(allowed > 0);
    }
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    let n = allocations_in(|| drop(std::hint::black_box(vec![1u8; 64])));
    assert!(n >= 1);
}

#[test]
fn routes_with_static_and_wildcard_siblings_allocate_nothing() {
    // A static route beside a parameter and a catch-all: the router has to remember
    // where it could backtrack to.
    let policy = Policy::from_yaml(
        "version: 1\nplans: { free: { features: [x] } }\nfeatures: { x: {} }\nroutes:\n  - { path: \"/files/{*rest}\", require: x }\n  - { path: /files/special/share, public: true }\n  - { path: \"/docs/{id}/share\", require: x }\n  - { path: /docs/new/share, require: x }\n",
    )
    .unwrap();
    let claims = Claims::from_object(&json!({ "plan": "free" }));
    let now = Utc.with_ymd_and_hms(2026, 4, 20, 0, 0, 0).unwrap();
    let ent = policy.entitlements(&claims, now);
    for path in [
        "/files/special/share",
        "/files/special/other",
        "/docs/new/share",
        "/docs/new/edit",
        "/docs/7/share",
    ] {
        let n = allocations_in(|| {
            let _ = std::hint::black_box(ent.check_route("GET", path).allowed());
        });
        assert_eq!(n, 0, "GET {path}: {n} allocations");
    }
}
