//! What each fuzz target checks, shared by the cargo-fuzz targets (nightly,
//! `fuzz/fuzz_targets/`) and by `tests/fuzz_corpus.rs`, which replays every saved
//! corpus input on stable in an ordinary `cargo test`. Each check asserts more than
//! "no panic" where there is something to hold the code to: the two token paths
//! agree, decisions are deterministic, the route tree matches what matchit matches,
//! an error report stays small.
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tiergate::token::{Algorithm, TokenError, VerifiedToken, Verifier, VerifyingKey};
use tiergate::{Claims, ClaimsLocation, Policy};

const SECRET: &[u8] = b"a test secret that is long enough, 48 bytes long";
const ED25519_PUB: &str = include_str!("../tests/keys/ed25519.pub.pem");
const ISSUER: &str = "https://auth.test";
const AUDIENCE: &str = "tiergate-test";

fn verifier() -> &'static Verifier {
    static V: std::sync::OnceLock<Verifier> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        Verifier::builder()
            .key(
                VerifyingKey::hmac(Algorithm::HS256, SECRET)
                    .expect("a 48-byte secret")
                    .with_kid("hmac"),
            )
            .key(
                VerifyingKey::from_pem(Algorithm::EdDSA, ED25519_PUB.as_bytes())
                    .expect("the test key")
                    .with_kid("ed"),
            )
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .token_cache(None)
            .build()
            .expect("a verifier")
    })
}

/// A verification's outcome in comparable form: the refusal's code, or every claim.
pub fn outcome(r: &Result<VerifiedToken, TokenError>) -> Result<Value, &'static str> {
    match r {
        Err(e) => Err(e.code()),
        Ok(t) => Ok(json!({
            "plan": t.claims().plan(),
            "roles": t.claims().roles().collect::<Vec<_>>(),
            "seats": t.claims().seats(),
            "trial_ends": t.claims().trial_ends().map(|d| d.timestamp()),
            "notes": t.claims().notes(),
            "custom": t.claims().custom(),
            "exp": t.expires_at().timestamp(),
            "sub": t.subject(),
            "payload": t.payload(),
        })),
    }
}

/// Both signature checks give one answer for `token`, and an accepted token's
/// claims are what its payload, parsed on its own, says they are.
fn same_on_both_paths(token: &str) {
    let now = Utc::now();
    let v = verifier();
    let verified = v.verify(token, now);
    let fast = outcome(&verified);
    let general = outcome(&v.verify_general_path(token, now));
    assert_eq!(
        fast, general,
        "the fast and the general path disagree on {token:?}"
    );
    if let Ok(t) = &verified {
        reads_as_its_parsed_payload(t, &ClaimsLocation::default());
    }
}

/// The payload reader over the token's text (one streaming pass) and over the
/// payload parsed into a `serde_json::Value` (`Claims::from_payload`) read the
/// same claims: the same reader fed by two different parsers.
pub fn reads_as_its_parsed_payload(t: &VerifiedToken, location: &ClaimsLocation) {
    let parsed = Value::Object(t.payload().clone());
    assert_eq!(
        t.claims(),
        &Claims::from_payload(&parsed, location),
        "claims read from the text and from the parsed payload differ: {parsed}"
    );
    assert_eq!(t.subject(), parsed.get("sub").and_then(Value::as_str));
}

/// A raw token string → the verifier (HS256 and EdDSA keys): both paths agree.
pub fn token(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    same_on_both_paths(&text);
}

/// A correctly signed HS256 token whose payload is arbitrary bytes: the fast path and
/// the general path agree on acceptance, reason and every claim.
pub fn signed_payload(data: &[u8]) {
    let header = br#"{"alg":"HS256","kid":"hmac"}"#;
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(data)
    );
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
            .expect("HMAC signs anything");
    same_on_both_paths(&format!("{message}.{signature}"));
}

/// The clocks claims are read at: today, the epoch, just before it, and the ends of
/// what a timestamp can hold.
fn clocks() -> [DateTime<Utc>; 5] {
    [
        Utc::now(),
        DateTime::UNIX_EPOCH,
        DateTime::from_timestamp(-86_400, 0).unwrap_or_default(),
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MAX_UTC,
    ]
}

