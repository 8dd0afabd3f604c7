//! Synthetic, valid config sets of N users, in the two layouts supportctl
//! reads: one file, or a GitOps directory of many files.
//!
//! Every figure of a user is a pure function of its index (a splitmix64 hash
//! drives the choices), so a set is the same on every run and on every
//! machine, and nothing of it is held in memory: files are streamed to disk.
//! That matters for the readings: a child process started by `vfork`+`exec`
//! inherits its parent's peak RSS as its own starting peak, so the harness
//! must stay small for the children's peak-RSS readings to be theirs.
//!
//! The mix (of N users):
//!
//! - user 0 is the tenancy admin: a support account, and no membership,
//!   approval or link of its own (rule 7);
//! - every user with index ≡ 1 (mod 1000) is a second CSI administrator:
//!   membership and an approval with `role: admin` (1 in 1000, and at least
//!   one, so W203 `single-csi-admin` does not fire);
//! - of the others, ~70% have a support account (phone and one of a handful
//!   of IANA zones); of those ~80% request membership; of those ~75% are
//!   approved with `role: user` and one of a few access lists, ~20% of them
//!   `approved_by` their block's administrator, ~10% with an `expires` far in
//!   the future;
//! - ~10% of the users without a support account have a support link, half
//!   `via` their block's administrator (the others default to the tenancy
//!   admin), ~20% of the links with an `expires`.
//!
//! A linked user has no support account, hence no membership and no approval
//! (rule 8), and every `approved_by` or `via` names an administrator, whose
//! own approval is granted by the tenancy admin (rule 6).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// How a config set is laid out on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One file, `acme.yaml`, with every section.
    File,
    /// `tenancy.yaml`, and `users/uNNNN.yaml` files of (at least) 100 users
    /// each, every file holding its users' memberships, approvals and links.
    Dir,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::File => "file",
            Layout::Dir => "dir",
        }
    }

    pub fn parse(text: &str) -> Option<Layout> {
        match text {
            "file" => Some(Layout::File),
            "dir" => Some(Layout::Dir),
            _ => None,
        }
    }
}

/// The tenancy's name in every generated set.
pub const TENANCY: &str = "acme";
/// Users per file in the directory layout, unless the file limit needs more.
pub const USERS_PER_FILE: usize = 100;
/// supportctl reads at most this many files of a set (docs/reference.md, "Input limits").
pub const MAX_FILES: usize = 10_000;

/// A config set written to disk.
#[derive(Clone, Debug)]
pub struct ConfigSet {
    /// What to hand supportctl: the file, or the directory.
    pub path: PathBuf,
    pub layout: Layout,
    pub users: usize,
    /// Users per `users/` file (directory layout only).
    pub per_file: usize,
    pub files: usize,
    pub bytes: u64,
    /// The largest file, in bytes (supportctl's per-file limit is 64 MiB).
    pub largest_file: u64,
}

impl ConfigSet {
    /// Writes a set of `users` users under `root` (which must exist).
    pub fn write(root: &Path, layout: Layout, users: usize) -> io::Result<ConfigSet> {
        assert!(
            users >= 2,
            "a set needs the tenancy admin and one more user"
        );
        let per_file = USERS_PER_FILE.max(users.div_ceil(MAX_FILES - 1));
        let mut set = ConfigSet {
            path: match layout {
                Layout::File => root.join("acme.yaml"),
                Layout::Dir => root.join("acme"),
            },
            layout,
            users,
            per_file,
            files: 0,
            bytes: 0,
            largest_file: 0,
        };
        match layout {
            Layout::File => {
                let bytes = write_file(&set.path, |out| {
                    out.write_all(tenancy_yaml().as_bytes())?;
                    write_sections(out, 0..users, None)
                })?;
                set.note_file(bytes);
            }
            Layout::Dir => {
                fs::create_dir_all(set.path.join("users"))?;
                let bytes = write_file(&set.path.join("tenancy.yaml"), |out| {
                    out.write_all(tenancy_yaml().as_bytes())
                })?;
                set.note_file(bytes);
                for chunk in 0..set.chunks() {
                    let bytes = set.write_chunk(chunk, None)?;
                    set.note_file(bytes);
                }
            }
        }
        Ok(set)
    }

    /// Rewrites the one file that declares user `index`, with that user's
    /// name changed (and nothing else): a one-user change.
    pub fn change_one_user(&self, index: usize) -> io::Result<()> {
        match self.layout {
            Layout::File => {
                write_file(&self.path, |out| {
                    out.write_all(tenancy_yaml().as_bytes())?;
                    write_sections(out, 0..self.users, Some(index))
                })?;
            }
            Layout::Dir => {
                self.write_chunk(index / self.per_file, Some(index))?;
            }
        }
        Ok(())
    }

