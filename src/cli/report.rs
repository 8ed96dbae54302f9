//! The JSON rows the commands print for policy errors, shared by `check` and `test`.

use std::path::Path;

use serde_json::{Value, json};
use tiergate::PolicyError;

pub(crate) fn print_json(v: &Value) {
    // Serializing a Value cannot fail.
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// A `check --format json` row: a located problem.
pub(crate) fn diagnostic_row(file: &Path, d: &tiergate::Diagnostic) -> Value {
    json!({ "file": file, "line": d.line, "column": d.column, "message": d.message, "help": d.help })
}

/// A row for a problem with the file as a whole (unreadable, too large).
pub(crate) fn file_row(file: &Path, message: String) -> Value {
    json!({ "file": file, "line": 0, "column": 0, "message": message, "help": null })
}

/// The JSON rows for one policy error: located problems, or one row for a file problem.
pub(crate) fn error_rows(file: &Path, err: &PolicyError) -> Vec<Value> {
    match err.diagnostics() {
        Some(d) => d.items().iter().map(|i| diagnostic_row(file, i)).collect(),
        None => vec![file_row(file, err.to_string())],
    }
}
