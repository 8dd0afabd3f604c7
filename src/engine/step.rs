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

use super::leader::Leadership;
use super::{CheckAgainst, Checked, Error, Planned, StateCache, apply_planned, guard};
use crate::config::{Limits, ParseCache, SetStamp};
use crate::diag::{self, Diagnostic, escape_control};
use crate::model::{Date, Model};
use crate::plan::Plan;
use crate::state::{AppliedBy, Location, Store};
use crate::status::{Finding, OutcomeKind, SummaryCounts, finding_of, status_findings};

/// When and on what day a config set was read.
struct Read {
    /// Its stamp before the read.
    before: SetStamp,
    /// When the read ended.
    at: Instant,
    today: Date,
}

/// What every outcome of a reconcile of a valid config set is about.
struct About {
    tenancy: String,
    digest: String,
    next_expiry: Option<Date>,
}

impl About {
    fn outcome(&self, kind: OutcomeKind) -> Reconciled {
        Reconciled {
            tenancy: Some(self.tenancy.clone()),
            digest: Some(self.digest.clone()),
            next_expiry: self.next_expiry,
            ..Reconciled::new(kind)
        }
    }

    fn fail(&self, kind: OutcomeKind, e: Error) -> Reconciled {
        Reconciled {
            message: Some(e.text()),
            ..self.outcome(kind)
        }
    }

    /// What a refusal of this content at `serial` of `lineage` is
    /// remembered as: the same plan is not refused again and again.
    fn refused_at(&self, lineage: &str, serial: u64) -> String {
        format!("refused {} {lineage} {serial}", self.digest)
    }
}

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
    /// A failure because the state or the lease moved on meanwhile.
    pub stale: bool,
    /// What the apply wrote, by action (create, update, delete, replace).
    pub applied: Vec<(&'static str, u64)>,
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
            stale: false,
            applied: Vec::new(),
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
    /// This watcher's config set, absolute, as the journal names it.
    config_path: String,
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
    /// The lease: only its holder applies.
    leadership: Leadership,
    /// The lease's epoch the last reconcile of a valid config set ran
    /// under as leader; `None` when it stood by.
    led_epoch: Option<u64>,
}

impl Reconciler {
    /// A reconciler for `settings` that applies only while `leadership`
    /// says it leads.
    pub fn new(settings: Settings, leadership: Leadership) -> Self {
        let config_path = std::path::absolute(&settings.config)
            .unwrap_or_else(|_| settings.config.clone())
            .display()
            .to_string();
        let parsed = if settings.no_cache {
            ParseCache::empty()
        } else {
            super::cache::open_parse_cache(&settings.db)
        };
        Reconciler {
            settings,
            config_path,
            failing: None,
            warned: None,
            parsed,
            state: StateCache::default(),
            leadership,
            led_epoch: None,
        }
    }

    /// Whether news of the lease calls for a reconcile: this watcher now
    /// leads under an epoch its last reconcile did not lead under (it took
    /// the lease), or it led and no longer does (it reports standing by).
    pub fn lease_news_matters(&self) -> bool {
        let standing = self.leadership.standing();
        if standing.leader {
            standing.lease.map(|l| l.epoch) != self.led_epoch
        } else {
            self.led_epoch.is_some()
        }
    }

    /// The lease this reconciler campaigns for.
    pub fn leadership(&self) -> &Leadership {
        &self.leadership
    }

    /// Stops campaigning, releasing the lease.
    pub fn stop(self) {
        self.leadership.stop();
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
        let read = Read {
            before,
            at: Instant::now(),
            today,
        };
        match &checked.model {
            None => self.invalid(&checked, &read, files),
            Some(desired) => self.valid(&checked, desired, &read, files),
        }
    }

