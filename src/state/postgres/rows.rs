//! Rows in PostgreSQL: a tenancy's tables read into a [`Model`] with one
//! query per table, and a plan's changes written in bulk — creates by
//! binary `COPY`, updates and deletes of a kind by one statement over
//! arrays — never a statement per row.
//!
//! A plan is written in its own order, a run of changes of one kind and
//! action at a time; a rename, and a replacement, are written on their own
//! where they stand. Every foreign key is checked at the commit.

use std::collections::{BTreeMap, BTreeSet};

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{GenericClient, Transaction};

use crate::model::{Approval, Model, SupportAccount, SupportLink, Tenancy, User};
use crate::plan::{Action, Change, Kind, Value};
use crate::state::values::{access_text, parse_access, parse_date, parse_role};

/// Why a plan could not be written.
pub enum WriteError {
    /// The plan does not fit the rows: not a database failure.
    Mismatch(String),
    Pg(postgres::Error),
}

impl From<postgres::Error> for WriteError {
    fn from(e: postgres::Error) -> Self {
        WriteError::Pg(e)
    }
}

/// Why stored rows could not be read back as a model.
pub enum ReadError {
    Corrupt(String),
    Pg(postgres::Error),
}

impl From<postgres::Error> for ReadError {
    fn from(e: postgres::Error) -> Self {
        ReadError::Pg(e)
    }
}

/// A per-user table: its name, the column that holds the user id, and its
/// other columns, in the order [`fields`] gives their values.
struct Table {
    name: &'static str,
    key: &'static str,
    columns: &'static [&'static str],
}

fn table(kind: Kind) -> Option<Table> {
    let (name, key, columns): (_, _, &'static [&'static str]) = match kind {
        Kind::Tenancy => return None,
        Kind::User => ("users", "id", &["email", "name"]),
        Kind::SupportAccount => ("support_accounts", "user_id", &["phone", "timezone"]),
        Kind::Membership => ("memberships", "user_id", &[]),
        Kind::Approval => (
            "approvals",
            "user_id",
            &["role", "access", "approved_by", "expires"],
        ),
        Kind::SupportLink => ("support_links", "user_id", &["via", "expires"]),
    };
    Some(Table { name, key, columns })
}

/// A resource's row fields, as text, in its table's column order.
fn fields(change: &Change, value: &Value) -> Result<Vec<Option<String>>, WriteError> {
    Ok(match (change.kind, value) {
        (Kind::User, Value::User(u)) => vec![Some(u.email.clone()), u.name.clone()],
        (Kind::SupportAccount, Value::SupportAccount(a)) => {
            vec![Some(a.phone.clone()), Some(a.timezone.clone())]
        }
        (Kind::Membership, Value::Membership) => vec![],
        (Kind::Approval, Value::Approval(a)) => vec![
            Some(a.role.as_str().to_owned()),
            Some(access_text(&a.access)),
            Some(a.approved_by.clone()),
            a.expires.map(|d| d.to_string()),
        ],
        (Kind::SupportLink, Value::SupportLink(l)) => {
            vec![Some(l.via.clone()), l.expires.map(|d| d.to_string())]
        }
        _ => {
            return Err(WriteError::Mismatch(format!(
                "`{}` carries a value of another kind",
                change.address()
            )));
        }
    })
}

fn after(change: &Change) -> Result<&Value, WriteError> {
    change.after.as_ref().ok_or_else(|| {
        WriteError::Mismatch(format!(
            "`{}` is a {} without a value",
            change.address(),
            change.action.as_str()
        ))
    })
}

/// Writes `plan`'s changes for `tenancy` in plan order: each run of
/// changes of one kind and action in one statement (a `COPY` for creates),
/// renames and replacements one by one.
pub fn write_plan(
    tx: &mut Transaction<'_>,
    tenancy: &str,
    changes: &[Change],
) -> Result<(), WriteError> {
    let alone = |c: &Change| c.renamed_from.is_some() || c.action == Action::Replace;
    let mut rest = changes;
    while let Some(first) = rest.first() {
        let run = if alone(first) || first.kind == Kind::Tenancy {
            1
        } else {
            rest.iter()
                .take_while(|c| !alone(c) && c.kind == first.kind && c.action == first.action)
                .count()
        };
        let (now, later) = rest.split_at(run);
        if first.kind == Kind::Tenancy {
            write_tenancy(tx, tenancy, first)?;
        } else {
            if let Some(old) = &first.renamed_from {
                if first.kind != Kind::User {
                    return Err(WriteError::Mismatch(format!(
                        "`{}` is a rename, and only users are renamed",
                        first.address()
                    )));
                }
                rename_user(tx, tenancy, old, &first.id)?;
            }
            write_run(tx, tenancy, now)?;
        }
        rest = later;
    }
    Ok(())
}

