//! Diagnostics: the catalogue of rules, located findings, and their rendering.
//!
//! Every problem supportctl finds in a config set is a [`Diagnostic`] naming a
//! [`Rule`] — a stable code, a kebab-case name and a severity — and the place
//! in a file it is about. Checking collects them all; rendering sorts them by
//! file and line and prints them as text (with the source line and a caret),
//! JSON, or GitHub workflow commands. Nothing here reads files: the caller
//! hands in the sources it loaded.

mod escape;
mod render;
mod sources;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, OnceLock};

use anstyle::{AnsiColor, Style};
use serde::Serialize;

pub use escape::*;
pub use render::*;
pub use sources::*;

/// How bad a finding is. Errors fail `validate` and block a plan; warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! rules {
    ($( $variant:ident = ($code:literal, $name:literal, $severity:ident, $summary:literal, $example:literal); )*) => {
        /// Every rule supportctl checks. Codes and names are stable: scripts and
        /// editors match on them, so a rule is never renumbered, only retired.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule {
            $( $variant, )*
        }

        impl Rule {
            pub const ALL: &'static [Rule] = &[ $( Rule::$variant, )* ];

            /// The stable code, e.g. `E101`.
            pub fn code(self) -> &'static str {
                match self { $( Rule::$variant => $code, )* }
            }

            /// The stable kebab-case name, e.g. `csi-not-digits`.
            pub fn name(self) -> &'static str {
                match self { $( Rule::$variant => $name, )* }
            }

            pub fn severity(self) -> Severity {
                match self { $( Rule::$variant => Severity::$severity, )* }
            }

            /// One line saying what the rule asks for.
            pub fn summary(self) -> &'static str {
                match self { $( Rule::$variant => $summary, )* }
            }

            /// A one-line example of a config that breaks the rule.
            pub fn example(self) -> &'static str {
                match self { $( Rule::$variant => $example, )* }
            }
        }
    };
}

