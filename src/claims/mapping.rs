//! Where each subscription claim is in a token from a given identity provider.
//!
//! Every provider lays the claims out differently: Clerk packs plans into
//! `"pla": "u:free,o:pro"`, Keycloak nests roles under `realm_access`, Cognito
//! prefixes `custom:`. A [`ClaimsMapping`] says, for each of `plan`, `roles`,
//! `seats`, `trial_ends` and `features`, which JSON Pointers (RFC 6901) to read and
//! how to turn what is there into names. It is written in the policy's `claims:`
//! section (see `docs/identity-providers.md`) or taken from a preset
//! ([`ClaimsMapping::preset`]).
//!
//! ```
//! use tiergate::ClaimsMapping;
//! use serde_json::json;
//!
//! let clerk = ClaimsMapping::preset("clerk", &[])?;
//! let payload = json!({ "sub": "user_2x", "pla": "u:free,o:pro", "fea": "o:sso,o:audit_log",
//!                       "o": { "id": "org_1", "rol": "admin" } });
//! let claims = clerk.read(&payload);
//! assert_eq!(claims.plan(), Some("pro"));
//! assert_eq!(claims.roles().collect::<Vec<_>>(), ["admin"]);
//! assert_eq!(claims.features().collect::<Vec<_>>(), ["sso", "audit_log"]);
//! // Plain data: printed in the policy file's own syntax.
//! assert!(clerk.to_string().contains(r#"plan: { from: /pla, split: ",", prefix: "o:" }"#));
//! # Ok::<(), tiergate::PresetError>(())
//! ```
//!
//! Reading never fails. A pointer that leads nowhere (or to `null`) is absent and the
//! next one is tried; a value of the wrong type makes the claim *malformed*, which
//! counts as absent and is named in the decision's notes, as for the default layout.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};
use smallvec::SmallVec;

use super::members::{MemberValue, parse_seats, parse_trial_ends};
use super::model::{Claim, Claims, Name, Names};
use super::node::Node;

/// How to read each subscription claim from a token's payload.
#[derive(Debug, Clone)]
pub struct ClaimsMapping {
    /// Names this mapping's content in this process (a clone keeps it; a change
    /// gets a new one), so a verified token remembers which mapping read its claims.
    pub(crate) id: u64,
    pub(crate) plan: Source,
    pub(crate) roles: Source,
    pub(crate) seats: Source,
    pub(crate) trial_ends: Source,
    pub(crate) features: Source,
}

/// Equal when they read the same claims from the same places.
impl PartialEq for ClaimsMapping {
    fn eq(&self, other: &Self) -> bool {
        self.sources() == other.sources()
    }
}

impl Eq for ClaimsMapping {}

fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Where one claim comes from, and the steps that turn what is there into names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Source {
    /// JSON Pointers, tried in order for a single value, united for a list.
    pub from: Vec<Pointer>,
    /// Split a string on this separator (entries are trimmed; empty ones dropped).
    pub split: Option<String>,
    /// Keep only entries that start with this, and strip it.
    pub prefix: Option<String>,
    /// Take this member of each object in an array; with `keys`, keep only the keys
    /// whose value's member is `true` (feature-flag objects such as Kinde's).
    pub field: Option<String>,
    /// Take an object's keys (in sorted order).
    pub keys: bool,
    /// Rename entries; entries the map does not name are dropped.
    pub map: Option<Vec<(String, String)>>,
}

/// A JSON Pointer, with its segments unescaped once when it is made (not on every
/// read: a token's first request under a mapping walks every pointer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pointer {
    text: String,
    pub(crate) segments: Box<[Box<str>]>,
}

impl Pointer {
    pub(crate) fn new(text: impl Into<String>) -> Pointer {
        let text = text.into();
        let segments = segments(&text)
            .map(|s| s.into_owned().into_boxed_str())
            .collect();
        Pointer { text, segments }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    fn first(&self) -> Option<&str> {
        self.segments.first().map(|s| &**s)
    }
}

/// The claims a [`ClaimsMapping`] names, in the order `explain` shows them.
pub(crate) const MAPPED: [&str; 5] = ["plan", "roles", "seats", "trial_ends", "features"];

/// Where one claim was read from: the pointer that gave it and the raw value there.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadFrom {
    /// `plan`, `roles`, `seats`, `trial_ends` or `features`.
    pub claim: &'static str,
    /// The JSON Pointer.
    pub pointer: String,
    /// The value at that pointer, before the mapping's steps.
    pub raw: Value,
}

