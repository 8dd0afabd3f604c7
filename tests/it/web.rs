//! `serve` end to end (issue 21): the built binary serving the web view of
//! a state the example tenancy was applied to, read with a real HTTP client
//! (`ureq`) as a browser and a script read it; its JSON compared with what
//! the command line prints for the same state; its address refused or
//! guarded by a token; a state it cannot reach; and SIGTERM.
//!
//! Every server listens on `127.0.0.1:0` (or `0.0.0.0:0`); the test reads
//! the port the system gave it from its `serving the web view` log line. The
//! process is driven as `watch.rs` drives a watcher ([`Watcher`]: its log
//! lines, its signals and its exit).

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::binary::{DEADLINE, Scratch, arg, crate_root, supportctl};
use crate::watch::{Watcher, is, text_field};

/// The line `serve` logs once it listens, with the address in `addr`.
const SERVING: &str = "serving the web view";

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// A running `supportctl serve` and where it listens (also driven in a
/// browser by `web_browser.rs`).
pub(crate) struct Served {
    pub(crate) process: Watcher,
    pub(crate) addr: SocketAddr,
    agent: ureq::Agent,
}

/// An answer: status, headers that matter here, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    csp: String,
    location: String,
    set_cookie: String,
    body: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

impl Served {
    /// `supportctl --db DB --log-format json serve --listen ADDR FLAGS…`,
    /// once it says where it listens.
    #[track_caller]
    pub(crate) fn start(world: &Scratch, listen: &str, flags: &[&str]) -> Served {
        let mut args = vec!["--log-format", "json", "serve", "--listen", listen];
        args.extend_from_slice(flags);
        Served::of(Watcher::spawn(world.command(&args)))
    }

    /// A started `serve`, once it says where it listens.
    #[track_caller]
    fn of(process: Watcher) -> Served {
        Served::said(process, SERVING)
    }

    /// A started server, once its line `serving` says where it listens.
    #[track_caller]
    fn said(process: Watcher, serving: &'static str) -> Served {
        let (_, line) = process.wait_for(0, "the `serving` line", is(serving));
        let mut addr: SocketAddr = text_field(&line, "addr")
            .parse()
            .unwrap_or_else(|e| panic!("`serving` names the address ({e}): {line}"));
        assert_ne!(addr.port(), 0, "the port the system picked: {line}");
        if addr.ip().is_unspecified() {
            addr.set_ip([127, 0, 0, 1].into());
        }
        Served {
            process,
            addr,
            agent: agent(),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    #[track_caller]
    fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.agent.get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.call(), path)
    }

    /// A page as a browser asks for it.
    #[track_caller]
    fn page(&self, path: &str) -> Answer {
        self.get_with(
            path,
            &[("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
        )
    }

    #[track_caller]
    fn ok(&self, path: &str) -> String {
        let answer = self.page(path);
        assert_eq!(
            answer.status,
            200,
            "{path}: {answer:?}\n{}",
            self.process.dump()
        );
        answer.body
    }
}

#[track_caller]
fn answer(got: Result<ureq::http::Response<ureq::Body>, ureq::Error>, path: &str) -> Answer {
    let mut response = got.unwrap_or_else(|e| panic!("no answer to {path}: {e}"));
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (content_type, csp, location, set_cookie) = (
        header("content-type"),
        header("content-security-policy"),
        header("location"),
        header("set-cookie"),
    );
    let body = response
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("the body of {path}: {e}"));
    Answer {
        status: response.status().as_u16(),
        content_type,
        csp,
        location,
        set_cookie,
        body,
    }
}

/// A scratch state the example tenancy was applied to.
pub(crate) fn example() -> Scratch {
    let world = Scratch::new();
    let example = crate_root().join("examples/acme-prod.yaml");
    world.ok(&["apply", "--auto-approve", arg(&example)]);
    world
}

/// The part of `html` from `start` to the next `end`.
#[track_caller]
fn element<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no `{start}` in:\n{html}"));
    let to = html[from..].find(end).map_or(html.len(), |i| from + i);
    &html[from..to]
}

