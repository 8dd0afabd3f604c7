//! Records the git commit supportctl is built from, for `--version`.
//!
//! `SUPPORTCTL_GIT_COMMIT` is the commit's short hash, or `unknown` when the
//! source is not a git work tree (a crate tarball) or git is missing. Cargo
//! runs this again when HEAD moves, so the version follows commits.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SUPPORTCTL_GIT_COMMIT={commit}");
    // Watch what moves when a commit is made or checked out: HEAD, the
    // branch it points at, and the packed refs. Only files that exist are
    // named, or cargo would run this on every build.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = PathBuf::from(dir);
        let mut watched = vec![dir.join("HEAD"), dir.join("packed-refs")];
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(dir.join(&branch));
            if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
                watched.push(PathBuf::from(common).join(&branch));
            }
        }
        for path in watched.into_iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
