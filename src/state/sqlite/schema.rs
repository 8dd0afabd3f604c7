//! The database's identity and its schema: the application id, the
//! migrations keyed by `PRAGMA user_version`, and the checks that recognise a
//! supportctl database before anything is written to it.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use super::{StateError, sql_error};

/// `PRAGMA application_id` of every supportctl database: "SPCT" in ASCII.
/// `file(1)` and other tools use it to tell our files from other SQLite files.
pub const APPLICATION_ID: i32 = 0x5350_4354;

/// The schema versions, in order: `MIGRATIONS[n]` takes a database from
/// `user_version` n to n + 1, in one transaction. Append, never edit: a
/// released migration has already run on someone's database.
///
/// Migrations run with foreign keys off (as SQLite's table-rebuild procedure
/// needs), and the runner checks the foreign keys before each commit.
///
/// Service requests and their comments (docs/guide/state.md) are runtime data: no
/// reconcile deletes or rewrites one, so they must not cascade from users.
/// They name people by `PEOPLE`'s person numbers, which a rename keeps.
pub const MIGRATIONS: &[&str] = &[
    // v1: the configuration state and the apply journal.
    r"
PRAGMA application_id = 1397769044;

-- One row per database: its lineage, made once. A saved plan names the
-- lineage it was made against, so a plan for another database (or for one
-- recreated since) is refused as stale.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('lineage', lower(hex(randomblob(16))));

-- Every foreign key is deferred to the commit: a plan's changes run in
-- SPEC §4 order, and the rows in between need not be consistent, only the
-- state the plan leads to (which `check` has already vetted).
CREATE TABLE tenancies (
    name        TEXT PRIMARY KEY NOT NULL,
    csi         TEXT NOT NULL,
    home_region TEXT,
    admin       TEXT NOT NULL,
    -- Advanced by every apply to this tenancy.
    serial      INTEGER NOT NULL DEFAULT 0 CHECK (serial >= 0),
    FOREIGN KEY (name, admin) REFERENCES users (tenancy, id)
        DEFERRABLE INITIALLY DEFERRED
) STRICT;

CREATE TABLE users (
    tenancy TEXT NOT NULL REFERENCES tenancies (name)
        DEFERRABLE INITIALLY DEFERRED,
    id      TEXT NOT NULL,
    email   TEXT NOT NULL,
    name    TEXT,
    PRIMARY KEY (tenancy, id)
) STRICT;

CREATE TABLE support_accounts (
    tenancy  TEXT NOT NULL,
    user     TEXT NOT NULL,
    phone    TEXT NOT NULL,
    timezone TEXT NOT NULL,
    PRIMARY KEY (tenancy, user),
    FOREIGN KEY (tenancy, user) REFERENCES users (tenancy, id)
        DEFERRABLE INITIALLY DEFERRED
) STRICT;

-- SPEC §2 rule 4: a membership needs a support account.
CREATE TABLE memberships (
    tenancy TEXT NOT NULL,
    user    TEXT NOT NULL,
    PRIMARY KEY (tenancy, user),
    FOREIGN KEY (tenancy, user) REFERENCES support_accounts (tenancy, user)
        DEFERRABLE INITIALLY DEFERRED
) STRICT;

-- SPEC §2 rule 5: an approval needs a membership request.
CREATE TABLE approvals (
    tenancy     TEXT NOT NULL,
    user        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    -- The privilege names, sorted, joined by commas; '' for none.
    access      TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    expires     TEXT CHECK (expires IS NULL
        OR expires GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    PRIMARY KEY (tenancy, user),
    FOREIGN KEY (tenancy, user) REFERENCES memberships (tenancy, user)
        DEFERRABLE INITIALLY DEFERRED,
    FOREIGN KEY (tenancy, approved_by) REFERENCES users (tenancy, id)
        DEFERRABLE INITIALLY DEFERRED
) STRICT;
CREATE INDEX approvals_approved_by ON approvals (tenancy, approved_by);

CREATE TABLE support_links (
    tenancy TEXT NOT NULL,
    user    TEXT NOT NULL,
    via     TEXT NOT NULL,
    expires TEXT CHECK (expires IS NULL
        OR expires GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    PRIMARY KEY (tenancy, user),
    FOREIGN KEY (tenancy, user) REFERENCES users (tenancy, id)
        DEFERRABLE INITIALLY DEFERRED,
    FOREIGN KEY (tenancy, via) REFERENCES users (tenancy, id)
        DEFERRABLE INITIALLY DEFERRED
) STRICT;
CREATE INDEX support_links_via ON support_links (tenancy, via);

-- The apply journal: append-only, and kept when a tenancy's rows go.
CREATE TABLE journal (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenancy       TEXT NOT NULL,
    time          TEXT NOT NULL,
    serial        INTEGER NOT NULL,
    add_count     INTEGER NOT NULL,
    change_count  INTEGER NOT NULL,
    destroy_count INTEGER NOT NULL,
    plan_json     TEXT NOT NULL,
    config_digest TEXT NOT NULL,
    git_commit    TEXT,
    UNIQUE (tenancy, serial)
) STRICT;
",
    // 2: service requests and their comments. Runtime data, not
    // configuration: no reconcile writes here, and nothing refers to the
    // users tables, so an SR outlives the user, approval or link it was
    // opened under, with the owner it was opened under.
    "
CREATE TABLE service_requests (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenancy       TEXT NOT NULL,
    title         TEXT NOT NULL,
    type          TEXT NOT NULL CHECK (type IN ('tech', 'limit', 'account')),
    severity      TEXT NOT NULL CHECK (severity IN ('highest', 'high', 'medium', 'low')),
    opened_by     TEXT NOT NULL,
    owner         TEXT NOT NULL,
    contact_email TEXT NOT NULL,
    channel       TEXT NOT NULL CHECK (channel IN ('mos', 'console')),
    opened_at     TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'open'
) STRICT;
CREATE INDEX service_requests_tenancy ON service_requests (tenancy, id);

CREATE TABLE sr_comments (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    sr_id   INTEGER NOT NULL REFERENCES service_requests (id),
    author  TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('mos', 'console')),
    text    TEXT NOT NULL,
    at      TEXT NOT NULL
) STRICT;
CREATE INDEX sr_comments_sr ON sr_comments (sr_id, id);

-- Renames applied (`previously:`): an SR keeps the ids it was opened under,
-- and this says who those users are now.
CREATE TABLE user_renames (
    tenancy TEXT NOT NULL,
    old     TEXT NOT NULL,
    new     TEXT NOT NULL,
    PRIMARY KEY (tenancy, old)
) STRICT;
",
    // 3: the journal keeps each plan zlib-compressed, with its length: as
    // text it was most of what a large apply wrote. In SQLite's shell,
    // `sqlar_uncompress(plan_zlib, plan_size)` reads it. Rows written before
    // keep their text in `plan_json`; rows since leave it empty.
    "
ALTER TABLE journal ADD COLUMN plan_zlib BLOB;
ALTER TABLE journal ADD COLUMN plan_size INTEGER
    CHECK ((plan_size IS NULL) = (plan_zlib IS NULL) AND (plan_size IS NULL OR plan_size >= 0));
",
    // 4: whether the config set's files differed from the commit the
    // journal names: a JSON array of `git status --porcelain` entries, `[]`
    // when none did, NULL when not known (outside git, a saved plan's
    // apply, or an entry written before). And what an entry records: an
    // apply, or the retirement of a tenancy (`supportctl retire`), which
    // removes its rows and keeps its SRs and journal.
    "
ALTER TABLE journal ADD COLUMN git_changes TEXT
    CHECK (git_changes IS NULL OR json_valid(git_changes) AND json_type(git_changes) = 'array');
ALTER TABLE journal ADD COLUMN kind TEXT NOT NULL DEFAULT 'apply'
    CHECK (kind IN ('apply', 'retire'));
",
    // 5: who made each apply — the command (`apply` by hand or `watch`), the
    // host, the config set (or saved plan) applied and the process — so
    // that a watcher can tell that another watcher, of another config set,
    // writes its tenancy. Rows written before hold NULL: nobody known.
    "
ALTER TABLE journal ADD COLUMN applied_by TEXT
    CHECK (applied_by IS NULL OR applied_by IN ('apply', 'watch'));
ALTER TABLE journal ADD COLUMN host TEXT;
ALTER TABLE journal ADD COLUMN config_path TEXT;
ALTER TABLE journal ADD COLUMN pid INTEGER;
CREATE INDEX journal_applied_by ON journal (tenancy, applied_by, id);
",
    // 6: persons, and SRs that belong to them and to a CSI.
    PEOPLE,
    // 7: watchers' leases (one leader per tenancy) and the replicas that
    // campaign for them (`state::lease`). Times are the database's clock in
    // milliseconds since the Unix epoch. Neither refers to `tenancies`: a
    // watcher campaigns before its first apply creates the tenancy.
    LEASES,
];

/// The leases and replicas tables (`state::lease`).
const LEASES: &str = "
CREATE TABLE leases (
    tenancy     TEXT PRIMARY KEY,
    epoch       INTEGER NOT NULL CHECK (epoch > 0),
    holder      TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    config      TEXT NOT NULL,
    acquired_ms INTEGER NOT NULL,
    renewed_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
) STRICT;
CREATE TABLE replicas (
    tenancy    TEXT NOT NULL,
    id         TEXT NOT NULL,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    config     TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('leader', 'standby', 'stopped')),
    since_ms   INTEGER NOT NULL,
    renewed_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (tenancy, id)
) STRICT;
";

