//! Checking: a raw config in, every rule applied, a [`Model`] out.
//!
//! This is the second stage of input (ripgrep's `LowArgs` → `HiArgs`): the
//! raw entries still carry their places and may be wrong in every way; the
//! model that comes out names only users that exist, grants that follow the
//! domain's rules, and defaults filled in. Every violation is collected, none
//! stops the check. Pure: no files, no clock (the caller passes today).
//! Rule numbers are those of docs/DOMAIN.md §3.
//!
//! The rules pick the entries that pass (`Selection`); the model is then
//! built of their strings, moved out of the raw config (`build`). Here:
//! the checker and the order it applies the rules in; in `users`, the
//! tenancy and each user; in `grants`, memberships, approvals and support
//! links; in `references`, a reference to a user and the hint when it names
//! none; in `names`, what a well-formed id and email are; in `keyed`,
//! entries by user id.

mod build;
mod grants;
mod keyed;
mod names;
mod references;
mod users;

use foldhash::{HashMap, HashMapExt as _};

use crate::config::{RawConfig, RawUserEntry, Spanned, Unreadable, raw};
use crate::diag::{Diagnostic, did_you_mean};
use crate::model::{Date, Model};
use keyed::Keyed;
pub use names::{is_valid_email, is_valid_id};

/// Checks `raw` against every rule. The model is `Some` exactly when no
/// error was found (warnings allowed), and is then made of `raw`'s own
/// strings, moved out of it, which saves a copy of every id, email and name.
pub fn check(mut raw: RawConfig, today: Date) -> (Option<Model>, Vec<Diagnostic>) {
    let mut checker = Checker {
        today,
        diagnostics: Vec::new(),
        unreadable: std::mem::take(&mut raw.unreadable),
        suggestions_left: SUGGESTION_BUDGET,
        zones: Vec::new(),
        recased: HashMap::new(),
        people: None,
    };
    let selection = checker.run(&raw);
    let has_errors = checker.diagnostics.iter().any(Diagnostic::is_error);
    let model = selection
        .filter(|_| !has_errors)
        .map(|selection| build::build(&mut raw, selection));
    drop_aside(raw);
    (model, checker.diagnostics)
}

/// How many entries a raw config holds before what is left of it is worth
/// a thread to drop.
const DROP_ASIDE_FROM: usize = 10_000;

/// Drops what is left of a raw config once checked, on a thread of its own
/// when it is large: its vectors hold tens of MiB for a large set, which the
/// rest of the run need not wait for the system to take back. Dropped here
/// when it is small, or when no thread can be started.
fn drop_aside(raw: RawConfig) {
    let entries =
        raw.users.len() + raw.memberships.len() + raw.approvals.len() + raw.support_links.len();
    if entries < DROP_ASIDE_FROM {
        return;
    }
    // On failure the closure, and `raw` with it, is dropped here.
    let _ = std::thread::Builder::new()
        .name("drop-raw".into())
        .spawn(move || drop(raw));
}

/// Checks a model against every rule `check` applies to a config set, as
/// if a config set declared exactly it: what a plan leads to must pass as a
/// config must. The findings have no place.
pub fn check_model(model: &Model, today: Date) -> Vec<Diagnostic> {
    check(crate::config::raw_of(model), today).1
}

/// What a model is made of: the entries of the config set that passed, by
/// their index in it, in the order of their user ids; grants with the day
/// they expire, only those still in force.
struct Selection {
    users: Vec<usize>,
    memberships: Vec<usize>,
    approvals: Vec<(usize, Option<Date>)>,
    links: Vec<(usize, Option<Date>)>,
    /// Time zones written in another case than the database's, and its
    /// spelling (`asia/seoul` → `Asia/Seoul`): the model holds the latter.
    zones: HashMap<String, String>,
}

/// The index of `item` in `all`, of which it is an element.
fn index_in<T>(all: &[T], item: &T) -> usize {
    let offset = std::ptr::from_ref(item) as usize - all.as_ptr() as usize;
    let index = offset / std::mem::size_of::<T>().max(1);
    debug_assert!(std::ptr::eq(&all[index], item));
    index
}

/// The day a grant's `expires` names; `None` when it names none (or none
/// that can be read, which is reported on its own).
fn expiry_day(expires: Option<&Spanned<String>>) -> Option<Date> {
    expires.and_then(|e| Date::parse(e))
}

/// Whether a grant that expires on `expires` is in force on `today`: a
/// grant whose `expires` day has begun is treated as absent (rule 9).
fn in_force(expires: Option<Date>, today: Date) -> bool {
    expires.is_none_or(|d| today < d)
}

