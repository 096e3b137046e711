//! Differential test of query answers: secondary53 against a real BIND 9
//! serving the same zone.
//!
//! BIND is the primary of `diff.test` (a hand-written zone covering the
//! RFC 1034 / 4592 / 4035 / 5155 corner cases: delegations with and without
//! DS, in- and out-of-zone glue, wildcards, wildcard CNAME, CNAME chains,
//! empty non-terminals, MX/SRV additional data, big TXT RRsets, mixed case
//! in owner names and in RDATA). secondary53 transfers the zone from it and
//! serves it. Then a few thousand queries, generated from the zone's owner
//! names (every owner name and empty non-terminal × many types, names that
//! do not exist at several depths, wildcard matches, case variations; with
//! DO on and off; some over TCP; some with a 512-byte buffer or without
//! EDNS to force truncation) go to both servers through batched `dig` runs,
//! and the answers are compared: rcode, the AA and TC flags, and the
//! answer, authority and additional sections as multisets of record lines
//! (a record sent twice counts twice). In a record line the owner name is
//! compared case-insensitively (DNS names are; the servers differ in the
//! case they echo) and everything else exactly: TTL, class, type and the
//! RDATA as dig prints it (case matters in TXT, CAA and names inside RDATA,
//! which both servers must keep as the zone has them). Whitespace is
//! collapsed outside quoted strings; the OPT pseudo-section is dropped.
//!
//! Four variants: unsigned, signed with NSEC, signed with NSEC3 (salt,
//! iterations, no opt-out), each signed with `dnssec-signzone` by keys made
//! with `dnssec-keygen` and transferred by AXFR; and `IxfrChain`, where the
//! zone reaches its content through a chain of dynamic updates on BIND,
//! each transferred by IXFR, so secondary53 answers from a snapshot built by
//! applying deltas rather than from a fresh AXFR.
//!
//! BIND's configuration is aligned with secondary53's policy (see
//! [`BIND_OPTIONS`]): `minimal-responses no-auth`, `minimal-any yes`;
//! BIND's other defaults are secondary53's behaviour (an NXDOMAIN to an
//! SOA query carries the SOA with TTL 0, `zero-no-soa-ttl`).
//!
//! Rules (see [`compare`]):
//! - every response is compared in full, truncated (TC) ones too; any
//!   secondary53 UDP response larger than the requester's limit is a
//!   mismatch;
//! - ANY and RRSIG queries (RFC 8482 lets a server answer ANY with one
//!   RRset; BIND treats an RRSIG query like ANY: one covered type's RRSIGs
//!   over UDP) are the one documented difference, compared as follows
//!   when BIND's full answer (asked over TCP, where `minimal-any` does not
//!   apply) is not empty: rcode, AA and TC equal; secondary53's answer
//!   is exactly one whole RRset of BIND's full answer (all its records, as
//!   BIND has them) and, with DO, exactly the RRSIGs covering it (for an
//!   RRSIG query: the RRSIGs of one covered type, see below); the authority
//!   section equals BIND's; the additional section equals BIND's whenever
//!   BIND chose the same RRset (else it belongs to another RRset and is
//!   not compared);
//! - for an RRSIG query over UDP, BIND sends the RRSIGs of one covered
//!   type: secondary53's answer must hold all of BIND's RRSIGs of exactly
//!   one covered type at the name (aliases on the way equal to BIND's).
//!
//! Every mismatch fails the test. A query that gets no response is asked
//! once more (a datagram lost on a busy loopback is not an answer); the
//! test fails listing 40 mismatches (a few of every kind first), with
//! counts by kind. `DIFFERENTIAL_SHOW=n` shows more.

mod common;
#[path = "differential/random.rs"]
mod random;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Bind, BindOptions, Secondary, dig, free_port, parse_soa_serial, tool, wait_until};

const ZONE: &str = "diff.test";
/// BIND's answering policy, made comparable with secondary53's:
/// - `minimal-responses no-auth`: no NS RRset in the authority section of
///   positive answers (secondary53 adds none), additional data kept;
/// - `minimal-any yes`: one RRset for ANY over UDP (RFC 8482);
/// - `check-names primary ignore`: the random round's zone has owner names
///   that are not host names (escaped dots, quotes) with A records, which
///   BIND would refuse to load; secondary53 checks no names;
/// - `rrset-order { order none; }`: records in the order BIND holds them
///   (DNSSEC canonical order, as secondary53 sends them) rather than
///   shuffled, so the records a truncated answer without EDNS keeps are
///   the same every time.
const BIND_OPTIONS: &str = "    minimal-responses no-auth;\n    minimal-any yes;\n    \
     check-names primary ignore;\n    rrset-order { order none; };\n";
const SERIAL: u32 = 2024010101;
/// Mismatches printed in the failure message (override with the
/// environment variable `DIFFERENTIAL_SHOW`).
const SHOW: usize = 40;
/// Queries per `dig` process.
const CHUNK: usize = 150;

// ---------------------------------------------------------------------------
// The zone
// ---------------------------------------------------------------------------

/// A TXT character-string of exactly 255 bytes starting with `tag`.
fn s255(tag: &str) -> String {
    let filler = "abcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = format!("{tag}-");
    while s.len() < 255 {
        let need = 255 - s.len();
        s.push_str(&filler[..need.min(filler.len())]);
    }
    s
}

