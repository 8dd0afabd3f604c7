//! The watcher's status file: a public format, versioned like the JSON plan
//! (`format_version`), written by `supportctl watch` and read by
//! `supportctl status` and anything else that wants to know how a watcher
//! is doing. This module defines the format, what a healthy watcher looks
//! like in it, and how to tell a watcher that still runs.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diag::{self, Diagnostic};

/// How often an idle watcher rewrites its status file, so that a reader can
/// tell it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// A heartbeat older than this means the watcher is gone or stuck.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

/// The status file's contents: a public format, versioned like the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub format_version: u32,
    pub pid: u32,
    /// The host the watcher runs on.
    #[serde(default)]
    pub host: Option<String>,
    /// The config set watched, absolute.
    pub config: String,
    pub database: String,
    pub started_at: String,
    /// Rewritten at least every 10 seconds while the watcher waits.
    pub heartbeat_at: String,
    pub state: WatcherState,
    /// When the watcher next looks even if no file changes (interval,
    /// expiry or retry), if ever.
    pub next_wake_at: Option<String>,
    /// Reconciles run since start (skipped ones not counted).
    pub reconciles: u64,
    pub last: Option<LastReconcile>,
    pub last_success_at: Option<String>,
    /// This watcher as the tenancy's lease names it (`host/pid/start`),
    /// and where it stands: `leader` or `standby`, with the lease's epoch.
    /// Absent until its config set named a tenancy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaStatus>,
}

/// Where a watcher stands in its tenancy's lease, as its status file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub id: String,
    pub tenancy: String,
    /// `leader` or `standby`.
    pub role: String,
    /// The lease's epoch as last seen.
    pub epoch: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WatcherState {
    Watching,
    Reconciling,
    Stopped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastReconcile {
    pub at: String,
    pub trigger: Trigger,
    pub outcome: OutcomeKind,
    pub tenancy: Option<String>,
    pub serial: Option<u64>,
    pub summary: Option<SummaryCounts>,
    pub ms: u64,
    pub message: Option<String>,
    pub config_digest: Option<String>,
    /// An invalid config set's findings, each at its file and line (the
    /// first [`STATUS_FINDINGS`] of them).
    #[serde(default)]
    pub findings: Vec<Finding>,
}

/// One finding of an invalid config set, as the status file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// `FILE:LINE:COLUMN`, the file's path absolute; `None` for a finding
    /// about the config set as a whole.
    pub location: Option<String>,
    /// `error` or `warning`.
    pub severity: String,
    pub code: String,
    pub message: String,
}

/// How many findings the status file keeps: it is rewritten every few
/// seconds, and the log has them all.
pub const STATUS_FINDINGS: usize = 20;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SummaryCounts {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

/// Why a reconcile ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    Start,
    Change,
    Interval,
    Expiry,
    Retry,
    /// This watcher took the tenancy's lease.
    Lease,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Change => "change",
            Trigger::Interval => "interval",
            Trigger::Expiry => "expiry",
            Trigger::Retry => "retry",
            Trigger::Lease => "lease",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    Applied,
    NoChanges,
    /// The config set failed to load or check; nothing changed.
    Invalid,
    /// The mass-delete guard refused the plan; nothing changed.
    Refused,
    /// Planning or applying failed (locked or unreadable database, stale
    /// plan, I/O); retried with a growing delay.
    Failed,
    /// The tenancy is kept by a watcher of another config set (the latest
    /// watched apply came from another host or path): not applied over,
    /// looked at again with a growing delay.
    Contended,
    /// Another replica of this watcher holds the tenancy's lease: this one
    /// keeps its parse of the config set warm and applies nothing until it
    /// takes the lease. Healthy.
    Standby,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Applied => "applied",
            OutcomeKind::NoChanges => "no-changes",
            OutcomeKind::Invalid => "invalid",
            OutcomeKind::Refused => "refused",
            OutcomeKind::Failed => "failed",
            OutcomeKind::Contended => "contended",
            OutcomeKind::Standby => "standby",
        }
    }

    /// Whether it is looked at again after a delay, with nothing changed.
    pub fn retries(self) -> bool {
        matches!(self, OutcomeKind::Failed | OutcomeKind::Contended)
    }

    pub fn is_success(self) -> bool {
        matches!(
            self,
            OutcomeKind::Applied | OutcomeKind::NoChanges | OutcomeKind::Standby
        )
    }
}

/// The watcher's status file: private (it names the database and the
/// config), recognised by the fields only it has.
pub const STATUS_FILE: crate::files::Kind = crate::files::Kind {
    name: "a watcher status file",
    recognise: |head| {
        let text = String::from_utf8_lossy(head);
        text.trim_start().starts_with('{')
            && ["\"format_version\"", "\"pid\"", "\"heartbeat_at\""]
                .iter()
                .all(|field| text.contains(field))
    },
    mode: 0o600,
    durable: true,
};

/// The largest status file `status` reads; a watcher's is under 2 KiB.
pub const MAX_STATUS_BYTES: u64 = 1 << 20;

