//! Config sets in: files found, read, parsed and merged into a [`RawConfig`].
//!
//! This module owns everything between a path on the command line and the
//! raw config: finding the files (one file, or a directory walked in sorted
//! path order, hidden entries skipped), the input limits, reading, YAML, and
//! merging the sections of every file. It reports every problem it meets as a
//! diagnostic and goes on with the next entry or file, so that one run shows
//! them all. It checks no domain rule: that is `check`'s job.

mod cache;
mod de;
pub mod export;
pub mod raw;
pub mod reference;
mod yaml;

use std::collections::{BTreeSet, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::diag::{Diagnostic, Location, Rule, Sources, did_you_mean};
use de::{DeError, DeErrorKind, NodeDe, location_of};
pub use export::raw_of;
pub use raw::{RawApproval, RawMembership, RawSupportLink, RawTenancy, RawUser, Spanned};
use yaml::{Node, NodeKind};

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

/// Loads the config set at `path`. Problems become diagnostics; whatever
/// could be read is kept.
pub fn load(path: &Path, limits: &Limits) -> (Loaded, Vec<Diagnostic>) {
    // Nothing is kept: every file is parsed once and moved, not copied.
    load_cached(path, limits, &mut ParseCache::default())
}

/// What one file contributed when it was last parsed: its entries and
/// findings, valid for exactly those bytes at that place in the set.
#[derive(Debug)]
struct ParsedFile {
    /// The file's index in the set's sources, which its locations name.
    index: usize,
    hash: [u8; 32],
    /// Whether it was read whole, its entries and its findings, in the
    /// cache's encoding: decoding makes the copy a load hands out.
    encoded: cache::Encoded,
}

/// Parsed files kept between loads of the same config set — in memory by
/// `watch`, and between runs in a file ([`ParseCache::open`],
/// [`ParseCache::save`]) — so that a load after an edit parses only the
/// files whose bytes changed.
///
/// An entry is used only when the file has the same path, the same SHA-256
/// of its content and the same index in the set (locations name the index);
/// anything else is parsed again. Size and time are never trusted.
#[derive(Debug, Default)]
pub struct ParseCache {
    /// Whether to keep what is parsed (a cache made by [`ParseCache::new`]);
    /// the default keeps nothing.
    keep: bool,
    files: HashMap<PathBuf, ParsedFile>,
    /// Files parsed and files reused by the last load, for logs and tests.
    pub last_parsed: usize,
    pub last_reused: usize,
    /// The paths whose entries changed since the cache was opened or saved.
    changed: BTreeSet<PathBuf>,
    /// The cache file as it was opened or last saved, which a save may add
    /// to; `None` when there is none to add to.
    written: Option<cache::Written>,
}

impl ParseCache {
    /// A cache that keeps every file it parses until the next load.
    pub fn new() -> Self {
        ParseCache {
            keep: true,
            ..ParseCache::default()
        }
    }

    /// The cache saved at `path` by [`ParseCache::save`]. `Err` says why it
    /// cannot be used — missing, damaged, or written by another build — and
    /// is no failure: start from [`ParseCache::new`] and the files are parsed.
    pub fn open(path: &Path) -> Result<ParseCache, String> {
        let (files, written) = cache::read(path)?;
        Ok(ParseCache {
            files,
            written: Some(written),
            ..ParseCache::new()
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
        let written = cache::save(path, &self.files, &self.changed, self.written.take())?;
        self.written = Some(written);
        self.changed.clear();
        Ok(true)
    }
}

/// Loads like [`load`], reusing what `cache` holds for unchanged files and
/// leaving in it exactly the files of this load.
///
/// The files are read in order, within the limits; then each is hashed and
/// its cached parse decoded (or the file parsed) — the bulk of the work, on
/// two threads for a large set, each file on its own; then what they gave is
/// put together in order, so the result is the same however it was split.
pub fn load_cached(
    path: &Path,
    limits: &Limits,
    cache: &mut ParseCache,
) -> (Loaded, Vec<Diagnostic>) {
    let mut previous = std::mem::take(&mut cache.files);
    cache.last_parsed = 0;
    cache.last_reused = 0;
    let mut loaded = Loaded::default();
    let (files, mut diagnostics) = discover(path, limits);
    loaded.incomplete = !diagnostics.is_empty();
    let mut total: u64 = 0;
    let mut steps = Vec::with_capacity(files.len());
    for file_path in files {
        let shown = file_path.display().to_string();
        let failed = match read_limited(&file_path, limits.max_file_bytes) {
            Err(ReadError::TooLarge(size)) => Diagnostic::at(
                Rule::InputLimit,
                file_start(loaded.sources.len()),
                format!(
                    "file is {} bytes, over the limit of {} bytes",
                    size, limits.max_file_bytes
                ),
            )
            .with_hint("split the config set into smaller files, or raise `--max-file-size`"),
            Err(ReadError::Io(e)) => Diagnostic::at(
                Rule::Unreadable,
                file_start(loaded.sources.len()),
                format!("cannot read the file: {e}"),
            ),
            Ok(bytes) => {
                total += bytes.len() as u64;
                if total > limits.max_total_bytes {
                    loaded.sources.add(shown, String::new());
                    loaded.incomplete = true;
                    steps.push(Err(Diagnostic::at(
                        Rule::InputLimit,
                        file_start(loaded.sources.len() - 1),
                        format!(
                            "the config set passes {} bytes in all at this file",
                            limits.max_total_bytes
                        ),
                    )));
                    break;
                }
                let relative = file_path
                    .strip_prefix(path)
                    .unwrap_or(&file_path)
                    .to_string_lossy()
                    .into_owned();
                // The text is put in its place once the file is done.
                let index = loaded.sources.add(shown, String::new());
                let cached = previous.remove(&file_path);
                steps.push(Ok(ReadFile {
                    index,
                    path: file_path,
                    relative,
                    bytes,
                    cached,
                }));
                continue;
            }
        };
        loaded.sources.add(shown, String::new());
        loaded.incomplete = true;
        steps.push(Err(failed));
    }

    // Each file read is hashed, and decoded or parsed; a file that could not
    // be read keeps its finding in its place.
    let keep = cache.keep;
    let size = |step: &Result<ReadFile, Diagnostic>| step.as_ref().map_or(0, |f| f.bytes.len());
    let done = in_two_halves(steps, size, |step| step.map(|file| file.finish(keep)));

    let mut hashed: Vec<(String, [u8; 32])> = Vec::with_capacity(done.len());
    let mut parts = Vec::with_capacity(done.len());
    for step in done {
        let file = match step {
            Ok(file) => file,
            Err(diagnostic) => {
                diagnostics.push(diagnostic);
                continue;
            }
        };
        match file.text {
            Some(text) => loaded.sources.set_text(file.index, text),
            None => {
                let path = file.path.clone();
                loaded
                    .sources
                    .set_unread(file.index, path, file.len, file.hash, read_again);
            }
        }
        match file.entry {
            Entry::Reused(entry) => {
                cache.last_reused += 1;
                if keep {
                    cache.files.insert(file.path, entry);
                }
            }
            Entry::Parsed(entry) => {
                cache.last_parsed += 1;
                if let Some(entry) = entry {
                    cache.changed.insert(file.path.clone());
                    cache.files.insert(file.path, entry);
                }
            }
        }
        loaded.incomplete |= !file.complete;
        parts.push(file.raw);
        diagnostics.extend(file.found);
        hashed.push((file.relative, file.hash));
    }
    loaded.raw = RawConfig::concat(parts);
    // Files of an earlier load that are gone from this one are dropped.
    if keep {
        cache.changed.extend(previous.into_keys());
    }
    loaded.digest = digest_of(&hashed);
    (loaded, diagnostics)
}

/// A file of a load as read, with what the cache held for its path.
struct ReadFile {
    index: usize,
    path: PathBuf,
    relative: String,
    bytes: Vec<u8>,
    cached: Option<ParsedFile>,
}

/// What a file of a load gave, and where its entries came from.
struct DoneFile {
    index: usize,
    path: PathBuf,
    relative: String,
    hash: [u8; 32],
    /// The file's size, as read.
    len: u64,
    /// `None` for a file whose entries came from the cache.
    text: Option<String>,
    complete: bool,
    raw: RawConfig,
    found: Vec<Diagnostic>,
    entry: Entry,
}

/// Where a file's entries came from.
enum Entry {
    /// The cache, from this entry.
    Reused(ParsedFile),
    /// The parser; with the entry to keep when the cache keeps them.
    Parsed(Option<ParsedFile>),
}

impl ReadFile {
    /// Hashes the file, and decodes its cached parse when the cache holds
    /// one for these very bytes at this place, or parses it.
    fn finish(self, keep: bool) -> DoneFile {
        let ReadFile {
            index,
            path,
            relative,
            bytes,
            cached,
        } = self;
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        let len = bytes.len() as u64;
        let reused = cached
            .filter(|p| p.hash == hash && p.index == index)
            .and_then(|p| cache::decode(&p.encoded).map(|parse| (parse, p)));
        let (text, (complete, raw, found), entry) = match reused {
            // Its text is read again only if a diagnostic points into it.
            Some((parse, p)) => (None, parse, Entry::Reused(p)),
            None => {
                let mut raw = RawConfig::default();
                let mut found = Vec::new();
                let (complete, text) = load_file(index, &bytes, &mut raw, &mut found);
                let entry = keep.then(|| ParsedFile {
                    index,
                    hash,
                    encoded: cache::Encoded::new(cache::encode(complete, &raw, &found)),
                });
                (Some(text), (complete, raw, found), Entry::Parsed(entry))
            }
        };
        DoneFile {
            index,
            path,
            relative,
            hash,
            len,
            text,
            complete,
            raw,
            found,
            entry,
        }
    }
}

/// How many bytes of files a load reads before it is worth a second thread.
const TWO_THREADS_FROM: usize = 1 << 20;

/// `work` done on every item, results in order: the later half (by `size`,
/// in bytes) on a second thread when there are enough bytes to be worth it.
fn in_two_halves<T: Send, U: Send>(
    steps: Vec<T>,
    size: impl Fn(&T) -> usize,
    work: impl Fn(T) -> U + Sync,
) -> Vec<U> {
    let total: usize = steps.iter().map(&size).sum();
    if total < TWO_THREADS_FROM {
        return steps.into_iter().map(work).collect();
    }
    let mut seen = 0;
    let split = steps
        .iter()
        .position(|step| {
            seen += size(step);
            seen * 2 >= total
        })
        .map_or(steps.len(), |at| at + 1);
    let mut first = steps;
    let second = first.split_off(split);
    let work = &work;
    std::thread::scope(|scope| {
        let later = scope.spawn(move || second.into_iter().map(work).collect::<Vec<_>>());
        let mut done: Vec<U> = first.into_iter().map(work).collect();
        done.extend(
            later
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        );
        done
    })
}

/// Loads a config set held in memory: each file's name (as diagnostics show
/// it) and bytes, in the set's order — what [`load`] does once the files are
/// found and read, with no file system and no limit on size (the caller
/// already holds the bytes). For tests and fuzzing.
pub fn load_files<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> (Loaded, Vec<Diagnostic>) {
    let mut loaded = Loaded::default();
    let mut diagnostics = Vec::new();
    let mut hashed = Vec::new();
    let mut parts = Vec::new();
    for (name, bytes) in files {
        let index = loaded.sources.len();
        let mut raw = RawConfig::default();
        let (complete, text) = load_file(index, bytes, &mut raw, &mut diagnostics);
        loaded.sources.add(name.to_owned(), text);
        parts.push(raw);
        loaded.incomplete |= !complete;
        hashed.push((name.to_owned(), Sha256::digest(bytes).into()));
    }
    loaded.raw = RawConfig::concat(parts);
    loaded.digest = digest_of(&hashed);
    (loaded, diagnostics)
}

/// The text of a file whose entries came from the parse cache, read again
/// for a diagnostic: only when its bytes are still those the entries were
/// made from.
fn read_again(path: &Path, len: u64, hash: &[u8; 32]) -> Option<String> {
    // Not read past its size then: it may have grown past any limit since.
    let bytes = read_limited(path, len).ok()?;
    (<[u8; 32]>::from(Sha256::digest(&bytes)) == *hash).then(|| source_text(bytes))
}

/// A file's text as its diagnostics show it: without a byte-order mark, and
/// with any bytes that are not UTF-8 replaced.
fn source_text(mut bytes: Vec<u8>) -> String {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    // The bytes become the text without a copy when they are UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

impl RawConfig {
    /// The entries of every file, in order: moved, each section into a
    /// vector made once at its final size.
    fn concat(mut parts: Vec<RawConfig>) -> RawConfig {
        fn section<T>(parts: &mut [RawConfig], of: fn(&mut RawConfig) -> &mut Vec<T>) -> Vec<T> {
            let mut all = Vec::with_capacity(parts.iter_mut().map(|p| of(p).len()).sum());
            for part in parts.iter_mut() {
                all.append(of(part));
            }
            all
        }
        let mut all = RawConfig {
            tenancies: section(&mut parts, |p| &mut p.tenancies),
            users: section(&mut parts, |p| &mut p.users),
            memberships: section(&mut parts, |p| &mut p.memberships),
            approvals: section(&mut parts, |p| &mut p.approvals),
            support_links: section(&mut parts, |p| &mut p.support_links),
            unreadable: Unreadable::default(),
        };
        for part in parts {
            let (mine, theirs) = (&mut all.unreadable, part.unreadable);
            mine.tenancy |= theirs.tenancy;
            mine.users.extend(theirs.users);
            mine.memberships.extend(theirs.memberships);
            mine.approvals.extend(theirs.approvals);
            mine.support_links.extend(theirs.support_links);
        }
        all
    }
}

/// The set's digest from each file's name and the SHA-256 of its bytes, so
/// that no file is hashed twice.
fn digest_of(files: &[(String, [u8; 32])]) -> String {
    let mut hasher = Sha256::new();
    for (name, hash) in files {
        // Length-prefix the name so that no two sets hash alike by moving
        // bytes between a name and the next.
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(hash);
    }
    crate::hex::sha256_text(&hasher.finalize())
}

fn file_start(file: usize) -> Location {
    Location {
        file: file as u32,
        line: 1,
        column: 1,
        len: 0,
    }
}

enum ReadError {
    TooLarge(u64),
    Io(std::io::Error),
}

/// Reads a file, refusing it before reading when it is over the limit (and
/// while reading, should it grow meanwhile).
fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let size = file.metadata().map_err(ReadError::Io)?.len();
    if size > max {
        return Err(ReadError::TooLarge(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// A config set's files as they are on disk at one moment, without reading
/// them: each file's path and, on Unix, its device, inode, length, and
/// modification and change times (to the nanosecond), in the order a load
/// reads them, and what could not be walked. Two stamps that differ mean the
/// set changed between them; `watch` takes one before a load and one after,
/// and acts on what it read only when they are equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetStamp {
    files: Vec<(PathBuf, Option<FileStamp>)>,
    problems: Vec<String>,
}

/// One file's identity, size and times, as [`SetStamp`] keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileStamp {
    pub device: u64,
    pub inode: u64,
    len: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl FileStamp {
    /// The stamp of the file `metadata` describes.
    pub fn of(metadata: &std::fs::Metadata) -> FileStamp {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileStamp {
                device: metadata.dev(),
                inode: metadata.ino(),
                len: metadata.len(),
                modified: (metadata.mtime(), metadata.mtime_nsec()),
                changed: (metadata.ctime(), metadata.ctime_nsec()),
            }
        }
        #[cfg(not(unix))]
        {
            let since = metadata
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .unwrap_or_default();
            FileStamp {
                device: 0,
                inode: 0,
                len: metadata.len(),
                modified: (since.as_secs() as i64, i64::from(since.subsec_nanos())),
                changed: (0, 0),
            }
        }
    }
}

impl SetStamp {
    /// The config set at `path` as it is now: the files a load would read.
    pub fn take(path: &Path, limits: &Limits) -> SetStamp {
        let (files, diagnostics) = discover(path, limits);
        SetStamp {
            files: files
                .into_iter()
                .map(|file| {
                    let stamp = std::fs::metadata(&file).ok().map(|m| FileStamp::of(&m));
                    (file, stamp)
                })
                .collect(),
            problems: diagnostics.into_iter().map(|d| d.message).collect(),
        }
    }

    /// Whether the file `metadata` describes is one of the set's (the same
    /// device and inode, by whatever path it was reached).
    pub fn holds(&self, metadata: &std::fs::Metadata) -> bool {
        let wanted = FileStamp::of(metadata);
        self.files.iter().any(|(_, stamp)| {
            stamp.is_some_and(|s| (s.device, s.inode) == (wanted.device, wanted.inode))
        })
    }

    /// The files that differ between two stamps (added, removed or changed).
    pub fn changed_files(&self, later: &SetStamp) -> Vec<PathBuf> {
        let before: HashMap<&PathBuf, &Option<FileStamp>> =
            self.files.iter().map(|(p, s)| (p, s)).collect();
        let after: HashMap<&PathBuf, &Option<FileStamp>> =
            later.files.iter().map(|(p, s)| (p, s)).collect();
        let mut changed: Vec<PathBuf> = self
            .files
            .iter()
            .filter(|(path, stamp)| after.get(path) != Some(&stamp))
            .map(|(path, _)| path.clone())
            .collect();
        changed.extend(
            later
                .files
                .iter()
                .filter(|(path, _)| !before.contains_key(path))
                .map(|(path, _)| path.clone()),
        );
        changed
    }
}

/// The config files at `path`: the file itself, or every `*.yaml`/`*.yml`
/// under the directory, hidden entries skipped, in sorted path order; and
/// what could not be walked.
fn discover(path: &Path, limits: &Limits) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let shown = path.display();
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) => {
            let rule = if e.kind() == std::io::ErrorKind::NotFound {
                Rule::ConfigNotFound
            } else {
                Rule::Unreadable
            };
            return (
                Vec::new(),
                vec![Diagnostic::new(
                    rule,
                    None,
                    format!("cannot read `{shown}`: {e}"),
                )],
            );
        }
    };
    if metadata.is_file() {
        return (vec![path.to_path_buf()], Vec::new());
    }
    if !metadata.is_dir() {
        return (Vec::new(), vec![not_regular(path)]);
    }
    let mut walker = Walker {
        limits,
        root: path,
        ancestors: Vec::new(),
        files: Vec::new(),
        diagnostics: Vec::new(),
    };
    walker.walk(path);
    let Walker {
        mut files,
        mut diagnostics,
        ..
    } = walker;
    if files.is_empty() && diagnostics.is_empty() {
        diagnostics.push(
            Diagnostic::new(
                Rule::ConfigNotFound,
                None,
                format!("no `*.yaml` or `*.yml` files in `{shown}`"),
            )
            .with_hint("hidden files and folders (starting with `.`) are skipped"),
        );
    }
    files.sort();
    (files, diagnostics)
}

fn not_regular(path: &Path) -> Diagnostic {
    Diagnostic::new(
        Rule::Unreadable,
        None,
        format!("`{}` is neither a file nor a folder", path.display()),
    )
    .with_hint("config files are regular files; pipes, sockets and devices are not read")
}

struct Walker<'a> {
    limits: &'a Limits,
    root: &'a Path,
    ancestors: Vec<PathBuf>,
    files: Vec<PathBuf>,
    diagnostics: Vec<Diagnostic>,
}

impl Walker<'_> {
    fn unreadable(&mut self, path: &Path, e: &std::io::Error) {
        self.diagnostics.push(Diagnostic::new(
            Rule::Unreadable,
            None,
            format!("cannot read `{}`: {e}", path.display()),
        ));
    }

    /// Walks `dir`; false once the file limit is passed, to stop the walk.
    fn walk(&mut self, dir: &Path) -> bool {
        // A directory that is its own ancestor (through a symlink) would be
        // walked forever.
        let canonical = match std::fs::canonicalize(dir) {
            Ok(canonical) => canonical,
            Err(e) => {
                self.unreadable(dir, &e);
                return true;
            }
        };
        if self.ancestors.contains(&canonical) {
            self.diagnostics.push(Diagnostic::new(
                Rule::Unreadable,
                None,
                format!(
                    "symlink loop: `{}` leads back to `{}`",
                    dir.display(),
                    canonical.display()
                ),
            ));
            return true;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.unreadable(dir, &e);
                return true;
            }
        };
        self.ancestors.push(canonical);
        let mut going = true;
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.unreadable(dir, &e);
                    continue;
                }
            };
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let child = entry.path();
            // Follow symlinks: a folder mounted as a link (as Kubernetes
            // mounts a ConfigMap) is part of the set.
            let metadata = match std::fs::metadata(&child) {
                Ok(metadata) => metadata,
                Err(e) => {
                    // A dangling or looping link of any name may have been a folder.
                    if is_yaml_name(&child)
                        || entry
                            .file_type()
                            .is_ok_and(|t| t.is_symlink() || t.is_dir())
                    {
                        self.unreadable(&child, &e);
                    }
                    continue;
                }
            };
            if metadata.is_dir() {
                going = self.walk(&child);
            } else if is_yaml_name(&child) {
                if !metadata.is_file() {
                    self.diagnostics.push(not_regular(&child));
                    continue;
                }
                self.files.push(child);
                if self.files.len() > self.limits.max_files {
                    self.diagnostics.push(
                        Diagnostic::new(
                            Rule::InputLimit,
                            None,
                            format!(
                                "more than {} config files under `{}`",
                                self.limits.max_files,
                                self.root.display()
                            ),
                        )
                        .with_hint("merge small files, or point at a narrower folder"),
                    );
                    self.files.clear();
                    going = false;
                }
            }
            if !going {
                break;
            }
        }
        self.ancestors.pop();
        going
    }
}

