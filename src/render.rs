//! Plans for people and for programs: the text plan and the JSON plan.
//!
//! The JSON plan (`format_version: 1`, docs/reference.md, *Commands* and *JSON formats*) is a public contract, so it
//! has its own types here, converted from and to the planner's types at this
//! boundary; the planner's types stay free to change. A saved plan is read
//! back through the same types. Nothing here does I/O.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::diag::{Palette, Tone, escape_control, escape_value};
use crate::hex::sha256_text;
use crate::model::{Approval, Date, Privilege, Role, SupportAccount, SupportLink, Tenancy, User};
use crate::plan::{Action, Change, Kind, Plan, Summary, Value};

/// The text plan's colours: the diagnostics' palette, which has a tone for
/// each action.
pub type PlanPalette = Palette;

/// The colour of a change's symbol.
fn action_tone(action: Action) -> Tone {
    match action {
        Action::Create => Tone::Create,
        Action::Update => Tone::Update,
        Action::Delete => Tone::Delete,
        Action::Replace => Tone::Replace,
    }
}

/// The fields of a value, in a fixed order, as display text (`None`: unset).
fn fields(value: &Value) -> Vec<(&'static str, Option<String>)> {
    let quoted = |s: &str| Some(format!("\"{}\"", escape_value(s)));
    let date = |d: &Option<Date>| d.map(|d| d.to_string());
    match value {
        Value::Tenancy(t) => vec![
            ("csi", quoted(&t.csi)),
            ("home_region", t.home_region.as_deref().and_then(quoted)),
            ("admin", quoted(&t.admin)),
        ],
        Value::User(u) => vec![
            ("email", quoted(&u.email)),
            ("name", u.name.as_deref().and_then(quoted)),
        ],
        Value::SupportAccount(a) => vec![
            ("phone", quoted(&a.phone)),
            ("timezone", quoted(&a.timezone)),
        ],
        Value::Membership => vec![],
        Value::Approval(a) => vec![
            ("role", Some(a.role.as_str().to_string())),
            (
                "access",
                Some(format!(
                    "[{}]",
                    a.access
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ),
            ("approved_by", quoted(&a.approved_by)),
            ("expires", date(&a.expires)),
        ],
        Value::SupportLink(l) => vec![("via", quoted(&l.via)), ("expires", date(&l.expires))],
    }
}

fn show(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("(none)")
}

/// One line of a change in the plan, as the text plan prints it and the
/// web view draws it: what it says, each value as display text (control
/// characters escaped, strings quoted), without its indentation or colour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanLine {
    /// The change itself: its symbol (by its action), its address, and why.
    Change {
        action: Action,
        address: String,
        reason: Option<String>,
    },
    /// A field of something created: `name: value`.
    Field { name: &'static str, value: String },
    /// A renamed id: `id: "old" → "new"`.
    Renamed { from: String, to: String },
    /// A changed field: `name: before → after` (`(none)` for unset).
    FieldChange {
        name: &'static str,
        before: String,
        after: String,
    },
    /// A multi-line field that changed: `name:`, then its [`PlanLine::Diff`]
    /// lines.
    DiffHead { name: &'static str },
    /// A line of a multi-line field's diff: `-`, `+` or ` ` and the line.
    Diff { sign: char, text: String },
}

/// The lines of one change: the change, then its fields (those set, for a
/// create; the renamed id and the fields that differ, for an update or a
/// replace; none for a delete).
pub fn plan_lines(change: &Change) -> Vec<PlanLine> {
    let mut lines = vec![PlanLine::Change {
        action: change.action,
        address: escape_control(&change.address()).into_owned(),
        reason: change
            .reason
            .as_deref()
            .map(|r| escape_control(r).into_owned()),
    }];
    let before = change.before.as_ref().map(fields).unwrap_or_default();
    let after = change.after.as_ref().map(fields).unwrap_or_default();
    match change.action {
        Action::Create => {
            for (name, value) in after.iter().filter(|(_, v)| v.is_some()) {
                lines.push(PlanLine::Field {
                    name,
                    value: show(value).to_string(),
                });
            }
        }
        Action::Delete => {}
        Action::Update | Action::Replace => {
            if let Some(old) = &change.renamed_from {
                lines.push(PlanLine::Renamed {
                    from: escape_control(old).into_owned(),
                    to: escape_control(&change.id).into_owned(),
                });
            }
            for ((name, b), (_, a)) in before.iter().zip(after.iter()) {
                if b != a {
                    field_change(&mut lines, name, b, a);
                }
            }
        }
    }
    lines
}

/// The lines of one field change; multi-line values get a line diff.
fn field_change(
    lines: &mut Vec<PlanLine>,
    name: &'static str,
    before: &Option<String>,
    after: &Option<String>,
) {
    let (b, a) = (show(before), show(after));
    if b.contains("\\n") || a.contains("\\n") {
        // Compare the lines of the text itself, without its quotes.
        let unquote = |t: &str| {
            t.strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .unwrap_or(t)
                .replace("\\n", "\n")
                + "\n"
        };
        let (b, a) = (unquote(b), unquote(a));
        lines.push(PlanLine::DiffHead { name });
        let diff = similar::TextDiff::from_lines(&b, &a);
        for change in diff.iter_all_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            };
            lines.push(PlanLine::Diff {
                sign,
                text: change.value().trim_end_matches('\n').to_string(),
            });
        }
    } else {
        lines.push(PlanLine::FieldChange {
            name,
            before: b.to_string(),
            after: a.to_string(),
        });
    }
}

/// The text plan: one line per change, changed fields, then the summary line.
pub fn plan_text(plan: &Plan, palette: Palette) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        out.push_str("No changes. The state matches the configuration.\n");
        return out;
    }
    let _ = writeln!(
        out,
        "supportctl will make these changes to tenancy `{}`:\n",
        escape_control(&plan.tenancy)
    );
    for change in &plan.changes {
        for line in plan_lines(change) {
            match line {
                PlanLine::Change {
                    action,
                    address,
                    reason,
                } => {
                    let _ = write!(
                        out,
                        "  {}{}{} {}{address}{}",
                        palette.of(action_tone(action)),
                        action.symbol(),
                        palette.reset(),
                        palette.of(Tone::Bold),
                        palette.reset()
                    );
                    if let Some(reason) = reason {
                        let _ = write!(out, "  ({reason})");
                    }
                    out.push('\n');
                }
                PlanLine::Field { name, value } => {
                    let _ = writeln!(out, "      {name}: {value}");
                }
                PlanLine::Renamed { from, to } => {
                    let _ = writeln!(out, "      id: \"{from}\" → \"{to}\"");
                }
                PlanLine::FieldChange {
                    name,
                    before,
                    after,
                } => {
                    let _ = writeln!(out, "      {name}: {before} → {after}");
                }
                PlanLine::DiffHead { name } => {
                    let _ = writeln!(out, "      {name}:");
                }
                PlanLine::Diff { sign, text } => {
                    let _ = writeln!(out, "        {sign} {text}");
                }
            }
        }
    }
    let s = plan.summary();
    let _ = writeln!(out, "\n{}", summary_line(s));
    out
}

