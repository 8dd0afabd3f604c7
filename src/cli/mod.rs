//! The command line: flags, dispatch, and everything printed.
//!
//! Commands parse their flags with clap, call the pure stages and the I/O
//! edges, and print: data to stdout, diagnostics and logs to stderr. Failures
//! are [`CliError`]s whose kind decides the exit code (the README's *Commands* and *JSON formats*), in one place.

mod base;
mod inspect;
mod reconcile;
mod retire;
mod shell;
mod support;
mod watch;
mod worktree;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::check;
use crate::config::{self, Limits};
use crate::diag::{self, Diagnostic, Palette};
use crate::model::{Date, Model};
use crate::render::PlanPalette;
use crate::state::StateError;

/// The version `--version` prints: the package's, and the git commit it was
/// built from (`unknown` outside a git work tree).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SUPPORTCTL_GIT_COMMIT"),
    ")"
);

/// Manage who may open Oracle Cloud support requests, as code.
///
/// supportctl reads a tenancy's users, support accounts, CSI memberships,
/// approvals and support links from YAML, and checks them against the rules
/// of the domain: a linked user acts through the CSI administrator.
#[derive(Debug, Parser)]
#[command(
    name = "supportctl",
    version = VERSION,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The state database.
    #[arg(
        long,
        global = true,
        env = "SUPPORTCTL_DB",
        default_value = "supportctl.db",
        value_name = "PATH"
    )]
    pub db: PathBuf,
    /// When to colour output; `NO_COLOR` set in the environment means never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Log more: `-v` for each step, `-vv` for everything.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Log errors only.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The format of log lines on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a config set and print every violation.
    Validate(ValidateArgs),
    /// Show what `apply` would change in the state.
    Plan(reconcile::PlanArgs),
    /// Apply a config set, or a plan saved by `plan -o`, in one transaction.
    Apply(reconcile::ApplyArgs),
    /// Print the state of a tenancy.
    Show(inspect::ShowArgs),
    /// Write the state of a tenancy as a config set that plans to no changes.
    Export(inspect::ExportArgs),
    /// List the applies made to a tenancy, and its retirement.
    History(inspect::HistoryArgs),
    /// Retire a tenancy no config set manages: remove its grants, keep its SRs.
    ///
    /// Its users, support accounts, memberships, approvals and links are
    /// removed, so nobody can open SRs for it; its SRs and history are kept.
    /// A tenancy renamed or dropped from the config sets is left as it was by
    /// every reconcile, its grants in force; `plan` and `apply` warn about
    /// it. `retire` shows what it removes and asks on a terminal (refused
    /// without one, unless `--auto-approve`); the retirement is journaled,
    /// and the tenancy's SRs and journal stay readable with `sr list
    /// --tenancy NAME` and `history --tenancy NAME`. Applying a config set of
    /// that name creates it again.
    Retire(retire::RetireArgs),
    /// Show how a user (or every user) can open SRs, as whom, and why.
    Access(support::AccessArgs),
    /// Service requests: open, list, show, comment.
    Sr(support::SrArgs),
    /// Reconcile now, then on every change, every interval and expiry.
    ///
    /// A config set is applied only once it is still: not while a config
    /// file is open for writing, nor when its files changed while they were
    /// read. A watcher does not apply over the latest apply of a watcher of
    /// another config set (see `--take-over`). SIGINT, SIGTERM and SIGHUP
    /// stop it after the apply in flight, with exit 0 and the status file
    /// saying `stopped` (SIGHUP does not reload: every reconcile reads the
    /// config set afresh); a second signal ends it at once (exit 130, 143 or
    /// 129).
    Watch(watch::WatchArgs),
    /// Tell whether the watcher is running and its last reconcile succeeded.
    Status(watch::StatusArgs),
    /// Start a config set in a new folder, the schema beside it for editors.
    ///
    /// The example tenancy in the GitOps layout, with `supportctl.schema.json`
    /// beside it and every file's modeline pointing at it, so that editors
    /// check the files wherever the folder goes.
    Init(inspect::InitArgs),
    /// Print the JSON Schema of the config format, or its reference as a
    /// Markdown table.
    Schema(SchemaArgs),
    /// Print a shell completion script.
    ///
    /// For bash: `supportctl completions bash >
    /// ~/.local/share/bash-completion/completions/supportctl`; for zsh, into a
    /// folder of `$fpath` as `_supportctl`; for fish, into
    /// `~/.config/fish/completions/supportctl.fish`.
    Completions(shell::CompletionsArgs),
    /// Print the manual page (roff), or write one per command with `--out`.
    Man(shell::ManArgs),
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// `json`: the JSON Schema, for editors and validators; `markdown`: the
    /// config reference as a table of every field, for people.
    #[arg(long, value_enum, default_value_t = SchemaFormat::Json)]
    pub format: SchemaFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaFormat {
    Json,
    Markdown,
}

