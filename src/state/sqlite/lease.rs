//! Leader leases in SQLite (`state::lease`): a campaign is one
//! `BEGIN IMMEDIATE` transaction, timed by SQLite's clock.

use std::time::Duration;

use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::*;
use crate::state::lease::{self, Campaign, Fence, Lease, Leases, Replica, ReplicaRow, Role};

/// The database's time, in milliseconds since the Unix epoch.
const NOW_MS: &str = "SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER)";

const LEASE_COLUMNS: &str = "tenancy, epoch, holder, host, pid, started_at, config, \
     acquired_ms, renewed_ms, expires_ms";
const REPLICA_COLUMNS: &str = "tenancy, id, host, pid, started_at, config, role, \
     since_ms, renewed_ms, expires_ms";

fn lease_of(r: &Row<'_>) -> rusqlite::Result<Lease> {
    Ok(Lease {
        tenancy: r.get(0)?,
        epoch: r.get::<_, i64>(1)?.max(0) as u64,
        holder: r.get(2)?,
        host: r.get(3)?,
        pid: r.get::<_, i64>(4)?.clamp(0, i64::from(u32::MAX)) as u32,
        started_at: r.get(5)?,
        config: r.get(6)?,
        acquired_ms: r.get(7)?,
        renewed_ms: r.get(8)?,
        expires_ms: r.get(9)?,
    })
}

fn replica_of(r: &Row<'_>) -> rusqlite::Result<ReplicaRow> {
    let role: String = r.get(6)?;
    Ok(ReplicaRow {
        tenancy: r.get(0)?,
        id: r.get(1)?,
        host: r.get(2)?,
        pid: r.get::<_, i64>(3)?.clamp(0, i64::from(u32::MAX)) as u32,
        started_at: r.get(4)?,
        config: r.get(5)?,
        role: Role::parse(&role).unwrap_or(Role::Stopped),
        since_ms: r.get(7)?,
        renewed_ms: r.get(8)?,
        expires_ms: r.get(9)?,
    })
}

/// The tenancy's lease, read inside `conn`'s transaction.
pub(super) fn current_lease(conn: &Connection, tenancy: &str) -> rusqlite::Result<Option<Lease>> {
    conn.prepare_cached(&format!(
        "SELECT {LEASE_COLUMNS} FROM leases WHERE tenancy = ?1"
    ))?
    .query_row([tenancy], lease_of)
    .optional()
}

pub(super) fn now_ms(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached(NOW_MS)?.query_row([], |r| r.get(0))
}

/// Checks `fence` inside an apply's transaction: nothing is written unless
/// it is the tenancy's live lease.
pub(super) fn check_fence(
    conn: &Connection,
    path: &Path,
    fence: Option<&Fence>,
) -> Result<(), StateError> {
    let Some(fence) = fence else { return Ok(()) };
    let sql = |e| sql_error(path, e);
    let found = current_lease(conn, &fence.tenancy).map_err(sql)?;
    let now = now_ms(conn).map_err(sql)?;
    fence.check(found.as_ref(), now)
}

impl Store {
    /// See [`crate::state::Store::campaign`].
    pub fn campaign(
        &mut self,
        tenancy: &str,
        me: &Replica,
        duration: Duration,
    ) -> Result<Campaign, StateError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let now = now_ms(&tx).map_err(sql)?;
        let current = current_lease(&tx, tenancy).map_err(sql)?;
        let outcome = lease::campaign(current.clone(), tenancy, me, now, duration);
        if current.as_ref() != Some(&outcome.lease) {
            let l = &outcome.lease;
            tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO leases ({LEASE_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    l.tenancy,
                    l.epoch as i64,
                    l.holder,
                    l.host,
                    i64::from(l.pid),
                    l.started_at,
                    l.config,
                    l.acquired_ms,
                    l.renewed_ms,
                    l.expires_ms
                ])
            })
            .map_err(sql)?;
        }
        let previous = tx
            .prepare_cached(&format!(
                "SELECT {REPLICA_COLUMNS} FROM replicas WHERE tenancy = ?1 AND id = ?2"
            ))
            .and_then(|mut s| s.query_row([tenancy, &me.id], replica_of).optional())
            .map_err(sql)?;
        let row = lease::replica_row(previous.as_ref(), me, &outcome, duration);
        write_replica(&tx, &row).map_err(sql)?;
        tx.prepare_cached("DELETE FROM replicas WHERE tenancy = ?1 AND expires_ms < ?2")
            .and_then(|mut s| s.execute(params![tenancy, now - lease::FORGET_AFTER_MS]))
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(outcome)
    }

    /// See [`crate::state::Store::release`].
    pub fn release(&mut self, tenancy: &str, me: &Replica) -> Result<(), StateError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let now = now_ms(&tx).map_err(sql)?;
        // Expired now: the next campaign of any standby takes it, with the
        // next epoch.
        tx.prepare_cached(
            "UPDATE leases SET expires_ms = ?3 WHERE tenancy = ?1 AND holder = ?2 AND expires_ms > ?3",
        )
        .and_then(|mut s| s.execute(params![tenancy, me.id, now]))
        .map_err(sql)?;
        tx.prepare_cached(
            "UPDATE replicas SET role = 'stopped', since_ms = ?3, renewed_ms = ?3, expires_ms = ?3 \
             WHERE tenancy = ?1 AND id = ?2",
        )
        .and_then(|mut s| s.execute(params![tenancy, me.id, now]))
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// See [`crate::state::Store::leases`].
    pub fn leases(&self, tenancy: Option<&str>) -> Result<Leases, StateError> {
        let sql = |e| sql_error(&self.path, e);
        let tx = self.conn.unchecked_transaction().map_err(sql)?;
        let now = now_ms(&tx).map_err(sql)?;
        let filter = if tenancy.is_some() {
            "WHERE tenancy = ?1"
        } else {
            "WHERE ?1 IS NULL"
        };
        let leases = tx
            .prepare(&format!(
                "SELECT {LEASE_COLUMNS} FROM leases {filter} ORDER BY tenancy"
            ))
            .and_then(|mut s| s.query_map([tenancy], lease_of)?.collect())
            .map_err(sql)?;
        let replicas = tx
            .prepare(&format!(
                "SELECT {REPLICA_COLUMNS} FROM replicas {filter} ORDER BY tenancy, id"
            ))
            .and_then(|mut s| s.query_map([tenancy], replica_of)?.collect())
            .map_err(sql)?;
        Ok(Leases {
            now_ms: now,
            leases,
            replicas,
        })
    }

    /// See [`crate::state::Store::set_fence`].
    pub fn set_fence(&mut self, fence: Option<Fence>) {
        self.fence = fence.map(Box::new);
    }
}

fn write_replica(conn: &Connection, row: &ReplicaRow) -> rusqlite::Result<usize> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO replicas ({REPLICA_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        row.tenancy,
        row.id,
        row.host,
        i64::from(row.pid),
        row.started_at,
        row.config,
        row.role.as_str(),
        row.since_ms,
        row.renewed_ms,
        row.expires_ms
    ])
}
