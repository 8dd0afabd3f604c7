//! The command-line contract (docs/reference.md, *Commands* and *JSON formats*): what `validate` prints in each format,
//! exit codes, help, usage errors, colour, and output into a closed pipe.

use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;
use supportctl::diag::{Rule, Severity};

use crate::binary::{
    Outcome, Scratch, crate_root, data_dir, fixed_environment, run, supportctl, wait_or_kill,
};

fn invalid_dir() -> std::path::PathBuf {
    data_dir().join("invalid")
}

fn validate_invalid(args: &[&str]) -> Outcome {
    let mut all = vec!["validate"];
    all.extend_from_slice(args);
    let outcome = run(&mut supportctl(&invalid_dir(), all));
    outcome.assert_no_panic();
    outcome
}

#[test]
fn validate_passes_the_examples_with_exit_0() {
    for example in ["examples/acme-prod.yaml", "examples/acme-prod"] {
        let outcome = run(&mut supportctl(&crate_root(), ["validate", example]));
        outcome.assert_code(0).assert_no_panic();
        assert!(
            outcome.stdout.contains("The configuration is valid"),
            "{}",
            outcome.stdout
        );
    }
}

#[test]
fn validate_fails_an_invalid_config_with_exit_1() {
    let outcome = validate_invalid(&["e117-unknown-user.yaml"]);
    outcome.assert_code(1);
    assert_eq!(
        outcome.stdout, "",
        "data goes to stdout, findings to stderr"
    );
    assert!(outcome.stderr.starts_with(
        "e117-unknown-user.yaml:17:11: error[E117]: membership user `alcie` is not a declared user\n"
    ), "{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .ends_with("error: the configuration is invalid: 1 error, 0 warnings\n"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn warnings_alone_exit_0() {
    for case in [
        "w201-linked-user-pending.yaml",
        "w202-expired-grant.yaml",
        "w203-single-csi-admin.yaml",
    ] {
        let outcome = validate_invalid(&[case]);
        outcome.assert_code(0);
        assert!(
            outcome.stderr.contains(": warning[W20"),
            "{}",
            outcome.stderr
        );
        assert!(!outcome.stderr.contains("error"), "{}", outcome.stderr);
        assert!(
            outcome
                .stdout
                .starts_with("The configuration is valid: tenancy `acme-test`")
                && outcome.stdout.ends_with(" (1 warning).\n"),
            "{}",
            outcome.stdout
        );
    }
}

/// The located diagnostics of the text output, as (file, line, column, code).
fn text_findings(stderr: &str) -> Vec<(String, u64, u64, String)> {
    stderr
        .lines()
        .filter_map(|l| {
            let (place, rest) = l
                .split_once(": error[")
                .or_else(|| l.split_once(": warning["))?;
            let code = rest.split(']').next()?.to_string();
            let mut parts = place.rsplitn(3, ':');
            let column = parts.next()?.parse().ok()?;
            let line = parts.next()?.parse().ok()?;
            Some((parts.next()?.to_string(), line, column, code))
        })
        .collect()
}

fn json_report(outcome: &Outcome) -> Value {
    serde_json::from_str(&outcome.stdout).unwrap_or_else(|e| {
        panic!(
            "`{}` printed no JSON ({e}):\n{}",
            outcome.shown, outcome.stdout
        )
    })
}

#[test]
fn json_format_gives_every_finding_with_its_place_code_and_hint() {
    let case = "multi-errors-sorted.yaml";
    let outcome = validate_invalid(&["--format", "json", case]);
    outcome.assert_code(1);
    assert_eq!(outcome.stderr, "", "JSON mode prints nothing on stderr");
    let report = json_report(&outcome);
    assert_eq!(report["format_version"], 1);
    assert_eq!(report["valid"], false);
    let diagnostics = report["diagnostics"].as_array().expect("a list");
    let mut errors = 0;
    let mut warnings = 0;
    let mut places = Vec::new();
    for d in diagnostics {
        for field in [
            "file", "line", "column", "code", "name", "severity", "message", "hint",
        ] {
            assert!(d.get(field).is_some(), "no `{field}` in {d}");
        }
        let code = d["code"].as_str().expect("a code");
        let rule = Rule::ALL
            .iter()
            .find(|r| r.code() == code)
            .unwrap_or_else(|| panic!("unknown code {code}"));
        assert_eq!(d["name"], rule.name(), "{d}");
        let severity = match rule.severity() {
            Severity::Error => {
                errors += 1;
                "error"
            }
            Severity::Warning => {
                warnings += 1;
                "warning"
            }
        };
        assert_eq!(d["severity"], severity, "{d}");
        assert_eq!(d["file"], case, "{d}");
        assert!(!d["message"].as_str().unwrap_or_default().is_empty(), "{d}");
        assert!(d["hint"].is_string() || d["hint"].is_null(), "{d}");
        assert!(d["related"].is_array(), "{d}");
        places.push((
            d["file"].as_str().unwrap_or_default().to_string(),
            d["line"].as_u64().expect("a line"),
            d["column"].as_u64().expect("a column"),
            code.to_string(),
        ));
    }
    assert_eq!(report["errors"], errors);
    assert_eq!(report["warnings"], warnings);
    assert!(errors >= 7, "{report}");

    let alcie = diagnostics
        .iter()
        .find(|d| d["code"] == "E117" && d["line"] == 22)
        .expect("the unknown user `alcie`");
    assert_eq!(alcie["column"], 11);
    assert_eq!(alcie["name"], "unknown-user");
    assert_eq!(
        alcie["message"],
        "membership user `alcie` is not a declared user"
    );
    assert_eq!(alcie["hint"], "did you mean `alice`?");

    // The same findings, in the same order, as the text output.
    let text = validate_invalid(&[case]);
    assert_eq!(places, text_findings(&text.stderr));
}

#[test]
fn json_format_names_both_places_of_a_duplicate() {
    let outcome = validate_invalid(&["--format", "json", "e106-duplicate-email.yaml"]);
    outcome.assert_code(1);
    let report = json_report(&outcome);
    let d = &report["diagnostics"][0];
    assert_eq!(d["code"], "E106");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(13), Some(12))
    );
    let related = &d["related"][0];
    assert_eq!(related["file"], "e106-duplicate-email.yaml");
    assert_eq!(
        (related["line"].as_u64(), related["column"].as_u64()),
        (Some(10), Some(12))
    );
    assert_eq!(related["message"], "first used");
}

