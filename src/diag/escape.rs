//! What every terminal output passes through: control characters, and those
//! that change how text reads, become escapes; and did-you-mean.

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