/// The migration that ties service requests to people and to a CSI, not to
/// ids (docs/DOMAIN.md §5: an SR belongs to the person who opened it and
/// to the CSI it was opened under).
///
/// Each user gets a *person*: a number given when the user is created, kept
/// through renames (a rename changes `users.id`, never `users.person`), and
/// never given again (`AUTOINCREMENT`), so a user deleted and later created
/// under the same id is another person. An SR records the persons who opened
/// and own it and the CSI it was opened under, beside the ids it was opened
/// under (kept as they were, for display). `user_former_ids` keeps the ids
/// a person had before a rename, to tell someone who asks for an old id
/// where it went; it replaces `user_renames`, whose old → new pairs could
/// not tell two people who had the same id apart.
///
/// SRs already stored are given what can be told from the state: the
/// tenancy's CSI now, and the person the remembered renames lead to from
/// the id they were opened under (as the binaries before this one decided).
/// Where those renames go round in a cycle, or lead to an id that is no user
/// now, the person is unknown (NULL), and an unknown person is no one: only
/// the CSI-wide views (CSI administrators, `view_sr`) show such an SR.
///
/// Named, not only placed in [`MIGRATIONS`], so that tests find it wherever
/// it ends up in the list.
pub const PEOPLE: &str = "
CREATE TABLE users_with_persons (
    person  INTEGER PRIMARY KEY AUTOINCREMENT,
    tenancy TEXT NOT NULL REFERENCES tenancies (name)
        DEFERRABLE INITIALLY DEFERRED,
    id      TEXT NOT NULL,
    email   TEXT NOT NULL,
    name    TEXT,
    UNIQUE (tenancy, id)
) STRICT;
INSERT INTO users_with_persons (tenancy, id, email, name)
    SELECT tenancy, id, email, name FROM users ORDER BY tenancy, id;