/// Escapes a member name for use in a JSON Pointer (RFC 6901: `~` → `~0`, `/` → `~1`).
pub fn pointer_escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Whether `p` is a JSON Pointer: empty, or `/` segments in which every `~` is
/// followed by `0` or `1`. On failure, what is wrong with it.
pub(crate) fn check_pointer(p: &str) -> Result<(), &'static str> {
    if !p.is_empty() && !p.starts_with('/') {
        return Err("a JSON Pointer starts with `/`");
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err("in a JSON Pointer `~` is written `~0` and `/` inside a name `~1`");
        }
    }
    Ok(())
}

/// A source reading these pointers as they are.
pub(crate) fn src(from: &[&str]) -> Source {
    Source {
        from: from.iter().map(|s| Pointer::new(*s)).collect(),
        ..Source::default()
    }
}

impl Source {
    pub(crate) fn split(mut self, sep: &str) -> Source {
        self.split = Some(sep.to_owned());
        self
    }
    pub(crate) fn prefix(mut self, prefix: &str) -> Source {
        self.prefix = Some(prefix.to_owned());
        self
    }
    pub(crate) fn field(mut self, field: &str) -> Source {
        self.field = Some(field.to_owned());
        self
    }
    pub(crate) fn keys(mut self) -> Source {
        self.keys = true;
        self
    }

    /// Whether the value at a pointer is used as it is (no steps).
    fn is_plain(&self) -> bool {
        self.split.is_none()
            && self.prefix.is_none()
            && self.field.is_none()
            && !self.keys
            && self.map.is_none()
    }

    /// The entries `v` yields after the steps, or `Err` when `v` has a type the
    /// steps cannot read (a number where names belong, an object without `keys`).
    fn entries<'v>(&'v self, v: &'v Node<'_>, out: &mut SmallVec<[&'v str; 4]>) -> Result<(), ()> {
        let start = out.len();
        let push = |s: &'v str, out: &mut SmallVec<[&'v str; 4]>| match &self.split {
            Some(sep) => out.extend(
                s.split(sep.as_str())
                    .map(str::trim)
                    .filter(|e| !e.is_empty()),
            ),
            None if !s.trim().is_empty() => out.push(s.trim()),
            None => {}
        };
        match v {
            Node::Str(s) if self.field.is_none() && !self.keys => push(s, out),
            Node::Array(items) if !self.keys => {
                for item in items {
                    match (item, &self.field) {
                        (Node::Str(s), None) => push(s, out),
                        (object @ Node::Object(_), Some(f)) => match object.get(f) {
                            Some(Node::Str(s)) => push(s, out),
                            Some(Node::Null) | None => {}
                            Some(_) => return Err(()),
                        },
                        _ => return Err(()),
                    }
                }
            }
            Node::Object(members) if self.keys => {
                for (k, member) in members {
                    let keep = match &self.field {
                        None => true,
                        Some(f) => member.get(f) == Some(&Node::Bool(true)),
                    };
                    if keep {
                        push(k, out);
                    }
                }
                // In sorted order, not the token's: which key a single value takes
                // (and the list's order) must not depend on how the issuer ordered
                // the members, or on serde_json's `preserve_order`.
                if let Some(added) = out.get_mut(start..) {
                    added.sort_unstable();
                }
            }
            _ => return Err(()),
        }
        // The prefix and the map, in place over what this value added.
        let mut kept = start;
        for i in start..out.len() {
            let Some(&entry) = out.get(i) else { break };
            let entry = match &self.prefix {
                Some(p) => match entry.strip_prefix(p.as_str()) {
                    Some(rest) if !rest.is_empty() => rest,
                    _ => continue,
                },
                None => entry,
            };
            let entry = match &self.map {
                Some(map) => match map.iter().find(|(from, _)| from == entry) {
                    Some((_, to)) => to.as_str(),
                    None => continue,
                },
                None => entry,
            };
            if let Some(slot) = out.get_mut(kept) {
                *slot = entry;
            }
            kept = kept.saturating_add(1);
        }
        out.truncate(kept);
        Ok(())
    }
}

