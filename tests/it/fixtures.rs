//! The data-driven cases: `tests/data/valid/` and `tests/data/invalid/`.
//!
//! A case is a `.yaml` file or a directory (a config set of several files).
//! Every valid case must validate with no finding at all. Every invalid case
//! sits beside `NAME.snap`, the exact exit code and output of
//! `supportctl validate NAME` run from `tests/data/invalid`, so adding a case
//! is adding a file (then `INSTA_UPDATE=always cargo test --test it`, and
//! reading the new snapshot before committing it). A case named after a rule
//! (`e117-…`, `w202-…`) must report that rule; every rule has such a case.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use supportctl::diag::{Rule, Severity};

use crate::binary::{Outcome, crate_root, data_dir, run, supportctl};

/// The cases in `dir`: files and folders, hidden ones and snapshots left out,
/// in sorted order.
pub fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| {
            let name = file_name(path);
            !name.starts_with('.')
                && !name.ends_with(".snap")
                && !name.ends_with(".snap.new")
                && !name.ends_with(".pending-snap")
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", dir.display());
    cases
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The case's name: its file name without `.yaml`/`.yml`, or its folder name.
fn case_name(case: &Path) -> String {
    let name = file_name(case);
    if case.is_dir() {
        return name;
    }
    name.strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))
        .unwrap_or_else(|| panic!("an invalid case is a .yaml file or a folder: {name}"))
        .to_string()
}

/// The rule a case is named after (`e117-unknown-user` → `E117`), if any.
fn rule_of(name: &str) -> Option<Rule> {
    let code = name.split('-').next()?.to_ascii_uppercase();
    Rule::ALL.iter().copied().find(|r| r.code() == code)
}

fn validate_case(dir: &Path, case: &Path) -> Outcome {
    let outcome = run(&mut supportctl(dir, ["validate".into(), file_name(case)]));
    outcome.assert_no_panic();
    outcome
}

#[test]
fn invalid_cases_print_their_snapshots() {
    let dir = data_dir().join("invalid");
    let mut failures = Vec::new();
    for case in cases(&dir) {
        let name = case_name(&case);
        let outcome = validate_case(&dir, &case);
        let transcript = outcome.transcript();
        let matched = catch_unwind(AssertUnwindSafe(|| {
            let mut settings = insta::Settings::clone_current();
            settings.set_snapshot_path(&dir);
            settings.set_prepend_module_to_snapshot(false);
            settings.set_omit_expression(true);
            settings.set_input_file(&case);
            settings.bind(|| insta::assert_snapshot!(name.as_str(), transcript));
        }));
        if matched.is_err() {
            failures.push(name);
        }
    }
    assert!(
        failures.is_empty(),
        "these cases do not print their snapshots (see the diffs above): {failures:?}\n\
         for a new or deliberately changed case, run `INSTA_UPDATE=always cargo test --test it` \
         and review the .snap beside it"
    );
}

