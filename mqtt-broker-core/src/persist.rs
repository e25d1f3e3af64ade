//! Group commit: every connection's changes go into one pending batch; a
//! writer thread writes a batch while the next one fills (and, when
//! acknowledgements wait for the disk, a sync thread syncs what was written
//! while the next batches are written), and tells the connections which
//! batches are durable, so that each sends its acknowledgements once its
//! own changes are.

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

/// The last batch written and not yet covered by a sync that began: what
/// the writer hands the sync thread.
#[derive(Default)]
struct Written {
    state: Mutex<WrittenState>,
    wake: Condvar,
}

#[derive(Default)]
struct WrittenState {
    /// The last batch written since the last sync began (0: none).
    unsynced: Ticket,
    stop: bool,
}

impl Written {
    fn lock(&self) -> std::sync::MutexGuard<'_, WrittenState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Batch `generation`, and every one before it, is written.
    fn set(&self, generation: Ticket) {
        let was_idle = {
            let mut s = self.lock();
            let was_idle = s.unsynced == 0;
            s.unsynced = generation;
            was_idle
        };
        // (Otherwise the sync thread is busy, or already woken.)
        if was_idle {
            self.wake.notify_one();
        }
    }

    /// No more batches: the sync thread syncs what is left and stops.
    fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_one();
    }

    /// Waits for a written batch and takes it, for the sync about to
    /// begin. `None` once stopped with nothing left.
    fn take(&self) -> Option<Ticket> {
        let mut s = self.lock();
        loop {
            if s.unsynced != 0 {
                return Some(std::mem::take(&mut s.unsynced));
            }
            if s.stop {
                return None;
            }
            s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Persister {
    /// Starts the writer thread (with [`Durability::Always`], also the
    /// sync thread, which the writer's thread waits for when it ends).
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
        fn spawn(
            name: &str,
            f: impl FnOnce() + Send + 'static,
        ) -> std::io::Result<std::thread::JoinHandle<()>> {
            std::thread::Builder::new().name(name.into()).spawn(f)
        }
        let writer = p.clone();
        let thread = match mode {
            Durability::Always => {
                // The sync thread, which the writer stops and waits for
                // when it ends.
                let written = Arc::new(Written::default());
                let syncer = {
                    let (p, written) = (p.clone(), written.clone());
                    spawn("mqtt-store-sync", move || p.run_syncer(&written))?
                };
                let ours = written.clone();
                spawn("mqtt-store", move || {
                    writer.run_always(&written);
                    written.stop();
                    let _ = syncer.join();
                })
                .inspect_err(|_| ours.stop())?
            }
            Durability::Periodic(every) => spawn("mqtt-store", move || writer.run_periodic(every))?,
        };
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

    /// The last batch committed.
    pub(crate) fn committed(&self) -> Ticket {
        *self.committed.borrow()
    }

    /// Whether a commit failed (the store is unusable).
    pub(crate) fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
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

    /// A commit failed: nothing more is written or acknowledged. Every
    /// waiting connection is woken and, seeing the failure, closes without
    /// acknowledging.
    fn fail(&self, e: &crate::store::StoreError, changes: usize) {
        error!(error = %e, changes, "store write failed: acknowledgements stop");
        // The flag before the batches: see `Conn::committed`.
        self.failed.store(true, Ordering::Release);
        self.committed.send_replace(u64::MAX);
    }

    /// Marks batches up to `generation` durable.
    fn durable(&self, generation: u64) {
        self.committed.send_if_modified(|c| {
            let newer = *c < generation;
            if newer {
                *c = generation;
            }
            newer
        });
    }

    /// Waits for the next batch: `None` once stopped with nothing left.
    fn take(&self, timeout: Option<Duration>) -> Option<(Vec<Change>, u64)> {
        let mut p = self.lock();
        loop {
            if !p.changes.is_empty() {
                let batch = std::mem::take(&mut p.changes);
                let generation = p.generation;
                p.generation += 1;
                return Some((batch, generation));
            }
            if p.stop {
                return None;
            }
            match timeout {
                Some(t) => {
                    let (guard, result) = self
                        .wake
                        .wait_timeout(p, t)
                        .unwrap_or_else(|e| e.into_inner());
                    p = guard;
                    if result.timed_out() {
                        return Some((Vec::new(), 0));
                    }
                }
                None => p = self.wake.wait(p).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    /// The writer of [`Durability::Always`]: writes each batch as soon as
    /// it is taken and hands it to the sync thread. A sync covers every
    /// batch written before it began, so the batches written during one
    /// sync are made durable together by the next, and writing a batch
    /// (tables and journal: tens of microseconds) overlaps the sync before
    /// it (a couple of hundred).
    fn run_always(&self, written: &Written) {
        while let Some((batch, generation)) = self.take(None) {
            // The store holds a prefix of the batches: after a failed one,
            // later ones are not written.
            if self.has_failed() {
                continue;
            }
            match self.store.write(&batch) {
                Ok(()) => written.set(generation),
                Err(e) => self.fail(&e, batch.len()),
            }
        }
    }

    /// The sync thread of [`Durability::Always`]: syncs whenever a batch
    /// was written since the last sync began, then marks every batch
    /// written before it began durable.
    fn run_syncer(&self, written: &Written) {
        while let Some(generation) = written.take() {
            if !self.has_failed() {
                self.sync_through(generation);
            }
        }
    }

    /// Syncs the store and marks batches up to `generation` durable;
    /// `false` when the sync failed (the store has failed then).
    fn sync_through(&self, generation: Ticket) -> bool {
        match self.store.sync() {
            Ok(()) => {
                self.durable(generation);
                true
            }
            Err(e) => {
                self.fail(&e, 0);
                false
            }
        }
    }

    /// The writer of [`Durability::Periodic`]: writes batches as they
    /// come and syncs at most `every`.
    fn run_periodic(&self, every: Duration) {
        let every = every.max(Duration::from_millis(1));
        let mut last_sync = Instant::now();
        let mut dirty = false;
        // The last batch written (synced ones are marked durable).
        let mut written = 0;
        loop {
            let wait = if dirty {
                every.saturating_sub(last_sync.elapsed())
            } else {
                Duration::from_secs(3600)
            };
            let next = self.take(Some(wait.max(Duration::from_micros(100))));
            let stop = next.is_none();
            if let Some((batch, generation)) = next
                && !batch.is_empty()
                && !self.has_failed()
            {
                match self.store.write(&batch) {
                    Ok(()) => dirty = true,
                    Err(e) => self.fail(&e, batch.len()),
                }
                written = generation;
            }
            if dirty
                && (stop || last_sync.elapsed() >= every)
                && !self.has_failed()
                && self.sync_through(written)
            {
                dirty = false;
                last_sync = Instant::now();
            }
            if stop {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::{Loaded, StoreError};
    use std::sync::atomic::AtomicU64;

    /// Counts writes, and remembers how many writes the last sync to
    /// return had seen when it began: what is durable.
    #[derive(Default)]
    struct Counting {
        written: AtomicU64,
        durable: AtomicU64,
    }

    impl Store for Counting {
        fn load(&self) -> Result<Loaded, StoreError> {
            Ok(Loaded::default())
        }

        fn write(&self, _: &[Change]) -> Result<(), StoreError> {
            std::thread::sleep(Duration::from_micros(50));
            self.written.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }

        fn sync(&self) -> Result<(), StoreError> {
            let covers = self.written.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_micros(300));
            self.durable.fetch_max(covers, Ordering::SeqCst);
            Ok(())
        }
    }

    /// With the sync on its own thread, batches are written while a sync
    /// runs, yet none is reported committed before a sync that began after
    /// it was written returned; and every batch is committed in the end.
    #[test]
    fn batches_are_committed_only_once_a_later_sync_returned() {
        let store = Arc::new(Counting::default());
        let (p, thread) = Persister::start(store.clone(), Durability::Always).unwrap();
        let mut commits = p.watch();
        let checker = std::thread::spawn({
            let store = store.clone();
            move || {
                let mut seen = 0;
                while commits.has_changed().is_ok() {
                    let c = *commits.borrow_and_update();
                    // (Batches are numbered from 1 and written in order, so
                    // batch n is durable once n writes are.)
                    assert!(
                        c <= store.durable.load(Ordering::SeqCst),
                        "batch {c} reported before its sync"
                    );
                    seen = seen.max(c);
                    std::thread::sleep(Duration::from_micros(20));
                }
                // (The last value may have come with the writer's end.)
                seen.max(*commits.borrow())
            }
        });
        let mut last = 0;
        for i in 0..400u32 {
            last = p.record([Change::RemoveSession(format!("c{i}").into())]);
            if i % 7 == 0 {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        p.stop();
        thread.join().unwrap();
        assert_eq!(p.committed(), last);
        assert_eq!(store.durable.load(Ordering::SeqCst), last);
        // (Many batches: the records came faster than writes.)
        assert!(last > 10, "{last} batches");
        drop(p);
        assert_eq!(checker.join().unwrap(), last);
    }
}