/// The unsigned master file of `diff.test` (67 records).
fn zone_text() -> String {
    let mut z = format!(
        r#"$ORIGIN diff.test.
$TTL 300
@        3600 IN SOA  ns1.diff.test. hostmaster.diff.test. {SERIAL} 3600 600 86400 300
@        3600 IN NS   ns1
@        3600 IN NS   ns2
@             IN MX   10 mail
@             IN MX   20 mail.example.net.
@             IN TXT  "v=spf1 mx -all"
@             IN TXT  "site-verification=Abc123"
@             IN CAA  0 issue "ca.example.net"
@             IN CAA  0 iodef "mailto:security@diff.test"
@             IN A    192.0.2.10
ns1           IN A    127.0.0.1
ns2           IN A    127.0.0.2
ns2           IN AAAA ::2
mail          IN A    192.0.2.25
mail          IN AAAA 2001:db8::25
WwW           IN A    192.0.2.80
www           IN AAAA 2001:db8::80
www      600  IN TXT  "web server"
Host1         IN A    192.0.2.1
host1         IN TXT  "host one"
host2         IN A    192.0.2.2
host2         IN A    192.0.2.3
host2         IN AAAA 2001:db8::2
MiXeD.CaSe    IN A    192.0.2.7
mixed.case    IN MX   5 Host1
mx-host       IN MX   10 mail
mx-host       IN MX   20 host2
mx-host       IN MX   30 mail.example.net.
_sip._tcp     IN SRV  0 5 5060 host1
_sip._tcp     IN SRV  10 5 5060 host2
_ldap._tcp    IN SRV  0 0 389 ns.outside.example.
caa           IN CAA  0 issue "letsencrypt.org"
caa           IN CAA  0 issuewild ";"
caa           IN CAA  128 tbs "Unknown"
sub           IN NS   ns1.sub
sub           IN NS   ns.outside.example.
ns1.sub       IN A    192.0.2.53
ns1.sub       IN AAAA 2001:db8::53
secure        IN NS   ns.secure
secure        IN DS   12345 13 2 2BB183AF5F22588179A53B0A98631FAD1A292118B2A0BA0F5D2F9D6C1B1C8E7F
ns.secure     IN A    192.0.2.54
ext           IN NS   ns1.outside.example.
ext           IN NS   ns2.outside.example.
*.wild        IN A    192.0.2.100
*.wild        IN TXT  "wildcard"
*.wild        IN MX   10 mail
explicit.wild IN A    192.0.2.101
*.cw          IN CNAME www
a.chain       IN CNAME b.chain
b.chain       IN CNAME c.chain
c.chain       IN A    192.0.2.200
c.chain       IN TXT  "end of chain"
ext-cname     IN CNAME www.example.net.
to-wild       IN CNAME foo.wild
to-sub        IN CNAME host.sub
dangle        IN CNAME nothere
a.b.ent       IN A    192.0.2.150
"#
    );
    // One record, two strings: about 300 bytes of RDATA.
    let _ = writeln!(z, "long          IN TXT  \"{}\" \"short\"", s255("long"));
    // Three records of 255 bytes: over 512 bytes, under 1232.
    for i in 1..=3 {
        let _ = writeln!(z, "big           IN TXT  \"{}\"", s255(&format!("big{i}")));
    }
    // Six records of 255 bytes: over 1232 bytes, so UDP always truncates.
    for i in 1..=6 {
        let _ = writeln!(z, "huge          IN TXT  \"{}\"", s255(&format!("huge{i}")));
    }
    z
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Unsigned,
    Nsec,
    Nsec3,
    /// Signed with NSEC3 and opt-out: insecure delegations are not covered.
    Nsec3OptOut,
    /// Unsigned, reached by a chain of IXFRs.
    IxfrChain,
}

