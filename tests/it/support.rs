//! Access and service requests end to end (issue 4): `access`, `sr open`,
//! `sr list`, `sr show` and `sr comment`, through the real binary.
//!
//! - The access matrix: `tests/data/support/matrix.yaml` holds one user per
//!   situation of the access matrix of docs/DOMAIN.md §4, expired grants included, and
//!   [`MATRIX`] writes down by hand what each must resolve to. `access USER`
//!   (text and JSON) and `access --all` (table, JSON, CSV) must agree with it.
//! - Each `sr` command, allowed and refused. A refusal exits 1, says why on
//!   stderr, prints nothing on stdout and writes nothing.
//! - Nothing is lost: removing a link, a user or an approval leaves every SR
//!   in place, with the owner it was opened under; a rename keeps a user's
//!   SRs its own; an SR is its tenancy's alone.
//! - A property test: random sequences of applies of valid configs, of SR
//!   operations and of days passing keep the linked-user rule and never lose
//!   or rewrite an SR.
//!
//! Every test has its own temporary directory and database; the day is
//! fixed (`SUPPORTCTL_TODAY`), there is no colour and stdin is /dev/null.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::Value;

use crate::binary::{Outcome, Scratch, TODAY, arg, data_dir, json};

// ---- The world a test runs in ----

/// `tests/data/support/matrix.yaml`: one user per row of the access matrix.
fn matrix_config() -> PathBuf {
    data_dir().join("support").join("matrix.yaml")
}

/// A scratch with the matrix fixture applied as it would have come about:
/// first on a day before any of its grants had ended (a link is made only
/// through an administrator of the day), then on today.
fn matrix_world() -> Scratch {
    let world = Scratch::new();
    let today = world.today();
    world.set_today("2025-12-01");
    apply_path(&world, &matrix_config());
    world.set_today(&today);
    apply_path(&world, &matrix_config());
    world
}

/// Writes `yaml` to `name`, checks that it validates (a config these
/// tests write must be valid) and applies it.
#[track_caller]
fn apply(world: &Scratch, name: &str, yaml: &str) -> Outcome {
    let path = world.root().join(name);
    std::fs::write(&path, yaml).expect("the config is written");
    let checked = world.run(&["validate", name]);
    assert_eq!(
        checked.code(),
        0,
        "the test wrote an invalid config:\n{yaml}\n{}",
        checked.stderr
    );
    apply_path(world, &path)
}

#[track_caller]
fn apply_path(world: &Scratch, config: &Path) -> Outcome {
    world.ok(&[
        "apply",
        "--auto-approve",
        "--allow-mass-delete",
        arg(config),
    ])
}

/// `access --all --format json`.
#[track_caller]
fn access_all(world: &Scratch) -> Vec<Value> {
    list(json(
        &world.ok(&["access", "--all", "--format", "json"]).stdout,
    ))
}

/// Every SR, as the administrator sees them: `sr list --format json`.
#[track_caller]
fn srs(world: &Scratch) -> Vec<Value> {
    list(json(&world.ok(&["sr", "list", "--format", "json"]).stdout))
}

/// The ids of the SRs `user` can see: `sr list --user USER --format json`.
#[track_caller]
fn visible(world: &Scratch, user: &str) -> Vec<i64> {
    let out = world.ok(&["sr", "list", "--user", user, "--format", "json"]);
    list(json(&out.stdout)).iter().map(id_of).collect()
}

/// Opens an SR that must open: `sr open --format json`.
#[track_caller]
fn sr_open(world: &Scratch, user: &str, title: &str) -> Value {
    let args = ["sr", "open", "--user", user, "--title", title];
    json(
        &world
            .ok(&[&args[..], &["--format", "json"]].concat())
            .stdout,
    )
}

/// `sr show ID --format json`.
#[track_caller]
fn sr_show(world: &Scratch, id: i64) -> Value {
    let id = id.to_string();
    json(&world.ok(&["sr", "show", &id, "--format", "json"]).stdout)
}

/// Runs a command that must be refused: exit 1, `why` on stderr, nothing
/// on stdout, and every SR and comment as it was.
#[track_caller]
fn expect_refused(world: &Scratch, args: &[&str], why: &str) -> Outcome {
    let before = srs(world);
    let outcome = world.run(args);
    outcome.assert_code(1);
    assert_eq!(outcome.stdout, "", "a refusal prints nothing on stdout");
    assert!(
        outcome.stderr.starts_with("error: ") && outcome.stderr.contains(why),
        "`{}`: the refusal should say `{why}`:\n{}",
        outcome.shown,
        outcome.stderr
    );
    assert_eq!(srs(world), before, "`{}` wrote something", outcome.shown);
    outcome
}

/// Runs a command clap must refuse as a usage error (exit 2), writing
/// nothing.
#[track_caller]
fn expect_usage_error(world: &Scratch, args: &[&str]) -> Outcome {
    let before = srs(world);
    let outcome = world.run(args);
    outcome.assert_code(2);
    assert_eq!(outcome.stdout, "", "a usage error prints nothing on stdout");
    assert!(outcome.stderr.starts_with("error: "), "{}", outcome.stderr);
    assert_eq!(srs(world), before, "`{}` wrote something", outcome.shown);
    outcome
}

#[track_caller]
fn list(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        other => panic!("not a JSON list: {other}"),
    }
}

#[track_caller]
fn id_of(sr: &Value) -> i64 {
    sr["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("an SR without an id: {sr}"))
}

#[track_caller]
fn text_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is not a string: {value}"))
}

/// `Some(text)` as JSON: a string, or `null`.
fn opt(text: Option<&str>) -> Value {
    text.map_or(Value::Null, |t| Value::String(t.to_string()))
}

/// Asserts a snapshot stored in `tests/data/support/NAME.snap`.
fn snapshot(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => "../data/support",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

/// A minimal RFC 4180 reader: rows of fields, quotes undone.
#[track_caller]
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && row.is_empty(),
        "the CSV ends with a line break:\n{text}"
    );
    rows
}

// ---- The access matrix ----

/// What one user of the matrix fixture resolves to on 2026-11-24.
struct Row {
    user: &'static str,
    path: &'static str,
    can_open_sr: bool,
    acts_as: Option<&'static str>,
    notified: Option<&'static str>,
    visible_in_mos: bool,
    visible_in_console: bool,
    sees_all_csi_srs: bool,
    until: Option<&'static str>,
    /// Part of the reason, in docs/DOMAIN.md's words where it has them.
    reason: &'static str,
}

const DAN: &str = "Dan.Kim@acme.example";
const ERIN: &str = "Erin.Park@acme.example";

/// the access matrix of docs/DOMAIN.md §4, one row per user of the fixture, sorted by id.
#[rustfmt::skip]
const MATRIX: [Row; 16] = [
    Row { user: "alice", path: "approved-user", can_open_sr: true, acts_as: Some("alice"), notified: Some("alice@acme.example"), visible_in_mos: true, visible_in_console: true, sees_all_csi_srs: true, until: Some("2027-01-01"), reason: "approved with create access by `dan`" },
    Row { user: "blind", path: "approved-without-create", can_open_sr: false, acts_as: None, notified: None, visible_in_mos: false, visible_in_console: false, sees_all_csi_srs: false, until: None, reason: "no create access" },
    Row { user: "bob", path: "linked", can_open_sr: true, acts_as: Some("dan"), notified: Some(DAN), visible_in_mos: false, visible_in_console: true, sees_all_csi_srs: false, until: None, reason: "linked through the CSI administrator `dan`" },
    Row { user: "carol", path: "pending", can_open_sr: false, acts_as: None, notified: None, visible_in_mos: false, visible_in_console: false, sees_all_csi_srs: false, until: None, reason: "pending approval by a CSI administrator" },
    Row { user: "dan", path: "tenancy-admin", can_open_sr: true, acts_as: Some("dan"), notified: Some(DAN), visible_in_mos: true, visible_in_console: true, sees_all_csi_srs: true, until: None, reason: "the tenancy admin is the CSI administrator" },
    Row { user: "erin", path: "approved-admin", can_open_sr: true, acts_as: Some("erin"), notified: Some(ERIN), visible_in_mos: true, visible_in_console: true, sees_all_csi_srs: true, until: None, reason: "approved as a CSI administrator by `dan`" },
    // An administrator approval past its `expires`: as if only requested.
    Row { user: "ex", path: "pending", can_open_sr: false, acts_as: None, notified: None, visible_in_mos: false, visible_in_console: false, sees_all_csi_srs: false, until: None, reason: "pending approval by a CSI administrator" },
    Row { user: "gina", path: "linked", can_open_sr: true, acts_as: Some("erin"), notified: Some(ERIN), visible_in_mos: false, visible_in_console: true, sees_all_csi_srs: false, until: Some("2030-01-31"), reason: "linked through the CSI administrator `erin`" },
    Row { user: "hal", path: "none", can_open_sr: false, acts_as: None, notified: None, visible_in_mos: false, visible_in_console: false, sees_all_csi_srs: false, until: None, reason: "no support account and no support link" },
    // A link past its `expires`: as if never linked.
    Row { user: "lapsed", path: "none", can_open_sr: false, acts_as: None, notified: None, visible_in_mos: false, visible_in_console: false, sees_all_csi_srs: false, until: None, reason: "no support account and no support link" },
    // An approval that expires today: gone today.
    Row { user: "old", path: "pending", can_open_sr: false, acts_as: None, notified: None, visible_in_mos: false, visible_in_console: false, sees_all_csi_srs: false, until: None, reason: "pending approval by a CSI administrator" },
    // A link through someone whose administrator approval expired, and
    // which the apply removed: the link is through a non-administrator now.
    Row { user: "orphan", path: "link-via-non-admin", can_open_sr: false, acts_as: None, notified: None, visible_in_mos: false, visible_in_console: false, sees_all_csi_srs: false, until: None, reason: "`ex`, who is no longer a CSI administrator" },
    Row { user: "owen", path: "approved-user", can_open_sr: true, acts_as: Some("owen"), notified: Some("owen@acme.example"), visible_in_mos: true, visible_in_console: true, sees_all_csi_srs: false, until: None, reason: "approved with create access by `erin`" },
    // Linked, with a pending membership of its own (W201): still linked, and
    // nothing in MOS.
    Row { user: "pat", path: "linked", can_open_sr: true, acts_as: Some("dan"), notified: Some(DAN), visible_in_mos: false, visible_in_console: true, sees_all_csi_srs: false, until: None, reason: "linked through the CSI administrator `dan`" },
    Row { user: "solo", path: "not-associated", can_open_sr: false, acts_as: None, notified: None, visible_in_mos: false, visible_in_console: false, sees_all_csi_srs: false, until: None, reason: "not associated with the CSI" },
    Row { user: "viewer", path: "approved-without-create", can_open_sr: false, acts_as: None, notified: None, visible_in_mos: true, visible_in_console: false, sees_all_csi_srs: true, until: None, reason: "no create access" },
];

