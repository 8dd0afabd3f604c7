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
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use super::{
    AppliedBy, ApplySource, DEFAULT_BUSY_TIMEOUT, JournalEntry, JournalKind, JournalPlan,
    JournalRecord, LastApply, Snapshot, StateError, with_suffix,
};
use crate::plan::{Plan, Summary};

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
        _ => StateError::Sqlite {
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

/// Whether the write-ahead log beside the database at `path` holds anything.
fn log_has_content(path: &Path) -> bool {
    std::fs::metadata(with_suffix(path, "-wal")).is_ok_and(|m| m.len() > 0)
}

/// Whether there is a database at `path`: false when there is no file and
/// nothing of one. A write-ahead log beside a missing file is what is left
/// of a database, not a place to make a new one (SQLite would replay the log
/// into it): [`StateError::Damaged`].
pub fn database_exists(path: &Path) -> Result<bool, StateError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let log = with_suffix(path, "-wal");
            match std::fs::metadata(&log) {
                Ok(meta) if meta.len() > 0 => Err(schema::damaged(
                    path,
                    format!(
                        "the file is missing, but its write-ahead log `{}` is there ({} bytes)",
                        log.display(),
                        meta.len()
                    ),
                )),
                _ => Ok(false),
            }
        }
        Err(e) => Err(StateError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Recognises the existing file at `path` from the outside: a regular,
/// non-empty file whose header is a supportctl database's or an empty SQLite
/// database's. An empty file is never a database of supportctl's (it makes
/// them whole before they take their name), so it is a damaged one.
fn recognise(path: &Path) -> Result<schema::Found, StateError> {
    let meta = std::fs::metadata(path).map_err(|source| StateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(StateError::NotSupportctl {
            path: path.to_path_buf(),
            reason: "it is not a regular file",
        });
    }
    if meta.len() == 0 {
        return Err(schema::damaged(path, "it is empty (0 bytes)".to_owned()));
    }
    schema::inspect_header(path)
}

/// Makes a new database at `path`: whole (WAL mode, every migration, its
/// lineage) under a temporary name beside it, then linked into place only
/// if nothing took the name meanwhile (another process making the same
/// database: then its database is used, and this one removed).
fn create(path: &Path) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (file, temporary) = crate::files::create_temporary(path, 0o600).map_err(io)?;
    drop(file);
    let remove = |temporary: &Path| {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(with_suffix(temporary, suffix));
        }
    };
    let made = (|| {
        let mut conn = Connection::open_with_flags(
            &temporary,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql_error(path, e))?;
        prepare(&mut conn, path)?;
        // Closing checkpoints the log into the file and removes it.
        conn.close().map_err(|(_, e)| sql_error(path, e))?;
        File::open(&temporary)
            .and_then(|f| f.sync_all())
            .map_err(io)
    })();
    if let Err(e) = made {
        remove(&temporary);
        return Err(e);
    }
    let linked = match std::fs::hard_link(&temporary, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        // A file system without hard links: renamed instead, unless the name
        // was taken meanwhile (between this check and the rename, another
        // process's new database could be replaced: only there).
        Err(_) if !path.exists() => std::fs::rename(&temporary, path).map_err(io),
        Err(_) => Ok(()),
    };
    remove(&temporary);
    linked?;
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(dir) = File::open(folder)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Sets a connection that may write up as every writer uses it: WAL mode,
/// durable commits, the schema migrated, foreign keys on.
fn prepare(conn: &mut Connection, path: &Path) -> Result<(), StateError> {
    let sql = |e| sql_error(path, e);
    // WAL: readers (plan, show) never block an apply, nor it them.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
        .map_err(sql)?;
    // FULL, not NORMAL: in WAL mode NORMAL stays consistent but may lose
    // the last commits on a power cut. This database is the only record
    // of what was applied, and an apply is rare and small in fsyncs, so
    // every commit is made durable before "Apply complete" is printed.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql)?;
    schema::migrate(conn, path)?;
    // After the migrations, which run with foreign keys off.
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(sql)?;
    // A plan touches every table with a few statements each; keep them
    // all prepared.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// The database file at `path` read into memory, as a read-only database:
/// for a reader SQLite cannot serve in place (`why`), when no write-ahead
/// log beside it holds changes the file lacks. The file must be the same
/// (inode, length, times) before and after it is read, and no log must have
/// appeared: otherwise a writer was at work, and it is read again (three
/// times at most, then [`StateError::Busy`]).
fn snapshot(
    path: &Path,
    why: &dyn std::fmt::Display,
    read_only: bool,
) -> Result<Connection, StateError> {
    use std::os::unix::fs::MetadataExt;
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let stamp = || -> Result<_, StateError> {
        let m = std::fs::metadata(path).map_err(io)?;
        let log = std::fs::metadata(with_suffix(path, "-wal")).map_or(0, |m| m.len());
        Ok((
            (m.dev(), m.ino(), m.len()),
            (m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()),
            log,
        ))
    };
    for _ in 0..3 {
        let before = stamp()?;
        if before.2 > 0 {
            return Err(StateError::LogUnreadable {
                path: path.to_path_buf(),
                detail: why.to_string(),
            });
        }
        let file = File::open(path).map_err(io)?;
        let len = usize::try_from(file.metadata().map_err(io)?.len()).unwrap_or(usize::MAX);
        let mut conn = Connection::open_in_memory().map_err(|e| sql_error(path, e))?;
        conn.deserialize_read_exact(
            rusqlite::MAIN_DB,
            RollbackHeader { file, at: 0 },
            len,
            read_only,
        )
        .map_err(|e| sql_error(path, e))?;
        if stamp()? == before {
            return Ok(conn);
        }
    }
    Err(StateError::Busy {
        path: path.to_path_buf(),
    })
}

/// A database file read as if in rollback-journal mode (bytes 18 and 19 of
/// its header say 1, not WAL's 2): a database in memory has no log.
struct RollbackHeader {
    file: File,
    at: u64,
}

impl std::io::Read for RollbackHeader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        for (i, byte) in buf[..n].iter_mut().enumerate() {
            if matches!(self.at + i as u64, 18 | 19) && *byte == 2 {
                *byte = 1;
            }
        }
        self.at += n as u64;
        Ok(n)
    }
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
    /// Opens the database at `path` to read and write, creating it (mode
    /// 0600) when there is no file there, and migrating its schema forward.
    ///
    /// A new database is made whole under a temporary name beside `path`
    /// and linked into place only then, so a database of supportctl's is
    /// never an empty file, even when its making is cut short. An existing
    /// file is recognised before anything is written to it: one that is not
    /// a supportctl database is refused with [`StateError::NotSupportctl`],
    /// one from a newer supportctl with [`StateError::TooNew`], an empty,
    /// cut-short or malformed one with [`StateError::Damaged`], and each is
    /// left byte-for-byte untouched. A missing file with a write-ahead log
    /// beside it is damaged too. A SQLite database with nothing in it
    /// becomes a new database.
    pub fn open(path: &Path) -> Result<Store, StateError> {
        if !database_exists(path)? {
            create(path)?;
        }
        let found = recognise(path)?;
        let sql = |e| sql_error(path, e);
        // The file exists: no SQLITE_OPEN_CREATE. SQLite creates the -wal and
        // -shm files with the database file's permissions (it sets them
        // explicitly, whatever the umask), so they are 0600 too.
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        // SQLite opens a file it may not write read-only without a word;
        // this command writes, so say so now rather than at the first write.
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(sql)? {
            return Err(StateError::ReadOnly {
                path: path.to_path_buf(),
            });
        }
        // Until the file is known to be ours, closing must not checkpoint a
        // write-ahead log into it.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(sql)?;
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT).map_err(sql)?;
        schema::inspect(&conn, path, found != schema::Found::Empty)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)
            .map_err(sql)?;
        prepare(&mut conn, path)?;
        Store::with_lineage(conn, path)
    }

    /// Opens the database at `path` to read only: never created, migrated
    /// or written, so that reading works for a user who may only read the
    /// file, on a read-only mount and on a full disk. `None` when there is no
    /// state there yet (no file, or a SQLite database with nothing in it).
    ///
    /// The file is recognised as [`Store::open`] does. A database whose
    /// schema is older than this binary's is read through a copy migrated in
    /// memory (only a command that writes migrates the file), or is
    /// [`StateError::NeedsMigration`] when its write-ahead log holds changes
    /// that a copy of the file would miss. Where SQLite cannot read the
    /// file in place without making its `-shm` file (a folder the user cannot
    /// write, a read-only mount, a full disk), and no write-ahead log holds
    /// changes, the file is read into memory and used from there, after
    /// checking it did not change while it was read.
    pub fn open_read_only(path: &Path) -> Result<Option<Store>, StateError> {
        if !database_exists(path)? {
            return Ok(None);
        }
        if recognise(path)? == schema::Found::Empty {
            return Ok(None);
        }
        let sql = |e| sql_error(path, e);
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT).map_err(sql)?;
        // Any other error is the file's, and `inspect` below reports it.
        if let Err(e) = schema::read_identity(&conn)
            && matches!(
                e.sqlite_error_code(),
                Some(
                    ErrorCode::ReadOnly
                        | ErrorCode::CannotOpen
                        | ErrorCode::SystemIoFailure
                        | ErrorCode::DiskFull
                )
            )
        {
            drop(conn);
            conn = snapshot(path, &e, true)?;
            tracing::debug!(reason = %e, "database read into memory: SQLite cannot read it in place");
        }
        match schema::inspect(&conn, path, true)? {
            schema::Found::Empty => return Ok(None),
            schema::Found::Ours { version } if version < schema::LATEST => {
                // An older schema is read through a copy migrated in memory:
                // the file stays as it is, for the next write to migrate, and
                // a `plan` in CI reads a state written by an older supportctl.
                // A log with changes not yet in the file cannot be copied.
                let needs = || StateError::NeedsMigration {
                    path: path.to_path_buf(),
                    found: version,
                    latest: schema::LATEST,
                };
                drop(conn);
                let why = format!("schema version {version} is older than {}", schema::LATEST);
                conn = match snapshot(path, &why, false) {
                    Ok(copy) => copy,
                    Err(StateError::LogUnreadable { .. }) => return Err(needs()),
                    Err(e) => return Err(e),
                };
                schema::migrate(&mut conn, path)?;
                tracing::debug!(
                    found = version,
                    "older schema read through a copy migrated in memory; the file is unchanged"
                );
            }
            schema::Found::Ours { .. } => {}
        }
        conn.set_prepared_statement_cache_capacity(64);
        Store::with_lineage(conn, path).map(Some)
    }

    /// The store over `conn`, with the lineage it holds.
    fn with_lineage(conn: Connection, path: &Path) -> Result<Store, StateError> {
        let lineage: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'lineage'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| sql_error(path, e))?;
        let Some(lineage) = lineage else {
            return Err(StateError::Corrupt {
                path: path.to_path_buf(),
                detail: "it has no lineage".to_owned(),
            });
        };
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            lineage,
        })
    }

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

    /// Applies `plan` to `tenancy` in one `BEGIN IMMEDIATE` transaction and
    /// returns the tenancy's new serial: all of the plan lands, with its
    /// journal entry, or none of it.
    ///
    /// Inside the transaction, first checks that the database's lineage is
    /// `lineage` and the tenancy's serial is `expected_serial` (0 for a
    /// tenancy not yet in the state), else [`StateError::Stale`]. Then writes
    /// the changes in plan order, sets the serial to `expected_serial + 1`
    /// and appends the journal entry with it. `entry` is called only for that
    /// last row, so a caller may render a large plan's JSON meanwhile, on
    /// another thread.
    ///
    /// The caller skips empty plans; given one, this writes nothing and
    /// returns the serial unchanged (after the same stale check).
    pub fn apply(
        &mut self,
        tenancy: &str,
        lineage: &str,
        expected_serial: u64,
        plan: &Plan,
        entry: impl FnOnce() -> JournalEntry,
    ) -> Result<u64, StateError> {
        self.apply_unless(tenancy, lineage, expected_serial, plan, || Ok(entry()))
    }

    /// [`Store::apply`], where `entry` may still refuse the plan, with the
    /// reason as [`StateError::Refused`]: it is called after the rows are
    /// written and before the commit, so a check made meanwhile on another
    /// thread (the rules the state the plan leads to must pass) can stop
    /// the apply, and then nothing is written.
    pub fn apply_unless(
        &mut self,
        tenancy: &str,
        lineage: &str,
        expected_serial: u64,
        plan: &Plan,
        entry: impl FnOnce() -> Result<JournalEntry, String>,
    ) -> Result<u64, StateError> {
        // A page cache that holds a large apply whole (SQLite's default is
        // 2 MiB): a transaction that outgrows it spills pages to the log
        // before the commit and reads them back. Only while writing: a read
        // of the whole state reuses the default one's pages instead of
        // holding ~20 MiB more of them at 100k users.
        self.conn
            .pragma_update(None, "cache_size", APPLY_CACHE_KIB)
            .map_err(|e| sql_error(&self.path, e))?;
        let applied = self.apply_in_one_transaction(tenancy, lineage, expected_serial, plan, entry);
        // Failing to set it back only leaves the larger cache: never a reason
        // to report an apply that committed as failed.
        if let Err(e) = self
            .conn
            .pragma_update(None, "cache_size", DEFAULT_CACHE_KIB)
        {
            tracing::debug!(error = %e, "page cache not set back to its default size");
        }
        applied
    }

    fn apply_in_one_transaction(
        &mut self,
        tenancy: &str,
        lineage: &str,
        expected_serial: u64,
        plan: &Plan,
        entry: impl FnOnce() -> Result<JournalEntry, String>,
    ) -> Result<u64, StateError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let mismatch = |detail: String| StateError::Mismatch {
            tenancy: tenancy.to_owned(),
            detail,
        };
        if plan.tenancy != tenancy {
            return Err(mismatch(format!(
                "the plan is for tenancy `{}`",
                plan.tenancy
            )));
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;

        let found_lineage: String = tx
            .prepare_cached("SELECT value FROM meta WHERE key = 'lineage'")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(sql)?;
        let found_serial: Option<i64> = tx
            .prepare_cached("SELECT serial FROM tenancies WHERE name = ?1")
            .and_then(|mut s| s.query_row([tenancy], |r| r.get(0)).optional())
            .map_err(sql)?;
        let found_serial_row = found_serial;
        let found_serial = match found_serial {
            Some(s) => u64::try_from(s).map_err(|_| StateError::Corrupt {
                path: path.clone(),
                detail: format!("tenancy `{tenancy}` has serial {s}"),
            })?,
            None => 0,
        };
        if found_lineage != lineage || found_serial != expected_serial {
            return Err(StateError::Stale {
                tenancy: tenancy.to_owned(),
                expected_lineage: lineage.to_owned(),
                found_lineage,
                expected_serial,
                found_serial,
            });
        }
        if plan.is_empty() {
            // Dropping the transaction rolls back: nothing was written.
            return Ok(found_serial);
        }

        let started = std::time::Instant::now();
        for change in &plan.changes {
            rows::apply_change(&tx, tenancy, change).map_err(|e| match e {
                rows::WriteError::Mismatch(detail) => mismatch(detail),
                rows::WriteError::Sql(e) => match constraint(&e) {
                    Some(what) => mismatch(format!(
                        "{} of `{}` failed: {what}",
                        change.action.as_str(),
                        change.address()
                    )),
                    None => sql(e),
                },
            })?;
        }

        // A tenancy new to the state continues the serials of any journal
        // its name already has (a tenancy retired and created again), so
        // each entry keeps its own (tenancy, serial).
        let new_serial = match found_serial_row {
            Some(_) => expected_serial + 1,
            None => last_journal_serial(&tx, &path, tenancy)? + 1,
        };
        let serial_sql = i64::try_from(new_serial).map_err(|_| StateError::Corrupt {
            path: path.clone(),
            detail: format!("tenancy `{tenancy}` has run out of serials"),
        })?;
        let updated = tx
            .prepare_cached("UPDATE tenancies SET serial = ?2 WHERE name = ?1")
            .and_then(|mut s| s.execute(rusqlite::params![tenancy, serial_sql]))
            .map_err(sql)?;
        if updated == 0 {
            return Err(mismatch(format!(
                "it does not create `tenancy.{tenancy}`, which is not in the state"
            )));
        }
        let rows_done = started.elapsed();
        // Dropping `tx` on a refusal rolls every row back.
        let entry = entry().map_err(StateError::Refused)?;
        let entry_ready = started.elapsed();
        insert_journal(&tx, &path, tenancy, serial_sql, &entry, JournalKind::Apply)?;
        let journal_done = started.elapsed();

        // COMMIT by hand: when the deferred foreign keys fail, the
        // transaction is still open, so it can say which references broke
        // before it is rolled back (by dropping `tx`).
        if let Err(e) = tx.execute_batch("COMMIT") {
            if e.sqlite_error().map(|f| f.extended_code)
                == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
            {
                let detail = rows::broken_references(&tx).map_err(sql)?;
                return Err(mismatch(detail));
            }
            return Err(sql(e));
        }
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        tracing::debug!(
            rows_ms = ms(rows_done),
            journal_entry_ms = ms(entry_ready - rows_done),
            journal_ms = ms(journal_done - entry_ready),
            commit_ms = ms(started.elapsed() - journal_done),
            "apply written"
        );
        Ok(new_serial)
    }

    /// Retires `tenancy` in one `BEGIN IMMEDIATE` transaction: removes its
    /// rows — links, approvals, memberships, support accounts, users, and
    /// the tenancy itself, so nobody can open an SR for it — and journals
    /// the retirement as the entry after its last, with `plan` (the deletes,
    /// made from the state at `expected_serial`) as what it removed. Its SRs
    /// and comments, its renames and its journal stay, readable by name.
    ///
    /// Refused as [`StateError::Stale`] when the lineage or the tenancy's
    /// serial has moved since `plan` was made, and as
    /// [`StateError::Mismatch`] when the rows removed are not the plan's.
    pub fn retire(
        &mut self,
        tenancy: &str,
        lineage: &str,
        expected_serial: u64,
        plan: &Plan,
        entry: JournalEntry,
    ) -> Result<u64, StateError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let found_lineage: String = tx
            .query_row("SELECT value FROM meta WHERE key = 'lineage'", [], |r| {
                r.get(0)
            })
            .map_err(sql)?;
        let found_serial: Option<i64> = tx
            .query_row(
                "SELECT serial FROM tenancies WHERE name = ?1",
                [tenancy],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?;
        let found_serial = found_serial.and_then(|s| u64::try_from(s).ok());
        if found_lineage != lineage || found_serial != Some(expected_serial) {
            return Err(StateError::Stale {
                tenancy: tenancy.to_owned(),
                expected_lineage: lineage.to_owned(),
                found_lineage,
                expected_serial,
                found_serial: found_serial.unwrap_or(0),
            });
        }
        // Dependents first; every foreign key is checked at the commit.
        let mut removed = 0;
        for table in [
            "support_links",
            "approvals",
            "memberships",
            "support_accounts",
            "users",
        ] {
            removed += tx
                .execute(
                    &format!("DELETE FROM {table} WHERE tenancy = ?1"),
                    [tenancy],
                )
                .map_err(sql)?;
        }
        removed += tx
            .execute("DELETE FROM tenancies WHERE name = ?1", [tenancy])
            .map_err(sql)?;
        let planned = plan
            .changes
            .iter()
            .filter(|c| c.action == crate::plan::Action::Delete)
            .count();
        if plan.tenancy != tenancy || removed != planned || planned != plan.changes.len() {
            return Err(StateError::Mismatch {
                tenancy: tenancy.to_owned(),
                detail: format!(
                    "the retirement removes {removed} rows and its plan {planned} of {} changes",
                    plan.changes.len()
                ),
            });
        }
        let new_serial = expected_serial + 1;
        let serial_sql = i64::try_from(new_serial).map_err(|_| StateError::Corrupt {
            path: path.clone(),
            detail: format!("tenancy `{tenancy}` has run out of serials"),
        })?;
        insert_journal(&tx, &path, tenancy, serial_sql, &entry, JournalKind::Retire)?;
        tx.commit().map_err(sql)?;
        Ok(new_serial)
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

    /// The journal, oldest first (by id, so in the order the applies ran),
    /// for one tenancy or for all of them.
    pub fn history(&self, tenancy: Option<&str>) -> Result<Vec<JournalRecord>, StateError> {
        const ALL: &str = "SELECT id, tenancy, time, serial, add_count, change_count, \
             destroy_count, plan_json, plan_zlib, plan_size, config_digest, git_commit, \
             git_changes, kind, applied_by, host, config_path, pid \
             FROM journal ORDER BY id";
        const ONE: &str = "SELECT id, tenancy, time, serial, add_count, change_count, \
             destroy_count, plan_json, plan_zlib, plan_size, config_digest, git_commit, \
             git_changes, kind, applied_by, host, config_path, pid \
             FROM journal WHERE tenancy = ?1 ORDER BY id";
        let sql = |e| sql_error(&self.path, e);
        let (mut stmt, params) = match tenancy {
            Some(t) => (self.conn.prepare_cached(ONE).map_err(sql)?, vec![t]),
            None => (self.conn.prepare_cached(ALL).map_err(sql)?, vec![]),
        };
        let raw = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    [r.get::<_, i64>(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
                    (
                        r.get::<_, String>(7)?,
                        r.get::<_, Option<Vec<u8>>>(8)?,
                        r.get::<_, Option<i64>>(9)?,
                    ),
                    r.get::<_, String>(10)?,
                    (
                        r.get::<_, Option<String>>(11)?,
                        r.get::<_, Option<String>>(12)?,
                        r.get::<_, String>(13)?,
                    ),
                    source_columns(r, 14)?,
                ))
            })
            .map_err(sql)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql)?;
        raw.into_iter()
            .map(
                |(
                    id,
                    tenancy,
                    time,
                    numbers,
                    plan,
                    config_digest,
                    (git_commit, git_changes, kind),
                    source,
                )| {
                    let corrupt = |detail: String| StateError::Corrupt {
                        path: self.path.clone(),
                        detail: format!("journal entry {id}: {detail}"),
                    };
                    let [serial, add, change, destroy] = numbers;
                    let size = |n: i64| {
                        usize::try_from(n).map_err(|_| corrupt(format!("it holds the count {n}")))
                    };
                    let plan_json = match plan {
                        (text, None, None) => text,
                        (_, Some(zlib), Some(len)) => {
                            JournalPlan::text(&zlib, size(len)?).map_err(corrupt)?
                        }
                        _ => return Err(corrupt("its plan is half there".to_string())),
                    };
                    let kind = match kind.as_str() {
                        "apply" => JournalKind::Apply,
                        "retire" => JournalKind::Retire,
                        other => return Err(corrupt(format!("it is of the kind `{other}`"))),
                    };
                    Ok(JournalRecord {
                        id,
                        kind,
                        tenancy,
                        time,
                        serial: u64::try_from(serial)
                            .map_err(|_| corrupt(format!("it holds the serial {serial}")))?,
                        summary: Summary {
                            add: size(add)?,
                            change: size(change)?,
                            destroy: size(destroy)?,
                        },
                        plan_json,
                        config_digest,
                        git_commit,
                        git_changes: git_changes
                            .map(|text| {
                                serde_json::from_str(&text).map_err(|_| {
                                    corrupt("its git changes are not a list of text".to_string())
                                })
                            })
                            .transpose()?,
                        source,
                    })
                },
            )
            .collect()
    }

    /// The latest apply to `tenancy`, or the latest made by `by` when
    /// given; without its plan. An indexed lookup of one row.
    pub fn last_apply(
        &self,
        tenancy: &str,
        by: Option<AppliedBy>,
    ) -> Result<Option<LastApply>, StateError> {
        const ANY: &str = "SELECT id, time, serial, config_digest, applied_by, host, config_path, pid \
             FROM journal WHERE tenancy = ?1 AND kind = 'apply' ORDER BY id DESC LIMIT 1";
        const BY: &str = "SELECT id, time, serial, config_digest, applied_by, host, config_path, pid \
             FROM journal WHERE tenancy = ?1 AND applied_by = ?2 ORDER BY id DESC LIMIT 1";
        let sql = |e| sql_error(&self.path, e);
        let read = |r: &rusqlite::Row<'_>| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                source_columns(r, 4)?,
            ))
        };
        let found = match by {
            None => self
                .conn
                .prepare_cached(ANY)
                .and_then(|mut s| s.query_row([tenancy], read).optional()),
            Some(by) => self
                .conn
                .prepare_cached(BY)
                .and_then(|mut s| s.query_row([tenancy, by.as_str()], read).optional()),
        }
        .map_err(sql)?;
        found
            .map(|(id, time, serial, config_digest, source)| {
                Ok(LastApply {
                    id,
                    time,
                    serial: u64::try_from(serial).map_err(|_| StateError::Corrupt {
                        path: self.path.clone(),
                        detail: format!("journal entry {id}: it holds the serial {serial}"),
                    })?,
                    config_digest,
                    source,
                })
            })
            .transpose()
    }
}

