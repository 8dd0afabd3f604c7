//! How to reach the server: the URL, libpq's environment and password file.
//!
//! Users of PostgreSQL already have their connection set up for `psql`: a
//! URL, `PG*` variables, a `~/.pgpass`. The Rust drivers read none of that
//! (and `postgres::Config`'s own parser knows neither `verify-ca` nor
//! `verify-full`), so this module reads it the way libpq (PostgreSQL 15)
//! does, and hands the driver finished values through its builder:
//!
//! - the URL (`postgres[ql]://[user[:password]@][host][:port][,host[:port]…][/dbname][?param=value&…]`),
//!   percent-decoded, its query parameters winning over its body;
//! - then for each part the URL left out, libpq's environment variable;
//! - then libpq's defaults (Debian's socket folder, port 5432, the OS user,
//!   a database named like the user), except the connect timeout: 10 s,
//!   not libpq's "wait forever", so an unreachable server fails a command
//!   quickly;
//! - and, only when neither the URL nor `PGPASSWORD` gave a password, the
//!   password file.
//!
//! The password is a secret: it is never part of [`ConnInfo`]'s `Debug`,
//! nor of any error here; [`redact`] is how a URL is shown.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::tls;

/// Where libpq on Debian looks for the server's socket when no host is
/// given (`DEFAULT_PGSOCKET_DIR`).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// PostgreSQL's port when none is given.
pub const DEFAULT_PORT: u16 = 5432;

/// How long a connection attempt may take, per host, when the URL and
/// `PGCONNECT_TIMEOUT` do not say: long enough for a server across the
/// world, short enough that a command against a server that is down fails
/// while its user still waits for it.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The URL schemes libpq takes, with the `://`.
const SCHEMES: [&str; 2] = ["postgresql://", "postgres://"];

/// Whether `text` is a PostgreSQL URL (`postgres://` or `postgresql://`,
/// the scheme in any case) rather than a SQLite path: how `--db` tells the
/// backends apart.
pub fn is_url(text: &str) -> bool {
    scheme_len(text).is_some()
}

/// The length of `text`'s scheme and `://`, when it is a PostgreSQL URL.
fn scheme_len(text: &str) -> Option<usize> {
    SCHEMES.iter().find_map(|scheme| {
        let head = text.as_bytes().get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme.as_bytes())
            .then_some(scheme.len())
    })
}

/// The URL as given, with any password (in its user info, `user:pw@`, or
/// a `password=` parameter) shown as `***`: how supportctl prints a URL,
/// in messages, logs and files. A URL that cannot be parsed is still
/// masked, generously: everything from the first `:` after the scheme to
/// the last `@`, and every `password=` value. Text that is not a
/// PostgreSQL URL is returned as it is.
pub fn redact(url: &str) -> String {
    rewrite(url, Some("***"))
}

/// The URL with its password removed entirely (`user@`, no `password=`
/// parameter): names the state in a local cache file's name, which must
/// stay the same when only the password changes and must never hold it.
pub fn without_password(url: &str) -> String {
    rewrite(url, None)
}

/// [`redact`] with `mask` in the password's place, or
/// [`without_password`] with `None`.
fn rewrite(url: &str, mask: Option<&str>) -> String {
    if !is_url(url) {
        return url.to_owned();
    }
    match RawUri::parse(url) {
        Ok(raw) if raw.is_unambiguous() => raw.rewrite(mask),
        _ => rewrite_unparsable(url, mask),
    }
}

/// Masks a URL that does not parse, or parses ambiguously (an `@` in its
/// host or database name, a port that is not a number: signs of a password
/// with `@`, `/` or `:` not percent-encoded): from the first `:` after the
/// scheme up to the last `@`, then every parameter named `password`.
fn rewrite_unparsable(url: &str, mask: Option<&str>) -> String {
    let start = scheme_len(url).unwrap_or(0);
    let mut text = url.to_owned();
    if let Some(at) = text[start..].rfind('@').map(|i| start + i)
        && let Some(colon) = text[start..at].find(':').map(|i| start + i)
    {
        text = match mask {
            Some(mask) => format!("{}{mask}{}", &text[..=colon], &text[at..]),
            None => format!("{}{}", &text[..colon], &text[at..]),
        };
    }
    let Some(q) = text[start..].find('?').map(|i| start + i) else {
        return text;
    };
    let kept: Vec<String> = text[q + 1..]
        .split('&')
        .filter_map(|segment| {
            let Some((key, _value)) = segment.split_once('=') else {
                return Some(segment.to_owned());
            };
            let is_password = decode_lenient(key).eq_ignore_ascii_case("password");
            match (is_password, mask) {
                (false, _) => Some(segment.to_owned()),
                (true, Some(mask)) => Some(format!("{key}={mask}")),
                (true, None) => None,
            }
        })
        .collect();
    let mut out = text[..q].to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    out
}

/// How to reach one server, everything resolved: what [`ConnInfo::connect`]
/// hands the driver.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// The servers to try, in order (libpq's multi-host URL): the first
    /// that accepts the connection is used.
    pub hosts: Vec<Host>,
    /// The first host's port: the port, for the usual URL with one host.
    pub port: u16,
    /// Each host's port, in the order of `hosts` (same length).
    pub ports: Vec<u16>,
    /// The database role to connect as.
    pub user: String,
    /// The database to connect to.
    pub dbname: String,
    /// From the URL or `PGPASSWORD`; private so that nothing prints it.
    password: Option<String>,
    /// Where `password` came from, for the hint when the server refuses it.
    password_from: PasswordFrom,
    /// The password file's password for each host (libpq looks it up per
    /// host), when `password` is `None`.
    file_passwords: Vec<Option<String>>,
    /// The password file that was read, when one was.
    passfile: Option<PathBuf>,
    /// How the connection is encrypted and checked.
    pub sslmode: SslMode,
    /// The root certificates to check the server's against: given, or
    /// `~/.postgresql/root.crt` for the verify modes.
    pub sslrootcert: Option<PathBuf>,
    /// How long to wait for each host; zero waits without limit (libpq's
    /// `connect_timeout=0`).
    pub connect_timeout: Duration,
    /// What the server shows for this session in `pg_stat_activity`.
    pub application_name: Option<String>,
}

/// Where a password came from, so that the error for a wrong one can say
/// which to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PasswordFrom {
    None,
    Url,
    Env,
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |p: Option<&String>| p.map(|_| "***");
        f.debug_struct("ConnInfo")
            .field("hosts", &self.hosts)
            .field("ports", &self.ports)
            .field("user", &self.user)
            .field("dbname", &self.dbname)
            .field("password", &secret(self.password.as_ref()))
            .field(
                "file_passwords",
                &self
                    .file_passwords
                    .iter()
                    .map(|p| secret(p.as_ref()))
                    .collect::<Vec<_>>(),
            )
            .field("passfile", &self.passfile)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("connect_timeout", &self.connect_timeout)
            .field("application_name", &self.application_name)
            .finish()
    }
}

/// One server to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name or IP address (an IPv6 one without its brackets),
    /// reached over TCP.
    Tcp(String),
    /// A folder holding the server's Unix socket (`.s.PGSQL.PORT` in it):
    /// a host that is empty or starts with `/`, as libpq says.
    Socket(PathBuf),
}

impl Host {
    /// A host as libpq reads one from the `host` list: empty is the
    /// default socket folder, a path is a socket folder.
    fn from_text(text: &str) -> Host {
        if text.is_empty() {
            Host::Socket(PathBuf::from(DEFAULT_SOCKET_DIR))
        } else if text.starts_with('/') {
            Host::Socket(PathBuf::from(text))
        } else {
            Host::Tcp(text.to_owned())
        }
    }

    /// The host with its port, as messages name it: `db.example:5432`,
    /// `[::1]:5432`, `socket /run/postgresql/.s.PGSQL.5432`.
    pub fn shown(&self, port: u16) -> String {
        match self {
            Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
            Host::Tcp(name) => format!("{name}:{port}"),
            Host::Socket(dir) => {
                format!("socket {}", dir.join(format!(".s.PGSQL.{port}")).display())
            }
        }
    }

    /// The host name the password file matches against: `localhost` for
    /// the default socket folder (libpq's rule), the folder for another.
    fn passfile_name(&self) -> String {
        match self {
            Host::Tcp(name) => name.clone(),
            Host::Socket(dir) if dir == Path::new(DEFAULT_SOCKET_DIR) => "localhost".into(),
            Host::Socket(dir) => dir.display().to_string(),
        }
    }
}

/// libpq's `sslmode`, less `allow` (plaintext first, TLS only if the
/// server insists), which no one needs and the driver cannot do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, unchecked; plaintext otherwise.
    /// libpq's default.
    Prefer,
    /// TLS or no connection; the certificate unchecked unless a root
    /// certificate file is given (then as `VerifyCa`).
    Require,
    /// TLS, the certificate chained to `sslrootcert`; any host name.
    VerifyCa,
    /// TLS, the chain, and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    /// Whether the mode checks the server's certificate (and so needs a
    /// root certificate file).
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

impl std::str::FromStr for SslMode {
    type Err = String;

