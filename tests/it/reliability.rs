//! Reliability: real damage to real processes (docs/reliability.md).
//!
//! - Applies killed with SIGKILL at random moments, many times over: the
//!   database passes SQLite's integrity check and holds exactly the state
//!   before or exactly the state after, and the next apply completes.
//! - Writers racing on one database: each applies or ends with a clear
//!   message, and the state is exactly one of the configs.
//! - Readers and SR operations during a long apply see the state before or
//!   after, never a mix.
//! - Private data: phones redacted on request, never in logs; files only
//!   their owner reads; saved plans that do not belong are refused.
//! - Limits that are documented and each an error with its place.
//!
//! The random moments come from proptest's generator (`binary::Dice`), from
//! a seed printed by each test; set `RELIABILITY_SEED` to replay one.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::{DEADLINE, Dice, Outcome, Running, Scratch, json, run, supportctl};

/// Applies `config`; the configs here shrink and grow by half, so the
/// mass-delete guard is let through.
fn apply(world: &Scratch, config: &str) -> Outcome {
    world.ok(&["apply", "--auto-approve", "--allow-mass-delete", config])
}

/// Whether `config` plans to no changes against the state.
fn settled_on(world: &Scratch, config: &str) -> bool {
    let plan = world.run(&["plan", "--detailed-exitcode", "--allow-mass-delete", config]);
    match plan.code() {
        0 => true,
        2 => false,
        _ => panic!("{}", plan.transcript()),
    }
}

/// The database's own verdict on the state. On SQLite: `PRAGMA
/// integrity_check` on the file, and the foreign keys (which SQLite checks
/// only when asked). On PostgreSQL, which checks its foreign keys at every
/// commit: every table of the state is there and reads whole.
fn assert_intact(world: &Scratch) {
    if world.is_postgres() {
        assert_eq!(
            postgres_tables(world).len(),
            STATE_TABLES.len(),
            "every table"
        );
        let mut client = world.postgres_client();
        for table in STATE_TABLES {
            client
                .query_one(&format!("SELECT count(*) FROM supportctl.{table}"), &[])
                .unwrap_or_else(|e| panic!("supportctl.{table} reads: {e}"));
        }
        return;
    }
    let conn = world.sqlite();
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check runs");
    assert_eq!(verdict, "ok", "PRAGMA integrity_check");
    let broken: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .expect("foreign_key_check runs");
    assert_eq!(broken, 0, "rows whose references are broken");
}

/// The tables of a PostgreSQL state (its schema `supportctl`).
const STATE_TABLES: [&str; 13] = [
    "approvals",
    "journal",
    "leases",
    "memberships",
    "meta",
    "replicas",
    "service_requests",
    "sr_comments",
    "support_accounts",
    "support_links",
    "tenancies",
    "user_former_ids",
    "users",
];

/// The tables in the schema `supportctl` of a PostgreSQL state, by name.
fn postgres_tables(world: &Scratch) -> Vec<String> {
    world
        .postgres_client()
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'supportctl' ORDER BY 1",
            &[],
        )
        .expect("the tables are listed")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// A tenancy `big` with `n` filler users besides three that matter: `dan`
/// (the tenancy admin), `zoe` (approved as a second CSI administrator) and
/// `bob`, linked through `dan` when `variant` is even and through `zoe` when
/// it is odd. `variant` also renames every third filler user, so two
/// variants differ in updates as well as in size.
pub(crate) fn tenancy_config(n: usize, variant: u8) -> String {
    let mut out = String::from(
        "tenancy: { name: big, csi: \"1\", admin: dan }\nusers:\n  dan: { email: dan@x.example, support_account: { phone: \"+1 555 0100\", timezone: UTC } }\n  zoe: { email: zoe@x.example, support_account: { phone: \"+1 555 0101\", timezone: UTC } }\n  bob: { email: bob@x.example }\n",
    );
    for i in 0..n {
        let _ = writeln!(
            out,
            "  u{i}: {{ email: u{i}@x.example, name: \"User {i} v{}\", support_account: {{ phone: \"+1 555 {i}\", timezone: UTC }} }}",
            if i % 3 == 0 { variant } else { 0 }
        );
    }
    out.push_str("memberships:\n  - user: zoe\n");
    for i in (0..n).step_by(2) {
        let _ = writeln!(out, "  - user: u{i}");
    }
    out.push_str("approvals:\n  - user: zoe\n    role: admin\n");
    for i in (0..n).step_by(4) {
        let _ = writeln!(
            out,
            "  - user: u{i}\n    role: user\n    access: [create_sr, view_sr]"
        );
    }
    let via = if variant.is_multiple_of(2) {
        "dan"
    } else {
        "zoe"
    };
    let _ = writeln!(out, "support_links:\n  - user: bob\n    via: {via}");
    out
}

