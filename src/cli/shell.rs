//! `completions` and `man`: the command line describing itself, generated
//! from the same clap definitions that parse it, so they cannot drift.

use crate::state::Location;
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

pub fn man(args: &ManArgs, db: &Location) -> Result<u8, CliError> {
    let mut command = manual_command();
    command.build();
    let Some(dir) = &args.out else {
        print_stdout(&String::from_utf8_lossy(&page(&command, "")?))?;
        return Ok(0);
    };
    let protected = crate::engine::protected(db);
    crate::files::check_not_protected(dir, &protected)
        .map_err(|e| super::output_error("the manual pages", dir, e))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::error(format!("cannot create `{}`: {e}", dir.display())))?;
    // Every page is checked before any is written, so a refusal leaves the
    // folder as it was.
    let mut pages = Vec::new();
    collect_pages(&command, "", dir, &mut pages)?;
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

/// The page of `command` (at `path`, e.g. `sr open`) and of each of its
/// visible subcommands, deepest first, with where each goes in `dir`.
fn collect_pages(
    command: &clap::Command,
    path: &str,
    dir: &Path,
    pages: &mut Vec<(PathBuf, Vec<u8>)>,
) -> std::io::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub_path = format!("{path} {}", sub.get_name());
        collect_pages(sub, sub_path.trim_start(), dir, pages)?;
    }
    let name = clap_mangen::Man::new(command.clone()).get_filename();
    pages.push((dir.join(name), page(command, path)?));
    Ok(())
}

/// A manual page: clap's sections, with an EXAMPLES section before VERSION.
fn page(command: &clap::Command, path: &str) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    let examples = EXAMPLES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, e)| *e)
        .unwrap_or_default();
    if examples.is_empty() {
        return Ok(page);
    }
    let mut section = String::from(".SH EXAMPLES\n");
    for (what, how) in examples {
        section.push_str(&format!(
            ".PP\n{}\n.PP\n.RS 4\n.nf\n{}\n.fi\n.RE\n",
            roff_text(what),
            roff_text(how)
        ));
    }
    let mut text = String::from_utf8_lossy(&page).into_owned();
    let at = text.find("\n.SH VERSION").map_or(text.len(), |i| i + 1);
    text.insert_str(at, &section);
    Ok(text.into_bytes())
}

