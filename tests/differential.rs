//! Differential test of query answers: secondary53 against a real BIND 9
//! serving the same zone.
//!
//! BIND is the primary of `diff.test` (a hand-written zone covering the
//! RFC 1034 / 4592 / 4035 / 5155 corner cases: delegations with and without
//! DS, in- and out-of-zone glue, wildcards, wildcard CNAME, CNAME chains,
//! empty non-terminals, MX/SRV additional data, big TXT RRsets, mixed case).
//! secondary53 transfers the zone from it and serves it. Then a few thousand
//! queries, generated from the zone's owner names (every owner name and empty
//! non-terminal × many types, names that do not exist at several depths,
//! wildcard matches, case variations; with DO on and off; some over TCP;
//! some with a 512-byte buffer or without EDNS to force truncation) go to
//! both servers through batched `dig` runs, and the answers are compared:
//! rcode, the AA and TC flags, and the answer, authority and additional
//! sections as sets of normalized record lines (lowercase, whitespace
//! collapsed, TTLs kept; the OPT pseudo-section is dropped).
//!
//! Three variants: unsigned, signed with NSEC, signed with NSEC3 (salt,
//! iterations, no opt-out), each signed with `dnssec-signzone` by keys made
//! with `dnssec-keygen`.
//!
//! BIND's configuration is aligned with secondary53's policy (see
//! [`BIND_OPTIONS`]): `minimal-responses no-auth`, `minimal-any yes`,
//! `zero-no-soa-ttl no`.
//!
//! Rules (see [`compare`]):
//! - a truncated response (TC) is compared by rcode and flags only; any
//!   secondary53 UDP response larger than the requester's limit is a
//!   mismatch;
//! - ANY and RRSIG queries with a non-empty answer are compared by rcode
//!   and flags only, and secondary53's answer must be a non-empty subset of
//!   BIND's full answer (asked over TCP, where `minimal-any` does not
//!   apply), with the RRSIGs of its RRsets when DO is set. BIND treats an
//!   RRSIG query like ANY: one covered type's RRSIGs over UDP;
//! - with an EDNS buffer of 512 bytes BIND adds no additional data at all;
//!   when BIND's additional section is empty there, it is not compared.
//!
//! Every mismatch is asked again; one that does not show again (a lost or
//! stray datagram: the ports come from `free_port` and other test processes
//! on the host may bind the same UDP port with SO_REUSEPORT) is reported on
//! stderr but does not fail the test. The others are collected, and the
//! test fails listing 40 of them (a few of every kind first), with counts
//! by kind. `DIFFERENTIAL_SHOW=n` shows more.

mod common;

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
/// - `zero-no-soa-ttl no`: BIND by default gives the SOA in a negative
///   answer to an SOA query TTL 0; secondary53 uses the RFC 2308 TTL
///   (min of SOA TTL and minimum) like for any other type.
const BIND_OPTIONS: &str =
    "    minimal-responses no-auth;\n    minimal-any yes;\n    zero-no-soa-ttl no;\n";
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
}

