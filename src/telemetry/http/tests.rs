//! The server over real sockets: `ureq` for what a scraper or a probe
//! sends, raw TCP for what no well-behaved client would.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::telemetry::ReconcileResult;

#[test]
fn listen_addresses() {
    let ok = |text: &str, want: &str| {
        assert_eq!(
            parse_listen(text),
            Ok(want.parse::<SocketAddr>().unwrap()),
            "{text}"
        );
    };
    ok("127.0.0.1", "127.0.0.1:9464");
    ok("127.0.0.1:9000", "127.0.0.1:9000");
    ok("0.0.0.0:9464", "0.0.0.0:9464");
    ok("10.1.2.3:0", "10.1.2.3:0");
    ok("[::1]", "[::1]:9464");
    ok("[::1]:9000", "[::1]:9000");
    ok("::1", "[::1]:9464");
    ok("[::]:9464", "[::]:9464");
    ok(":9000", "0.0.0.0:9000");
    ok("localhost", "127.0.0.1:9464");
    ok("LocalHost:9000", "127.0.0.1:9000");
    ok(" 127.0.0.1:9000\n", "127.0.0.1:9000");

    for bad in [
        "",
        " ",
        ":",
        "127.0.0.1:",
        "127.0.0.1:65536",
        "127.0.0.1:+80",
        "127.0.0.1:-1",
        "127.0.0.1:9000:1",
        "256.0.0.1",
        "[::1",
        "::1]:9000",
        "[127.0.0.1]:9000",
        "example.com:9000",
        "localhost.:9000",
        "localhost:http",
        "http://127.0.0.1:9464",
        "127.0.0.1 9000",
        "\u{1b}[31m:9000x",
    ] {
        let e = parse_listen(bad).expect_err(bad);
        assert!(e.contains("is not a listen address; expected"), "{e}");
        assert!(!e.contains('\u{1b}'), "the text is escaped: {e:?}");
        assert!(!e.ends_with('.'), "{e}");
    }
}

/// A probe whose answers a test sets.
#[derive(Default)]
struct Answers {
    dead: Mutex<Option<String>>,
    unready: Mutex<Option<String>>,
    /// The lease it records before a scrape: whether it leads, the epoch.
    lease: Mutex<Option<(bool, u64)>>,
}

impl Probe for Answers {
    fn live(&self) -> Result<(), String> {
        self.dead.lock().unwrap().clone().map_or(Ok(()), Err)
    }
    fn ready(&self) -> Result<(), String> {
        self.unready.lock().unwrap().clone().map_or(Ok(()), Err)
    }
    fn refresh(&self, metrics: &Metrics) {
        if let Some((leader, epoch)) = *self.lease.lock().unwrap() {
            metrics.lease(leader, epoch, None);
        }
    }
}

/// The watcher's endpoints as the handler of a server.
fn endpoints(metrics: Arc<Metrics>, probe: Arc<dyn Probe>) -> Arc<dyn Handler> {
    Arc::new(Endpoints::new(metrics, probe))
}

struct Fixture {
    server: Server,
    metrics: Arc<Metrics>,
    probe: Arc<Answers>,
}

impl Fixture {
    fn start() -> Fixture {
        Fixture::start_with(Limits::SERVED)
    }

