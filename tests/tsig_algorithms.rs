//! TSIG with every algorithm of RFC 8945 against real BIND 9, and the
//! checks of sections 5.2 and 5.2.2.1 on the wire.
//!
//! One `named` and one secondary53 hold a pair of zones per algorithm
//! (HMAC-MD5, SHA1, SHA224, SHA256, SHA384, SHA512, and the truncated
//! `hmac-sha256-128`, `hmac-sha1-80`, and a primary sending
//! `hmac-sha512-256` to a key that is not truncated), each pair with its
//! own key:
//!
//! - `pN.test`: BIND primary, transfers only with the key; secondary53 its
//!   secondary: SOA probe, AXFR, then a signed NOTIFY and IXFR after an
//!   update;
//! - `sN.test`: secondary53 primary from a file, transfers only with the
//!   key; BIND its secondary: AXFR, then a signed NOTIFY from secondary53
//!   (BIND's signed answer verified) and IXFR after a reload;
//! - `dig -y` signed queries, answered signed (and NOTAUTH BADSIG with a
//!   wrong secret);
//! - one warning per MD5 or SHA-1 key, however often it is used.
//!
//! Also: a signed NOTIFY for a zone without a key is checked (BADKEY for
//! an unknown key, BADSIG for a bad MAC), and MACs shorter than RFC 8945
//! allows get FORMERR, shorter than the key's own length BADTRUNC.

mod common;

use std::fs;
use std::io::Write;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use base64::Engine;
use common::{Secondary, dig, free_port, query_serial, tool, wait_until};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use secondary53::tsig::{
    Algorithm, ResponseVerifier, TsigKey, find_tsig, parse_key_algorithm, sign_request,
};
use tempfile::TempDir;

/// (algorithm as BIND's key has it, as secondary53's key has it).
const CASES: [(&str, &str); 9] = [
    ("hmac-md5", "hmac-md5"),
    ("hmac-sha1", "hmac-sha1"),
    ("hmac-sha224", "hmac-sha224"),
    ("hmac-sha256", "hmac-sha256"),
    ("hmac-sha384", "hmac-sha384"),
    ("hmac-sha512", "hmac-sha512"),
    ("hmac-sha256-128", "hmac-sha256-128"),
    ("hmac-sha1-80", "hmac-sha1-80"),
    ("hmac-sha512-256", "hmac-sha512"),
];

fn key_name(i: usize) -> String {
    format!("k{i}-{}", CASES[i].1)
}

fn secret(i: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("secret-of-case-{i}-0123456789abcdef"))
}

fn zone_text(origin: &str, serial: u32, extra: &str) -> String {
    format!(
        "$ORIGIN {origin}.\n$TTL 300\n@ IN SOA ns1 hostmaster {serial} 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 127.0.0.1\nwww IN A 192.0.2.1\n{extra}"
    )
}

/// BIND 9 `named` with a configuration of our own, on 127.0.0.1.
struct Named {
    dir: TempDir,
    child: Option<Child>,
}

