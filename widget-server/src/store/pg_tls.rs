//! TLS to PostgreSQL, shared by every connection the server makes to a `postgres://` URL (the
//! vote store's pool, the console's pool, the tools).
//!
//! tokio-postgres knows only `sslmode=disable|prefer|require` and rejects any other parameter,
//! while operators write URLs for libpq, with `verify-ca`, `verify-full` and `sslrootcert`. So
//! [`connect_config`] takes those two parameters out of the URL's query itself, hands the rest
//! to tokio-postgres, and builds a rustls client configuration that behaves like libpq:
//!
//! | `sslmode`          | TLS                          | server certificate                         |
//! |--------------------|------------------------------|--------------------------------------------|
//! | `disable`          | never                        | —                                          |
//! | `prefer` (default) | if the server offers it      | not checked, unless `sslrootcert` is given  |
//! | `require`          | mandatory                    | not checked, unless `sslrootcert` is given  |
//! | `verify-ca`        | mandatory                    | chain checked against `sslrootcert`        |
//! | `verify-full`      | mandatory                    | chain and host name checked                |
//!
//! As in libpq, a `sslrootcert` given with `prefer` or `require` makes the chain checked (as
//! `verify-ca`). Unlike libpq there is no implicit `~/.postgresql/root.crt` and no
//! `sslrootcert=system`: `verify-ca`/`verify-full` without a `sslrootcert` file is refused with a
//! message saying so, rather than trusting a bundle of public web authorities that a database
//! server's certificate is rarely signed by.
//!
//! Only the URL form (`postgres://…?sslmode=…&sslrootcert=…`) is read this way; a key=value
//! connection string goes to tokio-postgres unchanged (so it knows `disable|prefer|require`
//! only). The crypto provider is ring, the one rustls already uses here for SMTP.

use std::path::Path;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode as PgSslMode;

use super::StoreError;

/// The `MakeTlsConnect` of every PostgreSQL connection (also with `sslmode=disable`, where
/// tokio-postgres never calls it), so that one pool type serves every mode.
pub type Tls = tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values (`allow` is not supported: it is only useful to servers that
/// refuse TLS to some clients, and tokio-postgres cannot retry without TLS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// Parses a `sslmode` value; the error names it and lists the accepted ones.
    pub fn parse(value: &str) -> Result<SslMode, StoreError> {
        match value {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(StoreError::Tls(format!(
                "sslmode {other:?} in the database URL is not one of disable, prefer, require, verify-ca, verify-full"
            ))),
        }
    }

    /// What tokio-postgres is told: whether TLS is off, tried or mandatory.
    fn negotiation(self) -> PgSslMode {
        match self {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
        }
    }
}

/// The TLS parameters of a database URL, and the URL without them.
#[derive(Debug, PartialEq, Eq)]
struct TlsParams {
    /// `None` when the URL does not say (or is not a URL): tokio-postgres' own reading stands.
    mode: Option<SslMode>,
    root_cert: Option<String>,
    /// The URL for tokio-postgres: `sslmode` and `sslrootcert` taken out.
    rest: String,
}

/// Takes `sslmode` and `sslrootcert` out of the query of a `postgres://` URL. Other strings go
/// through untouched (tokio-postgres reads their `sslmode` itself).
fn split_tls_params(url: &str) -> Result<TlsParams, StoreError> {
    let mut params = TlsParams { mode: None, root_cert: None, rest: url.to_string() };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok(params);
    }
    // The query starts at the first '?' after the user info, which may hold a '?' of its own.
    let authority_start = url.rfind('@').unwrap_or(0);
    let Some(q) = url[authority_start..].find('?').map(|i| authority_start + i) else { return Ok(params) };
    let mut kept = Vec::new();
    for pair in url[q + 1..].split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || percent_decode_str(value).decode_utf8_lossy().into_owned();
        match key {
            "sslmode" => params.mode = Some(SslMode::parse(&value())?),
            "sslrootcert" => params.root_cert = Some(value()),
            _ => kept.push(pair),
        }
    }
    params.rest = if kept.is_empty() { url[..q].to_string() } else { format!("{}?{}", &url[..q], kept.join("&")) };
    Ok(params)
}

/// Parses `url` for tokio-postgres and builds the TLS connector its `sslmode` and
/// `sslrootcert` ask for (see the module documentation). Errors name the faulty parameter or
/// file, never the password.
pub fn connect_config(url: &str) -> Result<(tokio_postgres::Config, Tls), StoreError> {
    let params = split_tls_params(url)?;
    let mut config: tokio_postgres::Config = params.rest.parse()?;
    let mode = match params.mode {
        Some(mode) => {
            config.ssl_mode(mode.negotiation());
            mode
        }
        None => match config.get_ssl_mode() {
            PgSslMode::Disable => SslMode::Disable,
            PgSslMode::Require => SslMode::Require,
            _ => SslMode::Prefer,
        },
    };
    let tls = client_config(mode, params.root_cert.as_deref())?;
    Ok((config, tokio_postgres_rustls::MakeRustlsConnect::new(tls)))
}

/// Opens one connection to `url` (its connection task spawned on the current runtime) and
/// returns the client. For the tools and tests; the stores use pools.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, StoreError> {
    let (config, tls) = connect_config(url)?;
    let (client, connection) = config.connect(tls).await.map_err(connect_error)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %error_chain(&e), "connection to PostgreSQL lost");
        }
    });
    Ok(client)
}

/// Makes and closes one connection, so that a pool about to be built fails now with the real
/// reason (a certificate refused, a password wrong) rather than later with bb8's "timed out
/// waiting for a connection", which is all a failing pool tells its callers.
pub async fn probe(config: &tokio_postgres::Config, tls: &Tls) -> Result<(), StoreError> {
    let (client, connection) = config.connect(tls.clone()).await.map_err(connect_error)?;
    drop(client);
    // With the client gone the connection closes; what it says then does not matter.
    let _ = connection.await;
    Ok(())
}

