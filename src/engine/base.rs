//! `plan --base GIT_REF`: the config set as it was at a git ref, read from
//! git's object store (no checkout, nothing written), so that a plan can show
//! what a pull request changes in the config apart from drift in the state.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Error;

/// One file of a config set at a ref: its path from the top of the work
/// tree, and its bytes.
pub struct BaseFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

fn git(dir: &Path, args: &[&str]) -> Result<std::process::Output, Error> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::input(format!("`--base` needs git, which cannot run: {e}")))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// A config set as it was at a ref.
pub struct BaseSet {
    /// Its files, in the loader's order.
    pub files: Vec<BaseFile>,
    /// What could not be read at the ref (a symbolic link out of the
    /// repository, to nothing, or in a loop), each said in full: as the
    /// loader's `E002`, it makes the config set at the ref invalid.
    pub unreadable: Vec<String>,
}

/// The files of the config set at `path` as they were at `reference`, in
/// sorted path order, or `None` when the config set did not exist there.
/// Follows the rules of a load: a directory's `*.yaml`/`*.yml` files,
/// recursively, hidden names skipped, symbolic links followed — a link is
/// read as the file or folder it points to at that ref, not as the text of
/// its target.
pub fn files_at(path: &Path, reference: &str) -> Result<Option<BaseSet>, Error> {
    let absolute = std::fs::canonicalize(path)
        .map_err(|e| Error::input(format!("cannot read `{}`: {e}", path.display())))?;
    let is_dir = absolute.is_dir();
    let dir = if is_dir {
        absolute.clone()
    } else {
        absolute.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let top = git(&dir, &["rev-parse", "--show-toplevel"])?;
    if !top.status.success() {
        return Err(Error::input(format!(
            "`--base` compares with a git ref, but `{}` is not in a git work tree",
            path.display()
        )));
    }
    let top = PathBuf::from(text(&top.stdout));
    let top = std::fs::canonicalize(&top).unwrap_or(top);
    let commit = format!("{reference}^{{commit}}");
    let verified = git(
        &top,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &commit,
        ],
    )?;
    if !verified.status.success() {
        return Err(Error::input(format!(
            "`--base {reference}`: no such commit, branch or tag in `{}`",
            top.display()
        ))
        .with_hint("in CI, fetch the base branch first (for example `git fetch origin main`, or a checkout with fetch-depth: 0)"));
    }
    let commit = text(&verified.stdout);
    let relative = absolute
        .strip_prefix(&top)
        .map_err(|_| {
            Error::input(format!(
                "`{}` is outside the git work tree `{}`",
                path.display(),
                top.display()
            ))
        })?
        .to_string_lossy()
        .replace('\\', "/");
    let mut walk = TreeWalk {
        top: &top,
        commit: &commit,
        blobs: Vec::new(),
        unreadable: Vec::new(),
    };
    // The config set's own path may itself have been a symbolic link at the
    // ref: resolved like every other path, so a file or folder it pointed to
    // is read as the loader would read it.
    let spec = format!("{commit}:{relative}");
    let Some(root) = walk.resolve(&[spec])?.pop() else {
        return Ok(None);
    };
    match root {
        Resolved::Missing => return Ok(None),
        Resolved::Blob(oid) => walk.blobs.push((relative.clone(), oid)),
        Resolved::Tree(oid) => walk.tree(&relative, &oid, &mut vec![oid.clone()])?,
        Resolved::Unreadable(why) => walk.unreadable.push(format!("`{relative}` {why}")),
    }
    let TreeWalk {
        mut blobs,
        unreadable,
        ..
    } = walk;
    if blobs.is_empty() && unreadable.is_empty() {
        return Ok(None);
    }
    // The loader's order: by path, component by component.
    blobs.sort_by(|a, b| Path::new(&a.0).cmp(Path::new(&b.0)));
    let files = read_blobs(&top, blobs)?;
    Ok(Some(BaseSet { files, unreadable }))
}

/// What a path at the ref turned out to be, symbolic links followed.
enum Resolved {
    Blob(String),
    Tree(String),
    Missing,
    /// Why it cannot be read: a link out of the repository, a dangling
    /// link, a loop.
    Unreadable(String),
}

