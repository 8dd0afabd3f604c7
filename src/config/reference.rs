//! The config reference for people: a Markdown table of every field,
//! generated from the JSON Schema (`supportctl schema --format markdown`), so
//! docs/reference.md's config reference is the schema's, word for word.

use serde_json::Value;

/// The sections in the order a config file usually writes them.
const SECTIONS: [(&str, &str); 5] = [
    ("tenancy", "tenancy"),
    ("users", "users.ID"),
    ("memberships", "memberships[]"),
    ("approvals", "approvals[]"),
    ("support_links", "support_links[]"),
];

/// Renders the reference of `schema` (the text of `supportctl schema`).
pub fn markdown(schema: &str) -> String {
    let root: Value = serde_json::from_str(schema).unwrap_or_default();
    let mut out = String::from("| field | type | required | meaning |\n|---|---|---|---|\n");
    for (section, path) in SECTIONS {
        let node = &root["properties"][section];
        row(&mut out, section, &kind(&root, node), false, node);
        let target = match section {
            "users" => node["patternProperties"]
                .as_object()
                .and_then(|p| p.values().next())
                .cloned()
                .unwrap_or_default(),
            "tenancy" => node.clone(),
            _ => node["items"].clone(),
        };
        fields(&mut out, &root, path, &resolve(&root, &target));
    }
    out
}

fn fields(out: &mut String, root: &Value, prefix: &str, object: &Value) {
    let required: Vec<&str> = object["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = object["properties"].as_object() else {
        return;
    };
    // Required fields first, each group in the schema's (alphabetical) order.
    let mut names: Vec<&String> = properties.keys().collect();
    names.sort_by_key(|n| !required.contains(&n.as_str()));
    for name in names {
        let node = &properties[name];
        let path = format!("{prefix}.{name}");
        row(
            out,
            &path,
            &kind(root, node),
            required.contains(&name.as_str()),
            node,
        );
        let inner = resolve(root, node);
        if inner["type"] == "object" && inner["properties"].is_object() {
            fields(out, root, &path, &inner);
        }
    }
}

fn row(out: &mut String, path: &str, kind: &str, required: bool, node: &Value) {
    let meaning = node["description"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|");
    out.push_str(&format!(
        "| `{path}` | {kind} | {} | {meaning} |\n",
        if required { "yes" } else { "" }
    ));
}

/// The node a reference, a nullable `anyOf` or a one-item `allOf` stands for.
fn resolve(root: &Value, node: &Value) -> Value {
    if let Some(reference) = node["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or_default();
        return resolve(root, &root["definitions"][name]);
    }
    for key in ["anyOf", "allOf"] {
        if let Some(options) = node[key].as_array()
            && options.len() <= 2
            && let Some(real) = options.iter().find(|o| o["type"] != "null")
        {
            return resolve(root, real);
        }
    }
    node.clone()
}

/// A field's type, as a person reads it.
fn kind(root: &Value, node: &Value) -> String {
    let node = resolve(root, node);
    if let Some(options) = node["oneOf"].as_array() {
        let values: Vec<String> = options
            .iter()
            .filter_map(|o| o["const"].as_str())
            .map(|v| format!("`{v}`"))
            .collect();
        return values.join(" or ");
    }
    let types: Vec<&str> = match &node["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    match types.iter().find(|t| **t != "null").copied() {
        Some("array") => format!("list of {}", kind(root, &node["items"])),
        Some("object") if node["patternProperties"].is_object() => {
            "mapping of id to user".to_string()
        }
        Some("object") => "mapping".to_string(),
        Some("string") if node["pattern"].as_str() == Some("^\\d{4}-\\d{2}-\\d{2}$") => {
            "date `YYYY-MM-DD`".to_string()
        }
        Some(other) => other.to_string(),
        None => "any".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_field_of_the_schema_has_a_row() {
        let text = super::markdown(&super::super::raw::json_schema());
        for path in [
            "`tenancy.csi` | string | yes",
            "`users.ID.support_account.phone` | string | yes",
            "`approvals[].role` | `user` or `admin` | yes",
            "`approvals[].access` | list of `create_sr` or `view_sr` or `download` |",
            "`support_links[].expires` | date `YYYY-MM-DD` |",
            "`users` | mapping of id to user |",
        ] {
            assert!(text.contains(path), "no `{path}` in\n{text}");
        }
        assert_eq!(text.lines().count(), 2 + 5 + 4 + 4 + 2 + 1 + 5 + 3);
    }
}