fn row(user: &str) -> &'static Row {
    MATRIX
        .iter()
        .find(|r| r.user == user)
        .unwrap_or_else(|| panic!("`{user}` is not in the matrix"))
}

/// Asserts that an `access` JSON object says what `row` says.
#[track_caller]
fn assert_access_json(doc: &Value, row: &Row) {
    let who = row.user;
    for key in [
        "user",
        "can_open_sr",
        "acts_as",
        "notified",
        "visible_in_mos",
        "visible_in_console",
        "reason",
    ] {
        assert!(doc.get(key).is_some(), "{who}: no `{key}` in {doc}");
    }
    assert_eq!(doc["user"], who);
    assert_eq!(doc["can_open_sr"], row.can_open_sr, "{who}: {doc}");
    assert_eq!(doc["acts_as"], opt(row.acts_as), "{who}: {doc}");
    assert_eq!(doc["notified"], opt(row.notified), "{who}: {doc}");
    assert_eq!(doc["visible_in_mos"], row.visible_in_mos, "{who}: {doc}");
    assert_eq!(
        doc["visible_in_console"], row.visible_in_console,
        "{who}: {doc}"
    );
    assert_eq!(
        doc["sees_all_csi_srs"], row.sees_all_csi_srs,
        "{who}: {doc}"
    );
    assert_eq!(doc["path"], row.path, "{who}: {doc}");
    assert_eq!(doc["until"], opt(row.until), "{who}: {doc}");
    let until_at = row.until.map(|d| format!("{d}T00:00:00Z"));
    assert_eq!(doc["until_at"], opt(until_at.as_deref()), "{who}: {doc}");
    // Only a linked user acts through someone: the administrator it owns
    // its SRs through.
    let via = if row.path == "linked" {
        row.acts_as
    } else {
        None
    };
    assert_eq!(doc["via"], opt(via), "{who}: {doc}");
    let reason = text_of(doc, "reason");
    assert!(reason.contains(row.reason), "{who}: reason `{reason}`");
}

#[test]
fn validate_warns_about_expired_grants_and_apply_leaves_them_out() {
    let world = Scratch::new();
    let config = matrix_config();
    let config = config.to_str().unwrap();
    let checked = world.ok(&["validate", config]);
    assert!(
        checked.stdout.starts_with("The configuration is valid"),
        "{}",
        checked.stdout
    );
    assert_eq!(
        checked.stderr.matches("warning[W202]").count(),
        3,
        "old's approval, ex's approval and lapsed's link have expired:\n{}",
        checked.stderr
    );
    let applied = apply_path(&world, &matrix_config());
    assert!(
        applied.stderr.contains("warning[W202]"),
        "{}",
        applied.stderr
    );
    assert!(
        applied
            .stdout
            .contains("Apply complete! Resources: 46 added"),
        "{}",
        applied.stdout
    );
    // The expired grants are treated as absent: not in the state at all.
    let shown = json(&world.ok(&["show", "--format", "json"]).stdout).to_string();
    for expired in ["2026-11-24", "2026-01-01", "2026-11-01"] {
        assert!(!shown.contains(expired), "{expired} is in the state");
    }
    for user in ["old", "ex", "lapsed", "orphan"] {
        assert_access_json(&world.access(user), row(user));
    }
}

#[test]
fn access_json_for_every_row_of_the_matrix() {
    let world = matrix_world();
    for row in &MATRIX {
        assert_access_json(&world.access(row.user), row);
    }
}

#[test]
fn access_text_for_every_row_of_the_matrix() {
    let world = matrix_world();
    for row in &MATRIX {
        let out = world.ok(&["access", row.user]);
        assert_eq!(out.stderr, "");
        let lines: Vec<&str> = out.stdout.lines().collect();
        let first = match (row.acts_as, row.notified) {
            (Some(owner), Some(mail)) => {
                format!(
                    "{} can open SRs, as `{owner}`; mail goes to {mail}",
                    row.user
                )
            }
            _ => format!("{} cannot open SRs", row.user),
        };
        assert_eq!(
            lines.first().copied(),
            Some(first.as_str()),
            "{}",
            out.stdout
        );
        let why = lines.get(1).copied().unwrap_or_default();
        assert!(
            why.starts_with("  why: ") && why.contains(row.reason),
            "{}: {why}",
            row.user
        );
        let yes = |b: bool| if b { "yes" } else { "no" };
        let reads = format!(
            "  reads SRs in: MOS {}, Console {}{}",
            yes(row.visible_in_mos),
            yes(row.visible_in_console),
            if row.sees_all_csi_srs {
                " (every SR of the CSI in MOS)"
            } else {
                ""
            }
        );
        assert_eq!(lines.get(2).copied(), Some(reads.as_str()), "{}", row.user);
        // The moment access ends, with its hour and zone, and which expiry
        // it is (in the fixture, erin's approval has none).
        let until = row.until.map(|d| match row.path {
            "linked" => format!(
                "  until: {d} 00:00 UTC, when the support link through `{}` expires",
                row.acts_as.unwrap_or_default()
            ),
            _ => format!("  until: {d} 00:00 UTC, when the approval expires"),
        });
        assert_eq!(lines.get(3).copied(), until.as_deref(), "{}", row.user);
        assert_eq!(lines.len(), 3 + usize::from(row.until.is_some()));
    }
}

#[test]
fn access_all_as_a_table() {
    let world = matrix_world();
    let out = world.ok(&["access", "--all"]);
    assert_eq!(out.stderr, "");
    let mut lines = out.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "USER", "OPEN", "SR", "AS", "MAIL", "TO", "MOS", "CONSOLE", "UNTIL", "WHY"
        ]
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(
        rows.len(),
        MATRIX.len(),
        "one line per user:\n{}",
        out.stdout
    );
    let yes = |b: bool| if b { "yes" } else { "no" };
    for (line, row) in rows.iter().zip(&MATRIX) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        let mos = if row.visible_in_mos && row.sees_all_csi_srs {
            "all"
        } else {
            yes(row.visible_in_mos)
        };
        let mut expected = vec![
            row.user,
            yes(row.can_open_sr),
            row.acts_as.unwrap_or("-"),
            row.notified.unwrap_or("-"),
            mos,
            yes(row.visible_in_console),
        ];
        // The moment access ends, with its hour and zone.
        match row.until {
            Some(day) => expected.extend([day, "00:00", "UTC"]),
            None => expected.push("-"),
        }
        let n = expected.len();
        assert_eq!(cells[..n], expected, "{line}");
        assert!(cells[n..].join(" ").contains(row.reason), "{line}");
    }
    snapshot("access-all.text", &out.stdout);
}

#[test]
fn access_all_as_json_is_every_user_in_order() {
    let world = matrix_world();
    let all = access_all(&world);
    let users: Vec<&str> = all.iter().map(|a| text_of(a, "user")).collect();
    let expected: Vec<&str> = MATRIX.iter().map(|r| r.user).collect();
    assert_eq!(users, expected, "every user, sorted by id");
    for (doc, row) in all.iter().zip(&MATRIX) {
        assert_access_json(doc, row);
        assert_eq!(doc, &world.access(row.user), "--all agrees with one user");
    }
}

#[test]
fn access_all_as_csv() {
    let world = matrix_world();
    let out = world.ok(&["access", "--all", "--format", "csv"]);
    assert_eq!(out.stderr, "");
    let rows = csv_rows(&out.stdout);
    let header = &rows[0];
    for column in [
        "user",
        "can_open_sr",
        "acts_as",
        "notified",
        "visible_in_mos",
        "visible_in_console",
        "reason",
    ] {
        assert!(header.iter().any(|h| h == column), "no `{column}` column");
    }
    assert_eq!(
        rows.len(),
        1 + MATRIX.len(),
        "a header, then one row per user"
    );
    for (cells, row) in rows[1..].iter().zip(&MATRIX) {
        assert_eq!(cells.len(), header.len(), "{cells:?}");
        let cell = |name: &str| {
            let i = header.iter().position(|h| h == name).unwrap();
            cells[i].as_str()
        };
        assert_eq!(cell("user"), row.user);
        assert_eq!(cell("can_open_sr"), row.can_open_sr.to_string());
        assert_eq!(cell("acts_as"), row.acts_as.unwrap_or_default());
        assert_eq!(cell("notified"), row.notified.unwrap_or_default());
        assert_eq!(cell("visible_in_mos"), row.visible_in_mos.to_string());
        assert_eq!(
            cell("visible_in_console"),
            row.visible_in_console.to_string()
        );
        assert!(cell("reason").contains(row.reason), "{cells:?}");
        assert_eq!(cell("path"), row.path);
        assert_eq!(cell("until"), row.until.unwrap_or_default());
        let until_at = row.until.map(|d| format!("{d}T00:00:00Z"));
        assert_eq!(cell("until_at"), until_at.unwrap_or_default());
    }
    snapshot("access-all.csv", &out.stdout);
}

