//! Structured config sets, valid and with one injected fault, loaded and
//! checked in process (no binary, no files: `config::load_files` and
//! `cli::check_loaded`, as `validate` runs them).
//!
//! The generator builds a valid config set from a stream of random choices —
//! users, support accounts, memberships, approvals with chains of
//! administrators, support links, names YAML could misread, block and flow
//! style — and spreads its entries over one to four files. The laws:
//!
//! - a valid set checks with no error, and its model holds exactly what was
//!   generated, whatever the files it is spread over;
//! - a set with one injected fault (a missing field, a wrong type, an unknown
//!   key, a dangling reference, a duplicate, a bad date, an approval by a
//!   non-admin, … one per rule of docs/DOMAIN.md §3) reports at least that fault's
//!   rule, at the line of the file it was injected into;
//! - either way, nothing panics, and the invariants of the fuzz harness hold
//!   (`fuzz/harness.rs`: every place inside its file, every renderer, the
//!   plan and the export read back, and both ways of building the YAML tree
//!   agree).
//!
//! The same harness replays the fuzzer's regressions (`fuzz/regressions/`)
//! and every fixture, so a fuzz finding stays fixed without nightly. Case
//! counts are modest; set `PROPTEST_CASES` to run more.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use supportctl::diag::{Diagnostic, Rule};
use supportctl::engine::Checked;

use crate::binary::{crate_root, data_dir, draw};

#[path = "../../fuzz/harness.rs"]
mod harness;

const POOL: [&str; 8] = ["dan", "ann", "bob", "cy", "dee", "eve", "fay", "gus"];
/// Names, each written as a JSON string (valid YAML), several of which YAML
/// would misread if written plain.
const NAMES: [&str; 9] = [
    "Ann Lee",
    // A right-to-left override and a zero-width space: escaped in output.
    "\u{202E}nimda\u{200B}",
    "null",
    "yes",
    "0123",
    "Zoë \"Z\" O'Neil",
    "- dash: colon",
    "#not a comment",
    "~",
];
/// Names written plain that YAML reads as numbers, finite or not (issue 17
/// §8): each must read as the text it is written as.
const NUMBER_NAMES: [&str; 12] = [
    ".inf", "-.Inf", "+.INF", ".nan", ".NaN", "1e999", "-1E400", "0x1F", "1e3", "12", "-7", "0.50",
];
const PHONES: [&str; 3] = ["+82 2 555 0100", "0012", "12345"];
const ZONES: [&str; 3] = ["UTC", "Asia/Seoul", "America/New_York"];
/// All after the harness's day: no grant is expired.
const DATES: [&str; 3] = ["2027-01-01", "2028-02-29", "2030-12-31"];
const ACCESS: [&str; 3] = ["create_sr", "view_sr", "download"];

/// A stream of random choices; past its end every choice is 0, so a shrunk
/// stream is a small, plain config set.
struct Choices<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Choices<'_> {
    /// A number below `n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        let byte = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        byte as usize % n
    }

    fn chance(&mut self, in_four: usize) -> bool {
        self.below(4) < in_four
    }
}

/// A YAML value as written: a scalar's text, or a mapping in block or flow style.
#[derive(Clone, Debug)]
enum Value {
    Text(String),
    Map(Vec<(String, Value)>, Flow),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Flow {
    Block,
    Flow,
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

/// A string written as YAML reads it back exactly.
fn quoted(s: &str) -> Value {
    Value::Text(serde_json::to_string(s).expect("a string"))
}

impl Value {
    fn flow(&self) -> String {
        match self {
            Value::Text(t) => t.clone(),
            Value::Map(fields, _) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.flow()))
                    .collect();
                format!("{{ {} }}", inner.join(", "))
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Tenancy,
    Users,
    Memberships,
    Approvals,
    SupportLinks,
    /// A section the format does not define.
    Unknown,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Section::Tenancy => "tenancy",
            Section::Users => "users",
            Section::Memberships => "memberships",
            Section::Approvals => "approvals",
            Section::SupportLinks => "support_links",
            Section::Unknown => "userz",
        }
    }
}

/// One entry of a section: the tenancy's fields, a user (`key` is its id),
/// or an item of a list section.
#[derive(Clone, Debug)]
struct Entry {
    section: Section,
    key: Option<String>,
    fields: Vec<(String, Value)>,
    file: usize,
    /// Raw lines written after the entry's fields (a syntax error).
    trailing: Option<String>,
}

impl Entry {
    fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    fn set(&mut self, name: &str, value: Value) {
        match self.fields.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value,
            None => self.fields.push((name.to_string(), value)),
        }
    }

    fn remove(&mut self, name: &str) {
        self.fields.retain(|(k, _)| k != name);
    }

    /// The user a list entry names.
    fn user(&self) -> Option<String> {
        match self.field("user")? {
            Value::Text(t) => Some(t.clone()),
            Value::Map(..) => None,
        }
    }
}

