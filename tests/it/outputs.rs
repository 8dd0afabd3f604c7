//! supportctl never destroys a file it does not own (docs/reliability.md).
//!
//! - Every output — `plan -o`, `watch --status-file`, `man --out`, `export
//!   --out` — refuses the state database, its `-wal`/`-shm`, the parse cache
//!   and the config set, however the path is spelled, and refuses to
//!   replace a file of another kind; nothing is written, nothing is left.
//! - Folders `export --out` makes are 0700 and its files 0600, whatever the
//!   umask.
//! - Files read that are not config (the parse cache, a saved plan, the
//!   status file) are regular files within a bound: a symlink to
//!   `/dev/zero`, a FIFO or a huge file is refused at once, never read.
//!
//! The state's files here are the SQLite backend's (`state.db`, its
//! `-wal`/`-shm`/`-journal`, and the parse cache beside it), named as a user
//! would name them.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::binary::{Outcome, Scratch, copy_dir, crate_root, run, supportctl};

/// A test's scratch with the example tenancy copied in as `acme.yaml` (one
/// file) and `set/` (a folder).
fn example_world() -> Scratch {
    let world = Scratch::new();
    let example = crate_root().join("examples");
    std::fs::copy(example.join("acme-prod.yaml"), world.path("acme.yaml")).unwrap();
    copy_dir(&example.join("acme-prod"), &world.path("set"));
    world
}

/// Every file under the folder with its bytes and mode, side files of a
/// database included: what a refusal must leave as it was.
fn files_of(world: &Scratch) -> Vec<(PathBuf, Vec<u8>, u32)> {
    let mut files = Vec::new();
    walk(world.root(), &mut files);
    files.sort();
    files
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>, u32)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            walk(&path, out);
        } else if meta.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            out.push((path, bytes, meta.permissions().mode() & 0o777));
        } else {
            out.push((path, Vec::new(), meta.permissions().mode() & 0o777));
        }
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// The state after an apply, an SR and a comment: what `plan -o state.db`
/// once replaced with a plan.
fn world_with_history() -> Scratch {
    let world = example_world();
    world.with_history("acme.yaml");
    world
}

#[track_caller]
fn assert_refused(
    world: &Scratch,
    outcome: &Outcome,
    before: &[(PathBuf, Vec<u8>, u32)],
    says: &str,
) {
    outcome.assert_code(1);
    assert!(
        outcome.stderr.contains("cannot write") && outcome.stderr.contains(says),
        "expected `{says}`:\n{}",
        outcome.transcript()
    );
    assert_eq!(files_of(world), before, "{}", outcome.transcript());
}

/// The example and its class: `plan -o` onto the database (however
/// named), its side files, the parse cache or a file of the config set is
/// refused before anything is written, and the state with its SRs and
/// journal is as it was.
#[test]
fn plan_o_never_writes_over_the_state_its_side_files_the_cache_or_the_config() {
    let world = world_with_history();
    world.ok(&["plan", "acme.yaml"]); // the parse cache exists now
    let cache = world.beside(".parse-cache");
    assert!(cache.exists(), "{}", cache.display());
    let cache = cache.to_str().unwrap().to_owned();
    let absolute = world.db.to_str().unwrap().to_owned();
    // The SQLite file and its side files; a state on a server has none.
    let mut state_files = Vec::new();
    if !world.is_postgres() {
        std::os::unix::fs::symlink(&world.db, world.path("link.db")).unwrap();
        std::fs::hard_link(&world.db, world.path("hard.db")).unwrap();
        state_files = vec![
            ("state.db", "acme.yaml", "it is the state database"),
            ("./state.db", "acme.yaml", "it is the state database"),
            ("sub/../state.db", "acme.yaml", "it is the state database"),
            (absolute.as_str(), "acme.yaml", "it is the state database"),
            ("link.db", "acme.yaml", "it is the state database"),
            ("hard.db", "acme.yaml", "it is the state database"),
            ("state.db-wal", "acme.yaml", "write-ahead log"),
            ("state.db-shm", "acme.yaml", "shared-memory file"),
            ("state.db-journal", "acme.yaml", "rollback journal"),
        ];
    }
    std::fs::create_dir(world.path("sub")).unwrap();
    let before = files_of(&world);
    for (out, config, says) in state_files.into_iter().chain([
        (cache.as_str(), "acme.yaml", "it is the parse cache"),
        ("acme.yaml", "acme.yaml", "it is the config set"),
        (
            "set/approvals.yaml",
            "set",
            "a config file of the config set",
        ),
        ("set/new.yaml", "set", "a config file of the config set"),
        (
            "set/users/new.yml",
            "set",
            "a config file of the config set",
        ),
    ]) {
        let outcome = world.run(&["plan", "-o", out, config]);
        assert_refused(&world, &outcome, &before, says);
        assert_eq!(outcome.stdout, "", "refused before planning");
    }
    // The state is whole: the SR, its comment and the journal are there.
    let srs = world.ok(&["sr", "list", "--format", "json"]).stdout;
    assert!(
        srs.contains("Disk full on db-1") && srs.contains("Looking."),
        "{srs}"
    );
    assert!(world.ok(&["history"]).stdout.contains("serial 1"));
    // A plan beside the config set, not part of it, is fine.
    world.ok(&["plan", "-o", "set/plan.json", "set"]);
}

