//! The dashboard's claims form ↔ claims, as pure functions: what the form shows for
//! stored claims, what a submitted form says, and the change it makes.
//!
//! The rule: **a save changes only what the admin changed.** The page carries the
//! claims it was rendered from (`base`); a save compares the submitted fields with
//! the fields `base` renders to, and sends only the differences, merged atomically
//! into whatever is stored by then (a webhook may have written since the page
//! opened). So an RFC 3339 trial end that the date field shows as a day is kept to
//! the second, `"5"` seats stay a string and `5` a number, `roles` stays a list, and
//! saving a page without edits changes nothing.
//!
//! Custom claims show their JSON type: a string is edited as text (whatever it
//! looks like: `"123"` and `"true"` stay strings), anything else as JSON.
//!
//! (The module's example is its `example` test, below: the module is private.)

use std::collections::BTreeSet;

use chrono::DateTime;
use serde_json::{Map, Value};

use crate::claims::parse_trial_ends;

/// The claims the form has a field of its own for; the rest are custom rows.
const STANDARD: [&str; 5] = ["plan", "role", "roles", "trial_ends", "seats"];

/// One custom claim row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Custom {
    /// The claim's name.
    pub key: String,
    /// Its value as the form shows it: the string itself, or JSON.
    pub value: String,
    /// Whether `value` is JSON (a number, boolean, list, object) or a plain string.
    pub json: bool,
}

/// What the form shows, or what was submitted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fields {
    /// The plan (empty: none).
    pub plan: String,
    /// The roles, in stored order.
    pub roles: Vec<String>,
    /// The trial's last day as `YYYY-MM-DD`, or the stored text when it is no date.
    pub trial_ends: String,
    /// The seat count as text.
    pub seats: String,
    /// The other claims.
    pub custom: Vec<Custom>,
}

/// A submitted value that cannot become a claim: the field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError {
    /// The field, as the claims API names it (`claims.team`).
    pub field: String,
    /// What to write instead.
    pub message: String,
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `trial_ends` as the date field shows it: the last day of the trial (it is active
/// through the end of that day, UTC). Stored text that is no date is shown as is.
pub fn trial_day(v: &Value) -> String {
    parse_trial_ends(v)
        .and_then(|end| end.checked_sub(1))
        .and_then(|last| DateTime::from_timestamp(last, 0))
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| text_of(v))
}

impl Fields {
    /// The form's fields for stored claims.
    pub fn of(claims: &Map<String, Value>) -> Fields {
        let roles = match claims.get("roles").or_else(|| claims.get("role")) {
            Some(Value::Array(a)) => a.iter().map(text_of).collect(),
            Some(Value::Null) | None => Vec::new(),
            Some(one) => vec![text_of(one)],
        };
        let custom = claims
            .iter()
            .filter(|(k, _)| !STANDARD.contains(&k.as_str()))
            .map(|(k, v)| Custom {
                key: k.clone(),
                value: text_of(v),
                json: !v.is_string(),
            })
            .collect();
        Fields {
            plan: claims.get("plan").map(text_of).unwrap_or_default(),
            roles,
            trial_ends: claims.get("trial_ends").map(trial_day).unwrap_or_default(),
            seats: claims.get("seats").map(text_of).unwrap_or_default(),
            custom,
        }
    }

    /// The fields a submitted form holds: `plan`, `roles` (one per checked box),
    /// `trial_ends`, `seats`, and rows of `custom_key`, `custom_value`, `custom_type`
    /// (`text` or `json`). Rows without a key are empty rows.
    pub fn from_form(form: &[(String, String)]) -> Fields {
        let get = |k: &str| {
            form.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        };
        let all = |k: &str| {
            form.iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        let keys = all("custom_key");
        let values = all("custom_value");
        let types = all("custom_type");
        let custom = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| !k.trim().is_empty())
            .map(|(i, k)| Custom {
                key: k.trim().to_owned(),
                value: values.get(i).cloned().unwrap_or_default(),
                json: types.get(i).is_some_and(|t| t == "json"),
            })
            .collect();
        Fields {
            plan: get("plan"),
            roles: all("roles")
                .into_iter()
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty())
                .collect(),
            trial_ends: get("trial_ends"),
            seats: get("seats"),
            custom,
        }
    }
}

