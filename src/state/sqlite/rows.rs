//! Rows: a tenancy's tables read into a [`Model`], and a plan's changes
//! written as rows. Every statement is parameterised and cached.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::types::ToSql;
use rusqlite::{CachedStatement, Connection, OptionalExtension, Transaction};

use crate::model::{Approval, Date, Model, SupportAccount, SupportLink, Tenancy, User};
use crate::plan::{Action, Change, Kind, Value};
use crate::state::values::{self, access_text, parse_access, parse_role};

/// Why a change could not be written.
pub enum WriteError {
    /// The plan does not fit the rows (a missing row, a duplicate, a value
    /// of the wrong kind): not a database failure.
    Mismatch(String),
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        WriteError::Sql(e)
    }
}

/// Why stored rows could not be read back as a model.
pub enum ReadError {
    Corrupt(String),
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for ReadError {
    fn from(e: rusqlite::Error) -> Self {
        ReadError::Sql(e)
    }
}

impl From<rusqlite::types::FromSqlError> for ReadError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        ReadError::Corrupt(format!("a stored value has the wrong type: {e}"))
    }
}

/// The statements of one per-user table. `?1` is the tenancy, `?2` the user
/// id, and the row's fields follow in the same order in `insert` and `update`.
struct TableSql {
    insert: &'static str,
    update: &'static str,
    delete: &'static str,
}

const USERS: TableSql = TableSql {
    insert: "INSERT INTO users (tenancy, id, email, name) VALUES (?1, ?2, ?3, ?4)",
    update: "UPDATE users SET email = ?3, name = ?4 WHERE tenancy = ?1 AND id = ?2",
    delete: "DELETE FROM users WHERE tenancy = ?1 AND id = ?2",
};

const SUPPORT_ACCOUNTS: TableSql = TableSql {
    insert: "INSERT INTO support_accounts (tenancy, user, phone, timezone) VALUES (?1, ?2, ?3, ?4)",
    update: "UPDATE support_accounts SET phone = ?3, timezone = ?4 WHERE tenancy = ?1 AND user = ?2",
    delete: "DELETE FROM support_accounts WHERE tenancy = ?1 AND user = ?2",
};

const MEMBERSHIPS: TableSql = TableSql {
    insert: "INSERT INTO memberships (tenancy, user) VALUES (?1, ?2)",
    // A membership has no fields: an update only confirms that it exists.
    update: "UPDATE memberships SET user = ?2 WHERE tenancy = ?1 AND user = ?2",
    delete: "DELETE FROM memberships WHERE tenancy = ?1 AND user = ?2",
};

const APPROVALS: TableSql = TableSql {
    insert: "INSERT INTO approvals (tenancy, user, role, access, approved_by, expires) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    update: "UPDATE approvals SET role = ?3, access = ?4, approved_by = ?5, expires = ?6 \
             WHERE tenancy = ?1 AND user = ?2",
    delete: "DELETE FROM approvals WHERE tenancy = ?1 AND user = ?2",
};

const SUPPORT_LINKS: TableSql = TableSql {
    insert: "INSERT INTO support_links (tenancy, user, via, expires) VALUES (?1, ?2, ?3, ?4)",
    update: "UPDATE support_links SET via = ?3, expires = ?4 WHERE tenancy = ?1 AND user = ?2",
    delete: "DELETE FROM support_links WHERE tenancy = ?1 AND user = ?2",
};

const TENANCY_INSERT: &str =
    "INSERT INTO tenancies (name, csi, home_region, admin, serial) VALUES (?1, ?2, ?3, ?4, 0)";
const TENANCY_UPDATE: &str =
    "UPDATE tenancies SET csi = ?2, home_region = ?3, admin = ?4 WHERE name = ?1";

