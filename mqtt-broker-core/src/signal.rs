//! A wake-up for one waiting task.

use futures_util::task::AtomicWaker;
use std::{
    sync::atomic::{AtomicBool, Ordering},
    task::{Context, Poll},
};

/// Wakes the one task that waits on it; a signal sent while nobody waits
/// is kept for the next wait. A connection waits on its signals on every
/// turn of its loop: waiting again costs two atomic operations (a flag and
/// the registered waker), where a `tokio::sync::Notify` links and unlinks
/// a waiter under a lock each time.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    set: AtomicBool,
    waker: AtomicWaker,
}

impl Signal {
    /// Wakes the waiting task, or the next one to wait.
    pub(crate) fn notify(&self) {
        self.set.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Ready once signalled (consuming the signal).
    pub(crate) fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.set.swap(false, Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A signal sent before the registration would otherwise be missed.
        if self.set.swap(false, Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Waits until signalled. Dropped before it completes, it consumes
    /// nothing.
    pub(crate) async fn wait(&self) {
        std::future::poll_fn(|cx| self.poll_wait(cx)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::{sync::Arc, time::Duration};

    #[tokio::test]
    async fn a_signal_is_kept_until_waited_for_and_wakes_a_waiter() {
        let s = Arc::new(Signal::default());
        s.notify();
        s.wait().await;
        // Consumed: a second wait waits.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), s.wait())
                .await
                .is_err()
        );
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        s.notify();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
