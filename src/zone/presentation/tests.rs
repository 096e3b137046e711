use super::*;

/// Wire bytes of a presentation name (for building RDATA).
fn n(name: &str) -> Vec<u8> {
    let mut w = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        w.push(label.len() as u8);
        w.extend_from_slice(label.as_bytes());
    }
    w.push(0);
    w
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn types_without_a_mnemonic_are_written_as_typennn() {
    assert_eq!(type_name(63), "ZONEMD");
    assert_eq!(type_name(65), "HTTPS");
    assert_eq!(type_name(256), "URI");
    assert_eq!(type_name(65534), "TYPE65534");
    assert_eq!(type_name(65280), "TYPE65280");
    // hickory's ANAME code and the meta types have no zone-file mnemonic.
    assert_eq!(type_name(65305), "TYPE65305");
    assert_eq!(type_name(41), "TYPE41");
    assert_eq!(type_name(0), "TYPE0");
    let mut c = String::new();
    push_class(&mut c, 1);
    push_class(&mut c, 65280);
    push_class(&mut c, 254);
    push_class(&mut c, 255);
    assert_eq!(c, "INCLASS65280NONEANY");
}

#[test]
fn unknown_and_empty_rdata_use_the_generic_form() {
    assert_eq!(rdata(65534, &[0x08, 0x01, 0x00, 0x00]), "\\# 4 08010000");
    assert_eq!(rdata(65280, &[]), "\\# 0");
    // A type rendered by name whose RDATA does not parse as the type.
    assert_eq!(rdata(1, &[1, 2, 3]), "\\# 3 010203");
    assert_eq!(rdata(1, &[1, 2, 3, 4, 5]), "\\# 5 0102030405");
    assert_eq!(
        rdata(43, &[0, 1, 8, 2]),
        "\\# 4 00010802",
        "DS without digest"
    );
    assert_eq!(rdata(16, &[]), "\\# 0", "TXT without a string");
    assert_eq!(rdata(2, &[3, b'a', b'b']), "\\# 3 036162", "truncated name");
    // Types named but without a renderer here.
    assert_eq!(rdata(29, &[0, 1]), "\\# 2 0001", "LOC");
}

#[test]
fn address_name_and_soa_types() {
    assert_eq!(rdata(1, &[192, 0, 2, 1]), "192.0.2.1");
    let mut v6 = [0u8; 16];
    v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    v6[15] = 1;
    assert_eq!(rdata(28, &v6), "2001:db8::1");
    assert_eq!(rdata(5, &n("Target.Example.")), "Target.Example.");
    assert_eq!(
        rdata(2, &cat(&[&[3, b'a', b'.', b'b'], &n("example.")])),
        "a\\.b.example."
    );
    let soa = cat(&[
        &n("ns1.example."),
        &n("hostmaster.example."),
        &2024010101u32.to_be_bytes(),
        &3600u32.to_be_bytes(),
        &600u32.to_be_bytes(),
        &86400u32.to_be_bytes(),
        &300u32.to_be_bytes(),
    ]);
    assert_eq!(
        rdata(6, &soa),
        "ns1.example. hostmaster.example. 2024010101 3600 600 86400 300"
    );
    assert_eq!(
        rdata(15, &cat(&[&10u16.to_be_bytes(), &n("mail.example.")])),
        "10 mail.example."
    );
    let srv = cat(&[&[0, 0, 0, 5, 0x13, 0xc4], &n("sip.example.")]);
    assert_eq!(rdata(33, &srv), "0 5 5060 sip.example.");
}

