//! Replicated watchers (issue 20, docs/guide/replicas.md): several `watch`
//! processes on one state elect one leader per tenancy through a lease in
//! the state; only the leader applies; a standby takes over when the leader
//! is killed, stopped or paused; an apply under a lost lease writes nothing;
//! `status` names the leader and notices a dead replica within the lease.
//!
//! Real processes, real signals (SIGKILL, SIGTERM, SIGSTOP), real files, on
//! SQLite and (in the second pass) on PostgreSQL. The leases here are short
//! (a few seconds) so that a take-over is quick to wait for; the defaults
//! are the same mechanism, slower.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::{Dice, Scratch, arg};
use crate::watch::{
    DEBOUNCE_MS, Watcher, acme, acme_with_alice, message, status_json, text_field, user_name, watch,
};

/// The short lease of the replica tests (here, and in the pooler, the
/// partition and the telemetry tests), as `watch` takes it: a leader stops
/// 2 s after its last renewal, and a standby takes a dead leader's lease
/// within `LEASE` and one `RETRY`.
pub(crate) const LEASE: Duration = Duration::from_secs(3);
pub(crate) const RETRY: Duration = Duration::from_millis(200);
pub(crate) const LEASE_FLAGS: [&str; 6] = [
    "--lease-duration",
    "3s",
    "--renew-deadline",
    "2s",
    "--retry-period",
    "200ms",
];
/// What a take-over may take beyond the lease and a retry on a busy
/// two-core machine: the last renewal before the leader died, a
/// campaign's transaction, a reconcile's start, the log line.
pub(crate) const SLACK: Duration = Duration::from_secs(3);

/// A replica of the watcher of `config`, with a status file of its own
/// (`NAME.status.json`) and the short lease.
fn replica(world: &Scratch, config: &Path, name: &str, extra: &[&str]) -> (Watcher, PathBuf) {
    let status = world.path(&format!("{name}.status.json"));
    let mut flags = vec!["--debounce-ms", DEBOUNCE_MS, "--status-file", arg(&status)];
    // The short lease, but for what `extra` sets itself.
    for pair in LEASE_FLAGS.chunks(2) {
        if !extra.contains(&pair[0]) {
            flags.extend_from_slice(pair);
        }
    }
    flags.extend_from_slice(extra);
    (watch(world, config, &flags), status)
}

fn took_lease(line: &Value) -> bool {
    message(line) == "leading: this watcher took the lease"
}

/// `status --format json` of the watcher of `status_file`.
fn status_of(world: &Scratch, status_file: &Path) -> (i32, Value, String) {
    status_json(world, &["--status-file", arg(status_file)])
}

/// The journal's serials are 1, 2, … with neither gap nor repeat, and no
/// config set's content was applied twice.
#[track_caller]
fn assert_journal_is_a_clean_sequence(world: &Scratch) -> Vec<Value> {
    let entries = world.history();
    let serials: Vec<u64> = entries
        .iter()
        .map(|e| e["serial"].as_u64().expect("a serial"))
        .collect();
    let expected: Vec<u64> = (1..=entries.len() as u64).collect();
    assert_eq!(serials, expected, "serials without gaps or repeats");
    let mut digests: Vec<&str> = entries
        .iter()
        .map(|e| e["config_digest"].as_str().expect("a digest"))
        .collect();
    digests.sort_unstable();
    let before = digests.len();
    digests.dedup();
    assert_eq!(
        digests.len(),
        before,
        "no content applied twice: {entries:?}"
    );
    entries
}

