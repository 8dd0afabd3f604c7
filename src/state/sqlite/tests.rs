//! Tests of the state on real files in a temporary directory.

mod damaged;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::schema::{APPLICATION_ID, LATEST};
use super::*;
use crate::model::{
    Approval, Date, Model, Privilege, Role, SupportAccount, SupportLink, Tenancy, User,
};
use crate::plan::{self, Action, Change, Kind, Plan, Value};

fn user(email: &str, name: Option<&str>) -> User {
    User {
        email: email.into(),
        name: name.map(Into::into),
    }
}

fn account(phone: &str) -> SupportAccount {
    SupportAccount {
        phone: phone.into(),
        timezone: "Asia/Seoul".into(),
    }
}

/// A tenancy with a bit of everything: an admin approval that approves
/// another, a link through a non-default admin, and a user with nothing.
fn model_a(name: &str) -> Model {
    let mut m = Model::empty(Tenancy {
        name: name.into(),
        csi: "1".into(),
        home_region: Some("ap-seoul-1".into()),
        admin: "admin".into(),
    });
    m.users
        .insert("admin".into(), user("admin@x.example", Some("Ad Min")));
    m.users
        .insert("alice".into(), user("alice@x.example", None));
    m.users.insert("bob".into(), user("bob@x.example", None));
    m.users
        .insert("carol".into(), user("carol@x.example", None));
    m.users.insert("dave".into(), user("dave@x.example", None));
    m.support_accounts.insert("admin".into(), account("+82 1"));
    m.support_accounts.insert("alice".into(), account("+82 2"));
    m.support_accounts.insert("bob".into(), account("+82 3"));
    m.memberships.insert("alice".into());
    m.memberships.insert("bob".into());
    m.approvals.insert(
        "alice".into(),
        Approval {
            role: Role::Admin,
            access: BTreeSet::new(),
            approved_by: "admin".into(),
            expires: None,
        },
    );
    m.approvals.insert(
        "bob".into(),
        Approval {
            role: Role::User,
            access: [Privilege::ViewSr, Privilege::CreateSr, Privilege::Download]
                .into_iter()
                .collect(),
            approved_by: "alice".into(),
            expires: Date::parse("2030-01-01"),
        },
    );
    m.support_links.insert(
        "carol".into(),
        SupportLink {
            via: "alice".into(),
            expires: Date::parse("2029-05-01"),
        },
    );
    m
}

/// From `model_a`: two renames (one of them the tenancy admin), a CSI change
/// (every grant replaced), an update, a delete and a create.
fn model_b(name: &str) -> Model {
    let mut m = model_a(name);
    plan::rename_user(&mut m, "alice", "alicia");
    plan::rename_user(&mut m, "admin", "root");
    m.renames.insert("alicia".into(), "alice".into());
    m.renames.insert("root".into(), "admin".into());
    m.tenancy.csi = "2".into();
    m.users.get_mut("carol").unwrap().name = Some("Carol C".into());
    m.users.remove("dave");
    m.users.insert("erin".into(), user("erin@x.example", None));
    m.support_accounts.insert("erin".into(), account("+82 5"));
    m.approvals
        .get_mut("bob")
        .unwrap()
        .access
        .remove(&Privilege::Download);
    m
}

fn without_renames(mut m: Model) -> Model {
    m.renames.clear();
    m
}

/// The JSON a test journals for `plan`.
fn plan_json(plan: &Plan) -> String {
    format!("{{\"changes\":{}}}", plan.changes.len())
}

fn entry(plan: &Plan) -> JournalEntry {
    JournalEntry {
        time: "2026-01-02T03:04:05Z".into(),
        summary: plan.summary(),
        plan: JournalPlan::new(&plan_json(plan)),
        config_digest: "sha256:abc".into(),
        git_commit: Some("0123abcd".into()),
        git_changes: Some(vec!["?? users/new.yaml".into(), " M users/a.yaml".into()]),
        source: None,
    }
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state.db")
}

fn side_files(path: &Path) -> [PathBuf; 2] {
    let name = path.file_name().unwrap().to_str().unwrap();
    [
        path.with_file_name(format!("{name}-wal")),
        path.with_file_name(format!("{name}-shm")),
    ]
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Opens `path`, applies `desired` from scratch to its tenancy and returns the store.
fn store_with(path: &Path, desired: &Model) -> Store {
    let mut store = Store::open(path).unwrap();
    let plan = plan::plan(desired, None);
    let lineage = store.lineage().to_owned();
    let serial = store
        .apply(&desired.tenancy.name, &lineage, 0, &plan, || entry(&plan))
        .unwrap();
    assert_eq!(serial, 1);
    store
}

/// Asserts that opening `path` fails as `check` says and changes nothing.
fn assert_refused_untouched(path: &Path, check: impl Fn(&StateError) -> bool) {
    let before = std::fs::read(path).unwrap();
    let sides_before = side_files(path).map(|p| std::fs::read(&p).ok());
    let err = Store::open(path).unwrap_err();
    assert!(check(&err), "unexpected error: {err:?}");
    assert_eq!(std::fs::read(path).unwrap(), before, "the file was changed");
    assert_eq!(
        side_files(path).map(|p| std::fs::read(&p).ok()),
        sides_before,
        "the -wal or -shm file appeared or changed"
    );
}

#[test]
fn open_creates_the_database_with_mode_0600_and_so_are_its_wal_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = store_with(&path, &model_a("t"));
    assert_eq!(mode(&path), 0o600);
    // The connection is open and has written: the WAL files exist.
    for side in side_files(&path) {
        assert!(side.exists(), "{} missing", side.display());
        assert_eq!(mode(&side), 0o600, "{}", side.display());
    }
    let journal_mode: String = store
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(journal_mode, "wal");
    let foreign_keys: bool = store
        .conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert!(foreign_keys);
    drop(store);
    // Closed cleanly: checkpointed, and the header carries our id and version.
    let header = std::fs::read(&path).unwrap();
    assert_eq!(header[68..72], APPLICATION_ID.to_be_bytes());
    assert_eq!(header[60..64], LATEST.to_be_bytes());
}

