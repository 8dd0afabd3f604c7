//! `watch` and `status` end to end (issue 5, docs/guide/watch.md): the long-running
//! reconciler driven by real files, real file events (inotify, or polling),
//! real signals and a real clock, through the built binary.
//!
//! Every test runs `supportctl --log-format json watch …` as a child process
//! whose stderr is read line by line on a thread, and judges it by its log
//! lines (`fields.message`: `watching`, `reconciled`, `reconcile failed`, …),
//! by its status file and `supportctl status`, by the state (`show --format
//! json`, `plan --detailed-exitcode`) and by how it exits.
//!
//! Every wait has a deadline ([`DEADLINE`]). The only fixed sleeps are the short
//! quiet periods ([`QUIET`]) that show that something did *not* happen. A
//! [`Watcher`] kills its process when dropped, so a failing test leaks no
//! process.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::{self, DEADLINE, Dice, Scratch, arg, copy_dir, json};

/// The debounce of most tests: quick, and long enough to merge one save.
pub(crate) const DEBOUNCE_MS: &str = "100";
/// How long "nothing happens" is watched for: several debounce periods.
const QUIET: Duration = Duration::from_millis(800);
/// The messages that tell that a trigger was acted on.
const RECONCILE_MESSAGES: [&str; 4] = [
    "reconcile started",
    "reconciled",
    "reconcile failed",
    "skipped",
];

// ---- Configs ----

/// `examples/acme-prod.yaml`: one file, 7 users, every kind of resource.
pub(crate) fn acme() -> String {
    std::fs::read_to_string(binary::crate_root().join("examples/acme-prod.yaml"))
        .expect("the example is readable")
}

