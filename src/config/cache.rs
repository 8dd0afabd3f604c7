//! The parse cache's compact binary form: each file's entries and findings
//! as they came out of the parser, and the cache file that holds them
//! between runs (beside the database, `<db>.parse-cache`).
//!
//! An entry is only ever reused for the same path, the same index in the set
//! and the same SHA-256 of the file's bytes (see [`super::ParseCache`]), and
//! a parse depends on nothing else, so an entry is either exactly right or
//! not used. The file itself is trusted only when it was written by this
//! very build (a later version may parse differently) and its own SHA-256
//! still matches: anything else — missing, truncated, damaged, from another
//! build — is an empty cache, and the files are parsed again.

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::raw::{
    RawApproval, RawMembership, RawPrivilege, RawRole, RawSupportAccount, RawSupportLink,
    RawTenancy, RawUser,
};
use super::{ParsedFile, RawConfig, RawUserEntry, Spanned, Unreadable};
use crate::diag::{Diagnostic, Location, Related, Rule};

/// The first bytes of a cache file.
const MAGIC: &[u8] = b"supportctl parse cache\n";
/// The layout of the file and of its entries; bumped with any change to either.
const FORMAT: u32 = 1;

/// A file's parse, encoded: whether it was read whole, its entries and its
/// findings.
pub(super) fn encode(complete: bool, raw: &RawConfig, diagnostics: &[Diagnostic]) -> Vec<u8> {
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
pub(super) fn decode(bytes: &[u8]) -> Option<(bool, RawConfig, Vec<Diagnostic>)> {
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

/// Reads the cache file at `path`; `Err` says why it cannot be used (and is
/// no error for the caller: the files are parsed again).
pub(super) fn read(path: &Path) -> Result<HashMap<PathBuf, ParsedFile>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not a supportctl parse cache")?;
    let mut r = Reader { bytes: rest, at: 0 };
    let format = u32::take(&mut r).ok_or("truncated")?;
    if format != FORMAT {
        return Err(format!("format {format}, not {FORMAT}"));
    }
    if String::take(&mut r).ok_or("truncated")? != build_id() {
        return Err("written by another build of supportctl".into());
    }
    let sealed: [u8; 32] = r.array().ok_or("truncated")?;
    let body = &rest[r.at..];
    if <[u8; 32]>::from(Sha256::digest(body)) != sealed {
        return Err("damaged: its checksum does not match".into());
    }
    let mut r = Reader { bytes: body, at: 0 };
    let count = usize::take(&mut r).ok_or("truncated")?;
    let mut files = HashMap::with_capacity(count.min(body.len()));
    for _ in 0..count {
        let path = path_from_bytes(<Vec<u8>>::take(&mut r).ok_or("truncated")?);
        let index = usize::take(&mut r).ok_or("truncated")?;
        let hash = r.array().ok_or("truncated")?;
        let encoded = <Vec<u8>>::take(&mut r).ok_or("truncated")?;
        files.insert(
            path,
            ParsedFile {
                index,
                hash,
                encoded,
            },
        );
    }
    if r.at != body.len() {
        return Err("trailing bytes".into());
    }
    Ok(files)
}

/// Writes `files` to `path` whole or not at all: a temporary file beside it,
/// readable by its owner only (entries hold phone numbers), renamed over it.
pub(super) fn write(path: &Path, files: &HashMap<PathBuf, ParsedFile>) -> std::io::Result<()> {
    let mut body = Vec::with_capacity(files.values().map(|f| f.encoded.len() + 64).sum());
    files.len().put(&mut body);
    // In path order, so that the same cache is the same bytes.
    let mut sorted: Vec<_> = files.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (path, file) in sorted {
        path_bytes(path).put(&mut body);
        file.index.put(&mut body);
        body.extend_from_slice(&file.hash);
        file.encoded.put(&mut body);
    }
    let mut head = MAGIC.to_vec();
    FORMAT.put(&mut head);
    build_id().put(&mut head);
    head.extend_from_slice(&Sha256::digest(&body));

    let temporary = temporary_path(path);
    let written = (|| {
        let mut file = open_private(&temporary)?;
        file.write_all(&head)?;
        file.write_all(&body)?;
        file.flush()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Where [`write`] puts the cache before renaming it over `path`: beside it,
/// named for this process, so that two writers never share one.
pub(crate) fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    PathBuf::from(name)
}

fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
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
            file: usize::take(r)?,
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
