//! `parse` as a whole: places, errors, and the law that the event builder
//! and the deserializer build the very same tree wherever the builder
//! builds one (for written scalars and documents, the repository's files,
//! and documents made at random).

use proptest::prelude::*;

use super::*;

#[test]
fn scalars_keep_their_place_and_length() {
    let root = parse("a: 1\nb:\n  c: \"x y\"\n").unwrap();
    let NodeKind::Map(entries) = &root.kind else {
        panic!("not a map: {root:?}")
    };
    let (key, value) = &entries[1];
    assert_eq!((key.line, key.column, key.len), (2, 1, 1));
    let NodeKind::Map(inner) = &value.kind else {
        panic!("not a map")
    };
    let (_, c) = &inner[0];
    assert_eq!((c.line, c.column, c.len), (3, 6, 5));
    assert_eq!(c.kind, NodeKind::Str("x y".into()));
}

#[test]
fn text_that_looks_like_numbers_stays_text_where_it_would_lose_information() {
    let root = parse("a: 0123\nb: no\nc: 2027-06-30\n").unwrap();
    let NodeKind::Map(entries) = root.kind else {
        panic!()
    };
    let kinds: Vec<_> = entries.into_iter().map(|(_, v)| v.kind).collect();
    assert_eq!(
        kinds,
        vec![
            NodeKind::Str("0123".into()),
            NodeKind::Str("no".into()),
            NodeKind::Str("2027-06-30".into())
        ]
    );
}

#[test]
fn duplicate_keys_reach_the_tree() {
    let root = parse("a: 1\na: 2\n").unwrap();
    let NodeKind::Map(entries) = root.kind else {
        panic!()
    };
    assert_eq!(entries.len(), 2);
}

#[test]
fn syntax_errors_have_a_place() {
    let e = parse("a: [1, 2\n").unwrap_err();
    assert!(!e.limit);
    assert_eq!((e.line, e.column), (1, 4));
    assert!(e.message.contains("unclosed"), "{}", e.message);
}

/// The character at `line` and `column` (both from 1) of `text`.
pub(super) fn char_at(text: &str, line: u32, column: u32) -> Option<char> {
    crate::diag::lines(text)
        .nth(line as usize - 1)?
        .chars()
        .nth(column as usize - 1)
}

#[test]
fn a_tab_in_the_indentation_is_reported_at_the_tab() {
    for text in [
        "a:\n\tb: 1\n",
        "k:\n  - a\n\t- b\n",
        "k:\n  - a\n  \t- b\n",
        "k: |\n\ttext\n",
        "a:\n  b: 1\n\tc: 2\n",
        "a:\n  - b: 1\n\t  c: 2\n",
        "a:\n  b: x\n    y\n\tc: 2\n",
        "users:\n  a:\n    email: a@x.example\n\tname: x\n",
    ] {
        let e = parse(text).unwrap_err();
        assert_eq!(
            char_at(text, e.line, e.column),
            Some('\t'),
            "{text:?}: {e:?}"
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("replace the tab with spaces"),
            "{text:?}"
        );
    }
}

/// Every indented line of the examples, indented with a tab instead of
/// its first space: the error is at that tab, never on the line before.
#[test]
fn a_tab_put_in_any_indentation_of_the_examples_is_found_there() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for name in [
        "examples/acme-prod.yaml",
        "tests/data/valid/every-concept.yaml",
    ] {
        files.push(std::fs::read_to_string(root.join(name)).unwrap());
    }
    let mut tried = 0;
    for text in &files {
        let lines: Vec<&str> = text.split('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start_matches(' ');
            if trimmed.len() == line.len() || trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut changed = lines.clone();
            let tabbed = format!("\t{}", &line[1..]);
            changed[i] = &tabbed;
            let changed = changed.join("\n");
            let Err(e) = parse(&changed) else {
                continue;
            };
            tried += 1;
            assert_eq!(
                (e.line, e.column),
                (i as u32 + 1, 1),
                "line {}: {e:?}",
                i + 1
            );
            assert_eq!(e.hint.as_deref(), Some("replace the tab with spaces"));
        }
    }
    assert!(tried > 50, "only {tried} lines");
}

