//! A tenancy read whole and written whole in PostgreSQL, for `state copy`
//! (see [`crate::state::dump`]): read in one repeatable-read snapshot,
//! written with one statement per table over arrays.

use postgres::GenericClient;
use postgres::types::ToSql;

use super::*;
use crate::model::Person;
use crate::state::JournalPlan;
use crate::state::dump::{IdKind, JournalRow, ServiceRequestDump, TenancyDump, TenancyRows, clash};
use crate::state::requests::parse_channel;
use crate::state::values::access_text;
use crate::state::{Comment, ServiceRequest};

/// Every tenancy name the state knows: with rows, or only in the journal or
/// the SRs (a retired tenancy).
const NAMES: &str = "SELECT n FROM (SELECT name FROM tenancies UNION SELECT tenancy FROM journal \
     UNION SELECT tenancy FROM service_requests) AS s(n) ORDER BY n COLLATE \"C\"";

/// The tables a copy writes, locked against other writers (readers go on)
/// for the length of its transaction, so that no id it found free is taken
/// before it commits.
const TABLES: &str = "tenancies, users, support_accounts, memberships, approvals, \
     support_links, user_former_ids, journal, service_requests, sr_comments";

/// The identity columns whose sequences a copy moves past the ids it wrote.
const IDENTITIES: &[(&str, &str)] = &[
    ("users", "person"),
    ("journal", "id"),
    ("service_requests", "id"),
    ("sr_comments", "id"),
];

impl Store {
    /// Everything of `tenancy`, read in one snapshot; `None` when the name
    /// is nowhere in the state.
    pub fn dump(&self, tenancy: &str) -> Result<Option<TenancyDump>, StateError> {
        let mut client = self.client();
        let mut tx = read_transaction(&mut client, &self.target)?;
        let dump = self.dump_in(&mut tx, tenancy)?;
        tx.commit().map_err(|e| pg_error(&self.target, e))?;
        Ok(dump)
    }

    /// Every tenancy the state knows (see [`NAMES`]), all in one snapshot.
    pub fn dump_all(&self) -> Result<Vec<TenancyDump>, StateError> {
        let pg = |e| pg_error(&self.target, e);
        let mut client = self.client();
        let mut tx = read_transaction(&mut client, &self.target)?;
        let names: Vec<String> = tx
            .query(NAMES, &[])
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut dumps = Vec::with_capacity(names.len());
        for name in names {
            dumps.extend(self.dump_in(&mut tx, &name)?);
        }
        tx.commit().map_err(pg)?;
        Ok(dumps)
    }