/// What one claim's source gave.
enum Found<'v> {
    Absent,
    /// The value at a pointer, used as it is (a plain single-value source).
    Raw(&'v Node<'v>),
    Names(SmallVec<[&'v str; 4]>),
    WrongType,
}

impl ClaimsMapping {
    /// The reference server's layout: the claims in a nested `claims` object
    /// (`preset: tiergate`, the default).
    pub fn tiergate() -> ClaimsMapping {
        ClaimsMapping {
            id: next_id(),
            plan: src(&["/claims/plan"]),
            roles: src(&["/claims/role", "/claims/roles"]),
            seats: src(&["/claims/seats"]),
            trial_ends: src(&["/claims/trial_ends"]),
            features: src(&["/claims/features"]),
        }
    }

    /// Reads the claims from a token payload (empty claims when it is not an object).
    pub fn read(&self, payload: &Value) -> Claims {
        self.read_explained(payload).0
    }

    /// [`read`](Self::read), and where each claim was found (for `tiergate explain`).
    pub fn read_explained(&self, payload: &Value) -> (Claims, Vec<ReadFrom>) {
        let mut from = Vec::new();
        let claims = match payload {
            Value::Object(map) => self.read_members(&self.kept(map), Some(&mut from)),
            _ => Claims::default(),
        };
        (claims, from)
    }

    /// [`read`](Self::read) for a payload already parsed as an object (a verified
    /// token's [`payload`](crate::token::VerifiedToken::payload)).
    pub fn read_object(&self, payload: &Map<String, Value>) -> Claims {
        self.read_members(&self.kept(payload), None)
    }

    /// The members of `payload` that the pointers start at, as nodes.
    fn kept<'v>(&self, payload: &'v Map<String, Value>) -> Vec<(Cow<'v, str>, Node<'v>)> {
        let wanted = Needed::of(self);
        payload
            .iter()
            .filter(|(k, _)| wanted.wants(k))
            .map(|(k, v)| (Cow::Borrowed(k.as_str()), Node::of(v)))
            .collect()
    }

    /// Reads the claims from a payload's kept members (see `Needed`), noting in
    /// `from` where each was found.
    pub(crate) fn read_members(
        &self,
        payload: &[(Cow<'_, str>, Node<'_>)],
        mut from: Option<&mut Vec<ReadFrom>>,
    ) -> Claims {
        let from = &mut from;
        let plan = match self.find(&self.plan, "plan", payload, true, from) {
            Found::Absent => Claim::Absent,
            Found::Raw(Node::Str(s)) => plan_name(s),
            Found::Names(n) => n.first().map_or(Claim::Absent, |s| plan_name(s)),
            Found::Raw(_) | Found::WrongType => Claim::Malformed,
        };
        let seats = self.single(&self.seats, "seats", payload, from, |v| parse_seats(v));
        let trial_ends = self.single(&self.trial_ends, "trial_ends", payload, from, |v| {
            parse_trial_ends(v)
        });
        Claims {
            plan,
            seats,
            trial_ends,
            roles: self.list(&self.roles, "roles", payload, from),
            features: self.list(&self.features, "features", payload, from),
            custom: Map::new(),
        }
    }

    fn single<T>(
        &self,
        source: &Source,
        claim: &'static str,
        payload: &[(Cow<'_, str>, Node<'_>)],
        from: &mut Option<&mut Vec<ReadFrom>>,
        parse: fn(MemberValue<'_>) -> Option<T>,
    ) -> Claim<T> {
        let read = match self.find(source, claim, payload, true, from) {
            Found::Absent => return Claim::Absent,
            Found::Raw(Node::Str(s)) => parse(MemberValue::Str(s)),
            Found::Raw(Node::Number(n)) => parse(MemberValue::Json(&Value::Number(n.clone()))),
            Found::Names(n) => n.first().and_then(|s| parse(MemberValue::Str(s))),
            Found::Raw(_) | Found::WrongType => None,
        };
        read.map_or(Claim::Malformed, Claim::Valid)
    }

    fn list(
        &self,
        source: &Source,
        claim: &'static str,
        payload: &[(Cow<'_, str>, Node<'_>)],
        from: &mut Option<&mut Vec<ReadFrom>>,
    ) -> Claim<Names> {
        match self.find(source, claim, payload, false, from) {
            Found::Absent => Claim::Absent,
            Found::Names(n) => {
                let mut names = Names::new();
                for s in n {
                    if !names.iter().any(|have| have == s) {
                        names.push(Name::new(s));
                    }
                }
                Claim::Valid(names)
            }
            Found::Raw(_) | Found::WrongType => Claim::Malformed,
        }
    }

    /// The first pointer's value that gives something (`single`), or the union of
    /// every pointer's entries. A wrong type anywhere makes a list claim malformed:
    /// keeping the readable half could grant more than the token's author meant.
    fn find<'v>(
        &self,
        source: &'v Source,
        claim: &'static str,
        payload: &'v [(Cow<'v, str>, Node<'v>)],
        single: bool,
        from: &mut Option<&mut Vec<ReadFrom>>,
    ) -> Found<'v> {
        let mut names: SmallVec<[&'v str; 4]> = SmallVec::new();
        let mut wrong = false;
        for pointer in &source.from {
            let Some(v) = at_pointer(payload, pointer).filter(|v| !v.is_null()) else {
                continue;
            };
            if let Some(from) = from.as_deref_mut() {
                from.push(ReadFrom {
                    claim,
                    pointer: pointer.text.clone(),
                    raw: v.to_value(),
                });
            }
            if single && source.is_plain() && !matches!(v, Node::Array(_)) {
                return Found::Raw(v);
            }
            let before = names.len();
            if source.entries(v, &mut names).is_err() {
                if single {
                    return Found::WrongType;
                }
                wrong = true;
            }
            if single && names.len() > before {
                names.drain(..before);
                names.truncate(1);
                return Found::Names(names);
            }
        }
        if wrong {
            Found::WrongType
        } else if names.is_empty() {
            Found::Absent
        } else {
            Found::Names(names)
        }
    }
}