/// Every place a user id is stored, moved by a rename: `?1` the tenancy,
/// `?2` the old id, `?3` the new one. The users row itself goes first (and
/// must exist), keeping its person. Service requests name persons, not ids,
/// so they have nothing to move.
const RENAME_USER: &str = "UPDATE users SET id = ?3 WHERE tenancy = ?1 AND id = ?2";
const RENAME_REFERENCES: &[&str] = &[
    "UPDATE support_accounts SET user = ?3 WHERE tenancy = ?1 AND user = ?2",
    "UPDATE memberships SET user = ?3 WHERE tenancy = ?1 AND user = ?2",
    "UPDATE approvals SET user = ?3 WHERE tenancy = ?1 AND user = ?2",
    "UPDATE approvals SET approved_by = ?3 WHERE tenancy = ?1 AND approved_by = ?2",
    "UPDATE support_links SET user = ?3 WHERE tenancy = ?1 AND user = ?2",
    "UPDATE support_links SET via = ?3 WHERE tenancy = ?1 AND via = ?2",
    "UPDATE tenancies SET admin = ?3 WHERE name = ?1 AND admin = ?2",
    // The id the person had, to tell someone who asks for it where it went.
    "INSERT OR IGNORE INTO user_former_ids (tenancy, id, person) \
     SELECT ?1, ?2, person FROM users WHERE tenancy = ?1 AND id = ?3",
];

/// The person of a user (`?1` the tenancy, `?2` the id), and setting it.
const USER_PERSON: &str = "SELECT person FROM users WHERE tenancy = ?1 AND id = ?2";
const SET_USER_PERSON: &str = "UPDATE users SET person = ?3 WHERE tenancy = ?1 AND id = ?2";

fn table(kind: Kind) -> Option<&'static TableSql> {
    match kind {
        Kind::Tenancy => None,
        Kind::User => Some(&USERS),
        Kind::SupportAccount => Some(&SUPPORT_ACCOUNTS),
        Kind::Membership => Some(&MEMBERSHIPS),
        Kind::Approval => Some(&APPROVALS),
        Kind::SupportLink => Some(&SUPPORT_LINKS),
    }
}

fn parse_date(text: Option<&str>, what: impl Fn() -> String) -> Result<Option<Date>, ReadError> {
    values::parse_date(text, what).map_err(ReadError::Corrupt)
}

/// Writes one resource's row with `sql` (an insert or an update of its
/// table), returning the number of rows written.
fn write_row(
    tx: &Connection,
    sql: &str,
    tenancy: &str,
    change: &Change,
    value: &Value,
) -> Result<usize, WriteError> {
    let id = change.id.as_str();
    let mut stmt = tx.prepare_cached(sql)?;
    let n = match (change.kind, value) {
        (Kind::User, Value::User(u)) => {
            stmt.execute::<&[&dyn ToSql]>(&[&tenancy, &id, &u.email, &u.name])?
        }
        (Kind::SupportAccount, Value::SupportAccount(a)) => {
            stmt.execute::<&[&dyn ToSql]>(&[&tenancy, &id, &a.phone, &a.timezone])?
        }
        (Kind::Membership, Value::Membership) => stmt.execute::<&[&dyn ToSql]>(&[&tenancy, &id])?,
        (Kind::Approval, Value::Approval(a)) => {
            let access = access_text(&a.access);
            let expires = a.expires.map(|d| d.to_string());
            stmt.execute::<&[&dyn ToSql]>(&[
                &tenancy,
                &id,
                &a.role.as_str(),
                &access,
                &a.approved_by,
                &expires,
            ])?
        }
        (Kind::SupportLink, Value::SupportLink(l)) => {
            let expires = l.expires.map(|d| d.to_string());
            stmt.execute::<&[&dyn ToSql]>(&[&tenancy, &id, &l.via, &expires])?
        }
        (Kind::Tenancy, Value::Tenancy(t)) => {
            if t.name != tenancy || change.id != tenancy {
                return Err(WriteError::Mismatch(format!(
                    "`{}` writes tenancy `{}` in a plan for tenancy `{tenancy}`",
                    change.address(),
                    t.name
                )));
            }
            stmt.execute::<&[&dyn ToSql]>(&[&t.name, &t.csi, &t.home_region, &t.admin])?
        }
        _ => {
            return Err(WriteError::Mismatch(format!(
                "`{}` carries a value of another kind",
                change.address()
            )));
        }
    };
    Ok(n)
}

