//! `status --format json`: a watcher's status file with its health, and
//! what the state says of the tenancy's lease and replicas
//! (docs/reference.md, *The watcher's status file*). The status file is
//! read, and the leases are asked of the state, by the caller.

use crate::diag::escape_control;
use crate::state::{Leases, ReplicaRow, Role};
use crate::status::Status;

/// What the state says of the tenancy's lease and replicas, as `status`
/// reports it.
#[derive(Debug)]
pub struct LeaseReport {
    /// `lease` in the JSON status: `null` when not known.
    pub json: serde_json::Value,
    pub text: String,
    /// Why the watcher is not healthy by the state's account: its replica
    /// stopped renewing its lease.
    pub problem: Option<String>,
}

/// The tenancy's lease and every replica the state knows of, read by
/// `leases` (given the tenancy) from the state the watcher writes, when
/// that is the state at `database` (absolute, as the status file names
/// it); a watcher whose replica stopped renewing is not healthy, whatever
/// its heartbeat.
pub fn lease_report(
    status: &Status,
    database: &str,
    leases: impl FnOnce(&str) -> Result<Leases, String>,
) -> LeaseReport {
    let unknown = |why: String| LeaseReport {
        json: serde_json::json!({ "error": why }),
        text: format!("lease: not known: {}\n", escape_control(&why)),
        problem: None,
    };
    let tenancy = status
        .replica
        .as_ref()
        .map(|r| r.tenancy.clone())
        .or_else(|| status.last.as_ref().and_then(|l| l.tenancy.clone()));
    let Some(tenancy) = tenancy else {
        return LeaseReport {
            json: serde_json::Value::Null,
            text: "lease: none yet (no valid config set read)\n".into(),
            problem: None,
        };
    };
    if status.database != database {
        return unknown(format!(
            "the watcher writes `{}`, not `{database}` (pass its `--db`)",
            status.database,
        ));
    }
    match leases(&tenancy) {
        Ok(leases) => lease_of(
            status.replica.as_ref().map(|r| r.id.as_str()),
            &tenancy,
            &leases,
        ),
        Err(why) => unknown(why),
    }
}

/// `status --format json`: the status file's fields, then whether the
/// watcher is healthy, why not, and its lease ([`LeaseReport::json`]).
pub fn status_json(
    status: &Status,
    problem: Option<&str>,
    lease: &serde_json::Value,
) -> serde_json::Value {
    let mut doc = serde_json::to_value(status).unwrap_or_default();
    if let Some(map) = doc.as_object_mut() {
        map.insert("healthy".into(), problem.is_none().into());
        map.insert("problem".into(), problem.into());
        map.insert("lease".into(), lease.clone());
    }
    doc
}

/// The lease of `tenancy` in `found` and its replicas; `this`: the replica
/// id of the watcher asked about, if any.
pub fn lease_of(this: Option<&str>, tenancy: &str, found: &Leases) -> LeaseReport {
    let now = found.now_ms;
    let at = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
    };
    let alive = |r: &ReplicaRow| r.role != Role::Stopped && r.expires_ms > now;
    let lease = found.leases.iter().find(|l| l.tenancy == tenancy);
    let leader = lease.filter(|l| l.live_at(now));
    let mut text = match leader {
        Some(l) => format!(
            "lease: tenancy {}, epoch {}, led by {} on {} (pid {}) since {}; renewed {}, expires {}\n",
            escape_control(tenancy),
            l.epoch,
            escape_control(&l.config),
            escape_control(&l.host),
            l.pid,
            at(l.acquired_ms),
            at(l.renewed_ms),
            at(l.expires_ms)
        ),
        None => format!(
            "lease: tenancy {}: no leader{}\n",
            escape_control(tenancy),
            lease.map_or_else(String::new, |l| format!(
                " (epoch {} ended {})",
                l.epoch,
                at(l.expires_ms)
            ))
        ),
    };
    let replicas: Vec<&ReplicaRow> = found
        .replicas
        .iter()
        .filter(|r| r.tenancy == tenancy)
        .collect();
    if !replicas.is_empty() {
        text.push_str("replicas:\n");
    }
    let mut json_replicas = Vec::new();
    for r in &replicas {
        let state = if alive(r) {
            r.role.as_str().to_string()
        } else if r.role == Role::Stopped {
            "stopped".to_string()
        } else {
            format!("dead (was {})", r.role.as_str())
        };
        text.push_str(&format!(
            "  {state:<20} {} pid {} ({}) since {}, last renewed {}{}\n",
            escape_control(&r.host),
            r.pid,
            escape_control(&r.config),
            at(r.since_ms),
            at(r.renewed_ms),
            if this == Some(r.id.as_str()) {
                ", this watcher"
            } else {
                ""
            }
        ));
        json_replicas.push(serde_json::json!({
            "id": r.id,
            "host": r.host,
            "pid": r.pid,
            "config": r.config,
            "started_at": r.started_at,
            "role": r.role.as_str(),
            "alive": alive(r),
            "since": at(r.since_ms),
            "renewed_at": at(r.renewed_ms),
            "expires_at": at(r.expires_ms),
            "this": this == Some(r.id.as_str()),
        }));
    }
    let problem = replicas
        .iter()
        .find(|r| this == Some(r.id.as_str()))
        .filter(|r| r.role != Role::Stopped && r.expires_ms <= now)
        .map(|r| {
            format!(
                "its replica stopped renewing its lease at {} (the state says so): it was killed, is stuck, or cannot reach the database",
                at(r.renewed_ms)
            )
        });
    let json = serde_json::json!({
        "tenancy": tenancy,
        "now": at(now),
        "leader": leader.map(|l| serde_json::json!({
            "id": l.holder,
            "host": l.host,
            "pid": l.pid,
            "config": l.config,
            "epoch": l.epoch,
            "since": at(l.acquired_ms),
            "renewed_at": at(l.renewed_ms),
            "expires_at": at(l.expires_ms),
        })),
        "epoch": lease.map(|l| l.epoch),
        "replicas": json_replicas,
    });
    LeaseReport {
        json,
        text,
        problem,
    }
}
