//! Domain names in wire format (RFC 1035 section 3.1), lowercased, as the
//! query path handles them: no allocation to walk labels or ancestors, and
//! the canonical order of RFC 4034 section 6.1 for NSEC proofs.

use std::cmp::Ordering;

/// Longest wire-format name (RFC 1035 section 2.3.4).
pub const MAX_NAME: usize = 255;

/// Converts a presentation-format name (such as the store's owner names) to
/// lowercase wire format. Handles `\DDD` and `\X` escapes.
pub fn from_presentation(name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len() + 2);
    from_presentation_into(name, &mut out).then_some(out)
}

/// Like [`from_presentation`], into `out` (cleared first), so that one
/// buffer reused for many names allocates nothing. False when `name` is not
/// a valid name (what `out` then holds is unspecified).
pub fn from_presentation_into(name: &str, out: &mut Vec<u8>) -> bool {
    out.clear();
    if name == "." {
        out.push(0);
        return true;
    }
    let bytes = name.as_bytes();
    // Where the length of the label being written goes; written once the
    // label ends. A label that never starts leaves it as the root's zero.
    let mut len_at = 0;
    out.push(0);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'.' => {
                let len = out.len() - len_at - 1;
                if len == 0 || len > 63 {
                    return false;
                }
                out[len_at] = len as u8;
                len_at = out.len();
                out.push(0);
                i += 1;
            }
            b'\\' => {
                let rest = &bytes[i + 1..];
                if rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit) {
                    let v = (rest[0] - b'0') as u16 * 100
                        + (rest[1] - b'0') as u16 * 10
                        + (rest[2] - b'0') as u16;
                    let Ok(v) = u8::try_from(v) else {
                        return false;
                    };
                    out.push(v.to_ascii_lowercase());
                    i += 4;
                } else {
                    let Some(c) = rest.first() else {
                        return false;
                    };
                    out.push(c.to_ascii_lowercase());
                    i += 2;
                }
            }
            _ => {
                out.push(b.to_ascii_lowercase());
                i += 1;
            }
        }
    }
    let len = out.len() - len_at - 1;
    if len > 63 {
        return false;
    }
    if len > 0 {
        out[len_at] = len as u8;
        out.push(0);
    }
    out.len() <= MAX_NAME
}

/// Offsets of each label start in a wire name, the root's (final zero) last.
/// `ancestors(n)[i..]` are the suffixes: `&n[offs[i]..]` is an ancestor.
pub fn label_offsets(name: &[u8], out: &mut [usize; 128]) -> usize {
    let mut n = 0;
    let mut at = 0;
    while at < name.len() && n < out.len() {
        out[n] = at;
        n += 1;
        let len = name[at] as usize;
        if len == 0 {
            break;
        }
        at += 1 + len;
    }
    n
}

/// Number of labels, not counting the root.
pub fn label_count(name: &[u8]) -> usize {
    let mut offs = [0usize; 128];
    label_count_with(name, &mut offs)
}

fn label_count_with(name: &[u8], offs: &mut [usize; 128]) -> usize {
    label_offsets(name, offs).saturating_sub(1)
}

/// True when `name` equals `zone` or lies below it (both lowercase wire).
pub fn is_subdomain(name: &[u8], zone: &[u8]) -> bool {
    if name.len() < zone.len() || !name.ends_with(zone) {
        return false;
    }
    // The suffix must start on a label boundary.
    let mut at = 0;
    let start = name.len() - zone.len();
    while at < start {
        at += 1 + name[at] as usize;
    }
    at == start
}

/// The parent of a wire name; None for the root.
pub fn parent(name: &[u8]) -> Option<&[u8]> {
    let len = *name.first()? as usize;
    if len == 0 {
        return None;
    }
    name.get(1 + len..)
}

/// Presentation form of a wire name (for logs and errors).
pub fn to_presentation(name: &[u8]) -> String {
    let mut s = String::with_capacity(name.len());
    push_presentation(&mut s, name);
    s
}

/// Appends the presentation form of a wire name to `s` (the form the
/// store's rows keep): one buffer reused for many names allocates nothing.
pub fn push_presentation(s: &mut String, name: &[u8]) {
    let start = s.len();
    let mut at = 0;
    while at < name.len() {
        let len = name[at] as usize;
        if len == 0 {
            break;
        }
        for &b in name.get(at + 1..at + 1 + len).unwrap_or(&[]) {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    s.push('\\');
                    s.push(b as char);
                }
                0x21..=0x7e => s.push(b as char),
                _ => {
                    s.push('\\');
                    s.push(char::from(b'0' + b / 100));
                    s.push(char::from(b'0' + b / 10 % 10));
                    s.push(char::from(b'0' + b % 10));
                }
            }
        }
        s.push('.');
        at += 1 + len;
    }
    if s.len() == start {
        s.push('.');
    }
}

