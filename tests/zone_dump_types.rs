//! `secondary53 zone dump` and `journal` write every record so that
//! `named-checkzone` reads it back: BIND's private signing records
//! (TYPE65534) and other types without a mnemonic in RFC 3597 form
//! (`TYPE65280 \# 4 ...`), ZONEMD, SVCB/HTTPS, CDS/CDNSKEY, CSYNC, TLSA,
//! SSHFP, URI, CAA, NAPTR, DNSSEC records and the rest by name. The dump
//! of a zone BIND signs, transferred by secondary53, loads in
//! `named-checkzone` (every check on) and `nsd-checkzone`, and holds the
//! same records as `dig AXFR` of the primary.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{
    Bind, BindOptions, Secondary, assert_zones_equal, free_port, query_serial, tool, wait_until,
    zone_dump,
};

/// Records of the types the dump must write by name, and types without a
/// mnemonic. Values are ones BIND's own checks accept.
const TYPED_RECORDS: &str = r#"
@ 300 IN ZONEMD 2024010101 1 1 ( 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f )
@ 300 IN ZONEMD 2024010101 1 2 ( 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f )
@ 300 IN CSYNC 2024010101 3 A NS AAAA
@ 300 IN CAA 0 issue "ca.example.net; account=230123"
@ 300 IN CAA 128 tbs "Unknown"
@ 300 IN HTTPS 0 www
www 300 IN HTTPS 1 . alpn="h2,h3" port=8443 ipv4hint=192.0.2.1,192.0.2.2 ech="AAE=" ipv6hint=2001:db8::1 mandatory=alpn,port
alt 300 IN HTTPS 2 svc.example.net. alpn="h2\\,x,h3" no-default-alpn key65000="a\001\"b" key65001
_dns.ns1 300 IN SVCB 1 ns1 alpn="dot" port=853
_443._tcp.www 300 IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
_25._tcp.mail 300 IN SMIMEA 3 0 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
www 300 IN SSHFP 4 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
_http._tcp 300 IN URI 10 1 "https://www.dump.test/a\"b"
@ 300 IN NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:info@dump.test!" .
sip 300 IN NAPTR 200 10 "s" "SIP+D2U" "" _sip._udp.dump.test.
key 300 IN OPENPGPKEY AQIDBAUGBwgJCgsMDQ4P
txt 300 IN TXT "quote \" backslash \\ bytes \001\255" "second"
txt 300 IN SPF "v=spf1 -all"
host 300 IN HINFO "PC" "Linux"
host 300 IN RP mbox.dump.test. txt.dump.test.
host 300 IN LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m
alias 300 IN DNAME example.net.
priv 300 IN TYPE65280 \# 4 deadbeef
priv 300 IN TYPE65281 \# 0
delegated 300 IN NS ns.delegated
delegated 300 IN DS 60485 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
delegated 300 IN CDS 60485 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
delegated 300 IN CDNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==
ns.delegated 300 IN A 192.0.2.53
"#;

fn zone_text(apex: &str, serial: u32) -> String {
    format!(
        "$ORIGIN {apex}\n$TTL 300\n\
         @ 3600 IN SOA ns1 hostmaster {serial} 3600 600 86400 300\n\
         @ 3600 IN NS ns1\n\
         ns1 IN A 127.0.0.1\n\
         www IN A 192.0.2.1\n\
         {TYPED_RECORDS}"
    )
}

fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir")
}

fn secondary_config(dir: &Path, port: u16, zone: &str, primary: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nudp_workers = 1\n\n\
         [[zone]]\nname = \"{zone}\"\nprimaries = [\"{primary}\"]\n\
         connect_timeout = 2\nmessage_timeout = 4\n",
        dir.join("var").display()
    )
}

/// `named-checkzone` with its default checks on `text`: Ok(its output) or
/// Err(why it refused).
fn named_checkzone(zone: &str, text: &str) -> Result<String, String> {
    let dir = temp_dir("dump-check-");
    let path = dir.path().join("dump.zone");
    fs::write(&path, text).expect("write dump");
    let out = Command::new(tool("named-checkzone"))
        .arg(zone)
        .arg(&path)
        .output()
        .expect("run named-checkzone");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(said)
    } else {
        Err(said)
    }
}

/// `nsd-checkzone` on `text`: Err(what it said) when it refuses it.
fn nsd_checkzone(zone: &str, text: &str) -> Result<(), String> {
    let dir = temp_dir("dump-nsd-check-");
    let path = dir.path().join("dump.zone");
    fs::write(&path, text).expect("write dump");
    let out = Command::new(tool("nsd-checkzone"))
        .arg(zone)
        .arg(&path)
        .output()
        .expect("run nsd-checkzone (is nsd installed? see scripts/setup.sh)");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The records of `text` (dig or dump lines) whose type field is `rtype`.
fn of_type<'a>(text: &'a str, rtype: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.split_whitespace().nth(3) == Some(rtype))
        .collect()
}