#[test]
fn reopening_keeps_the_lineage_and_databases_differ() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let first = Store::open(&path).unwrap().lineage().to_owned();
    assert_eq!(first.len(), 32);
    assert!(
        first
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(Store::open(&path).unwrap().lineage(), first);
    let other = Store::open(&dir.path().join("other.db")).unwrap();
    assert_ne!(other.lineage(), first);
}

#[test]
fn an_empty_sqlite_database_is_initialised_and_an_empty_file_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let empty_sqlite = dir.path().join("empty.sqlite");
    let conn = Connection::open(&empty_sqlite).unwrap();
    conn.execute_batch("CREATE TABLE t (x); DROP TABLE t;")
        .unwrap();
    drop(conn);
    assert!(std::fs::metadata(&empty_sqlite).unwrap().len() > 0);
    assert!(Store::open_read_only(&empty_sqlite).unwrap().is_none());
    let store = Store::open(&empty_sqlite).unwrap();
    assert!(store.tenancies().unwrap().is_empty());

    // supportctl makes a database whole before it takes its name, so an
    // empty file is never one of its new databases: it is one cut to
    // nothing, for reading and for writing alike.
    let empty_file = dir.path().join("zero.db");
    std::fs::write(&empty_file, b"").unwrap();
    let damaged = |e: &StateError| matches!(e, StateError::Damaged { detail, .. } if detail == "it is empty (0 bytes)");
    assert_refused_untouched(&empty_file, damaged);
    let err = Store::open_read_only(&empty_file).unwrap_err();
    assert!(damaged(&err), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("is damaged") && message.contains("restore the database from a backup"),
        "{message}"
    );
    assert_eq!(std::fs::read(&empty_file).unwrap(), b"");
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    std::fs::write(&path, "tenancy:\n  name: acme\n".repeat(50)).unwrap();
    assert_refused_untouched(
        &path,
        |e| matches!(e, StateError::NotSupportctl { reason, .. } if reason.contains("not a SQLite")),
    );
    let message = Store::open(&path).unwrap_err().to_string();
    assert!(
        message.contains("is not a supportctl database"),
        "{message}"
    );
    // A SQLite header cut short is a damaged database, not someone else's.
    for cut in [b"SQLite format 3\0".as_slice(), b"SQLite for"] {
        std::fs::write(&path, cut).unwrap();
        assert_refused_untouched(
            &path,
            |e| matches!(e, StateError::Damaged { detail, .. } if detail.starts_with("it is cut short")),
        );
    }
}

#[test]
fn a_foreign_sqlite_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // Another program's database, in rollback-journal mode.
    let plain = dir.path().join("plain.db");
    let conn = Connection::open(&plain).unwrap();
    conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
        .unwrap();
    drop(conn);
    assert_refused_untouched(
        &plain,
        |e| matches!(e, StateError::NotSupportctl { reason, .. } if reason.contains("did not create")),
    );

    // Another application's id, even with nothing in it yet.
    let other = dir.path().join("other.db");
    let conn = Connection::open(&other).unwrap();
    conn.execute_batch("PRAGMA application_id = 42; PRAGMA journal_mode = WAL;")
        .unwrap();
    drop(conn);
    assert_refused_untouched(
        &other,
        |e| matches!(e, StateError::NotSupportctl { reason, .. } if reason.contains("another application")),
    );
}

#[test]
fn a_database_from_a_newer_supportctl_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(store_with(&path, &model_a("t")));
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", LATEST + 1)
        .unwrap();
    drop(conn);
    assert_refused_untouched(&path, |e| {
        matches!(e, StateError::TooNew { found, supported, .. }
            if *found == LATEST + 1 && *supported == LATEST)
    });
    let message = Store::open(&path).unwrap_err().to_string();
    assert!(message.contains("newer supportctl"), "{message}");
}

#[test]
fn a_newer_version_still_in_the_write_ahead_log_is_refused_without_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(store_with(&path, &model_a("t")));
    // A newer supportctl bumped the version, and its WAL was never
    // checkpointed: the main file's header still says version LATEST.
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.pragma_update(None, "user_version", LATEST + 1)
        .unwrap();
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .unwrap();
    drop(conn);
    let [wal, _] = side_files(&path);
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    let before = std::fs::read(&path).unwrap();
    let wal_before = std::fs::read(&wal).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StateError::TooNew { found, .. } if found == LATEST + 1),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::read(&wal).unwrap(), wal_before);
}

#[test]
fn applying_a_plan_from_nothing_then_loading_gives_the_desired_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let desired = model_a("t");
    let store = store_with(&path, &desired);
    let snapshot = store.load("t").unwrap().unwrap();
    assert_eq!(snapshot.serial, 1);
    assert_eq!(snapshot.model, without_renames(desired.clone()));
    // And from a new connection: it was committed.
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.load("t").unwrap().unwrap().model, desired);
    assert_eq!(store.load("nope").unwrap(), None);
}

