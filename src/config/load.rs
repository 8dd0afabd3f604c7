//! Loading: a config set's files read within the limits, each parsed (or
//! its entries taken from the parse cache), and what they gave put together
//! in the set's order, with the digest of its content.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::cache::{self, ParseCache, ParsedFile};
use super::discover::discover;
use super::merge;
use super::yaml;
use super::{Limits, Loaded, RawConfig};
use crate::diag::{Diagnostic, Location, Rule};

/// Loads the config set at `path`. Problems become diagnostics; whatever
/// could be read is kept.
pub fn load(path: &Path, limits: &Limits) -> (Loaded, Vec<Diagnostic>) {
    // Nothing is kept: every file is parsed once and moved, not copied.
    load_cached(path, limits, &mut ParseCache::disabled())
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
    let mut previous = cache.begin_load();
    let mut loaded = Loaded::default();
    let (files, mut diagnostics) = discover(path, limits);
    loaded.incomplete = !diagnostics.is_empty();
    let steps = read_files(path, files, limits, &mut loaded, &mut previous);

    // Each file read is hashed, and decoded or parsed; a file that could not
    // be read keeps its finding in its place.
    let keep = cache.keeps();
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
            Entry::Reused(entry) => cache.reused(file.path, entry),
            Entry::Parsed(entry) => cache.parsed(file.path, entry),
        }
        loaded.incomplete |= !file.complete;
        parts.push(file.raw);
        diagnostics.extend(file.found);
        hashed.push((file.relative, file.hash));
    }
    loaded.raw = RawConfig::concat(parts);
    cache.end_load(previous);
    loaded.digest = digest_of(&hashed);
    (loaded, diagnostics)
}

/// Reads `files`, the files of the set at `root`, in order and within the
/// limits, each with what `previous` held for its path; what could not be
/// read, a finding in its place (and the set's sources name every file).
fn read_files(
    root: &Path,
    files: Vec<PathBuf>,
    limits: &Limits,
    loaded: &mut Loaded,
    previous: &mut HashMap<PathBuf, ParsedFile>,
) -> Vec<Result<ReadFile, Diagnostic>> {
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
                    .strip_prefix(root)
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
    steps
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

/// Parses one file, which is `file` in the set's sources, appending its
/// entries to `raw`. Returns whether it was read whole, and its text for the
/// sources.
pub(super) fn load_file(
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
    merge::merge(&mut root, file, &text, raw, diagnostics);
    drop(root);
    (true, text)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut cache = ParseCache::empty();
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
}
