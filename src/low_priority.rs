//! Bulk work on threads of lower OS priority.
//!
//! A full transfer of a large zone keeps a CPU busy for seconds: reading
//! and checking its messages, and diffing its records against the served
//! version. On a small machine that work competes for the CPU with what
//! must stay prompt whatever else runs: answering queries, the refresh and
//! commit of every other zone, `zone status`, `/metrics` and transfers
//! out. Run on the runtime's workers or its blocking pool at the same
//! priority, it takes its full share of the CPU, and each of those short
//! tasks waits for a time slice behind it.
//!
//! The bulk work therefore runs on threads of its own whose OS priority is
//! lowered, as `[server] bulk_priority` says ([`BulkPriority`], set for
//! the process with [`set_bulk_priority`]): by default to nice
//! [`BULK_NICE`]; or to Linux's `SCHED_IDLE` class, which runs a thread
//! only when no thread of normal priority wants the CPU (any thread may
//! put itself there); or not at all. The scheduler then hands the CPU to a
//! waking thread of normal priority at once, and the bulk work gets what
//! is left, which on an idle machine is everything: the large transfer is
//! not slower there. Under a load that keeps every CPU busy, bulk work of
//! `SCHED_IDLE` still runs, at a small share of a CPU (the scheduler's
//! minimum weight), so a transfer still completes, later; but a bulk
//! thread that is preempted while it holds something a thread of normal
//! priority waits for (an allocator's arena, say) holds it that much
//! longer, which is why `SCHED_IDLE` is not the default (measured with
//! `bench/isolation.sh`: no better median, worse worst cases of `zone
//! status` and `/metrics` on a loaded machine). Elsewhere (no per-thread
//! priorities) the work runs on a thread of normal priority, as before.
//!
//! Knot runs its transfers on a pool of background workers for the same
//! reason; BIND leaves it to its task manager's quantum.
//!
//! The free of a large zone version retired (a zone removed, a version
//! replaced) runs on such a thread too: [`reaper`].

pub mod reaper;

use std::future::Future;

use std::sync::atomic::{AtomicU8, Ordering};

use serde::Deserialize;
use tokio::sync::oneshot;

/// The nice value of a bulk thread with [`BulkPriority::Low`] (0 is
/// normal, 19 the lowest priority). At 10 a busy bulk thread gets about a
/// tenth of a CPU against one busy thread of normal priority, and all of
/// it when nothing else runs.
pub const BULK_NICE: i32 = 10;

/// `[server] bulk_priority`: the OS priority of the threads that do a
/// large transfer's bulk work (reading its messages, diffing it, indexing
/// a first version, verifying its ZONEMD).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkPriority {
    /// Linux's `SCHED_IDLE` class: the CPU only when no thread of normal
    /// priority wants it (a minimal share when every CPU stays busy).
    /// Elsewhere as [`BulkPriority::Low`].
    Idle,
    /// Nice [`BULK_NICE`]. The default.
    #[default]
    Low,
    /// The process's own priority: bulk work competes with serving.
    Normal,
}

impl BulkPriority {
    fn to_u8(self) -> u8 {
        match self {
            BulkPriority::Low => 0,
            BulkPriority::Idle => 1,
            BulkPriority::Normal => 2,
        }
    }

    fn from_u8(v: u8) -> BulkPriority {
        match v {
            1 => BulkPriority::Idle,
            2 => BulkPriority::Normal,
            _ => BulkPriority::Low,
        }
    }
}

/// The priority of bulk threads started from now on, for the whole
/// process (a thread's priority is the OS's, not a server's).
static PRIORITY: AtomicU8 = AtomicU8::new(0);

/// Sets the priority of the bulk threads started from now on (threads
/// already running keep theirs).
pub fn set_bulk_priority(p: BulkPriority) {
    PRIORITY.store(p.to_u8(), Ordering::Relaxed);
}

/// The priority bulk threads are started with.
pub fn bulk_priority() -> BulkPriority {
    BulkPriority::from_u8(PRIORITY.load(Ordering::Relaxed))
}

