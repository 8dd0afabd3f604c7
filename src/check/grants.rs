//! The rules about grants: memberships, approvals and their chains,
//! support links, what an approval grants, and expiry (rules 4–9).

use foldhash::{HashMap, HashMapExt as _};

use super::{Checker, Declared, Keyed, is_admin_on};
use crate::config::{RawConfig, RawTenancy, Spanned, raw};
use crate::diag::{Diagnostic, Location, Rule};
use crate::model::Date;

impl Checker {
    /// Reports a second entry for one user in a section.
    fn first_per_user<'a, T>(
        &mut self,
        seen: &mut Keyed<'a, &'a Spanned<T>>,
        user: &'a Spanned<String>,
        entry: &'a Spanned<T>,
        first_user: impl Fn(&T) -> Location,
        what: &str,
    ) -> bool {
        if let Some(first) = seen.get(user.value.as_str()) {
            self.push(
                Diagnostic::at(
                    Rule::DuplicateKey,
                    user.location,
                    format!("a second {what} for user `{}`", user.value),
                )
                .with_related(first_user(&first.value), "the first is")
                .with_hint(format!(
                    "a user has at most one {what}; merge them into one"
                )),
            );
            false
        } else {
            seen.insert(&user.value, entry);
            true
        }
    }

    fn tenancy_admin_grant(&mut self, user: &Spanned<String>, admin_id: &str, what: &str) -> bool {
        if user.value == admin_id {
            self.push(
                Diagnostic::at(
                    Rule::TenancyAdminGrant,
                    user.location,
                    format!("`{admin_id}` is the tenancy admin and needs no {what}"),
                )
                .with_hint(
                    "the tenancy admin is a CSI administrator by definition; remove this entry",
                ),
            );
            true
        } else {
            false
        }
    }

    pub(super) fn memberships<'a>(
        &mut self,
        raw: &'a RawConfig,
        users: &Keyed<'_, Declared<'_>>,
        admin_id: &str,
    ) -> Keyed<'a, &'a Spanned<raw::RawMembership>> {
        let mut seen = Keyed::with_capacity(raw.memberships.len());
        for m in &raw.memberships {
            if !self.known(&m.user, users, "membership user") {
                continue;
            }
            if !self.first_per_user(&mut seen, &m.user, m, |f| f.user.location, "membership") {
                continue;
            }
            if self.tenancy_admin_grant(&m.user, admin_id, "membership") {
                continue;
            }
            let declared = &users[m.user.value.as_str()];
            if declared.entry.user.support_account.is_none() {
                self.push(
                    Diagnostic::at(
                        Rule::MembershipWithoutSupportAccount,
                        m.user.location,
                        format!(
                            "`{}` has no support account, so it cannot request CSI membership",
                            m.user.value
                        ),
                    )
                    .with_related(declared.id.location, "the user is declared")
                    .with_hint(
                        "add `support_account` to the user, or give it a support link instead",
                    ),
                );
            }
        }
        seen.finish();
        seen
    }

    pub(super) fn links_by_user<'a>(
        &mut self,
        raw: &'a RawConfig,
        users: &Keyed<'_, Declared<'_>>,
        admin_id: &str,
    ) -> Keyed<'a, &'a Spanned<raw::RawSupportLink>> {
        let mut seen = Keyed::with_capacity(raw.support_links.len());
        for link in &raw.support_links {
            if !self.known(&link.user, users, "linked user") {
                continue;
            }
            if !self.first_per_user(
                &mut seen,
                &link.user,
                link,
                |f| f.user.location,
                "support link",
            ) {
                continue;
            }
            self.tenancy_admin_grant(&link.user, admin_id, "support link");
        }
        seen.finish();
        seen
    }

    pub(super) fn approvals<'a>(
        &mut self,
        raw: &'a RawConfig,
        users: &Keyed<'_, Declared<'_>>,
        admin_id: &str,
        memberships: &Keyed<'_, &Spanned<raw::RawMembership>>,
        links: &Keyed<'_, &Spanned<raw::RawSupportLink>>,
    ) -> Keyed<'a, &'a Spanned<raw::RawApproval>> {
        let mut seen = Keyed::with_capacity(raw.approvals.len());
        for a in &raw.approvals {
            if !self.known(&a.user, users, "approved user") {
                continue;
            }
            if !self.first_per_user(&mut seen, &a.user, a, |f| f.user.location, "approval") {
                continue;
            }
            if self.tenancy_admin_grant(&a.user, admin_id, "approval") {
                continue;
            }
            if !memberships.contains_key(a.user.value.as_str())
                && !self.unreadable.memberships.contains(&a.user.value)
            {
                self.approval_without_membership(a, users);
            }
            self.access(a);
            if let Some(link) = links.get(a.user.value.as_str()) {
                self.push(
                    Diagnostic::at(
                        Rule::LinkedUserApproved,
                        a.user.location,
                        format!(
                            "`{}` has a support link, so it acts through the CSI admin and cannot also be approved",
                            a.user.value
                        ),
                    )
                    .with_related(link.user.location, "the support link is")
                    .with_hint("keep either the approval (own MOS access) or the link (acts through the admin)"),
                );
            }
            self.expiry(a.expires.as_ref(), "approval");
        }
        // `approved_by` is checked once every approval is known, since an
        // approver's own approval may come later in the files.
        seen.finish();
        self.approvers(&seen, users, admin_id);
        seen
    }

    /// An approval of a user without a membership request: it names both
    /// steps an approval needs when both are missing (a membership request
    /// needs a support account, rule 4).
    fn approval_without_membership(
        &mut self,
        a: &Spanned<raw::RawApproval>,
        users: &Keyed<'_, Declared<'_>>,
    ) {
        let user = a.user.value.as_str();
        let (message, hint) = if users[user].entry.user.support_account.is_none() {
            (
                format!(
                    "`{user}` has no membership request to approve, nor the support account a request needs"
                ),
                format!(
                    "add `support_account` to the user `{user}`, and `- user: {user}` under `memberships:`"
                ),
            )
        } else {
            (
                format!("`{user}` has no membership request to approve"),
                format!("add `- user: {user}` under `memberships:`"),
            )
        };
        self.push(
            Diagnostic::at(Rule::ApprovalWithoutMembership, a.user.location, message)
                .with_hint(hint),
        );
    }

    /// Rule 6: each approval's `approved_by` names a CSI administrator now.
    fn approvers(
        &mut self,
        approvals: &Keyed<'_, &Spanned<raw::RawApproval>>,
        users: &Keyed<'_, Declared<'_>>,
        admin_id: &str,
    ) {
        for a in approvals.values() {
            if let Some(by) = &a.approved_by
                && self.known(by, users, "approver")
                && by.value != admin_id
                && !self.unreadable.approvals.contains(&by.value)
                && !approvals
                    .get(by.value.as_str())
                    .is_some_and(|b| is_admin_on(b, self.today))
            {
                // An approval outlives its approver's role (as in My Oracle
                // Support), so that the state of any day reads back; a new
                // one by a non-administrator is refused when planned
                // against the state (`grants_made`).
                self.push(
                    Diagnostic::at(
                        Rule::ApproverNoLongerAdmin,
                        by.location,
                        format!(
                            "`{}` is not a CSI administrator now: an approval it granted while it was one stays valid, but it cannot grant a new one",
                            by.value
                        ),
                    )
                    .with_hint(administrators_hint(admin_id, approvals, self.today)),
                );
            }
        }
    }

    /// Rule 6: every chain of admin approvals ends at the tenancy admin.
    pub(super) fn check_approval_chains(
        &mut self,
        approvals: &Keyed<'_, &Spanned<raw::RawApproval>>,
        admin_id: &str,
    ) {
        // approver of each admin-role approval, where the approver is itself
        // an admin-role approval (other cases end a chain or were reported).
        let parent = |user: &str| -> Option<&str> {
            let by = approvals.get(user)?.approved_by.as_ref()?;
            let by = by.value.as_str();
            (by != admin_id
                && approvals
                    .get(by)
                    .is_some_and(|b| b.role.value == raw::RawRole::Admin))
            .then_some(by)
        };
        // Each approval is walked once: a walk stops at the first approval
        // an earlier walk reached, so a long chain costs its length, not
        // its length squared.
        let mut walked: HashMap<&str, usize> = HashMap::with_capacity(approvals.len());
        for (walk, &start) in approvals.keys().enumerate() {
            if walked.contains_key(start) {
                continue;
            }
            let mut path = vec![start];
            let mut current = start;
            walked.insert(start, walk);
            while let Some(next) = parent(current) {
                match walked.get(next) {
                    // Reached by an earlier walk: its loop, if any, is reported.
                    Some(&earlier) if earlier != walk => break,
                    Some(_) => {
                        let pos = path.iter().position(|&p| p == next).unwrap_or(0);
                        self.approval_cycle(&path[pos..], approvals, admin_id);
                        break;
                    }
                    None => {
                        walked.insert(next, walk);
                        path.push(next);
                        current = next;
                    }
                }
            }
        }
    }

    fn approval_cycle(
        &mut self,
        cycle: &[&str],
        approvals: &Keyed<'_, &Spanned<raw::RawApproval>>,
        admin_id: &str,
    ) {
        let Some(&first) = cycle.iter().min() else {
            return;
        };
        let shown: Vec<String> = cycle_from(cycle, first)
            .iter()
            .map(|c| format!("`{c}`"))
            .collect();
        let by = approvals[first]
            .approved_by
            .as_ref()
            .map_or(approvals[first].location, |b| b.location);
        self.push(
            Diagnostic::at(
                Rule::ApprovalCycle,
                by,
                format!(
                    "approvals form a loop: {} → {}",
                    shown.join(" → "),
                    shown[0]
                ),
            )
            .with_hint(format!(
                "approval chains start at the tenancy admin: let `{admin_id}` approve one of them"
            )),
        );
    }

    pub(super) fn links(
        &mut self,
        links: &Keyed<'_, &Spanned<raw::RawSupportLink>>,
        users: &Keyed<'_, Declared<'_>>,
        admin_id: &str,
        approvals: &Keyed<'_, &Spanned<raw::RawApproval>>,
        memberships: &Keyed<'_, &Spanned<raw::RawMembership>>,
    ) {
        for (&user, link) in links.iter() {
            if let Some(via) = &link.via
                && self.known(via, users, "`via` administrator")
                && via.value != admin_id
                && !self.unreadable.approvals.contains(&via.value)
                && !approvals
                    .get(via.value.as_str())
                    .is_some_and(|a| is_admin_on(a, self.today))
            {
                self.push(
                    Diagnostic::at(
                        Rule::LinkInactive,
                        via.location,
                        format!(
                            "`{}` is not a CSI administrator now, so this link is inactive: `{user}` cannot open SRs until it is moved to a current administrator",
                            via.value
                        ),
                    )
                    .with_hint(administrators_hint(admin_id, approvals, self.today)),
                );
            }
            if user != admin_id
                && memberships.contains_key(user)
                && !approvals.contains_key(user)
                && !self.unreadable.approvals.contains(user)
            {
                self.push(
                    Diagnostic::at(
                        Rule::LinkedUserPending,
                        link.user.location,
                        format!("`{user}` is linked and also has a pending membership request"),
                    )
                    .with_related(memberships[user].user.location, "the request is")
                    .with_hint("a linked user acts through the CSI admin; the request will not be approved while the link stands"),
                );
            }
            self.expiry(link.expires.as_ref(), "support link");
        }
    }

    /// What an approval grants: with role `user`, at least one privilege,
    /// each listed once (an admin holds them all, whatever is listed).
    fn access(&mut self, approval: &raw::RawApproval) {
        let listed = approval.access.as_ref().map_or(&[][..], |l| &l.value[..]);
        let mut seen: Vec<&Spanned<raw::RawPrivilege>> = Vec::with_capacity(3);
        for privilege in listed {
            match seen.iter().find(|p| p.value == privilege.value) {
                Some(first) => self.push(
                    Diagnostic::at(
                        Rule::DuplicateAccess,
                        privilege.location,
                        format!(
                            "`{}` is listed twice in `access`",
                            privilege_name(privilege.value)
                        ),
                    )
                    .with_related(first.location, "first listed")
                    .with_hint("list each privilege once; remove this one"),
                ),
                None => seen.push(privilege),
            }
        }
        if approval.role.value == raw::RawRole::User && listed.is_empty() {
            let user = &approval.user.value;
            let place = approval
                .access
                .as_ref()
                .map_or(approval.user.location, |l| l.location);
            self.push(
                Diagnostic::at(
                    Rule::ApprovalWithoutAccess,
                    place,
                    format!("`{user}` is approved with no access: the approval grants nothing"),
                )
                .with_hint("list what it grants, e.g. `access: [create_sr, view_sr]`, or remove the approval and the membership request"),
            );
        }
    }

    /// Rule 9: a valid date; one already past is warned about.
    fn expiry(&mut self, expires: Option<&Spanned<String>>, what: &str) {
        let Some(expires) = expires else { return };
        match Date::parse(&expires.value) {
            None => {
                let written = expires.value.as_str();
                let d = match Date::impossible(written) {
                    Some(why) => {
                        let hint = match Date::last_of_month(written) {
                            Some(last) => format!("the last day of that month is {last}"),
                            None => "months run from 01 to 12".to_string(),
                        };
                        Diagnostic::at(
                            Rule::InvalidDate,
                            expires.location,
                            format!("`{written}` is an impossible date: {why}"),
                        )
                        .with_hint(hint)
                    }
                    None => Diagnostic::at(
                        Rule::InvalidDate,
                        expires.location,
                        format!("`{written}` is not a valid date"),
                    )
                    .with_hint("write dates as YYYY-MM-DD, e.g. 2027-06-30"),
                };
                self.push(d);
            }
            Some(date) if date <= self.today => self.push(
                Diagnostic::at(
                    Rule::ExpiredGrant,
                    expires.location,
                    format!("this {what} expired on {date}; it grants nothing, and apply removes it from the state"),
                )
                .with_hint("move `expires` to a later date to renew it, or remove the entry once nothing names it (an approver's or a link's administrator may be named still)"),
            ),
            Some(_) => {}
        }
    }

    /// Oracle recommends at least two CSI administrators.
    pub(super) fn single_admin(
        &mut self,
        tenancy: &RawTenancy,
        approvals: &Keyed<'_, &Spanned<raw::RawApproval>>,
    ) {
        let others = approvals
            .values()
            .filter(|a| is_admin_on(a, self.today))
            .count();
        if others == 0 && self.unreadable.approvals.is_empty() && self.unreadable.users.is_empty() {
            self.push(
                Diagnostic::at(
                    Rule::SingleCsiAdmin,
                    tenancy.admin.location,
                    format!("`{}` is the CSI's only administrator", tenancy.admin.value),
                )
                .with_hint("approve a second user with `role: admin`; if the last administrator leaves, only Oracle Support can appoint one"),
            );
        }
    }
}

