//! The JSON Schema: `supportctl schema` is the checked-in file, and the
//! schema accepts the config files the project ships and rejects what the
//! format forbids.

use std::path::{Path, PathBuf};

use jsonschema::Validator;
use serde_json::{Value, json};

use crate::binary::{crate_root, data_dir, run, supportctl};

const SCHEMA_FILE: &str = "schema/supportctl.schema.json";

fn checked_in() -> String {
    std::fs::read_to_string(crate_root().join(SCHEMA_FILE)).expect("the checked-in schema")
}

fn schema() -> Value {
    serde_json::from_str(&checked_in()).expect("the schema is JSON")
}

fn validator() -> Validator {
    jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema())
        .expect("the schema is a valid draft-07 schema")
}

/// A YAML config file as the JSON value an editor validates; `None` for a
/// file with no document (empty, or only comments), which editors accept.
fn yaml_to_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return None;
    }
    // Without the YAML crate's guess that many aliases of few anchors are an
    // attack: a fixture shares one anchor among a hundred users, as anchors
    // are meant to be used (supportctl budgets aliases by the file's size).
    let mut budget = serde_saphyr::Budget::default();
    budget.enforce_alias_anchor_ratio = false;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    Some(
        serde_saphyr::from_str_with_options::<Value>(text, options)
            .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display())),
    )
}

/// Every `*.yaml`/`*.yml` under `dir`, hidden entries skipped, as supportctl
/// walks a config set.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        if next.is_file() {
            found.push(next);
            continue;
        }
        for entry in std::fs::read_dir(&next).expect("a readable folder") {
            let path = entry.expect("an entry").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if name.ends_with(".yaml") || name.ends_with(".yml") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn assert_valid(validator: &Validator, files: &[PathBuf]) {
    assert!(!files.is_empty(), "no files to check");
    for file in files {
        let Some(instance) = yaml_to_json(file) else {
            continue;
        };
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("  at `{}`: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} does not match {SCHEMA_FILE}:\n{}",
            file.display(),
            errors.join("\n")
        );
    }
}

#[test]
fn the_schema_command_prints_the_checked_in_schema() {
    let outcome = run(&mut supportctl(&crate_root(), ["schema"]));
    outcome.assert_code(0).assert_no_panic();
    assert_eq!(outcome.stderr, "");
    assert!(
        outcome.stdout == checked_in(),
        "{SCHEMA_FILE} has drifted from the config types: run \
         `supportctl schema > {SCHEMA_FILE}` (e.g. `cargo run -q -- schema > {SCHEMA_FILE}`) \
         and commit the result"
    );
}

#[test]
fn the_schema_is_draft_07_with_descriptions() {
    let schema = schema();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let email = &schema["definitions"]["RawUser"]["properties"]["email"];
    assert!(
        email["description"].as_str().is_some_and(|d| !d.is_empty()),
        "the `email` property has no description: {email}"
    );
    // Editors show descriptions on hover: every property of every object has one.
    let mut objects = vec![("#".to_string(), &schema)];
    if let Some(definitions) = schema["definitions"].as_object() {
        objects.extend(
            definitions
                .iter()
                .map(|(name, d)| (format!("#/definitions/{name}"), d)),
        );
    }
    let mut checked = 0;
    for (at, object) in objects {
        let Some(properties) = object["properties"].as_object() else {
            continue;
        };
        for (name, property) in properties {
            checked += 1;
            assert!(
                property["description"]
                    .as_str()
                    .is_some_and(|d| !d.trim().is_empty()),
                "{at}: property `{name}` has no description"
            );
        }
    }
    assert!(checked >= 20, "only {checked} properties found");
}

#[test]
fn every_example_matches_the_schema() {
    let root = crate_root().join("examples");
    // Kubernetes manifests are not config sets; the config set the
    // ConfigMap carries is checked by `kubernetes::*`.
    let manifests = root.join("kubernetes");
    let files: Vec<PathBuf> = yaml_files(&root)
        .into_iter()
        .filter(|f| !f.starts_with(&manifests))
        .collect();
    assert!(files.iter().any(|f| f.ends_with("acme-prod.yaml")));
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("acme-prod/users/alice.yaml"))
    );
    assert_valid(&validator(), &files);
}

