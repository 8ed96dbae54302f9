//! The route table: method + path → the rule that governs it.
//!
//! One segment tree per HTTP method (plus one for rules without `methods`). A lookup
//! walks the path's segments once, preferring at each position a static segment,
//! then a `{param}`, then a `{*rest}` — axum's (matchit's) priorities — and backs
//! up through the recursion when a preferred branch leads nowhere. Unlike matchit's
//! own lookup, which keeps a heap-allocated list of places to back up to, this one
//! allocates nothing, and a static segment is one hash probe however many siblings
//! it has. Validation still inserts every pattern into a matchit router, so a policy
//! accepts exactly the patterns axum would (see `docs/policy.md`).
//!
//! A rule that names the method beats a rule without `methods` on the same path;
//! `GET` rules also answer `HEAD` unless a `HEAD` rule exists for that path.

use std::collections::HashMap;

/// The methods with a tree of their own; any other method only sees rules
/// without a `methods` list.
pub(crate) const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

const GET: usize = 0;
const HEAD: usize = 1;

/// The index of a method in [`METHODS`]. A byte match compiles to a length switch and
/// integer compares; a loop of string comparisons calls `memcmp` per method.
#[inline]
pub(crate) fn method_index(method: &str) -> Option<usize> {
    Some(match method.as_bytes() {
        b"GET" => 0,
        b"HEAD" => 1,
        b"POST" => 2,
        b"PUT" => 3,
        b"PATCH" => 4,
        b"DELETE" => 5,
        b"OPTIONS" => 6,
        b"TRACE" => 7,
        b"CONNECT" => 8,
        _ => return None,
    })
}

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Static(String),
    Param,
    CatchAll,
}

/// Splits a pattern into segments. Parameters must be whole segments (`/{id}`, not
/// `/img-{id}.png`); `{{` and `}}` are literal braces.
pub(crate) fn parse_pattern(pattern: &str) -> Result<Vec<Segment>, String> {
    let Some(rest) = pattern.strip_prefix('/') else {
        return Err("a route path starts with `/`".into());
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let mut segments = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        if !part.contains(['{', '}']) {
            segments.push(Segment::Static((*part).to_owned()));
            continue;
        }
        let unescaped = part.replace("{{", "").replace("}}", "");
        if let Some(name) = part.strip_prefix("{*").and_then(|p| p.strip_suffix('}')) {
            if i != parts.len().saturating_sub(1) {
                return Err("`{*name}` takes the rest of the path, so it must come last".into());
            }
            if name.is_empty() || name.contains(['{', '}']) {
                return Err(format!(
                    "`{part}` is not a valid catch-all; write `{{*rest}}`"
                ));
            }
            segments.push(Segment::CatchAll);
        } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
            && !part.starts_with("{{")
        {
            if name.is_empty() || name.contains(['{', '}', '*']) {
                return Err(format!("`{part}` is not a valid parameter; write `{{id}}`"));
            }
            segments.push(Segment::Param);
        } else if unescaped.contains(['{', '}']) {
            return Err(format!(
                "`{part}`: a parameter must be a whole segment between slashes, e.g. `/images/{{id}}`"
            ));
        } else {
            segments.push(Segment::Static(part.replace("{{", "{").replace("}}", "}")));
        }
    }
    Ok(segments)
}

/// Static children of a node: a short list is scanned, a long one hashed.
enum Statics {
    Few(Vec<(Box<str>, u32)>),
    Many(HashMap<Box<str>, u32, foldhash::fast::RandomState>),
}

const FEW: usize = 8;

impl Statics {
    #[inline]
    fn get(&self, segment: &str) -> Option<u32> {
        match self {
            Statics::Few(v) => v.iter().find(|(s, _)| **s == *segment).map(|(_, n)| *n),
            Statics::Many(m) => m.get(segment).copied(),
        }
    }

    fn insert(&mut self, segment: &str, node: u32) {
        match self {
            Statics::Few(v) if v.len() < FEW => v.push((segment.into(), node)),
            Statics::Few(v) => {
                let mut m: HashMap<Box<str>, u32, foldhash::fast::RandomState> =
                    v.drain(..).collect();
                m.insert(segment.into(), node);
                *self = Statics::Many(m);
            }
            Statics::Many(m) => {
                m.insert(segment.into(), node);
            }
        }
    }
}

struct Node {
    statics: Statics,
    param: Option<u32>,
    catch_all: Option<u32>,
    value: Option<u32>,
}

impl Node {
    fn new() -> Self {
        Node {
            statics: Statics::Few(Vec::new()),
            param: None,
            catch_all: None,
            value: None,
        }
    }
}

