//! `watch` and `status`: reconcile continuously, and tell how it goes.
//!
//! The loop decides *when* to reconcile — at start, after a change under the
//! config path, every `--interval`, when a grant expires, and after a failure
//! that may pass ([`engine::schedule`]) — never *how*: each reconcile is
//! [`engine::step::Reconciler::once`], the same code as `plan` and `apply`.
//! Between reconciles it waits on one channel for file events and stop
//! signals ([`crate::events`]) with a timeout for its timers.
//!
//! What it did last is written to a status file beside the database (the
//! format is [`crate::status`]), so that `supportctl status` in another
//! process can tell a healthy watcher from a stuck or failing one.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use clap::Args;

use std::sync::Arc;

use super::telemetry::{self as wired, Pulse, WatchProbe};
use super::{CliError, ConfigArgs};
use crate::config::SetStamp;
use crate::diag::escape_control;
use crate::engine::leader::{Leadership, Terms};
use crate::engine::schedule::{self, EXPIRY_MARGIN, Ended, Schedule};
use crate::engine::step::{Outcome, Reconciled, Reconciler, Settings, Settling};
use crate::engine::{self, clock};
use crate::events::{FileWatch, Ignored, Mode, Wake};
use crate::state::{Location, Replica};
use crate::status::{
    HEARTBEAT, LastReconcile, OutcomeKind, ReplicaStatus, STATUS_FILE, Status, Trigger,
    WatcherState, running_watcher,
};
use crate::telemetry::{Endpoints, Handler, Metrics, Request, Response, Server};

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
    /// How long the tenancy's lease lasts after each renewal, by the
    /// database's clock: a standby takes over this long (and one
    /// `--retry-period`) after a leader dies. From 1s to 10m.
    #[arg(long, value_name = "DURATION", value_parser = parse_lease_time, default_value = "15s")]
    pub lease_duration: Duration,
    /// How long a leader goes on applying after it last renewed its lease;
    /// shorter than `--lease-duration`, so that it stops before another can
    /// take over. From 1s to 10m.
    #[arg(long, value_name = "DURATION", value_parser = parse_lease_time, default_value = "10s")]
    pub renew_deadline: Duration,
    /// How often a leader renews its lease and a standby tries to take it.
    /// From 100ms to 10m.
    #[arg(long, value_name = "DURATION", value_parser = parse_retry_period, default_value = "2s")]
    pub retry_period: Duration,
    /// Serve `/metrics` (Prometheus), `/healthz` and `/readyz` over HTTP at
    /// this address, e.g. `127.0.0.1:9464`, `0.0.0.0:9464`, `[::1]:9464`
    /// (the port defaults to 9464). Off unless given.
    #[arg(long, value_name = "ADDR", value_parser = crate::telemetry::parse_listen)]
    pub listen: Option<std::net::SocketAddr>,
    /// Also serve the web view of the state (as `supportctl serve` does)
    /// at `--listen`; the endpoints above stay open to scrapers and
    /// probes. An address that is not loopback needs `--auth-token-file`
    /// or `--insecure-no-auth`.
    #[arg(long, requires = "listen")]
    pub web: bool,
    #[command(flatten)]
    pub web_view: super::serve::WebArgs,
}

/// The range of `--lease-duration` and `--renew-deadline`.
const LEASE_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(600));
/// The range of `--retry-period`.
const RETRY_RANGE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(600));

fn parse_lease_time(text: &str) -> Result<Duration, String> {
    parse_duration(text, LEASE_RANGE)
}

