//! Response rate limiting (RRL) of UDP answers, as BIND (`rate-limit`),
//! Knot (`mod-rrl`) and NSD (`rrl-*`) do it, against reflection and
//! amplification attacks that forge the victim's address as the source of
//! their queries.
//!
//! Every UDP response is counted in an **account**: the client's network
//! (IPv4 /24 and IPv6 /56 by default), the [`ResponseClass`] of the response
//! and a name, chosen so that an attacker cannot spread the load over many
//! accounts by varying the query name where the answers do not differ:
//!
//! | class | name of the account |
//! |---|---|
//! | positive | query name and type |
//! | wildcard | the wildcard (`*.example.com`), whatever name matched it |
//! | NXDOMAIN, NODATA | the zone apex |
//! | referral | the zone cut |
//! | error | none (the network alone) |
//!
//! An account is a token bucket: it earns the class's rate of responses a
//! second and holds at most one second's worth. Every response takes a
//! token, also one that is not sent, so a client over the limit runs into
//! debt, down to `window` seconds' worth (BIND's rule): it gets answers
//! again only once it has stayed under the limit long enough to pay the
//! debt back. A response without a token is dropped, except that the first
//! of every `slip` is sent truncated (TC, header and question only), so a
//! real client behind the forged address can still get its answer over
//! TCP. Errors are never slipped. TCP is never limited.
//!
//! The table is built for the query path of several worker threads: a fixed
//! array of 64-byte sets of eight accounts, one `AtomicU64` each, updated
//! with compare-and-swap: no lock, no allocation per packet. The bucket is
//! kept in its virtual-time form (GCRA: the time at which the bucket would
//! be full again, in 2^-20 s ticks), so an account is one word:
//!
//! ```text
//! bits 0..40   the bucket's theoretical arrival time (wraps every 12 days)
//! bits 40..44  slip counter
//! bit  44      limiting (for the log line when an account starts limiting)
//! bits 45..64  fingerprint of the account key (never 0: 0 is a free slot)
//! ```
//!
//! A new account takes a free slot of its set, else the one idle longest; a
//! slot whose bucket is full again holds nothing worth keeping. Taking one
//! that still holds tokens in use is counted
//! (`secondary53_rrl_evictions_total`): the table is too small for the
//! traffic. Two keys of one set with the same 19-bit fingerprint (one pair
//! in about 500,000) share an account, as two names with the same hash do
//! in BIND's table.
//!
//! Limitations: no `all-per-second` and no `qps-scale` (BIND); NOTIFY
//! responses and TSIG-signed queries are not limited, nor are answers to a
//! client that sent a valid server cookie (RFC 7873).

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tracing::{info, warn};

use crate::config::RrlConfig;
use crate::log_limit::{LogEvent, LogLimiter};
use crate::zone::wire;

/// Clock ticks per second.
const TICKS_PER_SECOND: u64 = 1 << 20;

const TAT_BITS: u32 = 40;
const TAT_MASK: u64 = (1 << TAT_BITS) - 1;
const SLIP_SHIFT: u32 = 40;
const SLIP_MASK: u64 = 0xf;
const LIMITING_BIT: u64 = 1 << 44;
const FP_SHIFT: u32 = 45;
const FP_MASK: u64 = (1 << (64 - FP_SHIFT)) - 1;
/// Accounts per set: one cache line.
const WAYS: usize = 8;

pub use crate::metrics::{ResponseClass, RrlCounters};

/// What the answer path records about the response it wrote, for the rate
/// limiter: the class and the name the response is accounted to. Written
/// for every UDP answer while rate limiting is on, so only the name's bytes
/// are copied.
#[derive(Clone, Debug)]
pub struct Account {
    /// The class; `None` when the response is not rate-limited (nothing
    /// written, NOTIFY, a TSIG-signed answer).
    pub class: Option<ResponseClass>,
    /// QTYPE, part of the key of positive answers only.
    pub qtype: u16,
    /// The response ends with an OPT record (to keep in a slipped answer).
    pub edns: bool,
    /// Length of that OPT record, options included (0 without EDNS).
    pub opt_len: u16,
    name: [u8; wire::MAX_NAME],
    name_len: u8,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            class: None,
            qtype: 0,
            edns: false,
            opt_len: 0,
            name: [0; wire::MAX_NAME],
            name_len: 0,
        }
    }
}

