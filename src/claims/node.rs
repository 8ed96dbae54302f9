//! A JSON value that borrows its strings from the payload: what a claims mapping
//! reads. A token's first request under a mapping parses the members the mapping
//! points into; as `serde_json::Value`s that is one allocation per key and per
//! string, as `Node`s one per object or array (keys and strings without escapes
//! are borrowed). Measured on the `added/alone_miss_preset` benchmark.
//!
//! Numbers read the same whatever serde_json features are on: under
//! `arbitrary_precision` they arrive as a one-member map holding their text, which
//! is read back here, and refused beyond `f64`'s range as the parser refuses them
//! without the feature.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::key::Key;

/// The member name serde_json gives a number under `arbitrary_precision`.
pub(crate) const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// The error for a number beyond `f64`'s range, as the parser gives it without
/// `arbitrary_precision`.
pub(crate) const OUT_OF_RANGE: &str = "number out of range";

/// A JSON value with borrowed strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Members in document order (a repeated name is the reader's to refuse).
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    /// A `Value` seen as a node, borrowing its strings.
    pub(crate) fn of(v: &'a Value) -> Node<'a> {
        match v {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => Node::Number(n.clone()),
            Value::String(s) => Node::Str(Cow::Borrowed(s)),
            Value::Array(items) => Node::Array(items.iter().map(Node::of).collect()),
            Value::Object(o) => Node::Object(
                o.iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Node::of(v)))
                    .collect(),
            ),
        }
    }

    /// The node as a `Value` (for `explain`'s "read from" lines).
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::Str(s) => Value::String(s.clone().into_owned()),
            Node::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone().into_owned(), v.to_value()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }

    /// The member called `name` (the last, if repeated), when this is an object.
    pub(crate) fn get(&self, name: &str) -> Option<&Node<'a>> {
        match self {
            Node::Object(members) => members
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node<'de>, E> {
        Number::from_f64(v)
            .map(Node::Number)
            .ok_or_else(|| E::custom(OUT_OF_RANGE))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut members = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if members.is_empty() && key == NUMBER_TOKEN {
                let text: Cow<'de, str> = map.next_value::<Key<'de>>()?.0;
                return text
                    .parse::<Number>()
                    .ok()
                    .filter(|n| n.as_f64().is_some_and(f64::is_finite))
                    .map(Node::Number)
                    .ok_or_else(|| de::Error::custom(OUT_OF_RANGE));
            }
            members.push((key, map.next_value()?));
        }
        Ok(Node::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_as_value_reads_and_borrows_plain_strings() {
        let text = r#"{"a": [1, -2, 1.5, "x\ny", null, true], "b": {"c": "plain"}}"#;
        let node: Node<'_> = serde_json::from_str(text).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(node.to_value(), value);
        assert_eq!(Node::of(&value).to_value(), value);
        let Some(Node::Str(Cow::Borrowed(s))) = node.get("b").and_then(|b| b.get("c")) else {
            panic!("not borrowed: {node:?}");
        };
        assert_eq!(*s, "plain");
        assert!(serde_json::from_str::<Node<'_>>("1e400").is_err());
        assert_eq!(Node::of(&json!(null)), Node::Null);
    }
}