impl From<crate::plan::Summary> for SummaryCounts {
    fn from(s: crate::plan::Summary) -> Self {
        SummaryCounts {
            add: s.add,
            change: s.change,
            destroy: s.destroy,
        }
    }
}

/// The first [`STATUS_FINDINGS`] findings, for the status file: each at
/// its file (absolute, so that `status` run elsewhere can find it), line and
/// column.
pub fn status_findings(diagnostics: &[Diagnostic], sources: &diag::Sources) -> Vec<Finding> {
    diagnostics
        .iter()
        .take(STATUS_FINDINGS)
        .map(|d| finding_of(d, sources))
        .collect()
}

pub fn finding_of(d: &Diagnostic, sources: &diag::Sources) -> Finding {
    Finding {
        location: d.location.map(|l| {
            let path = Path::new(sources.path(l.file as usize));
            let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            format!("{}:{}:{}", path.display(), l.line, l.column)
        }),
        severity: if d.is_error() { "error" } else { "warning" }.to_string(),
        code: d.rule.code().to_string(),
        message: d.message.clone(),
    }
}

/// The watcher that writes `status_file` now, if one does: its status says
/// it runs, its heartbeat is fresh, and (on this host) its process is alive
/// and not this one.
pub fn running_watcher(status_file: &Path) -> Option<Status> {
    let text = std::fs::read_to_string(status_file).ok()?;
    let status: Status = serde_json::from_str(&text).ok()?;
    if status.state == WatcherState::Stopped {
        return None;
    }
    let heartbeat = status.heartbeat_at.parse::<jiff::Timestamp>().ok()?;
    let silent = heartbeat.duration_until(jiff::Timestamp::now());
    if silent > jiff::SignedDuration::try_from(STALE_AFTER).unwrap_or_default() {
        return None;
    }
    let here = status
        .host
        .as_deref()
        .is_none_or(|h| h == crate::engine::host_name());
    if here && (status.pid == std::process::id() || !process_is_alive(status.pid)) {
        return None;
    }
    Some(status)
}

/// Whether process `pid` runs (and is not a zombie), as `/proc` tells it;
/// where there is no `/proc`, it is taken to.
pub fn process_is_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| !matches!(state, 'Z' | 'X')),
        Err(_) => false,
    }
}

/// Why the watcher is not healthy, or `None` when it is.
pub fn problem_of(status: &Status, now: jiff::Timestamp) -> Option<String> {
    if status.state == WatcherState::Stopped {
        return Some(format!("it stopped at {}", status.heartbeat_at));
    }
    let heartbeat = status.heartbeat_at.parse::<jiff::Timestamp>().ok();
    let silent = heartbeat.map(|h| h.duration_until(now));
    let limit = jiff::SignedDuration::try_from(STALE_AFTER).unwrap_or_default();
    if silent.is_none_or(|s| s > limit) {
        return Some(format!(
            "no sign of life since {} (pid {}): it was killed, or is stuck",
            status.heartbeat_at, status.pid
        ));
    }
    match &status.last {
        None => None,
        Some(last) if last.outcome.is_success() => None,
        Some(last) => Some(format!(
            "the last reconcile ({}) failed: {}",
            last.outcome.as_str(),
            last.message.as_deref().unwrap_or("no detail")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_at(state: WatcherState, heartbeat: &str, outcome: Option<OutcomeKind>) -> Status {
        Status {
            format_version: 1,
            pid: 7,
            host: None,
            config: "c".into(),
            database: "d".into(),
            started_at: heartbeat.into(),
            heartbeat_at: heartbeat.into(),
            state,
            next_wake_at: None,
            reconciles: 1,
            last: outcome.map(|outcome| LastReconcile {
                at: heartbeat.into(),
                trigger: Trigger::Start,
                outcome,
                tenancy: None,
                serial: None,
                summary: None,
                ms: 1,
                message: Some("why".into()),
                config_digest: None,
                findings: Vec::new(),
            }),
            last_success_at: None,
            replica: None,
        }
    }

    #[test]
    fn health_needs_a_recent_heartbeat_and_a_successful_last_reconcile() {
        let now: jiff::Timestamp = "2026-11-24T12:00:30Z".parse().unwrap();
        let fresh = "2026-11-24T12:00:20Z";
        let old = "2026-11-24T11:50:00Z";
        use OutcomeKind::*;
        use WatcherState::*;
        assert_eq!(
            problem_of(&status_at(Watching, fresh, Some(Applied)), now),
            None
        );
        assert_eq!(
            problem_of(&status_at(Reconciling, fresh, Some(NoChanges)), now),
            None
        );
        assert_eq!(problem_of(&status_at(Watching, fresh, None), now), None);
        for (state, beat, outcome) in [
            (Stopped, fresh, Some(Applied)),
            (Watching, old, Some(Applied)),
            (Watching, fresh, Some(Invalid)),
            (Watching, fresh, Some(Refused)),
            (Watching, fresh, Some(Failed)),
        ] {
            assert!(
                problem_of(&status_at(state, beat, outcome), now).is_some(),
                "{state:?} {beat} {outcome:?}"
            );
        }
    }
}
