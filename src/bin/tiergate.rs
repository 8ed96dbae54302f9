//! `tiergate`: tools for the people who edit tier policies.
//!
//! `tiergate check` validates policy files, `tiergate test` runs their
//! `*.test.yaml` cases, `tiergate explain` shows how one caller is decided,
//! `tiergate diff` shows what a change does to customers, `tiergate token` mints a
//! development token. With the `server` feature: `serve` (the reference claims
//! server and its dashboard), `client create`, `admin create`, `keys rotate`.

use std::path::PathBuf;

#[cfg(feature = "server")]
#[path = "../cli/server_commands.rs"]
mod server_commands;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use tiergate::policy_test::{TestFileError, find_test_files, run_file};
use tiergate::{Claims, Decision, Entitlements, PlanSource, Policy, PolicyError, Trial};

#[derive(Parser)]
#[command(
    name = "tiergate",
    version,
    about = "Check, test and explain subscription-tier policies",
    long_about = "Tools for the people who edit tiergate policies (the YAML files that say what each \
plan, role, trial and seat count may do). Run `tiergate check` before committing a change and \
`tiergate test` to run the policy's test cases; `tiergate explain` shows how one caller is decided."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Readable output for a terminal.
    Text,
    /// JSON for scripts and CI annotations.
    Json,
    /// Markdown for a pull-request comment (`diff` only; others print text).
    Markdown,
}

