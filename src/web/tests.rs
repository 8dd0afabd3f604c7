//! The web view through its router: each page and its JSON twin over a real
//! SQLite state (the example tenancy, applied twice through the store), the
//! auth rules, escaping, the error pages and the headers of every answer.

use std::path::Path;

use super::*;
use crate::config::Limits;
use crate::model::{Date, Model};
use crate::state::{JournalEntry, JournalPlan, Store};

/// The example tenancy and a second one of hostile names and every kind of
/// attention, applied into a state in a folder of the test's own.
struct World {
    dir: tempfile::TempDir,
}

const DAY: &str = "2030-01-20";

/// A tenancy whose names are markup, and who needs attention for every
/// reason: a link through someone who is not an administrator, a support
/// account without access.
const HOSTILE: &str = r#"
tenancy:
  name: hostile
  csi: "42"
  admin: root
users:
  root:
    email: root@example.com
    name: "<script>alert('root')</script>"
    support_account: { phone: "+1 555 0100", timezone: UTC }
  frank:
    email: frank@example.com
    name: "Frank & <b>Sons</b>"
    support_account: { phone: "+1 555 0101", timezone: UTC }
  linker:
    email: linker@example.com
    name: "Frank & <b>Sons</b>"
  lonely:
    email: lonely@example.com
    name: "<script>alert('root')</script>"
    support_account: { phone: "+1 555 0102", timezone: UTC }
memberships:
  - user: frank
approvals:
  - user: frank
    role: user
    access: [create_sr]
support_links:
  - user: linker
    via: frank
"#;

fn day() -> Date {
    Date::parse(DAY).unwrap()
}

fn checked(path: &Path) -> Model {
    let checked = crate::engine::load_and_check(path, &Limits::default(), day());
    checked
        .model
        .unwrap_or_else(|| panic!("{}: {:?}", path.display(), checked.diagnostics))
}

fn apply(store: &mut Store, model: &Model, actual: Option<&Model>, serial: u64, commit: &str) {
    let plan = crate::plan::plan(model, actual);
    let lineage = store.lineage().to_string();
    let json = crate::render::plan_json(&plan, &lineage, serial, "sha256:test");
    store
        .apply(&model.tenancy.name, &lineage, serial, &plan, || {
            JournalEntry {
                time: format!("2030-01-1{serial}T10:00:00Z"),
                summary: plan.summary(),
                plan: JournalPlan::new(&json),
                config_digest: "sha256:test".into(),
                git_commit: Some(commit.into()),
                git_changes: Some(vec![]),
                source: None,
            }
        })
        .unwrap();
}

/// The example as `World` applies it: as it is (serial 1), then with
/// alice's name and phone changed (serial 2).
fn example_applied() -> (Model, Model) {
    let first = example();
    let mut second = first.clone();
    second.users.get_mut("alice").unwrap().name = Some("Alice Kim".into());
    second.support_accounts.get_mut("alice").unwrap().phone = "+82 2 555 0199".into();
    (first, second)
}

/// `examples/acme-prod.yaml`, checked.
fn example() -> Model {
    checked(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme-prod.yaml"))
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = example_applied();
        let hostile_path = dir.path().join("hostile.yaml");
        std::fs::write(&hostile_path, HOSTILE).unwrap();
        let hostile = checked(&hostile_path);
        let mut store = Store::open(dir.path().join("state.db")).unwrap();
        apply(&mut store, &first, None, 0, "c0ffee1");
        apply(&mut store, &second, Some(&first), 1, "c0ffee2");
        apply(&mut store, &hostile, None, 0, "c0ffee3");
        // bob opens an SR (owned by dankim, in the Console), dankim comments.
        store
            .open_service_request("acme-prod", |model| {
                let opening = crate::access::opening(model, "bob", day())?;
                Ok::<_, String>(crate::state::NewServiceRequest {
                    title: "Disk <full> on db-1".into(),
                    kind: "tech".into(),
                    severity: "high".into(),
                    opened_by: "bob".into(),
                    owner: opening.owner,
                    contact_email: opening.contact,
                    channel: opening.channel,
                    opened_at: "2030-01-19T09:00:00Z".into(),
                })
            })
            .unwrap()
            .unwrap();
        store
            .add_comment("acme-prod", 1, "dankim", |model, person, sr| {
                let channel =
                    crate::access::may_comment(model, "dankim", person, &sr.parties(), day())?;
                Ok::<_, String>(crate::state::Comment {
                    author: "dankim".into(),
                    channel,
                    text: "Looking.".into(),
                    at: "2030-01-19T10:00:00Z".into(),
                })
            })
            .unwrap()
            .unwrap()
            .unwrap();
        World { dir }
    }

    fn db(&self) -> Location {
        Location::Sqlite(self.dir.path().join("state.db"))
    }

    fn site(&self, auth: Auth) -> Site {
        self.site_with(auth, false)
    }

    fn site_with(&self, auth: Auth, show_phones: bool) -> Site {
        Site::new(Settings {
            db: self.db(),
            status_file: self.dir.path().join("state.db.status.json"),
            show_phones,
            expiring_within: 14,
            auth,
        })
        .on_day(day())
    }
}

/// An answer, its body as text.
struct Got {
    status: u16,
    content_type: String,
    response: Response,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.response.header(name)
    }
}

fn call(site: &Site, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Got {
    let request = Request::of(method, target, headers, body.as_bytes());
    let response = site.handle(&request);
    Got {
        status: response.status,
        content_type: response.content_type.to_string(),
        body: String::from_utf8(response.body.clone()).unwrap(),
        response,
    }
}

fn get(site: &Site, target: &str) -> Got {
    call(site, "GET", target, &[("Accept", "text/html")], "")
}

fn get_json(site: &Site, target: &str) -> Got {
    call(site, "GET", target, &[("Accept", "application/json")], "")
}

#[track_caller]
fn ok_html(site: &Site, target: &str) -> String {
    let got = get(site, target);
    assert_eq!(got.status, 200, "{target}: {}", got.body);
    assert_eq!(got.content_type, HTML);
    got.body
}

#[track_caller]
fn ok_json(site: &Site, target: &str) -> serde_json::Value {
    let got = get(site, target);
    assert_eq!(got.status, 200, "{target}: {}", got.body);
    assert_eq!(got.content_type, JSON, "{target}");
    serde_json::from_str(&got.body).unwrap()
}

/// The element of `html` that starts with `start`, up to `end`.
fn element<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no `{start}` in:\n{html}"));
    let to = html[from..].find(end).map_or(html.len(), |i| from + i);
    &html[from..to]
}

#[test]
fn escape_makes_markup_text() {
    assert_eq!(
        escape("<script>alert('x') & \"y\"</script>"),
        "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
    );
    assert!(matches!(
        escape("plain text"),
        std::borrow::Cow::Borrowed(_)
    ));
    assert_eq!(escape(""), "");
    assert_eq!(escape("é → ü"), "é → ü");
    let mut h = Html::new();
    h.raw("<p title=\"")
        .text("\"><script>")
        .raw("\">")
        .text(1 + 1)
        .raw("</p>");
    assert_eq!(
        h.into_string(),
        "<p title=\"&quot;&gt;&lt;script&gt;\">2</p>"
    );
}

