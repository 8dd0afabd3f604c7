//! `/t/{tenancy}/history`: the apply journal, newest first (its JSON twin
//! is `history --format json`, oldest first as the command prints it); and
//! `/t/{tenancy}/history/{serial}`: one entry with its plan drawn as `plan`
//! prints it — symbols, `before → after`, reasons — coloured by CSS class
//! (its JSON twin is the JSON plan, as `plan --format json` prints it), its
//! changes 500 a page (`?page=N`).
//! Phones in a plan are redacted unless `--show-phones`.

use super::overview::shown_time;
use super::{Context, counted, link, tenancy_page};
use crate::plan::Action;
use crate::render::{self, PlanLine, SavedPlan};
use crate::report;
use crate::state::{JournalKind, JournalRecord};
use crate::telemetry::Response;
use crate::web::Problem;
use crate::web::html::{Html, Section};
use crate::web::query::Query;

/// `/t/{tenancy}/history`.
pub fn history(cx: &Context, tenancy: &str) -> Result<Response, Problem> {
    let journal = cx.journal(tenancy)?;
    let records = &journal.records;
    cx.reply(
        || {
            let mut h = Html::new();
            h.raw("<h1>History</h1>\n<p class=\"note\">")
                .text(counted(records.len(), "entry", "entries"))
                .raw(", newest first. <a href=\"")
                .text(link(tenancy, "/history.json"))
                .raw("\">As JSON</a></p>\n<ol id=\"history\" class=\"history\" reversed>\n");
            for r in records.iter().rev() {
                h.raw("<li>");
                entry_link(&mut h, tenancy, r);
                h.raw("</li>\n");
            }
            h.raw("</ol>\n");
            if records.is_empty() {
                h.raw("<p id=\"no-entries\">No applies yet.</p>\n");
            }
            tenancy_page("History", tenancy, Section::History, &h)
        },
        || report::history_json(records),
    )
}

fn entry_link(h: &mut Html, tenancy: &str, r: &JournalRecord) {
    h.raw("<a class=\"history-entry\" data-serial=\"")
        .text(r.serial)
        .raw("\" href=\"")
        .text(link(tenancy, "/history/"))
        .text(r.serial)
        .raw("\"><span class=\"serial\">serial ")
        .text(r.serial)
        .raw("</span> <time datetime=\"")
        .text(&r.time)
        .raw("\">")
        .text(shown_time(&r.time))
        .raw("</time> ");
    if r.kind == JournalKind::Retire {
        h.raw("<span class=\"retired\">retired the tenancy</span> ");
    }
    summary(h, r);
    if let Some(commit) = &r.git_commit {
        h.raw(" <span class=\"commit\">commit <code>")
            .text(commit)
            .raw("</code></span>");
    }
    if let Some(s) = &r.source {
        h.raw(" <span class=\"by\">by ")
            .text(s.command.as_str())
            .raw(" on ")
            .text(&s.host)
            .raw("</span>");
    }
    h.raw("</a>");
}

fn summary(h: &mut Html, r: &JournalRecord) {
    h.raw("<span class=\"summary\"><span class=\"create\">+")
        .text(r.summary.add)
        .raw("</span> <span class=\"update\">~")
        .text(r.summary.change)
        .raw("</span> <span class=\"delete\">-")
        .text(r.summary.destroy)
        .raw("</span></span>");
}

/// The query parameters an entry's page takes.
pub const PARAMETERS: &[&str] = &["page"];

/// The changes of a plan on one page of its entry: a first apply of a
/// large tenancy plans a change per row, and a page of them all would be
/// hundreds of megabytes of HTML.
pub const CHANGES_PER_PAGE: usize = 500;

/// `/t/{tenancy}/history/{serial}`: the entry, and its plan's changes a
/// page at a time (`?page=N`); its JSON twin is the whole plan.
pub fn entry(cx: &Context, tenancy: &str, serial: u64, query: &Query) -> Result<Response, Problem> {
    let page = query.number("page").map_err(Problem::bad_query)?;
    let journal = cx.journal(tenancy)?;
    let records = &journal.records;
    let Some(at) = records.iter().rposition(|r| r.serial == serial) else {
        return Err(Problem::not_found(format!(
            "tenancy `{tenancy}` has no journal entry at serial {serial}"
        )));
    };
    let read = cx.opened.plan(tenancy, &records[at]);
    let plan = &read.plan;
    let changes = plan.as_ref().map_or(0, |saved| saved.plan.changes.len());
    let pages = changes.div_ceil(CHANGES_PER_PAGE).max(1);
    let page = page.unwrap_or(1);
    if page > pages {
        return Err(Problem::bad_query(format!(
            "page {page} is past the plan's last page, {pages}"
        )));
    }
    cx.reply(
        || entry_html(tenancy, records, at, plan, Paged { page, pages }),
        || match plan {
            Ok(saved) => render::plan_json(
                &saved.plan,
                &saved.lineage,
                saved.serial,
                &saved.config_digest,
            ),
            Err(why) => report::pretty(&serde_json::json!({
                "status": 500,
                "error": format!("the journal's plan cannot be read: {why}"),
            })),
        },
    )
    .map(|response| match (plan, cx.format) {
        (Err(_), crate::web::Format::Json) => Response {
            status: 500,
            ..response
        },
        _ => response,
    })
}