/// Applies one change of a plan for `tenancy`: a rename moves the user
/// first; then create inserts, update rewrites an existing row, delete
/// removes one, and replace removes then inserts.
pub fn apply_change(
    tx: &Transaction<'_>,
    tenancy: &str,
    change: &Change,
) -> Result<(), WriteError> {
    let address = || change.address();
    let missing = || WriteError::Mismatch(format!("`{}` is not in the state", address()));
    if let Some(old) = &change.renamed_from {
        if change.kind != Kind::User {
            return Err(WriteError::Mismatch(format!(
                "`{}` is a rename, and only users are renamed",
                address()
            )));
        }
        rename_user(tx, tenancy, old, &change.id)?;
    }
    let after = || {
        change.after.as_ref().ok_or_else(|| {
            WriteError::Mismatch(format!(
                "`{}` is a {} without a value",
                address(),
                change.action.as_str()
            ))
        })
    };
    let (insert, update, delete) = match table(change.kind) {
        Some(t) => (t.insert, t.update, Some(t.delete)),
        // A tenancy is created and updated, never deleted or replaced.
        None => (TENANCY_INSERT, TENANCY_UPDATE, None),
    };
    let delete_row = |delete: Option<&str>| -> Result<(), WriteError> {
        let Some(sql) = delete else {
            return Err(WriteError::Mismatch(format!(
                "`{}`: a tenancy cannot be deleted or replaced by a plan",
                address()
            )));
        };
        let n = tx
            .prepare_cached(sql)?
            .execute([tenancy, change.id.as_str()])?;
        if n == 0 {
            return Err(missing());
        }
        Ok(())
    };
    match change.action {
        Action::Create => {
            write_row(tx, insert, tenancy, change, after()?)?;
        }
        Action::Update => {
            if write_row(tx, update, tenancy, change, after()?)? == 0 {
                return Err(missing());
            }
        }
        Action::Delete => delete_row(delete)?,
        Action::Replace => {
            let value = after()?;
            // A user replaced in place is the same person: the new row
            // gets the person of the old one (which is free again once
            // that row is gone), not a new one.
            let person = if change.kind == Kind::User {
                tx.prepare_cached(USER_PERSON)?
                    .query_row([tenancy, change.id.as_str()], |r| r.get::<_, i64>(0))
                    .optional()?
            } else {
                None
            };
            delete_row(delete)?;
            write_row(tx, insert, tenancy, change, value)?;
            if let Some(person) = person {
                tx.prepare_cached(SET_USER_PERSON)?
                    .execute(rusqlite::params![tenancy, change.id.as_str(), person])?;
            }
        }
    }
    Ok(())
}

/// Moves user `old` to `new`, with its account, grants and every reference
/// to it: approvals it approved, links through it, and the tenancy admin.
fn rename_user(
    tx: &Transaction<'_>,
    tenancy: &str,
    old: &str,
    new: &str,
) -> Result<(), WriteError> {
    let n = tx
        .prepare_cached(RENAME_USER)?
        .execute([tenancy, old, new])?;
    if n == 0 {
        return Err(WriteError::Mismatch(format!(
            "`user.{new}` is renamed from `user.{old}`, which is not in the state"
        )));
    }
    for sql in RENAME_REFERENCES {
        tx.prepare_cached(sql)?.execute([tenancy, old, new])?;
    }
    Ok(())
}

