//! The policy file as written: serde types that mirror the YAML one to one.
//!
//! Every name a person types (plans, features, roles, paths) is kept as a
//! [`Spanned`] value so that validation can point at the exact line and column.
//! Nothing here checks meaning; that is [`super::validate`]'s job.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use super::suggest::did_you_mean;

/// Separates a message from its one-line fix inside serde's string-only errors;
/// [`super::parse`] splits on it again.
pub(crate) const HELP_MARKER: &str = " |help| ";

/// The whole policy file.
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyDoc {
    /// The policy language's version: `1`.
    #[cfg_attr(feature = "cli", schemars(with = "u64", extend("const" = 1), example = 1))]
    pub version: Spanned<u64>,
    /// The plans, lowest tier first: this order is the tier order (`plan_at_least`, upgrade hints).
    #[cfg_attr(feature = "cli", schemars(with = "OrderedMap<PlanDoc>", example = serde_json::json!({"free": {"features": ["dashboard"], "limits": {"projects": 3}}, "pro": {"extends": "free", "features": ["sso"], "limits": {"projects": "unlimited"}}})))]
    pub plans: Spanned<OrderedMap<PlanDoc>>,
    #[serde(default)]
    /// The plan of a caller whose token names no plan, or one this file does not know (default: the first plan).
    #[cfg_attr(
        feature = "cli",
        schemars(with = "Option<super::schema_names::Name>", example = &"free")
    )]
    pub default_plan: Option<Spanned<String>>,
    /// A free trial: while `trial_ends` is in the future the caller has this plan too.
    #[serde(default)]
    #[cfg_attr(feature = "cli", schemars(example = serde_json::json!({"plan": "pro"})))]
    pub trial: Option<TrialDoc>,
    /// Roles (from the token's `role`/`roles`) and the features each grants whatever the plan.
    #[serde(default)]
    #[cfg_attr(feature = "cli", schemars(example = serde_json::json!({"admin": {"features": ["billing"]}, "member": {}})))]
    pub roles: OrderedMap<RoleDoc>,
    /// Every feature used anywhere is declared here.
    #[serde(default)]
    #[cfg_attr(feature = "cli", schemars(example = serde_json::json!({"sso": {"description": "Single sign-on"}, "members.invite": {"when": {"seats": {"at_least": 2}}}})))]
    pub features: OrderedMap<FeatureDoc>,
    #[serde(default)]
    /// Routes and what they require; the most specific match wins (static > `{param}` > `{*rest}`).
    #[cfg_attr(feature = "cli", schemars(with = "Vec<RouteDoc>", example = serde_json::json!([{"path": "/healthz", "public": true}, {"path": "/api/reports/export", "methods": ["POST"], "require": "reports.export"}])))]
    pub routes: Vec<Spanned<RouteDoc>>,
    #[serde(default)]
    /// What happens to a request no route matches (default: `deny`).
    #[cfg_attr(
        feature = "cli",
        schemars(with = "Option<Unmatched>", example = &"deny")
    )]
    pub unmatched: Option<Spanned<Unmatched>>,
    /// Where the subscription claims are in a token (default: `preset: tiergate`).
    #[serde(default)]
    #[cfg_attr(feature = "cli", schemars(with = "Option<ClaimsDoc>", example = serde_json::json!({"preset": "auth0", "namespace": "https://acme.com/"})))]
    pub claims: Option<Spanned<ClaimsDoc>>,
}

