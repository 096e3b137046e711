//! secondary53 as a primary: zones loaded from master files, served,
//! reloaded (control command and SIGHUP, with BIND's serial rule), and
//! transferred out by AXFR and IXFR, to `dig` and to a real BIND 9 `named`
//! running as a secondary (plain and TSIG-signed, with NOTIFY out).

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::bind_secondary::BindSecondary;
use common::{
    Secondary, assert_zones_equal, dig, free_port, parse_soa_serial, poll_until, strip_tsig_lines,
    wait_until,
};
use tempfile::TempDir;

const ZONE: &str = "example.org";
const KEY: (&str, &str, &str) = (
    "xfer",
    "hmac-sha256",
    "c2VjcmV0LWtleS1mb3ItdGhlLXRlc3RzLTAxMjM0NTY=",
);

/// First serial of the test zones; far from 1, so IXFR=1 asks for a serial
/// the journal never held.
const SERIAL: u32 = 2_024_010_101;

/// The records of the first version, besides the SOA: NS, A, MX, TXT, CNAME.
const BASE_RECORDS: &str = "\
@       IN NS    ns1
@       IN MX    10 mail
@       IN TXT   \"v=spf1 mx -all\"
ns1     IN A     127.0.0.1
mail    IN A     192.0.2.25
www     IN A     192.0.2.80
alias   IN CNAME www
";

/// A master file of `example.org` with `serial` and `records` (relative
/// names, `$TTL 300`).
fn zone_text(serial: u32, records: &str) -> String {
    format!(
        "$ORIGIN {ZONE}.\n$TTL 300\n\
         @ 3600 IN SOA ns1.{ZONE}. hostmaster.{ZONE}. {serial} 3600 600 86400 300\n{records}"
    )
}

/// [`BASE_RECORDS`] with `www` at `www_ip`.
fn records_with_www(www_ip: &str) -> String {
    BASE_RECORDS.replace("192.0.2.80", www_ip)
}

// ---------------------------------------------------------------------------
// secondary53 serving a file zone
// ---------------------------------------------------------------------------

/// secondary53 with one primary zone. Fields drop in order: the process
/// first (its `Drop` prints the log tail on a panic), the temp dir last.
struct Primary {
    sec: Secondary,
    port: u16,
    zone_path: PathBuf,
    _dir: TempDir,
}

/// Starts secondary53 serving `text` as `example.org` from a file, with
/// `zone_extra` appended to the `[[zone]]` table and `top_extra` before it
/// (for `[[key]]` tables). Waits (10 s) until it answers the SOA.
fn start_primary(text: &str, top_extra: &str, zone_extra: &str) -> Primary {
    start_primary_on(free_port(), text, top_extra, zone_extra)
}

fn start_primary_on(port: u16, text: &str, top_extra: &str, zone_extra: &str) -> Primary {
    let dir = tempfile::Builder::new()
        .prefix("sec53-primary-")
        .tempdir()
        .expect("temp dir for secondary53");
    let zone_path = dir.path().join("example.org.zone");
    fs::write(&zone_path, text).expect("write zone file");
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nudp_workers = 2\n\n\
         {top_extra}\n[[zone]]\nname = \"{ZONE}\"\nfile = \"{}\"\n{zone_extra}",
        dir.path().join("var").display(),
        zone_path.display()
    );
    let mut sec = Secondary::start(dir.path(), &config);
    sec.wait_for_log("zone file loaded", Duration::from_secs(10));
    let p = Primary {
        sec,
        port,
        zone_path,
        _dir: dir,
    };
    wait_until(
        "secondary53 answers the SOA of the file zone",
        Duration::from_secs(10),
        || p.serial() == Some(serial_in(text)),
    );
    p
}

/// The serial written in a zone text made by [`zone_text`].
fn serial_in(text: &str) -> u32 {
    text.lines()
        .find(|l| l.contains(" SOA "))
        .and_then(|l| l.split_whitespace().nth(6))
        .and_then(|s| s.parse().ok())
        .expect("zone text has an SOA line")
}

impl Primary {
    /// `dig +short NAME TYPE` against secondary53: answer lines, sorted.
    fn short(&self, name: &str, rtype: &str) -> Vec<String> {
        short(self.port, name, rtype)
    }

