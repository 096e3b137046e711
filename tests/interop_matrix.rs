//! The interop matrix: real primaries → secondary53 → real secondaries,
//! TSIG (hmac-sha256) on every transfer and every NOTIFY.
//!
//! Each scenario starts a real primary (BIND 9, Knot, NSD or PowerDNS) on
//! 127.0.0.1 that NOTIFYs secondary53, and a real secondary (BIND 9, Knot
//! or NSD) that secondary53 NOTIFYs; then:
//!
//! 1. secondary53 takes the zone by AXFR; its `zone dump` equals `dig AXFR`
//!    of the primary; the downstream secondary takes it by AXFR and its copy
//!    equals secondary53's;
//! 2. the zone is changed on the primary the way its users do it (BIND:
//!    nsupdate; Knot: knotc zone-begin/zone-set/zone-unset/zone-commit;
//!    NSD: a new zone file and `nsd-control reload`; PowerDNS: `pdnsutil`
//!    edits, `pdnsutil increase-serial`, `pdns_control notify`);
//! 3. secondary53 follows by the primary's NOTIFY (the SOA refresh is an
//!    hour, so nothing else would make it look) with the kind the primary
//!    serves, read from `zone status` and the journal: IXFR where the
//!    primary serves IXFR, the whole zone in answer to IXFR (an AXFR-style
//!    IXFR, RFC 1995 section 4) where it does not; either way the journal
//!    holds only the change;
//! 4. the downstream secondary follows by secondary53's NOTIFY with an IXFR
//!    (checked in its own log or state), and its copy equals secondary53's.
//!
//! Transfers without the key are refused by every primary and by
//! secondary53, so the transfers seen were signed.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::bind_secondary::BindSecondary;
use common::knot::{Knot, KnotOptions, KnotRole};
use common::nsd::{Nsd, NsdOptions, NsdRole};
use common::pdns::{Pdns, PdnsOptions};
use common::peer::Peer;
use common::{
    Bind, BindOptions, Secondary, TsigKey, assert_zones_equal, dig, dig_axfr, free_port,
    parse_soa_serial, poll_until, stored_serial, wait_until, zone_dump,
};

const ZONE: &str = "example.net";
const KEY_NAME: &str = "xfer";
const KEY_ALGORITHM: &str = "hmac-sha256";
const KEY_SECRET: &str = "aW50ZXJvcC1tYXRyaXgta2V5LWZvci10aGUtdGVzdHM=";

/// Serial of the first version.
const SERIAL: u32 = 2_026_120_101;

/// How long a transfer or a NOTIFY may take to show (generous: two cores
/// shared by parallel tests).
const WAIT: Duration = Duration::from_secs(20);

fn key() -> TsigKey {
    (
        KEY_NAME.to_string(),
        KEY_ALGORITHM.to_string(),
        KEY_SECRET.to_string(),
    )
}

/// The zone at `serial`: before the change, or after it (`changed`).
fn zone_text(serial: u32, changed: bool) -> String {
    let (www, txt) = if changed {
        ("192.0.2.81", "new IN TXT \"added-by-the-change\"")
    } else {
        ("192.0.2.80", "old IN TXT \"removed-by-the-change\"")
    };
    format!(
        "$ORIGIN {ZONE}.\n$TTL 300\n\
         @ 3600 IN SOA ns1 hostmaster {serial} 3600 600 86400 300\n\
         @ IN NS ns1\n\
         @ IN MX 10 mail\n\
         @ IN TXT \"v=spf1 mx -all\"\n\
         ns1 IN A 127.0.0.1\n\
         mail IN A 192.0.2.25\n\
         www IN A {www}\n\
         www IN AAAA 2001:db8::80\n\
         alias IN CNAME www\n\
         _sip._tcp IN SRV 10 20 5060 www\n\
         {txt}\n"
    )
}

/// The records the change removes and adds, besides the SOA, as
/// `secondary53 journal` prints them.
const REMOVED: [&str; 2] = [
    "old.example.net. 300 IN TXT \"removed-by-the-change\"",
    "www.example.net. 300 IN A 192.0.2.80",
];
const ADDED: [&str; 2] = [
    "new.example.net. 300 IN TXT \"added-by-the-change\"",
    "www.example.net. 300 IN A 192.0.2.81",
];

