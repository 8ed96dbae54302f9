//! Stage 1: YAML text → [`PolicyDoc`], with strict parser options.
//!
//! Strictness is the point: `yes` is not a boolean, a duplicated plan is an error
//! (not a silent overwrite), unknown keys are errors, and custom tags and merge keys
//! are refused, so what a person reads in the file is exactly what is enforced.

use serde_saphyr::options::{DuplicateKeyPolicy, MergeKeyPolicy};
use serde_saphyr::{Error as YamlError, Location};

use super::diagnostic::Diagnostic;
use super::model::{HELP_MARKER, PolicyDoc};
use super::suggest::did_you_mean;

/// Policy files larger than this are refused before parsing (1 MiB: a 10,000-route policy
/// is about 600 KiB).
pub const MAX_POLICY_BYTES: usize = 1 << 20;

fn strict_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: DuplicateKeyPolicy::Error,
        merge_keys: MergeKeyPolicy::Error,
        reject_unsupported_tags: true,
    }
}

/// Parses any strictly-read YAML document into `T`, or returns located diagnostics.
///
/// Shared by policies and policy test files so both read YAML the same way.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
    source: &str,
) -> Result<T, Vec<Diagnostic>> {
    if source.len() > MAX_POLICY_BYTES {
        return Err(vec![Diagnostic::at(
            0,
            0,
            1,
            format!(
                "the file is {} bytes, over the {MAX_POLICY_BYTES}-byte limit",
                source.len()
            ),
        )]);
    }
    let tabs = tab_indentation(source);
    if !tabs.is_empty() {
        return Err(tabs);
    }
    if source.trim().is_empty() {
        return Err(vec![
            Diagnostic::at(0, 0, 1, "the file is empty")
                .help("start with `version: 1` and a `plans:` section"),
        ]);
    }
    serde_saphyr::from_str_with_options::<T>(source, strict_options())
        .map_err(|e| vec![from_yaml_error(&e, source)])
}

pub(crate) fn parse_policy(source: &str) -> Result<PolicyDoc, Vec<Diagnostic>> {
    parse_yaml(source)
}

/// YAML forbids tabs in indentation, and the parser's own message for it is cryptic;
/// this finds every such line at once with a message a non-programmer understands.
fn tab_indentation(source: &str) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for (i, line) in source.lines().enumerate() {
        let body = line.trim_start_matches([' ', '\t']);
        let indent: &str = line.strip_suffix(body).unwrap_or_default();
        if let Some(col) = indent.find('\t') {
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            found.push(
                Diagnostic::at(
                    i.saturating_add(1),
                    col.saturating_add(1),
                    1,
                    "this line is indented with a tab",
                )
                .help("YAML indents with spaces only: replace the tab with spaces"),
            );
        }
    }
    found
}

fn from_yaml_error(err: &YamlError, source: &str) -> Diagnostic {
    let err = err.without_snippet();
    let (line, column) = err
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .unwrap_or((0, 0));
    let raw = err.to_string();
    let message = strip_location_suffix(&raw);
    let (message, help) = match message.split_once(HELP_MARKER) {
        Some((m, h)) => (m.to_owned(), Some(h.to_owned())),
        None => (message.to_owned(), None),
    };
    let mut width = 1;
    let (message, help) = match err {
        YamlError::DuplicateMappingKey { key, .. } => {
            let name = key.clone().unwrap_or_default();
            let first = first_occurrence(source, line, column, &name)
                .map(|l| format!(" (first on line {l})"))
                .unwrap_or_default();
            width = name.chars().count();
            (
                format!("`{name}` is written twice in the same mapping{first}"),
                Some(format!(
                    "each key may appear once; merge the two `{name}` entries into one, or rename one of them"
                )),
            )
        }
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => {
            width = field.chars().count();
            let help = match did_you_mean(field, expected.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the keys allowed here are: {}", expected.join(", ")),
            };
            (format!("unknown key `{field}`"), Some(help))
        }
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            let help = match did_you_mean(variant, expected.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("write one of: {}", expected.join(", ")),
            };
            (format!("`{variant}` is not allowed here"), Some(help))
        }
        YamlError::SerdeMissingField { field, .. } => (
            format!("the required key `{field}` is missing"),
            Some(missing_field_help(field)),
        ),
        YamlError::InvalidBooleanStrict { .. } => (
            "this is not a boolean".to_owned(),
            Some("write `true` or `false` (not yes/no/on/off)".to_owned()),
        ),
        YamlError::MergeKeyNotAllowed { .. } => (
            "YAML merge keys (`<<`) are not allowed in a policy".to_owned(),
            Some(
                "write the keys out in full; use `extends:` to share features between plans"
                    .to_owned(),
            ),
        ),
        YamlError::UnsupportedTag { .. } => (
            message,
            Some("remove the `!tag`: policies use plain YAML values only".to_owned()),
        ),
        _ => {
            let help = help.or_else(|| Some(generic_help(&raw, source_line(source, line))));
            (message, help)
        }
    };
    let mut d = Diagnostic::at(line, column, width, message);
    d.help = help;
    d
}

