//! The floor: the least any tool must do to reconcile a config set with a
//! state, written as plainly as possible, so that each supportctl figure can
//! be read as a ratio to it. There is one floor per state backend, SQLite and
//! PostgreSQL; both parse the same way.
//!
//! Run as its own process (`bench --floor CONFIG DB` for SQLite, `bench
//! --floor-pg CONFIG URL` for PostgreSQL, started by the harness) so that its
//! peak RSS is its own. Four phases, each timed:
//!
//! 1. **parse**: find the files (the walk supportctl does: `*.yaml`/`*.yml`,
//!    recursively, sorted, hidden entries skipped), read each, deserialize it
//!    with the same YAML crate (serde-saphyr) into plain serde structs —
//!    `String` fields, a map of users, lists of memberships, approvals and
//!    links — and merge the files;
//! 2. **insert**, into SQLite: a fresh SQLite file (WAL, `synchronous =
//!    FULL`: the durability supportctl's state has), a table per kind, every
//!    row inserted with prepared statements in one transaction, in id order
//!    (the users are a `BTreeMap`; the lists are in file order, which is id
//!    order here): in hash order, each primary-key insert lands on a random
//!    page, and at 1M users, once the index outgrows SQLite's page cache, the
//!    inserts take four times as long;
//!
//!    **insert**, into PostgreSQL (an empty database the harness made
//!    beforehand, not timed): connect, then in one transaction create
//!    supportctl's own schema with its own migrations
//!    (`supportctl::state::postgres::MIGRATIONS`: the same tables, keys,
//!    deferred foreign keys, checks and indexes a first apply makes), load
//!    every row with one binary `COPY` per table, in id order, and commit
//!    (where the deferred foreign keys are checked). The rows are the ones
//!    supportctl stores: the tenancy with serial 1, an approval's privileges
//!    sorted (every privilege for an administrator), an `approved_by` or
//!    `via` left out as the tenancy admin. Not the journal entry an apply
//!    also writes: that is supportctl's own overhead. Each part (connect,
//!    schema, COPY, commit) is timed too;
//! 3. **load**: every row read back into hash maps keyed by user id (from
//!    PostgreSQL, one query per table in one repeatable-read transaction, as
//!    supportctl reads a tenancy);
//! 4. **compare**: the parsed data checked against what was loaded, field by
//!    field, both ways (counts, then every parsed entry looked up).
//!
//! It prints one JSON object (see [`FloorReport`]) on stdout.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use supportctl::state::postgres::{DEFAULT_SCHEMA, MIGRATIONS, SCHEMA_VERSION};

/// What the floor process prints.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct FloorReport {
    pub parse_s: f64,
    pub insert_s: f64,
    pub load_s: f64,
    pub compare_s: f64,
    pub files: usize,
    pub users: usize,
    /// Rows inserted, every table together.
    pub rows: usize,
    /// Whether what was loaded equals what was parsed.
    pub equal: bool,
    /// PostgreSQL only: `insert_s` in its parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insert_parts: Option<InsertParts>,
}

/// The parts of the PostgreSQL floor's insert phase, in seconds.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct InsertParts {
    /// Connecting, and setting the session's search path.
    pub connect_s: f64,
    /// Creating supportctl's schema and tables (its migrations).
    pub schema_s: f64,
    /// The binary `COPY` of every table.
    pub copy_s: f64,
    /// The commit, with its deferred foreign-key checks.
    pub commit_s: f64,
}

/// One config file as plain serde structs.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct File {
    tenancy: Option<Tenancy>,
    users: BTreeMap<String, User>,
    memberships: Vec<Membership>,
    approvals: Vec<Approval>,
    support_links: Vec<Link>,
}