// ---------------------------------------------------------------------------
// Primaries
// ---------------------------------------------------------------------------

/// A real primary of [`ZONE`], NOTIFYing secondary53.
trait Primary {
    /// `127.0.0.1:PORT`
    fn addr(&self) -> String;
    /// The DNS port.
    fn port(&self) -> u16;
    /// The SOA serial the primary serves.
    fn serial(&self) -> u32;
    /// `dig AXFR` of the zone, signed.
    fn axfr(&self) -> String;
    /// Makes the change of [`zone_text`] (`changed`) the way this server's
    /// users do, with a higher serial, and has the primary send NOTIFY.
    fn change(&self);
}

impl Primary for Bind {
    fn addr(&self) -> String {
        Bind::addr(self)
    }
    fn port(&self) -> u16 {
        Bind::port(self)
    }
    fn serial(&self) -> u32 {
        self.soa_serial()
    }
    fn axfr(&self) -> String {
        Bind::axfr(self)
    }
    /// nsupdate; BIND raises the serial and NOTIFYs.
    fn change(&self) {
        self.update(
            "update delete www.example.net. A\n\
             update add www.example.net. 300 IN A 192.0.2.81\n\
             update delete old.example.net. TXT\n\
             update add new.example.net. 300 IN TXT \"added-by-the-change\"",
        );
    }
}

impl Primary for Knot {
    fn addr(&self) -> String {
        Peer::addr(self)
    }
    fn port(&self) -> u16 {
        Peer::port(self)
    }
    fn serial(&self) -> u32 {
        self.soa_serial().expect("Knot serves the zone")
    }
    fn axfr(&self) -> String {
        Knot::axfr(self)
    }
    /// One knotc transaction; Knot raises the serial, journals the change
    /// and NOTIFYs.
    fn change(&self) {
        Knot::change(
            self,
            &["www A 192.0.2.80", "old TXT"],
            &[
                "www 300 A 192.0.2.81",
                "new 300 TXT \"added-by-the-change\"",
            ],
        );
    }
}

impl Primary for Nsd {
    fn addr(&self) -> String {
        Peer::addr(self)
    }
    fn port(&self) -> u16 {
        Peer::port(self)
    }
    fn serial(&self) -> u32 {
        self.soa_serial().expect("NSD serves the zone")
    }
    fn axfr(&self) -> String {
        Nsd::axfr(self)
    }
    /// A new zone file with the next serial and `nsd-control reload`; NSD
    /// NOTIFYs.
    fn change(&self) {
        self.replace_zone_file(&zone_text(SERIAL + 1, true));
    }
}

impl Primary for Pdns {
    fn addr(&self) -> String {
        Peer::addr(self)
    }
    fn port(&self) -> u16 {
        Peer::port(self)
    }
    fn serial(&self) -> u32 {
        self.soa_serial().expect("PowerDNS serves the zone")
    }
    fn axfr(&self) -> String {
        Pdns::axfr(self)
    }
    /// pdnsutil edits, `pdnsutil increase-serial`, `pdns_control notify`.
    fn change(&self) {
        self.replace_rrset("www", "A", 300, &["192.0.2.81"]);
        self.delete_rrset("old", "TXT");
        self.replace_rrset("new", "TXT", 300, &["\"added-by-the-change\""]);
        self.increase_serial_and_notify();
    }
}

// ---------------------------------------------------------------------------
// Downstream secondaries
// ---------------------------------------------------------------------------

/// A real secondary of secondary53, which reports the kind of its own
/// transfers from its log or state.
trait Downstream {
    fn wait_serial(&mut self, serial: u32);
    /// Its copy of the zone by `dig AXFR`.
    fn axfr(&self) -> String;
    /// Asserts that it took `serial` by AXFR (its first transfer).
    fn assert_took_axfr(&self, serial: u32);
    /// Asserts that it took `serial` by IXFR from `from`.
    fn assert_took_ixfr(&self, from: u32, serial: u32);
}

