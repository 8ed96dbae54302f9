#![no_main]
//! See fuzz/README.md and `checks::claims_mapping`.

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::claims_mapping(data));
