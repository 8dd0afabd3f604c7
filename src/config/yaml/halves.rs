//! A large file's tree built in two halves on two threads.
//!
//! The text is cut at the start of a line near its middle where a plain key
//! is written with the least indentation in reach: a key of the mapping the
//! first half ends in. Each half is built from events on its own thread —
//! the second half under a made-up key of its own when the cut is inside a
//! nested mapping (`users:`) — and the second's nodes are moved to their
//! places in the whole text. Nothing is guessed: the cut is used only when
//! both halves build, the first half ends in a block mapping that the line
//! continues at its indentation, and the line before the cut holds a value
//! of its own (not an empty one, whose place the parser would put at the
//! cut); anything else is parsed whole. A construct the cut would break (a
//! quoted scalar or flow collection running over lines) leaves the first
//! half unfinished, which does not build; and a block scalar or a plain one
//! cannot take in a line at its parent's indentation. Each half has half
//! the whole text's budgets, so together they never allow more. Tests
//! compare the halves with the whole at every line of many texts, written
//! and made at random.

use std::borrow::Cow;

use super::{Node, NodeKind, events};

/// From this size a text is worth two threads.
pub(super) const FROM: usize = 1 << 20;

/// How far past the middle a cut is looked for.
const REACH: usize = 64 << 10;

/// The key the second half's entries go under when the cut is inside a
/// nested mapping; dropped again.
const UNDER: &str = "x:\n";

/// The tree of `text` from its two halves; `None` when it cannot be cut
/// near its middle.
pub(super) fn tree(text: &str) -> Option<Node> {
    cut_at(text, cut_near(text, text.len() / 2)?)
}

/// The indentation of a line that starts with a plain key (`name:`,
/// `u0123:` — letters, digits, `.`, `_` and `-`), or `None`.
fn key_indent(line: &str) -> Option<usize> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let rest = &line[indent..];
    let key_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(rest.len());
    let first = rest.bytes().next()?;
    let after = rest[key_len..].strip_prefix(':')?;
    (key_len > 0
        && first.is_ascii_alphanumeric()
        && (after.is_empty() || after.starts_with([' ', '\n', '\r'])))
    .then_some(indent)
}

/// The start of the line from `from` on (within [`REACH`]) that starts
/// with a plain key at the least indentation, the first such.
fn cut_near(text: &str, from: usize) -> Option<usize> {
    let start = from
        + text
            .as_bytes()
            .get(from..)?
            .iter()
            .position(|&b| b == b'\n')?
        + 1;
    let end = (start + REACH).min(text.len());
    let mut best: Option<(usize, usize)> = None;
    let mut at = start;
    while at < end {
        let line_end = text[at..].find('\n').map_or(text.len(), |n| at + n + 1);
        if let Some(indent) = key_indent(&text[at..line_end])
            && best.is_none_or(|(least, _)| indent < least)
            && ends_with_a_value(&text[..at])
        {
            best = Some((indent, at));
            if indent == 0 {
                break;
            }
        }
        at = line_end;
    }
    best.map(|(_, at)| at)
}

/// Whether the last line of `first` that holds more than a comment ends
/// with a value written on it: not a key or item without one (`name:`,
/// `-`), an explicit key, a block scalar's header, or a comment after
/// it. Only a cheap first look, so that the cut chosen is likely to be
/// taken: [`cut_at`] decides from the tree.
fn ends_with_a_value(first: &str) -> bool {
    let Some(last) = first
        .lines()
        .rev()
        .map(|line| line.trim_end_matches([' ', '\r']))
        .find(|line| !line.trim_start().is_empty() && !line.trim_start().starts_with('#'))
    else {
        return false;
    };
    let last_word = last.rsplit(' ').next().unwrap_or(last);
    !(last.contains(" #")
        || last.contains('\t')
        || last.ends_with([':', '-', '?'])
        || last_word.starts_with(['|', '>', '&', '!']))
}

/// Line breaks as the parser counts lines; `None` for a lone carriage
/// return, which is not worth the doubt.
fn lines_in(text: &str) -> Option<u32> {
    let bytes = text.as_bytes();
    let mut lines = 0u32;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\n' => lines = lines.checked_add(1)?,
            b'\r' if bytes.get(i + 1) != Some(&b'\n') => return None,
            _ => {}
        }
    }
    Some(lines)
}