fn write_tenancy(
    tx: &mut Transaction<'_>,
    tenancy: &str,
    change: &Change,
) -> Result<(), WriteError> {
    let Value::Tenancy(t) = after(change)? else {
        return Err(WriteError::Mismatch(format!(
            "`{}` carries a value of another kind",
            change.address()
        )));
    };
    if t.name != tenancy || change.id != tenancy {
        return Err(WriteError::Mismatch(format!(
            "`{}` writes tenancy `{}` in a plan for tenancy `{tenancy}`",
            change.address(),
            t.name
        )));
    }
    let params: [&(dyn ToSql + Sync); 4] = [&t.name, &t.csi, &t.home_region, &t.admin];
    let n = match change.action {
        Action::Create => tx.execute(
            "INSERT INTO tenancies (name, csi, home_region, admin, serial) VALUES ($1, $2, $3, $4, 0)",
            &params,
        )?,
        Action::Update => tx.execute(
            "UPDATE tenancies SET csi = $2, home_region = $3, admin = $4 WHERE name = $1",
            &params,
        )?,
        Action::Delete | Action::Replace => {
            return Err(WriteError::Mismatch(format!(
                "`{}`: a tenancy cannot be deleted or replaced by a plan",
                change.address()
            )));
        }
    };
    if n == 0 {
        return Err(WriteError::Mismatch(format!(
            "`{}` is not in the state",
            change.address()
        )));
    }
    Ok(())
}

/// Writes a run of changes of one kind and action (or one change alone).
fn write_run(tx: &mut Transaction<'_>, tenancy: &str, run: &[Change]) -> Result<(), WriteError> {
    let first = &run[0];
    let Some(t) = table(first.kind) else {
        return Err(WriteError::Mismatch(format!(
            "`{}` is not a row of a user",
            first.address()
        )));
    };
    let ids: Vec<&str> = run.iter().map(|c| c.id.as_str()).collect();
    match first.action {
        Action::Create => copy_in(tx, tenancy, &t, run),
        Action::Delete => {
            let done = tx.query(
                &format!(
                    "DELETE FROM {} WHERE tenancy = $1 AND {} = ANY($2) RETURNING {}",
                    t.name, t.key, t.key
                ),
                &[&tenancy, &ids],
            )?;
            all_there(first.kind, &ids, &done)
        }
        Action::Update => {
            let done = if t.columns.is_empty() {
                // A membership has no fields: an update only confirms it.
                tx.query(
                    &format!(
                        "SELECT {} FROM {} WHERE tenancy = $1 AND {} = ANY($2)",
                        t.key, t.name, t.key
                    ),
                    &[&tenancy, &ids],
                )?
            } else {
                let mut columns: Vec<Vec<Option<String>>> = vec![Vec::new(); t.columns.len()];
                for change in run {
                    for (i, value) in fields(change, after(change)?)?.into_iter().enumerate() {
                        columns[i].push(value);
                    }
                }
                let sets: Vec<String> = t.columns.iter().map(|c| format!("{c} = v.{c}")).collect();
                let arrays: Vec<String> = (0..t.columns.len())
                    .map(|i| format!("${}::text[]", i + 3))
                    .collect();
                let sql = format!(
                    "UPDATE {name} AS t SET {sets} FROM unnest($2::text[], {arrays}) \
                     AS v(k, {cols}) WHERE t.tenancy = $1 AND t.{key} = v.k RETURNING t.{key}",
                    name = t.name,
                    sets = sets.join(", "),
                    arrays = arrays.join(", "),
                    cols = t.columns.join(", "),
                    key = t.key,
                );
                let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenancy, &ids];
                for column in &columns {
                    params.push(column);
                }
                tx.query(&sql, &params)?
            };
            all_there(first.kind, &ids, &done)
        }
        Action::Replace => {
            let value = after(first)?;
            // A user replaced in place is the same person: the new row
            // keeps the person of the old one.
            let person: Option<i64> = if first.kind == Kind::User {
                tx.query_opt(
                    "SELECT person FROM users WHERE tenancy = $1 AND id = $2",
                    &[&tenancy, &first.id],
                )?
                .map(|r| r.get(0))
            } else {
                None
            };
            let done = tx.query(
                &format!(
                    "DELETE FROM {} WHERE tenancy = $1 AND {} = $2 RETURNING {}",
                    t.name, t.key, t.key
                ),
                &[&tenancy, &first.id],
            )?;
            all_there(first.kind, &ids, &done)?;
            let values = fields(first, value)?;
            let mut columns = vec!["tenancy", t.key];
            columns.extend(t.columns);
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenancy, &first.id];
            for v in &values {
                params.push(v);
            }
            if let Some(person) = &person {
                columns.push("person");
                params.push(person);
            }
            let placeholders: Vec<String> = (1..=params.len()).map(|i| format!("${i}")).collect();
            tx.execute(
                &format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    t.name,
                    columns.join(", "),
                    placeholders.join(", ")
                ),
                &params,
            )?;
            Ok(())
        }
    }
}

