//! A reference to a user: whether it names a declared one, and when it
//! does not, the hint that names the user most likely meant.

use foldhash::{HashMap, HashMapExt as _};

use super::{Checker, Declared, Keyed};
use crate::config::Spanned;
use crate::diag::{Diagnostic, Rule};

impl Checker {
    fn unknown_user(
        &mut self,
        name: &Spanned<String>,
        users: &Keyed<'_, Declared<'_>>,
        what: &str,
    ) {
        let declare = format!(
            "declare it under `users:` as `{}: {{ email: … }}`",
            name.value
        );
        let hint = self.reference_hint(&name.value, users, &declare);
        self.push(
            Diagnostic::at(
                Rule::UnknownUser,
                name.location,
                format!("{what} `{}` is not a declared user", name.value),
            )
            .with_hint(hint),
        );
    }

    /// The hint for a reference to `name`, which no user is declared as.
    /// Most often the reference is what is wrong, so it names the declared
    /// user meant: the one whose email or display name `name` is, else the
    /// id closest to it — a likely typo alone, a distant one beside
    /// `declare`, the other way out.
    pub(super) fn reference_hint(
        &mut self,
        name: &str,
        users: &Keyed<'_, Declared<'_>>,
        declare: &str,
    ) -> String {
        if let Some((id, how)) = self.person(name, users) {
            return format!(
                "did you mean `{id}`? `{name}` is its {how}, and references name users by id"
            );
        }
        if let Some(best) = self.suggest_user(name, users) {
            return format!("did you mean `{best}`?");
        }
        match self.closest_user(name, users) {
            Some(closest) => format!(
                "if it means a declared user, write its id (the closest is `{closest}`); if it is a new user, {declare}"
            ),
            None => declare.to_string(),
        }
    }

    /// The declared user whose email, email's local part or display name
    /// `name` is (without regard to case), and which of them it is.
    fn person(
        &mut self,
        name: &str,
        users: &Keyed<'_, Declared<'_>>,
    ) -> Option<(String, &'static str)> {
        let people = self.people.get_or_insert_with(|| {
            let mut people = HashMap::with_capacity(users.len() * 2);
            for (&id, declared) in users.iter() {
                let user = &declared.entry.user;
                let email = user.email.value.to_lowercase();
                if let Some((local, _)) = email.split_once('@') {
                    people
                        .entry(local.to_string())
                        .or_insert((id.to_string(), "email's start"));
                }
                if let Some(display) = &user.name {
                    people
                        .entry(display.value.to_lowercase())
                        .or_insert((id.to_string(), "display name"));
                }
                people.insert(email, (id.to_string(), "email"));
            }
            people
        });
        people.get(&name.to_lowercase()).cloned()
    }

    /// The declared id most like `name`, however little, while the budget
    /// of comparisons lasts.
    fn closest_user<'u>(&mut self, name: &str, users: &Keyed<'u, Declared<'_>>) -> Option<&'u str> {
        if users.len() > self.suggestions_left {
            return None;
        }
        self.suggestions_left -= users.len();
        crate::diag::closest(name, users.keys().copied())
    }

    /// Checks a reference to a user; true when the user is declared.
    pub(super) fn known(
        &mut self,
        name: &Spanned<String>,
        users: &Keyed<'_, Declared<'_>>,
        what: &str,
    ) -> bool {
        if users.contains_key(name.value.as_str()) {
            true
        } else {
            if !self.unreadable.users.contains(&name.value) {
                self.unknown_user(name, users, what);
            }
            false
        }
    }
}
