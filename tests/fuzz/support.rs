//! What several fuzz targets share: the corpus key, zones loaded from the
//! corpus into snapshots and a [`Zones`] set as the server has them, raw
//! TSIG signing of mutated bytes (so a hostile message can carry a valid
//! MAC and reach the code behind the verification), and a few queries to
//! ask a freshly built snapshot.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use hickory_proto::rr::Name;
use secondary53::config::ZoneSettings;
use secondary53::metrics::Metrics;
use secondary53::registry::{ZoneEntry, Zones};
use secondary53::registry::{ZoneLifecycle, ZoneShared, ZoneStatus};
use secondary53::serve::answer::{self, Found, Scratch, ZoneLookup};
use secondary53::serve::query::parse_query;
use secondary53::tsig::{Algorithm, TsigKey};
use secondary53::zone::Rr;
use secondary53::zone::snapshot::ZoneSnapshot;

use super::dns;
use super::harness::corpus_dir;

/// The TSIG key of the corpus captures (`capture.sh`).
pub const KEY_NAME: &str = "fuzz-key.";
/// Its secret, base64.
pub const KEY_SECRET: &str = "ZnV6ei1jb3JwdXMta2V5LXNlY3JldC0zMi1ieXRlcyE=";

/// The corpus key.
pub fn signer() -> TsigKey {
    use base64::Engine as _;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(KEY_SECRET)
        .expect("corpus key is base64");
    TsigKey::new(
        &Name::from_ascii(KEY_NAME).expect("key name"),
        Algorithm::HmacSha256,
        &secret,
        None,
    )
    .expect("corpus key")
}

/// Appends a TSIG record to a request given as raw bytes (RFC 8945 4.3.3:
/// the MAC covers the message as it is, then the TSIG variables), the way
/// a client with the key would sign exactly these bytes. Messages shorter
/// than a header are left alone.
pub fn sign_raw_request(msg: &mut Vec<u8>, key: &TsigKey, now: u64) {
    let _ = secondary53::tsig::sign_raw_request_at(msg, key, now);
}

/// Records of a corpus master file (`zonefile/<file>`), read by the
/// server's own loader, with `from` replaced by `to` in the text first
/// (to serve one zone under several names).
pub fn corpus_zone(file: &str, origin: &str, replace: Option<(&str, &str)>) -> Vec<Rr> {
    let path = corpus_dir().join("zonefile").join(file);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    if let Some((from, to)) = replace {
        text = text.replace(from, to);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join("zone.db");
    std::fs::write(&p, text).expect("write zone");
    secondary53::zone::file::load(&p, &Name::from_ascii(origin).expect("origin"))
        .unwrap_or_else(|e| panic!("load corpus zone {file}: {e}"))
}

/// Records of a zone as captured in a corpus AXFR stream
/// (`xfr/*-<zone>-axfr-*.bin`), read with the server's transfer parser and
/// interpreter. (Signed zones come this way: hickory's master-file parser
/// refuses RRSIG records.)
pub fn corpus_axfr(zone: &str) -> Vec<Rr> {
    use secondary53::xfr::interpreter::{Interpreter, Transfer, XfrRequest};
    let dir = corpus_dir().join("xfr");
    let (_, bytes) = super::harness::read_dir_files(&dir)
        .into_iter()
        .find(|(n, _)| n.contains(&format!("-{zone}-axfr-")))
        .unwrap_or_else(|| panic!("no AXFR of {zone} in {}", dir.display()));
    let maclen = bytes[5] as usize;
    let mut interp = Interpreter::new(zone, XfrRequest::Axfr);
    for frame in dns::split_frames(&bytes[6 + maclen..]) {
        let view = secondary53::xfr::wire_message::parse_response(&frame)
            .unwrap_or_else(|e| panic!("corpus AXFR of {zone}: {e}"));
        for rr in view.answers.iter() {
            interp
                .push(rr)
                .unwrap_or_else(|e| panic!("corpus AXFR of {zone}: {e}"));
        }
    }
    match interp.finish() {
        Ok(Transfer::Full { records, .. }) => records,
        other => panic!("corpus AXFR of {zone} is not a full zone: {other:?}"),
    }
}

fn status(state: ZoneLifecycle) -> ZoneStatus {
    ZoneStatus::new(state)
}

/// The zones the query target serves, as the server holds them:
/// `diff.test` (NSEC3-signed; NOTIFY must carry the corpus key),
/// `nsec.test` (NSEC-signed), `plain.test` (unsigned) and `loading.test`
/// (no data yet). NOTIFY is allowed from 127.0.0.0/8.
pub struct ServedZones {
    /// The set handed to the request handler.
    pub zones: Arc<Zones>,
    /// Kept so NOTIFYs queued to the zones have somewhere to go.
    _receivers: Vec<secondary53::registry::CommandReceiver>,
}

impl ServedZones {
    /// Loads the corpus zones.
    pub fn load() -> ServedZones {
        let generation = Arc::new(AtomicU64::new(0));
        let mut zones = Zones::new(generation.clone(), Arc::new(Metrics::default()));
        zones.store = None;
        let zones = Arc::new(zones);
        let mut receivers = Vec::new();
        let sets: Vec<(&str, Option<Vec<Rr>>, bool)> = vec![
            ("diff.test.", Some(corpus_axfr("diff.test.")), true),
            ("nsec.test.", Some(corpus_axfr("nsec.test.")), false),
            (
                "plain.test.",
                Some(corpus_zone(
                    "diff.test.zone",
                    "plain.test.",
                    Some(("diff.test.", "plain.test.")),
                )),
                false,
            ),
            ("loading.test.", None, false),
        ];
        for (apex, records, keyed) in sets {
            let (state, snapshot) = match records {
                Some(r) => (ZoneLifecycle::Serving, ZoneSnapshot::new(apex, r)),
                None => (ZoneLifecycle::Loading, ZoneSnapshot::default()),
            };
            let (tx, rx) = secondary53::registry::command_queue(4);
            receivers.push(rx);
            zones.insert(ZoneEntry {
                shared: Arc::new(ZoneShared {
                    apex: apex.to_string(),
                    status: RwLock::new(status(state)),
                    snapshot: RwLock::new(Arc::new(snapshot)),
                    changes: zones.changes.clone(),
                    transfer_progress: AtomicU64::new(0),
                }),
                commands: tx,
                settings: Arc::new(ZoneSettings {
                    allow_notify: vec!["127.0.0.0/8".parse().expect("prefix")],
                    ..ZoneSettings::default()
                }),
                signer: keyed.then(signer),
                mirror: None,
                counts: Default::default(),
            });
        }
        let mut keys = HashMap::new();
        keys.insert(Name::from_ascii(KEY_NAME).expect("key name"), signer());
        zones.set_keys(keys);
        ServedZones {
            zones,
            _receivers: receivers,
        }
    }
}

/// The UDP size limit the server must respect for `request`: the EDNS
/// payload of its OPT record (512 to 1232), or 512 without one.
pub fn udp_limit(request: &[u8]) -> usize {
    let Some(w) = dns::walk(request) else {
        return 512;
    };
    match w.opt {
        Some(opt) if opt.section == 3 => {
            let payload = u16::from_be_bytes([request[opt.type_at + 2], request[opt.type_at + 3]]);
            usize::from(payload.clamp(512, 1232))
        }
        _ => 512,
    }
}

/// One snapshot as a [`ZoneLookup`].
pub struct OneZone<'a>(pub &'a ZoneSnapshot);

