//! Leader leases in PostgreSQL (`state::lease`): a campaign is one short
//! transaction under a transaction-level advisory lock of its own (never
//! the one applies hold, so a campaign does not wait for an apply), timed by
//! the server's clock. Nothing outlives the transaction, so this works
//! through a connection pooler in transaction mode.

use std::time::Duration;

use postgres::{GenericClient, Row};

use super::*;
use crate::state::lease::{self, Campaign, Fence, Lease, Leases, Replica, ReplicaRow, Role};

/// The server's time, in milliseconds since the Unix epoch: the clock's,
/// not the transaction's start.
const NOW_MS: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

const LEASE_COLUMNS: &str = "tenancy, epoch, holder, host, pid, started_at, config, \
     acquired_ms, renewed_ms, expires_ms";
const REPLICA_COLUMNS: &str = "tenancy, id, host, pid, started_at, config, role, \
     since_ms, renewed_ms, expires_ms";

fn lease_of(r: &Row) -> Lease {
    Lease {
        tenancy: r.get(0),
        epoch: r.get::<_, i64>(1).max(0) as u64,
        holder: r.get(2),
        host: r.get(3),
        pid: r.get::<_, i64>(4).clamp(0, i64::from(u32::MAX)) as u32,
        started_at: r.get(5),
        config: r.get(6),
        acquired_ms: r.get(7),
        renewed_ms: r.get(8),
        expires_ms: r.get(9),
    }
}

fn replica_of(r: &Row) -> ReplicaRow {
    ReplicaRow {
        tenancy: r.get(0),
        id: r.get(1),
        host: r.get(2),
        pid: r.get::<_, i64>(3).clamp(0, i64::from(u32::MAX)) as u32,
        started_at: r.get(4),
        config: r.get(5),
        role: Role::parse(r.get(6)).unwrap_or(Role::Stopped),
        since_ms: r.get(7),
        renewed_ms: r.get(8),
        expires_ms: r.get(9),
    }
}

fn now_ms(client: &mut impl GenericClient) -> Result<i64, postgres::Error> {
    Ok(client.query_one(NOW_MS, &[])?.get(0))
}

fn current_lease(
    client: &mut impl GenericClient,
    tenancy: &str,
) -> Result<Option<Lease>, postgres::Error> {
    Ok(client
        .query_opt(
            &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE tenancy = $1"),
            &[&tenancy],
        )?
        .as_ref()
        .map(lease_of))
}

