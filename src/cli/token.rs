//! `tiergate token`: mint a signed development access token in the reference
//! server's layout.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use clap::Args;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use tiergate::token::{Algorithm, algorithms_like};

use crate::Format;
use crate::args::{parse_claims, parse_ttl};
use crate::report::print_json;

/// The flags of `tiergate token`.
#[derive(Args)]
pub(crate) struct TokenArgs {
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

pub(crate) fn run(args: TokenArgs) -> Result<ExitCode, String> {
    let claims = parse_claims(&args.claims)?;
    let ttl = parse_ttl(&args.ttl)?;
    let alg: Option<Algorithm> = args
        .alg
        .as_deref()
        .map(|a| {
            Algorithm::ALL
                .into_iter()
                .find(|known| known.name().eq_ignore_ascii_case(a))
                .ok_or_else(|| {
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
            (
                EncodingKey::from_secret(s.as_bytes()),
                algorithms_like(Algorithm::HS256).to_vec(),
            )
        }
        (None, Some(path)) => {
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            // The key's type, tried in turn; it may then sign with any algorithm of
            // that type (the library's table).
            let (k, family) = EncodingKey::from_ed_pem(&pem)
                .map(|k| (k, algorithms_like(Algorithm::EdDSA)))
                .or_else(|_| {
                    EncodingKey::from_ec_pem(&pem).map(|k| (k, algorithms_like(Algorithm::ES256)))
                })
                .or_else(|_| {
                    EncodingKey::from_rsa_pem(&pem).map(|k| (k, algorithms_like(Algorithm::RS256)))
                })
                .map_err(|_| {
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
                "--alg {a} does not fit this key (use one of {})",
                candidates
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(", ")
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
        // The JWT library's own name for it, through the name both share.
        let Ok(theirs) = alg.name().parse::<jsonwebtoken::Algorithm>() else {
            last_error = format!("{alg} is not one the signing library knows");
            continue;
        };
        let mut header = Header::new(theirs);
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
