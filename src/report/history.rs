//! `history --format json`: the apply journal, one object per entry
//! (docs/reference.md, *show, access, sr and history*).

use serde::Serialize;

use crate::state::{JournalKind, JournalRecord};

#[derive(Serialize)]
pub struct HistoryJson<'a> {
    id: i64,
    /// `apply`, or `retire` for a tenancy's retirement.
    action: &'static str,
    tenancy: &'a str,
    time: &'a str,
    serial: u64,
    summary: crate::render::JsonSummary,
    /// The config set's digest; `null` for a retirement, which has none.
    config_digest: Option<&'a str>,
    git_commit: Option<&'a str>,
    /// Whether the config set's files differed from `git_commit` (changed,
    /// staged, untracked or ignored); `null` when not known.
    git_dirty: Option<bool>,
    /// Those files, as `git status --porcelain` names them; `null` when not
    /// known.
    git_changes: Option<&'a [String]>,
    /// Who made the apply; `null` for entries older than the record of it.
    applied_by: Option<AppliedByJson<'a>>,
}

#[derive(Serialize)]
struct AppliedByJson<'a> {
    /// `apply` or `watch`.
    command: &'static str,
    host: &'a str,
    /// The config set (or saved plan) applied.
    path: &'a str,
    pid: u32,
}

/// `history --format json`: the journal entries given. `state copy`
/// compares these of both states.
pub fn history_json(records: &[JournalRecord]) -> String {
    let docs: Vec<HistoryJson> = records.iter().map(HistoryJson::from).collect();
    super::pretty(&docs)
}

impl<'a> From<&'a JournalRecord> for HistoryJson<'a> {
    fn from(r: &'a JournalRecord) -> Self {
        HistoryJson {
            id: r.id,
            action: r.kind.as_str(),
            tenancy: &r.tenancy,
            time: &r.time,
            serial: r.serial,
            summary: crate::render::JsonSummary {
                add: r.summary.add,
                change: r.summary.change,
                destroy: r.summary.destroy,
            },
            config_digest: (r.kind == JournalKind::Apply).then_some(r.config_digest.as_str()),
            git_commit: r.git_commit.as_deref(),
            git_dirty: r.git_changes.as_ref().map(|c| !c.is_empty()),
            git_changes: r.git_changes.as_deref(),
            applied_by: r.source.as_ref().map(|s| AppliedByJson {
                command: s.command.as_str(),
                host: &s.host,
                path: &s.path,
                pid: s.pid,
            }),
        }
    }
}
