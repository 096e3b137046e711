//! XFR over TLS (XoT, RFC 9103) in both directions against BIND 9.18:
//!
//! - BIND as an XoT primary (its `tls` block and `listen-on ... tls`):
//!   secondary53 takes the zone over TLS only (the SOA queries too; BIND's
//!   TLS port has no UDP, so a clear-text fallback could not work), with
//!   TSIG, follows a change by NOTIFY (UDP) and IXFR over TLS, and refuses
//!   a primary whose certificate has another name or another key (pin);
//! - BIND as a secondary pulling from secondary53's `listen_tls` with
//!   `primaries { ... key K tls T; }` (strict TLS: `ca-file`,
//!   `remote-hostname`), where `allow_transfer` requires TLS: the same
//!   request in clear text is refused.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::bind_secondary::BindSecondary;
use common::tls::{SERVER_NAME, TestPki};
use common::{
    Bind, BindOptions, Secondary, assert_zones_equal, dig, dig_axfr, free_port, metric_sum,
    parse_soa_serial, poll_until, query_serial, wait_until, zone_dump,
};

const ZONE: &str = "example.com";
const KEY: (&str, &str, &str) = (
    "xfer",
    "hmac-sha256",
    "c2VjcmV0LWtleS1mb3ItdGhlLXRlc3RzLTAxMjM0NTY=",
);
const SERIAL: u32 = 2_026_112_901;

fn zone_text(zone: &str, serial: u32, www: &str) -> String {
    format!(
        "$ORIGIN {zone}.\n$TTL 300\n\
         @ 3600 IN SOA ns1.{zone}. hostmaster.{zone}. {serial} 3600 600 86400 300\n\
         @ IN NS ns1\nns1 IN A 127.0.0.1\nwww IN A {www}\nmail IN MX 10 www\n"
    )
}

fn key_table() -> String {
    format!(
        "[[key]]\nname = \"{}\"\nalgorithm = \"{}\"\nsecret = \"{}\"\n\n",
        KEY.0, KEY.1, KEY.2
    )
}

/// Lines of `log` containing every one of `needles`.
fn lines_with<'a>(log: &'a str, needles: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .collect()
}

/// BIND 9.18 primary with a TLS listener (`tls local-tls { cert-file;
/// key-file; }`, `listen-on port T tls local-tls`), transfers only with the
/// TSIG key, NOTIFY to `notify_port`. Returns it and its TLS port.
fn bind_xot_primary(pki: &TestPki, notify_port: u16) -> (Bind, u16) {
    let tls_port = free_port();
    let bind = Bind::start(BindOptions {
        tsig: Some((KEY.0.into(), KEY.1.into(), KEY.2.into())),
        require_tsig_for_transfer: true,
        notify_to: vec![notify_port],
        sign_notify: true,
        extra_options: format!("    listen-on port {tls_port} tls local-tls {{ 127.0.0.1; }};\n"),
        extra_config: format!(
            "tls local-tls {{ cert-file \"{}\"; key-file \"{}\"; }};\n",
            pki.path("leaf.pem").display(),
            pki.path("leaf.key").display()
        ),
        ..BindOptions::new(ZONE, zone_text(ZONE, SERIAL, "192.0.2.80"))
    });
    (bind, tls_port)
}

