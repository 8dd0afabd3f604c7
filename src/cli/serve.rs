//! `serve`: the read-only web view of the state ([`crate::web`]) over HTTP,
//! until SIGINT or SIGTERM.
//!
//! It listens on loopback unless told otherwise; any other address needs a
//! token (`--auth-token-file`) or the explicit `--insecure-no-auth`, or the
//! command is refused as a usage error before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;

use clap::Args;

use super::CliError;
use super::watch::default_status_file;
use crate::diag::escape_control;
use crate::events::{Wake, on_stop_signals};
use crate::state::Location;
use crate::telemetry::{Server, parse_listen_on};
use crate::web::{Auth, REFRESH_EVERY, Refresher, Settings, Site, TokenAuth};

/// The port `serve --listen` takes when its address names none.
pub const DEFAULT_PORT: u16 = 8080;

/// The largest `--expiring-within`: ten years.
const MAX_EXPIRING_WITHIN: u32 = 3650;

/// The largest token file read.
const MAX_TOKEN_BYTES: u64 = 4096;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on, e.g. `127.0.0.1:8080`, `[::1]:8080`,
    /// `0.0.0.0:8080` (the port defaults to 8080). An address that is not
    /// loopback needs `--auth-token-file` or `--insecure-no-auth`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080", value_parser = listen)]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub web: WebArgs,
    /// The status file of a watcher of this state, shown on the overview
    /// [default: the database path followed by `.status.json`, where
    /// `watch` writes it].
    #[arg(long, value_name = "PATH")]
    pub status_file: Option<PathBuf>,
}

/// How the web view is served: by `serve`, and by `watch --web`.
#[derive(Debug, Args)]
pub struct WebArgs {
    /// A file holding the token a client must show: `Authorization: Bearer
    /// TOKEN`, or typed once into the login form in a browser (for a
    /// session cookie). Its text, trimmed, is the token.
    #[arg(long, value_name = "PATH", conflicts_with = "insecure_no_auth")]
    pub auth_token_file: Option<PathBuf>,
    /// Serve without a token on an address other hosts may reach: anyone
    /// who reaches it reads who may open SRs.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Show phone numbers; without it they are redacted on every page.
    #[arg(long)]
    pub show_phones: bool,
    /// List grants (approvals and links) that end within this many days as
    /// needing attention, from 0 to 3650.
    #[arg(long, value_name = "DAYS", default_value_t = 14, value_parser = expiring_within)]
    pub expiring_within: u32,
}

fn listen(text: &str) -> Result<SocketAddr, String> {
    parse_listen_on(text, DEFAULT_PORT)
}

fn expiring_within(text: &str) -> Result<u32, String> {
    let range = format!("from 0 to {MAX_EXPIRING_WITHIN} days");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` is not a number of days ({range})"));
    }
    match text.parse::<u32>() {
        Ok(days) if days <= MAX_EXPIRING_WITHIN => Ok(days),
        _ => Err(format!("`{text}` is out of range: {range}")),
    }
}

/// The token in `path`: its text, trimmed, not empty.
fn read_token(path: &std::path::Path) -> Result<String, CliError> {
    let shown = escape_control(&path.display().to_string()).into_owned();
    let bytes = crate::files::read_bounded(path, MAX_TOKEN_BYTES)
        .map_err(|e| CliError::error(format!("cannot read the token file `{shown}`: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::error(format!("the token file `{shown}` is not UTF-8 text")))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(
            CliError::error(format!("the token file `{shown}` is empty"))
                .with_hint("write a long random token into it, e.g. `openssl rand -hex 32 > FILE`"),
        );
    }
    Ok(token.to_string())
}

/// The web view for the state at `db`, served at `addr` as `web` says,
/// with a watcher's status read from `status_file`; and whether it asks
/// for a token. Refused as a usage error when `addr` is not loopback and
/// neither a token nor `--insecure-no-auth` was given.
pub(super) fn site(
    web: &WebArgs,
    addr: SocketAddr,
    db: &Location,
    status_file: PathBuf,
) -> Result<(Site, bool), CliError> {
    if !addr.ip().is_loopback() && web.auth_token_file.is_none() && !web.insecure_no_auth {
        return Err(CliError::usage(format!(
            "`--listen {addr}` is not a loopback address: other hosts could read who may open SRs, so it needs a token"
        ))
        .with_hint("give `--auth-token-file PATH` (a file holding the token), or `--insecure-no-auth` to serve it to anyone who reaches it")
        .with_hint("or listen on loopback, e.g. `--listen 127.0.0.1:8080`, behind a proxy of your own"));
    }
    let auth = match &web.auth_token_file {
        Some(path) => Auth::Token(TokenAuth::new(&read_token(path)?)),
        None => Auth::Open,
    };
    let guarded = matches!(auth, Auth::Token(_));
    let site = Site::new(Settings {
        db: db.clone(),
        status_file,
        show_phones: web.show_phones,
        expiring_within: web.expiring_within,
        auth,
    });
    Ok((site, guarded))
}

/// Says, when the web view is open to anyone who reaches `addr`, so.
pub(super) fn warn_if_open(guarded: bool, addr: SocketAddr) {
    if !guarded && !addr.ip().is_loopback() {
        tracing::warn!(
            addr = %addr,
            "serving the web view without a token (--insecure-no-auth): anyone who reaches this address reads who may open SRs"
        );
    }
}

/// `supportctl serve`: serves the web view until a stop signal.
pub fn serve(args: &ServeArgs, db: &Location) -> Result<u8, CliError> {
    let addr = args.listen;
    let status_file = args
        .status_file
        .clone()
        .unwrap_or_else(|| default_status_file(db));
    let (site, guarded) = site(&args.web, addr, db, status_file)?;
    // Signals first: one that comes while the server starts stops it too.
    let (wakes, woken) = mpsc::channel();
    on_stop_signals(wakes)
        .map_err(|e| CliError::error(format!("cannot handle stop signals: {e}")))?;
    let site = Arc::new(site);
    let server = Server::start(
        addr,
        Arc::clone(&site) as Arc<dyn crate::telemetry::Handler>,
    )
    .map_err(|e| {
        CliError::error(e.to_string())
            .with_hint("give `--listen` an address of this host with a free port")
    })?;
    tracing::info!(
        addr = %server.local_addr(),
        db = %db,
        auth = if guarded { "token" } else { "none" },
        "serving the web view"
    );
    warn_if_open(guarded, server.local_addr());
    // Reads the state ahead of the first request, and after each apply.
    let refresher = match Refresher::start(site, REFRESH_EVERY) {
        Ok(refresher) => refresher,
        Err(e) => {
            server.stop();
            return Err(CliError::error(format!(
                "cannot start the web view's refresher: {e}"
            )));
        }
    };
    let signal = loop {
        match woken.recv() {
            Ok(Wake::Stop(signal)) => break signal,
            Ok(_) => {}
            Err(_) => break "none",
        }
    };
    server.stop();
    drop(refresher);
    tracing::info!(signal, "stopped");
    Ok(0)
}