impl Downstream for BindSecondary {
    fn wait_serial(&mut self, serial: u32) {
        BindSecondary::wait_serial(self, serial, WAIT);
    }
    fn axfr(&self) -> String {
        BindSecondary::axfr(self)
    }
    fn assert_took_axfr(&self, serial: u32) {
        assert!(
            !self.log_lines("requesting AXFR").is_empty()
                && !self.log_lines("got nonincremental response").is_empty()
                && self.log_lines("requesting IXFR").is_empty(),
            "BIND did not log its first transfer (serial {serial}) as an AXFR; its transfer lines: {:#?}",
            self.log_lines("transfer of")
        );
    }
    fn assert_took_ixfr(&self, from: u32, serial: u32) {
        assert!(
            !self
                .log_lines(&format!("requesting IXFR for serial {from}"))
                .is_empty()
                && !self.log_lines("got incremental response").is_empty(),
            "BIND did not log an IXFR from {from} to {serial}; its transfer lines: {:#?}",
            self.log_lines("transfer of")
        );
        assert_eq!(
            self.log_lines("got nonincremental response").len(),
            1,
            "BIND took more than its first transfer whole: {:#?}",
            self.log_lines("transfer of")
        );
    }
}

/// Knot's log lines of finished incoming transfers of `kind` ("AXFR",
/// "IXFR") from secondary53 on `primary_port`.
fn knot_incoming(knot: &Knot, kind: &str, primary_port: u16) -> Vec<String> {
    knot.log_lines(&format!(
        "{kind}, incoming, remote 127.0.0.1@{primary_port}, finished"
    ))
}

/// A Knot secondary and the port of its primary (secondary53).
struct KnotDownstream {
    knot: Knot,
    primary_port: u16,
}

impl Downstream for KnotDownstream {
    fn wait_serial(&mut self, serial: u32) {
        self.knot.wait_serial(serial, WAIT);
    }
    fn axfr(&self) -> String {
        self.knot.axfr()
    }
    fn assert_took_axfr(&self, serial: u32) {
        let axfr = knot_incoming(&self.knot, "AXFR", self.primary_port);
        let ixfr = knot_incoming(&self.knot, "IXFR", self.primary_port);
        assert!(
            axfr.len() == 1 && ixfr.is_empty(),
            "Knot did not log one AXFR and no IXFR in (serial {serial}); its transfer lines: {:#?}",
            self.knot.log_lines("incoming")
        );
    }
    fn assert_took_ixfr(&self, from: u32, serial: u32) {
        let axfr = knot_incoming(&self.knot, "AXFR", self.primary_port);
        let ixfr = knot_incoming(&self.knot, "IXFR", self.primary_port);
        assert!(
            axfr.len() == 1
                && ixfr.len() == 1
                && self.knot.log_lines("fallback to AXFR").is_empty(),
            "Knot did not log an IXFR in from {from} to {serial} (and no other AXFR); its transfer lines: {:#?}",
            self.knot.log_lines("incoming")
        );
    }
}

/// An NSD secondary with `store-ixfr: yes`. NSD's log does not name the
/// kind of a transfer in, but its state does: NSD keeps IXFR data only for
/// versions it received by IXFR (not for a zone it received whole), so its
/// own answer to an IXFR query for the previous serial is incremental
/// exactly when it took the change by IXFR.
struct NsdDownstream {
    nsd: Nsd,
}

impl Downstream for NsdDownstream {
    fn wait_serial(&mut self, serial: u32) {
        self.nsd.wait_serial(serial, WAIT);
    }
    fn axfr(&self) -> String {
        self.nsd.axfr()
    }
    fn assert_took_axfr(&self, serial: u32) {
        assert!(
            self.nsd
                .log_lines(&format!("received update to serial {serial} "))
                .iter()
                .any(|l| l.contains(&format!("TSIG verified with key {KEY_NAME}"))),
            "NSD did not log a signed transfer of serial {serial}: {:#?}",
            self.nsd.log_lines("received update")
        );
        // Its IXFR data is empty: asked for changes since the serial before
        // this one, it answers with the whole zone.
        let answer = ixfr_answer(self.nsd.port(), serial - 1);
        assert!(
            !is_incremental(&answer, serial - 1, serial),
            "NSD holds IXFR data after its first transfer:\n{answer}"
        );
    }
    fn assert_took_ixfr(&self, from: u32, serial: u32) {
        assert!(
            self.nsd
                .log_lines(&format!("received update to serial {serial} "))
                .iter()
                .any(|l| l.contains(&format!("TSIG verified with key {KEY_NAME}"))),
            "NSD did not log a signed transfer of serial {serial}: {:#?}",
            self.nsd.log_lines("received update")
        );
        let answer = ixfr_answer(self.nsd.port(), from);
        assert!(
            is_incremental(&answer, from, serial),
            "NSD's answer to IXFR from {from} is not incremental, so it did not take {serial} by IXFR:\n{answer}"
        );
    }
}