/// Whether a line writes a type as hickory names the ones it does not
/// know (`Unknown`); the CAA value "Unknown" is quoted, so not a word here.
fn names_a_type_unknown(text: &str) -> bool {
    text.lines()
        .any(|l| l.split_whitespace().any(|w| w.starts_with("Unknown")))
}

/// The dump of `zone` as secondary53 holds it after transferring it from
/// `bind`: it loads in named-checkzone with every check and in
/// nsd-checkzone,
/// equals BIND's AXFR record for record, and names no type `Unknown`.
/// Returns the running secondary (then its directory) and the dump.
fn dump_round_trips(zone: &str, port: u16, bind: &Bind) -> (Secondary, tempfile::TempDir, String) {
    let dir = temp_dir("sec53-dump-");
    let sec = Secondary::start(
        dir.path(),
        &secondary_config(dir.path(), port, zone, &bind.addr()),
    );
    // The primary's serial now, in case BIND moved it since the caller
    // looked (it NOTIFYs secondary53, which follows).
    wait_until(
        "secondary53 serves the primary's serial",
        Duration::from_secs(20),
        || query_serial(port, zone) == Some(bind.soa_serial()),
    );
    let dump = zone_dump(&sec, zone);
    assert!(
        !names_a_type_unknown(&dump),
        "no type named Unknown:\n{dump}"
    );
    if let Err(why) = named_checkzone(zone, &dump) {
        panic!("named-checkzone refused the dump:\n{why}\n--- dump ---\n{dump}");
    }
    if let Err(why) = nsd_checkzone(zone, &dump) {
        panic!("nsd-checkzone refused the dump:\n{why}\n--- dump ---\n{dump}");
    }
    assert_zones_equal(zone, &bind.axfr(), &dump);
    (sec, dir, dump)
}

/// A zone BIND signs (`dnssec-policy default`, NSEC): BIND adds its
/// private signing records (TYPE65534), DNSKEY, RRSIG and NSEC. The dump
/// round-trips, with every type written as the task says; an IXFR's
/// journal lines are written the same way.
#[test]
fn dump_of_a_zone_bind_signs_round_trips_through_named_checkzone() {
    let zone = "dump.test";
    let port = free_port();
    let bind = Bind::start(BindOptions {
        extra_options: "    dnssec-policy default;\n".into(),
        notify_to: vec![port],
        ..BindOptions::new(zone, zone_text("dump.test.", 2024010101))
    });
    // Signing is done once the private records say so and the serial has
    // stopped moving.
    let mut axfr = String::new();
    let mut last_serial = 0;
    wait_until("BIND has signed the zone", Duration::from_secs(30), || {
        axfr = bind.axfr();
        let serial = bind.soa_serial();
        let signed = !of_type(&axfr, "TYPE65534").is_empty()
            && !of_type(&axfr, "NSEC").is_empty()
            && of_type(&axfr, "RRSIG")
                .iter()
                .any(|l| l.contains("RRSIG\tZONEMD") || l.contains(" ZONEMD "));
        let settled = signed && serial == last_serial;
        last_serial = serial;
        if !settled {
            std::thread::sleep(Duration::from_millis(300));
        }
        settled
    });
    for t in [
        "DNSKEY",
        "RRSIG",
        "NSEC",
        "TYPE65534",
        "ZONEMD",
        "CSYNC",
        "CAA",
        "HTTPS",
        "SVCB",
        "TLSA",
        "SMIMEA",
        "SSHFP",
        "URI",
        "NAPTR",
        "OPENPGPKEY",
        "SPF",
        "DNAME",
        "LOC",
        "DS",
        "CDS",
        "CDNSKEY",
        "TYPE65280",
        "TYPE65281",
    ] {
        assert!(!of_type(&axfr, t).is_empty(), "BIND serves {t}:\n{axfr}");
    }

    let (sec, _dir, dump) = dump_round_trips(zone, port, &bind);
    // Every type without a mnemonic in RFC 3597 form, the others by name.
    for line in of_type(&dump, "TYPE65534") {
        assert!(line.contains(" TYPE65534 \\# 5 "), "{line}");
    }
    assert_eq!(
        of_type(&dump, "TYPE65280"),
        ["priv.dump.test. 300 IN TYPE65280 \\# 4 deadbeef"]
    );
    assert_eq!(
        of_type(&dump, "TYPE65281"),
        ["priv.dump.test. 300 IN TYPE65281 \\# 0"]
    );
    for t in [
        "ZONEMD",
        "CSYNC",
        "CAA",
        "HTTPS",
        "SVCB",
        "TLSA",
        "SMIMEA",
        "SSHFP",
        "URI",
        "NAPTR",
        "OPENPGPKEY",
        "SPF",
        "TXT",
        "DS",
        "CDS",
        "CDNSKEY",
        "DNSKEY",
        "RRSIG",
        "NSEC",
        "DNAME",
        "HINFO",
        "RP",
    ] {
        let lines = of_type(&dump, t);
        assert!(!lines.is_empty(), "the dump has {t}:\n{dump}");
        for line in lines {
            // An alpn id with a comma and a value with escapes: RFC 9460
            // and hickory's reader (our `file` zones) disagree on those,
            // so that record is written in the generic form.
            let generic = t == "HTTPS" && line.starts_with("alt.dump.test. ");
            assert_eq!(line.contains(" \\# "), generic, "{t}: {line}");
        }
    }
    assert!(
        dump.contains(
            "www.dump.test. 300 IN HTTPS 1 . mandatory=alpn,port alpn=\"h2,h3\" port=8443 \
             ipv4hint=192.0.2.1,192.0.2.2 ech=\"AAE=\" ipv6hint=2001:db8::1\n"
        ),
        "{dump}"
    );

    // A change by IXFR: its journal lines are written the same way.
    bind.update(
        "update add priv2.dump.test. 300 IN TYPE65282 \\# 2 abcd\n\
         update add svc.dump.test. 300 IN HTTPS 1 . alpn=h2",
    );
    let serial = bind.soa_serial();
    wait_until(
        "secondary53 follows the change",
        Duration::from_secs(20),
        || query_serial(port, zone).is_some_and(|s| s >= serial),
    );
    let (ok, journal, err) = sec.cli(&["journal", zone]);
    assert!(ok, "{err}");
    assert!(!names_a_type_unknown(&journal), "{journal}");
    for added in [
        "+ priv2.dump.test. 300 IN TYPE65282 \\# 2 abcd",
        "+ svc.dump.test. 300 IN HTTPS 1 . alpn=\"h2\"",
    ] {
        assert!(
            journal.lines().any(|l| l == added),
            "journal line {added:?}:\n{journal}"
        );
    }
    let added: String = journal
        .lines()
        .filter_map(|l| l.strip_prefix("+ "))
        .filter(|l| l.split_whitespace().nth(3) != Some("SOA"))
        .map(|l| format!("{l}\n"))
        .collect();
    let apex: String = of_type(&dump, "SOA")
        .into_iter()
        .chain(
            of_type(&dump, "NS")
                .into_iter()
                .filter(|l| l.starts_with("dump.test. ")),
        )
        .chain(
            of_type(&dump, "A")
                .into_iter()
                .filter(|l| l.starts_with("ns1.")),
        )
        .map(|l| format!("{l}\n"))
        .collect();
    named_checkzone(zone, &format!("{apex}{added}"))
        .unwrap_or_else(|why| panic!("named-checkzone refused the journal's records:\n{why}"));
}