/// Where an injected fault must be reported: an entry's line (`""` for the
/// entry's own line — a user's id, a list item's dash, the `tenancy:` key —
/// or a field's key, `support_account.phone` inside a mapping).
#[derive(Clone, Debug)]
enum Expect {
    At(usize, String),
    /// The later of two places in load order (the second of two duplicates).
    Later((usize, String), (usize, String)),
    /// Anywhere in the entry's file (a syntax error's place is the parser's).
    InFile(usize),
}

fn at(entry: usize, path: &str) -> Expect {
    Expect::At(entry, path.to_string())
}

/// A config set as entries spread over files, and what it should report.
#[derive(Clone)]
struct Set {
    entries: Vec<Entry>,
    files: usize,
    fault: Option<(Fault, Rule, Expect)>,
}

/// The files of a set, each with the line of every entry's fields.
struct Rendered {
    files: Vec<String>,
    /// (entry, path) → (file, line).
    lines: BTreeMap<(usize, String), (usize, u32)>,
}

impl Set {
    fn render(&self) -> Rendered {
        let mut files = Vec::new();
        let mut lines = BTreeMap::new();
        for file in 0..self.files {
            let mut out = String::new();
            let mut line = 1u32;
            fn push(out: &mut String, line: &mut u32, text: String) {
                out.push_str(&text);
                out.push('\n');
                *line += 1;
            }
            if file == 0 {
                push(
                    &mut out,
                    &mut line,
                    "# generated by tests/it/config_props.rs".into(),
                );
            }
            let sections: BTreeSet<Section> = self
                .entries
                .iter()
                .filter(|e| e.file == file)
                .map(|e| e.section)
                .collect();
            for section in sections {
                let header = line;
                push(&mut out, &mut line, format!("{}:", section.name()));
                for (index, entry) in self.entries.iter().enumerate() {
                    if entry.file != file || entry.section != section {
                        continue;
                    }
                    let (first, indent) = match (section, &entry.key) {
                        (Section::Tenancy, _) => {
                            lines.insert((index, String::new()), (file, header));
                            (None, "  ")
                        }
                        (_, Some(key)) => {
                            lines.insert((index, String::new()), (file, line));
                            push(&mut out, &mut line, format!("  {key}:"));
                            (None, "    ")
                        }
                        (_, None) => {
                            lines.insert((index, String::new()), (file, line));
                            (Some("  - "), "    ")
                        }
                    };
                    let mut lead = first;
                    for (key, value) in &entry.fields {
                        let prefix = lead.take().unwrap_or(indent);
                        lines.insert((index, key.clone()), (file, line));
                        match value {
                            Value::Map(inner, Flow::Block) => {
                                push(&mut out, &mut line, format!("{prefix}{key}:"));
                                for (k, v) in inner {
                                    lines.insert((index, format!("{key}.{k}")), (file, line));
                                    push(
                                        &mut out,
                                        &mut line,
                                        format!("{indent}  {k}: {}", v.flow()),
                                    );
                                }
                            }
                            Value::Map(inner, Flow::Flow) => {
                                for (k, _) in inner {
                                    lines.insert((index, format!("{key}.{k}")), (file, line));
                                }
                                push(
                                    &mut out,
                                    &mut line,
                                    format!("{prefix}{key}: {}", value.flow()),
                                );
                            }
                            Value::Text(t) => {
                                push(&mut out, &mut line, format!("{prefix}{key}: {t}"));
                            }
                        }
                    }
                    if let Some(raw) = &entry.trailing {
                        lines.insert((index, "trailing".into()), (file, line));
                        push(&mut out, &mut line, raw.clone());
                    }
                }
            }
            files.push(out);
        }
        Rendered { files, lines }
    }

    fn add(&mut self, entry: Entry) -> usize {
        self.entries.push(entry);
        self.entries.len() - 1
    }

    fn indices(&self, section: Section) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&i| self.entries[i].section == section)
            .collect()
    }

    fn tenancy(&self) -> usize {
        self.indices(Section::Tenancy)[0]
    }

    fn admin(&self) -> String {
        match self.entries[self.tenancy()].field("admin") {
            Some(Value::Text(t)) => t.clone(),
            _ => unreachable!("the generator always writes the admin"),
        }
    }

    fn user_index(&self, id: &str) -> Option<usize> {
        self.indices(Section::Users)
            .into_iter()
            .find(|&i| self.entries[i].key.as_deref() == Some(id))
    }
}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some((fault, rule, _)) = &self.fault {
            writeln!(f, "fault {fault:?}, expecting {}", rule.code())?;
        }
        for (i, file) in self.render().files.iter().enumerate() {
            write!(f, "\n--- f{i}.yaml\n{file}")?;
        }
        Ok(())
    }
}

fn new_entry(
    section: Section,
    key: Option<&str>,
    fields: Vec<(&str, Value)>,
    file: usize,
) -> Entry {
    Entry {
        section,
        key: key.map(str::to_string),
        fields: fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        file,
        trailing: None,
    }
}

