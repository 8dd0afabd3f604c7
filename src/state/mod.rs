//! The state: tenancies and everything in them, with the apply journal and
//! the service requests (docs: the user guide's *State, plans and applies*).
//!
//! Everything above this module sees one [`Store`], whatever engine keeps
//! the state: it opens (and migrates) the state at a [`Location`], lists and
//! loads tenancies, applies a plan with its journal entry in one
//! serialisable transaction (the stale check inside it), reads the journal,
//! and opens and comments on SRs inside their write transaction. A backend
//! is a module (today [`sqlite`], the embedded default) and a variant of
//! [`Backend`]; adding one changes no caller.

mod dump;
pub mod lease;
pub mod postgres;
mod requests;
pub mod sqlite;
mod values;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::{Model, Person};
use crate::plan::{Plan, Summary};

pub use dump::{JournalRow, ServiceRequestDump, TenancyDump, TenancyRows};
pub use lease::{Campaign, Fence, Lease, Leases, Replica, ReplicaRow, Role};
pub use requests::{Channel, Comment, NewServiceRequest, People, ServiceRequest};
pub use sqlite::{MIGRATIONS, SCHEMA_VERSION};

/// How long an operation waits for another process's lock before giving up
/// with [`StateError::Busy`] or [`StateError::Locked`], unless
/// `--lock-timeout` says otherwise. An apply holds the write lock for the
/// length of one transaction, which is short even for large plans.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file is not a supportctl database. It was not changed.
    #[error("`{}` is not a supportctl database ({reason}); it was left untouched", path.display())]
    NotSupportctl { path: PathBuf, reason: &'static str },

    /// The file was the state and is damaged: empty, cut short, malformed,
    /// or gone with its write-ahead log left. It was not changed, and is
    /// never taken for a new database.
    #[error(
        "the state database `{}` is damaged: {detail}. It was left untouched, and supportctl will not start a new state over it\n  hint: copy it aside with its `-wal` and `-shm` files if they are there (the `-wal` file may hold the latest applies), then restore the database from a backup (`sqlite3 COPY .recover` can salvage rows from a copy); to start a new state instead, move the file and its `-wal` out of the way",
        path.display()
    )]
    Damaged { path: PathBuf, detail: String },

    /// A command that only reads met a database older than this binary's
    /// schema whose write-ahead log holds changes, so that it could not be
    /// read through a copy migrated in memory. Nothing was written.
    #[error(
        "`{}` is at schema version {found} and this supportctl reads version {latest}; this command only reads, so it did not migrate it, and the file was left untouched\n  hint: a command that writes migrates it first: run `supportctl apply CONFIG` once, as a user who can write the database",
        path.display()
    )]
    NeedsMigration {
        path: PathBuf,
        found: u32,
        latest: u32,
    },

    /// A command that only reads could not read the database without
    /// writing beside it: its write-ahead log holds changes the file lacks,
    /// and SQLite cannot use its `-shm` file here. Nothing was written.
    #[error(
        "cannot read `{}` without writing beside it: its write-ahead log holds changes not yet in the database file, and SQLite cannot make or use its `-shm` file here ({detail})\n  hint: read it where its folder can be written, or let a command that writes (`supportctl apply`) fold the log into the database first",
        path.display()
    )]
    LogUnreadable { path: PathBuf, detail: String },

    /// A command that writes met a database it may not write: the file's
    /// or its folder's permissions, or a read-only mount. Nothing was
    /// written.
    #[error(
        "cannot write the state database `{}`: it is read-only here (its permissions or its folder's, or a read-only mount); nothing was changed\n  hint: `show`, `plan` and the other commands that only read work as they are",
        path.display()
    )]
    ReadOnly { path: PathBuf },

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

    /// The plan was refused before its commit (the state it leads to breaks
    /// a rule); the reason says how. Nothing was written.
    #[error("{0}")]
    Refused(String),

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
    Engine {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The server could not be reached, or refused the connection (wrong
    /// password, no such database, TLS refused). Nothing was read or
    /// written. The message never holds a password.
    #[error("{message}{}", hint.as_ref().map(|h| format!("{HINT}{h}")).unwrap_or_default())]
    Connect {
        message: String,
        hint: Option<String>,
    },

    /// The database role may not do what the command needs. Nothing was
    /// changed.
    #[error("{detail} (`{}`); nothing was changed\n  hint: {hint}", what.display())]
    Denied {
        what: PathBuf,
        detail: String,
        hint: String,
    },

    /// Another writer held the tenancy's lock for longer than
    /// `--lock-timeout`. Nothing was written.
    #[error(
        "the state `{}` is locked{}: waited {}; nothing was changed\n  hint: wait for it to finish and run the command again, or give a longer `--lock-timeout`",
        what.display(),
        holder.as_ref().map(|h| format!(" by {h}")).unwrap_or_else(|| " by another supportctl".into()),
        crate::state::shown_duration(*waited)
    )]
    Locked {
        what: PathBuf,
        waited: Duration,
        /// Who holds the lock, when the database says (host, pid, command,
        /// since).
        holder: Option<String>,
    },

    /// The connection to the server was lost while the command ran. A
    /// transaction the server never saw committed was rolled back whole;
    /// when it was lost during the commit itself, the outcome is unknown.
    #[error(
        "the connection to `{}` was lost {}: {detail}\n  hint: {}",
        what.display(),
        if *during_commit { "while the apply committed; it may or may not have landed" } else { "before anything was committed; nothing was changed" },
        if *during_commit { "run `supportctl plan` to see whether it landed (an apply that landed plans to no changes)" } else { "run the same command again once the server answers" }
    )]
    Lost {
        what: PathBuf,
        detail: String,
        during_commit: bool,
    },

    /// A watcher's apply met a lease that is no longer its own: another
    /// watcher took it, or it expired (the watcher was paused or cut off).
    /// Nothing was written.
    #[error(
        "this watcher's lease on tenancy `{tenancy}` (epoch {epoch}) is no longer current: {detail}; nothing was written\n  hint: the watcher stands by, and applies again only if it takes the lease back"
    )]
    Fenced {
        tenancy: String,
        epoch: u64,
        detail: String,
    },

    /// `state copy` was refused: the state copied into already knows one
    /// of the tenancies, or holds one of the ids the copy keeps. Nothing
    /// was written.
    #[error(
        "cannot copy into `{}`: {detail}; nothing was written\n  hint: copy into a state that holds none of them: a new database file, or a new schema (`--to-schema NAME`)",
        what.display()
    )]
    CopyRefused { what: PathBuf, detail: String },

    #[error("`{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StateError {
    /// The message alone, without the hints that follow it in the error's
    /// text.
    pub fn message(&self) -> String {
        let text = self.to_string();
        match text.split_once(HINT) {
            Some((message, _)) => message.to_string(),
            None => text,
        }
    }

    /// What the user can do about it, one hint each (the error's text shows
    /// them after the message as `  hint: …` lines).
    pub fn hints(&self) -> Vec<String> {
        self.to_string()
            .split(HINT)
            .skip(1)
            .map(str::to_string)
            .collect()
    }
}

