//! The overview of a tenancy: its status (CSI, serial, the last apply and
//! its commit, the watcher), what needs attention, and who acts through
//! whom; and `/`, the overview of the only tenancy or the list of them.

use serde::Serialize;
use serde_json::json;

use super::expiries::{Expiring, ExpiringJson, describe, expiring};
use super::{Context, counted, day, link, tenancy_page, user_href, user_link};
use crate::access::{Access, Path};
use crate::engine::clock;
use crate::report::{self, AccessJson, HistoryJson};
use crate::state::JournalRecord;
use crate::telemetry::Response;
use crate::web::Problem;
use crate::web::data::{View, Watcher};
use crate::web::html::{self, Html, Section};

/// `/`: the overview of the state's only tenancy, else the list of its
/// tenancies (and the retired ones, whose history stays).
pub fn home(cx: &Context) -> Result<Response, Problem> {
    let names = cx.opened.store.tenancies()?;
    if let [one] = names.as_slice() {
        return overview(cx, one);
    }
    let retired = cx.opened.store.retired_tenancies()?;
    cx.reply(
        || {
            let mut main = Html::new();
            main.raw("<h1>Tenancies</h1>\n");
            if names.is_empty() {
                main.raw("<p id=\"empty\">The state holds no tenancy yet: <code>supportctl apply</code> adds one.</p>\n");
            }
            main.raw("<ul id=\"tenancies\">\n");
            for name in &names {
                main.raw("<li><a href=\"")
                    .text(link(name, ""))
                    .raw("\" data-tenancy=\"")
                    .text(name)
                    .raw("\">")
                    .text(name)
                    .raw("</a></li>\n");
            }
            main.raw("</ul>\n");
            if !retired.is_empty() {
                main.raw("<h2>Retired</h2>\n<ul id=\"retired\">\n");
                for name in &retired {
                    main.raw("<li><a href=\"")
                        .text(link(name, "/history"))
                        .raw("\">")
                        .text(name)
                        .raw("</a> (its history)</li>\n");
                }
                main.raw("</ul>\n");
            }
            html::page("Tenancies", None, &main)
        },
        || report::pretty(&json!({ "tenancies": names, "retired": retired })),
    )
}

/// What needs someone's attention in a tenancy.
struct Attention<'a> {
    /// Membership requested, no approval: waiting for a CSI administrator.
    pending: Vec<&'a Access>,
    /// Approvals and links that end within the days asked for.
    expiring: Vec<Expiring<'a>>,
    /// Links through someone who is no CSI administrator (any more).
    inactive_links: Vec<&'a Access>,
    /// Users with a support account and no access at all (not pending, not
    /// an inactive link: those are above).
    no_access: Vec<&'a Access>,
}

impl<'a> Attention<'a> {
    fn of(view: &'a View, within: u32) -> Attention<'a> {
        let expiring = expiring(view, within);
        let with_account = |a: &Access| view.model.support_accounts.contains_key(&a.user);
        Attention {
            pending: view
                .access
                .iter()
                .filter(|a| a.path == Path::Pending)
                .collect(),
            expiring,
            inactive_links: view
                .access
                .iter()
                .filter(|a| a.path == Path::LinkViaNonAdmin)
                .collect(),
            no_access: view
                .access
                .iter()
                .filter(|a| {
                    with_account(a)
                        && !a.can_open_sr
                        && !a.visible_in_mos
                        && !a.visible_in_console
                        && !matches!(a.path, Path::Pending | Path::LinkViaNonAdmin)
                })
                .collect(),
        }
    }
}

/// The linked users who act through each administrator today (docs/DOMAIN.md
/// §2), by administrator.
fn acting_through(view: &View) -> Vec<(&str, Vec<&Access>)> {
    let mut by_admin: std::collections::BTreeMap<&str, Vec<&Access>> = Default::default();
    for a in view.access.iter().filter(|a| a.path == Path::Linked) {
        if let Some(via) = a.acts_as.as_deref() {
            by_admin.entry(via).or_default().push(a);
        }
    }
    by_admin.into_iter().collect()
}

/// `/t/{tenancy}`: the overview.
pub fn overview(cx: &Context, tenancy: &str) -> Result<Response, Problem> {
    let view = cx.view(tenancy)?;
    let journal = cx.journal(tenancy)?;
    let watcher = cx.opened.watcher(tenancy, clock::now()?);
    let attention = Attention::of(&view, cx.expiring_within);
    let acting = acting_through(&view);
    let last = journal.records.last();
    cx.reply(
        || overview_html(cx, &view, last, &watcher, &attention, &acting),
        || overview_json(cx, &view, last, &watcher, &attention, &acting),
    )
}

/// The overview's JSON: the tenancy, its serial and last apply (as
/// `history --format json` prints an entry), what needs attention and who
/// acts through whom (users as `access --format json` prints them), and the
/// watcher (as `status --format json` prints it) and the tenancy's lease.
#[derive(Serialize)]
struct OverviewJson<'a> {
    format_version: u32,
    tenancy: TenancyJson<'a>,
    serial: u64,
    today: String,
    users: usize,
    can_open_sr: usize,
    last_apply: Option<HistoryJson<'a>>,
    attention: AttentionJson<'a>,
    acting_through: Vec<ActingJson<'a>>,
    watcher: Option<serde_json::Value>,
    lease: Option<&'a serde_json::Value>,
}

