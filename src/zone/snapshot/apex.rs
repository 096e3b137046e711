//! [`ApexNames`]: a snapshot's apex in wire and presentation form, in one
//! allocation.
//!
//! The query path compares names with the apex in wire form; logs, the
//! registry and the SOA record use its presentation form. A server holds
//! thousands of zones, so each snapshot keeps both in one buffer (the wire
//! name, then the text) instead of a `Vec` and a `String`: one malloc chunk
//! and two words instead of two chunks and six words. The buffer's first
//! byte is the wire form's length (at most 255), so the query path, which
//! asks for the wire form several times per query, finds it without
//! walking its labels.

/// A zone's apex: the wire form's length, the lowercase wire form, then
/// the presentation form.
#[derive(Clone, Debug)]
pub(super) struct ApexNames(Box<[u8]>);

impl Default for ApexNames {
    /// No name at all: both forms empty.
    fn default() -> ApexNames {
        ApexNames(Box::new([0]))
    }
}

impl ApexNames {
    /// Both forms of `apex` (its wire form: `wire`, which must be the wire
    /// form of `apex`; the root when `apex` is not a valid name).
    pub(super) fn new(apex: &str, wire: &[u8]) -> ApexNames {
        let wire = match wire_len(wire) {
            Some(n) if n == wire.len() && n <= usize::from(u8::MAX) => wire,
            _ => &[0],
        };
        let mut b = Vec::with_capacity(1 + wire.len() + apex.len());
        b.push(wire.len() as u8);
        b.extend_from_slice(wire);
        b.extend_from_slice(apex.as_bytes());
        ApexNames(b.into_boxed_slice())
    }

    /// The lowercase wire form.
    #[inline]
    pub(super) fn wire(&self) -> &[u8] {
        &self.0[1..=usize::from(self.0[0])]
    }

    /// The presentation form, as the zone was configured.
    #[inline]
    pub(super) fn text(&self) -> &str {
        std::str::from_utf8(&self.0[1 + usize::from(self.0[0])..]).unwrap_or_default()
    }
}

/// The length of the wire name at the start of `b`, its root label
/// included; None when `b` does not start with a whole name.
#[inline]
fn wire_len(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let len = *b.get(at)? as usize;
        at += 1 + len;
        if len == 0 {
            return Some(at);
        }
        if len > 63 || at > b.len() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::wire;

    fn from_presentation(apex: &str) -> ApexNames {
        ApexNames::new(apex, &wire::from_presentation(apex).expect("a name"))
    }

    #[test]
    fn both_forms_come_back_from_one_buffer() {
        let a = from_presentation("z1.many.test.");
        assert_eq!(a.wire(), b"\x02z1\x04many\x04test\x00");
        assert_eq!(a.text(), "z1.many.test.");
        let root = from_presentation(".");
        assert_eq!(root.wire(), b"\x00");
        assert_eq!(root.text(), ".");
    }

    #[test]
    fn the_default_has_both_forms_empty() {
        let a = ApexNames::default();
        assert_eq!(a.wire(), b"");
        assert_eq!(a.text(), "");
    }

    #[test]
    fn a_wire_form_that_is_not_a_name_is_taken_as_the_root() {
        let a = ApexNames::new("x.", b"\x05ab");
        assert_eq!(a.wire(), b"\x00");
        assert_eq!(a.text(), "x.");
    }
}