fn parse_retry_period(text: &str) -> Result<Duration, String> {
    parse_duration(text, RETRY_RANGE)
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
pub(super) fn parse_duration(
    text: &str,
    (least, most): (Duration, Duration),
) -> Result<Duration, String> {
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

/// What the status file may not be: the state's files and the config set.
fn status_protected(db: &Location, config: &Path) -> crate::files::Protected {
    engine::protected(db).config_set(config)
}

/// The default status file: beside the database, named after it.
pub(super) fn default_status_file(db: &Location) -> PathBuf {
    db.beside(".status.json")
}

/// The status file, as this watcher keeps it.
struct StatusOut {
    file: PathBuf,
    status: Status,
    /// What no output may be written over.
    protected: crate::files::Protected,
    /// Whether writing the status file failed (and was reported).
    unwritable: bool,
    /// The lease, whose standing the status file reports.
    leadership: Option<Leadership>,
    /// The metrics and what the probes read, kept with the status: each
    /// write of it is a turn of the loop.
    metrics: Arc<Metrics>,
    pulse: Arc<Pulse>,
}

impl StatusOut {
    fn write(&mut self) {
        self.status.heartbeat_at = clock::timestamp();
        self.pulse.beat();
        if let Some(leadership) = self.leadership.as_ref() {
            wired::lease(&self.metrics, leadership);
            let standing = leadership.standing();
            self.status.replica = standing.tenancy.map(|tenancy| ReplicaStatus {
                id: leadership.me().id.clone(),
                tenancy,
                role: if standing.leader { "leader" } else { "standby" }.to_string(),
                epoch: standing.lease.map(|l| l.epoch),
            });
        }
        let mut text = serde_json::to_string_pretty(&self.status).unwrap_or_default();
        text.push('\n');
        let written =
            crate::files::write_output(&self.file, &STATUS_FILE, text.as_bytes(), &self.protected);
        if let Err(e) = written {
            // Said once: the heartbeat would repeat it every few seconds.
            if std::mem::replace(&mut self.unwritable, true) {
                return;
            }
            tracing::warn!(
                file = %escape_control(&self.file.display().to_string()),
                error = %e,
                "cannot write the status file"
            );
        } else {
            self.unwritable = false;
        }
    }
}

/// The file side of the watcher: events and stop signals on one channel,
/// and what a reconcile needs to know of them.
struct Files<'a> {
    args: &'a WatchArgs,
    woken: Receiver<Wake>,
    watch: FileWatch,
    /// A stop signal that came while a reconcile read the wake-ups.
    stop: Option<&'static str>,
    /// A change of leader that came meanwhile.
    lease_changed: bool,
}

/// The watcher: its settings, its reconciler and timers, and its status.
struct Watcher<'a> {
    out: StatusOut,
    files: Files<'a>,
    reconciler: Reconciler,
    schedule: Schedule,
    /// Whether the config set was last found changing (said once at info).
    unsettled: bool,
}

