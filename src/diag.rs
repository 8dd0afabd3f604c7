//! Diagnostics: the catalogue of rules, located findings, and their rendering.
//!
//! Every problem supportctl finds in a config set is a [`Diagnostic`] naming a
//! [`Rule`] — a stable code, a kebab-case name and a severity — and the place
//! in a file it is about. Checking collects them all; rendering sorts them by
//! file and line and prints them as text (with the source line and a caret),
//! JSON, or GitHub workflow commands. Nothing here reads files: the caller
//! hands in the sources it loaded.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, OnceLock};

use anstyle::{AnsiColor, Style};
use serde::Serialize;

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

/// The text of the files diagnostics point into, by file index.
///
/// A file may be added unread ([`Sources::set_unread`]): its text is read
/// again from disk the first time it is asked for — only when a diagnostic
/// points into it — and used only when its bytes still have the SHA-256
/// they had when they were loaded; otherwise it is empty (the file changed
/// since), and diagnostics show no source line. A large config set's text
/// is then not held in memory for diagnostics that are never made.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

#[derive(Clone, Debug)]
struct SourceFile {
    path: String,
    /// `None` once read again and found changed.
    text: OnceLock<Option<String>>,
    unread: Option<Unread>,
}

/// Where an unread file's text comes from, and the SHA-256 it must have.
#[derive(Clone, Debug)]
struct Unread {
    file: PathBuf,
    len: u64,
    hash: [u8; 32],
    read: ReadAgain,
}

/// Reads `file` again, giving its text only when it still has `len` bytes
/// whose SHA-256 is `hash`.
pub type ReadAgain = fn(file: &Path, len: u64, hash: &[u8; 32]) -> Option<String>;

impl Sources {
    /// Adds a file and returns its index. `text` may be empty for a file that
    /// could not be read.
    pub fn add(&mut self, path: String, text: String) -> usize {
        self.files.push(SourceFile {
            path,
            text: OnceLock::from(Some(text)),
            unread: None,
        });
        self.files.len() - 1
    }

    /// Puts `text` in place of the text of file `file`, added before it was
    /// read through.
    pub fn set_text(&mut self, file: usize, text: String) {
        if let Some(f) = self.files.get_mut(file) {
            f.text = OnceLock::from(Some(text));
            f.unread = None;
        }
    }

    /// Leaves the text of `file` unread: `read` gets it from `on_disk` when
    /// it is first asked for, if it still has `len` bytes that hash to `hash`.
    pub fn set_unread(
        &mut self,
        file: usize,
        on_disk: PathBuf,
        len: u64,
        hash: [u8; 32],
        read: ReadAgain,
    ) {
        if let Some(f) = self.files.get_mut(file) {
            f.text = OnceLock::new();
            f.unread = Some(Unread {
                file: on_disk,
                len,
                hash,
                read,
            });
        }
    }

    pub fn path(&self, file: usize) -> &str {
        self.files
            .get(file)
            .map_or("<unknown>", |f| f.path.as_str())
    }

    /// The text of `file`; empty when it could not be read, or was read
    /// again and found changed.
    pub fn text(&self, file: usize) -> &str {
        self.try_text(file).unwrap_or("")
    }

    /// The text of `file`, or `None` when it was left unread and has changed
    /// since (or cannot be read any more).
    pub fn try_text(&self, file: usize) -> Option<&str> {
        let f = self.files.get(file)?;
        f.text
            .get_or_init(|| {
                let u = f.unread.as_ref()?;
                (u.read)(&u.file, u.len, &u.hash)
            })
            .as_deref()
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// The lines that diagnostics point at, found without reading a file from
/// its start for each one: a file's line starts are found once, and a long
/// line's characters counted once, so rendering many findings in a large
/// file takes time in proportion to the file and the findings, not their
/// product.
struct LineIndex<'a> {
    sources: &'a Sources,
    /// Each file's line starts, as byte offsets.
    starts: HashMap<usize, Vec<usize>>,
    long: HashMap<(usize, u32), LongLine>,
}

/// A line too long to show whole: its length in characters, and the byte
/// offset of every [`LongLine::STEP`]th character.
struct LongLine {
    chars: usize,
    marks: Vec<usize>,
}

impl LongLine {
    const STEP: usize = 256;

