//! The rules about the tenancy and each user: names, the CSI, ids, emails,
//! support accounts, renames, and the tenancy admin (rules 1–3 and 10).

use std::borrow::Cow;

use foldhash::{HashMap, HashMapExt as _};

use super::names::{fold_case, id_hint, is_valid_email, is_valid_id};
use super::{Checker, Declared, Keyed};
use crate::config::raw::RawSupportAccount;
use crate::config::{RawConfig, RawTenancy, Spanned};
use crate::diag::{Diagnostic, Location, Rule, is_invisible};
use crate::model::{REDACTED, REDACTED_CHANGED, iana_time_zone};

impl Checker {
    pub(super) fn tenancy<'a>(&mut self, raw: &'a RawConfig) -> Option<&'a RawTenancy> {
        let Some(first) = raw.tenancies.first() else {
            if self.unreadable.tenancy {
                return None;
            }
            self.push(
                Diagnostic::new(
                    Rule::TenancyMissing,
                    None,
                    "the config set has no `tenancy` section",
                )
                .with_hint("add `tenancy: { name: …, csi: \"…\", admin: … }` to one file"),
            );
            return None;
        };
        for extra in &raw.tenancies[1..] {
            self.push(
                Diagnostic::at(
                    Rule::TenancyDuplicate,
                    extra.location,
                    "a second `tenancy` section: a config set describes exactly one tenancy",
                )
                .with_related(first.location, "the first `tenancy` is")
                .with_hint("keep one `tenancy`; use a separate config set for another tenancy"),
            );
        }
        let t = &first.value;
        if !is_valid_id(&t.name) {
            self.push(
                Diagnostic::at(
                    Rule::InvalidTenancyName,
                    t.name.location,
                    format!("tenancy name `{}` is not a valid name", t.name.value),
                )
                .with_hint(id_hint(&t.name)),
            );
        }
        if t.csi.is_empty() || !t.csi.bytes().all(|b| b.is_ascii_digit()) {
            self.push(
                Diagnostic::at(
                    Rule::CsiNotDigits,
                    t.csi.location,
                    format!("CSI `{}` is not all digits", t.csi.value),
                )
                .with_hint("a CSI is the number on the support contract, e.g. \"20817431\""),
            );
        }
        Some(t)
    }

    /// Rule 3 and 10 for each user, and duplicate ids and emails.
    pub(super) fn users<'a>(&mut self, raw: &'a RawConfig) -> Keyed<'a, Declared<'a>> {
        let mut users: Keyed<Declared> = Keyed::with_capacity(raw.users.len());
        let mut emails: HashMap<Cow<str>, Location> = HashMap::with_capacity(raw.users.len());
        // A set of many users names few zones: each is looked up once.
        let mut zones: HashMap<&str, bool> = HashMap::new();
        for entry in &raw.users {
            let id = &entry.id;
            if let Some(first) = users.get(id.value.as_str()) {
                self.push(
                    Diagnostic::at(
                        Rule::DuplicateKey,
                        id.location,
                        format!("user `{}` is declared twice", id.value),
                    )
                    .with_related(first.id.location, "first declared")
                    .with_hint("a user id is declared in one place; rename or remove one"),
                );
                continue;
            }
            if !is_valid_id(id) {
                self.push(
                    Diagnostic::at(
                        Rule::InvalidUserId,
                        id.location,
                        format!("user id `{}` is not a valid id", id.value),
                    )
                    .with_hint(id_hint(id)),
                );
            }
            let user = &entry.user;
            self.email(&user.email, &mut emails);
            if let Some(account) = &user.support_account {
                self.support_account(account, &mut zones);
            }
            users.insert(&id.value, Declared { id, entry });
        }
        users.finish();
        self.renames(&users);
        users
    }

    /// Rule 3 for a user's email, and that no user before it has it (in
    /// any case), which `emails` holds.
    fn email<'a>(
        &mut self,
        email: &'a Spanned<String>,
        emails: &mut HashMap<Cow<'a, str>, Location>,
    ) {
        if !is_valid_email(email) {
            self.push(
                Diagnostic::at(
                    Rule::InvalidEmail,
                    email.location,
                    format!("`{}` is not a valid email address", email.value),
                )
                .with_hint("write it as `name@domain.example`"),
            );
        } else {
            let folded = fold_case(email);
            if let Some(&first) = emails.get(&folded) {
                self.push(
                    Diagnostic::at(
                        Rule::DuplicateEmail,
                        email.location,
                        format!("email `{}` is already used by another user", email.value),
                    )
                    .with_related(first, "first used")
                    .with_hint(
                        "emails are compared without regard to case; each user needs its own",
                    ),
                );
            } else {
                emails.insert(folded, email.location);
            }
        }
    }

    /// Rule 10 for a user's support account: its phone, and its time zone
    /// (each zone written looked up once, in `zones`).
    fn support_account<'a>(
        &mut self,
        account: &'a RawSupportAccount,
        zones: &mut HashMap<&'a str, bool>,
    ) {
        self.phone(&account.phone);
        let zone = account.timezone.value.as_str();
        let known = *zones.entry(zone).or_insert_with(|| {
            let canonical = iana_time_zone(zone);
            if let Some(canonical) = canonical.as_ref().filter(|c| *c != zone) {
                self.recased.insert(zone.to_string(), canonical.clone());
            }
            canonical.is_some()
        });
        if !known {
            let hint = self.timezone_hint(&account.timezone);
            self.push(
                Diagnostic::at(
                    Rule::InvalidTimezone,
                    account.timezone.location,
                    format!("`{}` is not an IANA time zone", account.timezone.value),
                )
                .with_hint(hint),
            );
        }
    }

    /// Rule 10: a phone Oracle Support can call. Not empty, not only
    /// characters that show nothing, and not the marker `--redact` writes
    /// in its place (an export with it is a copy to share, not to apply).
    fn phone(&mut self, phone: &Spanned<String>) {
        let written = phone.value.as_str();
        if written.trim() == REDACTED || written.trim() == REDACTED_CHANGED {
            self.push(
                Diagnostic::at(
                    Rule::RedactedPhone,
                    phone.location,
                    format!(
                        "support account phone is `{}`, the marker `--redact` writes in place of a number",
                        written.trim()
                    ),
                )
                .with_hint("a redacted export is a copy to share: applied, it would overwrite the real number; export without `--redact` for a copy to apply, or write the number here"),
            );
        } else if written.chars().all(is_invisible) {
            let message = if written.trim().is_empty() {
                "support account phone is empty".to_string()
            } else {
                format!(
                    "support account phone `{written}` has no visible character: it is not a number"
                )
            };
            self.push(
                Diagnostic::at(Rule::EmptyPhone, phone.location, message)
                    .with_hint("Oracle Support calls this number for severity 1 SRs"),
            );
        }
    }

    fn renames(&mut self, users: &Keyed<'_, Declared<'_>>) {
        let mut claimed: HashMap<&str, Location> = HashMap::new();
        for (id, declared) in users.iter() {
            let Some(previously) = &declared.entry.user.previously else {
                continue;
            };
            let old = previously.value.as_str();
            let problem = if !is_valid_id(old) {
                Some(format!("`{old}` is not a valid user id"))
            } else if old == *id {
                Some(format!("user `{id}` names itself as its previous id"))
            } else if users.contains_key(old) {
                Some(format!(
                    "`{old}` is still declared, so `{id}` cannot be its rename"
                ))
            } else {
                None
            };
            if let Some(message) = problem {
                self.push(
                    Diagnostic::at(Rule::InvalidRename, previously.location, message)
                        .with_hint("`previously` names the id a user had before a rename; remove it once applied"),
                );
                continue;
            }
            if let Some(&first) = claimed.get(old) {
                self.push(
                    Diagnostic::at(
                        Rule::InvalidRename,
                        previously.location,
                        format!("`{old}` is claimed as the previous id of two users"),
                    )
                    .with_related(first, "first claimed"),
                );
            } else {
                claimed.insert(old, previously.location);
            }
        }
    }

    /// Rule 2: the tenancy admin is declared and has a support account.
    pub(super) fn admin(&mut self, tenancy: &RawTenancy, users: &Keyed<'_, Declared<'_>>) {
        let admin = &tenancy.admin;
        if self.unreadable.users.contains(&admin.value) {
            return;
        }
        match users.get(admin.value.as_str()) {
            None => {
                let declare = format!(
                    "declare `{}` under `users:` with a `support_account`",
                    admin.value
                );
                let hint = self.reference_hint(&admin.value, users, &declare);
                self.push(
                    Diagnostic::at(
                        Rule::AdminNotDeclared,
                        admin.location,
                        format!("tenancy admin `{}` is not a declared user", admin.value),
                    )
                    .with_hint(hint),
                );
            }
            Some(declared) if declared.entry.user.support_account.is_none() => self.push(
                Diagnostic::at(
                    Rule::AdminWithoutSupportAccount,
                    admin.location,
                    format!("tenancy admin `{}` has no support account", admin.value),
                )
                .with_related(declared.id.location, "the user is declared")
                .with_hint(
                    "the CSI administrator needs a MOS account: add `support_account` to the user",
                ),
            ),
            Some(_) => {}
        }
    }
}
