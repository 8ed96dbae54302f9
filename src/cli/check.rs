//! `tiergate check`: validate policy files, every problem with its line and a fix.

use std::path::PathBuf;
use std::process::ExitCode;

use tiergate::Policy;

use crate::Format;
use crate::report::{error_rows, print_json};

pub(crate) fn run(files: &[PathBuf], format: Format) -> Result<ExitCode, String> {
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
        print_json(&rows);
    } else if failed > 0 {
        println!("{failed} of {} policy files have errors", files.len());
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
