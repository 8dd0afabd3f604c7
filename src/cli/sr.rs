//! `sr open|list|show|comment`: the service requests opened under the
//! access rules, decided inside the store's write transaction.

use std::fmt::Write as _;

use clap::{Args, ValueEnum};

use super::inspect::{
    TenancyArg, choose_tenancy, choose_tenancy_or_retired, open_existing, open_to_read,
};
use super::support::unknown_user;
use super::{CliError, print_stdout};
use crate::access::{self, Channel};
use crate::diag::escape_value;
use crate::engine::clock::today;
use crate::model::{Model, Person};
use crate::report;
use crate::state::Location;
use crate::state::{Comment, NewServiceRequest, ServiceRequest, Store};

#[derive(Debug, Args)]
pub struct SrArgs {
    #[command(subcommand)]
    pub command: SrCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SrCommand {
    /// Open an SR as USER, under the rules: a linked user's SR is owned by,
    /// and mailed to, the administrator it is linked through.
    Open(SrOpenArgs),
    /// List SRs: every SR of the tenancy, or what USER can see.
    List(SrListArgs),
    /// Show one SR with its comments.
    Show(SrShowArgs),
    /// Comment on an SR as USER: in MOS, or in the Console for the SRs USER opened.
    Comment(SrCommentArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Severity {
    Highest,
    High,
    Medium,
    Low,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SrType {
    /// A technical problem.
    Tech,
    /// A service limit increase.
    Limit,
    /// Billing and account.
    Account,
}

/// What `sr open` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SrOpenFormat {
    /// The new SR's id, who opened it, who owns it and who is mailed.
    Text,
    /// The new SR, as `sr show --format json` prints it.
    Json,
    /// The new SR's id alone on its line, for scripts.
    Id,
}

#[derive(Debug, Args)]
pub struct SrOpenArgs {
    #[arg(long, value_name = "USER")]
    pub user: String,
    #[arg(long, value_name = "TITLE")]
    pub title: String,
    #[arg(long, value_enum, default_value_t = Severity::Medium)]
    pub severity: Severity,
    #[arg(long = "type", value_enum, default_value_t = SrType::Tech)]
    pub kind: SrType,
    #[command(flatten)]
    pub tenancy: TenancyArg,
    #[arg(long, value_enum, default_value_t = SrOpenFormat::Text)]
    pub format: SrOpenFormat,
}

#[derive(Debug, Args)]
pub struct SrListArgs {
    /// List what this user can see, instead of every SR.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    #[command(flatten)]
    pub tenancy: TenancyArg,
    #[arg(long, value_enum, default_value_t = SrFormat::Text)]
    pub format: SrFormat,
}

#[derive(Debug, Args)]
pub struct SrShowArgs {
    /// The SR's number, as `sr open` printed it.
    #[arg(value_name = "ID", value_parser = sr_id)]
    pub id: i64,
    /// Show the SR as this user sees it; refused when the user cannot.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    #[command(flatten)]
    pub tenancy: TenancyArg,
    #[arg(long, value_enum, default_value_t = SrFormat::Text)]
    pub format: SrFormat,
}

#[derive(Debug, Args)]
pub struct SrCommentArgs {
    /// The SR's number, as `sr open` printed it.
    #[arg(value_name = "ID", value_parser = sr_id)]
    pub id: i64,
    #[arg(long, value_name = "USER")]
    pub user: String,
    #[arg(long, value_name = "TEXT")]
    pub text: String,
    #[command(flatten)]
    pub tenancy: TenancyArg,
}

/// An SR's number: SRs are numbered from 1.
fn sr_id(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` is not an SR number (1, 2, 3, …)"));
    }
    match digits.parse::<i64>() {
        Ok(id) if id >= 1 => Ok(id),
        Ok(_) => Err(format!(
            "`{text}` is not an SR number: SRs are numbered from 1"
        )),
        Err(_) => Err(format!(
            "`{text}` is out of range: SR numbers go up to {}",
            i64::MAX
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SrFormat {
    Text,
    Json,
}

fn value_name<T: ValueEnum>(value: T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// The moment an SR or comment is written: the one clock every command
/// reads (`SUPPORTCTL_NOW` in tests).
fn now() -> Result<String, CliError> {
    Ok(crate::engine::clock::now()?.to_string())
}

/// `sr list --format json`: the SRs. `state copy` compares these of both
/// states.
pub(super) fn list_json(requests: &[ServiceRequest]) -> String {
    report::sr_list_json(requests)
}

pub fn sr(args: &SrArgs, db: &Location) -> Result<u8, CliError> {
    match &args.command {
        SrCommand::Open(a) => sr_open(a, db),
        SrCommand::List(a) => sr_list(a, db),
        SrCommand::Show(a) => sr_show(a, db),
        SrCommand::Comment(a) => sr_comment(a, db),
    }
}

/// Refuses an empty (or blank) value of a text flag.
fn not_blank(flag: &str, value: &str) -> Result<(), CliError> {
    if value.trim().is_empty() {
        Err(CliError::error(format!("`{flag}` is empty")))
    } else {
        Ok(())
    }
}

/// Why an SR operation was refused inside its transaction.
enum Refusal {
    /// The user named is not a user of the tenancy: said with a hint, read
    /// after the transaction.
    UnknownUser,
    Other(String),
}

fn refused(refusal: Refusal, store: &Store, tenancy: &str, user: &str) -> CliError {
    match refusal {
        Refusal::UnknownUser => unknown_user(store, tenancy, None, user),
        Refusal::Other(message) => CliError::error(message),
    }
}

fn sr_open(args: &SrOpenArgs, db: &Location) -> Result<u8, CliError> {
    not_blank("--title", &args.title)?;
    let mut store = open_existing(db)?;
    let tenancy = choose_tenancy(&store, &args.tenancy)?;
    let today = today()?;
    let opened_at = now()?;
    let user = args.user.as_str();
    let opened = store.open_service_request(&tenancy, |model| {
        if !model.users.contains_key(user) {
            return Err(Refusal::UnknownUser);
        }
        let opening = access::opening(model, user, today).map_err(Refusal::Other)?;
        Ok(NewServiceRequest {
            title: args.title.clone(),
            kind: value_name(args.kind),
            severity: value_name(args.severity),
            opened_by: user.to_string(),
            owner: opening.owner,
            contact_email: opening.contact,
            channel: opening.channel,
            opened_at,
        })
    })?;
    let sr = opened.map_err(|refusal| refused(refusal, &store, &tenancy, user))?;
    tracing::info!(id = sr.id, opened_by = %sr.opened_by, owner = %sr.owner, "SR opened");
    let text = match args.format {
        SrOpenFormat::Id => format!("{}\n", sr.id),
        SrOpenFormat::Json => report::sr_json(&sr),
        SrOpenFormat::Text => format!(
            "SR {} opened by {} in {}: owned by {}, mail goes to {}\n",
            sr.id,
            escape_value(&sr.opened_by),
            channel_label(sr.channel),
            escape_value(&sr.owner),
            escape_value(&sr.contact_email)
        ),
    };
    print_stdout(&text)?;
    Ok(0)
}

/// The tenancy's state, with the person of `user`; refused when `user` is
/// not a user of the tenancy.
fn model_and_person(
    store: &Store,
    tenancy: &str,
    user: &str,
) -> Result<(Model, Option<Person>), CliError> {
    let Some((model, people)) = store.load_with_people(tenancy)? else {
        if store.retired_tenancies()?.iter().any(|t| t == tenancy) {
            return Err(super::inspect::retired(tenancy));
        }
        return Err(CliError::error(format!(
            "tenancy `{}` is not in the state",
            escape_value(tenancy)
        )));
    };
    if !model.users.contains_key(user) {
        return Err(unknown_user(store, tenancy, Some(&model), user));
    }
    let person = people.get(user).copied();
    Ok((model, person))
}

fn sr_list(args: &SrListArgs, db: &Location) -> Result<u8, CliError> {
    let store = open_to_read(db)?;
    let tenancy = choose_tenancy_or_retired(&store, &args.tenancy)?;
    let mut requests = store.service_requests(&tenancy)?;
    if let Some(user) = &args.user {
        let (model, person) = model_and_person(&store, &tenancy, user)?;
        let today = today()?;
        requests.retain(|sr| access::sees(&model, user, person, &sr.parties(), today).is_some());
    }
    let text = match args.format {
        SrFormat::Json => list_json(&requests),
        SrFormat::Text => {
            let mut out = String::new();
            if requests.is_empty() {
                out.push_str("No SRs.\n");
            }
            for sr in &requests {
                let _ = writeln!(
                    out,
                    "{:<5} {:<7} {:<7} {:<6} opened by {} as {}  {}",
                    sr.id,
                    sr.severity,
                    sr.kind,
                    sr.status,
                    escape_value(&sr.opened_by),
                    escape_value(&sr.owner),
                    escape_value(&sr.title)
                );
            }
            out
        }
    };
    print_stdout(&text)?;
    Ok(0)
}

fn find(store: &crate::state::Store, tenancy: &str, id: i64) -> Result<ServiceRequest, CliError> {
    store
        .service_requests(tenancy)?
        .into_iter()
        .find(|sr| sr.id == id)
        .ok_or_else(|| {
            CliError::error(format!("no SR {id} in tenancy `{}`", escape_value(tenancy)))
        })
}

fn sr_show(args: &SrShowArgs, db: &Location) -> Result<u8, CliError> {
    let store = open_to_read(db)?;
    let tenancy = choose_tenancy_or_retired(&store, &args.tenancy)?;
    let sr = find(&store, &tenancy, args.id)?;
    if let Some(user) = &args.user {
        let (model, person) = model_and_person(&store, &tenancy, user)?;
        let today = today()?;
        if access::sees(&model, user, person, &sr.parties(), today).is_none() {
            return Err(CliError::error(format!(
                "`{}` cannot see SR {}",
                escape_value(user),
                sr.id
            )));
        }
    }
    let text = match args.format {
        SrFormat::Json => report::sr_json(&sr),
        SrFormat::Text => {
            let mut out = String::new();
            let _ = writeln!(out, "SR {}  {}", sr.id, escape_value(&sr.title));
            let _ = writeln!(
                out,
                "  type {}  severity {}  status {}",
                sr.kind, sr.severity, sr.status
            );
            let _ = writeln!(
                out,
                "  opened by {} in {} at {}",
                escape_value(&sr.opened_by),
                channel_label(sr.channel),
                escape_value(&sr.opened_at)
            );
            let _ = writeln!(
                out,
                "  owner {}  contact {}",
                escape_value(&sr.owner),
                escape_value(&sr.contact_email)
            );
            for c in &sr.comments {
                let _ = writeln!(
                    out,
                    "  - {} ({}, {}): {}",
                    escape_value(&c.author),
                    channel_label(c.channel),
                    escape_value(&c.at),
                    escape_value(&c.text)
                );
            }
            out
        }
    };
    print_stdout(&text)?;
    Ok(0)
}

fn channel_label(channel: Channel) -> &'static str {
    match channel {
        Channel::Mos => "MOS",
        Channel::Console => "the Console",
    }
}

fn sr_comment(args: &SrCommentArgs, db: &Location) -> Result<u8, CliError> {
    not_blank("--text", &args.text)?;
    let mut store = open_existing(db)?;
    let tenancy = choose_tenancy(&store, &args.tenancy)?;
    let today = today()?;
    let at = now()?;
    let user = args.user.as_str();
    let added = store.add_comment(
        &tenancy,
        args.id,
        user,
        |model, person, sr| -> Result<Comment, Refusal> {
            if !model.users.contains_key(user) {
                return Err(Refusal::UnknownUser);
            }
            let channel = access::may_comment(model, user, person, &sr.parties(), today)
                .map_err(Refusal::Other)?;
            Ok(Comment {
                author: user.to_string(),
                channel,
                text: args.text.clone(),
                at,
            })
        },
    )?;
    match added {
        None => Err(CliError::error(format!(
            "no SR {} in tenancy `{}`",
            args.id,
            escape_value(&tenancy)
        ))),
        Some(Err(refusal)) => Err(refused(refusal, &store, &tenancy, user)),
        Some(Ok(comment)) => {
            print_stdout(&format!(
                "Commented on SR {} in {}.\n",
                args.id,
                channel_label(comment.channel)
            ))?;
            Ok(0)
        }
    }
}