/// Fails, naming the first, when a row the run updates or deletes was not
/// there.
fn all_there(kind: Kind, ids: &[&str], done: &[postgres::Row]) -> Result<(), WriteError> {
    if done.len() == ids.len() {
        return Ok(());
    }
    let found: BTreeSet<&str> = done.iter().map(|r| r.get::<_, &str>(0)).collect();
    let missing = ids
        .iter()
        .find(|id| !found.contains(**id))
        .copied()
        .unwrap_or("?");
    Err(WriteError::Mismatch(format!(
        "`{}.{missing}` is not in the state",
        kind.as_str()
    )))
}

/// Creates a run's rows with one binary `COPY`.
fn copy_in(
    tx: &mut Transaction<'_>,
    tenancy: &str,
    t: &Table,
    run: &[Change],
) -> Result<(), WriteError> {
    let mut columns = vec!["tenancy", t.key];
    columns.extend(t.columns);
    let types = vec![Type::TEXT; columns.len()];
    let rows: Vec<Vec<Option<String>>> = run
        .iter()
        .map(|c| fields(c, after(c)?))
        .collect::<Result<_, _>>()?;
    let sink = tx.copy_in(&format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        t.name,
        columns.join(", ")
    ))?;
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    for (change, values) in run.iter().zip(&rows) {
        let mut row: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(columns.len());
        row.push(&tenancy);
        row.push(&change.id);
        for v in values {
            row.push(v);
        }
        writer.write(&row)?;
    }
    writer.finish()?;
    Ok(())
}

/// Moves user `old` to `new`, with every reference to it.
fn rename_user(
    tx: &mut Transaction<'_>,
    tenancy: &str,
    old: &str,
    new: &str,
) -> Result<(), WriteError> {
    let n = tx.execute(
        "UPDATE users SET id = $3 WHERE tenancy = $1 AND id = $2",
        &[&tenancy, &old, &new],
    )?;
    if n == 0 {
        return Err(WriteError::Mismatch(format!(
            "`user.{new}` is renamed from `user.{old}`, which is not in the state"
        )));
    }
    for sql in [
        "UPDATE support_accounts SET user_id = $3 WHERE tenancy = $1 AND user_id = $2",
        "UPDATE memberships SET user_id = $3 WHERE tenancy = $1 AND user_id = $2",
        "UPDATE approvals SET user_id = $3 WHERE tenancy = $1 AND user_id = $2",
        "UPDATE approvals SET approved_by = $3 WHERE tenancy = $1 AND approved_by = $2",
        "UPDATE support_links SET user_id = $3 WHERE tenancy = $1 AND user_id = $2",
        "UPDATE support_links SET via = $3 WHERE tenancy = $1 AND via = $2",
        "UPDATE tenancies SET admin = $3 WHERE name = $1 AND admin = $2",
        "INSERT INTO user_former_ids (tenancy, id, person) \
         SELECT $1, $2, person FROM users WHERE tenancy = $1 AND id = $3 ON CONFLICT DO NOTHING",
    ] {
        tx.execute(sql, &[&tenancy, &old, &new])?;
    }
    Ok(())
}

