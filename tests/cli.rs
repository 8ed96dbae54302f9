//! The `tiergate` binary, run as a user would: expected output for each command
//! (regenerate after an intended change with `UPDATE_EXPECTED=1 cargo test
//! --features cli --test cli`, then review the diff).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `tiergate ARGS` in the crate root; returns (exit code, stdout).
fn tiergate(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tiergate"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn expect(name: &str, actual: &str) {
    let path = root().join("tests/cli").join(format!("{name}.expected"));
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing {}; run with UPDATE_EXPECTED=1", path.display()));
    assert_eq!(actual, expected, "output of {name} changed");
}

const BROKEN: [&str; 5] = [
    "tests/broken/duplicate_plan.yaml",
    "tests/broken/misspelt_feature_in_route.yaml",
    "tests/broken/extends_cycle.yaml",
    "tests/broken/unknown_top_level_key.yaml",
    "tests/broken/tab_indented.yaml",
];

#[test]
fn check_prints_every_problem_with_a_code_frame_and_fails() {
    let mut args = vec!["check"];
    args.extend(BROKEN);
    let (code, out) = tiergate(&args);
    assert_eq!(code, 1);
    expect("check_broken", &out);
}

#[test]
fn check_json_gives_rows_for_ci_annotations() {
    let mut args = vec!["check", "--format", "json"];
    args.extend(BROKEN);
    let (code, out) = tiergate(&args);
    assert_eq!(code, 1);
    expect("check_broken_json", &out);
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 6, "one per problem: the tab file has two");
    for row in &rows {
        for key in ["file", "line", "column", "message", "help"] {
            assert!(row.get(key).is_some(), "{key} in {row}");
        }
    }
}

