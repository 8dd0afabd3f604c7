//! The files supportctl writes, and the files it reads that are not config.
//!
//! One rule for every output — a saved plan (`plan -o`), the watcher's status
//! file, an export (`export --out`), manual pages (`man --out`), the parse
//! cache — and for any added later, which gets it by writing through here:
//!
//! - An output is never one of the files supportctl keeps or reads
//!   ([`Protected`]): the state database and its `-wal`, `-shm` and
//!   `-journal`, the parse cache, and the files of the config set (and no new
//!   `*.yaml`/`*.yml` file inside a config folder, which would join the set).
//!   A path is compared by the file it names — through a symlink, a hard
//!   link or another spelling — and, for a file not there yet, by its folder
//!   and name.
//! - An output never replaces an existing file of another kind ([`Kind`]): a
//!   plan replaces a plan, a status file a status file. An empty file holds
//!   nothing to lose and may be replaced (`mktemp` makes one); a folder, a
//!   device, a pipe or a socket never is.
//! - An output is written whole or not at all: into a temporary file beside
//!   it, made by tempfile under a random name no other file has
//!   (`O_CREAT | O_EXCL`, so a symlink planted at that name is never
//!   followed), with its mode from the moment it exists, then renamed over
//!   the path; on any failure the temporary file is removed. An export writes only new
//!   files, the same way, into folders it makes itself with mode 0700.
//!
//! A file read that is not config (a saved plan, the status file, the parse
//! cache) is read by [`read_bounded`]: opened without blocking (a FIFO does
//! not hang the reader), and read only when it is a regular file within a
//! size bound, checked before and while reading (it may grow meanwhile).
//! Config files have their own limits (`config::Limits`).

use std::fs::{File, Metadata, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// How much of an existing file is read to tell its kind.
const HEAD: usize = 4096;

/// The end of every temporary file's name (see [`is_temporary`]).
const TEMPORARY_SUFFIX: &str = ".supportctl-tmp";

/// A kind of file supportctl writes: what it is called, how an existing
/// file of the kind is recognised, and its mode.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    /// The kind in a message: "a saved plan".
    pub name: &'static str,
    /// Whether the first bytes of a file (up to 4 KiB) are a file of this
    /// kind. Only a file of the kind, or an empty one, is ever replaced.
    pub recognise: fn(&[u8]) -> bool,
    /// The file's mode. A private mode (no bits for group or others) is set
    /// exactly, whatever the umask; a public one is given less the umask, as
    /// any program's new files are.
    pub mode: u32,
    /// Whether the file is synced to disk before it takes the path (and its
    /// folder after): a saved plan must survive a power cut, a cache need
    /// not.
    pub durable: bool,
}

/// Why an output was refused or failed. Nothing was written when it was
/// refused.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The path names a file supportctl keeps or reads.
    #[error("it is {0}")]
    Protected(String),
    /// An existing file of another kind.
    #[error("it exists and is not {0}")]
    OtherKind(&'static str),
    /// Not a regular file: a folder, a device, a pipe, a socket.
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("it is {size} bytes, over the limit of {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl ReadError {
    /// Whether the file is not there at all.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

/// The files an output must never be: each with what it is, for the message.
#[derive(Clone, Debug, Default)]
pub struct Protected {
    files: Vec<(PathBuf, String)>,
    config_set: Option<PathBuf>,
}

impl Protected {
    /// Nothing protected yet.
    pub fn new() -> Self {
        Protected::default()
    }

    /// Protects the file at `path`, described as `what` ("the state
    /// database `s.db`").
    pub fn file(mut self, path: &Path, what: impl Into<String>) -> Self {
        self.files.push((path.to_path_buf(), what.into()));
        self
    }

    /// Protects the config set at `root`: the file itself, or every config
    /// file under the folder, and any new one there.
    pub fn config_set(mut self, root: &Path) -> Self {
        self.config_set = Some(root.to_path_buf());
        self
    }

    /// What `path` is among the protected files, if it is one.
    fn find(&self, path: &Path) -> Option<String> {
        for (file, what) in &self.files {
            if same_place(path, file) {
                return Some(what.clone());
            }
        }
        let root = self.config_set.as_deref()?;
        let shown = root.display();
        if same_place(path, root) {
            return Some(format!("the config set `{shown}`"));
        }
        let (Ok(root_dir), true) = (std::fs::canonicalize(root), root.is_dir()) else {
            return None;
        };
        let place = normal(path);
        let below = place.strip_prefix(&root_dir).ok()?;
        let hidden = below
            .components()
            .any(|c| c.as_os_str().as_bytes().starts_with(b"."));
        (!hidden && is_config_name(&place))
            .then(|| format!("a config file of the config set `{shown}`"))
    }
}

fn is_config_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Whether `a` and `b` name the same file: the same existing file (by
/// device and inode, through symlinks and hard links), or the same name in
/// the same folder.
fn same_place(a: &Path, b: &Path) -> bool {
    if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b))
        && (x.dev(), x.ino()) == (y.dev(), y.ino())
    {
        return true;
    }
    normal(a) == normal(b)
}

/// `path` made absolute, its folder resolved (symlinks and `..`), its last
/// component kept as it is.
fn normal(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .unwrap_or_else(|_| parent.to_path_buf())
            .join(name),
        _ => absolute,
    }
}

