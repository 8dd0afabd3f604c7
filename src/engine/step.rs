//! One reconcile of a watcher, from scratch: load and check the config set
//! (through the parse cache kept across reconciles), plan against the state
//! (through the state cache), guard, and apply — with the same code as
//! `plan` and `apply`. [`Reconciler::once`] returns an [`Outcome`]; the
//! watch loop around it only decides when to call it.
//!
//! What is read is acted on only if the config set is still as it was when
//! the read began: the caller says so through [`Settling`], which knows the
//! file events.

use std::path::PathBuf;
use std::time::Instant;

use super::{CheckAgainst, Error, StateCache, apply_planned, guard};
use crate::config::{Limits, ParseCache, SetStamp};
use crate::diag::{self, Diagnostic, escape_control};
use crate::model::Date;
use crate::state::{AppliedBy, Location, Store};
use crate::status::{Finding, OutcomeKind, SummaryCounts, finding_of, status_findings};

/// What a reconcile asks of whoever watches the files.
pub trait Settling {
    /// Whether a file of the config set is open for writing now.
    fn being_written(&mut self) -> bool;

    /// Whether the config set is what it was when `before` was stamped, and
    /// still: no file of it open for writing, none changed. When the result
    /// is to be acted on (`acting`), first waits long enough after the read
    /// (at `read_at`) for the events of any write made during it to arrive.
    fn still(&mut self, before: &SetStamp, read_at: Instant, acting: bool) -> bool;
}

