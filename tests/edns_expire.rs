//! EDNS EXPIRE (RFC 7314) along chains of secondaries, with real peers:
//! secondary53 below a BIND secondary takes the EXPIRE BIND reports, not
//! the SOA's; a Knot secondary below secondary53 counts down with it once
//! secondary53 has lost its primary (Knot honours EXPIRE; BIND 9.18 does
//! not on transfers, so it is not the downstream here).

mod common;

use std::time::{Duration, Instant};

use common::bind_secondary::BindSecondary;
use common::knot::{Knot, KnotOptions, KnotRole};
use common::{Bind, BindOptions, Secondary, TsigKey, dig, free_port, wait_until};

const ZONE: &str = "expire.test";

fn key() -> TsigKey {
    (
        "xfer".to_string(),
        "hmac-sha256".to_string(),
        "c2VjcmV0LWtleS1mb3ItdGhlLWV4cGlyZS10ZXN0".to_string(),
    )
}

fn zone_text(refresh: u32, retry: u32, expire: u32) -> String {
    format!(
        "$ORIGIN {ZONE}.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 {refresh} {retry} {expire} 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\nwww IN A 192.0.2.80\n"
    )
}

/// The EXPIRE dig prints for an SOA query at `port` with `+expire`.
fn expire_at(port: u16) -> Option<u32> {
    let out = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "+expire",
        ZONE,
        "SOA",
    ]);
    let line = out.lines().find(|l| l.starts_with("; EXPIRE: "))?;
    line["; EXPIRE: ".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn start_secondary53(dir: &tempfile::TempDir, port: u16, primary: u16) -> Secondary {
    let (name, alg, secret) = key();
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\n\
         [[key]]\nname = \"{name}\"\nalgorithm = \"{alg}\"\nsecret = \"{secret}\"\n\n\
         [[zone]]\nname = \"{ZONE}\"\nprimaries = [\"127.0.0.1:{primary}\"]\n\
         allow_transfer = [\"127.0.0.1 key {name}\"]\n",
        dir.path().join("var").display()
    );
    Secondary::start(dir.path(), &config)
}

/// RFC 7314 section 4: a secondary of a secondary takes the EXPIRE its
/// primary reports. BIND's secondary has been counting down for a while,
/// so its EXPIRE is below the SOA expire; secondary53 reports the same
/// (within 2 s), not the SOA's 7200.
#[test]
fn secondary53_below_a_bind_secondary_takes_its_expire() {
    let bind = Bind::start(BindOptions::new(ZONE, zone_text(3600, 600, 7200)));
    let bs_port = free_port();
    let mut bind_secondary = BindSecondary::start(bs_port, bind.port(), ZONE, None);
    bind_secondary.wait_serial(1, Duration::from_secs(20));
    let bind_expire = expire_at(bs_port).expect("BIND's secondary answers EXPIRE");
    assert!(bind_expire <= 7200, "{bind_expire}");
    // Let BIND's timer run, so its EXPIRE differs from the SOA's.
    std::thread::sleep(Duration::from_secs(6));
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _sec = start_secondary53(&dir, port, bs_port);
    wait_until(
        "secondary53 serves the zone",
        Duration::from_secs(20),
        || expire_at(port).is_some(),
    );
    let ours = expire_at(port).expect("secondary53 answers EXPIRE");
    let theirs = expire_at(bs_port).expect("BIND answers EXPIRE");
    assert!(
        ours <= 7200 - 4,
        "secondary53 took the SOA expire ({ours}), not BIND's EXPIRE ({theirs})"
    );
    assert!(
        ours.abs_diff(theirs) <= 2,
        "secondary53 reports {ours}, BIND's secondary {theirs}"
    );
}

/// Knot's `zone-status` expiration, in seconds (`+1m20s`, `+45s`).
fn knot_expiration(knot: &Knot) -> Option<u32> {
    let out = knot.knotc(&["zone-status", ZONE]);
    let at = out.find("expiration: +")? + "expiration: +".len();
    let text: String = out[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let mut secs = 0u32;
    let mut n = 0u32;
    for c in text.chars() {
        match c {
            '0'..='9' => n = n * 10 + c.to_digit(10)?,
            'h' => (secs, n) = (secs + n * 3600, 0),
            'm' => (secs, n) = (secs + n * 60, 0),
            's' => (secs, n) = (secs + n, 0),
            'd' => (secs, n) = (secs + n * 86400, 0),
            _ => return None,
        }
    }
    Some(secs)
}

/// secondary53 loses its primary; the Knot secondary below it keeps
/// refreshing from it (the zone is up to date) but, told the EXPIRE that
/// is left, keeps counting down instead of restarting its timer at every
/// refresh: the chain expires with its first link.
#[test]
fn knot_below_secondary53_counts_down_when_secondary53_loses_its_primary() {
    let mut bind = Bind::start(BindOptions::new(ZONE, zone_text(2, 2, 50)));
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let sec = start_secondary53(&dir, port, bind.port());
    if !common::poll_until(Duration::from_secs(20), || expire_at(port).is_some()) {
        panic!(
            "secondary53 does not answer EXPIRE:\n{}\n{}",
            dig(&[
                "@127.0.0.1",
                "-p",
                &port.to_string(),
                "+expire",
                ZONE,
                "SOA"
            ]),
            sec.log()
        );
    }
    let mut knot = Knot::start(KnotOptions {
        zone: ZONE.into(),
        tsig: key(),
        role: KnotRole::Secondary { primary_port: port },
    });
    knot.wait_serial(1, Duration::from_secs(20));
    bind.stop();
    let lost = Instant::now();
    // Several refresh intervals (2 s) of Knot's, all answered by
    // secondary53 while its own timer runs out.
    std::thread::sleep(Duration::from_secs(12));
    let ours = expire_at(port).expect("secondary53 still serves");
    let knots = knot_expiration(&knot).unwrap_or_else(|| {
        panic!(
            "no expiration in knotc zone-status:\n{}",
            knot.knotc(&["zone-status", ZONE])
        )
    });
    let waited = lost.elapsed().as_secs() as u32;
    assert!(
        ours <= 50 - 10,
        "secondary53's timer runs: {ours} s left after {waited} s"
    );
    assert!(
        knots <= ours + 3,
        "Knot restarted its timer ({knots} s left) instead of following secondary53's EXPIRE ({ours} s)"
    );
    // And Knot did refresh meanwhile (not merely never asked).
    assert!(
        !knot.log_lines("zone is up-to-date").is_empty(),
        "Knot refreshed from secondary53:\n{}",
        knot.log()
    );
}
