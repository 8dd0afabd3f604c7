//! The apply journal in PostgreSQL: read back (history, the latest apply)
//! and written inside an apply's transaction.

use postgres::GenericClient;

use super::*;
use crate::plan::Summary;
use crate::state::{
    AppliedBy, ApplySource, JournalEntry, JournalKind, JournalPlan, JournalRecord, LastApply,
};

const COLUMNS: &str = "id, tenancy, time, serial, add_count, change_count, destroy_count, \
     plan_zlib, plan_size, config_digest, git_commit, git_changes, kind, applied_by, host, \
     config_path, pid";

impl Store {
    /// The journal, oldest first (by id), for one tenancy or for all.
    pub fn history(&self, tenancy: Option<&str>) -> Result<Vec<JournalRecord>, StateError> {
        self.read_rows(
            |tx| match tenancy {
                Some(t) => tx.query(
                    &format!("SELECT {COLUMNS} FROM journal WHERE tenancy = $1 ORDER BY id"),
                    &[&t],
                ),
                None => tx.query(&format!("SELECT {COLUMNS} FROM journal ORDER BY id"), &[]),
            },
            |r| self.record(r),
        )
    }

    fn record(&self, r: &postgres::Row) -> Result<JournalRecord, StateError> {
        let id: i64 = r.get(0);
        let corrupt = |detail: String| StateError::Corrupt {
            path: self.target.shown_path(),
            detail: format!("journal entry {id}: {detail}"),
        };
        let size =
            |n: i64| usize::try_from(n).map_err(|_| corrupt(format!("it holds the count {n}")));
        let serial: i64 = r.get(3);
        let zlib: Vec<u8> = r.get(7);
        let plan_json = JournalPlan::text(&zlib, size(r.get(8))?).map_err(corrupt)?;
        let kind = match r.get::<_, &str>(12) {
            "apply" => JournalKind::Apply,
            "retire" => JournalKind::Retire,
            other => return Err(corrupt(format!("it is of the kind `{other}`"))),
        };
        let git_changes: Option<String> = r.get(11);
        Ok(JournalRecord {
            id,
            kind,
            tenancy: r.get(1),
            time: r.get(2),
            serial: u64::try_from(serial)
                .map_err(|_| corrupt(format!("it holds the serial {serial}")))?,
            summary: Summary {
                add: size(r.get(4))?,
                change: size(r.get(5))?,
                destroy: size(r.get(6))?,
            },
            plan_json,
            config_digest: r.get(9),
            git_commit: r.get(10),
            git_changes: git_changes
                .map(|text| {
                    serde_json::from_str(&text)
                        .map_err(|_| corrupt("its git changes are not a list of text".into()))
                })
                .transpose()?,
            source: source_columns(r, 13),
        })
    }

    /// The latest apply to `tenancy`, or the latest made by `by`; without
    /// its plan.
    pub fn last_apply(
        &self,
        tenancy: &str,
        by: Option<AppliedBy>,
    ) -> Result<Option<LastApply>, StateError> {
        const SELECT: &str = "SELECT id, time, serial, config_digest, applied_by, host, config_path, pid FROM journal";
        let found = self.read_rows(
            |tx| match by {
                None => tx.query(
                    &format!(
                        "{SELECT} WHERE tenancy = $1 AND kind = 'apply' ORDER BY id DESC LIMIT 1"
                    ),
                    &[&tenancy],
                ),
                Some(by) => tx.query(
                    &format!(
                        "{SELECT} WHERE tenancy = $1 AND applied_by = $2 ORDER BY id DESC LIMIT 1"
                    ),
                    &[&tenancy, &by.as_str()],
                ),
            },
            |r| {
                let id: i64 = r.get(0);
                let serial: i64 = r.get(2);
                Ok(LastApply {
                    id,
                    time: r.get(1),
                    serial: u64::try_from(serial).map_err(|_| StateError::Corrupt {
                        path: self.target.shown_path(),
                        detail: format!("journal entry {id}: it holds the serial {serial}"),
                    })?,
                    config_digest: r.get(3),
                    source: source_columns(r, 4),
                })
            },
        )?;
        Ok(found.into_iter().next())
    }
}

/// The source columns from `first` on (`applied_by`, `host`, `config_path`,
/// `pid`): who made an apply, when they say it whole.
fn source_columns(r: &postgres::Row, first: usize) -> Option<ApplySource> {
    let command: Option<&str> = r.get(first);
    let host: Option<String> = r.get(first + 1);
    let path: Option<String> = r.get(first + 2);
    let pid: Option<i64> = r.get(first + 3);
    Some(ApplySource {
        command: AppliedBy::parse(command?)?,
        host: host?,
        path: path?,
        pid: u32::try_from(pid?).unwrap_or(0),
    })
}

/// The last serial the journal holds for `tenancy`, 0 when none.
pub(super) fn last_journal_serial(
    tx: &mut impl GenericClient,
    target: &Target,
    tenancy: &str,
) -> Result<u64, StateError> {
    let last: i64 = tx
        .query_one(
            "SELECT coalesce(max(serial), 0)::bigint FROM journal WHERE tenancy = $1",
            &[&tenancy],
        )
        .map_err(|e| pg_error(target, e))?
        .get(0);
    u64::try_from(last).map_err(|_| StateError::Corrupt {
        path: target.shown_path(),
        detail: format!("the journal of tenancy `{tenancy}` holds the serial {last}"),
    })
}

/// Appends `entry` to the journal as `tenancy`'s entry at `serial`.
pub(super) fn insert_journal(
    tx: &mut impl GenericClient,
    target: &Target,
    tenancy: &str,
    serial: i64,
    entry: &JournalEntry,
    kind: JournalKind,
) -> Result<(), StateError> {
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let plan_size = i64::try_from(entry.plan.len).map_err(|_| StateError::Corrupt {
        path: target.shown_path(),
        detail: format!("a plan of {} bytes is too large to journal", entry.plan.len),
    })?;
    let git_changes = entry
        .git_changes
        .as_ref()
        .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".to_string()));
    let source = entry.source.as_ref();
    tx.execute(
        "INSERT INTO journal (tenancy, time, serial, add_count, change_count, destroy_count, \
         plan_zlib, plan_size, config_digest, git_commit, git_changes, kind, applied_by, host, \
         config_path, pid) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        &[
            &tenancy,
            &entry.time,
            &serial,
            &count(entry.summary.add),
            &count(entry.summary.change),
            &count(entry.summary.destroy),
            &entry.plan.zlib,
            &plan_size,
            &entry.config_digest,
            &entry.git_commit,
            &git_changes,
            &kind.as_str(),
            &source.map(|s| s.command.as_str()),
            &source.map(|s| s.host.as_str()),
            &source.map(|s| s.path.as_str()),
            &source.map(|s| i64::from(s.pid)),
        ],
    )
    .map_err(|e| pg_error(target, e))?;
    Ok(())
}
