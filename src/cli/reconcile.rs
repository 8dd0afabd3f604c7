//! `plan` and `apply`: the reconciler's commands.
//!
//! Both load and check the config set, load the tenancy's state, and plan.
//! `plan` prints (and may save) the plan; `apply` asks for consent and hands
//! the plan to the store, which applies it in one transaction or not at all.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::{CliError, ConfigArgs, DiagnosticFormat, Output, print_stdout, report_diagnostics};
use crate::engine::base::BasePlan;
use crate::engine::saved::{PLAN_FILE, plan_protected, saved_plan_text};
use crate::engine::{self, Access, CheckAgainst, PlannedSet, apply_planned, checked_result, guard};
use crate::model::Model;
use crate::plan::Plan;
use crate::render;
use crate::state::Location;
use crate::state::{AppliedBy, Store};

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Save the plan as JSON, for `supportctl apply FILE` (mode 0600). An
    /// existing file is replaced only when it is a saved plan, or empty.
    #[arg(short = 'o', long = "out", value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
    /// How to print the plan.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Exit 0 when there are no changes, 2 when there are.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan even when more than 25% of the tenancy's resources (and more
    /// than 5) would be deleted.
    #[arg(long)]
    pub allow_mass_delete: bool,
    /// Print `(redacted)` instead of phone numbers. A plan saved with `-o`
    /// keeps them (it is what apply writes), in a file only you can read.
    #[arg(long)]
    pub redact: bool,
    /// Also show what the config set at PATH changes against the same config
    /// set at this git ref (a pull request's own effect, apart from any drift
    /// in the state), before the plan against the state.
    #[arg(long, value_name = "GIT_REF")]
    pub base: Option<String>,
    /// Neither read nor write the parse cache kept beside the database
    /// (`<db>.parse-cache`): parse every file afresh.
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    /// The JSON plan; an invalid config set prints `validate`'s JSON report.
    Json,
    /// The text plan on stdout; findings as GitHub workflow commands on
    /// stderr, so a pull request shows them on the offending lines.
    Github,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A config set (file or directory), or a plan saved by `plan -o`.
    #[arg(value_name = "PATH|PLANFILE")]
    pub path: PathBuf,
    /// The largest config file read, in bytes (at most 4 GiB).
    #[arg(long, default_value_t = crate::config::Limits::default().max_file_bytes, value_name = "BYTES",
          value_parser = super::size_limit)]
    pub max_file_size: u64,
    /// The largest config set read, all its files together, in bytes (at
    /// most 4 GiB).
    #[arg(long, default_value_t = crate::config::Limits::default().max_total_bytes, value_name = "BYTES",
          value_parser = super::size_limit)]
    pub max_total_size: u64,
    /// Apply without asking.
    #[arg(long)]
    pub auto_approve: bool,
    /// Apply even when more than 25% of the tenancy's resources (and more
    /// than 5) would be deleted.
    #[arg(long)]
    pub allow_mass_delete: bool,
    /// Print `(redacted)` instead of phone numbers in the plan shown; what
    /// is applied is unchanged.
    #[arg(long)]
    pub redact: bool,
    /// Neither read nor write the parse cache kept beside the database
    /// (`<db>.parse-cache`): parse every file afresh.
    #[arg(long)]
    pub no_cache: bool,
}

/// Loads (through the parse cache beside the database, unless `no_cache`),
/// checks and plans; diagnostics are printed, errors end the command.
/// Returns the desired model and the parse cache too. For the one-shot
/// `plan` and `apply` only: what it no longer needs may be left for the end
/// of the process to free.
fn make_plan(
    config: &ConfigArgs,
    db: &Location,
    output: &Output,
    findings: DiagnosticFormat,
    no_cache: bool,
    access: Access,
) -> Result<PlannedSet, CliError> {
    let prepared = engine::prepare(
        &config.path,
        &config.limits(),
        db,
        engine::clock::today()?,
        no_cache,
        access,
    );
    report_diagnostics(&prepared.checked, output, findings);
    let set = prepared.plan(db)?;
    if let Some(warning) = set.store.as_ref().and_then(|s| {
        super::retire::other_tenancies(s, &set.desired.tenancy.name, set.planned.actual.is_none())
    }) {
        super::print_warning(&warning, findings);
    }
    Ok(set)
}

/// `--base REF`: the plan from the config set at REF to the one at PATH —
/// what the change itself does, whatever the state holds. `None` (with a
/// warning printed) when the config set at REF is invalid.
fn base_plan(path: &Path, reference: &str, desired: &Model) -> Result<Option<Plan>, CliError> {
    let shown = crate::diag::escape_control(reference);
    match engine::base::base_plan(path, reference, desired, engine::clock::today()?)? {
        BasePlan::Plan(plan) => Ok(Some(plan)),
        BasePlan::Unreadable(why) => {
            super::print_stderr(&format!(
                "warning: the config set at `{shown}` cannot be read whole ({}), so the change against it cannot be shown\n",
                crate::diag::escape_control(&why)
            ));
            Ok(None)
        }
        BasePlan::Invalid(errors) => {
            super::print_stderr(&format!(
                "warning: the config set at `{shown}` is invalid ({errors} errors), so the change against it cannot be shown; `supportctl validate` it at that ref to see why\n"
            ));
            Ok(None)
        }
    }
}

