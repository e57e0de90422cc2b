//! TLS to the catalog database: which `sslmode` a PostgreSQL URI asks for, what the server's certificate
//! is and whether it verifies (for `doctor`), and clear errors when TLS and the server disagree.
//!
//! sqlx does the real connections (rustls, ring, Mozilla's roots or the URI's `sslrootcert`) and does not
//! show the certificate it checked, so [`inspect`] makes one handshake of its own with the same roots and
//! the same rules: `verify-full` checks the chain and the host name, `require` and `prefer` encrypt without
//! checking anything (libpq's meaning). `verify-ca` checks the host name too, unlike libpq: that is what
//! sqlx 0.8 does with this rustls (tested), and the report says so.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::lake::error::LakeError;

/// libpq's `sslmode`, as sqlx implements it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a certificate that does not verify ends the connection.
    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// What a PostgreSQL catalog URI says about TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub host: String,
    pub port: u16,
    pub mode: SslMode,
    /// `sslrootcert`: the CA bundle verified against, instead of Mozilla's roots.
    pub root_cert: Option<String>,
}

impl TlsSettings {
    /// `None` for anything but a PostgreSQL URI over TCP (SQLite, a Unix socket).
    pub fn from_uri(uri: &str) -> Result<Option<Self>, LakeError> {
        let url = url::Url::parse(uri).map_err(|e| LakeError::Config(format!("catalog URI: {e}")))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Ok(None);
        }
        let mut mode = SslMode::Prefer;
        let mut root_cert = None;
        let mut host = url.host_str().unwrap_or_default().to_string();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "sslmode" => {
                    mode = SslMode::parse(&value).ok_or_else(|| {
                        LakeError::Config(format!(
                            "catalog URI: sslmode={value} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                        ))
                    })?
                }
                "sslrootcert" => root_cert = Some(value.into_owned()),
                "host" => host = value.into_owned(),
                _ => {}
            }
        }
        if host.is_empty() || host.starts_with('/') {
            return Ok(None);
        }
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        Ok(Some(Self { host, port: url.port().unwrap_or(5432), mode, root_cert }))
    }

    fn roots(&self) -> Result<rustls::RootCertStore, LakeError> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.root_cert {
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Some(path) => {
                use rustls::pki_types::pem::PemObject;
                let certificates = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| LakeError::Config(format!("sslrootcert {path}: {e}")))?;
                let (added, _) = roots.add_parsable_certificates(certificates);
                if added == 0 {
                    return Err(LakeError::Config(format!("sslrootcert {path}: no certificate in it")));
                }
            }
        }
        Ok(roots)
    }
}

/// The server's certificate as the handshake presented it.
#[derive(Debug, Clone)]
pub struct ServerCertificate {
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
    /// SHA-256 of the DER certificate, hex, as `openssl x509 -fingerprint -sha256` prints it.
    pub sha256: String,
    /// `None`: it verified; otherwise why it did not (against the roots, for the host name).
    pub problem: Option<String>,
}

/// What [`inspect`] found.
#[derive(Debug, Clone)]
pub struct TlsReport {
    pub settings: TlsSettings,
    /// `None`: the connection is plaintext (the server offers no TLS, or `sslmode` asks for none).
    pub protocol: Option<String>,
    pub certificate: Option<ServerCertificate>,
}

impl TlsReport {
    /// What sqlx verifies with these settings, said in one sentence.
    pub fn describe(&self) -> String {
        let s = &self.settings;
        let roots = s.root_cert.as_deref().map_or("Mozilla's roots".to_string(), |p| format!("the CA bundle {p}"));
        let Some(protocol) = &self.protocol else {
            return format!("sslmode={}: plaintext to {}:{} (no TLS)", s.mode.name(), s.host, s.port);
        };
        let Some(cert) = &self.certificate else {
            return format!("sslmode={}: {protocol} to {}:{}", s.mode.name(), s.host, s.port);
        };
        let named =
            format!("server certificate {} issued by {} (valid until {}, SHA-256 {})", cert.subject, cert.issuer, cert.not_after, cert.sha256);
        match (s.mode, &cert.problem) {
            (SslMode::VerifyFull, None) => format!("sslmode=verify-full: {protocol}, {named}, verified for host {} against {roots}", s.host),
            (SslMode::VerifyCa, None) => format!(
                "sslmode=verify-ca: {protocol}, {named}, verified for host {} against {roots} (sqlx checks the name in verify-ca too)",
                s.host
            ),
            (mode, None) => format!(
                "sslmode={}: {protocol}, {named}; it would verify against {roots}, but this mode checks nothing: use sslmode=verify-full",
                mode.name()
            ),
            (mode, Some(problem)) => format!("sslmode={}: {protocol}, {named}, NOT verified: {problem}", mode.name()),
        }
    }

