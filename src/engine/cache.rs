//! The parse cache's place beside the state: where it is kept, opening it,
//! and saving it for the next run.

use std::path::PathBuf;

use crate::config;
use crate::diag;
use crate::state::Location;

/// The parse cache `--parse-cache` names, for the whole process.
static CHOSEN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Keeps the parse cache at `path` instead of its default place, for every
/// command this process runs (`--parse-cache`). Set once, at start.
pub fn choose_parse_cache(path: PathBuf) {
    let _ = CHOSEN.set(path);
}

/// Where the parse cache of the config sets planned against `db` is kept:
/// where `--parse-cache` says, else beside a SQLite database, else (a
/// state on a server) in the user's cache folder, named after the state
/// (see [`Location::beside`]).
pub fn parse_cache_path(db: &Location) -> PathBuf {
    CHOSEN
        .get()
        .cloned()
        .unwrap_or_else(|| db.beside(".parse-cache"))
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
    // The user's cache folder may not exist yet (a state on a server);
    // made for its owner only.
    if let Some(folder) = path
        .parent()
        .filter(|f| !f.as_os_str().is_empty() && !f.exists())
    {
        use std::os::unix::fs::DirBuilderExt as _;
        if let Err(e) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)
        {
            tracing::debug!(error = %e, "parse cache folder not made");
        }
    }
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
