//! The JSON documents supportctl prints and serves: `access`, `history`,
//! `sr` and `status --format json`, built here once for the command line and
//! the web view (`serve`), so that both give the same bytes for the same
//! data. Each has types of its own (serde), converted from the model, the
//! journal or the status file at this boundary (see ARCHITECTURE.md,
//! *Public formats*). Nothing here does I/O.

mod access;
mod history;
mod sr;
mod watcher;

pub use access::{AccessJson, access_json, access_json_all};
pub use history::{HistoryJson, history_json};
pub use sr::{SrJson, sr_json, sr_list_json};
pub use watcher::{LeaseReport, lease_of, lease_report, status_json};

/// `value` as pretty JSON (two spaces), with a line break at the end: how
/// every JSON output of supportctl is printed.
pub fn pretty<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}
