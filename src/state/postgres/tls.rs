//! TLS for the connection, by `sslmode`.
//!
//! libpq's five modes, with rustls and its `ring` provider (pure Rust for
//! the protocol, no OpenSSL to find on the machine):
//!
//! - `disable`: no TLS.
//! - `prefer`, `require`: encrypt, without checking the server's
//!   certificate (what libpq does: these modes protect against passive
//!   listening only). `require` with a root certificate file given checks
//!   the chain, as `verify-ca` does (libpq's rule, kept for old setups).
//! - `verify-ca`: the certificate must chain to a root in `sslrootcert`; its
//!   names are not checked, so a server reached by an address its
//!   certificate does not name is still accepted.
//! - `verify-full`: the chain and the host name.
//!
//! A Unix socket never uses TLS (libpq does not either: the server does not
//! offer it there); [`ConnInfo::connect`](super::conninfo::ConnInfo::connect)
//! asks for [`plain`] for those.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::conninfo::SslMode;

/// What `postgres::Config::connect` needs for one server: the mode the
/// driver negotiates with, and the connector that does the handshake.
pub struct Tls {
    /// The driver's own mode: `Disable`, `Prefer` or `Require`. The
    /// verify modes are `Require` with a connector that checks the
    /// certificate; the driver itself knows nothing about certificates.
    pub mode: postgres::config::SslMode,
    /// Builds the TLS session. Built for every mode (the driver takes one
    /// connector type), and never used when `mode` is `Disable`.
    pub connector: MakeRustlsConnect,
    /// What the connector checks of the server's certificate: for the
    /// messages, and so tests can say which mode did what.
    pub check: Check,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("mode", &self.mode)
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// No TLS at all.
    NoTls,
    /// Encrypted, certificate not checked: a man in the middle is not
    /// detected.
    Unverified,
    /// The certificate must chain to a root in the root certificate file;
    /// any name.
    Chain,
    /// The chain, and the certificate must name the host connected to.
    ChainAndName,
}

/// Why TLS could not be set up, before anything was sent to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// A verify mode with no root certificate file to verify against (no
    /// `sslrootcert`, no `PGSSLROOTCERT`, and no home folder for the
    /// default `~/.postgresql/root.crt`).
    NoRootCert { mode: SslMode },
    /// The root certificate file could not be read (missing, not readable).
    RootCertUnreadable {
        path: PathBuf,
        mode: SslMode,
        cause: String,
    },
    /// The root certificate file holds no certificate supportctl can use.
    RootCertInvalid { path: PathBuf, detail: String },
    /// rustls refused the configuration: not expected with the `ring`
    /// provider, kept as data rather than a panic.
    Setup(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::NoRootCert { mode } => write!(
                f,
                "sslmode {mode} checks the server's certificate against a root certificate, and none was given"
            ),
            TlsError::RootCertUnreadable { path, mode, cause } => write!(
                f,
                "cannot read the root certificate file `{}` (sslmode {mode} needs it): {cause}",
                path.display()
            ),
            TlsError::RootCertInvalid { path, detail } => write!(
                f,
                "the root certificate file `{}` holds no usable certificate: {detail}",
                path.display()
            ),
            TlsError::Setup(detail) => write!(f, "cannot set up TLS: {detail}"),
        }
    }
}

impl std::error::Error for TlsError {}

impl TlsError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            TlsError::NoRootCert { .. } | TlsError::RootCertUnreadable { .. } => Some(
                "give the CA certificate that signed the server's with `?sslrootcert=PATH` or PGSSLROOTCERT (default `~/.postgresql/root.crt`), or use sslmode=require to encrypt without checking".into(),
            ),
            TlsError::RootCertInvalid { .. } => {
                Some("the file must hold PEM certificates (`-----BEGIN CERTIFICATE-----`)".into())
            }
            TlsError::Setup(_) => None,
        }
    }
}