rules! {
    // Structure: files, YAML and the shape of the config.
    ConfigNotFound = ("E001", "config-not-found", Error,
        "the config path exists and holds at least one `*.yaml`/`*.yml` file",
        "supportctl validate ./empty-dir");
    Unreadable = ("E002", "unreadable", Error,
        "every config file can be read, and is UTF-8; no symlink loops",
        "a file with mode 000, or bytes that are not UTF-8");
    YamlSyntax = ("E003", "yaml-syntax", Error,
        "every file is well-formed YAML",
        "users: [alice");
    InvalidType = ("E004", "invalid-type", Error,
        "every value has the type the format expects",
        "users: [alice, bob]   # a mapping of id to user is expected");
    MissingField = ("E005", "missing-field", Error,
        "required fields are present",
        "users: { alice: { name: Alice } }   # no `email`");
    UnknownField = ("E006", "unknown-field", Error,
        "no field or section the format does not define",
        "users: { alice: { emial: a@x.example } }");
    DuplicateKey = ("E007", "duplicate-key", Error,
        "a key is defined once: a YAML mapping key, a user id, one membership, approval or link per user",
        "approvals: [{user: alice, role: user}, {user: alice, role: admin}]");
    TenancyMissing = ("E008", "tenancy-missing", Error,
        "the config set has a `tenancy` section",
        "a config set with `users:` only");
    TenancyDuplicate = ("E009", "tenancy-duplicate", Error,
        "the config set has exactly one `tenancy` section",
        "`tenancy:` in both a.yaml and b.yaml");
    InputLimit = ("E010", "input-limit", Error,
        "files stay within the size, nesting, node and alias limits",
        "a 100 MB file, or a YAML \"billion laughs\" of nested aliases");
    // Domain rules, numbered as in docs/DOMAIN.md §3.
    CsiNotDigits = ("E101", "csi-not-digits", Error,
        "rule 1: `tenancy.csi` is all digits",
        "tenancy: { csi: \"CSI-2081\" }");
    AdminNotDeclared = ("E102", "admin-not-declared", Error,
        "rule 2: `tenancy.admin` is a declared user",
        "tenancy: { admin: dankim }   # no user `dankim`");
    AdminWithoutSupportAccount = ("E103", "admin-without-support-account", Error,
        "rule 2: the tenancy admin has a support account",
        "users: { dankim: { email: d@x.example } }   # no `support_account`");
    InvalidUserId = ("E104", "invalid-user-id", Error,
        "rule 3: user ids match `^[a-z0-9][a-z0-9._-]{0,62}$`",
        "users: { Alice: { email: a@x.example } }");
    InvalidEmail = ("E105", "invalid-email", Error,
        "rule 3: emails are valid addresses",
        "users: { alice: { email: alice-at-example } }");
    DuplicateEmail = ("E106", "duplicate-email", Error,
        "rule 3: emails are unique in the tenancy, compared case-insensitively",
        "alice and bob both with `email: A@x.example` / `a@x.example`");
    MembershipWithoutSupportAccount = ("E107", "membership-without-support-account", Error,
        "rule 4: a membership needs the user to have a support account",
        "memberships: [{user: bob}]   # bob has no `support_account`");
    ApprovalWithoutMembership = ("E108", "approval-without-membership", Error,
        "rule 5: an approval needs a membership request for that user",
        "approvals: [{user: carol, role: user}]   # carol is not in `memberships`");
    ApprovalCycle = ("E111", "approval-cycle", Error,
        "rule 6: approval chains are rooted at the tenancy admin",
        "alice approved_by erin, erin approved_by alice, both role admin");
    TenancyAdminGrant = ("E112", "tenancy-admin-grant", Error,
        "rule 7: the tenancy admin has no membership, approval or support link of its own",
        "memberships: [{user: dankim}]   # dankim is tenancy.admin");
    LinkedUserApproved = ("E113", "linked-user-approved", Error,
        "rule 8: a linked user acts through the CSI admin and has no approval",
        "bob in both `support_links` and `approvals`");
    InvalidDate = ("E114", "invalid-date", Error,
        "rule 9: `expires` is a real date, written YYYY-MM-DD",
        "expires: 2027-02-30");
    EmptyPhone = ("E115", "empty-phone", Error,
        "rule 10: a support account's phone is not empty: it has a visible character",
        "support_account: { phone: \"\", timezone: Asia/Seoul }");
    InvalidTimezone = ("E116", "invalid-timezone", Error,
        "rule 10: a support account's timezone is an IANA zone",
        "support_account: { phone: \"+82 2 555 0100\", timezone: Seoul }");
    UnknownUser = ("E117", "unknown-user", Error,
        "a membership, approval, link, `approved_by` or `via` names a declared user",
        "memberships: [{user: alcie}]");
    InvalidRename = ("E118", "invalid-rename", Error,
        "`previously` names an id no other user has now, and only one user claims it",
        "users: { bob: { email: b@x.example, previously: alice } }   # alice still declared");
    InvalidTenancyName = ("E119", "invalid-tenancy-name", Error,
        "`tenancy.name` matches `^[a-z0-9][a-z0-9._-]{0,62}$`",
        "tenancy: { name: \"Acme Prod\" }");
    RedactedPhone = ("E120", "redacted-phone", Error,
        "rule 10: a support account's phone is a number, not the `(redacted)` that `export --redact` writes in its place",
        "support_account: { phone: \"(redacted)\", timezone: Asia/Seoul }   # from a redacted export");
    // Warnings: reported, never fail `validate`.
    LinkedUserPending = ("W201", "linked-user-pending", Warning,
        "rule 8: a linked user with a pending membership request acts through the CSI admin all the same",
        "bob in `support_links` and in `memberships`");
    ExpiredGrant = ("W202", "expired-grant", Warning,
        "rule 9: an `expires` in the past makes the grant absent",
        "expires: 2020-01-01");
    SingleCsiAdmin = ("W203", "single-csi-admin", Warning,
        "a CSI has at least two administrators, as Oracle recommends",
        "no approval with `role: admin`");
    ApproverNoLongerAdmin = ("W204", "approver-no-longer-admin", Warning,
        "rule 6: an approval names a CSI administrator as its approver; one whose approver is no longer one stays valid (replaces E109)",
        "approvals: [{user: alice, role: user, approved_by: carol}]   # carol's admin approval expired");
    LinkInactive = ("W205", "link-inactive", Warning,
        "rule 6: a link goes through a CSI administrator; one through someone who is not one today is inactive, and the user cannot open SRs (replaces E110)",
        "support_links: [{user: bob, via: carol}]   # carol's admin approval expired");
    ApprovalWithoutAccess = ("W206", "approval-without-access", Warning,
        "an approval with `role: user` grants at least one privilege",
        "approvals: [{user: alice, role: user}]   # no `access`: alice can do nothing");
    DuplicateAccess = ("W207", "duplicate-access", Warning,
        "a privilege is listed once in an approval's `access`",
        "access: [create_sr, view_sr, create_sr]");
}

/// A place in a config file: 1-based line and column (in characters), and the
/// length of the offending text in characters (0 when it is a point).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    /// Index into the [`Sources`] the diagnostic is rendered with. 32 bits,
    /// so that a location takes 16 bytes: a large config set holds millions.
    pub file: u32,
    pub line: u32,
    pub column: u32,
    pub len: u32,
}

/// A second place a diagnostic speaks of, such as the first of two duplicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Related {
    pub location: Location,
    pub label: String,
}

/// One finding about a config set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub rule: Rule,
    /// `None` when the finding is about the config set as a whole.
    pub location: Option<Location>,
    pub message: String,
    pub hint: Option<String>,
    pub related: Vec<Related>,
}

impl Diagnostic {
    pub fn new(rule: Rule, location: Option<Location>, message: impl Into<String>) -> Self {
        Diagnostic {
            rule,
            location,
            message: message.into(),
            hint: None,
            related: Vec::new(),
        }
    }

    pub fn at(rule: Rule, location: Location, message: impl Into<String>) -> Self {
        Self::new(rule, Some(location), message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_related(mut self, location: Location, label: impl Into<String>) -> Self {
        self.related.push(Related {
            location,
            label: label.into(),
        });
        self
    }

    pub fn severity(&self) -> Severity {
        self.rule.severity()
    }

    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }
}

/// Sorts diagnostics by file, line and column, then code, and drops exact repeats.
pub fn sort(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by(|a, b| {
        let key = |d: &Diagnostic| {
            (
                d.location.is_some(),
                d.location.map(|l| (l.file, l.line, l.column)),
                d.rule,
            )
        };
        key(a).cmp(&key(b)).then_with(|| a.message.cmp(&b.message))
    });
    diagnostics.dedup();
}