/// `supportctl watch`: refuses what it cannot do before anything starts
/// (a missing config path, a status file it may not write or that another
/// watcher writes), then wires the events, the reconciler, the schedule and
/// the status file together and runs until a stop signal. Long on purpose:
/// the wiring reads in the order it happens.
pub fn watch(args: &WatchArgs, db: &Location) -> Result<u8, CliError> {
    let root = &args.config.path;
    let terms = Terms {
        duration: args.lease_duration,
        renew_deadline: args.renew_deadline,
        retry_period: args.retry_period,
    };
    if let Some(problem) = terms.problem() {
        // A usage error, as clap's own: exit 2, with the usage line.
        use clap::CommandFactory as _;
        super::Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, problem)
            .exit();
    }
    let web = &args.web_view;
    if !args.web && (web.auth_token_file.is_some() || web.insecure_no_auth || web.show_phones) {
        use clap::CommandFactory as _;
        super::Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "`--auth-token-file`, `--insecure-no-auth` and `--show-phones` are for the web view: give `--web` (with `--listen`) too",
            )
            .exit();
    }
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
    if args.status_file.is_none() {
        // For a state on a server the default is in the user's cache
        // folder, which may not exist yet; made for its owner only.
        if let Some(folder) = status_file.parent().filter(|f| !f.exists()) {
            use std::os::unix::fs::DirBuilderExt as _;
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(folder);
        }
    }
    let protected = status_protected(db, root);
    crate::files::check_output(&status_file, &STATUS_FILE, &protected)
        .map_err(|e| super::output_error("the watcher's status", &status_file, e))?;
    if let Some(other) = running_watcher(&status_file) {
        return Err(CliError::error(format!(
            "`{}` is the status file of a watcher that is running: pid {} on host `{}`, watching `{}` since {}",
            status_file.display(),
            other.pid,
            other.host.as_deref().unwrap_or("unknown"),
            other.config,
            other.started_at
        ))
        .with_hint("give this watcher its own `--status-file` (two watchers of one tenancy undo each other's applies: stop one of them)"));
    }
    let (wakes, woken) = std::sync::mpsc::channel();
    let wakes_for_lease = wakes.clone();
    crate::events::on_stop_signals(wakes.clone())
        .map_err(|e| CliError::error(format!("cannot handle stop signals: {e}")))?;
    let ignored = Ignored::new(
        db.files()
            .into_iter()
            .map(|(file, _)| file)
            .chain([status_file.clone(), engine::cache::parse_cache_path(db)]),
    );
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
    let started = clock::now().unwrap_or_else(|_| jiff::Timestamp::now());
    let started_at = started.to_string();
    let host = engine::host_name();
    // The lease, on a thread of its own; a change of leader wakes the loop.
    let me = Replica::this_process(host.clone(), started_at.clone(), absolute(root));
    let on_change = {
        let wakes = wakes_for_lease;
        Box::new(move || {
            let _ = wakes.send(Wake::Lease);
        })
    };
    let leadership = Leadership::start(db.clone(), me, terms, on_change)
        .map_err(|e| CliError::error(format!("cannot start the lease thread: {e}")))?;
    let metrics = Arc::new(Metrics::new());
    let pulse = Arc::new(Pulse::new());
    pulse.beat();
    let server = match args.listen {
        None => None,
        Some(addr) => {
            let probe = Arc::new(WatchProbe {
                pulse: Arc::clone(&pulse),
                leadership: leadership.clone(),
            });
            let endpoints = Endpoints::new(Arc::clone(&metrics), probe);
            let site = if args.web {
                let (site, guarded) =
                    super::serve::site(&args.web_view, addr, db, status_file.clone())
                        .inspect_err(|_| leadership.stop())?;
                super::serve::warn_if_open(guarded, addr);
                Some(Arc::new(site))
            } else {
                None
            };
            // The web view's state read ahead of requests, as `serve` does.
            let refresher = match &site {
                Some(site) => Some(
                    crate::web::Refresher::start(Arc::clone(site), crate::web::REFRESH_EVERY)
                        .map_err(|e| {
                            leadership.stop();
                            CliError::error(format!("cannot start the web view's refresher: {e}"))
                        })?,
                ),
                None => None,
            };
            let handler = Arc::new(WatchSite { endpoints, site });
            let server = Server::start(addr, handler).map_err(|e| {
                leadership.stop();
                CliError::error(e.to_string())
                    .with_hint("give `--listen` an address of this host with a free port")
            })?;
            if args.web {
                tracing::info!(addr = %server.local_addr(), "serving /metrics, /healthz, /readyz and the web view");
            } else {
                tracing::info!(addr = %server.local_addr(), "serving /metrics, /healthz and /readyz");
            }
            Some((server, refresher))
        }
    };
    let reconciler = Reconciler::new(
        Settings {
            config: root.clone(),
            limits: args.config.limits(),
            db: db.clone(),
            allow_mass_delete: args.allow_mass_delete,
            take_over: args.take_over,
            no_cache: args.no_cache,
        },
        leadership.clone(),
    );
    let mut watcher = Watcher {
        out: StatusOut {
            file: status_file,
            status: Status {
                format_version: 1,
                pid: std::process::id(),
                host: Some(host),
                config: absolute(root),
                database: db.absolute(),
                started_at: started_at.clone(),
                heartbeat_at: started_at,
                state: WatcherState::Watching,
                next_wake_at: None,
                reconciles: 0,
                last: None,
                last_success_at: None,
                replica: None,
            },
            protected,
            unwritable: false,
            leadership: Some(leadership),
            metrics,
            pulse,
        },
        files: Files {
            args,
            woken,
            watch: files,
            stop: None,
            lease_changed: false,
        },
        reconciler,
        schedule: Schedule::new(args.interval),
        unsettled: false,
    };
    tracing::info!(
        path = %escape_control(&root.display().to_string()),
        db = %escape_control(&db.to_string()),
        mode = if args.poll { "poll" } else { "events" },
        debounce_ms = args.debounce_ms,
        "watching"
    );
    let stopped_by = watcher.run();
    // The lease first: a standby takes over at its next campaign.
    let Watcher {
        mut out,
        reconciler,
        ..
    } = watcher;
    reconciler.stop();
    out.status.state = WatcherState::Stopped;
    out.status.next_wake_at = None;
    out.write();
    if let Some((server, refresher)) = server {
        server.stop();
        drop(refresher);
    }
    tracing::info!(signal = stopped_by, "stopped");
    Ok(0)
}

