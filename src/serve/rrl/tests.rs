//! The token bucket with a controlled clock, the shared table, the slip
//! rewrite and the network prefixes.

use super::*;

const S: u64 = TICKS_PER_SECOND;

/// Feeds `n` responses at `now` into `b`, returning the verdicts.
fn burst(b: &mut Bucket, now: u64, n: usize, limit: &Limit) -> Vec<Verdict> {
    (0..n)
        .map(|_| {
            let (next, v) = take(*b, now, limit);
            *b = next;
            v
        })
        .collect()
}

fn count(v: &[Verdict], what: Verdict) -> usize {
    v.iter().filter(|x| **x == what).count()
}

#[test]
fn a_full_bucket_sends_one_seconds_worth_then_limits() {
    let limit = Limit::new(5, 15, 2);
    let mut b = Bucket::full_at(10 * S);
    let v = burst(&mut b, 10 * S, 12, &limit);
    assert_eq!(&v[..5], &[Verdict::Send; 5]);
    // Over the limit: slip, drop, slip, drop... (BIND's order with slip 2).
    assert_eq!(
        &v[5..],
        &[
            Verdict::Slip,
            Verdict::Drop,
            Verdict::Slip,
            Verdict::Drop,
            Verdict::Slip,
            Verdict::Drop,
            Verdict::Slip
        ]
    );
    assert!(b.limiting);
}

#[test]
fn tokens_come_back_at_the_rate() {
    let limit = Limit::new(10, 15, 0);
    let mut b = Bucket::full_at(0);
    // Exactly at the limit: one response every tenth of a second, for
    // ten seconds, is always sent.
    for i in 0..100 {
        let (next, v) = take(b, i * S / 10, &limit);
        b = next;
        assert_eq!(v, Verdict::Send, "response {i}");
    }
    // Twenty a second for a second: the full bucket (10) and the tokens
    // earned in the 0.95 s the burst lasts (9, one every 0.1 s) are sent.
    let mut sent = 0;
    for i in 0..20 {
        let (next, v) = take(b, 10 * S + i * S / 20, &limit);
        b = next;
        sent += usize::from(v == Verdict::Send);
    }
    assert_eq!(sent, 19);
}

#[test]
fn debt_of_a_flood_lasts_the_window() {
    // rate 2, window 5: a flood leaves at most 5 s of debt (+1 s for the
    // bucket), then the account answers again.
    let limit = Limit::new(2, 5, 0);
    let mut b = Bucket::full_at(0);
    let v = burst(&mut b, 0, 1000, &limit);
    assert_eq!(count(&v, Verdict::Send), 2);
    // Still in debt after 5 s: a single query is dropped (and adds debt).
    let (next, v) = take(b, 5 * S, &limit);
    assert_eq!(v, Verdict::Drop);
    b = next;
    // Continuing over the limit keeps it limited: one query every 0.1 s
    // (5 a second against a rate of 2) for 20 s: nothing is sent.
    for i in 0..200 {
        let (next, v) = take(b, 5 * S + i * S / 10, &limit);
        b = next;
        assert_eq!(v, Verdict::Drop, "query {i}");
    }
    // After the window of silence the account is whole again.
    let quiet = 25 * S + 6 * S + S / 2;
    let v = burst(&mut b, quiet, 3, &limit);
    assert_eq!(v, vec![Verdict::Send, Verdict::Send, Verdict::Drop]);
}

#[test]
fn debt_is_bounded_by_the_window() {
    let limit = Limit::new(100, 15, 0);
    let mut b = Bucket::full_at(0);
    burst(&mut b, 0, 1_000_000, &limit);
    // 15 s of debt plus the bucket: 16 s ahead at most.
    let ahead = b.tat.wrapping_sub(0) & TAT_MASK;
    assert_eq!(ahead, limit.debt);
    assert!(ahead <= 16 * S, "{ahead}");
    // And after 16 s it sends again.
    let (_, v) = take(b, 16 * S, &limit);
    assert_eq!(v, Verdict::Send);
}

