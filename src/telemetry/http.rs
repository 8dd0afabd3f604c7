//! The HTTP server of supportctl, and the watcher's endpoints on it.
//!
//! [`Server`] listens on one address and hands each request to a
//! [`Handler`]: [`Endpoints`], the watcher's `/metrics`, `/healthz` and
//! `/readyz` (`watch --listen`), or the web view of `supportctl serve`
//! ([`crate::web`]). The server itself knows no route: it reads a request's
//! head (and, only when the handler asks for one, a small body), and writes
//! the handler's [`Response`].
//!
//! [`Endpoints`] answers `GET` and `HEAD` of its three paths, each from
//! memory: the exposition of [`Metrics`] (brought up to date by
//! [`Probe::refresh`] first), and the answers of a [`Probe`], which the
//! watcher gives from what its loop and lease thread last saw. It never
//! touches the state, the config set or the clock, and reads no body.
//!
//! The server is HTTP/1.1 on `std::net`, written for these answers rather
//! than taken from a crate. tiny_http 0.12, the small synchronous
//! server on crates.io, discards an unread request body when the request is
//! dropped by allocating its declared `Content-Length` at once and reading
//! it without a timeout: one request that declares 100 TB aborts the whole
//! process, one that declares a body and sends none holds the thread that
//! answered it forever (tiny-http/tiny-http#252; 0.12.0 is its latest
//! release). It also has no read timeout and no bound on a header line. A
//! watcher that any client can stop applies revocations late, so every
//! input is bounded here instead:
//!
//! - each connection is served on a thread of its own, so a slow or silent
//!   client holds up only itself; at most [`MAX_CONNECTIONS`] are served at
//!   once, and the next ones are answered `503` at once and closed;
//! - a request's head (its line and headers) must arrive whole within
//!   [`HEAD_TIMEOUT`] and fit in [`MAX_HEAD`] bytes (`408`, `431`); its body
//!   is read only when the handler asks for it ([`Handler::body_limit`]),
//!   only with a `Content-Length` within that limit (`411`, `413`) and
//!   within [`HEAD_TIMEOUT`] more; any other body is never read, only
//!   discarded for a moment after the answer so that closing does not reset
//!   the connection before the client reads it;
//! - an answer must be taken within [`WRITE_TIMEOUT`];
//! - every answer closes its connection (`Connection: close`), so no idle
//!   connection is kept between requests;
//! - every wait is cut into slices of [`SLICE`], so [`Server::stop`] ends
//!   every thread within about one slice and joins them all.
//!
//! Client mistakes (a malformed request, a timeout, a reset) are logged at
//! debug level with the request line escaped; only the server's own
//! failures (accepting, starting a thread, too many connections) are
//! warnings, at most one every [`WARN_EVERY`] per kind. A handler that
//! panics costs only its request: its connection is closed unanswered.

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics};
use crate::diag::escape_control;

/// The port `--listen` takes when its address names none.
pub const DEFAULT_PORT: u16 = 9464;

/// Connections served at once; the next ones are answered `503`.
pub const MAX_CONNECTIONS: usize = 32;
/// How long a client has to send a request's whole head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// The most bytes a request's head may take.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to take an answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a blocking read or write waits before the thread looks
/// whether the server is stopping.
pub const SLICE: Duration = Duration::from_millis(100);
/// How long what a client sent after its head is read and discarded once it
/// has its answer, and how much of it at most.
const LINGER: Duration = Duration::from_millis(250);
const LINGER_BYTES: usize = 1024 * 1024;
/// The stack of a connection's thread unless its handler asks for more
/// ([`Handler::stack_size`]): parsing, a probe and an encode.
pub const STACK_SIZE: usize = 256 * 1024;
/// The pause after a failed `accept` (out of file descriptors, say), so that
/// the thread does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// The least time between two warnings of one kind.
pub const WARN_EVERY: Duration = Duration::from_secs(10);
/// The most characters of a request's method and path a log line shows.
const LOGGED_CHARS: usize = 120;