/// The payload members some pointer of the mapping starts at (their names,
/// unescaped): what a read keeps; the others are skipped unparsed.
struct Needed<'m>(SmallVec<[&'m str; 8]>);

impl<'m> Needed<'m> {
    fn of(mapping: &'m ClaimsMapping) -> Needed<'m> {
        let mut names: SmallVec<[&'m str; 8]> = SmallVec::new();
        for p in mapping.sources().into_iter().flat_map(|s| &s.from) {
            if let Some(first) = p.first().filter(|f| !names.contains(f)) {
                names.push(first);
            }
        }
        Needed(names)
    }

    fn wants(&self, key: &str) -> bool {
        self.0.contains(&key)
    }
}

impl ClaimsMapping {
    /// The payload members its pointers start at (what the payload reader keeps).
    pub(crate) fn members(&self) -> SmallVec<[&str; 8]> {
        Needed::of(self).0
    }
}

/// A JSON Pointer's segments, unescaped (`~1` → `/`, then `~0` → `~`); none for a
/// string that does not start with `/`.
fn segments(pointer: &str) -> impl Iterator<Item = Cow<'_, str>> {
    pointer
        .strip_prefix('/')
        .into_iter()
        .flat_map(|rest| rest.split('/'))
        .map(|s| {
            if s.contains('~') {
                Cow::Owned(s.replace("~1", "/").replace("~0", "~"))
            } else {
                Cow::Borrowed(s)
            }
        })
}

/// The value at a JSON Pointer in an object (RFC 6901; array members by index).
/// Written here rather than serde_json's `Value::pointer`, which allocates a
/// string per segment: this allocates only for a segment with `~` in it.
fn at_pointer<'v>(root: &'v [(Cow<'v, str>, Node<'v>)], pointer: &Pointer) -> Option<&'v Node<'v>> {
    let mut segments = pointer.segments.iter();
    let first = &**segments.next()?;
    let mut here = root.iter().find(|(k, _)| k == first).map(|(_, v)| v)?;
    for segment in segments {
        let segment = &**segment;
        here = match here {
            object @ Node::Object(_) => object.get(segment)?,
            Node::Array(items) => {
                let canonical = segment == "0" || !segment.starts_with(['0', '+']);
                items.get(segment.parse::<usize>().ok().filter(|_| canonical)?)?
            }
            _ => return None,
        };
    }
    Some(here)
}

