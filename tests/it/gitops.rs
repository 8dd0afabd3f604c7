//! supportctl in a team's daily work: findings for machines from `plan`, the
//! GitOps example under `examples/gitops/` (its config set, workflows,
//! pre-commit hooks and CODEOWNERS checked for what they claim; the
//! workflow for hosted runners run as written against a PostgreSQL server
//! with TLS), and `plan --base` on real git repositories.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use serde_json::Value;
use supportctl::cli::{Cli, Command as CliCommand};

use crate::binary::{Outcome, Scratch, arg, assert_bash_syntax, crate_root, run, supportctl};

fn gitops() -> PathBuf {
    crate_root().join("examples/gitops")
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => "../data/gitops",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

/// Reads a YAML file of the example as JSON values, for its structure.
fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A `supportctl …` command line as a shell would split it: words, with
/// single and double quotes; it ends at a pipe, `||`, `;` or redirection.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '|' | ';' | '>' | '<' | '&') => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// `${{ … }}` expressions of a workflow replaced by a plain word, as the
/// runner would substitute them before the shell sees the script.
fn substituted(script: &str) -> String {
    let mut out = String::new();
    let mut rest = script;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("an expression ends") + start + 2;
        out.push_str("main");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Asserts that a supportctl command line is one supportctl's parser
/// accepts: the flags the workflow and hooks use exist.
#[track_caller]
fn assert_parses(line: &str) {
    let words = shell_words(line);
    assert_eq!(words[0], "supportctl", "{line}");
    if let Err(e) = Cli::try_parse_from(&words) {
        panic!("`{line}` is not a valid supportctl command line:\n{e}");
    }
}

// ---- Findings for machines from `plan` ----

const BROKEN: &str = "tenancy: { name: t, csi: \"1\", admin: dan }\nusers:\n  dan: { email: dan@x.example }\n  eve: { email: not-an-email }\n";
const WARNED: &str = "tenancy: { name: t, csi: \"1\", admin: dan }\nusers:\n  dan: { email: dan@x.example, support_account: { phone: \"1\", timezone: UTC } }\n";

fn plan_in(scratch: &Scratch, args: &[&str]) -> Outcome {
    // The state spelled from the scratch folder: snapshots show no
    // temporary path.
    let db = scratch.db_arg_from(scratch.root());
    let mut command = supportctl(scratch.root(), ["--db", &db, "plan"]);
    command.args(args);
    let outcome = run(&mut command);
    outcome.assert_no_panic();
    scratch.as_snapshot(outcome, scratch.root())
}

/// `plan --format github`: the plan text on stdout, every finding as a
/// workflow command on stderr, on its file and line.
#[test]
fn plan_format_github_puts_findings_on_their_lines() {
    let scratch = Scratch::new();
    scratch.write("broken.yaml", BROKEN);
    scratch.write("warned.yaml", WARNED);
    let broken = plan_in(&scratch, &["--format", "github", "broken.yaml"]);
    broken.assert_code(1);
    assert_eq!(broken.stdout, "");
    snapshot("plan-github-invalid", &broken.transcript());
    for line in broken.stderr.lines() {
        assert!(
            line.starts_with("::error file=broken.yaml,line=")
                || line.starts_with("::warning file=broken.yaml,line="),
            "{line}"
        );
    }
    let warned = plan_in(&scratch, &["--format", "github", "warned.yaml"]);
    warned.assert_code(0);
    assert!(
        warned.stdout.contains("Plan: 3 to add"),
        "{}",
        warned.stdout
    );
    snapshot("plan-github-warning", &warned.transcript());
}

/// `plan --format json` of an invalid config set prints `validate`'s JSON
/// report on stdout, so a script reads JSON there either way.
#[test]
fn plan_format_json_of_an_invalid_config_is_the_validate_report() {
    let scratch = Scratch::new();
    scratch.write("broken.yaml", BROKEN);
    let plan = plan_in(&scratch, &["--format", "json", "broken.yaml"]);
    plan.assert_code(1);
    let validate = run(&mut supportctl(
        scratch.root(),
        ["validate", "--format", "json", "broken.yaml"],
    ));
    assert_eq!(plan.stdout, validate.stdout);
    snapshot("plan-json-invalid", &plan.transcript());
    let doc: Value = serde_json::from_str(&plan.stdout).expect("JSON");
    assert_eq!(doc["valid"], false);
    let first = &doc["diagnostics"][0];
    for field in [
        "file", "line", "column", "code", "name", "severity", "message", "hint",
    ] {
        assert!(first.get(field).is_some(), "{field} in {first}");
    }
}

// ---- The GitOps example ----

#[test]
fn the_gitops_example_validates_and_plans() {
    let outcome = run(&mut supportctl(&gitops(), ["validate", "."]));
    outcome.assert_code(0);
    assert!(outcome.stdout.contains("tenancy `globex-prod`"));
    let scratch = Scratch::new();
    let path = gitops();
    let plan = plan_in(
        &scratch,
        &["--detailed-exitcode", path.to_str().expect("UTF-8")],
    );
    plan.assert_code(2);
    for file in ["tenancy.yaml", "approvals.yaml", "links.yaml", "users"] {
        assert!(gitops().join(file).exists(), "{file}");
    }
}

/// A workflow of the example, by its file name under `.github/workflows/`,
/// checked for what every one of them holds: valid YAML that runs on pull
/// requests, opened to closed, with a `plan` job and an `apply` job on
/// merge; every step runs or uses something; each `run:` script passes
/// `bash -n`; each supportctl command in it parses with supportctl's own
/// command line. Gives the workflow, and those commands by job.
fn checked_workflow(file: &str) -> (Value, Vec<(String, String)>) {
    let path = gitops().join(".github/workflows").join(file);
    let workflow = yaml(&path);
    let types = &workflow["on"]["pull_request"]["types"];
    for t in ["opened", "synchronize", "closed"] {
        assert!(
            types.as_array().is_some_and(|a| a.iter().any(|v| v == t)),
            "{file}: on.pull_request.types lacks {t}"
        );
    }
    let jobs = workflow["jobs"].as_object().expect("jobs");
    assert!(jobs.contains_key("plan") && jobs.contains_key("apply"));
    assert!(
        jobs["apply"]["if"]
            .as_str()
            .is_some_and(|c| c.contains("merged == true"))
    );
    let mut commands = Vec::new();
    let scratch = Scratch::new();
    for (name, job) in jobs {
        let steps = job["steps"].as_array().expect("steps");
        assert!(!steps.is_empty(), "{file}: {name}");
        for (i, step) in steps.iter().enumerate() {
            assert!(
                step.get("run").is_some() || step.get("uses").is_some(),
                "{file}: {name} step {i} neither runs nor uses"
            );
            let Some(script) = step["run"].as_str() else {
                continue;
            };
            let script = substituted(script);
            let script_file = scratch.write(&format!("{name}-{i}.sh"), &script);
            assert_bash_syntax(&script_file, &format!("{file}: {name} step {i}"));
            for line in script.lines().map(str::trim) {
                if line.starts_with("supportctl ") {
                    assert_parses(line);
                    commands.push((name.clone(), line.to_string()));
                }
            }
        }
    }
    let all: Vec<&str> = commands.iter().map(|(_, line)| line.as_str()).collect();
    let all = all.join("\n");
    for needed in [
        "supportctl validate --format github",
        "supportctl plan --format github --base",
        "supportctl apply",
    ] {
        assert!(all.contains(needed), "{file} lacks `{needed}`:\n{all}");
    }
    (workflow, commands)
}

/// The steps of a job.
fn steps<'a>(workflow: &'a Value, job: &str) -> &'a [Value] {
    workflow["jobs"][job]["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps in job {job}"))
}