/// This host's name, as the journal and the status file record it: the
/// kernel's (a container's own), else `HOSTNAME`, else `unknown`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|n| !n.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// A wait as the errors show it: `10s`, `1.5s`, `250ms`.
pub fn shown_duration(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// What starts a hint in an error's text.
const HINT: &str = "\n  hint: ";

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
    /// The plan applied, as the JSON plan of docs/reference.md, *Commands* and *JSON formats*, compressed.
    pub plan: JournalPlan,
    /// The digest of the config set the plan was made from.
    pub config_digest: String,
    /// The commit of the config repository, when the config is in one.
    pub git_commit: Option<String>,
    /// The config set's files that differed from that commit (`git status
    /// --porcelain` entries; empty when none did), or `None` when not known.
    pub git_changes: Option<Vec<String>>,
    /// Who made the apply, when known.
    pub source: Option<ApplySource>,
}

/// Who made an apply: which command, where, from what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplySource {
    pub command: AppliedBy,
    /// The host's name.
    pub host: String,
    /// The config set (or saved plan) applied, as an absolute path.
    pub path: String,
    pub pid: u32,
}

/// The command that made an apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppliedBy {
    /// `supportctl apply`, of a config set or a saved plan.
    Apply,
    /// `supportctl watch`.
    Watch,
}

