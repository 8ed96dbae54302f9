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
    let (code, out, _) = tiergate_full(args);
    (code.unwrap_or(-1), out)
}

/// Runs `tiergate ARGS` in the crate root; returns (exit code, stdout, stderr).
fn tiergate_full(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tiergate"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
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
    let (code, _, err) = tiergate_full(&[
        "explain",
        "--policy",
        "policies/saas.yaml",
        "--claims",
        "{}",
        "--now",
        "tomorrow",
        "GET",
        "/x",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not an RFC 3339 time"));
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

/// Verifies a minted token with jsonwebtoken itself and returns its payload.
fn verify(
    token: &str,
    key: jsonwebtoken::DecodingKey,
    alg: jsonwebtoken::Algorithm,
) -> (jsonwebtoken::Header, Value) {
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_audience(&["tiergate-demo"]);
    v.set_issuer(&["http://127.0.0.1:8080"]);
    let data = jsonwebtoken::decode::<Value>(token.trim(), &key, &v).unwrap();
    (data.header, data.claims)
}

#[test]
fn token_mints_the_reference_layout_with_a_secret() {
    let secret = "0123456789abcdef0123456789abcdef";
    let (code, token) = tiergate(&[
        "token",
        "--claims",
        r#"{"plan":"pro","role":"admin","seats":"5"}"#,
        "--secret",
        secret,
        "--email",
        "ada@example.com",
        "--ttl",
        "10m",
    ]);
    assert_eq!(code, 0, "{token}");
    let (header, payload) = verify(
        &token,
        jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    );
    assert_eq!(
        (header.typ.as_deref(), header.kid.as_deref()),
        (Some("at+jwt"), Some("dev"))
    );
    assert_eq!(
        payload["claims"],
        serde_json::json!({ "plan": "pro", "role": "admin", "seats": "5" })
    );
    assert_eq!(payload["email"], "ada@example.com");
    assert_eq!(payload["sub"], "dev-user");
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        600
    );
    assert_eq!(payload["jti"].as_str().unwrap().len(), 32);
    // The claims read back through tiergate give the plan they were minted with.
    let claims = tiergate::Claims::from_payload(&payload, &tiergate::ClaimsLocation::default());
    assert_eq!((claims.plan(), claims.seats()), (Some("pro"), Some(5)));
}

/// A jsonwebtoken constructor for a public key in PEM.
type PublicKeyFromPem = fn(&[u8]) -> jsonwebtoken::errors::Result<jsonwebtoken::DecodingKey>;

#[test]
fn token_signs_with_pem_keys_and_picks_the_algorithm() {
    use jsonwebtoken::{Algorithm, DecodingKey};
    let keys: [(&str, Algorithm, PublicKeyFromPem); 3] = [
        ("ed25519", Algorithm::EdDSA, DecodingKey::from_ed_pem),
        ("p256", Algorithm::ES256, DecodingKey::from_ec_pem),
        ("rsa", Algorithm::RS256, DecodingKey::from_rsa_pem),
    ];
    for (name, alg, public) in keys {
        let (code, token) = tiergate(&[
            "token",
            "--claims",
            r#"{"plan":"free"}"#,
            "--key",
            &format!("tests/keys/{name}.pem"),
        ]);
        assert_eq!(code, 0, "{name}: {token}");
        let pem = std::fs::read(root().join(format!("tests/keys/{name}.pub.pem"))).unwrap();
        let (header, payload) = verify(&token, public(&pem).unwrap(), alg);
        assert_eq!(header.alg, alg);
        assert_eq!(payload["claims"]["plan"], "free");
    }
    let (code, token) = tiergate(&[
        "token",
        "--claims",
        "{}",
        "--key",
        "tests/keys/rsa.pem",
        "--alg",
        "PS256",
    ]);
    assert_eq!(code, 0);
    let pem = std::fs::read(root().join("tests/keys/rsa.pub.pem")).unwrap();
    verify(
        &token,
        DecodingKey::from_rsa_pem(&pem).unwrap(),
        Algorithm::PS256,
    );
}

#[test]
fn token_refuses_short_secrets_and_bad_input() {
    let run = |args: &[&str]| {
        let (code, _, err) = tiergate_full(args);
        (code, err)
    };
    let (code, err) = run(&["token", "--claims", "{}", "--secret", "short"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("at least 32"), "{err}");
    let (_, err) = run(&[
        "token",
        "--claims",
        "[1]",
        "--secret",
        "0123456789abcdef0123456789abcdef",
    ]);
    assert!(err.contains("must be a JSON object"), "{err}");
    let (_, err) = run(&[
        "token",
        "--claims",
        "{}",
        "--secret",
        "0123456789abcdef0123456789abcdef",
        "--ttl",
        "5 weeks",
    ]);
    assert!(err.contains("--ttl"), "{err}");
    let (_, err) = run(&[
        "token",
        "--claims",
        "{}",
        "--key",
        "tests/keys/ed25519.pem",
        "--alg",
        "RS256",
    ]);
    assert!(err.contains("does not fit this key"), "{err}");
    let (_, err) = run(&["token", "--claims", "{}", "--key", "README.md"]);
    assert!(
        err.contains("not an RSA, EC or Ed25519 private key"),
        "{err}"
    );
}

#[test]
fn explain_reads_the_claims_from_a_verified_token() {
    let (_, token) = tiergate(&[
        "token",
        "--claims",
        r#"{"plan":"free","trial_ends":"2026-03-31"}"#,
        "--key",
        "tests/keys/ed25519.pem",
    ]);
    let token = token.trim();
    let explain = |token: &str, key: &str, extra: &[&str]| {
        let mut args = vec![
            "explain",
            "--format",
            "json",
            "--policy",
            "policies/saas.yaml",
            "--token",
            token,
            "--public-key",
            key,
            "--now",
            "2026-04-01T12:00:00Z",
        ];
        args.extend_from_slice(extra);
        args.extend(["GET", "/api/sso/config"]);
        tiergate_full(&args)
    };
    let (code, out, _) = explain(
        token,
        "tests/keys/ed25519.pub.pem",
        &["--aud", "tiergate-demo"],
    );
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["reason"].as_str(), v["upgrade_to"].as_str()),
        (Some("trial_expired"), Some("pro"))
    );

    // A flipped signature, a key of another type, a wrong audience: refused, never explained.
    let mut tampered = token.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (code, _, err) = explain(&tampered, "tests/keys/ed25519.pub.pem", &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("does not verify"), "{err}");
    // Verified by the layer's own Verifier: the same reason codes as a request.
    let (_, _, err) = explain(token, "tests/keys/rsa.pub.pem", &[]);
    assert!(err.contains("algorithm_mismatch"), "{err}");
    let (_, _, err) = explain(
        token,
        "tests/keys/ed25519.pub.pem",
        &["--aud", "someone-else"],
    );
    assert!(err.contains("does not verify: wrong_audience"), "{err}");
}

#[test]
fn token_json_has_the_token_endpoint_shape() {
    let (code, out) = tiergate(&[
        "token",
        "--format",
        "json",
        "--claims",
        "{}",
        "--secret",
        "0123456789abcdef0123456789abcdef",
        "--ttl",
        "90s",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["token_type"].as_str(), v["expires_in"].as_i64()),
        (Some("Bearer"), Some(90))
    );
    assert_eq!(v["access_token"].as_str().unwrap().split('.').count(), 3);
}

/// `explain --token` verifies with the layer's `Verifier`, so it refuses what a
/// request would be refused for: `nbf` in the future, a required `aud` missing.
/// (It used `jsonwebtoken::decode` before, which checked neither.)
#[test]
fn explain_refuses_a_token_the_layer_would_refuse() {
    let secret = "0123456789abcdef0123456789abcdef";
    let now = chrono::Utc::now().timestamp();
    let sign = |payload: Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &payload,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let explain = |token: &str, extra: &[&str]| {
        let mut args = vec![
            "explain",
            "--policy",
            "policies/saas.yaml",
            "--token",
            token,
        ];
        args.extend(["--secret", secret]);
        args.extend_from_slice(extra);
        args.extend(["GET", "/api/dashboard"]);
        let (code, _, err) = tiergate_full(&args);
        (code, err)
    };
    let claims = serde_json::json!({ "plan": "pro" });
    let later = sign(serde_json::json!({ "nbf": now + 3600, "exp": now + 7200, "claims": claims }));
    let (code, err) = explain(&later, &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not_yet_valid"), "{err}");
    let no_aud = sign(serde_json::json!({ "exp": now + 600, "claims": claims }));
    let (code, err) = explain(&no_aud, &["--aud", "tiergate-demo"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("missing_claim"), "{err}");
    // The same token without the audience requirement is explained.
    assert_eq!(explain(&no_aud, &[]).0, Some(0));
}

/// `tiergate matrix` in each format on the shipped policy, to expected output
/// (`UPDATE_EXPECTED=1` rewrites it after an intended change).
#[test]
fn matrix_in_every_format() {
    for format in ["text", "markdown", "html", "json"] {
        let (code, out) = tiergate(&["matrix", "policies/saas.yaml", "--format", format]);
        assert_eq!(code, 0, "{format}: {out}");
        expect(&format!("matrix_{format}"), &out);
    }
    // The JSON is the library's `Matrix`, whatever the build's serde_json features.
    let (_, out) = tiergate(&["matrix", "policies/saas.yaml", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["plans"],
        serde_json::json!(["free", "starter", "pro", "enterprise"])
    );
    let invite = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "members.invite")
        .unwrap();
    assert_eq!(invite["when"], "with at least 2 seats");
    assert_eq!(
        invite["plans"],
        serde_json::json!([false, true, true, true])
    );
    // A broken policy prints its errors and exits 1, as `check` does.
    let (code, out) = tiergate(&["matrix", "tests/broken/duplicate_plan.yaml"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("error:"), "{out}");
}