pub fn summary_line(s: Summary) -> String {
    format!(
        "Plan: {} to add, {} to change, {} to destroy.",
        s.add, s.change, s.destroy
    )
}

// ---- The JSON plan: format_version 1 ----

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JsonPlan {
    pub format_version: u32,
    pub tenancy: String,
    pub lineage: String,
    pub serial: u64,
    pub config_digest: String,
    /// SHA-256 of the document without this field, as written on one line:
    /// a plan file edited or damaged after it was saved is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_digest: Option<String>,
    pub changes: Vec<JsonChange>,
    pub summary: JsonSummary,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JsonChange {
    pub address: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub action: String,
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    pub before: Option<JsonValue>,
    pub after: Option<JsonValue>,
}

/// [`JsonPlan`] as written: the same fields in the same order, borrowing
/// the plan.
#[derive(Serialize)]
struct JsonPlanOut<'a> {
    format_version: u32,
    tenancy: &'a str,
    lineage: &'a str,
    serial: u64,
    config_digest: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan_digest: Option<&'a str>,
    changes: ChangesOut<'a>,
    summary: JsonSummary,
}

struct ChangesOut<'a>(&'a [Change]);

impl Serialize for ChangesOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|c| JsonChange {
            address: c.address(),
            kind: c.kind.as_str().to_string(),
            id: c.id.clone(),
            action: c.action.as_str().to_string(),
            reason: c.reason.clone(),
            renamed_from: c.renamed_from.clone(),
            before: c.before.as_ref().map(to_json_value),
            after: c.after.as_ref().map(to_json_value),
        }))
    }
}