/// The address `--listen ADDR` names.
///
/// - `IP:PORT` and `[IPv6]:PORT` as written: `127.0.0.1:9000`, `[::1]:9000`,
///   `0.0.0.0:9464`;
/// - an address without a port takes [`DEFAULT_PORT`]: `127.0.0.1`, `[::1]`
///   (or `::1`);
/// - `:PORT` is every IPv4 interface, `0.0.0.0:PORT`, as the Prometheus
///   exporters read it (every IPv6 interface is `[::]:PORT`);
/// - `localhost[:PORT]` (in any case) is `127.0.0.1`, the loopback address
///   every host has, without asking a resolver.
///
/// Other host names are refused rather than resolved: which interface a name
/// stands for is for the operator to decide. Port 0 is taken as given (the
/// system picks a free port; [`Server::local_addr`] says which).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    parse_listen_on(text, DEFAULT_PORT)
}

/// [`parse_listen`], where an address without a port takes `default_port`.
pub fn parse_listen_on(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    let trimmed = text.trim();
    parse_listen_trimmed(trimmed, default_port).ok_or_else(|| {
        format!(
            "`{}` is not a listen address; expected IP[:PORT], [IPv6][:PORT], :PORT or \
             localhost[:PORT], e.g. `127.0.0.1:{default_port}`, `[::1]:{default_port}` or \
             `:{default_port}`",
            escape_control(text)
        )
    })
}

fn parse_listen_trimmed(text: &str, default_port: u16) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, default_port));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let ip = inner.parse::<Ipv6Addr>().ok()?;
        return Some(SocketAddr::new(ip.into(), default_port));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some(("", port)) => {
            return Some(SocketAddr::new(
                Ipv4Addr::UNSPECIFIED.into(),
                parse_port(port)?,
            ));
        }
        Some((host, port)) => (host, parse_port(port)?),
        None => (text, default_port),
    };
    if host.eq_ignore_ascii_case("localhost") {
        return Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
    }
    None
}

/// A port as decimal digits only (no sign, no spaces), 0 to 65535.
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// What the health endpoints ask the watcher. Both answers must come fast
/// and from memory (what the loop and the lease thread last saw): never
/// from the database or a file, since a scrape may come at any moment and
/// every request holds a thread until its answer.
pub trait Probe: Send + Sync {
    /// `/healthz`: the process is alive and its loop turning. `Err` holds
    /// why not, one line for a person.
    fn live(&self) -> Result<(), String>;
    /// `/readyz`: the latest reconcile succeeded (or this watcher is a
    /// healthy standby), and the database answered when it was last asked.
    /// `Err` holds why not, one line for a person.
    fn ready(&self) -> Result<(), String>;
    /// Before `/metrics` is encoded: records into `metrics` what changes
    /// between the times the watcher records (its lease, renewed by a
    /// thread of its own every retry period while the loop may sleep for a
    /// heartbeat), from memory as the answers above.
    fn refresh(&self, _metrics: &Metrics) {}
}

/// A request as a [`Handler`] sees it: its method, target and headers as
/// sent, and its body when the handler asked for one.
#[derive(Debug)]
pub struct Request<'a> {
    /// `GET`, `HEAD`, `POST`…, as sent (a token of RFC 9110).
    pub method: &'a str,
    /// The path as sent, still percent-encoded, without the query (of a
    /// target in absolute form, `http://host/path`, its path).
    pub path: Cow<'a, str>,
    /// The query as sent, still encoded, without its `?`: empty when none.
    pub query: Cow<'a, str>,
    headers: Vec<(&'a str, &'a [u8])>,
    /// The body: empty unless [`Handler::body_limit`] asked for one.
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// A request made of its parts, as the server would hand it over: for
    /// the tests of a handler. `target` is a path with its query.
    pub fn of(
        method: &'a str,
        target: &'a str,
        headers: &[(&'a str, &'a str)],
        body: &'a [u8],
    ) -> Request<'a> {
        let (path, query) = target_parts(target.as_bytes()).unwrap_or((b"/", b""));
        Request {
            method,
            path: String::from_utf8_lossy(path),
            query: String::from_utf8_lossy(query),
            headers: headers.iter().map(|&(n, v)| (n, v.as_bytes())).collect(),
            body,
        }
    }

    /// The first header named `name` (in any case), trimmed; `None` when
    /// there is none or its value is not UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .map(str::trim)
    }
}