// ---- 1. Crash consistency ----

/// docs/reliability.md: an apply killed with SIGKILL at any moment leaves a database that
/// passes `PRAGMA integrity_check` and holds exactly the state before or
/// exactly the state after, with the history to match; the next apply
/// completes. The moments are random over the whole length of an apply, and
/// the applies alternate between two configs so that each kill interrupts a
/// real change (creates, updates and deletes).
#[test]
fn applies_killed_at_random_moments_leave_the_state_before_or_after() {
    const ROUNDS: usize = 20;
    let mut dice = Dice::new("crash");
    let world = Scratch::new();
    world.write("a.yaml", &tenancy_config(600, 0));
    world.write("b.yaml", &tenancy_config(1200, 1));
    apply(&world, "a.yaml");
    let content_a = world.content();
    let started = Instant::now();
    apply(&world, "b.yaml");
    // How long an apply runs, as last seen; kept up to date, since other
    // tests share the machine and slow it down or let it go faster.
    let mut full = started.elapsed();
    let content_b = world.content();
    assert_ne!(content_a, content_b);
    let contents = [("a.yaml", content_a), ("b.yaml", content_b)];

    let mut at = 1; // the state holds b.yaml
    let (mut killed, mut before, mut after) = (0, 0, 0);
    for round in 0..ROUNDS {
        let target = 1 - at;
        let (config, _) = contents[target];
        let serial = world.serial();
        let history = world.history().len();
        let delay = dice.within(full);
        let spawned = Instant::now();
        let mut child = world.start(&["apply", "--auto-approve", "--allow-mass-delete", config]);
        std::thread::sleep(delay);
        let finished = child.child.try_wait().expect("waiting").is_some();
        if finished {
            full = spawned.elapsed();
        } else {
            child.child.kill().expect("SIGKILL");
            killed += 1;
        }
        let status = child.finish().status;
        world.wait_for_sessions_to_end();
        assert_intact(&world);
        let now = world.content();
        if now == contents[at].1 {
            assert_eq!(
                world.serial(),
                serial,
                "round {round}: content before, serial moved"
            );
            assert_eq!(world.history().len(), history, "round {round}");
            before += 1;
            // The interrupted apply can be run again, to its end.
            let again = Instant::now();
            apply(&world, config);
            full = again.elapsed();
        } else {
            assert_eq!(
                now, contents[target].1,
                "round {round}: killed after {delay:?} ({status}), the state is neither before nor after"
            );
            assert_eq!(world.serial(), serial + 1, "round {round}");
            assert_eq!(world.history().len(), history + 1, "round {round}");
            after += 1;
        }
        assert!(settled_on(&world, config), "round {round}");
        assert_intact(&world);
        at = target;
    }
    eprintln!(
        "{ROUNDS} rounds, applies of about {full:?}: {killed} killed, {before} before, {after} after"
    );
    assert!(
        killed >= ROUNDS / 2,
        "most applies must really be killed part-way, or the test proves little"
    );
}

// ---- 2. Concurrent writers and readers ----

/// docs/reliability.md: writers racing on one database. Each either applies or ends
/// with a clear message (the plan is stale, or the database stayed locked);
/// never a panic or SQLite's bare "database is locked". The state is then
/// exactly one of the configs, and the serial counts the applies.
#[test]
fn racing_writers_each_apply_or_say_why_and_the_state_is_one_config() {
    let world = Scratch::new();
    let configs: Vec<String> = (0..4u8)
        .map(|v| {
            let name = format!("c{v}.yaml");
            world.write(&name, &tenancy_config(300 + 100 * usize::from(v), v));
            name
        })
        .collect();
    apply(&world, &configs[0]);
    for round in 0..3 {
        let serial = world.serial();
        let children: Vec<(String, Running)> = configs
            .iter()
            .map(|c| {
                (
                    c.clone(),
                    world.start(&["apply", "--auto-approve", "--allow-mass-delete", c]),
                )
            })
            .collect();
        let mut applied = 0;
        for (config, child) in children {
            let Outcome { status, stderr, .. } = child.finish();
            assert!(
                !stderr.contains("panicked") && !stderr.contains("database is locked"),
                "round {round}, {config}: {stderr}"
            );
            match status.code() {
                Some(0) => applied += 1,
                Some(1) => assert!(
                    (stderr.contains("is stale") && stderr.contains("nothing was changed"))
                        || stderr.contains(" is locked by "),
                    "round {round}, {config}: an unclear refusal: {stderr}"
                ),
                other => panic!("round {round}, {config}: exit {other:?}: {stderr}"),
            }
        }
        // Each config that applied counts once (a config already in the
        // state applies nothing and leaves the serial).
        assert!(world.serial() <= serial + applied, "round {round}");
        assert_intact(&world);
        let settled = configs.iter().filter(|c| settled_on(&world, c)).count();
        assert_eq!(settled, 1, "round {round}: the state is exactly one config");
    }
}

