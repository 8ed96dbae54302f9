//! The plans side by side: features (rows) × plans (columns, in tier order), for
//! a pricing page, a pull request or a product review. What `tiergate matrix`
//! prints.
//!
//! ```
//! use tiergate::Policy;
//! use tiergate::matrix::Matrix;
//!
//! let policy = Policy::from_yaml(tiergate::EXAMPLE_POLICY)?;
//! let m = Matrix::of(&policy);
//! assert_eq!(m.plans, ["free", "starter", "pro", "enterprise"]);
//! let sso = m.features.iter().find(|f| f.feature == "sso").unwrap();
//! assert_eq!(sso.plans, [false, false, true, true]);
//! assert!(sso.trial, "the pro trial gives sso");
//! assert!(m.to_markdown().contains("| sso |"));
//! # Ok::<(), tiergate::PolicyError>(())
//! ```

use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::Limit;
use crate::engine::Policy;
use crate::engine::compiled::{Compiled, Cond, TrialPhase};

/// One policy's plans side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Matrix {
    /// The policy's name (its file).
    pub policy: String,
    /// Its revision (short).
    pub revision: String,
    /// The plans, lowest tier first.
    pub plans: Vec<String>,
    /// The plan an active trial lifts a caller to, when the policy has a trial.
    pub trial_plan: Option<String>,
    /// One row per declared feature, in declaration order.
    pub features: Vec<FeatureRow>,
    /// One row per limit, in first-use order.
    pub limits: Vec<LimitRow>,
}

/// A feature across the plans.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct FeatureRow {
    /// The feature.
    pub feature: String,
    /// Its description, when the policy gives one.
    pub description: Option<String>,
    /// Whether each plan includes it (its own or inherited), in [`Matrix::plans`] order.
    pub plans: Vec<bool>,
    /// Whether an active trial gives it (the trial plan includes it).
    pub trial: bool,
    /// The roles that grant it whatever the plan.
    pub roles: Vec<String>,
    /// What it needs besides a plan or role (its `when`), in words.
    pub when: Option<String>,
}

/// A limit across the plans.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LimitRow {
    /// The limit.
    pub limit: String,
    /// Each plan's value (`None`: the plan sets none, so 0), in [`Matrix::plans`] order.
    pub plans: Vec<Option<Limit>>,
    /// The trial plan's value: an active trial gives the higher of it and the caller's own.
    pub trial: Option<Limit>,
}

impl Matrix {
    /// The matrix of `policy`.
    pub fn of(policy: &Policy) -> Matrix {
        let c: &Compiled = &policy.0;
        let plans: Vec<String> = policy.plans().map(str::to_owned).collect();
        let trial_plan = policy.trial_plan().map(str::to_owned);
        // The compiled plans' feature bitsets (own and inherited): one bit test per cell.
        let trial_id = c.trial_plan;
        let features = policy
            .features()
            .enumerate()
            .map(|(id, feature)| {
                let id = u32::try_from(id).ok();
                let def = id.map(|id| c.feature_def(id));
                let has = |plan: u32| id.is_some_and(|f| c.plan_def(plan).features.contains(f));
                FeatureRow {
                    feature: feature.to_owned(),
                    description: def
                        .and_then(|d| d.description.as_deref())
                        .map(str::to_owned),
                    plans: (0..c.plans.len())
                        .filter_map(|p| u32::try_from(p).ok())
                        .map(has)
                        .collect(),
                    trial: trial_id.is_some_and(has),
                    roles: c
                        .roles
                        .iter()
                        .filter(|r| id.is_some_and(|id| r.features.contains(id)))
                        .map(|r| r.name.to_string())
                        .collect(),
                    when: def.and_then(|d| d.when.as_ref()).map(|w| words(c, w)),
                }
            })
            .collect();
        let limits = policy
            .limits()
            .map(|limit| LimitRow {
                limit: limit.to_owned(),
                plans: plans.iter().map(|p| policy.plan_limit(p, limit)).collect(),
                trial: trial_plan
                    .as_deref()
                    .and_then(|t| policy.plan_limit(t, limit)),
            })
            .collect();
        Matrix {
            policy: policy.name().to_owned(),
            revision: policy.revision().to_string(),
            plans,
            trial_plan,
            features,
            limits,
        }
    }

    /// The header cells: the plans, the trial column when there is a trial, and
    /// the roles that grant a feature whatever the plan.
    fn columns(&self) -> Vec<String> {
        let mut cols = self.plans.clone();
        if let Some(t) = &self.trial_plan {
            cols.push(format!("trial ({t})"));
        }
        cols.push("by role".to_owned());
        cols
    }

