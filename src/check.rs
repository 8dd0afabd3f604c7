//! Checking: a raw config in, every rule applied, a [`Model`] out.
//!
//! This is the second stage of input (ripgrep's `LowArgs` → `HiArgs`): the
//! raw entries still carry their places and may be wrong in every way; the
//! model that comes out names only users that exist, grants that follow the
//! domain's rules, and defaults filled in. Every violation is collected, none
//! stops the check. Pure: no files, no clock (the caller passes today).
//! Rule numbers are those of docs/DOMAIN.md §3.

use std::borrow::Cow;

use foldhash::{HashMap, HashMapExt as _};

use crate::config::{RawConfig, RawTenancy, RawUserEntry, Spanned, Unreadable, raw};
use crate::diag::{Diagnostic, Location, Rule, did_you_mean, is_invisible};
use crate::model::{
    Approval, Date, Model, Privilege, REDACTED, REDACTED_CHANGED, Role, SupportAccount,
    SupportLink, Tenancy, User, iana_time_zone,
};

/// Checks `raw` against every rule. The model is `Some` exactly when no
/// error was found (warnings allowed), and is then made of `raw`'s own
/// strings, moved out of it: `raw`'s entries are left with empty strings
/// (but all there), which saves a copy of every id, email and name.
pub fn check(raw: &mut RawConfig, today: Date) -> (Option<Model>, Vec<Diagnostic>) {
    let mut checker = Checker {
        today,
        diagnostics: Vec::new(),
        unreadable: raw.unreadable.clone(),
        suggestions_left: SUGGESTION_BUDGET,
        zones: Vec::new(),
        recased: HashMap::new(),
        people: None,
    };
    let selection = checker.run(raw);
    let has_errors = checker.diagnostics.iter().any(Diagnostic::is_error);
    let model = selection
        .filter(|_| !has_errors)
        .map(|selection| build(raw, selection));
    (model, checker.diagnostics)
}

/// Checks a model against every rule `check` applies to a config set, as
/// if a config set declared exactly it: what a plan leads to must pass as a
/// config must. The findings have no place.
pub fn check_model(model: &Model, today: Date) -> Vec<Diagnostic> {
    let mut raw = crate::config::raw_of(model);
    check(&mut raw, today).1
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
/// time; past the budget (a fraction of a second), hints give the general
/// advice instead.
const SUGGESTION_BUDGET: usize = 2_000_000;

/// What checking knows of a declared user while it checks references.
#[derive(Clone, Copy)]
struct Declared<'a> {
    id: &'a Spanned<String>,
    entry: &'a RawUserEntry,
}

/// Entries by user id, first one wins: found by hashing, walked in id
/// order (which the model and the order of findings follow). Filled by
/// `insert`, then `finish`ed before it is walked.
struct Keyed<'a, V> {
    index: HashMap<&'a str, V>,
    sorted: Vec<(&'a str, V)>,
}

impl<V> Default for Keyed<'_, V> {
    fn default() -> Self {
        Keyed {
            index: HashMap::default(),
            sorted: Vec::new(),
        }
    }
}

impl<'a, V: Copy> Keyed<'a, V> {
    fn with_capacity(capacity: usize) -> Self {
        Keyed {
            index: HashMap::with_capacity(capacity),
            sorted: Vec::with_capacity(capacity),
        }
    }

    /// Adds `id` unless it is there already.
    fn insert(&mut self, id: &'a str, value: V) {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.index.entry(id) {
            slot.insert(value);
            self.sorted.push((id, value));
        }
    }

    /// Puts the entries in id order (linear when they came in order).
    fn finish(&mut self) {
        self.sorted.sort_by(|a, b| a.0.cmp(b.0));
    }

    fn get(&self, id: &str) -> Option<&V> {
        self.index.get(id)
    }

    fn contains_key(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    fn len(&self) -> usize {
        self.sorted.len()
    }

    fn keys(&self) -> impl Iterator<Item = &&'a str> {
        self.sorted.iter().map(|(k, _)| k)
    }

    fn values(&self) -> impl Iterator<Item = &V> {
        self.sorted.iter().map(|(_, v)| v)
    }

    fn iter(&self) -> impl Iterator<Item = (&&'a str, &V)> {
        self.sorted.iter().map(|(k, v)| (k, v))
    }
}

impl<V> std::ops::Index<&str> for Keyed<'_, V> {
    type Output = V;
    fn index(&self, id: &str) -> &V {
        &self.index[id]
    }
}

/// `text` compared without regard to case: lower-cased, copied only when
/// that changes it.
fn fold_case(text: &str) -> Cow<'_, str> {
    if text.is_ascii() && !text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// Whether `id` is a well-formed user id (rule 3): `^[a-z0-9][a-z0-9._-]{0,62}$`.
pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// Whether `email` is a plausible address: one `@`, a dot-atom local part and
/// a domain of at least two labels. Deliverability is not ours to judge.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'/'
                        | b'='
                        | b'?'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'{'
                        | b'|'
                        | b'}'
                        | b'~'
                        | b'.'
                )
        });
    // Checked for every user of a large set: no allocation.
    let mut labels = 0;
    let domain_ok = domain.len() <= 253
        && domain.split('.').all(|l| {
            labels += 1;
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    local_ok && domain_ok && labels >= 2
}

impl Checker {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Whether an approval makes its user a CSI administrator today.
    fn is_admin_approval(&self, approval: &raw::RawApproval) -> bool {
        approval.role.value == raw::RawRole::Admin
            && approval
                .expires
                .as_ref()
                .and_then(|e| Date::parse(e))
                .is_none_or(|d| self.today < d)
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

        // A grant whose `expires` day has begun is treated as absent (docs/DOMAIN.md §3
        // rule 9): it is not desired, so a plan revokes it from the state.
        let active = |expires: &Option<Spanned<String>>| {
            let expires = expires.as_ref().and_then(|e| Date::parse(e));
            expires.is_none_or(|d| self.today < d).then_some(expires)
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

    fn tenancy<'a>(&mut self, raw: &'a RawConfig) -> Option<&'a RawTenancy> {
        let Some(first) = raw.tenancies.first() else {
            if self.unreadable.tenancy {
                return None;
            }
            self.push(
                Diagnostic::new(
                    Rule::TenancyMissing,
                    None,
                    "the config set has no `tenancy` section",
                )
                .with_hint("add `tenancy: { name: …, csi: \"…\", admin: … }` to one file"),
            );
            return None;
        };
        for extra in &raw.tenancies[1..] {
            self.push(
                Diagnostic::at(
                    Rule::TenancyDuplicate,
                    extra.location,
                    "a second `tenancy` section: a config set describes exactly one tenancy",
                )
                .with_related(first.location, "the first `tenancy` is")
                .with_hint("keep one `tenancy`; use a separate config set for another tenancy"),
            );
        }
        let t = &first.value;
        if !is_valid_id(&t.name) {
            self.push(
                Diagnostic::at(
                    Rule::InvalidTenancyName,
                    t.name.location,
                    format!("tenancy name `{}` is not a valid name", t.name.value),
                )
                .with_hint(id_hint(&t.name)),
            );
        }
        if t.csi.is_empty() || !t.csi.bytes().all(|b| b.is_ascii_digit()) {
            self.push(
                Diagnostic::at(
                    Rule::CsiNotDigits,
                    t.csi.location,
                    format!("CSI `{}` is not all digits", t.csi.value),
                )
                .with_hint("a CSI is the number on the support contract, e.g. \"20817431\""),
            );
        }
        Some(t)
    }

    /// Rule 3 and 10 for each user, and duplicate ids and emails.
    fn users<'a>(&mut self, raw: &'a RawConfig) -> Keyed<'a, Declared<'a>> {
        let mut users: Keyed<Declared> = Keyed::with_capacity(raw.users.len());
        let mut emails: HashMap<Cow<str>, Location> = HashMap::with_capacity(raw.users.len());
        // A set of many users names few zones: each is looked up once.
        let mut zones: HashMap<&str, bool> = HashMap::new();
        for entry in &raw.users {
            let id = &entry.id;
            if let Some(first) = users.get(id.value.as_str()) {
                self.push(
                    Diagnostic::at(
                        Rule::DuplicateKey,
                        id.location,
                        format!("user `{}` is declared twice", id.value),
                    )
                    .with_related(first.id.location, "first declared")
                    .with_hint("a user id is declared in one place; rename or remove one"),
                );
                continue;
            }
            if !is_valid_id(id) {
                self.push(
                    Diagnostic::at(
                        Rule::InvalidUserId,
                        id.location,
                        format!("user id `{}` is not a valid id", id.value),
                    )
                    .with_hint(id_hint(id)),
                );
            }
            let user = &entry.user;
            if !is_valid_email(&user.email) {
                self.push(
                    Diagnostic::at(
                        Rule::InvalidEmail,
                        user.email.location,
                        format!("`{}` is not a valid email address", user.email.value),
                    )
                    .with_hint("write it as `name@domain.example`"),
                );
            } else {
                let folded = fold_case(&user.email);
                if let Some(&first) = emails.get(&folded) {
                    self.push(
                        Diagnostic::at(
                            Rule::DuplicateEmail,
                            user.email.location,
                            format!(
                                "email `{}` is already used by another user",
                                user.email.value
                            ),
                        )
                        .with_related(first, "first used")
                        .with_hint(
                            "emails are compared without regard to case; each user needs its own",
                        ),
                    );
                } else {
                    emails.insert(folded, user.email.location);
                }
            }
            if let Some(account) = &user.support_account {
                self.phone(&account.phone);
                let zone = account.timezone.value.as_str();
                let known = *zones.entry(zone).or_insert_with(|| {
                    let canonical = iana_time_zone(zone);
                    if let Some(canonical) = canonical.as_ref().filter(|c| *c != zone) {
                        self.recased.insert(zone.to_string(), canonical.clone());
                    }
                    canonical.is_some()
                });
                if !known {
                    let hint = self.timezone_hint(&account.timezone);
                    self.push(
                        Diagnostic::at(
                            Rule::InvalidTimezone,
                            account.timezone.location,
                            format!("`{}` is not an IANA time zone", account.timezone.value),
                        )
                        .with_hint(hint),
                    );
                }
            }
            users.insert(&id.value, Declared { id, entry });
        }
        users.finish();
        self.renames(&users);
        users
    }

    /// Rule 10: a phone Oracle Support can call. Not empty, not only
    /// characters that show nothing, and not the marker `--redact` writes
    /// in its place (an export with it is a copy to share, not to apply).
    fn phone(&mut self, phone: &Spanned<String>) {
        let written = phone.value.as_str();
        if written.trim() == REDACTED || written.trim() == REDACTED_CHANGED {
            self.push(
                Diagnostic::at(
                    Rule::RedactedPhone,
                    phone.location,
                    format!(
                        "support account phone is `{}`, the marker `--redact` writes in place of a number",
                        written.trim()
                    ),
                )
                .with_hint("a redacted export is a copy to share: applied, it would overwrite the real number; export without `--redact` for a copy to apply, or write the number here"),
            );
        } else if written.chars().all(is_invisible) {
            let message = if written.trim().is_empty() {
                "support account phone is empty".to_string()
            } else {
                format!(
                    "support account phone `{written}` has no visible character: it is not a number"
                )
            };
            self.push(
                Diagnostic::at(Rule::EmptyPhone, phone.location, message)
                    .with_hint("Oracle Support calls this number for severity 1 SRs"),
            );
        }
    }

    fn renames(&mut self, users: &Keyed<'_, Declared<'_>>) {
        let mut claimed: HashMap<&str, Location> = HashMap::new();
        for (id, declared) in users.iter() {
            let Some(previously) = &declared.entry.user.previously else {
                continue;
            };
            let old = previously.value.as_str();
            let problem = if !is_valid_id(old) {
                Some(format!("`{old}` is not a valid user id"))
            } else if old == *id {
                Some(format!("user `{id}` names itself as its previous id"))
            } else if users.contains_key(old) {
                Some(format!(
                    "`{old}` is still declared, so `{id}` cannot be its rename"
                ))
            } else {
                None
            };
            if let Some(message) = problem {
                self.push(
                    Diagnostic::at(Rule::InvalidRename, previously.location, message)
                        .with_hint("`previously` names the id a user had before a rename; remove it once applied"),
                );
                continue;
            }
            if let Some(&first) = claimed.get(old) {
                self.push(
                    Diagnostic::at(
                        Rule::InvalidRename,
                        previously.location,
                        format!("`{old}` is claimed as the previous id of two users"),
                    )
                    .with_related(first, "first claimed"),
                );
            } else {
                claimed.insert(old, previously.location);
            }
        }
    }

    /// Rule 2: the tenancy admin is declared and has a support account.
    fn admin(&mut self, tenancy: &RawTenancy, users: &Keyed<'_, Declared<'_>>) {
        let admin = &tenancy.admin;
        if self.unreadable.users.contains(&admin.value) {
            return;
        }
        match users.get(admin.value.as_str()) {
            None => {
                let declare = format!(
                    "declare `{}` under `users:` with a `support_account`",
                    admin.value
                );
                let hint = self.reference_hint(&admin.value, users, &declare);
                self.push(
                    Diagnostic::at(
                        Rule::AdminNotDeclared,
                        admin.location,
                        format!("tenancy admin `{}` is not a declared user", admin.value),
                    )
                    .with_hint(hint),
                );
            }
            Some(declared) if declared.entry.user.support_account.is_none() => self.push(
                Diagnostic::at(
                    Rule::AdminWithoutSupportAccount,
                    admin.location,
                    format!("tenancy admin `{}` has no support account", admin.value),
                )
                .with_related(declared.id.location, "the user is declared")
                .with_hint(
                    "the CSI administrator needs a MOS account: add `support_account` to the user",
                ),
            ),
            Some(_) => {}
        }
    }

    fn unknown_user(
        &mut self,
        name: &Spanned<String>,
        users: &Keyed<'_, Declared<'_>>,
        what: &str,
    ) {
        let declare = format!(
            "declare it under `users:` as `{}: {{ email: … }}`",
            name.value
        );
        let hint = self.reference_hint(&name.value, users, &declare);
        self.push(
            Diagnostic::at(
                Rule::UnknownUser,
                name.location,
                format!("{what} `{}` is not a declared user", name.value),
            )
            .with_hint(hint),
        );
    }

    /// The hint for a reference to `name`, which no user is declared as.
    /// Most often the reference is what is wrong, so it names the declared
    /// user meant: the one whose email or display name `name` is, else the
    /// id closest to it — a likely typo alone, a distant one beside
    /// `declare`, the other way out.
    fn reference_hint(
        &mut self,
        name: &str,
        users: &Keyed<'_, Declared<'_>>,
        declare: &str,
    ) -> String {
        if let Some((id, how)) = self.person(name, users) {
            return format!(
                "did you mean `{id}`? `{name}` is its {how}, and references name users by id"
            );
        }
        if let Some(best) = self.suggest_user(name, users) {
            return format!("did you mean `{best}`?");
        }
        match self.closest_user(name, users) {
            Some(closest) => format!(
                "if it means a declared user, write its id (the closest is `{closest}`); if it is a new user, {declare}"
            ),
            None => declare.to_string(),
        }
    }

    /// The declared user whose email, email's local part or display name
    /// `name` is (without regard to case), and which of them it is.
    fn person(
        &mut self,
        name: &str,
        users: &Keyed<'_, Declared<'_>>,
    ) -> Option<(String, &'static str)> {
        let people = self.people.get_or_insert_with(|| {
            let mut people = HashMap::with_capacity(users.len() * 2);
            for (&id, declared) in users.iter() {
                let user = &declared.entry.user;
                let email = user.email.value.to_lowercase();
                if let Some((local, _)) = email.split_once('@') {
                    people
                        .entry(local.to_string())
                        .or_insert((id.to_string(), "email's start"));
                }
                if let Some(display) = &user.name {
                    people
                        .entry(display.value.to_lowercase())
                        .or_insert((id.to_string(), "display name"));
                }
                people.insert(email, (id.to_string(), "email"));
            }
            people
        });
        people.get(&name.to_lowercase()).cloned()
    }

    /// The declared id most like `name`, however little, while the budget
    /// of comparisons lasts.
    fn closest_user<'u>(&mut self, name: &str, users: &Keyed<'u, Declared<'_>>) -> Option<&'u str> {
        if users.len() > self.suggestions_left {
            return None;
        }
        self.suggestions_left -= users.len();
        crate::diag::closest(name, users.keys().copied())
    }

    /// Checks a reference to a user; true when the user is declared.
    fn known(
        &mut self,
        name: &Spanned<String>,
        users: &Keyed<'_, Declared<'_>>,
        what: &str,
    ) -> bool {
        if users.contains_key(name.value.as_str()) {
            true
        } else {
            if !self.unreadable.users.contains(&name.value) {
                self.unknown_user(name, users, what);
            }
            false
        }
    }

    /// Reports a second entry for one user in a section.
    fn first_per_user<'a, T>(
        &mut self,
        seen: &mut Keyed<'a, &'a Spanned<T>>,
        user: &'a Spanned<String>,
        entry: &'a Spanned<T>,
        first_user: impl Fn(&T) -> Location,
        what: &str,
    ) -> bool {
        if let Some(first) = seen.get(user.value.as_str()) {
            self.push(
                Diagnostic::at(
                    Rule::DuplicateKey,
                    user.location,
                    format!("a second {what} for user `{}`", user.value),
                )
                .with_related(first_user(&first.value), "the first is")
                .with_hint(format!(
                    "a user has at most one {what}; merge them into one"
                )),
            );
            false
        } else {
            seen.insert(&user.value, entry);
            true
        }
    }

    fn tenancy_admin_grant(&mut self, user: &Spanned<String>, admin_id: &str, what: &str) -> bool {
        if user.value == admin_id {
            self.push(
                Diagnostic::at(
                    Rule::TenancyAdminGrant,
                    user.location,
                    format!("`{admin_id}` is the tenancy admin and needs no {what}"),
                )
                .with_hint(
                    "the tenancy admin is a CSI administrator by definition; remove this entry",
                ),
            );
            true
        } else {
            false
        }
    }

    fn memberships<'a>(
        &mut self,
        raw: &'a RawConfig,
        users: &Keyed<'_, Declared<'_>>,
        admin_id: &str,
    ) -> Keyed<'a, &'a Spanned<raw::RawMembership>> {
        let mut seen = Keyed::with_capacity(raw.memberships.len());
        for m in &raw.memberships {
            if !self.known(&m.user, users, "membership user") {
                continue;
            }
            if !self.first_per_user(&mut seen, &m.user, m, |f| f.user.location, "membership") {
                continue;
            }
            if self.tenancy_admin_grant(&m.user, admin_id, "membership") {
                continue;
            }
            let declared = &users[m.user.value.as_str()];
            if declared.entry.user.support_account.is_none() {
                self.push(
                    Diagnostic::at(
                        Rule::MembershipWithoutSupportAccount,
                        m.user.location,
                        format!(
                            "`{}` has no support account, so it cannot request CSI membership",
                            m.user.value
                        ),
                    )
                    .with_related(declared.id.location, "the user is declared")
                    .with_hint(
                        "add `support_account` to the user, or give it a support link instead",
                    ),
                );
            }
        }
        seen.finish();
        seen
    }

    fn links_by_user<'a>(
        &mut self,
        raw: &'a RawConfig,
        users: &Keyed<'_, Declared<'_>>,
        admin_id: &str,
    ) -> Keyed<'a, &'a Spanned<raw::RawSupportLink>> {
        let mut seen = Keyed::with_capacity(raw.support_links.len());
        for link in &raw.support_links {
            if !self.known(&link.user, users, "linked user") {
                continue;
            }
            if !self.first_per_user(
                &mut seen,
                &link.user,
                link,
                |f| f.user.location,
                "support link",
            ) {
                continue;
            }
            self.tenancy_admin_grant(&link.user, admin_id, "support link");
        }
        seen.finish();
        seen
    }

    fn approvals<'a>(
        &mut self,
        raw: &'a RawConfig,
        users: &Keyed<'_, Declared<'_>>,
        admin_id: &str,
        memberships: &Keyed<'_, &Spanned<raw::RawMembership>>,
        links: &Keyed<'_, &Spanned<raw::RawSupportLink>>,
    ) -> Keyed<'a, &'a Spanned<raw::RawApproval>> {
        let mut seen = Keyed::with_capacity(raw.approvals.len());
        for a in &raw.approvals {
            if !self.known(&a.user, users, "approved user") {
                continue;
            }
            if !self.first_per_user(&mut seen, &a.user, a, |f| f.user.location, "approval") {
                continue;
            }
            if self.tenancy_admin_grant(&a.user, admin_id, "approval") {
                continue;
            }
            if !memberships.contains_key(a.user.value.as_str())
                && !self.unreadable.memberships.contains(&a.user.value)
            {
                // Both steps an approval needs, when both are missing: a
                // membership request needs a support account (rule 4).
                let user = a.user.value.as_str();
                let (message, hint) = if users[user].entry.user.support_account.is_none() {
                    (
                        format!(
                            "`{user}` has no membership request to approve, nor the support account a request needs"
                        ),
                        format!(
                            "add `support_account` to the user `{user}`, and `- user: {user}` under `memberships:`"
                        ),
                    )
                } else {
                    (
                        format!("`{user}` has no membership request to approve"),
                        format!("add `- user: {user}` under `memberships:`"),
                    )
                };
                self.push(
                    Diagnostic::at(Rule::ApprovalWithoutMembership, a.user.location, message)
                        .with_hint(hint),
                );
            }
            self.access(a);
            if let Some(link) = links.get(a.user.value.as_str()) {
                self.push(
                    Diagnostic::at(
                        Rule::LinkedUserApproved,
                        a.user.location,
                        format!(
                            "`{}` has a support link, so it acts through the CSI admin and cannot also be approved",
                            a.user.value
                        ),
                    )
                    .with_related(link.user.location, "the support link is")
                    .with_hint("keep either the approval (own MOS access) or the link (acts through the admin)"),
                );
            }
            self.expiry(a.expires.as_ref(), "approval");
        }
        // `approved_by` is checked once every approval is known, since an
        // approver's own approval may come later in the files.
        seen.finish();
        for a in seen.values() {
            if let Some(by) = &a.approved_by
                && self.known(by, users, "approver")
                && by.value != admin_id
                && !self.unreadable.approvals.contains(&by.value)
                && !seen
                    .get(by.value.as_str())
                    .is_some_and(|b| self.is_admin_approval(b))
            {
                // An approval outlives its approver's role (as in My Oracle
                // Support), so that the state of any day reads back; a new
                // one by a non-administrator is refused when planned
                // against the state (`grants_made`).
                self.push(
                    Diagnostic::at(
                        Rule::ApproverNoLongerAdmin,
                        by.location,
                        format!(
                            "`{}` is not a CSI administrator now: an approval it granted while it was one stays valid, but it cannot grant a new one",
                            by.value
                        ),
                    )
                    .with_hint(administrators_hint(admin_id, &seen, self.today)),
                );
            }
        }
        seen.finish();
        seen
    }

    /// Rule 6: every chain of admin approvals ends at the tenancy admin.
    fn check_approval_chains(
        &mut self,
        approvals: &Keyed<'_, &Spanned<raw::RawApproval>>,
        admin_id: &str,
    ) {
        // approver of each admin-role approval, where the approver is itself
        // an admin-role approval (other cases end a chain or were reported).
        let parent = |user: &str| -> Option<&str> {
            let by = approvals.get(user)?.approved_by.as_ref()?;
            let by = by.value.as_str();
            (by != admin_id
                && approvals
                    .get(by)
                    .is_some_and(|b| b.role.value == raw::RawRole::Admin))
            .then_some(by)
        };
        // Each approval is walked once: a walk stops at the first approval
        // an earlier walk reached, so a long chain costs its length, not
        // its length squared.
        let mut walked: HashMap<&str, usize> = HashMap::with_capacity(approvals.len());
        for (walk, &start) in approvals.keys().enumerate() {
            if walked.contains_key(start) {
                continue;
            }
            let mut path = vec![start];
            let mut current = start;
            walked.insert(start, walk);
            while let Some(next) = parent(current) {
                match walked.get(next) {
                    // Reached by an earlier walk: its loop, if any, is reported.
                    Some(&earlier) if earlier != walk => break,
                    Some(_) => {
                        let pos = path.iter().position(|&p| p == next).unwrap_or(0);
                        self.approval_cycle(&path[pos..], approvals, admin_id);
                        break;
                    }
                    None => {
                        walked.insert(next, walk);
                        path.push(next);
                        current = next;
                    }
                }
            }
        }
    }

    fn approval_cycle(
        &mut self,
        cycle: &[&str],
        approvals: &Keyed<'_, &Spanned<raw::RawApproval>>,
        admin_id: &str,
    ) {
        let Some(&first) = cycle.iter().min() else {
            return;
        };
        let shown: Vec<String> = cycle_from(cycle, first)
            .iter()
            .map(|c| format!("`{c}`"))
            .collect();
        let by = approvals[first]
            .approved_by
            .as_ref()
            .map_or(approvals[first].location, |b| b.location);
        self.push(
            Diagnostic::at(
                Rule::ApprovalCycle,
                by,
                format!(
                    "approvals form a loop: {} → {}",
                    shown.join(" → "),
                    shown[0]
                ),
            )
            .with_hint(format!(
                "approval chains start at the tenancy admin: let `{admin_id}` approve one of them"
            )),
        );
    }

    fn links(
        &mut self,
        links: &Keyed<'_, &Spanned<raw::RawSupportLink>>,
        users: &Keyed<'_, Declared<'_>>,
        admin_id: &str,
        approvals: &Keyed<'_, &Spanned<raw::RawApproval>>,
        memberships: &Keyed<'_, &Spanned<raw::RawMembership>>,
    ) {
        for (&user, link) in links.iter() {
            if let Some(via) = &link.via
                && self.known(via, users, "`via` administrator")
                && via.value != admin_id
                && !self.unreadable.approvals.contains(&via.value)
                && !approvals
                    .get(via.value.as_str())
                    .is_some_and(|a| self.is_admin_approval(a))
            {
                self.push(
                    Diagnostic::at(
                        Rule::LinkInactive,
                        via.location,
                        format!(
                            "`{}` is not a CSI administrator now, so this link is inactive: `{user}` cannot open SRs until it is moved to a current administrator",
                            via.value
                        ),
                    )
                    .with_hint(administrators_hint(admin_id, approvals, self.today)),
                );
            }
            if user != admin_id
                && memberships.contains_key(user)
                && !approvals.contains_key(user)
                && !self.unreadable.approvals.contains(user)
            {
                self.push(
                    Diagnostic::at(
                        Rule::LinkedUserPending,
                        link.user.location,
                        format!("`{user}` is linked and also has a pending membership request"),
                    )
                    .with_related(memberships[user].user.location, "the request is")
                    .with_hint("a linked user acts through the CSI admin; the request will not be approved while the link stands"),
                );
            }
            self.expiry(link.expires.as_ref(), "support link");
        }
    }

    /// What an approval grants: with role `user`, at least one privilege,
    /// each listed once (an admin holds them all, whatever is listed).
    fn access(&mut self, approval: &raw::RawApproval) {
        let listed = approval.access.as_ref().map_or(&[][..], |l| &l.value[..]);
        let mut seen: Vec<&Spanned<raw::RawPrivilege>> = Vec::with_capacity(3);
        for privilege in listed {
            match seen.iter().find(|p| p.value == privilege.value) {
                Some(first) => self.push(
                    Diagnostic::at(
                        Rule::DuplicateAccess,
                        privilege.location,
                        format!(
                            "`{}` is listed twice in `access`",
                            privilege_name(privilege.value)
                        ),
                    )
                    .with_related(first.location, "first listed")
                    .with_hint("list each privilege once; remove this one"),
                ),
                None => seen.push(privilege),
            }
        }
        if approval.role.value == raw::RawRole::User && listed.is_empty() {
            let user = &approval.user.value;
            let place = approval
                .access
                .as_ref()
                .map_or(approval.user.location, |l| l.location);
            self.push(
                Diagnostic::at(
                    Rule::ApprovalWithoutAccess,
                    place,
                    format!("`{user}` is approved with no access: the approval grants nothing"),
                )
                .with_hint("list what it grants, e.g. `access: [create_sr, view_sr]`, or remove the approval and the membership request"),
            );
        }
    }

    /// Rule 9: a valid date; one already past is warned about.
    fn expiry(&mut self, expires: Option<&Spanned<String>>, what: &str) {
        let Some(expires) = expires else { return };
        match Date::parse(&expires.value) {
            None => {
                let written = expires.value.as_str();
                let d = match Date::impossible(written) {
                    Some(why) => {
                        let hint = match Date::last_of_month(written) {
                            Some(last) => format!("the last day of that month is {last}"),
                            None => "months run from 01 to 12".to_string(),
                        };
                        Diagnostic::at(
                            Rule::InvalidDate,
                            expires.location,
                            format!("`{written}` is an impossible date: {why}"),
                        )
                        .with_hint(hint)
                    }
                    None => Diagnostic::at(
                        Rule::InvalidDate,
                        expires.location,
                        format!("`{written}` is not a valid date"),
                    )
                    .with_hint("write dates as YYYY-MM-DD, e.g. 2027-06-30"),
                };
                self.push(d);
            }
            Some(date) if date <= self.today => self.push(
                Diagnostic::at(
                    Rule::ExpiredGrant,
                    expires.location,
                    format!("this {what} expired on {date}; it grants nothing, and apply removes it from the state"),
                )
                .with_hint("move `expires` to a later date to renew it, or remove the entry once nothing names it (an approver's or a link's administrator may be named still)"),
            ),
            Some(_) => {}
        }
    }

    /// Oracle recommends at least two CSI administrators.
    fn single_admin(
        &mut self,
        tenancy: &RawTenancy,
        approvals: &Keyed<'_, &Spanned<raw::RawApproval>>,
    ) {
        let today = self.today;
        let others = approvals
            .values()
            .filter(|a| a.role.value == raw::RawRole::Admin)
            .filter(|a| {
                a.expires
                    .as_ref()
                    .and_then(|e| Date::parse(e))
                    .is_none_or(|d| today < d)
            })
            .count();
        if others == 0 && self.unreadable.approvals.is_empty() && self.unreadable.users.is_empty() {
            self.push(
                Diagnostic::at(
                    Rule::SingleCsiAdmin,
                    tenancy.admin.location,
                    format!("`{}` is the CSI's only administrator", tenancy.admin.value),
                )
                .with_hint("approve a second user with `role: admin`; if the last administrator leaves, only Oracle Support can appoint one"),
            );
        }
    }
}