/// `text` with the first `from` replaced by `to`; `from` must be there.
#[track_caller]
pub(crate) fn edited(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` is not in the text");
    text.replacen(from, to, 1)
}

/// The example with alice's display name changed: a one-change edit.
pub(crate) fn acme_with_alice(name: &str) -> String {
    edited(&acme(), "name: Alice Lee", &format!("name: {name}"))
}

/// The example with a CSI that breaks rule 1 (E101): an invalid edit.
pub(crate) fn acme_invalid() -> String {
    edited(&acme(), "csi: \"20817431\"", "csi: \"CSI-2081\"")
}

/// A tenancy `big` whose admin `root` is alone with `n` users, each with a
/// support account, a membership and an approval: 1 + 4n resources.
fn big_config(n: usize) -> String {
    let mut out = String::from(
        "tenancy: { name: big, csi: \"4242\", admin: root }\nusers:\n  root: { email: root@big.example, support_account: { phone: \"+1 555 0000\", timezone: UTC } }\n",
    );
    for i in 0..n {
        let _ = writeln!(
            out,
            "  u{i}: {{ email: u{i}@big.example, name: \"User {i}\", support_account: {{ phone: \"+1 555 {i}\", timezone: UTC }} }}"
        );
    }
    out.push_str("memberships:\n");
    for i in 0..n {
        let _ = writeln!(out, "  - user: u{i}");
    }
    out.push_str("approvals:\n");
    for i in 0..n {
        let _ = writeln!(out, "  - {{ user: u{i}, role: user, access: [create_sr] }}");
    }
    out
}

// ---- The state ----

/// The user `id` in a `show --format json` document, or null.
pub(crate) fn user<'a>(show: &'a Value, id: &str) -> &'a Value {
    show["users"]
        .as_array()
        .and_then(|users| users.iter().find(|u| u["id"] == id))
        .unwrap_or(&Value::Null)
}

pub(crate) fn user_name(show: &Value, id: &str) -> Option<String> {
    user(show, id)["name"].as_str().map(str::to_owned)
}

/// `examples/acme-prod/` copied to `relative` in the test's folder.
fn example_dir(world: &Scratch, relative: &str) -> PathBuf {
    let path = world.path(relative);
    copy_dir(&binary::crate_root().join("examples/acme-prod"), &path);
    path
}

/// The status file watch writes by default: `<db>.status.json`, beside the
/// SQLite file, or in the user's cache folder for a state on a server.
pub(crate) fn default_status_file(world: &Scratch) -> PathBuf {
    world.beside(".status.json")
}

/// `show --format json`, or `None` while there is no tenancy to show.
pub(crate) fn try_show(world: &Scratch) -> Option<Value> {
    let outcome = world.run(&["show", "--format", "json"]);
    (outcome.code() == 0).then(|| json(&outcome.stdout))
}

/// The exit code of `plan --detailed-exitcode CONFIG`: 0 when the state
/// equals the config, 2 when it does not.
fn plan_code(world: &Scratch, config: &Path) -> i32 {
    world
        .run(&["plan", "--detailed-exitcode", arg(config)])
        .code()
}

/// The config digest of a config set, as `plan --format json` gives it.
fn config_digest(world: &Scratch, config: &Path) -> String {
    json(&world.ok(&["plan", "--format", "json", arg(config)]).stdout)["config_digest"]
        .as_str()
        .expect("the plan has a config digest")
        .to_owned()
}

/// `status --format json [FLAGS…]`: the exit code and the document.
pub(crate) fn status_json(world: &Scratch, flags: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["status", "--format", "json"];
    args.extend_from_slice(flags);
    let outcome = world.run(&args);
    let doc = serde_json::from_str(&outcome.stdout).unwrap_or(Value::Null);
    (outcome.code(), doc, outcome.stderr)
}

/// The status file as JSON, or `None` while it does not exist (or is
/// not whole, which an atomic write never shows).
fn read_status(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "the status file {} is not JSON ({e}); it is written atomically:\n{text}",
            path.display()
        )
    }))
}

/// `supportctl --db DB --log-format json watch CONFIG FLAGS…`.
pub(crate) fn watch_command(world: &Scratch, config: &Path, flags: &[&str]) -> Command {
    let mut args = vec!["--log-format", "json", "watch", arg(config)];
    args.extend_from_slice(flags);
    world.command(&args)
}

pub(crate) fn watch(world: &Scratch, config: &Path, flags: &[&str]) -> Watcher {
    Watcher::spawn(watch_command(world, config, flags))
}

// ---- A running watcher ----

/// What the watcher has printed on stderr so far: each line, parsed when it
/// is JSON.
#[derive(Default)]
struct Log {
    lines: Vec<(String, Option<Value>)>,
    ended: bool,
}

/// A running `supportctl watch`, killed when dropped.
pub(crate) struct Watcher {
    pub(crate) child: Child,
    log: Arc<(Mutex<Log>, Condvar)>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    exit: Option<ExitStatus>,
    shown: String,
}

pub(crate) fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or_default()
}

pub(crate) fn field<'a>(line: &'a Value, name: &str) -> &'a Value {
    &line["fields"][name]
}

pub(crate) fn text_field<'a>(line: &'a Value, name: &str) -> &'a str {
    field(line, name).as_str().unwrap_or_default()
}

/// A `reconciled` line with this outcome and trigger.
pub(crate) fn reconciled(outcome: &'static str, trigger: &'static str) -> impl Fn(&Value) -> bool {
    move |line| {
        message(line) == "reconciled"
            && text_field(line, "outcome") == outcome
            && text_field(line, "trigger") == trigger
    }
}

/// A `reconcile failed` line with this outcome.
pub(crate) fn failed(outcome: &'static str) -> impl Fn(&Value) -> bool {
    move |line| message(line) == "reconcile failed" && text_field(line, "outcome") == outcome
}

pub(crate) fn is(wanted: &'static str) -> impl Fn(&Value) -> bool {
    move |line| message(line) == wanted
}

impl Watcher {
    pub(crate) fn spawn(mut command: Command) -> Watcher {
        let mut shown = String::from("supportctl");
        for a in command.get_args() {
            shown.push(' ');
            shown.push_str(&a.to_string_lossy());
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{shown}`: {e}"));
        let log = Arc::new((Mutex::new(Log::default()), Condvar::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let shared = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut bytes = Vec::new();
            loop {
                bytes.clear();
                match reader.read_until(b'\n', &mut bytes) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&bytes)
                            .trim_end_matches(['\n', '\r'])
                            .to_owned();
                        let parsed = serde_json::from_str::<Value>(&text)
                            .ok()
                            .filter(Value::is_object);
                        let (lock, grew) = &*shared;
                        lock.lock().unwrap().lines.push((text, parsed));
                        grew.notify_all();
                    }
                }
            }
            let (lock, grew) = &*shared;
            lock.lock().unwrap().ended = true;
            grew.notify_all();
        });
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let stdout = Some(std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stdout.read_to_end(&mut bytes);
            bytes
        }));
        Watcher {
            child,
            log,
            stdout,
            exit: None,
            shown,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many lines it has printed: a cursor for the waits below.
    pub(crate) fn cursor(&self) -> usize {
        self.log.0.lock().unwrap().lines.len()
    }

    /// The JSON lines printed from `from` on.
    pub(crate) fn lines_since(&self, from: usize) -> Vec<Value> {
        self.lines_between(from, usize::MAX)
    }

    /// The JSON lines printed between two cursors.
    pub(crate) fn lines_between(&self, from: usize, to: usize) -> Vec<Value> {
        let log = self.log.0.lock().unwrap();
        log.lines
            .iter()
            .take(to)
            .skip(from)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    pub(crate) fn count_since(&self, from: usize, pred: impl Fn(&Value) -> bool) -> usize {
        self.lines_since(from).iter().filter(|l| pred(l)).count()
    }

    /// Everything it printed on stderr (the last lines of it, when long),
    /// for failure messages.
    pub(crate) fn dump(&self) -> String {
        let log = self.log.0.lock().unwrap();
        let shown: Vec<&String> = log
            .lines
            .iter()
            .filter(|(_, v)| v.as_ref().is_none_or(|v| message(v) != "change"))
            .map(|(l, _)| l)
            .collect();
        let keep = 120;
        let mut text = format!(
            "--- stderr of `{}` ({} lines, `change` lines left out) ---\n",
            self.shown,
            log.lines.len()
        );
        if shown.len() > keep {
            let _ = writeln!(text, "[{} lines before]", shown.len() - keep);
        }
        for line in shown.iter().skip(shown.len().saturating_sub(keep)) {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Waits for the first JSON line from `from` on that `pred` accepts;
    /// returns the cursor after it and the line. Fails the test after
    /// [`DEADLINE`], or when the process ends first.
    #[track_caller]
    pub(crate) fn wait_for(
        &self,
        from: usize,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> (usize, Value) {
        let deadline = Instant::now() + DEADLINE;
        let (lock, grew) = &*self.log;
        let mut log = lock.lock().unwrap();
        let mut at = from;
        loop {
            while at < log.lines.len() {
                at += 1;
                if let Some(line) = &log.lines[at - 1].1
                    && pred(line)
                {
                    return (at, line.clone());
                }
            }
            let now = Instant::now();
            if log.ended || now >= deadline {
                let ended = log.ended;
                drop(log);
                panic!(
                    "{} before {what}\n{}",
                    if ended {
                        "the watcher ended".to_owned()
                    } else {
                        format!("waited {} s", DEADLINE.as_secs())
                    },
                    self.dump()
                );
            }
            log = grew.wait_timeout(log, deadline - now).unwrap().0;
        }
    }

    /// Waits until it says `watching` and has made its first reconcile
    /// (trigger `start`, whatever its outcome); returns the cursor after it
    /// and that reconcile's line.
    #[track_caller]
    pub(crate) fn started(&self) -> (usize, Value) {
        let (at, watching) = self.wait_for(0, "the `watching` line", is("watching"));
        assert!(
            !text_field(&watching, "path").is_empty() && !text_field(&watching, "db").is_empty(),
            "`watching` names the path and the database: {watching}"
        );
        self.wait_for(at, "the first reconcile", |line| {
            matches!(message(line), "reconciled" | "reconcile failed")
                && text_field(line, "trigger") == "start"
        })
    }

    /// Polls `done` until it holds; fails the test after [`DEADLINE`].
    #[track_caller]
    pub(crate) fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !done() {
            assert!(
                Instant::now() < deadline,
                "waited {} s for {what}\n{}",
                DEADLINE.as_secs(),
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the state satisfies `done` (polling `show`).
    #[track_caller]
    pub(crate) fn wait_state(
        &self,
        world: &Scratch,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut last = None;
        self.wait_until(what, || {
            last = try_show(world);
            last.as_ref().is_some_and(&done)
        });
        last.expect("a state")
    }

    /// Watches for [`QUIET`] and asserts that no trigger was acted on since
    /// `from`, and that the process still runs.
    #[track_caller]
    fn assert_quiet(&mut self, from: usize, what: &str) {
        std::thread::sleep(QUIET);
        let acted: Vec<Value> = self
            .lines_since(from)
            .into_iter()
            .filter(|l| RECONCILE_MESSAGES.contains(&message(l)))
            .collect();
        assert!(
            acted.is_empty(),
            "{what} triggered {} reconcile lines in {QUIET:?}, the first: {}\n{}",
            acted.len(),
            acted.first().map(Value::to_string).unwrap_or_default(),
            self.dump()
        );
        self.assert_alive();
    }

    #[track_caller]
    pub(crate) fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().expect("waiting for the watcher") {
            self.exit = Some(status);
            panic!("the watcher ended ({status})\n{}", self.dump());
        }
    }

    /// Sends a signal (`TERM`, `INT`) with kill(1).
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -s {name} {} failed", self.pid());
    }

    /// Kills it with SIGKILL and reaps it: a crash, or a machine lost.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("the watcher is killed");
        self.exit = Some(self.child.wait().expect("the killed watcher is reaped"));
    }

    /// Waits for the process to end, at most `within`.
    #[track_caller]
    pub(crate) fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the watcher") {
                self.exit = Some(status);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the watcher did not end within {within:?}\n{}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// All it printed on stdout (after it ended).
    fn stdout(&mut self) -> String {
        let bytes = self
            .stdout
            .take()
            .map(|h| h.join().expect("the stdout reader"))
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The lines printed on stderr so far, as text.
    fn stderr_lines(&self) -> Vec<String> {
        let log = self.log.0.lock().unwrap();
        log.lines.iter().map(|(l, _)| l.clone()).collect()
    }

    /// All it printed on stderr, as text (after it ended).
    fn stderr_text(&self) -> String {
        let deadline = Instant::now() + DEADLINE;
        let (lock, grew) = &*self.log;
        let mut log = lock.lock().unwrap();
        while !log.ended && Instant::now() < deadline {
            log = grew.wait_timeout(log, Duration::from_millis(50)).unwrap().0;
        }
        log.lines
            .iter()
            .map(|(l, _)| format!("{l}\n"))
            .collect::<String>()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A watcher on `config` with the short debounce and `flags`, started.
fn watching(world: &Scratch, config: &Path, flags: &[&str]) -> (Watcher, usize) {
    let mut all = vec!["--debounce-ms", DEBOUNCE_MS];
    all.extend_from_slice(flags);
    let watcher = watch(world, config, &all);
    let (from, first) = watcher.started();
    assert_eq!(
        text_field(&first, "outcome"),
        "applied",
        "the first reconcile applies the config\n{}",
        watcher.dump()
    );
    (watcher, from)
}

/// Waits until alice's name in the state is `name`, then checks that a
/// change (not a start or an interval) applied it.
#[track_caller]
fn assert_alice_becomes(world: &Scratch, watcher: &Watcher, from: usize, name: &str) {
    watcher.wait_state(world, &format!("alice to be named {name:?}"), |show| {
        user_name(show, "alice").as_deref() == Some(name)
    });
    // The line follows the commit: on a busy machine, `show` may see the
    // state a moment before the line is written.
    watcher.wait_for(
        from,
        "a `reconciled` line with outcome applied and trigger change",
        reconciled("applied", "change"),
    );
}

// ---- 1. Editors' saves ----

/// vim's default save (`writebackup`, `backupcopy=auto`): a swap file, the
/// `4913` probe, the file renamed to its backup `x~`, the new file written,
/// the backup deleted.
#[test]
fn watch_applies_a_vim_save_that_renames_the_file_to_its_backup() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (watcher, from) = watching(&world, &config, &[]);

    world.write(".acme.yaml.swp", "b0VIM 9.1");
    world.write("4913", "");
    std::fs::remove_file(world.path("4913")).unwrap();
    std::fs::rename(&config, world.path("acme.yaml~")).unwrap();
    world.write("acme.yaml", &acme_with_alice("Alice Vim"));
    std::fs::remove_file(world.path("acme.yaml~")).unwrap();
    std::fs::remove_file(world.path(".acme.yaml.swp")).unwrap();

    assert_alice_becomes(&world, &watcher, from, "Alice Vim");
    assert_eq!(plan_code(&world, &config), 0);
}

/// An atomic save: the new content written to a temporary name, renamed
/// over the file.
#[test]
fn watch_applies_an_atomic_save_renamed_over_the_file() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (watcher, from) = watching(&world, &config, &[]);

    world.write(".acme.yaml.swp", "b0VIM 9.1");
    let temporary = world.write("acme.yaml.tmp", &acme_with_alice("Alice Atomic"));
    std::fs::rename(&temporary, &config).unwrap();
    std::fs::remove_file(world.path(".acme.yaml.swp")).unwrap();

    assert_alice_becomes(&world, &watcher, from, "Alice Atomic");
}

/// vim with `backupcopy=yes`: the backup is a copy, and the file itself is
/// truncated and rewritten in place.
#[test]
fn watch_applies_a_save_written_in_place() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (watcher, from) = watching(&world, &config, &[]);

    world.write(".acme.yaml.swp", "b0VIM 9.1");
    std::fs::copy(&config, world.path("acme.yaml~")).unwrap();
    std::fs::write(&config, acme_with_alice("Alice In Place")).unwrap();
    std::fs::remove_file(world.path("acme.yaml~")).unwrap();
    std::fs::remove_file(world.path(".acme.yaml.swp")).unwrap();

    assert_alice_becomes(&world, &watcher, from, "Alice In Place");
}

/// Editors' temporaries, and the database and the status file, all inside
/// the watched directory config set, trigger nothing by themselves (among
/// them emacs's lock `.#alice.yaml`, a dangling symlink whose name ends in
/// `.yaml`); the watcher still sees the next real edit.
#[test]
fn watch_ignores_editor_temporaries_the_database_and_its_status_file() {
    let world = Scratch::new();
    copy_dir(
        &binary::crate_root().join("examples/acme-prod"),
        world.root(),
    );
    // -v: a trigger acted on shows as `reconcile started` or `skipped` too.
    let (mut watcher, from) = watching(&world, world.root(), &["-v"]);
    watcher.wait_until("the status file", || default_status_file(&world).exists());

    for folder in ["", "users/"] {
        for name in [
            ".alice.yaml.swp",
            ".alice.yaml.swo",
            ".alice.yaml.swx",
            "alice.yaml~",
            "4913",
            "#alice.yaml#",
            "alice.yaml___jb_tmp___",
            "alice.yaml___jb_old___",
        ] {
            world.write(&format!("{folder}{name}"), "temporary: [");
        }
        std::fs::remove_file(world.path(&format!("{folder}4913"))).unwrap();
        symlink(
            "someone@host.4242:1700000000",
            world.path(&format!("{folder}.#alice.yaml")),
        )
        .unwrap();
    }
    watcher.assert_quiet(
        from,
        "editor temporaries (or the database, or the status file)",
    );

    let from = watcher.cursor();
    let alice = world.path("users/alice.yaml");
    let text = std::fs::read_to_string(&alice).unwrap();
    std::fs::write(
        &alice,
        edited(&text, "name: Alice Lee", "name: Alice After"),
    )
    .unwrap();
    assert_alice_becomes(&world, &watcher, from, "Alice After");
}

// ---- 2. JetBrains ----

/// IntelliJ's "safe write": `x___jb_tmp___` written, `x` renamed to
/// `x___jb_old___`, the temporary renamed to `x`, the old one deleted. With
/// `-v`, the one change is logged with its address.
#[test]
fn watch_applies_a_jetbrains_safe_write() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (watcher, from) = watching(&world, &config, &["-v"]);

    world.write("acme.yaml___jb_tmp___", &acme_with_alice("Alice JetBrains"));
    std::fs::rename(&config, world.path("acme.yaml___jb_old___")).unwrap();
    std::fs::rename(world.path("acme.yaml___jb_tmp___"), &config).unwrap();
    std::fs::remove_file(world.path("acme.yaml___jb_old___")).unwrap();

    assert_alice_becomes(&world, &watcher, from, "Alice JetBrains");
    let (at, line) = watcher.wait_for(from, "the applied reconcile", |line| {
        reconciled("applied", "change")(line) && field(line, "change").as_u64() == Some(1)
    });
    assert_eq!(field(&line, "add").as_u64(), Some(0), "{line}");
    assert_eq!(field(&line, "destroy").as_u64(), Some(0), "{line}");
    assert_eq!(text_field(&line, "tenancy"), "acme-prod", "{line}");
    assert_eq!(field(&line, "serial").as_u64(), Some(2), "{line}");
    assert!(field(&line, "ms").is_u64(), "{line}");
    let before = watcher.lines_between(from, at);
    let said = |pred: &dyn Fn(&Value) -> bool| before.iter().any(pred);
    assert!(
        said(&|l| message(l) == "reconcile started" && text_field(l, "trigger") == "change"),
        "a `reconcile started` debug line\n{}",
        watcher.dump()
    );
    assert!(
        said(&|l| message(l) == "applying" && field(l, "changes").as_u64() == Some(1)),
        "an `applying` debug line with its number of changes\n{}",
        watcher.dump()
    );
    assert!(
        said(&|l| message(l) == "change"
            && text_field(l, "address") == "user.alice"
            && text_field(l, "action") == "update"
            && l["level"] == "DEBUG"),
        "a `change` debug line for user.alice\n{}",
        watcher.dump()
    );
}

// ---- 3. Files and folders that come and go, symlink swaps ----

/// The config file deleted (the state is left alone: a missing config is
/// not an empty one), then written again with new content.
#[test]
fn watch_survives_its_config_file_deleted_and_recreated() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (mut watcher, from) = watching(&world, &config, &[]);
    let before = world.show();

    std::fs::remove_file(&config).unwrap();
    let (at, line) = watcher.wait_for(from, "a failed reconcile of the missing file", |l| {
        message(l) == "reconcile failed"
    });
    assert_eq!(text_field(&line, "outcome"), "invalid", "{line}");
    assert!(
        watcher.count_since(from, |l| message(l) == "config"
            && text_field(l, "code") == "E001")
            >= 1,
        "a `config` line with E001 (config-not-found)\n{}",
        watcher.dump()
    );
    assert_eq!(world.show(), before, "a missing config changes nothing");
    watcher.assert_alive();

    world.write("acme.yaml", &acme_with_alice("Alice Reborn"));
    assert_alice_becomes(&world, &watcher, at, "Alice Reborn");
}

/// In a directory config set: a user's file deleted (she is removed), then
/// recreated (she is back).
#[test]
fn watch_applies_a_file_deleted_and_recreated_in_a_config_directory() {
    let world = Scratch::new();
    let config = example_dir(&world, "acme-prod");
    let (watcher, from) = watching(&world, &config, &[]);
    let carol = config.join("users/carol.yaml");
    let text = std::fs::read_to_string(&carol).unwrap();

    std::fs::remove_file(&carol).unwrap();
    watcher.wait_state(&world, "carol to be removed", |show| {
        user(show, "carol").is_null()
    });
    let (at, line) = watcher.wait_for(from, "the removal", reconciled("applied", "change"));
    assert_eq!(field(&line, "destroy").as_u64(), Some(3), "{line}");

    std::fs::write(&carol, text).unwrap();
    let show = watcher.wait_state(&world, "carol to be back", |show| {
        !user(show, "carol").is_null()
    });
    assert_eq!(user(&show, "carol")["membership"], true);
    watcher.wait_for(at, "the recreation", reconciled("applied", "change"));
    assert_eq!(plan_code(&world, &config), 0);
}

/// New folders with new files are picked up, and watched: a later edit of
/// a file in them is applied too. `teams/ops/` is two levels created at
/// once, as a `git checkout` does.
#[test]
fn watch_picks_up_new_subdirectories_and_watches_them() {
    let world = Scratch::new();
    let config = example_dir(&world, "acme-prod");
    let (watcher, from) = watching(&world, &config, &[]);

    let dave =
        |name: &str| format!("users:\n  dave:\n    email: dave@acme.example\n    name: {name}\n");
    world.write("acme-prod/users/new/dave.yaml", &dave("Dave Ito"));
    watcher.wait_state(&world, "dave to be created", |show| {
        user_name(show, "dave").as_deref() == Some("Dave Ito")
    });
    world.write("acme-prod/users/new/dave.yaml", &dave("Dave Ito-Kim"));
    watcher.wait_state(&world, "dave's edit in the new folder", |show| {
        user_name(show, "dave").as_deref() == Some("Dave Ito-Kim")
    });

    let eve =
        |name: &str| format!("users:\n  eve:\n    email: eve@acme.example\n    name: {name}\n");
    world.write("acme-prod/teams/ops/eve.yaml", &eve("Eve Han"));
    watcher.wait_state(&world, "eve to be created", |show| {
        user_name(show, "eve").as_deref() == Some("Eve Han")
    });
    world.write("acme-prod/teams/ops/eve.yaml", &eve("Eve Han-Lee"));
    watcher.wait_state(&world, "eve's edit two folders down", |show| {
        user_name(show, "eve").as_deref() == Some("Eve Han-Lee")
    });

    // A folder moved in from outside the config set, then edited.
    let fred =
        |name: &str| format!("users:\n  fred:\n    email: fred@acme.example\n    name: {name}\n");
    world.write("outside/deep/fred.yaml", &fred("Fred Moved"));
    std::fs::rename(world.path("outside"), world.path("acme-prod/moved")).unwrap();
    watcher.wait_state(&world, "fred to be moved in", |show| {
        user_name(show, "fred").as_deref() == Some("Fred Moved")
    });
    world.write("acme-prod/moved/deep/fred.yaml", &fred("Fred Edited"));
    watcher.wait_state(&world, "fred's edit in the moved folder", |show| {
        user_name(show, "fred").as_deref() == Some("Fred Edited")
    });
    // The lines follow the commits that `show` may already have seen.
    watcher.wait_until("six `reconciled` lines for changes", || {
        watcher.count_since(from, reconciled("applied", "change")) >= 6
    });
}

/// The whole config directory deleted (`rm -rf`: nothing is applied from a
/// missing config) and created again (`cp -r`); an edit in the new one is
/// seen too.
#[test]
fn watch_survives_its_config_directory_deleted_and_recreated() {
    let world = Scratch::new();
    let config = example_dir(&world, "acme-prod");
    let (mut watcher, from) = watching(&world, &config, &[]);
    let before = world.show();

    std::fs::remove_dir_all(&config).unwrap();
    let (at, line) = watcher.wait_for(from, "a failed reconcile of the missing folder", |l| {
        message(l) == "reconcile failed"
    });
    assert_eq!(text_field(&line, "outcome"), "invalid", "{line}");
    assert_eq!(world.show(), before, "a missing config changes nothing");
    watcher.assert_alive();

    example_dir(&world, "acme-prod");
    let alice = config.join("users/alice.yaml");
    let text = std::fs::read_to_string(&alice).unwrap();
    std::fs::write(&alice, edited(&text, "name: Alice Lee", "name: Alice Anew")).unwrap();
    assert_alice_becomes(&world, &watcher, at, "Alice Anew");
    let from = watcher.cursor();
    std::fs::write(
        &alice,
        edited(&text, "name: Alice Lee", "name: Alice Again"),
    )
    .unwrap();
    assert_alice_becomes(&world, &watcher, from, "Alice Again");
}

/// A Kubernetes ConfigMap volume: `cfg/acme.yaml -> ..data/acme.yaml`,
/// `..data -> ..v1`, and an update makes `..v2`, points `..data_tmp` at it,
/// renames it over `..data` and removes `..v1`. Twice.
#[test]
fn watch_follows_a_configmap_style_symlink_swap() {
    let world = Scratch::new();
    let cfg = world.path("cfg");
    world.write("cfg/..v1/acme.yaml", &acme());
    symlink("..v1", cfg.join("..data")).unwrap();
    symlink("..data/acme.yaml", cfg.join("acme.yaml")).unwrap();
    let (watcher, mut from) = watching(&world, &cfg, &[]);

    for (old, new, name) in [("..v1", "..v2", "Alice V2"), ("..v2", "..v3", "Alice V3")] {
        world.write(&format!("cfg/{new}/acme.yaml"), &acme_with_alice(name));
        symlink(new, cfg.join("..data_tmp")).unwrap();
        std::fs::rename(cfg.join("..data_tmp"), cfg.join("..data")).unwrap();
        std::fs::remove_dir_all(cfg.join(old)).unwrap();
        assert_alice_becomes(&world, &watcher, from, name);
        from = watcher.cursor();
    }
    assert_eq!(plan_code(&world, &cfg), 0);
}

/// PATH itself a symlink (`current -> v1`), swapped atomically to `v2`; a
/// later edit under the new target is applied too.
#[test]
fn watch_follows_its_path_symlink_swapped_to_a_new_target() {
    let world = Scratch::new();
    example_dir(&world, "v1");
    let current = world.path("current");
    symlink("v1", &current).unwrap();
    let (watcher, from) = watching(&world, &current, &[]);

    let v2 = example_dir(&world, "v2");
    let alice = v2.join("users/alice.yaml");
    let text = std::fs::read_to_string(&alice).unwrap();
    std::fs::write(&alice, edited(&text, "name: Alice Lee", "name: Alice V2")).unwrap();
    symlink("v2", world.path("current_tmp")).unwrap();
    std::fs::rename(world.path("current_tmp"), &current).unwrap();
    std::fs::remove_dir_all(world.path("v1")).unwrap();
    assert_alice_becomes(&world, &watcher, from, "Alice V2");

    let from = watcher.cursor();
    std::fs::write(
        &alice,
        edited(&text, "name: Alice Lee", "name: Alice Edited"),
    )
    .unwrap();
    assert_alice_becomes(&world, &watcher, from, "Alice Edited");
}

// ---- 4. Bad configs ----

/// An invalid edit is logged with every location, changes nothing, and
/// leaves the watcher running and `status` unhealthy; the next valid edit
/// applies and `status` is healthy again.
#[test]
fn watch_logs_an_invalid_edit_changes_nothing_and_applies_the_next_valid_one() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (mut watcher, from) = watching(&world, &config, &[]);
    let before = world.show();

    let invalid = acme_invalid();
    std::fs::write(&config, &invalid).unwrap();
    let (at, line) = watcher.wait_for(from, "the failed reconcile", failed("invalid"));
    assert_eq!(text_field(&line, "trigger"), "change", "{line}");
    assert_eq!(line["level"], "ERROR", "{line}");
    assert!(field(&line, "errors").as_u64() >= Some(1), "{line}");
    assert!(field(&line, "warnings").is_u64(), "{line}");
    assert!(field(&line, "ms").is_u64(), "{line}");

    // One `config` line per diagnostic, before it, with its place.
    let csi_line = invalid
        .lines()
        .position(|l| l.contains("CSI-2081"))
        .unwrap()
        + 1;
    let diagnostics: Vec<Value> = watcher
        .lines_between(from, at)
        .into_iter()
        .filter(|l| message(l) == "config")
        .collect();
    let e101 = diagnostics
        .iter()
        .find(|l| text_field(l, "code") == "E101")
        .unwrap_or_else(|| panic!("a `config` line with E101\n{}", watcher.dump()));
    assert_eq!(e101["level"], "ERROR", "{e101}");
    let location = text_field(e101, "location");
    let (file_and_line, column) = location.rsplit_once(':').expect("FILE:LINE:COL");
    assert!(
        file_and_line.ends_with(&format!("acme.yaml:{csi_line}")) && column.parse::<u32>().is_ok(),
        "the location of E101 is acme.yaml:{csi_line}:COL, not {location:?}"
    );

    assert_eq!(world.show(), before, "an invalid config changes nothing");
    watcher.assert_alive();
    watcher.wait_until("the status file to say invalid", || {
        read_status(&default_status_file(&world)).is_some_and(|s| s["last"]["outcome"] == "invalid")
    });
    let (code, doc, stderr) = status_json(&world, &[]);
    assert_eq!(code, 1, "status after a failed reconcile\n{doc}\n{stderr}");
    assert_eq!(doc["healthy"], false, "{doc}");
    assert!(doc["problem"].is_string(), "{doc}");
    assert_eq!(doc["last"]["outcome"], "invalid", "{doc}");
    assert!(doc["last_success_at"].is_string(), "{doc}");

    std::fs::write(&config, acme_with_alice("Alice Fixed")).unwrap();
    assert_alice_becomes(&world, &watcher, at, "Alice Fixed");
    watcher.wait_until("`status` to be healthy again", || {
        status_json(&world, &[]).0 == 0
    });
}