/// The journal's source columns from `first` on (`applied_by`, `host`,
/// `config_path`, `pid`): who made an apply, when they say it whole.
fn source_columns(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Option<ApplySource>> {
    let command = r.get::<_, Option<String>>(first)?;
    let host = r.get::<_, Option<String>>(first + 1)?;
    let path = r.get::<_, Option<String>>(first + 2)?;
    let pid = r.get::<_, Option<i64>>(first + 3)?;
    Ok(
        match (
            command.as_deref().and_then(AppliedBy::parse),
            host,
            path,
            pid,
        ) {
            (Some(command), Some(host), Some(path), Some(pid)) => Some(ApplySource {
                command,
                host,
                path,
                pid: u32::try_from(pid).unwrap_or(0),
            }),
            _ => None,
        },
    )
}

/// The last serial the journal holds for `tenancy`, 0 when none.
fn last_journal_serial(tx: &Connection, path: &Path, tenancy: &str) -> Result<u64, StateError> {
    let last: i64 = tx
        .prepare_cached("SELECT coalesce(max(serial), 0) FROM journal WHERE tenancy = ?1")
        .and_then(|mut s| s.query_row([tenancy], |r| r.get(0)))
        .map_err(|e| sql_error(path, e))?;
    u64::try_from(last).map_err(|_| StateError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("the journal of tenancy `{tenancy}` holds the serial {last}"),
    })
}

