use proptest::prelude::*;
use proptest::strategy::ValueTree;

use super::*;
use crate::model::{Date, Privilege, Role};

const IDS: [&str; 6] = ["admin", "alice", "bob", "carol", "dave", "erin"];

/// Models over a small pool of ids, so that two random models overlap.
fn arb_model() -> impl Strategy<Value = Model> {
    (
        prop::sample::select(vec!["1", "2"]),
        prop::collection::vec((any::<bool>(), 0u8..3, 0u8..4, 0u8..3), IDS.len()),
    )
        .prop_map(|(csi, rows)| {
            let mut m = Model::empty(Tenancy {
                name: "t".into(),
                csi: csi.into(),
                home_region: None,
                admin: "admin".into(),
            });
            for (i, (present, email, grant, variant)) in rows.into_iter().enumerate() {
                let id = IDS[i].to_string();
                if !present && i > 0 {
                    continue;
                }
                m.users.insert(
                    id.clone(),
                    User {
                        email: format!("{id}{email}@x.example"),
                        name: (variant == 1).then(|| format!("{id} name")),
                    },
                );
                if i == 0 || grant >= 1 {
                    m.support_accounts.insert(
                        id.clone(),
                        SupportAccount {
                            phone: format!("+1 {variant}"),
                            timezone: "UTC".into(),
                        },
                    );
                }
                if i == 0 {
                    continue;
                }
                match grant {
                    1 => {
                        m.memberships.insert(id.clone());
                    }
                    2 => {
                        m.memberships.insert(id.clone());
                        m.approvals.insert(
                            id.clone(),
                            Approval {
                                role: if variant == 2 {
                                    Role::Admin
                                } else {
                                    Role::User
                                },
                                access: [Privilege::CreateSr].into_iter().collect(),
                                approved_by: "admin".into(),
                                expires: Date::parse(if variant == 1 {
                                    "2030-01-01"
                                } else {
                                    "2031-01-01"
                                }),
                            },
                        );
                    }
                    3 => {
                        m.support_links.insert(
                            id.clone(),
                            SupportLink {
                                via: "admin".into(),
                                expires: None,
                            },
                        );
                    }
                    _ => {}
                }
            }
            m
        })
}

/// Approval depths as first defined: each approval walked to its root.
fn depths_walked_one_by_one(model: &Model) -> BTreeMap<String, usize> {
    let mut depths = BTreeMap::new();
    for id in model.approvals.keys() {
        let mut depth = 0;
        let mut current = id.as_str();
        while let Some(a) = model.approvals.get(current) {
            if a.approved_by == model.tenancy.admin || depth > model.approvals.len() {
                break;
            }
            depth += 1;
            current = &a.approved_by;
        }
        depths.insert(id.clone(), depth);
    }
    depths
}

/// A model whose approvals are `(user, approved_by)`.
fn approved(pairs: &[(&str, &str)]) -> Model {
    let mut m = Model::empty(Tenancy {
        name: "t".into(),
        csi: "1".into(),
        home_region: None,
        admin: "admin".into(),
    });
    for (user, by) in pairs {
        m.approvals.insert(
            user.to_string(),
            Approval {
                role: Role::Admin,
                access: BTreeSet::new(),
                approved_by: by.to_string(),
                expires: None,
            },
        );
    }
    m
}

#[test]
fn approval_depths_follow_chains_and_bound_loops() {
    let cases: [&[(&str, &str)]; 5] = [
        &[("a", "admin"), ("b", "a"), ("c", "b"), ("d", "b")],
        &[("d", "c"), ("c", "b"), ("b", "a"), ("a", "admin")],
        // An approver without an approval of its own ends a chain.
        &[("b", "a"), ("c", "b"), ("e", "nobody")],
        // Loops, and chains that run into one.
        &[
            ("a", "b"),
            ("b", "a"),
            ("c", "a"),
            ("d", "admin"),
            ("e", "e"),
        ],
        &[("x", "y"), ("y", "z"), ("z", "x"), ("w", "x"), ("v", "w")],
    ];
    for pairs in cases {
        let m = approved(pairs);
        assert_eq!(
            approval_depths(&m),
            depths_walked_one_by_one(&m),
            "{pairs:?}"
        );
    }
    // A chain of 100,000 administrators, each approved by the one before.
    let names: Vec<String> = (0..100_000).map(|i| format!("u{i:06}")).collect();
    let mut pairs = vec![(names[0].as_str(), "admin")];
    pairs.extend(names.windows(2).map(|w| (w[1].as_str(), w[0].as_str())));
    let depths = approval_depths(&approved(&pairs));
    assert_eq!(depths[&names[99_999]], 99_999);
}