/// The zone text BIND serves: unsigned, or signed with a fresh KSK + ZSK
/// (ECDSAP256SHA256) by `dnssec-signzone -S -N keep` (signatures valid from
/// an hour ago for 30 days). NSEC3: salt `abcd`, 5 extra iterations, no
/// opt-out (or with opt-out for [`Variant::Nsec3OptOut`]).
fn served_text(variant: Variant, text: String, dir: &Path) -> String {
    if matches!(variant, Variant::Unsigned | Variant::IxfrChain) {
        return text;
    }
    let unsigned = dir.join("diff.test.db");
    fs::write(&unsigned, &text).expect("write unsigned zone");
    for ksk in [true, false] {
        let mut cmd = Command::new(tool("dnssec-keygen"));
        cmd.current_dir(dir)
            .args(["-q", "-K", ".", "-a", "ECDSAP256SHA256"]);
        if ksk {
            cmd.args(["-f", "KSK"]);
        }
        let out = cmd.arg(ZONE).output().expect("run dnssec-keygen");
        assert!(
            out.status.success(),
            "dnssec-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut cmd = Command::new(tool("dnssec-signzone"));
    cmd.current_dir(dir)
        .args(["-S", "-K", ".", "-o", ZONE, "-N", "keep", "-q"])
        .args(["-f", "diff.test.signed"]);
    if matches!(variant, Variant::Nsec3 | Variant::Nsec3OptOut) {
        cmd.args(["-3", "abcd", "-H", "5"]);
    }
    if variant == Variant::Nsec3OptOut {
        cmd.arg("-A");
    }
    let out = cmd
        .arg("diff.test.db")
        .output()
        .expect("run dnssec-signzone");
    assert!(
        out.status.success(),
        "dnssec-signzone failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read_to_string(dir.join("diff.test.signed")).expect("read signed zone")
}

/// Owner names of a zone text (lowercase, absolute, with trailing dot), from
/// `named-checkzone`'s canonical dump.
fn owner_names(text: &str, dir: &Path) -> BTreeSet<String> {
    let path = dir.join("owners.db");
    fs::write(&path, text).expect("write zone for named-checkzone");
    let out = Command::new(tool("named-checkzone"))
        .args(["-q", "-D", "-o", "-", "-i", "none", "-k", "ignore"])
        .args([
            "-n", "ignore", "-m", "ignore", "-M", "ignore", "-S", "ignore",
        ])
        .arg(ZONE)
        .arg(&path)
        .output()
        .expect("run named-checkzone");
    assert!(
        out.status.success(),
        "named-checkzone failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_lowercase)
        .collect()
}

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

/// Transport and EDNS options of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Opts {
    dnssec: bool,
    tcp: bool,
    bufsize: Option<u16>,
    noedns: bool,
}

impl Opts {
    const PLAIN: Opts = Opts {
        dnssec: false,
        tcp: false,
        bufsize: None,
        noedns: false,
    };

    fn dig_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if self.dnssec {
            a.push("+dnssec".to_string());
        }
        if self.tcp {
            a.push("+tcp".to_string());
        } else {
            // UDP even for ANY (dig asks ANY over TCP by default), and show
            // TC instead of retrying over TCP.
            a.push("+notcp".to_string());
            a.push("+ignore".to_string());
        }
        if let Some(b) = self.bufsize {
            a.push(format!("+bufsize={b}"));
        }
        if self.noedns {
            a.push("+noedns".to_string());
        }
        a
    }
}

#[derive(Clone, Debug)]
struct Query {
    name: String,
    qtype: &'static str,
    opts: Opts,
}

impl Query {
    fn describe(&self) -> String {
        format!(
            "{} {} {}",
            self.name,
            self.qtype,
            self.opts.dig_args().join(" ")
        )
    }
}

const TYPES: &[&str] = &[
    "A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "SRV", "CAA", "DS", "NSEC", "RRSIG", "ANY",
];
const NX_TYPES: &[&str] = &[
    "A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "DS", "NSEC", "ANY",
];
const NSEC3_OWNER_TYPES: &[&str] = &["A", "TXT", "NSEC3", "RRSIG", "ANY"];

/// The corpus for a zone whose served text has `owners` as owner names.
fn corpus(variant: Variant, owners: &BTreeSet<String>) -> Vec<Query> {
    let apex = format!("{ZONE}.");
    let is_nsec3_owner = |n: &str| {
        // Hashed owner: one label of 32 base32hex characters under the apex.
        n.strip_suffix(&format!(".{apex}"))
            .is_some_and(|l| l.len() == 32 && !l.contains('.'))
    };
    let plain: BTreeSet<String> = owners
        .iter()
        .filter(|n| !is_nsec3_owner(n))
        .cloned()
        .collect();
    // Empty non-terminals: ancestors of owners, below the apex, that own
    // nothing.
    let mut ents = BTreeSet::new();
    for n in &plain {
        let mut rest = n.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            if parent.len() <= apex.len() {
                break;
            }
            if !plain.contains(parent) {
                ents.insert(parent.to_string());
            }
            rest = parent;
        }
    }
    let mut names: Vec<(String, &[&str])> = Vec::new();
    for n in plain.iter().chain(&ents) {
        names.push((n.clone(), TYPES));
    }
    // Names that do not exist (or match a wildcard, or lie below a zone cut
    // or a CNAME): one label below every owner and ENT, and a few deeper.
    for n in plain.iter().chain(&ents) {
        names.push((format!("nx.{n}"), NX_TYPES));
    }
    for extra in [
        "nx.nx.diff.test.",
        "a.b.c.nx.diff.test.",
        "x.y.ent.diff.test.",
        "deep.er.wild.diff.test.",
        "a.b.cw.diff.test.",
        "x.explicit.wild.diff.test.",
        "a.b.sub.diff.test.",
        "deep.x.secure.diff.test.",
        "nx.nx.a.chain.diff.test.",
        "~.diff.test.",
        "0.diff.test.",
        "zzzz.diff.test.",
    ] {
        names.push((extra.to_string(), NX_TYPES));
    }
    if variant == Variant::Nsec3 {
        // A few hashed owner names (RFC 5155 section 7.2.9).
        for n in owners.iter().filter(|n| is_nsec3_owner(n)).take(4) {
            names.push((n.clone(), NSEC3_OWNER_TYPES));
            names.push((format!("nx.{n}"), &["A", "NSEC3"]));
        }
    }
    let mut q = Vec::new();
    for dnssec in [false, true] {
        let opts = Opts {
            dnssec,
            ..Opts::PLAIN
        };
        for (name, types) in &names {
            for t in *types {
                q.push(Query {
                    name: name.clone(),
                    qtype: t,
                    opts,
                });
            }
        }
        for t in ["DNSKEY", "NSEC3PARAM", "NSEC3"] {
            q.push(Query {
                name: apex.clone(),
                qtype: t,
                opts,
            });
        }
        // Case variations.
        for (name, types) in [
            ("WwW.DiFf.TeSt.", &["A", "AAAA", "TXT", "ANY", "MX"][..]),
            ("DIFF.TEST.", &["SOA", "NS", "MX", "A", "DNSKEY"]),
            ("host1.DIFF.test.", &["A", "TXT"]),
            ("mixed.case.diff.test.", &["A", "MX"]),
            ("MIXED.CASE.DIFF.TEST.", &["A", "MX", "TXT"]),
            ("FoO.WiLd.DiFf.TeSt.", &["A", "TXT", "MX", "AAAA"]),
            ("X.CW.diff.test.", &["A", "CNAME", "AAAA"]),
            ("A.Chain.Diff.Test.", &["A", "TXT", "CNAME"]),
            ("Sub.Diff.Test.", &["A", "NS", "DS"]),
            ("NS1.SUB.DIFF.TEST.", &["A"]),
            ("Secure.DIFF.test.", &["A", "DS"]),
            ("NX.Diff.Test.", &["A", "TXT"]),
            ("X.Y.ENT.diff.test.", &["A"]),
            ("B.Ent.DIFF.TEST.", &["A", "TXT"]),
            ("_SIP._TCP.diff.test.", &["SRV"]),
            ("BIG.diff.test.", &["TXT"]),
        ] {
            for t in types {
                q.push(Query {
                    name: name.to_string(),
                    qtype: t,
                    opts,
                });
            }
        }
        // Over TCP: every owner and ENT with a few types, and the big RRsets.
        let tcp = Opts { tcp: true, ..opts };
        for n in plain.iter().chain(&ents) {
            for t in ["A", "TXT", "MX", "ANY"] {
                q.push(Query {
                    name: n.clone(),
                    qtype: t,
                    opts: tcp,
                });
            }
        }
        for (n, t) in [
            ("nx.diff.test.", "A"),
            ("foo.wild.diff.test.", "TXT"),
            ("x.sub.diff.test.", "A"),
            (apex.as_str(), "DNSKEY"),
        ] {
            q.push(Query {
                name: n.to_string(),
                qtype: t,
                opts: tcp,
            });
        }
        // A 512-byte EDNS buffer: the big RRsets must truncate.
        let small = Opts {
            bufsize: Some(512),
            ..opts
        };
        for (n, t) in [
            ("big.diff.test.", "TXT"),
            ("huge.diff.test.", "TXT"),
            ("long.diff.test.", "TXT"),
            ("www.diff.test.", "A"),
            ("mx-host.diff.test.", "MX"),
            (apex.as_str(), "NS"),
            (apex.as_str(), "MX"),
            (apex.as_str(), "DNSKEY"),
            (apex.as_str(), "ANY"),
            ("nx.diff.test.", "A"),
            ("foo.wild.diff.test.", "MX"),
            ("sub.diff.test.", "A"),
            ("secure.diff.test.", "A"),
        ] {
            q.push(Query {
                name: n.to_string(),
                qtype: t,
                opts: small,
            });
        }
    }
    // Without EDNS (512-byte limit, no DO).
    let noedns = Opts {
        noedns: true,
        ..Opts::PLAIN
    };
    for (n, t) in [
        ("big.diff.test.", "TXT"),
        ("huge.diff.test.", "TXT"),
        ("long.diff.test.", "TXT"),
        ("www.diff.test.", "A"),
        ("mx-host.diff.test.", "MX"),
        ("diff.test.", "NS"),
        ("diff.test.", "ANY"),
        ("nx.diff.test.", "A"),
        ("sub.diff.test.", "A"),
        ("a.chain.diff.test.", "A"),
    ] {
        q.push(Query {
            name: n.to_string(),
            qtype: t,
            opts: noedns,
        });
    }
    q
}

// ---------------------------------------------------------------------------
// Running dig and parsing its output
// ---------------------------------------------------------------------------

/// One response as dig printed it, normalized.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Response {
    qname: String,
    qtype: String,
    rcode: String,
    aa: bool,
    tc: bool,
    /// Record lines, sorted (a multiset: duplicates kept).
    answer: Vec<String>,
    /// Record lines, sorted.
    authority: Vec<String>,
    /// Record lines, sorted.
    additional: Vec<String>,
    /// Message size dig received, in bytes.
    size: usize,
    /// Received over TCP (else UDP).
    tcp: bool,
}

impl Response {
    fn header(&self) -> String {
        let mut h = self.rcode.clone();
        if self.aa {
            h.push_str(" aa");
        }
        if self.tc {
            h.push_str(" tc");
        }
        h
    }
}

