//! Service requests in SQLite: stored and read inside the write
//! transaction that decides them (see [`crate::state::requests`]).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{StateError, Store, rows, sql_error};
use crate::model::{Model, Person};
use crate::state::requests::parse_channel;
use crate::state::{Comment, NewServiceRequest, People, ServiceRequest};

const SELECT_SR: &str = "SELECT id, tenancy, title, type, severity, opened_by, owner, contact_email, channel, opened_at, status, opener_person, owner_person, csi FROM service_requests";

fn sr_from_row(r: &rusqlite::Row) -> rusqlite::Result<ServiceRequest> {
    Ok(ServiceRequest {
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
    })
}

/// The person of user `id` of `tenancy`, read in the caller's transaction.
fn person_of(conn: &Connection, tenancy: &str, id: &str) -> rusqlite::Result<Option<Person>> {
    conn.prepare_cached("SELECT person FROM users WHERE tenancy = ?1 AND id = ?2")?
        .query_row([tenancy, id], |r| r.get(0).map(Person))
        .optional()
}

/// Every user's person, read in the caller's transaction: one query.
fn people_of(conn: &Connection, tenancy: &str) -> rusqlite::Result<People> {
    conn.prepare_cached("SELECT id, person FROM users WHERE tenancy = ?1")?
        .query_map([tenancy], |r| Ok((r.get(0)?, Person(r.get(1)?))))?
        .collect()
}

/// The tenancy's rows, read inside the caller's transaction.
fn tenancy_model(
    conn: &rusqlite::Connection,
    tenancy: &str,
    path: &std::path::Path,
) -> Result<Model, StateError> {
    match rows::load(conn, tenancy) {
        Ok(Some((model, _))) => Ok(model),
        Ok(None) => Err(StateError::Mismatch {
            tenancy: tenancy.to_owned(),
            detail: "the tenancy is not in the state".into(),
        }),
        Err(rows::ReadError::Corrupt(detail)) => Err(StateError::Corrupt {
            path: path.to_path_buf(),
            detail,
        }),
        Err(rows::ReadError::Sql(e)) => Err(sql_error(path, e)),
    }
}