impl Named {
    /// Writes `files` and `conf` (`@DIR@` standing for its directory) into
    /// a temp dir, starts `named` and waits until it serves `ready_zone`.
    fn start(conf: &str, files: &[(String, String)], port: u16, ready_zone: &str) -> Named {
        let dir = tempfile::Builder::new()
            .prefix("named-tsig-")
            .tempdir()
            .expect("temp dir");
        for (name, text) in files {
            fs::write(dir.path().join(name), text).expect("write zone file");
        }
        let conf = conf.replace("@DIR@", &dir.path().display().to_string());
        let path = dir.path().join("named.conf");
        fs::write(&path, &conf).expect("write named.conf");
        let check = Command::new(tool("named-checkconf"))
            .arg(&path)
            .output()
            .expect("run named-checkconf");
        assert!(
            check.status.success(),
            "named-checkconf rejected:\n{}{}\n{conf}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let log = fs::File::create(dir.path().join("named.log")).expect("named.log");
        let child = Command::new(tool("named"))
            .args(["-g", "-d", "3", "-4", "-n", "1", "-c"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start named");
        let mut named = Named {
            dir,
            child: Some(child),
        };
        wait_until("named serves its zones", Duration::from_secs(20), || {
            if let Some(c) = named.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("named exited ({status}):\n{}", named.log());
            }
            query_serial(port, ready_zone).is_some()
        });
        named
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        if thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- named.log (last 80 lines) ---\n{}",
                lines[lines.len().saturating_sub(80)..].join("\n")
            );
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The configuration of `named`: per case a key, the primary zone `pN`
/// (transfers with the key only, NOTIFY signed to secondary53) and the
/// secondary zone `sN` of secondary53 (pulled with the key).
fn named_conf(port: u16, sec_port: u16) -> String {
    let mut conf = format!(
        r#"options {{
    directory "@DIR@";
    pid-file "@DIR@/named.pid";
    session-keyfile "@DIR@/session.key";
    managed-keys-directory "@DIR@";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    use-v4-udp-ports {{ range 40000 60000; }};
    dnssec-validation no;
    notify-delay 0;
    notify-rate 1000;
    startup-notify-rate 1000;
    serial-query-rate 1000;
    ixfr-from-differences yes;
    allow-transfer {{ none; }};
}};
controls {{ }};
"#
    );
    for (i, (bind_alg, _)) in CASES.iter().enumerate() {
        let k = key_name(i);
        conf.push_str(&format!(
            r#"key "{k}" {{ algorithm {bind_alg}; secret "{s}"; }};
zone "p{i}.test" {{
    type primary;
    file "@DIR@/p{i}.test.db";
    allow-transfer {{ key "{k}"; }};
    allow-update {{ key "{k}"; }};
    notify explicit;
    also-notify {{ 127.0.0.1 port {sec_port} key "{k}"; }};
}};
zone "s{i}.test" {{
    type secondary;
    file "@DIR@/s{i}.test.db";
    primaries {{ 127.0.0.1 port {sec_port} key "{k}"; }};
    notify no;
}};
"#,
            s = secret(i)
        ));
    }
    conf
}

fn sec_conf(dir: &Path, port: u16, named_port: u16) -> String {
    let mut conf = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\n",
        dir.join("var").display()
    );
    for (i, (_, ours)) in CASES.iter().enumerate() {
        conf.push_str(&format!(
            "[[key]]\nname = \"{}\"\nalgorithm = \"{ours}\"\nsecret = \"{}\"\n\n",
            key_name(i),
            secret(i)
        ));
    }
    for i in 0..CASES.len() {
        let k = key_name(i);
        conf.push_str(&format!(
            r#"[[zone]]
name = "p{i}.test"
primaries = ["127.0.0.1:{named_port}"]
key = "{k}"

[[zone]]
name = "s{i}.test"
file = "{file}"
allow_transfer = ["127.0.0.1 key {k}"]
also_notify = ["127.0.0.1:{named_port}"]
notify_key = "{k}"

"#,
            file = dir.join(format!("s{i}.test.zone")).display()
        ));
    }
    conf
}

