//! Prometheus's `promtool`, the real parser and linter of the metrics
//! exposition (`promtool check metrics`), for the tests that check what
//! `watch --listen` serves.
//!
//! Self-contained, so that both the unit tests of `src/telemetry/metrics.rs`
//! and `tests/it/telemetry.rs` include it by `#[path]`.
//!
//! It is looked for in `SUPPORTCTL_TEST_PROMTOOL`, then on `PATH`, then at
//! `target/tools/promtool`, where `.ci/promtool` puts it. A test without it
//! is skipped, except in CI (`CI` set and not empty), where it fails: a
//! check that CI never runs would pass unseen.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where `promtool` is, if anywhere.
pub fn find() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SUPPORTCTL_TEST_PROMTOOL").filter(|p| !p.is_empty()) {
        return Some(path.into());
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/promtool"))
            .filter(|p| p.is_file())
    })
}

/// `promtool` for a test that needs it: `None` (said on stderr) when it is
/// missing and the test is to be skipped; a failure when it is missing in
/// CI.
pub fn or_skip() -> Option<PathBuf> {
    let found = find();
    if found.is_none() {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        assert!(
            !ci,
            "promtool is missing, and CI is set; run .ci/promtool, put promtool on PATH \
             or set SUPPORTCTL_TEST_PROMTOOL"
        );
        eprintln!(
            "skipped: promtool is missing (run .ci/promtool, put it on PATH \
             or set SUPPORTCTL_TEST_PROMTOOL)"
        );
    }
    found
}

/// `promtool check metrics` on `exposition` (given on stdin): `Err` with
/// its exit status and all it printed unless it exits 0 and prints nothing
/// (a lint problem is printed).
pub fn check_metrics(promtool: &Path, exposition: &str) -> Result<(), String> {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} not run: {e}", promtool.display()));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(exposition.as_bytes())
        .expect("promtool reads its input");
    drop(stdin);
    let out = child.wait_with_output().expect("promtool ran");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool check metrics: {}\n{said}", out.status))
    }
}
