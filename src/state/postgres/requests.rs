//! Service requests in PostgreSQL: decided and stored inside a transaction
//! that holds the tenancy's lock, so that an SR never attaches to a
//! half-applied state (see [`crate::state::requests`]).

use postgres::GenericClient;

use super::*;
use crate::model::{Model, Person};
use crate::state::requests::parse_channel;
use crate::state::{Comment, NewServiceRequest, People, ServiceRequest};

const SELECT_SR: &str = "SELECT id, tenancy, title, type, severity, opened_by, owner, \
     contact_email, channel, opened_at, status, opener_person, owner_person, csi \
     FROM service_requests";

fn sr_from_row(r: &postgres::Row) -> ServiceRequest {
    ServiceRequest {
        id: r.get(0),
        tenancy: r.get(1),
        title: r.get(2),
        kind: r.get(3),
        severity: r.get(4),
        opened_by: r.get(5),
        owner: r.get(6),
        contact_email: r.get(7),
        channel: parse_channel(r.get(8)),
        opened_at: r.get(9),
        status: r.get(10),
        opener: r.get::<_, Option<i64>>(11).map(Person),
        owner_person: r.get::<_, Option<i64>>(12).map(Person),
        csi: r.get(13),
        comments: Vec::new(),
    }
}

fn person_of(
    conn: &mut impl GenericClient,
    tenancy: &str,
    id: &str,
) -> Result<Option<Person>, postgres::Error> {
    Ok(conn
        .query_opt(
            "SELECT person FROM users WHERE tenancy = $1 AND id = $2",
            &[&tenancy, &id],
        )?
        .map(|r| Person(r.get(0))))
}

impl Store {
    /// The tenancy's rows, read inside the caller's transaction.
    fn tenancy_model(
        &self,
        conn: &mut impl GenericClient,
        tenancy: &str,
    ) -> Result<Option<Model>, StateError> {
        rows::load(conn, tenancy)
            .map(|found| found.map(|(model, _)| model))
            .map_err(|e| self.read_error(e))
    }

    /// The tenancy's state with the person of each of its users, read in
    /// one snapshot, or `None` when the tenancy is not in the state.
    pub fn load_with_people(&self, tenancy: &str) -> Result<Option<(Model, People)>, StateError> {
        let mut client = self.client();
        let mut tx = read_transaction(&mut client, &self.target)?;
        let Some(model) = self.tenancy_model(&mut tx, tenancy)? else {
            return Ok(None);
        };
        let people = tx
            .query(
                "SELECT id, person FROM users WHERE tenancy = $1",
                &[&tenancy],
            )
            .map_err(|e| pg_error(&self.target, e))?
            .iter()
            .map(|r| (r.get(0), Person(r.get(1))))
            .collect();
        tx.commit().map_err(|e| pg_error(&self.target, e))?;
        Ok(Some((model, people)))
    }

    /// The ids the persons who were once `id` in `tenancy` have now, when
    /// they were renamed away from it and are still users; sorted.
    pub fn renamed_from(&self, tenancy: &str, id: &str) -> Result<Vec<String>, StateError> {
        self.read_rows(
            |tx| {
                tx.query(
                    "SELECT u.id FROM user_former_ids f \
                     JOIN users u ON u.person = f.person AND u.tenancy = f.tenancy \
                     WHERE f.tenancy = $1 AND f.id = $2 AND u.id <> $2 ORDER BY u.id COLLATE \"C\"",
                    &[&tenancy, &id],
                )
            },
            |r| Ok(r.get(0)),
        )
    }

