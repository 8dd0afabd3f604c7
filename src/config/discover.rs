//! Finding a config set's files: the file a path names, or every
//! `*.yaml`/`*.yml` under the folder it names, walked with symbolic links
//! followed (a loop is reported, not walked), hidden entries skipped, in
//! sorted path order, within the limit on how many files a set may have.
//!
//! The walk is written here rather than taken from `walkdir` (already built
//! for notify), which would read otherwise: it follows a link before its
//! filter can skip it as hidden (a hidden dangling link becomes an error);
//! when a linked folder cannot be opened its error carries no path (its
//! loop check opens the folder); and a link to a folder above the set is a
//! loop to it at once, where this walk reads that folder and reports the
//! loop where it comes back into the set.

use std::path::{Path, PathBuf};

use super::Limits;
use crate::diag::{Diagnostic, Rule};

/// The config files at `path`: the file itself, or every `*.yaml`/`*.yml`
/// under the directory, hidden entries skipped, in sorted path order; and
/// what could not be walked.
pub(super) fn discover(path: &Path, limits: &Limits) -> (Vec<PathBuf>, Vec<Diagnostic>) {
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
            match entry {
                Ok(entry) => going = self.visit(&entry),
                Err(e) => self.unreadable(dir, &e),
            }
            if !going {
                break;
            }
        }
        self.ancestors.pop();
        going
    }

    /// One entry of a folder: skipped when hidden, walked when a folder,
    /// kept when a config file; false once the file limit is passed.
    fn visit(&mut self, entry: &std::fs::DirEntry) -> bool {
        if entry.file_name().to_string_lossy().starts_with('.') {
            return true;
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
                return true;
            }
        };
        if metadata.is_dir() {
            return self.walk(&child);
        }
        if !is_yaml_name(&child) {
            return true;
        }
        if !metadata.is_file() {
            self.diagnostics.push(not_regular(&child));
            return true;
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
            return false;
        }
        true
    }
}

pub(super) fn is_yaml_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}
