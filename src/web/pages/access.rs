//! `/t/{tenancy}/access`: the audit table of `access --all` — who can open
//! SRs, as whom, mailed to whom, where they read SRs, until when and why —
//! filtered by `?q=` (a part of the id, name or email), `?role=` and
//! `?path=`, sorted by `?sort=COLUMN` (`-COLUMN` for descending), and
//! [`PAGE_SIZE`] rows a page (`?page=N`). Its JSON twin is `access --all
//! --format json` of the rows filtered and sorted (every page of them,
//! unless `page` is given).

use std::cmp::Ordering;

use super::{Context, counted, day, link, tenancy_page};
use crate::access::{Access, Path};
use crate::report;
use crate::telemetry::Response;
use crate::web::Problem;
use crate::web::data::View;
use crate::web::html::{self, Html, Section};
use crate::web::query::Query;

/// The parameters the page takes.
pub const PARAMETERS: &[&str] = &["q", "role", "path", "sort", "page"];

/// The rows of one page of the table.
pub const PAGE_SIZE: usize = 500;

/// How a user stands with the CSI, for `?role=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A CSI administrator: the tenancy admin, or approved with role `admin`.
    Admin,
    /// Approved with role `user` (in force or not).
    User,
    /// Linked through an administrator (in force or not).
    Linked,
    /// None of these: pending, no membership, nothing.
    None,
}

impl Role {
    const ALL: [Role; 4] = [Role::Admin, Role::User, Role::Linked, Role::None];

    fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Linked => "linked",
            Role::None => "none",
        }
    }

    fn of(path: Path) -> Role {
        match path {
            Path::TenancyAdmin | Path::ApprovedAdmin => Role::Admin,
            Path::ApprovedUser | Path::ApprovedWithoutCreate | Path::ApprovalExpired => Role::User,
            Path::Linked | Path::LinkExpired | Path::LinkViaNonAdmin => Role::Linked,
            Path::Pending | Path::NotAssociated | Path::NoAccess => Role::None,
        }
    }
}

/// The columns, in the table's order: each sorts by its key, then by user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    User,
    Open,
    As,
    Notified,
    Read,
    Until,
    Why,
    Path,
}

impl Column {
    const ALL: [(Column, &'static str, &'static str); 8] = [
        (Column::User, "user", "User"),
        (Column::Open, "open", "Can open SRs"),
        (Column::As, "as", "Acts as"),
        (Column::Notified, "notified", "Notified"),
        (Column::Read, "read", "Reads SRs in"),
        (Column::Until, "until", "Until"),
        (Column::Why, "why", "Why"),
        (Column::Path, "path", "Path"),
    ];

    fn name(self) -> &'static str {
        Column::ALL
            .iter()
            .find(|(c, _, _)| *c == self)
            .map_or("user", |(_, name, _)| name)
    }

    fn compare(self, a: &Access, b: &Access) -> Ordering {
        // Absent values (no owner, no end) come last.
        fn last<T: Ord>(a: Option<T>, b: Option<T>) -> Ordering {
            match (a, b) {
                (Some(a), Some(b)) => a.cmp(&b),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        }
        let path_rank = |p: Path| Path::ALL.iter().position(|q| *q == p);
        match self {
            Column::User => Ordering::Equal,
            // Those who can come first.
            Column::Open => b.can_open_sr.cmp(&a.can_open_sr),
            Column::As => last(a.acts_as.as_deref(), b.acts_as.as_deref()),
            Column::Notified => last(a.notified.as_deref(), b.notified.as_deref()),
            Column::Read => read_rank(b).cmp(&read_rank(a)),
            Column::Until => last(a.until, b.until),
            Column::Why => a.reason.cmp(&b.reason),
            Column::Path => path_rank(a.path).cmp(&path_rank(b.path)),
        }
        .then_with(|| a.user.cmp(&b.user))
    }
}

/// How much of the SRs a user reads: every SR of the CSI in MOS, its own in
/// MOS and the Console, the Console only, none.
fn read_rank(a: &Access) -> (bool, bool, bool) {
    (
        a.visible_in_mos && a.sees_all_csi_srs,
        a.visible_in_mos,
        a.visible_in_console,
    )
}