/// Readers during a long apply see the state before it or after it, never
/// a mix: `show`, `access --all` and `sr list` read one snapshot each.
#[test]
fn readers_during_an_apply_see_the_state_before_or_after() {
    let world = Scratch::new();
    world.write("a.yaml", &tenancy_config(800, 0));
    world.write("b.yaml", &tenancy_config(1600, 1));
    apply(&world, "a.yaml");
    for title in ["one", "two"] {
        world.ok(&["sr", "open", "--user", "bob", "--title", title]);
    }
    let readers: [&[&str]; 3] = [
        &["show", "--format", "json"],
        &["access", "--all", "--format", "json"],
        &["sr", "list", "--format", "json"],
    ];
    let read_all = || -> Vec<String> { readers.iter().map(|args| world.ok(args).stdout).collect() };
    let before = read_all();
    let mut seen: Vec<Vec<String>> = Vec::new();
    let mut apply = world.start(&["apply", "--auto-approve", "b.yaml"]);
    let started = Instant::now();
    let mut during = 0;
    loop {
        let running = apply.child.try_wait().expect("waiting").is_none();
        seen.push(read_all());
        if running {
            during += 1;
        } else {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "the apply hangs");
    }
    assert!(apply.finish().status.success());
    let after = read_all();
    assert_ne!(before[0], after[0]);
    for (i, reads) in seen.iter().enumerate() {
        for (r, text) in reads.iter().enumerate() {
            assert!(
                *text == before[r] || *text == after[r],
                "read {i} of `{}` is neither before nor after the apply",
                readers[r].join(" ")
            );
        }
    }
    assert!(during >= 1, "no read happened while the apply ran");
    eprintln!(
        "{} rounds of reads, {during} while the apply ran",
        seen.len()
    );
}

/// SR operations racing an apply that moves `bob`'s link from `dan` to
/// `zoe` attach to one state or the other: every SR `bob` opens is owned by
/// `dan` until the apply commits and by `zoe` after, never by anyone else,
/// and none is lost.
#[test]
fn srs_opened_during_an_apply_follow_the_state_before_or_after() {
    let world = Scratch::new();
    world.write("a.yaml", &tenancy_config(1000, 0));
    world.write("b.yaml", &tenancy_config(1600, 1));
    apply(&world, "a.yaml");
    let mut apply = world.start(&["apply", "--auto-approve", "b.yaml"]);
    let started = Instant::now();
    let mut owners = Vec::new();
    loop {
        let running = apply.child.try_wait().expect("waiting").is_none();
        let title = format!("race {}", owners.len());
        let opened = json(
            &world
                .ok(&[
                    "sr", "open", "--user", "bob", "--title", &title, "--format", "json",
                ])
                .stdout,
        );
        owners.push(opened["owner"].as_str().expect("an owner").to_string());
        if !running {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "the apply hangs");
    }
    assert!(apply.finish().status.success());
    // Once the apply is seen, it stays seen: dan's SRs first, then zoe's.
    let switched = owners
        .iter()
        .position(|o| o == "zoe@x.example" || o == "zoe");
    let (first, rest) = owners.split_at(switched.unwrap_or(owners.len()));
    assert!(
        first.iter().all(|o| o.starts_with("dan")) && rest.iter().all(|o| o.starts_with("zoe")),
        "owners in order of opening: {owners:?}"
    );
    assert!(
        !rest.is_empty(),
        "the last SR, opened after the apply, is zoe's"
    );
    let listed = json(&world.ok(&["sr", "list", "--format", "json"]).stdout);
    assert_eq!(
        listed.as_array().expect("a list").len(),
        owners.len(),
        "every SR opened is kept"
    );
    assert_intact(&world);
    eprintln!("owners while applying: {owners:?}");
}

