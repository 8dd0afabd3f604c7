//! The PostgreSQL backend on a real server (docs/guide/shared-state.md):
//! what only a shared state has — two machines on one state, applies racing
//! from several processes, the tenancy's lock and who holds it, the schema
//! and what is not supportctl's, passwords kept out of everything written,
//! a connection lost mid-apply, the server's own faults.
//!
//! Every other integration test runs on PostgreSQL too when the suite is
//! run with `SUPPORTCTL_TEST_BACKEND=postgres` (see `binary::Scratch`).
//! These run in every pass, against the test process's one server
//! (`pg_server`); outside CI they skip, saying so once, where there is no
//! PostgreSQL to start.

use std::time::{Duration, Instant};

use crate::binary::{DEADLINE, Outcome, Scratch, TODAY, json, run, supportctl};
use crate::pg_server::{self, PgServer};

/// The test process's server, or `None` (the harness said why) when there
/// is none outside CI.
fn server() -> Option<&'static PgServer> {
    pg_server::shared()
}

/// A scratch folder whose state is a fresh database on the server.
fn world(server: &PgServer) -> Scratch {
    Scratch::at(server.create_database())
}

/// The example tenancy copied into the scratch folder as `config/`.
fn example(world: &Scratch) -> &'static str {
    let from = crate::binary::crate_root().join("examples/acme-prod.yaml");
    world.write(
        "config/acme.yaml",
        &std::fs::read_to_string(from).expect("the example is readable"),
    );
    "config"
}

/// The database's name in a URL made by the harness.
fn database_of(url: &str) -> String {
    let path = url.split_once("@/").expect("a URL of the harness").1;
    path.split(['?', '/']).next().expect("a name").to_owned()
}

/// The advisory lock key supportctl takes for `tenancy` in the default
/// schema, as the library computes it.
fn lock_key(tenancy: &str) -> (i32, i32) {
    supportctl::state::postgres::Target::new("postgres://x/y".into()).lock_key(tenancy)
}

#[test]
fn a_second_machine_plans_against_what_the_first_applied_and_reads_its_journal() {
    let Some(server) = server() else { return };
    let first = world(server);
    let config = example(&first);
    first.ok(&["apply", "--auto-approve", config]);
    // Another folder, another working directory, the same URL: another
    // machine as far as the state can tell.
    let second = Scratch::at(first.db_arg());
    let config2 = example(&second);
    let plan = second.run(&["plan", "--detailed-exitcode", config2]);
    assert_eq!(plan.code(), 0, "{}", plan.transcript());
    assert_eq!(second.history(), first.history());
    assert_eq!(second.show(), first.show());
    // An SR opened on the second is read on the first.
    second.ok(&["sr", "open", "--user", "bob", "--title", "Disk full"]);
    let listed = json(&first.ok(&["sr", "list", "--format", "json"]).stdout);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}

