//! The state in a PostgreSQL database: shared state for teams, several
//! machines planning and applying against one state.
//!
//! All SQL for PostgreSQL stays in this module. The state lives in its own
//! schema (namespace) of the database, `supportctl` unless `--db-schema`
//! names another, so that several states can share a database; nothing is
//! created in `public`. The schema is versioned and migrated forward in one
//! transaction under a lock ([`schema`]); one that holds tables that are not
//! supportctl's, or that a newer supportctl wrote, is refused untouched.
//!
//! Writers on many machines are kept apart by a transaction-level advisory
//! lock keyed by the schema and the tenancy, taken first in every
//! transaction that writes a tenancy (an apply, a retirement, an SR opened
//! or commented on): of two applies from the same serial one lands and the
//! other, waiting, then reads the serial the first wrote and is refused as
//! stale. A wait is bounded by `--lock-timeout`; past it the command names
//! who holds the lock, which the holder sets as its `application_name` for
//! the length of its transaction (so a holder that dies leaves nothing
//! behind).
//!
//! Commands that only read open the state read-only: every transaction
//! they make is read-only, so nothing is created, migrated or written.
//!
//! Nothing outlives a transaction on the server's session: every statement
//! runs inside a transaction ([`begin`], [`read_transaction`]), which first
//! sets the search path to the state's schema for itself (`SET LOCAL`), as
//! it does every other setting; no session-level setting, lock or prepared
//! statement is used across two transactions. So supportctl works through
//! a connection pooler in transaction mode (PgBouncer's `pool_mode =
//! transaction`), which runs each transaction on whichever server session
//! is free: a session setting would be missing from the next transaction,
//! and would leak into another client's (a read-only default, a search
//! path into another state's schema); and the driver's named prepared
//! statements, parsed outside a transaction, would be looked for, or made
//! again, on another session. Inside a transaction each is parsed, run and
//! closed on the one session the transaction holds.

mod apply;
pub mod conninfo;
mod dump;
mod journal;
mod lease;
mod requests;
mod rows;
pub mod schema;
pub mod tls;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use postgres::Client;
use postgres::error::SqlState;

use super::{DEFAULT_BUSY_TIMEOUT, StateError};

pub use schema::{LATEST as SCHEMA_VERSION, MIGRATIONS};

/// Keys of a state's locks and names in its schema; see [`Target`].
type Key = Target;

/// The schema a state lives in unless `--db-schema` says otherwise.
pub const DEFAULT_SCHEMA: &str = "supportctl";

/// The first key of every advisory lock supportctl takes: "SPCT" in ASCII,
/// so that its locks are told from an application's own in `pg_locks`.
pub const LOCK_CLASS: i32 = 0x5350_4354;

/// A state in PostgreSQL: the server's URL (as given, with any password)
/// and the schema in its database.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    url: String,
    pub schema: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.shown())
            .field("schema", &self.schema)
            .finish()
    }
}

impl Target {
    /// A state at `url` in the default schema.
    pub fn new(url: String) -> Target {
        Target {
            url,
            schema: DEFAULT_SCHEMA.to_owned(),
        }
    }

    /// The URL as given, password and all: only for connecting.
    fn url(&self) -> &str {
        &self.url
    }

    /// The URL as supportctl shows it: any password as `***`.
    pub fn shown(&self) -> String {
        let url = conninfo::redact(&self.url);
        if self.schema == DEFAULT_SCHEMA {
            url
        } else {
            format!("{url} (schema {})", self.schema)
        }
    }

    /// [`Target::shown`] where an error wants a path.
    fn shown_path(&self) -> std::path::PathBuf {
        self.shown().into()
    }

    /// The URL without its password, and the schema: what names this state
    /// in a local file name (the parse cache's), and never holds a secret.
    pub fn key_text(&self) -> String {
        format!("{}#{}", conninfo::without_password(&self.url), self.schema)
    }

    /// The schema's name quoted as an identifier.
    fn quoted_schema(&self) -> String {
        format!("\"{}\"", self.schema.replace('"', "\"\""))
    }

