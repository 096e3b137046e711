//! The fuzz targets: each calls the server's own parsers directly, on
//! inputs mutated from the corpus.
//!
//! Inputs that steer a target start with a small header (flag bytes, the
//! serial an IXFR asks from...) that the mutators change now and then too.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::Name;
use secondary53::notify::{NotifyPolicy, handle_notify};
use secondary53::serve::answer::Scratch;
use secondary53::serve::{Transport, ZoneView, handle_packet};
use secondary53::tsig::TsigKey;
use secondary53::tsig::{ResponseSigner, ResponseVerifier};
use secondary53::xfr::interpreter::{Interpreter, Transfer, XfrRequest};
use secondary53::xfr::wire_message::parse_response;
use secondary53::zone::Rr;
use secondary53::zone::snapshot::ZoneSnapshot;

use super::dns;
use super::harness::{Outcome, Target, corpus_dir, read_dir_files, signal_of};
use super::mutate::{self, Rng};
use super::support::{self, ServedZones};

/// Corpus files of a directory, with `flags` put in front of each.
fn seeds_from(dir: &str, flags: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (_, bytes) in read_dir_files(&corpus_dir().join(dir)) {
        for f in flags {
            let mut s = vec![*f];
            s.extend_from_slice(&bytes);
            out.push(s);
        }
    }
    out
}

/// Mutates a one-flag-byte input: now and then the flags, mostly the
/// message behind them.
fn mutate_flagged(rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>], flag_bits: u32) {
    if input.is_empty() {
        input.push(0);
    }
    if rng.chance(1, 8) {
        input[0] ^= 1 << rng.below(flag_bits as usize);
        return;
    }
    let mut msg = input[1..].to_vec();
    let others: Vec<Vec<u8>> = (0..2)
        .filter(|_| !pool.is_empty())
        .map(|_| rng.pick(pool).get(1..).unwrap_or(&[]).to_vec())
        .collect();
    mutate::dns_stack(rng, &mut msg, &others);
    input.truncate(1);
    input.extend_from_slice(&msg);
}

fn header_signal(returned: bool, out: &[u8]) -> u64 {
    if !returned || out.len() < 12 {
        return signal_of(&[&returned, &out.len().min(12)]);
    }
    let counts: Vec<u16> = (0..4)
        .map(|i| u16::from_be_bytes([out[4 + 2 * i], out[5 + 2 * i]]).min(8))
        .collect();
    signal_of(&[&(out[2] & 0x7f), &(out[3] & 0x8f), &counts])
}

// ---------------------------------------------------------------------------
// query: every message a listener hands to the server
// ---------------------------------------------------------------------------

/// The request handler of the UDP and TCP listeners,
/// `serve::handle_packet`: the in-place query parser and the answer writer
/// on real (signed) snapshots, and behind them the general path (hickory's
/// parser, NOTIFY, TSIG-signed queries, other opcodes).
///
/// Input: one flag byte (bit 0: sign the message with the corpus key
/// before sending it; bit 1: over TCP, else UDP; bit 2: from an address
/// outside `allow_notify`), then the message.
///
/// Oracles: a response has the request's id and QR, is well-formed
/// ([`dns::check_response`]) and fits the requester's UDP size.
pub struct QueryTarget {
    served: ServedZones,
    view: ZoneView,
    scratch: Scratch,
    out: Vec<u8>,
    signer: TsigKey,
}

impl QueryTarget {
    /// Loads the zones.
    pub fn new() -> QueryTarget {
        let served = ServedZones::load();
        let mut view = ZoneView::new(served.zones.clone(), Default::default());
        view.refresh();
        QueryTarget {
            served,
            view,
            scratch: Scratch::default(),
            out: Vec::with_capacity(65535),
            signer: support::signer(),
        }
    }
}

impl Target for QueryTarget {
    fn name(&self) -> &'static str {
        "query"
    }

    fn seeds(&mut self) -> Vec<Vec<u8>> {
        let mut s = seeds_from("query", &[0, 1, 2, 3]);
        s.extend(seeds_from("notify", &[0, 1, 4]));
        // Responses sent to a server (to be dropped), a few.
        s.extend(seeds_from("response", &[0]).into_iter().take(8));
        s
    }

    fn mutate(&mut self, rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
        mutate_flagged(rng, input, pool, 3);
    }

    fn execute(&mut self, input: &[u8]) -> Outcome {
        let Some((&flags, msg)) = input.split_first() else {
            return Outcome::signal(0);
        };
        let mut msg = msg.to_vec();
        if flags & 1 != 0 {
            support::sign_raw_request(&mut msg, &self.signer, secondary53::tsig::now());
        }
        let transport = if flags & 2 != 0 {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let from = support::peer(flags & 4 == 0);
        self.view.refresh();
        let returned = handle_packet(
            &msg,
            from,
            transport,
            &mut self.view,
            &mut self.out,
            &mut self.scratch,
        );
        let mut outcome = Outcome::signal(header_signal(returned, &self.out));
        if returned {
            let limit = match transport {
                Transport::Tcp => 65535,
                Transport::Udp => support::udp_limit(&msg),
            };
            if let Err(e) = dns::check_response(&msg, &self.out, limit) {
                outcome.violation = Some(format!("response over {transport:?}: {e}"));
            }
        }
        outcome
    }
}

