//! One test per claims preset: a token in that identity provider's layout, signed
//! with a test key, read through the layer (over a real socket) and through
//! `tiergate explain --token`, giving the expected plan, roles, seats, trial,
//! granted features and route decisions. The policy is the shipped SaaS example
//! with a `claims:` section added, as a user would write it.

mod support;

use std::process::Command;

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use support::*;
use tiergate::token::{Algorithm, Verifier};
use tiergate::{Entitlements, Policy, TierGate};

/// What a caller should end up with.
struct Expected {
    plan: &'static str,
    roles: &'static [&'static str],
    seats: Option<u64>,
    /// `none`, `active` or `expired`.
    trial: &'static str,
    /// Features the caller has that their plan and roles alone would not give.
    granted: &'static [&'static str],
    notes: &'static [&'static str],
    /// `POST /api/reports/export` (starter and up) and `GET /api/sso/config` (pro, or
    /// a granted `sso`).
    export: u16,
    sso: u16,
}

struct Case {
    preset: &'static str,
    /// The `claims:` section's body.
    section: &'static str,
    /// The provider's own members (the registered claims are added).
    payload: Value,
    expected: Expected,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            preset: "tiergate",
            section: "{ preset: tiergate }",
            payload: json!({ "claims": {
                "plan": "starter", "role": "admin", "seats": "5", "trial_ends": "2020-01-01",
                "features": ["sso"] } }),
            expected: Expected {
                plan: "starter",
                roles: &["admin"],
                seats: Some(5),
                trial: "expired",
                granted: &["sso"],
                notes: &[],
                export: 200,
                sso: 200,
            },
        },
        Case {
            preset: "clerk",
            section: "{ preset: clerk }",
            payload: json!({ "sid": "sess_2x", "pla": "u:free,o:starter", "fea": "o:sso,u:api",
                "o": { "id": "org_2x", "rol": "admin", "slg": "acme" }, "v": 2 }),
            expected: Expected {
                plan: "starter",
                roles: &["admin"],
                seats: None,
                trial: "none",
                granted: &["sso"],
                notes: &[],
                export: 200,
                sso: 200,
            },
        },
        Case {
            preset: "auth0",
            section: r#"{ preset: auth0, namespace: "https://acme.com/" }"#,
            payload: json!({ "https://acme.com/plan": "pro", "https://acme.com/roles": ["member"],
                "https://acme.com/seats": 3, "permissions": ["read:reports"], "scope": "openid" }),
            expected: Expected {
                plan: "pro",
                roles: &["member"],
                seats: Some(3),
                trial: "none",
                granted: &[],
                notes: &[],
                export: 200,
                sso: 200,
            },
        },
        Case {
            preset: "keycloak",
            section: "{ preset: keycloak, client: my-api }",
            payload: json!({ "realm_access": { "roles": ["offline_access", "admin"] },
                "resource_access": { "my-api": { "roles": ["member"] }, "account": { "roles": ["view-profile"] } },
                "plan": "free", "preferred_username": "ada" }),
            expected: Expected {
                plan: "free",
                roles: &["admin", "member"],
                seats: None,
                trial: "none",
                granted: &[],
                notes: &["unknown_role"],
                export: 403,
                sso: 403,
            },
        },
        Case {
            preset: "cognito",
            section: "{ preset: cognito }",
            payload: json!({ "cognito:groups": ["admin"], "custom:plan": "starter",
                "custom:seats": "5", "custom:trial_ends": "2999-01-01", "custom:features": "scim, sso",
                "token_use": "id" }),
            // An active trial lifts starter to pro (the policy's trial plan).
            expected: Expected {
                plan: "pro",
                roles: &["admin"],
                seats: Some(5),
                trial: "active",
                granted: &["scim"],
                notes: &[],
                export: 200,
                sso: 200,
            },
        },
        Case {
            preset: "supabase",
            section: "{ preset: supabase }",
            payload: json!({ "role": "authenticated", "user_role": "admin",
                "app_metadata": { "provider": "email", "plan": "starter" } }),
            expected: Expected {
                plan: "starter",
                roles: &["admin"],
                seats: None,
                trial: "none",
                granted: &[],
                notes: &[],
                export: 200,
                sso: 403,
            },
        },
        Case {
            preset: "kinde",
            section: "{ preset: kinde }",
            payload: json!({ "roles": [{ "id": "0190", "key": "admin", "name": "Admin" }],
                "feature_flags": { "plan": { "t": "s", "v": "starter" },
                    "sso": { "t": "b", "v": true }, "api": { "t": "b", "v": false } } }),
            expected: Expected {
                plan: "starter",
                roles: &["admin"],
                seats: None,
                trial: "none",
                granted: &["sso"],
                notes: &[],
                export: 200,
                sso: 200,
            },
        },
        Case {
            preset: "workos",
            section: "{ preset: workos }",
            payload: json!({ "role": "member", "permissions": ["posts:read"],
                "entitlements": ["audit_log", "priority_support"], "feature_flags": ["sso"], "plan": "free" }),
            // `priority_support` is not in the policy: it grants nothing and is noted.
            expected: Expected {
                plan: "free",
                roles: &["member"],
                seats: None,
                trial: "none",
                granted: &["sso", "audit_log"],
                notes: &["unknown_feature"],
                export: 403,
                sso: 200,
            },
        },
        Case {
            preset: "entra",
            section: "{ preset: entra }",
            payload: json!({ "roles": ["Plan.pro", "Role.admin", "Feature.scim"],
                "scp": "User.Read", "tid": "72f988bf" }),
            expected: Expected {
                plan: "pro",
                roles: &["admin"],
                seats: None,
                trial: "none",
                granted: &["scim"],
                notes: &[],
                export: 200,
                sso: 200,
            },
        },
        Case {
            preset: "okta",
            section: "{ preset: okta, groups: okta_groups }",
            payload: json!({ "okta_groups": ["Everyone", "member"], "plan": "starter",
                "scp": ["openid"] }),
            expected: Expected {
                plan: "starter",
                roles: &["member"],
                seats: None,
                trial: "none",
                granted: &[],
                notes: &["unknown_role"],
                export: 200,
                sso: 403,
            },
        },
        Case {
            preset: "zitadel",
            section: "{ preset: zitadel }",
            payload: json!({ "urn:zitadel:iam:org:project:roles": {
                "plan.enterprise": { "1234": "acme.ch" }, "admin": { "1234": "acme.ch" } } }),
            // `plan.enterprise` is read as the plan and, being a project role,
            // also offered as a role the policy does not declare.
            expected: Expected {
                plan: "enterprise",
                roles: &["admin"],
                seats: None,
                trial: "none",
                granted: &[],
                notes: &["unknown_role"],
                export: 200,
                sso: 200,
            },
        },
        Case {
            preset: "firebase",
            section: "{ preset: firebase }",
            payload: json!({ "plan": "starter", "role": "admin", "admin": true,
                "firebase": { "sign_in_provider": "password" } }),
            expected: Expected {
                plan: "starter",
                roles: &["admin"],
                seats: None,
                trial: "none",
                granted: &[],
                notes: &[],
                export: 200,
                sso: 403,
            },
        },
    ]
}