/// The text of a `--base` plan: its own heading in place of the plan's.
fn base_text(plan: &Plan, reference: &str, palette: render::PlanPalette) -> String {
    let reference = crate::diag::escape_control(reference);
    let text = render::plan_text(plan, palette);
    if plan.is_empty() {
        return format!(
            "No changes against `{reference}`: this change leaves the config set as it was.\n"
        );
    }
    let body = text.split_once('\n').map_or("", |(_, rest)| rest);
    format!(
        "Against `{reference}`, this change would make these changes to tenancy `{}`:\n{body}",
        crate::diag::escape_control(&plan.tenancy)
    )
}

/// `supportctl plan`: plans, prints in the format asked (with the `--base`
/// delta first), weighs the guard, saves `-o`. Long on purpose: the steps
/// read in the order a user sees their output.
pub fn plan_command(args: &PlanArgs, db: &Location, output: &Output) -> Result<u8, CliError> {
    let findings = match args.format {
        PlanFormat::Text => DiagnosticFormat::Text,
        PlanFormat::Json => DiagnosticFormat::Json,
        PlanFormat::Github => DiagnosticFormat::Github,
    };
    if let Some(out) = &args.out {
        // Refused before any work: the plan would be lost anyway.
        crate::files::check_output(out, &PLAN_FILE, &plan_protected(db, &args.config.path))
            .map_err(|e| super::output_error("the plan", out, e))?;
    }
    let PlannedSet {
        mut planned,
        desired,
        ..
    } = make_plan(
        &args.config,
        db,
        output,
        findings,
        args.no_cache,
        Access::Read,
    )?;
    let mut delta = match &args.base {
        Some(reference) => base_plan(&args.config.path, reference, &desired)?,
        None => None,
    };
    engine::free_at_exit(desired);
    let json_of =
        |plan: &Plan| render::plan_json(plan, &planned.lineage, planned.serial, &planned.digest);
    // The JSON plan is made only when it is printed or saved: for a large
    // first plan it is the biggest thing in memory. The saved plan is never
    // redacted: it is what apply writes.
    let saved = args.out.as_ref().map(|_| json_of(&planned.plan));
    if args.redact {
        planned.plan.redact_phones();
        if let Some(delta) = &mut delta {
            delta.redact_phones();
        }
    }
    let printed = match (args.format, &args.base) {
        (PlanFormat::Json, Some(reference)) => {
            let against_base = delta.as_ref().map(|d| {
                serde_json::from_str::<serde_json::Value>(&render::plan_json(d, "", 0, ""))
                    .unwrap_or_default()
            });
            let doc = serde_json::json!({
                "format_version": 1,
                "base": {
                    "ref": reference,
                    "valid": against_base.is_some(),
                    "changes": against_base.as_ref().map(|d| d["changes"].clone()),
                    "summary": against_base.as_ref().map(|d| d["summary"].clone()),
                },
                "plan": serde_json::from_str::<serde_json::Value>(&json_of(&planned.plan))
                    .unwrap_or_default(),
            });
            let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            text.push('\n');
            print_stdout(&text)
        }
        (PlanFormat::Json, None) if !args.redact && saved.is_some() => {
            print_stdout(saved.as_deref().unwrap_or_default())
        }
        (PlanFormat::Json, None) => print_stdout(&json_of(&planned.plan)),
        (PlanFormat::Text | PlanFormat::Github, base) => {
            let mut text = String::new();
            if let (Some(reference), Some(delta)) = (base, &delta) {
                text.push_str(&base_text(delta, reference, output.stdout_plan));
                text.push_str("\nAgainst the state (what apply would do):\n\n");
            }
            text.push_str(&render::plan_text(&planned.plan, output.stdout_plan));
            print_stdout(&text)
        }
    };
    // A reader that stopped early (`| head`) changes nothing that follows:
    // the guard's verdict, the saved plan and the exit code stand.
    super::unless_reader_gone(printed)?;
    if let (_, Some(refusal)) = guard(
        &planned.plan,
        planned.actual.as_ref(),
        engine::clock::today()?,
        args.allow_mass_delete,
    ) {
        return Err(refusal.into());
    }
    if let (Some(out), Some(json)) = (&args.out, &saved) {
        let protected = plan_protected(db, &args.config.path);
        crate::files::write_output(out, &PLAN_FILE, json.as_bytes(), &protected)
            .map_err(|e| super::output_error("the plan", out, e))?;
        if args.format != PlanFormat::Json {
            super::print_stderr(&format!(
                "Saved the plan to `{}`. Apply exactly this plan with `supportctl apply {}`.\n",
                out.display(),
                out.display()
            ));
        }
    }
    let changed = !planned.plan.is_empty();
    engine::free_at_exit(planned);
    Ok(if args.detailed_exitcode && changed {
        2
    } else {
        0
    })
}