/// Applies racing from several processes on one serial: one lands, each
/// other one is refused as stale (or, come later, plans nothing) — never a
/// driver's error, never two at one serial.
#[test]
fn racing_applies_from_many_processes_land_once_each_serial() {
    let Some(server) = server() else { return };
    let world = world(server);
    let config = example(&world);
    world.ok(&["apply", "--auto-approve", config]);
    for round in 0..3 {
        // Each round edits the config so that every process has a change.
        let text = std::fs::read_to_string(world.path("config/acme.yaml")).unwrap();
        let text = text.replace(
            &format!("Alice Lee{}", if round == 0 { "" } else { " " }),
            &format!("Alice Lee {round}"),
        );
        world.write("config/acme.yaml", &text);
        let before = world.history().len();
        let children: Vec<_> = (0..4)
            .map(|_| world.start(&["apply", "--auto-approve", config]))
            .collect();
        let mut landed = 0;
        for child in children {
            let Outcome {
                status,
                stderr,
                stdout,
                ..
            } = child.finish();
            match status.code() {
                Some(0) if stdout.contains("Apply complete") => landed += 1,
                Some(0) => assert!(stdout.contains("No changes"), "{stdout}"),
                Some(1) => assert!(
                    stderr.contains("is stale") && stderr.contains("nothing was changed"),
                    "round {round}: an unclear refusal: {stderr}"
                ),
                other => panic!("round {round}: exit {other:?}: {stderr}"),
            }
        }
        assert_eq!(landed, 1, "round {round}: exactly one apply lands");
        let history = world.history();
        assert_eq!(history.len(), before + 1, "round {round}");
        let serials: Vec<u64> = history
            .iter()
            .map(|e| e["serial"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (1..=serials.len() as u64).collect();
        assert_eq!(serials, expected, "serials without gaps or doubles");
    }
}

/// Two first runs racing on an empty database make one schema, not an
/// error: the migration runs under a lock.
#[test]
fn first_runs_racing_on_an_empty_database_make_one_schema() {
    let Some(server) = server() else { return };
    let world = world(server);
    let config = example(&world);
    let children: Vec<_> = (0..4)
        .map(|_| world.start(&["apply", "--auto-approve", config]))
        .collect();
    for child in children {
        let outcome = child.finish();
        assert!(
            matches!(outcome.status.code(), Some(0 | 1)),
            "{}",
            outcome.stderr
        );
        if outcome.status.code() == Some(1) {
            assert!(outcome.stderr.contains("is stale"), "{}", outcome.stderr);
        }
    }
    assert_eq!(world.history().len(), 1);
    let mut client = server.client(&database_of(&world.db_arg()));
    let schemas: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'supportctl'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(schemas, 1);
    let in_public: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(in_public, 0, "nothing is created in public");
}

/// `plan`, `show` and the other readers never create anything: on an empty
/// database they plan from nothing and leave it empty.
#[test]
fn commands_that_read_create_nothing() {
    let Some(server) = server() else { return };
    let world = world(server);
    let config = example(&world);
    world.ok(&["plan", config]);
    let show = world.run(&["show"]);
    assert_eq!(show.code(), 1, "{}", show.transcript());
    let mut client = server.client(&database_of(&world.db_arg()));
    let schemas: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'supportctl'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(schemas, 0, "plan and show created the schema");
}

/// Another writer holding the tenancy's lock past `--lock-timeout`: the
/// apply gives up, exit 1, naming who holds it, and writes nothing.
#[test]
fn an_apply_waits_for_the_lock_then_names_who_holds_it() {
    let Some(server) = server() else { return };
    let world = world(server);
    let config = example(&world);
    world.ok(&["apply", "--auto-approve", config]);
    let text = std::fs::read_to_string(world.path("config/acme.yaml")).unwrap();
    world.write("config/acme.yaml", &text.replace("Alice Lee", "Alice Kim"));
    let mut holder = server.client(&database_of(&world.db_arg()));
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("SET LOCAL application_name = 'supportctl apply on elsewhere, pid 4242'")
        .unwrap();
    let (class, key) = lock_key("acme-prod");
    tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&class, &key])
        .unwrap();
    let started = Instant::now();
    let outcome = world.run(&["apply", "--auto-approve", "--lock-timeout", "300ms", config]);
    let waited = started.elapsed();
    assert_eq!(outcome.code(), 1, "{}", outcome.transcript());
    assert!(
        outcome
            .stderr
            .contains("is locked by supportctl apply on elsewhere, pid 4242, since "),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("waited 300ms"),
        "{}",
        outcome.stderr
    );
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    tx.rollback().unwrap();
    // Released, the same apply lands.
    world.ok(&["apply", "--auto-approve", config]);
    assert_eq!(world.history().len(), 2);
}