/// Appends `entry` to the journal as `tenancy`'s entry at `serial`.
fn insert_journal(
    tx: &Connection,
    path: &Path,
    tenancy: &str,
    serial: i64,
    entry: &JournalEntry,
    kind: JournalKind,
) -> Result<(), StateError> {
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let plan_size = i64::try_from(entry.plan.len).map_err(|_| StateError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("a plan of {} bytes is too large to journal", entry.plan.len),
    })?;
    let git_changes = entry
        .git_changes
        .as_ref()
        .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".to_string()));
    let source = entry.source.as_ref();
    // `plan_json` is the text column of the journal's first schema; rows
    // since keep it empty and the plan compressed (schema v3).
    tx.prepare_cached(
        "INSERT INTO journal (tenancy, time, serial, add_count, change_count, destroy_count, \
         plan_json, plan_zlib, plan_size, config_digest, git_commit, git_changes, kind, \
         applied_by, host, config_path, pid) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, '', ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )
    .and_then(|mut s| {
        s.execute(rusqlite::params![
            tenancy,
            entry.time,
            serial,
            count(entry.summary.add),
            count(entry.summary.change),
            count(entry.summary.destroy),
            entry.plan.zlib,
            plan_size,
            entry.config_digest,
            entry.git_commit,
            git_changes,
            kind.as_str(),
            source.map(|s| s.command.as_str()),
            source.map(|s| &s.host),
            source.map(|s| &s.path),
            source.map(|s| i64::from(s.pid)),
        ])
    })
    .map_err(|e| sql_error(path, e))?;
    Ok(())
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
