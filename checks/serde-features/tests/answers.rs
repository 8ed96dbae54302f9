//! The payload reader with serde_json's `arbitrary_precision` and `preserve_order`
//! on: the same answers as tiergate's own build (see Cargo.toml).

#[path = "../../../tests/payload_reader/cases.rs"]
mod cases;

#[test]
fn serde_json_features_do_not_change_what_a_payload_means() {
    // The features really are on in this build: a number keeps its text.
    let n: serde_json::Value = serde_json::from_str("1.50").unwrap();
    assert_eq!(n.to_string(), "1.50", "arbitrary_precision is not on");
    cases::check(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/payload_reader/answers.json"),
    );
}