// ---------------------------------------------------------------------------
// notify: the NOTIFY decision, with and without a key
// ---------------------------------------------------------------------------

/// `notify::handle_notify` behind hickory's message parser, the way the
/// server calls it, for zones with and without a TSIG key.
///
/// Input: one flag byte (bit 0: sign the message with the corpus key;
/// bit 1: from outside the ACL; bit 2: the zone requires the key), then
/// the message.
///
/// Oracles: an accepted NOTIFY came from the ACL and, when the zone has a
/// key, carried a TSIG; the response has the request's id, is a response,
/// and encodes to a well-formed message.
pub struct NotifyTarget {
    signer: TsigKey,
}

impl NotifyTarget {
    /// A target with the corpus key.
    pub fn new() -> NotifyTarget {
        NotifyTarget {
            signer: support::signer(),
        }
    }
}

impl Target for NotifyTarget {
    fn name(&self) -> &'static str {
        "notify"
    }

    fn seeds(&mut self) -> Vec<Vec<u8>> {
        let mut s = seeds_from("notify", &[0, 1, 4, 5, 6]);
        s.extend(
            seeds_from("query", &[0, 1, 5])
                .into_iter()
                .filter(|q| q.len() < 200),
        );
        s
    }

    fn mutate(&mut self, rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
        mutate_flagged(rng, input, pool, 3);
        // Keep most inputs NOTIFYs: restore the opcode now and then.
        if input.len() > 3 && rng.chance(1, 2) {
            input[3] = (input[3] & 0x87) | (4 << 3);
        }
    }

    fn execute(&mut self, input: &[u8]) -> Outcome {
        let Some((&flags, msg)) = input.split_first() else {
            return Outcome::signal(0);
        };
        let mut raw = msg.to_vec();
        if flags & 1 != 0 {
            support::sign_raw_request(&mut raw, &self.signer, secondary53::tsig::now());
        }
        let request = match Message::from_vec(&raw) {
            Ok(m) => m,
            Err(_) => return Outcome::signal(signal_of(&[&"unparsed"])),
        };
        let allowed = flags & 2 == 0;
        let keyed = flags & 4 != 0;
        let from: SocketAddr = support::peer(allowed);
        let acl = vec!["127.0.0.0/8".parse().expect("prefix")];
        let d = handle_notify(
            &raw,
            &request,
            from,
            |apex| {
                matches!(apex, "diff.test." | "big.test." | "nsec.test.").then(|| NotifyPolicy {
                    allow: acl.clone(),
                    key: keyed.then(|| self.signer.clone()),
                })
            },
            |name| {
                (name.to_lowercase() == self.signer.name().to_lowercase())
                    .then(|| self.signer.clone())
            },
        );
        let reason: String = d
            .refusal
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        let mut outcome = Outcome::signal(signal_of(&[
            &d.accepted_zone.is_some(),
            &d.response.response_code,
            &reason,
            &d.serial.is_some(),
        ]));
        let bad = |m: String| Some(m);
        if d.accepted_zone.is_some() {
            if !allowed {
                outcome.violation = bad("NOTIFY accepted from outside the ACL".into());
            } else if keyed && request.signature.is_none() {
                outcome.violation = bad("unsigned NOTIFY accepted for a zone with a key".into());
            } else if d.response.response_code != hickory_proto::op::ResponseCode::NoError {
                outcome.violation = bad("accepted NOTIFY answered with an error code".into());
            }
        } else if d.refusal.is_none() {
            outcome.violation = bad("NOTIFY neither accepted nor refused".into());
        }
        if d.response.id != request.id {
            outcome.violation = bad("response id differs from the request's".into());
        }
        if let Ok(bytes) = d.response.to_vec()
            && let Err(e) = dns::check_response(&raw, &bytes, 65535)
        {
            outcome.violation = bad(format!("NOTIFY response: {e}"));
        }
        outcome
    }
}

// ---------------------------------------------------------------------------
// xfr: transfer responses, read, verified and interpreted
// ---------------------------------------------------------------------------

/// The request MAC runtime-signed streams chain from.
const XFR_REQUEST_MAC: [u8; 32] = [0x5a; 32];
/// At most this many messages of a stream are read.
const XFR_MAX_FRAMES: usize = 64;

/// The parsed header of an xfr input (see `capture.py`): flags, IXFR
/// serial, request MAC, then the messages as framed on TCP.
struct XfrInput {
    flags: u8,
    serial: u32,
    mac: Vec<u8>,
    frames: Vec<Vec<u8>>,
}

