//! `plan --base GIT_REF`: the config set as it was at a git ref, read from
//! git's object store (no checkout, nothing written), so that a plan can show
//! what a pull request changes in the config apart from drift in the state.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::CliError;

/// One file of a config set at a ref: its path from the top of the work
/// tree, and its bytes.
pub struct BaseFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

fn git(dir: &Path, args: &[&str]) -> Result<std::process::Output, CliError> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| CliError::error(format!("`--base` needs git, which cannot run: {e}")))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// The files of the config set at `path` as they were at `reference`, in
/// sorted path order, or `None` when the config set did not exist there.
/// Follows the rules of a load: a directory's `*.yaml`/`*.yml` files,
/// recursively, hidden names skipped.
pub fn files_at(path: &Path, reference: &str) -> Result<Option<Vec<BaseFile>>, CliError> {
    let absolute = std::fs::canonicalize(path)
        .map_err(|e| CliError::error(format!("cannot read `{}`: {e}", path.display())))?;
    let is_dir = absolute.is_dir();
    let dir = if is_dir {
        absolute.clone()
    } else {
        absolute.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let top = git(&dir, &["rev-parse", "--show-toplevel"])?;
    if !top.status.success() {
        return Err(CliError::error(format!(
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
        return Err(CliError::error(format!(
            "`--base {reference}`: no such commit, branch or tag in `{}`\n  hint: in CI, fetch the base branch first (for example `git fetch origin main`, or a checkout with fetch-depth: 0)",
            top.display()
        )));
    }
    let commit = text(&verified.stdout);
    let relative = absolute
        .strip_prefix(&top)
        .map_err(|_| {
            CliError::error(format!(
                "`{}` is outside the git work tree `{}`",
                path.display(),
                top.display()
            ))
        })?
        .to_string_lossy()
        .replace('\\', "/");
    let listed = git(
        &top,
        &[
            "ls-tree",
            "-r",
            "-z",
            "--full-tree",
            "--name-only",
            &commit,
            "--",
            if relative.is_empty() { "." } else { &relative },
        ],
    )?;
    if !listed.status.success() {
        return Err(CliError::error(format!(
            "cannot list `{relative}` at `{reference}`: {}",
            text(&listed.stderr)
        )));
    }
    let prefix = if relative.is_empty() {
        String::new()
    } else {
        format!("{relative}/")
    };
    let names: Vec<String> = listed
        .stdout
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .filter(|name| {
            if !is_dir {
                return *name == relative;
            }
            let Some(below) = name.strip_prefix(&prefix) else {
                return false;
            };
            let yaml = below.ends_with(".yaml") || below.ends_with(".yml");
            yaml && !below.split('/').any(|part| part.starts_with('.'))
        })
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    read_blobs(&top, &commit, names).map(Some)
}

/// Reads the blobs at `commit:name` through one `git cat-file --batch`.
fn read_blobs(top: &Path, commit: &str, mut names: Vec<String>) -> Result<Vec<BaseFile>, CliError> {
    names.sort();
    let mut child = Command::new("git")
        .arg("-C")
        .arg(top)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| CliError::error(format!("`--base` needs git, which cannot run: {e}")))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let requests: String = names.iter().map(|n| format!("{commit}:{n}\n")).collect();
    // Written from a thread: git answers while it reads, and a large set
    // would fill both pipes.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(requests.as_bytes());
    });
    let mut out = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut files = Vec::with_capacity(names.len());
    let broken = || CliError::error("`git cat-file` answered something unexpected");
    for name in names {
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