    /// One row's cells, with the trial column when there is a trial.
    fn feature_cells(&self, f: &FeatureRow) -> Vec<String> {
        let mark = if f.when.is_some() { "✓*" } else { "✓" };
        let cell = |on: bool| {
            if on {
                mark.to_owned()
            } else {
                "–".to_owned()
            }
        };
        let mut cells: Vec<String> = f.plans.iter().map(|&on| cell(on)).collect();
        if self.trial_plan.is_some() {
            cells.push(cell(f.trial));
        }
        cells.push(if f.roles.is_empty() {
            "–".to_owned()
        } else {
            f.roles.join(", ")
        });
        cells
    }

    fn limit_cells(&self, l: &LimitRow) -> Vec<String> {
        let cell = |v: Option<Limit>| v.unwrap_or(Limit::Count(0)).to_string();
        let mut cells: Vec<String> = l.plans.iter().map(|&v| cell(v)).collect();
        if self.trial_plan.is_some() {
            cells.push(cell(l.trial));
        }
        cells.push(String::new());
        cells
    }

    /// The notes under the table: what a `✓*` needs, and what the trial column is.
    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for f in &self.features {
            if let Some(w) = &f.when {
                notes.push(format!("✓* {}: only {w}", f.feature));
            }
        }
        if let Some(t) = &self.trial_plan {
            notes.push(format!(
                "trial ({t}): what an active trial gives, on top of the caller's own plan"
            ));
        }
        notes
    }

    /// Aligned columns for a terminal.
    pub fn to_text(&self) -> String {
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut header = vec!["feature".to_owned()];
        header.extend(self.columns());
        rows.push(header);
        for f in &self.features {
            let mut row = vec![f.feature.clone()];
            row.extend(self.feature_cells(f));
            rows.push(row);
        }
        let first_limit = rows.len();
        for l in &self.limits {
            let mut row = vec![l.limit.clone()];
            row.extend(self.limit_cells(l));
            rows.push(row);
        }
        let width = |col: usize| {
            rows.iter()
                .filter_map(|r| r.get(col))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len)).map(width).collect();
        let mut out = format!("policy {} (revision {})\n\n", self.policy, self.revision);
        for (i, row) in rows.iter().enumerate() {
            if i == first_limit && !self.limits.is_empty() {
                out.push_str("\nlimits\n");
            }
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        let notes = self.notes();
        if !notes.is_empty() {
            out.push('\n');
            for n in notes {
                out.push_str(&n);
                out.push('\n');
            }
        }
        out
    }

    /// A Markdown table (features, then limits), for a pull request or a wiki.
    pub fn to_markdown(&self) -> String {
        let cols = self.columns();
        let mut out = format!("**{}** (revision `{}`)\n\n", self.policy, self.revision);
        let header = |first: &str| {
            format!(
                "| {first} | {} |\n|---|{}\n",
                cols.join(" | "),
                ":---:|".repeat(cols.len())
            )
        };
        out.push_str(&header("feature"));
        for f in &self.features {
            let _ = writeln!(
                out,
                "| {} | {} |",
                f.feature,
                self.feature_cells(f).join(" | ")
            );
        }
        if !self.limits.is_empty() {
            out.push('\n');
            out.push_str(&header("limit"));
            for l in &self.limits {
                let _ = writeln!(out, "| {} | {} |", l.limit, self.limit_cells(l).join(" | "));
            }
        }
        let notes = self.notes();
        if !notes.is_empty() {
            out.push('\n');
            for n in notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }

    /// An HTML table (features, then limits, then the notes), escaped, with classes
    /// to style: `included`, `excluded`, `conditional`, `role`, `limit`.
    pub fn to_html(&self) -> String {
        let cols = self.columns();
        let mut out = format!(
            "<table class=\"tiergate-matrix\">\n<caption>{} (revision {})</caption>\n<thead><tr><th>feature</th>",
            escape(&self.policy),
            escape(&self.revision)
        );
        for c in &cols {
            let _ = write!(out, "<th>{}</th>", escape(c));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for f in &self.features {
            let title = f
                .description
                .as_deref()
                .map(|d| format!(" title=\"{}\"", escape(d)))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<tr><th scope=\"row\"{title}>{}</th>",
                escape(&f.feature)
            );
            for cell in self.feature_cells(f) {
                let class = match cell.as_str() {
                    "✓" => "included",
                    "✓*" => "conditional",
                    "–" => "excluded",
                    _ => "role",
                };
                let _ = write!(out, "<td class=\"{class}\">{}</td>", escape(&cell));
            }
            out.push_str("</tr>\n");
        }
        for l in &self.limits {
            let _ = write!(
                out,
                "<tr class=\"limit\"><th scope=\"row\">{}</th>",
                escape(&l.limit)
            );
            for cell in self.limit_cells(l) {
                let _ = write!(out, "<td>{}</td>", escape(&cell));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        let notes = self.notes();
        if !notes.is_empty() {
            out.push_str("<ul class=\"tiergate-matrix-notes\">\n");
            for n in notes {
                let _ = writeln!(out, "<li>{}</li>", escape(&n));
            }
            out.push_str("</ul>\n");
        }
        out
    }
}

/// A matrix cell that differs between two policies (`tiergate diff --format markdown`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CellChange {
    /// The feature or limit.
    pub row: String,
    /// The plan, `trial (…)` or `by role`.
    pub column: String,
    /// The cell before (`(none)` when the row or column did not exist).
    pub before: String,
    /// The cell after (`(none)` when it no longer exists).
    pub after: String,
}

impl Matrix {
    /// Every cell as (row, column, text), features then limits, in display order.
    fn cells(&self) -> Vec<(String, String, String)> {
        let cols = self.columns();
        let mut out = Vec::new();
        for f in &self.features {
            for (col, cell) in cols.iter().zip(self.feature_cells(f)) {
                out.push((f.feature.clone(), col.clone(), cell));
            }
        }
        for l in &self.limits {
            for (col, cell) in cols.iter().zip(self.limit_cells(l)) {
                if !cell.is_empty() {
                    out.push((l.limit.clone(), col.clone(), cell));
                }
            }
        }
        out
    }

    /// The cells that differ from `self` in `new`, in `new`'s order, then the cells
    /// that are gone.
    pub fn changes_to(&self, new: &Matrix) -> Vec<CellChange> {
        let (before, after) = (self.cells(), new.cells());
        let index = |cells: &[(String, String, String)]| {
            cells
                .iter()
                .map(|(row, col, v)| ((row.clone(), col.clone()), v.clone()))
                .collect::<std::collections::HashMap<_, _>>()
        };
        let (was, now) = (index(&before), index(&after));
        let none = || "(none)".to_owned();
        let mut changes = Vec::new();
        for (row, col, value) in &after {
            let old = was.get(&(row.clone(), col.clone()));
            if old != Some(value) {
                changes.push(CellChange {
                    row: row.clone(),
                    column: col.clone(),
                    before: old.cloned().unwrap_or_else(none),
                    after: value.clone(),
                });
            }
        }
        for (row, col, value) in &before {
            if !now.contains_key(&(row.clone(), col.clone())) {
                changes.push(CellChange {
                    row: row.clone(),
                    column: col.clone(),
                    before: value.clone(),
                    after: none(),
                });
            }
        }
        changes
    }

    /// [`changes_to`](Self::changes_to) as a Markdown table (empty when nothing changed).
    pub fn changes_markdown(&self, new: &Matrix) -> String {
        let changes = self.changes_to(new);
        if changes.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "### Plan matrix cells that change\n\n| row | column | before | after |\n|---|---|:---:|:---:|\n",
        );
        for c in changes {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                c.row, c.column, c.before, c.after
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A condition in words: "with at least 2 seats", "for role admin", …
fn words(c: &Compiled, cond: &Cond) -> String {
    let list = |cs: &[Cond], joiner: &str| {
        cs.iter()
            .map(|x| words(c, x))
            .collect::<Vec<_>>()
            .join(joiner)
    };
    match cond {
        Cond::Feature(f) => format!("with {}", c.feature_def(*f).name),
        Cond::PlanIn(ps) => format!(
            "on plan {}",
            ps.iter()
                .map(|p| c.plan_def(*p).name.to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ),
        Cond::PlanAtLeast(p) => format!("on {} or above", c.plan_def(*p).name),
        Cond::Role(rs) => format!(
            "for role {}",
            rs.iter()
                .map(|r| c.role_def(*r).name.to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ),
        Cond::Trial(TrialPhase::Active) => "during an active trial".to_owned(),
        Cond::Trial(TrialPhase::Expired) => "after the trial ended".to_owned(),
        Cond::Trial(TrialPhase::None) => "without a trial".to_owned(),
        Cond::SeatsAtLeast(n) => format!("with at least {n} seats"),
        Cond::All(cs) => list(cs, " and "),
        Cond::Any(cs) => format!("either {}", list(cs, ", or ")),
        Cond::Not(x) => format!("not ({})", words(c, x)),
    }
}
