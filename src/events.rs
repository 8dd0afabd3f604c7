//! File events and stop signals for `watch`: the only module that names
//! notify and signal-hook.
//!
//! Everything it learns becomes a [`Wake`] sent down one channel, so the
//! watch loop waits in one place for files, signals and its own timers. It
//! never says *what* changed in a way the loop could act on: reconciling is
//! level-triggered, and a change only means "look again".

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
use notify::{EventKind, PollWatcher, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, NoCache, RecommendedCache};

/// Why the watch loop woke up.
#[derive(Debug)]
pub enum Wake {
    /// Something changed under the watched paths (after debouncing); the
    /// paths are for logging only.
    Changed(Vec<PathBuf>),
    /// The watcher reported trouble (an overflowed event queue, a watch that
    /// could not be added). The loop looks again, as for a change.
    Trouble(String),
    /// SIGINT, SIGTERM or SIGHUP arrived (its name).
    Stop(&'static str),
    /// This watcher started or stopped leading its tenancy
    /// ([`crate::engine::leader`]): a new leader reconciles at once.
    Lease,
}

/// How to learn of changes.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// The operating system's file events (inotify on Linux).
    Events,
    /// Scan the tree every interval, for file systems without events.
    Poll(Duration),
}

/// Paths whose changes never matter: the database and its companions,
/// supportctl's own temporary files, and editors' swap and temporary files.
#[derive(Debug, Clone, Default)]
pub struct Ignored {
    exact: Vec<PathBuf>,
}

impl Ignored {
    /// Ignores `paths` exactly (compared after making them absolute).
    pub fn new(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        Ignored {
            exact: paths.into_iter().map(|p| absolute(&p)).collect(),
        }
    }

    pub fn contains(&self, path: &Path) -> bool {
        if is_editor_temporary(path) || crate::files::is_temporary(path) {
            return true;
        }
        let path = absolute(path);
        self.exact.contains(&path)
    }
}

/// Whether a change at `path` could change the config set at `root` (which
/// resolved to `target` when the watches were set): it must be `root`, under
/// it, or the target or under it — the parent folders are watched only to see
/// `root` itself come, go or be swapped, so their other entries (another
/// program's temporary folders beside it, say) never matter. Below that: a
/// config file, a directory or symlink (a swap, a new folder), anything that
/// is gone (a removed folder is one event). A regular file of another kind
/// (a log written beside the config, say) cannot, and reacting to it could
/// loop when that file is the watcher's own log.
fn could_matter(path: &Path, root: &Path, target: Option<&Path>) -> bool {
    if path == root || target == Some(path) {
        return true;
    }
    let inside = path.starts_with(root) || target.is_some_and(|t| path.starts_with(t));
    if !inside {
        return false;
    }
    let is_config = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => is_config,
        _ => true,
    }
}

/// Whether `path` is a file editors write beside the one being saved: vim's
/// swap files, backups and its `4913` probe, Emacs lock and auto-save files,
/// JetBrains' safe-write files, and similar.
pub fn is_editor_temporary(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name == "4913"
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swo")
        || name.ends_with(".swx")
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_old___")
        || name.ends_with(".kate-swp")
        || name.starts_with(".#")
        || name.starts_with(".goutputstream-")
        || (name.starts_with('#') && name.ends_with('#'))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

enum Inner {
    Events(Debouncer<RecommendedWatcher, RecommendedCache>),
    /// Polling: the config set's own files compared by content (`files`),
    /// and the folders around it by metadata only (`folders`): a folder
    /// around a config set may hold the state, and reading a SQLite file
    /// by hand, as a comparison by content does, would drop the locks this
    /// process's connections hold on it.
    Poll {
        files: Debouncer<PollWatcher, NoCache>,
        folders: Debouncer<PollWatcher, NoCache>,
    },
}

/// What a watch is of: the config set's files (read when polling), or a
/// folder around them (only listed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watched {
    Files,
    Folder,
}

impl Inner {
    fn watch(&mut self, path: &Path, mode: RecursiveMode, what: Watched) -> notify::Result<()> {
        match self {
            Inner::Events(d) => d.watch(path, mode),
            Inner::Poll { files, .. } if what == Watched::Files => files.watch(path, mode),
            Inner::Poll { folders, .. } => folders.watch(path, mode),
        }
    }

    fn unwatch(&mut self, path: &Path, what: Watched) -> notify::Result<()> {
        match self {
            Inner::Events(d) => d.unwatch(path),
            Inner::Poll { files, .. } if what == Watched::Files => files.unwatch(path),
            Inner::Poll { folders, .. } => folders.unwatch(path),
        }
    }
}

