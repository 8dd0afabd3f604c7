//! The parse cache: each file's entries and findings kept between loads of
//! the same config set, so that a load after an edit parses only the files
//! whose bytes changed. This module is its interface; [`file`] is its
//! binary form and the file that keeps it between runs.

mod file;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

pub(super) use file::{Encoded, decode, encode};

/// What one file contributed when it was last parsed: its entries and
/// findings, valid for exactly those bytes at that place in the set.
#[derive(Debug)]
pub(super) struct ParsedFile {
    /// The file's index in the set's sources, which its locations name.
    pub(super) index: usize,
    pub(super) hash: [u8; 32],
    /// Whether it was read whole, its entries and its findings, in the
    /// cache's encoding: decoding makes the copy a load hands out.
    pub(super) encoded: Encoded,
}

/// Parsed files kept between loads of the same config set — in memory by
/// `watch`, and between runs in a file ([`ParseCache::open`],
/// [`ParseCache::save`]) — so that a load after an edit parses only the
/// files whose bytes changed.
///
/// A cache is made in one of two states, named for what it keeps:
/// [`ParseCache::disabled`] keeps nothing (every load parses every file, and
/// nothing is held in memory past it), [`ParseCache::empty`] keeps every file
/// it parses, starting from none.
///
/// An entry is used only when the file has the same path, the same SHA-256
/// of its content and the same index in the set (locations name the index);
/// anything else is parsed again. Size and time are never trusted.
#[derive(Debug)]
pub struct ParseCache {
    /// Whether to keep what is parsed: false for a disabled cache.
    keep: bool,
    pub(super) files: HashMap<PathBuf, ParsedFile>,
    /// Files parsed and files reused by the last load, for logs and tests.
    pub last_parsed: usize,
    pub last_reused: usize,
    /// The paths whose entries changed since the cache was opened or saved.
    changed: BTreeSet<PathBuf>,
    /// The cache file as it was opened or last saved, which a save may add
    /// to; `None` when there is none to add to.
    written: Option<file::Written>,
}

impl ParseCache {
    /// A cache that keeps nothing: each load parses every file and moves
    /// its entries out, copying none. What a one-shot load uses.
    pub fn disabled() -> Self {
        ParseCache {
            keep: false,
            files: HashMap::new(),
            last_parsed: 0,
            last_reused: 0,
            changed: BTreeSet::new(),
            written: None,
        }
    }

    /// A cache that holds nothing yet and keeps every file it parses until
    /// the next load.
    pub fn empty() -> Self {
        ParseCache {
            keep: true,
            ..ParseCache::disabled()
        }
    }

    /// The cache saved at `path` by [`ParseCache::save`]. `Err` says why it
    /// cannot be used — missing, damaged, or written by another build — and
    /// is no failure: start from [`ParseCache::empty`] and the files are
    /// parsed.
    pub fn open(path: &Path) -> Result<ParseCache, String> {
        let (files, written) = file::read(path)?;
        Ok(ParseCache {
            files,
            written: Some(written),
            ..ParseCache::empty()
        })
    }

    /// Saves the entries to `path` when they changed since the cache was
    /// opened or last saved — the changed ones added to the end of the file
    /// it was opened from, or the whole cache written atomically (mode 0600);
    /// returns whether it wrote.
    pub fn save(&mut self, path: &Path) -> std::io::Result<bool> {
        if !self.keep || self.changed.is_empty() {
            return Ok(false);
        }
        let written = file::save(path, &self.files, &self.changed, self.written.take())?;
        self.written = Some(written);
        self.changed.clear();
        Ok(true)
    }

    /// Whether the cache keeps what a load parses.
    pub(super) fn keeps(&self) -> bool {
        self.keep
    }

    /// Begins a load: what the cache holds, by path, taken out of it to be
    /// matched with the files the load reads; each is then given back
    /// ([`ParseCache::reused`], [`ParseCache::parsed`]) or left for
    /// [`ParseCache::end_load`].
    pub(super) fn begin_load(&mut self) -> HashMap<PathBuf, ParsedFile> {
        self.last_parsed = 0;
        self.last_reused = 0;
        std::mem::take(&mut self.files)
    }

    /// A file of the load whose entries came from `entry`, unchanged.
    pub(super) fn reused(&mut self, path: PathBuf, entry: ParsedFile) {
        self.last_reused += 1;
        if self.keep {
            self.files.insert(path, entry);
        }
    }

    /// A file of the load that was parsed; `entry` is what to keep of it
    /// (`None` when the cache keeps nothing).
    pub(super) fn parsed(&mut self, path: PathBuf, entry: Option<ParsedFile>) {
        self.last_parsed += 1;
        if let Some(entry) = entry {
            self.changed.insert(path.clone());
            self.files.insert(path, entry);
        }
    }

    /// Ends a load: the files of an earlier load that are gone from this
    /// one are dropped.
    pub(super) fn end_load(&mut self, gone: HashMap<PathBuf, ParsedFile>) {
        if self.keep {
            self.changed.extend(gone.into_keys());
        }
    }
}

#[cfg(test)]
mod tests;
