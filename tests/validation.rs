//! Validation rules not covered by the expected-output files: each names the
//! line and column and says what to write.

use tiergate::{Policy, PolicyError};

/// The single diagnostic for `yaml`: (line, column, message, help).
fn only_error(yaml: &str) -> (usize, usize, String, String) {
    let err = Policy::from_yaml(yaml).expect_err("must not load");
    let d = err.diagnostics().expect("a located error");
    assert_eq!(d.items().len(), 1, "{err}");
    let i = &d.items()[0];
    (
        i.line,
        i.column,
        i.message.clone(),
        i.help.clone().unwrap_or_default(),
    )
}

#[test]
fn extending_a_higher_tier_says_to_move_it() {
    let (line, col, msg, help) =
        only_error("version: 1\nplans:\n  pro: { extends: free }\n  free: {}\n");
    assert_eq!((line, col), (3, 19));
    assert!(
        msg.contains("extends `free`, which is listed after it"),
        "{msg}"
    );
    assert!(help.contains("move `free` above `pro`"), "{help}");
}

#[test]
fn a_plan_extending_itself_is_a_cycle() {
    let (_, _, msg, _) = only_error("version: 1\nplans:\n  free: { extends: free }\n");
    assert!(msg.contains("cycle: `free` → `free`"), "{msg}");
}

#[test]
fn missing_version_and_missing_plans() {
    let (_, _, msg, help) = only_error("plans: { free: {} }\n");
    assert!(msg.contains("`version` is missing"), "{msg}");
    assert!(help.contains("version: 1"), "{help}");
    let (_, _, msg, _) = only_error("version: 1\nplans: {}\n");
    assert!(msg.contains("declares no plans"), "{msg}");
}

#[test]
fn unknown_default_and_trial_plans() {
    let err = Policy::from_yaml(
        "version: 1\nplans: { free: {} }\ndefault_plan: fre\ntrial: { plan: pro }\n",
    )
    .unwrap_err();
    let items = err.diagnostics().unwrap().items();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (items[0].line, items[0].help.as_deref()),
        (3, Some("did you mean `free`?"))
    );
    assert_eq!(items[1].line, 4);
}

#[test]
fn strict_yaml_booleans_tags_merge_keys_and_limits() {
    let (line, _, msg, help) =
        only_error("version: 1\nplans: { free: {} }\nroutes:\n  - { path: /x, public: yes }\n");
    assert_eq!(line, 4);
    assert!(msg.contains("not a boolean"), "{msg}");
    assert!(help.contains("`true` or `false`"), "{help}");

    let (_, _, _, help) = only_error("version: 1\nplans: !plans { free: {} }\n");
    assert!(help.contains("remove the `!tag`"), "{help}");

    let (_, _, msg, _) =
        only_error("version: 1\nbase: &b { features: [] }\nplans:\n  free:\n    <<: *b\n");
    assert!(
        msg.contains("unknown key `base`") || msg.contains("merge"),
        "{msg}"
    );
    let (_, _, msg, _) = only_error("version: 1\nplans:\n  free:\n    <<: { features: [] }\n");
    assert!(msg.contains("merge keys"), "{msg}");

    let (line, _, msg, help) =
        only_error("version: 1\nplans:\n  free: { limits: { projects: -1 } }\n");
    assert_eq!(line, 3);
    assert!(msg.contains("cannot be negative"), "{msg}");
    assert!(help.contains("`unlimited`"), "{help}");
    let (_, _, msg, _) = only_error("version: 1\nplans:\n  free: { limits: { projects: lots } }\n");
    assert!(msg.contains("`lots` is not a limit"), "{msg}");
}

