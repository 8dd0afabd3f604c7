//! `access` and `sr`: how each user reaches Oracle Support, through whom,
//! and why; and the service requests opened under those rules.

use std::fmt::Write as _;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::inspect::{
    TenancyArg, choose_tenancy, choose_tenancy_or_retired, load_model, open_existing, open_to_read,
};
use super::{CliError, print_stdout};
use crate::access::{self, Access, AccessError, Channel};
use crate::diag::{did_you_mean, escape_value};
use crate::engine::clock::today;
use crate::model::{Model, Person};
use crate::state::Location;
use crate::state::{Comment, NewServiceRequest, ServiceRequest, Store};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["user", "all"])))]
pub struct AccessArgs {
    /// The user to resolve.
    #[arg(value_name = "USER")]
    pub user: Option<String>,
    /// Every user of the tenancy: the audit view.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub tenancy: TenancyArg,
    #[arg(long, value_enum, default_value_t = AccessFormat::Text)]
    pub format: AccessFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessFormat {
    Text,
    Json,
    /// Comma-separated values with a header row (`--all` only makes sense,
    /// but one user works too).
    Csv,
}

/// `access --format json`: one user (docs/reference.md, *Commands* and *JSON formats*).
#[derive(Serialize)]
struct AccessJson<'a> {
    user: &'a str,
    can_open_sr: bool,
    acts_as: Option<&'a str>,
    notified: Option<&'a str>,
    visible_in_mos: bool,
    visible_in_console: bool,
    reason: &'a str,
    path: &'static str,
    via: Option<&'a str>,
    until: Option<String>,
    sees_all_csi_srs: bool,
    /// `until` as the moment access ends: 00:00 UTC of that day (RFC 3339).
    until_at: Option<String>,
}

impl<'a> From<&'a Access> for AccessJson<'a> {
    fn from(a: &'a Access) -> Self {
        AccessJson {
            user: &a.user,
            can_open_sr: a.can_open_sr,
            acts_as: a.acts_as.as_deref(),
            notified: a.notified.as_deref(),
            visible_in_mos: a.visible_in_mos,
            visible_in_console: a.visible_in_console,
            reason: &a.reason,
            path: a.path.as_str(),
            via: a.via.as_deref(),
            until: a.until.map(|d| d.to_string()),
            sees_all_csi_srs: a.sees_all_csi_srs,
            until_at: a.until.map(|d| d.start().to_string()),
        }
    }
}

pub fn access(args: &AccessArgs, db: &Location) -> Result<u8, CliError> {
    let store = open_to_read(db)?;
    let tenancy = choose_tenancy(&store, &args.tenancy)?;
    let (model, _) = load_model(&store, &tenancy)?;
    let today = today()?;
    let users: Vec<&str> = match &args.user {
        Some(user) => vec![user.as_str()],
        None => model.users.keys().map(String::as_str).collect(),
    };
    let resolved = users
        .iter()
        .map(|u| access::resolve(&model, u, today))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|AccessError::UnknownUser(user)| {
            unknown_user(&store, &tenancy, Some(&model), &user)
        })?;
    let text = match (args.format, args.all) {
        (AccessFormat::Json, false) => json_line(&AccessJson::from(&resolved[0])),
        (AccessFormat::Json, true) => {
            json_line(&resolved.iter().map(AccessJson::from).collect::<Vec<_>>())
        }
        (AccessFormat::Csv, _) => csv(&resolved),
        (AccessFormat::Text, false) => one_text(&resolved[0]),
        (AccessFormat::Text, true) => table(&resolved),
    };
    print_stdout(&text)?;
    Ok(0)
}

