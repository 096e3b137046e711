//! A zone task's command queue: a bounded queue with one sender (the
//! zone's registry entry) and one receiver (the zone task).
//!
//! Written here rather than taken from `tokio::sync::mpsc` for its size:
//! every zone has one, and tokio's bounded channel allocates about 800
//! bytes per channel (cache-padded sender and receiver halves and a first
//! block of 32 slots) whatever its capacity, which with 10,000 zones is
//! 8 MB for queues that are empty nearly all the time. This one is a
//! `VecDeque` and the waiting receiver's waker behind a mutex (about 100
//! bytes while empty); commands are rare (NOTIFY and operator requests),
//! so the lock is never contended. The receiver's wait ([`Recv`]) is one
//! reference: it is part of every idle zone task's future, where a
//! `tokio::sync::Notify` wait would take about 70 bytes more.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::ZoneCommand;

/// A command queue holding at most `capacity` commands (at least 1).
pub fn command_queue(capacity: usize) -> (CommandSender, CommandReceiver) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            waiting: None,
        }),
        capacity: capacity.max(1),
        sent: AtomicU64::new(0),
        sender_gone: AtomicBool::new(false),
        receiver_gone: AtomicBool::new(false),
    });
    (
        CommandSender {
            inner: inner.clone(),
        },
        CommandReceiver { inner },
    )
}

struct Inner {
    state: Mutex<State>,
    capacity: usize,
    /// Commands ever queued: a command the receiver has taken but not yet
    /// counted as taken still shows as not acted on.
    sent: AtomicU64,
    /// Set (before the waiting receiver is woken) when the sender is
    /// dropped; read under the lock, after the queue is found empty.
    sender_gone: AtomicBool,
    receiver_gone: AtomicBool,
}

