//! The config format as written: the public contract of a config file.
//!
//! These types are what a file holds before any rule is checked, each value
//! with its place in the file. They derive both `Deserialize` (read through
//! the node deserializer) and `JsonSchema` (the schema `supportctl schema`
//! prints), so the format and its schema cannot drift apart; the doc comments
//! become the schema's descriptions, which editors show on hover.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::diag::Location;

/// The newtype name by which [`Spanned`] asks the node deserializer for a place.
pub(super) const SPANNED_MARKER: &str = "$supportctl::Spanned";

/// A value with the place it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub location: Location,
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpannedVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
            type Value = Spanned<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
                let mut location = Location::default();
                let mut value = None;
                while let Some(key) = map.next_key::<SpanField>()? {
                    match key {
                        SpanField::File => location.file = map.next_value()?,
                        SpanField::Line => location.line = map.next_value()?,
                        SpanField::Column => location.column = map.next_value()?,
                        SpanField::Len => location.len = map.next_value()?,
                        SpanField::Value => value = Some(map.next_value::<T>()?),
                    }
                }
                let value =
                    value.ok_or_else(|| de::Error::custom("a placed value has no value"))?;
                Ok(Spanned { value, location })
            }

            // Any other deserializer: the value, at no known place.
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Spanned<T>, D::Error> {
                Ok(Spanned {
                    value: T::deserialize(d)?,
                    location: Location::default(),
                })
            }
        }

        deserializer.deserialize_newtype_struct(SPANNED_MARKER, SpannedVisitor(PhantomData))
    }
}

/// The keys the node deserializer hands a [`Spanned`], in order.
enum SpanField {
    File,
    Line,
    Column,
    Len,
    Value,
}

impl<'de> Deserialize<'de> for SpanField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = SpanField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a place field")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SpanField, E> {
                Ok(match v {
                    "file" => SpanField::File,
                    "line" => SpanField::Line,
                    "column" => SpanField::Column,
                    "len" => SpanField::Len,
                    _ => SpanField::Value,
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A supportctl config file. Every section is optional in a single file; the
/// files of a config set together hold exactly one `tenancy`.
#[derive(JsonSchema)]
#[schemars(title = "supportctl config", deny_unknown_fields)]
#[allow(dead_code)]
pub struct ConfigFile {
    /// The tenancy this config set describes: exactly one across all files.
    pub tenancy: Option<RawTenancy>,
    /// OCI users of the tenancy, keyed by a stable id
    /// (`^[a-z0-9][a-z0-9._-]{0,62}$`).
    pub users: Option<std::collections::BTreeMap<UserId, RawUser>>,
    /// Support accounts that have requested access to the tenancy's CSI.
    /// A request without an approval is pending.
    pub memberships: Option<Vec<RawMembership>>,
    /// The CSI administrators' approvals of membership requests.
    pub approvals: Option<Vec<RawApproval>>,
    /// "Link Support Account" links: each linked user acts through a CSI
    /// administrator, who owns and is mailed every SR the user opens.
    pub support_links: Option<Vec<RawSupportLink>>,
}

/// The names of the sections of a config file, as [`ConfigFile`] defines them.
pub const SECTIONS: &[&str] = &[
    "tenancy",
    "users",
    "memberships",
    "approvals",
    "support_links",
];

/// A user id: lowercase letters, digits, `.`, `_` and `-`, starting with a
/// letter or digit, at most 63 characters.
#[derive(JsonSchema, PartialEq, Eq, PartialOrd, Ord)]
#[allow(dead_code)]
pub struct UserId(#[schemars(regex(pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$"))] String);

/// The tenancy: its identity in state, its CSI and its Cloud Account Admin.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTenancy {
    /// The tenancy's name: its identity in the state database
    /// (`^[a-z0-9][a-z0-9._-]{0,62}$`).
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$"))]
    pub name: Spanned<String>,
    /// The Customer Support Identifier: digits, written as a string.
    #[schemars(regex(pattern = r"^[0-9]+$"))]
    pub csi: Spanned<String>,
    /// The tenancy's home region, e.g. `ap-seoul-1`.
    #[serde(default)]
    pub home_region: Option<Spanned<String>>,
    /// The Cloud Account Admin: the id of a declared user with a support
    /// account. It is the CSI's first administrator, and needs no membership,
    /// approval or link of its own.
    pub admin: Spanned<String>,
}

/// An OCI user of the tenancy.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    /// The user's email, unique in the tenancy (case-insensitively). A support
    /// account of the user uses the same email.
    #[schemars(email)]
    pub email: Spanned<String>,
    /// The user's display name.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// The user's My Oracle Support account. Needed to request CSI
    /// membership; not needed for a support link.
    #[serde(default)]
    pub support_account: Option<Spanned<RawSupportAccount>>,
    /// The id this user had before: a rename moves the user and everything
    /// attached to it, instead of deleting one user and creating another.
    #[serde(default)]
    pub previously: Option<Spanned<String>>,
}

/// A My Oracle Support account. Its email is its user's email.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSupportAccount {
    /// A phone number Oracle Support can call: not empty, nor only characters
    /// that show nothing, nor the `(redacted)` a redacted export writes.
    // The pattern asks for one character that shows (`diag::is_invisible`
    // decides for `validate`), so that an editor flags the same phones.
    #[schemars(
        length(min = 1),
        regex(
            pattern = r"[^\s\x00-\x1F\x7F-\x9F\u00AD\u0600-\u0605\u061C\u06DD\u070F\u180E\u200B-\u200F\u2028-\u202E\u2060-\u206F\uFEFF\uFFF9-\uFFFB\u115F\u1160\u2800\u3164\uFFA0]"
        ),
        extend("not" = { "enum": ["(redacted)", "(redacted, changed)"] })
    )]
    pub phone: Spanned<String>,
    /// The account's time zone, an IANA name such as `Asia/Seoul` (in any
    /// case; it is stored as the time zone database spells it).
    pub timezone: Spanned<String>,
}

