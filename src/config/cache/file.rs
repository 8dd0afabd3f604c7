//! The parse cache's compact binary form: each file's entries and findings
//! as they came out of the parser, and the cache file that holds them
//! between runs (beside the database, `<db>.parse-cache`).
//!
//! An entry is only ever reused for the same path, the same index in the set
//! and the same SHA-256 of the file's bytes (see [`super::ParseCache`]), and
//! a parse depends on nothing else, so an entry is either exactly right or
//! not used. The file itself is trusted only when it was written by this
//! very build (a later version may parse differently), and each of its
//! records only when its own SHA-256 still matches: a file that is missing,
//! foreign or from another build is an empty cache, and a damaged or
//! cut-short record ends what is read of it; those files are parsed again.
//! A save after an edit adds the records of the files that changed to the
//! end of the file instead of writing it whole (see [`save`]).

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::ParsedFile;
use crate::config::raw::{
    RawApproval, RawMembership, RawPrivilege, RawRole, RawSupportAccount, RawSupportLink,
    RawTenancy, RawUser,
};
use crate::config::{RawConfig, RawUserEntry, Spanned, Unreadable};
use crate::diag::{Diagnostic, Location, Related, Rule};

/// The first bytes of a cache file.
const MAGIC: &[u8] = b"supportctl parse cache\n";
/// The layout of the file and of its entries; bumped with any change to either.
const FORMAT: u32 = 2;

/// A record that holds a file's parse.
const PUT: u8 = 0;
/// A record that says a file's parse is no longer held.
const REMOVE: u8 = 1;

/// How many bytes a cache file may hold beyond twice what its live entries take
/// before a save writes it afresh instead of adding to it.
const SLACK: u64 = 1 << 20;

/// A file's parse in the cache's encoding, sharing the buffer the cache file
/// was read into (a load decodes from it; nothing is copied before).
#[derive(Clone, Debug)]
pub(in crate::config) struct Encoded {
    bytes: Arc<Vec<u8>>,
    range: Range<usize>,
}

impl Encoded {
    pub(in crate::config) fn new(bytes: Vec<u8>) -> Self {
        let range = 0..bytes.len();
        Encoded {
            bytes: Arc::new(bytes),
            range,
        }
    }
}

impl std::ops::Deref for Encoded {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[self.range.clone()]
    }
}

/// The cache file as this process last read or wrote it: a save adds its
/// records only to that very file, unchanged since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Written {
    device: u64,
    inode: u64,
    /// Where its last whole record ends.
    len: u64,
}

impl Written {
    fn of(meta: &std::fs::Metadata, len: u64) -> Written {
        use std::os::unix::fs::MetadataExt as _;
        Written {
            device: meta.dev(),
            inode: meta.ino(),
            len,
        }
    }
}

/// The largest cache file read: well above what the entries of a set of a
/// million users take, since a file is written afresh before it holds
/// twice its live entries.
const MAX_FILE_BYTES: u64 = 1 << 30;

/// The cache file as an output: private (its entries hold phone numbers),
/// and replaced only when what is there is a cache file too.
const CACHE_FILE: crate::files::Kind = crate::files::Kind {
    name: "a supportctl parse cache",
    recognise: |head| head.starts_with(MAGIC),
    mode: 0o600,
    durable: false,
};

/// The header every cache file starts with: the magic, the format and the
/// build that wrote it.
fn header() -> Vec<u8> {
    let mut head = MAGIC.to_vec();
    FORMAT.put(&mut head);
    build_id().put(&mut head);
    head
}

/// A file's parse, encoded: whether it was read whole, its entries and its
/// findings.
pub(in crate::config) fn encode(
    complete: bool,
    raw: &RawConfig,
    diagnostics: &[Diagnostic],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + raw.users.len() * 160);
    complete.put(&mut out);
    raw.put(&mut out);
    diagnostics.len().put(&mut out);
    for d in diagnostics {
        d.put(&mut out);
    }
    out
}

/// The parse [`encode`] wrote; `None` when the bytes are not one.
pub(in crate::config) fn decode(bytes: &[u8]) -> Option<(bool, RawConfig, Vec<Diagnostic>)> {
    let mut r = Reader { bytes, at: 0 };
    let complete = bool::take(&mut r)?;
    let raw = RawConfig::take(&mut r)?;
    let count = usize::take(&mut r)?;
    let mut diagnostics = Vec::with_capacity(count.min(bytes.len()));
    for _ in 0..count {
        diagnostics.push(Diagnostic::take(&mut r)?);
    }
    (r.at == bytes.len()).then_some((complete, raw, diagnostics))
}

