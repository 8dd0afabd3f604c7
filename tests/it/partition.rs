//! A leader cut off from PostgreSQL by the network (issue 20,
//! docs/guide/replicas.md, Hand-over): it must stop applying before a
//! standby can take its lease, the standby takes over once the lease has
//! expired, and when the network heals the old leader stands by and never
//! writes.
//!
//! The cut is made by [`Blackhole`], a TCP proxy between one watcher and the
//! server (on `127.0.0.1`, `pg_server::private_tcp`): [`Blackhole::cut`]
//! stops forwarding bytes both ways while every socket stays open — no
//! reset, no end of stream, as in a partition, where nothing tells either
//! side that the other is gone — and [`Blackhole::heal`] delivers what was
//! held and forwards again, as TCP does when a partition ends before its
//! timeouts.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::Scratch;
use crate::pg_server;
use crate::replicas::{LEASE, LEASE_FLAGS, RETRY, SLACK};
use crate::watch::{
    DEBOUNCE_MS, Watcher, acme, acme_with_alice, field, is, message, text_field, user_name, watch,
};

/// Whether bytes pass, and whether the proxy is stopping.
#[derive(Default)]
struct Flow {
    cut: bool,
    /// Cut the link once the client has sent these bytes (passed on).
    cut_after: Option<&'static [u8]>,
    stop: bool,
}

struct Shared {
    flow: Mutex<Flow>,
    changed: Condvar,
    /// Every thread the proxy started, joined when it stops.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn flow(&self) -> MutexGuard<'_, Flow> {
        self.flow.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits while the link is cut; whether to go on (not stopping).
    fn wait_open(&self) -> bool {
        let mut flow = self.flow();
        while flow.cut && !flow.stop {
            flow = self.changed.wait(flow).unwrap_or_else(|e| e.into_inner());
        }
        !flow.stop
    }

    fn stopping(&self) -> bool {
        self.flow().stop
    }

    fn spawn(self: &Arc<Self>, work: impl FnOnce(Arc<Shared>) + Send + 'static) {
        let shared = Arc::clone(self);
        let thread = std::thread::spawn(move || work(shared));
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(thread);
    }
}

/// A TCP proxy on `127.0.0.1` to a port of `127.0.0.1`, one thread per
/// direction of each connection, that can cut the link without closing it.
/// Stopped (its threads joined, its sockets closed) when dropped.
pub(crate) struct Blackhole {
    port: u16,
    shared: Arc<Shared>,
}

