//! Config sets out: a model written back as config files.
//!
//! `export` turns the state of a tenancy into a config set that plans to no
//! changes: one file, or a directory in the GitOps layout of `examples/`
//! (`tenancy.yaml`, `users/ID.yaml` with the user's membership, `approvals.yaml`,
//! `links.yaml`). Defaults are written out in full (`approved_by`, `via`),
//! so the files say what the state holds without relying on defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::model::{Model, Role};

const MODELINE: &str = "# yaml-language-server: $schema=";

#[derive(Serialize, Default)]
struct File<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    tenancy: Option<Tenancy<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    users: BTreeMap<&'a str, User<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    memberships: Vec<Membership<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    approvals: Vec<Approval<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    support_links: Vec<Link<'a>>,
}

#[derive(Serialize)]
struct Tenancy<'a> {
    name: &'a str,
    csi: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    home_region: Option<&'a str>,
    admin: &'a str,
}

#[derive(Serialize)]
struct User<'a> {
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    support_account: Option<Account<'a>>,
}

#[derive(Serialize)]
struct Account<'a> {
    phone: &'a str,
    timezone: &'a str,
}

#[derive(Serialize)]
struct Membership<'a> {
    user: &'a str,
}

#[derive(Serialize)]
struct Approval<'a> {
    user: &'a str,
    role: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    access: Vec<&'static str>,
    approved_by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
}

#[derive(Serialize)]
struct Link<'a> {
    user: &'a str,
    via: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
}

fn tenancy(model: &Model) -> Tenancy<'_> {
    let t = &model.tenancy;
    Tenancy {
        name: &t.name,
        csi: &t.csi,
        home_region: t.home_region.as_deref(),
        admin: &t.admin,
    }
}

fn user<'a>(model: &'a Model, id: &str) -> User<'a> {
    let u = &model.users[id];
    User {
        email: &u.email,
        name: u.name.as_deref(),
        support_account: model.support_accounts.get(id).map(|a| Account {
            phone: &a.phone,
            timezone: &a.timezone,
        }),
    }
}

fn approvals(model: &Model) -> Vec<Approval<'_>> {
    model
        .approvals
        .iter()
        .map(|(id, a)| Approval {
            user: id,
            role: a.role.as_str(),
            // An admin holds every privilege; listing them would say nothing.
            access: if a.role == Role::Admin {
                Vec::new()
            } else {
                a.access.iter().map(|p| p.as_str()).collect()
            },
            approved_by: &a.approved_by,
            expires: a.expires.map(|d| d.to_string()),
        })
        .collect()
}

fn links(model: &Model) -> Vec<Link<'_>> {
    model
        .support_links
        .iter()
        .map(|(id, l)| Link {
            user: id,
            via: &l.via,
            expires: l.expires.map(|d| d.to_string()),
        })
        .collect()
}

fn yaml(file: &File, comment: &str) -> String {
    let body = serde_saphyr::to_string(file).unwrap_or_default();
    format!("{comment}\n{body}")
}

/// The whole tenancy as one config file; `schema`, when given, is the
/// schema's path relative to where the file will be, for the modeline.
pub fn to_single_file(model: &Model, schema: Option<&str>) -> String {
    let file = File {
        tenancy: Some(tenancy(model)),
        users: model
            .users
            .keys()
            .map(|id| (id.as_str(), user(model, id)))
            .collect(),
        memberships: model
            .memberships
            .iter()
            .map(|id| Membership { user: id })
            .collect(),
        approvals: approvals(model),
        support_links: links(model),
    };
    let modeline = schema
        .map(|s| format!("{MODELINE}{s}\n"))
        .unwrap_or_default();
    yaml(
        &file,
        &format!(
            "{modeline}# Exported by supportctl from the state of tenancy `{}`.\n",
            model.tenancy.name
        ),
    )
}

/// The tenancy as a GitOps directory: relative paths and their contents.
/// `schema` is the schema's path relative to the directory's root.
pub fn to_directory(model: &Model, schema: &str) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let top = format!("{MODELINE}{schema}\n");
    let nested = format!("{MODELINE}../{schema}\n");
    files.push((
        PathBuf::from("tenancy.yaml"),
        yaml(
            &File {
                tenancy: Some(tenancy(model)),
                ..File::default()
            },
            &top,
        ),
    ));
    for id in model.users.keys() {
        let file = File {
            users: [(id.as_str(), user(model, id))].into_iter().collect(),
            memberships: if model.memberships.contains(id) {
                vec![Membership { user: id }]
            } else {
                Vec::new()
            },
            ..File::default()
        };
        files.push((
            PathBuf::from("users").join(format!("{id}.yaml")),
            yaml(&file, &nested),
        ));
    }
    files.push((
        PathBuf::from("approvals.yaml"),
        yaml(
            &File {
                approvals: approvals(model),
                ..File::default()
            },
            &top,
        ),
    ));
    files.push((
        PathBuf::from("links.yaml"),
        yaml(
            &File {
                support_links: links(model),
                ..File::default()
            },
            &top,
        ),
    ));
    files
}

