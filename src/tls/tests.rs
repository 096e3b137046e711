//! Handshakes between the client and server configurations over loopback,
//! with certificates made by `openssl` for each test.

use tokio::net::{TcpListener, TcpStream};

use super::*;

/// The integration tests' certificates (a CA and a leaf for
/// `primary.example` and 127.0.0.1, made by `openssl`), shared here so the
/// two suites test against the same PKI.
#[path = "../../tests/common/tls.rs"]
#[allow(dead_code)]
mod test_pki;

use test_pki::TestPki as Pki;

/// Helpers over the shared PKI for these tests.
trait PkiExt {
    /// The leaf's pin as the shell pipeline of RFC 7858 computes it.
    fn openssl_pin(&self) -> [u8; 32];
    /// A client profile trusting the CA for `primary.example`.
    fn profile(&self) -> TlsProfile;
}

impl PkiExt for Pki {
    fn openssl_pin(&self) -> [u8; 32] {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(self.pin())
            .expect("openssl's pin is base64")
            .try_into()
            .expect("32 bytes of SHA-256")
    }

    fn profile(&self) -> TlsProfile {
        TlsProfile {
            name: "xot".into(),
            ca_file: Some(self.path("ca.pem")),
            server_name: Some(test_pki::SERVER_NAME.into()),
            pin_sha256: Vec::new(),
            cert_file: None,
            key_file: None,
        }
    }
}

/// One TLS server on loopback that accepts a single handshake with
/// `config`; returns its address.
async fn server(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((tcp, _)) = listener.accept().await {
            let _ = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await;
        }
    });
    addr
}

async fn connect(
    profile: &TlsProfile,
    config: Arc<rustls::ServerConfig>,
) -> Result<(), TlsFailure> {
    let addr = server(config).await;
    let client = TlsClient::new(profile).unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    client.connect(tcp, addr).await.map(|_| ())
}

fn listener_config(pki: &Pki) -> Arc<rustls::ServerConfig> {
    server_config(&pki.path("leaf.pem"), &pki.path("leaf.key")).unwrap()
}

#[tokio::test]
async fn ca_and_server_name_authenticate_the_primary() {
    let pki = Pki::new();
    connect(&pki.profile(), listener_config(&pki))
        .await
        .unwrap();
    // Without server_name the address is checked (the certificate has
    // IP:127.0.0.1).
    let mut p = pki.profile();
    p.server_name = None;
    connect(&p, listener_config(&pki)).await.unwrap();
}

#[tokio::test]
async fn wrong_server_name_fails_with_a_name_mismatch() {
    let pki = Pki::new();
    let mut p = pki.profile();
    p.server_name = Some("other.example".into());
    let e = connect(&p, listener_config(&pki)).await.unwrap_err();
    assert_eq!(e, TlsFailure::NameMismatch);
}

#[tokio::test]
async fn another_ca_fails() {
    let pki = Pki::new();
    let other = Pki::new();
    let mut p = pki.profile();
    p.ca_file = Some(other.path("ca.pem"));
    let e = connect(&p, listener_config(&pki)).await.unwrap_err();
    assert_eq!(e, TlsFailure::UnknownIssuer);
}

/// RFC 7858 section 4.2: the pin is the SHA-256 of the SubjectPublicKeyInfo,
/// as openssl computes it; the right pin alone authenticates, a wrong one
/// fails even with a good CA.
#[tokio::test]
async fn spki_pin_matches_openssl_and_is_enforced() {
    let pki = Pki::new();
    let cert = CertificateDer::from_pem_file(pki.path("leaf.pem")).unwrap();
    let pin = spki_sha256(&cert).unwrap();
    assert_eq!(pin, pki.openssl_pin());

    let mut p = pki.profile();
    p.ca_file = None;
    p.server_name = None;
    p.pin_sha256 = vec![[1; 32], pin];
    connect(&p, listener_config(&pki)).await.unwrap();

    let mut p = pki.profile();
    p.pin_sha256 = vec![[1; 32]];
    let e = connect(&p, listener_config(&pki)).await.unwrap_err();
    assert!(matches!(e, TlsFailure::PinMismatch(_)), "{e}");
}

/// RFC 9103 section 7.1: a primary that does not select ALPN "dot" is not
/// used.
#[tokio::test]
async fn primary_without_alpn_dot_is_refused() {
    let pki = Pki::new();
    let mut config = (*listener_config(&pki)).clone();
    config.alpn_protocols.clear();
    let e = connect(&pki.profile(), Arc::new(config)).await.unwrap_err();
    assert_eq!(e, TlsFailure::NoAlpn);
}

#[test]
fn unreadable_files_name_profile_and_path() {
    let pki = Pki::new();
    let mut p = pki.profile();
    p.ca_file = Some(pki.path("missing.pem"));
    let e = TlsClient::new(&p).unwrap_err().to_string();
    assert!(
        e.contains("xot") && e.contains("ca_file") && e.contains("missing.pem"),
        "{e}"
    );
    let e = server_config(&pki.path("leaf.pem"), &pki.path("leaf.csr"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("key_file") && e.contains("leaf.csr"), "{e}");
    // A key that is not the certificate's.
    let e = server_config(&pki.path("leaf.pem"), &pki.path("ca.key"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("tls_cert_file and tls_key_file"), "{e}");
}

/// Mutual TLS: with `cert_file` and `key_file` the client presents its
/// certificate to a primary that requires one; without them the primary
/// refuses the handshake.
#[tokio::test]
async fn client_certificate_is_presented_when_configured() {
    let pki = Pki::new();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.path("ca.pem")).unwrap())
        .unwrap();
    let client_verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_file(pki.path("leaf.pem")).unwrap()],
            PrivateKeyDer::from_pem_file(pki.path("leaf.key")).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![ALPN_DOT.to_vec()];
    let config = Arc::new(config);

    for with_cert in [false, true] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            acceptor.accept(tcp).await.map(|_| ())
        });
        let mut p = pki.profile();
        if with_cert {
            p.cert_file = Some(pki.path("leaf.pem"));
            p.key_file = Some(pki.path("leaf.key"));
        }
        let client = TlsClient::new(&p).unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        // TLS 1.3: the client finishes before the server has checked its
        // certificate; the server's side tells.
        let _ = client.connect(tcp, addr).await;
        let accepted = server.await.unwrap();
        assert_eq!(
            accepted.is_ok(),
            with_cert,
            "with_cert={with_cert}: {accepted:?}"
        );
    }
}
