//! `show`, `export` and `history`: reading the state back.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::{CliError, print_stdout};
use crate::config::export;
use crate::diag::escape_control;
use crate::model::Model;
use crate::state::Location;
use crate::state::{JournalKind, Store};

#[derive(Debug, Args)]
pub struct TenancyArg {
    /// The tenancy, when the database holds more than one.
    #[arg(long, value_name = "NAME")]
    pub tenancy: Option<String>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub tenancy: TenancyArg,
    #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
    pub format: ShowFormat,
    /// Print `(redacted)` instead of phone numbers.
    #[arg(long)]
    pub redact: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    Text,
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub tenancy: TenancyArg,
    /// Write a config directory in the GitOps layout (tenancy.yaml, users/,
    /// approvals.yaml, links.yaml) instead of one file on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write `(redacted)` instead of phone numbers: a copy to share, not
    /// one to apply (validate, plan and apply refuse `(redacted)` as a
    /// phone number).
    #[arg(long)]
    pub redact: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub tenancy: TenancyArg,
    #[arg(long, value_enum, default_value_t = HistoryFormat::Text)]
    pub format: HistoryFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HistoryFormat {
    Text,
    Json,
}

/// The error for a command that needs a database where there is none.
fn no_database(db: &Location) -> CliError {
    CliError::error(format!("no state database at `{db}`"))
        .with_hint("`supportctl apply PATH` creates it; `--db` or SUPPORTCTL_DB point elsewhere")
}

/// Opens an existing database to write (`sr open`, `sr comment`); a
/// missing one is an error, not a new empty database.
pub(super) fn open_existing(db: &Location) -> Result<Store, CliError> {
    if !db.exists()? {
        return Err(no_database(db));
    }
    Ok(Store::open(db)?)
}

/// Opens an existing database to read only: never created, migrated or
/// written, so that it reads for a user who may only read the file, on a
/// read-only mount and on a full disk.
pub(super) fn open_to_read(db: &Location) -> Result<Store, CliError> {
    Store::open_read_only(db)?.ok_or_else(|| no_database(db))
}

/// The tenancy a command is about: the one named, or the only one there is.
pub(super) fn choose_tenancy(store: &Store, arg: &TenancyArg) -> Result<String, CliError> {
    let names = store.tenancies()?;
    match &arg.tenancy {
        Some(name) if names.contains(name) => Ok(name.clone()),
        Some(name) if store.retired_tenancies()?.contains(name) => Err(retired(name)),
        Some(name) => Err(CliError::error(format!(
            "tenancy `{}` is not in the state; it holds {}",
            escape_control(name),
            listed(&names)
        ))),
        None => match names.as_slice() {
            [one] => Ok(one.clone()),
            [] => match store.retired_tenancies()?.as_slice() {
                [] => Err(CliError::error("the state holds no tenancy yet")
                    .with_hint("run `supportctl apply PATH` first")),
                retired => Err(CliError::error(format!(
                    "the state holds no tenancy: {} retired",
                    if retired.len() == 1 {
                        format!("{} was", listed(retired))
                    } else {
                        format!("{} were", listed(retired))
                    }
                ))
                .with_hint(
                    "name one with `--tenancy NAME` to read its SRs (`sr list`) and history",
                )),
            },
            _ => Err(CliError::error(format!(
                "the state holds several tenancies: {}",
                listed(&names)
            ))
            .with_hint("name one with `--tenancy NAME`")),
        },
    }
}

/// [`choose_tenancy`], and a retired tenancy too when it is named: its SRs
/// and journal stay readable after `retire`.
pub(super) fn choose_tenancy_or_retired(
    store: &Store,
    arg: &TenancyArg,
) -> Result<String, CliError> {
    match &arg.tenancy {
        Some(name) if store.retired_tenancies()?.contains(name) => Ok(name.clone()),
        _ => choose_tenancy(store, arg),
    }
}

/// Why a command that needs a tenancy's users and grants cannot run on a
/// retired one.
pub(super) fn retired(name: &str) -> CliError {
    let name = escape_control(name);
    CliError::error(format!(
        "tenancy `{name}` was retired: it has no users or grants, and nobody can open SRs for it"
    ))
    .with_hint(format!(
        "its SRs and history are kept: `supportctl sr list --tenancy {name}`, `supportctl history --tenancy {name}`"
    ))
}

fn listed(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_string();
    }
    names
        .iter()
        .map(|n| format!("`{}`", escape_control(n)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn load_model(store: &Store, tenancy: &str) -> Result<(Model, u64), CliError> {
    let Some(snapshot) = store.load(tenancy)? else {
        if store.retired_tenancies()?.iter().any(|t| t == tenancy) {
            return Err(retired(tenancy));
        }
        return Err(CliError::error(format!(
            "tenancy `{}` is not in the state",
            escape_control(tenancy)
        )));
    };
    Ok((snapshot.model, snapshot.serial))
}

pub fn show(args: &ShowArgs, db: &Location) -> Result<u8, CliError> {
    let store = open_to_read(db)?;
    let tenancy = choose_tenancy(&store, &args.tenancy)?;
    let (mut model, serial) = load_model(&store, &tenancy)?;
    if args.redact {
        model.redact_phones();
    }
    let text = match args.format {
        ShowFormat::Text => show_text(&model, serial),
        ShowFormat::Yaml => export::to_single_file(&model, None),
        ShowFormat::Json => show_json(&model, serial, store.lineage()),
    };
    print_stdout(&text)?;
    Ok(0)
}

/// `show --format json`: the tenancy's rows and serial, and the state's
/// lineage. `state copy` compares these of both states.
pub(super) fn show_json(model: &Model, serial: u64, lineage: &str) -> String {
    let mut text =
        serde_json::to_string_pretty(&ShowJson::new(model, serial, lineage)).unwrap_or_default();
    text.push('\n');
    text
}

fn show_text(model: &Model, serial: u64) -> String {
    let t = &model.tenancy;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "tenancy {}  csi {}  admin {}{}  (serial {serial})",
        escape_control(&t.name),
        escape_control(&t.csi),
        escape_control(&t.admin),
        t.home_region
            .as_deref()
            .map(|r| format!("  home region {}", escape_control(r)))
            .unwrap_or_default()
    );
    for (id, user) in &model.users {
        let _ = write!(
            out,
            "\nuser {}  <{}>",
            escape_control(id),
            escape_control(&user.email)
        );
        if let Some(name) = &user.name {
            let _ = write!(out, "  {}", escape_control(name));
        }
        out.push('\n');
        if let Some(a) = model.support_accounts.get(id) {
            let _ = writeln!(
                out,
                "  support account  phone {}  timezone {}",
                escape_control(&a.phone),
                escape_control(&a.timezone)
            );
        }
        if id == &t.admin {
            let _ = writeln!(out, "  tenancy admin (CSI administrator)");
        }
        if let Some(a) = model.approvals.get(id) {
            let _ = writeln!(
                out,
                "  approved  role {}  access [{}]  by {}{}",
                a.role.as_str(),
                a.privileges()
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                escape_control(&a.approved_by),
                a.expires
                    .map(|d| format!("  until {}", d.start_text()))
                    .unwrap_or_default()
            );
        } else if model.memberships.contains(id) {
            let _ = writeln!(out, "  membership pending");
        }
        if let Some(l) = model.support_links.get(id) {
            let _ = writeln!(
                out,
                "  linked via {}{}",
                escape_control(&l.via),
                l.expires
                    .map(|d| format!("  until {}", d.start_text()))
                    .unwrap_or_default()
            );
        }
    }
    out
}

/// `show --format json`: the state of one tenancy.
#[derive(Serialize)]
struct ShowJson<'a> {
    format_version: u32,
    lineage: &'a str,
    serial: u64,
    tenancy: ShowTenancy<'a>,
    users: Vec<ShowUser<'a>>,
}

#[derive(Serialize)]
struct ShowTenancy<'a> {
    name: &'a str,
    csi: &'a str,
    home_region: Option<&'a str>,
    admin: &'a str,
}