#[test]
fn json_format_of_a_finding_without_a_place_has_null_location() {
    let outcome = validate_invalid(&["--format", "json", "e008-tenancy-missing-in-folder"]);
    outcome.assert_code(1);
    let report = json_report(&outcome);
    let d = &report["diagnostics"][0];
    assert_eq!(d["code"], "E008");
    assert_eq!(d["name"], "tenancy-missing");
    assert!(d["file"].is_null() && d["line"].is_null() && d["column"].is_null());
}

#[test]
fn json_format_of_a_valid_config_is_an_empty_report() {
    let outcome = run(&mut supportctl(
        &crate_root(),
        ["validate", "--format", "json", "examples/acme-prod"],
    ));
    outcome.assert_code(0);
    assert_eq!(outcome.stderr, "");
    let report = json_report(&outcome);
    assert_eq!(report["valid"], true);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["warnings"], 0);
    assert_eq!(report["diagnostics"], Value::Array(Vec::new()));
}

/// One `::KIND PROPS::MESSAGE` workflow command, split.
fn workflow_command(line: &str) -> (String, Vec<(String, String)>, String) {
    let rest = line
        .strip_prefix("::")
        .unwrap_or_else(|| panic!("not a workflow command: {line}"));
    let (head, message) = rest
        .split_once("::")
        .unwrap_or_else(|| panic!("no message: {line}"));
    let (kind, props) = head.split_once(' ').unwrap_or((head, ""));
    let props = props
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .unwrap_or_else(|| panic!("a property without `=` in {line}"));
            (k.to_string(), v.to_string())
        })
        .collect();
    (kind.to_string(), props, message.to_string())
}