    /// Rewrites the files that declare the users `indices` as generated,
    /// undoing [`ConfigSet::change_one_user`]: the set is again what the
    /// next backend's first apply and floor must start from.
    pub fn restore(&self, indices: &[usize]) -> io::Result<()> {
        match self.layout {
            Layout::File => {
                write_file(&self.path, |out| {
                    out.write_all(tenancy_yaml().as_bytes())?;
                    write_sections(out, 0..self.users, None)
                })?;
            }
            Layout::Dir => {
                let mut chunks: Vec<usize> = indices.iter().map(|i| i / self.per_file).collect();
                chunks.sort_unstable();
                chunks.dedup();
                for chunk in chunks {
                    self.write_chunk(chunk, None)?;
                }
            }
        }
        Ok(())
    }

    fn chunks(&self) -> usize {
        self.users.div_ceil(self.per_file)
    }

    fn chunk_path(&self, chunk: usize) -> PathBuf {
        let width = (self.chunks().saturating_sub(1)).to_string().len().max(4);
        self.path
            .join("users")
            .join(format!("u{chunk:0width$}.yaml"))
    }

    fn write_chunk(&self, chunk: usize, changed: Option<usize>) -> io::Result<u64> {
        let start = chunk * self.per_file;
        let end = (start + self.per_file).min(self.users);
        write_file(&self.chunk_path(chunk), |out| {
            out.write_all(b"# Users of the acme tenancy, with their requests and grants.\n\n")?;
            write_sections(out, start..end, changed)
        })
    }

    fn note_file(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
        self.largest_file = self.largest_file.max(bytes);
    }
}

/// Creates (or truncates) `path`, streams `body` into it, and returns its size.
fn write_file(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 16, File::create(path)?);
    body(&mut out)?;
    out.flush()?;
    out.get_ref().metadata().map(|m| m.len())
}

fn tenancy_yaml() -> String {
    format!(
        "# The tenancy: its identity in state, its CSI and its Cloud Account Admin.\n\
         tenancy:\n  name: {TENANCY}\n  csi: \"20817431\"\n  home_region: ap-seoul-1\n  admin: {}\n\n",
        user_id(0)
    )
}

/// The `users`, `memberships`, `approvals` and `support_links` sections of
/// the users in `range`, each section left out when it would be empty.
/// `changed` is the user whose name the one-user change alters.
///
/// Each section is a pass over the range that recomputes every user from its
/// index, so that nothing grows with the number of users.
fn write_sections(
    out: &mut impl Write,
    range: std::ops::Range<usize>,
    changed: Option<usize>,
) -> io::Result<()> {
    let people = || range.clone().map(Person::of);
    let mut line = String::with_capacity(256);
    out.write_all(b"users:\n")?;
    for p in people() {
        line.clear();
        let suffix = if Some(p.index) == changed { " Jr" } else { "" };
        let _ = write!(
            line,
            "  {id}:\n    email: {email}\n    name: {name}{suffix}\n",
            id = user_id(p.index),
            email = p.email(),
            name = p.name(),
        );
        if let Some((phone, zone)) = p.account() {
            let _ = writeln!(
                line,
                "    support_account: {{ phone: \"{phone}\", timezone: {zone} }}"
            );
        }
        out.write_all(line.as_bytes())?;
    }
    let mut section = Section::new("memberships");
    for p in people().filter(|p| p.member) {
        section.start(out)?;
        writeln!(out, "  - user: {}", user_id(p.index))?;
    }
    let mut section = Section::new("approvals");
    for p in people() {
        let Some(a) = &p.approval else { continue };
        section.start(out)?;
        line.clear();
        let _ = writeln!(line, "  - user: {}", user_id(p.index));
        match a.access {
            None => line.push_str("    role: admin\n"),
            Some(access) => {
                let _ = writeln!(line, "    role: user\n    access: [{}]", access.join(", "));
            }
        }
        if let Some(by) = a.approved_by {
            let _ = writeln!(line, "    approved_by: {}", user_id(by));
        }
        if let Some(day) = a.expires {
            let _ = writeln!(line, "    expires: {day}");
        }
        out.write_all(line.as_bytes())?;
    }
    let mut section = Section::new("support_links");
    for p in people() {
        let Some(l) = &p.link else { continue };
        section.start(out)?;
        line.clear();
        let _ = writeln!(line, "  - user: {}", user_id(p.index));
        if let Some(via) = l.via {
            let _ = writeln!(line, "    via: {}", user_id(via));
        }
        if let Some(day) = l.expires {
            let _ = writeln!(line, "    expires: {day}");
        }
        out.write_all(line.as_bytes())?;
    }
    out.write_all(b"\n")
}

/// A section header written before its first entry, so that an empty
/// section is left out rather than written as `null`.
struct Section {
    name: &'static str,
    started: bool,
}