/// What identifies the build that wrote a cache: its version, its commit,
/// and the size and modification time of its executable (which tell two
/// builds of one commit apart, such as a work tree with changes).
fn build_id() -> String {
    let exe = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| {
            let nanos = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{nanos}", m.len())
        })
        .unwrap_or_default();
    format!(
        "{} {} {exe}",
        env!("CARGO_PKG_VERSION"),
        env!("SUPPORTCTL_GIT_COMMIT")
    )
}

/// Reads the cache file at `path`: its entries by path, and where its
/// records end. `Err` says why it cannot be used at all (and is no error for
/// the caller: the files are parsed again).
///
/// The file is a header and a log of records, each sealed by the SHA-256 of
/// its payload: "this path's parse is now this" or "no parse of this path".
/// A later record for a path replaces an earlier one. The log is read up to
/// its first record that is cut short or damaged — the end of a save that
/// was interrupted: what came before is each exactly as written.
pub(super) fn read(path: &Path) -> Result<(HashMap<PathBuf, ParsedFile>, Written), String> {
    // A regular file within the bound, or nothing: a symlink to a device or
    // a FIFO planted here neither hangs nor fills memory.
    let (bytes, meta) = crate::files::read_bounded_with_metadata(path, MAX_FILE_BYTES)
        .map_err(|e| e.to_string())?;
    let bytes = Arc::new(bytes);

    let mut r = Reader {
        bytes: &bytes,
        at: 0,
    };
    if r.slice(MAGIC.len()) != Some(MAGIC) {
        return Err("not a supportctl parse cache".into());
    }
    let format = u32::take(&mut r).ok_or("truncated")?;
    if format != FORMAT {
        return Err(format!("format {format}, not {FORMAT}"));
    }
    if String::take(&mut r).ok_or("truncated")? != build_id() {
        return Err("written by another build of supportctl".into());
    }
    let mut files = HashMap::new();
    let mut end = r.at;
    while r.at < bytes.len() {
        match record(&mut r, &bytes) {
            Some((path, Some(parsed))) => files.insert(path, parsed),
            Some((path, None)) => files.remove(&path),
            None => break,
        };
        end = r.at;
    }
    Ok((files, Written::of(&meta, end as u64)))
}

/// One record of the log: a path and its parse, or no parse; `None` when the
/// record is cut short, damaged, or not one.
fn record(r: &mut Reader, buffer: &Arc<Vec<u8>>) -> Option<(PathBuf, Option<ParsedFile>)> {
    let len = usize::try_from(u64::from_le_bytes(r.array()?)).ok()?;
    let sealed: [u8; 32] = r.array()?;
    let start = r.at;
    let payload = r.slice(len)?;
    if <[u8; 32]>::from(Sha256::digest(payload)) != sealed {
        return None;
    }
    let mut p = Reader {
        bytes: payload,
        at: 0,
    };
    let kind = *p.slice(1)?.first()?;
    let path = path_from_bytes(<Vec<u8>>::take(&mut p)?);
    let parsed = match kind {
        PUT => {
            let index = usize::take(&mut p)?;
            let hash = p.array()?;
            let len = usize::take(&mut p)?;
            let from = start + p.at;
            p.slice(len)?;
            Some(ParsedFile {
                index,
                hash,
                encoded: Encoded {
                    bytes: Arc::clone(buffer),
                    range: from..from + len,
                },
            })
        }
        REMOVE => None,
        _ => return None,
    };
    (p.at == payload.len()).then_some((path, parsed))
}

/// Appends the record of `path` to `out`: its parse, or none.
fn put_record(out: &mut Vec<u8>, path: &Path, parsed: Option<&ParsedFile>) {
    let mut payload = Vec::with_capacity(64 + parsed.map_or(0, |p| p.encoded.len()));
    match parsed {
        Some(parsed) => {
            payload.push(PUT);
            path_bytes(path).put(&mut payload);
            parsed.index.put(&mut payload);
            payload.extend_from_slice(&parsed.hash);
            parsed.encoded.len().put(&mut payload);
            payload.extend_from_slice(&parsed.encoded);
        }
        None => {
            payload.push(REMOVE);
            path_bytes(path).put(&mut payload);
        }
    }
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&payload));
    out.extend_from_slice(&payload);
}

/// Saves `files` to `path`. When `written` is the file as this process last
/// saw it, and adding the records of the `changed` paths keeps it within
/// twice what its live entries take, those records are added to its end in
/// one write; otherwise it is written whole.
pub(super) fn save(
    path: &Path,
    files: &HashMap<PathBuf, ParsedFile>,
    changed: &BTreeSet<PathBuf>,
    written: Option<Written>,
) -> std::io::Result<Written> {
    if let Some(written) = written {
        let mut records = Vec::new();
        for changed in changed {
            put_record(&mut records, changed, files.get(changed));
        }
        let live: u64 = files
            .iter()
            .map(|(path, f)| (f.encoded.len() + path.as_os_str().len() + 64) as u64)
            .sum();
        if written.len + records.len() as u64 <= 2 * live + SLACK
            && let Some(written) = append(path, written, &records)?
        {
            return Ok(written);
        }
    }
    write(path, files)
}

