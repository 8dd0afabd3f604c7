//! supportctl through a connection pooler in transaction mode (issue 20):
//! PgBouncer, which hands each transaction whichever server connection is
//! free, so that nothing may outlive a transaction — no session setting,
//! no session lock, no prepared statement used across two transactions.
//!
//! Each test starts a PostgreSQL server of its own (`pg_server::private`)
//! and a PgBouncer in front of it ([`PgBouncer`]), as the servers run (as
//! the `postgres` user when the tests run as root, which PgBouncer refuses
//! too), listening on a Unix socket in a folder of its own, with a pool of
//! [`POOL_SIZE`] server connections per database, so that the clients of a
//! test really share them. PgBouncer is `SUPPORTCTL_TEST_PGBOUNCER`, else
//! `pgbouncer` on `PATH`, else Debian's `/usr/sbin/pgbouncer`; without it
//! the tests skip, saying so once, except in CI (`CI` set), where they fail
//! (.ci/run installs Debian's `pgbouncer`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::{DEADLINE, Scratch, arg, json};
use crate::pg_server::{self, PgServer};
use crate::replicas::{LEASE, LEASE_FLAGS, RETRY, SLACK};
use crate::watch::{
    DEBOUNCE_MS, acme, acme_with_alice, field, is, message, text_field, user_name, watch,
};

/// The server connections PgBouncer keeps per database (and per user):
/// fewer than the clients of every test here.
const POOL_SIZE: usize = 2;

/// The PgBouncer's socket's port: the socket file's name, no TCP port.
const POOLER_PORT: u16 = 6432;

/// A PgBouncer in transaction mode in front of `server`, stopped (and its
/// folder removed) when dropped, or with the test process.
pub(crate) struct PgBouncer {
    child: Child,
    /// Its folder: the ini file, the user list, the socket, the log.
    root: PathBuf,
}

/// The PgBouncer binary, or why there is none.
fn pgbouncer_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("SUPPORTCTL_TEST_PGBOUNCER") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "SUPPORTCTL_TEST_PGBOUNCER={} is not a file",
                path.display()
            ))
        };
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("pgbouncer"))
        .chain([PathBuf::from("/usr/sbin/pgbouncer")])
        .find(|path| path.is_file())
        .ok_or_else(|| "no `pgbouncer` on PATH or at /usr/sbin/pgbouncer".to_owned())
}

/// In CI, fails the test with `why`; elsewhere says once that the pooler
/// tests are skipped.
fn unavailable(why: &str) {
    assert!(
        !pg_server::in_ci(),
        "PgBouncer is needed and CI is set, so the pooler tests may not skip: {why}\n\
         (install Debian's `pgbouncer` package; .ci/run does)"
    );
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "skipping the connection pooler tests: {why}; install Debian's `pgbouncer` \
             package (or set SUPPORTCTL_TEST_PGBOUNCER) to run them"
        );
    });
}

impl PgBouncer {
    /// Starts a PgBouncer in front of `server`'s socket and waits until it
    /// passes a connection through; `None` (said once) without PgBouncer
    /// outside CI.
    pub(crate) fn start(server: &PgServer) -> Option<PgBouncer> {
        let binary = match pgbouncer_binary() {
            Ok(binary) => binary,
            Err(why) => {
                unavailable(&why);
                return None;
            }
        };
        let root = pg_server::private_dir().unwrap_or_else(|e| panic!("{e}"));
        let quoted = |path: &Path| path.display().to_string();
        // Every database of the server, as the client's user, which the
        // server trusts on its socket; PgBouncer trusts the users it lists.
        let ini = format!(
            "[databases]\n\
             * = host={server_dir} port={server_port}\n\
             \n\
             [pgbouncer]\n\
             listen_addr =\n\
             unix_socket_dir = {root}\n\
             listen_port = {POOLER_PORT}\n\
             auth_type = trust\n\
             auth_file = {root}/userlist.txt\n\
             pool_mode = transaction\n\
             max_client_conn = 100\n\
             default_pool_size = {POOL_SIZE}\n\
             max_db_connections = {POOL_SIZE}\n\
             reserve_pool_size = 0\n\
             logfile = {root}/pgbouncer.log\n",
            server_dir = quoted(server.socket_dir()),
            server_port = server.port(),
            root = quoted(&root),
        );
        let write = |name: &str, text: &str| {
            std::fs::write(root.join(name), text)
                .unwrap_or_else(|e| panic!("cannot write {name} in {}: {e}", root.display()))
        };
        write("pgbouncer.ini", &ini);
        write(
            "userlist.txt",
            &format!("\"{}\" \"\"\n", pg_server::SUPERUSER),
        );
        let mut command = Command::new(&binary);
        command
            .arg(root.join("pgbouncer.ini"))
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SIGKILL when the test process dies: PgBouncer 1.18 leaves SIGQUIT
        // to its default (a core dump).
        let child = pg_server::spawn_as_server_user(command, libc::SIGKILL).unwrap_or_else(|e| {
            let _ = std::fs::remove_dir_all(&root);
            panic!("{e}")
        });
        let mut pooler = PgBouncer { child, root };
        pooler.wait_ready();
        Some(pooler)
    }