    fn new(text: &str) -> LongLine {
        let mut marks = vec![0];
        let mut chars = 0;
        for (at, _) in text.char_indices() {
            if chars > 0 && chars % Self::STEP == 0 {
                marks.push(at);
            }
            chars += 1;
        }
        LongLine { chars, marks }
    }

    /// The byte offset of character `index` of `text`, or its end.
    fn byte_at(&self, text: &str, index: usize) -> usize {
        if index >= self.chars {
            return text.len();
        }
        let mark = index / Self::STEP;
        let from = self.marks[mark];
        text[from..]
            .char_indices()
            .nth(index - mark * Self::STEP)
            .map_or(text.len(), |(at, _)| from + at)
    }
}

/// The byte offset of every line's start, lines broken as [`lines`] breaks them.
fn line_starts(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut starts = vec![0];
    for (i, &b) in bytes.iter().enumerate() {
        let ends_line = b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
        if ends_line {
            starts.push(i + 1);
        }
    }
    starts
}

impl<'a> LineIndex<'a> {
    fn new(sources: &'a Sources) -> Self {
        LineIndex {
            sources,
            starts: HashMap::new(),
            long: HashMap::new(),
        }
    }

    /// The 1-based line `line` of `file`, without its line break.
    fn line(&mut self, file: usize, line: u32) -> Option<&'a str> {
        let index = usize::try_from(line).ok()?.checked_sub(1)?;
        let text = self.sources.text(file);
        let starts = self.starts.entry(file).or_insert_with(|| line_starts(text));
        let rest = &text[*starts.get(index)?..];
        Some(&rest[..rest.find(['\r', '\n']).unwrap_or(rest.len())])
    }

    /// At most `width` characters of line `line` of `file` (which is
    /// `text`) around character `column`, and the column within them.
    fn window(
        &mut self,
        (file, line): (usize, u32),
        text: &'a str,
        column: usize,
        width: usize,
    ) -> (&'a str, usize) {
        // A line of no more bytes than that has no more characters either.
        if text.len() <= width {
            return (text, column);
        }
        let long = self
            .long
            .entry((file, line))
            .or_insert_with(|| LongLine::new(text));
        if long.chars <= width {
            return (text, column);
        }
        let skip = column.saturating_sub(width / 4);
        let start = long.byte_at(text, skip);
        let end = long.byte_at(text, skip + width);
        (&text[start..end], column - skip)
    }
}

/// The lines of a config file as the YAML parser numbers them: each ends at
/// a line feed, a carriage return or both (CRLF), without its break; after a
/// final break comes one more, empty line. Locations count lines this way.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(end) => {
                let next = if current[end..].starts_with("\r\n") {
                    end + 2
                } else {
                    end + 1
                };
                rest = Some(&current[next..]);
                Some(&current[..end])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Whether `c` changes how the text around it reads without showing itself:
/// Unicode's format characters (right-to-left and other direction
/// overrides, embeddings and isolates, zero-width spaces and joiners, the
/// byte-order mark, invisible operators, tag characters) and the line and
/// paragraph separators. A right-to-left override can make `bob` in a
/// config read as another name on the screen, or reorder a plan's line.
pub fn changes_how_text_reads(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// Whether `c` shows nothing at all: white space, a control or format
/// character, or one of the fillers that are letters drawn blank.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || changes_how_text_reads(c)
        || matches!(
            c,
            '\u{115F}' | '\u{1160}' | '\u{2800}' | '\u{3164}' | '\u{FFA0}'
        )
}

/// `text` with every character `escaped` picks written as an escape
/// (`\u{1b}`), borrowed when there is none.
fn escape_where(text: &str, escaped: impl Fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(&escaped) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Replaces control characters, and characters that change how text reads
/// ([`changes_how_text_reads`]), with visible escapes, so that nothing read
/// from a file can move the cursor, clear the screen, forge a log line or
/// make one name read as another.
pub fn escape_control(text: &str) -> std::borrow::Cow<'_, str> {
    escape_where(text, |c| {
        (c.is_control() && c != '\t') || changes_how_text_reads(c)
    })
}

