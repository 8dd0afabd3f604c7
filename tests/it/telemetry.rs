//! `watch --listen` end to end (issue 20): the built binary serving
//! `/metrics`, `/healthz` and `/readyz`, read with a real HTTP client
//! (`ureq`) as Prometheus and an orchestrator's probes read them, while the
//! watcher applies, fails, stands by and takes over.
//!
//! Every watcher listens on `127.0.0.1:0`; the test reads the port the
//! system gave it from its `serving /metrics, /healthz and /readyz` log line
//! ([`Endpoints::of`]). The watcher itself is driven as in `watch.rs` (its
//! [`Watcher`], log lines and waits). What the metrics must say after a
//! reconcile is read once that reconcile's log line is out, since the loop
//! records a reconcile before it logs it; what the lease thread finds, on
//! its own time, is waited for ([`wait_metrics`]). The expositions of an
//! applied, an invalid, a standing-by and a leading watcher go through
//! `promtool check metrics`, where promtool is found
//! (`tests/support/promtool.rs`).
//!
//! The only fixed waits are the watch of a leader's lease gauges for longer
//! than its lease, which shows that they do *not* go stale.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::{DEADLINE, Scratch, arg, json};
use crate::promtool;
use crate::replicas::LEASE_FLAGS;
use crate::watch::{
    DEBOUNCE_MS, Watcher, acme, acme_invalid, default_status_file, edited, is, message, reconciled,
    run_briefly, text_field, try_show, watch, watch_command,
};

/// The line a watcher logs once it listens, with the address in `addr`.
const SERVING: &str = "serving /metrics, /healthz and /readyz";
/// How the content type of `/metrics` begins: the classic text format.
const EXPOSITION: &str = "text/plain; version=0.0.4";
/// The pause between two scrapes of a wait.
const POLL: Duration = Duration::from_millis(50);

// ---- The endpoints ----

/// A watcher's endpoints, as a scraper and a probe reach them.
struct Endpoints {
    addr: SocketAddr,
    agent: ureq::Agent,
}

/// An answer: its status, content type and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

/// An HTTP client as a scraper is: no proxy, statuses as answers, and a
/// timeout.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