/// How many resources `plan` deletes outright.
fn deletions(plan: &Plan) -> usize {
    plan.changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .count()
}

fn without_renames(mut m: Model) -> Model {
    m.renames.clear();
    m
}

proptest! {
    #[test]
    fn applying_a_plan_reaches_the_desired_model(a in arb_model(), b in arb_model()) {
        let plan = plan(&b, Some(&a));
        let reached = apply_to(Some(&a), &plan).map(without_renames);
        prop_assert_eq!(reached, Some(without_renames(b.clone())));
        let from_nothing = apply_to(None, &super::plan(&b, None)).map(without_renames);
        prop_assert_eq!(from_nothing, Some(without_renames(b)));
    }

    #[test]
    fn a_model_plans_to_nothing_against_itself(a in arb_model()) {
        prop_assert!(plan(&a, Some(&a)).is_empty());
    }

    #[test]
    fn plans_are_deterministic(a in arb_model(), b in arb_model()) {
        prop_assert_eq!(plan(&b, Some(&a)), plan(&b, Some(&a)));
    }

    #[test]
    fn a_rename_moves_without_deleting(a in arb_model()) {
        let mut b = a.clone();
        let old = "alice";
        prop_assume!(b.users.contains_key(old));
        rename_user(&mut b, old, "alicia");
        b.renames.insert("alicia".into(), old.into());
        let plan = plan(&b, Some(&a));
        prop_assert_eq!(plan.summary().destroy, 0);
        prop_assert_eq!(plan.changes.len(), 1);
        prop_assert_eq!(apply_to(Some(&a), &plan).map(without_renames), Some(without_renames(b)));
    }
}

#[test]
fn a_csi_change_replaces_every_grant_and_deletes_nothing() {
    let mut a = Model {
        tenancy: Tenancy {
            name: "t".into(),
            csi: "1".into(),
            home_region: None,
            admin: "admin".into(),
        },
        users: BTreeMap::new(),
        support_accounts: BTreeMap::new(),
        memberships: ["alice".to_string()].into_iter().collect(),
        approvals: BTreeMap::new(),
        support_links: BTreeMap::new(),
        renames: BTreeMap::new(),
    };
    a.support_links.insert(
        "bob".into(),
        SupportLink {
            via: "admin".into(),
            expires: None,
        },
    );
    let mut b = a.clone();
    b.tenancy.csi = "2".into();
    let plan = plan(&b, Some(&a));
    let actions: Vec<_> = plan
        .changes
        .iter()
        .map(|c| (c.address(), c.action))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("tenancy.t".to_string(), Action::Update),
            ("membership.alice".to_string(), Action::Replace),
            ("support_link.bob".to_string(), Action::Replace),
        ]
    );
    assert_eq!(deletions(&plan), 0);
}

/// Models with every kind of grant: privileges, ends in the past and
/// the future, links through any administrator, approvers other than
/// the tenancy admin.
fn arb_granted_model() -> impl Strategy<Value = Model> {
    (
        arb_model(),
        prop::collection::vec((0u8..8, 0u8..4, 0u8..6, 0u8..6), IDS.len()),
    )
        .prop_map(|(mut m, tweaks)| {
            let ends = [
                None,
                Date::parse("2026-01-01"),
                Date::parse("2027-01-01"),
                Date::parse("2028-01-01"),
            ];
            let admins: Vec<String> = m
                .approvals
                .iter()
                .filter(|(_, a)| a.role == Role::Admin)
                .map(|(id, _)| id.clone())
                .chain(["admin".to_string()])
                .collect();
            for (i, (privileges, end, via, by)) in tweaks.into_iter().enumerate() {
                let id = IDS[i];
                if let Some(a) = m.approvals.get_mut(id) {
                    a.access = Privilege::ALL
                        .into_iter()
                        .enumerate()
                        .filter(|(bit, _)| privileges & (1 << bit) != 0)
                        .map(|(_, p)| p)
                        .collect();
                    if a.role == Role::Admin {
                        a.access = Privilege::ALL.into_iter().collect();
                    }
                    a.expires = ends[usize::from(end)];
                    let by = &admins[usize::from(by) % admins.len()];
                    if by != id {
                        a.approved_by = by.clone();
                    }
                }
                if let Some(l) = m.support_links.get_mut(id) {
                    l.expires = ends[usize::from(end)];
                    l.via = admins[usize::from(via) % admins.len()].clone();
                }
            }
            m
        })
}

/// Whether access `got` grants nothing that `limit` does not.
fn no_wider(got: &crate::access::Access, limit: &crate::access::Access) -> bool {
    let ends_no_later = match (got.until, limit.until) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(g), Some(l)) => g <= l,
    };
    (!got.can_open_sr || (limit.can_open_sr && got.acts_as == limit.acts_as && ends_no_later))
        && (!got.sees_all_csi_srs || limit.sees_all_csi_srs)
        && (!got.visible_in_mos || limit.visible_in_mos)
}