fn example_policy() -> &'static Policy {
    static P: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
    P.get_or_init(|| Policy::from_yaml(tiergate::EXAMPLE_POLICY).expect("the example policy"))
}

/// A payload (JSON when it parses, else a string) read through each claims location,
/// evaluated at each clock: no panic, and what comes out is consistent.
pub fn claims(data: &[u8]) {
    let payload: Value = serde_json::from_slice(data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into_owned()));
    let policy = example_policy();
    for location in [
        ClaimsLocation::default(),
        ClaimsLocation::TopLevel,
        ClaimsLocation::namespaced("https://acme.test/"),
    ] {
        let claims = Claims::from_payload(&payload, &location);
        for now in clocks() {
            let ent = policy.entitlements(&claims, now);
            match ent.trial() {
                tiergate::Trial::Active { ends, .. } => {
                    assert!(ends >= now, "active, yet ended at {ends}")
                }
                tiergate::Trial::Expired { ended } => {
                    assert!(ended <= now, "expired, yet not ended")
                }
                tiergate::Trial::None => {}
            }
            let a = ent.check_route("POST", "/api/reports/export");
            let b = ent.check_route("POST", "/api/reports/export");
            assert_eq!(a.reason(), b.reason());
            let _ = serde_json::to_string(&ent.summary());
        }
    }
}

/// A `claims:` section (the first line) and a token payload (the rest) →
/// the policy loads or refuses the section with an error (never a panic); a
/// mapping it accepts reads the payload the same from a parsed `Value` and, in
/// the verifier's own pass, from its JSON text (the path a cached token takes
/// after a reload), grants only
/// declared features, and prints as a section that loads back as the same mapping.
pub fn claims_mapping(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (section, payload) = text.split_once('\n').unwrap_or((&text, ""));
    if section.len() > 2_000 {
        return;
    }
    let Ok(policy) = Policy::from_yaml(&format!(
        "{}\nclaims: {section}\n",
        tiergate::EXAMPLE_POLICY
    )) else {
        return;
    };
    let Some(mapping) = policy.claims_mapping() else {
        return;
    };
    let printed = mapping.to_string();
    let again = Policy::from_yaml(&format!(
        "version: 1\nplans:\n  free: {{}}\nclaims:\n{}",
        printed
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    ))
    .unwrap_or_else(|e| panic!("the printed mapping does not load:\n{printed}\n{e}"));
    assert_eq!(again.claims_mapping(), Some(mapping), "{printed}");
    let Ok(value) = serde_json::from_str::<Value>(payload) else {
        return;
    };
    let claims = mapping.read(&value);
    if value.is_object() {
        // The text as a `Value` writes it: a payload that repeats a member the
        // verifier reads is refused by the verifier, so it never gets this far.
        let text = value.to_string();
        assert_eq!(
            mapping.read_json(text.as_bytes()),
            claims,
            "{printed}\n{text}"
        );
    }
    for now in clocks() {
        let ent = policy.entitlements(&claims, now);
        let summary = ent.summary();
        for f in &summary.features {
            assert!(policy.features().any(|d| d == f), "undeclared {f}");
        }
    }
}

/// A JWKS document → `KeySet::from_jwks`: no panic; a set it accepts never has more
/// keys than the document has entries.
pub fn jwks(data: &[u8]) {
    if let Ok((set, skipped)) = tiergate::token::KeySet::from_jwks(data) {
        let entries = serde_json::from_slice::<Value>(data)
            .ok()
            .and_then(|v| v.get("keys").and_then(Value::as_array).map(Vec::len))
            .unwrap_or(0);
        assert!(
            set.keys().len() + skipped.len() <= entries,
            "{} + {} > {entries}",
            set.keys().len(),
            skipped.len()
        );
    }
}

