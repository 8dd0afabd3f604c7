//! A real headless Chromium, driven through `chromedriver` over WebDriver
//! (the W3C protocol: JSON over HTTP), for the tests that use supportctl's
//! web view as a person would (issue 21): open a page, follow a link, type
//! into a filter, read a table, take a screenshot, time the first paint.
//!
//! Self-contained (it names nothing of supportctl's), so that a benchmark can
//! include it by `#[path]` as `tests/it/` does. The client is the few
//! WebDriver commands the tests use, over `ureq` and `serde_json`; a
//! WebDriver crate would bring an async runtime for them.
//!
//! **Finding the tools.** `chromedriver` is `SUPPORTCTL_TEST_CHROMEDRIVER`,
//! else `/usr/bin/chromedriver`, else the first on `PATH`; the browser is
//! `SUPPORTCTL_TEST_CHROMIUM`, else `/usr/bin/chromium`, else the first
//! `chromium` on `PATH` (Debian's `chromium-driver` and `chromium` packages,
//! which `.ci/run` installs: a driver drives only a browser of its own
//! version, so the pair in `/usr/bin` comes before anything else on `PATH`).
//! Without them a test is skipped with one line on stderr, except in CI
//! (`CI` set and not empty, `0` or `false`), where it fails: a check that CI
//! never runs would pass unseen. Found but failing to start is always a
//! failure.
//!
//! **Starting.** `chromedriver --port=0` picks a free port and says which on
//! its first lines; the harness waits for its `/status` to be ready, then
//! opens a session on a browser with a new, empty profile in a temporary
//! folder. The browser runs headless, without a sandbox (the tests may run
//! as root), and without any of the traffic of its own it would otherwise
//! start (updates, sync, field trials, QUIC): the tests run with no network
//! but loopback. `HOME`, `TMPDIR` and the XDG folders of the driver, which
//! the browser inherits, are in that temporary folder too, so neither
//! writes anything (crash reports, caches, scratch folders) outside it.
//!
//! **Cleanup.** A [`Browser`] belongs to the test that started it. Dropped,
//! it saves a screenshot when the test is failing, ends the session (the
//! browser quits), kills the driver's process group (the driver and any
//! browser process left) and removes the temporary folder. The driver dies
//! with the thread that started it (`PR_SET_PDEATHSIG`), which is the test's,
//! so a test process that is killed leaves no driver behind; a browser it
//! had open may outlive it.
//!
//! **Screenshots** go to `target/browser-screenshots/` under the crate, as
//! `TEST-SHOT.png`, where CI keeps them as artifacts.

use std::io::{self, BufRead as _, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long anything the harness waits for may take: the driver to start,
/// a session, a page to load, an element to appear.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The size of the page's viewport, in CSS pixels, and so of a screenshot.
pub const VIEWPORT: (u32, u32) = (1280, 900);

/// The Enter key, for [`Element::send_keys`]: it submits a form.
pub const ENTER: &str = "\u{E007}";

/// The flags the browser runs with, besides its profile and window size.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    // The tests may run as root, where the sandbox cannot start.
    "--no-sandbox",
    "--disable-gpu",
    // The browser's own traffic: with no network but loopback, its
    // connections are refused, and the browser may wait on them.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // Containers often have a small /dev/shm.
    "--disable-dev-shm-usage",
];

/// The key of an element's reference in WebDriver's JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How much of the driver's output is kept for a failure's message.
const LOG_KEPT: usize = 16 * 1024;

/// The programs a [`Browser`] runs.
#[derive(Debug, Clone)]
pub struct Tools {
    pub chromedriver: PathBuf,
    pub chromium: PathBuf,
}

/// Whether this runs in CI: `CI` set to anything but empty, `0` or `false`
/// (CI services set `CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// `chromedriver` and the browser, or what is missing and how to get it.
pub fn find() -> Result<Tools, String> {
    let chromedriver = locate(
        "SUPPORTCTL_TEST_CHROMEDRIVER",
        "/usr/bin/chromedriver",
        "chromedriver",
    );
    let chromium = locate("SUPPORTCTL_TEST_CHROMIUM", "/usr/bin/chromium", "chromium");
    match (chromedriver, chromium) {
        (Some(chromedriver), Some(chromium)) => Ok(Tools {
            chromedriver,
            chromium,
        }),
        (chromedriver, chromium) => {
            let missing: Vec<&str> = [
                chromedriver.is_none().then_some("chromedriver"),
                chromium.is_none().then_some("chromium"),
            ]
            .into_iter()
            .flatten()
            .collect();
            Err(format!(
                "{} missing (install Debian's `chromium` and `chromium-driver`, as .ci/run \
                 does, or set SUPPORTCTL_TEST_CHROMEDRIVER and SUPPORTCTL_TEST_CHROMIUM)",
                missing.join(" and ")
            ))
        }
    }
}

