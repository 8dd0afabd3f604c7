//! Service requests belong to people and to a CSI, not to ids (docs/DOMAIN.md §5,
//! decisions): random histories of users created, deleted, renamed (in
//! chains and cycles), ids re-used, grants and links changed and the CSI
//! changed, with SRs opened and commented on, run through the real store on
//! a temporary SQLite file. After every step the store is held against a
//! reference that knows people only as the test made them:
//!
//! - a person is made when a user is created, moved by a rename, and never
//!   made again; the store's persons must match the reference's one for one,
//!   over the whole history (so a re-used id is never the old person);
//! - every SR keeps the persons who opened and owned it and the CSI it was
//!   opened under;
//! - who sees each SR, and who may comment on it and where, is decided by
//!   the person and the CSI: the reference decides from its own people, the
//!   store's side from the store's.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;

use super::{JournalEntry, JournalPlan, Store};
use crate::access::{self, Channel, Path as AccessPath};
use crate::model::{
    Approval, Date, Model, Person, Privilege, Role, SupportAccount, SupportLink, Tenancy, User,
};
use crate::plan;
use crate::state::{Comment, NewServiceRequest};

/// The ids a history draws from: few, so that ids are re-used and renames
/// run into chains and cycles.
const IDS: [&str; 4] = ["a", "b", "c", "d"];
/// The CSIs a tenancy moves between, back and forth.
const CSIS: [&str; 3] = ["111", "222", "333"];
const TENANCY: &str = "t";

fn today() -> Date {
    Date::parse("2026-11-24").expect("a date")
}

/// What a user is granted.
#[derive(Clone, Copy, Debug)]
enum Grant {
    Nothing,
    /// A support account and a membership request, not approved.
    Pending,
    Member {
        create: bool,
        view: bool,
    },
    Admin,
    /// Linked through the administrator at this index among those there are.
    Linked(usize),
}

#[derive(Clone, Debug)]
enum Step {
    Create(usize, Grant),
    Delete(usize),
    Rename(usize, usize),
    Regrant(usize, Grant),
    SetCsi(usize),
    Open(usize),
    Comment(usize, usize),
}

