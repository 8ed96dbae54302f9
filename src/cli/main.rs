//! `tiergate`: tools for the people who edit tier policies.
//!
//! `tiergate check` validates policy files, `tiergate test` runs their
//! `*.test.yaml` cases, `tiergate explain` shows how one caller is decided,
//! `tiergate diff` shows what a change does to customers, `tiergate matrix` shows
//! the plans side by side, `tiergate token` mints a
//! development token. With the `server` feature: `serve` (the reference claims
//! server and its dashboard), `client create`, `admin create`, `keys rotate`.
//!
//! One module per command; this file holds only the command line itself.

mod args;
mod check;
mod diff;
mod explain;
mod matrix;
mod policy_tests;
mod report;
#[cfg(feature = "server")]
mod server_commands;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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

/// How a command prints its result.
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
    Token(token::TokenArgs),
    /// Show how a policy decides one caller: effective plan (and why), trial, roles,
    /// seats, features, limits, the matching rule and the decision.
    ///
    /// Ask about a request (`GET /api/reports/q1`), a feature (`--feature`) or a
    /// limit (`--limit NAME --used N`).
    Explain(explain::ExplainArgs),
    /// Show the plans side by side: each feature (rows) on each plan (columns, in
    /// tier order), ✓ when the plan includes it (✓* when it also needs a role,
    /// seats or the like, said under the table), the limits, and what an active
    /// trial adds.
    /// Print the JSON Schema (draft 2020-12) of the policy language, for editors:
    /// save it and start a policy with
    /// `# yaml-language-server: $schema=./tiergate-policy.schema.json`.
    Schema,
    Matrix {
        /// The policy file.
        policy: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: matrix::MatrixFormat,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { files, format } => check::run(&files, format),
        Command::Test { paths, format } => policy_tests::run(&paths, format),
        Command::Diff { old, new, format } => diff::run(&old, &new, format),
        Command::Token(args) => token::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Matrix { policy, format } => matrix::run(&policy, format),
        Command::Schema => {
            report::print_json(&tiergate::policy::json_schema());
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "server")]
        Command::Serve(args) => {
            args::parse_ttl(&args.token_ttl).and_then(|ttl| server_commands::serve(args, ttl))
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