#[test]
fn slip_counts_follow_bind() {
    for (slip, expect) in [
        (0u32, "DDDDDD"),
        (1, "SSSSSS"),
        (2, "SDSDSD"),
        (3, "SDDSDD"),
    ] {
        let limit = Limit::new(1, 15, slip);
        let mut b = Bucket::full_at(0);
        let v = burst(&mut b, 0, 7, &limit);
        assert_eq!(v[0], Verdict::Send);
        let got: String = v[1..]
            .iter()
            .map(|v| match v {
                Verdict::Send => 'A',
                Verdict::Slip => 'S',
                Verdict::Drop => 'D',
            })
            .collect();
        assert_eq!(got, expect, "slip {slip}");
    }
}

#[test]
fn the_slip_counter_restarts_when_the_bucket_is_full_again() {
    let limit = Limit::new(1, 2, 3);
    let mut b = Bucket::full_at(0);
    let v = burst(&mut b, 0, 3, &limit);
    assert_eq!(v, vec![Verdict::Send, Verdict::Slip, Verdict::Drop]);
    // Long after: full, so the next limited response slips first again.
    let v = burst(&mut b, 100 * S, 3, &limit);
    assert_eq!(v, vec![Verdict::Send, Verdict::Slip, Verdict::Drop]);
    assert!(b.limiting);
}

#[test]
fn the_clock_may_wrap() {
    let limit = Limit::new(3, 15, 2);
    let near_wrap = TAT_MASK - S / 4;
    let mut b = Bucket::full_at(near_wrap);
    let v = burst(&mut b, near_wrap, 4, &limit);
    assert_eq!(count(&v, Verdict::Send), 3);
    // Half a second later (past the wrap) the debt is still there...
    let (next, v) = take(b, (near_wrap + S / 2) & TAT_MASK, &limit);
    assert_ne!(v, Verdict::Send);
    b = next;
    // ...and two seconds later it is paid.
    let (_, v) = take(b, (near_wrap + 3 * S) & TAT_MASK, &limit);
    assert_eq!(v, Verdict::Send);
}

#[test]
fn an_account_idle_for_longer_than_the_clock_range_is_full() {
    let limit = Limit::new(1, 15, 0);
    let mut b = Bucket::full_at(0);
    burst(&mut b, 0, 50, &limit);
    // 2^40 ticks (12 days) later plus a minute: the stored time looks far
    // in the future of the wrapped clock, beyond any debt: treated as full.
    let later = (TAT_MASK + 1 + 60 * S) & TAT_MASK;
    let (_, v) = take(b, later, &limit);
    assert_eq!(v, Verdict::Send);
}

#[test]
fn words_round_trip() {
    let b = Bucket {
        tat: TAT_MASK - 7,
        slip_count: 9,
        limiting: true,
    };
    let w = pack(FP_MASK, &b);
    assert_eq!(unpack(w), (FP_MASK, b));
    let w = pack(1, &Bucket::default());
    assert_eq!(unpack(w), (1, Bucket::default()));
    assert_ne!(w, 0, "a used slot is never 0");
}

fn net(s: &str) -> Network {
    Network::of(s.parse().unwrap(), 24, 56)
}

#[test]
fn networks_are_cut_to_the_prefix() {
    assert_eq!(net("192.0.2.1"), net("192.0.2.254"));
    assert_ne!(net("192.0.2.1"), net("192.0.3.1"));
    assert_eq!(net("192.0.2.77").to_string(), "192.0.2.0/24");
    assert_eq!(net("::ffff:192.0.2.9"), net("192.0.2.1"), "IPv4-mapped");
    assert_eq!(net("2001:db8:0:1200::1"), net("2001:db8:0:12ff:ffff::1"));
    assert_ne!(net("2001:db8:0:1200::1"), net("2001:db8:0:1300::1"));
    assert_eq!(
        net("2001:db8:0:12ab::1").to_string(),
        "2001:db8:0:1200::/56"
    );
    let all = Network::of("203.0.113.9".parse().unwrap(), 0, 0);
    assert_eq!(all, Network::of("10.1.2.3".parse().unwrap(), 0, 0));
    let host = Network::of("203.0.113.9".parse().unwrap(), 32, 128);
    assert_ne!(host, Network::of("203.0.113.8".parse().unwrap(), 32, 128));
}

