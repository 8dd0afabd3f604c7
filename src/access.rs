//! Access resolution: how a user reaches Oracle Support, as whom, and why.
//!
//! A pure function of a tenancy's model and a day: the access matrix of docs/DOMAIN.md §4,
//! row by row. The rule the product exists for lives here — a linked user
//! acts through the CSI administrator: the administrator owns the SR and is
//! mailed, and the linked user reads it in the Console only. Grants past
//! their `expires` day count as absent, and so does a link through someone
//! who is no longer a CSI administrator.

use crate::model::{Date, Model, Person, Privilege, Role, SupportLink};

/// Which row of the access matrix a user is on.
///
/// Every way a grant can be absent has its own path, so an audit never
/// explains an expired grant as one never given: an approval past its
/// `expires` is [`Path::ApprovalExpired`], not [`Path::Pending`]; a link past
/// its own `expires`, or through an administrator whose admin approval has
/// expired, is [`Path::LinkExpired`]; a link through someone who is no CSI
/// administrator at all is [`Path::LinkViaNonAdmin`]. [`Path::Pending`],
/// [`Path::NotAssociated`] and [`Path::NoAccess`] mean the state holds no
/// approval and no link for the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The Cloud Account Admin: a CSI administrator by definition.
    TenancyAdmin,
    /// Approved with role `admin`.
    ApprovedAdmin,
    /// Approved with role `user`, with `create_sr`.
    ApprovedUser,
    /// Approved with role `user`, without `create_sr`.
    ApprovedWithoutCreate,
    /// An approval the state still holds, past its `expires` day.
    ApprovalExpired,
    /// Membership requested, and no approval at all.
    Pending,
    /// A support account, but no membership request.
    NotAssociated,
    /// Linked through a CSI administrator.
    Linked,
    /// A link the state still holds that has ended: its own `expires` day,
    /// or that of the admin approval of the administrator it goes through,
    /// has begun.
    LinkExpired,
    /// A link through someone who is not a CSI administrator (any more): it
    /// grants nothing until it goes through a current administrator.
    LinkViaNonAdmin,
    /// No support account, no approval, no link.
    NoAccess,
}

impl Path {
    /// Every path, in the order of the access matrix.
    pub const ALL: [Path; 11] = [
        Path::TenancyAdmin,
        Path::ApprovedAdmin,
        Path::ApprovedUser,
        Path::ApprovedWithoutCreate,
        Path::ApprovalExpired,
        Path::Pending,
        Path::NotAssociated,
        Path::Linked,
        Path::LinkExpired,
        Path::LinkViaNonAdmin,
        Path::NoAccess,
    ];

    /// The name printed in `access` JSON and CSV (stable: scripts match on it).
    pub fn as_str(self) -> &'static str {
        match self {
            Path::TenancyAdmin => "tenancy-admin",
            Path::ApprovedAdmin => "approved-admin",
            Path::ApprovedUser => "approved-user",
            Path::ApprovedWithoutCreate => "approved-without-create",
            Path::ApprovalExpired => "approval-expired",
            Path::Pending => "pending",
            Path::NotAssociated => "not-associated",
            Path::Linked => "linked",
            Path::LinkExpired => "link-expired",
            Path::LinkViaNonAdmin => "link-via-non-admin",
            Path::NoAccess => "none",
        }
    }

    /// Whether a user on this path can open SRs.
    pub fn opens_srs(self) -> bool {
        matches!(
            self,
            Path::TenancyAdmin | Path::ApprovedAdmin | Path::ApprovedUser | Path::Linked
        )
    }
}

/// How one user reaches support on a given day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub user: String,
    pub path: Path,
    pub can_open_sr: bool,
    /// The owner of an SR the user opens: the user, or the administrator it
    /// is linked through. `None` when the user cannot open SRs.
    pub acts_as: Option<String>,
    /// The address SR mail goes to.
    pub notified: Option<String>,
    /// Whether the user reads SRs in My Oracle Support (its own, or all of
    /// the CSI's with `view_sr`).
    pub visible_in_mos: bool,
    /// Whether the user reads the SRs it opened in the Console support centre.
    pub visible_in_console: bool,
    /// Whether the user sees every SR of the CSI in MOS.
    pub sees_all_csi_srs: bool,
    /// The administrator the user acts through (linked users).
    pub via: Option<String>,
    /// The day the grant ends, at its start (00:00 UTC), if it does: the
    /// earliest `expires` on the user's path — an approval's own; a link's
    /// own and that of the admin approval of the administrator it goes
    /// through.
    pub until: Option<Date>,
    /// Which expiry `until` is, in words ("the support link expires").
    pub until_cause: Option<String>,
    pub reason: String,
}

/// Why an access question cannot be answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("`{0}` is not a user of the tenancy")]
    UnknownUser(String),
}