DROP TABLE users;
ALTER TABLE users_with_persons RENAME TO users;

-- The ids a person had before a rename: (tenancy, id) may name several
-- persons, one after the other.
CREATE TABLE user_former_ids (
    tenancy TEXT NOT NULL,
    id      TEXT NOT NULL,
    person  INTEGER NOT NULL,
    PRIMARY KEY (tenancy, id, person)
) STRICT;

-- Where each id an SR or a remembered rename names leads, following the
-- remembered renames (each old id has one new id) until an id that was not
-- renamed; a chain longer than there are renames is a cycle, and leads
-- nowhere.
CREATE TEMP TABLE legacy_person AS
WITH RECURSIVE
    start (tenancy, id) AS (
        SELECT tenancy, opened_by FROM service_requests
        UNION SELECT tenancy, owner FROM service_requests
        UNION SELECT tenancy, old FROM user_renames
    ),
    follow (tenancy, start, id, steps) AS (
        SELECT tenancy, id, id, 0 FROM start
        UNION ALL
        SELECT f.tenancy, f.start, r.new, f.steps + 1
        FROM follow f JOIN user_renames r ON r.tenancy = f.tenancy AND r.old = f.id
        WHERE f.steps <= (SELECT count(*) FROM user_renames)
    )
SELECT f.tenancy AS tenancy, f.start AS id, u.person AS person
FROM follow f JOIN users u ON u.tenancy = f.tenancy AND u.id = f.id
WHERE NOT EXISTS (
    SELECT 1 FROM user_renames r WHERE r.tenancy = f.tenancy AND r.old = f.id
);