struct State {
    queue: VecDeque<Box<ZoneCommand>>,
    /// The receiver's waker while it waits for a command (or a stale one
    /// of a wait it cancelled: waking it is harmless).
    waiting: Option<Waker>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the receiver if it waits.
    fn wake(&self) {
        let waker = self.state().waiting.take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Why a command was not queued; the command comes back.
#[derive(Debug, thiserror::Error)]
pub enum TrySendError {
    /// The queue holds `capacity` commands already.
    #[error("no available capacity")]
    Full(Box<ZoneCommand>),
    /// The zone task has stopped.
    #[error("channel closed")]
    Closed(Box<ZoneCommand>),
}

/// Why no command was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// None is queued.
    #[error("queue empty")]
    Empty,
    /// None is queued and the sender is gone: none ever will be.
    #[error("queue closed")]
    Disconnected,
}

/// The sending half, held by the zone's registry entry. Dropping it ends
/// the queue: the receiver takes what is left, then sees it closed.
pub struct CommandSender {
    inner: Arc<Inner>,
}

impl CommandSender {
    /// Queues a command unless the queue is full or the zone task has
    /// stopped.
    pub fn try_send(&self, cmd: Box<ZoneCommand>) -> Result<(), TrySendError> {
        if self.inner.receiver_gone.load(Ordering::Acquire) {
            return Err(TrySendError::Closed(cmd));
        }
        let waker = {
            let mut s = self.inner.state();
            if s.queue.len() >= self.inner.capacity {
                return Err(TrySendError::Full(cmd));
            }
            s.queue.push_back(cmd);
            self.inner.sent.fetch_add(1, Ordering::Release);
            s.waiting.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Commands queued since the queue was made (taken ones included).
    pub fn sent(&self) -> u64 {
        self.inner.sent.load(Ordering::Acquire)
    }

    /// The most commands the queue holds.
    pub fn max_capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Room left: [`CommandSender::max_capacity`] less the commands queued.
    pub fn capacity(&self) -> usize {
        self.inner.capacity.saturating_sub(self.len())
    }

    /// Commands queued, not yet taken by the zone task.
    pub fn len(&self) -> usize {
        self.inner.state().queue.len()
    }

    /// True when no command is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for CommandSender {
    fn drop(&mut self) {
        self.inner.sender_gone.store(true, Ordering::Release);
        // Taken under the lock after the flag is set: a receiver that
        // found the queue empty either saw the flag or left its waker.
        self.inner.wake();
    }
}

/// The receiving half, held by the zone task.
pub struct CommandReceiver {
    inner: Arc<Inner>,
}

impl CommandReceiver {
    /// The next command, waiting for one; None once the queue is empty and
    /// the sender is gone. Cancel-safe: a command is taken only when the
    /// wait returns it.
    pub fn recv(&mut self) -> Recv<'_> {
        Recv { receiver: self }
    }

    /// The next command if one is queued.
    pub fn try_recv(&mut self) -> Result<Box<ZoneCommand>, TryRecvError> {
        self.take(None)
    }

    /// The next command; when none is queued, leaves `waker` (if given)
    /// to be woken by the next one or by the sender going away.
    fn take(&self, waker: Option<&Waker>) -> Result<Box<ZoneCommand>, TryRecvError> {
        let mut s = self.inner.state();
        if let Some(cmd) = s.queue.pop_front() {
            return Ok(cmd);
        }
        // Read under the lock: a sender that queued its last command and
        // then went away has that command taken before the end is
        // reported, and one dropped after this sees the waker below.
        if self.inner.sender_gone.load(Ordering::Acquire) {
            return Err(TryRecvError::Disconnected);
        }
        if let Some(waker) = waker {
            match &mut s.waiting {
                Some(w) if w.will_wake(waker) => {}
                w => *w = Some(waker.clone()),
            }
        }
        Err(TryRecvError::Empty)
    }
}

impl Drop for CommandReceiver {
    fn drop(&mut self) {
        self.inner.receiver_gone.store(true, Ordering::Release);
        let mut s = self.inner.state();
        s.queue.clear();
        s.waiting = None;
    }
}

/// The wait for the next command ([`CommandReceiver::recv`]).
pub struct Recv<'a> {
    receiver: &'a mut CommandReceiver,
}

impl Future for Recv<'_> {
    type Output = Option<Box<ZoneCommand>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.receiver.take(Some(cx.waker())) {
            Ok(cmd) => Poll::Ready(Some(cmd)),
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
            Err(TryRecvError::Empty) => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn notify(serial: u32) -> Box<ZoneCommand> {
        Box::new(ZoneCommand::Notify {
            from: "127.0.0.1:53".parse().unwrap(),
            serial: Some(serial),
        })
    }

    #[test]
    fn sent_counts_every_queued_command_taken_or_not() {
        let (tx, mut rx) = command_queue(1);
        assert_eq!(tx.sent(), 0);
        tx.try_send(notify(1)).unwrap();
        assert!(tx.try_send(notify(2)).is_err(), "full");
        assert_eq!(tx.sent(), 1, "a refused command is not counted");
        rx.try_recv().unwrap();
        assert_eq!(tx.sent(), 1, "taking a command leaves the count");
        tx.try_send(notify(3)).unwrap();
        assert_eq!(tx.sent(), 2);
    }

    #[test]
    fn commands_come_out_in_order_and_a_full_queue_refuses() {
        let (tx, mut rx) = command_queue(2);
        assert_eq!(tx.max_capacity(), 2);
        tx.try_send(notify(1)).unwrap();
        tx.try_send(Box::new(ZoneCommand::Refresh)).unwrap();
        assert_eq!((tx.len(), tx.capacity()), (2, 0));
        match tx.try_send(notify(3)) {
            Err(TrySendError::Full(cmd)) => assert_eq!(*cmd, *notify(3)),
            other => panic!("expected Full, got {other:?}"),
        }
        assert_eq!(rx.try_recv().unwrap(), notify(1));
        assert_eq!(rx.try_recv().unwrap(), Box::new(ZoneCommand::Refresh));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!((tx.len(), tx.capacity()), (0, 2));
    }

    #[test]
    fn a_stopped_task_refuses_commands() {
        let (tx, rx) = command_queue(4);
        drop(rx);
        assert!(matches!(
            tx.try_send(Box::new(ZoneCommand::Reload)),
            Err(TrySendError::Closed(_))
        ));
    }

    #[tokio::test]
    async fn the_receiver_takes_what_is_left_then_sees_the_end() {
        let (tx, mut rx) = command_queue(4);
        tx.try_send(Box::new(ZoneCommand::Retransfer)).unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some(Box::new(ZoneCommand::Retransfer)));
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_a_command_and_for_the_end() {
        let (tx, mut rx) = command_queue(4);
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (first, second)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.try_send(notify(7)).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(tx);
        let (first, second) = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the receiver woke")
            .unwrap();
        assert_eq!(first, Some(notify(7)));
        assert_eq!(second, None);
    }

    #[test]
    fn the_wait_is_one_reference() {
        assert_eq!(std::mem::size_of::<Recv<'_>>(), 8);
    }

    #[tokio::test]
    async fn a_cancelled_wait_loses_no_command() {
        let (tx, mut rx) = command_queue(4);
        // A wait cancelled (as a select! branch that lost) ...
        assert!(
            tokio::time::timeout(Duration::from_millis(10), rx.recv())
                .await
                .is_err()
        );
        // ... leaves the command sent afterwards for the next one.
        tx.try_send(notify(9)).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert_eq!(got.expect("not lost"), Some(notify(9)));
    }
}
