//! The rules on config sets written in YAML, as `validate` checks them.

use super::*;
use crate::diag::Rule;

/// Checks one file of YAML on 2026-11-24, as `validate` would.
fn checked(yaml: &str) -> (Option<Model>, Vec<Diagnostic>) {
    let (loaded, mut diagnostics) = crate::config::load_files([("a.yaml", yaml.as_bytes())]);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let (model, found) = check(loaded.raw, Date::parse("2026-11-24").unwrap());
    diagnostics.extend(found);
    (model, diagnostics)
}

fn of(diagnostics: &[Diagnostic], rule: Rule) -> Vec<&Diagnostic> {
    diagnostics.iter().filter(|d| d.rule == rule).collect()
}

/// A tenancy of `dankim` (named "Dan Kim"), with `erin` its second
/// administrator, then `more` YAML under it (users first).
fn tenancy(users: &str, rest: &str) -> String {
    format!(
        "tenancy: {{ name: t, csi: \"1\", admin: dankim }}\nusers:\n  dankim: {{ email: dan.kim@acme.example, name: Dan Kim, support_account: {{ phone: \"1\", timezone: UTC }} }}\n  erin: {{ email: Erin.Lee@acme.example, name: Erin Lee, support_account: {{ phone: \"2\", timezone: UTC }} }}\n{users}memberships:\n  - user: erin\napprovals:\n  - user: erin\n    role: admin\n{rest}"
    )
}

#[test]
fn a_reference_by_email_or_name_is_pointed_at_the_id() {
    for (written, id, how) in [
        ("dan.kim@acme.example", "dankim", "email"),
        ("DAN.KIM@ACME.EXAMPLE", "dankim", "email"),
        ("dan.kim", "dankim", "email's start"),
        ("Dan Kim", "dankim", "display name"),
        ("erin lee", "erin", "display name"),
        ("erin.lee@acme.example", "erin", "email"),
    ] {
        for rest in [
            format!("support_links:\n  - user: bob\n    via: \"{written}\"\n"),
            format!(
                "  - user: carl\n    role: user\n    access: [create_sr]\n    approved_by: \"{written}\"\n"
            ),
        ] {
            let users = "  bob: { email: bob@acme.example }\n  carl: { email: carl@acme.example, support_account: { phone: \"3\", timezone: UTC } }\n";
            let yaml = if rest.starts_with("support_links") {
                tenancy(users, &rest)
            } else {
                tenancy(users, &rest).replace(
                    "  - user: erin\napprovals",
                    "  - user: erin\n  - user: carl\napprovals",
                )
            };
            let (_, found) = checked(&yaml);
            let unknown = of(&found, Rule::UnknownUser);
            assert_eq!(unknown.len(), 1, "{written}: {found:?}");
            let hint = unknown[0].hint.as_deref().unwrap_or_default();
            assert!(
                hint.starts_with(&format!("did you mean `{id}`? `{written}` is its {how}")),
                "{written}: {hint}"
            );
        }
    }
}

#[test]
fn a_reference_like_no_id_names_the_closest_and_how_to_declare_it() {
    let yaml = tenancy("", "support_links:\n  - user: dankim\n").replace(
        "memberships:\n  - user: erin",
        "memberships:\n  - user: erin\n  - user: zed",
    );
    let (_, found) = checked(&yaml);
    let unknown = of(&found, Rule::UnknownUser);
    assert_eq!(unknown.len(), 1, "{found:?}");
    let hint = unknown[0].hint.as_deref().unwrap_or_default();
    assert!(hint.contains("the closest is `"), "{hint}");
    assert!(
        hint.contains("declare it under `users:` as `zed: { email: … }`"),
        "{hint}"
    );
    // A likely typo is only that.
    let yaml = tenancy("", "").replace("  - user: erin\napprovals", "  - user: erni\napprovals");
    let (_, found) = checked(&yaml);
    let unknown = of(&found, Rule::UnknownUser);
    assert_eq!(unknown[0].hint.as_deref(), Some("did you mean `erin`?"));
    // So is the tenancy admin's.
    let yaml = tenancy("", "").replace("admin: dankim }", "admin: Dan Kim }");
    let (_, found) = checked(&yaml);
    let hint = of(&found, Rule::AdminNotDeclared)[0]
        .hint
        .clone()
        .unwrap_or_default();
    assert!(hint.starts_with("did you mean `dankim`?"), "{hint}");
}

