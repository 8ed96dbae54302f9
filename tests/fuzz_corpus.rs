//! What fuzzing found stays found: every input in `fuzz/corpus/<target>/` (the
//! minimized corpora of the cargo-fuzz campaigns, plus the regression inputs of
//! their findings) is replayed through the same checks the fuzz targets run
//! (`fuzz/checks.rs`), on stable, in an ordinary `cargo test`.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no corpus in {}", dir.display());
    for path in &inputs {
        let data = std::fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} fails its check",
            path.display()
        );
    }
    eprintln!("{target}: {} inputs replayed", inputs.len());
}

#[test]
fn the_policy_corpus() {
    replay("policy", checks::policy);
}

#[test]
fn the_token_corpus() {
    replay("token", checks::token);
}

#[test]
fn the_signed_payload_corpus() {
    replay("signed_payload", checks::signed_payload);
}

#[test]
fn the_claims_corpus() {
    replay("claims", checks::claims);
}

#[test]
fn the_jwks_corpus() {
    replay("jwks", checks::jwks);
}

#[test]
fn the_routes_corpus() {
    replay("routes", checks::routes);
}

#[test]
fn the_claims_mapping_corpus() {
    replay("claims_mapping", checks::claims_mapping);
}