    /// libpq's spelling (lower case, as libpq takes it).
    fn from_str(text: &str) -> Result<SslMode, String> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(
                    "sslmode `allow` is not supported: use `prefer` (TLS when the server offers it) or `disable`"
                        .into(),
                );
            }
            other => {
                return Err(format!(
                    "invalid sslmode `{other}`: use disable, prefer, require, verify-ca or verify-full"
                ));
            }
        })
    }
}

impl fmt::Display for SslMode {
    /// libpq's spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        })
    }
}

/// The connection parameters supportctl reads from a URL, as libpq names
/// them. Any other is refused, as libpq refuses one it does not know:
/// silently ignoring `sslcert` would connect without the client
/// certificate its user asked for.
#[derive(Debug, Default)]
struct Params {
    host: Option<String>,
    port: Option<String>,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    connect_timeout: Option<String>,
    application_name: Option<String>,
    fallback_application_name: Option<String>,
    passfile: Option<String>,
}

/// Parameters libpq knows that supportctl does not act on: refused with a
/// message saying so, rather than "unknown".
const LIBPQ_ONLY: &[&str] = &[
    "hostaddr",
    "channel_binding",
    "client_encoding",
    "options",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "requiressl",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

impl Params {
    /// Sets parameter `key` (decoded) to `value` (decoded), a later value
    /// winning as in libpq. The error names the parameter, never its
    /// value (it may be the password).
    fn set(&mut self, key: &str, value: String) -> Result<(), String> {
        let slot = match key {
            "host" => &mut self.host,
            "port" => &mut self.port,
            "user" => &mut self.user,
            "password" => &mut self.password,
            "dbname" => &mut self.dbname,
            "sslmode" => &mut self.sslmode,
            "sslrootcert" => &mut self.sslrootcert,
            "connect_timeout" => &mut self.connect_timeout,
            "application_name" => &mut self.application_name,
            "fallback_application_name" => &mut self.fallback_application_name,
            "passfile" => &mut self.passfile,
            // libpq's JDBC compatibility.
            "ssl" if value == "true" => &mut self.sslmode,
            known if LIBPQ_ONLY.contains(&known) => {
                return Err(format!(
                    "the connection parameter `{known}` is not supported by supportctl"
                ));
            }
            other => return Err(format!("invalid URI query parameter `{other}`")),
        };
        *slot = Some(if key == "ssl" {
            "require".into()
        } else {
            value
        });
        Ok(())
    }
}

/// A URL split where libpq splits it, as byte ranges of the text, nothing
/// decoded yet: what both [`ConnInfo::resolve`] and [`redact`] work from,
/// so that what is masked is exactly what libpq would read as the
/// password.
#[derive(Debug)]
struct RawUri<'a> {
    text: &'a str,
    user: Option<std::ops::Range<usize>>,
    /// After the user info's first `:`, up to its `@`.
    password: Option<std::ops::Range<usize>>,
    /// Each host (brackets of an IPv6 address excluded) and its port.
    hosts: Vec<(std::ops::Range<usize>, Option<std::ops::Range<usize>>)>,
    dbname: Option<std::ops::Range<usize>>,
    /// The query string after `?`.
    query: Option<std::ops::Range<usize>>,
}

/// One `key=value` of a query string, as ranges of the URL.
struct RawParam {
    whole: std::ops::Range<usize>,
    key: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
}

impl<'a> RawUri<'a> {
    /// Splits `text` as libpq's `conninfo_uri_parse_options` does: the user
    /// info ends at the first `@` before any `/`; hosts end at `:`, `/`,
    /// `?` or `,`; an IPv6 host is in brackets.
    fn parse(text: &'a str) -> Result<RawUri<'a>, String> {
        let start = scheme_len(text).ok_or("not a postgres:// or postgresql:// URL")?;
        let b = text.as_bytes();
        let len = b.len();
        let mut raw = RawUri {
            text,
            user: None,
            password: None,
            hosts: Vec::new(),
            dbname: None,
            query: None,
        };
        let mut p = start;
        let mut q = start;
        while q < len && b[q] != b'@' && b[q] != b'/' {
            q += 1;
        }
        if q < len && b[q] == b'@' {
            match text[start..q].find(':') {
                Some(c) => {
                    raw.user = Some(start..start + c);
                    raw.password = Some(start + c + 1..q);
                }
                None => raw.user = Some(start..q),
            }
            p = q + 1;
        }
        let terminator = loop {
            let host;
            if b.get(p) == Some(&b'[') {
                let h = p + 1;
                let mut e = h;
                while e < len && b[e] != b']' {
                    e += 1;
                }
                if e == len {
                    return Err("the URL has an IPv6 host address with no closing `]`".into());
                }
                if e == h {
                    return Err("the URL has an empty IPv6 host address `[]`".into());
                }
                host = h..e;
                p = e + 1;
                if p < len && !matches!(b[p], b':' | b'/' | b'?' | b',') {
                    return Err(format!(
                        "unexpected character `{}` after an IPv6 host address in the URL (expected `:` or `/`)",
                        char::from(b[p]).escape_default()
                    ));
                }
            } else {
                let h = p;
                while p < len && !matches!(b[p], b':' | b'/' | b'?' | b',') {
                    p += 1;
                }
                host = h..p;
            }
            let mut port = None;
            if b.get(p) == Some(&b':') {
                let s = p + 1;
                p = s;
                while p < len && !matches!(b[p], b'/' | b'?' | b',') {
                    p += 1;
                }
                port = Some(s..p);
            }
            raw.hosts.push((host, port));
            if b.get(p) != Some(&b',') {
                break b.get(p).copied();
            }
            p += 1;
        };
        let mut terminator = terminator;
        if terminator == Some(b'/') {
            let s = p + 1;
            p = s;
            while p < len && b[p] != b'?' {
                p += 1;
            }
            raw.dbname = Some(s..p);
            terminator = b.get(p).copied();
        }
        if terminator == Some(b'?') {
            raw.query = Some(p + 1..len);
        }
        Ok(raw)
    }

    fn at(&self, range: &std::ops::Range<usize>) -> &'a str {
        &self.text[range.clone()]
    }

    /// The query's parameters; libpq refuses a parameter without `=` or
    /// with two. An empty parameter at the end (`?a=b&`) is ignored, as in
    /// libpq.
    fn params(&self) -> Result<Vec<RawParam>, String> {
        let Some(query) = self.query.clone() else {
            return Ok(Vec::new());
        };
        let mut params = Vec::new();
        let mut s = query.start;
        while s < query.end {
            let e = self.text[s..query.end]
                .find('&')
                .map_or(query.end, |i| s + i);
            let segment = &self.text[s..e];
            let key_end = match segment.find('=') {
                Some(i) => s + i,
                None => {
                    return Err(format!(
                        "the URL's query parameter `{}` has no `=value`",
                        decode_lenient(segment)
                    ));
                }
            };
            let key = s..key_end;
            if segment[key_end - s + 1..].contains('=') {
                return Err(format!(
                    "the URL's query parameter `{}` has a second `=` (percent-encode it as %3D)",
                    decode_lenient(self.at(&key))
                ));
            }
            params.push(RawParam {
                whole: s..e,
                key,
                value: key_end + 1..e,
            });
            s = e + 1;
        }
        Ok(params)
    }

    /// Whether the split is surely the one its writer meant: no `@` left
    /// in a host or the database name, every port digits. Otherwise a
    /// password with an unencoded `@`, `/` or `:` may have landed in one of
    /// those, and [`redact`] masks generously instead.
    fn is_unambiguous(&self) -> bool {
        let hosts_ok = self.hosts.iter().all(|(host, port)| {
            !self.at(host).contains('@')
                && port
                    .as_ref()
                    .is_none_or(|p| self.at(p).bytes().all(|c| c.is_ascii_digit()))
        });
        let db_ok = self
            .dbname
            .as_ref()
            .is_none_or(|d| !self.at(d).contains('@'));
        hosts_ok && db_ok && self.params().is_ok()
    }

    /// The URL with its password replaced by `mask`, or removed with
    /// `None`. Called only when [`RawUri::is_unambiguous`].
    fn rewrite(&self, mask: Option<&str>) -> String {
        let mut out = String::with_capacity(self.text.len());
        let mut done = 0;
        if let Some(pw) = &self.password {
            match mask {
                Some(mask) => {
                    out.push_str(&self.text[..pw.start]);
                    out.push_str(mask);
                }
                // Drop the `:` too.
                None => out.push_str(&self.text[..pw.start - 1]),
            }
            done = pw.end;
        }
        let (Some(query), Ok(params)) = (&self.query, self.params()) else {
            out.push_str(&self.text[done..]);
            return out;
        };
        // Up to and without the `?`.
        out.push_str(&self.text[done..query.start - 1]);
        let kept: Vec<String> = params
            .iter()
            .filter_map(|param| {
                let is_password =
                    decode_lenient(self.at(&param.key)).eq_ignore_ascii_case("password");
                match (is_password, mask) {
                    (false, _) => Some(self.at(&param.whole).to_owned()),
                    (true, Some(mask)) => Some(format!("{}={mask}", self.at(&param.key))),
                    (true, None) => None,
                }
            })
            .collect();
        // A URL ending in `?` or `&` keeps it when nothing was removed.
        if mask.is_some() || kept.len() == params.len() {
            out.push('?');
            out.push_str(&kept.join("&"));
            if self.text.ends_with('&') && !kept.is_empty() {
                out.push('&');
            }
        } else if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
        out
    }

