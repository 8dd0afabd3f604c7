//! The `supportctl` binary: parse the command line, run it, map the outcome
//! to an exit code (SPEC §5). Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use supportctl::{cli, diag};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            if !e.message.is_empty() {
                // Escape each line: a message may carry a `hint:` line of its own.
                let lines: Vec<_> = e.message.lines().map(diag::escape_control).collect();
                cli::print_stderr(&format!("error: {}\n", lines.join("\n")));
            }
            ExitCode::from(e.exit_code())
        }
    }
}
