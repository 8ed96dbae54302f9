//! `tiergate diff`: what a policy change does to customers. OLD and NEW are files
//! or `git:REV:PATH`.

use std::process::ExitCode;

use serde_json::json;
use tiergate::Policy;
use tiergate::matrix::Matrix;

use crate::Format;
use crate::report::print_json;

pub(crate) fn run(old: &str, new: &str, format: Format) -> Result<ExitCode, String> {
    let (old, new) = (load(old)?, load(new)?);
    let d = tiergate::diff::PolicyDiff::between(&old, &new);
    match format {
        Format::Text => print!("{}", d.to_text()),
        Format::Markdown => {
            print!("{}", d.to_markdown());
            let cells = Matrix::of(&old).changes_markdown(&Matrix::of(&new));
            if !cells.is_empty() {
                print!("\n{cells}");
            }
        }
        Format::Json => print_json(
            &json!({ "downgrades": d.has_downgrades(), "plans": d.plans, "roles": d.roles, "routes": d.routes }),
        ),
    }
    Ok(ExitCode::SUCCESS)
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
