//! The reconciler end to end (issue 3): `plan`, `apply`, saved plans, the
//! state database, `show`, `export` and `history`, through the real binary.
//!
//! - The catalogue: each folder of `tests/data/plans/` is a case, a
//!   `before.yaml` applied first (when there is one) and an `after.yaml`
//!   then planned. Beside the folders are its expectation, the snapshots of
//!   the text plan (`NAME.text.snap`: the changes in order, the exit code)
//!   and of the JSON plan (`NAME.json.snap`, its lineage and config digest
//!   masked). Each case is also checked for text and JSON plans that agree,
//!   and applied to check that it converges. A new case is a new folder (see
//!   `tests/data/README.md`).
//! - The exit-code contract of the README's *Commands* and *JSON formats*, consent, saved plans, the files
//!   supportctl writes, the journal, `show` and `export`.
//! - Property tests of the reconciler's laws on random valid config sets.
//! - All or nothing: a plan that fails part-way through its apply, or an
//!   apply killed part-way, leaves the state exactly as it was (or, killed
//!   after its commit, exactly as planned).
//!
//! Self-contained: every test has its own `Scratch` (a temporary directory
//! and state), a fixed day (`SUPPORTCTL_TODAY`), no colour, and stdin from
//! /dev/null.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::Value;

use crate::binary::{
    DEADLINE, Outcome, Running, Scratch, TODAY, arg, copy_dir, crate_root, json, run, supportctl,
};

const NO_CHANGES: &str = "No changes. The state matches the configuration.\n";

/// `tests/data/plans`: the catalogue's cases and their snapshots.
fn plans_dir() -> PathBuf {
    crate_root().join("tests").join("data").join("plans")
}

fn example(name: &str) -> PathBuf {
    crate_root().join("examples").join(name)
}

// ---- What the tests below share ----

fn apply(world: &Scratch, config: &Path) -> Outcome {
    world.ok(&["apply", "--auto-approve", arg(config)])
}

/// `show --format json` as printed: compared byte for byte.
fn show_json(world: &Scratch) -> String {
    world.ok(&["show", "--format", "json"]).stdout
}

/// Asserts that `config` plans to no changes, with every format.
#[track_caller]
fn assert_no_changes(world: &Scratch, config: &str) {
    let text = world.run(&["plan", "--detailed-exitcode", config]);
    assert_eq!(
        (text.code(), text.stdout.as_str()),
        (0, NO_CHANGES),
        "{}",
        text.transcript()
    );
    let doc = json(
        &world
            .run(&["plan", "--format", "json", "--detailed-exitcode", config])
            .expect(0)
            .stdout,
    );
    assert_eq!(doc["changes"], serde_json::json!([]));
    assert_eq!(
        doc["summary"],
        serde_json::json!({"add": 0, "change": 0, "destroy": 0})
    );
}

/// A run as the catalogue's snapshots hold it: the command without its
/// `--db` (the state's location varies), its exit code, and everything it
/// printed.
fn plan_transcript(args: &[&str], outcome: &Outcome) -> String {
    format!(
        "$ supportctl {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        outcome.code(),
        outcome.stdout,
        outcome.stderr
    )
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Asserts a snapshot stored in `tests/data/plans/NAME.snap`.
fn snapshot(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => "../data/plans",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

// ---- Reading plans ----

/// The changes of a text plan, as `SYMBOL ADDRESS`, in order.
fn text_changes(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("  ")?;
            let (symbol, rest) = rest.split_once(' ')?;
            if !["+", "~", "-", "-/+"].contains(&symbol) {
                return None;
            }
            let address = rest.split("  (").next().unwrap_or(rest);
            Some(format!("{symbol} {address}"))
        })
        .collect()
}

fn symbol(action: &str) -> &'static str {
    match action {
        "create" => "+",
        "update" => "~",
        "delete" => "-",
        "replace" => "-/+",
        other => panic!("unknown action `{other}`"),
    }
}

/// The changes of a JSON plan, as `SYMBOL ADDRESS`, in order.
fn json_changes(doc: &Value) -> Vec<String> {
    doc["changes"]
        .as_array()
        .expect("changes is a list")
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                symbol(c["action"].as_str().expect("an action")),
                c["address"].as_str().expect("an address")
            )
        })
        .collect()
}

/// The fields every `before`/`after` of a type holds (the README's *Commands* and *JSON formats*: all of them,
/// `null` when unset).
fn fields_of(kind: &str) -> BTreeSet<&'static str> {
    let fields: &[&str] = match kind {
        "tenancy" => &["name", "csi", "home_region", "admin"],
        "user" => &["email", "name"],
        "support_account" => &["phone", "timezone"],
        "membership" => &[],
        "approval" => &["role", "access", "approved_by", "expires"],
        "support_link" => &["via", "expires"],
        other => panic!("unknown type `{other}`"),
    };
    fields.iter().copied().collect()
}

/// Checks a JSON plan against the contract of the README's *Commands* and *JSON formats*, made at `serial`.
#[track_caller]
fn check_plan_json(doc: &Value, serial: u64) {
    assert_eq!(doc["format_version"], 1);
    assert!(doc["tenancy"].is_string());
    assert_eq!(doc["serial"].as_u64(), Some(serial), "the plan's serial");
    let lineage = doc["lineage"].as_str().expect("a lineage");
    // Empty only for a plan made where no database exists yet.
    assert!(
        is_hex(lineage, 32) || (lineage.is_empty() && serial == 0),
        "lineage `{lineage}`"
    );
    let digest = doc["config_digest"].as_str().expect("a config digest");
    assert!(
        digest
            .strip_prefix("sha256:")
            .is_some_and(|h| is_hex(h, 64)),
        "config digest `{digest}`"
    );
    let seal = doc["plan_digest"].as_str().expect("a plan digest");
    assert!(
        seal.strip_prefix("sha256:").is_some_and(|h| is_hex(h, 64)),
        "plan digest `{seal}`"
    );
    let (mut add, mut change, mut destroy) = (0, 0, 0);
    for c in doc["changes"].as_array().expect("changes is a list") {
        let kind = c["type"].as_str().expect("a type");
        let id = c["id"].as_str().expect("an id");
        assert_eq!(c["address"], format!("{kind}.{id}"), "{c}");
        let action = c["action"].as_str().expect("an action");
        let renamed = c.get("renamed_from").is_some();
        match action {
            "create" => add += 1,
            "update" => change += 1,
            "delete" => destroy += 1,
            "replace" => {
                add += 1;
                destroy += 1;
            }
            other => panic!("unknown action `{other}`"),
        }
        assert_eq!(c["before"].is_null(), action == "create", "before: {c}");
        assert_eq!(c["after"].is_null(), action == "delete", "after: {c}");
        let reasoned = action == "replace" || renamed;
        assert_eq!(c["reason"].is_string(), reasoned, "reason: {c}");
        if renamed {
            assert_eq!((kind, action), ("user", "update"), "a rename: {c}");
            assert!(c["renamed_from"].is_string());
        }
        for side in ["before", "after"] {
            if let Some(value) = c[side].as_object() {
                let keys: BTreeSet<&str> = value.keys().map(String::as_str).collect();
                assert_eq!(keys, fields_of(kind), "the fields of {side}: {c}");
            }
        }
    }
    assert_eq!(
        doc["summary"],
        serde_json::json!({"add": add, "change": change, "destroy": destroy}),
        "the summary counts the changes"
    );
}

/// The JSON plan run with its lineage and config digest, which vary from
/// run to run, replaced by placeholders.
fn masked(args: &[&str], outcome: &Outcome, doc: &Value) -> String {
    let lineage = doc["lineage"].as_str().expect("a lineage");
    let digest = doc["config_digest"].as_str().expect("a config digest");
    let seal = doc["plan_digest"].as_str().expect("a plan digest");
    let masked = Outcome {
        stdout: outcome
            .stdout
            .replace(
                &format!("\"lineage\": \"{lineage}\""),
                "\"lineage\": \"[lineage]\"",
            )
            .replace(
                &format!("\"config_digest\": \"{digest}\""),
                "\"config_digest\": \"[config_digest]\"",
            )
            .replace(
                &format!("\"plan_digest\": \"{seal}\""),
                "\"plan_digest\": \"[plan_digest]\"",
            ),
        stderr: outcome.stderr.clone(),
        shown: outcome.shown.clone(),
        ..*outcome
    };
    let text = plan_transcript(args, &masked);
    assert!(
        (lineage.is_empty() || !text.contains(lineage))
            && !text.contains(digest)
            && !text.contains(seal)
    );
    text
}

// ---- The catalogue ----

/// Snapshots in `tests/data/plans/` that are not a case's: the show test's.
const OTHER_SNAPSHOTS: [&str; 3] = [
    "show-acme-prod.json",
    "show-acme-prod.text",
    "show-acme-prod.yaml",
];

/// The cases of the catalogue: every folder of `tests/data/plans/`, sorted.
fn plan_cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(plans_dir())
        .expect("tests/data/plans")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_dir())
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in tests/data/plans");
    cases
}