impl Store {
    /// The tenancy's state with the person of each of its users, read
    /// together (one snapshot), or `None` when the tenancy is not in the
    /// state.
    pub fn load_with_people(&self, tenancy: &str) -> Result<Option<(Model, People)>, StateError> {
        let sql = |e| sql_error(&self.path, e);
        let tx = self.conn.unchecked_transaction().map_err(sql)?;
        let model = match tenancy_model(&tx, tenancy, &self.path) {
            Ok(model) => model,
            Err(StateError::Mismatch { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let people = people_of(&tx, tenancy).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(Some((model, people)))
    }

    /// The ids the persons who were once `id` in `tenancy` have now, when
    /// they were renamed away from it and are still users; sorted.
    pub fn renamed_from(&self, tenancy: &str, id: &str) -> Result<Vec<String>, StateError> {
        let sql = |e| sql_error(&self.path, e);
        self.conn
            .prepare_cached(
                "SELECT u.id FROM user_former_ids f \
                 JOIN users u ON u.person = f.person AND u.tenancy = f.tenancy \
                 WHERE f.tenancy = ?1 AND f.id = ?2 AND u.id <> ?2 ORDER BY u.id",
            )
            .map_err(sql)?
            .query_map([tenancy, id], |r| r.get(0))
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)
    }

    /// Opens an SR in `tenancy`. `decide` sees the tenancy's state inside
    /// the write transaction and returns the SR to write, or its refusal,
    /// which writes nothing. `Ok(Err(_))` is a refusal. The SR is stored
    /// with the persons of its `opened_by` and `owner` users and the
    /// tenancy's CSI, as they are in that transaction.
    pub fn open_service_request<E>(
        &mut self,
        tenancy: &str,
        decide: impl FnOnce(&Model) -> Result<NewServiceRequest, E>,
    ) -> Result<Result<ServiceRequest, E>, StateError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let model = tenancy_model(&tx, tenancy, &path)?;
        let new = match decide(&model) {
            Ok(new) => new,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let person = |id: &str| match person_of(&tx, tenancy, id) {
            Ok(Some(person)) => Ok(person),
            Ok(None) => Err(StateError::Mismatch {
                tenancy: tenancy.to_owned(),
                detail: format!("an SR names `{id}`, who is not a user"),
            }),
            Err(e) => Err(sql(e)),
        };
        let opener = person(&new.opened_by)?;
        let owner = person(&new.owner)?;
        let csi = model.tenancy.csi;
        tx.execute(
            "INSERT INTO service_requests (tenancy, title, type, severity, opened_by, owner, contact_email, channel, opened_at, opener_person, owner_person, csi) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                tenancy,
                new.title,
                new.kind,
                new.severity,
                new.opened_by,
                new.owner,
                new.contact_email,
                new.channel.as_str(),
                new.opened_at,
                opener.0,
                owner.0,
                csi,
            ],
        )
        .map_err(sql)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(sql)?;
        Ok(Ok(ServiceRequest {
            id,
            tenancy: tenancy.to_owned(),
            title: new.title,
            kind: new.kind,
            severity: new.severity,
            opened_by: new.opened_by,
            owner: new.owner,
            contact_email: new.contact_email,
            channel: new.channel,
            opened_at: new.opened_at,
            status: "open".into(),
            opener: Some(opener),
            owner_person: Some(owner),
            csi: Some(csi),
            comments: Vec::new(),
        }))
    }

    /// Every SR of `tenancy` with its comments, by id: two queries.
    pub fn service_requests(&self, tenancy: &str) -> Result<Vec<ServiceRequest>, StateError> {
        let sql = |e| sql_error(&self.path, e);
        let tx = self.conn.unchecked_transaction().map_err(sql)?;
        let mut requests: Vec<ServiceRequest> = tx
            .prepare_cached(&format!("{SELECT_SR} WHERE tenancy = ?1 ORDER BY id"))
            .map_err(sql)?
            .query_map([tenancy], sr_from_row)
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?;
        let mut statement = tx
            .prepare_cached(
                "SELECT c.sr_id, c.author, c.channel, c.text, c.at FROM sr_comments c JOIN service_requests s ON s.id = c.sr_id WHERE s.tenancy = ?1 ORDER BY c.id",
            )
            .map_err(sql)?;
        let comments = statement
            .query_map([tenancy], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    Comment {
                        author: r.get(1)?,
                        channel: parse_channel(&r.get::<_, String>(2)?),
                        text: r.get(3)?,
                        at: r.get(4)?,
                    },
                ))
            })
            .map_err(sql)?;
        for comment in comments {
            let (sr_id, comment) = comment.map_err(sql)?;
            if let Ok(i) = requests.binary_search_by_key(&sr_id, |r| r.id) {
                requests[i].comments.push(comment);
            }
        }
        drop(statement);
        tx.commit().map_err(sql)?;
        Ok(requests)
    }

    /// Adds a comment by `user` to SR `id` of `tenancy`. `decide` sees the
    /// state, `user`'s person (`None` when it is not a user) and the SR
    /// inside the write transaction and returns the comment, or its
    /// refusal. `Ok(None)`: no such SR.
    pub fn add_comment<E>(
        &mut self,
        tenancy: &str,
        id: i64,
        user: &str,
        decide: impl FnOnce(&Model, Option<Person>, &ServiceRequest) -> Result<Comment, E>,
    ) -> Result<Option<Result<Comment, E>>, StateError> {
        let path = self.path.clone();
        let sql = |e| sql_error(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let Some(request) = tx
            .query_row(
                &format!("{SELECT_SR} WHERE tenancy = ?1 AND id = ?2"),
                params![tenancy, id],
                sr_from_row,
            )
            .optional()
            .map_err(sql)?
        else {
            return Ok(None);
        };
        let model = tenancy_model(&tx, tenancy, &path)?;
        let person = person_of(&tx, tenancy, user).map_err(sql)?;
        let comment = match decide(&model, person, &request) {
            Ok(comment) => comment,
            Err(refusal) => return Ok(Some(Err(refusal))),
        };
        tx.execute(
            "INSERT INTO sr_comments (sr_id, author, channel, text, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, comment.author, comment.channel.as_str(), comment.text, comment.at],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(Some(Ok(comment)))
    }
}
