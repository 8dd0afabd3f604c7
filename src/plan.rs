//! Planning: the desired model and the actual model in, a list of changes out.
//!
//! Pure and deterministic: the same two models always give the same plan, in
//! the order SPEC §4 sets — deletes first, in reverse dependency order, then
//! creates, updates and replacements in dependency order (tenancy, user,
//! support account, membership, approval with an approver's own approval
//! before the ones it grants, link), each kind sorted by id. Renames
//! (`previously:`) come first of all, as moves that delete nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::model::{Approval, Model, SupportAccount, SupportLink, Tenancy, User};

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

    /// How many resources the plan deletes outright (replacements put back
    /// what they remove, so they do not count).
    pub fn deletions(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .count()
    }
}

/// The number of resources a model holds: what the mass-delete guard weighs
/// deletions against.
pub fn resource_count(model: &Model) -> usize {
    1 + model.users.len()
        + model.support_accounts.len()
        + model.memberships.len()
        + model.approvals.len()
        + model.support_links.len()
}

/// The mass-delete guard (SPEC §4): a plan that deletes more than 25% of the
/// existing resources, and more than 5, needs `--allow-mass-delete`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MassDelete {
    pub deletes: usize,
    pub existing: usize,
}

pub fn mass_delete(plan: &Plan, actual: Option<&Model>) -> Option<MassDelete> {
    let existing = actual.map_or(0, resource_count);
    let deletes = plan.deletions();
    (deletes > 5 && deletes * 4 > existing).then_some(MassDelete { deletes, existing })
}

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
/// `actual` deleted, in SPEC §4's order for deletes, and the tenancy itself
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

/// Puts the changes in SPEC §4 order.
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
fn approval_depths(model: &Model) -> BTreeMap<String, usize> {
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

/// The model a plan leads to from `actual`: what apply writes, computed
/// without a database (used to check plans and in tests).
pub fn apply_to(actual: Option<&Model>, plan: &Plan) -> Option<Model> {
    let mut model = actual.cloned();
    for change in &plan.changes {
        if let Some(old) = &change.renamed_from
            && let Some(m) = model.as_mut()
        {
            rename_user(m, old, &change.id);
        }
        match (&change.after, change.action) {
            (Some(Value::Tenancy(t)), _) => match model.as_mut() {
                Some(m) => m.tenancy = t.clone(),
                None => model = Some(Model::empty(t.clone())),
            },
            (after, _) => {
                let m = model.as_mut()?;
                let id = change.id.clone();
                match (change.kind, after) {
                    (Kind::User, Some(Value::User(u))) => {
                        m.users.insert(id, u.clone());
                    }
                    (Kind::User, None) => {
                        m.users.remove(&id);
                    }
                    (Kind::SupportAccount, Some(Value::SupportAccount(a))) => {
                        m.support_accounts.insert(id, a.clone());
                    }
                    (Kind::SupportAccount, None) => {
                        m.support_accounts.remove(&id);
                    }
                    (Kind::Membership, Some(_)) => {
                        m.memberships.insert(id);
                    }
                    (Kind::Membership, None) => {
                        m.memberships.remove(&id);
                    }
                    (Kind::Approval, Some(Value::Approval(a))) => {
                        m.approvals.insert(id, a.clone());
                    }
                    (Kind::Approval, None) => {
                        m.approvals.remove(&id);
                    }
                    (Kind::SupportLink, Some(Value::SupportLink(l))) => {
                        m.support_links.insert(id, l.clone());
                    }
                    (Kind::SupportLink, None) => {
                        m.support_links.remove(&id);
                    }
                    _ => return None,
                }
            }
        }
    }
    model
}

#[cfg(test)]
mod tests {
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
        assert_eq!(plan.deletions(), 0);
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
        let existing = resource_count(&actual);
        assert!(
            mass_delete(&plan_of(5), Some(&actual)).is_none(),
            "5 deletes never trip the guard"
        );
        let over = existing / 4 + 1;
        assert_eq!(
            mass_delete(&plan_of(over), Some(&actual)),
            Some(MassDelete {
                deletes: over,
                existing
            })
        );
        assert!(mass_delete(&plan_of(existing / 4), Some(&actual)).is_none());
    }
}