/// The same failing content saved again (an identical rewrite) is not
/// checked again: `-v` says `skipped`, and no second `reconcile failed`.
/// Once a good version has been reconciled, the broken one saved again is
/// reported again.
#[test]
fn watch_does_not_recheck_the_same_invalid_content() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (mut watcher, from) = watching(&world, &config, &["-v"]);

    let invalid = acme_invalid();
    std::fs::write(&config, &invalid).unwrap();
    let (mut at, _) = watcher.wait_for(from, "the failed reconcile", failed("invalid"));
    for _ in 0..2 {
        std::fs::write(&config, &invalid).unwrap();
        let (next, line) = watcher.wait_for(at, "a `skipped` line", is("skipped"));
        assert_eq!(line["level"], "DEBUG", "{line}");
        at = next;
    }
    watcher.assert_quiet(at, "the identical rewrites");
    assert_eq!(
        watcher.count_since(from, is("reconcile failed")),
        1,
        "the same invalid content is reported once\n{}",
        watcher.dump()
    );

    std::fs::write(&config, acme()).unwrap();
    let (at, _) = watcher.wait_for(at, "the good version", reconciled("no-changes", "change"));
    std::fs::write(&config, &invalid).unwrap();
    watcher.wait_for(at, "the broken version reported again", failed("invalid"));
}

/// A watcher started on an invalid config applies nothing, keeps running,
/// and applies the config once it is fixed.
#[test]
fn watch_starts_on_an_invalid_config_and_applies_it_once_fixed() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme_invalid());
    let mut watcher = watch(&world, &config, &["--debounce-ms", DEBOUNCE_MS]);
    let (from, first) = watcher.started();
    assert_eq!(text_field(&first, "outcome"), "invalid", "{first}");
    assert!(try_show(&world).is_none(), "nothing is applied");
    watcher.assert_alive();
    std::fs::write(&config, acme()).unwrap();
    watcher.wait_for(
        from,
        "the fixed config applied",
        reconciled("applied", "change"),
    );
    assert_eq!(plan_code(&world, &config), 0);
}

/// `--max-file-size` holds for watch: a file past it is an input-limit
/// error (E010) at the file, and nothing is applied.
#[test]
fn watch_reads_under_max_file_size() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let mut watcher = watch(
        &world,
        &config,
        &["--max-file-size", "100", "--debounce-ms", DEBOUNCE_MS],
    );
    let (at, first) = watcher.started();
    assert_eq!(text_field(&first, "outcome"), "invalid", "{first}");
    let limit = watcher
        .lines_between(0, at)
        .into_iter()
        .find(|l| message(l) == "config" && text_field(l, "code") == "E010")
        .unwrap_or_else(|| panic!("a `config` line with E010\n{}", watcher.dump()));
    assert!(
        text_field(&limit, "location").contains("acme.yaml"),
        "{limit}"
    );
    assert!(try_show(&world).is_none(), "nothing is applied");
    watcher.assert_alive();
}