impl Account {
    /// Records the class and name (lowercase wire) of the response being
    /// written.
    pub fn set(&mut self, class: ResponseClass, name: &[u8]) {
        let n = name.len().min(wire::MAX_NAME);
        self.class = Some(class);
        self.name[..n].copy_from_slice(&name[..n]);
        self.name_len = n as u8;
    }

    /// An error response: the network alone is the account.
    pub fn error(&mut self) {
        self.class = Some(ResponseClass::Error);
        self.name_len = 0;
    }

    /// The name of the account (lowercase wire; empty for errors).
    pub fn name(&self) -> &[u8] {
        &self.name[..usize::from(self.name_len)]
    }
}

/// What the bucket says about one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Within the limit: send it.
    Send,
    /// Over the limit: send it truncated.
    Slip,
    /// Over the limit: drop it.
    Drop,
}

/// One account's bucket, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Bucket {
    /// When the bucket is full again (ticks, wrapping at 2^40).
    tat: u64,
    /// Limited responses since the last slip.
    slip_count: u8,
    /// The account is limiting (set by its first limited response, cleared
    /// when the bucket is full again).
    limiting: bool,
}

/// The limits of one class, in ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Limit {
    /// Ticks per token (the emission interval; 0: no limit).
    interval: u64,
    /// How far ahead of now the bucket may be and still send: one second's
    /// worth of tokens, less one.
    burst: u64,
    /// How far ahead the debt may reach: one second plus `window` seconds'
    /// worth of tokens.
    debt: u64,
    /// Slip ratio (0: drop every limited response).
    slip: u8,
}

impl Limit {
    /// The limits for `rate` responses a second, `window` seconds of debt.
    fn new(rate: u32, window: u32, slip: u32) -> Limit {
        if rate == 0 {
            return Limit {
                interval: 0,
                burst: 0,
                debt: 0,
                slip: 0,
            };
        }
        let interval = TICKS_PER_SECOND / u64::from(rate);
        Limit {
            interval,
            burst: interval * u64::from(rate - 1),
            debt: interval * u64::from(rate) * (u64::from(window) + 1),
            slip: slip.min(u32::from(u8::MAX)) as u8,
        }
    }
}

/// Takes one token from `b` at time `now` (ticks): the pure token-bucket
/// step, in virtual-time form. `b.tat` is the time the bucket is full again:
/// at or before `now` it is full; each response moves it one interval on;
/// a response is sent while it is at most `burst` ahead of now; it never
/// goes more than `debt` ahead. Slips follow BIND: the first limited
/// response of every `slip` is slipped.
fn take(b: Bucket, now: u64, limit: &Limit) -> (Bucket, Verdict) {
    let now = now & TAT_MASK;
    let d = b.tat.wrapping_sub(now) & TAT_MASK;
    // Ahead of now by at most the debt: in use. Anything else is in the
    // past (full), or so old that the clock wrapped since (full too).
    let ahead = if d <= limit.debt { d } else { 0 };
    let mut slip_count = b.slip_count;
    let mut limiting = b.limiting;
    if ahead == 0 {
        slip_count = 0;
        limiting = false;
    }
    let next = (ahead + limit.interval).min(limit.debt);
    let tat = (now + next) & TAT_MASK;
    if ahead <= limit.burst {
        return (
            Bucket {
                tat,
                slip_count,
                limiting,
            },
            Verdict::Send,
        );
    }
    limiting = true;
    let verdict = if limit.slip == 0 {
        Verdict::Drop
    } else {
        let v = if slip_count == 0 {
            Verdict::Slip
        } else {
            Verdict::Drop
        };
        slip_count += 1;
        if slip_count >= limit.slip {
            slip_count = 0;
        }
        v
    };
    (
        Bucket {
            tat,
            slip_count,
            limiting,
        },
        verdict,
    )
}

