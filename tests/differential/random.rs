//! Seeded random questions against a zone full of tricky constructs.
//!
//! The zone (`diff.test`, like the fixed corpus's) holds wildcards at
//! several depths and below empty non-terminals, CNAME chains, loops and
//! CNAMEs into wildcards and delegations, delegations below empty
//! non-terminals, glue in and out of the zone, NS targets above a cut,
//! DNAMEs (chained, into wildcards, delegations, out of the zone, onto
//! themselves, at a wildcard),
//! names differing only in case, escaped labels and large RRsets that
//! truncate. The questions are drawn by a small deterministic generator
//! (SplitMix64) from a seed: names from the zone, their parents and
//! children, new labels, wildcard matches, in random case; every type;
//! UDP with EDNS buffers of 512, 1232 and 4096 bytes, UDP without EDNS,
//! and TCP; DO on or off. The same seed gives the same questions.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{Opts, Query, SERIAL, s255};

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and the same
/// sequence on every platform for a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// The unsigned master file of the tricky zone.
pub fn tricky_zone_text() -> String {
    let mut z = format!(
        r#"$ORIGIN diff.test.
$TTL 300
@        3600 IN SOA  ns1.diff.test. HostMaster.Diff.Test. {SERIAL} 3600 600 86400 120
@        3600 IN NS   ns1
@        3600 IN NS   NS2.Diff.Test.
@             IN MX   10 Mail
@             IN MX   20 mail.example.net.
@             IN A    192.0.2.10
@             IN TXT  "apex"
ns1           IN A    127.0.0.1
ns2           IN A    127.0.0.2
ns2           IN AAAA ::2
Mail          IN A    192.0.2.25
mail          IN AAAA 2001:db8::25
www           IN A    192.0.2.80
Case          IN A    192.0.2.81
cASE          IN TXT  "case"
ptr           IN PTR  WWW.Diff.Test.
mx            IN MX   10 Mail.DIFF.test.
mx            IN MX   20 ns2
mx            IN MX   30 mail.example.net.
_srv._tcp     IN SRV  0 5 53 ns2
_srv._tcp     IN SRV  1 5 53 host.sub
hinfo         IN HINFO "PC" "Unix"
*.wild        IN A    192.0.2.100
*.wild        IN TXT  "wildcard"
*.wild        IN MX   10 mail
explicit.wild IN A    192.0.2.101
*.a.deep.wild IN AAAA 2001:db8::100
*.x.y.ent     IN A    192.0.2.102
a.b.ent       IN A    192.0.2.150
*.cw          IN CNAME c1
c1            IN CNAME c2
c2            IN CNAME C3
c3            IN A    192.0.2.200
c3            IN TXT  "end of chain"
loop1         IN CNAME loop2
loop2         IN CNAME loop1
self          IN CNAME self
to-wild       IN CNAME foo.wild
to-cw         IN CNAME bar.cw
to-deleg      IN CNAME host.sub
to-deleg-ent  IN CNAME host.d.ent2
to-ext        IN CNAME www.example.net.
to-nx         IN CNAME nothere
to-ent        IN CNAME b.ent
sub           IN NS   ns1.sub
sub           IN NS   ns1
sub           IN NS   ns.outside.example.
ns1.sub       IN A    192.0.2.53
ns1.sub       IN AAAA 2001:db8::53
d.ent2        IN NS   ns.d.ent2
d.ent2        IN NS   Mail
ns.d.ent2     IN A    192.0.2.54
secure        IN NS   ns.secure
secure        IN DS   12345 13 2 2BB183AF5F22588179A53B0A98631FAD1A292118B2A0BA0F5D2F9D6C1B1C8E7F
ns.secure     IN A    192.0.2.55
ext           IN NS   ns1.outside.example.
ext           IN NS   ns2.outside.example.
dn            IN DNAME C3.Diff.Test.
dn            IN A    192.0.2.39
dn-wild       IN DNAME Wild.diff.test.
dn-chain      IN DNAME dn-wild.diff.test.
dn-ext        IN DNAME example.net.
dn-deleg      IN DNAME sub.diff.test.
dn-loop       IN DNAME x.dn-loop.diff.test.
dn-cw         IN DNAME cw.diff.test.
dn-nx         IN DNAME nothere.diff.test.
*.wdn         IN DNAME wild.diff.test.
a\.b          IN A    192.0.2.60
sp\032ace     IN TXT  "space"
q\"uote\(p    IN A    192.0.2.61
"#
    );
    let _ = writeln!(z, "long          IN TXT  \"{}\" \"short\"", s255("long"));
    for i in 1..=3 {
        let _ = writeln!(z, "big           IN TXT  \"{}\"", s255(&format!("big{i}")));
    }
    for i in 1..=6 {
        let _ = writeln!(z, "huge          IN TXT  \"{}\"", s255(&format!("huge{i}")));
    }
    // A wide A RRset: 40 records, over 512 bytes.
    for i in 1..=40 {
        let _ = writeln!(z, "wide          IN A    198.51.100.{i}");
    }
    z
}

