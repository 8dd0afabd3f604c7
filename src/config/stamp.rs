//! A config set's stamp: what `watch` compares, before a load and after
//! it, to know that the files it read stood still meanwhile.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::Limits;
use super::discover::discover;

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

#[cfg(test)]
mod tests {
    use super::*;

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