/// Fields of a line: split at whitespace outside double-quoted strings
/// (a quoted string, escapes included, stays one field, exactly).
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in line.chars() {
        if quoted {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
        } else if c.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            if c == '"' {
                quoted = true;
            }
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Record line as compared: whitespace collapsed outside quoted strings,
/// the owner name lowercased, the rest exactly as dig printed it.
fn normalize(line: &str) -> String {
    let mut f = fields(line);
    if let Some(owner) = f.first_mut() {
        *owner = owner.to_lowercase();
    }
    f.join(" ")
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    None,
    Question,
    Answer,
    Authority,
    Additional,
    Other,
}

/// Every response in the output of one dig run, in order.
fn parse_dig(out: &str) -> Vec<Response> {
    let mut all = Vec::new();
    let mut cur: Option<Response> = None;
    let mut section = Section::None;
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix(";; ->>HEADER<<-") {
            all.extend(cur.take());
            let rcode = rest
                .split("status:")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .unwrap_or("?")
                .trim()
                .to_string();
            cur = Some(Response {
                rcode,
                ..Response::default()
            });
            section = Section::None;
            continue;
        }
        let Some(r) = cur.as_mut() else { continue };
        if let Some(rest) = line.strip_prefix(";; flags:") {
            let flags: Vec<&str> = rest
                .split(';')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            r.aa = flags.contains(&"aa");
            r.tc = flags.contains(&"tc");
            continue;
        }
        if let Some(rest) = line.strip_prefix(";; SERVER:") {
            r.tcp = rest.trim_end().ends_with("(TCP)");
            continue;
        }
        if let Some(rest) = line.strip_prefix(";; MSG SIZE  rcvd:") {
            r.size = rest.trim().parse().unwrap_or(0);
            continue;
        }
        if line.trim().is_empty() {
            section = Section::None;
            continue;
        }
        if let Some(title) = line.strip_prefix(";; ") {
            section = match title {
                "QUESTION SECTION:" => Section::Question,
                "ANSWER SECTION:" => Section::Answer,
                "AUTHORITY SECTION:" => Section::Authority,
                "ADDITIONAL SECTION:" => Section::Additional,
                _ => Section::Other,
            };
            continue;
        }
        match section {
            Section::Question => {
                let f: Vec<&str> = line.trim_start_matches(';').split_whitespace().collect();
                if let (Some(n), Some(t)) = (f.first(), f.last()) {
                    r.qname = n.to_lowercase();
                    r.qtype = t.to_uppercase();
                }
            }
            Section::Answer | Section::Authority | Section::Additional => {
                if line.starts_with(';') {
                    continue;
                }
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() >= 4 && (f[3] == "OPT" || f[3] == "TSIG") {
                    continue;
                }
                let set = match section {
                    Section::Answer => &mut r.answer,
                    Section::Authority => &mut r.authority,
                    _ => &mut r.additional,
                };
                set.push(normalize(line));
            }
            Section::None | Section::Other => {}
        }
    }
    all.extend(cur);
    for r in &mut all {
        r.answer.sort();
        r.authority.sort();
        r.additional.sort();
    }
    all
}