    fn serial(&self) -> Option<u32> {
        parse_soa_serial(&dig(&[
            "@127.0.0.1",
            "-p",
            &self.port.to_string(),
            ZONE,
            "SOA",
            "+short",
        ]))
    }

    fn write_zone(&self, text: &str) {
        // Write to a temp name and rename, so a reload never reads half a file.
        let tmp = self.zone_path.with_extension("tmp");
        fs::write(&tmp, text).expect("write zone file");
        fs::rename(&tmp, &self.zone_path).expect("rename zone file into place");
    }

    /// `secondary53 zone reload example.org`; panics if the command fails.
    fn reload(&self) {
        let (ok, out, err) = self.sec.cli(&["zone", "reload", ZONE]);
        assert!(ok, "zone reload failed:\n{out}{err}");
    }

    /// `secondary53 zone dump example.org`.
    fn dump(&self) -> String {
        let (ok, out, err) = self.sec.cli(&["zone", "dump", ZONE]);
        assert!(ok, "zone dump failed:\n{out}{err}");
        out
    }

    fn log_count(&self, needle: &str) -> usize {
        self.sec.log().matches(needle).count()
    }

    /// Waits (10 s) until `needle` occurs more than `before` times in the log,
    /// and returns the last log line containing it.
    fn wait_for_more(&self, needle: &str, before: usize) -> String {
        if !poll_until(Duration::from_secs(10), || self.log_count(needle) > before) {
            panic!(
                "secondary53 did not log {needle:?} again (seen {before} times) within 10 s; log:\n{}",
                self.sec.log()
            );
        }
        self.sec
            .log()
            .lines()
            .rev()
            .find(|l| l.contains(needle))
            .expect("counted above")
            .to_string()
    }
}

/// `dig +short NAME TYPE` at 127.0.0.1:`port`: answer lines, sorted.
fn short(port: u16, name: &str, rtype: &str) -> Vec<String> {
    let out = dig(&["@127.0.0.1", "-p", &port.to_string(), name, rtype, "+short"]);
    let mut lines: Vec<String> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// Runs `secondary53 journal example.org --since SERIAL` and returns the
/// removed (`- `) and added (`+ `) records of the versions shown, whitespace
/// collapsed, each list sorted.
fn journal_delta(sec: &Secondary, since: u32) -> (Vec<String>, Vec<String>, String) {
    let (ok, out, err) = sec.cli(&["journal", ZONE, "--since", &since.to_string()]);
    assert!(ok, "secondary53 journal failed:\n{out}{err}");
    let norm = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut removed: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("- "))
        .map(norm)
        .collect();
    let mut added: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("+ "))
        .map(norm)
        .collect();
    removed.sort();
    added.sort();
    (removed, added, out)
}

fn soa_line(serial: u32) -> String {
    format!("{ZONE}. 3600 IN SOA ns1.{ZONE}. hostmaster.{ZONE}. {serial} 3600 600 86400 300")
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn send_sighup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill -HUP");
    assert!(status.success(), "kill -HUP {pid} failed: {status}");
}