/// A resource's fields. Every field a kind has is present, `null` when unset.
#[derive(Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct JsonValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csi: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_region: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Option<String>>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct JsonSummary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

fn to_json_value(value: &Value) -> JsonValue {
    let expires = |d: &Option<Date>| Some(d.map(|d| d.to_string()));
    match value {
        Value::Tenancy(t) => JsonValue {
            name: Some(Some(t.name.clone())),
            csi: Some(t.csi.clone()),
            home_region: Some(t.home_region.clone()),
            admin: Some(t.admin.clone()),
            ..JsonValue::default()
        },
        Value::User(u) => JsonValue {
            email: Some(u.email.clone()),
            name: Some(u.name.clone()),
            ..JsonValue::default()
        },
        Value::SupportAccount(a) => JsonValue {
            phone: Some(a.phone.clone()),
            timezone: Some(a.timezone.clone()),
            ..JsonValue::default()
        },
        Value::Membership => JsonValue::default(),
        Value::Approval(a) => JsonValue {
            role: Some(a.role.as_str().to_string()),
            access: Some(a.access.iter().map(|p| p.as_str().to_string()).collect()),
            approved_by: Some(a.approved_by.clone()),
            expires: expires(&a.expires),
            ..JsonValue::default()
        },
        Value::SupportLink(l) => JsonValue {
            via: Some(l.via.clone()),
            expires: expires(&l.expires),
            ..JsonValue::default()
        },
    }
}

/// The JSON plan of `plan` against a state at `lineage`/`serial`, sealed
/// with its `plan_digest`.
pub fn plan_json(plan: &Plan, lineage: &str, serial: u64, config_digest: &str) -> String {
    let seal = plan_digest(plan, lineage, serial, config_digest);
    let doc = plan_doc(plan, lineage, serial, config_digest, Some(&seal));
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// The same JSON plan on one line: what the journal keeps, where nobody
/// reads it by eye and a large plan is half the size. Written once: the
/// unsealed line is what the seal hashes, so the seal is hashed from it and
/// put in after `config_digest`, where `plan_doc` places it.
pub fn plan_json_compact(plan: &Plan, lineage: &str, serial: u64, config_digest: &str) -> String {
    let doc = plan_doc(plan, lineage, serial, config_digest, None);
    let mut text = serde_json::to_string(&doc).unwrap_or_default();
    let seal = sha256_text(Sha256::digest(text.as_bytes()).as_slice());
    // Every string before it is escaped JSON, so this is the field itself.
    let field = format!(
        ",\"config_digest\":{}",
        serde_json::to_string(config_digest).unwrap_or_default()
    );
    if let Some(at) = text.find(&field) {
        text.insert_str(at + field.len(), &format!(",\"plan_digest\":\"{seal}\""));
    }
    text
}

/// The seal of a JSON plan: SHA-256 of the document without `plan_digest`,
/// written on one line. Reading a plan renders it again from what was read,
/// so any edit that changes what would be applied — a value, a change, the
/// tenancy, the lineage or serial — breaks the seal.
fn plan_digest(plan: &Plan, lineage: &str, serial: u64, config_digest: &str) -> String {
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(Sha256::new());
    let doc = plan_doc(plan, lineage, serial, config_digest, None);
    // Writing into a hash cannot fail.
    let _ = serde_json::to_writer(&mut hashing, &doc);
    sha256_text(hashing.0.finalize().as_slice())
}

fn plan_doc<'a>(
    plan: &'a Plan,
    lineage: &'a str,
    serial: u64,
    config_digest: &'a str,
    plan_digest: Option<&'a str>,
) -> JsonPlanOut<'a> {
    let s = plan.summary();
    // Each change becomes its JSON form only while it is written, so a plan
    // of a million changes is not held twice.
    JsonPlanOut {
        format_version: 1,
        tenancy: &plan.tenancy,
        lineage,
        serial,
        config_digest,
        plan_digest,
        changes: ChangesOut(&plan.changes),
        summary: JsonSummary {
            add: s.add,
            change: s.change,
            destroy: s.destroy,
        },
    }
}

