//! Runs every `*.test.yaml` under `policies/` against its policy, as `tiergate test`
//! will, and checks the shipped test files cover every reason code.

use std::collections::HashSet;
use std::path::Path;

use tiergate::Reason;
use tiergate::policy_test::{find_test_files, run_file};

fn policies_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

#[test]
fn every_policy_test_file_passes() {
    let files = find_test_files(policies_dir()).unwrap();
    assert!(
        files.len() >= 2,
        "expected the saas and grpc test files, found {files:?}"
    );
    let mut failures = String::new();
    let mut total = 0;
    for file in &files {
        let report = run_file(file).unwrap_or_else(|e| panic!("{e}"));
        assert!(!report.cases.is_empty(), "{} has no cases", file.display());
        total += report.cases.len();
        failures.push_str(&report.failures_text());
    }
    assert!(failures.is_empty(), "policy test failures:\n{failures}");
    assert!(total > 40, "only {total} cases ran");
}

#[test]
fn shipped_test_files_cover_every_reason_code() {
    // Which reasons each file's expectations name, read from the cases' outcomes.
    for name in ["saas.test.yaml", "grpc.test.yaml"] {
        let report = run_file(policies_dir().join(name)).unwrap();
        let seen: HashSet<&str> = report
            .cases
            .iter()
            .filter_map(|c| c.actual.split_whitespace().nth(1))
            .map(|r| r.trim_end_matches(','))
            .collect();
        let required: &[Reason] = if name == "saas.test.yaml" {
            &Reason::ALL
        } else {
            &[
                Reason::Public,
                Reason::Granted,
                Reason::FeatureNotInPlan,
                Reason::RoleRequired,
                Reason::PlanRequired,
                Reason::TrialExpired,
                Reason::SeatsRequired,
                Reason::LimitReached,
                Reason::NoMatchingRoute,
            ]
        };
        let missing: Vec<&str> = required
            .iter()
            .map(|r| r.code())
            .filter(|c| !seen.contains(c))
            .collect();
        assert!(missing.is_empty(), "{name} has no case for: {missing:?}");
    }
}

#[test]
fn a_wrong_expectation_fails_with_expected_and_actual() {
    let test_file = beside_saas(
        "now: 2026-04-01T00:00:00Z\ncases:\n  - name: wrong on purpose\n    claims: { plan: free }\n    request: POST /api/reports/export\n    expect: { decision: deny, reason: feature_not_in_plan, upgrade_to: pro }\n",
    );
    let report = run_file(&test_file).unwrap();
    assert_eq!((report.passed(), report.failed()), (0, 1));
    let text = report.failures_text();
    assert!(text.contains("saas.test.yaml:3 wrong on purpose"), "{text}");
    assert!(
        text.contains("expected: deny feature_not_in_plan, upgrade_to pro"),
        "{text}"
    );
    assert!(
        text.contains("upgrade_to: expected pro, got starter"),
        "{text}"
    );
}

#[test]
fn a_misspelt_feature_in_a_case_is_an_error_not_a_silent_deny() {
    let test_file = beside_saas(
        "now: 2026-04-01T00:00:00Z\ncases:\n  - name: typo\n    feature: reports.exprot\n    expect: deny\n",
    );
    let err = run_file(&test_file).unwrap_err().to_string();
    assert!(err.contains("saas.test.yaml:4:14"), "{err}");
    assert!(err.contains("did you mean `reports.export`?"), "{err}");
}

#[test]
fn a_trial_case_without_a_time_is_an_error() {
    let test_file = beside_saas(
        "cases:\n  - name: depends on today\n    claims: { trial_ends: 2026-04-15 }\n    feature: sso\n    expect: allow\n",
    );
    let err = run_file(&test_file).unwrap_err().to_string();
    assert!(err.contains("has a trial but no time"), "{err}");
}

/// Writes `cases` as `saas.test.yaml` beside a copy of `policies/saas.yaml` in a
/// fresh directory, and returns the test file's path.
fn beside_saas(cases: &str) -> std::path::PathBuf {
    let dir = tempdir();
    std::fs::copy(policies_dir().join("saas.yaml"), dir.join("saas.yaml")).unwrap();
    std::fs::write(dir.join("saas.test.yaml"), cases).unwrap();
    dir.join("saas.test.yaml")
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tiergate-policy-files-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
