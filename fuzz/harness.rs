//! What the `config` fuzz target does with one input, and the invariants it
//! holds the result to.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/config.rs`) and by the
//! integration tests (`tests/it/config_props.rs`), which replay every
//! committed regression under `fuzz/regressions/` and every fixture through
//! it on stable Rust, so a finding stays fixed without nightly or cargo-fuzz.
//!
//! An input is a config set: the bytes of one file, or of several files
//! joined by [`FILE_SEPARATOR`]. It is loaded in memory
//! (`config::load_files`), checked as `validate` checks it
//! (`engine::check_loaded`, on a fixed day), rendered in every output format,
//! and, when it is valid, planned (in memory) and exported and loaded again. No file system, no
//! database: the loop stays fast.

use supportctl::config::{self, export};
use supportctl::diag::{self, Diagnostic, Location, Palette};
use supportctl::engine::{Checked, check_loaded};
use supportctl::model::{Date, Model};
use supportctl::{plan, render};

/// The line that separates the files of a config set in one input.
pub const FILE_SEPARATOR: &[u8] = b"\n#file\n";

/// The most files an input is split into; the rest stays in the last one.
pub const MAX_FILES: usize = 8;

/// The day every input is checked on (the integration tests' `TODAY`).
pub fn today() -> Date {
    Date::parse("2026-11-24").expect("a valid date")
}

/// The files of an input, split at [`FILE_SEPARATOR`], at most [`MAX_FILES`].
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut files = Vec::new();
    let mut rest = data;
    while files.len() + 1 < MAX_FILES {
        let Some(at) = rest
            .windows(FILE_SEPARATOR.len())
            .position(|w| w == FILE_SEPARATOR)
        else {
            break;
        };
        files.push(&rest[..at]);
        rest = &rest[at + FILE_SEPARATOR.len()..];
    }
    files.push(rest);
    files
}

/// Files named as a config set's files would be: `f0.yaml`, `f1.yaml`, …
pub fn named<'a>(files: &[&'a [u8]]) -> Vec<(String, &'a [u8])> {
    files
        .iter()
        .enumerate()
        .map(|(i, bytes)| (format!("f{i}.yaml"), *bytes))
        .collect()
}

/// Loads and checks named files as `validate` would, in memory.
pub fn load_and_check(files: &[(String, &[u8])]) -> Checked {
    let (loaded, diagnostics) = config::load_files(files.iter().map(|(n, b)| (n.as_str(), *b)));
    check_loaded(loaded, diagnostics, today())
}

/// Runs one fuzz input: load, check, render, export; panics when an
/// invariant does not hold.
pub fn run(data: &[u8]) {
    let files = named(&split(data));
    let checked = load_and_check(&files);
    assert_invariants(&checked);
    assert_both_parsers_agree(&files, &checked);
}

/// The line put before each file to send it down the YAML crate's
/// deserializer: an anchor on the root, which the tree builder that reads
/// the parser's events leaves to it, and which changes nothing else.
const ANCHORED_ROOT: &str = "--- &fuzz-root\n";