/// Where the user reads SRs, in words.
fn reads_in(a: &Access) -> &'static str {
    match (a.visible_in_mos, a.sees_all_csi_srs, a.visible_in_console) {
        (true, true, true) => "MOS (every SR of the CSI) and the Console",
        (true, true, false) => "MOS (every SR of the CSI)",
        (true, false, true) => "MOS and the Console",
        (true, false, false) => "MOS",
        (false, _, true) => "the Console",
        (false, _, false) => "nowhere",
    }
}

/// What the query asks of the table.
#[derive(Debug)]
struct Asked {
    q: Option<String>,
    role: Option<Role>,
    path: Option<Path>,
    sort: Column,
    descending: bool,
    page: Option<usize>,
}

impl Asked {
    fn of(query: &Query) -> Result<Asked, Problem> {
        let role = match query.get("role") {
            None => None,
            Some(text) => Some(
                Role::ALL
                    .into_iter()
                    .find(|r| r.as_str() == text)
                    .ok_or_else(|| {
                        Problem::bad_query(format!(
                            "unknown role `{text}`; expected one of {}",
                            listed(Role::ALL.map(Role::as_str))
                        ))
                    })?,
            ),
        };
        let path = match query.get("path") {
            None => None,
            Some(text) => Some(
                Path::ALL
                    .into_iter()
                    .find(|p| p.as_str() == text)
                    .ok_or_else(|| {
                        Problem::bad_query(format!(
                            "unknown path `{text}`; expected one of {}",
                            listed(Path::ALL.map(Path::as_str))
                        ))
                    })?,
            ),
        };
        let (sort, descending) = match query.get("sort") {
            None => (Column::User, false),
            Some(text) => {
                let (name, descending) = match text.strip_prefix('-') {
                    Some(name) => (name, true),
                    None => (text, false),
                };
                let column = Column::ALL
                    .iter()
                    .find(|(_, n, _)| *n == name)
                    .map(|(c, _, _)| *c)
                    .ok_or_else(|| {
                        Problem::bad_query(format!(
                            "cannot sort by `{text}`; sort by one of {} (`-` before it for descending)",
                            listed(Column::ALL.map(|(_, n, _)| n))
                        ))
                    })?;
                (column, descending)
            }
        };
        Ok(Asked {
            q: query.get("q").map(str::to_lowercase),
            role,
            path,
            sort,
            descending,
            page: query.number("page").map_err(Problem::bad_query)?,
        })
    }