INSERT OR IGNORE INTO user_former_ids (tenancy, id, person)
    SELECT r.tenancy, r.old, l.person
    FROM user_renames r JOIN legacy_person l ON l.tenancy = r.tenancy AND l.id = r.old;
DROP TABLE user_renames;

-- Who opened and who owns an SR (NULL: a person that could not be told
-- when an older database was migrated, who is no one), and the CSI it was
-- opened under.
ALTER TABLE service_requests ADD COLUMN opener_person INTEGER;
ALTER TABLE service_requests ADD COLUMN owner_person INTEGER;
ALTER TABLE service_requests ADD COLUMN csi TEXT;
UPDATE service_requests SET
    opener_person = (SELECT person FROM temp.legacy_person l
        WHERE l.tenancy = service_requests.tenancy AND l.id = service_requests.opened_by),
    owner_person = (SELECT person FROM temp.legacy_person l
        WHERE l.tenancy = service_requests.tenancy AND l.id = service_requests.owner),
    csi = (SELECT csi FROM tenancies t WHERE t.name = service_requests.tenancy);
DROP TABLE temp.legacy_person;
";

/// The schema version this binary writes: the number of migrations.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What the checks found in a file that may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// A supportctl database at this schema version (at most [`LATEST`]).
    Ours { version: u32 },
    /// A SQLite database that holds nothing at all: a new database may be
    /// made of it.
    Empty,
}

/// Recognises an existing, non-empty file from its header bytes alone,
/// without SQLite, so a file that is not ours is never opened by SQLite
/// (which could roll back a hot journal or checkpoint a WAL into it).
///
/// Passes a supportctl database no newer than this binary, and a SQLite
/// database that holds nothing at all; [`inspect`] confirms through SQLite,
/// since the newest pages may still be in a write-ahead log. A file cut
/// short — a prefix of a SQLite header, or a supportctl database holding
/// fewer pages than its header counts while no write-ahead log holds the
/// rest — is [`StateError::Damaged`], never "not a supportctl database".
pub fn inspect_header(path: &Path) -> Result<Found, StateError> {
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut header = [0u8; 108];
    let mut file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut len = 0;
    while len < header.len() {
        match file.read(&mut header[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    if len < MAGIC.len() && len > 0 && header[..len] == MAGIC[..len] {
        return Err(damaged(path, format!("it is cut short: {len} bytes")));
    }
    if len < MAGIC.len() || &header[..16] != MAGIC {
        return Err(not_ours(path, "it is not a SQLite database"));
    }
    if len < 100 {
        return Err(damaged(
            path,
            format!("it is cut short: {len} bytes, less than a SQLite header"),
        ));
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let user_version = be32(60);
    let application_id = be32(68) as i32;
    if application_id == APPLICATION_ID {
        cut_short(path, &header, size)?;
    }
    // Page 1 holds the schema table; a leaf page (0x0D) with no cells is an
    // empty schema.
    let empty_schema = len == 108 && header[100] == 0x0D && header[103] == 0 && header[104] == 0;
    classify(path, application_id, i64::from(user_version), empty_schema)
}

/// Whether a supportctl database's file holds fewer pages than its header
/// counts: cut short by a copy, a restore or a full disk. The count is
/// trusted only when SQLite marked it valid (the change counter at 24 equals
/// the one at 92), and only while no write-ahead log beside the file could
/// hold the newest pages.
fn cut_short(path: &Path, header: &[u8; 108], size: u64) -> Result<(), StateError> {
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(damaged(
            path,
            format!("its header is damaged (a page size of {page_size} bytes)"),
        ));
    }
    let pages = u64::from(be32(28));
    let counted = pages > 0 && be32(24) == be32(92);
    if counted && size < pages * page_size && !super::log_has_content(path) {
        return Err(damaged(
            path,
            format!(
                "it is cut short: {size} bytes, where its header counts {pages} pages of {page_size} bytes"
            ),
        ));
    }
    Ok(())
}

/// Recognises the database through SQLite, before anything is written.
/// `ours`: the header already named it a supportctl database, so that a file
/// SQLite finds malformed is damaged rather than someone else's.
pub fn inspect(conn: &Connection, path: &Path, ours: bool) -> Result<Found, StateError> {
    let (application_id, user_version, objects) =
        read_identity(conn).map_err(|e| match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) if ours => {
                damaged(path, format!("SQLite reports: {e}"))
            }
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                not_ours(path, "it is not a readable SQLite database")
            }
            _ => sql_error(path, e),
        })?;
    classify(path, application_id, user_version, objects == 0)
}