/// Two replicas: one leads and applies, the other stands by (naming the
/// leader), and `status` of either names the leader and both replicas.
/// The leader is SIGKILLed: within the lease `status` calls it dead (its
/// heartbeat file still says `watching`), and the standby takes the lease
/// within lease + one retry, then applies the next edit.
#[test]
fn a_killed_leader_is_reported_dead_and_replaced_within_the_lease() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (mut first, first_status) = replica(&world, &config, "first", &[]);
    let (_, line) = first.started();
    assert_eq!(text_field(&line, "outcome"), "applied", "{line}");
    let (second, second_status) = replica(&world, &config, "second", &[]);
    let (from, line) = second.started();
    assert_eq!(
        text_field(&line, "outcome"),
        "standby",
        "{line}\n{}",
        second.dump()
    );
    assert!(
        text_field(&line, "detail").contains(&format!("pid {}", first.pid())),
        "the standby names its leader: {line}"
    );

    for status_file in [&first_status, &second_status] {
        let (code, doc, stderr) = status_of(&world, status_file);
        assert_eq!(code, 0, "{doc}\n{stderr}");
        assert_eq!(doc["lease"]["leader"]["pid"], first.pid(), "{doc}");
        let replicas = doc["lease"]["replicas"].as_array().expect("replicas");
        assert_eq!(replicas.len(), 2, "{doc}");
        assert!(replicas.iter().all(|r| r["alive"] == true), "{doc}");
        let roles: Vec<&str> = replicas
            .iter()
            .map(|r| r["role"].as_str().unwrap())
            .collect();
        assert!(
            roles.contains(&"leader") && roles.contains(&"standby"),
            "{doc}"
        );
    }
    let epoch = status_of(&world, &first_status).1["lease"]["epoch"]
        .as_u64()
        .expect("an epoch");

    first.child.kill().unwrap();
    first.wait_exit(crate::binary::DEADLINE);
    let killed = Instant::now();
    // Its status file still says it watches, with a fresh heartbeat; the
    // state says it stopped renewing.
    let deadline = killed + LEASE + SLACK;
    loop {
        let (code, doc, stderr) = status_of(&world, &first_status);
        if code == 1 && stderr.contains("stopped renewing its lease") {
            assert_eq!(
                doc["state"], "watching",
                "the file alone would say alive: {doc}"
            );
            let dead = doc["lease"]["replicas"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["this"] == true)
                .cloned()
                .expect("its replica");
            assert_eq!(dead["alive"], false, "{doc}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status noticed the dead leader within the lease: {code} {doc}\n{stderr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, took) = second.wait_for(from, "the standby taking the lease", took_lease);
    assert!(
        killed.elapsed() < LEASE + SLACK,
        "taken over {:?} after the kill",
        killed.elapsed()
    );
    assert!(took["fields"]["epoch"].as_u64().unwrap() > epoch, "{took}");
    let (code, doc, _) = status_of(&world, &second_status);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["lease"]["leader"]["pid"], second.pid(), "{doc}");

    let from = second.cursor();
    std::fs::write(&config, acme_with_alice("Alice Next")).unwrap();
    second.wait_for(from, "the new leader applying the edit", |l| {
        message(l) == "reconciled" && text_field(l, "outcome") == "applied"
    });
    assert_eq!(
        user_name(&world.show(), "alice").as_deref(),
        Some("Alice Next")
    );
    let entries = assert_journal_is_a_clean_sequence(&world);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[1]["applied_by"]["pid"], second.pid(), "{entries:?}");
}

/// A leader stopped with SIGTERM releases its lease: a standby takes over
/// at its next campaign, long before the lease (15 s, the default) would
/// have run out.
#[test]
fn a_leader_stopped_cleanly_hands_over_at_once() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let default_lease = ["--retry-period", "200ms"];
    let spawn = |name: &str| {
        let status = world.path(&format!("{name}.status.json"));
        let mut flags = vec!["--debounce-ms", DEBOUNCE_MS, "--status-file", arg(&status)];
        flags.extend_from_slice(&default_lease);
        watch(&world, &config, &flags)
    };
    let mut first = spawn("first");
    first.started();
    let second = spawn("second");
    let (from, line) = second.started();
    assert_eq!(text_field(&line, "outcome"), "standby", "{line}");

    first.signal("TERM");
    assert_eq!(first.wait_exit(crate::binary::DEADLINE).code(), Some(0));
    let stopped = Instant::now();
    second.wait_for(from, "the standby taking the lease", took_lease);
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "a released lease is taken at the next campaign, not after 15 s: {:?}",
        stopped.elapsed()
    );
    let (_, line) = second.wait_for(from, "the new leader's reconcile", |l| {
        message(l) == "reconciled" && text_field(l, "trigger") == "lease"
    });
    assert_eq!(text_field(&line, "outcome"), "no-changes", "{line}");
}

/// The test: two and three replicas, a stream of edits, the
/// current leader SIGKILLed at random moments (right after an edit is
/// saved, or while it is applied) and replaced by a new replica. Every
/// edit lands exactly once: one journal entry each, serials without gaps
/// or repeats, and the final state is the last config.
#[test]
fn a_stream_of_edits_with_leaders_killed_at_random_lands_every_edit_once() {
    for replicas in [2, 3] {
        stream_of_edits(replicas);
    }
}