/// Sends `queries` (all with the same options) to 127.0.0.1:`port` with
/// one dig run; the response to each, or `None` if dig printed none for it.
fn dig_batch(port: u16, opts: Opts, queries: &[&Query]) -> Vec<Option<Response>> {
    let mut args: Vec<String> = [
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "+norec",
        "+time=2",
        "+tries=1",
        "+nocookie",
        "+nocmd",
        "+noidnin",
        "+noidnout",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(opts.dig_args());
    for q in queries {
        args.push(q.name.clone());
        args.push(q.qtype.to_string());
    }
    let out = Command::new(tool("dig"))
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run dig");
    let responses = parse_dig(&String::from_utf8_lossy(&out.stdout));
    // Pair responses with queries in order; a query without a response
    // (timeout) is skipped over.
    let mut it = responses.into_iter().peekable();
    queries
        .iter()
        .map(|q| {
            let matches = it
                .peek()
                .is_some_and(|r| r.qname == q.name.to_lowercase() && r.qtype == q.qtype);
            if matches { it.next() } else { None }
        })
        .collect()
}

/// Responses from the server on `port` to every query, in order. Queries
/// are grouped by options and sent in chunks by parallel dig runs.
fn ask_all(port: u16, queries: &[Query]) -> (Vec<Option<Response>>, usize) {
    let mut results = ask_once(port, queries);
    // A datagram is lost now and then on a busy loopback (to BIND as well
    // as to secondary53): ask once more for those.
    let missing: Vec<usize> = (0..queries.len())
        .filter(|&i| results[i].is_none())
        .collect();
    if !missing.is_empty() {
        let again: Vec<Query> = missing.iter().map(|&i| queries[i].clone()).collect();
        for (i, r) in missing.iter().zip(ask_once(port, &again)) {
            results[*i] = r;
        }
    }
    (results, missing.len())
}

/// One try of [`ask_all`].
fn ask_once(port: u16, queries: &[Query]) -> Vec<Option<Response>> {
    let mut groups: BTreeMap<Opts, Vec<usize>> = BTreeMap::new();
    for (i, q) in queries.iter().enumerate() {
        groups.entry(q.opts).or_default().push(i);
    }
    let mut results: Vec<Option<Response>> = vec![None; queries.len()];
    thread::scope(|s| {
        let mut handles = Vec::new();
        for (opts, idx) in &groups {
            for chunk in idx.chunks(CHUNK) {
                let qs: Vec<&Query> = chunk.iter().map(|&i| &queries[i]).collect();
                let opts = *opts;
                handles.push((chunk, s.spawn(move || dig_batch(port, opts, &qs))));
            }
        }
        for (chunk, h) in handles {
            let rs = h.join().expect("dig thread");
            for (&i, r) in chunk.iter().zip(rs) {
                results[i] = r;
            }
        }
    });
    results
}

// ---------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------

/// Why one query's answers differ.
struct Mismatch {
    query: String,
    /// Query type and what differs, to group mismatches.
    kind: String,
    what: String,
    bind: Option<Response>,
    sec: Option<Response>,
}

/// Record type field of a normalized record line (as dig prints it,
/// upper case).
fn rtype_of(line: &str) -> &str {
    line.split(' ').nth(3).unwrap_or("")
}

/// Owner name field of a normalized record line (lowercased).
fn owner_of(line: &str) -> &str {
    line.split(' ').next().unwrap_or("")
}

/// Type covered by an RRSIG line.
fn covered_of(line: &str) -> &str {
    line.split(' ').nth(4).unwrap_or("")
}

/// The RRsets of an answer section: (owner, type) to its record lines,
/// sorted. RRSIGs form one RRset per owner (RFC 4034 section 3: the RRSIG
/// RRset), kept apart from the sets they cover.
fn rrsets(lines: &[String]) -> BTreeMap<(String, String), Vec<String>> {
    let mut sets: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for l in lines {
        sets.entry((owner_of(l).to_string(), rtype_of(l).to_string()))
            .or_default()
            .push(l.clone());
    }
    sets
}

/// Checks secondary53's answer to an ANY or RRSIG query against BIND's
/// full answer: exactly one whole RRset of it (for RRSIG, the RRSIGs of
/// one covered type at the name, aliases on the way as BIND's) and, with
/// DO, exactly the RRSIGs covering that RRset.
fn check_one_rrset(q: &Query, full: &Response, s: &Response) -> Option<String> {
    let sets = rrsets(&full.answer);
    let (sigs, data): (Vec<String>, Vec<String>) = s
        .answer
        .iter()
        .cloned()
        .partition(|l| rtype_of(l) == "RRSIG" && q.qtype != "RRSIG");
    let mut mine = rrsets(&data);
    let mut sets = sets;
    if q.qtype == "RRSIG" {
        // BIND answers an RRSIG query over UDP with the signatures of one
        // covered type (and any aliases on the way, as in its full
        // answer): compare the RRSIGs as RRsets by covered type, aliases
        // as they are.
        let by_covered = |lines: &[String]| {
            let mut m: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
            for l in lines {
                let key = if rtype_of(l) == "RRSIG" {
                    format!("RRSIG {}", covered_of(l))
                } else {
                    rtype_of(l).to_string()
                };
                m.entry((owner_of(l).to_string(), key))
                    .or_default()
                    .push(l.clone());
            }
            m
        };
        sets = by_covered(&full.answer);
        mine = by_covered(&data);
        let aliases: Vec<_> = mine
            .keys()
            .filter(|(_, t)| {
                t == "CNAME" || t == "DNAME" || t == "RRSIG CNAME" || t == "RRSIG DNAME"
            })
            .cloned()
            .collect();
        for key in aliases {
            if sets.get(&key) != mine.get(&key) {
                return Some(format!("RRSIG answer has another {} than BIND's", key.1));
            }
            mine.remove(&key);
        }
    }
    if mine.len() != 1 {
        return Some(format!(
            "{} answer holds {} RRsets, not one",
            q.qtype,
            mine.len()
        ));
    }
    let (key, records) = mine.iter().next().expect("one");
    if sets.get(key) != Some(records) {
        return Some(format!(
            "{} answer is not a whole RRset of BIND's full answer",
            q.qtype
        ));
    }
    if q.qtype == "ANY" {
        let mut want: Vec<String> = if q.opts.dnssec {
            full.answer
                .iter()
                .filter(|l| {
                    rtype_of(l) == "RRSIG" && owner_of(l) == key.0 && covered_of(l) == key.1
                })
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        want.sort();
        let mut got = sigs;
        got.sort();
        if got != want {
            return Some(format!(
                "ANY answer has {} RRSIGs for its RRset, BIND's full answer {}",
                got.len(),
                want.len()
            ));
        }
    }
    None
}

/// UDP payload limit of a query: the requester's (512 without EDNS, dig's
/// default 1232 with), capped at the servers' 1232; 65535 over TCP.
fn udp_limit(o: &Opts) -> usize {
    if o.tcp {
        65535
    } else if o.noedns {
        512
    } else {
        usize::from(o.bufsize.unwrap_or(1232)).clamp(512, 1232)
    }
}

/// Query types BIND answers minimally over UDP with `minimal-any yes`:
/// ANY, and RRSIG (BIND handles an RRSIG query like ANY: one covered
/// type's RRSIGs over UDP, all of them over TCP).
fn is_minimal_type(qtype: &str) -> bool {
    qtype == "ANY" || qtype == "RRSIG"
}

/// Compares the two responses to `q`; `reference` is BIND's full answer
/// over TCP for ANY and RRSIG queries. Returns what differs, if anything,
/// and the names of the normalizations applied (BIND-specific behaviour
/// accepted, see the comments).
fn compare(
    q: &Query,
    bind: &Option<Response>,
    sec: &Option<Response>,
    reference: Option<&Option<Response>>,
) -> (Option<String>, Vec<&'static str>) {
    let mut normalized = Vec::new();
    let (b, s) = match (bind, sec) {
        (Some(b), Some(s)) => (b, s),
        (None, None) => return (Some("no response from either server".into()), normalized),
        (None, _) => return (Some("no response from BIND".into()), normalized),
        (_, None) => return (Some("no response from secondary53".into()), normalized),
    };
    let limit = udp_limit(&q.opts);
    let mut why: Vec<String> = Vec::new();
    for (who, r) in [("BIND", b), ("secondary53", s)] {
        if r.tcp != q.opts.tcp {
            why.push(format!(
                "{who}'s response came over {} (harness error)",
                if r.tcp { "TCP" } else { "UDP" }
            ));
        }
    }
    if s.size > limit {
        why.push(format!(
            "secondary53's response ({} bytes) exceeds the UDP limit ({limit})",
            s.size
        ));
    }
    if b.rcode != s.rcode {
        why.push("rcode".into());
    }
    if b.aa != s.aa {
        why.push("aa".into());
    }
    if b.tc != s.tc {
        why.push("tc".into());
    }
    let done =
        |why: Vec<String>, normalized| ((!why.is_empty()).then(|| why.join(", ")), normalized);
    let mut additional_compared = true;
    let full = reference.and_then(|r| r.as_ref()).unwrap_or(b);
    if is_minimal_type(q.qtype) && b.answer == s.answer {
        // The same answer as BIND's (also through a CNAME or DNAME, where
        // the answer holds the aliases as well).
    } else if is_minimal_type(q.qtype) && !full.answer.is_empty() && !s.tc {
        // RFC 8482: one RRset (see the module documentation).
        if let Some(w) = check_one_rrset(q, full, s) {
            why.push(w);
        }
        // The additional data belongs to the RRset chosen: compared when
        // BIND chose the same one.
        additional_compared = b.answer == s.answer;
        if !additional_compared {
            normalized.push("ANY/RRSIG: another RRset than BIND's, additional data not compared");
        }
    } else if b.answer != s.answer {
        why.push("answer".into());
    }
    if b.authority != s.authority {
        why.push("authority".into());
    }
    if additional_compared && b.additional != s.additional {
        why.push("additional".into());
    }
    done(why, normalized)
}

fn show_response(out: &mut String, label: &str, r: &Option<Response>, other: &Option<Response>) {
    let Some(r) = r else {
        let _ = writeln!(out, "    {label}: (no response)");
        return;
    };
    let _ = writeln!(out, "    {label}: {}", r.header());
    for (name, set, other_set) in [
        ("answer", &r.answer, other.as_ref().map(|o| &o.answer)),
        (
            "authority",
            &r.authority,
            other.as_ref().map(|o| &o.authority),
        ),
        (
            "additional",
            &r.additional,
            other.as_ref().map(|o| &o.additional),
        ),
    ] {
        for line in set {
            // Mark lines the other server does not have.
            let mark = match other_set {
                Some(o) if !o.contains(line) => '!',
                _ => ' ',
            };
            let _ = writeln!(out, "      {mark}{name:<10} {line}");
        }
    }
}

// ---------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------

/// UDP workers of the secondary53 under test: as many sockets on its port.
const UDP_WORKERS: usize = 2;

/// UDP sockets bound to 127.0.0.1:`port` on this host (`/proc/net/udp`).
/// secondary53's workers share their port with `SO_REUSEPORT`, which lets
/// another process of the same user (another test run on a shared machine
/// that picked the same free port) bind it too and take part of the
/// queries: the answers would then not all be secondary53's.
fn udp_sockets_on(port: u16) -> usize {
    let local = format!("0100007F:{port:04X}");
    fs::read_to_string("/proc/net/udp")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(local.as_str()))
        .count()
}

fn secondary_config(port: u16, dir: &Path, primary: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\nudp_workers = {UDP_WORKERS}\n\n\
         [[zone]]\nname = \"{ZONE}\"\nprimaries = [\"{primary}\"]\n\
         connect_timeout = 2\nmessage_timeout = 4\ntransfer_timeout = 60\n",
        dir.join("var").display()
    )
}