#[derive(Serialize)]
struct TenancyJson<'a> {
    name: &'a str,
    csi: &'a str,
    home_region: Option<&'a str>,
    admin: &'a str,
}

#[derive(Serialize)]
struct AttentionJson<'a> {
    expiring_within_days: u32,
    pending_memberships: Vec<AccessJson<'a>>,
    expiring: Vec<ExpiringJson<'a>>,
    inactive_links: Vec<AccessJson<'a>>,
    no_access: Vec<AccessJson<'a>>,
}

#[derive(Serialize)]
struct ActingJson<'a> {
    administrator: &'a str,
    users: Vec<AccessJson<'a>>,
}

fn overview_json(
    cx: &Context,
    view: &View,
    last: Option<&JournalRecord>,
    watcher: &Watcher,
    attention: &Attention,
    acting: &[(&str, Vec<&Access>)],
) -> String {
    fn access<'a>(list: &[&'a Access]) -> Vec<AccessJson<'a>> {
        list.iter().map(|a| AccessJson::from(*a)).collect()
    }
    let t = &view.model.tenancy;
    let doc = OverviewJson {
        format_version: 1,
        tenancy: TenancyJson {
            name: &t.name,
            csi: &t.csi,
            home_region: t.home_region.as_deref(),
            admin: &t.admin,
        },
        serial: view.serial,
        today: view.today.to_string(),
        users: view.model.users.len(),
        can_open_sr: view.access.iter().filter(|a| a.can_open_sr).count(),
        last_apply: last.map(HistoryJson::from),
        attention: AttentionJson {
            expiring_within_days: cx.expiring_within,
            pending_memberships: access(&attention.pending),
            expiring: attention.expiring.iter().map(ExpiringJson::from).collect(),
            inactive_links: access(&attention.inactive_links),
            no_access: access(&attention.no_access),
        },
        acting_through: acting
            .iter()
            .map(|(admin, users)| ActingJson {
                administrator: admin,
                users: access(users),
            })
            .collect(),
        watcher: watcher.status.as_ref().map(|(status, problem)| {
            report::status_json(
                status,
                problem.as_deref(),
                watcher
                    .lease
                    .as_ref()
                    .map_or(&serde_json::Value::Null, |l| &l.json),
            )
        }),
        lease: watcher.lease.as_ref().map(|l| &l.json),
    };
    report::pretty(&doc)
}

/// A journal time as the pages show it: to the second, in UTC.
pub(super) fn shown_time(stored: &str) -> String {
    match stored.parse::<jiff::Timestamp>() {
        Ok(moment) => moment.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => stored.to_string(),
    }
}