#[test]
fn links_encode_and_decode() {
    assert_eq!(html::path("acme-prod.1_~"), "acme-prod.1_~");
    assert_eq!(html::path("a b/c?"), "a%20b%2Fc%3F");
    assert_eq!(html::query("a b&c=d"), "a+b%26c%3Dd");
    assert_eq!(html::decode("a%20b+c", true).as_deref(), Some("a b c"));
    assert_eq!(html::decode("a%20b+c", false).as_deref(), Some("a b+c"));
    for bad in ["%", "%2", "%zz", "%ff"] {
        assert_eq!(html::decode(bad, true), None, "{bad}");
    }
}

#[test]
fn the_overview_shows_status_attention_and_who_acts_through_whom() {
    let world = World::new();
    let site = world.site(Auth::Open);
    let page = ok_html(&site, "/t/acme-prod");
    let status = element(&page, "<section id=\"status\"", "</section>");
    assert!(status.contains("20817431"), "{status}");
    assert!(status.contains("data-test=\"serial\">2<"), "{status}");
    assert!(
        status.contains("c0ffee2"),
        "the last apply's commit: {status}"
    );
    assert!(status.contains("/t/acme-prod/history/2"), "{status}");
    let attention = element(&page, "<ul id=\"attention\">", "</ul>\n<p");
    assert!(
        attention.contains("data-kind=\"pending\" data-user=\"carol\""),
        "{attention}"
    );
    // On 2030-01-20, gina's link through erin ends within 14 days.
    let expiring = element(
        attention,
        "data-kind=\"expiring\" data-user=\"gina\"",
        "</li>",
    );
    assert!(
        expiring.contains("through erin") && expiring.contains("2030-01-31 00:00 UTC"),
        "{expiring}"
    );
    assert!(expiring.contains("in 11 days"), "{expiring}");
    let acting = element(&page, "<ul id=\"acting\">", "</section>");
    let bob = element(acting, "<li data-user=\"bob\"", "</li>");
    assert!(
        bob.contains("acts through <span class=\"via\">dankim</span>"),
        "{bob}"
    );
    assert!(acting.contains("<li data-admin=\"dankim\">"), "{acting}");
    // The nav marks the page, and links the other sections.
    let nav = element(&page, "<nav>", "</nav>");
    assert!(
        nav.contains("href=\"/t/acme-prod\" aria-current=\"page\""),
        "{nav}"
    );
    assert!(nav.contains("href=\"/t/acme-prod/access\""), "{nav}");
    assert!(nav.contains("href=\"/t/acme-prod/history\""), "{nav}");

    // Its twin, by suffix and by Accept, the same.
    let json = ok_json(&site, "/t/acme-prod/index.json");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&get_json(&site, "/t/acme-prod").body).unwrap(),
        json
    );
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["serial"], 2);
    assert_eq!(json["tenancy"]["csi"], "20817431");
    assert_eq!(json["last_apply"]["git_commit"], "c0ffee2");
    assert_eq!(json["attention"]["pending_memberships"][0]["user"], "carol");
    assert_eq!(json["attention"]["expiring"][0]["user"], "gina");
    assert_eq!(json["attention"]["expiring"][0]["days_left"], 11);
    let dankim = json["acting_through"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["administrator"] == "dankim")
        .unwrap();
    assert_eq!(dankim["users"][0]["user"], "bob");
    assert_eq!(dankim["users"][0]["acts_as"], "dankim");
    assert!(json["watcher"].is_null());
}

#[test]
fn the_overview_lists_inactive_links_and_accounts_without_access() {
    let world = World::new();
    let site = world.site(Auth::Open);
    let page = ok_html(&site, "/t/hostile");
    let attention = element(&page, "<ul id=\"attention\">", "</ul>\n<p");
    assert!(
        attention.contains("data-kind=\"inactive-link\" data-user=\"linker\""),
        "{attention}"
    );
    assert!(
        attention.contains("data-kind=\"no-access\" data-user=\"lonely\""),
        "{attention}"
    );
    let json = ok_json(&site, "/t/hostile/index.json");
    assert_eq!(json["attention"]["inactive_links"][0]["user"], "linker");
    assert_eq!(json["attention"]["no_access"][0]["user"], "lonely");
}

#[test]
fn the_overview_tells_a_watcher_that_is_not_healthy() {
    use crate::status::{LastReconcile, OutcomeKind, Status, Trigger, WatcherState};
    let world = World::new();
    let site = world.site(Auth::Open);
    let status = Status {
        format_version: 1,
        pid: 4242,
        host: Some("build-1".into()),
        config: "/srv/acme-prod".into(),
        database: world.db().absolute(),
        started_at: "2030-01-20T09:00:00Z".into(),
        heartbeat_at: jiff::Timestamp::now().to_string(),
        state: WatcherState::Watching,
        next_wake_at: None,
        reconciles: 3,
        last: Some(LastReconcile {
            at: "2030-01-20T09:10:00Z".into(),
            trigger: Trigger::Change,
            outcome: OutcomeKind::Invalid,
            tenancy: Some("acme-prod".into()),
            serial: Some(2),
            summary: None,
            ms: 12,
            message: Some("the configuration is <invalid>".into()),
            config_digest: None,
            findings: vec![],
        }),
        last_success_at: None,
        replica: None,
    };
    std::fs::write(
        world.dir.path().join("state.db.status.json"),
        serde_json::to_string(&status).unwrap(),
    )
    .unwrap();
    let page = ok_html(&site, "/t/acme-prod");
    let watcher = element(&page, "data-test=\"watcher\">", "</span></div>");
    assert!(watcher.contains("not healthy"), "{watcher}");
    assert!(
        watcher.contains("the configuration is &lt;invalid&gt;"),
        "{watcher}"
    );
    let attention = element(&page, "<ul id=\"attention\">", "</ul>\n<p");
    assert!(
        attention.contains("<li data-kind=\"watcher\""),
        "{attention}"
    );
    let json = ok_json(&site, "/t/acme-prod/index.json");
    assert_eq!(json["watcher"]["healthy"], false);
    assert_eq!(json["watcher"]["pid"], 4242);
    assert!(json["watcher"]["lease"].is_object(), "{}", json["watcher"]);
    // A status file about another tenancy is not this one's watcher.
    assert!(ok_json(&site, "/t/hostile/index.json")["watcher"].is_null());
}

