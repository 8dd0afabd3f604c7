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
    let reference = include_str!("../../docs/reference.md");
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