/// The application id, the schema version and how many objects the schema
/// holds: the first thing read through SQLite.
pub fn read_identity(conn: &Connection) -> rusqlite::Result<(i32, i64, i64)> {
    let application_id = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let user_version = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let objects = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    Ok((application_id, user_version, objects))
}

fn classify(
    path: &Path,
    application_id: i32,
    user_version: i64,
    empty_schema: bool,
) -> Result<Found, StateError> {
    if application_id == APPLICATION_ID {
        match u32::try_from(user_version) {
            Ok(version) if version <= LATEST => Ok(Found::Ours { version }),
            _ => Err(StateError::TooNew {
                path: path.to_path_buf(),
                found: u32::try_from(user_version).unwrap_or(u32::MAX),
                supported: LATEST,
            }),
        }
    } else if application_id == 0 && user_version == 0 && empty_schema {
        // An empty SQLite database (e.g. made by `sqlite3 FILE ''`): nothing
        // in it to lose, so it becomes a supportctl database.
        Ok(Found::Empty)
    } else if application_id == 0 {
        Err(not_ours(
            path,
            "it is a SQLite database that supportctl did not create",
        ))
    } else {
        Err(not_ours(
            path,
            "it is a SQLite database of another application",
        ))
    }
}

fn not_ours(path: &Path, reason: &'static str) -> StateError {
    StateError::NotSupportctl {
        path: path.to_path_buf(),
        reason,
    }
}

pub(super) fn damaged(path: &Path, detail: String) -> StateError {
    StateError::Damaged {
        path: path.to_path_buf(),
        detail,
    }
}

/// Runs the migrations the database lacks, each in its own `BEGIN
/// IMMEDIATE` transaction that re-reads the version first, so two processes
/// opening a new database at once migrate it once.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StateError> {
    let sql = |e| sql_error(path, e);
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    if current == i64::from(LATEST) {
        // The common case takes no write lock.
        return Ok(());
    }
    // Off, as promised above (SQLite as built here starts with them on): a
    // table rebuilt by dropping it must not delete or count the rows that
    // refer to it. The check before each commit stands in for them.
    conn.pragma_update(None, "foreign_keys", false)
        .map_err(sql)?;
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql)?;
        let Ok(index) = usize::try_from(version) else {
            return Err(StateError::TooNew {
                path: path.to_path_buf(),
                found: u32::MAX,
                supported: LATEST,
            });
        };
        if index >= MIGRATIONS.len() {
            if index > MIGRATIONS.len() {
                // Another, newer supportctl got there first.
                return Err(StateError::TooNew {
                    path: path.to_path_buf(),
                    found: u32::try_from(index).unwrap_or(u32::MAX),
                    supported: LATEST,
                });
            }
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[index]).map_err(sql)?;
        let broken: i64 = tx
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .map_err(sql)?;
        if broken > 0 {
            return Err(StateError::Corrupt {
                path: path.to_path_buf(),
                detail: format!(
                    "migration to schema version {} leaves {broken} broken references",
                    index + 1
                ),
            });
        }
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_application_id_in_the_first_migration_is_the_constant() {
        assert!(
            MIGRATIONS[0].contains(&format!("PRAGMA application_id = {APPLICATION_ID};")),
            "MIGRATIONS[0] must set application_id to {APPLICATION_ID}"
        );
    }
}
