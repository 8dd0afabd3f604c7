//! `completions` and `man`: the command line describing itself, generated
//! from the same clap definitions that parse it, so they cannot drift.

use std::path::PathBuf;

use clap::{Args, CommandFactory};

use super::{Cli, CliError, print_stdout};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write a page for every command (`supportctl.1`, `supportctl-plan.1`,
    /// `supportctl-sr-open.1`, …) into DIR instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The command line as the manual describes it: the plain package version,
/// so that the pages in `docs/man/` change only when the interface does.
fn manual_command() -> clap::Command {
    Cli::command()
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_subcommand(true)
}

pub fn completions(args: &CompletionsArgs) -> Result<u8, CliError> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "supportctl", &mut script);
    print_stdout(&String::from_utf8_lossy(&script))?;
    Ok(0)
}

pub fn man(args: &ManArgs) -> Result<u8, CliError> {
    let Some(dir) = &args.out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(manual_command()).render(&mut page)?;
        print_stdout(&String::from_utf8_lossy(&page))?;
        return Ok(0);
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::error(format!("cannot create `{}`: {e}", dir.display())))?;
    clap_mangen::generate_to(manual_command(), dir)
        .map_err(|e| CliError::error(format!("cannot write to `{}`: {e}", dir.display())))?;
    Ok(0)
}