#[derive(Serialize)]
struct ShowUser<'a> {
    id: &'a str,
    email: &'a str,
    name: Option<&'a str>,
    support_account: Option<ShowAccount<'a>>,
    membership: bool,
    approval: Option<ShowApproval<'a>>,
    support_link: Option<ShowLink<'a>>,
}

#[derive(Serialize)]
struct ShowAccount<'a> {
    phone: &'a str,
    timezone: &'a str,
}

#[derive(Serialize)]
struct ShowApproval<'a> {
    role: &'static str,
    access: Vec<&'static str>,
    approved_by: &'a str,
    expires: Option<String>,
}

#[derive(Serialize)]
struct ShowLink<'a> {
    via: &'a str,
    expires: Option<String>,
}

impl<'a> ShowJson<'a> {
    fn new(model: &'a Model, serial: u64, lineage: &'a str) -> Self {
        let t = &model.tenancy;
        ShowJson {
            format_version: 1,
            lineage,
            serial,
            tenancy: ShowTenancy {
                name: &t.name,
                csi: &t.csi,
                home_region: t.home_region.as_deref(),
                admin: &t.admin,
            },
            users: model
                .users
                .iter()
                .map(|(id, u)| ShowUser {
                    id,
                    email: &u.email,
                    name: u.name.as_deref(),
                    support_account: model.support_accounts.get(id).map(|a| ShowAccount {
                        phone: &a.phone,
                        timezone: &a.timezone,
                    }),
                    membership: model.memberships.contains(id),
                    approval: model.approvals.get(id).map(|a| ShowApproval {
                        role: a.role.as_str(),
                        access: a.privileges().iter().map(|p| p.as_str()).collect(),
                        approved_by: &a.approved_by,
                        expires: a.expires.map(|d| d.to_string()),
                    }),
                    support_link: model.support_links.get(id).map(|l| ShowLink {
                        via: &l.via,
                        expires: l.expires.map(|d| d.to_string()),
                    }),
                })
                .collect(),
        }
    }
}