#[test]
fn primary_zone_from_file_is_served_and_reloaded() {
    let mut p = start_primary(&zone_text(SERIAL, BASE_RECORDS), "", "");
    let www = format!("www.{ZONE}");

    // Every type of the file is answered.
    assert_eq!(
        p.short(ZONE, "SOA"),
        [format!(
            "ns1.{ZONE}. hostmaster.{ZONE}. {SERIAL} 3600 600 86400 300"
        )]
    );
    assert_eq!(p.short(ZONE, "NS"), [format!("ns1.{ZONE}.")]);
    assert_eq!(p.short(ZONE, "MX"), [format!("10 mail.{ZONE}.")]);
    assert_eq!(p.short(ZONE, "TXT"), ["\"v=spf1 mx -all\""]);
    assert_eq!(p.short(&www, "A"), ["192.0.2.80"]);
    assert_eq!(
        p.short(&format!("alias.{ZONE}"), "A"),
        sorted(&["192.0.2.80", &format!("www.{ZONE}.")]),
        "CNAME followed within the zone"
    );
    assert_eq!(
        p.short(&format!("alias.{ZONE}"), "CNAME"),
        [format!("www.{ZONE}.")]
    );

    // A higher serial: changed A, one record added, one removed.
    let v2 = SERIAL + 1;
    let records = records_with_www("192.0.2.81")
        .replace("@       IN TXT   \"v=spf1 mx -all\"\n", "")
        + "new     IN AAAA  2001:db8::1\n";
    p.write_zone(&zone_text(v2, &records));
    let loaded_before = p.log_count("zone file loaded");
    let reloaded = Instant::now();
    p.reload();
    let mut seen = false;
    while reloaded.elapsed() < Duration::from_secs(1) {
        if p.short(&www, "A") == ["192.0.2.81"] {
            seen = true;
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let latency = reloaded.elapsed();
    assert!(
        seen,
        "new answer not served within 1 s of `zone reload`; www is {:?}; log:\n{}",
        p.short(&www, "A"),
        p.sec.log()
    );
    eprintln!("reload to new answer: {latency:?}");
    let line = p.wait_for_more("zone file loaded", loaded_before);
    assert!(
        line.contains(&format!("serial_to={v2}"))
            && line.contains("removed=3")
            && line.contains("added=3"),
        "unexpected load line: {line}"
    );
    assert_eq!(p.short(ZONE, "TXT"), Vec::<String>::new(), "TXT removed");
    assert_eq!(p.short(&format!("new.{ZONE}"), "AAAA"), ["2001:db8::1"]);
    assert_eq!(p.serial(), Some(v2));

    let (removed, added, journal) = journal_delta(&p.sec, SERIAL);
    assert_eq!(
        (removed, added),
        (
            sorted(&[
                &soa_line(SERIAL),
                &format!("www.{ZONE}. 300 IN A 192.0.2.80"),
                &format!("{ZONE}. 300 IN TXT \"v=spf1 mx -all\""),
            ]),
            sorted(&[
                &soa_line(v2),
                &format!("www.{ZONE}. 300 IN A 192.0.2.81"),
                &format!("new.{ZONE}. 300 IN AAAA 2001:db8::1"),
            ])
        ),
        "journal delta {SERIAL} -> {v2}:\n{journal}"
    );
    assert!(
        journal.contains(&format!("serial {SERIAL} -> {v2}")),
        "journal header:\n{journal}"
    );

    // Changed again, serial not raised: refused, the old answer stays.
    p.write_zone(&zone_text(v2, &records.replace("192.0.2.81", "192.0.2.82")));
    let refused_before = p.log_count("zone file not loaded");
    p.reload();
    let line = p.wait_for_more("zone file not loaded", refused_before);
    assert!(
        line.contains(&format!("serial {v2} is not newer than the loaded {v2}")),
        "log does not explain the serial rule: {line}"
    );
    assert_eq!(p.short(&www, "A"), ["192.0.2.81"], "old answer stays");
    assert_eq!(p.serial(), Some(v2));

    // A syntax error: refused, the log names the file, the old answer stays.
    p.write_zone(&zone_text(
        v2 + 1,
        &(records.replace("192.0.2.81", "192.0.2.83") + "broken  IN A     192.0.2.300\n"),
    ));
    let refused_before = p.log_count("zone file not loaded");
    p.reload();
    let line = p.wait_for_more("zone file not loaded", refused_before);
    assert!(
        line.contains(&p.zone_path.display().to_string()),
        "log line does not name the file {}: {line}",
        p.zone_path.display()
    );
    assert!(!line.contains("not newer"), "wrong reason: {line}");
    assert_eq!(p.short(&www, "A"), ["192.0.2.81"], "old answer stays");
    assert_eq!(p.serial(), Some(v2));

    // SIGHUP reloads a valid change.
    let v3 = v2 + 1;
    p.write_zone(&zone_text(v3, &records.replace("192.0.2.81", "192.0.2.84")));
    let pid = p.sec.pid().expect("secondary53 runs");
    send_sighup(pid);
    wait_until(
        "the SIGHUP-reloaded answer is served",
        Duration::from_secs(5),
        || p.short(&www, "A") == ["192.0.2.84"],
    );
    assert_eq!(p.serial(), Some(v3));
    assert!(p.sec.log().contains("SIGHUP: reloading primary zones"));
    assert!(p.sec.is_running(), "SIGHUP must not stop the server");
    let (removed, added, journal) = journal_delta(&p.sec, v2);
    assert_eq!(
        (removed, added),
        (
            sorted(&[&soa_line(v2), &format!("www.{ZONE}. 300 IN A 192.0.2.81")]),
            sorted(&[&soa_line(v3), &format!("www.{ZONE}. 300 IN A 192.0.2.84")]),
        ),
        "journal delta {v2} -> {v3}:\n{journal}"
    );

    // A reload of an unchanged file changes nothing.
    let unchanged_before = p.log_count("zone file unchanged");
    p.reload();
    p.wait_for_more("zone file unchanged", unchanged_before);
    assert_eq!(p.serial(), Some(v3));
}

// ---------------------------------------------------------------------------
// A real BIND 9 secondary of secondary53
// ---------------------------------------------------------------------------

/// secondary53 as the primary of a BIND secondary, both started; the BIND
/// secondary has done its first transfer. Drops BIND first, secondary53
/// next.
struct Chain {
    bind: BindSecondary,
    p: Primary,
}

fn start_chain(key: bool) -> Chain {
    let sec_port = free_port();
    let bind_port = free_port();
    let (top, acl) = if key {
        (
            format!(
                "[[key]]\nname = \"{}\"\nalgorithm = \"{}\"\nsecret = \"{}\"\n",
                KEY.0, KEY.1, KEY.2
            ),
            format!(
                "allow_transfer = [\"127.0.0.1 key {}\"]\nnotify_key = \"{}\"\n",
                KEY.0, KEY.0
            ),
        )
    } else {
        (
            String::new(),
            "allow_transfer = [\"127.0.0.1\"]\n".to_string(),
        )
    };
    let zone_extra = format!("{acl}also_notify = [\"127.0.0.1:{bind_port}\"]\n");
    let p = start_primary_on(
        sec_port,
        &zone_text(SERIAL, BASE_RECORDS),
        &top,
        &zone_extra,
    );
    let key = key.then(|| (KEY.0.to_string(), KEY.1.to_string(), KEY.2.to_string()));
    let mut bind = BindSecondary::start(bind_port, sec_port, ZONE, key);
    bind.wait_serial(SERIAL, Duration::from_secs(20));
    Chain { bind, p }
}

/// BIND's AXFR of the zone equals `secondary53 zone dump`.
fn assert_chain_equal(c: &Chain) {
    assert_zones_equal(ZONE, &c.bind.axfr(), &c.p.dump());
}

/// A change in the file with a higher serial, reloaded: the BIND secondary
/// gets NOTIFY, transfers by IXFR and serves it.
fn change_and_follow_by_ixfr(c: &mut Chain, serial: u32, www_ip: &str) {
    let previous = c.bind.serial().expect("BIND serves the zone");
    let ixfr_out_before = c.p.log_count("kind=Ixfr");
    let incremental_before = c.bind.log_lines("got incremental response").len();
    let reloaded = Instant::now();
    c.p.write_zone(&zone_text(
        serial,
        &(records_with_www(www_ip) + &format!("ixfr{serial} IN TXT \"added in {serial}\"\n")),
    ));
    c.p.reload();
    c.bind.wait_serial(serial, Duration::from_secs(10));
    eprintln!(
        "reload of {serial} to BIND serving it: {:?}",
        reloaded.elapsed()
    );
    assert_eq!(
        short(c.bind.port(), &format!("www.{ZONE}"), "A"),
        [www_ip],
        "BIND serves the new record"
    );
    assert_eq!(
        short(c.bind.port(), &format!("ixfr{serial}.{ZONE}"), "TXT"),
        [format!("\"added in {serial}\"")]
    );

    // secondary53 sent NOTIFY and an IXFR; BIND took both as such.
    let line = c.p.wait_for_more("kind=Ixfr", ixfr_out_before);
    assert!(
        line.contains("transfer out") && line.contains(&format!("serial={serial}")),
        "secondary53 did not log the IXFR out: {line}"
    );
    let notified = c.bind.log_lines("notify from 127.0.0.1#");
    assert!(
        notified
            .iter()
            .any(|l| l.contains(&format!("serial {serial}"))),
        "BIND did not log a NOTIFY for serial {serial}: {notified:#?}"
    );
    let requested = c
        .bind
        .log_lines(&format!("requesting IXFR for serial {previous}"));
    assert!(
        !requested.is_empty(),
        "BIND did not request IXFR from serial {previous}; its transfer lines: {:#?}",
        c.bind.log_lines("transfer of")
    );
    assert!(
        c.bind.log_lines("got incremental response").len() > incremental_before,
        "BIND did not get an incremental response; its transfer lines: {:#?}",
        c.bind.log_lines("transfer of")
    );
    assert_chain_equal(c);
}

#[test]
fn bind_secondary_chains_from_secondary53_by_axfr_then_ixfr() {
    let mut c = start_chain(false);

    // The first transfer was a full one, on both sides.
    let first = c.p.sec.log();
    assert!(
        first
            .lines()
            .any(|l| l.contains("transfer out") && l.contains("kind=Axfr")),
        "secondary53 logged no AXFR out:\n{first}"
    );
    assert!(
        !c.bind.log_lines("requesting AXFR").is_empty()
            && !c.bind.log_lines("got nonincremental response").is_empty(),
        "BIND logged no AXFR; its transfer lines: {:#?}",
        c.bind.log_lines("transfer of")
    );
    assert_chain_equal(&c);

    change_and_follow_by_ixfr(&mut c, SERIAL + 1, "192.0.2.81");
    change_and_follow_by_ixfr(&mut c, SERIAL + 2, "192.0.2.82");
}

#[test]
fn bind_secondary_chains_from_secondary53_with_tsig() {
    let mut c = start_chain(true);
    assert_chain_equal(&c);
    change_and_follow_by_ixfr(&mut c, SERIAL + 1, "192.0.2.81");
    // secondary53 signed its NOTIFY with `notify_key`, and BIND saw it.
    let signed_notify = c.bind.log_lines(&format!(
        "received notify for zone '{ZONE}': TSIG '{}'",
        KEY.0
    ));
    assert!(
        !signed_notify.is_empty(),
        "BIND logged no signed NOTIFY: {:#?}",
        c.bind.log_lines("notify")
    );
}

/// `-y ALG:NAME:SECRET` for dig.
fn dig_key(secret: &str) -> String {
    format!("{}:{}:{secret}", KEY.1, KEY.0)
}

#[test]
fn transfer_out_with_a_key_acl_needs_the_key() {
    let top = format!(
        "[[key]]\nname = \"{}\"\nalgorithm = \"{}\"\nsecret = \"{}\"\n",
        KEY.0, KEY.1, KEY.2
    );
    let acl = format!("allow_transfer = [\"127.0.0.1 key {}\"]\n", KEY.0);
    let mut p = start_primary(&zone_text(SERIAL, BASE_RECORDS), &top, &acl);
    let port = p.port.to_string();
    let key = dig_key(KEY.2);

    // Signed AXFR: the zone, every message verified by dig.
    let signed = dig(&[
        "@127.0.0.1",
        "-p",
        &port,
        ZONE,
        "AXFR",
        "-y",
        &key,
        "+nocmd",
        "+nostats",
        "+nocomments",
    ]);
    assert!(
        !signed.contains("Transfer failed") && !signed.contains("verify"),
        "signed AXFR failed:\n{signed}"
    );
    assert_zones_equal(ZONE, &signed, &p.dump());

    // Signed IXFR after a change: incremental and verified.
    let loaded = p.log_count("zone file loaded");
    p.write_zone(&zone_text(SERIAL + 1, &records_with_www("192.0.2.81")));
    p.reload();
    p.wait_for_more("zone file loaded", loaded);
    let ixfr = dig(&[
        "@127.0.0.1",
        "-p",
        &port,
        ZONE,
        &format!("IXFR={SERIAL}"),
        "-y",
        &key,
        "+nocmd",
        "+nostats",
        "+nocomments",
    ]);
    assert!(
        !ixfr.contains("Transfer failed") && !ixfr.contains("verify"),
        "signed IXFR failed:\n{ixfr}"
    );
    let soas: Vec<u32> = xfr_records(&ixfr).iter().filter_map(|r| r.1).collect();
    assert_eq!(soas, [SERIAL + 1, SERIAL, SERIAL + 1, SERIAL + 1], "{ixfr}");

    // Unsigned: REFUSED, and the log says why.
    let refused_before = p.log_count("transfer refused");
    let unsigned = dig(&[
        "@127.0.0.1",
        "-p",
        &port,
        ZONE,
        "AXFR",
        "+nocmd",
        "+nostats",
    ]);
    assert!(
        unsigned.contains("Transfer failed"),
        "unsigned AXFR was not refused:\n{unsigned}"
    );
    let line = p.wait_for_more("transfer refused", refused_before);
    assert!(
        line.contains("not in allow_transfer") && line.contains("peer=127.0.0.1:"),
        "refusal log line: {line}"
    );
    let unsigned_ixfr = dig(&[
        "@127.0.0.1",
        "-p",
        &port,
        ZONE,
        &format!("IXFR={SERIAL}"),
        "+nocmd",
        "+nostats",
    ]);
    assert!(
        unsigned_ixfr.contains("Transfer failed"),
        "unsigned IXFR was not refused:\n{unsigned_ixfr}"
    );

    // A wrong secret: refused, the log names the failed TSIG.
    let refused_before = p.log_count("transfer refused");
    let wrong = dig_key("d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE=");
    let out = dig(&[
        "@127.0.0.1",
        "-p",
        &port,
        ZONE,
        "AXFR",
        "-y",
        &wrong,
        "+nocmd",
        "+nostats",
    ]);
    assert!(
        !out.contains(&format!("ns1.{ZONE}.")) || out.contains("Transfer failed"),
        "AXFR signed with a wrong secret got the zone:\n{out}"
    );
    let line = p.wait_for_more("transfer refused", refused_before);
    assert!(line.contains("TSIG failed"), "refusal log line: {line}");
    assert!(p.sec.is_running());
}

// ---------------------------------------------------------------------------
// IXFR out to dig: up to date, incremental, AXFR-style fallback
// ---------------------------------------------------------------------------

/// Records of a `dig` transfer output: one `(type, serial-if-SOA, line)`
/// per record, TSIG lines dropped, whitespace collapsed.
fn xfr_records(out: &str) -> Vec<(String, Option<u32>, String)> {
    strip_tsig_lines(out)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let rtype = f.get(3).copied().unwrap_or("").to_string();
            let serial = (rtype == "SOA")
                .then(|| f.get(6).and_then(|s| s.parse().ok()))
                .flatten();
            (rtype, serial, f.join(" "))
        })
        .collect()
}