/// A symlink loop in the config directory is an error (E002), not a hang,
/// for the reader and for the watches; once it is removed the config set
/// applies.
#[test]
fn watch_survives_a_symlink_loop_in_its_config_directory() {
    let world = Scratch::new();
    let config = example_dir(&world, "acme-prod");
    let looped = config.join("users/loop");
    symlink("..", &looped).unwrap();
    let mut watcher = watch(&world, &config, &["--debounce-ms", DEBOUNCE_MS]);
    let (from, first) = watcher.started();
    assert_eq!(text_field(&first, "outcome"), "invalid", "{first}");
    assert!(
        watcher.count_since(0, |l| message(l) == "config"
            && text_field(l, "code") == "E002")
            >= 1,
        "a `config` line with E002 (unreadable: a symlink loop)\n{}",
        watcher.dump()
    );
    watcher.assert_alive();
    std::fs::remove_file(&looped).unwrap();
    watcher.wait_for(
        from,
        "the config set applied",
        reconciled("applied", "change"),
    );
    assert_eq!(plan_code(&world, &config), 0);
}

/// A database that supportctl refuses (not a supportctl database) fails
/// the reconcile (outcome failed), is left untouched, and the watcher keeps
/// running; once the foreign state is gone the watcher retries on its own
/// and applies. On SQLite the foreign state is a file of text; on
/// PostgreSQL a `supportctl` schema holding a table of someone else's.
#[test]
fn watch_retries_after_a_failure_and_recovers_on_its_own() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    if world.is_postgres() {
        world
            .postgres_client()
            .batch_execute("CREATE SCHEMA supportctl; CREATE TABLE supportctl.orders (id int)")
            .unwrap();
    } else {
        let garbage = b"this is not a database, it is a shopping list\n".repeat(100);
        std::fs::write(&world.db, &garbage).unwrap();
    }
    let before = world.db_bytes();
    let mut watcher = watch(&world, &config, &["--debounce-ms", DEBOUNCE_MS]);
    let (from, first) = watcher.started();
    assert_eq!(text_field(&first, "outcome"), "failed", "{first}");
    assert!(!text_field(&first, "error").is_empty(), "{first}");
    watcher.assert_alive();
    assert_eq!(world.db_bytes(), before, "the foreign state is untouched");

    if world.is_postgres() {
        world
            .postgres_client()
            .batch_execute("DROP SCHEMA supportctl CASCADE")
            .unwrap();
    } else {
        std::fs::remove_file(&world.db).unwrap();
    }
    let (_, line) = watcher.wait_for(from, "a retry that applies", |l| {
        message(l) == "reconciled" && text_field(l, "outcome") == "applied"
    });
    // Its retry timer, or its lease campaign (retried every two seconds)
    // taking the lease once the state can be written.
    assert!(
        ["retry", "lease"].contains(&text_field(&line, "trigger")),
        "{line}"
    );
    assert_eq!(plan_code(&world, &config), 0);
}

/// An edit saved while a reconcile is applying is not lost: it is applied
/// after it.
#[test]
fn watch_applies_an_edit_made_during_a_reconcile() {
    let world = Scratch::new();
    let config = world.write("big.yaml", &big_config(2000));
    let watcher = watch(&world, &config, &["-v", "--debounce-ms", DEBOUNCE_MS]);
    let (at, _) = watcher.wait_for(0, "the `applying` line", is("applying"));
    let text = edited(
        &big_config(2000),
        "name: \"User 7\"",
        "name: \"User Seven\"",
    );
    std::fs::write(&config, &text).unwrap();
    watcher.wait_for(at, "the first apply", reconciled("applied", "start"));
    watcher.wait_state(&world, "the edit made during the apply", |show| {
        user_name(show, "u7").as_deref() == Some("User Seven")
    });
    assert_eq!(plan_code(&world, &config), 0);
}

// ---- 5. A burst of edits ----

/// 100 edits in about a second, valid and invalid, ending in a valid config
/// (with the default debounce): a few reconciles at most, and the state
/// ends equal to the final files.
#[test]
fn watch_settles_a_burst_of_100_edits_on_the_final_files_with_few_applies() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let watcher = watch(&world, &config, &[]);
    let (from, first) = watcher.started();
    assert_eq!(text_field(&first, "outcome"), "applied");

    let started = Instant::now();
    for i in 0..100 {
        let text = match i {
            99 => acme_with_alice("Alice Final"),
            _ if i % 3 == 1 => acme_invalid(),
            _ if i % 3 == 2 => format!("{}\nusers: [broken", acme()),
            _ => acme_with_alice(&format!("Alice {i}")),
        };
        std::fs::write(&config, text).unwrap();
        std::thread::sleep(Duration::from_millis(8));
    }
    let burst = started.elapsed();
    let digest = config_digest(&world, &config);
    watcher.wait_until("the last reconcile to be of the final files", || {
        read_status(&default_status_file(&world)).is_some_and(|s| {
            s["state"] == "watching"
                && s["last"]["config_digest"] == digest.as_str()
                && matches!(
                    s["last"]["outcome"].as_str(),
                    Some("applied" | "no-changes")
                )
        })
    });
    assert_eq!(
        plan_code(&world, &config),
        0,
        "the state equals the final files"
    );
    assert_eq!(
        user_name(&world.show(), "alice").as_deref(),
        Some("Alice Final")
    );

    let applied = watcher.count_since(from, reconciled("applied", "change"));
    let failures = watcher.count_since(from, is("reconcile failed"));
    eprintln!("burst of 100 edits in {burst:?}: {applied} applied, {failures} failed");
    assert!(
        (1..=5).contains(&applied),
        "{applied} applies for a burst of 100 edits in {burst:?}\n{}",
        watcher.dump()
    );
    assert!(
        failures <= 5,
        "{failures} failed reconciles for a burst in {burst:?}\n{}",
        watcher.dump()
    );
}

// ---- 6. The mass-delete guard ----

/// Removing most users is refused (logged, the state unchanged, `status`
/// unhealthy); a watcher with `--allow-mass-delete` applies it.
#[test]
fn watch_refuses_a_mass_deletion_unless_allowed() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (mut watcher, from) = watching(&world, &config, &[]);
    let before = world.show();

    let only_dankim = "tenancy: { name: acme-prod, csi: \"20817431\", home_region: ap-seoul-1, admin: dankim }\nusers:\n  dankim:\n    email: dan.kim@acme.example\n    name: Dan Kim\n    support_account: { phone: \"+82 2 555 0100\", timezone: Asia/Seoul }\n";
    std::fs::write(&config, only_dankim).unwrap();
    let (_, line) = watcher.wait_for(from, "the refusal", failed("refused"));
    assert!(
        !text_field(&line, "error").is_empty(),
        "a refusal says why: {line}"
    );
    // What takes access away lands all the same; everyone stays.
    let count = |show: &Value, key: &str| {
        show["users"].as_array().map_or(0, |users| {
            users
                .iter()
                .filter(|u| key == "users" || !(u[key].is_null() || u[key] == false))
                .count()
        })
    };
    let revoked = count(&before, "approval") + count(&before, "support_link");
    assert!(revoked > 0);
    assert!(
        text_field(&line, "error").contains("take access away are applied all the same"),
        "{line}"
    );
    let after = world.show();
    assert_eq!(
        (count(&after, "approval"), count(&after, "support_link")),
        (0, 0),
        "a grant the config took away is held back: {after}"
    );
    assert_eq!(count(&after, "users"), count(&before, "users"), "{after}");
    assert_eq!(
        count(&after, "membership"),
        count(&before, "membership"),
        "{after}"
    );
    watcher.assert_alive();
    watcher.wait_until("the status file to say refused", || {
        read_status(&default_status_file(&world)).is_some_and(|s| s["last"]["outcome"] == "refused")
    });
    assert_eq!(
        status_json(&world, &[]).0,
        1,
        "a refused watcher is unhealthy"
    );

    watcher.signal("INT");
    assert_eq!(watcher.wait_exit(DEADLINE).code(), Some(0));

    let allowed = watch(
        &world,
        &config,
        &["--allow-mass-delete", "--debounce-ms", DEBOUNCE_MS],
    );
    let (_, line) = allowed.started();
    assert_eq!(text_field(&line, "outcome"), "applied", "{line}");
    assert_eq!(
        field(&line, "destroy").as_u64(),
        Some(19 - revoked as u64),
        "{line}"
    );
    let show = world.show();
    assert_eq!(show["users"].as_array().map(Vec::len), Some(1), "{show}");
    assert_eq!(plan_code(&world, &config), 0);
}

// ---- 7. Expiry ----

/// alice's approval and gina's link expire on 2027-01-31; the clock starts
/// two seconds before: both are applied, then revoked at midnight UTC with
/// no file touched.
#[test]
fn watch_revokes_an_expired_grant_at_midnight_with_no_file_change() {
    let world = Scratch::new();
    let text = edited(
        &edited(&acme(), "expires: 2030-06-30", "expires: 2027-01-31"),
        "expires: 2030-01-31",
        "expires: 2027-01-31",
    );
    let config = world.write("acme.yaml", &text);
    // The number of resources with every grant in place.
    let all = json(
        &world
            .run(&["plan", "--format", "json", arg(&config)])
            .stdout,
    )["summary"]["add"]
        .as_u64()
        .unwrap();
    let modified = std::fs::metadata(&config).unwrap().modified().unwrap();

    let mut command = watch_command(&world, &config, &["--debounce-ms", DEBOUNCE_MS]);
    command
        .env_remove("SUPPORTCTL_TODAY")
        .env("SUPPORTCTL_NOW", "2027-01-30T23:59:58Z");
    let watcher = Watcher::spawn(command);
    let (from, first) = watcher.started();
    assert_eq!(text_field(&first, "outcome"), "applied", "{first}");
    assert_eq!(
        field(&first, "add").as_u64(),
        Some(all),
        "on 2027-01-30 every grant is applied: {first}"
    );
    if let Some(status) = read_status(&default_status_file(&world))
        && status["last"]["trigger"] == "start"
        && status["state"] == "watching"
    {
        assert!(
            status["next_wake_at"]
                .as_str()
                .is_some_and(|t| t.starts_with("2027-01-31T00:00:00")),
            "the watcher sleeps until the expiry: {status}"
        );
    }

    let (_, line) = watcher.wait_for(from, "the expiry", reconciled("applied", "expiry"));
    assert_eq!(field(&line, "destroy").as_u64(), Some(2), "{line}");
    assert_eq!(field(&line, "add").as_u64(), Some(0), "{line}");
    let show = world.show();
    assert!(user(&show, "alice")["approval"].is_null(), "{show}");
    assert_eq!(user(&show, "alice")["membership"], true, "{show}");
    assert!(user(&show, "gina")["support_link"].is_null(), "{show}");
    assert!(!user(&show, "bob")["support_link"].is_null(), "{show}");
    assert_eq!(
        std::fs::metadata(&config).unwrap().modified().unwrap(),
        modified,
        "no file was touched"
    );
    watcher.wait_until("the status file to show the expiry", || {
        read_status(&default_status_file(&world))
            .is_some_and(|s| s["last"]["trigger"] == "expiry" && s["state"] == "watching")
    });
    let status = read_status(&default_status_file(&world)).unwrap();
    assert!(
        status["next_wake_at"].is_null(),
        "nothing is due any more: {status}"
    );
}