/// An answer: status, content type, the headers of its own, and the body.
/// Every answer also has `Content-Length`, `Cache-Control: no-store` and
/// `Connection: close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: Cow<'static, str>,
    /// Headers beyond those every answer has, in order. A value with a line
    /// break is never sent.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

const TEXT: &str = "text/plain; charset=utf-8";

impl Response {
    pub fn new(
        status: u16,
        content_type: impl Into<Cow<'static, str>>,
        body: impl Into<Vec<u8>>,
    ) -> Response {
        Response {
            status,
            content_type: content_type.into(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Plain text, ending with a line break.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        let mut body = body.into();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        Response::new(status, TEXT, body)
    }

    /// The answer with one more header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The first of its own headers named `name` (in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What answers the requests a [`Server`] reads. Called on the
/// connection's thread, once per connection; it must answer soon, and a
/// panic costs only its request.
pub trait Handler: Send + Sync {
    /// The answer to `request`. For a `HEAD`, the server sends the answer's
    /// head without its body.
    fn handle(&self, request: &Request<'_>) -> Response;

    /// How many bytes of body the server may read for `request` (whose
    /// body is still empty): 0, the default, reads none. A body is read
    /// only with a `Content-Length` within this limit.
    fn body_limit(&self, _request: &Request<'_>) -> usize {
        0
    }

    /// Headers every answer of the server carries: the handler's own, and
    /// those the server makes itself (a malformed request, a head too
    /// large or too slow, too many connections). None by default.
    fn headers(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// The stack each connection's thread gets: [`STACK_SIZE`] unless the
    /// handler's work needs more (one that reads a database does).
    fn stack_size(&self) -> usize {
        STACK_SIZE
    }
}

/// The watcher's endpoints: `/metrics`, `/healthz` and `/readyz`, answered
/// from [`Metrics`] and a [`Probe`].
pub struct Endpoints {
    metrics: Arc<Metrics>,
    probe: Arc<dyn Probe>,
}

impl Endpoints {
    pub fn new(metrics: Arc<Metrics>, probe: Arc<dyn Probe>) -> Endpoints {
        Endpoints { metrics, probe }
    }

    fn from_probe(answer: Result<(), String>) -> Response {
        match answer {
            Ok(()) => Response::text(200, "ok"),
            Err(reason) => Response::text(503, reason),
        }
    }
}

impl Handler for Endpoints {
    fn handle(&self, request: &Request<'_>) -> Response {
        let path = &*request.path;
        if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
            return Response::text(404, "not found; try /metrics, /healthz or /readyz");
        }
        if request.method != "GET" && request.method != "HEAD" {
            return Response::text(405, "method not allowed; use GET or HEAD")
                .with_header("Allow", "GET, HEAD");
        }
        match path {
            "/metrics" => {
                self.probe.refresh(&self.metrics);
                Response::new(200, METRICS_CONTENT_TYPE, self.metrics.encode())
            }
            "/healthz" => Endpoints::from_probe(self.probe.live()),
            _ => Endpoints::from_probe(self.probe.ready()),
        }
    }
}

/// An HTTP server: listening from [`Server::start`] until [`Server::stop`]
/// or its drop, each request answered by its [`Handler`].
pub struct Server {
    local_addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// The bounds a server keeps: [`MAX_CONNECTIONS`], [`HEAD_TIMEOUT`] and
/// [`WRITE_TIMEOUT`], shorter in tests.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_connections: usize,
    head_timeout: Duration,
    write_timeout: Duration,
}

impl Limits {
    const SERVED: Limits = Limits {
        max_connections: MAX_CONNECTIONS,
        head_timeout: HEAD_TIMEOUT,
        write_timeout: WRITE_TIMEOUT,
    };
}

impl Server {
    /// Binds `addr` now, so that an address in use or not this host's is an
    /// error here (naming the address), and serves on threads of its own.
    pub fn start(addr: SocketAddr, handler: Arc<dyn Handler>) -> io::Result<Server> {
        Server::start_with(addr, handler, Limits::SERVED)
    }

    fn start_with(
        addr: SocketAddr,
        handler: Arc<dyn Handler>,
        limits: Limits,
    ) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let local_addr = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let stopping = Arc::clone(&stopping);
            thread::Builder::new()
                .name("http".into())
                .spawn(move || accept_loop(&listener, &stopping, limits, &*handler))?
        };
        tracing::debug!(addr = %local_addr, "http server listening");
        Ok(Server {
            local_addr,
            stopping,
            acceptor: Some(acceptor),
        })
    }

    /// The address the server listens on (with the port the system picked,
    /// for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops listening, ends the requests being served (each within about
    /// [`SLICE`]) and joins every thread of the server. Dropping the server
    /// does the same.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.stopping.store(true, Ordering::SeqCst);
        // The accepting thread waits in `accept`: a connection of our own
        // wakes it to see `stopping`.
        match TcpStream::connect_timeout(&wake_addr(self.local_addr), Duration::from_secs(1)) {
            Ok(_) => {
                if acceptor.join().is_err() {
                    tracing::warn!("the http server's thread panicked");
                }
                tracing::debug!(addr = %self.local_addr, "http server stopped");
            }
            Err(e) => tracing::warn!(
                addr = %self.local_addr,
                error = %e,
                "http server not woken to stop; it stops when it next wakes"
            ),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Where a connection reaches a listener on `addr`: the loopback address
/// for a listener on every interface.
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// Warnings of one kind at most once every [`WARN_EVERY`].
struct Throttle(Mutex<Option<Instant>>);

impl Throttle {
    fn new() -> Throttle {
        Throttle(Mutex::new(None))
    }

    fn ready(&self) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < WARN_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// The count of connections being served; one is given back when its
/// thread ends, however it ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(
    listener: &TcpListener,
    stopping: &AtomicBool,
    limits: Limits,
    handler: &dyn Handler,
) {
    let live = AtomicUsize::new(0);
    let accept_failed = Throttle::new();
    let busy = Throttle::new();
    // The connections' threads are scoped: the scope ends, and this thread
    // with it, only once every one of them has.
    thread::scope(|scope| {
        loop {
            let accepted = listener.accept();
            if stopping.load(Ordering::SeqCst) {
                break;
            }
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    if accept_failed.ready() {
                        tracing::warn!(error = %e, "http server: accepting a connection failed");
                    }
                    thread::sleep(ACCEPT_PAUSE);
                    continue;
                }
            };
            if live.load(Ordering::SeqCst) >= limits.max_connections {
                if busy.ready() {
                    tracing::warn!(
                        limit = limits.max_connections,
                        "http server: too many connections at once; answering 503"
                    );
                }
                refuse_busy(stream, handler.headers());
                continue;
            }
            live.fetch_add(1, Ordering::SeqCst);
            let slot = Slot(&live);
            let spawned = thread::Builder::new()
                .name("http-conn".into())
                .stack_size(handler.stack_size())
                .spawn_scoped(scope, move || {
                    let _slot = slot;
                    let served = catch_unwind(AssertUnwindSafe(|| {
                        serve(stream, stopping, limits, handler)
                    }));
                    if served.is_err() {
                        tracing::warn!("http server: a request panicked; the server goes on");
                    }
                });
            if let Err(e) = spawned {
                // The closure, its slot and its stream are dropped: the
                // client sees its connection closed.
                tracing::warn!(error = %e, "http server: no thread for a connection");
            }
        }
    });
}

/// The answer to a connection over [`MAX_CONNECTIONS`], written without
/// waiting: it fits in any socket's send buffer, and when it does not go
/// out at once it is not worth waiting for.
fn refuse_busy(stream: TcpStream, headers: &[(&str, &str)]) {
    let body = "busy: too many connections\n";
    let mut head = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if stream.set_nonblocking(true).is_ok() {
        let _ = (&stream).write_all(format!("{head}\r\n{body}").as_bytes());
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// How reading a request's head ended.
enum Head {
    /// The head, up to and with its empty line, in `buf[..len]`.
    Complete(usize),
    TooLarge,
    TimedOut,
    /// The client closed or reset the connection, or the server is stopping.
    Gone,
}

fn serve(mut stream: TcpStream, stopping: &AtomicBool, limits: Limits, handler: &dyn Handler) {
    let started = Instant::now();
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "unknown".to_owned(), |a| a.to_string());
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    let mut body = Vec::new();
    let (answer, head_only, line) =
        match read_head(&mut stream, &mut buf, stopping, limits.head_timeout) {
            Head::Complete(len) => {
                let line = request_line(&buf[..len]);
                match parse_head(&buf[..len]) {
                    Err((answer, head_only)) => (answer, head_only, line),
                    Ok(mut request) => {
                        let head_only = request.method == "HEAD";
                        let limit = handler.body_limit(&request);
                        let read = read_body(
                            &mut stream,
                            &request,
                            &buf[len..],
                            limit,
                            &mut body,
                            stopping,
                            limits.head_timeout,
                        );
                        let answer = match read {
                            Ok(()) => {
                                request.body = &body;
                                handler.handle(&request)
                            }
                            Err(answer) => answer,
                        };
                        (answer, head_only, line)
                    }
                }
            }
            Head::TooLarge => (
                Response::text(431, "request head too large"),
                false,
                &[][..],
            ),
            Head::TimedOut => (
                Response::text(408, "request head not received in time"),
                false,
                &[][..],
            ),
            Head::Gone => {
                tracing::debug!(peer = %peer, "http connection closed before a request");
                return;
            }
        };
    let sent = send(
        &mut stream,
        &answer,
        handler.headers(),
        head_only,
        stopping,
        limits.write_timeout,
    );
    linger(&mut stream, stopping);
    tracing::debug!(
        peer = %peer,
        request = %loggable(line),
        status = answer.status,
        sent = sent.is_ok(),
        took_ms = started.elapsed().as_millis() as u64,
        "http request"
    );
}

/// Reads until the empty line that ends a request's head, within `timeout`
/// and [`MAX_HEAD`] bytes.
fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    stopping: &AtomicBool,
    timeout: Duration,
) -> Head {
    let deadline = Instant::now() + timeout;
    let mut chunk = [0u8; 1024];
    loop {
        let Some(wait) = slice_until(deadline) else {
            return Head::TimedOut;
        };
        if stream.set_read_timeout(Some(wait)).is_err() {
            return Head::Gone;
        }
        let room = (MAX_HEAD + 1 - buf.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) => return Head::Gone,
            Ok(n) => {
                let searched_from = buf.len().saturating_sub(3);
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = end_of_head(&buf[searched_from..]) {
                    return Head::Complete(searched_from + end);
                }
                if buf.len() > MAX_HEAD {
                    return Head::TooLarge;
                }
            }
            Err(e) if is_wait(&e) => {}
            Err(_) => return Head::Gone,
        }
        if stopping.load(Ordering::SeqCst) {
            return Head::Gone;
        }
    }
}

/// Reads the body `handler` asked for (at most `limit` bytes, 0 for none)
/// into `body`: the bytes already read past the head first, then the rest
/// within `timeout`. `Err` is the answer to a body that will not be read.
fn read_body(
    stream: &mut TcpStream,
    request: &Request<'_>,
    already: &[u8],
    limit: usize,
    body: &mut Vec<u8>,
    stopping: &AtomicBool,
    timeout: Duration,
) -> Result<(), Response> {
    if limit == 0 {
        return Ok(());
    }
    if request.header("transfer-encoding").is_some() {
        return Err(Response::text(
            411,
            "a request body is read only with a Content-Length",
        ));
    }
    let Some(declared) = request.header("content-length") else {
        return Ok(());
    };
    if declared.is_empty() || !declared.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Response::text(400, "malformed Content-Length"));
    }
    let length = match declared.parse::<usize>() {
        Ok(n) if n <= limit => n,
        _ => {
            return Err(Response::text(
                413,
                format!("request body too large: at most {limit} bytes"),
            ));
        }
    };
    body.extend_from_slice(&already[..already.len().min(length)]);
    if body.len() < length
        && request
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let deadline = Instant::now() + timeout;
    let mut chunk = [0u8; 1024];
    while body.len() < length {
        let Some(wait) = slice_until(deadline) else {
            return Err(Response::text(408, "request body not received in time"));
        };
        if stream.set_read_timeout(Some(wait)).is_err() || stopping.load(Ordering::SeqCst) {
            return Err(Response::text(408, "request body not received"));
        }
        let room = (length - body.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) => return Err(Response::text(400, "request body cut short")),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if is_wait(&e) => {}
            Err(_) => return Err(Response::text(400, "request body cut short")),
        }
    }
    Ok(())
}