#[derive(Deserialize)]
struct Tenancy {
    name: String,
    csi: String,
    home_region: Option<String>,
    admin: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct User {
    email: String,
    name: Option<String>,
    support_account: Option<Account>,
}

#[derive(Deserialize, PartialEq, Eq)]
struct Account {
    phone: String,
    timezone: String,
}

#[derive(Deserialize)]
struct Membership {
    user: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Approval {
    user: String,
    role: String,
    #[serde(default)]
    access: Vec<String>,
    approved_by: Option<String>,
    expires: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Link {
    user: String,
    via: Option<String>,
    expires: Option<String>,
}

/// The rows read back from SQLite.
#[derive(Default)]
struct Loaded {
    tenancy: Option<(String, String, Option<String>, String)>,
    users: HashMap<String, (String, Option<String>)>,
    accounts: HashMap<String, Account>,
    memberships: HashSet<String>,
    approvals: HashMap<String, ApprovalRow>,
    links: HashMap<String, (Option<String>, Option<String>)>,
}

struct ApprovalRow {
    role: String,
    /// The privileges joined by commas, as supportctl stores them.
    access: String,
    approved_by: Option<String>,
    expires: Option<String>,
}

/// Runs the floor on the config set at `config` with a new SQLite database
/// at `db`.
pub fn run(config: &Path, db: &Path) -> Result<FloorReport, String> {
    let (set, mut report) = parse(config)?;

    let t = Instant::now();
    let mut conn = insert(&set, db).map_err(|e| format!("insert: {e}"))?;
    report.insert_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let loaded = load(&mut conn).map_err(|e| format!("load: {e}"))?;
    report.load_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    report.equal = compare(&set, &loaded);
    report.compare_s = t.elapsed().as_secs_f64();
    Ok(report)
}

/// Runs the floor on the config set at `config` with the empty PostgreSQL
/// database at `url` (a libpq URL).
pub fn run_postgres(config: &Path, url: &str) -> Result<FloorReport, String> {
    let (set, mut report) = parse(config)?;

    let t = Instant::now();
    let mut parts = InsertParts::default();
    let mut client = insert_postgres(&set, url, &mut parts).map_err(|e| format!("insert: {e}"))?;
    report.insert_s = t.elapsed().as_secs_f64();
    report.insert_parts = Some(parts);

    let t = Instant::now();
    let loaded = load_postgres(&mut client, &set).map_err(|e| format!("load: {e}"))?;
    report.load_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    report.equal = compare_postgres(&set, &loaded);
    report.compare_s = t.elapsed().as_secs_f64();
    Ok(report)
}

/// The parse phase, timed: the files found, read and deserialized, merged
/// into one set; the report holds its time and counts.
fn parse(config: &Path) -> Result<(File, FloorReport), String> {
    let mut report = FloorReport::default();
    let t = Instant::now();
    let files = find_files(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let mut set = File::default();
    for path in &files {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: File = serde_saphyr::from_str_with_options(&text, options_for(text.len()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if file.tenancy.is_some() {
            set.tenancy = file.tenancy;
        }
        if set.users.is_empty() {
            set.users = file.users;
        } else {
            set.users.extend(file.users);
        }
        set.memberships.extend(file.memberships);
        set.approvals.extend(file.approvals);
        set.support_links.extend(file.support_links);
    }
    report.parse_s = t.elapsed().as_secs_f64();
    report.files = files.len();
    report.users = set.users.len();
    report.rows = usize::from(set.tenancy.is_some())
        + set.users.len()
        + set
            .users
            .values()
            .filter(|u| u.support_account.is_some())
            .count()
        + set.memberships.len()
        + set.approvals.len()
        + set.support_links.len();
    Ok((set, report))
}

/// The YAML crate's default budget is sized for small files (a million
/// events, 250,000 nodes); like supportctl, scale it with the input, since
/// an honest file has at most one event, node and scalar byte per byte.
fn options_for(size: usize) -> serde_saphyr::Options {
    let scaled = size.saturating_add(4096);
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = budget.max_events.max(scaled);
    budget.max_nodes = budget.max_nodes.max(scaled);
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(scaled);
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// The files of a config set, as supportctl finds them.
fn find_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    if path.is_dir() {
        walk(path, &mut files)?;
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    Ok(files)
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE tenancy (name TEXT PRIMARY KEY, csi TEXT NOT NULL, home_region TEXT, admin TEXT NOT NULL);
CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT);
CREATE TABLE support_accounts (user TEXT PRIMARY KEY, phone TEXT NOT NULL, timezone TEXT NOT NULL);
CREATE TABLE memberships (user TEXT PRIMARY KEY);
CREATE TABLE approvals (user TEXT PRIMARY KEY, role TEXT NOT NULL, access TEXT NOT NULL,
    approved_by TEXT, expires TEXT);
CREATE TABLE support_links (user TEXT PRIMARY KEY, via TEXT, expires TEXT);
";

fn insert(set: &File, db: &Path) -> rusqlite::Result<Connection> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = fs::remove_file(path);
    }
    let mut conn = Connection::open(db)?;
    conn.execute_batch(SCHEMA)?;
    let tx = conn.transaction()?;
    {
        if let Some(t) = &set.tenancy {
            tx.execute(
                "INSERT INTO tenancy VALUES (?1, ?2, ?3, ?4)",
                params![t.name, t.csi, t.home_region, t.admin],
            )?;
        }
        let mut users = tx.prepare("INSERT INTO users VALUES (?1, ?2, ?3)")?;
        let mut accounts = tx.prepare("INSERT INTO support_accounts VALUES (?1, ?2, ?3)")?;
        for (id, user) in &set.users {
            users.execute(params![id, user.email, user.name])?;
            if let Some(a) = &user.support_account {
                accounts.execute(params![id, a.phone, a.timezone])?;
            }
        }
        let mut memberships = tx.prepare("INSERT INTO memberships VALUES (?1)")?;
        for m in &set.memberships {
            memberships.execute(params![m.user])?;
        }
        let mut approvals = tx.prepare("INSERT INTO approvals VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for a in &set.approvals {
            let access = a.access.join(",");
            approvals.execute(params![a.user, a.role, access, a.approved_by, a.expires])?;
        }
        let mut links = tx.prepare("INSERT INTO support_links VALUES (?1, ?2, ?3)")?;
        for l in &set.support_links {
            links.execute(params![l.user, l.via, l.expires])?;
        }
    }
    tx.commit()?;
    Ok(conn)
}

fn load(conn: &mut Connection) -> rusqlite::Result<Loaded> {
    let mut loaded = Loaded::default();
    let mut stmt = conn.prepare("SELECT name, csi, home_region, admin FROM tenancy")?;
    let mut rows = stmt.query([])?;
    if let Some(r) = rows.next()? {
        loaded.tenancy = Some((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?));
    }
    drop(rows);

    let mut stmt = conn.prepare("SELECT id, email, name FROM users")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        loaded.users.insert(r.get(0)?, (r.get(1)?, r.get(2)?));
    }
    drop(rows);

    let mut stmt = conn.prepare("SELECT user, phone, timezone FROM support_accounts")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let account = Account {
            phone: r.get(1)?,
            timezone: r.get(2)?,
        };
        loaded.accounts.insert(r.get(0)?, account);
    }
    drop(rows);

    let mut stmt = conn.prepare("SELECT user FROM memberships")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        loaded.memberships.insert(r.get(0)?);
    }
    drop(rows);

    let mut stmt =
        conn.prepare("SELECT user, role, access, approved_by, expires FROM approvals")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let row = ApprovalRow {
            role: r.get(1)?,
            access: r.get(2)?,
            approved_by: r.get(3)?,
            expires: r.get(4)?,
        };
        loaded.approvals.insert(r.get(0)?, row);
    }
    drop(rows);