/// Where a config set is and the limits it is read under.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// A config file, or a directory of `*.yaml`/`*.yml` files.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// The largest config file read, in bytes (at most 4 GiB).
    #[arg(long, default_value_t = Limits::default().max_file_bytes, value_name = "BYTES",
          value_parser = size_limit)]
    pub max_file_size: u64,
    /// The largest config set read, all its files together, in bytes (at
    /// most 4 GiB).
    #[arg(long, default_value_t = Limits::default().max_total_bytes, value_name = "BYTES",
          value_parser = size_limit)]
    pub max_total_size: u64,
}

/// The most `--max-file-size` and `--max-total-size` accept: 4 GiB, far
/// past any config set (a million users is about 200 MB), and a size every
/// count in the reader holds.
pub const MAX_SIZE_LIMIT: u64 = 4 << 30;

/// A size limit in bytes: a whole number from 1 to [`MAX_SIZE_LIMIT`].
pub(crate) fn size_limit(text: &str) -> Result<u64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` is not a number of bytes"));
    }
    match text.parse::<u64>() {
        Ok(0) => Err("the limit must be at least 1 byte".to_string()),
        Ok(n) if n <= MAX_SIZE_LIMIT => Ok(n),
        _ => Err(format!(
            "`{text}` is out of range: the most is {MAX_SIZE_LIMIT} bytes (4 GiB)"
        )),
    }
}

impl ConfigArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_file_bytes: self.max_file_size,
            max_total_bytes: self.max_total_size,
            ..Limits::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// How to print findings: text for people, json for scripts, github for
    /// workflow annotations on the offending lines.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
    pub format: DiagnosticFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    Text,
    Json,
    Github,
}

/// How a command failed, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Exit 1: invalid config, refusal, stale plan, I/O. The message is
    /// already printed when `message` is empty.
    Error,
    /// Exit 3: refused by the mass-delete guard.
    MassDelete,
}

#[derive(Debug)]
pub struct CliError {
    pub failure: Failure,
    pub message: String,
    broken_pipe: bool,
}

impl CliError {
    pub fn error(message: impl Into<String>) -> Self {
        CliError {
            failure: Failure::Error,
            message: message.into(),
            broken_pipe: false,
        }
    }

    /// Output cut short by a closed pipe (`supportctl … | head`): not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        self.broken_pipe
    }

    pub fn mass_delete(message: impl Into<String>) -> Self {
        CliError {
            failure: Failure::MassDelete,
            ..Self::error(message)
        }
    }

    /// A failure whose explanation was already printed.
    pub fn reported() -> Self {
        Self::error(String::new())
    }

    pub fn exit_code(&self) -> u8 {
        match self.failure {
            Failure::Error => 1,
            Failure::MassDelete => 3,
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        let mut error = CliError::error(e.to_string());
        error.broken_pipe = e.kind() == std::io::ErrorKind::BrokenPipe;
        error
    }
}

impl From<StateError> for CliError {
    fn from(e: StateError) -> Self {
        CliError::error(e.to_string())
    }
}

/// What a command prints to, with the colour decisions made once.
pub struct Output {
    pub stderr_palette: Palette,
    pub stdout_plan: PlanPalette,
}

impl Output {
    fn new(choice: ColorChoice) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let colour = |terminal: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !no_color && terminal,
        };
        Output {
            stderr_palette: if colour(std::io::stderr().is_terminal()) {
                Palette::ANSI
            } else {
                Palette::PLAIN
            },
            stdout_plan: if colour(std::io::stdout().is_terminal()) {
                PlanPalette::ANSI
            } else {
                PlanPalette::PLAIN
            },
        }
    }
}

/// Writes `text` to stdout. A closed pipe (`supportctl … | head`) ends the
/// write quietly.
pub fn print_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// The outcome of printing data a command goes on after: a closed pipe
/// (`supportctl … | head`) is no reason to stop (a plan's verdict, a saved
/// plan, an approved apply stand without their reader); any other failure
/// to write is.
pub(crate) fn unless_reader_gone(printed: std::io::Result<()>) -> Result<(), CliError> {
    match printed {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

pub fn print_stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// Runs a command; `Ok` carries the exit code of a success (0, or 2 for
/// `plan --detailed-exitcode` with changes).
pub fn run(cli: Cli) -> Result<u8, CliError> {
    // A watcher reports each reconcile at info; other commands speak up
    // only for warnings unless asked.
    let watching = matches!(cli.command, Command::Watch(_));
    init_logging(&cli.global, if watching { 1 } else { 0 });
    let output = Output::new(cli.global.color);
    let db = &cli.global.db;
    if matches!(
        cli.command,
        Command::Plan(_) | Command::Apply(_) | Command::Watch(_)
    ) {
        database_folder_exists(db)?;
    }
    match cli.command {
        Command::Validate(args) => validate(&args, &output).map(|()| 0),
        Command::Plan(args) => reconcile::plan_command(&args, db, &output),
        Command::Apply(args) => reconcile::apply_command(&args, db, &output),
        Command::Show(args) => inspect::show(&args, db),
        Command::Export(args) => inspect::export(&args, db),
        Command::History(args) => inspect::history(&args, db),
        Command::Retire(args) => retire::retire(&args, db, &output),
        Command::Access(args) => support::access(&args, db),
        Command::Sr(args) => support::sr(&args, db),
        Command::Watch(args) => watch::watch(&args, db),
        Command::Status(args) => watch::status(&args, db),
        Command::Schema(args) => {
            let schema = config::raw::json_schema();
            match args.format {
                SchemaFormat::Json => print_stdout(&schema)?,
                SchemaFormat::Markdown => print_stdout(&config::reference::markdown(&schema))?,
            }
            Ok(0)
        }
        Command::Completions(args) => shell::completions(&args),
        Command::Man(args) => shell::man(&args, db),
        Command::Init(args) => inspect::init(&args, db),
    }
}

/// A database in a folder that does not exist could never be written: say
/// so before a config set is read and planned, not after.
fn database_folder_exists(db: &Path) -> Result<(), CliError> {
    let folder = match db.parent() {
        Some(f) if !f.as_os_str().is_empty() => f,
        _ => return Ok(()),
    };
    if folder.is_dir() {
        return Ok(());
    }
    Err(CliError::error(format!(
        "the database `{}` is in a folder that does not exist (`{}`)\n  hint: create the folder, or give `--db` (or SUPPORTCTL_DB) a path in an existing one",
        diag::escape_control(&db.display().to_string()),
        diag::escape_control(&folder.display().to_string())
    )))
}

/// Logs to stderr at a level from `-q`/`-v` (counted from `base`, 0 for
/// warnings, 1 for info) or else `RUST_LOG`.
fn init_logging(global: &GlobalArgs, base: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match (global.quiet, global.verbose.saturating_add(base)) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = if global.quiet || global.verbose > 0 || base > 0 {
        EnvFilter::new(format!("supportctl={default}"))
    } else {
        EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(format!("supportctl={default}")))
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        .log_internal_errors(false)
        .with_target(false);
    let _ = match global.log_format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Where log lines go: stderr, with a line that cannot be written dropped.
/// A log line is never a reason to stop: its reader may be gone (a log
/// shipper restarting, `2>&1 | head`), and tracing-subscriber reports a
/// failed write with `eprintln!`, which panics when stderr is what failed.
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().lock().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().lock().flush();
        Ok(())
    }
}

/// This host's name, as the journal and the status file record it: the
/// kernel's (a container's own), else `HOSTNAME`, else `unknown`.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|n| !n.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// Who is making an apply, for its journal entry: `by` in this process on
/// this host, from `path` (made absolute).
pub(crate) fn apply_source(by: crate::state::AppliedBy, path: &Path) -> crate::state::ApplySource {
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

/// Leaves `value` for the operating system to reclaim when the process
/// exits, which the one-shot commands do right after: freeing a large model
/// allocation by allocation takes longer than the whole plan of a small
/// change (a tenth of a second at 100,000 users). Only for what lives until
/// the command ends; never in `watch`.
pub(crate) fn free_at_exit<T>(value: T) {
    std::mem::forget(value);
}

/// `path` with `suffix` appended to its file name: `state.db` → `state.db-wal`.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The files no output may be: the state database `db`, its side files
/// and the parse cache beside it (see `files`). A command adds its config
/// set.
pub(crate) fn protected(db: &Path) -> crate::files::Protected {
    let named = |what: &str, path: &Path| format!("{what} `{}`", path.display());
    let mut protected = crate::files::Protected::new().file(db, named("the state database", db));
    for (suffix, what) in [
        ("-wal", "the state database's write-ahead log"),
        ("-shm", "the state database's shared-memory file"),
        ("-journal", "the state database's rollback journal"),
    ] {
        let side = with_suffix(db, suffix);
        protected = protected.file(&side, named(what, &side));
    }
    let cache = parse_cache_path(db);
    protected.file(&cache, named("the parse cache", &cache))
}

/// The message of an output that was refused or failed: `what` is written
/// to `path`.
pub(crate) fn output_error(what: &str, path: &Path, e: crate::files::OutputError) -> CliError {
    use crate::files::OutputError;
    let hint = match e {
        OutputError::Protected(_) | OutputError::OtherKind(_) | OutputError::NotRegular(_) => {
            "\n  hint: name a new file (supportctl never writes over a file it keeps or reads, nor over a file of another kind)"
        }
        OutputError::Io(_) => "",
    };
    CliError::error(format!(
        "cannot write {what} to `{}`: {e}; nothing was written there{hint}",
        path.display()
    ))
}

/// Where the parse cache of the config sets planned against `db` is kept.
pub(crate) fn parse_cache_path(db: &Path) -> PathBuf {
    with_suffix(db, ".parse-cache")
}

/// The parse cache kept beside `db`, or an empty one when there is none it
/// can trust (why is logged at debug level; the files are then parsed).
pub(crate) fn open_parse_cache(db: &Path) -> config::ParseCache {
    let path = parse_cache_path(db);
    config::ParseCache::open(&path).unwrap_or_else(|why| {
        tracing::debug!(
            path = %diag::escape_control(&path.display().to_string()),
            reason = %diag::escape_control(&why),
            "parse cache not used"
        );
        config::ParseCache::empty()
    })
}

/// Keeps `cache` beside `db` for the next run. Callers save only once `db`
/// has opened as supportctl's database: never beside a foreign file, nor
/// where a plan found no database. A cache that cannot be written only
/// costs the next run time: logged, not failed.
pub(crate) fn save_parse_cache(cache: &mut config::ParseCache, db: &Path) {
    let path = parse_cache_path(db);
    let started = std::time::Instant::now();
    match cache.save(&path) {
        Ok(true) => tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "parse cache saved"
        ),
        Ok(false) => {}
        Err(e) => tracing::debug!(
            path = %diag::escape_control(&path.display().to_string()),
            error = %e,
            "parse cache not saved"
        ),
    }
}

/// A config set loaded and checked, with its findings.
pub struct Checked {
    pub loaded: config::Loaded,
    pub diagnostics: Vec<Diagnostic>,
    pub model: Option<Model>,
}

/// Loads and checks a config set: the first half of every command that reads one.
pub fn load_and_check(path: &Path, limits: &Limits, today: Date) -> Checked {
    load_and_check_cached(path, limits, today, &mut config::ParseCache::disabled())
}

/// [`load_and_check`], parsing only the files `cache` does not hold as they are.
pub fn load_and_check_cached(
    path: &Path,
    limits: &Limits,
    today: Date,
    cache: &mut config::ParseCache,
) -> Checked {
    let started = std::time::Instant::now();
    let (loaded, diagnostics) = config::load_cached(path, limits, cache);
    let loaded_in = started.elapsed();
    let checked = check_loaded(loaded, diagnostics, today);
    tracing::debug!(
        files = checked.loaded.sources.len(),
        parsed = cache.last_parsed,
        reused = cache.last_reused,
        load_ms = loaded_in.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "config set checked"
    );
    checked
}

/// Checks a loaded config set, given the findings of its load: the half of
/// [`load_and_check`] after the files are read. The findings come back
/// sorted, and the model only when none of them is an error.
pub fn check_loaded(
    mut loaded: config::Loaded,
    mut diagnostics: Vec<Diagnostic>,
    today: Date,
) -> Checked {
    let model = if loaded.raw.tenancies.is_empty() && loaded.incomplete {
        // The files that failed may hold the tenancy: "no tenancy" would mislead.
        None
    } else {
        let (model, findings) = check::check(std::mem::take(&mut loaded.raw), today);
        // Rules about references cannot be trusted when files are missing:
        // report only what the readable files show for certain.
        if loaded.incomplete {
            diagnostics.extend(findings.into_iter().filter(|d| !is_cross_reference(d)));
        } else {
            diagnostics.extend(findings);
        }
        model
    };
    name_the_file_without_a_tenancy(&mut diagnostics, &loaded.sources);
    diag::sort(&mut diagnostics);
    let model = model.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
    Checked {
        loaded,
        diagnostics,
        model,
    }
}

/// "No tenancy" in a config set of one file is about that file: say which,
/// and whether it is empty.
fn name_the_file_without_a_tenancy(diagnostics: &mut [Diagnostic], sources: &diag::Sources) {
    if sources.len() != 1 {
        return;
    }
    for d in diagnostics
        .iter_mut()
        .filter(|d| d.rule == diag::Rule::TenancyMissing)
    {
        // A text that changed since it was loaded is not known to be blank.
        let blank = sources.try_text(0).is_some_and(|text| {
            diag::lines(text).all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        });
        d.location = Some(diag::Location {
            file: 0,
            line: 1,
            column: 1,
            len: 0,
        });
        d.message = if blank {
            "the file is empty: a config set needs a `tenancy` section".to_string()
        } else {
            "the file has no `tenancy` section".to_string()
        };
    }
}

/// Findings that depend on the whole config set being readable.
fn is_cross_reference(d: &Diagnostic) -> bool {
    use diag::Rule::*;
    matches!(
        d.rule,
        TenancyMissing
            | AdminNotDeclared
            | UnknownUser
            | ApprovalWithoutMembership
            | ApproverNoLongerAdmin
            | LinkInactive
            | SingleCsiAdmin
            | LinkedUserPending
    )
}

/// Prints a checked config set's findings (text, on stderr) for commands
/// whose stdout carries something else.
/// Prints a command's findings about its config set: as text on stderr; as
/// workflow commands (also on stderr, where GitHub Actions reads them too,
/// so stdout keeps the plan) for `github`; for `json`, when the config set is
/// invalid and no plan will follow, also the JSON report of `validate
/// --format json` on stdout, so a script reads JSON there either way.
fn report_diagnostics(checked: &Checked, output: &Output, format: DiagnosticFormat) {
    if checked.diagnostics.is_empty() {
        return;
    }
    let sources = &checked.loaded.sources;
    match format {
        DiagnosticFormat::Github => {
            print_stderr(&diag::render_github(&checked.diagnostics, sources));
            return;
        }
        DiagnosticFormat::Json if checked.model.is_none() => {
            // A closed stdout is no reason to hide the verdict: the exit
            // code still says invalid. People reading a CI log get the text
            // on stderr as well.
            let _ = print_stdout(&diag::render_json(&checked.diagnostics, sources));
        }
        DiagnosticFormat::Json | DiagnosticFormat::Text => {}
    }
    print_stderr(&diag::render_text(
        &checked.diagnostics,
        &checked.loaded.sources,
        output.stderr_palette,
    ));
    let (errors, warnings) = summary_counts(&checked.diagnostics);
    if errors > 0 {
        print_stderr(&format!(
            "error: the configuration is invalid: {}, {}\n",
            plural(errors, "error"),
            plural(warnings, "warning")
        ));
    }
}