/// The verifier every single-issuer test here uses: the test secret, issuer and
/// audience.
fn test_verifier() -> Verifier {
    Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()
        .unwrap()
}

fn policy_text(section: &str) -> String {
    format!("{}\nclaims: {section}\n", tiergate::EXAMPLE_POLICY)
}

fn token(payload: &Value) -> String {
    let mut p = payload.clone();
    let registered = json!({ "sub": "usr_1", "iss": ISSUER, "aud": AUDIENCE,
        "iat": now(), "exp": now() + 300 });
    for (k, v) in registered.as_object().unwrap() {
        p[k] = v.clone();
    }
    sign(Algorithm::HS256, "hmac", &p)
}

/// The features a plan and roles give without any grant, under the example policy.
fn without_grants(policy: &Policy, plan: &str, roles: &[&str], seats: Option<u64>) -> Vec<String> {
    let mut claims = json!({ "plan": plan, "roles": roles });
    if let Some(n) = seats {
        claims["seats"] = json!(n);
    }
    let ent = policy.entitlements(&tiergate::Claims::from_object(&claims), chrono::Utc::now());
    ent.summary().features
}

fn check_summary(preset: &str, policy: &Policy, summary: &Value, e: &Expected) {
    assert_eq!(summary["plan"], e.plan, "{preset}: {summary}");
    assert_eq!(summary["roles"], json!(e.roles), "{preset}: {summary}");
    assert_eq!(summary["seats"], json!(e.seats), "{preset}: {summary}");
    assert_eq!(summary["trial"]["state"], e.trial, "{preset}: {summary}");
    assert_eq!(summary["notes"], json!(e.notes), "{preset}: {summary}");
    let base = without_grants(policy, e.plan, e.roles, e.seats);
    let extra: Vec<&str> = summary["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .filter(|f| !base.iter().any(|b| b == f))
        .collect();
    let mut want: Vec<&str> = e.granted.to_vec();
    want.sort_unstable();
    let mut got = extra.clone();
    got.sort_unstable();
    assert_eq!(
        got, want,
        "{preset}: features beyond plan and roles: {summary}"
    );
}

#[tokio::test]
async fn every_preset_reads_its_providers_token_through_the_layer() {
    for case in cases() {
        let policy = Policy::from_yaml(&policy_text(case.section))
            .unwrap_or_else(|e| panic!("{}: {e}", case.preset));
        let gate = TierGate::builder()
            .policy(policy.clone())
            .verifier(test_verifier())
            .build()
            .unwrap();
        let app = Router::new()
            .route(
                "/api/me",
                get(|ent: Entitlements| async move { Json(json!(ent.summary())) }),
            )
            .route("/api/reports/export", post(|| async { "exported" }))
            .route("/api/sso/config", get(|| async { "sso" }))
            .layer(gate.layer());
        let base = format!("http://{}", serve(app).await);
        let t = token(&case.payload);
        let c = client();
        let me: Value = c
            .get(format!("{base}/api/me"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        check_summary(case.preset, &policy, &me, &case.expected);
        let export = c
            .post(format!("{base}/api/reports/export"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .status();
        let sso = c
            .get(format!("{base}/api/sso/config"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(
            (export.as_u16(), sso.as_u16()),
            (case.expected.export, case.expected.sso),
            "{}: export, sso",
            case.preset
        );
    }
}

#[test]
fn every_preset_reads_its_providers_token_through_explain() {
    let dir = std::env::temp_dir().join(format!("tiergate-idp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for case in cases() {
        let file = dir.join(format!("{}.yaml", case.preset));
        std::fs::write(&file, policy_text(case.section)).unwrap();
        let policy = Policy::from_file(&file).unwrap();
        let secret = std::str::from_utf8(SECRET).unwrap();
        let t = token(&case.payload);
        let out = Command::new(env!("CARGO_BIN_EXE_tiergate"))
            .args(["explain", "--policy"])
            .arg(&file)
            .args([
                "--token", &t, "--secret", secret, "--iss", ISSUER, "--aud", AUDIENCE,
            ])
            .args(["--format", "json", "GET", "/api/sso/config"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {stdout}{}",
            case.preset,
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_str(&stdout).unwrap();
        check_summary(case.preset, &policy, &v["entitlements"], &case.expected);
        assert_eq!(
            v["allowed"],
            json!(case.expected.sso == 200),
            "{}: {stdout}",
            case.preset
        );
        // Where each claim came from: the pointer and the raw value there.
        let from = v["read_from"].as_array().unwrap();
        let plan = from.iter().find(|r| r["claim"] == "plan").unwrap();
        let pointer = plan["pointer"].as_str().unwrap();
        assert!(pointer.starts_with('/'), "{}: {plan}", case.preset);
        assert!(
            v["claims_mapping"].as_str().unwrap().contains("plan:"),
            "{}",
            case.preset
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Users from the team's identity provider (Auth0 layout, its own key) and machine
/// tokens from the reference server (tiergate layout, Ed25519), in one layer.
#[tokio::test]
async fn two_issuers_in_one_layer_each_with_its_keys_audience_and_mapping() {
    use tiergate::Issuer;
    use tiergate::token::VerifyingKey;

    const IDP: &str = "https://acme.us.auth0.com/";
    const SERVER: &str = "https://claims.acme.test";
    let users = Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .issuer(IDP)
        .audience("my-api")
        .build()
        .unwrap();
    let machines = Verifier::builder()
        .key(
            VerifyingKey::from_pem(Algorithm::EdDSA, key_file("ed25519.pub.pem"))
                .unwrap()
                .with_kid("srv"),
        )
        .issuer(SERVER)
        .audience("machines")
        .build()
        .unwrap();
    let gate = TierGate::builder()
        .policy(Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap())
        .verifier(users.clone())
        .claims_mapping(
            tiergate::ClaimsMapping::preset("auth0", &[("namespace", "https://acme.com/")])
                .unwrap(),
        )
        // Without its own mapping an issuer would take the gate's (Auth0's) too.
        .issuer(Issuer::new(machines.clone()).claims_mapping(tiergate::ClaimsMapping::tiergate()))
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/api/me",
            get(|ent: Entitlements| async move { Json(json!(ent.summary())) }),
        )
        .layer(gate.layer());
    let base = format!("http://{}", serve(app).await);
    let me = |t: String| {
        let base = base.clone();
        async move {
            let res = client()
                .get(format!("{base}/api/me"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let exp = now() + 300;
    let user = sign(
        Algorithm::HS256,
        "hmac",
        &json!({ "iss": IDP, "aud": "my-api", "sub": "auth0|1", "exp": exp,
                 "https://acme.com/plan": "pro" }),
    );
    let machine = sign_ed25519(
        "ed25519.pem",
        "srv",
        &json!({ "iss": SERVER, "aud": "machines", "sub": "svc_1", "exp": exp,
                 "claims": { "plan": "starter" } }),
    );
    let (status, body) = me(user).await;
    assert_eq!(
        (status, body["plan"].as_str()),
        (200, Some("pro")),
        "{body}"
    );
    let (status, body) = me(machine).await;
    assert_eq!(
        (status, body["plan"].as_str()),
        (200, Some("starter")),
        "{body}"
    );
    // Each issuer's own rules: the identity provider's audience is not the server's.
    let wrong_aud = sign(
        Algorithm::HS256,
        "hmac",
        &json!({ "iss": IDP, "aud": "machines", "sub": "auth0|1", "exp": exp }),
    );
    let (status, body) = me(wrong_aud).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (401, Some("wrong_audience")),
        "{body}"
    );
    // A token that names the server but is signed with the identity provider's key is
    // checked against the server's keys only: refused, not tried with the other's.
    let forged = sign(
        Algorithm::HS256,
        "hmac",
        &json!({ "iss": SERVER, "aud": "machines", "sub": "svc_1", "exp": exp,
                 "claims": { "plan": "enterprise" } }),
    );
    let (status, body) = me(forged).await;
    assert_eq!(status, 401, "{body}");
    // An issuer nobody accepts, and no issuer at all.
    for payload in [
        json!({ "iss": "https://evil.example", "aud": "my-api", "exp": exp }),
        json!({ "aud": "my-api", "exp": exp }),
    ] {
        let (status, body) = me(sign(Algorithm::HS256, "hmac", &payload)).await;
        assert_eq!(
            (status, body["reason"].as_str()),
            (401, Some("wrong_issuer")),
            "{body}"
        );
    }
    // A gate whose token `iss` could pick two verifiers, or none, is refused at build.
    let any = Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .allow_any_issuer()
        .audience("my-api")
        .build()
        .unwrap();
    for other in [users.clone(), any] {
        let err = TierGate::builder()
            .policy(Policy::from_yaml(tiergate::EXAMPLE_POLICY).unwrap())
            .verifier(users.clone())
            .issuer(Issuer::new(other))
            .build()
            .unwrap_err();
        assert!(err.to_string().starts_with("issuers:"), "{err}");
    }
}

/// docs/identity-providers.md shows, for each preset, the `claims:` line to write
/// and what it reads; the second must be what the library prints for the first.
/// `TIERGATE_BLESS=1` rewrites the guide's blocks from the library.
#[test]
fn the_guide_shows_each_preset_as_the_library_prints_it() {
    let path = root().join("docs/identity-providers.md");
    let guide = std::fs::read_to_string(&path).unwrap();
    let blocks: Vec<&str> = guide
        .split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    let (mut checked, mut blessed) = (Vec::new(), guide.clone());
    for pair in blocks.windows(2) {
        let (section, reads) = (pair[0], pair[1]);
        let Some(line) = section.lines().find(|l| l.starts_with("claims: { preset:")) else {
            continue;
        };
        if reads.contains("preset:") {
            continue; // the guide's opening example, not a preset's section
        }
        let line = line.split(" #").next().unwrap();
        let policy = Policy::from_yaml(&format!("version: 1\nplans:\n  free: {{}}\n{line}\n"))
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        let printed = policy.claims_mapping().unwrap().to_string();
        // What is printed reads back as the same mapping.
        let again = Policy::from_yaml(&format!(
            "version: 1\nplans:\n  free: {{}}\nclaims:\n{}",
            printed
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
        ))
        .unwrap_or_else(|e| panic!("{printed}: {e}"));
        assert_eq!(again.claims_mapping(), policy.claims_mapping(), "{printed}");
        if std::env::var_os("TIERGATE_BLESS").is_some() {
            blessed = blessed.replacen(
                &format!("{section}```\n\nreads\n\n```yaml\n{reads}"),
                &format!("{section}```\n\nreads\n\n```yaml\n{printed}"),
                1,
            );
        } else {
            assert_eq!(reads, printed, "the guide's block for `{line}`");
        }
        checked.push(line.to_owned());
    }
    if std::env::var_os("TIERGATE_BLESS").is_some() {
        std::fs::write(&path, blessed).unwrap();
    }
    assert_eq!(
        checked.len(),
        tiergate::claims::PRESETS.len(),
        "{checked:#?}"
    );
}

/// A token verified (and cached) under one `claims:` section meets another after a
/// reload: its claims are read again through the new mapping, not kept from the old.
#[tokio::test]
async fn a_reload_that_changes_the_mapping_rereads_cached_tokens() {
    let dir = std::env::temp_dir().join(format!("tiergate-idp-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.yaml");
    std::fs::write(&file, policy_text("{ preset: firebase }")).unwrap();
    let store = tiergate::PolicyStore::open(&file).unwrap();
    let gate = TierGate::builder()
        .store(store.clone())
        .verifier(test_verifier())
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/api/me",
            get(|ent: Entitlements| async move { ent.plan().to_owned() }),
        )
        .layer(gate.layer());
    let base = format!("http://{}", serve(app).await);
    // Top level says starter (Firebase's layout); app_metadata says pro (Supabase's).
    let t = token(&json!({ "plan": "starter", "app_metadata": { "plan": "pro" } }));
    let plan = || async {
        client()
            .get(format!("{base}/api/me"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(plan().await, "starter");
    assert_eq!(plan().await, "starter", "from the token cache");
    std::fs::write(&file, policy_text("{ preset: supabase }")).unwrap();
    store.reload().unwrap();
    assert_eq!(
        plan().await,
        "pro",
        "the cached token read through the new mapping"
    );
    std::fs::write(&file, tiergate::EXAMPLE_POLICY).unwrap();
    store.reload().unwrap();
    // No section: the verifier's location (a nested `claims` object, absent here).
    assert_eq!(plan().await, "free");
    std::fs::remove_dir_all(&dir).ok();
}