/// Whether `user` is a CSI administrator on `today`: the tenancy admin, or
/// approved with role `admin` by an approval that has not expired.
pub fn is_active_admin(model: &Model, user: &str, today: Date) -> bool {
    user == model.tenancy.admin
        || model
            .approvals
            .get(user)
            .is_some_and(|a| a.role == Role::Admin && a.is_active(today))
}

/// One expiry on a user's path, and what it is.
struct End {
    day: Date,
    cause: String,
}

/// The expiries on the path of a link through `via`: the link's own, and
/// the admin approval of `via` unless `via` is the tenancy admin (who needs
/// none). The earliest one ends the path.
fn link_ends(model: &Model, link: &SupportLink) -> Vec<End> {
    let via = &link.via;
    let mut ends = Vec::new();
    if let Some(day) = link.expires {
        ends.push(End {
            day,
            cause: format!("the support link through `{via}` expires"),
        });
    }
    if *via != model.tenancy.admin
        && let Some(day) = model
            .approvals
            .get(via)
            .filter(|a| a.role == Role::Admin)
            .and_then(|a| a.expires)
    {
        ends.push(End {
            day,
            cause: format!("`{via}`'s approval as a CSI administrator expires"),
        });
    }
    ends
}

fn earliest(ends: Vec<End>) -> Option<End> {
    ends.into_iter().min_by_key(|e| e.day)
}

