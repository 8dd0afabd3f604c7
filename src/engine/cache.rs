//! The parse cache's place beside the state: where it is kept, opening it,
//! and saving it for the next run.

use std::path::PathBuf;

use crate::config;
use crate::diag;
use crate::state::Location;

/// Where the parse cache of the config sets planned against `db` is kept.
pub fn parse_cache_path(db: &Location) -> PathBuf {
    db.beside(".parse-cache")
}

/// The parse cache kept beside `db`, or an empty one when there is none it
/// can trust (why is logged at debug level; the files are then parsed).
pub fn open_parse_cache(db: &Location) -> config::ParseCache {
    let path = parse_cache_path(db);
    config::ParseCache::open(&path).unwrap_or_else(|why| {
        tracing::debug!(
            path = %diag::escape_control(&path.display().to_string()),
            reason = %diag::escape_control(&why),
            "parse cache not used"
        );
        config::ParseCache::empty()
    })
}

/// Keeps `cache` beside `db` for the next run. Callers save only once `db`
/// has opened as supportctl's database: never beside a foreign file, nor
/// where a plan found no database. A cache that cannot be written only
/// costs the next run time: logged, not failed.
pub fn save_parse_cache(cache: &mut config::ParseCache, db: &Location) {
    let path = parse_cache_path(db);
    let started = std::time::Instant::now();
    match cache.save(&path) {
        Ok(true) => tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "parse cache saved"
        ),
        Ok(false) => {}
        Err(e) => tracing::debug!(
            path = %diag::escape_control(&path.display().to_string()),
            error = %e,
            "parse cache not saved"
        ),
    }
}