/// What the event builder and the deserializer make of `text`: whether
/// the builder built the tree itself. Wherever it does, the deserializer
/// must build the very same tree; and `parse` must always answer as the
/// deserializer does.
fn built_from_events(text: &str) -> bool {
    let events = events::tree(text);
    let serde = parse_with_serde(text);
    if let Some(tree) = &events {
        assert_eq!(Ok(tree), serde.as_ref(), "different trees for {text:?}");
    }
    assert_eq!(parse(text), serde, "different outcomes for {text:?}");
    events.is_some()
}

/// Scalars whose type, text or place is easy to get wrong.
const SCALARS: &[&str] = &[
    "",
    "~",
    "null",
    "Null",
    "NULL",
    "nULL",
    "none",
    "None",
    "true",
    "True",
    "TRUE",
    "tRue",
    "false",
    "False",
    "FALSE",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "Yes",
    "NO",
    "0",
    "-0",
    "+0",
    "00",
    "007",
    "-007",
    "+007",
    "1",
    "+1",
    "-1",
    "123",
    " 42",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "-170141183460469231731687303715884105728",
    "0x1F",
    "0X1F",
    "-0x1F",
    "+0x1f",
    "0xff",
    "0o17",
    "0O17",
    "0b101",
    "0B101",
    "0x",
    "0o",
    "0b",
    "0xG",
    "0o8",
    "0b2",
    "-0b101",
    "-0o17",
    "0x8000000000000000",
    "-0x8000000000000000",
    "-0x8000000000000001",
    "0xFFFFFFFFFFFFFFFF",
    "0x10000000000000000",
    "1_000",
    "1__000",
    "_1",
    "1_",
    "0x_1",
    "1.5",
    "-1.5",
    "+1.5",
    ".5",
    "5.",
    "-.5",
    "1e5",
    "1E5",
    "1e-5",
    "1.5e+10",
    "1.5E-3",
    "0.0",
    "-0.0",
    "00.5",
    "0.5",
    "01.5",
    "1_0.5",
    "1.0.0",
    "1e",
    "e5",
    "1e308",
    "2.2250738585072014e-308",
    "4.9e-324",
    "1e-400",
    "inf",
    "-inf",
    "nan",
    "NaN",
    "infinity",
    "Infinity",
    "+nan",
    "-.nan",
    "+.nan",
    "-.NaN",
    "+.NAN",
    ".infx",
    "0x1.8p3",
    "1,000",
    "1 000",
    "$1",
    "2027-06-30",
    "2001-12-14t21:59:43.10-05:00",
    "12:30",
    "1:20:30",
    "0:30",
    "\"quoted\"",
    "'single'",
    "\"\"",
    "''",
    "\"null\"",
    "'~'",
    "\"123\"",
    "'true'",
    "\"0x1F\"",
    "\"1e999\"",
    "'.inf'",
    "\"a\\tb\\u00e9\\x41\"",
    "'it''s'",
    "\"  padded \"",
    "hello world",
    "a:b",
    "a#b",
    "-",
    "--",
    "+",
    ".",
    "é",
    "日本語",
    "emoji 😀",
    "a b  c",
    "x=1",
    "=",
    "%",
    "a\\b",
    "'multi\n  line'",
    "\"multi\n\n  line\"",
    "http://example.com/a?b=c#d",
    "ocid1.user.oc1..aaaa",
    "+44 20 7946 0958",
    "Europe/Paris",
    "support@example.com",
];

#[test]
fn scalars_are_resolved_as_the_deserializer_resolves_them() {
    let mut built = 0;
    for scalar in SCALARS {
        let forms = [
            scalar.to_string(),
            format!("k: {scalar}\n"),
            format!("{scalar}: v\n"),
            format!("- {scalar}\n- x\n"),
            format!("[{scalar}, {scalar}]"),
            format!("{{{scalar}: {scalar}}}"),
            format!("a:\n  b:\n    - {scalar}\n    - c: {scalar}\n      d: 1\n"),
            format!("k: {scalar} # comment\n"),
            format!("k: {scalar}\r\n"),
        ];
        for form in &forms {
            built += usize::from(built_from_events(form));
        }
    }
    assert!(built > SCALARS.len() * 5, "only {built} built from events");
}

