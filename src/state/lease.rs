//! Leader leases: which of several watchers of one tenancy may apply.
//!
//! Watchers of one tenancy (replicas, on one machine over SQLite or on
//! several over PostgreSQL) share one row of the `leases` table per
//! tenancy: who holds it (a [`Replica`]: host, pid, and when the process
//! started), an *epoch* that grows by one at every change of holder, and
//! when it expires. Every time is the database's clock, in milliseconds
//! since the Unix epoch, read inside the transaction that uses it: replicas
//! whose clocks disagree still agree on who leads.
//!
//! A watcher *campaigns* every retry period, in one short transaction
//! ([`Store::campaign`](super::Store::campaign)): it renews a lease it
//! holds, takes one that expired (or was released) with the next epoch, or
//! learns who leads. It also writes its own row of `replicas`, which is
//! what `status` reports: every watcher it knows of, its role, and when it
//! last renewed. Nothing here holds a session-level lock or state between
//! transactions, so a connection pooler in transaction mode is no obstacle.
//!
//! Fencing: a store told its watcher's lease ([`Fence`], through
//! [`Store::set_fence`](super::Store::set_fence)) checks inside every apply
//! transaction, first and again just before the commit, that the lease
//! still has that epoch and holder and has not expired; otherwise nothing
//! is written ([`StateError::Fenced`](super::StateError::Fenced)). A leader
//! that was paused or cut off past its lease cannot write when it wakes,
//! even if its plan is otherwise current.

use std::time::Duration;

use serde::Serialize;

/// A watcher process, as the lease and the replicas table name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// `host/pid/process start`: unique while the process runs, and never
    /// that of a later process with the same pid.
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// When the process started (RFC 3339).
    pub started_at: String,
    /// The config set it watches (its absolute path).
    pub config: String,
}

impl Replica {
    /// This process, watching `config`, started at `started_at`.
    pub fn this_process(host: String, started_at: String, config: String) -> Replica {
        let pid = std::process::id();
        Replica {
            id: format!("{host}/{pid}/{started_at}"),
            host,
            pid,
            started_at,
            config,
        }
    }
}

/// A tenancy's lease as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub tenancy: String,
    pub epoch: u64,
    /// The holder's [`Replica::id`].
    pub holder: String,
    pub host: String,
    pub pid: u32,
    pub started_at: String,
    pub config: String,
    /// When this holder took it (this epoch began), last renewed it, and
    /// when it expires, in database milliseconds.
    pub acquired_ms: i64,
    pub renewed_ms: i64,
    pub expires_ms: i64,
}

impl Lease {
    /// Whether it is held at `now_ms`: not expired, not released.
    pub fn live_at(&self, now_ms: i64) -> bool {
        self.expires_ms > now_ms
    }
}

/// What a campaign found, or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    /// Whether the campaigner holds the lease now.
    pub leader: bool,
    /// The lease after the campaign: the campaigner's when `leader`, else
    /// the holder's (which may have expired, if the campaigner may not take
    /// it).
    pub lease: Lease,
    /// The database's time during the campaign.
    pub now_ms: i64,
    /// Whether the campaigner took the lease in this campaign (a new epoch).
    pub took: bool,
}

/// What a replica's row says: who, in what role, since when, last renewed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaRow {
    pub tenancy: String,
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub started_at: String,
    pub config: String,
    pub role: Role,
    /// Since when it has had this role, last renewed, and when its row
    /// expires unless renewed (database milliseconds).
    pub since_ms: i64,
    pub renewed_ms: i64,
    pub expires_ms: i64,
}

/// A replica's role, as its row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Leader,
    Standby,
    /// Stopped cleanly (its lease released).
    Stopped,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Standby => "standby",
            Role::Stopped => "stopped",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Role> {
        match text {
            "leader" => Some(Role::Leader),
            "standby" => Some(Role::Standby),
            "stopped" => Some(Role::Stopped),
            _ => None,
        }
    }
}

