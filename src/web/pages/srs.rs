//! `/t/{tenancy}/srs`: every SR of the tenancy with its owner, contact and
//! the channel it was opened in, or with `?as=USER` those USER sees and
//! where (MOS, or the Console for a linked user's own); its JSON twin is
//! `sr list [--user USER] --format json`. SRs stay readable after a
//! tenancy is retired.

use super::{Context, counted, link, tenancy_page};
use crate::access::{self, Channel};
use crate::report;
use crate::state::ServiceRequest;
use crate::telemetry::Response;
use crate::web::Problem;
use crate::web::data::Found;
use crate::web::html::{self, Html, Section};
use crate::web::query::Query;

/// The parameters the page takes.
pub const PARAMETERS: &[&str] = &["as"];

fn channel(c: Channel) -> &'static str {
    match c {
        Channel::Mos => "MOS",
        Channel::Console => "the Console",
    }
}

/// `/t/{tenancy}/srs`.
pub fn srs(cx: &Context, tenancy: &str, query: &Query) -> Result<Response, Problem> {
    let store = &cx.opened.store;
    let live = store.serial(tenancy)?.is_some();
    if !live && !store.retired_tenancies()?.iter().any(|t| t == tenancy) {
        return Err(super::missing(tenancy));
    }
    let all = store.service_requests(tenancy)?;
    let user = query.get("as");
    // Each SR shown, with where `user` sees it.
    let shown: Vec<(&ServiceRequest, Option<Channel>)> = match user {
        None => all.iter().map(|sr| (sr, None)).collect(),
        Some(user) => {
            let Some((model, people)) = store.load_with_people(tenancy)? else {
                return Err(Problem::bad_query(format!(
                    "tenancy `{tenancy}` was retired: nobody can see its SRs as a user"
                )));
            };
            if !model.users.contains_key(user) {
                return Err(Problem::bad_query(format!(
                    "`{user}` is not a user of tenancy `{tenancy}`"
                )));
            }
            let person = people.get(user).copied();
            all.iter()
                .filter_map(|sr| {
                    access::sees(&model, user, person, &sr.parties(), cx.today)
                        .map(|seen| (sr, Some(seen)))
                })
                .collect()
        }
    };
    cx.reply(
        || {
            let names = match cx.opened.view(tenancy, cx.today) {
                Ok(Found::Here(view)) => Some(view),
                _ => None,
            };
            let id_text = |h: &mut Html, id: &str| {
                // An SR names the ids it was opened under: a user of that id
                // may be another person now, so it is shown as text.
                h.raw("<span class=\"user\">").text(id).raw("</span>");
            };
            let mut h = Html::new();
            h.raw("<h1>Service requests</h1>\n");
            h.raw("<form method=\"get\" action=\"")
                .text(link(tenancy, "/srs"))
                .raw("\" id=\"as-form\" class=\"filter\">\n<label for=\"as\">As user</label>\n<input type=\"search\" id=\"as\" name=\"as\" placeholder=\"a user's id\" value=\"")
                .text(user.unwrap_or_default())
                .raw("\">\n<button type=\"submit\">Show</button>\n");
            if user.is_some() {
                h.raw("<a href=\"")
                    .text(link(tenancy, "/srs"))
                    .raw("\" class=\"clear\">Every SR</a>\n");
            }
            h.raw("</form>\n<p id=\"count\" class=\"note\">");
            match user {
                None => {
                    h.text(counted(all.len(), "SR", "SRs")).raw(" in the tenancy.");
                }
                Some(user) => {
                    h.text(user)
                        .raw(" sees ")
                        .text(shown.len())
                        .raw(" of ")
                        .text(counted(all.len(), "SR", "SRs"));
                    if let Some(view) = &names
                        && let Some(a) = view.access.iter().find(|a| a.user == user)
                    {
                        h.raw(": ").text(&a.reason);
                    }
                    h.raw(".");
                }
            }
            h.raw(" <a href=\"")
                .text(link(tenancy, "/srs.json"))
                .text(user.map(|u| format!("?as={}", html::query(u))).unwrap_or_default())
                .raw("\">As JSON</a></p>\n");
            h.raw("<table id=\"srs\" class=\"access\">\n<thead>\n<tr>");
            for title in [
                "SR", "Title", "Type", "Severity", "Status", "Opened by", "Owner", "Mailed to",
                "Opened in", "Opened at", "CSI",
            ] {
                h.raw("<th scope=\"col\">").text(title).raw("</th>");
            }
            if user.is_some() {
                h.raw("<th scope=\"col\">Seen in</th>");
            }
            h.raw("</tr>\n</thead>\n<tbody>\n");
            for (sr, seen) in &shown {
                h.raw("<tr data-sr=\"").text(sr.id).raw("\">\n<th scope=\"row\">").text(sr.id);
                h.raw("</th>\n<td class=\"title\">").text(&sr.title);
                if !sr.comments.is_empty() {
                    h.raw("<details><summary>")
                        .text(counted(sr.comments.len(), "comment", "comments"))
                        .raw("</summary>\n<ul class=\"comments\">\n");
                    for c in &sr.comments {
                        h.raw("<li>");
                        id_text(&mut h, &c.author);
                        h.raw(" (")
                            .text(channel(c.channel))
                            .raw(", ")
                            .text(&c.at)
                            .raw("): ")
                            .text(&c.text)
                            .raw("</li>\n");
                    }
                    h.raw("</ul></details>");
                }
                h.raw("</td>\n<td>")
                    .text(&sr.kind)
                    .raw("</td>\n<td>")
                    .text(&sr.severity)
                    .raw("</td>\n<td>")
                    .text(&sr.status)
                    .raw("</td>\n<td class=\"opened-by\">");
                id_text(&mut h, &sr.opened_by);
                h.raw("</td>\n<td class=\"owner\">");
                id_text(&mut h, &sr.owner);
                h.raw("</td>\n<td class=\"contact\">")
                    .text(&sr.contact_email)
                    .raw("</td>\n<td>")
                    .text(channel(sr.channel))
                    .raw("</td>\n<td>")
                    .text(&sr.opened_at)
                    .raw("</td>\n<td>")
                    .text(sr.csi.as_deref().unwrap_or("—"))
                    .raw("</td>\n");
                if let Some(seen) = seen {
                    h.raw("<td class=\"seen-in\">").text(channel(*seen)).raw("</td>\n");
                }
                h.raw("</tr>\n");
            }
            h.raw("</tbody>\n</table>\n");
            if shown.is_empty() {
                h.raw("<p id=\"no-rows\">No SRs.</p>\n");
            }
            tenancy_page("Service requests", tenancy, Section::Srs, &h)
        },
        || report::sr_list_json(shown.iter().map(|(sr, _)| *sr)),
    )
}