#[test]
fn a_second_plan_with_renames_updates_deletes_and_replacements_lands_like_apply_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let a = model_a("t");
    let b = model_b("t");
    let mut store = store_with(&path, &a);
    let actual = store.load("t").unwrap().unwrap();
    let plan = plan::plan(&b, Some(&actual.model));
    let has = |action: Action, renamed: bool| {
        plan.changes
            .iter()
            .any(|c| c.action == action && c.renamed_from.is_some() == renamed)
    };
    assert!(has(Action::Update, true), "a rename");
    assert!(has(Action::Update, false), "an update");
    assert!(has(Action::Delete, false), "a delete");
    assert!(has(Action::Replace, false), "a replacement");
    assert!(has(Action::Create, false), "a create");

    let lineage = store.lineage().to_owned();
    let serial = store
        .apply("t", &lineage, actual.serial, &plan, || entry(&plan))
        .unwrap();
    assert_eq!(serial, 2);
    let loaded = store.load("t").unwrap().unwrap();
    assert_eq!(loaded.serial, 2);
    let expected = plan::apply_to(Some(&actual.model), &plan).map(without_renames);
    assert_eq!(Some(loaded.model.clone()), expected);
    assert_eq!(loaded.model, without_renames(b.clone()));
    // Planning again from the loaded state finds nothing to do.
    assert!(plan::plan(&without_renames(b), Some(&loaded.model)).is_empty());
}

#[test]
fn a_rename_moves_every_row_and_reference() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let a = model_a("t");
    let mut store = store_with(&path, &a);
    let mut b = a.clone();
    plan::rename_user(&mut b, "alice", "alicia");
    plan::rename_user(&mut b, "admin", "root");
    b.renames.insert("alicia".into(), "alice".into());
    b.renames.insert("root".into(), "admin".into());
    let plan = plan::plan(&b, Some(&a));
    assert_eq!(plan.changes.len(), 2, "{plan:#?}");
    let lineage = store.lineage().to_owned();
    store
        .apply("t", &lineage, 1, &plan, || entry(&plan))
        .unwrap();
    let loaded = store.load("t").unwrap().unwrap().model;
    assert_eq!(loaded, without_renames(b));
    assert_eq!(loaded.tenancy.admin, "root");
    assert_eq!(loaded.approvals["alicia"].approved_by, "root");
    assert_eq!(loaded.approvals["bob"].approved_by, "alicia");
    assert_eq!(loaded.support_links["carol"].via, "alicia");
    assert!(loaded.memberships.contains("alicia"));
    assert!(loaded.support_accounts.contains_key("root"));
}

#[test]
fn a_stale_plan_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let a = model_a("t");
    let mut store = store_with(&path, &a);
    let before = store.load("t").unwrap();
    let plan = plan::plan(&model_b("t"), Some(&a));
    let lineage = store.lineage().to_owned();

    let err = store
        .apply("t", &lineage, 0, &plan, || entry(&plan))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StateError::Stale {
                expected_serial: 0,
                found_serial: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("stale"), "{err}");
    let err = store
        .apply("t", "0000", 1, &plan, || entry(&plan))
        .unwrap_err();
    assert!(
        matches!(&err, StateError::Stale { found_lineage, .. } if *found_lineage == lineage),
        "{err:?}"
    );
    // A plan for a new tenancy, when that tenancy appeared meanwhile.
    let fresh = plan::plan(&a, None);
    let err = store
        .apply("t", &lineage, 0, &fresh, || entry(&fresh))
        .unwrap_err();
    assert!(matches!(err, StateError::Stale { .. }), "{err:?}");

    assert_eq!(store.load("t").unwrap(), before);
    assert_eq!(store.history(None).unwrap().len(), 1);
}

/// Applies `plan` expecting a mismatch, and checks nothing moved.
fn assert_fails_whole(store: &mut Store, plan: &Plan) -> String {
    let before = store.load("t").unwrap();
    let history = store.history(None).unwrap();
    let lineage = store.lineage().to_owned();
    let serial = before.as_ref().map_or(0, |s| s.serial);
    let err = store
        .apply("t", &lineage, serial, plan, || entry(plan))
        .unwrap_err();
    assert!(matches!(err, StateError::Mismatch { .. }), "{err:?}");
    assert_eq!(store.load("t").unwrap(), before, "the state moved");
    assert_eq!(store.history(None).unwrap(), history, "the journal moved");
    err.to_string()
}

fn change(kind: Kind, id: &str, action: Action, after: Option<Value>) -> Change {
    Change {
        kind,
        id: id.into(),
        action,
        reason: None,
        renamed_from: None,
        before: None,
        after,
    }
}

