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
    /// Its number in the store, 0 when not stored.
    pub(crate) seq: u64,
}

/// How full a mailbox is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Level {
    /// Above the high-water mark (see [`Mailbox::is_congested`]).
    pub(crate) congested: bool,
    /// Past a sixteenth of its bound: its publishers should route one
    /// message at a time, so that many of them together cannot carry it
    /// far past its high-water mark before each pauses.
    pub(crate) filling: bool,
}

/// What [`Mailbox::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Push {
    /// Queued.
    Queued,
    /// QoS 0 for an offline session: not kept.
    Skipped,
    /// Over the limit: dropped (`first`: the first drop for this session).
    Dropped { first: bool },
}

#[derive(Debug)]
pub(crate) struct Mailbox {
    queue: Mutex<VecDeque<Queued>>,
    limit: usize,
    pub(crate) notify: crate::signal::Signal,
    pub(crate) dropped: AtomicU64,
    /// Wakes publishers paused on this mailbox once it has room again.
    pub(crate) space: Notify,
    /// When its connection last took messages (ms since [`epoch`]).
    progress_ms: AtomicU64,
}

/// The origin of every mailbox's progress time (one for the process: a
/// mailbox does not keep its own).
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds from [`epoch`] to `at`.
fn since_epoch(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_millis() as u64
}

/// How long a mailbox may sit above its high-water mark without its
/// connection taking anything before it counts as stuck: publishers are then
/// no longer held for it, and its new messages are dropped at the limit.
pub(crate) const STUCK_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl Mailbox {
    pub(crate) fn new(limit: usize) -> Mailbox {
        Mailbox {
            queue: Mutex::new(VecDeque::new()),
            limit,
            notify: Default::default(),
            dropped: AtomicU64::new(0),
            space: Notify::new(),
            progress_ms: AtomicU64::new(since_epoch(Instant::now())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Queued>> {
        // A panic while holding this lock leaves a consistent queue.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a message; past the limit it is dropped (and counted). A QoS
    /// 0 message for a session that is offline is skipped.
    pub(crate) fn push(&self, publish: Publish, at: Instant, seq: u64, online: bool) -> Push {
        let mut result = Push::Skipped;
        self.push_all(std::iter::once((publish, seq)), at, online, |_, p| {
            result = p
        });
        result
    }

    /// Queues messages in order under one lock, as [`push`](Self::push)
    /// does each; `report` hears what became of each (with the queued
    /// message, when it was queued). Returns how full it then is.
    pub(crate) fn push_all(
        &self,
        items: impl Iterator<Item = (Publish, u64)>,
        at: Instant,
        online: bool,
        mut report: impl FnMut(Option<&Queued>, Push),
    ) -> Level {
        let mut q = self.lock();
        let was_empty = q.is_empty();
        for (publish, seq) in items {
            if !online && publish.qos() == QoS::AtMostOnce {
                report(None, Push::Skipped);
                continue;
            }
            if q.len() >= self.limit {
                let before = self.dropped.fetch_add(1, Ordering::Relaxed);
                report(None, Push::Dropped { first: before == 0 });
                continue;
            }
            if q.is_empty() {
                // The clock for "stuck" starts when messages start waiting.
                self.progress_ms.store(since_epoch(at), Ordering::Relaxed);
            }
            q.push_back(Queued { publish, at, seq });
            report(q.back(), Push::Queued);
        }
        let wake = online && was_empty && !q.is_empty();
        let len = q.len();
        drop(q);
        // Only the first message wakes the connection: it takes messages
        // until the mailbox is empty, or until its session is full, and then
        // comes back on its own as the session drains.
        if wake {
            self.notify.notify();
        }
        Level {
            congested: len >= self.limit / 2,
            filling: len >= self.limit / 16,
        }
    }

    /// Above the high-water mark (half the limit): publishers routing to it
    /// should pause until it drains, unless it is stuck.
    pub(crate) fn is_congested(&self) -> bool {
        self.lock().len() >= self.limit / 2
    }

    /// Its connection has taken nothing for [`STUCK_AFTER`].
    pub(crate) fn is_stuck(&self, now: Instant) -> bool {
        let last =
            epoch() + std::time::Duration::from_millis(self.progress_ms.load(Ordering::Relaxed));
        now.saturating_duration_since(last) >= STUCK_AFTER
    }

    /// The connection handed messages to its session: record the progress
    /// and wake paused publishers when below the high-water mark.
    pub(crate) fn made_progress(&self, now: Instant) {
        self.progress_ms.store(since_epoch(now), Ordering::Relaxed);
        if self.lock().len() < self.limit / 2 {
            self.space.notify_waiters();
        }
    }

    /// Takes up to `max` messages into `into` (empty): the whole queue
    /// changes places with it when it all fits, so nothing is copied.
    pub(crate) fn take(&self, max: usize, into: &mut VecDeque<Queued>) {
        let mut q = self.lock();
        if q.len() <= max {
            std::mem::swap(&mut *q, into);
        } else {
            into.extend(q.drain(..max));
        }
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