#[test]
fn github_format_annotates_each_finding_on_its_line() {
    let case = "multi-errors-sorted.yaml";
    let outcome = validate_invalid(&["--format", "github", case]);
    outcome.assert_code(1);
    assert_eq!(outcome.stderr, "");
    let text = validate_invalid(&[case]);
    let expected = text_findings(&text.stderr);
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{}", outcome.stdout);
    for (line, (file, number, column, code)) in lines.iter().zip(&expected) {
        let (kind, props, message) = workflow_command(line);
        let wanted_kind = if code.starts_with('W') {
            "warning"
        } else {
            "error"
        };
        assert_eq!(kind, wanted_kind, "{line}");
        let keys: Vec<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["file", "line", "col", "title"], "{line}");
        assert_eq!(props[0].1, *file, "{line}");
        assert_eq!(props[1].1, number.to_string(), "{line}");
        assert_eq!(props[2].1, column.to_string(), "{line}");
        let rule = Rule::ALL.iter().find(|r| r.code() == code).expect("a rule");
        assert_eq!(props[3].1, format!("{code} {}", rule.name()), "{line}");
        assert!(!message.is_empty(), "{line}");
    }
    assert!(
        outcome.stdout.contains(
            "::error file=multi-errors-sorted.yaml,line=22,col=11,title=E117 unknown-user::membership user `alcie` is not a declared user%0Ahint: did you mean `alice`?\n"
        ),
        "{}",
        outcome.stdout
    );
}

#[test]
fn github_format_of_a_finding_without_a_place_has_only_a_title() {
    let outcome = validate_invalid(&["--format", "github", "e008-tenancy-missing-in-folder"]);
    outcome.assert_code(1);
    let (kind, props, message) = workflow_command(outcome.stdout.trim_end());
    assert_eq!(kind, "error");
    assert_eq!(
        props,
        [("title".to_string(), "E008 tenancy-missing".to_string())]
    );
    assert!(message.starts_with("the config set has no `tenancy` section"));
}

#[test]
fn github_format_of_a_valid_config_prints_nothing() {
    let outcome = run(&mut supportctl(
        &crate_root(),
        ["validate", "--format", "github", "examples/acme-prod.yaml"],
    ));
    outcome.assert_code(0);
    assert_eq!(outcome.stdout, "");
    assert_eq!(outcome.stderr, "");
}

/// The commands the top-level help lists, `help` left out.
fn commands() -> Vec<String> {
    let outcome = run(&mut supportctl(&crate_root(), ["--help"]));
    outcome.assert_code(0);
    let listed: Vec<String> = outcome
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(
        listed.iter().any(|c| c == "validate") && listed.iter().any(|c| c == "schema"),
        "{}",
        outcome.stdout
    );
    listed
}

#[test]
fn help_works_for_the_top_level_and_every_command() {
    for flag in ["--help", "-h"] {
        let outcome = run(&mut supportctl(&crate_root(), [flag]));
        outcome.assert_code(0).assert_no_panic();
        assert!(
            outcome
                .stdout
                .contains("Usage: supportctl [OPTIONS] <COMMAND>"),
            "{}",
            outcome.stdout
        );
        assert_eq!(outcome.stderr, "");
    }
    for command in commands() {
        for args in [
            vec![command.as_str(), "--help"],
            vec!["help", command.as_str()],
        ] {
            let outcome = run(&mut supportctl(&crate_root(), &args));
            outcome.assert_code(0).assert_no_panic();
            assert!(
                outcome
                    .stdout
                    .contains(&format!("Usage: supportctl {command}")),
                "{}",
                outcome.stdout
            );
            assert_eq!(outcome.stderr, "");
        }
    }
}

#[test]
fn usage_errors_exit_2_with_a_message_on_stderr() {
    for (args, says) in [
        (vec!["bogus"], "unrecognized subcommand 'bogus'"),
        (
            vec!["validate", "--bogus", "examples/acme-prod.yaml"],
            "unexpected argument '--bogus'",
        ),
        (vec!["--bogus", "schema"], "unexpected argument '--bogus'"),
        (
            vec!["validate"],
            "the following required arguments were not provided",
        ),
        (
            vec!["validate", "--format", "xml", "examples/acme-prod.yaml"],
            "invalid value 'xml' for '--format <FORMAT>'",
        ),
        (
            vec!["--color", "sometimes", "schema"],
            "invalid value 'sometimes' for '--color <WHEN>'",
        ),
        (
            vec![
                "validate",
                "--max-file-size",
                "-1",
                "examples/acme-prod.yaml",
            ],
            "error:",
        ),
        (vec![], "Usage: supportctl [OPTIONS] <COMMAND>"),
    ] {
        let outcome = run(&mut supportctl(&crate_root(), &args));
        outcome.assert_code(2).assert_no_panic();
        assert_eq!(outcome.stdout, "", "{args:?}");
        assert!(
            outcome.stderr.contains(says),
            "{args:?} does not say {says:?}:\n{}",
            outcome.stderr
        );
    }
}