impl AppliedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            AppliedBy::Apply => "apply",
            AppliedBy::Watch => "watch",
        }
    }

    fn parse(text: &str) -> Option<AppliedBy> {
        match text {
            "apply" => Some(AppliedBy::Apply),
            "watch" => Some(AppliedBy::Watch),
            _ => None,
        }
    }
}

/// The latest apply to a tenancy (of some kind), without its plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastApply {
    pub id: i64,
    pub time: String,
    /// The tenancy's serial after it.
    pub serial: u64,
    pub config_digest: String,
    pub source: Option<ApplySource>,
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
    /// The fastest level: the slower levels shrink a plan's JSON little
    /// more, at several times the cost.
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

/// What a journal entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalKind {
    /// A plan applied.
    Apply,
    /// A tenancy retired: its rows removed (`supportctl retire`).
    Retire,
}

impl JournalKind {
    /// The name stored, and shown in `history`.
    pub fn as_str(self) -> &'static str {
        match self {
            JournalKind::Apply => "apply",
            JournalKind::Retire => "retire",
        }
    }
}

/// One apply or retirement, as the journal holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalRecord {
    pub id: i64,
    pub kind: JournalKind,
    pub tenancy: String,
    pub time: String,
    /// The tenancy's serial after the apply.
    pub serial: u64,
    pub summary: Summary,
    pub plan_json: String,
    pub config_digest: String,
    pub git_commit: Option<String>,
    /// See [`JournalEntry::git_changes`]; `None` for entries written before
    /// schema v4 too.
    pub git_changes: Option<Vec<String>>,
    /// Who made it; `None` for entries written before schema v5.
    pub source: Option<ApplySource>,
}

/// Where the state is kept: what `--db` (or `SUPPORTCTL_DB`) names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A schema in a PostgreSQL database.
    Postgres(postgres::Target),
}

impl Location {
    /// Whether there is a state here: false when there is nothing of one
    /// (see [`sqlite::database_exists`]; for PostgreSQL, no supportctl
    /// schema, which takes a connection to tell).
    pub fn exists(&self) -> Result<bool, StateError> {
        match self {
            Location::Sqlite(path) => sqlite::database_exists(path),
            Location::Postgres(target) => {
                Ok(postgres::Store::open_read_only(target, lock_timeout())?.is_some())
            }
        }
    }

    /// The files that hold the state, each with what it is: no output may be
    /// written over them, and a watcher ignores their changes. None for a
    /// state on a server.
    pub fn files(&self) -> Vec<(PathBuf, &'static str)> {
        match self {
            Location::Sqlite(path) => sqlite::files(path),
            Location::Postgres(_) => Vec::new(),
        }
    }

    /// A local file named after the state, with `suffix` added: where the
    /// parse cache and the watcher's status file are kept by default. For
    /// a state on a server, a file under the user's cache folder named by
    /// a digest of the URL without its password and of the schema, so that
    /// it never holds a secret and two states never share one.
    pub fn beside(&self, suffix: &str) -> PathBuf {
        self.beside_in(&user_cache_home(), suffix)
    }

    /// [`Location::beside`] with `cache_home` as the user's cache folder
    /// (`$XDG_CACHE_HOME`, else `~/.cache`): the files of a state on a
    /// server go in its `supportctl` folder.
    pub fn beside_in(&self, cache_home: &Path, suffix: &str) -> PathBuf {
        match self {
            Location::Sqlite(path) => with_suffix(path, suffix),
            Location::Postgres(target) => {
                use sha2::Digest as _;
                let digest = sha2::Sha256::digest(target.key_text().as_bytes());
                let name = format!("pg-{}{suffix}", &crate::hex::sha256_text(&digest)[..24]);
                cache_home.join("supportctl").join(name)
            }
        }
    }

