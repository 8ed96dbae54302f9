//! The `claims:` section: a preset and/or a source per claim, checked into a
//! [`ClaimsMapping`] with a located error and a fix for every mistake.
//!
//! ```yaml
//! claims:
//!   preset: auth0
//!   namespace: "https://acme.com/"
//!   features: { from: /permissions, prefix: "feature:" }   # replaces the preset's
//! ```

use serde_saphyr::{Location, Spanned};

use super::diagnostic::Diagnostic;
use super::model::{ClaimsDoc, SourceDoc};
use super::parse::loc;
use super::suggest::did_you_mean;
use crate::claims::{ClaimsMapping, PRESETS, Pointer, PresetError, check_pointer, pointer_escape};

fn error(diags: &mut Vec<Diagnostic>, at: &Location, width: usize, message: String, help: String) {
    let (line, column) = loc(at);
    diags.push(Diagnostic::at(line, column, width, message).help(help));
}

/// The mapping the section describes, or `None` with its errors added to `diags`.
pub(crate) fn check(
    section: &Spanned<ClaimsDoc>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ClaimsMapping> {
    let before = diags.len();
    let doc = &section.value;
    let params: Vec<(&str, &Spanned<String>)> = [
        ("namespace", &doc.namespace),
        ("client", &doc.client),
        ("scope", &doc.scope),
        ("groups", &doc.groups),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    .collect();
    let mut mapping = match &doc.preset {
        Some(preset) => preset_mapping(preset, &params, diags),
        None => {
            for (k, v) in &params {
                let owner = match *k {
                    "namespace" => "auth0",
                    "client" => "keycloak",
                    "scope" => "clerk",
                    _ => "okta",
                };
                error(
                    diags,
                    &v.referenced,
                    v.value.len().max(1),
                    format!("`{k}` is a parameter of a claims preset, and no `preset:` is given"),
                    format!("add `preset: {owner}` (or remove `{k}:`)"),
                );
            }
            Some(ClaimsMapping::tiergate())
        }
    };
    let claims = [
        ("plan", &doc.plan),
        ("roles", &doc.roles),
        ("seats", &doc.seats),
        ("trial_ends", &doc.trial_ends),
        ("features", &doc.features),
    ];
    // Each claim is checked even when the preset was not found, so one run of
    // `tiergate check` shows every mistake in the section.
    let mut scratch = ClaimsMapping::tiergate();
    let target = mapping.as_mut().unwrap_or(&mut scratch);
    for ((_, given), slot) in claims.iter().zip(target.sources_mut()) {
        if let Some(source) = given.as_ref().and_then(|g| source(g, diags)) {
            *slot = source;
        }
    }
    if diags.len() > before { None } else { mapping }
}

fn preset_mapping(
    preset: &Spanned<String>,
    params: &[(&str, &Spanned<String>)],
    diags: &mut Vec<Diagnostic>,
) -> Option<ClaimsMapping> {
    let plain: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.value.as_str())).collect();
    match ClaimsMapping::preset(&preset.value, &plain) {
        Ok(m) => Some(m),
        Err(PresetError::Unknown(name)) => {
            let help = match did_you_mean(&name, PRESETS) {
                Some(s) => format!(
                    "did you mean `{s}`? The presets are: {}",
                    PRESETS.join(", ")
                ),
                None => format!(
                    "the presets are: {}; or leave `preset:` out and give each claim's JSON Pointer",
                    PRESETS.join(", ")
                ),
            };
            error(
                diags,
                &preset.referenced,
                name.len().max(1),
                format!("there is no claims preset `{name}`"),
                help,
            );
            None
        }
        Err(PresetError::Missing {
            preset: p,
            parameter,
            hint,
        }) => {
            error(
                diags,
                &preset.referenced,
                preset.value.len(),
                format!("the `{p}` preset needs `{parameter}`"),
                format!("add {hint}"),
            );
            None
        }
        Err(PresetError::Unexpected {
            preset: p,
            parameter,
            takes,
        }) => {
            let at = params
                .iter()
                .find(|(k, _)| *k == parameter)
                .map_or(&preset.referenced, |(_, v)| &v.referenced);
            let help = if takes.is_empty() {
                format!("the `{p}` preset takes no parameters: remove `{parameter}:`")
            } else {
                let takes: Vec<String> = takes.iter().map(|t| format!("`{t}`")).collect();
                format!(
                    "the `{p}` preset takes only {}; remove `{parameter}:`",
                    takes.join(", ")
                )
            };
            error(
                diags,
                at,
                parameter.len(),
                format!("the `{p}` preset takes no `{parameter}`"),
                help,
            );
            None
        }
    }
}

fn source(
    given: &Spanned<SourceDoc>,
    diags: &mut Vec<Diagnostic>,
) -> Option<crate::claims::Source> {
    let doc = &given.value;
    let mut ok = true;
    if doc.from.is_empty() {
        error(
            diags,
            &given.referenced,
            1,
            "no JSON Pointer to read this claim from".to_owned(),
            "give one, e.g. `/claims/plan`, or a list: `[/realm_access/roles, /roles]`".to_owned(),
        );
        ok = false;
    }
    for p in &doc.from {
        let at = if p.referenced == Location::UNKNOWN {
            &given.referenced
        } else {
            &p.referenced
        };
        if let Err(why) = check_pointer(&p.value) {
            let help = if p.value.starts_with('/') {
                format!(
                    "{why}; e.g. the member `https://acme.com/plan` is `/{}`",
                    pointer_escape("https://acme.com/plan")
                )
            } else {
                format!("{why}: write `/{}`", pointer_escape(&p.value))
            };
            error(
                diags,
                at,
                p.value.chars().count().max(1),
                format!("`{}` is not a JSON Pointer", p.value),
                help,
            );
            ok = false;
        } else if let Some(first) = p
            .value
            .strip_prefix('/')
            .and_then(|r| r.split('/').next())
            .filter(|f| crate::claims::reader::REGISTERED.contains(f))
        {
            error(
                diags,
                at,
                p.value.chars().count().max(1),
                format!("`/{first}` is a registered claim the verifier checks itself"),
                "point at where the provider puts the subscription claims, e.g. `/app_metadata/plan`"
                    .to_owned(),
            );
            ok = false;
        } else if p.value.is_empty() {
            error(
                diags,
                at,
                1,
                "the empty pointer is the whole token, not a claim".to_owned(),
                "point at the member, e.g. `/plan`".to_owned(),
            );
            ok = false;
        }
    }
    if doc.split.as_deref() == Some("") {
        error(
            diags,
            &given.referenced,
            1,
            "`split` is empty".to_owned(),
            "give the separator, e.g. `split: \",\"` or `split: \" \"`".to_owned(),
        );
        ok = false;
    }
    if doc.field.is_some() && doc.split.is_some() && doc.keys {
        error(
            diags,
            &given.referenced,
            1,
            "`keys`, `field` and `split` together read nothing a token has".to_owned(),
            "use `keys` (with `field` for flag objects) or `split`, not both".to_owned(),
        );
        ok = false;
    }
    ok.then(|| crate::claims::Source {
        from: doc
            .from
            .iter()
            .map(|p| Pointer::new(p.value.clone()))
            .collect(),
        split: doc.split.clone(),
        prefix: doc.prefix.clone(),
        field: doc.field.clone(),
        keys: doc.keys,
        map: doc.map.as_ref().map(|m| {
            m.0.iter()
                .map(|(k, v)| (k.value.clone(), v.clone()))
                .collect()
        }),
    })
}