fn cycle_from<'a>(cycle: &[&'a str], first: &str) -> Vec<&'a str> {
    let start = cycle.iter().position(|&c| c == first).unwrap_or(0);
    cycle[start..]
        .iter()
        .chain(&cycle[..start])
        .copied()
        .collect()
}

/// The CSI administrators by name: the tenancy admin and the users approved
/// with role `admin` (the first few of them).
fn administrators_hint(
    admin_id: &str,
    approvals: &Keyed<'_, &Spanned<raw::RawApproval>>,
    today: Date,
) -> String {
    const SHOWN: usize = 5;
    let admins: Vec<&str> = approvals
        .iter()
        .filter(|(_, a)| is_admin_on(a, today))
        .map(|(id, _)| *id)
        .collect();
    let mut names: Vec<String> = admins
        .iter()
        .take(SHOWN)
        .map(|id| format!("`{id}`"))
        .collect();
    if admins.len() > SHOWN {
        names.push(format!("{} more", admins.len() - SHOWN));
    }
    match names.split_last() {
        None => format!(
            "the only CSI administrator is the tenancy admin `{admin_id}`; approve a user with `role: admin` for another"
        ),
        Some((last, [])) => {
            format!("the CSI administrators are the tenancy admin `{admin_id}` and {last}")
        }
        Some((last, rest)) => format!(
            "the CSI administrators are the tenancy admin `{admin_id}`, {} and {last}",
            rest.join(", ")
        ),
    }
}

fn privilege_name(privilege: raw::RawPrivilege) -> &'static str {
    match privilege {
        raw::RawPrivilege::CreateSr => "create_sr",
        raw::RawPrivilege::ViewSr => "view_sr",
        raw::RawPrivilege::Download => "download",
    }
}
