//! `/t/{tenancy}/graph`: who acts through whom, drawn. Each CSI
//! administrator (and anyone a link goes through) on the left, the users
//! linked through them on the right, an edge for each link labelled with
//! when it ends: solid while it grants access, dashed once it grants none
//! (it ended, or goes through someone who is no administrator). An SVG
//! drawn here, inside the page (no script), with the same links as a table
//! beneath it; its JSON twin lists each administrator with the users linked
//! through them, as `access --format json` prints them.

use serde::Serialize;

use super::{Context, day, tenancy_page, user_href};
use crate::access::{Access, Path};
use crate::report::{self, AccessJson};
use crate::telemetry::Response;
use crate::web::Problem;
use crate::web::data::View;
use crate::web::html::{Html, Section};

/// The most links drawn; the table beneath lists every one.
pub const MOST_EDGES: usize = 1000;

const ROW: usize = 30;
const TOP: usize = 20;
const LEFT_X: usize = 20;
const NODE_W: usize = 190;
const RIGHT_X: usize = 520;
const WIDTH: usize = 760;

/// One node on the left and the links through it.
struct Group<'a> {
    via: &'a str,
    /// Whether `via` is a CSI administrator today.
    admin: bool,
    links: Vec<&'a Access>,
}

fn groups(view: &View) -> Vec<Group<'_>> {
    let model = &view.model;
    let mut groups: std::collections::BTreeMap<&str, Group> = Default::default();
    for admin in model.csi_admins() {
        groups.insert(
            admin,
            Group {
                via: admin,
                admin: crate::access::is_active_admin(model, admin, view.today),
                links: Vec::new(),
            },
        );
    }
    for a in &view.access {
        let Some(link) = model.support_links.get(&a.user) else {
            continue;
        };
        let via = link.via.as_str();
        groups
            .entry(via)
            .or_insert_with(|| Group {
                via,
                admin: crate::access::is_active_admin(model, via, view.today),
                links: Vec::new(),
            })
            .links
            .push(a);
    }
    groups.into_values().collect()
}

#[derive(Serialize)]
struct GroupJson<'a> {
    administrator: &'a str,
    /// Whether they are a CSI administrator today.
    is_admin: bool,
    users: Vec<AccessJson<'a>>,
}

/// `/t/{tenancy}/graph`.
pub fn graph(cx: &Context, tenancy: &str) -> Result<Response, Problem> {
    let view = cx.view(tenancy)?;
    let groups = groups(&view);
    cx.reply(
        || graph_html(tenancy, &groups),
        || {
            report::pretty(
                &groups
                    .iter()
                    .map(|g| GroupJson {
                        administrator: g.via,
                        is_admin: g.admin,
                        users: g.links.iter().map(|a| AccessJson::from(*a)).collect(),
                    })
                    .collect::<Vec<_>>(),
            )
        },
    )
}

/// When a link ends, as its edge says.
fn label(a: &Access) -> String {
    match (a.path, a.until) {
        (Path::Linked, Some(until)) => format!("until {until}"),
        (Path::Linked, None) => "no end".to_string(),
        (Path::LinkExpired, _) => "ended".to_string(),
        _ => "grants nothing".to_string(),
    }
}

