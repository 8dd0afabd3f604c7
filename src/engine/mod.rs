//! The reconcile use case, between the command line and the pipeline: load
//! and check a config set, plan it against the state, guard the plan, apply
//! it with its journal entry, and the watcher's one reconcile. Everything
//! that runs it — the commands in `cli`, a watcher, a future server — calls
//! this module; nothing here prints or knows about flags.
//!
//! - [`load`]: a config set loaded and checked ([`Checked`]).
//! - [`cache`]: the parse cache's place beside the state.
//! - [`plan()`] and [`Prepared`]: the one way to plan against the state,
//!   with the [`StateCache`] a watcher keeps.
//! - [`apply`]: the mass-delete [`guard`], the check of the state a plan
//!   leads to, the journal entry and the store's transaction.
//! - [`saved`]: plans saved by `plan -o` and applied by `apply FILE`.
//! - [`base`] and [`git`]: a config set at a git ref (`plan --base`), and
//!   the git side of a journal entry.
//! - [`retire`]: a retirement's journal entry and transaction.
//! - [`step`]: one reconcile of a watcher, `Reconciler::once`.
//! - [`schedule`]: when a watcher reconciles next (pure timers).
//! - [`clock`]: the one clock.
//! - [`Error`]: typed failures with hints as data.

pub mod apply;
pub mod base;
pub mod cache;
pub mod clock;
mod error;
pub mod git;
pub mod leader;
pub mod load;
mod plan;
pub mod retire;
pub mod saved;
pub mod schedule;
pub mod step;

use std::path::Path;

use crate::state::Location;

pub use apply::{CheckAgainst, apply_planned, apply_source, checked_result, guard, host_name};
pub use error::{Error, ErrorKind};
pub use load::{Checked, check_loaded, load_and_check, load_and_check_cached};
pub use plan::{Access, Planned, PlannedSet, Prepared, StateCache, open_existing, plan, prepare};

/// The files no output may be: the state database `db`, its side files
/// and the parse cache beside it (see `files`). A command adds its config
/// set.
pub fn protected(db: &Location) -> crate::files::Protected {
    let named = |what: &str, path: &Path| format!("{what} `{}`", path.display());
    let mut protected = crate::files::Protected::new();
    for (file, what) in db.files() {
        protected = protected.file(&file, named(what, &file));
    }
    let cache = cache::parse_cache_path(db);
    protected.file(&cache, named("the parse cache", &cache))
}

/// Leaves `value` for the operating system to reclaim when the process
/// exits, which the one-shot commands do right after: freeing a large model
/// allocation by allocation takes longer than the whole plan of a small
/// change (a tenth of a second at 100,000 users). Only for what lives until
/// the command ends; never in `watch`.
pub fn free_at_exit<T>(value: T) {
    std::mem::forget(value);
}