/// RFC 4034 section 6.1 canonical order of two lowercase wire names:
/// compare labels from the root down, each as a byte string.
pub fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let mut oa = [0usize; 128];
    let mut ob = [0usize; 128];
    let na = label_count_with(a, &mut oa);
    let nb = label_count_with(b, &mut ob);
    let (mut i, mut j) = (na, nb);
    while i > 0 && j > 0 {
        i -= 1;
        j -= 1;
        let la = &a[oa[i] + 1..oa[i] + 1 + a[oa[i]] as usize];
        let lb = &b[ob[j] + 1..ob[j] + 1 + b[ob[j]] as usize];
        match la.cmp(lb) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    na.cmp(&nb)
}

/// A wire-format name held inline (no heap), for the query path.
#[derive(Clone, Copy)]
pub struct NameBuf {
    len: u8,
    buf: [u8; MAX_NAME],
}

impl NameBuf {
    /// An empty buffer.
    pub const fn new() -> Self {
        NameBuf {
            len: 0,
            buf: [0; MAX_NAME],
        }
    }

    /// A copy of `name` (at most [`MAX_NAME`] bytes; longer input is cut).
    pub fn from_slice(name: &[u8]) -> Self {
        let mut b = NameBuf::new();
        let n = name.len().min(MAX_NAME);
        b.buf[..n].copy_from_slice(&name[..n]);
        b.len = n as u8;
        b
    }

    /// The name.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    fn push(&mut self, bytes: &[u8]) -> Option<()> {
        let at = self.len as usize;
        let end = at + bytes.len();
        if end > MAX_NAME {
            return None;
        }
        self.buf[at..end].copy_from_slice(bytes);
        self.len = end as u8;
        Some(())
    }
}

impl Default for NameBuf {
    fn default() -> Self {
        NameBuf::new()
    }
}

impl std::ops::Deref for NameBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::fmt::Debug for NameBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&to_presentation(self.as_slice()))
    }
}

/// Reads a (possibly compressed) name from a message at `at` into an inline
/// buffer, lowercased. Returns the name and the offset just past the name's
/// bytes at `at`. Bounded: at most 127 pointers followed and at most 255
/// bytes of output, so a compression loop ends in an error.
pub fn read_name_buf(msg: &[u8], at: usize) -> Option<(NameBuf, usize)> {
    read_name_with(msg, at, true)
}

/// [`read_name_buf`] keeping the case of every label, for names inside
/// RDATA: DNS keeps the case of data as it was entered (RFC 1034 section
/// 3.1, RFC 4343 section 4), so a CNAME target or an MX exchange is
/// stored and sent out as the zone has it.
pub fn read_name_buf_exact(msg: &[u8], at: usize) -> Option<(NameBuf, usize)> {
    read_name_with(msg, at, false)
}

fn read_name_with(msg: &[u8], mut at: usize, lowercase: bool) -> Option<(NameBuf, usize)> {
    let mut out = NameBuf::new();
    let mut end = None;
    let mut jumps = 0;
    let mut label = [0u8; 64];
    loop {
        let len = *msg.get(at)? as usize;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    out.push(&[0])?;
                    return Some((out, end.unwrap_or(at + 1)));
                }
                let src = msg.get(at + 1..at + 1 + len)?;
                label[0] = len as u8;
                for (d, s) in label[1..=len].iter_mut().zip(src) {
                    *d = if lowercase {
                        s.to_ascii_lowercase()
                    } else {
                        *s
                    };
                }
                out.push(&label[..=len])?;
                at += 1 + len;
            }
            0xC0 => {
                let ptr = ((len & 0x3F) << 8) | *msg.get(at + 1)? as usize;
                if end.is_none() {
                    end = Some(at + 2);
                }
                jumps += 1;
                if jumps > 127 || ptr >= msg.len() {
                    return None;
                }
                at = ptr;
            }
            _ => return None,
        }
    }
}

