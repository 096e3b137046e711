//! What BIND's `xfer`/`ixfr` and Knot's `axfr`/`ixfr` system tests check of
//! a secondary, against the scripted primary: hostile or broken transfers
//! are refused whole, the previous version keeps serving, the log says why
//! and `secondary53_transfers_refused_total` counts it by reason; broken
//! IXFRs fall back to AXFR; duplicates are kept once; a primary that rejects
//! EDNS is asked again without it.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use common::fake_primary::{
    FakePrimary, Script, SignMode, a_record, name, sample_records, soa_record,
    soa_record_with_timers,
};
use common::{Secondary, dig, free_port, query_serial, stored_serial, wait_until, zone_dump};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Record};
use secondary53::tsig::{Algorithm, TsigKey};

const ZONE: &str = "example.com";
const APEX: &str = "example.com.";
const SECRET: &str = "c2NlbmFyaW8tc2VjcmV0LXNjZW5hcmlvLXNlY3JldA==";

fn config(port: u16, metrics: u16, dir: &Path, primary: &str, extra: &str) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:{port}"]
data_dir = "{data}"
metrics = "127.0.0.1:{metrics}"

[[key]]
name = "xfer"
algorithm = "hmac-sha256"
secret = "{SECRET}"

[[zone]]
name = "{ZONE}"
primaries = ["{primary}"]
refresh = 3600
retry = 3600
connect_timeout = 2
message_timeout = 2
transfer_timeout = 20
{extra}
"#,
        data = dir.join("var").display()
    )
}

fn refused(metrics: u16, reason: &str) -> f64 {
    let key = format!("secondary53_transfers_refused_total{{zone=\"{APEX}\",reason=\"{reason}\"}}");
    common::net::samples(metrics)
        .get(&key)
        .copied()
        .unwrap_or(0.0)
}