/// The first line of a job's `run:` scripts that starts with `start`.
fn script_line(workflow: &Value, job: &str, start: &str) -> String {
    steps(workflow, job)
        .iter()
        .filter_map(|step| step["run"].as_str())
        .flat_map(str::lines)
        .map(str::trim)
        .find(|line| line.starts_with(start))
        .unwrap_or_else(|| panic!("job {job} has no line starting `{start}`"))
        .to_string()
}

/// The word after `flag` in a command line.
fn flag_value(line: &str, flag: &str) -> String {
    let words = shell_words(line);
    let at = words
        .iter()
        .position(|w| w == flag)
        .unwrap_or_else(|| panic!("no {flag} in `{line}`"));
    words
        .get(at + 1)
        .unwrap_or_else(|| panic!("nothing after {flag} in `{line}`"))
        .clone()
}

/// The flow the example's workflows promise: the plan job saves its plan
/// with `-o` and keeps that file as an artifact; the apply job checks
/// nothing out, fetches that artifact from this workflow's run for the pull
/// request's head commit, and applies that file — the plan the reviewers
/// saw, never a config set planned afresh at merge.
fn assert_applies_the_reviewed_plan(file: &str, workflow: &Value) {
    let plan = script_line(workflow, "plan", "supportctl plan ");
    let Ok(Cli {
        command: CliCommand::Plan(plan_args),
        ..
    }) = Cli::try_parse_from(shell_words(&plan))
    else {
        panic!("{file}: `{plan}` is not a plan");
    };
    let saved = plan_args
        .out
        .unwrap_or_else(|| panic!("{file}: `{plan}` saves no plan (-o)"));
    let upload = steps(workflow, "plan")
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .unwrap_or_else(|| panic!("{file}: the plan job keeps no artifact"));
    assert_eq!(
        upload["with"]["path"].as_str().map(PathBuf::from),
        Some(saved.clone()),
        "{file}: the artifact is not the saved plan"
    );
    let artifact = upload["with"]["name"].as_str().expect("an artifact name");

    assert!(
        !steps(workflow, "apply").iter().any(|s| s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/checkout@"))),
        "{file}: the apply job checks out the config set; it applies the saved plan only"
    );
    let list = script_line(workflow, "apply", "run_id=$(gh run list ");
    assert_eq!(flag_value(&list, "--workflow"), file, "{file}: `{list}`");
    assert_eq!(
        flag_value(&list, "--commit"),
        "$HEAD_SHA",
        "{file}: `{list}`"
    );
    assert_eq!(flag_value(&list, "--status"), "success", "{file}: `{list}`");
    assert_eq!(
        workflow["jobs"]["apply"]["env"]["HEAD_SHA"], "${{ github.event.pull_request.head.sha }}",
        "{file}: HEAD_SHA is not the pull request's head commit"
    );
    let download = script_line(workflow, "apply", "gh run download ");
    assert_eq!(flag_value(&download, "--name"), artifact, "{file}");

    let apply = script_line(workflow, "apply", "supportctl apply ");
    let Ok(Cli {
        command: CliCommand::Apply(apply_args),
        ..
    }) = Cli::try_parse_from(shell_words(&apply))
    else {
        panic!("{file}: `{apply}` is not an apply");
    };
    assert_eq!(
        apply_args.path, saved,
        "{file}: `{apply}` does not apply the saved plan"
    );
}

/// The workflow for a self-hosted runner with the state in SQLite is
/// valid, its commands exist, and it applies the reviewed plan.
#[test]
fn the_gitops_workflow_is_well_formed_and_its_commands_exist() {
    let (workflow, _) = checked_workflow("supportctl.yml");
    assert_applies_the_reviewed_plan("supportctl.yml", &workflow);
}

/// The `secrets.NAME` a text names.
fn secrets_in(text: &str) -> BTreeSet<String> {
    text.match_indices("secrets.")
        .map(|(at, _)| {
            text[at + "secrets.".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// The workflow for hosted runners with the state in PostgreSQL: well
/// formed as the other, the same reviewed-plan flow, and safe with its
/// secrets: the pull request's plan reads as the read-only role, only the
/// apply has the owner's URL; a secret reaches only the steps that use it
/// (never the one that builds supportctl from the network), no script
/// expands the database's URL or prints a secret; TLS verifies the server;
/// hosted runners; one apply at a time, waiting for supportctl's lock.
#[test]
fn the_postgres_workflow_plans_as_the_reader_and_only_the_apply_has_the_owner() {
    let file = "supportctl-postgres.yml";
    let (workflow, commands) = checked_workflow(file);
    assert_applies_the_reviewed_plan(file, &workflow);
    assert_eq!(
        workflow["env"]["PGSSLMODE"], "verify-full",
        "TLS must verify the server"
    );
    for (name, job) in workflow["jobs"].as_object().expect("jobs") {
        assert_eq!(
            job["runs-on"], "ubuntu-latest",
            "{name} must run on a hosted runner"
        );
    }
    // Secrets only in the environment of the steps that use them.
    assert!(
        secrets_in(&workflow["env"].to_string()).is_empty(),
        "a secret in the workflow's env reaches every step"
    );
    let mut named = BTreeMap::new();
    for job in ["plan", "apply"] {
        let mut in_job = BTreeSet::new();
        assert!(
            secrets_in(&workflow["jobs"][job]["env"].to_string()).is_empty(),
            "{job}: a secret in the job's env reaches every step"
        );
        for step in steps(&workflow, job) {
            let shown = step["name"]
                .as_str()
                .or(step["uses"].as_str())
                .unwrap_or("a step");
            for field in ["run", "with", "if"] {
                assert!(
                    secrets_in(&step[field].to_string()).is_empty(),
                    "{job}, {shown}: a secret in `{field}`, not in the step's env"
                );
            }
            let script = step["run"].as_str().unwrap_or_default();
            if script.contains("cargo install") {
                assert!(
                    step.get("env").is_none(),
                    "{job}, {shown}: the build gets no env"
                );
            }
            for bad in [
                "set -x",
                "set -o xtrace",
                "printenv",
                "env |",
                "declare -p",
                "export -p",
            ] {
                assert!(
                    !script.contains(bad),
                    "{job}, {shown}: `{bad}` prints secrets"
                );
            }
            for (var, value) in step["env"].as_object().into_iter().flatten() {
                let secrets = secrets_in(&value.to_string());
                if secrets.is_empty() {
                    continue;
                }
                in_job.extend(secrets);
                if var == "SUPPORTCTL_DB" {
                    // supportctl reads it from the environment; nothing else
                    // touches it.
                    assert!(
                        !script.contains("SUPPORTCTL_DB"),
                        "{job}, {shown}: the script expands the database's URL"
                    );
                    let verb = if job == "plan" { "plan" } else { "apply" };
                    assert!(
                        script.contains(&format!("supportctl {verb} ")),
                        "{job}, {shown}: the URL is given to a step that does not {verb}"
                    );
                }
                // Any other secret may be written to a file, never to output.
                for line in script
                    .lines()
                    .filter(|l| l.contains(&format!("${var}")) || l.contains(&format!("${{{var}")))
                {
                    let writes = ["echo", "printf", "cat", "tee"]
                        .iter()
                        .any(|w| line.split_whitespace().any(|word| word == *w));
                    let to_file = line.contains("> \"$RUNNER_TEMP/")
                        && !line.contains("tee")
                        && !line.contains("GITHUB_");
                    assert!(!writes || to_file, "{job}, {shown}: `{line}` prints ${var}");
                }
            }
        }
        named.insert(job, in_job);
    }
    assert!(
        named["plan"].contains("SUPPORTCTL_DB_READONLY")
            && !named["plan"].contains("SUPPORTCTL_DB"),
        "the plan job must read as the read-only role: {named:?}"
    );
    assert!(
        named["apply"].contains("SUPPORTCTL_DB")
            && !named["apply"].contains("SUPPORTCTL_DB_READONLY"),
        "the apply job must write as the owner: {named:?}"
    );
    // The owner's URL is a secret of the environment the apply job names.
    let apply = &workflow["jobs"]["apply"];
    assert_eq!(apply["environment"], "production");
    // One apply at a time, each waiting for supportctl's own lock.
    assert!(
        apply["concurrency"]["group"]
            .as_str()
            .is_some_and(|g| !g.is_empty()),
        "the apply job has no concurrency group"
    );
    assert_eq!(apply["concurrency"]["cancel-in-progress"], false);
    let applies: Vec<&String> = commands
        .iter()
        .filter(|(job, line)| job == "apply" && line.starts_with("supportctl apply "))
        .map(|(_, line)| line)
        .collect();
    assert!(!applies.is_empty());
    for line in applies {
        assert!(
            line.contains("--lock-timeout "),
            "`{line}` waits only 10s for the lock"
        );
    }
}

/// One step of a job as [`run_job`] ran it.
struct StepRun {
    name: String,
    code: i32,
    stdout: String,
    stderr: String,
}

/// A job of a workflow, run as GitHub's runner would run it, as far as the
/// example's workflows need: `${{ secrets.NAME }}` from `secrets`, every
/// other expression as `main`; the environment of the workflow, the job
/// and the step, and what earlier steps wrote to `$GITHUB_ENV`;
/// `$RUNNER_TEMP`, `$GITHUB_STEP_SUMMARY`; each `run:` script by `bash -e`
/// in `workspace`, with the supportctl under test first on `PATH`. Three
/// steps stand in for what needs GitHub: the checkout is `workspace`
/// itself (a git repository made by the test), building supportctl is
/// skipped, and artifacts are folders of `artifacts`, kept by
/// `actions/upload-artifact` and fetched by the script that runs `gh run
/// download --name NAME`. Stops after the first step that fails, as the
/// runner does. `folder` holds the runner's own files; the step summary
/// is `folder/summary.md`.
fn run_job(
    workflow: &Value,
    job: &str,
    secrets: &BTreeMap<&str, String>,
    workspace: &Path,
    artifacts: &Path,
    folder: &Path,
) -> Vec<StepRun> {
    let temp = folder.join("temp");
    let home = folder.join("home");
    for dir in [
        &temp,
        &home,
        &workspace.to_path_buf(),
        &artifacts.to_path_buf(),
    ] {
        std::fs::create_dir_all(dir).expect("a folder");
    }
    let github_env = folder.join("github-env");
    let summary = folder.join("summary.md");
    std::fs::write(&github_env, "").expect("GITHUB_ENV");
    let resolve = |value: &Value| -> String {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match text.trim().strip_prefix("${{") {
            Some(expr) => {
                let expr = expr
                    .trim_end()
                    .strip_suffix("}}")
                    .expect("an expression")
                    .trim();
                match expr.strip_prefix("secrets.") {
                    Some(name) => secrets
                        .get(name)
                        .unwrap_or_else(|| panic!("no secret {name}"))
                        .clone(),
                    None => substituted(&text),
                }
            }
            None => text,
        }
    };
    let bin = Path::new(env!("CARGO_BIN_EXE_supportctl"))
        .parent()
        .expect("the binary's folder");
    let mut runs = Vec::new();
    for (i, step) in steps(workflow, job).iter().enumerate() {
        let name = step["name"]
            .as_str()
            .or(step["uses"].as_str())
            .unwrap_or("a step")
            .to_string();
        let done = |runs: &mut Vec<StepRun>| {
            runs.push(StepRun {
                name: name.clone(),
                code: 0,
                stdout: String::new(),
                stderr: String::new(),
            });
        };
        if let Some(uses) = step["uses"].as_str() {
            if uses.starts_with("actions/checkout@") {
                assert!(
                    workspace.join(".git").exists(),
                    "{job}: no repository to check out"
                );
            } else if uses.starts_with("actions/upload-artifact@") {
                let path = step["with"]["path"].as_str().expect("a path");
                let into = artifacts.join(step["with"]["name"].as_str().expect("a name"));
                std::fs::create_dir_all(&into).expect("an artifact folder");
                std::fs::copy(workspace.join(path), into.join(path)).expect("the artifact is kept");
            } else {
                panic!("{job}: no stand-in for `{uses}`");
            }
            done(&mut runs);
            continue;
        }
        let script = step["run"].as_str().expect("a script");
        if script.contains("cargo install") {
            done(&mut runs);
            continue;
        }
        if let Some(line) = script.lines().find(|l| l.contains("gh run download ")) {
            let from = artifacts.join(flag_value(line.trim(), "--name"));
            for entry in std::fs::read_dir(&from).expect("the artifact was kept") {
                let entry = entry.expect("an entry");
                std::fs::copy(entry.path(), workspace.join(entry.file_name()))
                    .expect("the artifact is fetched");
            }
            done(&mut runs);
            continue;
        }
        let file = folder.join(format!("step-{i}.sh"));
        std::fs::write(&file, substituted(script)).expect("the script");
        let mut command = Command::new("bash");
        command
            .args(["--noprofile", "--norc", "-e"])
            .arg(&file)
            .current_dir(workspace)
            .env_clear();
        for scope in [
            &workflow["env"],
            &workflow["jobs"][job]["env"],
            &step["env"],
        ] {
            for (key, value) in scope.as_object().into_iter().flatten() {
                command.env(key, resolve(value));
            }
        }
        let written = std::fs::read_to_string(&github_env).expect("GITHUB_ENV");
        for line in written.lines() {
            let (key, value) = line.split_once('=').expect("NAME=value in GITHUB_ENV");
            command.env(key, value);
        }
        command
            .env(
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
            )
            .env("HOME", &home)
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("RUNNER_TEMP", &temp)
            .env("GITHUB_ENV", &github_env)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_WORKSPACE", workspace)
            .env("GITHUB_REPOSITORY", "globex/support-config")
            .env("NO_COLOR", "1")
            .env("SUPPORTCTL_TODAY", crate::binary::TODAY);
        let outcome = run(&mut command);
        let code = outcome.code();
        runs.push(StepRun {
            name,
            code,
            stdout: outcome.stdout,
            stderr: outcome.stderr,
        });
        if code != 0 {
            break;
        }
    }
    runs
}

/// The steps of a job run, for a failure message.
fn transcript(runs: &[StepRun]) -> String {
    runs.iter()
        .map(|r| format!("--- {} (exit {})\n{}{}", r.name, r.code, r.stdout, r.stderr))
        .collect()
}

/// The example README's SQL for the roles, its passwords `password`.
fn readme_roles_sql(password: &str) -> String {
    let text = std::fs::read_to_string(gitops().join("README.md")).expect("the README");
    let start = text.find("```sql\n").expect("an SQL block in the README") + "```sql\n".len();
    let end = text[start..].find("```").expect("the SQL block ends") + start;
    text[start..end].replace("'…'", &format!("'{password}'"))
}

/// The PostgreSQL workflow run, its jobs' scripts as written, against a
/// server with TLS whose roles are made by the SQL in the example's README:
/// a pull request's plan, read as the reader over `verify-full` with the CA
/// from its secret, writes nothing and keeps the plan; the apply job, as the
/// owner, applies that plan, and the reader then reads what the owner
/// wrote; of two pull requests planned against one state, the second to
/// merge is refused as stale, nothing written; a reader made after the
/// owner's tables reads them once given the README's grant on the tables
/// already made. No step prints a password or the CA.
#[test]
fn the_postgres_workflow_runs_as_written_against_a_server_with_tls() {
    let Some(tls) = crate::pg_server::tls_server() else {
        return;
    };
    const PASSWORD: &str = "never-shown-7c1e";
    let workflow = yaml(&gitops().join(".github/workflows/supportctl-postgres.yml"));
    let server = tls.server();
    let db = server.create_database_name();
    server
        .client(&db)
        .batch_execute(&readme_roles_sql(PASSWORD))
        .expect("the README's roles are made");
    let url = |role: &str| format!("postgres://{role}:{PASSWORD}@localhost:{}/{db}", tls.port());
    let ca = std::fs::read_to_string(tls.ca_file()).expect("the CA");
    let secrets = BTreeMap::from([
        ("SUPPORTCTL_DB_READONLY", url("supportctl_reader")),
        ("SUPPORTCTL_DB", url("supportctl_owner")),
        ("SUPPORTCTL_DB_CA", ca.clone()),
    ]);
    // The folder, and the database as its superuser sees it.
    let scratch = Scratch::at(server.url(&db));
    let repo = scratch.path("repo");
    crate::binary::copy_dir(&gitops(), &repo);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "the example"]);
    let branch = |name: &str, from: &str, user: &str| {
        git(&repo, &["checkout", "-q", "-b", name, from]);
        scratch.write(
            &format!("repo/users/{user}.yaml"),
            &format!("users:\n  {user}: {{ email: {user}@globex.example }}\n"),
        );
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", user]);
    };
    let mut all = Vec::new();
    // A job of the pull request from `branch`; its artifacts are those of
    // the last plan of that branch. The plan job's checkout is a clone of
    // the branch, whose `origin/main` is the repository's `main`.
    let mut job = |name: &str, branch: &str, job: &str, expect_ok: bool| -> String {
        let workspace = scratch.path(&format!("{name}/workspace"));
        if job == "plan" {
            git(
                scratch.root(),
                &[
                    "clone",
                    "-q",
                    "--branch",
                    branch,
                    arg(&repo),
                    arg(&workspace),
                ],
            );
        }
        let folder = scratch.path(&format!("{name}/runner"));
        let runs = run_job(
            &workflow,
            job,
            &secrets,
            &workspace,
            &scratch.path(&format!("artifacts/{branch}")),
            &folder,
        );
        let ok = runs.len() == steps(&workflow, job).len() && runs.iter().all(|r| r.code == 0);
        assert_eq!(ok, expect_ok, "{name}:\n{}", transcript(&runs));
        let summary = std::fs::read_to_string(folder.join("summary.md")).unwrap_or_default();
        all.push(transcript(&runs));
        all.push(summary.clone());
        all.push(std::fs::read_to_string(folder.join("github-env")).expect("GITHUB_ENV"));
        format!("{summary}{}", transcript(&runs))
    };
    let tables = || -> i64 {
        server
            .client(&db)
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'supportctl'",
                &[],
            )
            .expect("the tables are counted")
            .get(0)
    };

    // A pull request on a new state: the reader plans, and writes nothing.
    branch("max", "main", "max");
    let planned = job("plan-max", "max", "plan", true);
    assert!(
        planned.contains("### supportctl plan")
            && planned.contains("Against `origin/main`")
            && planned.contains("+ user.max")
            && planned.contains("+ tenancy.globex-prod"),
        "{planned}"
    );
    assert_eq!(tables(), 0, "the reader's plan wrote nothing");
    // Merged: the owner applies the plan saved on the pull request.
    let applied = job("apply-max", "max", "apply", true);
    assert!(applied.contains("Apply complete!"), "{applied}");
    assert!(tables() > 0);
    // The reader reads what the owner made: the branch plans to nothing.
    git(&repo, &["branch", "-f", "main", "max"]);
    let again = job("plan-max-again", "max", "plan", true);
    assert!(
        again.contains("No changes. The state matches the configuration."),
        "{again}"
    );

    // Two pull requests planned against the same state; the second to merge
    // holds a stale plan.
    branch("nia", "max", "nia");
    job("plan-nia", "nia", "plan", true);
    branch("omar", "max", "omar");
    job("plan-omar", "omar", "plan", true);
    job("apply-nia", "nia", "apply", true);
    let before = scratch.db_bytes();
    let stale = job("apply-omar", "omar", "apply", false);
    assert!(stale.contains("is stale"), "{stale}");
    assert_eq!(scratch.db_bytes(), before, "the stale plan wrote nothing");

    // A reader made after the owner's tables: the README's `GRANT SELECT
    // ON ALL TABLES` is what lets it read them.
    let grant = readme_roles_sql(PASSWORD)
        .lines()
        .find(|l| l.starts_with("GRANT SELECT ON ALL TABLES"))
        .expect("the README grants SELECT on the tables already made")
        .replace("supportctl_reader", "late_reader");
    let mut admin = server.client(&db);
    admin
        .batch_execute(
            "CREATE ROLE late_reader LOGIN; GRANT USAGE ON SCHEMA supportctl TO late_reader",
        )
        .expect("a late reader");
    let late = Scratch::at(format!(
        "postgres://late_reader@localhost:{}/{db}?sslmode=verify-full&sslrootcert={}",
        tls.port(),
        arg(tls.ca_file())
    ));
    let refused = late.run(&["show"]);
    assert_eq!(refused.code(), 1, "{}", refused.transcript());
    admin.batch_execute(&grant).expect("the grant");
    late.ok(&["show"]);

    let everything = all.join("\n");
    let ca_body = ca.lines().nth(1).expect("a PEM body");
    for secret in [PASSWORD, ca_body] {
        assert!(
            !everything.contains(secret),
            "a secret was printed:\n{everything}"
        );
    }
}

/// The example's pre-commit config and the project's `.pre-commit-hooks.yaml`
/// are well formed, and the hook's command passes on the example.
#[test]
fn the_pre_commit_hooks_are_well_formed_and_pass_on_the_example() {
    let config = yaml(&gitops().join(".pre-commit-config.yaml"));
    let hook = &config["repos"][0]["hooks"][0];
    assert_eq!(hook["id"], "supportctl-validate");
    let entry = hook["entry"].as_str().expect("an entry");
    assert_parses(entry);
    let words = shell_words(entry);
    let outcome = run(&mut supportctl(&gitops(), &words[1..]));
    outcome.assert_code(0);

    let offered = yaml(&crate_root().join(".pre-commit-hooks.yaml"));
    let hooks = offered.as_array().expect("a list of hooks");
    assert!(!hooks.is_empty());
    for hook in hooks {
        for field in ["id", "name", "entry", "language"] {
            assert!(hook[field].is_string(), "{field} in {hook}");
        }
        let mut line = hook["entry"].as_str().expect("entry").to_string();
        for arg in hook["args"].as_array().into_iter().flatten() {
            line.push(' ');
            line.push_str(arg.as_str().expect("a string argument"));
        }
        assert_parses(&line);
    }
}

/// CODEOWNERS gives the approvals, links and tenancy to the CSI
/// administrators, and names only paths that exist.
#[test]
fn codeowners_gives_approvals_and_links_to_the_csi_administrators() {
    let text = std::fs::read_to_string(gitops().join(".github/CODEOWNERS")).expect("CODEOWNERS");
    let mut owners = std::collections::BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let pattern = parts.next().expect("a pattern");
        let who: Vec<&str> = parts.collect();
        assert!(!who.is_empty(), "{line}");
        if pattern != "*" {
            let relative = pattern.trim_start_matches('/');
            assert!(gitops().join(relative).exists(), "{pattern} does not exist");
        }
        owners.insert(pattern.to_string(), who.join(" "));
    }
    for file in ["/approvals.yaml", "/links.yaml", "/tenancy.yaml"] {
        assert!(
            owners.get(file).is_some_and(|o| o.contains("csi-admins")),
            "{file}: {owners:?}"
        );
    }
}

// ---- `plan --base` on real git repositories ----

/// Runs git in `dir` with a fixed identity; a failure fails the test.
fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@x.example"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A config repository: `config/` in the GitOps layout (tenancy, users,
/// approvals), with `admins` approved; `extra` adds users to `users/b.yaml`.
fn write_config(scratch: &Scratch, users_b: &str, approvals: &str) {
    scratch.write(
        "repo/config/tenancy.yaml",
        "tenancy: { name: t, csi: \"1\", admin: dan }\n",
    );
    scratch.write(
        "repo/config/users/a.yaml",
        "users:\n  dan: { email: dan@x.example, support_account: { phone: \"+1 555 0100\", timezone: UTC } }\n  zoe: { email: zoe@x.example, support_account: { phone: \"+1 555 0101\", timezone: UTC } }\nmemberships:\n  - user: zoe\n",
    );
    scratch.write("repo/config/users/b.yaml", users_b);
    scratch.write("repo/config/approvals.yaml", approvals);
    scratch.write("repo/notes.md", "not part of the config set\n");
    scratch.write("repo/config/.hidden.yaml", "not: [valid\n");
}

const ADMIN: &str = "approvals:\n  - user: zoe\n    role: admin\n";

fn base_repo() -> Scratch {
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path("repo")).expect("repo folder");
    git(&scratch.path("repo"), &["init", "-q"]);
    write_config(&scratch, "users:\n  bob: { email: bob@x.example }\n", ADMIN);
    git(&scratch.path("repo"), &["add", "-A"]);
    git(&scratch.path("repo"), &["commit", "-q", "-m", "base"]);
    scratch
}