/// Which page of a plan's changes is shown, of how many.
#[derive(Clone, Copy)]
struct Paged {
    page: usize,
    pages: usize,
}

fn entry_html(
    tenancy: &str,
    records: &[JournalRecord],
    at: usize,
    plan: &Result<SavedPlan, String>,
    paged: Paged,
) -> String {
    let r = &records[at];
    let mut h = Html::new();
    h.raw("<h1>")
        .text(match r.kind {
            JournalKind::Apply => "Apply",
            JournalKind::Retire => "Retirement",
        })
        .raw(" at serial ")
        .text(r.serial)
        .raw("</h1>\n<dl id=\"entry\" class=\"entry\">\n<dt>Time</dt><dd><time datetime=\"")
        .text(&r.time)
        .raw("\">")
        .text(shown_time(&r.time))
        .raw("</time></dd>\n<dt>Changes</dt><dd>");
    summary(&mut h, r);
    h.raw("</dd>\n");
    if r.kind == JournalKind::Apply {
        h.raw("<dt>Config digest</dt><dd><code>")
            .text(&r.config_digest)
            .raw("</code></dd>\n");
    }
    h.raw("<dt>Git commit</dt><dd>");
    match &r.git_commit {
        Some(commit) => {
            h.raw("<code class=\"commit\">").text(commit).raw("</code>");
        }
        None => {
            h.raw("not known");
        }
    }
    if let Some(changes) = r.git_changes.as_ref().filter(|c| !c.is_empty()) {
        h.raw(", with uncommitted changes:");
        for change in changes {
            h.raw(" <code>").text(change.trim_start()).raw("</code>");
        }
    }
    h.raw("</dd>\n");
    if let Some(s) = &r.source {
        h.raw("<dt>Applied by</dt><dd><code>")
            .text(s.command.as_str())
            .raw("</code> on ")
            .text(&s.host)
            .raw(" (pid ")
            .text(s.pid)
            .raw("), from <code>")
            .text(&s.path)
            .raw("</code></dd>\n");
    }
    h.raw("</dl>\n<h2>The plan</h2>\n");
    match plan {
        Ok(saved) => {
            let base = format!("{}{}", link(tenancy, "/history/"), r.serial);
            plan_html(&mut h, saved, paged, &base);
        }
        Err(why) => {
            h.raw("<p id=\"plan\" class=\"problem\">The journal's plan cannot be read: ")
                .text(why)
                .raw("</p>\n");
        }
    }
    h.raw("<nav class=\"pages\" aria-label=\"entries\">\n");
    if let Some(before) = at.checked_sub(1).and_then(|i| records.get(i)) {
        h.raw("<a rel=\"prev\" href=\"")
            .text(link(tenancy, "/history/"))
            .text(before.serial)
            .raw("\">serial ")
            .text(before.serial)
            .raw("</a>\n");
    }
    h.raw("<a href=\"")
        .text(link(tenancy, "/history"))
        .raw("\">all entries</a>\n");
    if let Some(after) = records.get(at + 1) {
        h.raw("<a rel=\"next\" href=\"")
            .text(link(tenancy, "/history/"))
            .text(after.serial)
            .raw("\">serial ")
            .text(after.serial)
            .raw("</a>\n");
    }
    h.raw("</nav>\n");
    tenancy_page(
        &format!("Serial {}", r.serial),
        tenancy,
        Section::History,
        &h,
    )
}

/// The CSS class of an action's symbol, as the text plan colours it.
fn class(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
        Action::Replace => "replace",
    }
}