/// The YAML layer builds a tree two ways: from the parser's events, and,
/// for what that builder leaves (anchors, tags, errors…), through the YAML
/// crate's deserializer. Both must read a file alike: with its root
/// anchored, a config set must check to the same model and the same
/// findings, one line down.
///
/// Compared only where the anchor cannot change the meaning: a set with a
/// tenancy, that parsed, and whose files have no document markers or
/// directives of their own, no anchor or tag before the root, and no
/// byte-order mark past the first byte.
pub fn assert_both_parsers_agree(files: &[(String, &[u8])], checked: &Checked) {
    use supportctl::diag::Rule;
    let parsed = !checked.diagnostics.iter().any(|d| {
        matches!(
            d.rule,
            Rule::Unreadable | Rule::YamlSyntax | Rule::InputLimit | Rule::TenancyMissing
        )
    });
    let plain = files.iter().all(|(_, bytes)| {
        let text = String::from_utf8_lossy(bytes);
        let markers = diag::lines(&text).any(|line| {
            line.starts_with("---") || line.starts_with("...") || line.starts_with('%')
        });
        // A root with an anchor or a tag of its own cannot take another.
        let root_property = diag::lines(&text)
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with('#'))
            .is_some_and(|line| line.starts_with(['&', '!']));
        // After `---` a byte-order mark is inside the document, an error;
        // before it, one may open a document.
        let inner_bom = text
            .strip_prefix('\u{FEFF}')
            .unwrap_or(&text)
            .contains('\u{FEFF}');
        !markers && !root_property && !inner_bom
    });
    // The check took the entries it read; whether they held a tenancy is
    // asked of the files again, only when it matters.
    let tenancy_read = || {
        let (loaded, _) = config::load_files(files.iter().map(|(n, b)| (n.as_str(), *b)));
        !loaded.raw.tenancies.is_empty()
    };
    if !parsed || !plain || !tenancy_read() {
        return;
    }
    let anchored: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(name, bytes)| {
            let (bom, rest) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
                Some(rest) => (&b"\xEF\xBB\xBF"[..], rest),
                None => (&b""[..], *bytes),
            };
            (name.clone(), [bom, ANCHORED_ROOT.as_bytes(), rest].concat())
        })
        .collect();
    let named: Vec<(String, &[u8])> = anchored
        .iter()
        .map(|(name, bytes)| (name.clone(), bytes.as_slice()))
        .collect();
    let again = load_and_check(&named);
    let down = |d: &Diagnostic| {
        let mut d = d.clone();
        if let Some(l) = d.location.as_mut() {
            l.line += 1;
        }
        for r in &mut d.related {
            r.location.line += 1;
        }
        d
    };
    let expected: Vec<Diagnostic> = checked.diagnostics.iter().map(down).collect();
    assert_eq!(
        again.diagnostics, expected,
        "the deserializer reads the set otherwise than the event builder:\n{named:?}"
    );
    assert_eq!(
        again.model, checked.model,
        "another model through the deserializer"
    );
}

/// The invariants of a loaded and checked config set. Panics, naming the
/// first that does not hold.
pub fn assert_invariants(checked: &Checked) {
    let sources = &checked.loaded.sources;
    let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();

    // A model exactly when nothing is an error.
    assert_eq!(
        checked.model.is_some(),
        errors == 0,
        "model {} with {errors} errors: {:?}",
        if checked.model.is_some() {
            "present"
        } else {
            "absent"
        },
        checked.diagnostics
    );

    // Every place lies inside the file it names.
    let files: Vec<File> = (0..sources.len())
        .map(|i| File::new(sources.text(i)))
        .collect();
    for d in &checked.diagnostics {
        if let Some(location) = d.location {
            assert_within(location, &files, d);
        }
        for related in &d.related {
            assert_within(related.location, &files, d);
        }
    }

    // Every renderer copes with every finding, and nothing read from a file
    // reaches a terminal as a control character, or as one that changes
    // how the text reads (a right-to-left override, a zero-width space).
    let text = diag::render_text(&checked.diagnostics, sources, Palette::PLAIN);
    assert!(
        !text
            .chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\t') || diag::changes_how_text_reads(c)),
        "a control or format character in the text:\n{text:?}"
    );
    for d in &checked.diagnostics {
        assert!(
            text.contains(d.rule.code()),
            "{} not rendered:\n{text}",
            d.rule.code()
        );
    }
    let json = diag::render_json(&checked.diagnostics, sources);
    let report: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    assert_eq!(report["errors"].as_u64(), Some(errors as u64), "{json}");
    let github = diag::render_github(&checked.diagnostics, sources);
    assert_eq!(
        github.lines().count(),
        checked.diagnostics.len(),
        "one workflow command per finding:\n{github}"
    );

    if let Some(model) = &checked.model {
        assert_plans(model);
    }

    // A valid config set exported reads back as the same model, as one file
    // and as a GitOps directory. Export writes no renames. Left out: a model
    // whose approvals or links name an approver who is no longer a CSI
    // administrator (their admin approval expired, so the model dropped it):
    // rule 6 rejects such an export; see the README's "Fuzzing" section.
    if let Some(model) = checked.model.as_ref().filter(|m| approvers_are_admins(m)) {
        let mut expected = model.clone();
        expected.renames.clear();
        let single = export::to_single_file(model, None);
        assert_reads_back(&[("export.yaml".to_string(), single)], &expected);
        let directory: Vec<(String, String)> = export::to_directory(model, "schema.json")
            .into_iter()
            .map(|(path, text)| (path.display().to_string(), text))
            .collect();
        assert_reads_back(&directory, &expected);
    }
}