/// `dig IXFR=from` of the zone at 127.0.0.1:`port`, signed.
fn ixfr_answer(port: u16, from: u32) -> String {
    let key = format!("{KEY_ALGORITHM}:{KEY_NAME}:{KEY_SECRET}");
    dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        ZONE,
        &format!("IXFR={from}"),
        "-y",
        &key,
        "+nocmd",
        "+nostats",
        "+nocomments",
    ])
}

/// Whether a dig IXFR answer is incremental from `from` to `to` (RFC 1995
/// section 4: SOA `to`, then SOA `from` opening the first difference).
fn is_incremental(answer: &str, from: u32, to: u32) -> bool {
    let soa_serials: Vec<Option<u32>> = answer
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 4 && !f[3].eq_ignore_ascii_case("TSIG"))
        .take(2)
        .map(|f| {
            if f[3].eq_ignore_ascii_case("SOA") {
                parse_soa_serial(&f[4..].join(" "))
            } else {
                None
            }
        })
        .collect();
    soa_serials == [Some(to), Some(from)]
}

// ---------------------------------------------------------------------------
// secondary53 between them
// ---------------------------------------------------------------------------

/// secondary53 on `port`: a secondary of `primary` with the key, serving
/// transfers to 127.0.0.1 with the key, NOTIFYing 127.0.0.1:`downstream`
/// signed with it.
fn start_secondary53(dir: &Path, port: u16, primary: &str, downstream: u16) -> Secondary {
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nudp_workers = 1\n\n\
         [[key]]\nname = \"{KEY_NAME}\"\nalgorithm = \"{KEY_ALGORITHM}\"\nsecret = \"{KEY_SECRET}\"\n\n\
         [[zone]]\nname = \"{ZONE}\"\nprimaries = [\"{primary}\"]\nkey = \"{KEY_NAME}\"\n\
         allow_transfer = [\"127.0.0.1 key {KEY_NAME}\"]\n\
         also_notify = [\"127.0.0.1:{downstream}\"]\nnotify_key = \"{KEY_NAME}\"\n\
         connect_timeout = 2\nmessage_timeout = 4\n",
        dir.join("var").display()
    );
    Secondary::start(dir, &config)
}

/// A field of `secondary53 zone status ZONE` (e.g. `last_kind`).
fn status_field(sec: &Secondary, name: &str) -> String {
    let (ok, out, err) = sec.cli(&["zone", "status", ZONE]);
    assert!(ok, "zone status failed: {out}{err}");
    let prefix = format!("{name}=");
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name}= in zone status: {out}"))
        .to_string()
}

/// The `(kind, removed, added)` of the journal version that ends at
/// `serial`, the SOA lines left out, whitespace collapsed.
fn journal_version(sec: &Secondary, serial: u32) -> (String, BTreeSet<String>, BTreeSet<String>) {
    let (ok, out, err) = sec.cli(&["journal", ZONE, "--since", &SERIAL.to_string()]);
    assert!(ok, "journal failed: {out}{err}");
    let norm = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let header_end = format!("-> {serial} ");
    let mut kind = None;
    let (mut removed, mut added) = (BTreeSet::new(), BTreeSet::new());
    let mut inside = false;
    for line in out.lines() {
        if line.starts_with("version ") {
            inside = line.contains(&header_end);
            if inside {
                kind = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("kind="))
                    .map(str::to_string);
            }
        } else if inside {
            if let Some(r) = line.strip_prefix("- ") {
                removed.insert(norm(r));
            } else if let Some(a) = line.strip_prefix("+ ") {
                added.insert(norm(a));
            }
        }
    }
    let kind = kind.unwrap_or_else(|| panic!("no journal version ends at {serial}:\n{out}"));
    let is_soa = |l: &String| l.split_whitespace().nth(3) == Some("SOA");
    removed.retain(|l| !is_soa(l));
    added.retain(|l| !is_soa(l));
    (kind, removed, added)
}

/// Lines of secondary53's log containing every one of `needles`.
fn sec_log_lines(sec: &Secondary, needles: &[&str]) -> Vec<String> {
    sec.log()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_string)
        .collect()
}

