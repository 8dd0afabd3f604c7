//! Merging: each file's tree read into the sections of a [`RawConfig`]
//! (every entry on its own, a bad one reported and skipped), mapping keys
//! written twice reported, and the files' sections put together in order.

use serde::Deserialize;

use super::de::{DeError, DeErrorKind, NodeDe, location_of};
use super::raw;
use super::yaml::{Node, NodeKind};
use super::{RawConfig, RawTenancy, RawUser, RawUserEntry, Spanned, Unreadable};
use crate::diag::{Diagnostic, Location, Rule, did_you_mean};

/// Reads the tree of one file, `file` in the set's sources, into `raw`:
/// its mapping keys written twice reported (the first kept), then each
/// section's entries, a bad one reported and skipped.
pub(super) fn merge(
    root: &mut Node,
    file: usize,
    source: &str,
    raw: &mut RawConfig,
    diagnostics: &mut Vec<Diagnostic>,
) {
    remove_duplicate_keys(root, file, source, diagnostics);
    let mut merger = Merger {
        file,
        source,
        raw,
        diagnostics,
    };
    merger.sections(root);
}

/// Reports every mapping key written twice in one mapping, naming both
/// places, and keeps the first.
fn remove_duplicate_keys(
    node: &mut Node,
    file: usize,
    source: &str,
    diagnostics: &mut Vec<Diagnostic>,
) {
    match &mut node.kind {
        NodeKind::Seq(items) => {
            for item in items {
                remove_duplicate_keys(item, file, source, diagnostics);
            }
        }
        // Most mappings are a handful of fields: compare keys pairwise
        // rather than build a map for each (a 100k-user file has 200k).
        NodeKind::Map(entries)
            if entries.len() <= 16 && {
                let keys: Vec<_> = entries.iter().map(|(k, _)| k.scalar_text(source)).collect();
                keys.iter().enumerate().all(|(i, key)| {
                    key.is_none() || !keys[..i].iter().any(|earlier| earlier == key)
                })
            } =>
        {
            for (_, value) in entries {
                remove_duplicate_keys(value, file, source, diagnostics);
            }
        }
        NodeKind::Map(entries) => {
            let mut first: foldhash::HashMap<String, Location> =
                foldhash::HashMapExt::with_capacity(entries.len());
            entries.retain(|(key, _)| {
                let Some(text) = key.scalar_text(source) else {
                    return true;
                };
                let here = location_of(key, file);
                match first.get(text.as_ref()) {
                    Some(&earlier) => {
                        diagnostics.push(
                            Diagnostic::at(
                                Rule::DuplicateKey,
                                here,
                                format!("key `{text}` is written twice in this mapping"),
                            )
                            .with_related(earlier, "first written")
                            .with_hint("remove one of them; only the first is read"),
                        );
                        false
                    }
                    None => {
                        first.insert(text.into_owned(), here);
                        true
                    }
                }
            });
            for (_, value) in entries {
                remove_duplicate_keys(value, file, source, diagnostics);
            }
        }
        _ => {}
    }
}

fn de_diagnostic(error: DeError, fallback: Location) -> Diagnostic {
    let rule = match error.kind {
        DeErrorKind::InvalidType => Rule::InvalidType,
        DeErrorKind::MissingField => Rule::MissingField,
        DeErrorKind::UnknownField => Rule::UnknownField,
        DeErrorKind::DuplicateField => Rule::DuplicateKey,
    };
    let mut d = Diagnostic::at(rule, error.location.unwrap_or(fallback), error.message);
    d.hint = error.hint;
    d
}

