//! Config sets in: files found, read, parsed and merged into a [`RawConfig`].
//!
//! This module owns everything between a path on the command line and the
//! raw config: finding the files (one file, or a directory walked in sorted
//! path order, hidden entries skipped), the input limits, reading, YAML, and
//! merging the sections of every file. It reports every problem it meets as a
//! diagnostic and goes on with the next entry or file, so that one run shows
//! them all. It checks no domain rule: that is `check`'s job.
//!
//! Here: the raw config and the limits. In `discover`, finding the files;
//! in `load`, reading and parsing them (on two threads for a large set);
//! in `yaml`, a file's text to a tree of nodes; in `de` and `merge`, the
//! tree read into the sections of the raw config; in `cache`, the parse
//! cache; in `stamp`, the set's stamp. `raw` is the format's types, `export`
//! and `reference` write a model and the format's reference back out.

mod cache;
mod de;
mod discover;
pub mod export;
mod load;
mod merge;
pub mod raw;
pub mod reference;
mod stamp;
mod yaml;

use std::collections::BTreeSet;

use crate::diag::Sources;
pub use cache::ParseCache;
pub use export::raw_of;
pub use load::{load, load_cached, load_files};
pub use raw::{RawApproval, RawMembership, RawSupportLink, RawTenancy, RawUser, Spanned};
pub use stamp::{FileStamp, SetStamp};

/// Limits on what a config set may be, so that no input can exhaust memory
/// or time. Each breach is an `input-limit` error with its place.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Largest config set, all files together, in bytes.
    pub max_total_bytes: u64,
    /// Most files in a config set.
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 64 * 1024 * 1024,
            max_total_bytes: 512 * 1024 * 1024,
            max_files: 10_000,
        }
    }
}

/// One user as the config set declares it, with the place of its id.
#[derive(Clone, Debug)]
pub struct RawUserEntry {
    pub id: Spanned<String>,
    pub user: RawUser,
}

/// Every entry of every file of a config set, in file order, before checking.
#[derive(Clone, Debug, Default)]
pub struct RawConfig {
    pub tenancies: Vec<Spanned<RawTenancy>>,
    pub users: Vec<RawUserEntry>,
    pub memberships: Vec<Spanned<RawMembership>>,
    pub approvals: Vec<Spanned<RawApproval>>,
    pub support_links: Vec<Spanned<RawSupportLink>>,
    /// What was written but could not be read (a wrong type, an unknown
    /// field): checking must not report it as missing.
    pub unreadable: Unreadable,
}

/// Entries that exist in the files but failed to read, by the user they
/// name where that could be seen.
#[derive(Clone, Debug, Default)]
pub struct Unreadable {
    pub tenancy: bool,
    pub users: BTreeSet<String>,
    pub memberships: BTreeSet<String>,
    pub approvals: BTreeSet<String>,
    pub support_links: BTreeSet<String>,
}

/// A loaded config set: its sources (for rendering diagnostics), its raw
/// entries and the digest of its content.
#[derive(Debug, Default)]
pub struct Loaded {
    pub sources: Sources,
    pub raw: RawConfig,
    /// `sha256:` of every file's relative path and the SHA-256 of its bytes,
    /// in order: equal digests mean equal config sets.
    pub digest: String,
    /// Whether any file could not be read or parsed, so that the entries are
    /// known to be incomplete.
    pub incomplete: bool,
}
