//! Random mutations of valid config sets never crash `validate`.
//!
//! The law: whatever a file holds, `supportctl validate` ends with exit 0 or
//! 1, never a panic; exit 1 comes with at least one `error[` line; exit 0
//! with the "valid" summary; and the JSON report agrees with the text one.
//! Each case runs the real binary (twice: text and JSON), so the case count
//! stays moderate; set `PROPTEST_CASES` to run more.

use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;

use crate::binary::{crate_root, run, supportctl};

/// What a mutation puts where a value was.
const WRONG_VALUES: &[&str] = &[
    "[a, b]",
    "{ k: v }",
    "[]",
    "{}",
    "42",
    "-1.5e300",
    "~",
    "true",
    "\"\"",
    "2027-02-30",
    "*undefined",
    "&anchor value",
    "!!binary aGVsbG8=",
    "\"\\u0000\\e[2J\"",
    "|\n  block",
    "'unclosed",
];

/// Bytes a mutation inserts: anything, weighted towards YAML's structure and
/// towards bytes that are not UTF-8.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => any::<u8>(),
        1 => prop::sample::select(vec![
            b':', b'-', b'[', b']', b'{', b'}', b'&', b'*', b'!', b'|', b'>', b'#', b'"',
            b'\'', b'\n', b'\t', b' ', 0x00, 0x1b, 0x80, 0xc3, 0xe2, 0xf0, 0xfe, 0xff,
        ]),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    SwapValues(usize, usize),
    WrongType(usize, &'static str),
    InsertBytes(usize, Vec<u8>),
    Reindent(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapValues(a, b)),
        (any::<usize>(), prop::sample::select(WRONG_VALUES))
            .prop_map(|(at, value)| Mutation::WrongType(at, value)),
        (
            any::<usize>(),
            prop::collection::vec(interesting_byte(), 1..12)
        )
            .prop_map(|(at, bytes)| Mutation::InsertBytes(at, bytes)),
        (any::<usize>(), 0usize..9).prop_map(|(at, spaces)| Mutation::Reindent(at, spaces)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// The value of a `key: value` line: the byte range after the first `": "`.
fn value_range(line: &[u8]) -> Option<std::ops::Range<usize>> {
    let colon = line.windows(2).position(|w| w == b": ")?;
    Some(colon + 2..line.len())
}

fn apply(text: &[u8], mutation: &Mutation) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let n = lines.len();
    match mutation {
        Mutation::DeleteLine(i) => {
            lines.remove(i % n);
        }
        Mutation::DuplicateLine(i) => {
            let line = lines[i % n].clone();
            lines.insert(i % n, line);
        }
        Mutation::SwapLines(a, b) => lines.swap(a % n, b % n),
        Mutation::SwapValues(a, b) => {
            let (a, b) = (a % n, b % n);
            if a != b
                && let (Some(ra), Some(rb)) = (value_range(&lines[a]), value_range(&lines[b]))
            {
                let va = lines[a][ra.clone()].to_vec();
                let vb = lines[b][rb.clone()].to_vec();
                lines[a].splice(ra, vb);
                lines[b].splice(rb, va);
            }
        }
        Mutation::WrongType(i, value) => {
            let line = &mut lines[i % n];
            if let Some(range) = value_range(line) {
                line.splice(range, value.bytes());
            }
        }
        Mutation::InsertBytes(at, bytes) => {
            let mut joined = lines.join(&b'\n');
            let at = at % (joined.len() + 1);
            joined.splice(at..at, bytes.iter().copied());
            return joined;
        }
        Mutation::Reindent(i, spaces) => {
            let line = &mut lines[i % n];
            let indent = line.iter().take_while(|&&b| b == b' ').count();
            line.splice(..indent, std::iter::repeat_n(b' ', *spaces));
        }
        Mutation::Truncate(at) => {
            let mut joined = lines.join(&b'\n');
            joined.truncate(at % (joined.len() + 1));
            return joined;
        }
    }
    lines.join(&b'\n')
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(128)
}

/// Validates the config set at `path` (relative to `dir`) as text and JSON,
/// and checks the law on both.
fn check_law(dir: &Path, path: &str) -> Result<(), TestCaseError> {
    let text = run(&mut supportctl(dir, ["validate", path]));
    prop_assert!(!text.stderr.contains("panicked"), "panic:\n{}", text.stderr);
    let code = text.code();
    prop_assert!(code == 0 || code == 1, "exit {code}:\n{}", text.stderr);
    let errors = text.stderr.matches("error[").count();
    if code == 1 {
        prop_assert!(errors > 0, "exit 1 without an error:\n{}", text.stderr);
    } else {
        prop_assert_eq!(errors, 0, "exit 0 with errors:\n{}", text.stderr);
        prop_assert!(
            text.stdout.starts_with("The configuration is valid"),
            "{}",
            text.stdout
        );
    }

    let json = run(&mut supportctl(dir, ["validate", "--format", "json", path]));
    prop_assert!(!json.stderr.contains("panicked"), "{}", json.stderr);
    prop_assert_eq!(json.code(), code, "text and JSON exit differently");
    let report: Value = serde_json::from_str(&json.stdout)
        .map_err(|e| TestCaseError::fail(format!("not JSON ({e}):\n{}", json.stdout)))?;
    prop_assert_eq!(&report["valid"], &Value::Bool(code == 0));
    prop_assert_eq!(report["errors"].as_u64(), Some(errors as u64));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn mutated_single_file_never_crashes_validate(
        mutations in prop::collection::vec(mutation(), 1..4)
    ) {
        let original = std::fs::read(crate_root().join("examples/acme-prod.yaml")).expect("the example");
        let mutated = mutations.iter().fold(original, |text, m| apply(&text, m));
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("config.yaml"), &mutated).expect("written");
        check_law(dir.path(), "config.yaml")?;
    }

    #[test]
    fn mutated_config_folder_never_crashes_validate(
        file in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..4)
    ) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let source = crate_root().join("examples/acme-prod");
        let mut files = Vec::new();
        for sub in ["", "users"] {
            std::fs::create_dir_all(dir.path().join("acme-prod").join(sub)).expect("created");
            for entry in std::fs::read_dir(source.join(sub)).expect("the example folder") {
                let path = entry.expect("an entry").path();
                if path.is_file() {
                    let relative = path.strip_prefix(&source).expect("inside").to_path_buf();
                    std::fs::copy(&path, dir.path().join("acme-prod").join(&relative)).expect("copied");
                    files.push(relative);
                }
            }
        }
        files.sort();
        let target = dir.path().join("acme-prod").join(file.get(&files));
        let original = std::fs::read(&target).expect("the copy");
        let mutated = mutations.iter().fold(original, |text, m| apply(&text, m));
        std::fs::write(&target, &mutated).expect("written");
        check_law(dir.path(), "acme-prod")?;
    }
}

#[test]
fn mutations_do_what_they_say() {
    let text = b"a: 1\nb: [x]\n  c: two\n";
    assert_eq!(apply(text, &Mutation::DeleteLine(1)), b"a: 1\n  c: two\n");
    assert_eq!(
        apply(text, &Mutation::SwapValues(0, 2)),
        b"a: two\nb: [x]\n  c: 1\n"
    );
    assert_eq!(
        apply(text, &Mutation::WrongType(0, "{ k: v }")),
        b"a: { k: v }\nb: [x]\n  c: two\n"
    );
    assert_eq!(
        apply(text, &Mutation::Reindent(2, 0)),
        b"a: 1\nb: [x]\nc: two\n"
    );
    assert_eq!(apply(text, &Mutation::Truncate(3)), b"a: ");
    assert_eq!(
        apply(text, &Mutation::InsertBytes(1, vec![0xff])),
        b"a\xff: 1\nb: [x]\n  c: two\n"
    );
}