impl Endpoints {
    /// The endpoints of `watcher`, at the address its `serving` line names.
    #[track_caller]
    fn of(watcher: &Watcher) -> Endpoints {
        let (_, line) = watcher.wait_for(0, "the `serving` line", is(SERVING));
        let addr: SocketAddr = text_field(&line, "addr")
            .parse()
            .unwrap_or_else(|e| panic!("`serving` names the address it listens on ({e}): {line}"));
        assert!(
            addr.ip().is_loopback() && addr.port() != 0,
            "the address bound, with the port the system picked: {line}"
        );
        Endpoints {
            addr,
            agent: agent(Duration::from_secs(10)),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    #[track_caller]
    fn get(&self, path: &str) -> Answer {
        answer_of(self.agent.get(self.url(path)).call(), path)
    }

    /// `/metrics`, served as the classic text format.
    #[track_caller]
    fn metrics(&self) -> Exposition {
        let answer = self.get("/metrics");
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(
            answer.content_type.starts_with(EXPOSITION),
            "/metrics is served as `{EXPOSITION}…`, not `{}`",
            answer.content_type
        );
        Exposition(answer.body)
    }
}

#[track_caller]
fn answer_of(got: Result<ureq::http::Response<ureq::Body>, ureq::Error>, path: &str) -> Answer {
    let mut response = got.unwrap_or_else(|e| panic!("no answer to GET {path}: {e}"));
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("the body of GET {path}: {e}"));
    Answer {
        status: response.status().as_u16(),
        content_type,
        body,
    }
}

/// An exposition, to read samples from.
struct Exposition(String);

impl Exposition {
    /// The value of `series` — a name with its labels as the exposition
    /// writes them: `supportctl_leader`,
    /// `supportctl_reconciles_total{result="applied"}` — if it has a sample.
    fn value(&self, series: &str) -> Option<f64> {
        self.0.lines().find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    /// The value of `series`, which must have a sample.
    #[track_caller]
    fn of(&self, series: &str) -> f64 {
        self.value(series)
            .unwrap_or_else(|| panic!("no sample of `{series}` in:\n{}", self.0))
    }

    fn reconciles(&self, result: &str) -> f64 {
        self.of(&format!(
            "supportctl_reconciles_total{{result=\"{result}\"}}"
        ))
    }

    fn changes(&self, action: &str) -> f64 {
        self.of(&format!(
            "supportctl_changes_applied_total{{action=\"{action}\"}}"
        ))
    }

    /// Every label of every sample, as `(name, value)`, values unescaped.
    fn labels(&self) -> Vec<(String, String)> {
        let mut labels = Vec::new();
        for line in self.0.lines().filter(|l| !l.starts_with('#')) {
            let Some(open) = line.find('{') else {
                continue;
            };
            let mut rest = line[open + 1..].chars();
            loop {
                let name: String = rest.by_ref().take_while(|&c| c != '=').collect();
                let name = name.trim_start_matches(',').to_owned();
                if name.is_empty() || name.starts_with('}') {
                    break;
                }
                assert_eq!(rest.next(), Some('"'), "a quoted label value in `{line}`");
                let mut value = String::new();
                loop {
                    match rest.next() {
                        Some('"') | None => break,
                        Some('\\') => value.extend(rest.next()),
                        Some(c) => value.push(c),
                    }
                }
                labels.push((name, value));
            }
        }
        labels
    }
}

/// Scrapes `/metrics` until `done` holds; fails the test after the suite's
/// [`DEADLINE`], showing the last scrape.
#[track_caller]
fn wait_metrics(
    watcher: &Watcher,
    at: &Endpoints,
    what: &str,
    done: impl Fn(&Exposition) -> bool,
) -> Exposition {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let metrics = at.metrics();
        if done(&metrics) {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "waited {} s for {what}; the last scrape:\n{}\n{}",
            DEADLINE.as_secs(),
            metrics.0,
            watcher.dump()
        );
        std::thread::sleep(POLL);
    }
}

/// `promtool check metrics` accepts the exposition (exit 0, no lint
/// output); nothing to check where promtool is missing (outside CI).
#[track_caller]
fn assert_promtool_accepts(metrics: &Exposition) {
    let Some(promtool) = promtool::or_skip() else {
        return;
    };
    if let Err(problem) = promtool::check_metrics(&promtool, &metrics.0) {
        panic!("{problem}\non:\n{}", metrics.0);
    }
}

// ---- Watchers ----

/// A watcher of `config` serving its endpoints on a port the system picks,
/// with the short debounce and `flags`, once its first reconcile has ended:
/// the watcher, its endpoints, the cursor after that reconcile and its line.
fn listening(world: &Scratch, config: &Path, flags: &[&str]) -> (Watcher, Endpoints, usize, Value) {
    let mut all = vec!["--listen", "127.0.0.1:0", "--debounce-ms", DEBOUNCE_MS];
    all.extend_from_slice(flags);
    let watcher = watch(world, config, &all);
    let at = Endpoints::of(&watcher);
    let (from, first) = watcher.started();
    (watcher, at, from, first)
}

/// [`listening`], whose first reconcile applied `config`.
fn applied(world: &Scratch, config: &Path, flags: &[&str]) -> (Watcher, Endpoints, usize) {
    let (watcher, at, from, first) = listening(world, config, flags);
    assert_eq!(
        text_field(&first, "outcome"),
        "applied",
        "the first reconcile applies the config\n{}",
        watcher.dump()
    );
    (watcher, at, from)
}

/// The changes `plan` makes of `config` against the state, by action.
fn planned(world: &Scratch, config: &Path, action: &str) -> usize {
    let plan = json(&world.ok(&["plan", "--format", "json", arg(config)]).stdout);
    plan["changes"]
        .as_array()
        .expect("the plan lists its changes")
        .iter()
        .filter(|c| c["action"] == action)
        .count()
}

/// Seconds since the Unix epoch, now.
fn now_seconds() -> f64 {
    jiff::Timestamp::now().as_millisecond() as f64 / 1000.0
}

// ---- 1. A watcher that applied ----

/// The watcher of the example, once it applied it: alive (`ok`), ready, and
/// its metrics pass promtool and tell what happened — one applied
/// reconcile, as many creates as the plan had, a valid config, the lease
/// held, a success just now, the next grant expiry, the build's version.
#[test]
fn a_watcher_that_applied_serves_metrics_that_tell_it_and_is_live_and_ready() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let creates = planned(&world, &config, "create");
    assert!(creates > 0, "the example is created on an empty state");
    let (watcher, at, _) = applied(&world, &config, &[]);

