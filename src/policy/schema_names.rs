//! The schema of values the policy names by pattern or from a fixed list (plan
//! and feature names, HTTP methods, claims presets): what the parser's types point
//! their `schemars(with = …)` at. Apart from [`super::schema`] so that the parser's
//! types (`model`) and the schema built from them do not use each other.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::claims::PRESETS;

/// Names of plans, features, roles and limits: letters, digits and `. _ - :`.
pub(crate) const NAME_PATTERN: &str = "^[A-Za-z0-9._:-]+$";

/// A plan, feature, role or limit name.
pub(crate) struct Name;

impl JsonSchema for Name {
    fn schema_name() -> Cow<'static, str> {
        "Name".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": NAME_PATTERN,
            "description": "A name: letters, digits and . _ - :",
            "examples": ["pro", "reports.export"]
        })
    }
}

/// An HTTP method a route lists.
pub(crate) struct Method;

impl JsonSchema for Method {
    fn schema_name() -> Cow<'static, str> {
        "Method".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"]
        })
    }
}

/// A claims preset's name.
pub(crate) struct Preset;

impl JsonSchema for Preset {
    fn schema_name() -> Cow<'static, str> {
        "Preset".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "enum": PRESETS })
    }
}