/// A saved plan read back: the plan and the state it was made against.
#[derive(Debug)]
pub struct SavedPlan {
    pub plan: Plan,
    pub lineage: String,
    pub serial: u64,
    pub config_digest: String,
    /// Whether the plan's `plan_digest` is there and matches what was read:
    /// false for a plan edited or damaged after it was saved.
    pub sealed: bool,
}

/// Reads a saved JSON plan; the error says what is wrong with it.
pub fn parse_plan_json(text: &str) -> Result<SavedPlan, String> {
    let doc: JsonPlan =
        serde_json::from_str(text).map_err(|e| format!("not a supportctl plan: {e}"))?;
    if doc.format_version != 1 {
        return Err(format!(
            "plan format_version {} is not supported (this supportctl reads 1)",
            doc.format_version
        ));
    }
    let mut changes = Vec::with_capacity(doc.changes.len());
    for (i, c) in doc.changes.iter().enumerate() {
        let at = |what: String| format!("change {} (`{}`): {what}", i + 1, c.address);
        let kind = Kind::parse(&c.kind).ok_or_else(|| at(format!("unknown type `{}`", c.kind)))?;
        let action =
            Action::parse(&c.action).ok_or_else(|| at(format!("unknown action `{}`", c.action)))?;
        let value = |v: &Option<JsonValue>| -> Result<Option<Value>, String> {
            v.as_ref()
                .map(|v| from_json_value(kind, &c.id, v).map_err(&at))
                .transpose()
        };
        let change = Change {
            kind,
            id: c.id.clone(),
            action,
            reason: c.reason.clone(),
            renamed_from: c.renamed_from.clone(),
            before: value(&c.before)?,
            after: value(&c.after)?,
        };
        if change.address() != c.address {
            return Err(at("the address does not match its type and id".into()));
        }
        let needs_after = action != Action::Delete;
        if needs_after != change.after.is_some() {
            return Err(at(format!(
                "a {} must {}have `after`",
                action.as_str(),
                if needs_after { "" } else { "not " }
            )));
        }
        changes.push(change);
    }
    let plan = Plan {
        tenancy: doc.tenancy,
        changes,
    };
    let s = plan.summary();
    if (s.add, s.change, s.destroy) != (doc.summary.add, doc.summary.change, doc.summary.destroy) {
        return Err("the plan's summary does not match its changes".into());
    }
    let sealed = doc.plan_digest.as_deref()
        == Some(&plan_digest(
            &plan,
            &doc.lineage,
            doc.serial,
            &doc.config_digest,
        ));
    Ok(SavedPlan {
        plan,
        lineage: doc.lineage,
        serial: doc.serial,
        config_digest: doc.config_digest,
        sealed,
    })
}

