//! Issue 21: the web view's access page, timed on the state a case applied.
//!
//! `supportctl --db STATE --log-format json serve --listen 127.0.0.1:0`, the
//! same release binary, on the state as the case left it. `serve` reads
//! every tenancy ahead of requests (its refresher), once it starts and
//! after each apply; each page is timed on two servers of its own:
//!
//! - **at start**: asked the moment the server says it listens, so the
//!   request waits for the tenancy's read (or does it): what a person who
//!   opens the page in the 2 s after an apply waits for, too; that read's
//!   time is reported beside it (its log line's `total_s`);
//! - **read ahead**: on a second server, asked once the server logged
//!   `web view: read the tenancy`: what the first person to open the page
//!   waits for;
//!   then `WARM_RUNS` times more, of which the median is reported.
//!
//! Each figure is the wall time of the HTTP round trip over loopback, from
//! the request to the last byte of the body, with `ureq`. Pages:
//! `/t/acme/access` (the first 500 rows) at every size, and at 100k users
//! and more also `?page=100`, a middle page. Then, in benchmark mode and
//! when `chromedriver` and `chromium` are there, the first paint and first
//! contentful paint of the first page in headless Chromium
//! (`tests/support/browser.rs`): once on a server just started (cold), once
//! more on the same server (warm). The smoke run skips the browser, to keep
//! CI quick.

use std::io::{self, BufRead as _, BufReader, Read as _};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::browser;
use crate::generate::TENANCY;

/// Requests after the first on a server that read ahead, of which the
/// median is reported.
pub const WARM_RUNS: usize = 10;

/// One page's HTTP figures.
#[derive(Debug, Clone, Serialize)]
pub struct PageResult {
    /// The path and query asked for.
    pub path: String,
    /// The request sent the moment a server starts: it waits for the
    /// state's read.
    pub start_s: f64,
    /// How long the server took to read the tenancy (its log's `total_s`).
    pub read_s: f64,
    /// The first request to a server that has read the tenancy.
    pub first_s: f64,
    /// The median of the `WARM_RUNS` requests after it.
    pub warm_median_s: f64,
    /// The body's size, in bytes.
    pub bytes: u64,
}

/// First paint of the access page in headless Chromium.
#[derive(Debug, Clone, Serialize)]
pub struct PaintResult {
    /// On a server just started: the page's request reads the state.
    pub cold_first_paint_s: f64,
    pub cold_first_contentful_paint_s: f64,
    /// The same page opened again on the same server.
    pub warm_first_paint_s: f64,
    pub warm_first_contentful_paint_s: f64,
}

/// The web view's figures of one case.
#[derive(Debug, Clone, Serialize)]
pub struct WebResult {
    pub pages: Vec<PageResult>,
    pub paint: Option<PaintResult>,
    /// Why there is no paint, when there is none.
    pub paint_skipped: Option<String>,
}

/// A running `serve`, killed when dropped.
struct Served {
    child: Child,
    base: String,
    /// Its log, still to be read.
    log: Option<BufReader<ChildStderr>>,
    /// The lines it logged before it said where it listens.
    before: String,
}