const SCHEMA_FILE: &str = "supportctl.schema.json";

/// The first line of every file of a redacted export.
const REDACTED_NOTE: &str = "# Phone numbers are redacted (export --redact): this copy is to share, and\n# applying it is refused. Export without --redact for a copy to restore from.\n";

pub fn export(args: &ExportArgs, db: &Location) -> Result<u8, CliError> {
    let store = open_to_read(db)?;
    let tenancy = choose_tenancy(&store, &args.tenancy)?;
    let (mut model, _) = load_model(&store, &tenancy)?;
    if args.redact {
        model.redact_phones();
    }
    // A redacted export says so in every file, where whoever applies it
    // would look.
    let noted = |text: String| {
        if args.redact {
            format!("{REDACTED_NOTE}{text}")
        } else {
            text
        }
    };
    let Some(dir) = &args.out else {
        print_stdout(&noted(export::to_single_file(&model, None)))?;
        return Ok(0);
    };
    let protected = crate::engine::protected(db);
    crate::files::check_not_protected(dir, &protected)
        .map_err(|e| super::output_error("the export", dir, e))?;
    if std::fs::symlink_metadata(dir).is_ok()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(CliError::error(format!(
            "`{}` exists and is not an empty folder; export writes a new config set and overwrites nothing",
            dir.display()
        )));
    }
    let files: Vec<(PathBuf, String)> = export::to_directory(&model, SCHEMA_FILE)
        .into_iter()
        .map(|(path, text)| (path, noted(text)))
        .collect();
    write_config_set(dir, files, &protected, "the export")?;
    super::print_stderr(&format!(
        "Exported tenancy `{}` to `{}`.\n",
        escape_control(&tenancy),
        dir.display()
    ));
    Ok(0)
}