#[test]
fn conditions_must_be_well_formed() {
    let base = "version: 1\nplans: { free: {} }\nroles: { admin: {} }\nroutes:\n";
    let (line, col, msg, help) = only_error(&format!(
        "{base}  - {{ path: /x, require: {{ rol: admin }} }}\n"
    ));
    assert_eq!((line, col), (5, 26));
    assert!(msg.contains("unknown condition `rol`"), "{msg}");
    assert_eq!(help, "did you mean `role`?");
    let (_, _, msg, _) = only_error(&format!(
        "{base}  - {{ path: /x, require: {{ all: [] }} }}\n"
    ));
    assert!(msg.contains("`all: []` has no conditions"), "{msg}");
    let (_, _, msg, help) = only_error(&format!("{base}  - {{ path: /x, require: [a, b] }}\n"));
    assert!(msg.contains("a list is not a condition"), "{msg}");
    assert!(help.contains("all: [...]"), "{help}");
    let (_, _, msg, _) = only_error(&format!(
        "{base}  - {{ path: /x, require: {{ trial: ongoing }} }}\n"
    ));
    assert!(msg.contains("`ongoing` is not allowed here"), "{msg}");
    let (_, _, msg, _) = only_error(&format!(
        "{base}  - {{ path: /x, require: {{ plan_at_least: gold }} }}\n"
    ));
    assert!(msg.contains("unknown plan `gold`"), "{msg}");
}

#[test]
fn two_rules_for_the_same_path_and_method() {
    let (line, _, msg, _) = only_error(
        "version: 1\nplans: { free: {} }\nroutes:\n  - { path: /x, methods: [GET, POST] }\n  - { path: /x, methods: [POST] }\n  - { path: /x, methods: [PUT] }\n",
    );
    assert_eq!(line, 5);
    assert!(
        msg.contains("a second rule for `/x` (POST); the first is on line 4"),
        "{msg}"
    );
}

#[test]
fn a_param_and_a_catch_all_at_the_same_position_conflict() {
    let (line, _, msg, help) = only_error(
        "version: 1\nplans: { free: {} }\nroutes:\n  - { path: \"/f/{*rest}\" }\n  - { path: \"/f/{id}/share\" }\n",
    );
    assert_eq!(line, 5);
    assert!(
        msg.contains("conflicts with `/f/{*rest}` on line 4"),
        "{msg}"
    );
    assert!(help.contains("not both"), "{help}");
}

#[test]
fn invalid_patterns_and_names() {
    let (_, _, msg, help) =
        only_error("version: 1\nplans: { free: {} }\nroutes:\n  - { path: \"/a/{*rest}/b\" }\n");
    assert!(msg.contains("invalid route pattern"), "{msg}");
    assert!(help.contains("{*name}"), "{help}");
    let (_, _, msg, _) = only_error("version: 1\nplans: { \"free tier\": {} }\n");
    assert!(msg.contains("not a valid plan name"), "{msg}");
}

#[test]
fn unreadable_and_oversized_files_are_errors_not_panics() {
    let err = Policy::from_file("/nonexistent/policy.yaml").unwrap_err();
    assert!(matches!(err, PolicyError::Io { .. }));
    let dir = std::env::temp_dir().join(format!("tiergate-validation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.yaml");
    std::fs::write(&big, "#".repeat(tiergate::policy::MAX_POLICY_BYTES + 1)).unwrap();
    let err = Policy::from_file(&big).unwrap_err();
    assert!(matches!(err, PolicyError::TooLarge { .. }), "{err}");
    let err = Policy::from_yaml("").unwrap_err();
    assert!(err.to_string().contains("the file is empty"), "{err}");
}

#[test]
fn a_plan_cannot_lower_a_limit_it_inherits() {
    let (line, col, msg, help) = only_error(
        "version: 1\nplans:\n  starter: { limits: { projects: 10 } }\n  pro: { extends: starter, limits: { projects: 5 } }\n",
    );
    assert_eq!((line, col), (4, 48));
    assert!(
        msg.contains("plan `pro` sets `projects: 5`, less than the 10 it gets from `starter`"),
        "{msg}"
    );
    assert!(help.contains("raise it to 10"), "{help}");
    Policy::from_yaml("version: 1\nplans:\n  a: { limits: { n: unlimited } }\n  b: { extends: a, limits: { n: unlimited } }\n").unwrap();
}