/// The `claims:` section: a preset with its parameters, and/or a source per claim
/// (a claim given here replaces the preset's).
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimsDoc {
    #[serde(default)]
    /// An identity provider's layout (docs/identity-providers.md).
    #[cfg_attr(
        feature = "cli",
        schemars(with = "Option<super::schema_names::Preset>", example = &"clerk")
    )]
    pub preset: Option<Spanned<String>>,
    /// `auth0`: the prefix of the namespaced claims.
    #[serde(default)]
    #[cfg_attr(
        feature = "cli",
        schemars(with = "Option<String>", example = &"https://acme.com/")
    )]
    pub namespace: Option<Spanned<String>>,
    /// `keycloak`: whose client roles to read.
    #[serde(default)]
    #[cfg_attr(
        feature = "cli",
        schemars(with = "Option<String>", example = &"https://acme.com/")
    )]
    pub client: Option<Spanned<String>>,
    /// `clerk`: `org` or `user`.
    #[serde(default)]
    #[cfg_attr(
        feature = "cli",
        schemars(with = "Option<String>", example = &"https://acme.com/")
    )]
    pub scope: Option<Spanned<String>>,
    /// `okta`: the groups claim's name.
    #[serde(default)]
    #[cfg_attr(
        feature = "cli",
        schemars(with = "Option<String>", example = &"https://acme.com/")
    )]
    pub groups: Option<Spanned<String>>,
    #[serde(default)]
    /// Where `plan` is in the token: a JSON Pointer, a list of them, or a map with steps.
    #[cfg_attr(
        feature = "cli",
        schemars(with = "Option<SourceDoc>", example = &"/custom:plan")
    )]
    pub plan: Option<Spanned<SourceDoc>>,
    #[serde(default)]
    /// Where `roles` is in the token: a JSON Pointer, a list of them, or a map with steps.
    #[cfg_attr(
        feature = "cli",
        schemars(with = "Option<SourceDoc>", example = &"/custom:plan")
    )]
    pub roles: Option<Spanned<SourceDoc>>,
    #[serde(default)]
    /// Where `seats` is in the token: a JSON Pointer, a list of them, or a map with steps.
    #[cfg_attr(
        feature = "cli",
        schemars(with = "Option<SourceDoc>", example = &"/custom:plan")
    )]
    pub seats: Option<Spanned<SourceDoc>>,
    #[serde(default)]
    /// Where `trial_ends` is in the token: a JSON Pointer, a list of them, or a map with steps.
    #[cfg_attr(
        feature = "cli",
        schemars(with = "Option<SourceDoc>", example = &"/custom:plan")
    )]
    pub trial_ends: Option<Spanned<SourceDoc>>,
    #[serde(default)]
    /// Where `features` is in the token: a JSON Pointer, a list of them, or a map with steps.
    #[cfg_attr(
        feature = "cli",
        schemars(with = "Option<SourceDoc>", example = &"/custom:plan")
    )]
    pub features: Option<Spanned<SourceDoc>>,
}

/// One claim's source as written: a pointer, a list of pointers, or a map with steps.
#[derive(Debug)]
pub(crate) struct SourceDoc {
    pub from: Vec<Spanned<String>>,
    pub split: Option<String>,
    pub prefix: Option<String>,
    pub field: Option<String>,
    pub keys: bool,
    pub map: Option<OrderedMap<String>>,
}

/// The map form of a source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceMapDoc {
    from: OneOrMany,
    #[serde(default)]
    split: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    keys: Option<bool>,
    #[serde(default)]
    map: Option<OrderedMap<String>>,
}

