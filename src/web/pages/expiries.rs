//! `/t/{tenancy}/expiries`: every approval and link that ends within
//! `?days=` (90 unless asked), soonest first, each with the links it ends
//! too (an administrator's approval ends the links through them); the
//! overview lists those within `--expiring-within` the same way.

use serde::Serialize;

use super::{Context, counted, day, link, tenancy_page, user_link};
use crate::model::{Date, Role};
use crate::report;
use crate::telemetry::Response;
use crate::web::Problem;
use crate::web::data::View;
use crate::web::html::{Html, Section};
use crate::web::query::Query;

/// The parameters the page takes.
pub const PARAMETERS: &[&str] = &["days"];

/// How far ahead the page looks unless `?days=` says otherwise.
pub const DAYS: u32 = 90;
/// The farthest it looks: ten years.
const MOST_DAYS: usize = 3650;

/// A grant that ends soon.
pub struct Expiring<'a> {
    pub user: &'a str,
    /// `approval` or `link`.
    pub grant: &'static str,
    /// The administrator a link goes through.
    pub via: Option<&'a str>,
    pub expires: Date,
    pub days_left: i64,
    /// The users linked through this user, when the grant is an
    /// administrator's approval: their links end with it.
    pub also_ends: Vec<&'a str>,
}

/// The approvals and links of `view` that end after its day and within
/// `within` days of it, soonest first.
pub fn expiring(view: &View, within: u32) -> Vec<Expiring<'_>> {
    let today = view.today;
    let soon = |d: Date| today < d && today.days_until(d) <= i64::from(within);
    let model = &view.model;
    let linked_through = |admin: &str| -> Vec<&str> {
        model
            .support_links
            .iter()
            .filter(|(_, l)| l.via == admin)
            .map(|(user, _)| user.as_str())
            .collect()
    };
    let mut found: Vec<Expiring> = model
        .approvals
        .iter()
        .filter_map(|(user, a)| {
            let expires = a.expires.filter(|d| soon(*d))?;
            Some(Expiring {
                user,
                grant: "approval",
                via: None,
                expires,
                days_left: today.days_until(expires),
                also_ends: if a.role == Role::Admin {
                    linked_through(user)
                } else {
                    Vec::new()
                },
            })
        })
        .chain(model.support_links.iter().filter_map(|(user, l)| {
            let expires = l.expires.filter(|d| soon(*d))?;
            Some(Expiring {
                user,
                grant: "link",
                via: Some(&l.via),
                expires,
                days_left: today.days_until(expires),
                also_ends: Vec::new(),
            })
        }))
        .collect();
    found.sort_by(|a, b| (a.expires, a.user, a.grant).cmp(&(b.expires, b.user, b.grant)));
    found
}

/// A grant that ends soon, as JSON.
#[derive(Serialize)]
pub struct ExpiringJson<'a> {
    user: &'a str,
    grant: &'static str,
    via: Option<&'a str>,
    expires: String,
    /// `expires` as the moment the grant ends: 00:00 UTC of that day.
    expires_at: String,
    days_left: i64,
    also_ends: &'a [&'a str],
}

impl<'a> From<&'a Expiring<'a>> for ExpiringJson<'a> {
    fn from(e: &'a Expiring<'a>) -> Self {
        ExpiringJson {
            user: e.user,
            grant: e.grant,
            via: e.via,
            expires: e.expires.to_string(),
            expires_at: e.expires.start().to_string(),
            days_left: e.days_left,
            also_ends: &e.also_ends,
        }
    }
}

/// The grant in words, the user a link to its page: "the approval of
/// alice", "the support link of gina through erin".
pub fn describe(h: &mut Html, tenancy: &str, view: &View, e: &Expiring) {
    match e.via {
        Some(via) => {
            h.raw("the support link of ");
            user_link(h, tenancy, view, e.user);
            h.raw(" through ").text(via);
        }
        None => {
            h.raw("the approval of ");
            user_link(h, tenancy, view, e.user);
        }
    }
    if !e.also_ends.is_empty() {
        h.raw(", and with it the links of ");
        for (i, user) in e.also_ends.iter().enumerate() {
            if i > 0 {
                h.raw(", ");
            }
            user_link(h, tenancy, view, user);
        }
    }
}

/// `/t/{tenancy}/expiries`.
pub fn expiries(cx: &Context, tenancy: &str, query: &Query) -> Result<Response, Problem> {
    let days = match query.number("days").map_err(Problem::bad_query)? {
        None => DAYS,
        Some(n) if n <= MOST_DAYS => n as u32,
        Some(n) => {
            return Err(Problem::bad_query(format!(
                "`days` goes up to {MOST_DAYS}, not {n}"
            )));
        }
    };
    let view = cx.view(tenancy)?;
    let found = expiring(&view, days);
    cx.reply(
        || {
            let mut h = Html::new();
            h.raw("<h1>What ends in the next ")
                .text(counted(days as usize, "day", "days"))
                .raw("</h1>\n<p class=\"note\">From ")
                .text(view.today)
                .raw(": ")
                .text(counted(found.len(), "grant", "grants"))
                .raw(". A grant ends at 00:00 UTC of its day. <a href=\"")
                .text(link(tenancy, "/expiries.json"))
                .raw("?days=")
                .text(days)
                .raw("\">As JSON</a></p>\n<ol id=\"expiries\" class=\"expiries\">\n");
            for e in &found {
                h.raw("<li data-user=\"")
                    .text(e.user)
                    .raw("\" data-grant=\"")
                    .text(e.grant)
                    .raw("\"><time datetime=\"")
                    .text(e.expires.start())
                    .raw("\">")
                    .text(day(e.expires))
                    .raw("</time> <span class=\"left\">(in ")
                    .text(counted(e.days_left as usize, "day", "days"))
                    .raw(")</span>: ");
                describe(&mut h, tenancy, &view, e);
                h.raw("</li>\n");
            }
            h.raw("</ol>\n");
            if found.is_empty() {
                h.raw("<p id=\"no-expiries\">No approval or link ends in that time.</p>\n");
            }
            h.raw("<p>Look further: ");
            for more in [30, 90, 365] {
                h.raw("<a href=\"")
                    .text(link(tenancy, "/expiries"))
                    .raw("?days=")
                    .text(more)
                    .raw("\">")
                    .text(counted(more, "day", "days"))
                    .raw("</a> ");
            }
            h.raw("</p>\n");
            tenancy_page("Expiries", tenancy, Section::Expiries, &h)
        },
        || report::pretty(&found.iter().map(ExpiringJson::from).collect::<Vec<_>>()),
    )
}