/// The model of the entries `selection` names, made of their strings,
/// moved out of `raw`.
fn build(raw: &mut RawConfig, selection: Selection) -> Model {
    let take = std::mem::take::<String>;
    let tenancy = &mut raw.tenancies[0].value;
    let admin = tenancy.admin.value.clone();
    let zones = selection.zones;
    // A time zone as the database spells it (`asia/seoul` is `Asia/Seoul`).
    let zone = |written: String| match zones.get(&written) {
        Some(canonical) => canonical.clone(),
        None => written,
    };
    // `approved_by` and `via` name the tenancy admin when not given.
    let taken_or_admin = |given: &mut Option<Spanned<String>>| {
        given
            .as_mut()
            .map_or_else(|| admin.clone(), |g| take(&mut g.value))
    };
    let tenancy = Tenancy {
        name: take(&mut tenancy.name.value),
        csi: take(&mut tenancy.csi.value),
        home_region: tenancy.home_region.as_mut().map(|r| take(&mut r.value)),
        admin: take(&mut tenancy.admin.value),
    };

    // Every map is built from its entries in key order at once (a bulk
    // build), not by one search and insert per entry.
    let mut users = Vec::with_capacity(selection.users.len());
    let mut support_accounts = Vec::with_capacity(selection.users.len());
    let mut renames = Vec::new();
    for index in selection.users {
        let entry = &mut raw.users[index];
        let id = take(&mut entry.id.value);
        let user = &mut entry.user;
        if let Some(account) = &mut user.support_account {
            let account = &mut account.value;
            support_accounts.push((
                id.clone(),
                SupportAccount {
                    phone: take(&mut account.phone.value),
                    timezone: zone(take(&mut account.timezone.value)),
                },
            ));
        }
        if let Some(previously) = &mut user.previously {
            renames.push((id.clone(), take(&mut previously.value)));
        }
        let value = User {
            email: take(&mut user.email.value),
            name: user.name.as_mut().map(|n| take(&mut n.value)),
        };
        users.push((id, value));
    }
    let memberships = selection
        .memberships
        .into_iter()
        .map(|index| take(&mut raw.memberships[index].value.user.value))
        .collect();
    let approvals = selection
        .approvals
        .into_iter()
        .map(|(index, expires)| {
            let a = &mut raw.approvals[index].value;
            // An administrator holds every privilege, whatever is listed
            // (docs/DOMAIN.md §3): store it so, and a listed subset is no difference.
            let access = if a.role.value == raw::RawRole::Admin {
                Privilege::ALL.into_iter().collect()
            } else {
                a.access
                    .as_ref()
                    .map(|list| {
                        list.iter()
                            .map(|p| match p.value {
                                raw::RawPrivilege::CreateSr => Privilege::CreateSr,
                                raw::RawPrivilege::ViewSr => Privilege::ViewSr,
                                raw::RawPrivilege::Download => Privilege::Download,
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let approval = Approval {
                role: match a.role.value {
                    raw::RawRole::User => Role::User,
                    raw::RawRole::Admin => Role::Admin,
                },
                access,
                approved_by: taken_or_admin(&mut a.approved_by),
                expires,
            };
            (take(&mut a.user.value), approval)
        })
        .collect();
    let support_links = selection
        .links
        .into_iter()
        .map(|(index, expires)| {
            let link = &mut raw.support_links[index].value;
            let value = SupportLink {
                via: taken_or_admin(&mut link.via),
                expires,
            };
            (take(&mut link.user.value), value)
        })
        .collect();
    Model {
        tenancy,
        users: users.into_iter().collect(),
        support_accounts: support_accounts.into_iter().collect(),
        memberships,
        approvals,
        support_links,
        renames: renames.into_iter().collect(),
    }
}

fn cycle_from<'a>(cycle: &[&'a str], first: &str) -> Vec<&'a str> {
    let start = cycle.iter().position(|&c| c == first).unwrap_or(0);
    cycle[start..]
        .iter()
        .chain(&cycle[..start])
        .copied()
        .collect()
}

/// The CSI administrators by name: the tenancy admin and the users approved
/// with role `admin` (the first few of them).
fn administrators_hint(
    admin_id: &str,
    approvals: &Keyed<'_, &Spanned<raw::RawApproval>>,
    today: Date,
) -> String {
    const SHOWN: usize = 5;
    let admins: Vec<&str> = approvals
        .iter()
        .filter(|(_, a)| {
            a.role.value == raw::RawRole::Admin
                && a.expires
                    .as_ref()
                    .and_then(|e| Date::parse(e))
                    .is_none_or(|d| today < d)
        })
        .map(|(id, _)| *id)
        .collect();
    let mut names: Vec<String> = admins
        .iter()
        .take(SHOWN)
        .map(|id| format!("`{id}`"))
        .collect();
    if admins.len() > SHOWN {
        names.push(format!("{} more", admins.len() - SHOWN));
    }
    match names.split_last() {
        None => format!(
            "the only CSI administrator is the tenancy admin `{admin_id}`; approve a user with `role: admin` for another"
        ),
        Some((last, [])) => {
            format!("the CSI administrators are the tenancy admin `{admin_id}` and {last}")
        }
        Some((last, rest)) => format!(
            "the CSI administrators are the tenancy admin `{admin_id}`, {} and {last}",
            rest.join(", ")
        ),
    }
}

fn privilege_name(privilege: raw::RawPrivilege) -> &'static str {
    match privilege {
        raw::RawPrivilege::CreateSr => "create_sr",
        raw::RawPrivilege::ViewSr => "view_sr",
        raw::RawPrivilege::Download => "download",
    }
}

fn id_hint(id: &str) -> String {
    let lowered: String = id
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if lowered != id && is_valid_id(&lowered) {
        format!("ids are lowercase letters, digits, `.`, `_` and `-`: try `{lowered}`")
    } else {
        "ids are 1 to 63 lowercase letters, digits, `.`, `_` and `-`, starting with a letter or digit".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_pattern() {
        for ok in ["alice", "a", "0", "dan.kim", "a_b-c", &"a".repeat(63)] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["", "Alice", "-a", ".a", "a b", "a@b", &"a".repeat(64), "ä"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn emails_are_plausible_addresses() {
        for ok in [
            "a@b.example",
            "dan.kim+sr@acme.co.kr",
            "A@X.EXAMPLE",
            "o'k!#$%&*/=?^_`{|}~-@x-y.example",
        ] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.example",
            "a@@b.example",
            "a b@c.example",
            "a@-b.example",
            "a..b@c.example",
            "a@b..example",
            "a@b.example.",
            "a\"b@c.example",
            "a@b_c.example",
            "a@b.-example",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    /// Checks one file of YAML on 2026-11-24, as `validate` would.
    fn checked(yaml: &str) -> (Option<Model>, Vec<Diagnostic>) {
        let (mut loaded, mut diagnostics) =
            crate::config::load_files([("a.yaml", yaml.as_bytes())]);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let (model, found) = check(&mut loaded.raw, Date::parse("2026-11-24").unwrap());
        diagnostics.extend(found);
        (model, diagnostics)
    }

    fn of(diagnostics: &[Diagnostic], rule: Rule) -> Vec<&Diagnostic> {
        diagnostics.iter().filter(|d| d.rule == rule).collect()
    }

    /// A tenancy of `dankim` (named "Dan Kim"), with `erin` its second
    /// administrator, then `more` YAML under it (users first).
    fn tenancy(users: &str, rest: &str) -> String {
        format!(
            "tenancy: {{ name: t, csi: \"1\", admin: dankim }}\nusers:\n  dankim: {{ email: dan.kim@acme.example, name: Dan Kim, support_account: {{ phone: \"1\", timezone: UTC }} }}\n  erin: {{ email: Erin.Lee@acme.example, name: Erin Lee, support_account: {{ phone: \"2\", timezone: UTC }} }}\n{users}memberships:\n  - user: erin\napprovals:\n  - user: erin\n    role: admin\n{rest}"
        )
    }

    #[test]
    fn a_reference_by_email_or_name_is_pointed_at_the_id() {
        for (written, id, how) in [
            ("dan.kim@acme.example", "dankim", "email"),
            ("DAN.KIM@ACME.EXAMPLE", "dankim", "email"),
            ("dan.kim", "dankim", "email's start"),
            ("Dan Kim", "dankim", "display name"),
            ("erin lee", "erin", "display name"),
            ("erin.lee@acme.example", "erin", "email"),
        ] {
            for rest in [
                format!("support_links:\n  - user: bob\n    via: \"{written}\"\n"),
                format!(
                    "  - user: carl\n    role: user\n    access: [create_sr]\n    approved_by: \"{written}\"\n"
                ),
            ] {
                let users = "  bob: { email: bob@acme.example }\n  carl: { email: carl@acme.example, support_account: { phone: \"3\", timezone: UTC } }\n";
                let yaml = if rest.starts_with("support_links") {
                    tenancy(users, &rest)
                } else {
                    tenancy(users, &rest).replace(
                        "  - user: erin\napprovals",
                        "  - user: erin\n  - user: carl\napprovals",
                    )
                };
                let (_, found) = checked(&yaml);
                let unknown = of(&found, Rule::UnknownUser);
                assert_eq!(unknown.len(), 1, "{written}: {found:?}");
                let hint = unknown[0].hint.as_deref().unwrap_or_default();
                assert!(
                    hint.starts_with(&format!("did you mean `{id}`? `{written}` is its {how}")),
                    "{written}: {hint}"
                );
            }
        }
    }

    #[test]
    fn a_reference_like_no_id_names_the_closest_and_how_to_declare_it() {
        let yaml = tenancy("", "support_links:\n  - user: dankim\n").replace(
            "memberships:\n  - user: erin",
            "memberships:\n  - user: erin\n  - user: zed",
        );
        let (_, found) = checked(&yaml);
        let unknown = of(&found, Rule::UnknownUser);
        assert_eq!(unknown.len(), 1, "{found:?}");
        let hint = unknown[0].hint.as_deref().unwrap_or_default();
        assert!(hint.contains("the closest is `"), "{hint}");
        assert!(
            hint.contains("declare it under `users:` as `zed: { email: … }`"),
            "{hint}"
        );
        // A likely typo is only that.
        let yaml =
            tenancy("", "").replace("  - user: erin\napprovals", "  - user: erni\napprovals");
        let (_, found) = checked(&yaml);
        let unknown = of(&found, Rule::UnknownUser);
        assert_eq!(unknown[0].hint.as_deref(), Some("did you mean `erin`?"));
        // So is the tenancy admin's.
        let yaml = tenancy("", "").replace("admin: dankim }", "admin: Dan Kim }");
        let (_, found) = checked(&yaml);
        let hint = of(&found, Rule::AdminNotDeclared)[0]
            .hint
            .clone()
            .unwrap_or_default();
        assert!(hint.starts_with("did you mean `dankim`?"), "{hint}");
    }

    #[test]
    fn an_approval_missing_both_steps_names_both() {
        let users = "  carol: { email: carol@acme.example }\n  alice: { email: alice@acme.example, support_account: { phone: \"3\", timezone: UTC } }\n";
        let rest = "  - user: carol\n    role: user\n    access: [create_sr]\n  - user: alice\n    role: user\n    access: [create_sr]\n";
        let (_, found) = checked(&tenancy(users, rest));
        let missing = of(&found, Rule::ApprovalWithoutMembership);
        assert_eq!(missing.len(), 2, "{found:?}");
        let carol = missing[0].hint.as_deref().unwrap_or_default();
        assert_eq!(
            carol,
            "add `support_account` to the user `carol`, and `- user: carol` under `memberships:`"
        );
        assert!(missing[0].message.contains("nor the support account"));
        assert_eq!(
            missing[1].hint.as_deref(),
            Some("add `- user: alice` under `memberships:`")
        );
        // Each step, taken as the hint says, leaves no finding about it.
        let fixed = tenancy(
            "  carol: { email: carol@acme.example, support_account: { phone: \"4\", timezone: UTC } }\n  alice: { email: alice@acme.example, support_account: { phone: \"3\", timezone: UTC } }\n",
            rest,
        )
        .replace("  - user: erin\napprovals", "  - user: erin\n  - user: carol\n  - user: alice\napprovals");
        let (model, found) = checked(&fixed);
        assert!(model.is_some() && found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_link_through_a_non_administrator_names_the_administrators() {
        for admins in [0usize, 1, 5, 8] {
            let mut users = String::from(
                "  bob: { email: bob@acme.example }\n  al: { email: al@acme.example, support_account: { phone: \"9\", timezone: UTC } }\n",
            );
            let mut members = String::from("  - user: al\n");
            let mut approvals =
                String::from("  - user: al\n    role: user\n    access: [create_sr]\n");
            for i in 0..admins {
                users.push_str(&format!("  adm{i}: {{ email: adm{i}@acme.example, support_account: {{ phone: \"{i}\", timezone: UTC }} }}\n"));
                members.push_str(&format!("  - user: adm{i}\n"));
                approvals.push_str(&format!("  - user: adm{i}\n    role: admin\n"));
            }
            let yaml = format!(
                "tenancy: {{ name: t, csi: \"1\", admin: dankim }}\nusers:\n  dankim: {{ email: d@acme.example, support_account: {{ phone: \"1\", timezone: UTC }} }}\n{users}memberships:\n{members}approvals:\n{approvals}support_links:\n  - user: bob\n    via: al\n"
            );
            let (_, found) = checked(&yaml);
            let via = of(&found, Rule::LinkInactive);
            assert_eq!(via.len(), 1, "{found:?}");
            let hint = via[0].hint.as_deref().unwrap_or_default();
            assert!(hint.contains("the tenancy admin `dankim`"), "{hint}");
            for i in 0..admins.min(5) {
                assert!(hint.contains(&format!("`adm{i}`")), "{admins}: {hint}");
            }
            if admins > 5 {
                assert!(
                    hint.ends_with(&format!("and {} more", admins - 5)),
                    "{hint}"
                );
                assert!(!hint.contains("`adm5`"), "{hint}");
            }
            if admins == 0 {
                assert!(hint.starts_with("the only CSI administrator"), "{hint}");
            }
        }
    }

    /// Days in a month of the Gregorian calendar, worked out here rather
    /// than asked of the date library the check uses.
    fn days_in(year: i32, month: u32) -> u32 {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    #[test]
    fn an_impossible_date_is_called_impossible_with_its_month_s_last_day() {
        let months = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        for year in [2027, 2028, 2100, 2400] {
            for month in 1..=12u32 {
                let last = days_in(year, month);
                let real = format!("{year}-{month:02}-{last:02}");
                assert!(Date::parse(&real).is_some(), "{real}");
                assert_eq!(Date::impossible(&real), None);
                for day in [last + 1, 31, 0] {
                    let written = format!("{year}-{month:02}-{day:02}");
                    if day != 0 && day <= last {
                        continue;
                    }
                    let why = Date::impossible(&written).unwrap_or_default();
                    let expected = if day == 0 {
                        "there is no day 0".to_string()
                    } else {
                        format!("{} {year} has {last} days", months[month as usize - 1])
                    };
                    assert_eq!(why, expected, "{written}");
                    assert_eq!(
                        Date::last_of_month(&written).map(|d| d.to_string()),
                        Some(real.clone())
                    );
                }
            }
            for month in [0, 13, 99] {
                let written = format!("{year}-{month:02}-01");
                assert_eq!(
                    Date::impossible(&written),
                    Some(format!("there is no month {month}"))
                );
            }
        }
        // Not written YYYY-MM-DD: not impossible, only wrong.
        for written in ["2027-2-3", "27-02-03", "2027/02/03", "tomorrow", ""] {
            assert_eq!(Date::impossible(written), None, "{written}");
        }
        let (_, found) = checked(&tenancy("", "    expires: 2030-02-30\n"));
        let invalid = of(&found, Rule::InvalidDate);
        assert_eq!(
            invalid[0].message,
            "`2030-02-30` is an impossible date: February 2030 has 28 days"
        );
        assert_eq!(
            invalid[0].hint.as_deref(),
            Some("the last day of that month is 2030-02-28")
        );
    }

    #[test]
    fn an_approval_that_grants_nothing_is_warned_about() {
        for (role, access, warned) in [
            ("user", None, true),
            ("user", Some("[]"), true),
            ("user", Some("[download]"), false),
            ("admin", None, false),
            ("admin", Some("[]"), false),
        ] {
            let users = "  al: { email: al@acme.example, support_account: { phone: \"3\", timezone: UTC } }\n";
            let mut rest = format!("  - user: al\n    role: {role}\n");
            if let Some(access) = access {
                rest.push_str(&format!("    access: {access}\n"));
            }
            let yaml = tenancy(users, &rest).replace(
                "  - user: erin\napprovals",
                "  - user: erin\n  - user: al\napprovals",
            );
            let (model, found) = checked(&yaml);
            assert_eq!(
                of(&found, Rule::ApprovalWithoutAccess).len(),
                usize::from(warned),
                "{role} {access:?}: {found:?}"
            );
            // A warning: the model is still made.
            assert!(model.is_some(), "{found:?}");
        }
    }

    #[test]
    fn a_time_zone_in_any_case_is_stored_as_the_database_spells_it() {
        let names: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_owned())
            .collect();
        assert!(names.len() > 300);
        let mut users = String::new();
        for (i, name) in names.iter().enumerate() {
            // Every other letter's case turned, and some all lower or upper.
            let written: String = match i % 3 {
                0 => name.to_lowercase(),
                1 => name.to_uppercase(),
                _ => name
                    .chars()
                    .enumerate()
                    .map(|(j, c)| {
                        if j % 2 == 0 {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    })
                    .collect(),
            };
            users.push_str(&format!(
                "  z{i}: {{ email: z{i}@acme.example, support_account: {{ phone: \"1\", timezone: \"{written}\" }} }}\n"
            ));
        }
        let (model, found) = checked(&tenancy(&users, ""));
        assert!(found.is_empty(), "{:?}", &found[..found.len().min(3)]);
        let model = model.expect("a model");
        for (i, name) in names.iter().enumerate() {
            let zone = &model.support_accounts[&format!("z{i}")].timezone;
            let expected = jiff::tz::db()
                .get(name)
                .ok()
                .and_then(|z| z.iana_name().map(str::to_owned))
                .unwrap_or_else(|| name.clone());
            assert_eq!(zone, &expected, "{name}");
        }
    }

    #[test]
    fn a_phone_must_show_something_and_not_be_the_redaction_marker() {
        let invisible = [
            '\u{200B}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{3164}', '\u{00A0}', ' ',
            '\u{202E}', '\u{2800}',
        ];
        // Every phone of one to four invisible characters is refused; one
        // visible character among them makes it a phone.
        let mut phones: Vec<(String, bool)> = Vec::new();
        for a in invisible {
            for b in invisible {
                phones.push((format!("{a}{b}"), false));
                phones.push((format!("{a}{b}{a}{b}"), false));
                phones.push((format!("{a}5{b}"), true));
            }
        }
        phones.push((String::new(), false));
        for (phone, is_phone) in phones {
            let users = format!(
                "  al: {{ email: al@acme.example, support_account: {{ phone: {}, timezone: UTC }} }}\n",
                serde_json::to_string(&phone).unwrap()
            );
            let (_, found) = checked(&tenancy(&users, ""));
            assert_eq!(
                of(&found, Rule::EmptyPhone).is_empty(),
                is_phone,
                "{phone:?}: {found:?}"
            );
        }
        for marker in ["(redacted)", "(redacted, changed)", " (redacted) "] {
            let users = format!(
                "  al: {{ email: al@acme.example, support_account: {{ phone: \"{marker}\", timezone: UTC }} }}\n"
            );
            let (model, found) = checked(&tenancy(&users, ""));
            assert_eq!(
                of(&found, Rule::RedactedPhone).len(),
                1,
                "{marker}: {found:?}"
            );
            assert!(model.is_none());
        }
        // A number that merely mentions it is a phone.
        let users = "  al: { email: al@acme.example, support_account: { phone: \"+1 555 0100 (redacted on request)\", timezone: UTC } }\n";
        let (_, found) = checked(&tenancy(users, ""));
        assert!(found.is_empty(), "{found:?}");
    }

    proptest::proptest! {
        /// Each privilege listed again is one warning, at the repeat,
        /// naming where it was first listed; a list of distinct ones none.
        #[test]
        fn every_repeat_in_access_is_warned_about_at_the_repeat(
            picks in proptest::collection::vec(0usize..3, 1..8),
        ) {
            let names = ["create_sr", "view_sr", "download"];
            let listed: Vec<&str> = picks.iter().map(|&p| names[p]).collect();
            let users = "  al: { email: al@acme.example, support_account: { phone: \"3\", timezone: UTC } }\n";
            let rest = format!("  - user: al\n    role: user\n    access: [{}]\n", listed.join(", "));
            let yaml = tenancy(users, &rest)
                .replace("  - user: erin\napprovals", "  - user: erin\n  - user: al\napprovals");
            let (_, found) = checked(&yaml);
            let repeats = of(&found, Rule::DuplicateAccess);
            let distinct: std::collections::BTreeSet<_> = listed.iter().collect();
            proptest::prop_assert_eq!(repeats.len(), listed.len() - distinct.len());
            let line = yaml.lines().position(|l| l.starts_with("    access:")).unwrap() as u32 + 1;
            for d in repeats {
                let place = d.location.unwrap();
                proptest::prop_assert_eq!(place.line, line);
                let related = d.related[0].location;
                proptest::prop_assert!(related.column < place.column);
            }
        }
    }
}