/// What one reconcile found, for the log, the status file and the timers.
#[derive(Debug)]
pub struct Reconciled {
    pub kind: OutcomeKind,
    pub tenancy: Option<String>,
    pub serial: Option<u64>,
    pub summary: Option<SummaryCounts>,
    /// Why it failed, with its hints.
    pub message: Option<String>,
    pub digest: Option<String>,
    /// The earliest expiry among the grants now held, when the config checked.
    pub next_expiry: Option<Date>,
    /// Findings of an invalid config set.
    pub errors: usize,
    pub warnings: usize,
    pub findings: Vec<Finding>,
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

/// What became of a reconcile.
#[derive(Debug)]
pub enum Outcome {
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

/// What a watcher reconciles, and how.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The config set.
    pub config: PathBuf,
    pub limits: Limits,
    /// The state.
    pub db: Location,
    pub allow_mass_delete: bool,
    /// Apply over a tenancy another watcher kept before this one started.
    pub take_over: bool,
    /// Neither read nor write the parse cache beside the database.
    pub no_cache: bool,
}

/// A watcher's reconciler: its settings, and its memory between reconciles.
pub struct Reconciler {
    settings: Settings,
    /// This watcher, as the journal names appliers: its host, and its
    /// config set's absolute path.
    host: String,
    config_path: String,
    /// When this watcher started, by the one clock.
    started: jiff::Timestamp,
    /// What the last failure was about, so the same failing input is not
    /// reported again and again.
    failing: Option<String>,
    /// The digest whose warnings were last logged.
    warned: Option<String>,
    /// The files parsed by the last reconcile: an edit reparses one file.
    parsed: ParseCache,
    /// The tenancy's state as last read or applied: read again only when
    /// its serial moved.
    state: StateCache,
}

impl Reconciler {
    /// A reconciler for `settings`, started now on `host`.
    pub fn new(settings: Settings, host: String) -> Self {
        let config_path = std::path::absolute(&settings.config)
            .unwrap_or_else(|_| settings.config.clone())
            .display()
            .to_string();
        let parsed = if settings.no_cache {
            ParseCache::new()
        } else {
            super::cache::open_parse_cache(&settings.db)
        };
        Reconciler {
            settings,
            host,
            config_path,
            started: super::clock::now().unwrap_or_else(|_| jiff::Timestamp::now()),
            failing: None,
            warned: None,
            parsed,
            state: StateCache::default(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// One reconcile from scratch.
    pub fn once(&mut self, files: &mut impl Settling) -> Outcome {
        let today = match super::clock::today() {
            Ok(day) => day,
            Err(e) => {
                return Outcome::Done(Reconciled {
                    message: Some(e.text()),
                    ..Reconciled::new(OutcomeKind::Failed)
                });
            }
        };
        // A file half written is not read at all; what is read is acted on
        // only if the set is still as it was stamped before the read.
        if files.being_written() {
            return Outcome::Unsettled;
        }
        let settings = &self.settings;
        let before = SetStamp::take(&settings.config, &settings.limits);
        let checked = super::load_and_check_cached(
            &settings.config,
            &settings.limits,
            today,
            &mut self.parsed,
        );
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
                return Outcome::Skipped { retry: false };
            }
            if !files.still(&before, read_at, true) {
                return Outcome::Unsettled;
            }
            self.failing = Some(fingerprint);
            log_diagnostics(&checked.diagnostics, &checked.loaded.sources);
            let (errors, warnings) = super::load::summary_counts(&checked.diagnostics);
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
            return Outcome::Done(Reconciled {
                message: Some(format!(
                    "the configuration is invalid: {}, {}{first}",
                    plural(errors, "error"),
                    plural(warnings, "warning")
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
        let fail = |kind, e: Error| Reconciled {
            message: Some(e.text()),
            ..outcome(kind)
        };
        let db = &self.settings.db.clone();
        let planned = super::open_existing(db)
            .and_then(|store| super::plan(desired, digest.clone(), store, &mut self.state));
        let (planned, store) = match planned {
            Ok(planned) => planned,
            Err(e) => return Outcome::Done(fail(OutcomeKind::Failed, e)),
        };
        self.state.keep(&planned);
        // Kept beside the database once it is known to be supportctl's; a
        // first apply creates it, and the next reconcile saves the cache.
        if store.is_some() && !self.settings.no_cache {
            super::cache::save_parse_cache(&mut self.parsed, db);
        }
        let counts = Some(SummaryCounts::from(planned.plan.summary()));
        if planned.plan.is_empty() {
            if !files.still(&before, read_at, false) {
                return Outcome::Unsettled;
            }
            self.warn_once(&checked, &digest);
            self.failing = None;
            return Outcome::Done(Reconciled {
                serial: Some(planned.serial),
                summary: counts,
                ..outcome(OutcomeKind::NoChanges)
            });
        }
        let (plan, refusal) = guard(
            &planned.plan,
            planned.actual.as_ref(),
            today,
            self.settings.allow_mass_delete,
        );
        let refused_as =
            |lineage: &str, serial: u64| format!("refused {digest} {lineage} {serial}");
        if let Some(e) = &refusal
            && plan.is_empty()
        {
            debug_assert_eq!(e.kind, super::ErrorKind::MassDelete);
            let fingerprint = refused_as(&planned.lineage, planned.serial);
            if self.failing.as_ref() == Some(&fingerprint) {
                tracing::debug!(reason = "the same plan was refused before", "skipped");
                return Outcome::Skipped { retry: false };
            }
            if !files.still(&before, read_at, true) {
                return Outcome::Unsettled;
            }
            self.warn_once(&checked, &digest);
            self.failing = Some(fingerprint);
            return Outcome::Done(Reconciled {
                summary: counts,
                ..fail(
                    OutcomeKind::Refused,
                    refusal.unwrap_or_else(super::Error::invalid_config),
                )
            });
        }
        if !files.still(&before, read_at, true) {
            return Outcome::Unsettled;
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
                        return Outcome::Skipped { retry: true };
                    }
                    self.failing = Some(fingerprint);
                    return Outcome::Done(Reconciled {
                        summary: counts,
                        message: Some(message),
                        ..outcome(OutcomeKind::Contended)
                    });
                }
                Err(e) => return Outcome::Done(fail(OutcomeKind::Failed, e)),
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
            db,
            &self.settings.config,
            AppliedBy::Watch,
        ) {
            Ok((serial, lineage, result)) => {
                self.state.applied(result, &lineage, serial);
                match refusal {
                    // What takes access away has landed; the rest is refused
                    // until the config set changes or deletions are allowed.
                    Some(e) => {
                        self.failing = Some(refused_as(&lineage, serial));
                        Outcome::Done(Reconciled {
                            serial: Some(serial),
                            summary: Some(SummaryCounts::from(plan.summary())),
                            ..fail(OutcomeKind::Refused, e)
                        })
                    }
                    None => {
                        self.failing = None;
                        Outcome::Done(Reconciled {
                            serial: Some(serial),
                            summary: counts,
                            ..outcome(OutcomeKind::Applied)
                        })
                    }
                }
            }
            Err(e) => Outcome::Done(fail(OutcomeKind::Failed, e)),
        }
    }

    /// Why this watcher must not apply to `tenancy`, when another watcher
    /// keeps it: the latest apply by a watcher came from another host or
    /// another config set, and was made after this watcher started (or
    /// `--take-over` was not given). An apply by hand in between does not
    /// matter: the watcher puts its config set back over it, as ever (and
    /// says so).
    fn kept_by_another(&self, store: &Store, tenancy: &str) -> Result<Option<String>, Error> {
        let shown = escape_control(tenancy);
        if let Some(last) = store.last_apply(tenancy, Some(AppliedBy::Watch))?
            && let Some(source) = &last.source
            && (source.host != self.host || source.path != self.config_path)
        {
            let before_start = last
                .time
                .parse::<jiff::Timestamp>()
                .is_ok_and(|t| t < self.started);
            let other = format!(
                "the watcher of `{}` on host `{}` (pid {}) applied serial {} at {}",
                source.path, source.host, source.pid, last.serial, last.time
            );
            if !(self.settings.take_over && before_start) {
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

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}