/// The cryptography, always `ring`, chosen here rather than through a
/// process-wide default so that nothing else in the process can change it
/// (and no default needs installing first). rustls 0.23.48 deprecates
/// `ring`'s provider for lacking post-quantum key exchange; the other
/// provider, aws-lc-rs, builds a large C library, which this project does
/// not take on (and PostgreSQL 15 servers built with OpenSSL 3.0 offer no
/// post-quantum key exchange to use anyway).
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// No TLS: for `disable`, and for Unix sockets whatever the mode.
pub fn plain() -> Result<Tls, TlsError> {
    let provider = provider();
    Ok(Tls {
        mode: postgres::config::SslMode::Disable,
        connector: connector(provider.clone(), Arc::new(Unverified { provider }))?,
        check: Check::NoTls,
    })
}

/// TLS for a TCP connection in `mode`, checking against the root
/// certificates in `rootcert` where the mode says to. Reads `rootcert` now,
/// so that a missing file is an error naming it before any connection.
pub fn for_mode(mode: SslMode, rootcert: Option<&Path>) -> Result<Tls, TlsError> {
    let check = match mode {
        SslMode::Disable => return plain(),
        SslMode::Prefer => Check::Unverified,
        SslMode::Require if rootcert.is_some() => Check::Chain,
        SslMode::Require => Check::Unverified,
        SslMode::VerifyCa => Check::Chain,
        SslMode::VerifyFull => Check::ChainAndName,
    };
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::NoTls | Check::Unverified => Arc::new(Unverified {
            provider: provider.clone(),
        }),
        Check::Chain => Arc::new(ChainOnly {
            inner: webpki_verifier(mode, rootcert, &provider)?,
        }),
        Check::ChainAndName => webpki_verifier(mode, rootcert, &provider)?,
    };
    let driver_mode = match mode {
        SslMode::Disable => postgres::config::SslMode::Disable,
        SslMode::Prefer => postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            postgres::config::SslMode::Require
        }
    };
    Ok(Tls {
        mode: driver_mode,
        connector: connector(provider, verifier)?,
        check,
    })
}

fn connector(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<MakeRustlsConnect, TlsError> {
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// rustls's own verifier (chain, dates, name) over the roots in `path`.
fn webpki_verifier(
    mode: SslMode,
    path: Option<&Path>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    let path = path.ok_or(TlsError::NoRootCert { mode })?;
    let roots = read_roots(path, mode)?;
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Setup(e.to_string()))
}

/// The PEM certificates in `path`, as trusted roots.
fn read_roots(path: &Path, mode: SslMode) -> Result<RootCertStore, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError::RootCertUnreadable {
        path: path.to_owned(),
        mode,
        cause: io_cause(&e),
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::RootCertInvalid {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::RootCertInvalid {
            path: path.to_owned(),
            detail: "no PEM certificate in it".into(),
        });
    }
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsError::RootCertInvalid {
            path: path.to_owned(),
            detail: "none of its certificates could be parsed".into(),
        });
    }
    Ok(roots)
}

