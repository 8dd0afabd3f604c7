//! A tenancy whole, as `supportctl state copy` moves it from one state to
//! another (docs/guide/state.md, *Moving a state*): its rows, its people,
//! its journal and its service requests, with every id and number they
//! were stored under, so that a copy reads back exactly as the original.
//!
//! Ids are kept, not given afresh: a journal entry's id is what `history`
//! prints, an SR's id is how users name it, and a person number is who an
//! SR belongs to. So a copy is refused when one of them is already taken in
//! the state it goes to, rather than renumbered.
//!
//! Both backends read and write the same [`TenancyDump`]; nothing in it is
//! an engine's.

use std::collections::BTreeMap;

use crate::model::Model;

use super::{Comment, JournalPlan, ServiceRequest};

/// Everything of one tenancy name in a state: its rows when it has them,
/// and what outlives them (journal, SRs, remembered former ids) when it
/// was retired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenancyDump {
    pub name: String,
    /// The tenancy's rows; `None` for a retired tenancy, whose journal and
    /// SRs are kept without them.
    pub rows: Option<TenancyRows>,
    /// The ids a person had before a rename: (old id, person), sorted.
    pub former_ids: Vec<(String, i64)>,
    /// Its journal entries, by id.
    pub journal: Vec<JournalRow>,
    /// Its SRs, by id, each with its comments.
    pub service_requests: Vec<ServiceRequestDump>,
}

/// A tenancy's rows, its serial, and who each of its users is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenancyRows {
    /// The rows; `renames` is empty.
    pub model: Model,
    pub serial: i64,
    /// Each user's person number: user id → person.
    pub persons: BTreeMap<String, i64>,
}

/// One journal entry as stored, every column: copied, not re-read into a
/// [`super::JournalRecord`] and written again, so that nothing (a source
/// half recorded, a stored text) is lost or normalised on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalRow {
    pub id: i64,
    /// `apply` or `retire`.
    pub kind: String,
    pub time: String,
    pub serial: i64,
    pub add_count: i64,
    pub change_count: i64,
    pub destroy_count: i64,
    /// The plan, compressed: an entry written before SQLite's schema v3
    /// held its plan as text, and comes out compressed here like the rest.
    pub plan: JournalPlan,
    pub config_digest: String,
    pub git_commit: Option<String>,
    /// The JSON array as stored.
    pub git_changes: Option<String>,
    pub applied_by: Option<String>,
    pub host: Option<String>,
    pub config_path: Option<String>,
    pub pid: Option<i64>,
}

impl JournalRow {
    /// The plan's compressed bytes, as both backends store them.
    pub fn plan_zlib(&self) -> &[u8] {
        &self.plan.zlib
    }

    /// The length of the plan's JSON, in bytes.
    pub fn plan_size(&self) -> i64 {
        i64::try_from(self.plan.len).unwrap_or(i64::MAX)
    }
}

/// An SR with the ids of its comments (which [`ServiceRequest`] leaves
/// out): `request.comments` is empty, and `comments` holds them by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRequestDump {
    pub request: ServiceRequest,
    pub comments: Vec<(i64, Comment)>,
}

impl JournalPlan {
    /// A plan already compressed, as a journal row holds it.
    pub(super) fn stored(zlib: Vec<u8>, len: usize) -> JournalPlan {
        JournalPlan { zlib, len }
    }
}

impl TenancyDump {
    /// How many journal entries and SRs the tenancy has: what `state copy`
    /// reports.
    pub fn counts(&self) -> (usize, usize) {
        (self.journal.len(), self.service_requests.len())
    }

    /// Every person number the tenancy uses: its users', its former ids',
    /// its SRs' openers' and owners'. None may be another person's in the
    /// state it is copied to.
    pub fn persons(&self) -> Vec<i64> {
        let mut persons: Vec<i64> = self
            .rows
            .iter()
            .flat_map(|r| r.persons.values().copied())
            .chain(self.former_ids.iter().map(|(_, p)| *p))
            .chain(self.service_requests.iter().flat_map(|s| {
                [s.request.opener, s.request.owner_person]
                    .into_iter()
                    .flatten()
                    .map(|p| p.0)
            }))
            .collect();
        persons.sort_unstable();
        persons.dedup();
        persons
    }
}