fn is_yaml_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Decodes, parses and merges one file into `loaded`; false when the file
/// could not be decoded or parsed.
/// Parses one file, which is `file` in the set's sources, appending its
/// entries to `raw`. Returns whether it was read whole, and its text for the
/// sources.
fn load_file(
    file: usize,
    bytes: &[u8],
    raw: &mut RawConfig,
    diagnostics: &mut Vec<Diagnostic>,
) -> (bool, String) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(e) => {
            let valid = String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned();
            // Lines as the parser and the snippets count them: a lone CR
            // breaks a line too.
            let (line, column) = crate::diag::lines(&valid)
                .enumerate()
                .last()
                .map_or((0, 0), |(i, last)| (i, last.chars().count()));
            let (line, column) = (line as u32 + 1, column as u32 + 1);
            let bad = bytes[e.valid_up_to()];
            diagnostics.push(
                Diagnostic::at(
                    Rule::Unreadable,
                    Location {
                        file: file as u32,
                        line,
                        column,
                        len: 1,
                    },
                    format!(
                        "the file is not UTF-8: byte 0x{bad:02x} cannot start a character here"
                    ),
                )
                .with_hint("save the file as UTF-8"),
            );
            return (false, String::from_utf8_lossy(bytes).into_owned());
        }
    };
    let mut root = match yaml::parse(&text) {
        Ok(root) => root,
        Err(e) => {
            let rule = if e.limit {
                Rule::InputLimit
            } else {
                Rule::YamlSyntax
            };
            let mut d = Diagnostic::at(
                rule,
                Location {
                    file: file as u32,
                    line: e.line,
                    column: e.column,
                    len: e.len,
                },
                e.message,
            );
            d.hint = e.hint;
            diagnostics.push(d);
            return (false, text);
        }
    };
    remove_duplicate_keys(&mut root, file, &text, diagnostics);
    let mut merger = Merger {
        file,
        source: &text,
        raw,
        diagnostics,
    };
    merger.sections(&root);
    drop(root);
    (true, text)
}

