//! Mutations: byte-level havoc (bit flips, interesting values, insert,
//! delete, duplicate, splice), DNS-message-aware edits (header counts,
//! RDLENGTH, types, compression pointers, label lengths, records copied,
//! dropped or moved between sections, SOA serials, EDNS), and text- and
//! XML-aware edits for master files and Route 53 responses.
#![allow(dead_code)]

use super::dns;

/// A small deterministic PRNG (SplitMix64): the same seed gives the same
/// run on every machine.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}

const INTERESTING_8: &[u8] = &[
    0, 1, 2, 3, 0x0f, 0x10, 0x1f, 0x20, 0x3f, 0x40, 0x41, 0x7f, 0x80, 0x81, 0xbf, 0xc0, 0xc1, 0xfe,
    0xff, b'.', b'\\', b'"', b'(', b')', b';', b'@', b'$', b'*', b' ', b'\n',
];
const INTERESTING_16: &[u16] = &[
    0, 1, 2, 3, 0x0f, 0x3f, 0x40, 0x7f, 0x80, 0xff, 0x100, 0x1ff, 255, 256, 511, 512, 513, 1232,
    4096, 0x3fff, 0x4000, 0x7fff, 0x8000, 0xc000, 0xc00c, 0xfffe, 0xffff,
];
const INTERESTING_32: &[u32] = &[
    0,
    1,
    0x7fff_ffff,
    0x8000_0000,
    0x8000_0001,
    0xffff_fffe,
    0xffff_ffff,
];

/// RR types worth trying in a type field.
pub const TYPES: &[u16] = &[
    1, 2, 5, 6, 12, 13, 15, 16, 24, 28, 29, 33, 35, 39, 41, 43, 44, 46, 47, 48, 50, 51, 52, 59, 61,
    64, 65, 99, 249, 250, 251, 252, 253, 254, 255, 256, 257, 32769, 65535,
];

fn set_u16(data: &mut [u8], at: usize, v: u16) {
    if at + 2 <= data.len() {
        data[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
}

fn get_u16(data: &[u8], at: usize) -> u16 {
    match data.get(at..at + 2) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]),
        None => 0,
    }
}

fn range(rng: &mut Rng, len: usize, max: usize) -> (usize, usize) {
    let start = rng.below(len + 1);
    let n = 1 + rng.below(max.max(1));
    (start, (start + n).min(len))
}