/// Runs the whole chain: `primary` (already NOTIFYing `sec_port`) →
/// secondary53 on `sec_port` → the downstream `start_downstream` starts on
/// the port it is given. `kind_in` is what secondary53 must see for the
/// change (`zone status` `last_kind`: `IXFR` or `AXFR-style_IXFR`).
fn run_chain<D: Downstream>(
    primary: &dyn Primary,
    sec_port: u16,
    kind_in: &str,
    start_downstream: impl FnOnce(u16) -> D,
) {
    // The primary refuses transfers without the key.
    let unsigned = dig_axfr(primary.port(), ZONE, None);
    assert!(
        unsigned.is_err(),
        "the primary allowed an unsigned AXFR:\n{unsigned:?}"
    );

    let dir = tempfile::Builder::new()
        .prefix("sec53-interop-")
        .tempdir()
        .expect("temp dir for secondary53");
    let down_port = free_port();
    let sec = start_secondary53(dir.path(), sec_port, &primary.addr(), down_port);

    // 1. First transfer: AXFR, equal to the primary.
    wait_until("secondary53 holds the first version", WAIT, || {
        stored_serial(&sec, ZONE) == Some(SERIAL)
    });
    wait_until(
        "zone status shows the first transfer",
        Duration::from_secs(10),
        || status_field(&sec, "last_kind") == "AXFR",
    );
    assert_zones_equal(ZONE, &primary.axfr(), &zone_dump(&sec, ZONE));
    // secondary53 refuses transfers without the key too.
    assert!(
        dig_axfr(sec_port, ZONE, None).is_err(),
        "secondary53 allowed an unsigned AXFR"
    );

    let mut down = start_downstream(down_port);
    down.wait_serial(SERIAL);
    down.assert_took_axfr(SERIAL);
    assert_zones_equal(ZONE, &down.axfr(), &zone_dump(&sec, ZONE));
    assert_eq!(
        sec_log_lines(
            &sec,
            &["transfer out", "kind=Axfr", &format!("serial={SERIAL}")]
        )
        .len(),
        1,
        "secondary53 did not log one AXFR out of {SERIAL}"
    );

    // 2. The change on the primary.
    let notifies_before = sec_log_lines(&sec, &["NOTIFY accepted"]).len();
    primary.change();
    let serial = primary.serial();
    assert!(serial > SERIAL, "the change did not raise the serial");

    // 3. secondary53 follows by NOTIFY, with the expected kind.
    wait_until(&format!("secondary53 holds serial {serial}"), WAIT, || {
        stored_serial(&sec, ZONE) == Some(serial)
    });
    wait_until(
        &format!("zone status shows a transfer of kind {kind_in}"),
        Duration::from_secs(10),
        || status_field(&sec, "last_kind") == kind_in,
    );
    assert!(
        sec_log_lines(&sec, &["NOTIFY accepted"]).len() > notifies_before,
        "secondary53 followed without a NOTIFY from the primary:\n{}",
        sec.log()
    );
    let (journal_kind, removed, added) = journal_version(&sec, serial);
    let expected_journal_kind = if kind_in == "IXFR" { "ixfr" } else { "axfr" };
    assert_eq!(journal_kind, expected_journal_kind, "journal kind");
    assert_eq!(
        (removed, added),
        (
            REMOVED.iter().map(|s| s.to_string()).collect(),
            ADDED.iter().map(|s| s.to_string()).collect()
        ),
        "the journal does not hold exactly the change"
    );
    assert_zones_equal(ZONE, &primary.axfr(), &zone_dump(&sec, ZONE));

    // 4. The downstream follows secondary53 by NOTIFY and IXFR.
    down.wait_serial(serial);
    assert!(
        poll_until(Duration::from_secs(5), || {
            !sec_log_lines(
                &sec,
                &["transfer out", "kind=Ixfr", &format!("serial={serial}")],
            )
            .is_empty()
        }),
        "secondary53 did not log an IXFR out of {serial}"
    );
    down.assert_took_ixfr(SERIAL, serial);
    assert_zones_equal(ZONE, &down.axfr(), &zone_dump(&sec, ZONE));
}