/// A schema of that name holding what is not supportctl's, or written by a
/// newer supportctl, is refused and left as it was.
#[test]
fn foreign_and_newer_schemas_are_refused_untouched() {
    let Some(server) = server() else { return };
    let world = world(server);
    let config = example(&world);
    let db = database_of(&world.db_arg());
    let mut client = server.client(&db);
    client
        .batch_execute("CREATE SCHEMA supportctl; CREATE TABLE supportctl.orders (id int)")
        .unwrap();
    let outcome = world.run(&["apply", "--auto-approve", config]);
    assert_eq!(outcome.code(), 1, "{}", outcome.transcript());
    assert!(
        outcome.stderr.contains("is not a supportctl database"),
        "{}",
        outcome.stderr
    );
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'supportctl'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "the foreign schema is untouched");

    // Another schema of the same database holds a state a newer
    // supportctl wrote.
    let newer = world.run(&["--db-schema", "second", "apply", "--auto-approve", config]);
    assert_eq!(newer.code(), 0, "{}", newer.transcript());
    client
        .batch_execute("UPDATE second.meta SET value = '99' WHERE key = 'schema_version'")
        .unwrap();
    for args in [
        vec!["--db-schema", "second", "apply", "--auto-approve", config],
        vec!["--db-schema", "second", "show"],
    ] {
        let outcome = world.run(&args);
        assert_eq!(outcome.code(), 1, "{}", outcome.transcript());
        assert!(
            outcome.stderr.contains("written by a newer supportctl"),
            "{}",
            outcome.stderr
        );
    }
}

/// Two states in one database, each in its schema, see nothing of each
/// other.
#[test]
fn states_in_two_schemas_of_one_database_are_apart() {
    let Some(server) = server() else { return };
    let world = world(server);
    let config = example(&world);
    world.ok(&["apply", "--auto-approve", config]);
    let other = world.run(&["--db-schema", "team_b", "show"]);
    assert_eq!(other.code(), 1, "{}", other.transcript());
    let mut env_run = world.command(&["show", "--format", "json"]);
    env_run.env("SUPPORTCTL_DB_SCHEMA", "team_b");
    assert_eq!(run(&mut env_run).code(), 1);
    world.ok(&["--db-schema", "team_b", "apply", "--auto-approve", config]);
    let a = world.show();
    let b = json(
        &world
            .ok(&["--db-schema", "team_b", "show", "--format", "json"])
            .stdout,
    );
    assert_ne!(a["lineage"], b["lineage"], "two states, two lineages");
    let bad = world.run(&["--db-schema", "public", "show"]);
    assert_eq!(bad.code(), 1, "{}", bad.transcript());
    assert!(
        bad.stderr.contains("PostgreSQL's own schema"),
        "{}",
        bad.stderr
    );
}

