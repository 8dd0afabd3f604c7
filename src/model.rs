//! The domain model: a tenancy and everything in it, as checked values.
//!
//! A [`Model`] is what a config set asks for once it has passed every rule
//! (the *desired* state), and it is also what the database holds for a
//! tenancy (the *actual* state). Its types carry no source locations and no
//! serde derives: the config format and the JSON outputs have their own
//! types, so this one stays free to change. Nothing here does I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A calendar day (UTC). Grants that carry one end at the start of that day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(jiff::civil::Date);

impl Date {
    /// Parses `YYYY-MM-DD`; `None` for anything else, including impossible days.
    pub fn parse(text: &str) -> Option<Date> {
        // jiff accepts a few more spellings than the config format promises;
        // insist on the plain ISO form so dates in files look alike.
        let b = text.as_bytes();
        let shape_ok = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape_ok {
            return None;
        }
        text.parse::<jiff::civil::Date>().ok().map(Date)
    }

    /// Why `text`, written `YYYY-MM-DD`, names no day (`2030-02-30`): a
    /// month past 12, a day 0, or a day past the end of its month. `None`
    /// when it is a day, or not written `YYYY-MM-DD` at all.
    pub fn impossible(text: &str) -> Option<String> {
        let b = text.as_bytes();
        let shaped = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shaped || Date::parse(text).is_some() {
            return None;
        }
        let (year, month, day) = (
            text[..4].parse::<i16>().ok()?,
            text[5..7].parse::<i8>().ok()?,
            text[8..].parse::<i8>().ok()?,
        );
        if !(1..=12).contains(&month) {
            return Some(format!("there is no month {month}"));
        }
        let first = jiff::civil::Date::new(year, month, 1).ok()?;
        let days = first.days_in_month();
        if day == 0 {
            return Some("there is no day 0".to_string());
        }
        (day > days).then(|| format!("{} {year} has {days} days", first.strftime("%B")))
    }

    /// The last day of the month `text` (`YYYY-MM-…`) falls in, when it has one.
    pub fn last_of_month(text: &str) -> Option<Date> {
        let year = text.get(..4)?.parse::<i16>().ok()?;
        let month = text.get(5..7)?.parse::<i8>().ok()?;
        let first = jiff::civil::Date::new(year, month, 1).ok()?;
        Some(Date(first.last_of_month()))
    }

    /// The moment this day begins (00:00 UTC), when a grant that expires on
    /// it ends.
    pub fn start(self) -> jiff::Timestamp {
        self.0
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .map_or(jiff::Timestamp::MAX, |z| z.timestamp())
    }

    /// The moment this day begins as people read it, with its hour and
    /// zone: `2027-01-01 00:00 UTC`. A grant that expires on this day ends
    /// then, so an audit says so rather than leaving the day's end to guess.
    pub fn start_text(self) -> String {
        format!("{self} 00:00 UTC")
    }

    /// The UTC day of a moment.
    pub fn of(moment: jiff::Timestamp) -> Date {
        Date(moment.to_zoned_datetime(jiff::tz::TimeZone::UTC).date())
    }

    /// Days from `self` to `other` (negative when `other` is earlier).
    pub fn days_until(self, other: Date) -> i64 {
        let span = self.0.until(other.0).unwrap_or_default();
        i64::from(span.get_days())
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Whether `name` is a time zone of the IANA database bundled in the binary.
///
/// The database ships inside the binary so that a config checks the same on
/// every machine, whatever its `/usr/share/zoneinfo` holds.
pub fn is_iana_time_zone(name: &str) -> bool {
    iana_time_zone(name).is_some()
}

/// The IANA time zone `name` names, as the database spells it: `asia/seoul`
/// is `Asia/Seoul`. `None` when it names none.
pub fn iana_time_zone(name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let zone = jiff::tz::db().get(name).ok()?;
    Some(zone.iana_name().unwrap_or(name).to_string())
}

/// A CSI role, chosen by the administrator who approves a membership request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// One access privilege on the CSI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    /// Open and update SRs.
    CreateSr,
    /// Read every SR of the CSI in MOS.
    ViewSr,
    /// Download patches.
    Download,
}

impl Privilege {
    pub const ALL: [Privilege; 3] = [Privilege::CreateSr, Privilege::ViewSr, Privilege::Download];

    pub fn as_str(self) -> &'static str {
        match self {
            Privilege::CreateSr => "create_sr",
            Privilege::ViewSr => "view_sr",
            Privilege::Download => "download",
        }
    }

    pub fn parse(text: &str) -> Option<Privilege> {
        Privilege::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// The tenancy itself: its identity in state, its CSI and its first administrator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenancy {
    pub name: String,
    pub csi: String,
    pub home_region: Option<String>,
    /// The Cloud Account Admin, a CSI administrator by definition (docs/DOMAIN.md §3 rule 7).
    pub admin: String,
}

/// An OCI user of the tenancy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub email: String,
    pub name: Option<String>,
}

/// A user's My Oracle Support account. Its email is the user's email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupportAccount {
    pub phone: String,
    pub timezone: String,
}

/// What `--redact` shows instead of a phone number, which is personal data.
pub const REDACTED: &str = "(redacted)";
/// What `--redact` shows for a phone number a plan changes.
pub const REDACTED_CHANGED: &str = "(redacted, changed)";