#[test]
fn every_value_is_escaped() {
    let world = World::new();
    let site = world.site(Auth::Open);
    for target in [
        "/t/hostile",
        "/t/hostile/access",
        "/t/hostile/access?sort=-why",
    ] {
        let page = ok_html(&site, target);
        assert!(!page.contains("<script>alert"), "{target}:\n{page}");
        assert!(!page.contains("<b>Sons"), "{target}:\n{page}");
        assert!(
            page.contains("&lt;script&gt;alert(&#39;root&#39;)&lt;/script&gt;"),
            "{target}:\n{page}"
        );
        assert!(
            page.contains("Frank &amp; &lt;b&gt;Sons&lt;/b&gt;"),
            "{target}"
        );
        // The only script is supportctl's own file.
        assert_eq!(page.matches("<script").count(), 1, "{target}");
        assert!(page.contains("<script src=\"/static/app.js\" defer></script>"));
    }
    // A query value shown back is escaped too.
    let page = ok_html(&site, "/t/hostile/access?q=%22%3E%3Cscript%3E");
    assert!(
        page.contains("value=\"&quot;&gt;&lt;script&gt;\""),
        "{page}"
    );
    let got = get(&site, "/t/%3Cscript%3E");
    assert_eq!(got.status, 404);
    assert!(got.body.contains("`&lt;script&gt;`"), "{}", got.body);
}