// ---- 4. Limits ----

/// A directory of 100,000 files is over the limit of 10,000 config files:
/// an error that says so, quickly, never a crash.
#[test]
fn a_directory_of_100k_files_is_an_input_limit() {
    let scratch = Scratch::new();
    let dir = scratch.path("many");
    for chunk in 0..100 {
        let sub = dir.join(format!("d{chunk:03}"));
        std::fs::create_dir_all(&sub).expect("a folder");
        for i in 0..1000 {
            std::fs::File::create(sub.join(format!("f{i:04}.yaml"))).expect("a file");
        }
    }
    let outcome = run(&mut supportctl(scratch.root(), ["validate", "many"]));
    outcome.assert_code(1).assert_no_panic();
    assert!(
        outcome.stderr.contains("error[E010]")
            && outcome.stderr.contains("more than 10000 config files"),
        "{}",
        outcome.transcript()
    );
}

/// The total size of a config set has a limit of its own, named at the file
/// that passes it.
#[test]
fn the_total_size_of_a_config_set_is_limited() {
    let scratch = Scratch::new();
    let example = crate::binary::crate_root().join("examples/acme-prod.yaml");
    let text = std::fs::read_to_string(example).expect("the example");
    scratch.write("set/a.yaml", &text);
    scratch.write("set/b.yaml", "# a comment only\n");
    let limit = (text.len() + 5).to_string();
    let outcome = run(&mut supportctl(
        scratch.root(),
        ["validate", "--max-total-size", &limit, "set"],
    ));
    outcome.assert_code(1).assert_no_panic();
    assert!(
        outcome.stderr.contains("b.yaml:1:1: error[E010]")
            && outcome
                .stderr
                .contains(&format!("passes {limit} bytes in all")),
        "{}",
        outcome.transcript()
    );
}

/// A file that cannot be read is an error at that file; the others are
/// still checked. Run as an unprivileged user when the tests run as root,
/// since root reads any file whatever its mode.
#[test]
fn an_unreadable_file_is_an_error_at_that_file() {
    let scratch = Scratch::new();
    let example = crate::binary::crate_root().join("examples/acme-prod.yaml");
    scratch.write(
        "set/a.yaml",
        &std::fs::read_to_string(example).expect("the example"),
    );
    let secret = scratch.write("set/secret.yaml", "users: {}\n");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let mut command = as_unprivileged(scratch.root(), &["validate", "set"]);
    let outcome = run(&mut command);
    outcome.assert_code(1).assert_no_panic();
    assert!(
        outcome.stderr.contains("secret.yaml")
            && outcome.stderr.contains("error[E002]")
            && outcome.stderr.contains("Permission denied"),
        "{}",
        outcome.transcript()
    );
}

/// `supportctl ARGS` in `dir`, as the user `nobody` when this process is
/// root (through `setpriv`), so that file modes hold.
pub(crate) fn as_unprivileged(dir: &Path, args: &[&str]) -> Command {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        return supportctl(dir, args);
    }
    // nobody must be able to reach the directory and run the binary.
    let mut up = Some(dir);
    while let Some(d) = up {
        if d.starts_with(std::env::temp_dir()) && d != std::env::temp_dir() {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        up = d.parent();
    }
    let command = supportctl(dir, args);
    let program = PathBuf::from(command.get_program());
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let mut wrapped = Command::new("setpriv");
    wrapped
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(program)
        .args(args)
        .current_dir(dir);
    crate::binary::fixed_environment(&mut wrapped);
    wrapped
}

// ---- 5. Private data ----

const PHONES: [&str; 2] = ["+1 555 0100", "+1 555 0101"];