#[test]
fn a_bad_fixed_clock_is_an_error_not_a_panic() {
    let mut command = supportctl(&crate_root(), ["validate", "examples/acme-prod.yaml"]);
    command.env("SUPPORTCTL_TODAY", "2026-13-01");
    let outcome = run(&mut command);
    outcome.assert_code(1).assert_no_panic();
    assert!(
        outcome.stderr.contains("SUPPORTCTL_TODAY"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn the_fixed_clock_decides_what_has_expired() {
    // The example's approval of alice expires on 2030-06-30: on that day it
    // grants nothing any more, and `validate` says so with a warning.
    let mut command = supportctl(&crate_root(), ["validate", "examples/acme-prod.yaml"]);
    command.env("SUPPORTCTL_TODAY", "2030-06-30");
    let outcome = run(&mut command);
    outcome.assert_code(0);
    assert!(
        outcome.stderr.contains(
            "examples/acme-prod.yaml:52:14: warning[W202]: this approval expired on 2030-06-30"
        ),
        "{}",
        outcome.stderr
    );
}

/// `sh -c SCRIPT` with the binary as `$0`, in the test environment.
fn shell(script: &str) -> Outcome {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_supportctl"))
        .current_dir(crate_root());
    fixed_environment(&mut command);
    run(&mut command)
}

#[test]
fn schema_into_a_closed_pipe_does_not_panic() {
    let outcome = shell(r#"{ "$0" schema; echo "supportctl exited $?" >&2; } | head -c 10"#);
    outcome.assert_code(0).assert_no_panic();
    assert_eq!(
        outcome.stdout,
        r#"{
  "$sche"#
    );
    assert_eq!(outcome.stderr, "supportctl exited 0\n");
}

/// Runs `supportctl ARGS` with a stdout pipe whose reading end is closed
/// before the program writes: every write fails with a broken pipe.
fn into_closed_pipe(args: &[&str]) -> Outcome {
    let mut command = supportctl(&invalid_dir(), args);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().expect("supportctl starts");
    drop(child.stdout.take());
    let mut stderr = child.stderr.take().expect("a stderr pipe");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let shown = format!("supportctl {} > closed pipe", args.join(" "));
    let status = wait_or_kill(&mut child, &shown, started);
    Outcome {
        status,
        stdout: String::new(),
        stderr: reader.join().expect("the reader"),
        elapsed: started.elapsed(),
        shown,
    }
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let schema = into_closed_pipe(&["schema"]);
    schema.assert_code(0).assert_no_panic();
    assert_eq!(schema.stderr, "");
    let valid = into_closed_pipe(&["validate", "w203-single-csi-admin.yaml"]);
    valid.assert_code(0).assert_no_panic();
}

#[test]
fn an_invalid_config_exits_1_even_when_stdout_is_closed() {
    // The exit code is the verdict a CI job reads (`validate --format json … |
    // head` under `set -o pipefail`): a reader that stops early must not turn
    // an invalid config into a pass.
    for format in ["json", "github"] {
        let outcome =
            into_closed_pipe(&["validate", "--format", format, "multi-errors-sorted.yaml"]);
        outcome.assert_no_panic();
        outcome.assert_code(1);
    }
}

#[test]
fn colour_follows_the_color_flag_and_no_color() {
    let case = "w202-expired-grant.yaml";
    let coloured = validate_invalid(&["--color", "always", case]);
    coloured.assert_code(0);
    assert!(
        coloured.stderr.contains("\x1b["),
        "--color always printed no ANSI escape:\n{}",
        coloured.stderr
    );
    let plain = validate_invalid(&["--color", "auto", case]);
    plain.assert_code(0);
    assert!(
        !plain.stderr.contains('\x1b'),
        "NO_COLOR=1 with --color auto coloured:\n{}",
        plain.stderr
    );
    let mut without_no_color = supportctl(&invalid_dir(), ["validate", "--color", "never", case]);
    without_no_color.env_remove("NO_COLOR");
    let never = run(&mut without_no_color);
    assert!(!never.stderr.contains('\x1b'), "{}", never.stderr);
    // Stripped of its escapes, coloured output reads exactly as plain output.
    assert_eq!(strip_ansi(&coloured.stderr), plain.stderr);
    // Machine output is never coloured.
    let json = validate_invalid(&["--color", "always", "--format", "json", case]);
    assert!(!json.stdout.contains('\x1b'), "{}", json.stdout);
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn logs_go_to_stderr_and_data_to_stdout() {
    let outcome = run(&mut supportctl(
        &crate_root(),
        [
            "-vv",
            "--log-format",
            "json",
            "validate",
            "examples/acme-prod.yaml",
        ],
    ));
    outcome.assert_code(0);
    assert!(
        outcome
            .stdout
            .starts_with("The configuration is valid: tenancy `acme-prod`")
    );
    assert!(!outcome.stderr.is_empty(), "-vv logged nothing");
    for line in outcome.stderr.lines() {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(entry.get("level").is_some(), "{line}");
    }
    let quiet = run(&mut supportctl(
        &crate_root(),
        ["-q", "validate", "examples/acme-prod.yaml"],
    ));
    quiet.assert_code(0);
    assert_eq!(quiet.stderr, "");
}

#[test]
fn control_characters_from_a_file_are_escaped() {
    // A value can carry terminal escapes; printed raw, they could clear the
    // screen or forge a line of output.
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(
        dir.path().join("evil.yaml"),
        "tenancy:\n  name: \"x\\e[2J\\rforged: error\"\n  csi: \"1\"\n  admin: d\n",
    )
    .expect("written");
    let outcome = run(&mut supportctl(dir.path(), ["validate", "evil.yaml"]));
    outcome.assert_code(1).assert_no_panic();
    assert!(!outcome.stderr.contains('\x1b'), "{:?}", outcome.stderr);
    assert!(!outcome.stderr.contains('\r'), "{:?}", outcome.stderr);
    assert!(outcome.stderr.contains("error[E119]"), "{}", outcome.stderr);
    let github = run(&mut supportctl(
        dir.path(),
        ["validate", "--format", "github", "evil.yaml"],
    ));
    assert!(!github.stdout.contains('\x1b') && !github.stdout.contains('\r'));
}

#[test]
fn a_tenancy_with_a_bad_field_is_not_reported_missing() {
    // One misspelt field makes the tenancy unreadable; saying the config set
    // has no `tenancy` at all sends the reader looking for the wrong thing.
    let dir = tempfile::tempdir().expect("a temp dir");
    let text = std::fs::read_to_string(invalid_dir().join("w203-single-csi-admin.yaml"))
        .expect("the case")
        .replace(
            "  admin: dankim\n",
            "  admin: dankim\n  region: ap-seoul-1\n",
        );
    std::fs::write(dir.path().join("config.yaml"), text).expect("written");
    let outcome = run(&mut supportctl(dir.path(), ["validate", "config.yaml"]));
    outcome.assert_code(1).assert_no_panic();
    assert!(
        outcome
            .stderr
            .contains("config.yaml:5:3: error[E006]: tenancy: unknown field `region`"),
        "{}",
        outcome.stderr
    );
    assert!(
        !outcome.stderr.contains("E008"),
        "the tenancy is there, with a bad field:\n{}",
        outcome.stderr
    );
}

#[test]
fn a_user_with_a_bad_field_is_still_declared() {
    // A typo inside a user's entry is one error; the user is still declared,
    // so the entries that name it must not be reported as naming no one.
    let dir = tempfile::tempdir().expect("a temp dir");
    let text = std::fs::read_to_string(crate_root().join("examples/acme-prod.yaml"))
        .expect("the example")
        .replace("    name: Erin Park\n", "    nmae: Erin Park\n");
    std::fs::write(dir.path().join("config.yaml"), text).expect("written");
    let outcome = run(&mut supportctl(dir.path(), ["validate", "config.yaml"]));
    outcome.assert_code(1).assert_no_panic();
    assert!(
        outcome
            .stderr
            .contains("config.yaml:19:5: error[E006]: user `erin`: unknown field `nmae`"),
        "{}",
        outcome.stderr
    );
    for wrong in ["E117", "W204", "W205", "W203"] {
        assert!(
            !outcome.stderr.contains(wrong),
            "`erin` is declared (with a typo), yet {wrong} is reported:\n{}",
            outcome.stderr
        );
    }
}

/// Runs `supportctl ARGS` in `dir` with stdout and stderr both into one pipe
/// whose reading end is closed before it starts, as `supportctl … 2>&1 |
/// head -c0` when head has gone: every write fails with a broken pipe. What
/// a panic would say is lost with the rest; its exit code (101) shows it.
fn all_output_into_a_closed_pipe(dir: &std::path::Path, args: &[&str]) -> i32 {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let mut command = supportctl(dir, args);
    command
        .stdin(Stdio::null())
        .stdout(writer.try_clone().expect("a second writer"))
        .stderr(writer);
    let shown = format!("supportctl {} 2>&1 > closed pipe", args.join(" "));
    let started = Instant::now();
    let mut child = command.spawn().expect("supportctl starts");
    // The parent's copies of the writer went with `command`'s: only the
    // child holds the pipe now.
    drop(command);
    let status = wait_or_kill(&mut child, &shown, started);
    status
        .code()
        .unwrap_or_else(|| panic!("`{shown}` was killed by a signal ({status:?})"))
}

/// Logging at `-vv` into a closed stderr (issue 17 §6: a log shipper that
/// restarted) loses the log lines, never the command: every command ends with
/// the exit code it has with its output read, and does its work (the apply
/// applies, the plan is saved, the SR is opened). Before, the first log line
/// that failed to write made tracing-subscriber's own error report panic
/// (exit 101); and a closed stdout ended `plan` and `apply` before their
/// work with exit 0: no plan saved, no apply, `--detailed-exitcode` and the
/// mass-delete guard's verdicts lost. An apply nobody could see the plan of
/// is not approved (exit 1, nothing written).
#[test]
fn every_command_logging_at_vv_into_a_closed_pipe_ends_as_it_would_and_does_its_work() {
    let scratch = crate::binary::Scratch::new();
    let example = crate_root().join("examples/acme-prod.yaml");
    let example = example.to_str().expect("UTF-8");
    let invalid = invalid_dir().join("multi-errors-sorted.yaml");
    let invalid = invalid.to_str().expect("UTF-8");
    let db = scratch.db_arg();
    let saved = scratch.path("saved-plan.json");
    let saved = saved.to_str().expect("UTF-8");
    // Only the tenancy admin left: the mass-delete guard refuses it.
    let gutted = scratch.write(
        "gutted.yaml",
        "tenancy: { name: acme-prod, csi: \"20817431\", home_region: ap-seoul-1, admin: dankim }\nusers:\n  dankim: { email: dan.kim@acme.example, name: Dan Kim, support_account: { phone: \"+82 2 555 0100\", timezone: Asia/Seoul } }\n",
    );
    let gutted = gutted.to_str().expect("UTF-8");
    let cases: [(&[&str], i32); 18] = [
        (&["validate", example], 0),
        (&["validate", invalid], 1),
        (&["validate", "--format", "json", invalid], 1),
        (&["plan", example], 0),
        (&["plan", "--format", "json", example], 0),
        // The verdict of a plan does not depend on its reader.
        (&["plan", "--detailed-exitcode", example], 2),
        (&["plan", "-o", saved, example], 0),
        (&["apply", example], 1),
        (&["apply", "--auto-approve", example], 0),
        (&["plan", "--detailed-exitcode", example], 0),
        (&["plan", gutted], 3),
        (&["show"], 0),
        (&["history", "--format", "json"], 0),
        (&["access", "--all"], 0),
        (&["sr", "open", "--user", "bob", "--title", "Disk full"], 0),
        (&["sr", "list"], 0),
        (&["status"], 1),
        (&["schema"], 0),
    ];
    for (args, expected) in cases {
        let mut all = vec!["--db", &db, "-vv"];
        all.extend_from_slice(args);
        let code = all_output_into_a_closed_pipe(scratch.root(), &all);
        assert_eq!(
            code,
            expected,
            "`supportctl {}` into a closed pipe exited {code}, not {expected}",
            all.join(" ")
        );
    }
    // The plan was saved, the apply and the SR happened, though nobody read
    // a word; the apply that nobody could approve did not.
    assert!(
        std::path::Path::new(saved).exists(),
        "plan -o saved the plan"
    );
    let history = scratch.history();
    assert_eq!(history.len(), 1, "{history:?}");
    let shown = scratch.ok(&["sr", "list", "--format", "json"]);
    let srs: Value = serde_json::from_str(&shown.stdout).expect("JSON");
    assert_eq!(srs.as_array().map(Vec::len), Some(1), "{srs}");
}

/// The same through a shell, as the issue ran it: `supportctl plan … -vv
/// 2>&1 | head -c0`, the exit code kept in a file.
#[test]
fn plan_at_vv_piped_into_head_c0_exits_0() {
    let scratch = crate::binary::Scratch::new();
    let code_file = scratch.path("code");
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"{ "$0" --db "$1" plan -vv examples/acme-prod.yaml; echo $? >"$2"; } 2>&1 | { exec head -c0; }"#)
        .arg(env!("CARGO_BIN_EXE_supportctl"))
        .arg(scratch.db_arg())
        .arg(&code_file)
        .current_dir(crate_root());
    fixed_environment(&mut command);
    run(&mut command).assert_code(0);
    let code = std::fs::read_to_string(&code_file).expect("the exit code was written");
    assert_eq!(code.trim(), "0", "plan -vv into a closed pipe");
}

/// Values no numeric flag may take, by the flag's value name: zero or
/// negative where it makes no sense, and past every integer type (the
/// issue's `--interval 9223372036854775807s` panicked; `--max-file-size
/// 18446744073709551615` wrapped and read every file as empty).
fn hostile_values(value_name: &str) -> &'static [&'static str] {
    match value_name {
        "BYTES" => &[
            "0",
            "-1",
            "4294967297",
            "18446744073709551615",
            "18446744073709551616",
            "1e9",
        ],
        "MS" => &[
            "0",
            "-1",
            "600001",
            "18446744073709551615",
            "99999999999999999999",
        ],
        "DURATION" => &[
            "0s",
            "-5s",
            "1ms",
            "721h",
            "9223372036854775807s",
            "18446744073709551615ms",
            "99999999999999999999999s",
            "1d",
        ],
        "ID" => &[
            "0",
            "-1",
            "9223372036854775808",
            "18446744073709551615",
            "1.5",
        ],
        "DAYS" => &["-1", "3651", "4294967296", "1.5", "14d", ""],
        other => panic!("no hostile values for `{other}`"),
    }
}

/// Every flag (and positional) of every command that takes a number, a
/// duration or a size — found from the clap definitions, so that a new one
/// cannot go untested — refuses each value out of its range with exit 2 and
/// an error naming the flag, never a panic, and takes its largest value.
#[test]
fn every_numeric_flag_is_range_checked_with_an_error_naming_it() {
    use clap::CommandFactory;
    // Value names that are not numbers; a new value name must be added to
    // one list or the other.
    const NOT_NUMERIC: [&str; 16] = [
        "PATH|URL",
        "DEST",
        "PATH",
        "PATH|PLANFILE",
        "PLANFILE",
        "DIR",
        "GIT_REF",
        "NAME",
        "USER",
        "TITLE",
        "TEXT",
        "WHEN",
        "FORMAT",
        "SHELL",
        "DAY",
        "ADDR",
    ];
    // A runnable command line for each command with a numeric argument.
    let example = "examples/acme-prod.yaml";
    let base = |command: &str| -> Vec<&str> {
        match command {
            "validate" => vec!["validate", example],
            "plan" => vec!["plan", example],
            "apply" => vec!["apply", example],
            "watch" => vec!["watch", example],
            "serve" => vec!["serve"],
            "sr show" => vec!["sr", "show"],
            "sr comment" => vec!["sr", "comment", "--user", "bob", "--text", "x"],
            other => panic!("no command line for `{other}`: add one"),
        }
    };
    // The largest value each kind takes.
    let largest = |value_name: &str| match value_name {
        "BYTES" => "4294967296",
        "MS" => "600000",
        "DURATION" => "1h",
        "DAYS" => "3650",
        _ => "9223372036854775807",
    };
    fn walk(command: &clap::Command, path: &str, found: &mut Vec<(String, clap::Arg)>) {
        for arg in command.get_arguments() {
            found.push((path.to_string(), arg.clone()));
        }
        for sub in command.get_subcommands() {
            let name = if path.is_empty() {
                sub.get_name().to_string()
            } else {
                format!("{path} {}", sub.get_name())
            };
            walk(sub, &name, found);
        }
    }
    let mut found = Vec::new();
    walk(&supportctl::cli::Cli::command(), "", &mut found);
    let scratch = crate::binary::Scratch::new();
    let db = scratch.db_arg();
    let mut tested = Vec::new();
    for (command, arg) in &found {
        // Flags, counts and choices from a list take no number.
        if !arg.get_action().takes_values() || !arg.get_possible_values().is_empty() {
            continue;
        }
        let id = arg.get_id().as_str().to_uppercase();
        let value_name = arg
            .get_value_names()
            .and_then(|names| names.first())
            .map_or(id.as_str(), |n| n.as_str());
        if NOT_NUMERIC.contains(&value_name) {
            continue;
        }
        // A global flag is tried on `plan`, which reads the state.
        let command: &str = if command.is_empty() { "plan" } else { command };
        let shown = arg
            .get_long()
            .map_or_else(|| format!("<{value_name}>"), |long| format!("--{long}"));
        let with_value = |value: &str| -> Vec<String> {
            let mut args: Vec<String> = vec!["--db".into(), db.clone()];
            args.extend(base(command).iter().map(|a| a.to_string()));
            if arg.get_long() == Some("poll-interval") {
                args.push("--poll".into());
            }
            match arg.get_long() {
                Some(long) => args.push(format!("--{long}={value}")),
                None => {
                    args.push("--".into());
                    args.push(value.into());
                }
            }
            args
        };
        for value in hostile_values(value_name) {
            let args = with_value(value);
            let outcome = run(&mut supportctl(&crate_root(), &args));
            outcome.assert_no_panic();
            assert_eq!(
                outcome.code(),
                2,
                "`supportctl {}` exits 2\n{}",
                args.join(" "),
                outcome.stderr
            );
            assert!(
                outcome.stderr.contains(&shown),
                "`supportctl {}` names {shown}:\n{}",
                args.join(" "),
                outcome.stderr
            );
        }
        // The largest value is taken (a watch or a server is not started
        // for it).
        if command != "watch" && command != "serve" {
            let args = with_value(largest(value_name));
            let outcome = run(&mut supportctl(&crate_root(), &args));
            outcome.assert_no_panic();
            assert_ne!(
                outcome.code(),
                2,
                "`supportctl {}` takes the largest value\n{}",
                args.join(" "),
                outcome.stderr
            );
        }
        tested.push(format!("{command} {shown}"));
    }
    tested.sort();
    assert_eq!(
        tested,
        [
            "apply --max-file-size",
            "apply --max-total-size",
            "plan --lock-timeout",
            "plan --max-file-size",
            "plan --max-total-size",
            "serve --expiring-within",
            "sr comment <ID>",
            "sr show <ID>",
            "validate --max-file-size",
            "validate --max-total-size",
            "watch --debounce-ms",
            "watch --expiring-within",
            "watch --interval",
            "watch --lease-duration",
            "watch --max-file-size",
            "watch --max-total-size",
            "watch --poll-interval",
            "watch --renew-deadline",
            "watch --retry-period",
        ],
        "the numeric flags found"
    );
    // `-v` counts, and saturates: three hundred of them are `-vvv`.
    let mut args = vec!["-v"; 300];
    args.extend(["validate", example]);
    run(&mut supportctl(&crate_root(), &args))
        .assert_code(0)
        .assert_no_panic();
}

/// `--db` and `SUPPORTCTL_DB` take any path the system allows, UTF-8 or
/// not: the state is made there and read back, and the name is shown
/// escaped. (SQLite-only: it names the database file.)
#[test]
fn a_database_path_that_is_not_utf8_is_used_as_given() {
    use std::os::unix::ffi::OsStrExt;
    let scratch = Scratch::new();
    let db = std::ffi::OsStr::from_bytes(b"state-\xff.db");
    let example = crate_root().join("examples/acme-prod.yaml");
    let mut apply = supportctl(scratch.root(), [std::ffi::OsStr::new("--db"), db]);
    apply.args(["apply", "--auto-approve"]).arg(&example);
    run(&mut apply).assert_code(0);
    assert!(
        scratch.root().join(db).is_file(),
        "the database is where it was named"
    );
    let mut plan = supportctl(scratch.root(), ["plan"]);
    plan.arg(&example).env("SUPPORTCTL_DB", db);
    let planned = run(&mut plan);
    planned.assert_code(0);
    assert!(planned.stdout.contains("No changes"), "{}", planned.stdout);
    let mut show = supportctl(scratch.root(), ["--db", "missing-\u{7f}.db", "show"]);
    let missing = run(&mut show);
    missing.assert_code(1);
    assert!(
        missing.stderr.contains("missing-\\u{7f}.db"),
        "{}",
        missing.stderr
    );
}
