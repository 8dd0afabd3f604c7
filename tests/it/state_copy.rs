//! `state copy` (issue 19 §5): every tenancy of a state — rows, serials,
//! journal, SRs and their comments, remembered renames, retired tenancies —
//! copied into another state reads the same there, through the commands
//! people use (`show`, `history`, `sr list`, `access`), apart from the
//! lineage; a copy into a state that already holds one of the tenancies is
//! refused and writes nothing. SQLite to SQLite always; SQLite to
//! PostgreSQL and back when a server is at hand (see [`pg_url`]).

use serde_json::Value;

use crate::binary::{Outcome, Scratch, copy_dir, crate_root, json, run, supportctl};

/// The tenancies of [`history_of_everything`].
const TENANCIES: [&str; 2] = ["acme-prod", "old"];

/// A state with a bit of every kind of history: the example tenancy
/// applied, an SR opened by bob and commented on, bob renamed to robert
/// (`previously:`), a second SR by robert; and tenancy `old`, with an SR,
/// retired.
fn history_of_everything(scratch: &Scratch) {
    copy_dir(
        &crate_root().join("examples/acme-prod"),
        &scratch.path("acme"),
    );
    scratch.with_history("acme");
    scratch.write(
        "acme/users/bob.yaml",
        "users:\n  robert:\n    previously: bob\n    email: bob@acme.example\n    name: Bob Choi\n",
    );
    let links = std::fs::read_to_string(scratch.path("acme/links.yaml")).unwrap();
    scratch.write(
        "acme/links.yaml",
        &links.replace("- user: bob", "- user: robert"),
    );
    scratch.ok(&["apply", "--auto-approve", "acme"]);
    scratch.ok(&[
        "sr",
        "open",
        "--user",
        "robert",
        "--title",
        "Quota",
        "--tenancy",
        "acme-prod",
    ]);
    scratch.write(
        "old.yaml",
        "tenancy: { name: old, csi: \"555\", admin: ann }\nusers:\n  ann: { email: ann@old.example, support_account: { phone: \"+1 555 0100\", timezone: UTC } }\n",
    );
    scratch.ok(&["apply", "--auto-approve", "old.yaml"]);
    scratch.ok(&[
        "sr",
        "open",
        "--user",
        "ann",
        "--title",
        "Old one",
        "--tenancy",
        "old",
    ]);
    scratch.ok(&["retire", "--tenancy", "old", "--auto-approve"]);
}

/// `supportctl --db DB ARGS` in the scratch folder.
fn at(scratch: &Scratch, db: &str, args: &[&str]) -> Outcome {
    let mut command = supportctl(scratch.root(), ["--db", db]);
    command.args(args).env("SUPPORTCTL_TODAY", scratch.today());
    let outcome = run(&mut command);
    outcome.assert_no_panic();
    outcome
}

/// What the commands print of the state at `db`, tenancy by tenancy, with
/// the lineage (each state's own) left out: `show`, `history`, `sr list`
/// (all, and as robert sees them: by person) and `access`, or how each
/// fails for a retired tenancy.
fn readings(scratch: &Scratch, db: &str) -> Vec<(String, i32, Value)> {
    let mut all = Vec::new();
    for tenancy in TENANCIES {
        for args in [
            &["show", "--format", "json"][..],
            &["history", "--format", "json"],
            &["sr", "list", "--format", "json"],
            &["sr", "list", "--format", "json", "--user", "robert"],
            &["access", "--all", "--format", "json"],
        ] {
            let mut args = args.to_vec();
            args.extend(["--tenancy", tenancy]);
            let outcome = at(scratch, db, &args);
            let mut doc = if outcome.code() == 0 {
                json(&outcome.stdout)
            } else {
                Value::String(outcome.stderr.clone())
            };
            if let Some(object) = doc.as_object_mut() {
                object.remove("lineage");
            }
            all.push((args.join(" "), outcome.code(), doc));
        }
    }
    all
}

#[track_caller]
fn assert_same(scratch: &Scratch, a: &str, b: &str) {
    let (left, right) = (readings(scratch, a), readings(scratch, b));
    for (l, r) in left.iter().zip(&right) {
        assert_eq!(l, r, "`{}` reads differently in {a} and {b}", l.0);
    }
    // Not vacuous: the readings hold the SRs, the rename and the history.
    let text = format!("{left:?}");
    for needle in ["Quota", "Old one", "Looking.", "robert", "\"retire\""] {
        assert!(text.contains(needle), "{needle} is missing from {text}");
    }
}