fn overview_html(
    cx: &Context,
    view: &View,
    last: Option<&JournalRecord>,
    watcher: &Watcher,
    attention: &Attention,
    acting: &[(&str, Vec<&Access>)],
) -> String {
    let t = &view.model.tenancy;
    let tenancy = t.name.as_str();
    let mut h = Html::new();
    h.raw("<h1>Tenancy <span class=\"tenancy-name\">")
        .text(tenancy)
        .raw("</span></h1>\n<section id=\"status\" class=\"strip\" aria-label=\"status\">\n");
    h.raw("<div><span class=\"label\">CSI</span> <span class=\"value\" data-test=\"csi\">")
        .text(&t.csi)
        .raw("</span></div>\n");
    h.raw("<div><span class=\"label\">Serial</span> <span class=\"value\" data-test=\"serial\">")
        .text(view.serial)
        .raw("</span></div>\n");
    h.raw("<div><span class=\"label\">Users</span> <span class=\"value\" data-test=\"users\">")
        .text(view.model.users.len())
        .raw(", ")
        .text(view.access.iter().filter(|a| a.can_open_sr).count())
        .raw(" can open SRs</span></div>\n");
    h.raw("<div><span class=\"label\">Last apply</span> <span class=\"value\" data-test=\"last-apply\">");
    match last {
        None => {
            h.raw("none");
        }
        Some(r) => {
            h.raw("<a href=\"")
                .text(link(tenancy, "/history/"))
                .text(r.serial)
                .raw("\">")
                .text(shown_time(&r.time))
                .raw("</a>");
            match &r.git_commit {
                Some(commit) => {
                    h.raw(" · commit <code class=\"commit\">")
                        .text(commit)
                        .raw("</code>");
                    if r.git_changes.as_ref().is_some_and(|c| !c.is_empty()) {
                        h.raw(" with uncommitted changes");
                    }
                }
                None => {
                    h.raw(" · no git commit");
                }
            }
            if let Some(s) = &r.source {
                h.raw(" · by <code>")
                    .text(s.command.as_str())
                    .raw("</code> on ")
                    .text(&s.host);
            }
        }
    }
    h.raw("</span></div>\n");
    h.raw("<div><span class=\"label\">Watcher</span> <span class=\"value\" data-test=\"watcher\">");
    watcher_html(&mut h, watcher);
    h.raw("</span></div>\n</section>\n");

    h.raw("<section aria-labelledby=\"attention-title\">\n<h2 id=\"attention-title\">Needs attention</h2>\n<ul id=\"attention\">\n");
    let unhealthy = match &watcher.status {
        Some((_, Some(problem))) => Some(problem),
        _ => None,
    };
    if let Some(problem) = unhealthy {
        h.raw("<li data-kind=\"watcher\" class=\"bad\">The watcher is not healthy: ")
            .text(problem)
            .raw("</li>\n");
    }
    let access = link(tenancy, "/access");
    // A user's item: its kind, the user's link, and what is to be said.
    let user_item = |h: &mut Html, kind: &str, a: &Access, says: &'static str, why: &str| {
        h.raw("<li data-kind=\"")
            .text(kind)
            .raw("\" data-user=\"")
            .text(&a.user)
            .raw("\">");
        user_link(h, tenancy, view, &a.user);
        h.raw(says).text(why).raw("</li>\n");
    };
    listed(
        &mut h,
        "pending",
        &attention.pending,
        (
            &format!("{access}?path=pending"),
            "every request waiting, in the access table",
        ),
        |h, a| {
            user_item(
                h,
                "pending",
                a,
                " asked to join the CSI: the request waits for a CSI administrator's approval",
                "",
            )
        },
    );
    listed(
        &mut h,
        "expiring",
        &attention.expiring,
        (
            &format!("{}?days={}", link(tenancy, "/expiries"), cx.expiring_within),
            "every one, soonest first",
        ),
        |h, e| {
            h.raw("<li data-kind=\"expiring\" data-user=\"")
                .text(e.user)
                .raw("\">Ends <time datetime=\"")
                .text(e.expires.start())
                .raw("\">")
                .text(day(e.expires))
                .raw("</time>, in ")
                .text(counted(e.days_left as usize, "day", "days"))
                .raw(": ");
            describe(h, tenancy, view, e);
            h.raw("</li>\n");
        },
    );
    listed(
        &mut h,
        "inactive-link",
        &attention.inactive_links,
        (
            &format!("{access}?path=link-via-non-admin"),
            "every one, in the access table",
        ),
        |h, a| user_item(h, "inactive-link", a, " cannot open SRs: ", &a.reason),
    );
    listed(
        &mut h,
        "no-access",
        &attention.no_access,
        (
            &format!("{access}?role=none"),
            "the users without access, in the access table",
        ),
        |h, a| {
            user_item(
                h,
                "no-access",
                a,
                " has a support account and no access: ",
                &a.reason,
            )
        },
    );
    if unhealthy.is_none()
        && attention.pending.is_empty()
        && attention.expiring.is_empty()
        && attention.inactive_links.is_empty()
        && attention.no_access.is_empty()
    {
        h.raw("<li class=\"none\">Nothing needs attention.</li>\n");
    }
    h.raw("</ul>\n<p class=\"note\">Grants that end within ")
        .text(counted(cx.expiring_within as usize, "day", "days"))
        .raw(" are listed (<code>--expiring-within</code>); <a href=\"")
        .text(link(tenancy, "/expiries"))
        .raw("\">everything that ends in the next 90 days</a>.</p>\n</section>\n");

    h.raw("<section aria-labelledby=\"acting-title\">\n<h2 id=\"acting-title\">Who acts through whom</h2>\n");
    h.raw("<p class=\"note\">A linked user acts through the CSI administrator it is linked through: the SRs it opens are owned by that administrator, and mailed to them.</p>\n<ul id=\"acting\">\n");
    if acting.is_empty() {
        h.raw("<li class=\"none\">No user acts through an administrator today.</li>\n");
    }
    for (admin, users) in acting {
        h.raw("<li data-admin=\"").text(admin).raw("\">");
        user_link(&mut h, tenancy, view, admin);
        h.raw("\n<ul>\n");
        listed(
            &mut h,
            "acting",
            users,
            (
                &user_href(tenancy, admin),
                &format!("every user who acts through {admin}"),
            ),
            |h, a| {
                h.raw("<li data-user=\"")
                    .text(&a.user)
                    .raw("\" data-via=\"")
                    .text(admin)
                    .raw("\">");
                user_link(h, tenancy, view, &a.user);
                h.raw(" acts through <span class=\"via\">")
                    .text(admin)
                    .raw("</span>");
                if let Some(until) = a.until {
                    h.raw(", until ").text(day(until));
                }
                h.raw("</li>\n");
            },
        );
        h.raw("</ul>\n</li>\n");
    }
    h.raw("</ul>\n</section>\n");
    tenancy_page(tenancy, tenancy, Section::Overview, &h)
}

