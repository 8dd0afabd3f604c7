//! The web view of `supportctl serve`: read-only pages of the state for
//! CSI administrators and auditors, each also as JSON.
//!
//! [`Site`] is the [`Handler`] the HTTP server ([`crate::telemetry::http`])
//! hands each request to. It answers `GET` and `HEAD` (and `POST /login`
//! and `POST /logout`, the session's forms): nothing here writes the state, which is opened read-only
//! for each request ([`data::Reader`]). The pages are HTML rendered here,
//! escaped by one function ([`html::escape`]), that work without
//! JavaScript; `/static/app.js` and `/static/style.css` are supportctl's
//! own, and every answer forbids any other script ([`CSP`]). Each page's
//! JSON twin (`.json`, or `Accept: application/json`) is the document the
//! command line prints for the same data ([`crate::report`]).
//!
//! Routes: `/` (the overview of the only tenancy, or the list of them),
//! `/t/{tenancy}` (its overview: status, what needs attention, who acts
//! through whom), `/t/{tenancy}/access` (the audit table of `access
//! --all`), `/t/{tenancy}/users/{id}` (one user's access),
//! `/t/{tenancy}/graph` (who acts through whom, drawn),
//! `/t/{tenancy}/expiries` (what ends in the next 90 days),
//! `/t/{tenancy}/srs` (the SRs, or those `?as=USER` sees),
//! `/t/{tenancy}/history` and `/t/{tenancy}/history/{serial}` (the journal,
//! and one apply's plan, 500 changes a page), `/login`, `/logout`,
//! `/static/…`.

mod auth;
mod data;
mod html;
mod pages;
mod query;

use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::engine::clock;
use crate::state::{Location, StateError};
use crate::telemetry::{Handler, Request, Response};

pub use auth::{Auth, TokenAuth, constant_time_eq};
pub use html::escape;

use html::{Html, Section};

/// The Content-Security-Policy of every answer: nothing but supportctl's
/// own script, stylesheet and images, no inline script, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// The most bytes of a login form read.
const LOGIN_BODY: usize = 4096;

/// The stack of a request's thread: it reads the state (SQLite's parser,
/// or a PostgreSQL connection with its TLS handshake) and renders a page,
/// which a watcher's probe never does. Only the pages touched are taken.
const STACK_SIZE: usize = 8 * 1024 * 1024;

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

/// What `serve` was told.
#[derive(Debug)]
pub struct Settings {
    pub db: Location,
    /// Where a watcher of this state writes its status (`watch`'s
    /// default: beside the state).
    pub status_file: PathBuf,
    pub show_phones: bool,
    /// Grants ending within this many days need attention.
    pub expiring_within: u32,
    pub auth: Auth,
}

/// The web view: a [`Handler`].
#[derive(Debug)]
pub struct Site {
    reader: data::Reader,
    auth: Auth,
    expiring_within: u32,
    /// The day pages are read on, when not the clock's (tests).
    day: Option<crate::model::Date>,
}

impl Site {
    pub fn new(settings: Settings) -> Site {
        Site {
            reader: data::Reader::new(settings.db, settings.status_file, settings.show_phones),
            auth: settings.auth,
            expiring_within: settings.expiring_within,
            day: None,
        }
    }

    /// The site with its pages read on `day` rather than today.
    pub fn on_day(self, day: crate::model::Date) -> Site {
        Site {
            day: Some(day),
            ..self
        }
    }
}

