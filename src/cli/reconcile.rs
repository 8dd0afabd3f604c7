//! `plan` and `apply`: the reconciler's commands.
//!
//! Both load and check the config set, load the tenancy's state, and plan.
//! `plan` prints (and may save) the plan; `apply` asks for consent and hands
//! the plan to the store, which applies it in one transaction or not at all.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::{
    CliError, ConfigArgs, DiagnosticFormat, Output, load_and_check, load_and_check_cached,
    open_parse_cache, print_stdout, report_diagnostics, save_parse_cache, today,
};
use crate::config::ParseCache;
use crate::model::{Date, Model};
use crate::plan::{self, Plan};
use crate::render;
use crate::state::{AppliedBy, ApplySource, JournalEntry, JournalPlan, Snapshot, Store};

use super::worktree::GitState;

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

/// A plan made from a config set, with what it was made against.
pub(super) struct Planned {
    pub plan: Plan,
    pub actual: Option<Model>,
    pub lineage: String,
    pub serial: u64,
    pub digest: String,
}

/// How many changes a plan has before what the config set was loaded into
/// is freed behind it rather than left for the end of the process.
const FREE_BEHIND_PLANS_OF: usize = 10_000;

/// Loads (through the parse cache beside the database, unless `no_cache`),
/// checks and plans; diagnostics are printed, errors end the command.
/// Returns the desired model and the parse cache too. For the one-shot
/// `plan` and `apply` only: what it no longer needs may be left for the end
/// of the process to free.
fn make_plan(
    config: &ConfigArgs,
    db: &Path,
    output: &Output,
    findings: DiagnosticFormat,
    no_cache: bool,
    access: Access,
) -> Result<(Planned, Option<Store>, Model, Option<ParseCache>), CliError> {
    let today = today()?;
    let mut cache = None;
    // The state is read on a second thread while the parse cache is opened
    // and the config set loaded and checked: neither needs the other until
    // the plan. Its errors wait until the config set is known to be valid,
    // as when read after it.
    let (checked, early) = std::thread::scope(|scope| {
        let early = scope.spawn(|| read_state_early(db, access));
        cache = (!no_cache).then(|| open_parse_cache(db));
        let checked = match cache.as_mut() {
            Some(cache) => load_and_check_cached(&config.path, &config.limits(), today, cache),
            None => load_and_check(&config.path, &config.limits(), today),
        };
        let early = early
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (checked, early)
    });
    report_diagnostics(&checked, output, findings);
    let Some(desired) = checked.model else {
        return Err(CliError::reported());
    };
    let (store, mut state) = early?;
    let (planned, store) = plan_against(&desired, checked.loaded.digest, store, &mut state)?;
    if let Some(warning) = store.as_ref().and_then(|s| {
        super::retire::other_tenancies(s, &desired.tenancy.name, planned.actual.is_none())
    }) {
        super::print_warning(&warning, findings);
    }
    // Only beside a database that opened as supportctl's: never beside a
    // foreign file, nor where there is no database yet.
    if let (Some(cache), Some(_)) = (&mut cache, &store) {
        save_parse_cache(cache, db);
    }
    // The files' entries and texts are not needed past the check. Behind a
    // small plan they are left for the end of the process (freed one by one,
    // they took 12 ms of a 0.25 s plan after a one-file edit at 100k users);
    // a large plan's text, JSON and writes reuse their memory instead (kept,
    // they added 50 MiB to a first apply's peak at 100k).
    if planned.plan.changes.len() < FREE_BEHIND_PLANS_OF {
        super::free_at_exit(checked.loaded.raw);
        super::free_at_exit(checked.loaded.sources);
    }
    Ok((planned, store, desired, cache))
}

