//! `PolicyDiff`: what a policy change does to each plan, role and route.

use tiergate::Limit;
use tiergate::Policy;
use tiergate::diff::PolicyDiff;

const OLD: &str = r#"
version: 1
plans:
  free: { features: [a], limits: { seats: 5 } }
  team: { extends: free, features: [b], limits: { seats: 50 } }
  legacy: { features: [a] }
roles:
  admin: { features: [c] }
features: { a: {}, b: {}, c: {} }
routes:
  - { path: /a, require: a }
  - { path: /b, require: b }
  - { path: /c, require: c }
  - { path: /gone, require: a }
"#;

const NEW: &str = r#"
version: 1
plans:
  free: { features: [a], limits: { seats: 3 } }
  team: { extends: free, features: [b, c], limits: { seats: 50 } }
roles:
  admin: { features: [] }
  owner: { features: [c] }
features: { a: {}, b: {}, c: {} }
routes:
  - { path: /a, require: a }
  - { path: /b, require: b }
  - { path: /c, require: c }
  - { path: /new, public: true }
"#;

#[test]
fn plans_roles_and_routes() {
    let d = PolicyDiff::between(
        &Policy::from_yaml(OLD).unwrap(),
        &Policy::from_yaml(NEW).unwrap(),
    );
    let plan = |n: &str| d.plans.iter().find(|p| p.name == n).unwrap();
    assert_eq!(plan("free").limits[0].old, Some(Limit::Count(5)));
    assert_eq!(plan("free").limits[0].new, Some(Limit::Count(3)));
    assert!(plan("free").downgrade, "a lower limit is a downgrade");
    assert_eq!(plan("team").gained, ["c"]);
    assert!(!plan("team").downgrade);
    assert_eq!(
        (plan("legacy").status, plan("legacy").downgrade),
        ("removed", true)
    );

    let role = |n: &str| d.roles.iter().find(|r| r.name == n).unwrap();
    assert_eq!(
        (role("admin").lost.as_slice(), role("admin").downgrade),
        (&["c".to_owned()][..], true)
    );
    assert_eq!(
        (role("owner").status, role("owner").downgrade),
        ("added", false)
    );

    let route = |r: &str| d.routes.iter().find(|x| x.route == r).unwrap();
    assert_eq!(route("* /c").gained, ["role owner", "team"]);
    assert_eq!(route("* /c").lost, ["role admin"]);
    assert_eq!(route("* /gone").status, "removed");
    assert_eq!(route("* /new").status, "added");
    assert_eq!(
        route("* /a").lost,
        ["legacy"],
        "a removed plan loses its routes"
    );
    assert!(
        d.routes.iter().all(|r| r.route != "* /b"),
        "unchanged routes are not listed"
    );
    assert!(d.has_downgrades());
    let md = d.to_markdown();
    assert!(md.contains("- `free`: seats 5 → 3 **⚠ downgrade**"), "{md}");
}

#[test]
fn the_same_policy_has_no_changes() {
    let p = Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap();
    let d = PolicyDiff::between(&p, &p);
    assert!(d.is_empty() && !d.has_downgrades());
    assert_eq!(d.to_text().trim(), "no change for any plan, role or route");
}
