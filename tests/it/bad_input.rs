//! Bad input: each must end within seconds and bounded memory, with exit 1
//! and a clear error — with its place where there is a file — and never a
//! panic, a hang or an out-of-memory.
//!
//! Every case runs under `ulimit -v` (see [`MEMORY_KIB`]), so an input that
//! makes the binary allocate without bound fails the test instead of the
//! machine. The harness kills a run that outlives its deadline.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::binary::{Outcome, crate_root, fixed_environment, run, supportctl};

/// The address space a bad-input run may use: far more than any honest
/// config set here needs, far less than an alias bomb would take.
const MEMORY_KIB: u64 = 512 * 1024;

/// How long a bad input may take to be refused.
const QUICK: Duration = Duration::from_secs(10);

fn temp_dir() -> TempDir {
    tempfile::tempdir().expect("a temp dir")
}

/// `supportctl validate PATH` from `dir`, under the memory limit.
fn validate_bounded(dir: &Path, path: &str) -> Outcome {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!(r#"ulimit -v {MEMORY_KIB} && exec "$0" "$@""#))
        .arg(env!("CARGO_BIN_EXE_supportctl"))
        .args(["validate", path])
        .current_dir(dir);
    fixed_environment(&mut command);
    let mut outcome = run(&mut command);
    outcome.shown = format!("supportctl validate {path}");
    outcome
}

/// Asserts the common contract: exit 1, quickly, no panic, an error line, and
/// each of `says` somewhere in stderr.
#[track_caller]
fn assert_refused(outcome: &Outcome, says: &[&str]) {
    outcome.assert_no_panic().assert_code(1);
    assert!(
        outcome.elapsed < QUICK,
        "`{}` took {:?}",
        outcome.shown,
        outcome.elapsed
    );
    assert!(
        outcome.stderr.contains("error["),
        "`{}` printed no error:\n{}",
        outcome.shown,
        outcome.stderr
    );
    assert!(outcome.stdout.is_empty(), "{}", outcome.stdout);
    for text in says {
        assert!(
            outcome.stderr.contains(text),
            "`{}` does not say {text:?}:\n{}",
            outcome.shown,
            outcome.stderr
        );
    }
}

fn example_text() -> String {
    fs::read_to_string(crate_root().join("examples/acme-prod.yaml")).expect("the example")
}

#[test]
fn non_utf8_bytes_are_named_at_their_place() {
    let dir = temp_dir();
    fs::write(
        dir.path().join("latin1.yaml"),
        b"tenancy:\n  name: caf\xe9\n",
    )
    .expect("written");
    let outcome = validate_bounded(dir.path(), "latin1.yaml");
    assert_refused(
        &outcome,
        &[
            "latin1.yaml:2:12: error[E002]: the file is not UTF-8",
            "hint: save the file as UTF-8",
        ],
    );
}

#[test]
fn an_empty_file_is_named() {
    // An empty file holds no tenancy; the error should say which file was
    // read and found empty, not only that the set has no tenancy.
    let dir = temp_dir();
    fs::write(dir.path().join("empty.yaml"), "").expect("written");
    let outcome = validate_bounded(dir.path(), "empty.yaml");
    assert_refused(&outcome, &["error[E008]", "empty.yaml"]);
}

#[test]
fn an_empty_directory_is_not_a_config_set() {
    let dir = temp_dir();
    fs::create_dir(dir.path().join("configs")).expect("created");
    let outcome = validate_bounded(dir.path(), "configs");
    assert_refused(
        &outcome,
        &["error[E001]: no `*.yaml` or `*.yml` files in `configs`"],
    );
}

#[test]
fn a_directory_of_hidden_files_only_is_not_a_config_set() {
    let dir = temp_dir();
    let configs = dir.path().join("configs");
    fs::create_dir_all(configs.join(".git")).expect("created");
    fs::write(configs.join(".acme.yaml"), example_text()).expect("written");
    fs::write(configs.join(".git").join("acme.yaml"), example_text()).expect("written");
    let outcome = validate_bounded(dir.path(), "configs");
    assert_refused(
        &outcome,
        &[
            "error[E001]: no `*.yaml` or `*.yml` files in `configs`",
            "hint: hidden files and folders (starting with `.`) are skipped",
        ],
    );
}

#[test]
fn a_top_level_list_is_the_wrong_type() {
    let dir = temp_dir();
    fs::write(
        dir.path().join("list.yaml"),
        "- tenancy: acme\n- users: {}\n",
    )
    .expect("written");
    let outcome = validate_bounded(dir.path(), "list.yaml");
    assert_refused(
        &outcome,
        &["list.yaml:1:1: error[E004]: a config file holds a mapping of sections, found a list"],
    );
}

#[test]
fn a_top_level_scalar_is_the_wrong_type() {
    let dir = temp_dir();
    fs::write(dir.path().join("scalar.yaml"), "acme-prod\n").expect("written");
    let outcome = validate_bounded(dir.path(), "scalar.yaml");
    assert_refused(
        &outcome,
        &[
            "scalar.yaml:1:1: error[E004]: a config file holds a mapping of sections, found a string",
        ],
    );
}

#[test]
fn a_100_mb_file_is_refused_before_it_is_read() {
    let dir = temp_dir();
    let file = fs::File::create(dir.path().join("huge.yaml")).expect("created");
    // Sparse: the size is what matters, and it takes no time to make.
    file.set_len(100 * 1024 * 1024).expect("grown");
    drop(file);
    let outcome = validate_bounded(dir.path(), "huge.yaml");
    assert_refused(
        &outcome,
        &["huge.yaml:1:1: error[E010]: file is 104857600 bytes, over the limit of 67108864 bytes"],
    );
}

#[test]
fn the_file_size_limit_can_be_lowered() {
    let outcome = run(&mut supportctl(
        &crate_root(),
        [
            "validate",
            "--max-file-size",
            "1000",
            "examples/acme-prod.yaml",
        ],
    ));
    assert_refused(
        &outcome,
        &[
            "examples/acme-prod.yaml:1:1: error[E010]: file is ",
            "over the limit of 1000 bytes",
        ],
    );
}

#[test]
fn deep_flow_nesting_is_an_input_limit() {
    let dir = temp_dir();
    fs::write(dir.path().join("deep.yaml"), "[".repeat(10_000)).expect("written");
    let outcome = validate_bounded(dir.path(), "deep.yaml");
    // Nesting past the limit is the input-limit rule, whatever the parser
    // meets first (docs/DOMAIN.md §3: "excessive nesting ... is an error").
    assert_refused(&outcome, &["deep.yaml:1:", "error[E010]"]);
}

#[test]
fn deep_block_nesting_is_an_input_limit() {
    let dir = temp_dir();
    let mut text = String::new();
    for depth in 0..1_000 {
        text.push_str(&" ".repeat(depth));
        text.push_str("k:\n");
    }
    fs::write(dir.path().join("deep.yaml"), text).expect("written");
    let outcome = validate_bounded(dir.path(), "deep.yaml");
    assert_refused(&outcome, &["deep.yaml:33:", "error[E010]"]);
}

#[test]
fn a_billion_laughs_is_an_input_limit() {
    let dir = temp_dir();
    let mut text = String::from(
        "a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n",
    );
    let names: Vec<char> = ('a'..='j').collect();
    for pair in names.windows(2) {
        let (previous, next) = (pair[0], pair[1]);
        let aliases = vec![format!("*{previous}"); 9].join(", ");
        text.push_str(&format!("{next}: &{next} [{aliases}]\n"));
    }
    fs::write(dir.path().join("lol.yaml"), &text).expect("written");
    let outcome = validate_bounded(dir.path(), "lol.yaml");
    assert_refused(&outcome, &["lol.yaml:", "error[E010]", "billion laughs"]);
    // Placed at the alias whose copy goes over: a `*` on a line of the file.
    let place = outcome.stderr.split(": error[E010]").next().unwrap_or("");
    let mut numbers = place.rsplit(':').map(|n| n.parse::<usize>().ok());
    let (column, line) = (numbers.next().flatten(), numbers.next().flatten());
    let at = line
        .and_then(|l| text.lines().nth(l - 1))
        .zip(column)
        .and_then(|(l, c)| l.chars().nth(c - 1));
    assert_eq!(at, Some('*'), "placed at {place}:\n{}", outcome.stderr);
}

/// The issue's example: a hundred users sharing one support account through
/// an alias is what anchors are for, not an alias bomb; and so are more
/// merge keys than the YAML crate's fixed cap of 10,000.
#[test]
fn sharing_one_anchor_among_many_users_is_not_an_alias_bomb() {
    let dir = temp_dir();
    let head = "tenancy: { name: t, csi: \"1\", admin: hq }\nusers:\n  hq:\n    email: hq@x.example\n    support_account: &hq { phone: \"+1 212 555 0100\", timezone: America/New_York }\n";
    for users in [100, 20_000] {
        let mut text = head.to_string();
        for i in 0..users {
            text.push_str(&format!(
                "  u{i}:\n    email: u{i}@x.example\n    support_account: *hq\n"
            ));
        }
        text.push_str("memberships: [{ user: u0 }]\napprovals: [{ user: u0, role: admin }]\n");
        let name = format!("shared-{users}.yaml");
        fs::write(dir.path().join(&name), text).expect("written");
        let outcome = validate_bounded(dir.path(), &name);
        outcome.assert_no_panic().assert_code(0);
        let users = users + 1;
        assert!(
            outcome.stdout.contains(&format!("{users} users")),
            "{}{}",
            outcome.stdout,
            outcome.stderr
        );
    }
    let mut merged = head.to_string();
    merged.push_str(
        "  base: &base { email: base@x.example, support_account: { phone: \"1\", timezone: UTC } }\n",
    );
    for i in 0..12_000 {
        merged.push_str(&format!("  u{i}: {{ <<: *base, email: u{i}@x.example }}\n"));
    }
    merged.push_str("memberships: [{ user: u0 }]\napprovals: [{ user: u0, role: admin }]\n");
    fs::write(dir.path().join("merged.yaml"), merged).expect("written");
    let outcome = validate_bounded(dir.path(), "merged.yaml");
    outcome.assert_no_panic().assert_code(0);
    assert!(
        outcome.stdout.contains("12002 users"),
        "{}{}",
        outcome.stdout,
        outcome.stderr
    );
}

#[test]
fn a_symlink_loop_in_a_directory_is_an_error_not_a_hang() {
    let dir = temp_dir();
    let configs = dir.path().join("configs");
    fs::create_dir(&configs).expect("created");
    fs::write(configs.join("acme.yaml"), example_text()).expect("written");
    std::os::unix::fs::symlink(".", configs.join("loop")).expect("linked");
    let outcome = validate_bounded(dir.path(), "configs");
    assert_refused(&outcome, &["error[E002]: symlink loop: `configs/loop`"]);
}

#[test]
fn a_dangling_symlink_in_a_directory_is_unreadable() {
    // Running as root, `chmod 000` does not make a file unreadable; a link to
    // nowhere does.
    let dir = temp_dir();
    let configs = dir.path().join("configs");
    fs::create_dir(&configs).expect("created");
    fs::write(configs.join("acme.yaml"), example_text()).expect("written");
    std::os::unix::fs::symlink("/nonexistent/supportctl/x.yaml", configs.join("x.yaml"))
        .expect("linked");
    let outcome = validate_bounded(dir.path(), "configs");
    assert_refused(&outcome, &["error[E002]: cannot read `configs/x.yaml`"]);
}

#[test]
fn a_dangling_symlink_given_as_the_path_is_an_error() {
    let dir = temp_dir();
    std::os::unix::fs::symlink("/nonexistent/supportctl/x.yaml", dir.path().join("x.yaml"))
        .expect("linked");
    let outcome = validate_bounded(dir.path(), "x.yaml");
    assert_refused(&outcome, &["`x.yaml`"]);
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn a_fifo_in_a_directory_is_not_read_and_does_not_hang() {
    let dir = temp_dir();
    let configs = dir.path().join("configs");
    fs::create_dir(&configs).expect("created");
    fs::write(configs.join("acme.yaml"), example_text()).expect("written");
    mkfifo(&configs.join("x.yaml"));
    let outcome = validate_bounded(dir.path(), "configs");
    assert_refused(
        &outcome,
        &["error[E002]: `configs/x.yaml` is neither a file nor a folder"],
    );
}

#[test]
fn a_fifo_given_as_the_path_does_not_hang() {
    let dir = temp_dir();
    mkfifo(&dir.path().join("x.yaml"));
    let outcome = validate_bounded(dir.path(), "x.yaml");
    assert_refused(&outcome, &["`x.yaml` is neither a file nor a folder"]);
}

#[test]
fn a_nonexistent_path_is_not_found() {
    let dir = temp_dir();
    let outcome = validate_bounded(dir.path(), "no/such/config.yaml");
    assert_refused(
        &outcome,
        &["error[E001]: cannot read `no/such/config.yaml`"],
    );
}

#[test]
fn a_nul_byte_is_a_syntax_error_shown_escaped() {
    let dir = temp_dir();
    fs::write(dir.path().join("nul.yaml"), "tenancy:\n  name: a\0b\n").expect("written");
    let outcome = validate_bounded(dir.path(), "nul.yaml");
    assert_refused(&outcome, &["nul.yaml:2:10: error[E003]"]);
    assert!(!outcome.stderr.contains('\0'), "{:?}", outcome.stderr);
}

#[test]
fn a_broken_file_among_good_ones_is_reported_and_the_rest_still_checked() {
    let dir = temp_dir();
    let configs = dir.path().join("configs");
    fs::create_dir(&configs).expect("created");
    fs::write(configs.join("acme.yaml"), example_text()).expect("written");
    fs::write(
        configs.join("more.yaml"),
        b"users:\n  zed:\n    email: \xff\n",
    )
    .expect("written");
    fs::write(
        configs.join("typo.yaml"),
        "users:\n  yan:\n    email: yan@acme\n",
    )
    .expect("written");
    let outcome = validate_bounded(dir.path(), "configs");
    assert_refused(
        &outcome,
        &[
            "configs/more.yaml:3:12: error[E002]",
            "configs/typo.yaml:3:12: error[E105]",
        ],
    );
}

/// A second admin, so that the cases below need no `single-csi-admin` warning.
const SECOND_ADMIN: &str = "users:\n  d: { email: d@x.example, support_account: { phone: \"1\", timezone: UTC } }\n  e: { email: e@x.example, support_account: { phone: \"2\", timezone: UTC } }\nmemberships: [{ user: e }]\napprovals: [{ user: e, role: admin }]\n";

#[test]
fn a_number_where_text_is_expected_keeps_its_text() {
    // `csi: 0x1F` is not the CSI "31", `1e3` not "1000": reading a plain
    // scalar as text must keep what was written, not the number it parses to.
    let dir = temp_dir();
    // Nor is `.inf` refused as a float that is not finite, where every other
    // number-like scalar reads as its text.
    for (name, csi) in [
        ("hex.yaml", "0x1F"),
        ("exponent.yaml", "1e3"),
        ("infinity.yaml", ".inf"),
        ("minus-infinity.yaml", "-.Inf"),
        ("not-a-number.yaml", ".nan"),
        ("too-large.yaml", "1e999"),
    ] {
        fs::write(
            dir.path().join(name),
            format!("tenancy: {{ name: acme, csi: {csi}, admin: d }}\n{SECOND_ADMIN}"),
        )
        .expect("written");
        let outcome = validate_bounded(dir.path(), name);
        assert_refused(
            &outcome,
            &[&format!("error[E101]: CSI `{csi}` is not all digits")],
        );
    }
    fs::write(
        dir.path().join("name.yaml"),
        format!("tenancy: {{ name: 0x10, csi: \"1\", admin: d }}\n{SECOND_ADMIN}"),
    )
    .expect("written");
    let outcome = validate_bounded(dir.path(), "name.yaml");
    outcome.assert_no_panic().assert_code(0);
    assert!(
        outcome
            .stdout
            .starts_with("The configuration is valid: tenancy `0x10`"),
        "the tenancy named `0x10` was read as another name: {}",
        outcome.stdout
    );
}

/// The first Rust `Debug` rendering of a struct in `text` (`Name { field: …`), if any.
fn debug_struct(text: &str) -> Option<&str> {
    text.match_indices(" { ").find_map(|(at, _)| {
        let word = text[..at].rsplit([' ', ':']).next()?;
        let after = &text[at + 3..];
        let field: String = after
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        (word.starts_with(|c: char| c.is_ascii_uppercase())
            && !field.is_empty()
            && after[field.len()..].starts_with(": "))
        .then(|| &text[at - word.len()..(at + 3 + field.len()).min(text.len())])
    })
}

#[test]
fn limit_errors_speak_the_users_language() {
    // The messages of the input-limit rule should say which limit and how to
    // stay within it, not print the parser's internal budget structs.
    let dir = temp_dir();
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for (previous, next) in ('a'..='i').zip('b'..='j') {
        bomb.push_str(&format!(
            "{next}: &{next} [{}]\n",
            vec![format!("*{previous}"); 9].join(", ")
        ));
    }
    for (name, text) in [
        ("bomb.yaml", bomb),
        ("deep.yaml", format!("{}{}", "[".repeat(40), "]".repeat(40))),
        ("two.yaml", "users: {}\n---\nusers: {}\n".to_string()),
    ] {
        fs::write(dir.path().join(name), text).expect("written");
        let outcome = validate_bounded(dir.path(), name);
        assert_refused(&outcome, &[&format!("{name}:")]);
        assert!(
            !outcome.stderr.contains("budget breached"),
            "{name}: the parser's wording leaks:\n{}",
            outcome.stderr
        );
        assert_eq!(
            debug_struct(&outcome.stderr),
            None,
            "{name}: a Rust debug struct in a message:\n{}",
            outcome.stderr
        );
    }
}

#[test]
fn the_debug_struct_detector_works() {
    assert_eq!(
        debug_struct("budget breached: Depth { depth: 33 }: the file"),
        Some("Depth { depth")
    );
    assert_eq!(debug_struct("write `id: { email: … }` here"), None);
    assert_eq!(debug_struct("add `tenancy: { name: …, csi: \"…\" }`"), None);
}