/// An I/O error as one short phrase: its kind's wording without the
/// `(os error N)` the standard library appends.
pub(crate) fn io_cause(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// One line about a failed handshake, from rustls's error: what the
/// certificate lacked, in words a person connecting can act on. `host` is
/// the name connected to.
pub fn explain(error: &rustls::Error, host: &str) -> String {
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::NotValidForName => {
                format!("the server's certificate is not valid for the name `{host}`: it names other hosts")
            }
            CertificateError::NotValidForNameContext { presented, .. } => {
                let names = if presented.is_empty() {
                    "no host names".to_string()
                } else {
                    presented
                        .iter()
                        .map(|name| presented_name(name))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!(
                    "the server's certificate is not valid for the name `{host}`: it names {names}"
                )
            }
            CertificateError::UnknownIssuer => {
                "the server's certificate is not signed by a root certificate in the root certificate file".into()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (check this machine's clock)".into()
            }
            other => format!("the server's certificate was refused: {other}"),
        },
        rustls::Error::AlertReceived(alert) => {
            format!("the server ended the TLS handshake ({alert:?})")
        }
        other => format!("the TLS handshake failed: {other}"),
    }
}

/// A name from a certificate as rustls reports it (`DnsName("db.example")`,
/// `IpAddress(10.0.0.1)`), as a person writes it.
fn presented_name(name: &str) -> String {
    if let Some(inner) = name
        .strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
    {
        return inner.to_owned();
    }
    if let Some(inner) = name
        .strip_prefix("IpAddress(")
        .and_then(|n| n.strip_suffix(')'))
    {
        return inner.to_owned();
    }
    name.to_owned()
}

/// Whether a handshake failed because the certificate does not name the
/// host (only `verify-full` checks that).
pub fn is_name_mismatch(error: &rustls::Error) -> bool {
    matches!(
        error,
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    )
}

/// Accepts any certificate, and still checks that the server holds its key
/// (the handshake signatures): `prefer` and `require`, which libpq does not
/// verify either.
#[derive(Debug)]
struct Unverified {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca`: rustls's full check, with one failure forgiven: a
/// certificate that does not name the host. rustls checks the name last,
/// after the chain, the dates and the key usage, so that error means all
/// of those passed.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(e) if is_name_mismatch(&e) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // Made once with the openssl CLI (P-256 keys, valid from December 2026
    // for 100 years; the keys were thrown away: a verifier needs none):
    //   CA     `req -x509 -subj "/CN=supportctl test CA"`, CA:TRUE, keyCertSign
    //   OTHER  the same with "/CN=supportctl other CA"
    //   SERVER "/CN=db.example.test" signed by CA, with
    //          subjectAltName=DNS:db.example.test,IP:127.0.0.1, serverAuth
    const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBojCCAUegAwIBAgIUMaAjt1mxI1i5Ta/BFcyitAvcUAowCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSc3VwcG9ydGN0bCB0ZXN0IENBMCAXDTI2MTIwNjA3MjYxN1oY
DzIxMjYxMTEyMDcyNjE3WjAdMRswGQYDVQQDDBJzdXBwb3J0Y3RsIHRlc3QgQ0Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAS7UEMqCw4GTN122ittadBT13uBziF3
mYTjioROB4rk7e4M8mXI4G/6445IjWCdQ5hNMV5oIMhhlvep9YG6xrCwo2MwYTAd
BgNVHQ4EFgQU3+LCs5tR4dBIT8pUNHJ7c95hJMcwHwYDVR0jBBgwFoAU3+LCs5tR
4dBIT8pUNHJ7c95hJMcwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYw
CgYIKoZIzj0EAwIDSQAwRgIhAPXbisjKuKO6kNpu1ze62ZklmVR+mGCBSXyQH6/q
LwChAiEAkCDhniIiQmuEH0A7Xee1pM4qHloUEVtDZLZLqwu3Gwc=
-----END CERTIFICATE-----
";
    const OTHER: &str = "-----BEGIN CERTIFICATE-----
MIIBpDCCAUmgAwIBAgIUcDbpTi2vGxV4Xmqy3XASZ3iBB2gwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTc3VwcG9ydGN0bCBvdGhlciBDQTAgFw0yNjEyMDYwNzI2MTda
GA8yMTI2MTExMjA3MjYxN1owHjEcMBoGA1UEAwwTc3VwcG9ydGN0bCBvdGhlciBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABAfO2cJFdFUpuTGbSrELqb4aJdX8
7vJLFhfF7EMAXkwdCWsbjr8m/C2woeketXIT3dQ+ab6NsWAihkGsXnSipPijYzBh
MB0GA1UdDgQWBBRX1tI1bPjtNgH6kyMMrJSnhbxffTAfBgNVHSMEGDAWgBRX1tI1
bPjtNgH6kyMMrJSnhbxffTAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIB
BjAKBggqhkjOPQQDAgNJADBGAiEA33H6OziJueIMihSly8CGCzGOkJgIRYmdDRFf
Z9hRfxwCIQDgvt1gdlyVjZ8OvHEnByE9NHuYSUWtjwcJS2hwxVHyiw==
-----END CERTIFICATE-----
";
    const SERVER: &str = "-----BEGIN CERTIFICATE-----
MIIB1TCCAXqgAwIBAgIUb0pEA++cwX2QnLDp2ewXlxxy9B0wCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSc3VwcG9ydGN0bCB0ZXN0IENBMCAXDTI2MTIwNjA3MjYxN1oY
DzIxMjYxMTEyMDcyNjE3WjAaMRgwFgYDVQQDDA9kYi5leGFtcGxlLnRlc3QwWTAT
BgcqhkjOPQIBBggqhkjOPQMBBwNCAARUX0KABjv3WlWot1f4aiiyqCsMdeEyxd1q
9ErWnmyzNQMbrzmXcHsh4TMMryXCa4WIv5hntl6wz0/V2EXEpqVQo4GYMIGVMCAG
A1UdEQQZMBeCD2RiLmV4YW1wbGUudGVzdIcEfwAAATAMBgNVHRMBAf8EAjAAMA4G
A1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUu5Lp
VqPmBzeL6bWkmNHiMyJeHPowHwYDVR0jBBgwFoAU3+LCs5tR4dBIT8pUNHJ7c95h
JMcwCgYIKoZIzj0EAwIDSQAwRgIhAJCh981imtQw4127hleOQaxMaqicBKrmtBgj
6cQBGhJeAiEA8k3TqAYiIlzfMSWxZvs4KVWGa7xuu27X0xRE53HTy6k=
-----END CERTIFICATE-----
";

    /// A moment inside every certificate's validity.
    fn in_2030() -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(1_893_456_000))
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("test PEM")
    }

    /// A root certificate file holding `pem`, in a folder kept alive by the
    /// returned guard.
    fn root_file(pem: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.crt");
        std::fs::write(&path, pem).unwrap();
        (dir, path)
    }

    fn name(text: &str) -> ServerName<'static> {
        ServerName::try_from(text.to_owned()).unwrap()
    }

    fn verify(
        verifier: &dyn ServerCertVerifier,
        server: &str,
    ) -> Result<ServerCertVerified, rustls::Error> {
        verifier.verify_server_cert(&der(SERVER), &[], &name(server), &[], in_2030())
    }

    #[test]
    fn each_mode_gets_its_driver_mode_and_check() {
        let (_dir, root) = root_file(CA);
        let cases = [
            (
                SslMode::Disable,
                None,
                postgres::config::SslMode::Disable,
                Check::NoTls,
            ),
            (
                SslMode::Prefer,
                None,
                postgres::config::SslMode::Prefer,
                Check::Unverified,
            ),
            (
                SslMode::Require,
                None,
                postgres::config::SslMode::Require,
                Check::Unverified,
            ),
            // libpq's rule: require with a root certificate is verify-ca.
            (
                SslMode::Require,
                Some(&root),
                postgres::config::SslMode::Require,
                Check::Chain,
            ),
            (
                SslMode::VerifyCa,
                Some(&root),
                postgres::config::SslMode::Require,
                Check::Chain,
            ),
            (
                SslMode::VerifyFull,
                Some(&root),
                postgres::config::SslMode::Require,
                Check::ChainAndName,
            ),
            // A file given for a mode that does not verify is not read.
            (
                SslMode::Disable,
                Some(&root),
                postgres::config::SslMode::Disable,
                Check::NoTls,
            ),
        ];
        for (mode, rootcert, driver, check) in cases {
            let tls = for_mode(mode, rootcert.map(PathBuf::as_path))
                .unwrap_or_else(|e| panic!("{mode}: {e}"));
            assert_eq!((tls.mode, tls.check), (driver, check), "{mode}");
        }
        assert_eq!(plain().unwrap().check, Check::NoTls);
    }

    #[test]
    fn verify_modes_need_a_readable_root_file_and_name_it() {
        assert_eq!(
            for_mode(SslMode::VerifyFull, None).unwrap_err(),
            TlsError::NoRootCert {
                mode: SslMode::VerifyFull
            }
        );
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.crt");
        let err = for_mode(SslMode::VerifyCa, Some(&missing)).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, TlsError::RootCertUnreadable { .. }),
            "{err:?}"
        );
        assert!(text.contains(&missing.display().to_string()), "{text}");
        assert!(text.contains("verify-ca") && !text.contains('\n'), "{text}");
        assert!(err.hint().unwrap().contains("sslrootcert"));

        let (_d, not_pem) = root_file("just some text\n");
        let err = for_mode(SslMode::VerifyFull, Some(&not_pem)).unwrap_err();
        assert!(matches!(err, TlsError::RootCertInvalid { .. }), "{err:?}");
        assert!(err.to_string().contains(&not_pem.display().to_string()));

        // require with an unreadable file given: checked as verify-ca,
        // so the file must be there.
        assert!(matches!(
            for_mode(SslMode::Require, Some(&missing)),
            Err(TlsError::RootCertUnreadable { .. })
        ));
    }

    #[test]
    fn verify_full_checks_the_name() {
        let (_d, root) = root_file(CA);
        let provider = provider();
        let full = webpki_verifier(SslMode::VerifyFull, Some(&root), &provider).unwrap();
        assert!(verify(full.as_ref(), "db.example.test").is_ok());
        assert!(verify(full.as_ref(), "127.0.0.1").is_ok());
        let err = verify(full.as_ref(), "other.example.test").unwrap_err();
        assert!(is_name_mismatch(&err), "{err:?}");
        let text = explain(&err, "other.example.test");
        assert_eq!(
            text,
            "the server's certificate is not valid for the name `other.example.test`: it names db.example.test, 127.0.0.1"
        );
    }

    #[test]
    fn verify_ca_accepts_a_name_mismatch_and_refuses_a_foreign_chain() {
        let (_d, root) = root_file(CA);
        let provider = provider();
        let ca_only = ChainOnly {
            inner: webpki_verifier(SslMode::VerifyCa, Some(&root), &provider).unwrap(),
        };
        assert!(verify(&ca_only, "db.example.test").is_ok());
        assert!(verify(&ca_only, "other.example.test").is_ok());
        assert!(verify(&ca_only, "10.1.2.3").is_ok());

        // The same certificate against a root that did not sign it.
        let (_d2, other) = root_file(OTHER);
        let wrong_root = ChainOnly {
            inner: webpki_verifier(SslMode::VerifyCa, Some(&other), &provider).unwrap(),
        };
        let err = verify(&wrong_root, "db.example.test").unwrap_err();
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
        assert!(explain(&err, "db.example.test").contains("not signed by a root"));

        // A CA certificate presented as the server's own is still refused
        // whatever the name (it is not an end-entity certificate for TLS).
        let err = ca_only
            .verify_server_cert(&der(OTHER), &[], &name("x.test"), &[], in_2030())
            .unwrap_err();
        assert!(!is_name_mismatch(&err), "{err:?}");

        // Out of its validity: refused before any name check.
        let before = UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000));
        let err = ca_only
            .verify_server_cert(&der(SERVER), &[], &name("x.test"), &[], before)
            .unwrap_err();
        assert!(explain(&err, "x.test").contains("not valid yet"), "{err:?}");
    }

    #[test]
    fn a_root_file_may_hold_several_certificates() {
        let (_d, both) = root_file(&format!("{OTHER}{CA}"));
        let provider = provider();
        let full = webpki_verifier(SslMode::VerifyFull, Some(&both), &provider).unwrap();
        assert!(verify(full.as_ref(), "db.example.test").is_ok());
    }

    #[test]
    fn names_from_a_certificate_read_as_written() {
        assert_eq!(presented_name("DnsName(\"db.example\")"), "db.example");
        assert_eq!(presented_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(presented_name("DirectoryName"), "DirectoryName");
    }

    #[test]
    fn io_cause_drops_the_os_error_number() {
        let e = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_cause(&e), "Connection refused");
    }
}
