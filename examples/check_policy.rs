//! Checks policy files and prints every problem with a code frame.
//!
//! `cargo run --example check_policy -- policies/saas.yaml` (the `tiergate check`
//! command will do the same with JSON output).

fn main() {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        match tiergate::Policy::from_file(&path) {
            Ok(p) => println!("{path}: ok (revision {})", p.revision()),
            Err(e) => {
                failed = true;
                eprintln!("{e}\n");
            }
        }
    }
    std::process::exit(i32::from(failed));
}
