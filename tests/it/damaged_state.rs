//! A damaged state is called damaged, and reading the state never writes
//! (docs/reliability.md).
//!
//! - A database truncated to nothing, cut short or with malformed pages is
//!   reported as damaged, with what to do, by every command — never planned
//!   against as a new database, never called someone else's file — and is
//!   left as it was.
//! - `show`, `export`, `history`, `access`, `sr list|show` and `plan` open
//!   the state read-only: they work for a user who may only read the file
//!   in a folder they cannot write, on a read-only mount and on a full
//!   disk, and an older schema is read through a copy migrated in memory.
//!
//! Tests of the SQLite backend: they damage, lock, chmod and mount the
//! SQLite file and its side files (`Scratch::db`) themselves.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::binary::{Outcome, Scratch, crate_root, run, sqlite_only, supportctl};
use crate::reliability::as_unprivileged;

/// A test's scratch with the example tenancy as `acme.yaml` and a change of
/// it as `acme2.yaml`.
fn example_world() -> Scratch {
    let world = Scratch::new();
    let text = std::fs::read_to_string(crate_root().join("examples/acme-prod.yaml")).unwrap();
    world.write("acme.yaml", &text);
    world.write("acme2.yaml", &text.replace("Dan Kim", "Daniel Kim"));
    world
}

/// The example applied, with an SR and a comment.
fn world_with_history() -> Scratch {
    let world = example_world();
    world.with_history("acme.yaml");
    world
}