/// `var` when set, else `usual` when it is a file, else `name` on `PATH`.
fn locate(var: &str, usual: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        // Named by hand: a wrong path is an error at start, not a skip.
        return Some(path.into());
    }
    if Path::new(usual).is_file() {
        return Some(usual.into());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A browser for the test `test` (its name prefixes its screenshots):
/// `None` (said on stderr) when the tools are missing and the test is to be
/// skipped; a failure when they are missing in CI, or do not start.
#[track_caller]
pub fn or_skip(test: &str) -> Option<Browser> {
    match find() {
        Ok(tools) => Some(
            Browser::start(test, &tools)
                .unwrap_or_else(|e| panic!("the browser for `{test}` did not start: {e}")),
        ),
        Err(missing) => {
            assert!(!in_ci(), "{missing}, and CI is set");
            eprintln!("skipped: {missing}");
            None
        }
    }
}

/// How long a browser took to be ready.
#[derive(Debug, Clone, Copy)]
pub struct Startup {
    /// From spawning `chromedriver` to its `/status` saying ready.
    pub driver: Duration,
    /// From then to a session open on a running browser.
    pub session: Duration,
}

/// The paint timings of the page shown, from the start of its navigation
/// (the Paint Timing API).
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    pub first_paint: Duration,
    pub first_contentful_paint: Duration,
}

/// A WebDriver error: its code (`no such element`, …) and message.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// A WebDriver session on a headless Chromium, with the driver and the
/// profile folder it owns.
pub struct Browser {
    test: String,
    agent: ureq::Agent,
    /// `http://127.0.0.1:PORT`, the driver.
    driver_url: String,
    /// `/session/ID`, empty until the session is open.
    session: String,
    driver: Child,
    /// The end of what the driver printed, for failure messages.
    driver_log: Arc<Mutex<String>>,
    /// Holds the profile, and `HOME` for the driver and the browser.
    folder: tempfile::TempDir,
    startup: Startup,
}

/// One element of the page, as WebDriver references it.
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
    /// The selector that found it, for failure messages.
    css: String,
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Post,
    Delete,
}