/// The scheduling of a thread, as [`lower_this_thread`] left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lowered {
    /// In the `SCHED_IDLE` class.
    Idle,
    /// Of normal class at this nice value.
    Nice(i32),
}

/// The bulk thread ended without a result: it could not be started, or
/// the work panicked.
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    /// The thread could not be started.
    #[error("cannot start the thread {name:?} for bulk work: {source}")]
    Spawn {
        /// The thread's name.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The work panicked or its runtime could not be built.
    #[error("the bulk work on thread {name:?} ended without a result{reason}")]
    Lost {
        /// The thread's name.
        name: String,
        /// What is known of why (empty, or ": " and the reason).
        reason: String,
    },
}

/// Lowers the calling thread's OS priority as [`bulk_priority`] says
/// (never raises it). Returns how the thread is scheduled afterwards, None
/// when that cannot be read or set here.
pub fn lower_this_thread() -> Option<Lowered> {
    lower_this_thread_to(bulk_priority())
}

/// Lowers the calling thread's OS priority to `p` (never raises it).
#[allow(unused_variables)]
fn lower_this_thread_to(p: BulkPriority) -> Option<Lowered> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no arguments and cannot fail.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::pid_t;
        // SAFETY: these calls only read or set the scheduling class or
        // priority of this thread; the only memory involved is `param`,
        // a local the call reads.
        unsafe {
            if libc::sched_getscheduler(tid) == libc::SCHED_IDLE {
                return Some(Lowered::Idle);
            }
            if p == BulkPriority::Idle {
                let param = libc::sched_param { sched_priority: 0 };
                if libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param) == 0 {
                    return Some(Lowered::Idle);
                }
                // Refused (a seccomp filter, say): nice instead.
            }
            // getpriority may return -1 as a value: errno tells an error.
            *libc::__errno_location() = 0;
            let now = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
            if now == -1 && *libc::__errno_location() != 0 {
                return None;
            }
            if p == BulkPriority::Normal || now >= BULK_NICE {
                return Some(Lowered::Nice(now));
            }
            if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, BULK_NICE) != 0 {
                return Some(Lowered::Nice(now));
            }
            Some(Lowered::Nice(libc::getpriority(
                libc::PRIO_PROCESS,
                tid as libc::id_t,
            )))
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Starts `f` on a new thread named `name` of lower priority, at once;
/// the future resolves to its result. The thread ends with `f`.
pub fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> impl Future<Output = Result<T, BulkError>> + Send + 'static {
    let (tx, rx) = oneshot::channel();
    let name = name.to_string();
    let priority = bulk_priority();
    let started = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            lower_this_thread_to(priority);
            let _ = tx.send(f());
        });
    async move {
        started.map_err(|source| BulkError::Spawn {
            name: name.clone(),
            source,
        })?;
        rx.await.map_err(|_| BulkError::Lost {
            name,
            reason: ": it panicked".into(),
        })
    }
}

