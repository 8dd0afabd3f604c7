//! The command line describing itself: `--version` with its commit, shell
//! completions, and the manual pages checked in under `docs/man/`.

use std::process::Command;

use crate::binary::{Scratch, assert_bash_syntax, crate_root, run, supportctl};

/// `--version` names the package version and the git commit the binary was
/// built from (`unknown` when the source is not a git work tree).
#[test]
fn version_names_the_git_commit() {
    let outcome = run(&mut supportctl(&crate_root(), ["--version"]));
    outcome.assert_code(0);
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(crate_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    assert_eq!(
        outcome.stdout,
        format!("supportctl {} (commit {head})\n", env!("CARGO_PKG_VERSION"))
    );
}

/// Every shell gets a script that names every command and flag; bash's is
/// checked for syntax by bash itself.
#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let outcome = run(&mut supportctl(&crate_root(), ["completions", shell]));
        outcome.assert_code(0);
        for word in ["watch", "completions", "allow-mass-delete", "redact"] {
            assert!(
                outcome.stdout.contains(word),
                "{shell} completions lack `{word}`"
            );
        }
    }
    let scratch = Scratch::new();
    let bash = run(&mut supportctl(&crate_root(), ["completions", "bash"])).stdout;
    let script = scratch.write("supportctl.bash", &bash);
    assert_bash_syntax(&script, "the bash completions");
    // Loaded into bash, it completes a subcommand.
    let probe = format!(
        "source {}; COMP_WORDS=(supportctl wat); COMP_CWORD=1; _supportctl supportctl wat supportctl; echo \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let completed = Command::new("bash")
        .args(["-c", &probe])
        .output()
        .expect("bash runs");
    assert_eq!(String::from_utf8_lossy(&completed.stdout).trim(), "watch");
    let wrong = run(&mut supportctl(&crate_root(), ["completions", "tcsh"]));
    wrong.assert_code(2);
}

/// The pages in `docs/man/` are what `supportctl man --out` writes now: a
/// flag added without regenerating them fails here. Regenerate with
/// `cargo run -- man --out docs/man`.
#[test]
fn the_man_pages_in_docs_are_current() {
    let scratch = Scratch::new();
    let out = scratch.path("man");
    run(&mut supportctl(
        &crate_root(),
        ["man", "--out", out.to_str().expect("UTF-8")],
    ))
    .assert_code(0);
    let names = |dir: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("a folder")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    };
    let checked_in = crate_root().join("docs/man");
    assert_eq!(names(&out), names(&checked_in), "regenerate docs/man");
    for name in names(&out) {
        assert_eq!(
            std::fs::read_to_string(out.join(&name)).expect("generated"),
            std::fs::read_to_string(checked_in.join(&name)).expect("checked in"),
            "docs/man/{name} is out of date: cargo run -- man --out docs/man"
        );
    }
    for page in ["supportctl.1", "supportctl-plan.1", "supportctl-sr-open.1"] {
        assert!(names(&out).contains(&page.to_string()), "{page}");
    }
    let main = run(&mut supportctl(&crate_root(), ["man"]));
    main.assert_code(0);
    assert_eq!(
        main.stdout,
        std::fs::read_to_string(checked_in.join("supportctl.1")).expect("checked in")
    );
    assert!(main.stdout.starts_with(".ie") && main.stdout.contains(".TH supportctl 1"));
}

