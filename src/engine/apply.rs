//! Applying a plan: the mass-delete guard, the check of the state the plan
//! leads to, the journal entry (time, digest, git commit, who applied), and
//! the store's one transaction.

use std::path::Path;

use super::git::GitState;
use super::{Error, ErrorKind, Planned};
use crate::model::{Date, Model};
use crate::plan::{self, Plan};
use crate::render;
use crate::state::Location;
use crate::state::{AppliedBy, ApplySource, JournalEntry, JournalPlan, Store};

pub use crate::state::host_name;

/// Who is making an apply, for its journal entry: `by` in this process on
/// this host, from `path` (made absolute).
pub fn apply_source(by: crate::state::AppliedBy, path: &Path) -> crate::state::ApplySource {
    crate::state::ApplySource {
        command: by,
        host: host_name(),
        path: std::path::absolute(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string(),
        pid: std::process::id(),
    }
}

/// The mass-delete guard where a plan is about to be applied: the plan to
/// apply now (whole, or only what it takes away: the guard never holds back
/// a revocation), and the refusal to report once that has landed.
pub fn guard<'a>(
    plan: &'a Plan,
    actual: Option<&Model>,
    today: Date,
    allowed: bool,
) -> (std::borrow::Cow<'a, Plan>, Option<Error>) {
    let guarded = plan::guard(plan, actual, today, allowed);
    let tenancy = crate::diag::escape_control(&plan.tenancy);
    let refusal = match guarded.refused {
        Some(m) if m.held > 0 => {
            let revocations = guarded.plan.changes.len();
            let landing = if revocations == 0 {
                "nothing in it takes access away, so nothing is changed".to_string()
            } else {
                format!(
                    "the {revocations} change{} in it that take access away are applied all the same, and the {} other{} are held back",
                    plural(revocations),
                    m.held,
                    plural(m.held)
                )
            };
            Some(
                Error::new(
                    ErrorKind::MassDelete,
                    format!(
                        "refusing to delete {} of the {} resources of tenancy `{tenancy}` (more than 25%): {landing}",
                        m.deletes, m.existing
                    ),
                )
                .with_hint(
                    "check the config set is complete; if the deletions are meant, run again with `--allow-mass-delete`",
                ),
            )
        }
        Some(m) => {
            // A log line, not a print: a watcher's stderr may be JSON lines.
            tracing::warn!(
                tenancy = %tenancy,
                deletes = m.deletes,
                existing = m.existing,
                "the plan deletes more than 25% of the tenancy's resources, all of them grants: access the config takes away is never held back"
            );
            None
        }
        None => None,
    };
    (guarded.plan, refusal)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The state `plan` leads to from `actual`, checked against every rule
/// before anything is written: the state changes only through a checked
/// plan, whoever made it (a saved plan edited and sealed again, a planner
/// bug). `desired` is the checked model the plan was made for, if any: a
/// result equal to it has passed the config's rules already.
pub fn checked_result(
    actual: Option<&Model>,
    plan: &Plan,
    desired: Option<&Model>,
    today: Date,
) -> Result<Model, Error> {
    let refuse = |why: String| {
        Error::new(
            ErrorKind::Refused,
            format!(
                "refusing to apply to tenancy `{}`: {why}; nothing was changed",
                crate::diag::escape_control(&plan.tenancy)
            ),
        )
        .with_hint("plan again from the config set, and apply that plan")
    };
    let mut result = plan::apply_to(actual, plan)
        .ok_or_else(|| refuse("the plan changes a tenancy the state does not hold".to_string()))?;
    result.renames.clear();
    let mut findings = if desired.is_some_and(|d| same_state(d, &result)) {
        Vec::new()
    } else {
        crate::check::check_model(&result, today)
    };
    findings.retain(crate::diag::Diagnostic::is_error);
    if findings.is_empty() {
        return Ok(result);
    }
    let broken: Vec<String> = findings
        .iter()
        .map(|d| {
            let hint = d
                .hint
                .as_ref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            format!(
                "\n  {}[{}] {}{hint}",
                d.rule.name(),
                d.rule.code(),
                crate::diag::escape_control(&d.message)
            )
        })
        .collect();
    Err(refuse(format!(
        "the state this plan leads to breaks {} rule{}:{}",
        findings.len(),
        plural(findings.len()),
        broken.concat()
    )))
}

/// Whether two models hold the same state (renames are a config's request,
/// not state).
fn same_state(a: &Model, b: &Model) -> bool {
    a.tenancy == b.tenancy
        && a.users == b.users
        && a.support_accounts == b.support_accounts
        && a.memberships == b.memberships
        && a.approvals == b.approvals
        && a.support_links == b.support_links
}

/// What the state a plan leads to is checked against: the checked config
/// it was made for, if the plan is all of it, and the day.
pub struct CheckAgainst<'a> {
    pub desired: Option<&'a Model>,
    pub today: Date,
}