/// How many folders reached through symbolic links may nest: past this, a
/// walk is taken for a loop (as the kernel's own limit of 40 links).
const MAX_LINKED_DEPTH: usize = 40;

/// A walk of the config set's tree at a commit: the files it holds, and
/// the paths that cannot be read at that commit.
struct TreeWalk<'a> {
    top: &'a Path,
    commit: &'a str,
    /// Each file as the loader would name it (its path from the top of the
    /// work tree, through any links) and its blob.
    blobs: Vec<(String, String)>,
    unreadable: Vec<String>,
}

impl TreeWalk<'_> {
    /// Walks the tree `oid`, found at `dir`: its `*.yaml`/`*.yml` files,
    /// hidden names skipped, symbolic links followed within the commit —
    /// a link to a file as that file, a link to a folder as that folder —
    /// as a checkout would show them to the loader.
    fn tree(&mut self, dir: &str, oid: &str, ancestors: &mut Vec<String>) -> Result<(), Error> {
        let listed = git(self.top, &["ls-tree", "-r", "-z", "--full-tree", oid])?;
        if !listed.status.success() {
            return Err(Error::input(format!(
                "cannot list `{dir}` at `{}`: {}",
                self.commit,
                text(&listed.stderr)
            )));
        }
        let mut links = Vec::new();
        for entry in listed.stdout.split(|b| *b == 0).filter(|e| !e.is_empty()) {
            let entry = String::from_utf8_lossy(entry);
            // `<mode> <type> <object>\t<path>`
            let Some((meta, name)) = entry.split_once('\t') else {
                continue;
            };
            if name.split('/').any(|part| part.starts_with('.')) {
                continue;
            }
            let mut meta = meta.split(' ');
            let (Some(mode), Some(object)) = (meta.next(), meta.nth(1)) else {
                continue;
            };
            let logical = if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            };
            match mode {
                "120000" => links.push(logical),
                // Submodules (160000) are not in this repository's objects.
                "100644" | "100755" if is_yaml_name(name) => {
                    self.blobs.push((logical, object.to_string()));
                }
                _ => {}
            }
        }
        if links.is_empty() {
            return Ok(());
        }
        let specs: Vec<String> = links
            .iter()
            .map(|l| format!("{}:{l}", self.commit))
            .collect();
        for (link, resolved) in links.into_iter().zip(self.resolve(&specs)?) {
            match resolved {
                Resolved::Blob(oid) if is_yaml_name(&link) => self.blobs.push((link, oid)),
                Resolved::Blob(_) => {}
                Resolved::Tree(oid) if ancestors.contains(&oid) => self
                    .unreadable
                    .push(format!("`{link}` is a symlink loop: it leads back to a folder above it")),
                Resolved::Tree(_) if ancestors.len() > MAX_LINKED_DEPTH => self.unreadable.push(
                    format!("`{link}` is a symlink loop: more than {MAX_LINKED_DEPTH} linked folders deep"),
                ),
                Resolved::Tree(oid) => {
                    ancestors.push(oid.clone());
                    self.tree(&link, &oid, ancestors)?;
                    ancestors.pop();
                }
                Resolved::Missing => self
                    .unreadable
                    .push(format!("`{link}` is a symbolic link to nothing")),
                Resolved::Unreadable(why) => self.unreadable.push(format!("`{link}` {why}")),
            }
        }
        Ok(())
    }

    /// Resolves `specs` (`COMMIT:PATH`) through one `git cat-file
    /// --batch-check --follow-symlinks`, which follows links in every part
    /// of a path as long as they stay inside the commit.
    fn resolve(&self, specs: &[String]) -> Result<Vec<Resolved>, Error> {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(self.top)
            .args(["cat-file", "--batch-check", "--follow-symlinks"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::input(format!("`--base` needs git, which cannot run: {e}")))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let requests: String = specs.iter().map(|s| format!("{s}\n")).collect();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(requests.as_bytes());
        });
        let mut out = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let broken = || Error::input("`git cat-file` answered something unexpected");
        let mut resolved = Vec::with_capacity(specs.len());
        for _ in specs {
            let mut header = String::new();
            out.read_line(&mut header)?;
            let fields: Vec<&str> = header.split_whitespace().collect();
            // The answers that name a problem carry one more line: the
            // link's target, or the path asked for.
            let mut detail = || -> Result<String, Error> {
                let size: usize = fields
                    .get(1)
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(broken)?;
                let mut bytes = vec![0; size + 1];
                out.read_exact(&mut bytes)?;
                bytes.pop();
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            };
            resolved.push(match fields[..] {
                [oid, "blob", _] => Resolved::Blob(oid.to_string()),
                [oid, "tree", _] => Resolved::Tree(oid.to_string()),
                [_, "missing"] => Resolved::Missing,
                ["symlink", _] => Resolved::Unreadable(format!(
                    "is a symbolic link to `{}`, outside the repository, so its content at the ref is not in git",
                    detail()?
                )),
                ["dangling", _] => {
                    detail()?;
                    Resolved::Unreadable("is a symbolic link to nothing".to_string())
                }
                ["loop", _] => {
                    detail()?;
                    Resolved::Unreadable("is a symlink loop".to_string())
                }
                ["notdir", _] => {
                    detail()?;
                    Resolved::Unreadable(
                        "is a symbolic link through a file, as if it were a folder".to_string(),
                    )
                }
                // A commit or tag reached through a submodule: not ours to read.
                [_, _, _] => Resolved::Missing,
                _ => return Err(broken()),
            });
        }
        let _ = writer.join();
        let _ = child.wait();
        Ok(resolved)
    }
}