/// `watch --status-file` onto the database or the config set is refused at
/// once, before watching: nothing is written, and it does not keep running.
#[test]
fn watch_status_file_never_writes_over_the_state_or_the_config() {
    let world = world_with_history();
    let before = files_of(&world);
    // The SQLite file and its side files; a state on a server has none.
    let state_files = if world.is_postgres() {
        vec![]
    } else {
        vec![
            ("state.db", "acme.yaml", "it is the state database"),
            ("state.db-wal", "acme.yaml", "write-ahead log"),
        ]
    };
    for (status, config, says) in state_files.into_iter().chain([
        ("acme.yaml", "acme.yaml", "it is the config set"),
        ("set/status.yaml", "set", "a config file of the config set"),
    ]) {
        let outcome = world.run(&["watch", "--status-file", status, config]);
        assert_refused(&world, &outcome, &before, says);
        assert!(
            outcome.elapsed < Duration::from_secs(10),
            "it refused at once"
        );
    }
}

/// An output replaces only a file of its own kind, or an empty one: never
/// someone's notes, a folder or a FIFO, for `plan -o`, `watch
/// --status-file` and `man --out` alike.
#[test]
fn an_output_replaces_only_its_own_kind_of_file() {
    let world = example_world();
    world.write("notes.txt", "my notes, not a plan\n");
    world.write("folder/keep", "x");
    mkfifo(&world.path("pipe"));
    world.write("man/supportctl-plan.1", "my own page, not roff\n");
    let before = files_of(&world);
    for (args, says) in [
        (
            &["plan", "-o", "notes.txt", "acme.yaml"][..],
            "it exists and is not a saved plan",
        ),
        (
            &["plan", "-o", "folder", "acme.yaml"],
            "it is a folder, not a regular file",
        ),
        (
            &["plan", "-o", "pipe", "acme.yaml"],
            "it is a named pipe (FIFO), not a regular file",
        ),
        (
            &["plan", "-o", "/dev/null", "acme.yaml"],
            "it is a device, not a regular file",
        ),
        (
            &["watch", "--status-file", "notes.txt", "acme.yaml"],
            "it exists and is not a watcher status file",
        ),
        (
            &["man", "--out", "man"],
            "it exists and is not a manual page",
        ),
    ] {
        let outcome = world.run(args);
        assert_refused(&world, &outcome, &before, says);
    }
    // Its own kind, and an empty file (as `mktemp` makes), are replaced.
    world.ok(&["plan", "-o", "a.plan", "acme.yaml"]);
    world.ok(&["plan", "-o", "a.plan", "acme.yaml"]);
    world.write("empty", "");
    world.ok(&["plan", "-o", "empty", "acme.yaml"]);
    assert!(
        std::fs::read_to_string(world.path("empty"))
            .unwrap()
            .contains("\"format_version\"")
    );
    std::fs::remove_file(world.path("man/supportctl-plan.1")).unwrap();
    world.ok(&["man", "--out", "man"]);
    world.ok(&["man", "--out", "man"]);
    // No temporary file is left behind by any of it.
    let left: Vec<_> = files_of(&world)
        .into_iter()
        .filter(|(p, _, _)| p.to_string_lossy().contains("supportctl-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `man --out` into a folder where the database is named like a page: it
/// is refused, and no page is written.
#[test]
fn man_out_never_writes_over_the_state() {
    let world = example_world();
    std::fs::create_dir(world.path("out")).unwrap();
    let mut apply = supportctl(
        world.root(),
        [
            "--db",
            "out/supportctl.1",
            "apply",
            "--auto-approve",
            "acme.yaml",
        ],
    );
    run(&mut apply).assert_code(0);
    let before = files_of(&world);
    let outcome = run(&mut supportctl(
        world.root(),
        ["--db", "out/supportctl.1", "man", "--out", "out"],
    ));
    assert_refused(&world, &outcome, &before, "it is the state database");
    let outcome = run(&mut supportctl(
        world.root(),
        [
            "--db",
            "out/supportctl.1",
            "man",
            "--out",
            "out/supportctl.1-wal",
        ],
    ));
    assert_refused(&world, &outcome, &before, "write-ahead log");
}

/// `export --out` makes its folders 0700 and its files 0600 whatever the
/// umask — a permissive one (0) and one that would leave the owner unable
/// to write (0277) alike.
#[test]
fn export_folders_and_files_are_private_whatever_the_umask() {
    let world = example_world();
    world.ok(&["apply", "--auto-approve", "acme.yaml"]);
    for (umask, out) in [("0000", "open"), ("0277", "strict"), ("0022", "usual")] {
        let program = env!("CARGO_BIN_EXE_supportctl");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(program)
            .arg("--db")
            .arg(world.db_arg())
            .args(["export", "--out", &format!("{out}/nested/copy")])
            .current_dir(world.root());
        crate::binary::fixed_environment(&mut command);
        run(&mut command).assert_code(0);
        let mut dirs = vec![world.path(out)];
        while let Some(dir) = dirs.pop() {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "umask {umask}: {}", dir.display());
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                    assert_eq!(mode, 0o600, "umask {umask}: {}", path.display());
                }
            }
        }
    }
    // An export into the SQLite state's side files is refused too.
    if world.is_postgres() {
        return;
    }
    let before = files_of(&world);
    let outcome = world.run(&["export", "--out", "state.db-wal"]);
    assert_refused(&world, &outcome, &before, "write-ahead log");
}

