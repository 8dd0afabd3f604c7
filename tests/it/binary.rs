//! Running the built `supportctl`: a fixed environment, a time limit, and
//! everything it printed.
//!
//! A test that hangs would stall the whole suite, so every run has a deadline:
//! past it the child is killed and the test fails, naming the command.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The day every run sees as today (`SUPPORTCTL_TODAY`), so that expiries in
/// the fixtures read the same on any day.
pub const TODAY: &str = "2026-11-24";

/// How long one run may take before it counts as a hang.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The root of the crate: `examples/`, `schema/` and `tests/` live here.
pub fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/data`, the fixtures.
pub fn data_dir() -> PathBuf {
    crate_root().join("tests").join("data")
}

/// A `supportctl` command in the test environment, run from `dir`.
pub fn supportctl<I, S>(dir: &Path, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_supportctl"));
    command.args(args).current_dir(dir);
    fixed_environment(&mut command);
    command
}

/// The environment every run gets: a fixed day, no colour, no logging or
/// database settings leaking in from the developer's shell.
pub fn fixed_environment(command: &mut Command) {
    command
        .env("NO_COLOR", "1")
        .env("SUPPORTCTL_TODAY", TODAY)
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .env_remove("SUPPORTCTL_DB")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("COLUMNS");
}

/// What a finished run printed and how it ended.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// The command as run, for failure messages.
    pub shown: String,
}

impl Outcome {
    /// The exit code; a test fails when the process was killed by a signal.
    pub fn code(&self) -> i32 {
        match self.status.code() {
            Some(code) => code,
            None => panic!(
                "`{}` was killed by a signal ({:?})\n--- stderr ---\n{}",
                self.shown, self.status, self.stderr
            ),
        }
    }

    /// Asserts the exit code, showing everything printed when it differs.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code(),
            expected,
            "`{}` exited {}, expected {expected}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.shown,
            self.code(),
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that nothing printed is a Rust panic.
    #[track_caller]
    pub fn assert_no_panic(&self) -> &Self {
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "`{}` panicked:\n{}",
            self.shown,
            self.stderr
        );
        self
    }

    /// The run as a snapshot: the command, the exit code, then stderr and
    /// stdout (each only when something was printed).
    pub fn transcript(&self) -> String {
        let mut text = format!("$ {}\nexit code: {}\n", self.shown, self.code());
        for (name, stream) in [("stderr", &self.stderr), ("stdout", &self.stdout)] {
            if !stream.is_empty() {
                text.push_str(&format!("--- {name} ---\n{stream}"));
                if !stream.ends_with('\n') {
                    text.push_str("\n(no final newline)\n");
                }
            }
        }
        text
    }
}

/// Runs `command` with no input, collecting what it prints; fails the test if
/// it is still running after [`DEADLINE`].
pub fn run(command: &mut Command) -> Outcome {
    let shown = show(command);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{shown}`: {e}"));
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let status = wait_or_kill(&mut child, &shown, started);
    let collect = |handle: Option<JoinHandle<Vec<u8>>>| {
        handle
            .map(|h| h.join().expect("the reader thread ended"))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    };
    Outcome {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
        elapsed: started.elapsed(),
        shown,
    }
}

/// Waits for `child`, killing it and failing the test once [`DEADLINE`] passes.
pub fn wait_or_kill(child: &mut Child, shown: &str, started: Instant) -> ExitStatus {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if started.elapsed() > DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`{shown}` did not finish within {} s: it hangs (killed it)",
                    DEADLINE.as_secs()
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("cannot wait for `{shown}`: {e}"),
        }
    }
}

fn drain(mut stream: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        bytes
    })
}

/// `supportctl ARGS…` as a person would type it, for messages and snapshots.
fn show(command: &Command) -> String {
    let program = Path::new(command.get_program())
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut shown = if program == "supportctl" {
        program
    } else {
        command.get_program().to_string_lossy().into_owned()
    };
    for arg in command.get_args() {
        shown.push(' ');
        shown.push_str(&arg.to_string_lossy());
    }
    shown
}

/// A test's temporary directory and the database in it (`state.db`): what
/// every test world is built on. Removed when dropped.
pub struct Scratch {
    dir: tempfile::TempDir,
    pub db: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = dir.path().join("state.db");
        Scratch { dir, db }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    /// Writes `text` to `relative`, making its folders.
    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("a folder for the file");
        }
        std::fs::write(&path, text).expect("the file is written");
        path
    }
}

impl Scratch {
    /// `supportctl --db DB ARGS`, from the directory, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = supportctl(self.root(), ["--db"]);
        command.arg(&self.db).args(args);
        command
    }

    /// Runs `supportctl --db DB ARGS`, which must not panic.
    pub fn run(&self, args: &[&str]) -> Outcome {
        let outcome = run(&mut self.command(args));
        outcome.assert_no_panic();
        outcome
    }

    /// Runs, and asserts exit 0.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Outcome {
        let outcome = self.run(args);
        outcome.assert_code(0);
        outcome
    }
}

/// Copies a directory tree (files and folders only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a folder");
    for entry in std::fs::read_dir(from).expect("a readable folder") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("a copied file");
        }
    }
}

/// Asserts that bash reads the script at `path` without a syntax error
/// (`bash -n`); `what` names it in the failure.
#[track_caller]
pub fn assert_bash_syntax(path: &Path, what: &str) {
    let check = Command::new("bash")
        .arg("-n")
        .arg(path)
        .output()
        .expect("bash runs");
    assert!(
        check.status.success(),
        "{what}: bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}