    /// The parameters the URL sets, decoded: its body first, then its
    /// query, a later value winning (libpq's order). An empty host list,
    /// port list, user or database name in the body sets nothing, so the
    /// environment applies (libpq's rule).
    fn to_params(&self) -> Result<Params, String> {
        let mut params = Params::default();
        if let Some(user) = &self.user
            && !user.is_empty()
        {
            params.user =
                Some(decode(self.at(user)).map_err(|e| format!("the URL's user name {e}"))?);
        }
        if let Some(pw) = &self.password
            && !pw.is_empty()
        {
            params.password =
                Some(decode(self.at(pw)).map_err(|e| format!("the URL's password {e}"))?);
        }
        let hosts: Vec<&str> = self.hosts.iter().map(|(h, _)| self.at(h)).collect();
        let hosts = hosts.join(",");
        if !hosts.is_empty() {
            params.host = Some(decode(&hosts).map_err(|e| format!("the URL's host {e}"))?);
        }
        let ports: Vec<&str> = self
            .hosts
            .iter()
            .map(|(_, p)| p.as_ref().map_or("", |p| self.at(p)))
            .collect();
        let ports = ports.join(",");
        if !ports.is_empty() {
            params.port = Some(decode(&ports).map_err(|e| format!("the URL's port {e}"))?);
        }
        if let Some(db) = &self.dbname
            && !db.is_empty()
        {
            params.dbname =
                Some(decode(self.at(db)).map_err(|e| format!("the URL's database name {e}"))?);
        }
        for param in self.params()? {
            let key =
                decode(self.at(&param.key)).map_err(|e| format!("a query parameter's name {e}"))?;
            let value = decode(self.at(&param.value))
                .map_err(|e| format!("the query parameter `{key}` {e}"))?;
            params.set(&key, value)?;
        }
        Ok(params)
    }
}

/// Percent-decodes `text` as libpq does (`%` and two hex digits; `+` is a
/// plus). The error says what is wrong, not the text (it may be a
/// password), and is worded to follow the part's name.
fn decode(text: &str) -> Result<String, String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let byte = match (b.get(i + 1), b.get(i + 2)) {
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    (hex_value(*h) << 4) | hex_value(*l)
                }
                _ => return Err("has a `%` not followed by two hex digits".into()),
            };
            if byte == 0 {
                return Err("holds %00, which is not allowed".into());
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 once percent-decoded".into())
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// [`decode`], keeping what does not decode as it is: for names in error
/// messages and for the masking of unparsable URLs.
fn decode_lenient(text: &str) -> String {
    decode(text).unwrap_or_else(|_| text.to_owned())
}

/// Parses a port as libpq does: a whole number from 1 to 65535.
fn parse_port(text: &str) -> Result<u16, String> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("invalid port number `{text}`"))
}

/// `connect_timeout` as libpq reads it: whole seconds; zero or less waits
/// without limit; 1 is taken as 2 (libpq's minimum).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let secs: i64 = text
        .trim()
        .parse()
        .map_err(|_| format!("invalid connect_timeout `{text}`: a whole number of seconds"))?;
    Ok(match secs {
        ..=0 => Duration::ZERO,
        1 => Duration::from_secs(2),
        n => Duration::from_secs(n.unsigned_abs()),
    })
}

/// The name of the user this process runs as, from the password database
/// (what libpq takes as the default user).
fn os_user() -> Option<String> {
    passwd_entry().map(|(name, _)| name)
}

/// The current effective user's name and home folder, from the password
/// database.
fn passwd_entry() -> Option<(String, PathBuf)> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt as _;
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to memory owned here and live for the call;
    // the buffer's length is passed with it.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::geteuid(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() || entry.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success the strings point into `buffer`, NUL-terminated.
    let name = unsafe { CStr::from_ptr(entry.pw_name) };
    let home = if entry.pw_dir.is_null() {
        PathBuf::new()
    } else {
        // SAFETY: as above.
        let dir = unsafe { CStr::from_ptr(entry.pw_dir) };
        PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes()))
    };
    Some((name.to_str().ok()?.to_owned(), home))
}

/// The home folder: `HOME` from `env`, else the password database's.
fn home_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| passwd_entry().map(|(_, home)| home))
        .filter(|h| !h.as_os_str().is_empty())
}