impl XfrInput {
    fn parse(input: &[u8]) -> Option<XfrInput> {
        let flags = *input.first()?;
        let serial = u32::from_be_bytes(input.get(1..5)?.try_into().ok()?);
        let maclen = *input.get(5)? as usize;
        let mac = input.get(6..6 + maclen)?.to_vec();
        let mut frames = dns::split_frames(&input[6 + maclen..]);
        frames.truncate(XFR_MAX_FRAMES);
        Some(XfrInput {
            flags,
            serial,
            mac,
            frames,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.flags];
        out.extend_from_slice(&self.serial.to_be_bytes());
        out.push(self.mac.len().min(255) as u8);
        out.extend_from_slice(&self.mac[..self.mac.len().min(255)]);
        out.extend(dns::join_frames(&self.frames));
        out
    }
}

/// What a stream of transfer messages amounts to.
struct XfrRun {
    stage: String,
    transfer: Option<Transfer>,
    zone: String,
    /// The serial an IXFR asked from.
    asked: Option<u32>,
}

/// Reads a stream as the transfer client does: each message through
/// `xfr::wire_message::parse_response`, hickory's parser and TSIG
/// verification (`tsig::ResponseVerifier`) when signed, its answers into
/// `xfr::interpreter::Interpreter`, until the interpreter says the
/// transfer is complete.
fn read_stream(x: &XfrInput, signer: &TsigKey) -> XfrRun {
    let request = if x.flags & 1 != 0 {
        XfrRequest::Ixfr { serial: x.serial }
    } else {
        XfrRequest::Axfr
    };
    // The zone is the first message's question (as the client asked it).
    let zone = x
        .frames
        .first()
        .and_then(|f| parse_response(f).ok())
        .and_then(|v| {
            v.question
                .map(|(q, _)| secondary53::zone::wire::to_presentation(&q))
        })
        .unwrap_or_else(|| "big.test.".to_string());
    let mut frames = x.frames.clone();
    let mut verifier = None;
    if x.flags & 4 != 0 {
        // Sign at run time, over the mutated bytes: the MACs are valid,
        // so verification passes and the content goes on.
        let mut s = ResponseSigner::new(signer.clone(), XFR_REQUEST_MAC.to_vec());
        let last = frames.len().saturating_sub(1);
        for (i, f) in frames.iter_mut().enumerate() {
            // Bit 3: leave messages between signed ones unsigned
            // (RFC 8945 5.3.1).
            if x.flags & 8 != 0 && i % 2 == 1 && i != last {
                continue;
            }
            dns::strip_tsig(f);
            let _ = s.sign(f);
        }
        verifier = Some(ResponseVerifier::new(
            signer.clone(),
            XFR_REQUEST_MAC.to_vec(),
        ));
    } else if x.flags & 2 != 0 {
        verifier = Some(ResponseVerifier::new(signer.clone(), x.mac.clone()));
    }
    let mut interp = Interpreter::new(&zone, request);
    let asked = match request {
        XfrRequest::Ixfr { serial } => Some(serial),
        XfrRequest::Axfr => None,
    };
    let run = |stage: String, transfer| XfrRun {
        stage,
        transfer,
        zone: zone.clone(),
        asked,
    };
    let mut ended = false;
    for raw in &frames {
        let view = match parse_response(raw) {
            Ok(v) => v,
            Err(_) => return run("parse".into(), None),
        };
        if let Some(v) = verifier.as_mut() {
            if Message::from_vec(raw).is_err() {
                return run("hickory".into(), None);
            }
            if let Err(f) = v.verify(raw) {
                let kind = format!("{f:?}");
                return run(
                    format!("tsig {}", kind.split('(').next().unwrap_or("")),
                    None,
                );
            }
        }
        for rr in view.answers.iter() {
            if let Err(e) = interp.push(rr) {
                let kind = format!("{e:?}");
                return run(
                    format!(
                        "interp {}",
                        kind.split([' ', '{', '(']).next().unwrap_or("")
                    ),
                    None,
                );
            }
        }
        if interp.message_end() {
            ended = true;
            break;
        }
    }
    if let Some(v) = &verifier
        && ended
        && !v.ends_signed()
    {
        return run("unsigned end".into(), None);
    }
    match interp.finish() {
        Ok(t) => run("complete".into(), Some(t)),
        Err(e) => {
            let kind = format!("{e:?}");
            run(
                format!(
                    "finish {}",
                    kind.split([' ', '{', '(']).next().unwrap_or("")
                ),
                None,
            )
        }
    }
}

/// Transfer responses (AXFR, IXFR, signed or not) as a primary sends them:
/// `xfr::wire_message` + `tsig::ResponseVerifier` + `xfr::interpreter`,
/// then what the secondary does with a complete transfer: a full zone is
/// diffed against the version held and indexed into a snapshot, deltas are
/// applied to it, and the result answers queries.
///
/// Input: see `capture.py` (flags: bit 0 IXFR; bit 1 verify with the
/// captured request MAC; bit 2 sign every message at run time, so hostile
/// content carries valid MACs; bit 3 leave every other message unsigned).
///
/// Oracles: a complete transfer keeps the interpreter's promises (a full
/// zone starts with the apex SOA and holds only names in the zone; deltas
/// chain from the serial asked); snapshots built from it answer with
/// well-formed responses.
pub struct XfrTarget {
    signer: TsigKey,
    /// The version held (from the captured big.test AXFR), sorted.
    base_records: Vec<Rr>,
    base: ZoneSnapshot,
}

impl XfrTarget {
    /// Builds the held version from the corpus.
    pub fn new() -> XfrTarget {
        let signer = support::signer();
        let mut base_records = Vec::new();
        for (name, bytes) in read_dir_files(&corpus_dir().join("xfr")) {
            if !name.contains("big.test.-axfr") {
                continue;
            }
            if let Some(x) = XfrInput::parse(&bytes)
                && let Some(Transfer::Full { records, .. }) = read_stream(&x, &signer).transfer
            {
                base_records = records;
            }
        }
        assert!(
            !base_records.is_empty(),
            "the corpus has no big.test AXFR to start IXFRs from"
        );
        secondary53::zone::sort_zone(&mut base_records);
        let base = ZoneSnapshot::from_sorted("big.test.", &base_records);
        XfrTarget {
            signer,
            base_records,
            base,
        }
    }

