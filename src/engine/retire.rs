//! Retiring a tenancy no config set manages any more: its rows removed by
//! one plan, journaled (not as an apply: a watcher looks only at applies),
//! its SRs and journal kept.

use super::Error;
use crate::plan::Plan;
use crate::render;
use crate::state::{JournalEntry, JournalPlan, Store};

/// Retires `tenancy` by `plan`, made at `serial`, in one transaction;
/// returns the tenancy's last serial.
pub fn retire(store: &mut Store, tenancy: &str, plan: &Plan, serial: u64) -> Result<u64, Error> {
    let lineage = store.lineage().to_string();
    let entry = JournalEntry {
        time: super::clock::now()?.to_string(),
        summary: plan.summary(),
        plan: JournalPlan::new(&render::plan_json_compact(plan, &lineage, serial, "")),
        config_digest: String::new(),
        git_commit: None,
        git_changes: None,
        // Not an apply: a watcher looks only at applies.
        source: None,
    };
    Ok(store.retire(tenancy, &lineage, serial, plan, entry)?)
}