impl Browser {
    /// Starts `chromedriver` and opens a session on a new headless browser.
    pub fn start(test: &str, tools: &Tools) -> Result<Browser, String> {
        let began = Instant::now();
        let folder = tempfile::Builder::new()
            .prefix("supportctl-browser.")
            .tempdir()
            .map_err(|e| format!("no temporary folder for the browser: {e}"))?;
        let home = folder.path().join("home");
        let profile = folder.path().join("profile");
        let tmp = folder.path().join("tmp");
        for dir in [&home, &profile, &tmp] {
            std::fs::create_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let (driver, driver_log, port) = spawn_driver(&tools.chromedriver, &home, &tmp)?;
        let mut browser = Browser {
            test: test.to_owned(),
            agent: agent(DEADLINE + Duration::from_secs(30)),
            driver_url: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            driver,
            driver_log,
            folder,
            startup: Startup {
                driver: Duration::ZERO,
                session: Duration::ZERO,
            },
        };
        // From here a failure drops `browser`, which kills the driver.
        browser.wait_until_ready()?;
        browser.startup.driver = began.elapsed();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|&f| f.to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push(format!("--window-size={},{}", VIEWPORT.0, VIEWPORT.1));
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": {
                        "implicit": 0,
                        "pageLoad": DEADLINE.as_millis() as u64,
                        "script": DEADLINE.as_millis() as u64,
                    },
                    "goog:chromeOptions": {
                        "binary": tools.chromium,
                        "args": args,
                    },
                },
            },
        });
        let opened = browser
            .call(Method::Post, "/session", Some(capabilities))
            .map_err(|e| format!("no session: {e}{}", browser.log_tail()))?;
        let id = opened["sessionId"]
            .as_str()
            .ok_or_else(|| format!("a session without an id: {opened}"))?;
        browser.session = format!("/session/{id}");
        browser.fit_viewport()?;
        browser.startup.session = began.elapsed() - browser.startup.driver;
        Ok(browser)
    }

    /// Sizes the window so that the page's viewport is [`VIEWPORT`]: headless
    /// Chromium keeps room for a toolbar it does not draw, so a window of
    /// that size shows less of the page.
    fn fit_viewport(&self) -> Result<(), String> {
        let chrome = self
            .call(
                Method::Post,
                &format!("{}/execute/sync", self.session),
                Some(json!({
                    "script": "return [window.outerWidth - window.innerWidth, \
                               window.outerHeight - window.innerHeight]",
                    "args": [],
                })),
            )
            .map_err(|e| format!("the window's size: {e}"))?;
        let extra = |i: usize| chrome[i].as_u64().unwrap_or(0);
        self.call(
            Method::Post,
            &format!("{}/window/rect", self.session),
            Some(json!({
                "width": u64::from(VIEWPORT.0) + extra(0),
                "height": u64::from(VIEWPORT.1) + extra(1),
            })),
        )
        .map_err(|e| format!("sizing the window: {e}"))?;
        Ok(())
    }

    /// Polls the driver's `/status` until it is ready for a session.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match self.call(Method::Get, "/status", None) {
                Ok(status) if status["ready"] == json!(true) => return Ok(()),
                got if Instant::now() > deadline => {
                    return Err(format!(
                        "chromedriver was not ready within {} s (last: {got:?}){}",
                        DEADLINE.as_secs(),
                        self.log_tail()
                    ));
                }
                _ => {}
            }
            if let Ok(Some(status)) = self.driver.try_wait() {
                return Err(format!("chromedriver exited ({status}){}", self.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How long this browser took to be ready.
    pub fn startup(&self) -> Startup {
        self.startup
    }

    /// The temporary folder holding the profile (removed on drop).
    pub fn folder(&self) -> &Path {
        self.folder.path()
    }

    /// The process id of `chromedriver`.
    pub fn driver_pid(&self) -> u32 {
        self.driver.id()
    }

    /// Opens `url` and waits until it has loaded.
    #[track_caller]
    pub fn goto(&self, url: &str) {
        self.command(Method::Post, "/url", Some(json!({ "url": url })));
    }

    /// The URL of the page shown.
    #[track_caller]
    pub fn current_url(&self) -> String {
        string(self.command(Method::Get, "/url", None))
    }

    /// The title of the page shown.
    #[track_caller]
    pub fn title(&self) -> String {
        string(self.command(Method::Get, "/title", None))
    }

    /// The first element `css` matches; a failure when none does.
    #[track_caller]
    pub fn find(&self, css: &str) -> Element<'_> {
        self.try_find(css)
            .unwrap_or_else(|| panic!("no element matches `{css}` on {}", self.current_url()))
    }

    /// The first element `css` matches, if any.
    #[track_caller]
    pub fn try_find(&self, css: &str) -> Option<Element<'_>> {
        self.find_in("", css)
    }

    /// Every element `css` matches, in document order.
    #[track_caller]
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        self.find_all_in("", css)
    }

    /// The first element `css` matches, waiting up to `timeout` for one.
    #[track_caller]
    pub fn wait_for(&self, css: &str, timeout: Duration) -> Element<'_> {
        self.wait_until(&format!("an element matching `{css}`"), timeout, |b| {
            b.try_find(css)
        })
    }

    /// What `condition` gives once it gives something, asking again every
    /// 50 ms for up to `timeout`; a failure naming `what` after that.
    #[track_caller]
    pub fn wait_until<'b, T>(
        &'b self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut(&'b Browser) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = condition(self) {
                return found;
            }
            if Instant::now() > deadline {
                panic!("no {what} within {:?} on {}", timeout, self.current_url());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `script` as the body of a function in the page, and gives what
    /// it returns (`return document.title`).
    #[track_caller]
    pub fn execute(&self, script: &str) -> Value {
        self.command(
            Method::Post,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// The first paint and first contentful paint of the page shown,
    /// waiting for both to be recorded.
    #[track_caller]
    pub fn paint(&self) -> Paint {
        let script = "return performance.getEntriesByType('paint')\
                      .map(entry => [entry.name, entry.startTime]);";
        self.wait_until("paint timings", DEADLINE, |b| {
            let entries = b.execute(script);
            let at = |name: &str| {
                entries.as_array()?.iter().find_map(|entry| {
                    (entry[0] == name)
                        .then(|| entry[1].as_f64())
                        .flatten()
                        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
                })
            };
            Some(Paint {
                first_paint: at("first-paint")?,
                first_contentful_paint: at("first-contentful-paint")?,
            })
        })
    }

    /// Saves a PNG of the window as `target/browser-screenshots/TEST-SHOT.png`
    /// and gives its path.
    #[track_caller]
    pub fn screenshot(&self, shot: &str) -> PathBuf {
        self.try_screenshot(shot)
            .unwrap_or_else(|e| panic!("no screenshot `{shot}`: {e}"))
    }

    fn try_screenshot(&self, shot: &str) -> Result<PathBuf, String> {
        let encoded = self
            .call(Method::Get, &format!("{}/screenshot", self.session), None)
            .map_err(|e| e.to_string())?;
        let png = decode_base64(encoded.as_str().unwrap_or_default())?;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("{}-{shot}.png", self.test));
        std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    #[track_caller]
    fn find_in(&self, under: &str, css: &str) -> Option<Element<'_>> {
        let found = self.call(
            Method::Post,
            &format!("{}{under}/element", self.session),
            Some(json!({ "using": "css selector", "value": css })),
        );
        match found {
            Ok(reference) => Some(self.element(&reference, css)),
            Err(failure) if failure.error == "no such element" => None,
            Err(failure) => panic!("finding `{css}`: {failure}"),
        }
    }

    #[track_caller]
    fn find_all_in(&self, under: &str, css: &str) -> Vec<Element<'_>> {
        let found = self.command(
            Method::Post,
            &format!("{under}/elements"),
            Some(json!({ "using": "css selector", "value": css })),
        );
        let Value::Array(references) = found else {
            panic!("finding every `{css}`: not a list: {found}");
        };
        references.iter().map(|r| self.element(r, css)).collect()
    }

    #[track_caller]
    fn element(&self, reference: &Value, css: &str) -> Element<'_> {
        let id = reference[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("finding `{css}`: not an element: {reference}"));
        Element {
            browser: self,
            id: id.to_owned(),
            css: css.to_owned(),
        }
    }

    /// A command of this session (`path` under `/session/ID`); a failure
    /// when the driver answers with an error.
    #[track_caller]
    fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("{}{path}", self.session), body)
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
    }

    /// One request to the driver: the `value` of its answer, or the error
    /// it names.
    fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.driver_url);
        let sent = match method {
            Method::Get => self.agent.get(&url).call(),
            Method::Delete => self.agent.delete(&url).call(),
            // WebDriver wants a JSON object even when it reads nothing.
            Method::Post => self
                .agent
                .post(&url)
                .header("content-type", "application/json; charset=utf-8")
                .send(body.unwrap_or_else(|| json!({})).to_string()),
        };
        let transport = |e: &dyn std::fmt::Display| Failure {
            error: "transport".to_owned(),
            message: format!("{url}: {e}"),
        };
        let mut response = sent.map_err(|e| transport(&e))?;
        // A screenshot is a large string: allow far more than ureq's 10 MB.
        let text = response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| transport(&e))?;
        let answer: Value = serde_json::from_str(&text).map_err(|e| transport(&e))?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if response.status().is_success() {
            Ok(value)
        } else {
            Err(Failure {
                error: value["error"]
                    .as_str()
                    .unwrap_or("unknown error")
                    .to_owned(),
                message: value["message"].as_str().unwrap_or(&text).to_owned(),
            })
        }
    }

    /// The end of what the driver printed, as the tail of a message.
    fn log_tail(&self) -> String {
        let log = self.driver_log.lock().unwrap_or_else(|e| e.into_inner());
        if log.trim().is_empty() {
            String::new()
        } else {
            format!("\n--- chromedriver said ---\n{}", log.trim_end())
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.session.is_empty() {
            match self.try_screenshot("failed") {
                Ok(path) => eprintln!("the page as the test failed: {}", path.display()),
                Err(e) => eprintln!("no screenshot of the failure: {e}"),
            }
        }
        if !self.session.is_empty() {
            // The browser quits with its session; a driver that does not
            // answer soon is killed below all the same.
            self.agent = agent(Duration::from_secs(10));
            let _ = self.call(Method::Delete, &self.session.clone(), None);
        }
        // The driver leads a process group of its own, which any browser
        // process still running is in.
        let group = self.driver.id() as libc::pid_t;
        // SAFETY: a plain system call on a process group this browser made.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.driver.wait();
        // `folder` is removed as it drops, after the processes writing in it
        // are gone.
    }
}

