//! `status`: how the watcher that writes a status file is doing, from that
//! file (its format is [`crate::status`]): exit 0 when it is healthy, 1 when
//! it is not.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::watch::default_status_file;
use super::{CliError, print_stdout};
use crate::diag::escape_control;
use crate::engine::clock;
use crate::report::{self, LeaseReport};
use crate::state::{Location, Store};
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
            let doc = report::status_json(&status, problem.as_deref(), &lease.json);
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

/// [`report::lease_report`] from the state `db` names.
fn lease_report(status: &Status, db: &Location) -> LeaseReport {
    report::lease_report(
        status,
        &db.absolute(),
        |tenancy| match Store::open_read_only(db) {
            Ok(Some(store)) => store.leases(Some(tenancy)).map_err(|e| e.message()),
            Ok(None) => Err("there is no state yet".into()),
            Err(e) => Err(e.message()),
        },
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
        .map(|l| {
            (
                l.tenancy.clone(),
                report::lease_of(None, &l.tenancy, &found),
            )
        })
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
