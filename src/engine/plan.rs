//! Planning against the state: the one way every command and the watcher
//! plan a checked config set, with the state a watcher keeps between its
//! reconciles.

use std::path::Path;

use super::{Error, ErrorKind, load};
use crate::config::{Limits, ParseCache};
use crate::model::{Date, Model};
use crate::plan::{self, Plan};
use crate::state::Location;
use crate::state::{Snapshot, Store};

/// A plan made from a config set, with what it was made against.
pub struct Planned {
    pub plan: Plan,
    pub actual: Option<Model>,
    pub lineage: String,
    pub serial: u64,
    pub digest: String,
}

/// How a command uses the state: `plan` only reads it (never creating,
/// migrating or writing the database), `apply` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// The database, opened when it exists, and the state of its tenancy when
/// it holds exactly one (the config set's, almost always; that is checked
/// when it is used). A tenancy that cannot be read here is read again, and
/// its error reported, once the config set has named its tenancy.
fn read_state_early(db: &Location, access: Access) -> Result<(Option<Store>, StateCache), Error> {
    let started = std::time::Instant::now();
    let store = match access {
        Access::Read => Store::open_read_only(db)?,
        Access::Write if db.exists()? => Some(Store::open(db)?),
        Access::Write => None,
    };
    let Some(store) = store else {
        return Ok((None, StateCache::default()));
    };
    let mut state = StateCache::default();
    if let Ok([only]) = store.tenancies().as_deref()
        && let Ok(Some(snapshot)) = store.load(only)
    {
        state.known = Some((store.lineage().to_owned(), snapshot));
    }
    tracing::debug!(
        read = state.known.is_some(),
        ms = started.elapsed().as_millis() as u64,
        "state read beside the check"
    );
    Ok((Some(store), state))
}

/// A tenancy's state as this process last read or wrote it, reused while
/// the database's lineage and the tenancy's serial stay the same (every
/// apply, by any process, advances the serial). `watch` keeps one; the
/// commands read the state afresh.
#[derive(Debug, Default)]
pub struct StateCache {
    known: Option<(String, Snapshot)>,
}

impl StateCache {
    /// Whether the cached state is that of `tenancy` in `store` still.
    fn is_current(&self, store: &Store, tenancy: &str) -> Result<bool, Error> {
        let Some((lineage, snapshot)) = &self.known else {
            return Ok(false);
        };
        Ok(lineage == store.lineage()
            && snapshot.model.tenancy.name == tenancy
            && store.serial(tenancy)? == Some(snapshot.serial))
    }

    /// The cached state of `tenancy` if it is still the state in `store`,
    /// taken out of the cache.
    fn take_current(&mut self, store: &Store, tenancy: &str) -> Result<Option<Snapshot>, Error> {
        Ok(match self.is_current(store, tenancy)? {
            true => self.known.take().map(|(_, snapshot)| snapshot),
            false => None,
        })
    }

    /// Keeps the state `planned` was made against, for the next plan (a
    /// copy: the plan holds it still).
    pub fn keep(&mut self, planned: &Planned) {
        if let Some(actual) = &planned.actual
            && !planned.lineage.is_empty()
        {
            self.known = Some((
                planned.lineage.clone(),
                Snapshot {
                    model: actual.clone(),
                    serial: planned.serial,
                },
            ));
        }
    }

    /// After `planned` was applied as `serial`: the state is the plan's
    /// result (the store's tests hold apply to `plan::apply_to`).
    pub fn applied(&mut self, result: Model, lineage: &str, serial: u64) {
        self.known = Some((
            lineage.to_string(),
            Snapshot {
                model: result,
                serial,
            },
        ));
    }
}

/// The database at `db` opened to write when it exists (`None` when there
/// is none: planning never creates it).
pub fn open_existing(db: &Location) -> Result<Option<Store>, Error> {
    Ok(if db.exists()? {
        Some(Store::open(db)?)
    } else {
        None
    })
}