/// `nsupdate -y` against `named`; panics with its output when it fails.
fn nsupdate(port: u16, key: &str, zone: &str, command: &str) {
    let mut child = Command::new(tool("nsupdate"))
        .args(["-t", "5", "-y", key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nsupdate");
    let script = format!("server 127.0.0.1 {port}\nzone {zone}\n{command}\nsend\n");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write to nsupdate");
    let out = child.wait_with_output().expect("wait for nsupdate");
    assert!(
        out.status.success(),
        "nsupdate failed for {zone}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fields of the TSIG line `dig` prints: (MAC size, error). The MAC is
/// printed in chunks; the error is before the (empty) Other length.
fn dig_tsig(out: &str) -> Option<(usize, String)> {
    let line = out.lines().find(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 4 && f[3] == "TSIG"
    })?;
    let f: Vec<&str> = line.split_whitespace().collect();
    // owner TTL class TSIG algorithm time fudge mac-size mac... id error 0
    let size: usize = f.get(7)?.parse().ok()?;
    let error = f.get(f.len().checked_sub(2)?)?;
    Some((size, error.to_string()))
}

fn logged(log: &str, all: &[&str]) -> bool {
    !lines_with(log, all).is_empty()
}

fn lines_with<'a>(log: &'a str, all: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|l| all.iter().all(|n| l.contains(n)))
        .collect()
}

#[test]
fn every_algorithm_interoperates_with_bind() {
    let dir = tempfile::Builder::new()
        .prefix("sec53-tsig-algs-")
        .tempdir()
        .expect("temp dir");
    let d = dir.path();
    let sec_port = free_port();
    let named_port = free_port();
    for i in 0..CASES.len() {
        fs::write(
            d.join(format!("s{i}.test.zone")),
            zone_text(&format!("s{i}.test"), 1, ""),
        )
        .expect("zone file");
    }
    let mut sec = Secondary::start(d, &sec_conf(d, sec_port, named_port));
    sec.wait_for_log("secondary53 running", Duration::from_secs(20));

    let primary_zones: Vec<(String, String)> = (0..CASES.len())
        .map(|i| {
            (
                format!("p{i}.test.db"),
                zone_text(&format!("p{i}.test"), 1, ""),
            )
        })
        .collect();
    let named = Named::start(
        &named_conf(named_port, sec_port),
        &primary_zones,
        named_port,
        &format!("p{}.test", CASES.len() - 1),
    );

    // In: SOA probe and AXFR, signed both ways, for every algorithm.
    for (i, (bind_alg, _)) in CASES.iter().enumerate() {
        let zone = format!("p{i}.test");
        wait_until(
            &format!("secondary53 holds {zone} ({bind_alg})"),
            Duration::from_secs(30),
            || query_serial(sec_port, &zone) == Some(1),
        );
        let zone_field = format!("zone={zone}.");
        assert!(
            logged(
                &sec.log(),
                &["transfer committed", &zone_field, "kind=\"AXFR\""]
            ),
            "{bind_alg}: no AXFR of {zone} in the log"
        );
    }
    // Out: BIND's secondary zones pulled from secondary53 with the key.
    for (i, (_, ours)) in CASES.iter().enumerate() {
        let zone = format!("s{i}.test");
        wait_until(
            &format!("BIND holds {zone} ({ours})"),
            Duration::from_secs(30),
            || query_serial(named_port, &zone) == Some(1),
        );
        let zone_field = format!("zone={zone}.");
        assert!(
            logged(&sec.log(), &["transfer out", &zone_field, "kind=Axfr"]),
            "{ours}: no AXFR out of {zone}"
        );
    }

    // NOTIFY in and IXFR in: an update on BIND reaches secondary53.
    for (i, (bind_alg, _)) in CASES.iter().enumerate() {
        let zone = format!("p{i}.test");
        nsupdate(
            named_port,
            &format!("{bind_alg}:{}:{}", key_name(i), secret(i)),
            &zone,
            &format!("update add new.{zone}. 300 IN TXT \"{bind_alg}\""),
        );
    }
    for (i, (bind_alg, _)) in CASES.iter().enumerate() {
        let zone = format!("p{i}.test");
        wait_until(
            &format!("secondary53 follows {zone} to serial 2 ({bind_alg})"),
            Duration::from_secs(30),
            || query_serial(sec_port, &zone) == Some(2),
        );
        let log = sec.log();
        let zone_field = format!("zone={zone}.");
        assert!(
            logged(&log, &["NOTIFY accepted", &zone_field]),
            "{bind_alg}: BIND's signed NOTIFY for {zone} was not accepted"
        );
        assert!(
            logged(&log, &["transfer committed", &zone_field, "kind=\"IXFR\""]),
            "{bind_alg}: no IXFR of {zone} in the log"
        );
    }

    // NOTIFY out and IXFR out: a reloaded file reaches BIND.
    for i in 0..CASES.len() {
        fs::write(
            d.join(format!("s{i}.test.zone")),
            zone_text(&format!("s{i}.test"), 2, "new IN TXT \"v2\"\n"),
        )
        .expect("zone file");
    }
    let (ok, _, err) = sec.cli(&["reload"]);
    assert!(ok, "reload failed: {err}");
    for (i, (_, ours)) in CASES.iter().enumerate() {
        let zone = format!("s{i}.test");
        wait_until(
            &format!("BIND follows {zone} to serial 2 ({ours})"),
            Duration::from_secs(30),
            || query_serial(named_port, &zone) == Some(2),
        );
        let named_log = named.log();
        assert!(
            named_log.contains(&format!(
                "received notify for zone '{zone}': TSIG '{}'",
                key_name(i)
            )),
            "{ours}: BIND logged no signed NOTIFY for {zone}"
        );
        let zone_field = format!("zone={zone}.");
        assert!(
            logged(&sec.log(), &["transfer out", &zone_field, "kind=Ixfr"]),
            "{ours}: no IXFR out of {zone}"
        );
        // BIND's signed answer to the NOTIFY verified.
        wait_until(
            &format!("BIND's answer to the NOTIFY of {zone} verifies ({ours})"),
            Duration::from_secs(10),
            || {
                logged(
                    &sec.log(),
                    &["NOTIFY out acknowledged", &zone_field, "serial=2"],
                )
            },
        );
    }
    let named_log = named.log();
    for bad in [
        "tsig verify failure",
        "invalid signature",
        "BADSIG",
        "BADTRUNC",
    ] {
        assert!(
            !named_log.contains(bad),
            "BIND logged {bad:?}:\n{}",
            lines_with(&named_log, &[bad]).join("\n")
        );
    }

    // Signed queries: answered and signed, the MAC of the key's length;
    // a wrong secret is NOTAUTH with BADSIG.
    let port = sec_port.to_string();
    for (i, (_, ours)) in CASES.iter().enumerate() {
        let zone = format!("p{i}.test");
        let key = format!("{ours}:{}:{}", key_name(i), secret(i));
        let out = dig(&["@127.0.0.1", "-p", &port, "-y", &key, &zone, "SOA"]);
        assert!(out.contains("status: NOERROR"), "{ours}: {out}");
        assert!(
            !out.contains("Couldn't verify") && !out.contains("could not be validated"),
            "{ours}: dig did not verify the answer:\n{out}"
        );
        let (alg, len) = parse_key_algorithm(ours).expect("algorithm");
        assert_eq!(
            dig_tsig(&out),
            Some((len.unwrap_or(alg.output_len()), "NOERROR".to_string())),
            "{ours}: {out}"
        );
        let wrong = format!("{ours}:{}:{}", key_name(i), secret(i + 100));
        let out = dig(&["@127.0.0.1", "-p", &port, "-y", &wrong, &zone, "SOA"]);
        assert!(out.contains("status: NOTAUTH"), "{ours}: {out}");
        assert_eq!(
            dig_tsig(&out),
            Some((0, "BADSIG".to_string())),
            "{ours}: {out}"
        );
    }

    // MD5 and SHA-1 keys: one warning each, after all that traffic and a
    // reload.
    let log = sec.log();
    for (i, (_, ours)) in CASES.iter().enumerate() {
        let alg = parse_key_algorithm(ours).expect("algorithm").0;
        let warned = lines_with(
            &log,
            &["legacy algorithm", &format!("key={}.", key_name(i))],
        )
        .len();
        let want = usize::from(matches!(alg, Algorithm::HmacMd5 | Algorithm::HmacSha1));
        assert_eq!(warned, want, "{ours}: {warned} warnings");
    }
    drop(named);
}

/// Signed NOTIFY messages for a zone that has no key of its own.
fn notify(zone: &str, id: u16) -> Message {
    let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(
        Name::from_ascii(format!("{zone}.")).expect("name"),
        RecordType::SOA,
    ));
    m
}

