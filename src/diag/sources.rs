//! The texts diagnostics point into: each file's text, or where to read it
//! again, and the lines of a text.

use super::*;

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
pub(super) struct LineIndex<'a> {
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

    pub(super) fn new(text: &str) -> LongLine {
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
    pub(super) fn byte_at(&self, text: &str, index: usize) -> usize {
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
pub(super) fn line_starts(text: &str) -> Vec<usize> {
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
    pub(super) fn new(sources: &'a Sources) -> Self {
        LineIndex {
            sources,
            starts: HashMap::new(),
            long: HashMap::new(),
        }
    }

    /// The 1-based line `line` of `file`, without its line break.
    pub(super) fn line(&mut self, file: usize, line: u32) -> Option<&'a str> {
        let index = usize::try_from(line).ok()?.checked_sub(1)?;
        let text = self.sources.text(file);
        let starts = self.starts.entry(file).or_insert_with(|| line_starts(text));
        let rest = &text[*starts.get(index)?..];
        Some(&rest[..rest.find(['\r', '\n']).unwrap_or(rest.len())])
    }

    /// At most `width` characters of line `line` of `file` (which is
    /// `text`) around character `column`, and the column within them.
    pub(super) fn window(
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
