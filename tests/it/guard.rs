//! What keeps access right whatever a plan says (issue 17 §1 and §3),
//! through the real binary:
//!
//! - The mass-delete guard never holds back a revocation: grants whose day
//!   has come are neither deletions nor resources to it, and when it refuses
//!   a plan, what the plan takes away lands all the same (`apply` of a
//!   config set and of a saved plan; `watch` in `tests/it/watch.rs`).
//! - The state changes only through a checked plan: a saved plan edited and
//!   sealed again is refused (exit 1, the rule named, nothing written) when
//!   the state it leads to breaks any rule `validate` applies to a config.

use serde_json::{Value, json};

use crate::binary::{Scratch, TODAY, arg, copy_dir, crate_root, run, supportctl};

/// A tenancy of 17 resources: the tenancy, its admin with an account, and
/// seven users linked through the admin — `l0`..`l5` until `ends` (none:
/// for good), `l6` for good unless `l6_linked` is false.
fn linked_seven(ends: &str, l6_linked: bool) -> String {
    let mut text = String::from(
        "tenancy: { name: acme, csi: \"20817431\", admin: dan }\nusers:\n  dan:\n    email: dan@acme.example\n    support_account: { phone: \"+82 2 555 0100\", timezone: Asia/Seoul }\n",
    );
    for i in 0..7 {
        text.push_str(&format!("  l{i}:\n    email: l{i}@acme.example\n"));
    }
    text.push_str("support_links:\n");
    for i in 0..6 {
        text.push_str(&format!("  - {{ user: l{i}, expires: {ends} }}\n"));
    }
    if l6_linked {
        text.push_str("  - { user: l6 }\n");
    }
    text
}

const EVE: &str = "2026-12-31";
const DAY: &str = "2027-01-01";

#[test]
fn links_ending_at_one_midnight_are_no_mass_deletion_and_a_later_removal_lands() {
    let world = Scratch::new();
    let config = world.write("acme.yaml", &linked_seven(DAY, true));
    world
        .on(EVE)
        .run(&["apply", "--auto-approve", arg(&config)])
        .assert_code(0);
    assert_eq!(world.on(EVE).access("l0")["can_open_sr"], true);

    // The day they end: the six expired links are removed from the state
    // without a word from the guard (they grant nothing already).
    let applied = world
        .on(DAY)
        .run(&["apply", "--auto-approve", arg(&config)]);
    applied.assert_code(0);
    assert!(
        applied
            .stdout
            .ends_with("Apply complete! Resources: 0 added, 0 changed, 6 destroyed.\n"),
        "{}",
        applied.transcript()
    );
    assert!(!applied.stderr.contains("refusing"), "{}", applied.stderr);

    // Then another user's link is removed from the file: it lands.
    let config = world.write("acme.yaml", &linked_seven(DAY, false));
    world
        .on(DAY)
        .run(&["plan", "--detailed-exitcode", arg(&config)])
        .assert_code(2);
    world
        .on(DAY)
        .run(&["apply", "--auto-approve", arg(&config)])
        .assert_code(0);
    assert_eq!(world.on(DAY).access("l6")["can_open_sr"], false);
}

#[test]
fn an_apply_after_the_expiry_day_with_a_removal_lands_whole() {
    // The expired links and one more removal in the same apply: 7 deletions
    // of 17 resources, of which only one takes away access still held.
    for saved in [false, true] {
        let world = Scratch::new();
        let config = world.write("acme.yaml", &linked_seven(DAY, true));
        world
            .on(EVE)
            .run(&["apply", "--auto-approve", arg(&config)])
            .assert_code(0);
        let config = world.write("acme.yaml", &linked_seven(DAY, false));
        let applied = if saved {
            world
                .on(DAY)
                .run(&["plan", "-o", "p.plan", arg(&config)])
                .assert_code(0);
            world.on(DAY).run(&["apply", "p.plan"])
        } else {
            world
                .on(DAY)
                .run(&["apply", "--auto-approve", arg(&config)])
        };
        applied.assert_code(0);
        assert!(
            applied
                .stdout
                .ends_with("Apply complete! Resources: 0 added, 0 changed, 7 destroyed.\n"),
            "{}",
            applied.transcript()
        );
        for user in ["l0", "l5", "l6"] {
            assert_eq!(world.on(DAY).access(user)["can_open_sr"], false, "{user}");
        }
    }
}

