//! `tiergate test`: run the cases in `*.test.yaml` files.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use tiergate::policy_test::{TestFileError, find_test_files, run_file};

use crate::Format;
use crate::report::{diagnostic_row, error_rows, file_row, print_json};

pub(crate) fn run(paths: &[PathBuf], format: Format) -> Result<ExitCode, String> {
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
