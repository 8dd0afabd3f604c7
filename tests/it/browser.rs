//! The browser harness (`webdriver`, from `tests/support/browser.rs`) against a tiny site
//! served from the test itself: a home page with a link, and a page of
//! people with a filter form (GET) over a table. They prove each thing the
//! tests of `supportctl serve` will do in a real headless Chromium: open a
//! page, follow a link, type into a filter and submit it, read a table,
//! take a screenshot, time the first paint, and leave nothing behind.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::webdriver::{self, Browser, DEADLINE, ENTER, VIEWPORT};

// ---- The harness ----

#[test]
fn a_link_is_followed_to_the_page_it_names() {
    let Some(browser) = webdriver::or_skip("harness-link") else {
        return;
    };
    let site = Site::start();
    browser.goto(&site.url("/"));
    assert_eq!(browser.title(), "Harness home");
    assert_eq!(browser.find("h1").text(), "Home");
    assert!(
        browser.try_find("#people").is_none(),
        "the home page has no table of people"
    );

    let link = browser.find("body > p").find("a");
    assert_eq!(link.text(), "people");
    assert_eq!(link.attribute("href").as_deref(), Some("/people"));
    assert_eq!(link.attribute("data-missing"), None);
    link.click();

    browser.wait_for("#people", DEADLINE);
    assert_eq!(browser.current_url(), site.url("/people"));
    assert_eq!(browser.title(), "People");
}

#[test]
fn a_filter_is_typed_submitted_and_the_table_read() {
    let Some(browser) = webdriver::or_skip("harness-filter") else {
        return;
    };
    let site = Site::start();
    browser.goto(&site.url("/people"));
    assert_eq!(
        rows(&browser),
        [
            ["alice", "Alice Martin", "administrator"],
            ["bob", "Bob Stone", "linked user"],
            ["carol", "Carol Diaz", "auditor"],
        ]
    );

    // Typed, and submitted with Enter: the form's GET goes to the server.
    let filter = browser.find("input[name=q]");
    filter.send_keys(&format!("ali{ENTER}"));
    navigated_to(&browser, &site.url("/people?q=ali"));
    assert_eq!(rows(&browser), [["alice", "Alice Martin", "administrator"]]);
    assert_eq!(
        browser.find("input[name=q]").property("value"),
        json!("ali"),
        "the filter shows what was typed"
    );

    // Emptied, typed again, and submitted with the form's button.
    let filter = browser.find("input[name=q]");
    filter.clear();
    filter.send_keys("bo");
    browser.find("form button[type=submit]").click();
    navigated_to(&browser, &site.url("/people?q=bo"));
    assert_eq!(rows(&browser), [["bob", "Bob Stone", "linked user"]]);
    assert_eq!(browser.find("#summary").text(), "1 of 3 people");
}

#[test]
fn a_screenshot_is_a_png_of_the_viewport_and_the_first_paint_is_timed() {
    let Some(browser) = webdriver::or_skip("harness-screenshot") else {
        return;
    };
    let site = Site::start();
    let asked = Instant::now();
    browser.goto(&site.url("/people"));
    let paint = browser.paint();
    let waited = asked.elapsed();
    eprintln!("first paint {paint:?}, page asked for {waited:?} before");
    assert!(
        Duration::ZERO < paint.first_paint
            && paint.first_paint <= paint.first_contentful_paint
            && paint.first_contentful_paint < waited,
        "the page painted after its navigation began and before the harness saw it: {paint:?} \
         within {waited:?}"
    );

    assert_eq!(
        browser.execute("return document.querySelectorAll('#people tbody tr').length"),
        json!(3)
    );
    assert_eq!(browser.execute("return document.title"), json!("People"));

    let path = browser.screenshot("people");
    assert_eq!(
        path,
        webdriver::screenshot_dir().join("harness-screenshot-people.png")
    );
    assert_eq!(
        browser.execute("return [window.innerWidth, window.innerHeight]"),
        json!(VIEWPORT),
        "the page is shown at the harness's viewport size"
    );
    assert_eq!(
        png_size(&path),
        VIEWPORT,
        "{} shows the viewport",
        path.display()
    );
}

#[test]
fn a_failing_test_leaves_a_screenshot_of_its_page() {
    let Some(browser) = webdriver::or_skip("harness-failing") else {
        return;
    };
    let shot = webdriver::screenshot_dir().join("harness-failing-failed.png");
    if let Err(e) = std::fs::remove_file(&shot) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::NotFound,
            "{}: {e}",
            shot.display()
        );
    }
    let site = Site::start();
    // The browser is dropped as the panic unwinds, as in a failing test.
    let failed = std::panic::catch_unwind(AssertUnwindSafe(move || {
        browser.goto(&site.url("/people"));
        panic!("a failure on purpose, to leave a screenshot");
    }));
    assert!(failed.is_err());
    assert_eq!(
        png_size(&shot),
        VIEWPORT,
        "{} shows the page",
        shot.display()
    );
}

