//! The command line: flags, dispatch, and everything printed.
//!
//! Commands parse their flags with clap, call the pure stages and the I/O
//! edges, and print: data to stdout, diagnostics and logs to stderr. Failures
//! are [`CliError`]s whose kind decides the exit code (docs/reference.md, *Commands* and *JSON formats*), in one place.

mod inspect;
mod reconcile;
mod retire;
mod serve;
mod shell;
mod sr;
mod state;
mod status;
mod support;
mod telemetry;
mod watch;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{self, Limits};
use crate::diag::{self, Palette};
use crate::engine::{self, Checked, ErrorKind, load_and_check};
use crate::render::PlanPalette;
use crate::state::Location;
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
    /// The state: a SQLite database file, or a PostgreSQL server as a
    /// `postgres://` URL (libpq's form; PGHOST, PGUSER, PGPASSWORD, ~/.pgpass
    /// and the rest fill in what it leaves out).
    #[arg(
        long,
        global = true,
        env = "SUPPORTCTL_DB",
        default_value = "supportctl.db",
        value_name = "PATH|URL"
    )]
    pub db: crate::state::Location,
    /// The schema that holds a PostgreSQL state, so that several states
    /// can share a database [default: supportctl].
    #[arg(long, global = true, env = "SUPPORTCTL_DB_SCHEMA", value_name = "NAME")]
    pub db_schema: Option<String>,
    /// Where `plan`, `apply` and `watch` keep the parse cache [default:
    /// beside a SQLite database; for a URL, in the user's cache folder].
    #[arg(
        long,
        global = true,
        env = "SUPPORTCTL_PARSE_CACHE",
        value_name = "PATH"
    )]
    pub parse_cache: Option<std::path::PathBuf>,
    /// How long a write waits for another writer's lock of the state
    /// before it gives up, naming who holds it.
    #[arg(long, global = true, env = "SUPPORTCTL_LOCK_TIMEOUT", value_name = "DURATION",
          default_value = "10s", value_parser = lock_timeout)]
    pub lock_timeout: std::time::Duration,
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
    Sr(sr::SrArgs),
    /// Manage the state itself: copy it into another state.
    State(state::StateArgs),
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
    Status(status::StatusArgs),
    /// Serve the state as read-only web pages (and their JSON) over HTTP.
    ///
    /// Who can open SRs, as whom, until when, and what each apply changed:
    /// pages of every tenancy (its overview and what needs attention, the
    /// access table of `access --all`, the apply journal and each apply's
    /// plan), each also as the JSON the command line prints (`.json`, or
    /// `Accept: application/json`). Nothing it serves can change the state.
    /// It listens on loopback unless `--listen` says otherwise; another
    /// address needs `--auth-token-file` (or `--insecure-no-auth`). SIGINT
    /// and SIGTERM stop it, with exit 0.
    Serve(serve::ServeArgs),
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
    /// Exit 1: refusal, stale plan, locked or unreadable state, I/O.
    Error,
    /// Exit 1: the config set is invalid; its findings were printed as
    /// diagnostics, so the error prints nothing more.
    InvalidConfig,
    /// Exit 3: refused by the mass-delete guard.
    MassDelete,
    /// Exit 2: flags that cannot go together, found after clap parsed them
    /// (as clap's own usage errors).
    Usage,
}

/// A command's failure: its kind, a message, and hints, printed by
/// [`print_error`] and mapped to an exit code by [`CliError::exit_code`],
/// each in this one place.
#[derive(Debug)]
pub struct CliError {
    pub failure: Failure,
    pub message: String,
    pub hints: Vec<String>,
    broken_pipe: bool,
}

impl CliError {
    pub fn error(message: impl Into<String>) -> Self {
        CliError {
            failure: Failure::Error,
            message: message.into(),
            hints: Vec::new(),
            broken_pipe: false,
        }
    }

    /// A usage error (exit 2): flags that make no sense together.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            failure: Failure::Usage,
            ..Self::error(message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// Output cut short by a closed pipe (`supportctl … | head`): not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        self.broken_pipe
    }