/// The web view of the example: the overview, the access table and the
/// journal, each JSON twin the bytes the command prints for the same state,
/// bob acting through dankim on both pages; then SIGTERM stops it with 0
/// and closes its port.
#[test]
fn serve_shows_the_example_as_the_command_line_does_and_stops_on_sigterm() {
    let world = example();
    let served = Served::start(&world, "127.0.0.1:0", &[]);

    let access_json = served.get_with("/t/acme-prod/access.json", &[]);
    assert_eq!(access_json.status, 200, "{access_json:?}");
    assert_eq!(access_json.content_type, "application/json");
    let cli = world.ok(&["access", "--all", "--format", "json"]).stdout;
    assert_eq!(
        access_json.body, cli,
        "access.json is `access --all --format json`"
    );
    let by_accept = served.get_with("/t/acme-prod/access", &[("Accept", "application/json")]);
    assert_eq!(by_accept.body, cli);
    let history = served.get_with("/t/acme-prod/history.json", &[]);
    assert_eq!(
        history.body,
        world.ok(&["history", "--format", "json"]).stdout
    );

    let access = served.ok("/t/acme-prod/access");
    let bob = element(&access, "<tr data-user=\"bob\"", "</tr>");
    assert!(bob.contains("data-via=\"dankim\""), "{bob}");
    assert!(
        element(bob, "<td class=\"acts-as\">", "</td>").contains("dankim"),
        "{bob}"
    );
    assert!(access.contains("<table id=\"access\""));
    assert!(access.contains("id=\"filter\""));

    let overview = served.ok("/");
    assert_eq!(
        overview,
        served.ok("/t/acme-prod"),
        "`/` is the only tenancy's overview"
    );
    let acting = element(&overview, "<ul id=\"acting\">", "</section>");
    let bob = element(acting, "<li data-user=\"bob\"", "</li>");
    assert!(
        bob.contains("acts through <span class=\"via\">dankim</span>"),
        "{bob}"
    );
    let attention = element(&overview, "<ul id=\"attention\">", "</ul>");
    assert!(attention.contains("data-user=\"carol\""), "{attention}");
    assert!(
        overview.contains("data-test=\"csi\">20817431<"),
        "{overview}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&served.get_with("/t/acme-prod/index.json", &[]).body).unwrap();
    crate::shell::same_shape(
        &crate::shell::documented_json("overview"),
        &json,
        "the overview",
    );
    assert_eq!(json["acting_through"][0]["administrator"], "dankim");
    assert_eq!(json["acting_through"][0]["users"][0]["user"], "bob");

    let journal = served.ok("/t/acme-prod/history");
    let entry = element(&journal, "<a class=\"history-entry\"", "</a>");
    assert!(entry.contains("href=\"/t/acme-prod/history/1\""), "{entry}");
    let plan = served.ok("/t/acme-prod/history/1");
    assert!(plan.contains("<div id=\"plan\""), "{plan}");
    assert!(
        plan.contains("<span class=\"address\">support_link.bob</span>"),
        "{plan}"
    );
    assert!(
        plan.contains("(redacted)") && !plan.contains("555 0100"),
        "phones redacted"
    );

    // A user's page, the links drawn, the expiries and the SRs.
    let bob = served.ok("/t/acme-prod/users/bob");
    assert!(
        bob.contains("as <span class=\"acts-as\">dankim</span>"),
        "{bob}"
    );
    assert_eq!(
        served
            .get_with("/t/acme-prod/users/bob/index.json", &[])
            .body,
        world.ok(&["access", "bob", "--format", "json"]).stdout
    );
    let graph = served.ok("/t/acme-prod/graph");
    assert!(
        graph.contains("<g class=\"edge\" data-user=\"bob\" data-via=\"dankim\">"),
        "{graph}"
    );
    let expiries = served.ok("/t/acme-prod/expiries?days=3650");
    assert!(
        expiries.contains("<li data-user=\"gina\" data-grant=\"link\">"),
        "{expiries}"
    );
    world.ok(&["sr", "open", "--user", "bob", "--title", "Disk full"]);
    let srs = served.ok("/t/acme-prod/srs?as=bob");
    assert!(srs.contains("<tr data-sr=\"1\">"), "{srs}");
    assert_eq!(
        served.get_with("/t/acme-prod/srs.json?as=bob", &[]).body,
        world
            .ok(&["sr", "list", "--user", "bob", "--format", "json"])
            .stdout
    );

    // Every answer forbids any script but its own; a bad path is a 404
    // page, a bad query a 400, and nothing can be written.
    for path in ["/", "/t/acme-prod/access", "/static/app.js", "/nowhere"] {
        assert_eq!(served.page(path).csp, CSP, "{path}");
    }
    let missing = served.page("/t/acme-prod/nowhere");
    assert_eq!(
        (missing.status, missing.content_type.as_str()),
        (404, "text/html; charset=utf-8")
    );
    assert_eq!(served.page("/t/acme-prod/access?sort=nothing").status, 400);
    let post = served
        .agent
        .post(served.url("/t/acme-prod"))
        .send("anything");
    assert_eq!(answer(post, "POST").status, 405);
    let script = served.page("/static/app.js");
    assert_eq!(script.content_type, "text/javascript; charset=utf-8");

    let mut process = served.process;
    let signalled = Instant::now();
    process.signal("TERM");
    let status = process.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{status}\n{}", process.dump());
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "exited {:?} after SIGTERM",
        signalled.elapsed()
    );
    let (_, stopped) = process.wait_for(0, "the `stopped` line", is("stopped"));
    assert_eq!(text_field(&stopped, "signal"), "SIGTERM", "{stopped}");
    assert!(
        TcpStream::connect_timeout(&served.addr, Duration::from_secs(1)).is_err(),
        "the port is closed"
    );
}

