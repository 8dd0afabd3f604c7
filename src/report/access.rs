//! `access --format json`: how users reach Oracle Support, one object each
//! (docs/reference.md, *show, access, sr and history*).

use serde::Serialize;

use crate::access::Access;

/// One user's access, as `access USER --format json` prints it and each
/// element of `access --all --format json`.
#[derive(Serialize)]
pub struct AccessJson<'a> {
    user: &'a str,
    can_open_sr: bool,
    acts_as: Option<&'a str>,
    notified: Option<&'a str>,
    visible_in_mos: bool,
    visible_in_console: bool,
    reason: &'a str,
    path: &'static str,
    via: Option<&'a str>,
    until: Option<String>,
    sees_all_csi_srs: bool,
    /// `until` as the moment access ends: 00:00 UTC of that day (RFC 3339).
    until_at: Option<String>,
}

impl<'a> From<&'a Access> for AccessJson<'a> {
    fn from(a: &'a Access) -> Self {
        AccessJson {
            user: &a.user,
            can_open_sr: a.can_open_sr,
            acts_as: a.acts_as.as_deref(),
            notified: a.notified.as_deref(),
            visible_in_mos: a.visible_in_mos,
            visible_in_console: a.visible_in_console,
            reason: &a.reason,
            path: a.path.as_str(),
            via: a.via.as_deref(),
            until: a.until.map(|d| d.to_string()),
            sees_all_csi_srs: a.sees_all_csi_srs,
            until_at: a.until.map(|d| d.start().to_string()),
        }
    }
}

/// `access USER --format json`.
pub fn access_json(access: &Access) -> String {
    super::pretty(&AccessJson::from(access))
}

/// `access --all --format json`: every user given, in that order.
pub fn access_json_all<'a>(all: impl IntoIterator<Item = &'a Access>) -> String {
    super::pretty(&all.into_iter().map(AccessJson::from).collect::<Vec<_>>())
}