fn plan_name(s: &str) -> Claim<Name> {
    if s.trim().is_empty() {
        Claim::Malformed
    } else {
        Claim::Valid(Name::new(s.trim()))
    }
}

/// A string as a YAML flow scalar: plain when that reads back the same, else quoted.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_.~-".contains(c) || c == ':')
        && !s.ends_with(':')
        && !s.contains(": ")
        && !s.starts_with(['-', ':', '.', '~'])
        && !matches!(s, "true" | "false" | "null" | "yes" | "no");
    if plain {
        s.to_owned()
    } else {
        Value::String(s.to_owned()).to_string()
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = match self.from.as_slice() {
            [one] => scalar(one.as_str()),
            many => format!(
                "[{}]",
                many.iter()
                    .map(|p| scalar(p.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        if self.is_plain() {
            return f.write_str(&from);
        }
        let mut parts = vec![format!("from: {from}")];
        if let Some(s) = &self.split {
            parts.push(format!("split: {}", Value::String(s.clone())));
        }
        if let Some(p) = &self.prefix {
            parts.push(format!("prefix: {}", Value::String(p.clone())));
        }
        if let Some(x) = &self.field {
            parts.push(format!("field: {}", scalar(x)));
        }
        if self.keys {
            parts.push("keys: true".to_owned());
        }
        if let Some(map) = &self.map {
            let pairs: Vec<String> = map
                .iter()
                .map(|(a, b)| format!("{}: {}", scalar(a), scalar(b)))
                .collect();
            parts.push(format!("map: {{ {} }}", pairs.join(", ")));
        }
        write!(f, "{{ {} }}", parts.join(", "))
    }
}

/// The mapping in the policy file's `claims:` syntax, one claim per line.
impl fmt::Display for ClaimsMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, source) in MAPPED.iter().zip(self.sources()) {
            if !source.from.is_empty() {
                writeln!(f, "{name}: {source}")?;
            }
        }
        Ok(())
    }
}

impl ClaimsMapping {
    pub(crate) fn sources(&self) -> [&Source; 5] {
        [
            &self.plan,
            &self.roles,
            &self.seats,
            &self.trial_ends,
            &self.features,
        ]
    }

    pub(crate) fn sources_mut(&mut self) -> [&mut Source; 5] {
        self.id = next_id();
        [
            &mut self.plan,
            &mut self.roles,
            &mut self.seats,
            &mut self.trial_ends,
            &mut self.features,
        ]
    }