/// `text` as roff: backslashes and hyphens escaped, no line starting as a
/// request.
fn roff_text(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = line.replace('\\', "\\e").replace('-', "\\-");
            if line.starts_with(['.', '\'']) {
                format!("\\&{line}")
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Examples for each command's page, by its path under `supportctl`: what
/// it shows, then the command.
const EXAMPLES: &[(&str, &[(&str, &str)])] = &[
    (
        "",
        &[
            (
                "Check a config set, see what applying it would change, and apply it:",
                "supportctl validate examples/acme-prod\nsupportctl plan examples/acme-prod\nsupportctl apply examples/acme-prod",
            ),
            (
                "Who can open support requests, as whom, and why:",
                "supportctl access --all",
            ),
        ],
    ),
    (
        "validate",
        &[
            (
                "Every finding of a config set, with its file and line:",
                "supportctl validate my-tenancy/",
            ),
            (
                "The findings as JSON, or as GitHub annotations in CI:",
                "supportctl validate --format json my-tenancy/\nsupportctl validate --format github my-tenancy/",
            ),
        ],
    ),
    (
        "plan",
        &[
            (
                "What apply would change, exiting 2 when something would:",
                "supportctl plan --detailed-exitcode my-tenancy/",
            ),
            (
                "Save the plan, review it, then apply exactly it:",
                "supportctl plan -o change.plan my-tenancy/\nsupportctl apply change.plan",
            ),
            (
                "In a pull request: what the change itself does, against the base branch:",
                "supportctl plan --base origin/main my-tenancy/",
            ),
        ],
    ),
    (
        "apply",
        &[
            (
                "Apply a config set after confirming at the terminal:",
                "supportctl apply my-tenancy/",
            ),
            (
                "From a script or CI, with no one to ask:",
                "supportctl apply --auto-approve my-tenancy/",
            ),
            (
                "Apply a plan saved by plan -o, exactly as it was reviewed:",
                "supportctl apply change.plan",
            ),
        ],
    ),
    (
        "show",
        &[
            (
                "The state of the tenancy, phones hidden:",
                "supportctl show --redact",
            ),
            (
                "As JSON, of one tenancy of several:",
                "supportctl show --tenancy acme-prod --format json",
            ),
        ],
    ),
    (
        "export",
        &[(
            "The state as a config set in the GitOps layout, read back by plan with no changes:",
            "supportctl export --out restored/\nsupportctl plan restored/",
        )],
    ),
    (
        "history",
        &[(
            "Every apply, newest last, and the same as JSON:",
            "supportctl history\nsupportctl history --format json",
        )],
    ),
    (
        "access",
        &[
            (
                "How bob reaches support, and through whom:",
                "supportctl access bob",
            ),
            (
                "Everyone, as a table for an audit, or as CSV:",
                "supportctl access --all\nsupportctl access --all --format csv",
            ),
        ],
    ),
    (
        "sr",
        &[(
            "Open an SR as a linked user, then list what the administrator sees:",
            "supportctl sr open --user bob --title \"Disk full on db-1\"\nsupportctl sr list --user dankim",
        )],
    ),
    (
        "sr open",
        &[(
            "Open an SR of high severity as alice:",
            "supportctl sr open --user alice --title \"Login fails\" --severity high",
        )],
    ),
    (
        "sr list",
        &[(
            "The SRs bob can read, and where:",
            "supportctl sr list --user bob",
        )],
    ),
    (
        "sr show",
        &[(
            "SR 1 with its comments, as dankim sees it:",
            "supportctl sr show 1 --user dankim",
        )],
    ),
    (
        "sr comment",
        &[(
            "Comment on SR 1 as bob (in the Console, since bob is linked):",
            "supportctl sr comment 1 --user bob --text \"Logs attached\"",
        )],
    ),
    (
        "state",
        &[(
            "Move the state from a SQLite file into a shared PostgreSQL database:",
            "supportctl --db supportctl.db state copy --to postgres://ops@db.example.com/supportctl",
        )],
    ),
    (
        "state copy",
        &[
            (
                "Copy a SQLite state into PostgreSQL, then use it there:",
                "supportctl --db supportctl.db state copy --to postgres://ops@db.example.com/supportctl\nsupportctl --db postgres://ops@db.example.com/supportctl plan my-tenancy/",
            ),
            (
                "Copy it into its own schema of a database other states share:",
                "supportctl --db supportctl.db state copy --to postgres://ops@db.example.com/shared --to-schema acme",
            ),
        ],
    ),
    (
        "watch",
        &[
            (
                "Reconcile on every save, and say so in a status file:",
                "supportctl watch --status-file watch.json my-tenancy/",
            ),
            (
                "Whether that watcher is healthy (exit 0) or not:",
                "supportctl status --status-file watch.json",
            ),
            (
                "One of several replicas on a shared state (the leader applies, the others stand by), with metrics and health probes:",
                "supportctl --db postgres://ops@db.example.com/supportctl watch --listen 0.0.0.0:9464 /srv/my-tenancy/",
            ),
        ],
    ),
    (
        "status",
        &[
            (
                "A watcher's health, for a probe or a script:",
                "supportctl status --status-file watch.json",
            ),
            (
                "The tenancy's leader and every replica, from a shared state:",
                "supportctl --db postgres://ops@db.example.com/supportctl status --format json",
            ),
        ],
    ),
    (
        "serve",
        &[
            (
                "The web view on this machine, at http://127.0.0.1:8080/:",
                "supportctl serve",
            ),
            (
                "For others on the network, behind a token (a browser logs in with it once):",
                "supportctl --db postgres://auditor@db.example.com/supportctl serve --listen 0.0.0.0:8080 --auth-token-file /etc/supportctl/web-token",
            ),
            (
                "Grants ending within 30 days flagged on the overview, and phones shown:",
                "supportctl serve --expiring-within 30 --show-phones",
            ),
        ],
    ),
    (
        "schema",
        &[(
            "The JSON Schema for editors, beside the config set:",
            "supportctl schema > my-tenancy/supportctl.schema.json",
        )],
    ),
    (
        "completions",
        &[(
            "Completions for bash:",
            "supportctl completions bash > ~/.local/share/bash-completion/completions/supportctl",
        )],
    ),
    (
        "init",
        &[(
            "Start a config set of your own, with the schema beside it for editors:",
            "supportctl init my-tenancy/\nsupportctl validate my-tenancy/",
        )],
    ),
    (
        "retire",
        &[(
            "Retire a tenancy dropped from the config sets, after reviewing what goes:",
            "supportctl retire --tenancy acme-old",
        )],
    ),
    (
        "man",
        &[(
            "Every page, into a folder man can read:",
            "supportctl man --out ~/.local/share/man/man1",
        )],
    ),
];

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    /// Words of a shell line, with "quoted text" kept whole.
    fn words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        for (i, part) in line.split('"').enumerate() {
            if i % 2 == 1 {
                words.push(part.to_string());
            } else {
                words.extend(part.split_whitespace().map(str::to_string));
            }
        }
        words
    }

    #[test]
    fn every_example_is_a_command_line_supportctl_accepts() {
        let mut command = manual_command();
        command.build();
        let mut paths = vec![String::new()];
        for sub in command.get_subcommands() {
            paths.push(sub.get_name().to_string());
            for subsub in sub.get_subcommands() {
                paths.push(format!("{} {}", sub.get_name(), subsub.get_name()));
            }
        }
        for (path, examples) in EXAMPLES {
            assert!(paths.iter().any(|p| p == path), "no command `{path}`");
            assert!(!examples.is_empty(), "`{path}` has an empty list");
            for (_, how) in *examples {
                for line in how.lines() {
                    let line = line.split(" > ").next().unwrap();
                    let args = words(line);
                    assert_eq!(args[0], "supportctl", "{line}");
                    if let Err(e) = Cli::try_parse_from(&args) {
                        panic!("`{line}` does not parse: {e}");
                    }
                }
            }
        }
        // Every command has examples on its page.
        for path in paths.iter().filter(|p| !p.starts_with("help")) {
            assert!(
                EXAMPLES.iter().any(|(p, _)| p == path),
                "the manual page of `supportctl {path}` has no examples"
            );
        }
    }

    #[test]
    fn examples_land_in_their_page_before_the_version() {
        let mut command = manual_command();
        command.build();
        let page = String::from_utf8(page(&command, "").unwrap()).unwrap();
        let examples = page.find(".SH EXAMPLES").expect("an EXAMPLES section");
        assert!(examples < page.find(".SH VERSION").unwrap());
        assert!(page.contains("supportctl access \\-\\-all"), "{page}");
    }
}