    fn check(&self, run: &XfrRun) -> Option<String> {
        let t = run.transfer.as_ref()?;
        let zone = &run.zone;
        let suffix = format!(".{zone}");
        let in_zone = |n: &str| n == zone || zone == "." || n.ends_with(&suffix);
        let (snapshot, names): (ZoneSnapshot, Vec<String>) = match t {
            Transfer::UpToDate { soa } => {
                if soa.rtype != 6 {
                    return Some("up-to-date answer without an SOA".into());
                }
                return None;
            }
            Transfer::Full { records, .. } => {
                let Some(first) = records.first() else {
                    return Some("full transfer without records".into());
                };
                if first.rtype != 6 || &first.name != zone {
                    return Some(format!(
                        "full transfer starts with {}",
                        first.to_master_line()
                    ));
                }
                if let Some(r) = records.iter().find(|r| !in_zone(&r.name)) {
                    return Some(format!("record outside {zone}: {}", r.to_master_line()));
                }
                let names: Vec<String> = records
                    .iter()
                    .skip(1)
                    .take(3)
                    .map(|r| r.name.clone())
                    .collect();
                let snap = if zone == "big.test." {
                    // The secondary's path for a later AXFR: diff against
                    // the version held, apply the delta.
                    let mut sorted = records.clone();
                    secondary53::zone::sort_zone(&mut sorted);
                    let current = self.base_records.iter().cloned().map(Ok::<_, ()>);
                    let Ok((removed, added)) = secondary53::zone::diff_sorted(current, &sorted)
                    else {
                        return Some("diff failed".into());
                    };
                    let Some(soa) = sorted.iter().find(|r| r.rtype == 6 && &r.name == zone) else {
                        return Some("no SOA".into());
                    };
                    let change = secondary53::zone::Changeset::from_diff(zone, removed, added, soa);
                    self.base.apply(&change)
                } else {
                    ZoneSnapshot::new(zone, records.clone())
                };
                (snap, names)
            }
            Transfer::Incremental { deltas } => {
                if let Some(d) = deltas.first()
                    && Some(d.from_serial()) != run.asked
                {
                    return Some(format!(
                        "first delta starts at {}, the IXFR asked from {:?}",
                        d.from_serial(),
                        run.asked
                    ));
                }
                for pair in deltas.windows(2) {
                    if pair[0].to_serial() != pair[1].from_serial() {
                        return Some("deltas do not chain".into());
                    }
                }
                let mut snap: Option<ZoneSnapshot> = None;
                let mut names = Vec::new();
                for d in deltas {
                    if let Some(r) = d.removed.iter().chain(&d.added).find(|r| !in_zone(&r.name)) {
                        return Some(format!(
                            "delta record outside {zone}: {}",
                            r.to_master_line()
                        ));
                    }
                    names.extend(d.added.iter().take(2).map(|r| r.name.clone()));
                    let base = snap.as_ref().unwrap_or(&self.base);
                    snap = Some(base.apply(d));
                }
                (snap.unwrap_or_default(), names)
            }
        };
        if snapshot.apex_wire().is_empty() {
            return None;
        }
        support::ask_snapshot(&snapshot, &names).1
    }
}

/// Mutates an xfr input: its header, whole messages (dropped, repeated,
/// swapped, taken from another stream), one message's fields, now and
/// then the framing.
fn mutate_stream(rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let Some(mut x) = XfrInput::parse(input) else {
        mutate::havoc(rng, input, pool, &[]);
        return;
    };
    let n = 1 + rng.below(3);
    for _ in 0..n {
        match rng.below(12) {
            0 => x.flags ^= 1 << rng.below(4),
            1 => {
                x.serial = match rng.below(3) {
                    0 => x.serial.wrapping_add(1),
                    1 => x.serial.wrapping_sub(1),
                    _ => rng.next_u64() as u32,
                }
            }
            2 if !x.frames.is_empty() => {
                let i = rng.below(x.frames.len());
                x.frames.remove(i);
            }
            3 if !x.frames.is_empty() => {
                let i = rng.below(x.frames.len());
                let f = x.frames[i].clone();
                x.frames.insert(rng.below(x.frames.len() + 1), f);
            }
            4 if x.frames.len() >= 2 => {
                let (a, b) = (rng.below(x.frames.len()), rng.below(x.frames.len()));
                x.frames.swap(a, b);
            }
            5 if !pool.is_empty() => {
                // A message from another stream.
                if let Some(o) = XfrInput::parse(rng.pick(pool).as_slice())
                    && !o.frames.is_empty()
                {
                    let f = rng.pick(&o.frames).clone();
                    x.frames.insert(rng.below(x.frames.len() + 1), f);
                }
            }
            _ if !x.frames.is_empty() => {
                let i = rng.below(x.frames.len());
                let others: Vec<Vec<u8>> = x.frames.clone();
                mutate::dns_message(rng, &mut x.frames[i], &others);
            }
            _ => {}
        }
    }
    *input = x.encode();
    if rng.chance(1, 32) {
        // Raw damage to the framing itself.
        mutate::havoc(rng, input, pool, &[]);
    }
}

impl Target for XfrTarget {
    fn name(&self) -> &'static str {
        "xfr"
    }