/// Reads `tenancy` with one query per table, or `None` when it is not in
/// the state. The caller runs it in one read transaction, for a consistent
/// snapshot.
///
/// Long on purpose: one query per table in turn, each mapped into the
/// model, so that they read as the one snapshot they are.
pub fn load(conn: &Connection, tenancy: &str) -> Result<Option<(Model, i64)>, ReadError> {
    let Some((t, serial)) = conn
        .prepare_cached(
            "SELECT name, csi, home_region, admin, serial FROM tenancies WHERE name = ?1",
        )?
        .query_row([tenancy], |r| {
            Ok((
                Tenancy {
                    name: r.get(0)?,
                    csi: r.get(1)?,
                    home_region: r.get(2)?,
                    admin: r.get(3)?,
                },
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?
    else {
        return Ok(None);
    };

    // Rows are gathered in a vector and each map is built at once (sorted,
    // then built in bulk), not by one search and insert per row. When the
    // tenancy is the database's only one, its rows are whole tables, and
    // scanning a table is faster than finding each row through the primary
    // key's index; otherwise the
    // index keeps the read to the tenancy's own rows.
    let only: bool = conn
        .prepare_cached("SELECT count(*) = 1 FROM tenancies")?
        .query_row([], |r| r.get(0))?;
    // A table's rows of the tenancy, and how many there are: each vector is
    // made at its final size (counting reads only the key's small index;
    // growing a vector of 100k rows by doubling copied it again and again
    // into fresh memory).
    let select = |columns: &str, table: &str| -> rusqlite::Result<(usize, CachedStatement<'_>)> {
        let count: i64 = conn
            .prepare_cached(&format!("SELECT count(*) FROM {table} WHERE tenancy = ?1"))?
            .query_row([tenancy], |r| r.get(0))?;
        let scan = if only { " NOT INDEXED" } else { "" };
        let stmt = conn.prepare_cached(&format!(
            "SELECT {columns} FROM {table}{scan} WHERE tenancy = ?1"
        ))?;
        Ok((usize::try_from(count).unwrap_or(0), stmt))
    };
    let (len, mut stmt) = select("id, email, name", "users")?;
    let mut users = Vec::with_capacity(len);
    let mut rows = stmt.query([tenancy])?;
    while let Some(r) = rows.next()? {
        let user = User {
            email: r.get(1)?,
            name: r.get(2)?,
        };
        users.push((r.get::<_, String>(0)?, user));
    }

    let (len, mut stmt) = select("user, phone, timezone", "support_accounts")?;
    let mut support_accounts = Vec::with_capacity(len);
    let mut rows = stmt.query([tenancy])?;
    while let Some(r) = rows.next()? {
        let account = SupportAccount {
            phone: r.get(1)?,
            timezone: r.get(2)?,
        };
        support_accounts.push((r.get::<_, String>(0)?, account));
    }

    let (len, mut stmt) = select("user", "memberships")?;
    let mut memberships = Vec::with_capacity(len);
    let mut rows = stmt.query([tenancy])?;
    while let Some(r) = rows.next()? {
        memberships.push(r.get::<_, String>(0)?);
    }

    let (len, mut stmt) = select("user, role, access, approved_by, expires", "approvals")?;
    let mut approvals = Vec::with_capacity(len);
    let mut rows = stmt.query([tenancy])?;
    while let Some(r) = rows.next()? {
        let user: String = r.get(0)?;
        let what = || format!("approval.{user}");
        let role = r.get_ref(1)?.as_str()?;
        let access = r.get_ref(2)?.as_str()?;
        let approval = Approval {
            role: parse_role(role)
                .ok_or_else(|| ReadError::Corrupt(format!("{} has the role `{role}`", what())))?,
            access: parse_access(access).ok_or_else(|| {
                ReadError::Corrupt(format!("{} has the access `{access}`", what()))
            })?,
            approved_by: r.get(3)?,
            expires: parse_date(r.get_ref(4)?.as_str_or_null()?, what)?,
        };
        approvals.push((user, approval));
    }

    let (len, mut stmt) = select("user, via, expires", "support_links")?;
    let mut support_links = Vec::with_capacity(len);
    let mut rows = stmt.query([tenancy])?;
    while let Some(r) = rows.next()? {
        let user: String = r.get(0)?;
        let link = SupportLink {
            via: r.get(1)?,
            expires: parse_date(r.get_ref(2)?.as_str_or_null()?, || {
                format!("support_link.{user}")
            })?,
        };
        support_links.push((user, link));
    }
    let users: BTreeMap<_, _> = users.into_iter().collect();
    let support_accounts: BTreeMap<_, _> = support_accounts.into_iter().collect();
    let memberships: BTreeSet<_> = memberships.into_iter().collect();
    let approvals: BTreeMap<_, _> = approvals.into_iter().collect();
    let support_links: BTreeMap<_, _> = support_links.into_iter().collect();

    let model = Model {
        tenancy: t,
        users,
        support_accounts,
        memberships,
        approvals,
        support_links,
        renames: BTreeMap::new(),
    };
    Ok(Some((model, serial)))
}

/// Says which references a failed commit would have left broken (the
/// foreign keys are checked at commit), naming at most a few of them. Runs
/// inside the still-open transaction.
pub fn broken_references(tx: &Connection) -> rusqlite::Result<String> {
    let mut found = Vec::new();
    let mut total = 0usize;
    let mut stmt = tx.prepare("SELECT \"table\", rowid, parent FROM pragma_foreign_key_check")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        total += 1;
        if found.len() < 3 {
            let table: String = r.get(0)?;
            let rowid: Option<i64> = r.get(1)?;
            let parent: String = r.get(2)?;
            found.push(describe_broken(tx, &table, rowid, &parent)?);
        }
    }
    if total == 0 {
        return Ok("it would leave a broken reference".to_owned());
    }
    let mut text = found.join("; ");
    if total > found.len() {
        text.push_str(&format!(" (and {} more)", total - found.len()));
    }
    Ok(text)
}

fn describe_broken(
    tx: &Connection,
    table: &str,
    rowid: Option<i64>,
    parent: &str,
) -> rusqlite::Result<String> {
    // The row's key and the column that refers to `parent`, read by rowid.
    let query = match table {
        "tenancies" => "SELECT name, admin FROM tenancies WHERE rowid = ?1",
        "users" => "SELECT id, tenancy FROM users WHERE rowid = ?1",
        "support_accounts" => "SELECT user, user FROM support_accounts WHERE rowid = ?1",
        "memberships" => "SELECT user, user FROM memberships WHERE rowid = ?1",
        "approvals" => "SELECT user, approved_by FROM approvals WHERE rowid = ?1",
        "support_links" => "SELECT user, via FROM support_links WHERE rowid = ?1",
        _ => {
            return Ok(format!(
                "a row of `{table}` refers to a missing `{parent}` row"
            ));
        }
    };
    let row: Option<(String, String)> = match rowid {
        Some(rowid) => tx
            .query_row(query, [rowid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?,
        None => None,
    };
    let Some((id, other)) = row else {
        return Ok(format!(
            "a row of `{table}` refers to a missing `{parent}` row"
        ));
    };
    Ok(match (table, parent) {
        ("tenancies", _) => format!("tenancy.{id} has admin `{other}`, who is not a user"),
        ("users", _) => {
            format!("user.{id} belongs to tenancy `{other}`, which is not in the state")
        }
        ("support_accounts", _) => format!("support_account.{id} has no user.{id}"),
        ("memberships", _) => format!("membership.{id} has no support_account.{id}"),
        ("approvals", "memberships") => format!("approval.{id} has no membership.{id}"),
        ("approvals", _) => format!("approval.{id} is approved by `{other}`, who is not a user"),
        ("support_links", _) => {
            format!("support_link.{id} (via `{other}`) names a user who is not in the state")
        }
        _ => format!("a row of `{table}` refers to a missing `{parent}` row"),
    })
}
