//! The JSON Schema (draft 2020-12) of the policy language, for editors: derived
//! with `schemars` from the parser's own types in [`super::model`], so the two
//! cannot drift. The types the parser reads with a hand-written visitor (names,
//! ordered maps, conditions, limits, claim sources) describe themselves here, in
//! the same words as the parser's errors.
//!
//! ```text
//! tiergate schema > tiergate-policy.schema.json
//! # yaml-language-server: $schema=./tiergate-policy.schema.json   (first line of a policy)
//! ```

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

use super::model::{Condition, LimitValue, OrderedMap, PolicyDoc, SourceDoc};
use super::schema_names::{NAME_PATTERN, Name};

/// The schema of a policy file, as JSON.
pub(crate) fn policy_schema() -> Value {
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<PolicyDoc>();
    schema.insert("title".into(), "tiergate policy (version 1)".into());
    schema.insert(
        "description".into(),
        "What each subscription plan, role, trial and seat count may do. Reference: docs/policy.md."
            .into(),
    );
    schema.to_value()
}

impl<V: JsonSchema> JsonSchema for OrderedMap<V> {
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["object", "null"],
            "propertyNames": { "pattern": NAME_PATTERN },
            "additionalProperties": generator.subschema_for::<V>()
        })
    }
}

impl JsonSchema for LimitValue {
    fn schema_name() -> Cow<'static, str> {
        "Limit".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A whole number, or `unlimited`.",
            "oneOf": [
                { "type": "integer", "minimum": 0 },
                { "const": "unlimited" }
            ],
            "examples": [10, "unlimited"]
        })
    }
}

impl JsonSchema for Condition {
    fn schema_name() -> Cow<'static, str> {
        "Condition".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let me = generator.subschema_for::<Condition>();
        let name = generator.subschema_for::<Name>();
        let names = json_schema!({ "oneOf": [name, { "type": "array", "items": name }] });
        let one = |key: &str, value: Schema, description: &str, example: Value| {
            let mut value = value;
            value.insert("examples".into(), Value::Array(vec![example]));
            value.insert("description".into(), description.into());
            json_schema!({
                "type": "object",
                "properties": { key: value },
                "required": [key],
                "additionalProperties": false,
                "description": description
            })
        };
        use serde_json::json;
        json_schema!({
            "description": "A feature name, or a mapping with exactly one key; combine with `all` / `any` / `not`.",
            "oneOf": [
                json_schema!({ "allOf": [name], "description": "The caller has this feature now." }),
                one("feature", name.clone(), "The caller has this feature now.", json!("reports.export")),
                one("plan", names.clone(), "The effective plan is one of these.", json!(["team", "agency"])),
                one("plan_at_least", name.clone(), "The effective plan is this one or above, in tier order.", json!("pro")),
                one("role", names, "The caller has one of these roles.", json!("admin")),
                one("trial", json_schema!({ "enum": ["active", "expired", "none"] }), "The caller's trial is in this state.", json!("active")),
                one("seats", json_schema!({
                    "type": "object",
                    "properties": { "at_least": { "type": "integer", "minimum": 0, "examples": [2], "description": "The smallest seat count that satisfies it." } },
                    "required": ["at_least"],
                    "additionalProperties": false
                }), "The seats claim is at least this.", json!({ "at_least": 2 })),
                one("all", json_schema!({ "type": "array", "items": me.clone() }), "Every condition holds.", json!(["members.invite", { "role": "admin" }])),
                one("any", json_schema!({ "type": "array", "items": me.clone() }), "At least one holds.", json!([{ "plan": "enterprise" }, { "role": "admin" }])),
                one("not", me, "The condition does not hold.", json!({ "plan": "enterprise" }))
            ],
            "examples": ["reports.export", { "all": ["members.invite", { "role": "admin" }] }]
        })
    }
}

impl JsonSchema for SourceDoc {
    fn schema_name() -> Cow<'static, str> {
        "ClaimSource".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let pointer = json_schema!({
            "type": "string",
            "pattern": "^(/([^~/]|~[01])*)+$",
            "description": "A JSON Pointer (RFC 6901): `~1` for `/` and `~0` for `~` inside a name."
        });
        let pointers = json_schema!({ "oneOf": [pointer.clone(), { "type": "array", "items": pointer.clone() }] });
        json_schema!({
            "oneOf": [
                pointer,
                { "type": "array", "items": pointer },
                {
                    "type": "object",
                    "properties": {
                        "from": { "allOf": [pointers], "description": "The pointer(s) to read: tried in order for one value, united for a list.", "examples": ["/pla", ["/realm_access/roles", "/roles"]] },
                        "split": { "type": "string", "minLength": 1, "description": "Split a string on this separator.", "examples": [","] },
                        "prefix": { "type": "string", "description": "Keep entries that start with this, and strip it.", "examples": ["o:"] },
                        "field": { "type": "string", "description": "Take this member of each object (with keys: keep keys whose member is true).", "examples": ["key"] },
                        "keys": { "type": "boolean", "description": "Take an object's keys.", "examples": [true] },
                        "map": { "type": "object", "additionalProperties": { "type": "string" }, "description": "Rename entries; others are dropped.", "examples": [{ "Plan.Pro": "pro" }] }
                    },
                    "required": ["from"],
                    "additionalProperties": false
                }
            ],
            "examples": ["/custom:plan", { "from": "/pla", "split": ",", "prefix": "o:" }]
        })
    }
}
