//! `max_records` and `max_bytes`: a primary streaming more than the zone's
//! limit is cut off as soon as the limit is crossed, not after the whole
//! transfer; the previous version keeps serving; the log and
//! `secondary53_transfers_refused_total{reason}` say why. An IXFR that
//! would grow the zone past `max_records` is refused too.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::fake_primary::{FakePrimary, Script, a_record, sample_records};
use common::{Secondary, free_port, query_serial, stored_serial, wait_until, zone_dump};

const ZONE: &str = "example.com";

/// Records the streaming primary offers: about 60 MB on the wire, far more
/// than the socket buffers between it and secondary53 can hold.
const STREAMED: usize = 2_000_000;

fn config(port: u16, metrics: u16, dir: &Path, primary: &str, limits: &str) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:{port}"]
data_dir = "{data}"
metrics = "127.0.0.1:{metrics}"

[[zone]]
name = "{ZONE}"
primaries = ["{primary}"]
refresh = 3600
retry = 3600
message_timeout = 5
transfer_timeout = 60
{limits}
"#,
        data = dir.join("var").display()
    )
}

fn refused(metrics: u16, reason: &str) -> f64 {
    let key =
        format!("secondary53_transfers_refused_total{{zone=\"example.com.\",reason=\"{reason}\"}}");
    common::net::samples(metrics)
        .get(&key)
        .copied()
        .unwrap_or(0.0)
}

fn failures(sec: &Secondary) -> Vec<String> {
    sec.log()
        .lines()
        .filter(|l| l.contains("refresh failed"))
        .map(str::to_string)
        .collect()
}

/// For each limit: the first, small version is transferred; then the
/// primary streams two million records; the transfer is abandoned early,
/// with the limit named, and the small version keeps serving.
#[test]
fn a_transfer_over_the_limit_is_cut_off_early_and_the_old_version_serves() {
    for (limits, expected, reason) in [
        (
            "max_records = 1000",
            "more than 1000 records (max_records)",
            "max_records",
        ),
        (
            "max_bytes = 65536",
            "transfer larger than 65536 bytes (max_bytes); abandoned",
            "max_bytes",
        ),
    ] {
        let fake = FakePrimary::start(
            ZONE,
            1,
            Script::Good(sample_records(ZONE, 10)),
            Script::Rcode(hickory_proto::op::ResponseCode::NotImp),
        );
        let dir = tempfile::Builder::new()
            .prefix("sec53-limits-")
            .tempdir()
            .expect("temp dir");
        let (port, metrics) = (free_port(), free_port());
        let mut sec = Secondary::start(
            dir.path(),
            &config(port, metrics, dir.path(), &fake.addr(), limits),
        );
        wait_until(
            "the first transfer is stored",
            Duration::from_secs(20),
            || stored_serial(&sec, ZONE) == Some(1),
        );
        let before = zone_dump(&sec, ZONE);

        fake.set_axfr_script(Script::Stream { records: STREAMED });
        fake.set_serial(2);
        let started = Instant::now();
        let (ok, out, err) = sec.cli(&["zone", "refresh", ZONE]);
        assert!(ok, "{out}{err}");
        wait_until(
            &format!("the transfer is refused ({limits})"),
            Duration::from_secs(30),
            || !failures(&sec).is_empty(),
        );
        let took = started.elapsed();
        let line = failures(&sec).pop().expect("a failure line");
        assert!(
            line.contains(expected) && line.contains(&fake.addr()),
            "{limits}: {line}"
        );
        // Cut off early: the primary could not send most of the zone.
        wait_until("the primary stops sending", Duration::from_secs(10), || {
            let a = fake.records_sent();
            std::thread::sleep(Duration::from_millis(200));
            a == fake.records_sent()
        });
        let sent = fake.records_sent();
        assert!(
            sent < STREAMED / 4,
            "{limits}: the primary sent {sent} of {STREAMED} records before secondary53 stopped reading"
        );
        assert!(
            took < Duration::from_secs(30),
            "{limits}: took {took:?} to refuse"
        );
        assert!(sec.is_running());
        assert_eq!(stored_serial(&sec, ZONE), Some(1), "{limits}");
        assert_eq!(zone_dump(&sec, ZONE), before, "{limits}");
        assert_eq!(query_serial(port, ZONE), Some(1), "{limits}");
        assert_eq!(refused(metrics, reason), 1.0, "{limits}");
        sec.stop();
    }
}

/// BIND's `ixfr-too-big`: an IXFR whose result would have more records
/// than `max_records` is refused, and the zone keeps its version.
#[test]
fn an_ixfr_growing_the_zone_past_max_records_is_refused() {
    // 12 records + SOA = 13; the limit is 20.
    let fake = FakePrimary::start(
        ZONE,
        1,
        Script::Good(sample_records(ZONE, 10)),
        Script::Good(sample_records(ZONE, 10)),
    );
    let dir = tempfile::Builder::new()
        .prefix("sec53-ixfr-big-")
        .tempdir()
        .expect("temp dir");
    let (port, metrics) = (free_port(), free_port());
    let sec = Secondary::start(
        dir.path(),
        &config(port, metrics, dir.path(), &fake.addr(), "max_records = 20"),
    );
    wait_until(
        "the first transfer is stored",
        Duration::from_secs(20),
        || stored_serial(&sec, ZONE) == Some(1),
    );
    let before = zone_dump(&sec, ZONE);
    let added: Vec<_> = (0..10)
        .map(|i| {
            a_record(
                &format!("n{i}.example.com."),
                300,
                Ipv4Addr::new(192, 0, 2, i),
            )
        })
        .collect();
    fake.set_ixfr_script(Script::IxfrDiff {
        removed: vec![],
        added,
    });
    fake.set_serial(2);
    let (ok, out, err) = sec.cli(&["zone", "refresh", ZONE]);
    assert!(ok, "{out}{err}");
    wait_until("the IXFR is refused", Duration::from_secs(10), || {
        !failures(&sec).is_empty()
    });
    let line = failures(&sec).pop().expect("a failure");
    assert!(
        line.contains("the zone would have 23 records after the IXFR, more than 20 (max_records)"),
        "{line}"
    );
    assert_eq!(stored_serial(&sec, ZONE), Some(1));
    assert_eq!(zone_dump(&sec, ZONE), before);
    assert_eq!(query_serial(port, ZONE), Some(1));
    assert_eq!(refused(metrics, "max_records"), 1.0);
}