#[test]
fn txt_is_quoted_and_escaped() {
    let txt = cat(&[&[9], b"say \"hi\"\\", &[2, 1, b'x'], &[0]]);
    assert_eq!(rdata(16, &txt), r#""say \"hi\"\\" "\001x" """#);
    assert_eq!(rdata(99, &[3, b'a', b' ', b'b']), "\"a b\"");
}

#[test]
fn naptr_and_uri() {
    let naptr = cat(&[
        &100u16.to_be_bytes(),
        &10u16.to_be_bytes(),
        &[1, b'u'],
        &[7],
        b"E2U+sip",
        &[14],
        b"!^.*$!sip:x@t!",
        &n("."),
    ]);
    assert_eq!(
        rdata(35, &naptr),
        r#"100 10 "u" "E2U+sip" "!^.*$!sip:x@t!" ."#
    );
    let uri = cat(&[&10u16.to_be_bytes(), &1u16.to_be_bytes(), b"ftp://a/\"b\""]);
    assert_eq!(rdata(256, &uri), r#"10 1 "ftp://a/\"b\"""#);
    assert_eq!(
        rdata(256, &[0, 10, 0, 1]),
        "\\# 4 000a0001",
        "URI without target"
    );
}

#[test]
fn caa_is_quoted() {
    let caa = cat(&[&[128, 5], b"issue", b"ca.example.net"]);
    assert_eq!(rdata(257, &caa), "128 issue \"ca.example.net\"");
    assert_eq!(rdata(257, &[0, 0]), "\\# 2 0000", "CAA without tag");
}

#[test]
fn dnssec_types() {
    let ds = cat(&[
        &60485u16.to_be_bytes(),
        &[5, 1],
        &unhex("2BB183AF5F22588179A53B0A98631FAD1A292118"),
    ]);
    assert_eq!(
        rdata(43, &ds),
        "60485 5 1 2bb183af5f22588179a53b0a98631fad1a292118"
    );
    assert_eq!(
        rdata(59, &[0, 0, 0, 0, 0]),
        "0 0 0 00",
        "CDS delete (RFC 8078)"
    );
    let dnskey = cat(&[&257u16.to_be_bytes(), &[3, 13], &[1, 2, 3, 4]]);
    assert_eq!(rdata(48, &dnskey), "257 3 13 AQIDBA==");
    assert_eq!(rdata(60, &[0, 0, 3, 0, 0]), "0 3 0 AA==", "CDNSKEY delete");

    // RRSIG: times as YYYYMMDDHHmmSS UTC.
    let rrsig = cat(&[
        &1u16.to_be_bytes(),
        &[8, 2],
        &300u32.to_be_bytes(),
        &1_924_905_600u32.to_be_bytes(),
        &1_609_372_800u32.to_be_bytes(),
        &1234u16.to_be_bytes(),
        &n("example."),
        &[0xde, 0xad, 0xbe, 0xef],
    ]);
    assert_eq!(
        rdata(46, &rrsig),
        "A 8 2 300 20301231000000 20201231000000 1234 example. 3q2+7w=="
    );
    assert_eq!(signature_time(0), "19700101000000");
    assert_eq!(signature_time(u32::MAX), "21060207062815");
    assert_eq!(signature_time(951_782_400), "20000229000000");

    // NSEC: case of the next name kept; types in a second window and the
    // private type 65534 as TYPEnnn.
    let nsec = cat(&[
        &n("Next.Example."),
        &[0, 6, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03],
        &[255, 32],
        &[0; 31],
        &[0x02],
    ]);
    assert_eq!(rdata(47, &nsec), "Next.Example. A MX RRSIG NSEC TYPE65534");
    // Windows out of order, or a window of 0 octets: generic form.
    let bad = cat(&[&n("a."), &[1, 1, 0x40, 0, 1, 0x40]]);
    assert!(rdata(47, &bad).starts_with("\\# "));
    assert!(rdata(47, &cat(&[&n("a."), &[0, 0]])).starts_with("\\# "));

    // NSEC3 (RFC 5155 appendix A's first record) and NSEC3PARAM.
    let next = unhex("2f4f4bf8a4f1c5b0d1a50d8a2e1f33d6a3a6b3b6");
    let nsec3 = cat(&[
        &[1, 1, 0, 12, 4],
        &unhex("aabbccdd"),
        &[20],
        &next,
        &[0, 1, 0x40],
    ]);
    let text = rdata(50, &nsec3);
    assert!(text.starts_with("1 1 12 aabbccdd "), "{text}");
    assert!(text.ends_with(" A"), "{text}");
    assert_eq!(rdata(51, &[1, 0, 0, 0, 0]), "1 0 0 -");
    let mut b32 = String::new();
    push_base32hex(&mut b32, b"foobar");
    assert_eq!(b32, "CPNMUOJ1E8", "RFC 4648 section 10, unpadded");
    b32.clear();
    push_base32hex(&mut b32, b"f");
    assert_eq!(b32, "CO");
}

#[test]
fn tlsa_sshfp_openpgpkey_csync_zonemd() {
    assert_eq!(rdata(52, &[3, 1, 1, 0xab, 0xcd]), "3 1 1 abcd");
    assert_eq!(rdata(53, &[3, 1, 1, 0xab]), "3 1 1 ab", "SMIMEA");
    assert_eq!(rdata(44, &[4, 2, 0x12, 0x34]), "4 2 1234");
    assert_eq!(rdata(61, b"key"), "a2V5");
    let csync = cat(&[
        &66u32.to_be_bytes(),
        &3u16.to_be_bytes(),
        &[0, 4, 0x60, 0, 0, 0x08],
    ]);
    assert_eq!(rdata(62, &csync), "66 3 A NS AAAA");
    // RFC 8976 appendix A.1's ZONEMD.
    let digest = "c68090d90a7aed716bc459f9340e3d7c1370d4d24b7e2fc3a1ddc0b9a87153b9a9713b3c9ae5cc27777f98b8e730044c";
    let zonemd = cat(&[&2018031900u32.to_be_bytes(), &[1, 1], &unhex(digest)]);
    assert_eq!(rdata(63, &zonemd), format!("2018031900 1 1 {digest}"));
}

#[test]
fn svcb_and_https_params() {
    let alias = cat(&[&0u16.to_be_bytes(), &n("pool.svc.example.")]);
    assert_eq!(rdata(65, &alias), "0 pool.svc.example.");
    let params = cat(&[
        &1u16.to_be_bytes(),
        &n("."),
        &[0, 0, 0, 4, 0, 1, 0, 3],                   // mandatory=alpn,port
        &[0, 1, 0, 6, 2, b'h', b'2', 2, b'h', b'3'], // alpn
        &[0, 2, 0, 0],                               // no-default-alpn
        &[0, 3, 0, 2, 0x20, 0xfb],                   // port 8443
        &[0, 4, 0, 4, 192, 0, 2, 1],                 // ipv4hint
        &[0, 5, 0, 2, 0, 1],                         // ech
        &[
            0, 6, 0, 16, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ],
        &[0, 7, 0, 1, b'/'],                   // a key without a name here
        &[0xfd, 0xe8, 0, 3, b'a', b'=', b'b'], // key65000
        &[0xfd, 0xe9, 0, 0],                   // key65001, empty
    ]);
    assert_eq!(
        rdata(64, &params),
        "1 . mandatory=alpn,port alpn=\"h2,h3\" no-default-alpn port=8443 \
         ipv4hint=192.0.2.1 ech=\"AAE=\" ipv6hint=2001:db8::1 key7=\"/\" \
         key65000=\"a=b\" key65001"
    );
    // An alpn id with a comma, a value that needs escapes: generic form.
    let comma = cat(&[
        &1u16.to_be_bytes(),
        &n("."),
        &[0, 1, 0, 4, 3, b'a', b',', b'b'],
    ]);
    assert!(rdata(65, &comma).starts_with("\\# "));
    let escaped = cat(&[&1u16.to_be_bytes(), &n("."), &[0xfd, 0xe8, 0, 2, b'a', 1]]);
    assert!(rdata(65, &escaped).starts_with("\\# "));
    // Keys out of order, or a value past the end: generic form.
    let disorder = cat(&[
        &1u16.to_be_bytes(),
        &n("."),
        &[0, 3, 0, 2, 0, 80, 0, 1, 0, 3, 2, b'h', b'2'],
    ]);
    assert!(rdata(65, &disorder).starts_with("\\# "));
    let short = cat(&[&1u16.to_be_bytes(), &n("."), &[0, 3, 0, 4, 0, 80]]);
    assert!(rdata(65, &short).starts_with("\\# "));
}

/// What the fuzz target of zone files checks: every record our own zone
/// file loader reads is written in a form it reads back as the same
/// record, or in the generic form (which hickory's reader does not take
/// for known types, and which is left out of that check).
#[test]
fn records_read_from_a_zone_file_are_written_in_a_form_that_reads_back() {
    use crate::zone::Rr;
    use crate::zone::file::load;
    use hickory_proto::rr::Name;
    let lines = [
        "h HINFO \"PC\" \"Linux\"",
        "n NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:x@t!\" .",
        "s SSHFP 4 2 0123456789abcdef",
        "t TLSA 3 1 1 0123456789abcdef",
        "m SMIMEA 3 1 1 0123456789abcdef",
        "k OPENPGPKEY AQIDBAUGBwgJCgsMDQ4P",
        "w HTTPS 1 . mandatory=alpn,port alpn=\"h2,h3\" no-default-alpn port=8443 \
         ipv4hint=192.0.2.1,192.0.2.2 ech=\"AAE=\" ipv6hint=2001:db8::1 key65000=\"abc\" key65001",
        "w2 HTTPS 0 www.example.",
        // hickory reads these two differently from RFC 9460 (`\\,` in
        // alpn; escapes in a value): written in the generic form.
        "w3 SVCB 1 x.example. alpn=\"h2\\\\,x,h3\" key7=\"/q{?dns}\"",
        "w4 SVCB 1 x.example. key65000=\"a\\001\\\"b\"",
        "c CSYNC 66 3 A NS AAAA",
        "d DS 60485 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "ca CAA 0 issue \"ca.example.net\"",
        "t2 TXT \"a \\\"b\\\" c\" \"\"",
        "mx MX 10 mail.example.",
        "sr SRV 0 5 5060 sip.example.",
        "cn ANAME www.example.",
        "ce CERT 1 2 3 AQID",
        "ch CH TXT \"x\"",
        "no NONE TXT \"x\"",
        "an ANY TXT \"x\"",
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zone.db");
    let origin = Name::from_ascii("example.").unwrap();
    let head = "$ORIGIN example.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 127.0.0.1\n";
    for line in lines {
        std::fs::write(&path, format!("{head}{line}\n")).unwrap();
        let first = load(&path, &origin).unwrap_or_else(|e| panic!("{line}: {e}"));
        let printable: Vec<Rr> = first
            .iter()
            .filter(|r| !r.rdata_presentation().starts_with("\\#"))
            .cloned()
            .collect();
        let dump: String = printable
            .iter()
            .map(|r| format!("{}\n", r.to_master_line()))
            .collect();
        std::fs::write(&path, format!("$ORIGIN example.\n{dump}")).unwrap();
        let mut again = load(&path, &origin).unwrap_or_else(|e| panic!("{line}: {e}\n{dump}"));
        let mut printable = printable;
        crate::zone::sort_zone(&mut printable);
        crate::zone::sort_zone(&mut again);
        assert_eq!(printable, again, "{line}:\n{dump}");
    }
}