/// Policy bytes → parse → validate → compile → entitlements and route decisions for
/// claims and paths derived from the policy: an error report stays small, and a
/// policy that loads decides the same way twice.
pub fn policy(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let policy = match Policy::from_yaml(&text) {
        Ok(p) => p,
        Err(e) => {
            let report = e.to_string();
            assert!(
                report.len() <= 64 * 1024 + 16 * text.len(),
                "a {}-byte policy gave a {}-byte report",
                text.len(),
                report.len()
            );
            return;
        }
    };
    let plans: Vec<String> = policy.plans().map(str::to_owned).collect();
    let roles: Vec<String> = policy.roles().map(str::to_owned).collect();
    let seed = data.iter().fold(0usize, |a, b| {
        a.wrapping_mul(31).wrapping_add(usize::from(*b))
    });
    let mut paths = vec!["/".to_owned(), "/api".to_owned(), "/x/y/z".to_owned()];
    for line in text.lines() {
        if let Some(p) = line.split("path:").nth(1) {
            let p = p
                .trim()
                .trim_matches(|c| c == ',' || c == '}' || c == '"' || c == '\'')
                .trim();
            paths.push(p.replace("{*", "").replace(['{', '}'], ""));
        }
    }
    for (i, plan) in plans.iter().chain([&"nope".to_owned()]).enumerate() {
        let role = roles
            .get((seed + i) % roles.len().max(1))
            .cloned()
            .unwrap_or_default();
        let claims = Claims::from_object(&json!({
            "plan": plan, "role": role, "seats": (seed + i) % 20,
            "trial_ends": if i % 2 == 0 { "2099-01-01" } else { "2001-01-01" },
        }));
        let ent = policy.entitlements(&claims, Utc::now());
        for path in paths.iter().take(16) {
            for method in ["GET", "POST"] {
                let a = ent.check_route(method, path);
                let b = ent.check_route(method, path);
                assert_eq!(
                    (a.reason(), a.rule().map(|r| r.pattern())),
                    (b.reason(), b.rule().map(|r| r.pattern()))
                );
            }
        }
    }
}

/// Route patterns and paths derived from the bytes: tiergate's route tree picks the
/// same pattern as matchit (axum's router) for every path, or both none.
pub fn routes(data: &[u8]) {
    const SEGMENTS: [&str; 8] = ["a", "b", "c", "{id}", "{other}", "{*rest}", "a.b", "x-y"];
    let mut bytes = data.iter().copied();
    let mut patterns: Vec<String> = Vec::new();
    let mut router = matchit::Router::new();
    let count = bytes.next().map_or(0, |b| usize::from(b % 8) + 1);
    for _ in 0..count {
        let len = bytes.next().map_or(0, |b| usize::from(b % 4));
        let mut pattern = String::new();
        for _ in 0..len {
            let seg = SEGMENTS[usize::from(bytes.next().unwrap_or(0)) % SEGMENTS.len()];
            pattern.push('/');
            pattern.push_str(seg);
            if seg.starts_with("{*") {
                break;
            }
        }
        if pattern.is_empty() {
            pattern.push('/');
        }
        if patterns.contains(&pattern) {
            continue;
        }
        let mut trial = router.clone();
        if trial.insert(pattern.as_str(), pattern.clone()).is_ok() {
            router = trial;
            patterns.push(pattern);
        }
    }
    if patterns.is_empty() {
        return;
    }
    let routes: String = patterns
        .iter()
        .map(|p| format!("  - {{ path: \"{p}\", public: true }}\n"))
        .collect();
    let yaml = format!(
        "version: 1\nplans:\n  free: {{}}\ndefault_plan: free\nfeatures: {{}}\nroutes:\n{routes}unmatched: deny\n"
    );
    let policy = match Policy::from_yaml(&yaml) {
        Ok(p) => p,
        // matchit took every pattern, so tiergate must too.
        Err(e) => panic!("matchit accepts {patterns:?}, tiergate refused:\n{e}"),
    };
    let ent = policy.entitlements(&Claims::from_object(&json!({})), Utc::now());
    let rest: Vec<u8> = bytes.collect();
    let mut paths = vec!["/".to_owned()];
    for chunk in rest.chunks(3) {
        let path: String = chunk
            .iter()
            .map(|b| ["/", "a", "b", "c", "a.b", "x-y", "/z", "/"][usize::from(*b) % 8])
            .collect();
        paths.push(if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        });
    }
    for path in paths.iter().take(32) {
        let theirs = router.at(path).ok().map(|m| m.value.clone());
        let ours = ent
            .check_route("GET", path)
            .rule()
            .map(|r| r.pattern().to_owned());
        assert_eq!(ours, theirs, "path {path:?} with routes {patterns:?}");
    }
}