impl ConnInfo {
    /// Resolves `url` as `psql` would: the URL, then libpq's environment
    /// (read through `env`, so tests can give their own), then the
    /// password file, then libpq's defaults. The error is one line that
    /// never holds the password.
    pub fn resolve(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<ConnInfo, String> {
        let params = RawUri::parse(url)?.to_params()?;
        // An empty variable counts as unset.
        let var = |name: &str| env(name).filter(|v| !v.is_empty());

        let hosts: Vec<Host> = match params.host.or_else(|| var("PGHOST")) {
            Some(list) => list.split(',').map(Host::from_text).collect(),
            None => vec![Host::Socket(PathBuf::from(DEFAULT_SOCKET_DIR))],
        };
        let ports: Vec<u16> = match params.port.or_else(|| var("PGPORT")) {
            Some(list) => list
                .split(',')
                .map(|p| {
                    if p.is_empty() {
                        Ok(DEFAULT_PORT)
                    } else {
                        parse_port(p)
                    }
                })
                .collect::<Result<_, _>>()?,
            None => vec![DEFAULT_PORT],
        };
        let ports = match ports.len() {
            1 => vec![ports[0]; hosts.len()],
            n if n == hosts.len() => ports,
            n => {
                return Err(format!(
                    "{n} ports for {} hosts: give one port for all, or one per host",
                    hosts.len()
                ));
            }
        };
        let user = match params.user.or_else(|| var("PGUSER")) {
            Some(user) => user,
            None => os_user().ok_or(
                "cannot tell which database user to connect as: give it in the URL (`postgres://USER@…`) or in PGUSER",
            )?,
        };
        let dbname = params
            .dbname
            .or_else(|| var("PGDATABASE"))
            .unwrap_or_else(|| user.clone());
        let (password, password_from) = match params.password.filter(|p| !p.is_empty()) {
            Some(p) => (Some(p), PasswordFrom::Url),
            None => match var("PGPASSWORD") {
                Some(p) => (Some(p), PasswordFrom::Env),
                None => (None, PasswordFrom::None),
            },
        };
        let sslmode = match params.sslmode.or_else(|| var("PGSSLMODE")) {
            Some(mode) => mode.parse()?,
            None => SslMode::Prefer,
        };
        let sslrootcert = params
            .sslrootcert
            .or_else(|| var("PGSSLROOTCERT"))
            .map(PathBuf::from)
            .or_else(|| {
                sslmode
                    .verifies()
                    .then(|| home_dir(env).map(|h| h.join(".postgresql/root.crt")))
                    .flatten()
            });
        let connect_timeout = match params.connect_timeout.or_else(|| var("PGCONNECT_TIMEOUT")) {
            Some(text) => parse_timeout(&text)?,
            None => DEFAULT_CONNECT_TIMEOUT,
        };
        let application_name = params
            .application_name
            .or_else(|| var("PGAPPNAME"))
            .or(params.fallback_application_name);

        let mut info = ConnInfo {
            port: ports[0],
            hosts,
            ports,
            user,
            dbname,
            password,
            password_from,
            file_passwords: Vec::new(),
            passfile: None,
            sslmode,
            sslrootcert,
            connect_timeout,
            application_name,
        };
        if info.password.is_none() {
            let file = params
                .passfile
                .or_else(|| var("PGPASSFILE"))
                .map(PathBuf::from)
                .or_else(|| home_dir(env).map(|h| h.join(".pgpass")));
            if let Some(file) = file
                && let Some(lines) = read_passfile(&file)
            {
                info.file_passwords = info
                    .hosts
                    .iter()
                    .zip(&info.ports)
                    .map(|(host, port)| {
                        passfile_lookup(
                            &lines,
                            &host.passfile_name(),
                            &port.to_string(),
                            &info.dbname,
                            &info.user,
                        )
                    })
                    .collect();
                info.passfile = Some(file);
            }
        }
        Ok(info)
    }

    /// One line naming the server: `host:port`, or
    /// `socket /dir/.s.PGSQL.5432`; the hosts joined with `, ` for a URL
    /// with several.
    pub fn server(&self) -> String {
        self.hosts
            .iter()
            .zip(&self.ports)
            .map(|(host, port)| host.shown(*port))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether a password was found (URL, `PGPASSWORD` or the password
    /// file, for any host): without one, a server that asks for it refuses.
    pub fn has_password(&self) -> bool {
        self.password.is_some() || self.file_passwords.iter().any(Option::is_some)
    }

    /// The password for host number `i`, with where it came from.
    fn password_for(&self, i: usize) -> Option<(&str, PasswordSource)> {
        match &self.password {
            Some(p) => Some((
                p,
                if self.password_from == PasswordFrom::Env {
                    PasswordSource::Env
                } else {
                    PasswordSource::Url
                },
            )),
            None => {
                let p = self.file_passwords.get(i)?.as_deref()?;
                Some((p, PasswordSource::File(self.passfile.clone()?)))
            }
        }
    }

    /// Connects to the first host that accepts, each within
    /// `connect_timeout` (the whole start-up: connection, TLS and
    /// authentication, as libpq counts it). On failure, the last host's
    /// error.
    pub fn connect(&self) -> Result<postgres::Client, ConnectError> {
        let mut last = None;
        for (i, host) in self.hosts.iter().enumerate() {
            match self.connect_one(i, host) {
                Ok(client) => return Ok(client),
                Err(e) => {
                    tracing::debug!(server = %host.shown(self.ports[i]), error = %e, "cannot connect");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ConnectError::Other {
            server: String::new(),
            detail: "no host to connect to".into(),
        }))
    }

    fn connect_one(&self, i: usize, host: &Host) -> Result<postgres::Client, ConnectError> {
        let port = self.ports[i];
        let server = host.shown(port);
        let tls = match host {
            Host::Tcp(_) => tls::for_mode(self.sslmode, self.sslrootcert.as_deref()),
            Host::Socket(_) => tls::plain(),
        }
        .map_err(|error| ConnectError::TlsSetup {
            server: server.clone(),
            error,
        })?;
        let mut config = postgres::Config::new();
        config
            .user(&self.user)
            .dbname(&self.dbname)
            .port(port)
            .ssl_mode(tls.mode);
        match host {
            Host::Tcp(name) => config
                .host(name)
                // A server cut off (a network partition, a machine gone)
                // is noticed within seconds, not the kernel's hours: sent
                // data unacknowledged for 15 s, or an idle connection
                // unanswered to three probes, ends the connection. A
                // watcher's lease thread depends on it to give up a lease
                // it can no longer renew.
                .keepalives(true)
                .keepalives_idle(Duration::from_secs(10))
                .keepalives_interval(Duration::from_secs(5))
                .keepalives_retries(3)
                .tcp_user_timeout(Duration::from_secs(15)),
            Host::Socket(dir) => config.host_path(dir),
        };
        if !self.connect_timeout.is_zero() {
            config.connect_timeout(self.connect_timeout);
        }
        if let Some(name) = &self.application_name {
            config.application_name(name);
        }
        let source = self.password_for(i).map(|(password, source)| {
            config.password(password);
            source
        });
        let connector = tls.connector;
        // The driver's timeout covers only opening the socket; a server
        // that accepts and then never answers (stopped, overloaded, not
        // PostgreSQL) would hang the command. So the connection is made on
        // a thread and waited for at most the timeout; one that gives up is
        // left to finish or fail on its own.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("postgres-connect".into())
            .spawn(move || {
                let _ = sender.send(config.connect(connector));
            })
            .map_err(|e| ConnectError::Other {
                server: server.clone(),
                detail: format!("cannot start a thread to connect: {e}"),
            })?;
        let outcome = if self.connect_timeout.is_zero() {
            receiver.recv().map_err(|_| None)
        } else {
            receiver
                .recv_timeout(self.connect_timeout)
                .map_err(|e| match e {
                    std::sync::mpsc::RecvTimeoutError::Timeout => Some(self.connect_timeout),
                    std::sync::mpsc::RecvTimeoutError::Disconnected => None,
                })
        };
        match outcome {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(self.classify(&e, host, server, source)),
            Err(Some(waited)) => Err(ConnectError::Unreachable {
                server,
                socket: matches!(host, Host::Socket(_)),
                timed_out: Some(waited),
                cause: "no answer".into(),
            }),
            Err(None) => Err(ConnectError::Other {
                server,
                detail: "the connection attempt stopped without an answer".into(),
            }),
        }
    }

    /// The driver's error as a [`ConnectError`].
    fn classify(
        &self,
        e: &postgres::Error,
        host: &Host,
        server: String,
        source: Option<PasswordSource>,
    ) -> ConnectError {
        use postgres::error::SqlState;
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            let message = db.message().to_owned();
            return if *code == SqlState::INVALID_PASSWORD
                || (*code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                    && message.starts_with("password authentication failed"))
            {
                ConnectError::WrongPassword {
                    server,
                    user: self.user.clone(),
                    source,
                }
            } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
                ConnectError::AuthRejected {
                    server,
                    user: self.user.clone(),
                    message,
                }
            } else if *code == SqlState::INVALID_CATALOG_NAME {
                ConnectError::NoDatabase {
                    server,
                    dbname: self.dbname.clone(),
                }
            } else {
                ConnectError::Refused { server, message }
            };
        }
        let top = e.to_string();
        let causes = chain(e);
        if let Some(rustls) = find_rustls(e) {
            let name = match host {
                Host::Tcp(name) => name.as_str(),
                Host::Socket(_) => "",
            };
            return ConnectError::TlsFailed {
                server,
                detail: tls::explain(rustls, name),
                name_mismatch: tls::is_name_mismatch(rustls),
            };
        }
        if causes.iter().any(|c| c == "server does not support TLS") {
            return ConnectError::NoTls {
                server,
                sslmode: self.sslmode,
            };
        }
        if causes.iter().any(|c| c == "password missing") {
            return ConnectError::NoPassword {
                server,
                user: self.user.clone(),
            };
        }
        if top == "error connecting to server" {
            let io = io_in(e);
            let timed_out = io.is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
            let cause = match io {
                Some(io) if io.kind() == std::io::ErrorKind::NotFound => {
                    "no server socket there".to_string()
                }
                Some(_) if timed_out => "no answer".to_string(),
                Some(io) => lower_first(&tls::io_cause(io)),
                None => causes.last().cloned().unwrap_or(top),
            };
            return ConnectError::Unreachable {
                server,
                socket: matches!(host, Host::Socket(_)),
                timed_out: timed_out.then_some(self.connect_timeout),
                cause,
            };
        }
        if top == "error performing TLS handshake" {
            return ConnectError::TlsFailed {
                server,
                detail: causes
                    .last()
                    .cloned()
                    .unwrap_or_else(|| "the TLS handshake failed".into()),
                name_mismatch: false,
            };
        }
        ConnectError::Other {
            server,
            detail: causes.join(": "),
        }
    }
}

/// An error's text and its sources' texts, outermost first.
fn chain(e: &dyn std::error::Error) -> Vec<String> {
    let mut texts = vec![e.to_string()];
    let mut next = e.source();
    while let Some(cause) = next {
        texts.push(cause.to_string());
        next = cause.source();
    }
    texts
}

/// The first `io::Error` among `e`'s sources.
fn io_in(e: &postgres::Error) -> Option<&std::io::Error> {
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        next = cause.source();
    }
    None
}

/// The rustls error among `e`'s sources, looking inside `io::Error`s too
/// (tokio-rustls wraps rustls's errors in one, and an `io::Error`'s
/// `source` skips the error it wraps).
fn find_rustls(e: &postgres::Error) -> Option<&rustls::Error> {
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        if let Some(found) = cause.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            if let Some(found) = inner.downcast_ref::<rustls::Error>() {
                return Some(found);
            }
            next = inner.source();
            continue;
        }
        next = cause.source();
    }
    None
}

/// `text` with its first letter in lower case, to follow a colon.
fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Where the password that was refused came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// The URL (`--db` or `SUPPORTCTL_DB`).
    Url,
    /// `PGPASSWORD`.
    Env,
    /// This password file.
    File(PathBuf),
}

/// Why a connection could not be made: each one line, naming the server,
/// never holding the password, with a hint for what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// TLS could not be set up (root certificate file missing or bad):
    /// nothing was sent.
    TlsSetup {
        server: String,
        error: tls::TlsError,
    },
    /// The server could not be reached: refused, no socket, no route,
    /// unknown host name, or no answer within the timeout.
    Unreachable {
        server: String,
        /// A Unix socket rather than TCP (the hint differs).
        socket: bool,
        /// The timeout, when that is what happened.
        timed_out: Option<Duration>,
        cause: String,
    },
    /// The mode needs TLS and the server does not offer it.
    NoTls { server: String, sslmode: SslMode },
    /// The TLS handshake failed: the certificate was refused, or the
    /// server ended it.
    TlsFailed {
        server: String,
        detail: String,
        /// The certificate does not name the host (`verify-full`).
        name_mismatch: bool,
    },
    /// The server refused the password.
    WrongPassword {
        server: String,
        user: String,
        /// Where the password came from; `None` when none was sent.
        source: Option<PasswordSource>,
    },
    /// The server asks for a password and none was found.
    NoPassword { server: String, user: String },
    /// The server refused the role: no `pg_hba.conf` entry, no such role,
    /// peer authentication failed.
    AuthRejected {
        server: String,
        user: String,
        message: String,
    },
    /// The database does not exist.
    NoDatabase { server: String, dbname: String },
    /// The server refused for another reason (too many connections,
    /// starting up, shutting down): its message.
    Refused { server: String, message: String },
    /// Anything else, as the driver says it.
    Other { server: String, detail: String },
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::TlsSetup { server, error } => {
                write!(
                    f,
                    "cannot connect to the PostgreSQL server at {server}: {error}"
                )
            }
            ConnectError::Unreachable {
                server,
                timed_out: Some(waited),
                cause,
                ..
            } => write!(
                f,
                "cannot reach the PostgreSQL server at {server} within {}: {cause}",
                shown_secs(*waited)
            ),
            ConnectError::Unreachable { server, cause, .. } => {
                write!(f, "cannot reach the PostgreSQL server at {server}: {cause}")
            }
            ConnectError::NoTls { server, sslmode } => write!(
                f,
                "the PostgreSQL server at {server} does not offer TLS, which sslmode {sslmode} needs"
            ),
            ConnectError::TlsFailed { server, detail, .. } => {
                write!(
                    f,
                    "TLS with the PostgreSQL server at {server} failed: {detail}"
                )
            }
            ConnectError::WrongPassword { server, user, .. } => write!(
                f,
                "password authentication failed for user `{user}` on the PostgreSQL server at {server}"
            ),
            ConnectError::NoPassword { server, user } => write!(
                f,
                "the PostgreSQL server at {server} asks for a password for user `{user}`, and none was given"
            ),
            ConnectError::AuthRejected {
                server,
                user,
                message,
            } => write!(
                f,
                "the PostgreSQL server at {server} refused user `{user}`: {message}"
            ),
            ConnectError::NoDatabase { server, dbname } => write!(
                f,
                "database `{dbname}` does not exist on the PostgreSQL server at {server}"
            ),
            ConnectError::Refused { server, message } => write!(
                f,
                "the PostgreSQL server at {server} refused the connection: {message}"
            ),
            ConnectError::Other { server, detail } if server.is_empty() => {
                write!(f, "cannot connect to PostgreSQL: {detail}")
            }
            ConnectError::Other { server, detail } => {
                write!(
                    f,
                    "cannot connect to the PostgreSQL server at {server}: {detail}"
                )
            }
        }
    }
}

