//! `tiergate explain`: how a policy decides one caller. With `--token`, the token is
//! verified by the layer's own `Verifier` (same key handling, same checks: `exp`,
//! `nbf`, `iat` with the layer's default leeway, `iss` and `aud` when given) and its
//! claims read as the layer reads them.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{Value, json};
use tiergate::claims::ReadFrom;
use tiergate::token::{Algorithm, VerifiedToken, Verifier, VerifyingKey};
use tiergate::{Claims, ClaimsMapping, Decision, Entitlements, PlanSource, Policy, Trial};

use crate::Format;
use crate::args::parse_claims;
use crate::report::print_json;

/// The flags of `tiergate explain`.
#[derive(Args)]
pub(crate) struct ExplainArgs {
    /// The policy file.
    #[arg(long)]
    policy: PathBuf,
    /// The caller's claims, as the token's claims object: '{"plan":"pro","seats":"5"}'.
    #[arg(long, required_unless_present = "token", conflicts_with = "token")]
    claims: Option<String>,
    /// An access token to verify and read the claims from (with --secret or --public-key).
    #[arg(long)]
    token: Option<String>,
    /// The HMAC secret that signed --token.
    #[arg(long, requires = "token", conflicts_with = "public_key")]
    secret: Option<String>,
    /// A PEM public key (RSA, EC or Ed25519) that verifies --token.
    #[arg(long, requires = "token")]
    public_key: Option<PathBuf>,
    /// With --token: the issuer to require (default: any).
    #[arg(long, requires = "token")]
    iss: Option<String>,
    /// With --token: the audience to require (default: any).
    #[arg(long, requires = "token")]
    aud: Option<String>,
    /// The time to decide at, RFC 3339; default: now (--token is verified at the real time).
    #[arg(long)]
    now: Option<String>,
    /// A feature to ask about instead of a request.
    #[arg(long, conflicts_with_all = ["limit", "request"])]
    feature: Option<String>,
    /// A limit to ask about instead of a request (with --used).
    #[arg(long, requires = "used", conflicts_with = "request")]
    limit: Option<String>,
    /// How many are in use, for --limit.
    #[arg(long)]
    used: Option<u64>,
    /// The request: METHOD PATH, e.g. `POST /api/reports/export`.
    #[arg(num_args = 2, value_names = ["METHOD", "PATH"])]
    request: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

pub(crate) fn run(args: ExplainArgs) -> Result<ExitCode, String> {
    let policy = match Policy::from_file(&args.policy) {
        Ok(p) => p,
        Err(e) => {
            println!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let now: DateTime<Utc> = match args.now.as_deref() {
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map_err(|e| {
                format!("--now {t:?} is not an RFC 3339 time (e.g. 2026-04-01T12:00:00Z): {e}")
            })?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let (parsed, read_from) = match (&args.claims, &args.token) {
        (Some(c), _) => (Claims::from_object(&parse_claims(c)?), None),
        // The token is checked as the layer would check it now; `--now` only moves
        // the policy's clock (to see a trial's state on another day, say).
        (None, Some(t)) => {
            let verified = verified_token(&args, t, Utc::now())?;
            let payload = Value::Object(verified.payload().clone());
            // As the layer reads it: through the policy's `claims:` section, else
            // with the verifier's own reader (where the reference layout, `preset:
            // tiergate`, says each claim was found).
            match policy.claims_mapping() {
                Some(mapping) => {
                    let (claims, from) = mapping.read_explained(&payload);
                    (claims, Some((mapping.clone(), from)))
                }
                None => {
                    let mapping = ClaimsMapping::tiergate();
                    let (_, from) = mapping.read_explained(&payload);
                    (verified.claims().clone(), Some((mapping, from)))
                }
            }
        }
        (None, None) => return Err("give --claims or --token".into()),
    };
    let ent = policy.entitlements(&parsed, now);
    let limit = args.limit.clone().zip(args.used);
    let (question, decision) = match (&args.feature, &limit, args.request.as_slice()) {
        (Some(f), None, []) => (Question::Feature(f.clone()), ent.check(f)),
        (None, Some((l, used)), []) => (
            Question::Limit(l.clone(), *used),
            ent.within_limit(l, *used),
        ),
        (None, None, [method, path]) => (
            Question::Request(format!("{method} {path}")),
            ent.check_route(method, path),
        ),
        _ => {
            return Err(
                "ask one question: METHOD PATH, --feature NAME, or --limit NAME --used N".into(),
            );
        }
    };
    match args.format {
        Format::Json => {
            let mut out = serde_json::to_value(decision).map_err(|e| e.to_string())?;
            out["question"] = json!(question.to_string());
            out["now"] = json!(now.to_rfc3339());
            out["entitlements"] = serde_json::to_value(ent.summary()).map_err(|e| e.to_string())?;
            if let Some((mapping, from)) = &read_from {
                out["claims_mapping"] = json!(mapping.to_string());
                out["read_from"] = from
                    .iter()
                    .map(|r| json!({ "claim": r.claim, "pointer": r.pointer, "raw": r.raw }))
                    .collect();
            }
            print_json(&out);
        }
        Format::Text | Format::Markdown => {
            if let Some((mapping, from)) = &read_from {
                print!("{}", read_from_text(mapping, from));
            }
            print!(
                "{}",
                explain_text(&policy, &parsed, &ent, &decision, &question, now)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Verifies `token` as the layer would at `now` (with the layer's `Verifier`: key
/// bound to its algorithm, `exp` required, `nbf`/`iat` with the default 30 s leeway,
/// `iss`/`aud` when given).
fn verified_token(
    args: &ExplainArgs,
    token: &str,
    now: DateTime<Utc>,
) -> Result<VerifiedToken, String> {
    let keys = match (&args.secret, &args.public_key) {
        (Some(secret), None) => [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
            .into_iter()
            .map(|alg| VerifyingKey::hmac(alg, secret))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--secret: {e}"))?,
        (None, Some(path)) => {
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            VerifyingKey::from_pem_any_algorithm(&pem).map_err(|_| {
                format!(
                    "{} is not an RSA, EC or Ed25519 public key in PEM",
                    path.display()
                )
            })?
        }
        _ => return Err("--token needs --secret or --public-key to verify it".into()),
    };
    let mut builder = Verifier::builder().token_cache(None);
    for key in keys {
        builder = builder.key(key);
    }
    builder = match &args.iss {
        Some(iss) => builder.issuer(iss),
        None => builder.allow_any_issuer(),
    };
    builder = match &args.aud {
        Some(aud) => builder.audience(aud),
        None => builder.allow_any_audience(),
    };
    let verifier = builder.build().map_err(|e| e.to_string())?;
    let verified = verifier
        .verify(token.trim(), now)
        .map_err(|e| format!("the token does not verify: {e}"))?;
    Ok(verified)
}

/// The claims mapping in use, then where each claim was found in the token: the
/// pointer and the raw value there.
fn read_from_text(mapping: &ClaimsMapping, from: &[ReadFrom]) -> String {
    let mut out = String::from("claims mapping\n");
    for line in mapping.to_string().lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out.push_str("read from the token\n");
    if from.is_empty() {
        out.push_str("  (no claim found)\n");
    }
    for r in from {
        out.push_str(&format!("  {:<11}{} = {}\n", r.claim, r.pointer, r.raw));
    }
    out
}

/// What `explain` was asked.
enum Question {
    Request(String),
    Feature(String),
    Limit(String, u64),
}

impl std::fmt::Display for Question {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Question::Request(r) => f.write_str(r),
            Question::Feature(name) => write!(f, "feature {name}"),
            Question::Limit(name, used) => write!(f, "limit {name} with {used} in use"),
        }
    }
}

fn explain_text(
    policy: &Policy,
    claims: &Claims,
    ent: &Entitlements,
    d: &Decision<'_>,
    question: &Question,
    now: DateTime<Utc>,
) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<11}{value}\n"));
    line(
        "policy",
        format!("{} (revision {})", policy.name(), policy.revision()),
    );
    line("time", now.to_rfc3339());
    let why = match ent.plan_source() {
        PlanSource::Claim => "from the plan claim".to_owned(),
        PlanSource::Default => "no plan claim: the default plan".to_owned(),
        PlanSource::Fallback => match claims.plan() {
            Some(p) => format!("the plan claim `{p}` is not in this policy: the default plan"),
            None => "the plan claim is malformed: the default plan".to_owned(),
        },
        PlanSource::Trial => format!(
            "an active trial adds `{}` to the claimed plan `{}`",
            ent.plan(),
            ent.claimed_plan().unwrap_or(policy.default_plan())
        ),
    };
    line("plan", format!("{} ({why})", ent.plan()));
    line(
        "trial",
        match ent.trial() {
            Trial::None => "none".to_owned(),
            Trial::Active { ends, days_left } => format!(
                "active, {days_left} day(s) left (ends {})",
                ends.to_rfc3339()
            ),
            Trial::Expired { ended } => format!("expired on {}", ended.to_rfc3339()),
        },
    );
    let roles: Vec<&str> = ent.roles().collect();
    line(
        "roles",
        if roles.is_empty() {
            "(none)".into()
        } else {
            roles.join(", ")
        },
    );
    line(
        "seats",
        ent.seats().map_or("(none)".into(), |s| s.to_string()),
    );
    let summary = ent.summary();
    line(
        "features",
        if summary.features.is_empty() {
            "(none)".into()
        } else {
            summary.features.join(", ")
        },
    );
    let limits: Vec<String> = summary
        .limits
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    line(
        "limits",
        if limits.is_empty() {
            "(none)".into()
        } else {
            limits.join(", ")
        },
    );
    let notes: Vec<&str> = ent.notes().codes().collect();
    if !notes.is_empty() {
        line("notes", notes.join(", "));
    }
    line("question", question.to_string());
    if matches!(question, Question::Request(_)) {
        line(
            "rule",
            match d.rule() {
                Some(r) => format!("{} (line {})", r.pattern(), r.line()),
                None => "(no rule matches)".to_owned(),
            },
        );
    }
    let mut verdict = format!(
        "{}: {}",
        if d.allowed() { "allow" } else { "deny" },
        d.reason()
    );
    if let Some(f) = d.feature() {
        verdict.push_str(&format!(" (feature {f})"));
    }
    if let Some(r) = d.role() {
        verdict.push_str(&format!(" (role {r})"));
    }
    if let Some((name, usage)) = d.limit() {
        verdict.push_str(&format!(
            " ({name}: {} in use of {})",
            usage.used, usage.limit
        ));
    }
    line("decision", verdict);
    if !d.allowed() {
        line(
            "upgrade_to",
            d.upgrade_to()
                .map_or("(no plan would allow it)".into(), str::to_owned),
        );
    }
    out
}
