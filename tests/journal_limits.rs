//! The journal does not grow without bound behind a journal consumer (the
//! Route 53 mirror): a consumer whose mirror was removed from the
//! configuration is dropped and the journal it held is trimmed, and a
//! stalled mirror holds the journal only up to `journal_max_held_versions`,
//! after which it is reset, the journal trimmed, and the mirror recovers by
//! a full reconcile. A real BIND primary, moto as Route 53 behind the fault
//! proxy (which makes every ChangeResourceRecordSets fail to stall the
//! mirror).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_route53 as route53;
use common::moto::{self, FaultProxy, Moto, Op};
use common::{Bind, BindOptions, Secondary, free_port, query_serial, wait_until};

const ZONE: &str = "journal.test";
const APEX: &str = "journal.test.";

struct Rig {
    sec: Secondary,
    bind: Bind,
    proxy: FaultProxy,
    _moto: Moto,
    rt: tokio::runtime::Runtime,
    direct: route53::Client,
    zone_id: String,
    port: u16,
    metrics: u16,
    dir: tempfile::TempDir,
}

/// How the zone appears in the configuration.
enum ZoneEntry {
    Mirrored,
    Unmirrored,
    Absent,
}

impl Rig {
    fn start() -> Rig {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let moto = Moto::start();
        let proxy = FaultProxy::start(&moto.url());
        let direct = rt.block_on(moto::route53_client(&moto.url()));
        let zone_id = rt.block_on(moto::create_hosted_zone(&direct, APEX));
        let port = free_port();
        let bind = Bind::start(BindOptions {
            notify_to: vec![port],
            ..BindOptions::new(ZONE, common::generate_zone(ZONE, 1000, 20))
        });
        let dir = tempfile::Builder::new()
            .prefix("journal53-")
            .tempdir()
            .expect("temp dir");
        let metrics = free_port();
        let cfg = config(
            port,
            metrics,
            dir.path(),
            &proxy.url(),
            &bind.addr(),
            &zone_id,
            ZoneEntry::Mirrored,
        );
        let mut sec = Secondary::start_with_env(dir.path(), &cfg, &moto::aws_env());
        sec.wait_for_log("Route 53 reconcile done", Duration::from_secs(30));
        Rig {
            sec,
            bind,
            proxy,
            _moto: moto,
            rt,
            direct,
            zone_id,
            port,
            metrics,
            dir,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("var")
    }

    /// Rewrites the configuration and has the running server reload it.
    fn reload(&self, entry: ZoneEntry) {
        let text = config(
            self.port,
            self.metrics,
            self.dir.path(),
            &self.proxy.url(),
            &self.bind.addr(),
            &self.zone_id,
            entry,
        );
        std::fs::write(self.sec.config_path(), text).expect("write config");
        let (ok, out, err) = self.sec.cli(&["reload"]);
        assert!(ok, "reload failed: {out}{err}");
    }

    /// One dynamic update on the primary, transferred and stored by the
    /// secondary before this returns.
    fn update(&self, i: u32) {
        self.bind
            .update(&format!("update add n{i}.{APEX} 60 IN A 198.51.100.{i}"));
        let serial = self.bind.soa_serial();
        wait_until(
            &format!("the secondary serves serial {serial}"),
            Duration::from_secs(20),
            || query_serial(self.port, ZONE) == Some(serial),
        );
    }

    /// Versions `secondary53 journal` lists for the zone.
    fn journal_versions(&self) -> usize {
        let (ok, out, err) = self.sec.cli(&["journal", ZONE]);
        assert!(ok, "journal: {out}{err}");
        out.lines().filter(|l| l.starts_with("version ")).count()
    }

    /// Rows of `table` (consumer, mirror_state) for the zone, read-only.
    fn rows(&self, table: &str) -> i64 {
        let conn = rusqlite::Connection::open_with_flags(
            self.data_dir().join("secondary53.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open store read-only");
        conn.query_row(
            &format!(
                "SELECT count(*) FROM {table} t JOIN zone z ON z.id = t.zone_id WHERE z.name = ?1"
            ),
            [APEX],
            |r| r.get(0),
        )
        .expect("count rows")
    }

    /// One sample of the metrics endpoint (0 when the series is absent).
    fn metric(&self, series: &str) -> f64 {
        common::net::sample(&common::net::samples(self.metrics), series)
    }

    /// Waits until the hosted zone holds `n1..=nN` and the marker of the
    /// primary's serial.
    fn wait_mirrored(&self, n: u32) {
        let serial = self.bind.soa_serial();
        let marker = format!("\"{serial}\"");
        let ok = common::poll_until(Duration::from_secs(40), || {
            let listing = self
                .rt
                .block_on(moto::list_rrsets(&self.direct, &self.zone_id));
            let has = |name: &str, value: &str| {
                listing
                    .iter()
                    .any(|(nm, _, _, values)| nm == name && values.iter().any(|v| v == value))
            };
            has(&format!("_serial.{APEX}"), &marker)
                && (1..=n).all(|i| has(&format!("n{i}.{APEX}"), &format!("198.51.100.{i}")))
        });
        assert!(
            ok,
            "the hosted zone did not reach serial {serial} with n1..n{n}; log tail:\n{}",
            tail(&self.sec.log(), 30)
        );
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn mirror_status(sec: &Secondary) -> String {
    let (ok, out, err) = sec.cli(&["mirror", "status"]);
    assert!(ok, "mirror status: {out}{err}");
    out
}

/// The secondary's configuration with the zone as `entry` says.
fn config(
    port: u16,
    metrics: u16,
    dir: &Path,
    proxy_url: &str,
    primary: &str,
    zone_id: &str,
    entry: ZoneEntry,
) -> String {
    let mut c = format!(
        r#"[server]
listen = ["127.0.0.1:{port}"]
data_dir = "{data}"
metrics = "127.0.0.1:{metrics}"

[route53]
region = "{region}"
endpoint_url = "{proxy_url}"
base_delay_ms = 20
max_attempts = 2
"#,
        data = dir.join("var").display(),
        region = moto::TEST_REGION,
    );
    if matches!(entry, ZoneEntry::Absent) {
        return c;
    }
    c.push_str(&format!(
        r#"
[[zone]]
name = "{ZONE}"
primaries = ["{primary}"]
journal_max_versions = 2
journal_max_held_versions = 4
"#
    ));
    if matches!(entry, ZoneEntry::Mirrored) {
        c.push_str(&format!(
            "\n[zone.route53]\nhosted_zone_id = \"{zone_id}\"\n"
        ));
    }
    c
}

#[test]
fn a_stalled_mirror_holds_the_journal_only_up_to_its_cap_then_reconciles() {
    let mut rig = Rig::start();
    rig.proxy.set_fault_rate_for(Op::Change, 1.0);
    for i in 1..=4 {
        rig.update(i);
    }
    // Seq of the initial version was read; the four updates are held.
    assert_eq!(
        rig.journal_versions(),
        4,
        "held beyond journal_max_versions"
    );
    assert!(!rig.sec.log().contains("journal trimmed past a consumer"));
    // The fifth goes over journal_max_held_versions = 4.
    rig.update(5);
    rig.sec.wait_for_log(
        "journal trimmed past a consumer that fell behind; it will do a full reconcile",
        Duration::from_secs(10),
    );
    let zone = format!("zone=\"{APEX}\"");
    assert_eq!(
        rig.metric(&format!(
            "secondary53_journal_consumer_resets_total{{{zone},consumer=\"route53\"}}"
        )),
        1.0
    );
    assert_eq!(
        rig.metric(&format!(
            "secondary53_journal_cap_trims_total{{{zone},limit=\"journal_max_held_versions\"}}"
        )),
        1.0
    );
    // Reset, it holds nothing: the ordinary journal_max_versions applies.
    assert_eq!(rig.journal_versions(), 2);
    assert_eq!(
        rig.metric(&format!("secondary53_journal_versions{{{zone}}}")),
        2.0
    );
    assert!(rig.metric(&format!("secondary53_journal_bytes{{{zone}}}")) > 0.0);
    let status = mirror_status(&rig.sec);
    assert!(status.contains("fell behind the journal's cap"), "{status}");
    // A reset mirror is behind (never "-" or in sync), by at least the
    // versions it did not send.
    let line = status
        .lines()
        .find(|l| l.starts_with(APEX))
        .unwrap_or_else(|| panic!("no status line for {APEX}:\n{status}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    let lag: i64 = fields[3]
        .parse()
        .unwrap_or_else(|_| panic!("no lag in {line:?}"));
    assert!(lag >= 4, "{line}");
    assert_eq!(fields[4], "behind", "{line}");
    assert!(
        rig.metric(&format!("secondary53_route53_lag_versions{{{zone}}}")) >= 4.0,
        "the lag metric of a reset mirror"
    );
    // Further versions do not reset it again.
    rig.update(6);
    assert_eq!(
        rig.sec
            .log()
            .matches("journal trimmed past a consumer")
            .count(),
        1
    );

    // Route 53 answers again: the next version leads to a full reconcile,
    // and the hosted zone converges with every change.
    let reconciles = rig.sec.log().matches("Route 53 reconcile done").count();
    rig.proxy.set_fault_rate_for(Op::Change, 0.0);
    rig.update(7);
    rig.wait_mirrored(7);
    // The hosted zone converges when the changes are sent; the reconcile
    // logs its end only after it has recorded its state in the store.
    assert!(
        common::poll_until(Duration::from_secs(10), || {
            rig.sec.log().matches("Route 53 reconcile done").count() > reconciles
        }),
        "recovered without a reconcile"
    );
    let status = mirror_status(&rig.sec);
    assert!(!status.contains("fell behind"), "{status}");
    rig.sec.stop();
}

#[test]
fn a_reload_that_removes_a_mirror_or_its_zone_drops_the_consumer_and_trims_the_journal() {
    let mut rig = Rig::start();
    assert_eq!(rig.rows("consumer"), 1);
    // `mirror plan` reads the store (read-only) next to the running server.
    let (ok, out, err) = rig.sec.cli_aws(&["mirror", "plan", ZONE]);
    assert!(ok && out.contains("; 0 changes"), "mirror plan: {out}{err}");

    // The mirror stalls; the journal is held for it.
    rig.proxy.set_fault_rate_for(Op::Change, 1.0);
    for i in 1..=3 {
        rig.update(i);
    }
    assert_eq!(rig.journal_versions(), 3);

    // The mirror goes from the configuration; the zone stays.
    rig.reload(ZoneEntry::Unmirrored);
    rig.sec.wait_for_log(
        "journal consumer dropped: its mirror is no longer configured",
        Duration::from_secs(10),
    );
    assert_eq!(rig.rows("consumer"), 0);
    assert_eq!(rig.rows("mirror_state"), 0);
    assert_eq!(rig.journal_versions(), 2, "trimmed to journal_max_versions");
    assert_eq!(query_serial(rig.port, ZONE), Some(rig.bind.soa_serial()));
    let calls = rig.proxy.requests();
    rig.update(4);
    assert_eq!(rig.journal_versions(), 2);

    // The mirror comes back: it starts over with a reconcile.
    rig.proxy.set_fault_rate_for(Op::Change, 0.0);
    rig.reload(ZoneEntry::Mirrored);
    rig.wait_mirrored(4);
    assert!(rig.proxy.requests() > calls);
    wait_until("the consumer is back", Duration::from_secs(10), || {
        rig.rows("consumer") == 1
    });

    // It stalls again, and this time the whole zone goes.
    rig.proxy.set_fault_rate_for(Op::Change, 1.0);
    for i in 5..=7 {
        rig.update(i);
    }
    assert_eq!(rig.journal_versions(), 3);
    rig.reload(ZoneEntry::Absent);
    rig.sec.wait_for_log(
        "journal consumer dropped: its zone is no longer configured",
        Duration::from_secs(10),
    );
    assert_eq!(rig.rows("consumer"), 0);
    assert_eq!(rig.rows("mirror_state"), 0);
    assert_eq!(
        rig.journal_versions(),
        2,
        "trimmed to the zone's last limits"
    );
    assert!(
        common::dig(&["@127.0.0.1", "-p", &rig.port.to_string(), ZONE, "SOA"]).contains("REFUSED"),
        "the removed zone is still served"
    );
    // Its data stays in the store.
    let (ok, out, _) = rig.sec.cli(&["zone", "dump", ZONE]);
    assert!(ok && out.contains(&format!("n7.{APEX}")), "{out}");
    rig.sec.stop();
}

#[test]
fn a_restart_without_the_mirror_or_its_zone_drops_the_consumer() {
    let mut rig = Rig::start();
    rig.proxy.set_fault_rate_for(Op::Change, 1.0);
    for i in 1..=3 {
        rig.update(i);
    }
    assert_eq!(rig.journal_versions(), 3);
    assert_eq!(rig.rows("consumer"), 1);
    let restart_with = |rig: &mut Rig, entry: ZoneEntry| {
        rig.sec.stop();
        let text = config(
            rig.port,
            rig.metrics,
            rig.dir.path(),
            &rig.proxy.url(),
            &rig.bind.addr(),
            &rig.zone_id,
            entry,
        );
        std::fs::write(rig.sec.config_path(), text).expect("write config");
        rig.sec.restart();
    };

    // The zone went from the configuration while the server was down: its
    // consumer goes at start (the journal keeps the default limits, the
    // zone's own being unknown).
    let from = rig.sec.log().len();
    restart_with(&mut rig, ZoneEntry::Absent);
    wait_until("the server runs again", Duration::from_secs(20), || {
        rig.sec.log()[from..].contains("secondary53 running")
    });
    let log = rig.sec.log()[from..].to_string();
    assert!(
        log.contains("journal consumer dropped: its zone is no longer configured"),
        "{log}"
    );
    assert_eq!(rig.rows("consumer"), 0);
    assert_eq!(rig.rows("mirror_state"), 0);

    // Back without its mirror: the zone's limits apply at load.
    let from = rig.sec.log().len();
    restart_with(&mut rig, ZoneEntry::Unmirrored);
    wait_until("the zone is served again", Duration::from_secs(20), || {
        query_serial(rig.port, ZONE) == Some(rig.bind.soa_serial())
    });
    let log = rig.sec.log()[from..].to_string();
    assert!(
        log.contains("journal trimmed to its configured limits"),
        "{log}"
    );
    assert_eq!(rig.journal_versions(), 2);
    assert_eq!(rig.rows("consumer"), 0);
    rig.sec.stop();
}
