use super::*;
use std::future::Future;
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn admitted(a: Admission) -> (ClientSlot, bool) {
    match a {
        Admission::Admitted { slot, evicted } => (slot, evicted),
        Admission::Refused(r) => panic!("refused: {r:?}"),
    }
}

fn refused(a: Admission) -> Refusal {
    match a {
        Admission::Admitted { .. } => panic!("admitted"),
        Admission::Refused(r) => r,
    }
}

#[test]
fn one_address_gets_its_share_and_no_more() {
    let m = Arc::new(Metrics::default());
    let t = TcpClients::new(100, 3, m.clone());
    let slots: Vec<_> = (0..3)
        .map(|_| admitted(t.admit(ip("192.0.2.1"))).0)
        .collect();
    assert_eq!(refused(t.admit(ip("192.0.2.1"))), Refusal::PerAddress);
    // The IPv4-mapped form is the same client.
    assert_eq!(
        refused(t.admit(ip("::ffff:192.0.2.1"))),
        Refusal::PerAddress
    );
    // Others are not affected.
    let _other = admitted(t.admit(ip("192.0.2.2")));
    assert_eq!(t.open(), 4);
    assert_eq!(m.limits.tcp_open.load(Ordering::Relaxed), 4);
    drop(slots);
    assert_eq!(t.open(), 1);
    let _again = admitted(t.admit(ip("192.0.2.1")));
}

#[test]
fn an_ipv6_slash_64_counts_as_one_address() {
    let t = TcpClients::new(100, 2, Arc::new(Metrics::default()));
    let _a = admitted(t.admit(ip("2001:db8:1:2::1")));
    let _b = admitted(t.admit(ip("2001:db8:1:2:ffff::9")));
    assert_eq!(
        refused(t.admit(ip("2001:db8:1:2::77"))),
        Refusal::PerAddress
    );
    let _c = admitted(t.admit(ip("2001:db8:1:3::1")));
}

#[test]
fn a_full_table_closes_the_longest_idle_connection() {
    let t = TcpClients::new(3, 3, Arc::new(Metrics::default()));
    let t0 = Instant::now();
    let (a, _) = admitted(t.admit(ip("192.0.2.1")));
    let (b, _) = admitted(t.admit(ip("192.0.2.2")));
    let (c, _) = admitted(t.admit(ip("192.0.2.3")));
    b.set_idle(t0);
    c.set_idle(t0 + Duration::from_secs(1));
    // a stays busy; b has been idle longest.
    let (d, evicted) = admitted(t.admit(ip("192.0.2.4")));
    assert!(evicted);
    // b is told to close (the permit is stored: no waiter needed).
    let waker = futures_task_noop();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = Box::pin(b.evicted());
    assert!(fut.as_mut().poll(&mut cx).is_ready());
    let mut fut_c = Box::pin(c.evicted());
    assert!(fut_c.as_mut().poll(&mut cx).is_pending());
    drop(fut);
    drop(fut_c);
    // Until b has gone it still counts as open, but not as live: one
    // more newcomer evicts c.
    assert_eq!(t.open(), 4);
    let (_e, evicted) = admitted(t.admit(ip("192.0.2.5")));
    assert!(evicted);
    // Now nobody is idle: the next one is refused.
    d.set_busy();
    assert_eq!(refused(t.admit(ip("192.0.2.6"))), Refusal::Full);
    drop(b);
    drop(c);
    assert_eq!(t.open(), 3);
    assert_eq!(refused(t.admit(ip("192.0.2.6"))), Refusal::Full);
    a.set_idle(t0 + Duration::from_secs(5));
    let (_f, evicted) = admitted(t.admit(ip("192.0.2.6")));
    assert!(evicted);
}

#[test]
fn a_busy_connection_is_never_evicted() {
    let t = TcpClients::new(1, 1, Arc::new(Metrics::default()));
    let t0 = Instant::now();
    let (a, _) = admitted(t.admit(ip("192.0.2.1")));
    a.set_idle(t0);
    a.set_busy();
    assert_eq!(refused(t.admit(ip("192.0.2.2"))), Refusal::Full);
}

/// A waker that does nothing, to poll a future once by hand.
fn futures_task_noop() -> std::task::Waker {
    std::task::Waker::noop().clone()
}