#[test]
fn a_refused_config_still_revokes_what_it_took_away() {
    // A config that lost every link but l0's: 6 of 17 resources deleted,
    // but every deletion is a revocation, so all of it lands, with a
    // warning.
    let world = Scratch::new();
    let config = world.write("acme.yaml", &linked_seven("2030-01-01", true));
    world
        .on(EVE)
        .run(&["apply", "--auto-approve", arg(&config)])
        .assert_code(0);
    let only_l0 = linked_seven("2030-01-01", true)
        .lines()
        .filter(|l| !l.contains("user: l") || l.contains("user: l0"))
        .collect::<Vec<_>>()
        .join("\n");
    let config = world.write("acme.yaml", &only_l0);
    let applied = world
        .on(EVE)
        .run(&["apply", "--auto-approve", arg(&config)]);
    applied.assert_code(0);
    assert!(
        applied.stderr.contains("all of them grants"),
        "{}",
        applied.transcript()
    );
    for user in ["l1", "l6"] {
        assert_eq!(world.on(EVE).access(user)["can_open_sr"], false, "{user}");
    }

    // A config set that lost its users: the users are held back, nobody
    // keeps a link the config took away, and the exit is 3.
    let world = Scratch::new();
    let config = world.write("acme.yaml", &linked_seven("2030-01-01", true));
    world
        .on(EVE)
        .run(&["apply", "--auto-approve", arg(&config)])
        .assert_code(0);
    let lost = "tenancy: { name: acme, csi: \"20817431\", admin: dan }\nusers:\n  dan:\n    email: dan@acme.example\n    support_account: { phone: \"+82 2 555 0100\", timezone: Asia/Seoul }\n";
    let config = world.write("acme.yaml", lost);
    let refused = world
        .on(EVE)
        .run(&["apply", "--auto-approve", arg(&config)]);
    refused.assert_code(3);
    assert!(
        refused.stderr.contains(
            "refusing to delete 14 of the 17 resources of tenancy `acme` (more than 25%): the 7 changes in it that take access away are applied all the same, and the 7 others are held back"
        ),
        "{}",
        refused.transcript()
    );
    for i in 0..7 {
        let user = format!("l{i}");
        let access = world.on(EVE).access(&user);
        assert_eq!(access["can_open_sr"], false, "{user}: {access}");
    }
}

// ---- §3: the state only changes through a checked plan ----

/// The example tenancy applied, and an empty plan saved against it.
fn example_world() -> (Scratch, String) {
    let world = Scratch::new();
    let example = crate_root().join("examples").join("acme-prod");
    world
        .on(TODAY)
        .run(&["apply", "--auto-approve", arg(&example)])
        .assert_code(0);
    world
        .on(TODAY)
        .run(&["plan", "-o", "empty.plan", arg(&example)])
        .assert_code(0);
    let plan = std::fs::read_to_string(world.path("empty.plan")).unwrap();
    (world, plan)
}

/// `plan` with `changes` added, sealed again as `plan -o` would seal it.
fn resealed(plan: &str, changes: &[Value]) -> String {
    let mut doc: Value = serde_json::from_str(plan).unwrap();
    for change in changes {
        let key = match change["action"].as_str().unwrap() {
            "create" => "add",
            "update" => "change",
            _ => "destroy",
        };
        let n = doc["summary"][key].as_u64().unwrap();
        doc["summary"][key] = (n + 1).into();
        doc["changes"].as_array_mut().unwrap().push(change.clone());
    }
    let read = supportctl::render::parse_plan_json(&doc.to_string()).unwrap();
    supportctl::render::plan_json(&read.plan, &read.lineage, read.serial, &read.config_digest)
}

fn change(kind: &str, id: &str, action: &str, before: Value, after: Value) -> Value {
    json!({
        "address": format!("{kind}.{id}"), "type": kind, "id": id, "action": action,
        "reason": null, "before": before, "after": after,
    })
}

