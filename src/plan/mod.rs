//! Planning: the desired model and the actual model in, a list of changes out.
//!
//! Pure and deterministic: the same two models always give the same plan, in
//! the plan order (docs/guide/state.md) — deletes first, in reverse dependency order, then
//! creates, updates and replacements in dependency order (tenancy, user,
//! support account, membership, approval with an approver's own approval
//! before the ones it grants, link), each kind sorted by id. Renames
//! (`previously:`) come first of all, as moves that delete nothing.

mod apply_to;
mod diff;
mod guard;
#[cfg(test)]
mod tests;

#[cfg(test)]
use diff::approval_depths;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::model::{Approval, Date, Model, SupportAccount, SupportLink, Tenancy, User};

pub use apply_to::apply_to;
pub use diff::{plan, rename_conflicts, rename_user, retirement};
pub use guard::{
    Guarded, MassDelete, guard, is_revocation, mass_delete, resource_count, revocation,
};

/// The kinds of resource, in dependency order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Tenancy,
    User,
    SupportAccount,
    Membership,
    Approval,
    SupportLink,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Tenancy,
        Kind::User,
        Kind::SupportAccount,
        Kind::Membership,
        Kind::Approval,
        Kind::SupportLink,
    ];

    /// The name used in addresses and JSON: `support_account`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tenancy => "tenancy",
            Kind::User => "user",
            Kind::SupportAccount => "support_account",
            Kind::Membership => "membership",
            Kind::Approval => "approval",
            Kind::SupportLink => "support_link",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// What a change does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Create,
    Update,
    Delete,
    /// Delete then create, for a change that cannot be made in place.
    Replace,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Replace => "replace",
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::Replace => "-/+",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        [
            Action::Create,
            Action::Update,
            Action::Delete,
            Action::Replace,
        ]
        .into_iter()
        .find(|a| a.as_str() == text)
    }
}

/// The value of one resource: what a row holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Tenancy(Tenancy),
    User(User),
    SupportAccount(SupportAccount),
    Membership,
    Approval(Approval),
    SupportLink(SupportLink),
}

/// One change to one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    /// The user id, or the tenancy name for the tenancy itself.
    pub id: String,
    pub action: Action,
    /// Why a replacement is forced, or that an update is a rename.
    pub reason: Option<String>,
    /// For a rename: the id the resource had before.
    pub renamed_from: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl Change {
    /// The Terraform-style address, e.g. `support_link.bob`.
    pub fn address(&self) -> String {
        format!("{}.{}", self.kind.as_str(), self.id)
    }
}

/// Counts for the summary line; a replacement counts in `add` and `destroy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

/// Every change that takes the actual state to the desired one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub tenancy: String,
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Delete => s.destroy += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
            }
        }
        s
    }

    /// Replaces the phone numbers in the plan's values with
    /// [`crate::model::REDACTED`], or [`crate::model::REDACTED_CHANGED`] on
    /// the after side of a change to the number, so that a redacted plan
    /// still shows *that* a phone changes. For display only: a redacted plan
    /// must never be saved or applied.
    pub fn redact_phones(&mut self) {
        use crate::model::{REDACTED, REDACTED_CHANGED};
        for change in &mut self.changes {
            let before = match &change.before {
                Some(Value::SupportAccount(a)) => Some(a.phone.clone()),
                _ => None,
            };
            if let Some(Value::SupportAccount(a)) = &mut change.after {
                let changed = before.as_ref().is_some_and(|b| *b != a.phone);
                a.phone = if changed { REDACTED_CHANGED } else { REDACTED }.to_string();
            }
            if let Some(Value::SupportAccount(a)) = &mut change.before {
                a.phone = REDACTED.to_string();
            }
        }
    }
}