/// The examples: a parse cache that is a symlink to `/dev/zero`
/// (it grew to 2 GB in 5 s) or a FIFO (it hung) is not read, and the plan is
/// the plan; the same for the status file and a saved plan; a file over its
/// bound is refused without being read.
#[test]
fn files_read_that_are_not_config_are_regular_and_bounded() {
    let world = example_world();
    world.ok(&["apply", "--auto-approve", "acme.yaml"]);
    world.write(
        "acme2.yaml",
        &std::fs::read_to_string(world.path("acme.yaml"))
            .unwrap()
            .replace("Dan Kim", "Daniel Kim"),
    );
    let expected = world.ok(&["plan", "--no-cache", "acme2.yaml"]).stdout;
    let cache = world.path("state.db.parse-cache");
    let place = |make: &dyn Fn(&Path)| {
        let _ = std::fs::remove_file(&cache);
        make(&cache);
    };
    let sparse = |path: &Path, head: &[u8], len: u64| {
        std::fs::write(path, head).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(len)
            .unwrap();
    };
    for (what, make) in [
        (
            "a symlink to /dev/zero",
            &(|p: &Path| std::os::unix::fs::symlink("/dev/zero", p).unwrap()) as &dyn Fn(&Path),
        ),
        ("a FIFO", &|p: &Path| mkfifo(p)),
        ("a sparse file of 1 GiB and a byte", &|p: &Path| {
            sparse(p, b"supportctl parse cache\n", (1 << 30) + 1)
        }),
    ] {
        place(make);
        let outcome = world.run(&["plan", "acme2.yaml"]);
        outcome.assert_code(0);
        assert_eq!(outcome.stdout, expected, "{what}");
        assert!(
            outcome.elapsed < Duration::from_secs(10),
            "{what}: {:?}",
            outcome.elapsed
        );
    }

    // The status file.
    for (what, make, says) in [
        (
            "/dev/zero",
            &(|p: &Path| std::os::unix::fs::symlink("/dev/zero", p).unwrap()) as &dyn Fn(&Path),
            "it is a device, not a regular file",
        ),
        (
            "a FIFO",
            &|p: &Path| mkfifo(p),
            "it is a named pipe (FIFO), not a regular file",
        ),
        (
            "2 MiB",
            &|p: &Path| sparse(p, b"{", 2 << 20),
            "over the limit of 1048576 bytes",
        ),
    ] {
        let status = world.path("status.json");
        let _ = std::fs::remove_file(&status);
        make(&status);
        let outcome = world.run(&["status", "--status-file", "status.json"]);
        outcome.assert_code(1);
        assert!(
            outcome.stderr.contains(says),
            "{what}: {}",
            outcome.transcript()
        );
    }

    // A saved plan over its bound is refused before it is read; a FIFO or a
    // device is not taken for a plan (and, as a config path, is an error).
    sparse(&world.path("huge.plan"), b"{", (2 << 30) + 1);
    let outcome = world.run(&["apply", "--auto-approve", "huge.plan"]);
    outcome.assert_code(1);
    assert!(
        outcome.stderr.contains("cannot read the plan")
            && outcome
                .stderr
                .contains("over the limit of 2147483648 bytes"),
        "{}",
        outcome.transcript()
    );
    mkfifo(&world.path("fifo.plan"));
    for path in ["fifo.plan", "/dev/zero"] {
        let outcome = world.run(&["apply", "--auto-approve", path]);
        outcome.assert_code(1);
        assert!(
            outcome.stderr.contains("error[E002]"),
            "{}",
            outcome.transcript()
        );
    }
}