    fn start_with(limits: Limits) -> Fixture {
        let metrics = Arc::new(Metrics::new());
        let probe = Arc::new(Answers::default());
        let server = Server::start_with(
            "127.0.0.1:0".parse().unwrap(),
            endpoints(Arc::clone(&metrics), Arc::clone(&probe) as Arc<dyn Probe>),
            limits,
        )
        .expect("a server on a free port");
        Fixture {
            server,
            metrics,
            probe,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.local_addr())
    }

    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// Status, content type and body of an answer.
fn got(answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String, String) {
    let mut answer = answer.expect("an answer");
    let content_type = answer
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = answer.body_mut().read_to_string().expect("a body");
    (answer.status().as_u16(), content_type, body)
}

const PLAIN: &str = "text/plain; charset=utf-8";
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

#[test]
fn endpoints_answer_with_their_status_and_type() {
    let f = Fixture::start();
    let agent = agent();
    f.metrics
        .reconciled(ReconcileResult::Applied, Duration::from_millis(12));
    f.metrics.applied("update", 2);

    let (status, content_type, body) = got(agent.get(f.url("/metrics")).call());
    assert_eq!((status, content_type.as_str()), (200, EXPOSITION));
    for name in crate::telemetry::metrics::FAMILIES {
        assert!(
            body.contains(&format!("# TYPE {name} ")),
            "{name} in:\n{body}"
        );
    }
    assert!(body.contains("supportctl_reconciles_total{result=\"applied\"} 1\n"));
    assert!(body.contains("supportctl_changes_applied_total{action=\"update\"} 2\n"));

    for path in [
        "/healthz",
        "/readyz",
        "/healthz?verbose=1",
        "/metrics?name[]=x#top",
    ] {
        let (status, content_type, body) = got(agent.get(f.url(path)).call());
        assert_eq!(status, 200, "{path}");
        if path.starts_with("/metrics") {
            assert_eq!(content_type, EXPOSITION);
        } else {
            assert_eq!(
                (content_type.as_str(), body.as_str()),
                (PLAIN, "ok\n"),
                "{path}"
            );
        }
    }

    for path in ["/", "/metrics/", "/Metrics", "/healthz/x", "/favicon.ico"] {
        let (status, content_type, body) = got(agent.get(f.url(path)).call());
        assert_eq!((status, content_type.as_str()), (404, PLAIN), "{path}");
        assert!(body.starts_with("not found"), "{body}");
    }
}

#[test]
fn head_has_the_headers_of_get_and_no_body() {
    let f = Fixture::start();
    let agent = agent();
    for path in ["/metrics", "/healthz", "/readyz", "/nowhere"] {
        let mut get = agent.get(f.url(path)).call().unwrap();
        let get_length = get.body_mut().read_to_string().unwrap().len();
        let mut head = agent.head(f.url(path)).call().unwrap();
        assert_eq!(head.status(), get.status(), "{path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "{path}"
        );
        let length: usize = head.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // The exposition holds a histogram's sum, so its length may differ
        // between two scrapes; the health answers' may not.
        if path != "/metrics" {
            assert_eq!(length, get_length, "{path}");
        }
        assert_eq!(head.body_mut().read_to_string().unwrap(), "", "{path}");
    }
}

/// Each scrape has the probe record what changed since the watcher last
/// recorded (its lease) before the exposition is encoded.
#[test]
fn a_scrape_has_the_probe_refresh_the_metrics_first() {
    let f = Fixture::start();
    let agent = agent();
    *f.probe.lease.lock().unwrap() = Some((true, 4));
    let (status, _, body) = got(agent.get(f.url("/metrics")).call());
    assert_eq!(status, 200);
    assert!(body.contains("\nsupportctl_leader 1\n"), "{body}");
    assert!(body.contains("\nsupportctl_lease_epoch 4\n"), "{body}");
    *f.probe.lease.lock().unwrap() = Some((false, 5));
    let (_, _, body) = got(agent.get(f.url("/metrics")).call());
    assert!(body.contains("\nsupportctl_leader 0\n"), "{body}");
    assert!(body.contains("\nsupportctl_lease_epoch 5\n"), "{body}");
}

#[test]
fn other_methods_are_not_allowed() {
    let f = Fixture::start();
    let agent = agent();
    for answer in [
        agent.post(f.url("/metrics")).send("x"),
        agent.post(f.url("/healthz")).send_empty(),
        agent.put(f.url("/readyz")).send("{}"),
        agent.delete(f.url("/metrics")).call(),
    ] {
        let answer = answer.unwrap();
        assert_eq!(answer.status().as_u16(), 405);
        assert_eq!(answer.headers()["allow"], "GET, HEAD");
        assert_eq!(answer.headers()["content-type"], PLAIN);
    }
    // An unknown path is not found, whatever the method.
    let answer = agent.post(f.url("/nowhere")).send("x").unwrap();
    assert_eq!(answer.status().as_u16(), 404);
}

#[test]
fn a_failing_probe_answers_503_with_its_reason() {
    let f = Fixture::start();
    let agent = agent();
    *f.probe.unready.lock().unwrap() = Some("the database did not answer for 30 s".into());
    let (status, content_type, body) = got(agent.get(f.url("/readyz")).call());
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (503, PLAIN, "the database did not answer for 30 s\n")
    );
    let (status, _, body) = got(agent.get(f.url("/healthz")).call());
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    *f.probe.dead.lock().unwrap() = Some("the loop last turned 5 min ago\n".into());
    let (status, _, body) = got(agent.get(f.url("/healthz")).call());
    assert_eq!(
        (status, body.as_str()),
        (503, "the loop last turned 5 min ago\n")
    );
    let head = agent.head(f.url("/healthz")).call().unwrap();
    assert_eq!(head.status().as_u16(), 503);

