//! DNS zone transfer over TLS (XoT, RFC 9103): the rustls configurations of
//! both sides, built from the `[[tls]]` tables and `[server] tls_*` files.
//!
//! - **Client** (transfers in, and the SOA queries before them): TLS 1.3
//!   only, ALPN `dot` offered and required back (RFC 9103 section 7.1), the
//!   primary authenticated by a CA file and name ([`TlsProfile::ca_file`],
//!   [`TlsProfile::server_name`]), by a pinned key ([`TlsProfile::pin_sha256`],
//!   the base64 SHA-256 of its SubjectPublicKeyInfo, as RFC 7858 section
//!   4.2 pins), or both. Never unauthenticated, never a fallback to clear
//!   text: a failed handshake fails the SOA query or the transfer.
//!   Optionally a client certificate (mutual TLS).
//! - **Server** (`[server] listen_tls`): TLS 1.3 only, ALPN `dot`; queries
//!   and transfers as over TCP. A transfer needs ALPN `dot` negotiated.
//!
//! One crypto provider, aws-lc-rs: the one the AWS SDK's rustls uses.
//!
//! Limitations: no client certificates are asked for by the server (no
//! mutual TLS on `listen_tls`), no session resumption tickets are kept by
//! the client, and certificates are read when a zone loads (a reload picks
//! up new files; a running connection keeps its own).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::SignatureScheme;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use crate::config::TlsProfile;

/// The ALPN token of DNS over TLS, which XoT uses (RFC 9103 section 7.1).
pub const ALPN_DOT: &[u8] = b"dot";

/// A TLS profile or server certificate that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file could not be read or holds nothing
    /// usable.
    #[error("[[tls]] {profile}: {what} {path}: {reason}")]
    File {
        /// The profile (`[server]` for the listener's files).
        profile: String,
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the configuration (a key that does not match the
    /// certificate, a bad CA).
    #[error("[[tls]] {profile}: {reason}")]
    Setup {
        /// The profile.
        profile: String,
        /// What rustls said.
        reason: String,
    },
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read_certs(
    profile: &str,
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::File {
        profile: profile.to_string(),
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM CERTIFICATE in it".into()));
    }
    Ok(certs)
}

fn read_key(profile: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        profile: profile.to_string(),
        what: "key_file",
        path: path.to_path_buf(),
        reason: format!("no usable PEM private key: {e}"),
    })
}

/// The base64 SHA-256 of a certificate's SubjectPublicKeyInfo: its pin
/// (RFC 7858 section 4.2; `openssl x509 -pubkey -noout | openssl pkey
/// -pubin -outform der | openssl dgst -sha256 -binary | base64`).
pub fn spki_sha256(cert: &CertificateDer<'_>) -> Result<[u8; 32], String> {
    let parsed = webpki::EndEntityCert::try_from(cert).map_err(|e| format!("{e:?}"))?;
    let spki = parsed.subject_public_key_info();
    Ok(Sha256::digest(spki.as_ref()).into())
}

/// Checks the primary's certificate: its key against the pins, its chain
/// and name against the CA when one is configured; and the handshake
/// signature always, with the provider's algorithms.
#[derive(Debug)]
struct PrimaryVerifier {
    pins: Vec<[u8; 32]>,
    ca: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PrimaryVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(ca) = &self.ca {
            ca.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        }
        if !self.pins.is_empty() {
            let got = spki_sha256(end_entity).map_err(|e| {
                rustls::Error::General(format!("cannot read the certificate's key: {e}"))
            })?;
            if !self.pins.contains(&got) {
                use base64::Engine;
                return Err(rustls::Error::General(format!(
                    "{PIN_MISMATCH}: the primary's key has SHA-256 {}, not a pin_sha256 of this profile",
                    base64::engine::general_purpose::STANDARD.encode(got)
                )));
            }
        }
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

/// How to reach primaries over TLS: one `[[tls]]` profile, ready to
/// connect.
pub struct TlsClient {
    profile: String,
    config: Arc<rustls::ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("profile", &self.profile)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsClient {
    /// Builds the client side of a profile: reads its CA, certificate and
    /// key files.
    pub fn new(p: &TlsProfile) -> Result<Self, TlsError> {
        let provider = provider();
        let setup = |reason: String| TlsError::Setup {
            profile: p.name.clone(),
            reason,
        };
        let ca = match &p.ca_file {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in read_certs(&p.name, "ca_file", path)? {
                    roots.add(c).map_err(|e| TlsError::File {
                        profile: p.name.clone(),
                        what: "ca_file",
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                }
                Some(
                    rustls::client::WebPkiServerVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider.clone(),
                    )
                    .build()
                    .map_err(|e| setup(e.to_string()))?,
                )
            }
            None => None,
        };
        let verifier = Arc::new(PrimaryVerifier {
            pins: p.pin_sha256.clone(),
            ca,
            provider: provider.clone(),
        });
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| setup(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match (&p.cert_file, &p.key_file) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(
                    read_certs(&p.name, "cert_file", cert)?,
                    read_key(&p.name, key)?,
                )
                .map_err(|e| setup(format!("client certificate: {e}")))?,
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![ALPN_DOT.to_vec()];
        let server_name = match &p.server_name {
            Some(n) => Some(
                ServerName::try_from(n.clone())
                    .map_err(|e| setup(format!("server_name `{n}`: {e}")))?,
            ),
            None => None,
        };
        Ok(TlsClient {
            profile: p.name.clone(),
            config: Arc::new(config),
            server_name,
        })
    }

    /// The profile's name.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// Runs the TLS handshake on `tcp` to `peer`: the certificate is checked
    /// against `server_name` (the peer's address when unset) and the
    /// profile's CA and pins, and the primary must select ALPN `dot`.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, TlsFailure> {
        let name = self
            .server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(peer.ip().into()));
        let stream = tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| handshake_failure(&e))?;
        if stream.get_ref().1.alpn_protocol() != Some(ALPN_DOT) {
            return Err(TlsFailure::NoAlpn);
        }
        Ok(stream)
    }
}

