//! A session's bounded queue of messages routed to it and not yet handed to
//! its connection (or waiting while it is offline).

use mqtt_codec::{Publish, QoS};
use std::{
    collections::VecDeque,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};
use tokio::sync::Notify;

/// A routed message and when it was routed (for Message Expiry).
#[derive(Clone, Debug)]
pub(crate) struct Queued {
    pub(crate) publish: Publish,
    pub(crate) at: Instant,
}

/// What [`Mailbox::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Push {
    Queued,
    /// QoS 0 for an offline session: not kept.
    Skipped,
    /// Over the limit: dropped (`first`: the first drop for this session).
    Dropped {
        first: bool,
    },
}

#[derive(Debug)]
pub(crate) struct Mailbox {
    queue: Mutex<VecDeque<Queued>>,
    limit: usize,
    pub(crate) notify: Notify,
    pub(crate) dropped: AtomicU64,
}

impl Mailbox {
    pub(crate) fn new(limit: usize) -> Mailbox {
        Mailbox {
            queue: Mutex::new(VecDeque::new()),
            limit,
            notify: Notify::new(),
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Queued>> {
        // A panic while holding this lock leaves a consistent queue.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a message; past the limit it is dropped (and counted). A QoS
    /// 0 message for a session that is offline is skipped.
    pub(crate) fn push(&self, publish: Publish, at: Instant, online: bool) -> Push {
        if !online && publish.qos() == QoS::AtMostOnce {
            return Push::Skipped;
        }
        let mut q = self.lock();
        if q.len() >= self.limit {
            drop(q);
            let before = self.dropped.fetch_add(1, Ordering::Relaxed);
            return Push::Dropped { first: before == 0 };
        }
        q.push_back(Queued { publish, at });
        drop(q);
        if online {
            self.notify.notify_one();
        }
        Push::Queued
    }

    /// Takes up to `max` messages.
    pub(crate) fn take(&self, max: usize, into: &mut Vec<Queued>) {
        let mut q = self.lock();
        let n = q.len().min(max);
        into.extend(q.drain(..n));
    }

    /// Puts messages the connection could not take back at the front.
    pub(crate) fn put_back(&self, items: impl DoubleEndedIterator<Item = Queued>) {
        let mut q = self.lock();
        for item in items.rev() {
            q.push_front(item);
        }
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}