/// A valid config set from a stream of choices.
fn valid_set(c: &mut Choices) -> Set {
    let files = 1 + c.below(4);
    let mut set = Set {
        entries: Vec::new(),
        files,
        fault: None,
    };
    let admin = POOL[c.below(POOL.len())];
    let mut tenancy = vec![
        ("name", text(["acme-prod", "t", "0.x_y-z"][c.below(3)])),
        ("csi", quoted(["20817431", "0123", "9"][c.below(3)])),
    ];
    if c.chance(2) {
        tenancy.push(("home_region", text("ap-seoul-1")));
    }
    tenancy.push(("admin", text(admin)));
    let tenancy_file = c.below(files);
    set.add(new_entry(Section::Tenancy, None, tenancy, tenancy_file));

    // The CSI administrators so far: approvers are picked among the earlier
    // ones, so chains have no cycle.
    let mut admins = vec![admin.to_string()];
    for id in POOL {
        let is_admin = id == admin;
        if !is_admin && c.chance(1) {
            continue;
        }
        let mut fields = vec![("email", quoted(&format!("{id}@x.example")))];
        if c.chance(2) {
            fields.push(("name", quoted(NAMES[c.below(NAMES.len())])));
        } else if c.chance(1) {
            fields.push(("name", text(NUMBER_NAMES[c.below(NUMBER_NAMES.len())])));
        }
        let account = is_admin || c.chance(3);
        if account {
            let style = if c.chance(2) { Flow::Flow } else { Flow::Block };
            fields.push((
                "support_account",
                Value::Map(
                    vec![
                        ("phone".into(), quoted(PHONES[c.below(PHONES.len())])),
                        ("timezone".into(), text(ZONES[c.below(ZONES.len())])),
                    ],
                    style,
                ),
            ));
        }
        let file = c.below(files);
        set.add(new_entry(Section::Users, Some(id), fields, file));
        let member = account && !is_admin && c.chance(3);
        if member {
            let file = c.below(files);
            set.add(new_entry(
                Section::Memberships,
                None,
                vec![("user", text(id))],
                file,
            ));
        }
        let approved = member && c.chance(2);
        if approved {
            let role_admin = c.chance(1);
            let mut fields = vec![
                ("user", text(id)),
                ("role", text(if role_admin { "admin" } else { "user" })),
            ];
            let bits = c.below(8);
            if bits != 0 {
                let access: Vec<&str> = (0..3)
                    .filter(|b| bits & (1 << b) != 0)
                    .map(|b| ACCESS[b])
                    .collect();
                fields.push(("access", text(format!("[{}]", access.join(", ")))));
            }
            // One pick past the end leaves `approved_by` to its default.
            if let Some(by) = admins.get(c.below(admins.len() + 1)) {
                fields.push(("approved_by", text(by.clone())));
            }
            if c.chance(1) {
                fields.push(("expires", text(DATES[c.below(DATES.len())])));
            }
            let file = c.below(files);
            set.add(new_entry(Section::Approvals, None, fields, file));
            if role_admin {
                admins.push(id.to_string());
            }
        }
        if !is_admin && !approved && c.chance(1) {
            let mut fields = vec![("user", text(id))];
            if let Some(via) = admins.get(c.below(admins.len() + 1)) {
                fields.push(("via", text(via.clone())));
            }
            if c.chance(1) {
                fields.push(("expires", text(DATES[c.below(DATES.len())])));
            }
            let file = c.below(files);
            set.add(new_entry(Section::SupportLinks, None, fields, file));
        }
    }
    set
}

/// The faults the generator injects, one per rule of docs/DOMAIN.md §3 and then some.
#[derive(Clone, Copy, Debug)]
enum Fault {
    MissingEmail,
    MissingRole,
    EmailNotAString,
    AccessNotAList,
    UnknownRole,
    UnknownUserField,
    UnknownSection,
    DanglingMembership,
    DanglingApprover,
    DuplicateUserInFile,
    DuplicateUserAcrossFiles,
    DuplicateApproval,
    BadDate,
    ApproverNotAdmin,
    LinkViaNotAdmin,
    BadEmail,
    DuplicateEmail,
    BadUserId,
    CsiNotDigits,
    BadTenancyName,
    AdminNotDeclared,
    AdminWithoutAccount,
    EmptyPhone,
    BadTimezone,
    MembershipWithoutAccount,
    ApprovalWithoutMembership,
    TenancyAdminGrant,
    LinkedUserApproved,
    SecondTenancy,
    ExpiredGrant,
    YamlSyntax,
    SelfRename,
    ApprovalCycle,
}