fn graph_html(tenancy: &str, groups: &[Group]) -> String {
    let mut h = Html::new();
    h.raw("<h1>Who acts through whom</h1>\n<p class=\"note\">A linked user opens SRs as the CSI administrator it is linked through: the SRs are owned by, and mailed to, that administrator. A dashed link grants nothing today.</p>\n");
    let edges: usize = groups.iter().map(|g| g.links.len()).sum();
    // Each group takes as many rows as it has links, at least one.
    let mut rows = 0;
    let mut drawn = 0;
    let mut svg = Html::new();
    for g in groups {
        if drawn >= MOST_EDGES {
            break;
        }
        let take = g.links.len().min(MOST_EDGES - drawn);
        let span = take.max(1);
        let group_top = TOP + rows * ROW;
        let admin_y = group_top + (span - 1) * ROW / 2;
        for (i, a) in g.links.iter().take(take).enumerate() {
            let y = group_top + i * ROW;
            let active = a.path == Path::Linked;
            svg.raw("<g class=\"edge")
                .raw(if active { "" } else { " inactive" })
                .raw("\" data-user=\"")
                .text(&a.user)
                .raw("\" data-via=\"")
                .text(g.via)
                .raw("\"><line x1=\"")
                .text(LEFT_X + NODE_W)
                .raw("\" y1=\"")
                .text(admin_y + 10)
                .raw("\" x2=\"")
                .text(RIGHT_X)
                .raw("\" y2=\"")
                .text(y + 10)
                .raw("\"/><text class=\"edge-label\" x=\"")
                .text(RIGHT_X - 8)
                .raw("\" y=\"")
                .text(y + 6)
                .raw("\" text-anchor=\"end\">")
                .text(label(a))
                .raw("</text></g>\n");
            svg.raw("<a href=\"")
                .text(user_href(tenancy, &a.user))
                .raw("\"><g class=\"node user\"><rect x=\"")
                .text(RIGHT_X)
                .raw("\" y=\"")
                .text(y)
                .raw("\" width=\"")
                .text(WIDTH - RIGHT_X - LEFT_X)
                .raw("\" height=\"20\" rx=\"4\"/><text x=\"")
                .text(RIGHT_X + 8)
                .raw("\" y=\"")
                .text(y + 14)
                .raw("\">")
                .text(&a.user)
                .raw("</text></g></a>\n");
        }
        svg.raw("<a href=\"")
            .text(user_href(tenancy, g.via))
            .raw("\"><g class=\"node admin")
            .raw(if g.admin { "" } else { " not-admin" })
            .raw("\" data-admin=\"")
            .text(g.via)
            .raw("\"><rect x=\"")
            .text(LEFT_X)
            .raw("\" y=\"")
            .text(admin_y)
            .raw("\" width=\"")
            .text(NODE_W)
            .raw("\" height=\"20\" rx=\"4\"/><text x=\"")
            .text(LEFT_X + 8)
            .raw("\" y=\"")
            .text(admin_y + 14)
            .raw("\">")
            .text(g.via)
            .raw(if g.admin { "" } else { " (no administrator)" })
            .raw("</text></g></a>\n");
        rows += span;
        drawn += take;
    }
    let height = TOP * 2 + rows.max(1) * ROW;
    h.raw("<figure class=\"graph\">\n<svg id=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"graph-title\" viewBox=\"0 0 ")
        .text(WIDTH)
        .raw(" ")
        .text(height)
        .raw("\" width=\"")
        .text(WIDTH)
        .raw("\" height=\"")
        .text(height)
        .raw("\">\n<title id=\"graph-title\">CSI administrators and the users linked through them</title>\n")
        .html(&svg)
        .raw("</svg>\n");
    if edges > MOST_EDGES {
        h.raw("<figcaption class=\"note\">The first ")
            .text(MOST_EDGES)
            .raw(" of ")
            .text(edges)
            .raw(" links are drawn; the table lists them all.</figcaption>\n");
    }
    h.raw("</figure>\n<table id=\"links\" class=\"access\">\n<thead><tr><th scope=\"col\">Through</th><th scope=\"col\">User</th><th scope=\"col\">Can open SRs</th><th scope=\"col\">Until</th><th scope=\"col\">Why</th></tr></thead>\n<tbody>\n");
    for g in groups {
        for a in &g.links {
            h.raw("<tr data-user=\"")
                .text(&a.user)
                .raw("\" data-via=\"")
                .text(g.via)
                .raw("\"><td><a href=\"")
                .text(user_href(tenancy, g.via))
                .raw("\">")
                .text(g.via)
                .raw("</a></td><td><a href=\"")
                .text(user_href(tenancy, &a.user))
                .raw("\">")
                .text(&a.user)
                .raw("</a></td><td>")
                .text(if a.can_open_sr { "yes" } else { "no" })
                .raw("</td><td>")
                .text(a.until.map(day).unwrap_or_else(|| "—".into()))
                .raw("</td><td>")
                .text(&a.reason)
                .raw("</td></tr>\n");
        }
    }
    h.raw("</tbody>\n</table>\n");
    if edges == 0 {
        h.raw("<p id=\"no-links\">No user is linked through an administrator.</p>\n");
    }
    tenancy_page("Who acts through whom", tenancy, Section::Graph, &h)
}