/// How long a config file written to and not yet closed counts as being
/// written, after the last write seen: a writer that pauses longer (or a
/// file changed by `truncate`, which closes nothing) is read as it is.
pub const WRITER_PATIENCE: Duration = Duration::from_secs(30);

/// The config files that are open for writing, as file events tell it: a
/// write (or a creation) seen and the writer's close not yet, each with
/// when its last write was seen. Events only: polling sees no closes.
#[derive(Debug, Default)]
struct Writing {
    files: HashMap<PathBuf, Instant>,
}

impl Writing {
    /// Follows one event; returns whether it closed a file being written.
    fn follow(&mut self, kind: &EventKind, path: &Path) -> bool {
        match kind {
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any)
            | EventKind::Create(CreateKind::File | CreateKind::Any) => {
                // A symlink or a folder created is not written to.
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
                    self.files.insert(path.to_path_buf(), Instant::now());
                }
                false
            }
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                self.files.remove(path).is_some()
            }
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_)) => {
                self.files.remove(path);
                false
            }
            _ => false,
        }
    }
}

/// Watches a config set's path: the path itself (recursively, when it is a
/// directory), the directory holding it, and, when the path is a symlink,
/// the directory of its target. Watching directories rather than files is
/// what keeps atomic saves (write a temporary, rename it over) visible.
pub struct FileWatch {
    inner: Inner,
    root: PathBuf,
    watched: Vec<(PathBuf, RecursiveMode, Watched)>,
    /// Where `root` pointed when the watches were set, to notice a swap.
    target: Option<PathBuf>,
    /// The same, for the event handler's thread.
    shared_target: Arc<Mutex<Option<PathBuf>>>,
    /// The config files open for writing (file events only).
    writing: Arc<Mutex<Writing>>,
}

