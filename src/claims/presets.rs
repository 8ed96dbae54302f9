//! The identity providers' layouts, as plain [`ClaimsMapping`] data.
//!
//! Each comes from the provider's own documentation of its token (see
//! `docs/identity-providers.md`, which shows a sample payload for each and the steps
//! in the provider that put a plan on the token). Where a provider has no place for
//! a claim, the preset reads the top-level member of that name (Keycloak, Okta and
//! Firebase put custom claims there).

use super::mapping::{ClaimsMapping, pointer_escape, src};

/// A preset that does not exist, or a parameter it does not take or needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresetError {
    /// No preset has this name.
    #[error("there is no claims preset `{0}` (presets: {list})", list = PRESETS.join(", "))]
    Unknown(String),
    /// The preset needs this parameter.
    #[error("the `{preset}` preset needs `{parameter}`: {hint}")]
    Missing {
        /// The preset.
        preset: &'static str,
        /// The parameter it needs.
        parameter: &'static str,
        /// What to write.
        hint: &'static str,
    },
    /// The preset does not take this parameter.
    #[error("the `{preset}` preset takes no `{parameter}`{takes}", takes = takes_text(.takes))]
    Unexpected {
        /// The preset.
        preset: &'static str,
        /// The parameter given.
        parameter: String,
        /// The parameters it does take.
        takes: &'static [&'static str],
    },
}

fn takes_text(takes: &[&str]) -> String {
    if takes.is_empty() {
        " (it takes no parameters)".to_owned()
    } else {
        format!(" (it takes: {})", takes.join(", "))
    }
}

/// Every preset's name.
pub const PRESETS: [&str; 12] = [
    "tiergate", "clerk", "auth0", "keycloak", "cognito", "supabase", "kinde", "workos", "entra",
    "okta", "zitadel", "firebase",
];

impl ClaimsMapping {
    /// A provider's layout by name (see [`PRESETS`]), with its parameters:
    /// `auth0` needs `namespace` (the prefix of your namespaced claims, e.g.
    /// `https://acme.com/`); `keycloak` takes `client` (whose client roles to add to
    /// the realm roles); `clerk` takes `scope` (`org`, the default, or `user`); `okta`
    /// takes `groups` (the groups claim's name, default `groups`).
    pub fn preset(name: &str, params: &[(&str, &str)]) -> Result<ClaimsMapping, PresetError> {
        build(name, params)
    }
}

/// The parameters each preset takes.
fn takes(preset: &str) -> &'static [&'static str] {
    match preset {
        "auth0" => &["namespace"],
        "keycloak" => &["client"],
        "clerk" => &["scope"],
        "okta" => &["groups"],
        _ => &[],
    }
}