/// `user` is not a user of `tenancy`: the error, with a hint when one
/// helps. An id a rename took away names the user who has it now (each of
/// them, when the id was renamed away more than once); else the closest id
/// is suggested. `model`: the tenancy's state when the caller has read it.
fn unknown_user(store: &Store, tenancy: &str, model: Option<&Model>, user: &str) -> CliError {
    let error = CliError::error(format!("`{user}` is not a user of the tenancy"));
    // A failure to read a hint only loses the hint.
    let renamed = store.renamed_from(tenancy, user).unwrap_or_default();
    let loaded;
    let model = match model {
        Some(model) => Some(model),
        None => {
            loaded = load_model(store, tenancy).ok();
            loaded.as_ref().map(|(model, _)| model)
        }
    };
    let ids = |ids: &[String]| {
        ids.iter()
            .map(|id| format!("`{}`", escape_value(id)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match renamed.as_slice() {
        [] => match model.and_then(|m| did_you_mean(user, m.users.keys().map(String::as_str))) {
            Some(best) => error.with_hint(format!("did you mean `{}`?", escape_value(best))),
            None => error,
        },
        [one] => error.with_hint(format!(
            "`{user}` was renamed: that user is {} now",
            ids(std::slice::from_ref(one))
        )),
        many => error.with_hint(format!(
            "`{user}` was renamed more than once: those users are {} now",
            ids(many)
        )),
    }
}

fn json_line<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn one_text(a: &Access) -> String {
    let mut out = String::new();
    let user = escape_value(&a.user);
    if a.can_open_sr {
        let owner = a.acts_as.as_deref().unwrap_or_default();
        let _ = writeln!(
            out,
            "{user} can open SRs, as `{}`; mail goes to {}",
            escape_value(owner),
            escape_value(a.notified.as_deref().unwrap_or_default())
        );
    } else {
        let _ = writeln!(out, "{user} cannot open SRs");
    }
    let _ = writeln!(out, "  why: {}", escape_value(&a.reason));
    let _ = writeln!(
        out,
        "  reads SRs in: MOS {}, Console {}{}",
        yes_no(a.visible_in_mos),
        yes_no(a.visible_in_console),
        if a.sees_all_csi_srs {
            " (every SR of the CSI in MOS)"
        } else {
            ""
        }
    );
    if let Some(until) = a.until {
        let _ = write!(out, "  until: {}", until.start_text());
        if let Some(cause) = &a.until_cause {
            let _ = write!(out, ", when {}", escape_value(cause));
        }
        out.push('\n');
    }
    out
}

fn table(all: &[Access]) -> String {
    let header = [
        "USER", "OPEN SR", "AS", "MAIL TO", "MOS", "CONSOLE", "UNTIL", "WHY",
    ];
    let rows: Vec<[String; 8]> = all
        .iter()
        .map(|a| {
            [
                escape_value(&a.user).into_owned(),
                yes_no(a.can_open_sr).to_string(),
                a.acts_as
                    .as_deref()
                    .map(|s| escape_value(s).into_owned())
                    .unwrap_or_else(|| "-".into()),
                a.notified
                    .as_deref()
                    .map(|s| escape_value(s).into_owned())
                    .unwrap_or_else(|| "-".into()),
                (if a.sees_all_csi_srs && a.visible_in_mos {
                    "all"
                } else {
                    yes_no(a.visible_in_mos)
                })
                .to_string(),
                yes_no(a.visible_in_console).to_string(),
                a.until.map_or_else(|| "-".into(), |d| d.start_text()),
                escape_value(&a.reason).into_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut out, &header);
    for row in &rows {
        line(&mut out, &row.each_ref().map(String::as_str));
    }
    out
}

fn csv(all: &[Access]) -> String {
    fn field(text: &str) -> String {
        // RFC 4180: quote fields with commas, quotes or line breaks; and
        // neutralise a leading formula character for spreadsheets.
        let text = if text.starts_with(['=', '+', '-', '@']) {
            format!("'{text}")
        } else {
            text.to_string()
        };
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    }
    let mut out = String::from(
        "user,can_open_sr,acts_as,notified,visible_in_mos,visible_in_console,sees_all_csi_srs,via,until,path,reason,until_at\n",
    );
    for a in all {
        let cells = [
            field(&a.user),
            a.can_open_sr.to_string(),
            field(a.acts_as.as_deref().unwrap_or_default()),
            field(a.notified.as_deref().unwrap_or_default()),
            a.visible_in_mos.to_string(),
            a.visible_in_console.to_string(),
            a.sees_all_csi_srs.to_string(),
            field(a.via.as_deref().unwrap_or_default()),
            a.until.map(|d| d.to_string()).unwrap_or_default(),
            a.path.as_str().to_string(),
            field(&a.reason),
            a.until.map(|d| d.start().to_string()).unwrap_or_default(),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

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

#[derive(Serialize)]
struct SrJson<'a> {
    id: i64,
    tenancy: &'a str,
    title: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    severity: &'a str,
    opened_by: &'a str,
    owner: &'a str,
    contact_email: &'a str,
    channel: &'static str,
    opened_at: &'a str,
    status: &'a str,
    /// The CSI the SR was opened under.
    csi: Option<&'a str>,
    comments: Vec<CommentJson<'a>>,
}

#[derive(Serialize)]
struct CommentJson<'a> {
    author: &'a str,
    channel: &'static str,
    text: &'a str,
    at: &'a str,
}

impl<'a> From<&'a ServiceRequest> for SrJson<'a> {
    fn from(sr: &'a ServiceRequest) -> Self {
        SrJson {
            id: sr.id,
            tenancy: &sr.tenancy,
            title: &sr.title,
            kind: &sr.kind,
            severity: &sr.severity,
            opened_by: &sr.opened_by,
            owner: &sr.owner,
            contact_email: &sr.contact_email,
            channel: sr.channel.as_str(),
            opened_at: &sr.opened_at,
            status: &sr.status,
            csi: sr.csi.as_deref(),
            comments: sr
                .comments
                .iter()
                .map(|c| CommentJson {
                    author: &c.author,
                    channel: c.channel.as_str(),
                    text: &c.text,
                    at: &c.at,
                })
                .collect(),
        }
    }
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
        SrOpenFormat::Json => json_line(&SrJson::from(&sr)),
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
        SrFormat::Json => json_line(&requests.iter().map(SrJson::from).collect::<Vec<_>>()),
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
        SrFormat::Json => json_line(&SrJson::from(&sr)),
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