    fn keeps(&self, view: &View, a: &Access) -> bool {
        if self.role.is_some_and(|r| Role::of(a.path) != r)
            || self.path.is_some_and(|p| a.path != p)
        {
            return false;
        }
        let Some(q) = &self.q else {
            return true;
        };
        let user = view.model.users.get(&a.user);
        a.user.to_lowercase().contains(q.as_str())
            || user.is_some_and(|u| {
                u.email.to_lowercase().contains(q.as_str())
                    || u.name
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase().contains(q.as_str()))
            })
    }

    /// The query of this page with `sort` and `page` as given (`None`:
    /// left out), for links.
    fn link(&self, sort: Option<String>, page: Option<usize>) -> String {
        let mut parts = Vec::new();
        if let Some(q) = &self.q {
            parts.push(format!("q={}", html::query(q)));
        }
        if let Some(r) = self.role {
            parts.push(format!("role={}", r.as_str()));
        }
        if let Some(p) = self.path {
            parts.push(format!("path={}", p.as_str()));
        }
        if let Some(sort) = sort {
            parts.push(format!("sort={sort}"));
        }
        if let Some(page) = page {
            parts.push(format!("page={page}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }

    /// `sort` as given, when it is not the default.
    fn sort_given(&self) -> Option<String> {
        match (self.sort, self.descending) {
            (Column::User, false) => None,
            (column, true) => Some(format!("-{}", column.name())),
            (column, false) => Some(column.name().to_string()),
        }
    }
}

fn listed<const N: usize>(names: [&str; N]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `/t/{tenancy}/access`.
pub fn access(cx: &Context, tenancy: &str, query: &Query) -> Result<Response, Problem> {
    let asked = Asked::of(query)?;
    let view = cx.view(tenancy)?;
    let mut rows: Vec<&Access> = view
        .access
        .iter()
        .filter(|a| asked.keeps(&view, a))
        .collect();
    rows.sort_by(|a, b| {
        let order = asked.sort.compare(a, b);
        if asked.descending {
            order.reverse()
        } else {
            order
        }
    });
    let pages = rows.len().div_ceil(PAGE_SIZE).max(1);
    let page = asked.page.unwrap_or(1);
    if page > pages {
        return Err(Problem::bad_query(format!(
            "page {page} is past the last page, {pages}"
        )));
    }
    let shown = |all: bool| -> &[&Access] {
        if all {
            &rows
        } else {
            let start = (page - 1) * PAGE_SIZE;
            &rows[start..(start + PAGE_SIZE).min(rows.len())]
        }
    };
    cx.reply(
        || access_html(&view, &asked, &rows, shown(false), page, pages),
        || report::access_json_all(shown(asked.page.is_none()).iter().copied()),
    )
}

fn access_html(
    view: &View,
    asked: &Asked,
    all: &[&Access],
    rows: &[&Access],
    page: usize,
    pages: usize,
) -> String {
    let tenancy = view.model.tenancy.name.as_str();
    let base = link(tenancy, "/access");
    let mut h = Html::new();
    h.raw("<h1>Who can open SRs</h1>\n");
    h.raw("<form method=\"get\" action=\"")
        .text(&base)
        .raw("\" id=\"filter-form\" class=\"filter\" role=\"search\">\n");
    h.raw("<label for=\"filter\">Find</label>\n<input type=\"search\" id=\"filter\" name=\"q\" placeholder=\"id, name or email\" value=\"")
        .text(asked.q.as_deref().unwrap_or_default())
        .raw("\">\n<label for=\"role\">Role</label>\n<select id=\"role\" name=\"role\">\n<option value=\"\">any</option>\n");
    for role in Role::ALL {
        h.raw("<option value=\"").text(role.as_str()).raw("\"");
        if asked.role == Some(role) {
            h.raw(" selected");
        }
        h.raw(">").text(role.as_str()).raw("</option>\n");
    }
    h.raw("</select>\n<label for=\"path\">Path</label>\n<select id=\"path\" name=\"path\">\n<option value=\"\">any</option>\n");
    for path in Path::ALL {
        h.raw("<option value=\"").text(path.as_str()).raw("\"");
        if asked.path == Some(path) {
            h.raw(" selected");
        }
        h.raw(">").text(path.as_str()).raw("</option>\n");
    }
    h.raw("</select>\n");
    if let Some(sort) = asked.sort_given() {
        h.raw("<input type=\"hidden\" name=\"sort\" value=\"")
            .text(sort)
            .raw("\">\n");
    }
    h.raw("<button type=\"submit\">Filter</button>\n");
    if asked.q.is_some() || asked.role.is_some() || asked.path.is_some() {
        h.raw("<a href=\"")
            .text(&base)
            .raw("\" class=\"clear\">Clear</a>\n");
    }
    h.raw("</form>\n");
    h.raw("<p id=\"count\" class=\"note\">")
        .text(counted(all.len(), "user", "users"))
        .raw(" of ")
        .text(view.access.len())
        .raw(" on ")
        .text(view.today)
        .raw(" (serial ")
        .text(view.serial)
        .raw(")");
    if pages > 1 {
        let first = (page - 1) * PAGE_SIZE + 1;
        h.raw("; rows ")
            .text(first)
            .raw("–")
            .text(first + rows.len() - 1)
            .raw(" here");
    }
    h.raw(". <a href=\"")
        .text(&base)
        .raw(".json")
        .text(asked.link(asked.sort_given(), None))
        .raw("\">As JSON</a></p>\n");
    h.raw("<table id=\"access\" class=\"access\">\n<thead>\n<tr>\n");
    for (column, name, title) in Column::ALL {
        let (next, mark) = match (asked.sort == column, asked.descending) {
            (true, false) => (format!("-{name}"), " ▲"),
            (true, true) => (name.to_string(), " ▼"),
            (false, _) => (name.to_string(), ""),
        };
        let next = (next != "user").then_some(next);
        h.raw("<th scope=\"col\" data-column=\"")
            .text(name)
            .raw("\"");
        if asked.sort == column {
            h.raw(if asked.descending {
                " aria-sort=\"descending\""
            } else {
                " aria-sort=\"ascending\""
            });
        }
        h.raw("><a href=\"")
            .text(&base)
            .text(asked.link(next, None))
            .raw("\">")
            .text(title)
            .text(mark)
            .raw("</a></th>\n");
    }
    h.raw("</tr>\n</thead>\n<tbody>\n");
    for a in rows {
        row(&mut h, view, a);
    }
    h.raw("</tbody>\n</table>\n");
    if rows.is_empty() {
        h.raw("<p id=\"no-rows\">No user matches.</p>\n");
    }
    if pages > 1 {
        h.raw("<nav class=\"pages\" aria-label=\"pages\" id=\"pages\">\n");
        if page > 1 {
            h.raw("<a rel=\"prev\" href=\"")
                .text(&base)
                .text(asked.link(asked.sort_given(), Some(page - 1)))
                .raw("\">previous</a>\n");
        }
        h.raw("<span>page ")
            .text(page)
            .raw(" of ")
            .text(pages)
            .raw("</span>\n");
        if page < pages {
            h.raw("<a rel=\"next\" href=\"")
                .text(&base)
                .text(asked.link(asked.sort_given(), Some(page + 1)))
                .raw("\">next</a>\n");
        }
        h.raw("</nav>\n");
    }
    tenancy_page("Access", tenancy, Section::Access, &h)
}

fn row(h: &mut Html, view: &View, a: &Access) {
    h.raw("<tr data-user=\"")
        .text(&a.user)
        .raw("\" data-path=\"")
        .text(a.path.as_str())
        .raw("\" data-role=\"")
        .text(Role::of(a.path).as_str())
        .raw("\"");
    if let Some(via) = &a.via {
        h.raw(" data-via=\"").text(via).raw("\"");
    }
    if !a.can_open_sr {
        h.raw(" class=\"cannot\"");
    }
    h.raw(">\n<th scope=\"row\" class=\"user\"><a class=\"id\" href=\"")
        .text(super::user_href(&view.model.tenancy.name, &a.user))
        .raw("\">")
        .text(&a.user)
        .raw("</a>");
    if let Some(user) = view.model.users.get(&a.user) {
        if let Some(name) = &user.name {
            h.raw(" <span class=\"name\">").text(name).raw("</span>");
        }
        h.raw(" <span class=\"email\">")
            .text(&user.email)
            .raw("</span>");
    }
    h.raw("</th>\n<td class=\"open\">")
        .text(if a.can_open_sr { "yes" } else { "no" })
        .raw("</td>\n<td class=\"acts-as\">");
    match &a.acts_as {
        Some(owner) => {
            h.text(owner);
            if owner != &a.user {
                h.raw(" <span class=\"through\">(linked through)</span>");
            }
        }
        None => {
            h.raw("—");
        }
    }
    h.raw("</td>\n<td class=\"notified\">")
        .text(a.notified.as_deref().unwrap_or("—"))
        .raw("</td>\n<td class=\"read\">")
        .text(reads_in(a))
        .raw("</td>\n<td class=\"until\"");
    if let Some(cause) = &a.until_cause {
        h.raw(" title=\"").text(cause).raw("\"");
    }
    h.raw(">");
    match a.until {
        Some(until) => {
            h.raw("<time datetime=\"")
                .text(until.start())
                .raw("\">")
                .text(day(until))
                .raw("</time>");
        }
        None => {
            h.raw("—");
        }
    }
    h.raw("</td>\n<td class=\"why\">")
        .text(&a.reason)
        .raw("</td>\n<td class=\"path\"><code>")
        .text(a.path.as_str())
        .raw("</code></td>\n</tr>\n");
}