/// The planner's laws on a checked model: planned from nothing, the plan
/// leads to the model (renames aside: there is nothing to rename), a model
/// planned against itself has no changes, and the JSON plan reads back as
/// the same plan.
fn assert_plans(model: &Model) {
    let mut expected = model.clone();
    expected.renames.clear();
    let from_nothing = plan::plan(model, None);
    assert_eq!(
        plan::apply_to(None, &from_nothing).as_ref(),
        Some(&expected),
        "the plan from nothing leads elsewhere: {from_nothing:?}"
    );
    let again = plan::plan(model, Some(&expected));
    assert!(
        again.is_empty(),
        "a model planned against itself: {again:?}"
    );
    let text = render::plan_text(&from_nothing, render::PlanPalette::PLAIN);
    assert!(
        !text
            .chars()
            .any(|c| (c.is_control() && c != '\n') || diag::changes_how_text_reads(c)),
        "a control or format character in the plan:\n{text:?}"
    );
    let json = render::plan_json(&from_nothing, "", 0, "sha256:x");
    let saved = render::parse_plan_json(&json).unwrap_or_else(|e| panic!("{e}:\n{json}"));
    assert_eq!(
        saved.plan, from_nothing,
        "the JSON plan reads back as another plan"
    );
}

/// Whether every `approved_by` and `via` of `model` names a CSI administrator.
fn approvers_are_admins(model: &Model) -> bool {
    let approvers = model.approvals.values().map(|a| &a.approved_by);
    let vias = model.support_links.values().map(|l| &l.via);
    approvers.chain(vias).all(|id| model.is_csi_admin(id))
}

fn assert_reads_back(files: &[(String, String)], expected: &Model) {
    let named: Vec<(String, &[u8])> = files
        .iter()
        .map(|(name, text)| (name.clone(), text.as_bytes()))
        .collect();
    let again = load_and_check(&named);
    let errors: Vec<&Diagnostic> = again.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(
        errors.is_empty(),
        "the export does not validate: {errors:?}\n{files:?}"
    );
    assert_eq!(
        again.model.as_ref(),
        Some(expected),
        "the export reads back as another model:\n{files:?}"
    );
}

/// A file's lines and size, measured once for all its findings.
struct File<'a> {
    lines: Vec<&'a str>,
    chars: usize,
}

impl<'a> File<'a> {
    fn new(text: &'a str) -> Self {
        File {
            lines: yaml_lines(text),
            chars: text.chars().count(),
        }
    }
}

/// Asserts that `location` lies in its file: a line the file has (counting
/// line breaks as YAML does: LF, CR and CRLF, and one more line after a
/// final break) and a column at most one past that line's last character.
fn assert_within(location: Location, files: &[File], d: &Diagnostic) {
    let Some(file) = files.get(location.file as usize) else {
        panic!("{location:?} names a file the set does not have: {d:?}")
    };
    assert!(
        location.line >= 1 && location.line as usize <= file.lines.len(),
        "line {} of a file of {} lines: {d:?}",
        location.line,
        file.lines.len()
    );
    let line = file.lines[location.line as usize - 1];
    let width = line.chars().count();
    assert!(
        location.column >= 1 && location.column as usize <= width + 1,
        "column {} of a line of {width} characters: {d:?}\n{line:?}",
        location.column
    );
    assert!(
        location.len as usize <= file.chars,
        "a length of {} in a file of {} characters: {d:?}",
        location.len,
        file.chars
    );
}

/// The lines of `text` as YAML counts them: broken at LF, CR and CRLF.
fn yaml_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    lines.push(&text[start..]);
    lines
}
