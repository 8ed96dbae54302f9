//! `tiergate matrix`: the plans side by side (features × plans, limits, what a
//! trial adds), as text, Markdown, HTML or JSON.

use std::path::Path;
use std::process::ExitCode;

use clap::ValueEnum;
use tiergate::Policy;
use tiergate::matrix::Matrix;

use crate::report::print_json;

/// How `matrix` prints.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MatrixFormat {
    /// Aligned columns for a terminal.
    Text,
    /// A Markdown table, for a pull request or a wiki.
    Markdown,
    /// An HTML table, for a pricing page.
    Html,
    /// The matrix as JSON.
    Json,
}

pub(crate) fn run(file: &Path, format: MatrixFormat) -> Result<ExitCode, String> {
    let policy = match Policy::from_file(file) {
        Ok(p) => p,
        Err(e) => {
            println!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let m = Matrix::of(&policy);
    match format {
        MatrixFormat::Text => print!("{}", m.to_text()),
        MatrixFormat::Markdown => print!("{}", m.to_markdown()),
        MatrixFormat::Html => print!("{}", m.to_html()),
        MatrixFormat::Json => print_json(&m),
    }
    Ok(ExitCode::SUCCESS)
}