proptest! {
    /// `check_model` applies the config's rules to a model: a valid
    /// model written back as raw entries checks to itself, cleanly.
    #[test]
    fn a_model_written_back_as_raw_entries_checks_to_itself(mut m in arb_model()) {
        // An administrator holds every privilege, as a checked model says.
        for a in m.approvals.values_mut().filter(|a| a.role == Role::Admin) {
            a.access = Privilege::ALL.into_iter().collect();
        }
        let today = Date::parse("2026-06-01").unwrap();
        let raw = crate::config::raw_of(&m);
        let (model, findings) = crate::check::check(raw, today);
        prop_assert!(
            findings.iter().all(|d| !d.is_error()),
            "{:?}",
            findings
        );
        prop_assert_eq!(model, Some(m));
    }

    /// And a model that breaks a rule is caught.
    #[test]
    fn check_model_finds_a_linked_user_approved(m in arb_model()) {
        let today = Date::parse("2026-06-01").unwrap();
        let mut broken = m.clone();
        let Some(linked) = broken.support_links.keys().next().cloned() else {
            return Ok(());
        };
        broken.support_accounts.insert(linked.clone(), SupportAccount { phone: "+1".into(), timezone: "UTC".into() });
        broken.memberships.insert(linked.clone());
        broken.approvals.insert(linked, Approval {
            role: Role::User,
            access: BTreeSet::new(),
            approved_by: "admin".into(),
            expires: None,
        });
        let findings = crate::check::check_model(&broken, today);
        prop_assert!(findings.iter().any(|d| d.rule == crate::diag::Rule::LinkedUserApproved));
    }
}

proptest! {
    /// The law of the guard: whatever it holds back, every user ends
    /// with no more access than the config gives and than they had.
    #[test]
    fn the_guard_never_holds_back_a_revocation(
        a in arb_granted_model(),
        b in arb_granted_model(),
        day in prop::sample::select(vec!["2025-06-01", "2026-06-01", "2027-06-01"]),
    ) {
        let today = Date::parse(day).unwrap();
        let full = plan(&b, Some(&a));
        // Always refused, whatever the counts, to test the cut itself.
        let cut = Plan {
            tenancy: full.tenancy.clone(),
            changes: full.changes.iter().filter_map(revocation).collect(),
        };
        let after = apply_to(Some(&a), &cut).expect("the revocations apply to the state");
        for user in after.users.keys() {
            let got = crate::access::resolve(&after, user, today).unwrap();
            let had = crate::access::resolve(&a, user, today).unwrap();
            prop_assert!(no_wider(&got, &had), "{user} gained access: {got:?} from {had:?}");
            match crate::access::resolve(&b, user, today) {
                Ok(wanted) => prop_assert!(
                    no_wider(&got, &wanted),
                    "{user} keeps access the config took away: {got:?}, wanted {wanted:?}"
                ),
                Err(_) => prop_assert!(!got.can_open_sr && !got.sees_all_csi_srs,
                    "{user} is gone from the config but keeps access: {got:?}"),
            }
        }
        // What is already only a revocation passes whole, and the guard
        // passes a plan it does not refuse whole.
        for change in &full.changes {
            if is_revocation(change) {
                prop_assert!(cut.changes.contains(change));
            }
        }
        let guarded = guard(&full, Some(&a), today, false);
        match guarded.refused {
            Some(m) if m.held > 0 => prop_assert_eq!(&*guarded.plan, &cut),
            _ => prop_assert_eq!(&*guarded.plan, &full),
        }
    }
}