/// The end (exclusive) of the first empty line in `bytes`: `\n\n` or
/// `\n\r\n`, since a line may end in a bare `\n` (RFC 9112, section 2.2).
fn end_of_head(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find_map(|i| match &bytes[i..] {
        [b'\n', b'\n', ..] => Some(i + 2),
        [b'\n', b'\r', b'\n', ..] => Some(i + 3),
        _ => None,
    })
}

/// The request line: the head's first line, without its line end.
fn request_line(head: &[u8]) -> &[u8] {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The request a head holds, or the answer to a malformed one and whether
/// it is to a `HEAD`.
fn parse_head(head: &[u8]) -> Result<Request<'_>, (Response, bool)> {
    let line = request_line(head);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err((Response::text(400, "malformed request line"), false));
    };
    if method.is_empty() || !method.iter().all(|&b| is_token(b)) || target.is_empty() {
        return Err((Response::text(400, "malformed request line"), false));
    }
    match version {
        b"HTTP/1.0" | b"HTTP/1.1" => {}
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err((
                Response::text(505, "only HTTP/1.0 and HTTP/1.1 are served"),
                false,
            ));
        }
        _ => return Err((Response::text(400, "malformed request line"), false)),
    }
    let head_only = method == b"HEAD";
    let Some((path, query)) = target_parts(target) else {
        return Err((Response::text(400, "malformed request target"), head_only));
    };
    // A method is made of tokens, which are ASCII.
    let method = std::str::from_utf8(method).unwrap_or_default();
    Ok(Request {
        method,
        path: String::from_utf8_lossy(path),
        query: String::from_utf8_lossy(query),
        headers: headers_of(head),
        body: &[],
    })
}

