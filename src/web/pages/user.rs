//! `/t/{tenancy}/users/{id}`: one user's access, as `access USER` tells it
//! (its JSON twin, `/t/{tenancy}/users/{id}/index.json`, is `access USER
//! --format json`), with what the state holds of them and, for an
//! administrator, the linked users who act through them.

use super::{Context, day, link, tenancy_page, user_link};
use crate::access::Path;
use crate::report;
use crate::telemetry::Response;
use crate::web::Problem;
use crate::web::html::{self, Html, Section};

/// `/t/{tenancy}/users/{id}`.
pub fn user(cx: &Context, tenancy: &str, id: &str) -> Result<Response, Problem> {
    let view = cx.view(tenancy)?;
    let Some(access) = view.access.iter().find(|a| a.user == id) else {
        // An id a rename took away names the user who has it now.
        let renamed = cx
            .opened
            .store
            .renamed_from(tenancy, id)
            .unwrap_or_default();
        let now = match renamed.as_slice() {
            [] => String::new(),
            ids => format!(
                "; it was renamed: that user is {} now",
                ids.iter()
                    .map(|i| format!("`{i}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        return Err(Problem::not_found(format!(
            "`{id}` is not a user of tenancy `{tenancy}`{now}"
        )));
    };
    let model = &view.model;
    cx.reply(
        || {
            let mut h = Html::new();
            let user = model.users.get(id);
            h.raw("<h1>User <span class=\"user-id\">").text(id).raw("</span></h1>\n");
            if let Some(user) = user {
                h.raw("<p class=\"who\">");
                if let Some(name) = &user.name {
                    h.raw("<span class=\"name\">").text(name).raw("</span> · ");
                }
                h.raw("<span class=\"email\">").text(&user.email).raw("</span></p>\n");
            }
            h.raw("<section id=\"user-access\" data-user=\"")
                .text(id)
                .raw("\" data-path=\"")
                .text(access.path.as_str())
                .raw("\">\n<p class=\"verdict\">");
            if access.can_open_sr {
                h.text(id).raw(" <strong>can open SRs</strong>, as <span class=\"acts-as\">");
                h.text(access.acts_as.as_deref().unwrap_or_default())
                    .raw("</span>; mail goes to <span class=\"notified\">")
                    .text(access.notified.as_deref().unwrap_or_default())
                    .raw("</span>");
            } else {
                h.text(id).raw(" <strong class=\"bad\">cannot open SRs</strong>");
            }
            h.raw("</p>\n<dl class=\"entry\">\n<dt>Why</dt><dd>")
                .text(&access.reason)
                .raw("</dd>\n<dt>Reads SRs in</dt><dd>MOS ")
                .text(if access.visible_in_mos { "yes" } else { "no" })
                .raw(", Console ")
                .text(if access.visible_in_console { "yes" } else { "no" })
                .text(if access.sees_all_csi_srs && access.visible_in_mos {
                    " (every SR of the CSI in MOS)"
                } else {
                    ""
                })
                .raw("</dd>\n");
            if let Some(until) = access.until {
                h.raw("<dt>Until</dt><dd><time datetime=\"")
                    .text(until.start())
                    .raw("\">")
                    .text(day(until))
                    .raw("</time>");
                if let Some(cause) = &access.until_cause {
                    h.raw(", when ").text(cause);
                }
                h.raw("</dd>\n");
            }
            h.raw("<dt>Path</dt><dd><code>")
                .text(access.path.as_str())
                .raw("</code></dd>\n</dl>\n</section>\n");

            h.raw("<h2>In the state</h2>\n<dl id=\"user-state\" class=\"entry\">\n");
            if model.tenancy.admin == id {
                h.raw("<dt>Tenancy admin</dt><dd>the Cloud Account Admin: the CSI's first administrator</dd>\n");
            }
            match model.support_accounts.get(id) {
                Some(a) => {
                    h.raw("<dt>Support account</dt><dd>phone ")
                        .text(&a.phone)
                        .raw(", time zone ")
                        .text(&a.timezone)
                        .raw("</dd>\n");
                }
                None => {
                    h.raw("<dt>Support account</dt><dd>none</dd>\n");
                }
            }
            if model.memberships.contains(id) {
                h.raw("<dt>Membership</dt><dd>requested</dd>\n");
            }
            if let Some(a) = model.approvals.get(id) {
                h.raw("<dt>Approval</dt><dd>role ")
                    .text(a.role.as_str())
                    .raw(", access ")
                    .text(
                        a.privileges()
                            .iter()
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    )
                    .raw(", by ");
                user_link(&mut h, tenancy, &view, &a.approved_by);
                if let Some(expires) = a.expires {
                    h.raw(", until ").text(day(expires));
                }
                h.raw("</dd>\n");
            }
            if let Some(l) = model.support_links.get(id) {
                h.raw("<dt>Support link</dt><dd>through ");
                user_link(&mut h, tenancy, &view, &l.via);
                if let Some(expires) = l.expires {
                    h.raw(", until ").text(day(expires));
                }
                h.raw("</dd>\n");
            }
            h.raw("</dl>\n");

            let acting: Vec<_> = view
                .access
                .iter()
                .filter(|a| a.path == Path::Linked && a.acts_as.as_deref() == Some(id))
                .collect();
            if !acting.is_empty() {
                h.raw("<h2>Acting through ")
                    .text(id)
                    .raw("</h2>\n<p class=\"note\">The SRs these users open are owned by ")
                    .text(id)
                    .raw(", and mailed to them.</p>\n<ul id=\"acting\">\n");
                for a in acting {
                    h.raw("<li data-user=\"").text(&a.user).raw("\">");
                    user_link(&mut h, tenancy, &view, &a.user);
                    if let Some(until) = a.until {
                        h.raw(", until ").text(day(until));
                    }
                    h.raw("</li>\n");
                }
                h.raw("</ul>\n");
            }
            h.raw("<p><a href=\"")
                .text(link(tenancy, "/access"))
                .raw("?q=")
                .text(html::query(id))
                .raw("\">In the access table</a></p>\n");
            tenancy_page(id, tenancy, Section::Access, &h)
        },
        || report::access_json(access),
    )
}