/// Adds `records` to the end of the cache file at `path` in one write, if it
/// is still the file `written` describes; `None` when it is not.
fn append(path: &Path, written: Written, records: &[u8]) -> std::io::Result<Option<Written>> {
    use std::os::unix::fs::FileExt as _;
    // Not there, or not writable in place (a read-only file in a writable
    // folder): written whole instead, as a new file renamed over it.
    let Ok(file) = std::fs::File::options().append(true).read(true).open(path) else {
        return Ok(None);
    };
    // The same file (another save renames a new one in its place) of the same
    // length (nothing added since, no cut-short record at its end), and still
    // of this build.
    let meta = file.metadata()?;
    let now = Written::of(&meta, meta.len());
    let head = header();
    let mut start = vec![0; head.len()];
    if now != written || file.read_exact_at(&mut start, 0).is_err() || start != head {
        return Ok(None);
    }
    let mut file = file;
    file.write_all(records)?;
    Ok(Some(Written {
        len: written.len + records.len() as u64,
        ..written
    }))
}

/// Writes `files` to `path` whole or not at all: a temporary file beside it,
/// readable by its owner only (entries hold phone numbers), renamed over it
/// (see `crate::files`: never over a file that is not a parse cache).
fn write(path: &Path, files: &HashMap<PathBuf, ParsedFile>) -> std::io::Result<Written> {
    let mut bytes = header();
    bytes.reserve(files.values().map(|f| f.encoded.len() + 128).sum());
    // In path order, so that the same cache is the same bytes.
    let mut sorted: Vec<_> = files.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (path, file) in sorted {
        put_record(&mut bytes, path, Some(file));
    }
    let nothing = crate::files::Protected::new();
    crate::files::replace_with(path, &CACHE_FILE, &nothing, |file| {
        file.write_all(&bytes)?;
        Ok(Written::of(&file.metadata()?, bytes.len() as u64))
    })
    .map_err(|e| match e {
        crate::files::OutputError::Io(e) => e,
        refused => std::io::Error::other(refused.to_string()),
    })
}

fn path_bytes(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt as _;
    path.as_os_str().as_bytes().to_vec()
}

fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt as _;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

/// A cursor over encoded bytes; every read fails (`None`) past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn slice(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(len)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.slice(N)?.try_into().ok()
    }
}

/// A value in the cache's encoding: variable-length integers, length-prefixed
/// bytes, a tag byte before each optional value.
trait Codec: Sized {
    fn put(&self, out: &mut Vec<u8>);
    fn take(r: &mut Reader) -> Option<Self>;
}

impl Codec for u64 {
    // LEB128: seven bits a byte, low first; most numbers here (places,
    // lengths) take one or two bytes.
    fn put(&self, out: &mut Vec<u8>) {
        let mut value = *self;
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }
    fn take(r: &mut Reader) -> Option<Self> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *r.bytes.get(r.at)?;
            r.at += 1;
            value |= u64::from(byte & 0x7f).checked_shl(shift)?;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }
}

impl Codec for u32 {
    fn put(&self, out: &mut Vec<u8>) {
        u64::from(*self).put(out);
    }
    fn take(r: &mut Reader) -> Option<Self> {
        u64::take(r)?.try_into().ok()
    }
}

impl Codec for usize {
    fn put(&self, out: &mut Vec<u8>) {
        (*self as u64).put(out);
    }
    fn take(r: &mut Reader) -> Option<Self> {
        u64::take(r)?.try_into().ok()
    }
}

impl Codec for bool {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn take(r: &mut Reader) -> Option<Self> {
        match r.slice(1)? {
            [0] => Some(false),
            [1] => Some(true),
            _ => None,
        }
    }
}

impl Codec for Vec<u8> {
    fn put(&self, out: &mut Vec<u8>) {
        self.as_slice().len().put(out);
        out.extend_from_slice(self);
    }
    fn take(r: &mut Reader) -> Option<Self> {
        let len = usize::take(r)?;
        r.slice(len).map(<[u8]>::to_vec)
    }
}

impl Codec for String {
    fn put(&self, out: &mut Vec<u8>) {
        self.len().put(out);
        out.extend_from_slice(self.as_bytes());
    }
    fn take(r: &mut Reader) -> Option<Self> {
        let len = usize::take(r)?;
        std::str::from_utf8(r.slice(len)?).ok().map(str::to_owned)
    }
}