fn key(name: &str, spec: &str, secret: &[u8]) -> TsigKey {
    let (alg, len) = parse_key_algorithm(spec).expect("algorithm");
    TsigKey::new(&Name::from_ascii(name).expect("name"), alg, secret, len).expect("key")
}

fn exchange(port: u16, packet: &[u8]) -> Vec<u8> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(3))).ok();
    sock.send_to(packet, ("127.0.0.1", port)).expect("send");
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("an answer");
    buf[..n].to_vec()
}

fn start_server(extra_keys: &str, zones: &str) -> (Secondary, u16, TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("sec53-tsig-wire-")
        .tempdir()
        .expect("temp dir");
    let port = free_port();
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\n{extra_keys}\n{zones}",
        dir.path().join("var").display()
    );
    let mut sec = Secondary::start(dir.path(), &config);
    sec.wait_for_log("secondary53 running", Duration::from_secs(20));
    (sec, port, dir)
}

const SECRET: &[u8] = b"notify-secret-notify-secret-0123";

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// RFC 8945 5.2: a signed NOTIFY is checked even when its zone needs no
/// key: an unknown key gets NOTAUTH with BADKEY, a known key with a bad
/// MAC NOTAUTH with BADSIG; a good one is accepted and answered signed.
/// (Before, any TSIG on a NOTIFY for a zone without a key went unchecked.)
#[test]
fn a_signed_notify_for_a_zone_without_a_key_is_checked() {
    let keys = format!(
        "[[key]]\nname = \"known\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{}\"\n",
        b64(SECRET)
    );
    let unused = free_port();
    let zones = format!("[[zone]]\nname = \"nokey.test\"\nprimaries = [\"127.0.0.1:{unused}\"]\n");
    let (sec, port, _dir) = start_server(&keys, &zones);

    let tsig_of = |answer: &[u8]| {
        let m = Message::from_vec(answer).expect("answer parses");
        let t = find_tsig(answer)
            .expect("TSIG parses")
            .map(|t| (t.error, t.mac.len()));
        (m.response_code, t)
    };

    let mut m = notify("nokey.test", 1);
    sign_request(&mut m, &key("stranger.", "hmac-sha256", SECRET)).expect("sign");
    let answer = exchange(port, &m.to_vec().expect("encode"));
    assert_eq!(
        tsig_of(&answer),
        (ResponseCode::NotAuth, Some((17, 0))),
        "BADKEY"
    );

    let mut m = notify("nokey.test", 2);
    sign_request(&mut m, &key("known.", "hmac-sha256", b"forged")).expect("sign");
    let answer = exchange(port, &m.to_vec().expect("encode"));
    assert_eq!(
        tsig_of(&answer),
        (ResponseCode::NotAuth, Some((16, 0))),
        "BADSIG"
    );

    let known = key("known.", "hmac-sha256", SECRET);
    let mut m = notify("nokey.test", 3);
    let mac = sign_request(&mut m, &known).expect("sign");
    let answer = exchange(port, &m.to_vec().expect("encode"));
    assert_eq!(tsig_of(&answer), (ResponseCode::NoError, Some((0, 32))));
    ResponseVerifier::new(known, mac)
        .verify(&answer)
        .expect("the answer is signed with the key");

    // Unsigned, from an allowed address: accepted as before.
    let answer = exchange(port, &notify("nokey.test", 4).to_vec().expect("encode"));
    assert_eq!(tsig_of(&answer), (ResponseCode::NoError, None));

    let log = sec.log();
    assert!(
        logged(&log, &["NOTIFY refused", "BADKEY"]) && logged(&log, &["NOTIFY refused", "BADSIG"]),
        "the refusals are logged:\n{log}"
    );
}

