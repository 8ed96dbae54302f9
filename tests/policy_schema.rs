//! The JSON Schema `tiergate schema` prints, checked with a JSON Schema validator
//! (the `jsonschema` crate, draft 2020-12): every shipped policy and fixture passes,
//! and each broken policy whose mistake is one of shape (an unknown key, a wrong
//! type, a value outside an enumeration) fails it too, as the editor would show.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A YAML policy as the JSON value an editor's schema check sees.
fn as_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator() -> jsonschema::Validator {
    let schema = tiergate::policy::json_schema();
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "draft 2020-12"
    );
    jsonschema::validator_for(&schema).expect("the schema is itself valid")
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

#[test]
fn every_shipped_policy_and_fixture_passes_the_schema() {
    let v = validator();
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["policies", "tests/diff"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".yaml") && !name.ends_with(".test.yaml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 3, "{files:?}");
    for file in &files {
        // Each also loads: the schema and the parser agree on what is valid.
        tiergate::Policy::from_file(file).unwrap();
        let problems = errors(&v, &as_json(file));
        assert!(problems.is_empty(), "{}: {problems:#?}", file.display());
    }
    // Every preset's `claims:` section, and the map form of a source.
    for section in [
        "{ preset: auth0, namespace: \"https://acme.com/\" }".to_owned(),
        "{ preset: keycloak, client: my-api }".to_owned(),
        "{ plan: { from: /pla, split: \",\", prefix: \"o:\" }, roles: [/a, /b~1c], seats: /custom:seats }"
            .to_owned(),
    ]
    .into_iter()
    .chain(
        tiergate::claims::PRESETS
            .iter()
            .filter(|p| **p != "auth0")
            .map(|p| format!("{{ preset: {p} }}")),
    ) {
        let text = format!("{}\nclaims: {section}\n", tiergate::EXAMPLE_POLICY);
        tiergate::Policy::from_yaml(&text).unwrap_or_else(|e| panic!("{section}: {e}"));
        let doc = serde_saphyr::from_str::<Value>(&text).unwrap();
        let problems = errors(&v, &doc);
        assert!(problems.is_empty(), "{section}: {problems:#?}");
    }
}

#[test]
fn broken_policies_with_a_shape_mistake_fail_the_schema_too() {
    let v = validator();
    // Unknown keys, a condition with two keys, an unknown preset, a pointer without
    // `/`, an empty split: each one the parser refuses as a shape error.
    // (`many_problems` has `version: 2` and a lower-case method among its mistakes.
    // The others in tests/broken are mistakes of meaning or of YAML itself:
    // duplicate keys, tabs, cycles, unknown names, unquoted braces.)
    for name in [
        "unknown_top_level_key",
        "two_key_condition",
        "claims_section",
        "many_problems",
    ] {
        let path = root().join("tests/broken").join(format!("{name}.yaml"));
        assert!(tiergate::Policy::from_file(&path).is_err(), "{name} loads");
        let problems = errors(&v, &as_json(&path));
        assert!(!problems.is_empty(), "{name} passes the schema");
    }
    // A wrong type and a bad limit, written here.
    for (what, text) in [
        ("plans as a list", "version: 1\nplans: [free, pro]\n"),
        (
            "a limit that is a word",
            "version: 1\nplans:\n  free: { limits: { projects: lots } }\n",
        ),
        (
            "a trial state that does not exist",
            "version: 1\nplans:\n  free: {}\nroutes:\n  - { path: /a, require: { trial: soon } }\n",
        ),
        (
            "a name with a space",
            "version: 1\nplans:\n  free: { features: [\"two words\"] }\n",
        ),
    ] {
        assert!(tiergate::Policy::from_yaml(text).is_err(), "{what} loads");
        let doc = serde_saphyr::from_str::<Value>(text).unwrap();
        assert!(!errors(&v, &doc).is_empty(), "{what} passes the schema");
    }
}

#[test]
fn the_schema_describes_every_key_and_names_the_enumerations() {
    let s = tiergate::policy::json_schema();
    let text = s.to_string();
    for key in [
        "version",
        "plans",
        "default_plan",
        "trial",
        "roles",
        "features",
        "routes",
        "unmatched",
        "claims",
    ] {
        assert!(
            s["properties"][key]["description"].is_string()
                || s["properties"][key]["$ref"].is_string(),
            "{key} has no description: {}",
            s["properties"][key]
        );
    }
    // Every key, at any depth, says what it is and shows an example (what an
    // editor shows on hover and offers on completion).
    fn keys(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::Object(props)) = o.get("properties") {
                    for (k, p) in props {
                        if !(p["description"].is_string() && p["examples"].is_array()) {
                            out.push(format!("{path}.{k}"));
                        }
                    }
                }
                for (k, child) in o {
                    keys(child, &format!("{path}/{k}"), out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| keys(i, path, out)),
            _ => {}
        }
    }
    let mut bare = Vec::new();
    keys(&s, "", &mut bare);
    assert!(
        bare.is_empty(),
        "keys without a description or an example: {bare:#?}"
    );
    for enumerated in [
        "\"deny\"",
        "\"authenticated\"",
        "\"active\"",
        "\"expired\"",
        "\"clerk\"",
        "\"unlimited\"",
    ] {
        assert!(text.contains(enumerated), "{enumerated} missing");
    }
}

/// The schema the shipped policies point their editors at (`schema/policy.schema.json`)
/// is the one `tiergate schema` prints today. `TIERGATE_BLESS=1` rewrites it.
#[test]
fn the_committed_schema_is_the_generated_one() {
    let path = root().join("schema/policy.schema.json");
    let generated = format!(
        "{}\n",
        serde_json::to_string_pretty(&tiergate::policy::json_schema()).unwrap()
    );
    if std::env::var_os("TIERGATE_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == generated,
        "schema/policy.schema.json is stale: run TIERGATE_BLESS=1 cargo test --features cli --test policy_schema"
    );
    for policy in ["policies/saas.yaml", "policies/grpc.yaml"] {
        let text = std::fs::read_to_string(root().join(policy)).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schema/policy.schema.json\n"),
            "{policy} does not name the schema on its first line"
        );
    }
}