impl Watcher<'_> {
    /// Reconciles whenever something asks for it, until a stop signal; returns
    /// the signal's name.
    fn run(&mut self) -> &'static str {
        let mut pending = Some(Trigger::Start);
        loop {
            if let Some(signal) = self.files.stop.take() {
                return signal;
            }
            // A change of leader read while a reconcile waited.
            if std::mem::take(&mut self.files.lease_changed)
                && pending.is_none()
                && self.reconciler.lease_news_matters()
            {
                pending = Some(Trigger::Lease);
            }
            if let Some(trigger) = pending.take() {
                let ended = match self.reconcile(trigger) {
                    Outcome::Unsettled => {
                        // The same trigger again, once the files are still.
                        if let Some(signal) = self.files.settle(&mut self.out) {
                            return signal;
                        }
                        self.files.refresh();
                        pending = Some(trigger);
                        continue;
                    }
                    Outcome::Skipped { retry } => Ended::Skipped { retry },
                    // Expiries follow the config that last checked; an
                    // invalid one has none to offer until it is fixed.
                    Outcome::Done(r) => Ended::Ran {
                        retries: r.kind.retries(),
                        next_expiry: r.next_expiry,
                    },
                };
                self.schedule.reconciled(ended, Instant::now());
                if let Some(signal) = self.files.stop.take() {
                    return signal;
                }
            }
            // Wait for the first of: a wake, the interval, a retry, an
            // expiry, the heartbeat. An expiry's instant is read off the
            // clock each round: the wall clock may have jumped while waiting.
            let expiry_at = self
                .schedule
                .next_expiry()
                .and_then(clock::instant_of_day)
                .and_then(|at| at.checked_add(EXPIRY_MARGIN));
            let wait = self.schedule.wait(Instant::now(), expiry_at);
            self.out.status.next_wake_at = wait.next.map(|(at, _)| {
                let ahead = at.saturating_duration_since(Instant::now());
                clock::now()
                    .ok()
                    .and_then(|n| n.checked_add(ahead).ok())
                    .map_or_else(String::new, |t| t.to_string())
            });
            self.out.status.state = WatcherState::Watching;
            self.out.write();
            let timeout = wait.until.saturating_duration_since(Instant::now());
            match self.files.woken.recv_timeout(timeout) {
                Ok(Wake::Stop(signal)) => {
                    return signal;
                }
                Ok(Wake::Changed(paths)) => {
                    tracing::debug!(paths = paths.len(), first = %escape_control(&paths[0].display().to_string()), "files changed");
                    if let Some(signal) = self.files.settle(&mut self.out) {
                        return signal;
                    }
                    self.files.refresh();
                    pending = Some(Trigger::Change);
                }
                Ok(Wake::Trouble(message)) => {
                    tracing::warn!(problem = %escape_control(&message), "file watcher");
                    self.files.refresh();
                    pending = Some(Trigger::Change);
                }
                Ok(Wake::Lease) => {
                    self.files.lease_changed = false;
                    if self.reconciler.lease_news_matters() {
                        pending = Some(Trigger::Lease);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(trigger) = wait.trigger {
                        self.schedule.fired(trigger);
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

    /// One reconcile, with its log line and its place in the status file.
    fn reconcile(&mut self, trigger: Trigger) -> Outcome {
        let started = Instant::now();
        tracing::debug!(trigger = %trigger.as_str(), "reconcile started");
        self.out.status.state = WatcherState::Reconciling;
        self.out.write();
        let mut settling = Settle {
            files: &mut self.files,
            out: &mut self.out,
        };
        let reconciled = match self.reconciler.once(&mut settling) {
            Outcome::Done(reconciled) => reconciled,
            Outcome::Unsettled => {
                if !std::mem::replace(&mut self.unsettled, true) {
                    tracing::info!("the config set is changing; waiting for it to settle");
                } else {
                    tracing::debug!("the config set is still changing");
                }
                return Outcome::Unsettled;
            }
            Outcome::Skipped { retry } => {
                self.unsettled = false;
                return Outcome::Skipped { retry };
            }
        };
        self.unsettled = false;
        let took = started.elapsed();
        wired::reconciled(&self.out.metrics, &self.out.pulse, &reconciled, took);
        let ms = took.as_millis() as u64;
        let status = &mut self.out.status;
        status.reconciles += 1;
        log_outcome(&reconciled, trigger, ms);
        let at = clock::timestamp();
        if reconciled.kind.is_success() {
            status.last_success_at = Some(at.clone());
        }
        status.last = Some(LastReconcile {
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
        Outcome::Done(reconciled)
    }
}

impl Files<'_> {
    fn debounce(&self) -> Duration {
        Duration::from_millis(self.args.debounce_ms)
    }

    /// After a change, waits until changes stop arriving for the quiet
    /// period (at most ten debounce times in all), so that a burst of saves
    /// becomes one reconcile; then for as long as a config file is open for
    /// writing (a writer that pauses between its writes), until its writer
    /// closes it or [`crate::events::WRITER_PATIENCE`] passes with no write.
    /// A stop signal ends the wait.
    fn settle(&mut self, out: &mut StatusOut) -> Option<&'static str> {
        let quiet = schedule::quiet(self.debounce());
        let give_up = Instant::now() + schedule::settle_limit(self.debounce());
        let mut beat = Instant::now();
        let mut said = false;
        loop {
            let wait = quiet.min(give_up.saturating_duration_since(Instant::now()));
            if !wait.is_zero() {
                match self.woken.recv_timeout(wait) {
                    Ok(Wake::Stop(signal)) => return Some(signal),
                    Ok(Wake::Changed(_) | Wake::Trouble(_)) => continue,
                    Ok(Wake::Lease) => {
                        self.lease_changed = true;
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return None,
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
            let writing = self.watch.being_written();
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
                Ok(Wake::Lease) => self.lease_changed = true,
                Err(RecvTimeoutError::Disconnected) => return None,
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            }
            if beat.elapsed() >= HEARTBEAT {
                beat = Instant::now();
                out.write();
            }
        }
    }

    fn refresh(&mut self) {
        if let Err(problem) = self.watch.refresh() {
            tracing::warn!(problem = %escape_control(&problem), "file watcher");
        }
    }

    /// Whether a wake-up read during a reconcile says a file of the set
    /// changed; a stop is kept for the loop.
    fn changed_by(&mut self, wake: Wake, set: &SetStamp) -> bool {
        match wake {
            Wake::Stop(signal) => {
                self.stop.get_or_insert(signal);
                false
            }
            Wake::Lease => {
                self.lease_changed = true;
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
}

/// What a reconcile sees of the files while it runs: their events, and the
/// status file to keep fresh during a long wait.
struct Settle<'a, 'b> {
    files: &'a mut Files<'b>,
    out: &'a mut StatusOut,
}

impl Settling for Settle<'_, '_> {
    fn being_written(&mut self) -> bool {
        !self.files.watch.being_written().is_empty()
    }

    /// Wake-ups read meanwhile are kept: a stop for the loop; changes are
    /// what this looks for (any other change the stamp shows, or was read).
    fn still(&mut self, before: &SetStamp, read_at: Instant, acting: bool) -> bool {
        let files = &mut *self.files;
        if acting {
            // An event is sent a debounce time after its write, on a tick
            // of a quarter of that; polling has no events to wait for
            // beyond its own scan, and relies on the stamp.
            let debounce = files.debounce();
            let wait = if files.args.poll {
                schedule::quiet(debounce)
            } else {
                debounce + debounce / 4 + Duration::from_millis(20)
            };
            let until = read_at + wait;
            while let Some(left) = until
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            {
                // A long debounce is a long wait: the heartbeat goes on.
                match files.woken.recv_timeout(left.min(HEARTBEAT)) {
                    Ok(wake) => {
                        if files.changed_by(wake, before) {
                            return false;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) if left > HEARTBEAT => self.out.write(),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        while let Ok(wake) = files.woken.try_recv() {
            if files.changed_by(wake, before) {
                return false;
            }
        }
        if !files.watch.being_written().is_empty() {
            return false;
        }
        let now = SetStamp::take(&files.args.config.path, &files.args.config.limits());
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
}

fn log_outcome(r: &Reconciled, trigger: Trigger, ms: u64) {
    let tenancy = r.tenancy.as_deref().map(escape_control).unwrap_or_default();
    let counts = r
        .summary
        .unwrap_or_else(|| crate::plan::Summary::default().into());
    if r.kind == OutcomeKind::Standby {
        let message = r.message.as_deref().map(escape_control).unwrap_or_default();
        macro_rules! standing_by {
            ($level:ident) => {
                tracing::$level!(
                    outcome = %r.kind.as_str(),
                    tenancy = %tenancy,
                    detail = %message,
                    ms,
                    trigger = %trigger.as_str(),
                    "reconciled"
                )
            };
        }
        if trigger == Trigger::Interval {
            standing_by!(debug);
        } else {
            standing_by!(info);
        }
        return;
    }
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

/// What `watch --listen` answers: the watcher's endpoints, open to
/// scrapers and probes, and with `--web` the web view on every other path
/// (behind its token, when it has one).
struct WatchSite {
    endpoints: Endpoints,
    site: Option<Arc<crate::web::Site>>,
}

impl WatchSite {
    fn is_endpoint(request: &Request<'_>) -> bool {
        matches!(&*request.path, "/metrics" | "/healthz" | "/readyz")
    }
}

impl Handler for WatchSite {
    fn handle(&self, request: &Request<'_>) -> Response {
        match &self.site {
            Some(site) if !WatchSite::is_endpoint(request) => site.handle(request),
            _ => self.endpoints.handle(request),
        }
    }

    fn body_limit(&self, request: &Request<'_>) -> usize {
        match &self.site {
            Some(site) if !WatchSite::is_endpoint(request) => site.body_limit(request),
            _ => 0,
        }
    }

    fn headers(&self) -> &'static [(&'static str, &'static str)] {
        match &self.site {
            Some(site) => site.headers(),
            None => self.endpoints.headers(),
        }
    }

    fn stack_size(&self) -> usize {
        match &self.site {
            Some(site) => site.stack_size(),
            None => self.endpoints.stack_size(),
        }
    }
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
}
