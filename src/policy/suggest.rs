//! "Did you mean …?" for names a person typed.

/// Names longer than this get no "did you mean".
pub(crate) const LONGEST_TYPO: usize = 100;

/// The known name closest to `typed`, if it is close enough to be a likely typo.
///
/// Closeness is the optimal-string-alignment distance (one transposition counts
/// as one edit), allowed to grow with the length of the name: `reports.exprot`
/// finds `reports.export`, while `billing` does not suggest `sso`.
///
/// Bounded work: a name longer than [`LONGEST_TYPO`] gets no suggestion (the
/// distance costs the product of the two lengths), and a known name whose length
/// differs by more than the budget is skipped without computing it.
pub(crate) fn did_you_mean<'a>(
    typed: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let typed_len = typed.chars().count();
    if typed_len > LONGEST_TYPO {
        return None;
    }
    let budget = (typed_len / 3).max(1);
    let lowered = typed.to_lowercase();
    known
        .into_iter()
        .filter(|k| k.chars().count().abs_diff(typed_len) <= budget)
        .map(|k| {
            let d = strsim::osa_distance(&lowered, &k.to_lowercase());
            (d, k)
        })
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn finds_transpositions_and_case_slips() {
        let known = ["reports.export", "reports.view", "sso"];
        assert_eq!(
            did_you_mean("reports.exprot", known),
            Some("reports.export")
        );
        assert_eq!(did_you_mean("Reports.View", known), Some("reports.view"));
    }

    #[test]
    fn stays_quiet_when_nothing_is_close() {
        assert_eq!(did_you_mean("billing", ["sso", "api"]), None);
    }
}