/// Six links ending at one midnight among 17 resources: the expiry
/// reconcile removes them (they grant nothing already, so they are no mass
/// deletion), and removing another user's link from the file afterwards
/// lands too (issue 17 §1's example).
#[test]
fn watch_expiry_of_many_links_is_no_mass_deletion_and_a_later_removal_lands() {
    let world = Scratch::new();
    let seven = |l6: bool| {
        let mut text = String::from(
            "tenancy: { name: acme, csi: \"20817431\", admin: dan }\nusers:\n  dan:\n    email: dan@acme.example\n    support_account: { phone: \"+82 2 555 0100\", timezone: Asia/Seoul }\n",
        );
        for i in 0..7 {
            let _ = write!(text, "  l{i}:\n    email: l{i}@acme.example\n");
        }
        text.push_str("support_links:\n");
        for i in 0..6 {
            let _ = writeln!(text, "  - {{ user: l{i}, expires: 2027-01-31 }}");
        }
        if l6 {
            text.push_str("  - { user: l6 }\n");
        }
        text
    };
    let config = world.write("acme.yaml", &seven(true));
    let mut command = watch_command(&world, &config, &["--debounce-ms", DEBOUNCE_MS]);
    command
        .env_remove("SUPPORTCTL_TODAY")
        .env("SUPPORTCTL_NOW", "2027-01-30T23:59:58Z");
    let mut watcher = Watcher::spawn(command);
    let (from, first) = watcher.started();
    assert_eq!(field(&first, "add").as_u64(), Some(17), "{first}");
    let (from, line) = watcher.wait_for(from, "the expiry", reconciled("applied", "expiry"));
    assert_eq!(field(&line, "destroy").as_u64(), Some(6), "{line}");
    std::fs::write(&config, seven(false)).unwrap();
    let (_, line) = watcher.wait_for(from, "the edit", reconciled("applied", "change"));
    assert_eq!(field(&line, "destroy").as_u64(), Some(1), "{line}");
    let show = world.show();
    assert!(user(&show, "l6")["support_link"].is_null(), "{show}");
    watcher.assert_alive();
}

/// With a frozen day (`SUPPORTCTL_TODAY`) there are no expiry wake-ups:
/// the grants expire on 2021-01-01, a day long past on the real clock but
/// after the frozen day 2020-01-01, so they stay in force and nothing is
/// due.
#[test]
fn watch_with_a_frozen_day_does_not_wake_for_expiry() {
    let world = Scratch::new();
    let text = edited(
        &edited(&acme(), "expires: 2030-06-30", "expires: 2021-01-01"),
        "expires: 2030-01-31",
        "expires: 2021-01-01",
    );
    let config = world.write("acme.yaml", &text);
    let mut command = watch_command(&world, &config, &["--debounce-ms", DEBOUNCE_MS]);
    command.env("SUPPORTCTL_TODAY", "2020-01-01");
    let mut watcher = Watcher::spawn(command);
    let (from, first) = watcher.started();
    assert_eq!(text_field(&first, "outcome"), "applied", "{first}");
    watcher.assert_quiet(from, "nothing (the day is frozen)");
    let status = read_status(&default_status_file(&world)).expect("a status file");
    assert!(status["next_wake_at"].is_null(), "nothing is due: {status}");
    let show = world.show();
    assert!(!user(&show, "alice")["approval"].is_null(), "{show}");
}

// ---- 8. Signals during a large apply ----

/// A config set of 8,000 users (32,003 resources) on top of the state of its
/// first 20: the watcher's first reconcile is a long apply of 31,920 adds.
fn large_apply(world: &Scratch) -> (PathBuf, PathBuf) {
    let small = world.write("small.yaml", &big_config(20));
    let large = world.write("cfg/large.yaml", &big_config(8000));
    world
        .run(&["apply", "--auto-approve", arg(&small)])
        .assert_code(0);
    (small, large)
}

/// The state is exactly before (`small`, serial 1) or exactly after
/// (`large`, serial 2); returns which.
#[track_caller]
fn before_or_after(world: &Scratch, small: &Path, large: &Path) -> &'static str {
    let serial = world.show()["serial"].as_u64();
    match serial {
        Some(1) => {
            assert_eq!(
                plan_code(world, small),
                0,
                "serial 1 is exactly the state before"
            );
            assert_eq!(world.history().len(), 1);
            "before"
        }
        Some(2) => {
            assert_eq!(
                plan_code(world, large),
                0,
                "serial 2 is exactly the state after"
            );
            assert_eq!(world.history().len(), 2);
            "after"
        }
        other => panic!("serial {other:?}: neither before nor after"),
    }
}

/// SIGTERM while the large apply runs: the apply in flight is finished,
/// then the watcher stops with exit 0.
#[test]
fn watch_finishes_the_apply_in_flight_on_sigterm_and_exits_0() {
    let world = Scratch::new();
    let (small, large) = large_apply(&world);
    let mut watcher = watch(&world, &large, &["-v", "--debounce-ms", DEBOUNCE_MS]);
    let (at, applying) = watcher.wait_for(0, "the `applying` line", is("applying"));
    assert_eq!(
        field(&applying, "changes").as_u64(),
        Some(31_920),
        "{applying}"
    );
    watcher.signal("TERM");
    let signalled = Instant::now();

    let status = watcher.wait_exit(DEADLINE);
    eprintln!(
        "SIGTERM during the apply: {status} after {:?}",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(0), "{}", watcher.dump());
    let (stopping_at, stopping) = watcher.wait_for(at, "the `stopping` line", is("stopping"));
    assert_eq!(text_field(&stopping, "signal"), "SIGTERM", "{stopping}");
    let (done_at, done) =
        watcher.wait_for(at, "the apply in flight", reconciled("applied", "start"));
    eprintln!("the apply took {} ms", field(&done, "ms"));
    watcher.wait_for(at, "the `stopped` line", is("stopped"));
    assert_eq!(
        before_or_after(&world, &small, &large),
        "after",
        "the apply in flight when the signal came is finished"
    );
    // `stopping` is said when the signal arrives, so that an operator sees
    // at once that it was heard, not once the apply in flight is over.
    assert!(
        stopping_at < done_at,
        "`stopping` is logged when SIGTERM arrives, before the apply in flight ends\n{}",
        watcher.dump()
    );
}

/// A second signal during the large apply ends the watcher at once with
/// `code` (or by the signal itself, which a shell reports as the same
/// code); the database is whole, and exactly before or after.
fn second_signal_exits_at_once(signal: &str, code: i32) {
    let world = Scratch::new();
    let (small, large) = large_apply(&world);
    let mut watcher = watch(&world, &large, &["-v", "--debounce-ms", DEBOUNCE_MS]);
    let (at, _) = watcher.wait_for(0, "the `applying` line", is("applying"));
    watcher.signal(signal);
    // A pause, so that the first is delivered before the second is sent:
    // two standard signals pending at once merge into one.
    std::thread::sleep(Duration::from_millis(50));
    let finished_before = watcher.count_since(at, reconciled("applied", "start"));
    watcher.signal(signal);
    let signalled = Instant::now();

    let status = watcher.wait_exit(Duration::from_secs(5));
    let took = signalled.elapsed();
    assert!(
        status.code() == Some(code) || status.signal() == Some(code - 128),
        "a second SIG{signal} exits {code}, not {status}\n{}",
        watcher.dump()
    );
    let state = before_or_after(&world, &small, &large);
    eprintln!(
        "second SIG{signal}: {status} after {took:?}, the state is {state} (the apply had {}finished before it)",
        if finished_before > 0 { "" } else { "not " }
    );
    // The database still takes an apply.
    world
        .run(&[
            "apply",
            "--auto-approve",
            arg(&small),
            "--allow-mass-delete",
        ])
        .assert_code(0);
}

#[test]
fn watch_exits_143_at_once_on_a_second_sigterm_and_the_database_is_whole() {
    second_signal_exits_at_once("TERM", 143);
}

#[test]
fn watch_exits_130_at_once_on_a_second_sigint_and_the_database_is_whole() {
    second_signal_exits_at_once("INT", 130);
}

#[test]
fn watch_exits_129_at_once_on_a_second_sighup_and_the_database_is_whole() {
    second_signal_exits_at_once("HUP", 129);
}

// ---- 9. Stopping and `status` ----

/// While watching and healthy, `status` exits 0 with the status document;
/// SIGINT when idle stops it with exit 0, `stopped` logged, nothing on
/// stdout, the status file saying "stopped" and `status` exiting 1.
#[test]
fn watch_stops_on_sigint_when_idle_and_status_tells_healthy_from_stopped() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (mut watcher, from) = watching(&world, &config, &[]);
    let status_file = default_status_file(&world);
    watcher.wait_until("the status file after the first reconcile", || {
        read_status(&status_file)
            .is_some_and(|s| s["state"] == "watching" && s["last"]["outcome"] == "applied")
    });
    assert_eq!(
        std::fs::metadata(&status_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600,
        "the status file is private"
    );

    let text = world.run(&["status"]);
    text.assert_code(0);
    let (code, doc, stderr) = status_json(&world, &[]);
    assert_eq!(code, 0, "{doc}\n{stderr}");
    assert_eq!(doc["healthy"], true, "{doc}");
    assert!(doc["problem"].is_null(), "{doc}");
    assert_eq!(doc["format_version"], 1, "{doc}");
    assert_eq!(doc["pid"].as_u64(), Some(u64::from(watcher.pid())), "{doc}");
    assert_eq!(doc["state"], "watching", "{doc}");
    assert!(doc["reconciles"].as_u64() >= Some(1), "{doc}");
    assert!(
        doc["config"]
            .as_str()
            .is_some_and(|c| c.ends_with("acme.yaml")),
        "{doc}"
    );
    let database = if world.is_postgres() {
        world.db_arg()
    } else {
        "state.db".to_owned()
    };
    assert!(
        doc["database"]
            .as_str()
            .is_some_and(|d| d.ends_with(&database)),
        "{doc}"
    );
    for time in ["started_at", "heartbeat_at", "last_success_at"] {
        assert!(
            doc[time]
                .as_str()
                .is_some_and(|t| t.len() >= 20 && t.contains('T')),
            "{time} is an RFC 3339 time: {doc}"
        );
    }
    let last = &doc["last"];
    assert_eq!(last["outcome"], "applied", "{doc}");
    assert_eq!(last["trigger"], "start", "{doc}");
    assert_eq!(last["tenancy"], "acme-prod", "{doc}");
    assert_eq!(last["serial"], 1, "{doc}");
    assert_eq!(last["summary"]["change"], 0, "{doc}");
    assert_eq!(last["summary"]["destroy"], 0, "{doc}");
    assert!(last["summary"]["add"].as_u64() > Some(0), "{doc}");
    assert!(last["ms"].is_u64(), "{doc}");
    assert_eq!(
        last["config_digest"],
        config_digest(&world, &config).as_str(),
        "{doc}"
    );

    let idle = watcher.cursor();
    watcher.signal("INT");
    let status = watcher.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{}", watcher.dump());
    let (_, stopping) = watcher.wait_for(idle, "the `stopping` line", is("stopping"));
    assert!(!field(&stopping, "signal").is_null(), "{stopping}");
    let (_, stopped) = watcher.wait_for(idle, "the `stopped` line", is("stopped"));
    assert_eq!(stopped["level"], "INFO", "{stopped}");
    assert_eq!(watcher.count_since(from, is("reconcile started")), 0);
    assert_eq!(watcher.stdout(), "", "watch never prints to stdout");

    let after = read_status(&status_file).expect("the status file stays");
    assert_eq!(after["state"], "stopped", "{after}");
    let text = world.run(&["status"]);
    text.assert_code(1);
    assert!(
        !text.stderr.trim().is_empty(),
        "status says why it is unhealthy"
    );
    let (code, doc, _) = status_json(&world, &[]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["healthy"], false, "{doc}");
    assert!(doc["problem"].is_string(), "{doc}");

    // A watcher that died without a word: its heartbeat goes stale.
    let mut stale = after.clone();
    stale["state"] = "watching".into();
    stale["heartbeat_at"] = "2000-01-01T00:00:00Z".into();
    std::fs::write(&status_file, stale.to_string()).unwrap();
    let (code, doc, _) = status_json(&world, &[]);
    assert_eq!(code, 1, "a stale heartbeat is unhealthy: {doc}");
    assert_eq!(doc["healthy"], false, "{doc}");
}