/// Like [`escape_control`], but tabs are escaped too: for values printed in
/// plans and state, where a raw tab could pass for alignment.
pub fn escape_value(text: &str) -> std::borrow::Cow<'_, str> {
    escape_where(text, |c| c.is_control() || changes_how_text_reads(c))
}

/// The colours of what supportctl prints for people: diagnostics on stderr
/// and the text plan on stdout. [`Palette::PLAIN`] gives every [`Tone`] the
/// empty string.
#[derive(Clone, Copy, Debug)]
pub struct Palette {
    colour: bool,
}

/// A part of the output that has its own colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Error,
    Warning,
    Note,
    /// The symbol of a change in the text plan, by its action.
    Create,
    Update,
    Delete,
    Replace,
    /// What a line is about: a diagnostic's place and message, a change's
    /// address.
    Bold,
}

impl Tone {
    const ALL: [Tone; 8] = [
        Tone::Error,
        Tone::Warning,
        Tone::Note,
        Tone::Create,
        Tone::Update,
        Tone::Delete,
        Tone::Replace,
        Tone::Bold,
    ];

    /// What the tone looks like when colour is on: supportctl's one
    /// definition of its colours.
    const fn style(self) -> Style {
        match self {
            Tone::Error => AnsiColor::Red.on_default().bold(),
            Tone::Warning => AnsiColor::Yellow.on_default().bold(),
            Tone::Note => AnsiColor::Cyan.on_default().bold(),
            Tone::Create => AnsiColor::Green.on_default(),
            Tone::Update => AnsiColor::Yellow.on_default(),
            Tone::Delete => AnsiColor::Red.on_default(),
            Tone::Replace => AnsiColor::Magenta.on_default(),
            Tone::Bold => Style::new().bold(),
        }
    }
}

/// Colour's escapes, made once: each tone's (in the order of
/// [`Tone::ALL`]), and the reset that ends any of them.
struct Escapes {
    tones: [String; Tone::ALL.len()],
    reset: String,
}

static ESCAPES: LazyLock<Escapes> = LazyLock::new(|| Escapes {
    tones: Tone::ALL.map(|tone| one_escape(tone.style())),
    reset: anstyle::Reset.render().to_string(),
});

/// `style` as one escape sequence: anstyle writes one for each attribute
/// (`ESC[1m` then `ESC[31m`); supportctl has always printed their
/// parameters joined in one (`ESC[1;31m`), and keeps its output the same.
fn one_escape(style: Style) -> String {
    let rendered = style.render().to_string();
    let parameters: Vec<&str> = rendered
        .split("\x1b[")
        .filter_map(|escape| escape.strip_suffix('m'))
        .collect();
    if parameters.is_empty() {
        String::new()
    } else {
        format!("\x1b[{}m", parameters.join(";"))
    }
}

impl Palette {
    /// No colour.
    pub const PLAIN: Palette = Palette { colour: false };
    /// Each tone in its colour.
    pub const ANSI: Palette = Palette { colour: true };

    /// The escape that starts `tone`.
    pub fn of(self, tone: Tone) -> &'static str {
        if self.colour {
            &ESCAPES.tones[tone as usize]
        } else {
            ""
        }
    }

    /// The escape that ends any tone.
    pub fn reset(self) -> &'static str {
        if self.colour { &ESCAPES.reset } else { "" }
    }
}

/// Renders diagnostics as text: `FILE:LINE:COL: error[CODE]: message`, the
/// source line with a caret under the offending value, then notes and a hint.
pub fn render_text(diagnostics: &[Diagnostic], sources: &Sources, palette: Palette) -> String {
    let mut out = String::new();
    let mut lines = LineIndex::new(sources);
    for d in diagnostics {
        let (label, colour) = match d.severity() {
            Severity::Error => ("error", palette.of(Tone::Error)),
            Severity::Warning => ("warning", palette.of(Tone::Warning)),
        };
        if let Some(loc) = d.location {
            let _ = write!(
                out,
                "{}{}:{}:{}:{} ",
                palette.of(Tone::Bold),
                escape_control(sources.path(loc.file as usize)),
                loc.line,
                loc.column,
                palette.reset()
            );
        }
        let _ = writeln!(
            out,
            "{colour}{label}[{}]{}: {}{}{}",
            d.rule.code(),
            palette.reset(),
            palette.of(Tone::Bold),
            escape_control(&d.message),
            palette.reset()
        );
        if let Some(loc) = d.location {
            render_snippet(&mut out, &mut lines, loc, colour, palette);
        }
        for related in &d.related {
            let loc = related.location;
            let _ = writeln!(
                out,
                "  {}note{}: {} at {}:{}:{}",
                palette.of(Tone::Note),
                palette.reset(),
                escape_control(&related.label),
                escape_control(sources.path(loc.file as usize)),
                loc.line,
                loc.column
            );
            render_snippet(&mut out, &mut lines, loc, palette.of(Tone::Note), palette);
        }
        if let Some(hint) = &d.hint {
            let _ = writeln!(
                out,
                "  {}hint{}: {}",
                palette.of(Tone::Note),
                palette.reset(),
                escape_control(hint)
            );
        }
    }
    out
}