/// One byte-level mutation.
pub fn havoc(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>], dict: &[&[u8]]) {
    let len = data.len();
    match rng.below(15) {
        0 if len > 0 => {
            let at = rng.below(len);
            data[at] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let at = rng.below(len);
            data[at] = *rng.pick(INTERESTING_8);
        }
        2 if len > 0 => {
            let at = rng.below(len);
            data[at] = rng.byte();
        }
        3 if len > 0 => {
            let at = rng.below(len);
            let d = 1 + rng.below(16) as u8;
            data[at] = if rng.chance(1, 2) {
                data[at].wrapping_add(d)
            } else {
                data[at].wrapping_sub(d)
            };
        }
        4 if len > 1 => {
            let at = rng.below(len - 1);
            let v = *rng.pick(INTERESTING_16);
            set_u16(data, at, v);
        }
        5 if len > 3 => {
            let at = rng.below(len - 3);
            let v = *rng.pick(INTERESTING_32);
            data[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        6 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            data.splice(at..at, bytes);
        }
        7 if !dict.is_empty() => {
            let at = rng.below(len + 1);
            let token = rng.pick(dict).to_vec();
            data.splice(at..at, token);
        }
        8 if len > 0 => {
            let (a, b) = range(rng, len, 32);
            data.drain(a..b);
        }
        9 if len > 0 => {
            // Duplicate a range somewhere else.
            let (a, b) = range(rng, len, 64);
            let chunk = data[a..b].to_vec();
            let at = rng.below(data.len() + 1);
            data.splice(at..at, chunk);
        }
        10 if !pool.is_empty() => {
            // Splice: overwrite a range with bytes from another input.
            let other = rng.pick(pool);
            if !other.is_empty() && len > 0 {
                let (a, b) = range(rng, other.len(), 64);
                let at = rng.below(len);
                let chunk = &other[a..b];
                let end = (at + chunk.len()).min(len);
                data[at..end].copy_from_slice(&chunk[..end - at]);
            }
        }
        11 if !pool.is_empty() => {
            // Splice: insert bytes from another input.
            let other = rng.pick(pool);
            if !other.is_empty() {
                let (a, b) = range(rng, other.len(), 256);
                let at = rng.below(len + 1);
                data.splice(at..at, other[a..b].iter().copied());
            }
        }
        12 if len > 0 => {
            let at = rng.below(len);
            data.truncate(at);
        }
        13 if len > 1 => {
            // Swap two bytes far apart.
            let (a, b) = (rng.below(len), rng.below(len));
            data.swap(a, b);
        }
        _ if len > 0 => {
            // A run of one byte value.
            let (a, b) = range(rng, len, 32);
            let v = *rng.pick(INTERESTING_8);
            data[a..b].fill(v);
        }
        _ => data.push(rng.byte()),
    }
}

// ---------------------------------------------------------------------------
// DNS messages
// ---------------------------------------------------------------------------

fn section_count_at(section: u8) -> usize {
    6 + 2 * section as usize
}

/// One DNS-aware mutation of a message (falls back to [`havoc`] when the
/// message does not walk).
pub fn dns_message(rng: &mut Rng, msg: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let Some(w) = dns::walk(msg) else {
        havoc(rng, msg, pool, &[]);
        return;
    };
    if msg.len() < 12 {
        havoc(rng, msg, pool, &[]);
        return;
    }
    match rng.below(16) {
        0 => {
            // A header count.
            let at = 4 + 2 * rng.below(4);
            let v = get_u16(msg, at);
            let nv = match rng.below(4) {
                0 => v.wrapping_add(1),
                1 => v.wrapping_sub(1),
                2 => *rng.pick(INTERESTING_16),
                _ => rng.below(8) as u16,
            };
            set_u16(msg, at, nv);
        }
        1 if !w.records.is_empty() => {
            let r = rng.pick(&w.records);
            let v = get_u16(msg, r.rdlen_at);
            let nv = match rng.below(4) {
                0 => v.wrapping_add(1 + rng.below(4) as u16),
                1 => v.wrapping_sub(1 + rng.below(4) as u16),
                2 => *rng.pick(INTERESTING_16),
                _ => 0,
            };
            set_u16(msg, r.rdlen_at, nv);
        }
        2 if !w.records.is_empty() => {
            let r = rng.pick(&w.records);
            let t = *rng.pick(TYPES);
            set_u16(msg, r.type_at, t);
        }
        3 if !w.records.is_empty() || !w.questions.is_empty() => {
            // Class (of a record or a question).
            let at = if !w.questions.is_empty() && rng.chance(1, 3) {
                rng.pick(&w.questions).type_at + 2
            } else if !w.records.is_empty() {
                rng.pick(&w.records).type_at + 2
            } else {
                return;
            };
            let v = *rng.pick(&[1u16, 3, 4, 254, 255, 0, 2, 0xffff]);
            set_u16(msg, at, v);
        }
        4 if !w.names.is_empty() => {
            // A name replaced by a compression pointer anywhere (back,
            // forward, to itself).
            let at = *rng.pick(&w.names);
            let target = match rng.below(4) {
                0 => at,
                1 => rng.below(msg.len()),
                2 => 12,
                _ => rng.below(0x4000),
            } as u16;
            let ptr = (0xC000 | (target & 0x3fff)).to_be_bytes();
            if rng.chance(1, 2) {
                // Overwrite the name's first two bytes.
                if at + 2 <= msg.len() {
                    msg[at..at + 2].copy_from_slice(&ptr);
                }
            } else if let Some(end) = dns::name_end(msg, at) {
                msg.splice(at..end, ptr);
            }
        }
        5 if !w.labels.is_empty() => {
            let at = *rng.pick(&w.labels);
            let v = msg[at];
            msg[at] = match rng.below(5) {
                0 => 63,
                1 => 64,
                2 => *rng.pick(&[0x40u8, 0x80, 0xC0, 0]),
                3 => v.wrapping_add(1),
                _ => v.wrapping_sub(1),
            };
        }
        6 if !w.records.is_empty() => {
            // Duplicate a record in its section (or another).
            let r = rng.pick(&w.records).clone();
            let bytes = msg[r.start..r.end].to_vec();
            let section = if rng.chance(1, 4) {
                1 + rng.below(3) as u8
            } else {
                r.section
            };
            let at = if rng.chance(1, 2) {
                r.end
            } else {
                rng.pick(&w.records).start
            };
            msg.splice(at..at, bytes);
            let c = section_count_at(section);
            let v = get_u16(msg, c).wrapping_add(1);
            set_u16(msg, c, v);
        }
        7 if !w.records.is_empty() => {
            // Drop a record (count adjusted, or not).
            let r = rng.pick(&w.records).clone();
            msg.drain(r.start..r.end);
            if rng.chance(3, 4) {
                let c = section_count_at(r.section);
                let v = get_u16(msg, c).wrapping_sub(1);
                set_u16(msg, c, v);
            }
        }
        8 if w.records.len() >= 2 => {
            // Swap two records.
            let mut a = rng.pick(&w.records).clone();
            let mut b = rng.pick(&w.records).clone();
            if a.start > b.start {
                std::mem::swap(&mut a, &mut b);
            }
            if a.end <= b.start {
                let ra = msg[a.start..a.end].to_vec();
                let rb = msg[b.start..b.end].to_vec();
                msg.splice(b.start..b.end, ra);
                msg.splice(a.start..a.end, rb);
            }
        }
        9 if !w.soa_serials.is_empty() => {
            let at = *rng.pick(&w.soa_serials);
            let v = u32::from_be_bytes([msg[at], msg[at + 1], msg[at + 2], msg[at + 3]]);
            let others: Vec<u32> = w
                .soa_serials
                .iter()
                .map(|&o| u32::from_be_bytes([msg[o], msg[o + 1], msg[o + 2], msg[o + 3]]))
                .collect();
            let nv = match rng.below(5) {
                0 => v.wrapping_add(1),
                1 => v.wrapping_sub(1),
                2 => *rng.pick(&others),
                3 => v.wrapping_add(0x8000_0000),
                _ => *rng.pick(INTERESTING_32),
            };
            msg[at..at + 4].copy_from_slice(&nv.to_be_bytes());
        }
        10 => {
            // Header flags: opcode, QR, AA, TC, RD, rcode.
            let f = get_u16(msg, 2);
            let nf = match rng.below(4) {
                0 => (f & !0x7800) | ((*rng.pick(&[0u16, 1, 2, 4, 5, 6, 15]) & 0xf) << 11),
                1 => f ^ (1 << rng.below(16)),
                2 => (f & !0x000f) | rng.below(16) as u16,
                _ => rng.next_u64() as u16,
            };
            set_u16(msg, 2, nf);
        }
        11 if w.opt.is_some() => {
            // EDNS: payload, extended rcode/version, DO, options.
            let r = w.opt.clone().expect("checked");
            let ttl_at = r.type_at + 4;
            match rng.below(4) {
                0 => set_u16(msg, r.type_at + 2, *rng.pick(INTERESTING_16)),
                1 => msg[ttl_at + 1] = *rng.pick(&[0u8, 1, 2, 255]),
                2 => msg[ttl_at + 2] ^= 0x80,
                _ => {
                    // An option (or garbage) appended to the OPT RDATA.
                    let code = *rng.pick(&[3u16, 8, 9, 10, 11, 12, 15, 0xfde9, 0xffff]);
                    let n = rng.below(12);
                    let mut opt = code.to_be_bytes().to_vec();
                    opt.extend_from_slice(&(n as u16).to_be_bytes());
                    opt.extend((0..n).map(|_| rng.byte()));
                    let at = r.rdata_end;
                    msg.splice(at..at, opt.iter().copied());
                    let rdlen = get_u16(msg, r.rdlen_at).wrapping_add(opt.len() as u16);
                    set_u16(msg, r.rdlen_at, rdlen);
                }
            }
        }
        12 if !pool.is_empty() => {
            // Insert a record taken from another message.
            let other = rng.pick(pool);
            if let Some(ow) = dns::walk(other)
                && !ow.records.is_empty()
            {
                let r = rng.pick(&ow.records);
                let bytes = other[r.start..r.end].to_vec();
                let at = w.records.last().map(|l| l.end).unwrap_or(msg.len());
                let at = if w.records.is_empty() || rng.chance(1, 2) {
                    at
                } else {
                    rng.pick(&w.records).start
                };
                msg.splice(at..at, bytes);
                let c = section_count_at(r.section);
                let v = get_u16(msg, c).wrapping_add(1);
                set_u16(msg, c, v);
            }
        }
        13 if !w.records.is_empty() => {
            // TTL.
            let r = rng.pick(&w.records);
            let v = *rng.pick(INTERESTING_32);
            let at = r.type_at + 4;
            msg[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        14 if !w.records.is_empty() => {
            // Bytes inside one RDATA.
            let r = rng.pick(&w.records).clone();
            if r.rdata_end > r.rdata_start {
                let at = r.rdata_start + rng.below(r.rdata_end - r.rdata_start);
                msg[at] = if rng.chance(1, 2) {
                    *rng.pick(INTERESTING_8)
                } else {
                    rng.byte()
                };
            }
        }
        _ => havoc(rng, msg, pool, &[]),
    }
}

/// Several stacked mutations of a DNS message.
pub fn dns_stack(rng: &mut Rng, msg: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let n = 1 + rng.below(4);
    for _ in 0..n {
        if rng.chance(3, 4) {
            dns_message(rng, msg, pool);
        } else {
            havoc(rng, msg, pool, &[]);
        }
    }
}

// ---------------------------------------------------------------------------
// Text (master files)
// ---------------------------------------------------------------------------

fn lines_of(text: &[u8]) -> Vec<Vec<u8>> {
    text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

fn join_lines(lines: &[Vec<u8>]) -> Vec<u8> {
    lines.join(&b'\n')
}

fn token_spans(line: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < line.len() && !line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i > start {
            spans.push((start, i));
        }
    }
    spans
}

/// One text mutation: lines and whitespace-separated tokens, with a
/// dictionary of the format's words.
pub fn text(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>], dict: &[&[u8]]) {
    let mut lines = lines_of(data);
    if lines.is_empty() {
        lines.push(Vec::new());
    }
    match rng.below(9) {
        0 => {
            let i = rng.below(lines.len());
            lines.remove(i);
        }
        1 => {
            let i = rng.below(lines.len());
            let l = lines[i].clone();
            let at = rng.below(lines.len() + 1);
            lines.insert(at, l);
        }
        2 => {
            let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
            lines.swap(a, b);
        }
        3 if !pool.is_empty() => {
            let other = lines_of(rng.pick(pool).as_slice());
            if !other.is_empty() {
                let l = rng.pick(&other).clone();
                let at = rng.below(lines.len() + 1);
                lines.insert(at, l);
            }
        }
        4 | 5 if !dict.is_empty() => {
            // Replace a token with a dictionary word.
            let i = rng.below(lines.len());
            let spans = token_spans(&lines[i]);
            let word = rng.pick(dict).to_vec();
            if spans.is_empty() {
                lines[i] = word;
            } else {
                let (a, b) = *rng.pick(&spans);
                lines[i].splice(a..b, word);
            }
        }
        6 => {
            // Replace a token with a token from another line.
            let i = rng.below(lines.len());
            let j = rng.below(lines.len());
            let (si, sj) = (token_spans(&lines[i]), token_spans(&lines[j]));
            if !si.is_empty() && !sj.is_empty() {
                let (a, b) = *rng.pick(&si);
                let (c, d) = *rng.pick(&sj);
                let tok = lines[j][c..d].to_vec();
                lines[i].splice(a..b, tok);
            }
        }
        7 if !dict.is_empty() => {
            // Insert a word at a token boundary.
            let i = rng.below(lines.len());
            let spans = token_spans(&lines[i]);
            let at = if spans.is_empty() {
                0
            } else {
                rng.pick(&spans).0
            };
            let mut word = rng.pick(dict).to_vec();
            word.push(b' ');
            lines[i].splice(at..at, word);
        }
        _ => {
            let mut joined = join_lines(&lines);
            havoc(rng, &mut joined, pool, dict);
            *data = joined;
            return;
        }
    }
    *data = join_lines(&lines);
}

// ---------------------------------------------------------------------------
// XML
// ---------------------------------------------------------------------------

/// Spans `(open_start, content_start, content_end, close_end)` of simple
/// elements `<Tag>text</Tag>` and `<Tag>...</Tag>` found by a plain scan.
fn elements(xml: &[u8]) -> Vec<(usize, usize, usize, usize)> {
    let mut out = Vec::new();
    let mut stack: Vec<(Vec<u8>, usize, usize)> = Vec::new();
    let mut i = 0;
    while i < xml.len() {
        if xml[i] != b'<' {
            i += 1;
            continue;
        }
        let Some(rel) = xml[i..].iter().position(|&b| b == b'>') else {
            break;
        };
        let end = i + rel + 1;
        let inner = &xml[i + 1..end - 1];
        if let Some(name) = inner.strip_prefix(b"/") {
            if let Some(pos) = stack.iter().rposition(|(n, _, _)| n.as_slice() == name) {
                let (_, open, content) = stack[pos].clone();
                stack.truncate(pos);
                out.push((open, content, i, end));
            }
        } else if !inner.starts_with(b"?") && !inner.ends_with(b"/") && !inner.starts_with(b"!") {
            let name: Vec<u8> = inner
                .iter()
                .take_while(|b| !b.is_ascii_whitespace())
                .copied()
                .collect();
            stack.push((name, i, end));
        }
        i = end;
    }
    out
}

/// One XML mutation: element text replaced, elements duplicated, dropped
/// or renamed, entities and CDATA inserted, bytes changed.
pub fn xml(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>], values: &[&[u8]]) {
    let els = elements(data);
    match rng.below(8) {
        0 | 1 if !els.is_empty() => {
            // Replace the content of an element.
            let (_, cs, ce, _) = *rng.pick(&els);
            let v = rng.pick(values).to_vec();
            data.splice(cs..ce, v);
        }
        2 if !els.is_empty() => {
            let (os, _, _, ce) = *rng.pick(&els);
            let el = data[os..ce].to_vec();
            data.splice(ce..ce, el);
        }
        3 if !els.is_empty() => {
            let (os, _, _, ce) = *rng.pick(&els);
            data.drain(os..ce);
        }
        4 if !els.is_empty() => {
            // Move an element into another one.
            let (os, _, _, ce) = *rng.pick(&els);
            let el = data[os..ce].to_vec();
            let (_, cs2, _, _) = *rng.pick(&els);
            data.splice(cs2..cs2, el);
        }
        5 if !pool.is_empty() => {
            // Splice an element from another response.
            let other = rng.pick(pool);
            let oe = elements(other);
            if !oe.is_empty() && !els.is_empty() {
                let (os, _, _, ce) = *rng.pick(&oe);
                let (_, cs, _, _) = *rng.pick(&els);
                data.splice(cs..cs, other[os..ce].iter().copied());
            }
        }
        6 if !els.is_empty() => {
            // Rename an element's opening tag.
            let (os, cs, _, _) = *rng.pick(&els);
            let name = rng.pick(values).to_vec();
            if cs > os + 2 {
                data.splice(os + 1..cs - 1, name);
            }
        }
        _ => havoc(rng, data, pool, values),
    }
}