/// `status` with no status file exits 1 with a reason, and without
/// hanging.
#[test]
fn status_without_a_status_file_exits_1_with_a_reason() {
    let world = Scratch::new();
    let outcome = world.run(&["status"]);
    outcome.assert_code(1);
    assert!(!outcome.stderr.trim().is_empty(), "a reason on stderr");
    let outcome = world.run(&["status", "--status-file", arg(&world.path("nowhere.json"))]);
    outcome.assert_code(1);
    assert!(
        outcome.stderr.contains("nowhere.json"),
        "the reason names the file:\n{}",
        outcome.stderr
    );
}

/// `--interval` reconciles with no change, `--status-file` puts the status
/// file elsewhere (the default one is not written) and `status
/// --status-file` reads it.
#[test]
fn watch_reconciles_every_interval_and_writes_the_status_file_asked_for() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let custom = world.path("run/watch-status.json");
    std::fs::create_dir_all(custom.parent().unwrap()).unwrap();
    // `-v`: an interval that changes nothing is logged at debug level.
    let (watcher, from) = watching(
        &world,
        &config,
        &["-v", "--interval", "500ms", "--status-file", arg(&custom)],
    );
    let (at, _) = watcher.wait_for(
        from,
        "an interval reconcile",
        reconciled("no-changes", "interval"),
    );
    watcher.wait_for(
        at,
        "a second interval reconcile",
        reconciled("no-changes", "interval"),
    );
    watcher.wait_until("the status file to count 3 reconciles", || {
        read_status(&custom)
            .is_some_and(|s| s["reconciles"].as_u64() >= Some(3) && s["state"] == "watching")
    });

    let status = read_status(&custom).expect("the status file asked for");
    assert!(status["next_wake_at"].is_string(), "{status}");
    assert!(
        std::fs::metadata(&custom).unwrap().permissions().mode() & 0o777 == 0o600,
        "the status file is private"
    );
    assert!(
        !default_status_file(&world).exists(),
        "the default status file is not written"
    );
    let (code, doc, stderr) = status_json(&world, &["--status-file", arg(&custom)]);
    assert_eq!(code, 0, "{doc}\n{stderr}");
    assert_eq!(doc["healthy"], true, "{doc}");
    assert_eq!(doc["last"]["outcome"], "no-changes", "{doc}");
    assert!(doc["reconciles"].as_u64() >= Some(3), "{doc}");
}

// ---- 10. Polling ----

/// `--poll` (for filesystems without events) sees an edit too.
#[test]
fn watch_with_poll_applies_a_change() {
    let world = Scratch::new();
    let config = example_dir(&world, "acme-prod");
    let watcher = watch(
        &world,
        &config,
        &[
            "--poll",
            "--poll-interval",
            "200ms",
            "--debounce-ms",
            DEBOUNCE_MS,
        ],
    );
    let (_, line) = watcher.wait_for(0, "the `watching` line", is("watching"));
    assert_eq!(text_field(&line, "mode"), "poll", "{line}");
    let (from, first) = watcher.started();
    assert_eq!(
        text_field(&first, "outcome"),
        "applied",
        "{first}\n{}",
        watcher.dump()
    );

    let alice = config.join("users/alice.yaml");
    let text = std::fs::read_to_string(&alice).unwrap();
    std::fs::write(
        &alice,
        edited(&text, "name: Alice Lee", "name: Alice Polled"),
    )
    .unwrap();
    assert_alice_becomes(&world, &watcher, from, "Alice Polled");
}

// ---- Log levels and formats ----

/// `-q`: errors only. An invalid config at start is logged; nothing else.
#[test]
fn watch_quiet_logs_errors_only() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme_invalid());
    let mut watcher = watch(&world, &config, &["-q", "--debounce-ms", DEBOUNCE_MS]);
    watcher.wait_for(0, "the failed first reconcile", failed("invalid"));
    watcher.signal("TERM");
    assert_eq!(watcher.wait_exit(DEADLINE).code(), Some(0));
    let stderr = watcher.stderr_text();
    for line in stderr.lines() {
        let parsed: Value = json(line);
        assert_eq!(parsed["level"], "ERROR", "with -q only errors:\n{stderr}");
    }
    assert!(
        try_show(&world).is_none(),
        "an invalid config applies nothing"
    );
}

/// The default log format is text, one line per reconcile naming it and its
/// outcome, without colour under NO_COLOR.
#[test]
fn watch_logs_text_by_default() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let mut command = world.command(&["watch", arg(&config), "--debounce-ms", DEBOUNCE_MS]);
    command.env("NO_COLOR", "1");
    let mut watcher = Watcher::spawn(command);
    watcher.wait_until("a text `reconciled` line", || {
        watcher
            .stderr_lines()
            .iter()
            .any(|l| l.contains("reconciled") && l.contains("applied"))
    });
    watcher.signal("TERM");
    assert_eq!(watcher.wait_exit(DEADLINE).code(), Some(0));
    let stderr = watcher.stderr_text();
    assert!(!stderr.contains('\u{1b}'), "no colour:\n{stderr}");
    assert!(
        stderr
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_err())
    );
    assert!(stderr.contains("INFO"), "{stderr}");
}

// ---- 11. Bad flags and paths ----

/// Runs a watch command that must end at once; returns its exit status and
/// stderr.
pub(crate) fn run_briefly(command: Command) -> (Option<i32>, String) {
    let mut watcher = Watcher::spawn(command);
    let status = watcher.wait_exit(Duration::from_secs(10));
    (status.code(), watcher.stderr_text())
}

#[test]
fn watch_refuses_bad_flags_naming_the_flag() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    for flags in [
        &["--interval", "0s"][..],
        &["--interval=-5s"],
        &["--interval", "banana"],
        &["--interval", ""],
        &["--poll-interval", "0s", "--poll"],
        &["--poll-interval", "soon", "--poll"],
        &["--debounce-ms=-1"],
        &["--debounce-ms", "banana"],
    ] {
        let (code, stderr) = run_briefly(watch_command(&world, &config, flags));
        let flag = flags[0].split('=').next().unwrap().trim_start_matches('-');
        assert!(
            matches!(code, Some(1 | 2)),
            "`watch {}` exits 1 or 2, not {code:?}\n{stderr}",
            flags.join(" ")
        );
        assert!(
            stderr.contains(flag),
            "`watch {}` names {flag}:\n{stderr}",
            flags.join(" ")
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(
        world.db_bytes().is_empty(),
        "a refused watch creates no database"
    );
}

#[test]
fn watch_exits_1_naming_a_path_that_does_not_exist() {
    let world = Scratch::new();
    let missing = world.path("no-such-config");
    let (code, stderr) = run_briefly(watch_command(&world, &missing, &[]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("no-such-config"),
        "the path is named:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// ---- Caches: an edit reparses one file; a state changed elsewhere is read again ----

/// After a one-file edit of a directory config set, the watcher parses that
/// file only (`parsed` 1, every other file `reused`), and the result is the
/// same as planning from scratch.
#[test]
fn watch_parses_only_the_edited_file_of_a_directory_config_set() {
    let world = Scratch::new();
    let config = example_dir(&world, "acme-prod");
    let (watcher, from) = watching(&world, &config, &["-v"]);
    let first = watcher
        .lines_between(0, from + 1)
        .into_iter()
        .rfind(|l| message(l) == "config set checked")
        .expect("the first reconcile's `config set checked` line");
    let files = field(&first, "files").as_u64().expect("a file count");
    assert_eq!(field(&first, "parsed").as_u64(), Some(files), "{first}");

    let alice = config.join("users/alice.yaml");
    let text = std::fs::read_to_string(&alice).unwrap();
    std::fs::write(&alice, edited(&text, "name: Alice Lee", "name: Alice Kim")).unwrap();
    assert_alice_becomes(&world, &watcher, from, "Alice Kim");
    let (_, checked) = watcher.wait_for(from, "the edit's load", |l| {
        message(l) == "config set checked" && field(l, "parsed").as_u64() == Some(1)
    });
    assert_eq!(
        field(&checked, "reused").as_u64(),
        Some(files - 1),
        "{checked}"
    );
    assert_eq!(
        plan_code(&world, &config),
        0,
        "the cached load planned right"
    );
}

/// The watcher keeps the state it applied, but another process's apply
/// advances the serial, so the next reconcile reads the state again and
/// puts the config back.
#[test]
fn watch_reads_the_state_again_after_another_process_applies() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (watcher, from) = watching(&world, &config, &["--interval", "300ms"]);
    // Outside the watched folders, so that only the interval can notice.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = elsewhere.path().join("acme.yaml");
    std::fs::write(&other, acme_with_alice("Somebody Else")).unwrap();
    world
        .run(&["apply", "--auto-approve", arg(&other)])
        .assert_code(0);
    watcher.wait_state(&world, "alice to be named back", |show| {
        user_name(show, "alice").as_deref() == Some("Alice Lee")
    });
    // The line follows the commit that `show` may already have seen.
    watcher.wait_for(
        from,
        "an interval reconcile that repaired the state",
        reconciled("applied", "interval"),
    );
}

// ---- 12. Small things the watcher does not die of (issue 17 §6) ----

/// SIGHUP (a closed terminal, `kill -HUP`) stops the watcher as SIGTERM
/// does: `stopping` and `stopped` logged with the signal's name, exit 0, the
/// status file saying `stopped` and `status` exiting 1. Before, SIGHUP's
/// default action killed it on the spot, its status file still healthy.
#[test]
fn watch_stops_cleanly_on_sighup_and_status_says_stopped() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (mut watcher, from) = watching(&world, &config, &[]);
    let status_file = default_status_file(&world);
    watcher.wait_until("the status file after the first reconcile", || {
        read_status(&status_file)
            .is_some_and(|s| s["state"] == "watching" && s["last"]["outcome"] == "applied")
    });
    watcher.signal("HUP");
    let status = watcher.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{status}\n{}", watcher.dump());
    let (_, stopping) = watcher.wait_for(from, "the `stopping` line", is("stopping"));
    assert_eq!(text_field(&stopping, "signal"), "SIGHUP", "{stopping}");
    let (_, stopped) = watcher.wait_for(from, "the `stopped` line", is("stopped"));
    assert_eq!(text_field(&stopped, "signal"), "SIGHUP", "{stopped}");
    let after = read_status(&status_file).expect("the status file");
    assert_eq!(after["state"], "stopped", "{after}");
    let (code, doc, _) = status_json(&world, &[]);
    assert_eq!(code, 1, "a stopped watcher is not healthy: {doc}");
}

/// The reader of the watcher's stderr goes away (a log shipper restarting):
/// the watcher keeps working — it applies the next edit, though nobody reads
/// its lines — and still stops cleanly on SIGTERM with exit 0. Before, the
/// first log line it could not write made it panic (exit 101).
#[test]
fn watch_keeps_working_when_the_reader_of_its_stderr_goes_away() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let mut command = watch_command(&world, &config, &["--debounce-ms", DEBOUNCE_MS]);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the watcher starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let line = lines
            .next()
            .expect("the watcher logs its first reconcile")
            .expect("a line");
        if line.contains("\"reconciled\"") {
            break;
        }
        assert!(Instant::now() < deadline, "no first reconcile");
    }
    // The log shipper goes away: the reading end closes.
    drop(lines);
    std::fs::write(&config, acme_with_alice("Alice Unheard")).unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the watcher ended when its stderr closed: {:?}",
            child.try_wait()
        );
        if try_show(&world)
            .is_some_and(|show| user_name(&show, "alice").as_deref() == Some("Alice Unheard"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the edit was not applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    let kill = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = binary::wait_or_kill(&mut child, "supportctl watch", Instant::now());
    assert_eq!(status.code(), Some(0), "{status}");
    let after = read_status(&default_status_file(&world)).expect("the status file");
    assert_eq!(after["state"], "stopped", "{after}");
}

/// An interval that finds nothing to do is logged at debug level, not info
/// (the watcher's routine would fill the log); one that repairs something is
/// still logged at info.
#[test]
fn watch_logs_intervals_that_change_nothing_at_debug_only() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (watcher, from) = watching(&world, &config, &["--interval", "150ms"]);
    watcher.wait_until("several interval reconciles", || {
        read_status(&default_status_file(&world))
            .is_some_and(|s| s["reconciles"].as_u64() >= Some(5))
    });
    let quiet = watcher.count_since(from, |l| {
        message(l) == "reconciled" && text_field(l, "trigger") == "interval"
    });
    assert_eq!(
        quiet,
        0,
        "intervals that changed nothing are not logged at info\n{}",
        watcher.dump()
    );
    // Someone else changes the state: the interval that repairs it says so.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = elsewhere.path().join("acme.yaml");
    std::fs::write(&other, acme_with_alice("Somebody Else")).unwrap();
    world
        .run(&["apply", "--auto-approve", arg(&other)])
        .assert_code(0);
    let (_, repaired) = watcher.wait_for(
        from,
        "the repairing interval",
        reconciled("applied", "interval"),
    );
    assert_eq!(repaired["level"], "INFO", "{repaired}");

    // At `-v` the quiet ones are there, at debug level.
    let second = Scratch::new();
    let config = second.write("acme.yaml", &acme());
    let (verbose, from) = watching(&second, &config, &["-v", "--interval", "150ms"]);
    let (_, line) = verbose.wait_for(
        from,
        "an interval with nothing to do",
        reconciled("no-changes", "interval"),
    );
    assert_eq!(line["level"], "DEBUG", "{line}");
}

