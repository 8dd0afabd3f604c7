//! A tenancy read whole and written whole in SQLite, for `state copy`
//! (see [`crate::state::dump`]).

use rusqlite::{Connection, TransactionBehavior, params};

use super::*;
use crate::model::Person;
use crate::state::dump::{IdKind, JournalRow, ServiceRequestDump, TenancyDump, TenancyRows, clash};
use crate::state::requests::parse_channel;
use crate::state::values::access_text;
use crate::state::{Comment, ServiceRequest};

/// Every tenancy name the state knows: with rows, or only in the journal or
/// the SRs (a retired tenancy). Sorted by bytes, as PostgreSQL's `"C"`.
const NAMES: &str = "SELECT name FROM tenancies UNION SELECT tenancy FROM journal \
     UNION SELECT tenancy FROM service_requests ORDER BY 1";

impl Store {
    /// Everything of `tenancy`, read in one snapshot; `None` when the name
    /// is nowhere in the state.
    pub fn dump(&self, tenancy: &str) -> Result<Option<TenancyDump>, StateError> {
        let sql = |e| sql_error(&self.path, e);
        let tx = self.conn.unchecked_transaction().map_err(sql)?;
        let dump = dump_in(&tx, &self.path, tenancy)?;
        tx.commit().map_err(sql)?;
        Ok(dump)
    }

    /// Every tenancy the state knows (see [`NAMES`]), all read in one
    /// snapshot, so that a copy is of one moment of the state.
    pub fn dump_all(&self) -> Result<Vec<TenancyDump>, StateError> {
        let sql = |e| sql_error(&self.path, e);
        let tx = self.conn.unchecked_transaction().map_err(sql)?;
        let names: Vec<String> = tx
            .prepare(NAMES)
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sql)?;
        let mut dumps = Vec::with_capacity(names.len());
        for name in names {
            dumps.extend(dump_in(&tx, &self.path, &name)?);
        }
        tx.commit().map_err(sql)?;
        Ok(dumps)
    }

    /// Writes `dumps` into this state in one `BEGIN IMMEDIATE` transaction,
    /// every id and person number as it was. Refused, with nothing written,
    /// when the state already knows one of the tenancies or holds one of
    /// the ids ([`StateError::CopyRefused`]).
    ///
    /// AUTOINCREMENT needs no help: an explicit id above a table's sequence
    /// moves the sequence to it, so the next SR, comment, journal entry or
    /// person comes after the copied ones.
    pub fn restore(&mut self, dumps: &[TenancyDump]) -> Result<(), StateError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        if let Some(detail) = clash(dumps, |kind, ids, names| {
            taken(&tx, &path, kind, ids, names)
        })? {
            return Err(StateError::CopyRefused {
                what: path.clone(),
                detail,
            });
        }
        for dump in dumps {
            insert(&tx, dump).map_err(sql)?;
        }
        // COMMIT by hand, as an apply does: when a deferred foreign key
        // fails, the transaction is still open to say which.
        if let Err(e) = tx.execute_batch("COMMIT") {
            if e.sqlite_error().map(|f| f.extended_code)
                == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
            {
                let detail = rows::broken_references(&tx).map_err(sql)?;
                return Err(StateError::Refused(format!(
                    "the copy into `{}` would leave broken references ({detail}); nothing was written",
                    path.display()
                )));
            }
            return Err(sql(e));
        }
        Ok(())
    }
}