/// The config reference in docs/reference.md is `supportctl schema --format
/// markdown`, byte for byte: the reference is generated from the schema,
/// never edited.
#[test]
fn the_config_reference_is_generated_from_the_schema() {
    let reference =
        std::fs::read_to_string(crate_root().join("docs/reference.md")).expect("docs/reference.md");
    let start = "<!-- config-reference:start -->\n";
    let end = "<!-- config-reference:end -->";
    let from = reference.find(start).expect("the start marker") + start.len();
    let to = reference.find(end).expect("the end marker");
    let generated = run(&mut supportctl(
        &crate_root(),
        ["schema", "--format", "markdown"],
    ));
    generated.assert_code(0);
    assert_eq!(
        &reference[from..to],
        generated.stdout,
        "regenerate the config reference in docs/reference.md with `supportctl schema --format markdown`"
    );
    // Every field of the schema has its row.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate_root().join("schema/supportctl.schema.json"))
            .expect("schema"),
    )
    .expect("JSON");
    for (name, definition) in schema["definitions"].as_object().expect("definitions") {
        for field in definition["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            assert!(
                generated.stdout.contains(&format!(".{field}` |")),
                "{name}.{field} has no row"
            );
        }
    }
}

/// Whether `actual` has the shape of `documented`: objects with the same
/// keys, lists whose every item has the shape of the
/// documented first item, and `null` standing for any value on either side.
pub(crate) fn same_shape(documented: &serde_json::Value, actual: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (documented, actual) {
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Object(d), Value::Object(a)) => {
            let (dk, ak): (Vec<&String>, Vec<&String>) = (d.keys().collect(), a.keys().collect());
            assert_eq!(dk, ak, "the fields at {at} (sorted)");
            for (key, value) in d {
                same_shape(value, &a[key], &format!("{at}.{key}"));
            }
        }
        (Value::Array(d), Value::Array(a)) => {
            if let Some(first) = d.first() {
                for (i, item) in a.iter().enumerate() {
                    same_shape(first, item, &format!("{at}[{i}]"));
                }
            }
        }
        (d, a) => assert_eq!(
            std::mem::discriminant(d),
            std::mem::discriminant(a),
            "the type at {at}: documented {d}, printed {a}"
        ),
    }
}

/// The JSON example of docs/reference.md marked `<!-- json-shape: NAME -->`.
pub(crate) fn documented_json(name: &str) -> serde_json::Value {
    let reference =
        std::fs::read_to_string(crate_root().join("docs/reference.md")).expect("docs/reference.md");
    let marker = format!("<!-- json-shape: {name} -->\n```json\n");
    let start = reference
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} example"))
        + marker.len();
    let end = reference[start..].find("```").expect("the block ends") + start;
    serde_json::from_str(&reference[start..end])
        .unwrap_or_else(|e| panic!("the {name} example is not JSON: {e}"))
}

/// The JSON examples in docs/reference.md's "JSON formats" are the shapes
/// the commands print: the same fields, of the same types.
#[test]
fn the_documented_json_formats_are_what_the_commands_print() {
    let documented = documented_json;
    let scratch = Scratch::new();
    let example = crate_root().join("examples/acme-prod");
    let with_db = |args: &[&str]| scratch.ok(args).stdout;
    with_db(&["apply", "--auto-approve", example.to_str().expect("UTF-8")]);
    with_db(&["sr", "open", "--user", "bob", "--title", "Disk full"]);
    with_db(&[
        "sr", "comment", "1", "--user", "dankim", "--text", "Looking.",
    ]);
    for (name, args) in [
        ("show", &["show", "--format", "json"][..]),
        ("access", &["access", "bob", "--format", "json"]),
        ("sr", &["sr", "show", "1", "--format", "json"]),
        ("history", &["history", "--format", "json"]),
    ] {
        let printed: serde_json::Value = serde_json::from_str(&with_db(args)).expect("JSON");
        same_shape(&documented(name), &printed, name);
    }
    let all: serde_json::Value =
        serde_json::from_str(&with_db(&["access", "--all", "--format", "json"])).expect("JSON");
    same_shape(
        &serde_json::json!([documented("access")]),
        &all,
        "access --all",
    );
    let list: serde_json::Value =
        serde_json::from_str(&with_db(&["sr", "list", "--format", "json"])).expect("JSON");
    same_shape(&serde_json::json!([documented("sr")]), &list, "sr list");
}
