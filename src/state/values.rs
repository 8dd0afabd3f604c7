//! How the values of a model are stored as text, by every backend alike: a
//! set of privileges, a role, a date. A state copied from one backend to
//! another reads back the same.

use std::collections::BTreeSet;

use crate::model::{Date, Privilege, Role};

/// The stored form of a set of privileges: their names, sorted, joined by
/// commas (`create_sr,download,view_sr`); the empty string for none.
pub fn access_text(access: &BTreeSet<Privilege>) -> String {
    let mut names: Vec<&str> = access.iter().map(|p| p.as_str()).collect();
    names.sort_unstable();
    names.join(",")
}

/// [`access_text`] read back; `None` when a name is no privilege.
pub fn parse_access(text: &str) -> Option<BTreeSet<Privilege>> {
    text.split(',')
        .filter(|name| !name.is_empty())
        .map(Privilege::parse)
        .collect()
}

/// A role's stored name read back.
pub fn parse_role(text: &str) -> Option<Role> {
    [Role::User, Role::Admin]
        .into_iter()
        .find(|r| r.as_str() == text)
}

/// An expiry read back: `Err` names `what` and the text that is no date.
pub fn parse_date(text: Option<&str>, what: impl Fn() -> String) -> Result<Option<Date>, String> {
    match text {
        None => Ok(None),
        Some(t) => Date::parse(t)
            .map(Some)
            .ok_or_else(|| format!("{} has the expiry date `{t}`", what())),
    }
}