/// The most items of one kind the overview lists: a large tenancy may have
/// thousands, which the page that lists them all is linked for.
pub const LISTED: usize = 50;

/// The first [`LISTED`] of `items`, each written by `item`; then, when
/// there are more, how many, and a link (`all`: where, and its text) to
/// where they are all listed, as an item of `kind-more`.
fn listed<T>(
    h: &mut Html,
    kind: &str,
    items: &[T],
    all: (&str, &str),
    mut item: impl FnMut(&mut Html, &T),
) {
    for one in items.iter().take(LISTED) {
        item(h, one);
    }
    if items.len() > LISTED {
        let (href, what) = all;
        h.raw("<li class=\"more\" data-kind=\"")
            .text(kind)
            .raw("-more\">and ")
            .text(items.len() - LISTED)
            .raw(" more: <a href=\"")
            .text(href)
            .raw("\">")
            .text(what)
            .raw("</a></li>\n");
    }
}

fn watcher_html(h: &mut Html, watcher: &Watcher) {
    match &watcher.status {
        None => {
            h.raw("no watcher reports beside this state");
        }
        Some((status, problem)) => {
            match problem {
                None => h.raw("<span class=\"good\">healthy</span>"),
                Some(problem) => h
                    .raw("<span class=\"bad\">not healthy</span>: ")
                    .text(problem),
            };
            if let Some(last) = &status.last {
                h.raw(" · last reconcile ")
                    .text(last.outcome.as_str())
                    .raw(" at ")
                    .text(shown_time(&last.at));
            }
        }
    }
    if let Some(lease) = &watcher.lease {
        let leader = &lease.json["leader"];
        if leader.is_object() {
            h.raw(" · leader ")
                .text(leader["host"].as_str().unwrap_or_default())
                .raw(" (pid ")
                .text(&leader["pid"])
                .raw(", epoch ")
                .text(&leader["epoch"])
                .raw(")");
        } else if lease.json.get("error").is_none() {
            h.raw(" · <span class=\"bad\">no leader</span>");
        }
    }
}
