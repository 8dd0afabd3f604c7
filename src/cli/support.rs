//! `access`: how each user reaches Oracle Support, through whom, and why.

use std::fmt::Write as _;

use clap::{Args, ValueEnum};

use super::inspect::{TenancyArg, choose_tenancy, load_model, open_to_read};
use super::{CliError, print_stdout};
use crate::access::{self, Access, AccessError};
use crate::diag::{did_you_mean, escape_value};
use crate::engine::clock::today;
use crate::model::Model;
use crate::report;
use crate::state::Location;
use crate::state::Store;

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
        (AccessFormat::Json, false) => report::access_json(&resolved[0]),
        (AccessFormat::Json, true) => report::access_json_all(&resolved),
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
pub(super) fn unknown_user(
    store: &Store,
    tenancy: &str,
    model: Option<&Model>,
    user: &str,
) -> CliError {
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