fn render_snippet(
    out: &mut String,
    lines: &mut LineIndex,
    loc: Location,
    colour: &str,
    palette: Palette,
) {
    let Some(line) = lines.line(loc.file as usize, loc.line) else {
        return;
    };
    let number = loc.line.to_string();
    let gutter = " ".repeat(number.len());
    // A very long line is shown as a window around the caret, so that one
    // finding in a minified file does not print megabytes.
    const WINDOW: usize = 240;
    let column = loc.column.saturating_sub(1) as usize;
    let (line, column) = lines.window((loc.file as usize, loc.line), line, column, WINDOW);
    let shown = escape_control(line);
    // Columns count characters of the raw line; escaping can only widen what
    // precedes the caret, so measure the prefix through the same escaping.
    let prefix: String = line.chars().take(column).collect();
    let pad = escape_control(&prefix)
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect::<String>();
    let rest = line
        .chars()
        .count()
        .saturating_sub(prefix.chars().count())
        .max(1);
    let width = (loc.len.max(1) as usize).min(rest);
    let _ = writeln!(out, "  {gutter} |");
    let _ = writeln!(out, "  {number} | {shown}");
    let _ = writeln!(
        out,
        "  {gutter} | {pad}{colour}{}{}",
        "^".repeat(width),
        palette.reset()
    );
}

/// The JSON form of one diagnostic (`validate --format json`).
#[derive(Serialize)]
pub struct JsonDiagnostic<'a> {
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub message: &'a str,
    pub hint: Option<&'a str>,
    pub related: Vec<JsonRelated<'a>>,
}

#[derive(Serialize)]
pub struct JsonRelated<'a> {
    pub file: &'a str,
    pub line: u32,
    pub column: u32,
    pub message: &'a str,
}

/// The JSON document `validate --format json` prints.
#[derive(Serialize)]
pub struct JsonReport<'a> {
    pub format_version: u32,
    pub valid: bool,
    pub errors: usize,
    pub warnings: usize,
    pub diagnostics: Vec<JsonDiagnostic<'a>>,
}

pub fn render_json(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let report = JsonReport {
        format_version: 1,
        valid: errors == 0,
        errors,
        warnings: diagnostics.len() - errors,
        diagnostics: diagnostics
            .iter()
            .map(|d| JsonDiagnostic {
                file: d.location.map(|l| sources.path(l.file as usize)),
                line: d.location.map(|l| l.line),
                column: d.location.map(|l| l.column),
                code: d.rule.code(),
                name: d.rule.name(),
                severity: d.severity(),
                message: &d.message,
                hint: d.hint.as_deref(),
                related: d
                    .related
                    .iter()
                    .map(|r| JsonRelated {
                        file: sources.path(r.location.file as usize),
                        line: r.location.line,
                        column: r.location.column,
                        message: &r.label,
                    })
                    .collect(),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
    text.push('\n');
    text
}

/// GitHub Actions workflow commands, so a pull request shows each finding on its line.
pub fn render_github(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    // Workflow command values escape `%`, CR and LF; properties also `:` and `,`.
    fn data(text: &str) -> String {
        text.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    }
    fn property(text: &str) -> String {
        data(text).replace(':', "%3A").replace(',', "%2C")
    }
    let mut out = String::new();
    for d in diagnostics {
        let kind = match d.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = escape_control(&d.message).into_owned();
        if let Some(hint) = &d.hint {
            message.push_str("\nhint: ");
            message.push_str(&escape_control(hint));
        }
        let title = format!("{} {}", d.rule.code(), d.rule.name());
        match d.location {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "::{kind} file={},line={},col={},title={}::{}",
                    property(sources.path(l.file as usize)),
                    l.line,
                    l.column,
                    property(&title),
                    data(&message)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "::{kind} title={}::{}",
                    property(&title),
                    data(&message)
                );
            }
        }
    }
    out
}

/// The closest of `candidates` to `word`, when it is close enough to be a
/// likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    scored(word, candidates, 0.8)
}

