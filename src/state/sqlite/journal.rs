//! The apply journal in SQLite: reading it back (history, the latest
//! apply) and writing an entry inside an apply's transaction.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::*;

impl Store {
    /// The journal, oldest first (by id, so in the order the applies ran),
    /// for one tenancy or for all of them.
    ///
    /// Long on purpose: the queries and the reading of their columns stay
    /// together, so that they cannot drift apart.
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
pub(super) fn source_columns(
    r: &rusqlite::Row<'_>,
    first: usize,
) -> rusqlite::Result<Option<ApplySource>> {
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
pub(super) fn last_journal_serial(
    tx: &Connection,
    path: &Path,
    tenancy: &str,
) -> Result<u64, StateError> {
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
pub(super) fn insert_journal(
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