#[test]
fn an_approval_missing_both_steps_names_both() {
    let users = "  carol: { email: carol@acme.example }\n  alice: { email: alice@acme.example, support_account: { phone: \"3\", timezone: UTC } }\n";
    let rest = "  - user: carol\n    role: user\n    access: [create_sr]\n  - user: alice\n    role: user\n    access: [create_sr]\n";
    let (_, found) = checked(&tenancy(users, rest));
    let missing = of(&found, Rule::ApprovalWithoutMembership);
    assert_eq!(missing.len(), 2, "{found:?}");
    let carol = missing[0].hint.as_deref().unwrap_or_default();
    assert_eq!(
        carol,
        "add `support_account` to the user `carol`, and `- user: carol` under `memberships:`"
    );
    assert!(missing[0].message.contains("nor the support account"));
    assert_eq!(
        missing[1].hint.as_deref(),
        Some("add `- user: alice` under `memberships:`")
    );
    // Each step, taken as the hint says, leaves no finding about it.
    let fixed = tenancy(
        "  carol: { email: carol@acme.example, support_account: { phone: \"4\", timezone: UTC } }\n  alice: { email: alice@acme.example, support_account: { phone: \"3\", timezone: UTC } }\n",
        rest,
    )
    .replace("  - user: erin\napprovals", "  - user: erin\n  - user: carol\n  - user: alice\napprovals");
    let (model, found) = checked(&fixed);
    assert!(model.is_some() && found.is_empty(), "{found:?}");
}

#[test]
fn a_link_through_a_non_administrator_names_the_administrators() {
    for admins in [0usize, 1, 5, 8] {
        let mut users = String::from(
            "  bob: { email: bob@acme.example }\n  al: { email: al@acme.example, support_account: { phone: \"9\", timezone: UTC } }\n",
        );
        let mut members = String::from("  - user: al\n");
        let mut approvals = String::from("  - user: al\n    role: user\n    access: [create_sr]\n");
        for i in 0..admins {
            users.push_str(&format!("  adm{i}: {{ email: adm{i}@acme.example, support_account: {{ phone: \"{i}\", timezone: UTC }} }}\n"));
            members.push_str(&format!("  - user: adm{i}\n"));
            approvals.push_str(&format!("  - user: adm{i}\n    role: admin\n"));
        }
        let yaml = format!(
            "tenancy: {{ name: t, csi: \"1\", admin: dankim }}\nusers:\n  dankim: {{ email: d@acme.example, support_account: {{ phone: \"1\", timezone: UTC }} }}\n{users}memberships:\n{members}approvals:\n{approvals}support_links:\n  - user: bob\n    via: al\n"
        );
        let (_, found) = checked(&yaml);
        let via = of(&found, Rule::LinkInactive);
        assert_eq!(via.len(), 1, "{found:?}");
        let hint = via[0].hint.as_deref().unwrap_or_default();
        assert!(hint.contains("the tenancy admin `dankim`"), "{hint}");
        for i in 0..admins.min(5) {
            assert!(hint.contains(&format!("`adm{i}`")), "{admins}: {hint}");
        }
        if admins > 5 {
            assert!(
                hint.ends_with(&format!("and {} more", admins - 5)),
                "{hint}"
            );
            assert!(!hint.contains("`adm5`"), "{hint}");
        }
        if admins == 0 {
            assert!(hint.starts_with("the only CSI administrator"), "{hint}");
        }
    }
}