/// Runs case `name`: applies `before.yaml` when there is one, plans
/// `after.yaml` as text and as JSON, checks both against the case's
/// snapshots (`NAME.text.snap`, `NAME.json.snap`: the changes in order and
/// the exit code), that they list the same changes and end with the summary,
/// then applies `after.yaml` and checks that it converges. Gives the plan's
/// exit code.
fn scenario(name: &str) -> i32 {
    let dir = plans_dir().join(name);
    assert!(
        dir.join("after.yaml").is_file(),
        "the case {name} has no after.yaml"
    );
    let world = Scratch::new();
    let mut serial = 0;
    if dir.join("before.yaml").exists() {
        world
            .run_in(&dir, &["apply", "--auto-approve", "before.yaml"])
            .expect(0);
        serial = 1;
    }
    let text_args = ["plan", "after.yaml"];
    let json_args = ["plan", "--format", "json", "after.yaml"];
    let text = world.run_in(&dir, &text_args);
    let code = text.code();
    assert!(matches!(code, 0 | 3), "{}", text.transcript());
    let json_run = world.run_in(&dir, &json_args).expect(code);
    assert_eq!(json_run.stderr, text.stderr, "both formats warn alike");
    let doc = json(&json_run.stdout);
    check_plan_json(&doc, serial);
    let changes = text_changes(&text.stdout);
    assert_eq!(
        changes,
        json_changes(&doc),
        "the text and JSON plans list the same changes"
    );
    if changes.is_empty() {
        assert_eq!(text.stdout, NO_CHANGES);
    } else {
        let s = &doc["summary"];
        assert!(text.stdout.ends_with(&format!(
            "\nPlan: {} to add, {} to change, {} to destroy.\n",
            s["add"], s["change"], s["destroy"]
        )));
    }
    snapshot(&format!("{name}.text"), &plan_transcript(&text_args, &text));
    snapshot(
        &format!("{name}.json"),
        &masked(&json_args, &json_run, &doc),
    );

    // Planning again gives the same bytes.
    let again = world.run_in(&dir, &text_args);
    assert_eq!(again.stdout, text.stdout);
    assert_eq!(world.run_in(&dir, &json_args).stdout, json_run.stdout);

    // Applying converges: afterwards the plan is empty.
    let db = world.db_bytes();
    let mut apply = vec!["apply", "--auto-approve", "after.yaml"];
    if code == 3 {
        // A refused apply lands only what takes access away (its own
        // journaled apply); the rest needs `--allow-mass-delete`, as a
        // refused apply of the plan's changes with nothing to revoke writes
        // nothing.
        let cut = world.run_in(&dir, &apply).expect(3);
        let revoked = u64::from(cut.stdout.contains("Only what takes access away"));
        assert_eq!(world.serial(), serial + revoked, "{}", cut.transcript());
        let db = world.db_bytes();
        if revoked == 1 {
            world.run_in(&dir, &apply).expect(3);
            assert_eq!(
                world.db_bytes(),
                db,
                "a refused apply with nothing to revoke writes nothing"
            );
        }
        apply.push("--allow-mass-delete");
        world.run_in(&dir, &apply).expect(0);
        assert_eq!(world.serial(), serial + revoked + 1);
        let replan = world.run_in(&dir, &["plan", "--detailed-exitcode", "after.yaml"]);
        assert_eq!((replan.code(), replan.stdout.as_str()), (0, NO_CHANGES));
        return code;
    }
    let applied = world.run_in(&dir, &apply).expect(0);
    let s = &doc["summary"];
    if changes.is_empty() {
        assert_eq!(applied.stdout, NO_CHANGES);
        assert_eq!(world.db_bytes(), db, "an empty plan writes nothing");
    } else {
        assert!(
            applied.stdout.ends_with(&format!(
                "Apply complete! Resources: {} added, {} changed, {} destroyed.\n",
                s["add"], s["change"], s["destroy"]
            )),
            "{}",
            applied.transcript()
        );
    }
    let serial_after = serial + u64::from(!changes.is_empty());
    assert_eq!(world.serial(), serial_after);
    assert_eq!(world.history().len() as u64, serial_after);
    let replan = world.run_in(&dir, &["plan", "--detailed-exitcode", "after.yaml"]);
    assert_eq!(
        (replan.code(), replan.stdout.as_str()),
        (0, NO_CHANGES),
        "the plan after the apply:\n{}",
        replan.transcript()
    );
    code
}

/// The catalogue: every folder of `tests/data/plans/` is a case, and its
/// snapshots are what it must plan. A new case is a new folder; its
/// snapshots are written by `INSTA_UPDATE=always cargo test --test it
/// plan_catalogue`, to be read before they are committed.
#[test]
fn plan_catalogue_cases_plan_as_their_snapshots_say_and_converge() {
    let mut failures = Vec::new();
    for name in plan_cases() {
        let outcome = std::panic::catch_unwind(|| scenario(&name));
        // Still missing after the run: insta writes a new snapshot only when
        // asked to (`INSTA_UPDATE`).
        let missing: Vec<String> = ["text", "json"]
            .iter()
            .map(|kind| format!("{name}.{kind}.snap"))
            .filter(|snap| !plans_dir().join(snap).exists())
            .collect();
        match (outcome.is_ok(), missing.is_empty()) {
            (true, true) => {}
            (_, false) => failures.push(format!(
                "{name}: a new case without its snapshots ({}): run `INSTA_UPDATE=always \
                 cargo test --test it plan_catalogue`, read them and commit them",
                missing.join(", ")
            )),
            (false, true) => failures.push(format!("{name}: see the failure above")),
        }
    }
    assert!(
        failures.is_empty(),
        "cases of tests/data/plans that fail:\n  {}",
        failures.join("\n  ")
    );
}

/// Nothing in `tests/data/plans/` is left over: each snapshot is a case's
/// (or the show test's), and nothing else is there.
#[test]
fn every_snapshot_in_the_plan_catalogue_belongs_to_a_case() {
    let cases = plan_cases();
    for entry in std::fs::read_dir(plans_dir()).expect("tests/data/plans") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            continue;
        }
        let Some(snap) = name.strip_suffix(".snap") else {
            panic!("unexpected file in tests/data/plans: {name}");
        };
        let case = snap
            .strip_suffix(".text")
            .or_else(|| snap.strip_suffix(".json"));
        assert!(
            OTHER_SNAPSHOTS.contains(&snap) || case.is_some_and(|c| cases.iter().any(|n| n == c)),
            "{name} is no case's snapshot: its folder is gone, or it is misnamed"
        );
    }
}

/// A mass deletion is refused (exit 3) by `plan`, and the apply lands only
/// what takes access away (the README's promise; the case
/// `tests/data/plans/mass-delete`).
#[test]
fn plan_refuses_a_mass_delete() {
    assert_eq!(scenario("mass-delete"), 3);
}

/// The reasons and renames the scenarios rest on, read from the JSON plans.
#[test]
fn replacements_say_why_and_renames_say_from_what() {
    let plan_of = |name: &str| {
        let dir = plans_dir().join(name);
        let world = Scratch::new();
        world
            .run_in(&dir, &["apply", "--auto-approve", "before.yaml"])
            .expect(0);
        let run = world
            .run_in(&dir, &["plan", "--format", "json", "after.yaml"])
            .expect(0);
        json(&run.stdout)
    };
    let csi = plan_of("replace-csi");
    for c in csi["changes"].as_array().unwrap() {
        if c["action"] == "replace" {
            assert!(
                c["reason"]
                    .as_str()
                    .unwrap()
                    .contains("tenancy.csi changed"),
                "{c}"
            );
        }
    }
    let email = plan_of("replace-email");
    for c in email["changes"].as_array().unwrap() {
        if c["action"] == "replace" {
            assert_eq!(c["id"], "alice");
            assert!(
                c["reason"]
                    .as_str()
                    .unwrap()
                    .contains("user.alice email changed"),
                "{c}"
            );
        }
    }
    let rename = plan_of("rename");
    let change = &rename["changes"][0];
    assert_eq!(change["renamed_from"], "erin");
    assert_eq!(change["id"], "erin.park");
    assert_eq!(change["before"], change["after"]);
    assert_eq!(
        rename["summary"],
        serde_json::json!({"add": 0, "change": 1, "destroy": 0})
    );
    let admin = plan_of("rename-tenancy-admin");
    let change = &admin["changes"][0];
    assert_eq!(change["renamed_from"], "dankim");
    assert_eq!(change["before"]["name"], "Dan Kim");
    assert_eq!(change["after"]["name"], "Daniel Kim");
}

/// After a rename is applied, everything attached has moved: the state
/// names the new id wherever it named the old one, and nothing else changed.
#[test]
fn an_applied_rename_moves_everything_attached() {
    let dir = plans_dir().join("rename");
    let world = Scratch::new();
    world
        .run_in(&dir, &["apply", "--auto-approve", "before.yaml"])
        .expect(0);
    let before = show_json(&world);
    world
        .run_in(&dir, &["apply", "--auto-approve", "after.yaml"])
        .expect(0);
    let after = show_json(&world);
    let mut expected = json(&before);
    expected["serial"] = 2.into();
    let mut users = expected["users"].as_array().unwrap().clone();
    for user in &mut users {
        if user["id"] == "erin" {
            user["id"] = "erin.park".into();
        }
        if user["approval"]["approved_by"] == "erin" {
            user["approval"]["approved_by"] = "erin.park".into();
        }
        if user["support_link"]["via"] == "erin" {
            user["support_link"]["via"] = "erin.park".into();
        }
    }
    users.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    expected["users"] = users.into();
    assert_eq!(json(&after), expected);
}

// ---- The exit-code contract, consent and saved plans ----

#[test]
fn detailed_exitcode_is_0_without_changes_and_2_with_them() {
    let world = Scratch::new();
    let config = example("acme-prod.yaml");
    let config = arg(&config);
    let plan = world
        .run(&["plan", "--detailed-exitcode", config])
        .expect(2);
    assert!(
        plan.stdout
            .ends_with("\nPlan: 22 to add, 0 to change, 0 to destroy.\n")
    );
    world
        .run(&["plan", "--format", "json", "--detailed-exitcode", config])
        .expect(2);
    // Without the flag, changes are a success like any other.
    world.run(&["plan", config]).expect(0);
    apply(&world, Path::new(config));
    let plan = world
        .run(&["plan", "--detailed-exitcode", config])
        .expect(0);
    assert_eq!(plan.stdout, NO_CHANGES);
    world
        .run(&["plan", "--format", "json", "--detailed-exitcode", config])
        .expect(0);
}

