//! `watch --listen`: what the watcher tells its metrics and its health
//! endpoints ([`crate::telemetry`]), from what its loop and its lease
//! thread saw. Nothing here asks the database or reads a file: a probe
//! answers from memory.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::engine::leader::Leadership;
use crate::engine::step::Reconciled;
use crate::status::{OutcomeKind, STALE_AFTER};
use crate::telemetry::{Metrics, Probe, ReconcileResult};

/// What the loop last did, shared with the probes.
pub struct Pulse {
    /// When the loop last turned (waited, reconciled, or kept its status
    /// file fresh), in milliseconds since `born`.
    turned_ms: AtomicU64,
    born: Instant,
    /// Whether a reconcile has ended, and the latest one succeeded.
    reconciled: AtomicBool,
    last: Mutex<Option<(OutcomeKind, String)>>,
}

impl Pulse {
    pub fn new() -> Pulse {
        Pulse {
            turned_ms: AtomicU64::new(0),
            born: Instant::now(),
            reconciled: AtomicBool::new(false),
            last: Mutex::new(None),
        }
    }

    /// The loop is turning.
    pub fn beat(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.turned_ms.store(ms, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let turned = Duration::from_millis(self.turned_ms.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(turned)
    }
}

/// The probes of a watcher.
pub struct WatchProbe {
    pub pulse: Arc<Pulse>,
    pub leadership: Leadership,
}

impl Probe for WatchProbe {
    /// Alive while the loop turns: it wakes at least every heartbeat, and
    /// keeps its status file fresh during a long wait; one silent for
    /// longer than a status file may be (a minute) is stuck.
    fn live(&self) -> Result<(), String> {
        let silent = self.pulse.silent_for();
        if silent > STALE_AFTER {
            return Err(format!(
                "the watch loop has not turned for {}",
                crate::state::shown_duration(silent)
            ));
        }
        Ok(())
    }

    /// Ready when the latest reconcile succeeded (or stood by) and the
    /// database answered the lease thread within the renew deadline.
    fn ready(&self) -> Result<(), String> {
        if !self.pulse.reconciled.load(Ordering::Relaxed) {
            return Err("no reconcile has ended yet".into());
        }
        let last = self.pulse.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((kind, why)) = last.as_ref()
            && !kind.is_success()
        {
            return Err(format!(
                "the last reconcile ({}) failed: {why}",
                kind.as_str()
            ));
        }
        drop(last);
        let standing = self.leadership.standing();
        let terms = self.leadership.terms();
        let answered = standing
            .answered_at
            .is_some_and(|at| at.elapsed() < terms.renew_deadline);
        if !answered {
            return Err(match standing.error {
                Some(e) => format!("the database does not answer: {e}"),
                None => format!(
                    "the database has not answered for {}",
                    crate::state::shown_duration(terms.renew_deadline)
                ),
            });
        }
        Ok(())
    }

    /// The lease's gauges as the lease thread last saw it: the loop records
    /// them only when it turns, which may be a heartbeat (10 s) apart, while
    /// a leader renews every retry period. Without this, a scrape between
    /// two turns shows the expiry of a renewal long past: with a lease
    /// shorter than the heartbeat, a healthy leader's lease as expired.
    fn refresh(&self, metrics: &Metrics) {
        lease(metrics, &self.leadership);
    }
}

/// The result label of a reconcile's outcome.
fn result_of(r: &Reconciled) -> ReconcileResult {
    match r.kind {
        OutcomeKind::Applied => ReconcileResult::Applied,
        OutcomeKind::NoChanges => ReconcileResult::NoChange,
        OutcomeKind::Invalid => ReconcileResult::InvalidConfig,
        OutcomeKind::Refused => ReconcileResult::Refused,
        OutcomeKind::Contended => ReconcileResult::Contended,
        OutcomeKind::Standby => ReconcileResult::Standby,
        OutcomeKind::Failed if r.stale => ReconcileResult::Stale,
        OutcomeKind::Failed => ReconcileResult::Error,
    }
}

/// Records a reconcile that ended, for the metrics and the probes.
pub fn reconciled(metrics: &Metrics, pulse: &Pulse, r: &Reconciled, took: Duration) {
    metrics.reconciled(result_of(r), took);
    if matches!(r.kind, OutcomeKind::Applied | OutcomeKind::NoChanges) {
        let now = crate::engine::clock::now().unwrap_or_else(|_| jiff::Timestamp::now());
        metrics.succeeded_at(now.as_millisecond() as f64 / 1000.0);
    }
    for (action, n) in &r.applied {
        metrics.applied(action, *n);
    }
    match r.kind {
        OutcomeKind::Invalid => metrics.config_valid(false),
        // A config set that checked: its digest is known.
        _ if r.digest.is_some() => {
            metrics.config_valid(true);
            metrics.next_grant_expiry(
                r.next_expiry
                    .map(|day| day.start().as_millisecond() as f64 / 1000.0),
            );
        }
        _ => {}
    }
    *pulse.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((
        r.kind,
        r.message
            .as_deref()
            .and_then(|m| m.lines().next())
            .unwrap_or("no detail")
            .to_string(),
    ));
    pulse.reconciled.store(true, Ordering::Relaxed);
}

/// The lease as the lease thread last saw it.
pub fn lease(metrics: &Metrics, leadership: &Leadership) {
    let standing = leadership.standing();
    metrics.lease(
        standing.leader,
        standing.lease.as_ref().map_or(0, |l| l.epoch),
        standing
            .lease
            .as_ref()
            .map(|l| l.expires_ms as f64 / 1000.0),
    );
}