/// Whether `approval` makes its user a CSI administrator on `today`: an
/// approval with role `admin`, in force.
fn is_admin_on(approval: &raw::RawApproval, today: Date) -> bool {
    approval.role.value == raw::RawRole::Admin
        && in_force(expiry_day(approval.expires.as_ref()), today)
}

struct Checker {
    today: Date,
    diagnostics: Vec<Diagnostic>,
    /// Entries written but not readable: already reported, so a reference
    /// to them is not reported again as a reference to nothing.
    unreadable: Unreadable,
    /// Comparisons "did you mean" hints may still make (see [`SUGGESTION_BUDGET`]).
    suggestions_left: usize,
    /// The names of the bundled time zones, read at the first bad one.
    zones: Vec<String>,
    /// Time zones written in another case, and the database's spelling.
    recased: HashMap<String, String>,
    /// Declared users by their emails, the local parts of their emails and
    /// their display names, folded to lower case: made at the first
    /// reference to an undeclared user, which may be meant as one of these.
    people: Option<HashMap<String, (String, &'static str)>>,
}

/// How many name comparisons the "did you mean" hints of one check may make
/// in all. Each hint compares one name with every candidate, so a config set
/// with many unknown references among many users would check in quadratic
/// time; past the budget, hints give the general advice instead.
const SUGGESTION_BUDGET: usize = 2_000_000;

/// What checking knows of a declared user while it checks references.
#[derive(Clone, Copy)]
struct Declared<'a> {
    id: &'a Spanned<String>,
    entry: &'a RawUserEntry,
}

impl Checker {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// The closest of `candidates` to `word`, while the budget of
    /// comparisons lasts (`count` is how many candidates there are).
    fn suggest<'c>(
        &mut self,
        word: &str,
        count: usize,
        candidates: impl IntoIterator<Item = &'c str>,
    ) -> Option<&'c str> {
        if count > self.suggestions_left {
            return None;
        }
        self.suggestions_left -= count;
        did_you_mean(word, candidates)
    }

    /// The closest declared user id to `word`, as a hint.
    fn suggest_user<'u>(&mut self, word: &str, users: &Keyed<'u, Declared<'_>>) -> Option<&'u str> {
        self.suggest(word, users.len(), users.keys().copied())
    }

    fn timezone_hint(&mut self, zone: &str) -> String {
        if self.zones.is_empty() {
            self.zones = jiff::tz::db()
                .available()
                .map(|n| n.as_str().to_owned())
                .collect();
        }
        let zones = std::mem::take(&mut self.zones);
        let hint = match self.suggest(zone, zones.len(), zones.iter().map(String::as_str)) {
            Some(best) => format!("did you mean `{best}`?"),
            None => "time zones are IANA names such as `Asia/Seoul` or `Europe/Berlin`".to_string(),
        };
        self.zones = zones;
        hint
    }

    fn run(&mut self, raw: &RawConfig) -> Option<Selection> {
        let tenancy = self.tenancy(raw);
        let users = self.users(raw);
        let tenancy = tenancy?;
        let admin_id = tenancy.admin.value.as_str();
        self.admin(tenancy, &users);

        let memberships = self.memberships(raw, &users, admin_id);
        let links = self.links_by_user(raw, &users, admin_id);
        let approvals = self.approvals(raw, &users, admin_id, &memberships, &links);
        self.check_approval_chains(&approvals, admin_id);
        self.links(&links, &users, admin_id, &approvals, &memberships);
        self.single_admin(tenancy, &approvals);

        // Only grants in force are desired, so a plan revokes the others
        // from the state.
        let today = self.today;
        let active = |expires: &Option<Spanned<String>>| {
            let expires = expiry_day(expires.as_ref());
            in_force(expires, today).then_some(expires)
        };
        Some(Selection {
            users: users
                .values()
                .map(|d| index_in(&raw.users, d.entry))
                .collect(),
            memberships: memberships
                .values()
                .map(|m| index_in(&raw.memberships, *m))
                .collect(),
            approvals: approvals
                .values()
                .filter_map(|a| Some((index_in(&raw.approvals, *a), active(&a.expires)?)))
                .collect(),
            links: links
                .values()
                .filter_map(|l| Some((index_in(&raw.support_links, *l), active(&l.expires)?)))
                .collect(),
            zones: std::mem::take(&mut self.recased),
        })
    }
}

#[cfg(test)]
mod tests;
