//! The canonical form of a record's RDATA (RFC 4034 section 6.2, as
//! corrected by RFC 6840 section 5.1), for digests over zone data such as
//! ZONEMD (RFC 8976 section 3.3.2).
//!
//! Owner names are lowercased by the store already; in RDATA only the
//! domain names of the types RFC 4034 section 6.2 item 3 lists are
//! lowercased: NS, MD, MF, CNAME, SOA, MB, MG, MR, PTR, MINFO, MX, RP,
//! AFSDB, RT, SIG, PX, NXT, NAPTR, KX, SRV, DNAME, A6 and RRSIG. HINFO holds
//! no names, and NSEC is left as it is (RFC 6840 section 5.1: the next
//! owner name of an NSEC record keeps its case). Every other type's RDATA
//! is digested byte for byte (RFC 3597 section 7: types defined later do
//! not change case). Names in stored RDATA are uncompressed already.

use std::borrow::Cow;

use super::rtype;

/// One field of an RDATA layout, up to the last name it holds.
#[derive(Clone, Copy)]
enum Field {
    /// A fixed number of octets.
    Fixed(usize),
    /// A domain name, lowercased in canonical form.
    Name,
    /// A character-string: a length octet and that many octets.
    CharString,
}

use Field::{CharString, Fixed, Name};

/// The fields of the RDATA of the types whose names are lowercased, up to
/// their last name (what follows is copied as it is).
fn layout(rtype: u16) -> Option<&'static [Field]> {
    Some(match rtype {
        // NS, MD, MF, CNAME, MB, MG, MR, PTR, NXT, DNAME
        rtype::NS
        | rtype::MD
        | rtype::MF
        | rtype::CNAME
        | rtype::MB
        | rtype::MG
        | rtype::MR
        | rtype::PTR
        | rtype::NXT
        | rtype::DNAME => &[Name],
        // SOA, MINFO, RP: two names (SOA's five numbers follow)
        rtype::SOA | rtype::MINFO | rtype::RP => &[Name, Name],
        // MX, AFSDB, RT, KX: preference, name
        rtype::MX | rtype::AFSDB | rtype::RT | rtype::KX => &[Fixed(2), Name],
        // PX: preference, MAP822, MAPX400
        rtype::PX => &[Fixed(2), Name, Name],
        // SRV: priority, weight, port, target
        rtype::SRV => &[Fixed(6), Name],
        // NAPTR: order, preference, flags, services, regexp, replacement
        rtype::NAPTR => &[Fixed(4), CharString, CharString, CharString, Name],
        // SIG, RRSIG: 18 octets of fixed fields, signer's name, signature
        rtype::SIG | rtype::RRSIG => &[Fixed(18), Name],
        _ => return None,
    })
}

/// A6 (RFC 2874 section 3.1.1): prefix length, the address suffix of
/// `(128 - prefix length) / 8` octets rounded up, then the prefix name
/// when the prefix length is not 0.
const A6: u16 = rtype::A6;

/// The RDATA in canonical form: the domain names RFC 4034 section 6.2
/// (with RFC 6840 section 5.1) lists lowercased, everything else as it is.
/// Borrowed when nothing changes. RDATA that does not follow its type's
/// layout is returned as it is (it is digested as received).
pub fn canonical_rdata(rtype: u16, rdata: &[u8]) -> Cow<'_, [u8]> {
    let Some(names) = name_spans(rtype, rdata) else {
        return Cow::Borrowed(rdata);
    };
    let needs_change = names
        .iter()
        .any(|&(start, end)| labels_have_upper(&rdata[start..end]));
    if !needs_change {
        return Cow::Borrowed(rdata);
    }
    let mut out = rdata.to_vec();
    for (start, end) in names {
        lowercase_labels(&mut out[start..end]);
    }
    Cow::Owned(out)
}

/// Where the names to lowercase lie in the RDATA: (start, end) of each.
/// None when the type has none or the RDATA does not follow the layout.
fn name_spans(rtype: u16, rdata: &[u8]) -> Option<Vec<(usize, usize)>> {
    if rtype == A6 {
        let prefix_len = *rdata.first()? as usize;
        if prefix_len == 0 || prefix_len > 128 {
            return None;
        }
        let start = 1 + (128 - prefix_len).div_ceil(8);
        let end = name_end(rdata, start)?;
        return Some(vec![(start, end)]);
    }
    let fields = layout(rtype)?;
    let mut spans = Vec::with_capacity(2);
    let mut at = 0usize;
    for field in fields {
        match field {
            Fixed(n) => at += n,
            CharString => at += 1 + *rdata.get(at)? as usize,
            Name => {
                let end = name_end(rdata, at)?;
                spans.push((at, end));
                at = end;
            }
        }
        if at > rdata.len() {
            return None;
        }
    }
    Some(spans)
}