/// Reports every mapping key written twice in one mapping, naming both
/// places, and keeps the first.
fn remove_duplicate_keys(
    node: &mut Node,
    file: usize,
    source: &str,
    diagnostics: &mut Vec<Diagnostic>,
) {
    match &mut node.kind {
        NodeKind::Seq(items) => {
            for item in items {
                remove_duplicate_keys(item, file, source, diagnostics);
            }
        }
        // Most mappings are a handful of fields: compare keys pairwise
        // rather than build a map for each (a 100k-user file has 200k).
        NodeKind::Map(entries)
            if entries.len() <= 16 && {
                let keys: Vec<_> = entries.iter().map(|(k, _)| k.scalar_text(source)).collect();
                keys.iter().enumerate().all(|(i, key)| {
                    key.is_none() || !keys[..i].iter().any(|earlier| earlier == key)
                })
            } =>
        {
            for (_, value) in entries {
                remove_duplicate_keys(value, file, source, diagnostics);
            }
        }
        NodeKind::Map(entries) => {
            let mut first: foldhash::HashMap<String, Location> =
                foldhash::HashMapExt::with_capacity(entries.len());
            entries.retain(|(key, _)| {
                let Some(text) = key.scalar_text(source) else {
                    return true;
                };
                let here = location_of(key, file);
                match first.get(text.as_ref()) {
                    Some(&earlier) => {
                        diagnostics.push(
                            Diagnostic::at(
                                Rule::DuplicateKey,
                                here,
                                format!("key `{text}` is written twice in this mapping"),
                            )
                            .with_related(earlier, "first written")
                            .with_hint("remove one of them; only the first is read"),
                        );
                        false
                    }
                    None => {
                        first.insert(text.into_owned(), here);
                        true
                    }
                }
            });
            for (_, value) in entries {
                remove_duplicate_keys(value, file, source, diagnostics);
            }
        }
        _ => {}
    }
}