/// Like [`read_name_buf`], appending the name to `out`.
pub fn read_name(msg: &[u8], at: usize, out: &mut Vec<u8>) -> Option<usize> {
    let (name, end) = read_name_buf(msg, at)?;
    out.extend_from_slice(&name);
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_converted_into_a_reused_buffer_is_what_from_presentation_makes() {
        let long = format!("{}.example.", "a".repeat(63));
        let too_long_label = format!("{}.example.", "a".repeat(64));
        let too_long_name = format!("{}example.", "abcdefghi.".repeat(26));
        let mut out = Vec::new();
        for name in [
            ".",
            "example.",
            "Www.Example.",
            "www.example",
            "a\\.b.example.",
            "\\065.example.",
            "\\.",
            "a..example.",
            ".example.",
            long.as_str(),
            too_long_label.as_str(),
            too_long_name.as_str(),
        ] {
            let want = from_presentation(name);
            let ok = from_presentation_into(name, &mut out);
            assert_eq!(ok.then(|| out.clone()), want, "{name}");
        }
    }

    fn w(s: &str) -> Vec<u8> {
        from_presentation(s).unwrap()
    }

    #[test]
    fn presentation_round_trip_and_lowercase() {
        assert_eq!(w("WWW.Example.com."), b"\x03www\x07example\x03com\x00");
        assert_eq!(w("."), b"\x00");
        assert_eq!(w("a\\.b.c."), b"\x03a.b\x01c\x00");
        assert_eq!(w("\\042.x."), b"\x01*\x01x\x00");
        assert_eq!(to_presentation(&w("a\\.b.c.")), "a\\.b.c.");
        assert_eq!(to_presentation(b"\x00"), ".");
    }

    /// Whatever byte a label holds, wherever it stands, the presentation
    /// form reads back as the same name, escaped exactly when it must be.
    #[test]
    fn every_byte_in_a_label_survives_presentation() {
        for b in (0..=255u8).filter(|b| !b.is_ascii_uppercase()) {
            for name in [vec![1, b, 2, b'x', b'y', 0], vec![3, b'a', b, b'z', 0]] {
                let text = to_presentation(&name);
                let special = !(0x21..=0x7e).contains(&b) || b".\\\"();@$".contains(&b);
                assert_eq!(text.contains('\\'), special, "{b}: {text}");
                assert_eq!(from_presentation(&text), Some(name.clone()), "{b}: {text}");
            }
        }
        let mut s = String::from("x ");
        push_presentation(&mut s, b"\x02ab\x02c.\x00");
        assert_eq!(s, "x ab.c\\..");
    }

    #[test]
    fn bytes_outside_printable_ascii_are_escaped_as_three_digits() {
        let name = b"\x03a\x00\xff\x02 b\x00";
        assert_eq!(to_presentation(name), "a\\000\\255.\\032b.");
        assert_eq!(w(&to_presentation(name)), name);
        // Appending to a buffer that holds another name.
        let mut s = String::from("x.");
        push_presentation(&mut s, b"\x00");
        push_presentation(&mut s, name);
        assert_eq!(s, "x..a\\000\\255.\\032b.");
    }

    #[test]
    fn subdomains_respect_label_boundaries() {
        assert!(is_subdomain(&w("a.example."), &w("example.")));
        assert!(is_subdomain(&w("example."), &w("example.")));
        assert!(!is_subdomain(&w("badexample."), &w("example.")));
        assert!(is_subdomain(&w("x."), &w(".")));
    }

    #[test]
    fn parents_and_labels() {
        assert_eq!(parent(&w("a.b.")), Some(&w("b.")[..]));
        assert_eq!(parent(&w(".")), None);
        assert_eq!(label_count(&w("a.b.c.")), 3);
        assert_eq!(label_count(&w(".")), 0);
    }

    /// RFC 4034 6.1 example order.
    #[test]
    fn canonical_order_matches_rfc_4034_example() {
        let order = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "z.a.example.",
            "zabc.a.example.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        for pair in order.windows(2) {
            assert_eq!(
                canonical_cmp(&w(pair[0]), &w(pair[1])),
                Ordering::Less,
                "{} < {}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn compressed_names_are_read_and_loops_rejected() {
        // "example." at 0, then "www" + pointer to 0 at 9.
        let mut msg = b"\x07example\x00".to_vec();
        msg.extend_from_slice(b"\x03WWW\xC0\x00");
        let mut out = Vec::new();
        assert_eq!(read_name(&msg, 9, &mut out), Some(15));
        assert_eq!(out, w("www.example."));
        // A pointer to itself.
        let lp = b"\xC0\x00";
        assert_eq!(read_name(lp, 0, &mut Vec::new()), None);
        // Forward pointer past the end.
        assert_eq!(read_name(b"\xC0\x09", 0, &mut Vec::new()), None);
    }

    #[test]
    fn exact_reading_keeps_the_case() {
        let mut msg = b"\x07ExAmple\x00".to_vec();
        msg.extend_from_slice(b"\x04Mail\xC0\x00");
        let (n, end) = read_name_buf_exact(&msg, 9).unwrap();
        assert_eq!(n.as_slice(), b"\x04Mail\x07ExAmple\x00");
        assert_eq!(end, 16);
        assert_eq!(
            read_name_buf(&msg, 9).unwrap().0.as_slice(),
            w("mail.example.")
        );
    }
}
