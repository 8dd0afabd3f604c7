//! Access resolution: how a user reaches Oracle Support, as whom, and why.
//!
//! A pure function of a tenancy's model and a day: DOMAIN.md's access matrix,
//! row by row. The rule the product exists for lives here — a linked user
//! acts through the CSI administrator: the administrator owns the SR and is
//! mailed, and the linked user reads it in the Console only. Grants past
//! their `expires` day count as absent, and so does a link through someone
//! who is no longer a CSI administrator.

use crate::model::{Date, Model, Person, Privilege, Role};

/// Which row of the access matrix a user is on.
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
    /// Membership requested, not approved (or the approval expired).
    Pending,
    /// A support account, but no membership request.
    NotAssociated,
    /// Linked through a CSI administrator.
    Linked,
    /// None of these.
    NoAccess,
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Path::TenancyAdmin => "tenancy-admin",
            Path::ApprovedAdmin => "approved-admin",
            Path::ApprovedUser => "approved-user",
            Path::ApprovedWithoutCreate => "approved-without-create",
            Path::Pending => "pending",
            Path::NotAssociated => "not-associated",
            Path::Linked => "linked",
            Path::NoAccess => "none",
        }
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
    /// The day the grant ends, if it does.
    pub until: Option<Date>,
    pub reason: String,
}

/// Why an access question cannot be answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessError {
    UnknownUser(String),
}

impl std::fmt::Display for AccessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessError::UnknownUser(u) => write!(f, "`{u}` is not a user of the tenancy"),
        }
    }
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

/// Resolves how `user` reaches support on `today` (DOMAIN.md, the access matrix).
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
        reason,
    };

    if user == model.tenancy.admin {
        return Ok(own(
            Path::TenancyAdmin,
            "the tenancy admin is the CSI administrator".to_string(),
            None,
        ));
    }
    if let Some(a) = model.approvals.get(user).filter(|a| a.is_active(today)) {
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
                access
            }
        });
    }
    if let Some(link) = model.support_links.get(user).filter(|l| l.is_active(today)) {
        let via = &link.via;
        if is_active_admin(model, via, today)
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
                until: link.expires,
                reason: format!(
                    "linked through the CSI administrator `{via}`, who owns the SRs and is mailed"
                ),
            });
        }
        return Ok(refused(
            Path::NoAccess,
            format!("linked through `{via}`, who is no longer a CSI administrator"),
        ));
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
            // Expired grants count as absent.
            (
                "old",
                Path::Pending,
                false,
                None,
                None,
                false,
                false,
                "pending approval",
            ),
            (
                "lapsed",
                Path::NoAccess,
                false,
                None,
                None,
                false,
                false,
                "no support account and no support link",
            ),
            (
                "ex",
                Path::Pending,
                false,
                None,
                None,
                false,
                false,
                "pending approval",
            ),
            // A link through an administrator whose approval expired is no link.
            (
                "orphan",
                Path::NoAccess,
                false,
                None,
                None,
                false,
                false,
                "no longer a CSI administrator",
            ),
        ];
        for (user, path, can, owner, notified, mos, console, reason) in rows {
            let a = resolve(&m, user, today).unwrap();
            assert_eq!(a.path, path, "{user}");
            assert_eq!(a.can_open_sr, can, "{user}");
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
    }
}

/// Who an SR belongs to (DOMAIN.md, decisions): the persons who opened and
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