#[test]
fn a_change_that_fails_midway_leaves_the_state_exactly_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut store = store_with(&path, &model_a("t"));
    let carol = change(
        Kind::User,
        "carol",
        Action::Update,
        Some(Value::User(user("carol@new.example", None))),
    );
    let plan_of = |last: Change| Plan {
        tenancy: "t".into(),
        changes: vec![carol.clone(), last],
    };

    // A support account for a user who does not exist: caught at commit by
    // the foreign keys.
    let message = assert_fails_whole(
        &mut store,
        &plan_of(change(
            Kind::SupportAccount,
            "ghost",
            Action::Create,
            Some(Value::SupportAccount(account("+1"))),
        )),
    );
    assert!(
        message.contains("support_account.ghost has no user.ghost"),
        "{message}"
    );

    // Deleting a user that still has a support account.
    let message = assert_fails_whole(
        &mut store,
        &plan_of(change(Kind::User, "alice", Action::Delete, None)),
    );
    assert!(
        message.contains("support_account.alice has no user.alice"),
        "{message}"
    );

    // An update of a row that is not there.
    let message = assert_fails_whole(
        &mut store,
        &plan_of(change(
            Kind::User,
            "nobody",
            Action::Update,
            Some(Value::User(user("n@x.example", None))),
        )),
    );
    assert!(
        message.contains("`user.nobody` is not in the state"),
        "{message}"
    );

    // A create of a row that is already there.
    let message = assert_fails_whole(
        &mut store,
        &plan_of(change(
            Kind::User,
            "bob",
            Action::Create,
            Some(Value::User(user("b@x.example", None))),
        )),
    );
    assert!(message.contains("already in the state"), "{message}");

    // A value of the wrong kind.
    assert_fails_whole(
        &mut store,
        &plan_of(change(
            Kind::Membership,
            "bob",
            Action::Update,
            Some(Value::User(user("b@x.example", None))),
        )),
    );

    // A rename whose old id is not there.
    let mut rename = change(
        Kind::User,
        "zed",
        Action::Update,
        Some(Value::User(user("z@x.example", None))),
    );
    rename.renamed_from = Some("ghost".into());
    assert_fails_whole(&mut store, &plan_of(rename));
}

#[test]
fn a_plan_for_a_new_tenancy_must_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut store = Store::open(&path).unwrap();
    let mut plan = plan::plan(&model_a("t"), None);
    assert_eq!(plan.changes[0].kind, Kind::Tenancy);
    plan.changes.remove(0);
    assert_fails_whole(&mut store, &plan);
    assert_eq!(store.load("t").unwrap(), None);
    assert!(store.tenancies().unwrap().is_empty());
}

#[test]
fn an_empty_plan_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let a = model_a("t");
    let mut store = store_with(&path, &a);
    let plan = plan::plan(&a, Some(&a));
    assert!(plan.is_empty());
    let lineage = store.lineage().to_owned();
    assert_eq!(
        store
            .apply("t", &lineage, 1, &plan, || entry(&plan))
            .unwrap(),
        1
    );
    assert_eq!(store.load("t").unwrap().unwrap().serial, 1);
    assert_eq!(store.history(None).unwrap().len(), 1);
}

#[test]
fn tenancies_are_kept_apart_and_listed_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut store = store_with(&path, &model_a("zeta"));
    // Alone in the database, its tables are read whole; beside another
    // tenancy, through their keys: the same model either way.
    assert_eq!(store.load("zeta").unwrap().unwrap().model, model_a("zeta"));
    let alpha = model_b("alpha");
    let plan = plan::plan(&alpha, None);
    let lineage = store.lineage().to_owned();
    assert_eq!(
        store
            .apply("alpha", &lineage, 0, &plan, || entry(&plan))
            .unwrap(),
        1
    );
    assert_eq!(store.tenancies().unwrap(), ["alpha", "zeta"]);
    assert_eq!(store.load("zeta").unwrap().unwrap().model, model_a("zeta"));
    assert_eq!(
        store.load("alpha").unwrap().unwrap().model,
        without_renames(alpha)
    );
}

#[test]
fn history_lists_applies_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut store = store_with(&path, &model_a("t"));
    let lineage = store.lineage().to_owned();
    let u = plan::plan(&model_a("u"), None);
    store.apply("u", &lineage, 0, &u, || entry(&u)).unwrap();
    let t2 = plan::plan(&model_b("t"), Some(&model_a("t")));
    let mut second = entry(&t2);
    second.git_commit = None;
    store
        .apply("t", &lineage, 1, &t2, || second.clone())
        .unwrap();

    let all = store.history(None).unwrap();
    let order: Vec<(&str, u64)> = all.iter().map(|r| (r.tenancy.as_str(), r.serial)).collect();
    assert_eq!(order, [("t", 1), ("u", 1), ("t", 2)]);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));

    let t = store.history(Some("t")).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[1].summary, t2.summary());
    assert_eq!(t[1].plan_json, plan_json(&t2));
    assert_eq!(t[0].plan_json, plan_json(&plan::plan(&model_a("t"), None)));
    assert_eq!(t[1].time, second.time);
    assert_eq!(t[1].config_digest, "sha256:abc");
    assert_eq!(t[1].git_commit, None);
    assert_eq!(t[0].git_commit.as_deref(), Some("0123abcd"));
    assert!(store.history(Some("nope")).unwrap().is_empty());
}