#[test]
fn table_keeps_accounts_apart() {
    let t = Table::new(1024);
    let limit = Limit::new(2, 15, 0);
    let a = net("192.0.2.1");
    let b = net("198.51.100.1");
    let name = b"\x03www\x07example\x00";
    let now = 5 * S;
    let v: Vec<_> = (0..4)
        .map(|_| {
            t.count(now, &a, ResponseClass::Positive, 1, name, &limit)
                .verdict
        })
        .collect();
    assert_eq!(
        v,
        [Verdict::Send, Verdict::Send, Verdict::Drop, Verdict::Drop]
    );
    // Another network, another type, another class, another name: their
    // own accounts.
    for (n, class, qtype, name) in [
        (&b, ResponseClass::Positive, 1, &name[..]),
        (&a, ResponseClass::Positive, 28, &name[..]),
        (&a, ResponseClass::Nxdomain, 0, &name[..]),
        (
            &a,
            ResponseClass::Positive,
            1,
            &b"\x04mail\x07example\x00"[..],
        ),
    ] {
        let c = t.count(now, n, class, qtype, name, &limit);
        assert_eq!(c.verdict, Verdict::Send, "{n} {class:?} {qtype}");
    }
    // The first account is still limited.
    let c = t.count(now, &a, ResponseClass::Positive, 1, name, &limit);
    assert_eq!(c.verdict, Verdict::Drop);
}

#[test]
fn table_reports_the_start_of_limiting_once() {
    let t = Table::new(64);
    let limit = Limit::new(1, 15, 2);
    let a = net("192.0.2.1");
    let started: Vec<bool> = (0..5)
        .map(|_| t.count(0, &a, ResponseClass::Error, 0, b"", &limit).started)
        .collect();
    assert_eq!(started, [false, true, false, false, false]);
}

#[test]
fn a_full_table_evicts_the_oldest_and_says_so() {
    // One set of eight accounts.
    let t = Table::new(8);
    assert_eq!(t.capacity(), 8);
    let limit = Limit::new(1, 15, 0);
    let name = |i: u32| {
        let mut n = vec![4];
        n.extend_from_slice(format!("{i:04}").as_bytes());
        n.push(0);
        n
    };
    let a = net("192.0.2.1");
    // Eight accounts used long ago: full again, so replacing them loses
    // nothing.
    for i in 0..8 {
        t.count(0, &a, ResponseClass::Positive, 1, &name(i), &limit);
    }
    let now = 100 * S;
    for i in 8..16 {
        let c = t.count(now, &a, ResponseClass::Positive, 1, &name(i), &limit);
        assert!(!c.evicted, "account {i} replaced an idle one");
    }
    // Now all eight are in use: a ninth evicts one in use.
    let c = t.count(now, &a, ResponseClass::Positive, 1, &name(99), &limit);
    assert!(c.evicted);
    assert_eq!(c.verdict, Verdict::Send);
}

