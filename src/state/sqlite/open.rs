//! Opening a SQLite state: recognising the file before anything is
//! written, making a new database whole, migrating forward, and reading a
//! database that cannot be read in place.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::*;

/// Whether the write-ahead log beside the database at `path` holds anything.
pub(super) fn log_has_content(path: &Path) -> bool {
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
/// The database files this process has open through SQLite, by identity
/// (device and inode), with how many stores hold each.
///
/// A POSIX lock belongs to the process, and closing *any* descriptor of a
/// file drops every lock the process holds on it. SQLite keeps its own
/// descriptors in check, but the header check ([`recognise`]) opens and
/// closes the file by itself: done while another connection of this
/// process (a watcher's lease thread, say) has the file open, it would drop
/// that connection's locks, and another connection could then take it for
/// the last one and checkpoint and delete the write-ahead log under it.
/// So every open, and every close of a store, holds this registry, and a
/// file a live store holds — known to be a supportctl database — is not
/// opened by hand again.
static OPEN_FILES: std::sync::Mutex<Vec<(FileId, usize)>> = std::sync::Mutex::new(Vec::new());

/// A file's identity: its device and inode.
pub(super) type FileId = (u64, u64);

fn open_files() -> std::sync::MutexGuard<'static, Vec<(FileId, usize)>> {
    OPEN_FILES.lock().unwrap_or_else(|e| e.into_inner())
}

fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Whether a live store of this process holds the file `id`.
fn held(open: &[(FileId, usize)], id: Option<FileId>) -> bool {
    id.is_some_and(|id| open.iter().any(|(held, n)| *held == id && *n > 0))
}

/// Counts one more store on `id`.
fn hold(open: &mut Vec<(FileId, usize)>, id: Option<FileId>) {
    let Some(id) = id else { return };
    match open.iter_mut().find(|(held, _)| *held == id) {
        Some((_, n)) => *n += 1,
        None => open.push((id, 1)),
    }
}

impl Drop for Store {
    /// Closes the connection while the registry is held (so that no header
    /// check of the file runs meanwhile), then counts the store out.
    fn drop(&mut self) {
        let Some(id) = self.file_id else { return };
        let mut open = open_files();
        if let Ok(nothing) = Connection::open_in_memory() {
            drop(std::mem::replace(&mut self.conn, nothing));
        }
        if let Some(at) = open.iter().position(|(held, _)| *held == id) {
            open[at].1 -= 1;
            if open[at].1 == 0 {
                open.swap_remove(at);
            }
        }
    }
}

pub(super) fn recognise(path: &Path) -> Result<schema::Found, StateError> {
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
pub(super) fn create(path: &Path) -> Result<(), StateError> {
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
pub(super) fn prepare(conn: &mut Connection, path: &Path) -> Result<(), StateError> {
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
pub(super) fn snapshot(
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
        let mut open = open_files();
        if !database_exists(path)? {
            create(path)?;
        }
        let id = file_id(path);
        // A file a live store holds is a supportctl database, not empty.
        let found = if held(&open, id) {
            schema::Found::Ours { version: 0 }
        } else {
            recognise(path)?
        };
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
        let mut store = Store::with_lineage(conn, path)?;
        hold(&mut open, id);
        store.file_id = id;
        Ok(store)
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
        let mut open = open_files();
        if !database_exists(path)? {
            return Ok(None);
        }
        let id = file_id(path);
        if !held(&open, id) && recognise(path)? == schema::Found::Empty {
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
        let mut store = Store::with_lineage(conn, path)?;
        // A copy in memory holds nothing of the file.
        if !store.conn.path().is_none_or(str::is_empty) {
            hold(&mut open, id);
            store.file_id = id;
        }
        Ok(Some(store))
    }

    /// The store over `conn`, with the lineage it holds.
    pub(super) fn with_lineage(conn: Connection, path: &Path) -> Result<Store, StateError> {
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
            fence: None,
            file_id: None,
        })
    }
}
