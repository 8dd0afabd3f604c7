//! `retire`: the guarded end of a tenancy that no config set manages any
//! more (renamed, or dropped from the config repository). A reconcile only
//! ever touches the tenancy its config set names, so a tenancy left behind
//! keeps every grant it had: its users can still open SRs. `retire` removes
//! its rows — users, support accounts, memberships, approvals, links and the
//! tenancy itself — after asking, keeps its SRs and journal readable, and
//! journals the retirement. `plan` and `apply` warn about such tenancies.

use std::io::{BufRead, IsTerminal};

use clap::Args;

use super::inspect::{load_model, open_existing};
use super::{CliError, Output, Warning, print_stderr, print_stdout};
use crate::diag::escape_control;
use crate::plan;
use crate::render;
use crate::state::Location;
use crate::state::Store;

#[derive(Debug, Args)]
pub struct RetireArgs {
    /// The tenancy to retire (always named: never "the only one").
    #[arg(long, value_name = "NAME")]
    pub tenancy: String,
    /// Retire without asking.
    #[arg(long)]
    pub auto_approve: bool,
}

pub fn retire(args: &RetireArgs, db: &Location, output: &Output) -> Result<u8, CliError> {
    let mut store = open_existing(db)?;
    let name = args.tenancy.as_str();
    if !store.tenancies()?.iter().any(|t| t == name) {
        if store.retired_tenancies()?.iter().any(|t| t == name) {
            return Err(CliError::error(format!(
                "tenancy `{}` is already retired; nothing was changed",
                escape_control(name)
            )));
        }
        // The usual message: which tenancies there are.
        super::inspect::choose_tenancy(
            &store,
            &super::inspect::TenancyArg {
                tenancy: Some(name.to_string()),
            },
        )?;
    }
    let (actual, serial) = load_model(&store, name)?;
    let plan = plan::retirement(&actual);
    let srs = store.service_requests(name)?.len();
    let entries = store.history(Some(name))?.len();
    let name_shown = escape_control(name);
    let entries = if entries == 1 {
        "1 journal entry".to_string()
    } else {
        format!("{entries} journal entries")
    };
    print_stdout(&format!(
        "{}\nIts {} and {entries} are kept: `supportctl sr list --tenancy {name_shown}` and `supportctl history --tenancy {name_shown}` read them.\n",
        render::plan_text(&plan, output.stdout_plan),
        super::plural(srs, "SR"),
    ))?;
    if !args.auto_approve {
        consent(name)?;
    }
    let summary = plan.summary();
    let new_serial = crate::engine::retire::retire(&mut store, name, &plan, serial)?;
    tracing::info!(tenancy = %name_shown, serial = new_serial, destroy = summary.destroy, "retired");
    print_stdout(&format!(
        "Retired tenancy `{name_shown}`: {} resources removed; nobody can open SRs for it.\n",
        summary.destroy
    ))?;
    Ok(0)
}

/// Asks on the terminal; only `yes` goes ahead. Without a terminal there is
/// nobody to ask, so the answer is no.
fn consent(name: &str) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::error(
            "refusing to retire: stdin is not a terminal, so nobody can confirm",
        )
        .with_hint("review what is removed and run again with `--auto-approve`"));
    }
    print_stderr(&format!(
        "\nDo you want to retire tenancy `{}`? Nobody will be able to open SRs for it.\n  Only 'yes' will be accepted: ",
        escape_control(name)
    ));
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(CliError::error("retire cancelled: nothing was changed"))
    }
}

/// The warning `plan` and `apply` give when the state holds tenancies other
/// than `planned`: a tenancy renamed or dropped from the config sets is not
/// removed by any reconcile, and its grants stay in force until it is
/// retired. `None` when there are none.
pub fn other_tenancies(store: &Store, planned: &str, planned_is_new: bool) -> Option<Warning> {
    let others: Vec<String> = store
        .tenancies()
        .ok()?
        .into_iter()
        .filter(|t| t != planned)
        .collect();
    let first = others.first()?;
    let listed = others
        .iter()
        .map(|t| format!("`{}`", escape_control(t)))
        .collect::<Vec<_>>()
        .join(", ");
    let (holds, it) = if others.len() == 1 {
        (format!("tenancy {listed}"), "it")
    } else {
        (format!("tenancies {listed}"), "one")
    };
    let renamed = if planned_is_new {
        format!(
            " This plan creates tenancy `{}` beside it: a tenancy renamed in its config set is created anew, and the old name keeps its users and grants until it is retired.",
            escape_control(planned)
        )
    } else {
        String::new()
    };
    Some(Warning {
        message: format!(
            "the state also holds {holds}, which this config set does not manage; if no config set manages {it} any more (renamed or dropped), its users can still open SRs.{renamed}"
        ),
        hints: vec![format!(
            "retire {it} with `supportctl retire --tenancy {}` (its SRs and history are kept)",
            escape_control(first)
        )],
    })
}