#[test]
fn the_access_table_is_access_all_and_filters_sorts_and_pages() {
    let world = World::new();
    let site = world.site(Auth::Open);
    let page = ok_html(&site, "/t/acme-prod/access");
    let table = element(&page, "<table id=\"access\"", "</table>");
    let bob = element(table, "<tr data-user=\"bob\"", "</tr>");
    assert!(bob.contains("data-via=\"dankim\""), "{bob}");
    let acts_as = element(bob, "<td class=\"acts-as\">", "</td>");
    assert!(acts_as.contains("dankim"), "{acts_as}");
    assert!(
        bob.contains("dan.kim@acme.example"),
        "mailed to dankim: {bob}"
    );
    assert_eq!(table.matches("<tr data-user=").count(), 7);
    assert!(page.contains("<input type=\"search\" id=\"filter\" name=\"q\""));
    assert!(page.contains("<form method=\"get\" action=\"/t/acme-prod/access\""));

    // The JSON twin is `access --all --format json`, from the same builder.
    let view = match site
        .reader
        .open()
        .unwrap()
        .unwrap()
        .view("acme-prod", day())
        .unwrap()
    {
        data::Found::Here(view) => view,
        _ => panic!("acme-prod is in the state"),
    };
    let expected = crate::report::access_json_all(&view.access);
    assert_eq!(get(&site, "/t/acme-prod/access.json").body, expected);
    assert_eq!(get_json(&site, "/t/acme-prod/access").body, expected);

    let users = |target: &str| -> Vec<String> {
        ok_json(&site, target)
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["user"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(users("/t/acme-prod/access.json?q=BOB"), ["bob"]);
    assert_eq!(
        users("/t/acme-prod/access.json?q=acme.example&role=linked"),
        ["bob", "gina"]
    );
    assert_eq!(users("/t/acme-prod/access.json?q=Dan+Kim"), ["dankim"]);
    assert_eq!(users("/t/acme-prod/access.json?path=pending"), ["carol"]);
    assert_eq!(
        users("/t/acme-prod/access.json?role=admin"),
        ["dankim", "erin"]
    );
    assert_eq!(
        users("/t/acme-prod/access.json?sort=until&role=linked"),
        ["gina", "bob"]
    );
    assert_eq!(
        users("/t/acme-prod/access.json?sort=-user&role=admin"),
        ["erin", "dankim"]
    );
    assert_eq!(
        users("/t/acme-prod/access.json?page=1&path=linked"),
        ["bob", "gina"]
    );
    assert!(users("/t/acme-prod/access.json?q=nobody").is_empty());
    let page = ok_html(&site, "/t/acme-prod/access?q=nobody");
    assert!(page.contains("id=\"no-rows\""));

    // The sort links keep the filter, and flip the order of the column shown.
    let page = ok_html(&site, "/t/acme-prod/access?q=a&sort=until");
    let until = element(&page, "<th scope=\"col\" data-column=\"until\"", "</th>");
    assert!(
        until.contains("href=\"/t/acme-prod/access?q=a&amp;sort=-until\""),
        "{until}"
    );
    assert!(until.contains("aria-sort=\"ascending\""), "{until}");
    assert!(page.contains("<input type=\"hidden\" name=\"sort\" value=\"until\">"));

    for bad in [
        "/t/acme-prod/access?role=boss",
        "/t/acme-prod/access?path=sideways",
        "/t/acme-prod/access?sort=height",
        "/t/acme-prod/access?page=0",
        "/t/acme-prod/access?page=two",
        "/t/acme-prod/access?page=2",
        "/t/acme-prod/access?colour=red",
        "/t/acme-prod/access?q=a&q=b",
        "/t/acme-prod/access?q=%ff",
        "/t/acme-prod/history?since=1",
    ] {
        let got = get(&site, bad);
        assert_eq!(got.status, 400, "{bad}: {}", got.body);
        assert!(got.body.contains("id=\"problem\""), "{bad}");
        let got = get_json(&site, bad);
        assert_eq!(got.status, 400, "{bad}");
        let doc: serde_json::Value = serde_json::from_str(&got.body).unwrap();
        assert_eq!(doc["status"], 400);
        assert!(
            doc["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{doc}"
        );
    }
}

#[test]
fn the_access_table_pages_by_five_hundred() {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("tenancy: { name: big, csi: \"1\", admin: u0000 }\nusers:\n");
    for i in 0..1001 {
        yaml.push_str(&format!(
            "  u{i:04}: {{ email: u{i}@example.com, support_account: {{ phone: \"1\", timezone: UTC }} }}\n"
        ));
    }
    let path = dir.path().join("big.yaml");
    std::fs::write(&path, yaml).unwrap();
    let model = checked(&path);
    let mut store = Store::open(dir.path().join("state.db")).unwrap();
    apply(&mut store, &model, None, 0, "c0ffee");
    let site = Site::new(Settings {
        db: Location::Sqlite(dir.path().join("state.db")),
        status_file: dir.path().join("none.json"),
        show_phones: false,
        expiring_within: 14,
        auth: Auth::Open,
    })
    .on_day(day());
    let rows = |page: &str| page.matches("<tr data-user=").count();
    let first = ok_html(&site, "/t/big/access");
    assert_eq!(rows(&first), 500);
    assert!(first.contains("page 1 of 3"), "{first}");
    assert!(first.contains("rel=\"next\" href=\"/t/big/access?page=2\""));
    let last = ok_html(&site, "/t/big/access?page=3");
    assert_eq!(rows(&last), 1);
    assert!(last.contains("<tr data-user=\"u1000\""));
    assert_eq!(get(&site, "/t/big/access?page=4").status, 400);
    // The JSON twin is every row, unless a page is asked for.
    let all = ok_json(&site, "/t/big/access.json");
    assert_eq!(all.as_array().unwrap().len(), 1001);
    let second = ok_json(&site, "/t/big/access.json?page=2");
    assert_eq!(second.as_array().unwrap().len(), 500);
    assert_eq!(second[0]["user"], "u0500");
}

#[test]
fn a_users_page_is_access_user_with_what_the_state_holds() {
    let world = World::new();
    let site = world.site(Auth::Open);
    let page = ok_html(&site, "/t/acme-prod/users/bob");
    let access = element(&page, "<section id=\"user-access\"", "</section>");
    assert!(access.contains("data-path=\"linked\""), "{access}");
    assert!(
        access.contains("as <span class=\"acts-as\">dankim</span>"),
        "{access}"
    );
    let state = element(&page, "<dl id=\"user-state\"", "</dl>");
    assert!(state.contains("Support link</dt><dd>through <a class=\"user\" data-user=\"dankim\" href=\"/t/acme-prod/users/dankim\">"), "{state}");
    // The administrator's page lists who acts through them; phones are
    // redacted.
    let dankim = ok_html(&site, "/t/acme-prod/users/dankim");
    let acting = element(&dankim, "<ul id=\"acting\">", "</ul>");
    assert!(acting.contains("data-user=\"bob\""), "{acting}");
    assert!(dankim.contains("phone (redacted)"), "{dankim}");
    assert!(!dankim.contains("555 0100"));
    // Its twin is `access USER --format json`.
    let view = match site
        .reader
        .open()
        .unwrap()
        .unwrap()
        .view("acme-prod", day())
        .unwrap()
    {
        data::Found::Here(view) => view,
        _ => panic!("acme-prod is in the state"),
    };
    let bob = view.access.iter().find(|a| a.user == "bob").unwrap();
    assert_eq!(
        get(&site, "/t/acme-prod/users/bob/index.json").body,
        crate::report::access_json(bob)
    );
    assert_eq!(
        get_json(&site, "/t/acme-prod/users/bob").body,
        crate::report::access_json(bob)
    );
    // The access table and the overview link to it.
    assert!(ok_html(&site, "/t/acme-prod/access").contains("href=\"/t/acme-prod/users/bob\""));
    assert!(ok_html(&site, "/t/acme-prod").contains("href=\"/t/acme-prod/users/bob\""));
    let got = get(&site, "/t/acme-prod/users/nobody");
    assert_eq!(got.status, 404);
    assert!(
        got.body.contains("is not a user of tenancy"),
        "{}",
        got.body
    );
    assert_eq!(get(&site, "/t/acme-prod/users/nobody?x=1").status, 400);
}

#[test]
fn expiries_list_what_ends_within_the_days_asked_for() {
    let world = World::new();
    let site = world.site(Auth::Open);
    // On 2030-01-20: gina's link ends in 11 days, alice's approval in 161.
    let page = ok_html(&site, "/t/acme-prod/expiries");
    let list = element(&page, "<ol id=\"expiries\"", "</ol>");
    assert!(
        list.contains("<li data-user=\"gina\" data-grant=\"link\">"),
        "{list}"
    );
    assert!(!list.contains("alice"), "{list}");
    let json = ok_json(&site, "/t/acme-prod/expiries.json?days=365");
    let users: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["gina", "alice"]);
    assert_eq!(json[1]["grant"], "approval");
    assert_eq!(json[1]["days_left"], 161);
    for bad in ["?days=0", "?days=3651", "?days=x", "?week=1"] {
        assert_eq!(
            get(&site, &format!("/t/acme-prod/expiries{bad}")).status,
            400,
            "{bad}"
        );
    }
}

#[test]
fn an_administrators_expiry_ends_the_links_through_them_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.yaml");
    std::fs::write(
        &path,
        r#"
tenancy: { name: t, csi: "1", admin: root }
users:
  root: { email: root@example.com, support_account: { phone: "1", timezone: UTC } }
  boss: { email: boss@example.com, support_account: { phone: "1", timezone: UTC } }
  temp: { email: temp@example.com }
memberships: [{ user: boss }]
approvals: [{ user: boss, role: admin, expires: 2030-01-25 }]
support_links: [{ user: temp, via: boss }]
"#,
    )
    .unwrap();
    let model = checked(&path);
    let mut store = Store::open(dir.path().join("state.db")).unwrap();
    apply(&mut store, &model, None, 0, "c0ffee");
    let site = Site::new(Settings {
        db: Location::Sqlite(dir.path().join("state.db")),
        status_file: dir.path().join("none.json"),
        show_phones: false,
        expiring_within: 14,
        auth: Auth::Open,
    })
    .on_day(day());
    let json = ok_json(&site, "/t/t/index.json");
    let expiring = &json["attention"]["expiring"][0];
    assert_eq!(expiring["user"], "boss");
    assert_eq!(expiring["also_ends"], serde_json::json!(["temp"]));
    let page = ok_html(&site, "/t/t");
    let item = element(&page, "data-kind=\"expiring\" data-user=\"boss\"", "</li>");
    assert!(
        item.contains("and with it the links of <a class=\"user\" data-user=\"temp\""),
        "{item}"
    );
}

#[test]
fn the_srs_page_lists_every_sr_or_what_a_user_sees_and_where() {
    let world = World::new();
    let site = world.site(Auth::Open);
    let page = ok_html(&site, "/t/acme-prod/srs");
    let row = element(&page, "<tr data-sr=\"1\"", "</tr>");
    assert!(row.contains("Disk &lt;full&gt; on db-1"), "{row}");
    assert!(
        row.contains("<td class=\"owner\"><span class=\"user\">dankim</span>"),
        "{row}"
    );
    assert!(row.contains("dan.kim@acme.example"), "{row}");
    assert!(row.contains("1 comment"), "{row}");
    let srs = |target: &str| -> Vec<i64> {
        ok_json(&site, target)
            .as_array()
            .unwrap()
            .iter()
            .map(|sr| sr["id"].as_i64().unwrap())
            .collect()
    };
    // bob reads his own in the Console; alice (view_sr) every SR of the CSI
    // in MOS; carol (pending) none.
    let bob = ok_html(&site, "/t/acme-prod/srs?as=bob");
    assert!(
        element(&bob, "<tr data-sr=\"1\"", "</tr>")
            .contains("<td class=\"seen-in\">the Console</td>"),
        "{bob}"
    );
    let alice = ok_html(&site, "/t/acme-prod/srs?as=alice");
    assert!(element(&alice, "<tr data-sr=\"1\"", "</tr>").contains(">MOS</td>"));
    assert_eq!(srs("/t/acme-prod/srs.json?as=carol"), Vec::<i64>::new());
    assert_eq!(srs("/t/acme-prod/srs.json?as=bob"), [1]);
    // The twin is `sr list --format json`.
    let all = site
        .reader
        .open()
        .unwrap()
        .unwrap()
        .store
        .service_requests("acme-prod")
        .unwrap();
    assert_eq!(
        get(&site, "/t/acme-prod/srs.json").body,
        crate::report::sr_list_json(&all)
    );
    assert_eq!(get(&site, "/t/acme-prod/srs?as=nobody").status, 400);
    assert_eq!(get(&site, "/t/nowhere/srs").status, 404);
}

#[test]
fn the_graph_draws_each_link_from_its_administrator_with_its_end() {
    let world = World::new();
    let site = world.site(Auth::Open);
    let page = ok_html(&site, "/t/acme-prod/graph");
    let svg = element(&page, "<svg id=\"graph\"", "</svg>");
    let bob = element(
        svg,
        "<g class=\"edge\" data-user=\"bob\" data-via=\"dankim\">",
        "</g>",
    );
    assert!(bob.contains(">no end</text>"), "{bob}");
    let gina = element(
        svg,
        "<g class=\"edge\" data-user=\"gina\" data-via=\"erin\">",
        "</g>",
    );
    assert!(gina.contains(">until 2030-01-31</text>"), "{gina}");
    assert!(svg.contains("data-admin=\"dankim\""), "{svg}");
    assert!(svg.contains("data-admin=\"erin\""), "{svg}");
    let table = element(&page, "<table id=\"links\"", "</table>");
    assert!(
        table.contains("<tr data-user=\"bob\" data-via=\"dankim\">"),
        "{table}"
    );
    let json = ok_json(&site, "/t/acme-prod/graph.json");
    assert_eq!(json[0]["administrator"], "dankim");
    assert_eq!(json[0]["is_admin"], true);
    assert_eq!(json[0]["users"][0]["user"], "bob");

    // A link through someone who is no administrator is drawn dashed.
    let hostile = ok_html(&site, "/t/hostile/graph");
    let svg = element(&hostile, "<svg id=\"graph\"", "</svg>");
    assert!(
        svg.contains("<g class=\"edge inactive\" data-user=\"linker\" data-via=\"frank\">"),
        "{svg}"
    );
    assert!(
        svg.contains("<g class=\"node admin not-admin\" data-admin=\"frank\">"),
        "{svg}"
    );
    assert!(!hostile.contains("<script>alert"), "{hostile}");
}

#[test]
fn history_lists_entries_newest_first_and_each_opens_to_its_plan() {
    let world = World::new();
    let site = world.site(Auth::Open);
    let page = ok_html(&site, "/t/acme-prod/history");
    let list = element(&page, "<ol id=\"history\"", "</ol>");
    let second = list.find("data-serial=\"2\"").unwrap();
    let first = list.find("data-serial=\"1\"").unwrap();
    assert!(second < first, "newest first: {list}");
    assert_eq!(list.matches("<a class=\"history-entry\"").count(), 2);
    assert!(list.contains("href=\"/t/acme-prod/history/2\""));

    // The twin is `history --format json`, oldest first as the command prints it.
    let journal = match site
        .reader
        .open()
        .unwrap()
        .unwrap()
        .journal("acme-prod")
        .unwrap()
    {
        data::Found::Here(journal) => journal,
        _ => panic!("acme-prod has a journal"),
    };
    assert_eq!(
        get(&site, "/t/acme-prod/history.json").body,
        crate::report::history_json(&journal.records)
    );

    let entry = ok_html(&site, "/t/acme-prod/history/2");
    let plan = element(&entry, "<div id=\"plan\"", "<nav");
    let alice = element(plan, "data-address=\"user.alice\"", "</div>\n</div>");
    assert!(
        alice.contains("<span class=\"symbol update\">~</span>"),
        "{alice}"
    );
    assert!(
        alice.contains("<span class=\"before\">&quot;Alice Lee&quot;</span> → <span class=\"after\">&quot;Alice Kim&quot;</span>"),
        "{alice}"
    );
    // Phones are redacted unless asked for.
    let account = element(
        plan,
        "data-address=\"support_account.alice\"",
        "</div>\n</div>",
    );
    assert!(account.contains("(redacted)"), "{account}");
    assert!(!entry.contains("555 0199"), "{entry}");
    assert!(
        plan.contains("Plan: 0 to add, 2 to change, 0 to destroy."),
        "{plan}"
    );
    assert!(entry.contains("c0ffee2"));
    let json = ok_json(&site, "/t/acme-prod/history/2.json");
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["summary"]["change"], 2);
    assert!(!json.to_string().contains("555 0199"), "{json}");

    let shown = world.site_with(Auth::Open, true);
    let entry = ok_html(&shown, "/t/acme-prod/history/2");
    assert!(
        entry.contains("&quot;+82 2 555 0199&quot;"),
        "--show-phones shows them"
    );

    // The first apply creates everything.
    let entry = ok_html(&site, "/t/acme-prod/history/1");
    assert!(entry.contains(
        "<span class=\"symbol create\">+</span> <span class=\"address\">user.bob</span>"
    ));

    for missing in [
        "/t/acme-prod/history/9",
        "/t/acme-prod/history/x",
        "/t/nowhere/history",
    ] {
        assert_eq!(get(&site, missing).status, 404, "{missing}");
    }
}

