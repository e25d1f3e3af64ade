//! Group commit: every connection's changes go into one pending batch; a
//! writer thread commits a batch while the next one fills, and tells the
//! connections which batches are durable, so that each sends its
//! acknowledgements once its own changes are.

use crate::store::{Change, Durability, Store};
use std::{
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::sync::watch;
use tracing::error;

/// The batch being filled.
struct Pending {
    changes: Vec<Change>,
    /// The number of the batch being filled; batches before it are
    /// committed or being committed.
    generation: u64,
    stop: bool,
}

pub(crate) struct Persister {
    store: Arc<dyn Store>,
    mode: Durability,
    pending: Mutex<Pending>,
    wake: Condvar,
    /// The last batch committed.
    committed: watch::Sender<u64>,
    /// A commit failed: acknowledgements are no longer safe to send.
    failed: AtomicBool,
}

/// A batch number to wait for before acknowledging.
pub(crate) type Ticket = u64;

impl Persister {
    /// Starts the writer thread.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        mode: Durability,
    ) -> std::io::Result<(Arc<Persister>, std::thread::JoinHandle<()>)> {
        let p = Arc::new(Persister {
            store,
            mode,
            pending: Mutex::new(Pending {
                changes: Vec::new(),
                generation: 1,
                stop: false,
            }),
            wake: Condvar::new(),
            committed: watch::Sender::new(0),
            failed: AtomicBool::new(false),
        });
        let writer = p.clone();
        let thread = std::thread::Builder::new()
            .name("mqtt-store".into())
            .spawn(move || writer.run())?;
        Ok((p, thread))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds changes to the pending batch; returns the ticket to wait for
    /// (0, already satisfied, when acknowledgements need not wait).
    pub(crate) fn record(&self, changes: impl IntoIterator<Item = Change>) -> Ticket {
        let mut p = self.lock();
        let before = p.changes.len();
        p.changes.extend(changes);
        if p.changes.len() == before {
            return 0;
        }
        let generation = p.generation;
        drop(p);
        if before == 0 {
            self.wake.notify_one();
        }
        match self.mode {
            Durability::Always => generation,
            Durability::Periodic(_) => 0,
        }
    }

    /// Whether the batch `ticket` is committed.
    pub(crate) fn is_committed(&self, ticket: Ticket) -> bool {
        *self.committed.borrow() >= ticket
    }

    /// Whether a commit failed (the store is unusable).
    pub(crate) fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Wakes on every commit.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// Commits what is pending and stops the writer.
    pub(crate) fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_one();
    }

    fn run(&self) {
        let flush_every = match self.mode {
            Durability::Always => None,
            Durability::Periodic(d) => Some(d.max(Duration::from_millis(1))),
        };
        let mut last_durable = Instant::now();
        let mut dirty = false;
        loop {
            let (batch, generation, stop) = {
                let mut p = self.lock();
                while p.changes.is_empty() && !p.stop {
                    let wait = flush_every
                        .filter(|_| dirty)
                        .map(|d| d.saturating_sub(last_durable.elapsed()));
                    match wait {
                        Some(w) if w.is_zero() => break,
                        Some(w) => {
                            p = self
                                .wake
                                .wait_timeout(p, w)
                                .unwrap_or_else(|e| e.into_inner())
                                .0
                        }
                        None => p = self.wake.wait(p).unwrap_or_else(|e| e.into_inner()),
                    }
                }
                let batch = std::mem::take(&mut p.changes);
                let generation = p.generation;
                p.generation += 1;
                (batch, generation, p.stop)
            };
            if self.has_failed() {
                // The store holds a prefix of the batches; later ones are
                // not written after a failed one, and nothing more is
                // acknowledged (connections close instead).
                if stop {
                    return;
                }
                continue;
            }
            let durable = stop || flush_every.is_none_or(|d| last_durable.elapsed() >= d);
            if !batch.is_empty() || (durable && dirty) {
                let mut result = self.store.commit(&batch, durable);
                if let Err(e) = &result {
                    error!(error = %e, "store commit failed; retrying once");
                    std::thread::sleep(Duration::from_millis(50));
                    result = self.store.commit(&batch, durable);
                }
                if let Err(e) = result {
                    error!(error = %e, changes = batch.len(), "store commit failed: acknowledgements stop");
                    self.failed.store(true, Ordering::Relaxed);
                    // Wake every waiting connection: each sees the failure
                    // before writing and closes without acknowledging.
                    self.committed.send_replace(u64::MAX);
                    continue;
                }
                if durable {
                    last_durable = Instant::now();
                    dirty = false;
                } else {
                    dirty = true;
                }
            }
            self.committed.send_replace(generation);
            if stop {
                return;
            }
        }
    }
}