/// `--base REF`: the plan from the config set at REF to the one at PATH —
/// what the change itself does, whatever the state holds. `None` (with a
/// warning printed) when the config set at REF is invalid.
fn base_plan(path: &Path, reference: &str, desired: &Model) -> Result<Option<Plan>, CliError> {
    let Some(base) = super::base::files_at(path, reference)? else {
        // The config set is new in this change: all of it is its effect.
        return Ok(Some(plan::plan(desired, None)));
    };
    if !base.unreadable.is_empty() {
        super::print_stderr(&format!(
            "warning: the config set at `{}` cannot be read whole ({}), so the change against it cannot be shown\n",
            crate::diag::escape_control(reference),
            crate::diag::escape_control(&base.unreadable.join("; "))
        ));
        return Ok(None);
    }
    let named: Vec<(String, &[u8])> = base
        .files
        .iter()
        .map(|f| (format!("{reference}:{}", f.path), f.bytes.as_slice()))
        .collect();
    let (loaded, diagnostics) =
        crate::config::load_files(named.iter().map(|(n, b)| (n.as_str(), *b)));
    let checked = super::check_loaded(loaded, diagnostics, today()?);
    match checked.model {
        Some(base) => Ok(Some(plan::plan(desired, Some(&base)))),
        None => {
            let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
            super::print_stderr(&format!(
                "warning: the config set at `{}` is invalid ({errors} errors), so the change against it cannot be shown; `supportctl validate` it at that ref to see why\n",
                crate::diag::escape_control(reference)
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

/// How a command uses the state: `plan` only reads it (never creating,
/// migrating or writing the database), `apply` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// The database, opened when it exists, and the state of its tenancy when
/// it holds exactly one (the config set's, almost always; that is checked
/// when it is used). A tenancy that cannot be read here is read again, and
/// its error reported, once the config set has named its tenancy.
fn read_state_early(db: &Path, access: Access) -> Result<(Option<Store>, StateCache), CliError> {
    let started = std::time::Instant::now();
    let store = match access {
        Access::Read => Store::open_read_only(db)?,
        Access::Write if crate::state::database_exists(db)? => Some(Store::open(db)?),
        Access::Write => None,
    };
    let Some(store) = store else {
        return Ok((None, StateCache::default()));
    };
    let mut state = StateCache::default();
    if let Ok([only]) = store.tenancies().as_deref()
        && let Ok(Some(snapshot)) = store.load(only)
    {
        state.known = Some((store.lineage().to_owned(), snapshot));
    }
    tracing::debug!(
        read = state.known.is_some(),
        ms = started.elapsed().as_millis() as u64,
        "state read beside the check"
    );
    Ok((Some(store), state))
}

/// A tenancy's state as this process last read or wrote it, reused while
/// the database's lineage and the tenancy's serial stay the same (every
/// apply, by any process, advances the serial). `watch` keeps one; the
/// commands read the state afresh.
#[derive(Debug, Default)]
pub(super) struct StateCache {
    known: Option<(String, Snapshot)>,
}

impl StateCache {
    /// Whether the cached state is that of `tenancy` in `store` still.
    fn is_current(&self, store: &Store, tenancy: &str) -> Result<bool, CliError> {
        let Some((lineage, snapshot)) = &self.known else {
            return Ok(false);
        };
        Ok(lineage == store.lineage()
            && snapshot.model.tenancy.name == tenancy
            && store.serial(tenancy)? == Some(snapshot.serial))
    }

    /// The cached state of `tenancy` if it is still the state in `store`.
    fn current(&self, store: &Store, tenancy: &str) -> Result<Option<Snapshot>, CliError> {
        Ok(match self.is_current(store, tenancy)? {
            true => self.known.as_ref().map(|(_, snapshot)| snapshot.clone()),
            false => None,
        })
    }

    /// [`StateCache::current`], taken out of the cache rather than copied.
    fn take_current(&mut self, store: &Store, tenancy: &str) -> Result<Option<Snapshot>, CliError> {
        Ok(match self.is_current(store, tenancy)? {
            true => self.known.take().map(|(_, snapshot)| snapshot),
            false => None,
        })
    }

    fn remember(&mut self, lineage: &str, snapshot: &Snapshot) {
        self.known = Some((lineage.to_string(), snapshot.clone()));
    }

    /// After `planned` was applied as `serial`: the state is the plan's
    /// result (the store's tests hold apply to `plan::apply_to`).
    pub(super) fn applied(&mut self, result: Model, lineage: &str, serial: u64) {
        self.known = Some((
            lineage.to_string(),
            Snapshot {
                model: result,
                serial,
            },
        ));
    }
}

/// Plans a checked config set against the tenancy's state. The state is
/// read when the database exists; planning never creates it (a plan made
/// without one has an empty lineage, and applies to any database where the
/// tenancy is not yet). The state is read only when `cache` does not hold
/// it.
pub(super) fn plan_checked_cached(
    desired: &Model,
    digest: String,
    db: &Path,
    cache: Option<&mut StateCache>,
) -> Result<(Planned, Option<Store>), CliError> {
    let store = if crate::state::database_exists(db)? {
        Some(Store::open(db)?)
    } else {
        None
    };
    let known = match (&store, cache.as_deref()) {
        (Some(store), Some(cache)) => cache.current(store, &desired.tenancy.name)?,
        _ => None,
    };
    plan_with(desired, digest, store, known, cache)
}

/// [`plan_checked_cached`] with the database already opened (`None`: there is
/// none), and the state read early when `state` holds it still: taken, not
/// copied.
fn plan_against(
    desired: &Model,
    digest: String,
    store: Option<Store>,
    state: &mut StateCache,
) -> Result<(Planned, Option<Store>), CliError> {
    let known = match &store {
        Some(store) => state.take_current(store, &desired.tenancy.name)?,
        None => None,
    };
    plan_with(desired, digest, store, known, None)
}

/// Plans against `known`, the tenancy's current state, or else against the
/// state read from `store` now (and remembered in `cache`).
fn plan_with(
    desired: &Model,
    digest: String,
    store: Option<Store>,
    known: Option<Snapshot>,
    cache: Option<&mut StateCache>,
) -> Result<(Planned, Option<Store>), CliError> {
    let name = &desired.tenancy.name;
    let snapshot = match (&store, known) {
        (Some(_), Some(known)) => Some(known),
        (Some(store), None) => {
            let loaded = store.load(name)?;
            if let (Some(cache), Some(snapshot)) = (cache, &loaded) {
                cache.remember(store.lineage(), snapshot);
            }
            loaded
        }
        (None, _) => None,
    };
    let (actual, serial) = match snapshot {
        Some(s) => (Some(s.model), s.serial),
        None => (None, 0),
    };
    if let Some((new, old)) = plan::rename_conflicts(desired, actual.as_ref()).first() {
        return Err(CliError::error(format!(
            "cannot rename user `{old}` to `{new}`: both are in the state of tenancy `{}`\n  hint: remove `previously: {old}` from user `{new}` if the rename was applied before, or delete one of the users first",
            desired.tenancy.name
        )));
    }
    let started = std::time::Instant::now();
    let plan = plan::plan(desired, actual.as_ref());
    tracing::debug!(
        changes = plan.changes.len(),
        ms = started.elapsed().as_millis() as u64,
        "planned"
    );
    let planned = Planned {
        plan,
        actual,
        lineage: store
            .as_ref()
            .map(|s| s.lineage().to_string())
            .unwrap_or_default(),
        serial,
        digest,
    };
    Ok((planned, store))
}

/// The mass-delete guard where a plan is about to be applied: the plan to
/// apply now (whole, or only what it takes away: the guard never holds back
/// a revocation), and the refusal to report once that has landed.
pub(super) fn guard<'a>(
    plan: &'a Plan,
    actual: Option<&Model>,
    today: Date,
    allowed: bool,
) -> (std::borrow::Cow<'a, Plan>, Option<CliError>) {
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
            Some(CliError::mass_delete(format!(
                "refusing to delete {} of the {} resources of tenancy `{tenancy}` (more than 25%): {landing}\n  hint: check the config set is complete; if the deletions are meant, run again with `--allow-mass-delete`",
                m.deletes, m.existing
            )))
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
pub(super) fn checked_result(
    actual: Option<&Model>,
    plan: &Plan,
    desired: Option<&Model>,
    today: Date,
) -> Result<Model, CliError> {
    let refuse = |why: String| {
        CliError::error(format!(
            "refusing to apply to tenancy `{}`: {why}; nothing was changed\n  hint: plan again from the config set, and apply that plan",
            crate::diag::escape_control(&plan.tenancy)
        ))
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

pub fn plan_command(args: &PlanArgs, db: &Path, output: &Output) -> Result<u8, CliError> {
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
    let (mut planned, _, desired, _) = make_plan(
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
    super::free_at_exit(desired);
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
        today()?,
        args.allow_mass_delete,
    ) {
        return Err(refusal);
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
    super::free_at_exit(planned);
    Ok(if args.detailed_exitcode && changed {
        2
    } else {
        0
    })
}

/// A saved plan, as `plan -o` writes it: private (it names people and
/// phones), and recognised by the fields that open the JSON plan.
pub(super) const PLAN_FILE: crate::files::Kind = crate::files::Kind {
    name: "a saved plan",
    recognise: |head| {
        let text = String::from_utf8_lossy(head);
        text.trim_start().starts_with('{')
            && ["\"format_version\"", "\"lineage\"", "\"config_digest\""]
                .iter()
                .all(|field| text.contains(field))
    },
    mode: 0o600,
    durable: true,
};

/// The largest saved plan read: a first plan of a million users is about
/// 1 GiB of JSON.
const MAX_PLAN_BYTES: u64 = 2 << 30;

/// What a plan may not be written over: the state's files and the config
/// set it was made from.
fn plan_protected(db: &Path, config: &Path) -> crate::files::Protected {
    super::protected(db).config_set(config)
}

/// The text of the saved plan at `path`, or `None` when `path` is not one
/// but a config set: not a regular file (a folder), or not a JSON object
/// with a `format_version`. (A config in YAML flow style also starts with
/// `{`, so the first byte alone does not tell.) A regular file that starts
/// as an object is read only within [`MAX_PLAN_BYTES`].
fn saved_plan_text(path: &Path) -> Result<Option<String>, CliError> {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    let starts_as_object = std::fs::File::open(path).is_ok_and(|file| {
        std::io::BufReader::new(file)
            .fill_buf()
            .is_ok_and(|head| head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
    });
    if !starts_as_object {
        return Ok(None);
    }
    let bytes = crate::files::read_bounded(path, MAX_PLAN_BYTES)
        .map_err(|e| CliError::error(format!("cannot read the plan `{}`: {e}", path.display())))?;
    let is_plan = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
        .is_ok_and(|doc| doc.contains_key("format_version"));
    if !is_plan {
        return Ok(None);
    }
    String::from_utf8(bytes).map(Some).map_err(|_| {
        CliError::error(format!(
            "cannot read the plan `{}`: it is not UTF-8 text",
            path.display()
        ))
    })
}

pub fn apply_command(args: &ApplyArgs, db: &Path, output: &Output) -> Result<u8, CliError> {
    if let Some(text) = saved_plan_text(&args.path)? {
        return apply_saved(args, &text, &mut Store::open(db)?, output);
    }
    let config = ConfigArgs {
        path: args.path.clone(),
        max_file_size: args.max_file_size,
        max_total_size: args.max_total_size,
    };
    let (planned, store, desired, mut cache) = make_plan(
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
    let today = today()?;
    let (plan, refusal) = guard(plan, planned.actual.as_ref(), today, args.allow_mass_delete);
    let desired = refusal.is_none().then_some(&desired);
    if plan.is_empty() {
        return Err(refusal.unwrap_or_else(|| CliError::error("nothing to apply")));
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
        save_parse_cache(cache, db);
    }
    let printed = print_applied(&plan);
    super::free_at_exit(planned);
    match refusal {
        Some(refusal) => Err(refusal),
        None => printed,
    }
}

/// Applies a plan made by [`plan_checked_cached`] in one transaction, journaled
/// as made by `by` from `config`; returns the tenancy's new serial and the
/// database's lineage. The database is created only now, when there is
/// something to write.
/// What the state a plan leads to is checked against: the checked config
/// it was made for, if the plan is all of it, and the day.
pub(super) struct CheckAgainst<'a> {
    pub desired: Option<&'a Model>,
    pub today: Date,
}

pub(super) fn apply_planned(
    planned: &Planned,
    plan: &Plan,
    against: CheckAgainst<'_>,
    store: Option<Store>,
    db: &Path,
    config: &Path,
    by: AppliedBy,
) -> Result<(u64, String, Model), CliError> {
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
    // copy of the plan is rendered and compressed (for a first apply of 10k
    // users, 20-25 ms and 8 ms), and the state the plan leads to is checked
    // against every rule (`checked_result`: 0.2 s at 100k users). Both are
    // needed only for the journal's row, the last one written; a refusal
    // there rolls the rows back.
    let provenance = Provenance::of(by, config, GitState::of_config(config));
    let mut result = None;
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
                result = Some(
                    checked
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                        .map_err(|e| e.message)?,
                );
                Ok(json
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            },
            planned.digest.clone(),
            provenance,
        )
    })?;
    let result = result.ok_or_else(|| CliError::error("the plan was applied unchecked"))?;
    Ok((serial, lineage, result))
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
    text: &str,
    store: &mut Store,
    output: &Output,
) -> Result<u8, CliError> {
    let saved = render::parse_plan_json(text)
        .map_err(|e| CliError::error(format!("`{}`: {e}", args.path.display())))?;
    if !saved.sealed {
        return Err(CliError::error(format!(
            "`{}` was changed after `plan -o` saved it (its plan_digest does not match what it says); nothing was changed\n  hint: plan again, and apply the file as it was saved",
            args.path.display()
        )));
    }
    // Weigh the deletions against the state as it is now; the store checks
    // again inside its transaction that the state has not moved since the
    // plan. A plan that does not fit is refused before it is printed.
    let snapshot = store.load(&saved.plan.tenancy)?;
    let found_serial = snapshot.as_ref().map_or(0, |s| s.serial);
    if let Some(why) = unfit(&saved, store.lineage(), found_serial) {
        return Err(CliError::error(format!(
            "`{}` cannot be applied to `{}`: {why}; nothing was changed\n  hint: plan again against this database, and apply that plan",
            args.path.display(),
            store.path().display()
        )));
    }
    let actual = snapshot.map(|s| s.model);
    super::unless_reader_gone(print_stdout(&shown_plan(&saved.plan, args.redact, output)))?;
    if saved.plan.is_empty() {
        return Ok(0);
    }
    let today = today()?;
    let (plan, refusal) = guard(&saved.plan, actual.as_ref(), today, args.allow_mass_delete);
    if plan.is_empty() {
        return Err(refusal.unwrap_or_else(|| CliError::error("nothing to apply")));
    }
    checked_result(actual.as_ref(), &plan, None, today)?;
    // A plan made before the database existed has no lineage: it fits any
    // database where its tenancy is not yet (the store checks serial 0).
    let lineage = if saved.lineage.is_empty() {
        store.lineage().to_string()
    } else {
        saved.lineage.clone()
    };
    let journal = || {
        Ok(match &plan {
            std::borrow::Cow::Borrowed(_) => JournalPlan::new(text),
            std::borrow::Cow::Owned(cut) => JournalPlan::new(&render::plan_json_compact(
                cut,
                &lineage,
                saved.serial,
                &saved.config_digest,
            )),
        })
    };
    if refusal.is_some() {
        print_stdout(&format!(
            "\nOnly what takes access away is applied now:\n\n{}",
            shown_plan(&plan, args.redact, output)
        ))?;
    }
    commit(
        store,
        &plan,
        &lineage,
        saved.serial,
        journal,
        saved.config_digest.clone(),
        Provenance::of(
            AppliedBy::Apply,
            &args.path,
            GitState::commit_of(&args.path),
        ),
    )?;
    let printed = print_applied(&plan);
    match refusal {
        Some(refusal) => Err(refusal),
        None => printed,
    }
}

/// Why a saved plan does not fit the state it would be applied to, if it
/// does not: made against another database, before this one held its
/// tenancy, or at another serial.
fn unfit(saved: &render::SavedPlan, lineage: &str, found_serial: u64) -> Option<String> {
    let tenancy = crate::diag::escape_control(&saved.plan.tenancy);
    if saved.lineage.is_empty() {
        return (found_serial != 0).then(|| {
            format!(
                "it was made before any database held tenancy `{tenancy}`, and this one holds it at serial {found_serial} already"
            )
        });
    }
    if saved.lineage != lineage {
        return Some(format!(
            "it was made against another database (lineage {}; this one is lineage {lineage})",
            crate::diag::escape_control(&saved.lineage)
        ));
    }
    (saved.serial != found_serial).then(|| {
        format!(
            "it is stale: it was made at serial {} of tenancy `{tenancy}`, and the state has moved on to serial {found_serial}",
            saved.serial
        )
    })
}

/// Where an apply comes from, for its journal entry: the git commit of the
/// config repository, and who applies from what.
struct Provenance {
    git: GitState,
    source: ApplySource,
}

impl Provenance {
    /// `by` in this process, from `path` (a config set or a saved plan),
    /// whose git state is `git`.
    fn of(by: AppliedBy, path: &Path, git: GitState) -> Provenance {
        Provenance {
            git,
            source: super::apply_source(by, path),
        }
    }
}

fn commit(
    store: &mut Store,
    plan: &Plan,
    lineage: &str,
    serial: u64,
    journal_plan: impl FnOnce() -> Result<JournalPlan, String>,
    config_digest: String,
    provenance: Provenance,
) -> Result<u64, CliError> {
    let summary = plan.summary();
    // The one clock every command reads (`SUPPORTCTL_NOW` in tests).
    let time = super::now()?.to_string();
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

/// Asks on the terminal; only `yes` goes ahead. Without a terminal there is
/// nobody to ask, so the answer is no.
fn consent(plan: &Plan) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::error(
            "refusing to apply: stdin is not a terminal, so nobody can confirm the plan\n  hint: review the plan and run again with `--auto-approve`, or save it with `plan -o FILE` and `apply FILE`",
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