const BROKEN: &str = "tenancy: { name: acme-prod, csi: \"20817431\", admin: dankim }
users:
  dankim:
    email: dan.kim@acme.example
    support_account: { phone: \"+82 2 555 0100\", timezone: Asia/Seoul }
memberships:
  - user: carl
";

#[test]
fn an_invalid_config_exits_1_with_diagnostics_on_stderr_and_nothing_on_stdout() {
    let world = Scratch::new();
    apply(&world, &example("acme-prod.yaml"));
    let db = world.db_bytes();
    world.write("broken.yaml", BROKEN);
    for args in [
        &["plan", "broken.yaml"][..],
        &["plan", "--detailed-exitcode", "broken.yaml"],
        &["plan", "--format", "json", "broken.yaml"],
        &["plan", "-o", "broken.plan", "broken.yaml"],
        &["apply", "--auto-approve", "broken.yaml"],
    ] {
        let run = world.run(args).expect(1);
        if args.contains(&"json") {
            // Scripts get the findings as JSON on stdout (see `gitops`).
            let report = json(&run.stdout);
            assert_eq!(report["valid"], false, "{}", run.transcript());
            let codes: Vec<&str> = report["diagnostics"]
                .as_array()
                .expect("diagnostics")
                .iter()
                .filter_map(|d| d["code"].as_str())
                .collect();
            assert!(codes.contains(&"E117"), "{codes:?}");
        } else {
            assert_eq!(run.stdout, "", "{}", run.transcript());
        }
        assert!(
            run.stderr.contains("broken.yaml:7:11: error[E117]"),
            "{}",
            run.transcript()
        );
        assert!(
            run.stderr
                .contains("error: the configuration is invalid: 1 error"),
            "{}",
            run.transcript()
        );
    }
    assert!(!world.path("broken.plan").exists());
    assert_eq!(world.db_bytes(), db, "an invalid config changes nothing");
}

#[test]
fn the_mass_delete_guard_refuses_plan_and_apply_with_exit_3() {
    let dir = plans_dir().join("mass-delete");
    let world = Scratch::new();
    let before = dir.join("before.yaml");
    apply(&world, &before);
    let db = world.db_bytes();
    let after = dir.join("after.yaml");
    let after = arg(&after);
    let refused = |run: Outcome, deletes: &str| {
        let run = run.expect(3);
        assert!(
            run.stderr.contains(&format!(
                "refusing to delete {deletes} resources of tenancy `acme-prod`"
            )),
            "{}",
            run.transcript()
        );
        assert!(
            run.stderr.contains("--allow-mass-delete"),
            "{}",
            run.transcript()
        );
        run
    };
    for args in [
        &["plan", after][..],
        &["plan", "--detailed-exitcode", after],
        &["plan", "--format", "json", after],
        &["plan", "-o", "guarded.plan", after],
    ] {
        let run = refused(world.run(args), "17 of the 22");
        assert!(
            run.stderr.contains("the 5 changes in it that take access away are applied all the same, and the 12 others are held back"),
            "{}",
            run.transcript()
        );
    }
    assert!(
        !world.path("guarded.plan").exists(),
        "a refused plan is not saved"
    );
    assert_eq!(world.db_bytes(), db, "plan writes nothing");

    world
        .run(&["plan", "--allow-mass-delete", "--detailed-exitcode", after])
        .expect(2);
    world
        .run(&["plan", "--allow-mass-delete", "-o", "allowed.plan", after])
        .expect(0);
    // The guard holds again at apply time, for a saved plan too; what the
    // plan takes away lands all the same, and only that.
    let cut = refused(world.run(&["apply", "allowed.plan"]), "17 of the 22");
    assert!(
        cut.stdout
            .contains("Only what takes access away is applied now:")
            && cut
                .stdout
                .ends_with("Apply complete! Resources: 0 added, 0 changed, 5 destroyed.\n"),
        "{}",
        cut.transcript()
    );
    let history = world.history();
    assert_eq!(history.len(), 2, "the revocations are one journaled apply");
    let show: Value = json(&show_json(&world));
    assert!(
        show["approvals"].as_array().is_none_or(Vec::is_empty)
            && show["support_links"].as_array().is_none_or(Vec::is_empty),
        "no grant the config took away is left: {show}"
    );
    assert_eq!(
        show["users"].as_object().map(|u| u.len()),
        json(&db_show(&before))["users"]
            .as_object()
            .map(|u| u.len()),
        "no user is deleted"
    );
    // The saved plan is stale now; the config set is refused as a whole,
    // with nothing left in it that takes access away.
    world
        .run(&["apply", "--allow-mass-delete", "allowed.plan"])
        .expect(1);
    let db = world.db_bytes();
    let run = refused(
        world.run(&["apply", "--auto-approve", after]),
        "12 of the 17",
    );
    assert!(
        run.stderr
            .contains("nothing in it takes access away, so nothing is changed"),
        "{}",
        run.transcript()
    );
    assert_eq!(
        world.db_bytes(),
        db,
        "a refused apply with nothing to revoke writes nothing"
    );
    let applied = world
        .run(&["apply", "--auto-approve", "--allow-mass-delete", after])
        .expect(0);
    assert!(
        applied
            .stdout
            .ends_with("Apply complete! Resources: 0 added, 0 changed, 12 destroyed.\n")
    );
    assert_no_changes(&world, after);
}

/// `show --format json` of a fresh database with `config` applied.
fn db_show(config: &Path) -> String {
    let world = Scratch::new();
    apply(&world, config);
    show_json(&world)
}

#[test]
fn allow_mass_delete_lets_an_apply_of_a_config_through() {
    let dir = plans_dir().join("mass-delete");
    let world = Scratch::new();
    apply(&world, &dir.join("before.yaml"));
    let after = dir.join("after.yaml");
    world
        .run(&[
            "apply",
            "--auto-approve",
            "--allow-mass-delete",
            arg(&after),
        ])
        .expect(0);
    assert_eq!(world.serial(), 2);
    assert_no_changes(&world, arg(&after));
}

#[test]
fn a_stale_saved_plan_is_refused_and_changes_nothing() {
    let dir = plans_dir();
    let world = Scratch::new();
    apply(&world, &dir.join("create/before.yaml"));
    let create = dir.join("create/after.yaml");
    world
        .run(&["plan", "-o", "create.plan", arg(&create)])
        .expect(0);
    // Another apply moves the state on.
    apply(&world, &dir.join("update/after.yaml"));
    let show = show_json(&world);
    let db = world.db_bytes();
    let run = world.run(&["apply", "create.plan"]).expect(1);
    assert!(
        run.stderr.contains("is stale")
            && run.stderr.contains("made at serial 1")
            && run.stderr.contains("moved on to serial 2"),
        "{}",
        run.transcript()
    );
    assert_eq!(
        run.stdout, "",
        "a stale plan is refused before it is printed"
    );
    assert!(run.stderr.contains("nothing was changed"));
    assert_eq!(show_json(&world), show);
    assert_eq!(world.db_bytes(), db);
    assert_eq!(world.history().len(), 2);
}

#[test]
fn a_saved_plan_for_another_database_is_refused() {
    let dir = plans_dir().join("create");
    let ours = Scratch::new();
    let theirs = Scratch::new();
    apply(&ours, &dir.join("before.yaml"));
    apply(&theirs, &dir.join("before.yaml"));
    // The same tenancy at the same serial, in another database.
    let plan = ours.path("create.plan");
    ours.run(&["plan", "-o", arg(&plan), arg(&dir.join("after.yaml"))])
        .expect(0);
    let db = theirs.db_bytes();
    let run = theirs.run(&["apply", arg(&plan)]).expect(1);
    let lineage = |w: &Scratch| json(&show_json(w))["lineage"].as_str().unwrap().to_string();
    assert_ne!(lineage(&ours), lineage(&theirs));
    assert!(
        run.stderr.contains("made against another database")
            && run.stderr.contains(&lineage(&ours))
            && run.stderr.contains(&lineage(&theirs)),
        "{}",
        run.transcript()
    );
    assert_eq!(theirs.db_bytes(), db);
    assert_eq!(theirs.serial(), 1);

    // A plan for a tenancy new to both is refused all the same when it was
    // made against a database.
    let fresh = Scratch::new();
    let other = Scratch::new();
    apply(&fresh, &example("acme-prod.yaml"));
    apply(&other, &example("acme-prod.yaml"));
    let beta = plans_dir().join("from-empty/after.yaml");
    fresh
        .run(&["plan", "-o", "beta.plan", arg(&beta)])
        .expect(0);
    let db = other.db_bytes();
    other
        .run(&["apply", arg(&fresh.path("beta.plan"))])
        .expect(1);
    assert_eq!(other.db_bytes(), db);

    // A plan made where there was no database yet has no lineage: it creates
    // its tenancy in any database that does not hold it yet, and only there.
    let nowhere = Scratch::new();
    nowhere
        .run(&["plan", "-o", "beta.plan", arg(&beta)])
        .expect(0);
    assert!(!nowhere.db.exists(), "plan creates no database");
    let saved = json(&std::fs::read_to_string(nowhere.path("beta.plan")).unwrap());
    assert_eq!(saved["lineage"], "");
    other
        .run(&["apply", arg(&nowhere.path("beta.plan"))])
        .expect(0);
    other
        .run(&["apply", arg(&nowhere.path("beta.plan"))])
        .expect(1);
}

#[test]
fn saved_plans_exports_and_the_database_are_private_files() {
    let world = Scratch::new();
    let config = example("acme-prod.yaml");
    world
        .run(&["plan", "-o", "acme.plan", arg(&config)])
        .expect(0);
    assert_eq!(mode(&world.path("acme.plan")), 0o600);
    assert!(world.db_bytes().is_empty(), "planning creates no database");
    // A plan written over an existing plan others could read replaces it
    // with a private file.
    let open = world.path("open.plan");
    std::fs::copy(world.path("acme.plan"), &open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    world
        .run(&["plan", "-o", "open.plan", arg(&config)])
        .expect(0);
    assert_eq!(mode(&open), 0o600);
    assert!(std::fs::read_to_string(&open).unwrap().starts_with('{'));

    apply(&world, &config);
    if world.is_postgres() {
        // The files kept for a state on a server, in the user's cache
        // folder, which is private too.
        let cache = world.beside(".parse-cache");
        assert_eq!(mode(&cache), 0o600, "{}", cache.display());
        assert_eq!(mode(cache.parent().unwrap()), 0o700);
    } else {
        assert_eq!(mode(&world.db), 0o600);
        for entry in std::fs::read_dir(world.root()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("state.db") {
                assert_eq!(mode(&path), 0o600, "{name}");
            }
        }
    }
    world.run(&["export", "--out", "exported"]).expect(0);
    for file in files_under(&world.path("exported")) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn the_saved_plan_file_is_the_json_plan() {
    let world = Scratch::new();
    let config = example("acme-prod.yaml");
    let printed = world
        .run(&["plan", "--format", "json", arg(&config)])
        .expect(0);
    let saved = world
        .run(&["plan", "-o", "acme.plan", arg(&config)])
        .expect(0);
    assert!(
        saved
            .stdout
            .ends_with("Plan: 22 to add, 0 to change, 0 to destroy.\n")
    );
    assert!(saved.stderr.contains("Saved the plan to `acme.plan`"));
    assert_eq!(
        std::fs::read_to_string(world.path("acme.plan")).unwrap(),
        printed.stdout
    );
    // With --format json, stdout and the file agree and stderr stays quiet.
    let both = world
        .run(&["plan", "--format", "json", "-o", "again.plan", arg(&config)])
        .expect(0);
    assert_eq!(
        std::fs::read_to_string(world.path("again.plan")).unwrap(),
        both.stdout
    );
    assert_eq!(both.stdout, printed.stdout);
}

#[test]
fn apply_without_auto_approve_refuses_when_stdin_is_not_a_terminal() {
    let dir = plans_dir().join("create");
    let world = Scratch::new();
    apply(&world, &dir.join("before.yaml"));
    let show = show_json(&world);
    let db = world.db_bytes();
    let run = world
        .run(&["apply", arg(&dir.join("after.yaml"))])
        .expect(1);
    assert!(
        run.stderr.contains("stdin is not a terminal") && run.stderr.contains("--auto-approve"),
        "{}",
        run.transcript()
    );
    assert_eq!(world.db_bytes(), db, "nothing written");
    assert_eq!(show_json(&world), show);
    assert_eq!(world.history().len(), 1);

    // Where there is no database yet, a refused apply creates none.
    let fresh = Scratch::new();
    fresh
        .run(&["apply", arg(&example("acme-prod.yaml"))])
        .expect(1);
    assert!(!fresh.db.exists(), "a refused apply creates no database");
}

/// `apply` asks on a terminal (its question and a refusal on stderr), and
/// goes ahead only on `yes`.
#[test]
fn apply_on_a_terminal_asks_and_only_yes_proceeds() {
    let dir = plans_dir().join("create");
    let world = Scratch::new();
    apply(&world, &dir.join("before.yaml"));
    let db = world.db_bytes();
    let after = dir.join("after.yaml");
    let no = world.typing(&["apply", arg(&after)], "no").expect(1);
    assert!(
        no.stderr.contains("Only 'yes' will be accepted") && no.stderr.contains("apply cancelled"),
        "{}",
        no.transcript()
    );
    assert_eq!(world.db_bytes(), db, "a refusal writes nothing");
    let yes = world.typing(&["apply", arg(&after)], "yes").expect(0);
    assert!(
        yes.stdout
            .contains("Apply complete! Resources: 7 added, 0 changed, 0 destroyed."),
        "{}",
        yes.transcript()
    );
    assert_no_changes(&world, arg(&after));
}

#[test]
fn apply_of_a_saved_plan_applies_exactly_that_plan_and_only_once() {
    let dir = plans_dir().join("create");
    let world = Scratch::new();
    apply(&world, &dir.join("before.yaml"));
    // The config set changes after the plan is saved: the saved plan, not
    // the files, is what is applied.
    let config = world.write(
        "acme.yaml",
        &std::fs::read_to_string(dir.join("after.yaml")).unwrap(),
    );
    world
        .run(&["plan", "-o", "acme.plan", "acme.yaml"])
        .expect(0);
    std::fs::write(
        &config,
        std::fs::read_to_string(plans_dir().join("update/after.yaml")).unwrap(),
    )
    .unwrap();
    let applied = world.run(&["apply", "acme.plan"]).expect(0);
    assert!(
        applied
            .stdout
            .ends_with("Apply complete! Resources: 7 added, 0 changed, 0 destroyed.\n"),
        "{}",
        applied.transcript()
    );
    assert_eq!(
        text_changes(&applied.stdout),
        [
            "+ user.hana",
            "+ user.ivan",
            "+ user.jae",
            "+ support_account.hana",
            "+ membership.hana",
            "+ approval.hana",
            "+ support_link.ivan",
        ]
    );
    assert_no_changes(&world, arg(&dir.join("after.yaml")));
    let history = world.history();
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[1]["config_digest"],
        json(&std::fs::read_to_string(world.path("acme.plan")).unwrap())["config_digest"]
    );

    let show = show_json(&world);
    let db = world.db_bytes();
    let again = world.run(&["apply", "acme.plan"]).expect(1);
    assert!(again.stderr.contains("is stale"), "{}", again.transcript());
    assert_eq!(show_json(&world), show);
    assert_eq!(world.db_bytes(), db);
}

#[test]
fn an_empty_plan_writes_nothing() {
    let world = Scratch::new();
    let config = example("acme-prod.yaml");
    apply(&world, &config);
    let db = world.db_bytes();
    let again = world
        .run(&["apply", "--auto-approve", arg(&config)])
        .expect(0);
    assert_eq!(again.stdout, NO_CHANGES);
    assert_eq!(world.db_bytes(), db);
    assert_eq!(world.serial(), 1);
    assert_eq!(world.history().len(), 1);
    // Without --auto-approve too: there is nothing to consent to.
    world.run(&["apply", arg(&config)]).expect(0);
    // A saved empty plan.
    world
        .run(&["plan", "-o", "empty.plan", arg(&example("acme-prod"))])
        .expect(0);
    let applied = world.run(&["apply", "empty.plan"]).expect(0);
    assert_eq!(applied.stdout, NO_CHANGES);
    assert_eq!(world.db_bytes(), db);
    assert_eq!(world.serial(), 1);
    assert_eq!(world.history().len(), 1);
}

#[test]
fn the_readme_main_command_applies_then_says_no_changes() {
    let dir = tempfile::tempdir().unwrap();
    let config = example("acme-prod.yaml");
    let args = ["apply", "--auto-approve", arg(&config)];
    // The default database, ./supportctl.db: no `--db`, so the SQLite
    // backend's default file (SQLite backend only).
    let without_db = |args: &[&str]| {
        let outcome = run(&mut supportctl(dir.path(), args));
        outcome.assert_no_panic();
        outcome
    };
    let first = without_db(&args).expect(0);
    assert!(
        first.stdout.starts_with(
            "supportctl will make these changes to tenancy `acme-prod`:\n\n  + tenancy.acme-prod\n"
        ),
        "{}",
        first.transcript()
    );
    assert!(
        first
            .stdout
            .ends_with("\nPlan: 22 to add, 0 to change, 0 to destroy.\nApply complete! Resources: 22 added, 0 changed, 0 destroyed.\n"),
        "{}",
        first.transcript()
    );
    let db = dir.path().join("supportctl.db");
    assert_eq!(mode(&db), 0o600);
    let second = without_db(&args).expect(0);
    assert_eq!(second.stdout, NO_CHANGES);
    // The GitOps layout of the same tenancy is the same tenancy.
    let folder = example("acme-prod");
    let plan = ["plan", "--detailed-exitcode", arg(&folder)];
    let third = without_db(&plan).expect(0);
    assert_eq!(third.stdout, NO_CHANGES);
}

#[test]
fn a_file_that_is_not_a_supportctl_database_is_refused_and_left_untouched() {
    // Files given as the SQLite database that are not one (SQLite backend
    // only).
    let world = Scratch::new();
    let config = example("acme-prod.yaml");
    let text = world.write("notes.txt", "these are my notes, not a database\n");
    let foreign = world.path("foreign.sqlite");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let newer = world.path("newer.db");
    {
        let conn = rusqlite::Connection::open(&newer).unwrap();
        conn.execute_batch(
            "PRAGMA application_id = 1397769044; PRAGMA user_version = 999; CREATE TABLE meta (k);",
        )
        .unwrap();
    }
    let folder = world.path("folder.db");
    std::fs::create_dir(&folder).unwrap();
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(world.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let files = listing();
    for (db, says) in [
        (&folder, "is not a supportctl database"),
        (&text, "is not a supportctl database"),
        (&foreign, "is not a supportctl database"),
        (&newer, "newer supportctl"),
    ] {
        let bytes = std::fs::read(db).unwrap_or_default();
        for args in [
            &["plan", arg(&config)][..],
            &["apply", "--auto-approve", arg(&config)],
            &["show"],
            &["history"],
            &["export"],
        ] {
            let mut full = vec!["--db", arg(db)];
            full.extend_from_slice(args);
            let run = run(&mut supportctl(world.root(), &full));
            run.assert_no_panic();
            let run = run.expect(1);
            assert!(run.stderr.contains(says), "{}", run.transcript());
            assert_eq!(run.stdout, "", "{}", run.transcript());
            assert_eq!(
                std::fs::read(db).unwrap_or_default(),
                bytes,
                "{} changed",
                db.display()
            );
        }
    }
    assert_eq!(listing(), files, "no file was created beside them");
}

#[test]
fn history_lists_each_apply_with_its_serial_digest_and_commit() {
    let world = Scratch::new();
    let first = example("acme-prod.yaml");
    let digest_of = |config: &Path| {
        json(
            &world
                .run(&["plan", "--format", "json", arg(config)])
                .expect(0)
                .stdout,
        )["config_digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first_digest = digest_of(&first);
    apply(&world, &first);
    // The second config is outside any git work tree.
    let second = world.write(
        "acme.yaml",
        &std::fs::read_to_string(&first)
            .unwrap()
            .replace("name: Bob Choi", "name: Bob Choi-Kim"),
    );
    let second_digest = digest_of(&second);
    assert_ne!(first_digest, second_digest);
    apply(&world, &second);
    // An empty plan adds no entry.
    apply(&world, &second);

    let history = world.history();
    assert_eq!(history.len(), 2, "{history:?}");
    for (i, entry) in history.iter().enumerate() {
        let keys: BTreeSet<&str> = entry
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "id",
                "action",
                "tenancy",
                "time",
                "serial",
                "summary",
                "config_digest",
                "git_commit",
                "git_dirty",
                "git_changes",
                "applied_by"
            ])
        );
        assert_eq!(entry["action"], "apply");
        assert_eq!(entry["serial"], i as u64 + 1);
        // Who applied: `apply` by hand, here, from the config set's path.
        assert_eq!(entry["applied_by"]["command"], "apply", "{entry}");
        assert!(
            entry["applied_by"]["host"]
                .as_str()
                .is_some_and(|h| !h.is_empty()),
            "{entry}"
        );
        assert!(entry["applied_by"]["pid"].is_u64(), "{entry}");
        assert_eq!(entry["tenancy"], "acme-prod");
        let time = entry["time"].as_str().unwrap();
        assert!(
            time.starts_with("20") && time.ends_with('Z'),
            "an RFC 3339 UTC time: {time}"
        );
    }
    assert!(history[0]["id"].as_i64() < history[1]["id"].as_i64());
    assert_eq!(history[0]["config_digest"], first_digest.as_str());
    assert_eq!(history[1]["config_digest"], second_digest.as_str());
    assert_eq!(
        history[0]["summary"],
        serde_json::json!({"add": 22, "change": 0, "destroy": 0})
    );
    assert_eq!(
        history[1]["summary"],
        serde_json::json!({"add": 0, "change": 1, "destroy": 0})
    );
    // The examples are in this project's git work tree; the copy is not.
    let head = Command::new("git")
        .args(["rev-parse", "--verify", "--quiet", "HEAD"])
        .current_dir(crate_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(head) => {
            let commit = history[0]["git_commit"].as_str().expect("a git commit");
            assert!(is_hex(commit, 40), "`{commit}` is a commit id");
            assert_eq!(commit, head);
        }
        None => assert!(history[0]["git_commit"].is_null()),
    }
    assert!(history[1]["git_commit"].is_null(), "{:?}", history[1]);
    // Outside a git work tree, whether files differed is not known.
    assert!(history[1]["git_dirty"].is_null(), "{:?}", history[1]);
    assert!(history[1]["git_changes"].is_null(), "{:?}", history[1]);
    assert_eq!(
        history[0]["applied_by"]["path"],
        first.display().to_string(),
        "the absolute path of what was applied"
    );
    assert_eq!(
        history[1]["applied_by"]["path"],
        second.display().to_string()
    );

    let text = world.run(&["history"]).expect(0);
    assert_eq!(text.stdout.lines().count(), 2, "{}", text.stdout);
    assert!(text.stdout.contains("serial 1") && text.stdout.contains("serial 2"));
    assert!(text.stdout.contains("+22 ~0 -0") && text.stdout.contains("+0 ~1 -0"));
    assert!(
        text.stdout.contains(&format!(": {}\n", second.display()))
            && text.stdout.contains("by apply on "),
        "{}",
        text.stdout
    );
}

#[test]
fn show_prints_the_state_as_text_yaml_and_json() {
    let world = Scratch::new();
    apply(&world, &example("acme-prod.yaml"));
    let text = world.run(&["show"]).expect(0);
    snapshot("show-acme-prod.text", &plan_transcript(&["show"], &text));
    let yaml_args = ["show", "--format", "yaml"];
    let yaml = world.run(&yaml_args).expect(0);
    snapshot("show-acme-prod.yaml", &plan_transcript(&yaml_args, &yaml));
    let json_args = ["show", "--format", "json"];
    let json_run = world.run(&json_args).expect(0);
    let doc = json(&json_run.stdout);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["serial"], 1);
    let lineage = doc["lineage"].as_str().unwrap().to_string();
    assert!(is_hex(&lineage, 32));
    let users: Vec<&str> = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        users,
        ["alice", "bob", "carol", "dankim", "erin", "frank", "gina"]
    );
    let masked = Outcome {
        stdout: json_run.stdout.replace(&lineage, "[lineage]"),
        ..json_run
    };
    snapshot("show-acme-prod.json", &plan_transcript(&json_args, &masked));
    // show --format yaml is a config set of the state.
    world.write("shown.yaml", &yaml.stdout);
    assert_no_changes(&world, "shown.yaml");
}

