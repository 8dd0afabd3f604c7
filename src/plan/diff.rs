//! The planner: desired against actual, renames, forced replacements, and
//! the plan order.

use super::*;

/// Renames that cannot be made: both the previous and the new id are in
/// the state, so moving one onto the other would lose a user. Each is
/// `(new, previous)`.
pub fn rename_conflicts(desired: &Model, actual: Option<&Model>) -> Vec<(String, String)> {
    let Some(actual) = actual else {
        return Vec::new();
    };
    desired
        .renames
        .iter()
        .filter(|(new, old)| actual.users.contains_key(*old) && actual.users.contains_key(*new))
        .map(|(new, old)| (new.clone(), old.clone()))
        .collect()
}

/// The plan of a tenancy's retirement (`supportctl retire`): every row of
/// `actual` deleted, in plan order for deletes, and the tenancy itself
/// last. Not a reconcile — no config set asks for it — so it is made here
/// and applied only by `Store::retire`.
pub fn retirement(actual: &Model) -> Plan {
    let mut plan = plan(&Model::empty(actual.tenancy.clone()), Some(actual));
    plan.changes.push(Change {
        kind: Kind::Tenancy,
        id: actual.tenancy.name.clone(),
        action: Action::Delete,
        reason: Some("retired: no config set manages it".to_string()),
        renamed_from: None,
        before: Some(Value::Tenancy(actual.tenancy.clone())),
        after: None,
    });
    plan
}

/// Plans the changes that take `actual` (absent: a tenancy not yet in
/// state) to `desired`.
pub fn plan(desired: &Model, actual: Option<&Model>) -> Plan {
    let mut changes = Vec::new();
    let Some(actual) = actual else {
        // Everything is new.
        let empty = empty_like(desired);
        push_tenancy(&mut changes, None, &desired.tenancy);
        diff_all(&mut changes, desired, &empty, &Forced::default());
        return finish(desired, changes);
    };

    // Renames first: move each renamed user, with everything attached, so
    // that the diff below compares like with like.
    // The state is copied only when a rename has something to move.
    let mut moved = std::borrow::Cow::Borrowed(actual);
    for (new, old) in &desired.renames {
        if moved.users.contains_key(old) && !moved.users.contains_key(new) {
            rename_user(moved.to_mut(), old, new);
            let user = moved.users[new].clone();
            changes.push(Change {
                kind: Kind::User,
                id: new.clone(),
                action: Action::Update,
                reason: Some(format!("renamed from `{old}`, with everything attached")),
                renamed_from: Some(old.clone()),
                before: Some(Value::User(actual.users[old].clone())),
                after: Some(Value::User(user)),
            });
        }
    }

    let mut forced = Forced::default();
    if moved.tenancy.csi != desired.tenancy.csi {
        forced.csi_changed = true;
    }
    join(
        desired.users.iter(),
        moved.users.iter(),
        |id, user, before| {
            if let (Some(user), Some(before)) = (user, before)
                && !before.email.eq_ignore_ascii_case(&user.email)
                && moved.support_accounts.contains_key(id)
            {
                forced.email_changed.insert(id.clone());
            }
        },
    );
    if moved.tenancy != desired.tenancy {
        push_tenancy(&mut changes, Some(&moved.tenancy), &desired.tenancy);
    }
    diff_all(&mut changes, desired, &moved, &forced);
    // A rename that also changed fields shows as one change: the move.
    merge_rename_updates(&mut changes);
    finish(desired, changes)
}

#[derive(Default)]
struct Forced {
    csi_changed: bool,
    email_changed: BTreeSet<String>,
}

impl Forced {
    /// Why a membership, approval or link of `id` must be replaced, if it must.
    fn grant_reason(&self, kind: Kind, id: &str) -> Option<String> {
        if self.csi_changed {
            return Some("tenancy.csi changed: grants belong to a CSI".to_string());
        }
        if kind != Kind::SupportLink && self.email_changed.contains(id) {
            return Some(format!(
                "user.{id} email changed: the support account is keyed by email"
            ));
        }
        None
    }
}

fn empty_like(desired: &Model) -> Model {
    Model::empty(desired.tenancy.clone())
}

fn push_tenancy(changes: &mut Vec<Change>, before: Option<&Tenancy>, after: &Tenancy) {
    changes.push(Change {
        kind: Kind::Tenancy,
        id: after.name.clone(),
        action: if before.is_some() {
            Action::Update
        } else {
            Action::Create
        },
        reason: None,
        renamed_from: None,
        before: before.cloned().map(Value::Tenancy),
        after: Some(Value::Tenancy(after.clone())),
    });
}

