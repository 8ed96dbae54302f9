//! "Dependencies point down" (docs/architecture.md), checked at two levels:
//!
//! - no rooms of `src/` (its top-level modules) use one another in a cycle. A room
//!   uses another when its code, tests and comments left out, names `crate::other`
//!   or an item the crate root re-exports from `other` (`crate::{Claims, Policy}`);
//! - inside a room that is a directory, no files use one another in a cycle (through
//!   `super::file` or `crate::room::file`, or an item the room's `mod.rs` re-exports
//!   from `file`), and none
//!   uses an item defined in `mod.rs` itself: the room's root assembles its files and
//!   is above all of them.

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
    paths_after(code, "crate::")
}

/// The identifiers after each `prefix`, including those inside `prefix{…}`.
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        // `crate::` inside `tiergate_crate::`, or `super::` inside `super::super::`.
        if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[i + prefix.len()..];
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
    uses.values_mut()
        .for_each(|targets| targets.retain(|t| rooms.contains(t)));
    let cycles = cycles(&uses);
    assert!(
        cycles.is_empty(),
        "rooms that use each other: {cycles:?}\nall uses: {uses:#?}"
    );
    // The rule holds for the reason the map gives, not by accident of naming.
    assert!(uses["token"].contains("claims"), "{uses:#?}");
    assert!(uses["layer"].contains("token"), "{uses:#?}");
}

/// The groups of nodes that reach one another (strongly connected components of
/// more than one node), each sorted: empty when the graph has no cycle.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(n) = todo.pop() {
            for next in graph.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|n| (n, reach(n))).collect();
    let mut groups: BTreeSet<Vec<String>> = BTreeSet::new();
    for (n, from_n) in &reachable {
        if !from_n.contains(*n) {
            continue;
        }
        let group: Vec<String> = from_n
            .iter()
            .filter(|m| reachable.get(m).is_some_and(|r| r.contains(*n)))
            .cloned()
            .collect();
        groups.insert(group);
    }
    groups.into_iter().collect()
}

/// What `mod.rs` re-exports (`pub use file::{A, B}`, `pub(crate) use file::C`): item → file.
fn reexports(mod_rs: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stmt in code(mod_rs).split(';') {
        let stmt = stmt.trim();
        let Some(rest) = ["pub use ", "pub(crate) use ", "pub(super) use "]
            .iter()
            .find_map(|p| stmt.strip_prefix(p))
        else {
            continue;
        };
        let Some((file, items)) = rest.split_once("::") else {
            continue;
        };
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let item = item.split(" as ").last().unwrap_or_default().trim();
            if !item.is_empty() && item != "*" {
                out.insert(item.to_owned(), file.to_owned());
            }
        }
    }
    out
}

#[test]
fn no_files_of_a_room_use_one_another_in_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (mut checked, mut problems) = (0, Vec::new());
    for entry in std::fs::read_dir(&src).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(mod_rs) = std::fs::read_to_string(dir.join("mod.rs")) else {
            continue;
        };
        let room = dir.file_name().unwrap().to_string_lossy().into_owned();
        let reexported = reexports(&mod_rs);
        let files: BTreeSet<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .filter(|f| f != "mod")
            .collect();
        let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut into_root = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(dir.join(format!("{file}.rs"))).unwrap();
            let code = code(&text);
            let own_room = format!("crate::{room}::");
            let mut names = paths_after(&code, "super::");
            names.extend(paths_after(&code, &own_room));
            for name in names {
                let target = if files.contains(&name) {
                    name
                } else if let Some(f) = reexported.get(&name) {
                    f.clone()
                } else {
                    into_root.push(format!("{room}/{file}.rs uses `{name}` from {room}/mod.rs"));
                    continue;
                };
                if &target != file {
                    uses.entry(file.clone()).or_default().insert(target);
                }
            }
        }
        problems.extend(into_root);
        for cycle in cycles(&uses) {
            problems.push(format!(
                "files of src/{room}/ that use one another: {cycle:?}"
            ));
        }
        checked += 1;
    }
    assert!(checked >= 6, "checked only {checked} rooms");
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_cycle_finder_finds_long_cycles_and_only_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry((*a).into()).or_default().insert((*b).into());
        }
        g
    };
    assert!(cycles(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
    assert_eq!(
        cycles(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])),
        [["a", "b", "c"]]
    );
}