#[test]
fn export_plans_to_no_changes_as_one_file_and_as_a_directory() {
    for config in [
        example("acme-prod.yaml"),
        plans_dir().join("from-empty/after.yaml"),
        plans_dir().join("update/after.yaml"),
    ] {
        let world = Scratch::new();
        apply(&world, &config);
        let exported = world.run(&["export"]).expect(0);
        assert_eq!(exported.stderr, "");
        world.write("export.yaml", &exported.stdout);
        assert_no_changes(&world, "export.yaml");

        let done = world.run(&["export", "--out", "exported"]).expect(0);
        assert_eq!(done.stdout, "");
        assert_no_changes(&world, "exported");
        let names: Vec<String> = files_under(&world.path("exported"))
            .iter()
            .map(|p| {
                p.strip_prefix(world.path("exported"))
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert!(
            names.contains(&"tenancy.yaml".to_string())
                && names.iter().any(|n| n.starts_with("users/")),
            "the GitOps layout: {names:?}"
        );
        world.run(&["validate", "exported"]).expect(0);
    }
}

/// Colour in the text plan only when asked for: `--color always` beats
/// `NO_COLOR`, and a pipe gets none by default.
#[test]
fn the_text_plan_is_coloured_only_when_asked() {
    let world = Scratch::new();
    let config = example("acme-prod.yaml");
    let plain = world.run(&["plan", arg(&config)]).expect(0);
    assert!(!plain.stdout.contains('\x1b'));
    let coloured = world
        .run(&["--color", "always", "plan", arg(&config)])
        .expect(0);
    assert!(
        coloured
            .stdout
            .contains("\x1b[32m+\x1b[0m \x1b[1mtenancy.acme-prod\x1b[0m"),
        "{:?}",
        coloured.stdout
    );
    let stripped = coloured
        .stdout
        .replace("\x1b[32m", "")
        .replace("\x1b[1m", "")
        .replace("\x1b[0m", "");
    assert_eq!(stripped, plain.stdout);
    let json_run = world
        .run(&[
            "--color",
            "always",
            "plan",
            "--format",
            "json",
            arg(&config),
        ])
        .expect(0);
    assert!(!json_run.stdout.contains('\x1b'));
}

/// `apply PATH` tells a saved plan from a config set; a config file written
/// in YAML flow style (it starts with `{`, like a JSON plan) is a config set
/// all the same: `validate` and `plan` read it as one.
#[test]
fn a_config_file_in_flow_style_is_applied_as_a_config() {
    let world = Scratch::new();
    world.write(
        "flow.yaml",
        "{tenancy: {name: t, csi: \"1\", admin: dan}, users: {dan: {email: d@x.example, support_account: {phone: \"1\", timezone: UTC}}}}\n",
    );
    world.run(&["validate", "flow.yaml"]).expect(0);
    world
        .run(&["plan", "--detailed-exitcode", "flow.yaml"])
        .expect(2);
    let run = world.run(&["apply", "--auto-approve", "flow.yaml"]);
    assert_eq!(run.code(), 0, "{}", run.transcript());
    assert_no_changes(&world, "flow.yaml");
}

/// Control characters from a config never reach the terminal raw, in the
/// plan or in `show`, and survive the round trip through the state.
#[test]
fn control_characters_are_escaped_in_plans_and_kept_in_the_state() {
    let world = Scratch::new();
    world.write(
        "ctl.yaml",
        "tenancy: {name: t, csi: \"1\", admin: dan, home_region: \"r\\u001b[31m\"}\nusers:\n  dan: {email: d@x.example, name: \"Dan\\u001b[2J\\u0007\\r\", support_account: {phone: \"+1\\t2\", timezone: UTC}}\n",
    );
    // Tabs are let through, as in diagnostics: they cannot move the cursor
    // back or forge a line.
    let raw = |text: &str| {
        text.chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    };
    let plan = world.run(&["plan", "ctl.yaml"]).expect(0);
    assert!(!raw(&plan.stdout), "{:?}", plan.stdout);
    assert!(
        plan.stdout.contains(r#"name: "Dan\u{1b}[2J\u{7}\r""#),
        "{}",
        plan.stdout
    );
    world
        .run(&["apply", "--auto-approve", "ctl.yaml"])
        .expect(0);
    let show = world.run(&["show"]).expect(0);
    assert!(!raw(&show.stdout), "{:?}", show.stdout);
    let history = world.run(&["history"]).expect(0);
    assert!(!raw(&history.stdout));
    assert_no_changes(&world, "ctl.yaml");
    let exported = world.run(&["export"]).expect(0);
    world.write("export.yaml", &exported.stdout);
    assert_no_changes(&world, "export.yaml");
}

/// A time zone written in another case (`asia/seoul`) is the zone the
/// database spells `Asia/Seoul`: stored so, shown and exported so, and the
/// same config, or one in yet another case, plans to no changes (issue 17
/// §9).
#[test]
fn a_time_zone_in_another_case_is_stored_as_the_database_spells_it() {
    let world = Scratch::new();
    let config = |zone: &str| {
        format!(
            "tenancy: {{ name: tz, csi: \"1\", admin: dan }}\nusers:\n  dan: {{ email: dan@x.example, support_account: {{ phone: \"1\", timezone: {zone} }} }}\n  eve: {{ email: eve@x.example, support_account: {{ phone: \"2\", timezone: etc/gmt+9 }} }}\nmemberships: [{{ user: eve }}]\napprovals: [{{ user: eve, role: admin }}]\n"
        )
    };
    world.write("lower.yaml", &config("asia/seoul"));
    world.write("upper.yaml", &config("ASIA/SEOUL"));
    world
        .run(&["apply", "--auto-approve", "lower.yaml"])
        .expect(0);
    let show = json(&show_json(&world));
    let zones: Vec<&str> = show["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| {
            u["support_account"]["timezone"]
                .as_str()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(zones, ["Asia/Seoul", "Etc/GMT+9"]);
    assert_no_changes(&world, "lower.yaml");
    assert_no_changes(&world, "upper.yaml");
    let exported = world.run(&["export"]).expect(0).stdout;
    assert!(
        exported.contains("Asia/Seoul") && !exported.contains("asia/seoul"),
        "{exported}"
    );
}

/// The access list of an approval with role admin says nothing (an admin
/// holds every privilege), but it is in the state, so the export must
/// keep it, or the export plans to a change.
#[test]
fn an_admin_approval_with_an_access_list_exports_to_no_changes() {
    let world = Scratch::new();
    apply(&world, &plans_dir().join("update/after.yaml"));
    let exported = world.run(&["export"]).expect(0);
    world.write("export.yaml", &exported.stdout);
    assert_no_changes(&world, "export.yaml");
}

#[test]
fn export_into_a_folder_that_is_not_empty_is_refused() {
    let world = Scratch::new();
    apply(&world, &example("acme-prod.yaml"));
    let kept = world.write("out/keep.yaml", "# mine\n");
    let run = world.run(&["export", "--out", "out"]).expect(1);
    assert!(
        run.stderr.contains("exists and is not an empty folder"),
        "{}",
        run.transcript()
    );
    assert_eq!(files_under(&world.path("out")), vec![kept.clone()]);
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "# mine\n");
    // A file in the way is refused too.
    world.write("file", "x");
    world.run(&["export", "--out", "file"]).expect(1);
    assert_eq!(std::fs::read_to_string(world.path("file")).unwrap(), "x");
}

#[test]
fn a_config_set_touches_only_its_own_tenancy() {
    let world = Scratch::new();
    let acme = example("acme-prod.yaml");
    let beta = plans_dir().join("from-empty/after.yaml");
    apply(&world, &acme);
    apply(&world, &beta);
    assert_no_changes(&world, arg(&acme));
    assert_no_changes(&world, arg(&beta));
    let show = world.run(&["show"]).expect(1);
    assert!(
        show.stderr.contains("several tenancies") && show.stderr.contains("--tenancy"),
        "{}",
        show.transcript()
    );
    let beta_show = json(
        &world
            .run(&["show", "--tenancy", "beta", "--format", "json"])
            .expect(0)
            .stdout,
    );
    assert_eq!(beta_show["tenancy"]["name"], "beta");
    assert_eq!(beta_show["serial"], 1);
    let history = json(
        &world
            .run(&["history", "--tenancy", "acme-prod", "--format", "json"])
            .expect(0)
            .stdout,
    );
    assert_eq!(history.as_array().unwrap().len(), 1);
    // Changing one leaves the other alone.
    let acme_before = world
        .run(&["show", "--tenancy", "acme-prod", "--format", "json"])
        .expect(0)
        .stdout;
    world
        .run(&[
            "apply",
            "--auto-approve",
            "--allow-mass-delete",
            arg(&plans_dir().join("mass-delete/after.yaml")),
        ])
        .expect(0);
    assert_no_changes(&world, arg(&beta));
    assert_ne!(
        world
            .run(&["show", "--tenancy", "acme-prod", "--format", "json"])
            .expect(0)
            .stdout,
        acme_before
    );
    let beta_after = json(
        &world
            .run(&["show", "--tenancy", "beta", "--format", "json"])
            .expect(0)
            .stdout,
    );
    assert_eq!(beta_after, beta_show);
}

#[test]
fn a_rename_onto_an_id_in_the_state_is_refused() {
    let world = Scratch::new();
    let base = std::fs::read_to_string(plans_dir().join("rename/before.yaml")).unwrap();
    // The state holds both erin and erin.park.
    let both = base.replace(
        "  bob:\n",
        "  erin.park:\n    email: other.erin@acme.example\n  bob:\n",
    );
    apply(&world, &world.write("both.yaml", &both));
    let db = world.db_bytes();
    let rename = plans_dir().join("rename/after.yaml");
    for args in [
        &["plan", arg(&rename)][..],
        &["apply", "--auto-approve", arg(&rename)],
    ] {
        let run = world.run(args).expect(1);
        assert!(
            run.stderr
                .contains("cannot rename user `erin` to `erin.park`: both are in the state"),
            "{}",
            run.transcript()
        );
    }
    assert_eq!(world.db_bytes(), db);
}

// ---- All or nothing ----

/// A saved plan with one more change spliced in at `at`, its summary kept
/// right, so that the apply gets past the checks of the plan file and fails
/// part-way through the transaction.
fn tampered(plan: &str, at: usize, change: Value) -> String {
    let mut doc = json(plan);
    let action = change["action"].as_str().unwrap().to_string();
    let changes = doc["changes"].as_array_mut().unwrap();
    let at = at.min(changes.len());
    changes.insert(at, change);
    let key = match action.as_str() {
        "create" => "add",
        "update" => "change",
        _ => "destroy",
    };
    let n = doc["summary"][key].as_u64().unwrap();
    doc["summary"][key] = (n + 1).into();
    // Sealed again, as `plan -o` would have written it: the seal itself is
    // tested in `reliability`.
    let read = supportctl::render::parse_plan_json(&doc.to_string()).unwrap();
    assert!(!read.sealed, "an edited plan breaks the seal");
    supportctl::render::plan_json(&read.plan, &read.lineage, read.serial, &read.config_digest)
}

#[test]
fn a_saved_plan_that_fails_part_way_changes_nothing() {
    let dir = plans_dir().join("mixed");
    let world = Scratch::new();
    apply(&world, &dir.join("before.yaml"));
    world
        .run(&["plan", "-o", "mixed.plan", arg(&dir.join("after.yaml"))])
        .expect(0);
    let plan = std::fs::read_to_string(world.path("mixed.plan")).unwrap();
    let len = json(&plan)["changes"].as_array().unwrap().len();
    let show = show_json(&world);
    let db = world.db_bytes();
    let failures = [
        // A row that is not there: fails at once, when its statement runs.
        serde_json::json!({
            "address": "user.ghost", "type": "user", "id": "ghost", "action": "update",
            "reason": null, "before": {"email": "g@x.example", "name": null},
            "after": {"email": "ghost@x.example", "name": null}
        }),
        // A row that is already there.
        serde_json::json!({
            "address": "user.dankim", "type": "user", "id": "dankim", "action": "create",
            "reason": null, "before": null,
            "after": {"email": "dan@x.example", "name": null}
        }),
        // A link through nobody, for nobody: fails at the commit, on the
        // deferred foreign keys.
        serde_json::json!({
            "address": "support_link.ghost", "type": "support_link", "id": "ghost",
            "action": "create", "reason": null, "before": null,
            "after": {"via": "nobody", "expires": null}
        }),
    ];
    for (i, change) in failures.iter().enumerate() {
        // In the middle of the plan, and as its last change.
        for at in [len / 2, len] {
            let name = format!("bad-{i}-{at}.plan");
            world.write(&name, &tampered(&plan, at, change.clone()));
            let run = world.run(&["apply", &name]).expect(1);
            // Refused by the store, or before it by the rules the state
            // it leads to breaks.
            assert!(
                (run.stderr.contains("does not fit the state")
                    || run.stderr.contains("the state this plan leads to breaks"))
                    && run.stderr.contains("nothing was changed"),
                "{}",
                run.transcript()
            );
            assert_eq!(show_json(&world), show, "{}", run.transcript());
            assert_eq!(world.db_bytes(), db);
        }
    }
    assert_eq!(world.history().len(), 1);
    // The untampered plan still applies.
    world.run(&["apply", "mixed.plan"]).expect(0);
    assert_no_changes(&world, arg(&dir.join("after.yaml")));
}

#[test]
fn a_plan_that_fails_in_the_store_leaves_the_state_as_it_was() {
    use supportctl::config::Limits;
    use supportctl::engine::load_and_check;
    use supportctl::model::{Date, SupportLink, User};
    use supportctl::plan::{self, Action, Change, Kind, Value as Row};
    use supportctl::state::{JournalEntry, JournalPlan, StateError, Store};

    let dir = plans_dir().join("mixed");
    let today = Date::parse(TODAY).unwrap();
    let load = |name: &str| {
        load_and_check(&dir.join(name), &Limits::default(), today)
            .model
            .unwrap_or_else(|| panic!("{name} is valid"))
    };
    let (before, after) = (load("before.yaml"), load("after.yaml"));
    let entry = |p: &plan::Plan| JournalEntry {
        time: "2026-11-24T00:00:00Z".into(),
        summary: p.summary(),
        plan: JournalPlan::new("{}"),
        config_digest: "sha256:test".into(),
        git_commit: None,
        git_changes: None,
        source: None,
    };
    // The store of the scratch's state, opened in process.
    let scratch = Scratch::new();
    let path = scratch.db.clone();
    let mut store = Store::open(&path).unwrap();
    let lineage = store.lineage().to_string();
    let first = plan::plan(&before, None);
    assert_eq!(
        store
            .apply("acme-prod", &lineage, 0, &first, || entry(&first))
            .unwrap(),
        1
    );
    let snapshot = store.load("acme-prod").unwrap().expect("the tenancy");
    let history = store.history(None).unwrap();
    let good = plan::plan(&after, Some(&snapshot.model));
    assert!(good.changes.len() > 5);

    let ghost_update = Change {
        kind: Kind::User,
        id: "ghost".into(),
        action: Action::Update,
        reason: None,
        renamed_from: None,
        before: None,
        after: Some(Row::User(User {
            email: "ghost@x.example".into(),
            name: None,
        })),
    };
    let dangling_link = Change {
        kind: Kind::SupportLink,
        id: "ghost".into(),
        action: Action::Create,
        reason: None,
        renamed_from: None,
        before: None,
        after: Some(Row::SupportLink(SupportLink {
            via: "nobody".into(),
            expires: None,
        })),
    };
    for bad_change in [ghost_update, dangling_link] {
        // A failure after every prefix of the plan.
        for at in 0..=good.changes.len() {
            let mut bad = good.clone();
            bad.changes.insert(at, bad_change.clone());
            let err = store
                .apply("acme-prod", &lineage, 1, &bad, || entry(&bad))
                .expect_err("the plan cannot be applied");
            assert!(matches!(err, StateError::Mismatch { .. }), "at {at}: {err}");
            assert_eq!(
                store.load("acme-prod").unwrap().as_ref(),
                Some(&snapshot),
                "at {at}"
            );
            assert_eq!(store.history(None).unwrap(), history);
        }
    }
    drop(store);
    // Nothing of it reached the file either.
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.load("acme-prod").unwrap().as_ref(), Some(&snapshot));
    assert_eq!(
        store
            .apply("acme-prod", &lineage, 1, &good, || entry(&good))
            .unwrap(),
        2
    );
    let mut reached = plan::apply_to(Some(&snapshot.model), &good).expect("the plan fits");
    reached.renames.clear();
    assert_eq!(store.load("acme-prod").unwrap().unwrap().model, reached);
}

/// A config of the tenancy `big` with `n` users, each with a support
/// account and a membership; `variant` changes some names.
fn big_config(n: usize, variant: u8) -> String {
    let mut out = String::from(
        "tenancy: { name: big, csi: \"1\", admin: dan }\nusers:\n  dan: { email: dan@x.example, support_account: { phone: \"1\", timezone: UTC } }\n",
    );
    for i in 0..n {
        let _ = writeln!(
            out,
            "  u{i}: {{ email: u{i}@x.example, name: \"User {i} v{}\", support_account: {{ phone: \"+1 555 {i}\", timezone: UTC }} }}",
            if i % 7 == 0 { variant } else { 0 }
        );
    }
    out.push_str("memberships:\n");
    for i in 0..n {
        let _ = writeln!(out, "  - user: u{i}");
    }
    out
}

/// the README's *Reliability*: a killed apply leaves the database exactly as before or exactly
/// as after. The apply is killed (SIGKILL) at various moments, most as soon
/// as it starts writing its write-ahead log, that is in the middle of its
/// commit.
#[test]
fn an_apply_killed_part_way_leaves_the_state_before_or_after() {
    let n = 1200;
    let mut outcomes = Vec::new();
    let triggers: Vec<Option<Duration>> = [None, None, None, None]
        .into_iter()
        .chain([10, 100, 250].map(|ms| Some(Duration::from_millis(ms))))
        .collect();
    for trigger in triggers {
        let world = Scratch::new();
        world.write("a.yaml", &big_config(n / 4, 0));
        world.write("b.yaml", &big_config(n, 1));
        apply(&world, &world.path("a.yaml"));
        let before = show_json(&world);
        let wal = world.path("state.db-wal");
        let args = ["apply", "--auto-approve", "b.yaml"];
        let mut child = world.start(&args);
        let started = Instant::now();
        let finished = loop {
            if child.child.try_wait().unwrap().is_some() {
                break true;
            }
            let due = match trigger {
                None => std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0),
                Some(delay) => started.elapsed() >= delay,
            };
            if due {
                break false;
            }
            assert!(started.elapsed() < DEADLINE, "the apply hangs");
            std::thread::yield_now();
        };
        if !finished {
            let _ = child.child.kill();
        }
        let status = child.finish().status;
        let outcome = match world.serial() {
            1 => {
                assert_eq!(
                    show_json(&world),
                    before,
                    "killed ({trigger:?}), the state moved"
                );
                assert_eq!(world.history().len(), 1);
                // The database still works.
                apply(&world, &world.path("b.yaml"));
                "before"
            }
            2 => {
                assert_eq!(world.history().len(), 2);
                "after"
            }
            other => panic!("serial {other}"),
        };
        let plan = world.run(&["plan", "--detailed-exitcode", "b.yaml"]);
        assert_eq!((plan.code(), plan.stdout.as_str()), (0, NO_CHANGES));
        outcomes.push(format!("{trigger:?}: {outcome} ({status})"));
    }
    eprintln!("killed applies: {outcomes:#?}");
}

/// the README's *Reliability*: two applies at once both end cleanly. One applies; the other
/// applies after it, or is refused as stale; never a mix of the two.
#[test]
fn two_applies_at_once_both_end_cleanly() {
    let dir = plans_dir();
    let configs = [dir.join("create/after.yaml"), dir.join("update/after.yaml")];
    for _ in 0..4 {
        let world = Scratch::new();
        apply(&world, &dir.join("create/before.yaml"));
        let children: Vec<(String, Running)> = configs
            .iter()
            .map(|c| {
                let args = ["apply", "--auto-approve", arg(c)];
                (args.join(" "), world.start(&args))
            })
            .collect();
        let mut applied = 0;
        for (what, child) in children {
            let Outcome {
                status,
                stdout,
                stderr,
                ..
            } = child.finish();
            match status.code() {
                Some(0) => {
                    assert!(stdout.contains("Apply complete!"), "{what}: {stdout}");
                    applied += 1;
                }
                Some(1) => assert!(
                    stderr.contains("is stale") || stderr.contains("locked"),
                    "{what}: {stderr}"
                ),
                other => panic!("{what} ended with {other:?}: {stderr}"),
            }
        }
        assert!(applied >= 1, "one of them applies");
        assert_eq!(world.serial(), 1 + applied);
        assert_eq!(world.history().len() as u64, 1 + applied);
        // The state is exactly that of the last apply.
        let settled = configs
            .iter()
            .filter(|c| world.run(&["plan", "--detailed-exitcode", arg(c)]).code() == 0)
            .count();
        assert_eq!(settled, 1);
    }
}

// ---- The reconciler's laws, on random valid config sets ----

const POOL: [&str; 8] = [
    "dan", "zoe", "alice", "yuri", "bob", "carol", "xena", "erin",
];
/// Names that YAML could misread if written carelessly.
const NAMES: [&str; 13] = [
    "Alice Lee",
    "Zoë \"Z\" O'Neil",
    "null",
    "true",
    "0012",
    "a: b # c",
    "- dash",
    " padded ",
    "two\nlines",
    "",
    "tab\there",
    "日本語 名前",
    "bell\u{7}\u{1b}[0m",
];
const PHONES: [&str; 5] = [
    "+82 2 555 0100",
    "0012",
    "12345",
    "+1 (555) 0100 ext. 7",
    "null",
];
const ZONES: [&str; 4] = ["UTC", "Asia/Seoul", "Europe/Berlin", "America/New_York"];
const REGIONS: [&str; 2] = ["ap-seoul-1", "eu-frankfurt-1"];
/// All after [`TODAY`]: no grant is expired.
const DATES: [&str; 4] = ["2027-01-01", "2027-06-30", "2028-02-29", "2030-12-31"];
const ACCESS: [&str; 3] = ["create_sr", "view_sr", "download"];

/// The random choices for one user of the pool.
#[derive(Clone, Debug)]
struct UserDraw {
    present: bool,
    email: usize,
    name: Option<usize>,
    account: Option<(usize, usize)>,
    member: bool,
    /// Role admin, access bits, approver pick, expiry.
    approval: Option<(bool, usize, usize, Option<usize>)>,
    /// Via pick, expiry.
    link: Option<(usize, Option<usize>)>,
}

fn user_draw() -> impl Strategy<Value = UserDraw> {
    (
        prop::bool::weighted(0.75),
        0usize..3,
        prop::option::of(0..NAMES.len()),
        prop::option::weighted(0.7, (0..PHONES.len(), 0..ZONES.len())),
        prop::bool::weighted(0.7),
        prop::option::weighted(
            0.6,
            (
                prop::bool::weighted(0.4),
                0usize..8,
                0usize..8,
                prop::option::of(0..DATES.len()),
            ),
        ),
        prop::option::weighted(0.6, (0usize..8, prop::option::of(0..DATES.len()))),
    )
        .prop_map(
            |(present, email, name, account, member, approval, link)| UserDraw {
                present,
                email,
                name,
                account,
                member,
                approval,
                link,
            },
        )
}

/// The random choices for one config set.
#[derive(Clone, Debug)]
struct Draw {
    other_csi: bool,
    region: Option<usize>,
    admin_is_erin: bool,
    users: Vec<UserDraw>,
    /// In the second config of a pair: rename one of the users both have.
    rename: Option<usize>,
}

fn draw() -> impl Strategy<Value = Draw> {
    (
        prop::bool::weighted(0.15),
        prop::option::of(0..REGIONS.len()),
        prop::bool::weighted(0.15),
        prop::collection::vec(user_draw(), POOL.len()),
        prop::option::weighted(0.35, 0usize..8),
    )
        .prop_map(|(other_csi, region, admin_is_erin, users, rename)| Draw {
            other_csi,
            region,
            admin_is_erin,
            users,
            rename,
        })
}

/// A valid config set, built from a [`Draw`]. Its `Debug` is its YAML, so
/// that a failing case shows the config set it failed on.
#[derive(Clone)]
struct Spec {
    csi: &'static str,
    region: Option<&'static str>,
    admin: String,
    users: Vec<UserSpec>,
}

#[derive(Clone, Debug)]
struct UserSpec {
    id: String,
    previously: Option<String>,
    email: String,
    name: Option<&'static str>,
    account: Option<(&'static str, &'static str)>,
    member: bool,
    approval: Option<ApprovalSpec>,
    link: Option<LinkSpec>,
}

#[derive(Clone, Debug)]
struct ApprovalSpec {
    admin: bool,
    access: Option<Vec<&'static str>>,
    approved_by: Option<String>,
    expires: Option<&'static str>,
}

#[derive(Clone, Debug)]
struct LinkSpec {
    via: Option<String>,
    expires: Option<&'static str>,
}

impl Spec {
    fn from_draw(d: &Draw) -> Spec {
        let admin = if d.admin_is_erin { "erin" } else { "dan" };
        // The CSI administrators so far: the tenancy admin, then every user
        // approved with role admin, in pool order, so chains have no cycle.
        let mut csi_admins = vec![admin.to_string()];
        let mut users = Vec::new();
        for (id, u) in POOL.iter().zip(&d.users) {
            let is_admin = *id == admin;
            if !u.present && !is_admin {
                continue;
            }
            let email = match u.email {
                0 => format!("{id}@x.example"),
                1 => format!("{id}.alt@x.example"),
                // The first one in another case.
                _ => format!("{}@X.EXAMPLE", id.to_uppercase()),
            };
            let account = if is_admin {
                Some(u.account.unwrap_or((0, 0)))
            } else {
                u.account
            }
            .map(|(p, z)| (PHONES[p], ZONES[z]));
            let member = !is_admin && account.is_some() && u.member;
            let approval = u
                .approval
                .filter(|_| member)
                .map(|(role, bits, pick, expires)| {
                    let pick = pick % (csi_admins.len() + 1);
                    ApprovalSpec {
                        admin: role,
                        access: (bits != 0).then(|| {
                            (0..3)
                                .filter(|b| bits & (1 << b) != 0)
                                .map(|b| ACCESS[b])
                                .collect()
                        }),
                        // The last pick: leave it to the default.
                        approved_by: csi_admins.get(pick).cloned(),
                        expires: expires.map(|e| DATES[e]),
                    }
                });
            if approval.as_ref().is_some_and(|a| a.admin) {
                csi_admins.push(id.to_string());
            }
            let link = u
                .link
                .filter(|_| !is_admin && approval.is_none())
                .map(|(pick, expires)| LinkSpec {
                    via: csi_admins.get(pick % (csi_admins.len() + 1)).cloned(),
                    expires: expires.map(|e| DATES[e]),
                });
            users.push(UserSpec {
                id: id.to_string(),
                previously: None,
                email,
                name: u.name.map(|n| NAMES[n]),
                account,
                member,
                approval,
                link,
            });
        }
        Spec {
            csi: if d.other_csi { "20817432" } else { "20817431" },
            region: d.region.map(|r| REGIONS[r]),
            admin: admin.to_string(),
            users,
        }
    }

    /// Renames user `old` to `old.r` with `previously:`, and every
    /// reference to it.
    fn rename(&mut self, old: &str) {
        let new = format!("{old}.r");
        for u in &mut self.users {
            if u.id == old {
                u.id = new.clone();
                u.previously = Some(old.to_string());
            }
            if let Some(a) = &mut u.approval
                && a.approved_by.as_deref() == Some(old)
            {
                a.approved_by = Some(new.clone());
            }
            if let Some(l) = &mut u.link
                && l.via.as_deref() == Some(old)
            {
                l.via = Some(new.clone());
            }
        }
        if self.admin == old {
            self.admin = new;
        }
    }

    fn yaml(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap();
        let mut out =
            String::from("# generated by tests/it/reconcile.rs\ntenancy:\n  name: prop\n");
        let _ = writeln!(out, "  csi: {}", q(self.csi));
        if let Some(region) = self.region {
            let _ = writeln!(out, "  home_region: {region}");
        }
        let _ = writeln!(out, "  admin: {}\nusers:", self.admin);
        for u in &self.users {
            let _ = writeln!(out, "  {}:", u.id);
            if let Some(old) = &u.previously {
                let _ = writeln!(out, "    previously: {old}");
            }
            let _ = writeln!(out, "    email: {}", q(&u.email));
            if let Some(name) = u.name {
                let _ = writeln!(out, "    name: {}", q(name));
            }
            if let Some((phone, zone)) = u.account {
                let _ = writeln!(
                    out,
                    "    support_account: {{ phone: {}, timezone: {zone} }}",
                    q(phone)
                );
            }
        }
        let members: Vec<&UserSpec> = self.users.iter().filter(|u| u.member).collect();
        if !members.is_empty() {
            out.push_str("memberships:\n");
            for u in members {
                let _ = writeln!(out, "  - user: {}", u.id);
            }
        }
        let approved: Vec<(&UserSpec, &ApprovalSpec)> = self
            .users
            .iter()
            .filter_map(|u| Some((u, u.approval.as_ref()?)))
            .collect();
        if !approved.is_empty() {
            out.push_str("approvals:\n");
            for (u, a) in approved {
                let role = if a.admin { "admin" } else { "user" };
                let _ = writeln!(out, "  - user: {}\n    role: {role}", u.id);
                if let Some(access) = &a.access {
                    let _ = writeln!(out, "    access: [{}]", access.join(", "));
                }
                if let Some(by) = &a.approved_by {
                    let _ = writeln!(out, "    approved_by: {by}");
                }
                if let Some(expires) = a.expires {
                    let _ = writeln!(out, "    expires: {expires}");
                }
            }
        }
        let linked: Vec<(&UserSpec, &LinkSpec)> = self
            .users
            .iter()
            .filter_map(|u| Some((u, u.link.as_ref()?)))
            .collect();
        if !linked.is_empty() {
            out.push_str("support_links:\n");
            for (u, l) in linked {
                let _ = writeln!(out, "  - user: {}", u.id);
                if let Some(via) = &l.via {
                    let _ = writeln!(out, "    via: {via}");
                }
                if let Some(expires) = l.expires {
                    let _ = writeln!(out, "    expires: {expires}");
                }
            }
        }
        out
    }
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\n{}", self.yaml())
    }
}