/// Replaces the MAC of a signed message by its first `len` bytes.
fn cut_mac(raw: &[u8], len: usize) -> Vec<u8> {
    let t = find_tsig(raw).expect("parses").expect("signed");
    // Owner, then type, class, TTL, RDLENGTH, algorithm name, time, fudge.
    let owner_end = t.start + t.key_name.len();
    let rdata = owner_end + 10;
    let mac_size_at = rdata + t.algorithm.len() + 8;
    let mac_at = mac_size_at + 2;
    let mut out = raw[..mac_size_at].to_vec();
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&t.mac[..len]);
    out.extend_from_slice(&raw[mac_at + t.mac.len()..]);
    let rdlen =
        u16::from_be_bytes([out[owner_end + 8], out[owner_end + 9]]) as usize - (t.mac.len() - len);
    out[owner_end + 8..owner_end + 10].copy_from_slice(&(rdlen as u16).to_be_bytes());
    out
}

/// RFC 8945 5.2.2.1 and 5.2.4 on the wire: a MAC shorter than 10 bytes and
/// half the hash is FORMERR, without a TSIG; a truncated MAC shorter than
/// the key's own length NOTAUTH with BADTRUNC, signed; the same truncation
/// to a key that is not truncated is answered.
#[test]
fn truncated_macs_below_the_limits_are_refused() {
    let keys = format!(
        "[[key]]\nname = \"full\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{s}\"\n\n\
         [[key]]\nname = \"strict\"\nalgorithm = \"hmac-sha256-192\"\nsecret = \"{s}\"\n",
        s = b64(SECRET)
    );
    let dir = tempfile::Builder::new()
        .prefix("zone-")
        .tempdir()
        .expect("dir");
    let file = dir.path().join("cut.test.zone");
    fs::write(&file, zone_text("cut.test", 1, "")).expect("zone");
    let zones = format!(
        "[[zone]]\nname = \"cut.test\"\nfile = \"{}\"\n",
        file.display()
    );
    let (mut sec, port, _dir) = start_server(&keys, &zones);
    sec.wait_for_log("zone file loaded", Duration::from_secs(20));

    let query = |id: u16, k: &TsigKey| {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("cut.test.").expect("name"),
            RecordType::SOA,
        ));
        sign_request(&mut m, k).expect("sign");
        m.to_vec().expect("encode")
    };
    let answer_of = |raw: &[u8]| {
        let a = exchange(port, raw);
        let m = Message::from_vec(&a).expect("answer parses");
        let t = find_tsig(&a)
            .expect("TSIG parses")
            .map(|t| (t.error, t.mac.len()));
        (m.response_code, t)
    };

    // 16 bytes (half of SHA-256) to the full key: answered, and the answer
    // signed in full.
    let truncated = key("full.", "hmac-sha256-128", SECRET);
    assert_eq!(
        answer_of(&query(1, &truncated)),
        (ResponseCode::NoError, Some((0, 32)))
    );
    // 15 bytes: below the RFC's minimum.
    let full = key("full.", "hmac-sha256", SECRET);
    assert_eq!(
        answer_of(&cut_mac(&query(2, &full), 15)),
        (ResponseCode::FormErr, None)
    );
    // 16 bytes to a key that sends and wants 24: BADTRUNC, signed at 24.
    let strict_cut = key("strict.", "hmac-sha256-128", SECRET);
    assert_eq!(
        answer_of(&query(3, &strict_cut)),
        (ResponseCode::NotAuth, Some((22, 24)))
    );
    let strict = key("strict.", "hmac-sha256-192", SECRET);
    assert_eq!(
        answer_of(&query(4, &strict)),
        (ResponseCode::NoError, Some((0, 24)))
    );
    let log = sec.log();
    assert!(log.contains("BADTRUNC") && log.contains("FORMERR"), "{log}");
}