/// A model as the entries of a config set that declares exactly it, each
/// at no place: so that every rule `check` applies to a config set applies
/// to any model, such as the one a saved plan leads to.
pub fn raw_of(model: &Model) -> super::RawConfig {
    use super::RawUserEntry;
    use super::raw::{RawMembership, RawSupportAccount, RawSupportLink, RawTenancy, RawUser};

    let t = &model.tenancy;
    let users = model
        .users
        .iter()
        .map(|(id, u)| RawUserEntry {
            id: at(id.clone()),
            user: RawUser {
                email: at(u.email.clone()),
                name: u.name.clone().map(at),
                support_account: model.support_accounts.get(id).map(|a| {
                    at(RawSupportAccount {
                        phone: at(a.phone.clone()),
                        timezone: at(a.timezone.clone()),
                    })
                }),
                previously: None,
            },
        })
        .collect();
    let approvals = model
        .approvals
        .iter()
        .map(|(id, a)| at(raw_approval(id, a)))
        .collect();
    let support_links = model
        .support_links
        .iter()
        .map(|(id, l)| {
            at(RawSupportLink {
                user: at(id.clone()),
                via: Some(at(l.via.clone())),
                expires: l.expires.map(|d| at(d.to_string())),
            })
        })
        .collect();
    super::RawConfig {
        tenancies: vec![at(RawTenancy {
            name: at(t.name.clone()),
            csi: at(t.csi.clone()),
            home_region: t.home_region.clone().map(at),
            admin: at(t.admin.clone()),
        })],
        users,
        memberships: model
            .memberships
            .iter()
            .map(|id| {
                at(RawMembership {
                    user: at(id.clone()),
                })
            })
            .collect(),
        approvals,
        support_links,
        unreadable: super::Unreadable::default(),
    }
}

/// `value` at no place.
fn at<T>(value: T) -> super::Spanned<T> {
    super::Spanned {
        value,
        location: crate::diag::Location::default(),
    }
}

/// The approval of user `id` as a config set would declare it.
fn raw_approval(id: &str, a: &crate::model::Approval) -> super::raw::RawApproval {
    use super::raw::{RawApproval, RawPrivilege, RawRole};
    use crate::model::Privilege;
    RawApproval {
        user: at(id.to_owned()),
        role: at(match a.role {
            Role::User => RawRole::User,
            Role::Admin => RawRole::Admin,
        }),
        access: Some(at(a
            .access
            .iter()
            .map(|p| {
                at(match p {
                    Privilege::CreateSr => RawPrivilege::CreateSr,
                    Privilege::ViewSr => RawPrivilege::ViewSr,
                    Privilege::Download => RawPrivilege::Download,
                })
            })
            .collect())),
        approved_by: Some(at(a.approved_by.clone())),
        expires: a.expires.map(|d| at(d.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::load_file;
    use crate::config::{Limits, Loaded, load};
    use crate::model::Date;

    fn checked(loaded: &Loaded) -> Model {
        let raw = loaded.raw.clone();
        let (model, diags) = crate::check::check(raw, Date::parse("2026-11-24").unwrap());
        model.unwrap_or_else(|| panic!("{diags:?}"))
    }

    #[test]
    fn an_exported_model_reads_back_as_the_same_model() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme-prod.yaml");
        let (loaded, _) = load(&path, &Limits::default());
        let mut model = checked(&loaded);
        model.renames.clear();

        let mut single = Loaded::default();
        let mut diags = Vec::new();
        let text = to_single_file(&model, Some("schema.json"));
        assert!(
            load_file(0, text.as_bytes(), &mut single.raw, &mut diags).0,
            "{text}"
        );
        assert!(diags.is_empty(), "{diags:?}\n{text}");
        assert_eq!(checked(&single), model);

        let mut split = Loaded::default();
        for (index, (_, text)) in to_directory(&model, "schema.json").into_iter().enumerate() {
            assert!(load_file(index, text.as_bytes(), &mut split.raw, &mut diags).0);
        }
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(checked(&split), model);
    }
}
