//! `state copy`: moving every tenancy of a state into another one — from a
//! SQLite file to a shared PostgreSQL state, or back — without losing its
//! history (docs/guide/state.md, *Moving a state*).
//!
//! The copy is written in one transaction on DEST, with every id kept (see
//! [`crate::state::TenancyDump`]), and is checked afterwards by reading
//! both states as the commands do: a copy that `show`, `history` or `sr
//! list` would tell apart from its source is reported, never passed off as
//! done.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::inspect::show_json;
use super::sr::list_json;
use super::{CliError, plural, print_stdout};
use crate::diag::escape_control;
use crate::report::history_json;
use crate::state::{Location, Store, TenancyDump};

#[derive(Debug, Args)]
pub struct StateArgs {
    #[command(subcommand)]
    pub command: StateCommand,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Copy every tenancy of the state into another state, and check both
    /// read the same.
    ///
    /// Copies each tenancy's rows and serial, its people and remembered
    /// renames, its journal and its SRs with their comments — retired
    /// tenancies too — with their ids, into DEST (a SQLite file or a
    /// `postgres://` URL, created when there is no state there), in one
    /// transaction. Refused, nothing written, when DEST already holds one
    /// of the tenancies or one of the ids. Then reads every tenancy back
    /// from both states, as `show`, `history` and `sr list` print them in
    /// JSON, and fails when they differ. DEST keeps its own lineage: plans
    /// saved against the source are stale there. Stop watchers and applies
    /// on the source first: what they write meanwhile is not copied.
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The state to copy into: a SQLite file, or a `postgres://` URL, as
    /// `--db` takes them.
    #[arg(long, value_name = "DEST")]
    pub to: Location,
    /// The schema of DEST, when it is a PostgreSQL state [default:
    /// supportctl].
    #[arg(long, value_name = "NAME")]
    pub to_schema: Option<String>,
}

pub fn state(args: &StateArgs, db: &Location) -> Result<u8, CliError> {
    match &args.command {
        StateCommand::Copy(a) => copy(a, db),
    }
}

/// Where a location is shown: a URL with its password as `***`, and no
/// control characters.
fn shown(location: &Location) -> String {
    escape_control(&location.to_string()).into_owned()
}

fn copy(args: &CopyArgs, db: &Location) -> Result<u8, CliError> {
    let dest = match &args.to_schema {
        Some(schema) => args.to.clone().with_schema(schema).map_err(|e| {
            CliError::error(e.replace("`--db-schema` (or SUPPORTCTL_DB_SCHEMA)", "`--to-schema`"))
        })?,
        None => args.to.clone(),
    };
    if same_state(db, &dest) {
        return Err(CliError::error(format!(
            "`{}` is the state being copied; nothing was written",
            shown(&dest)
        ))
        .with_hint("`--to` names the state to copy into, `--db` the one to copy from"));
    }
    let source = Store::open_read_only(db)?.ok_or_else(|| {
        CliError::error(format!("no state at `{}` to copy", shown(db)))
            .with_hint("`--db` (or SUPPORTCTL_DB) names the state to copy from")
    })?;
    let dumps = source.dump_all()?;
    if dumps.is_empty() {
        return Err(CliError::error(format!(
            "the state at `{}` holds no tenancy; nothing to copy",
            shown(db)
        ))
        .with_hint("`--db` (or SUPPORTCTL_DB) names the state to copy from"));
    }
    if let Some(folder) = dest.missing_folder() {
        return Err(CliError::error(format!(
            "`{}` is in a folder that does not exist (`{}`); nothing was written",
            shown(&dest),
            escape_control(&folder.display().to_string())
        ))
        .with_hint("create the folder, or give `--to` a path in an existing one"));
    }
    let mut target = Store::open(&dest)?;
    target.restore(&dumps)?;
    let differences = differences(&source, &target, &dumps)?;
    if let Some(first) = differences.first() {
        return Err(CliError::error(format!(
            "the copy was written to `{}`, but it does not read the same as `{}`: {first}{}",
            shown(&dest),
            shown(db),
            match differences.len() {
                1 => String::new(),
                n => format!(" (and {} more)", plural(n - 1, "difference")),
            }
        ))
        .with_hint(
            "was the source written to during the copy? Stop watchers and applies on it, remove the copy (a new file, or `DROP SCHEMA … CASCADE`), and copy again",
        ));
    }
    let entries: usize = dumps.iter().map(|d| d.journal.len()).sum();
    let requests: usize = dumps.iter().map(|d| d.service_requests.len()).sum();
    let comments: usize = dumps
        .iter()
        .flat_map(|d| &d.service_requests)
        .map(|s| s.comments.len())
        .sum();
    let retired = dumps.iter().filter(|d| d.rows.is_none()).count();
    print_stdout(&format!(
        "Copied {}{} from `{}` to `{}`: {}, {}, {}.\nBoth states read the same, tenancy by tenancy. `{}` has its own lineage: plans saved against `{}` are stale there; plan again.\n",
        counted(dumps.len(), "tenancy", "tenancies"),
        if retired > 0 {
            format!(" ({retired} retired)")
        } else {
            String::new()
        },
        shown(db),
        shown(&dest),
        counted(entries, "journal entry", "journal entries"),
        plural(requests, "SR"),
        plural(comments, "comment"),
        shown(&dest),
        shown(db),
    ))?;
    Ok(0)
}

/// `n` things, in the singular or the plural.
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Whether `a` and `b` are one state: the same PostgreSQL target, or the
/// same SQLite file (however named).
fn same_state(a: &Location, b: &Location) -> bool {
    match (a, b) {
        (Location::Sqlite(x), Location::Sqlite(y)) => {
            x == y
                || matches!(
                    (std::fs::canonicalize(x), std::fs::canonicalize(y)),
                    (Ok(x), Ok(y)) if x == y
                )
        }
        _ => a == b,
    }
}

/// How the tenancies read differently in `source` and `target`, one line
/// each: as `show`, `history` and `sr list` print them in JSON (the
/// lineage left out, which is each state's own), then every stored id,
/// person number and plan byte the copy kept.
fn differences(
    source: &Store,
    target: &Store,
    dumps: &[TenancyDump],
) -> Result<Vec<String>, CliError> {
    let mut found = Vec::new();
    for dump in dumps {
        let name = dump.name.as_str();
        let mut differ = |what: &str| {
            found.push(format!(
                "tenancy `{}`: {what} differs",
                escape_control(name)
            ));
        };
        let shown = |store: &Store| -> Result<Option<Value>, CliError> {
            Ok(store.load(name)?.map(|s| {
                let mut json: Value =
                    serde_json::from_str(&show_json(&s.model, s.serial, store.lineage()))
                        .unwrap_or(Value::Null);
                if let Some(object) = json.as_object_mut() {
                    object.remove("lineage");
                }
                json
            }))
        };
        if shown(source)? != shown(target)? {
            differ("`show --format json`");
        }
        if history_json(&source.history(Some(name))?) != history_json(&target.history(Some(name))?)
        {
            differ("`history --format json`");
        }
        if list_json(&source.service_requests(name)?) != list_json(&target.service_requests(name)?)
        {
            differ("`sr list --format json`");
        }
        if target.dump(name)?.as_ref() != Some(dump) {
            differ("what is stored (ids, person numbers, journal plans)");
        }
    }
    Ok(found)
}