fn pack(fp: u64, b: &Bucket) -> u64 {
    (fp << FP_SHIFT)
        | (b.tat & TAT_MASK)
        | ((u64::from(b.slip_count) & SLIP_MASK) << SLIP_SHIFT)
        | if b.limiting { LIMITING_BIT } else { 0 }
}

fn unpack(w: u64) -> (u64, Bucket) {
    (
        w >> FP_SHIFT,
        Bucket {
            tat: w & TAT_MASK,
            slip_count: ((w >> SLIP_SHIFT) & SLIP_MASK) as u8,
            limiting: w & LIMITING_BIT != 0,
        },
    )
}

/// Eight accounts in one cache line.
#[repr(C, align(64))]
#[derive(Default)]
struct Set([AtomicU64; WAYS]);

/// The result of counting one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counted {
    /// What the bucket says.
    verdict: Verdict,
    /// This response made the account start limiting.
    started: bool,
    /// An account still in use was evicted to make room for this one.
    evicted: bool,
}

/// The accounts: a fixed table shared by all UDP workers.
struct Table {
    sets: Box<[Set]>,
    mask: usize,
    hasher: foldhash::quality::RandomState,
}

impl Table {
    /// A table of at least `accounts` accounts (rounded up to a power of
    /// two, at least one set).
    fn new(accounts: usize) -> Table {
        let sets = accounts.div_ceil(WAYS).next_power_of_two().max(1);
        Table {
            sets: (0..sets).map(|_| Set::default()).collect(),
            mask: sets - 1,
            hasher: foldhash::quality::RandomState::default(),
        }
    }

    /// Number of accounts the table holds.
    fn capacity(&self) -> usize {
        self.sets.len() * WAYS
    }

    /// The key's hash: the network, the class, the type and the name.
    /// Keyed (a random seed per table), so clients cannot choose names that
    /// fall into one set. foldhash rather than std's SipHash: this runs for
    /// every UDP answer, and foldhash is several times cheaper for keys of
    /// this size while still seeded at random.
    fn hash(&self, net: &Network, class: ResponseClass, qtype: u16, name: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(&net.bytes[..usize::from(net.len)]);
        h.write_u8(net.family);
        h.write_u8(class as u8);
        h.write_u16(qtype);
        h.write(name);
        h.finish()
    }

    /// Counts one response of the account (`net`, `class`, `qtype`, `name`)
    /// at `now` (ticks).
    fn count(
        &self,
        now: u64,
        net: &Network,
        class: ResponseClass,
        qtype: u16,
        name: &[u8],
        limit: &Limit,
    ) -> Counted {
        let h = self.hash(net, class, qtype, name);
        let set = &self.sets[(h as usize) & self.mask];
        let fp = ((h >> FP_SHIFT) & FP_MASK).max(1);
        let now = now & TAT_MASK;
        // Until the account's word is swapped: each failed swap means
        // another worker counted a response of this set meanwhile, so the
        // workers as a whole always progress. Letting a response through
        // after a few lost races would let the most contended account,
        // the one under attack, go over its limit by a response per worker
        // and race lost.
        loop {
            let words: [u64; WAYS] = std::array::from_fn(|i| set.0[i].load(Ordering::Relaxed));
            let (slot, current, evicted) = match words.iter().position(|w| unpack(*w).0 == fp) {
                Some(i) => (i, unpack(words[i]).1, false),
                None => {
                    let (i, in_use) = victim(&words, now);
                    (i, Bucket::full_at(now), in_use)
                }
            };
            let old = words[slot];
            let (next, verdict) = take(current, now, limit);
            let new = pack(fp, &next);
            if set.0[slot]
                .compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                return Counted {
                    verdict,
                    started: next.limiting && !current.limiting,
                    evicted,
                };
            }
            std::hint::spin_loop();
        }
    }
}

impl Bucket {
    /// A full bucket.
    fn full_at(now: u64) -> Bucket {
        Bucket {
            tat: now,
            slip_count: 0,
            limiting: false,
        }
    }
}