impl Blackhole {
    /// Forwards connections to `127.0.0.1:upstream`.
    pub(crate) fn start(upstream: u16) -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the proxy binds a port");
        let port = listener.local_addr().expect("the proxy's address").port();
        listener
            .set_nonblocking(true)
            .expect("the proxy's listener does not block");
        let shared = Arc::new(Shared {
            flow: Mutex::new(Flow::default()),
            changed: Condvar::new(),
            threads: Mutex::new(Vec::new()),
        });
        shared.spawn(move |shared| {
            while !shared.stopping() {
                match listener.accept() {
                    Ok((client, _)) => {
                        // A connection made during a cut is accepted, as the
                        // proxy's kernel does, and gets no further.
                        let server = TcpStream::connect(("127.0.0.1", upstream))
                            .expect("the proxy reaches the server");
                        client
                            .set_nonblocking(false)
                            .expect("the proxied socket blocks");
                        for (from, to, upstream) in [
                            (client.try_clone(), server.try_clone(), true),
                            (server.try_clone(), client.try_clone(), false),
                        ] {
                            let (from, to) = (from.expect("a socket"), to.expect("a socket"));
                            shared.spawn(move |shared| pump(&shared, from, to, upstream));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("the proxy cannot accept: {e}"),
                }
            }
        });
        Blackhole { port, shared }
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Stops forwarding, both ways; every socket stays open.
    pub(crate) fn cut(&self) {
        self.shared.flow().cut = true;
        self.shared.changed.notify_all();
    }

    /// Cuts the link as soon as the client has sent `bytes` (a statement's
    /// text, say), which pass: the server gets them and answers, and the
    /// client never learns what.
    pub(crate) fn cut_after(&self, bytes: &'static [u8]) {
        self.shared.flow().cut_after = Some(bytes);
    }

    /// Whether the link is cut.
    pub(crate) fn is_cut(&self) -> bool {
        self.shared.flow().cut
    }

    /// Forwards again, starting with what was held.
    pub(crate) fn heal(&self) {
        self.shared.flow().cut = false;
        self.shared.changed.notify_all();
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.shared.flow().stop = true;
        self.shared.changed.notify_all();
        // The threads a thread started are pushed while this one joins: take
        // them until none is left.
        loop {
            let threads = std::mem::take(
                &mut *self
                    .shared
                    .threads
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            );
            if threads.is_empty() {
                break;
            }
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}

/// Copies `from` to `to` while the link is open; what was read as the cut
/// began is held until it heals. The end of `from` is passed on as the
/// end of `to`. `upstream`: from the client to the server, where
/// [`Blackhole::cut_after`] looks.
fn pump(shared: &Shared, mut from: TcpStream, mut to: TcpStream, upstream: bool) {
    // Woken now and then to see a stop.
    from.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("a read timeout");
    let mut buffer = vec![0; 64 * 1024];
    loop {
        if !shared.wait_open() {
            break;
        }
        let n = match from.read(&mut buffer) {
            Ok(n) if n > 0 => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            // The end, or a reset, is passed on only when the link is open.
            _ => {
                shared.wait_open();
                break;
            }
        };
        // The bytes `cut_after` waits for pass, and the cut comes before
        // any answer can.
        let last = upstream && {
            let mut flow = shared.flow();
            let found = flow
                .cut_after
                .is_some_and(|needle| buffer[..n].windows(needle.len()).any(|w| w == needle));
            if found {
                flow.cut_after = None;
                flow.cut = true;
            }
            found
        };
        if (!last && !shared.wait_open()) || to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    if shared.stopping() {
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    }
}

/// The epoch of a `leading` line.
fn epoch(line: &Value) -> u64 {
    field(line, "epoch").as_u64().expect("an epoch")
}

/// A `reconciled` line that applied, on this trigger.
/// An apply that read an edit: woken by it, or by news of the lease that
/// came while the edit settled (the reconcile then carries the lease's
/// trigger; on a loaded machine a leader may miss a renewal and take its
/// lease back meanwhile).
fn applied_on_an_edit(l: &Value) -> bool {
    message(l) == "reconciled"
        && text_field(l, "outcome") == "applied"
        && ["change", "lease"].contains(&text_field(l, "trigger"))
}

fn applied(l: &Value) -> bool {
    message(l) == "reconciled" && text_field(l, "outcome") == "applied"
}

/// Two replicas of one config set with a short lease: the leader (`old`)
/// reaches PostgreSQL over TCP through a [`Blackhole`], the standby
/// (`new`) directly. Both started, `old` leading.
struct Replicas {
    proxy: Blackhole,
    direct: Scratch,
    config: std::path::PathBuf,
    old: Watcher,
    old_from: usize,
    first_epoch: u64,
    new: Watcher,
    new_from: usize,
    // Last: the server outlives the watchers and the proxy.
    _cut_off: Scratch,
    _server: pg_server::PgServer,
}

impl Replicas {
    fn start() -> Option<Replicas> {
        let server = pg_server::private_tcp()?;
        let database = server.create_database_name();
        let proxy = Blackhole::start(server.port());
        let cut_off = Scratch::at(server.tcp_url(proxy.port(), &database));
        let direct = Scratch::at(server.tcp_url(server.port(), &database));
        // One config set, at one path, as replicas have it.
        let config = direct.write("acme.yaml", &acme());
        let mut flags = vec!["--debounce-ms", DEBOUNCE_MS];
        flags.extend(LEASE_FLAGS);
        let old = watch(&cut_off, &config, &flags);
        let (old_from, first) = old.started();
        assert_eq!(text_field(&first, "outcome"), "applied", "{}", old.dump());
        let (_, took) = old.wait_for(0, "the lease", is("leading: this watcher took the lease"));
        let first_epoch = epoch(&took);
        let new = watch(&direct, &config, &flags);
        let (new_from, first) = new.started();
        assert_eq!(text_field(&first, "outcome"), "standby", "{}", new.dump());
        Some(Replicas {
            proxy,
            direct,
            config,
            old,
            old_from,
            first_epoch,
            new,
            new_from,
            _cut_off: cut_off,
            _server: server,
        })
    }

    /// Waits for `new` to take the lease, with a higher epoch, within the
    /// lease, a retry period and [`SLACK`] of `cut`; the cursor after its
    /// first reconcile as the leader.
    #[track_caller]
    fn take_over(&self, cut: Instant) -> usize {
        let (took_at, took) = self.new.wait_for(
            self.new_from,
            "the standby's take-over",
            is("leading: this watcher took the lease"),
        );
        let waited = cut.elapsed();
        eprintln!("took over {waited:?} after the cut");
        assert!(
            epoch(&took) > self.first_epoch,
            "the take-over's epoch {} is not past {}",
            epoch(&took),
            self.first_epoch
        );
        assert!(
            waited <= LEASE + RETRY + SLACK,
            "the standby took {waited:?} to take over: more than the lease, a retry period \
             and {SLACK:?}\n{}",
            self.new.dump()
        );
        self.new
            .wait_for(took_at, "the new leader's reconcile", |l| {
                message(l) == "reconciled" && text_field(l, "trigger") == "lease"
            })
            .0
    }

    /// Writes alice's new name and waits for `new` to apply it; the cursor
    /// after.
    #[track_caller]
    fn edit(&self, from: usize, name: &str) -> usize {
        std::fs::write(&self.config, acme_with_alice(name)).unwrap();
        let (at, _) = self
            .new
            .wait_for(from, "the new leader's apply", applied_on_an_edit);
        assert_eq!(
            user_name(&self.direct.show(), "alice").as_deref(),
            Some(name)
        );
        at
    }

    /// The old leader, once the link heals: it says it stopped leading (if
    /// it had not) and stands by; it applied nothing after its first
    /// reconcile. And the journal's serials follow each other, the first
    /// entry by the old leader, the others by the new one.
    #[track_caller]
    fn after_the_heal(&self, old_at: usize) {
        self.old
            .wait_for(old_at, "the old leader's word that it stopped", |l| {
                message(l).starts_with("stopped leading")
            });
        self.old.wait_for(
            old_at,
            "the old leader standing by",
            is("standing by: another watcher leads"),
        );
        assert_eq!(
            self.old.count_since(self.old_from, applied),
            0,
            "the old leader applied again\n{}",
            self.old.dump()
        );
        let history = self.direct.history();
        let serials: Vec<u64> = history
            .iter()
            .map(|e| e["serial"].as_u64().expect("a serial"))
            .collect();
        let expected: Vec<u64> = (1..=serials.len() as u64).collect();
        assert_eq!(serials, expected, "{history:?}");
        let by: Vec<u64> = history
            .iter()
            .map(|e| e["applied_by"]["pid"].as_u64().expect("a pid"))
            .collect();
        let mut leaders = vec![u64::from(self.old.pid())];
        leaders.resize(by.len(), u64::from(self.new.pid()));
        assert_eq!(by, leaders, "each entry by the leader of its time");
    }
}

/// The leader's link to PostgreSQL is cut: the standby takes the lease
/// with a higher epoch within the lease, a retry period and some slack,
/// and applies an edit made then, once; the old leader applies nothing,
/// each of its reconciles saying that it could not renew its lease. The
/// link heals: the old leader says it stopped leading and stands by, and a
/// later edit is applied by the new leader alone.
#[test]
fn a_leader_cut_off_from_postgresql_is_replaced_and_never_writes_again() {
    let Some(replicas) = Replicas::start() else {
        return;
    };
    let Replicas { proxy, old, .. } = &replicas;
    let old_at = old.cursor();
    proxy.cut();
    let at = replicas.take_over(Instant::now());
    let at = replicas.edit(at, "Alice Cut Off");
    // The old leader saw the edit too, and knows it may not apply it,
    // though it cannot reach the database to learn who leads.
    old.wait_for(old_at, "the old leader's refusal", |l| {
        message(l) == "reconcile failed"
            && text_field(l, "error").contains("could not renew its lease")
    });

    proxy.heal();
    old.wait_for(
        old_at,
        "the old leader standing by",
        is("standing by: another watcher leads"),
    );
    let before_edit = old.cursor();
    replicas.edit(at, "Alice Healed");
    // Its look at the edit stands by: woken by the edit, or by its lease
    // campaign's news when that came while the edit settled (the reconcile
    // that follows then carries the lease's trigger and reads the edit).
    old.wait_for(before_edit, "the old leader's look at the last edit", |l| {
        message(l) == "reconciled"
            && text_field(l, "outcome") == "standby"
            && ["change", "lease"].contains(&text_field(l, "trigger"))
    });
    replicas.after_the_heal(old_at);
    assert_eq!(replicas.direct.history().len(), 3);
}

/// The link is cut in the middle of the leader's campaign, after the
/// server granted it the lease's lock (the statement after the lock, which
/// reads the server's clock, reaches the server; its answer never comes
/// back): the server ends that session once it has waited a lease's
/// length, so the lock is not held until the server notices the client is
/// gone (hours, by TCP keepalives), and the standby takes over as after
/// any cut.
#[test]
fn a_leader_cut_off_inside_its_campaign_does_not_keep_the_lease_locked() {
    let Some(replicas) = Replicas::start() else {
        return;
    };
    let Replicas { proxy, old, .. } = &replicas;
    let old_at = old.cursor();
    proxy.cut_after(b"clock_timestamp()");
    old.wait_until("the cut inside a campaign", || proxy.is_cut());
    let at = replicas.take_over(Instant::now());
    replicas.edit(at, "Alice Cut Off");
    proxy.heal();
    replicas.after_the_heal(old_at);
    assert_eq!(replicas.direct.history().len(), 2);
}