#[test]
fn invalid_cases_exit_as_their_findings_say() {
    let dir = data_dir().join("invalid");
    for case in cases(&dir) {
        let name = case_name(&case);
        let outcome = validate_case(&dir, &case);
        let errors = outcome.stderr.matches(": error[").count()
            + outcome
                .stderr
                .lines()
                .filter(|l| l.starts_with("error["))
                .count();
        match rule_of(&name).map(Rule::severity) {
            // A warning alone does not fail `validate`.
            Some(Severity::Warning) => {
                outcome.assert_code(0);
                assert_eq!(errors, 0, "{name}: a warning case has errors");
                assert!(
                    outcome
                        .stdout
                        .starts_with("The configuration is valid: tenancy `"),
                    "{name}: {}",
                    outcome.stdout
                );
                assert!(outcome.stdout.contains("(1 warning)"), "{name}");
            }
            _ => {
                outcome.assert_code(1);
                assert!(errors > 0, "{name}: exit 1 without an error");
                assert!(outcome.stdout.is_empty(), "{name}: {}", outcome.stdout);
                let last = outcome.stderr.lines().last().unwrap_or_default();
                assert!(
                    last.starts_with("error: the configuration is invalid: "),
                    "{name}: the summary is not the last line: {last}"
                );
            }
        }
        if let Some(rule) = rule_of(&name) {
            let label = match rule.severity() {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let wanted = format!("{label}[{}]", rule.code());
            assert!(
                outcome.stderr.contains(&wanted),
                "{name} does not report {wanted}:\n{}",
                outcome.stderr
            );
        }
    }
}

#[test]
fn every_rule_has_a_case_and_every_snapshot_a_case() {
    let dir = data_dir().join("invalid");
    let names: Vec<String> = cases(&dir).iter().map(|c| case_name(c)).collect();
    for rule in Rule::ALL {
        let prefix = format!("{}-", rule.code().to_ascii_lowercase());
        assert!(
            names.iter().any(|n| n.starts_with(&prefix)),
            "no case in tests/data/invalid for {} ({}): add `{prefix}{}.yaml`",
            rule.code(),
            rule.name(),
            rule.name()
        );
    }
    for name in &names {
        if let Some(first) = name.split('-').next()
            && first.len() == 4
            && first[1..].bytes().all(|b| b.is_ascii_digit())
        {
            assert!(
                rule_of(name).is_some(),
                "case `{name}` is named after no rule of src/diag/mod.rs"
            );
        }
    }
    for entry in std::fs::read_dir(&dir).expect("tests/data/invalid") {
        let path = entry.expect("an entry").path();
        let name = file_name(&path);
        assert!(
            !name.ends_with(".snap.new") && !name.ends_with(".pending-snap"),
            "an unreviewed snapshot is left in tests/data/invalid: {name}"
        );
        if let Some(stem) = name.strip_suffix(".snap") {
            assert!(
                names.iter().any(|n| n == stem),
                "snapshot {name} has no case beside it: remove it"
            );
        }
    }
}

/// One `FILE:LINE:COL:` header of a text diagnostic or a note, and the
/// snippet under it.
#[derive(Debug)]
struct Placed {
    /// True for a note's place, false for a diagnostic's own header.
    note: bool,
    /// True for a warning's header.
    warning: bool,
    file: String,
    line: u32,
    column: u32,
    /// The line number shown in the snippet and the caret's column, when the
    /// diagnostic shows the source.
    snippet: Option<(u32, usize)>,
}

/// Reads every place the text output names, and the snippet under it.
fn places(stderr: &str) -> Vec<Placed> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let (place, note, warning) = if let Some((place, _)) = line.split_once(": error[") {
            (place, false, false)
        } else if let Some((place, _)) = line.split_once(": warning[") {
            (place, false, true)
        } else if let Some(rest) = line.strip_prefix("  note: ") {
            match rest.rsplit_once(" at ") {
                Some((_, place)) => (place, true, false),
                None => continue,
            }
        } else {
            continue;
        };
        let mut parts = place.rsplitn(3, ':');
        let (Some(column), Some(number), Some(file)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (Ok(line_no), Ok(column)) = (number.parse(), column.parse()) else {
            continue;
        };
        let snippet = snippet_at(&lines, i + 1);
        found.push(Placed {
            note,
            warning,
            file: file.to_string(),
            line: line_no,
            column,
            snippet,
        });
    }
    found
}

/// Reads a snippet (`  |`, `N | text`, `  | ^^^`) starting at `lines[start]`:
/// the line number it shows and the caret's 1-based column in the source.
fn snippet_at(lines: &[&str], start: usize) -> Option<(u32, usize)> {
    let source = lines.get(start + 1)?;
    let carets = lines.get(start + 2)?;
    let (number, _) = source.trim_start().split_once(" | ")?;
    let number: u32 = number.parse().ok()?;
    let bar = source.find(" | ")? + 3;
    let caret = carets.find('^')?;
    let column = carets[bar..caret].chars().count() + 1;
    Some((number, column))
}