fn build(name: &str, params: &[(&str, &str)]) -> Result<ClaimsMapping, PresetError> {
    let Some(&preset) = PRESETS.iter().find(|p| **p == name) else {
        return Err(PresetError::Unknown(name.to_owned()));
    };
    if let Some((bad, _)) = params.iter().find(|(k, _)| !takes(preset).contains(k)) {
        return Err(PresetError::Unexpected {
            preset,
            parameter: (*bad).to_owned(),
            takes: takes(preset),
        });
    }
    let param = |k: &str| params.iter().find(|(p, _)| *p == k).map(|(_, v)| *v);
    let top = |names: [&str; 4]| {
        let [plan, seats, trial_ends, features] = names;
        let mut m = ClaimsMapping::empty();
        m.plan = src(&[plan]);
        m.seats = src(&[seats]);
        m.trial_ends = src(&[trial_ends]);
        m.features = src(&[features]);
        m
    };
    Ok(match preset {
        "tiergate" => ClaimsMapping::tiergate(),
        "clerk" => {
            // Clerk session tokens v2: `"pla": "u:free,o:pro"`, `"fea": "o:sso"`, and
            // the active organization's role in `o.rol`.
            let scope = match param("scope").unwrap_or("org") {
                "org" => "o:",
                "user" => "u:",
                _ => {
                    return Err(PresetError::Missing {
                        preset,
                        parameter: "scope",
                        hint: "write `scope: org` (the active organization's plan) or `scope: user`",
                    });
                }
            };
            let mut m = ClaimsMapping::empty();
            m.plan = src(&["/pla"]).split(",").prefix(scope);
            m.features = src(&["/fea"]).split(",").prefix(scope);
            m.roles = src(&["/o/rol"]);
            m.seats = src(&["/seats"]);
            m.trial_ends = src(&["/trial_ends"]);
            m
        }
        "auth0" => {
            // Custom claims set by an Action must be namespaced:
            // `"https://acme.com/plan"`.
            let Some(ns) = param("namespace") else {
                return Err(PresetError::Missing {
                    preset,
                    parameter: "namespace",
                    hint: "the prefix of your namespaced claims, e.g. `namespace: \"https://acme.com/\"`",
                });
            };
            let at = |name: &str| format!("/{}", pointer_escape(&format!("{ns}{name}")));
            let mut m = ClaimsMapping::empty();
            m.plan = src(&[&at("plan")]);
            m.roles = src(&[&at("roles")]);
            m.seats = src(&[&at("seats")]);
            m.trial_ends = src(&[&at("trial_ends")]);
            m.features = src(&[&at("features")]);
            m
        }
        "keycloak" => {
            // Realm roles, plus one client's roles; plan and seats from user
            // attributes mapped to top-level claims.
            let mut m = top(["/plan", "/seats", "/trial_ends", "/features"]);
            let client = param("client").map(|c| format!("/resource_access/{}/roles", pointer_escape(c)));
            let mut roles = vec!["/realm_access/roles"];
            if let Some(c) = &client {
                roles.push(c);
            }
            m.roles = src(&roles);
            m
        }
        "cognito" => {
            // Custom attributes are always strings; groups are `cognito:groups`.
            let mut m = top([
                "/custom:plan",
                "/custom:seats",
                "/custom:trial_ends",
                "/custom:features",
            ]);
            m.features = m.features.split(",");
            m.roles = src(&["/cognito:groups"]);
            m
        }
        "supabase" => {
            // A custom access token hook writes `app_metadata` and an app role in
            // `user_role` (`role` is the database role, never the app's).
            let mut m = top([
                "/app_metadata/plan",
                "/app_metadata/seats",
                "/app_metadata/trial_ends",
                "/app_metadata/features",
            ]);
            m.roles = src(&["/user_role", "/app_metadata/roles"]);
            m
        }
        "kinde" => {
            // Roles are objects with a `key`; feature flags are `{"t": "b", "v": true}`
            // (a string flag `plan` carries the plan).
            let mut m = top(["/feature_flags/plan/v", "/feature_flags/seats/v", "/trial_ends", ""]);
            m.roles = src(&["/roles"]).field("key");
            m.features = src(&["/feature_flags"]).keys().field("v");
            m
        }
        "workos" => {
            // AuthKit: `role`, `permissions`, `entitlements`, `feature_flags`.
            let mut m = top(["/plan", "/seats", "/trial_ends", ""]);
            m.roles = src(&["/role", "/roles"]);
            m.features = src(&["/entitlements", "/feature_flags"]);
            m
        }
        "entra" => {
            // App roles are the only custom values Entra puts on an access token
            // without extra services: `Plan.pro`, `Role.admin`, `Feature.sso`.
            let mut m = ClaimsMapping::empty();
            m.plan = src(&["/roles"]).prefix("Plan.");
            m.roles = src(&["/roles"]).prefix("Role.");
            m.features = src(&["/roles"]).prefix("Feature.");
            m.seats = src(&["/seats"]);
            m.trial_ends = src(&["/trial_ends"]);
            m
        }
        "okta" => {
            let groups = format!("/{}", pointer_escape(param("groups").unwrap_or("groups")));
            let mut m = top(["/plan", "/seats", "/trial_ends", "/features"]);
            m.roles = src(&[&groups]);
            m
        }
        "zitadel" => {
            // Project roles are the keys of one object; plans are roles `plan.pro`.
            let roles = "/urn:zitadel:iam:org:project:roles";
            let mut m = top(["", "/seats", "/trial_ends", "/features"]);
            m.plan = src(&[roles]).keys().prefix("plan.");
            m.roles = src(&[roles]).keys();
            m
        }
        "firebase" => {
            // Custom claims at the top level, set with the Admin SDK.
            let mut m = top(["/plan", "/seats", "/trial_ends", "/features"]);
            m.roles = src(&["/role", "/roles"]);
            m
        }
        _ => return Err(PresetError::Unknown(name.to_owned())),
    }
    .without_empty_pointers())
}

impl ClaimsMapping {
    /// Drops the `""` placeholders `top` uses for "this provider has no such claim"
    /// (`""` is the whole payload, never a claim).
    fn without_empty_pointers(mut self) -> ClaimsMapping {
        for s in self.sources_mut() {
            s.from.retain(|p| !p.as_str().is_empty());
        }
        self
    }
}
