//! The documents themselves: every relative link in them leads somewhere (a
//! file or folder of the repository, and a heading where the link names
//! one), and the README stays what a newcomer can finish.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use crate::binary::crate_root;

/// The documents whose links are checked, relative to the crate's root: the
/// top-level ones, everything under `docs/`, and the READMEs beside the
/// benchmark, the fuzz target, the examples and the fixtures.
fn documents() -> Vec<PathBuf> {
    let root = crate_root();
    let mut found: Vec<PathBuf> = [
        "README.md",
        "ARCHITECTURE.md",
        "CONTRIBUTING.md",
        "benches/README.md",
        "fuzz/README.md",
        "fuzz/regressions/README.md",
        "examples/gitops/README.md",
        "examples/kubernetes/README.md",
        "tests/data/README.md",
    ]
    .iter()
    .map(|name| root.join(name))
    .collect();
    let mut folders = vec![root.join("docs")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("a folder under docs/") {
            let path = entry.expect("an entry under docs/").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The lines of a Markdown text outside fenced code blocks, each with its
/// number (from 1).
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match fence {
            Some(open) => {
                if trimmed.starts_with(open) {
                    fence = None;
                }
            }
            None if trimmed.starts_with("```") => fence = Some("```"),
            None if trimmed.starts_with("~~~") => fence = Some("~~~"),
            None => lines.push((i + 1, line)),
        }
    }
    lines
}

/// A line with its code spans (`` `like this` ``) taken out.
fn without_code(line: &str) -> String {
    line.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// The targets of the inline links (`[text](target)`) and link definitions
/// (`[name]: target`) in a text, each with its line number.
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut targets = Vec::new();
    for (number, line) in prose_lines(text) {
        let line = without_code(line);
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let target = match after.strip_prefix('<') {
                Some(angled) => angled.split('>').next().unwrap_or(""),
                None => after
                    .split(|c: char| c == ')' || c.is_whitespace())
                    .next()
                    .unwrap_or(""),
            };
            targets.push((number, target.to_string()));
            rest = after;
        }
        let trimmed = line.trim_start();
        if let Some(definition) = trimmed.strip_prefix('[')
            && let Some((_, target)) = definition.split_once("]: ")
        {
            targets.push((
                number,
                target.split_whitespace().next().unwrap_or("").to_string(),
            ));
        }
    }
    targets
}

/// The anchors of a Markdown text's headings, as GitHub makes them: the
/// heading's text in lower case, without punctuation, spaces made hyphens;
/// a repeated one gets `-1`, `-2`, … after it.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = Vec::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let title = line[hashes..].trim().trim_end_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter(|&c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let count = seen.entry(slug.clone()).or_insert(0);
        anchors.push(if *count == 0 {
            slug
        } else {
            format!("{slug}-{count}")
        });
        *count += 1;
    }
    anchors
}

/// `path` with its `.` and `..` taken away, without asking the file system.
fn normalised(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let root = crate_root();
    let mut broken = Vec::new();
    let mut checked = 0;
    for document in documents() {
        let text = std::fs::read_to_string(&document)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", document.display()));
        let name = document
            .strip_prefix(&root)
            .unwrap_or(&document)
            .display()
            .to_string();
        for (line, target) in link_targets(&text) {
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target.as_str(), None),
            };
            let file = if path.is_empty() {
                document.clone()
            } else {
                normalised(&document.parent().expect("a folder").join(path))
            };
            if !file.starts_with(&root) || !file.exists() {
                broken.push(format!("{name}:{line}: `{target}`: no such file or folder"));
                continue;
            }
            let Some(fragment) = fragment else { continue };
            if file.extension().is_none_or(|e| e != "md") {
                broken.push(format!(
                    "{name}:{line}: `{target}`: an anchor in a file that is not Markdown"
                ));
                continue;
            }
            let linked = std::fs::read_to_string(&file).expect("a Markdown file");
            if !anchors(&linked).iter().any(|a| a == fragment) {
                broken.push(format!(
                    "{name}:{line}: `{target}`: {} has no heading `#{fragment}`",
                    file.strip_prefix(&root).unwrap_or(&file).display()
                ));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 50, "only {checked} links checked");
}

/// The anchors are GitHub's, so that a link that passes here works there.
#[test]
fn anchors_are_made_as_github_makes_them() {
    let text = "# Reference\n## plan --base\n### The watcher's status file\n```sh\n# not a heading\n```\n## §3 The rules of a config set\n## Rules\n## Rules\n#not-a-heading\n";
    assert_eq!(
        anchors(text),
        [
            "reference",
            "plan---base",
            "the-watchers-status-file",
            "3-the-rules-of-a-config-set",
            "rules",
            "rules-1",
        ]
    );
    let links = "[a](x.md#y) `[b](not-a-link.md)` [c](<with space.md>) and [d](https://e.example)\n[def]: other.md\n";
    assert_eq!(
        link_targets(links),
        [
            (1, "x.md#y".to_string()),
            (1, "with space.md".to_string()),
            (1, "https://e.example".to_string()),
            (2, "other.md".to_string()),
        ]
    );
}

/// The README is what a newcomer can finish: under 15 KB, and opening with
/// the main command and the test command.
#[test]
fn the_readme_is_short_and_opens_with_the_two_commands() {
    let readme = std::fs::read_to_string(crate_root().join("README.md")).expect("README.md");
    assert!(
        readme.len() < 15_000,
        "README.md is {} bytes: move detail to docs/ (see CONTRIBUTING.md)",
        readme.len()
    );
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a shell block");
    let commands: Vec<&str> = block
        .lines()
        .map(|line| line.split(" #").next().unwrap_or(line).trim())
        .collect();
    assert_eq!(
        commands,
        [
            "cargo run -- apply --auto-approve examples/acme-prod.yaml",
            "cargo test"
        ]
    );
    let first_section = readme.find("\n## ").expect("a section");
    assert!(
        readme.find("```sh\n").is_some_and(|at| at < first_section),
        "the two commands come before the first section"
    );
}