/// The names in the folder, sorted.
fn names_in(world: &Scratch) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(world.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every command that reads or writes the state, each as a user would run it.
const EVERY_COMMAND: &[&[&str]] = &[
    &["plan", "acme2.yaml"],
    &["plan", "--no-cache", "--format", "json", "acme2.yaml"],
    &["apply", "--auto-approve", "acme2.yaml"],
    &["show"],
    &["export"],
    &["history"],
    &["access", "--all"],
    &["sr", "list"],
    &["sr", "show", "1"],
    &["sr", "open", "--user", "bob", "--title", "Still full"],
];

/// The commands that only read, with their output on a healthy state.
const READS: &[&[&str]] = &[
    &["show"],
    &["show", "--format", "json"],
    &["export"],
    &["history", "--format", "json"],
    &["access", "--all"],
    &["sr", "list", "--format", "json"],
    &["sr", "show", "1"],
    &["plan", "--no-cache", "acme2.yaml"],
    &["plan", "acme2.yaml"],
];

/// Runs every command against the damaged database in `world`: each exits
/// 1, says the database is damaged and what to do, plans nothing, and the
/// file and the folder are as they were.
#[track_caller]
fn assert_damaged_everywhere(world: &Scratch, detail: &str) {
    let bytes = std::fs::read(&world.db).unwrap();
    let listing = names_in(world);
    for args in EVERY_COMMAND {
        let outcome = world.run(args);
        outcome.assert_code(1);
        let err = &outcome.stderr;
        assert!(
            err.contains("state database `")
                && err.contains("is damaged: ")
                && err.contains(detail),
            "expected `{detail}`:\n{}",
            outcome.transcript()
        );
        assert!(
            err.contains("restore the database from a backup") && err.contains("`-wal`"),
            "{}",
            outcome.transcript()
        );
        assert!(
            !err.contains("not a supportctl database"),
            "{}",
            outcome.transcript()
        );
        assert!(
            !outcome.stdout.contains("to add"),
            "{}",
            outcome.transcript()
        );
        assert_eq!(
            std::fs::read(&world.db).unwrap(),
            bytes,
            "{}",
            outcome.transcript()
        );
        assert_nothing_new_but_empty_sides(world, &listing, &outcome);
    }
}

/// Nothing appeared beside the database but what SQLite makes for a reader
/// that opens it in a writable folder: an empty `-wal`, and `-shm`.
#[track_caller]
fn assert_nothing_new_but_empty_sides(world: &Scratch, before: &[String], outcome: &Outcome) {
    for name in names_in(world) {
        if before.contains(&name) {
            continue;
        }
        assert!(
            name == "state.db-shm"
                || (name == "state.db-wal"
                    && std::fs::metadata(world.path(&name)).unwrap().len() == 0),
            "`{name}` appeared: {}",
            outcome.transcript()
        );
    }
}

/// The example: a database truncated to 0 bytes was taken for a new
/// one (`plan` showed everything to add, the SR history silently gone).
#[test]
fn a_database_truncated_to_nothing_is_damaged_not_a_new_one() {
    sqlite_only!();
    let world = world_with_history();
    std::fs::write(&world.db, b"").unwrap();
    assert_damaged_everywhere(&world, "it is empty (0 bytes)");
}

/// Beyond the example: cut short anywhere, or with its pages garbled, a
/// database is damaged for every command.
#[test]
fn a_database_cut_short_or_with_malformed_pages_is_damaged() {
    sqlite_only!();
    let world = world_with_history();
    let whole = std::fs::read(&world.db).unwrap();
    for cut in [whole.len() - 4096, whole.len() / 2, 5000, 64, 8] {
        std::fs::write(&world.db, &whole[..cut]).unwrap();
        assert_damaged_everywhere(&world, "it is cut short");
    }
    let mut garbled = whole.clone();
    for (i, b) in garbled[4096..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    std::fs::write(&world.db, &garbled).unwrap();
    assert_damaged_everywhere(&world, "SQLite reports: database disk image is malformed");
}

/// What each read prints on a healthy state, run as the owner.
fn reads_as_owner(world: &Scratch) -> Vec<String> {
    READS.iter().map(|args| world.ok(args).stdout).collect()
}

/// Runs every read as a user who may read the database but write nothing
/// there (`nobody`, when the tests run as root; the folder is made
/// read-only either way) and returns what each printed.
fn reads_as_reader(world: &Scratch) -> Vec<Result<String, String>> {
    as_reader(world, READS)
}

/// Runs `commands` as [`reads_as_reader`] runs the reads.
fn as_reader(world: &Scratch, commands: &[&[&str]]) -> Vec<Result<String, String>> {
    let folder = world.root().to_path_buf();
    std::fs::set_permissions(&world.db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut args_with_db = Vec::new();
    for args in commands {
        let mut full = vec!["--db".to_string(), world.db_arg()];
        full.extend(args.iter().map(|a| a.to_string()));
        args_with_db.push(full);
    }
    let mut results = Vec::new();
    for full in &args_with_db {
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let mut command = as_unprivileged(&folder, &refs);
        // After `as_unprivileged`, which opens the way to the folder.
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();
        let outcome = run(&mut command);
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        outcome.assert_no_panic();
        results.push(match outcome.code() {
            0 => Ok(outcome.stdout),
            _ => Err(outcome.transcript()),
        });
    }
    results
}

/// An auditor who may only read the database gets what its owner gets,
/// with no side files beside it (a cleanly closed database), and with a
/// write-ahead log and `-shm` left by a writer still holding it open (their
/// commits are read, not lost). Before, they got "attempt to write a
/// readonly database".
#[test]
fn reads_work_for_a_user_who_may_only_read_the_database() {
    sqlite_only!();
    let world = world_with_history();
    std::fs::set_permissions(&world.db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let expected = reads_as_owner(&world);
    // The side files the owner's reads left (an empty log: nothing in it
    // to lose) are removed, so the reader finds none at all.
    let log = world.path("state.db-wal");
    if log.exists() {
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
        std::fs::remove_file(log).unwrap();
    }
    let _ = std::fs::remove_file(world.path("state.db-shm"));
    let listing = names_in(&world);
    let got = reads_as_reader(&world);
    for ((args, want), got) in READS.iter().zip(&expected).zip(&got) {
        assert_eq!(got.as_ref(), Ok(want), "{args:?}");
    }
    assert_eq!(names_in(&world), listing, "a reader wrote nothing");
    // A command that writes says it may not, before it plans or asks.
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let writes: &[&[&str]] = &[
            &["apply", "--auto-approve", "acme2.yaml"],
            &["sr", "open", "--user", "bob", "--title", "Still full"],
        ];
        for got in as_reader(&world, writes) {
            let err = got.unwrap_err();
            assert!(
                err.contains("cannot write the state database")
                    && err.contains("it is read-only here")
                    && !err.contains("attempt to write"),
                "{err}"
            );
        }
        assert_eq!(names_in(&world), listing, "a refused writer wrote nothing");
    }

    // A writer holds the database open, and an apply's commit is still in
    // its log: the reader sees it.
    let holder = world.sqlite();
    holder.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    let count: i64 = holder
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(count > 0);
    world.ok(&["apply", "--auto-approve", "acme2.yaml"]);
    let log = world.path("state.db-wal");
    assert!(
        std::fs::metadata(&log).unwrap().len() > 0,
        "the commit is in the log"
    );
    for side in ["state.db-wal", "state.db-shm"] {
        std::fs::set_permissions(world.path(side), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let expected = reads_as_owner(&world);
    assert!(expected[0].contains("Daniel Kim"));
    let got = reads_as_reader(&world);
    for ((args, want), got) in READS.iter().zip(&expected).zip(&got) {
        assert_eq!(got.as_ref(), Ok(want), "{args:?}");
    }
    // Where the log cannot be read without its `-shm`, that is said: no
    // "attempt to write", and nothing stale is shown.
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        std::fs::set_permissions(
            world.path("state.db-shm"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        for got in reads_as_reader(&world) {
            let err = got.unwrap_err();
            assert!(
                err.contains("cannot read")
                    && err.contains("without writing beside it")
                    && !err.contains("attempt to write"),
                "{err}"
            );
        }
    }
    drop(holder);
}

/// A database at an older schema version is read by a command that reads
/// through a copy migrated in memory; the file is left byte for byte.
#[test]
fn a_read_of_an_older_database_migrates_a_copy_in_memory_and_leaves_the_file() {
    sqlite_only!();
    // A database as an older supportctl left it: the first three schema
    // versions, with a tenancy in it.
    let world = example_world();
    {
        let conn = world.sqlite();
        for (version, migration) in supportctl::state::MIGRATIONS.iter().take(3).enumerate() {
            conn.execute_batch(migration).unwrap();
            conn.pragma_update(None, "user_version", version as i64 + 1)
                .unwrap();
        }
        conn.execute_batch(
            "BEGIN;
             INSERT INTO tenancies (name, csi, home_region, admin, serial) VALUES ('acme', '20817431', NULL, 'dankim', 1);
             INSERT INTO users (tenancy, id, email, name) VALUES ('acme', 'dankim', 'dan.kim@acme.example', 'Dan Kim');
             INSERT INTO support_accounts (tenancy, user, phone, timezone) VALUES ('acme', 'dankim', '+82 2 555 0100', 'Asia/Seoul');
             COMMIT;",
        )
        .unwrap();
    }
    let bytes = std::fs::read(&world.db).unwrap();
    let shown = world.ok(&["show", "--format", "json"]).stdout;
    assert!(shown.contains("dan.kim@acme.example"), "{shown}");
    for args in [
        &["access", "--all"][..],
        &["history"],
        &["sr", "list"],
        &["plan", "acme2.yaml"],
    ] {
        let outcome = world.run(args);
        assert!(
            matches!(outcome.code(), 0 | 3),
            "{args:?} reads an older database: {}",
            outcome.transcript()
        );
        assert!(
            !outcome.stderr.contains("damaged"),
            "{}",
            outcome.transcript()
        );
        assert_eq!(
            std::fs::read(&world.db).unwrap(),
            bytes,
            "{args:?} wrote the file"
        );
    }
    // A command that writes migrates the file, and reads the same state.
    world.ok(&[
        "sr",
        "open",
        "--user",
        "dankim",
        "--title",
        "After the upgrade",
    ]);
    assert_ne!(std::fs::read(&world.db).unwrap(), bytes);
    let after: serde_json::Value =
        serde_json::from_str(&world.ok(&["show", "--format", "json"]).stdout).unwrap();
    let before: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(after["users"], before["users"]);
}

/// A small tmpfs mounted for one test at a folder of its own, unmounted
/// (then the folder removed) when dropped.
struct Mount(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Mount {
    /// A tmpfs of `size` at a new folder, or `None` when this process may
    /// not mount (not root, or no `mount` privilege in this container).
    fn tmpfs(size: &str) -> Option<Mount> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let point = dir.path().join("mnt");
        std::fs::create_dir(&point).unwrap();
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&point)
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Mount(point, dir))
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Reads work on a read-only mount and on a full disk, where SQLite cannot
/// make the `-shm` file it reads through: they read the database from
/// memory instead. An apply there fails with a clear message. Needs root
/// to mount a tmpfs; elsewhere it says so and checks nothing.
#[test]
fn reads_work_on_a_read_only_mount_and_a_full_disk() {
    let Some(mount) = Mount::tmpfs("4m") else {
        eprintln!(
            "reads_work_on_a_read_only_mount_and_a_full_disk: cannot mount a tmpfs here; not checked"
        );
        return;
    };
    let world = example_world();
    // The SQLite file on the mount, not the scratch's own.
    let db = mount.0.join("state.db");
    let on_mount = |args: &[&str]| {
        let mut command = supportctl(world.root(), ["--db"]);
        command.arg(&db).args(args);
        let outcome = run(&mut command);
        outcome.assert_no_panic();
        outcome
    };
    on_mount(&["apply", "--auto-approve", "acme.yaml"]).assert_code(0);
    on_mount(&[
        "sr",
        "open",
        "--user",
        "bob",
        "--title",
        "Disk full on db-1",
    ])
    .assert_code(0);
    let expected: Vec<String> = READS
        .iter()
        .map(|args| {
            let outcome = on_mount(args);
            outcome.assert_code(0);
            outcome.stdout
        })
        .collect();
    // Clean: no log or shared memory left from those reads.
    for side in ["state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(mount.0.join(side));
    }

    mount.remount("ro");
    for (args, want) in READS.iter().zip(&expected) {
        let outcome = on_mount(args);
        assert_eq!(
            (outcome.code(), &outcome.stdout),
            (0, want),
            "read-only mount: {}",
            outcome.transcript()
        );
    }
    // Read from memory, since SQLite could not make its `-shm` file here.
    let shown = on_mount(&["-vv", "show"]);
    assert!(
        shown.stderr.contains("database read into memory"),
        "{}",
        shown.transcript()
    );
    let apply = on_mount(&["apply", "--auto-approve", "acme2.yaml"]);
    apply.assert_code(1);
    assert!(
        apply.stderr.contains("cannot write the state database")
            && apply.stderr.contains("it is read-only here"),
        "{}",
        apply.transcript()
    );

    mount.remount("rw");
    // Fill the disk to its last byte.
    let filler = mount.0.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    {
        use std::io::Write as _;
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        while file.write(&[0]).is_ok_and(|n| n == 1) {}
    }
    drop(file);
    let shown = on_mount(&["-vv", "show"]);
    assert!(
        shown.stderr.contains("database read into memory"),
        "{}",
        shown.transcript()
    );
    for (args, want) in READS.iter().zip(&expected) {
        let outcome = on_mount(args);
        assert_eq!(
            (outcome.code(), &outcome.stdout),
            (0, want),
            "full disk: {}",
            outcome.transcript()
        );
    }
    let listing = |p: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert!(
        listing(&mount.0)
            .iter()
            .all(|n| !n.contains("supportctl-tmp")),
        "{:?}",
        listing(&mount.0)
    );
}