/// The zone text BIND serves: unsigned, or signed with a fresh KSK + ZSK
/// (ECDSAP256SHA256) by `dnssec-signzone -S -N keep` (signatures valid from
/// an hour ago for 30 days). NSEC3: salt `abcd`, 5 extra iterations, no
/// opt-out.
fn served_text(variant: Variant, dir: &Path) -> String {
    let text = zone_text();
    if variant == Variant::Unsigned {
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
    if variant == Variant::Nsec3 {
        cmd.args(["-3", "abcd", "-H", "5"]);
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
    answer: BTreeSet<String>,
    authority: BTreeSet<String>,
    additional: BTreeSet<String>,
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

/// Record line: lowercase, whitespace collapsed.
fn normalize(line: &str) -> String {
    line.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
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
                set.insert(normalize(line));
            }
            Section::None | Section::Other => {}
        }
    }
    all.extend(cur);
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

/// Record type field of a normalized record line.
fn rtype_of(line: &str) -> &str {
    line.split(' ').nth(3).unwrap_or("")
}

/// Owner name field of a normalized record line.
fn owner_of(line: &str) -> &str {
    line.split(' ').next().unwrap_or("")
}

/// Type covered by an RRSIG line (lowercase).
fn covered_of(line: &str) -> &str {
    line.split(' ').nth(4).unwrap_or("")
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
    if b.tc || s.tc {
        return done(why, normalized);
    }
    if is_minimal_type(q.qtype) {
        let full = reference.and_then(|r| r.as_ref()).unwrap_or(b);
        if !full.answer.is_empty() {
            // BIND (minimal-any) answers one RRset over UDP; secondary53 may
            // answer one or all: its answer must be a non-empty subset of
            // BIND's full answer, with the RRSIGs of its RRsets under DO.
            if s.answer.is_empty() {
                why.push(format!("{} answer empty", q.qtype));
            } else if !s.answer.is_subset(&full.answer) {
                why.push(format!(
                    "{} answer not a subset of BIND's full answer over TCP",
                    q.qtype
                ));
            }
            if q.opts.dnssec {
                let sigs = |r: &Response| -> BTreeSet<String> {
                    r.answer
                        .iter()
                        .filter(|l| rtype_of(l) == "rrsig")
                        .map(|l| format!("{} {}", owner_of(l), covered_of(l)))
                        .collect()
                };
                let (in_full, in_sec) = (sigs(full), sigs(s));
                let unsigned = s.answer.iter().any(|l| {
                    let key = format!("{} {}", owner_of(l), rtype_of(l));
                    rtype_of(l) != "rrsig" && in_full.contains(&key) && !in_sec.contains(&key)
                });
                if unsigned {
                    why.push(format!("{} answer lacks the RRSIG of its RRset", q.qtype));
                }
            }
            return done(why, normalized);
        }
    }
    if b.answer != s.answer {
        why.push("answer".into());
    }
    if b.authority != s.authority {
        why.push("authority".into());
    }
    if b.additional != s.additional {
        if q.opts.bufsize.is_some_and(|size| size <= 512) && b.additional.is_empty() {
            // BIND adds no additional data at all when the requester's EDNS
            // buffer is 512 bytes or less (even when it would fit; without
            // EDNS it does add it). secondary53 adds what fits.
            normalized.push("BIND omits additional data for an EDNS buffer of 512");
        } else {
            why.push("additional".into());
        }
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

fn secondary_config(port: u16, dir: &Path, primary: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\n\
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

fn run_variant(variant: Variant) {
    let started = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("differential-")
        .tempdir()
        .expect("temp dir");
    let keys = dir.path().join("keys");
    fs::create_dir(&keys).expect("create keys dir");
    let text = served_text(variant, &keys);
    let owners = owner_names(&text, &keys);

    let port = free_port();
    let bind = Bind::start(BindOptions {
        notify_to: vec![port],
        extra_options: BIND_OPTIONS.to_string(),
        ..BindOptions::new(ZONE, text)
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
    let setup = started.elapsed();

    let queries = corpus(variant, &owners);
    let t = Instant::now();
    let first = ask_and_compare(bind.port(), port, &queries);
    // A mismatch counts only if it shows again when asked a second time
    // (one-off glitches, e.g. a lost datagram, are reported, not failed).
    let again_idx: Vec<usize> = (0..queries.len())
        .filter(|&i| first.outcomes[i].0.is_some())
        .collect();
    let again_queries: Vec<Query> = again_idx.iter().map(|&i| queries[i].clone()).collect();
    let again = ask_and_compare(bind.port(), port, &again_queries);
    let query_time = t.elapsed();

    let mut mismatches = Vec::new();
    let mut one_off = Vec::new();
    let mut normalizations: BTreeMap<&str, usize> = BTreeMap::new();
    for (what, normalized) in &first.outcomes {
        if what.is_none() {
            for n in normalized {
                *normalizations.entry(n).or_default() += 1;
            }
        }
    }
    for (j, &i) in again_idx.iter().enumerate() {
        let (what, normalized) = &again.outcomes[j];
        for n in normalized {
            *normalizations.entry(n).or_default() += 1;
        }
        match what {
            Some(what) => mismatches.push(Mismatch {
                query: queries[i].describe(),
                kind: format!("{}: {what}", queries[i].qtype),
                what: what.clone(),
                bind: again.bind[j].clone(),
                sec: again.sec[j].clone(),
            }),
            None => {
                let header = |r: &Option<Response>| {
                    r.as_ref().map_or("no response".to_string(), |r| {
                        format!("{}, {} answer records", r.header(), r.answer.len())
                    })
                };
                one_off.push(format!(
                    "{} (differed in {}; BIND: {}; secondary53: {})",
                    queries[i].describe(),
                    first.outcomes[i].0.as_deref().unwrap_or(""),
                    header(&first.bind[i]),
                    header(&first.sec[i]),
                ))
            }
        }
    }
    eprintln!(
        "differential {variant:?}: {} queries (+{} to BIND over TCP for full ANY/RRSIG \
         answers), {} mismatches; setup {setup:?}, queries {query_time:?}; asked again after \
         no response: BIND {}, secondary53 {}; normalized: {normalizations:?}; mismatches \
         that did not show again: {one_off:?}",
        queries.len(),
        first.references,
        mismatches.len(),
        first.retried_bind,
        first.retried_sec,
    );
    let answered = first.bind.iter().filter(|r| r.is_some()).count();
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
        "{variant:?}: {} of {} queries answered differently by secondary53 and BIND \
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
    drop(sec);
    drop(bind);
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