impl std::error::Error for ConnectError {}

/// A timeout as the messages say it: `10 s`.
fn shown_secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl ConnectError {
    /// What to do about it, one line, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            ConnectError::TlsSetup { error, .. } => return error.hint(),
            ConnectError::Unreachable { server, socket: true, .. } => format!(
                "check that the server runs on this machine with its socket at `{}` (the host is the socket's folder, the port is in its name)",
                server.trim_start_matches("socket ")
            ),
            ConnectError::Unreachable { .. } => "check the host name and port, that the server runs, and that it listens there (`listen_addresses`) and no firewall is in the way".into(),
            ConnectError::NoTls { .. } => "enable `ssl` on the server, or connect with sslmode=prefer (or disable) on a network you trust".into(),
            ConnectError::TlsFailed { name_mismatch: true, .. } => "connect by a name the certificate holds, or use sslmode=verify-ca to check the certificate's chain and not its names".into(),
            ConnectError::TlsFailed { .. } => "check `sslrootcert` (the CA certificate that signed the server's) and the server's certificate".into(),
            ConnectError::WrongPassword { source: Some(PasswordSource::Url), .. } => "check the password in the URL (percent-encode `@`, `:`, `/` and `%` in it as %40, %3A, %2F and %25)".into(),
            ConnectError::WrongPassword { source: Some(PasswordSource::Env), .. } => "check the password in PGPASSWORD".into(),
            ConnectError::WrongPassword { source: Some(PasswordSource::File(file)), .. } => format!("check the password for this server in the password file `{}`", file.display()),
            ConnectError::WrongPassword { source: None, .. } | ConnectError::NoPassword { .. } => "give the password in PGPASSWORD or in the password file (`~/.pgpass` or PGPASSFILE, mode 0600) rather than on the command line".into(),
            ConnectError::AuthRejected { .. } => "check that the role exists and that the server's pg_hba.conf lets it connect from here".into(),
            ConnectError::NoDatabase { dbname, .. } => format!("create it with `createdb {dbname}`, or name another database in the URL"),
            ConnectError::Refused { .. } | ConnectError::Other { .. } => return None,
        })
    }
}

/// The lines of the password file at `path`, or `None` (with a warning
/// when it exists) unless it is a regular file readable by its owner only:
/// libpq's rule, since a password file others can read has leaked.
fn read_passfile(path: &Path) -> Option<Vec<String>> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        tracing::warn!(
            "the password file `{}` is not a regular file; it is ignored",
            path.display()
        );
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "the password file `{}` can be read by group or others; it is ignored (chmod 0600 it)",
            path.display()
        );
        return None;
    }
    match std::fs::read(path) {
        Ok(bytes) => Some(
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(|l| l.trim_end_matches('\r').to_owned())
                .collect(),
        ),
        Err(e) => {
            tracing::warn!(
                "cannot read the password file `{}`: {}",
                path.display(),
                tls::io_cause(&e)
            );
            None
        }
    }
}

/// The password of the first line of a password file matching the
/// server, as libpq's `passwordFromFile`: fields `host:port:db:user:pw`,
/// `*` matching anything, `\:` and `\\` escapes, `#` starting a comment
/// line.
fn passfile_lookup(
    lines: &[String],
    host: &str,
    port: &str,
    db: &str,
    user: &str,
) -> Option<String> {
    lines
        .iter()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .find_map(|line| {
            let rest = field_matches(line, host)?;
            let rest = field_matches(rest, port)?;
            let rest = field_matches(rest, db)?;
            let rest = field_matches(rest, user)?;
            Some(unescape_password(rest))
        })
}

/// The rest of `line` after its first field, when that field is `*` or
/// equals `token` once unescaped (libpq's `pwdfMatchesString`).
fn field_matches<'l>(line: &'l str, token: &str) -> Option<&'l str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut token = token.chars();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        let (c, escaped) = if c == '\\' {
            match chars.next() {
                Some((_, next)) => (next, true),
                None => return None,
            }
        } else {
            (c, false)
        };
        if c == ':' && !escaped {
            return token.next().is_none().then(|| &line[i + 1..]);
        }
        if token.next() != Some(c) {
            return None;
        }
    }
    None
}