const FAULTS: [Fault; 33] = [
    Fault::MissingEmail,
    Fault::MissingRole,
    Fault::EmailNotAString,
    Fault::AccessNotAList,
    Fault::UnknownRole,
    Fault::UnknownUserField,
    Fault::UnknownSection,
    Fault::DanglingMembership,
    Fault::DanglingApprover,
    Fault::DuplicateUserInFile,
    Fault::DuplicateUserAcrossFiles,
    Fault::DuplicateApproval,
    Fault::BadDate,
    Fault::ApproverNotAdmin,
    Fault::LinkViaNotAdmin,
    Fault::BadEmail,
    Fault::DuplicateEmail,
    Fault::BadUserId,
    Fault::CsiNotDigits,
    Fault::BadTenancyName,
    Fault::AdminNotDeclared,
    Fault::AdminWithoutAccount,
    Fault::EmptyPhone,
    Fault::BadTimezone,
    Fault::MembershipWithoutAccount,
    Fault::ApprovalWithoutMembership,
    Fault::TenancyAdminGrant,
    Fault::LinkedUserApproved,
    Fault::SecondTenancy,
    Fault::ExpiredGrant,
    Fault::YamlSyntax,
    Fault::SelfRename,
    Fault::ApprovalCycle,
];

/// A user of the pool that is not the tenancy admin, made when none is.
fn some_user(set: &mut Set, c: &mut Choices, with_account: bool) -> usize {
    let admin = set.admin();
    let candidates: Vec<usize> = set
        .indices(Section::Users)
        .into_iter()
        .filter(|&i| set.entries[i].key.as_deref() != Some(admin.as_str()))
        .filter(|&i| !with_account || set.entries[i].field("support_account").is_some())
        .collect();
    if candidates.is_empty() {
        fresh_user(set, c, "fx", with_account)
    } else {
        candidates[c.below(candidates.len())]
    }
}

/// A new user `id`, with a support account when asked, in a random file.
fn fresh_user(set: &mut Set, c: &mut Choices, id: &str, with_account: bool) -> usize {
    let mut fields = vec![("email", quoted(&format!("{id}@fault.example")))];
    if with_account {
        fields.push((
            "support_account",
            Value::Map(
                vec![
                    ("phone".into(), quoted("1")),
                    ("timezone".into(), text("UTC")),
                ],
                Flow::Block,
            ),
        ));
    }
    let file = c.below(set.files);
    set.add(new_entry(Section::Users, Some(id), fields, file))
}

/// A new user `id` with an account, a membership and an approval.
fn fresh_approval(set: &mut Set, c: &mut Choices, id: &str, role: &str) -> usize {
    fresh_user(set, c, id, true);
    let file = c.below(set.files);
    set.add(new_entry(
        Section::Memberships,
        None,
        vec![("user", text(id))],
        file,
    ));
    let file = c.below(set.files);
    set.add(new_entry(
        Section::Approvals,
        None,
        vec![("user", text(id)), ("role", text(role))],
        file,
    ))
}

/// An approval, made when the set has none.
fn some_approval(set: &mut Set, c: &mut Choices) -> usize {
    let approvals = set.indices(Section::Approvals);
    if approvals.is_empty() {
        fresh_approval(set, c, "fx-approved", "user")
    } else {
        approvals[c.below(approvals.len())]
    }
}

/// A support link, made when the set has none.
fn some_link(set: &mut Set, c: &mut Choices) -> usize {
    let links = set.indices(Section::SupportLinks);
    if links.is_empty() {
        fresh_user(set, c, "fx-linked", false);
        let file = c.below(set.files);
        set.add(new_entry(
            Section::SupportLinks,
            None,
            vec![("user", text("fx-linked"))],
            file,
        ))
    } else {
        links[c.below(links.len())]
    }
}

/// A file other than `file`, adding one when the set has a single file.
fn other_file(set: &mut Set, c: &mut Choices, file: usize) -> usize {
    if set.files == 1 {
        set.files = 2;
    }
    (file + 1 + c.below(set.files - 1)) % set.files
}