/// Why a TLS connection to a primary failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsFailure {
    /// The certificate does not carry `server_name` (or the address).
    #[error("TLS handshake failed: certificate name mismatch (server_name)")]
    NameMismatch,
    /// The certificate does not chain to the `ca_file`.
    #[error("TLS handshake failed: certificate not signed by the ca_file")]
    UnknownIssuer,
    /// The primary's key is not one of the pins.
    #[error("TLS handshake failed: {0}")]
    PinMismatch(String),
    /// The handshake failed otherwise (protocol version, ALPN refused,
    /// connection closed...).
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    /// The primary did not select ALPN `dot` (RFC 9103 section 7.1).
    #[error("TLS: the primary did not negotiate ALPN \"dot\" (RFC 9103 requires it)")]
    NoAlpn,
}

impl TlsFailure {
    /// A short label, for metrics (`secondary53_tls_failures_total{reason}`).
    pub fn label(&self) -> &'static str {
        match self {
            TlsFailure::NameMismatch => "name_mismatch",
            TlsFailure::UnknownIssuer => "unknown_issuer",
            TlsFailure::PinMismatch(_) => "pin_mismatch",
            TlsFailure::Handshake(_) => "handshake",
            TlsFailure::NoAlpn => "no_alpn",
        }
    }
}

/// A handshake error as a [`TlsFailure`], in words: what rustls found
/// wrong (bad certificate, name mismatch, pin mismatch, no TLS 1.3, no ALPN
/// in common).
fn handshake_failure(e: &std::io::Error) -> TlsFailure {
    use rustls::{AlertDescription, CertificateError, Error};
    match e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
        Some(Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => TlsFailure::NameMismatch,
        // A CA of the same name but another key: BadSignature.
        Some(Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        )) => TlsFailure::UnknownIssuer,
        Some(Error::General(m)) if m.starts_with(PIN_MISMATCH) => {
            TlsFailure::PinMismatch(m.clone())
        }
        Some(Error::AlertReceived(AlertDescription::NoApplicationProtocol)) => {
            TlsFailure::Handshake("the primary refused ALPN \"dot\"".into())
        }
        Some(Error::AlertReceived(AlertDescription::ProtocolVersion)) => {
            TlsFailure::Handshake("the primary does not speak TLS 1.3".into())
        }
        Some(other) => TlsFailure::Handshake(other.to_string()),
        None => TlsFailure::Handshake(e.to_string()),
    }
}

/// How a pin mismatch starts, in the error the verifier returns.
const PIN_MISMATCH: &str = "pin mismatch";

/// The listener side (`[server] listen_tls`): the server certificate chain
/// and key, TLS 1.3, ALPN `dot`.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let profile = "[server]";
    let certs = read_certs(profile, "tls_cert_file", cert_file)?;
    let key = read_key(profile, key_file)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Setup {
            profile: profile.into(),
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Setup {
            profile: profile.into(),
            reason: format!("tls_cert_file and tls_key_file: {e}"),
        })?;
    config.alpn_protocols = vec![ALPN_DOT.to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests;