/// Plans a checked config set against the tenancy's state in `store`
/// (`None`: there is no database yet; such a plan has an empty lineage, and
/// applies to any database where the tenancy is not yet). The state comes
/// from `state` when it holds the tenancy's current state (taken, not
/// copied: [`StateCache::keep`] puts it back), else it is read now.
pub fn plan(
    desired: &Model,
    digest: String,
    store: Option<Store>,
    state: &mut StateCache,
) -> Result<(Planned, Option<Store>), Error> {
    let name = &desired.tenancy.name;
    let snapshot = match &store {
        Some(store) => match state.take_current(store, name)? {
            Some(known) => Some(known),
            None => store.load(name)?,
        },
        None => None,
    };
    let (actual, serial) = match snapshot {
        Some(s) => (Some(s.model), s.serial),
        None => (None, 0),
    };
    if let Some((new, old)) = plan::rename_conflicts(desired, actual.as_ref()).first() {
        // The state read is still the state: kept for the next plan.
        if let (Some(store), Some(model)) = (&store, actual.clone()) {
            state.applied(model, store.lineage(), serial);
        }
        return Err(Error::new(
            ErrorKind::RenameConflict,
            format!(
                "cannot rename user `{old}` to `{new}`: both are in the state of tenancy `{}`",
                desired.tenancy.name
            ),
        )
        .with_hint(format!(
            "remove `previously: {old}` from user `{new}` if the rename was applied before, or delete one of the users first"
        )));
    }
    let started = std::time::Instant::now();
    let plan = plan::plan(desired, actual.as_ref());
    tracing::debug!(
        changes = plan.changes.len(),
        ms = started.elapsed().as_millis() as u64,
        "planned"
    );
    let planned = Planned {
        plan,
        actual,
        lineage: store
            .as_ref()
            .map(|s| s.lineage().to_string())
            .unwrap_or_default(),
        serial,
        digest,
    };
    Ok((planned, store))
}

/// A config set loaded and checked, and the state read beside it, ready to
/// plan: the first half of the one-shot `plan` and `apply`.
pub struct Prepared {
    pub checked: load::Checked,
    /// The parse cache used, to save once the database is known to be
    /// supportctl's (`None` with `no_cache`).
    pub cache: Option<ParseCache>,
    early: Result<(Option<Store>, StateCache), Error>,
}

/// Loads and checks the config set at `path` (through the parse cache beside
/// `db`, unless `no_cache`) while the state is read on a second thread:
/// neither needs the other until the plan. The state's errors wait until the
/// config set is known to be valid ([`Prepared::plan`]), as when read after
/// it.
pub fn prepare(
    path: &Path,
    limits: &Limits,
    db: &Location,
    today: Date,
    no_cache: bool,
    access: Access,
) -> Prepared {
    let mut cache = None;
    let (checked, early) = std::thread::scope(|scope| {
        let early = scope.spawn(|| read_state_early(db, access));
        cache = (!no_cache).then(|| super::cache::open_parse_cache(db));
        let checked = match cache.as_mut() {
            Some(cache) => load::load_and_check_cached(path, limits, today, cache),
            None => load::load_and_check(path, limits, today),
        };
        let early = early
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (checked, early)
    });
    Prepared {
        checked,
        cache,
        early,
    }
}

impl Prepared {
    /// Plans the checked config set against the state read beside it; an
    /// invalid config set is [`ErrorKind::InvalidConfig`] (its findings are
    /// in `checked`, for the caller to report first). Saves the parse cache
    /// beside a database that opened as supportctl's. Returns the plan, the
    /// store, the desired model and the parse cache. For the one-shot
    /// commands only: what the config set was loaded into may be left for
    /// the end of the process to free.
    pub fn plan(self, db: &Location) -> Result<PlannedSet, Error> {
        let Prepared {
            checked,
            mut cache,
            early,
        } = self;
        let Some(desired) = checked.model else {
            return Err(Error::invalid_config());
        };
        let (store, mut state) = early?;
        let (planned, store) = plan(&desired, checked.loaded.digest, store, &mut state)?;
        // Only beside a database that opened as supportctl's: never beside a
        // foreign file, nor where there is no database yet.
        if let (Some(cache), Some(_)) = (&mut cache, &store) {
            super::cache::save_parse_cache(cache, db);
        }
        // The files' texts are not needed past the check (their entries were
        // taken by it). Behind a small plan they are left for the end of the
        // process; a large plan's text, JSON and writes reuse their memory.
        if planned.plan.changes.len() < FREE_BEHIND_PLANS_OF {
            super::free_at_exit(checked.loaded.sources);
        }
        Ok(PlannedSet {
            planned,
            store,
            desired,
            cache,
        })
    }
}

/// What [`Prepared::plan`] gives.
pub struct PlannedSet {
    pub planned: Planned,
    pub store: Option<Store>,
    pub desired: Model,
    pub cache: Option<ParseCache>,
}

/// How many changes a plan has before what the config set was loaded into
/// is freed behind it rather than left for the end of the process.
pub const FREE_BEHIND_PLANS_OF: usize = 10_000;