/// The 1-based line of the first line of `text` that contains `what`.
#[track_caller]
fn line_of(text: &str, what: &str) -> usize {
    text.lines()
        .position(|l| l.contains(what))
        .unwrap_or_else(|| panic!("`{what}` is not in the text"))
        + 1
}

/// `status` on a watcher whose config set is invalid names the file and
/// line of each finding, in text and JSON, and the reason it is unhealthy
/// leads with the first error's place; for a single file and for a file deep
/// in a directory config set.
#[test]
fn status_names_the_file_and_line_of_an_invalid_config() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme_invalid());
    let line = line_of(&acme_invalid(), "csi: \"CSI-2081\"");
    let watcher = watch(&world, &config, &["--debounce-ms", DEBOUNCE_MS]);
    watcher.wait_for(0, "the invalid first reconcile", failed("invalid"));
    watcher.wait_until("the status file to say invalid", || {
        read_status(&default_status_file(&world))
            .is_some_and(|s| s["last"]["outcome"] == "invalid" && s["state"] == "watching")
    });
    let place = format!("{}:{line}:", config.display());
    let text = world.run(&["status"]);
    text.assert_code(1);
    assert!(
        text.stdout.contains(&place) && text.stdout.contains("E101"),
        "status names {place} and the rule:\n{}",
        text.stdout
    );
    assert!(
        text.stderr.contains(&place),
        "the reason names {place}:\n{}",
        text.stderr
    );
    let (code, doc, _) = status_json(&world, &[]);
    assert_eq!(code, 1);
    let first = &doc["last"]["findings"][0];
    assert_eq!(first["code"], "E101", "{doc}");
    assert_eq!(first["severity"], "error", "{doc}");
    assert!(
        first["location"]
            .as_str()
            .is_some_and(|l| l.starts_with(&place)),
        "{doc}"
    );
    assert!(
        doc["problem"].as_str().is_some_and(|p| p.contains(&place)),
        "{doc}"
    );
    drop(watcher);

    // A directory: the finding is in users/alice.yaml, named with its path.
    let dir_world = Scratch::new();
    let dir = example_dir(&dir_world, "acme-prod");
    let alice = dir.join("users/alice.yaml");
    let text = std::fs::read_to_string(&alice).unwrap();
    let bad = edited(&text, "email: alice@acme.example", "email: not-an-address");
    std::fs::write(&alice, &bad).unwrap();
    let line = line_of(&bad, "not-an-address");
    let watcher = watch(&dir_world, &dir, &["--debounce-ms", DEBOUNCE_MS]);
    watcher.wait_for(0, "the invalid first reconcile", failed("invalid"));
    watcher.wait_until("the status file to say invalid", || {
        read_status(&default_status_file(&dir_world))
            .is_some_and(|s| s["last"]["outcome"] == "invalid")
    });
    let text = dir_world.run(&["status"]);
    let place = format!("{}:{line}:", alice.display());
    assert!(
        text.stdout.contains(&place),
        "status names {place}:\n{}",
        text.stdout
    );
}

// ---- 13. Settling: never apply a config set caught mid-write ----

/// `acme` with its `users` section moved to the end of the file and a last
/// user `zoe` named `zoe_name`: a text whose first part, cut before zoe, is a
/// valid config set without her.
fn acme_ending_with_zoe(zoe_name: &str) -> String {
    let text = acme();
    let users = text.find("\nusers:\n").expect("a users section") + 1;
    let memberships = text.find("\nmemberships:\n").expect("memberships") + 1;
    format!(
        "{}{}{}  zoe:\n    email: zoe@acme.example\n    name: {zoe_name}\n",
        &text[..users],
        &text[memberships..],
        &text[users..memberships]
    )
}

/// Writes `chunks` to `file` from a separate process that holds the file
/// open for writing throughout, pausing `pauses[i]` after chunk `i`: a file
/// written in place in steps (a slow generator, a script). Returns the
/// process; it ends after the last chunk, closing the file.
fn write_in_steps(file: &Path, chunks: &[String], pauses: &[Duration]) -> Child {
    let mut script = String::from("exec 3>\"$0\"\n");
    for (i, _) in chunks.iter().enumerate() {
        let _ = writeln!(script, "printf '%s' \"${}\" >&3", i + 1);
        if let Some(pause) = pauses.get(i).filter(|p| !p.is_zero()) {
            let _ = writeln!(script, "sleep {}", pause.as_secs_f64());
        }
    }
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(file)
        .args(chunks)
        .stdin(Stdio::null())
        .spawn()
        .expect("sh runs")
}

/// The issue's example: a file rewritten in place in two steps, one second
/// apart, by a separate process. The first step alone is a valid config set
/// without the last user; before, the watcher applied it (a transient
/// `destroy` of zoe, then an `add` when the second step came). Now it waits
/// for the writer to close the file and applies the whole once: one update.
#[test]
fn watch_never_applies_a_file_written_in_place_in_two_steps_half_written() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme_ending_with_zoe("Zoe Quinn"));
    let (watcher, from) = watching(&world, &config, &[]);
    let whole = acme_ending_with_zoe("Zoe Park");
    let cut = whole.find("  zoe:").expect("zoe");
    let mut writer = write_in_steps(
        &config,
        &[whole[..cut].to_owned(), whole[cut..].to_owned()],
        &[Duration::from_secs(1)],
    );
    assert!(writer.wait().expect("the writer ends").success());
    watcher.wait_state(&world, "zoe to be named Zoe Park", |show| {
        user_name(show, "zoe").as_deref() == Some("Zoe Park")
    });
    let entries = world.history();
    for entry in &entries {
        assert_eq!(
            entry["summary"]["destroy"],
            0,
            "nothing was ever destroyed: {entry}\n{}",
            watcher.dump()
        );
    }
    assert_eq!(
        entries.len(),
        2,
        "the first apply and one update: {entries:?}"
    );
    assert!(
        watcher.count_since(
            from,
            is("waiting for a config file to be closed by its writer")
        ) >= 1,
        "the wait for the writer is said\n{}",
        watcher.dump()
    );
}

/// The class: a history of in-place rewrites, each cut into 2 to 4 chunks at
/// random bytes (mid-line too: a chunk may end in invalid YAML) with random
/// pauses of up to 0.4 s between them (shorter and longer than the
/// debounce), each by its own writer process. Whatever the cuts, the watcher
/// never applies a part (nothing is ever destroyed), never reports a part
/// invalid, and ends with each round's whole file applied.
#[test]
fn watch_applies_only_whole_files_through_random_in_place_rewrites() {
    let mut dice = Dice::new("watch_applies_only_whole_files");
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme_ending_with_zoe("Zoe 0"));
    let (watcher, from) = watching(&world, &config, &[]);
    for round in 1..=5 {
        let name = format!("Zoe {round}");
        let whole = acme_ending_with_zoe(&name);
        let pieces = dice.draw(2..=4usize);
        let mut cuts: Vec<usize> = (1..pieces).map(|_| dice.draw(1..whole.len())).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut chunks = Vec::new();
        let mut at = 0;
        for cut in cuts.into_iter().chain([whole.len()]) {
            chunks.push(whole[at..cut].to_owned());
            at = cut;
        }
        let pauses: Vec<Duration> = (1..chunks.len())
            .map(|_| dice.within(Duration::from_millis(400)))
            .collect();
        eprintln!(
            "round {round}: {} chunks of {:?} bytes, pauses {pauses:?}",
            chunks.len(),
            chunks.iter().map(String::len).collect::<Vec<_>>()
        );
        let mut writer = write_in_steps(&config, &chunks, &pauses);
        assert!(writer.wait().expect("the writer ends").success());
        watcher.wait_state(&world, &format!("zoe to be named {name}"), |show| {
            user_name(show, "zoe").as_deref() == Some(name.as_str())
        });
    }
    for entry in world.history() {
        assert_eq!(
            entry["summary"]["destroy"],
            0,
            "nothing was ever destroyed: {entry}\n{}",
            watcher.dump()
        );
    }
    assert_eq!(
        watcher.count_since(from, |l| message(l) == "reconcile failed"),
        0,
        "no part of a file was read as a config set\n{}",
        watcher.dump()
    );
}

/// A user moved from one file of a directory config set to another, in two
/// writes (each file closed at once) 50 ms apart, the second landing while
/// the watcher reads (or has just read) the first: the set it read has the
/// user in neither file. Before, it applied that (a `destroy` of zoe, then an
/// `add`). Now the files' stamps a debounce time after the read differ from
/// before it, so nothing is applied until the set is still: then the move
/// plans to no change at all.
#[test]
fn watch_does_not_apply_a_config_set_that_changed_while_it_was_read() {
    let world = Scratch::new();
    let dir = world.path("config");
    std::fs::create_dir_all(&dir).unwrap();
    let zoe = "  zoe:\n    email: zoe@acme.example\n    name: Zoe Quinn\n";
    let yuri = "  yuri:\n    email: yuri@acme.example\n    name: Yuri Ito\n";
    std::fs::write(dir.join("a.yaml"), acme()).unwrap();
    std::fs::write(dir.join("z.yaml"), format!("users:\n{zoe}{yuri}")).unwrap();
    // A long debounce: the second write lands well inside the time the
    // watcher waits after a read before it acts.
    let watcher = watch(&world, &dir, &["-v", "--debounce-ms", "400"]);
    let (from, first) = watcher.started();
    assert_eq!(text_field(&first, "outcome"), "applied", "{first}");

    std::fs::write(dir.join("z.yaml"), format!("users:\n{yuri}")).unwrap();
    let (at, _) = watcher.wait_for(from, "the reconcile of the first write", |l| {
        message(l) == "reconcile started" && text_field(l, "trigger") == "change"
    });
    std::thread::sleep(Duration::from_millis(50));
    std::fs::write(
        dir.join("a.yaml"),
        edited(&acme(), "users:\n", &format!("users:\n{zoe}")),
    )
    .unwrap();
    let (_, done) = watcher.wait_for(at, "the reconcile of the settled set", |l| {
        message(l) == "reconciled"
    });
    assert_eq!(
        text_field(&done, "outcome"),
        "no-changes",
        "{done}\n{}",
        watcher.dump()
    );
    let entries = world.history();
    assert_eq!(
        entries.len(),
        1,
        "only the first apply: {entries:?}\n{}",
        watcher.dump()
    );
    assert!(user_name(&world.show(), "zoe").is_some());
    // How it went, for the record: the wait is said when the second write
    // landed after the first read began (it nearly always does).
    eprintln!(
        "`the config set is changing` said {} time(s)",
        watcher.count_since(
            at,
            is("the config set is changing; waiting for it to settle")
        )
    );
}

// ---- 14. Two watchers, one tenancy ----

