//! The one payload reader's answers for payloads whose reading could depend on
//! serde_json's features (`payload_reader/answers.json`). `checks/serde-features`
//! runs the same cases with `arbitrary_precision` and `preserve_order` on and
//! holds them to the same file.

#[path = "payload_reader/cases.rs"]
mod cases;

#[test]
fn payloads_read_as_answers_json_says() {
    cases::check(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/payload_reader/answers.json"),
    );
}