/// `.inf`, `.nan` and a numeral too large for a float are numbers like
/// any other: built from events as the deserializer builds them, and
/// read as written where text is expected.
#[test]
fn non_finite_numbers_are_numbers_read_as_written() {
    for scalar in [
        "1e999", "-1e999", "+1e999", ".inf", "-.inf", "+.inf", ".Inf", ".INF", ".nan", ".NaN",
        ".NAN", "1E400",
    ] {
        let text = format!("k: {scalar}\n");
        assert!(built_from_events(&text), "{text:?}");
        let root = parse(&text).unwrap();
        let NodeKind::Map(entries) = &root.kind else {
            panic!("not a map: {root:?}")
        };
        let value = &entries[0].1;
        assert!(
            matches!(value.kind, NodeKind::Float(f) if !f.is_finite()),
            "{text:?}: {value:?}"
        );
        assert_eq!(value.scalar_text(&text).as_deref(), Some(scalar));
        // Through the deserializer too (an anchor sends the file there).
        let anchored = format!("k: &a {scalar}\nl: *a\n");
        let root = parse(&anchored).unwrap();
        let NodeKind::Map(entries) = &root.kind else {
            panic!("not a map: {root:?}")
        };
        for (_, value) in entries {
            assert_eq!(value.scalar_text(&anchored).as_deref(), Some(scalar));
        }
    }
}

#[test]
fn documents_and_collections_are_built_as_the_deserializer_builds_them() {
    let documents = [
        "",
        "\n",
        "\n\n\n",
        "# only a comment\n",
        "  # indented comment",
        " \n\t\n",
        "---\n",
        "---",
        "...\n",
        "---\n...\n",
        "--- # comment\n",
        "%YAML 1.2\n---\na: 1\n",
        "%YAML 1.1\n---\n- yes\n",
        "%TAG !e! tag:example.com,2000:\n---\na: 1\n",
        "---\na: 1\n",
        "---\na: 1\n...\n",
        "a: 1\n...\n",
        "a: 1\n...\n# trailing comment\n",
        "--- 5\n",
        "--- |\n  text\n",
        "\u{feff}a: 1\n",
        "\u{feff}",
        "\u{feff}# bom and comment\n",
        "a: 1\r\nb: 2\r\n",
        "a:\t1\n",
        "a: 1\nb:\n  c: [1, 2, {d: e}]\n  f:\n    - x\n    - y: z\n      w: v\n",
        "- a\n- - b\n  - c\n- {}\n- []\n- [[]]\n- {a: {}}\n",
        "{a: 1, b: [2, 3], c: {d: 4}}",
        "{a: 1, b: [2, 3], c: {d: 4},}",
        "[a, b, c]",
        "[a, b, c,]",
        "[]",
        "{}",
        "[a: b]",
        "[a: b, c, d: ]",
        "[? a, b]",
        "{a, b: c, ? d}",
        "{a: , : b}",
        "[{a: b}, {c: d}]",
        "? complex key\n: value\n",
        "? a\n? b\n: c\n",
        "? |\n  block key\n: v\n",
        "? [a, b]\n: c\n",
        "? {a: b}\n: c\n",
        "? - a\n  - b\n: - c\n  - d\n",
        "{[a, b]: c}",
        "{{a: b}: c}",
        "a:\nb:\nc: ~\n",
        "a:\n  -\n  - \n  - ''\n",
        "a: 1\na: 2\n",
        "a: 1\nb: 2\na: 3\n",
        "1: a\n1: b\n0x1: c\n",
        "é: ü\n日本: 語\n😀: x\n",
        "a: 1 # c\n# c\nb: # c\n  c: 1 # c\n",
        "k: |\n  line1\n  line2\n",
        "k: >\n  folded\n  text\n\n  more\n",
        "k: |-\n  x\n",
        "k: |+\n  x\n\n",
        "k: >2\n   indented\n",
        "k: |\n  123\n",
        "k: |\n",
        "k: >-\n\n",
        "- |\n  a\n- >\n  b\n",
        "k: a\n  b\n  c\n",
        "k: \"a\n  b\"\n",
        "k: 'a\n\n  b'\n",
        "k: \"\\\n  x\"\n",
        "k: \"\\u263A \\U0001F600 \\x41 \\n \\t \\\\ \\\" \\/ \\0 \\a \\e \\_ \\N \\L \\P\"\n",
        "- - - - deep\n",
        "a: {b: {c: {d: {e: [1, [2, [3]]]}}}}\n",
        "long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
        "<<x: 1\n",
        "k: <<\n",
        "'<<': {a: 1}\n",
        "\"<<\": 1\n",
        "- <<\n",
        "users:\n  - id: ocid1.user.oc1..a\n    name: Ann\n    email: ann@example.com\n    phone: '+44 1'\n    csi: 0123\n    since: 2027-06-30\n    admin: no\n",
    ];
    let mut built = 0;
    for text in documents {
        built += usize::from(built_from_events(text));
    }
    assert_eq!(built, documents.len(), "not all built from events");
}

