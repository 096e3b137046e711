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
//! lowered to [`BULK_NICE`] (Linux sets a thread's nice value per thread;
//! any thread may lower its own priority). The scheduler then hands the CPU
//! to a waking thread of normal priority at once, and the bulk work gets
//! what is left, which on an idle machine is everything: the large
//! transfer is not slower there. Elsewhere (no per-thread priorities) the
//! work runs on a thread of normal priority, as before.
//!
//! Knot runs its transfers on a pool of background workers for the same
//! reason; BIND leaves it to its task manager's quantum.

use std::future::Future;

use tokio::sync::oneshot;

/// The nice value of a bulk thread (0 is normal, 19 the lowest priority).
/// At 10 a busy bulk thread gets about a tenth of a CPU against one busy
/// thread of normal priority, and all of it when nothing else runs.
pub const BULK_NICE: i32 = 10;

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

/// Lowers the calling thread's OS priority to [`BULK_NICE`] (never
/// raises it). Returns the thread's nice value afterwards, None when it
/// cannot be read or set here.
pub fn lower_this_thread() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no arguments and cannot fail.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
        // getpriority may return -1 as a value: errno tells an error.
        // SAFETY: both calls only read or set the scheduling priority of
        // this thread; no memory is involved.
        unsafe {
            *libc::__errno_location() = 0;
            let now = libc::getpriority(libc::PRIO_PROCESS, tid);
            if now == -1 && *libc::__errno_location() != 0 {
                return None;
            }
            if now >= BULK_NICE {
                return Some(now);
            }
            if libc::setpriority(libc::PRIO_PROCESS, tid, BULK_NICE) != 0 {
                return Some(now);
            }
            Some(libc::getpriority(libc::PRIO_PROCESS, tid))
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
    let started = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            lower_this_thread();
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
    let started = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            lower_this_thread();
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

    #[tokio::test]
    async fn work_runs_on_a_thread_of_lower_priority_and_the_caller_keeps_its_own() {
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
