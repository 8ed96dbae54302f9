//! Checking and merging claims a client or admin sets: the policy is the source of
//! truth, so a typo'd plan never reaches a token.

use serde_json::{Map, Value};

use super::problem::ApiError;
use crate::Policy;
use crate::claims::{parse_seats, parse_trial_ends};
use crate::policy::suggest::did_you_mean;

/// Checks each claim the request sets (`null` removes a claim and is always fine).
pub fn check_claims(policy: &Policy, claims: &Map<String, Value>) -> Result<(), ApiError> {
    for (key, value) in claims {
        if value.is_null() {
            continue;
        }
        let field = format!("claims.{key}");
        match key.as_str() {
            "plan" => {
                let Some(plan) = value.as_str() else {
                    return Err(ApiError::field(
                        field,
                        "`plan` must be a string, e.g. \"pro\"",
                    ));
                };
                known(&policy.plans().collect::<Vec<_>>(), plan, "plan", &field)?;
            }
            "role" | "roles" => {
                let roles: Vec<&Value> = match value {
                    Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                for r in roles {
                    let Some(role) = r.as_str() else {
                        return Err(ApiError::field(
                            field,
                            "a role is a string, e.g. \"admin\" (or a list of them)",
                        ));
                    };
                    known(&policy.roles().collect::<Vec<_>>(), role, "role", &field)?;
                }
            }
            "trial_ends" if parse_trial_ends(value).is_none() => {
                return Err(ApiError::field(
                    field,
                    "`trial_ends` must be a date (\"2026-04-15\"), an RFC 3339 time or unix seconds",
                ));
            }
            "seats" if parse_seats(value).is_none() => {
                return Err(ApiError::field(
                    field,
                    "`seats` must be a whole number ≥ 0, e.g. 5 or \"5\"",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn known(names: &[&str], name: &str, what: &str, field: &str) -> Result<(), ApiError> {
    if names.contains(&name) {
        return Ok(());
    }
    let hint = match did_you_mean(name, names.iter().copied()) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => ".".to_owned(),
    };
    Err(ApiError::field(
        field,
        format!(
            "unknown {what} `{name}`{hint} The policy's {what}s: {}",
            names.join(", ")
        ),
    ))
}

/// The stored claims with the change applied: given keys replace, `null` removes.
/// `role` and `roles` are one claim: setting either replaces both.
pub fn merge(stored: &Map<String, Value>, change: &Map<String, Value>) -> Map<String, Value> {
    let mut out = stored.clone();
    for (key, value) in change {
        if key == "role" || key == "roles" {
            out.remove("role");
            out.remove("roles");
        }
        if value.is_null() {
            out.remove(key);
        } else {
            out.insert(key.clone(), value.clone());
        }
    }
    out
}

/// A valid-looking email, lower-cased: one `@` with text on both sides, no spaces.
pub fn email(raw: &str) -> Result<String, ApiError> {
    let e = raw.trim().to_lowercase();
    let ok = e.len() <= 254
        && !e.chars().any(char::is_whitespace)
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'));
    if ok {
        Ok(e)
    } else {
        Err(ApiError::field(
            "email",
            "an email address like ada@example.com",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn merge_replaces_removes_and_treats_role_and_roles_as_one() {
        let stored = obj(json!({ "plan": "free", "role": "member", "team": "red" }));
        let out = merge(
            &stored,
            &obj(json!({ "plan": "pro", "team": null, "roles": ["admin"] })),
        );
        assert_eq!(
            Value::Object(out),
            json!({ "plan": "pro", "roles": ["admin"] })
        );
    }

    #[test]
    fn unknown_plans_name_the_field_and_suggest() {
        let p = Policy::from_yaml(crate::EXAMPLE_POLICY).unwrap();
        let e = check_claims(&p, &obj(json!({ "plan": "prp" }))).unwrap_err();
        let body = e.body();
        assert_eq!(body["field"], "claims.plan");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("did you mean `pro`?"),
            "{body}"
        );
        for bad in [
            json!({ "seats": -1 }),
            json!({ "seats": "five" }),
            json!({ "trial_ends": "soon" }),
            json!({ "role": "owner" }),
        ] {
            assert!(check_claims(&p, &obj(bad.clone())).is_err(), "{bad}");
        }
        assert!(
            check_claims(
                &p,
                &obj(json!({ "plan": null, "seats": "5", "trial_ends": "2026-04-15", "x": 1 }))
            )
            .is_ok()
        );
    }

    #[test]
    fn emails_are_checked_and_lowercased() {
        assert_eq!(email(" Ada@Example.com ").unwrap(), "ada@example.com");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "a b@example.com",
            "ada@localhost",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }
}