/// Injects `fault` into a valid set: what it breaks, the rule that must
/// report it, and where.
fn inject(set: &mut Set, c: &mut Choices, fault: Fault) {
    let (rule, expect) = match fault {
        Fault::MissingEmail => {
            let u = some_user(set, c, false);
            set.entries[u].remove("email");
            if set.entries[u].fields.is_empty() {
                // A user of nothing at all is a null, not a mapping.
                set.entries[u].set("name", quoted("No Email"));
            }
            (Rule::MissingField, at(u, ""))
        }
        Fault::MissingRole => {
            let a = some_approval(set, c);
            set.entries[a].remove("role");
            (Rule::MissingField, at(a, ""))
        }
        Fault::EmailNotAString => {
            let u = some_user(set, c, false);
            set.entries[u].set("email", text("[x@x.example, y@x.example]"));
            (Rule::InvalidType, at(u, "email"))
        }
        Fault::AccessNotAList => {
            let a = some_approval(set, c);
            set.entries[a].set("access", text("create_sr"));
            (Rule::InvalidType, at(a, "access"))
        }
        Fault::UnknownRole => {
            let a = some_approval(set, c);
            set.entries[a].set("role", text("superuser"));
            (Rule::InvalidType, at(a, "role"))
        }
        Fault::UnknownUserField => {
            let u = some_user(set, c, false);
            set.entries[u].set("emial", quoted("typo@x.example"));
            (Rule::UnknownField, at(u, "emial"))
        }
        Fault::UnknownSection => {
            let file = c.below(set.files);
            let e = set.add(new_entry(
                Section::Unknown,
                Some("q"),
                vec![("email", quoted("q@x.example"))],
                file,
            ));
            (Rule::UnknownField, Expect::At(e, "header".into()))
        }
        Fault::DanglingMembership => {
            let file = c.below(set.files);
            let e = set.add(new_entry(
                Section::Memberships,
                None,
                vec![("user", text("ghost"))],
                file,
            ));
            (Rule::UnknownUser, at(e, "user"))
        }
        Fault::DanglingApprover => {
            let a = some_approval(set, c);
            set.entries[a].set("approved_by", text("ghost"));
            (Rule::UnknownUser, at(a, "approved_by"))
        }
        Fault::DuplicateUserInFile | Fault::DuplicateUserAcrossFiles => {
            let u = some_user(set, c, false);
            let mut copy = set.entries[u].clone();
            if matches!(fault, Fault::DuplicateUserAcrossFiles) {
                copy.file = other_file(set, c, copy.file);
            }
            let d = set.add(copy);
            (
                Rule::DuplicateKey,
                Expect::Later((u, String::new()), (d, String::new())),
            )
        }
        Fault::DuplicateApproval => {
            let a = some_approval(set, c);
            let mut copy = set.entries[a].clone();
            copy.file = c.below(set.files);
            let d = set.add(copy);
            (
                Rule::DuplicateKey,
                Expect::Later((a, "user".into()), (d, "user".into())),
            )
        }
        Fault::BadDate => {
            let e = if c.chance(2) {
                some_approval(set, c)
            } else {
                some_link(set, c)
            };
            set.entries[e].set("expires", text("2027-02-30"));
            (Rule::InvalidDate, at(e, "expires"))
        }
        Fault::ApproverNotAdmin => {
            let a = some_approval(set, c);
            fresh_user(set, c, "fx-plain", false);
            set.entries[a].set("approved_by", text("fx-plain"));
            (Rule::ApproverNoLongerAdmin, at(a, "approved_by"))
        }
        Fault::LinkViaNotAdmin => {
            let l = some_link(set, c);
            fresh_user(set, c, "fx-plain", false);
            set.entries[l].set("via", text("fx-plain"));
            (Rule::LinkInactive, at(l, "via"))
        }
        Fault::BadEmail => {
            let u = some_user(set, c, false);
            set.entries[u].set("email", quoted("not-an-email"));
            (Rule::InvalidEmail, at(u, "email"))
        }
        Fault::DuplicateEmail => {
            let first = some_user(set, c, false);
            let second = fresh_user(set, c, "fx-twin", false);
            let Some(Value::Text(written)) = set.entries[first].field("email") else {
                unreachable!("every user has an email")
            };
            let email: String = serde_json::from_str(written).expect("a quoted email");
            let email = email.to_uppercase();
            set.entries[second].set("email", quoted(&email));
            (
                Rule::DuplicateEmail,
                Expect::Later((first, "email".into()), (second, "email".into())),
            )
        }
        Fault::BadUserId => {
            let u = fresh_user(set, c, "Bad_Id", false);
            (Rule::InvalidUserId, at(u, ""))
        }
        Fault::CsiNotDigits => {
            let t = set.tenancy();
            set.entries[t].set("csi", quoted("CSI-2081"));
            (Rule::CsiNotDigits, at(t, "csi"))
        }
        Fault::BadTenancyName => {
            let t = set.tenancy();
            set.entries[t].set("name", quoted("Acme Prod"));
            (Rule::InvalidTenancyName, at(t, "name"))
        }
        Fault::AdminNotDeclared => {
            let t = set.tenancy();
            set.entries[t].set("admin", text("ghost"));
            (Rule::AdminNotDeclared, at(t, "admin"))
        }
        Fault::AdminWithoutAccount => {
            let admin = set.admin();
            let u = set.user_index(&admin).expect("the admin is declared");
            set.entries[u].remove("support_account");
            let t = set.tenancy();
            (Rule::AdminWithoutSupportAccount, at(t, "admin"))
        }
        Fault::EmptyPhone | Fault::BadTimezone => {
            let u = if c.chance(2) {
                set.user_index(&set.admin()).expect("the admin is declared")
            } else {
                some_user(set, c, true)
            };
            let Some(Value::Map(mut account, style)) =
                set.entries[u].field("support_account").cloned()
            else {
                unreachable!("a user with an account")
            };
            let (field, value, rule) = match fault {
                Fault::EmptyPhone => ("phone", quoted(" "), Rule::EmptyPhone),
                _ => ("timezone", text("Mars/Olympus_Mons"), Rule::InvalidTimezone),
            };
            for (k, v) in &mut account {
                if k == field {
                    *v = value.clone();
                }
            }
            set.entries[u].set("support_account", Value::Map(account, style));
            (rule, at(u, &format!("support_account.{field}")))
        }
        Fault::MembershipWithoutAccount => {
            fresh_user(set, c, "fx-noacct", false);
            let file = c.below(set.files);
            let m = set.add(new_entry(
                Section::Memberships,
                None,
                vec![("user", text("fx-noacct"))],
                file,
            ));
            (Rule::MembershipWithoutSupportAccount, at(m, "user"))
        }
        Fault::ApprovalWithoutMembership => {
            fresh_user(set, c, "fx-nomember", true);
            let file = c.below(set.files);
            let a = set.add(new_entry(
                Section::Approvals,
                None,
                vec![("user", text("fx-nomember")), ("role", text("user"))],
                file,
            ));
            (Rule::ApprovalWithoutMembership, at(a, "user"))
        }
        Fault::TenancyAdminGrant => {
            let file = c.below(set.files);
            let admin = set.admin();
            let m = set.add(new_entry(
                Section::Memberships,
                None,
                vec![("user", text(admin))],
                file,
            ));
            (Rule::TenancyAdminGrant, at(m, "user"))
        }
        Fault::LinkedUserApproved => {
            // An approved user never has a link in a valid set: add one.
            let a = some_approval(set, c);
            let user = set.entries[a].user().expect("an approval names its user");
            let file = c.below(set.files);
            set.add(new_entry(
                Section::SupportLinks,
                None,
                vec![("user", text(user))],
                file,
            ));
            (Rule::LinkedUserApproved, at(a, "user"))
        }
        Fault::SecondTenancy => {
            let t = set.tenancy();
            let mut copy = set.entries[t].clone();
            copy.file = other_file(set, c, copy.file);
            let d = set.add(copy);
            (
                Rule::TenancyDuplicate,
                Expect::Later((t, String::new()), (d, String::new())),
            )
        }
        Fault::ExpiredGrant => {
            let e = if c.chance(2) {
                some_approval(set, c)
            } else {
                some_link(set, c)
            };
            set.entries[e].set("expires", text("2020-01-01"));
            (Rule::ExpiredGrant, at(e, "expires"))
        }
        Fault::YamlSyntax => {
            let u = some_user(set, c, false);
            set.entries[u].trailing =
                Some(["    name: [unclosed", "    name: \"open", "  \tbad: {"][c.below(3)].into());
            (Rule::YamlSyntax, Expect::InFile(u))
        }
        Fault::SelfRename => {
            let u = some_user(set, c, false);
            let id = set.entries[u].key.clone().unwrap_or_default();
            set.entries[u].set("previously", text(id));
            (Rule::InvalidRename, at(u, "previously"))
        }
        Fault::ApprovalCycle => {
            let a = fresh_approval(set, c, "cyc-a", "admin");
            let b = fresh_approval(set, c, "cyc-b", "admin");
            set.entries[a].set("approved_by", text("cyc-b"));
            set.entries[b].set("approved_by", text("cyc-a"));
            (Rule::ApprovalCycle, at(a, "approved_by"))
        }
    };
    set.fault = Some((fault, rule, expect));
}

