//! Located errors in a policy file, rendered as code frames a person can act on.
//!
//! ```
//! let err = tiergate::Policy::from_yaml_named(
//!     "version: 1\nplans:\n  free: { features: [dashbord] }\nfeatures:\n  dashboard: {}\n",
//!     "saas.yaml",
//! )
//! .unwrap_err();
//! let text = err.to_string();
//! assert!(text.contains("saas.yaml:3:22"));
//! assert!(text.contains("did you mean `dashboard`?"));
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

/// One problem in a policy file: where, what, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// 1-based line; 0 when the problem is not tied to a line (an empty file, say).
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// How many characters the caret underlines (at least 1).
    #[serde(skip)]
    pub width: usize,
    /// What is wrong, in one sentence.
    pub message: String,
    /// A one-line fix, when there is one to suggest.
    pub help: Option<String>,
}

impl Diagnostic {
    pub(crate) fn at(line: usize, column: usize, width: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            line,
            column,
            width: width.max(1),
            message: message.into(),
            help: None,
        }
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Every problem found in one policy file, with the text needed to show code frames.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    file: String,
    source: Arc<str>,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub(crate) fn new(file: &str, source: &str, mut items: Vec<Diagnostic>) -> Self {
        items.sort_by_key(|d| (d.line, d.column));
        items.dedup();
        Diagnostics {
            file: file.to_owned(),
            source: Arc::from(source),
            items,
        }
    }

    /// The file name the policy was loaded under.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The problems, in line order.
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    fn source_line(&self, line: usize) -> Option<&str> {
        line.checked_sub(1).and_then(|i| self.source.lines().nth(i))
    }
}

/// At most this many problems are rendered as code frames; the rest are counted.
/// (`items()` and the JSON output keep them all.)
pub const SHOWN_AT_MOST: usize = 50;

/// A source line is shown at most this many characters wide, around the caret: a
/// 90 KB line with 10,000 problems once rendered a 1.35 GB message.
const LINE_WINDOW: usize = 120;

/// The part of `line` (characters) shown for a caret at 1-based `column`, and the
/// caret's column within it.
fn window(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    if chars.len() <= LINE_WINDOW {
        return (chars.into_iter().collect(), column);
    }
    let at = column.saturating_sub(1).min(chars.len());
    let start = at.saturating_sub(LINE_WINDOW / 3);
    let end = start.saturating_add(LINE_WINDOW).min(chars.len());
    let mut shown = String::new();
    if start > 0 {
        shown.push('…');
    }
    shown.extend(chars.get(start..end).unwrap_or_default());
    if end < chars.len() {
        shown.push('…');
    }
    // start <= at (it is at most `at` moved left), so this cannot underflow.
    let column = at.saturating_sub(start).saturating_add(1);
    (shown, column.saturating_add(usize::from(start > 0)))
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().take(SHOWN_AT_MOST).enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "error: {}", d.message)?;
            let gutter = d.line.to_string().len();
            let pad = " ".repeat(gutter);
            if d.line == 0 {
                writeln!(f, "{pad}--> {}", self.file)?;
            } else {
                writeln!(f, "{pad}--> {}:{}:{}", self.file, d.line, d.column)?;
                if let Some(text) = self.source_line(d.line) {
                    // Tabs would shift the caret by a terminal-dependent amount; show them
                    // as one space. Long lines are cut to a window around the caret.
                    let (shown, column) = window(text, d.column);
                    let available = shown
                        .chars()
                        .count()
                        .saturating_sub(column.saturating_sub(1));
                    let width = d.width.min(available.max(1));
                    writeln!(f, "{pad} |")?;
                    writeln!(f, "{} | {}", d.line, shown.trim_end())?;
                    writeln!(
                        f,
                        "{pad} | {}{}",
                        " ".repeat(column.saturating_sub(1)),
                        "^".repeat(width)
                    )?;
                }
            }
            if let Some(help) = &d.help {
                writeln!(f, "{pad} = help: {help}")?;
            }
        }
        let n = self.items.len();
        if n > SHOWN_AT_MOST {
            writeln!(
                f,
                "\n… and {} more (the first {SHOWN_AT_MOST} are shown; `tiergate check --format json` lists all)",
                n.saturating_sub(SHOWN_AT_MOST)
            )?;
        }
        write!(
            f,
            "{}: {} error{} in the policy; the policy was not loaded",
            self.file,
            n,
            if n == 1 { "" } else { "s" }
        )
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {}: {source}", path.display())]
    Io {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is larger than the configured cap (a guard against loading the wrong file).
    #[error(
        "policy file {} is {size} bytes, over the {max}-byte limit; is this the right file?",
        path.display()
    )]
    TooLarge {
        /// The file that was asked for.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        max: u64,
    },
    /// The file was read but is not a valid policy; every problem found is listed.
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl PolicyError {
    /// The located problems, when the file was read but is invalid.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            PolicyError::Invalid(d) => Some(d),
            _ => None,
        }
    }
}