#[test]
fn check_passes_the_shipped_policies() {
    let (code, out) = tiergate(&["check", "policies/saas.yaml", "policies/grpc.yaml"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("policies/saas.yaml: ok (revision "),
        "{out}"
    );
    assert!(out.contains("policies/grpc.yaml: ok"), "{out}");
    let (code, out) = tiergate(&["check", "--format", "json", "policies/saas.yaml"]);
    assert_eq!((code, out.trim()), (0, "[]"));
}

#[test]
fn test_runs_every_case_under_policies_and_ends_with_the_count() {
    let (code, out) = tiergate(&["test"]);
    assert_eq!(code, 0, "{out}");
    let last = out.lines().last().unwrap();
    let (passed, failed) = last.split_once(" passed, ").unwrap();
    assert!(passed.parse::<u32>().unwrap() >= 46, "{last}");
    assert_eq!(failed, "0 failed");
}

#[test]
fn test_shows_a_failure_with_expected_and_actual() {
    let dir = std::env::temp_dir().join(format!("tiergate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(root().join("policies/saas.yaml"), dir.join("saas.yaml")).unwrap();
    std::fs::write(
        dir.join("saas.test.yaml"),
        "now: 2026-04-01T00:00:00Z\ncases:\n  - name: passes\n    claims: { plan: starter }\n    request: POST /api/reports/export\n    expect: allow\n  - name: wrong on purpose\n    claims: { plan: free }\n    request: POST /api/reports/export\n    expect: { decision: deny, reason: plan_required, upgrade_to: pro }\n",
    )
    .unwrap();
    let (code, out) = tiergate(&["test", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    let out = out.replace(dir.to_str().unwrap(), "DIR");
    expect("test_failure", &out);
    let (_, json) = tiergate(&["test", "--format", "json", dir.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["files"][0]["failures"][0]["name"], "wrong on purpose");
}

#[test]
fn explain_text_shows_plan_trial_rule_and_decision() {
    let (code, out) = tiergate(&[
        "explain",
        "--policy",
        "policies/saas.yaml",
        "--claims",
        r#"{"plan":"free","trial_ends":"2026-03-31","seats":"five"}"#,
        "--now",
        "2026-04-01T12:00:00Z",
        "GET",
        "/api/sso/config",
    ]);
    assert_eq!(code, 0);
    expect("explain_trial_expired", &out);
    let (_, out) = tiergate(&[
        "explain",
        "--policy",
        "policies/saas.yaml",
        "--claims",
        r#"{"plan":"free","trial_ends":"2026-04-15"}"#,
        "--now",
        "2026-04-03T00:00:00Z",
        "--limit",
        "projects",
        "--used",
        "12",
    ]);
    expect("explain_limit_in_trial", &out);
}

/// `explain --format json` for each reason code, on the shipped SaaS policy.
#[test]
fn explain_json_for_each_reason_code() {
    let cases: &[(&str, &[&str], &str, Option<&str>)] = &[
        (r#"{}"#, &["GET", "/healthz"], "public", None),
        (
            r#"{"plan":"free"}"#,
            &["GET", "/api/me"],
            "authenticated",
            None,
        ),
        (
            r#"{"plan":"starter"}"#,
            &["POST", "/api/reports/export"],
            "granted",
            None,
        ),
        (
            r#"{"plan":"starter"}"#,
            &["--limit", "projects", "--used", "9"],
            "within_limit",
            None,
        ),
        (
            r#"{"plan":"free"}"#,
            &["POST", "/api/reports/export"],
            "feature_not_in_plan",
            Some("starter"),
        ),
        (
            r#"{"plan":"enterprise","role":"member"}"#,
            &["GET", "/api/billing/x"],
            "role_required",
            None,
        ),
        (
            r#"{"plan":"pro"}"#,
            &["PUT", "/api/scim/Users/1"],
            "plan_required",
            Some("enterprise"),
        ),
        (
            r#"{"plan":"free","trial_ends":"2026-03-31"}"#,
            &["GET", "/api/sso/config"],
            "trial_expired",
            Some("pro"),
        ),
        (
            r#"{"plan":"pro"}"#,
            &["POST", "/api/trial/feedback"],
            "trial_required",
            None,
        ),
        (
            r#"{"plan":"starter","role":"admin","seats":1}"#,
            &["POST", "/api/members/invite"],
            "seats_required",
            None,
        ),
        (
            r#"{"plan":"free"}"#,
            &["--limit", "projects", "--used", "3"],
            "limit_reached",
            Some("starter"),
        ),
        (
            r#"{"plan":"pro"}"#,
            &["GET", "/nowhere"],
            "no_matching_route",
            None,
        ),
        (
            r#"{"plan":"enterprise"}"#,
            &["GET", "/api/onboarding/upgrade-offer"],
            "condition_not_met",
            None,
        ),
        (
            r#"{"plan":"pro"}"#,
            &["--feature", "reports.delete"],
            "unknown_feature",
            None,
        ),
        (
            r#"{"plan":"pro"}"#,
            &["--limit", "storage", "--used", "1"],
            "unknown_limit",
            None,
        ),
    ];
    assert_eq!(
        cases.len(),
        tiergate::Reason::ALL.len(),
        "one case per reason code"
    );
    for (claims, question, reason, upgrade) in cases {
        let mut args = vec![
            "explain",
            "--format",
            "json",
            "--policy",
            "policies/saas.yaml",
            "--claims",
            claims,
            "--now",
            "2026-04-01T12:00:00Z",
        ];
        args.extend_from_slice(question);
        let (code, out) = tiergate(&args);
        assert_eq!(code, 0, "{out}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["reason"], *reason, "{claims} {question:?}");
        assert_eq!(
            v["allowed"].as_bool(),
            Some(matches!(
                *reason,
                "public" | "authenticated" | "granted" | "within_limit"
            ))
        );
        assert_eq!(v["upgrade_to"].as_str(), *upgrade, "{claims} {question:?}");
        assert!(v["plan"].is_string() && v.get("rule").is_some());
    }
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let (code, _) = tiergate(&[
        "explain",
        "--policy",
        "policies/saas.yaml",
        "--claims",
        "not json",
        "GET",
        "/x",
    ]);
    assert_eq!(code, 2);
    let out = Command::new(env!("CARGO_BIN_EXE_tiergate"))
        .args([
            "explain",
            "--policy",
            "policies/saas.yaml",
            "--claims",
            "{}",
            "--now",
            "tomorrow",
            "GET",
            "/x",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an RFC 3339 time"));
    let (code, out) = tiergate(&[
        "explain",
        "--policy",
        "tests/broken/extends_cycle.yaml",
        "--claims",
        "{}",
        "GET",
        "/x",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("cycle"), "{out}");
    assert!(!Path::new("policies/none").exists());
}

#[test]
fn diff_between_two_versions_of_the_saas_policy() {
    // tests/diff/saas_next.yaml: reports.export moves from starter to pro; starter's
    // projects limit rises from 10 to 20.
    let (code, text) = tiergate(&["diff", "policies/saas.yaml", "tests/diff/saas_next.yaml"]);
    assert_eq!(code, 0);
    expect("diff_saas_next", &text);
    let (_, md) = tiergate(&[
        "diff",
        "--format",
        "markdown",
        "policies/saas.yaml",
        "tests/diff/saas_next.yaml",
    ]);
    expect("diff_saas_next_markdown", &md);
    let (_, json) = tiergate(&[
        "diff",
        "--format",
        "json",
        "policies/saas.yaml",
        "tests/diff/saas_next.yaml",
    ]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["downgrades"], true);
    assert_eq!(v["plans"][0]["name"], "starter");
    assert_eq!(v["plans"][0]["lost"][0], "reports.export");
    assert_eq!(v["plans"][0]["limits"][0]["old"], 10);
    assert_eq!(v["plans"][0]["limits"][0]["new"], 20);
}

#[test]
fn diff_reads_a_git_revision() {
    // The committed policy against the working copy: in a clean checkout, no change.
    let (code, out) = tiergate(&["diff", "git:HEAD:policies/grpc.yaml", "policies/grpc.yaml"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), "no change for any plan, role or route");
    let (code, _) = tiergate(&[
        "diff",
        "git:no-such-rev:policies/grpc.yaml",
        "policies/grpc.yaml",
    ]);
    assert_eq!(code, 2);
}