/// The password field: up to an unescaped `:`, escapes removed.
fn unescape_password(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match c {
            ':' => break,
            '\\' => match chars.next() {
                Some(next) => out.push(next),
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt as _;

    /// An environment holding only `vars`.
    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    /// Resolves with an environment holding `vars` and a home with no
    /// password file, so that the machine's own never leaks in.
    fn resolve_with(url: &str, vars: &[(&str, &str)]) -> Result<ConnInfo, String> {
        let mut all = vec![("HOME", "/nonexistent-home-for-tests")];
        all.extend_from_slice(vars);
        ConnInfo::resolve(url, &env_of(&all))
    }

    fn resolve(url: &str) -> ConnInfo {
        resolve_with(url, &[("PGUSER", "envuser")]).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn tcp(name: &str) -> Host {
        Host::Tcp(name.into())
    }

    fn socket(dir: &str) -> Host {
        Host::Socket(dir.into())
    }

    /// The password `connect` would send to host 0, for the tests.
    fn password(info: &ConnInfo) -> Option<String> {
        info.password_for(0).map(|(p, _)| p.to_owned())
    }

    #[test]
    fn is_url_takes_both_schemes_in_any_case() {
        for yes in [
            "postgres://h/db",
            "postgresql://h/db",
            "POSTGRES://h",
            "PostgreSQL://",
            "postgres://",
        ] {
            assert!(is_url(yes), "{yes}");
        }
        for no in [
            "postgres:/h",
            "postgres",
            "state.db",
            "/var/lib/postgres://x",
            "pg://h",
            "",
            "mysql://h",
            "postgres:",
        ] {
            assert!(!is_url(no), "{no}");
        }
    }

    #[test]
    fn a_full_url() {
        let info = resolve(
            "postgresql://alice:s3cret@db.example.com:6543/state?sslmode=verify-full&sslrootcert=/etc/ca.pem&connect_timeout=5&application_name=ci%20runner",
        );
        assert_eq!(info.hosts, [tcp("db.example.com")]);
        assert_eq!((info.port, info.ports.clone()), (6543, vec![6543]));
        assert_eq!(info.user, "alice");
        assert_eq!(info.dbname, "state");
        assert_eq!(password(&info).as_deref(), Some("s3cret"));
        assert_eq!(info.sslmode, SslMode::VerifyFull);
        assert_eq!(info.sslrootcert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(info.connect_timeout, Duration::from_secs(5));
        assert_eq!(info.application_name.as_deref(), Some("ci runner"));
        assert_eq!(info.server(), "db.example.com:6543");
    }

    #[test]
    fn percent_decoding_everywhere() {
        let info = resolve("postgres://a%40b:p%40ss%3Aw%2Fo%25rd@h%2Dx/my%20db?user=u%26v");
        // The query's user wins over the body's.
        assert_eq!(info.user, "u&v");
        assert_eq!(password(&info).as_deref(), Some("p@ss:w/o%rd"));
        assert_eq!(info.hosts, [tcp("h-x")]);
        assert_eq!(info.dbname, "my db");
        // `+` is a plus, not a space.
        assert_eq!(resolve("postgres://h/a+b").dbname, "a+b");
        for bad in [
            "postgres://h/db%2",
            "postgres://h/db%zz",
            "postgres://h/db%00",
        ] {
            let err = resolve_with(bad, &[("PGUSER", "u")]).unwrap_err();
            assert!(err.contains("database name"), "{bad}: {err}");
        }
        let err = resolve_with("postgres://u:se%zzcret@h/db", &[]).unwrap_err();
        assert!(
            err.contains("password") && !err.contains("se%zzcret"),
            "{err}"
        );
        assert!(
            resolve_with("postgres://h/%C3%28", &[("PGUSER", "u")])
                .unwrap_err()
                .contains("UTF-8")
        );
    }

    #[test]
    fn unix_sockets() {
        // Empty host: the default socket folder.
        let info = resolve("postgres:///state");
        assert_eq!(info.hosts, [socket(DEFAULT_SOCKET_DIR)]);
        assert_eq!(info.server(), "socket /var/run/postgresql/.s.PGSQL.5432");
        // Empty host and ?host=.
        let info = resolve("postgres:///state?host=/run/postgresql&port=5433");
        assert_eq!(info.hosts, [socket("/run/postgresql")]);
        assert_eq!(info.server(), "socket /run/postgresql/.s.PGSQL.5433");
        // A percent-encoded folder as host.
        let info = resolve("postgresql://u@%2Ftmp%2Fpg%20sock:5999/db");
        assert_eq!(info.hosts, [socket("/tmp/pg sock")]);
        assert_eq!(info.ports, [5999]);
        // The query's host wins over the body's.
        let info = resolve("postgres://db.example/state?host=%2Fsock");
        assert_eq!(info.hosts, [socket("/sock")]);
        // A host name given as a parameter.
        assert_eq!(resolve("postgres:///x?host=db1").hosts, [tcp("db1")]);
    }

    #[test]
    fn several_hosts_and_ipv6() {
        let info = resolve("postgres://h1:5433,[::1]:5434,h3/db");
        assert_eq!(info.hosts, [tcp("h1"), tcp("::1"), tcp("h3")]);
        // libpq: a host with no port in a list gets the default port.
        assert_eq!(info.ports, [5433, 5434, 5432]);
        assert_eq!(info.port, 5433);
        assert_eq!(info.server(), "h1:5433, [::1]:5434, h3:5432");

        let info = resolve("postgres://[2001:db8::7]/db");
        assert_eq!(info.hosts, [tcp("2001:db8::7")]);
        assert_eq!(info.server(), "[2001:db8::7]:5432");
        let info = resolve("postgres://[fe80::1%25eth0]:6000");
        assert_eq!(info.hosts, [tcp("fe80::1%eth0")]);
        assert_eq!(info.ports, [6000]);

        // One port for several hosts from the query.
        let info = resolve("postgres:///db?host=a,b&port=6000");
        assert_eq!(
            (info.hosts.clone(), info.ports.clone()),
            (vec![tcp("a"), tcp("b")], vec![6000, 6000])
        );
        let err =
            resolve_with("postgres:///db?host=a,b,c&port=1,2", &[("PGUSER", "u")]).unwrap_err();
        assert!(err.contains("2 ports for 3 hosts"), "{err}");
        // An empty entry in a host list is the default socket.
        assert_eq!(
            resolve("postgres://h1,/db").hosts,
            [tcp("h1"), socket(DEFAULT_SOCKET_DIR)]
        );

        for bad in [
            "postgres://[::1/db",
            "postgres://[]/db",
            "postgres://[::1]x/db",
        ] {
            assert!(resolve_with(bad, &[("PGUSER", "u")]).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_and_timeouts_are_checked() {
        let u = [("PGUSER", "u")];
        for bad in [
            "postgres://h:0/db",
            "postgres://h:65536/db",
            "postgres://h:54x/db",
            "postgres://h/db?port=-1",
        ] {
            let err = resolve_with(bad, &u).unwrap_err();
            assert!(err.contains("invalid port number"), "{bad}: {err}");
        }
        assert_eq!(
            resolve("postgres://h/?connect_timeout=0").connect_timeout,
            Duration::ZERO
        );
        assert_eq!(
            resolve("postgres://h/?connect_timeout=-3").connect_timeout,
            Duration::ZERO
        );
        assert_eq!(
            resolve("postgres://h/?connect_timeout=1").connect_timeout,
            Duration::from_secs(2)
        );
        assert_eq!(
            resolve("postgres://h/?connect_timeout=%2030").connect_timeout,
            Duration::from_secs(30)
        );
        let err = resolve_with("postgres://h/?connect_timeout=5s", &u).unwrap_err();
        assert!(err.contains("connect_timeout"), "{err}");
    }

    #[test]
    fn query_parameters() {
        let u = [("PGUSER", "u")];
        let err = resolve_with("postgres://h/db?sslmode=require&frobnicate=1", &u).unwrap_err();
        assert!(err.contains("`frobnicate`"), "{err}");
        let err = resolve_with("postgres://h/db?sslcert=/x.pem", &u).unwrap_err();
        assert!(
            err.contains("`sslcert`") && err.contains("not supported"),
            "{err}"
        );
        let err = resolve_with("postgres://h/db?password", &u).unwrap_err();
        assert!(
            err.contains("`password`") && err.contains("no `=value`"),
            "{err}"
        );
        let err = resolve_with("postgres://h/db?password=a=b", &u).unwrap_err();
        assert!(err.contains("second `=`") && !err.contains("a=b"), "{err}");
        // A trailing `&` and an empty query are fine, as in libpq.
        assert_eq!(
            resolve("postgres://h/db?sslmode=disable&").sslmode,
            SslMode::Disable
        );
        assert_eq!(resolve("postgres://h/db?").dbname, "db");
        // libpq's JDBC spelling.
        assert_eq!(
            resolve("postgres://h/db?ssl=true").sslmode,
            SslMode::Require
        );
        // Parameters for the parts of the body.
        let info = resolve("postgres://h/db?dbname=other&user=bob&password=pw&application_name=x");
        assert_eq!((info.dbname.as_str(), info.user.as_str()), ("other", "bob"));
        assert_eq!(password(&info).as_deref(), Some("pw"));
        assert_eq!(info.application_name.as_deref(), Some("x"));
        assert_eq!(
            resolve("postgres://h/db?fallback_application_name=fb")
                .application_name
                .as_deref(),
            Some("fb")
        );
    }

    #[test]
    fn sslmode_parsing() {
        for (text, mode) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(text.parse::<SslMode>(), Ok(mode));
            assert_eq!(mode.to_string(), text);
        }
        let err = "verify_full".parse::<SslMode>().unwrap_err();
        assert!(err.contains("invalid sslmode `verify_full`"), "{err}");
        assert!(
            "allow"
                .parse::<SslMode>()
                .unwrap_err()
                .contains("not supported")
        );
        assert!("Require".parse::<SslMode>().is_err());
        let err = resolve_with("postgres://h/db?sslmode=bogus", &[("PGUSER", "u")]).unwrap_err();
        assert!(err.contains("bogus"), "{err}");
        let err =
            resolve_with("postgres://h/db", &[("PGUSER", "u"), ("PGSSLMODE", "nope")]).unwrap_err();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn defaults() {
        let info = resolve_with("postgres://", &[]).unwrap();
        let me = os_user().expect("this test needs a user in the password database");
        assert_eq!(info.hosts, [socket(DEFAULT_SOCKET_DIR)]);
        assert_eq!(info.ports, [DEFAULT_PORT]);
        assert_eq!(info.user, me);
        assert_eq!(info.dbname, me);
        assert_eq!(password(&info), None);
        assert!(!info.has_password());
        assert_eq!(info.sslmode, SslMode::Prefer);
        assert_eq!(info.sslrootcert, None);
        assert_eq!(info.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(info.application_name, None);
        // The database defaults to the user given, not the OS user.
        assert_eq!(resolve("postgres://carol@h").dbname, "carol");
        // An empty user or password in the URL sets nothing.
        let info = resolve("postgres://:@h");
        assert_eq!((info.user.as_str(), password(&info)), ("envuser", None));
        // The verify modes default to ~/.postgresql/root.crt.
        let info =
            resolve_with("postgres://h/db?sslmode=verify-ca", &[("HOME", "/home/x")]).unwrap();
        assert_eq!(
            info.sslrootcert,
            Some(PathBuf::from("/home/x/.postgresql/root.crt"))
        );
        let info = resolve_with("postgres://h/db?sslmode=require", &[("HOME", "/home/x")]).unwrap();
        assert_eq!(info.sslrootcert, None);
    }

    #[test]
    fn the_environment_fills_what_the_url_leaves_out() {
        let env = [
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
            ("PGPASSWORD", "envpw"),
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", "/env/ca.pem"),
            ("PGCONNECT_TIMEOUT", "7"),
            ("PGAPPNAME", "envapp"),
        ];
        let info = resolve_with("postgres://", &env).unwrap();
        assert_eq!(info.hosts, [tcp("envhost")]);
        assert_eq!(info.ports, [6000]);
        assert_eq!(
            (info.user.as_str(), info.dbname.as_str()),
            ("envuser", "envdb")
        );
        assert_eq!(password(&info).as_deref(), Some("envpw"));
        assert_eq!(info.sslmode, SslMode::VerifyFull);
        assert_eq!(info.sslrootcert, Some(PathBuf::from("/env/ca.pem")));
        assert_eq!(info.connect_timeout, Duration::from_secs(7));
        assert_eq!(info.application_name.as_deref(), Some("envapp"));

        // The URL wins over every variable.
        let info = resolve_with(
            "postgres://u:urlpw@urlhost:7000/urldb?sslmode=disable&sslrootcert=/url.pem&connect_timeout=3&application_name=urlapp",
            &env,
        )
        .unwrap();
        assert_eq!(info.hosts, [tcp("urlhost")]);
        assert_eq!(info.ports, [7000]);
        assert_eq!((info.user.as_str(), info.dbname.as_str()), ("u", "urldb"));
        assert_eq!(password(&info).as_deref(), Some("urlpw"));
        assert_eq!(info.sslmode, SslMode::Disable);
        assert_eq!(info.sslrootcert, Some(PathBuf::from("/url.pem")));
        assert_eq!(info.connect_timeout, Duration::from_secs(3));
        assert_eq!(info.application_name.as_deref(), Some("urlapp"));

        // A socket folder and host lists from the environment.
        let info = resolve_with(
            "postgres:///db",
            &[("PGHOST", "/tmp/s,h2"), ("PGPORT", "1,2"), ("PGUSER", "u")],
        )
        .unwrap();
        assert_eq!(info.hosts, [socket("/tmp/s"), tcp("h2")]);
        assert_eq!(info.ports, [1, 2]);
        // An empty variable is as good as unset.
        let info = resolve_with(
            "postgres://h",
            &[("PGUSER", "u"), ("PGDATABASE", ""), ("PGPASSWORD", "")],
        )
        .unwrap();
        assert_eq!((info.dbname.as_str(), password(&info)), ("u", None));
        // A port in the URL keeps PGPORT out even for the other hosts
        // (libpq: the URL set the port list).
        let info =
            resolve_with("postgres://a:1,b/db", &[("PGUSER", "u"), ("PGPORT", "9")]).unwrap();
        assert_eq!(info.ports, [1, 5432]);
    }

    #[test]
    fn debug_never_shows_a_password() {
        let info = resolve("postgres://u:hunter2@h/db");
        let shown = format!("{info:?} {info:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
        let dir = tempfile::tempdir().unwrap();
        let file = passfile(&dir, "*:*:*:*:filepw\n", 0o600);
        let info = resolve_with(
            "postgres://h/db",
            &[("PGUSER", "u"), ("PGPASSFILE", file.to_str().unwrap())],
        )
        .unwrap();
        assert_eq!(password(&info).as_deref(), Some("filepw"));
        let shown = format!("{info:?}");
        assert!(!shown.contains("filepw"), "{shown}");
    }

    /// A password file with `text` and `mode` in `dir`.
    fn passfile(dir: &tempfile::TempDir, text: &str, mode: u32) -> PathBuf {
        let path = dir.path().join("pgpass");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn the_password_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = passfile(
            &dir,
            "# a comment:*:*:*:nope\n\
             \n\
             db.example:5432:state:alice:first\n\
             db.example:5432:state:alice:second\n\
             db.example:*:*:bob:bobs\n\
             localhost:5432:*:carol:socketpw\n\
             /tmp/sock:5432:*:carol:tmpsock\n\
             ho\\:st:5432:*:dave:esc\\:aped\\\\pw:ignored\n\
             *:*:*:*:fallback\r\n",
            0o600,
        );
        let file = file.to_str().unwrap();
        let pw = |url: &str, user: &str| {
            let info = resolve_with(url, &[("PGUSER", user), ("PGPASSFILE", file)]).unwrap();
            password(&info)
        };
        assert_eq!(
            pw("postgres://db.example/state", "alice").as_deref(),
            Some("first")
        );
        assert_eq!(
            pw("postgres://db.example:6000/other", "bob").as_deref(),
            Some("bobs")
        );
        assert_eq!(
            pw("postgres://db.example:6000/state", "alice").as_deref(),
            Some("fallback")
        );
        // The default socket folder matches `localhost`; another socket
        // folder matches its own path (libpq's rule).
        assert_eq!(pw("postgres:///db", "carol").as_deref(), Some("socketpw"));
        assert_eq!(
            pw("postgres://localhost/db", "carol").as_deref(),
            Some("socketpw")
        );
        assert_eq!(
            pw("postgres:///db?host=/tmp/sock", "carol").as_deref(),
            Some("tmpsock")
        );
        // `\:` and `\\`, and anything after the password's end ignored.
        assert_eq!(
            pw("postgres:///db?host=ho:st", "dave").as_deref(),
            Some("esc:aped\\pw")
        );
        // A password from the URL or PGPASSWORD is not looked up.
        assert_eq!(
            pw("postgres://u:mine@db.example/state", "alice").as_deref(),
            Some("mine")
        );
        let info = resolve_with(
            "postgres://db.example/state",
            &[
                ("PGUSER", "alice"),
                ("PGPASSFILE", file),
                ("PGPASSWORD", "envpw"),
            ],
        )
        .unwrap();
        assert_eq!(password(&info).as_deref(), Some("envpw"));
        // Looked up per host.
        let info = resolve_with(
            "postgres://db.example,other/state",
            &[("PGUSER", "alice"), ("PGPASSFILE", file)],
        )
        .unwrap();
        assert_eq!(info.password_for(0).map(|(p, _)| p), Some("first"));
        assert_eq!(info.password_for(1).map(|(p, _)| p), Some("fallback"));
        assert_eq!(
            info.password_for(0).map(|(_, s)| s),
            Some(PasswordSource::File(PathBuf::from(file)))
        );
        // `?passfile=` names it too.
        let info = resolve_with(
            &format!("postgres://db.example/state?passfile={file}"),
            &[("PGUSER", "alice")],
        )
        .unwrap();
        assert_eq!(password(&info).as_deref(), Some("first"));
    }

    #[test]
    fn the_password_file_is_ignored_unless_private() {
        let dir = tempfile::tempdir().unwrap();
        let file = passfile(&dir, "*:*:*:*:leaked\n", 0o644);
        let env = [("PGUSER", "u"), ("PGPASSFILE", file.to_str().unwrap())];
        assert_eq!(
            password(&resolve_with("postgres://h/db", &env).unwrap()),
            None
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            password(&resolve_with("postgres://h/db", &env).unwrap()),
            None
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(
            password(&resolve_with("postgres://h/db", &env).unwrap()).as_deref(),
            Some("leaked")
        );
        // A folder is not a password file.
        let env = [
            ("PGUSER", "u"),
            ("PGPASSFILE", dir.path().to_str().unwrap()),
        ];
        assert_eq!(
            password(&resolve_with("postgres://h/db", &env).unwrap()),
            None
        );
        // The default is ~/.pgpass.
        let home = tempfile::tempdir().unwrap();
        let pgpass = home.path().join(".pgpass");
        std::fs::write(&pgpass, "h:5432:db:u:homepw\n").unwrap();
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let env = env_of(&[("PGUSER", "u"), ("HOME", home.path().to_str().unwrap())]);
        let info = ConnInfo::resolve("postgres://h/db", &env).unwrap();
        assert_eq!(password(&info).as_deref(), Some("homepw"));
    }

    #[test]
    fn passfile_fields_match_as_libpq_does() {
        let lines = |text: &str| text.lines().map(str::to_owned).collect::<Vec<_>>();
        // `*` only as a whole field.
        assert_eq!(
            passfile_lookup(&lines("h*:*:*:*:x"), "hx", "1", "d", "u"),
            None
        );
        assert_eq!(
            passfile_lookup(&lines("h:*:*:*:x"), "h", "1", "d", "u").as_deref(),
            Some("x")
        );
        // A field must match whole, not as a prefix.
        assert_eq!(
            passfile_lookup(&lines("host:*:*:*:x"), "ho", "1", "d", "u"),
            None
        );
        assert_eq!(
            passfile_lookup(&lines("ho:*:*:*:x"), "host", "1", "d", "u"),
            None
        );
        // A line with too few fields matches nothing.
        assert_eq!(passfile_lookup(&lines("h:1:d:u"), "h", "1", "d", "u"), None);
        // An empty password.
        assert_eq!(
            passfile_lookup(&lines("h:1:d:u:"), "h", "1", "d", "u").as_deref(),
            Some("")
        );
        // `#` starts a comment only at the line's start.
        assert_eq!(
            passfile_lookup(&lines("#h:1:d:u:x\n h:1:d:u:y"), "#h", "1", "d", "u"),
            None
        );
        assert_eq!(
            passfile_lookup(&lines("\\#h:1:d:u:x"), "#h", "1", "d", "u").as_deref(),
            Some("x")
        );
    }

    /// Shapes of URL with and without passwords: (URL, redacted, without).
    const SHAPES: &[(&str, &str, &str)] = &[
        (
            "postgres://u:pw@h/db",
            "postgres://u:***@h/db",
            "postgres://u@h/db",
        ),
        (
            "postgresql://u:pw@h:5432/db?sslmode=require",
            "postgresql://u:***@h:5432/db?sslmode=require",
            "postgresql://u@h:5432/db?sslmode=require",
        ),
        (
            "postgres://u@h/db",
            "postgres://u@h/db",
            "postgres://u@h/db",
        ),
        ("postgres://h/db", "postgres://h/db", "postgres://h/db"),
        (
            "postgres:///db?host=/run/postgresql",
            "postgres:///db?host=/run/postgresql",
            "postgres:///db?host=/run/postgresql",
        ),
        (
            "postgres://u:@h/db",
            "postgres://u:***@h/db",
            "postgres://u@h/db",
        ),
        ("postgres://:pw@h", "postgres://:***@h", "postgres://@h"),
        (
            "postgres://u:p%40ss%3Aw%2Fd@h/db",
            "postgres://u:***@h/db",
            "postgres://u@h/db",
        ),
        (
            "postgres://u:pa:ss@h/db",
            "postgres://u:***@h/db",
            "postgres://u@h/db",
        ),
        (
            "postgres://u:pa?ss@h/db",
            "postgres://u:***@h/db",
            "postgres://u@h/db",
        ),
        (
            "postgres://h/db?password=pw",
            "postgres://h/db?password=***",
            "postgres://h/db",
        ),
        (
            "postgres://h/db?sslmode=require&password=pw&application_name=a",
            "postgres://h/db?sslmode=require&password=***&application_name=a",
            "postgres://h/db?sslmode=require&application_name=a",
        ),
        (
            "postgres://h/db?password=pw&sslmode=disable",
            "postgres://h/db?password=***&sslmode=disable",
            "postgres://h/db?sslmode=disable",
        ),
        // libpq refuses this one; it is shown with the error, masked.
        (
            "postgres://h/db?PassWord=pw",
            "postgres://h/db?PassWord=***",
            "postgres://h/db",
        ),
        (
            "postgres://h/db?pass%77ord=pw",
            "postgres://h/db?pass%77ord=***",
            "postgres://h/db",
        ),
        (
            "postgres://u:a@h/db?password=b",
            "postgres://u:***@h/db?password=***",
            "postgres://u@h/db",
        ),
        (
            "postgres://u:pw@[::1]:5432,h2/db",
            "postgres://u:***@[::1]:5432,h2/db",
            "postgres://u@[::1]:5432,h2/db",
        ),
        (
            "POSTGRES://U:PW@H/DB",
            "POSTGRES://U:***@H/DB",
            "POSTGRES://U@H/DB",
        ),
        // Not percent-encoded: `@` in the password.
        (
            "postgres://u:p@ss@h/db",
            "postgres://u:***@h/db",
            "postgres://u@h/db",
        ),
        (
            "postgres://u:p@ss@w@h:5432/db?sslmode=require",
            "postgres://u:***@h:5432/db?sslmode=require",
            "postgres://u@h:5432/db?sslmode=require",
        ),
        // `/` in the password.
        (
            "postgres://u:pa/ss@h/db",
            "postgres://u:***@h/db",
            "postgres://u@h/db",
        ),
        (
            "postgres://u:/pw@h/db",
            "postgres://u:***@h/db",
            "postgres://u@h/db",
        ),
        // Unparsable: masked all the same.
        (
            "postgres://u:pw@[::1/db",
            "postgres://u:***@[::1/db",
            "postgres://u@[::1/db",
        ),
        (
            "postgres://u:pw@h/db?password",
            "postgres://u:***@h/db?password",
            "postgres://u@h/db?password",
        ),
        (
            "postgres://h/db?password=a=b&x",
            "postgres://h/db?password=***&x",
            "postgres://h/db?x",
        ),
        (
            "postgres://u:p%zz@h/db",
            "postgres://u:***@h/db",
            "postgres://u@h/db",
        ),
        // Not a URL: as it is.
        ("state.db", "state.db", "state.db"),
        ("", "", ""),
    ];

    #[test]
    fn redact_and_without_password() {
        for (url, redacted, without) in SHAPES {
            assert_eq!(&redact(url), redacted, "redact({url})");
            assert_eq!(&without_password(url), without, "without_password({url})");
        }
    }

    #[test]
    fn no_shape_leaks_a_password() {
        let secrets = [
            "pw", "p@ss", "pa/ss", "pa:ss", "hunter2", "s3cr%40t", "p@ss@w",
        ];
        for secret in secrets {
            for url in [
                format!("postgres://alice:{secret}@db.example:5432/state?sslmode=require"),
                format!("postgresql://alice:{secret}@[::1]/state"),
                format!("postgres://db.example/state?password={secret}"),
                format!(
                    "postgres://db.example/state?application_name=x&password={secret}&sslmode=disable"
                ),
                format!("postgres://alice:{secret}@/state?host=/tmp"),
                format!("postgres://alice:{secret}@db.example/state?password"),
            ] {
                for shown in [redact(&url), without_password(&url)] {
                    // `pw` is also in no other part of these URLs.
                    assert!(!shown.contains(secret), "{url} -> {shown}");
                }
            }
        }
    }

    #[test]
    fn resolve_errors_never_hold_the_password() {
        for url in [
            "postgres://u:hunter2@h:badport/db",
            "postgres://u:hunter2@h/db?bogus=1",
            "postgres://u:hunter2@h/db?password=hunter2=x",
            "postgres://u:hunter2@[::1/db",
            "postgres://u:hunter2%@h/db",
            "postgres://h/db?password=hunter2%",
        ] {
            let err = resolve_with(url, &[("PGUSER", "u")]).unwrap_err();
            assert!(
                !err.contains("hunter2") && !err.contains('\n'),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn connect_errors_read_as_one_line_each() {
        let s = "db.example:5432".to_string();
        let errors = [
            ConnectError::Unreachable {
                server: s.clone(),
                socket: false,
                timed_out: Some(Duration::from_secs(10)),
                cause: "no answer".into(),
            },
            ConnectError::Unreachable {
                server: s.clone(),
                socket: false,
                timed_out: None,
                cause: "connection refused".into(),
            },
            ConnectError::Unreachable {
                server: "socket /tmp/.s.PGSQL.5432".into(),
                socket: true,
                timed_out: None,
                cause: "no server socket there".into(),
            },
            ConnectError::NoTls {
                server: s.clone(),
                sslmode: SslMode::VerifyFull,
            },
            ConnectError::TlsFailed {
                server: s.clone(),
                detail:
                    "the server's certificate is not valid for the name `db.example`: it names x"
                        .into(),
                name_mismatch: true,
            },
            ConnectError::WrongPassword {
                server: s.clone(),
                user: "alice".into(),
                source: Some(PasswordSource::File("/h/.pgpass".into())),
            },
            ConnectError::NoPassword {
                server: s.clone(),
                user: "alice".into(),
            },
            ConnectError::AuthRejected {
                server: s.clone(),
                user: "alice".into(),
                message: "no pg_hba.conf entry".into(),
            },
            ConnectError::NoDatabase {
                server: s.clone(),
                dbname: "state".into(),
            },
            ConnectError::Refused {
                server: s.clone(),
                message: "sorry, too many clients already".into(),
            },
            ConnectError::TlsSetup {
                server: s.clone(),
                error: tls::TlsError::NoRootCert {
                    mode: SslMode::VerifyCa,
                },
            },
        ];
        for e in &errors {
            let text = e.to_string();
            assert!(!text.contains('\n') && text.contains("5432"), "{text}");
            if let Some(hint) = e.hint() {
                assert!(!hint.contains('\n'), "{hint}");
            }
        }
        assert_eq!(
            errors[0].to_string(),
            "cannot reach the PostgreSQL server at db.example:5432 within 10 s: no answer"
        );
        assert!(
            errors[4]
                .to_string()
                .contains("not valid for the name `db.example`")
        );
        assert!(errors[4].hint().unwrap().contains("verify-ca"));
        assert!(errors[5].hint().unwrap().contains("/h/.pgpass"));
        assert_eq!(
            errors[8].to_string(),
            "database `state` does not exist on the PostgreSQL server at db.example:5432"
        );
        assert!(errors[8].hint().unwrap().contains("createdb state"));
    }

    #[test]
    fn an_unreachable_server_fails_within_the_timeout() {
        // A socket folder with no server in it: refused at once.
        let dir = tempfile::tempdir().unwrap();
        let url = format!("postgres:///db?host={}&port=5999", dir.path().display());
        let info = resolve_with(&url, &[("PGUSER", "u"), ("PGPASSWORD", "hunter2")]).unwrap();
        let err = info.connect().err().expect("no server there");
        assert!(
            matches!(err, ConnectError::Unreachable { socket: true, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(".s.PGSQL.5999") && !text.contains("hunter2"),
            "{text}"
        );

        // A listener that accepts and never answers: the deadline holds.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let url =
            format!("postgres://u:hunter2@127.0.0.1:{port}/db?connect_timeout=2&sslmode=disable");
        let info = resolve_with(&url, &[]).unwrap();
        let started = std::time::Instant::now();
        let err = info.connect().err().expect("no server there");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            err.to_string(),
            format!("cannot reach the PostgreSQL server at 127.0.0.1:{port} within 2 s: no answer")
        );
        drop(listener);

        // Nothing listening: refused.
        let url = format!("postgres://u@127.0.0.1:{port}/db?sslmode=disable");
        let err = resolve_with(&url, &[])
            .unwrap()
            .connect()
            .err()
            .expect("no server there");
        assert!(err.to_string().ends_with("connection refused"), "{err}");
    }

    #[test]
    fn a_missing_root_certificate_fails_before_connecting() {
        let url = "postgres://u@127.0.0.1:1/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem";
        let err = resolve_with(url, &[])
            .unwrap()
            .connect()
            .err()
            .expect("no server there");
        assert!(matches!(err, ConnectError::TlsSetup { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        // No TLS over a Unix socket, so no certificate needed there.
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "postgres:///db?host={}&sslmode=verify-full",
            dir.path().display()
        );
        let err = resolve_with(&url, &[("PGUSER", "u")])
            .unwrap()
            .connect()
            .err()
            .expect("no server there");
        assert!(matches!(err, ConnectError::Unreachable { .. }), "{err:?}");
    }
}