fn query_serial(port: u16) -> Option<u32> {
    parse_soa_serial(&dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        ZONE,
        "SOA",
        "+short",
        "+norec",
    ]))
}

/// The zone, served by BIND and transferred to secondary53: by AXFR for
/// the AXFR variants; for [`Variant::IxfrChain`], from a different first
/// version through a chain of dynamic updates, each transferred by IXFR
/// (checked in secondary53's journal), until BIND holds [`zone_text`].
struct Servers {
    bind: Bind,
    _sec: Secondary,
    port: u16,
    owners: BTreeSet<String>,
    _dir: tempfile::TempDir,
}

/// The first version of the IXFR chain and the updates that lead from it
/// to [`zone_text`]: records added (mixed case in RDATA, TXT and CAA
/// values, wildcard data, an empty non-terminal, a delegation's NS and DS,
/// the big TXT RRsets), records deleted (some at names that then vanish),
/// and RRsets replaced (a TTL and a value's case changed).
fn ixfr_chain() -> (String, Vec<String>) {
    let z = zone_text();
    // Lines of zone_text() the first version lacks, and their updates.
    let added: &[(&str, &str)] = &[
        (
            "mixed.case    IN MX   5 Host1\n",
            "update add mixed.case.diff.test. 300 IN MX 5 Host1.diff.test.",
        ),
        (
            "@             IN TXT  \"site-verification=Abc123\"\n",
            "update add diff.test. 300 IN TXT \"site-verification=Abc123\"",
        ),
        (
            "caa           IN CAA  128 tbs \"Unknown\"\n",
            "update add caa.diff.test. 300 IN CAA 128 tbs \"Unknown\"",
        ),
        (
            "*.wild        IN MX   10 mail\n",
            "update add *.wild.diff.test. 300 IN MX 10 mail.diff.test.",
        ),
        (
            "a.b.ent       IN A    192.0.2.150\n",
            "update add a.b.ent.diff.test. 300 IN A 192.0.2.150",
        ),
        (
            "sub           IN NS   ns.outside.example.\n",
            "update add sub.diff.test. 300 IN NS ns.outside.example.",
        ),
        (
            "secure        IN DS   12345 13 2 2BB183AF5F22588179A53B0A98631FAD1A292118B2A0BA0F5D2F9D6C1B1C8E7F\n",
            "update add secure.diff.test. 300 IN DS 12345 13 2 2BB183AF5F22588179A53B0A98631FAD1A292118B2A0BA0F5D2F9D6C1B1C8E7F",
        ),
        (
            "c.chain       IN TXT  \"end of chain\"\n",
            "update add c.chain.diff.test. 300 IN TXT \"end of chain\"",
        ),
        (
            "host2         IN A    192.0.2.3\n",
            "update add host2.diff.test. 300 IN A 192.0.2.3",
        ),
        (
            "www      600  IN TXT  \"web server\"\n",
            "update add www.diff.test. 600 IN TXT \"web server\"",
        ),
        (
            "@             IN CAA  0 issue \"ca.example.net\"\n",
            "update add diff.test. 300 IN CAA 0 issue \"ca.example.net\"",
        ),
    ];
    let mut first = z.clone();
    for (line, _) in added {
        assert!(first.contains(line), "zone_text() has no line {line:?}");
        first = first.replacen(line, "", 1);
    }
    // The big TXT RRsets come by update too.
    let mut big_updates = Vec::new();
    first = first
        .lines()
        .filter(|l| {
            let big = l.starts_with("big ") || l.starts_with("huge ");
            if big {
                let (owner, rest) = l.split_once(' ').expect("owner");
                let value = rest.trim_start().trim_start_matches("IN").trim_start();
                let value = value.trim_start_matches("TXT").trim_start();
                big_updates.push(format!("update add {owner}.diff.test. 300 IN TXT {value}"));
            }
            !big
        })
        .map(|l| format!("{l}\n"))
        .collect();
    // Records the first version has and later versions do not, and the
    // old forms of RRsets that are replaced.
    first.push_str(
        "gone          IN A    192.0.2.99\n\
         gone          IN TXT  \"Going Away\"\n\
         host2         IN A    192.0.2.4\n\
         *.wild        IN AAAA 2001:db8::99\n\
         x.old.ent     IN A    192.0.2.151\n\
         www       60  IN TXT  \"web server\"\n\
         @             IN CAA  0 issue \"CA.Example.NET\"\n",
    );
    let mut steps = vec![
        added[..4]
            .iter()
            .map(|(_, u)| u.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        [
            "update delete gone.diff.test.",
            "update delete host2.diff.test. A 192.0.2.4",
            "update delete *.wild.diff.test. AAAA",
            "update delete x.old.ent.diff.test.",
        ]
        .join("\n"),
        added[4..9]
            .iter()
            .map(|(_, u)| u.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        // Replaced RRsets: a TTL, a value's case.
        format!(
            "update delete www.diff.test. TXT\n{}\nupdate delete diff.test. CAA 0 issue \"CA.Example.NET\"\n{}",
            added[9].1, added[10].1
        ),
    ];
    steps.push(big_updates[..3].join("\n"));
    steps.push(big_updates[3..].join("\n"));
    (first, steps)
}

fn start_servers(variant: Variant, zone_text: String) -> Servers {
    let dir = tempfile::Builder::new()
        .prefix("differential-")
        .tempdir()
        .expect("temp dir");
    let keys = dir.path().join("keys");
    fs::create_dir(&keys).expect("create keys dir");
    let text = served_text(variant, zone_text, &keys);
    let owners = owner_names(&text, &keys);
    let (first, steps) = match variant {
        Variant::IxfrChain => ixfr_chain(),
        _ => (text.clone(), Vec::new()),
    };
    let port = free_port();
    let bind = Bind::start(BindOptions {
        notify_to: vec![port],
        extra_options: BIND_OPTIONS.to_string(),
        ..BindOptions::new(ZONE, first)
    });
    let sec = Secondary::start(
        dir.path(),
        &secondary_config(port, dir.path(), &bind.addr()),
    );
    wait_until(
        &format!("secondary53 serves {ZONE} serial {SERIAL}"),
        Duration::from_secs(30),
        || query_serial(port) == Some(SERIAL),
    );
    for (i, step) in steps.iter().enumerate() {
        bind.update(step);
        let serial = SERIAL + 1 + i as u32;
        assert_eq!(bind.soa_serial(), serial, "BIND's serial after update {i}");
        // Each version reaches secondary53 before the next is made, so
        // each comes as its own IXFR.
        wait_until(
            &format!("secondary53 serves {ZONE} serial {serial}"),
            Duration::from_secs(20),
            || query_serial(port) == Some(serial),
        );
    }
    // secondary53 stores what BIND serves: every record once, RDATA as is.
    common::assert_zones_equal(ZONE, &bind.axfr(), &common::zone_dump(&sec, ZONE));
    if variant == Variant::IxfrChain {
        // BIND now holds the zone of the other variants, at a later serial.
        let last = SERIAL + steps.len() as u32;
        common::assert_zones_equal(
            ZONE,
            &text.replace(&SERIAL.to_string(), &last.to_string()),
            &bind.axfr(),
        );
        let (ok, journal, err) = sec.cli(&["journal", ZONE]);
        assert!(ok, "secondary53 journal: {err}");
        let kinds: Vec<&str> = journal
            .lines()
            .filter(|l| l.starts_with("version "))
            .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("kind=")))
            .collect();
        let mut want = vec!["axfr"];
        want.extend(std::iter::repeat_n("ixfr", steps.len()));
        assert_eq!(
            kinds, want,
            "the first version by AXFR, every update by IXFR:\n{journal}"
        );
    }
    Servers {
        bind,
        _sec: sec,
        port,
        owners,
        _dir: dir,
    }
}