impl ZoneLookup for OneZone<'_> {
    fn find(&self, qname: &[u8]) -> Option<Found<'_>> {
        secondary53::zone::wire::is_subdomain(qname, self.0.apex_wire())
            .then_some(Found::Serving(self.0))
    }
}

/// A query for `name` (presentation) and `qtype`, with EDNS and DO.
pub fn query_bytes(name: &str, qtype: u16, dnssec: bool) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    q.extend(secondary53::zone::wire::from_presentation(name).unwrap_or_else(|| vec![0]));
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q.extend_from_slice(&[
        0,
        0,
        41,
        0x04,
        0xd0,
        0,
        0,
        if dnssec { 0x80 } else { 0 },
        0,
        0,
        0,
    ]);
    q
}

/// Answers a few queries from a snapshot built from untrusted records (the
/// apex SOA and ANY, a name it holds, a name it does not hold, each with
/// DO, over UDP and TCP sizes) and checks every response. Returns a
/// signal word and the first violation.
pub fn ask_snapshot(snap: &ZoneSnapshot, names: &[String]) -> (u64, Option<String>) {
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    let mut sig = 0u64;
    let apex = snap.apex().to_string();
    let mut asks: Vec<(String, u16)> = vec![
        (apex.clone(), 6),
        (apex.clone(), 255),
        (format!("nx-fuzz.{}", apex.trim_start_matches('.')), 1),
    ];
    for n in names.iter().take(3) {
        asks.push((n.clone(), 1));
        asks.push((n.clone(), 46));
    }
    for (name, qtype) in asks {
        for dnssec in [false, true] {
            let raw = query_bytes(&name, qtype, dnssec);
            let Ok(q) = parse_query(&raw) else {
                continue;
            };
            for limit in [512usize, 65535] {
                answer::answer(&q, &OneZone(snap), limit, &mut out, &mut scratch);
                if let Err(e) = dns::check_response(&raw, &out, limit) {
                    return (sig, Some(format!("answer for {name} type {qtype}: {e}")));
                }
                sig = sig.rotate_left(5) ^ u64::from(out[3] & 0x0f) ^ (out.len() as u64 >> 6);
            }
        }
    }
    (sig, None)
}

/// A loopback address inside the NOTIFY ACL, and one outside it.
pub fn peer(allowed: bool) -> SocketAddr {
    if allowed {
        "127.0.0.1:5300".parse().expect("addr")
    } else {
        "192.0.2.1:5300".parse().expect("addr")
    }
}
