//! `sr open|show|list --format json`: service requests with their
//! comments (docs/reference.md, *show, access, sr and history*).

use serde::Serialize;

use crate::state::ServiceRequest;

/// One SR, as `sr show --format json` prints it and each element of `sr
/// list --format json`.
#[derive(Serialize)]
pub struct SrJson<'a> {
    id: i64,
    tenancy: &'a str,
    title: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    severity: &'a str,
    opened_by: &'a str,
    owner: &'a str,
    contact_email: &'a str,
    channel: &'static str,
    opened_at: &'a str,
    status: &'a str,
    /// The CSI the SR was opened under.
    csi: Option<&'a str>,
    comments: Vec<CommentJson<'a>>,
}

#[derive(Serialize)]
struct CommentJson<'a> {
    author: &'a str,
    channel: &'static str,
    text: &'a str,
    at: &'a str,
}

impl<'a> From<&'a ServiceRequest> for SrJson<'a> {
    fn from(sr: &'a ServiceRequest) -> Self {
        SrJson {
            id: sr.id,
            tenancy: &sr.tenancy,
            title: &sr.title,
            kind: &sr.kind,
            severity: &sr.severity,
            opened_by: &sr.opened_by,
            owner: &sr.owner,
            contact_email: &sr.contact_email,
            channel: sr.channel.as_str(),
            opened_at: &sr.opened_at,
            status: &sr.status,
            csi: sr.csi.as_deref(),
            comments: sr
                .comments
                .iter()
                .map(|c| CommentJson {
                    author: &c.author,
                    channel: c.channel.as_str(),
                    text: &c.text,
                    at: &c.at,
                })
                .collect(),
        }
    }
}

/// `sr open|show --format json`.
pub fn sr_json(sr: &ServiceRequest) -> String {
    super::pretty(&SrJson::from(sr))
}

/// `sr list --format json`: the SRs given, in that order.
pub fn sr_list_json<'a>(requests: impl IntoIterator<Item = &'a ServiceRequest>) -> String {
    super::pretty(&requests.into_iter().map(SrJson::from).collect::<Vec<_>>())
}
