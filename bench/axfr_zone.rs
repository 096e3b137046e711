//! The owners of bench/axfr_1m.sh's zone, for the benchmarks that build it
//! in memory (`snapshot_apply.rs`, `snapshot_build.rs`): owners h0, h1, ...
//! cycling through A, A+AAAA, AAAA, TXT, 2 MX, CNAME, 2 TXT, 2 A.

/// A name below the zone's apex, `bench.test.`, in wire form.
pub fn name_wire(label: &str) -> Vec<u8> {
    let mut w = vec![label.len() as u8];
    w.extend_from_slice(label.as_bytes());
    w.extend_from_slice(b"\x05bench\x04test\x00");
    w
}

/// One record of an owner: type, TTL, RDATA.
pub type Rec = (u16, u32, Vec<u8>);

/// The TTL of owner `hK`'s records.
pub fn ttl(k: u32) -> u32 {
    300 + (k % 5) * 60
}

/// The records of owner `hK`: type, TTL and RDATA of each.
pub fn node(k: u32) -> Vec<Rec> {
    let ttl = ttl(k);
    let a = vec![10, (k >> 16) as u8, (k >> 8) as u8, k as u8];
    let txt = |s: String| {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    };
    let mx = |p: u16, host: &str| {
        let mut v = p.to_be_bytes().to_vec();
        v.extend(name_wire(host));
        v
    };
    let mut aaaa = vec![0x20, 0x01, 0x0d, 0xb8];
    aaaa.extend_from_slice(&[0; 8]);
    aaaa.extend_from_slice(&k.to_be_bytes());
    match k % 10 {
        0..=2 => vec![(1, ttl, a)],
        3 => vec![(1, ttl, a), (28, ttl, aaaa)],
        4 => vec![(28, ttl, aaaa)],
        5 => vec![(16, ttl, txt(format!("v=spf1 ip4:10.{k} -all")))],
        6 => vec![(15, ttl, mx(10, "ns1")), (15, ttl, mx(20, "ns2"))],
        7 => vec![(5, ttl, name_wire(&format!("h{}", k - 1)))],
        8 => vec![
            (16, ttl, txt(format!("record {k}"))),
            (16, ttl, txt(format!("k={k:08x}"))),
        ],
        _ => vec![
            (1, ttl, a),
            (1, ttl, vec![10, 255, (k >> 8) as u8, k as u8]),
        ],
    }
}