/// RFC 9103 in: BIND serves the zone over TLS; secondary53, configured with
/// a `[[tls]]` profile (CA file and server name) and TSIG, takes it by
/// AXFR, then a change by NOTIFY and IXFR, all over TLS; transfers count
/// under `transport="tls"`.
#[test]
fn bind_xot_primary_to_secondary53_with_tsig() {
    let pki = TestPki::new();
    let port = free_port();
    let metrics = free_port();
    let (bind, tls_port) = bind_xot_primary(&pki, port);
    let dir = tempfile::Builder::new()
        .prefix("sec53-xot-")
        .tempdir()
        .unwrap();
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"127.0.0.1:{metrics}\"\n\n{}\
         [[tls]]\nname = \"xot\"\nca_file = \"{}\"\nserver_name = \"{SERVER_NAME}\"\n\n\
         [[zone]]\nname = \"{ZONE}\"\nprimaries = [\"127.0.0.1:{tls_port} tls xot\"]\nkey = \"{}\"\n\
         connect_timeout = 3\nmessage_timeout = 5\n",
        dir.path().join("var").display(),
        key_table(),
        pki.path("ca.pem").display(),
        KEY.0
    );
    let sec = Secondary::start(dir.path(), &config);
    wait_until(
        "secondary53 serves the zone taken over TLS",
        Duration::from_secs(20),
        || query_serial(port, ZONE) == Some(SERIAL),
    );
    let log = sec.log();
    let first = lines_with(&log, &["transfer committed", "transport=\"tls\""]);
    assert_eq!(first.len(), 1, "one transfer over TLS: {log}");
    assert!(first[0].contains("kind=\"AXFR\""), "{}", first[0]);

    // A change at BIND: NOTIFY (UDP), SOA query and IXFR over TLS.
    bind.update("update add new.example.com. 300 IN A 192.0.2.99");
    let serial = bind.soa_serial();
    assert!(serial != SERIAL, "BIND bumped its serial");
    wait_until(
        "secondary53 follows the change over TLS",
        Duration::from_secs(20),
        || query_serial(port, ZONE) == Some(serial),
    );
    let log = sec.log();
    let ixfr = lines_with(
        &log,
        &["transfer committed", "transport=\"tls\"", "kind=\"IXFR\""],
    );
    assert_eq!(ixfr.len(), 1, "the change came by IXFR over TLS: {log}");
    assert!(
        lines_with(&log, &["transfer committed", "transport=\"tcp\""]).is_empty(),
        "nothing in clear text: {log}"
    );
    assert_zones_equal(ZONE, &bind.axfr(), &zone_dump(&sec, ZONE));

    let m = common::net::scrape(metrics).expect("scrape the metrics endpoint");
    assert_eq!(
        metric_sum(
            &m,
            "secondary53_transfers_by_transport_total",
            &["direction=\"in\"", "transport=\"tls\""]
        ),
        2.0
    );
}

/// A primary whose certificate does not carry `server_name`, or whose key is
/// not the pinned one, is not used: the log names the reason, and the next
/// primary (authenticated by its pin alone) serves the zone.
#[test]
fn name_or_pin_mismatch_fails_over_to_the_pinned_primary() {
    let pki = TestPki::new();
    let port = free_port();
    let metrics = free_port();
    let (bind, tls_port) = bind_xot_primary(&pki, free_port());
    // BIND allows transfers with the key only: sign with it here too. The
    // pinned profile has no CA and no server name.
    let dir = tempfile::Builder::new()
        .prefix("sec53-xot-")
        .tempdir()
        .unwrap();
    let bad_pin = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nmetrics = \"127.0.0.1:{metrics}\"\n\n{}\
         [[tls]]\nname = \"wrong-name\"\nca_file = \"{ca}\"\nserver_name = \"other.example\"\n\n\
         [[tls]]\nname = \"wrong-pin\"\npin_sha256 = \"{bad_pin}\"\n\n\
         [[tls]]\nname = \"pinned\"\npin_sha256 = [\"{bad_pin}\", \"{pin}\"]\n\n\
         [[zone]]\nname = \"{ZONE}\"\nkey = \"{}\"\n\
         primaries = [\"127.0.0.1:{tls_port} tls wrong-name\", \"127.0.0.1:{tls_port} tls wrong-pin\", \"127.0.0.1:{tls_port} tls pinned\"]\n\
         connect_timeout = 3\nmessage_timeout = 5\n",
        dir.path().join("var").display(),
        key_table(),
        KEY.0,
        ca = pki.path("ca.pem").display(),
        pin = pki.pin(),
    );
    let sec = Secondary::start(dir.path(), &config);
    wait_until(
        "secondary53 serves the zone from the pinned primary",
        Duration::from_secs(30),
        || query_serial(port, ZONE) == Some(SERIAL),
    );
    let log = sec.log();
    assert!(
        !lines_with(
            &log,
            &["TLS profile wrong-name", "certificate name mismatch"]
        )
        .is_empty(),
        "name mismatch logged: {log}"
    );
    assert!(
        !lines_with(&log, &["TLS profile wrong-pin", "pin mismatch"]).is_empty(),
        "pin mismatch logged: {log}"
    );
    assert_eq!(
        lines_with(&log, &["transfer committed", "transport=\"tls\""]).len(),
        1,
        "{log}"
    );
    assert_zones_equal(ZONE, &bind.axfr(), &zone_dump(&sec, ZONE));
    let m = common::net::scrape(metrics).expect("scrape the metrics endpoint");
    for reason in ["name_mismatch", "pin_mismatch"] {
        assert!(
            metric_sum(
                &m,
                "secondary53_tls_failures_total",
                &[&format!("reason=\"{reason}\"")]
            ) >= 1.0,
            "{reason} counted"
        );
    }
}