    let live = at.get("/healthz");
    assert_eq!(
        (live.status, live.content_type.as_str(), live.body.as_str()),
        (200, "text/plain; charset=utf-8", "ok\n"),
        "{live:?}"
    );
    let ready = at.get("/readyz");
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, "ok\n"),
        "{ready:?}"
    );

    let metrics = wait_metrics(&watcher, &at, "the lease in the metrics", |m| {
        m.value("supportctl_leader") == Some(1.0)
    });
    assert_promtool_accepts(&metrics);
    assert_eq!(metrics.reconciles("applied"), 1.0, "{}", metrics.0);
    for result in [
        "invalid_config",
        "stale",
        "refused",
        "contended",
        "error",
        "standby",
    ] {
        assert_eq!(metrics.reconciles(result), 0.0, "{result}:\n{}", metrics.0);
    }
    assert!(
        metrics.of("supportctl_reconcile_duration_seconds_count") >= 1.0,
        "{}",
        metrics.0
    );
    assert_eq!(metrics.changes("create"), creates as f64, "{}", metrics.0);
    for action in ["update", "delete", "replace"] {
        assert_eq!(metrics.changes(action), 0.0, "{action}:\n{}", metrics.0);
    }
    assert_eq!(metrics.of("supportctl_config_valid"), 1.0, "{}", metrics.0);
    assert!(metrics.of("supportctl_lease_epoch") >= 1.0, "{}", metrics.0);
    let now = now_seconds();
    let success = metrics.of("supportctl_last_success_timestamp_seconds");
    assert!(
        (success - now).abs() <= 60.0,
        "the last success ({success}) is within a minute of now ({now})"
    );
    // The lease lasts 15 s from its last renewal, which was just now.
    let expiry = metrics.of("supportctl_lease_expiry_timestamp_seconds");
    assert!(
        expiry > now - 1.0 && expiry <= now + 16.0,
        "the lease expires within its 15 s ({expiry}, now {now})"
    );
    // gina's support link is the first of the example's grants to expire.
    let first_expiry: jiff::Timestamp = "2030-01-31T00:00:00Z".parse().unwrap();
    assert_eq!(
        metrics.of("supportctl_next_grant_expiry_timestamp_seconds"),
        first_expiry.as_second() as f64,
        "{}",
        metrics.0
    );
    assert_eq!(
        metrics.of(&format!(
            "supportctl_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0,
        "{}",
        metrics.0
    );
}

// ---- 2. An invalid config ----

/// An edit that makes the config set invalid: the watcher is still alive,
/// but no longer ready, and says why; its metrics count the invalid
/// reconcile and say the config is not valid. The fix makes it ready again.
#[test]
fn an_invalid_edit_makes_the_watcher_unready_saying_why_and_its_fix_ready_again() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (watcher, at, from) = applied(&world, &config, &[]);

    std::fs::write(&config, acme_invalid()).unwrap();
    let (from, _) = watcher.wait_for(from, "the invalid config's reconcile", |l| {
        message(l) == "reconcile failed" && text_field(l, "outcome") == "invalid"
    });
    // Recorded before it was logged.
    let metrics = at.metrics();
    assert_eq!(metrics.of("supportctl_config_valid"), 0.0, "{}", metrics.0);
    assert_eq!(metrics.reconciles("invalid_config"), 1.0, "{}", metrics.0);
    assert_promtool_accepts(&metrics);
    let ready = at.get("/readyz");
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(
        ready.body.contains("the configuration is invalid") && ready.body.contains("E101"),
        "/readyz says which failure: {ready:?}"
    );
    assert_eq!(ready.body.lines().count(), 1, "one line: {ready:?}");
    let live = at.get("/healthz");
    assert_eq!((live.status, live.body.as_str()), (200, "ok\n"), "{live:?}");

    std::fs::write(&config, acme()).unwrap();
    watcher.wait_for(
        from,
        "the fixed config's reconcile",
        reconciled("no-changes", "change"),
    );
    let ready = at.get("/readyz");
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, "ok\n"),
        "{ready:?}"
    );
    let metrics = at.metrics();
    assert_eq!(metrics.of("supportctl_config_valid"), 1.0, "{}", metrics.0);
    assert_eq!(metrics.reconciles("invalid_config"), 1.0, "{}", metrics.0);
    assert!(metrics.reconciles("no_change") >= 1.0, "{}", metrics.0);
}

