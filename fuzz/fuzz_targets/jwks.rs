#![no_main]
//! See fuzz/README.md and `checks::jwks`.

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::jwks(data));