/// Which of `ids` (or of the tenancy `names`) the state already holds, as
/// text for the refusal.
fn taken(
    tx: &Connection,
    path: &Path,
    kind: IdKind,
    ids: &[i64],
    names: &[String],
) -> Result<Vec<String>, StateError> {
    let sql = |e| sql_error(path, e);
    let query = match kind {
        IdKind::Tenancy => {
            "SELECT EXISTS (SELECT 1 FROM tenancies WHERE name = ?1) \
             OR EXISTS (SELECT 1 FROM journal WHERE tenancy = ?1) \
             OR EXISTS (SELECT 1 FROM service_requests WHERE tenancy = ?1)"
        }
        IdKind::Journal => "SELECT EXISTS (SELECT 1 FROM journal WHERE id = ?1)",
        IdKind::ServiceRequest => "SELECT EXISTS (SELECT 1 FROM service_requests WHERE id = ?1)",
        IdKind::Comment => "SELECT EXISTS (SELECT 1 FROM sr_comments WHERE id = ?1)",
        IdKind::Person => {
            "SELECT EXISTS (SELECT 1 FROM users WHERE person = ?1) \
             OR EXISTS (SELECT 1 FROM user_former_ids WHERE person = ?1) \
             OR EXISTS (SELECT 1 FROM service_requests \
                 WHERE opener_person = ?1 OR owner_person = ?1)"
        }
    };
    let mut stmt = tx.prepare_cached(query).map_err(sql)?;
    let mut held = Vec::new();
    if kind == IdKind::Tenancy {
        for name in names {
            if stmt.query_row([name], |r| r.get(0)).map_err(sql)? {
                held.push(name.clone());
            }
        }
    } else {
        for id in ids {
            if stmt.query_row([id], |r| r.get(0)).map_err(sql)? {
                held.push(id.to_string());
            }
        }
    }
    Ok(held)
}

/// `tenancy` read whole inside the caller's transaction.
fn dump_in(
    conn: &Connection,
    path: &Path,
    tenancy: &str,
) -> Result<Option<TenancyDump>, StateError> {
    let sql = |e| sql_error(path, e);
    let corrupt = |detail: String| StateError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let rows = match rows::load(conn, tenancy) {
        Ok(found) => found,
        Err(rows::ReadError::Corrupt(detail)) => return Err(corrupt(detail)),
        Err(rows::ReadError::Sql(e)) => return Err(sql(e)),
    };
    let rows = match rows {
        Some((model, serial)) => {
            let persons = conn
                .prepare_cached("SELECT id, person FROM users WHERE tenancy = ?1")
                .and_then(|mut s| {
                    s.query_map([tenancy], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect()
                })
                .map_err(sql)?;
            Some(TenancyRows {
                model,
                serial,
                persons,
            })
        }
        None => None,
    };
    let former_ids: Vec<(String, i64)> = conn
        .prepare_cached(
            "SELECT id, person FROM user_former_ids WHERE tenancy = ?1 ORDER BY id, person",
        )
        .and_then(|mut s| {
            s.query_map([tenancy], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(sql)?;
    let journal = journal_rows(conn, path, tenancy)?;
    let service_requests = service_requests(conn, tenancy).map_err(sql)?;
    if rows.is_none() && former_ids.is_empty() && journal.is_empty() && service_requests.is_empty()
    {
        return Ok(None);
    }
    Ok(Some(TenancyDump {
        name: tenancy.to_owned(),
        rows,
        former_ids,
        journal,
        service_requests,
    }))
}

/// The tenancy's journal, every column, by id; a plan still held as text
/// (written before schema v3) comes out compressed.
fn journal_rows(
    conn: &Connection,
    path: &Path,
    tenancy: &str,
) -> Result<Vec<JournalRow>, StateError> {
    let sql = |e| sql_error(path, e);
    type Plan = (String, Option<Vec<u8>>, Option<i64>);
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, kind, time, serial, add_count, change_count, destroy_count, \
             plan_json, plan_zlib, plan_size, config_digest, git_commit, git_changes, \
             applied_by, host, config_path, pid FROM journal WHERE tenancy = ?1 ORDER BY id",
        )
        .map_err(sql)?;
    let raw = stmt
        .query_map([tenancy], |r| {
            let plan: Plan = (r.get(7)?, r.get(8)?, r.get(9)?);
            Ok((
                JournalRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    time: r.get(2)?,
                    serial: r.get(3)?,
                    add_count: r.get(4)?,
                    change_count: r.get(5)?,
                    destroy_count: r.get(6)?,
                    plan: JournalPlan::new(""),
                    config_digest: r.get(10)?,
                    git_commit: r.get(11)?,
                    git_changes: r.get(12)?,
                    applied_by: r.get(13)?,
                    host: r.get(14)?,
                    config_path: r.get(15)?,
                    pid: r.get(16)?,
                },
                plan,
            ))
        })
        .map_err(sql)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql)?;
    raw.into_iter()
        .map(|(mut row, plan)| {
            let corrupt = |detail: &str| StateError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("journal entry {}: {detail}", row.id),
            };
            row.plan = match plan {
                (text, None, None) => JournalPlan::new(&text),
                (_, Some(zlib), Some(len)) => JournalPlan::stored(
                    zlib,
                    usize::try_from(len).map_err(|_| corrupt("its plan size is negative"))?,
                ),
                _ => return Err(corrupt("its plan is half there")),
            };
            Ok(row)
        })
        .collect()
}