/// The example of the issue: two watchers of different config sets for one
/// tenancy, each reconciling every 200 ms. Before, they undid each other's
/// applies (10 applies in 5 s), silently. Now the second sees from the
/// journal that the tenancy's latest watched apply came from another config
/// set, refuses loudly (an error naming that watcher's config set and host)
/// and its status says so, and nothing flaps: the first watcher's apply is
/// the only one.
#[test]
fn a_second_watcher_of_another_config_set_refuses_loudly_and_does_not_flap() {
    let world = Scratch::new();
    let first_config = world.write("one/acme.yaml", &acme());
    let second_config = world.write("two/acme.yaml", &acme_with_alice("Alice Two"));
    let second_status = world.path("two/status.json");
    let (first, first_from) = watching(&world, &first_config, &["--interval", "200ms"]);
    let second = watch(
        &world,
        &second_config,
        &[
            "--debounce-ms",
            DEBOUNCE_MS,
            "--interval",
            "200ms",
            "--status-file",
            arg(&second_status),
        ],
    );
    let (_, refused) = second.started();
    assert_eq!(
        text_field(&refused, "outcome"),
        "contended",
        "{refused}\n{}",
        second.dump()
    );
    assert_eq!(refused["level"], "ERROR", "{refused}");
    let error = text_field(&refused, "error");
    assert!(
        error.contains("kept by another watcher")
            && error.contains(&first_config.display().to_string())
            && error.contains("host `"),
        "the error names the other watcher's config set and host: {error}"
    );
    // Two seconds of intervals on both sides: nothing more is applied.
    std::thread::sleep(Duration::from_secs(2));
    let entries = world.history();
    assert_eq!(
        entries.len(),
        1,
        "only the first watcher's apply: {entries:?}\n{}\n{}",
        first.dump(),
        second.dump()
    );
    assert_eq!(entries[0]["applied_by"]["command"], "watch", "{entries:?}");
    assert_eq!(
        entries[0]["applied_by"]["path"],
        first_config.display().to_string(),
        "{entries:?}"
    );
    assert_eq!(entries[0]["applied_by"]["pid"], first.pid(), "{entries:?}");
    assert_eq!(
        user_name(&world.show(), "alice").as_deref(),
        Some("Alice Lee")
    );
    assert_eq!(
        first.count_since(first_from, |l| message(l) == "reconciled"
            && text_field(l, "outcome") == "applied"),
        0,
        "the first watcher never had to put its config back\n{}",
        first.dump()
    );
    // Said once, not on every look.
    assert_eq!(
        second.count_since(0, failed("contended")),
        1,
        "{}",
        second.dump()
    );
    let (code, doc, stderr) = status_json(&world, &["--status-file", arg(&second_status)]);
    assert_eq!(code, 1, "the second watcher is not healthy: {doc}");
    assert_eq!(doc["last"]["outcome"], "contended", "{doc}");
    assert!(
        stderr.contains("kept by another watcher"),
        "status says why: {stderr}"
    );
    let (code, doc, _) = status_json(&world, &[]);
    assert_eq!(code, 0, "the first watcher is healthy: {doc}");
}

/// `--take-over` takes a tenancy whose latest watched apply came from a
/// watcher of another config set once that watcher is gone (it released
/// the tenancy's lease), with a warning; while that watcher runs it holds
/// the lease, and a watcher of another config set is refused loudly even
/// with `--take-over`: never a flap. An apply by hand in between counts as
/// nobody's watcher: it is put back, with a warning.
#[test]
fn take_over_takes_a_retired_watchers_tenancy_but_never_a_running_ones() {
    let world = Scratch::new();
    let a = world.write("a/acme.yaml", &acme());
    let b = world.write("b/acme.yaml", &acme_with_alice("Alice Bee"));
    let status = |name: &str| world.path(&format!("{name}/status.json"));
    let flags = |name: &str, extra: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = ["--debounce-ms", DEBOUNCE_MS, "--interval", "200ms"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        all.push("--status-file".into());
        all.push(arg(&status(name)).to_owned());
        all.extend(extra.iter().map(|s| s.to_string()));
        all
    };
    let spawn = |config: &Path, name: &str, extra: &[&str]| {
        let flags = flags(name, extra);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        watch(&world, config, &flags)
    };
    let stop = |mut watcher: Watcher| {
        watcher.signal("TERM");
        assert_eq!(watcher.wait_exit(DEADLINE).code(), Some(0));
    };

    // A applies, and is retired.
    let first = spawn(&a, "a", &[]);
    let (_, line) = first.started();
    assert_eq!(text_field(&line, "outcome"), "applied", "{line}");
    stop(first);

    // B without --take-over refuses, and points at --take-over.
    let second = spawn(&b, "b", &[]);
    let (_, line) = second.started();
    assert_eq!(text_field(&line, "outcome"), "contended", "{line}");
    assert!(text_field(&line, "error").contains("--take-over"), "{line}");
    stop(second);

    // B with --take-over takes it, saying so.
    let second = spawn(&b, "b", &["--take-over"]);
    let (at, line) = second.started();
    assert_eq!(
        text_field(&line, "outcome"),
        "applied",
        "{line}\n{}",
        second.dump()
    );
    assert!(
        second.count_since(0, is("taking the tenancy over")) == 1,
        "{}",
        second.dump()
    );
    assert_eq!(
        user_name(&world.show(), "alice").as_deref(),
        Some("Alice Bee")
    );

    // C, of A's config set with --take-over while B runs: B holds the
    // lease, so C refuses, naming B; nothing flaps.
    let third = spawn(&a, "c", &["--take-over"]);
    let (from, line) = third.started();
    assert_eq!(
        text_field(&line, "outcome"),
        "contended",
        "{line}\n{}",
        third.dump()
    );
    let error = text_field(&line, "error");
    assert!(
        error.contains("kept by another watcher") && error.contains(&b.display().to_string()),
        "{line}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(world.history().len(), 2, "A, B's take-over");
    assert_eq!(
        second.count_since(at, failed("contended")),
        0,
        "B, the leader, is not disturbed\n{}",
        second.dump()
    );

    // B stops: C takes the lease at once, and the tenancy with it.
    stop(second);
    let (_, line) = third.wait_for(from, "C's take-over", |l| {
        message(l) == "reconciled" && text_field(l, "outcome") == "applied"
    });
    assert_eq!(text_field(&line, "trigger"), "lease", "{line}");
    assert!(
        third.count_since(from, is("taking the tenancy over")) == 1,
        "{}",
        third.dump()
    );
    assert_eq!(world.history().len(), 3, "A, B's take-over, C's take-over");
    assert_eq!(
        user_name(&world.show(), "alice").as_deref(),
        Some("Alice Lee")
    );

    // An apply by hand is nobody's watcher: C puts its config back, and
    // warns.
    let elsewhere = tempfile::tempdir().unwrap();
    let by_hand = elsewhere.path().join("acme.yaml");
    std::fs::write(&by_hand, acme_with_alice("Alice Hand")).unwrap();
    let from = third.cursor();
    world
        .run(&["apply", "--auto-approve", arg(&by_hand)])
        .assert_code(0);
    let (_, warned) = third.wait_for(
        from,
        "the warning about the apply by hand",
        is("the state was last changed by hand; applying the watched config set over it"),
    );
    assert!(
        text_field(&warned, "by").contains(&by_hand.display().to_string()),
        "{warned}"
    );
    third.wait_state(&world, "alice put back", |show| {
        user_name(show, "alice").as_deref() == Some("Alice Lee")
    });
    let entries = world.history();
    assert_eq!(entries.len(), 5, "{entries:?}");
    assert_eq!(entries[3]["applied_by"]["command"], "apply", "{entries:?}");
    assert_eq!(entries[4]["applied_by"]["command"], "watch", "{entries:?}");
}

/// Two watchers cannot share a status file (each would overwrite the
/// other's, and `status` would tell of either): a second watcher of the same
/// database with the default status file exits 1 at once, naming the running
/// one and `--status-file`. A watcher that was killed leaves a status file
/// that still says `watching`; its process is gone, so the next one starts.
#[test]
fn a_second_watcher_cannot_take_a_running_watchers_status_file() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let other = world.write("other/acme.yaml", &acme_with_alice("Alice Other"));
    let (mut first, _) = watching(&world, &config, &[]);
    let (code, stderr) = run_briefly(watch_command(&world, &other, &[]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", first.pid())) && stderr.contains("--status-file"),
        "names the running watcher and the way out:\n{stderr}"
    );
    assert_eq!(world.history().len(), 1, "the second applied nothing");

    first.child.kill().unwrap();
    first.wait_exit(DEADLINE);
    assert_eq!(
        read_status(&default_status_file(&world)).unwrap()["state"],
        "watching",
        "a killed watcher's status file"
    );
    // The killed watcher's lease is still the tenancy's: the next one
    // stands by until it expires, then takes it and leads.
    let next = watch(&world, &config, &["--debounce-ms", DEBOUNCE_MS]);
    let (from, line) = next.started();
    assert_eq!(text_field(&line, "outcome"), "standby", "{line}");
    let (_, line) = next.wait_for(from, "the lease taken over", |l| {
        message(l) == "reconciled" && text_field(l, "trigger") == "lease"
    });
    assert_eq!(text_field(&line, "outcome"), "no-changes", "{line}");
}

/// issue 19 §4: a watcher whose PostgreSQL server goes away keeps the last
/// good state, fails its reconciles with the reason and retries them with a
/// growing delay, says so in `status`, and applies what changed meanwhile
/// once the server is back — on its own, with no edit to wake it.
#[test]
fn watch_on_postgresql_rides_out_the_server_going_away() {
    let Some(server) = crate::pg_server::private() else {
        return;
    };
    let world = Scratch::at(server.create_database());
    let config = world.write("acme.yaml", &acme());
    let mut watcher = watch(&world, &config, &["--debounce-ms", DEBOUNCE_MS]);
    let (from, first) = watcher.started();
    assert_eq!(text_field(&first, "outcome"), "applied", "{first}");

    server.stop_fast();
    std::fs::write(&config, acme_with_alice("Alice Away")).unwrap();
    let failed = |trigger: &'static str| {
        move |l: &Value| {
            text_field(l, "outcome") == "failed"
                && (trigger.is_empty() || text_field(l, "trigger") == trigger)
        }
    };
    let (at, line) = watcher.wait_for(from, "a reconcile that fails", failed(""));
    let error = text_field(&line, "error").to_owned();
    assert!(
        error.contains("cannot reach the PostgreSQL server"),
        "the error says the server cannot be reached: {line}"
    );
    // Retried, each time after a longer wait.
    let (at, _) = watcher.wait_for(at, "a first retry that fails", failed("retry"));
    let first_retry = Instant::now();
    let (at, _) = watcher.wait_for(at, "a second retry that fails", failed("retry"));
    let second_wait = first_retry.elapsed();
    assert!(
        second_wait >= Duration::from_millis(700),
        "the second retry came {second_wait:?} after the first: no backoff"
    );
    watcher.assert_alive();
    let (code, doc, stderr) = status_json(&world, &[]);
    assert_eq!(
        code, 1,
        "status says the watcher is failing\n{doc}\n{stderr}"
    );
    // Between retries, or in one.
    assert!(
        doc["state"] == "watching" || doc["state"] == "reconciling",
        "{doc}"
    );
    assert_eq!(doc["last"]["outcome"], "failed", "{doc}");
    assert!(doc["last_success_at"].is_string(), "{doc}");

    server.start_again();
    let (_, line) = watcher.wait_for(at, "a retry that applies", |l| {
        text_field(l, "outcome") == "applied"
    });
    // Its retry timer, or its lease campaign taking the lease back (a
    // server away for longer than the lease ends it).
    assert!(
        ["retry", "lease"].contains(&text_field(&line, "trigger")),
        "{line}"
    );
    assert_eq!(
        user_name(&world.show(), "alice").as_deref(),
        Some("Alice Away")
    );
    let (code, doc, _) = status_json(&world, &[]);
    assert_eq!(code, 0, "healthy again\n{doc}");
}