fn run_variant(variant: Variant) {
    let started = Instant::now();
    let servers = start_servers(variant, zone_text());
    let setup = started.elapsed();
    let queries = corpus(variant, &servers.owners);
    check_answers(&format!("{variant:?}"), &servers, setup, &queries);
}

/// Asks both servers `queries`, compares, and fails listing the mismatches
/// (each with the question and both answers in full) under `label`.
fn check_answers(label: &str, servers: &Servers, setup: Duration, queries: &[Query]) {
    let variant = label;
    let t = Instant::now();
    let round = ask_and_compare(servers.bind.port(), servers.port, queries);
    let query_time = t.elapsed();
    // Every answer came from the secondary53 under test only if nothing
    // else shared its port meanwhile.
    let sockets = udp_sockets_on(servers.port);
    assert_eq!(
        sockets, UDP_WORKERS,
        "{sockets} UDP sockets on port {} where secondary53 has {UDP_WORKERS}: another \
         process bound the same port (SO_REUSEPORT) and answered part of the queries; \
         this run compares nothing",
        servers.port
    );

    let mut mismatches = Vec::new();
    let mut normalizations: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, (what, normalized)) in round.outcomes.iter().enumerate() {
        for n in normalized {
            *normalizations.entry(n).or_default() += 1;
        }
        if let Some(what) = what {
            mismatches.push(Mismatch {
                query: queries[i].describe(),
                kind: format!("{}: {what}", queries[i].qtype),
                what: what.clone(),
                bind: round.bind[i].clone(),
                sec: round.sec[i].clone(),
            });
        }
    }
    eprintln!(
        "differential {variant}: {} queries (+{} to BIND over TCP for full ANY/RRSIG \
         answers), {} mismatches; setup {setup:?}, queries {query_time:?}; asked again after \
         no response: BIND {}, secondary53 {}; normalized: {normalizations:?}",
        queries.len(),
        round.references,
        mismatches.len(),
        round.retried_bind,
        round.retried_sec,
    );
    let answered = round.bind.iter().filter(|r| r.is_some()).count();
    assert!(
        answered * 10 >= queries.len() * 9,
        "BIND answered only {answered} of {} queries: is dig output parsed right?",
        queries.len()
    );
    if mismatches.is_empty() {
        return;
    }
    let show = std::env::var("DIFFERENTIAL_SHOW")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SHOW);
    // Show a few of every kind first, so one big class does not hide the
    // others.
    let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut shown, mut rest): (Vec<&Mismatch>, Vec<&Mismatch>) = (Vec::new(), Vec::new());
    for m in &mismatches {
        let n = per_kind.entry(&m.kind).or_default();
        *n += 1;
        if *n <= 3 {
            shown.push(m);
        } else {
            rest.push(m);
        }
    }
    shown.extend(rest);
    shown.truncate(show);
    let mut msg = format!(
        "{variant}: {} of {} queries answered differently by secondary53 and BIND \
         (showing {}, up to 3 of each kind first; '!' marks lines only one server has):\n",
        mismatches.len(),
        queries.len(),
        shown.len()
    );
    for m in shown {
        let _ = writeln!(msg, "\n  {}  -- differs in: {}", m.query, m.what);
        show_response(&mut msg, "BIND       ", &m.bind, &m.sec);
        show_response(&mut msg, "secondary53", &m.sec, &m.bind);
    }
    let _ = writeln!(msg, "\nmismatches by query type and difference:");
    for (k, n) in per_kind {
        let _ = writeln!(msg, "  {n:>5}  {k}");
    }
    panic!("{msg}");
}

/// Responses of both servers to a corpus, and how they compare.
struct Round {
    bind: Vec<Option<Response>>,
    sec: Vec<Option<Response>>,
    /// Per query: what differs (if anything) and the normalizations applied.
    outcomes: Vec<(Option<String>, Vec<&'static str>)>,
    /// Queries asked of BIND over TCP for full ANY and RRSIG answers.
    references: usize,
    retried_bind: usize,
    retried_sec: usize,
}

/// Asks both servers every query (and BIND, over TCP, the full answer to
/// every ANY and RRSIG query: minimal-any applies to UDP only), in parallel,
/// and compares.
fn ask_and_compare(bind_port: u16, sec_port: u16, queries: &[Query]) -> Round {
    let refs_asked: Vec<Query> = queries
        .iter()
        .filter(|q| is_minimal_type(q.qtype))
        .map(|q| Query {
            opts: Opts {
                tcp: true,
                bufsize: None,
                noedns: false,
                ..q.opts
            },
            ..q.clone()
        })
        .collect();
    let ((bind, retried_bind), (sec, retried_sec), (refs, _)) = thread::scope(|s| {
        let b = s.spawn(|| ask_all(bind_port, queries));
        let r = s.spawn(|| ask_all(bind_port, &refs_asked));
        let sc = ask_all(sec_port, queries);
        (b.join().expect("bind"), sc, r.join().expect("refs"))
    });
    let mut ref_iter = refs.iter();
    let outcomes = queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let reference = is_minimal_type(q.qtype).then(|| ref_iter.next().expect("reference"));
            compare(q, &bind[i], &sec[i], reference)
        })
        .collect();
    Round {
        bind,
        sec,
        outcomes,
        references: refs_asked.len(),
        retried_bind,
        retried_sec,
    }
}

