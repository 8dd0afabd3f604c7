//! Who may read the web view: anyone who reaches it (`--insecure-no-auth`,
//! or on loopback without a token), or whoever shows the token of
//! `--auth-token-file`: as `Authorization: Bearer TOKEN`, or, in a browser,
//! typed once into the login form, which gives a session cookie.
//!
//! The token is compared in constant time (its SHA-256 against the given
//! one's, so that neither its bytes nor its length show in the time an
//! answer takes). A session is a random id of 256 bits from the operating
//! system, kept in memory (by its SHA-256) for [`SESSION_LIFETIME`]: the
//! cookie never holds the token, and a restart ends every session. At most
//! [`MAX_SESSIONS`] are kept; the oldest goes first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::telemetry::Request;

/// The name of the session cookie.
pub const COOKIE: &str = "supportctl_session";
/// How long a session lasts from the login.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The most sessions kept at once.
pub const MAX_SESSIONS: usize = 1024;

/// Whether `a` and `b` are equal, in a time that depends only on their
/// lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// How the web view is guarded.
#[derive(Debug)]
pub enum Auth {
    /// Every request is answered.
    Open,
    /// Only requests with the token, or a session from the login form.
    Token(TokenAuth),
}

/// The token and the sessions it opened.
#[derive(Debug)]
pub struct TokenAuth {
    digest: [u8; 32],
    sessions: Mutex<Sessions>,
}

#[derive(Debug, Default)]
struct Sessions {
    /// The SHA-256 of each session id, with when it began.
    by_digest: HashMap<[u8; 32], Instant>,
    /// The same, oldest first.
    order: VecDeque<[u8; 32]>,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl TokenAuth {
    /// `token`: the file's text, trimmed, not empty.
    pub fn new(token: &str) -> TokenAuth {
        TokenAuth {
            digest: sha256(token.as_bytes()),
            sessions: Mutex::new(Sessions::default()),
        }
    }

    /// Whether `given` is the token.
    pub fn is_token(&self, given: &str) -> bool {
        constant_time_eq(&sha256(given.as_bytes()), &self.digest)
    }

    /// Whether `request` shows the token (`Authorization: Bearer`) or a
    /// live session's cookie.
    pub fn admits(&self, request: &Request<'_>) -> bool {
        if let Some(token) = bearer(request) {
            return self.is_token(token);
        }
        self.in_session(request)
    }

    /// Whether `request` comes with a live session's cookie: a browser
    /// that logged in through the form.
    pub fn in_session(&self, request: &Request<'_>) -> bool {
        cookie(request, COOKIE).is_some_and(|id| self.is_session(id))
    }

    /// Ends the session of the request's cookie, if it has one.
    pub fn end_session(&self, request: &Request<'_>) {
        let Some(id) = cookie(request, COOKIE) else {
            return;
        };
        let digest = sha256(id.as_bytes());
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.by_digest.remove(&digest).is_some() {
            sessions.order.retain(|d| *d != digest);
        }
    }

    fn is_session(&self, id: &str) -> bool {
        let digest = sha256(id.as_bytes());
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .by_digest
            .get(&digest)
            .is_some_and(|began| began.elapsed() < SESSION_LIFETIME)
    }

    /// A new session: its id, for the cookie. `None` when the system gives
    /// no randomness.
    pub fn open_session(&self) -> Option<String> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).ok()?;
        // 64 hex digits (`hex` writes bytes as `sha256:` and hex).
        let text = crate::hex::sha256_text(&bytes);
        let id = text.trim_start_matches("sha256:").to_string();
        let digest = sha256(id.as_bytes());
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        // The ended ones, then the oldest over the limit, make room.
        while let Some(oldest) = sessions.order.front().copied() {
            let ended = sessions
                .by_digest
                .get(&oldest)
                .is_none_or(|began| began.elapsed() >= SESSION_LIFETIME);
            if !ended && sessions.order.len() < MAX_SESSIONS {
                break;
            }
            sessions.order.pop_front();
            sessions.by_digest.remove(&oldest);
        }
        sessions.by_digest.insert(digest, Instant::now());
        sessions.order.push_back(digest);
        Some(id)
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme in any
/// case).
pub fn bearer<'a>(request: &Request<'a>) -> Option<&'a str> {
    let value = request.header("authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The value of cookie `name` in the request's `Cookie` header.
pub fn cookie<'a>(request: &Request<'a>, name: &str) -> Option<&'a str> {
    request
        .header("cookie")?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
}

/// The `Set-Cookie` value of a new session.
pub fn session_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that makes a browser forget its session.
pub fn ended_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}