    *f.probe.dead.lock().unwrap() = None;
    *f.probe.unready.lock().unwrap() = None;
    assert_eq!(got(agent.get(f.url("/readyz")).call()).0, 200);
}

#[test]
fn many_clients_at_once_are_all_answered() {
    let f = Fixture::start();
    std::thread::scope(|s| {
        for i in 0..8 {
            let f = &f;
            s.spawn(move || {
                let agent = agent();
                for j in 0..25 {
                    let path = ["/metrics", "/healthz", "/readyz"][(i + j) % 3];
                    let (status, _, _) = got(agent.get(f.url(path)).call());
                    assert_eq!(status, 200, "{path}");
                }
            });
        }
    });
}

/// How long a `/healthz` through a fresh client takes, and its status.
fn healthz_timed(f: &Fixture) -> (u16, Duration) {
    let started = Instant::now();
    let (status, _, _) = got(agent().get(f.url("/healthz")).call());
    (status, started.elapsed())
}

#[test]
fn silent_and_slow_clients_do_not_hold_up_others() {
    let f = Fixture::start();
    // A client that connects and sends nothing, one that sends half a
    // request line, one that trickles a header a byte at a time, and one
    // that declares a body it never sends.
    let silent = TcpStream::connect(f.addr()).unwrap();
    let mut half = TcpStream::connect(f.addr()).unwrap();
    half.write_all(b"GET /metr").unwrap();
    let mut trickle = TcpStream::connect(f.addr()).unwrap();
    trickle
        .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        .unwrap();
    let mut no_body = TcpStream::connect(f.addr()).unwrap();
    no_body
        .write_all(b"POST /metrics HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));

    for _ in 0..5 {
        trickle.write_all(b"a").unwrap();
        let (status, took) = healthz_timed(&f);
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(1), "{took:?}");
    }
    drop((silent, half, trickle, no_body));
}