/// The header fields of a head: each `name: value` line after the request
/// line. A line that is not one (no colon, a name that is not a token) is
/// left out: no handler relies on it.
fn headers_of(head: &[u8]) -> Vec<(&str, &[u8])> {
    head.split(|&b| b == b'\n')
        .skip(1)
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let name = &line[..colon];
            if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
                return None;
            }
            Some((std::str::from_utf8(name).ok()?, &line[colon + 1..]))
        })
        .collect()
}

/// The path of a request target, without its query: origin form
/// (`/metrics?x`) or absolute form (`http://host:9464/metrics`).
#[cfg(test)]
fn path_of(target: &[u8]) -> Option<&[u8]> {
    target_parts(target).map(|(path, _)| path)
}

/// The path and the query (without its `?`) of a request target, in
/// origin or absolute form; a fragment is left out.
fn target_parts(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let path = if target.starts_with(b"/") {
        target
    } else {
        let scheme_end = target.windows(3).position(|w| w == b"://")?;
        let rest = &target[scheme_end + 3..];
        match rest.iter().position(|&b| b == b'/') {
            Some(slash) => &rest[slash..],
            None => b"/",
        }
    };
    let end = path.iter().position(|&b| b == b'#').unwrap_or(path.len());
    let path = &path[..end];
    Some(match path.iter().position(|&b| b == b'?') {
        Some(question) => (&path[..question], &path[question + 1..]),
        None => (path, &[][..]),
    })
}