impl FileWatch {
    /// Starts watching `root`; debounced changes not all `ignored` are sent
    /// as [`Wake::Changed`].
    ///
    /// Long on purpose: what is watched, what is ignored and how each event
    /// becomes a wake-up read together in one place.
    pub fn start(
        root: &Path,
        mode: Mode,
        debounce: Duration,
        ignored: Ignored,
        wake: Sender<Wake>,
    ) -> Result<FileWatch, String> {
        let root = absolute(root);
        let root_in_handler = root.clone();
        let shared_target: Arc<Mutex<Option<PathBuf>>> = Arc::default();
        let target_in_handler = Arc::clone(&shared_target);
        let writing: Arc<Mutex<Writing>> = Arc::default();
        let writing_in_handler = Arc::clone(&writing);
        let track_writers = matches!(mode, Mode::Events);
        let handler = move |result: DebounceEventResult| match result {
            Ok(events) => {
                let target = target_in_handler
                    .lock()
                    .map(|t| t.clone())
                    .unwrap_or_default();
                let mut paths: Vec<PathBuf> = Vec::new();
                let mut rescan = false;
                for event in events {
                    rescan |= event.need_rescan();
                    if track_writers && let Ok(mut writing) = writing_in_handler.lock() {
                        for path in &event.event.paths {
                            if ignored.contains(path)
                                || !could_matter(path, &root_in_handler, target.as_deref())
                            {
                                continue;
                            }
                            // A writer's close is news: the file is whole now.
                            if writing.follow(&event.event.kind, path) {
                                paths.push(path.clone());
                            }
                        }
                    }
                    // Opening and reading files is what a reconcile does:
                    // reacting to it would loop.
                    if matches!(event.event.kind, notify::EventKind::Access(_)) {
                        continue;
                    }
                    tracing::trace!(kind = ?event.event.kind, paths = ?event.event.paths, "file event");
                    paths.extend(event.event.paths.into_iter().filter(|p| {
                        !ignored.contains(p) && could_matter(p, &root_in_handler, target.as_deref())
                    }));
                }
                if rescan {
                    let _ = wake.send(Wake::Trouble(
                        "the file watcher lost events; looking at every file again".into(),
                    ));
                } else if !paths.is_empty() {
                    paths.sort();
                    paths.dedup();
                    let _ = wake.send(Wake::Changed(paths));
                }
            }
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                let _ = wake.send(Wake::Trouble(text.join("; ")));
            }
        };
        let inner = match mode {
            Mode::Events => Inner::Events(
                notify_debouncer_full::new_debouncer(debounce, None, handler)
                    .map_err(|e| format!("cannot start the file watcher: {e}"))?,
            ),
            Mode::Poll(every) => {
                let handler = Arc::new(handler);
                let poller = |contents: bool| {
                    let handler = Arc::clone(&handler);
                    notify_debouncer_full::new_debouncer_opt::<_, PollWatcher, NoCache>(
                        debounce,
                        None,
                        move |result| handler(result),
                        NoCache,
                        notify::Config::default()
                            .with_poll_interval(every)
                            .with_compare_contents(contents),
                    )
                    .map_err(|e| format!("cannot start the file watcher: {e}"))
                };
                Inner::Poll {
                    // The poll watcher compares modification times in whole
                    // seconds: an edit in the same second as the last one
                    // would be missed without comparing the contents too.
                    files: poller(true)?,
                    // A folder's entries coming and going is all that
                    // matters of it, and its other files are not read.
                    folders: poller(false)?,
                }
            }
        };
        let mut watch = FileWatch {
            inner,
            root,
            watched: Vec::new(),
            target: None,
            shared_target,
            writing,
        };
        watch.refresh()?;
        Ok(watch)
    }

    /// The config files open for writing now: written to (or created) and
    /// not yet closed by their writer. A file gone, or not written to for
    /// [`WRITER_PATIENCE`], no longer counts (the second is logged).
    pub fn being_written(&self) -> Vec<PathBuf> {
        let Ok(mut writing) = self.writing.lock() else {
            return Vec::new();
        };
        writing.files.retain(|path, last| {
            if !path.exists() {
                return false;
            }
            if last.elapsed() < WRITER_PATIENCE {
                return true;
            }
            tracing::warn!(
                file = %crate::diag::escape_control(&path.display().to_string()),
                seconds = WRITER_PATIENCE.as_secs(),
                "a config file is still open for writing but unchanged for a while; reading it as it is"
            );
            false
        });
        let mut files: Vec<PathBuf> = writing.files.keys().cloned().collect();
        files.sort();
        files
    }

    /// Sets the watches again when the path now resolves elsewhere (a
    /// symlink swapped to a new target) or a watched directory went away.
    /// Cheap when nothing moved; the loop calls it after every wake.
    pub fn refresh(&mut self) -> Result<(), String> {
        let target = std::fs::canonicalize(&self.root).ok();
        let gone = self.watched.iter().any(|(p, _, _)| !p.exists());
        if !self.watched.is_empty() && target == self.target && !gone {
            return Ok(());
        }
        for (path, _, what) in std::mem::take(&mut self.watched) {
            // A directory that went away took its watch with it.
            let _ = self.inner.unwatch(&path, what);
        }
        let polling = matches!(self.inner, Inner::Poll { .. });
        let mut wanted: Vec<(PathBuf, RecursiveMode, Watched)> = Vec::new();
        if let Some(parent) = self.root.parent() {
            wanted.push((
                parent.to_path_buf(),
                RecursiveMode::NonRecursive,
                Watched::Folder,
            ));
        }
        if self.root.is_dir() {
            wanted.push((self.root.clone(), RecursiveMode::Recursive, Watched::Files));
        } else if polling && self.root.exists() {
            // The folder is only listed: the file itself is compared.
            wanted.push((
                self.root.clone(),
                RecursiveMode::NonRecursive,
                Watched::Files,
            ));
        }
        if let Some(target) = &target
            && target != &self.root
        {
            if target.is_dir() {
                wanted.push((target.clone(), RecursiveMode::Recursive, Watched::Files));
            } else {
                if let Some(parent) = target.parent() {
                    wanted.push((
                        parent.to_path_buf(),
                        RecursiveMode::NonRecursive,
                        Watched::Folder,
                    ));
                }
                if polling {
                    wanted.push((target.clone(), RecursiveMode::NonRecursive, Watched::Files));
                }
            }
        }
        wanted.dedup();
        let mut problems = Vec::new();
        for (path, mode, what) in wanted {
            match self.inner.watch(&path, mode, what) {
                Ok(()) => self.watched.push((path, mode, what)),
                Err(e) => problems.push(format!("cannot watch `{}`: {e}", path.display())),
            }
        }
        if let Ok(mut shared) = self.shared_target.lock() {
            shared.clone_from(&target);
        }
        self.target = target;
        if self.watched.is_empty() {
            return Err(problems.join("; "));
        }
        for problem in problems {
            tracing::warn!("{problem}");
        }
        Ok(())
    }
}

/// The signals that stop a watcher, their names, and the exit status of a
/// second one (128 + the signal's number). SIGHUP stops it like SIGTERM:
/// the terminal it was started from is gone, and there is nothing to reload
/// (every reconcile reads the config set afresh).
const STOP_SIGNALS: [(i32, &str, i32); 3] = [
    (signal_hook::consts::SIGINT, "SIGINT", 130),
    (signal_hook::consts::SIGTERM, "SIGTERM", 143),
    (signal_hook::consts::SIGHUP, "SIGHUP", 129),
];

