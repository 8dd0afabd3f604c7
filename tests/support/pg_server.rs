//! A real PostgreSQL server for the tests and the benchmark, started by
//! them: issue 19 §7 ("Tested on a real server, in CI").
//!
//! Self-contained (it names nothing of supportctl's), so that both
//! `tests/it/` and `benches/bench.rs` include it by `#[path]`:
//! `"../support/pg_server.rs"` from `tests/it/`,
//! `"../tests/support/pg_server.rs"` from `benches/`.
//!
//! - [`shared`]: the one server of a test process, started on first use;
//!   a test takes a database of its own on it ([`PgServer::create_database`]).
//! - [`private`]: a server of the caller's own, stopped when dropped, for a
//!   test that restarts it ([`PgServer::restart`]): restarting the shared
//!   one would cut every other test's connections.
//! - [`tls_server`]: a separate server on `127.0.0.1` with TLS, with a
//!   certificate for `localhost` signed by a CA made for it.
//! - [`private_tcp`]: a [`private`] server that also listens on
//!   `127.0.0.1` without TLS, for a test that puts something between the
//!   client and the server (a proxy that cuts the network).
//!
//! The tests that start a program of their own beside a server (a
//! connection pooler) use the same ways to run it: [`private_dir`],
//! [`spawn_as_server_user`], [`in_ci`].
//!
//! **How a server runs.** `initdb` in a fresh temporary directory (under
//! `$TMPDIR`, named `supportctl-pg.PID.*`), then `postgres` in the
//! foreground as a child of this process, listening on a Unix socket in
//! that directory only (the TLS and TCP servers also on `127.0.0.1`), with
//! durability off (`fsync`, `synchronous_commit`, `full_page_writes`): the
//! data is thrown away. PostgreSQL refuses to run as root, so as root
//! both run as the `postgres` user (Debian's package makes it), switched to
//! in the child before `exec`, the directory chowned to it. Binaries: the
//! newest `/usr/lib/postgresql/*/bin` (Debian's layout), else
//! `pg_config --bindir`, else `initdb` on `PATH`;
//! `SUPPORTCTL_TEST_PG_BINDIR` overrides.
//!
//! **Cleanup.** A server must not outlive the process, even when a test
//! panics or the process is killed:
//! - every `postgres` gets `PR_SET_PDEATHSIG` (`SIGQUIT`, PostgreSQL's
//!   immediate shutdown; its own children follow their postmaster). The
//!   signal fires when the *thread* that forked dies, not the process, and
//!   libtest ends a test's thread with the test; so every child is spawned by
//!   one thread that lives as long as the process (`spawner`).
//! - on a normal exit (libtest exits through `exit` whether tests passed or
//!   failed) an `atexit` handler stops every server still running and
//!   removes its directory; a [`private`] or [`tls_server`] server does that
//!   when dropped.
//! - a process that was killed leaves its directory behind: the next
//!   process that starts a server removes the directories of processes that
//!   no longer run.
//!
//! **Skipping.** Without the binaries, or when a server cannot start, a
//! test process in CI (`CI` set, and not `false` or `0`) panics: a
//! PostgreSQL test never skips there. Elsewhere [`shared`], [`private`] and
//! [`tls_server`] return `None` after one line on stderr saying why and how
//! to enable them, and the test returns early.
//!
//! The files are written by the harness with `std::fs`, and the server's
//! own log is `server.log` in its directory: a server that will not start
//! is reported with the end of that log.

// Each includer uses a part of this module: the benchmark, for one, never
// starts a TLS server.
#![allow(dead_code)]

use std::ffi::{CString, OsStr};
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The superuser the servers are made with, trusted on their socket.
pub const SUPERUSER: &str = "postgres";

/// A role that must give its password, even on the socket (SCRAM), for the
/// tests of a wrong password; so must its members, the roles
/// [`PgServer::create_database_as_password_role`] makes. It may log in; it
/// owns nothing, and may not create a schema in a database it did not
/// create.
pub const PASSWORD_ROLE: &str = "supportctl_pw";

/// [`PASSWORD_ROLE`]'s password.
pub const PASSWORD_ROLE_PASSWORD: &str = "correct horse battery staple";