/// A `tchar` of RFC 9110, section 5.6.2: what a method is made of.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Writes the answer within `timeout`, then closes the sending side.
fn send(
    stream: &mut TcpStream,
    answer: &Response,
    every: &[(&str, &str)],
    head_only: bool,
    stopping: &AtomicBool,
    timeout: Duration,
) -> io::Result<()> {
    let mut bytes = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n",
        answer.status,
        reason_phrase(answer.status),
        answer.content_type,
        answer.body.len()
    )
    .into_bytes();
    let own = answer.headers.iter().map(|(n, v)| (*n, v.as_str()));
    for (name, value) in own.chain(every.iter().copied()) {
        // A line break in a value would end the header early: never sent.
        if value.contains(['\r', '\n']) {
            continue;
        }
        bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    bytes.extend_from_slice(b"\r\n");
    if !head_only {
        bytes.extend_from_slice(&answer.body);
    }
    let deadline = Instant::now() + timeout;
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let Some(wait) = slice_until(deadline) else {
            return Err(io::ErrorKind::TimedOut.into());
        };
        stream.set_write_timeout(Some(wait))?;
        match stream.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(e) if is_wait(&e) => {}
            Err(e) => return Err(e),
        }
        if stopping.load(Ordering::SeqCst) {
            return Err(io::ErrorKind::Interrupted.into());
        }
    }
    stream.shutdown(Shutdown::Write)
}