/// The plan as `plan` prints it, a line for each of [`render::plan_lines`]:
/// the changes of page `paged` (at `base?page=N`), and the summary of all.
fn plan_html(h: &mut Html, saved: &SavedPlan, paged: Paged, base: &str) {
    let plan = &saved.plan;
    let first = (paged.page - 1) * CHANGES_PER_PAGE;
    let shown = &plan.changes
        [first.min(plan.changes.len())..(first + CHANGES_PER_PAGE).min(plan.changes.len())];
    if paged.pages > 1 {
        h.raw("<p id=\"plan-count\" class=\"note\">Changes ")
            .text(first + 1)
            .raw("–")
            .text(first + shown.len())
            .raw(" of ")
            .text(plan.changes.len())
            .raw(", ")
            .text(CHANGES_PER_PAGE)
            .raw(" a page. <a href=\"")
            .text(base)
            .raw(".json\">The whole plan as JSON</a></p>\n");
        plan_pages(h, paged, base);
    }
    h.raw("<div id=\"plan\" class=\"plan\">\n");
    if plan.is_empty() {
        h.raw("<p>No changes.</p>\n");
    }
    for change in shown {
        h.raw("<div class=\"change ")
            .text(class(change.action))
            .raw("\" data-address=\"")
            .text(change.address())
            .raw("\">\n");
        for line in render::plan_lines(change) {
            match line {
                PlanLine::Change {
                    action,
                    address,
                    reason,
                } => {
                    h.raw("<div class=\"line head\"><span class=\"symbol ")
                        .text(class(action))
                        .raw("\">")
                        .text(action.symbol())
                        .raw("</span> <span class=\"address\">")
                        .text(address)
                        .raw("</span>");
                    if let Some(reason) = reason {
                        h.raw("  <span class=\"reason\">(")
                            .text(reason)
                            .raw(")</span>");
                    }
                    h.raw("</div>\n");
                }
                PlanLine::Field { name, value } => {
                    h.raw("<div class=\"line field\"><span class=\"name\">")
                        .text(name)
                        .raw("</span>: <span class=\"after\">")
                        .text(value)
                        .raw("</span></div>\n");
                }
                PlanLine::Renamed { from, to } => {
                    h.raw("<div class=\"line field\"><span class=\"name\">id</span>: <span class=\"before\">\"")
                        .text(from)
                        .raw("\"</span> → <span class=\"after\">\"")
                        .text(to)
                        .raw("\"</span></div>\n");
                }
                PlanLine::FieldChange {
                    name,
                    before,
                    after,
                } => {
                    h.raw("<div class=\"line field\"><span class=\"name\">")
                        .text(name)
                        .raw("</span>: <span class=\"before\">")
                        .text(before)
                        .raw("</span> → <span class=\"after\">")
                        .text(after)
                        .raw("</span></div>\n");
                }
                PlanLine::DiffHead { name } => {
                    h.raw("<div class=\"line field\"><span class=\"name\">")
                        .text(name)
                        .raw("</span>:</div>\n");
                }
                PlanLine::Diff { sign, text } => {
                    let kind = match sign {
                        '-' => "removed",
                        '+' => "added",
                        _ => "same",
                    };
                    h.raw("<div class=\"line diff ")
                        .text(kind)
                        .raw("\">")
                        .text(sign)
                        .raw(" ")
                        .text(text)
                        .raw("</div>\n");
                }
            }
        }
        h.raw("</div>\n");
    }
    h.raw("<p class=\"summary-line\">")
        .text(render::summary_line(plan.summary()))
        .raw("</p>\n</div>\n");
    if paged.pages > 1 {
        plan_pages(h, paged, base);
    }
}

/// The links to the plan's other pages: the first, the one before, the
/// one after and the last.
fn plan_pages(h: &mut Html, paged: Paged, base: &str) {
    let Paged { page, pages } = paged;
    let to = |h: &mut Html, rel: &str, target: usize, label: &str| {
        h.raw("<a rel=\"")
            .text(rel)
            .raw("\" href=\"")
            .text(base)
            .raw("?page=")
            .text(target)
            .raw("\">")
            .text(label)
            .raw("</a>\n");
    };
    h.raw("<nav class=\"pages plan-pages\" aria-label=\"pages of the plan\">\n");
    if page > 1 {
        to(h, "first", 1, "first");
        to(h, "prev", page - 1, "previous");
    }
    h.raw("<span>page ")
        .text(page)
        .raw(" of ")
        .text(pages)
        .raw("</span>\n");
    if page < pages {
        to(h, "next", page + 1, "next");
        to(h, "last", pages, "last");
    }
    h.raw("</nav>\n");
}