#[test]
fn a_locked_database_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let a = model_a("t");
    let mut store = store_with(&path, &a);
    store.set_busy_timeout(Duration::from_millis(50)).unwrap();
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let plan = plan::plan(&model_b("t"), Some(&a));
    let lineage = store.lineage().to_owned();
    let err = store
        .apply("t", &lineage, 1, &plan, || entry(&plan))
        .unwrap_err();
    assert!(matches!(err, StateError::Busy { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("is locked by another supportctl; try again"),
        "{err}"
    );
    // Readers are not blocked by a writer in WAL mode.
    assert_eq!(store.load("t").unwrap().unwrap().serial, 1);
    other.execute_batch("ROLLBACK").unwrap();
    store
        .apply("t", &lineage, 1, &plan, || entry(&plan))
        .unwrap();
}

#[test]
fn two_applies_at_once_one_lands_and_the_other_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let a = model_a("t");
    drop(store_with(&path, &a));
    let plan = plan::plan(&model_b("t"), Some(&a));
    let results: Vec<Result<u64, StateError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut store = Store::open(&path).unwrap();
                    let lineage = store.lineage().to_owned();
                    store.apply("t", &lineage, 1, &plan, || entry(&plan))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let landed = results.iter().filter(|r| matches!(r, Ok(2))).count();
    let stale = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(StateError::Stale {
                    found_serial: 2,
                    ..
                })
            )
        })
        .count();
    assert_eq!((landed, stale), (1, 1), "{results:?}");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.load("t").unwrap().unwrap().serial, 2);
    assert_eq!(store.history(Some("t")).unwrap().len(), 2);
}

#[test]
fn access_is_stored_as_a_sorted_list_of_names() {
    let all: BTreeSet<Privilege> = Privilege::ALL.into_iter().collect();
    assert_eq!(
        crate::state::values::access_text(&all),
        "create_sr,download,view_sr"
    );
    assert_eq!(crate::state::values::access_text(&BTreeSet::new()), "");
}

/// A plan of some ten thousand changes lands whole and loads back equal:
/// the prepared statements and the per-table loads hold at size. Timing
/// belongs to the benchmark, not here.
#[test]
fn a_large_plan_applies_and_loads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut m = model_a("t");
    for i in 0..2_500 {
        let id = format!("u{i:05}");
        m.users
            .insert(id.clone(), user(&format!("{id}@x.example"), None));
        m.support_accounts.insert(id.clone(), account("+1"));
        m.memberships.insert(id.clone());
        m.approvals.insert(
            id,
            Approval {
                role: Role::User,
                access: [Privilege::CreateSr].into_iter().collect(),
                approved_by: "admin".into(),
                expires: None,
            },
        );
    }
    let plan = plan::plan(&m, None);
    assert!(plan.changes.len() > 10_000);
    let mut store = Store::open(&path).unwrap();
    let lineage = store.lineage().to_owned();
    store
        .apply("t", &lineage, 0, &plan, || entry(&plan))
        .unwrap();
    let loaded = store.load("t").unwrap().unwrap();
    assert_eq!(loaded.model, m);
}

#[test]
fn the_journal_stores_plans_compressed_and_reads_back_rows_written_as_text() {
    // A database as the schema before v3 left it, with a journal row whose
    // plan is text.
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let conn = database_at(&path, 2);
        conn.execute(
            "INSERT INTO journal (tenancy, time, serial, add_count, change_count, destroy_count, \
             plan_json, config_digest) VALUES ('old', '2026-01-01T00:00:00Z', 1, 1, 0, 0, \
             '{\"old\":true}', 'sha256:old')",
            [],
        )
        .unwrap();
    }
    // Opening migrates it; an apply since stores its plan compressed.
    let mut store = Store::open(&path).unwrap();
    let lineage = store.lineage().to_owned();
    let plan = plan::plan(&model_a("t"), None);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(100_000));
    store
        .apply("t", &lineage, 0, &plan, || JournalEntry {
            plan: JournalPlan::new(&big),
            ..entry(&plan)
        })
        .unwrap();
    let history = store.history(None).unwrap();
    assert_eq!(history[0].plan_json, r#"{"old":true}"#);
    assert_eq!(history[1].plan_json, big);
    let (text, zlib, size): (String, Vec<u8>, i64) = store
        .conn
        .query_row(
            "SELECT plan_json, plan_zlib, plan_size FROM journal WHERE tenancy = 't'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((text.as_str(), size), ("", big.len() as i64));
    // zlib's format (RFC 1950: deflate, 32K window), as sqlar_uncompress reads.
    assert_eq!(zlib[0], 0x78);
    assert!(zlib.len() < big.len() / 100, "{} bytes", zlib.len());

    // Damaged bytes, a wrong length or half a plan are reported, not shown.
    for damage in [
        "UPDATE journal SET plan_zlib = x'789c00' WHERE tenancy = 't'",
        "UPDATE journal SET plan_size = plan_size + 1 WHERE tenancy = 't'",
    ] {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!("BEGIN; {damage}; COMMIT;"))
            .unwrap();
        let err = Store::open(&path).unwrap().history(Some("t")).unwrap_err();
        assert!(
            matches!(&err, StateError::Corrupt { detail, .. } if detail.starts_with("journal entry 2: its plan")),
            "{damage}: {err:?}"
        );
    }
    let conn = Connection::open(&path).unwrap();
    let half = conn.execute(
        "UPDATE journal SET plan_zlib = NULL WHERE tenancy = 't'",
        [],
    );
    assert!(half.is_err(), "the schema refuses a plan without its bytes");
}

/// A retirement: what `supportctl retire` journals, made from `plan`.
fn retirement_entry(plan: &Plan) -> JournalEntry {
    JournalEntry {
        config_digest: String::new(),
        git_commit: None,
        git_changes: None,
        ..entry(plan)
    }
}