/// How long a server may take to accept connections after `postgres` was
/// started: generous, the machine may be busy with the other tests.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// How long a stopping server may take before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// The prefix of every server's directory under `$TMPDIR`, followed by the
/// id of the process that made it: what finds those a killed process left.
const DIR_PREFIX: &str = "supportctl-pg.";

/// A running PostgreSQL server of this process (see the module's comment).
pub struct PgServer {
    bin_dir: PathBuf,
    /// The directory that holds everything: the socket, `data/`,
    /// `server.log` (and the TLS files). Removed when the server stops.
    root: PathBuf,
    port: u16,
    /// Who runs `initdb` and `postgres`: `None` for this process's user,
    /// or the `postgres` user's ids when this process runs as root.
    run_as: Option<(libc::uid_t, libc::gid_t)>,
    /// The running postmaster; replaced by [`PgServer::restart`].
    child: Mutex<Child>,
    /// The postmaster's pid, also in [`LIVE`] for the `atexit` handler; 0
    /// once stopped.
    pid: Arc<AtomicI32>,
    /// The shared server is never restarted (see [`PgServer::restart`]).
    shared: bool,
}

/// The TLS server ([`tls_server`]): PostgreSQL on `127.0.0.1:port` with
/// `ssl=on` and `hostssl all all 127.0.0.1/32 trust`, its certificate for
/// the name `localhost` only (not `127.0.0.1`: connecting by address is the
/// wrong host name that `verify-full` must refuse), signed by a CA made for
/// it, [`TlsServer::ca_file`]. Its Unix socket works too, without TLS.
pub struct TlsServer {
    server: PgServer,
    ca_file: PathBuf,
}

impl TlsServer {
    /// The TCP port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The CA certificate (PEM) that signed the server's: what a client
    /// trusts as `sslrootcert`.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The server itself: its socket, databases, clients.
    pub fn server(&self) -> &PgServer {
        &self.server
    }

    /// A URL to `db` over TCP as the superuser, for `host` (`localhost`,
    /// the certificate's name, or another to be refused) at `127.0.0.1`,
    /// with `sslmode` and the CA as `sslrootcert`.
    pub fn url(&self, host: &str, db: &str, sslmode: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@{host}:{}/{}?hostaddr=127.0.0.1&sslmode={sslmode}&sslrootcert={}",
            self.port(),
            encode(db),
            encode(&self.ca_file.to_string_lossy()),
        )
    }
}

/// The one server of this process, started on first use; `None` (with one
/// line on stderr) when PostgreSQL is not there outside CI.
pub fn shared() -> Option<&'static PgServer> {
    static SHARED: OnceLock<Result<PgServer, String>> = OnceLock::new();
    let started = SHARED.get_or_init(|| {
        PgServer::start(&Setup::SOCKET_ONLY).map(|mut server| {
            server.shared = true;
            server
        })
    });
    match started {
        Ok(server) => Some(server),
        Err(why) => {
            unavailable(why);
            None
        }
    }
}

/// A server of the caller's own, stopped and removed when dropped: for a
/// test that restarts it or otherwise disturbs it. `None` as [`shared`].
pub fn private() -> Option<PgServer> {
    PgServer::start(&Setup::SOCKET_ONLY)
        .map_err(|why| unavailable(&why))
        .ok()
}

/// A separate server with TLS on `127.0.0.1` (see [`TlsServer`]), stopped
/// when dropped. `None` as [`shared`] (`openssl` missing counts as
/// PostgreSQL missing: Debian's `postgresql` depends on it, through
/// `ssl-cert`).
pub fn tls_server() -> Option<TlsServer> {
    on_free_port(true)
        .map(|server| {
            let ca_file = server.root.join("ca.crt");
            TlsServer { server, ca_file }
        })
        .map_err(|why| unavailable(&why))
        .ok()
}

/// A server of the caller's own, as [`private`], that also listens on
/// `127.0.0.1:port` ([`PgServer::port`]) without TLS, trusting every
/// connection from this machine ([`PgServer::tcp_url`]). `None` as
/// [`shared`].
pub fn private_tcp() -> Option<PgServer> {
    on_free_port(false).map_err(|why| unavailable(&why)).ok()
}