/// A config set of the tenancy `prop`.
fn spec() -> impl Strategy<Value = Spec> {
    draw().prop_map(|d| Spec::from_draw(&d))
}

/// Two config sets A and B of one tenancy; B may rename a user of A.
fn pair() -> impl Strategy<Value = (Spec, Spec)> {
    (draw(), draw()).prop_map(|(a, b)| {
        let a_spec = Spec::from_draw(&a);
        let mut b_spec = Spec::from_draw(&b);
        if let Some(k) = b.rename {
            let common: Vec<String> = b_spec
                .users
                .iter()
                .map(|u| u.id.clone())
                .filter(|id| a_spec.users.iter().any(|u| &u.id == id))
                .collect();
            if !common.is_empty() {
                b_spec.rename(&common[k % common.len()]);
            }
        }
        (a_spec, b_spec)
    })
}

/// Writes `spec` to `name` and checks that it is valid: a generator that
/// makes an invalid config is a bug in this file.
fn write_spec(world: &Scratch, name: &str, spec: &Spec) -> PathBuf {
    let text = spec.yaml();
    let path = world.write(name, &text);
    let run = world.run(&["validate", name]);
    assert_eq!(
        run.code(),
        0,
        "the generator made an invalid config:\n{text}\n{}",
        run.stderr
    );
    path
}

