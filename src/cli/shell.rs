//! `completions` and `man`: the command line describing itself, generated
//! from the same clap definitions that parse it, so they cannot drift.

use std::path::{Path, PathBuf};

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

/// A manual page: public documentation, recognised as roff with a title.
const MAN_PAGE: crate::files::Kind = crate::files::Kind {
    name: "a manual page",
    recognise: |head| {
        (head.starts_with(b".") || head.starts_with(b"'")) && head.windows(4).any(|w| w == b".TH ")
    },
    mode: 0o644,
    durable: true,
};

pub fn man(args: &ManArgs, db: &Path) -> Result<u8, CliError> {
    let Some(dir) = &args.out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(manual_command()).render(&mut page)?;
        print_stdout(&String::from_utf8_lossy(&page))?;
        return Ok(0);
    };
    let protected = super::protected(db);
    crate::files::check_not_protected(dir, &protected)
        .map_err(|e| super::output_error("the manual pages", dir, e))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::error(format!("cannot create `{}`: {e}", dir.display())))?;
    // As `clap_mangen::generate_to` lays them out; every page is checked
    // before any is written, so a refusal leaves the folder as it was.
    let mut command = manual_command();
    command.build();
    let mut pending = vec![command];
    let mut pages = Vec::new();
    while let Some(command) = pending.pop() {
        pending.extend(
            command
                .get_subcommands()
                .filter(|s| !s.is_hide_set())
                .cloned(),
        );
        let man = clap_mangen::Man::new(command);
        let mut page = Vec::new();
        man.render(&mut page)?;
        pages.push((dir.join(man.get_filename()), page));
    }
    for (path, _) in &pages {
        crate::files::check_output(path, &MAN_PAGE, &protected)
            .map_err(|e| super::output_error("a manual page", path, e))?;
    }
    for (path, page) in &pages {
        crate::files::write_output(path, &MAN_PAGE, page, &protected)
            .map_err(|e| super::output_error("a manual page", path, e))?;
    }
    Ok(0)
}
