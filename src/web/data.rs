//! What the pages show, read from the state: a tenancy's [`View`] (its rows
//! and every user's access on the day) and its [`Journal`], each kept in
//! memory while the tenancy's serial (and the state's lineage, and the day)
//! holds, so that a page asks the state for one serial and reads it again
//! only after an apply; and the watcher's status beside the state.
//!
//! The state is opened read-only for each request ([`Reader::open`]):
//! never created, migrated or written, and a PostgreSQL server's connection
//! is not held between requests. A tenancy is read by one thread at a time:
//! requests that want the same new serial wait for that one read rather
//! than each reading it ([`Reader::fresh`]). [`Reader::refresh`] reads every
//! tenancy whose view is not of its current serial, so that the server's
//! refresher ([`super::Refresher`]) has the view read before anyone asks:
//! after the server starts, and after each apply.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::access::{self, Access};
use crate::model::{Date, Model};
use crate::render::{self, SavedPlan};
use crate::report::{self, LeaseReport};
use crate::state::{JournalRecord, Location, StateError, Store};
use crate::status::{MAX_STATUS_BYTES, Status, problem_of};

/// A tenancy as the pages show it on one day.
#[derive(Debug)]
pub struct View {
    pub lineage: String,
    pub serial: u64,
    pub today: Date,
    /// Its rows; phones redacted unless `--show-phones`.
    pub model: Model,
    /// Every user's access on `today`, in the order of their ids.
    pub access: Vec<Access>,
}

/// A tenancy's journal, oldest first.
#[derive(Debug)]
pub struct Journal {
    lineage: String,
    /// The tenancy's serial when it was read (`None`: retired).
    serial: Option<u64>,
    pub records: Vec<JournalRecord>,
}

/// Whether a tenancy is in the state.
#[derive(Debug)]
pub enum Found<T> {
    Here(T),
    /// Retired: only its journal (and SRs) remain.
    Retired,
    /// Not in the state at all.
    Missing,
}

/// The watcher that writes its status beside the state, as the overview
/// shows it.
#[derive(Debug)]
pub struct Watcher {
    /// Its status file, and why it is not healthy (`None`: healthy).
    pub status: Option<(Status, Option<String>)>,
    /// The tenancy's lease and replicas by the state's account (`None`:
    /// the state holds no lease of the tenancy).
    pub lease: Option<LeaseReport>,
}

/// The state the web view reads, and what it keeps of it between requests.
#[derive(Debug)]
pub struct Reader {
    db: Location,
    status_file: PathBuf,
    show_phones: bool,
    views: Mutex<HashMap<String, Slot>>,
    /// Told each time a read of a view ends.
    read_ended: Condvar,
    /// How many times a tenancy was read.
    reads: AtomicU64,
    journals: Mutex<HashMap<String, Arc<Journal>>>,
    /// The plan of the journal entry shown last, read from its JSON: a
    /// large one takes a while to read, and is shown a page at a time.
    plan: Mutex<Option<Arc<ReadPlan>>>,
}

/// A journal entry's plan as read from the journal (phones redacted unless
/// `--show-phones`), or why it cannot be read.
#[derive(Debug)]
pub struct ReadPlan {
    lineage: String,
    tenancy: String,
    serial: u64,
    pub plan: Result<SavedPlan, String>,
}

/// What the reader keeps of one tenancy.
#[derive(Debug, Default)]
struct Slot {
    view: Option<Arc<View>>,
    /// A thread is reading the tenancy.
    reading: bool,
}

/// Ends a read of a tenancy however it ends (a panic included), so that
/// the requests that wait for it do not wait for ever.
struct Reading<'a> {
    reader: &'a Reader,
    tenancy: &'a str,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        let mut views = self.reader.views();
        if let Some(slot) = views.get_mut(self.tenancy) {
            slot.reading = false;
        }
        self.reader.read_ended.notify_all();
    }
}

/// The state opened for one request.
pub struct Opened<'a> {
    reader: &'a Reader,
    pub store: Store,
}

impl Reader {
    pub fn new(db: Location, status_file: PathBuf, show_phones: bool) -> Reader {
        Reader {
            db,
            status_file,
            show_phones,
            views: Mutex::new(HashMap::new()),
            read_ended: Condvar::new(),
            reads: AtomicU64::new(0),
            journals: Mutex::new(HashMap::new()),
            plan: Mutex::new(None),
        }
    }

    pub fn db(&self) -> &Location {
        &self.db
    }

