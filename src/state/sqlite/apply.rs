//! Applying a plan (and retiring a tenancy) in one SQLite transaction: the
//! stale check, the rows, the journal entry, all or nothing.

use rusqlite::{OptionalExtension, TransactionBehavior};

use super::*;

impl Store {
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
        self.apply_unless(tenancy, lineage, expected_serial, plan, || Ok(entry()))
    }

    /// [`Store::apply`], where `entry` may still refuse the plan, with the
    /// reason as [`StateError::Refused`]: it is called after the rows are
    /// written and before the commit, so a check made meanwhile on another
    /// thread (the rules the state the plan leads to must pass) can stop
    /// the apply, and then nothing is written.
    pub fn apply_unless(
        &mut self,
        tenancy: &str,
        lineage: &str,
        expected_serial: u64,
        plan: &Plan,
        entry: impl FnOnce() -> Result<JournalEntry, String>,
    ) -> Result<u64, StateError> {
        // A page cache that holds a large apply whole (SQLite's default is
        // 2 MiB): a transaction that outgrows it spills pages to the log
        // before the commit and reads them back. Only while writing: a read
        // of the whole state reuses the default one's pages instead of
        // holding many more of them.
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

    /// The transaction from `BEGIN IMMEDIATE` to `COMMIT`. Long on purpose:
    /// in one place, every write is visibly inside it.
    fn apply_in_one_transaction(
        &mut self,
        tenancy: &str,
        lineage: &str,
        expected_serial: u64,
        plan: &Plan,
        entry: impl FnOnce() -> Result<JournalEntry, String>,
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
        // A watcher's lease first: one that lost it writes nothing. The
        // write lock held from here to the commit keeps any other watcher
        // from taking it meanwhile.
        super::lease::check_fence(&tx, &path, self.fence.as_deref())?;

        let found_lineage: String = tx
            .prepare_cached("SELECT value FROM meta WHERE key = 'lineage'")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(sql)?;
        let found_serial: Option<i64> = tx
            .prepare_cached("SELECT serial FROM tenancies WHERE name = ?1")
            .and_then(|mut s| s.query_row([tenancy], |r| r.get(0)).optional())
            .map_err(sql)?;
        let found_serial_row = found_serial;
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

        // A tenancy new to the state continues the serials of any journal
        // its name already has (a tenancy retired and created again), so
        // each entry keeps its own (tenancy, serial).
        let new_serial = match found_serial_row {
            Some(_) => expected_serial + 1,
            None => last_journal_serial(&tx, &path, tenancy)? + 1,
        };
        let serial_sql = i64::try_from(new_serial).map_err(|_| StateError::Corrupt {
            path: path.clone(),
            detail: format!("tenancy `{tenancy}` has run out of serials"),
        })?;
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
        // Dropping `tx` on a refusal rolls every row back.
        let entry = entry().map_err(StateError::Refused)?;
        let entry_ready = started.elapsed();
        insert_journal(&tx, &path, tenancy, serial_sql, &entry, JournalKind::Apply)?;
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

    /// Retires `tenancy` in one `BEGIN IMMEDIATE` transaction: removes its
    /// rows — links, approvals, memberships, support accounts, users, and
    /// the tenancy itself, so nobody can open an SR for it — and journals
    /// the retirement as the entry after its last, with `plan` (the deletes,
    /// made from the state at `expected_serial`) as what it removed. Its SRs
    /// and comments, its renames and its journal stay, readable by name.
    ///
    /// Refused as [`StateError::Stale`] when the lineage or the tenancy's
    /// serial has moved since `plan` was made, and as
    /// [`StateError::Mismatch`] when the rows removed are not the plan's.
    pub fn retire(
        &mut self,
        tenancy: &str,
        lineage: &str,
        expected_serial: u64,
        plan: &Plan,
        entry: JournalEntry,
    ) -> Result<u64, StateError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let found_lineage: String = tx
            .query_row("SELECT value FROM meta WHERE key = 'lineage'", [], |r| {
                r.get(0)
            })
            .map_err(sql)?;
        let found_serial: Option<i64> = tx
            .query_row(
                "SELECT serial FROM tenancies WHERE name = ?1",
                [tenancy],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?;
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
        // Dependents first; every foreign key is checked at the commit.
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
                    &format!("DELETE FROM {table} WHERE tenancy = ?1"),
                    [tenancy],
                )
                .map_err(sql)?;
        }
        removed += tx
            .execute("DELETE FROM tenancies WHERE name = ?1", [tenancy])
            .map_err(sql)?;
        let planned = plan
            .changes
            .iter()
            .filter(|c| c.action == crate::plan::Action::Delete)
            .count();
        if plan.tenancy != tenancy || removed != planned || planned != plan.changes.len() {
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
            path: path.clone(),
            detail: format!("tenancy `{tenancy}` has run out of serials"),
        })?;
        insert_journal(&tx, &path, tenancy, serial_sql, &entry, JournalKind::Retire)?;
        tx.commit().map_err(sql)?;
        Ok(new_serial)
    }
}