fn plan_base(scratch: &Scratch, args: &[&str]) -> Outcome {
    // The state spelled from the repository: snapshots show no temporary
    // path.
    let repo = scratch.path("repo");
    let db = scratch.db_arg_from(&repo);
    let mut command = supportctl(&repo, ["--db", &db, "plan"]);
    command.args(args);
    let outcome = run(&mut command);
    outcome.assert_no_panic();
    scratch.as_snapshot(outcome, &repo)
}

/// The pull request's own effect and the plan against a drifted state are
/// shown apart: the state lacks everything (drift), the branch adds one user
/// and changes another's email; `--base main` shows only those two.
#[test]
fn plan_base_shows_the_change_apart_from_drift_in_the_state() {
    let scratch = base_repo();
    let repo = scratch.path("repo");
    git(&repo, &["checkout", "-q", "-b", "change"]);
    write_config(
        &scratch,
        "users:\n  bob: { email: bob@new.example }\n  cy: { email: cy@x.example }\n",
        ADMIN,
    );
    git(&repo, &["commit", "-q", "-am", "change"]);
    let outcome = plan_base(&scratch, &["--base", "main", "config"]);
    outcome.assert_code(0);
    snapshot("plan-base", &outcome.transcript());
    let (delta, full) = outcome
        .stdout
        .split_once("Against the state (what apply would do):")
        .expect("two parts");
    assert!(delta.contains("Against `main`, this change would make these changes to tenancy `t`:"));
    assert!(
        delta.contains("+ user.cy") && delta.contains("~ user.bob"),
        "{delta}"
    );
    assert!(
        !delta.contains("user.dan") && !delta.contains("tenancy.t"),
        "{delta}"
    );
    assert!(
        full.contains("+ tenancy.t") && full.contains("+ user.dan"),
        "{full}"
    );

    // As JSON: the base's changes and summary beside the full plan.
    let outcome = plan_base(&scratch, &["--format", "json", "--base", "main", "config"]);
    outcome.assert_code(0);
    let doc: Value = serde_json::from_str(&outcome.stdout).expect("JSON");
    assert_eq!(doc["base"]["ref"], "main");
    assert_eq!(doc["base"]["valid"], true);
    assert_eq!(
        doc["base"]["summary"],
        serde_json::json!({"add": 1, "change": 1, "destroy": 0})
    );
    let addresses: Vec<&str> = doc["base"]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["address"].as_str().expect("an address"))
        .collect();
    assert_eq!(addresses, ["user.bob", "user.cy"]);
    assert_eq!(doc["plan"]["tenancy"], "t");
    assert!(doc["plan"]["plan_digest"].is_string());

    // Applied, the state has no drift: the full plan against main's state
    // after the change equals the change itself.
    git(&repo, &["checkout", "-q", "main"]);
    let mut apply = scratch.command_in(&repo, &["apply", "--auto-approve", "config"]);
    run(&mut apply).assert_code(0);
    git(&repo, &["checkout", "-q", "change"]);
    let outcome = plan_base(
        &scratch,
        &["--base", "main", "--detailed-exitcode", "config"],
    );
    outcome.assert_code(2);
    let (delta, full) = outcome
        .stdout
        .split_once("Against the state (what apply would do):")
        .expect("two parts");
    let changes = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(changes(delta), changes(full));
}