/// Another host's address needs a token or `--insecure-no-auth`: without
/// either, `serve` is a usage error (2) that says why, and listens on
/// nothing.
/// Whether a log line says the web view read `tenancy` at `serial`.
fn read_at(serial: u64) -> impl Fn(&serde_json::Value) -> bool {
    move |line| {
        crate::watch::message(line) == "web view: read the tenancy"
            && crate::watch::field(line, "serial").as_u64() == Some(serial)
    }
}

/// `serve` reads the state before anyone asks, and again after an apply
/// made by another process, also before anyone asks: a request then finds
/// the new serial already read.
#[test]
fn serve_reads_the_state_ahead_of_requests_at_start_and_after_an_apply() {
    let world = example();
    let served = Served::start(&world, "127.0.0.1:0", &[]);
    let (after, line) = served
        .process
        .wait_for(0, "the read at the start", read_at(1));
    assert_eq!(text_field(&line, "tenancy"), "acme-prod", "{line}");
    assert_eq!(
        crate::watch::field(&line, "users").as_u64(),
        Some(7),
        "{line}"
    );
    let edited = world.write("acme.yaml", &crate::watch::acme_with_alice("Alice Park"));
    world.ok(&["apply", "--auto-approve", arg(&edited)]);
    let (after, _) = served
        .process
        .wait_for(after, "the read after the apply", read_at(2));
    let access = served.ok("/t/acme-prod/access");
    assert!(access.contains("Alice Park"), "{access}");
    assert_eq!(
        served
            .process
            .count_since(after, is("web view: read the tenancy")),
        0,
        "the request read nothing itself:\n{}",
        served.process.dump()
    );
}

#[test]
fn serve_refuses_an_address_beyond_loopback_without_a_token() {
    let world = Scratch::new();
    for listen in ["0.0.0.0:0", ":0", "[::]:0"] {
        let outcome = world.run(&["serve", "--listen", listen]);
        outcome.assert_code(2);
        assert!(
            outcome.stderr.contains("is not a loopback address")
                && outcome.stderr.contains("--auth-token-file")
                && outcome.stderr.contains("--insecure-no-auth"),
            "{}",
            outcome.stderr
        );
    }
    let both = world.run(&["serve", "--auth-token-file", "token", "--insecure-no-auth"]);
    both.assert_code(2);
    for bad in ["example.com:80", "127.0.0.1:99999"] {
        let outcome = world.run(&["serve", "--listen", bad]);
        outcome.assert_code(2);
        assert!(outcome.stderr.contains("--listen"), "{}", outcome.stderr);
    }
    let missing = world.run(&[
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--auth-token-file",
        "nowhere",
    ]);
    missing.assert_code(1);
    assert!(missing.stderr.contains("nowhere"), "{}", missing.stderr);
    let empty = world.write("empty-token", "  \n");
    let outcome = world.run(&["serve", "--auth-token-file", arg(&empty)]);
    outcome.assert_code(1);
    assert!(outcome.stderr.contains("is empty"), "{}", outcome.stderr);
}

/// With a token, on every interface: a script shows it as a bearer token,
/// a browser types it into the login form once and is given a session
/// cookie (HttpOnly, SameSite=Strict) that is not the token.
#[test]
fn a_token_guards_the_pages_and_the_login_form_gives_a_session() {
    let world = example();
    let token = "correct-horse-battery-staple";
    let file = world.write("token", &format!("{token}\n"));
    let served = Served::start(&world, "0.0.0.0:0", &["--auth-token-file", arg(&file)]);

    let refused = served.get_with("/t/acme-prod/access.json", &[]);
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(!refused.body.contains("dankim"), "{}", refused.body);
    let browser = served.page("/t/acme-prod/access");
    assert_eq!((browser.status, browser.location.as_str()), (303, "/login"));
    assert_eq!(browser.csp, CSP);

    let bearer = format!("Bearer {token}");
    let allowed = served.get_with("/t/acme-prod/access.json", &[("Authorization", &bearer)]);
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.body,
        world.ok(&["access", "--all", "--format", "json"]).stdout
    );
    let wrong = served.get_with(
        "/t/acme-prod/access.json",
        &[("Authorization", "Bearer nope")],
    );
    assert_eq!(wrong.status, 401);

    let form = served.ok("/login");
    assert!(
        form.contains("<form method=\"post\" action=\"/login\""),
        "{form}"
    );
    let login = |body: &str| {
        answer(
            served
                .agent
                .post(served.url("/login"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send(body.to_string()),
            "POST /login",
        )
    };
    let failed = login("token=wrong");
    assert_eq!(failed.status, 401);
    assert!(failed.set_cookie.is_empty());
    let logged_in = login(&format!("token={token}"));
    assert_eq!((logged_in.status, logged_in.location.as_str()), (303, "/"));
    let cookie = logged_in.set_cookie;
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(token),
        "the cookie is not the token: {cookie}"
    );
    let session = cookie.split(';').next().unwrap();
    let page = served.get_with(
        "/t/acme-prod/access",
        &[("Accept", "text/html"), ("Cookie", session)],
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<tr data-user=\"bob\""));
}

