//! A watcher's side of leader election (the lease itself is
//! [`crate::state::lease`]): a thread of its own that campaigns for the
//! tenancy's lease every retry period, on a connection of its own, so that
//! a long reconcile or a wait never delays a renewal.
//!
//! The reconciler asks [`Leadership::standing`] before it plans: only a
//! leader whose last renewal began less than the renew deadline ago
//! applies, with its lease as the fence every apply transaction checks
//! ([`Leadership::fence`]). The renew deadline is shorter than the lease,
//! so a leader that cannot renew stops applying before its lease can
//! expire and a standby take it. A change of leader wakes the watch loop
//! (the `on_change` callback), so a new leader reconciles at once.
//! Stopping the thread releases the lease, so that a standby takes over
//! at its next campaign instead of after the lease runs out.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::diag::escape_control;
use crate::state::{Campaign, Fence, Lease, Location, Replica, StateError, Store};

/// How long stopping waits for the lease to be released.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The lease's timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    /// How long a lease lasts after each renewal, by the database's clock.
    pub duration: Duration,
    /// How long a leader goes on applying after the start of its last
    /// successful renewal: less than `duration`.
    pub renew_deadline: Duration,
    /// How often a leader renews and a standby tries to take the lease.
    pub retry_period: Duration,
}

impl Default for Terms {
    fn default() -> Self {
        Terms {
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl Terms {
    /// Why these timings cannot work, if they cannot: a leader must stop
    /// before its lease expires, and renew more than once before it must
    /// stop.
    pub fn problem(&self) -> Option<String> {
        let shown = |d: Duration| crate::state::shown_duration(d);
        if self.renew_deadline >= self.duration {
            return Some(format!(
                "`--renew-deadline` ({}) must be shorter than `--lease-duration` ({}): a leader must stop applying before its lease can expire",
                shown(self.renew_deadline),
                shown(self.duration)
            ));
        }
        if self.retry_period >= self.renew_deadline {
            return Some(format!(
                "`--retry-period` ({}) must be shorter than `--renew-deadline` ({}): a leader must get more than one try to renew",
                shown(self.retry_period),
                shown(self.renew_deadline)
            ));
        }
        None
    }
}

/// Where this watcher stands, as its last campaigns found.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    /// The tenancy campaigned for, once the config set named one.
    pub tenancy: Option<String>,
    /// Whether this watcher holds the lease and may apply: it won its last
    /// campaign, which began within the renew deadline.
    pub leader: bool,
    /// The lease as last seen (this watcher's when it leads).
    pub lease: Option<Lease>,
    /// When the last successful campaign began; the database answered then.
    pub answered_at: Option<Instant>,
    /// Why the last campaign failed, when it did.
    pub error: Option<String>,
    /// How many campaigns have finished (successful or not), to wait for
    /// the first one for a tenancy.
    pub campaigns: u64,
    /// The lease's expiry, in the database's milliseconds, when leading.
    pub expires_ms: Option<i64>,
}

struct Inner {
    standing: Standing,
    /// When this watcher last won a campaign: it may apply until
    /// `renew_deadline` after.
    won_at: Option<Instant>,
    /// Whether this watcher was last said to lead (logged and told to the
    /// loop).
    reported: bool,
    stop: bool,
    /// Whether the thread has ended (its lease released or given up).
    done: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    changed: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits on `guard` while `waiting` holds, until `until` at the latest.
    fn wait_until<'a>(
        &self,
        guard: MutexGuard<'a, Inner>,
        until: Instant,
        mut waiting: impl FnMut(&mut Inner) -> bool,
    ) -> MutexGuard<'a, Inner> {
        self.changed
            .wait_timeout_while(
                guard,
                until.saturating_duration_since(Instant::now()),
                |i| waiting(i),
            )
            .unwrap_or_else(|e| e.into_inner())
            .0
    }
}

impl Inner {
    /// Whether this watcher leads: it won its last campaign, which began
    /// less than `renew_deadline` ago.
    fn leads(&self, renew_deadline: Duration) -> bool {
        self.standing.leader && self.won_at.is_some_and(|at| at.elapsed() < renew_deadline)
    }
}

/// The campaigning thread, and what it found: a handle, cloned for
/// whoever reads the standing; any clone stops the thread.
#[derive(Clone)]
pub struct Leadership {
    shared: Arc<Shared>,
    terms: Terms,
    me: Replica,
}