    /// True when the connection is encrypted and its certificate was checked against the roots and host.
    pub fn verified(&self) -> bool {
        self.settings.mode == SslMode::VerifyFull && self.certificate.as_ref().is_some_and(|c| c.problem.is_none())
    }
}

/// Records what the real verifier thinks of the certificate, and enforces it only when the mode does.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    mode: SslMode,
    outcome: Mutex<Option<Result<(), String>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // verify-ca checks the host name too: sqlx 0.8 exempts only rustls's old `NotValidForName`, and rustls
        // 0.23 reports a wrong name as `NotValidForNameContext`, so the real connections refuse it as well.
        let checked = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(checked.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        match checked {
            Err(e) if self.mode.verifies() => Err(e),
            _ => Ok(ServerCertVerified::assertion()),
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

/// PostgreSQL's SSLRequest: length 8, then the code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Connects to the catalog server as sqlx would, up to the end of the TLS handshake, and reports what it
/// presented. Nothing is sent after the handshake (no sign-in).
pub async fn inspect(settings: &TlsSettings) -> Result<TlsReport, LakeError> {
    let plaintext = || TlsReport { settings: settings.clone(), protocol: None, certificate: None };
    if matches!(settings.mode, SslMode::Disable | SslMode::Allow) {
        return Ok(plaintext());
    }
    let unreachable = |e: std::io::Error| LakeError::Config(format!("catalog server {}:{}: {e}", settings.host, settings.port));
    let connect = tokio::net::TcpStream::connect((settings.host.as_str(), settings.port));
    let mut stream = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .map_err(|_| LakeError::Config(format!("catalog server {}:{}: no answer within 10 s", settings.host, settings.port)))?
        .map_err(unreachable)?;
    stream.write_all(&SSL_REQUEST).await.map_err(unreachable)?;
    let mut answer = [0u8; 1];
    stream.read_exact(&mut answer).await.map_err(unreachable)?;
    if answer[0] != b'S' {
        return match settings.mode {
            SslMode::Prefer => Ok(plaintext()),
            _ => Err(LakeError::Config(format!(
                "catalog server {}:{} offers no TLS but sslmode={} requires it",
                settings.host,
                settings.port,
                settings.mode.name()
            ))),
        };
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(settings.roots()?), provider.clone())
        .build()
        .map_err(|e| LakeError::Config(format!("TLS roots: {e}")))?;
    let verifier = Arc::new(Recording { inner, mode: settings.mode, outcome: Mutex::new(None) });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LakeError::Config(format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(settings.host.clone()).map_err(|e| LakeError::Config(format!("catalog host {}: {e}", settings.host)))?;
    let handshake = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, stream);
    let tls = tokio::time::timeout(Duration::from_secs(10), handshake)
        .await
        .map_err(|_| LakeError::Config(format!("catalog server {}:{}: the TLS handshake did not finish within 10 s", settings.host, settings.port)))?
        .map_err(|e| {
            LakeError::Config(format!(
                "catalog server {}:{}: TLS handshake failed with sslmode={}: {e}",
                settings.host,
                settings.port,
                settings.mode.name()
            ))
        })?;
    let (_, connection) = tls.get_ref();
    let protocol = connection.protocol_version().map_or("TLS".to_string(), |v| format!("{v:?}").replace("TLSv1_", "TLS 1."));
    let leaf = connection.peer_certificates().and_then(|certs| certs.first()).map(|der| der.as_ref().to_vec());
    let problem = verifier.outcome.lock().unwrap_or_else(|e| e.into_inner()).clone().and_then(Result::err);
    let certificate = leaf.map(|der| describe_certificate(&der, problem));
    Ok(TlsReport { settings: settings.clone(), protocol: Some(protocol), certificate })
}

fn describe_certificate(der: &[u8], problem: Option<String>) -> ServerCertificate {
    use sha2::Digest;
    use x509_cert::der::Decode;
    let sha256 = sha2::Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
    match x509_cert::Certificate::from_der(der) {
        Ok(cert) => {
            let tbs = &cert.tbs_certificate;
            ServerCertificate {
                subject: tbs.subject.to_string(),
                issuer: tbs.issuer.to_string(),
                not_after: tbs.validity.not_after.to_string(),
                sha256,
                problem,
            }
        }
        Err(e) => {
            ServerCertificate { subject: format!("(unparseable: {e})"), issuer: "(unknown)".into(), not_after: "(unknown)".into(), sha256, problem }
        }
    }
}

/// Refuses to send an Entra token (a credential good for every database the identity may use) over a
/// connection that does not check whom it talks to, unless the server is on this machine.
pub(crate) fn check_fit_for_a_token(uri: &str) -> Result<(), LakeError> {
    let Some(tls) = TlsSettings::from_uri(uri)? else { return Ok(()) };
    let loopback = tls.host == "localhost" || tls.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback || tls.mode.verifies() {
        return Ok(());
    }
    Err(LakeError::Config(format!(
        "--catalog-auth entra sends a token as the password; sslmode={} does not check the server's certificate: use sslmode=verify-full",
        tls.mode.name()
    )))
}

/// A failed connection to the catalog database, said so a person can act on it. TLS refusals and
/// certificates that do not verify are configuration (retrying cannot help); the rest may pass.
pub(crate) fn connect_error(uri: &str, error: sqlx::Error) -> LakeError {
    let mode = TlsSettings::from_uri(uri).ok().flatten().map_or("prefer", |s| s.mode.name());
    let tls = |e: &dyn std::fmt::Display| {
        LakeError::Config(format!(
            "catalog database TLS (sslmode={mode}): {e}; the server's certificate must chain to sslrootcert (or Mozilla's roots) \
             and, with verify-full, name the host in the URI"
        ))
    };
    match &error {
        sqlx::Error::Tls(e) => tls(e),
        // A certificate rustls refused surfaces as an I/O error of the handshake.
        sqlx::Error::Io(e) if e.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) => tls(e),
        sqlx::Error::Database(db) => {
            let message = db.message().to_ascii_lowercase();
            let demands_tls = message.contains("no encryption")
                || message.contains("ssl connection is required")
                || message.contains("ssl off")
                || message.contains("secure transport");
            if demands_tls {
                LakeError::Config(format!(
                    "the catalog database requires TLS and this connection has none (sslmode={mode}): {}; add sslmode=verify-full \
                     (with sslrootcert=<CA file> for a private CA) to the catalog URI",
                    db.message()
                ))
            } else {
                sql_error(error)
            }
        }
        _ => sql_error(error),
    }
}

fn sql_error(error: sqlx::Error) -> LakeError {
    LakeError::iceberg("connecting to the catalog database")(
        iceberg::Error::new(iceberg::ErrorKind::Unexpected, format!("catalog database: {error}")).with_retryable(true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_says_the_mode_and_the_roots() {
        let s = TlsSettings::from_uri("postgres://u@db.example.com/cat?sslmode=verify-full&sslrootcert=/etc/ca.pem").unwrap().unwrap();
        assert_eq!((s.host.as_str(), s.port, s.mode, s.root_cert.as_deref()), ("db.example.com", 5432, SslMode::VerifyFull, Some("/etc/ca.pem")));
        let s = TlsSettings::from_uri("postgresql://u@127.0.0.1:6543/test").unwrap().unwrap();
        assert_eq!((s.port, s.mode), (6543, SslMode::Prefer), "libpq's default is prefer");
        assert!(TlsSettings::from_uri("sqlite:///tmp/x.db").unwrap().is_none());
        assert!(TlsSettings::from_uri("postgres://u@localhost/db?host=/var/run/postgresql").unwrap().is_none(), "a Unix socket has no TLS");
        let error = TlsSettings::from_uri("postgres://u@h/db?sslmode=strict").unwrap_err();
        assert!(error.to_string().contains("sslmode=strict"), "{error}");
    }

    #[test]
    fn a_token_goes_only_where_the_certificate_is_checked() {
        assert!(check_fit_for_a_token("postgres://app@db.example.com/cat?sslmode=verify-full").is_ok());
        let error = check_fit_for_a_token("postgres://app@db.example.com/cat?sslmode=require").unwrap_err();
        assert!(error.to_string().contains("sslmode=require") && !error.is_retryable(), "{error}");
        assert!(check_fit_for_a_token("postgres://app@db.example.com/cat").is_err(), "prefer is the default");
        assert!(check_fit_for_a_token("postgres://app@127.0.0.1:5432/test").is_ok(), "a server on this machine");
    }

    #[test]
    fn only_verify_full_with_a_clean_certificate_counts_as_verified() {
        let settings = TlsSettings { host: "h".into(), port: 5432, mode: SslMode::Require, root_cert: None };
        let cert = ServerCertificate { subject: "CN=h".into(), issuer: "CN=ca".into(), not_after: "2030".into(), sha256: "AB".into(), problem: None };
        let report = TlsReport { settings: settings.clone(), protocol: Some("TLS 1.3".into()), certificate: Some(cert.clone()) };
        assert!(!report.verified());
        assert!(report.describe().contains("this mode checks nothing"), "{}", report.describe());
        let full = TlsReport { settings: TlsSettings { mode: SslMode::VerifyFull, ..settings }, ..report };
        assert!(full.verified());
        assert!(full.describe().contains("verified for host h against Mozilla's roots"), "{}", full.describe());
    }
}
