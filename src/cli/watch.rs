//! `watch` and `status`: reconcile continuously, and tell how it goes.
//!
//! The loop decides *when* to reconcile — at start, after a change under the
//! config path, every `--interval`, when a grant expires, and after a failure
//! that may pass — never *how*: each reconcile loads, checks, plans and
//! applies from scratch with the same code as `plan` and `apply`. Between
//! reconciles it waits on one channel for file events and stop signals
//! ([`crate::watch`]) with a timeout for its own timers.
//!
//! What it did last is written to a status file beside the database, so that
//! `supportctl status` in another process can tell a healthy watcher from a
//! stuck or failing one.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use super::reconcile::{CheckAgainst, StateCache, apply_planned, guard, plan_checked_cached};
use super::{
    CliError, ConfigArgs, Failure, load_and_check_cached, now, open_parse_cache, parse_cache_path,
    print_stdout, save_parse_cache, today, with_suffix,
};
use crate::config::SetStamp;
use crate::diag::{self, Diagnostic, escape_control};
use crate::model::Date;
use crate::state::AppliedBy;
use crate::watch::{FileWatch, Ignored, Mode, Wake};

/// How often an idle watcher rewrites its status file, so that a reader can
/// tell it is alive.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// A heartbeat older than this means the watcher is gone or stuck.
const STALE_AFTER: Duration = Duration::from_secs(60);
/// The longest wait before retrying a reconcile that failed for a reason
/// that may pass (a locked database, a stale plan, an I/O error).
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long after a grant's expiry moment the watcher looks, so that the
/// clock has surely passed it.
const EXPIRY_MARGIN: Duration = Duration::from_millis(50);

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Wait this long after a change, in milliseconds, for more changes
    /// before reconciling.
    #[arg(long, default_value_t = 300, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub debounce_ms: u64,
    /// Also reconcile this often, e.g. `30s`, `5m`, `1h`: repairs a state
    /// changed by someone else. From 100ms to 720h.
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Option<Duration>,
    /// Scan for changes instead of using file events, for file systems
    /// without them (NFS, some container mounts).
    #[arg(long)]
    pub poll: bool,
    /// How often `--poll` scans, from 100ms to 1h.
    #[arg(long, value_name = "DURATION", value_parser = parse_poll_interval, default_value = "1s",
          requires = "poll")]
    pub poll_interval: Duration,
    /// Apply even when more than 25% of the tenancy's resources (and more
    /// than 5) would be deleted.
    #[arg(long)]
    pub allow_mass_delete: bool,
    /// Where to write the watcher's status [default: the database path
    /// followed by `.status.json`].
    #[arg(long, value_name = "PATH")]
    pub status_file: Option<PathBuf>,
    /// Neither read nor write the parse cache kept beside the database
    /// (the watcher still keeps its files' parses in memory).
    #[arg(long)]
    pub no_cache: bool,
    /// Apply over the last apply of a watcher of another config set (or on
    /// another host), if it was made before this watcher started: that
    /// watcher was moved or retired. One made after this watcher started
    /// means the other is running, and is never applied over.
    #[arg(long)]
    pub take_over: bool,
}

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

/// The shortest and longest `--interval`: shorter would reconcile without
/// a pause; 30 days is past any sensible repair.
const INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(720 * 3600));
/// The shortest and longest `--poll-interval`: a scan of the tree at least
/// hourly, never back to back.
const POLL_INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(3600));

fn parse_interval(text: &str) -> Result<Duration, String> {
    parse_duration(text, INTERVAL_RANGE)
}

fn parse_poll_interval(text: &str) -> Result<Duration, String> {
    parse_duration(text, POLL_INTERVAL_RANGE)
}

/// A duration such as `30s`, `5m`, `1h30m` or `500ms`, within `range`.
fn parse_duration(text: &str, (least, most): (Duration, Duration)) -> Result<Duration, String> {
    let shown = |d: Duration| {
        jiff::SignedDuration::try_from(d).map_or_else(|_| format!("{d:?}"), |d| format!("{d:#}"))
    };
    let range = format!("from {} to {}", shown(least), shown(most));
    let parsed: jiff::SignedDuration = match text.parse() {
        Ok(parsed) => parsed,
        // A number too large for the parser is a duration, just too long.
        Err(_) if text.bytes().filter(u8::is_ascii_digit).count() > 18 => {
            return Err(format!("`{text}` is out of range: {range}"));
        }
        Err(_) => {
            return Err(format!(
                "`{text}` is not a duration such as `30s`, `5m`, `1h30m` or `500ms` (hours are the largest unit)"
            ));
        }
    };
    if parsed.is_negative() || parsed.is_zero() {
        return Err(format!("`{text}` is not a positive duration"));
    }
    match Duration::try_from(parsed) {
        Ok(d) if (least..=most).contains(&d) => Ok(d),
        _ => Err(format!("`{text}` is out of range: {range}")),
    }
}

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
const STATUS_FINDINGS: usize = 20;

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
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Change => "change",
            Trigger::Interval => "interval",
            Trigger::Expiry => "expiry",
            Trigger::Retry => "retry",
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
}

