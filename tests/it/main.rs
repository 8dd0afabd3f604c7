//! The integration tests of supportctl: one crate that runs the built binary.
//!
//! Every test here runs `supportctl` as a user would — a real process, with a
//! fixed clock (`SUPPORTCTL_TODAY`), no colour (`NO_COLOR`) and a working
//! directory chosen so that the paths it prints are short and stable — and
//! judges only what it prints and how it exits: the output is the contract.
//! The one exception is in `reconcile`, which drives the library's `Store`
//! directly to inject a failure at every position of a plan.
//!
//! - `binary`: the harness every module runs the binary through: the fixed
//!   environment and the one deadline, `Scratch` (a test's folder, the state
//!   given to every command from one place, `Scratch::db_arg`, and the day),
//!   and `Dice`, proptest's randomness for the tests that are not properties.
//! - `fixtures`: the data-driven cases under `tests/data/`, each invalid case
//!   beside the snapshot of the diagnostics it must produce.
//! - `cli`: the command-line contract of docs/reference.md's *Commands* and *JSON formats* (formats, exit codes, help,
//!   colour, closed pipes).
//! - `gitops`: `plan --format github|json` findings, the GitOps example
//!   (config set, workflows, pre-commit hooks, CODEOWNERS; the PostgreSQL
//!   workflow's jobs run against a real server) and `plan --base` on real
//!   git repositories.
//! - `bad_input`: inputs that must end in a clear error, never a panic, a hang
//!   or an out-of-memory.
//! - `shell`: `--version` with its commit, `completions`, and the manual
//!   pages in `docs/man/`.
//! - `schema`: `supportctl schema` against the checked-in schema and the
//!   config files it describes.
//! - `props`: random mutations of a valid config never crash the binary.
//! - `config_props`: generated config sets, valid and with injected faults,
//!   checked in process: each fault reported at its place; the fuzz harness's
//!   invariants, and the fuzzer's regressions replayed.
//! - `reconcile`: `plan`, `apply`, `show`, `export`, `history` — the plan
//!   catalogue under `tests/data/plans/` (a folder is a case, its snapshots
//!   its expectation), exit codes and consent, the
//!   reconciler's laws on random configs, all-or-nothing applies.
//! - `support`: `access` and `sr open|list|show|comment` — the access matrix
//!   of docs/DOMAIN.md §4 user by user, refusals that write nothing, no SR lost to a
//!   reconcile, and the linked-user rule over random histories.
//! - `retire`: the warning of `plan` about tenancies its config set does not
//!   manage, and `retire` (asked on a real terminal) ending one while its SRs
//!   and journal stay readable.
//! - `guard`: the mass-delete guard never holds back a revocation, the state a
//!   plan leads to passes every rule (resealed plans), saved plans that do not
//!   fit, the state of any day read back from an export.
//! - `newcomer`: the README's Quickstart run as written, `init`, `history`
//!   columns.
//! - `docs`: the documents' relative links lead to files and headings that
//!   exist; the README stays short and opens with its two commands.
//! - `reliability`: SIGKILLed applies, racing writers, readers and SR
//!   operations during an apply, limits, `--redact`, phones kept out of logs,
//!   saved plans that do not belong.
//! - `damaged_state`: a database truncated, cut short or malformed is
//!   reported as damaged by every command and left as it was; reads work
//!   read-only (a user who may only read, a read-only mount, a full disk).
//! - `outputs`: no output (`plan -o`, the status file, `man --out`, `export
//!   --out`) ever replaces the state, the parse cache, the config set or a
//!   file of another kind; files read that are not config are regular and
//!   bounded.
//! - `pg_harness`: the tests' own PostgreSQL servers (`pg_server`, shared
//!   with the benchmark from `tests/support/pg_server.rs`): they start, give
//!   each test a database of its own, refuse a wrong password, restart, and
//!   speak TLS; and they stop with the test process.
//! - `state_copy`: `state copy` moves every tenancy (rows, journal, SRs,
//!   renames, retired ones) into another state, SQLite or PostgreSQL, which
//!   then reads the same; a copy into a state holding one is refused.
//! - `kubernetes`: the Kubernetes example (`examples/kubernetes/`) and the
//!   `Dockerfile`: valid Kubernetes objects (`kubernetes-validate`, which
//!   `.ci/run` installs), well-formed Prometheus Operator objects whose
//!   alerts use metrics `watch` serves, and every cross-reference (the
//!   ConfigMap's config set validates, the container's `watch` command line
//!   parses, probes, Service, budget, Secret keys, the image's user).
//! - `pooler`: plans, applies, reads and replicated watchers through a
//!   PgBouncer in transaction mode that shares two server connections
//!   among every client.
//! - `partition`: a leader cut off from PostgreSQL by a TCP proxy that stops
//!   forwarding (sockets open): the standby takes over, the old leader never
//!   writes again.
//! - `watch`: `watch` and `status` — editors' saves, files and folders that
//!   come and go, symlink swaps, bad configs, bursts, the mass-delete guard,
//!   expiry, signals and the status file, with real file events.
//! - `telemetry`: `watch --listen` — `/metrics`, `/healthz` and `/readyz`
//!   read with a real HTTP client while a watcher applies, fails, stands by
//!   and takes over; the exposition checked by `promtool` (found by
//!   `promtool`, shared with the unit tests from
//!   `tests/support/promtool.rs`); no personal data in a label; `--listen`
//!   errors, SIGTERM, and clients that send nothing.
//! - `web`: `serve` — the web view of the example read with a real HTTP
//!   client, its JSON the bytes the command line prints, bob acting
//!   through dankim, the token and the login form, the refusal of an
//!   address beyond loopback, no password of the state's URL on any page,
//!   SIGTERM.
//! - `browser`: pages in a real headless Chromium, driven by `webdriver`
//!   (`tests/support/browser.rs`: `chromedriver` over WebDriver, skipped
//!   without it except in CI): the harness itself against a tiny site of
//!   the test's own — links, a GET filter form, a table, screenshots under
//!   `target/browser-screenshots/`, first-paint timing, nothing left
//!   running.
//! - `web_browser`: `serve` in that browser, as a person uses it, over the
//!   example on either backend: the overview's status and what needs
//!   attention, its links to the access table and to a user, the table
//!   filtered through its form (bob acting through dankim), the latest
//!   history entry opened to its plan as `plan` printed it, the access
//!   page's first paint within 1 s and no inline script; screenshots of the
//!   main pages (`web-*.png`).

mod bad_input;
mod binary;
mod browser;
mod cli;
mod config_props;
mod damaged_state;
mod docs;
mod fixtures;
mod gitops;
mod guard;
mod kubernetes;
mod newcomer;
mod outputs;
mod partition;
mod pg_harness;
#[path = "../support/pg_server.rs"]
mod pg_server;
mod pooler;
mod postgres;
#[path = "../support/promtool.rs"]
mod promtool;
mod props;
mod reconcile;
mod reliability;
mod replicas;
mod retire;
mod schema;
mod shell;
mod state_copy;
mod support;
mod telemetry;
mod watch;
mod web;
mod web_browser;
#[path = "../support/browser.rs"]
mod webdriver;