/// What keeps a set of dumps from being copied into a state, in words (the
/// tenancies first, then each kind of id in turn, stopping at the first
/// kind that clashes), or `None` when nothing clashes. `taken`
/// answers for a kind of id (`tenancy`, `journal entry`, `SR`, `comment`,
/// `person`) which of the given ones the state already holds.
pub(super) fn clash(
    dumps: &[TenancyDump],
    mut taken: impl FnMut(IdKind, &[i64], &[String]) -> Result<Vec<String>, super::StateError>,
) -> Result<Option<String>, super::StateError> {
    let names: Vec<String> = dumps.iter().map(|d| d.name.clone()).collect();
    let held = taken(IdKind::Tenancy, &[], &names)?;
    if !held.is_empty() {
        return Ok(Some(format!(
            "it already holds {} {} (rows, journal or SRs)",
            if held.len() == 1 {
                "tenancy"
            } else {
                "tenancies"
            },
            listed(&held)
        )));
    }
    let journal: Vec<i64> = dumps
        .iter()
        .flat_map(|d| d.journal.iter().map(|j| j.id))
        .collect();
    let requests: Vec<i64> = dumps
        .iter()
        .flat_map(|d| d.service_requests.iter().map(|s| s.request.id))
        .collect();
    let comments: Vec<i64> = dumps
        .iter()
        .flat_map(|d| {
            d.service_requests
                .iter()
                .flat_map(|s| s.comments.iter().map(|(id, _)| *id))
        })
        .collect();
    let persons: Vec<i64> = dumps.iter().flat_map(TenancyDump::persons).collect();
    for (kind, ids) in [
        (IdKind::Journal, journal),
        (IdKind::ServiceRequest, requests),
        (IdKind::Comment, comments),
        (IdKind::Person, persons),
    ] {
        if ids.is_empty() {
            continue;
        }
        let held = taken(kind, &ids, &[])?;
        if !held.is_empty() {
            return Ok(Some(if held.len() == 1 {
                format!("its {} {} is already taken there", kind.noun(), held[0])
            } else {
                format!(
                    "its {}s {} are already taken there",
                    kind.noun(),
                    listed_plain(&held)
                )
            }));
        }
    }
    Ok(None)
}

/// The kinds of id a copy keeps, and so must find free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IdKind {
    Tenancy,
    Journal,
    ServiceRequest,
    Comment,
    Person,
}

impl IdKind {
    /// What one is called in a refusal.
    fn noun(self) -> &'static str {
        match self {
            IdKind::Tenancy => "tenancy",
            IdKind::Journal => "journal entry id",
            IdKind::ServiceRequest => "SR id",
            IdKind::Comment => "comment id",
            IdKind::Person => "person number",
        }
    }
}

/// At most five names, quoted, and how many more.
fn listed(names: &[String]) -> String {
    let shown: Vec<String> = names
        .iter()
        .take(5)
        .map(|n| format!("`{}`", crate::diag::escape_control(n)))
        .collect();
    more(shown, names.len())
}

/// At most five ids, and how many more.
fn listed_plain(ids: &[String]) -> String {
    more(ids.iter().take(5).cloned().collect(), ids.len())
}

fn more(shown: Vec<String>, all: usize) -> String {
    let mut text = shown.join(", ");
    if all > shown.len() {
        text.push_str(&format!(" and {} more", all - shown.len()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clash_names_the_first_few_and_counts_the_rest() {
        let dumps: Vec<TenancyDump> = (1..=7)
            .map(|i| TenancyDump {
                name: format!("t{i}"),
                rows: None,
                former_ids: Vec::new(),
                journal: Vec::new(),
                service_requests: Vec::new(),
            })
            .collect();
        let found = clash(&dumps, |kind, _, names| {
            assert_eq!(kind, IdKind::Tenancy);
            Ok(names.to_vec())
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            found,
            "it already holds tenancies `t1`, `t2`, `t3`, `t4`, `t5` and 2 more (rows, journal or SRs)"
        );
    }
}
