//! Running the built `supportctl`: a fixed environment, one deadline, and
//! everything it printed; [`Scratch`], the folder and state the tests that
//! run commands against a state are built on; and [`Dice`], the randomness
//! of the tests that are not property tests.
//!
//! A test that hangs would stall the whole suite, so every run has a deadline:
//! past it the child is killed and the test fails, naming the command.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::io::{Read, Write as _};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proptest::arbitrary::any;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngSeed, TestRunner};
use serde_json::Value;

/// The day every run sees as today (`SUPPORTCTL_TODAY`), so that expiries in
/// the fixtures read the same on any day.
pub const TODAY: &str = "2026-11-24";

/// How long anything a test waits for may take before it counts as a hang:
/// a run of the binary, a line from a watcher, a state polled for. The one
/// deadline of the suite, generous since the machine may be busy with the
/// other tests: only a test that fails waits it out.
pub const DEADLINE: Duration = Duration::from_secs(60);

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
/// database settings leaking in from the developer's shell, a cache folder
/// of the tests' own.
pub fn fixed_environment(command: &mut Command) {
    command
        .env("NO_COLOR", "1")
        .env("SUPPORTCTL_TODAY", TODAY)
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .env_remove("SUPPORTCTL_DB")
        // The files kept for a PostgreSQL state go under `target/`, never
        // in the developer's own cache folder (a `Scratch` gives its own).
        .env(
            "XDG_CACHE_HOME",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("cache"),
        )
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

    /// Asserts the exit code, and hands the outcome on:
    /// `scratch.run(args).expect(2).stdout`.
    #[track_caller]
    pub fn expect(self, expected: i32) -> Outcome {
        self.assert_code(expected);
        self
    }

    /// Asserts that the run did not end in a Rust panic: nothing printed is
    /// one, and the exit code is not a panic's (101).
    #[track_caller]
    pub fn assert_no_panic(&self) -> &Self {
        assert!(
            self.status.code() != Some(101)
                && !self.stderr.contains("panicked")
                && !self.stderr.contains("RUST_BACKTRACE"),
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
    start(command).finish()
}

/// A started run whose output is being collected: for runs that overlap,
/// or that a test kills.
pub struct Running {
    pub child: Child,
    shown: String,
    started: Instant,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

/// Starts `command` with no input, collecting what it prints.
pub fn start(command: &mut Command) -> Running {
    start_with(command, Stdio::null())
}

/// Starts `command` with `stdin`, collecting what it prints.
fn start_with(command: &mut Command, stdin: Stdio) -> Running {
    let shown = show(command);
    command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{shown}`: {e}"));
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    Running {
        child,
        shown,
        started,
        stdout,
        stderr,
    }
}

impl Running {
    /// Waits for the end (killing it and failing the test once [`DEADLINE`]
    /// has passed since it started) and gives what it printed.
    pub fn finish(mut self) -> Outcome {
        let status = wait_or_kill(&mut self.child, &self.shown, self.started);
        let collect = |handle: Option<JoinHandle<Vec<u8>>>| {
            handle
                .map(|h| h.join().expect("the reader thread ended"))
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default()
        };
        Outcome {
            status,
            stdout: collect(self.stdout.take()),
            stderr: collect(self.stderr.take()),
            elapsed: self.started.elapsed(),
            shown: self.shown,
        }
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

/// The backend the state of the tests is on: `SUPPORTCTL_TEST_BACKEND`,
/// `sqlite` (the default) or `postgres` (issue 19: a database of its own
/// for each [`Scratch`] on the test process's PostgreSQL server,
/// `pg_server::shared`). Read by [`Scratch::new`], the one place that
/// picks it, and by [`sqlite_only!`]. CI runs the suite on both
/// (`.ci/run`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend `SUPPORTCTL_TEST_BACKEND` names; a test fails on any
    /// other value rather than run on a backend nobody asked for.
    pub fn current() -> Backend {
        match std::env::var("SUPPORTCTL_TEST_BACKEND").as_deref() {
            Err(std::env::VarError::NotPresent) | Ok("" | "sqlite") => Backend::Sqlite,
            Ok("postgres") => Backend::Postgres,
            Ok(other) => panic!("SUPPORTCTL_TEST_BACKEND={other}: neither sqlite nor postgres"),
            Err(e) => panic!("SUPPORTCTL_TEST_BACKEND: {e}"),
        }
    }
}

/// Ends a test early (it passes) when the suite runs on PostgreSQL
/// ([`Backend::current`]): for a test of the SQLite backend itself — one
/// that reads, damages or names the file [`Scratch::db`] (its bytes, its
/// side files, its modes), or opens it ([`Scratch::sqlite`]). Put it first
/// in the test, before its [`Scratch`], so that no database is made for
/// nothing:
///
/// ```ignore
/// #[test]
/// fn a_truncated_database_is_reported_as_damaged() {
///     sqlite_only!();
///     let world = Scratch::new();
///     …
/// }
/// ```
///
/// The test passes without running: say in its name or comment what it
/// holds for SQLite, and give the PostgreSQL backend its own test of the
/// same promise where there is one (issue 19 §4).
macro_rules! sqlite_only {
    () => {
        if $crate::binary::Backend::current() == $crate::binary::Backend::Postgres {
            eprintln!("skipped on PostgreSQL: a test of the SQLite file itself");
            return;
        }
    };
}
pub(crate) use sqlite_only;

/// A test's temporary folder and the state its commands run against, with
/// the day they see as today: what every test that runs commands against a
/// state is built on. Removed when dropped.
///
/// The state's location comes from one place, [`Scratch::db_arg`]: every
/// command made here is given it as `--db`. On SQLite (the default, see
/// [`Backend`]) that is the file `state.db` in the folder, [`Scratch::db`];
/// on PostgreSQL it is the URL of a database made for this scratch on the
/// shared test server, dropped with it. A test that reads, damages or
/// names the SQLite file itself (its bytes, its side files, its modes) is
/// a test of the SQLite backend, and says so with [`sqlite_only!`].
pub struct Scratch {
    dir: tempfile::TempDir,
    /// The SQLite file that holds the state (`state.db` in the folder); on
    /// PostgreSQL, a path nothing writes.
    pub db: PathBuf,
    /// On PostgreSQL: the database on the shared server.
    postgres: Option<PgDatabase>,
    /// The user's cache folder every command is given (`XDG_CACHE_HOME`),
    /// outside [`Scratch::root`]: where the files [`Scratch::beside`] names
    /// go for a state on a server, and never the developer's own.
    cache_home: tempfile::TempDir,
    today: RefCell<String>,
}

/// Every row of every table outside PostgreSQL's own schemas, as JSON
/// lines, tables and rows in order: a database's content, to compare.
fn postgres_rows(client: &mut postgres::Client) -> Vec<u8> {
    let tables = client
        .query(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM \
             information_schema.tables WHERE table_schema NOT IN ('pg_catalog', \
             'information_schema') ORDER BY 1",
            &[],
        )
        .expect("the tables are listed");
    let mut out = String::new();
    for table in tables {
        let name: String = table.get(0);
        out.push_str(&name);
        out.push('\n');
        let rows = client
            .query(
                &format!("SELECT row_to_json(t)::text AS j FROM {name} t ORDER BY j"),
                &[],
            )
            .unwrap_or_else(|e| panic!("{name} is read: {e}"));
        for row in rows {
            out.push_str(row.get::<_, &str>(0));
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// A [`Scratch`]'s state on PostgreSQL.
struct PgDatabase {
    url: String,
    /// The database [`Scratch::new`] made on the shared server, and drops;
    /// `None` for a URL given to [`Scratch::at`].
    made: Option<(&'static crate::pg_server::PgServer, String)>,
}

impl Scratch {
    /// A scratch on the backend of this run ([`Backend::current`]).
    pub fn new() -> Scratch {
        Scratch::with_backend(Backend::current())
    }

    /// A scratch on `backend`, whatever this run's: for the tests of the
    /// switch itself, and for a test that compares the two backends.
    pub fn with_backend(backend: Backend) -> Scratch {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = dir.path().join("state.db");
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                // Asked for by name: no PostgreSQL is a failure, not a skip.
                let server = crate::pg_server::shared().unwrap_or_else(|| {
                    panic!("SUPPORTCTL_TEST_BACKEND=postgres, and no PostgreSQL server starts")
                });
                let name = server.create_database_name();
                let url = server.url(&name);
                Some(PgDatabase {
                    url,
                    made: Some((server, name)),
                })
            }
        };
        Scratch {
            dir,
            db,
            postgres,
            cache_home: tempfile::tempdir().expect("a temporary cache folder"),
            today: RefCell::new(TODAY.to_owned()),
        }
    }

    /// A scratch whose state is the PostgreSQL database at `url`, whatever
    /// this run's backend, left as it is when dropped: a second machine on
    /// another scratch's state (`Scratch::at(first.db_arg())`), or a
    /// database made by a test (another role, another password).
    pub fn at(url: String) -> Scratch {
        let mut scratch = Scratch::with_backend(Backend::Sqlite);
        scratch.postgres = Some(PgDatabase { url, made: None });
        scratch
    }

    /// Whether the state is on PostgreSQL ([`Backend`]).
    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// The database [`Scratch::new`] made on the shared PostgreSQL server,
    /// as a client of its superuser, to inspect what no command shows.
    pub fn postgres_client(&self) -> postgres::Client {
        match self.postgres.as_ref().and_then(|d| d.made.as_ref()) {
            Some((server, name)) => server.client(name),
            None => panic!(
                "postgres_client: no database made by this scratch (on SQLite, or Scratch::at)"
            ),
        }
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

    /// Where the state is, as `--db` (or `SUPPORTCTL_DB`) takes it: the one
    /// place that says which state the tests run against (the SQLite file,
    /// or the PostgreSQL database's URL).
    pub fn db_arg(&self) -> String {
        match &self.postgres {
            Some(database) => database.url.clone(),
            None => arg(&self.db).to_owned(),
        }
    }

    /// [`Scratch::db_arg`] spelled from `dir`, a folder inside this one (or
    /// this one): for a command line that a snapshot shows, which must hold
    /// no temporary path. On PostgreSQL, the URL, which does hold one (the
    /// socket's folder): [`Scratch::as_snapshot`] spells it as the SQLite
    /// file.
    pub fn db_arg_from(&self, dir: &Path) -> String {
        match &self.postgres {
            Some(database) => database.url.clone(),
            None => self.sqlite_arg_from(dir),
        }
    }

    /// The SQLite file [`Scratch::db`] spelled from `dir`, inside this folder.
    fn sqlite_arg_from(&self, dir: &Path) -> String {
        let inside = dir
            .strip_prefix(self.root())
            .unwrap_or_else(|_| panic!("{} is not inside the scratch folder", dir.display()));
        let up = "../".repeat(inside.components().count());
        let name = self
            .db
            .strip_prefix(self.root())
            .expect("the database is inside");
        format!("{up}{}", arg(name))
    }

    /// `outcome` of a command run from `dir` with [`Scratch::db_arg_from`],
    /// with the state's URL (in its command line and in what it printed)
    /// spelled as the SQLite file: one snapshot for both backends, holding
    /// no temporary path. On SQLite, `outcome` as it is.
    pub fn as_snapshot(&self, mut outcome: Outcome, dir: &Path) -> Outcome {
        if let Some(database) = &self.postgres {
            let file = self.sqlite_arg_from(dir);
            for text in [&mut outcome.shown, &mut outcome.stdout, &mut outcome.stderr] {
                *text = text.replace(&database.url, &file);
            }
        }
        outcome
    }

    /// The file supportctl keeps with the state under `suffix` by default
    /// (`.status.json`: the watcher's status file, `.parse-cache`): beside
    /// the SQLite file, or for a state on a server in the scratch's cache
    /// folder, named after the URL as `Location::beside` names it.
    pub fn beside(&self, suffix: &str) -> PathBuf {
        let location = supportctl::state::Location::from(std::ffi::OsString::from(self.db_arg()));
        location.beside_in(self.cache_home.path(), suffix)
    }

    /// The day every later run sees as today (`SUPPORTCTL_TODAY`; [`TODAY`]
    /// until a test moves it).
    pub fn today(&self) -> String {
        self.today.borrow().clone()
    }

    /// Moves the day of this and every later run to `day`.
    pub fn set_today(&self, day: &str) {
        *self.today.borrow_mut() = day.to_owned();
    }

    /// The scratch with its day moved to `day`: `world.on(day).run(args)`.
    pub fn on(&self, day: &str) -> &Scratch {
        self.set_today(day);
        self
    }

    /// `supportctl --db DB ARGS`, from the folder, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_in(self.root(), args)
    }

    /// `supportctl --db DB ARGS`, from `dir`, not yet run.
    pub fn command_in(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = supportctl(dir, ["--db", &self.db_arg()]);
        command
            .args(args)
            .env("SUPPORTCTL_TODAY", self.today())
            .env("XDG_CACHE_HOME", self.cache_home.path());
        command
    }

    /// Runs `supportctl --db DB ARGS`, which must not panic.
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.run_in(self.root(), args)
    }

    /// Runs `supportctl --db DB ARGS` from `dir`, which must not panic.
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Outcome {
        let outcome = run(&mut self.command_in(dir, args));
        outcome.assert_no_panic();
        outcome
    }

    /// Runs, and asserts exit 0.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Outcome {
        self.run(args).expect(0)
    }

    /// Starts `supportctl --db DB ARGS` without waiting for it (see
    /// [`start`]).
    pub fn start(&self, args: &[&str]) -> Running {
        start(&mut self.command(args))
    }

    /// Runs `supportctl --db DB ARGS` with a terminal on its stdin, on which
    /// `answer` and a line break are typed; stdout and stderr are pipes.
    pub fn typing(&self, args: &[&str], answer: &str) -> Outcome {
        let (mut ours, theirs) = terminal();
        let mut command = self.command(args);
        let running = start_with(&mut command, Stdio::from(theirs));
        // The child holds the terminal's other end now; `command` held the
        // last copy here.
        drop(command);
        ours.write_all(format!("{answer}\n").as_bytes())
            .expect("the answer is typed");
        let outcome = running.finish();
        outcome.assert_no_panic();
        outcome
    }

    /// Applies `config`, a copy of the example tenancy, then `bob` opens an
    /// SR and `dankim` comments on it: a state with SRs and a journal.
    pub fn with_history(&self, config: &str) {
        self.ok(&["apply", "--auto-approve", config]);
        self.ok(&[
            "sr",
            "open",
            "--user",
            "bob",
            "--title",
            "Disk full on db-1",
        ]);
        self.ok(&[
            "sr", "comment", "1", "--user", "dankim", "--text", "Looking.",
        ]);
    }

    /// `show --format json`, which must succeed.
    #[track_caller]
    pub fn show(&self) -> Value {
        json(&self.ok(&["show", "--format", "json"]).stdout)
    }

    /// The state's content: `show --format json` without what tells two
    /// databases and two histories apart (the lineage and the serial).
    #[track_caller]
    pub fn content(&self) -> Value {
        let mut doc = self.show();
        let object = doc.as_object_mut().expect("show prints an object");
        object.remove("serial");
        object.remove("lineage");
        doc
    }

    /// The tenancy's serial, as `show` gives it.
    #[track_caller]
    pub fn serial(&self) -> u64 {
        self.show()["serial"]
            .as_u64()
            .expect("show gives the serial")
    }

    /// The journal: `history --format json`.
    #[track_caller]
    pub fn history(&self) -> Vec<Value> {
        match json(&self.ok(&["history", "--format", "json"]).stdout) {
            Value::Array(entries) => entries,
            other => panic!("history is not a JSON list: {other}"),
        }
    }

    /// `access USER --format json` on the scratch's day.
    #[track_caller]
    pub fn access(&self, user: &str) -> Value {
        json(&self.ok(&["access", user, "--format", "json"]).stdout)
    }

    /// The state as bytes, what a test that must see that nothing was
    /// written compares: the SQLite file's bytes (empty while there is
    /// none), or on PostgreSQL every row of every table of the database's
    /// own schemas as JSON, table by table in order (empty while there is
    /// no table).
    pub fn db_bytes(&self) -> Vec<u8> {
        if let Some(database) = &self.postgres {
            return postgres_rows(&mut self.client_of(database));
        }
        match std::fs::read(&self.db) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("cannot read {}: {e}", self.db.display()),
        }
    }

    /// Waits until no other session is left on the state's database (the
    /// scratch's own, so those are supportctl's): on PostgreSQL a client killed after it sent `COMMIT` has
    /// its transaction finished by the server after it is gone, so what
    /// the state holds once a killed command ends is read only after its
    /// session has ended too. Nothing to wait for on SQLite, where a
    /// killed process's transaction ends with it.
    pub fn wait_for_sessions_to_end(&self) {
        let Some(database) = &self.postgres else {
            return;
        };
        let mut client = self.client_of(database);
        let started = std::time::Instant::now();
        loop {
            let left: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                    &[],
                )
                .expect("the sessions are counted")
                .get(0);
            if left == 0 {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "sessions of supportctl outlived their processes by {DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A superuser's client of `database`.
    fn client_of(&self, database: &PgDatabase) -> postgres::Client {
        match &database.made {
            Some((server, name)) => server.client(name),
            None => {
                let config: postgres::Config = database
                    .url
                    .parse()
                    .unwrap_or_else(|e| panic!("{}: {e}", database.url));
                config
                    .connect(postgres::NoTls)
                    .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", database.url))
            }
        }
    }

    /// The SQLite file opened directly, to inspect what no command shows
    /// (SQLite's own checks, its tables). SQLite backend only.
    pub fn sqlite(&self) -> rusqlite::Connection {
        self.assert_sqlite("sqlite");
        rusqlite::Connection::open(&self.db)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.db.display()))
    }
}

impl Scratch {
    /// Fails a test that reads the SQLite file while the state is on
    /// PostgreSQL: it needs [`sqlite_only!`].
    #[track_caller]
    fn assert_sqlite(&self, what: &str) {
        assert!(
            !self.is_postgres(),
            "Scratch::{what} reads the SQLite file, and the state is on PostgreSQL: \
             mark the test sqlite_only!()"
        );
    }
}

impl Drop for Scratch {
    /// Drops the PostgreSQL database (with whatever still holds it open),
    /// so that the shared server does not grow by a database per test; best
    /// effort, the server goes with the test process anyway.
    fn drop(&mut self) {
        if let Some((server, name)) = self.postgres.as_ref().and_then(|d| d.made.as_ref())
            && let Ok(mut client) = server.try_client("postgres")
        {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// A pseudo-terminal: our end to type on, and the end a child reads from.
fn terminal() -> (std::fs::File, OwnedFd) {
    let (mut ours, mut theirs) = (0, 0);
    // SAFETY: openpty writes two descriptors it opened, which are then owned
    // here; the other arguments may be null.
    let done = unsafe {
        libc::openpty(
            &mut ours,
            &mut theirs,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(done, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    unsafe {
        (
            std::fs::File::from_raw_fd(ours),
            OwnedFd::from_raw_fd(theirs),
        )
    }
}

/// A path as a command-line argument (every path in these tests is UTF-8).
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// `text` as JSON; a test fails on anything else, showing it.
#[track_caller]
pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// A value of `strategy`, drawn by `runner` (a fixed one for fixed data:
/// `TestRunner::deterministic()`).
pub fn draw<S: Strategy>(runner: &mut TestRunner, strategy: S) -> S::Value {
    strategy
        .new_tree(runner)
        .unwrap_or_else(|e| panic!("no value drawn: {e}"))
        .current()
}

/// The randomness of the tests that are not property tests (when to kill
/// an apply, where to cut a file being written): proptest's generator, from
/// a seed each test prints; `RELIABILITY_SEED` replays one.
pub struct Dice(TestRunner);

impl Dice {
    pub fn new(test: &str) -> Dice {
        let seed = std::env::var("RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| draw(&mut TestRunner::new(Config::default()), any::<u64>()));
        eprintln!("{test}: RELIABILITY_SEED={seed}");
        Dice(TestRunner::new(Config {
            rng_seed: RngSeed::Fixed(seed),
            failure_persistence: None,
            ..Config::default()
        }))
    }

    /// A value of `strategy`.
    pub fn draw<S: Strategy>(&mut self, strategy: S) -> S::Value {
        draw(&mut self.0, strategy)
    }

    /// A duration in `0..=max`, uniformly.
    pub fn within(&mut self, max: Duration) -> Duration {
        let micros = u64::try_from(max.as_micros()).expect("a short duration");
        Duration::from_micros(self.draw(0..=micros))
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