/// RFC 9103 out: secondary53 serves a zone on `listen_tls`; a BIND 9.18
/// secondary pulls it over TLS with TSIG (AXFR, then IXFR after NOTIFY);
/// `allow_transfer = ["127.0.0.1 key xfer tls"]` refuses the same signed
/// request in clear text; queries are answered over TLS too (`dig +tls`).
#[test]
fn bind_secondary_pulls_from_secondary53_over_tls() {
    let pki = TestPki::new();
    let port = free_port();
    let tls_port = free_port();
    let bind_port = free_port();
    let dir = tempfile::Builder::new()
        .prefix("sec53-xot-out-")
        .tempdir()
        .unwrap();
    let zone_path = dir.path().join("example.com.zone");
    fs::write(&zone_path, zone_text(ZONE, SERIAL, "192.0.2.80")).unwrap();
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\
         listen_tls = [\"127.0.0.1:{tls_port}\"]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n\n{}\
         [[zone]]\nname = \"{ZONE}\"\nfile = \"{}\"\n\
         allow_transfer = [\"127.0.0.1 key {} tls\"]\nalso_notify = [\"127.0.0.1:{bind_port}\"]\nnotify_key = \"{}\"\n",
        dir.path().join("var").display(),
        pki.path("leaf.pem").display(),
        pki.path("leaf.key").display(),
        key_table(),
        zone_path.display(),
        KEY.0,
        KEY.0,
    );
    let mut sec = Secondary::start(dir.path(), &config);
    sec.wait_for_log("zone file loaded", Duration::from_secs(10));

    // Queries over TLS (RFC 7858), checked by BIND's dig against the CA.
    let tls_port_s = tls_port.to_string();
    let ca = pki.path("ca.pem").display().to_string();
    let over_tls = dig(&[
        "@127.0.0.1",
        "-p",
        &tls_port_s,
        "+tls",
        &format!("+tls-ca={ca}"),
        &format!("+tls-hostname={SERVER_NAME}"),
        ZONE,
        "SOA",
        "+short",
    ]);
    assert_eq!(
        parse_soa_serial(&over_tls),
        Some(SERIAL),
        "dig +tls: {over_tls}"
    );

    // The signed AXFR in clear text is refused: the entry requires TLS.
    let key = (KEY.0.to_string(), KEY.1.to_string(), KEY.2.to_string());
    let clear = dig_axfr(port, ZONE, Some(&key));
    assert!(clear.is_err(), "clear-text AXFR must be refused: {clear:?}");
    sec.wait_for_log(
        "transfer refused: not in allow_transfer",
        Duration::from_secs(5),
    );

    let mut bind = BindSecondary::start_with_tls(
        bind_port,
        tls_port,
        ZONE,
        Some(key),
        Some((&pki.path("ca.pem"), SERVER_NAME)),
    );
    bind.wait_serial(SERIAL, Duration::from_secs(30));
    assert!(
        !lines_with(&sec.log(), &["transfer out", "tls=true"]).is_empty(),
        "the transfer out went over TLS: {}",
        sec.log()
    );

    // A change: NOTIFY to BIND, IXFR over TLS.
    let tmp = zone_path.with_extension("tmp");
    fs::write(&tmp, zone_text(ZONE, SERIAL + 1, "192.0.2.81")).unwrap();
    fs::rename(&tmp, &zone_path).unwrap();
    let (ok, out, err) = sec.cli(&["zone", "reload", ZONE]);
    assert!(ok, "zone reload: {out}{err}");
    bind.wait_serial(SERIAL + 1, Duration::from_secs(30));
    assert!(
        poll_until(Duration::from_secs(5), || !lines_with(
            &sec.log(),
            &["transfer out", "tls=true", "kind=Ixfr"]
        )
        .is_empty()),
        "IXFR out over TLS: {}",
        sec.log()
    );
    assert_zones_equal(ZONE, &bind.axfr(), &zone_dump(&sec, ZONE));
}