fn stream_of_edits(replicas: usize) {
    const EDITS: usize = 6;
    let mut dice = Dice::new(&format!("stream_of_edits({replicas})"));
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let mut names = 0;
    let mut spawn = |world: &Scratch| {
        names += 1;
        replica(world, &config, &format!("r{names}"), &[])
    };
    let mut running: Vec<(Watcher, PathBuf)> = (0..replicas).map(|_| spawn(&world)).collect();
    running[0].0.started();
    world_waits_for(&world, "the first apply", |show| {
        user_name(show, "alice").as_deref() == Some("Alice Lee")
    });
    let mut kills = 0;
    for edit in 1..=EDITS {
        let name = format!("Alice {edit}");
        std::fs::write(&config, acme_with_alice(&name)).unwrap();
        if dice.draw(0..2u8) == 1 {
            // Kill the leader somewhere between the save and the apply.
            std::thread::sleep(dice.within(Duration::from_millis(400)));
            let leader = current_leader(&world, &running);
            let (mut dead, _) = running.remove(leader);
            dead.child.kill().unwrap();
            dead.wait_exit(crate::binary::DEADLINE);
            kills += 1;
            running.push(spawn(&world));
        }
        world_waits_for(&world, &format!("edit {edit} applied"), |show| {
            user_name(show, "alice").as_deref() == Some(name.as_str())
        });
    }
    eprintln!("{replicas} replicas: {EDITS} edits, {kills} leaders killed");
    let entries = assert_journal_is_a_clean_sequence(&world);
    assert_eq!(
        entries.len(),
        EDITS + 1,
        "the first apply and one per edit: {entries:?}"
    );
    for entry in &entries[1..] {
        assert_eq!(entry["summary"]["change"], 1, "{entry}");
    }
    let outcome = world.run(&["plan", "--detailed-exitcode", arg(&config)]);
    assert_eq!(
        outcome.code(),
        0,
        "the state is the last config: {}",
        outcome.stdout
    );
}