/// How often the [`Refresher`] asks the state for its serials.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// A thread that keeps the site's views of the state read before anyone
/// asks for them: every tenancy's once the server starts, and again at the
/// first look after each apply (the state's serials, asked every
/// [`REFRESH_EVERY`]), so that a page renders from memory rather than
/// waiting for a whole tenancy to be read. A request still asks the state
/// for the tenancy's serial itself, and never shows a view older than it.
/// Stops when dropped, waited for up to [`STOP_WAIT`].
#[derive(Debug)]
pub struct Refresher {
    stop: Option<mpsc::Sender<()>>,
    /// Closed when the thread ends.
    ended: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

/// How long a [`Refresher`] dropped waits for a read under way: the stop of
/// `serve` is not held up by a state slow to answer (a server cut off),
/// whose read, writing nothing, the process's exit may end.
const STOP_WAIT: Duration = Duration::from_millis(250);

impl Refresher {
    pub fn start(site: Arc<Site>, every: Duration) -> std::io::Result<Refresher> {
        let (stop, stopped) = mpsc::channel::<()>();
        let (ending, ended) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("web-refresher".into())
            .stack_size(STACK_SIZE)
            .spawn(move || {
                let _ending = ending;
                let mut failing = None;
                loop {
                    let outcome = site
                        .today()
                        .map_err(|e| e.message)
                        .and_then(|today| site.reader.refresh(today).map_err(|e| e.message()));
                    // Says once what goes wrong, and when it stops.
                    match (outcome, &failing) {
                        (Ok(()), Some(_)) => {
                            tracing::info!("web view: the state reads again");
                            failing = None;
                        }
                        (Err(e), last) if last.as_ref() != Some(&e) => {
                            tracing::warn!(error = %e, "web view: cannot read the state ahead of requests");
                            failing = Some(e);
                        }
                        _ => {}
                    }
                    match stopped.recv_timeout(every) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })?;
        Ok(Refresher {
            stop: Some(stop),
            ended,
            thread: Some(thread),
        })
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        drop(self.stop.take());
        match self.ended.recv_timeout(STOP_WAIT) {
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
            }
            _ => tracing::debug!("web view: the refresher is still reading; left to the exit"),
        }
    }
}

/// A page that cannot be given: its status and why, for a person.
#[derive(Debug)]
pub struct Problem {
    pub status: u16,
    pub message: String,
}

impl Problem {
    fn new(status: u16, message: impl Into<String>) -> Problem {
        Problem {
            status,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Problem {
        Problem::new(404, message)
    }

    fn bad_query(message: impl Into<String>) -> Problem {
        Problem::new(400, message)
    }
}

impl From<StateError> for Problem {
    fn from(e: StateError) -> Self {
        let status = match e {
            StateError::Connect { .. }
            | StateError::Lost { .. }
            | StateError::Busy { .. }
            | StateError::Locked { .. } => 503,
            _ => 500,
        };
        // A state error never holds the password of a URL (`Target::shown`).
        Problem::new(status, format!("the state cannot be read: {}", e.message()))
    }
}

impl From<crate::engine::Error> for Problem {
    fn from(e: crate::engine::Error) -> Self {
        Problem::new(500, e.message)
    }
}

/// How a page is wanted: as HTML, or as its JSON twin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Html,
    Json,
}

/// The pages, by path.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Home,
    Overview(String),
    Access(String),
    User(String, String),
    Graph(String),
    Expiries(String),
    Srs(String),
    History(String),
    Entry(String, u64),
}

/// The route of a path, and whether its `.json` twin is asked for.
fn route(path: &str) -> Result<(Route, bool), Problem> {
    let not_found = || Problem::not_found(format!("there is no page at `{}`", shown(path)));
    let tenancy = |segment: &str| match html::decode(segment, false) {
        None => Err(Problem::bad_query(
            "the tenancy in the path is not well encoded",
        )),
        Some(t) if t.is_empty() => Err(not_found()),
        Some(t) => Ok(t),
    };
    let segment = |text: &str| match html::decode(text, false) {
        None => Err(Problem::bad_query("the path is not well encoded")),
        Some(t) if t.is_empty() => Err(not_found()),
        Some(t) => Ok(t),
    };
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    Ok(match segments.as_slice() {
        [""] => (Route::Home, false),
        ["index.json"] => (Route::Home, true),
        ["t", t] | ["t", t, ""] => (Route::Overview(tenancy(t)?), false),
        ["t", t, "index.json"] => (Route::Overview(tenancy(t)?), true),
        ["t", t, "access"] => (Route::Access(tenancy(t)?), false),
        ["t", t, "access.json"] => (Route::Access(tenancy(t)?), true),
        ["t", t, "users", id] | ["t", t, "users", id, ""] => {
            (Route::User(tenancy(t)?, segment(id)?), false)
        }
        ["t", t, "users", id, "index.json"] => (Route::User(tenancy(t)?, segment(id)?), true),
        ["t", t, "graph"] => (Route::Graph(tenancy(t)?), false),
        ["t", t, "graph.json"] => (Route::Graph(tenancy(t)?), true),
        ["t", t, "expiries"] => (Route::Expiries(tenancy(t)?), false),
        ["t", t, "expiries.json"] => (Route::Expiries(tenancy(t)?), true),
        ["t", t, "srs"] => (Route::Srs(tenancy(t)?), false),
        ["t", t, "srs.json"] => (Route::Srs(tenancy(t)?), true),
        ["t", t, "history"] => (Route::History(tenancy(t)?), false),
        ["t", t, "history.json"] => (Route::History(tenancy(t)?), true),
        ["t", t, "history", serial] => {
            let (serial, json) = match serial.strip_suffix(".json") {
                Some(s) => (s, true),
                None => (*serial, false),
            };
            if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_digit()) {
                return Err(not_found());
            }
            let serial = serial.parse().map_err(|_| not_found())?;
            (Route::Entry(tenancy(t)?, serial), json)
        }
        _ => return Err(not_found()),
    })
}

