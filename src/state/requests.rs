//! Service requests and their comments: runtime data kept beside the state.
//!
//! Opening an SR and commenting are decided against the tenancy's rows as
//! they are inside the write transaction, so an SR never attaches to a
//! half-applied state and a grant removed a moment ago is gone. The rule
//! itself (who may, as whom) is the caller's: this module only stores.
//!
//! An SR is written with the persons of the users who open and own it and
//! the tenancy's CSI, all read in that same transaction: the caller names
//! users by id, and this module, not the caller, says who they are.

use std::collections::BTreeMap;

use crate::model::Person;

pub use crate::access::Channel;
use crate::access::Parties;

/// Who each user of a tenancy is now: id → person.
pub type People = BTreeMap<String, Person>;

pub(super) fn parse_channel(text: &str) -> Channel {
    if text == "console" {
        Channel::Console
    } else {
        Channel::Mos
    }
}

/// An SR to be written: everything but its id and status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewServiceRequest {
    pub title: String,
    /// `tech`, `limit` or `account`.
    pub kind: String,
    /// `highest`, `high`, `medium` or `low`.
    pub severity: String,
    pub opened_by: String,
    pub owner: String,
    pub contact_email: String,
    pub channel: Channel,
    pub opened_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub author: String,
    pub channel: Channel,
    pub text: String,
    pub at: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRequest {
    pub id: i64,
    pub tenancy: String,
    pub title: String,
    pub kind: String,
    pub severity: String,
    /// The id of the user who opened it, then; kept as it was.
    pub opened_by: String,
    /// The id of the user who owns it, then; kept as it was.
    pub owner: String,
    pub contact_email: String,
    pub channel: Channel,
    pub opened_at: String,
    pub status: String,
    /// The person who opened it. `None` only for an SR stored before
    /// persons were, whose opener could not be told: no one.
    pub opener: Option<Person>,
    /// The person who owns it; `None` as for `opener`.
    pub owner_person: Option<Person>,
    /// The CSI it was opened under. Stored for every SR.
    pub csi: Option<String>,
    pub comments: Vec<Comment>,
}

impl ServiceRequest {
    /// Who the SR belongs to, as the access rules read it.
    pub fn parties(&self) -> Parties<'_> {
        Parties {
            opener: self.opener,
            owner: self.owner_person,
            csi: self.csi.as_deref(),
            opened_by: &self.opened_by,
            owner_id: &self.owner,
        }
    }
}