/// The slot a new account takes: a free one, else the one whose bucket has
/// been full the longest, else (all in use) the one nearest to full.
/// Returns the slot and whether it held an account still in use.
fn victim(words: &[u64; WAYS], now: u64) -> (usize, bool) {
    let mut best = 0;
    let mut best_score = i64::MIN;
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            return (i, false);
        }
        let tat = w & TAT_MASK;
        // How long ago the bucket became full (positive), or how far ahead
        // it still is (negative). Within half the clock's range.
        let d = now.wrapping_sub(tat) & TAT_MASK;
        let score = if d < (1 << (TAT_BITS - 1)) {
            d as i64
        } else {
            -(((1u64 << TAT_BITS) - d) as i64)
        };
        if score > best_score {
            best_score = score;
            best = i;
        }
    }
    (best, best_score < 0)
}

/// A client's network: its address cut to the configured prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Network {
    bytes: [u8; 16],
    len: u8,
    family: u8,
    prefix: u8,
}

impl Network {
    /// `ip` cut to `v4` bits (IPv4, also IPv4-mapped IPv6) or `v6` bits.
    fn of(ip: IpAddr, v4: u8, v6: u8) -> Network {
        let ip = match ip {
            IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            a => a,
        };
        let mut bytes = [0u8; 16];
        match ip {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(v4)).unwrap_or(0);
                bytes[..4].copy_from_slice(&(u32::from(a) & mask).to_be_bytes());
                Network {
                    bytes,
                    len: 4,
                    family: 4,
                    prefix: v4,
                }
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(v6)).unwrap_or(0);
                bytes.copy_from_slice(&(u128::from(a) & mask).to_be_bytes());
                Network {
                    bytes,
                    len: 16,
                    family: 6,
                    prefix: v6,
                }
            }
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.family == 4 {
            let a =
                std::net::Ipv4Addr::new(self.bytes[0], self.bytes[1], self.bytes[2], self.bytes[3]);
            write!(f, "{a}/{}", self.prefix)
        } else {
            write!(
                f,
                "{}/{}",
                std::net::Ipv6Addr::from(self.bytes),
                self.prefix
            )
        }
    }
}

/// What happened to a response (for the worker's counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Sent as written (within the limit, exempt, or not limited at all).
    Send,
    /// Sent truncated.
    Slipped,
    /// Not sent.
    Dropped,
    /// Over the limit, but sent because of `log_only`.
    LogOnly,
}

/// The rate limiter of a server: the settings, the table and the clock.
pub struct Rrl {
    limits: [Limit; 6],
    v4: u8,
    v6: u8,
    exempt: Vec<crate::config::IpPrefix>,
    log_only: bool,
    table: Table,
    epoch: Instant,
}

impl Rrl {
    /// A limiter with `config`'s settings.
    pub fn new(config: &RrlConfig) -> Rrl {
        let l = |rate| Limit::new(rate, config.window, config.slip);
        let mut limits = [
            l(config.responses_per_second),
            l(config.responses_per_second),
            l(config.nodata_per_second),
            l(config.nxdomains_per_second),
            l(config.referrals_per_second),
            l(config.errors_per_second),
        ];
        // Errors are never slipped (BIND: some cannot be; a truncated error
        // tells a client nothing).
        limits[ResponseClass::Error as usize].slip = 0;
        Rrl {
            limits,
            v4: config.ipv4_prefix_length,
            v6: config.ipv6_prefix_length,
            exempt: config.exempt.clone(),
            log_only: config.log_only,
            table: Table::new(config.table_size),
            epoch: Instant::now(),
        }
    }

    /// The clock, in ticks since the limiter was made (read once per batch).
    pub fn now(&self) -> u64 {
        let e = self.epoch.elapsed();
        e.as_secs() * TICKS_PER_SECOND
            + u64::from(e.subsec_nanos()) * TICKS_PER_SECOND / 1_000_000_000
    }