    /// The config set is invalid, and its findings are printed.
    pub fn invalid_config() -> Self {
        CliError {
            failure: Failure::InvalidConfig,
            ..Self::error("the configuration is invalid")
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self.failure {
            Failure::Error | Failure::InvalidConfig => 1,
            Failure::Usage => 2,
            Failure::MassDelete => 3,
        }
    }
}

/// Prints a command's failure on stderr: `error: MESSAGE` and a `hint:`
/// line for each hint, every line escaped; nothing for an invalid config
/// set, whose findings are printed already.
pub fn print_error(e: &CliError) {
    if e.failure == Failure::InvalidConfig {
        return;
    }
    let mut text = e.message.clone();
    for hint in &e.hints {
        text.push_str("\n  hint: ");
        text.push_str(hint);
    }
    let lines: Vec<_> = text.lines().map(diag::escape_control).collect();
    print_stderr(&format!("error: {}\n", lines.join("\n")));
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        let mut error = CliError::error(e.to_string());
        error.broken_pipe = e.kind() == std::io::ErrorKind::BrokenPipe;
        error
    }
}

impl From<engine::Error> for CliError {
    fn from(e: engine::Error) -> Self {
        let failure = match e.kind {
            ErrorKind::MassDelete => Failure::MassDelete,
            ErrorKind::InvalidConfig => Failure::InvalidConfig,
            ErrorKind::Stale
            | ErrorKind::RenameConflict
            | ErrorKind::Locked
            | ErrorKind::Refused
            | ErrorKind::State
            | ErrorKind::Input
            | ErrorKind::Io => Failure::Error,
        };
        CliError {
            failure,
            message: e.message,
            hints: e.hints,
            broken_pipe: e.broken_pipe,
        }
    }
}

impl From<StateError> for CliError {
    fn from(e: StateError) -> Self {
        engine::Error::from(e).into()
    }
}

/// A warning about the state rather than a config file, with its hints.
pub struct Warning {
    pub message: String,
    pub hints: Vec<String>,
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
    let watching = matches!(cli.command, Command::Watch(_) | Command::Serve(_));
    init_logging(&cli.global, if watching { 1 } else { 0 });
    let output = Output::new(cli.global.color);
    crate::state::set_lock_timeout(cli.global.lock_timeout);
    if let Some(path) = &cli.global.parse_cache {
        engine::cache::choose_parse_cache(path.clone());
    }
    let db = &match &cli.global.db_schema {
        Some(schema) => cli
            .global
            .db
            .clone()
            .with_schema(schema)
            .map_err(CliError::error)?,
        None => cli.global.db.clone(),
    };
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
        Command::Sr(args) => sr::sr(&args, db),
        Command::State(args) => state::state(&args, db),
        Command::Watch(args) => watch::watch(&args, db),
        Command::Status(args) => status::status(&args, db),
        Command::Serve(args) => serve::serve(&args, db),
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

/// `--lock-timeout`: from 10 ms to an hour.
fn lock_timeout(text: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    watch::parse_duration(text, (Duration::from_millis(10), Duration::from_secs(3600)))
}

/// A database in a folder that does not exist could never be written: say
/// so before a config set is read and planned, not after.
fn database_folder_exists(db: &Location) -> Result<(), CliError> {
    let Some(folder) = db.missing_folder() else {
        return Ok(());
    };
    Err(CliError::error(format!(
        "the database `{}` is in a folder that does not exist (`{}`)",
        diag::escape_control(&db.to_string()),
        diag::escape_control(&folder.display().to_string())
    ))
    .with_hint("create the folder, or give `--db` (or SUPPORTCTL_DB) a path in an existing one"))
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

/// The message of an output that was refused or failed: `what` is written
/// to `path`.
pub(crate) fn output_error(what: &str, path: &Path, e: crate::files::OutputError) -> CliError {
    use crate::files::OutputError;
    let error = CliError::error(format!(
        "cannot write {what} to `{}`: {e}; nothing was written there",
        path.display()
    ));
    match e {
        OutputError::Protected(_) | OutputError::OtherKind(_) | OutputError::NotRegular(_) => error
            .with_hint("name a new file (supportctl never writes over a file it keeps or reads, nor over a file of another kind)"),
        OutputError::Io(_) => error,
    }
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
    let (errors, warnings) = engine::load::summary_counts(&checked.diagnostics);
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
fn print_warning(warning: &Warning, format: DiagnosticFormat) {
    let mut message = warning.message.clone();
    for hint in &warning.hints {
        message.push_str("\n  hint: ");
        message.push_str(hint);
    }
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

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn validate(args: &ValidateArgs, output: &Output) -> Result<(), CliError> {
    let checked = load_and_check(
        &args.config.path,
        &args.config.limits(),
        engine::clock::today()?,
    );
    let sources = &checked.loaded.sources;
    let (errors, warnings) = engine::load::summary_counts(&checked.diagnostics);
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
        return Err(CliError::invalid_config());
    }
    printed?;
    Ok(())
}