// ---- 3. Replicas ----

/// A second replica (the same config path, its own status file and
/// address) stands by: leader 0, the leader's epoch, standby reconciles,
/// and ready. Once the leader is stopped (SIGTERM, which releases the
/// lease), its metrics say it leads, under a higher epoch, within seconds.
#[test]
fn a_standby_replica_is_ready_and_its_metrics_show_it_take_over_from_a_stopped_leader() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (mut leader, leader_at, _) = applied(&world, &config, &LEASE_FLAGS);
    let leading = wait_metrics(&leader, &leader_at, "the leader's lease", |m| {
        m.value("supportctl_leader") == Some(1.0)
    });
    let epoch = leading.of("supportctl_lease_epoch");
    assert!(epoch >= 1.0, "{}", leading.0);

    let second_status = world.path("second.status.json");
    let mut flags = LEASE_FLAGS.to_vec();
    flags.extend(["--status-file", arg(&second_status)]);
    let (second, second_at, from, first) = listening(&world, &config, &flags);
    assert_eq!(
        text_field(&first, "outcome"),
        "standby",
        "{first}\n{}",
        second.dump()
    );
    let standing_by = wait_metrics(&second, &second_at, "the leader's lease seen", |m| {
        m.value("supportctl_lease_epoch") == Some(epoch)
    });
    assert_eq!(
        standing_by.of("supportctl_leader"),
        0.0,
        "{}",
        standing_by.0
    );
    assert!(
        standing_by.reconciles("standby") >= 1.0,
        "{}",
        standing_by.0
    );
    assert_eq!(standing_by.reconciles("applied"), 0.0, "{}", standing_by.0);
    assert_eq!(standing_by.changes("create"), 0.0, "{}", standing_by.0);
    assert_eq!(
        standing_by.of("supportctl_config_valid"),
        1.0,
        "{}",
        standing_by.0
    );
    assert_promtool_accepts(&standing_by);
    let ready = second_at.get("/readyz");
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, "ok\n"),
        "a healthy standby is ready: {ready:?}"
    );

    let stopped_at = Instant::now();
    leader.signal("TERM");
    let status = leader.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{status}\n{}", leader.dump());
    let took_over = wait_metrics(&second, &second_at, "the standby to lead", |m| {
        m.value("supportctl_leader") == Some(1.0)
    });
    let took = stopped_at.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "the standby's metrics said it leads {took:?} after the leader's SIGTERM\n{}",
        second.dump()
    );
    assert!(
        took_over.of("supportctl_lease_epoch") > epoch,
        "a new epoch after epoch {epoch}:\n{}",
        took_over.0
    );
    assert_promtool_accepts(&took_over);
    second.wait_for(from, "the reconcile of the new leader", |l| {
        message(l) == "reconciled" && text_field(l, "trigger") == "lease"
    });
    let ready = second_at.get("/readyz");
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, "ok\n"),
        "{ready:?}"
    );
}