/// A tenancy whose grants lapse one by one: every way a grant can be
/// absent, as the state holds it on a later day before any apply, and after
/// the apply that removes what expired.
const LAPSES: &str = "\
tenancy: { name: acme, csi: \"20817431\", admin: dan }
users:
  dan: { email: dan@acme.example, support_account: { phone: \"+82 2 555 0100\", timezone: Asia/Seoul } }
  erin: { email: erin@acme.example, support_account: { phone: \"+82 2 555 0101\", timezone: Asia/Seoul } }
  amy: { email: amy@acme.example, support_account: { phone: \"+82 2 555 0102\", timezone: Asia/Seoul } }
  pam: { email: pam@acme.example, support_account: { phone: \"+82 2 555 0103\", timezone: Asia/Seoul } }
  sol: { email: sol@acme.example, support_account: { phone: \"+82 2 555 0104\", timezone: Asia/Seoul } }
  bob: { email: bob@acme.example }
  gil: { email: gil@acme.example }
  nob: { email: nob@acme.example }
memberships: [{ user: erin }, { user: amy }, { user: pam }]
approvals:
  - { user: erin, role: admin, expires: 2027-01-01 }
  - { user: amy, role: user, access: [create_sr], expires: 2026-12-01 }
support_links:
  - { user: bob, via: dan, expires: 2026-12-15 }
  - { user: gil, via: erin, expires: 2027-06-30 }
";

#[test]
fn access_says_when_each_grant_ends_and_explains_each_absent_one() {
    let world = Scratch::new();
    apply(&world, "acme.yaml", LAPSES);
    // `until` is the earliest expiry on the path: gil's link ends with
    // erin's approval as an administrator, before its own day.
    for (user, until, cause) in [
        ("amy", "2026-12-01", "the approval expires"),
        (
            "bob",
            "2026-12-15",
            "the support link through `dan` expires",
        ),
        (
            "gil",
            "2027-01-01",
            "`erin`'s approval as a CSI administrator expires",
        ),
        ("erin", "2027-01-01", "the approval expires"),
    ] {
        let doc = world.access(user);
        assert_eq!(doc["can_open_sr"], true, "{doc}");
        assert_eq!(doc["until"], until, "{doc}");
        assert_eq!(doc["until_at"], format!("{until}T00:00:00Z"), "{doc}");
        let text = world.ok(&["access", user]).stdout;
        let line = format!("  until: {until} 00:00 UTC, when {cause}\n");
        assert!(text.ends_with(&line), "{user}:\n{text}");
    }

    // Every way to be without a grant, once the days have passed and
    // before any apply: an expired grant says it expired, and when.
    world.set_today("2027-02-01");
    let absent = [
        (
            "amy",
            "approval-expired",
            "approval expired on 2026-12-01 00:00 UTC (approved by `dan`)",
        ),
        (
            "erin",
            "approval-expired",
            "approval as a CSI administrator expired on 2027-01-01 00:00 UTC",
        ),
        (
            "bob",
            "link-expired",
            "the support link through `dan` expired on 2026-12-15 00:00 UTC",
        ),
        (
            "gil",
            "link-expired",
            "linked through `erin`, whose approval as a CSI administrator expired on 2027-01-01 00:00 UTC",
        ),
        ("pam", "pending", "pending approval by a CSI administrator"),
        (
            "sol",
            "not-associated",
            "not associated with the CSI: no membership request",
        ),
        ("nob", "none", "no support account and no support link"),
    ];
    for (user, path, reason) in absent {
        let doc = world.access(user);
        assert_eq!(
            (doc["path"].as_str(), doc["can_open_sr"].as_bool()),
            (Some(path), Some(false)),
            "{doc}"
        );
        assert!(text_of(&doc, "reason").starts_with(reason), "{user}: {doc}");
        assert_eq!(
            (&doc["until"], &doc["until_at"]),
            (&Value::Null, &Value::Null)
        );
        expect_refused(
            &world,
            &["sr", "open", "--user", user, "--title", "t"],
            reason,
        );
    }
    let csv = world.ok(&["access", "--all", "--format", "csv"]).stdout;
    for (user, path, _) in absent {
        assert!(
            csv.lines()
                .any(|l| l.starts_with(&format!("{user},")) && l.contains(&format!(",{path},"))),
            "{csv}"
        );
    }

    // The apply on that day removes the expired grants: what is left is
    // a membership without approval, no link at all, or a link through
    // someone who is no longer an administrator.
    apply(&world, "acme.yaml", LAPSES);
    for (user, path, reason) in [
        ("amy", "pending", "pending approval by a CSI administrator"),
        ("erin", "pending", "pending approval by a CSI administrator"),
        ("bob", "none", "no support account and no support link"),
        (
            "gil",
            "link-via-non-admin",
            "linked through `erin`, who is no longer a CSI administrator",
        ),
    ] {
        let doc = world.access(user);
        assert_eq!(doc["path"], path, "{doc}");
        assert!(text_of(&doc, "reason").starts_with(reason), "{user}: {doc}");
    }
}

#[test]
fn access_of_an_unknown_user_is_an_error() {
    let world = matrix_world();
    for format in ["text", "json", "csv"] {
        let out = world.run(&["access", "zed", "--format", format]);
        out.assert_code(1);
        assert_eq!(out.stdout, "");
        assert!(
            out.stderr.starts_with("error: ") && out.stderr.contains("`zed` is not a user"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn access_needs_a_user_or_all_but_not_both() {
    let world = matrix_world();
    for args in [
        &["access"][..],
        &["access", "--format", "json"],
        &["access", "dan", "--all"],
    ] {
        let out = expect_usage_error(&world, args);
        assert!(out.stderr.contains("Usage:"), "{}", out.stderr);
    }
}

// ---- sr open ----

/// The users of the matrix who may open SRs: owner, contact, channel.
const OPENERS: [(&str, &str, &str, &str); 6] = [
    ("dan", "dan", DAN, "mos"),
    ("erin", "erin", ERIN, "mos"),
    ("alice", "alice", "alice@acme.example", "mos"),
    ("owen", "owen", "owen@acme.example", "mos"),
    ("bob", "dan", DAN, "console"),
    ("gina", "erin", ERIN, "console"),
];

#[test]
fn sr_open_by_every_user_who_may() {
    let world = matrix_world();
    let mut last = 0;
    // pat is linked too, with a pending membership of its own.
    let pat = ("pat", "dan", DAN, "console");
    for (user, owner, contact, channel) in OPENERS.into_iter().chain([pat]) {
        // `--format id`: the new id, alone on its line, for scripts.
        let title = format!("id by {user}");
        let args = ["sr", "open", "--user", user, "--title", &title];
        let out = world.ok(&[&args[..], &["--format", "id"]].concat());
        assert_eq!(out.stderr, "");
        let id: i64 = out
            .stdout
            .strip_suffix('\n')
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an id: {:?}", out.stdout));
        assert!(id > last, "ids grow: {id} after {last}");
        last = id;
        let listed = sr_show(&world, id);
        assert_eq!(listed["title"], title.as_str());
        assert_eq!(listed["opened_by"], user);
        assert_eq!(listed["owner"], owner, "{user} opens as {owner}");
        assert_eq!(listed["contact_email"], contact);
        // Text: the id, and who owns the SR and is mailed.
        let title = format!("text by {user}");
        let out = world.ok(&["sr", "open", "--user", user, "--title", &title]);
        assert_eq!(out.stderr, "");
        let id = last + 1;
        let place = if channel == "console" {
            "the Console"
        } else {
            "MOS"
        };
        assert_eq!(
            out.stdout,
            format!(
                "SR {id} opened by {user} in {place}: owned by {owner}, mail goes to {contact}\n"
            )
        );
        last = id;
        let listed = sr_show(&world, id);
        assert_eq!(
            (&listed["title"], &listed["owner"], &listed["contact_email"]),
            (&title.as_str().into(), &owner.into(), &contact.into())
        );
        // JSON: the SR itself.
        let title = format!("json by {user}");
        let sr = sr_open(&world, user, &title);
        let id = id_of(&sr);
        assert!(id > last, "ids grow: {id} after {last}");
        last = id;
        assert_eq!(sr["opened_by"], user);
        assert_eq!(sr["owner"], owner, "{user} opens as {owner}");
        assert_eq!(sr["contact_email"], contact, "{user}'s SR mails {contact}");
        assert_eq!(sr["channel"], channel, "{user} opens in {channel}");
        assert_eq!(sr["title"], title.as_str());
        assert_eq!(sr["tenancy"], "acme");
        assert_eq!(sr["status"], "open");
        assert_eq!(sr["type"], "tech", "the default type");
        assert_eq!(sr["severity"], "medium", "the default severity");
        assert_eq!(sr["comments"], serde_json::json!([]));
        assert_eq!(
            sr_show(&world, id),
            sr,
            "what was printed is what was stored"
        );
    }
    let all = srs(&world);
    assert_eq!(all.len(), 3 * (OPENERS.len() + 1));
    for sr in &all {
        // The rule: a linked user is never the owner.
        if ["bob", "gina", "pat"].contains(&text_of(sr, "opened_by")) {
            assert_ne!(sr["owner"], sr["opened_by"], "{sr}");
        }
    }
}

#[test]
fn sr_open_refusals_write_nothing() {
    let world = matrix_world();
    sr_open(&world, "dan", "already there");
    for row in MATRIX.iter().filter(|r| !r.can_open_sr) {
        for format in ["text", "json", "id"] {
            let args = [
                "sr", "open", "--user", row.user, "--title", "no", "--format", format,
            ];
            let out = expect_refused(&world, &args, row.reason);
            let cannot = format!("`{}` cannot open an SR", row.user);
            assert!(out.stderr.contains(&cannot), "{}", out.stderr);
        }
    }
    for format in ["text", "json", "id"] {
        let args = [
            "sr", "open", "--user", "zed", "--title", "no", "--format", format,
        ];
        expect_refused(&world, &args, "`zed` is not a user of the tenancy");
    }
    assert_eq!(srs(&world).len(), 1);
}

#[test]
fn sr_open_stores_severity_and_type() {
    let world = matrix_world();
    let mut expected = Vec::new();
    for severity in ["highest", "high", "medium", "low"] {
        for kind in ["tech", "limit", "account"] {
            let title = format!("{severity} {kind}");
            let args = [
                "sr",
                "open",
                "--user",
                "bob",
                "--title",
                &title,
                "--severity",
                severity,
                "--type",
                kind,
                "--format",
                "json",
            ];
            let sr = json(&world.ok(&args).stdout);
            assert_eq!(
                (&sr["severity"], &sr["type"]),
                (&severity.into(), &kind.into())
            );
            expected.push((title, severity.to_string(), kind.to_string()));
        }
    }
    let stored: Vec<(String, String, String)> = srs(&world)
        .iter()
        .map(|sr| {
            let field = |name: &str| text_of(sr, name).to_string();
            (field("title"), field("severity"), field("type"))
        })
        .collect();
    assert_eq!(stored, expected);
    let open = ["sr", "open", "--user", "dan", "--title", "t"];
    for bad in [
        &["--severity", "urgent"][..],
        &["--severity", "1"],
        &["--severity", ""],
        &["--type", "bug"],
        &["--type", "billing"],
    ] {
        expect_usage_error(&world, &[&open[..], bad].concat());
    }
    expect_usage_error(&world, &["sr", "open", "--user", "dan"]);
    expect_usage_error(&world, &["sr", "open", "--title", "t"]);
}

// ---- sr list, sr show ----

/// The matrix with one SR opened by each user who may (ids 1 to 6, in
/// [`OPENERS`] order) and a second one by bob (id 7).
fn world_with_srs() -> Scratch {
    let world = matrix_world();
    for (i, (user, ..)) in OPENERS.iter().enumerate() {
        let sr = sr_open(&world, user, &format!("by {user}"));
        assert_eq!(id_of(&sr), i as i64 + 1);
    }
    sr_open(&world, "bob", "bob again");
    world
}

#[test]
fn sr_list_shows_what_each_user_can_see() {
    let world = world_with_srs();
    let every: Vec<i64> = (1..=7).collect();
    assert_eq!(srs(&world).iter().map(id_of).collect::<Vec<_>>(), every);
    let cases: [(&str, &[i64]); 16] = [
        // A CSI administrator, and view_sr: every SR of the CSI.
        ("dan", &every),
        ("erin", &every),
        ("alice", &every),
        ("viewer", &every),
        // create_sr without view_sr: the SRs it owns.
        ("owen", &[4]),
        // Linked: only the SRs it opened, in the Console.
        ("bob", &[5, 7]),
        ("gina", &[6]),
        ("pat", &[]),
        // No way in: nothing.
        ("blind", &[]),
        ("carol", &[]),
        ("solo", &[]),
        ("hal", &[]),
        ("old", &[]),
        ("lapsed", &[]),
        ("ex", &[]),
        ("orphan", &[]),
    ];
    for (user, expected) in cases {
        assert_eq!(visible(&world, user), expected, "what {user} sees");
        let text = world.ok(&["sr", "list", "--user", user]).stdout;
        if expected.is_empty() {
            assert_eq!(text, "No SRs.\n", "{user}");
        } else {
            let ids: Vec<i64> = text
                .lines()
                .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
                .collect();
            assert_eq!(ids, expected, "{user}:\n{text}");
        }
    }
    let text = world.ok(&["sr", "list"]).stdout;
    assert_eq!(text.lines().count(), 7, "{text}");
    assert!(text.contains("opened by bob as dan"), "{text}");
    assert!(text.contains("opened by gina as erin"), "{text}");
    snapshot("sr-list.text", &text);
    expect_refused(
        &world,
        &["sr", "list", "--user", "zed"],
        "`zed` is not a user",
    );
    expect_refused(
        &world,
        &["sr", "list", "--user", "zed", "--format", "json"],
        "`zed` is not a user",
    );
}

#[test]
fn sr_list_is_empty_before_any_sr() {
    let world = matrix_world();
    assert_eq!(world.ok(&["sr", "list"]).stdout, "No SRs.\n");
    assert_eq!(srs(&world), Vec::<Value>::new());
    assert_eq!(visible(&world, "dan"), Vec::<i64>::new());
}

#[test]
fn sr_show_in_text_and_json_with_comments() {
    let world = matrix_world();
    let args = [
        "sr",
        "open",
        "--user",
        "bob",
        "--title",
        "disk full",
        "--severity",
        "high",
        "--type",
        "limit",
        "--format",
        "id",
    ];
    let id = world.ok(&args).stdout.trim().to_string();
    world.ok(&[
        "sr",
        "comment",
        &id,
        "--user",
        "bob",
        "--text",
        "still full",
    ]);
    world.ok(&["sr", "comment", &id, "--user", "dan", "--text", "on it"]);
    let sr = sr_show(&world, id.parse().unwrap());
    assert_eq!(sr["title"], "disk full");
    assert_eq!(
        (&sr["severity"], &sr["type"]),
        (&"high".into(), &"limit".into())
    );
    assert_eq!(
        (&sr["opened_by"], &sr["owner"]),
        (&"bob".into(), &"dan".into())
    );
    assert_eq!(sr["contact_email"], DAN);
    assert_eq!(sr["channel"], "console");
    assert_eq!(sr["status"], "open");
    let opened_at = text_of(&sr, "opened_at").to_string();
    let comments: Vec<(&str, &str, &str)> = sr["comments"]
        .as_array()
        .expect("comments is a list")
        .iter()
        .map(|c| {
            (
                text_of(c, "author"),
                text_of(c, "channel"),
                text_of(c, "text"),
            )
        })
        .collect();
    assert_eq!(
        comments,
        [("bob", "console", "still full"), ("dan", "mos", "on it")]
    );
    let at: Vec<&str> = sr["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| text_of(c, "at"))
        .collect();
    let text = world.ok(&["sr", "show", &id]).stdout;
    let expected = format!(
        "SR {id}  disk full\n  type limit  severity high  status open\n  opened by bob in the Console at {opened_at}\n  owner dan  contact {DAN}\n  - bob (the Console, {}): still full\n  - dan (MOS, {}): on it\n",
        at[0], at[1]
    );
    assert_eq!(text, expected);
    // `sr list` carries the comments too.
    assert_eq!(srs(&world), [sr]);
}

#[test]
fn sr_show_as_a_user_is_refused_when_the_user_cannot_see_it() {
    let world = world_with_srs();
    // (user, SR) pairs: allowed, then refused.
    let allowed = [
        ("dan", 6),
        ("erin", 5),
        ("alice", 7),
        ("viewer", 1),
        ("owen", 4),
        ("bob", 5),
        ("bob", 7),
        ("gina", 6),
    ];
    for (user, id) in allowed {
        let id = id.to_string();
        let out = world.ok(&["sr", "show", &id, "--user", user, "--format", "json"]);
        assert_eq!(json(&out.stdout), sr_show(&world, id.parse().unwrap()));
        world.ok(&["sr", "show", &id, "--user", user]);
    }
    let refused = [
        ("owen", 1),
        ("owen", 5),
        ("bob", 6),
        ("bob", 1),
        ("gina", 5),
        ("blind", 1),
        ("carol", 4),
        ("solo", 1),
        ("hal", 1),
        ("old", 3),
        ("lapsed", 5),
        ("orphan", 1),
    ];
    for (user, id) in refused {
        let id = id.to_string();
        for format in ["text", "json"] {
            let args = ["sr", "show", &id, "--user", user, "--format", format];
            expect_refused(&world, &args, &format!("`{user}` cannot see SR {id}"));
        }
    }
    for args in [
        &["sr", "show", "99"][..],
        &["sr", "show", "99", "--format", "json"],
        &["sr", "show", "99", "--user", "dan"],
    ] {
        expect_refused(&world, args, "no SR");
    }
    // SRs are numbered from 1: 0 is not an SR number at all.
    expect_usage_error(&world, &["sr", "show", "0"]);
    // Someone who is not a user of the tenancy sees nothing either.
    expect_refused(&world, &["sr", "show", "1", "--user", "zed"], "`zed`");
    expect_usage_error(&world, &["sr", "show", "one"]);
}

// ---- sr comment ----

#[test]
fn sr_comment_in_the_console_and_in_mos() {
    let world = world_with_srs();
    // (user, SR, channel, what the command says)
    let allowed = [
        ("bob", 5, "console", "the Console"),
        ("gina", 6, "console", "the Console"),
        ("dan", 5, "mos", "MOS"),
        ("erin", 1, "mos", "MOS"),
        ("alice", 6, "mos", "MOS"),
        ("owen", 4, "mos", "MOS"),
    ];
    let mut expected: BTreeMap<i64, Vec<(String, String, String)>> = BTreeMap::new();
    for (user, id, channel, said) in allowed {
        let text = format!("{user} on {id}");
        let out = world.ok(&[
            "sr",
            "comment",
            &id.to_string(),
            "--user",
            user,
            "--text",
            &text,
        ]);
        assert_eq!(out.stdout, format!("Commented on SR {id} in {said}.\n"));
        expected
            .entry(id)
            .or_default()
            .push((user.to_string(), channel.to_string(), text));
    }
    for sr in srs(&world) {
        let comments: Vec<(String, String, String)> = sr["comments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    text_of(c, "author").to_string(),
                    text_of(c, "channel").to_string(),
                    text_of(c, "text").to_string(),
                )
            })
            .collect();
        assert_eq!(
            comments,
            expected.remove(&id_of(&sr)).unwrap_or_default(),
            "the comments of SR {}",
            id_of(&sr)
        );
    }
}

#[test]
fn sr_comment_refusals_write_nothing() {
    let world = world_with_srs();
    let cases = [
        // Cannot see it: a linked user on an SR it did not open, an approved
        // user without view_sr on an SR it does not own.
        ("gina", 5, "`gina` cannot see this SR"),
        ("bob", 6, "`bob` cannot see this SR"),
        ("bob", 1, "`bob` cannot see this SR"),
        ("owen", 5, "`owen` cannot see this SR"),
        // Can only read it: view_sr without create_sr.
        (
            "viewer",
            1,
            "`viewer` can read this SR in MOS but not update it",
        ),
        ("viewer", 5, "no create access"),
        // No way in.
        ("blind", 1, "cannot see this SR"),
        ("carol", 1, "pending approval by a CSI administrator"),
        ("solo", 1, "not associated with the CSI"),
        ("hal", 5, "no support account and no support link"),
        ("lapsed", 5, "no support account and no support link"),
        ("orphan", 1, "no longer a CSI administrator"),
        ("old", 3, "pending approval"),
        ("zed", 1, "`zed` is not a user"),
    ];
    for (user, id, why) in cases {
        let args = [
            "sr",
            "comment",
            &id.to_string(),
            "--user",
            user,
            "--text",
            "no",
        ];
        expect_refused(&world, &args, why);
    }
    expect_refused(
        &world,
        &["sr", "comment", "99", "--user", "dan", "--text", "no"],
        "no SR 99",
    );
    expect_usage_error(&world, &["sr", "comment", "1", "--user", "dan"]);
    expect_usage_error(&world, &["sr", "comment", "1", "--text", "no"]);
    assert!(
        srs(&world)
            .iter()
            .all(|sr| sr["comments"] == serde_json::json!([]))
    );
}

// ---- Nothing is lost ----

/// A small tenancy: dan the tenancy admin, erin a second administrator,
/// alice approved with create and view access, bob linked through dan and
/// gina through erin. `bob_linked`: bob keeps his link; `removed`: bob,
/// erin (and so gina's link) and alice's approval are gone.
fn small_config(bob_linked: bool, removed: bool) -> String {
    let account = |n: u32| {
        format!("support_account: {{ phone: \"+82 2 555 01{n:02}\", timezone: Asia/Seoul }}")
    };
    let mut out = String::from("tenancy: { name: acme, csi: \"20817431\", admin: dan }\nusers:\n");
    let _ = writeln!(out, "  dan: {{ email: {DAN}, {} }}", account(0));
    let _ = writeln!(
        out,
        "  alice: {{ email: alice@acme.example, {} }}",
        account(2)
    );
    let _ = writeln!(out, "  gina: {{ email: gina@acme.example }}");
    if !removed {
        let _ = writeln!(out, "  erin: {{ email: {ERIN}, {} }}", account(1));
        let _ = writeln!(out, "  bob: {{ email: bob@acme.example }}");
    }
    out.push_str("memberships:\n  - user: alice\n");
    if !removed {
        out.push_str("  - user: erin\napprovals:\n  - { user: erin, role: admin }\n");
        out.push_str("  - { user: alice, role: user, access: [create_sr, view_sr] }\n");
        out.push_str("support_links:\n  - { user: gina, via: erin }\n");
        if bob_linked {
            out.push_str("  - { user: bob }\n");
        }
    }
    out
}

#[test]
fn removing_a_link_a_user_and_an_approval_loses_no_sr() {
    let world = Scratch::new();
    apply(&world, "acme.yaml", &small_config(true, false));
    let mut opened = BTreeMap::new();
    for (user, owner) in [
        ("dan", "dan"),
        ("erin", "erin"),
        ("alice", "alice"),
        ("bob", "dan"),
        ("gina", "erin"),
    ] {
        let sr = sr_open(&world, user, &format!("by {user}"));
        assert_eq!(sr["owner"], owner);
        opened.insert(user, id_of(&sr));
    }
    let bobs = opened["bob"].to_string();
    let ginas = opened["gina"].to_string();
    world.ok(&[
        "sr", "comment", &bobs, "--user", "bob", "--text", "from bob",
    ]);
    world.ok(&[
        "sr", "comment", &bobs, "--user", "dan", "--text", "from dan",
    ]);
    world.ok(&[
        "sr",
        "comment",
        &ginas,
        "--user",
        "gina",
        "--text",
        "from gina",
    ]);
    let before = srs(&world);
    assert_eq!(before.len(), 5);
    assert_eq!(visible(&world, "bob"), [opened["bob"]]);

    // Unlinking bob takes his right away at once; his SR stays, dan's.
    apply(&world, "acme.yaml", &small_config(false, false));
    assert_eq!(srs(&world), before, "unlinking bob changed the SRs");
    let bob = world.access("bob");
    assert_eq!(bob["can_open_sr"], false);
    assert_eq!(bob["visible_in_console"], false);
    assert_eq!(bob["acts_as"], Value::Null);
    expect_refused(
        &world,
        &["sr", "open", "--user", "bob", "--title", "again"],
        "no support account and no support link",
    );
    assert_eq!(
        visible(&world, "bob"),
        Vec::<i64>::new(),
        "bob sees nothing now"
    );
    expect_refused(
        &world,
        &["sr", "show", &bobs, "--user", "bob"],
        "`bob` cannot see SR",
    );
    expect_refused(
        &world,
        &["sr", "comment", &bobs, "--user", "bob", "--text", "hello?"],
        "cannot see this SR",
    );

    // Then bob goes, erin (and gina's link through her) goes, and alice's
    // approval goes: every SR stays, with the owner it was opened under.
    apply(&world, "acme.yaml", &small_config(false, true));
    assert_eq!(
        srs(&world),
        before,
        "removing users and grants changed the SRs"
    );
    for sr in &before {
        assert_eq!(&sr_show(&world, id_of(sr)), sr);
    }
    assert_eq!(
        visible(&world, "dan").len(),
        5,
        "the administrator sees them all"
    );
    expect_refused(
        &world,
        &["sr", "list", "--user", "bob"],
        "`bob` is not a user",
    );
    expect_refused(
        &world,
        &["sr", "open", "--user", "bob", "--title", "t"],
        "`bob` is not a user",
    );
    expect_refused(
        &world,
        &["sr", "open", "--user", "erin", "--title", "t"],
        "`erin` is not a user",
    );
    assert_eq!(
        world.access("alice")["reason"],
        "pending approval by a CSI administrator"
    );
    assert_eq!(visible(&world, "alice"), Vec::<i64>::new());
    expect_refused(
        &world,
        &["sr", "open", "--user", "alice", "--title", "t"],
        "pending approval",
    );
    assert_eq!(visible(&world, "gina"), Vec::<i64>::new());
    expect_refused(
        &world,
        &["sr", "open", "--user", "gina", "--title", "t"],
        "no support account and no support link",
    );
    expect_refused(
        &world,
        &[
            "sr", "comment", &ginas, "--user", "gina", "--text", "hello?",
        ],
        "cannot see this SR",
    );
    // The administrator still works on them, in MOS.
    world.ok(&[
        "sr", "comment", &ginas, "--user", "dan", "--text", "closing",
    ]);
    let after = srs(&world);
    assert_eq!(after.len(), 5);
    assert_eq!(
        after
            .iter()
            .map(|sr| (&sr["owner"], &sr["opened_by"]))
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|sr| (&sr["owner"], &sr["opened_by"]))
            .collect::<Vec<_>>()
    );
}

/// One database, two tenancies: an SR is its tenancy's alone.
#[test]
fn an_sr_belongs_to_its_tenancy() {
    let world = Scratch::new();
    apply(&world, "acme.yaml", &small_config(true, false));
    let beta = small_config(true, false).replace("name: acme", "name: beta");
    apply(&world, "beta.yaml", &beta);
    let refused = |args: &[&str], why: &str| {
        let out = world.run(args);
        out.assert_code(1);
        assert_eq!(out.stdout, "");
        assert!(out.stderr.contains(why), "{}", out.stderr);
    };
    refused(
        &["sr", "open", "--user", "bob", "--title", "t"],
        "several tenancies",
    );
    let args = [
        "sr",
        "open",
        "--user",
        "bob",
        "--title",
        "t",
        "--tenancy",
        "acme",
    ];
    let sr = json(
        &world
            .ok(&[&args[..], &["--format", "json"]].concat())
            .stdout,
    );
    assert_eq!(
        (&sr["tenancy"], &sr["owner"]),
        (&"acme".into(), &"dan".into())
    );
    let id = id_of(&sr).to_string();
    let listed = |tenancy: &str| {
        let out = world.ok(&["sr", "list", "--tenancy", tenancy, "--format", "json"]);
        list(json(&out.stdout))
    };
    assert_eq!(listed("beta"), Vec::<Value>::new());
    refused(&["sr", "show", &id, "--tenancy", "beta"], "no SR");
    refused(
        &[
            "sr",
            "comment",
            &id,
            "--tenancy",
            "beta",
            "--user",
            "dan",
            "--text",
            "x",
        ],
        "no SR",
    );
    assert_eq!(listed("acme"), [sr]);
}

/// Before and after a rename (`previously:`) of bob, linked through dan, to
/// `robert`, and of owen, approved with create_sr only, to `owen2`.
fn rename_config(renamed: bool) -> String {
    let (bob, owen) = if renamed {
        ("robert: { previously: bob,", "owen2: { previously: owen,")
    } else {
        ("bob: {", "owen: {")
    };
    let (bob_id, owen_id) = if renamed {
        ("robert", "owen2")
    } else {
        ("bob", "owen")
    };
    format!(
        "tenancy: {{ name: acme, csi: \"20817431\", admin: dan }}
users:
  dan: {{ email: {DAN}, support_account: {{ phone: \"+82 2 555 0100\", timezone: Asia/Seoul }} }}
  erin: {{ email: {ERIN}, support_account: {{ phone: \"+82 2 555 0101\", timezone: Asia/Seoul }} }}
  {owen} email: owen@acme.example, support_account: {{ phone: \"+82 2 555 0103\", timezone: Asia/Seoul }} }}
  {bob} email: bob@acme.example }}
memberships: [ {{ user: erin }}, {{ user: {owen_id} }} ]
approvals:
  - {{ user: erin, role: admin }}
  - {{ user: {owen_id}, role: user, access: [create_sr] }}
support_links:
  - {{ user: {bob_id} }}
"
    )
}

/// A rename moves "a user and everything attached to it" (docs/guide/state.md, *Plans*; the plan
/// says "with everything attached"): the SRs a user opened in the Console,
/// or owns, are still the renamed user's to see and comment on.
#[test]
fn a_rename_keeps_the_users_srs_visible_to_it() {
    let world = Scratch::new();
    apply(&world, "acme.yaml", &rename_config(false));
    let bobs = id_of(&sr_open(&world, "bob", "by bob"));
    let owens = id_of(&sr_open(&world, "owen", "by owen"));
    sr_open(&world, "erin", "by erin");
    assert_eq!(visible(&world, "bob"), [bobs]);
    assert_eq!(visible(&world, "owen"), [owens]);
    let before = srs(&world);
    let applied = apply(&world, "acme.yaml", &rename_config(true));
    assert!(applied.stdout.contains("0 destroyed"), "{}", applied.stdout);
    let after = srs(&world);
    assert_eq!(after.len(), before.len(), "a rename lost an SR");
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(
            (&a["id"], &a["title"], &a["contact_email"]),
            (&b["id"], &b["title"], &b["contact_email"])
        );
    }
    assert_eq!(
        visible(&world, "robert"),
        [bobs],
        "robert (was bob) no longer sees the SR he opened in the Console"
    );
    assert_eq!(
        visible(&world, "owen2"),
        [owens],
        "owen2 (was owen) no longer sees the SR he owns"
    );
    let out = world.ok(&[
        "sr",
        "comment",
        &bobs.to_string(),
        "--user",
        "robert",
        "--text",
        "still me",
    ]);
    assert_eq!(
        out.stdout,
        format!("Commented on SR {bobs} in the Console.\n")
    );
}

// ---- SRs belong to people and to a CSI, not to ids ----

/// A tenancy of dan (the tenancy admin), erin (a second administrator),
/// and the users in `rest`, each a line of YAML under `users:` with the
/// grants that go with it in `grants`.
fn people_config(csi: &str, users: &[&str], grants: &str) -> String {
    let mut out = format!(
        "tenancy: {{ name: acme, csi: \"{csi}\", admin: dan }}\nusers:\n  dan: {{ email: {DAN}, support_account: {{ phone: \"+82 2 555 0100\", timezone: Asia/Seoul }} }}\n  erin: {{ email: {ERIN}, support_account: {{ phone: \"+82 2 555 0101\", timezone: Asia/Seoul }} }}\n"
    );
    for user in users {
        let _ = writeln!(out, "  {user}");
    }
    out.push_str("memberships:\n  - user: erin\n");
    out.push_str(grants);
    out
}

/// owen: a support account, approved with create_sr only (he sees the SRs
/// he owns); `email` tells one owen from another.
fn owen(id: &str, email: &str, previously: Option<&str>) -> String {
    let previously = previously
        .map(|p| format!("previously: {p}, "))
        .unwrap_or_default();
    format!(
        "{id}: {{ {previously}email: {email}, support_account: {{ phone: \"+82 2 555 0103\", timezone: Asia/Seoul }} }}"
    )
}

fn owen_grants(id: &str) -> String {
    format!(
        "  - user: {id}\napprovals:\n  - {{ user: erin, role: admin }}\n  - {{ user: {id}, role: user, access: [create_sr] }}\n"
    )
}

/// Issue 17 §2, the first example: a user is deleted, and later someone
/// else is given the same id. The newcomer is another person: it sees none
/// of the old SRs and cannot comment on them.
#[test]
fn a_user_created_again_under_a_deleted_users_id_sees_none_of_the_old_srs() {
    let world = Scratch::new();
    let with = |bob: &str, owen_email: Option<&str>| {
        let mut users = vec![bob.to_string()];
        let mut grants = String::new();
        if let Some(email) = owen_email {
            users.push(owen("owen", email, None));
            grants = owen_grants("owen");
        } else {
            grants.push_str("approvals:\n  - { user: erin, role: admin }\n");
        }
        let mut config = people_config(
            "20817431",
            &users.iter().map(String::as_str).collect::<Vec<_>>(),
            &grants,
        );
        if !bob.is_empty() {
            config.push_str("support_links:\n  - { user: bob }\n");
        }
        config.replace("  \n", "")
    };
    apply(
        &world,
        "acme.yaml",
        &with(
            "bob: { email: bob@acme.example }",
            Some("owen@acme.example"),
        ),
    );
    let bobs = id_of(&sr_open(&world, "bob", "by the first bob"));
    let owens = id_of(&sr_open(&world, "owen", "by the first owen"));
    assert_eq!(visible(&world, "bob"), [bobs]);
    assert_eq!(visible(&world, "owen"), [owens]);
    // Both leave; later, two other people get their ids.
    apply(&world, "acme.yaml", &with("", None));
    apply(
        &world,
        "acme.yaml",
        &with(
            "bob: { email: robert.new@acme.example }",
            Some("owen.new@acme.example"),
        ),
    );
    assert_eq!(
        visible(&world, "bob"),
        Vec::<i64>::new(),
        "the new bob sees the old bob's SR"
    );
    assert_eq!(
        visible(&world, "owen"),
        Vec::<i64>::new(),
        "the new owen sees the old owen's SR"
    );
    for (user, id) in [("bob", bobs), ("owen", owens)] {
        let id = id.to_string();
        expect_refused(
            &world,
            &["sr", "show", &id, "--user", user],
            &format!("`{user}` cannot see SR {id}"),
        );
        let out = expect_refused(
            &world,
            &["sr", "comment", &id, "--user", user, "--text", "mine?"],
            &format!("`{user}` cannot see this SR"),
        );
        assert!(
            out.stderr
                .contains(&format!("another person who had the id `{user}` then")),
            "{}",
            out.stderr
        );
    }
    // Their own SRs are theirs.
    let new_bobs = id_of(&sr_open(&world, "bob", "by the new bob"));
    let new_owens = id_of(&sr_open(&world, "owen", "by the new owen"));
    assert_eq!(visible(&world, "bob"), [new_bobs]);
    assert_eq!(visible(&world, "owen"), [new_owens]);
    // The old SRs are kept as they were opened, for the administrators.
    assert_eq!(visible(&world, "dan"), [bobs, owens, new_bobs, new_owens]);
    assert_eq!(sr_show(&world, bobs)["opened_by"], "bob");
}

/// The users of [`rename_config`] after a rename, and then a new owen and
/// a new bob given the old ids.
fn renamed_and_reused_config() -> String {
    let users = [
        owen("owen2", "owen@acme.example", None),
        "robert: { email: bob@acme.example }".to_string(),
        owen("owen", "owen.new@acme.example", None),
        "bob: { email: bob.new@acme.example }".to_string(),
    ];
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let grants = "  - user: owen2\n  - user: owen\napprovals:\n  - { user: erin, role: admin }\n  - { user: owen2, role: user, access: [create_sr] }\n  - { user: owen, role: user, access: [create_sr] }\nsupport_links:\n  - { user: robert }\n  - { user: bob }\n";
    people_config("20817431", &users, grants)
}

/// Issue 17 §2, the second example: a user renamed away, and a new user
/// given the old id. Each keeps its own SRs, opened before or after.
#[test]
fn an_id_renamed_away_and_given_to_a_new_user_keeps_each_persons_srs_apart() {
    let world = Scratch::new();
    apply(&world, "acme.yaml", &rename_config(false));
    let owens = id_of(&sr_open(&world, "owen", "by owen"));
    let bobs = id_of(&sr_open(&world, "bob", "by bob"));
    apply(&world, "acme.yaml", &rename_config(true));
    apply(&world, "acme.yaml", &renamed_and_reused_config());
    let new_owens = id_of(&sr_open(&world, "owen", "by the new owen"));
    let new_bobs = id_of(&sr_open(&world, "bob", "by the new bob"));
    assert_eq!(visible(&world, "owen2"), [owens], "owen2 (was owen)");
    assert_eq!(visible(&world, "robert"), [bobs], "robert (was bob)");
    assert_eq!(visible(&world, "owen"), [new_owens], "the new owen");
    assert_eq!(visible(&world, "bob"), [new_bobs], "the new bob");
    let comment = |id: i64, user: &str| {
        world.run(&[
            "sr",
            "comment",
            &id.to_string(),
            "--user",
            user,
            "--text",
            "hi",
        ])
    };
    comment(bobs, "robert").assert_code(0);
    comment(new_bobs, "bob").assert_code(0);
    comment(owens, "owen2").assert_code(0);
    comment(new_owens, "owen").assert_code(0);
    for (id, user) in [
        (bobs, "bob"),
        (new_bobs, "robert"),
        (owens, "owen"),
        (new_owens, "owen2"),
    ] {
        expect_refused(
            &world,
            &[
                "sr",
                "comment",
                &id.to_string(),
                "--user",
                user,
                "--text",
                "no",
            ],
            &format!("`{user}` cannot see this SR"),
        );
    }
}

/// Issue 17 §2, the third example: renames that come back to an id (a to b
/// to a, and a to b to c to a) leave each user its own SRs.
#[test]
fn renames_that_go_round_in_a_cycle_keep_the_users_srs() {
    let world = Scratch::new();
    let config =
        |owen_id: &str, previously: Option<&str>, bob_id: &str, bob_before: Option<&str>| {
            let bob_before = bob_before
                .map(|p| format!("previously: {p}, "))
                .unwrap_or_default();
            let users = [
                owen(owen_id, "owen@acme.example", previously),
                format!("{bob_id}: {{ {bob_before}email: bob@acme.example }}"),
            ];
            let users: Vec<&str> = users.iter().map(String::as_str).collect();
            let mut grants = owen_grants(owen_id);
            let _ = writeln!(grants, "support_links:\n  - {{ user: {bob_id} }}");
            people_config("20817431", &users, &grants)
        };
    apply(&world, "acme.yaml", &config("owen", None, "bob", None));
    let owens = id_of(&sr_open(&world, "owen", "by owen"));
    let bobs = id_of(&sr_open(&world, "bob", "by bob"));
    // owen: owen → owen2 → owen; bob: bob → b2 → b3 → bob.
    apply(
        &world,
        "acme.yaml",
        &config("owen2", Some("owen"), "b2", Some("bob")),
    );
    assert_eq!(visible(&world, "owen2"), [owens]);
    assert_eq!(visible(&world, "b2"), [bobs]);
    apply(
        &world,
        "acme.yaml",
        &config("owen", Some("owen2"), "b3", Some("b2")),
    );
    assert_eq!(
        visible(&world, "owen"),
        [owens],
        "owen, back to his id, lost his SR"
    );
    assert_eq!(visible(&world, "b3"), [bobs]);
    apply(
        &world,
        "acme.yaml",
        &config("owen", None, "bob", Some("b3")),
    );
    assert_eq!(
        visible(&world, "bob"),
        [bobs],
        "bob, back to his id, lost his SR"
    );
    world.ok(&[
        "sr",
        "comment",
        &owens.to_string(),
        "--user",
        "owen",
        "--text",
        "mine",
    ]);
    world.ok(&[
        "sr",
        "comment",
        &bobs.to_string(),
        "--user",
        "bob",
        "--text",
        "mine",
    ]);
    let out = world.ok(&[
        "sr",
        "show",
        &bobs.to_string(),
        "--user",
        "bob",
        "--format",
        "json",
    ]);
    assert_eq!(
        json(&out.stdout)["comments"].as_array().map(Vec::len),
        Some(1)
    );
}

/// Issue 17 §2, the fourth example: the tenancy's CSI changes. A member of
/// the new CSI with `view_sr` does not see the SRs opened under the old
/// one; each SR keeps the CSI it was opened under, and its owner.
#[test]
fn a_csi_change_keeps_the_old_csis_srs_out_of_the_new_csis_view() {
    let world = Scratch::new();
    let config = |csi: &str| {
        let users = [
            "alice: { email: alice@acme.example, support_account: { phone: \"+82 2 555 0102\", timezone: Asia/Seoul } }",
            "viewer: { email: viewer@acme.example, support_account: { phone: \"+82 2 555 0104\", timezone: Asia/Seoul } }",
        ];
        let grants = "  - user: alice\n  - user: viewer\napprovals:\n  - { user: erin, role: admin }\n  - { user: alice, role: user, access: [create_sr, view_sr] }\n  - { user: viewer, role: user, access: [view_sr] }\n";
        people_config(csi, &users, grants)
    };
    apply(&world, "acme.yaml", &config("20817431"));
    let dans = id_of(&sr_open(&world, "dan", "by dan under the old CSI"));
    let alices = id_of(&sr_open(&world, "alice", "by alice under the old CSI"));
    assert_eq!(visible(&world, "viewer"), [dans, alices]);
    apply(&world, "acme.yaml", &config("55501234"));
    assert_eq!(
        visible(&world, "viewer"),
        Vec::<i64>::new(),
        "the new CSI's viewer sees the old CSI's SRs"
    );
    assert_eq!(
        visible(&world, "erin"),
        Vec::<i64>::new(),
        "an administrator of the new CSI sees the old CSI's SRs"
    );
    // Their owners still read their own.
    assert_eq!(visible(&world, "dan"), [dans]);
    assert_eq!(visible(&world, "alice"), [alices]);
    let out = expect_refused(
        &world,
        &[
            "sr",
            "comment",
            &alices.to_string(),
            "--user",
            "erin",
            "--text",
            "no",
        ],
        "it was opened under CSI `20817431`, and the tenancy's CSI is `55501234` now",
    );
    assert!(
        out.stderr.starts_with("error: `erin` cannot see this SR"),
        "{}",
        out.stderr
    );
    let erins = id_of(&sr_open(&world, "erin", "by erin under the new CSI"));
    assert_eq!(visible(&world, "viewer"), [erins]);
    let csis: Vec<Value> = srs(&world).iter().map(|sr| sr["csi"].clone()).collect();
    assert_eq!(csis, ["20817431", "20817431", "55501234"]);
    // Back to the old CSI: its SRs are its members' again, the other's not.
    apply(&world, "acme.yaml", &config("20817431"));
    assert_eq!(visible(&world, "viewer"), [dans, alices]);
    assert_eq!(
        visible(&world, "erin"),
        [dans, alices, erins],
        "erin owns hers"
    );
}

/// `access`, and every `sr` command that names a user, answer an id that
/// is no user's with the user a rename took it to, or the closest id.
#[test]
fn an_unknown_user_is_told_where_a_rename_took_the_id_or_the_closest_one() {
    let world = Scratch::new();
    apply(&world, "acme.yaml", &rename_config(false));
    let id = id_of(&sr_open(&world, "bob", "by bob")).to_string();
    apply(&world, "acme.yaml", &rename_config(true));
    let commands = |user: &'static str| -> Vec<Vec<&'static str>> {
        let id: &'static str = Box::leak(id.clone().into_boxed_str());
        vec![
            vec!["access", user],
            vec!["access", user, "--format", "json"],
            vec!["sr", "open", "--user", user, "--title", "t"],
            vec!["sr", "list", "--user", user],
            vec!["sr", "show", id, "--user", user],
            vec!["sr", "comment", id, "--user", user, "--text", "t"],
        ]
    };
    for args in commands("bob") {
        expect_refused(
            &world,
            &args,
            "`bob` is not a user of the tenancy\n  hint: `bob` was renamed: that user is `robert` now\n",
        );
    }
    for args in commands("robrt") {
        expect_refused(
            &world,
            &args,
            "`robrt` is not a user of the tenancy\n  hint: did you mean `robert`?\n",
        );
    }
    for args in commands("zed") {
        let out = expect_refused(&world, &args, "`zed` is not a user of the tenancy\n");
        assert!(!out.stderr.contains("hint"), "{}", out.stderr);
    }
    // The id given to someone else and renamed away again: both are named.
    let settled = rename_config(true)
        .replace("previously: bob, ", "")
        .replace("previously: owen, ", "");
    let with = |user: &str| settled.replace("memberships:", &format!("  {user}\nmemberships:"));
    apply(
        &world,
        "acme.yaml",
        &with("bob: { email: bob.new@acme.example }"),
    );
    apply(
        &world,
        "acme.yaml",
        &with("bert: { previously: bob, email: bob.new@acme.example }"),
    );
    expect_refused(
        &world,
        &["access", "bob"],
        "hint: `bob` was renamed more than once: those users are `bert`, `robert` now\n",
    );
}

// ---- The property: random applies and SR operations ----

/// The users a random config draws from; the tenancy admin is `dan` or `erin`.
const POOL: [&str; 6] = ["dan", "erin", "frank", "gina", "hal", "ivy"];
/// Expiry days around today (2026-11-24): past, today (so expired), tomorrow,
/// later.
const DATES: [&str; 4] = ["2026-06-30", "2026-11-24", "2026-11-25", "2027-06-30"];
const PRIVILEGES: [&str; 3] = ["create_sr", "view_sr", "download"];

#[derive(Clone, Debug)]
struct UserDraw {
    present: bool,
    account: bool,
    member: bool,
    /// Role admin, access bits (0: no list), approver pick, expiry.
    approval: Option<(bool, usize, usize, Option<usize>)>,
    /// Via pick, expiry.
    link: Option<(usize, Option<usize>)>,
}

/// A random valid config of the tenancy `acme`; its `Debug` is its YAML.
#[derive(Clone)]
struct ConfigDraw {
    admin_is_erin: bool,
    users: Vec<UserDraw>,
}

impl std::fmt::Debug for ConfigDraw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\n{}", self.yaml())
    }
}

fn user_draw() -> impl Strategy<Value = UserDraw> {
    (
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.7),
        prop::bool::weighted(0.7),
        prop::option::weighted(
            0.6,
            (
                prop::bool::weighted(0.35),
                0usize..8,
                0usize..8,
                prop::option::weighted(0.35, 0..DATES.len()),
            ),
        ),
        prop::option::weighted(
            0.6,
            (0usize..8, prop::option::weighted(0.3, 0..DATES.len())),
        ),
    )
        .prop_map(|(present, account, member, approval, link)| UserDraw {
            present,
            account,
            member,
            approval,
            link,
        })
}

fn config_draw() -> impl Strategy<Value = ConfigDraw> {
    (
        prop::bool::weighted(0.2),
        prop::collection::vec(user_draw(), POOL.len()),
    )
        .prop_map(|(admin_is_erin, users)| ConfigDraw {
            admin_is_erin,
            users,
        })
}

impl ConfigDraw {
    fn admin(&self) -> &'static str {
        if self.admin_is_erin { "erin" } else { "dan" }
    }

    /// The users the config declares.
    fn users(&self) -> Vec<&'static str> {
        POOL.iter()
            .zip(&self.users)
            .filter(|(id, u)| u.present || **id == self.admin())
            .map(|(id, _)| *id)
            .collect()
    }

    /// The YAML. Valid by construction: the tenancy admin has a support
    /// account and no grant; memberships need an account; approvals need a
    /// membership and name an earlier administrator (or default to the
    /// tenancy admin), so chains have no cycle; links go to users without an
    /// approval, through an administrator.
    fn yaml(&self) -> String {
        let admin = self.admin();
        let mut admins = vec![admin];
        let (mut users, mut members, mut approvals, mut links) =
            (String::new(), String::new(), String::new(), String::new());
        for (i, (id, u)) in POOL.iter().zip(&self.users).enumerate() {
            let id = *id;
            let is_admin = id == admin;
            if !u.present && !is_admin {
                continue;
            }
            // Fixed per id, so that no apply replaces an account for its email.
            let email = if id == "dan" || id == "erin" {
                format!("{}.K@Acme.example", id.to_uppercase())
            } else {
                format!("{id}@acme.example")
            };
            let _ = writeln!(users, "  {id}:\n    email: {email}");
            let account = is_admin || u.account;
            if account {
                let _ = writeln!(
                    users,
                    "    support_account: {{ phone: \"+82 2 555 01{i:02}\", timezone: UTC }}"
                );
            }
            if is_admin {
                continue;
            }
            let member = account && u.member;
            if member {
                let _ = writeln!(members, "  - user: {id}");
            }
            let approval = u.approval.filter(|_| member);
            if let Some((role_admin, bits, pick, expires)) = approval {
                let role = if role_admin { "admin" } else { "user" };
                let _ = writeln!(approvals, "  - user: {id}\n    role: {role}");
                if bits != 0 {
                    let access: Vec<&str> = (0..3)
                        .filter(|b| bits & (1 << b) != 0)
                        .map(|b| PRIVILEGES[b])
                        .collect();
                    let _ = writeln!(approvals, "    access: [{}]", access.join(", "));
                }
                if let Some(by) = admins.get(pick % (admins.len() + 1)) {
                    let _ = writeln!(approvals, "    approved_by: {by}");
                }
                if let Some(e) = expires {
                    let _ = writeln!(approvals, "    expires: {}", DATES[e]);
                }
                if role_admin {
                    admins.push(id);
                }
            } else if let Some((pick, expires)) = u.link {
                let _ = writeln!(links, "  - user: {id}");
                if let Some(via) = admins.get(pick % (admins.len() + 1)) {
                    let _ = writeln!(links, "    via: {via}");
                }
                if let Some(e) = expires {
                    let _ = writeln!(links, "    expires: {}", DATES[e]);
                }
            }
        }
        let mut out = format!(
            "# generated by tests/it/support.rs\ntenancy:\n  name: acme\n  csi: \"20817431\"\n  admin: {admin}\nusers:\n{users}"
        );
        for (section, entries) in [
            ("memberships", members),
            ("approvals", approvals),
            ("support_links", links),
        ] {
            if !entries.is_empty() {
                let _ = write!(out, "{section}:\n{entries}");
            }
        }
        out
    }
}

/// The days a random run lives through, in order: today, then the day an
/// approval or link expiring on 2026-11-25 ends, then around 2027-06-30.
const DAYS: [&str; 4] = [TODAY, "2026-11-25", "2027-06-30", "2027-07-01"];

/// One step of a random run. A user is an index into [`POOL`], one past its
/// end being `zed`, who is never a user; or, when `eligible`, an index into
/// the users `access --all` says can open SRs right now, so that most runs
/// open SRs through every path.
#[derive(Clone, Debug)]
enum Step {
    Apply(ConfigDraw),
    Open {
        user: usize,
        eligible: bool,
        severity: usize,
    },
    Comment {
        user: usize,
        eligible: bool,
        pick: usize,
    },
    ListAs {
        user: usize,
    },
    /// Move the clock on to the next of [`DAYS`], if there is one.
    NextDay,
}

fn step() -> impl Strategy<Value = Step> {
    let user = 0..=POOL.len();
    prop_oneof![
        2 => config_draw().prop_map(Step::Apply),
        5 => (user.clone(), any::<bool>(), 0usize..4)
            .prop_map(|(user, eligible, severity)| Step::Open { user, eligible, severity }),
        2 => (user.clone(), any::<bool>(), any::<usize>())
            .prop_map(|(user, eligible, pick)| Step::Comment { user, eligible, pick }),
        1 => user.prop_map(|user| Step::ListAs { user }),
        1 => Just(Step::NextDay),
    ]
}

fn who(user: usize) -> &'static str {
    POOL.get(user).copied().unwrap_or("zed")
}

/// What the test knows of an SR: recorded when it was opened, from `access`
/// asked just before.
#[derive(Debug)]
struct Opened {
    id: i64,
    opened_by: String,
    owner: String,
    /// The persons who opened and own it (see [`Run::persons`]).
    opener_person: u64,
    owner_person: u64,
    contact: String,
    /// Opened through a support link.
    linked: bool,
    comments: usize,
}

/// The record of a random run, checked after every step.
struct Run<'w> {
    world: &'w Scratch,
    /// Every SR opened, by id.
    opened: Vec<Opened>,
    /// `sr list --format json` after the previous step.
    last: Vec<Value>,
    /// The users of the config applied last.
    users: Vec<&'static str>,
    /// The person each user id stands for now: a user deleted and created
    /// again under the same id is another person, who sees none of the
    /// first one's SRs (an SR belongs to people, not to ids).
    persons: std::collections::BTreeMap<&'static str, u64>,
    /// The number of persons there have been.
    people: u64,
}

impl Run<'_> {
    /// The user a step names: see [`Step`].
    fn user(&self, user: usize, eligible: bool) -> String {
        if eligible {
            let able: Vec<String> = access_all(self.world)
                .iter()
                .filter(|a| a["can_open_sr"] == true)
                .map(|a| text_of(a, "user").to_string())
                .collect();
            if !able.is_empty() {
                return able[user % able.len()].clone();
            }
        }
        who(user).to_string()
    }

    /// `access USER --format json`, or `None` for a user who is not one.
    fn access(&self, user: &str) -> Option<Value> {
        let out = self.world.run(&["access", user, "--format", "json"]);
        match out.code() {
            0 => Some(json(&out.stdout)),
            1 => {
                assert_eq!(out.stdout, "");
                assert!(!self.users.contains(&user), "{}", out.stderr);
                None
            }
            _ => panic!("{}", out.transcript()),
        }
    }

    fn apply(&mut self, config: &ConfigDraw) {
        let yaml = config.yaml();
        apply(self.world, "acme.yaml", &yaml);
        self.users = config.users();
        let users = self.users.clone();
        self.persons.retain(|id, _| users.contains(id));
        for id in users {
            if !self.persons.contains_key(id) {
                self.people += 1;
                self.persons.insert(id, self.people);
            }
        }
        let all = access_all(self.world);
        let users: Vec<&str> = all.iter().map(|a| text_of(a, "user")).collect();
        assert_eq!(users, self.users, "the users of\n{yaml}");
    }

    fn open(&mut self, user: &str, severity: usize, n: usize) {
        let access = self.access(user);
        let everyone = access_all(self.world);
        let severity = ["highest", "high", "medium", "low"][severity];
        let title = format!("step {n}");
        let out = self.world.run(&[
            "sr",
            "open",
            "--user",
            user,
            "--title",
            &title,
            "--severity",
            severity,
            "--format",
            "json",
        ]);
        let can = access.as_ref().is_some_and(|a| a["can_open_sr"] == true);
        if !can {
            assert_eq!(out.code(), 1, "`access` said no:\n{}", out.transcript());
            assert_eq!(out.stdout, "");
            assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
            return;
        }
        let access = access.unwrap();
        assert_eq!(
            out.code(),
            0,
            "`access` said yes:\n{access}\n{}",
            out.transcript()
        );
        let sr = json(&out.stdout);
        let path = text_of(&access, "path");
        let linked = path == "linked";
        let owner = text_of(&sr, "owner");
        assert_eq!(sr["opened_by"], user);
        assert_eq!(sr["owner"], access["acts_as"], "the owner `access` named");
        assert_eq!(
            sr["contact_email"], access["notified"],
            "the contact `access` named"
        );
        assert_eq!(sr["severity"], severity);
        // The owner was entitled to own it: the user itself, approved to
        // open SRs; or, for a linked user, the CSI administrator it is
        // linked through, who is an administrator right now.
        let path_of = |u: &str| {
            everyone
                .iter()
                .find(|a| a["user"] == u)
                .map(|a| text_of(a, "path").to_string())
                .unwrap_or_else(|| panic!("the owner `{u}` is not a user"))
        };
        if linked {
            assert_ne!(owner, user, "a linked user owns its SR: {sr}");
            assert_eq!(sr["owner"], access["via"]);
            assert!(
                ["tenancy-admin", "approved-admin"].contains(&path_of(owner).as_str()),
                "`{owner}` owns {user}'s SR but is no CSI administrator: {everyone:?}"
            );
            assert_eq!(sr["channel"], "console");
        } else {
            assert_eq!(owner, user);
            assert!(
                ["tenancy-admin", "approved-admin", "approved-user"].contains(&path),
                "{access}"
            );
            assert_eq!(sr["channel"], "mos");
        }
        let opener_person = self.person(user);
        let owner_person = self.person(owner);
        self.opened.push(Opened {
            id: id_of(&sr),
            opened_by: user.to_string(),
            owner: owner.to_string(),
            opener_person,
            owner_person,
            contact: text_of(&sr, "contact_email").to_string(),
            linked,
            comments: 0,
        });
    }

    /// The person `user` stands for now; 0, no one's, for an id that is no
    /// user.
    fn person(&self, user: &str) -> u64 {
        self.persons.get(user).copied().unwrap_or(0)
    }

    fn comment(&mut self, user: &str, pick: usize) {
        let Some(i) = (!self.opened.is_empty()).then(|| pick % self.opened.len()) else {
            let out = self
                .world
                .run(&["sr", "comment", "1", "--user", user, "--text", "x"]);
            assert_eq!(
                (out.code(), out.stdout.as_str()),
                (1, ""),
                "{}",
                out.transcript()
            );
            return;
        };
        let access = self.access(user);
        let sees = access
            .as_ref()
            .map(|_| visible(self.world, user).contains(&self.opened[i].id));
        let person = self.person(user);
        let sr = &mut self.opened[i];
        let id = sr.id.to_string();
        let out = self
            .world
            .run(&["sr", "comment", &id, "--user", user, "--text", "random"]);
        // Who may comment: a user who opens SRs, on an SR it can see (in
        // MOS, or in the Console if it opened it); never a read-only user.
        let expected = match (&access, sees) {
            (Some(a), Some(true)) if a["can_open_sr"] == true => {
                let mos = a["visible_in_mos"] == true
                    && (a["sees_all_csi_srs"] == true || sr.owner_person == person);
                Some(if mos { "mos" } else { "console" })
            }
            _ => None,
        };
        let Some(channel) = expected else {
            assert_eq!(out.code(), 1, "{access:?}\n{}", out.transcript());
            assert_eq!(out.stdout, "");
            return;
        };
        assert_eq!(out.code(), 0, "{access:?}\n{}", out.transcript());
        let path = text_of(access.as_ref().unwrap(), "path");
        if path == "linked" {
            assert_eq!(channel, "console", "a linked user comments in the Console");
            assert_eq!(
                sr.opener_person, person,
                "a linked user comments on its own SRs"
            );
        }
        sr.comments += 1;
        let shown = sr_show(self.world, sr.id);
        let comments = shown["comments"].as_array().unwrap();
        assert_eq!(comments.len(), sr.comments);
        let last = comments.last().unwrap();
        assert_eq!(
            (&last["author"], &last["channel"]),
            (&user.into(), &channel.into())
        );
    }

    fn list_as(&self, user: &str) {
        let Some(access) = self.access(user) else {
            let out = self.world.run(&["sr", "list", "--user", user]);
            assert_eq!(
                (out.code(), out.stdout.as_str()),
                (1, ""),
                "{}",
                out.transcript()
            );
            return;
        };
        let flag = |k: &str| access[k] == true;
        let person = self.person(user);
        let expected: Vec<i64> = self
            .opened
            .iter()
            .filter(|sr| {
                (flag("visible_in_mos") && (flag("sees_all_csi_srs") || sr.owner_person == person))
                    || (flag("visible_in_console") && sr.opener_person == person)
            })
            .map(|sr| sr.id)
            .collect();
        let seen = visible(self.world, user);
        assert_eq!(seen, expected, "what {user} sees, by {access}");
        if access["path"] == "linked" {
            assert!(
                self.opened
                    .iter()
                    .filter(|sr| seen.contains(&sr.id))
                    .all(|sr| sr.opener_person == person)
            );
        }
    }

    /// The invariants, after every step.
    fn check(&mut self) {
        let now = srs(self.world);
        assert!(now.len() >= self.last.len(), "an SR was lost");
        assert_eq!(
            now.len(),
            self.opened.len(),
            "every SR is one the test opened"
        );
        for (i, sr) in now.iter().enumerate() {
            let known = &self.opened[i];
            assert_eq!(id_of(sr), known.id);
            assert_eq!(sr["opened_by"], known.opened_by.as_str());
            assert_eq!(
                sr["owner"],
                known.owner.as_str(),
                "the owner it was opened under"
            );
            assert_eq!(sr["contact_email"], known.contact.as_str());
            assert_eq!(
                sr["comments"].as_array().map(Vec::len),
                Some(known.comments)
            );
            if known.linked {
                assert_ne!(sr["owner"], sr["opened_by"], "a linked user owns {sr}");
            }
            if let Some(before) = self.last.get(i) {
                // Nothing rewritten: the same SR, perhaps with more comments.
                let (mut a, mut b) = (before.clone(), sr.clone());
                let old = a["comments"].take();
                let new = b["comments"].take();
                assert_eq!(a, b, "SR {} was rewritten", known.id);
                let old = old.as_array().unwrap();
                assert_eq!(old[..], new.as_array().unwrap()[..old.len()]);
            }
        }
        for a in access_all(self.world) {
            if a["path"] == "linked" {
                assert_ne!(a["acts_as"], a["user"], "{a}");
                assert_eq!(a["visible_in_mos"], false, "{a}");
            }
        }
        self.last = now;
    }
}

fn property_config() -> ProptestConfig {
    ProptestConfig {
        cases: 16,
        failure_persistence: None,
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(property_config())]

    /// After any sequence of applies, SR operations and days passing: `sr open` succeeds
    /// exactly when `access` says so; every SR is owned by whom `access`
    /// named, entitled to own it then — never by a linked user; and no SR or
    /// comment is ever lost or rewritten.
    #[test]
    fn the_linked_user_rule_holds_through_any_history(
        first in config_draw(),
        steps in prop::collection::vec(step(), 6..20),
    ) {
        let world = Scratch::new();
        let mut run = Run { world: &world, opened: Vec::new(), last: Vec::new(), users: Vec::new(), persons: std::collections::BTreeMap::new(), people: 0 };
        run.apply(&first);
        run.check();
        for (n, step) in steps.iter().enumerate() {
            match step {
                Step::Apply(config) => run.apply(config),
                Step::Open { user, eligible, severity } => {
                    let user = run.user(*user, *eligible);
                    run.open(&user, *severity, n);
                }
                Step::Comment { user, eligible, pick } => {
                    let user = run.user(*user, *eligible);
                    run.comment(&user, *pick);
                }
                Step::ListAs { user } => run.list_as(who(*user)),
                Step::NextDay => {
                    let next = DAYS.iter().skip_while(|d| **d != world.today()).nth(1);
                    world.set_today(next.copied().unwrap_or(DAYS[DAYS.len() - 1]));
                }
            }
            run.check();
        }
    }
}