/// Resolves how `user` reaches support on `today` (docs/DOMAIN.md §4, the access matrix).
///
/// Long on purpose: the access matrix is one decision, read top to bottom
/// in the order of docs/DOMAIN.md §4; in pieces it would hide which case
/// wins.
pub fn resolve(model: &Model, user: &str, today: Date) -> Result<Access, AccessError> {
    let Some(u) = model.users.get(user) else {
        return Err(AccessError::UnknownUser(user.to_string()));
    };
    let own = |path: Path, reason: String, until: Option<Date>| Access {
        user: user.to_string(),
        path,
        can_open_sr: true,
        acts_as: Some(user.to_string()),
        notified: Some(u.email.clone()),
        visible_in_mos: true,
        visible_in_console: true,
        sees_all_csi_srs: true,
        via: None,
        until,
        until_cause: until.map(|_| "the approval expires".to_string()),
        reason,
    };
    let refused = |path: Path, reason: String| Access {
        user: user.to_string(),
        path,
        can_open_sr: false,
        acts_as: None,
        notified: None,
        visible_in_mos: false,
        visible_in_console: false,
        sees_all_csi_srs: false,
        via: None,
        until: None,
        until_cause: None,
        reason,
    };

    if user == model.tenancy.admin {
        return Ok(own(
            Path::TenancyAdmin,
            "the tenancy admin is the CSI administrator".to_string(),
            None,
        ));
    }
    let approval = model.approvals.get(user);
    if let Some(a) = approval.filter(|a| a.is_active(today)) {
        let by = &a.approved_by;
        return Ok(match a.role {
            Role::Admin => own(
                Path::ApprovedAdmin,
                format!("approved as a CSI administrator by `{by}`"),
                a.expires,
            ),
            Role::User if a.access.contains(&Privilege::CreateSr) => {
                let mut access = own(
                    Path::ApprovedUser,
                    format!("approved with create access by `{by}`"),
                    a.expires,
                );
                access.sees_all_csi_srs = a.access.contains(&Privilege::ViewSr);
                access
            }
            Role::User => {
                let view = a.access.contains(&Privilege::ViewSr);
                let mut access = refused(
                    Path::ApprovedWithoutCreate,
                    "no create access: the approval does not grant `create_sr`".to_string(),
                );
                access.visible_in_mos = view;
                access.sees_all_csi_srs = view;
                access.until = a.expires;
                access.until_cause = a.expires.map(|_| "the approval expires".to_string());
                access
            }
        });
    }
    let link = model.support_links.get(user);
    if let Some(link) = link {
        let via = &link.via;
        let end = earliest(link_ends(model, link));
        let ended = end.as_ref().is_some_and(|e| e.day <= today);
        if !ended
            && is_active_admin(model, via, today)
            && let Some(admin) = model.users.get(via)
        {
            // The rule: the administrator owns the SR and gets its mail; the
            // linked user has no MOS account and reads it in the Console.
            return Ok(Access {
                user: user.to_string(),
                path: Path::Linked,
                can_open_sr: true,
                acts_as: Some(via.clone()),
                notified: Some(admin.email.clone()),
                visible_in_mos: false,
                visible_in_console: true,
                sees_all_csi_srs: false,
                via: Some(via.clone()),
                until: end.as_ref().map(|e| e.day),
                until_cause: end.map(|e| e.cause),
                reason: format!(
                    "linked through the CSI administrator `{via}`, who owns the SRs and is mailed"
                ),
            });
        }
    }
    // Nothing grants access now. Say why, naming what the state still
    // holds: an expired approval before an expired or dangling link, and
    // either before a bare membership, account or nothing.
    if let Some(a) = approval {
        let expired = a.expires.map_or_else(String::new, |d| d.start_text());
        let what = match a.role {
            Role::Admin => "approval as a CSI administrator",
            Role::User => "approval",
        };
        return Ok(refused(
            Path::ApprovalExpired,
            format!(
                "{what} expired on {expired} (approved by `{}`); the membership request awaits a new approval",
                a.approved_by
            ),
        ));
    }
    if let Some(link) = link {
        let via = &link.via;
        let end = earliest(link_ends(model, link)).filter(|e| e.day <= today);
        return Ok(match end {
            Some(e) if link.expires == Some(e.day) => refused(
                Path::LinkExpired,
                format!(
                    "the support link through `{via}` expired on {}",
                    e.day.start_text()
                ),
            ),
            Some(e) => refused(
                Path::LinkExpired,
                format!(
                    "linked through `{via}`, whose approval as a CSI administrator expired on {}",
                    e.day.start_text()
                ),
            ),
            // No expiry has passed, so `via` holds no admin approval at
            // all (an expired one would have ended the path above).
            None => refused(
                Path::LinkViaNonAdmin,
                format!(
                    "linked through `{via}`, who is no longer a CSI administrator: the link grants nothing until it goes through a current one"
                ),
            ),
        });
    }
    let has_account = model.support_accounts.contains_key(user);
    if has_account && model.memberships.contains(user) {
        return Ok(refused(
            Path::Pending,
            "pending approval by a CSI administrator".to_string(),
        ));
    }
    if has_account {
        return Ok(refused(
            Path::NotAssociated,
            "not associated with the CSI: no membership request".to_string(),
        ));
    }
    Ok(refused(
        Path::NoAccess,
        "no support account and no support link".to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Approval, SupportAccount, SupportLink, Tenancy, User};

    fn day(text: &str) -> Date {
        Date::parse(text).unwrap()
    }

    /// One user per row of the access matrix.
    fn tenancy() -> Model {
        let mut m = Model::empty(Tenancy {
            name: "t".into(),
            csi: "1".into(),
            home_region: None,
            admin: "dan".into(),
        });
        let ids = [
            "dan", "erin", "alice", "viewer", "blind", "carol", "solo", "bob", "gina", "old",
            "lapsed", "orphan", "nobody", "ex",
        ];
        for id in ids {
            m.users.insert(
                id.into(),
                User {
                    email: format!("{id}@x.example"),
                    name: None,
                },
            );
        }
        for id in [
            "dan", "erin", "alice", "viewer", "blind", "carol", "solo", "old", "ex",
        ] {
            m.support_accounts.insert(
                id.into(),
                SupportAccount {
                    phone: "1".into(),
                    timezone: "UTC".into(),
                },
            );
        }
        let approve =
            |m: &mut Model, id: &str, role: Role, access: &[Privilege], expires: Option<&str>| {
                m.memberships.insert(id.into());
                m.approvals.insert(
                    id.into(),
                    Approval {
                        role,
                        access: access.iter().copied().collect(),
                        approved_by: "dan".into(),
                        expires: expires.map(day),
                    },
                );
            };
        approve(&mut m, "erin", Role::Admin, &Privilege::ALL, None);
        approve(
            &mut m,
            "alice",
            Role::User,
            &[Privilege::CreateSr, Privilege::ViewSr],
            Some("2027-01-01"),
        );
        approve(&mut m, "viewer", Role::User, &[Privilege::ViewSr], None);
        approve(&mut m, "blind", Role::User, &[Privilege::Download], None);
        approve(
            &mut m,
            "old",
            Role::User,
            &[Privilege::CreateSr],
            Some("2026-01-01"),
        );
        approve(
            &mut m,
            "ex",
            Role::Admin,
            &Privilege::ALL,
            Some("2026-01-01"),
        );
        m.memberships.insert("carol".into());
        let link = |m: &mut Model, id: &str, via: &str, expires: Option<&str>| {
            m.support_links.insert(
                id.into(),
                SupportLink {
                    via: via.into(),
                    expires: expires.map(day),
                },
            );
        };
        link(&mut m, "bob", "dan", None);
        link(&mut m, "gina", "erin", Some("2027-01-31"));
        link(&mut m, "lapsed", "dan", Some("2026-06-30"));
        link(&mut m, "orphan", "ex", None);
        m
    }

    #[test]
    fn the_access_matrix_row_by_row() {
        let m = tenancy();
        let today = day("2026-11-24");
        // user, path, can open, owner, notified, MOS, Console, reason contains
        type Row = (
            &'static str,
            Path,
            bool,
            Option<&'static str>,
            Option<&'static str>,
            bool,
            bool,
            &'static str,
        );
        let rows: [Row; 14] = [
            (
                "dan",
                Path::TenancyAdmin,
                true,
                Some("dan"),
                Some("dan@x.example"),
                true,
                true,
                "tenancy admin",
            ),
            (
                "erin",
                Path::ApprovedAdmin,
                true,
                Some("erin"),
                Some("erin@x.example"),
                true,
                true,
                "CSI administrator by `dan`",
            ),
            (
                "alice",
                Path::ApprovedUser,
                true,
                Some("alice"),
                Some("alice@x.example"),
                true,
                true,
                "create access",
            ),
            (
                "viewer",
                Path::ApprovedWithoutCreate,
                false,
                None,
                None,
                true,
                false,
                "no create access",
            ),
            (
                "blind",
                Path::ApprovedWithoutCreate,
                false,
                None,
                None,
                false,
                false,
                "no create access",
            ),
            (
                "carol",
                Path::Pending,
                false,
                None,
                None,
                false,
                false,
                "pending approval by a CSI administrator",
            ),
            (
                "solo",
                Path::NotAssociated,
                false,
                None,
                None,
                false,
                false,
                "not associated with the CSI",
            ),
            (
                "bob",
                Path::Linked,
                true,
                Some("dan"),
                Some("dan@x.example"),
                false,
                true,
                "linked through the CSI administrator `dan`",
            ),
            (
                "gina",
                Path::Linked,
                true,
                Some("erin"),
                Some("erin@x.example"),
                false,
                true,
                "`erin`",
            ),
            (
                "nobody",
                Path::NoAccess,
                false,
                None,
                None,
                false,
                false,
                "no support account and no support link",
            ),
            // Expired grants grant nothing, and say that they expired.
            (
                "old",
                Path::ApprovalExpired,
                false,
                None,
                None,
                false,
                false,
                "approval expired on 2026-01-01 00:00 UTC",
            ),
            (
                "lapsed",
                Path::LinkExpired,
                false,
                None,
                None,
                false,
                false,
                "the support link through `dan` expired on 2026-06-30 00:00 UTC",
            ),
            (
                "ex",
                Path::ApprovalExpired,
                false,
                None,
                None,
                false,
                false,
                "approval as a CSI administrator expired on 2026-01-01 00:00 UTC",
            ),
            // A link through an administrator whose approval expired is no link.
            (
                "orphan",
                Path::LinkExpired,
                false,
                None,
                None,
                false,
                false,
                "`ex`, whose approval as a CSI administrator expired on 2026-01-01 00:00 UTC",
            ),
        ];
        for (user, path, can, owner, notified, mos, console, reason) in rows {
            let a = resolve(&m, user, today).unwrap();
            assert_eq!(a.path, path, "{user}");
            assert_eq!(a.can_open_sr, can, "{user}");
            assert_eq!(a.path.opens_srs(), can, "{user}");
            assert_eq!(a.acts_as.as_deref(), owner, "{user}");
            assert_eq!(a.notified.as_deref(), notified, "{user}");
            assert_eq!(a.visible_in_mos, mos, "{user}");
            assert_eq!(a.visible_in_console, console, "{user}");
            assert!(a.reason.contains(reason), "{user}: {}", a.reason);
        }
    }

    #[test]
    fn a_linked_user_never_owns_or_is_mailed() {
        let m = tenancy();
        for day_text in ["2026-11-24", "2027-01-30", "2027-01-31"] {
            for user in m.support_links.keys() {
                let a = resolve(&m, user, day(day_text)).unwrap();
                assert_ne!(a.acts_as.as_deref(), Some(user.as_str()));
                assert!(!a.visible_in_mos, "{user} reads nothing in MOS");
            }
        }
        // The day a link expires, it grants nothing.
        assert!(!resolve(&m, "gina", day("2027-01-31")).unwrap().can_open_sr);
    }

    #[test]
    fn an_unknown_user_is_an_error() {
        assert_eq!(
            resolve(&tenancy(), "zed", day("2026-11-24")),
            Err(AccessError::UnknownUser("zed".into()))
        );
        assert_eq!(
            AccessError::UnknownUser("zed".into()).to_string(),
            "`zed` is not a user of the tenancy"
        );
    }

    /// A tenancy of `dan` (the tenancy admin) and `erin`, approved as an
    /// administrator until `erin_until`, and `u`, the user under test, with
    /// nothing yet.
    fn two_admins(erin_until: Option<&str>) -> Model {
        let mut m = Model::empty(Tenancy {
            name: "t".into(),
            csi: "1".into(),
            home_region: None,
            admin: "dan".into(),
        });
        for id in ["dan", "erin", "u", "plain"] {
            m.users.insert(
                id.into(),
                User {
                    email: format!("{id}@x.example"),
                    name: None,
                },
            );
        }
        for id in ["dan", "erin", "plain"] {
            m.support_accounts.insert(
                id.into(),
                SupportAccount {
                    phone: "1".into(),
                    timezone: "UTC".into(),
                },
            );
            if id != "dan" {
                m.memberships.insert(id.into());
            }
        }
        let approval = |role, expires: Option<&str>| Approval {
            role,
            access: Privilege::ALL.into_iter().collect(),
            approved_by: "dan".into(),
            expires: expires.map(day),
        };
        m.approvals
            .insert("erin".into(), approval(Role::Admin, erin_until));
        m.approvals
            .insert("plain".into(), approval(Role::User, None));
        m
    }

    fn account(m: &mut Model, id: &str) {
        m.support_accounts.insert(
            id.into(),
            SupportAccount {
                phone: "1".into(),
                timezone: "UTC".into(),
            },
        );
    }

    fn approve(m: &mut Model, id: &str, role: Role, access: &[Privilege], expires: &str) {
        m.approvals.insert(
            id.into(),
            Approval {
                role,
                access: access.iter().copied().collect(),
                approved_by: "erin".into(),
                expires: Some(day(expires)),
            },
        );
    }

    fn link(m: &mut Model, id: &str, via: &str, expires: Option<&str>) {
        m.support_links.insert(
            id.into(),
            SupportLink {
                via: via.into(),
                expires: expires.map(day),
            },
        );
    }

    /// Every way `u` can be without a grant, each with the path and the
    /// whole reason an audit gives: an expired grant is said to have
    /// expired (with the moment), never to be pending or absent, and
    /// `pending`, `not-associated` and `none` are given only when the state
    /// holds no approval and no link for the user.
    #[test]
    fn every_way_a_grant_can_be_absent_has_its_own_path_and_reason() {
        let today = day("2026-11-24");
        type Setup = fn(&mut Model);
        let cases: [(&str, Setup, Path, &str); 14] = [
            (
                "no account",
                |_| {},
                Path::NoAccess,
                "no support account and no support link",
            ),
            (
                "an account, no membership",
                |m| account(m, "u"),
                Path::NotAssociated,
                "not associated with the CSI: no membership request",
            ),
            (
                "membership pending",
                |m| {
                    account(m, "u");
                    m.memberships.insert("u".into());
                },
                Path::Pending,
                "pending approval by a CSI administrator",
            ),
            (
                "approval expired",
                |m| {
                    account(m, "u");
                    m.memberships.insert("u".into());
                    approve(m, "u", Role::User, &[Privilege::CreateSr], "2026-03-01");
                },
                Path::ApprovalExpired,
                "approval expired on 2026-03-01 00:00 UTC (approved by `erin`); the membership request awaits a new approval",
            ),
            (
                "approval expiring today",
                |m| {
                    account(m, "u");
                    m.memberships.insert("u".into());
                    approve(m, "u", Role::User, &[Privilege::CreateSr], "2026-11-24");
                },
                Path::ApprovalExpired,
                "approval expired on 2026-11-24 00:00 UTC (approved by `erin`); the membership request awaits a new approval",
            ),
            (
                "admin approval expired",
                |m| {
                    account(m, "u");
                    m.memberships.insert("u".into());
                    approve(m, "u", Role::Admin, &[], "2026-03-01");
                },
                Path::ApprovalExpired,
                "approval as a CSI administrator expired on 2026-03-01 00:00 UTC (approved by `erin`); the membership request awaits a new approval",
            ),
            (
                "approval without create access",
                |m| {
                    account(m, "u");
                    m.memberships.insert("u".into());
                    approve(m, "u", Role::User, &[Privilege::ViewSr], "2027-03-01");
                },
                Path::ApprovedWithoutCreate,
                "no create access: the approval does not grant `create_sr`",
            ),
            (
                "link expired",
                |m| link(m, "u", "dan", Some("2026-06-30")),
                Path::LinkExpired,
                "the support link through `dan` expired on 2026-06-30 00:00 UTC",
            ),
            (
                "link expired, with a pending membership",
                |m| {
                    account(m, "u");
                    m.memberships.insert("u".into());
                    link(m, "u", "dan", Some("2026-06-30"));
                },
                Path::LinkExpired,
                "the support link through `dan` expired on 2026-06-30 00:00 UTC",
            ),
            (
                "link via an administrator whose admin approval expired",
                |m| {
                    approve(m, "erin", Role::Admin, &[], "2026-02-01");
                    link(m, "u", "erin", None);
                },
                Path::LinkExpired,
                "linked through `erin`, whose approval as a CSI administrator expired on 2026-02-01 00:00 UTC",
            ),
            (
                "link and its administrator both expired: the earlier one ended it",
                |m| {
                    approve(m, "erin", Role::Admin, &[], "2026-02-01");
                    link(m, "u", "erin", Some("2026-05-01"));
                },
                Path::LinkExpired,
                "linked through `erin`, whose approval as a CSI administrator expired on 2026-02-01 00:00 UTC",
            ),
            (
                "link via a user approved with role user",
                |m| link(m, "u", "plain", None),
                Path::LinkViaNonAdmin,
                "linked through `plain`, who is no longer a CSI administrator: the link grants nothing until it goes through a current one",
            ),
            (
                "link via a user without any approval (it was removed)",
                |m| {
                    m.approvals.remove("erin");
                    link(m, "u", "erin", None);
                },
                Path::LinkViaNonAdmin,
                "linked through `erin`, who is no longer a CSI administrator: the link grants nothing until it goes through a current one",
            ),
            (
                "link expired via a non-admin: the expiry is what is said",
                |m| link(m, "u", "plain", Some("2026-06-30")),
                Path::LinkExpired,
                "the support link through `plain` expired on 2026-06-30 00:00 UTC",
            ),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for (what, setup, path, reason) in cases {
            let mut m = two_admins(None);
            setup(&mut m);
            let a = resolve(&m, "u", today).unwrap();
            assert_eq!((a.path, a.reason.as_str()), (path, reason), "{what}");
            assert!(!a.can_open_sr, "{what}");
            assert_eq!(
                (&a.acts_as, &a.notified, &a.via),
                (&None, &None, &None),
                "{what}"
            );
            seen.insert(path.as_str());
        }
        // Every path that grants nothing has a case here.
        for path in Path::ALL.into_iter().filter(|p| !p.opens_srs()) {
            assert!(
                seen.contains(path.as_str()),
                "no case for `{}`",
                path.as_str()
            );
        }
    }

    #[test]
    fn until_is_the_earliest_expiry_on_the_path() {
        let today = day("2026-11-24");
        // A link through erin ends when erin stops being an administrator,
        // when that comes before the link's own expiry...
        let mut m = two_admins(Some("2027-03-01"));
        link(&mut m, "u", "erin", Some("2027-06-30"));
        let a = resolve(&m, "u", today).unwrap();
        assert_eq!(a.path, Path::Linked);
        assert_eq!(a.until, Some(day("2027-03-01")));
        assert_eq!(
            a.until_cause.as_deref(),
            Some("`erin`'s approval as a CSI administrator expires")
        );
        // ...and the day it comes, the link is ended, and says why.
        let ended = resolve(&m, "u", day("2027-03-01")).unwrap();
        assert_eq!(ended.path, Path::LinkExpired);
        assert!(ended.reason.contains("expired on 2027-03-01 00:00 UTC"));
        // The link's own expiry, when it is the earlier.
        let mut m = two_admins(Some("2027-09-01"));
        link(&mut m, "u", "erin", Some("2027-06-30"));
        let a = resolve(&m, "u", today).unwrap();
        assert_eq!(a.until, Some(day("2027-06-30")));
        assert_eq!(
            a.until_cause.as_deref(),
            Some("the support link through `erin` expires")
        );
        // Through an administrator without an expiry: the link's own.
        let mut m = two_admins(None);
        link(&mut m, "u", "erin", Some("2027-06-30"));
        assert_eq!(
            resolve(&m, "u", today).unwrap().until,
            Some(day("2027-06-30"))
        );
        // Through an administrator with one, and a link without: theirs.
        let mut m = two_admins(Some("2027-03-01"));
        link(&mut m, "u", "erin", None);
        assert_eq!(
            resolve(&m, "u", today).unwrap().until,
            Some(day("2027-03-01"))
        );
        // The tenancy admin needs no approval: only the link's own.
        let mut m = two_admins(Some("2027-03-01"));
        link(&mut m, "u", "dan", None);
        assert_eq!(resolve(&m, "u", today).unwrap().until, None);
        // An approval's own expiry; the approver's does not end it (an
        // approval names who granted it, not a living privilege).
        let mut m = two_admins(Some("2027-03-01"));
        account(&mut m, "u");
        m.memberships.insert("u".into());
        approve(
            &mut m,
            "u",
            Role::User,
            &[Privilege::CreateSr],
            "2027-06-30",
        );
        let a = resolve(&m, "u", today).unwrap();
        assert_eq!(a.until, Some(day("2027-06-30")));
        assert_eq!(a.until_cause.as_deref(), Some("the approval expires"));
        assert_eq!(day("2027-06-30").start_text(), "2027-06-30 00:00 UTC");
    }

    /// Days the property test draws expiries and todays from.
    const DAYS: [&str; 6] = [
        "2026-01-01",
        "2026-03-01",
        "2026-06-01",
        "2026-06-02",
        "2026-09-01",
        "2027-01-01",
    ];

    /// One user of a generated tenancy: what it holds.
    #[derive(Clone, Debug)]
    struct Draw {
        account: bool,
        membership: bool,
        /// Role admin?, create_sr?, expiry.
        approval: Option<(bool, bool, Option<usize>)>,
        /// Via (an index into the users, 0 is the tenancy admin), expiry.
        link: Option<(usize, Option<usize>)>,
    }

    fn draw() -> impl proptest::strategy::Strategy<Value = Draw> {
        use proptest::prelude::*;
        let expiry = proptest::option::of(0..DAYS.len());
        (
            any::<bool>(),
            any::<bool>(),
            proptest::option::of((any::<bool>(), any::<bool>(), expiry.clone())),
            proptest::option::of((0..6usize, expiry)),
        )
            .prop_map(|(account, membership, approval, link)| Draw {
                account,
                membership,
                approval,
                link,
            })
    }

    /// A model as the state can hold it (docs/DOMAIN.md §3 rules 4, 5, 7 and 8), but
    /// with any expiries, and links through anyone.
    fn generated(draws: &[Draw]) -> Model {
        let id = |i: usize| format!("u{i}");
        let mut m = Model::empty(Tenancy {
            name: "t".into(),
            csi: "1".into(),
            home_region: None,
            admin: id(0),
        });
        for (i, d) in draws.iter().enumerate() {
            m.users.insert(
                id(i),
                User {
                    email: format!("{}@x.example", id(i)),
                    name: None,
                },
            );
            let admin = i == 0;
            if d.account || admin {
                account(&mut m, &id(i));
            }
            if admin {
                continue;
            }
            if let Some((via, expires)) = d.link {
                m.support_links.insert(
                    id(i),
                    SupportLink {
                        via: id(via % draws.len()),
                        expires: expires.map(|e| day(DAYS[e])),
                    },
                );
            }
            if !d.account || !d.membership {
                continue;
            }
            m.memberships.insert(id(i));
            if let (Some((admin_role, create, expires)), None) = (d.approval, d.link) {
                let mut access = std::collections::BTreeSet::new();
                if create {
                    access.insert(Privilege::CreateSr);
                }
                m.approvals.insert(
                    id(i),
                    Approval {
                        role: if admin_role { Role::Admin } else { Role::User },
                        access,
                        approved_by: id(0),
                        expires: expires.map(|e| day(DAYS[e])),
                    },
                );
            }
        }
        m
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// For any state and day: a path grants exactly when it says it
        /// does; an absent grant is explained by what the state holds;
        /// access stays the same every day before `until`, and on `until`
        /// it has ended, explained as expired at that moment.
        #[test]
        fn until_and_paths_tell_the_truth_on_every_day(
            draws in proptest::collection::vec(draw(), 1..7),
            today in 0..DAYS.len(),
        ) {
            let m = generated(&draws);
            let today = day(DAYS[today]);
            for user in m.users.keys() {
                let a = resolve(&m, user, today).unwrap();
                assert_eq!(a.can_open_sr, a.path.opens_srs(), "{a:?}");
                assert_eq!(a.acts_as.is_some(), a.can_open_sr, "{a:?}");
                assert_eq!(a.until.is_some(), a.until_cause.is_some(), "{a:?}");
                let approval = m.approvals.get(user);
                let link = m.support_links.get(user);
                match a.path {
                    Path::ApprovalExpired => assert!(approval.is_some_and(|x| !x.is_active(today))),
                    Path::LinkExpired => assert!(link.is_some()),
                    Path::LinkViaNonAdmin => assert!(link.is_some_and(|l| !m.is_csi_admin(&l.via))),
                    Path::Pending => {
                        assert!(approval.is_none() && link.is_none() && m.memberships.contains(user));
                    }
                    Path::NotAssociated => {
                        assert!(approval.is_none() && link.is_none() && !m.memberships.contains(user));
                        assert!(m.support_accounts.contains_key(user));
                    }
                    Path::NoAccess => {
                        assert!(approval.is_none() && link.is_none());
                        assert!(!m.support_accounts.contains_key(user));
                    }
                    _ => {}
                }
                let Some(until) = a.until else {
                    if a.can_open_sr {
                        let later = resolve(&m, user, day("9999-12-31")).unwrap();
                        assert_eq!(later, a, "no `until`, yet access ends");
                    }
                    continue;
                };
                assert!(today < until, "{a:?}");
                for other in DAYS.map(day) {
                    let then = resolve(&m, user, other).unwrap();
                    if today <= other && other < until {
                        assert_eq!(&then, &a, "on {other}, before `until`");
                    }
                }
                let ended = resolve(&m, user, until).unwrap();
                assert!(!ended.can_open_sr, "{ended:?}");
                assert!(
                    matches!(ended.path, Path::ApprovalExpired | Path::LinkExpired),
                    "on `until` {until}: {ended:?}"
                );
                assert!(ended.reason.contains(&until.start_text()), "{ended:?}");
            }
        }
    }
}

/// Who an SR belongs to (docs/DOMAIN.md §5): the persons who opened and
/// own it and the CSI it was opened under, as the state recorded them when
/// it was opened. A person of `None` is no one (an SR stored before persons
/// were, whose person could not be told). The ids are the ones it was opened
/// under, for messages only: no decision reads them.
#[derive(Clone, Copy, Debug)]
pub struct Parties<'a> {
    pub opener: Option<Person>,
    pub owner: Option<Person>,
    pub csi: Option<&'a str>,
    pub opened_by: &'a str,
    pub owner_id: &'a str,
}

/// What opening an SR as a user gives: its owner (the user, or the
/// administrator it is linked through), who is mailed, and where it is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opening {
    pub owner: String,
    pub contact: String,
    pub channel: Channel,
}