/// A zone signed with NSEC3 and a salt by `dnssec-signzone`, served by
/// BIND as it is: NSEC3 (base32hex next owner, salt, type bitmaps) and
/// NSEC3PARAM round-trip too.
#[test]
fn dump_of_an_nsec3_signed_zone_round_trips_through_named_checkzone() {
    let zone = "nsec3dump.test";
    let dir = temp_dir("nsec3-sign-");
    let unsigned = dir.path().join("zone.db");
    fs::write(&unsigned, zone_text("nsec3dump.test.", 7)).expect("write zone");
    for ksk in [true, false] {
        let mut keygen = Command::new(tool("dnssec-keygen"));
        keygen
            .current_dir(dir.path())
            .args(["-q", "-a", "ECDSAP256SHA256"]);
        if ksk {
            keygen.args(["-f", "KSK"]);
        }
        let out = keygen.arg(zone).output().expect("run dnssec-keygen");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(tool("dnssec-signzone"))
        .current_dir(dir.path())
        .args(["-q", "-S", "-3", "aabbccdd", "-H", "0", "-o", zone, "-f"])
        .arg(dir.path().join("signed.db"))
        .arg(&unsigned)
        .output()
        .expect("run dnssec-signzone");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed = fs::read_to_string(dir.path().join("signed.db")).expect("read signed zone");
    let bind = Bind::start(BindOptions::new(zone, signed));
    let axfr = bind.axfr();
    for t in ["NSEC3", "NSEC3PARAM", "RRSIG", "DNSKEY"] {
        assert!(!of_type(&axfr, t).is_empty(), "the zone has {t}");
    }
    let (_sec, _dir, dump) = dump_round_trips(zone, free_port(), &bind);
    let param = of_type(&dump, "NSEC3PARAM");
    assert_eq!(param, ["nsec3dump.test. 0 IN NSEC3PARAM 1 0 0 aabbccdd"]);
    for line in of_type(&dump, "NSEC3") {
        assert!(line.contains(" NSEC3 1 0 0 aabbccdd "), "{line}");
    }
}