/// Which of `running` leads now, as the state's lease says.
fn current_leader(world: &Scratch, running: &[(Watcher, PathBuf)]) -> usize {
    let deadline = Instant::now() + LEASE * 3 + SLACK;
    loop {
        for (_, status) in running {
            let (_, doc, _) = status_of(world, status);
            if let Some(pid) = doc["lease"]["leader"]["pid"].as_u64()
                && let Some(at) = running.iter().position(|(w, _)| u64::from(w.pid()) == pid)
            {
                return at;
            }
        }
        assert!(Instant::now() < deadline, "no running replica leads");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `show` until `done` holds, for at most a minute.
#[track_caller]
fn world_waits_for(world: &Scratch, what: &str, done: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + crate::binary::DEADLINE;
    loop {
        let shown = world.run(&["show", "--format", "json"]);
        if shown.code() == 0
            && let Ok(show) = serde_json::from_str::<Value>(&shown.stdout)
            && done(&show)
        {
            return;
        }
        assert!(Instant::now() < deadline, "waited a minute for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A leader paused (SIGSTOP) past its lease loses it to a standby, which
/// applies the edit made meanwhile; woken (SIGCONT), the old leader learns
/// that it lost the lease and applies nothing: every later journal entry
/// is the new leader's.
#[test]
fn a_paused_leader_that_wakes_after_losing_its_lease_writes_nothing() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    // The leader campaigns once a second: a pause is then unlikely to
    // catch it inside a campaign's short transaction, whose lock would
    // hold the standby off for as long as the pause.
    let (first, _) = replica(
        &world,
        &config,
        "first",
        &["--interval", "300ms", "--retry-period", "1s"],
    );
    first.started();
    let (second, _) = replica(&world, &config, "second", &["--interval", "300ms"]);
    let (from, _) = second.started();

    first.signal("STOP");
    std::fs::write(&config, acme_with_alice("Alice While Paused")).unwrap();
    second.wait_for(from, "the standby taking the lease", took_lease);
    world_waits_for(&world, "the edit applied by the new leader", |show| {
        user_name(show, "alice").as_deref() == Some("Alice While Paused")
    });
    let woken_at = first.cursor();
    first.signal("CONT");
    first.wait_for(woken_at, "the old leader learning it lost the lease", |l| {
        message(l) == "stopped leading: the lease was lost or could not be renewed in time; no more applies"
            || message(l) == "standing by: another watcher leads"
    });
    // Edits keep coming; only the new leader applies them.
    for name in ["Alice Again", "Alice Once More"] {
        std::fs::write(&config, acme_with_alice(name)).unwrap();
        world_waits_for(&world, name, |show| {
            user_name(show, "alice").as_deref() == Some(name)
        });
    }
    std::thread::sleep(Duration::from_millis(800));
    let entries = assert_journal_is_a_clean_sequence(&world);
    assert_eq!(entries.len(), 4, "{entries:?}");
    for entry in &entries[1..] {
        assert_eq!(entry["applied_by"]["pid"], second.pid(), "{entries:?}");
    }
    assert_eq!(
        first.count_since(woken_at, |l| message(l) == "reconciled"
            && text_field(l, "outcome") == "applied"),
        0,
        "the woken leader applied nothing\n{}",
        first.dump()
    );
}

/// Fencing, in the store itself: an apply made under a lease that another
/// watcher has since taken (the first's expired while it was paused) is
/// refused inside its transaction, and writes nothing; under the current
/// lease the same apply lands.
#[test]
fn an_apply_under_a_lost_lease_is_refused_in_its_transaction() {
    use supportctl::config::Limits;
    use supportctl::engine::load_and_check;
    use supportctl::model::Date;
    use supportctl::plan;
    use supportctl::state::{
        Fence, JournalEntry, JournalPlan, Location, Replica, StateError, Store,
    };

    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let today = Date::parse("2026-11-24").unwrap();
    let desired = load_and_check(&config, &Limits::default(), today)
        .model
        .expect("the example is valid");
    let location = Location::from(OsString::from(world.db_arg()));
    let me = |name: &str| Replica {
        id: format!("{name}/1/test"),
        host: name.into(),
        pid: 1,
        started_at: "test".into(),
        config: "/config".into(),
    };
    let (a, b) = (me("a"), me("b"));
    let lease = Duration::from_millis(600);
    let mut first = Store::open(&location).unwrap();
    let won = first.campaign("acme-prod", &a, lease).unwrap();
    assert!(won.leader && won.lease.epoch == 1, "{won:?}");
    first.set_fence(Some(Fence {
        tenancy: "acme-prod".into(),
        epoch: 1,
        holder: a.id.clone(),
    }));
    let mut second = Store::open(&location).unwrap();
    let standing = second.campaign("acme-prod", &b, lease).unwrap();
    assert!(!standing.leader, "a live lease is not taken: {standing:?}");
    std::thread::sleep(lease + Duration::from_millis(200));
    let taken = second.campaign("acme-prod", &b, lease).unwrap();
    assert!(
        taken.leader && taken.took && taken.lease.epoch == 2,
        "{taken:?}"
    );

    let lineage = first.lineage().to_string();
    let the_plan = plan::plan(&desired, None);
    let entry = || JournalEntry {
        time: "2026-11-24T00:00:00Z".into(),
        summary: the_plan.summary(),
        plan: JournalPlan::new("{}"),
        config_digest: "sha256:test".into(),
        git_commit: None,
        git_changes: None,
        source: None,
    };
    let refused = first.apply("acme-prod", &lineage, 0, &the_plan, entry);
    match refused {
        Err(e @ StateError::Fenced { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("epoch 1")
                    && text.contains("epoch 2")
                    && text.contains("nothing was written"),
                "{text}"
            );
        }
        other => panic!("fenced off: {other:?}"),
    }
    assert_eq!(first.serial("acme-prod").unwrap(), None, "nothing written");
    assert!(first.history(None).unwrap().is_empty(), "no journal entry");

    second.set_fence(Some(Fence {
        tenancy: "acme-prod".into(),
        epoch: 2,
        holder: b.id.clone(),
    }));
    assert_eq!(
        second
            .apply("acme-prod", &lineage, 0, &the_plan, entry)
            .unwrap(),
        1,
        "the lease's holder applies"
    );
}

/// On a machine where no watcher runs (no status file beside the state),
/// `status` reads the leader and the replicas of every tenancy from the
/// state: healthy while each has a live leader, exit 1 naming the tenancy
/// once none leads.
#[test]
fn status_where_no_watcher_runs_reports_each_tenancys_leader_from_the_state() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &acme());
    let (mut leader, _) = replica(&world, &config, "elsewhere", &[]);
    leader.started();
    let (code, doc, stderr) = status_json(&world, &[]);
    assert_eq!(code, 0, "{doc}\n{stderr}");
    assert_eq!(doc["healthy"], true, "{doc}");
    let leases = doc["leases"].as_array().expect("every tenancy's lease");
    assert_eq!(leases.len(), 1, "{doc}");
    assert_eq!(leases[0]["tenancy"], "acme-prod", "{doc}");
    assert_eq!(leases[0]["leader"]["pid"], leader.pid(), "{doc}");
    let text = world.run(&["status"]);
    assert_eq!(text.code(), 0, "{}", text.transcript());
    assert!(
        text.stdout.contains(&format!("pid {}", leader.pid())) && text.stdout.contains("led by"),
        "{}",
        text.stdout
    );

    leader.signal("TERM");
    assert_eq!(leader.wait_exit(crate::binary::DEADLINE).code(), Some(0));
    let (code, doc, stderr) = status_json(&world, &[]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["leases"][0]["leader"], Value::Null, "{doc}");
    assert_eq!(doc["leases"][0]["replicas"][0]["role"], "stopped", "{doc}");
    assert!(
        stderr.contains("no watcher leads tenancy `acme-prod`"),
        "{stderr}"
    );
}
