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

/// The parse cache against loads without one: whatever it holds, a load
/// through it gives exactly what parsing every file gives.
#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::config::discover::is_yaml_name;
    use crate::config::load::load_file;
    use crate::config::{Limits, Loaded, RawConfig, load, load_cached};
    use crate::diag::Diagnostic;

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
        let mut cache = ParseCache::empty();
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
    fn the_parse_cache_reparses_exactly_the_changed_files_and_never_differs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_small_set(root);
        let mut cache = ParseCache::empty();
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
            let encoded = encode(complete, &raw, &diagnostics);
            let (back_complete, back_raw, back_diagnostics) =
                decode(&encoded).unwrap_or_else(|| panic!("{} does not decode", path.display()));
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
                assert!(decode(&encoded[..cut]).is_none(), "{}", path.display());
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
        let mut cache = ParseCache::open(file).unwrap_or_else(|_| ParseCache::empty());
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
        let mut cache = ParseCache::empty();
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
        let mut cache = ParseCache::empty();
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
        let mut cache = ParseCache::disabled();
        load_cached(dir.path(), &Limits::default(), &mut cache);
        assert!(cache.files.is_empty());
        load_cached(dir.path(), &Limits::default(), &mut cache);
        assert_eq!((cache.last_parsed, cache.last_reused), (1, 0));
    }
}