/// `--redact` replaces every phone number in `show` (each format), `export`
/// (one file and a folder, each file saying so), `plan` (text and JSON) and
/// `apply`'s plan, while the saved plan and the state keep them.
#[test]
fn redact_hides_phones_from_show_export_and_plans() {
    let world = Scratch::new();
    world.write("a.yaml", &tenancy_config(3, 0));
    let mut changed = tenancy_config(3, 0);
    changed = changed.replace("+1 555 0101", "+1 555 0199");
    world.write("b.yaml", &changed);
    let shows_no_phone = |what: &str, text: &str| {
        for phone in PHONES.iter().chain(&["+1 555 0199", "+1 555 1"]) {
            assert!(!text.contains(phone), "{what} shows {phone}:\n{text}");
        }
        assert!(text.contains("(redacted)"), "{what}:\n{text}");
    };
    let plan = world.ok(&["plan", "--redact", "a.yaml"]);
    shows_no_phone("plan --redact", &plan.stdout);
    let plan = world.ok(&[
        "plan", "--redact", "--format", "json", "-o", "a.plan", "a.yaml",
    ]);
    shows_no_phone("plan --redact --format json", &plan.stdout);
    let saved = std::fs::read_to_string(world.path("a.plan")).expect("the saved plan");
    assert!(saved.contains(PHONES[0]), "the saved plan keeps the phones");
    let applied = world.ok(&["apply", "--redact", "a.plan"]);
    shows_no_phone("apply --redact", &applied.stdout);

    for format in ["text", "json", "yaml"] {
        let show = world.ok(&["show", "--redact", "--format", format]);
        shows_no_phone(&format!("show --format {format}"), &show.stdout);
        let plain = world.ok(&["show", "--format", format]);
        assert!(plain.stdout.contains(PHONES[0]), "show without --redact");
    }
    let export = world.ok(&["export", "--redact"]);
    shows_no_phone("export --redact", &export.stdout);
    assert!(export.stdout.starts_with("# Phone numbers are redacted"));
    world.ok(&["export", "--redact", "--out", "shared"]);
    for file in yaml_files(&world.path("shared")) {
        let text = std::fs::read_to_string(&file).expect("exported");
        assert!(
            text.starts_with("# Phone numbers are redacted"),
            "{}",
            file.display()
        );
        assert!(!text.contains("+1 555"), "{}:\n{text}", file.display());
    }

    // A changed phone shows as changed, without either number.
    let plan = world.ok(&["plan", "--redact", "b.yaml"]);
    shows_no_phone("plan --redact of a phone change", &plan.stdout);
    assert!(
        plan.stdout
            .contains("\"(redacted)\" → \"(redacted, changed)\""),
        "{}",
        plan.stdout
    );
    let plan = world.ok(&["plan", "b.yaml"]);
    assert!(plan.stdout.contains("+1 555 0199"), "without --redact");
}

/// A `--redact` export applied by mistake would overwrite every phone in the
/// state with `(redacted)`: the marker is refused as a phone (`E120`), by
/// `validate`, `plan`, `apply` and `watch`'s checks alike, in one file and in
/// the GitOps layout, and the state keeps its numbers (issue 17 §9).
#[test]
fn a_redacted_export_cannot_be_applied_by_mistake() {
    let world = Scratch::new();
    world.write("a.yaml", &tenancy_config(3, 0));
    world.ok(&["apply", "--auto-approve", "a.yaml"]);
    let export = world.ok(&["export", "--redact"]);
    world.write("shared.yaml", &export.stdout);
    world.ok(&["export", "--redact", "--out", "shared"]);
    let phones = export.stdout.matches("(redacted)").count();
    assert_eq!(
        phones, 5,
        "one marker per support account:\n{}",
        export.stdout
    );
    for path in ["shared.yaml", "shared"] {
        for args in [
            &["validate", path][..],
            &["plan", path],
            &["apply", "--auto-approve", path],
        ] {
            let outcome = world.run(args);
            assert_eq!(outcome.code(), 1, "{}", outcome.transcript());
            assert_eq!(
                outcome.stderr.matches("error[E120]").count(),
                phones,
                "every redacted phone is refused:\n{}",
                outcome.stderr
            );
        }
    }
    let show = world.ok(&["show"]);
    for phone in PHONES {
        assert!(
            show.stdout.contains(phone),
            "the state lost {phone}:\n{}",
            show.stdout
        );
    }
    assert!(!show.stdout.contains("(redacted)"), "{}", show.stdout);
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    assert!(!files.is_empty());
    files
}