/// A change that leaves the config set as it was says so, whatever the
/// state; a config set new in the change is all its effect; a file path
/// works like a folder.
#[test]
fn plan_base_with_no_change_a_new_config_set_and_a_single_file() {
    let scratch = base_repo();
    let repo = scratch.path("repo");
    let outcome = plan_base(&scratch, &["--base", "HEAD", "config"]);
    outcome.assert_code(0);
    assert!(
        outcome.stdout.starts_with(
            "No changes against `HEAD`: this change leaves the config set as it was.\n"
        ),
        "{}",
        outcome.stdout
    );
    // A single file, new since the base: everything in it is the change.
    scratch.write(
        "repo/solo.yaml",
        "tenancy: { name: s, csi: \"2\", admin: ann }\nusers:\n  ann: { email: ann@x.example, support_account: { phone: \"1\", timezone: UTC } }\n",
    );
    let outcome = plan_base(&scratch, &["--base", "HEAD", "solo.yaml"]);
    outcome.assert_code(0);
    assert!(
        outcome
            .stdout
            .starts_with("Against `HEAD`, this change would make these changes to tenancy `s`:"),
        "{}",
        outcome.stdout
    );
    git(&repo, &["add", "solo.yaml"]);
    git(&repo, &["commit", "-q", "-m", "solo"]);
    scratch.write(
        "repo/solo.yaml",
        "tenancy: { name: s, csi: \"2\", admin: ann }\nusers:\n  ann: { email: ann@y.example, support_account: { phone: \"1\", timezone: UTC } }\n",
    );
    let outcome = plan_base(&scratch, &["--base", "HEAD", "solo.yaml"]);
    assert!(
        outcome.stdout.contains("~ user.ann") && outcome.stdout.contains("-/+ support_account.ann"),
        "{}",
        outcome.stdout
    );
}