    /// The keys of the advisory lock an apply to `tenancy` takes, as
    /// `pg_advisory_xact_lock(int, int)` takes them: for tools (and tests)
    /// that want to hold or watch it.
    pub fn lock_key(&self, tenancy: &str) -> (i32, i32) {
        (LOCK_CLASS, self.lock_id(tenancy))
    }

    /// The second key of the advisory lock named `name` in this schema: a
    /// 32-bit FNV-1a hash of the schema and the name (a collision only
    /// makes two tenancies wait for each other).
    fn lock_id(&self, name: &str) -> i32 {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in self.schema.bytes().chain([b'/']).chain(name.bytes()) {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        i32::from_ne_bytes(hash.to_ne_bytes())
    }
}

/// Checks a schema name given to `--db-schema`: a plain lower-case SQL
/// identifier, so that it needs no quoting anywhere a person types it.
pub fn check_schema_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if !first_ok
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!(
            "`{name}` is not a schema name supportctl uses: lower-case letters, digits and `_`, starting with a letter or `_`, at most 63 characters"
        ));
    }
    if name == "public" || name.starts_with("pg_") || name == "information_schema" {
        return Err(format!(
            "`{name}` is PostgreSQL's own schema; the state lives in a schema of its own (the default is `{DEFAULT_SCHEMA}`)"
        ));
    }
    Ok(())
}

/// Maps a driver error: a lost connection is [`StateError::Lost`], a lock
/// not granted in time [`StateError::Locked`], a refused permission
/// [`StateError::Denied`], a read-only session [`StateError::ReadOnly`].
fn pg_error(target: &Target, e: postgres::Error) -> StateError {
    lost_or(target, e, false)
}

/// [`pg_error`] for an error of the commit itself, whose outcome a lost
/// connection leaves unknown.
fn commit_error(target: &Target, e: postgres::Error) -> StateError {
    lost_or(target, e, true)
}

fn lost_or(target: &Target, e: postgres::Error, during_commit: bool) -> StateError {
    let what = target.shown_path();
    if e.is_closed() || (e.as_db_error().is_none() && e.code().is_none()) {
        return StateError::Lost {
            what,
            detail: e.to_string(),
            during_commit,
        };
    }
    let Some(db) = e.as_db_error() else {
        return StateError::Engine {
            path: what,
            source: Box::new(e),
        };
    };
    // The driver's own text for a server's error is only "db error".
    let said = |db: &postgres::error::DbError| -> Box<dyn std::error::Error + Send + Sync> {
        format!("{} ({}): {}", db.severity(), db.code().code(), db.message()).into()
    };
    match db.code() {
        c if *c == SqlState::LOCK_NOT_AVAILABLE => StateError::Locked {
            what,
            waited: DEFAULT_BUSY_TIMEOUT,
            holder: None,
        },
        c if *c == SqlState::INSUFFICIENT_PRIVILEGE => StateError::Denied {
            what,
            detail: format!("the server refused: {}", db.message()),
            hint: format!(
                "the role needs to own the schema `{}` to apply, and USAGE on it with SELECT on its tables to read",
                target.schema
            ),
        },
        c if *c == SqlState::READ_ONLY_SQL_TRANSACTION => StateError::ReadOnly { path: what },
        c if *c == SqlState::ADMIN_SHUTDOWN
            || *c == SqlState::CRASH_SHUTDOWN
            || *c == SqlState::CANNOT_CONNECT_NOW
            || c.code().starts_with("08") =>
        {
            StateError::Lost {
                what,
                detail: db.message().to_owned(),
                during_commit,
            }
        }
        _ => StateError::Engine {
            path: what,
            source: said(db),
        },
    }
}

