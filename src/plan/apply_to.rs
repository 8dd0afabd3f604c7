//! `apply_to`: the pure twin of the store's apply.

use super::*;

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
