//! Saved plans (`plan -o FILE`, `apply FILE`): what a saved plan file is,
//! reading one, whether it fits the state it would be applied to, and
//! applying exactly it.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::apply::{Provenance, commit};
use super::git::GitState;
use super::{Error, ErrorKind};
use crate::model::Model;
use crate::plan::Plan;
use crate::render;
use crate::state::Location;
use crate::state::{AppliedBy, JournalPlan, Store};

/// A saved plan, as `plan -o` writes it: private (it names people and
/// phones), and recognised by the fields that open the JSON plan.
pub const PLAN_FILE: crate::files::Kind = crate::files::Kind {
    name: "a saved plan",
    recognise: |head| {
        let text = String::from_utf8_lossy(head);
        text.trim_start().starts_with('{')
            && ["\"format_version\"", "\"lineage\"", "\"config_digest\""]
                .iter()
                .all(|field| text.contains(field))
    },
    mode: 0o600,
    durable: true,
};

/// The largest saved plan read: a first plan of a million users is about
/// 1 GiB of JSON.
const MAX_PLAN_BYTES: u64 = 2 << 30;

/// What a plan may not be written over: the state's files and the config
/// set it was made from.
pub fn plan_protected(db: &Location, config: &Path) -> crate::files::Protected {
    super::protected(db).config_set(config)
}

/// The text of the saved plan at `path`, or `None` when `path` is not one
/// but a config set: not a regular file (a folder), or not a JSON object
/// with a `format_version`. (A config in YAML flow style also starts with
/// `{`, so the first byte alone does not tell.) A regular file that starts
/// as an object is read only within `MAX_PLAN_BYTES`.
pub fn saved_plan_text(path: &Path) -> Result<Option<String>, Error> {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    let starts_as_object = std::fs::File::open(path).is_ok_and(|file| {
        std::io::BufReader::new(file)
            .fill_buf()
            .is_ok_and(|head| head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
    });
    if !starts_as_object {
        return Ok(None);
    }
    let bytes = crate::files::read_bounded(path, MAX_PLAN_BYTES)
        .map_err(|e| Error::input(format!("cannot read the plan `{}`: {e}", path.display())))?;
    let is_plan = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
        .is_ok_and(|doc| doc.contains_key("format_version"));
    if !is_plan {
        return Ok(None);
    }
    String::from_utf8(bytes).map(Some).map_err(|_| {
        Error::input(format!(
            "cannot read the plan `{}`: it is not UTF-8 text",
            path.display()
        ))
    })
}

/// Why a saved plan does not fit the state it would be applied to, if it
/// does not: made against another database, before this one held its
/// tenancy, or at another serial.
fn unfit(saved: &render::SavedPlan, lineage: &str, found_serial: u64) -> Option<String> {
    let tenancy = crate::diag::escape_control(&saved.plan.tenancy);
    if saved.lineage.is_empty() {
        return (found_serial != 0).then(|| {
            format!(
                "it was made before any database held tenancy `{tenancy}`, and this one holds it at serial {found_serial} already"
            )
        });
    }
    if saved.lineage != lineage {
        return Some(format!(
            "it was made against another database (lineage {}; this one is lineage {lineage})",
            crate::diag::escape_control(&saved.lineage)
        ));
    }
    (saved.serial != found_serial).then(|| {
        format!(
            "it is stale: it was made at serial {} of tenancy `{tenancy}`, and the state has moved on to serial {found_serial}",
            saved.serial
        )
    })
}

/// A saved plan read from its file, sealed, and found to fit the state it
/// is about to be applied to.
pub struct Saved {
    pub saved: render::SavedPlan,
    /// The tenancy's state now (`None`: not in the state yet).
    pub actual: Option<Model>,
    text: String,
    path: PathBuf,
}

/// Reads the saved plan `text` (from the file at `path`) for `store`: its
/// seal must hold, and it must have been made against this state as it is
/// now (the store checks again inside its transaction). A plan that does
/// not fit is refused before it is shown.
pub fn open(path: &Path, text: String, store: &Store) -> Result<Saved, Error> {
    let saved = render::parse_plan_json(&text)
        .map_err(|e| Error::input(format!("`{}`: {e}", path.display())))?;
    if !saved.sealed {
        return Err(Error::new(
            ErrorKind::Refused,
            format!(
                "`{}` was changed after `plan -o` saved it (its plan_digest does not match what it says); nothing was changed",
                path.display()
            ),
        )
        .with_hint("plan again, and apply the file as it was saved"));
    }
    let snapshot = store.load(&saved.plan.tenancy)?;
    let found_serial = snapshot.as_ref().map_or(0, |s| s.serial);
    if let Some(why) = unfit(&saved, store.lineage(), found_serial) {
        return Err(Error::new(
            ErrorKind::Stale,
            format!(
                "`{}` cannot be applied to `{}`: {why}; nothing was changed",
                path.display(),
                store.location()
            ),
        )
        .with_hint("plan again against this database, and apply that plan"));
    }
    Ok(Saved {
        saved,
        actual: snapshot.map(|s| s.model),
        text,
        path: path.to_path_buf(),
    })
}

impl Saved {
    /// Applies the saved plan whole, or `cut`, the part of it the guard
    /// let through (checked with [`super::checked_result`] first), in one
    /// transaction; returns the tenancy's new serial.
    pub fn commit(&self, store: &mut Store, cut: Option<&Plan>) -> Result<u64, Error> {
        let saved = &self.saved;
        // A plan made before the database existed has no lineage: it fits any
        // database where its tenancy is not yet (the store checks serial 0).
        let lineage = if saved.lineage.is_empty() {
            store.lineage().to_string()
        } else {
            saved.lineage.clone()
        };
        // The journal keeps the saved file as it was, or the cut rendered.
        let journal = || {
            Ok(match cut {
                None => JournalPlan::new(&self.text),
                Some(cut) => JournalPlan::new(&render::plan_json_compact(
                    cut,
                    &lineage,
                    saved.serial,
                    &saved.config_digest,
                )),
            })
        };
        commit(
            store,
            cut.unwrap_or(&saved.plan),
            &lineage,
            saved.serial,
            journal,
            saved.config_digest.clone(),
            Provenance::of(
                AppliedBy::Apply,
                &self.path,
                GitState::commit_of(&self.path),
            ),
        )
    }
}