/// Checks `fence` inside an apply's transaction: nothing is written unless
/// it is the tenancy's live lease. Run first, after the tenancy's lock,
/// and again just before the commit.
pub(super) fn check_fence(
    tx: &mut postgres::Transaction<'_>,
    target: &Target,
    fence: Option<&Fence>,
) -> Result<(), StateError> {
    let Some(fence) = fence else { return Ok(()) };
    let pg = |e| pg_error(target, e);
    let found = current_lease(tx, &fence.tenancy).map_err(pg)?;
    let now = now_ms(tx).map_err(pg)?;
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
        let target = self.target.clone();
        let pg = |e| pg_error(&target, e);
        let lock_timeout = self.lock_timeout;
        let read_only = self.read_only;
        let mut client = self.client();
        // A campaigner that goes silent inside the transaction (cut off by
        // the network, paused) would hold the lease's lock on the server
        // until the server noticed (its TCP keepalives: hours), and no
        // standby could campaign: the server ends the session once it has
        // waited for the client for as long as a lease lasts, by when the
        // campaigner has lost the lease anyway.
        let mut tx = begin(
            &mut client,
            &target,
            read_only,
            &format!(
                "SET LOCAL lock_timeout = {}; SET LOCAL idle_in_transaction_session_timeout = {}",
                lock_timeout.as_millis().max(1),
                duration.as_millis().max(1)
            ),
        )?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&LOCK_CLASS, &target.lock_id(&format!("lease:{tenancy}"))],
        )
        .map_err(pg)?;
        let now = now_ms(&mut tx).map_err(pg)?;
        let current = current_lease(&mut tx, tenancy).map_err(pg)?;
        let outcome = lease::campaign(current.clone(), tenancy, me, now, duration);
        if current.as_ref() != Some(&outcome.lease) {
            let l = &outcome.lease;
            tx.execute(
                &format!(
                    "INSERT INTO leases ({LEASE_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (tenancy) DO UPDATE SET epoch = excluded.epoch, \
                     holder = excluded.holder, host = excluded.host, pid = excluded.pid, \
                     started_at = excluded.started_at, config = excluded.config, \
                     acquired_ms = excluded.acquired_ms, renewed_ms = excluded.renewed_ms, \
                     expires_ms = excluded.expires_ms"
                ),
                &[
                    &l.tenancy,
                    &(l.epoch as i64),
                    &l.holder,
                    &l.host,
                    &i64::from(l.pid),
                    &l.started_at,
                    &l.config,
                    &l.acquired_ms,
                    &l.renewed_ms,
                    &l.expires_ms,
                ],
            )
            .map_err(pg)?;
        }
        let previous = tx
            .query_opt(
                &format!("SELECT {REPLICA_COLUMNS} FROM replicas WHERE tenancy = $1 AND id = $2"),
                &[&tenancy, &me.id],
            )
            .map_err(pg)?
            .as_ref()
            .map(replica_of);
        let row = lease::replica_row(previous.as_ref(), me, &outcome, duration);
        tx.execute(
            &format!(
                "INSERT INTO replicas ({REPLICA_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (tenancy, id) DO UPDATE SET role = excluded.role, \
                 since_ms = excluded.since_ms, renewed_ms = excluded.renewed_ms, \
                 expires_ms = excluded.expires_ms, config = excluded.config"
            ),
            &[
                &row.tenancy,
                &row.id,
                &row.host,
                &i64::from(row.pid),
                &row.started_at,
                &row.config,
                &row.role.as_str(),
                &row.since_ms,
                &row.renewed_ms,
                &row.expires_ms,
            ],
        )
        .map_err(pg)?;
        tx.execute(
            "DELETE FROM replicas WHERE tenancy = $1 AND expires_ms < $2",
            &[&tenancy, &(now - lease::FORGET_AFTER_MS)],
        )
        .map_err(pg)?;
        tx.commit().map_err(|e| commit_error(&target, e))?;
        Ok(outcome)
    }

    /// See [`crate::state::Store::release`].
    pub fn release(&mut self, tenancy: &str, me: &Replica) -> Result<(), StateError> {
        let target = self.target.clone();
        let pg = |e| pg_error(&target, e);
        let read_only = self.read_only;
        let mut client = self.client();
        let mut tx = begin(&mut client, &target, read_only, "")?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&LOCK_CLASS, &target.lock_id(&format!("lease:{tenancy}"))],
        )
        .map_err(pg)?;
        let now = now_ms(&mut tx).map_err(pg)?;
        tx.execute(
            "UPDATE leases SET expires_ms = $3 WHERE tenancy = $1 AND holder = $2 AND expires_ms > $3",
            &[&tenancy, &me.id, &now],
        )
        .map_err(pg)?;
        tx.execute(
            "UPDATE replicas SET role = 'stopped', since_ms = $3, renewed_ms = $3, expires_ms = $3 \
             WHERE tenancy = $1 AND id = $2",
            &[&tenancy, &me.id, &now],
        )
        .map_err(pg)?;
        tx.commit().map_err(|e| commit_error(&target, e))
    }

    /// See [`crate::state::Store::leases`].
    pub fn leases(&self, tenancy: Option<&str>) -> Result<Leases, StateError> {
        let pg = |e| pg_error(&self.target, e);
        let mut client = self.client();
        let mut tx = read_transaction(&mut client, &self.target)?;
        let now = now_ms(&mut tx).map_err(pg)?;
        let leases = tx
            .query(
                &format!(
                    "SELECT {LEASE_COLUMNS} FROM leases WHERE $1::text IS NULL OR tenancy = $1 \
                     ORDER BY tenancy COLLATE \"C\""
                ),
                &[&tenancy],
            )
            .map_err(pg)?
            .iter()
            .map(lease_of)
            .collect();
        let replicas = tx
            .query(
                &format!(
                    "SELECT {REPLICA_COLUMNS} FROM replicas WHERE $1::text IS NULL OR tenancy = $1 \
                     ORDER BY tenancy COLLATE \"C\", id COLLATE \"C\""
                ),
                &[&tenancy],
            )
            .map_err(pg)?
            .iter()
            .map(replica_of)
            .collect();
        tx.commit().map_err(pg)?;
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