/// Copies `from` into `to` (a path or URL), which must succeed.
#[track_caller]
fn copy(scratch: &Scratch, from: &str, to: &str) -> Outcome {
    at(scratch, from, &["state", "copy", "--to", to]).expect(0)
}

#[test]
fn a_state_copied_to_another_file_reads_the_same_and_a_second_copy_is_refused() {
    let scratch = Scratch::new();
    history_of_everything(&scratch);
    let db = scratch.db_arg();
    let copied = copy(&scratch, &db, "copy.db");
    assert_eq!(
        copied.stdout,
        format!(
            "Copied 2 tenancies (1 retired) from `{db}` to `copy.db`: 4 journal entries, 3 SRs, 1 comment.\nBoth states read the same, tenancy by tenancy. `copy.db` has its own lineage: plans saved against `{db}` are stale there; plan again.\n"
        ),
        "{}",
        copied.transcript()
    );
    assert_same(&scratch, &db, "copy.db");

    // Again: refused, and the copy is as it was.
    let before = readings(&scratch, "copy.db");
    let again = at(&scratch, &db, &["state", "copy", "--to", "copy.db"]).expect(1);
    assert_eq!(
        again.stderr,
        "error: cannot copy into `copy.db`: it already holds tenancies `acme-prod`, `old` (rows, journal or SRs); nothing was written\n  hint: copy into a state that holds none of them: a new database file, or a new schema (`--to-schema NAME`)\n"
    );
    assert_eq!(readings(&scratch, "copy.db"), before);

    // The copy carries on where the original was: the config set plans to
    // no changes, and the next SR takes the next id.
    at(
        &scratch,
        "copy.db",
        &["plan", "--detailed-exitcode", "acme"],
    )
    .expect(0);
    let next = at(
        &scratch,
        "copy.db",
        &[
            "sr", "open", "--user", "robert", "--title", "Next", "--format", "id",
        ],
    )
    .expect(0);
    assert_eq!(next.stdout, "4\n");
}

#[test]
fn copying_from_nothing_or_onto_itself_is_refused() {
    let scratch = Scratch::new();
    let nothing = at(&scratch, "none.db", &["state", "copy", "--to", "copy.db"]).expect(1);
    assert_eq!(
        nothing.stderr,
        "error: no state at `none.db` to copy\n  hint: `--db` (or SUPPORTCTL_DB) names the state to copy from\n"
    );
    assert!(!scratch.path("copy.db").exists());
    assert!(!scratch.path("none.db").exists());

    history_of_everything(&scratch);
    let db = scratch.db_arg();
    let itself = at(&scratch, &db, &["state", "copy", "--to", &db]).expect(1);
    assert!(
        itself.stderr.starts_with(&format!(
            "error: `{db}` is the state being copied; nothing was written\n"
        )),
        "{}",
        itself.transcript()
    );
    let schema = at(
        &scratch,
        &db,
        &["state", "copy", "--to", "copy.db", "--to-schema", "other"],
    )
    .expect(1);
    assert!(
        schema.stderr.starts_with("error: `--to-schema` names a schema of a PostgreSQL state, and `copy.db` is a SQLite file"),
        "{}",
        schema.transcript()
    );
}

#[test]
fn a_state_moves_to_postgresql_and_back_reading_the_same() {
    let Some(url) = pg_url() else { return };
    let scratch = Scratch::new();
    history_of_everything(&scratch);
    let db = scratch.db_arg();
    copy(&scratch, &db, &url);
    assert_same(&scratch, &db, &url);
    copy(&scratch, &url, "back.db");
    assert_same(&scratch, &url, "back.db");

    // Into PostgreSQL again: refused untouched; into another schema of the
    // same database, a second copy.
    let before = readings(&scratch, &url);
    let again = at(&scratch, &db, &["state", "copy", "--to", &url]).expect(1);
    assert!(
        again.stderr.contains(
            "it already holds tenancies `acme-prod`, `old` (rows, journal or SRs); nothing was written"
        ),
        "{}",
        again.transcript()
    );
    assert_eq!(readings(&scratch, &url), before);
    at(
        &scratch,
        &db,
        &["state", "copy", "--to", &url, "--to-schema", "second"],
    )
    .expect(0);

    // The copy in PostgreSQL carries on: the next SR takes the next id.
    let next = at(
        &scratch,
        &url,
        &[
            "sr", "open", "--user", "robert", "--title", "Next", "--format", "id",
        ],
    )
    .expect(0);
    assert_eq!(next.stdout, "4\n");
}

/// A fresh database on the test process's PostgreSQL server, or `None`
/// (the harness said why) when there is none outside CI.
fn pg_url() -> Option<String> {
    crate::pg_server::shared().map(|server| server.create_database())
}
