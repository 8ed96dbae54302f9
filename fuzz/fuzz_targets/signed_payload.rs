#![no_main]
//! See fuzz/README.md and `checks::signed_payload`.

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::signed_payload(data));