/// A failed connection, with every cause: tokio-postgres' own message is only "error performing
/// TLS handshake" or "db error"; what the operator needs (the certificate refused and why, the
/// server's FATAL message) is in its sources.
fn connect_error(e: tokio_postgres::Error) -> StoreError {
    StoreError::Connect(error_chain(&e))
}

/// `e` and its sources, joined by ": ", a source left out when its text is already there (an
/// `io::Error` shows the error it wraps, which is also its source).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.ends_with(&part) {
            text = format!("{text}: {part}");
        }
        source = cause.source();
    }
    text
}

/// Logs why a pool could not connect (bb8 retries until its timeout and then reports only the
/// timeout): a certificate that expired or a server that stopped offering TLS shows in the log.
#[derive(Debug, Clone, Copy)]
pub struct LogErrors(pub &'static str);

impl bb8::ErrorSink<tokio_postgres::Error> for LogErrors {
    fn sink(&self, error: tokio_postgres::Error) {
        tracing::warn!(pool = self.0, error = %error_chain(&error), "PostgreSQL connection failed");
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<tokio_postgres::Error>> {
        Box::new(*self)
    }
}

/// The rustls configuration for `mode`, checking the server's certificate against the
/// authorities of `root_cert` (a PEM file) when given.
fn client_config(mode: SslMode, root_cert: Option<&str>) -> Result<ClientConfig, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Tls(format!("rustls: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, root_cert) {
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            return Err(StoreError::Tls(format!(
                "sslmode={} needs sslrootcert=/path/to/ca.pem in the database URL (the authority that signed the \
                 server's certificate)",
                if mode == SslMode::VerifyCa { "verify-ca" } else { "verify-full" }
            )))
        }
        (SslMode::Disable, _) | (SslMode::Prefer | SslMode::Require, None) => Arc::new(AnyCertificate(provider)),
        (SslMode::VerifyFull, Some(path)) => webpki_verifier(path, provider)?,
        (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, Some(path)) => {
            Arc::new(ChainOnly(webpki_verifier(path, provider)?))
        }
    };
    Ok(builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth())
}

/// rustls' standard verifier (chain, validity dates, host name) with the authorities of `path`.
fn webpki_verifier(path: &str, provider: Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, StoreError> {
    let roots = load_roots(Path::new(path))?;
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| StoreError::Tls(format!("sslrootcert {path}: {e}")))
}

/// The certificates of a PEM file; an error naming the file if it cannot be read or holds none.
fn load_roots(path: &Path) -> Result<RootCertStore, StoreError> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| StoreError::Tls(format!("cannot read sslrootcert {shown}: {e}")))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| StoreError::Tls(format!("sslrootcert {shown}: not a valid PEM file: {e}")))?;
        roots.add(cert).map_err(|e| StoreError::Tls(format!("sslrootcert {shown}: invalid certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(StoreError::Tls(format!("sslrootcert {shown} holds no PEM certificate")));
    }
    Ok(roots)
}

/// `prefer`/`require` without `sslrootcert`: encrypted, but any certificate is accepted, as
/// libpq does without a root certificate. The handshake's signatures are still checked, so the
/// peer does hold the key of the certificate it shows.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
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
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to `sslrootcert`, whatever name the certificate is for.
/// webpki checks the name last, after the chain and the dates, so a name error alone means
/// everything else was valid.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_params_are_taken_out_of_the_query() {
        let p = split_tls_params(
            "postgres://u:p@localhost:5432/db?application_name=x&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .unwrap();
        assert_eq!(p.mode, Some(SslMode::VerifyFull));
        assert_eq!(p.root_cert.as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(p.rest, "postgres://u:p@localhost:5432/db?application_name=x");
        let p = split_tls_params("postgresql://h/db?sslmode=disable").unwrap();
        assert_eq!((p.mode, p.rest.as_str()), (Some(SslMode::Disable), "postgresql://h/db"));
        let p = split_tls_params("postgres://u:a?b@h/db").unwrap();
        assert_eq!((p.mode, p.rest.as_str()), (None, "postgres://u:a?b@h/db"));
    }

    /// The error of `connect_config(url)`, which must fail.
    fn config_error(url: &str) -> String {
        match connect_config(url) {
            Ok(_) => panic!("{url} should be refused"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_name_the_faulty_setting_and_not_the_password() {
        let e = config_error("postgres://u:secret@h/db?sslmode=verify_full");
        assert!(e.contains("\"verify_full\"") && e.contains("verify-full") && !e.contains("secret"), "{e}");
        let e = config_error("postgres://u:secret@h/db?sslmode=verify-full");
        assert!(e.contains("needs sslrootcert") && !e.contains("secret"), "{e}");
        let e = config_error("postgres://h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem");
        assert!(e.contains("cannot read sslrootcert /nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("empty.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        let e = config_error(&format!("postgres://h/db?sslmode=require&sslrootcert={}", file.display()));
        assert!(e.contains("holds no PEM certificate") && e.contains("empty.pem"), "{e}");
    }

    #[test]
    fn modes_map_to_tokio_postgres_negotiation() {
        let (config, _) = connect_config("postgres://h/db?sslmode=require").unwrap();
        assert_eq!(config.get_ssl_mode(), PgSslMode::Require);
        let (config, _) = connect_config("postgres://h/db").unwrap();
        assert_eq!(config.get_ssl_mode(), PgSslMode::Prefer);
        let (config, _) = connect_config("postgres://h/db?sslmode=disable").unwrap();
        assert_eq!(config.get_ssl_mode(), PgSslMode::Disable);
    }
}