#[test]
fn the_home_page_lists_tenancies_or_is_the_only_ones_overview() {
    let world = World::new();
    let site = world.site(Auth::Open);
    let page = ok_html(&site, "/");
    assert!(
        page.contains("href=\"/t/acme-prod\" data-tenancy=\"acme-prod\""),
        "{page}"
    );
    assert!(page.contains("href=\"/t/hostile\""), "{page}");
    let json = ok_json(&site, "/index.json");
    assert_eq!(
        json["tenancies"],
        serde_json::json!(["acme-prod", "hostile"])
    );

    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("one.db")).unwrap();
    apply(&mut store, &example(), None, 0, "c0ffee");
    let one = Site::new(Settings {
        db: Location::Sqlite(dir.path().join("one.db")),
        status_file: dir.path().join("none.json"),
        show_phones: false,
        expiring_within: 14,
        auth: Auth::Open,
    })
    .on_day(day());
    assert!(ok_html(&one, "/").contains("<ul id=\"attention\">"));

    // No state at all: unavailable, saying where it looked.
    let none = Site::new(Settings {
        db: Location::Sqlite(dir.path().join("missing.db")),
        status_file: dir.path().join("none.json"),
        show_phones: false,
        expiring_within: 14,
        auth: Auth::Open,
    });
    let got = get(&none, "/");
    assert_eq!(got.status, 503);
    assert!(got.body.contains("missing.db"), "{}", got.body);
    assert!(
        !dir.path().join("missing.db").exists(),
        "nothing is created"
    );
}

#[test]
fn unknown_paths_are_404_pages_and_other_methods_405() {
    let world = World::new();
    let site = world.site(Auth::Open);
    for path in [
        "/nowhere",
        "/t",
        "/t/acme-prod/nowhere",
        "/t/acme-prod/access/x",
        "/t/nowhere",
        "/t/nowhere/access",
        "/static/other.js",
        "/favicon.ico",
    ] {
        let got = get(&site, path);
        assert_eq!(got.status, 404, "{path}");
        assert_eq!(got.content_type, HTML, "{path}");
        assert!(got.body.contains("<h1>Not found</h1>"), "{path}");
        let got = get_json(&site, path);
        assert_eq!(
            (got.status, got.content_type.as_str()),
            (404, JSON),
            "{path}"
        );
    }
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let got = call(&site, method, "/t/acme-prod", &[], "x");
        assert_eq!(got.status, 405, "{method}");
        assert_eq!(got.header("Allow"), Some("GET, HEAD"));
    }
    let got = call(&site, "PUT", "/login", &[], "");
    assert_eq!(got.header("Allow"), Some("GET, HEAD, POST"));
    assert_eq!(
        site.body_limit(&Request::of("POST", "/login", &[], b"")),
        LOGIN_BODY
    );
    assert_eq!(site.body_limit(&Request::of("POST", "/t/x", &[], b"")), 0);
    assert_eq!(site.body_limit(&Request::of("GET", "/login", &[], b"")), 0);
    // A HEAD is answered as a GET (the server leaves out the body).
    assert_eq!(call(&site, "HEAD", "/t/acme-prod", &[], "").status, 200);
}

