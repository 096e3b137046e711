//! Certificates for TLS tests, made by `openssl` in a temp dir: a CA, and
//! a leaf for `primary.example` and 127.0.0.1 signed by it (EC P-256,
//! server and client use), with its SPKI pin (RFC 7858 section 4.2).

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// The name in the test certificates.
pub const SERVER_NAME: &str = "primary.example";

/// A CA and one leaf certificate.
pub struct TestPki {
    dir: TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestPki {
    /// Makes the CA (`ca.pem`) and the leaf (`leaf.pem`, `leaf.key`).
    pub fn new() -> TestPki {
        let dir = tempfile::Builder::new()
            .prefix("pki-")
            .tempdir()
            .expect("temp dir for certificates");
        let d = dir.path();
        std::fs::write(
            d.join("pki.cnf"),
            format!(
                "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {SERVER_NAME}\n\
                 [ca_ext]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
                 subjectKeyIdentifier = hash\n\
                 [leaf_ext]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n\
                 extendedKeyUsage = serverAuth,clientAuth\n\
                 subjectAltName = DNS:{SERVER_NAME},IP:127.0.0.1\n"
            ),
        )
        .expect("write pki.cnf");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut a = vec![
            "req",
            "-x509",
            "-config",
            "pki.cnf",
            "-extensions",
            "ca_ext",
        ];
        a.extend(ec);
        a.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "30"]);
        openssl(d, &a);
        let mut a = vec!["req", "-new", "-config", "pki.cnf"];
        a.extend(ec);
        a.extend(["-keyout", "leaf.key", "-out", "leaf.csr"]);
        openssl(d, &a);
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "leaf.pem",
                "-days",
                "30",
                "-extfile",
                "pki.cnf",
                "-extensions",
                "leaf_ext",
            ],
        );
        // BIND runs as the test's user but reads keys it finds readable.
        TestPki { dir }
    }

    /// A file of the PKI: `ca.pem`, `leaf.pem`, `leaf.key`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The leaf's pin: base64 SHA-256 of its SubjectPublicKeyInfo.
    pub fn pin(&self) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(
                "openssl x509 -in leaf.pem -pubkey -noout | openssl pkey -pubin -outform der \
                 | openssl dgst -sha256 -binary | openssl base64 -A",
            )
            .current_dir(self.dir.path())
            .output()
            .expect("compute the pin");
        String::from_utf8(out.stdout)
            .expect("base64")
            .trim()
            .to_string()
    }
}