/// Applies a plan made by [`super::plan()`] (all of it, or the part the
/// guard let through) in one transaction, journaled as made by `by` from
/// `config`; returns the tenancy's new serial, the database's lineage and
/// the state now. The database is created only now, when there is
/// something to write.
pub fn apply_planned(
    planned: &Planned,
    plan: &Plan,
    against: CheckAgainst<'_>,
    store: Option<Store>,
    db: &Location,
    config: &Path,
    by: AppliedBy,
) -> Result<(u64, String, Model), Error> {
    let mut store = match store {
        Some(store) => store,
        None => Store::open(db)?,
    };
    let lineage = if planned.lineage.is_empty() {
        store.lineage().to_string()
    } else {
        planned.lineage.clone()
    };
    // While the changes are written, on two more threads: the journal's
    // copy of the plan is rendered and compressed, and the state the plan
    // leads to is checked against every rule (`checked_result`). Both are
    // needed only for the journal's row, the last one written; a refusal
    // there rolls the rows back.
    let provenance = Provenance::of(by, config, GitState::of_config(config));
    let mut result = None;
    let mut refusal = None;
    let serial = std::thread::scope(|scope| {
        let json = scope.spawn(|| {
            JournalPlan::new(&render::plan_json_compact(
                plan,
                &lineage,
                planned.serial,
                &planned.digest,
            ))
        });
        let checked = scope.spawn(|| {
            checked_result(
                planned.actual.as_ref(),
                plan,
                against.desired,
                against.today,
            )
        });
        commit(
            &mut store,
            plan,
            &lineage,
            planned.serial,
            || {
                match checked
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                {
                    Ok(checked) => result = Some(checked),
                    Err(e) => {
                        let why = e.text();
                        refusal = Some(e);
                        return Err(why);
                    }
                }
                Ok(json
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            },
            planned.digest.clone(),
            provenance,
        )
    })
    .map_err(|e| match refusal {
        Some(refusal) if e.kind == ErrorKind::Refused => refusal,
        _ => e,
    })?;
    let result =
        result.ok_or_else(|| Error::new(ErrorKind::Refused, "the plan was applied unchecked"))?;
    Ok((serial, lineage, result))
}

/// Where an apply comes from, for its journal entry: the git commit of the
/// config repository, and who applies from what.
pub(super) struct Provenance {
    git: GitState,
    source: ApplySource,
}

impl Provenance {
    /// `by` in this process, from `path` (a config set or a saved plan),
    /// whose git state is `git`.
    pub(super) fn of(by: AppliedBy, path: &Path, git: GitState) -> Provenance {
        Provenance {
            git,
            source: apply_source(by, path),
        }
    }
}

pub(super) fn commit(
    store: &mut Store,
    plan: &Plan,
    lineage: &str,
    serial: u64,
    journal_plan: impl FnOnce() -> Result<JournalPlan, String>,
    config_digest: String,
    provenance: Provenance,
) -> Result<u64, Error> {
    let summary = plan.summary();
    // The one clock every command reads (`SUPPORTCTL_NOW` in tests).
    let time = super::clock::now()?.to_string();
    let entry = || {
        Ok(JournalEntry {
            time,
            summary,
            plan: journal_plan()?,
            config_digest,
            git_commit: provenance.git.commit,
            git_changes: provenance.git.changes,
            source: Some(provenance.source),
        })
    };
    let started = std::time::Instant::now();
    let new_serial = store.apply_unless(&plan.tenancy, lineage, serial, plan, entry)?;
    tracing::debug!(
        tenancy = %crate::diag::escape_control(&plan.tenancy),
        serial = new_serial,
        add = summary.add,
        change = summary.change,
        destroy = summary.destroy,
        ms = started.elapsed().as_millis() as u64,
        "applied"
    );
    Ok(new_serial)
}