/// A warning about the state rather than a config file (no file or line):
/// `warning: …` on stderr, or a GitHub workflow command for `--format
/// github`, so a pull request shows it too.
fn print_warning(message: &str, format: DiagnosticFormat) {
    match format {
        DiagnosticFormat::Github => print_stderr(&format!(
            "::warning title=supportctl::{}\n",
            message
                .replace('%', "%25")
                .replace('\r', "%0D")
                .replace('\n', "%0A")
        )),
        DiagnosticFormat::Text | DiagnosticFormat::Json => {
            print_stderr(&format!("warning: {message}\n"));
        }
    }
}

fn summary_counts(diagnostics: &[Diagnostic]) -> (usize, usize) {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    (errors, diagnostics.len() - errors)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Today's date in UTC, or the day `SUPPORTCTL_TODAY` (YYYY-MM-DD) names, so
/// that tests and dry runs can see how a config reads on another day.
pub fn today() -> Result<Date, CliError> {
    match std::env::var("SUPPORTCTL_TODAY") {
        Ok(text) if !text.is_empty() => Date::parse(&text).ok_or_else(|| {
            CliError::error(format!(
                "SUPPORTCTL_TODAY=`{text}` is not a date in the form YYYY-MM-DD"
            ))
        }),
        _ => Ok(Date::of(now()?)),
    }
}

/// Whether `SUPPORTCTL_TODAY` fixes the day, so that no expiry ever comes.
pub fn day_is_frozen() -> bool {
    std::env::var_os("SUPPORTCTL_TODAY").is_some_and(|v| !v.is_empty())
}

/// The current moment: the system clock, or, when `SUPPORTCTL_NOW` names a
/// moment (RFC 3339, e.g. `2027-01-30T23:59:58Z`), a clock that starts there
/// and runs at the real pace, so that an expiry can be watched happen.
pub fn now() -> Result<jiff::Timestamp, CliError> {
    static START: std::sync::OnceLock<
        Result<Option<(jiff::Timestamp, std::time::Instant)>, String>,
    > = std::sync::OnceLock::new();
    let start = START.get_or_init(|| match std::env::var("SUPPORTCTL_NOW") {
        Ok(text) if !text.is_empty() => text
            .parse::<jiff::Timestamp>()
            .map(|moment| Some((moment, std::time::Instant::now())))
            .map_err(|_| {
                format!("SUPPORTCTL_NOW=`{text}` is not a moment in the form 2027-01-30T23:59:58Z")
            }),
        _ => Ok(None),
    });
    match start {
        Err(message) => Err(CliError::error(message.clone())),
        Ok(None) => Ok(jiff::Timestamp::now()),
        Ok(Some((moment, since))) => {
            let elapsed = jiff::SignedDuration::try_from(since.elapsed()).unwrap_or_default();
            moment
                .checked_add(elapsed)
                .map_err(|_| CliError::error("the clock is out of range"))
        }
    }
}

fn validate(args: &ValidateArgs, output: &Output) -> Result<(), CliError> {
    let checked = load_and_check(&args.config.path, &args.config.limits(), today()?);
    let sources = &checked.loaded.sources;
    let (errors, warnings) = summary_counts(&checked.diagnostics);
    // The verdict does not depend on whether stdout is still open: an
    // invalid config exits 1 even when a reader closed the pipe early.
    let printed = match args.format {
        DiagnosticFormat::Json => print_stdout(&diag::render_json(&checked.diagnostics, sources)),
        DiagnosticFormat::Github => {
            print_stdout(&diag::render_github(&checked.diagnostics, sources))
        }
        DiagnosticFormat::Text => {
            print_stderr(&diag::render_text(
                &checked.diagnostics,
                sources,
                output.stderr_palette,
            ));
            if let Some(model) = &checked.model {
                print_stdout(&format!(
                    "The configuration is valid: tenancy `{}`, {}, {}, {}, {}{}.\n",
                    diag::escape_control(&model.tenancy.name),
                    plural(model.users.len(), "user"),
                    plural(model.memberships.len(), "membership"),
                    plural(model.approvals.len(), "approval"),
                    plural(model.support_links.len(), "support link"),
                    if warnings > 0 {
                        format!(" ({})", plural(warnings, "warning"))
                    } else {
                        String::new()
                    }
                ))
            } else {
                print_stderr(&format!(
                    "error: the configuration is invalid: {}, {}\n",
                    plural(errors, "error"),
                    plural(warnings, "warning")
                ));
                Ok(())
            }
        }
    };
    if errors > 0 {
        return Err(CliError::reported());
    }
    printed?;
    Ok(())
}