fn de_diagnostic(error: DeError, fallback: Location) -> Diagnostic {
    let rule = match error.kind {
        DeErrorKind::InvalidType => Rule::InvalidType,
        DeErrorKind::MissingField => Rule::MissingField,
        DeErrorKind::UnknownField => Rule::UnknownField,
        DeErrorKind::DuplicateField => Rule::DuplicateKey,
    };
    let mut d = Diagnostic::at(rule, error.location.unwrap_or(fallback), error.message);
    d.hint = error.hint;
    d
}

/// Merges the sections of one file into the raw config.
struct Merger<'a> {
    file: usize,
    source: &'a str,
    raw: &'a mut RawConfig,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl<'a> Merger<'a> {
    fn here(&self, node: &Node) -> Location {
        location_of(node, self.file)
    }

    /// Reads one entry; a failure becomes a diagnostic (its message led by
    /// `what`, when given) and the entry is skipped.
    fn read<T: Deserialize<'a>>(&mut self, node: &'a Node, what: Option<&str>) -> Option<T> {
        let de = NodeDe::new(node, self.file, self.source);
        match T::deserialize(de) {
            Ok(value) => Some(value),
            Err(e) => {
                let mut d = de_diagnostic(e, de.location());
                if let Some(what) = what {
                    d.message = format!("{what}: {}", d.message);
                }
                self.diagnostics.push(d);
                None
            }
        }
    }

    /// The text of the `user:` of a list entry, if it has a readable one.
    fn user_of(&self, entry: &Node) -> Option<String> {
        let NodeKind::Map(fields) = &entry.kind else {
            return None;
        };
        fields
            .iter()
            .find(|(k, _)| k.scalar_text(self.source).as_deref() == Some("user"))
            .and_then(|(_, v)| v.scalar_text(self.source))
            .map(|t| t.into_owned())
    }

    fn sections(&mut self, root: &'a Node) {
        let entries = match &root.kind {
            NodeKind::Null => return,
            NodeKind::Map(entries) => entries,
            other => {
                self.diagnostics.push(
                    Diagnostic::at(
                        Rule::InvalidType,
                        self.here(root),
                        format!(
                            "a config file holds a mapping of sections, found {}",
                            other.describe()
                        ),
                    )
                    .with_hint(format!("the sections are {}", backticked(raw::SECTIONS))),
                );
                return;
            }
        };
        for (key, value) in entries {
            let key_location = self.here(key);
            let name = key.scalar_text(self.source).unwrap_or_default();
            match name.as_ref() {
                "tenancy" => match self.read::<Spanned<RawTenancy>>(value, Some("tenancy")) {
                    Some(mut t) => {
                        // A second tenancy is pointed at by its key.
                        t.location = key_location;
                        self.raw.tenancies.push(t);
                    }
                    None => self.raw.unreadable.tenancy = true,
                },
                "users" => self.users(value),
                "memberships" => {
                    for (item, user) in self.list(value, "memberships") {
                        match self.read(item, None) {
                            Some(m) => self.raw.memberships.push(m),
                            None => self.raw.unreadable.memberships.extend(user),
                        }
                    }
                }
                "approvals" => {
                    for (item, user) in self.list(value, "approvals") {
                        match self.read(item, None) {
                            Some(a) => self.raw.approvals.push(a),
                            None => self.raw.unreadable.approvals.extend(user),
                        }
                    }
                }
                "support_links" => {
                    for (item, user) in self.list(value, "support_links") {
                        match self.read(item, None) {
                            Some(l) => self.raw.support_links.push(l),
                            None => self.raw.unreadable.support_links.extend(user),
                        }
                    }
                }
                other => {
                    let hint = match did_you_mean(other, raw::SECTIONS.iter().copied()) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("the sections are {}", backticked(raw::SECTIONS)),
                    };
                    self.diagnostics.push(
                        Diagnostic::at(
                            Rule::UnknownField,
                            key_location,
                            format!("unknown section `{other}`"),
                        )
                        .with_hint(hint),
                    );
                }
            }
        }
    }

    fn users(&mut self, value: &'a Node) {
        let entries = match &value.kind {
            NodeKind::Null => return,
            NodeKind::Map(entries) => entries,
            other => {
                self.diagnostics.push(
                    Diagnostic::at(
                        Rule::InvalidType,
                        self.here(value),
                        format!(
                            "`users` is a mapping of user id to user, found {}",
                            other.describe()
                        ),
                    )
                    .with_hint("write each user as `id: { email: … }` under `users:`"),
                );
                return;
            }
        };
        self.raw.users.reserve(entries.len());
        for (key, value) in entries {
            let key_location = self.here(key);
            let Some(id) = key.scalar_text(self.source) else {
                self.diagnostics.push(Diagnostic::at(
                    Rule::InvalidType,
                    key_location,
                    format!("a user id is a string, found {}", key.kind.describe()),
                ));
                continue;
            };
            let id = Spanned {
                value: id.into_owned(),
                location: key_location,
            };
            let what = format!("user `{}`", id.value);
            let errors_before = self.diagnostics.len();
            match self.read::<RawUser>(value, Some(&what)) {
                Some(user) => self.raw.users.push(RawUserEntry { id, user }),
                None => {
                    // A missing field is about the user as a whole: point at its id.
                    if let Some(d) = self.diagnostics.get_mut(errors_before)
                        && d.rule == Rule::MissingField
                    {
                        d.location = Some(key_location);
                    }
                    self.raw.unreadable.users.insert(id.value);
                }
            }
        }
    }

    /// The entries of a list section, each with the user it names if readable.
    fn list(&mut self, value: &'a Node, section: &str) -> Vec<(&'a Node, Option<String>)> {
        match &value.kind {
            NodeKind::Null => Vec::new(),
            NodeKind::Seq(items) => items.iter().map(|i| (i, self.user_of(i))).collect(),
            other => {
                self.diagnostics.push(
                    Diagnostic::at(
                        Rule::InvalidType,
                        self.here(value),
                        format!("`{section}` is a list, found {}", other.describe()),
                    )
                    .with_hint(format!(
                        "write each entry as `- user: …` under `{section}:`"
                    )),
                );
                Vec::new()
            }
        }
    }
}

fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> (Loaded, Vec<Diagnostic>) {
        let mut loaded = Loaded::default();
        let mut diagnostics = Vec::new();
        let (_, text) = load_file(0, text.as_bytes(), &mut loaded.raw, &mut diagnostics);
        loaded.sources.add("t.yaml".into(), text);
        (loaded, diagnostics)
    }

    /// Everything a load produces, as text, to compare two loads.
    fn everything(path: &Path, loaded: &Loaded, diagnostics: &[Diagnostic]) -> String {
        let sources: Vec<_> = (0..loaded.sources.len())
            .map(|i| (loaded.sources.path(i), loaded.sources.text(i)))
            .collect();
        format!(
            "{path:?}\n{:?}\n{diagnostics:?}\n{sources:?}\n{}\n{}",
            loaded.raw, loaded.digest, loaded.incomplete
        )
    }

    /// Loads through `cache` and without one, and insists on the same result;
    /// returns how many files the cached load parsed.
    fn assert_cache_agrees(dir: &Path, cache: &mut ParseCache) -> usize {
        let limits = Limits::default();
        let (cached, cached_diags) = load_cached(dir, &limits, cache);
        let (fresh, fresh_diags) = load(dir, &limits);
        assert_eq!(
            everything(dir, &cached, &cached_diags),
            everything(dir, &fresh, &fresh_diags)
        );
        cache.last_parsed
    }

    fn user_file(id: &str, name: &str) -> String {
        format!("users:\n  {id}:\n    email: {id}@acme.example\n    name: {name}\n")
    }

    /// A tenancy file and three files of one user each.
    fn write_small_set(root: &Path) {
        std::fs::write(
            root.join("a-tenancy.yaml"),
            "tenancy: { name: t, csi: \"1\", home_region: r, admin: b }\n",
        )
        .unwrap();
        for id in ["b", "c", "d"] {
            std::fs::write(root.join(format!("{id}.yaml")), user_file(id, "Old")).unwrap();
        }
    }

    /// Writes `text` (of the same size) over `path` and puts its
    /// modification time back: only the content tells the change.
    fn rewrite_keeping_time(path: &Path, text: &str) {
        let before = std::fs::metadata(path).unwrap().modified().unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(before)
            .unwrap();
    }

    #[test]
    fn a_reused_files_text_is_read_again_for_diagnostics_only_while_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_small_set(root);
        let limits = Limits::default();
        let mut cache = ParseCache::new();
        load_cached(root, &limits, &mut cache);
        let (loaded, _) = load_cached(root, &limits, &mut cache);
        assert_eq!(cache.last_reused, 4);
        let index = |name: &str| {
            (0..loaded.sources.len())
                .find(|&i| loaded.sources.path(i).ends_with(name))
                .unwrap()
        };
        // Unchanged: the text as on disk.
        assert_eq!(loaded.sources.text(index("b.yaml")), user_file("b", "Old"));
        // Changed after the load: no text rather than text the entries were
        // not made from.
        std::fs::write(root.join("c.yaml"), user_file("c", "New")).unwrap();
        assert_eq!(loaded.sources.try_text(index("c.yaml")), None);
        assert_eq!(loaded.sources.text(index("c.yaml")), "");
        // Grown past its size: not even read.
        std::fs::write(root.join("d.yaml"), user_file("d", "Old").repeat(1000)).unwrap();
        assert_eq!(loaded.sources.try_text(index("d.yaml")), None);
        // Once read, a text stays what it was.
        std::fs::write(root.join("b.yaml"), user_file("b", "New")).unwrap();
        assert_eq!(loaded.sources.text(index("b.yaml")), user_file("b", "Old"));
    }

    #[test]
    fn a_large_set_loads_on_two_threads_as_it_loads_file_by_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join("a-tenancy.yaml"),
            "tenancy: { name: t, csi: \"1\", home_region: r, admin: u0 }\n",
        )
        .unwrap();
        // 300 files of 70 users, over the size from which a second thread
        // takes the later half; findings in files of both halves.
        for f in 0..300 {
            let mut text = String::from("users:\n");
            for u in 0..70 {
                let id = f * 70 + u;
                text.push_str(&format!(
                    "  u{id}:\n    email: u{id}@acme.example\n    name: User {id}\n"
                ));
            }
            if f == 10 || f == 250 {
                text.push_str("  broken: { email: b@acme.example, emial: 1 }\n");
            }
            if f == 20 || f == 280 {
                text.push_str("  : [\n");
            }
            std::fs::write(root.join(format!("u{f:03}.yaml")), text).unwrap();
        }
        let limits = Limits::default();
        let mut cache = ParseCache::new();
        let (threaded, threaded_diags) = load_cached(root, &limits, &mut cache);
        assert!(cache.files.values().map(|f| f.encoded.len()).sum::<usize>() > 0);
        let total: u64 = (0..threaded.sources.len())
            .map(|i| std::fs::metadata(threaded.sources.path(i)).unwrap().len())
            .sum();
        assert!(total as usize > TWO_THREADS_FROM, "{total} bytes");

        let files: Vec<(String, Vec<u8>)> = (0..threaded.sources.len())
            .map(|i| {
                let path = threaded.sources.path(i).to_owned();
                let bytes = std::fs::read(&path).unwrap();
                (path, bytes)
            })
            .collect();
        let (one_by_one, one_by_one_diags) =
            load_files(files.iter().map(|(p, b)| (p.as_str(), b.as_slice())));
        let view = |loaded: &Loaded, diags: &[Diagnostic]| {
            let sources: Vec<_> = (0..loaded.sources.len())
                .map(|i| (loaded.sources.path(i), loaded.sources.text(i)))
                .collect();
            format!(
                "{:?}\n{diags:?}\n{sources:?}\n{}",
                loaded.raw, loaded.incomplete
            )
        };
        assert!(threaded_diags.len() >= 4, "{threaded_diags:?}");
        assert_eq!(
            view(&threaded, &threaded_diags),
            view(&one_by_one, &one_by_one_diags)
        );
        // And again from the cache, decoded on two threads.
        let (cached, cached_diags) = load_cached(root, &limits, &mut cache);
        assert_eq!(cache.last_reused, 301);
        assert_eq!(
            view(&cached, &cached_diags),
            view(&one_by_one, &one_by_one_diags)
        );
    }

    #[test]
    fn the_parse_cache_reparses_exactly_the_changed_files_and_never_differs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_small_set(root);
        let mut cache = ParseCache::new();
        assert_eq!(assert_cache_agrees(root, &mut cache), 4);
        assert_eq!(assert_cache_agrees(root, &mut cache), 0, "nothing changed");
        assert_eq!(cache.last_reused, 4);

        // The same size and the same modification time, other bytes: still
        // seen, because only the content's hash is trusted.
        rewrite_keeping_time(&root.join("c.yaml"), &user_file("c", "New"));
        assert_eq!(assert_cache_agrees(root, &mut cache), 1);

        // A broken file, then the same broken file again: its findings come
        // back from the cache unchanged.
        std::fs::write(root.join("d.yaml"), "users: [\n").unwrap();
        assert_eq!(assert_cache_agrees(root, &mut cache), 1);
        assert_eq!(assert_cache_agrees(root, &mut cache), 0);

        // A renamed file moves in the set's order: the files whose place
        // changed are read again, and every location names the right file.
        std::fs::rename(root.join("b.yaml"), root.join("z.yaml")).unwrap();
        assert!(assert_cache_agrees(root, &mut cache) >= 1);

        // A new file before the others, and a file removed.
        std::fs::write(root.join("a0.yaml"), user_file("e", "E")).unwrap();
        assert_cache_agrees(root, &mut cache);
        std::fs::remove_file(root.join("c.yaml")).unwrap();
        assert_cache_agrees(root, &mut cache);
        assert_eq!(assert_cache_agrees(root, &mut cache), 0);
    }

    /// Every YAML file the project holds, with its bytes.
    fn every_fixture() -> Vec<(PathBuf, Vec<u8>)> {
        let mut found = Vec::new();
        let mut dirs = vec![
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data"),
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples"),
        ];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if is_yaml_name(&path) || path.extension().is_none() {
                    let bytes = std::fs::read(&path).unwrap();
                    found.push((path, bytes));
                }
            }
        }
        found.sort();
        found
    }

    #[test]
    fn the_cache_encoding_gives_back_exactly_what_was_parsed() {
        let mut findings = 0;
        let fixtures = every_fixture();
        assert!(fixtures.len() > 50, "only {} fixtures", fixtures.len());
        for (index, (path, bytes)) in fixtures.iter().enumerate() {
            let mut raw = RawConfig::default();
            let mut diagnostics = Vec::new();
            let (complete, _) = load_file(index % 7, bytes, &mut raw, &mut diagnostics);
            findings += diagnostics.len();
            let encoded = cache::encode(complete, &raw, &diagnostics);
            let (back_complete, back_raw, back_diagnostics) = cache::decode(&encoded)
                .unwrap_or_else(|| panic!("{} does not decode", path.display()));
            assert_eq!(back_complete, complete, "{}", path.display());
            assert_eq!(
                format!("{back_raw:?}"),
                format!("{raw:?}"),
                "{}",
                path.display()
            );
            assert_eq!(back_diagnostics, diagnostics, "{}", path.display());
            // Any cut short is refused, never half read.
            for cut in [0, 1, encoded.len() / 2, encoded.len() - 1] {
                assert!(
                    cache::decode(&encoded[..cut]).is_none(),
                    "{}",
                    path.display()
                );
            }
        }
        assert!(
            findings >= 20,
            "the fixtures hold only {findings} load findings"
        );
    }

    /// The small set in `set/` of a new folder, loaded once through a cache
    /// saved to `cache` beside it (all four files parsed).
    fn small_set_with_saved_cache() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("set");
        std::fs::create_dir(&root).unwrap();
        let file = dir.path().join("cache");
        write_small_set(&root);
        assert_eq!(assert_saved_cache_agrees(&root, &file), 4);
        (dir, root, file)
    }

    /// [`assert_cache_agrees`] through a cache saved to `file` and opened
    /// again, as separate runs of the program share it.
    fn assert_saved_cache_agrees(dir: &Path, file: &Path) -> usize {
        let mut cache = ParseCache::open(file).unwrap_or_else(|_| ParseCache::new());
        let parsed = assert_cache_agrees(dir, &mut cache);
        cache.save(file).unwrap();
        parsed
    }

    #[test]
    fn the_saved_parse_cache_is_used_across_runs_and_never_differs() {
        let (_dir, root, file) = small_set_with_saved_cache();
        assert_eq!(
            assert_saved_cache_agrees(&root, &file),
            0,
            "all from the file"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the cache holds phone numbers");
        }

        // The same size and modification time, other bytes.
        rewrite_keeping_time(&root.join("c.yaml"), &user_file("c", "New"));
        assert_eq!(assert_saved_cache_agrees(&root, &file), 1);

        // A file renamed into another place of the set; one swapped for
        // another's content under its name (a stale entry by path).
        std::fs::rename(root.join("b.yaml"), root.join("z.yaml")).unwrap();
        assert!(assert_saved_cache_agrees(&root, &file) >= 1);
        std::fs::write(root.join("d.yaml"), user_file("c", "New")).unwrap();
        std::fs::write(root.join("c.yaml"), user_file("d", "Old")).unwrap();
        assert_eq!(assert_saved_cache_agrees(&root, &file), 2);
        assert_eq!(assert_saved_cache_agrees(&root, &file), 0);

        // A damaged or cut-short last record is not used (the file it held is
        // parsed again), and the next save writes the cache whole; a file
        // that is no cache at all is not used, nor written over (it may be
        // someone's: see `crate::files`).
        let good = std::fs::read(&file).unwrap();
        let mut damaged = good.clone();
        let last = damaged.len() - 3;
        damaged[last] ^= 0x20;
        for (bad, parsed) in [(damaged, 1), (good[..good.len() - 1].to_vec(), 1)] {
            std::fs::write(&file, &bad).unwrap();
            assert!(ParseCache::open(&file).is_ok());
            assert_eq!(assert_saved_cache_agrees(&root, &file), parsed);
            assert_eq!(assert_saved_cache_agrees(&root, &file), 0);
        }
        std::fs::write(&file, b"not a cache").unwrap();
        assert!(ParseCache::open(&file).is_err());
        let mut cache = ParseCache::new();
        assert_eq!(assert_cache_agrees(&root, &mut cache), 4);
        let refused = cache.save(&file).unwrap_err();
        assert!(
            refused.to_string().contains("not a supportctl parse cache"),
            "{refused}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"not a cache");
        std::fs::remove_file(&file).unwrap();
        assert_eq!(assert_saved_cache_agrees(&root, &file), 4);
        assert_eq!(assert_saved_cache_agrees(&root, &file), 0);
        // A record damaged in the middle ends what is read: the records
        // after it are not trusted either.
        let whole = std::fs::read(&file).unwrap();
        let mut damaged = whole.clone();
        let middle = whole.len() / 2;
        damaged[middle] ^= 0x20;
        std::fs::write(&file, &damaged).unwrap();
        let opened = ParseCache::open(&file).unwrap();
        assert!(
            (1..4).contains(&opened.files.len()),
            "{} of 4 kept",
            opened.files.len()
        );
        assert_eq!(
            assert_saved_cache_agrees(&root, &file),
            4 - opened.files.len()
        );
        assert_eq!(std::fs::read(&file).unwrap(), whole, "written whole again");
        // Nothing is written when nothing changed.
        let mut cache = ParseCache::open(&file).unwrap();
        load_cached(&root, &Limits::default(), &mut cache);
        assert!(!cache.save(&file).unwrap());
    }

    #[test]
    fn a_save_after_an_edit_adds_to_the_cache_file_and_rewrites_it_when_it_grows() {
        use std::os::unix::fs::MetadataExt as _;
        let (dir, root, file) = small_set_with_saved_cache();
        let first = std::fs::metadata(&file).unwrap();

        // One edit: only its record is added, to the same file.
        std::fs::write(root.join("c.yaml"), user_file("c", "Newer")).unwrap();
        assert_eq!(assert_saved_cache_agrees(&root, &file), 1);
        let second = std::fs::metadata(&file).unwrap();
        assert_eq!(second.ino(), first.ino(), "added to, not replaced");
        assert!(second.len() > first.len());
        assert!(second.len() < first.len() * 2, "one record of four added");

        // A file gone from the set: a record says so, and the cache opened
        // again does not hold it.
        std::fs::remove_file(root.join("d.yaml")).unwrap();
        assert_eq!(assert_saved_cache_agrees(&root, &file), 0);
        assert_eq!(std::fs::metadata(&file).unwrap().ino(), first.ino());
        let opened = ParseCache::open(&file).unwrap();
        assert!(!opened.files.contains_key(&root.join("d.yaml")));
        assert_eq!(opened.files.len(), 3);

        // Edit after edit: the file is written afresh before the records of
        // old parses outgrow twice what the live ones take (plus 1 MiB).
        let big = |n: usize| {
            let users: String = (0..2_000)
                .map(|i| format!("  u{i}:\n    email: u{i}@acme.example\n    name: Name {n}\n"))
                .collect();
            format!("users:\n{users}")
        };
        let mut replaced = false;
        for n in 0..40 {
            std::fs::write(root.join("c.yaml"), big(n)).unwrap();
            assert_eq!(assert_saved_cache_agrees(&root, &file), 1);
            replaced |= std::fs::metadata(&file).unwrap().ino() != first.ino();
        }
        assert!(replaced, "never written afresh");
        let size = std::fs::metadata(&file).unwrap().len();
        std::fs::write(root.join("c.yaml"), big(99)).unwrap();
        let mut cache = ParseCache::new();
        assert_cache_agrees(&root, &mut cache);
        let fresh = dir.path().join("fresh");
        cache.save(&fresh).unwrap();
        let one = std::fs::metadata(&fresh).unwrap().len();
        assert!(size <= 2 * one + (1 << 20), "{size} bytes for {one} live");
    }

    #[test]
    fn a_save_does_not_add_to_a_cache_file_another_process_changed() {
        let (_dir, root, file) = small_set_with_saved_cache();

        // Two runs open the same cache; each sees another file edited and
        // saves. The second finds the file changed since it opened it, and
        // writes it whole: both edits are then held.
        let mut one = ParseCache::open(&file).unwrap();
        let mut two = ParseCache::open(&file).unwrap();
        std::fs::write(root.join("b.yaml"), user_file("b", "One")).unwrap();
        assert_eq!(assert_cache_agrees(&root, &mut one), 1);
        one.save(&file).unwrap();
        std::fs::write(root.join("c.yaml"), user_file("c", "Two")).unwrap();
        assert_eq!(assert_cache_agrees(&root, &mut two), 2);
        two.save(&file).unwrap();
        assert_eq!(assert_saved_cache_agrees(&root, &file), 0);

        // A cache file replaced by another build's after it was opened.
        let mut three = ParseCache::open(&file).unwrap();
        std::fs::write(root.join("d.yaml"), user_file("d", "Three")).unwrap();
        assert_eq!(assert_cache_agrees(&root, &mut three), 1);
        let mut other = std::fs::read(&file).unwrap();
        let at = b"supportctl parse cache\n".len() + 1 + 1;
        other[at] ^= 1;
        std::fs::write(&file, &other).unwrap();
        three.save(&file).unwrap();
        assert_eq!(assert_saved_cache_agrees(&root, &file), 0);
    }

    #[test]
    fn a_cache_written_by_another_build_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), user_file("b", "B")).unwrap();
        let file = dir.path().join("cache");
        assert_eq!(assert_saved_cache_agrees(dir.path(), &file), 1);
        let bytes = std::fs::read(&file).unwrap();
        // The build id follows the magic and the format number; change one
        // character of it and reseal nothing: the id alone must refuse it.
        let at = b"supportctl parse cache\n".len() + 1 + 1;
        let mut other = bytes.clone();
        other[at] ^= 1;
        std::fs::write(&file, &other).unwrap();
        let why = ParseCache::open(&file).unwrap_err();
        assert!(why.contains("another build"), "{why}");
        assert_eq!(assert_saved_cache_agrees(dir.path(), &file), 1);
    }

    #[test]
    fn a_load_without_a_cache_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), user_file("b", "B")).unwrap();
        let mut cache = ParseCache::default();
        load_cached(dir.path(), &Limits::default(), &mut cache);
        assert!(cache.files.is_empty());
        load_cached(dir.path(), &Limits::default(), &mut cache);
        assert_eq!((cache.last_parsed, cache.last_reused), (1, 0));
    }

    #[test]
    fn every_bad_entry_is_reported_and_good_ones_kept() {
        let (loaded, diags) = load_text(
            "users:\n  a: { email: a@x.example, emial: 1 }\n  b: { name: B }\n  c: { email: c@x.example }\n",
        );
        let rules: Vec<_> = diags
            .iter()
            .map(|d| (d.rule, d.location.unwrap().line))
            .collect();
        assert_eq!(
            rules,
            vec![(Rule::UnknownField, 2), (Rule::MissingField, 3)]
        );
        assert_eq!(diags[0].hint.as_deref(), Some("did you mean `email`?"));
        assert_eq!(loaded.raw.users.len(), 1);
        assert_eq!(loaded.raw.users[0].id.value, "c");
    }

    #[test]
    fn values_keep_their_places() {
        let (loaded, diags) = load_text("approvals:\n  - user: bob\n    role: user\n");
        assert!(diags.is_empty(), "{diags:?}");
        let approval = &loaded.raw.approvals[0];
        assert_eq!(approval.user.value, "bob");
        let l = approval.user.location;
        assert_eq!((l.line, l.column, l.len), (2, 11, 3));
    }

    #[test]
    fn a_wrong_enum_value_gets_a_hint() {
        let (_, diags) = load_text("approvals:\n  - user: bob\n    role: admn\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].rule, Rule::InvalidType);
        assert_eq!(diags[0].location.unwrap().line, 3);
        assert!(diags[0].hint.as_deref().unwrap().contains("`admin`"));
    }

    #[test]
    fn duplicate_mapping_keys_name_both_places() {
        let (_, diags) =
            load_text("users:\n  a: { email: a@x.example }\n  a: { email: b@x.example }\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].rule, Rule::DuplicateKey);
        assert_eq!(diags[0].location.unwrap().line, 3);
        assert_eq!(diags[0].related[0].location.line, 2);
    }

    #[test]
    fn non_utf8_is_reported_at_its_byte() {
        let mut raw = RawConfig::default();
        let mut diags = Vec::new();
        load_file(0, b"users:\n  a\xff: 1\n", &mut raw, &mut diags);
        assert_eq!(diags[0].rule, Rule::Unreadable);
        let l = diags[0].location.unwrap();
        assert_eq!((l.line, l.column), (2, 4));
    }

    #[test]
    fn non_utf8_after_a_lone_carriage_return_is_on_the_next_line() {
        let mut raw = RawConfig::default();
        let mut diags = Vec::new();
        load_file(0, b"users:\r  a:\r\n  b\xff: 1\n", &mut raw, &mut diags);
        let l = diags[0].location.unwrap();
        assert_eq!((l.line, l.column), (3, 4));
    }

    #[test]
    fn scalars_and_lists_at_the_top_are_errors() {
        for text in ["- a\n- b\n", "hello\n"] {
            let (_, diags) = load_text(text);
            assert_eq!(diags[0].rule, Rule::InvalidType, "{text}");
        }
        let (_, diags) = load_text("");
        assert!(diags.is_empty());
    }

    #[test]
    fn a_set_stamp_changes_with_any_file_of_the_set_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("set");
        std::fs::create_dir_all(root.join("users")).unwrap();
        std::fs::write(root.join("a.yaml"), "tenancy: {}\n").unwrap();
        std::fs::write(root.join("users/b.yaml"), "users: {}\n").unwrap();
        std::fs::write(root.join("notes.txt"), "not read").unwrap();
        let limits = Limits::default();
        let stamp = || SetStamp::take(&root, &limits);
        let first = stamp();
        assert_eq!(stamp(), first, "nothing changed");
        // A file that is not part of the set does not count.
        std::fs::write(root.join("notes.txt"), "still not read").unwrap();
        assert_eq!(stamp(), first);
        // A rewrite in place to the same size, a moment later: its times.
        std::thread::sleep(std::time::Duration::from_millis(30));
        std::fs::write(root.join("users/b.yaml"), "users: []\n").unwrap();
        let rewritten = stamp();
        assert_ne!(rewritten, first);
        assert_eq!(first.changed_files(&rewritten), [root.join("users/b.yaml")]);
        // A new file, a file gone, a file replaced by another (a new inode).
        std::fs::write(root.join("c.yml"), "").unwrap();
        let added = stamp();
        assert_eq!(rewritten.changed_files(&added), [root.join("c.yml")]);
        std::fs::remove_file(root.join("c.yml")).unwrap();
        assert_eq!(stamp(), rewritten);
        let replacement = dir.path().join("replacement.yaml");
        std::fs::write(&replacement, "tenancy: {}\n").unwrap();
        std::fs::rename(&replacement, root.join("a.yaml")).unwrap();
        let replaced = stamp();
        assert_eq!(rewritten.changed_files(&replaced), [root.join("a.yaml")]);
        // Which files a stamp holds, by identity, whatever the path.
        let meta = std::fs::metadata(root.join("a.yaml")).unwrap();
        assert!(replaced.holds(&meta) && !rewritten.holds(&meta));
    }
}