    /// A mapping with no sources (every claim absent), to fill in claim by claim.
    pub(crate) fn empty() -> ClaimsMapping {
        ClaimsMapping {
            id: next_id(),
            plan: Source::default(),
            roles: Source::default(),
            seats: Source::default(),
            trial_ends: Source::default(),
            features: Source::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::{Notes, PRESETS, PresetError};
    use serde_json::json;

    fn one(from: &str) -> ClaimsMapping {
        let mut m = ClaimsMapping::empty();
        m.plan = src(&[from]);
        m
    }

    #[test]
    fn pointers_unescape_tilde_and_slash_and_read_keys_with_colons_and_dots() {
        let payload = json!({
            "https://acme.com/plan": "pro",
            "a~b": { "c/d": "starter" },
            "cognito:groups": ["admin"],
            "app.meta": { "plan": "team" },
        });
        assert_eq!(
            one("/https:~1~1acme.com~1plan").read(&payload).plan(),
            Some("pro")
        );
        assert_eq!(one("/a~0b/c~1d").read(&payload).plan(), Some("starter"));
        assert_eq!(one("/app.meta/plan").read(&payload).plan(), Some("team"));
        let mut m = ClaimsMapping::empty();
        m.roles = src(&["/cognito:groups"]);
        assert_eq!(m.read(&payload).roles().collect::<Vec<_>>(), ["admin"]);
        assert_eq!(pointer_escape("https://a/~x"), "https:~1~1a~1~0x");
    }

    #[test]
    fn a_missing_path_is_absent_and_the_next_pointer_is_tried() {
        let mut m = ClaimsMapping::empty();
        m.plan = src(&["/nowhere/plan", "/app_metadata/plan"]);
        let c = m.read(&json!({ "app_metadata": { "plan": "pro" } }));
        assert_eq!(c.plan(), Some("pro"));
        let c = m.read(&json!({ "other": 1 }));
        assert_eq!(c.plan(), None);
        assert!(
            c.notes().is_empty(),
            "absent is not malformed: {:?}",
            c.notes()
        );
        // A pointer through a string (or past an array's end) leads nowhere.
        let c = one("/plan/x").read(&json!({ "plan": "pro" }));
        assert_eq!((c.plan(), c.notes().is_empty()), (None, true));
    }

    #[test]
    fn a_value_of_the_wrong_type_counts_as_absent_and_is_noted() {
        let c = one("/plan").read(&json!({ "plan": { "id": "pro" } }));
        assert_eq!(c.plan(), None);
        assert!(c.notes().contains(Notes::MALFORMED_PLAN));
        let mut m = ClaimsMapping::empty();
        m.roles = src(&["/groups"]);
        m.seats = src(&["/seats"]);
        m.features = src(&["/fea", "/more"]);
        let c =
            m.read(&json!({ "groups": ["admin", 7], "seats": "five", "fea": ["sso"], "more": 1 }));
        assert_eq!(
            c.roles().count(),
            0,
            "all or nothing, as for the default layout"
        );
        assert_eq!(c.seats(), None);
        assert_eq!(c.features().count(), 0);
        let notes = c.notes();
        assert!(notes.contains(Notes::MALFORMED_ROLE) && notes.contains(Notes::MALFORMED_SEATS));
        assert!(notes.contains(Notes::MALFORMED_FEATURES));
    }

    #[test]
    fn the_steps_split_filter_by_prefix_take_fields_and_keys_and_rename() {
        let payload = json!({
            "pla": "u:free, o:pro ,,",
            "roles": [{ "key": "admin" }, { "key": "member", "id": 1 }],
            "flags": { "sso": { "t": "b", "v": true }, "api": { "t": "b", "v": false } },
            "app_roles": ["Plan.Pro", "Role.Admin", "Other"],
            "zitadel": { "plan.pro": { "1": "acme" }, "admin": { "1": "acme" } },
        });
        let mut m = ClaimsMapping::empty();
        m.plan = src(&["/pla"]).split(",").prefix("o:");
        m.roles = src(&["/roles"]).field("key");
        m.features = src(&["/flags"]).keys().field("v");
        let c = m.read(&payload);
        assert_eq!(c.plan(), Some("pro"));
        assert_eq!(c.roles().collect::<Vec<_>>(), ["admin", "member"]);
        assert_eq!(c.features().collect::<Vec<_>>(), ["sso"]);

        let mut m = ClaimsMapping::empty();
        m.plan = src(&["/app_roles"]);
        m.plan.map = Some(vec![("Plan.Pro".into(), "pro".into())]);
        m.roles = src(&["/zitadel"]).keys();
        let c = m.read(&payload);
        assert_eq!(
            c.plan(),
            Some("pro"),
            "the first entry that survives the map"
        );
        let mut roles: Vec<_> = c.roles().collect();
        roles.sort_unstable(); // an object's key order depends on serde_json's features
        assert_eq!(roles, ["admin", "plan.pro"]);
    }

    #[test]
    fn a_single_value_takes_the_first_surviving_entry_of_the_first_pointer_that_has_one() {
        let mut m = ClaimsMapping::empty();
        m.plan = src(&["/a", "/b"]).prefix("Plan.");
        let c = m.read(&json!({ "a": ["Role.x"], "b": ["Plan.team", "Plan.pro"] }));
        assert_eq!(c.plan(), Some("team"));
        // Numbers stay numbers for the claims that take them.
        let mut m = ClaimsMapping::empty();
        m.seats = src(&["/seats"]);
        m.trial_ends = src(&["/trial"]);
        let c = m.read(&json!({ "seats": 5, "trial": 1_800_000_000 }));
        assert_eq!(c.seats(), Some(5));
        assert_eq!(c.trial_ends().map(|t| t.timestamp()), Some(1_800_000_000));
    }

    #[test]
    fn explained_reads_name_the_pointer_and_the_raw_value() {
        let m = ClaimsMapping::preset("cognito", &[]).unwrap();
        let (_, from) = m.read_explained(&json!({ "custom:plan": "pro", "cognito:groups": ["a"] }));
        assert_eq!(from.len(), 2);
        assert_eq!(
            (from[0].claim, from[0].pointer.as_str()),
            ("plan", "/custom:plan")
        );
        assert_eq!(from[0].raw, json!("pro"));
        assert_eq!(
            (from[1].claim, from[1].pointer.as_str()),
            ("roles", "/cognito:groups")
        );
    }

    #[test]
    fn presets_check_their_parameters() {
        assert!(matches!(
            ClaimsMapping::preset("auth0", &[]),
            Err(PresetError::Missing {
                parameter: "namespace",
                ..
            })
        ));
        assert!(matches!(
            ClaimsMapping::preset("clerk", &[("namespace", "x")]),
            Err(PresetError::Unexpected { .. })
        ));
        assert!(matches!(
            ClaimsMapping::preset("clerc", &[]),
            Err(PresetError::Unknown(_))
        ));
        for name in PRESETS {
            let params: &[(&str, &str)] = if name == "auth0" {
                &[("namespace", "https://acme.com/")]
            } else {
                &[]
            };
            let m = ClaimsMapping::preset(name, params).unwrap();
            for s in m.sources() {
                for p in &s.from {
                    let p = p.as_str();
                    assert!(check_pointer(p).is_ok() && !p.is_empty(), "{name}: {p}");
                }
            }
        }
    }

    #[test]
    fn reading_the_json_text_gives_what_reading_the_parsed_payload_gives() {
        let payloads = [
            json!({ "pla": "u:free,o:pro", "fea": "o:sso", "o": { "rol": "admin" }, "big": [1, 2, { "x": "y" }] }),
            json!({ "https://acme.com/plan": "pro", "https://acme.com/roles": ["member"] }),
            json!({ "a~b": { "c": 1 }, "claims": { "plan": "starter", "seats": "4" } }),
        ];
        let mut tilde = ClaimsMapping::empty();
        tilde.plan = src(&["/a~0b/c"]);
        let mappings = [
            ClaimsMapping::preset("clerk", &[]).unwrap(),
            ClaimsMapping::preset("auth0", &[("namespace", "https://acme.com/")]).unwrap(),
            ClaimsMapping::tiergate(),
            tilde,
        ];
        for m in &mappings {
            for p in &payloads {
                let text = p.to_string();
                assert_eq!(m.read_json(text.as_bytes()), m.read(p), "{m}\n{p}");
            }
        }
        // A member the mapping reads, given twice, is not read at all.
        let twice = br#"{"claims": {"plan": "free"}, "claims": {"plan": "pro"}}"#;
        assert_eq!(ClaimsMapping::tiergate().read_json(twice).plan(), None);
        assert_eq!(
            ClaimsMapping::tiergate().read_json(b"not json").plan(),
            None
        );
        assert_eq!(
            segments("/https:~1~1a~0b/x/~01").collect::<Vec<_>>(),
            ["https://a~b", "x", "~1"]
        );
        // Array members by canonical index only.
        let list = json!(["a", "b"]);
        let root = [(Cow::Borrowed("l"), Node::of(&list))];
        let b = Node::Str(Cow::Borrowed("b"));
        assert_eq!(at_pointer(&root, &Pointer::new("/l/1")), Some(&b));
        assert_eq!(at_pointer(&root, &Pointer::new("/l/01")), None);
        assert_eq!(at_pointer(&root, &Pointer::new("/l/2")), None);
    }

    #[test]
    fn check_pointer_refuses_what_rfc_6901_does() {
        assert!(check_pointer("/a/b~0~1").is_ok());
        assert!(check_pointer("plan").is_err());
        assert!(check_pointer("/a~2").is_err());
        assert!(check_pointer("/a~").is_err());
    }
}