#[test]
fn expired_grants_are_neither_deletions_nor_resources_for_the_guard() {
    // The example: six links ending at the same midnight among 17
    // resources, then one more link removed from the file.
    let mut actual = Model::empty(Tenancy {
        name: "t".into(),
        csi: "1".into(),
        home_region: None,
        admin: "admin".into(),
    });
    let user = |id: &str| User {
        email: format!("{id}@x.example"),
        name: None,
    };
    actual.users.insert("admin".into(), user("admin"));
    actual.support_accounts.insert(
        "admin".into(),
        SupportAccount {
            phone: "+1".into(),
            timezone: "UTC".into(),
        },
    );
    for i in 0..7 {
        let id = format!("l{i}");
        actual.users.insert(id.clone(), user(&id));
        actual.support_links.insert(
            id,
            SupportLink {
                via: "admin".into(),
                expires: if i < 6 {
                    Date::parse("2027-01-01")
                } else {
                    None
                },
            },
        );
    }
    assert_eq!(
        resource_count(&actual, Date::parse("2026-12-31").unwrap()),
        17
    );
    let today = Date::parse("2027-01-01").unwrap();
    assert_eq!(resource_count(&actual, today), 11);
    // The config no longer holds the expired links, nor l6's.
    let mut desired = actual.clone();
    desired.support_links.clear();
    let full = plan(&desired, Some(&actual));
    assert_eq!(deletions(&full), 7);
    assert_eq!(mass_delete(&full, Some(&actual), today), None);
    let guarded = guard(&full, Some(&actual), today, false);
    assert_eq!((&*guarded.plan, guarded.refused), (&full, None));
    // The day before they end, the same plan deletes 7 of 17.
    let before = Date::parse("2026-12-31").unwrap();
    let m = mass_delete(&plan(&desired, Some(&actual)), Some(&actual), before).unwrap();
    assert_eq!((m.deletes, m.existing, m.held), (7, 17, 0));
    // ... and still lands whole, since each deletion is a revocation.
    let full = plan(&desired, Some(&actual));
    let guarded = guard(&full, Some(&actual), before, false);
    assert_eq!(guarded.plan.changes.len(), 7);
}

#[test]
fn a_refused_plan_keeps_its_revocations_and_holds_the_rest() {
    let mut actual = Model::empty(Tenancy {
        name: "t".into(),
        csi: "1".into(),
        home_region: None,
        admin: "admin".into(),
    });
    for i in 0..10 {
        let id = format!("u{i}");
        actual.users.insert(
            id.clone(),
            User {
                email: format!("{id}@x.example"),
                name: None,
            },
        );
        actual.support_accounts.insert(
            id.clone(),
            SupportAccount {
                phone: "+1".into(),
                timezone: "UTC".into(),
            },
        );
        actual.memberships.insert(id.clone());
        actual.approvals.insert(
            id,
            Approval {
                role: Role::User,
                access: Privilege::ALL.into_iter().collect(),
                approved_by: "admin".into(),
                expires: None,
            },
        );
    }
    actual.users.insert(
        "admin".into(),
        User {
            email: "admin@x.example".into(),
            name: None,
        },
    );
    // A config that lost its users file: only the tenancy admin is left.
    let mut desired = Model::empty(actual.tenancy.clone());
    desired
        .users
        .insert("admin".into(), actual.users["admin"].clone());
    let today = Date::parse("2026-06-01").unwrap();
    let full = plan(&desired, Some(&actual));
    let guarded = guard(&full, Some(&actual), today, false);
    let refused = guarded
        .refused
        .expect("40 of 42 resources is a mass deletion");
    assert_eq!(
        refused.held, 30,
        "users, accounts and memberships are held back"
    );
    assert!(
        guarded
            .plan
            .changes
            .iter()
            .all(|c| c.kind == Kind::Approval && c.action == Action::Delete)
    );
    assert_eq!(guarded.plan.changes.len(), 10);
    let after = apply_to(Some(&actual), &guarded.plan).unwrap();
    assert_eq!(after.users.len(), 11, "nobody is deleted");
    assert!(
        after.approvals.is_empty(),
        "nobody keeps an approval the config took away"
    );
    // Allowed, the whole plan goes.
    let allowed = guard(&full, Some(&actual), today, true);
    assert_eq!((&*allowed.plan, allowed.refused), (&full, None));
}

#[test]
fn the_guard_weighs_deletions_against_what_exists() {
    let plan_of = |n: usize| Plan {
        tenancy: "t".into(),
        changes: (0..n)
            .map(|i| Change {
                kind: Kind::User,
                id: format!("u{i}"),
                action: Action::Delete,
                reason: None,
                renamed_from: None,
                before: None,
                after: None,
            })
            .collect(),
    };
    let mut actual = arb_model()
        .new_tree(&mut proptest::test_runner::TestRunner::deterministic())
        .unwrap()
        .current();
    for i in 0..30 {
        actual.users.insert(
            format!("u{i}"),
            User {
                email: format!("u{i}@x.example"),
                name: None,
            },
        );
    }
    let today = Date::parse("2026-01-01").unwrap();
    let existing = resource_count(&actual, today);
    assert!(
        mass_delete(&plan_of(5), Some(&actual), today).is_none(),
        "5 deletes never trip the guard"
    );
    let over = existing / 4 + 1;
    assert_eq!(
        mass_delete(&plan_of(over), Some(&actual), today),
        Some(MassDelete {
            deletes: over,
            existing,
            held: over,
        })
    );
    assert!(mass_delete(&plan_of(existing / 4), Some(&actual), today).is_none());
}
