//! `status`: how the watcher that writes a status file is doing, from that
//! file (its format is [`crate::status`]): exit 0 when it is healthy, 1 when
//! it is not.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::watch::default_status_file;
use super::{CliError, print_stdout};
use crate::diag::escape_control;
use crate::engine::clock;
use crate::state::{Leases, Location, ReplicaRow, Role, Store};
use crate::status::{MAX_STATUS_BYTES, Status, WatcherState, problem_of};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The watcher's status file [default: the database path followed by
    /// `.status.json`].
    #[arg(long, value_name = "PATH")]
    pub status_file: Option<PathBuf>,
    /// How to print the status.
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
}

/// `supportctl status`: what the watcher writing to this status file did
/// last, and whether it is healthy (exit 0) or not (exit 1).
pub fn status(args: &StatusArgs, db: &Location) -> Result<u8, CliError> {
    let path = args
        .status_file
        .clone()
        .unwrap_or_else(|| default_status_file(db));
    let text = match crate::files::read_bounded(&path, MAX_STATUS_BYTES) {
        Ok(text) => text,
        Err(e) if e.is_not_found() => {
            // No watcher here: the state may still tell of replicas
            // elsewhere.
            if args.status_file.is_none()
                && let Some(code) = replicas_only(args, db)
            {
                return code;
            }
            return Err(CliError::error(format!(
                "no watcher status at `{}`: no `supportctl watch` has run with this database",
                path.display()
            ))
            .with_hint("pass `--status-file` if the watcher was started with one"));
        }
        Err(e) => {
            return Err(CliError::error(format!(
                "cannot read `{}`: {e}",
                path.display()
            )));
        }
    };
    let status: Status = serde_json::from_slice(&text).map_err(|e| {
        CliError::error(format!(
            "`{}` is not a watcher status file: {e}",
            path.display()
        ))
    })?;
    let lease = lease_report(&status, db);
    let problem = problem_of(&status, clock::now()?).or_else(|| lease.problem.clone());
    match args.format {
        StatusFormat::Json => {
            let mut doc = serde_json::to_value(&status).unwrap_or_default();
            if let Some(map) = doc.as_object_mut() {
                map.insert("healthy".into(), problem.is_none().into());
                map.insert("problem".into(), problem.clone().into());
                map.insert("lease".into(), lease.json);
            }
            print_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            ))?;
        }
        StatusFormat::Text => print_stdout(&format!("{}{}", status_text(&status), lease.text))?,
    }
    match problem {
        None => Ok(0),
        Some(problem) => Err(CliError::error(format!(
            "the watcher is not healthy: {problem}"
        ))),
    }
}

fn status_text(status: &Status) -> String {
    let state = match status.state {
        WatcherState::Watching => "watching",
        WatcherState::Reconciling => "reconciling",
        WatcherState::Stopped => "stopped",
    };
    let mut text = format!(
        "watcher: pid {}{}, {state}, since {}\nconfig: {}\ndatabase: {}\nheartbeat: {}\n",
        status.pid,
        status
            .host
            .as_deref()
            .map(|h| format!(" on {}", escape_control(h)))
            .unwrap_or_default(),
        status.started_at,
        escape_control(&status.config),
        escape_control(&status.database),
        status.heartbeat_at
    );
    match &status.last {
        None => text.push_str("last reconcile: none yet\n"),
        Some(last) => {
            text.push_str(&format!(
                "last reconcile: {} at {} ({}, {} ms)",
                last.outcome.as_str(),
                last.at,
                last.trigger.as_str(),
                last.ms
            ));
            if let Some(s) = last.summary {
                text.push_str(&format!(
                    ": {} to add, {} to change, {} to destroy",
                    s.add, s.change, s.destroy
                ));
            }
            text.push('\n');
            if let Some(message) = &last.message {
                // Each line escaped: a message may carry a `hint:` line.
                for line in message.lines() {
                    text.push_str(&format!("  {}\n", escape_control(line)));
                }
            }
            for f in &last.findings {
                text.push_str(&format!(
                    "  {}{}[{}]: {}\n",
                    f.location
                        .as_deref()
                        .map(|at| format!("{}: ", escape_control(at)))
                        .unwrap_or_default(),
                    escape_control(&f.severity),
                    escape_control(&f.code),
                    escape_control(&f.message)
                ));
            }
        }
    }
    if let Some(at) = &status.last_success_at {
        text.push_str(&format!("last success: {at}\n"));
    }
    if let Some(at) = &status.next_wake_at {
        text.push_str(&format!("next look: {at}\n"));
    }
    text
}