/// A CSI administrator's approval of a membership request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    pub role: Role,
    /// The privileges granted. Role `admin` holds all of them whatever is listed.
    pub access: BTreeSet<Privilege>,
    /// The CSI administrator who approved; the tenancy admin when not given.
    pub approved_by: String,
    pub expires: Option<Date>,
}

impl Approval {
    /// The privileges this approval really grants: all of them for an admin.
    pub fn privileges(&self) -> BTreeSet<Privilege> {
        match self.role {
            Role::Admin => Privilege::ALL.into_iter().collect(),
            Role::User => self.access.clone(),
        }
    }

    pub fn is_active(&self, today: Date) -> bool {
        self.expires.is_none_or(|d| today < d)
    }
}

/// A "Link Support Account" link: the user acts through the CSI administrator `via`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupportLink {
    pub via: String,
    pub expires: Option<Date>,
}

impl SupportLink {
    pub fn is_active(&self, today: Date) -> bool {
        self.expires.is_none_or(|d| today < d)
    }
}

/// Who a user is, as against the id it goes by: given by the state when
/// the user is created, kept through every rename, and never given to
/// anyone else, so a user deleted and later created under the same id is
/// another person. A service request belongs to persons, not to ids
/// (docs/DOMAIN.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Person(pub i64);

/// A tenancy and everything in it, keyed by user id.
///
/// The maps are sorted, so walking a model is deterministic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    pub tenancy: Tenancy,
    pub users: BTreeMap<String, User>,
    pub support_accounts: BTreeMap<String, SupportAccount>,
    /// Users whose support account has asked to join the CSI.
    pub memberships: BTreeSet<String>,
    pub approvals: BTreeMap<String, Approval>,
    pub support_links: BTreeMap<String, SupportLink>,
    /// Renames asked for by the config: new id → previous id. Empty in a
    /// model loaded from state.
    pub renames: BTreeMap<String, String>,
}

impl Model {
    /// Replaces every phone number with [`REDACTED`], for output that may be
    /// shared (`--redact`). A redacted model is for reading, never for
    /// writing back.
    pub fn redact_phones(&mut self) {
        for account in self.support_accounts.values_mut() {
            account.phone = REDACTED.to_string();
        }
    }

    /// A tenancy with nothing in it yet.
    pub fn empty(tenancy: Tenancy) -> Model {
        Model {
            tenancy,
            users: BTreeMap::new(),
            support_accounts: BTreeMap::new(),
            memberships: BTreeSet::new(),
            approvals: BTreeMap::new(),
            support_links: BTreeMap::new(),
            renames: BTreeMap::new(),
        }
    }

    /// Whether `user` is a CSI administrator: the tenancy admin, or a user
    /// approved with role `admin` (docs/DOMAIN.md §3 rule 6), ignoring expiry.
    pub fn is_csi_admin(&self, user: &str) -> bool {
        user == self.tenancy.admin
            || self
                .approvals
                .get(user)
                .is_some_and(|a| a.role == Role::Admin)
    }

    /// The earliest day on which one of the grants still held ends: when a
    /// watcher must look again even if no file changes.
    pub fn next_expiry(&self, today: Date) -> Option<Date> {
        let approvals = self.approvals.values().filter_map(|a| a.expires);
        let links = self.support_links.values().filter_map(|l| l.expires);
        approvals.chain(links).filter(|d| today < *d).min()
    }

    /// The CSI administrators, sorted: the tenancy admin and every admin-role approval.
    pub fn csi_admins(&self) -> Vec<&str> {
        let mut admins: Vec<&str> = self
            .approvals
            .iter()
            .filter(|(_, a)| a.role == Role::Admin)
            .map(|(id, _)| id.as_str())
            .collect();
        admins.push(&self.tenancy.admin);
        admins.sort_unstable();
        admins.dedup();
        admins
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_starts_at_midnight_utc() {
        let day = Date::parse("2027-01-31").unwrap();
        assert_eq!(day.start().to_string(), "2027-01-31T00:00:00Z");
        assert_eq!(Date::of(day.start()), day);
        let just_before = day.start() - jiff::SignedDuration::from_nanos(1);
        assert_eq!(Date::of(just_before).to_string(), "2027-01-30");
    }

    #[test]
    fn dates_parse_only_in_iso_form() {
        assert!(Date::parse("2027-06-30").is_some());
        assert!(Date::parse("2027-02-30").is_none());
        assert!(Date::parse("2027-6-30").is_none());
        assert!(Date::parse("20270630").is_none());
        assert!(Date::parse("").is_none());
    }

    #[test]
    fn time_zones_come_from_the_bundled_database() {
        assert!(is_iana_time_zone("Asia/Seoul"));
        assert!(is_iana_time_zone("UTC"));
        assert!(!is_iana_time_zone("Asia/Sejong"));
        assert!(!is_iana_time_zone(""));
    }

    #[test]
    fn a_grant_ends_at_the_start_of_its_expiry_day() {
        let day = Date::parse("2027-01-31").unwrap();
        let link = SupportLink {
            via: "a".into(),
            expires: Some(day),
        };
        assert!(link.is_active(Date::parse("2027-01-30").unwrap()));
        assert!(!link.is_active(day));
    }
}