impl OutcomeKind {
    fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Applied => "applied",
            OutcomeKind::NoChanges => "no-changes",
            OutcomeKind::Invalid => "invalid",
            OutcomeKind::Refused => "refused",
            OutcomeKind::Failed => "failed",
            OutcomeKind::Contended => "contended",
        }
    }

    /// Whether it is looked at again after a delay, with nothing changed.
    fn retries(self) -> bool {
        matches!(self, OutcomeKind::Failed | OutcomeKind::Contended)
    }

    fn is_success(self) -> bool {
        matches!(self, OutcomeKind::Applied | OutcomeKind::NoChanges)
    }
}

/// The watcher's status file: private (it names the database and the
/// config), recognised by the fields only it has.
const STATUS_FILE: crate::files::Kind = crate::files::Kind {
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
const MAX_STATUS_BYTES: u64 = 1 << 20;

/// What the status file may not be: the state's files and the config set.
fn status_protected(db: &Path, config: &Path) -> crate::files::Protected {
    super::protected(db).config_set(config)
}

/// The default status file: beside the database, named after it.
fn default_status_file(db: &Path) -> PathBuf {
    with_suffix(db, ".status.json")
}

fn timestamp() -> String {
    now().unwrap_or_else(|_| jiff::Timestamp::now()).to_string()
}

/// What one reconcile found, for the log, the status file and the timers.
struct Reconciled {
    kind: OutcomeKind,
    tenancy: Option<String>,
    serial: Option<u64>,
    summary: Option<SummaryCounts>,
    message: Option<String>,
    digest: Option<String>,
    /// The earliest expiry among the grants now held, when the config checked.
    next_expiry: Option<Date>,
    /// Findings of an invalid config set.
    errors: usize,
    warnings: usize,
    findings: Vec<Finding>,
}

impl Reconciled {
    fn new(kind: OutcomeKind) -> Self {
        Reconciled {
            kind,
            tenancy: None,
            serial: None,
            summary: None,
            message: None,
            digest: None,
            next_expiry: None,
            errors: 0,
            warnings: 0,
            findings: Vec::new(),
        }
    }
}

impl From<crate::plan::Summary> for SummaryCounts {
    fn from(s: crate::plan::Summary) -> Self {
        SummaryCounts {
            add: s.add,
            change: s.change,
            destroy: s.destroy,
        }
    }
}

/// The watcher: its settings, its memory of what failed, and its status.
struct Watcher<'a> {
    args: &'a WatchArgs,
    db: &'a Path,
    status_file: PathBuf,
    status: Status,
    /// What the last failure was about, so the same failing input is not
    /// reported again and again.
    failing: Option<String>,
    /// The digest whose warnings were last logged.
    warned: Option<String>,
    /// Consecutive failures that may pass, for the retry delay.
    failures: u32,
    /// Whether writing the status file failed (and was reported).
    status_unwritable: bool,
    /// The files parsed by the last reconcile: an edit reparses one file.
    parsed: crate::config::ParseCache,
    /// The tenancy's state as last read or applied: read again only when
    /// its serial moved.
    state: StateCache,
    /// File events and stop signals.
    woken: Receiver<Wake>,
    files: FileWatch,
    /// A stop signal that came while a reconcile read the wake-ups.
    stop: Option<&'static str>,
    /// Whether the config set was last found changing (said once at info).
    unsettled: bool,
    /// This host's name, and when this watcher started (the system clock,
    /// as the journal's times are).
    host: String,
    started: jiff::Timestamp,
}

/// What became of a reconcile.
enum Step {
    Done(Reconciled),
    /// Skipped: the input is the same as the last failing one (which is
    /// looked at again after a delay when `retry`).
    Skipped {
        retry: bool,
    },
    /// The config set changed while it was read, or a file of it is open
    /// for writing: nothing was applied; look again once it settles.
    Unsettled,
}