    let mut stmt = conn.prepare("SELECT user, via, expires FROM support_links")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        loaded.links.insert(r.get(0)?, (r.get(1)?, r.get(2)?));
    }
    Ok(loaded)
}

/// Whether the state loaded from SQLite equals the config parsed.
fn compare(set: &File, loaded: &Loaded) -> bool {
    compare_people(set, loaded)
        && set.approvals.iter().all(|a| {
            loaded.approvals.get(&a.user).is_some_and(|row| {
                row.role == a.role
                    && row.approved_by == a.approved_by
                    && row.expires == a.expires
                    && row
                        .access
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .eq(a.access.iter().map(String::as_str))
            })
        })
        && set.support_links.iter().all(|l| {
            loaded
                .links
                .get(&l.user)
                .is_some_and(|(via, expires)| l.via == *via && l.expires == *expires)
        })
}

/// What both backends compare alike: the tenancy, every table's count, the
/// users with their support accounts, the memberships.
fn compare_people(set: &File, loaded: &Loaded) -> bool {
    let tenancy = match (&set.tenancy, &loaded.tenancy) {
        (Some(t), Some((name, csi, region, admin))) => {
            t.name == *name && t.csi == *csi && t.home_region == *region && t.admin == *admin
        }
        (None, None) => true,
        _ => false,
    };
    let accounts = set
        .users
        .values()
        .filter(|u| u.support_account.is_some())
        .count();
    tenancy
        && set.users.len() == loaded.users.len()
        && accounts == loaded.accounts.len()
        && set.memberships.len() == loaded.memberships.len()
        && set.approvals.len() == loaded.approvals.len()
        && set.support_links.len() == loaded.links.len()
        && set.users.iter().all(|(id, u)| {
            loaded
                .users
                .get(id)
                .is_some_and(|(email, name)| u.email == *email && u.name == *name)
                && u.support_account.as_ref() == loaded.accounts.get(id)
        })
        && set
            .memberships
            .iter()
            .all(|m| loaded.memberships.contains(&m.user))
}