fn grant() -> impl Strategy<Value = Grant> {
    prop_oneof![
        1 => Just(Grant::Nothing),
        1 => Just(Grant::Pending),
        3 => (any::<bool>(), any::<bool>()).prop_map(|(create, view)| Grant::Member { create, view }),
        2 => Just(Grant::Admin),
        3 => (0usize..4).prop_map(Grant::Linked),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let id = 0..IDS.len();
    prop_oneof![
        3 => (id.clone(), grant()).prop_map(|(i, g)| Step::Create(i, g)),
        2 => id.clone().prop_map(Step::Delete),
        3 => (id.clone(), id.clone()).prop_map(|(a, b)| Step::Rename(a, b)),
        2 => (id.clone(), grant()).prop_map(|(i, g)| Step::Regrant(i, g)),
        1 => (0..CSIS.len()).prop_map(Step::SetCsi),
        4 => id.clone().prop_map(Step::Open),
        3 => (id, any::<usize>()).prop_map(|(i, pick)| Step::Comment(i, pick)),
    ]
}

/// An SR as the reference knows it: by the test's own person numbers.
#[derive(Debug)]
struct RefSr {
    id: i64,
    opener: u32,
    owner: u32,
    csi: String,
    comments: usize,
}

/// The history so far, and the store it runs against.
struct History {
    store: Store,
    serial: u64,
    /// The config the next apply asks for.
    desired: Model,
    /// The reference's people: who each id is now.
    people: BTreeMap<String, u32>,
    next_person: u32,
    srs: Vec<RefSr>,
    /// The reference's persons and the store's, matched one for one over the
    /// whole history.
    to_store: BTreeMap<u32, Person>,
    to_ref: BTreeMap<Person, u32>,
    made: usize,
}

fn account() -> SupportAccount {
    SupportAccount {
        phone: "+82 2 555 0100".into(),
        timezone: "UTC".into(),
    }
}

impl History {
    fn new(path: &Path) -> History {
        let mut desired = Model::empty(Tenancy {
            name: TENANCY.into(),
            csi: CSIS[0].into(),
            home_region: None,
            admin: IDS[0].into(),
        });
        desired.users.insert(
            IDS[0].into(),
            User {
                email: "a0@x.example".into(),
                name: None,
            },
        );
        desired.support_accounts.insert(IDS[0].into(), account());
        let mut history = History {
            store: Store::open(path).expect("the store opens"),
            serial: 0,
            desired,
            people: BTreeMap::from([(IDS[0].to_string(), 0)]),
            next_person: 1,
            srs: Vec::new(),
            to_store: BTreeMap::new(),
            to_ref: BTreeMap::new(),
            made: 1,
        };
        history.apply();
        history
    }

    fn admin(&self) -> &str {
        &self.desired.tenancy.admin
    }

    /// Applies the desired config through `plan` and `Store::apply`, and
    /// checks that the state is what was asked for.
    fn apply(&mut self) {
        let actual = self
            .store
            .load(TENANCY)
            .expect("the state loads")
            .map(|s| s.model);
        assert!(
            plan::rename_conflicts(&self.desired, actual.as_ref()).is_empty(),
            "the test asked for a rename onto a user"
        );
        let plan = plan::plan(&self.desired, actual.as_ref());
        if !plan.is_empty() {
            let lineage = self.store.lineage().to_owned();
            self.serial = self
                .store
                .apply(TENANCY, &lineage, self.serial, &plan, || JournalEntry {
                    time: "2026-11-24T00:00:00Z".into(),
                    summary: plan.summary(),
                    plan: JournalPlan::new("{}"),
                    config_digest: "sha256:0".into(),
                    git_commit: None,
                    git_changes: None,
                    source: None,
                })
                .expect("the plan applies");
        }
        self.desired.renames.clear();
        let loaded = self.store.load(TENANCY).unwrap().unwrap().model;
        assert_eq!(loaded, self.desired, "the state is the config applied");
    }

    /// Removes every grant of `id` (not its user).
    fn ungrant(&mut self, id: &str) {
        let m = &mut self.desired;
        m.support_accounts.remove(id);
        m.memberships.remove(id);
        m.approvals.remove(id);
        m.support_links.remove(id);
    }

    /// Gives `id` (a user, not the tenancy admin) `grant`, and only it.
    fn grant(&mut self, id: &str, grant: Grant) {
        self.ungrant(id);
        let admin = self.admin().to_owned();
        let m = &mut self.desired;
        let approve = |m: &mut Model, role: Role, access: Vec<Privilege>| {
            m.support_accounts.insert(id.into(), account());
            m.memberships.insert(id.into());
            m.approvals.insert(
                id.into(),
                Approval {
                    role,
                    access: access.into_iter().collect(),
                    approved_by: admin.clone(),
                    expires: None,
                },
            );
        };
        match grant {
            Grant::Nothing => {}
            Grant::Pending => {
                m.support_accounts.insert(id.into(), account());
                m.memberships.insert(id.into());
            }
            Grant::Member { create, view } => {
                let mut access = Vec::new();
                if create {
                    access.push(Privilege::CreateSr);
                }
                if view {
                    access.push(Privilege::ViewSr);
                }
                approve(m, Role::User, access);
            }
            Grant::Admin => approve(m, Role::Admin, Privilege::ALL.to_vec()),
            Grant::Linked(pick) => {
                let admins: Vec<String> = m
                    .users
                    .keys()
                    .filter(|u| *u != id && access::is_active_admin(m, u, today()))
                    .cloned()
                    .collect();
                let via = admins[pick % admins.len()].clone();
                m.support_links
                    .insert(id.into(), SupportLink { via, expires: None });
            }
        }
    }

    fn create(&mut self, id: &str, grant: Grant) {
        if self.desired.users.contains_key(id) {
            return;
        }
        // A new address each time: the same id is not the same person.
        self.made += 1;
        self.desired.users.insert(
            id.into(),
            User {
                email: format!("{id}{}@x.example", self.made),
                name: None,
            },
        );
        self.grant(id, grant);
        self.people.insert(id.into(), self.next_person);
        self.next_person += 1;
        self.apply();
    }

    fn delete(&mut self, id: &str) {
        if !self.desired.users.contains_key(id) || id == self.admin() {
            return;
        }
        self.ungrant(id);
        let admin = self.admin().to_owned();
        let m = &mut self.desired;
        m.users.remove(id);
        for approval in m.approvals.values_mut() {
            if approval.approved_by == id {
                approval.approved_by = admin.clone();
            }
        }
        m.support_links.retain(|_, link| link.via != id);
        self.people.remove(id);
        self.apply();
    }

    fn rename(&mut self, from: &str, to: &str) {
        if !self.desired.users.contains_key(from) || self.desired.users.contains_key(to) {
            return;
        }
        plan::rename_user(&mut self.desired, from, to);
        self.desired.renames.insert(to.into(), from.into());
        let person = self.people.remove(from).expect("a person");
        self.people.insert(to.into(), person);
        self.apply();
    }

    fn regrant(&mut self, id: &str, grant: Grant) {
        if !self.desired.users.contains_key(id) || id == self.admin() {
            return;
        }
        // A link through a user who stops being an administrator stays, and
        // grants nothing: as in the product.
        self.grant(id, grant);
        self.apply();
    }

    fn set_csi(&mut self, csi: &str) {
        self.desired.tenancy.csi = csi.into();
        self.apply();
    }

    fn open(&mut self, user: &str) {
        let expected = self
            .desired
            .users
            .contains_key(user)
            .then(|| access::opening(&self.desired, user, today()));
        let opened = self
            .store
            .open_service_request(TENANCY, |model| {
                if !model.users.contains_key(user) {
                    return Err("not a user".to_string());
                }
                let opening = access::opening(model, user, today())?;
                Ok(NewServiceRequest {
                    title: "t".into(),
                    kind: "tech".into(),
                    severity: "low".into(),
                    opened_by: user.into(),
                    owner: opening.owner,
                    contact_email: opening.contact,
                    channel: opening.channel,
                    opened_at: "2026-11-24T00:00:00Z".into(),
                })
            })
            .expect("the store answers");
        match (expected, opened) {
            (Some(Ok(opening)), Ok(sr)) => {
                assert_eq!(sr.owner, opening.owner);
                self.srs.push(RefSr {
                    id: sr.id,
                    opener: self.people[user],
                    owner: self.people[&opening.owner],
                    csi: self.desired.tenancy.csi.clone(),
                    comments: 0,
                });
            }
            (Some(Err(_)) | None, Err(_)) => {}
            (expected, opened) => {
                panic!("`{user}` opening an SR: expected {expected:?}, got {opened:?}")
            }
        }
    }

    /// Where the reference says `user` reads `sr`: by its own people and CSI.
    fn expected_sight(&self, user: &str, sr: &RefSr) -> Option<Channel> {
        let person = *self.people.get(user)?;
        let access = access::resolve(&self.desired, user, today()).ok()?;
        let under_this_csi = sr.csi == self.desired.tenancy.csi;
        if access.visible_in_mos
            && ((access.sees_all_csi_srs && under_this_csi) || sr.owner == person)
        {
            Some(Channel::Mos)
        } else if access.visible_in_console && sr.opener == person {
            Some(Channel::Console)
        } else {
            None
        }
    }

    fn expected_comment(&self, user: &str, sr: &RefSr) -> Option<Channel> {
        let access = access::resolve(&self.desired, user, today()).ok()?;
        let creates = matches!(
            access.path,
            AccessPath::TenancyAdmin | AccessPath::ApprovedAdmin | AccessPath::ApprovedUser
        );
        match self.expected_sight(user, sr)? {
            Channel::Mos if creates => Some(Channel::Mos),
            Channel::Mos => None,
            Channel::Console => Some(Channel::Console),
        }
    }

    fn comment(&mut self, user: &str, pick: usize) {
        if self.srs.is_empty() {
            return;
        }
        let i = pick % self.srs.len();
        let expected = self.expected_comment(user, &self.srs[i]);
        let added = self
            .store
            .add_comment(TENANCY, self.srs[i].id, user, |model, person, sr| {
                if !model.users.contains_key(user) {
                    return Err("not a user".to_string());
                }
                let channel = access::may_comment(model, user, person, &sr.parties(), today())?;
                Ok(Comment {
                    author: user.into(),
                    channel,
                    text: "c".into(),
                    at: "2026-11-24T00:00:00Z".into(),
                })
            })
            .expect("the store answers")
            .expect("the SR is there");
        assert_eq!(
            added.as_ref().ok().map(|c| c.channel),
            expected,
            "`{user}` commenting on SR {}: {added:?}",
            self.srs[i].id
        );
        if added.is_ok() {
            self.srs[i].comments += 1;
        }
    }

    /// Matches reference person `person` with the store's `stored`: each
    /// must only ever match the other.
    fn same_person(&mut self, person: u32, stored: Person) {
        let a = *self.to_store.entry(person).or_insert(stored);
        let b = *self.to_ref.entry(stored).or_insert(person);
        assert_eq!(
            (a, b),
            (stored, person),
            "reference person {person} is the store's {stored:?}, but one of them was another before"
        );
    }

    /// The invariants, after every step.
    fn check(&mut self) {
        let (model, people) = self
            .store
            .load_with_people(TENANCY)
            .expect("the state loads")
            .expect("the tenancy is there");
        assert_eq!(model, self.desired);
        assert_eq!(
            people.keys().collect::<Vec<_>>(),
            self.people.keys().collect::<Vec<_>>()
        );
        for (id, person) in self.people.clone() {
            self.same_person(person, people[&id]);
        }
        let stored = self.store.service_requests(TENANCY).expect("the SRs load");
        assert_eq!(stored.len(), self.srs.len(), "an SR appeared or was lost");
        for (sr, known) in stored.iter().zip(&self.srs) {
            assert_eq!(sr.id, known.id);
            assert_eq!(
                sr.opener,
                Some(self.to_store[&known.opener]),
                "SR {}: its opener moved",
                sr.id
            );
            assert_eq!(
                sr.owner_person,
                Some(self.to_store[&known.owner]),
                "SR {}: its owner moved",
                sr.id
            );
            assert_eq!(sr.csi.as_deref(), Some(known.csi.as_str()), "SR {}", sr.id);
            assert_eq!(sr.comments.len(), known.comments, "SR {}", sr.id);
            for user in IDS {
                let seen = access::sees(
                    &model,
                    user,
                    people.get(user).copied(),
                    &sr.parties(),
                    today(),
                );
                assert_eq!(
                    seen,
                    self.expected_sight(user, known),
                    "where `{user}` reads SR {} ({known:?}; people now {:?})",
                    sr.id,
                    self.people
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Through any history of deletes, renames (chains and cycles), re-used
    /// ids, grants, links and CSI changes, every SR keeps the persons and
    /// the CSI it was opened under, and who reads or comments on it is
    /// decided by the person and the CSI.
    #[test]
    fn srs_follow_people_and_the_csi_through_any_history(
        steps in prop::collection::vec(step(), 10..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::new(&dir.path().join("state.db"));
        history.check();
        for step in &steps {
            match *step {
                Step::Create(i, g) => history.create(IDS[i], g),
                Step::Delete(i) => history.delete(IDS[i]),
                Step::Rename(a, b) => history.rename(IDS[a], IDS[b]),
                Step::Regrant(i, g) => history.regrant(IDS[i], g),
                Step::SetCsi(c) => history.set_csi(CSIS[c]),
                Step::Open(i) => history.open(IDS[i]),
                Step::Comment(i, pick) => history.comment(IDS[i], pick),
            }
            history.check();
        }
    }
}