    /// Number of accounts the table holds.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Counts the response in `out` (described by `account`) to `from` at
    /// `now`, and drops it, truncates it, or leaves it. Returns what was
    /// done; with [`Action::Dropped`] nothing is to be sent. Log lines go
    /// through `log` (an attacker chooses how many accounts start limiting).
    pub fn apply(
        &self,
        now: u64,
        from: IpAddr,
        account: &Account,
        out: &mut Vec<u8>,
        counters: &mut RrlCounters,
        log: &LogLimiter,
    ) -> Action {
        let Some(class) = account.class else {
            return Action::Send;
        };
        let limit = &self.limits[class as usize];
        if limit.interval == 0 {
            return Action::Send;
        }
        if !self.exempt.is_empty() && self.exempt.iter().any(|p| p.contains(from)) {
            return Action::Send;
        }
        let net = Network::of(from, self.v4, self.v6);
        let qtype = if class == ResponseClass::Positive {
            account.qtype
        } else {
            0
        };
        let c = self
            .table
            .count(now, &net, class, qtype, account.name(), limit);
        if c.evicted {
            counters.evictions += 1;
            if log.allow(LogEvent::RrlTableFull) {
                warn!(
                    accounts = self.capacity(),
                    "response rate limit table full: accounts in use evicted; raise [server] rrl table_size"
                );
            }
        }
        if c.started && log.allow(LogEvent::RrlLimiting) {
            self.log_start(&net, class, account);
        }
        let i = class as usize;
        match (c.verdict, self.log_only) {
            (Verdict::Send, _) => Action::Send,
            (_, true) => {
                counters.log_only[i] += 1;
                Action::LogOnly
            }
            (Verdict::Slip, false) => {
                counters.slipped[i] += 1;
                slip(out, usize::from(account.opt_len));
                Action::Slipped
            }
            (Verdict::Drop, false) => {
                counters.dropped[i] += 1;
                Action::Dropped
            }
        }
    }

    /// The line saying an account started limiting.
    fn log_start(&self, net: &Network, class: ResponseClass, account: &Account) {
        let name = if account.name_len == 0 {
            String::new()
        } else {
            wire::to_presentation(account.name())
        };
        let what = if self.log_only {
            "response rate limit would apply (log_only)"
        } else {
            "response rate limit applies"
        };
        if class == ResponseClass::Positive {
            info!(network = %net, class = class.as_str(), name = %name, qtype = account.qtype, "{what}");
        } else {
            info!(network = %net, class = class.as_str(), name = %name, "{what}");
        }
    }
}

/// Rewrites the response in `out` as a truncated one (TC set; header and
/// question, and the OPT record of `opt_len` bytes, options included
/// (a cookie lets the client come back with a valid one), which the
/// answer path writes last; rcode and AA kept, as BIND and NSD do).
pub fn slip(out: &mut Vec<u8>, opt_len: usize) {
    let Some(question_end) = question_end(out) else {
        return;
    };
    let keep_opt = opt_len >= 11 && out.len() >= question_end + opt_len && {
        let opt = &out[out.len() - opt_len..];
        opt[0] == 0 && opt[1..3] == crate::zone::rtype::OPT.to_be_bytes()
    };
    out[2] |= 0x02;
    out[6..12].fill(0);
    if keep_opt {
        let from = out.len() - opt_len;
        out.copy_within(from.., question_end);
        out.truncate(question_end + opt_len);
        out[10..12].copy_from_slice(&1u16.to_be_bytes());
    } else {
        out.truncate(question_end);
    }
}

/// Where the (single, uncompressed) question of a message ends.
fn question_end(msg: &[u8]) -> Option<usize> {
    if msg.len() < 12 || msg[4..6] != [0, 1] {
        return None;
    }
    let mut at = 12;
    loop {
        let l = usize::from(*msg.get(at)?);
        if l & 0xC0 != 0 {
            return None;
        }
        at += 1 + l;
        if l == 0 {
            break;
        }
    }
    (msg.len() >= at + 4).then_some(at + 4)
}

#[cfg(test)]
mod tests;