/// An approval's privileges as supportctl stores them: every privilege for
/// an administrator (whatever is listed), else the ones listed, sorted and
/// joined by commas.
fn stored_access(a: &Approval) -> String {
    if a.role == "admin" {
        return "create_sr,download,view_sr".to_owned();
    }
    let mut names: Vec<&str> = a.access.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    names.join(",")
}

/// The insert phase into PostgreSQL: connect, then one transaction that
/// creates supportctl's schema and loads every table with a binary `COPY`.
fn insert_postgres(
    set: &File,
    url: &str,
    parts: &mut InsertParts,
) -> Result<postgres::Client, String> {
    let Some(tenancy) = &set.tenancy else {
        return Err("the config set names no tenancy".into());
    };
    let t = Instant::now();
    let mut client = postgres::Client::connect(url, postgres::NoTls).map_err(pg)?;
    // As supportctl's sessions: `pg_catalog` last, nothing from `public`.
    client
        .batch_execute(&format!("SET search_path TO {DEFAULT_SCHEMA}, pg_catalog"))
        .map_err(pg)?;
    parts.connect_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut tx = client.transaction().map_err(pg)?;
    tx.batch_execute(&format!("CREATE SCHEMA {DEFAULT_SCHEMA}"))
        .map_err(pg)?;
    for migration in MIGRATIONS {
        tx.batch_execute(migration).map_err(pg)?;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', $1)",
        &[&SCHEMA_VERSION.to_string()],
    )
    .map_err(pg)?;
    parts.schema_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let name = tenancy.name.as_str();
    let admin = tenancy.admin.as_str();
    let text = Type::TEXT;
    copy_in(
        &mut tx,
        "tenancies (name, csi, home_region, admin, serial)",
        &[
            text.clone(),
            text.clone(),
            text.clone(),
            text.clone(),
            Type::INT8,
        ],
        |w| {
            w.write(&[
                &name,
                &tenancy.csi,
                &tenancy.home_region,
                &tenancy.admin,
                &1_i64,
            ])
        },
    )?;
    copy_in(
        &mut tx,
        "users (tenancy, id, email, name)",
        &vec![text.clone(); 4],
        |w| {
            for (id, u) in &set.users {
                w.write(&[&name, id, &u.email, &u.name])?;
            }
            Ok(())
        },
    )?;
    copy_in(
        &mut tx,
        "support_accounts (tenancy, user_id, phone, timezone)",
        &vec![text.clone(); 4],
        |w| {
            for (id, u) in &set.users {
                if let Some(a) = &u.support_account {
                    w.write(&[&name, id, &a.phone, &a.timezone])?;
                }
            }
            Ok(())
        },
    )?;
    copy_in(
        &mut tx,
        "memberships (tenancy, user_id)",
        &vec![text.clone(); 2],
        |w| {
            for m in &set.memberships {
                w.write(&[&name, &m.user])?;
            }
            Ok(())
        },
    )?;
    copy_in(
        &mut tx,
        "approvals (tenancy, user_id, role, access, approved_by, expires)",
        &vec![text.clone(); 6],
        |w| {
            for a in &set.approvals {
                let by = a.approved_by.as_deref().unwrap_or(admin);
                w.write(&[&name, &a.user, &a.role, &stored_access(a), &by, &a.expires])?;
            }
            Ok(())
        },
    )?;
    copy_in(
        &mut tx,
        "support_links (tenancy, user_id, via, expires)",
        &vec![text; 4],
        |w| {
            for l in &set.support_links {
                let via = l.via.as_deref().unwrap_or(admin);
                w.write(&[&name, &l.user, &via, &l.expires])?;
            }
            Ok(())
        },
    )?;
    parts.copy_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    tx.commit().map_err(pg)?;
    parts.commit_s = t.elapsed().as_secs_f64();
    Ok(client)
}