/// A leader renews its lease every retry period (200 ms here), so its
/// lease expiry gauge is always ahead of now, even between the turns of
/// its loop, which may be a heartbeat (10 s) apart: watched for longer than
/// the lease lasts (3 s), every scrape that says it leads shows a lease not
/// yet expired.
#[test]
fn a_leaders_lease_expiry_gauge_follows_its_renewals_between_turns_of_its_loop() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (watcher, at, _) = applied(&world, &config, &LEASE_FLAGS);
    let first = wait_metrics(&watcher, &at, "the lease in the metrics", |m| {
        m.value("supportctl_leader") == Some(1.0)
    });
    let lease = Duration::from_secs(3);
    let watched = Instant::now();
    let mut leading_after_a_lease = 0;
    while watched.elapsed() < lease + Duration::from_millis(500) {
        let metrics = at.metrics();
        let now = now_seconds();
        if metrics.value("supportctl_leader") == Some(1.0) {
            let expiry = metrics.of("supportctl_lease_expiry_timestamp_seconds");
            assert!(
                expiry > now,
                "a leader's lease shown as expired at {now} ({expiry}), {:?} into the watch; \
                 the first scrape said:\n{}\nthis one:\n{}",
                watched.elapsed(),
                first.0,
                metrics.0
            );
            if watched.elapsed() > lease {
                leading_after_a_lease += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        leading_after_a_lease > 0,
        "the watcher led for the whole watch\n{}",
        watcher.dump()
    );
}

// ---- 4. No personal data ----

/// Every user id, email and phone of a config set.
fn personal_data(config_text: &str) -> BTreeSet<String> {
    let config: Value = serde_saphyr::from_str(config_text).expect("the config is YAML");
    let users = config["users"].as_object().expect("the config has users");
    let mut data = BTreeSet::new();
    for (id, user) in users {
        data.insert(id.clone());
        if let Some(email) = user["email"].as_str() {
            data.insert(email.to_owned());
        }
        if let Some(phone) = user["support_account"]["phone"].as_str() {
            data.insert(phone.to_owned());
        }
    }
    data
}

/// The label values every exposition may carry: a few fixed ones, the
/// histogram's bounds and the build's version.
fn assert_only_fixed_label_values(metrics: &Exposition) {
    for (name, value) in metrics.labels() {
        let fixed = match name.as_str() {
            "result" => [
                "applied",
                "no_change",
                "invalid_config",
                "stale",
                "refused",
                "contended",
                "error",
                "standby",
            ]
            .contains(&value.as_str()),
            "action" => ["create", "update", "delete", "replace"].contains(&value.as_str()),
            "le" => value == "+Inf" || value.parse::<f64>().is_ok(),
            "version" => value == env!("CARGO_PKG_VERSION"),
            _ => false,
        };
        assert!(
            fixed,
            "the label {name}=\"{value}\" is not one of the fixed ones:\n{}",
            metrics.0
        );
    }
}

#[track_caller]
fn assert_none_in(metrics: &Exposition, data: &BTreeSet<String>) {
    for item in data {
        assert!(
            !metrics.0.contains(item.as_str()),
            "`{item}` is in /metrics:\n{}",
            metrics.0
        );
    }
}

/// No user id, email or phone of the config set appears anywhere in
/// `/metrics` (labels, help text, anything), neither after the first apply
/// nor after an update of a person's email and phone; and every label
/// value is one of the fixed few.
#[test]
fn metrics_carry_no_personal_data_of_the_config_set() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let mut data = personal_data(&acme());
    for expected in ["alice", "dankim", "alice@acme.example", "+82 2 555 0101"] {
        assert!(data.contains(expected), "{expected} in {data:?}");
    }
    assert!(data.len() >= 7 * 2 + 5, "{data:?}");
    let (watcher, at, from) = applied(&world, &config, &[]);
    let metrics = wait_metrics(&watcher, &at, "the lease in the metrics", |m| {
        m.value("supportctl_leader") == Some(1.0)
    });
    assert!(metrics.labels().len() > 10, "labels read: {}", metrics.0);
    assert_none_in(&metrics, &data);
    assert_only_fixed_label_values(&metrics);

    let moved = edited(
        &edited(&acme(), "alice@acme.example", "alice.lee@acme.example"),
        "+82 2 555 0101",
        "+82 2 555 0199",
    );
    data.extend(personal_data(&moved));
    std::fs::write(&config, &moved).unwrap();
    watcher.wait_for(from, "the update applied", reconciled("applied", "change"));
    let metrics = at.metrics();
    assert!(metrics.changes("update") >= 1.0, "{}", metrics.0);
    assert_none_in(&metrics, &data);
    assert_only_fixed_label_values(&metrics);
}

// ---- 5. `--listen` errors ----

/// Whether the state holds nothing: no SQLite file, or no table in the
/// PostgreSQL database; and no tenancy either way.
#[track_caller]
fn assert_no_state(world: &Scratch, after: &str) {
    if world.is_postgres() {
        let tables = world
            .postgres_client()
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN \
                 ('pg_catalog', 'information_schema')",
                &[],
            )
            .expect("the tables are counted")
            .get::<_, i64>(0);
        assert_eq!(tables, 0, "{after}: no table made");
    } else {
        assert!(!world.db.exists(), "{after}: no state file made");
    }
    assert!(try_show(world).is_none(), "{after}: no tenancy");
    assert!(
        !default_status_file(world).exists(),
        "{after}: no status file"
    );
}