    /// Opens an SR in `tenancy`, as `decide` says from the tenancy's state
    /// inside the transaction that holds its lock. `Ok(Err(_))` is a
    /// refusal, which writes nothing.
    pub fn open_service_request<E>(
        &mut self,
        tenancy: &str,
        decide: impl FnOnce(&Model) -> Result<NewServiceRequest, E>,
    ) -> Result<Result<ServiceRequest, E>, StateError> {
        let target = self.target.clone();
        let pg = |e| pg_error(&target, e);
        let lock_timeout = self.lock_timeout;
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let client: &mut Client = &mut guard;
        let mut tx = begin_write(client, &target, tenancy, lock_timeout, self.read_only)?;
        let Some(model) = self.tenancy_model(&mut tx, tenancy)? else {
            return Err(StateError::Mismatch {
                tenancy: tenancy.to_owned(),
                detail: "the tenancy is not in the state".into(),
            });
        };
        let new = match decide(&model) {
            Ok(new) => new,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let mut person = |id: &str| match person_of(&mut tx, tenancy, id) {
            Ok(Some(person)) => Ok(person),
            Ok(None) => Err(StateError::Mismatch {
                tenancy: tenancy.to_owned(),
                detail: format!("an SR names `{id}`, who is not a user"),
            }),
            Err(e) => Err(pg(e)),
        };
        let opener = person(&new.opened_by)?;
        let owner = person(&new.owner)?;
        let csi = model.tenancy.csi;
        let id: i64 = tx
            .query_one(
                "INSERT INTO service_requests (tenancy, title, type, severity, opened_by, owner, \
                 contact_email, channel, opened_at, opener_person, owner_person, csi) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
                &[
                    &tenancy,
                    &new.title,
                    &new.kind,
                    &new.severity,
                    &new.opened_by,
                    &new.owner,
                    &new.contact_email,
                    &new.channel.as_str(),
                    &new.opened_at,
                    &opener.0,
                    &owner.0,
                    &csi,
                ],
            )
            .map_err(pg)?
            .get(0);
        tx.commit().map_err(|e| commit_error(&target, e))?;
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

    /// Every SR of `tenancy` with its comments, by id: two queries in one
    /// snapshot.
    pub fn service_requests(&self, tenancy: &str) -> Result<Vec<ServiceRequest>, StateError> {
        let pg = |e| pg_error(&self.target, e);
        let mut client = self.client();
        let mut tx = read_transaction(&mut client, &self.target)?;
        let mut requests: Vec<ServiceRequest> = tx
            .query(
                &format!("{SELECT_SR} WHERE tenancy = $1 ORDER BY id"),
                &[&tenancy],
            )
            .map_err(pg)?
            .iter()
            .map(sr_from_row)
            .collect();
        let comments = tx
            .query(
                "SELECT c.sr_id, c.author, c.channel, c.text, c.at FROM sr_comments c \
                 JOIN service_requests s ON s.id = c.sr_id WHERE s.tenancy = $1 ORDER BY c.id",
                &[&tenancy],
            )
            .map_err(pg)?;
        for r in comments {
            let sr_id: i64 = r.get(0);
            let comment = Comment {
                author: r.get(1),
                channel: parse_channel(r.get(2)),
                text: r.get(3),
                at: r.get(4),
            };
            if let Ok(i) = requests.binary_search_by_key(&sr_id, |r| r.id) {
                requests[i].comments.push(comment);
            }
        }
        tx.commit().map_err(pg)?;
        Ok(requests)
    }

    /// Adds a comment by `user` to SR `id` of `tenancy`, as `decide` says
    /// inside the transaction that holds the tenancy's lock. `Ok(None)`: no
    /// such SR.
    pub fn add_comment<E>(
        &mut self,
        tenancy: &str,
        id: i64,
        user: &str,
        decide: impl FnOnce(&Model, Option<Person>, &ServiceRequest) -> Result<Comment, E>,
    ) -> Result<Option<Result<Comment, E>>, StateError> {
        let target = self.target.clone();
        let pg = |e| pg_error(&target, e);
        let lock_timeout = self.lock_timeout;
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let client: &mut Client = &mut guard;
        let mut tx = begin_write(client, &target, tenancy, lock_timeout, self.read_only)?;
        let Some(request) = tx
            .query_opt(
                &format!("{SELECT_SR} WHERE tenancy = $1 AND id = $2"),
                &[&tenancy, &id],
            )
            .map_err(pg)?
            .map(|r| sr_from_row(&r))
        else {
            return Ok(None);
        };
        let Some(model) = self.tenancy_model(&mut tx, tenancy)? else {
            return Err(StateError::Mismatch {
                tenancy: tenancy.to_owned(),
                detail: "the tenancy is not in the state".into(),
            });
        };
        let person = person_of(&mut tx, tenancy, user).map_err(pg)?;
        let comment = match decide(&model, person, &request) {
            Ok(comment) => comment,
            Err(refusal) => return Ok(Some(Err(refusal))),
        };
        tx.execute(
            "INSERT INTO sr_comments (sr_id, author, channel, text, at) VALUES ($1, $2, $3, $4, $5)",
            &[
                &id,
                &comment.author,
                &comment.channel.as_str(),
                &comment.text,
                &comment.at,
            ],
        )
        .map_err(pg)?;
        tx.commit().map_err(|e| commit_error(&target, e))?;
        Ok(Some(Ok(comment)))
    }
}