    fn seeds(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (_, bytes) in read_dir_files(&corpus_dir().join("xfr")) {
            out.push(bytes.clone());
            if let Some(mut x) = XfrInput::parse(&bytes) {
                // The same stream signed at run time, every message and
                // every other one.
                x.flags = (x.flags & 1) | 4;
                out.push(x.encode());
                x.flags |= 8;
                out.push(x.encode());
            }
        }
        out
    }

    fn mutate(&mut self, rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
        mutate_stream(rng, input, pool);
    }

    fn max_len(&self) -> usize {
        256 * 1024
    }

    fn execute(&mut self, input: &[u8]) -> Outcome {
        let Some(x) = XfrInput::parse(input) else {
            return Outcome::signal(signal_of(&[&"header"]));
        };
        let run = read_stream(&x, &self.signer);
        let kind = match &run.transfer {
            None => "none",
            Some(Transfer::UpToDate { .. }) => "up to date",
            Some(Transfer::Full { .. }) => "full",
            Some(Transfer::Incremental { .. }) => "incremental",
        };
        let mut outcome = Outcome::signal(signal_of(&[&run.stage, &kind, &(x.flags & 0xf)]));
        outcome.violation = self.check(&run);
        outcome
    }
}

// ---------------------------------------------------------------------------
// zonefile: master files of primary zones
// ---------------------------------------------------------------------------

const ZONE_ORIGINS: &[&str] = &[
    "diff.test.",
    "nsec.test.",
    "big.test.",
    "example.com.",
    "plain.test.",
];

/// Master-file words for the text mutator.
const ZONE_DICT: &[&[u8]] = &[
    b"$ORIGIN",
    b"$TTL",
    b"$INCLUDE",
    b"$GENERATE",
    b"@",
    b"(",
    b")",
    b";",
    b"\"",
    b"\"\"",
    b"\\#",
    b"\\# 0",
    b"\\# 4 c0000201",
    b"\\065",
    b"\\256",
    b"\\.",
    b"\\",
    b"IN",
    b"CH",
    b"HS",
    b"ANY",
    b"NONE",
    b"CLASS255",
    b"CLASS0",
    b"TYPE65534",
    b"TYPE0",
    b"A",
    b"AAAA",
    b"NS",
    b"SOA",
    b"CNAME",
    b"DNAME",
    b"MX",
    b"TXT",
    b"SPF",
    b"SRV",
    b"CAA",
    b"NAPTR",
    b"DS",
    b"DNSKEY",
    b"RRSIG",
    b"NSEC",
    b"NSEC3",
    b"NSEC3PARAM",
    b"TLSA",
    b"SSHFP",
    b"HINFO",
    b"SVCB",
    b"HTTPS",
    b"OPENPGPKEY",
    b"CSYNC",
    b"ZONEMD",
    b"NULL",
    b"OPT",
    b"TSIG",
    b"0",
    b"1",
    b"255",
    b"65535",
    b"65536",
    b"4294967295",
    b"4294967296",
    b"-1",
    b"1w2d3h4m5s",
    b"99999999999999999999",
    b"::",
    b"::ffff:1.2.3.4",
    b"256.1.1.1",
    b"1.2.3",
    b"a..b",
    b"*",
    b"*.x",
    b".",
    b"..",
    b"xn--",
    b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    b"issue",
    b"iodef",
    b"mandatory=alpn alpn=h2",
    b"AAAAAAAAAAAA",
    b"====",
    b"-",
    b"20301231235959",
    b"19700101000000",
];