pub fn watch(args: &WatchArgs, db: &Path) -> Result<u8, CliError> {
    let root = &args.config.path;
    if !root.exists() {
        return Err(CliError::error(format!(
            "cannot watch `{}`: no such file or directory",
            root.display()
        )));
    }
    let status_file = args
        .status_file
        .clone()
        .unwrap_or_else(|| default_status_file(db));
    crate::files::check_output(&status_file, &STATUS_FILE, &status_protected(db, root))
        .map_err(|e| super::output_error("the watcher's status", &status_file, e))?;
    if let Some(other) = running_watcher(&status_file) {
        return Err(CliError::error(format!(
            "`{}` is the status file of a watcher that is running: pid {} on host `{}`, watching `{}` since {}\n  hint: give this watcher its own `--status-file` (two watchers of one tenancy undo each other's applies: stop one of them)",
            status_file.display(),
            other.pid,
            other.host.as_deref().unwrap_or("unknown"),
            other.config,
            other.started_at
        )));
    }
    let (wakes, woken) = std::sync::mpsc::channel();
    crate::watch::on_stop_signals(wakes.clone())
        .map_err(|e| CliError::error(format!("cannot handle stop signals: {e}")))?;
    let ignored = Ignored::new([
        db.to_path_buf(),
        with_suffix(db, "-wal"),
        with_suffix(db, "-shm"),
        with_suffix(db, "-journal"),
        status_file.clone(),
        parse_cache_path(db),
    ]);
    let mode = if args.poll {
        Mode::Poll(args.poll_interval)
    } else {
        Mode::Events
    };
    let debounce = Duration::from_millis(args.debounce_ms);
    let files = FileWatch::start(root, mode, debounce, ignored, wakes)
        .map_err(|e| CliError::error(format!("cannot watch `{}`: {e}", root.display())))?;
    let absolute = |p: &Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    let started_at = timestamp();
    let host = super::host_name();
    let mut watcher = Watcher {
        args,
        db,
        status_file,
        status: Status {
            format_version: 1,
            pid: std::process::id(),
            host: Some(host.clone()),
            config: absolute(root),
            database: absolute(db),
            started_at: started_at.clone(),
            heartbeat_at: started_at,
            state: WatcherState::Watching,
            next_wake_at: None,
            reconciles: 0,
            last: None,
            last_success_at: None,
        },
        failing: None,
        warned: None,
        failures: 0,
        status_unwritable: false,
        parsed: if args.no_cache {
            crate::config::ParseCache::empty()
        } else {
            open_parse_cache(db)
        },
        state: StateCache::default(),
        woken,
        files,
        stop: None,
        unsettled: false,
        host,
        started: jiff::Timestamp::now(),
    };
    tracing::info!(
        path = %escape_control(&root.display().to_string()),
        db = %escape_control(&db.display().to_string()),
        mode = if args.poll { "poll" } else { "events" },
        debounce_ms = args.debounce_ms,
        "watching"
    );
    let stopped_by = watcher.run();
    watcher.status.state = WatcherState::Stopped;
    watcher.status.next_wake_at = None;
    watcher.write_status();
    tracing::info!(signal = stopped_by, "stopped");
    Ok(0)
}