#[test]
fn every_valid_fixture_matches_the_schema() {
    assert_valid(&validator(), &yaml_files(&data_dir().join("valid")));
}

#[test]
fn the_schema_rejects_what_the_format_forbids() {
    let validator = validator();
    let tenancy = json!({ "name": "acme", "csi": "20817431", "admin": "dankim" });
    let user = json!({ "email": "dan@acme.example" });
    let accepted = json!({ "tenancy": tenancy, "users": { "dankim": user } });
    assert!(validator.is_valid(&accepted), "the base document is valid");
    for (what, document) in [
        (
            "an unknown section",
            json!({ "tenancy": tenancy, "user": {} }),
        ),
        (
            "an unknown field in a user",
            json!({ "users": { "dankim": { "email": "d@acme.example", "emial": "x" } } }),
        ),
        (
            "an unknown field in the tenancy",
            json!({ "tenancy": { "name": "a", "csi": "1", "admin": "d", "region": "x" } }),
        ),
        ("users as a list", json!({ "users": ["dankim"] })),
        ("a list at the top", json!([{ "tenancy": tenancy }])),
        ("a scalar at the top", json!("acme")),
        (
            "a missing email",
            json!({ "users": { "dankim": { "name": "Dan" } } }),
        ),
        (
            "a CSI as a number",
            json!({ "tenancy": { "name": "a", "csi": 20817431, "admin": "d" } }),
        ),
        (
            "a CSI that is not digits",
            json!({ "tenancy": { "name": "a", "csi": "CSI-1", "admin": "d" } }),
        ),
        (
            "an invalid user id",
            json!({ "users": { "Dan Kim": user } }),
        ),
        (
            "an unknown role",
            json!({ "approvals": [{ "user": "a", "role": "owner" }] }),
        ),
        (
            "an unknown privilege",
            json!({ "approvals": [{ "user": "a", "role": "user", "access": ["delete_sr"] }] }),
        ),
        ("a missing role", json!({ "approvals": [{ "user": "a" }] })),
        (
            "an expiry that is not a date",
            json!({ "support_links": [{ "user": "a", "expires": "next week" }] }),
        ),
        (
            "an empty phone",
            json!({ "users": { "a": { "email": "a@x.example",
                "support_account": { "phone": "", "timezone": "UTC" } } } }),
        ),
        (
            "a phone that shows nothing",
            json!({ "users": { "a": { "email": "a@x.example",
                "support_account": { "phone": "\u{200B} \u{3164}\u{202E}", "timezone": "UTC" } } } }),
        ),
        (
            "a redacted phone",
            json!({ "users": { "a": { "email": "a@x.example",
                "support_account": { "phone": "(redacted)", "timezone": "UTC" } } } }),
        ),
        (
            "memberships as a mapping",
            json!({ "memberships": { "user": "a" } }),
        ),
    ] {
        assert!(
            !validator.is_valid(&document),
            "the schema accepts {what}: {document}"
        );
    }
}

#[test]
fn the_schema_rejects_the_invalid_cases_it_can_see() {
    // Rules about the shape of a single file are in the schema too, so an
    // editor flags them before `validate` runs.
    let validator = validator();
    let dir = data_dir().join("invalid");
    let shape_rules = [
        "e004-", "e005-", "e006-", "e101-", "e104-", "e115-", "e119-", "e120-",
    ];
    let mut checked = 0;
    let mut accepted = Vec::new();
    for file in yaml_files(&dir) {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        if !shape_rules.iter().any(|prefix| name.starts_with(prefix)) {
            continue;
        }
        let instance = yaml_to_json(&file).expect("a document");
        if validator.is_valid(&instance) {
            accepted.push(name.into_owned());
        }
        checked += 1;
    }
    assert!(checked >= shape_rules.len(), "only {checked} cases checked");
    assert!(
        accepted.is_empty(),
        "{SCHEMA_FILE} accepts these invalid cases: {accepted:?}"
    );
}
