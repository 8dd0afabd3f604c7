//! Applying a plan (and retiring a tenancy) in one PostgreSQL transaction:
//! the tenancy's lock, the stale check, the rows, the journal entry, all or
//! nothing.

use postgres::error::SqlState;

use super::journal::{insert_journal, last_journal_serial};
use super::*;
use crate::plan::Plan;
use crate::state::{JournalEntry, JournalKind};

impl Store {
    /// Applies `plan` to `tenancy` in one transaction and returns the
    /// tenancy's new serial: all of the plan lands, with its journal entry,
    /// or none of it.
    ///
    /// The transaction first takes the tenancy's lock (waiting at most the
    /// lock timeout), then checks that the lineage is `lineage` and the
    /// serial `expected_serial` — read after the lock, so another apply that
    /// held it is seen — else [`StateError::Stale`]. `entry` may still
    /// refuse the plan after the rows are written, and then nothing is.
    ///
    /// Long on purpose: in one place, every write is visibly inside the
    /// transaction.
    pub fn apply_unless(
        &mut self,
        tenancy: &str,
        lineage: &str,
        expected_serial: u64,
        plan: &Plan,
        entry: impl FnOnce() -> Result<JournalEntry, String>,
    ) -> Result<u64, StateError> {
        let target = self.target.clone();
        let pg = |e| pg_error(&target, e);
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
        let lock_timeout = self.lock_timeout;
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let client: &mut Client = &mut guard;
        let mut tx = begin_write(client, &target, tenancy, lock_timeout, self.read_only)?;
        // A watcher's lease first (once the tenancy's lock is held): one
        // that lost it writes nothing.
        super::lease::check_fence(&mut tx, &target, self.fence.as_deref())?;
        let found_lineage: String = tx
            .query_one("SELECT value FROM meta WHERE key = 'lineage'", &[])
            .map_err(pg)?
            .get(0);
        let found_serial: Option<i64> = tx
            .query_opt(
                "SELECT serial FROM tenancies WHERE name = $1 FOR UPDATE",
                &[&tenancy],
            )
            .map_err(pg)?
            .map(|r| r.get(0));
        let exists = found_serial.is_some();
        let found_serial = match found_serial {
            Some(s) => u64::try_from(s).map_err(|_| StateError::Corrupt {
                path: target.shown_path(),
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
            return Ok(found_serial);
        }

        let started = std::time::Instant::now();
        rows::write_plan(&mut tx, tenancy, &plan.changes).map_err(|e| match e {
            rows::WriteError::Mismatch(detail) => mismatch(detail),
            rows::WriteError::Pg(e) => constraint(&e).map_or_else(|| pg(e), mismatch),
        })?;
        let new_serial = if exists {
            expected_serial + 1
        } else {
            last_journal_serial(&mut tx, &target, tenancy)? + 1
        };
        let serial_sql = i64::try_from(new_serial).map_err(|_| StateError::Corrupt {
            path: target.shown_path(),
            detail: format!("tenancy `{tenancy}` has run out of serials"),
        })?;
        let updated = tx
            .execute(
                "UPDATE tenancies SET serial = $2 WHERE name = $1",
                &[&tenancy, &serial_sql],
            )
            .map_err(pg)?;
        if updated == 0 {
            return Err(mismatch(format!(
                "it does not create `tenancy.{tenancy}`, which is not in the state"
            )));
        }
        let rows_done = started.elapsed();
        let entry = entry().map_err(StateError::Refused)?;
        insert_journal(
            &mut tx,
            &target,
            tenancy,
            serial_sql,
            &entry,
            JournalKind::Apply,
        )?;
        let journal_done = started.elapsed();
        // And again at the end: a lease taken over while the rows were
        // written (its holder paused past its expiry) stops the commit.
        super::lease::check_fence(&mut tx, &target, self.fence.as_deref())?;
        tx.commit().map_err(|e| {
            if let Some(db) = e.as_db_error()
                && *db.code() == SqlState::FOREIGN_KEY_VIOLATION
            {
                return mismatch(rows::broken_reference(db));
            }
            commit_error(&target, e)
        })?;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        tracing::debug!(
            rows_ms = ms(rows_done),
            journal_ms = ms(journal_done - rows_done),
            commit_ms = ms(started.elapsed() - journal_done),
            "apply written"
        );
        Ok(new_serial)
    }

    /// Retires `tenancy` in one transaction holding its lock: removes its
    /// rows and journals the retirement; its SRs and journal stay.
    pub fn retire(
        &mut self,
        tenancy: &str,
        lineage: &str,
        expected_serial: u64,
        plan: &Plan,
        entry: JournalEntry,
    ) -> Result<u64, StateError> {
        let target = self.target.clone();
        let pg = |e| pg_error(&target, e);
        let lock_timeout = self.lock_timeout;
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let client: &mut Client = &mut guard;
        let mut tx = begin_write(client, &target, tenancy, lock_timeout, self.read_only)?;
        let found_lineage: String = tx
            .query_one("SELECT value FROM meta WHERE key = 'lineage'", &[])
            .map_err(pg)?
            .get(0);
        let found_serial: Option<i64> = tx
            .query_opt(
                "SELECT serial FROM tenancies WHERE name = $1 FOR UPDATE",
                &[&tenancy],
            )
            .map_err(pg)?
            .map(|r| r.get(0));
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
                    &format!("DELETE FROM {table} WHERE tenancy = $1"),
                    &[&tenancy],
                )
                .map_err(pg)?;
        }
        removed += tx
            .execute("DELETE FROM tenancies WHERE name = $1", &[&tenancy])
            .map_err(pg)?;
        let planned = plan
            .changes
            .iter()
            .filter(|c| c.action == crate::plan::Action::Delete)
            .count() as u64;
        if plan.tenancy != tenancy || removed != planned || planned != plan.changes.len() as u64 {
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
            path: target.shown_path(),
            detail: format!("tenancy `{tenancy}` has run out of serials"),
        })?;
        insert_journal(
            &mut tx,
            &target,
            tenancy,
            serial_sql,
            &entry,
            JournalKind::Retire,
        )?;
        tx.commit().map_err(|e| commit_error(&target, e))?;
        Ok(new_serial)
    }
}

/// What a failed constraint says about the plan, when `e` is one.
fn constraint(e: &postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    let what = match db.code() {
        c if *c == SqlState::UNIQUE_VIOLATION => "it is already in the state",
        c if *c == SqlState::CHECK_VIOLATION => "a value is out of range",
        c if *c == SqlState::NOT_NULL_VIOLATION => "a value is missing",
        c if *c == SqlState::FOREIGN_KEY_VIOLATION => return Some(rows::broken_reference(db)),
        _ => return None,
    };
    let detail = db.detail().map(|d| format!(" ({d})")).unwrap_or_default();
    Some(format!(
        "writing `{}` failed: {what}{detail}",
        db.table().unwrap_or("a table")
    ))
}