/// What a file of this type is called in a message.
fn type_name(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a named pipe (FIFO)"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Checks that `path` is none of the protected files (a folder an output
/// is written into, say).
pub fn check_not_protected(path: &Path, protected: &Protected) -> Result<(), OutputError> {
    match protected.find(path) {
        Some(what) => Err(OutputError::Protected(what)),
        None => Ok(()),
    }
}

/// Checks that `kind` may be written at `path`: not a protected file, and
/// nothing there but a file of the same kind or an empty one.
pub fn check_output(path: &Path, kind: &Kind, protected: &Protected) -> Result<(), OutputError> {
    check_not_protected(path, protected)?;
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        // Nothing there (a dangling symlink is replaced, never followed).
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if !meta.is_file() {
        return Err(OutputError::NotRegular(type_name(&meta)));
    }
    if meta.len() == 0 {
        return Ok(());
    }
    let head = read_head(path)?;
    if head.is_empty() || (kind.recognise)(&head) {
        Ok(())
    } else {
        Err(OutputError::OtherKind(kind.name))
    }
}

/// The first bytes of the regular file at `path`, opened without blocking.
fn read_head(path: &Path) -> Result<Vec<u8>, OutputError> {
    let file = open_for_reading(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(OutputError::NotRegular(type_name(&meta)));
    }
    let mut head = Vec::with_capacity(HEAD);
    file.take(HEAD as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Writes `bytes` as a file of `kind` at `path`, whole or not at all, when
/// [`check_output`] allows it.
pub fn write_output(
    path: &Path,
    kind: &Kind,
    bytes: &[u8],
    protected: &Protected,
) -> Result<(), OutputError> {
    replace_with(path, kind, protected, |file| file.write_all(bytes))
}

/// Like [`write_output`], with `fill` writing the file's content; returns
/// what `fill` returned.
pub fn replace_with<T>(
    path: &Path,
    kind: &Kind,
    protected: &Protected,
    fill: impl FnOnce(&mut File) -> io::Result<T>,
) -> Result<T, OutputError> {
    check_output(path, kind, protected)?;
    // Removed when dropped: on any failure below, nothing is left behind.
    let mut temporary = temporary_beside(path, kind.mode)?;
    let value = fill(temporary.as_file_mut())?;
    if kind.durable {
        temporary.as_file().sync_all()?;
    }
    // Again, just before the rename: the path may have changed while the
    // content was written.
    check_output(path, kind, protected)?;
    temporary.persist(path).map_err(|e| e.error)?;
    if kind.durable {
        sync_folder_of(path);
    }
    Ok(value)
}

/// Creates a new file at `path` with `bytes`, never replacing anything (an
/// existing file or symlink at `path` is an error), with `mode` set from the
/// moment it exists; refuses a protected path.
pub fn create_new(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    protected: &Protected,
) -> Result<(), OutputError> {
    check_not_protected(path, protected)?;
    let mut file = open_new(path, mode)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(e.into());
    }
    Ok(())
}

/// Makes the folder `path` and any parents it lacks, each one made here
/// with mode 0700 whatever the umask; a folder already there is left as it
/// is. Refuses a protected path.
pub fn create_private_dir(path: &Path, protected: &Protected) -> Result<(), OutputError> {
    check_not_protected(path, protected)?;
    let mut missing = Vec::new();
    let mut at = Some(path);
    while let Some(dir) = at.filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::symlink_metadata(dir) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(dir),
            Err(e) => return Err(e.into()),
        }
        at = dir.parent();
    }
    for dir in missing.into_iter().rev() {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => std::fs::set_permissions(dir, Permissions::from_mode(0o700))?,
            // Made meanwhile by someone else: theirs, and left as it is.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
    }
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return Err(OutputError::NotRegular(type_name(&meta)));
    }
    Ok(())
}