/// How `user` would open an SR on `today`, or why it cannot.
pub fn opening(model: &Model, user: &str, today: Date) -> Result<Opening, String> {
    let access = resolve(model, user, today).map_err(|e| e.to_string())?;
    let (Some(owner), Some(contact)) = (access.acts_as, access.notified) else {
        return Err(format!("`{user}` cannot open an SR: {}", access.reason));
    };
    Ok(Opening {
        owner,
        contact,
        channel: if access.visible_in_mos {
            Channel::Mos
        } else {
            Channel::Console
        },
    })
}

/// Where user `user`, who is `person`, reads an SR on `today`: in MOS (the
/// SRs its person owns, or, with `view_sr` or as an administrator, every SR
/// opened under the tenancy's CSI now), in the Console (the SRs its person
/// opened), or not at all. Persons decide, never ids: a user created again
/// under a deleted user's id, or given a renamed user's old id, is another
/// person and sees none of theirs; and an SR opened under another CSI is no
/// part of this CSI's view.
pub fn sees(
    model: &Model,
    user: &str,
    person: Option<Person>,
    sr: &Parties<'_>,
    today: Date,
) -> Option<Channel> {
    let access = resolve(model, user, today).ok()?;
    let is = |p: Option<Person>| p.is_some() && p == person;
    let under_this_csi = sr.csi == Some(model.tenancy.csi.as_str());
    if access.visible_in_mos && ((access.sees_all_csi_srs && under_this_csi) || is(sr.owner)) {
        Some(Channel::Mos)
    } else if access.visible_in_console && is(sr.opener) {
        Some(Channel::Console)
    } else {
        None
    }
}

