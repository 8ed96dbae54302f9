//! The JSON rows the commands print for policy errors, shared by `check` and `test`.

use std::path::Path;

use serde::Serialize;
use tiergate::PolicyError;

pub(crate) fn print_json(v: &impl Serialize) {
    // Serializing a Value or a row cannot fail.
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// A `check --format json` row: a located problem (line and column 0 for a problem
/// with the file as a whole). A struct rather than a `Value`, so the members come in
/// this order whatever serde_json features the build has (`preserve_order` changes
/// a `Value`'s order, and another crate in the build can turn it on).
#[derive(Serialize)]
pub(crate) struct Row<'a> {
    file: &'a Path,
    line: usize,
    column: usize,
    message: String,
    help: Option<String>,
}

/// The row for a located problem.
pub(crate) fn diagnostic_row<'a>(file: &'a Path, d: &tiergate::Diagnostic) -> Row<'a> {
    Row {
        file,
        line: d.line,
        column: d.column,
        message: d.message.clone(),
        help: d.help.clone(),
    }
}

/// A row for a problem with the file as a whole (unreadable, too large).
pub(crate) fn file_row(file: &Path, message: String) -> Row<'_> {
    Row {
        file,
        line: 0,
        column: 0,
        message,
        help: None,
    }
}

/// The JSON rows for one policy error: located problems, or one row for a file problem.
pub(crate) fn error_rows<'a>(file: &'a Path, err: &PolicyError) -> Vec<Row<'a>> {
    match err.diagnostics() {
        Some(d) => d.items().iter().map(|i| diagnostic_row(file, i)).collect(),
        None => vec![file_row(file, err.to_string())],
    }
}
