//! A damaged state is called damaged, a new database is never an empty
//! file, and reading never writes.

use super::*;

/// A database holding `model_a` and enough users to span many pages,
/// closed cleanly (checkpointed, no write-ahead log left).
fn closed_database(path: &Path) {
    let mut m = model_a("t");
    for i in 0..400 {
        let id = format!("u{i:04}");
        m.users.insert(
            id.clone(),
            user(&format!("{id}@x.example"), Some("A long name")),
        );
    }
    drop(store_with(path, &m));
    assert!(!side_files(path)[0].exists(), "closed cleanly");
}

fn is_damaged(e: &StateError) -> bool {
    matches!(e, StateError::Damaged { .. })
}

/// What opening (to write, and to read) and reading everything gives.
fn read_all(store: Result<Store, StateError>) -> Result<(), StateError> {
    let store = store?;
    store.tenancies()?;
    store.load("t")?;
    store.history(None)?;
    Ok(())
}

#[test]
fn a_database_cut_short_is_damaged_for_every_command_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    closed_database(&path);
    let whole = std::fs::read(&path).unwrap();
    let page = 4096;
    assert!(whole.len() >= 8 * page, "{} bytes", whole.len());
    // At a page boundary, inside a page, inside the header: each is damaged,
    // never a new database and never someone else's file.
    for cut in [
        whole.len() / 2,
        whole.len() - page,
        page + 100,
        300,
        99,
        40,
        1,
    ] {
        std::fs::write(&path, &whole[..cut]).unwrap();
        assert_refused_untouched(&path, is_damaged);
        let err = Store::open_read_only(&path).map(|_| ()).unwrap_err();
        assert!(is_damaged(&err), "cut at {cut}: {err:?}");
        assert_eq!(std::fs::read(&path).unwrap(), &whole[..cut]);
        assert!(!side_files(&path)[0].exists());
    }
}

#[test]
fn malformed_pages_are_damage_not_a_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    closed_database(&path);
    let whole = std::fs::read(&path).unwrap();
    let pages = whole.len() / 4096;
    // Every page but the first in turn overwritten with garbage: whatever
    // reads it says the database is damaged (a page no query reads may go
    // unseen: at least most of them must be found).
    let mut found = 0;
    for page in 1..pages {
        let mut bytes = whole.clone();
        for (i, b) in bytes[page * 4096..(page + 1) * 4096].iter_mut().enumerate() {
            *b = (i * 7 + page) as u8;
        }
        std::fs::write(&path, &bytes).unwrap();
        for result in [
            read_all(Store::open(&path)),
            read_all(Store::open_read_only(&path).map(|s| s.unwrap())),
        ] {
            match result {
                Ok(()) => {}
                Err(e) if is_damaged(&e) => found += 1,
                Err(e) => panic!("page {page}: {e:?}"),
            }
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "page {page}");
    }
    assert!(
        found >= pages,
        "{found} of {} reads found the damage",
        2 * (pages - 1)
    );
    // The first page's schema damaged, its header intact: still ours.
    let mut bytes = whole.clone();
    for b in &mut bytes[100..4096] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    assert_refused_untouched(&path, is_damaged);
    let message = Store::open(&path).unwrap_err().to_string();
    assert!(
        message.contains("is damaged: SQLite reports")
            && message.contains("will not start a new state over it"),
        "{message}"
    );
}