/// The leases and replicas of a state (or of one tenancy), with the
/// database's time when they were read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leases {
    pub now_ms: i64,
    pub leases: Vec<Lease>,
    pub replicas: Vec<ReplicaRow>,
}

/// A watcher's lease as an apply checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub tenancy: String,
    pub epoch: u64,
    /// The holder's [`Replica::id`].
    pub holder: String,
}

impl Fence {
    /// Why the lease found, `found` at `now_ms`, is not this fence's: `None`
    /// when it is, and still live.
    pub fn breach(&self, found: Option<&Lease>, now_ms: i64) -> Option<String> {
        let Some(found) = found else {
            return Some("the state holds no lease for it".to_string());
        };
        if found.epoch != self.epoch || found.holder != self.holder {
            return Some(format!(
                "epoch {} is held by `{}` on host `{}` (pid {})",
                found.epoch, found.config, found.host, found.pid
            ));
        }
        if !found.live_at(now_ms) {
            return Some(format!(
                "it expired {} ago",
                super::shown_duration(Duration::from_millis(
                    u64::try_from(now_ms - found.expires_ms).unwrap_or(0)
                ))
            ));
        }
        None
    }

    /// [`Fence::breach`] as the error an apply returns, writing nothing.
    pub fn check(&self, found: Option<&Lease>, now_ms: i64) -> Result<(), super::StateError> {
        match self.breach(found, now_ms) {
            None => Ok(()),
            Some(detail) => Err(super::StateError::Fenced {
                tenancy: self.tenancy.clone(),
                epoch: self.epoch,
                detail,
            }),
        }
    }
}

/// How long the rows of replicas that stopped or stopped renewing are kept
/// (for `status`) before a campaign removes them.
pub const FORGET_AFTER_MS: i64 = 24 * 3600 * 1000;

/// What a campaign by `me` for `tenancy` does, at `now_ms`, given the lease
/// `current` (pure; the backends run it inside their transaction): renews
/// a live lease `me` holds; takes a lease that is missing, expired or
/// released, with the next epoch (also one `me` held: an apply begun under
/// the old epoch must not land); otherwise leaves it to its holder.
pub fn campaign(
    current: Option<Lease>,
    tenancy: &str,
    me: &Replica,
    now_ms: i64,
    duration: Duration,
) -> Campaign {
    let expires_ms = now_ms.saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
    match current {
        Some(lease) if lease.live_at(now_ms) && lease.holder == me.id => Campaign {
            leader: true,
            lease: Lease {
                renewed_ms: now_ms,
                expires_ms,
                ..lease
            },
            now_ms,
            took: false,
        },
        Some(lease) if lease.live_at(now_ms) => Campaign {
            leader: false,
            lease,
            now_ms,
            took: false,
        },
        current => Campaign {
            leader: true,
            lease: Lease {
                tenancy: tenancy.to_string(),
                epoch: current.map_or(1, |l| l.epoch + 1),
                holder: me.id.clone(),
                host: me.host.clone(),
                pid: me.pid,
                started_at: me.started_at.clone(),
                config: me.config.clone(),
                acquired_ms: now_ms,
                renewed_ms: now_ms,
                expires_ms,
            },
            now_ms,
            took: true,
        },
    }
}