/// Where `user`, who is `person`, may comment on an SR: in MOS with create
/// access to a visible SR, or in the Console on an SR its person opened (a
/// linked user's only way); `Err` says why not.
pub fn may_comment(
    model: &Model,
    user: &str,
    person: Option<Person>,
    sr: &Parties<'_>,
    today: Date,
) -> Result<Channel, String> {
    let access = resolve(model, user, today).map_err(|e| e.to_string())?;
    let is = |p: Option<Person>| p.is_some() && p == person;
    let creates = matches!(
        access.path,
        Path::TenancyAdmin | Path::ApprovedAdmin | Path::ApprovedUser
    );
    match sees(model, user, person, sr, today) {
        Some(Channel::Mos) if creates => Ok(Channel::Mos),
        Some(Channel::Console) => Ok(Channel::Console),
        Some(Channel::Mos) => Err(format!(
            "`{user}` can read this SR in MOS but not update it: {}",
            access.reason
        )),
        None if access.visible_in_mos
            && access.sees_all_csi_srs
            && sr.csi != Some(model.tenancy.csi.as_str()) =>
        {
            Err(format!(
                "`{user}` cannot see this SR: it was opened under CSI `{}`, and the tenancy's CSI is `{}` now",
                sr.csi.unwrap_or("(unknown)"),
                model.tenancy.csi
            ))
        }
        None if access.visible_in_console || access.visible_in_mos => Err(format!(
            "`{user}` cannot see this SR: it was opened by `{}` and is owned by `{}`{}",
            sr.opened_by,
            sr.owner_id,
            if (sr.opened_by == user && !is(sr.opener)) || (sr.owner_id == user && !is(sr.owner)) {
                format!(", another person who had the id `{user}` then")
            } else {
                String::new()
            }
        )),
        None => Err(format!("`{user}` cannot see this SR: {}", access.reason)),
    }
}

/// Where an SR or a comment is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// My Oracle Support.
    Mos,
    /// The OCI Console's support centre.
    Console,
}

impl Channel {
    /// The name stored and printed in JSON: `mos` or `console`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Mos => "mos",
            Channel::Console => "console",
        }
    }
}