/// An unknown ref, a path outside git, and a base whose config was invalid
/// each say so; the last still prints the plan against the state.
#[test]
fn plan_base_errors_say_what_is_wrong() {
    let scratch = base_repo();
    let repo = scratch.path("repo");
    let outcome = plan_base(&scratch, &["--base", "no-such-branch", "config"]);
    outcome.assert_code(1);
    assert!(
        outcome
            .stderr
            .contains("`--base no-such-branch`: no such commit, branch or tag")
            && outcome
                .stderr
                .contains("hint: in CI, fetch the base branch"),
        "{}",
        outcome.transcript()
    );
    let outside = Scratch::new();
    outside.write("c.yaml", WARNED);
    let mut command = supportctl(outside.root(), ["plan", "--base", "main", "c.yaml"]);
    let outcome = run(&mut command);
    outcome.assert_code(1);
    assert!(
        outcome.stderr.contains("is not in a git work tree"),
        "{}",
        outcome.transcript()
    );

    git(&repo, &["checkout", "-q", "-b", "broken"]);
    write_config(
        &scratch,
        "users:\n  bob: { email: bob@x.example }\n",
        "approvals:\n  - user: nobody\n",
    );
    git(&repo, &["commit", "-q", "-am", "broken base"]);
    git(&repo, &["checkout", "-q", "-b", "fixed"]);
    write_config(&scratch, "users:\n  bob: { email: bob@x.example }\n", ADMIN);
    let outcome = plan_base(&scratch, &["--base", "broken", "config"]);
    outcome.assert_code(0);
    assert!(
        outcome
            .stderr
            .contains("warning: the config set at `broken` is invalid"),
        "{}",
        outcome.transcript()
    );
    assert!(
        outcome
            .stdout
            .starts_with("supportctl will make these changes"),
        "{}",
        outcome.stdout
    );
}