#[test]
fn a_write_ahead_log_without_its_database_is_damage_not_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(store_with(&path, &model_a("t")));
    // An apply whose log was never checkpointed, then the database file lost.
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.execute_batch("UPDATE tenancies SET serial = 2")
        .unwrap();
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .unwrap();
    drop(conn);
    std::fs::remove_file(&path).unwrap();
    let [wal, _] = side_files(&path);
    let log = std::fs::read(&wal).unwrap();
    assert!(!log.is_empty());
    for err in [
        Store::open(&path).unwrap_err(),
        Store::open_read_only(&path).map(|_| ()).unwrap_err(),
        database_exists(&path).unwrap_err(),
    ] {
        assert!(
            matches!(&err, StateError::Damaged { detail, .. } if detail.contains("write-ahead log")),
            "{err:?}"
        );
    }
    assert!(!path.exists(), "no new database over the log");
    assert_eq!(std::fs::read(&wal).unwrap(), log);
    // An empty log is nothing: a new database may be made.
    std::fs::write(&wal, b"").unwrap();
    assert!(!database_exists(&path).unwrap());
    Store::open(&path).unwrap();
}

/// A new database takes its name only once it is whole: a reader watching
/// the path sees nothing, or a supportctl database, never an empty or
/// partial file; and nothing of its making is left beside it.
#[test]
fn a_new_database_is_never_seen_empty_or_partial() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..20 {
        let path = dir.path().join(format!("new{round}.db"));
        let done = std::sync::atomic::AtomicBool::new(false);
        let seen = std::thread::scope(|s| {
            let watcher = s.spawn(|| {
                let mut seen = Vec::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(bytes) = std::fs::read(&path) {
                        seen.push(bytes);
                    }
                }
                seen
            });
            let store = Store::open(&path);
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            store.unwrap();
            watcher.join().unwrap()
        });
        for bytes in seen {
            assert!(bytes.len() >= 4096, "a {}-byte file was seen", bytes.len());
            assert_eq!(bytes[68..72], APPLICATION_ID.to_be_bytes());
            assert_eq!(bytes[60..64], LATEST.to_be_bytes());
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".db") && !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    names.sort();
    assert_eq!(names, Vec::<String>::new(), "left beside the databases");
}

#[test]
fn two_processes_making_one_database_share_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let lineages: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| Store::open(&path).unwrap().lineage().to_owned()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(lineages.iter().all(|l| l == &lineages[0]), "{lineages:?}");
}

#[test]
fn opening_to_read_creates_migrates_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    assert!(Store::open_read_only(&path).unwrap().is_none());
    assert!(!path.exists(), "no database made by reading");

    let a = model_a("t");
    drop(store_with(&path, &a));
    let before = std::fs::read(&path).unwrap();
    let store = Store::open_read_only(&path).unwrap().unwrap();
    assert_eq!(store.load("t").unwrap().unwrap().model, without_renames(a));
    assert_eq!(store.history(None).unwrap().len(), 1);
    drop(store);
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // An older schema is read through a copy migrated in memory: the file
    // is left as it was, for a writer to migrate.
    let old = dir.path().join("old.db");
    drop(super::database_at(&old, 2));
    let bytes = std::fs::read(&old).unwrap();
    let store = Store::open_read_only(&old).unwrap().unwrap();
    assert!(store.tenancies().unwrap().is_empty());
    drop(store);
    assert_eq!(
        std::fs::read(&old).unwrap(),
        bytes,
        "a reader migrates nothing on disk"
    );
    // A writer migrates it.
    Store::open(&old).unwrap();
    Store::open_read_only(&old).unwrap().unwrap();
}

#[test]
fn a_database_read_from_memory_is_the_one_on_disk_and_a_pending_log_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let a = model_a("t");
    drop(store_with(&path, &a));
    let why = rusqlite::Error::InvalidQuery;
    let conn = snapshot(&path, &why, true).unwrap();
    let store = Store::with_lineage(conn, &path).unwrap();
    assert_eq!(store.load("t").unwrap().unwrap().model, without_renames(a));
    // A log that holds changes the file lacks cannot be read from memory.
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.execute_batch("UPDATE tenancies SET serial = 2")
        .unwrap();
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .unwrap();
    drop(conn);
    let err = snapshot(&path, &why, true).map(|_| ()).unwrap_err();
    assert!(matches!(err, StateError::LogUnreadable { .. }), "{err:?}");
}