/// Errors, limits and what only the deserializer implements: the
/// builder leaves them to it, so messages and places are its own.
#[test]
fn errors_limits_anchors_tags_and_merge_keys_are_left_to_the_deserializer() {
    let mut deep_flow = "[".repeat(MAX_DEPTH + 1);
    deep_flow.push_str(&"]".repeat(MAX_DEPTH + 1));
    let mut deep_block = String::new();
    for depth in 0..=MAX_DEPTH {
        deep_block.push_str(&" ".repeat(depth));
        deep_block.push_str("k:\n");
    }
    deep_block.push_str(&" ".repeat(MAX_DEPTH + 1));
    deep_block.push_str("v\n");
    let mut deepest_allowed = "[".repeat(MAX_DEPTH);
    deepest_allowed.push_str(&"]".repeat(MAX_DEPTH));
    assert!(built_from_events(&deepest_allowed));
    let inputs = [
        "a: [1, 2\n",
        "a: b: c\n",
        "a: 1\n---\nb: 2\n",
        "a: 1\n---\n",
        "---\n---\n",
        "a: 1\n...\n---\n",
        "- a\nb: c\n",
        "key: \"unterminated\n",
        "a: @b\n",
        "a: `b\n",
        "a: \"\\ud83d\"\n",
        "a: \"\\q\"\n",
        "{a: 1\n",
        "a: 1\n b: 2\n",
        "[a, b]]\n",
        "a: &x 1\nb: *x\n",
        "a: &x [1, 2]\nb: *x\nc: *x\n",
        "a: &x {k: v}\nb: *x\n",
        "a: *unknown\n",
        "&a [*a]",
        "&x a: 1\n",
        "!!str 123",
        "k: !!int 1\n",
        "k: !!float 1\n",
        "k: !!bool true\n",
        "k: !!null ''\n",
        "k: !!str\n",
        "k: !custom x\n",
        "k: ! 12\n",
        "k: !!binary aGVsbG8=\n",
        "k: !!map {a: 1}\n",
        "k: !!seq [1]\n",
        "k: !!int [1]\n",
        "<<: {a: 1}\nb: 2\n",
        "base: &b {a: 1}\nx:\n  <<: *b\n  c: 2\n",
        "{<<: {a: 1}}",
        deep_flow.as_str(),
        deep_block.as_str(),
    ];
    for text in inputs {
        assert!(!built_from_events(text), "built from events: {text:?}");
    }
}

/// Every YAML file of the repository: the examples and the fixtures.
fn repository_files() -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("examples"), &mut files);
    walk(&root.join("tests/data"), &mut files);
    files
}

#[test]
fn the_repository_files_build_the_same_tree() {
    let files = repository_files();
    assert!(files.len() > 50, "{} files", files.len());
    let mut built = 0;
    for file in &files {
        // Not every fixture is UTF-8 (that is what some of them test).
        if let Ok(text) = std::fs::read_to_string(file) {
            built += usize::from(built_from_events(&text));
        }
    }
    assert!(
        built > files.len() * 9 / 10,
        "{built} of {} built",
        files.len()
    );
}

/// A YAML value to write out in block or flow style.
#[derive(Clone, Debug)]
enum Shape {
    Scalar(String),
    Seq(Vec<Shape>, bool),
    Map(Vec<(Shape, Shape)>, bool),
}

