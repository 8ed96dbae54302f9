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

/// A file full of mistakes (the fuzzing campaign's find): 10,000 unknown feature
/// references, on separate lines and all on one 90 KB line. Every one is found, the
/// rendered message stays small (the first 50 as code frames, each line cut to a
/// window around its caret), and suggestions are bounded: before, the one-line file
/// rendered 1.35 GB and the other took 37 s. (Their time is in benches/reload.rs.)
#[test]
fn a_policy_with_ten_thousand_unknown_names_is_reported_briefly() {
    for one_line in [false, true] {
        let refs: Vec<String> = (0..10_000)
            .map(|i| format!("unknown_feature_{i:05}"))
            .collect();
        let features = if one_line {
            format!("[{}]", refs.join(", "))
        } else {
            format!(
                "\n{}",
                refs.iter()
                    .map(|r| format!("      - {r}\n"))
                    .collect::<String>()
            )
        };
        let declared: String = (0..2_000)
            .map(|i| format!("  declared_feature_{i:05}: {{}}\n"))
            .collect();
        let yaml =
            format!("version: 1\nplans:\n  free:\n    features: {features}\nfeatures:\n{declared}");
        let err = tiergate::Policy::from_yaml_named(&yaml, "many.yaml").unwrap_err();
        let diags = err.diagnostics().unwrap();
        assert_eq!(diags.items().len(), 10_000, "every problem is found");
        let text = err.to_string();
        assert!(text.len() < 64 * 1024, "{} bytes rendered", text.len());
        assert!(
            text.contains("… and 9950 more"),
            "{}",
            &text[text.len() - 300..]
        );
        assert!(text.contains("unknown_feature_00000"));
    }
}

#[test]
fn claims_section_mistakes_each_get_a_located_fix() {
    check("claims_section");
}

#[test]
fn a_parameter_the_preset_does_not_take() {
    check("claims_preset_parameters");
}

#[test]
fn a_preset_without_its_parameter() {
    check("claims_missing_parameter");
}