fn missing_field_help(field: &str) -> String {
    match field {
        "version" => "add `version: 1` as the first line".to_owned(),
        "plans" => "add a `plans:` section listing your plans, lowest tier first".to_owned(),
        "path" => "every route needs a `path:` such as `/api/reports/{*rest}`".to_owned(),
        "plan" => "write the plan a trial grants, e.g. `trial: { plan: pro }`".to_owned(),
        "at_least" => "write `seats: { at_least: 2 }`".to_owned(),
        other => format!("add `{other}:`"),
    }
}

/// The earlier line where a duplicated block-style key was first written at the
/// same indentation, e.g. the first `free:` under `plans:`.
fn first_occurrence(source: &str, line: usize, column: usize, key: &str) -> Option<usize> {
    let indent = column.checked_sub(1)?;
    let lines: Vec<&str> = source.lines().take(line.saturating_sub(1)).collect();
    for (i, text) in lines.iter().enumerate().rev() {
        let lead = text.len().saturating_sub(text.trim_start().len());
        let rest = text.trim_start();
        if lead < indent && !rest.is_empty() && !rest.starts_with('#') && !rest.starts_with('-') {
            return None; // left the enclosing mapping
        }
        if lead == indent
            && (rest.starts_with(&format!("{key}:")) || rest.starts_with(&format!("\"{key}\":")))
        {
            return Some(i.saturating_add(1));
        }
    }
    None
}

fn source_line(source: &str, line: usize) -> &str {
    line.checked_sub(1)
        .and_then(|i| source.lines().nth(i))
        .unwrap_or("")
}

fn generic_help(raw: &str, line: &str) -> String {
    if raw.contains("flow mapping") && line.contains("/{") {
        // `{ path: /a/{id} }`: YAML reads the `{` of `{id}` as a nested mapping.
        "inside `{ ... }`, quote a path that has braces: `path: \"/api/reports/{*rest}\"`"
            .to_owned()
    } else if raw.contains("invalid type") {
        "check the shape of this value against docs/policy.md (a list is written `[a, b]`, a mapping `{ key: value }`)".to_owned()
    } else {
        "check the YAML syntax near this position (indentation, a missing `:` or an unclosed bracket)".to_owned()
    }
}

/// serde-saphyr appends " at line N, column M" to its messages; the code frame shows it already.
fn strip_location_suffix(raw: &str) -> &str {
    match raw.rfind(" at line ") {
        Some(i) if raw[i..].contains(", column ") => &raw[..i],
        _ => raw,
    }
}

/// Line and column of a spanned value, for diagnostics.
pub(crate) fn loc(l: &Location) -> (usize, usize) {
    (l.line() as usize, l.column() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_are_reported_on_every_line() {
        let d = tab_indentation("version: 1\nplans:\n\tfree: {}\n\tpro: {}\n");
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].line, d[0].column), (3, 1));
        assert_eq!((d[1].line, d[1].column), (4, 1));
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let big = "#".repeat(MAX_POLICY_BYTES + 1);
        let err = parse_policy(&big).unwrap_err();
        assert!(err[0].message.contains("over the"));
    }
}
