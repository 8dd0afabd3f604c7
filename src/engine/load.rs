//! Loading and checking a config set: the first half of every command and
//! reconcile that reads one, and the rules applied on top of `check` (what
//! a config set with unreadable files may still be told).

use std::path::Path;

use crate::check;
use crate::config::{self, Limits};
use crate::diag::{self, Diagnostic};
use crate::model::{Date, Model};

/// A config set loaded and checked, with its findings.
pub struct Checked {
    pub loaded: config::Loaded,
    pub diagnostics: Vec<Diagnostic>,
    pub model: Option<Model>,
}

/// Loads and checks a config set: the first half of every command that reads one.
pub fn load_and_check(path: &Path, limits: &Limits, today: Date) -> Checked {
    load_and_check_cached(path, limits, today, &mut config::ParseCache::disabled())
}

/// [`load_and_check`], parsing only the files `cache` does not hold as they are.
pub fn load_and_check_cached(
    path: &Path,
    limits: &Limits,
    today: Date,
    cache: &mut config::ParseCache,
) -> Checked {
    let started = std::time::Instant::now();
    let (loaded, diagnostics) = config::load_cached(path, limits, cache);
    let loaded_in = started.elapsed();
    let checked = check_loaded(loaded, diagnostics, today);
    tracing::debug!(
        files = checked.loaded.sources.len(),
        parsed = cache.last_parsed,
        reused = cache.last_reused,
        load_ms = loaded_in.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "config set checked"
    );
    checked
}

/// Checks a loaded config set, given the findings of its load: the half of
/// [`load_and_check`] after the files are read. The findings come back
/// sorted, and the model only when none of them is an error.
pub fn check_loaded(
    mut loaded: config::Loaded,
    mut diagnostics: Vec<Diagnostic>,
    today: Date,
) -> Checked {
    let model = if loaded.raw.tenancies.is_empty() && loaded.incomplete {
        // The files that failed may hold the tenancy: "no tenancy" would mislead.
        None
    } else {
        let (model, findings) = check::check(std::mem::take(&mut loaded.raw), today);
        // Rules about references cannot be trusted when files are missing:
        // report only what the readable files show for certain.
        if loaded.incomplete {
            diagnostics.extend(findings.into_iter().filter(|d| !is_cross_reference(d)));
        } else {
            diagnostics.extend(findings);
        }
        model
    };
    name_the_file_without_a_tenancy(&mut diagnostics, &loaded.sources);
    diag::sort(&mut diagnostics);
    let model = model.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
    Checked {
        loaded,
        diagnostics,
        model,
    }
}

/// "No tenancy" in a config set of one file is about that file: say which,
/// and whether it is empty.
fn name_the_file_without_a_tenancy(diagnostics: &mut [Diagnostic], sources: &diag::Sources) {
    if sources.len() != 1 {
        return;
    }
    for d in diagnostics
        .iter_mut()
        .filter(|d| d.rule == diag::Rule::TenancyMissing)
    {
        // A text that changed since it was loaded is not known to be blank.
        let blank = sources.try_text(0).is_some_and(|text| {
            diag::lines(text).all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        });
        d.location = Some(diag::Location {
            file: 0,
            line: 1,
            column: 1,
            len: 0,
        });
        d.message = if blank {
            "the file is empty: a config set needs a `tenancy` section".to_string()
        } else {
            "the file has no `tenancy` section".to_string()
        };
    }
}

/// Findings that depend on the whole config set being readable.
fn is_cross_reference(d: &Diagnostic) -> bool {
    use diag::Rule::*;
    matches!(
        d.rule,
        TenancyMissing
            | AdminNotDeclared
            | UnknownUser
            | ApprovalWithoutMembership
            | ApproverNoLongerAdmin
            | LinkInactive
            | SingleCsiAdmin
            | LinkedUserPending
    )
}

/// How many of `diagnostics` are errors, and how many are warnings.
pub fn summary_counts(diagnostics: &[Diagnostic]) -> (usize, usize) {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    (errors, diagnostics.len() - errors)
}