fn dig_ixfr(port: u16, serial: u32) -> String {
    let out = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        ZONE,
        &format!("IXFR={serial}"),
        "+nocmd",
        "+nostats",
        "+nocomments",
    ]);
    assert!(
        !out.contains("Transfer failed") && !out.contains("connection timed out"),
        "IXFR={serial} failed:\n{out}"
    );
    out
}

/// Loads four versions (SERIAL .. SERIAL+3), each changing `www`.
fn primary_with_versions(journal_max_versions: u32) -> Primary {
    let p = start_primary(
        &zone_text(SERIAL, BASE_RECORDS),
        "",
        &format!(
            "allow_transfer = [\"127.0.0.1\"]\njournal_max_versions = {journal_max_versions}\n"
        ),
    );
    for i in 1..=3u32 {
        let loaded = p.log_count("zone file loaded");
        p.write_zone(&zone_text(
            SERIAL + i,
            &records_with_www(&format!("192.0.2.{}", 80 + i)),
        ));
        p.reload();
        p.wait_for_more("zone file loaded", loaded);
        wait_until("the new version is served", Duration::from_secs(5), || {
            p.serial() == Some(SERIAL + i)
        });
    }
    p
}

#[test]
fn ixfr_out_with_current_serial_is_a_single_soa() {
    let p = primary_with_versions(1000);
    let current = SERIAL + 3;
    let before = p.log_count("kind=UpToDate");
    let recs = xfr_records(&dig_ixfr(p.port, current));
    assert_eq!(
        recs.iter().map(|r| (r.0.as_str(), r.1)).collect::<Vec<_>>(),
        [("SOA", Some(current))],
        "{recs:#?}"
    );
    p.wait_for_more("kind=UpToDate", before);
    // A serial newer than ours (the requester is ahead): also just the SOA.
    let recs = xfr_records(&dig_ixfr(p.port, current + 10));
    assert_eq!(
        recs.iter().map(|r| (r.0.as_str(), r.1)).collect::<Vec<_>>(),
        [("SOA", Some(current))],
        "{recs:#?}"
    );
}