/// The tenancy's SRs by id, each with its comments and their ids.
fn service_requests(conn: &Connection, tenancy: &str) -> rusqlite::Result<Vec<ServiceRequestDump>> {
    let mut requests: Vec<ServiceRequestDump> = conn
        .prepare_cached(
            "SELECT id, tenancy, title, type, severity, opened_by, owner, contact_email, \
             channel, opened_at, status, opener_person, owner_person, csi \
             FROM service_requests WHERE tenancy = ?1 ORDER BY id",
        )?
        .query_map([tenancy], |r| {
            Ok(ServiceRequestDump {
                request: ServiceRequest {
                    id: r.get(0)?,
                    tenancy: r.get(1)?,
                    title: r.get(2)?,
                    kind: r.get(3)?,
                    severity: r.get(4)?,
                    opened_by: r.get(5)?,
                    owner: r.get(6)?,
                    contact_email: r.get(7)?,
                    channel: parse_channel(&r.get::<_, String>(8)?),
                    opened_at: r.get(9)?,
                    status: r.get(10)?,
                    opener: r.get::<_, Option<i64>>(11)?.map(Person),
                    owner_person: r.get::<_, Option<i64>>(12)?.map(Person),
                    csi: r.get(13)?,
                    comments: Vec::new(),
                },
                comments: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.sr_id, c.author, c.channel, c.text, c.at FROM sr_comments c \
         JOIN service_requests s ON s.id = c.sr_id WHERE s.tenancy = ?1 ORDER BY c.id",
    )?;
    let comments = stmt.query_map([tenancy], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            Comment {
                author: r.get(2)?,
                channel: parse_channel(&r.get::<_, String>(3)?),
                text: r.get(4)?,
                at: r.get(5)?,
            },
        ))
    })?;
    for comment in comments {
        let (id, sr_id, comment) = comment?;
        if let Ok(i) = requests.binary_search_by_key(&sr_id, |s| s.request.id) {
            requests[i].comments.push((id, comment));
        }
    }
    Ok(requests)
}

