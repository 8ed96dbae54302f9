//! The route table: method + path → the rule that governs it.
//!
//! One [`matchit`] router per HTTP method (plus one for rules without `methods`),
//! so a lookup is a single radix-tree walk whatever the number of routes, and the
//! most specific pattern wins: static > `{param}` > `{*rest}`. A rule that names
//! the method beats a rule without `methods` on the same path; `GET` rules also
//! answer `HEAD` unless a `HEAD` rule exists for that path (as axum does).

use matchit::Router;

/// The methods with a router of their own; any other method only sees rules
/// without a `methods` list.
pub(crate) const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

const HEAD: usize = 1;
const GET: usize = 0;

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

/// A rule as the table needs it: its pattern and which methods it covers.
pub(crate) struct RouteSpec<'a> {
    pub pattern: &'a str,
    /// Indexes into [`METHODS`]; `None` means every method.
    pub methods: Option<&'a [usize]>,
}

pub(crate) struct RouteTable {
    by_method: Vec<Router<u32>>,
    any_method: Router<u32>,
}

impl RouteTable {
    /// Builds the per-method routers. Patterns must already have been checked to
    /// coexist in one router (validation does that, with located errors).
    pub fn build(specs: &[RouteSpec<'_>]) -> Result<Self, String> {
        let mut by_method: Vec<Router<u32>> = METHODS.iter().map(|_| Router::new()).collect();
        let mut taken: Vec<std::collections::HashSet<&str>> =
            METHODS.iter().map(|_| Default::default()).collect();
        let mut any_method = Router::new();

        // Pass 1: rules that name their methods. Pass 2: GET rules into HEAD where HEAD is free.
        // Pass 3: rules for every method, where the method's router has no rule on that path.
        for (id, spec) in specs.iter().enumerate() {
            if let Some(ms) = spec.methods {
                for &m in ms {
                    if taken[m].insert(spec.pattern) {
                        by_method[m]
                            .insert(spec.pattern, id as u32)
                            .map_err(|e| format!("{}: {e}", spec.pattern))?;
                    }
                }
            }
        }
        for (id, spec) in specs.iter().enumerate() {
            if spec.methods.is_some_and(|ms| ms.contains(&GET)) && taken[HEAD].insert(spec.pattern)
            {
                by_method[HEAD]
                    .insert(spec.pattern, id as u32)
                    .map_err(|e| format!("{}: {e}", spec.pattern))?;
            }
        }
        for (id, spec) in specs.iter().enumerate() {
            if spec.methods.is_none() {
                any_method
                    .insert(spec.pattern, id as u32)
                    .map_err(|e| format!("{}: {e}", spec.pattern))?;
                for m in 0..METHODS.len() {
                    if taken[m].insert(spec.pattern) {
                        by_method[m]
                            .insert(spec.pattern, id as u32)
                            .map_err(|e| format!("{}: {e}", spec.pattern))?;
                    }
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
        let router = match method_index(method) {
            Some(i) => &self.by_method[i],
            None => &self.any_method,
        };
        router.at(path).ok().map(|m| *m.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn named_method_beats_every_method_rule_on_the_same_path() {
        let t = table(&[("/x", None), ("/x", Some(&[2]))]);
        assert_eq!(t.lookup("POST", "/x"), Some(1));
        assert_eq!(t.lookup("GET", "/x"), Some(0));
    }
}