#[test]
fn ixfr_out_from_a_journaled_serial_is_incremental() {
    let p = primary_with_versions(1000);
    let current = SERIAL + 3;

    // One version back: exactly one difference sequence.
    let before = p.log_count("kind=Ixfr");
    let recs = xfr_records(&dig_ixfr(p.port, SERIAL + 2));
    let lines: Vec<&str> = recs.iter().map(|r| r.2.as_str()).collect();
    let www = |ip: &str| format!("www.{ZONE}. 300 IN A {ip}");
    assert_eq!(
        lines,
        [
            soa_line(current).as_str(),
            &soa_line(SERIAL + 2),
            &www("192.0.2.82"),
            &soa_line(current),
            &www("192.0.2.83"),
            &soa_line(current),
        ],
        "IXFR={} answer",
        SERIAL + 2
    );
    let line = p.wait_for_more("kind=Ixfr", before);
    assert!(line.contains(&format!("serial={current}")), "{line}");

    // Three versions back: three sequences in order.
    let recs = xfr_records(&dig_ixfr(p.port, SERIAL));
    let soas: Vec<u32> = recs.iter().filter_map(|r| r.1).collect();
    assert_eq!(
        soas,
        [
            current,
            SERIAL,
            SERIAL + 1,
            SERIAL + 1,
            SERIAL + 2,
            SERIAL + 2,
            current,
            current
        ],
        "SOA sequence of IXFR={SERIAL}: {recs:#?}"
    );
    assert_eq!(recs.len(), 8 + 6, "{recs:#?}");
}

