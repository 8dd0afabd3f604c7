//! What a newcomer meets first: the README's Quickstart, run as written
//! right after the README's main command applied the example to
//! `./supportctl.db`, and the small things around it.

use crate::binary::{Scratch, copy_dir, crate_root, run, supportctl};

/// The lines of the Quickstart's shell block.
fn quickstart_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(crate_root().join("README.md")).unwrap();
    let section = &readme[readme.find("## Quickstart").expect("a Quickstart")..];
    let block = &section[section.find("```sh\n").expect("a shell block") + 6..];
    let block = &block[..block.find("```").unwrap()];
    block
        .lines()
        .map(|l| l.split("  #").next().unwrap_or(l).trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Splits a line of the block into words, keeping "quoted text" whole.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        rest = &rest[start..];
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap();
            words.push(quoted[..end].to_string());
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            words.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    words
}

#[test]
fn the_quickstart_starts_from_nothing_after_the_main_command() {
    let scratch = Scratch::new();
    let root = scratch.root();
    let examples = crate_root().join("examples");
    // The main command, as the README gives it: the example into
    // ./supportctl.db.
    let mut main = supportctl(
        root,
        [
            "apply",
            "--auto-approve",
            examples.join("acme-prod.yaml").to_str().unwrap(),
        ],
    );
    main.env_remove("SUPPORTCTL_DB");
    run(&mut main).assert_code(0);
    let main_db = std::fs::read(root.join("supportctl.db")).unwrap();

    let mut db = None;
    let mut planned = false;
    for line in quickstart_lines() {
        let words = words(&line);
        match words[0].as_str() {
            "export" => {
                let (name, value) = words[1].split_once('=').unwrap();
                assert_eq!(name, "SUPPORTCTL_DB");
                db = Some(value.to_string());
            }
            "cp" => {
                assert_eq!(words[1], "-r");
                let from = crate_root().join(&words[2]);
                copy_dir(&from, &root.join(&words[3]));
            }
            "supportctl" => {
                let mut args: Vec<String> = words[1..].to_vec();
                if args[0] == "apply" {
                    // Nobody is at a terminal to say yes.
                    args.insert(1, "--auto-approve".to_string());
                }
                let mut command = supportctl(root, &args);
                command.env(
                    "SUPPORTCTL_DB",
                    db.as_deref()
                        .expect("the Quickstart sets its database first"),
                );
                let out = run(&mut command);
                out.assert_code(0);
                if args[0] == "plan" {
                    assert!(
                        out.stdout.contains("will make these changes"),
                        "the Quickstart's plan shows the changes to make:\n{}",
                        out.transcript()
                    );
                    planned = true;
                }
            }
            other => panic!("a Quickstart line this test cannot run: {other}"),
        }
    }
    assert!(planned);
    assert_eq!(
        std::fs::read(root.join("supportctl.db")).unwrap(),
        main_db,
        "the Quickstart leaves the main command's state alone"
    );
}

