//! The state: tenancies and everything in them, in a SQLite database, with
//! the apply journal (SPEC §3).
//!
//! All SQL — and every mention of SQLite — stays in this module, behind
//! [`Store`], so that another backend (a shared server, for teams whose CI
//! runners cannot share a file) can be added without touching planning or
//! config.
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
//! written.

#[cfg(test)]
mod people_props;
mod requests;
mod rows;
mod schema;
#[cfg(test)]
mod tests;

use std::fs::{OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::model::Model;
use crate::plan::{Plan, Summary};

pub use requests::{Channel, Comment, NewServiceRequest, People, ServiceRequest};
pub use schema::LATEST as SCHEMA_VERSION;

/// How long an operation waits for another process's lock before giving up
/// with [`StateError::Busy`]. An apply holds the write lock for the length of
/// one transaction, which is short even for large plans.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file is not a supportctl database. It was not changed.
    #[error("`{}` is not a supportctl database ({reason}); it was left untouched", path.display())]
    NotSupportctl { path: PathBuf, reason: &'static str },

    /// The file was written by a newer supportctl. It was not changed.
    #[error(
        "`{}` was written by a newer supportctl (schema version {found}; this one reads up to {supported}); upgrade supportctl to use it. The file was left untouched",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The state moved on since the plan was made: another apply ran, or the
    /// plan was made against another database. Nothing was written.
    #[error(
        "the plan for tenancy `{tenancy}` is stale: it was made at serial {expected_serial} of state lineage {expected_lineage}, and the state is now at serial {found_serial} of lineage {found_lineage}; nothing was changed, plan again"
    )]
    Stale {
        tenancy: String,
        expected_lineage: String,
        found_lineage: String,
        expected_serial: u64,
        found_serial: u64,
    },

    /// The plan does not fit the state it claims to be made against (a row
    /// it updates is missing, one it creates exists, or the result would
    /// break a reference). Nothing was written.
    #[error(
        "the plan does not fit the state of tenancy `{tenancy}`: {detail}; nothing was changed"
    )]
    Mismatch { tenancy: String, detail: String },

    /// Another process held the database for longer than the busy timeout.
    #[error(
        "the database `{}` is locked by another supportctl; try again",
        path.display()
    )]
    Busy { path: PathBuf },

    /// The database holds something this binary cannot read back.
    #[error("the database `{}` holds data supportctl cannot read: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },

    #[error("the database `{}`: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("`{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Maps a SQLite error: a lock held too long becomes [`StateError::Busy`].
fn sql_error(path: &Path, e: rusqlite::Error) -> StateError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StateError::Busy {
            path: path.to_path_buf(),
        },
        _ => StateError::Sqlite {
            path: path.to_path_buf(),
            source: Box::new(e),
        },
    }
}

/// A tenancy as the state holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The tenancy's rows; `renames` is empty.
    pub model: Model,
    /// The tenancy's serial: how many applies it has seen.
    pub serial: u64,
}

/// What the caller records about an apply, beside the plan itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    /// When the apply ran, RFC 3339 in UTC.
    pub time: String,
    /// The plan's summary, stored as given.
    pub summary: Summary,
    /// The plan applied, as the JSON plan of SPEC §5, compressed.
    pub plan: JournalPlan,
    /// The digest of the config set the plan was made from.
    pub config_digest: String,
    /// The commit of the config repository, when the config is in one.
    pub git_commit: Option<String>,
}

/// A plan's JSON as the journal stores it: zlib-compressed (RFC 1950, the
/// format of the `sqlar_compress` function of SQLite's shell), with its
/// length in bytes. A first apply's plan holds every row it writes, and
/// stored as text it was most of what the apply wrote (4.7 of 6.9 MB at 10k
/// users); compressed it is a fifteenth of that.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalPlan {
    zlib: Vec<u8>,
    len: usize,
}

impl JournalPlan {
    /// The fastest level: ~8 ms for the 7 MB JSON of a 10k-user first
    /// apply, to 1/15 of its size; the slower levels gain little more.
    const LEVEL: u8 = 1;

    /// Compresses `json` (a few milliseconds per megabyte).
    pub fn new(json: &str) -> Self {
        JournalPlan {
            zlib: miniz_oxide::deflate::compress_to_vec_zlib(json.as_bytes(), Self::LEVEL),
            len: json.len(),
        }
    }

    /// The JSON back, or why the stored bytes are not a plan's.
    fn text(zlib: &[u8], len: usize) -> Result<String, String> {
        let bytes = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(zlib, len)
            .map_err(|e| format!("its plan does not decompress ({:?})", e.status))?;
        if bytes.len() != len {
            return Err(format!(
                "its plan decompresses to {} bytes, not the {len} stored",
                bytes.len()
            ));
        }
        String::from_utf8(bytes).map_err(|_| "its plan is not UTF-8 text".to_string())
    }
}

