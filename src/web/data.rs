//! What the pages show, read from the state: a tenancy's [`View`] (its rows
//! and every user's access on the day) and its [`Journal`], each kept in
//! memory while the tenancy's serial (and the state's lineage, and the day)
//! holds, so that a page asks the state for one serial and reads it again
//! only after an apply; and the watcher's status beside the state.
//!
//! The state is opened read-only for each request ([`Reader::open`]):
//! never created, migrated or written, and a PostgreSQL server's connection
//! is not held between requests.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::access::{self, Access};
use crate::model::{Date, Model};
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
    views: Mutex<HashMap<String, Arc<View>>>,
    journals: Mutex<HashMap<String, Arc<Journal>>>,
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
            journals: Mutex::new(HashMap::new()),
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
}

impl Opened<'_> {
    /// Whether phones are shown (`--show-phones`) rather than redacted.
    pub fn show_phones(&self) -> bool {
        self.reader.show_phones
    }

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
        let lineage = self.store.lineage();
        let mut views = self.reader.views.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(view) = views.get(tenancy)
            && view.serial == serial
            && view.today == today
            && view.lineage == lineage
        {
            return Ok(Found::Here(Arc::clone(view)));
        }
        // Another reader's load may race this one: the last one kept wins,
        // and each is whole (one read transaction).
        drop(views);
        let Some(snapshot) = self.store.load(tenancy)? else {
            return self.absent(tenancy);
        };
        let mut model = snapshot.model;
        if !self.reader.show_phones {
            model.redact_phones();
        }
        let access = model
            .users
            .keys()
            .filter_map(|user| access::resolve(&model, user, today).ok())
            .collect();
        let view = Arc::new(View {
            lineage: lineage.to_string(),
            serial: snapshot.serial,
            today,
            model,
            access,
        });
        views = self.reader.views.lock().unwrap_or_else(|e| e.into_inner());
        views.insert(tenancy.to_string(), Arc::clone(&view));
        Ok(Found::Here(view))
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