/// A config set whose files and folders are symbolic links, as a shared
/// layout keeps them: `config/tenancy.yaml` links to a file, `config/users`
/// to a folder, both under `shared/`.
fn linked_repo() -> Scratch {
    use std::os::unix::fs::symlink;
    let scratch = Scratch::new();
    let repo = scratch.path("repo");
    std::fs::create_dir_all(repo.join("config")).expect("config folder");
    git(&repo, &["init", "-q"]);
    scratch.write(
        "repo/shared/tenancy.yaml",
        "tenancy: { name: t, csi: \"1\", admin: dan }\n",
    );
    scratch.write(
        "repo/shared/users/a.yaml",
        "users:\n  dan: { email: dan@x.example, support_account: { phone: \"+1 555 0100\", timezone: UTC } }\n  zoe: { email: zoe@x.example, support_account: { phone: \"+1 555 0101\", timezone: UTC } }\nmemberships:\n  - user: zoe\n",
    );
    scratch.write(
        "repo/shared/users/b.yaml",
        "users:\n  bob: { email: bob@x.example }\n",
    );
    scratch.write("repo/config/approvals.yaml", ADMIN);
    symlink("../shared/tenancy.yaml", repo.join("config/tenancy.yaml")).expect("a file link");
    symlink("../shared/users", repo.join("config/users")).expect("a folder link");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    scratch
}