/// Reads `tenancy` with one query per table, or `None` when it is not in
/// the state. The caller runs it in one repeatable-read transaction.
///
/// Long on purpose: one query per table in turn, each mapped into the
/// model, so that they read as the one snapshot they are.
pub fn load(
    conn: &mut impl GenericClient,
    tenancy: &str,
) -> Result<Option<(Model, i64)>, ReadError> {
    let Some(row) = conn.query_opt(
        "SELECT name, csi, home_region, admin, serial FROM tenancies WHERE name = $1",
        &[&tenancy],
    )?
    else {
        return Ok(None);
    };
    let t = Tenancy {
        name: row.get(0),
        csi: row.get(1),
        home_region: row.get(2),
        admin: row.get(3),
    };
    let serial: i64 = row.get(4);

    let users: BTreeMap<String, User> = conn
        .query(
            "SELECT id, email, name FROM users WHERE tenancy = $1",
            &[&tenancy],
        )?
        .iter()
        .map(|r| {
            (
                r.get(0),
                User {
                    email: r.get(1),
                    name: r.get(2),
                },
            )
        })
        .collect();
    let support_accounts: BTreeMap<String, SupportAccount> = conn
        .query(
            "SELECT user_id, phone, timezone FROM support_accounts WHERE tenancy = $1",
            &[&tenancy],
        )?
        .iter()
        .map(|r| {
            (
                r.get(0),
                SupportAccount {
                    phone: r.get(1),
                    timezone: r.get(2),
                },
            )
        })
        .collect();
    let memberships: BTreeSet<String> = conn
        .query(
            "SELECT user_id FROM memberships WHERE tenancy = $1",
            &[&tenancy],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut approvals = BTreeMap::new();
    for r in conn.query(
        "SELECT user_id, role, access, approved_by, expires FROM approvals WHERE tenancy = $1",
        &[&tenancy],
    )? {
        let user: String = r.get(0);
        let what = || format!("approval.{user}");
        let role: &str = r.get(1);
        let access: &str = r.get(2);
        let approval = Approval {
            role: parse_role(role)
                .ok_or_else(|| ReadError::Corrupt(format!("{} has the role `{role}`", what())))?,
            access: parse_access(access).ok_or_else(|| {
                ReadError::Corrupt(format!("{} has the access `{access}`", what()))
            })?,
            approved_by: r.get(3),
            expires: parse_date(r.get(4), what).map_err(ReadError::Corrupt)?,
        };
        approvals.insert(user, approval);
    }
    let mut support_links = BTreeMap::new();
    for r in conn.query(
        "SELECT user_id, via, expires FROM support_links WHERE tenancy = $1",
        &[&tenancy],
    )? {
        let user: String = r.get(0);
        let link = SupportLink {
            via: r.get(1),
            expires: parse_date(r.get(2), || format!("support_link.{user}"))
                .map_err(ReadError::Corrupt)?,
        };
        support_links.insert(user, link);
    }
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

/// What a foreign key that failed at the commit says about the plan, from
/// the server's report of it (`Key (tenancy, user_id)=(acme, bob) is not
/// present in table "users".`).
pub fn broken_reference(db: &postgres::error::DbError) -> String {
    let table = db.table().unwrap_or("");
    let detail = db.detail().unwrap_or("");
    // The last value of the key: the id, for every per-user table.
    let id = detail
        .split_once(")=(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(values, _)| values.rsplit(", ").next().unwrap_or(values).to_owned())
        .unwrap_or_default();
    let parent = detail
        .rsplit_once("table \"")
        .map(|(_, t)| t.trim_end_matches(['"', '.']))
        .unwrap_or("");
    if detail.contains("is still referenced") {
        return format!("a row of `{table}` ({id}) is still referred to from `{parent}`");
    }
    match (table, parent) {
        ("tenancies", _) => format!("the tenancy's admin `{id}` is not a user"),
        ("users", _) => format!("users belong to tenancy `{id}`, which is not in the state"),
        ("support_accounts", _) => format!("support_account.{id} has no user.{id}"),
        ("memberships", _) => format!("membership.{id} has no support_account.{id}"),
        ("approvals", "memberships") => format!("approval.{id} has no membership.{id}"),
        ("approvals", _) => format!("an approval is approved by `{id}`, who is not a user"),
        ("support_links", _) => {
            format!("a support link names `{id}`, who is not in the state")
        }
        _ => format!("a row of `{table}` refers to a missing `{parent}` row"),
    }
}