#[test]
fn a_dropped_browser_leaves_no_process_and_no_folder() {
    let Some(browser) = webdriver::or_skip("harness-drop") else {
        return;
    };
    let startup = browser.startup();
    eprintln!(
        "chromedriver ready in {:?}, then a session in {:?}",
        startup.driver, startup.session
    );
    let site = Site::start();
    browser.goto(&site.url("/"));
    let folder = browser.folder().to_owned();
    let driver = browser.driver_pid();
    assert!(
        !processes_naming(&folder).is_empty(),
        "the browser runs with its profile in {}",
        folder.display()
    );

    drop(browser);
    assert!(!folder.exists(), "{} is removed", folder.display());
    assert!(
        !Path::new(&format!("/proc/{driver}")).exists(),
        "chromedriver ({driver}) has ended"
    );
    // The browser's crash handler, outside the driver's process group, ends
    // on its own once the browser is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left = processes_naming(&folder);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        left = processes_naming(&folder);
    }
    assert!(left.is_empty(), "processes left running: {left:#?}");
}

// ---- Reading pages ----

/// The cells of the rows of the table of people, as text.
fn rows(browser: &Browser) -> Vec<Vec<String>> {
    browser
        .find_all("#people tbody tr")
        .iter()
        .map(|row| row.find_all("td").iter().map(|cell| cell.text()).collect())
        .collect()
}

/// Waits until the browser shows `url`.
#[track_caller]
fn navigated_to(browser: &Browser, url: &str) {
    browser.wait_until(&format!("page at {url}"), DEADLINE, |b| {
        (b.current_url() == url).then_some(())
    });
}

/// The width and height a PNG file says it has; a failure when it is not a
/// PNG.
#[track_caller]
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.get(12..16) == Some(b"IHDR"),
        "{} is a PNG",
        path.display()
    );
    assert!(
        bytes.ends_with(b"IEND\xaeB`\x82"),
        "{} ends with the end of a PNG",
        path.display()
    );
    let number = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    (number(16), number(20))
}

/// The command lines of the processes running that name `folder`.
fn processes_naming(folder: &Path) -> Vec<String> {
    let folder = folder.to_string_lossy();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(folder.as_ref()))
        .collect()
}

// ---- The site ----

/// The people of the site's table: login, name, role.
const PEOPLE: [[&str; 3]; 3] = [
    ["alice", "Alice Martin", "administrator"],
    ["bob", "Bob Stone", "linked user"],
    ["carol", "Carol Diaz", "auditor"],
];

/// A tiny HTTP server on loopback, a thread per connection, until dropped.
struct Site {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Site {
    fn start() -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port on loopback");
        let addr = listener.local_addr().expect("the address bound");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    std::thread::spawn(move || serve(stream));
                }
            }
        });
        Site {
            addr,
            stop,
            acceptor: Some(acceptor),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Answers one request on `stream`, then closes it. A browser may open a
/// connection it never uses: it is dropped after a read timeout.
fn serve(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // The headers, read and dropped.
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 0) && header.trim() != "" {
        header.clear();
    }
    let target = request_line.split(' ').nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (status, body) = match path {
        "/" => ("200 OK", home_page()),
        "/people" => ("200 OK", people_page(&query_value(query, "q"))),
        _ => (
            "404 Not Found",
            "<!doctype html><title>Not found</title>".to_owned(),
        ),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn home_page() -> String {
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
     <title>Harness home</title></head><body><h1>Home</h1>\
     <p>A page to leave from: <a id=\"to-people\" href=\"/people\">people</a>.</p>\
     </body></html>"
        .to_owned()
}

fn people_page(filter: &str) -> String {
    let wanted = filter.to_lowercase();
    let shown: Vec<_> = PEOPLE
        .iter()
        .filter(|[login, name, _]| login.contains(&wanted) || name.to_lowercase().contains(&wanted))
        .collect();
    let rows: String = shown
        .iter()
        .map(|cells| {
            let cells: String = cells
                .iter()
                .map(|c| format!("<td>{}</td>", escape(c)))
                .collect();
            format!("<tr>{cells}</tr>")
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>People</title>\
         </head><body><h1>People</h1>\
         <form method=\"get\" action=\"/people\"><label>Filter \
         <input type=\"search\" name=\"q\" value=\"{}\"></label>\
         <button type=\"submit\">Filter</button></form>\
         <p id=\"summary\">{} of {} people</p>\
         <table id=\"people\"><thead><tr><th>Login</th><th>Name</th><th>Role</th></tr></thead>\
         <tbody>{rows}</tbody></table><p><a href=\"/\">Home</a></p></body></html>",
        escape(filter),
        shown.len(),
        PEOPLE.len()
    )
}

/// The value of `name` in a query string, decoded as a form sends it.
fn query_value(query: &str, name: &str) -> String {
    let Some(raw) = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    else {
        return String::new();
    };
    let mut bytes = Vec::new();
    let mut rest = raw.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'+' => bytes.push(b' '),
            b'%' if tail.len() >= 2 => {
                let hex = std::str::from_utf8(&tail[..2]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(decoded) => {
                        bytes.push(decoded);
                        rest = &tail[2..];
                    }
                    Err(_) => bytes.push(byte),
                }
            }
            _ => bytes.push(byte),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