fn law_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(law_config(24))]

    /// Apply A, then plan A is empty; and the state exported, as one file or
    /// as a directory, plans to no changes either.
    #[test]
    fn law_apply_then_plan_is_empty_and_exports_round_trip(spec in spec()) {
        let world = Scratch::new();
        let a = write_spec(&world, "a.yaml", &spec);
        apply(&world, &a);
        assert_no_changes(&world, "a.yaml");
        let exported = world.run(&["export"]).expect(0).stdout;
        world.write("export.yaml", &exported);
        assert_no_changes(&world, "export.yaml");
        world.run(&["export", "--out", "exported"]).expect(0);
        assert_no_changes(&world, "exported");
        let shown = world.run(&["show", "--format", "yaml"]).expect(0).stdout;
        prop_assert_eq!(shown, exported);
    }

    /// The state of any day exports and reads back: A applied today, then
    /// again on a later day when some of its grants (an approver's own
    /// administrator approval among them) have ended; the state that leaves
    /// (approvals by former administrators, links through them) exports to
    /// a config set that plans to no changes on that day.
    #[test]
    fn law_the_state_of_any_day_exports_and_reads_back(spec in spec(), day in prop::sample::select(DATES.to_vec())) {
        let world = Scratch::new();
        let a = write_spec(&world, "a.yaml", &spec);
        apply(&world, &a);
        world.set_today(day);
        world.run(&["apply", "--auto-approve", "--allow-mass-delete", "a.yaml"]).expect(0);
        world.run(&["export", "--out", "exported"]).expect(0);
        let replan = world.run(&["plan", "--detailed-exitcode", "exported"]);
        prop_assert_eq!(
            (replan.code(), replan.stdout.as_str()),
            (0, NO_CHANGES),
            "the export of the state on {} does not read back:\n{}",
            day,
            replan.transcript()
        );
    }

    /// Apply A, apply B (directly or through a saved plan), then plan B is
    /// empty; and going back to A converges too.
    #[test]
    fn law_apply_a_then_b_converges_on_b((a_spec, b_spec) in pair(), saved in any::<bool>()) {
        let world = Scratch::new();
        let a = write_spec(&world, "a.yaml", &a_spec);
        write_spec(&world, "b.yaml", &b_spec);
        apply(&world, &a);
        let planned = json(
            &world
                .run(&["plan", "--format", "json", "--allow-mass-delete", "b.yaml"])
                .expect(0)
                .stdout,
        );
        check_plan_json(&planned, 1);
        let applied = if saved {
            world
                .run(&["plan", "--allow-mass-delete", "-o", "b.plan", "b.yaml"])
                .expect(0);
            world.run(&["apply", "--allow-mass-delete", "b.plan"]).expect(0)
        } else {
            world
                .run(&["apply", "--auto-approve", "--allow-mass-delete", "b.yaml"])
                .expect(0)
        };
        let empty = planned["changes"].as_array().unwrap().is_empty();
        if empty {
            prop_assert_eq!(applied.stdout.as_str(), NO_CHANGES);
        } else {
            let s = &planned["summary"];
            let done = format!(
                "Apply complete! Resources: {} added, {} changed, {} destroyed.\n",
                s["add"], s["change"], s["destroy"]
            );
            prop_assert!(applied.stdout.ends_with(&done), "{}", applied.transcript());
        }
        prop_assert_eq!(world.serial(), if empty { 1 } else { 2 });
        assert_no_changes(&world, "b.yaml");
        // The state does not depend on the way there: B applied to an empty
        // database gives the same tenancy.
        let direct = Scratch::new();
        apply(&direct, &world.path("b.yaml"));
        prop_assert_eq!(world.content(), direct.content());
        world
            .run(&["apply", "--auto-approve", "--allow-mass-delete", "a.yaml"])
            .expect(0);
        assert_no_changes(&world, "a.yaml");
    }

    /// Planning twice gives identical bytes, from an empty state and from
    /// another config's.
    #[test]
    fn law_planning_twice_gives_identical_bytes((a_spec, b_spec) in pair()) {
        let world = Scratch::new();
        write_spec(&world, "a.yaml", &a_spec);
        write_spec(&world, "b.yaml", &b_spec);
        let twice = |args: &[&str]| {
            let first = world.run(args);
            let second = world.run(args);
            assert_eq!(
                (first.code(), &first.stdout, &first.stderr),
                (second.code(), &second.stdout, &second.stderr),
                "{}", first.transcript()
            );
            first
        };
        twice(&["plan", "a.yaml"]).expect(0);
        twice(&["plan", "--format", "json", "a.yaml"]).expect(0);
        apply(&world, &world.path("a.yaml"));
        let text = twice(&["plan", "--allow-mass-delete", "b.yaml"]).expect(0);
        let printed = twice(&["plan", "--allow-mass-delete", "--format", "json", "b.yaml"]).expect(0);
        world
            .run(&["plan", "--allow-mass-delete", "-o", "b.plan", "b.yaml"])
            .expect(0);
        prop_assert_eq!(
            std::fs::read_to_string(world.path("b.plan")).unwrap(),
            printed.stdout.clone()
        );
        let doc = json(&printed.stdout);
        check_plan_json(&doc, 1);
        prop_assert_eq!(text_changes(&text.stdout), json_changes(&doc));
    }
}