/// `--base` reads a symbolic link at the ref as the file or folder it
/// points to, as a checkout of that ref would show the loader — not as the
/// text of its target: the change is then exactly what the branch changed.
#[test]
fn plan_base_follows_symbolic_links_to_files_and_folders() {
    let scratch = linked_repo();
    let repo = scratch.path("repo");
    let outcome = plan_base(&scratch, &["--base", "HEAD", "config"]);
    outcome.assert_code(0);
    assert_eq!(outcome.stderr, "", "{}", outcome.transcript());
    assert!(
        outcome.stdout.starts_with(
            "No changes against `HEAD`: this change leaves the config set as it was.\n"
        ),
        "{}",
        outcome.transcript()
    );
    // A change made through the folder link, and one in the linked file.
    git(&repo, &["checkout", "-q", "-b", "change"]);
    scratch.write(
        "repo/shared/users/b.yaml",
        "users:\n  bob: { email: bob@new.example }\n  cy: { email: cy@x.example }\n",
    );
    scratch.write(
        "repo/shared/tenancy.yaml",
        "tenancy: { name: t, csi: \"1\", admin: dan, home_region: ap-seoul-1 }\n",
    );
    git(&repo, &["commit", "-q", "-am", "change"]);
    let outcome = plan_base(&scratch, &["--format", "json", "--base", "main", "config"]);
    outcome.assert_code(0);
    let doc: Value = serde_json::from_str(&outcome.stdout).expect("JSON");
    assert_eq!(doc["base"]["valid"], true, "{}", outcome.transcript());
    let addresses: Vec<&str> = doc["base"]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["address"].as_str().expect("an address"))
        .collect();
    assert_eq!(addresses, ["tenancy.t", "user.bob", "user.cy"]);
}

/// A link that cannot be read at the ref — out of the repository, to
/// nothing, or in a loop — makes the base unreadable, as the loader's E002
/// makes a config set invalid: a warning says which and why, and the plan
/// against the state is still shown.
#[test]
fn plan_base_names_links_it_cannot_follow() {
    use std::os::unix::fs::symlink;
    let outside = Scratch::new();
    let elsewhere = outside.write("elsewhere.yaml", "users: {}\n");
    for (name, target, says) in [
        (
            "config/out.yaml",
            elsewhere.to_str().expect("UTF-8"),
            "is a symbolic link to `",
        ),
        (
            "config/gone.yaml",
            "nothing-here.yaml",
            "is a symbolic link to nothing",
        ),
        ("config/again", "..", "is a symlink loop"),
    ] {
        let scratch = linked_repo();
        let repo = scratch.path("repo");
        symlink(target, repo.join(name)).expect("a link");
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "a link"]);
        // The work tree no longer has it: the config set is valid now, and
        // only the ref's cannot be read.
        std::fs::remove_file(repo.join(name)).expect("the link goes");
        let outcome = plan_base(&scratch, &["--base", "HEAD", "config"]);
        outcome.assert_code(0);
        let warning = outcome
            .stderr
            .lines()
            .find(|l| l.starts_with("warning: the config set at `HEAD` cannot be read whole"))
            .unwrap_or_else(|| panic!("{name}: {}", outcome.transcript()));
        // A loop is named where the walk comes back round (the loader
        // too reports it one turn in).
        assert!(
            warning.contains(&format!("`{name}` {says}"))
                || warning.contains(&format!("`{name}/config/again` {says}")),
            "{name}: {warning}"
        );
        assert!(
            outcome
                .stdout
                .starts_with("supportctl will make these changes"),
            "{}",
            outcome.transcript()
        );
    }
}

