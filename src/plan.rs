//! Planning: the desired model and the actual model in, a list of changes out.
//!
//! Pure and deterministic: the same two models always give the same plan, in
//! the plan order (README, *State, plans and applies*) — deletes first, in reverse dependency order, then
//! creates, updates and replacements in dependency order (tenancy, user,
//! support account, membership, approval with an approver's own approval
//! before the ones it grants, link), each kind sorted by id. Renames
//! (`previously:`) come first of all, as moves that delete nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::model::{Approval, Date, Model, SupportAccount, SupportLink, Tenancy, User};

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

/// The mass-delete guard (the README's *State, plans and applies*): a plan that deletes more than 25% of the
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

/// Puts the changes in plan order (README, *State, plans and applies*).
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
}