fn lines_with(sec: &Secondary, needle: &str) -> Vec<String> {
    sec.log()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

struct Setup {
    fake: FakePrimary,
    sec: Secondary,
    port: u16,
    metrics: u16,
    _dir: tempfile::TempDir,
}

/// A fake primary of `ZONE` at `serial` and a secondary53 that has
/// transferred it.
fn setup(serial: u32, extra: &str) -> Setup {
    let records = sample_records(ZONE, 10);
    let fake = FakePrimary::start(
        ZONE,
        serial,
        Script::Good(records.clone()),
        Script::Good(records),
    );
    let dir = tempfile::Builder::new()
        .prefix("sec53-scen-")
        .tempdir()
        .expect("temp dir");
    let (port, metrics) = (free_port(), free_port());
    let sec = Secondary::start(
        dir.path(),
        &config(port, metrics, dir.path(), &fake.addr(), extra),
    );
    wait_until(
        "the first transfer is stored",
        Duration::from_secs(20),
        || stored_serial(&sec, ZONE) == Some(serial),
    );
    Setup {
        fake,
        sec,
        port,
        metrics,
        _dir: dir,
    }
}

impl Setup {
    /// Runs `zone refresh` and waits for a new `refresh failed` line; returns it.
    fn refresh_fails(&mut self, what: &str) -> String {
        let before = lines_with(&self.sec, "refresh failed").len();
        let (ok, out, err) = self.sec.cli(&["zone", "refresh", ZONE]);
        assert!(ok, "{what}: zone refresh failed: {out}{err}");
        wait_until(
            &format!("a refresh failure after {what}"),
            Duration::from_secs(10),
            || lines_with(&self.sec, "refresh failed").len() > before,
        );
        lines_with(&self.sec, "refresh failed")
            .pop()
            .expect("a failure line")
    }

    /// Asserts the zone still serves `serial` and its stored copy is `dump`.
    fn still_serving(&mut self, what: &str, serial: u32, dump: &str) {
        assert!(self.sec.is_running(), "{what}: secondary53 exited");
        assert_eq!(
            stored_serial(&self.sec, ZONE),
            Some(serial),
            "{what}: serial changed"
        );
        assert_eq!(
            zone_dump(&self.sec, ZONE),
            dump,
            "{what}: the stored zone changed"
        );
        assert_eq!(
            query_serial(self.port, ZONE),
            Some(serial),
            "{what}: the previous version is not answered"
        );
    }
}

/// A whole AXFR-style response at `serial`: SOA, records, SOA.
fn full(serial: u32, records: Vec<Record>) -> Vec<Record> {
    let soa = soa_record(&name(ZONE), serial);
    let mut all = vec![soa.clone()];
    all.extend(records);
    all.push(soa);
    all
}

/// Each broken or hostile AXFR of BIND's `xfer` test (and a few more) is
/// refused whole: the previous version keeps serving, the log names the
/// problem and the primary, and the refusal is counted by reason.
#[test]
fn hostile_axfrs_are_refused_and_the_previous_version_serves() {
    let mut s = setup(10, "ixfr = false");
    let before = zone_dump(&s.sec, ZONE);
    let zone = name(ZONE);
    let www = name("www.example.com.");

    let mut soa_at_www = soa_record(&zone, 11);
    soa_at_www.name = www.clone();
    let mut ch = a_record("ch.example.com.", 300, Ipv4Addr::new(192, 0, 2, 3));
    ch.dns_class = DNSClass::CH;
    let evil = a_record("evil\\.example.com.", 300, Ipv4Addr::new(192, 0, 2, 66));
    let mut closing = full(11, sample_records(ZONE, 3));
    let last = closing.len() - 1;
    closing[last] = soa_record_with_timers(&zone, 11, (3600, 600, 86400, 301));
    let mut soa_inside = full(11, sample_records(ZONE, 3));
    soa_inside.insert(2, soa_at_www.clone());

    let mut starts_at_www = full(11, sample_records(ZONE, 3));
    starts_at_www[0] = soa_at_www.clone();

    let cases: Vec<(&str, Script, &str, &str)> = vec![
        (
            "SOA owner not the zone",
            Script::Records(starts_at_www),
            "SOA record not at the zone apex: www.example.com.",
            "soa_owner",
        ),
        (
            "SOA below the apex inside the zone",
            Script::Records(soa_inside),
            "SOA record not at the zone apex: www.example.com.",
            "soa_owner",
        ),
        (
            "soamismatch",
            Script::Records(closing),
            "closing SOA (serial 11) differs from the opening SOA",
            "soa_mismatch",
        ),
        (
            "wrong message id",
            Script::WrongId,
            "does not match query id",
            "malformed",
        ),
        (
            "question section missing",
            Script::NoQuestion,
            "first message has no question",
            "malformed",
        ),
        (
            "question for another zone",
            Script::OtherQuestion(name("other.test.")),
            "answer is for other.test. IN AXFR, not the question asked",
            "malformed",
        ),
        (
            "class other than IN",
            Script::Records(full(11, vec![ch])),
            "record of class CH in an IN zone: ch.example.com.",
            "class",
        ),
        (
            "escaped dot outside the zone",
            Script::Records(full(11, vec![evil])),
            "record outside the zone: evil\\.example.com.",
            "out_of_zone",
        ),
    ];
    for (what, script, expected, reason) in cases {
        let counted = refused(s.metrics, reason);
        s.fake.set_serial(11);
        s.fake.set_axfr_script(script);
        let failure = s.refresh_fails(what);
        assert!(
            failure.contains(expected) && failure.contains(&s.fake.addr()),
            "{what}: the log should say {expected:?} and name {}: {failure}",
            s.fake.addr()
        );
        assert!(
            failure.contains(&format!("reason=\"{reason}\""))
                || failure.contains(&format!("reason={reason}")),
            "{what}: the log line should give the reason {reason}: {failure}"
        );
        s.still_serving(what, 10, &before);
        assert_eq!(
            refused(s.metrics, reason),
            counted + 1.0,
            "{what}: secondary53_transfers_refused_total{{reason=\"{reason}\"}} did not move"
        );
    }

    // Primaries behind a load balancer: the SOA query reaches a server at
    // serial 11, the AXFR one still at 9. The older zone is refused.
    s.fake
        .set_axfr_script(Script::Good(sample_records(ZONE, 4)));
    s.fake.set_serial(11);
    s.fake.set_transfer_serial(Some(9));
    let failure = s.refresh_fails("SOA newer, transfer older");
    assert!(
        failure.contains("transfer leads to serial 9, not newer than ours 10"),
        "{failure}"
    );
    s.still_serving("SOA newer, transfer older", 10, &before);
    assert_eq!(refused(s.metrics, "serial_not_newer"), 1.0);
    assert_eq!(
        lines_with(&s.sec, "transfer committed").len(),
        1,
        "only the first transfer may be committed"
    );

    // `zone retransfer` is the operator's force: the older zone is taken.
    let (ok, out, err) = s.sec.cli(&["zone", "retransfer", ZONE]);
    assert!(ok, "zone retransfer: {out}{err}");
    wait_until(
        "serial 9 is stored after retransfer",
        Duration::from_secs(10),
        || stored_serial(&s.sec, ZONE) == Some(9),
    );
    assert_eq!(query_serial(s.port, ZONE), Some(9));
}

/// TSIG on the first message only, then unsigned for more than 99 messages
/// (RFC 8945 5.3.1 allows 99; BIND allows 100): refused.
#[test]
fn tsig_on_the_first_message_only_is_refused() {
    let key = TsigKey::new(
        &name("xfer."),
        Algorithm::HmacSha256,
        &base64_decode(SECRET),
        None,
    )
    .expect("TSIG key");
    let records = sample_records(ZONE, 10);
    let fake = FakePrimary::start(
        ZONE,
        1,
        Script::Good(records.clone()),
        Script::Good(records),
    );
    fake.set_tsig(Some((key.clone(), SignMode::Every)));
    let dir = tempfile::Builder::new()
        .prefix("sec53-tsig-")
        .tempdir()
        .expect("temp dir");
    let (port, metrics) = (free_port(), free_port());
    let sec = Secondary::start(
        dir.path(),
        &config(
            port,
            metrics,
            dir.path(),
            &fake.addr(),
            "ixfr = false\nkey = \"xfer\"",
        ),
    );
    wait_until(
        "the signed transfer is stored",
        Duration::from_secs(20),
        || stored_serial(&sec, ZONE) == Some(1),
    );
    let before = zone_dump(&sec, ZONE);

    fake.set_tsig(Some((key, SignMode::FirstOnly)));
    fake.set_records_per_message(1);
    fake.set_axfr_script(Script::Good(sample_records(ZONE, 150)));
    fake.set_serial(2);
    let mut s = Setup {
        fake,
        sec,
        port,
        metrics,
        _dir: dir,
    };
    let failure = s.refresh_fails("TSIG on the first message only");
    assert!(
        failure.contains("more than 99 unsigned messages in a row") && failure.contains("xfer."),
        "{failure}"
    );
    s.still_serving("TSIG on the first message only", 1, &before);
    assert_eq!(refused(s.metrics, "tsig"), 1.0);
    let _ = &mut s.sec;
}

/// IXFR answers that cannot be applied fall back to AXFR, with the reason
/// logged: a single newer SOA and nothing more (Knot waits for more, BIND
/// too; neither sends the version), and a delta that removes a record the
/// zone does not have. An IXFR leading to an older serial is refused, with
/// no fallback: an AXFR would take the zone back just the same.
#[test]
fn broken_ixfrs_fall_back_to_axfr_and_older_ixfrs_are_refused() {
    let mut s = setup(10, "");
    let before = zone_dump(&s.sec, ZONE);

    // A single SOA newer than ours, then the connection closes.
    s.fake.set_ixfr_script(Script::SingleSoa);
    let mut v11 = sample_records(ZONE, 10);
    v11.push(a_record(
        "v11.example.com.",
        300,
        Ipv4Addr::new(192, 0, 2, 11),
    ));
    s.fake.set_axfr_script(Script::Good(v11));
    s.fake.set_serial(11);
    let (ok, out, err) = s.sec.cli(&["zone", "refresh", ZONE]);
    assert!(ok, "{out}{err}");
    wait_until(
        "serial 11 by AXFR fallback",
        Duration::from_secs(15),
        || stored_serial(&s.sec, ZONE) == Some(11),
    );
    let line = lines_with(&s.sec, "transfer committed")
        .pop()
        .expect("a commit");
    assert!(
        line.contains("AXFR fallback")
            && line.contains("IXFR answered with a single SOA (serial 11, ours 10)"),
        "{line}"
    );
    assert!(zone_dump(&s.sec, ZONE).contains("192.0.2.11"));

    // A delta removing a record that is not in the zone.
    s.fake.set_ixfr_script(Script::IxfrDiff {
        removed: vec![a_record(
            "absent.example.com.",
            300,
            Ipv4Addr::new(192, 0, 2, 99),
        )],
        added: vec![a_record(
            "new.example.com.",
            300,
            Ipv4Addr::new(192, 0, 2, 12),
        )],
    });
    let mut v12 = sample_records(ZONE, 10);
    v12.push(a_record(
        "new.example.com.",
        300,
        Ipv4Addr::new(192, 0, 2, 12),
    ));
    s.fake.set_axfr_script(Script::Good(v12));
    s.fake.set_serial(12);
    let (ok, out, err) = s.sec.cli(&["zone", "refresh", ZONE]);
    assert!(ok, "{out}{err}");
    wait_until(
        "serial 12 by AXFR fallback",
        Duration::from_secs(15),
        || stored_serial(&s.sec, ZONE) == Some(12),
    );
    let line = lines_with(&s.sec, "transfer committed")
        .pop()
        .expect("a commit");
    assert!(
        line.contains("AXFR fallback")
            && line.contains(
                "removes absent.example.com. 300 IN A 192.0.2.99 which is not in the zone"
            ),
        "{line}"
    );
    let dump = zone_dump(&s.sec, ZONE);
    assert!(
        dump.contains("192.0.2.12") && !dump.contains("192.0.2.11"),
        "{dump}"
    );
    assert!(refused(s.metrics, "ixfr_inconsistent") >= 1.0);

    // An AXFR-style IXFR answer at an older serial (SOA query said newer).
    s.fake
        .set_ixfr_script(Script::Good(sample_records(ZONE, 2)));
    s.fake.set_serial(13);
    s.fake.set_transfer_serial(Some(8));
    let axfrs = s.fake.axfr_requests();
    let failure = s.refresh_fails("IXFR to an older serial");
    assert!(
        failure.contains("IXFR answer leads to serial 8, not newer than ours 12"),
        "{failure}"
    );
    assert_eq!(
        s.fake.axfr_requests(),
        axfrs,
        "no AXFR fallback for an older IXFR"
    );
    s.still_serving("IXFR to an older serial", 12, &dump);
    assert_eq!(refused(s.metrics, "serial_not_newer"), 1.0);
    let _ = before;
}

/// Duplicate records in an AXFR are kept once (BIND and Knot do the same).
#[test]
fn duplicate_records_in_an_axfr_are_kept_once() {
    let s = setup(1, "ixfr = false");
    let mut dup = sample_records(ZONE, 3);
    let twice = a_record("twice.example.com.", 300, Ipv4Addr::new(192, 0, 2, 2));
    dup.push(twice.clone());
    dup.push(twice.clone());
    dup.insert(0, twice);
    s.fake.set_axfr_script(Script::Good(dup));
    s.fake.set_serial(2);
    let (ok, out, err) = s.sec.cli(&["zone", "refresh", ZONE]);
    assert!(ok, "{out}{err}");
    wait_until("serial 2 is stored", Duration::from_secs(10), || {
        stored_serial(&s.sec, ZONE) == Some(2)
    });
    let dump = zone_dump(&s.sec, ZONE);
    assert_eq!(
        dump.matches("twice.example.com.").count(),
        1,
        "the duplicate is stored once:\n{dump}"
    );
    let answer = dig(&[
        "@127.0.0.1",
        "-p",
        &s.port.to_string(),
        "twice.example.com",
        "A",
        "+short",
    ]);
    assert_eq!(answer.trim(), "192.0.2.2", "{answer}");
}

/// A primary that answers queries carrying EDNS with FORMERR or NOTIMP is
/// asked again without EDNS, as BIND does, and then always without it.
#[test]
fn a_primary_rejecting_edns_is_asked_without_it() {
    for rcode in [ResponseCode::FormErr, ResponseCode::NotImp] {
        let records = sample_records(ZONE, 10);
        let fake = FakePrimary::start(
            ZONE,
            1,
            Script::Good(records.clone()),
            Script::Good(records),
        );
        fake.set_edns_rcode(Some(rcode));
        let dir = tempfile::Builder::new()
            .prefix("sec53-edns-")
            .tempdir()
            .expect("temp dir");
        let (port, metrics) = (free_port(), free_port());
        let sec = Secondary::start(
            dir.path(),
            &config(port, metrics, dir.path(), &fake.addr(), ""),
        );
        wait_until(
            &format!("the zone is transferred from a primary answering EDNS with {rcode}"),
            Duration::from_secs(20),
            || stored_serial(&sec, ZONE) == Some(1),
        );
        assert!(fake.edns_rejected() >= 1, "{rcode}: EDNS was never tried");
        let line = lines_with(&sec, "primary rejects EDNS")
            .pop()
            .unwrap_or_default();
        assert!(line.contains(&fake.addr()), "{rcode}: {line}");
        // Later refreshes go without EDNS straight away.
        let rejected = fake.edns_rejected();
        fake.set_serial(2);
        let (ok, out, err) = sec.cli(&["zone", "refresh", ZONE]);
        assert!(ok, "{out}{err}");
        wait_until("serial 2 is stored", Duration::from_secs(10), || {
            stored_serial(&sec, ZONE) == Some(2)
        });
        assert_eq!(fake.edns_rejected(), rejected, "{rcode}: EDNS tried again");
        assert_eq!(query_serial(port, ZONE), Some(2));
    }
}

/// NOTIFY and queries compare names with the zone in wire form: a NOTIFY
/// for `evil\.example.com` (one label `evil.example` under `com.`) is not
/// one for `example.com`, and a query for a name under it is refused.
#[test]
fn escaped_dot_names_are_not_in_the_zone_for_notify_and_queries() {
    let s = setup(1, "");
    let p = s.port.to_string();
    let notify_answer = dig(&[
        "@127.0.0.1",
        "-p",
        &p,
        "+opcode=notify",
        "evil\\.example.com",
        "SOA",
    ]);
    assert!(
        notify_answer.contains("status: NOTAUTH"),
        "a NOTIFY for evil\\.example.com must not reach example.com:\n{notify_answer}"
    );
    let q = dig(&["@127.0.0.1", "-p", &p, "www.evil\\.example.com", "A"]);
    assert!(q.contains("status: REFUSED"), "{q}");
    let q = dig(&["@127.0.0.1", "-p", &p, "h1.example.com", "A"]);
    assert!(q.contains("status: NOERROR"), "{q}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64 secret")
}