/// Moves user `old` to `new` in `model`, with its account, grants and every
/// reference to it.
pub fn rename_user(model: &mut Model, old: &str, new: &str) {
    fn move_key<V>(map: &mut BTreeMap<String, V>, old: &str, new: &str) {
        if let Some(v) = map.remove(old) {
            map.insert(new.to_owned(), v);
        }
    }
    move_key(&mut model.users, old, new);
    move_key(&mut model.support_accounts, old, new);
    move_key(&mut model.approvals, old, new);
    move_key(&mut model.support_links, old, new);
    if model.memberships.remove(old) {
        model.memberships.insert(new.to_owned());
    }
    for approval in model.approvals.values_mut() {
        if approval.approved_by == old {
            approval.approved_by = new.to_owned();
        }
    }
    for link in model.support_links.values_mut() {
        if link.via == old {
            link.via = new.to_owned();
        }
    }
    if model.tenancy.admin == old {
        model.tenancy.admin = new.to_owned();
    }
}

fn diff_map<V: Clone + PartialEq>(
    changes: &mut Vec<Change>,
    kind: Kind,
    desired: &BTreeMap<String, V>,
    actual: &BTreeMap<String, V>,
    wrap: impl Fn(V) -> Value,
    forced: &Forced,
) {
    join(desired.iter(), actual.iter(), |id, after, before| {
        let (action, reason, before, after) = match (before, after) {
            (None, None) => return,
            (None, Some(after)) => (Action::Create, None, None, Some(after)),
            (Some(before), None) => (Action::Delete, None, Some(before), None),
            (Some(before), Some(after)) => {
                let reason = match kind {
                    Kind::SupportAccount => forced.email_changed.contains(id).then(|| {
                        format!("user.{id} email changed: the support account is keyed by email")
                    }),
                    Kind::Approval | Kind::SupportLink => forced.grant_reason(kind, id),
                    _ => None,
                };
                if reason.is_none() && before == after {
                    return;
                }
                let action = if reason.is_some() {
                    Action::Replace
                } else {
                    Action::Update
                };
                (action, reason, Some(before), Some(after))
            }
        };
        changes.push(Change {
            kind,
            id: id.clone(),
            action,
            reason,
            renamed_from: None,
            before: before.map(|v| wrap(v.clone())),
            after: after.map(|v| wrap(v.clone())),
        });
    });
}

