//! A tenancy renamed or dropped from the config sets (issue 17 §7): `plan`
//! and `apply` say that the state holds a tenancy they do not manage, and
//! `retire` ends it — asking first, on a real terminal — so that nobody can
//! open SRs for it, while its SRs and journal stay readable.

use serde_json::Value;

use crate::binary::{Outcome, Scratch, json};

/// A tenancy: dan its admin, erin a second administrator, alice approved,
/// bob linked through dan.
fn config(name: &str) -> String {
    format!(
        "tenancy: {{ name: {name}, csi: \"20817431\", admin: dan }}
users:
  dan: {{ email: dan@acme.example, support_account: {{ phone: \"+82 2 555 0100\", timezone: Asia/Seoul }} }}
  erin: {{ email: erin@acme.example, support_account: {{ phone: \"+82 2 555 0101\", timezone: Asia/Seoul }} }}
  alice: {{ email: alice@acme.example, support_account: {{ phone: \"+82 2 555 0102\", timezone: Asia/Seoul }} }}
  bob: {{ email: bob@acme.example }}
memberships: [{{ user: erin }}, {{ user: alice }}]
approvals:
  - {{ user: erin, role: admin }}
  - {{ user: alice, role: user, access: [create_sr, view_sr] }}
support_links:
  - {{ user: bob }}
"
    )
}

/// Writes `name.yaml` with the tenancy `name` and applies it.
fn apply(scratch: &Scratch, file: &str, name: &str) -> Outcome {
    scratch.write(file, &config(name));
    scratch.ok(&["apply", "--auto-approve", file])
}

/// The tenancy's rows as `show` prints them, or why it cannot.
fn shown(scratch: &Scratch, name: &str) -> Outcome {
    scratch.run(&["show", "--tenancy", name, "--format", "json"])
}

#[test]
fn plan_warns_about_tenancies_its_config_set_does_not_manage() {
    let scratch = Scratch::new();
    apply(&scratch, "acme.yaml", "acme");
    // The one tenancy, planned again: nothing to say.
    let alone = scratch.ok(&["plan", "acme.yaml"]);
    assert_eq!(alone.stderr, "", "{}", alone.transcript());

    // The tenancy renamed in its config set: the plan creates a new one,
    // and says that the old one stays as it was, and how to retire it.
    scratch.write("acme.yaml", &config("acme-prod"));
    for args in [
        &["plan", "acme.yaml"][..],
        &["plan", "--format", "json", "acme.yaml"],
    ] {
        let renamed = scratch.ok(args);
        assert!(
            renamed.stderr.starts_with(
                "warning: the state also holds tenancy `acme`, which this config set does not manage; if no config set manages it any more (renamed or dropped), its users can still open SRs. This plan creates tenancy `acme-prod` beside it"
            ),
            "{}",
            renamed.transcript()
        );
        assert!(
            renamed
                .stderr
                .contains("hint: retire it with `supportctl retire --tenancy acme` (its SRs and history are kept)"),
            "{}",
            renamed.transcript()
        );
    }
    let github = scratch.ok(&["plan", "--format", "github", "acme.yaml"]);
    assert!(
        github
            .stderr
            .starts_with("::warning title=supportctl::the state also holds tenancy `acme`")
            && github.stderr.contains("%0A  hint: retire it"),
        "{}",
        github.transcript()
    );
    // Applied, both are in the state; each config set's plan names the other.
    scratch.ok(&["apply", "--auto-approve", "acme.yaml"]);
    apply(&scratch, "beta.yaml", "beta");
    let both = scratch.ok(&["plan", "beta.yaml"]);
    assert!(
        both.stderr.starts_with(
            "warning: the state also holds tenancies `acme`, `acme-prod`, which this config set does not manage; if no config set manages one any more (renamed or dropped), its users can still open SRs.\n"
        ),
        "{}",
        both.transcript()
    );
    assert!(
        both.stderr
            .contains("hint: retire one with `supportctl retire --tenancy acme`"),
        "{}",
        both.transcript()
    );
    // Once retired, the tenancy is not named any more.
    scratch.ok(&["retire", "--tenancy", "acme", "--auto-approve"]);
    let after = scratch.ok(&["plan", "beta.yaml"]);
    assert!(
        after.stderr.contains("holds tenancy `acme-prod`,") && !after.stderr.contains("`acme`,"),
        "{}",
        after.transcript()
    );
}

#[test]
fn retire_removes_every_grant_and_keeps_srs_and_history() {
    let scratch = Scratch::new();
    apply(&scratch, "acme.yaml", "acme");
    apply(&scratch, "beta.yaml", "beta");
    for (user, title) in [("bob", "by bob"), ("alice", "by alice")] {
        scratch.ok(&[
            "sr",
            "open",
            "--tenancy",
            "acme",
            "--user",
            user,
            "--title",
            title,
        ]);
    }
    let srs = scratch
        .ok(&["sr", "list", "--tenancy", "acme", "--format", "json"])
        .stdout;
    let beta = shown(&scratch, "beta").stdout;
    let before = shown(&scratch, "acme").stdout;

    // Without a terminal, and without --auto-approve, nothing happens.
    let refused = scratch.run(&["retire", "--tenancy", "acme"]);
    refused.assert_code(1);
    assert!(
        refused
            .stderr
            .contains("refusing to retire: stdin is not a terminal")
            && refused.stderr.contains("--auto-approve"),
        "{}",
        refused.transcript()
    );
    assert_eq!(
        shown(&scratch, "acme").stdout,
        before,
        "a refusal changed the state"
    );

    let retired = scratch.ok(&["retire", "--tenancy", "acme", "--auto-approve"]);
    for line in [
        "supportctl will make these changes to tenancy `acme`:",
        "  - support_link.bob",
        "  - approval.alice",
        "  - user.dan",
        "  - tenancy.acme  (retired: no config set manages it)",
        "Plan: 0 to add, 0 to change, 13 to destroy.",
        "Its 2 SRs and 1 journal entry are kept: `supportctl sr list --tenancy acme` and `supportctl history --tenancy acme` read them.",
        "Retired tenancy `acme`: 13 resources removed; nobody can open SRs for it.",
    ] {
        assert!(
            retired.stdout.lines().any(|l| l == line),
            "no line `{line}`:\n{}",
            retired.transcript()
        );
    }

    // Nobody can open an SR for it, or act in it.
    for args in [
        &[
            "sr",
            "open",
            "--tenancy",
            "acme",
            "--user",
            "dan",
            "--title",
            "t",
        ][..],
        &[
            "sr",
            "open",
            "--tenancy",
            "acme",
            "--user",
            "bob",
            "--title",
            "t",
        ],
        &["access", "--tenancy", "acme", "--all"],
        &["show", "--tenancy", "acme"],
        &["export", "--tenancy", "acme"],
        &["sr", "list", "--tenancy", "acme", "--user", "alice"],
    ] {
        let out = scratch.run(args);
        out.assert_code(1);
        assert!(
            out.stderr.starts_with("error: tenancy `acme` was retired")
                && out.stderr.contains("`supportctl sr list --tenancy acme`"),
            "{}",
            out.transcript()
        );
        assert_eq!(out.stdout, "");
    }
    // Its SRs and journal are still there, and readable.
    assert_eq!(
        scratch
            .ok(&["sr", "list", "--tenancy", "acme", "--format", "json"])
            .stdout,
        srs
    );
    let one = json(
        &scratch
            .ok(&["sr", "show", "1", "--tenancy", "acme", "--format", "json"])
            .stdout,
    );
    assert_eq!(
        (&one["opened_by"], &one["owner"]),
        (&"bob".into(), &"dan".into())
    );
    let history = json(
        &scratch
            .ok(&["history", "--tenancy", "acme", "--format", "json"])
            .stdout,
    );
    let entries = history.as_array().expect("a list");
    assert_eq!(entries.len(), 2, "{history}");
    assert_eq!(entries[0]["action"], "apply");
    let last = &entries[1];
    assert_eq!(last["action"], "retire", "{last}");
    assert_eq!(last["serial"], 2);
    assert_eq!(last["config_digest"], Value::Null);
    assert_eq!(
        last["summary"],
        serde_json::json!({"add": 0, "change": 0, "destroy": 13})
    );
    let text = scratch.ok(&["history", "--tenancy", "acme"]).stdout;
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.contains("-13  retired the tenancy")),
        "{text}"
    );
    // Without --tenancy, the one live tenancy is meant.
    assert!(scratch.ok(&["show"]).stdout.starts_with("tenancy beta"));
    // The other tenancy is untouched.
    assert_eq!(shown(&scratch, "beta").stdout, beta);

    // Twice is refused; an unknown name says what there is.
    let again = scratch.run(&["retire", "--tenancy", "acme", "--auto-approve"]);
    again.assert_code(1);
    assert!(
        again.stderr.contains("tenancy `acme` is already retired"),
        "{}",
        again.transcript()
    );
    let unknown = scratch.run(&["retire", "--tenancy", "nope", "--auto-approve"]);
    unknown.assert_code(1);
    assert!(
        unknown
            .stderr
            .contains("tenancy `nope` is not in the state; it holds `beta`"),
        "{}",
        unknown.transcript()
    );

    // Applying its config set again creates it afresh; its journal goes on
    // where it stopped, and its SRs are still its own.
    apply(&scratch, "acme.yaml", "acme");
    let history = json(
        &scratch
            .ok(&["history", "--tenancy", "acme", "--format", "json"])
            .stdout,
    );
    let serials: Vec<u64> = history
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| e["serial"].as_u64().expect("a serial"))
        .collect();
    assert_eq!(serials, [1, 2, 3]);
    assert_eq!(
        shown(&scratch, "acme")
            .stdout
            .replace("\"serial\": 3", "\"serial\": 1"),
        before
    );
    assert_eq!(
        scratch
            .ok(&["sr", "list", "--tenancy", "acme", "--format", "json"])
            .stdout,
        srs
    );
}

/// `retire` with a terminal on stdin, typing `answer`: the exit code,
/// stdout and stderr.
fn retire_typing(scratch: &Scratch, answer: &str) -> (i32, String, String) {
    let out = scratch.typing(&["retire", "--tenancy", "acme"], answer);
    (out.code(), out.stdout, out.stderr)
}

#[test]
fn retire_asks_on_a_terminal_and_only_yes_retires() {
    let scratch = Scratch::new();
    apply(&scratch, "acme.yaml", "acme");
    let before = shown(&scratch, "acme").stdout;
    for answer in ["no", "", "YES please"] {
        let (code, stdout, stderr) = retire_typing(&scratch, answer);
        assert_eq!(code, 1, "{answer:?}: {stdout}{stderr}");
        assert!(
            stderr.contains(
                "Do you want to retire tenancy `acme`? Nobody will be able to open SRs for it."
            ) && stderr.contains("retire cancelled: nothing was changed"),
            "{answer:?}: {stderr}"
        );
        assert!(
            stdout.contains("  - tenancy.acme"),
            "what it removes is shown first: {stdout}"
        );
        assert_eq!(
            shown(&scratch, "acme").stdout,
            before,
            "{answer:?} changed the state"
        );
    }
    let (code, stdout, stderr) = retire_typing(&scratch, "yes");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Retired tenancy `acme`"), "{stdout}");
    let gone = shown(&scratch, "acme");
    gone.assert_code(1);
    assert!(gone.stderr.contains("was retired"), "{}", gone.transcript());
    let none = scratch.run(&["access", "--all"]);
    none.assert_code(1);
    assert!(
        none.stderr
            .starts_with("error: the state holds no tenancy: `acme` was retired"),
        "{}",
        none.transcript()
    );
}