/// `zone::file::load`, the master-file reader of primary zones (hickory's
/// parser behind the server's checks), and what the server does with a
/// loaded file: the records dumped as `zone dump` prints them must read
/// back as the same records, and a snapshot of them answers queries.
///
/// Input: one byte choosing the origin, then the file.
pub struct ZoneFileTarget {
    dir: tempfile::TempDir,
}

impl ZoneFileTarget {
    /// A target writing its files into a temporary directory.
    pub fn new() -> ZoneFileTarget {
        ZoneFileTarget {
            dir: tempfile::Builder::new()
                .prefix("fuzz-zonefile-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    fn load(&self, file: &str, text: &[u8], origin: &str) -> Result<Vec<Rr>, String> {
        let path = self.dir.path().join(file);
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        let origin = Name::from_ascii(origin).map_err(|e| e.to_string())?;
        secondary53::zone::file::load(&path, &origin).map_err(|e| e.to_string())
    }
}

impl Target for ZoneFileTarget {
    fn name(&self) -> &'static str {
        "zonefile"
    }

    fn seeds(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut files = read_dir_files(&corpus_dir().join("zonefile"));
        let example = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("zones")
            .join("example.com.zone");
        if let Ok(b) = std::fs::read(example) {
            files.push(("example.com.zone".into(), b));
        }
        for (name, bytes) in files {
            let origin = ZONE_ORIGINS
                .iter()
                .position(|o| name.starts_with(o.trim_end_matches('.')))
                .unwrap_or(0);
            let mut s = vec![origin as u8];
            s.extend_from_slice(&bytes);
            out.push(s);
        }
        out
    }

    fn mutate(&mut self, rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
        if input.is_empty() {
            input.push(0);
        }
        if rng.chance(1, 16) {
            input[0] = rng.below(ZONE_ORIGINS.len()) as u8;
            return;
        }
        let mut text = input[1..].to_vec();
        let others: Vec<Vec<u8>> = (0..2)
            .filter(|_| !pool.is_empty())
            .map(|_| rng.pick(pool).get(1..).unwrap_or(&[]).to_vec())
            .collect();
        let n = 1 + rng.below(3);
        for _ in 0..n {
            mutate::text(rng, &mut text, &others, ZONE_DICT);
        }
        input.truncate(1);
        input.extend_from_slice(&text);
    }

    fn max_len(&self) -> usize {
        128 * 1024
    }

    fn execute(&mut self, input: &[u8]) -> Outcome {
        let Some((&o, text)) = input.split_first() else {
            return Outcome::signal(0);
        };
        let origin = ZONE_ORIGINS[o as usize % ZONE_ORIGINS.len()];
        let records = match self.load("zone.db", text, origin) {
            Ok(r) => r,
            Err(e) => {
                // The kind of error, without names, lines and numbers.
                let words: Vec<&str> = e
                    .split_whitespace()
                    .skip(1)
                    .filter(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
                    .take(5)
                    .collect();
                return Outcome::signal(signal_of(&[&"error", &words]));
            }
        };
        let mut outcome = Outcome::signal(signal_of(&[
            &"ok",
            &records.len().min(64),
            &records.iter().map(|r| r.rtype).max(),
        ]));
        // `zone dump` prints every record with `Rr::to_master_line`; the
        // dump must read back as the same records. (Records printed in the
        // RFC 3597 generic form, `\# LEN HEX`, are left out: hickory's
        // reader does not accept that form for known types; BIND's does.)
        let printable: Vec<&Rr> = records
            .iter()
            .filter(|r| !r.rdata_presentation().starts_with("\\#"))
            .collect();
        let mut dump = format!("$ORIGIN {origin}\n");
        for r in &printable {
            dump.push_str(&r.to_master_line());
            dump.push('\n');
        }
        match self.load("dump.db", dump.as_bytes(), origin) {
            Ok(mut again) => {
                let mut first: Vec<Rr> = printable.iter().map(|r| (*r).clone()).collect();
                secondary53::zone::sort_zone(&mut first);
                secondary53::zone::sort_zone(&mut again);
                if first != again {
                    let only: Vec<String> = first
                        .iter()
                        .filter(|r| !again.contains(r))
                        .take(2)
                        .map(Rr::to_master_line)
                        .collect();
                    outcome.violation = Some(format!(
                        "zone dump does not read back the same records (e.g. {only:?})"
                    ));
                    return outcome;
                }
            }
            Err(e) => {
                // Name the first line that does not read back on its own.
                let soa = records
                    .iter()
                    .find(|r| r.rtype == 6)
                    .map(Rr::to_master_line);
                let culprit = printable
                    .iter()
                    .filter(|r| r.rtype != 6)
                    .map(|r| r.to_master_line())
                    .find(|line| {
                        let text = format!(
                            "$ORIGIN {origin}\n{}\n{line}\n",
                            soa.clone().unwrap_or_default()
                        );
                        self.load("line.db", text.as_bytes(), origin).is_err()
                    });
                outcome.violation = Some(format!(
                    "zone dump does not read back: {e} (line: {})",
                    culprit.as_deref().unwrap_or("?")
                ));
                return outcome;
            }
        }
        let apex = origin.to_string();
        let snap = ZoneSnapshot::new(&apex, records.clone());
        let names: Vec<String> = records.iter().take(3).map(|r| r.name.clone()).collect();
        outcome.violation = support::ask_snapshot(&snap, &names).1;
        outcome
    }
}

// ---------------------------------------------------------------------------
// xfr over sockets: the client itself against a primary sending the input
// ---------------------------------------------------------------------------

/// `xfr::client::Primary` (SOA probe over UDP with TCP on truncation, and
/// AXFR/IXFR over TCP: framing, header checks, TSIG, the interpreter)
/// against a local primary that answers with the input's messages.
///
/// Input: an xfr stream (as for [`XfrTarget`]); flag bit 4 makes it an
/// SOA probe (the first message answers over UDP, the next over TCP),
/// bit 5 keeps the message ids as they are (else they are set to the
/// request's). With bit 2, the primary signs each message with the
/// request's real MAC, so verification passes.
pub struct XfrTcpTarget {
    rt: tokio::runtime::Runtime,
    signer: TsigKey,
    udp: std::sync::Arc<tokio::net::UdpSocket>,
    tcp: std::sync::Arc<tokio::net::TcpListener>,
    addr: SocketAddr,
}

impl XfrTcpTarget {
    /// Binds the local primary's sockets on 127.0.0.1.
    pub fn new() -> XfrTcpTarget {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (udp, tcp, addr) = rt.block_on(async {
            // One port for both, as a primary has.
            for _ in 0..50 {
                let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind TCP");
                let addr = tcp.local_addr().expect("addr");
                if let Ok(udp) = tokio::net::UdpSocket::bind(addr).await {
                    return (udp, tcp, addr);
                }
            }
            panic!("no port free for both TCP and UDP");
        });
        XfrTcpTarget {
            rt,
            signer: support::signer(),
            udp: std::sync::Arc::new(udp),
            tcp: std::sync::Arc::new(tcp),
            addr,
        }
    }
}

/// Gives a message the request's id and, when signing, a TSIG chained
/// from the request's MAC.
fn prepare(frames: &mut [Vec<u8>], id: [u8; 2], keep_ids: bool, signer: Option<ResponseSigner>) {
    let mut signer = signer;
    for f in frames.iter_mut() {
        if !keep_ids && f.len() >= 2 {
            f[..2].copy_from_slice(&id);
        }
        if let Some(s) = signer.as_mut() {
            dns::strip_tsig(f);
            let _ = s.sign(f);
        }
    }
}

fn request_mac(req: &[u8]) -> Option<Vec<u8>> {
    Message::from_vec(req)
        .ok()?
        .signature
        .as_ref()
        .map(|s| s.data.mac.clone())
}

impl Target for XfrTcpTarget {
    fn name(&self) -> &'static str {
        "xfr_tcp"
    }

    fn seeds(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (_, bytes) in read_dir_files(&corpus_dir().join("xfr")) {
            if let Some(mut x) = XfrInput::parse(&bytes) {
                x.flags &= 1;
                out.push(x.encode());
                x.flags |= 4;
                out.push(x.encode());
            }
        }
        for (name, bytes) in read_dir_files(&corpus_dir().join("response")) {
            if name.contains("-soa-") {
                let x = XfrInput {
                    flags: 16,
                    serial: 0,
                    mac: Vec::new(),
                    frames: vec![bytes],
                };
                out.push(x.encode());
            }
        }
        out
    }

    fn mutate(&mut self, rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
        // The same stream mutations as the pure target, plus the two
        // socket flags.
        mutate_stream(rng, input, pool);
        if !input.is_empty() && rng.chance(1, 16) {
            input[0] ^= 1 << (4 + rng.below(2));
        }
    }

    fn max_len(&self) -> usize {
        256 * 1024
    }

    fn execute(&mut self, input: &[u8]) -> Outcome {
        let Some(x) = XfrInput::parse(input) else {
            return Outcome::signal(signal_of(&[&"header"]));
        };
        let soa_probe = x.flags & 16 != 0;
        // A probe whose answer is ignored (another id) waits out the
        // message limit by design: keep it short there.
        let timeouts = secondary53::config::TransferTimeouts {
            connect: Duration::from_secs(2),
            message: Duration::from_millis(if soa_probe { 100 } else { 2000 }),
            transfer: Duration::from_secs(3),
        };
        let signed = x.flags & 4 != 0;
        let primary = secondary53::xfr::client::Primary {
            addr: self.addr,
            signer: signed.then(|| self.signer.clone()),
            timeouts,
            progress: None,
            limits: secondary53::config::TransferLimits::default(),
            edns: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
            tls: None,
        };
        let zone = Name::from_ascii(
            x.frames
                .first()
                .and_then(|f| parse_response(f).ok())
                .and_then(|v| {
                    v.question
                        .map(|(q, _)| secondary53::zone::wire::to_presentation(&q))
                })
                .unwrap_or_else(|| "big.test.".into()),
        )
        .unwrap_or_else(|_| Name::root());
        let keep_ids = x.flags & 32 != 0;
        let ixfr = x.flags & 1 != 0;
        let current = Rr {
            name: secondary53::zone::owner_key(&zone),
            rtype: 6,
            class: 1,
            ttl: 3600,
            rdata: {
                let mut r = vec![0, 0];
                r.extend_from_slice(&x.serial.to_be_bytes());
                r.extend_from_slice(&[0; 16]);
                r
            },
        };
        let udp = self.udp.clone();
        let tcp = self.tcp.clone();
        let signer = self.signer.clone();
        let frames = x.frames.clone();
        // A probe's second try left over from an earlier input.
        let mut stale = [0u8; 512];
        while self.udp.try_recv_from(&mut stale).is_ok() {}
        let result = self.rt.block_on(async move {
            let server = tokio::spawn(async move {
                let mut frames = frames;
                if soa_probe {
                    let mut buf = vec![0u8; 65535];
                    let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                        return;
                    };
                    let req = &buf[..n];
                    let id = [req[0], req[1]];
                    let mac = request_mac(req);
                    let mut first: Vec<Vec<u8>> = frames.drain(..frames.len().min(1)).collect();
                    prepare(
                        &mut first,
                        id,
                        keep_ids,
                        mac.map(|m| ResponseSigner::new(signer.clone(), m)),
                    );
                    if let Some(f) = first.first() {
                        let _ = udp.send_to(f, from).await;
                    }
                }
                // Every connection gets the frames: the client may try
                // again on a new one (without EDNS after FORMERR).
                loop {
                    let accepted =
                        tokio::time::timeout(Duration::from_millis(500), tcp.accept()).await;
                    let Ok(Ok((mut stream, _))) = accepted else {
                        return;
                    };
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut len = [0u8; 2];
                    if stream.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut req = vec![0u8; u16::from_be_bytes(len) as usize];
                    if stream.read_exact(&mut req).await.is_err() || req.len() < 2 {
                        return;
                    }
                    let mac = request_mac(&req);
                    let mut frames = frames.clone();
                    prepare(
                        &mut frames,
                        [req[0], req[1]],
                        keep_ids,
                        mac.map(|m| ResponseSigner::new(signer.clone(), m)),
                    );
                    let _ = stream.write_all(&dns::join_frames(&frames)).await;
                    let _ = stream.shutdown().await;
                }
            });
            let r = if soa_probe {
                match primary.soa(&zone).await {
                    Ok(rr) => Ok(format!("soa {}", rr.rtype)),
                    Err(e) => Err(e),
                }
            } else {
                let request = if ixfr {
                    XfrRequest::Ixfr { serial: x.serial }
                } else {
                    XfrRequest::Axfr
                };
                match primary
                    .transfer(&zone, request, ixfr.then_some(&current))
                    .await
                {
                    Ok((t, _)) => Ok(match t {
                        Transfer::UpToDate { .. } => "up to date".to_string(),
                        Transfer::Full { .. } => "full".to_string(),
                        Transfer::Incremental { .. } => "incremental".to_string(),
                    }),
                    Err(e) => Err(e),
                }
            };
            server.abort();
            let _ = server.await;
            r
        });
        let stage = match &result {
            Ok(s) => s.clone(),
            Err(e) => {
                let d = format!("{e:?}");
                let words: Vec<&str> = d
                    .split(|c: char| !c.is_ascii_alphabetic())
                    .filter(|w| w.len() > 2)
                    .take(4)
                    .collect();
                words.join(" ")
            }
        };
        let mut outcome = Outcome::signal(signal_of(&[&stage, &(x.flags & 0x3f)]));
        if let Err(secondary53::xfr::client::XfrError::Timeout { stage, .. }) = &result
            && !soa_probe
        {
            // The primary sends everything at once and closes: a transfer
            // must end with a result or an error, not by waiting out a
            // time limit.
            outcome.violation = Some(format!("transfer waited out the {stage} time limit"));
        }
        outcome
    }
}