    fn dump_in(
        &self,
        conn: &mut impl GenericClient,
        tenancy: &str,
    ) -> Result<Option<TenancyDump>, StateError> {
        let pg = |e| pg_error(&self.target, e);
        let rows = match rows::load(conn, tenancy).map_err(|e| self.read_error(e))? {
            Some((model, serial)) => {
                let persons = conn
                    .query(
                        "SELECT id, person FROM users WHERE tenancy = $1",
                        &[&tenancy],
                    )
                    .map_err(pg)?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect();
                Some(TenancyRows {
                    model,
                    serial,
                    persons,
                })
            }
            None => None,
        };
        let former_ids: Vec<(String, i64)> = conn
            .query(
                "SELECT id, person FROM user_former_ids WHERE tenancy = $1 \
                 ORDER BY id COLLATE \"C\", person",
                &[&tenancy],
            )
            .map_err(pg)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let journal = conn
            .query(
                "SELECT id, kind, time, serial, add_count, change_count, destroy_count, \
                 plan_zlib, plan_size, config_digest, git_commit, git_changes, applied_by, \
                 host, config_path, pid FROM journal WHERE tenancy = $1 ORDER BY id",
                &[&tenancy],
            )
            .map_err(pg)?
            .iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let size: i64 = r.get(8);
                let size = usize::try_from(size).map_err(|_| StateError::Corrupt {
                    path: self.target.shown_path(),
                    detail: format!("journal entry {id}: its plan size is {size}"),
                })?;
                Ok(JournalRow {
                    id,
                    kind: r.get(1),
                    time: r.get(2),
                    serial: r.get(3),
                    add_count: r.get(4),
                    change_count: r.get(5),
                    destroy_count: r.get(6),
                    plan: JournalPlan::stored(r.get(7), size),
                    config_digest: r.get(9),
                    git_commit: r.get(10),
                    git_changes: r.get(11),
                    applied_by: r.get(12),
                    host: r.get(13),
                    config_path: r.get(14),
                    pid: r.get(15),
                })
            })
            .collect::<Result<Vec<_>, StateError>>()?;
        let mut service_requests: Vec<ServiceRequestDump> = conn
            .query(
                "SELECT id, tenancy, title, type, severity, opened_by, owner, contact_email, \
                 channel, opened_at, status, opener_person, owner_person, csi \
                 FROM service_requests WHERE tenancy = $1 ORDER BY id",
                &[&tenancy],
            )
            .map_err(pg)?
            .iter()
            .map(|r| ServiceRequestDump {
                request: ServiceRequest {
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
                },
                comments: Vec::new(),
            })
            .collect();
        for r in conn
            .query(
                "SELECT c.id, c.sr_id, c.author, c.channel, c.text, c.at FROM sr_comments c \
                 JOIN service_requests s ON s.id = c.sr_id WHERE s.tenancy = $1 ORDER BY c.id",
                &[&tenancy],
            )
            .map_err(pg)?
        {
            let sr_id: i64 = r.get(1);
            let comment = Comment {
                author: r.get(2),
                channel: parse_channel(r.get(3)),
                text: r.get(4),
                at: r.get(5),
            };
            if let Ok(i) = service_requests.binary_search_by_key(&sr_id, |s| s.request.id) {
                service_requests[i].comments.push((r.get(0), comment));
            }
        }
        if rows.is_none()
            && former_ids.is_empty()
            && journal.is_empty()
            && service_requests.is_empty()
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

    /// Writes `dumps` into this state in one transaction, every id and
    /// person number as it was, then moves each identity's sequence past
    /// the largest id (never back). The tables are locked against other
    /// writers first (waiting at most the lock timeout), so the ids found
    /// free stay free until the commit. Refused, with nothing written, as
    /// [`StateError::CopyRefused`] when the state already knows one of the
    /// tenancies or holds one of the ids.
    pub fn restore(&mut self, dumps: &[TenancyDump]) -> Result<(), StateError> {
        let target = self.target.clone();
        let pg = |e| pg_error(&target, e);
        let lock_timeout = self.lock_timeout;
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let client: &mut Client = &mut guard;
        let mut tx = begin(client, &target, self.read_only, "")?;
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = {}; LOCK TABLE {TABLES} IN EXCLUSIVE MODE",
            lock_timeout.as_millis().max(1)
        ))
        .map_err(|e| match pg(e) {
            StateError::Locked { what, holder, .. } => StateError::Locked {
                what,
                waited: lock_timeout,
                holder,
            },
            other => other,
        })?;
        if let Some(detail) = clash(dumps, |kind, ids, names| {
            taken(&mut tx, &target, kind, ids, names)
        })? {
            return Err(StateError::CopyRefused {
                what: target.shown_path(),
                detail,
            });
        }
        for dump in dumps {
            insert(&mut tx, dump).map_err(pg)?;
        }
        for (table, column) in IDENTITIES {
            tx.execute(
                &format!(
                    "SELECT setval(s.seq, greatest(m.top, coalesce(pg_sequence_last_value(s.seq), 0))) \
                     FROM (SELECT pg_get_serial_sequence('{table}', '{column}')::regclass AS seq) s, \
                     (SELECT max({column}) AS top FROM {table}) m WHERE m.top IS NOT NULL"
                ),
                &[],
            )
            .map_err(pg)?;
        }
        tx.commit().map_err(|e| {
            if let Some(db) = e.as_db_error()
                && *db.code() == SqlState::FOREIGN_KEY_VIOLATION
            {
                return StateError::Refused(format!(
                    "the copy into `{}` would leave broken references ({}); nothing was written",
                    target.shown(),
                    rows::broken_reference(db)
                ));
            }
            commit_error(&target, e)
        })?;
        Ok(())
    }
}

