//! What the journal records of the git work tree a config set is applied
//! from: the commit checked out, and whether the config set's files differ
//! from it (uncommitted, untracked or ignored changes), so that an entry
//! that names a commit says whether that commit is really what was applied.
//!
//! Read-only: git runs with `--no-optional-locks`, so a status never
//! refreshes the index or takes its lock under someone working in the tree.

use std::path::Path;
use std::process::{Command, Stdio};

/// The git side of a journal entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GitState {
    /// The commit checked out (`HEAD`), when the config set is in a git work
    /// tree that has one.
    pub commit: Option<String>,
    /// The config set's files that differ from that commit, as `git status
    /// --porcelain` names them: `XY PATH` (`X` the index, `Y` the work tree;
    /// `??` untracked, `!!` ignored; a rename is a delete and an add).
    /// Empty when none do; `None` when not known: not in a git work tree,
    /// or git could not tell.
    pub changes: Option<Vec<String>>,
}

impl GitState {
    /// The commit only: for an apply of a saved plan, whose config set is
    /// not known (the commit is that of the work tree holding the plan file).
    pub fn commit_of(path: &Path) -> GitState {
        GitState {
            commit: head(&work_dir(path)),
            changes: None,
        }
    }

    /// The commit, and the changes to the config set at `config` (a file,
    /// or a folder of `*.yaml`/`*.yml` files with hidden names skipped, as
    /// the loader reads it).
    pub fn of_config(config: &Path) -> GitState {
        let dir = work_dir(config);
        let commit = head(&dir);
        let changes = status(config, &dir);
        GitState { commit, changes }
    }
}

/// The folder git runs in for `path`: the folder itself, or a file's parent.
fn work_dir(path: &Path) -> std::path::PathBuf {
    let dir = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new("."))
    };
    if dir.as_os_str().is_empty() {
        Path::new(".").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let output = Command::new("git")
        .arg("--no-optional-locks")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output.status.success().then_some(output.stdout)
}

/// The commit of the git work tree holding `dir`, when it is in one.
fn head(dir: &Path) -> Option<String> {
    let out = git(dir, &["rev-parse", "--verify", "--quiet", "HEAD"])?;
    let commit = String::from_utf8(out).ok()?.trim().to_string();
    (commit.len() >= 40).then_some(commit)
}

/// `git status` of the config set's files: what differs from `HEAD` in the
/// index or the work tree, and what git does not track (untracked or
/// ignored files the loader reads all the same).
fn status(config: &Path, dir: &Path) -> Option<Vec<String>> {
    // Paths in porcelain output are from the top of the work tree; the
    // config set's own place there tells its files from their neighbours.
    let prefix = String::from_utf8(git(dir, &["rev-parse", "--show-prefix"])?).ok()?;
    let prefix = prefix.trim_end_matches('\n');
    let file = (!config.is_dir())
        .then(|| config.file_name().map(|n| n.to_string_lossy().into_owned()))
        .flatten();
    let pathspec = file.as_deref().unwrap_or(".");
    let out = git(
        dir,
        &[
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--ignored=traditional",
            "--no-renames",
            "--",
            pathspec,
        ],
    )?;
    let mut changes = Vec::new();
    for entry in out.split(|b| *b == 0).filter(|e| e.len() > 3) {
        let entry = String::from_utf8_lossy(entry);
        let (code, path) = entry.split_at(2);
        let path = &path[1..];
        let in_set = match &file {
            // The file given is the config set, whatever its name.
            Some(_) => true,
            None => path.strip_prefix(prefix).is_some_and(|below| {
                (below.ends_with(".yaml") || below.ends_with(".yml"))
                    && !below.split('/').any(|part| part.starts_with('.'))
            }),
        };
        if in_set {
            changes.push(format!("{code} {path}"));
        }
    }
    Some(changes)
}