/// A server on a free TCP port of `127.0.0.1`, with TLS or without.
fn on_free_port(tls: bool) -> Result<PgServer, String> {
    // Another process may take the free port between the probe and the
    // server's bind: try again with another.
    let mut last = String::new();
    for _ in 0..3 {
        let port = match free_port() {
            Ok(port) => port,
            Err(e) => {
                last = format!("no free TCP port on 127.0.0.1: {e}");
                continue;
            }
        };
        match PgServer::start(&Setup {
            tcp_port: Some(port),
            tls,
        }) {
            Ok(server) => return Ok(server),
            // Only a port taken meanwhile is worth another try.
            Err(why) if why.contains("could not bind") => last = why,
            Err(why) => return Err(why),
        }
    }
    Err(last)
}

/// In CI, fails the test with `why`; elsewhere prints the one line saying
/// the PostgreSQL tests are skipped (once per process).
fn unavailable(why: &str) {
    if in_ci() {
        panic!(
            "PostgreSQL is needed and CI is set, so the PostgreSQL tests may not skip: {why}\n\
             (install Debian's `postgresql` package; .ci/run does)"
        );
    }
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        // Written to stderr directly: libtest captures `eprintln!` of a test
        // that passes, and this line is for whoever runs the tests.
        let _ = writeln!(
            io::stderr(),
            "skipping PostgreSQL tests: {why}; install Debian's `postgresql` package (or set \
             SUPPORTCTL_TEST_PG_BINDIR) to run them"
        );
    });
}

/// Whether this runs in CI: `CI` set to anything but empty, `0` or `false`
/// (CI services set `CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// What differs between the servers: a TCP port, and TLS on it.
struct Setup {
    /// `Some(port)`: listen on `127.0.0.1:port` as well.
    tcp_port: Option<u16>,
    /// TLS on that port, and only TLS.
    tls: bool,
}

impl Setup {
    const SOCKET_ONLY: Setup = Setup {
        tcp_port: None,
        tls: false,
    };
}

impl PgServer {
    /// Makes a directory, runs `initdb` in it, configures and starts the
    /// server and waits until it accepts connections; the error says why
    /// not, with the end of the server's log.
    fn start(setup: &Setup) -> Result<PgServer, String> {
        sweep_leftovers();
        let bin_dir = bin_dir()?;
        let run_as = run_as()?;
        let root = make_root(run_as)?;
        // From here on the directory is removed on failure, like a server.
        let pid = Arc::new(AtomicI32::new(0));
        register(&pid, &root);
        let started = (|| {
            initdb(&bin_dir, &root, run_as)?;
            let port = setup.tcp_port.unwrap_or(5432);
            configure(&root, port, setup.tcp_port.is_some(), setup.tls)?;
            if setup.tls {
                make_certificates(&root, run_as)?;
            }
            let child = spawn_postgres(&bin_dir, &root, run_as)?;
            pid.store(child_pid(&child), Ordering::SeqCst);
            let server = PgServer {
                bin_dir: bin_dir.clone(),
                root: root.clone(),
                port,
                run_as,
                child: Mutex::new(child),
                pid: Arc::clone(&pid),
                shared: false,
            };
            server.wait_ready()?;
            server.create_password_role()?;
            Ok(server)
        })();
        if started.is_err() {
            stop_and_remove(&pid, &root);
        }
        started
    }

    /// The directory of the server's Unix socket (libpq's `host` for a
    /// socket), which holds everything else of the server too: `data/`,
    /// `server.log`.
    pub fn socket_dir(&self) -> &Path {
        &self.root
    }

