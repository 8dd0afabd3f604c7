//! The state in a SQLite database: the embedded default backend.
//!
//! All SQL, and every mention of SQLite, stays in this module.
//!
//! A database is one file, created with mode 0600 on first use, in WAL mode,
//! its schema versioned by `PRAGMA user_version` and migrated forward on
//! open ([`schema::MIGRATIONS`]). It has a *lineage*, a random id made once
//! when the database is created; each tenancy in it has a *serial* that every
//! apply advances. A plan names the lineage and serial it was made against,
//! and [`Store::apply`] refuses it as stale when either has moved.
//!
//! A file that is not a supportctl database, or one from a newer supportctl,
//! is refused and left byte-for-byte untouched: it is recognised from its
//! header bytes before SQLite opens it, and through SQLite before anything is
//! written. A database is made whole under a temporary name and linked into
//! place, so an empty file is never a new database: it, a file cut short or
//! malformed, and a write-ahead log without its database are damaged
//! ([`StateError::Damaged`]), never a fresh start.
//!
//! Commands that only read open the database read-only
//! ([`Store::open_read_only`]): nothing is created, migrated or written.

mod apply;
mod dump;
mod journal;
mod lease;
mod open;
#[cfg(test)]
mod people_props;
mod requests;
mod rows;
mod schema;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::{
    AppliedBy, ApplySource, DEFAULT_BUSY_TIMEOUT, JournalEntry, JournalKind, JournalPlan,
    JournalRecord, LastApply, Snapshot, StateError, with_suffix,
};
use crate::plan::{Plan, Summary};

use journal::{insert_journal, last_journal_serial};
pub use open::database_exists;
use open::log_has_content;
#[cfg(test)]
use open::snapshot;
pub use schema::{LATEST as SCHEMA_VERSION, MIGRATIONS};

/// Maps a SQLite error: a lock held too long becomes [`StateError::Busy`],
/// a malformed file [`StateError::Damaged`].
fn sql_error(path: &Path, e: rusqlite::Error) -> StateError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StateError::Busy {
            path: path.to_path_buf(),
        },
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            schema::damaged(path, format!("SQLite reports: {e}"))
        }
        Some(ErrorCode::ReadOnly) => StateError::ReadOnly {
            path: path.to_path_buf(),
        },
        _ => StateError::Engine {
            path: path.to_path_buf(),
            source: Box::new(e),
        },
    }
}

/// The files of the database at `path`, each with what it is: the
/// database, and its side files.
pub fn files(path: &Path) -> Vec<(PathBuf, &'static str)> {
    let mut files = vec![(path.to_path_buf(), "the state database")];
    for (suffix, what) in [
        ("-wal", "the state database's write-ahead log"),
        ("-shm", "the state database's shared-memory file"),
        ("-journal", "the state database's rollback journal"),
    ] {
        files.push((with_suffix(path, suffix), what));
    }
    files
}

/// SQLite's page cache during an apply, in KiB (`PRAGMA cache_size` takes
/// a size in KiB as a negative number); used only as it fills.
const APPLY_CACHE_KIB: i64 = -65_536;
/// SQLite's page cache otherwise: its default, 2 MiB.
const DEFAULT_CACHE_KIB: i64 = -2_000;

/// An open state database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    lineage: String,
    /// The watcher's lease every apply checks, when one is set.
    fence: Option<Box<crate::state::Fence>>,
    /// The file it holds open, counted in `open::OPEN_FILES`; `None` for a
    /// copy in memory.
    file_id: Option<open::FileId>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("lineage", &self.lineage)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The database's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database's lineage: a random 128-bit id in hex, made once.
    pub fn lineage(&self) -> &str {
        &self.lineage
    }

    /// How long to wait for another process's lock (default
    /// [`DEFAULT_BUSY_TIMEOUT`]).
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<(), StateError> {
        self.conn
            .busy_timeout(timeout)
            .map_err(|e| sql_error(&self.path, e))
    }

    /// The names of the tenancies in the state, sorted.
    pub fn tenancies(&self) -> Result<Vec<String>, StateError> {
        let sql = |e| sql_error(&self.path, e);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM tenancies ORDER BY name")
            .map_err(sql)?;
        let names = stmt
            .query_map([], |r| r.get(0))
            .map_err(sql)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(sql)?;
        Ok(names)
    }

    /// The tenancy's state, or `None` when it is not in the state. One query
    /// per table, in one read transaction.
    pub fn load(&self, tenancy: &str) -> Result<Option<Snapshot>, StateError> {
        let sql = |e| sql_error(&self.path, e);
        // A read transaction: every table from the same commit.
        let tx = self.conn.unchecked_transaction().map_err(sql)?;
        let loaded = rows::load(&tx, tenancy).map_err(|e| match e {
            rows::ReadError::Corrupt(detail) => StateError::Corrupt {
                path: self.path.clone(),
                detail,
            },
            rows::ReadError::Sql(e) => sql(e),
        })?;
        tx.commit().map_err(sql)?;
        loaded
            .map(|(model, serial)| {
                Ok(Snapshot {
                    model,
                    serial: self.serial_from(serial)?,
                })
            })
            .transpose()
    }

    /// The tenancy's serial, or `None` when it is not in the state: one
    /// query, to tell whether a snapshot read earlier is still the state.
    pub fn serial(&self, tenancy: &str) -> Result<Option<u64>, StateError> {
        use rusqlite::OptionalExtension as _;
        let serial: Option<i64> = self
            .conn
            .query_row(
                "SELECT serial FROM tenancies WHERE name = ?1",
                [tenancy],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| sql_error(&self.path, e))?;
        serial.map(|s| self.serial_from(s)).transpose()
    }

    fn serial_from(&self, serial: i64) -> Result<u64, StateError> {
        u64::try_from(serial).map_err(|_| StateError::Corrupt {
            path: self.path.clone(),
            detail: format!("a serial is {serial}"),
        })
    }

    /// The tenancies that were retired and not created again, sorted: their
    /// SRs and journal are still in the database.
    pub fn retired_tenancies(&self) -> Result<Vec<String>, StateError> {
        let sql = |e| sql_error(&self.path, e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT tenancy FROM journal WHERE kind = 'retire' \
                 AND tenancy NOT IN (SELECT name FROM tenancies) ORDER BY tenancy",
            )
            .map_err(sql)?;
        let names = stmt
            .query_map([], |r| r.get(0))
            .map_err(sql)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(sql)?;
        Ok(names)
    }
}

/// What a failed constraint says about the plan, when `e` is one.
fn constraint(e: &rusqlite::Error) -> Option<&'static str> {
    use rusqlite::ffi;
    let code = e.sqlite_error()?;
    if code.code != ErrorCode::ConstraintViolation {
        return None;
    }
    Some(match code.extended_code {
        ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE => {
            "it is already in the state"
        }
        ffi::SQLITE_CONSTRAINT_CHECK => "a value is out of range",
        ffi::SQLITE_CONSTRAINT_NOTNULL => "a value is missing",
        ffi::SQLITE_CONSTRAINT_FOREIGNKEY => "it would break a reference",
        _ => "a constraint failed",
    })
}