// ---- The parse cache beside the database ----

/// How many files a `-vv` run parsed and reused, from its debug line.
fn parsed_and_reused(run: &Outcome) -> (usize, usize) {
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("config set checked"))
        .unwrap_or_else(|| panic!("no load line\n{}", run.transcript()));
    let field = |name: &str| -> usize {
        let start = line.find(&format!(" {name}=")).expect(name) + name.len() + 2;
        line[start..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("parsed"), field("reused"))
}

#[test]
fn a_finding_in_a_file_the_parse_cache_held_shows_its_source_line() {
    // The files a run takes from the cache are not kept in memory; a
    // finding in one reads it again, and shows what a run without the
    // cache shows.
    let world = Scratch::new();
    let set = world.path("set");
    copy_dir(&example("acme-prod"), &set);
    let approvals = set.join("approvals.yaml");
    let text = std::fs::read_to_string(&approvals).unwrap();
    std::fs::write(&approvals, text.replace("2030-06-30", "2026-01-31")).unwrap();
    apply(&world, &set);
    let cached = world.run(&["plan", arg(&set)]).expect(0);
    let fresh = world.run(&["plan", "--no-cache", arg(&set)]).expect(0);
    assert!(
        cached.stderr.contains("warning[W202]") && cached.stderr.contains("expires: 2026-01-31"),
        "{}",
        cached.stderr
    );
    assert_eq!(cached.stderr, fresh.stderr);
    let verbose = world.run(&["-vv", "plan", arg(&set)]).expect(0);
    let files = std::fs::read_dir(set.join("users")).unwrap().count() + 3;
    assert_eq!(parsed_and_reused(&verbose), (0, files));
}