/// Writes a new config set into `dir` (made if missing, else empty): its
/// files, and the JSON Schema beside them as `supportctl.schema.json`, so
/// that their modelines resolve and editors check and explain them. Folders
/// it makes are private (0700), as are the files (0600): they hold phone
/// numbers. Nothing is overwritten.
pub(super) fn write_config_set(
    dir: &Path,
    mut files: Vec<(PathBuf, String)>,
    protected: &crate::files::Protected,
    what: &str,
) -> Result<(), CliError> {
    crate::files::create_private_dir(dir, protected)
        .map_err(|e| super::output_error(what, dir, e))?;
    files.push((
        PathBuf::from(SCHEMA_FILE),
        crate::config::raw::json_schema(),
    ));
    for (relative, text) in files {
        let path = dir.join(&relative);
        if let Some(parent) = path.parent() {
            crate::files::create_private_dir(parent, protected)
                .map_err(|e| super::output_error(what, parent, e))?;
        }
        crate::files::create_new(&path, text.as_bytes(), 0o600, protected)
            .map_err(|e| super::output_error(what, &path, e))?;
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The folder to start the config set in: new, or empty.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// The example tenancy in the GitOps layout, as `init` writes it.
const EXAMPLE: &[(&str, &str)] = &[
    (
        "tenancy.yaml",
        include_str!("../../examples/acme-prod/tenancy.yaml"),
    ),
    (
        "approvals.yaml",
        include_str!("../../examples/acme-prod/approvals.yaml"),
    ),
    (
        "links.yaml",
        include_str!("../../examples/acme-prod/links.yaml"),
    ),
    (
        "users/alice.yaml",
        include_str!("../../examples/acme-prod/users/alice.yaml"),
    ),
    (
        "users/bob.yaml",
        include_str!("../../examples/acme-prod/users/bob.yaml"),
    ),
    (
        "users/carol.yaml",
        include_str!("../../examples/acme-prod/users/carol.yaml"),
    ),
    (
        "users/dankim.yaml",
        include_str!("../../examples/acme-prod/users/dankim.yaml"),
    ),
    (
        "users/erin.yaml",
        include_str!("../../examples/acme-prod/users/erin.yaml"),
    ),
    (
        "users/frank.yaml",
        include_str!("../../examples/acme-prod/users/frank.yaml"),
    ),
    (
        "users/gina.yaml",
        include_str!("../../examples/acme-prod/users/gina.yaml"),
    ),
];

/// `init DIR`: a new config set to edit, the example tenancy in the GitOps
/// layout with the JSON Schema beside it, each file's modeline pointing at
/// it, so that the editor's checks work wherever the folder is.
pub fn init(args: &InitArgs, db: &Location) -> Result<u8, CliError> {
    let dir = &args.dir;
    let protected = crate::engine::protected(db);
    crate::files::check_not_protected(dir, &protected)
        .map_err(|e| super::output_error("the new config set", dir, e))?;
    if std::fs::symlink_metadata(dir).is_ok()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(CliError::error(format!(
            "`{}` exists and is not an empty folder; init starts a new config set and overwrites nothing",
            escape_control(&dir.display().to_string())
        )));
    }
    let files = EXAMPLE
        .iter()
        .map(|(relative, text)| {
            let up = "../".repeat(relative.matches('/').count());
            let modeline = format!("# yaml-language-server: $schema={up}{SCHEMA_FILE}");
            let text = match text.split_once('\n') {
                Some((first, rest)) if first.starts_with("# yaml-language-server:") => {
                    format!("{modeline}\n{rest}")
                }
                _ => format!("{modeline}\n{text}"),
            };
            (PathBuf::from(relative), text)
        })
        .collect();
    write_config_set(dir, files, &protected, "the new config set")?;
    let shown = escape_control(&dir.display().to_string()).into_owned();
    super::print_stderr(&format!(
        "Started a config set in `{shown}` (the example tenancy, with its schema beside it). Edit it, then:\n  supportctl validate {shown}\n  supportctl plan {shown}\n"
    ));
    Ok(0)
}

/// A journal time as `history` prints it: to the second, in UTC, so that
/// the columns line up whatever fraction of a second each was stored with.
fn shown_time(stored: &str) -> String {
    match stored.parse::<jiff::Timestamp>() {
        Ok(moment) => moment.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => escape_control(stored).into_owned(),
    }
}

pub fn history(args: &HistoryArgs, db: &Location) -> Result<u8, CliError> {
    let store = open_to_read(db)?;
    let tenancy = choose_tenancy_or_retired(&store, &args.tenancy)?;
    let records = store.history(Some(&tenancy))?;
    let text = match args.format {
        HistoryFormat::Json => crate::report::history_json(&records),
        HistoryFormat::Text => {
            let mut out = String::new();
            if records.is_empty() {
                out.push_str("No applies yet.\n");
            }
            for r in &records {
                let _ = writeln!(
                    out,
                    "#{:<4} {}  serial {:<4} +{} ~{} -{}  {}{}{}{}",
                    r.id,
                    shown_time(&r.time),
                    r.serial,
                    r.summary.add,
                    r.summary.change,
                    r.summary.destroy,
                    match r.kind {
                        JournalKind::Apply => escape_control(&r.config_digest),
                        JournalKind::Retire => "retired the tenancy".into(),
                    },
                    r.git_commit
                        .as_deref()
                        .map(|c| format!("  commit {}", escape_control(c)))
                        .unwrap_or_default(),
                    uncommitted(r.git_changes.as_deref()),
                    r.source
                        .as_ref()
                        .map(|s| format!(
                            "  by {} on {}: {}",
                            s.command.as_str(),
                            escape_control(&s.host),
                            escape_control(&s.path)
                        ))
                        .unwrap_or_default()
                );
            }
            out
        }
    };
    print_stdout(&text)?;
    Ok(0)
}

/// What `history` says of files that differed from the commit: nothing
/// when none did (or it is not known), else each file.
fn uncommitted(changes: Option<&[String]>) -> String {
    match changes {
        Some(changes) if !changes.is_empty() => format!(
            "  with uncommitted changes: {}",
            changes
                .iter()
                .map(|c| format!("`{}`", escape_control(c.trim_start())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => String::new(),
    }
}
