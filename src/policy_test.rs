//! Policy tests: `NAME.test.yaml` beside `NAME.yaml`, with cases a product team
//! can read — claims, a time, a request (or a feature, or a limit), and the
//! decision expected.
//!
//! ```yaml
//! now: 2026-04-01T12:00:00Z          # default time for every case
//! cases:
//!   - name: free users cannot export
//!     claims: { plan: free }
//!     request: POST /api/reports/export
//!     expect: { decision: deny, reason: feature_not_in_plan, upgrade_to: starter }
//!   - name: starter has ten projects
//!     claims: { plan: starter }
//!     limit: { name: projects, used: 9 }
//!     expect: allow
//! ```
//!
//! ```
//! let report = tiergate::policy_test::run_file("policies/saas.test.yaml").unwrap();
//! assert!(report.cases.iter().all(|c| c.passed()), "{}", report.failures_text());
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer};
use serde_saphyr::{Location, Spanned};

use crate::claims::Notes;
use crate::engine::{Decision, Policy, Reason};
use crate::policy::parse::{loc, parse_yaml};
use crate::policy::suggest::did_you_mean;
use crate::policy::{Diagnostic, Diagnostics, PolicyError};
use crate::{Claims, Entitlements};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFileDoc {
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    now: Option<Spanned<String>>,
    cases: Vec<Spanned<CaseDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseDoc {
    name: String,
    #[serde(default)]
    claims: Option<serde_json::Value>,
    #[serde(default)]
    now: Option<Spanned<String>>,
    #[serde(default)]
    request: Option<Spanned<String>>,
    #[serde(default)]
    feature: Option<Spanned<String>>,
    #[serde(default)]
    limit: Option<LimitDoc>,
    expect: Spanned<ExpectDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitDoc {
    name: Spanned<String>,
    used: u64,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    Allow,
    Deny,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ExpectDoc {
    Short(Verdict),
    Full(ExpectFull),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFull {
    decision: Verdict,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default, deserialize_with = "present")]
    upgrade_to: Option<Option<String>>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    notes: Option<Vec<String>>,
}

/// Tells `upgrade_to: null` (expect none) apart from a missing key (do not check).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Why a test file could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestFileError {
    /// The test file could not be read.
    #[error("cannot read test file {}: {source}", path.display())]
    Io {
        /// The test file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The policy under test does not load.
    #[error("{0}")]
    Policy(#[from] PolicyError),
    /// The test file itself is invalid (syntax, an unknown feature, a bad time).
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    /// The case's `name`.
    pub name: String,
    /// Its line in the test file.
    pub line: usize,
    /// What the case expected, as text.
    pub expected: String,
    /// What the policy decided, as text.
    pub actual: String,
    /// Each way the decision differs from the expectation; empty when the case passed.
    pub mismatches: Vec<String>,
}

impl CaseOutcome {
    /// Whether the decision matched the expectation.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// The results of one test file.
#[derive(Debug, Clone)]
pub struct TestReport {
    /// The test file.
    pub file: PathBuf,
    /// The policy it tested.
    pub policy: PathBuf,
    /// One outcome per case, in file order.
    pub cases: Vec<CaseOutcome>,
}

impl TestReport {
    /// How many cases passed.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed()).count()
    }

    /// How many cases failed.
    pub fn failed(&self) -> usize {
        self.cases.len().saturating_sub(self.passed())
    }

    /// Every failed case with expected and actual decisions, for a terminal.
    pub fn failures_text(&self) -> String {
        let mut out = String::new();
        for c in self.cases.iter().filter(|c| !c.passed()) {
            let _ = writeln!(out, "FAIL {}:{} {}", self.file.display(), c.line, c.name);
            let _ = writeln!(out, "  expected: {}", c.expected);
            let _ = writeln!(out, "  actual:   {}", c.actual);
            for m in &c.mismatches {
                let _ = writeln!(out, "  - {m}");
            }
        }
        out
    }
}

/// Every `*.test.yaml` under `dir` (recursively), sorted by path.
pub fn find_test_files(dir: impl AsRef<Path>) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.as_ref().to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".test.yaml"))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The policy a test file tests: its `policy:` key (relative to the test file), or
/// `NAME.yaml` beside `NAME.test.yaml`.
fn policy_path(test_file: &Path, declared: Option<&str>) -> PathBuf {
    let dir = test_file.parent().unwrap_or(Path::new("."));
    match declared {
        Some(p) => dir.join(p),
        None => {
            let name = test_file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            dir.join(format!("{}.yaml", name.trim_end_matches(".test.yaml")))
        }
    }
}

/// Runs one test file against its policy.
pub fn run_file(path: impl AsRef<Path>) -> Result<TestReport, TestFileError> {
    let path = path.as_ref();
    let source = std::fs::read_to_string(path).map_err(|source| TestFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    let name = path.display().to_string();
    let invalid = |items| TestFileError::Invalid(Diagnostics::new(&name, &source, items));
    let doc: TestFileDoc = parse_yaml(&source).map_err(invalid)?;
    let policy_file = policy_path(path, doc.policy.as_deref());
    let policy = Policy::from_file(&policy_file)?;

    let mut diags = Vec::new();
    let file_now = doc.now.as_ref().and_then(|n| parse_now(n, &mut diags));
    let mut cases = Vec::new();
    for case in &doc.cases {
        if let Some(outcome) = run_case(&policy, case, file_now, &mut diags) {
            cases.push(outcome);
        }
    }
    if !diags.is_empty() {
        return Err(invalid(diags));
    }
    Ok(TestReport {
        file: path.to_owned(),
        policy: policy_file,
        cases,
    })
}

fn error_at(
    diags: &mut Vec<Diagnostic>,
    at: &Location,
    width: usize,
    message: String,
    help: String,
) {
    let (line, column) = loc(at);
    diags.push(Diagnostic::at(line, column, width, message).help(help));
}

fn parse_now(s: &Spanned<String>, diags: &mut Vec<Diagnostic>) -> Option<DateTime<Utc>> {
    let v = s.value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    if let Some(t) = NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Some(t.and_utc());
    }
    error_at(
        diags,
        &s.referenced,
        v.chars().count(),
        format!("`{v}` is not a time"),
        "write an RFC 3339 time such as `2026-04-01T12:00:00Z`, or a date `2026-04-01` (midnight UTC)".into(),
    );
    None
}

/// What the case asks of the entitlements.
enum Question<'a> {
    Route(&'a str, &'a str),
    Feature(&'a str),
    Limit(&'a str, u64),
}

fn run_case(
    policy: &Policy,
    case: &Spanned<CaseDoc>,
    file_now: Option<DateTime<Utc>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<CaseOutcome> {
    let c = &case.value;
    let at = case.referenced;
    let expect = match &c.expect.value {
        ExpectDoc::Short(v) => ExpectFull {
            decision: *v,
            reason: None,
            upgrade_to: None,
            plan: None,
            rule: None,
            notes: None,
        },
        ExpectDoc::Full(f) => ExpectFull {
            decision: f.decision,
            reason: f.reason.clone(),
            upgrade_to: f.upgrade_to.clone(),
            plan: f.plan.clone(),
            rule: f.rule.clone(),
            notes: f.notes.clone(),
        },
    };
    let expected_reason = match expect.reason.as_deref() {
        Some(r) => match Reason::from_code(r) {
            Some(reason) => Some(reason),
            None => {
                let codes: Vec<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
                let help = did_you_mean(r, codes.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("reasons are: {}", codes.join(", ")));
                error_at(
                    diags,
                    &c.expect.referenced,
                    1,
                    format!("unknown reason `{r}`"),
                    help,
                );
                return None;
            }
        },
        None => None,
    };
    for note in expect.notes.iter().flatten() {
        if Notes::from_code(note).is_none() {
            error_at(diags, &c.expect.referenced, 1, format!("unknown note `{note}`"), "notes are: unknown_plan, malformed_plan, malformed_role, unknown_role, malformed_trial_ends, malformed_seats".into());
            return None;
        }
    }

    let question = match (&c.request, &c.feature, &c.limit) {
        (Some(r), None, None) => match r.value.split_once(' ') {
            Some((m, p))
                if !m.is_empty()
                    && m.bytes().all(|b| b.is_ascii_uppercase())
                    && p.trim_start().starts_with('/') =>
            {
                Question::Route(m, p.trim_start())
            }
            _ => {
                error_at(
                    diags,
                    &r.referenced,
                    r.value.chars().count(),
                    format!("`{}` is not a request", r.value),
                    "write the method and the path, e.g. `GET /api/reports/q1`".into(),
                );
                return None;
            }
        },
        (None, Some(f), None) => {
            if !policy.0.feature_ids.contains_key(f.value.as_str())
                && expected_reason != Some(Reason::UnknownFeature)
            {
                let help = did_you_mean(&f.value, policy.features())
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| "declare it under `features:` in the policy".into());
                error_at(
                    diags,
                    &f.referenced,
                    f.value.chars().count(),
                    format!("the policy has no feature `{}`", f.value),
                    help,
                );
                return None;
            }
            Question::Feature(&f.value)
        }
        (None, None, Some(l)) => {
            if !policy.0.limit_ids.contains_key(l.name.value.as_str())
                && expected_reason != Some(Reason::UnknownLimit)
            {
                let help = did_you_mean(&l.name.value, policy.limits())
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| "set it under a plan's `limits:` in the policy".into());
                error_at(
                    diags,
                    &l.name.referenced,
                    l.name.value.chars().count(),
                    format!("no plan sets a limit `{}`", l.name.value),
                    help,
                );
                return None;
            }
            Question::Limit(&l.name.value, l.used)
        }
        _ => {
            error_at(
                diags,
                &at,
                1,
                format!("case `{}` must ask exactly one question", c.name),
                "give exactly one of `request:`, `feature:` or `limit:`".into(),
            );
            return None;
        }
    };

    let claims_value = c
        .claims
        .clone()
        .unwrap_or(serde_json::Value::Object(Default::default()));
    let now = match (&c.now, file_now) {
        (Some(n), _) => parse_now(n, diags)?,
        (None, Some(n)) => n,
        (None, None) => {
            if claims_value.get("trial_ends").is_some() {
                error_at(diags, &at, 1, format!("case `{}` has a trial but no time", c.name), "add `now:` to the case or at the top of the file so the result does not depend on today's date".into());
                return None;
            }
            Utc::now()
        }
    };
    let claims = Claims::from_object(&claims_value);
    let ent = policy.entitlements(&claims, now);
    let decision = ask(&ent, &question);
    Some(compare(c, at, &expect, expected_reason, &decision))
}

fn ask<'e>(ent: &'e Entitlements, q: &Question<'_>) -> Decision<'e> {
    match q {
        Question::Route(m, p) => ent.check_route(m, p),
        Question::Feature(f) => ent.check(f),
        Question::Limit(l, used) => ent.within_limit(l, *used),
    }
}

fn describe(d: &Decision<'_>) -> String {
    let mut s = format!(
        "{} {}",
        if d.allowed() { "allow" } else { "deny" },
        d.reason()
    );
    if let Some(u) = d.upgrade_to() {
        let _ = write!(s, ", upgrade_to {u}");
    }
    let _ = write!(s, ", plan {}", d.plan());
    if let Some(r) = d.rule() {
        let _ = write!(s, ", rule {} (line {})", r.pattern(), r.line());
    }
    let notes: Vec<&str> = d.notes().codes().collect();
    if !notes.is_empty() {
        let _ = write!(s, ", notes [{}]", notes.join(", "));
    }
    s
}

fn compare(
    c: &CaseDoc,
    at: Location,
    e: &ExpectFull,
    reason: Option<Reason>,
    d: &Decision<'_>,
) -> CaseOutcome {
    let mut expected = String::from(if e.decision == Verdict::Allow {
        "allow"
    } else {
        "deny"
    });
    let mut mismatches = Vec::new();
    let actual_verdict = if d.allowed() {
        Verdict::Allow
    } else {
        Verdict::Deny
    };
    if actual_verdict != e.decision {
        mismatches.push(
            format!(
                "decision: expected {:?}, got {:?}",
                e.decision, actual_verdict
            )
            .to_lowercase(),
        );
    }
    if let Some(r) = reason {
        let _ = write!(expected, " {r}");
        if d.reason() != r {
            mismatches.push(format!("reason: expected {r}, got {}", d.reason()));
        }
    }
    if let Some(u) = &e.upgrade_to {
        let _ = write!(expected, ", upgrade_to {}", u.as_deref().unwrap_or("none"));
        if d.upgrade_to() != u.as_deref() {
            mismatches.push(format!(
                "upgrade_to: expected {}, got {}",
                u.as_deref().unwrap_or("none"),
                d.upgrade_to().unwrap_or("none")
            ));
        }
    }
    if let Some(p) = &e.plan {
        let _ = write!(expected, ", plan {p}");
        if d.plan() != p {
            mismatches.push(format!("plan: expected {p}, got {}", d.plan()));
        }
    }
    if let Some(r) = &e.rule {
        let _ = write!(expected, ", rule {r}");
        let got = d.rule().map(|r| r.pattern());
        if got != Some(r.as_str()) {
            mismatches.push(format!("rule: expected {r}, got {}", got.unwrap_or("none")));
        }
    }
    if let Some(notes) = &e.notes {
        let _ = write!(expected, ", notes [{}]", notes.join(", "));
        let mut want = Notes::empty();
        for n in notes {
            if let Some(n) = Notes::from_code(n) {
                want.insert(n);
            }
        }
        if d.notes() != want {
            mismatches.push(format!(
                "notes: expected [{}], got [{}]",
                notes.join(", "),
                d.notes().codes().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    CaseOutcome {
        name: c.name.clone(),
        line: at.line() as usize,
        expected,
        actual: describe(d),
        mismatches,
    }
}