#[test]
fn unsigned_zone_answers_match_bind() {
    run_variant(Variant::Unsigned);
}

#[test]
fn nsec_signed_zone_answers_match_bind() {
    run_variant(Variant::Nsec);
}

#[test]
fn nsec3_signed_zone_answers_match_bind() {
    run_variant(Variant::Nsec3);
}

#[test]
fn zone_built_by_a_chain_of_ixfrs_answers_match_bind() {
    run_variant(Variant::IxfrChain);
}

/// Questions per zone in the seeded random round (override with
/// `DIFFERENTIAL_QUESTIONS`; bench/differential_random.sh runs many seeds).
const RANDOM_QUESTIONS: usize = 2500;
/// The seed of the random round unless `DIFFERENTIAL_SEED` is set.
const RANDOM_SEED: u64 = 20261129;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Seeded random questions (see [`random`]) against the tricky zone, signed
/// as `variant`; every answer must match BIND's.
fn run_random(variant: Variant) {
    let seed = env_or("DIFFERENTIAL_SEED", RANDOM_SEED);
    let count = env_or("DIFFERENTIAL_QUESTIONS", RANDOM_QUESTIONS);
    let started = Instant::now();
    let servers = start_servers(variant, random::tricky_zone_text());
    let setup = started.elapsed();
    let queries = random::questions(seed, count, &servers.owners);
    check_answers(
        &format!(
            "random {variant:?}, seed {seed} (reproduce: DIFFERENTIAL_SEED={seed} \
             DIFFERENTIAL_QUESTIONS={count})"
        ),
        &servers,
        setup,
        &queries,
    );
}

#[test]
fn random_questions_unsigned_tricky_zone_match_bind() {
    run_random(Variant::Unsigned);
}

#[test]
fn random_questions_nsec_tricky_zone_match_bind() {
    run_random(Variant::Nsec);
}

#[test]
fn random_questions_nsec3_tricky_zone_match_bind() {
    run_random(Variant::Nsec3);
}

#[test]
fn random_questions_nsec3_opt_out_tricky_zone_match_bind() {
    run_random(Variant::Nsec3OptOut);
}

/// The comparison itself: each rule catches what it is named for (no
/// servers involved).
#[test]
fn comparison_rules_catch_what_they_name() {
    let q = |qtype: &'static str, dnssec: bool| Query {
        name: "x.diff.test.".into(),
        qtype,
        opts: Opts {
            dnssec,
            ..Opts::PLAIN
        },
    };
    let resp = |answer: &[&str], tc: bool| Response {
        qname: "x.diff.test.".into(),
        qtype: "A".into(),
        rcode: "NOERROR".into(),
        aa: true,
        tc,
        answer: {
            let mut a: Vec<String> = answer.iter().map(|l| normalize(l)).collect();
            a.sort();
            a
        },
        size: 100,
        ..Response::default()
    };
    let differs = |q: &Query, b: &Response, s: &Response, full: Option<&Response>| {
        let reference = full.map(|f| Some(f.clone()));
        compare(q, &Some(b.clone()), &Some(s.clone()), reference.as_ref()).0
    };
    let a1 = "x.diff.test. 300 IN A 192.0.2.1";
    let a2 = "x.diff.test. 300 IN A 192.0.2.2";
    let mx = "x.diff.test. 300 IN MX 10 Host1.diff.test.";
    let txt = "x.diff.test. 300 IN TXT \"Two  Spaces\"";
    let sig_a =
        "x.diff.test. 300 IN RRSIG A 13 3 300 20300101000000 20200101000000 1 diff.test. AAAA";
    let sig_mx =
        "x.diff.test. 300 IN RRSIG MX 13 3 300 20300101000000 20200101000000 1 diff.test. BBBB";

    // Owner case is not a difference; RDATA case and spacing are.
    assert_eq!(
        differs(
            &q("MX", false),
            &resp(&[mx], false),
            &resp(&["X.Diff.Test. 300 IN MX 10 Host1.diff.test."], false),
            None
        ),
        None
    );
    assert!(
        differs(
            &q("MX", false),
            &resp(&[mx], false),
            &resp(&["x.diff.test. 300 IN MX 10 host1.diff.test."], false),
            None
        )
        .is_some()
    );
    assert!(
        differs(
            &q("TXT", false),
            &resp(&[txt], false),
            &resp(&["x.diff.test. 300 IN TXT \"Two Spaces\""], false),
            None
        )
        .is_some()
    );
    // A record twice is a difference.
    assert!(
        differs(
            &q("A", false),
            &resp(&[a1, a2], false),
            &resp(&[a1, a1, a2], false),
            None
        )
        .is_some()
    );
    // Truncated answers are compared in full.
    assert!(differs(&q("A", false), &resp(&[a1], true), &resp(&[], true), None).is_some());
    assert_eq!(
        differs(&q("A", false), &resp(&[a1], true), &resp(&[a1], true), None),
        None
    );
    // ANY: one whole RRset of the full answer, its RRSIGs exactly under DO.
    let full = resp(&[a1, a2, mx, sig_a, sig_mx], false);
    let bind_udp = resp(&[mx, sig_mx], false);
    let any = q("ANY", true);
    assert_eq!(
        differs(&any, &bind_udp, &resp(&[a1, a2, sig_a], false), Some(&full)),
        None
    );
    assert!(
        differs(&any, &bind_udp, &resp(&[a1, sig_a], false), Some(&full)).is_some(),
        "part of an RRset"
    );
    assert!(
        differs(&any, &bind_udp, &resp(&[a1, a2], false), Some(&full)).is_some(),
        "RRSIG missing"
    );
    assert!(
        differs(
            &any,
            &bind_udp,
            &resp(&[a1, a2, sig_a, sig_mx], false),
            Some(&full)
        )
        .is_some(),
        "another RRset's RRSIG"
    );
    assert!(
        differs(
            &any,
            &bind_udp,
            &resp(&[a1, a2, mx, sig_a, sig_mx], false),
            Some(&full)
        )
        .is_some(),
        "two RRsets"
    );
    assert!(
        differs(
            &q("ANY", false),
            &bind_udp,
            &resp(&[a1, a2, sig_a], false),
            Some(&full)
        )
        .is_some(),
        "RRSIG without DO"
    );
}