fn check(set: &Set) -> (Rendered, Checked) {
    let rendered = set.render();
    let files: Vec<(String, &[u8])> = rendered
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (format!("f{i}.yaml"), f.as_bytes()))
        .collect();
    let checked = harness::load_and_check(&files);
    harness::assert_invariants(&checked);
    harness::assert_both_parsers_agree(&files, &checked);
    (rendered, checked)
}

fn show(checked: &Checked) -> String {
    checked
        .diagnostics
        .iter()
        .map(|d: &Diagnostic| {
            let place = d
                .location
                .map(|l| format!("f{}.yaml:{}:{}", l.file, l.line, l.column))
                .unwrap_or_default();
            format!("{place} {} {}\n", d.rule.code(), d.message)
        })
        .collect()
}

/// The law of a valid set: no error, and a model of exactly what was written.
fn assert_valid(set: &Set) -> Result<(), TestCaseError> {
    let (_, checked) = check(set);
    let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
    prop_assert_eq!(errors, 0, "{:?}\n{}", set, show(&checked));
    let model = checked.model.as_ref().expect("no error, so a model");
    let ids = |section| -> BTreeSet<String> {
        set.indices(section)
            .into_iter()
            .map(|i| {
                let e = &set.entries[i];
                e.key.clone().or_else(|| e.user()).unwrap_or_default()
            })
            .collect()
    };
    prop_assert_eq!(model.tenancy.admin.clone(), set.admin());
    prop_assert_eq!(
        model.users.keys().cloned().collect::<BTreeSet<_>>(),
        ids(Section::Users)
    );
    // Every name as written: quoted ones as JSON reads them, plain ones
    // (numbers among them) as their text.
    for i in set.indices(Section::Users) {
        let e = &set.entries[i];
        let written = match e.field("name") {
            Some(Value::Text(t)) if t.starts_with('"') => {
                Some(serde_json::from_str::<String>(t).expect("a JSON string"))
            }
            Some(Value::Text(t)) => Some(t.clone()),
            _ => None,
        };
        let id = e.key.clone().unwrap_or_default();
        prop_assert_eq!(
            model.users.get(&id).and_then(|u| u.name.clone()),
            written,
            "the name of `{}`",
            id
        );
    }
    prop_assert_eq!(model.memberships.clone(), ids(Section::Memberships));
    prop_assert_eq!(
        model.approvals.keys().cloned().collect::<BTreeSet<_>>(),
        ids(Section::Approvals)
    );
    prop_assert_eq!(
        model.support_links.keys().cloned().collect::<BTreeSet<_>>(),
        ids(Section::SupportLinks)
    );
    // The same entries in one file make the same model.
    let mut one = set.clone();
    one.files = 1;
    for e in &mut one.entries {
        e.file = 0;
    }
    let (_, single) = check(&one);
    prop_assert_eq!(single.model.as_ref(), Some(model), "{:?}", one);
    Ok(())
}