/// What the state says of the tenancy's lease and replicas, as `status`
/// reports it.
struct LeaseReport {
    /// `lease` in the JSON status: `null` when not known.
    json: serde_json::Value,
    text: String,
    /// Why the watcher is not healthy by the state's account: its replica
    /// stopped renewing its lease.
    problem: Option<String>,
}

/// The tenancy's lease and every replica the state knows of, read from the
/// state the watcher writes (when it is the one `--db` names); a watcher
/// whose replica stopped renewing is not healthy, whatever its heartbeat.
fn lease_report(status: &Status, db: &Location) -> LeaseReport {
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
    if status.database != db.absolute() {
        return unknown(format!(
            "the watcher writes `{}`, not `{}` (pass its `--db`)",
            status.database,
            db.absolute()
        ));
    }
    let leases = match Store::open_read_only(db) {
        Ok(Some(store)) => store.leases(Some(&tenancy)),
        Ok(None) => return unknown("there is no state yet".into()),
        Err(e) => Err(e),
    };
    let leases = match leases {
        Ok(leases) => leases,
        Err(e) => return unknown(e.message()),
    };
    report_of(
        status.replica.as_ref().map(|r| r.id.as_str()),
        &tenancy,
        &leases,
    )
}

/// `status` where no watcher's status file is (another machine than the
/// watchers'): the leader and replicas of every tenancy the state holds a
/// lease for, healthy (exit 0) when each has a live leader. `None` when
/// the state holds no lease, or cannot be read: then the missing file is
/// the error.
fn replicas_only(args: &StatusArgs, db: &Location) -> Option<Result<u8, CliError>> {
    let found = Store::open_read_only(db).ok()??.leases(None).ok()?;
    if found.leases.is_empty() {
        return None;
    }
    let reports: Vec<(String, LeaseReport)> = found
        .leases
        .iter()
        .map(|l| (l.tenancy.clone(), report_of(None, &l.tenancy, &found)))
        .collect();
    let leaderless: Vec<&str> = reports
        .iter()
        .filter(|(_, r)| r.json["leader"].is_null())
        .map(|(t, _)| t.as_str())
        .collect();
    let problem = (!leaderless.is_empty()).then(|| {
        format!(
            "no watcher leads tenancy {}: every replica stopped, or none renews its lease",
            leaderless
                .iter()
                .map(|t| format!("`{}`", escape_control(t)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    let printed = match args.format {
        StatusFormat::Json => {
            let doc = serde_json::json!({
                "healthy": problem.is_none(),
                "problem": problem,
                "leases": reports.iter().map(|(_, r)| r.json.clone()).collect::<Vec<_>>(),
            });
            print_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            ))
        }
        StatusFormat::Text => print_stdout(
            &reports
                .iter()
                .map(|(_, r)| r.text.as_str())
                .collect::<String>(),
        ),
    };
    Some(match (printed, problem) {
        (Err(e), _) => Err(e.into()),
        (Ok(()), Some(problem)) => Err(CliError::error(problem)),
        (Ok(()), None) => Ok(0),
    })
}

fn report_of(this: Option<&str>, tenancy: &str, found: &Leases) -> LeaseReport {
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