    /// A config set that did not check: reported once per content.
    fn invalid(&mut self, checked: &Checked, read: &Read, files: &mut impl Settling) -> Outcome {
        let digest = &checked.loaded.digest;
        // The same files with the same findings fail the same way.
        let fingerprint = format!("invalid {digest} {:?}", checked.diagnostics);
        if self.failing.as_ref() == Some(&fingerprint) {
            tracing::debug!(
                reason = "the config set is the same as the last failing one",
                "skipped"
            );
            return Outcome::Skipped { retry: false };
        }
        if !files.still(&read.before, read.at, true) {
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
        Outcome::Done(Reconciled {
            message: Some(format!(
                "the configuration is invalid: {}, {}{first}",
                plural(errors, "error"),
                plural(warnings, "warning")
            )),
            digest: Some(digest.clone()),
            errors,
            warnings,
            findings,
            ..Reconciled::new(OutcomeKind::Invalid)
        })
    }

    /// A config set that checked: planned, guarded and applied, unless the
    /// same input failed before, the set changed while it was read, or
    /// another watcher keeps the tenancy. Long on purpose: those checks read
    /// in the order they must run, before anything is written.
    fn valid(
        &mut self,
        checked: &Checked,
        desired: &Model,
        read: &Read,
        files: &mut impl Settling,
    ) -> Outcome {
        let digest = checked.loaded.digest.clone();
        // Every outcome from here on is about this tenancy and this content.
        let about = About {
            tenancy: desired.tenancy.name.clone(),
            digest: digest.clone(),
            next_expiry: desired.next_expiry(read.today),
        };
        // Only the lease's holder goes on; the others keep their parse warm.
        if let Some(outcome) = self.stand_by(&about) {
            return outcome;
        }
        let db = &self.settings.db.clone();
        let planned = self
            .fenced_store()
            .and_then(|store| super::plan(desired, digest.clone(), Some(store), &mut self.state));
        let (planned, store) = match planned {
            Ok(planned) => planned,
            Err(e) => return Outcome::Done(about.fail(OutcomeKind::Failed, e)),
        };
        self.state.keep(&planned);
        // Kept beside the database once it is known to be supportctl's; a
        // first apply creates it, and the next reconcile saves the cache.
        if store.is_some() && !self.settings.no_cache {
            super::cache::save_parse_cache(&mut self.parsed, db);
        }
        let counts = Some(SummaryCounts::from(planned.plan.summary()));
        if planned.plan.is_empty() {
            if !files.still(&read.before, read.at, false) {
                return Outcome::Unsettled;
            }
            self.warn_once(checked, &digest);
            self.failing = None;
            return Outcome::Done(Reconciled {
                serial: Some(planned.serial),
                summary: counts,
                ..about.outcome(OutcomeKind::NoChanges)
            });
        }
        let (plan, refusal) = guard(
            &planned.plan,
            planned.actual.as_ref(),
            read.today,
            self.settings.allow_mass_delete,
        );
        if let Some(e) = &refusal
            && plan.is_empty()
        {
            debug_assert_eq!(e.kind, super::ErrorKind::MassDelete);
            let fingerprint = about.refused_at(&planned.lineage, planned.serial);
            if self.failing.as_ref() == Some(&fingerprint) {
                tracing::debug!(reason = "the same plan was refused before", "skipped");
                return Outcome::Skipped { retry: false };
            }
            if !files.still(&read.before, read.at, true) {
                return Outcome::Unsettled;
            }
            self.warn_once(checked, &digest);
            self.failing = Some(fingerprint);
            return Outcome::Done(Reconciled {
                summary: counts,
                ..about.fail(
                    OutcomeKind::Refused,
                    refusal.unwrap_or_else(super::Error::invalid_config),
                )
            });
        }
        if !files.still(&read.before, read.at, true) {
            return Outcome::Unsettled;
        }
        self.warn_once(checked, &digest);
        if let Some(store) = &store
            && let Some(contended) = self.contended(store, &about, counts)
        {
            return contended;
        }
        // The state changes only through a checked plan: what this one leads
        // to passes every rule (checked while it is written), or nothing is.
        let desired = refusal.is_none().then_some(desired);
        let against = CheckAgainst {
            desired,
            today: read.today,
        };
        Outcome::Done(self.apply(&about, &planned, &plan, refusal, against, store))
    }

    /// The outcome when this watcher does not hold the tenancy's lease:
    /// a replica stands by; a watcher of another config set is contended
    /// (said once); a lease that cannot be campaigned for is a failure,
    /// retried. `None` when this watcher leads.
    fn stand_by(&mut self, about: &About) -> Option<Outcome> {
        let wait = self.leadership.terms().renew_deadline;
        let standing = self.leadership.want(&about.tenancy, wait);
        if standing.leader {
            self.led_epoch = standing.lease.map(|l| l.epoch);
            return None;
        }
        self.led_epoch = None;
        let me = self.leadership.me();
        let held = standing.lease.as_ref().filter(|l| l.holder != me.id);
        let Some(lease) = held else {
            let why = match &standing.error {
                Some(error) => format!(
                    "cannot take part in the lease of tenancy `{}`: {error}",
                    about.tenancy
                ),
                None if standing.lease.is_some() => format!(
                    "this watcher could not renew its lease of tenancy `{}` within {}; it applies nothing until it renews",
                    about.tenancy,
                    crate::state::shown_duration(wait)
                ),
                None => format!(
                    "the lease of tenancy `{}` was not campaigned for within {}",
                    about.tenancy,
                    crate::state::shown_duration(wait)
                ),
            };
            self.failing = None;
            return Some(Outcome::Done(about.fail(
                OutcomeKind::Failed,
                Error::new(super::ErrorKind::State, why),
            )));
        };
        let leader = format!(
            "the watcher of `{}` on host `{}` (pid {}) leads it (lease epoch {})",
            lease.config, lease.host, lease.pid, lease.epoch
        );
        if lease.config != self.config_path {
            let fingerprint = format!("contended {} lease {}", about.digest, lease.epoch);
            if self.failing.as_ref() == Some(&fingerprint) {
                tracing::debug!(
                    reason = "the tenancy is still led by a watcher of another config set",
                    "skipped"
                );
                return Some(Outcome::Skipped { retry: true });
            }
            self.failing = Some(fingerprint);
            let error = Error::new(
                super::ErrorKind::Locked,
                format!(
                    "tenancy `{}` is kept by another watcher: {leader}; this watcher does not apply over it",
                    about.tenancy
                ),
            )
            .with_hint("replicas of one watcher watch the config set at the same path; stop one of the two watchers");
            return Some(Outcome::Done(about.fail(OutcomeKind::Contended, error)));
        }
        self.failing = None;
        Some(Outcome::Done(Reconciled {
            message: Some(format!(
                "standing by: {leader}; this replica applies only if it takes the lease"
            )),
            ..about.outcome(OutcomeKind::Standby)
        }))
    }

    /// The state, opened (created, for a first apply) for this leader's
    /// applies: each checks the lease first.
    fn fenced_store(&self) -> Result<Store, Error> {
        let Some(fence) = self.leadership.fence() else {
            return Err(Error::new(
                super::ErrorKind::Stale,
                "this watcher stopped leading before it planned; it applies nothing until it leads again",
            ));
        };
        let mut store = Store::open(&self.settings.db)?;
        store.set_fence(Some(fence));
        Ok(store)
    }

    /// The outcome when another watcher keeps the tenancy: not applied
    /// over, looked at again after a delay (and said once).
    fn contended(
        &mut self,
        store: &Store,
        about: &About,
        counts: Option<SummaryCounts>,
    ) -> Option<Outcome> {
        let message = match self.kept_by_another(store, &about.tenancy) {
            Ok(None) => return None,
            Ok(Some(kept)) => kept.text(),
            Err(e) => return Some(Outcome::Done(about.fail(OutcomeKind::Failed, e))),
        };
        let fingerprint = format!("contended {} {message}", about.digest);
        if self.failing.as_ref() == Some(&fingerprint) {
            tracing::debug!(
                reason = "the tenancy is still kept by another watcher",
                "skipped"
            );
            return Some(Outcome::Skipped { retry: true });
        }
        self.failing = Some(fingerprint);
        Some(Outcome::Done(Reconciled {
            summary: counts,
            message: Some(message),
            ..about.outcome(OutcomeKind::Contended)
        }))
    }

    /// Applies `plan` (all of `planned`, or what the guard let through when
    /// it refused the rest, `refusal`).
    fn apply(
        &mut self,
        about: &About,
        planned: &Planned,
        plan: &Plan,
        refusal: Option<Error>,
        against: CheckAgainst<'_>,
        store: Option<Store>,
    ) -> Reconciled {
        for change in &plan.changes {
            tracing::debug!(
                address = %escape_control(&change.address()),
                action = change.action.as_str(),
                "change"
            );
        }
        tracing::debug!(changes = plan.changes.len(), "applying");
        let applied = apply_planned(
            planned,
            plan,
            against,
            store,
            &self.settings.db,
            &self.settings.config,
            AppliedBy::Watch,
        );
        let (serial, lineage, result) = match applied {
            Ok(applied) => applied,
            Err(e) => {
                let stale = e.kind == super::ErrorKind::Stale;
                return Reconciled {
                    stale,
                    ..about.fail(OutcomeKind::Failed, e)
                };
            }
        };
        let written = written_by_action(plan);
        self.state.applied(result, &lineage, serial);
        match refusal {
            // What takes access away has landed; the rest is refused until
            // the config set changes or deletions are allowed.
            Some(e) => {
                self.failing = Some(about.refused_at(&lineage, serial));
                Reconciled {
                    serial: Some(serial),
                    summary: Some(SummaryCounts::from(plan.summary())),
                    applied: written,
                    ..about.fail(OutcomeKind::Refused, e)
                }
            }
            None => {
                self.failing = None;
                Reconciled {
                    serial: Some(serial),
                    summary: Some(SummaryCounts::from(planned.plan.summary())),
                    applied: written,
                    ..about.outcome(OutcomeKind::Applied)
                }
            }
        }
    }

    /// Why this watcher must not apply to `tenancy`, when the tenancy's
    /// latest watched apply came from a watcher of another config set: this
    /// watcher holds the lease, so that watcher is not running (or stands
    /// by); its tenancy is taken over only with `--take-over`, with a
    /// warning. Replicas (the same config set's path, on any host) hand
    /// over to each other freely. An apply by hand in between does not
    /// matter: the watcher puts its config set back over it, as ever (and
    /// says so).
    fn kept_by_another(&self, store: &Store, tenancy: &str) -> Result<Option<Error>, Error> {
        let shown = escape_control(tenancy);
        if let Some(last) = store.last_apply(tenancy, Some(AppliedBy::Watch))?
            && let Some(source) = &last.source
            && source.path != self.config_path
        {
            let other = format!(
                "the watcher of `{}` on host `{}` (pid {}) applied serial {} at {}",
                source.path, source.host, source.pid, last.serial, last.time
            );
            if !self.settings.take_over {
                return Ok(Some(
                    Error::new(
                        super::ErrorKind::Locked,
                        format!(
                            "tenancy `{tenancy}` is kept by another watcher: {other}; this watcher does not apply over it"
                        ),
                    )
                    .with_hint("stop one of the two watchers; if that one is gone for good, start this one with `--take-over`"),
                ));
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
    fn warn_once(&mut self, checked: &Checked, digest: &str) {
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

/// How many changes of each action `plan` makes, for the metrics.
fn written_by_action(plan: &Plan) -> Vec<(&'static str, u64)> {
    let mut counts: Vec<(&'static str, u64)> = Vec::new();
    for change in &plan.changes {
        let action = change.action.as_str();
        match counts.iter_mut().find(|(a, _)| *a == action) {
            Some((_, n)) => *n += 1,
            None => counts.push((action, 1)),
        }
    }
    counts
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}