/// Walks two key-sorted sequences together, calling `each` once per key
/// with what either side holds for it, in key order: one comparison per
/// step, where looking every key up in the other side would cost a search.
fn join<'a, A, B>(
    mut left: impl Iterator<Item = (&'a String, A)>,
    mut right: impl Iterator<Item = (&'a String, B)>,
    mut each: impl FnMut(&'a String, Option<A>, Option<B>),
) {
    let (mut l, mut r) = (left.next(), right.next());
    loop {
        match (l.take(), r.take()) {
            (None, None) => break,
            (Some((key, a)), None) => {
                each(key, Some(a), None);
                l = left.next();
            }
            (None, Some((key, b))) => {
                each(key, None, Some(b));
                r = right.next();
            }
            (Some((ka, a)), Some((kb, b))) => match ka.cmp(kb) {
                std::cmp::Ordering::Less => {
                    each(ka, Some(a), None);
                    (l, r) = (left.next(), Some((kb, b)));
                }
                std::cmp::Ordering::Greater => {
                    each(kb, None, Some(b));
                    (l, r) = (Some((ka, a)), right.next());
                }
                std::cmp::Ordering::Equal => {
                    each(ka, Some(a), Some(b));
                    (l, r) = (left.next(), right.next());
                }
            },
        }
    }
}

fn diff_all(changes: &mut Vec<Change>, desired: &Model, actual: &Model, forced: &Forced) {
    diff_map(
        changes,
        Kind::User,
        &desired.users,
        &actual.users,
        Value::User,
        forced,
    );
    diff_map(
        changes,
        Kind::SupportAccount,
        &desired.support_accounts,
        &actual.support_accounts,
        Value::SupportAccount,
        forced,
    );
    let (wanted, held) = (
        desired.memberships.iter().map(|id| (id, ())),
        actual.memberships.iter().map(|id| (id, ())),
    );
    join(wanted, held, |id, wanted, held| {
        let (action, reason) = match (held, wanted) {
            (None, None) => return,
            (None, Some(())) => (Action::Create, None),
            (Some(()), None) => (Action::Delete, None),
            (Some(()), Some(())) => match forced.grant_reason(Kind::Membership, id) {
                Some(reason) => (Action::Replace, Some(reason)),
                None => return,
            },
        };
        changes.push(Change {
            kind: Kind::Membership,
            id: id.clone(),
            action,
            reason,
            renamed_from: None,
            before: (action != Action::Create).then_some(Value::Membership),
            after: (action != Action::Delete).then_some(Value::Membership),
        });
    });
    diff_map(
        changes,
        Kind::Approval,
        &desired.approvals,
        &actual.approvals,
        Value::Approval,
        forced,
    );
    diff_map(
        changes,
        Kind::SupportLink,
        &desired.support_links,
        &actual.support_links,
        Value::SupportLink,
        forced,
    );
}

/// When a renamed user also changed fields, the diff adds an update for the
/// new id beside the move: fold it into the move.
fn merge_rename_updates(changes: &mut Vec<Change>) {
    let renamed: BTreeSet<String> = changes
        .iter()
        .filter(|c| c.renamed_from.is_some())
        .map(|c| c.id.clone())
        .collect();
    let mut updates: BTreeMap<String, Value> = BTreeMap::new();
    changes.retain(|c| {
        if c.kind == Kind::User
            && c.renamed_from.is_none()
            && c.action == Action::Update
            && renamed.contains(&c.id)
        {
            if let Some(after) = &c.after {
                updates.insert(c.id.clone(), after.clone());
            }
            false
        } else {
            true
        }
    });
    for c in changes.iter_mut() {
        if c.renamed_from.is_some()
            && let Some(after) = updates.remove(&c.id)
        {
            c.after = Some(after);
        }
    }
}

/// Puts the changes in plan order (docs/guide/state.md).
fn finish(desired: &Model, mut changes: Vec<Change>) -> Plan {
    // Approvals are created after the approvals of their approvers: rank
    // each approval by the length of its chain to the tenancy admin.
    let ranked = |c: &Change| c.kind == Kind::Approval && c.action != Action::Delete;
    let depth = if changes.iter().any(ranked) {
        approval_depths(desired)
    } else {
        Default::default()
    };
    changes.sort_by(|a, b| {
        let phase = |c: &Change| match (c.renamed_from.is_some(), c.action) {
            (true, _) => 0,
            (false, Action::Delete) => 1,
            _ => 2,
        };
        let kind_rank = |c: &Change| {
            let k = c.kind as usize;
            if c.action == Action::Delete && c.renamed_from.is_none() {
                Kind::ALL.len() - k
            } else {
                k
            }
        };
        let approval_rank = |c: &Change| {
            if c.kind == Kind::Approval && c.action != Action::Delete {
                depth.get(&c.id).copied().unwrap_or(0)
            } else {
                0
            }
        };
        (phase(a), kind_rank(a), approval_rank(a), &a.id).cmp(&(
            phase(b),
            kind_rank(b),
            approval_rank(b),
            &b.id,
        ))
    });
    Plan {
        tenancy: desired.tenancy.name.clone(),
        changes,
    }
}

/// How far each approval is from the tenancy admin: 0 for one the admin
/// gave (or whose approver has no approval), one more than its approver's
/// otherwise; an approval whose chain loops (only a model not checked can
/// hold one) is as deep as the model has approvals, plus one. Each approval
/// is walked once, so a long chain costs its length, not its square.
pub(super) fn approval_depths(model: &Model) -> BTreeMap<String, usize> {
    let looped = model.approvals.len() + 1;
    let mut depths: HashMap<&str, usize> = HashMap::with_capacity(model.approvals.len());
    for id in model.approvals.keys() {
        // Up the chain to an approval whose depth is known, the chain's
        // root, or a loop; then down again, setting each depth on the way.
        let mut path: Vec<&str> = Vec::new();
        let mut on_path: HashSet<&str> = HashSet::new();
        let mut current = id.as_str();
        let below = loop {
            if let Some(&known) = depths.get(current) {
                break known;
            }
            let Some(a) = model.approvals.get(current) else {
                break 0;
            };
            if a.approved_by == model.tenancy.admin {
                depths.insert(current, 0);
                break 0;
            }
            if !on_path.insert(current) {
                break looped;
            }
            path.push(current);
            current = &a.approved_by;
        };
        let mut depth = below;
        for user in path.into_iter().rev() {
            depth = (depth + 1).min(looped);
            depths.insert(user, depth);
        }
    }
    model
        .approvals
        .keys()
        .map(|id| (id.clone(), depths.get(id.as_str()).copied().unwrap_or(0)))
        .collect()
}