/// One binary `COPY` into `into` (a table and its columns), the rows
/// written by `rows`.
fn copy_in(
    tx: &mut postgres::Transaction<'_>,
    into: &str,
    types: &[Type],
    rows: impl FnOnce(&mut BinaryCopyInWriter<'_>) -> Result<(), postgres::Error>,
) -> Result<(), String> {
    let sink = tx
        .copy_in(&format!("COPY {into} FROM STDIN (FORMAT binary)"))
        .map_err(pg)?;
    let mut writer = BinaryCopyInWriter::new(sink, types);
    rows(&mut writer).map_err(pg)?;
    writer.finish().map_err(pg)?;
    Ok(())
}

/// Every row of the set's tenancy read back, one query per table in one
/// repeatable-read, read-only transaction.
fn load_postgres(client: &mut postgres::Client, set: &File) -> Result<Loaded, String> {
    let name = set.tenancy.as_ref().map_or("", |t| t.name.as_str());
    let mut loaded = Loaded::default();
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(pg)?;
    let params: [&(dyn ToSql + Sync); 1] = [&name];
    loaded.tenancy = tx
        .query_opt(
            "SELECT name, csi, home_region, admin FROM tenancies WHERE name = $1",
            &params,
        )
        .map_err(pg)?
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)));
    for r in tx
        .query(
            "SELECT id, email, name FROM users WHERE tenancy = $1",
            &params,
        )
        .map_err(pg)?
    {
        loaded.users.insert(r.get(0), (r.get(1), r.get(2)));
    }
    for r in tx
        .query(
            "SELECT user_id, phone, timezone FROM support_accounts WHERE tenancy = $1",
            &params,
        )
        .map_err(pg)?
    {
        let account = Account {
            phone: r.get(1),
            timezone: r.get(2),
        };
        loaded.accounts.insert(r.get(0), account);
    }
    for r in tx
        .query(
            "SELECT user_id FROM memberships WHERE tenancy = $1",
            &params,
        )
        .map_err(pg)?
    {
        loaded.memberships.insert(r.get(0));
    }
    for r in tx
        .query(
            "SELECT user_id, role, access, approved_by, expires FROM approvals WHERE tenancy = $1",
            &params,
        )
        .map_err(pg)?
    {
        let row = ApprovalRow {
            role: r.get(1),
            access: r.get(2),
            approved_by: r.get(3),
            expires: r.get(4),
        };
        loaded.approvals.insert(r.get(0), row);
    }
    for r in tx
        .query(
            "SELECT user_id, via, expires FROM support_links WHERE tenancy = $1",
            &params,
        )
        .map_err(pg)?
    {
        loaded.links.insert(r.get(0), (r.get(1), r.get(2)));
    }
    tx.commit().map_err(pg)?;
    Ok(loaded)
}

/// Whether the state loaded from PostgreSQL equals the config parsed, in
/// the form supportctl stores it (see [`insert_postgres`]).
fn compare_postgres(set: &File, loaded: &Loaded) -> bool {
    let Some(admin) = set.tenancy.as_ref().map(|t| t.admin.as_str()) else {
        return false;
    };
    compare_people(set, loaded)
        && set.approvals.iter().all(|a| {
            loaded.approvals.get(&a.user).is_some_and(|row| {
                row.role == a.role
                    && row.approved_by.as_deref() == Some(a.approved_by.as_deref().unwrap_or(admin))
                    && row.expires == a.expires
                    && row.access == stored_access(a)
            })
        })
        && set.support_links.iter().all(|l| {
            loaded.links.get(&l.user).is_some_and(|(via, expires)| {
                via.as_deref() == Some(l.via.as_deref().unwrap_or(admin)) && l.expires == *expires
            })
        })
}

/// A driver error with the server's own message (its `Display` alone often
/// says only "db error").
fn pg(e: postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        },
        None => e.to_string(),
    }
}