fn from_json_value(kind: Kind, id: &str, v: &JsonValue) -> Result<Value, String> {
    fn need<T: Clone>(field: &Option<T>, name: &str) -> Result<T, String> {
        field.clone().ok_or_else(|| format!("missing `{name}`"))
    }
    let date = |e: &Option<Option<String>>| -> Result<Option<Date>, String> {
        match e.clone().flatten() {
            None => Ok(None),
            Some(text) => Date::parse(&text)
                .map(Some)
                .ok_or_else(|| format!("`{text}` is not a date")),
        }
    };
    Ok(match kind {
        Kind::Tenancy => Value::Tenancy(Tenancy {
            name: need(&v.name, "name")?.unwrap_or_else(|| id.to_string()),
            csi: need(&v.csi, "csi")?,
            home_region: v.home_region.clone().flatten(),
            admin: need(&v.admin, "admin")?,
        }),
        Kind::User => Value::User(User {
            email: need(&v.email, "email")?,
            name: v.name.clone().flatten(),
        }),
        Kind::SupportAccount => Value::SupportAccount(SupportAccount {
            phone: need(&v.phone, "phone")?,
            timezone: need(&v.timezone, "timezone")?,
        }),
        Kind::Membership => Value::Membership,
        Kind::Approval => Value::Approval(Approval {
            role: match need(&v.role, "role")?.as_str() {
                "user" => Role::User,
                "admin" => Role::Admin,
                other => return Err(format!("unknown role `{other}`")),
            },
            access: need(&v.access, "access")?
                .iter()
                .map(|p| Privilege::parse(p).ok_or_else(|| format!("unknown privilege `{p}`")))
                .collect::<Result<_, _>>()?,
            approved_by: need(&v.approved_by, "approved_by")?,
            expires: date(&v.expires)?,
        }),
        Kind::SupportLink => Value::SupportLink(SupportLink {
            via: need(&v.via, "via")?,
            expires: date(&v.expires)?,
        }),
    })
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::model::Model;

    fn model() -> Model {
        let mut m = Model::empty(Tenancy {
            name: "acme".into(),
            csi: "1".into(),
            home_region: None,
            admin: "dan".into(),
        });
        for id in ["dan", "alice", "bob"] {
            m.users.insert(
                id.into(),
                User {
                    email: format!("{id}@x.example"),
                    name: None,
                },
            );
        }
        for id in ["dan", "alice"] {
            m.support_accounts.insert(
                id.into(),
                SupportAccount {
                    phone: "1".into(),
                    timezone: "UTC".into(),
                },
            );
        }
        m.memberships.insert("alice".into());
        m.approvals.insert(
            "alice".into(),
            Approval {
                role: Role::User,
                access: [Privilege::CreateSr].into_iter().collect(),
                approved_by: "dan".into(),
                expires: Date::parse("2030-01-01"),
            },
        );
        m.support_links.insert(
            "bob".into(),
            SupportLink {
                via: "dan".into(),
                expires: None,
            },
        );
        m
    }

    #[test]
    fn a_saved_plan_reads_back_as_the_same_plan() {
        let desired = model();
        let mut actual = model();
        actual.tenancy.csi = "2".into();
        actual.users.remove("bob");
        actual.support_links.clear();
        actual.users.insert(
            "zed".into(),
            User {
                email: "z@x.example".into(),
                name: Some("Zed".into()),
            },
        );
        let plan = crate::plan::plan(&desired, Some(&actual));
        let text = plan_json(&plan, "lin", 7, "sha256:00");
        let saved = parse_plan_json(&text).unwrap();
        assert_eq!(saved.plan, plan);
        assert_eq!((saved.lineage.as_str(), saved.serial), ("lin", 7));
        assert!(!plan.is_empty());
        // The journal's one-line form is the same document.
        let compact = plan_json_compact(&plan, "lin", 7, "sha256:00");
        assert!(!compact.contains('\n'));
        let pretty: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&compact).unwrap(),
            pretty
        );
        assert!(parse_plan_json(&compact).unwrap().sealed);
    }

    #[test]
    fn an_empty_plan_says_so() {
        let m = model();
        let plan = crate::plan::plan(&m, Some(&m));
        assert_eq!(
            plan_text(&plan, PlanPalette::PLAIN),
            "No changes. The state matches the configuration.\n"
        );
    }

    #[test]
    fn tampered_plans_are_refused() {
        let plan = crate::plan::plan(&model(), None);
        let text = plan_json(&plan, "lin", 0, "sha256:00");
        let tampered = text.replacen("\"add\": ", "\"add\": 1", 1);
        assert!(parse_plan_json(&tampered).is_err());
        assert!(parse_plan_json("{}").is_err());
        assert!(
            parse_plan_json(&text.replace("\"format_version\": 1", "\"format_version\": 9"))
                .is_err()
        );
    }
}