/// The law of a set with a fault: its rule is reported where it was injected.
fn assert_reported(set: &Set) -> Result<(), TestCaseError> {
    let (rendered, checked) = check(set);
    let (_, rule, expect) = set.fault.as_ref().expect("a fault was injected");
    let place = |(entry, path): &(usize, String)| -> (usize, u32) {
        let key = if path == "header" {
            (*entry, String::new())
        } else {
            (*entry, path.clone())
        };
        let (file, line) = *rendered
            .lines
            .get(&key)
            .unwrap_or_else(|| panic!("no line for {key:?} in {set:?}"));
        if path == "header" {
            // An unknown section is reported at its key, the line above its first entry.
            (file, line - 1)
        } else {
            (file, line)
        }
    };
    let wanted: Option<(usize, u32)> = match expect {
        Expect::At(entry, path) => Some(place(&(*entry, path.clone()))),
        Expect::Later(a, b) => Some(place(a).max(place(b))),
        Expect::InFile(_) => None,
    };
    let file = match expect {
        Expect::InFile(entry) => set.entries[*entry].file,
        _ => wanted.map(|(f, _)| f).unwrap_or_default(),
    };
    let found = checked.diagnostics.iter().any(|d| {
        d.rule == *rule
            && d.location.is_some_and(|l| {
                l.file as usize == file && wanted.is_none_or(|(_, line)| l.line == line)
            })
    });
    prop_assert!(
        found,
        "expected {} at f{}.yaml:{}\n{:?}\nfound:\n{}",
        rule.code(),
        file,
        wanted.map_or("?".to_string(), |(_, l)| l.to_string()),
        set,
        show(&checked)
    );
    if rule.severity() == supportctl::diag::Severity::Error {
        prop_assert!(checked.model.is_none(), "an error, yet a model");
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

fn choices() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..160)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn generated_valid_config_sets_check_clean(bytes in choices()) {
        let set = valid_set(&mut Choices { bytes: &bytes, at: 0 });
        assert_valid(&set)?;
    }

    #[test]
    fn an_injected_fault_is_reported_in_its_file_and_line(
        bytes in choices(),
        fault in prop::sample::select(FAULTS.to_vec()),
    ) {
        let mut c = Choices { bytes: &bytes, at: 0 };
        let mut set = valid_set(&mut c);
        inject(&mut set, &mut c, fault);
        assert_reported(&set)?;
    }
}

/// Every fault, on a few fixed sets: the smallest one, a large one, and
/// sets spread over several files (the last from proptest's fixed
/// generator, the same on every run).
#[test]
fn every_fault_is_reported_on_fixed_sets() {
    let streams: [Vec<u8>; 4] = [
        Vec::new(),
        vec![0xff; 160],
        (0..160u8).collect(),
        draw(
            &mut proptest::test_runner::TestRunner::deterministic(),
            prop::collection::vec(any::<u8>(), 160),
        ),
    ];
    for bytes in &streams {
        let set = valid_set(&mut Choices { bytes, at: 0 });
        assert_valid(&set).unwrap_or_else(|e| panic!("{e}"));
        for fault in FAULTS {
            let mut c = Choices { bytes, at: 0 };
            let mut set = valid_set(&mut c);
            inject(&mut set, &mut c, fault);
            assert_reported(&set).unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        }
    }
}

/// The fuzzer's findings, each fixed: they still load and check within
/// the invariants (`cargo fuzz` is not needed to replay them).
#[test]
fn fuzz_regressions_keep_the_invariants() {
    let dir = crate_root().join("fuzz/regressions");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let data = std::fs::read(&path).expect("a regression");
        let outcome = std::panic::catch_unwind(|| harness::run(&data));
        assert!(outcome.is_ok(), "{} fails again", path.display());
        count += 1;
    }
    assert!(count > 0, "no regressions in {}", dir.display());
}

