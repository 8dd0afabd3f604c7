//! The tests' own PostgreSQL servers (`pg_server`): what the PostgreSQL
//! tests of issue 19 stand on. Each test skips, with one line on stderr,
//! where PostgreSQL is not installed, except in CI (see `pg_server`).
//!
//! Then the switch of `binary::Scratch` between the backends
//! (`SUPPORTCTL_TEST_BACKEND`, `sqlite_only!`). The last tests run this
//! test binary again as a child that starts a server and then is killed,
//! or panics: the server must not outlive it.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::binary::{Backend, DEADLINE, Scratch, sqlite_only};
use crate::pg_server::{self, PASSWORD_ROLE, PASSWORD_ROLE_PASSWORD};

#[test]
fn the_shared_server_is_postgresql_15_or_later_on_a_socket_only() {
    let Some(server) = pg_server::shared() else {
        return;
    };
    let mut client = server.client("postgres");
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num')::int,
                    current_setting('listen_addresses'),
                    current_setting('fsync')",
            &[],
        )
        .expect("the settings are read");
    let (version, listen, fsync): (i32, String, String) = (row.get(0), row.get(1), row.get(2));
    assert!(version >= 150_000, "PostgreSQL {version} is older than 15");
    assert_eq!(listen, "", "the shared server listens on its socket only");
    assert_eq!(fsync, "off");
    // The same server for every test of the process.
    assert!(std::ptr::eq(
        server,
        pg_server::shared().expect("started once, there for good")
    ));
}

#[test]
fn two_databases_are_distinct_and_their_urls_work_with_libpq() {
    let Some(server) = pg_server::shared() else {
        return;
    };
    let first = server.create_database_name();
    let second = server.create_database_name();
    assert_ne!(first, second);
    server
        .client(&first)
        .batch_execute("CREATE TABLE only_here (n int); INSERT INTO only_here VALUES (1)")
        .expect("a table is made in the first database");
    let in_second = server
        .client(&second)
        .query_one("SELECT to_regclass('only_here') IS NULL", &[])
        .expect("the second database is read")
        .get::<_, bool>(0);
    assert!(in_second, "the second database sees the first one's table");

    // The URL as libpq takes it (what `--db` will be given): psql, from the
    // server's own binaries, reaches the first database's table with it.
    let url = server.url(&first);
    assert!(url.starts_with("postgres://postgres@/"), "{url}");
    let psql = Command::new(server.bin_dir().join("psql"))
        .args([&url, "-XAtc", "SELECT n FROM only_here"])
        .output()
        .expect("psql runs");
    assert!(
        psql.status.success(),
        "psql {url}: {}",
        String::from_utf8_lossy(&psql.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), "1");
    // And so does the Rust driver.
    let parsed: postgres::Config = url.parse().expect("the driver parses the URL");
    parsed
        .connect(postgres::NoTls)
        .expect("the driver connects with the URL");
}