/// The tree of `text` from `text[..at]` and `text[at..]`, when the line at
/// `at` continues the block mapping the first half ends in.
pub(super) fn cut_at(text: &str, at: usize) -> Option<Node> {
    if at == 0 || at >= text.len() || text.as_bytes()[at - 1] != b'\n' {
        return None;
    }
    let (first, rest) = text.split_at(at);
    let line = rest.split('\n').next().unwrap_or(rest);
    let indent = key_indent(line)?;
    let line_of_cut = lines_in(first)?.checked_add(1)?;
    u32::try_from(text.len()).ok()?;
    let second: Cow<str> = if indent == 0 {
        Cow::Borrowed(rest)
    } else {
        Cow::Owned(format!("{UNDER}{rest}"))
    };
    // Each half within half the whole's budgets: together within them.
    let limit = super::scaled_budget(text.len()) / 2;
    let (head, tail) = std::thread::scope(|scope| {
        let tail = scope.spawn(|| events::within(&second, limit));
        let head = events::within(first, limit);
        (
            head,
            tail.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
        )
    });
    let (mut head, tail) = (head?, tail?);
    // The first half's last value must end on its last line, before the
    // line break: a block scalar's place runs on to the next token (and
    // an empty value's starts there), which the cut moved.
    let end = last_scalar_end(&head)?;
    if first
        .get(end..)
        .is_none_or(|after| after.trim_start_matches([' ', '\r', '}', ']', ',']) != "\n")
    {
        return None;
    }
    // A block mapping at `column`: it starts where its first key does
    // (a flow one at its `{`, before its first key; an empty one is a
    // flow one).
    let block_at = |node: &Node, column: u32| {
        node.column == column
            && matches!(&node.kind, NodeKind::Map(entries) if entries
                .first()
                .is_some_and(|(key, _)| key.line == node.line && key.column == node.column))
    };
    let column = u32::try_from(indent + 1).ok()?;
    let (lines, bytes) = if indent == 0 {
        (line_of_cut - 1, at)
    } else {
        (line_of_cut - 2, at.checked_sub(UNDER.len())?)
    };
    if !block_at(&head, 1) || (indent == 0 && tail.column != 1) {
        return None;
    }
    let (NodeKind::Map(roots), NodeKind::Map(tail_roots)) = (&mut head.kind, tail.kind) else {
        return None;
    };
    let mut tail_roots = tail_roots.into_iter();
    let shifted = |mut node: Node| {
        shift(&mut node, lines, bytes as u32);
        node
    };
    if indent == 0 {
        roots.extend(tail_roots.map(|(k, v)| (shifted(k), shifted(v))));
    } else {
        // The first half ends in the mapping the cut line continues.
        let (_, open) = roots.last_mut()?;
        if !block_at(open, column) {
            return None;
        }
        let (under, more) = tail_roots.next()?;
        if under.line != 1 || under.kind != NodeKind::Str("x".into()) || more.column != column {
            return None;
        }
        let (NodeKind::Map(entries), NodeKind::Map(more)) = (&mut open.kind, more.kind) else {
            return None;
        };
        entries.extend(more.into_iter().map(|(k, v)| (shifted(k), shifted(v))));
        roots.extend(tail_roots.map(|(k, v)| (shifted(k), shifted(v))));
    }
    Some(head)
}

/// The byte where the last scalar of a tree ends; `None` when the tree
/// ends in an empty collection, whose end the tree does not tell.
fn last_scalar_end(node: &Node) -> Option<usize> {
    match &node.kind {
        NodeKind::Map(entries) => last_scalar_end(&entries.last()?.1),
        NodeKind::Seq(items) => last_scalar_end(items.last()?),
        _ => Some(node.raw.0 as usize + node.raw.1 as usize),
    }
}