/// The closest of `candidates` to `word`, however far: `None` only when
/// none has a character in common with it.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    scored(word, candidates, 0.0)
}

/// The candidate most like `word` (Jaro-Winkler), scoring above `floor`.
fn scored<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    floor: f64,
) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(word, candidate);
        if score > floor && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_well_formed() {
        let mut codes: Vec<_> = Rule::ALL.iter().map(|r| r.code()).collect();
        let mut names: Vec<_> = Rule::ALL.iter().map(|r| r.name()).collect();
        codes.sort_unstable();
        names.sort_unstable();
        codes.dedup();
        names.dedup();
        assert_eq!(codes.len(), Rule::ALL.len());
        assert_eq!(names.len(), Rule::ALL.len());
        for rule in Rule::ALL {
            let name = rule.name();
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{name}"
            );
            let prefix = if rule.severity() == Severity::Error {
                'E'
            } else {
                'W'
            };
            assert!(rule.code().starts_with(prefix), "{}", rule.code());
        }
    }

    #[test]
    fn the_reference_lists_every_rule() {
        let reference = include_str!("../docs/reference.md");
        for rule in Rule::ALL {
            let row = format!("| `{}` | `{}` |", rule.code(), rule.name());
            assert!(
                reference.contains(&row),
                "docs/reference.md, Rules, has no row {row}"
            );
        }
    }

    #[test]
    fn caret_sits_under_the_value() {
        let mut sources = Sources::default();
        let file = sources.add("a.yaml".into(), "approvals:\n  - user: bob\n".into());
        let d = Diagnostic::at(
            Rule::UnknownUser,
            Location {
                file: file as u32,
                line: 2,
                column: 11,
                len: 3,
            },
            "unknown user `bob`",
        )
        .with_hint("did you mean `bobby`?");
        let text = render_text(&[d], &sources, Palette::PLAIN);
        assert_eq!(
            text,
            "a.yaml:2:11: error[E117]: unknown user `bob`\n    |\n  2 |   - user: bob\n    |           ^^^\n  hint: did you mean `bobby`?\n"
        );
    }

    #[test]
    fn lines_break_where_yaml_breaks_them() {
        let all = |text| lines(text).collect::<Vec<_>>();
        assert_eq!(all("a\nb\r\nc\rd"), ["a", "b", "c", "d"]);
        assert_eq!(all("a\n"), ["a", ""]);
        assert_eq!(all("\r\r\n"), ["", "", ""]);
        assert_eq!(all(""), [""]);
    }

    #[test]
    fn a_file_with_carriage_returns_only_shows_its_lines() {
        let mut sources = Sources::default();
        let file = sources.add("a.yaml".into(), "users:\r  a:\r    emial: x\r".into());
        let d = Diagnostic::at(
            Rule::UnknownField,
            Location {
                file: file as u32,
                line: 3,
                column: 5,
                len: 5,
            },
            "unknown field `emial`",
        );
        let text = render_text(&[d], &sources, Palette::PLAIN);
        assert!(
            text.contains("  3 |     emial: x\n    |     ^^^^^\n"),
            "{text}"
        );
    }

    #[test]
    fn line_starts_agree_with_lines() {
        for text in ["", "a", "a\n", "a\r\nb\rc\n\n", "\r\r\n\n", "é\rü"] {
            let from_lines: Vec<&str> = lines(text).collect();
            let starts = line_starts(text);
            assert_eq!(starts.len(), from_lines.len(), "{text:?}");
            let sources = {
                let mut s = Sources::default();
                s.add("a.yaml".into(), text.into());
                s
            };
            let mut index = LineIndex::new(&sources);
            for (i, line) in from_lines.iter().enumerate() {
                assert_eq!(index.line(0, i as u32 + 1), Some(*line), "{text:?}");
            }
            assert_eq!(index.line(0, from_lines.len() as u32 + 1), None);
        }
    }

    #[test]
    fn a_long_line_is_shown_around_the_caret() {
        let line = format!("{}ERR{}", "é".repeat(1000), "x".repeat(1000));
        let mut sources = Sources::default();
        let file = sources.add("a.yaml".into(), format!("a: 1\n{line}\n"));
        let d = Diagnostic::at(
            Rule::YamlSyntax,
            Location {
                file: file as u32,
                line: 2,
                column: 1001,
                len: 3,
            },
            "here",
        );
        let text = render_text(&[d], &sources, Palette::PLAIN);
        let shown = format!("{}ERR{}", "é".repeat(60), "x".repeat(177));
        assert!(text.contains(&format!("  2 | {shown}\n")), "{text}");
        assert!(
            text.contains(&format!("    | {}^^^\n", " ".repeat(60))),
            "{text}"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_control("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape_control("plain"), "plain");
    }

    #[test]
    fn characters_that_change_how_text_reads_are_escaped() {
        // A right-to-left override that makes `bob` read as `bob` reversed,
        // an isolate, a zero-width space inside a name, a byte-order mark.
        assert_eq!(escape_control("\u{202E}bob"), "\\u{202e}bob");
        assert_eq!(escape_value("a\u{2067}b\u{2069}"), "a\\u{2067}b\\u{2069}");
        assert_eq!(escape_control("da\u{200B}n"), "da\\u{200b}n");
        assert_eq!(escape_control("\u{FEFF}x"), "\\u{feff}x");
        assert_eq!(escape_control("a\u{2028}b"), "a\\u{2028}b");
        // Every format character of the Basic Multilingual Plane that has
        // no ink is escaped; letters, marks and spaces of other scripts are
        // not.
        for c in [
            '\u{200E}', '\u{200F}', '\u{061C}', '\u{2066}', '\u{2060}', '\u{00AD}',
        ] {
            assert_ne!(escape_control(&c.to_string()), c.to_string(), "{c:?}");
        }
        for kept in ["Zoë", "김민준", "مريم", "שלום", "a\tb", "Ω≈ç", "👍"] {
            assert_eq!(escape_control(kept), kept);
        }
    }

    #[test]
    fn invisible_characters_are_told_from_visible_ones() {
        for c in [
            ' ', '\u{200B}', '\u{3164}', '\u{2800}', '\u{202E}', '\u{00A0}', '\u{1b}',
        ] {
            assert!(is_invisible(c), "{c:?}");
        }
        for c in ['1', '+', '(', 'é', '김', '\u{0301}'] {
            assert!(!is_invisible(c), "{c:?}");
        }
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        assert_eq!(did_you_mean("alcie", ["alice", "bob"]), Some("alice"));
        assert_eq!(did_you_mean("zed", ["alice", "bob"]), None);
    }

    /// The escapes are the bytes supportctl has always printed: one
    /// sequence for a tone, its parameters joined.
    #[test]
    fn each_tone_prints_as_it_always_has() {
        let expected = [
            (Tone::Error, "\x1b[1;31m"),
            (Tone::Warning, "\x1b[1;33m"),
            (Tone::Note, "\x1b[1;36m"),
            (Tone::Create, "\x1b[32m"),
            (Tone::Update, "\x1b[33m"),
            (Tone::Delete, "\x1b[31m"),
            (Tone::Replace, "\x1b[35m"),
            (Tone::Bold, "\x1b[1m"),
        ];
        assert_eq!(expected.len(), Tone::ALL.len());
        for (i, tone) in Tone::ALL.into_iter().enumerate() {
            assert_eq!(tone as usize, i, "{tone:?} out of place in Tone::ALL");
        }
        for (tone, escape) in expected {
            assert_eq!(Palette::ANSI.of(tone), escape, "{tone:?}");
            assert_eq!(Palette::PLAIN.of(tone), "", "{tone:?}");
        }
        assert_eq!(Palette::ANSI.reset(), "\x1b[0m");
        assert_eq!(Palette::PLAIN.reset(), "");
    }
}