/// A BIND primary changed by nsupdate → secondary53 by IXFR → a Knot
/// secondary by AXFR, then IXFR.
#[test]
fn bind_primary_nsupdate_to_secondary53_by_ixfr_to_knot_by_ixfr() {
    let sec_port = free_port();
    let bind = Bind::start(BindOptions {
        tsig: Some(key()),
        require_tsig_for_transfer: true,
        notify_to: vec![sec_port],
        sign_notify: true,
        ..BindOptions::new(ZONE, zone_text(SERIAL, false))
    });
    run_chain(&bind, sec_port, "IXFR", |port| KnotDownstream {
        knot: Knot::start_on(
            port,
            KnotOptions {
                zone: ZONE.into(),
                tsig: key(),
                role: KnotRole::Secondary {
                    primary_port: sec_port,
                },
            },
        ),
        primary_port: sec_port,
    });
}

/// A Knot primary changed by knotc → secondary53 by IXFR → an NSD
/// secondary by AXFR, then IXFR.
#[test]
fn knot_primary_knotc_to_secondary53_by_ixfr_to_nsd_by_ixfr() {
    let sec_port = free_port();
    let knot = Knot::start(KnotOptions {
        zone: ZONE.into(),
        tsig: key(),
        role: KnotRole::Primary {
            zone_text: zone_text(SERIAL, false),
            notify_to: vec![sec_port],
        },
    });
    run_chain(&knot, sec_port, "IXFR", |port| NsdDownstream {
        nsd: nsd_secondary(port, sec_port),
    });
}

/// An NSD primary with `store-ixfr`/`create-ixfr`, changed by a new zone
/// file and `nsd-control reload` → secondary53 by IXFR → a Knot secondary
/// by AXFR, then IXFR.
///
/// NSD 4.6's IXFR re-adds apex records the change did not touch (MX and
/// TXT here); secondary53 journals only the real change, so the IXFR it
/// serves applies on Knot, which refuses to add a record it holds.
#[test]
fn nsd_primary_zone_file_reload_to_secondary53_by_ixfr_to_knot_by_ixfr() {
    let sec_port = free_port();
    let nsd = nsd_primary(sec_port, true);
    run_chain(&nsd, sec_port, "IXFR", |port| KnotDownstream {
        knot: Knot::start_on(
            port,
            KnotOptions {
                zone: ZONE.into(),
                tsig: key(),
                role: KnotRole::Secondary {
                    primary_port: sec_port,
                },
            },
        ),
        primary_port: sec_port,
    });
}

/// An NSD primary without `store-ixfr` answers IXFR with the whole zone →
/// secondary53 stores only the change (AXFR-style IXFR) → a BIND secondary
/// by AXFR, then IXFR.
#[test]
fn nsd_primary_without_ixfr_to_secondary53_by_full_zone_to_bind_by_ixfr() {
    let sec_port = free_port();
    let nsd = nsd_primary(sec_port, false);
    run_chain(&nsd, sec_port, "AXFR-style_IXFR", |port| {
        BindSecondary::start(port, sec_port, ZONE, Some(key()))
    });
}

/// A PowerDNS primary changed by pdnsutil (it does not serve IXFR: the
/// whole zone in answer) → secondary53 stores only the change → an NSD
/// secondary gets an IXFR.
#[test]
fn powerdns_primary_pdnsutil_to_secondary53_by_full_zone_to_nsd_by_ixfr() {
    let sec_port = free_port();
    let pdns = Pdns::start(PdnsOptions {
        zone: ZONE.into(),
        zone_text: zone_text(SERIAL, false),
        tsig: key(),
        notify_to: vec![sec_port],
    });
    run_chain(&pdns, sec_port, "AXFR-style_IXFR", |port| NsdDownstream {
        nsd: nsd_secondary(port, sec_port),
    });
}

fn nsd_primary(sec_port: u16, store_ixfr: bool) -> Nsd {
    Nsd::start(NsdOptions {
        zone: ZONE.into(),
        tsig: key(),
        role: NsdRole::Primary {
            zone_text: zone_text(SERIAL, false),
            notify_to: vec![sec_port],
        },
        store_ixfr,
    })
}

fn nsd_secondary(port: u16, primary_port: u16) -> Nsd {
    Nsd::start_on(
        port,
        NsdOptions {
            zone: ZONE.into(),
            tsig: key(),
            role: NsdRole::Secondary { primary_port },
            store_ixfr: true,
        },
    )
}
