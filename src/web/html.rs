//! HTML for the web view: [`escape`], the one escaping function, the
//! [`Html`] builder that escapes every value it is given, the page around
//! every view ([`page`]), and the encodings of values in links.
//!
//! A value reaches a page only through [`Html::text`] (or a link built by
//! [`path`] and [`query`], which encode it and are then escaped like any
//! value): markup is written only as `&'static str` literals, so no name
//! from the state can become markup.

use std::borrow::Cow;
use std::fmt::{Display, Write as _};

/// `text` made safe as the text of an element and as the value of a
/// quoted attribute: `&`, `<`, `>`, `"` and `'` become character
/// references. The only escaping of the web view.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// HTML being written: literal markup, and values escaped.
#[derive(Debug, Default)]
pub struct Html(String);

impl Html {
    pub fn new() -> Html {
        Html(String::with_capacity(4096))
    }

    /// Markup written here, in the code: never a value.
    pub fn raw(&mut self, markup: &'static str) -> &mut Html {
        self.0.push_str(markup);
        self
    }

    /// A value, escaped: the text of an element, or of a quoted attribute.
    pub fn text(&mut self, value: impl Display) -> &mut Html {
        let mut shown = String::new();
        let _ = write!(shown, "{value}");
        self.0.push_str(&escape(&shown));
        self
    }

    /// Markup made by another [`Html`].
    pub fn html(&mut self, other: &Html) -> &mut Html {
        self.0.push_str(&other.0);
        self
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The version every page's footer names, as `--version` prints it.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SUPPORTCTL_GIT_COMMIT"),
    ")"
);

/// The sections of a tenancy, each a link of the navigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Overview,
    Access,
    Graph,
    Expiries,
    Srs,
    History,
}

impl Section {
    const ALL: [(Section, &'static str, &'static str); 6] = [
        (Section::Overview, "", "Overview"),
        (Section::Access, "/access", "Access"),
        (Section::Graph, "/graph", "Links"),
        (Section::Expiries, "/expiries", "Expiries"),
        (Section::Srs, "/srs", "SRs"),
        (Section::History, "/history", "History"),
    ];
}

/// Where the navigation of every page holds the logout form, filled in
/// for each answer by whether its browser is in a session (`Site::handle`).
/// No text of the state can hold it: every value is escaped.
pub const SESSION_SLOT: &str = "<!--session-->";

/// The logout form, for a browser in a session.
pub const LOGOUT_FORM: &str = "<form method=\"post\" action=\"/logout\" class=\"logout\"><button type=\"submit\" data-test=\"logout\">Log out</button></form>\n";

/// A whole page: its title, the navigation of `tenancy` with `section`
/// marked as the current one, and `main`. The stylesheet and the script are
/// supportctl's own (`/static/…`); the page has no inline script or style.
pub fn page(title: &str, nav: Option<(&str, Section)>, main: &Html) -> String {
    let mut h = Html::new();
    h.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
        .raw("<title>")
        .text(title)
        .raw(" · supportctl</title>\n")
        .raw("<link rel=\"stylesheet\" href=\"/static/style.css\">\n")
        .raw("<script src=\"/static/app.js\" defer></script>\n</head>\n<body>\n")
        .raw("<header>\n<nav>\n<a href=\"/\" class=\"home\">supportctl</a>\n");
    if let Some((tenancy, current)) = nav {
        let base = format!("/t/{}", path(tenancy));
        h.raw("<span class=\"tenancy\">")
            .text(tenancy)
            .raw("</span>\n");
        for (section, suffix, name) in Section::ALL {
            h.raw("<a href=\"").text(&base).text(suffix).raw("\"");
            if section == current {
                h.raw(" aria-current=\"page\"");
            }
            h.raw(" data-test=\"nav-")
                .text(name.to_lowercase())
                .raw("\">");
            h.text(name).raw("</a>\n");
        }
    }
    h.raw(SESSION_SLOT)
        .raw("</nav>\n</header>\n<main>\n")
        .html(main)
        .raw("</main>\n<footer>supportctl ")
        .text(VERSION)
        .raw(" · read only</footer>\n</body>\n</html>\n");
    h.into_string()
}

/// `text` as one segment of a path: every byte but the unreserved
/// characters of RFC 3986 percent-encoded.
pub fn path(text: &str) -> Cow<'_, str> {
    encode(text, false)
}

/// `text` as a value of a query (`application/x-www-form-urlencoded`).
pub fn query(text: &str) -> Cow<'_, str> {
    encode(text, true)
}

fn encode(text: &str, form: bool) -> Cow<'_, str> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    if text.bytes().all(unreserved) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else if form && b == b' ' {
            out.push('+');
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Cow::Owned(out)
}

/// `text` with its percent-escapes decoded (and `+` as a space, in a
/// query); `None` when an escape is malformed or the result is not UTF-8.
pub fn decode(text: &str, form: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if form => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