#[test]
fn the_password_role_must_give_its_password_even_on_the_socket() {
    let Some(server) = pg_server::shared() else {
        return;
    };
    let connect = |password: &str| {
        server
            .config("postgres")
            .user(PASSWORD_ROLE)
            .password(password)
            .connect(postgres::NoTls)
    };
    let refused = connect("not the password")
        .err()
        .expect("a wrong password is refused");
    assert_eq!(
        refused.code(),
        Some(&postgres::error::SqlState::INVALID_PASSWORD),
        "{refused:?}"
    );
    let mut client = connect(PASSWORD_ROLE_PASSWORD).expect("the right password is taken");
    let user: String = client
        .query_one("SELECT current_user::text", &[])
        .expect("a query as the role")
        .get(0);
    assert_eq!(user, PASSWORD_ROLE);
    // The role may not create a schema in a database it does not own: the
    // case of issue 19 §4's "no permission to create the schema".
    let database = server.create_database_name();
    let denied = server
        .config(&database)
        .user(PASSWORD_ROLE)
        .password(PASSWORD_ROLE_PASSWORD)
        .connect(postgres::NoTls)
        .expect("the role connects to a new database")
        .batch_execute("CREATE SCHEMA supportctl")
        .expect_err("the role may not create a schema");
    assert_eq!(
        denied.code(),
        Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
    // A role of its own per database, whose password must be given as
    // well: no test changes another's password.
    let url = server.create_database_as_password_role("pw 1/é");
    let other = server.create_database_as_password_role("pw-2");
    let as_role = |url: &str| {
        Command::new(server.bin_dir().join("psql"))
            .args([url, "-XAtc", "CREATE SCHEMA mine; SELECT current_user"])
            .output()
            .expect("psql runs")
    };
    for url in [&url, &other] {
        let made = as_role(url);
        assert!(
            made.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    let wrong = as_role(&url.replace(":pw%201%2F%C3%A9@", ":pw-2@"));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );

    // The password URL reaches it through libpq too.
    let psql = Command::new(server.bin_dir().join("psql"))
        .args([
            &server.password_url("postgres", PASSWORD_ROLE_PASSWORD),
            "-XAtc",
            "SELECT current_user",
        ])
        .output()
        .expect("psql runs");
    assert_eq!(
        String::from_utf8_lossy(&psql.stdout).trim(),
        PASSWORD_ROLE,
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
}

#[test]
fn a_restarted_server_cuts_its_sessions_and_keeps_its_data() {
    // Started on a thread that ends before the server is used: the server
    // must not die with it (the parent-death signal follows the thread that
    // forked, see `pg_server`).
    let Some(server) = std::thread::spawn(pg_server::private)
        .join()
        .expect("the starting thread ends")
    else {
        return;
    };
    std::thread::sleep(Duration::from_millis(200));
    let database = server.create_database_name();
    let mut before = server.client(&database);
    before
        .batch_execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")
        .expect("a committed row");
    let pid = server.pid();
    server.restart();
    assert_ne!(server.pid(), pid, "a new postmaster");
    assert!(
        before.batch_execute("SELECT 1").is_err(),
        "a session from before the restart still works"
    );
    let n: i32 = server
        .client(&database)
        .query_one("SELECT n FROM kept", &[])
        .expect("the row is there after the restart")
        .get(0);
    assert_eq!(n, 7);
}

#[test]
fn the_shared_server_is_never_restarted() {
    let Some(server) = pg_server::shared() else {
        return;
    };
    let refused = std::panic::catch_unwind(|| server.restart())
        .expect_err("restarting the shared server is refused");
    let message = refused
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| refused.downcast_ref::<String>().map(String::as_str))
        .unwrap_or_default();
    assert!(message.contains("not the shared one"), "{message}");
    server.client("postgres");
}

#[test]
fn the_tls_server_speaks_tls_for_localhost_only() {
    let Some(tls) = pg_server::tls_server() else {
        return;
    };
    let connector = rustls_connector(tls.ca_file());
    let config = |host: &str| {
        let mut config = postgres::Config::new();
        config
            .host(host)
            .hostaddr(std::net::Ipv4Addr::LOCALHOST.into())
            .port(tls.port())
            .user(pg_server::SUPERUSER)
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(10));
        config
    };

    let mut client = config("localhost")
        .ssl_mode(postgres::config::SslMode::Require)
        .connect(connector.clone())
        .expect("a TLS connection to localhost, the certificate's name");
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .expect("the session's TLS is read")
        .get(0);
    assert!(ssl, "the session is not encrypted");

    // Another name for the same address: the certificate does not hold it.
    let wrong = config("127.0.0.1")
        .ssl_mode(postgres::config::SslMode::Require)
        .connect(connector)
        .err()
        .expect("a certificate for localhost is refused for 127.0.0.1");
    assert!(
        format!("{wrong:?}").contains("NotValidForName"),
        "refused for another reason: {wrong:?}"
    );

    // libpq agrees, with its strictest mode, on the URL the harness gives
    // (what supportctl's own TLS test will take): this name, not that one.
    let psql = |host: &str| {
        Command::new(tls.server().bin_dir().join("psql"))
            .args([
                &tls.url(host, "postgres", "verify-full"),
                "-XAtc",
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ])
            // No client certificate or settings from the user's
            // ~/.postgresql.
            .env("HOME", tls.server().socket_dir())
            .output()
            .expect("psql runs")
    };
    let verified = psql("localhost");
    assert_eq!(
        String::from_utf8_lossy(&verified.stdout).trim(),
        "t",
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let mismatch = psql("127.0.0.1");
    assert!(
        !mismatch.status.success()
            && String::from_utf8_lossy(&mismatch.stderr).contains("does not match host name"),
        "verify-full with 127.0.0.1: {}",
        String::from_utf8_lossy(&mismatch.stderr)
    );

    // Over TCP, only TLS is let in.
    let plain = config("localhost")
        .ssl_mode(postgres::config::SslMode::Disable)
        .connect(postgres::NoTls)
        .err()
        .expect("a connection without TLS is refused");
    assert!(
        plain.to_string().contains("no pg_hba.conf entry")
            || format!("{plain:?}").contains("28000"),
        "{plain:?}"
    );
}

/// A TLS connector for the driver that trusts `ca` only, with rustls.
// rustls 0.23.48 deprecates its ring provider for lacking post-quantum key
// exchange; ring is the provider these dependencies are built with (no
// aws-lc, no C toolchain beyond SQLite's), and a test server on 127.0.0.1
// needs none.
#[allow(deprecated)]
fn rustls_connector(ca: &Path) -> tokio_postgres_rustls::MakeRustlsConnect {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("the CA file is read") {
        roots
            .add(cert.expect("the CA file holds a certificate"))
            .expect("the CA certificate is taken");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

#[test]
fn a_scratch_on_postgresql_gets_a_database_of_its_own_dropped_with_it() {
    let Some(server) = pg_server::shared() else {
        return;
    };
    let world = Scratch::with_backend(Backend::Postgres);
    assert!(world.is_postgres());
    let url = world.db_arg();
    assert!(url.starts_with("postgres://"), "{url}");
    assert_eq!(world.db_arg_from(world.root()), url);
    let database: String = world
        .postgres_client()
        .query_one("SELECT current_database()::text", &[])
        .expect("the scratch's database is read")
        .get(0);
    assert!(
        url.contains(&format!("/{database}?")),
        "{url} is not {database}"
    );
    let other = Scratch::with_backend(Backend::Postgres);
    assert_ne!(other.db_arg(), url, "two scratches share a database");
    // Another machine on the same state: the same URL, another folder,
    // nothing dropped with it.
    let second = Scratch::at(url.clone());
    assert!(second.is_postgres());
    assert_eq!(second.db_arg(), url);
    assert_ne!(second.root(), world.root());
    drop(second);
    world.postgres_client();

    drop(world);
    let left: bool = server
        .client("postgres")
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)",
            &[&database],
        )
        .expect("the catalogue is read")
        .get(0);
    assert!(!left, "{database} outlives its scratch");
}

#[test]
fn a_scratch_on_sqlite_is_the_file_in_its_folder() {
    let world = Scratch::with_backend(Backend::Sqlite);
    assert!(!world.is_postgres());
    assert_eq!(world.db_arg(), world.db.to_str().expect("a UTF-8 path"));
}

#[test]
fn sqlite_only_ends_a_test_early_on_postgresql_alone() {
    let ran_on = std::cell::Cell::new(None);
    let test = || {
        sqlite_only!();
        ran_on.set(Some(Backend::current()));
    };
    test();
    match Backend::current() {
        Backend::Sqlite => assert_eq!(ran_on.get(), Some(Backend::Sqlite)),
        Backend::Postgres => assert_eq!(ran_on.get(), None),
    }
}

/// What the child run of this binary does (`PG_HARNESS_CHILD`): starts the
/// shared server, prints its pid and directory, then `wait` (to be killed)
/// or `panic`.
const CHILD_MODE: &str = "PG_HARNESS_CHILD";

/// The child of the cleanup tests below: does nothing unless run by them.
#[test]
fn child_process_of_the_cleanup_tests() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let server = pg_server::shared().expect("the child starts a server");
    println!(
        "server pid={} root={}",
        server.pid(),
        server.socket_dir().display()
    );
    match mode.as_str() {
        "wait" => std::thread::sleep(DEADLINE),
        "panic" => panic!("the child panics with its server running"),
        other => panic!("{CHILD_MODE}={other}: neither wait nor panic"),
    }
}

/// A child run of this test binary in `mode`, and the server pid and
/// directory it printed.
fn child(mode: &str) -> (std::process::Child, i32, PathBuf) {
    let mut child = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([
            "--exact",
            "pg_harness::child_process_of_the_cleanup_tests",
            "--nocapture",
        ])
        .env(CHILD_MODE, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the test binary runs again");
    let mut lines = BufReader::new(child.stdout.take().expect("the child's stdout")).lines();
    while let Some(line) = lines.next() {
        let line = line.expect("the child's output is read");
        if let Some(rest) = line.strip_prefix("server pid=") {
            let (pid, root) = rest.split_once(" root=").expect("pid and root");
            // The rest is read, so that the child never writes to a closed
            // pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, pid.parse().expect("a pid"), PathBuf::from(root));
        }
    }
    let status = child.wait().expect("the child ends");
    panic!("the child ({mode}) printed no server ({status})");
}

/// Whether `pid` is a process that runs (a zombie, waiting for init to reap
/// it, has ended).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Waits up to 15 s for `done`.
fn eventually(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(15), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_server_ends_with_its_test_process_killed_or_panicking() {
    // Skips where there is no PostgreSQL, as the others.
    if pg_server::shared().is_none() {
        return;
    }
    // Killed: no code of the child runs, the parent-death signal stops the
    // server; the directory stays until the next process starts a server.
    let (mut killed, killed_pid, killed_root) = child("wait");
    assert!(running(killed_pid), "the child's server runs");
    killed.kill().expect("the child is killed");
    killed.wait().expect("the killed child is reaped");
    eventually("the server of a killed test process still runs", || {
        !running(killed_pid)
    });

    // Panicking: libtest exits, the atexit handler stops the server and
    // removes its directory; and this child, starting a server, removed the
    // directory the killed one left.
    let (mut panicking, panicking_pid, panicking_root) = child("panic");
    let status = panicking.wait().expect("the panicking child ends");
    assert!(!status.success(), "the child's test failed");
    assert!(
        !running(panicking_pid),
        "the server of a failed test process still runs"
    );
    assert!(
        !panicking_root.exists(),
        "{} is left after a normal exit",
        panicking_root.display()
    );
    assert!(
        !killed_root.exists(),
        "{} of the killed process is not swept",
        killed_root.display()
    );
}