impl Served {
    /// Waits for the log line saying the tenancy was read, and returns how
    /// long the read took.
    fn wait_read(&mut self) -> io::Result<f64> {
        if let Some(total) = self
            .before
            .lines()
            .filter(|line| line.contains("web view: read the tenancy"))
            .find_map(|line| number(line, "total_s"))
        {
            return Ok(total);
        }
        let log = self.log.as_mut().expect("the log is read once");
        let started = Instant::now();
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            if log.read_line(&mut line)? == 0 || started.elapsed() > Duration::from_secs(60) {
                return Err(io::Error::other(format!(
                    "serve said no `web view: read the tenancy`; its stderr: {seen}"
                )));
            }
            seen.push_str(&line);
            if line.contains("web view: read the tenancy")
                && let Some(total) = number(&line, "total_s")
            {
                return Ok(total);
            }
        }
    }

    /// Whatever it logs from now on is drained, so that it never blocks on
    /// a full pipe.
    fn drain(&mut self) {
        if let Some(mut log) = self.log.take() {
            std::thread::spawn(move || {
                let _ = io::copy(&mut log, &mut io::sink());
            });
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve` with `command` (the binary, pointed at the state), and
/// waits for the line saying where it listens.
fn serve(mut command: Command) -> io::Result<Served> {
    command
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr);
    let mut seen = String::new();
    let started = Instant::now();
    let addr = loop {
        let mut line = String::new();
        if lines.read_line(&mut line)? == 0 || started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "serve said no `serving the web view`; its stderr: {seen}"
            )));
        }
        seen.push_str(&line);
        if line.contains("serving the web view")
            && let Some(addr) = field(&line, "addr")
        {
            break addr;
        }
    };
    let addr = addr.replace("0.0.0.0", "127.0.0.1");
    Ok(Served {
        child,
        base: format!("http://{addr}"),
        log: Some(lines),
        before: seen,
    })
}

/// The value of `"name"` anywhere in a JSON log line.
fn value(line: &str, name: &str) -> Option<serde_json::Value> {
    fn find(value: &serde_json::Value, name: &str) -> Option<serde_json::Value> {
        match value {
            serde_json::Value::Object(map) => map
                .get(name)
                .cloned()
                .or_else(|| map.values().find_map(|v| find(v, name))),
            _ => None,
        }
    }
    find(&serde_json::from_str(line.trim()).ok()?, name)
}

/// The string value of `"name"` in a JSON log line.
fn field(line: &str, name: &str) -> Option<String> {
    value(line, name)?.as_str().map(str::to_owned)
}

/// The number value of `"name"` in a JSON log line.
fn number(line: &str, name: &str) -> Option<f64> {
    value(line, name)?.as_f64()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// One GET, timed from the request to the body's last byte.
fn get(agent: &ureq::Agent, url: &str) -> io::Result<(f64, u64)> {
    let start = Instant::now();
    let mut response = agent
        .get(url)
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .call()
        .map_err(|e| io::Error::other(format!("GET {url}: {e}")))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .read_to_end(&mut body)
        .map_err(|e| io::Error::other(format!("GET {url}: {e}")))?;
    let wall = start.elapsed().as_secs_f64();
    if status != 200 {
        return Err(io::Error::other(format!(
            "GET {url}: status {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(500)])
        )));
    }
    Ok((wall, body.len() as u64))
}

/// Measures the web view on the state `command` points at (the binary and
/// its `--db`); `users` chooses the pages, `browser` whether to open one.
pub fn measure(
    command: impl Fn() -> Command,
    users: usize,
    browser: bool,
    tag: &str,
) -> io::Result<WebResult> {
    let agent = agent();
    let first = format!("/t/{TENANCY}/access");
    let mut paths = vec![first.clone()];
    if users >= 100_000 {
        paths.push(format!("/t/{TENANCY}/access?page=100"));
    }
    let mut pages = Vec::new();
    for path in paths {
        let (start_s, read_s, bytes) = {
            let mut served = serve(command())?;
            let url = format!("{}{path}", served.base);
            let (start_s, bytes) = get(&agent, &url)?;
            (start_s, served.wait_read()?, bytes)
        };
        let mut served = serve(command())?;
        served.wait_read()?;
        served.drain();
        let url = format!("{}{path}", served.base);
        let (first_s, _) = get(&agent, &url)?;
        let mut warm = Vec::new();
        for _ in 0..WARM_RUNS {
            warm.push(get(&agent, &url)?.0);
        }
        warm.sort_by(f64::total_cmp);
        let warm_median_s = warm[warm.len() / 2];
        eprintln!(
            "[{tag}] GET {path:<28} at start {start_s:>7.3} s (read {read_s:.3} s), read ahead {first_s:>7.3} s, warm median {warm_median_s:>7.3} s, {:.0} KiB",
            bytes as f64 / 1024.0
        );
        pages.push(PageResult {
            path,
            start_s,
            read_s,
            first_s,
            warm_median_s,
            bytes,
        });
    }
    let (paint, paint_skipped) = if !browser {
        (None, Some("smoke run: the browser is not started".into()))
    } else {
        match browser::find() {
            Err(missing) => {
                eprintln!("[{tag}] first paint skipped: {missing}");
                (None, Some(missing))
            }
            Ok(tools) => {
                let b = browser::Browser::start("bench", &tools).map_err(io::Error::other)?;
                let mut served = serve(command())?;
                served.drain();
                let url = format!("{}{first}", served.base);
                b.goto(&url);
                let cold = b.paint();
                b.goto("about:blank");
                b.goto(&url);
                let warm = b.paint();
                let paint = PaintResult {
                    cold_first_paint_s: cold.first_paint.as_secs_f64(),
                    cold_first_contentful_paint_s: cold.first_contentful_paint.as_secs_f64(),
                    warm_first_paint_s: warm.first_paint.as_secs_f64(),
                    warm_first_contentful_paint_s: warm.first_contentful_paint.as_secs_f64(),
                };
                eprintln!(
                    "[{tag}] first paint of {first}: cold {:.3} s (contentful {:.3}), warm {:.3} s (contentful {:.3})",
                    paint.cold_first_paint_s,
                    paint.cold_first_contentful_paint_s,
                    paint.warm_first_paint_s,
                    paint.warm_first_contentful_paint_s
                );
                (Some(paint), None)
            }
        }
    };
    Ok(WebResult {
        pages,
        paint,
        paint_skipped,
    })
}