/// Sends `request` to `addr` on a connection of its own; the answer whole.
fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn every_answer_has_the_security_headers() {
    use crate::telemetry::Server;
    use std::sync::Arc;
    let world = World::new();
    let open = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(world.site(Auth::Open)),
    )
    .unwrap();
    let guarded = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(world.site(Auth::Token(TokenAuth::new("s3cret")))),
    )
    .unwrap();
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
    let answers = [
        (open.local_addr(), "GET / HTTP/1.1\r\n\r\n", "200"),
        (
            open.local_addr(),
            "GET /t/acme-prod/access.json HTTP/1.1\r\n\r\n",
            "200",
        ),
        (
            open.local_addr(),
            "HEAD /t/acme-prod/access HTTP/1.1\r\n\r\n",
            "200",
        ),
        (open.local_addr(), "GET /nowhere HTTP/1.1\r\n\r\n", "404"),
        (
            open.local_addr(),
            "GET /t/acme-prod/access?page=0 HTTP/1.1\r\n\r\n",
            "400",
        ),
        (
            open.local_addr(),
            "GET /static/app.js HTTP/1.1\r\n\r\n",
            "200",
        ),
        (open.local_addr(), "DELETE / HTTP/1.1\r\n\r\n", "405"),
        // What the server answers itself.
        (open.local_addr(), "GARBAGE\r\n\r\n", "400"),
        (open.local_addr(), "GET / HTTP/2.0\r\n\r\n", "505"),
        (open.local_addr(), huge.as_str(), "431"),
        (
            open.local_addr(),
            "POST /login HTTP/1.1\r\nContent-Length: 99999\r\n\r\n",
            "413",
        ),
        (
            guarded.local_addr(),
            "GET / HTTP/1.1\r\nAccept: text/html\r\n\r\n",
            "303",
        ),
        (
            guarded.local_addr(),
            "GET /t/acme-prod HTTP/1.1\r\n\r\n",
            "401",
        ),
        (guarded.local_addr(), "GET /login HTTP/1.1\r\n\r\n", "200"),
    ];
    for (addr, request, status) in answers {
        let answer = raw(addr, request.as_bytes());
        let head = format!("{}\r\n", answer.split("\r\n\r\n").next().unwrap());
        assert_eq!(answer.get(9..12), Some(status), "{request:.60}: {head}");
        for (name, value) in HEADERS {
            assert!(
                head.contains(&format!("\r\n{name}: {value}\r\n")),
                "{request:.60} has no `{name}`: {head}"
            );
        }
    }
    assert!(CSP.contains("script-src 'self'") && !CSP.contains("unsafe-inline"));
    assert!(CSP.contains("frame-ancestors 'none'"));
    let site = world.site(Auth::Open);
    let script = get(&site, "/static/app.js");
    assert_eq!(script.content_type, "text/javascript; charset=utf-8");
    let style = get(&site, "/static/style.css");
    assert_eq!(style.content_type, "text/css; charset=utf-8");
    open.stop();
    guarded.stop();
}

