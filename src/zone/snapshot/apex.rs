//! [`ApexNames`]: a snapshot's apex in wire and presentation form, in one
//! allocation.
//!
//! The query path compares names with the apex in wire form; logs, the
//! registry and the SOA record use its presentation form. A server holds
//! thousands of zones, so each snapshot keeps both in one buffer (the wire
//! name, then the text) instead of a `Vec` and a `String`: one malloc chunk
//! and two words instead of two chunks and six words.

/// A zone's apex: the lowercase wire form, then the presentation form.
#[derive(Clone, Debug, Default)]
pub(super) struct ApexNames(Box<[u8]>);

impl ApexNames {
    /// Both forms of `apex` (its wire form: `wire`, which must be the wire
    /// form of `apex`; the root when `apex` is not a valid name).
    pub(super) fn new(apex: &str, wire: &[u8]) -> ApexNames {
        let wire = if wire_len(wire) == Some(wire.len()) {
            wire
        } else {
            &[0]
        };
        let mut b = Vec::with_capacity(wire.len() + apex.len());
        b.extend_from_slice(wire);
        b.extend_from_slice(apex.as_bytes());
        ApexNames(b.into_boxed_slice())
    }

    /// The lowercase wire form.
    #[inline]
    pub(super) fn wire(&self) -> &[u8] {
        let n = wire_len(&self.0).unwrap_or(0);
        &self.0[..n]
    }

    /// The presentation form, as the zone was configured.
    #[inline]
    pub(super) fn text(&self) -> &str {
        let n = wire_len(&self.0).unwrap_or(0);
        std::str::from_utf8(&self.0[n..]).unwrap_or_default()
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
    fn a_wire_form_that_is_not_a_name_is_taken_as_the_root() {
        let a = ApexNames::new("x.", b"\x05ab");
        assert_eq!(a.wire(), b"\x00");
        assert_eq!(a.text(), "x.");
    }
}