/// Which of `ids` (or of the tenancy `names`) the state already holds, as
/// text for the refusal: one query.
fn taken(
    tx: &mut impl GenericClient,
    target: &Target,
    kind: IdKind,
    ids: &[i64],
    names: &[String],
) -> Result<Vec<String>, StateError> {
    let pg = |e| pg_error(target, e);
    if kind == IdKind::Tenancy {
        return Ok(tx
            .query(
                "SELECT n FROM unnest($1::text[]) AS n WHERE \
                 EXISTS (SELECT 1 FROM tenancies WHERE name = n) \
                 OR EXISTS (SELECT 1 FROM journal WHERE tenancy = n) \
                 OR EXISTS (SELECT 1 FROM service_requests WHERE tenancy = n) \
                 ORDER BY n COLLATE \"C\"",
                &[&names],
            )
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect());
    }
    let held = match kind {
        IdKind::Tenancy => unreachable!("answered above"),
        IdKind::Journal => "EXISTS (SELECT 1 FROM journal WHERE id = x)",
        IdKind::ServiceRequest => "EXISTS (SELECT 1 FROM service_requests WHERE id = x)",
        IdKind::Comment => "EXISTS (SELECT 1 FROM sr_comments WHERE id = x)",
        IdKind::Person => {
            "EXISTS (SELECT 1 FROM users WHERE person = x) \
             OR EXISTS (SELECT 1 FROM user_former_ids WHERE person = x) \
             OR EXISTS (SELECT 1 FROM service_requests WHERE opener_person = x OR owner_person = x)"
        }
    };
    Ok(tx
        .query(
            &format!("SELECT DISTINCT x FROM unnest($1::bigint[]) AS x WHERE {held} ORDER BY x"),
            &[&ids],
        )
        .map_err(pg)?
        .iter()
        .map(|r| r.get::<_, i64>(0).to_string())
        .collect())
}

/// One `INSERT … SELECT * FROM unnest(…)` of `columns` (each `name type`)
/// with one array per column; nothing when there are no rows.
fn insert_arrays(
    tx: &mut impl GenericClient,
    table: &str,
    columns: &[&str],
    arrays: &[&(dyn ToSql + Sync)],
    rows: usize,
) -> Result<(), postgres::Error> {
    if rows == 0 {
        return Ok(());
    }
    let names: Vec<&str> = columns
        .iter()
        .map(|c| c.split_once(' ').map_or(*c, |(n, _)| n))
        .collect();
    let params: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "${}::{}[]",
                i + 1,
                c.split_once(' ').map_or("text", |(_, t)| t)
            )
        })
        .collect();
    tx.execute(
        &format!(
            "INSERT INTO {table} ({}) SELECT * FROM unnest({})",
            names.join(", "),
            params.join(", ")
        ),
        arrays,
    )?;
    Ok(())
}