impl Watcher<'_> {
    /// Reconciles whenever something asks for it, until a stop signal; returns
    /// the signal's name.
    fn run(&mut self) -> &'static str {
        let mut pending = Some(Trigger::Start);
        let mut next_interval: Option<Instant> = None;
        let mut next_retry: Option<Instant> = None;
        let mut next_expiry: Option<Date> = None;
        loop {
            if let Some(signal) = self.stop.take() {
                return signal;
            }
            if let Some(trigger) = pending.take() {
                match self.reconcile(trigger) {
                    Step::Unsettled => {
                        // The same trigger again, once the files are still.
                        if let Some(signal) = self.settle() {
                            return signal;
                        }
                        self.refresh();
                        pending = Some(trigger);
                        continue;
                    }
                    Step::Skipped { retry } => {
                        if retry {
                            self.failures += 1;
                            next_retry = Some(Instant::now() + backoff(self.failures));
                        }
                    }
                    Step::Done(r) => {
                        // Expiries follow the config that last checked; an
                        // invalid one has none to offer until it is fixed.
                        next_expiry = r.next_expiry;
                        next_retry = if r.kind.retries() {
                            self.failures += 1;
                            Some(Instant::now() + backoff(self.failures))
                        } else {
                            self.failures = 0;
                            None
                        };
                    }
                }
                next_interval = self.args.interval.map(|every| Instant::now() + every);
                if let Some(signal) = self.stop.take() {
                    return signal;
                }
            }
            // Wait for the first of: a wake, the interval, a retry, an
            // expiry, the heartbeat.
            let expiry_at = next_expiry.and_then(instant_of_expiry);
            let timers = [
                (next_interval, Trigger::Interval),
                (next_retry, Trigger::Retry),
                (expiry_at, Trigger::Expiry),
            ];
            let due = timers
                .iter()
                .filter_map(|(at, trigger)| at.map(|at| (at, *trigger)))
                .min_by_key(|(at, _)| *at);
            self.status.next_wake_at = due.map(|(at, _)| {
                let ahead = at.saturating_duration_since(Instant::now());
                now()
                    .ok()
                    .and_then(|n| n.checked_add(ahead).ok())
                    .map_or_else(String::new, |t| t.to_string())
            });
            self.status.state = WatcherState::Watching;
            self.write_status();
            let heartbeat = Instant::now() + HEARTBEAT;
            let (deadline, on_time) = match due {
                Some((at, trigger)) if at <= heartbeat => (at, Some(trigger)),
                _ => (heartbeat, None),
            };
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.woken.recv_timeout(wait) {
                Ok(Wake::Stop(signal)) => {
                    return signal;
                }
                Ok(Wake::Changed(paths)) => {
                    tracing::debug!(paths = paths.len(), first = %escape_control(&paths[0].display().to_string()), "files changed");
                    if let Some(signal) = self.settle() {
                        return signal;
                    }
                    self.refresh();
                    pending = Some(Trigger::Change);
                }
                Ok(Wake::Trouble(message)) => {
                    tracing::warn!(problem = %escape_control(&message), "file watcher");
                    self.refresh();
                    pending = Some(Trigger::Change);
                }
                Err(RecvTimeoutError::Timeout) => {
                    // An expiry's instant is re-read each round: the wall
                    // clock may have jumped while waiting.
                    if let Some(trigger) = on_time {
                        if trigger == Trigger::Expiry {
                            next_expiry = None;
                        }
                        if trigger == Trigger::Retry {
                            next_retry = None;
                        }
                        pending = Some(trigger);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    tracing::error!("the file watcher stopped; ending");
                    return "none";
                }
            }
        }
    }

    /// The quiet period that makes a burst of saves one reconcile: half the
    /// debounce time, and at least 20 ms.
    fn quiet(&self) -> Duration {
        (Duration::from_millis(self.args.debounce_ms) / 2).max(Duration::from_millis(20))
    }

    /// After a change, waits until changes stop arriving for the quiet
    /// period (at most ten debounce times in all), so that a burst of saves
    /// becomes one reconcile; then for as long as a config file is open for
    /// writing (a writer that pauses between its writes), until its writer
    /// closes it or [`crate::watch::WRITER_PATIENCE`] passes with no write. A stop signal
    /// ends the wait.
    fn settle(&mut self) -> Option<&'static str> {
        let debounce = Duration::from_millis(self.args.debounce_ms);
        let quiet = self.quiet();
        let give_up = Instant::now() + debounce * 10;
        let mut beat = Instant::now();
        let mut said = false;
        loop {
            let wait = quiet.min(give_up.saturating_duration_since(Instant::now()));
            if !wait.is_zero() {
                match self.woken.recv_timeout(wait) {
                    Ok(Wake::Stop(signal)) => return Some(signal),
                    Ok(Wake::Changed(_) | Wake::Trouble(_)) => continue,
                    Err(RecvTimeoutError::Disconnected) => return None,
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
            let writing = self.files.being_written();
            let first = writing.first()?;
            if !std::mem::replace(&mut said, true) {
                tracing::info!(
                    file = %escape_control(&first.display().to_string()),
                    files = writing.len(),
                    "waiting for a config file to be closed by its writer"
                );
            }
            // Its close is a change, which wakes this wait; the time limit
            // is checked every second.
            match self.woken.recv_timeout(Duration::from_secs(1)) {
                Ok(Wake::Stop(signal)) => return Some(signal),
                Err(RecvTimeoutError::Disconnected) => return None,
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            }
            if beat.elapsed() >= HEARTBEAT {
                beat = Instant::now();
                self.write_status();
            }
        }
    }

    fn refresh(&mut self) {
        if let Err(problem) = self.files.refresh() {
            tracing::warn!(problem = %escape_control(&problem), "file watcher");
        }
    }

    /// Whether the config set is what it was when `before` was stamped, and
    /// still: no file of it open for writing, none changed (an event about
    /// one of its files, or a different stamp now). When the result is to
    /// be acted on (`acting`), first waits long enough after the read for
    /// the events of any write made during it to arrive. Wake-ups read
    /// meanwhile are kept: a stop for the loop; changes are what this looks
    /// for (any other change the stamp shows, or was read).
    fn still(&mut self, before: &SetStamp, read_at: Instant, acting: bool) -> bool {
        if acting {
            // An event is sent a debounce time after its write, on a tick
            // of a quarter of that; polling has no events to wait for
            // beyond its own scan, and relies on the stamp.
            let debounce = Duration::from_millis(self.args.debounce_ms);
            let wait = if self.args.poll {
                self.quiet()
            } else {
                debounce + debounce / 4 + Duration::from_millis(20)
            };
            let until = read_at + wait;
            while let Some(left) = until
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            {
                // A long debounce is a long wait: the heartbeat goes on.
                match self.woken.recv_timeout(left.min(HEARTBEAT)) {
                    Ok(wake) => {
                        if self.changed_by(wake, before) {
                            return false;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) if left > HEARTBEAT => self.write_status(),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        while let Ok(wake) = self.woken.try_recv() {
            if self.changed_by(wake, before) {
                return false;
            }
        }
        if !self.files.being_written().is_empty() {
            return false;
        }
        let now = SetStamp::take(&self.args.config.path, &self.args.config.limits());
        if &now != before {
            tracing::debug!(
                files = %escape_control(
                    &before
                        .changed_files(&now)
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "the config set changed while it was read"
            );
            return false;
        }
        true
    }

    /// Whether a wake-up read during a reconcile says a file of the set
    /// changed; a stop is kept for the loop.
    fn changed_by(&mut self, wake: Wake, set: &SetStamp) -> bool {
        match wake {
            Wake::Stop(signal) => {
                self.stop.get_or_insert(signal);
                false
            }
            Wake::Trouble(_) => true,
            Wake::Changed(paths) => paths.iter().any(|p| match std::fs::metadata(p) {
                Ok(meta) => meta.is_file() && set.holds(&meta),
                // Gone: the stamp shows whether it was one of the set's.
                Err(_) => false,
            }),
        }
    }

    /// One reconcile from scratch.
    fn reconcile(&mut self, trigger: Trigger) -> Step {
        let started = Instant::now();
        tracing::debug!(trigger = %trigger.as_str(), "reconcile started");
        self.status.state = WatcherState::Reconciling;
        self.write_status();
        let reconciled = match self.reconcile_once() {
            Step::Done(reconciled) => reconciled,
            Step::Unsettled => {
                if !std::mem::replace(&mut self.unsettled, true) {
                    tracing::info!("the config set is changing; waiting for it to settle");
                } else {
                    tracing::debug!("the config set is still changing");
                }
                return Step::Unsettled;
            }
            Step::Skipped { retry } => {
                self.unsettled = false;
                return Step::Skipped { retry };
            }
        };
        self.unsettled = false;
        let ms = started.elapsed().as_millis() as u64;
        self.status.reconciles += 1;
        log_outcome(&reconciled, trigger, ms);
        let at = timestamp();
        if reconciled.kind.is_success() {
            self.status.last_success_at = Some(at.clone());
        }
        self.status.last = Some(LastReconcile {
            at,
            trigger,
            outcome: reconciled.kind,
            tenancy: reconciled.tenancy.clone(),
            serial: reconciled.serial,
            summary: reconciled.summary,
            ms,
            message: reconciled.message.clone(),
            config_digest: reconciled.digest.clone(),
            findings: reconciled.findings.clone(),
        });
        Step::Done(reconciled)
    }

    fn reconcile_once(&mut self) -> Step {
        let today = match today() {
            Ok(day) => day,
            Err(e) => {
                return Step::Done(Reconciled {
                    message: Some(e.message),
                    ..Reconciled::new(OutcomeKind::Failed)
                });
            }
        };
        // A file half written is not read at all; what is read is acted on
        // only if the set is still as it was stamped before the read.
        if !self.files.being_written().is_empty() {
            return Step::Unsettled;
        }
        let limits = self.args.config.limits();
        let before = SetStamp::take(&self.args.config.path, &limits);
        let checked =
            load_and_check_cached(&self.args.config.path, &limits, today, &mut self.parsed);
        let read_at = Instant::now();
        let digest = checked.loaded.digest.clone();
        let Some(desired) = &checked.model else {
            // The same files with the same findings fail the same way.
            let fingerprint = format!("invalid {digest} {:?}", checked.diagnostics);
            if self.failing.as_ref() == Some(&fingerprint) {
                tracing::debug!(
                    reason = "the config set is the same as the last failing one",
                    "skipped"
                );
                return Step::Skipped { retry: false };
            }
            if !self.still(&before, read_at, true) {
                return Step::Unsettled;
            }
            self.failing = Some(fingerprint);
            log_diagnostics(&checked.diagnostics, &checked.loaded.sources);
            let (errors, warnings) = super::summary_counts(&checked.diagnostics);
            let findings = status_findings(&checked.diagnostics, &checked.loaded.sources);
            // The first error, where it is: what `status` leads with.
            let first = checked
                .diagnostics
                .iter()
                .find(|d| d.is_error())
                .map(|d| finding_of(d, &checked.loaded.sources))
                .map(|f| match &f.location {
                    Some(at) => format!("; the first at {at}: error[{}]: {}", f.code, f.message),
                    None => format!("; the first: error[{}]: {}", f.code, f.message),
                })
                .unwrap_or_default();
            return Step::Done(Reconciled {
                message: Some(format!(
                    "the configuration is invalid: {}, {}{first}",
                    super::plural(errors, "error"),
                    super::plural(warnings, "warning")
                )),
                digest: Some(digest),
                errors,
                warnings,
                findings,
                ..Reconciled::new(OutcomeKind::Invalid)
            });
        };
        let tenancy = desired.tenancy.name.clone();
        let next_expiry = desired.next_expiry(today);
        // Every outcome from here on is about this tenancy and this content.
        let outcome = |kind| Reconciled {
            tenancy: Some(tenancy.clone()),
            digest: Some(digest.clone()),
            next_expiry,
            ..Reconciled::new(kind)
        };
        let fail = |kind, e: CliError| Reconciled {
            message: Some(e.message),
            ..outcome(kind)
        };
        let planned = plan_checked_cached(desired, digest.clone(), self.db, Some(&mut self.state));
        let (planned, store) = match planned {
            Ok(planned) => planned,
            Err(e) => return Step::Done(fail(OutcomeKind::Failed, e)),
        };
        // Kept beside the database once it is known to be supportctl's; a
        // first apply creates it, and the next reconcile saves the cache.
        if store.is_some() && !self.args.no_cache {
            save_parse_cache(&mut self.parsed, self.db);
        }
        let counts = Some(SummaryCounts::from(planned.plan.summary()));
        if planned.plan.is_empty() {
            if !self.still(&before, read_at, false) {
                return Step::Unsettled;
            }
            self.warn_once(&checked, &digest);
            self.failing = None;
            return Step::Done(Reconciled {
                serial: Some(planned.serial),
                summary: counts,
                ..outcome(OutcomeKind::NoChanges)
            });
        }
        let (plan, refusal) = guard(
            &planned.plan,
            planned.actual.as_ref(),
            today,
            self.args.allow_mass_delete,
        );
        let refused_as =
            |lineage: &str, serial: u64| format!("refused {digest} {lineage} {serial}");
        if let Some(e) = &refusal
            && plan.is_empty()
        {
            debug_assert_eq!(e.failure, Failure::MassDelete);
            let fingerprint = refused_as(&planned.lineage, planned.serial);
            if self.failing.as_ref() == Some(&fingerprint) {
                tracing::debug!(reason = "the same plan was refused before", "skipped");
                return Step::Skipped { retry: false };
            }
            if !self.still(&before, read_at, true) {
                return Step::Unsettled;
            }
            self.warn_once(&checked, &digest);
            self.failing = Some(fingerprint);
            return Step::Done(Reconciled {
                summary: counts,
                ..fail(
                    OutcomeKind::Refused,
                    refusal.unwrap_or_else(CliError::reported),
                )
            });
        }
        if !self.still(&before, read_at, true) {
            return Step::Unsettled;
        }
        self.warn_once(&checked, &digest);
        if let Some(store) = &store {
            match self.kept_by_another(store, &tenancy) {
                Ok(None) => {}
                Ok(Some(message)) => {
                    let fingerprint = format!("contended {digest} {message}");
                    if self.failing.as_ref() == Some(&fingerprint) {
                        tracing::debug!(
                            reason = "the tenancy is still kept by another watcher",
                            "skipped"
                        );
                        return Step::Skipped { retry: true };
                    }
                    self.failing = Some(fingerprint);
                    return Step::Done(Reconciled {
                        summary: counts,
                        message: Some(message),
                        ..outcome(OutcomeKind::Contended)
                    });
                }
                Err(e) => return Step::Done(fail(OutcomeKind::Failed, e)),
            }
        }
        // The state changes only through a checked plan: what this one leads
        // to passes every rule (checked while it is written), or nothing is.
        let desired = refusal.is_none().then_some(desired);
        for change in &plan.changes {
            tracing::debug!(
                address = %escape_control(&change.address()),
                action = change.action.as_str(),
                "change"
            );
        }
        tracing::debug!(changes = plan.changes.len(), "applying");
        match apply_planned(
            &planned,
            &plan,
            CheckAgainst { desired, today },
            store,
            self.db,
            &self.args.config.path,
            AppliedBy::Watch,
        ) {
            Ok((serial, lineage, result)) => {
                self.state.applied(result, &lineage, serial);
                match refusal {
                    // What takes access away has landed; the rest is refused
                    // until the config set changes or deletions are allowed.
                    Some(e) => {
                        self.failing = Some(refused_as(&lineage, serial));
                        Step::Done(Reconciled {
                            serial: Some(serial),
                            summary: Some(SummaryCounts::from(plan.summary())),
                            ..fail(OutcomeKind::Refused, e)
                        })
                    }
                    None => {
                        self.failing = None;
                        Step::Done(Reconciled {
                            serial: Some(serial),
                            summary: counts,
                            ..outcome(OutcomeKind::Applied)
                        })
                    }
                }
            }
            Err(e) => Step::Done(fail(OutcomeKind::Failed, e)),
        }
    }

    /// Why this watcher must not apply to `tenancy`, when another watcher
    /// keeps it: the latest apply by a watcher came from another host or
    /// another config set, and was made after this watcher started (or
    /// `--take-over` was not given). An apply by hand in between does not
    /// matter: the watcher puts its config set back over it, as ever (and
    /// says so).
    fn kept_by_another(
        &self,
        store: &crate::state::Store,
        tenancy: &str,
    ) -> Result<Option<String>, CliError> {
        let shown = escape_control(tenancy);
        if let Some(last) = store.last_apply(tenancy, Some(AppliedBy::Watch))?
            && let Some(source) = &last.source
            && (source.host != self.host || source.path != self.status.config)
        {
            let before_start = last
                .time
                .parse::<jiff::Timestamp>()
                .is_ok_and(|t| t < self.started);
            let other = format!(
                "the watcher of `{}` on host `{}` (pid {}) applied serial {} at {}",
                source.path, source.host, source.pid, last.serial, last.time
            );
            if !(self.args.take_over && before_start) {
                let hint = if before_start {
                    "stop one of the two watchers; if that one is gone for good, start this one with `--take-over`"
                } else {
                    "that watcher is running (it applied since this one started): stop one of the two"
                };
                return Ok(Some(format!(
                    "tenancy `{tenancy}` is kept by another watcher: {other}; this watcher does not apply over it\n  hint: {hint}"
                )));
            }
            tracing::warn!(tenancy = %shown, from = %escape_control(&other), "taking the tenancy over");
        }
        if let Some(last) = store.last_apply(tenancy, None)?
            && let Some(source) = &last.source
            && source.command == AppliedBy::Apply
        {
            tracing::warn!(
                tenancy = %shown,
                serial = last.serial,
                by = %format!(
                    "apply of `{}` on `{}` at {}",
                    escape_control(&source.path),
                    escape_control(&source.host),
                    escape_control(&last.time)
                ),
                "the state was last changed by hand; applying the watched config set over it"
            );
        }
        Ok(None)
    }

    /// Logs a valid config set's warnings, once per content.
    fn warn_once(&mut self, checked: &super::Checked, digest: &str) {
        if self.warned.as_deref() != Some(digest) {
            log_diagnostics(&checked.diagnostics, &checked.loaded.sources);
            self.warned = Some(digest.to_string());
        }
    }

    fn write_status(&mut self) {
        self.status.heartbeat_at = timestamp();
        let mut text = serde_json::to_string_pretty(&self.status).unwrap_or_default();
        text.push('\n');
        let protected = status_protected(self.db, &self.args.config.path);
        let written = crate::files::write_output(
            &self.status_file,
            &STATUS_FILE,
            text.as_bytes(),
            &protected,
        );
        if let Err(e) = written {
            // Said once: the heartbeat would repeat it every few seconds.
            if std::mem::replace(&mut self.status_unwritable, true) {
                return;
            }
            tracing::warn!(
                file = %escape_control(&self.status_file.display().to_string()),
                error = %e,
                "cannot write the status file"
            );
        } else {
            self.status_unwritable = false;
        }
    }
}

/// 0.5 s, 1 s, 2 s, … up to a minute.
fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(10);
    (Duration::from_millis(500) * factor).min(MAX_BACKOFF)
}

/// The monotonic instant at which `day` begins, read off the clock now;
/// never, when `SUPPORTCTL_TODAY` holds the day still.
fn instant_of_expiry(day: Date) -> Option<Instant> {
    if super::day_is_frozen() {
        return None;
    }
    let current = now().ok()?;
    let ahead = current.duration_until(day.start());
    let ahead = Duration::try_from(ahead).unwrap_or(Duration::ZERO);
    Instant::now().checked_add(ahead + EXPIRY_MARGIN)
}

fn log_outcome(r: &Reconciled, trigger: Trigger, ms: u64) {
    let tenancy = r.tenancy.as_deref().map(escape_control).unwrap_or_default();
    let counts = r
        .summary
        .unwrap_or_else(|| crate::plan::Summary::default().into());
    if r.kind.is_success() {
        macro_rules! reconciled {
            ($level:ident) => {
                tracing::$level!(
                    outcome = %r.kind.as_str(),
                    tenancy = %tenancy,
                    serial = r.serial.unwrap_or(0),
                    add = counts.add,
                    change = counts.change,
                    destroy = counts.destroy,
                    ms,
                    trigger = %trigger.as_str(),
                    "reconciled"
                )
            };
        }
        // An interval that finds nothing to do is the watcher's routine:
        // said at info, it would fill the log with no news.
        if r.kind == OutcomeKind::NoChanges && trigger == Trigger::Interval {
            reconciled!(debug);
        } else {
            reconciled!(info);
        }
        return;
    }
    if r.kind == OutcomeKind::Invalid {
        tracing::error!(
            outcome = %r.kind.as_str(),
            errors = r.errors,
            warnings = r.warnings,
            ms,
            trigger = %trigger.as_str(),
            "reconcile failed"
        );
        return;
    }
    let message = r.message.as_deref().map(escape_control).unwrap_or_default();
    tracing::error!(
        outcome = %r.kind.as_str(),
        tenancy = %tenancy,
        error = %message,
        ms,
        trigger = %trigger.as_str(),
        "reconcile failed"
    );
}

/// The first [`STATUS_FINDINGS`] findings, for the status file: each at
/// its file (absolute, so that `status` run elsewhere can find it), line and
/// column.
fn status_findings(diagnostics: &[Diagnostic], sources: &diag::Sources) -> Vec<Finding> {
    diagnostics
        .iter()
        .take(STATUS_FINDINGS)
        .map(|d| finding_of(d, sources))
        .collect()
}

fn finding_of(d: &Diagnostic, sources: &diag::Sources) -> Finding {
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

/// One log line per finding, with its place: `FILE:LINE:COL`.
fn log_diagnostics(diagnostics: &[Diagnostic], sources: &diag::Sources) {
    for d in diagnostics {
        let location = d.location.map_or_else(String::new, |l| {
            format!("{}:{}:{}", sources.path(l.file as usize), l.line, l.column)
        });
        let location = escape_control(&location);
        let message = escape_control(&d.message);
        if d.is_error() {
            tracing::error!(location = %location, code = %d.rule.code(), detail = %message, "config");
        } else {
            tracing::warn!(location = %location, code = %d.rule.code(), detail = %message, "config");
        }
    }
}

/// The watcher that writes `status_file` now, if one does: its status says
/// it runs, its heartbeat is fresh, and (on this host) its process is alive
/// and not this one.
fn running_watcher(status_file: &Path) -> Option<Status> {
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
        .is_none_or(|h| h == super::host_name());
    if here && (status.pid == std::process::id() || !process_is_alive(status.pid)) {
        return None;
    }
    Some(status)
}

/// Whether process `pid` runs (and is not a zombie), as `/proc` tells it;
/// where there is no `/proc`, it is taken to.
fn process_is_alive(pid: u32) -> bool {
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

/// `supportctl status`: what the watcher writing to this status file did
/// last, and whether it is healthy (exit 0) or not (exit 1).
pub fn status(args: &StatusArgs, db: &Path) -> Result<u8, CliError> {
    let path = args
        .status_file
        .clone()
        .unwrap_or_else(|| default_status_file(db));
    let text = crate::files::read_bounded(&path, MAX_STATUS_BYTES).map_err(|e| {
        if e.is_not_found() {
            CliError::error(format!(
                "no watcher status at `{}`: no `supportctl watch` has run with this database\n  hint: pass `--status-file` if the watcher was started with one",
                path.display()
            ))
        } else {
            CliError::error(format!("cannot read `{}`: {e}", path.display()))
        }
    })?;
    let status: Status = serde_json::from_slice(&text).map_err(|e| {
        CliError::error(format!(
            "`{}` is not a watcher status file: {e}",
            path.display()
        ))
    })?;
    let problem = problem_of(&status, now()?);
    match args.format {
        StatusFormat::Json => {
            let mut doc = serde_json::to_value(&status).unwrap_or_default();
            if let Some(map) = doc.as_object_mut() {
                map.insert("healthy".into(), problem.is_none().into());
                map.insert("problem".into(), problem.clone().into());
            }
            print_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            ))?;
        }
        StatusFormat::Text => print_stdout(&status_text(&status))?,
    }
    match problem {
        None => Ok(0),
        Some(problem) => Err(CliError::error(format!(
            "the watcher is not healthy: {problem}"
        ))),
    }
}

/// Why the watcher is not healthy, or `None` when it is.
fn problem_of(status: &Status, now: jiff::Timestamp) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_interval("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_interval("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_interval("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_interval("720h"), Ok(Duration::from_secs(720 * 3600)));
        for bad in ["0s", "-5s", "banana", "", "5", "1d"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_out_of_range_are_refused_with_the_range() {
        for (parse, too_long) in [
            (
                parse_interval as fn(&str) -> Result<Duration, String>,
                "721h",
            ),
            (parse_poll_interval, "61m"),
        ] {
            for bad in [
                too_long,
                "99ms",
                "9223372036854775807s",
                "99999999999999999999999s",
                "18446744073709551615ms",
            ] {
                let error = parse(bad).expect_err(bad);
                assert!(
                    error.contains("out of range: from 100ms to"),
                    "{bad}: {error}"
                );
            }
        }
        assert_eq!(parse_poll_interval("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_a_minute() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

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