/// An open state in PostgreSQL: one connection, whose every transaction
/// reads and writes the state's schema.
pub struct Store {
    /// Behind a lock so that reads take `&self` as the other backends' do;
    /// a command uses its store from one thread at a time.
    client: Mutex<Client>,
    target: Target,
    lineage: String,
    lock_timeout: Duration,
    /// Opened to read only: every transaction is read-only.
    read_only: bool,
    /// The watcher's lease every apply checks, when one is set.
    fence: Option<Box<crate::state::Fence>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("target", &self.target)
            .field("lineage", &self.lineage)
            .finish_non_exhaustive()
    }
}

/// Connects to the state's database. Its session is left as it is: each
/// transaction sets what it needs ([`begin`]).
fn connect(target: &Target) -> Result<Client, StateError> {
    let info = conninfo::ConnInfo::resolve(target.url(), &|name| std::env::var(name).ok())
        .map_err(|message| StateError::Connect {
            message: format!("`{}`: {message}", target.shown()),
            hint: None,
        })?;
    info.connect().map_err(|e| StateError::Connect {
        message: e.to_string(),
        hint: e.hint(),
    })
}

impl Store {
    /// Opens the state at `target` to read and write, creating its schema
    /// when there is none and migrating it forward.
    pub fn open(target: &Target, lock_timeout: Duration) -> Result<Store, StateError> {
        let mut client = connect(target)?;
        // The common case, a current schema, needs no lock.
        match inspect(&mut client, target)? {
            schema::Found::Supportctl { version } if version == schema::LATEST => {}
            _ => schema::migrate(&mut client, target)?,
        }
        Store::ready(client, target, lock_timeout, false)
    }

    /// Opens the state at `target` to read only, every transaction read-only:
    /// never created, migrated or written. `None` when the schema holds no
    /// state yet.
    pub fn open_read_only(
        target: &Target,
        lock_timeout: Duration,
    ) -> Result<Option<Store>, StateError> {
        let mut client = connect(target)?;
        match inspect(&mut client, target)? {
            schema::Found::Nothing => Ok(None),
            schema::Found::Supportctl { version } if version > schema::LATEST => {
                Err(StateError::TooNew {
                    path: target.shown_path(),
                    found: version,
                    supported: schema::LATEST,
                })
            }
            schema::Found::Supportctl { version } if version < schema::LATEST => {
                Err(StateError::NeedsMigration {
                    path: target.shown_path(),
                    found: version,
                    latest: schema::LATEST,
                })
            }
            schema::Found::Supportctl { .. } => {
                Store::ready(client, target, lock_timeout, true).map(Some)
            }
        }
    }

    fn ready(
        mut client: Client,
        target: &Target,
        lock_timeout: Duration,
        read_only: bool,
    ) -> Result<Store, StateError> {
        let pg = |e| pg_error(target, e);
        let mut tx = read_transaction(&mut client, target)?;
        let lineage: String = tx
            .query_one("SELECT value FROM meta WHERE key = 'lineage'", &[])
            .map_err(pg)?
            .get(0);
        tx.commit().map_err(pg)?;
        Ok(Store {
            client: Mutex::new(client),
            target: target.clone(),
            lineage,
            lock_timeout,
            read_only,
            fence: None,
        })
    }

    /// The connection, for one operation.
    fn client(&self) -> MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state's lineage: a random 128-bit id in hex, made once.
    pub fn lineage(&self) -> &str {
        &self.lineage
    }

    /// The names of the tenancies in the state, sorted.
    pub fn tenancies(&self) -> Result<Vec<String>, StateError> {
        self.read_rows(
            |tx| {
                tx.query(
                    "SELECT name FROM tenancies ORDER BY name COLLATE \"C\"",
                    &[],
                )
            },
            |r| Ok(r.get(0)),
        )
    }

