//! Checking and merging claims a client or admin sets: the policy is the source of
//! truth, so a typo'd plan never reaches a token.

use serde_json::{Map, Value};

use super::problem::ApiError;
use crate::Policy;
use crate::claims::{parse_seats, parse_trial_ends};
use crate::policy::suggest::did_you_mean;

/// Checks each claim the request sets (`null` removes a claim and is always fine).
pub fn check_claims(policy: &Policy, claims: &Map<String, Value>) -> Result<(), ApiError> {
    if claims.contains_key("role") && claims.contains_key("roles") {
        return Err(ApiError::field(
            "claims.roles",
            "send `role` (one) or `roles` (a list), not both: they are one claim",
        ));
    }
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
            "features" => {
                // Features granted outright (add-ons); only declared ones grant, so an
                // undeclared one is refused here rather than noted on every request.
                let features: Vec<&Value> = match value {
                    Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                for f in features {
                    let Some(feature) = f.as_str() else {
                        return Err(ApiError::field(
                            field,
                            "a feature is a string, e.g. \"sso\" (or a list of them)",
                        ));
                    };
                    known(
                        &policy.features().collect::<Vec<_>>(),
                        feature,
                        "feature",
                        &field,
                    )?;
                }
            }
            "trial_ends"
                if !parse_trial_ends(value).is_some_and(|t| (0..=LAST_TRIAL_END).contains(&t)) =>
            {
                return Err(ApiError::field(
                    field,
                    "`trial_ends` must be a date (\"2026-04-15\"), an RFC 3339 time or unix \
                     seconds, between 1970-01-01 and 9999-12-31",
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

/// The end of 9999-12-31 (UTC): the last trial end every part of the system (the
/// dashboard's dates, the engine's day counts, chrono) can hold.
const LAST_TRIAL_END: i64 = 253_402_300_800;

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

/// An email address as one identity: checked, and in the one form it is stored in.
///
/// - Syntax: the local part per RFC 5322 / 6531 (`email_address`), the domain per
///   IDNA (UTS 46, STD3 rules, DNS lengths), stored as ASCII (`xn--…`), so
///   `bücher.de` and `xn--bcher-kva.de` are one domain; at least two labels.
/// - Refused (422 naming `email`): control, invisible and zero-width characters;
///   characters that NFKC would turn into others (the Kelvin sign `K` that
///   lower-cases onto `k`, fullwidth letters, ligatures) — so case folding can never
///   map one address onto another stored one; and parts that mix scripts (a
///   Cyrillic `а` among Latin letters).
/// - The local part is lower-cased (Unicode), the whole trimmed.
pub fn email(raw: &str) -> Result<String, ApiError> {
    email_as("email", raw)
}

/// An email address as the server stores it (trimmed, lower-cased, checked), for
/// callers outside HTTP such as the CLI: the sentence on failure.
pub fn normalize_email(raw: &str) -> Result<String, String> {
    email(raw).map_err(|e| {
        e.body()
            .get("detail")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("not an email address")
            .to_owned()
    })
}

/// [`email`], naming another field in its error.
pub fn email_as(field: &str, raw: &str) -> Result<String, ApiError> {
    let bad = |why: &str| {
        ApiError::field(
            field,
            format!("{why}; write an address like ada@example.com"),
        )
    };
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 254 {
        return Err(bad("an email address has 1 to 254 characters"));
    }
    if raw.chars().any(invisible) {
        return Err(bad(
            "the address contains a control, invisible or zero-width character",
        ));
    }
    if !unicode_normalization::is_nfkc(raw) {
        return Err(bad(
            "the address contains a character that stands for another (a compatibility \
             or fullwidth form, such as the Kelvin sign for K): type the plain letter",
        ));
    }
    let Some((local, domain)) = raw.rsplit_once('@') else {
        return Err(bad("an email address has an @"));
    };
    let local = local.to_lowercase();
    if !email_address::EmailAddress::is_valid_local_part(&local) {
        return Err(bad("the part before the @ is not a valid mailbox name"));
    }
    let domain_ascii = idna::domain_to_ascii_strict(domain)
        .map_err(|_| bad("the part after the @ is not a valid domain name"))?;
    let labels: Vec<&str> = domain_ascii.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return Err(bad("the domain needs a name and a top-level domain"));
    }
    use unicode_security::MixedScript as _;
    let mixed = !local.as_str().is_single_script()
        || domain.split('.').any(|label| !label.is_single_script());
    if mixed {
        return Err(bad(
            "the address mixes scripts (e.g. a Cyrillic letter among Latin ones), so it \
             would look like another address",
        ));
    }
    Ok(format!("{local}@{domain_ascii}"))
}

/// Control characters, and the format characters that render as nothing (zero-width
/// spaces and joiners, bidirectional marks, the soft hyphen, word joiners, BOM).
fn invisible(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E0FFF}')
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