/// An address that is not one (`--listen` cannot parse it) is a usage
/// error naming `--listen` (exit 2); an address in use is an error naming
/// the address (exit 1). Either way the watcher starts nothing.
#[test]
fn listen_refuses_a_bad_address_with_2_and_one_in_use_with_1_starting_nothing() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    for bad in ["nonsense", "127.0.0.1:99999", "example.com:80"] {
        let (code, stderr) = run_briefly(watch_command(&world, &config, &["--listen", bad]));
        assert_eq!(code, Some(2), "--listen {bad}:\n{stderr}");
        assert!(
            stderr.contains("--listen") && stderr.contains(bad),
            "--listen {bad}: the error names the flag and the value:\n{stderr}"
        );
        assert_no_state(&world, &format!("--listen {bad}"));
    }

    let taken = TcpListener::bind("127.0.0.1:0").expect("a port of the test's own");
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = run_briefly(watch_command(&world, &config, &["--listen", &addr]));
    assert_eq!(code, Some(1), "--listen {addr} (in use):\n{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "the error names the address:\n{stderr}"
    );
    assert!(
        stderr.contains("--listen"),
        "the hint names the flag:\n{stderr}"
    );
    for line in stderr.lines() {
        let Ok(line) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        assert!(
            !["watching", SERVING, "reconciled", "reconcile failed"].contains(&message(&line)),
            "nothing started: {line}\n{stderr}"
        );
    }
    assert_no_state(&world, &format!("--listen {addr} (in use)"));
    drop(taken);
}

// ---- 6. Stopping ----

/// SIGTERM: the watcher exits 0 at once, even with a client connected that
/// sends nothing, and its port no longer takes connections.
#[test]
fn sigterm_stops_the_watcher_promptly_and_closes_its_port() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (mut watcher, at, from) = applied(&world, &config, &[]);
    let mut idle = TcpStream::connect(at.addr).expect("a connection to the watcher");
    assert_eq!(at.get("/healthz").status, 200);

    let signalled = Instant::now();
    watcher.signal("TERM");
    let status = watcher.wait_exit(DEADLINE);
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{status}\n{}", watcher.dump());
    // The server stops its threads within a tenth of a second; the rest
    // is the lease's release and the status file.
    assert!(
        took < Duration::from_secs(3),
        "exited {took:?} after SIGTERM\n{}",
        watcher.dump()
    );
    let (_, stopped) = watcher.wait_for(from, "the `stopped` line", is("stopped"));
    assert_eq!(text_field(&stopped, "signal"), "SIGTERM", "{stopped}");

    let refused = TcpStream::connect_timeout(&at.addr, Duration::from_secs(1))
        .expect_err("no connection once the watcher has stopped");
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{refused}"
    );
    idle.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut rest = Vec::new();
    match idle.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the idle connection is closed, not left open: {e}"
        ),
    }
}

// ---- 7. Silent clients ----

/// Clients that connect and send nothing, or half a request, hold up only
/// themselves: a probe from another client is answered within a second.
#[test]
fn probes_are_answered_within_a_second_while_other_clients_send_nothing() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (watcher, at, _) = applied(&world, &config, &[]);
    let silent: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(at.addr).expect("a connection to the watcher"))
        .collect();
    let mut half = TcpStream::connect(at.addr).expect("a connection to the watcher");
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();

    let quick = agent(Duration::from_secs(1));
    for path in ["/healthz", "/readyz", "/metrics"] {
        let asked = Instant::now();
        let answer = quick.get(at.url(path)).call().unwrap_or_else(|e| {
            panic!(
                "GET {path} not answered within a second ({e}) while {} clients send nothing\n{}",
                silent.len() + 1,
                watcher.dump()
            )
        });
        let took = asked.elapsed();
        assert_eq!(answer.status().as_u16(), 200, "{path}");
        assert!(took < Duration::from_secs(1), "GET {path} took {took:?}");
    }
    drop(silent);
    drop(half);
}