/// `me`'s row after a campaign that found `outcome`, given its row before
/// (`previous`): `since` moves only when its role changes.
pub fn replica_row(
    previous: Option<&ReplicaRow>,
    me: &Replica,
    outcome: &Campaign,
    duration: Duration,
) -> ReplicaRow {
    let role = if outcome.leader {
        Role::Leader
    } else {
        Role::Standby
    };
    let since_ms = match previous {
        Some(row) if row.role == role && !outcome.took => row.since_ms,
        _ => outcome.now_ms,
    };
    ReplicaRow {
        tenancy: outcome.lease.tenancy.clone(),
        id: me.id.clone(),
        host: me.host.clone(),
        pid: me.pid,
        started_at: me.started_at.clone(),
        config: me.config.clone(),
        role,
        since_ms,
        renewed_ms: outcome.now_ms,
        expires_ms: outcome
            .now_ms
            .saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(name: &str) -> Replica {
        Replica {
            id: format!("{name}/1/t"),
            host: name.to_string(),
            pid: 1,
            started_at: "t".to_string(),
            config: format!("/{name}"),
        }
    }

    const LEASE: Duration = Duration::from_secs(15);

    #[test]
    fn the_first_campaign_takes_epoch_one() {
        let a = replica("a");
        let c = campaign(None, "acme", &a, 1_000, LEASE);
        assert!(c.leader && c.took);
        assert_eq!(c.lease.epoch, 1);
        assert_eq!(c.lease.expires_ms, 16_000);
        assert_eq!(c.lease.holder, a.id);
    }

    #[test]
    fn a_holder_renews_without_a_new_epoch_and_others_stand_by() {
        let (a, b) = (replica("a"), replica("b"));
        let first = campaign(None, "acme", &a, 1_000, LEASE).lease;
        let renewed = campaign(Some(first.clone()), "acme", &a, 5_000, LEASE);
        assert!(renewed.leader && !renewed.took);
        assert_eq!(renewed.lease.epoch, 1);
        assert_eq!(renewed.lease.acquired_ms, 1_000);
        assert_eq!(renewed.lease.expires_ms, 20_000);
        let other = campaign(Some(renewed.lease.clone()), "acme", &b, 19_999, LEASE);
        assert!(!other.leader && !other.took);
        assert_eq!(other.lease, renewed.lease, "a standby changes nothing");
    }

    #[test]
    fn an_expired_lease_goes_to_the_next_epoch_even_for_its_holder() {
        let (a, b) = (replica("a"), replica("b"));
        let first = campaign(None, "acme", &a, 1_000, LEASE).lease;
        let taken = campaign(Some(first.clone()), "acme", &b, 16_000, LEASE);
        assert!(taken.leader && taken.took);
        assert_eq!(taken.lease.epoch, 2);
        assert_eq!(taken.lease.holder, b.id);
        let back = campaign(Some(first), "acme", &a, 16_000, LEASE);
        assert!(back.leader && back.took);
        assert_eq!(
            back.lease.epoch, 2,
            "its old epoch's applies are fenced off"
        );
    }

    #[test]
    fn a_fence_holds_only_its_live_epoch() {
        let a = replica("a");
        let lease = campaign(None, "acme", &a, 1_000, LEASE).lease;
        let fence = Fence {
            tenancy: "acme".into(),
            epoch: 1,
            holder: a.id.clone(),
        };
        assert_eq!(fence.breach(Some(&lease), 15_999), None);
        assert!(
            fence
                .breach(Some(&lease), 16_000)
                .unwrap()
                .contains("expired")
        );
        assert!(fence.breach(None, 2_000).is_some());
        let next = Lease {
            epoch: 2,
            ..lease.clone()
        };
        assert!(
            fence
                .breach(Some(&next), 2_000)
                .unwrap()
                .contains("epoch 2")
        );
    }

    #[test]
    fn a_replica_row_keeps_its_since_while_its_role_holds() {
        let a = replica("a");
        let c = campaign(None, "acme", &a, 1_000, LEASE);
        let row = replica_row(None, &a, &c, LEASE);
        assert_eq!((row.role, row.since_ms), (Role::Leader, 1_000));
        let renewed = campaign(Some(c.lease), "acme", &a, 3_000, LEASE);
        let row = replica_row(Some(&row), &a, &renewed, LEASE);
        assert_eq!((row.since_ms, row.renewed_ms), (1_000, 3_000));
        assert_eq!(row.expires_ms, 18_000);
    }
}