#[test]
fn every_caret_sits_at_the_place_its_header_names() {
    let dir = data_dir().join("invalid");
    let mut checked = 0;
    for case in cases(&dir) {
        let outcome = validate_case(&dir, &case);
        for place in places(&outcome.stderr) {
            let Some((shown_line, caret_column)) = place.snippet else {
                continue;
            };
            checked += 1;
            assert_eq!(
                (shown_line, caret_column as u32),
                (place.line, place.column),
                "{}: the snippet of {}:{}:{} shows line {shown_line} with a caret at column {caret_column}\n{}",
                case.display(),
                place.file,
                place.line,
                place.column,
                outcome.stderr
            );
        }
    }
    assert!(
        checked > 40,
        "only {checked} snippets found: is the format still parsed?"
    );
}

#[test]
fn every_violation_is_reported_in_one_run_sorted_by_file_and_line() {
    let dir = data_dir().join("invalid");
    for (case, at_least, files) in [
        ("multi-errors-sorted.yaml", 8, 1),
        ("multi-errors-across-files", 5, 4),
    ] {
        let outcome = run(&mut supportctl(&dir, ["validate", case]));
        outcome.assert_code(1).assert_no_panic();
        let found = places(&outcome.stderr);
        // Notes name earlier places; the diagnostics' own headers are in order.
        let own: Vec<(&str, u32, u32)> = found
            .iter()
            .filter(|p| !p.note)
            .map(|p| (p.file.as_str(), p.line, p.column))
            .collect();
        assert!(
            own.len() >= at_least,
            "{case}: expected at least {at_least} findings in one run, got {}:\n{}",
            own.len(),
            outcome.stderr
        );
        let mut sorted = own.clone();
        sorted.sort();
        assert_eq!(
            own, sorted,
            "{case}: findings are not sorted by file and line"
        );
        let mut named_files: Vec<&str> = own.iter().map(|(f, _, _)| *f).collect();
        named_files.dedup();
        assert!(
            named_files.len() >= files,
            "{case}: expected findings in {files} files, got {named_files:?}"
        );
        let warnings = found.iter().filter(|p| p.warning).count();
        let errors = own.len() - warnings;
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        let summary = format!(
            "error: the configuration is invalid: {}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        );
        assert!(
            outcome.stderr.ends_with(&format!("{summary}\n")),
            "{case}: the summary does not count the findings: expected `{summary}`\n{}",
            outcome.stderr
        );
    }
}

#[test]
fn a_duplicate_user_across_files_names_both_places() {
    let dir = data_dir().join("invalid");
    let case = "e007-duplicate-user-across-files";
    let outcome = run(&mut supportctl(&dir, ["validate", case]));
    outcome.assert_code(1).assert_no_panic();
    let text = &outcome.stderr;
    assert!(
        text.contains(&format!(
            "{case}/users/erin.yaml:2:3: error[E007]: user `erin` is declared twice"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "note: first declared at {case}/users/erin-park.yaml:3:3"
        )),
        "{text}"
    );
}

#[test]
fn valid_cases_pass_without_a_finding() {
    let dir = data_dir().join("valid");
    for case in cases(&dir) {
        let outcome = validate_case(&dir, &case);
        outcome.assert_code(0);
        assert_eq!(
            outcome.stderr,
            "",
            "{}: a valid case prints findings",
            case.display()
        );
        assert!(
            outcome
                .stdout
                .starts_with("The configuration is valid: tenancy `"),
            "{}: {}",
            case.display(),
            outcome.stdout
        );
    }
}

#[test]
fn the_examples_are_valid_and_describe_the_same_tenancy() {
    let root = crate_root();
    let file = run(&mut supportctl(
        &root,
        ["validate", "examples/acme-prod.yaml"],
    ));
    let folder = run(&mut supportctl(&root, ["validate", "examples/acme-prod"]));
    for outcome in [&file, &folder] {
        outcome.assert_code(0).assert_no_panic();
        assert_eq!(outcome.stderr, "", "{}", outcome.shown);
        assert!(
            outcome
                .stdout
                .starts_with("The configuration is valid: tenancy `acme-prod`"),
            "{}",
            outcome.stdout
        );
    }
    assert_eq!(
        file.stdout, folder.stdout,
        "the single-file example and the GitOps layout differ"
    );
}