#[test]
fn a_resealed_plan_that_breaks_a_rule_is_refused_and_writes_nothing() {
    let (world, plan) = example_world();
    let db = world.db_bytes();
    let carol_account = json!({"phone": "+49 30 555 0102", "timezone": "Europe/Berlin"});
    let cases: Vec<(&str, Vec<Value>)> = vec![
        // An administrator approved by themselves.
        (
            "E111",
            vec![change(
                "approval",
                "carol",
                "create",
                Value::Null,
                json!({"role": "admin", "access": ["create_sr", "view_sr", "download"], "approved_by": "carol", "expires": null}),
            )],
        ),
        // A linked user approved too.
        (
            "E113",
            vec![
                change(
                    "support_account",
                    "bob",
                    "create",
                    Value::Null,
                    json!({"phone": "+82 2 555 0103", "timezone": "Asia/Seoul"}),
                ),
                change("membership", "bob", "create", Value::Null, json!({})),
                change(
                    "approval",
                    "bob",
                    "create",
                    Value::Null,
                    json!({"role": "user", "access": ["create_sr"], "approved_by": "dankim", "expires": null}),
                ),
            ],
        ),
        // A grant of the tenancy admin's own.
        (
            "E112",
            vec![change(
                "membership",
                "dankim",
                "create",
                Value::Null,
                json!({}),
            )],
        ),
        // A link through nobody.
        (
            "E117",
            vec![change(
                "support_link",
                "carol",
                "create",
                Value::Null,
                json!({"via": "nobody", "expires": null}),
            )],
        ),
        // An approval without a membership request.
        (
            "E108",
            vec![
                change(
                    "user",
                    "zed",
                    "create",
                    Value::Null,
                    json!({"email": "zed@acme.example", "name": null}),
                ),
                change(
                    "approval",
                    "zed",
                    "create",
                    Value::Null,
                    json!({"role": "user", "access": ["create_sr"], "approved_by": "dankim", "expires": null}),
                ),
            ],
        ),
        // A membership whose account is gone.
        (
            "E107",
            vec![change(
                "support_account",
                "carol",
                "delete",
                carol_account.clone(),
                Value::Null,
            )],
        ),
        // An empty phone, a zone that is not one.
        (
            "E115",
            vec![change(
                "support_account",
                "carol",
                "update",
                carol_account.clone(),
                json!({"phone": "", "timezone": "Europe/Berlin"}),
            )],
        ),
        (
            "E116",
            vec![change(
                "support_account",
                "carol",
                "update",
                carol_account,
                json!({"phone": "+49 30 555 0102", "timezone": "Berlin"}),
            )],
        ),
        // Two users with one email; a user id that is not one.
        (
            "E106",
            vec![change(
                "user",
                "zed",
                "create",
                Value::Null,
                json!({"email": "Alice@acme.example", "name": null}),
            )],
        ),
        (
            "E104",
            vec![change(
                "user",
                "Zed",
                "create",
                Value::Null,
                json!({"email": "zed@acme.example", "name": null}),
            )],
        ),
        // The approver of two approvals deleted.
        (
            "E117",
            vec![change(
                "user",
                "erin",
                "delete",
                json!({"email": "erin@acme.example", "name": null}),
                Value::Null,
            )],
        ),
    ];
    for (code, changes) in cases {
        world.write("bad.plan", &resealed(&plan, &changes));
        let out = world.on(TODAY).run(&["apply", "bad.plan"]);
        out.assert_code(1);
        assert!(
            out.stderr.contains("the state this plan leads to breaks")
                && out.stderr.contains(&format!("[{code}]"))
                && out.stderr.contains("nothing was changed"),
            "{code}: {}",
            out.transcript()
        );
        assert_eq!(
            world.db_bytes(),
            db,
            "{code}: a refused plan writes nothing"
        );
    }
    // The plan as it was saved applies.
    world.on(TODAY).run(&["apply", "empty.plan"]).assert_code(0);
}

#[test]
fn a_resealed_plan_that_breaks_no_rule_applies() {
    // The check refuses what breaks a rule, not what is merely new: a
    // pending member approved by an administrator, in a resealed plan.
    let (world, plan) = example_world();
    world.write(
        "ok.plan",
        &resealed(
            &plan,
            &[change(
                "approval", "carol", "create", Value::Null,
                json!({"role": "user", "access": ["create_sr"], "approved_by": "erin", "expires": null}),
            )],
        ),
    );
    world.on(TODAY).run(&["apply", "ok.plan"]).assert_code(0);
    assert_eq!(world.on(TODAY).access("carol")["can_open_sr"], true);
}

// ---- Saved plans that do not fit, and a database that cannot be ----