/// Every type asked, known to the zone or not.
const TYPES: &[&str] = &[
    "A",
    "AAAA",
    "MX",
    "TXT",
    "NS",
    "SOA",
    "CNAME",
    "DNAME",
    "PTR",
    "SRV",
    "HINFO",
    "CAA",
    "DS",
    "DNSKEY",
    "NSEC",
    "NSEC3",
    "NSEC3PARAM",
    "RRSIG",
    "ANY",
    "TYPE65280",
];

/// New labels put below or beside names.
const LABELS: &[&str] = &["x", "nx", "foo", "*", "a", "b", "zz", "0", "~", "a-b"];

/// Flips the case of each ASCII letter of `name` with probability one half
/// (escapes are digits and punctuation: left as they are).
fn random_case(rng: &mut Rng, name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() && rng.chance(50) {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// The parent of a presentation-form absolute name (escaped dots kept).
fn parent(name: &str) -> Option<&str> {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'.' => {
                let rest = &name[i + 1..];
                return (!rest.is_empty()).then_some(rest);
            }
            _ => i += 1,
        }
    }
    None
}

/// `count` questions drawn from `seed` for a zone whose owner names are
/// `owners` (presentation form, lowercase, absolute).
pub fn questions(seed: u64, count: usize, owners: &BTreeSet<String>) -> Vec<Query> {
    let apex = "diff.test.";
    let mut names: Vec<String> = owners.iter().cloned().collect();
    // Parents up to the apex (empty non-terminals among them).
    let mut parents = BTreeSet::new();
    for n in owners {
        let mut cur = n.as_str();
        while let Some(p) = parent(cur) {
            if p.len() < apex.len() {
                break;
            }
            parents.insert(p.to_string());
            cur = p;
        }
    }
    names.extend(parents);
    names.sort();
    names.dedup();
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let base = rng.pick(&names).clone();
        let name = match rng.below(10) {
            0..=3 => base,
            4..=6 => format!("{}.{base}", rng.pick(LABELS)),
            7 => format!("{}.{}.{base}", rng.pick(LABELS), rng.pick(LABELS)),
            8 => parent(&base).unwrap_or(apex).to_string(),
            _ => format!("{}.{apex}", rng.pick(LABELS)),
        };
        let name = if rng.chance(40) {
            random_case(&mut rng, &name)
        } else {
            name
        };
        let qtype = *rng.pick(TYPES);
        let mut opts = Opts {
            dnssec: rng.chance(50),
            ..Opts::PLAIN
        };
        match rng.below(5) {
            0 => opts.bufsize = Some(512),
            1 => opts.bufsize = Some(1232),
            2 => opts.bufsize = Some(4096),
            3 => {
                opts.noedns = true;
                opts.dnssec = false;
            }
            _ => opts.tcp = true,
        }
        out.push(Query { name, qtype, opts });
    }
    out
}