pub fn apply_command(args: &ApplyArgs, db: &Location, output: &Output) -> Result<u8, CliError> {
    if let Some(text) = saved_plan_text(&args.path)? {
        return apply_saved(args, text, &mut Store::open(db)?, output);
    }
    let config = ConfigArgs {
        path: args.path.clone(),
        max_file_size: args.max_file_size,
        max_total_size: args.max_total_size,
    };
    let PlannedSet {
        planned,
        store,
        desired,
        mut cache,
    } = make_plan(
        &config,
        db,
        output,
        DiagnosticFormat::Text,
        args.no_cache,
        Access::Write,
    )?;
    let plan = &planned.plan;
    let shown = print_stdout(&shown_plan(plan, args.redact, output));
    // With its reader gone (`| head`), the plan was not seen: an approved
    // apply goes on (and says nothing more), but nobody can consent to it.
    let unseen = shown.is_err();
    super::unless_reader_gone(shown)?;
    if plan.is_empty() {
        return Ok(0);
    }
    let today = engine::clock::today()?;
    let (plan, refusal) = guard(plan, planned.actual.as_ref(), today, args.allow_mass_delete);
    let desired = refusal.is_none().then_some(&desired);
    if plan.is_empty() {
        return Err(refusal.map_or_else(|| CliError::error("nothing to apply"), CliError::from));
    }
    if refusal.is_some() {
        super::unless_reader_gone(print_stdout(&format!(
            "\nOnly what takes access away is applied now:\n\n{}",
            shown_plan(&plan, args.redact, output)
        )))?;
    }
    if !args.auto_approve {
        if unseen {
            return Err(CliError::error(
                "refusing to apply: the plan could not be shown (stdout is closed), so nobody can confirm it; nothing was changed",
            ));
        }
        consent(&plan)?;
    }
    apply_planned(
        &planned,
        &plan,
        CheckAgainst { desired, today },
        store,
        db,
        &args.path,
        AppliedBy::Apply,
    )?;
    if let Some(cache) = &mut cache {
        // A first apply has only now made the database the cache goes beside.
        engine::cache::save_parse_cache(cache, db);
    }
    let printed = print_applied(&plan);
    engine::free_at_exit(planned);
    match refusal {
        Some(refusal) => Err(refusal.into()),
        None => printed,
    }
}

/// The text of a plan as apply prints it, phones redacted when asked.
fn shown_plan(plan: &Plan, redact: bool, output: &Output) -> String {
    if redact {
        let mut shown = plan.clone();
        shown.redact_phones();
        render::plan_text(&shown, output.stdout_plan)
    } else {
        render::plan_text(plan, output.stdout_plan)
    }
}

fn print_applied(plan: &Plan) -> Result<u8, CliError> {
    let summary = plan.summary();
    print_stdout(&format!(
        "Apply complete! Resources: {} added, {} changed, {} destroyed.\n",
        summary.add, summary.change, summary.destroy
    ))?;
    Ok(0)
}

fn apply_saved(
    args: &ApplyArgs,
    text: String,
    store: &mut Store,
    output: &Output,
) -> Result<u8, CliError> {
    // Weigh the deletions against the state as it is now; the store checks
    // again inside its transaction that the state has not moved since the
    // plan. A plan that does not fit is refused before it is printed.
    let saved = engine::saved::open(&args.path, text, store)?;
    let whole = &saved.saved.plan;
    super::unless_reader_gone(print_stdout(&shown_plan(whole, args.redact, output)))?;
    if whole.is_empty() {
        return Ok(0);
    }
    let today = engine::clock::today()?;
    let (plan, refusal) = guard(whole, saved.actual.as_ref(), today, args.allow_mass_delete);
    if plan.is_empty() {
        return Err(refusal.map_or_else(|| CliError::error("nothing to apply"), CliError::from));
    }
    checked_result(saved.actual.as_ref(), &plan, None, today)?;
    if refusal.is_some() {
        print_stdout(&format!(
            "\nOnly what takes access away is applied now:\n\n{}",
            shown_plan(&plan, args.redact, output)
        ))?;
    }
    let cut = match &plan {
        std::borrow::Cow::Borrowed(_) => None,
        std::borrow::Cow::Owned(cut) => Some(cut),
    };
    saved.commit(store, cut)?;
    let printed = print_applied(&plan);
    match refusal {
        Some(refusal) => Err(refusal.into()),
        None => printed,
    }
}

/// Asks on the terminal; only `yes` goes ahead. Without a terminal there is
/// nobody to ask, so the answer is no.
fn consent(plan: &Plan) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::error(
            "refusing to apply: stdin is not a terminal, so nobody can confirm the plan",
        )
        .with_hint(
            "review the plan and run again with `--auto-approve`, or save it with `plan -o FILE` and `apply FILE`",
        ));
    }
    super::print_stderr(&format!(
        "\nDo you want to apply these changes to tenancy `{}`?\n  Only 'yes' will be accepted: ",
        crate::diag::escape_control(&plan.tenancy)
    ));
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(CliError::error("apply cancelled: nothing was changed"))
    }
}