    /// What `each` makes of the rows of one query, read in a read-only
    /// transaction of its own. The rows are gone before the commit: a row
    /// holds the driver's prepared statement, which is closed when its last
    /// row goes, and that close must reach the session the statement was
    /// made on (through a pooler, the next transaction may run on another
    /// session, and this one be handed to a client that makes a statement
    /// of the same name).
    fn read_rows<T>(
        &self,
        query: impl FnOnce(
            &mut postgres::Transaction<'_>,
        ) -> Result<Vec<postgres::Row>, postgres::Error>,
        each: impl FnMut(&postgres::Row) -> Result<T, StateError>,
    ) -> Result<Vec<T>, StateError> {
        let pg = |e| pg_error(&self.target, e);
        let mut client = self.client();
        let mut tx = read_transaction(&mut client, &self.target)?;
        let rows = query(&mut tx).map_err(pg)?;
        let values = rows.iter().map(each).collect::<Result<Vec<T>, _>>()?;
        drop(rows);
        tx.commit().map_err(pg)?;
        Ok(values)
    }

    /// The tenancy's state, or `None` when it is not in the state: one query
    /// per table, in one repeatable-read transaction.
    pub fn load(&self, tenancy: &str) -> Result<Option<super::Snapshot>, StateError> {
        let mut client = self.client();
        let mut tx = read_transaction(&mut client, &self.target)?;
        let loaded = rows::load(&mut tx, tenancy).map_err(|e| self.read_error(e))?;
        tx.commit().map_err(|e| pg_error(&self.target, e))?;
        loaded
            .map(|(model, serial)| {
                Ok(super::Snapshot {
                    model,
                    serial: self.serial_from(serial)?,
                })
            })
            .transpose()
    }

    /// The tenancy's serial, or `None` when it is not in the state.
    pub fn serial(&self, tenancy: &str) -> Result<Option<u64>, StateError> {
        let serials = self.read_rows(
            |tx| tx.query("SELECT serial FROM tenancies WHERE name = $1", &[&tenancy]),
            |r| self.serial_from(r.get(0)),
        )?;
        Ok(serials.into_iter().next())
    }

    fn serial_from(&self, serial: i64) -> Result<u64, StateError> {
        u64::try_from(serial).map_err(|_| StateError::Corrupt {
            path: self.target.shown_path(),
            detail: format!("a serial is {serial}"),
        })
    }

    fn read_error(&self, e: rows::ReadError) -> StateError {
        match e {
            rows::ReadError::Corrupt(detail) => StateError::Corrupt {
                path: self.target.shown_path(),
                detail,
            },
            rows::ReadError::Pg(e) => pg_error(&self.target, e),
        }
    }

    /// The tenancies that were retired and not created again, sorted.
    pub fn retired_tenancies(&self) -> Result<Vec<String>, StateError> {
        self.read_rows(
            |tx| {
                tx.query(
                    // GROUP BY, not DISTINCT: PostgreSQL refuses ORDER BY with
                    // a collation under SELECT DISTINCT.
                    "SELECT tenancy FROM journal WHERE kind = 'retire' \
                     AND tenancy NOT IN (SELECT name FROM tenancies) \
                     GROUP BY tenancy ORDER BY tenancy COLLATE \"C\"",
                    &[],
                )
            },
            |r| Ok(r.get(0)),
        )
    }
}

/// What the schema at `target` holds, read in a read-only transaction.
fn inspect(client: &mut Client, target: &Target) -> Result<schema::Found, StateError> {
    let mut tx = read_transaction(client, target)?;
    let found = schema::inspect(&mut tx, target)?;
    tx.commit().map_err(|e| pg_error(target, e))?;
    Ok(found)
}

/// The settings every transaction starts with, for itself only (`SET
/// LOCAL`): the state's schema as the search path, `pg_catalog` last so
/// that nothing unqualified resolves to `public`.
fn local_search_path(target: &Target) -> String {
    format!(
        "SET LOCAL search_path TO {}, pg_catalog",
        target.quoted_schema()
    )
}

/// Starts a transaction on the state's schema (see the module's comment:
/// nothing is set for the session), read-only when `read_only`, with
/// `settings` (more `SET LOCAL` statements, `;`-separated, or none) sent
/// in the same round trip as the search path.
fn begin<'a>(
    client: &'a mut Client,
    target: &Target,
    read_only: bool,
    settings: &str,
) -> Result<postgres::Transaction<'a>, StateError> {
    let pg = |e| pg_error(target, e);
    let mut tx = client
        .build_transaction()
        .read_only(read_only)
        .start()
        .map_err(pg)?;
    let mut sql = local_search_path(target);
    if !settings.is_empty() {
        sql.push_str("; ");
        sql.push_str(settings);
    }
    tx.batch_execute(&sql).map_err(pg)?;
    Ok(tx)
}