impl<'b> Element<'b> {
    /// The text of the element as rendered (`innerText`).
    #[track_caller]
    pub fn text(&self) -> String {
        string(self.command(Method::Get, "/text", None))
    }

    /// Clicks the element (scrolled into view first).
    #[track_caller]
    pub fn click(&self) {
        self.command(Method::Post, "/click", None);
    }

    /// Empties an input.
    #[track_caller]
    pub fn clear(&self) {
        self.command(Method::Post, "/clear", None);
    }

    /// Types `text` into the element ([`ENTER`] presses Enter).
    #[track_caller]
    pub fn send_keys(&self, text: &str) {
        self.command(Method::Post, "/value", Some(json!({ "text": text })));
    }

    /// The attribute `name` as written in the page, if present.
    #[track_caller]
    pub fn attribute(&self, name: &str) -> Option<String> {
        self.command(Method::Get, &format!("/attribute/{name}"), None)
            .as_str()
            .map(str::to_owned)
    }

    /// The DOM property `name` as it is now (an input's `value` as typed).
    #[track_caller]
    pub fn property(&self, name: &str) -> Value {
        self.command(Method::Get, &format!("/property/{name}"), None)
    }

    /// The first element `css` matches inside this one; a failure when none
    /// does.
    #[track_caller]
    pub fn find(&self, css: &str) -> Element<'b> {
        self.browser
            .find_in(&format!("/element/{}", self.id), css)
            .unwrap_or_else(|| panic!("no element matches `{css}` inside `{}`", self.css))
    }

    /// Every element `css` matches inside this one.
    #[track_caller]
    pub fn find_all(&self, css: &str) -> Vec<Element<'b>> {
        self.browser
            .find_all_in(&format!("/element/{}", self.id), css)
    }

    #[track_caller]
    fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let path = format!("/element/{}{path}", self.id);
        self.browser
            .call(method, &format!("{}{path}", self.browser.session), body)
            .unwrap_or_else(|e| panic!("WebDriver {path} on `{}`: {e}", self.css))
    }
}