#[test]
fn workers_share_the_table() {
    // Four threads each send 1000 responses of one account at one instant:
    // exactly the rate gets through, whatever the interleaving.
    let t = std::sync::Arc::new(Table::new(1024));
    let limit = Limit::new(50, 15, 0);
    let a = net("192.0.2.1");
    let sent: usize = (0..4)
        .map(|_| {
            let t = t.clone();
            std::thread::spawn(move || {
                (0..1000)
                    .filter(|_| {
                        t.count(
                            S,
                            &a,
                            ResponseClass::Nxdomain,
                            0,
                            b"\x07example\x00",
                            &limit,
                        )
                        .verdict
                            == Verdict::Send
                    })
                    .count()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(sent, 50);
}

fn response(edns: bool) -> Vec<u8> {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    let mut m = Message::new(7, MessageType::Response, OpCode::Query);
    m.metadata.authoritative = true;
    m.metadata.response_code = hickory_proto::op::ResponseCode::NXDomain;
    m.add_query(Query::query(
        Name::from_ascii("x.example.").unwrap(),
        RecordType::A,
    ));
    m.add_answer(Record::from_rdata(
        Name::from_ascii("x.example.").unwrap(),
        60,
        RData::A("192.0.2.1".parse().unwrap()),
    ));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.set_dnssec_ok(true);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

#[test]
fn a_slipped_answer_is_header_question_and_opt_with_tc() {
    for edns in [false, true] {
        let mut out = response(edns);
        slip(&mut out, if edns { 11 } else { 0 });
        let m = hickory_proto::op::Message::from_vec(&out).unwrap();
        assert!(m.metadata.truncation, "TC");
        assert!(m.metadata.authoritative, "AA kept");
        assert_eq!(
            m.metadata.response_code,
            hickory_proto::op::ResponseCode::NXDomain,
            "rcode kept"
        );
        assert_eq!(m.queries.len(), 1);
        assert!(m.answers.is_empty());
        assert_eq!(m.edns.is_some(), edns);
        if edns {
            assert!(m.edns.as_ref().unwrap().flags().dnssec_ok);
        }
    }
}

#[test]
fn exempt_clients_and_unlimited_classes_are_not_counted() {
    let mut config = RrlConfig::with_rate(1);
    config.exempt = vec!["192.0.2.0/24".parse().unwrap()];
    config.errors_per_second = 0;
    let rrl = Rrl::new(&config);
    let mut counters = RrlCounters::default();
    let mut account = Account::default();
    account.set(ResponseClass::Nxdomain, b"\x07example\x00");
    let mut out = response(false);
    for _ in 0..10 {
        let a = rrl.apply(
            0,
            "192.0.2.9".parse().unwrap(),
            &account,
            &mut out,
            &mut counters,
            &LogLimiter::default(),
        );
        assert_eq!(a, Action::Send);
    }
    let mut err = Account::default();
    err.error();
    for _ in 0..10 {
        let a = rrl.apply(
            0,
            "203.0.113.1".parse().unwrap(),
            &err,
            &mut out,
            &mut counters,
            &LogLimiter::default(),
        );
        assert_eq!(a, Action::Send);
    }
    assert!(counters.is_empty());
    // Not exempt: limited, counted by class; errors are never slipped.
    let from: IpAddr = "203.0.113.1".parse().unwrap();
    let actions: Vec<_> = (0..4)
        .map(|_| {
            rrl.apply(
                0,
                from,
                &account,
                &mut response(false),
                &mut counters,
                &LogLimiter::default(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            Action::Send,
            Action::Slipped,
            Action::Dropped,
            Action::Slipped
        ]
    );
    assert_eq!(counters.slipped[ResponseClass::Nxdomain as usize], 2);
    assert_eq!(counters.dropped[ResponseClass::Nxdomain as usize], 1);
}

#[test]
fn errors_are_dropped_not_slipped_and_log_only_sends_everything() {
    let config = RrlConfig::with_rate(1);
    let rrl = Rrl::new(&config);
    let mut counters = RrlCounters::default();
    let mut err = Account::default();
    err.error();
    let from: IpAddr = "203.0.113.1".parse().unwrap();
    let actions: Vec<_> = (0..3)
        .map(|_| {
            rrl.apply(
                0,
                from,
                &err,
                &mut response(false),
                &mut counters,
                &LogLimiter::default(),
            )
        })
        .collect();
    assert_eq!(actions, [Action::Send, Action::Dropped, Action::Dropped]);

    let config = RrlConfig {
        log_only: true,
        ..RrlConfig::with_rate(1)
    };
    let rrl = Rrl::new(&config);
    let mut counters = RrlCounters::default();
    let mut account = Account::default();
    account.set(ResponseClass::Nxdomain, b"\x07example\x00");
    let original = response(false);
    for i in 0..5 {
        let mut out = original.clone();
        let a = rrl.apply(
            0,
            from,
            &account,
            &mut out,
            &mut counters,
            &LogLimiter::default(),
        );
        assert_eq!(
            a,
            if i == 0 {
                Action::Send
            } else {
                Action::LogOnly
            }
        );
        assert_eq!(out, original, "log_only leaves the answer alone");
    }
    assert_eq!(counters.log_only[ResponseClass::Nxdomain as usize], 4);
}
