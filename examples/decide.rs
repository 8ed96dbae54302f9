//! Asks a policy one question and prints the decision as JSON.
//!
//! ```text
//! cargo run --example decide -- policies/saas.yaml '{"plan":"free"}' POST /api/reports/export
//! cargo run --example decide -- policies/saas.yaml '{"plan":"starter"}' --feature reports.export
//! cargo run --example decide -- policies/saas.yaml '{"plan":"free"}' --limit projects 3
//! ```
//!
//! The claims are the token's claims object; the time is now (set `TIERGATE_NOW`
//! to an RFC 3339 time to pin it).

use std::process::ExitCode;

use tiergate::{Claims, Policy};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(allowed) => ExitCode::from(if allowed { 0 } else { 2 }),
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str =
    "usage: decide POLICY CLAIMS_JSON (METHOD PATH | --feature NAME | --limit NAME USED)";

fn run(args: &[String]) -> Result<bool, String> {
    let [policy, claims, rest @ ..] = args else {
        return Err(USAGE.into());
    };
    let policy = Policy::from_file(policy).map_err(|e| e.to_string())?;
    let claims: serde_json::Value =
        serde_json::from_str(claims).map_err(|e| format!("CLAIMS_JSON is not JSON: {e}"))?;
    let now = match std::env::var("TIERGATE_NOW") {
        Ok(t) => chrono::DateTime::parse_from_rfc3339(&t)
            .map_err(|e| format!("TIERGATE_NOW: {e}"))?
            .with_timezone(&chrono::Utc),
        Err(_) => chrono::Utc::now(),
    };
    let ent = policy.entitlements(&Claims::from_object(&claims), now);
    let decision = match rest {
        [flag, name] if flag == "--feature" => ent.check(name),
        [flag, name, used] if flag == "--limit" => {
            let used = used
                .parse()
                .map_err(|_| format!("USED must be a whole number, not {used:?}"))?;
            ent.within_limit(name, used)
        }
        [method, path] => ent.check_route(method, path),
        _ => return Err(USAGE.into()),
    };
    let out = serde_json::json!({ "decision": decision, "entitlements": ent.summary() });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
    );
    Ok(decision.allowed())
}
