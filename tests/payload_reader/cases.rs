//! Payloads whose reading could depend on serde_json's features, and the answers
//! tiergate must give for them (`answers.json`). Run by `tests/payload_reader.rs`
//! with serde_json as tiergate builds it, and by `checks/serde-features` with
//! `arbitrary_precision` and `preserve_order` on, as another crate in a user's
//! binary can turn them on for everyone: both must give the same answers.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tiergate::ClaimsLocation;
use tiergate::token::{Algorithm, Verifier};

const SECRET: &[u8] = b"a test secret that is long enough, 48 bytes long";

/// `{EXP}` in a case stands for a time an hour from now.
const CASES: &[(&str, &str)] = &[
    (
        "nested",
        r#"{"exp":{EXP},"claims":{"plan":"pro","seats":5,"trial_ends":"2026-04-15"}}"#,
    ),
    ("nested", r#"{"exp":4.1e9,"claims":{"plan":"pro"}}"#),
    ("nested", r#"{"exp":4100003600.0,"nbf":-0,"iat":0.5}"#),
    ("nested", r#"{"exp":18446744073709551615}"#),
    ("nested", r#"{"exp":1e400}"#),
    ("nested", r#"{"exp":-1e3}"#),
    ("nested", r#"{"exp":"1800000000"}"#),
    ("nested", r#"{"exp":{EXP},"nbf":1e300}"#),
    (
        "nested",
        r#"{"exp":{EXP},"claims":{"seats":5.0,"role":["a","b"]}}"#,
    ),
    (
        "nested",
        r#"{"exp":{EXP},"claims":{"seats":5e0,"trial_ends":1776211200.0}}"#,
    ),
    (
        "nested",
        r#"{"exp":{EXP},"claims":{"seats":-0,"trial_ends":1.7762112e9}}"#,
    ),
    (
        "nested",
        r#"{"exp":{EXP},"claims":{"seats":2.5,"trial_ends":99999999999999999999}}"#,
    ),
    (
        "nested",
        r#"{"exp":{EXP},"claims":{"seats":18446744073709551616,"plan":"  x "}}"#,
    ),
    (
        "nested",
        r#"{"exp":{EXP},"claims":{"plan":"a","plan":"b"}}"#,
    ),
    ("nested", r#"{"exp":{EXP},"exp":{EXP}}"#),
    ("nested", r#"{"exp":{EXP},"claims":{},"claims":{}}"#),
    (
        "nested",
        r#"{"exp":{EXP},"x":1,"x":2,"claims":{"z":[1.0,2e1],"y":{"b":1,"a":2}}}"#,
    ),
    ("nested", r#"{"exp":{EXP},"claims":[1,2]}"#),
    ("nested", r#"[1.5]"#),
    ("nested", r#"[1e400]"#),
    ("nested", r#"{"exp":{EXP},"zz":{"a":[-1e400]}}"#),
    ("nested", r#"{"exp":{EXP},"claims":{"x":[2,1e999]}}"#),
    ("nested", r#"{"exp":{EXP},"claims":1e400}"#),
    ("nested", r#"{"exp":{EXP},"claims":5}"#),
    ("top", r#"{"exp":4000000000,"plan":2.50}"#),
    ("nested", r#"{"exp":{EXP},"claims":{"seats":1e400}}"#),
    ("nested", r#"[1cla3]"#),
    ("nested", r#"{"exp":{EXP}} x"#),
    (
        "top",
        r#"{"exp":4000000000,"plan":"pro","seats":"3","sub":"u1","n":1.50}"#,
    ),
    ("top", r#"{"exp":{EXP},"seats":1,"seats":2}"#),
    ("top", r#"{"exp":4.2e9,"trial_ends":1.8e9}"#),
    (
        "ns",
        r#"{"exp":{EXP},"https://a/plan":"pro","https://a/seats":4.0,"https://a/plan2":1}"#,
    ),
    (
        "ns",
        r#"{"exp":{EXP},"https://a/role":"x","https://a/role":"y"}"#,
    ),
];

fn location(name: &str) -> ClaimsLocation {
    match name {
        "top" => ClaimsLocation::TopLevel,
        "ns" => ClaimsLocation::namespaced("https://a/"),
        _ => ClaimsLocation::default(),
    }
}

fn sign(payload: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
            .unwrap();
    format!("{message}.{signature}")
}

/// Numbers as f64, so a custom claim compares by value, not by how a build
/// writes it (`1.50` stays `1.50` with `arbitrary_precision`).
fn by_value(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.iter().map(by_value).collect()),
        Value::Object(o) => {
            let sorted: std::collections::BTreeMap<_, _> =
                o.iter().map(|(k, v)| (k.clone(), by_value(v))).collect();
            json!(sorted)
        }
        other => other.clone(),
    }
}

/// What the verifier answers for each case.
pub fn answers() -> Value {
    let now = chrono::Utc::now();
    let exp = (now.timestamp() + 3600).to_string();
    let mut out = Vec::new();
    for (loc, text) in CASES {
        let verifier = Verifier::builder()
            .hmac_secret(Algorithm::HS256, SECRET)
            .allow_any_issuer()
            .allow_any_audience()
            .claims_location(location(loc))
            .token_cache(None)
            .build()
            .unwrap();
        let payload = text.replace("{EXP}", &exp);
        let answer = match verifier.verify(&sign(&payload), now) {
            Err(e) => json!({ "refused": e.code(), "why": e.to_string() }),
            Ok(t) => {
                let c = t.claims();
                json!({
                    "plan": c.plan(),
                    "roles": c.roles().collect::<Vec<_>>(),
                    "seats": c.seats(),
                    "trial_ends": c.trial_ends().map(|d| d.timestamp()),
                    "notes": c.notes(),
                    "custom": by_value(&Value::Object(c.custom().clone())),
                    // exp relative to the case's own, so the file does not age.
                    "exp_is_the_hour": t.expires_at().timestamp().to_string() == exp,
                    "sub": t.subject(),
                })
            }
        };
        out.push(json!({ "location": loc, "payload": text, "answer": answer }));
    }
    Value::Array(out)
}

/// Compares with `answers.json` (or rewrites it with `TIERGATE_BLESS=1`).
pub fn check(answers_file: &std::path::Path) {
    let got = answers();
    if std::env::var_os("TIERGATE_BLESS").is_some() {
        std::fs::write(
            answers_file,
            serde_json::to_string_pretty(&got).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(answers_file).unwrap()).unwrap();
    let (Value::Array(got), Value::Array(want)) = (&got, &want) else {
        unreachable!()
    };
    assert_eq!(
        got.len(),
        want.len(),
        "cases and answers.json differ in number"
    );
    for (g, w) in got.iter().zip(want) {
        assert_eq!(by_value(g), by_value(w), "payload {}", g["payload"]);
    }
}