/// Logs carry no phone numbers, at any verbosity, in either format, from
/// `plan`, `apply` and `watch` — for a valid config, a phone change, and an
/// invalid config.
#[test]
fn logs_never_print_phone_numbers() {
    let world = Scratch::new();
    world.write("conf/a.yaml", &tenancy_config(3, 0));
    for format in ["text", "json"] {
        for args in [
            vec!["plan", "conf"],
            vec!["apply", "--auto-approve", "conf"],
        ] {
            let mut full = vec!["-vv", "--log-format", format];
            full.extend(args);
            let outcome = world.run(&full);
            assert!(!outcome.stderr.is_empty(), "-vv logs something");
            for phone in PHONES {
                assert!(!outcome.stderr.contains(phone), "{}", outcome.transcript());
            }
        }
    }
    // A watcher through a phone change and an invalid phone.
    let status = world.path("status.json");
    let watch = world.start(&[
        "-vv",
        "--log-format",
        "json",
        "watch",
        "conf",
        "--debounce-ms",
        "50",
        "--status-file",
        status.to_str().expect("UTF-8"),
    ]);
    let reconciles = |n: u64| {
        let started = Instant::now();
        loop {
            let done = std::fs::read_to_string(&status)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|s| s["reconciles"].as_u64())
                .is_some_and(|r| r >= n);
            if done {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the watcher did not reconcile"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    reconciles(1);
    world.write(
        "conf/a.yaml",
        &tenancy_config(3, 0).replace("+1 555 0101", "+1 555 0177"),
    );
    reconciles(2);
    world.write(
        "conf/a.yaml",
        &tenancy_config(3, 0).replace("phone: \"+1 555 0100\"", "phone: [\"+1 555 0100\"]"),
    );
    reconciles(3);
    // SAFETY: kill has no memory effects; the pid is our child's.
    unsafe { libc::kill(watch.child.id() as i32, libc::SIGTERM) };
    let Outcome {
        status,
        stderr: logs,
        ..
    } = watch.finish();
    assert!(status.success(), "{logs}");
    assert!(logs.contains("reconcile failed"), "{logs}");
    for phone in PHONES.iter().chain(&["+1 555 0177"]) {
        assert!(!logs.contains(phone), "the watcher logged {phone}:\n{logs}");
    }
}

/// A saved plan whose tenancy was changed to another tenancy of the same
/// database is refused, and nothing is written.
#[test]
fn a_saved_plan_moved_to_another_tenancy_is_refused() {
    let world = Scratch::new();
    world.write("big.yaml", &tenancy_config(3, 0));
    world.write(
        "other.yaml",
        &tenancy_config(3, 0).replace("name: big", "name: other"),
    );
    apply(&world, "big.yaml");
    apply(&world, "other.yaml");
    world.write("big2.yaml", &tenancy_config(3, 1));
    world.ok(&["plan", "-o", "big.plan", "big2.yaml"]);
    let saved = std::fs::read_to_string(world.path("big.plan")).expect("saved");
    let mut doc = json(&saved);
    assert_eq!(doc["tenancy"], "big");
    doc["tenancy"] = Value::from("other");
    world.write("moved.plan", &doc.to_string());
    let db = world.db_bytes();
    let outcome = world.run(&["apply", "moved.plan"]);
    outcome.assert_code(1);
    assert!(
        outcome.stderr.contains("nothing was changed"),
        "{}",
        outcome.transcript()
    );
    assert_eq!(world.db_bytes(), db);
    assert!(settled_on(&world, "big.yaml"));
}

/// Nothing read from a config, the state or the command line reaches the
/// terminal with its control characters raw (log and terminal injection):
/// `access`, `sr list`, `sr show`, refusals and logs print them escaped.
#[test]
fn control_characters_never_reach_the_terminal_raw() {
    let world = Scratch::new();
    world.write(
        "ctl.yaml",
        "tenancy: { name: ctl, csi: \"1\", admin: dan, home_region: \"r\\e[31m\" }\nusers:\n  dan: { email: dan@x.example, name: \"Dan\\e[2J\\a\\r\", support_account: { phone: \"+1\\b2\", timezone: UTC } }\n  bob: { email: bob@x.example, name: \"Bob\\e]0;owned\\a\" }\nsupport_links:\n  - user: bob\n",
    );
    world.ok(&["-v", "apply", "--auto-approve", "ctl.yaml"]);
    let title = "disk\u{1b}[2J full\r\nforged: line";
    world.ok(&["sr", "open", "--user", "bob", "--title", title]);
    world.ok(&[
        "sr",
        "comment",
        "1",
        "--user",
        "dan",
        "--text",
        "ok\u{7}\u{1b}[0m",
    ]);
    let raw = |text: &str| {
        text.chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    };
    let mut printed = Vec::new();
    for args in [
        &["access", "--all"][..],
        &["access", "--all", "--format", "csv"],
        &["access", "bob"],
        &["sr", "list"],
        &["sr", "show", "1"],
        &["show"],
        &["-vv", "plan", "ctl.yaml"],
    ] {
        let outcome = world.ok(args);
        printed.push(format!("{}{}", outcome.stdout, outcome.stderr));
    }
    for args in [
        &["sr", "open", "--user", "no\u{1b}[2Jbody", "--title", "x"][..],
        &["show", "--tenancy", "t\u{1b}[31m"],
        &["access", "eve\u{7}"],
    ] {
        let outcome = world.run(args);
        assert_eq!(outcome.code(), 1, "{}", outcome.transcript());
        printed.push(outcome.stderr);
    }
    for text in &printed {
        assert!(!raw(text), "raw control characters in:\n{text:?}");
    }
    // They are there, escaped: `show` names Bob, the SR its title,
    // the refusal the user asked about.
    assert!(
        printed[5].contains(r"Bob\u{1b}]0;owned\u{7}"),
        "{}",
        printed[5]
    );
    assert!(
        printed[4].contains(r"disk\u{1b}[2J full\r\nforged"),
        "{}",
        printed[4]
    );
    assert!(printed[7].contains(r"no\u{1b}[2Jbody"), "{}", printed[7]);
    // The SR's title keeps its line break escaped: no forged line.
    let list = world.ok(&["sr", "list"]).stdout;
    assert!(!list.lines().any(|l| l.starts_with("forged")), "{list}");
}

/// Unicode that changes how text reads — a right-to-left override that turns
/// a name around, isolates, zero-width spaces and joiners, a line
/// separator — is escaped wherever control characters are: diagnostics,
/// plans, `show`, `access`, SR listings and refusals (issue 17 §9).
#[test]
fn text_direction_and_invisible_characters_never_reach_the_terminal_raw() {
    let world = Scratch::new();
    // `dan`'s name reads "Dan Kim" on a screen that obeys the override.
    world.write(
        "bidi.yaml",
        "tenancy: { name: bidi, csi: \"1\", admin: dan, home_region: \"ap\\u2066-seoul\\u2069-1\" }\nusers:\n  dan: { email: dan@x.example, name: \"\\u202Emik nad\", support_account: { phone: \"+1\\u200B2\", timezone: UTC } }\n  bob: { email: bob@x.example, name: \"Bob\\u200D\\u2028forged\\uFEFF\" }\nsupport_links:\n  - user: bob\n",
    );
    let hidden = |text: &str| text.chars().any(supportctl::diag::changes_how_text_reads);
    let mut printed = Vec::new();
    for args in [
        &["-vv", "plan", "bidi.yaml"][..],
        &["apply", "--auto-approve", "bidi.yaml"],
    ] {
        let outcome = world.ok(args);
        printed.push(format!("{}{}", outcome.stdout, outcome.stderr));
    }
    let title = "disk\u{202E}lluf\u{200B}";
    world.ok(&["sr", "open", "--user", "bob", "--title", title]);
    for args in [
        &["access", "--all"][..],
        &["access", "--all", "--format", "csv"],
        &["access", "bob"],
        &["sr", "list"],
        &["sr", "show", "1"],
        &["show"],
    ] {
        let outcome = world.ok(args);
        printed.push(format!("{}{}", outcome.stdout, outcome.stderr));
    }
    for args in [
        &["access", "e\u{202E}ve"][..],
        &["show", "--tenancy", "t\u{2066}x"],
    ] {
        let outcome = world.run(args);
        assert_eq!(outcome.code(), 1, "{}", outcome.transcript());
        printed.push(outcome.stderr);
    }
    // A diagnostic quotes the source line and the value.
    world.write(
        "bad.yaml",
        "tenancy: { name: bidi, csi: \"1\u{202E}2\", admin: dan }\nusers:\n  dan: { email: dan@x.example, support_account: { phone: \"1\", timezone: UTC } }\n",
    );
    let bad = world.run(&["validate", "bad.yaml"]);
    assert_eq!(bad.code(), 1, "{}", bad.transcript());
    printed.push(bad.stderr);
    for text in &printed {
        assert!(
            !hidden(text),
            "a character that changes how text reads, raw:\n{text:?}"
        );
    }
    let all = printed.concat();
    for escaped in [
        r"\u{202e}mik nad",
        r"Bob\u{200d}\u{2028}forged\u{feff}",
        r"disk\u{202e}lluf\u{200b}",
        r"e\u{202e}ve",
        r"1\u{202e}2",
    ] {
        assert!(all.contains(escaped), "{escaped} not shown escaped:\n{all}");
    }
    // The state keeps the text as written: escaping is for the eyes only.
    world.ok(&["plan", "--detailed-exitcode", "bidi.yaml"]);
}

/// SQL is parameterised everywhere: text that would break a query built by
/// pasting strings — quotes, comment markers, statement separators — goes
/// into the state and comes back byte for byte, and every table is still
/// there afterwards.
#[test]
fn sql_in_names_phones_and_titles_is_kept_as_text() {
    let hostile = [
        "Robert'); DROP TABLE users; --",
        "\" OR \"1\"=\"1",
        "x' OR '1'='1' /*",
        "%_\\ ;",
    ];
    let world = Scratch::new();
    let mut config = String::from(
        "tenancy: { name: sql, csi: \"1\", admin: dan }\nusers:\n  dan: { email: dan@x.example, support_account: { phone: \"1\", timezone: UTC } }\n",
    );
    for (i, text) in hostile.iter().enumerate() {
        let quoted = serde_json::to_string(text).expect("JSON is YAML");
        let _ = writeln!(
            config,
            "  u{i}: {{ email: u{i}@x.example, name: {quoted}, support_account: {{ phone: {quoted}, timezone: UTC }} }}"
        );
    }
    config.push_str("support_links:\n  - user: u0\n");
    world.write("sql.yaml", &config);
    apply(&world, "sql.yaml");
    for title in hostile {
        world.ok(&["sr", "open", "--user", "u0", "--title", title]);
    }
    let show = world.content();
    for (i, text) in hostile.iter().enumerate() {
        let user = show["users"]
            .as_array()
            .expect("users")
            .iter()
            .find(|u| u["id"] == format!("u{i}"))
            .expect("the user is there");
        assert_eq!(user["name"], *text);
        assert_eq!(user["support_account"]["phone"], *text);
    }
    let srs = json(&world.ok(&["sr", "list", "--format", "json"]).stdout);
    let titles: Vec<&str> = srs
        .as_array()
        .expect("a list")
        .iter()
        .map(|sr| sr["title"].as_str().expect("a title"))
        .collect();
    assert_eq!(titles, hostile);
    assert!(settled_on(&world, "sql.yaml"));
    assert_intact(&world);
    // The tables themselves.
    if world.is_postgres() {
        assert_eq!(
            postgres_tables(&world),
            STATE_TABLES,
            "every table is still there"
        );
        return;
    }
    let conn = world.sqlite();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('users', 'support_accounts', 'service_requests')",
            [],
            |r| r.get(0),
        )
        .expect("counted");
    assert_eq!(tables, 3, "every table is still there");
}

/// docs/reliability.md names the tests that hold each promise; every test
/// it names exists, so the table cannot drift from the suite.
#[test]
fn every_test_the_reliability_table_names_exists() {
    let root = crate::binary::crate_root();
    let document =
        std::fs::read_to_string(root.join("docs/reliability.md")).expect("docs/reliability.md");
    let mut named = 0;
    for cell in document.split('`').skip(1).step_by(2) {
        let Some((module, name)) = cell.rsplit_once("::") else {
            continue;
        };
        if name == "*"
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            continue;
        }
        let file = match module.strip_suffix("::tests") {
            // A unit test in a file of its own under a tests module
            // (`state::sqlite::tests::damaged` is `src/state/sqlite/tests/damaged.rs`).
            None if module.contains("::tests::") => {
                root.join(format!("src/{}.rs", module.replace("::", "/")))
            }
            // A unit test: in its module's tests file, or in its module's file.
            Some(module) => {
                let path = module.replace("::", "/");
                [
                    format!("src/{path}/tests.rs"),
                    format!("src/{path}.rs"),
                    format!("src/{path}/mod.rs"),
                ]
                .into_iter()
                .map(|file| root.join(file))
                .find(|file| file.exists())
                .unwrap_or_else(|| root.join(format!("src/{path}.rs")))
            }
            None => {
                let integration = root.join(format!("tests/it/{module}.rs"));
                if integration.exists() {
                    integration
                } else {
                    // A unit-test module of its own (`state::people_props`).
                    root.join(format!("src/{}.rs", module.replace("::", "/")))
                }
            }
        };
        let source = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("`{cell}`: cannot read {}: {e}", file.display()));
        assert!(
            source.contains(&format!("fn {name}(")),
            "docs/reliability.md names `{cell}`, which is not a test in {}",
            file.display()
        );
        named += 1;
    }
    assert!(named >= 20, "only {named} tests named");
}