    /// The port: the name of the socket file, and the TCP port of the TLS
    /// server and of [`private_tcp`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A libpq URL to `db` over TCP on `127.0.0.1:port` as the superuser,
    /// without TLS: for [`private_tcp`], or `port` of something that
    /// forwards to it.
    pub fn tcp_url(&self, port: u16, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@127.0.0.1:{port}/{}?sslmode=disable",
            encode(db)
        )
    }

    /// A libpq URL to `db` on the socket as the superuser:
    /// `postgres://postgres@/DB?host=/socket/dir&port=PORT`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@/{}?host={}&port={}",
            encode(db),
            encode_dir(&self.root),
            self.port
        )
    }

    /// A libpq URL to `db` on the socket as [`PASSWORD_ROLE`] with
    /// `password` (right or wrong).
    pub fn password_url(&self, db: &str, password: &str) -> String {
        format!(
            "postgres://{PASSWORD_ROLE}:{}@/{}?host={}&port={}",
            encode(password),
            encode(db),
            encode_dir(&self.root),
            self.port
        )
    }

    /// Creates a database no other test uses and gives its URL
    /// ([`PgServer::url`]).
    pub fn create_database(&self) -> String {
        self.url(&self.create_database_name())
    }

    /// Creates a database no other test uses (`test_N`, owned by the
    /// superuser) and gives its name.
    pub fn create_database_name(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let name = format!("test_{}", NEXT.fetch_add(1, Ordering::SeqCst));
        self.client("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create database {name}: {}", describe(&e)));
        name
    }

    /// Creates a role of its own with `password` (a member of
    /// [`PASSWORD_ROLE`], so that it too must give it, see `pg_hba.conf`)
    /// and a database it owns, and gives the URL of that database as that
    /// role, password included:
    /// `postgres://ROLE:PASSWORD@/DB?host=/socket/dir&port=PORT`. A role per
    /// call, so that tests running at once never change each other's
    /// password.
    pub fn create_database_as_password_role(&self, password: &str) -> String {
        let database = self.create_database_name();
        let role = format!("{PASSWORD_ROLE}_{database}");
        self.client("postgres")
            .batch_execute(&format!(
                "SET password_encryption = 'scram-sha-256';
                 CREATE ROLE {role} LOGIN IN ROLE {PASSWORD_ROLE} PASSWORD '{}';
                 ALTER DATABASE {database} OWNER TO {role}",
                password.replace('\'', "''")
            ))
            .unwrap_or_else(|e| panic!("cannot make {role} own {database}: {}", describe(&e)));
        format!(
            "postgres://{role}:{}@/{database}?host={}&port={}",
            encode(password),
            encode_dir(&self.root),
            self.port
        )
    }

    /// The directory of the server's binaries (`psql` is there too).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The postmaster's process id (0 while stopped).
    pub fn pid(&self) -> i32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// A client connected to `db` on the socket as the superuser.
    pub fn client(&self, db: &str) -> postgres::Client {
        self.try_client(db).unwrap_or_else(|e| {
            panic!(
                "cannot connect to database {db} on the test server in {}: {}",
                self.root.display(),
                describe(&e)
            )
        })
    }

    /// [`PgServer::client`], or the driver's error.
    pub fn try_client(&self, db: &str) -> Result<postgres::Client, postgres::Error> {
        self.config(db).connect(postgres::NoTls)
    }

    /// The client settings for `db` on the socket as the superuser, for a
    /// test that changes some (user, password, timeouts).
    pub fn config(&self, db: &str) -> postgres::Config {
        let mut config = postgres::Config::new();
        config
            .host_path(&self.root)
            .port(self.port)
            .user(SUPERUSER)
            .dbname(db)
            .connect_timeout(Duration::from_secs(10));
        config
    }

    /// Stops the server as `pg_ctl stop -m fast` does (every session ended,
    /// a checkpoint) and starts it again on the same directory, waiting
    /// until it accepts connections: for the tests of a server that goes
    /// away. Only on a server of the test's own ([`private`]): the shared
    /// one is refused, as its other users would lose their connections.
    pub fn restart(&self) {
        assert!(
            !self.shared,
            "restart the test's own server (pg_server::private()), not the shared one: \
             every other test's connections would be cut"
        );
        self.stop_fast();
        self.start_again();
    }

    /// Stops the server as `pg_ctl stop -m fast` does and waits for it;
    /// [`PgServer::start_again`] starts it again.
    pub fn stop_fast(&self) {
        assert!(!self.shared, "the shared server is never stopped by a test");
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        signal_and_wait(&mut child, libc::SIGINT, &self.root);
        self.pid.store(0, Ordering::SeqCst);
    }

    /// Starts a server stopped by [`PgServer::stop_fast`] again, on the same
    /// directory and port, and waits until it accepts connections.
    pub fn start_again(&self) {
        assert!(!self.shared, "the shared server is never stopped by a test");
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            matches!(child.try_wait(), Ok(Some(_))),
            "start_again: the server in {} is still running",
            self.root.display()
        );
        let next = spawn_postgres(&self.bin_dir, &self.root, self.run_as)
            .unwrap_or_else(|e| panic!("cannot start the server again: {e}"));
        self.pid.store(child_pid(&next), Ordering::SeqCst);
        *child = next;
        drop(child);
        self.wait_ready()
            .unwrap_or_else(|e| panic!("the restarted server does not come up: {e}"));
    }

    /// Waits until the server accepts connections, failing early when it
    /// exited; the error holds the end of its log.
    fn wait_ready(&self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let last = match self.try_client("postgres") {
                Ok(_) => return Ok(()),
                Err(e) => describe(&e),
            };
            let exited = {
                let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
                child.try_wait().ok().flatten()
            };
            if let Some(status) = exited {
                return Err(format!(
                    "the server exited while starting ({status}){}",
                    log_tail(&self.root)
                ));
            }
            if started.elapsed() > READY_WITHIN {
                return Err(format!(
                    "the server does not accept connections after {} s ({last}){}",
                    READY_WITHIN.as_secs(),
                    log_tail(&self.root)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Creates [`PASSWORD_ROLE`], its password stored as SCRAM.
    fn create_password_role(&self) -> Result<(), String> {
        let mut client = self.try_client("postgres").map_err(|e| describe(&e))?;
        client
            .batch_execute(&format!(
                "SET password_encryption = 'scram-sha-256';
                 CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{}'",
                PASSWORD_ROLE_PASSWORD.replace('\'', "''")
            ))
            .map_err(|e| format!("cannot create the role {PASSWORD_ROLE}: {}", describe(&e)))
    }
}

impl Drop for PgServer {
    /// Stops the server and removes its directory. (The shared server lives
    /// in a static, never dropped: the `atexit` handler does it.)
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if child.try_wait().ok().flatten().is_none() {
            signal_and_wait(&mut child, libc::SIGQUIT, &self.root);
        }
        self.pid.store(0, Ordering::SeqCst);
        drop(child);
        stop_and_remove(&self.pid, &self.root);
    }
}

/// The driver's error with its cause (`Display` alone often says only
/// "db error").
fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

/// Percent-encodes `text` for any part of a URL (a user, a password, a
/// database), keeping only the unreserved characters.
fn encode(text: &str) -> String {
    encode_keeping(text, b"")
}

/// Percent-encodes a socket directory for a URL's query (`host=`), keeping
/// its `/`, which a query may hold, so that it stays readable.
fn encode_dir(dir: &Path) -> String {
    encode_keeping(&dir.to_string_lossy(), b"/")
}

fn encode_keeping(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || keep.contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Where `initdb` and `postgres` are (see the module's comment).
fn bin_dir() -> Result<PathBuf, String> {
    let has_server = |dir: &Path| dir.join("postgres").is_file() && dir.join("initdb").is_file();
    if let Some(dir) = std::env::var_os("SUPPORTCTL_TEST_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return if has_server(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "SUPPORTCTL_TEST_PG_BINDIR={} holds no `postgres` and `initdb`",
                dir.display()
            ))
        };
    }
    // Debian: /usr/lib/postgresql/VERSION/bin, the newest version first.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| has_server(dir))
        .ok_or_else(|| {
            "no PostgreSQL server binaries (`initdb`, `postgres`) in /usr/lib/postgresql/*/bin, \
             `pg_config --bindir` or PATH"
                .to_owned()
        })
}

/// The ids to run the server as: `None` (this process's) unless this runs
/// as root, which PostgreSQL refuses; then the `postgres` user's.
fn run_as() -> Result<Option<(libc::uid_t, libc::gid_t)>, String> {
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = CString::new(SUPERUSER).expect("a user name without NUL");
    // SAFETY: an all-zero passwd is a valid value to be overwritten.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to memory owned here, of the size given;
    // getpwnam_r writes only there and sets `found` to `&entry` or null.
    let code = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if code != 0 || found.is_null() {
        return Err(format!(
            "this runs as root, which the PostgreSQL server refuses, and there is no \
             `{SUPERUSER}` user to run it as"
        ));
    }
    Ok(Some((entry.pw_uid, entry.pw_gid)))
}

/// Makes the server's directory (mode 0700), handed to the user the server
/// runs as.
fn make_root(run_as: Option<(libc::uid_t, libc::gid_t)>) -> Result<PathBuf, String> {
    let mut parent = std::env::temp_dir();
    // A socket's path is at most 107 bytes: `ROOT/.s.PGSQL.PORT` must fit.
    if parent.as_os_str().len() > 60 {
        parent = PathBuf::from("/tmp");
    }
    let dir = tempfile::Builder::new()
        .prefix(&format!("{DIR_PREFIX}{}.", std::process::id()))
        .tempdir_in(&parent)
        .map_err(|e| format!("cannot make a directory in {}: {e}", parent.display()))?;
    let root = dir.keep();
    if let Some((uid, gid)) = run_as {
        chown(&root, uid, gid)?;
    }
    Ok(root)
}

/// Hands `path` to `uid`:`gid`.
fn chown(path: &Path, uid: libc::uid_t, gid: libc::gid_t) -> Result<(), String> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{} holds a NUL byte", path.display()))?;
    // SAFETY: a NUL-terminated path owned here.
    if unsafe { libc::chown(c_path.as_ptr(), uid, gid) } != 0 {
        return Err(format!(
            "cannot hand {} to the `{SUPERUSER}` user: {}",
            path.display(),
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// `initdb` into `ROOT/data`: the superuser [`SUPERUSER`] trusted (the
/// `pg_hba.conf` written next replaces initdb's), UTF-8, the C locale, and
/// nothing synced to disk.
fn initdb(
    bin_dir: &Path,
    root: &Path,
    run_as: Option<(libc::uid_t, libc::gid_t)>,
) -> Result<(), String> {
    let mut command = Command::new(bin_dir.join("initdb"));
    command
        .arg("-D")
        .arg(root.join("data"))
        .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C"])
        .arg("--no-sync")
        .current_dir(root)
        .env_remove("PGDATA")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    as_server_user(&mut command, run_as);
    let child = spawn(command).map_err(|e| format!("cannot run initdb: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot wait for initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// The settings and `pg_hba.conf` of a server on the socket in `root`
/// (and on `127.0.0.1` when `tcp`, with TLS only when `tls`).
fn configure(root: &Path, port: u16, tcp: bool, tls: bool) -> Result<(), String> {
    let data = root.join("data");
    let quoted = |path: &Path| path.to_string_lossy().replace('\'', "''");
    let mut settings = format!(
        "\n# supportctl's test server (tests/support/pg_server.rs)\n\
         listen_addresses = '{}'\n\
         port = {port}\n\
         unix_socket_directories = '{}'\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n\
         max_connections = 200\n",
        if tcp { "127.0.0.1" } else { "" },
        quoted(root),
    );
    if tls {
        let _ = write!(
            settings,
            "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            quoted(&root.join("server.crt")),
            quoted(&root.join("server.key")),
        );
    }
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf)
        .map_err(|e| format!("cannot read {}: {e}", conf.display()))?;
    text.push_str(&settings);
    std::fs::write(&conf, text).map_err(|e| format!("cannot write {}: {e}", conf.display()))?;

    // The first line that matches decides: the password role and its
    // members (`+`) always give their password, everyone else is trusted
    // on the socket, and over TCP only connections from this machine are
    // accepted: only TLS ones on the TLS server.
    let mut hba = format!(
        "# supportctl's test server (tests/support/pg_server.rs)\n\
         local all +{PASSWORD_ROLE} scram-sha-256\n\
         local all all trust\n"
    );
    if tls {
        hba.push_str("hostssl all all 127.0.0.1/32 trust\n");
    } else if tcp {
        hba.push_str("host all all 127.0.0.1/32 trust\n");
    }
    let hba_file = data.join("pg_hba.conf");
    std::fs::write(&hba_file, hba).map_err(|e| format!("cannot write {}: {e}", hba_file.display()))
}

/// A CA and a certificate for `localhost` signed by it, made with
/// `openssl` (Debian's `postgresql` depends on it, through `ssl-cert`):
/// `ROOT/ca.crt`, `ROOT/server.crt` and `ROOT/server.key`, the key readable
/// by the server's user only, as PostgreSQL requires. P-256 keys: quick to
/// make, and what rustls's webpki verifies.
fn make_certificates(
    root: &Path,
    run_as: Option<(libc::uid_t, libc::gid_t)>,
) -> Result<(), String> {
    let openssl = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(root)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run openssl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "30",
                "-subj",
                "/CN=supportctl test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
    )?;
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    )?;
    let extensions = root.join("server.ext");
    std::fs::write(
        &extensions,
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature, keyEncipherment\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:localhost\n",
    )
    .map_err(|e| format!("cannot write {}: {e}", extensions.display()))?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "30",
        "-extfile",
        "server.ext",
    ])?;
    let key = root.join("server.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| format!("cannot set the mode of {}: {e}", key.display()))?;
    if let Some((uid, gid)) = run_as {
        for file in ["server.key", "server.crt", "ca.crt"] {
            chown(&root.join(file), uid, gid)?;
        }
    }
    Ok(())
}

/// Starts `postgres` on `ROOT/data`, its output appended to
/// `ROOT/server.log`.
fn spawn_postgres(
    bin_dir: &Path,
    root: &Path,
    run_as: Option<(libc::uid_t, libc::gid_t)>,
) -> Result<Child, String> {
    let log_path = root.join("server.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let err_log = log
        .try_clone()
        .map_err(|e| format!("cannot share {}: {e}", log_path.display()))?;
    let mut command = Command::new(bin_dir.join("postgres"));
    command
        .arg("-D")
        .arg(root.join("data"))
        .current_dir(root)
        .env_remove("PGDATA")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log);
    as_server_user(&mut command, run_as);
    spawn(command).map_err(|e| format!("cannot start postgres: {e}"))
}

/// Makes `command` run as `run_as` (when root) and die with this process:
/// in the child, before `exec`, drop the supplementary groups, take the
/// group and the user, then ask for `SIGQUIT` when the parent dies (after
/// the change of user, which clears that request).
fn as_server_user(command: &mut Command, run_as: Option<(libc::uid_t, libc::gid_t)>) {
    die_with_this_process(command, run_as, libc::SIGQUIT);
}

/// Starts `command` as the servers run (as the `postgres` user when this
/// process is root, which programs beside PostgreSQL refuse too), from the
/// thread that starts the servers, to get `death_signal` when this process
/// dies: for a program a test runs beside a server (a connection pooler),
/// with its files in a [`private_dir`].
pub fn spawn_as_server_user(
    mut command: Command,
    death_signal: libc::c_int,
) -> Result<Child, String> {
    let run_as = run_as()?;
    die_with_this_process(&mut command, run_as, death_signal);
    let program = command.get_program().to_string_lossy().into_owned();
    spawn(command).map_err(|e| format!("cannot start {program}: {e}"))
}

/// A directory of the test's own (mode 0700, under `$TMPDIR` and named as
/// the servers' are, so that the next test process removes it if this one
/// is killed), handed to the user the servers run as: for the files of a
/// program started by [`spawn_as_server_user`]. The caller removes it.
pub fn private_dir() -> Result<PathBuf, String> {
    sweep_leftovers();
    make_root(run_as()?)
}

/// [`as_server_user`] with the signal the child gets when this process
/// dies.
fn die_with_this_process(
    command: &mut Command,
    run_as: Option<(libc::uid_t, libc::gid_t)>,
    death_signal: libc::c_int,
) {
    // SAFETY: getpid cannot fail.
    let parent = unsafe { libc::getpid() };
    let setup = move || -> io::Result<()> {
        let check = |code: libc::c_int| {
            if code == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        // SAFETY: plain system calls between fork and exec, async-signal
        // safe, on no memory but their arguments.
        unsafe {
            if let Some((uid, gid)) = run_as {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(gid))?;
                check(libc::setuid(uid))?;
            }
            check(libc::prctl(
                libc::PR_SET_PDEATHSIG,
                death_signal as libc::c_ulong,
                0,
                0,
                0,
            ))?;
            // The parent may have died before the request: then nothing
            // would ever send the signal.
            if libc::getppid() != parent {
                return Err(io::Error::other("the test process is gone"));
            }
        }
        Ok(())
    };
    // SAFETY: `setup` only makes the system calls above (see there).
    unsafe {
        command.pre_exec(setup);
    }
}

/// Spawns `command` from the one thread that lives as long as the process
/// (see the module's comment: the parent-death signal follows the thread
/// that forked).
fn spawn(command: Command) -> io::Result<Child> {
    type Job = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, inbox) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("pg_server spawner".to_owned())
            .spawn(move || {
                for (mut command, reply) in inbox {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("the thread that starts the PostgreSQL servers starts");
        Mutex::new(jobs)
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply))
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

fn child_pid(child: &Child) -> i32 {
    i32::try_from(child.id()).expect("a pid fits an i32")
}

/// Sends `signal` to the postmaster and waits for it to exit, killing it
/// after [`STOP_WITHIN`].
fn signal_and_wait(child: &mut Child, signal: libc::c_int, root: &Path) {
    // SAFETY: a signal to our own child, not yet reaped.
    unsafe {
        libc::kill(child_pid(child), signal);
    }
    let started = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if started.elapsed() > STOP_WITHIN {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "the test PostgreSQL server in {} did not stop within {} s: killed it",
                root.display(),
                STOP_WITHIN.as_secs()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last lines of the server's log, for an error.
fn log_tail(root: &Path) -> String {
    let text = std::fs::read_to_string(root.join("server.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    if tail.is_empty() {
        String::new()
    } else {
        format!("; the end of its log:\n{tail}")
    }
}

/// A free TCP port on `127.0.0.1`, as the system hands one out.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The servers of this process not stopped yet: their postmaster's pid (0
/// once stopped) and directory, for the `atexit` handler.
type Live = Vec<(Arc<AtomicI32>, PathBuf)>;
static LIVE: Mutex<Live> = Mutex::new(Vec::new());

/// Records a server for the `atexit` handler, installing it once.
fn register(pid: &Arc<AtomicI32>, root: &Path) {
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| {
        extern "C" fn stop_all() {
            let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
            for (pid, root) in live {
                stop_pid(pid.load(Ordering::SeqCst));
                let _ = std::fs::remove_dir_all(root);
            }
        }
        // SAFETY: `stop_all` is a plain function that does not unwind
        // (nothing in it panics: locks are taken poisoned or not).
        unsafe {
            libc::atexit(stop_all);
        }
    });
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((Arc::clone(pid), root.to_owned()));
}

/// Stops the server (if `pid` still runs) and removes its directory, and
/// forgets it: a failed start, or a dropped server.
fn stop_and_remove(pid: &Arc<AtomicI32>, root: &Path) {
    stop_pid(pid.swap(0, Ordering::SeqCst));
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(other, _)| !Arc::ptr_eq(other, pid));
    let _ = std::fs::remove_dir_all(root);
}

/// Immediate shutdown of the postmaster `pid` (a child of this process, or
/// 0 for none), reaping it; killed after [`STOP_WITHIN`].
fn stop_pid(pid: i32) {
    if pid <= 0 {
        return;
    }
    // SAFETY: signals and waits for our own child, by pid; once reaped (by
    // `Child::wait` elsewhere) waitpid says ECHILD and this returns.
    unsafe {
        if libc::kill(pid, libc::SIGQUIT) != 0 {
            return;
        }
        let started = Instant::now();
        loop {
            let done = libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
            if done != 0 {
                return;
            }
            if started.elapsed() > STOP_WITHIN {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Removes (once per process) the server directories of processes that no
/// longer run, and stops a server still running in one: what a killed test
/// process left. Best effort.
fn sweep_leftovers() {
    static SWEPT: Once = Once::new();
    SWEPT.call_once(|| {
        for parent in [std::env::temp_dir(), PathBuf::from("/tmp")] {
            let Ok(entries) = std::fs::read_dir(&parent) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(owner) = leftover_owner(&name) else {
                    continue;
                };
                if owner == std::process::id() || alive(owner) {
                    continue;
                }
                let root = entry.path();
                stop_orphan(&root);
                let _ = std::fs::remove_dir_all(&root);
            }
        }
    });
}

/// The process id in a server directory's name, `supportctl-pg.PID.*`.
fn leftover_owner(name: &OsStr) -> Option<u32> {
    let rest = name.to_str()?.strip_prefix(DIR_PREFIX)?;
    rest.split('.').next()?.parse().ok()
}

/// Whether process `pid` exists (ours or not).
fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let code = unsafe { libc::kill(pid, 0) };
    code == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Stops a postmaster still running on `ROOT/data` whose test process is
/// gone (its parent-death signal should have: this is the safety net),
/// checking that the pid in `postmaster.pid` is a postgres on that
/// directory.
fn stop_orphan(root: &Path) {
    let data = root.join("data");
    let Ok(text) = std::fs::read_to_string(data.join("postmaster.pid")) else {
        return;
    };
    let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == data.as_os_str().as_bytes());
    if ours {
        // SAFETY: a signal to a postgres on our own leftover directory.
        unsafe {
            libc::kill(pid, libc::SIGQUIT);
        }
        let started = Instant::now();
        while alive(pid as u32) && started.elapsed() < STOP_WITHIN {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