/// One apply, as the journal holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalRecord {
    pub id: i64,
    pub tenancy: String,
    pub time: String,
    /// The tenancy's serial after the apply.
    pub serial: u64,
    pub summary: Summary,
    pub plan_json: String,
    pub config_digest: String,
    pub git_commit: Option<String>,
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
    /// Opens the database at `path`, creating it (mode 0600) when there is
    /// no file, and migrating its schema forward.
    ///
    /// An existing file is recognised before anything is written to it: one
    /// that is not a supportctl database is refused with
    /// [`StateError::NotSupportctl`], one from a newer supportctl with
    /// [`StateError::TooNew`], and either is left byte-for-byte untouched. A
    /// zero-length file, or a SQLite database with nothing in it, becomes a
    /// new database.
    pub fn open(path: &Path) -> Result<Store, StateError> {
        let io = |source| StateError::Io {
            path: path.to_path_buf(),
            source,
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => {
                // The umask may have taken bits from 0600; set it exactly.
                file.set_permissions(Permissions::from_mode(0o600))
                    .map_err(io)?;
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let meta = std::fs::metadata(path).map_err(io)?;
                if !meta.is_file() {
                    return Err(StateError::NotSupportctl {
                        path: path.to_path_buf(),
                        reason: "it is not a regular file",
                    });
                }
                if meta.len() > 0 {
                    schema::inspect_header(path)?;
                }
            }
            Err(e) => return Err(io(e)),
        }

        let sql = |e| sql_error(path, e);
        // The file exists: no SQLITE_OPEN_CREATE. SQLite creates the -wal and
        // -shm files with the database file's permissions (it sets them
        // explicitly, whatever the umask), so they are 0600 too.
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        // Until the file is known to be ours, closing must not checkpoint a
        // write-ahead log into it.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(sql)?;
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT).map_err(sql)?;
        schema::inspect(&conn, path)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)
            .map_err(sql)?;

        // WAL: readers (plan, show) never block an apply, nor it them.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .map_err(sql)?;
        // FULL, not NORMAL: in WAL mode NORMAL stays consistent but may lose
        // the last commits on a power cut. This database is the only record
        // of what was applied, and an apply is rare and small in fsyncs, so
        // every commit is made durable before "Apply complete" is printed.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        schema::migrate(&mut conn, path)?;
        // After the migrations, which run with foreign keys off.
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(sql)?;
        // A plan touches every table with a few statements each; keep them
        // all prepared.
        conn.set_prepared_statement_cache_capacity(64);

        let lineage: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'lineage'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql)?;
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
        entry: impl FnOnce() -> JournalEntry,
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

        let new_serial = expected_serial + 1;
        let serial_sql = i64::try_from(new_serial).map_err(|_| StateError::Corrupt {
            path: path.clone(),
            detail: format!("tenancy `{tenancy}` has run out of serials"),
        })?;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
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
        let entry = entry();
        let entry_ready = started.elapsed();
        let plan_size = i64::try_from(entry.plan.len).map_err(|_| StateError::Corrupt {
            path: path.clone(),
            detail: format!("a plan of {} bytes is too large to journal", entry.plan.len),
        })?;
        // `plan_json` is the text column of the journal's first schema; rows
        // since keep it empty and the plan compressed (schema v3).
        tx.prepare_cached(
            "INSERT INTO journal (tenancy, time, serial, add_count, change_count, destroy_count, \
             plan_json, plan_zlib, plan_size, config_digest, git_commit) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, '', ?7, ?8, ?9, ?10)",
        )
        .and_then(|mut s| {
            s.execute(rusqlite::params![
                tenancy,
                entry.time,
                serial_sql,
                count(entry.summary.add),
                count(entry.summary.change),
                count(entry.summary.destroy),
                entry.plan.zlib,
                plan_size,
                entry.config_digest,
                entry.git_commit,
            ])
        })
        .map_err(sql)?;
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

    /// The journal, oldest first (by id, so in the order the applies ran),
    /// for one tenancy or for all of them.
    pub fn history(&self, tenancy: Option<&str>) -> Result<Vec<JournalRecord>, StateError> {
        const ALL: &str = "SELECT id, tenancy, time, serial, add_count, change_count, \
             destroy_count, plan_json, plan_zlib, plan_size, config_digest, git_commit \
             FROM journal ORDER BY id";
        const ONE: &str = "SELECT id, tenancy, time, serial, add_count, change_count, \
             destroy_count, plan_json, plan_zlib, plan_size, config_digest, git_commit \
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
                    r.get::<_, Option<String>>(11)?,
                ))
            })
            .map_err(sql)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql)?;
        raw.into_iter()
            .map(
                |(id, tenancy, time, numbers, plan, config_digest, git_commit)| {
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
                    Ok(JournalRecord {
                        id,
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
                    })
                },
            )
            .collect()
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
