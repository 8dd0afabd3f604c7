//! The mass-delete guard: what a plan deletes of what is in force, and the
//! revocations it never holds back.

use super::*;

/// The number of resources a model holds that are in force on `today`:
/// what the mass-delete guard weighs deletions against. A grant whose
/// `expires` day has begun already counts as absent everywhere else, so it
/// is not counted here either.
pub fn resource_count(model: &Model, today: Date) -> usize {
    1 + model.users.len()
        + model.support_accounts.len()
        + model.memberships.len()
        + model
            .approvals
            .values()
            .filter(|a| a.is_active(today))
            .count()
        + model
            .support_links
            .values()
            .filter(|l| l.is_active(today))
            .count()
}

/// The mass-delete guard (docs/guide/state.md): a plan that deletes more than 25% of the
/// existing resources, and more than 5, needs `--allow-mass-delete`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MassDelete {
    /// Deletions of resources in force (an expired grant's is not one).
    pub deletes: usize,
    /// Resources in force in the state.
    pub existing: usize,
    /// Changes held back, in whole or in part: every change that is not
    /// only a revocation or a rename.
    pub held: usize,
}

/// What the guard lets through: the plan to apply now, and why the rest is
/// held back when it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guarded<'a> {
    /// The whole plan, or only its revocations when the guard refuses.
    pub plan: std::borrow::Cow<'a, Plan>,
    /// Set when the plan deletes too much; its `held` changes (all but the
    /// revocations) were left out of `plan`, and none when `held` is 0.
    pub refused: Option<MassDelete>,
}

/// What of `change` takes access away, which no guard may hold back, as a
/// change of its own; `None` when it takes nothing away. What the guard
/// protects is the people and accounts a config set that went missing
/// would delete, never access the config or the calendar has already taken
/// away. So a grant (approval or support link) that is deleted is deleted;
/// one that is changed goes to the most both its old and its new value
/// allow (the narrower role, the privileges both grant, the earlier end; a
/// link moved to another administrator ends); one replaced (its CSI or
/// email changed) is deleted; a rename moves a user without deleting
/// anything, and goes along so that the rest names the users as the state
/// will. Nothing is created or widened.
pub fn revocation(change: &Change) -> Option<Change> {
    let removed = || Change {
        action: Action::Delete,
        reason: None,
        after: None,
        ..change.clone()
    };
    match (change.kind, change.action, &change.before, &change.after) {
        (Kind::User, Action::Update, _, _) if change.renamed_from.is_some() => Some(change.clone()),
        (Kind::Approval | Kind::SupportLink, Action::Delete | Action::Replace, _, _) => {
            Some(removed())
        }
        (Kind::Approval, Action::Update, Some(Value::Approval(b)), Some(Value::Approval(a))) => {
            let role = a.role.min(b.role);
            let both = a
                .privileges()
                .intersection(&b.privileges())
                .copied()
                .collect();
            let meet = Approval {
                role,
                access: match role {
                    crate::model::Role::Admin => b.access.clone(),
                    crate::model::Role::User => both,
                },
                approved_by: b.approved_by.clone(),
                expires: earlier_end(a.expires, b.expires),
            };
            narrowed(change, b == &meet, Value::Approval(meet))
        }
        (
            Kind::SupportLink,
            Action::Update,
            Some(Value::SupportLink(b)),
            Some(Value::SupportLink(a)),
        ) => {
            if a.via != b.via {
                return Some(removed());
            }
            let meet = SupportLink {
                via: b.via.clone(),
                expires: earlier_end(a.expires, b.expires),
            };
            narrowed(change, b == &meet, Value::SupportLink(meet))
        }
        _ => None,
    }
}

/// `change` taken only as far as `meet`: `None` when that is no change.
fn narrowed(change: &Change, unchanged: bool, meet: Value) -> Option<Change> {
    if unchanged {
        return None;
    }
    if change.after.as_ref() == Some(&meet) {
        return Some(change.clone());
    }
    Some(Change {
        reason: Some("only what it takes away: the rest is held back".to_string()),
        after: Some(meet),
        ..change.clone()
    })
}

/// The earlier of two ends of a grant (no day: never ends).
fn earlier_end(a: Option<Date>, b: Option<Date>) -> Option<Date> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether `change` only takes access away (or only renames): the guard
/// passes it whole.
pub fn is_revocation(change: &Change) -> bool {
    revocation(change).as_ref() == Some(change)
}

/// Whether the resource a change deletes was in force in `actual` on
/// `today`: deleting a grant that has expired takes nothing away.
fn deletes_something_in_force(change: &Change, actual: &Model, today: Date) -> bool {
    match change.kind {
        Kind::Approval => actual
            .approvals
            .get(&change.id)
            .is_none_or(|a| a.is_active(today)),
        Kind::SupportLink => actual
            .support_links
            .get(&change.id)
            .is_none_or(|l| l.is_active(today)),
        _ => true,
    }
}

/// Weighs a plan's deletions against the state (the mass-delete guard).
pub fn mass_delete(plan: &Plan, actual: Option<&Model>, today: Date) -> Option<MassDelete> {
    let actual = actual?;
    let existing = resource_count(actual, today);
    let deletes = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete && deletes_something_in_force(c, actual, today))
        .count();
    let held = plan.changes.iter().filter(|c| !is_revocation(c)).count();
    (deletes > 5 && deletes * 4 > existing).then_some(MassDelete {
        deletes,
        existing,
        held,
    })
}

/// The mass-delete guard applied: unless `allowed`, a plan that deletes too
/// much is cut down to its revocations, which land all the same, and the
/// rest is refused.
pub fn guard<'a>(
    plan: &'a Plan,
    actual: Option<&Model>,
    today: Date,
    allowed: bool,
) -> Guarded<'a> {
    use std::borrow::Cow;
    match mass_delete(plan, actual, today) {
        Some(refused) if !allowed && refused.held > 0 => Guarded {
            plan: Cow::Owned(Plan {
                changes: plan.changes.iter().filter_map(revocation).collect(),
                tenancy: plan.tenancy.clone(),
            }),
            refused: Some(refused),
        },
        // Over the limit, but every change is a revocation: nothing is held.
        Some(refused) if !allowed => Guarded {
            plan: Cow::Borrowed(plan),
            refused: Some(refused),
        },
        _ => Guarded {
            plan: Cow::Borrowed(plan),
            refused: None,
        },
    }
}