/// Every row of the tenancy goes, the other tenancy's rows and the
/// tenancy's journal stay; the retirement is the journal's next entry; a
/// tenancy of that name created again continues its serials.
#[test]
fn a_retirement_removes_the_tenancy_and_keeps_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut store = store_with(&path, &model_a("t"));
    let lineage = store.lineage().to_owned();
    let u = plan::plan(&model_a("u"), None);
    store.apply("u", &lineage, 0, &u, || entry(&u)).unwrap();
    let retire = plan::retirement(&model_a("t"));
    assert_eq!(
        retire.changes.last().map(Change::address).as_deref(),
        Some("tenancy.t")
    );
    assert!(retire.changes.iter().all(|c| c.action == Action::Delete));
    assert_eq!(
        store
            .retire("t", &lineage, 1, &retire, retirement_entry(&retire))
            .unwrap(),
        2
    );
    assert_eq!(store.load("t").unwrap(), None);
    assert_eq!(store.tenancies().unwrap(), ["u"]);
    assert_eq!(store.retired_tenancies().unwrap(), ["t"]);
    assert_eq!(store.load("u").unwrap().unwrap().model, model_a("u"));
    let rows: i64 = store
        .conn
        .query_row(
            "SELECT (SELECT count(*) FROM users WHERE tenancy = 't') \
             + (SELECT count(*) FROM support_accounts WHERE tenancy = 't') \
             + (SELECT count(*) FROM memberships WHERE tenancy = 't') \
             + (SELECT count(*) FROM approvals WHERE tenancy = 't') \
             + (SELECT count(*) FROM support_links WHERE tenancy = 't')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0);
    let journal = store.history(Some("t")).unwrap();
    let kinds: Vec<(JournalKind, u64)> = journal.iter().map(|r| (r.kind, r.serial)).collect();
    assert_eq!(kinds, [(JournalKind::Apply, 1), (JournalKind::Retire, 2)]);
    assert_eq!(journal[1].summary.destroy, retire.changes.len());

    // Created again: its serials go on after the retirement.
    let again = plan::plan(&model_a("t"), None);
    assert_eq!(
        store
            .apply("t", &lineage, 0, &again, || entry(&again))
            .unwrap(),
        3
    );
    assert_eq!(store.load("t").unwrap().unwrap().serial, 3);
    assert!(store.retired_tenancies().unwrap().is_empty());
    let serials: Vec<u64> = store
        .history(Some("t"))
        .unwrap()
        .iter()
        .map(|r| r.serial)
        .collect();
    assert_eq!(serials, [1, 2, 3]);
}

/// A retirement made against a state that has moved, or whose plan is not
/// the state's rows, is refused and changes nothing.
#[test]
fn a_stale_or_mismatched_retirement_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut store = store_with(&path, &model_a("t"));
    let lineage = store.lineage().to_owned();
    let retire = plan::retirement(&model_a("t"));
    let history = store.history(None).unwrap();
    let stale = store
        .retire("t", &lineage, 0, &retire, retirement_entry(&retire))
        .unwrap_err();
    assert!(
        matches!(
            stale,
            StateError::Stale {
                found_serial: 1,
                ..
            }
        ),
        "{stale:?}"
    );
    let other = store
        .retire(
            "t",
            "another-lineage",
            1,
            &retire,
            retirement_entry(&retire),
        )
        .unwrap_err();
    assert!(matches!(other, StateError::Stale { .. }), "{other:?}");
    // A plan made from a state with a user less than the database holds.
    let mut smaller = model_a("t");
    smaller.users.remove("dave");
    let short = plan::retirement(&smaller);
    let mismatch = store
        .retire("t", &lineage, 1, &short, retirement_entry(&short))
        .unwrap_err();
    assert!(
        matches!(mismatch, StateError::Mismatch { .. }),
        "{mismatch:?}"
    );
    let gone = store
        .retire("nope", &lineage, 0, &retire, retirement_entry(&retire))
        .unwrap_err();
    assert!(matches!(gone, StateError::Stale { .. }), "{gone:?}");
    assert_eq!(store.load("t").unwrap().unwrap().model, model_a("t"));
    assert_eq!(store.history(None).unwrap(), history);
    assert!(store.retired_tenancies().unwrap().is_empty());
}

/// The journal keeps the config set's git changes as given, and entries
/// written before the schema had them read back as not known and as
/// applies; the schema refuses anything but a list.
#[test]
fn the_journal_keeps_git_changes_and_reads_older_entries_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let before = schema::MIGRATIONS
        .iter()
        .position(|m| m.contains("ADD COLUMN git_changes"))
        .expect("the migration that adds git_changes");
    {
        let conn = database_at(&path, before);
        conn.execute(
            "INSERT INTO journal (tenancy, time, serial, add_count, change_count, destroy_count, \
             plan_json, config_digest, git_commit) VALUES ('old', '2026-01-01T00:00:00Z', 1, 1, \
             0, 0, '{}', 'sha256:old', 'abc')",
            [],
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    let version: u32 = store
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, LATEST);
    let lineage = store.lineage().to_owned();
    let plan = plan::plan(&model_a("t"), None);
    store
        .apply("t", &lineage, 0, &plan, || entry(&plan))
        .unwrap();
    let clean = plan::plan(&model_b("t"), Some(&model_a("t")));
    store
        .apply("t", &lineage, 1, &clean, || JournalEntry {
            git_changes: Some(Vec::new()),
            ..entry(&clean)
        })
        .unwrap();
    let history = store.history(None).unwrap();
    assert_eq!(
        (
            history[0].git_commit.as_deref(),
            history[0].git_changes.as_ref()
        ),
        (Some("abc"), None)
    );
    assert_eq!(history[0].kind, JournalKind::Apply);
    assert_eq!(history[1].git_changes, entry(&plan).git_changes);
    assert_eq!(history[2].git_changes, Some(Vec::new()));
    let conn = Connection::open(&path).unwrap();
    for bad in ["'{}'", "'not json'", "'\"a\"'"] {
        let refused = conn.execute(
            &format!("UPDATE journal SET git_changes = {bad} WHERE tenancy = 't'"),
            [],
        );
        assert!(refused.is_err(), "{bad} was stored");
    }
    assert!(
        conn.execute("UPDATE journal SET kind = 'other'", [])
            .is_err()
    );
}