/// The password in a URL appears nowhere supportctl writes: output, errors,
/// `-vv` logs in both formats, `history`, the status file, the journal.
#[test]
fn a_password_in_the_url_is_never_written() {
    let Some(server) = server() else { return };
    const SECRET: &str = "s3cret-Pw-xyzzy";
    let url = server.create_database_as_password_role(SECRET);
    let world = Scratch::at(url.clone());
    let config = example(&world);
    let mut written = String::new();
    for args in [
        vec!["-vv", "apply", "--auto-approve", config],
        vec!["-vv", "--log-format", "json", "plan", config],
        vec!["history", "--format", "json"],
        vec!["show"],
    ] {
        let outcome = world.run(&args);
        assert_eq!(outcome.code(), 0, "{}", outcome.transcript());
        written.push_str(&outcome.stdout);
        written.push_str(&outcome.stderr);
    }
    // Errors that name the server: a database that does not exist, a wrong
    // schema name.
    let missing = url.replacen(&format!("/{}?", database_of(&url)), "/no_such_db?", 1);
    let mut command = supportctl(world.root(), ["--db", &missing, "show"]);
    let outcome = run(&mut command);
    assert_eq!(outcome.code(), 1, "{}", outcome.transcript());
    written.push_str(&outcome.stderr);
    // A watcher's status file.
    let status = world.path("status.json");
    let watch = world.start(&["watch", "--status-file", status.to_str().unwrap(), config]);
    let started = Instant::now();
    while !std::fs::read_to_string(&status).is_ok_and(|t| t.contains("\"no-changes\"")) {
        assert!(started.elapsed() < DEADLINE, "the watcher never reconciled");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill has no memory effects; the pid is our child's.
    unsafe { libc::kill(watch.child.id() as i32, libc::SIGTERM) };
    let outcome = watch.finish();
    written.push_str(&outcome.stderr);
    written.push_str(&std::fs::read_to_string(&status).unwrap_or_default());
    assert!(
        !written.contains(SECRET),
        "the password was written:\n{written}"
    );
    assert!(
        written.contains(":***@"),
        "the URL is shown redacted:\n{written}"
    );
    // The parse cache kept for the URL: its name and its bytes.
    let cache = world.beside(".parse-cache");
    let bytes = std::fs::read(&cache).expect("the apply kept a parse cache");
    assert!(!cache.to_string_lossy().contains(SECRET));
    assert!(
        !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the parse cache holds the password"
    );
    // The journal itself.
    let mut client = server.client(&database_of(&url));
    for row in client
        .query("SELECT host, config_path FROM supportctl.journal", &[])
        .unwrap()
    {
        let host: String = row.get(0);
        let path: String = row.get(1);
        assert!(!host.contains(SECRET) && !path.contains(SECRET));
    }
}

/// The server's faults, one clear line each, exit 1.
#[test]
fn unreachable_wrong_password_and_missing_database_are_one_line_each() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // Nothing listens on port 1.
        (
            "postgres://nobody@127.0.0.1:1/x?connect_timeout=3".to_owned(),
            "127.0.0.1:1",
        ),
        (
            server
                .create_database_as_password_role("right-one")
                .replace(":right-one@", ":wrong-one@"),
            "password",
        ),
        (server.url("no_such_database"), "no_such_database"),
    ];
    for (url, named) in cases {
        let started = Instant::now();
        let outcome = run(&mut supportctl(dir.path(), ["--db", &url, "show"]));
        assert_eq!(outcome.code(), 1, "{}", outcome.transcript());
        assert!(started.elapsed() < Duration::from_secs(8), "{url}");
        let first = outcome.stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with("error: "), "{}", outcome.stderr);
        assert!(outcome.stderr.contains(named), "{}", outcome.stderr);
        assert!(
            !outcome.stderr.contains("wrong-one"),
            "a password in an error: {}",
            outcome.stderr
        );
    }
}

/// A role that may not create the schema: one line, exit 1, nothing made.
#[test]
fn a_role_that_may_not_create_the_schema_is_told_so() {
    let Some(server) = server() else { return };
    let url = server.create_database_as_password_role("pw-1");
    let db = database_of(&url);
    let mut admin = server.client(&db);
    admin
        .batch_execute(&format!(
            "REVOKE CREATE ON DATABASE \"{db}\" FROM PUBLIC; \
             REVOKE CREATE ON DATABASE \"{db}\" FROM supportctl_pw"
        ))
        .unwrap();
    admin
        .batch_execute(&format!("ALTER DATABASE \"{db}\" OWNER TO postgres"))
        .unwrap();
    let world = Scratch::at(url);
    let config = example(&world);
    let outcome = world.run(&["apply", "--auto-approve", config]);
    assert_eq!(outcome.code(), 1, "{}", outcome.transcript());
    assert!(
        outcome
            .stderr
            .contains("may not create the schema `supportctl`"),
        "{}",
        outcome.stderr
    );
}