impl<'de> Deserialize<'de> for SourceDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SourceVisitor;
        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = SourceDoc;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a JSON Pointer such as /claims/plan, a list of them, or a map with `from:`",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SourceDoc, E> {
                Ok(SourceDoc::plain(vec![Spanned {
                    value: v.to_owned(),
                    referenced: Location::UNKNOWN,
                    defined: Location::UNKNOWN,
                }]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SourceDoc, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<Spanned<String>>()? {
                    v.push(s);
                }
                Ok(SourceDoc::plain(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SourceDoc, A::Error> {
                let m = SourceMapDoc::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(SourceDoc {
                    from: match m.from {
                        OneOrMany::One(s) => vec![Spanned {
                            value: s,
                            referenced: Location::UNKNOWN,
                            defined: Location::UNKNOWN,
                        }],
                        OneOrMany::Many(v) => v,
                    },
                    split: m.split,
                    prefix: m.prefix,
                    field: m.field,
                    keys: m.keys.unwrap_or(false),
                    map: m.map,
                })
            }
        }
        d.deserialize_any(SourceVisitor)
    }
}

impl SourceDoc {
    fn plain(from: Vec<Spanned<String>>) -> SourceDoc {
        SourceDoc {
            from,
            split: None,
            prefix: None,
            field: None,
            keys: false,
            map: None,
        }
    }
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanDoc {
    /// What it is, for the people who read the file (and the dashboard).
    #[serde(default)]
    #[cfg_attr(
        feature = "cli",
        schemars(example = &"Everything in starter, plus single sign-on")
    )]
    pub description: Option<String>,
    #[serde(default)]
    /// A lower plan whose features and limits this plan has too.
    #[cfg_attr(
        feature = "cli",
        schemars(with = "Option<super::schema_names::Name>", example = &"free")
    )]
    pub extends: Option<Spanned<String>>,
    /// Features this plan includes (besides those of the plan it extends).
    #[serde(default)]
    #[cfg_attr(feature = "cli", schemars(with = "Vec<super::schema_names::Name>", example = serde_json::json!(["reports.export", "sso"])))]
    pub features: Vec<Spanned<String>>,
    #[serde(default)]
    /// Numeric limits: a whole number or `unlimited` (inherited ones may only grow).
    #[cfg_attr(feature = "cli", schemars(with = "OrderedMap<LimitValue>", example = serde_json::json!({"projects": 10, "api_calls_per_day": "unlimited"})))]
    pub limits: OrderedMap<Spanned<LimitValue>>,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleDoc {
    /// Accepted so authors can say what a role is for; the engine does not read it.
    #[serde(default)]
    #[allow(dead_code)]
    #[cfg_attr(
        feature = "cli",
        schemars(example = &"Everything in starter, plus single sign-on")
    )]
    pub description: Option<String>,
    /// Features this role grants whatever the plan.
    #[serde(default)]
    #[cfg_attr(feature = "cli", schemars(with = "Vec<super::schema_names::Name>", example = serde_json::json!(["reports.export", "sso"])))]
    pub features: Vec<Spanned<String>>,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeatureDoc {
    /// What it is, for the people who read the file (and the dashboard).
    #[serde(default)]
    #[cfg_attr(
        feature = "cli",
        schemars(example = &"Everything in starter, plus single sign-on")
    )]
    pub description: Option<String>,
    #[serde(default)]
    /// An extra condition the feature needs wherever it is granted (seats, role, plan, trial).
    #[cfg_attr(feature = "cli", schemars(with = "Option<Condition>", example = serde_json::json!({"seats": {"at_least": 2}})))]
    pub when: Option<Spanned<Condition>>,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrialDoc {
    /// The plan an active trial lifts a caller to (never lower than their own).
    #[cfg_attr(
        feature = "cli",
        schemars(with = "super::schema_names::Name", example = &"pro")
    )]
    pub plan: Spanned<String>,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteDoc {
    /// The path pattern: `/api/reports`, `/api/users/{id}`, `/api/files/{*rest}` (quote one with braces).
    #[cfg_attr(
        feature = "cli",
        schemars(with = "String", example = &"/api/reports/{id}")
    )]
    pub path: Spanned<String>,
    #[serde(default)]
    /// The HTTP methods this route covers (default: all).
    #[cfg_attr(
        feature = "cli",
        schemars(with = "Option<Vec<super::schema_names::Method>>", example = serde_json::json!(["GET", "POST"]))
    )]
    pub methods: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    /// `true`: no token needed at all.
    #[cfg_attr(feature = "cli", schemars(with = "Option<bool>", example = true))]
    pub public: Option<Spanned<bool>>,
    #[serde(default)]
    /// What a caller needs (a feature name, or a condition); none: any signed-in caller.
    #[cfg_attr(feature = "cli", schemars(with = "Option<Condition>", example = serde_json::json!({"seats": {"at_least": 2}})))]
    pub require: Option<Spanned<Condition>>,
    /// `false` puts the route in observe mode: the layer logs would-be denials and
    /// lets the request through.
    #[serde(default)]
    #[cfg_attr(feature = "cli", schemars(with = "Option<bool>", example = true))]
    pub enforce: Option<Spanned<bool>>,
    /// Accepted so authors can say what a route is for; the engine does not read it.
    #[serde(default)]
    #[allow(dead_code)]
    #[cfg_attr(
        feature = "cli",
        schemars(example = &"Everything in starter, plus single sign-on")
    )]
    pub description: Option<String>,
}

/// What happens to a request no route matches.
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Unmatched {
    Deny,
    Authenticated,
}

/// A numeric limit: a whole number or `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitValue {
    Count(u64),
    Unlimited,
}