/// One method's tree, in an arena.
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn new() -> Self {
        Tree {
            nodes: vec![Node::new()],
        }
    }

    /// Adds `rule` at the pattern unless a rule is already there (first one wins).
    /// Returns whether it was added.
    fn insert(&mut self, segments: &[Segment], rule: u32) -> bool {
        let mut at = 0u32;
        for seg in segments {
            let next = match seg {
                Segment::Static(s) => self.node(at).statics.get(s),
                Segment::Param => self.node(at).param,
                Segment::CatchAll => self.node(at).catch_all,
            };
            at = match next {
                Some(n) => n,
                None => {
                    let n = self.nodes.len() as u32;
                    self.nodes.push(Node::new());
                    let node = self.node_mut(at);
                    match seg {
                        Segment::Static(s) => node.statics.insert(s, n),
                        Segment::Param => node.param = Some(n),
                        Segment::CatchAll => node.catch_all = Some(n),
                    }
                    n
                }
            };
        }
        let node = self.node_mut(at);
        if node.value.is_some() {
            return false;
        }
        node.value = Some(rule);
        true
    }

    #[inline]
    fn lookup(&self, path: &str) -> Option<u32> {
        self.find(0, path.strip_prefix('/')?)
    }

    // Node ids are handed out by `insert` as it pushes the nodes (0 is the root,
    // made by `new`), so every id it stored indexes `nodes`.
    #[allow(clippy::indexing_slicing)]
    fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    #[allow(clippy::indexing_slicing)] // as for `node`
    fn node_mut(&mut self, id: u32) -> &mut Node {
        &mut self.nodes[id as usize]
    }

    /// `rest` is the path after the `/` that opens the current segment.
    fn find(&self, node: u32, rest: &str) -> Option<u32> {
        let n = &self.node(node);
        // A plain byte loop: segments are short, and `str::find` pays a searcher's
        // setup for each one.
        let (segment, tail) = match rest.bytes().position(|b| b == b'/') {
            Some(i) => (
                rest.get(..i).unwrap_or(rest),
                rest.get(i.saturating_add(1)..),
            ),
            None => (rest, None),
        };
        let descend = |child: u32| match tail {
            None => self.node(child).value,
            Some(t) => self.find(child, t),
        };
        if let Some(found) = n.statics.get(segment).and_then(descend) {
            return Some(found);
        }
        if !segment.is_empty()
            && let Some(found) = n.param.and_then(descend)
        {
            return Some(found);
        }
        match n.catch_all {
            Some(c) if !rest.is_empty() => self.node(c).value,
            _ => None,
        }
    }
}

/// A rule as the table needs it: its pattern and which methods it covers.
pub(crate) struct RouteSpec<'a> {
    pub pattern: &'a str,
    /// Indexes into [`METHODS`]; `None` means every method.
    pub methods: Option<&'a [usize]>,
}

pub(crate) struct RouteTable {
    by_method: Vec<Tree>,
    any_method: Tree,
}