/// Writes one tenancy's dump, ids kept. Foreign keys between the
/// configuration tables are checked at the commit; a comment's SR is
/// written before it, as its key is not deferred.
fn insert(tx: &Connection, dump: &TenancyDump) -> rusqlite::Result<()> {
    let name = dump.name.as_str();
    if let Some(rows) = &dump.rows {
        let m = &rows.model;
        let t = &m.tenancy;
        tx.execute(
            "INSERT INTO tenancies (name, csi, home_region, admin, serial) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![t.name, t.csi, t.home_region, t.admin, rows.serial],
        )?;
        let mut users = tx.prepare_cached(
            "INSERT INTO users (person, tenancy, id, email, name) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (id, user) in &m.users {
            // A user without a person cannot be read back from either
            // backend; NULL lets SQLite give one rather than fail.
            let person = rows.persons.get(id);
            users.execute(params![person, name, id, user.email, user.name])?;
        }
        let mut accounts = tx.prepare_cached(
            "INSERT INTO support_accounts (tenancy, user, phone, timezone) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (id, a) in &m.support_accounts {
            accounts.execute(params![name, id, a.phone, a.timezone])?;
        }
        let mut memberships =
            tx.prepare_cached("INSERT INTO memberships (tenancy, user) VALUES (?1, ?2)")?;
        for id in &m.memberships {
            memberships.execute(params![name, id])?;
        }
        let mut approvals = tx.prepare_cached(
            "INSERT INTO approvals (tenancy, user, role, access, approved_by, expires) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (id, a) in &m.approvals {
            approvals.execute(params![
                name,
                id,
                a.role.as_str(),
                access_text(&a.access),
                a.approved_by,
                a.expires.map(|d| d.to_string()),
            ])?;
        }
        let mut links = tx.prepare_cached(
            "INSERT INTO support_links (tenancy, user, via, expires) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (id, l) in &m.support_links {
            links.execute(params![name, id, l.via, l.expires.map(|d| d.to_string())])?;
        }
    }
    let mut former =
        tx.prepare_cached("INSERT INTO user_former_ids (tenancy, id, person) VALUES (?1, ?2, ?3)")?;
    for (id, person) in &dump.former_ids {
        former.execute(params![name, id, person])?;
    }
    let mut journal = tx.prepare_cached(
        "INSERT INTO journal (id, tenancy, time, serial, add_count, change_count, destroy_count, \
         plan_json, plan_zlib, plan_size, config_digest, git_commit, git_changes, kind, \
         applied_by, host, config_path, pid) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '', ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?;
    for j in &dump.journal {
        journal.execute(params![
            j.id,
            name,
            j.time,
            j.serial,
            j.add_count,
            j.change_count,
            j.destroy_count,
            j.plan_zlib(),
            j.plan_size(),
            j.config_digest,
            j.git_commit,
            j.git_changes,
            j.kind,
            j.applied_by,
            j.host,
            j.config_path,
            j.pid,
        ])?;
    }
    let mut requests = tx.prepare_cached(
        "INSERT INTO service_requests (id, tenancy, title, type, severity, opened_by, owner, \
         contact_email, channel, opened_at, status, opener_person, owner_person, csi) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    let mut comments = tx.prepare_cached(
        "INSERT INTO sr_comments (id, sr_id, author, channel, text, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for s in &dump.service_requests {
        let r = &s.request;
        requests.execute(params![
            r.id,
            name,
            r.title,
            r.kind,
            r.severity,
            r.opened_by,
            r.owner,
            r.contact_email,
            r.channel.as_str(),
            r.opened_at,
            r.status,
            r.opener.map(|p| p.0),
            r.owner_person.map(|p| p.0),
            r.csi,
        ])?;
        for (id, c) in &s.comments {
            comments.execute(params![
                id,
                r.id,
                c.author,
                c.channel.as_str(),
                c.text,
                c.at
            ])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state with tenancy `t` written by hand, as an older supportctl
    /// left it: a journal entry whose plan is still text (before schema
    /// v3), a renamed user, an SR with a comment, and ids that do not start
    /// at 1; beside it, retired tenancy `gone`, with only a journal entry.
    fn written_by_hand(dir: &tempfile::TempDir) -> Store {
        let store = Store::open(&dir.path().join("a.db")).unwrap();
        store
            .conn
            .execute_batch(
                "BEGIN;
                 INSERT INTO tenancies (name, csi, home_region, admin, serial) VALUES ('t', '1', NULL, 'ann', 4);
                 INSERT INTO users (person, tenancy, id, email, name) VALUES (5, 't', 'ann', 'ann@x', 'Ann');
                 INSERT INTO user_former_ids (tenancy, id, person) VALUES ('t', 'anne', 5);
                 INSERT INTO journal (id, tenancy, time, serial, add_count, change_count, destroy_count,
                     plan_json, config_digest) VALUES (3, 't', '2024-01-01T00:00:00Z', 4, 2, 0, 0, '{\"old\":true}', 'd');
                 INSERT INTO journal (id, tenancy, time, serial, add_count, change_count, destroy_count,
                     plan_json, plan_zlib, plan_size, config_digest, kind) VALUES (8, 'gone', '2024-02-01T00:00:00Z', 2, 0, 0, 1, '', NULL, NULL, 'e', 'retire');
                 INSERT INTO service_requests (id, tenancy, title, type, severity, opened_by, owner,
                     contact_email, channel, opened_at, opener_person, owner_person, csi)
                     VALUES (4, 't', 'x', 'tech', 'low', 'anne', 'anne', 'ann@x', 'mos', '2024-01-02T00:00:00Z', 5, 5, '1');
                 INSERT INTO sr_comments (id, sr_id, author, channel, text, at) VALUES (9, 4, 'anne', 'mos', 'hi', '2024-01-03T00:00:00Z');
                 COMMIT;",
            )
            .unwrap();
        store
    }

    #[test]
    fn a_copy_keeps_every_id_and_compresses_a_plan_stored_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let source = written_by_hand(&dir);
        let dumps = source.dump_all().unwrap();
        assert_eq!(
            dumps.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            ["gone", "t"]
        );
        let t = &dumps[1];
        assert_eq!(t.journal[0].plan, JournalPlan::new("{\"old\":true}"));
        assert_eq!(t.former_ids, [("anne".to_string(), 5)]);
        assert_eq!(t.rows.as_ref().unwrap().persons["ann"], 5);
        assert_eq!(t.service_requests[0].comments[0].0, 9);
        assert!(dumps[0].rows.is_none());

        let mut copy = Store::open(&dir.path().join("b.db")).unwrap();
        copy.restore(&dumps).unwrap();
        assert_eq!(copy.dump_all().unwrap(), dumps);
        assert_eq!(
            copy.history(Some("t")).unwrap()[0].plan_json,
            "{\"old\":true}"
        );
        assert_eq!(copy.retired_tenancies().unwrap(), ["gone"]);

        // AUTOINCREMENT went past the copied ids by itself.
        let next: Vec<(String, i64)> = copy
            .conn
            .prepare("SELECT name, seq FROM sqlite_sequence ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (table, at_least) in [
            ("journal", 8),
            ("service_requests", 4),
            ("sr_comments", 9),
            ("users", 5),
        ] {
            let seq = next.iter().find(|(n, _)| n == table).map(|(_, s)| *s);
            assert!(seq >= Some(at_least), "{table}: {seq:?} in {next:?}");
        }
    }

    #[test]
    fn a_copy_into_a_state_that_knows_a_tenancy_or_an_id_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let source = written_by_hand(&dir);
        let dumps = source.dump_all().unwrap();
        let mut copy = Store::open(&dir.path().join("b.db")).unwrap();
        copy.restore(&dumps).unwrap();
        let before = copy.dump_all().unwrap();

        let err = copy.restore(&dumps).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "cannot copy into `{}`: it already holds tenancies `gone`, `t` (rows, journal or SRs); nothing was written\n  hint: ",
                dir.path().join("b.db").display()
            )),
            "{err}"
        );
        // Another tenancy, whose SR id is taken: refused too.
        let mut other = dumps[1].clone();
        other.name = "u".into();
        other.journal.clear();
        other.former_ids.clear();
        other.rows = None;
        other.service_requests[0].comments.clear();
        other.service_requests[0].request.opener = None;
        other.service_requests[0].request.owner_person = None;
        let err = copy.restore(&[other]).unwrap_err();
        assert!(
            err.message()
                .ends_with("its SR id 4 is already taken there; nothing was written"),
            "{err}"
        );
        assert_eq!(copy.dump_all().unwrap(), before);
    }
}