#[test]
fn a_client_too_slow_with_its_request_is_answered_408() {
    let f = Fixture::start_with(Limits {
        head_timeout: Duration::from_millis(300),
        ..Limits::SERVED
    });
    let mut slow = TcpStream::connect(f.addr()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn over_the_connection_limit_a_client_is_answered_503_at_once() {
    let f = Fixture::start_with(Limits {
        max_connections: 3,
        ..Limits::SERVED
    });
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(f.addr()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let mut answer = String::new();
    let mut extra = TcpStream::connect(f.addr()).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    extra.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("busy: too many connections\n"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(1));

    // Once the held connections close, their places are given back.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = healthz_timed(&f);
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the places were not given back");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `request` on a connection of its own and reads the answer whole.
fn raw(f: &Fixture, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(f.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer and close before it has read all of a large
    // request: what it did not read is not an error here.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_of(answer: &str) -> &str {
    answer.get(9..12).unwrap_or(answer)
}

#[test]
fn hostile_requests_are_answered_and_the_server_goes_on() {
    let f = Fixture::start();
    let huge_head = {
        let mut r = b"GET /metrics HTTP/1.1\r\n".to_vec();
        r.extend(std::iter::repeat_n(b'a', MAX_HEAD + 100));
        r
    };
    let long_line = {
        let mut r = b"GET /".to_vec();
        r.extend(std::iter::repeat_n(b'x', 100_000));
        r.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        r
    };
    let cases: Vec<(&[u8], &str)> = vec![
        // tiny_http 0.12 aborts the process on dropping this request: it
        // allocates the declared length to discard the body.
        (
            b"GET /healthz HTTP/1.1\r\nContent-Length: 100000000000000\r\n\r\n",
            "200",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
            "200",
        ),
        (
            b"POST /metrics HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\nabc",
            "405",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n",
            "200",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "200",
        ),
        (b"GET /healthz HTTP/1.0\r\n\r\n", "200"),
        (b"GET /healthz HTTP/1.1\n\n", "200"),
        (
            b"GET http://example.com:9464/readyz?x HTTP/1.1\r\n\r\n",
            "200",
        ),
        (b"GET http://example.com HTTP/1.1\r\n\r\n", "404"),
        (b"GET /healthz HTTP/2.0\r\n\r\n", "505"),
        (b"GET /healthz HTTP/1.1 extra\r\n\r\n", "400"),
        (b"GET  /healthz HTTP/1.1\r\n\r\n", "400"),
        (b"GET /healthz\r\n\r\n", "400"),
        (b"G\xc3\xa9T /healthz HTTP/1.1\r\n\r\n", "400"),
        (b"GET healthz HTTP/1.1\r\n\r\n", "400"),
        (b"\r\n\r\n", "400"),
        (b"\x00\x01\x02\xff\xfe\n\n", "400"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n", "400"),
        (b"GET /\x1b[31mred HTTP/1.1\r\n\r\n", "404"),
        (&huge_head, "431"),
        (&long_line, "431"),
    ];
    for (request, want) in cases {
        let answer = raw(&f, request);
        assert_eq!(
            status_of(&answer),
            want,
            "{:?} was answered:\n{answer}",
            String::from_utf8_lossy(&request[..request.len().min(80)])
        );
        assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
    }
    // A request sent in pieces is read whole; a second request on the same
    // connection is not served.
    let mut stream = TcpStream::connect(f.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for piece in [
        &b"GET /rea"[..],
        b"dyz HTTP/1.1\r\nHost: x\r",
        b"\n\r\nGET /metrics HTTP/1.1\r\n\r\n",
    ] {
        stream.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.ends_with("\r\n\r\nok\n"),
        "one answer only: {answer}"
    );

    let (status, took) = healthz_timed(&f);
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn a_panicking_probe_costs_only_its_request() {
    struct Panics;
    impl Probe for Panics {
        fn live(&self) -> Result<(), String> {
            panic!("a probe with a bug")
        }
        fn ready(&self) -> Result<(), String> {
            Ok(())
        }
    }
    let server = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        endpoints(Arc::new(Metrics::new()), Arc::new(Panics)),
    )
    .unwrap();
    let url = |path: &str| format!("http://{}{path}", server.local_addr());
    assert!(agent().get(url("/healthz")).call().is_err());
    assert_eq!(got(agent().get(url("/readyz")).call()).0, 200);
    server.stop();
}

#[test]
fn a_taken_address_is_an_error_that_names_it() {
    let f = Fixture::start();
    let taken = f.addr();
    let e = Server::start(
        taken,
        endpoints(Arc::new(Metrics::new()), Arc::new(Answers::default())),
    )
    .expect_err("the address is taken");
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    assert!(e.to_string().contains(&taken.to_string()), "{e}");
}

#[test]
fn stop_is_prompt_and_closes_the_port() {
    let f = Fixture::start();
    let addr = f.addr();
    // Connections in every state: silent, half a request, and one served.
    let silent = TcpStream::connect(addr).unwrap();
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    assert_eq!(healthz_timed(&f).0, 200);
    std::thread::sleep(Duration::from_millis(50));

    let started = Instant::now();
    f.server.stop();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "stop took {took:?}");
    assert!(TcpStream::connect(addr).is_err(), "the port is closed");
    drop((silent, half));

    // Dropping a server stops it too.
    let g = Fixture::start();
    let addr = g.addr();
    let started = Instant::now();
    drop(g);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn a_server_on_every_interface_stops() {
    let server = Server::start(
        "0.0.0.0:0".parse().unwrap(),
        endpoints(Arc::new(Metrics::new()), Arc::new(Answers::default())),
    )
    .unwrap();
    let port = server.local_addr().port();
    let (status, _, _) = got(agent()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .call());
    assert_eq!(status, 200);
    let started = Instant::now();
    server.stop();
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn request_lines_are_logged_escaped_and_cut() {
    assert_eq!(loggable(b"GET /metrics HTTP/1.1"), "GET /metrics HTTP/1.1");
    assert!(!loggable(b"GET /\x1b[2J HTTP/1.1").contains('\u{1b}'));
    let long = loggable(&[b'x'; 10_000]);
    assert_eq!(long.chars().count(), LOGGED_CHARS + 1);
    assert!(long.ends_with('…'));
    assert_eq!(loggable(b"\xff\xfe"), "\u{fffd}\u{fffd}");
}

#[test]
fn the_end_of_a_head_is_its_first_empty_line() {
    assert_eq!(end_of_head(b"GET / HTTP/1.1\r\n\r\n"), Some(18));
    assert_eq!(end_of_head(b"GET / HTTP/1.1\n\nrest"), Some(16));
    assert_eq!(end_of_head(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    assert_eq!(end_of_head(b""), None);
    assert_eq!(path_of(b"/metrics?x=1"), Some(&b"/metrics"[..]));
    assert_eq!(path_of(b"https://h/readyz#f"), Some(&b"/readyz"[..]));
    assert_eq!(path_of(b"h:9464"), None);
    assert_eq!(path_of(b"*"), None);
}

/// A handler that echoes what it was handed, and asks for the body of a
/// `POST /echo` of at most 16 bytes.
struct Echo;

impl Handler for Echo {
    fn handle(&self, request: &Request<'_>) -> Response {
        let body = format!(
            "{} {} ?{} accept={:?} cookie={:?} body={:?}",
            request.method,
            request.path,
            request.query,
            request.header("accept"),
            request.header("COOKIE"),
            String::from_utf8_lossy(request.body)
        );
        Response::text(200, body)
            .with_header("X-Echo", "yes")
            .with_header("X-Split", "a\r\nInjected: yes")
    }

    fn body_limit(&self, request: &Request<'_>) -> usize {
        if request.method == "POST" && request.path == "/echo" {
            16
        } else {
            0
        }
    }
}

fn echo_server() -> Server {
    Server::start("127.0.0.1:0".parse().unwrap(), Arc::new(Echo)).unwrap()
}

fn raw_to(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_handler_is_handed_method_path_query_headers_and_the_body_it_asked_for() {
    let server = echo_server();
    let addr = server.local_addr();
    let answer = raw_to(
        addr,
        b"GET /a/b%20c?q=x&y=1#frag HTTP/1.1\r\nAccept: text/html \r\nCookie: s=1\r\nbad line\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.ends_with(
            "GET /a/b%20c ?q=x&y=1 accept=Some(\"text/html\") cookie=Some(\"s=1\") body=\"\"\n"
        ),
        "{answer}"
    );
    assert!(answer.contains("\r\nX-Echo: yes\r\n"), "{answer}");
    assert!(
        !answer.contains("Injected"),
        "a header with a line break is never sent: {answer}"
    );

    // A body is read only where the handler asks for one, within its limit.
    let answer = raw_to(
        addr,
        b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert!(answer.ends_with("body=\"hello\"\n"), "{answer}");
    let answer = raw_to(
        addr,
        b"POST /other HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert!(answer.ends_with("body=\"\"\n"), "{answer}");
    let answer = raw_to(addr, b"POST /echo HTTP/1.1\r\n\r\n");
    assert!(answer.ends_with("body=\"\"\n"), "{answer}");
    for (request, want) in [
        (
            &b"POST /echo HTTP/1.1\r\nContent-Length: 17\r\n\r\n"[..],
            "413",
        ),
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "413",
        ),
        (b"POST /echo HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "400"),
        (
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "411",
        ),
    ] {
        let answer = raw_to(addr, request);
        assert_eq!(status_code(&answer), want, "{answer}");
    }
    // A body sent in pieces, after a `100 Continue`, is read whole.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 6\r\nExpect: 100-continue\r\n\r\nab")
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(b"cdef").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("body=\"abcdef\"\n"), "{answer}");
    server.stop();
}

#[test]
fn a_body_that_does_not_come_is_answered_408() {
    let server = Server::start_with(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Echo),
        Limits {
            head_timeout: Duration::from_millis(300),
            ..Limits::SERVED
        },
    )
    .unwrap();
    let started = Instant::now();
    let answer = {
        let mut stream = TcpStream::connect(server.local_addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
            .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    };
    assert_eq!(status_code(&answer), "408", "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

fn status_code(answer: &str) -> &str {
    answer.get(9..12).unwrap_or(answer)
}