fn is_yaml_name(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// Reads each blob through one `git cat-file --batch`, by its object id.
fn read_blobs(top: &Path, blobs: Vec<(String, String)>) -> Result<Vec<BaseFile>, Error> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(top)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::input(format!("`--base` needs git, which cannot run: {e}")))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let requests: String = blobs.iter().map(|(_, oid)| format!("{oid}\n")).collect();
    // Written from a thread: git answers while it reads, and a large set
    // would fill both pipes.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(requests.as_bytes());
    });
    let mut out = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut files = Vec::with_capacity(blobs.len());
    let broken = || Error::input("`git cat-file` answered something unexpected");
    for (name, _) in blobs {
        let mut header = String::new();
        out.read_line(&mut header)?;
        let fields: Vec<&str> = header.split_whitespace().collect();
        let [_, kind, size] = fields[..] else {
            return Err(broken());
        };
        let size: usize = size.parse().map_err(|_| broken())?;
        let mut bytes = vec![0; size];
        out.read_exact(&mut bytes)?;
        let mut newline = [0u8; 1];
        out.read_exact(&mut newline)?;
        if kind == "blob" {
            files.push(BaseFile { path: name, bytes });
        }
    }
    let _ = writer.join();
    let _ = child.wait();
    Ok(files)
}

/// What a config set at a git ref makes of a plan (`plan --base`).
pub enum BasePlan {
    /// The plan from the config set at the ref to the desired model: what
    /// the change itself does, whatever the state holds.
    Plan(crate::plan::Plan),
    /// The config set at the ref cannot be read whole; why.
    Unreadable(String),
    /// The config set at the ref is invalid, with this many errors.
    Invalid(usize),
}

/// The plan from the config set at `reference` to `desired` (the one at
/// `path`), checked on `today`.
pub fn base_plan(
    path: &Path,
    reference: &str,
    desired: &crate::model::Model,
    today: crate::model::Date,
) -> Result<BasePlan, Error> {
    let Some(base) = files_at(path, reference)? else {
        // The config set is new in this change: all of it is its effect.
        return Ok(BasePlan::Plan(crate::plan::plan(desired, None)));
    };
    if !base.unreadable.is_empty() {
        return Ok(BasePlan::Unreadable(base.unreadable.join("; ")));
    }
    let named: Vec<(String, &[u8])> = base
        .files
        .iter()
        .map(|f| (format!("{reference}:{}", f.path), f.bytes.as_slice()))
        .collect();
    let (loaded, diagnostics) =
        crate::config::load_files(named.iter().map(|(n, b)| (n.as_str(), *b)));
    let checked = super::load::check_loaded(loaded, diagnostics, today);
    Ok(match checked.model {
        Some(base) => BasePlan::Plan(crate::plan::plan(desired, Some(&base))),
        None => BasePlan::Invalid(checked.diagnostics.iter().filter(|d| d.is_error()).count()),
    })
}