/// Merges the sections of one file into the raw config.
struct Merger<'a> {
    file: usize,
    source: &'a str,
    raw: &'a mut RawConfig,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl<'a> Merger<'a> {
    fn here(&self, node: &Node) -> Location {
        location_of(node, self.file)
    }

    /// Reads one entry; a failure becomes a diagnostic (its message led by
    /// `what`, when given) and the entry is skipped.
    fn read<T: Deserialize<'a>>(&mut self, node: &'a Node, what: Option<&str>) -> Option<T> {
        let de = NodeDe::new(node, self.file, self.source);
        match T::deserialize(de) {
            Ok(value) => Some(value),
            Err(e) => {
                let mut d = de_diagnostic(e, de.location());
                if let Some(what) = what {
                    d.message = format!("{what}: {}", d.message);
                }
                self.diagnostics.push(d);
                None
            }
        }
    }

    /// The text of the `user:` of a list entry, if it has a readable one.
    fn user_of(&self, entry: &Node) -> Option<String> {
        let NodeKind::Map(fields) = &entry.kind else {
            return None;
        };
        fields
            .iter()
            .find(|(k, _)| k.scalar_text(self.source).as_deref() == Some("user"))
            .and_then(|(_, v)| v.scalar_text(self.source))
            .map(|t| t.into_owned())
    }

    fn sections(&mut self, root: &'a Node) {
        let entries = match &root.kind {
            NodeKind::Null => return,
            NodeKind::Map(entries) => entries,
            other => {
                self.diagnostics.push(
                    Diagnostic::at(
                        Rule::InvalidType,
                        self.here(root),
                        format!(
                            "a config file holds a mapping of sections, found {}",
                            other.describe()
                        ),
                    )
                    .with_hint(format!("the sections are {}", backticked(raw::SECTIONS))),
                );
                return;
            }
        };
        for (key, value) in entries {
            let key_location = self.here(key);
            let name = key.scalar_text(self.source).unwrap_or_default();
            match name.as_ref() {
                "tenancy" => match self.read::<Spanned<RawTenancy>>(value, Some("tenancy")) {
                    Some(mut t) => {
                        // A second tenancy is pointed at by its key.
                        t.location = key_location;
                        self.raw.tenancies.push(t);
                    }
                    None => self.raw.unreadable.tenancy = true,
                },
                "users" => self.users(value),
                "memberships" => {
                    for (item, user) in self.list(value, "memberships") {
                        match self.read(item, None) {
                            Some(m) => self.raw.memberships.push(m),
                            None => self.raw.unreadable.memberships.extend(user),
                        }
                    }
                }
                "approvals" => {
                    for (item, user) in self.list(value, "approvals") {
                        match self.read(item, None) {
                            Some(a) => self.raw.approvals.push(a),
                            None => self.raw.unreadable.approvals.extend(user),
                        }
                    }
                }
                "support_links" => {
                    for (item, user) in self.list(value, "support_links") {
                        match self.read(item, None) {
                            Some(l) => self.raw.support_links.push(l),
                            None => self.raw.unreadable.support_links.extend(user),
                        }
                    }
                }
                other => {
                    let hint = match did_you_mean(other, raw::SECTIONS.iter().copied()) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("the sections are {}", backticked(raw::SECTIONS)),
                    };
                    self.diagnostics.push(
                        Diagnostic::at(
                            Rule::UnknownField,
                            key_location,
                            format!("unknown section `{other}`"),
                        )
                        .with_hint(hint),
                    );
                }
            }
        }
    }

    fn users(&mut self, value: &'a Node) {
        let entries = match &value.kind {
            NodeKind::Null => return,
            NodeKind::Map(entries) => entries,
            other => {
                self.diagnostics.push(
                    Diagnostic::at(
                        Rule::InvalidType,
                        self.here(value),
                        format!(
                            "`users` is a mapping of user id to user, found {}",
                            other.describe()
                        ),
                    )
                    .with_hint("write each user as `id: { email: … }` under `users:`"),
                );
                return;
            }
        };
        self.raw.users.reserve(entries.len());
        for (key, value) in entries {
            let key_location = self.here(key);
            let Some(id) = key.scalar_text(self.source) else {
                self.diagnostics.push(Diagnostic::at(
                    Rule::InvalidType,
                    key_location,
                    format!("a user id is a string, found {}", key.kind.describe()),
                ));
                continue;
            };
            let id = Spanned {
                value: id.into_owned(),
                location: key_location,
            };
            let what = format!("user `{}`", id.value);
            let errors_before = self.diagnostics.len();
            match self.read::<RawUser>(value, Some(&what)) {
                Some(user) => self.raw.users.push(RawUserEntry { id, user }),
                None => {
                    // A missing field is about the user as a whole: point at its id.
                    if let Some(d) = self.diagnostics.get_mut(errors_before)
                        && d.rule == Rule::MissingField
                    {
                        d.location = Some(key_location);
                    }
                    self.raw.unreadable.users.insert(id.value);
                }
            }
        }
    }

    /// The entries of a list section, each with the user it names if readable.
    fn list(&mut self, value: &'a Node, section: &str) -> Vec<(&'a Node, Option<String>)> {
        match &value.kind {
            NodeKind::Null => Vec::new(),
            NodeKind::Seq(items) => items.iter().map(|i| (i, self.user_of(i))).collect(),
            other => {
                self.diagnostics.push(
                    Diagnostic::at(
                        Rule::InvalidType,
                        self.here(value),
                        format!("`{section}` is a list, found {}", other.describe()),
                    )
                    .with_hint(format!(
                        "write each entry as `- user: …` under `{section}:`"
                    )),
                );
                Vec::new()
            }
        }
    }
}

fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl RawConfig {
    /// The entries of every file, in order: moved, each section into a
    /// vector made once at its final size.
    pub(super) fn concat(mut parts: Vec<RawConfig>) -> RawConfig {
        fn section<T>(parts: &mut [RawConfig], of: fn(&mut RawConfig) -> &mut Vec<T>) -> Vec<T> {
            let mut all = Vec::with_capacity(parts.iter_mut().map(|p| of(p).len()).sum());
            for part in parts.iter_mut() {
                all.append(of(part));
            }
            all
        }
        let mut all = RawConfig {
            tenancies: section(&mut parts, |p| &mut p.tenancies),
            users: section(&mut parts, |p| &mut p.users),
            memberships: section(&mut parts, |p| &mut p.memberships),
            approvals: section(&mut parts, |p| &mut p.approvals),
            support_links: section(&mut parts, |p| &mut p.support_links),
            unreadable: Unreadable::default(),
        };
        for part in parts {
            let (mine, theirs) = (&mut all.unreadable, part.unreadable);
            mine.tenancy |= theirs.tenancy;
            mine.users.extend(theirs.users);
            mine.memberships.extend(theirs.memberships);
            mine.approvals.extend(theirs.approvals);
            mine.support_links.extend(theirs.support_links);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::super::Loaded;
    use super::super::load::load_file;
    use super::*;

    fn load_text(text: &str) -> (Loaded, Vec<Diagnostic>) {
        let mut loaded = Loaded::default();
        let mut diagnostics = Vec::new();
        let (_, text) = load_file(0, text.as_bytes(), &mut loaded.raw, &mut diagnostics);
        loaded.sources.add("t.yaml".into(), text);
        (loaded, diagnostics)
    }

    #[test]
    fn every_bad_entry_is_reported_and_good_ones_kept() {
        let (loaded, diags) = load_text(
            "users:\n  a: { email: a@x.example, emial: 1 }\n  b: { name: B }\n  c: { email: c@x.example }\n",
        );
        let rules: Vec<_> = diags
            .iter()
            .map(|d| (d.rule, d.location.unwrap().line))
            .collect();
        assert_eq!(
            rules,
            vec![(Rule::UnknownField, 2), (Rule::MissingField, 3)]
        );
        assert_eq!(diags[0].hint.as_deref(), Some("did you mean `email`?"));
        assert_eq!(loaded.raw.users.len(), 1);
        assert_eq!(loaded.raw.users[0].id.value, "c");
    }

    #[test]
    fn values_keep_their_places() {
        let (loaded, diags) = load_text("approvals:\n  - user: bob\n    role: user\n");
        assert!(diags.is_empty(), "{diags:?}");
        let approval = &loaded.raw.approvals[0];
        assert_eq!(approval.user.value, "bob");
        let l = approval.user.location;
        assert_eq!((l.line, l.column, l.len), (2, 11, 3));
    }

    #[test]
    fn a_wrong_enum_value_gets_a_hint() {
        let (_, diags) = load_text("approvals:\n  - user: bob\n    role: admn\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].rule, Rule::InvalidType);
        assert_eq!(diags[0].location.unwrap().line, 3);
        assert!(diags[0].hint.as_deref().unwrap().contains("`admin`"));
    }

    #[test]
    fn duplicate_mapping_keys_name_both_places() {
        let (_, diags) =
            load_text("users:\n  a: { email: a@x.example }\n  a: { email: b@x.example }\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].rule, Rule::DuplicateKey);
        assert_eq!(diags[0].location.unwrap().line, 3);
        assert_eq!(diags[0].related[0].location.line, 2);
    }

    #[test]
    fn scalars_and_lists_at_the_top_are_errors() {
        for text in ["- a\n- b\n", "hello\n"] {
            let (_, diags) = load_text(text);
            assert_eq!(diags[0].rule, Rule::InvalidType, "{text}");
        }
        let (_, diags) = load_text("");
        assert!(diags.is_empty());
    }
}
