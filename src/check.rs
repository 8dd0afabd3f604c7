//! Checking: a raw config in, every rule applied, a [`Model`] out.
//!
//! This is the second stage of input (ripgrep's `LowArgs` → `HiArgs`): the
//! raw entries still carry their places and may be wrong in every way; the
//! model that comes out names only users that exist, grants that follow the
//! domain's rules, and defaults filled in. Every violation is collected, none
//! stops the check. Pure: no files, no clock (the caller passes today).
//! Rule numbers are those of SPEC §2.

use std::borrow::Cow;

use foldhash::{HashMap, HashMapExt as _};

use crate::config::{RawConfig, RawTenancy, RawUserEntry, Spanned, Unreadable, raw};
use crate::diag::{Diagnostic, Location, Rule, did_you_mean};
use crate::model::{
    Approval, Date, Model, Privilege, Role, SupportAccount, SupportLink, Tenancy, User,
    is_iana_time_zone,
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

        // A grant whose `expires` day has begun is treated as absent (SPEC §2
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
                if account.phone.trim().is_empty() {
                    self.push(
                        Diagnostic::at(
                            Rule::EmptyPhone,
                            account.phone.location,
                            "support account phone is empty",
                        )
                        .with_hint("Oracle Support calls this number for severity 1 SRs"),
                    );
                }
                let zone = account.timezone.value.as_str();
                if !*zones.entry(zone).or_insert_with(|| is_iana_time_zone(zone)) {
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
                let hint = match self.suggest_user(&admin.value, users) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!(
                        "declare `{}` under `users:` with a `support_account`",
                        admin.value
                    ),
                };
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
        let mut d = Diagnostic::at(
            Rule::UnknownUser,
            name.location,
            format!("{what} `{}` is not a declared user", name.value),
        );
        if let Some(best) = self.suggest_user(&name.value, users) {
            d = d.with_hint(format!("did you mean `{best}`?"));
        } else {
            d = d.with_hint(format!(
                "declare it under `users:` as `{}: {{ email: … }}`",
                name.value
            ));
        }
        self.push(d);
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
                self.push(
                    Diagnostic::at(
                        Rule::ApprovalWithoutMembership,
                        a.user.location,
                        format!("`{}` has no membership request to approve", a.user.value),
                    )
                    .with_hint(format!(
                        "add `- user: {}` under `memberships:`",
                        a.user.value
                    )),
                );
            }
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
                    .with_hint(admin_hint(admin_id)),
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
                    .with_hint(admin_hint(admin_id)),
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

    /// Rule 9: a valid date; one already past is warned about.
    fn expiry(&mut self, expires: Option<&Spanned<String>>, what: &str) {
        let Some(expires) = expires else { return };
        match Date::parse(&expires.value) {
            None => self.push(
                Diagnostic::at(
                    Rule::InvalidDate,
                    expires.location,
                    format!("`{}` is not a valid date", expires.value),
                )
                .with_hint("write dates as YYYY-MM-DD, e.g. 2027-06-30"),
            ),
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
                    timezone: take(&mut account.timezone.value),
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
            // (SPEC §2): store it so, and a listed subset is no difference.
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

fn admin_hint(admin_id: &str) -> String {
    format!(
        "CSI administrators are the tenancy admin `{admin_id}` and users approved with `role: admin`"
    )
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
}