#[test]
fn history_columns_line_up_whatever_the_fraction_of_a_second() {
    let scratch = Scratch::new();
    let example = crate_root().join("examples").join("acme-prod.yaml");
    let mut first = scratch.command(&["apply", "--auto-approve", example.to_str().unwrap()]);
    first.env("SUPPORTCTL_NOW", "2026-11-24T09:00:00Z");
    run(&mut first).assert_code(0);
    let edited = std::fs::read_to_string(&example)
        .unwrap()
        .replace("name: Alice Lee", "name: Alice Lee-Park");
    let second_config = scratch.write("acme.yaml", &edited);
    let mut second = scratch.command(&["apply", "--auto-approve", second_config.to_str().unwrap()]);
    second.env("SUPPORTCTL_NOW", "2026-11-24T09:00:01.123456789Z");
    run(&mut second).assert_code(0);
    let out = scratch.ok(&["history"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    let columns: Vec<usize> = lines.iter().map(|l| l.find("serial").unwrap()).collect();
    assert_eq!(columns[0], columns[1], "{}", out.stdout);
    assert!(
        out.stdout.contains("2026-11-24 09:00:01 UTC")
            && out.stdout.contains("2026-11-24 09:00:00 UTC"),
        "the journal's time is the one clock's (SUPPORTCTL_NOW), shown to the second:\n{}",
        out.stdout
    );
}

/// `init DIR` starts a config set whose every file's modeline names the
/// schema written beside it, so an editor checks it wherever the folder is
/// moved; it never writes into a folder that holds anything.
#[test]
fn init_starts_a_config_set_whose_schema_travels_with_it() {
    let scratch = Scratch::new();
    let root = scratch.root();
    let out = run(&mut supportctl(root, ["init", "mine"]));
    out.assert_code(0);
    // Moved elsewhere, as a copied example would be.
    let moved = root.join("elsewhere").join("deeper");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(root.join("mine"), &moved).unwrap();
    let schema = std::fs::read_to_string(moved.join("supportctl.schema.json")).unwrap();
    let printed = run(&mut supportctl(root, ["schema"]));
    assert_eq!(
        schema, printed.stdout,
        "the schema beside it is this supportctl's"
    );
    let mut yaml = 0;
    let mut pending = vec![moved.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                yaml += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                let first = text.lines().next().unwrap();
                let target = first
                    .strip_prefix("# yaml-language-server: $schema=")
                    .unwrap_or_else(|| panic!("{}: no modeline: {first}", path.display()));
                let resolved = path.parent().unwrap().join(target);
                assert_eq!(
                    std::fs::canonicalize(&resolved).unwrap(),
                    std::fs::canonicalize(moved.join("supportctl.schema.json")).unwrap(),
                    "{}",
                    path.display()
                );
            }
        }
    }
    assert!(yaml >= 3, "{yaml} files");
    let validated = run(&mut supportctl(root, ["validate", moved.to_str().unwrap()]));
    validated.assert_code(0);
    // Into a folder that holds something: refused, nothing written.
    std::fs::create_dir(root.join("busy")).unwrap();
    std::fs::write(root.join("busy").join("notes.txt"), "mine").unwrap();
    let refused = run(&mut supportctl(root, ["init", "busy"]));
    refused.assert_code(1);
    assert!(
        refused.stderr.contains("is not an empty folder"),
        "{}",
        refused.transcript()
    );
    assert_eq!(std::fs::read_dir(root.join("busy")).unwrap().count(), 1);
}

/// Every moment supportctl writes comes from the one clock that
/// `SUPPORTCTL_NOW` sets: an apply's journal entry, an SR, a comment.
#[test]
fn srs_and_comments_are_timed_by_the_one_clock() {
    let scratch = Scratch::new();
    let example = crate_root().join("examples").join("acme-prod.yaml");
    let at = |moment: &str, args: &[&str]| {
        let mut command = scratch.command(args);
        command.env("SUPPORTCTL_NOW", moment);
        let out = run(&mut command);
        out.assert_code(0);
        out
    };
    at(
        "2026-11-24T09:00:00Z",
        &["apply", "--auto-approve", example.to_str().unwrap()],
    );
    at(
        "2026-11-24T10:00:00Z",
        &["sr", "open", "--user", "bob", "--title", "Disk full"],
    );
    at(
        "2026-11-24T11:00:00Z",
        &[
            "sr",
            "comment",
            "1",
            "--user",
            "bob",
            "--text",
            "Logs attached",
        ],
    );
    let shown = at(
        "2026-11-24T12:00:00Z",
        &["sr", "show", "1", "--format", "json"],
    );
    let sr: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    // The clock starts at the moment given and runs on from there.
    let starts =
        |v: &serde_json::Value, moment: &str| v.as_str().is_some_and(|t| t.starts_with(moment));
    assert!(starts(&sr["opened_at"], "2026-11-24T10:00:00"), "{sr}");
    assert!(
        starts(&sr["comments"][0]["at"], "2026-11-24T11:00:00"),
        "{sr}"
    );
    let history = at("2026-11-24T12:00:00Z", &["history", "--format", "json"]);
    let history: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    assert!(
        starts(&history[0]["time"], "2026-11-24T09:00:00"),
        "{history}"
    );
}