/// Reads and discards what the client still sends (a body, a pipelined
/// request) for a moment, so that closing a socket with unread bytes does
/// not reset the connection before the client has read its answer.
fn linger(stream: &mut TcpStream, stopping: &AtomicBool) {
    let deadline = Instant::now() + LINGER;
    let mut chunk = [0u8; 4096];
    let mut discarded = 0;
    while discarded < LINGER_BYTES && !stopping.load(Ordering::SeqCst) {
        let Some(wait) = slice_until(deadline) else {
            return;
        };
        if stream.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => discarded += n,
            Err(e) if is_wait(&e) => {}
            Err(_) => return,
        }
    }
}

/// The next wait before `deadline`: at most [`SLICE`], never zero (a zero
/// timeout is refused by the socket); `None` once it has passed.
fn slice_until(deadline: Instant) -> Option<Duration> {
    let left = deadline.checked_duration_since(Instant::now())?;
    if left.is_zero() {
        return None;
    }
    Some(left.min(SLICE).max(Duration::from_millis(1)))
}

/// A read or write that timed out or was interrupted, to be tried again.
fn is_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// A request line as a log shows it: at most [`LOGGED_CHARS`] characters,
/// control characters escaped.
fn loggable(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut shown: String = text.chars().take(LOGGED_CHARS).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    escape_control(&shown).into_owned()
}

#[cfg(test)]
mod tests;