#[test]
fn the_journal_records_who_applied_and_finds_the_latest_apply_of_each_kind() {
    // A database as schema v3 left it, with an entry nobody signed.
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let conn = database_at(&path, 3);
        conn.execute(
            "INSERT INTO journal (tenancy, time, serial, add_count, change_count, destroy_count, \
             plan_json, config_digest) VALUES ('old', '2026-01-01T00:00:00Z', 1, 1, 0, 0, \
             '{}', 'sha256:old')",
            [],
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    let old = store
        .last_apply("old", None)
        .unwrap()
        .expect("the old entry");
    assert_eq!((old.serial, old.source), (1, None));
    assert_eq!(
        store.last_apply("old", Some(AppliedBy::Watch)).unwrap(),
        None
    );
    assert_eq!(store.last_apply("t", None).unwrap(), None);

    let source = |command, path: &str| ApplySource {
        command,
        host: "host-1".into(),
        path: path.into(),
        pid: 42,
    };
    let lineage = store.lineage().to_owned();
    let mut actual: Option<Model> = None;
    let mut desired = model_a("t");
    for (serial, (by, name)) in [
        (AppliedBy::Watch, "/srv/a"),
        (AppliedBy::Apply, "/home/me/t.yaml"),
        (AppliedBy::Watch, "/srv/b"),
        (AppliedBy::Apply, "/home/me/t.yaml"),
    ]
    .into_iter()
    .enumerate()
    {
        // Each apply changes the admin's name.
        desired.users.get_mut("admin").unwrap().name = Some(format!("Admin {serial}"));
        let plan = plan::plan(&desired, actual.as_ref());
        store
            .apply("t", &lineage, serial as u64, &plan, || JournalEntry {
                source: Some(source(by, name)),
                ..entry(&plan)
            })
            .unwrap();
        actual = Some(without_renames(desired.clone()));
    }
    let last = store.last_apply("t", None).unwrap().unwrap();
    assert_eq!(last.serial, 4);
    assert_eq!(
        last.source,
        Some(source(AppliedBy::Apply, "/home/me/t.yaml"))
    );
    let watched = store
        .last_apply("t", Some(AppliedBy::Watch))
        .unwrap()
        .unwrap();
    assert_eq!(watched.serial, 3);
    assert_eq!(watched.source, Some(source(AppliedBy::Watch, "/srv/b")));
    assert_eq!(watched.config_digest, "sha256:abc");
    let history = store.history(Some("t")).unwrap();
    let sources: Vec<_> = history
        .iter()
        .map(|r| r.source.as_ref().map(|s| (s.command, s.path.as_str())))
        .collect();
    assert_eq!(
        sources,
        [
            Some((AppliedBy::Watch, "/srv/a")),
            Some((AppliedBy::Apply, "/home/me/t.yaml")),
            Some((AppliedBy::Watch, "/srv/b")),
            Some((AppliedBy::Apply, "/home/me/t.yaml")),
        ]
    );
    assert_eq!(store.history(Some("old")).unwrap()[0].source, None);
}

/// A database at schema version `version`, as the first `version`
/// migrations leave it (an older supportctl's), with nothing in it yet.
fn database_at(path: &Path, version: usize) -> Connection {
    let conn = Connection::open(path).unwrap();
    for (index, migration) in schema::MIGRATIONS.iter().take(version).enumerate() {
        conn.execute_batch(migration).unwrap();
        conn.pragma_update(None, "user_version", index as i64 + 1)
            .unwrap();
    }
    conn
}

/// A database from before persons (every migration before
/// [`schema::PEOPLE`]), with users, remembered renames and SRs in it.
fn database_before_people(path: &Path) {
    let people = schema::MIGRATIONS
        .iter()
        .position(|m| *m == schema::PEOPLE)
        .expect("PEOPLE is a migration");
    let conn = database_at(path, people);
    conn.execute_batch(
        "
        BEGIN;
        INSERT INTO tenancies (name, csi, admin, serial) VALUES ('t', '77', 'admin', 3);
        INSERT INTO users (tenancy, id, email) VALUES
            ('t', 'admin', 'admin@x.example'),
            ('t', 'robert', 'bob@x.example'),
            ('t', 'x', 'x@x.example'),
            ('t', 'zoe', 'zoe@x.example');
        INSERT INTO support_accounts (tenancy, user, phone, timezone)
            VALUES ('t', 'admin', '+82 1', 'UTC'), ('t', 'zoe', '+82 2', 'UTC');
        INSERT INTO memberships (tenancy, user) VALUES ('t', 'zoe');
        INSERT INTO approvals (tenancy, user, role, access, approved_by)
            VALUES ('t', 'zoe', 'user', 'create_sr', 'admin');
        -- bob became robert; x went to y and back to x (a cycle).
        INSERT INTO user_renames (tenancy, old, new) VALUES
            ('t', 'bob', 'robert'), ('t', 'x', 'y'), ('t', 'y', 'x');
        INSERT INTO service_requests
            (tenancy, title, type, severity, opened_by, owner, contact_email, channel, opened_at)
        VALUES
            ('t', 'by bob', 'tech', 'low', 'bob', 'admin', 'admin@x.example', 'console', '2026-01-01T00:00:00Z'),
            ('t', 'by zoe', 'tech', 'low', 'zoe', 'zoe', 'zoe@x.example', 'mos', '2026-01-02T00:00:00Z'),
            ('t', 'by x', 'tech', 'low', 'x', 'x', 'x@x.example', 'mos', '2026-01-03T00:00:00Z'),
            ('t', 'by gone', 'tech', 'low', 'gone', 'gone', 'gone@x.example', 'mos', '2026-01-04T00:00:00Z');
        INSERT INTO sr_comments (sr_id, author, channel, text, at)
            VALUES (1, 'admin', 'mos', 'kept', '2026-01-05T00:00:00Z');
        COMMIT;
        ",
    )
    .unwrap();
}

#[test]
fn a_database_from_before_persons_is_migrated_with_what_can_be_told() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    database_before_people(&path);
    let mut store = Store::open(&path).unwrap();
    let version: u32 = store
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, LATEST);
    let broken: i64 = store
        .conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(broken, 0);
    let renames_table: i64 = store
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'user_renames'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(renames_table, 0, "the remembered renames are replaced");

    // Every user is kept, each a person of its own.
    let (model, people) = store.load_with_people("t").unwrap().unwrap();
    assert_eq!(
        model.users.keys().collect::<Vec<_>>(),
        ["admin", "robert", "x", "zoe"]
    );
    assert_eq!(model.approvals["zoe"].approved_by, "admin");
    let persons: BTreeSet<_> = people.values().collect();
    assert_eq!(persons.len(), 4);

    let srs = store.service_requests("t").unwrap();
    let by_title = |title: &str| srs.iter().find(|sr| sr.title == title).unwrap();
    // The ids they were opened under are kept; the CSI is the tenancy's.
    assert!(srs.iter().all(|sr| sr.csi.as_deref() == Some("77")));
    assert_eq!(by_title("by bob").opened_by, "bob");
    assert_eq!(by_title("by bob").comments.len(), 1);
    // bob's rename leads to robert; zoe and the admin are who they are.
    assert_eq!(by_title("by bob").opener, Some(people["robert"]));
    assert_eq!(by_title("by bob").owner_person, Some(people["admin"]));
    assert_eq!(by_title("by zoe").opener, Some(people["zoe"]));
    assert_eq!(by_title("by zoe").owner_person, Some(people["zoe"]));
    // A cycle of renames cannot tell who `x` was, and `gone` is no user:
    // no one, whoever has those ids.
    for title in ["by x", "by gone"] {
        assert_eq!(
            (by_title(title).opener, by_title(title).owner_person),
            (None, None),
            "{title}"
        );
    }
    // Where bob went is remembered for the person, not the id.
    assert_eq!(store.renamed_from("t", "bob").unwrap(), ["robert"]);
    assert_eq!(
        store.renamed_from("t", "gone").unwrap(),
        Vec::<String>::new()
    );

    // The migrated database is written to as a new one is: a user created
    // now, under a deleted user's id, is a new person.
    let mut next = model.clone();
    next.users.remove("x");
    let lineage = store.lineage().to_owned();
    let plan = plan::plan(&next, Some(&model));
    store
        .apply("t", &lineage, 3, &plan, || entry(&plan))
        .unwrap();
    let mut again = next.clone();
    again
        .users
        .insert("x".into(), user("another-x@x.example", None));
    let plan = plan::plan(&again, Some(&next));
    store
        .apply("t", &lineage, 4, &plan, || entry(&plan))
        .unwrap();
    let (_, now) = store.load_with_people("t").unwrap().unwrap();
    assert!(
        !persons.contains(&now["x"]),
        "the new `x` is a new person: {now:?}"
    );
    assert_eq!(now["robert"], people["robert"]);
}

/// Two stores of one file in one process (a watcher's reconcile and its
/// lease thread): opening and closing the second never drops the first's
/// locks. Were the second's header check to open and close the file by
/// hand while the first is open, the process's POSIX locks on it would go
/// with that descriptor, and the second's close, taking itself for the
/// last connection, would checkpoint and delete the write-ahead log from
/// under the first.
#[test]
fn a_second_store_of_the_same_file_leaves_the_first_ones_log_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let desired = model_a("acme");
    let first = store_with(&path, &desired);
    let [wal, shm] = side_files(&path);
    assert!(wal.exists() && shm.exists(), "the first store's log");
    for _ in 0..3 {
        let second = Store::open(&path).unwrap();
        assert_eq!(second.lineage(), first.lineage());
        drop(second);
        let reader = Store::open_read_only(&path).unwrap().expect("a state");
        drop(reader);
        assert!(
            wal.exists() && shm.exists(),
            "a second store's close took the first's log away"
        );
    }
    assert_eq!(first.serial("acme").unwrap(), Some(1));
    let loaded = first.load("acme").unwrap().expect("the tenancy");
    assert_eq!(without_renames(loaded.model), without_renames(desired));
}