/// Every config file and config folder of the fixtures and examples keeps
/// the invariants too (they seed the fuzzer's corpus).
#[test]
fn fixtures_keep_the_fuzz_invariants() {
    fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("a fixture folder")
            .map(|e| e.expect("an entry").path())
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                yaml_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut sets: Vec<Vec<PathBuf>> = Vec::new();
    for root in [data_dir(), crate_root().join("examples")] {
        let mut files = Vec::new();
        yaml_files(&root, &mut files);
        sets.extend(files.into_iter().map(|f| vec![f]));
    }
    for group in ["valid", "invalid"] {
        for entry in std::fs::read_dir(data_dir().join(group)).expect("fixtures") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                let mut files = Vec::new();
                yaml_files(&path, &mut files);
                sets.push(files);
            }
        }
    }
    assert!(sets.len() > 50, "{} sets", sets.len());
    for set in sets {
        let bytes: Vec<Vec<u8>> = set
            .iter()
            .map(|p| std::fs::read(p).expect("a fixture"))
            .collect();
        let named: Vec<(String, &[u8])> = set
            .iter()
            .zip(&bytes)
            .map(|(p, b)| (p.display().to_string(), b.as_slice()))
            .collect();
        let outcome = std::panic::catch_unwind(|| {
            let checked = harness::load_and_check(&named);
            harness::assert_invariants(&checked);
            harness::assert_both_parsers_agree(&named, &checked);
        });
        assert!(outcome.is_ok(), "{set:?}");
    }
}

#[test]
fn fuzz_inputs_split_into_files_at_the_separator() {
    let sep = std::str::from_utf8(harness::FILE_SEPARATOR).expect("text");
    assert_eq!(harness::split(b"a: 1"), vec![b"a: 1".as_slice()]);
    let joined = format!("a{sep}b{sep}");
    assert_eq!(
        harness::split(joined.as_bytes()),
        vec![b"a".as_slice(), b"b", b""]
    );
    let many = ["x"; harness::MAX_FILES + 2].join(sep);
    let files = harness::split(many.as_bytes());
    assert_eq!(files.len(), harness::MAX_FILES);
    assert_eq!(
        files.last().map(|f| f.len()),
        Some(3 * (1 + sep.len()) - sep.len())
    );
    assert_eq!(harness::named(&files)[1].0, "f1.yaml");
}

/// A config set in one file, from its lines.
fn one_file(lines: &[String]) -> Checked {
    let text = lines.join("\n");
    harness::load_and_check(&[("big.yaml".to_string(), text.as_bytes())])
}

/// Large config sets with many findings check and render in time that grows
/// with their size, not its square: a long chain of administrators (each
/// approval was once walked to the root), many references to undeclared
/// users among many users (each "did you mean" compared with every user),
/// and many findings in one large file (each snippet read the file from its
/// start). Each took minutes at these sizes before.
#[test]
fn large_config_sets_with_many_findings_check_in_linear_time() {
    let started = std::time::Instant::now();
    let account = r#"support_account: { phone: "1", timezone: UTC }"#;
    let n = 10_000;

    // A chain of administrators, each approved by the one before, and a
    // loop of as many.
    let mut chain = vec![
        r#"tenancy: { name: t, csi: "1", admin: u0 }"#.to_string(),
        "users:".into(),
    ];
    chain.extend((0..2 * n).map(|i| format!("  u{i}: {{ email: u{i}@x.example, {account} }}")));
    chain.push("memberships:".into());
    chain.extend((1..2 * n).map(|i| format!("  - user: u{i}")));
    chain.push("approvals:".into());
    chain.extend(
        (1..n).map(|i| format!("  - {{ user: u{i}, role: admin, approved_by: u{} }}", i - 1)),
    );
    chain.push(format!(
        "  - {{ user: u{n}, role: admin, approved_by: u{} }}",
        2 * n - 1
    ));
    chain.extend(
        (n + 1..2 * n)
            .map(|i| format!("  - {{ user: u{i}, role: admin, approved_by: u{} }}", i - 1)),
    );
    let checked = one_file(&chain);
    let rules: Vec<Rule> = checked.diagnostics.iter().map(|d| d.rule).collect();
    assert_eq!(rules, [Rule::ApprovalCycle], "{:?}", checked.diagnostics);

    // Many references to undeclared users among many users, each a finding
    // with its snippet.
    let mut unknown = vec![
        r#"tenancy: { name: t, csi: "1", admin: u0 }"#.to_string(),
        "users:".into(),
        format!("  u0: {{ email: u0@x.example, {account} }}"),
    ];
    unknown.extend((1..2 * n).map(|i| format!("  u{i}: {{ email: u{i}@x.example }}")));
    unknown.push("memberships:".into());
    unknown.extend((0..2 * n).map(|i| format!("  - user: ghost{i}")));
    let checked = one_file(&unknown);
    let unknown_users = checked
        .diagnostics
        .iter()
        .filter(|d| d.rule == Rule::UnknownUser)
        .count();
    assert_eq!(unknown_users, 2 * n);
    harness::assert_invariants(&checked);

    let elapsed = started.elapsed();
    assert!(
        elapsed < std::time::Duration::from_secs(60),
        "took {elapsed:?}"
    );
}