#[test]
fn ixfr_out_falls_back_to_full_zone_when_journal_is_short() {
    // Keep two versions: SERIAL -> SERIAL+1 is trimmed away.
    let p = primary_with_versions(2);
    let current = SERIAL + 3;
    let dump = p.dump();

    // A serial the journal never held.
    let before = p.log_count("kind=AxfrStyleIxfr");
    let out = dig_ixfr(p.port, 1);
    let recs = xfr_records(&out);
    let soas: Vec<u32> = recs.iter().filter_map(|r| r.1).collect();
    assert_eq!(soas, [current, current], "AXFR-style: {recs:#?}");
    assert_eq!(recs.first().map(|r| r.0.as_str()), Some("SOA"));
    assert_eq!(recs.last().map(|r| r.0.as_str()), Some("SOA"));
    assert_zones_equal(ZONE, &out, &dump);
    assert_eq!(recs.len(), 2 + 7, "SOA, 7 records, SOA: {recs:#?}");
    p.wait_for_more("kind=AxfrStyleIxfr", before);

    // A serial that was journaled once but trimmed: full zone too.
    let before = p.log_count("kind=AxfrStyleIxfr");
    let out = dig_ixfr(p.port, SERIAL);
    let soas: Vec<u32> = xfr_records(&out).iter().filter_map(|r| r.1).collect();
    assert_eq!(
        soas,
        [current, current],
        "IXFR={SERIAL} after trimming:\n{out}"
    );
    assert_zones_equal(ZONE, &out, &dump);
    p.wait_for_more("kind=AxfrStyleIxfr", before);

    // Still in the journal: incremental, two sequences.
    let out = dig_ixfr(p.port, SERIAL + 1);
    let soas: Vec<u32> = xfr_records(&out).iter().filter_map(|r| r.1).collect();
    assert_eq!(
        soas,
        [
            current,
            SERIAL + 1,
            SERIAL + 2,
            SERIAL + 2,
            current,
            current
        ],
        "IXFR={}:\n{out}",
        SERIAL + 1
    );
}