    /// The location made absolute, as the watcher's status file names it
    /// (a URL with its password as `***`).
    pub fn absolute(&self) -> String {
        match self {
            Location::Sqlite(path) => std::path::absolute(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
            Location::Postgres(target) => target.shown(),
        }
    }

    /// The local folder the state must be in, when there is one and it does
    /// not exist: a state there could never be written.
    pub fn missing_folder(&self) -> Option<&Path> {
        let Location::Sqlite(path) = self else {
            return None;
        };
        let folder = match path.parent() {
            Some(f) if !f.as_os_str().is_empty() => f,
            _ => return None,
        };
        (!folder.is_dir()).then_some(folder)
    }

    /// The location with its state in schema `schema` (`--db-schema`):
    /// refused for a SQLite file, which has no schemas, and for a name
    /// supportctl does not use.
    pub fn with_schema(self, schema: &str) -> Result<Location, String> {
        match self {
            Location::Sqlite(path) => Err(format!(
                "`--db-schema` (or SUPPORTCTL_DB_SCHEMA) names a schema of a PostgreSQL state, and `{}` is a SQLite file",
                path.display()
            )),
            Location::Postgres(mut target) => {
                postgres::check_schema_name(schema)?;
                target.schema = schema.to_owned();
                Ok(Location::Postgres(target))
            }
        }
    }
}

/// The user's cache folder: `XDG_CACHE_HOME`, else `~/.cache`; the
/// temporary folder when there is no home.
fn user_cache_home() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })
        .unwrap_or_else(std::env::temp_dir)
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(target) => write!(f, "{}", target.shown()),
        }
    }
}