/// Turns SIGINT, SIGTERM and SIGHUP into [`Wake::Stop`]. A second one ends
/// the process at once with 128 + the signal's number: whatever transaction
/// was open is rolled back by SQLite, so the database stays whole.
pub fn on_stop_signals(wake: Sender<Wake>) -> std::io::Result<()> {
    let stopping = Arc::new(AtomicBool::new(false));
    for (signal, _, status) in STOP_SIGNALS {
        // The order matters: the exit checks the flag before this signal sets it.
        signal_hook::flag::register_conditional_shutdown(signal, status, Arc::clone(&stopping))?;
        signal_hook::flag::register(signal, Arc::clone(&stopping))?;
    }
    let mut signals = signal_hook::iterator::Signals::new(STOP_SIGNALS.map(|(s, _, _)| s))?;
    std::thread::Builder::new()
        .name("stop signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let name = STOP_SIGNALS
                    .iter()
                    .find(|(s, _, _)| *s == signal)
                    .map_or("a stop signal", |(_, name, _)| name);
                // Said at once, so an operator sees the signal was heard even
                // while a long apply finishes.
                tracing::info!(signal = name, "stopping");
                if wake.send(Wake::Stop(name)).is_err() {
                    break;
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_temporaries_are_recognised_and_configs_are_not() {
        for name in [
            ".acme.yaml.swp",
            ".acme.yaml.swx",
            "acme.yaml~",
            "4913",
            "acme.yaml___jb_tmp___",
            "acme.yaml___jb_old___",
            ".#acme.yaml",
            "#acme.yaml#",
        ] {
            assert!(is_editor_temporary(Path::new(name)), "{name}");
        }
        for name in ["acme.yaml", "users.yml", "..data", "4914", "swp.yaml"] {
            assert!(!is_editor_temporary(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn only_changes_at_or_under_the_config_set_or_its_target_matter() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("config");
        let target = dir.path().join("releases/v2");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&target).unwrap();
        std::fs::create_dir_all(dir.path().join("neighbour")).unwrap();
        std::fs::write(root.join("a.yaml"), "").unwrap();
        std::fs::write(root.join("app.log"), "").unwrap();
        let t = Some(target.as_path());
        // The config set, its files and folders, and what it points at.
        assert!(could_matter(&root, &root, t));
        assert!(could_matter(&root.join("a.yaml"), &root, t));
        assert!(could_matter(&root.join("gone"), &root, t));
        assert!(could_matter(&target, &root, t));
        assert!(could_matter(&target.join("b.yaml"), &root, t));
        // A log beside the files, and anything else in the parent folder,
        // watched only to see the config set itself come and go.
        assert!(!could_matter(&root.join("app.log"), &root, t));
        assert!(!could_matter(&dir.path().join("neighbour"), &root, t));
        assert!(!could_matter(&dir.path().join("other.yaml"), &root, t));
        assert!(!could_matter(&dir.path().join("config2"), &root, None));
    }

    #[test]
    fn a_config_file_is_being_written_from_a_write_until_its_writers_close() {
        use notify::event::{DataChange, RemoveKind, RenameMode};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, "").unwrap();
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let mut writing = Writing::default();
        // A write opens it; reading (an open, a close of a reader) does not.
        assert!(!writing.follow(&EventKind::Access(AccessKind::Open(AccessMode::Any)), &file));
        assert!(writing.files.is_empty());
        assert!(!writing.follow(&write, &file));
        assert!(!writing.follow(&write, &file));
        assert!(writing.files.contains_key(&file));
        // The writer's close ends it, and says so (once).
        assert!(writing.follow(&close, &file));
        assert!(!writing.follow(&close, &file));
        assert!(writing.files.is_empty());
        // A file created is being written; a symlink created is not.
        assert!(!writing.follow(&EventKind::Create(CreateKind::File), &file));
        assert!(!writing.follow(&EventKind::Create(CreateKind::File), &link));
        assert_eq!(writing.files.keys().collect::<Vec<_>>(), [&file]);
        // Removed or renamed away, it is nobody's any more.
        assert!(!writing.follow(&EventKind::Remove(RemoveKind::File), &file));
        assert!(writing.files.is_empty());
        writing.follow(&write, &file);
        writing.follow(
            &EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            &file,
        );
        assert!(writing.files.is_empty());
    }

    #[test]
    fn the_database_and_its_companions_are_ignored_wherever_they_are_named_from() {
        let here = std::env::current_dir().unwrap();
        let ignored = Ignored::new([PathBuf::from("state/s.db"), here.join("state/s.db-wal")]);
        assert!(ignored.contains(&here.join("state/s.db")));
        assert!(ignored.contains(Path::new("state/s.db-wal")));
        assert!(!ignored.contains(Path::new("state/s.db-shm")));
    }
}
