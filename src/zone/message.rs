//! What every part that writes a DNS message shares, answers and transfers
//! alike: the EDNS UDP payload size the server advertises (RFC 6891
//! section 6.2.5) and the bare error response to a message whose header
//! could be read (RFC 1035 section 4.1.1).

/// Our EDNS UDP payload size (the DNS flag day 2020 value).
pub const UDP_PAYLOAD: u16 = 1232;

/// Writes a bare error response (FORMERR, NOTIMP...) for a message whose
/// header could be read.
pub fn error_response(raw: &[u8], code: u16, out: &mut Vec<u8>) -> bool {
    if raw.len() < 12 {
        return false;
    }
    out.clear();
    out.extend_from_slice(&raw[..2]);
    let flags = 0x8000 | (u16::from_be_bytes([raw[2], raw[3]]) & 0x7900) | (code & 0x0f);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::rcode;

    #[test]
    fn error_response_keeps_id_opcode_and_rd_and_clears_the_sections() {
        // ID 0xabcd, NOTIFY opcode (4), AA, TC and RD set, CD set, one
        // question: only the ID, opcode and RD may come back.
        let mut raw = vec![0xab, 0xcd, 0x27, 0x10, 0, 1, 0, 0, 0, 0, 0, 1];
        raw.extend_from_slice(&[0, 0, 6, 0, 1]);
        let mut out = vec![0xff; 40];
        assert!(error_response(&raw, rcode::REFUSED, &mut out));
        assert_eq!(out, [0xab, 0xcd, 0xa1, 0x05, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn error_response_needs_a_whole_header() {
        let mut out = Vec::new();
        assert!(!error_response(&[0; 11], rcode::FORMERR, &mut out));
        assert!(out.is_empty());
    }
}