/// Where screenshots go: `target/browser-screenshots/` under the crate.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots")
}

/// An HTTP client for the driver: no proxy, error statuses as answers (their
/// body says the WebDriver error), and a timeout.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// Spawns `chromedriver --port=0` with `HOME` in `home` and `TMPDIR` in
/// `tmp`, and reads the port it listens on from what it prints: the driver,
/// its log (kept filling from then on) and the port.
fn spawn_driver(
    chromedriver: &Path,
    home: &Path,
    tmp: &Path,
) -> Result<(Child, Arc<Mutex<String>>, u16), String> {
    let mut command = Command::new(chromedriver);
    command
        .arg("--port=0")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        // The driver's and the browser's own temporary folders, which they
        // may not remove when killed.
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: one system call between fork and exec, async-signal safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) == 0
            {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
    let mut driver = command
        .spawn()
        .map_err(|e| format!("{} not run: {e}", chromedriver.display()))?;
    let log = Arc::new(Mutex::new(String::new()));
    let (port_tx, port_rx) = mpsc::channel();
    let stdout = driver.stdout.take().expect("stdout is piped");
    let stderr = driver.stderr.take().expect("stderr is piped");
    keep_log(stdout, Arc::clone(&log), Some(port_tx));
    keep_log(stderr, Arc::clone(&log), None);
    // The sender drops, ending the wait, if the driver exits first.
    let port = port_rx.recv_timeout(DEADLINE);
    match port {
        Ok(port) => Ok((driver, log, port)),
        Err(e) => {
            let _ = driver.kill();
            let status = driver.wait().map(|s| s.to_string()).unwrap_or_default();
            let said = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
            Err(format!(
                "{} did not say its port ({e}; {status})\n--- it said ---\n{said}",
                chromedriver.display()
            ))
        }
    }
}

/// Reads `from` to its end on a thread of its own, keeping the end of it in
/// `log` and sending the port of the line `ChromeDriver was started
/// successfully on port N.` to `port`.
fn keep_log(
    from: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    port: Option<mpsc::Sender<u16>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &port
                && let Some(number) = line
                    .split_once("started successfully on port ")
                    .and_then(|(_, rest)| rest.trim_end_matches('.').trim().parse().ok())
            {
                let _ = tx.send(number);
            }
            let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
            log.push_str(&line);
            log.push('\n');
            if log.len() > LOG_KEPT {
                let cut = log.len() - LOG_KEPT;
                let cut = (cut..log.len())
                    .find(|&i| log.is_char_boundary(i))
                    .unwrap_or(0);
                log.drain(..cut);
            }
        }
    });
}

#[track_caller]
fn string(value: Value) -> String {
    match value {
        Value::String(text) => text,
        other => panic!("WebDriver answered {other}, not a string"),
    }
}

/// Standard base64 (the encoding of a WebDriver screenshot).
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut held) = (0u32, 0u32);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return Err(format!("not base64: byte {c:#04x}")),
        };
        bits = (bits << 6) | u32::from(sextet);
        held += 6;
        if held >= 8 {
            held -= 8;
            bytes.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    Ok(bytes)
}