/// Writes one tenancy's dump, ids kept: one statement per table. Foreign
/// keys between the configuration tables are checked at the commit; a
/// comment's SR is written before it, as its key is not deferred.
///
/// Long on purpose: a column list per table, each beside its arrays.
fn insert(tx: &mut impl GenericClient, dump: &TenancyDump) -> Result<(), postgres::Error> {
    let name = dump.name.as_str();
    let text = |n: usize| vec![name.to_owned(); n];
    if let Some(rows) = &dump.rows {
        let m = &rows.model;
        let t = &m.tenancy;
        tx.execute(
            "INSERT INTO tenancies (name, csi, home_region, admin, serial) VALUES ($1, $2, $3, $4, $5)",
            &[&t.name, &t.csi, &t.home_region, &t.admin, &rows.serial],
        )?;
        let n = m.users.len();
        let ids: Vec<&str> = m.users.keys().map(String::as_str).collect();
        let persons: Vec<Option<i64>> = m
            .users
            .keys()
            .map(|id| rows.persons.get(id).copied())
            .collect();
        let emails: Vec<&str> = m.users.values().map(|u| u.email.as_str()).collect();
        let names: Vec<Option<&str>> = m.users.values().map(|u| u.name.as_deref()).collect();
        // A user stored without a person takes one from the identity.
        let (with, without): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| persons[i].is_some());
        let pick =
            |v: &[&str], at: &[usize]| at.iter().map(|&i| v[i].to_owned()).collect::<Vec<_>>();
        insert_arrays(
            tx,
            "users",
            &["person bigint", "tenancy", "id", "email", "name"],
            &[
                &with.iter().map(|&i| persons[i]).collect::<Vec<_>>(),
                &text(with.len()),
                &pick(&ids, &with),
                &pick(&emails, &with),
                &with.iter().map(|&i| names[i]).collect::<Vec<_>>(),
            ],
            with.len(),
        )?;
        insert_arrays(
            tx,
            "users",
            &["tenancy", "id", "email", "name"],
            &[
                &text(without.len()),
                &pick(&ids, &without),
                &pick(&emails, &without),
                &without.iter().map(|&i| names[i]).collect::<Vec<_>>(),
            ],
            without.len(),
        )?;
        let a = &m.support_accounts;
        insert_arrays(
            tx,
            "support_accounts",
            &["tenancy", "user_id", "phone", "timezone"],
            &[
                &text(a.len()),
                &a.keys().collect::<Vec<_>>(),
                &a.values().map(|v| &v.phone).collect::<Vec<_>>(),
                &a.values().map(|v| &v.timezone).collect::<Vec<_>>(),
            ],
            a.len(),
        )?;
        insert_arrays(
            tx,
            "memberships",
            &["tenancy", "user_id"],
            &[
                &text(m.memberships.len()),
                &m.memberships.iter().collect::<Vec<_>>(),
            ],
            m.memberships.len(),
        )?;
        let a = &m.approvals;
        insert_arrays(
            tx,
            "approvals",
            &[
                "tenancy",
                "user_id",
                "role",
                "access",
                "approved_by",
                "expires",
            ],
            &[
                &text(a.len()),
                &a.keys().collect::<Vec<_>>(),
                &a.values().map(|v| v.role.as_str()).collect::<Vec<_>>(),
                &a.values()
                    .map(|v| access_text(&v.access))
                    .collect::<Vec<_>>(),
                &a.values().map(|v| &v.approved_by).collect::<Vec<_>>(),
                &a.values()
                    .map(|v| v.expires.map(|d| d.to_string()))
                    .collect::<Vec<_>>(),
            ],
            a.len(),
        )?;
        let l = &m.support_links;
        insert_arrays(
            tx,
            "support_links",
            &["tenancy", "user_id", "via", "expires"],
            &[
                &text(l.len()),
                &l.keys().collect::<Vec<_>>(),
                &l.values().map(|v| &v.via).collect::<Vec<_>>(),
                &l.values()
                    .map(|v| v.expires.map(|d| d.to_string()))
                    .collect::<Vec<_>>(),
            ],
            l.len(),
        )?;
    }
    let f = &dump.former_ids;
    insert_arrays(
        tx,
        "user_former_ids",
        &["tenancy", "id", "person bigint"],
        &[
            &text(f.len()),
            &f.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            &f.iter().map(|(_, p)| *p).collect::<Vec<_>>(),
        ],
        f.len(),
    )?;
    let j = &dump.journal;
    insert_arrays(
        tx,
        "journal",
        &[
            "id bigint",
            "tenancy",
            "time",
            "serial bigint",
            "kind",
            "add_count bigint",
            "change_count bigint",
            "destroy_count bigint",
            "plan_zlib bytea",
            "plan_size bigint",
            "config_digest",
            "git_commit",
            "git_changes",
            "applied_by",
            "host",
            "config_path",
            "pid bigint",
        ],
        &[
            &j.iter().map(|e| e.id).collect::<Vec<_>>(),
            &text(j.len()),
            &j.iter().map(|e| &e.time).collect::<Vec<_>>(),
            &j.iter().map(|e| e.serial).collect::<Vec<_>>(),
            &j.iter().map(|e| &e.kind).collect::<Vec<_>>(),
            &j.iter().map(|e| e.add_count).collect::<Vec<_>>(),
            &j.iter().map(|e| e.change_count).collect::<Vec<_>>(),
            &j.iter().map(|e| e.destroy_count).collect::<Vec<_>>(),
            &j.iter().map(|e| e.plan_zlib()).collect::<Vec<_>>(),
            &j.iter().map(|e| e.plan_size()).collect::<Vec<_>>(),
            &j.iter().map(|e| &e.config_digest).collect::<Vec<_>>(),
            &j.iter().map(|e| &e.git_commit).collect::<Vec<_>>(),
            &j.iter().map(|e| &e.git_changes).collect::<Vec<_>>(),
            &j.iter().map(|e| &e.applied_by).collect::<Vec<_>>(),
            &j.iter().map(|e| &e.host).collect::<Vec<_>>(),
            &j.iter().map(|e| &e.config_path).collect::<Vec<_>>(),
            &j.iter().map(|e| e.pid).collect::<Vec<_>>(),
        ],
        j.len(),
    )?;
    let s: Vec<&ServiceRequest> = dump.service_requests.iter().map(|s| &s.request).collect();
    insert_arrays(
        tx,
        "service_requests",
        &[
            "id bigint",
            "tenancy",
            "title",
            "type",
            "severity",
            "opened_by",
            "owner",
            "contact_email",
            "channel",
            "opened_at",
            "status",
            "opener_person bigint",
            "owner_person bigint",
            "csi",
        ],
        &[
            &s.iter().map(|r| r.id).collect::<Vec<_>>(),
            &text(s.len()),
            &s.iter().map(|r| &r.title).collect::<Vec<_>>(),
            &s.iter().map(|r| &r.kind).collect::<Vec<_>>(),
            &s.iter().map(|r| &r.severity).collect::<Vec<_>>(),
            &s.iter().map(|r| &r.opened_by).collect::<Vec<_>>(),
            &s.iter().map(|r| &r.owner).collect::<Vec<_>>(),
            &s.iter().map(|r| &r.contact_email).collect::<Vec<_>>(),
            &s.iter().map(|r| r.channel.as_str()).collect::<Vec<_>>(),
            &s.iter().map(|r| &r.opened_at).collect::<Vec<_>>(),
            &s.iter().map(|r| &r.status).collect::<Vec<_>>(),
            &s.iter().map(|r| r.opener.map(|p| p.0)).collect::<Vec<_>>(),
            &s.iter()
                .map(|r| r.owner_person.map(|p| p.0))
                .collect::<Vec<_>>(),
            &s.iter().map(|r| &r.csi).collect::<Vec<_>>(),
        ],
        s.len(),
    )?;
    let c: Vec<(i64, i64, &Comment)> = dump
        .service_requests
        .iter()
        .flat_map(|s| s.comments.iter().map(|(id, c)| (*id, s.request.id, c)))
        .collect();
    insert_arrays(
        tx,
        "sr_comments",
        &[
            "id bigint",
            "sr_id bigint",
            "author",
            "channel",
            "text",
            "at",
        ],
        &[
            &c.iter().map(|(id, _, _)| *id).collect::<Vec<_>>(),
            &c.iter().map(|(_, sr, _)| *sr).collect::<Vec<_>>(),
            &c.iter().map(|(_, _, c)| &c.author).collect::<Vec<_>>(),
            &c.iter()
                .map(|(_, _, c)| c.channel.as_str())
                .collect::<Vec<_>>(),
            &c.iter().map(|(_, _, c)| &c.text).collect::<Vec<_>>(),
            &c.iter().map(|(_, _, c)| &c.at).collect::<Vec<_>>(),
        ],
        c.len(),
    )?;
    Ok(())
}