/// Opens a new file at `path` (`O_CREAT | O_EXCL`: never an existing file,
/// never through a symlink) with `mode`; a private mode is set exactly.
fn open_new(path: &Path, mode: u32) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    if mode & 0o077 == 0 {
        // The umask may have taken bits from the owner's; set it exactly.
        file.set_permissions(Permissions::from_mode(mode))?;
    }
    Ok(file)
}

/// A new temporary file beside `path`, removed when dropped unless it is
/// persisted or kept: tempfile's, under a random name no file has
/// (`O_CREAT | O_EXCL`, never through a symlink), hidden, named after
/// `path` and ending in `.supportctl-tmp`, with `mode` from the moment it
/// exists (a private mode set exactly, whatever the umask).
fn temporary_beside(path: &Path, mode: u32) -> io::Result<NamedTempFile> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Long names are cut, so that the temporary's name stays within limits.
    let name = path.file_name().map_or(&[][..], |n| n.as_bytes());
    let prefix = format!(
        ".{}.",
        String::from_utf8_lossy(&name[..name.len().min(100)])
    );
    let temporary = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(TEMPORARY_SUFFIX)
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(folder)?;
    if mode & 0o077 == 0 {
        // The umask may have taken bits from the owner's; set it exactly.
        temporary
            .as_file()
            .set_permissions(Permissions::from_mode(mode))?;
    }
    Ok(temporary)
}

/// Like `temporary_beside`, but the file stays until the caller removes
/// it (a new database is made under such a name, then linked into place).
pub fn create_temporary(path: &Path, mode: u32) -> io::Result<(File, PathBuf)> {
    temporary_beside(path, mode)?.keep().map_err(|e| e.error)
}

/// Whether `path` is one of the temporary files supportctl writes before
/// renaming them into place, or a side file SQLite keeps beside one (a new
/// database is made under a temporary name): a watcher ignores them.
pub fn is_temporary(path: &Path) -> bool {
    let Some(name) = path.file_name().map(|n| n.as_bytes()) else {
        return false;
    };
    let suffix = TEMPORARY_SUFFIX.as_bytes();
    name.starts_with(b".")
        && name
            .windows(suffix.len())
            .rposition(|w| w == suffix)
            .is_some_and(|at| {
                matches!(
                    &name[at + suffix.len()..],
                    b"" | b"-wal" | b"-shm" | b"-journal"
                )
            })
}

/// Syncs the folder holding `path`, so that a rename into it lasts; a
/// failure only weakens durability and is not reported.
fn sync_folder_of(path: &Path) {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
}

/// Opens `path` for reading without blocking: a FIFO opens at once (and is
/// then refused as not regular) instead of waiting for a writer.
fn open_for_reading(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Reads the regular file at `path` when it is at most `max` bytes; also
/// returns its metadata, taken from the open file.
pub fn read_bounded_with_metadata(path: &Path, max: u64) -> Result<(Vec<u8>, Metadata), ReadError> {
    let file = open_for_reading(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(type_name(&meta)));
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            max,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            max,
        });
    }
    Ok((bytes, meta))
}