/// An AXFR request for `zone` (id 0x5353, no EDNS), TCP-framed.
fn axfr_request(zone: &str) -> Vec<u8> {
    let mut m = vec![0x53, 0x53, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in zone.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 252, 0, 1]);
    let mut framed = (m.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&m);
    framed
}

/// Sends an AXFR over TLS to 127.0.0.1:`port`, offering `alpn`; returns
/// the RCODE of the first answer.
fn axfr_rcode_over_tls(port: u16, ca: &std::path::Path, alpn: &[&[u8]]) -> u8 {
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    let name = rustls::pki_types::ServerName::try_from(SERVER_NAME).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(&axfr_request(ZONE)).unwrap();
    tls.flush().unwrap();
    let mut len = [0u8; 2];
    tls.read_exact(&mut len).unwrap();
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tls.read_exact(&mut msg).unwrap();
    assert_eq!(&msg[..2], &[0x53, 0x53], "the answer to our request");
    msg[3] & 0x0f
}

/// RFC 9103 section 7.1: a transfer over TLS needs ALPN "dot" (as BIND
/// checks): the same request without ALPN is REFUSED, with it answered.
#[test]
fn transfer_over_tls_needs_alpn_dot() {
    let pki = TestPki::new();
    let port = free_port();
    let tls_port = free_port();
    let dir = tempfile::Builder::new()
        .prefix("sec53-xot-alpn-")
        .tempdir()
        .unwrap();
    let zone_path = dir.path().join("example.com.zone");
    fs::write(&zone_path, zone_text(ZONE, SERIAL, "192.0.2.80")).unwrap();
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\
         listen_tls = [\"127.0.0.1:{tls_port}\"]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n\n\
         [[zone]]\nname = \"{ZONE}\"\nfile = \"{}\"\nallow_transfer = [\"127.0.0.1 tls\"]\n",
        dir.path().join("var").display(),
        pki.path("leaf.pem").display(),
        pki.path("leaf.key").display(),
        zone_path.display(),
    );
    let mut sec = Secondary::start(dir.path(), &config);
    sec.wait_for_log("zone file loaded", Duration::from_secs(10));
    let ca = pki.path("ca.pem");
    assert_eq!(
        axfr_rcode_over_tls(tls_port, &ca, &[b"dot"]),
        0,
        "NOERROR with ALPN dot"
    );
    assert_eq!(
        axfr_rcode_over_tls(tls_port, &ca, &[]),
        5,
        "REFUSED without ALPN"
    );
    sec.wait_for_log("transfer refused: TLS without ALPN", Duration::from_secs(5));
}