#[test]
fn a_saved_plan_that_does_not_fit_is_refused_before_it_is_printed() {
    let today = TODAY;
    let example = crate_root().join("examples").join("acme-prod");
    let example = arg(&example);

    // Made before any database existed, applied after one holds the tenancy.
    let world = Scratch::new();
    world
        .on(today)
        .run(&["plan", "-o", "first.plan", example])
        .assert_code(0);
    assert!(!world.db.exists(), "plan creates no database");
    world
        .on(today)
        .run(&["apply", "--auto-approve", example])
        .assert_code(0);
    let out = world.on(today).run(&["apply", "first.plan"]);
    out.assert_code(1);
    assert_eq!(out.stdout, "", "a plan that does not fit is not printed");
    assert!(
        out.stderr.contains("it was made before any database held tenancy `acme-prod`, and this one holds it at serial 1 already")
            && !out.stderr.contains("lineage"),
        "{}",
        out.transcript()
    );

    // Made against another database.
    let other = Scratch::new();
    other
        .on(today)
        .run(&["apply", "--auto-approve", example])
        .assert_code(0);
    other
        .on(today)
        .run(&["plan", "-o", "other.plan", example])
        .assert_code(0);
    let plan = std::fs::read_to_string(other.path("other.plan")).unwrap();
    world.write("other.plan", &plan);
    let out = world.on(today).run(&["apply", "other.plan"]);
    out.assert_code(1);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("it was made against another database"),
        "{}",
        out.transcript()
    );

    // Made before the state moved on.
    world
        .on(today)
        .run(&["plan", "-o", "stale.plan", example])
        .assert_code(0);
    let carol = world.write(
        "approve-carol.yaml",
        "approvals:\n  - { user: carol, role: user, access: [create_sr] }\n",
    );
    let config = world.path("config");
    copy_dir(&crate_root().join("examples").join("acme-prod"), &config);
    std::fs::copy(&carol, config.join("approvals-carol.yaml")).unwrap();
    world
        .on(today)
        .run(&["apply", "--auto-approve", arg(&config)])
        .assert_code(0);
    let out = world.on(today).run(&["apply", "stale.plan"]);
    out.assert_code(1);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("it is stale: it was made at serial 1 of tenancy `acme-prod`, and the state has moved on to serial 2"),
        "{}",
        out.transcript()
    );
}

#[test]
fn a_database_in_a_missing_folder_is_an_error_before_planning() {
    // A SQLite file's path whose folder is missing (SQLite backend only).
    let scratch = Scratch::new();
    let example = crate_root().join("examples").join("acme-prod");
    for command in ["plan", "apply"] {
        let mut cmd = supportctl(
            scratch.root(),
            ["--db", "no/such/folder/s.db", command, arg(&example)],
        );
        let out = run(&mut cmd);
        out.assert_code(1).assert_no_panic();
        assert_eq!(out.stdout, "", "{command}: nothing is planned");
        assert!(
            out.stderr
                .contains("the database `no/such/folder/s.db` is in a folder that does not exist (`no/such/folder`)"),
            "{command}: {}",
            out.transcript()
        );
    }
}

#[test]
fn an_export_reads_back_after_an_approvers_own_approval_ended() {
    // erin, an administrator until 2026-12-01, approved frank and has gina
    // linked through her.
    let world = Scratch::new();
    let config = world.path("config");
    copy_dir(&crate_root().join("examples").join("acme-prod"), &config);
    let approvals = config.join("approvals.yaml");
    let text = std::fs::read_to_string(&approvals).unwrap();
    let text = text.replace(
        "  - user: erin\n    role: admin\n",
        "  - user: erin\n    role: admin\n    expires: 2026-12-01\n",
    );
    std::fs::write(&approvals, text).unwrap();
    let before = "2026-11-24";
    let after = "2026-12-02";
    world
        .on(before)
        .run(&["apply", "--auto-approve", arg(&config)])
        .assert_code(0);
    let applied = world
        .on(after)
        .run(&["apply", "--auto-approve", arg(&config)]);
    applied.assert_code(0);
    assert!(
        applied.stderr.contains("warning[W204]") && applied.stderr.contains("warning[W205]"),
        "{}",
        applied.transcript()
    );
    // frank's approval stays valid; gina's link is inactive.
    assert_eq!(world.on(after).access("frank")["can_open_sr"], true);
    let gina = world.on(after).access("gina");
    assert_eq!(gina["can_open_sr"], false, "{gina}");
    // The state exports and reads back with no changes.
    world
        .on(after)
        .run(&["export", "--out", "exported"])
        .assert_code(0);
    let replan = world
        .on(after)
        .run(&["plan", "--detailed-exitcode", "exported"]);
    replan.assert_code(0);
    assert!(
        replan.stdout.starts_with("No changes."),
        "{}",
        replan.transcript()
    );
}