impl<T: Codec> Codec for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        self.is_some().put(out);
        if let Some(value) = self {
            value.put(out);
        }
    }
    fn take(r: &mut Reader) -> Option<Self> {
        if bool::take(r)? {
            T::take(r).map(Some)
        } else {
            Some(None)
        }
    }
}

impl<T: Codec> Codec for Vec<T> {
    fn put(&self, out: &mut Vec<u8>) {
        self.len().put(out);
        self.iter().for_each(|item| item.put(out));
    }
    fn take(r: &mut Reader) -> Option<Self> {
        let len = usize::take(r)?;
        // Every item is at least a byte: a damaged length cannot reserve more.
        let mut items = Vec::with_capacity(len.min(r.bytes.len() - r.at));
        for _ in 0..len {
            items.push(T::take(r)?);
        }
        Some(items)
    }
}

impl Codec for BTreeSet<String> {
    fn put(&self, out: &mut Vec<u8>) {
        self.len().put(out);
        self.iter().for_each(|item| item.put(out));
    }
    fn take(r: &mut Reader) -> Option<Self> {
        let len = usize::take(r)?;
        let mut items = BTreeSet::new();
        for _ in 0..len {
            items.insert(String::take(r)?);
        }
        Some(items)
    }
}

impl Codec for Location {
    fn put(&self, out: &mut Vec<u8>) {
        self.file.put(out);
        self.line.put(out);
        self.column.put(out);
        self.len.put(out);
    }
    fn take(r: &mut Reader) -> Option<Self> {
        Some(Location {
            file: u32::take(r)?,
            line: u32::take(r)?,
            column: u32::take(r)?,
            len: u32::take(r)?,
        })
    }
}

impl<T: Codec> Codec for Spanned<T> {
    fn put(&self, out: &mut Vec<u8>) {
        self.location.put(out);
        self.value.put(out);
    }
    fn take(r: &mut Reader) -> Option<Self> {
        let location = Location::take(r)?;
        Some(Spanned {
            value: T::take(r)?,
            location,
        })
    }
}

/// A value with a few variants, as the index of its variant.
macro_rules! codec_by_index {
    ($type:ty, [$($variant:expr),* $(,)?]) => {
        impl Codec for $type {
            fn put(&self, out: &mut Vec<u8>) {
                let all: &[$type] = &[$($variant),*];
                let index = all.iter().position(|v| v == self).unwrap_or(0);
                out.push(index as u8);
            }
            fn take(r: &mut Reader) -> Option<Self> {
                let all: &[$type] = &[$($variant),*];
                all.get(usize::from(r.slice(1)?[0])).copied()
            }
        }
    };
}

codec_by_index!(RawRole, [RawRole::User, RawRole::Admin]);
codec_by_index!(
    RawPrivilege,
    [
        RawPrivilege::CreateSr,
        RawPrivilege::ViewSr,
        RawPrivilege::Download
    ]
);

impl Codec for Rule {
    fn put(&self, out: &mut Vec<u8>) {
        let index = Rule::ALL.iter().position(|r| r == self).unwrap_or(0);
        (index as u32).put(out);
    }
    fn take(r: &mut Reader) -> Option<Self> {
        Rule::ALL.get(u32::take(r)? as usize).copied()
    }
}

/// A struct as its fields, in order.
macro_rules! codec_by_fields {
    ($type:ident { $($field:ident),* $(,)? }) => {
        impl Codec for $type {
            fn put(&self, out: &mut Vec<u8>) {
                $( self.$field.put(out); )*
            }
            fn take(r: &mut Reader) -> Option<Self> {
                Some($type { $( $field: Codec::take(r)?, )* })
            }
        }
    };
}

codec_by_fields!(RawTenancy {
    name,
    csi,
    home_region,
    admin
});
codec_by_fields!(RawUser {
    email,
    name,
    support_account,
    previously
});
codec_by_fields!(RawSupportAccount { phone, timezone });
codec_by_fields!(RawUserEntry { id, user });
codec_by_fields!(RawMembership { user });
codec_by_fields!(RawApproval {
    user,
    role,
    access,
    approved_by,
    expires
});
codec_by_fields!(RawSupportLink { user, via, expires });
codec_by_fields!(Unreadable {
    tenancy,
    users,
    memberships,
    approvals,
    support_links
});
codec_by_fields!(RawConfig {
    tenancies,
    users,
    memberships,
    approvals,
    support_links,
    unreadable
});
codec_by_fields!(Related { location, label });
codec_by_fields!(Diagnostic {
    rule,
    location,
    message,
    hint,
    related
});