/// A path as an error message shows it: cut short, control characters
/// escaped.
fn shown(path: &str) -> String {
    let cut: String = path.chars().take(200).collect();
    crate::diag::escape_control(&cut).into_owned()
}

/// Whether the client asks for JSON: a `.json` path, or an `Accept` that
/// names `application/json` and not `text/html`.
fn format_of(request: &Request<'_>, json_path: bool) -> Format {
    let accept = request.header("accept").unwrap_or_default();
    if json_path || (accept.contains("application/json") && !accept.contains("text/html")) {
        Format::Json
    } else {
        Format::Html
    }
}

/// Whether a client that is not let in is a browser, to be sent to the
/// login form rather than told `401`.
fn is_browser(request: &Request<'_>) -> bool {
    request
        .header("accept")
        .is_some_and(|a| a.contains("text/html"))
}

impl Handler for Site {
    fn handle(&self, request: &Request<'_>) -> Response {
        let response = self.answer(request);
        self.fill_session_slot(request, response)
    }

    fn headers(&self) -> &'static [(&'static str, &'static str)] {
        HEADERS
    }

    fn body_limit(&self, request: &Request<'_>) -> usize {
        if request.method == "POST" && matches!(&*request.path, "/login" | "/logout") {
            LOGIN_BODY
        } else {
            0
        }
    }

    fn stack_size(&self) -> usize {
        STACK_SIZE
    }
}

/// The headers of every answer, the server's own included: no script but
/// this site's, no sniffing of types, no referrer, no framing.
pub const HEADERS: &[(&str, &str)] = &[
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Vary", "Accept, Cookie, Authorization"),
];

impl Site {
    /// The day pages are read on.
    fn today(&self) -> Result<crate::model::Date, crate::engine::Error> {
        match self.day {
            Some(day) => Ok(day),
            None => clock::today(),
        }
    }

    fn answer(&self, request: &Request<'_>) -> Response {
        let path = &*request.path;
        let method = request.method;
        let reading = method == "GET" || method == "HEAD";
        if path == "/login" {
            return match method {
                "POST" => self.log_in(request),
                _ if reading => self.login_form(request),
                _ => not_allowed("GET, HEAD, POST"),
            };
        }
        if path == "/logout" {
            return match method {
                "POST" => self.log_out(request),
                _ => not_allowed("POST"),
            };
        }
        if !reading {
            return not_allowed("GET, HEAD");
        }
        if let Some(asset) = pages::asset(path) {
            return asset;
        }
        if let Auth::Token(token) = &self.auth
            && !token.admits(request)
        {
            return refused(request);
        }
        let (route, json_path) = match route(path) {
            Ok(found) => found,
            Err(problem) => return problem_page(&problem, format_of(request, false)),
        };
        let format = format_of(request, json_path);
        match self.page(&route, request, format) {
            Ok(response) => response,
            Err(problem) => problem_page(&problem, format),
        }
    }

    fn page(
        &self,
        route: &Route,
        request: &Request<'_>,
        format: Format,
    ) -> Result<Response, Problem> {
        let allowed: &[&str] = match route {
            Route::Access(_) => pages::access::PARAMETERS,
            Route::Expiries(_) => pages::expiries::PARAMETERS,
            Route::Srs(_) => pages::srs::PARAMETERS,
            Route::Entry(..) => pages::history::PARAMETERS,
            _ => &[],
        };
        let query = query::Query::parse(&request.query, allowed).map_err(Problem::bad_query)?;
        let Some(opened) = self.reader.open()? else {
            return Err(Problem::new(
                503,
                format!(
                    "there is no state at `{}` yet: `supportctl apply` makes it",
                    self.reader.db()
                ),
            ));
        };
        let today = self.today()?;
        let context = pages::Context {
            opened: &opened,
            today,
            expiring_within: self.expiring_within,
            format,
        };
        match route {
            Route::Home => pages::overview::home(&context),
            Route::Overview(tenancy) => pages::overview::overview(&context, tenancy),
            Route::Access(tenancy) => pages::access::access(&context, tenancy, &query),
            Route::User(tenancy, id) => pages::user::user(&context, tenancy, id),
            Route::Graph(tenancy) => pages::graph::graph(&context, tenancy),
            Route::Expiries(tenancy) => pages::expiries::expiries(&context, tenancy, &query),
            Route::Srs(tenancy) => pages::srs::srs(&context, tenancy, &query),
            Route::History(tenancy) => pages::history::history(&context, tenancy),
            Route::Entry(tenancy, serial) => {
                pages::history::entry(&context, tenancy, *serial, &query)
            }
        }
    }

    /// `GET /login`: the form, or back home when no login is needed or
    /// this browser has a session.
    fn login_form(&self, request: &Request<'_>) -> Response {
        match &self.auth {
            Auth::Token(token) if !token.admits(request) => pages::login::form(200, None),
            _ => redirect("/"),
        }
    }