impl<'de> Deserialize<'de> for LimitValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LimitVisitor;
        const FIX: &str = "write a whole number such as `10`, or `unlimited`";
        impl Visitor<'_> for LimitVisitor {
            type Value = LimitValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number or `unlimited`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LimitValue, E> {
                Ok(LimitValue::Count(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LimitValue, E> {
                u64::try_from(v).map(LimitValue::Count).map_err(|_| {
                    E::custom(format!(
                        "a limit cannot be negative ({v}){HELP_MARKER}{FIX}"
                    ))
                })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LimitValue, E> {
                Err(E::custom(format!(
                    "a limit must be a whole number, not {v}{HELP_MARKER}{FIX}"
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LimitValue, E> {
                if v == "unlimited" {
                    Ok(LimitValue::Unlimited)
                } else {
                    Err(E::custom(format!("`{v}` is not a limit{HELP_MARKER}{FIX}")))
                }
            }
        }
        d.deserialize_any(LimitVisitor)
    }
}

/// A mapping that keeps declaration order (plan order is tier order).
///
/// Duplicate keys never reach this type: the parser rejects them with a location.
#[derive(Debug)]
pub(crate) struct OrderedMap<V>(pub Vec<(Spanned<String>, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of names to entries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<Spanned<String>, V>()? {
                    entries.push(entry);
                }
                Ok(OrderedMap(entries))
            }
            // `roles:` with nothing after it is an empty section (for `plans:`,
            // validation then reports that there are no plans).
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap(Vec::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap(Vec::new()))
            }
        }
        d.deserialize_any(MapVisitor(PhantomData))
    }
}

/// One name or a list of names (`plan: pro` or `plan: [pro, team]`).
#[derive(Debug)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl OneOrMany {
    /// The names with their locations; a single name takes the location of the whole value.
    pub fn items(&self, whole: Location) -> Vec<(&str, Location)> {
        match self {
            OneOrMany::One(s) => vec![(s.as_str(), whole)],
            OneOrMany::Many(v) => v.iter().map(|s| (s.value.as_str(), s.referenced)).collect(),
        }
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;
        impl<'de> Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name or a list of names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<Spanned<String>>()? {
                    v.push(s);
                }
                Ok(OneOrMany::Many(v))
            }
        }
        d.deserialize_any(OneOrManyVisitor)
    }
}

/// The trial states a condition can ask for.
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TrialCond {
    Active,
    Expired,
    None,
}

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeatsDoc {
    /// The smallest seat count that satisfies it.
    #[cfg_attr(feature = "cli", schemars(with = "u64", example = 2))]
    pub at_least: Spanned<u64>,
}

/// A condition as written. A bare string is a feature name.
#[derive(Debug)]
pub(crate) enum Condition {
    /// `reports.export` or `{ feature: reports.export }`.
    Feature(String),
    Plan(Spanned<OneOrMany>),
    PlanAtLeast(Spanned<String>),
    Role(Spanned<OneOrMany>),
    Trial(Spanned<TrialCond>),
    Seats(SeatsDoc),
    All(Vec<Spanned<Condition>>),
    Any(Vec<Spanned<Condition>>),
    Not(Box<Spanned<Condition>>),
}

/// The keys a condition mapping may use, for messages and suggestions.
pub(crate) const CONDITION_KEYS: &[&str] = &[
    "feature",
    "plan",
    "plan_at_least",
    "role",
    "trial",
    "seats",
    "all",
    "any",
    "not",
];

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ConditionVisitor)
    }
}

struct ConditionVisitor;

impl<'de> Visitor<'de> for ConditionVisitor {
    type Value = Condition;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a feature name or a condition such as `{ plan_at_least: pro }`")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Condition, E> {
        Ok(Condition::Feature(v.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Condition, A::Error> {
        Err(de::Error::custom(format!(
            "a list is not a condition{HELP_MARKER}write `all: [...]` (every item must hold) or `any: [...]` (one is enough)"
        )))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Condition, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(format!(
                "an empty condition `{{}}`{HELP_MARKER}write a feature name, or one of: {}",
                CONDITION_KEYS.join(", ")
            )));
        };
        let condition = match key.as_str() {
            "feature" => Condition::Feature(map.next_value()?),
            "plan" => Condition::Plan(map.next_value()?),
            "plan_at_least" => Condition::PlanAtLeast(map.next_value()?),
            "role" => Condition::Role(map.next_value()?),
            "trial" => Condition::Trial(map.next_value()?),
            "seats" => Condition::Seats(map.next_value()?),
            "all" => Condition::All(map.next_value()?),
            "any" => Condition::Any(map.next_value()?),
            "not" => Condition::Not(Box::new(map.next_value()?)),
            other => {
                let help = match did_you_mean(other, CONDITION_KEYS.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("use one of: {}", CONDITION_KEYS.join(", ")),
                };
                return Err(de::Error::custom(format!(
                    "unknown condition `{other}`{HELP_MARKER}{help}"
                )));
            }
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "a condition has exactly one key, but this one has `{key}` and `{extra}`{HELP_MARKER}combine them with `all: [{{ {key}: ... }}, {{ {extra}: ... }}]`"
            )));
        }
        Ok(condition)
    }
}