impl Leadership {
    /// Starts campaigning, as `me` for the state at `db`, once
    /// [`Leadership::want`] names a tenancy; `on_change` is called from the
    /// thread when this watcher starts or stops leading.
    pub fn start(
        db: Location,
        me: Replica,
        terms: Terms,
        on_change: Box<dyn Fn() + Send>,
    ) -> std::io::Result<Leadership> {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                standing: Standing::default(),
                won_at: None,
                reported: false,
                stop: false,
                done: false,
            }),
            changed: Condvar::new(),
            thread: Mutex::new(None),
        });
        let campaigner = Campaigner {
            shared: Arc::clone(&shared),
            db,
            me: me.clone(),
            terms,
            on_change,
            store: None,
            said: None,
        };
        let thread = std::thread::Builder::new()
            .name("lease".into())
            .spawn(move || campaigner.run())?;
        *shared.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
        Ok(Leadership { shared, terms, me })
    }

    /// This watcher, as the lease names it.
    pub fn me(&self) -> &Replica {
        &self.me
    }

    pub fn terms(&self) -> Terms {
        self.terms
    }

    /// Campaigns for `tenancy` (giving up any other one first), and waits
    /// for the first campaign for it to finish, at most `wait`. Returns where
    /// this watcher stands.
    pub fn want(&self, tenancy: &str, wait: Duration) -> Standing {
        let mut inner = self.shared.lock();
        if inner.standing.tenancy.as_deref() != Some(tenancy) {
            inner.standing.tenancy = Some(tenancy.to_string());
            inner.standing.leader = false;
            inner.standing.lease = None;
            inner.won_at = None;
            let seen = inner.standing.campaigns;
            self.shared.changed.notify_all();
            inner = self.shared.wait_until(inner, Instant::now() + wait, |i| {
                i.standing.campaigns == seen && !i.stop
            });
        }
        self.standing_of(&inner)
    }

    /// Where this watcher stands now.
    pub fn standing(&self) -> Standing {
        let inner = self.shared.lock();
        self.standing_of(&inner)
    }

    fn standing_of(&self, inner: &Inner) -> Standing {
        Standing {
            leader: inner.leads(self.terms.renew_deadline),
            ..inner.standing.clone()
        }
    }

    /// The fence an apply must pass, while this watcher leads.
    pub fn fence(&self) -> Option<Fence> {
        let standing = self.standing();
        if !standing.leader {
            return None;
        }
        let lease = standing.lease?;
        Some(Fence {
            tenancy: lease.tenancy,
            epoch: lease.epoch,
            holder: lease.holder,
        })
    }

    /// Stops campaigning and releases the lease (when held), waiting for
    /// the release at most a few seconds. Once stopped, stays stopped.
    pub fn stop(&self) {
        self.stop_thread();
    }

    /// Asks the thread to stop and waits for it at most [`STOP_WAIT`]: a
    /// campaign stuck on a server that went away is left to the process's
    /// end (the lease then expires on its own).
    fn stop_thread(&self) {
        let mut inner = self.shared.lock();
        inner.stop = true;
        self.shared.changed.notify_all();
        inner = self
            .shared
            .wait_until(inner, Instant::now() + STOP_WAIT, |i| !i.done);
        if !inner.done {
            tracing::warn!("the lease thread did not end in time; the lease expires on its own");
            return;
        }
        drop(inner);
        let thread = self
            .shared
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// The thread's side.
struct Campaigner {
    shared: Arc<Shared>,
    db: Location,
    me: Replica,
    terms: Terms,
    on_change: Box<dyn Fn() + Send>,
    /// Its own connection, opened again after a failure.
    store: Option<Store>,
    /// The failure last logged, so a failing database is said once.
    said: Option<String>,
}

impl Campaigner {
    fn run(mut self) {
        let mut held: Option<String> = None;
        loop {
            let tenancy = {
                let mut inner = self.shared.lock();
                while inner.standing.tenancy.is_none() && !inner.stop {
                    inner = self
                        .shared
                        .changed
                        .wait(inner)
                        .unwrap_or_else(|e| e.into_inner());
                }
                if inner.stop {
                    break;
                }
                inner.standing.tenancy.clone().unwrap_or_default()
            };
            if let Some(old) = held.take_if(|old| *old != tenancy) {
                self.release(&old);
            }
            let began = Instant::now();
            let result = self.campaign(&tenancy);
            let changed = self.record(&tenancy, began, result, &mut held);
            if changed {
                (self.on_change)();
            }
            // Until the next campaign, or a stop, or another tenancy.
            let inner =
                self.shared
                    .wait_until(self.shared.lock(), began + self.terms.retry_period, |i| {
                        !i.stop && i.standing.tenancy.as_deref() == Some(tenancy.as_str())
                    });
            if inner.stop {
                break;
            }
        }
        if let Some(tenancy) = held {
            self.release(&tenancy);
        }
        let mut inner = self.shared.lock();
        inner.standing.leader = false;
        inner.won_at = None;
        inner.done = true;
        drop(inner);
        self.shared.changed.notify_all();
    }

    fn campaign(&mut self, tenancy: &str) -> Result<Campaign, StateError> {
        // A SQLite file is opened afresh each time (it is cheap): a state
        // moved aside and made anew under its name is then the one the
        // lease is kept in, as every reconcile opens it. A server keeps its
        // connection, opened again only after a failure.
        if matches!(self.db, Location::Sqlite(_)) {
            self.store = None;
        }
        let store = match &mut self.store {
            Some(store) => store,
            None => self.store.insert(Store::open(&self.db)?),
        };
        store.campaign(tenancy, &self.me, self.terms.duration)
    }

    /// Takes in a campaign's result; whether this watcher started or
    /// stopped leading.
    fn record(
        &mut self,
        tenancy: &str,
        began: Instant,
        result: Result<Campaign, StateError>,
        held: &mut Option<String>,
    ) -> bool {
        let mut inner = self.shared.lock();
        let was_leading = inner.reported;
        if inner.standing.tenancy.as_deref() != Some(tenancy) {
            // Another tenancy was asked for meanwhile: this result is moot,
            // but a lease it won is held until released.
            if let Ok(c) = &result
                && c.leader
            {
                *held = Some(tenancy.to_string());
            }
            return false;
        }
        inner.standing.campaigns += 1;
        match result {
            Ok(c) => {
                self.said = None;
                inner.standing.answered_at = Some(began);
                inner.standing.error = None;
                inner.standing.leader = c.leader;
                inner.standing.expires_ms = c.leader.then_some(c.lease.expires_ms);
                if c.leader {
                    inner.won_at = Some(began);
                    *held = Some(tenancy.to_string());
                } else {
                    inner.won_at = None;
                    *held = None;
                }
                let lease = &c.lease;
                if c.took {
                    tracing::info!(
                        tenancy = %escape_control(tenancy),
                        epoch = lease.epoch,
                        "leading: this watcher took the lease"
                    );
                } else if !c.leader
                    && inner
                        .standing
                        .lease
                        .as_ref()
                        .is_none_or(|l| l.epoch != lease.epoch || was_leading)
                {
                    tracing::info!(
                        tenancy = %escape_control(tenancy),
                        epoch = lease.epoch,
                        leader = %escape_control(&format!("{} on {} (pid {})", lease.config, lease.host, lease.pid)),
                        "standing by: another watcher leads"
                    );
                }
                inner.standing.lease = Some(c.lease);
            }
            Err(e) => {
                self.store = None;
                let message = e.message();
                inner.standing.error = Some(message.clone());
                if self.said.as_deref() != Some(message.as_str()) {
                    tracing::warn!(
                        tenancy = %escape_control(tenancy),
                        error = %escape_control(&message),
                        "cannot renew or take the lease"
                    );
                    self.said = Some(message);
                }
            }
        }
        let leading = inner.leads(self.terms.renew_deadline);
        inner.reported = leading;
        if was_leading && !leading {
            tracing::warn!(
                tenancy = %escape_control(tenancy),
                "stopped leading: the lease was lost or could not be renewed in time; no more applies"
            );
        }
        self.shared.changed.notify_all();
        was_leading != leading
    }

    fn release(&mut self, tenancy: &str) {
        let released = match &mut self.store {
            Some(store) => store.release(tenancy, &self.me),
            None => Store::open(&self.db).and_then(|mut s| s.release(tenancy, &self.me)),
        };
        match released {
            Ok(()) => tracing::info!(tenancy = %escape_control(tenancy), "released the lease"),
            Err(e) => tracing::warn!(
                tenancy = %escape_control(tenancy),
                error = %escape_control(&e.message()),
                "cannot release the lease; a standby takes it when it expires"
            ),
        }
    }
}