#[derive(Subcommand)]
enum Command {
    /// Run the reference claims-issuing server (and, with --demo-addr, a gated demo app).
    #[cfg(feature = "server")]
    Serve(server_commands::ServeArgs),
    /// Manage API clients of the claims server.
    #[cfg(feature = "server")]
    #[command(subcommand)]
    Client(server_commands::ClientCommand),
    /// Manage dashboard admins of the claims server.
    #[cfg(feature = "server")]
    #[command(subcommand)]
    Admin(server_commands::AdminCommand),
    /// Manage the claims server's signing keys.
    #[cfg(feature = "server")]
    #[command(subcommand)]
    Keys(server_commands::KeysCommand),
    /// Validate policy files; print every problem with its line and a fix.
    ///
    /// Exits 0 when every file is valid, 1 otherwise.
    Check {
        /// Policy files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format; `json` prints [{file, line, column, message, help}].
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Run the cases in `*.test.yaml` files (each beside the policy it tests).
    ///
    /// Prints each failed case with the expected and actual decision, and ends with
    /// `N passed, M failed`. Exits 0 when every case passed, 1 otherwise.
    Test {
        /// Test files, or folders to search for `*.test.yaml` (default: `policies/`).
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Show what a policy change does to customers: per plan and role, features gained
    /// and lost and limits changed; per route, which plans and roles gain or lose
    /// access. Changes that take something away are flagged as downgrades.
    ///
    /// OLD and NEW are files, or `git:REV:PATH` (e.g. `git:main:policies/saas.yaml`).
    Diff {
        /// The policy before the change.
        old: String,
        /// The policy after the change.
        new: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Mint a signed development access token with the given claims, in the layout
    /// the reference server uses (header `typ: at+jwt` and `kid`; `iss`, `aud`,
    /// `sub`, `email`, `iat`, `exp`, `jti`, and the claims under `claims`).
    Token(TokenArgs),
    /// Show how a policy decides one caller: effective plan (and why), trial, roles,
    /// seats, features, limits, the matching rule and the decision.
    ///
    /// Ask about a request (`GET /api/reports/q1`), a feature (`--feature`) or a
    /// limit (`--limit NAME --used N`).
    Explain(ExplainArgs),
}

/// The flags of `tiergate token`.
#[derive(Args)]
struct TokenArgs {
    /// The subscription claims: '{"plan":"pro","role":"admin","seats":"5"}'.
    #[arg(long)]
    claims: String,
    /// An HMAC secret (at least 32 bytes) for HS256/384/512.
    #[arg(long, conflicts_with = "key", required_unless_present = "key")]
    secret: Option<String>,
    /// A PEM private key file (RSA, EC P-256/P-384 or Ed25519).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The algorithm; default HS256 with --secret, and from the key type with --key.
    #[arg(long)]
    alg: Option<String>,
    /// Lifetime, e.g. 300, 300s, 5m, 1h.
    #[arg(long, default_value = "5m")]
    ttl: String,
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    iss: String,
    #[arg(long, default_value = "tiergate-demo")]
    aud: String,
    #[arg(long, default_value = "dev-user")]
    sub: String,
    #[arg(long)]
    email: Option<String>,
    #[arg(long, default_value = "dev")]
    kid: String,
    /// `json` prints {"access_token", "token_type", "expires_in"}.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// The flags of `tiergate explain`.
#[derive(Args)]
struct ExplainArgs {
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
    /// With --token: the issuer to require (default: not checked).
    #[arg(long, requires = "token")]
    iss: Option<String>,
    /// With --token: the audience to require (default: not checked).
    #[arg(long, requires = "token")]
    aud: Option<String>,
    /// The time to decide at (RFC 3339); default: now.
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { files, format } => check(&files, format),
        Command::Test { paths, format } => test(&paths, format),
        Command::Diff { old, new, format } => diff(&old, &new, format),
        Command::Token(args) => token(args),
        Command::Explain(args) => explain(args),
        #[cfg(feature = "server")]
        Command::Serve(args) => {
            parse_ttl(&args.token_ttl).and_then(|ttl| server_commands::serve(args, ttl))
        }
        #[cfg(feature = "server")]
        Command::Client(cmd) => server_commands::client(cmd),
        #[cfg(feature = "server")]
        Command::Admin(cmd) => server_commands::admin(cmd),
        #[cfg(feature = "server")]
        Command::Keys(cmd) => server_commands::keys(cmd),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn print_json(v: &Value) {
    // Serializing a Value cannot fail.
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// A `check --format json` row: a located problem.
fn diagnostic_row(file: &std::path::Path, d: &tiergate::Diagnostic) -> Value {
    json!({ "file": file, "line": d.line, "column": d.column, "message": d.message, "help": d.help })
}

/// A row for a problem with the file as a whole (unreadable, too large).
fn file_row(file: &std::path::Path, message: String) -> Value {
    json!({ "file": file, "line": 0, "column": 0, "message": message, "help": null })
}

/// The JSON rows for one policy error: located problems, or one row for a file problem.
fn error_rows(file: &std::path::Path, err: &PolicyError) -> Vec<Value> {
    match err.diagnostics() {
        Some(d) => d.items().iter().map(|i| diagnostic_row(file, i)).collect(),
        None => vec![file_row(file, err.to_string())],
    }
}

fn check(files: &[PathBuf], format: Format) -> Result<ExitCode, String> {
    let mut rows = Vec::new();
    let mut failed = 0;
    for file in files {
        match Policy::from_file(file) {
            Ok(p) => {
                if format == Format::Text {
                    println!(
                        "{}: ok (revision {}, {} plans, {} features, {} roles)",
                        file.display(),
                        p.revision(),
                        p.plans().len(),
                        p.features().len(),
                        p.roles().len()
                    );
                }
            }
            Err(e) => {
                failed += 1;
                match format {
                    Format::Json => rows.extend(error_rows(file, &e)),
                    Format::Text | Format::Markdown => println!("{e}\n"),
                }
            }
        }
    }
    if format == Format::Json {
        print_json(&Value::Array(rows));
    } else if failed > 0 {
        println!("{failed} of {} policy files have errors", files.len());
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn test(paths: &[PathBuf], format: Format) -> Result<ExitCode, String> {
    let roots = if paths.is_empty() {
        vec![PathBuf::from("policies")]
    } else {
        paths.to_vec()
    };
    let mut files = Vec::new();
    for root in &roots {
        if root.is_dir() {
            files.extend(
                find_test_files(root)
                    .map_err(|e| format!("cannot read {}: {e}", root.display()))?,
            );
        } else {
            files.push(root.clone());
        }
    }
    if files.is_empty() {
        return Err(format!(
            "no *.test.yaml files under {}",
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let (mut passed, mut failed, mut broken) = (0, 0, 0);
    let mut json_files = Vec::new();
    for file in &files {
        match run_file(file) {
            Ok(report) => {
                passed += report.passed();
                failed += report.failed();
                match format {
                    Format::Text | Format::Markdown => {
                        print!("{}", report.failures_text());
                        println!("{}: {} passed, {} failed", file.display(), report.passed(), report.failed());
                    }
                    Format::Json => json_files.push(json!({
                        "file": file,
                        "policy": report.policy,
                        "passed": report.passed(),
                        "failed": report.failed(),
                        "failures": report.cases.iter().filter(|c| !c.passed()).map(|c| json!({
                            "name": c.name, "line": c.line, "expected": c.expected, "actual": c.actual, "mismatches": c.mismatches,
                        })).collect::<Vec<_>>(),
                        "error": null,
                    })),
                }
            }
            Err(e) => {
                broken += 1;
                match format {
                    Format::Text | Format::Markdown => println!("{e}\n"),
                    Format::Json => {
                        let errors = match &e {
                            TestFileError::Policy(p) => error_rows(file, p),
                            TestFileError::Invalid(d) => {
                                d.items().iter().map(|i| diagnostic_row(file, i)).collect()
                            }
                            _ => vec![file_row(file, e.to_string())],
                        };
                        json_files.push(json!({ "file": file, "passed": 0, "failed": 0, "failures": [], "error": errors }));
                    }
                }
            }
        }
    }
    match format {
        Format::Text | Format::Markdown => {
            if broken > 0 {
                println!("{broken} test file(s) could not run");
            }
            println!("{passed} passed, {failed} failed");
        }
        Format::Json => print_json(
            &json!({ "files": json_files, "passed": passed, "failed": failed, "errors": broken }),
        ),
    }
    Ok(if failed == 0 && broken == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

use jsonwebtoken::Algorithm;

/// The algorithms each type of key may sign or verify with; a key is bound to its
/// family, so a token's header can never switch it to another (no alg confusion).
const HMAC: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
const ED25519: &[Algorithm] = &[Algorithm::EdDSA];
const EC: &[Algorithm] = &[Algorithm::ES256, Algorithm::ES384];
const RSA: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Reads a PEM key of whichever type it is, with the algorithms it may use; the
/// constructors are jsonwebtoken's for signing keys or for verifying keys.
fn pem_key<K>(
    pem: &[u8],
    ed: fn(&[u8]) -> jsonwebtoken::errors::Result<K>,
    ec: fn(&[u8]) -> jsonwebtoken::errors::Result<K>,
    rsa: fn(&[u8]) -> jsonwebtoken::errors::Result<K>,
) -> Option<(K, &'static [Algorithm])> {
    ed(pem)
        .map(|k| (k, ED25519))
        .or_else(|_| ec(pem).map(|k| (k, EC)))
        .or_else(|_| rsa(pem).map(|k| (k, RSA)))
        .ok()
}

/// `300`, `300s`, `5m`, `1h`, `2d` → seconds.
fn parse_ttl(s: &str) -> Result<i64, String> {
    let (digits, unit) = s.trim().split_at(
        s.trim()
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(s.trim().len()),
    );
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("--ttl {s:?}: write e.g. 300, 300s, 5m or 1h"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("--ttl {s:?}: the unit is s, m, h or d")),
    };
    n.checked_mul(scale)
        .filter(|&t| t > 0)
        .ok_or_else(|| format!("--ttl {s:?} must be positive"))
}

fn token(args: TokenArgs) -> Result<ExitCode, String> {
    use jsonwebtoken::{EncodingKey, Header};
    let claims = parse_claims(&args.claims)?;
    let ttl = parse_ttl(&args.ttl)?;
    let alg: Option<Algorithm> = args
        .alg
        .as_deref()
        .map(|a| {
            a.to_ascii_uppercase().parse().map_err(|_| {
                format!("--alg {a:?} is not a JWS algorithm (HS256, RS256, ES256, EdDSA, …)")
            })
        })
        .transpose()?;
    let (key, candidates): (EncodingKey, Vec<Algorithm>) = match (
        args.secret.as_deref(),
        args.key.as_deref(),
    ) {
        (Some(s), None) => {
            if s.len() < 32 {
                return Err(format!(
                    "the secret is {} bytes; HMAC secrets must be at least 32 (the layer refuses shorter ones)",
                    s.len()
                ));
            }
            (EncodingKey::from_secret(s.as_bytes()), HMAC.to_vec())
        }
        (None, Some(path)) => {
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let (k, family) = pem_key(
                &pem,
                EncodingKey::from_ed_pem,
                EncodingKey::from_ec_pem,
                EncodingKey::from_rsa_pem,
            )
            .ok_or_else(|| {
                format!(
                    "{} is not an RSA, EC or Ed25519 private key in PEM",
                    path.display()
                )
            })?;
            (k, family.to_vec())
        }
        _ => return Err("give --secret or --key".into()),
    };
    let candidates = match alg {
        Some(a) if candidates.contains(&a) => vec![a],
        Some(a) => {
            return Err(format!(
                "--alg {a:?} does not fit this key (use one of {candidates:?})"
            ));
        }
        None => candidates,
    };
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti).map_err(|e| format!("no randomness for the token id: {e}"))?;
    let now = Utc::now().timestamp();
    let mut payload = json!({
        "iss": args.iss, "aud": args.aud, "sub": args.sub, "iat": now, "exp": now + ttl,
        "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "claims": claims,
    });
    if let Some(email) = args.email {
        payload["email"] = json!(email);
    }
    // An EC key's curve decides between ES256 and ES384: the first that signs is it.
    let mut last_error = String::new();
    for alg in candidates {
        let mut header = Header::new(alg);
        header.typ = Some("at+jwt".into());
        header.kid = Some(args.kid.clone());
        match jsonwebtoken::encode(&header, &payload, &key) {
            Ok(t) => {
                match args.format {
                    Format::Json => print_json(
                        &json!({ "access_token": t, "token_type": "Bearer", "expires_in": ttl }),
                    ),
                    Format::Text | Format::Markdown => println!("{t}"),
                }
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(format!("cannot sign: {last_error}"))
}

/// Loads a policy from a file or from `git:REV:PATH`.
fn load(spec: &str) -> Result<Policy, String> {
    let Some(rest) = spec.strip_prefix("git:") else {
        return Policy::from_file(spec).map_err(|e| e.to_string());
    };
    let Some((rev, path)) = rest.split_once(':') else {
        return Err(format!(
            "{spec:?}: write git:REV:PATH, e.g. git:main:policies/saas.yaml"
        ));
    };
    let out = std::process::Command::new("git")
        .args(["show", &format!("{rev}:{path}")])
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git show {rev}:{path}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let source = String::from_utf8(out.stdout).map_err(|_| format!("{spec}: not UTF-8"))?;
    Policy::from_yaml_named(&source, spec).map_err(|e| e.to_string())
}

fn diff(old: &str, new: &str, format: Format) -> Result<ExitCode, String> {
    let d = tiergate::diff::PolicyDiff::between(&load(old)?, &load(new)?);
    match format {
        Format::Text => print!("{}", d.to_text()),
        Format::Markdown => print!("{}", d.to_markdown()),
        Format::Json => print_json(
            &json!({ "downgrades": d.has_downgrades(), "plans": d.plans, "roles": d.roles, "routes": d.routes }),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `--claims`: a JSON object.
fn parse_claims(text: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("--claims is not JSON: {e}"))?;
    if !v.is_object() {
        return Err("--claims must be a JSON object, e.g. '{\"plan\":\"pro\"}'".into());
    }
    Ok(v)
}

/// Verifies `token` with the key and returns its claims object (read from the
/// default `claims` location). The algorithm is bound to the key's type: the
/// token's header may only choose within it.
fn verified_claims(
    token: &str,
    secret: Option<&str>,
    public_key: Option<&std::path::Path>,
    iss: Option<&str>,
    aud: Option<&str>,
) -> Result<Value, String> {
    use jsonwebtoken::{DecodingKey, Validation};
    let header = jsonwebtoken::decode_header(token.trim())
        .map_err(|e| format!("--token is not a JWT: {e}"))?;
    let (key, family): (DecodingKey, &[Algorithm]) = match (secret, public_key) {
        (Some(s), None) => (DecodingKey::from_secret(s.as_bytes()), HMAC),
        (None, Some(path)) => {
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            pem_key(
                &pem,
                DecodingKey::from_ed_pem,
                DecodingKey::from_ec_pem,
                DecodingKey::from_rsa_pem,
            )
            .ok_or_else(|| {
                format!(
                    "{} is not an RSA, EC or Ed25519 public key in PEM",
                    path.display()
                )
            })?
        }
        _ => return Err("--token needs --secret or --public-key to verify it".into()),
    };
    if !family.contains(&header.alg) {
        return Err(format!(
            "the token says {:?}, which this key cannot verify",
            header.alg
        ));
    }
    let mut validation = Validation::new(header.alg);
    match aud {
        Some(a) => validation.set_audience(&[a]),
        None => validation.validate_aud = false,
    }
    if let Some(i) = iss {
        validation.set_issuer(&[i]);
    }
    let data = jsonwebtoken::decode::<Value>(token.trim(), &key, &validation)
        .map_err(|e| format!("the token does not verify: {e}"))?;
    Ok(data
        .claims
        .get("claims")
        .cloned()
        .unwrap_or_else(|| json!({})))
}

fn explain(args: ExplainArgs) -> Result<ExitCode, String> {
    let claims_json = match (&args.claims, &args.token) {
        (Some(c), _) => parse_claims(c)?,
        (None, Some(t)) => verified_claims(
            t,
            args.secret.as_deref(),
            args.public_key.as_deref(),
            args.iss.as_deref(),
            args.aud.as_deref(),
        )?,
        (None, None) => return Err("give --claims or --token".into()),
    };
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
    let parsed = Claims::from_object(&claims_json);
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
            print_json(&out);
        }
        Format::Text | Format::Markdown => print!(
            "{}",
            explain_text(&policy, &parsed, &ent, &decision, &question, now)
        ),
    }
    Ok(ExitCode::SUCCESS)
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