    /// `POST /logout`: the browser's session ends, and it is sent to the
    /// login form.
    fn log_out(&self, request: &Request<'_>) -> Response {
        if from_another_site(request) {
            return pages::login::form(403, Some("this form was posted from another site"));
        }
        if let Auth::Token(token) = &self.auth {
            token.end_session(request);
        }
        redirect("/login").with_header("Set-Cookie", auth::ended_cookie())
    }

    /// An HTML page's [`html::SESSION_SLOT`] filled: the logout form for a
    /// browser in a session, nothing otherwise.
    fn fill_session_slot(&self, request: &Request<'_>, mut response: Response) -> Response {
        if !response.content_type.starts_with("text/html") {
            return response;
        }
        let slot = html::SESSION_SLOT.as_bytes();
        let Some(at) = response
            .body
            .windows(slot.len())
            .position(|window| window == slot)
        else {
            return response;
        };
        let form = match &self.auth {
            Auth::Token(token) if token.in_session(request) => html::LOGOUT_FORM.as_bytes(),
            _ => b"",
        };
        response
            .body
            .splice(at..at + slot.len(), form.iter().copied());
        response
    }

    /// `POST /login`: the token typed into the form opens a session.
    fn log_in(&self, request: &Request<'_>) -> Response {
        let Auth::Token(token) = &self.auth else {
            return redirect("/");
        };
        if from_another_site(request) {
            return pages::login::form(403, Some("this form was posted from another site"));
        }
        let given = std::str::from_utf8(request.body)
            .ok()
            .and_then(|body| {
                body.split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(name, _)| *name == "token")
                    .and_then(|(_, value)| html::decode(value, true))
            })
            .unwrap_or_default();
        if !token.is_token(given.trim()) {
            tracing::info!("web view: a login with a wrong token");
            return pages::login::form(401, Some("that is not the token"));
        }
        match token.open_session() {
            Some(id) => redirect("/").with_header("Set-Cookie", auth::session_cookie(&id)),
            None => pages::login::form(
                500,
                Some("no session could be made: the system gave no randomness"),
            ),
        }
    }
}

/// Whether a form was posted from another site's page, by what the
/// browser says: `Sec-Fetch-Site`, or an `Origin` of another host. (Every
/// page here is sent with `Referrer-Policy: no-referrer`, under which a
/// browser posts this site's own forms with `Origin: null`: that is not
/// taken for another site.)
fn from_another_site(request: &Request<'_>) -> bool {
    if let Some(site) = request.header("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (request.header("origin"), request.header("host")) {
        (Some(origin), Some(host)) if origin != "null" => {
            origin.split_once("://").map_or(origin, |(_, h)| h) != host
        }
        _ => false,
    }
}

/// `303 See Other` to `to`.
fn redirect(to: &str) -> Response {
    Response::text(303, format!("see {to}")).with_header("Location", to)
}

fn not_allowed(allow: &'static str) -> Response {
    Response::text(405, format!("method not allowed; use {allow}")).with_header("Allow", allow)
}

/// The answer to a request without the token or a session: a browser is
/// sent to the login form, any other client told `401`.
fn refused(request: &Request<'_>) -> Response {
    if is_browser(request) && format_of(request, false) == Format::Html {
        return redirect("/login");
    }
    let message =
        "this page needs the token: send `Authorization: Bearer TOKEN`, or log in at /login";
    let response = match format_of(request, request.path.ends_with(".json")) {
        Format::Json => Response::new(401, JSON, error_json(401, message)),
        Format::Html => Response::text(401, message),
    };
    response.with_header("WWW-Authenticate", "Bearer realm=\"supportctl\"")
}

fn error_json(status: u16, message: &str) -> String {
    crate::report::pretty(&serde_json::json!({ "status": status, "error": message }))
}

/// The page of a problem, as HTML or JSON.
fn problem_page(problem: &Problem, format: Format) -> Response {
    match format {
        Format::Json => Response::new(
            problem.status,
            JSON,
            error_json(problem.status, &problem.message),
        ),
        Format::Html => {
            let title = match problem.status {
                400 => "Bad request",
                404 => "Not found",
                503 => "Unavailable",
                _ => "Error",
            };
            let mut main = Html::new();
            main.raw("<h1>")
                .text(title)
                .raw("</h1>\n<p id=\"problem\" class=\"problem\">")
                .text(&problem.message)
                .raw("</p>\n<p><a href=\"/\">Back to the overview</a></p>\n");
            Response::new(problem.status, HTML, html::page(title, None, &main))
        }
    }
}

/// The navigation of a tenancy's page.
fn nav(tenancy: &str, section: Section) -> Option<(&str, Section)> {
    Some((tenancy, section))
}

#[cfg(test)]
mod tests;