/// Starts the future `fut` on a new thread named `name` of lower priority,
/// at once, on a single-threaded runtime of its own (its sockets and
/// timers included); the returned future resolves to its output. When the
/// caller stops waiting (drops the returned future), `fut` is dropped too
/// and the thread ends.
pub fn spawn_async<F>(
    name: &str,
    fut: F,
) -> impl Future<Output = Result<F::Output, BulkError>> + Send + 'static
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (mut tx, rx) = oneshot::channel();
    let name = name.to_string();
    let thread = name.clone();
    let priority = bulk_priority();
    let started = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            lower_this_thread_to(priority);
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(thread, error = %e, "cannot build the runtime of a bulk thread");
                    return;
                }
            };
            runtime.block_on(async move {
                tokio::select! {
                    out = fut => { let _ = tx.send(out); }
                    () = tx.closed() => {}
                }
            });
        });
    async move {
        started.map_err(|source| BulkError::Spawn {
            name: name.clone(),
            source,
        })?;
        rx.await.map_err(|_| BulkError::Lost {
            name,
            reason: String::new(),
        })
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn nice_of_this_thread() -> i32 {
        // SAFETY: as in lower_this_thread.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::getpriority(libc::PRIO_PROCESS, tid)
        }
    }

    fn idle_this_thread() -> bool {
        // SAFETY: as in lower_this_thread.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
            libc::sched_getscheduler(tid) == libc::SCHED_IDLE
        }
    }

    /// (SCHED_IDLE, nice) of a new thread lowered to `p`.
    fn lowered_to(p: BulkPriority) -> (Option<Lowered>, bool, i32) {
        std::thread::spawn(move || {
            let got = lower_this_thread_to(p);
            (got, idle_this_thread(), nice_of_this_thread())
        })
        .join()
        .unwrap()
    }

    #[test]
    fn each_setting_lowers_a_thread_as_it_says() {
        let before = nice_of_this_thread();
        assert!(!idle_this_thread());
        assert_eq!(
            lowered_to(BulkPriority::Idle),
            (Some(Lowered::Idle), true, before)
        );
        let low = BULK_NICE.max(before);
        assert_eq!(
            lowered_to(BulkPriority::Low),
            (Some(Lowered::Nice(low)), false, low)
        );
        assert_eq!(
            lowered_to(BulkPriority::Normal),
            (Some(Lowered::Nice(before)), false, before)
        );
        assert!(!idle_this_thread(), "the caller's thread is untouched");
        assert_eq!(nice_of_this_thread(), before);
    }

    #[test]
    fn the_setting_is_read_from_the_configuration_words() {
        #[derive(serde::Deserialize)]
        struct T {
            p: BulkPriority,
        }
        for (word, p) in [
            ("idle", BulkPriority::Idle),
            ("low", BulkPriority::Low),
            ("normal", BulkPriority::Normal),
        ] {
            let t: T = toml::from_str(&format!("p = \"{word}\"")).unwrap();
            assert_eq!(t.p, p);
            assert_eq!(BulkPriority::from_u8(p.to_u8()), p);
        }
        assert!(toml::from_str::<T>("p = \"lowest\"").is_err());
        assert_eq!(BulkPriority::default(), BulkPriority::Low);
    }

    #[tokio::test]
    async fn work_runs_on_a_thread_of_lower_priority_and_the_caller_keeps_its_own() {
        // The process's setting, the default here.
        assert_eq!(bulk_priority(), BulkPriority::Low);
        let before = nice_of_this_thread();
        let (name, nice) = spawn("bulk-test", || {
            (
                std::thread::current().name().map(String::from),
                nice_of_this_thread(),
            )
        })
        .await
        .unwrap();
        assert_eq!(name.as_deref(), Some("bulk-test"));
        assert_eq!(nice, BULK_NICE.max(before));
        assert_eq!(
            nice_of_this_thread(),
            before,
            "the caller's thread is untouched"
        );
    }

    #[tokio::test]
    async fn async_work_runs_with_sockets_and_timers_on_a_thread_of_lower_priority() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"hello").await.unwrap();
        });
        let (got, nice) = spawn_async("bulk-async-test", async move {
            use tokio::io::AsyncReadExt;
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.unwrap();
            (buf, nice_of_this_thread())
        })
        .await
        .unwrap();
        accept.await.unwrap();
        assert_eq!(got, b"hello");
        assert!(nice >= BULK_NICE, "nice {nice}");
    }

    #[tokio::test]
    async fn a_panic_is_an_error_not_a_hang() {
        let e = spawn("bulk-panic", || -> u8 { panic!("boom") })
            .await
            .unwrap_err();
        assert!(matches!(e, BulkError::Lost { .. }), "{e}");
        let e = spawn_async("bulk-panic-async", async {
            if true {
                panic!("boom")
            }
        })
        .await
        .unwrap_err();
        assert!(matches!(e, BulkError::Lost { .. }), "{e}");
    }

    #[tokio::test]
    async fn async_work_is_dropped_when_the_caller_stops_waiting() {
        let dropped = Arc::new(AtomicBool::new(false));
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let flag = Flag(dropped.clone());
        let waiting = spawn_async("bulk-cancel", async move {
            let _flag = flag;
            std::future::pending::<()>().await
        });
        // The caller gives up after a moment.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), waiting)
                .await
                .is_err()
        );
        for _ in 0..500 {
            if dropped.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the abandoned work was not dropped within 5 s");
    }
}