/// Index just past an uncompressed wire-format name starting at `at`.
fn name_end(buf: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *buf.get(at)? as usize;
        if len == 0 {
            return Some(at + 1);
        }
        if len & 0xC0 != 0 {
            return None;
        }
        at += 1 + len;
        if at > buf.len() {
            return None;
        }
    }
}

/// Whether a wire name (length octets skipped) holds an uppercase letter.
fn labels_have_upper(name: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        let len = len as usize;
        if name
            .get(at + 1..at + 1 + len)
            .is_some_and(|label| label.iter().any(u8::is_ascii_uppercase))
        {
            return true;
        }
        at += 1 + len;
    }
    false
}

/// Lowercases the labels of a wire name in place, leaving the length
/// octets alone.
fn lowercase_labels(name: &mut [u8]) {
    let mut at = 0;
    while at < name.len() {
        let len = name[at] as usize;
        let end = (at + 1 + len).min(name.len());
        name[at + 1..end].make_ascii_lowercase();
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in name.trim_end_matches('.').split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    #[test]
    fn mx_target_is_lowercased_and_the_preference_is_not_touched() {
        // Preference 0x4141 ("AA" as bytes) must stay as it is.
        let mut rdata = vec![0x41, 0x41];
        rdata.extend(wire("Mail2.Example."));
        let mut want = vec![0x41, 0x41];
        want.extend(wire("mail2.example."));
        assert_eq!(canonical_rdata(15, &rdata).as_ref(), &want[..]);
    }

    #[test]
    fn soa_names_are_lowercased_and_numbers_kept() {
        let mut rdata = wire("NS1.Example.");
        rdata.extend(wire("Admin.Example."));
        rdata.extend([0x41u8; 20]);
        let mut want = wire("ns1.example.");
        want.extend(wire("admin.example."));
        want.extend([0x41u8; 20]);
        assert_eq!(canonical_rdata(6, &rdata).as_ref(), &want[..]);
    }

    #[test]
    fn naptr_replacement_is_lowercased_and_its_strings_are_not() {
        let mut rdata = vec![0, 10, 0, 20];
        for s in ["U", "E2U+SIP", "!^.*$!SIP:X@Y!"] {
            rdata.push(s.len() as u8);
            rdata.extend_from_slice(s.as_bytes());
        }
        let strings_end = rdata.len();
        rdata.extend(wire("Sip.Example."));
        let out = canonical_rdata(35, &rdata);
        assert_eq!(&out[..strings_end], &rdata[..strings_end]);
        assert_eq!(&out[strings_end..], &wire("sip.example.")[..]);
    }

    #[test]
    fn rrsig_signer_is_lowercased_and_the_signature_is_not() {
        let mut rdata = vec![0x41; 18];
        rdata.extend(wire("Example."));
        rdata.extend(b"SIGNATURE");
        let mut want = vec![0x41; 18];
        want.extend(wire("example."));
        want.extend(b"SIGNATURE");
        assert_eq!(canonical_rdata(46, &rdata).as_ref(), &want[..]);
    }

    #[test]
    fn nsec_next_name_keeps_its_case_rfc6840() {
        let mut rdata = wire("Next.Example.");
        rdata.extend([0, 1, 0x40]);
        assert!(matches!(canonical_rdata(47, &rdata), Cow::Borrowed(_)));
    }

    #[test]
    fn a6_prefix_name_is_lowercased() {
        // Prefix length 64: 8 octets of address suffix, then the name.
        let mut rdata = vec![64];
        rdata.extend([0x41; 8]);
        rdata.extend(wire("Prefix.Example."));
        let mut want = vec![64];
        want.extend([0x41; 8]);
        want.extend(wire("prefix.example."));
        assert_eq!(canonical_rdata(38, &rdata).as_ref(), &want[..]);
    }

    #[test]
    fn other_types_and_broken_rdata_are_borrowed_unchanged() {
        let txt = b"\x05Hello";
        assert!(matches!(canonical_rdata(16, txt), Cow::Borrowed(_)));
        // An MX whose name runs past the end is digested as received.
        let broken = [0u8, 10, 5, b'M', b'a'];
        assert_eq!(canonical_rdata(15, &broken).as_ref(), &broken[..]);
        // A compression pointer is not a name of stored RDATA.
        let pointer = [0u8, 10, 0xC0, 12];
        assert_eq!(canonical_rdata(15, &pointer).as_ref(), &pointer[..]);
    }
}