    /// Waits until a connection through it reaches the server.
    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            let error = match self.client("postgres") {
                Ok(_) => return,
                Err(e) => e.to_string(),
            };
            if let Some(status) = self.child.try_wait().expect("waiting for PgBouncer") {
                panic!("PgBouncer exited while starting ({status}){}", self.log());
            }
            assert!(
                started.elapsed() < DEADLINE,
                "PgBouncer does not pass connections after {DEADLINE:?} ({error}){}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client of `db` through it, as the superuser.
    fn client(&self, db: &str) -> Result<postgres::Client, postgres::Error> {
        postgres::Config::new()
            .host_path(&self.root)
            .port(POOLER_PORT)
            .user(pg_server::SUPERUSER)
            .dbname(db)
            .connect_timeout(Duration::from_secs(10))
            .connect(postgres::NoTls)
    }

    /// The URL of `db` through it, as `--db` takes it.
    pub(crate) fn url(&self, db: &str) -> String {
        format!(
            "postgres://{}@/{db}?host={}&port={POOLER_PORT}",
            pg_server::SUPERUSER,
            self.root.display()
        )
    }

    /// The end of its log, for a failure message.
    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.root.join("pgbouncer.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "; the end of its log:\n{}",
            lines[lines.len().saturating_sub(20)..].join("\n")
        )
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A private server, a PgBouncer in front of it and a database on it: the
/// scratch's state is that database through the pooler. `None` where the
/// tests skip.
fn pooled() -> Option<(PgServer, PgBouncer, String, Scratch)> {
    let server = pg_server::private()?;
    let pooler = PgBouncer::start(&server)?;
    let database = server.create_database_name();
    let world = Scratch::at(pooler.url(&database));
    Some((server, pooler, database, world))
}

/// Samples, until dropped, how many server sessions a database has besides
/// the sampler's own: the most seen.
struct SessionCount {
    most: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SessionCount {
    fn start(server: &PgServer, database: &str) -> SessionCount {
        let mut client = server.client(database);
        let most = Arc::new(AtomicI64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (most, stop) = (Arc::clone(&most), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let n: i64 = client
                        .query_one(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = \
                             current_database() AND pid <> pg_backend_pid() \
                             AND backend_type = 'client backend'",
                            &[],
                        )
                        .expect("the sessions are counted")
                        .get(0);
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        SessionCount {
            most,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the most sessions seen.
    fn most(mut self) -> i64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the sampler ends");
        }
        self.most.load(Ordering::SeqCst)
    }
}

/// The serials of the journal, in order.
fn serials(history: &[Value]) -> Vec<u64> {
    history
        .iter()
        .map(|e| e["serial"].as_u64().expect("a serial"))
        .collect()
}

/// `plan`, `apply`, `show` and `history` through PgBouncer in transaction
/// mode with two server connections, one command at a time and then eight
/// at once on two states (schemas) of one database: every command works,
/// one apply lands per state and round, and neither state sees the other's
/// rows. Eight clients share the two server connections, so whatever a
/// command left on a server session (a search path, a read-only default,
/// a prepared statement) would reach another command's transactions.
#[test]
fn plan_apply_and_show_work_through_pgbouncer_in_transaction_mode() {
    let Some((server, _pooler, database, world)) = pooled() else {
        return;
    };
    let config = world.write("acme.yaml", &acme());
    let config = arg(&config);
    let plan = world.run(&["plan", "--detailed-exitcode", config]);
    assert_eq!(plan.code(), 2, "{}", plan.transcript());
    let apply = world.ok(&["apply", "--auto-approve", config]);
    assert!(
        apply.stdout.contains("Apply complete"),
        "{}",
        apply.transcript()
    );
    assert_eq!(
        user_name(&world.show(), "alice").as_deref(),
        Some("Alice Lee")
    );
    let plan = world.run(&["plan", "--detailed-exitcode", config]);
    assert_eq!(plan.code(), 0, "{}", plan.transcript());
    assert_eq!(serials(&world.history()), [1]);

    // The same tenancy in a second state, in another schema.
    fn in_other<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [&["--db-schema", "other"][..], args].concat()
    }
    world.ok(&in_other(&["apply", "--auto-approve", config]));

    let sessions = SessionCount::start(&server, &database);
    for round in 0..3 {
        let names = [
            format!("Alice Main {round}"),
            format!("Alice Other {round}"),
        ];
        let main_config = world.write("main/acme.yaml", &acme_with_alice(&names[0]));
        let other_config = world.write("other/acme.yaml", &acme_with_alice(&names[1]));
        let mut running = Vec::new();
        for _ in 0..2 {
            running.push((
                "apply main",
                world.start(&["apply", "--auto-approve", arg(&main_config)]),
            ));
            running.push((
                "apply other",
                world.start(&in_other(&["apply", "--auto-approve", arg(&other_config)])),
            ));
            running.push(("show main", world.start(&["show", "--format", "json"])));
            running.push((
                "show other",
                world.start(&in_other(&["show", "--format", "json"])),
            ));
        }
        let mut landed = [0, 0];
        for (what, child) in running {
            let outcome = child.finish();
            let text = outcome.transcript();
            match (what, outcome.status.code()) {
                ("show main" | "show other", Some(0)) => {
                    assert_eq!(
                        json(&outcome.stdout)["tenancy"]["name"],
                        "acme-prod",
                        "{text}"
                    );
                }
                (_, Some(0)) if outcome.stdout.contains("Apply complete") => {
                    landed[usize::from(what == "apply other")] += 1;
                }
                (_, Some(0)) => assert!(outcome.stdout.contains("No changes"), "{text}"),
                (_, Some(1)) if what.starts_with("apply") => assert!(
                    outcome.stderr.contains("is stale"),
                    "round {round}, {what}: an unexpected refusal\n{text}"
                ),
                (_, code) => panic!("round {round}, {what}: exit {code:?}\n{text}"),
            }
        }
        assert_eq!(
            landed,
            [1, 1],
            "round {round}: one apply lands on each state"
        );
        assert_eq!(
            user_name(&world.show(), "alice").as_deref(),
            Some(names[0].as_str()),
            "round {round}"
        );
        let show_other = json(&world.ok(&in_other(&["show", "--format", "json"])).stdout);
        assert_eq!(
            user_name(&show_other, "alice").as_deref(),
            Some(names[1].as_str()),
            "round {round}"
        );
    }
    let most = sessions.most();
    assert!(
        most <= POOL_SIZE as i64,
        "the server had {most} sessions on the database: more than the pool's {POOL_SIZE}"
    );
    assert_eq!(serials(&world.history()), [1, 2, 3, 4]);
    let other_history = match json(&world.ok(&in_other(&["history", "--format", "json"])).stdout) {
        Value::Array(entries) => entries,
        doc => panic!("history is not a list: {doc}"),
    };
    assert_eq!(serials(&other_history), [1, 2, 3, 4]);
}

/// Commands run again and again on a thread while a test goes on: readers
/// through the pooler beside the watchers. Each must succeed.
struct Readers {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Readers {
    /// `show` and `plan --detailed-exitcode` of `config` by turns on
    /// `db`, with the cache folder of `world`, until stopped.
    fn start(world: &Scratch, config: &Path) -> Readers {
        let stop = Arc::new(AtomicBool::new(false));
        let commands = [
            world.command(&["show", "--format", "json"]),
            world.command(&["plan", "--detailed-exitcode", arg(config)]),
            world.command(&["history"]),
        ];
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut commands = commands;
                let mut turn = 0;
                while !stop.load(Ordering::SeqCst) {
                    let command = &mut commands[turn % 3];
                    turn += 1;
                    let outcome = crate::binary::run(command);
                    let fine = match turn % 3 {
                        2 => matches!(outcome.status.code(), Some(0 | 2)),
                        _ => outcome.status.code() == Some(0),
                    };
                    if !fine {
                        failures.push(outcome.transcript());
                    }
                }
                failures
            })
        };
        Readers {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops them; what failed.
    fn failures(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .map(|t| t.join().expect("the readers' thread"))
            .unwrap_or_default()
    }
}

impl Drop for Readers {
    /// Stops them before the test's folder goes (a failed test).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The epoch of a `leading` line.
fn epoch(line: &Value) -> u64 {
    field(line, "epoch").as_u64().expect("an epoch")
}

/// Two replicas of `watch` through PgBouncer (transaction mode, two server
/// connections for the watchers' four connections and those of the
/// commands run beside them all along), with a short lease: exactly one leads, the other stands by; an edit is applied
/// once, by the leader; the leader killed with SIGKILL, the standby takes
/// the lease within the lease, a retry period and some slack, and applies
/// the next edit; the journal's serials follow each other, each entry by
/// the leader of its time.
#[test]
fn two_watchers_through_pgbouncer_elect_one_leader_and_hand_over_when_it_is_killed() {
    let Some((_server, _pooler, _database, world)) = pooled() else {
        return;
    };
    let config = world.write("acme.yaml", &acme());
    let replica = |name: &str| {
        let status = world.path(&format!("{name}.status.json"));
        let mut flags = vec!["--debounce-ms", DEBOUNCE_MS, "--status-file", arg(&status)];
        flags.extend(LEASE_FLAGS);
        watch(&world, &config, &flags)
    };
    let (a, b) = (replica("a"), replica("b"));
    let (a_from, a_first) = a.started();
    let (b_from, b_first) = b.started();
    // From the first apply on, commands beside them, all through the pooler.
    let readers = Readers::start(&world, &config);
    let outcomes = [
        text_field(&a_first, "outcome"),
        text_field(&b_first, "outcome"),
    ];
    let (mut leader, leader_from, standby, standby_from) = match outcomes {
        ["applied", "standby"] => (a, a_from, b, b_from),
        ["standby", "applied"] => (b, b_from, a, a_from),
        other => panic!(
            "not one leader and one standby: {other:?}\n{}\n{}",
            a.dump(),
            b.dump()
        ),
    };
    assert_eq!(
        leader.count_since(0, is("leading: this watcher took the lease")),
        1,
        "{}",
        leader.dump()
    );
    let (_, took) = leader.wait_for(
        0,
        "the leader's lease",
        is("leading: this watcher took the lease"),
    );
    let first_epoch = epoch(&took);
    standby.wait_for(
        0,
        "the standby's word",
        is("standing by: another watcher leads"),
    );
    assert_eq!(
        standby.count_since(0, is("leading: this watcher took the lease")),
        0,
        "{}",
        standby.dump()
    );

    // An edit: applied once, by the leader.
    replace(&config, &acme_with_alice("Alice Pooled"));
    leader.wait_for(leader_from, "the leader's apply of the edit", |l| {
        message(l) == "reconciled" && text_field(l, "outcome") == "applied" && woken_by_the_edit(l)
    });
    standby.wait_for(standby_from, "the standby's look at the edit", |l| {
        message(l) == "reconciled" && text_field(l, "outcome") == "standby" && woken_by_the_edit(l)
    });
    assert_eq!(serials(&world.history()), [1, 2]);

    // The leader dies without a word: its lease must expire first.
    let standby_at = standby.cursor();
    let killed_pid = leader.pid();
    leader.kill();
    let killed = Instant::now();
    let (took_at, took) = standby.wait_for(
        standby_at,
        "the standby's take-over",
        is("leading: this watcher took the lease"),
    );
    let waited = killed.elapsed();
    eprintln!("took over {waited:?} after the kill");
    assert!(
        epoch(&took) > first_epoch,
        "the take-over's epoch {} is not past {first_epoch}",
        epoch(&took)
    );
    assert!(
        waited <= LEASE + RETRY + SLACK,
        "the standby took {waited:?} to take over: more than the lease, a retry period and {SLACK:?}\n{}",
        standby.dump()
    );
    let (took_at, _) = standby.wait_for(took_at, "the new leader's reconcile", |l| {
        message(l) == "reconciled" && text_field(l, "trigger") == "lease"
    });
    replace(&config, &acme_with_alice("Alice Handed Over"));
    standby.wait_for(took_at, "the new leader's apply of the next edit", |l| {
        message(l) == "reconciled" && text_field(l, "outcome") == "applied" && woken_by_the_edit(l)
    });
    assert_eq!(
        user_name(&world.show(), "alice").as_deref(),
        Some("Alice Handed Over")
    );

    let history = world.history();
    assert_eq!(serials(&history), [1, 2, 3], "{history:?}");
    let by: Vec<u64> = history
        .iter()
        .map(|e| e["applied_by"]["pid"].as_u64().expect("a pid"))
        .collect();
    assert_eq!(
        by,
        [killed_pid, killed_pid, standby.pid()].map(u64::from),
        "each entry by the leader of its time"
    );
    let failures = readers.failures();
    assert!(
        failures.is_empty(),
        "{} commands beside the watchers failed, the first:\n{}",
        failures.len(),
        failures[0]
    );
}

/// A reconcile that read an edit: woken by it, or by news of the lease
/// that came while the edit settled (the reconcile then carries the
/// lease's trigger; on a loaded machine a leader may miss a renewal and
/// take its lease back meanwhile).
/// Writes `text` to `path` as an editor saves: whole, under another name,
/// then renamed over it, so that the commands reading the file beside the
/// watchers never read it half-written (a plain write truncates it first).
fn replace(path: &std::path::Path, text: &str) {
    let temporary = path.with_extension("yaml.saving");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn woken_by_the_edit(l: &Value) -> bool {
    ["change", "lease"].contains(&text_field(l, "trigger"))
}
