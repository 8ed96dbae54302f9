//! "Dependencies point down" (docs/architecture.md), checked: no two rooms of `src/`
//! (its top-level modules) use each other. A room uses another when its code, tests
//! and comments left out, names `crate::other` or an item the crate root re-exports
//! from `other` (`crate::{Claims, Policy}`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its tests and comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers after each `crate::`, including those inside `crate::{…}`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let inner = match rest.strip_prefix('{') {
            Some(group) => &group[..group.find('}').unwrap_or(group.len())],
            None => {
                &rest[..rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len())]
            }
        };
        for name in inner.split(',') {
            let name: String = name
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

#[test]
fn no_two_rooms_use_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // Which room each item the crate root re-exports comes from.
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut reexported: BTreeMap<String, String> = BTreeMap::new();
    for stmt in code(&lib).split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((room, items)) = rest.split_once("::") else {
            continue;
        };
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let item = item.trim();
            if !item.is_empty() {
                reexported.insert(item.to_owned(), room.to_owned());
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut rooms = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let room = first.trim_end_matches(".rs").to_owned();
        // The crate root and the CLI binary (a crate of its own) are not rooms.
        if room == "lib" || room == "cli" {
            continue;
        }
        rooms.insert(room.clone());
        let text = std::fs::read_to_string(file).unwrap();
        for name in crate_paths(&code(&text)) {
            let target = reexported.get(&name).cloned().unwrap_or(name);
            if target != room {
                uses.entry(room.clone()).or_default().insert(target);
            }
        }
    }
    assert!(rooms.len() >= 10, "found only {rooms:?}");
    let mut cycles = Vec::new();
    for (a, targets) in &uses {
        for b in targets {
            if a < b && rooms.contains(b) && uses.get(b).is_some_and(|t| t.contains(a)) {
                cycles.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "rooms that use each other: {cycles:?}\nall uses: {uses:#?}"
    );
    // The rule holds for the reason the map gives, not by accident of naming.
    assert!(uses["token"].contains("claims"), "{uses:#?}");
    assert!(uses["layer"].contains("token"), "{uses:#?}");
}