#[test]
fn a_token_guards_every_page_and_a_login_gives_a_session() {
    let world = World::new();
    let site = world.site(Auth::Token(TokenAuth::new("s3cret-token")));

    // A browser is sent to the form; any other client is told 401.
    let got = get(&site, "/t/acme-prod");
    assert_eq!((got.status, got.header("Location")), (303, Some("/login")));
    let got = call(&site, "GET", "/t/acme-prod", &[("Accept", "*/*")], "");
    assert_eq!(got.status, 401);
    assert_eq!(
        got.header("WWW-Authenticate"),
        Some("Bearer realm=\"supportctl\"")
    );
    let got = get_json(&site, "/t/acme-prod/access.json");
    assert_eq!((got.status, got.content_type.as_str()), (401, JSON));
    assert!(
        !got.body.contains("acme"),
        "nothing of the state: {}",
        got.body
    );
    // The login form, the stylesheet and the script need no token.
    let form = get(&site, "/login");
    assert_eq!(form.status, 200);
    assert!(
        form.body
            .contains("<form method=\"post\" action=\"/login\"")
    );
    assert_eq!(get(&site, "/static/style.css").status, 200);

    // A bearer token, the scheme in any case.
    for header in ["Bearer s3cret-token", "bearer  s3cret-token "] {
        let got = call(
            &site,
            "GET",
            "/t/acme-prod/access.json",
            &[("Authorization", header)],
            "",
        );
        assert_eq!(got.status, 200, "{header}");
    }
    for header in [
        "Bearer s3cret",
        "Bearer s3cret-token2",
        "Basic s3cret-token",
        "s3cret-token",
        "Bearer",
    ] {
        let got = call(
            &site,
            "GET",
            "/t/acme-prod/access.json",
            &[("Authorization", header)],
            "",
        );
        assert_eq!(got.status, 401, "{header}");
    }

    // A wrong token at the form is refused, and no session given.
    let got = call(
        &site,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "token=wrong",
    );
    assert_eq!(got.status, 401);
    assert!(got.header("Set-Cookie").is_none());
    assert!(got.body.contains("id=\"login-error\""));
    // A form posted from another site is refused.
    let got = call(
        &site,
        "POST",
        "/login",
        &[("Sec-Fetch-Site", "cross-site")],
        "token=s3cret-token",
    );
    assert_eq!(got.status, 403);
    let got = call(
        &site,
        "POST",
        "/login",
        &[
            ("Origin", "http://evil.example"),
            ("Host", "127.0.0.1:8080"),
        ],
        "token=s3cret-token",
    );
    assert_eq!(got.status, 403);

    // The right one gives a session cookie that is not the token.
    let got = call(
        &site,
        "POST",
        "/login",
        &[
            ("Origin", "null"),
            ("Host", "127.0.0.1:8080"),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        "token=s3cret%2Dtoken",
    );
    assert_eq!((got.status, got.header("Location")), (303, Some("/")));
    let cookie = got.header("Set-Cookie").unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("s3cret"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    assert!(
        pair.starts_with("supportctl_session=") && pair.len() > 60,
        "{pair}"
    );
    let with = |cookie: &str| {
        call(
            &site,
            "GET",
            "/t/acme-prod",
            &[("Accept", "text/html"), ("Cookie", cookie)],
            "",
        )
        .status
    };
    assert_eq!(with(&pair), 200);
    assert_eq!(with(&format!("other=1; {pair}")), 200);
    assert_eq!(with("supportctl_session=0000"), 303);
    assert_eq!(with(&pair.replace('a', "b").replace('1', "2")), 303);
    // A second login is another session; both hold.
    let again = call(&site, "POST", "/login", &[], "token=s3cret-token");
    let other = again
        .header("Set-Cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(other, pair);
    assert_eq!(with(&other), 200);
    assert_eq!(with(&pair), 200);
    // With a session, the form sends the browser home.
    let got = call(&site, "GET", "/login", &[("Cookie", &pair)], "");
    assert_eq!((got.status, got.header("Location")), (303, Some("/")));

    // A page in a session offers to log out; one read with the bearer
    // token, or by no one, does not; no page keeps the slot's mark.
    let page =
        |headers: &[(&str, &str)]| call(&site, "GET", "/t/acme-prod/access", headers, "").body;
    let in_session = page(&[("Accept", "text/html"), ("Cookie", &pair)]);
    let nav = element(&in_session, "<header>", "</header>");
    assert!(nav.contains(html::LOGOUT_FORM.trim_end()), "{nav}");
    let by_token = page(&[("Authorization", "Bearer s3cret-token")]);
    assert!(!by_token.contains("/logout") && !by_token.contains(html::SESSION_SLOT));
    assert!(!get(&site, "/login").body.contains(html::SESSION_SLOT));
    assert!(!ok_html(&world.site(Auth::Open), "/t/acme-prod").contains(html::SESSION_SLOT));
    // Logging out: only by POST from this site; it ends that session alone
    // and makes the browser forget its cookie.
    let got = call(&site, "GET", "/logout", &[("Cookie", &pair)], "");
    assert_eq!((got.status, got.header("Allow")), (405, Some("POST")));
    let got = call(
        &site,
        "POST",
        "/logout",
        &[("Cookie", &pair), ("Sec-Fetch-Site", "cross-site")],
        "",
    );
    assert_eq!(got.status, 403);
    assert_eq!(with(&pair), 200, "a foreign form ends no session");
    let got = call(
        &site,
        "POST",
        "/logout",
        &[("Cookie", &pair), ("Sec-Fetch-Site", "same-origin")],
        "",
    );
    assert_eq!((got.status, got.header("Location")), (303, Some("/login")));
    let forget = got.header("Set-Cookie").unwrap();
    assert!(
        forget.starts_with("supportctl_session=;") && forget.contains("Max-Age=0"),
        "{forget}"
    );
    assert_eq!(with(&pair), 303, "the session ended");
    assert_eq!(with(&other), 200, "the other session holds");

    // Without a token, no login is needed.
    let open = world.site(Auth::Open);
    assert_eq!(get(&open, "/login").header("Location"), Some("/"));
}

#[test]
fn tokens_are_compared_in_constant_time_by_their_digests() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abcd"));
    assert!(constant_time_eq(b"", b""));
    let auth = TokenAuth::new("token");
    assert!(auth.is_token("token"));
    assert!(!auth.is_token("token "));
    assert!(!auth.is_token(""));
    assert!(!auth.is_token("tokentoken"));
}

#[test]
fn sessions_are_kept_up_to_the_limit_the_oldest_dropped_first() {
    let auth = TokenAuth::new("t");
    let cookie = |id: &str| format!("{}={id}", auth::COOKIE);
    let admits = |id: &str| {
        let header = cookie(id);
        auth.admits(&Request::of("GET", "/", &[("Cookie", &header)], b""))
    };
    let first = auth.open_session().unwrap();
    assert_eq!(first.len(), 64);
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(admits(&first));
    for _ in 0..auth::MAX_SESSIONS {
        auth.open_session().unwrap();
    }
    assert!(!admits(&first), "the oldest session went");
    let last = auth.open_session().unwrap();
    assert!(admits(&last));
}

#[test]
fn routes_are_read_strictly() {
    let ok = |path: &str, want: Route, json: bool| {
        assert_eq!(route(path).unwrap(), (want, json), "{path}");
    };
    ok("/", Route::Home, false);
    ok("/index.json", Route::Home, true);
    ok("/t/acme-prod", Route::Overview("acme-prod".into()), false);
    ok("/t/acme-prod/", Route::Overview("acme-prod".into()), false);
    ok("/t/a.json", Route::Overview("a.json".into()), false);
    ok(
        "/t/acme%2Dprod/index.json",
        Route::Overview("acme-prod".into()),
        true,
    );
    ok("/t/x/access.json", Route::Access("x".into()), true);
    ok("/t/x/history", Route::History("x".into()), false);
    ok(
        "/t/x/users/a.json",
        Route::User("x".into(), "a.json".into()),
        false,
    );
    ok(
        "/t/x/users/bob/index.json",
        Route::User("x".into(), "bob".into()),
        true,
    );
    ok("/t/x/expiries.json", Route::Expiries("x".into()), true);
    ok("/t/x/graph", Route::Graph("x".into()), false);
    ok("/t/x/srs.json", Route::Srs("x".into()), true);
    ok("/t/x/history/12", Route::Entry("x".into(), 12), false);
    ok("/t/x/history/12.json", Route::Entry("x".into(), 12), true);
    for missing in [
        "/t",
        "/t/",
        "/t/x/history/-1",
        "/t/x/history/1e3",
        "/t/x/history/99999999999999999999999",
        "//",
        "/t/x/y/z",
    ] {
        let problem = route(missing).unwrap_err();
        assert_eq!(problem.status, 404, "{missing}");
    }
    assert_eq!(route("/t/%ff").unwrap_err().status, 400);
}

/// The example tenancy changed once more (alice's name), as serial 2.
fn apply_third(world: &World) {
    let (_, second) = example_applied();
    let mut third = second.clone();
    third.users.get_mut("alice").unwrap().name = Some("Alice Park".into());
    let mut store = Store::open(world.dir.path().join("state.db")).unwrap();
    apply(&mut store, &third, Some(&second), 2, "c0ffee4");
}

#[test]
fn the_state_is_read_ahead_once_per_serial_and_pages_never_show_an_older_one() {
    let world = World::new();
    let site = world.site(Auth::Open);
    assert_eq!(site.reader.reads(), 0);
    // Read ahead: both tenancies, then nothing more while their serials hold.
    site.reader.refresh(day()).unwrap();
    assert_eq!(site.reader.reads(), 2);
    site.reader.refresh(day()).unwrap();
    assert!(ok_html(&site, "/t/acme-prod/access").contains("Alice Kim"));
    assert!(ok_html(&site, "/t/hostile/access").contains("frank"));
    assert_eq!(
        site.reader.reads(),
        2,
        "pages render from what was read ahead"
    );
    // After an apply the page reads the new serial itself, before any
    // refresh, and the refresh then has nothing to read.
    apply_third(&world);
    let page = ok_html(&site, "/t/acme-prod/access");
    assert!(
        page.contains("Alice Park") && !page.contains("Alice Kim"),
        "{page}"
    );
    assert_eq!(site.reader.reads(), 3);
    site.reader.refresh(day()).unwrap();
    assert_eq!(site.reader.reads(), 3);
    // Another day is another view.
    let tomorrow = Date::parse("2030-01-21").unwrap();
    site.reader.refresh(tomorrow).unwrap();
    assert_eq!(site.reader.reads(), 5);
}

#[test]
fn requests_that_want_the_same_new_serial_wait_for_one_read() {
    let world = World::new();
    let site = world.site(Auth::Open);
    let start = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                start.wait();
                assert!(ok_html(&site, "/t/acme-prod/access").contains("Alice Kim"));
            });
        }
    });
    assert_eq!(site.reader.reads(), 1);
}