impl Section {
    fn new(name: &'static str) -> Section {
        Section {
            name,
            started: false,
        }
    }

    fn start(&mut self, out: &mut impl Write) -> io::Result<()> {
        if !self.started {
            self.started = true;
            write!(out, "\n{}:\n", self.name)?;
        }
        Ok(())
    }
}

/// The id of user `index`: `u0000042`.
pub fn user_id(index: usize) -> String {
    format!("u{index:07}")
}

const FIRST: &[&str] = &[
    "Alice", "Bob", "Carol", "Dan", "Erin", "Frank", "Gina", "Hana", "Ivan", "Jun", "Kim", "Lena",
    "Minho", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tomoko", "Uma", "Victor", "Wei",
    "Yuna",
];
const LAST: &[&str] = &[
    "Lee", "Choi", "Schmidt", "Kim", "Park", "Weber", "Yoon", "Tanaka", "Garcia", "Smith",
    "Nguyen", "Rossi", "Müller", "Kowalski", "Silva", "Haddad", "Okafor", "Ivanova", "Jensen",
    "Dubois",
];
/// IANA zones, each with a country calling code that fits it.
const ZONES: &[(&str, &str)] = &[
    ("Asia/Seoul", "+82 2"),
    ("Europe/Berlin", "+49 30"),
    ("America/New_York", "+1 212"),
    ("Asia/Tokyo", "+81 3"),
    ("Europe/London", "+44 20"),
    ("America/Sao_Paulo", "+55 11"),
    ("Australia/Sydney", "+61 2"),
];
const ACCESS: &[&[&str]] = &[
    &["create_sr", "view_sr"],
    &["create_sr", "view_sr"],
    &["create_sr"],
    &["create_sr", "view_sr", "download"],
    &["view_sr"],
];

/// What user `index` has, decided from a hash of its index.
struct Person {
    index: usize,
    hash: u64,
    has_account: bool,
    member: bool,
    approval: Option<Approval>,
    link: Option<Link>,
}

struct Approval {
    /// `None` for role admin.
    access: Option<&'static [&'static str]>,
    approved_by: Option<usize>,
    expires: Option<&'static str>,
}

struct Link {
    via: Option<usize>,
    expires: Option<&'static str>,
}

impl Person {
    fn of(index: usize) -> Person {
        let hash = splitmix64(index as u64);
        // Independent draws, each in 0..1000, from different bits.
        let draw = |shift: u32| ((hash >> shift) % 1000) as u32;
        let mut p = Person {
            index,
            hash,
            has_account: false,
            member: false,
            approval: None,
            link: None,
        };
        if index == 0 {
            // The tenancy admin: a support account and nothing else.
            p.has_account = true;
        } else if is_csi_admin(index) {
            p.has_account = true;
            p.member = true;
            p.approval = Some(Approval {
                access: None,
                approved_by: None,
                expires: None,
            });
        } else if draw(0) < 700 {
            p.has_account = true;
            p.member = draw(10) < 800;
            if p.member && draw(20) < 750 {
                p.approval = Some(Approval {
                    access: Some(ACCESS[(hash >> 30) as usize % ACCESS.len()]),
                    approved_by: (draw(34) < 200).then(|| block_admin(index)).flatten(),
                    expires: (draw(44) < 100).then_some("2031-01-01"),
                });
            }
        } else if draw(10) < 100 {
            p.link = Some(Link {
                via: (draw(20) < 500).then(|| block_admin(index)).flatten(),
                expires: (draw(34) < 200).then_some("2031-06-30"),
            });
        }
        p
    }

    fn first(&self) -> &'static str {
        FIRST[(self.hash >> 40) as usize % FIRST.len()]
    }

    fn last(&self) -> &'static str {
        LAST[(self.hash >> 48) as usize % LAST.len()]
    }

    fn name(&self) -> String {
        format!("{} {}", self.first(), self.last())
    }

    /// Unique: the index is part of it.
    fn email(&self) -> String {
        format!(
            "{}.{}.{}@acme.example",
            self.first().to_lowercase(),
            self.last().to_lowercase().replace('ü', "ue"),
            self.index
        )
    }

    fn account(&self) -> Option<(String, &'static str)> {
        if !self.has_account {
            return None;
        }
        let (zone, prefix) = ZONES[(self.hash >> 56) as usize % ZONES.len()];
        Some((format!("{prefix} 555 {:04}", self.index % 10_000), zone))
    }
}

/// Users with index ≡ 1 (mod 1000) are CSI administrators by approval.
fn is_csi_admin(index: usize) -> bool {
    index % 1000 == 1
}

/// The administrator of `index`'s block of 1000, when it precedes `index`.
fn block_admin(index: usize) -> Option<usize> {
    (index % 1000 >= 2).then_some(index / 1000 * 1000 + 1)
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
