//! A query loop on one zone while something else happens to the server
//! (a zone removed, a reload): every answer counted, and the longest wait
//! for one.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a [`QueryLoop`] saw.
#[derive(Clone, Copy, Debug)]
pub struct LoopResult {
    /// Answers with RCODE NOERROR.
    pub ok: u64,
    /// Queries with another RCODE or no answer within 2 s.
    pub bad: u64,
    /// The longest wait for an answer.
    pub gap: Duration,
}

/// Queries `www.<zone>` A at 127.0.0.1:`port` over UDP, one after the
/// other from one socket, on a thread of its own until
/// [`QueryLoop::finish`] (or 60 s).
pub struct QueryLoop {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<LoopResult>,
}

impl QueryLoop {
    /// Starts the loop.
    pub fn start(port: u16, zone: &str) -> QueryLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let name = format!("www.{zone}");
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
                sock.set_read_timeout(Some(Duration::from_secs(2)))
                    .expect("timeout");
                let mut seen = LoopResult {
                    ok: 0,
                    bad: 0,
                    gap: Duration::ZERO,
                };
                let mut id = 0u16;
                let mut buf = [0u8; 512];
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    id = id.wrapping_add(1);
                    let sent = Instant::now();
                    let q = super::net::query(id, &name, 1);
                    let answered = sock.send_to(&q, ("127.0.0.1", port)).is_ok()
                        && loop {
                            match sock.recv_from(&mut buf) {
                                Ok((n, _)) if n >= 4 && buf[..2] == id.to_be_bytes() => {
                                    break super::net::rcode(&buf[..n]) == Some(0);
                                }
                                Ok(_) => continue,
                                Err(_) => break false,
                            }
                        };
                    if answered {
                        seen.ok += 1;
                    } else {
                        seen.bad += 1;
                    }
                    seen.gap = seen.gap.max(sent.elapsed());
                }
                seen
            })
        };
        QueryLoop { stop, thread }
    }

    /// Stops the loop and says what it saw.
    pub fn finish(self) -> LoopResult {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("query loop")
    }
}

/// `secondary53_retired_versions_freed_total` by the reaper and by the
/// caller, at one moment.
#[derive(Clone, Copy, Debug)]
pub struct Freed {
    /// Versions freed on the reaper.
    pub reaper: f64,
    /// Versions freed by the thread that dropped them.
    pub caller: f64,
}

impl Freed {
    /// The counts at the metrics endpoint on `port` now.
    pub fn now(port: u16) -> Freed {
        let by = |by| super::net::retired_versions_freed(port, by).expect("metrics");
        Freed {
            reaper: by("reaper"),
            caller: by("caller"),
        }
    }
}

/// After a large zone was removed while `looper` queried another: waits
/// until the reaper freed a version more than `before` (metrics on
/// `metrics`), lets the loop run 200 ms more, stops it, prints what it
/// saw, and checks that every query was answered, that no version was
/// freed by the thread that dropped it, and that no answer took a second
/// (generous: freeing the version on a query worker, tens of
/// milliseconds, would pass too on a loaded machine; a worker that
/// stopped answering would not).
pub fn assert_freed_by_the_reaper_while_answering(metrics: u16, before: Freed, looper: QueryLoop) {
    super::wait_until(
        "the removed zone's version is freed by the reaper",
        Duration::from_secs(10),
        || super::net::retired_versions_freed(metrics, "reaper").is_some_and(|n| n > before.reaper),
    );
    std::thread::sleep(Duration::from_millis(200));
    let LoopResult { ok, bad, gap } = looper.finish();
    println!("{ok} answers during the removal, {bad} missing; the longest took {gap:?}");
    assert!(ok > 50, "the query loop ran ({ok} answers)");
    assert_eq!(bad, 0, "{bad} failed answers for the zone that stayed");
    assert_eq!(
        Freed::now(metrics).caller,
        before.caller,
        "no version was freed by the thread that dropped it"
    );
    assert!(gap < Duration::from_secs(1), "longest answer {gap:?}");
}