/// `history --tenancy t --format json`, of the repository's database.
fn history_of(scratch: &Scratch, tenancy: &str) -> Vec<Value> {
    let mut command = scratch.command_in(
        &scratch.path("repo"),
        &["history", "--tenancy", tenancy, "--format", "json"],
    );
    let outcome = run(&mut command);
    outcome.assert_code(0);
    serde_json::from_str::<Value>(&outcome.stdout)
        .expect("JSON")
        .as_array()
        .expect("a list")
        .clone()
}

fn apply_in_repo(scratch: &Scratch, path: &str) -> Outcome {
    let mut command = scratch.command_in(&scratch.path("repo"), &["apply", "--auto-approve", path]);
    let outcome = run(&mut command);
    outcome.assert_code(0);
    outcome
}

fn changes_of(entry: &Value) -> Vec<String> {
    let mut changes: Vec<String> = entry["git_changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no git_changes: {entry}"))
        .iter()
        .map(|c| c.as_str().expect("text").to_string())
        .collect();
    changes.sort();
    changes
}

/// The journal says whether what was applied is the commit it names: the
/// config set's files that differed from it — changed, staged, untracked or
/// ignored (all read by the loader) — and nothing of the files beside the
/// config set that the loader does not read.
#[test]
fn the_journal_records_uncommitted_changes_beside_the_commit() {
    let scratch = base_repo();
    let repo = scratch.path("repo");
    let head = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    apply_in_repo(&scratch, "config");
    let clean = &history_of(&scratch, "t")[0];
    assert_eq!(clean["git_commit"], head.as_str());
    assert_eq!(clean["git_dirty"], false, "{clean}");
    assert_eq!(clean["git_changes"], serde_json::json!([]));

    // Edits in the set: a changed file, a new one, an ignored one; and
    // edits beside it that the loader never reads.
    scratch.write(
        "repo/config/users/b.yaml",
        "users:\n  bob: { email: bob@x.example, name: Bob }\n",
    );
    scratch.write(
        "repo/config/users/c.yaml",
        "users:\n  cy: { email: cy@x.example }\n",
    );
    scratch.write("repo/.gitignore", "local.yaml\n");
    scratch.write(
        "repo/config/local.yaml",
        "users:\n  lo: { email: lo@x.example }\n",
    );
    scratch.write("repo/notes.md", "changed, but not part of the config set\n");
    scratch.write("repo/config/.hidden.yaml", "still: [not read\n");
    scratch.write("repo/config/readme.txt", "not a config file\n");
    apply_in_repo(&scratch, "config");
    let dirty = &history_of(&scratch, "t")[1];
    assert_eq!(dirty["git_commit"], head.as_str());
    assert_eq!(dirty["git_dirty"], true, "{dirty}");
    assert_eq!(
        changes_of(dirty),
        [
            " M config/users/b.yaml",
            "!! config/local.yaml",
            "?? config/users/c.yaml"
        ]
    );
    let mut command = scratch.command_in(&repo, &["history", "--tenancy", "t"]);
    let text = run(&mut command).stdout;
    let second = text.lines().nth(1).expect("two entries");
    assert!(
        second.contains(&format!("commit {head}  with uncommitted changes: "))
            && second.contains("`M config/users/b.yaml`")
            && second.contains("`?? config/users/c.yaml`")
            && second.contains("`!! config/local.yaml`"),
        "{text}"
    );
    assert!(
        !text
            .lines()
            .next()
            .unwrap_or_default()
            .contains("uncommitted"),
        "{text}"
    );

    // A staged change, and a file deleted from the work tree, in a config
    // set given as one file and as a folder.
    git(&repo, &["add", "config/users/b.yaml"]);
    scratch.write(
        "repo/config/users/b.yaml",
        "users:\n  bob: { email: bob@x.example, name: Bobby }\n",
    );
    std::fs::remove_file(repo.join("config/local.yaml")).expect("removed");
    std::fs::remove_file(repo.join("config/users/c.yaml")).expect("removed");
    apply_in_repo(&scratch, "config");
    assert_eq!(
        changes_of(&history_of(&scratch, "t")[2]),
        ["MM config/users/b.yaml"]
    );
    git(&repo, &["commit", "-q", "-am", "bob's name"]);
    std::fs::remove_file(repo.join("config/approvals.yaml")).expect("removed");
    scratch.write("repo/single.yaml", "tenancy: { name: s, csi: \"2\", admin: ann }\nusers:\n  ann: { email: ann@x.example, support_account: { phone: \"1\", timezone: UTC } }\n");
    apply_in_repo(&scratch, "single.yaml");
    let single = &history_of(&scratch, "s")[0];
    assert_eq!(single["tenancy"], "s");
    assert_eq!(
        changes_of(single),
        ["?? single.yaml"],
        "only the file given"
    );
    let mut command = scratch.command_in(
        &repo,
        &["apply", "--auto-approve", "--allow-mass-delete", "config"],
    );
    run(&mut command).assert_code(0);
    assert_eq!(
        changes_of(&history_of(&scratch, "t")[3]),
        [" D config/approvals.yaml"]
    );

    // A saved plan's config set is not known: the entry says so (null).
    git(&repo, &["checkout", "-q", "--", "config/approvals.yaml"]);
    let mut command = scratch.command_in(&repo, &["plan", "-o", "../saved.json", "config"]);
    run(&mut command).assert_code(0);
    let mut command = scratch.command_in(&repo, &["apply", "--auto-approve", "../saved.json"]);
    run(&mut command).assert_code(0);
    let saved = &history_of(&scratch, "t")[4];
    assert_eq!(
        (&saved["git_dirty"], &saved["git_changes"]),
        (&Value::Null, &Value::Null)
    );
    // Reading the status wrote nothing into the repository.
    assert!(!repo.join(".git/index.lock").exists());
}