/// A support account's request to join the tenancy's CSI.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMembership {
    /// The requesting user; it needs a support account.
    pub user: Spanned<String>,
}

/// A role on the CSI.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawRole {
    /// A regular member, with the access privileges listed.
    User,
    /// A CSI administrator: every privilege, and may approve requests and be
    /// linked through.
    Admin,
}

/// An access privilege on the CSI.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RawPrivilege {
    /// Open and update SRs.
    CreateSr,
    /// Read every SR of the CSI in MOS.
    ViewSr,
    /// Download patches.
    Download,
}

/// A CSI administrator's approval of a membership request.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApproval {
    /// The approved user; it needs a membership request.
    pub user: Spanned<String>,
    /// The role granted: `user`, or `admin` to make the user a CSI
    /// administrator too.
    pub role: Spanned<RawRole>,
    /// The privileges granted, each listed once. Role `admin` holds all of
    /// them; an approval with role `user` and none grants nothing.
    #[serde(default)]
    pub access: Option<Spanned<Vec<Spanned<RawPrivilege>>>>,
    /// The CSI administrator who approved; the tenancy admin when not given.
    #[serde(default)]
    pub approved_by: Option<Spanned<String>>,
    /// The day access ends, at its start (UTC), as `YYYY-MM-DD`.
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = r"^\d{4}-\d{2}-\d{2}$"))]
    pub expires: Option<Spanned<String>>,
}

/// A "Link Support Account" link from a user to a CSI administrator.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSupportLink {
    /// The linked user. It acts through the administrator and has no approval.
    pub user: Spanned<String>,
    /// The CSI administrator linked through; the tenancy admin when not given.
    #[serde(default)]
    pub via: Option<Spanned<String>>,
    /// The day the link ends, at its start (UTC), as `YYYY-MM-DD`.
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = r"^\d{4}-\d{2}-\d{2}$"))]
    pub expires: Option<Spanned<String>>,
}

/// The JSON Schema (draft-07) of a config file, as pretty JSON with a final newline.
pub fn json_schema() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<ConfigFile>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