/// Reads the regular file at `path` when it is at most `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    read_bounded_with_metadata(path, max).map(|(bytes, _)| bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: Kind = Kind {
        name: "a test file",
        recognise: |head| head.starts_with(b"test:"),
        mode: 0o600,
        durable: false,
    };

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_output_replaces_its_own_kind_and_an_empty_file_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let none = Protected::new();
        write_output(&path, &TEXT, b"test: 1", &none).unwrap();
        write_output(&path, &TEXT, b"test: 2", &none).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"test: 2");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        write_output(&empty, &TEXT, b"test: 3", &none).unwrap();
        let other = dir.path().join("other");
        std::fs::write(&other, b"my notes").unwrap();
        let err = write_output(&other, &TEXT, b"test: 4", &none).unwrap_err();
        assert!(
            matches!(err, OutputError::OtherKind("a test file")),
            "{err}"
        );
        assert_eq!(std::fs::read(&other).unwrap(), b"my notes");
        let err = write_output(dir.path(), &TEXT, b"test: 5", &none).unwrap_err();
        assert!(matches!(err, OutputError::NotRegular("a folder")), "{err}");
        // Nothing left behind by the refusals.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let none = Protected::new();
        write_output(&path, &TEXT, b"test: old", &none).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        let err = replace_with(&path, &TEXT, &none, |file| {
            file.write_all(b"test: half")?;
            Err::<(), _>(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(matches!(err, OutputError::Io(_)), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"test: old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out"]);
    }

    #[test]
    fn a_protected_file_is_refused_however_it_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        std::fs::write(&db, b"test: the database").unwrap();
        let protected = Protected::new()
            .file(&db, "the state database")
            .file(&dir.path().join("s.db-wal"), "its write-ahead log");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink(&db, dir.path().join("link")).unwrap();
        std::fs::hard_link(&db, dir.path().join("hard")).unwrap();
        for name in ["s.db", "sub/../s.db", "./s.db", "link", "hard", "s.db-wal"] {
            let path = dir.path().join(name);
            let err = write_output(&path, &TEXT, b"test: plan", &protected).unwrap_err();
            assert!(matches!(err, OutputError::Protected(_)), "{name}: {err}");
        }
        assert_eq!(std::fs::read(&db).unwrap(), b"test: the database");
        assert!(!dir.path().join("s.db-wal").exists());
    }

    #[test]
    fn the_config_set_and_new_config_files_in_its_folder_are_protected() {
        let dir = tempfile::tempdir().unwrap();
        let set = dir.path().join("set");
        std::fs::create_dir_all(set.join("users")).unwrap();
        std::fs::write(set.join("a.yaml"), b"").unwrap();
        let protected = Protected::new().config_set(&set);
        for name in ["set/a.yaml", "set/users/new.yml", "set/new.yaml", "set"] {
            let err = check_output(&dir.path().join(name), &TEXT, &protected).unwrap_err();
            assert!(matches!(err, OutputError::Protected(_)), "{name}: {err}");
        }
        for name in ["set/plan.json", "set/.hidden/x.yaml", "other.yaml"] {
            check_output(&dir.path().join(name), &TEXT, &protected).unwrap();
        }
        let single = Protected::new().config_set(&set.join("a.yaml"));
        assert!(check_output(&set.join("a.yaml"), &TEXT, &single).is_err());
        check_output(&set.join("b.yaml"), &TEXT, &single).unwrap();
    }

    #[test]
    fn temporary_files_are_new_private_and_never_follow_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let path = dir.path().join("out");
        // Whatever names come next are taken by symlinks to `target`: a
        // temporary file is never opened through one.
        let mut planted = Vec::new();
        for _ in 0..8 {
            let (file, name) = create_temporary(&path, 0o600).unwrap();
            drop(file);
            std::fs::remove_file(&name).unwrap();
            std::os::unix::fs::symlink(&target, &name).unwrap();
            planted.push(name);
        }
        let (_, name) = create_temporary(&path, 0o600).unwrap();
        assert!(!planted.contains(&name));
        assert!(is_temporary(&name), "{}", name.display());
        // And SQLite's side files of a database made under such a name.
        let mut wal = name.clone().into_os_string();
        wal.push("-wal");
        assert!(is_temporary(Path::new(&wal)));
        for other in ["out", ".out", "out.supportctl-tmp", ".out.supportctl-tmp-x"] {
            assert!(!is_temporary(Path::new(other)), "{other}");
        }
        assert_eq!(mode_of(&name), 0o600);
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        let err = create_new(&planted[0], b"x", 0o600, &Protected::new()).unwrap_err();
        assert!(matches!(err, OutputError::Io(ref e) if e.kind() == io::ErrorKind::AlreadyExists));
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }

    #[test]
    fn private_folders_are_made_0700_and_folders_already_there_are_left() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).unwrap();
        let deep = dir.path().join("a/b/c");
        create_private_dir(&deep, &Protected::new()).unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode_of(&dir.path().join(d)), 0o700, "{d}");
        }
        assert_eq!(mode_of(dir.path()), 0o755);
        // (Whatever the umask: `outputs::export_folders_and_files_are_private_whatever_the_umask`.)
    }

    #[test]
    fn reads_take_regular_files_within_the_bound_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_bounded(&file, 5).unwrap(), b"12345");
        assert!(matches!(
            read_bounded(&file, 4),
            Err(ReadError::TooLarge { size: 5, max: 4 })
        ));
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(matches!(
            read_bounded(&zero, 1 << 30),
            Err(ReadError::NotRegular("a device"))
        ));
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer ever comes: a blocking open would wait forever.
        assert!(matches!(
            read_bounded(&fifo, 1 << 30),
            Err(ReadError::NotRegular("a named pipe (FIFO)"))
        ));
        assert!(
            read_bounded(&dir.path().join("missing"), 1)
                .unwrap_err()
                .is_not_found()
        );
        assert!(matches!(
            check_output(&fifo, &TEXT, &Protected::new()),
            Err(OutputError::NotRegular(_))
        ));
    }
}