/// Days in a month of the Gregorian calendar, worked out here rather
/// than asked of the date library the check uses.
fn days_in(year: i32, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[test]
fn an_impossible_date_is_called_impossible_with_its_month_s_last_day() {
    let months = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    for year in [2027, 2028, 2100, 2400] {
        for month in 1..=12u32 {
            let last = days_in(year, month);
            let real = format!("{year}-{month:02}-{last:02}");
            assert!(Date::parse(&real).is_some(), "{real}");
            assert_eq!(Date::impossible(&real), None);
            for day in [last + 1, 31, 0] {
                let written = format!("{year}-{month:02}-{day:02}");
                if day != 0 && day <= last {
                    continue;
                }
                let why = Date::impossible(&written).unwrap_or_default();
                let expected = if day == 0 {
                    "there is no day 0".to_string()
                } else {
                    format!("{} {year} has {last} days", months[month as usize - 1])
                };
                assert_eq!(why, expected, "{written}");
                assert_eq!(
                    Date::last_of_month(&written).map(|d| d.to_string()),
                    Some(real.clone())
                );
            }
        }
        for month in [0, 13, 99] {
            let written = format!("{year}-{month:02}-01");
            assert_eq!(
                Date::impossible(&written),
                Some(format!("there is no month {month}"))
            );
        }
    }
    // Not written YYYY-MM-DD: not impossible, only wrong.
    for written in ["2027-2-3", "27-02-03", "2027/02/03", "tomorrow", ""] {
        assert_eq!(Date::impossible(written), None, "{written}");
    }
    let (_, found) = checked(&tenancy("", "    expires: 2030-02-30\n"));
    let invalid = of(&found, Rule::InvalidDate);
    assert_eq!(
        invalid[0].message,
        "`2030-02-30` is an impossible date: February 2030 has 28 days"
    );
    assert_eq!(
        invalid[0].hint.as_deref(),
        Some("the last day of that month is 2030-02-28")
    );
}

#[test]
fn an_approval_that_grants_nothing_is_warned_about() {
    for (role, access, warned) in [
        ("user", None, true),
        ("user", Some("[]"), true),
        ("user", Some("[download]"), false),
        ("admin", None, false),
        ("admin", Some("[]"), false),
    ] {
        let users =
            "  al: { email: al@acme.example, support_account: { phone: \"3\", timezone: UTC } }\n";
        let mut rest = format!("  - user: al\n    role: {role}\n");
        if let Some(access) = access {
            rest.push_str(&format!("    access: {access}\n"));
        }
        let yaml = tenancy(users, &rest).replace(
            "  - user: erin\napprovals",
            "  - user: erin\n  - user: al\napprovals",
        );
        let (model, found) = checked(&yaml);
        assert_eq!(
            of(&found, Rule::ApprovalWithoutAccess).len(),
            usize::from(warned),
            "{role} {access:?}: {found:?}"
        );
        // A warning: the model is still made.
        assert!(model.is_some(), "{found:?}");
    }
}

#[test]
fn a_time_zone_in_any_case_is_stored_as_the_database_spells_it() {
    let names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_owned())
        .collect();
    assert!(names.len() > 300);
    let mut users = String::new();
    for (i, name) in names.iter().enumerate() {
        // Every other letter's case turned, and some all lower or upper.
        let written: String = match i % 3 {
            0 => name.to_lowercase(),
            1 => name.to_uppercase(),
            _ => name
                .chars()
                .enumerate()
                .map(|(j, c)| {
                    if j % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect(),
        };
        users.push_str(&format!(
            "  z{i}: {{ email: z{i}@acme.example, support_account: {{ phone: \"1\", timezone: \"{written}\" }} }}\n"
        ));
    }
    let (model, found) = checked(&tenancy(&users, ""));
    assert!(found.is_empty(), "{:?}", &found[..found.len().min(3)]);
    let model = model.expect("a model");
    for (i, name) in names.iter().enumerate() {
        let zone = &model.support_accounts[&format!("z{i}")].timezone;
        let expected = jiff::tz::db()
            .get(name)
            .ok()
            .and_then(|z| z.iana_name().map(str::to_owned))
            .unwrap_or_else(|| name.clone());
        assert_eq!(zone, &expected, "{name}");
    }
}

#[test]
fn a_phone_must_show_something_and_not_be_the_redaction_marker() {
    let invisible = [
        '\u{200B}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{3164}', '\u{00A0}', ' ', '\u{202E}',
        '\u{2800}',
    ];
    // Every phone of one to four invisible characters is refused; one
    // visible character among them makes it a phone.
    let mut phones: Vec<(String, bool)> = Vec::new();
    for a in invisible {
        for b in invisible {
            phones.push((format!("{a}{b}"), false));
            phones.push((format!("{a}{b}{a}{b}"), false));
            phones.push((format!("{a}5{b}"), true));
        }
    }
    phones.push((String::new(), false));
    for (phone, is_phone) in phones {
        let users = format!(
            "  al: {{ email: al@acme.example, support_account: {{ phone: {}, timezone: UTC }} }}\n",
            serde_json::to_string(&phone).unwrap()
        );
        let (_, found) = checked(&tenancy(&users, ""));
        assert_eq!(
            of(&found, Rule::EmptyPhone).is_empty(),
            is_phone,
            "{phone:?}: {found:?}"
        );
    }
    for marker in ["(redacted)", "(redacted, changed)", " (redacted) "] {
        let users = format!(
            "  al: {{ email: al@acme.example, support_account: {{ phone: \"{marker}\", timezone: UTC }} }}\n"
        );
        let (model, found) = checked(&tenancy(&users, ""));
        assert_eq!(
            of(&found, Rule::RedactedPhone).len(),
            1,
            "{marker}: {found:?}"
        );
        assert!(model.is_none());
    }
    // A number that merely mentions it is a phone.
    let users = "  al: { email: al@acme.example, support_account: { phone: \"+1 555 0100 (redacted on request)\", timezone: UTC } }\n";
    let (_, found) = checked(&tenancy(users, ""));
    assert!(found.is_empty(), "{found:?}");
}

proptest::proptest! {
    /// Each privilege listed again is one warning, at the repeat,
    /// naming where it was first listed; a list of distinct ones none.
    #[test]
    fn every_repeat_in_access_is_warned_about_at_the_repeat(
        picks in proptest::collection::vec(0usize..3, 1..8),
    ) {
        let names = ["create_sr", "view_sr", "download"];
        let listed: Vec<&str> = picks.iter().map(|&p| names[p]).collect();
        let users = "  al: { email: al@acme.example, support_account: { phone: \"3\", timezone: UTC } }\n";
        let rest = format!("  - user: al\n    role: user\n    access: [{}]\n", listed.join(", "));
        let yaml = tenancy(users, &rest)
            .replace("  - user: erin\napprovals", "  - user: erin\n  - user: al\napprovals");
        let (_, found) = checked(&yaml);
        let repeats = of(&found, Rule::DuplicateAccess);
        let distinct: std::collections::BTreeSet<_> = listed.iter().collect();
        proptest::prop_assert_eq!(repeats.len(), listed.len() - distinct.len());
        let line = yaml.lines().position(|l| l.starts_with("    access:")).unwrap() as u32 + 1;
        for d in repeats {
            let place = d.location.unwrap();
            proptest::prop_assert_eq!(place.line, line);
            let related = d.related[0].location;
            proptest::prop_assert!(related.column < place.column);
        }
    }
}