/// No page shows the password of the state's URL, even when the state
/// cannot be reached: the error says where it looked, the password masked.
#[test]
fn no_page_shows_the_password_of_the_states_url() {
    let world = Scratch::new();
    // Nothing listens on port 1.
    let url = "postgres://auditor:hunter2-secret@127.0.0.1:1/supportctl";
    let served = Served::of(Watcher::spawn(supportctl(
        world.root(),
        [
            "--db",
            url,
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
    )));
    for path in ["/", "/t/acme-prod/access", "/index.json"] {
        let page = served.page(path);
        assert!(page.status >= 500, "{path}: {page:?}");
        assert!(!page.body.contains("hunter2"), "{path}: {}", page.body);
        assert!(
            page.body.contains("127.0.0.1"),
            "{path} says where: {}",
            page.body
        );
    }
    let mut process = served.process;
    process.signal("TERM");
    assert_eq!(process.wait_exit(DEADLINE).code(), Some(0));
    for line in process.lines_since(0) {
        assert!(!line.to_string().contains("hunter2"), "{line}");
    }
}

/// The manual page and the help of `serve` name its flags.
#[test]
fn serve_help_names_its_flags() {
    let outcome = crate::binary::run(&mut supportctl(Path::new("."), ["serve", "--help"]));
    outcome.assert_code(0);
    for flag in [
        "--listen",
        "--auth-token-file",
        "--insecure-no-auth",
        "--show-phones",
        "--expiring-within",
    ] {
        assert!(outcome.stdout.contains(flag), "{flag}:\n{}", outcome.stdout);
    }
}

/// `watch --listen ADDR --web` serves the same pages beside its endpoints:
/// the access table's JSON is `access --all`'s, `/metrics` still answers;
/// with a token, the pages ask for it and the endpoints stay open to
/// scrapers and probes.
#[test]
fn watch_web_serves_the_pages_beside_its_endpoints_behind_the_token() {
    let world = Scratch::new();
    let config = world.write(
        "acme.yaml",
        &std::fs::read_to_string(crate_root().join("examples/acme-prod.yaml")).unwrap(),
    );
    let token_file = world.write("token", "a-long-random-token\n");
    for guarded in [false, true] {
        let mut args = vec![
            "--log-format",
            "json",
            "watch",
            arg(&config),
            "--listen",
            "127.0.0.1:0",
            "--web",
        ];
        if guarded {
            args.extend(["--auth-token-file", arg(&token_file)]);
        }
        let status = world.path(&format!("watch-{guarded}.status.json"));
        args.extend(["--status-file", arg(&status)]);
        let served = Served::said(
            Watcher::spawn(world.command(&args)),
            "serving /metrics, /healthz, /readyz and the web view",
        );
        served.process.started();
        let metrics = served.get_with("/metrics", &[]);
        assert_eq!(metrics.status, 200, "{metrics:?}");
        assert!(metrics.body.contains("supportctl_leader"), "{metrics:?}");
        assert_eq!(served.get_with("/healthz", &[]).status, 200);
        let json = served.get_with("/t/acme-prod/access.json", &[]);
        if guarded {
            assert_eq!(json.status, 401, "the pages ask for the token: {json:?}");
            let with = served.get_with(
                "/t/acme-prod/access.json",
                &[("Authorization", "Bearer a-long-random-token")],
            );
            assert_eq!(with.status, 200, "{with:?}");
            assert_eq!(
                with.body,
                world.ok(&["access", "--all", "--format", "json"]).stdout
            );
        } else {
            assert_eq!(json.status, 200, "{json:?}");
            assert_eq!(
                json.body,
                world.ok(&["access", "--all", "--format", "json"]).stdout
            );
            let page = served.ok("/t/acme-prod/access");
            assert!(page.contains("dankim"), "{page}");
        }
        served.process.signal("TERM");
    }
}