    /// The state, opened read-only; `None` when there is none yet.
    pub fn open(&self) -> Result<Option<Opened<'_>>, StateError> {
        Ok(Store::open_read_only(&self.db)?.map(|store| Opened {
            reader: self,
            store,
        }))
    }

    /// How many times a tenancy was read from the state.
    #[cfg(test)]
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn views(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.views.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The view of `tenancy` on `today` at `serial` (of the state
    /// `lineage`) or later: the one kept, or else read from `store` by this
    /// thread, or by the thread already reading it. `None`: the tenancy was
    /// retired meanwhile.
    fn fresh(
        &self,
        store: &Store,
        tenancy: &str,
        serial: u64,
        today: Date,
    ) -> Result<Option<Arc<View>>, StateError> {
        let lineage = store.lineage();
        let mut views = self.views();
        loop {
            let slot = views.entry(tenancy.to_string()).or_default();
            if let Some(view) = &slot.view
                && view.lineage == lineage
                && view.today == today
                && view.serial >= serial
            {
                return Ok(Some(Arc::clone(view)));
            }
            if !slot.reading {
                slot.reading = true;
                break;
            }
            views = self
                .read_ended
                .wait(views)
                .unwrap_or_else(|e| e.into_inner());
        }
        drop(views);
        let reading = Reading {
            reader: self,
            tenancy,
        };
        let view = self.read(store, tenancy, today)?;
        if let Some(view) = &view {
            let mut views = self.views();
            let slot = views.entry(tenancy.to_string()).or_default();
            // Keep the newest: a request may have read an older serial
            // while an apply landed.
            if slot.view.as_ref().is_none_or(|kept| {
                kept.lineage != view.lineage
                    || kept.today != view.today
                    || kept.serial <= view.serial
            }) {
                slot.view = Some(Arc::clone(view));
            }
        }
        drop(reading);
        Ok(view)
    }

    /// Reads the tenancy's view: its state in one read transaction, then
    /// every user's access, on the cores there are.
    fn read(
        &self,
        store: &Store,
        tenancy: &str,
        today: Date,
    ) -> Result<Option<Arc<View>>, StateError> {
        let started = Instant::now();
        self.reads.fetch_add(1, Ordering::Relaxed);
        let Some(snapshot) = store.load(tenancy)? else {
            return Ok(None);
        };
        let loaded = started.elapsed();
        let mut model = snapshot.model;
        if !self.show_phones {
            model.redact_phones();
        }
        let access = resolve_all(&model, today);
        tracing::info!(
            tenancy,
            serial = snapshot.serial,
            users = access.len(),
            load_s = loaded.as_secs_f64(),
            total_s = started.elapsed().as_secs_f64(),
            "web view: read the tenancy"
        );
        Ok(Some(Arc::new(View {
            lineage: store.lineage().to_string(),
            serial: snapshot.serial,
            today,
            model,
            access,
        })))
    }

    /// Reads every tenancy whose view is not of its current serial, and
    /// forgets those no longer in the state. Nothing to do when there is no
    /// state yet.
    pub fn refresh(&self, today: Date) -> Result<(), StateError> {
        let Some(store) = Store::open_read_only(&self.db)? else {
            return Ok(());
        };
        let tenancies = store.tenancies()?;
        self.views()
            .retain(|t, slot| slot.reading || tenancies.binary_search(t).is_ok());
        for tenancy in &tenancies {
            if let Some(serial) = store.serial(tenancy)? {
                self.fresh(&store, tenancy, serial, today)?;
            }
        }
        Ok(())
    }
}

/// Below this many users one thread resolves them all.
const PARALLEL_FROM: usize = 4096;

/// Every user's access on `today`, in the order of their ids: the users cut
/// into one run per core, each run resolved on a thread of its own.
fn resolve_all(model: &Model, today: Date) -> Vec<Access> {
    let resolve = |users: &[&String]| -> Vec<Access> {
        users
            .iter()
            .filter_map(|user| access::resolve(model, user, today).ok())
            .collect()
    };
    let users: Vec<&String> = model.users.keys().collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads == 1 || users.len() < PARALLEL_FROM {
        return resolve(&users);
    }
    let run = users.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = users
            .chunks(run)
            .map(|chunk| scope.spawn(move || resolve(chunk)))
            .collect();
        let mut all = Vec::with_capacity(users.len());
        for handle in handles {
            match handle.join() {
                Ok(part) => all.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    })
}

impl Opened<'_> {
    /// Whether `tenancy` is retired, or not in the state at all.
    fn absent<T>(&self, tenancy: &str) -> Result<Found<T>, StateError> {
        Ok(
            if self.store.retired_tenancies()?.iter().any(|t| t == tenancy) {
                Found::Retired
            } else {
                Found::Missing
            },
        )
    }

    /// The tenancy as it is now, on `today`.
    pub fn view(&self, tenancy: &str, today: Date) -> Result<Found<Arc<View>>, StateError> {
        let Some(serial) = self.store.serial(tenancy)? else {
            return self.absent(tenancy);
        };
        match self.reader.fresh(&self.store, tenancy, serial, today)? {
            Some(view) => Ok(Found::Here(view)),
            None => self.absent(tenancy),
        }
    }

    /// The tenancy's journal, of a retired tenancy too.
    pub fn journal(&self, tenancy: &str) -> Result<Found<Arc<Journal>>, StateError> {
        let serial = self.store.serial(tenancy)?;
        let lineage = self.store.lineage();
        {
            let journals = self
                .reader
                .journals
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(journal) = journals.get(tenancy)
                && journal.serial == serial
                && journal.lineage == lineage
            {
                return Ok(Found::Here(Arc::clone(journal)));
            }
        }
        let records = self.store.history(Some(tenancy))?;
        if serial.is_none() && records.is_empty() {
            return self.absent(tenancy);
        }
        let journal = Arc::new(Journal {
            lineage: lineage.to_string(),
            // The serial read before the journal: an apply that landed
            // between the two reads moved it, so the journal is read again
            // next time.
            serial,
            records,
        });
        self.reader
            .journals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenancy.to_string(), Arc::clone(&journal));
        Ok(Found::Here(journal))
    }

    /// The plan of `record`, an entry of `tenancy`'s journal: the one read
    /// last when it is the same entry, or else read now.
    pub fn plan(&self, tenancy: &str, record: &JournalRecord) -> Arc<ReadPlan> {
        let lineage = self.store.lineage();
        let mut kept = self.reader.plan.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(read) = kept.as_ref()
            && read.serial == record.serial
            && read.tenancy == tenancy
            && read.lineage == lineage
        {
            return Arc::clone(read);
        }
        let plan = render::parse_plan_json(&record.plan_json).map(|mut saved| {
            if !self.reader.show_phones {
                saved.plan.redact_phones();
            }
            saved
        });
        let read = Arc::new(ReadPlan {
            lineage: lineage.to_string(),
            tenancy: tenancy.to_string(),
            serial: record.serial,
            plan,
        });
        *kept = Some(Arc::clone(&read));
        read
    }

    /// The watcher of `tenancy`: its status file beside the state, when it
    /// is about this tenancy, and the tenancy's lease in the state.
    pub fn watcher(&self, tenancy: &str, now: jiff::Timestamp) -> Watcher {
        let status = crate::files::read_bounded(&self.reader.status_file, MAX_STATUS_BYTES)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Status>(&bytes).ok())
            .filter(|s| {
                let about = s
                    .replica
                    .as_ref()
                    .map(|r| r.tenancy.as_str())
                    .or_else(|| s.last.as_ref().and_then(|l| l.tenancy.as_deref()));
                about.is_none_or(|t| t == tenancy)
            });
        let leases = self.store.leases(Some(tenancy)).ok();
        let lease = match (&status, &leases) {
            (Some(status), _) => Some(report::lease_report(
                status,
                &self.reader.db.absolute(),
                |t| match &leases {
                    Some(found) if t == tenancy => Ok(found.clone()),
                    _ => self.store.leases(Some(t)).map_err(|e| e.message()),
                },
            )),
            (None, Some(found)) if found.leases.iter().any(|l| l.tenancy == tenancy) => {
                Some(report::lease_of(None, tenancy, found))
            }
            (None, _) => None,
        };
        let status = status.map(|s| {
            let problem = problem_of(&s, now).or_else(|| lease.as_ref()?.problem.clone());
            (s, problem)
        });
        Watcher { status, lease }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_users_access_is_resolved_in_the_order_of_their_ids_on_any_number_of_threads() {
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme-prod.yaml");
        let today = Date::parse("2030-01-20").unwrap();
        let checked =
            crate::engine::load_and_check(&example, &crate::config::Limits::default(), today);
        let mut model = checked.model.unwrap();
        // Enough users for several threads, some with support accounts.
        let bob = model.users["bob"].clone();
        let account = model.support_accounts["dankim"].clone();
        for n in 0..2 * PARALLEL_FROM {
            let id = format!("u{n:05}");
            model.users.insert(id.clone(), bob.clone());
            if n % 3 == 0 {
                model.support_accounts.insert(id, account.clone());
            }
        }
        let one_by_one: Vec<Access> = model
            .users
            .keys()
            .map(|user| access::resolve(&model, user, today).unwrap())
            .collect();
        let all = resolve_all(&model, today);
        assert_eq!(all.len(), model.users.len());
        assert_eq!(all, one_by_one);
    }
}