/// The connection lost mid-apply (the server ends the session): nothing is
/// half-written, the error says so, and the same apply run again lands.
#[test]
fn a_connection_lost_mid_apply_writes_nothing_and_the_apply_can_run_again() {
    let Some(server) = server() else { return };
    let world = world(server);
    world.write("big.yaml", &crate::reliability::tenancy_config(20_000, 0));
    let db = database_of(&world.db_arg());
    // The schema first, so that the apply below is the big one.
    world.write(
        "small.yaml",
        "tenancy: { name: small, csi: \"2\", admin: a }\nusers:\n  a: { email: a@x.example, support_account: { phone: \"+1 555 0100\", timezone: UTC } }\n",
    );
    world.ok(&["apply", "--auto-approve", "small.yaml"]);
    let mut watcher = server.client(&db);
    let child = world.start(&["apply", "--auto-approve", "big.yaml"]);
    // Terminate the apply's session once it is inside its transaction.
    let started = Instant::now();
    let mut terminated = false;
    while started.elapsed() < DEADLINE {
        let rows = watcher
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name LIKE 'supportctl apply%' AND datname = $1",
                &[&db],
            )
            .unwrap();
        if !rows.is_empty() {
            terminated = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(terminated, "the apply's transaction was never seen");
    let outcome = child.finish();
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("was lost"), "{}", outcome.stderr);
    let count: i64 = watcher
        .query_one(
            "SELECT count(*) FROM supportctl.users WHERE tenancy = 'big'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(count, 0, "nothing half-written");
    world.ok(&["apply", "--auto-approve", "big.yaml"]);
    let count: i64 = watcher
        .query_one(
            "SELECT count(*) FROM supportctl.users WHERE tenancy = 'big'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(count, 20_003);
}

/// `--db-schema` on a SQLite state is refused: a SQLite file has no
/// schemas.
#[test]
fn db_schema_is_refused_for_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run(&mut supportctl(
        dir.path(),
        ["--db", "s.db", "--db-schema", "x", "show"],
    ));
    assert_eq!(outcome.code(), 1, "{}", outcome.transcript());
    assert!(outcome.stderr.contains("SQLite file"), "{}", outcome.stderr);
    let _ = TODAY;
}

/// `url` with its user replaced by `role` (a URL of the harness, whose
/// user is the superuser).
fn as_role(url: &str, role: &str) -> String {
    let rest = url
        .strip_prefix(&format!("postgres://{}@", pg_server::SUPERUSER))
        .expect("a URL of the harness");
    format!("postgres://{role}@{rest}")
}

/// The roles of docs/guide/shared-state.md, made as it says: an owner role
/// given the schema, which applies, and a reader role with `USAGE` on it
/// and `SELECT` on the tables the owner makes, which plans, shows, exports,
/// reads the journal, access and SRs exactly as the owner does, and whose
/// writes are refused with one line, nothing written.
#[test]
fn the_owner_and_reader_roles_of_the_guide_apply_and_read() {
    let Some(server) = server() else { return };
    let url = server.create_database();
    let db = database_of(&url);
    let (owner, reader) = (format!("{db}_owner"), format!("{db}_reader"));
    let mut admin = server.client(&db);
    admin
        .batch_execute(&format!(
            "CREATE ROLE {owner} LOGIN; \
             CREATE SCHEMA supportctl AUTHORIZATION {owner}; \
             CREATE ROLE {reader} LOGIN; \
             GRANT USAGE ON SCHEMA supportctl TO {reader}; \
             ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA supportctl \
                 GRANT SELECT ON TABLES TO {reader};"
        ))
        .unwrap();
    let owning = Scratch::at(as_role(&url, &owner));
    let config = example(&owning);
    owning.ok(&["apply", "--auto-approve", config]);
    owning.ok(&["sr", "open", "--user", "bob", "--title", "Disk full"]);

    let reading = Scratch::at(as_role(&url, &reader));
    let config = example(&reading);
    let reads: [&[&str]; 7] = [
        &["plan", "--detailed-exitcode", config],
        &["show", "--format", "json"],
        &["history", "--format", "json"],
        &["access", "--all", "--format", "json"],
        &["sr", "list", "--format", "json"],
        &["sr", "show", "1", "--format", "json"],
        &["export", "--out", "exported"],
    ];
    for args in reads {
        let as_reader = reading.run(args);
        assert_eq!(as_reader.code(), 0, "{}", as_reader.transcript());
        let as_owner = owning.run(args);
        assert_eq!(as_reader.stdout, as_owner.stdout, "`{}`", args.join(" "));
    }

    // The database as its superuser reads it.
    let superuser = Scratch::at(url.clone());
    let before = superuser.db_bytes();
    reading.write("config/acme.yaml", "tenancy: { name: acme-prod, csi: \"20817431\", admin: dankim }\nusers:\n  dankim: { email: dankim@acme.example, support_account: { phone: \"+82 2 555 0100\", timezone: Asia/Seoul } }\n");
    for args in [
        vec!["apply", "--auto-approve", "--allow-mass-delete", config],
        vec!["sr", "open", "--user", "bob", "--title", "Another"],
    ] {
        let outcome = reading.run(&args);
        assert_eq!(outcome.code(), 1, "{}", outcome.transcript());
        assert_eq!(
            outcome
                .stderr
                .lines()
                .filter(|l| l.starts_with("error"))
                .count(),
            1,
            "one error line:\n{}",
            outcome.stderr
        );
        assert!(
            outcome.stderr.contains("permission") || outcome.stderr.contains("may not"),
            "says it is a permission:\n{}",
            outcome.stderr
        );
    }
    assert_eq!(superuser.db_bytes(), before, "the reader wrote nothing");
}

/// issue 19 §7: TLS with `sslmode=verify-full` against a server whose
/// certificate (made by the test harness, signed by a CA of its own) is for
/// `localhost`: by that name supportctl applies and reads over TLS (the
/// server takes TCP connections with TLS only); by the address
/// `127.0.0.1`, which the certificate does not name, it is refused before
/// anything is sent, with one line naming the mismatch, and nothing is
/// written. `verify-ca` checks the chain only and takes the address.
#[test]
fn verify_full_takes_the_certificates_name_and_refuses_another() {
    let Some(tls) = pg_server::tls_server() else {
        return;
    };
    let db = tls.server().create_database_name();
    let ca = tls.ca_file().to_str().expect("a UTF-8 path").to_owned();
    let url = |host: &str, mode: &str, root: &str| {
        format!(
            "postgres://{}@{host}:{}/{db}?sslmode={mode}&sslrootcert={root}",
            pg_server::SUPERUSER,
            tls.port()
        )
    };
    let by_name = Scratch::at(url("localhost", "verify-full", &ca));
    let config = example(&by_name);
    by_name.ok(&["apply", "--auto-approve", config]);
    let plan = by_name.run(&["plan", "--detailed-exitcode", config]);
    assert_eq!(plan.code(), 0, "{}", plan.transcript());
    // Without TLS the server turns TCP away: what landed came over TLS.
    let plain = Scratch::at(url("localhost", "disable", &ca));
    let refused = plain.run(&["show"]);
    assert_eq!(refused.code(), 1, "{}", refused.transcript());

    // The database as its superuser reads it, on the socket.
    let superuser = Scratch::at(tls.server().url(&db));
    let before = superuser.db_bytes();
    let by_address = Scratch::at(url("127.0.0.1", "verify-full", &ca));
    let config = example(&by_address);
    for args in [vec!["show"], vec!["apply", "--auto-approve", config]] {
        let outcome = by_address.run(&args);
        assert_eq!(outcome.code(), 1, "{}", outcome.transcript());
        assert!(
            outcome
                .stderr
                .contains("certificate is not valid for the name `127.0.0.1`"),
            "names the mismatch:\n{}",
            outcome.stderr
        );
    }
    assert_eq!(superuser.db_bytes(), before, "nothing was written");

    // verify-ca: the chain, not the name.
    let chain_only = Scratch::at(url("127.0.0.1", "verify-ca", &ca));
    let show = chain_only.run(&["show", "--format", "json"]);
    assert_eq!(show.code(), 0, "{}", show.transcript());
    assert_eq!(json(&show.stdout), by_name.show());
}
