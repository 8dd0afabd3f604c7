//! The pages of the web view, each as HTML and as its JSON twin, from what
//! [`super::data`] read. Each page takes its data and returns its answer;
//! the state is read only through [`Context::opened`].

pub mod access;
pub mod expiries;
pub mod graph;
pub mod history;
pub mod login;
pub mod overview;
pub mod srs;
pub mod user;

use std::sync::Arc;

use super::data::{Found, Journal, Opened, View};
use super::html::{self, Html, Section};
use super::{Format, HTML, JSON, Problem};
use crate::model::Date;
use crate::telemetry::Response;

/// What every page is given.
pub struct Context<'a> {
    pub opened: &'a Opened<'a>,
    pub today: Date,
    pub expiring_within: u32,
    pub format: Format,
}

impl Context<'_> {
    /// The tenancy's view, or the page that says why there is none.
    fn view(&self, tenancy: &str) -> Result<Arc<View>, Problem> {
        match self.opened.view(tenancy, self.today)? {
            Found::Here(view) => Ok(view),
            Found::Retired => Err(Problem::not_found(format!(
                "tenancy `{}` was retired: it has no users or grants; its history is at /t/{}/history",
                tenancy,
                html::path(tenancy)
            ))),
            Found::Missing => Err(missing(tenancy)),
        }
    }

    /// The tenancy's journal (of a retired one too).
    fn journal(&self, tenancy: &str) -> Result<Arc<Journal>, Problem> {
        match self.opened.journal(tenancy)? {
            Found::Here(journal) => Ok(journal),
            Found::Retired | Found::Missing => Err(missing(tenancy)),
        }
    }

    /// The answer: `html` or `json`, whichever is wanted, made only then.
    fn reply(
        &self,
        html: impl FnOnce() -> String,
        json: impl FnOnce() -> String,
    ) -> Result<Response, Problem> {
        Ok(match self.format {
            Format::Html => Response::new(200, HTML, html()),
            Format::Json => Response::new(200, JSON, json()),
        })
    }
}

fn missing(tenancy: &str) -> Problem {
    Problem::not_found(format!("there is no tenancy `{tenancy}` in the state"))
}

/// The link to a page of `tenancy`: `suffix` is `""`, `/access`, …
pub fn link(tenancy: &str, suffix: &str) -> String {
    format!("/t/{}{suffix}", html::path(tenancy))
}

/// The link to a user's page.
pub fn user_href(tenancy: &str, user: &str) -> String {
    format!("/t/{}/users/{}", html::path(tenancy), html::path(user))
}

/// A user as a link to its page, with its name.
fn user_link(h: &mut Html, tenancy: &str, view: &View, user: &str) {
    h.raw("<a class=\"user\" data-user=\"")
        .text(user)
        .raw("\" href=\"")
        .text(user_href(tenancy, user))
        .raw("\">")
        .text(user)
        .raw("</a>");
    if let Some(name) = view.model.users.get(user).and_then(|u| u.name.as_deref()) {
        h.raw(" <span class=\"name\">(").text(name).raw(")</span>");
    }
}

/// A whole page of `tenancy`.
fn tenancy_page(title: &str, tenancy: &str, section: Section, main: &Html) -> String {
    html::page(title, super::nav(tenancy, section), main)
}

/// supportctl's own stylesheet and script, served to anyone (the login
/// form needs the stylesheet).
pub fn asset(path: &str) -> Option<Response> {
    let (content_type, body) = match path {
        "/static/style.css" => (
            "text/css; charset=utf-8",
            include_str!("../static/style.css"),
        ),
        "/static/app.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../static/app.js"),
        ),
        _ => return None,
    };
    Some(Response::new(200, content_type, body))
}

/// A day as the pages show it: `2030-06-30 00:00 UTC`, when the grant ends.
fn day(d: Date) -> String {
    d.start_text()
}

/// `n` and `one`, or `many` unless `n` is 1.
fn counted(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}
