//! Expected-output tests: each `tests/broken/NAME.yaml` must fail to load with
//! exactly the text in `tests/broken/NAME.expected` — the message a product
//! manager will see. Regenerate after an intended wording change with
//! `UPDATE_EXPECTED=1 cargo test --test broken_policies`, then review the diff.

use std::path::Path;

fn check(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let policy = dir.join(format!("{name}.yaml"));
    let expected_path = dir.join(format!("{name}.expected"));
    // Name the file relative to the crate so the output is the same on every machine.
    let source = std::fs::read_to_string(&policy).unwrap();
    let err = tiergate::Policy::from_yaml_named(&source, &format!("tests/broken/{name}.yaml"))
        .expect_err("a broken policy must not load");
    let actual = format!("{err}\n");
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
        panic!(
            "missing {}; run with UPDATE_EXPECTED=1",
            expected_path.display()
        )
    });
    assert_eq!(actual, expected, "error output for {name} changed");
}

#[test]
fn duplicate_plan_key() {
    check("duplicate_plan");
}

#[test]
fn misspelt_feature_in_a_route() {
    check("misspelt_feature_in_route");
}

#[test]
fn extends_cycle() {
    check("extends_cycle");
}

#[test]
fn unknown_top_level_key() {
    check("unknown_top_level_key");
}

#[test]
fn tab_indented_yaml() {
    check("tab_indented");
}

#[test]
fn unquoted_braces_in_a_flow_mapping() {
    check("unquoted_braces");
}

#[test]
fn many_problems_are_reported_together() {
    check("many_problems");
}

#[test]
fn a_condition_with_two_keys() {
    check("two_key_condition");
}