#[test]
fn the_refresher_reads_ahead_and_stops_when_dropped() {
    let world = World::new();
    let site = Arc::new(world.site(Auth::Open));
    let refresher =
        Refresher::start(Arc::clone(&site), std::time::Duration::from_millis(20)).unwrap();
    let waited = std::time::Instant::now();
    while site.reader.reads() < 2 {
        assert!(
            waited.elapsed().as_secs() < 10,
            "the refresher read nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // An apply is read by the refresher, without a request.
    apply_third(&world);
    while site.reader.reads() < 3 {
        assert!(
            waited.elapsed().as_secs() < 10,
            "the refresher missed the apply"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let stopping = std::time::Instant::now();
    drop(refresher);
    assert!(
        stopping.elapsed().as_secs() < 2,
        "the refresher did not stop"
    );
    assert!(ok_html(&site, "/t/acme-prod/access").contains("Alice Park"));
    assert_eq!(
        site.reader.reads(),
        3,
        "the request used the refresher's read"
    );
}

#[test]
fn a_large_plan_is_shown_five_hundred_changes_a_page_and_whole_as_json() {
    let world = World::new();
    let mut big = example();
    big.tenancy.name = "big".into();
    let bob = big.users["bob"].clone();
    for n in 0..1100 {
        big.users.insert(format!("u{n:04}"), bob.clone());
    }
    let mut store = Store::open(world.dir.path().join("state.db")).unwrap();
    apply(&mut store, &big, None, 0, "c0ffee5");
    drop(store);
    let site = world.site(Auth::Open);
    let whole = ok_json(&site, "/t/big/history/1.json");
    let changes = whole["changes"].as_array().unwrap().len();
    assert!(changes > 1100, "{changes}");
    let pages = changes.div_ceil(500);
    let count = |html: &str| html.matches("<div class=\"change ").count();
    let first = ok_html(&site, "/t/big/history/1");
    assert_eq!(count(&first), 500);
    assert!(
        first.contains(&format!("Changes 1–500 of {changes}, 500 a page.")),
        "{first}"
    );
    assert!(first.contains("href=\"/t/big/history/1?page=2\">next</a>"));
    assert!(first.contains(&format!("href=\"/t/big/history/1?page={pages}\">last</a>")));
    assert!(!first.contains("rel=\"prev\" href=\"/t/big/history/1?page"));
    let summary = element(&first, "<p class=\"summary-line\">", "</p>").to_string();
    assert!(summary.contains(&format!("{changes} to add")), "{summary}");
    let last = ok_html(&site, &format!("/t/big/history/1?page={pages}"));
    assert_eq!(count(&last), changes - (pages - 1) * 500);
    assert!(last.contains(&format!(
        "Changes {}–{changes} of {changes}",
        (pages - 1) * 500 + 1
    )));
    assert!(last.contains("href=\"/t/big/history/1?page=1\">first</a>"));
    assert_eq!(
        element(&last, "<p class=\"summary-line\">", "</p>"),
        summary,
        "every page sums up the whole plan"
    );
    // Every change is on exactly one page.
    let addresses: Vec<String> = (1..=pages)
        .flat_map(|page| {
            let html = ok_html(&site, &format!("/t/big/history/1?page={page}"));
            html.split("data-address=\"")
                .skip(1)
                .map(|rest| rest[..rest.find('"').unwrap()].to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(addresses.len(), changes);
    let unique: std::collections::BTreeSet<&String> = addresses.iter().collect();
    assert_eq!(unique.len(), changes);
    // A small plan has no pages; a page past the last is a 400.
    let small = ok_html(&site, "/t/acme-prod/history/2");
    assert!(!small.contains("plan-pages") && !small.contains("plan-count"));
    let past = get(&site, &format!("/t/big/history/1?page={}", pages + 1));
    assert_eq!(past.status, 400, "{}", past.body);
    assert!(
        past.body.contains(&format!(
            "page {} is past the plan&#39;s last page, {pages}",
            pages + 1
        )),
        "{}",
        past.body
    );
    assert_eq!(get(&site, "/t/big/history/1?page=0").status, 400);
    assert_eq!(get(&site, "/t/big/history/1?sort=x").status, 400);
}

#[test]
fn the_overview_lists_fifty_of_a_kind_and_links_to_the_rest() {
    let world = World::new();
    let mut crowd = example();
    crowd.tenancy.name = "crowd".into();
    let carol = crowd.users["carol"].clone();
    let account = crowd.support_accounts["carol"].clone();
    let link = crowd.support_links["bob"].clone();
    for n in 0..70 {
        // 70 more requests waiting, like carol's; 80 more linked, like bob.
        let waiting = format!("w{n:03}");
        crowd.users.insert(waiting.clone(), carol.clone());
        crowd
            .support_accounts
            .insert(waiting.clone(), account.clone());
        crowd.memberships.insert(waiting);
    }
    for n in 0..80 {
        let linked = format!("l{n:03}");
        crowd.users.insert(linked.clone(), carol.clone());
        crowd.support_links.insert(linked, link.clone());
    }
    let mut store = Store::open(world.dir.path().join("state.db")).unwrap();
    apply(&mut store, &crowd, None, 0, "c0ffee6");
    drop(store);
    let site = world.site(Auth::Open);
    let overview = ok_html(&site, "/t/crowd");
    let attention = element(&overview, "<ul id=\"attention\">", "</ul>");
    assert_eq!(attention.matches("data-kind=\"pending\"").count(), 50);
    let more = element(
        attention,
        "<li class=\"more\" data-kind=\"pending-more\">",
        "</li>",
    );
    assert!(
        more.contains("and 21 more: <a href=\"/t/crowd/access?path=pending\">"),
        "71 wait (carol too): {more}"
    );
    let acting = element(&overview, "<ul id=\"acting\">", "</section>");
    let dankim = element(acting, "<li data-admin=\"dankim\">", "</ul>");
    assert_eq!(dankim.matches("data-via=\"dankim\"").count(), 50);
    assert!(
        acting.contains(
            "and 31 more: <a href=\"/t/crowd/users/dankim\">every user who acts through dankim</a>"
        ),
        "81 act through dankim (bob too): {acting}"
    );
    // The pages linked list them all, and the JSON twin is whole.
    let pending = ok_json(&site, "/t/crowd/access.json?path=pending");
    assert_eq!(pending.as_array().unwrap().len(), 71);
    let dankim_page = ok_html(&site, "/t/crowd/users/dankim");
    assert_eq!(
        dankim_page.matches("/t/crowd/users/l0").count(),
        80,
        "{dankim_page}"
    );
    let json = ok_json(&site, "/t/crowd/index.json");
    let waiting = json["attention"]["pending_memberships"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(waiting, 71, "{json}");
    // The example's overview, short of fifty, says no more.
    assert!(!ok_html(&site, "/t/acme-prod").contains("class=\"more\""));
}