impl Shape {
    /// In flow style, as a key, an item or a value on the key's line.
    fn flow(&self, out: &mut String) {
        match self {
            Shape::Scalar(s) => out.push_str(s),
            Shape::Seq(items, _) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.flow(out);
                }
                out.push(']');
            }
            Shape::Map(entries, _) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.flow(out);
                    out.push_str(": ");
                    v.flow(out);
                }
                out.push('}');
            }
        }
    }

    fn is_block(&self) -> bool {
        match self {
            Shape::Scalar(_) => false,
            Shape::Seq(items, block) => *block && !items.is_empty(),
            Shape::Map(entries, block) => *block && !entries.is_empty(),
        }
    }

    /// In block style (where it asks for it) at `indent`, from a new line.
    fn block(&self, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match self {
            Shape::Seq(items, _) if self.is_block() => {
                for item in items {
                    out.push_str(&pad);
                    out.push('-');
                    if item.is_block() {
                        out.push('\n');
                        item.block(indent + 2, out);
                    } else {
                        out.push(' ');
                        item.flow(out);
                        out.push('\n');
                    }
                }
            }
            Shape::Map(entries, _) if self.is_block() => {
                for (k, v) in entries {
                    out.push_str(&pad);
                    if k.is_block() {
                        out.push_str("?\n");
                        k.block(indent + 2, out);
                        out.push_str(&pad);
                        out.push(':');
                    } else {
                        k.flow(out);
                        out.push(':');
                    }
                    if v.is_block() {
                        out.push('\n');
                        v.block(indent + 2, out);
                    } else {
                        out.push(' ');
                        v.flow(out);
                        out.push('\n');
                    }
                }
            }
            _ => {
                out.push_str(&pad);
                self.flow(out);
                out.push('\n');
            }
        }
    }
}

fn arb_scalar() -> impl Strategy<Value = String> {
    let text = "[a-z0-9 ._:#'\"\\\\~+é-]{0,8}";
    prop_oneof![
        3 => prop::sample::select(SCALARS).prop_map(str::to_owned),
        2 => text,
        1 => text.prop_map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))),
        1 => text.prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
    ]
}

fn arb_shape() -> impl Strategy<Value = Shape> {
    arb_scalar()
        .prop_map(Shape::Scalar)
        .prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..6), any::<bool>())
                    .prop_map(|(items, block)| Shape::Seq(items, block)),
                (
                    prop::collection::vec((inner.clone(), inner), 0..6),
                    any::<bool>()
                )
                    .prop_map(|(entries, block)| Shape::Map(entries, block)),
            ]
        })
}

/// Characters that change what YAML means, for mutating documents.
const MUTATIONS: &[&str] = &[
    "-", ":", " ", "\n", "#", "'", "\"", "[", "]", "{", "}", ",", "?", "|", ">", "&a ", "*a", "!",
    "\t", "0", "x", "é", "~", ".", "_", "---\n", "...\n", "<<", "\\", "\r\n",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    /// Generated documents, most of them valid YAML, in both styles.
    #[test]
    fn generated_documents_build_the_same_tree(shape in arb_shape()) {
        let mut text = String::new();
        shape.block(0, &mut text);
        built_from_events(&text);
    }

    /// Documents with a few edits, to reach odd corners of the syntax
    /// (and the errors, limits and features left to the deserializer).
    #[test]
    fn mutated_documents_give_the_same_outcome(
        shape in arb_shape(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(MUTATIONS), 0u8..3), 1..4),
    ) {
        let mut text = String::new();
        shape.block(0, &mut text);
        for (at, insert, how) in edits {
            let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
            let at = boundaries[at.index(boundaries.len())];
            match how {
                0 => text.insert_str(at, insert),
                1 => {
                    if let Some(c) = text[at..].chars().next() {
                        text.replace_range(at..at + c.len_utf8(), insert);
                    }
                }
                _ => {
                    if let Some(c) = text[at..].chars().next() {
                        text.replace_range(at..at + c.len_utf8(), "");
                    }
                }
            }
        }
        built_from_events(&text);
    }
}