/// Any path the operating system allows, UTF-8 or not (what clap hands
/// `--db` and `SUPPORTCTL_DB` over as); a `postgres://` or `postgresql://`
/// URL is a PostgreSQL state.
impl From<std::ffi::OsString> for Location {
    fn from(text: std::ffi::OsString) -> Self {
        match text.to_str() {
            Some(url) if postgres::conninfo::is_url(url) => {
                Location::Postgres(postgres::Target::new(url.to_owned()))
            }
            _ => Location::Sqlite(PathBuf::from(text)),
        }
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Self {
        Location::Sqlite(path.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Self {
        Location::Sqlite(path.clone())
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Self {
        Location::Sqlite(path)
    }
}

impl From<&Location> for Location {
    fn from(location: &Location) -> Self {
        location.clone()
    }
}

static LOCK_TIMEOUT_MS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(DEFAULT_BUSY_TIMEOUT.as_millis() as u64);

/// Sets how long a write waits for another writer's lock, for every store
/// this process opens from now on (`--lock-timeout`).
pub fn set_lock_timeout(timeout: Duration) {
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    LOCK_TIMEOUT_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
}

/// How long a write waits for another writer's lock.
pub fn lock_timeout() -> Duration {
    Duration::from_millis(LOCK_TIMEOUT_MS.load(std::sync::atomic::Ordering::Relaxed))
}

/// `path` with `suffix` appended to its file name: `s.db` → `s.db-wal`.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// An open state, whatever keeps it.
#[derive(Debug)]
pub struct Store {
    backend: Backend,
    location: Location,
}

/// The engines a state can be kept in.
#[derive(Debug)]
pub enum Backend {
    Sqlite(sqlite::Store),
    /// Boxed: a connection is several times the size of a SQLite handle.
    Postgres(Box<postgres::Store>),
}

/// Calls the same method on whichever backend `$store` holds.
macro_rules! on_backend {
    ($store:expr, $backend:ident => $call:expr) => {
        match $store {
            Backend::Sqlite($backend) => $call,
            Backend::Postgres($backend) => $call,
        }
    };
}

impl Store {
    /// Opens the state at `at` to read and write, creating it when there is
    /// none, and migrating its schema forward. What is there and is not a
    /// supportctl state, or is one from a newer supportctl, or is damaged, is
    /// refused and left untouched.
    pub fn open(at: impl Into<Location>) -> Result<Store, StateError> {
        let location = at.into();
        let backend = match &location {
            Location::Sqlite(path) => {
                let store = sqlite::Store::open(path)?;
                store.set_busy_timeout(lock_timeout())?;
                Backend::Sqlite(store)
            }
            Location::Postgres(target) => {
                Backend::Postgres(Box::new(postgres::Store::open(target, lock_timeout())?))
            }
        };
        Ok(Store { backend, location })
    }

    /// Opens the state at `at` to read only: never created, migrated or
    /// written. `None` when there is no state there yet.
    pub fn open_read_only(at: impl Into<Location>) -> Result<Option<Store>, StateError> {
        let location = at.into();
        let backend = match &location {
            Location::Sqlite(path) => sqlite::Store::open_read_only(path)?.map(Backend::Sqlite),
            Location::Postgres(target) => postgres::Store::open_read_only(target, lock_timeout())?
                .map(|s| Backend::Postgres(Box::new(s))),
        };
        Ok(backend.map(|backend| Store { backend, location }))
    }

    /// Where the state is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The state's lineage: a random 128-bit id in hex, made once.
    pub fn lineage(&self) -> &str {
        on_backend!(&self.backend, s => s.lineage())
    }

    /// The names of the tenancies in the state, sorted.
    pub fn tenancies(&self) -> Result<Vec<String>, StateError> {
        on_backend!(&self.backend, s => s.tenancies())
    }

    /// The tenancy's state, or `None` when it is not in the state, read in
    /// one read transaction.
    pub fn load(&self, tenancy: &str) -> Result<Option<Snapshot>, StateError> {
        on_backend!(&self.backend, s => s.load(tenancy))
    }

    /// The tenancy's serial, or `None` when it is not in the state.
    pub fn serial(&self, tenancy: &str) -> Result<Option<u64>, StateError> {
        on_backend!(&self.backend, s => s.serial(tenancy))
    }

    /// Applies `plan` to `tenancy` in one transaction and returns the
    /// tenancy's new serial: all of the plan lands, with its journal entry,
    /// or none of it. Inside the transaction, first checks that the lineage
    /// is `lineage` and the serial `expected_serial`, else
    /// [`StateError::Stale`].
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

    /// [`Store::apply`], where `entry` may still refuse the plan (as
    /// [`StateError::Refused`]) after the rows are written and before the
    /// commit; then nothing is written.
    pub fn apply_unless(
        &mut self,
        tenancy: &str,
        lineage: &str,
        expected_serial: u64,
        plan: &Plan,
        entry: impl FnOnce() -> Result<JournalEntry, String>,
    ) -> Result<u64, StateError> {
        on_backend!(&mut self.backend, s => s.apply_unless(tenancy, lineage, expected_serial, plan, entry))
    }

    /// Retires `tenancy`: its rows are removed by `plan` and the retirement
    /// journaled, in one transaction; its SRs and journal stay.
    pub fn retire(
        &mut self,
        tenancy: &str,
        lineage: &str,
        expected_serial: u64,
        plan: &Plan,
        entry: JournalEntry,
    ) -> Result<u64, StateError> {
        on_backend!(&mut self.backend, s => s.retire(tenancy, lineage, expected_serial, plan, entry))
    }

    /// The names of the retired tenancies, sorted.
    pub fn retired_tenancies(&self) -> Result<Vec<String>, StateError> {
        on_backend!(&self.backend, s => s.retired_tenancies())
    }

    /// The journal, oldest first; of one tenancy when given.
    pub fn history(&self, tenancy: Option<&str>) -> Result<Vec<JournalRecord>, StateError> {
        on_backend!(&self.backend, s => s.history(tenancy))
    }

    /// The latest apply to `tenancy`, or the latest made by `by`.
    pub fn last_apply(
        &self,
        tenancy: &str,
        by: Option<AppliedBy>,
    ) -> Result<Option<LastApply>, StateError> {
        on_backend!(&self.backend, s => s.last_apply(tenancy, by))
    }

    /// The tenancy's state and who each of its users is.
    pub fn load_with_people(&self, tenancy: &str) -> Result<Option<(Model, People)>, StateError> {
        on_backend!(&self.backend, s => s.load_with_people(tenancy))
    }

    /// The ids user `id` of `tenancy` had before its renames.
    pub fn renamed_from(&self, tenancy: &str, id: &str) -> Result<Vec<String>, StateError> {
        on_backend!(&self.backend, s => s.renamed_from(tenancy, id))
    }

    /// Opens an SR in `tenancy`, as `decide` says from the tenancy's state
    /// inside the write transaction. `Ok(Err(_))` is a refusal.
    pub fn open_service_request<E>(
        &mut self,
        tenancy: &str,
        decide: impl FnOnce(&Model) -> Result<NewServiceRequest, E>,
    ) -> Result<Result<ServiceRequest, E>, StateError> {
        on_backend!(&mut self.backend, s => s.open_service_request(tenancy, decide))
    }

    /// Everything of `tenancy` — rows, serial, persons, former ids,
    /// journal, SRs and comments, every id as stored — in one snapshot;
    /// `None` when the name is nowhere in the state.
    pub fn dump(&self, tenancy: &str) -> Result<Option<TenancyDump>, StateError> {
        on_backend!(&self.backend, s => s.dump(tenancy))
    }

    /// [`Store::dump`] of every tenancy name in the state (with rows, or
    /// only in the journal or the SRs: a retired one), sorted, all in one
    /// snapshot.
    pub fn dump_all(&self) -> Result<Vec<TenancyDump>, StateError> {
        on_backend!(&self.backend, s => s.dump_all())
    }

    /// Writes `dumps` into the state in one transaction, every id kept, and
    /// moves the id sequences past them. Refused with
    /// [`StateError::CopyRefused`], nothing written, when the state already
    /// knows one of the tenancies or holds one of the ids.
    pub fn restore(&mut self, dumps: &[TenancyDump]) -> Result<(), StateError> {
        on_backend!(&mut self.backend, s => s.restore(dumps))
    }

    /// Campaigns for the lease of `tenancy` as `me`, in one short
    /// transaction (see [`lease`]): renews it, takes it, or learns who
    /// holds it; and writes `me`'s row of the replicas table.
    pub fn campaign(
        &mut self,
        tenancy: &str,
        me: &Replica,
        duration: Duration,
    ) -> Result<Campaign, StateError> {
        on_backend!(&mut self.backend, s => s.campaign(tenancy, me, duration))
    }

    /// Gives up `me`'s lease of `tenancy` (if it holds it) so that a
    /// standby takes it at once, and marks `me` stopped.
    pub fn release(&mut self, tenancy: &str, me: &Replica) -> Result<(), StateError> {
        on_backend!(&mut self.backend, s => s.release(tenancy, me))
    }

    /// The leases and replicas of `tenancy` (all when `None`), by tenancy
    /// and replica, with the database's time.
    pub fn leases(&self, tenancy: Option<&str>) -> Result<Leases, StateError> {
        on_backend!(&self.backend, s => s.leases(tenancy))
    }

    /// Makes every later apply through this store check, inside its
    /// transaction, that `fence` is still the tenancy's live lease.
    pub fn set_fence(&mut self, fence: Option<Fence>) {
        on_backend!(&mut self.backend, s => s.set_fence(fence))
    }

    /// The SRs of `tenancy`, by id.
    pub fn service_requests(&self, tenancy: &str) -> Result<Vec<ServiceRequest>, StateError> {
        on_backend!(&self.backend, s => s.service_requests(tenancy))
    }

    /// Adds a comment by `user` to SR `id`, as `decide` says inside the write
    /// transaction. `Ok(None)`: no such SR.
    pub fn add_comment<E>(
        &mut self,
        tenancy: &str,
        id: i64,
        user: &str,
        decide: impl FnOnce(&Model, Option<Person>, &ServiceRequest) -> Result<Comment, E>,
    ) -> Result<Option<Result<Comment, E>>, StateError> {
        on_backend!(&mut self.backend, s => s.add_comment(tenancy, id, user, decide))
    }
}