#[test]
fn the_parse_cache_beside_the_database_is_reused_and_never_changes_a_plan() {
    let world = Scratch::new();
    let set = world.path("set");
    copy_dir(&example("acme-prod"), &set);
    let cache = world.beside(".parse-cache");
    let set_arg = arg(&set);

    // No database, no cache: a plan writes nothing beside a database that
    // is not there.
    world.run(&["plan", set_arg]).expect(0);
    assert!(!cache.exists(), "a plan without a database wrote a cache");

    apply(&world, &set);
    assert!(cache.exists(), "the first apply keeps its parses");
    assert_eq!(mode(&cache), 0o600, "the cache holds phone numbers");
    let files = std::fs::read_dir(set.join("users")).unwrap().count() + 3;
    let noop = world.run(&["-vv", "plan", "--detailed-exitcode", set_arg]);
    let noop = noop.expect(0);
    assert_eq!(parsed_and_reused(&noop), (0, files));
    assert_eq!(noop.stdout, NO_CHANGES);

    // Each plan with the cache must print what a plan without it prints.
    let agree = |why: &str| -> (usize, usize) {
        let cached = world.run(&["-vv", "plan", set_arg]);
        let fresh = world.run(&["plan", "--no-cache", set_arg]);
        assert_eq!(
            cached.code(),
            fresh.code(),
            "{why}\n{}",
            cached.transcript()
        );
        assert_eq!(cached.stdout, fresh.stdout, "{why}");
        parsed_and_reused(&cached)
    };

    // The same size and modification time, another name.
    let erin = set.join("users/erin.yaml");
    let text = std::fs::read_to_string(&erin).unwrap();
    let before = std::fs::metadata(&erin).unwrap().modified().unwrap();
    let (old, new) = ("name: Erin", "name: Eryn");
    assert!(text.contains(old), "{text}");
    std::fs::write(&erin, text.replacen(old, new, 1)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&erin)
        .unwrap()
        .set_modified(before)
        .unwrap();
    assert_eq!(agree("same size and time"), (1, files - 1));
    let shown = world.run(&["plan", set_arg]).expect(0).stdout;
    assert!(shown.contains("Eryn"), "{shown}");

    // Two files swap their contents under their names; a file moves.
    let (alice, bob) = (set.join("users/alice.yaml"), set.join("users/bob.yaml"));
    let (a, b) = (std::fs::read(&alice).unwrap(), std::fs::read(&bob).unwrap());
    std::fs::write(&alice, &b).unwrap();
    std::fs::write(&bob, &a).unwrap();
    assert_eq!(agree("swapped contents"), (2, files - 2));
    std::fs::rename(&alice, set.join("users/zz-alice.yaml")).unwrap();
    let (parsed, _) = agree("a file renamed to the end of the set");
    assert!(parsed >= 1);
    assert_eq!(agree("nothing changed since"), (0, files));

    // A damaged record of the cache is not used, nor any after it, and the
    // run writes the cache whole again.
    let mut bytes = std::fs::read(&cache).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&cache, &bytes).unwrap();
    let (parsed, reused) = agree("a damaged cache");
    assert!(
        parsed >= 1 && reused >= 1,
        "{parsed} parsed, {reused} reused"
    );
    assert_eq!(parsed + reused, files);
    assert_eq!(agree("the cache written again"), (0, files));
    // One not from this format at all.
    std::fs::write(&cache, b"supportctl parse cache\n\x01").unwrap();
    assert_eq!(agree("a cache of another format"), (files, 0));
    assert_eq!(agree("the cache written again"), (0, files));

    // `--no-cache` neither reads nor writes it.
    std::fs::remove_file(&cache).unwrap();
    world.run(&["plan", "--no-cache", set_arg]).expect(0);
    world
        .run(&["apply", "--auto-approve", "--no-cache", set_arg])
        .expect(0);
    assert!(!cache.exists(), "--no-cache wrote the cache");
    assert_eq!(world.run(&["plan", set_arg]).expect(0).stdout, NO_CHANGES);
    assert!(cache.exists());
}