/// Moves a node of the second half, and all under it, by `lines` lines
/// and `bytes` bytes (columns stay: the cut is at a line's start).
fn shift(node: &mut Node, lines: u32, bytes: u32) {
    node.line += lines;
    if node.raw != (0, 0) {
        node.raw.0 += bytes;
    }
    match &mut node.kind {
        NodeKind::Seq(items) => items.iter_mut().for_each(|n| shift(n, lines, bytes)),
        NodeKind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            shift(k, lines, bytes);
            shift(v, lines, bytes);
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::repository_files;
    use super::super::{events, parse};
    use super::*;

    // A large file parsed in two halves (`halves`).

    /// Texts whose lines a cut could fall on, or that a cut could break.
    const CUT_TEXTS: &[&str] = &[
        "tenancy:\n  name: acme\n  csi: \"0123\"\nusers:\n  alice:\n    email: a@x.example\n    name: Alice\n  bob:\n    email: b@x.example\n  carol: {email: c@x.example}\nmemberships:\n  - user: alice\n  - user: bob\napprovals:\n  - user: alice\n    role: admin\n",
        // Empty values before a cut: their place is where the next token is.
        "a:\n  b:\n  c:\nd:\ne: 1\nf:\n",
        "a:\n  - \n  -\nb: x\nc: |\nd: >-\ne: ?\n",
        "a:\n  b: x # a comment\n  c: y\n  # only a comment\nd: z\n",
        // Block scalars: a line at the parent's indentation ends them.
        "a: |\n  text\n  b: not a key\nc: 1\nd: >\n  folded\n\n  more\ne: |2\n    deeper\n  f: g\n",
        "users:\n  u1:\n    note: |\n      u2: inside\n    x: 1\n  u2:\n    note: >-\n      y\n  u3: z\n",
        // Quoted and flow values running over lines.
        "a: \"one\n  two\"\nb: 'three\n  four'\nc: [1,\n  2]\nd: {e: 1,\n  f: 2}\ng: h\n",
        "users:\n  u1: {email: a,\n    name: b}\n  u2: \"x\n    y\"\n  u3: [1,\n    2]\n  u4: w\n",
        "a: \"unclosed\nb: 1\nc: 2\n",
        "a: [1,\nb: 2]\nc: 3\n",
        // A flow mapping at the root, and one under a key.
        "{a: 1,\n b: 2}\n",
        "{a: 1}\nb: 2\n",
        "users: {a: 1}\nb: 2\nc: 3\n",
        "users:\n  {a: 1,\n  b: 2}\nc: 3\n",
        // Plain scalars over lines.
        "a: one\n  two\nb: three\n  four\n  c: five\nd: six\n",
        // Anchors, aliases, tags and merge keys go to the deserializer.
        "a: &x 1\nb: *x\nc: !!str 2\nd:\n  <<: {e: 1}\n  f: 2\n",
        // Documents, directives and their markers.
        "---\na: 1\nb: 2\n...\n",
        "a: 1\n---\nb: 2\n",
        "%YAML 1.2\n---\na: 1\nb: 2\n",
        // Sequences, and mappings nested in them.
        "a:\n- b: 1\n  c: 2\n- d: 3\ne:\n  - f\n  - g\nh: i\n",
        // Duplicate keys, keys with dots and dashes, numbers as keys.
        "a: 1\na: 2\nb.c: 3\nd-e: 4\n0123: 5\n12: 6\n",
        // Line ends: CRLF, a lone CR, no newline at the end.
        "a: 1\r\nb:\r\n  c: 2\r\n  d: 3\r\ne: 4\r\n",
        "a: 1\rb: 2\nc: 3\n",
        "a: 1\nb: 2",
        // Tabs, and keys that are not keys.
        "a:\n\tb: 1\nc: 2\n",
        "a: b:c\nd:e\nf: 1\n",
        "a: 1\n  # indented comment\nb: 2\n\n\nc: 3\n",
        // Explicit keys.
        "? a\n: 1\n? b\nc: 2\n",
        // Found by a review: a second document after an empty collection, a
        // root that is not at column 1, flow roots after a BOM or a
        // multi-byte character (columns count characters).
        "a: []\n...\nb: 2\n",
        "a:\n  b: {}\n...\n  c: 1\n",
        "a: [x, []]\n...\n# c\nb: 2\n",
        "  a:\n    b: 1\n    c: 2\nd: 3\n",
        "\u{FEFF}{a: 1}\nc: 3\n",
        "\u{FEFF}{a: 1,\n b: 2}\nc: 3\n",
        "é: {p: 1}\n   q: 2\n",
        "a\n  k: 1\n",
    ];

    /// A single-file config set of `users` users, as the benchmark makes
    /// them: the nested `users:` mapping holds most of the text.
    fn config_of(users: usize) -> String {
        let mut text =
            String::from("tenancy:\n  name: acme\n  csi: \"12345\"\n  admin: u0\nusers:\n");
        for i in 0..users {
            text.push_str(&format!(
                "  u{i}:\n    email: u{i}@acme.example\n    name: User {i}\n"
            ));
            if i % 3 == 0 {
                text.push_str(&format!(
                    "    support_account: {{ phone: \"+1 212 555 {i:04}\", timezone: Europe/Berlin }}\n"
                ));
            }
        }
        text.push_str("memberships:\n");
        for i in (0..users).step_by(3) {
            text.push_str(&format!("  - user: u{i}\n"));
        }
        text
    }

    #[test]
    fn a_text_cut_in_two_builds_the_tree_the_whole_text_does() {
        let mut texts: Vec<String> = CUT_TEXTS.iter().map(|t| t.to_string()).collect();
        // Not every fixture is UTF-8 (that is what some of them test).
        texts.extend(
            repository_files()
                .iter()
                .filter_map(|f| std::fs::read_to_string(f).ok()),
        );
        texts.push(config_of(60));
        let mut cuts = 0;
        for text in &texts {
            let whole = events::tree(text);
            for at in text.match_indices(['\n', '\r']).map(|(at, _)| at + 1) {
                if let Some(tree) = cut_at(text, at) {
                    cuts += 1;
                    assert_eq!(
                        Some(&tree),
                        whole.as_ref(),
                        "the cut at byte {at} of {text:?} builds another tree"
                    );
                }
            }
        }
        // The cut is taken at most lines of the config-like texts.
        assert!(cuts > 150, "only {cuts} cuts");
    }

    /// Lines a cut may fall among, for texts made at random.
    const SOUP: &[&str] = &[
        "a: 1",
        "b: x",
        "k:",
        "k: []",
        "k: {}",
        "k: [1,",
        "2]",
        "k: {a: 1,",
        "b: 2}",
        "}",
        "]",
        "k: \"q",
        "k: 'q",
        "q\"",
        "q'",
        "k: |",
        "k: |+",
        "k: >-",
        "k: |2",
        "k: >+1",
        "text",
        "",
        "# c",
        "k: v # c",
        "- x",
        "-",
        "- k: v",
        "- []",
        "? k",
        ": v",
        ":",
        "---",
        "...",
        "--- x",
        "--- {a: 1,",
        "--- |",
        "%YAML 1.2",
        "%TAG ! tag:x,2000:",
        "k: &a v",
        "k: *a",
        "k: !t v",
        "<<: {a: 1}",
        "k: é",
        "é: ü",
        "éé: {p: 1,",
        "k: x\ty",
        "k: v ",
        "0: 1",
        "true: 1",
        "null:",
        "~: 1",
        "k: [x, []]",
        "k: {a: [], b: {}}",
        "k: x y",
        "k: x:y",
        "k: \"a\\",
        "{a: 1,",
        "{a: 1}",
        "[a,",
        "[a: b]",
        "k: \"\\L\\L\"",
        "k: 'x''y'",
        "k: -.inf",
        "k: 1e999",
        "k : v",
        "k:v",
        "k:\t1",
        "\tk: 1",
        "k: - x",
        "k: ? x",
        "k: 2}",
        "k: x]",
        "k: ,",
        "k: '",
        "k: \"",
        "k:  # c",
        "k: \"x\" # c",
        "u1:",
        "users:",
        "  ",
        "\u{FEFF}a: 1",
        "k: 😀😀: x",
        "k: {p: 😀,",
        "k: [😀,",
        "k: 0x1F",
        "k: 0123",
        "k: |-",
        "k: >",
        "k: |1-",
    ];

    #[test]
    fn texts_made_at_random_cut_in_two_build_the_tree_the_whole_text_does() {
        // xorshift64, from a fixed seed: the same texts every run.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut random = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut cuts = 0;
        for _ in 0..3000 {
            let mut text = String::new();
            if random(20) == 0 {
                text.push('\u{FEFF}');
            }
            let crlf = random(8) == 0;
            for _ in 0..2 + random(9) {
                text.push_str(&" ".repeat([0, 0, 0, 2, 2, 4, 1, 3][random(8)]));
                text.push_str(SOUP[random(SOUP.len())]);
                text.push_str(match random(40) {
                    0 => "\r",
                    1 => "\r\n",
                    _ if crlf => "\r\n",
                    _ => "\n",
                });
            }
            if random(10) == 0 {
                text.pop();
            }
            let whole = events::tree(&text);
            for at in text.match_indices(['\n', '\r']).map(|(at, _)| at + 1) {
                if let Some(tree) = cut_at(&text, at) {
                    cuts += 1;
                    assert_eq!(Some(&tree), whole.as_ref(), "cut at byte {at} of {text:?}");
                }
            }
        }
        assert!(cuts >= 10, "only {cuts} cuts");
    }

    #[test]
    fn the_two_halves_together_keep_within_the_whole_texts_budgets() {
        // Text that makes more events, or more scalar bytes, than it has
        // bytes: the whole is over its budget, each half alone would not be.
        for half in [
            |key: &str| format!("{key}: [{}x]\n", ":,".repeat(1500)),
            |key: &str| format!("{key}: \"{}\"\n", "\\L".repeat(3000)),
        ] {
            let text = format!("{}{}", half("a"), half("b"));
            assert_eq!(events::tree(&text), None, "the whole is over budget");
            let at = half("a").len();
            assert_eq!(cut_at(&text, at), None);
        }
    }

    #[test]
    fn a_large_file_is_parsed_in_two_halves_as_it_is_whole() {
        let text = config_of(12_000);
        assert!(text.len() >= FROM);
        let halves = tree(&text).expect("cut near the middle of the users");
        assert_eq!(Some(halves), events::tree(&text));
        // Where no line near the middle can take the cut, it is parsed whole.
        let one_scalar = format!("a: |\n{}", "  text text text\n".repeat(80_000));
        assert!(tree(&one_scalar).is_none());
        assert!(parse(&one_scalar).is_ok());
    }
}