/// The page's `base` (the claims it was rendered from), if the form carries one.
pub fn base_from_form(form: &[(String, String)]) -> Option<Map<String, Value>> {
    let (_, text) = form.iter().find(|(n, _)| n == "base")?;
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn optional(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_owned())
    }
}

/// The claims change a submitted form makes relative to `base`: only the fields
/// that differ from what `base` renders to (`null` removes a claim).
pub fn change(
    base: &Map<String, Value>,
    submitted: &Fields,
) -> Result<Map<String, Value>, FormError> {
    let shown = Fields::of(base);
    let mut change = Map::new();
    if submitted.plan != shown.plan {
        change.insert("plan".into(), optional(&submitted.plan));
    }
    let set = |r: &[String]| r.iter().cloned().collect::<BTreeSet<_>>();
    if set(&submitted.roles) != set(&shown.roles) {
        let roles: Vec<Value> = submitted
            .roles
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|r| Value::String(r.clone()))
            .collect();
        // Keep the claim's shape: `role` for one role unless the user had `roles`.
        match roles.as_slice() {
            [] => change.insert("roles".into(), Value::Null),
            [one] if !base.contains_key("roles") => change.insert("role".into(), one.clone()),
            _ => change.insert("roles".into(), Value::Array(roles)),
        };
    }
    if submitted.trial_ends != shown.trial_ends {
        change.insert("trial_ends".into(), optional(&submitted.trial_ends));
    }
    if submitted.seats != shown.seats {
        change.insert("seats".into(), optional(&submitted.seats));
    }
    let mut seen = BTreeSet::new();
    for row in &submitted.custom {
        let field = format!("claims.{}", row.key);
        if STANDARD.contains(&row.key.as_str()) {
            return Err(FormError {
                field,
                message: format!("`{}` has a field of its own above; use that", row.key),
            });
        }
        if !seen.insert(row.key.as_str()) {
            return Err(FormError {
                field,
                message: format!("`{}` is in two rows; keep one", row.key),
            });
        }
        if shown.custom.contains(row) {
            continue; // as rendered: the stored value stays exactly as it is
        }
        let value = if row.json {
            serde_json::from_str(&row.value).map_err(|e| FormError {
                field: field.clone(),
                message: format!("not valid JSON ({e}); choose \"text\" to store it as a string"),
            })?
        } else {
            Value::String(row.value.clone())
        };
        change.insert(row.key.clone(), value);
    }
    for gone in shown
        .custom
        .iter()
        .filter(|c| !seen.contains(c.key.as_str()))
    {
        change.insert(gone.key.clone(), Value::Null);
    }
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn stored() -> Map<String, Value> {
        obj(json!({
            "plan": "pro", "roles": ["admin", "member"], "trial_ends": "2026-12-20T12:00:00Z",
            "seats": "5", "a": "123", "b": "true", "c": 5, "d": ["a", "b"], "e": 1.50,
        }))
    }

    /// The form as a browser would submit it for `fields`.
    fn submit(fields: &Fields, base: &Map<String, Value>) -> Vec<(String, String)> {
        let mut form = vec![
            ("base".to_owned(), Value::Object(base.clone()).to_string()),
            ("plan".to_owned(), fields.plan.clone()),
            ("trial_ends".to_owned(), fields.trial_ends.clone()),
            ("seats".to_owned(), fields.seats.clone()),
        ];
        form.extend(fields.roles.iter().map(|r| ("roles".to_owned(), r.clone())));
        for c in fields.custom.iter().cloned().chain([Custom {
            key: String::new(),
            value: String::new(),
            json: false,
        }]) {
            form.push(("custom_key".into(), c.key));
            form.push(("custom_value".into(), c.value));
            form.push((
                "custom_type".into(),
                if c.json { "json" } else { "text" }.into(),
            ));
        }
        form
    }

    #[test]
    fn a_page_saved_without_edits_changes_nothing() {
        let base = stored();
        let form = submit(&Fields::of(&base), &base);
        assert_eq!(base_from_form(&form).as_ref(), Some(&base));
        let change = change(&base, &Fields::from_form(&form)).unwrap();
        assert!(change.is_empty(), "{change:?}");
    }

    #[test]
    fn editing_only_seats_changes_only_seats() {
        let base = stored();
        let mut fields = Fields::of(&base);
        fields.seats = "7".into();
        let form = submit(&fields, &base);
        let change = change(&base, &Fields::from_form(&form)).unwrap();
        assert_eq!(Value::Object(change), json!({ "seats": "7" }));
    }

    #[test]
    fn roles_keep_their_shape_and_several_can_be_chosen() {
        let base = obj(json!({ "role": "member" }));
        let mut f = Fields::of(&base);
        assert_eq!(f.roles, ["member"]);
        f.roles = vec!["admin".into()];
        assert_eq!(
            Value::Object(change(&base, &f).unwrap()),
            json!({ "role": "admin" })
        );
        f.roles = vec!["member".into(), "admin".into()];
        assert_eq!(
            Value::Object(change(&base, &f).unwrap()),
            json!({ "roles": ["admin", "member"] })
        );
        f.roles = vec![];
        assert_eq!(
            Value::Object(change(&base, &f).unwrap()),
            json!({ "roles": null })
        );
        let base = stored();
        let mut f = Fields::of(&base);
        f.roles = vec!["member".into(), "admin".into()];
        assert!(
            change(&base, &f).unwrap().is_empty(),
            "order is not a change"
        );
    }

    #[test]
    fn an_edited_trial_end_is_a_day_and_an_untouched_one_keeps_its_time() {
        let base = stored();
        let f = Fields::of(&base);
        assert_eq!(f.trial_ends, "2026-12-20");
        let mut edited = f.clone();
        edited.trial_ends = "2027-01-31".into();
        assert_eq!(
            Value::Object(change(&base, &edited).unwrap()),
            json!({ "trial_ends": "2027-01-31" })
        );
        edited.trial_ends = String::new();
        assert_eq!(
            Value::Object(change(&base, &edited).unwrap()),
            json!({ "trial_ends": null })
        );
    }

    #[test]
    fn custom_values_keep_their_json_type() {
        let base = stored();
        let f = Fields::of(&base);
        let row = |k: &str| f.custom.iter().find(|c| c.key == k).unwrap().clone();
        assert!(!row("a").json && row("a").value == "123");
        assert!(row("c").json && row("c").value == "5");
        let mut edited = f.clone();
        for c in &mut edited.custom {
            match c.key.as_str() {
                "a" => c.value = "124".into(),
                "c" => c.value = "6".into(),
                _ => {}
            }
        }
        edited.custom.retain(|c| c.key != "d");
        edited.custom.push(Custom {
            key: "new".into(),
            value: "[1,".into(),
            json: true,
        });
        let err = change(&base, &edited).unwrap_err();
        assert_eq!(err.field, "claims.new");
        edited.custom.pop();
        assert_eq!(
            Value::Object(change(&base, &edited).unwrap()),
            json!({ "a": "124", "c": 6, "d": null })
        );
    }

    #[test]
    fn odd_stored_values_render_without_panicking_and_round_trip() {
        for base in [
            obj(json!({ "trial_ends": -8334601228800i64 })),
            obj(json!({ "trial_ends": i64::MAX, "seats": -3, "plan": 7 })),
            obj(json!({ "trial_ends": "soon", "roles": [1, null], "x": null })),
            obj(json!({ "trial_ends": {"a": 1} })),
        ] {
            let f = Fields::of(&base);
            assert!(change(&base, &f).unwrap().is_empty(), "{base:?} → {f:?}");
        }
    }
}

#[cfg(test)]
mod example {
    use super::{Fields, change};
    use serde_json::{Map, Value, json};

    #[test]
    fn a_save_sends_only_what_was_edited() {
        let base: Map<String, Value> = serde_json::from_value(json!({
            "plan": "pro", "roles": ["admin", "member"], "trial_ends": "2026-12-20T12:00:00Z",
            "seats": 5, "team": "123",
        }))
        .unwrap();
        let mut fields = Fields::of(&base);
        assert!(change(&base, &fields).unwrap().is_empty()); // nothing edited, nothing sent
        fields.seats = "6".into();
        assert_eq!(
            Value::Object(change(&base, &fields).unwrap()),
            json!({ "seats": "6" })
        );
    }
}
