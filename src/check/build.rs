//! The model built of the entries that passed, their strings moved out of
//! the raw config.

use foldhash::HashMap;

use super::Selection;
use crate::config::{RawConfig, RawUserEntry, Spanned, raw};
use crate::model::{Approval, Model, Privilege, Role, SupportAccount, SupportLink, Tenancy, User};

/// The model of the entries `selection` names, made of their strings,
/// moved out of `raw` (which is left with empty strings).
pub(super) fn build(raw: &mut RawConfig, selection: Selection) -> Model {
    let tenancy = &mut raw.tenancies[0].value;
    let admin = tenancy.admin.value.clone();
    let tenancy = Tenancy {
        name: take(&mut tenancy.name.value),
        csi: take(&mut tenancy.csi.value),
        home_region: tenancy.home_region.as_mut().map(|r| take(&mut r.value)),
        admin: take(&mut tenancy.admin.value),
    };

    // Every map is built from its entries in key order at once (a bulk
    // build), not by one search and insert per entry.
    let users = users(&mut raw.users, selection.users, &selection.zones);
    let memberships = selection
        .memberships
        .into_iter()
        .map(|index| take(&mut raw.memberships[index].value.user.value))
        .collect();
    let approvals = selection
        .approvals
        .into_iter()
        .map(|(index, expires)| approval(&mut raw.approvals[index].value, expires, &admin))
        .collect();
    let support_links = selection
        .links
        .into_iter()
        .map(|(index, expires)| {
            let link = &mut raw.support_links[index].value;
            let value = SupportLink {
                via: taken_or_admin(&mut link.via, &admin),
                expires,
            };
            (take(&mut link.user.value), value)
        })
        .collect();
    Model {
        tenancy,
        users: users.users.into_iter().collect(),
        support_accounts: users.support_accounts.into_iter().collect(),
        memberships,
        approvals,
        support_links,
        renames: users.renames.into_iter().collect(),
    }
}

fn take(text: &mut String) -> String {
    std::mem::take(text)
}

/// `approved_by` or `via` as given, or the tenancy admin when not given.
fn taken_or_admin(given: &mut Option<Spanned<String>>, admin: &str) -> String {
    given
        .as_mut()
        .map_or_else(|| admin.to_owned(), |g| take(&mut g.value))
}

/// The users of a model, each with its id, in id order.
struct Users {
    users: Vec<(String, User)>,
    support_accounts: Vec<(String, SupportAccount)>,
    renames: Vec<(String, String)>,
}

/// The users `selected` (by index in `entries`), their time zones spelt as
/// the database spells them (`zones`: `asia/seoul` is `Asia/Seoul`).
fn users(
    entries: &mut [RawUserEntry],
    selected: Vec<usize>,
    zones: &HashMap<String, String>,
) -> Users {
    let zone = |written: String| match zones.get(&written) {
        Some(canonical) => canonical.clone(),
        None => written,
    };
    let mut users = Vec::with_capacity(selected.len());
    let mut support_accounts = Vec::with_capacity(selected.len());
    let mut renames = Vec::new();
    for index in selected {
        let entry = &mut entries[index];
        let id = take(&mut entry.id.value);
        let user = &mut entry.user;
        if let Some(account) = &mut user.support_account {
            let account = &mut account.value;
            support_accounts.push((
                id.clone(),
                SupportAccount {
                    phone: take(&mut account.phone.value),
                    timezone: zone(take(&mut account.timezone.value)),
                },
            ));
        }
        if let Some(previously) = &mut user.previously {
            renames.push((id.clone(), take(&mut previously.value)));
        }
        let value = User {
            email: take(&mut user.email.value),
            name: user.name.as_mut().map(|n| take(&mut n.value)),
        };
        users.push((id, value));
    }
    Users {
        users,
        support_accounts,
        renames,
    }
}

/// An approval of the model, with its user's id.
fn approval(
    a: &mut raw::RawApproval,
    expires: Option<crate::model::Date>,
    admin: &str,
) -> (String, Approval) {
    // An administrator holds every privilege, whatever is listed
    // (docs/DOMAIN.md §3): store it so, and a listed subset is no difference.
    let access = if a.role.value == raw::RawRole::Admin {
        Privilege::ALL.into_iter().collect()
    } else {
        a.access
            .as_ref()
            .map(|list| {
                list.iter()
                    .map(|p| match p.value {
                        raw::RawPrivilege::CreateSr => Privilege::CreateSr,
                        raw::RawPrivilege::ViewSr => Privilege::ViewSr,
                        raw::RawPrivilege::Download => Privilege::Download,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let approval = Approval {
        role: match a.role.value {
            raw::RawRole::User => Role::User,
            raw::RawRole::Admin => Role::Admin,
        },
        access,
        approved_by: taken_or_admin(&mut a.approved_by, admin),
        expires,
    };
    (take(&mut a.user.value), approval)
}