/// A transaction that reads one snapshot of every table.
fn read_transaction<'a>(
    client: &'a mut Client,
    target: &Target,
) -> Result<postgres::Transaction<'a>, StateError> {
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| pg_error(target, e))?;
    tx.batch_execute(&local_search_path(target))
        .map_err(|e| pg_error(target, e))?;
    Ok(tx)
}

/// Who holds a tenancy's lock, as the holder's session says: its
/// `application_name` (set for the length of its transaction), and since
/// when its transaction runs when the server shows that to this role.
fn lock_holder(
    client: &mut impl postgres::GenericClient,
    target: &Target,
    tenancy: &str,
) -> Option<String> {
    let key = i64::from(u32::from_ne_bytes(target.lock_id(tenancy).to_ne_bytes()));
    let row = client
        .query_opt(
            "SELECT a.application_name, to_char(a.xact_start AT TIME ZONE 'UTC', \
             'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), a.pid \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.database = \
             (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND l.classid::text::bigint = $1 AND l.objid::text::bigint = $2 AND l.objsubid = 2 \
             LIMIT 1",
            &[&i64::from(LOCK_CLASS), &key],
        )
        .ok()??;
    let name: Option<String> = row.get(0);
    let since: Option<String> = row.get(1);
    let backend: i32 = row.get(2);
    let mut who = match name.filter(|n| n.starts_with("supportctl ")) {
        Some(name) => name,
        None => format!("server process {backend}"),
    };
    if let Some(since) = since {
        who.push_str(&format!(", since {since}"));
    }
    Some(who)
}

/// What a writer says about itself while it holds a tenancy's lock (as its
/// `application_name`, at most 63 bytes): `supportctl apply on HOST, pid N`.
fn holder_name() -> String {
    // The command among the process's arguments (the first of the commands
    // that write; flags and their values come before it).
    let command = std::env::args()
        .skip(1)
        .find(|a| ["apply", "watch", "retire", "sr", "state"].contains(&a.as_str()))
        .unwrap_or_else(|| "command".into());
    let host: String = crate::state::host_name()
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '\'')
        .collect();
    let mut text = format!("supportctl {command} on {host}, pid {}", std::process::id());
    text.truncate(63);
    text
}

/// Starts a transaction that writes `tenancy`: takes its lock first,
/// waiting at most `lock_timeout`, and says who holds it meanwhile (as the
/// session's `application_name`, for the length of the transaction). A lock
/// not granted in time is [`StateError::Locked`], naming its holder.
fn begin_write<'a>(
    client: &'a mut Client,
    target: &Target,
    tenancy: &str,
    lock_timeout: Duration,
    read_only: bool,
) -> Result<postgres::Transaction<'a>, StateError> {
    let pg = |e| pg_error(target, e);
    let holder = holder_name();
    let mut tx = begin(
        client,
        target,
        read_only,
        &format!(
            "SET LOCAL lock_timeout = {}; SET LOCAL application_name = '{holder}'",
            lock_timeout.as_millis().max(1)
        ),
    )?;
    // In a savepoint, so that after a wait that timed out the transaction
    // can still ask who holds the lock. A lock taken in a savepoint that
    // is released belongs to the transaction.
    let mut attempt = tx.transaction().map_err(pg)?;
    match attempt.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_CLASS, &target.lock_id(tenancy)],
    ) {
        Ok(_) => attempt.commit().map_err(pg)?,
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            attempt.rollback().map_err(pg)?;
            return Err(StateError::Locked {
                what: target.shown_path(),
                waited: lock_timeout,
                holder: lock_holder(&mut tx, target, tenancy),
            });
        }
        Err(e) => return Err(pg(e)),
    }
    Ok(tx)
}
