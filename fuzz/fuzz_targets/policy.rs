#![no_main]
//! See fuzz/README.md and `checks::policy`.

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::policy(data));