impl RouteTable {
    /// Builds the per-method trees. Rules naming a method come first, then `GET`
    /// rules into `HEAD`, then rules for every method, each only where its method's
    /// tree has no rule for that pattern yet.
    // `by_method` has one tree per entry of `METHODS`, whose indices are all `m`,
    // `GET` and `HEAD` can be; `parsed` has one entry per spec.
    #[allow(clippy::indexing_slicing)]
    pub fn build(specs: &[RouteSpec<'_>]) -> Result<Self, String> {
        let parsed: Vec<Vec<Segment>> = specs
            .iter()
            .map(|s| parse_pattern(s.pattern).map_err(|e| format!("{}: {e}", s.pattern)))
            .collect::<Result<_, _>>()?;
        let mut by_method: Vec<Tree> = METHODS.iter().map(|_| Tree::new()).collect();
        let mut any_method = Tree::new();
        for (id, spec) in specs.iter().enumerate() {
            for &m in spec.methods.unwrap_or(&[]) {
                by_method[m].insert(&parsed[id], id as u32);
            }
        }
        for (id, spec) in specs.iter().enumerate() {
            if spec.methods.is_some_and(|ms| ms.contains(&GET)) {
                by_method[HEAD].insert(&parsed[id], id as u32);
            }
        }
        for (id, spec) in specs.iter().enumerate() {
            if spec.methods.is_none() {
                any_method.insert(&parsed[id], id as u32);
                for tree in &mut by_method {
                    tree.insert(&parsed[id], id as u32);
                }
            }
        }
        Ok(RouteTable {
            by_method,
            any_method,
        })
    }

    /// The rule for this request, if any pattern matches. `path` is matched as
    /// received (no percent-decoding), exactly as axum's router matches it.
    #[inline]
    pub fn lookup(&self, method: &str, path: &str) -> Option<u32> {
        let tree = match method_index(method).and_then(|i| self.by_method.get(i)) {
            Some(tree) => tree,
            None => &self.any_method,
        };
        tree.lookup(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(specs: &[(&str, Option<&[usize]>)]) -> RouteTable {
        let specs: Vec<RouteSpec> = specs
            .iter()
            .map(|(p, m)| RouteSpec {
                pattern: p,
                methods: *m,
            })
            .collect();
        RouteTable::build(&specs).unwrap()
    }

    #[test]
    fn method_index_agrees_with_the_table() {
        for (i, m) in METHODS.iter().enumerate() {
            assert_eq!(method_index(m), Some(i));
        }
        assert_eq!(method_index("get"), None, "methods are case-sensitive");
        assert_eq!(method_index("PROPFIND"), None);
    }

    #[test]
    fn most_specific_pattern_wins_per_method() {
        let t = table(&[
            ("/api/reports/{*rest}", Some(&[GET])),
            ("/api/reports/export", Some(&[2])),
            ("/healthz", None),
        ]);
        assert_eq!(t.lookup("POST", "/api/reports/export"), Some(1));
        // GET has no rule on the static path, so the catch-all governs it.
        assert_eq!(t.lookup("GET", "/api/reports/export"), Some(0));
        assert_eq!(
            t.lookup("HEAD", "/api/reports/q1"),
            Some(0),
            "GET covers HEAD"
        );
        assert_eq!(t.lookup("DELETE", "/api/reports/q1"), None);
        assert_eq!(t.lookup("PROPFIND", "/healthz"), Some(2));
        assert_eq!(t.lookup("PROPFIND", "/api/reports/x"), None);
        assert_eq!(t.lookup("GET", "healthz"), None, "a path starts with /");
    }

    #[test]
    fn named_method_beats_every_method_rule_on_the_same_path() {
        let t = table(&[("/x", None), ("/x", Some(&[2]))]);
        assert_eq!(t.lookup("POST", "/x"), Some(1));
        assert_eq!(t.lookup("GET", "/x"), Some(0));
    }

    #[test]
    fn backtracks_from_a_static_dead_end_to_a_parameter() {
        let t = table(&[
            ("/a/{id}/x", None),
            ("/a/b/y", None),
            ("/c/fixed", None),
            ("/c/{*rest}", None),
        ]);
        assert_eq!(t.lookup("GET", "/a/b/x"), Some(0));
        assert_eq!(t.lookup("GET", "/a/b/y"), Some(1));
        assert_eq!(t.lookup("GET", "/c/fixed/more"), Some(3));
        assert_eq!(t.lookup("GET", "/c/fixed"), Some(2));
        assert_eq!(
            t.lookup("GET", "/c/"),
            None,
            "a catch-all needs at least one character"
        );
        assert_eq!(t.lookup("GET", "/a//x"), None, "a parameter is never empty");
    }

    #[test]
    fn patterns_are_whole_segments_with_escaped_braces() {
        assert_eq!(
            parse_pattern("/{{x}}/{id}").unwrap(),
            vec![Segment::Static("{x}".into()), Segment::Param]
        );
        assert!(
            parse_pattern("/img-{id}.png")
                .unwrap_err()
                .contains("whole segment")
        );
        assert!(
            parse_pattern("/{*rest}/x")
                .unwrap_err()
                .contains("must come last")
        );
        assert!(parse_pattern("x").is_err());
        let t = table(&[("/{{x}}", None)]);
        assert_eq!(t.lookup("GET", "/{x}"), Some(0));
    }

    /// Random whole-segment patterns that matchit accepts together, and random paths.
    fn patterns_and_paths() -> impl Strategy<Value = (Vec<String>, Vec<String>)> {
        let seg = prop_oneof![Just("a"), Just("b"), Just("c"), Just("{p}"), Just("")];
        let pattern = (prop::collection::vec(seg, 1..4), any::<bool>()).prop_map(|(segs, rest)| {
            let mut p = format!("/{}", segs.join("/"));
            if rest {
                p.push_str("/{*rest}");
            }
            p
        });
        let path_seg = prop_oneof![Just("a"), Just("b"), Just("c"), Just("zz"), Just("")];
        let path = prop::collection::vec(path_seg, 1..6).prop_map(|s| format!("/{}", s.join("/")));
        (
            prop::collection::vec(pattern, 1..8),
            prop::collection::vec(path, 1..12),
        )
    }

    proptest! {
        #[test]
        fn lookup_agrees_with_matchit((patterns, paths) in patterns_and_paths()) {
            let mut reference = matchit::Router::new();
            let mut kept: Vec<String> = Vec::new();
            for p in patterns {
                if !kept.contains(&p) && reference.insert(p.as_str(), kept.len()).is_ok() {
                    kept.push(p);
                }
            }
            let specs: Vec<RouteSpec> = kept.iter().map(|p| RouteSpec { pattern: p, methods: None }).collect();
            let ours = RouteTable::build(&specs).unwrap();
            for path in &paths {
                let theirs = reference.at(path).ok().map(|m| *m.value as u32);
                prop_assert_eq!(ours.lookup("GET", path), theirs, "{} with {:?}", path, kept);
            }
        }
    }
}
