//! The crash-safe store: tables in one redb file, with a write-ahead
//! journal beside it.

use super::{
    Change, Loaded, Store, StoreError,
    codec::{self, Table, Writer},
    journal::{self, Journal, JournalOp},
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::{
    path::{Path, PathBuf},
    sync::Mutex,
};

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;
/// A key and its value.
type Entry = (Vec<u8>, Vec<u8>);

const SESSIONS: Def = TableDefinition::new("sessions");
const MESSAGES: Def = TableDefinition::new("messages");
const AWAITING: Def = TableDefinition::new("awaiting_release");
const RETAINED: Def = TableDefinition::new("retained");

fn def(t: Table) -> Def {
    match t {
        Table::Sessions => SESSIONS,
        Table::Messages => MESSAGES,
        Table::Awaiting => AWAITING,
        Table::Retained => RETAINED,
    }
}

fn engine(e: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(e.to_string())
}

/// Sessions and retained messages in one file, with ACID transactions
/// (redb: copy-on-write B-trees, checksummed commits), and a write-ahead
/// journal in a second file (the same path with `-journal` added).
///
/// A write goes to the tables without waiting for the disk and is appended
/// to the journal; a sync is one `fdatasync` of the journal (a few hundred
/// bytes per batch, overwriting a file already written full size, where a
/// durable table commit writes and syncs every page it touched). Batches
/// share a table transaction, committed without a sync every 16 batches
/// (`BATCHES_PER_COMMIT`). When less than 1 MiB of the journal's 8 MiB is
/// left, the tables are made durable (between two batches) and
/// the journal starts again. On opening, the journal is replayed over the
/// tables. A crash at any moment loses no synced write and leaves each
/// write whole or absent.
pub struct RedbStore {
    db: Database,
    writing: Mutex<Writing>,
    /// The journal file, to sync without holding `writing`.
    sync_handle: std::fs::File,
}

/// What writes go through.
struct Writing {
    journal: Journal,
    /// The table transaction the last batches went into, not committed yet
    /// (the journal holds them), and how many batches it holds.
    open: Option<(redb::WriteTransaction, usize)>,
}

/// Room a batch is expected to fit in: with less left in the journal, the
/// tables are made durable first and the journal starts again.
const CHECKPOINT_ROOM: usize = 1 << 20;

/// Batches that share one table transaction. A commit, even one that does
/// not sync, costs about as much as writing a small batch; the journal
/// already holds every batch, so the tables may lag a few behind.
const BATCHES_PER_COMMIT: usize = 16;

impl Drop for RedbStore {
    fn drop(&mut self) {
        // The journal has these batches too; committing them (before the
        // database closes) only spares the next opening their replay.
        if let Some((w, _)) = self.writing().open.take() {
            let _ = w.commit();
        }
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens the store at `path` (and its journal beside it), creating it
    /// if missing, and brings back every commit the journal holds.
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStore, StoreError> {
        let path = path.as_ref();
        let db = Database::create(path)
            .map_err(|e| StoreError::Engine(format!("{}: {e}", path.display())))?;
        let mut journal_path = PathBuf::from(path).into_os_string();
        journal_path.push("-journal");
        let (mut journal, records) = Journal::open(Path::new(&journal_path))?;
        // Create the tables, so that a first load finds them, and replay
        // the journal over them.
        let w = db.begin_write().map_err(engine)?;
        for t in [SESSIONS, MESSAGES, AWAITING, RETAINED] {
            w.open_table(t).map_err(engine)?;
        }
        {
            let mut txn = Txn(&w);
            for op in records.iter().flatten() {
                match op {
                    JournalOp::Put(t, k, v) => txn.put(*t, k, v)?,
                    JournalOp::Delete(t, k) => txn.delete(*t, k)?,
                    JournalOp::DeleteRange(t, start, end) => txn.delete_range(*t, start, end)?,
                }
            }
        }
        w.commit().map_err(engine)?;
        journal.reset()?;
        let sync_handle = journal.handle()?;
        Ok(RedbStore {
            db,
            writing: Mutex::new(Writing {
                journal,
                open: None,
            }),
            sync_handle,
        })
    }

    fn writing(&self) -> std::sync::MutexGuard<'_, Writing> {
        self.writing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Txn<'a>(&'a redb::WriteTransaction);

/// A transaction that also notes its operations for the journal.
struct Logged<'a> {
    txn: Txn<'a>,
    ops: Vec<JournalOp>,
}

impl Writer for Logged<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.txn.get(table, key)
    }

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.txn.put(table, key, value)?;
        self.ops
            .push(JournalOp::Put(table, key.to_vec(), value.to_vec()));
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<(), StoreError> {
        self.txn.delete(table, key)?;
        self.ops.push(JournalOp::Delete(table, key.to_vec()));
        Ok(())
    }

    fn delete_range(&mut self, table: Table, start: &[u8], end: &[u8]) -> Result<(), StoreError> {
        self.txn.delete_range(table, start, end)?;
        self.ops
            .push(JournalOp::DeleteRange(table, start.to_vec(), end.to_vec()));
        Ok(())
    }
}

impl Writer for Txn<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.0.open_table(def(table)).map_err(engine)?;
        Ok(t.get(key).map_err(engine)?.map(|v| v.value().to_vec()))
    }

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let mut t = self.0.open_table(def(table)).map_err(engine)?;
        t.insert(key, value).map_err(engine)?;
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<(), StoreError> {
        let mut t = self.0.open_table(def(table)).map_err(engine)?;
        t.remove(key).map_err(engine)?;
        Ok(())
    }

    fn delete_range(&mut self, table: Table, start: &[u8], end: &[u8]) -> Result<(), StoreError> {
        let mut t = self.0.open_table(def(table)).map_err(engine)?;
        t.retain_in(start..end, |_, _| false).map_err(engine)?;
        Ok(())
    }
}

impl Store for RedbStore {
    fn load(&self) -> Result<Loaded, StoreError> {
        // Batches written since the last commit first.
        if let Some((w, _)) = self.writing().open.take() {
            w.commit().map_err(engine)?;
        }
        let r = self.db.begin_read().map_err(engine)?;
        let mut all = Vec::new();
        for t in [SESSIONS, MESSAGES, AWAITING, RETAINED] {
            let table = r.open_table(t).map_err(engine)?;
            let entries: Vec<Result<Entry, StoreError>> = table
                .iter()
                .map_err(engine)?
                .map(|e| {
                    e.map(|(k, v)| (k.value().to_vec(), v.value().to_vec()))
                        .map_err(engine)
                })
                .collect();
            all.push(entries.into_iter());
        }
        let mut all = all.into_iter();
        let mut next = || all.next().unwrap_or_default();
        let (s, m, a, r) = (next(), next(), next(), next());
        codec::load(s, m, a, r)
    }

    fn write(&self, changes: &[Change]) -> Result<(), StoreError> {
        let mut writing = self.writing();
        let Writing { journal, open } = &mut *writing;
        // The tables never hold more than the journal's history: a
        // checkpoint happens between batches (never with one half in), and
        // a batch reaches the tables only once it is in the journal.
        if journal.len() > 0 && !journal.fits(CHECKPOINT_ROOM) {
            // Nearly full: make the tables durable with every batch so far,
            // then the journal is not needed.
            let mut w = match open.take() {
                Some((w, _)) => w,
                None => self.db.begin_write().map_err(engine)?,
            };
            w.set_durability(redb::Durability::Immediate)
                .map_err(engine)?;
            w.commit().map_err(engine)?;
            journal.reset()?;
        }
        // If anything below fails, the transaction is dropped with every
        // batch it holds: the tables stay behind the journal, which has
        // them all.
        let (w, batches) = match open.take() {
            Some(o) => o,
            None => {
                let mut w = self.db.begin_write().map_err(engine)?;
                // The journal makes it durable; the tables follow at
                // checkpoints.
                w.set_durability(redb::Durability::None).map_err(engine)?;
                (w, 0)
            }
        };
        let mut logged = Logged {
            txn: Txn(&w),
            ops: Vec::new(),
        };
        codec::apply(&mut logged, changes)?;
        let ops = logged.ops;
        if !ops.is_empty() {
            // (A record larger than the room left grows the file.)
            journal.append(&journal::encode(&ops))?;
        }
        if batches + 1 >= BATCHES_PER_COMMIT {
            w.commit().map_err(engine)
        } else {
            *open = Some((w, batches + 1));
            Ok(())
        }
    }

    fn sync(&self) -> Result<(), StoreError> {
        // Outside `writing`: the next batch is written meanwhile.
        self.sync_handle.sync_data().map_err(engine)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::StoredRetained;
    use mqtt_codec::{Publish, TopicName};
    use std::collections::BTreeMap;

    fn retained(topic: &str, fill: u8) -> StoredRetained {
        StoredRetained {
            publish: Publish::new(TopicName::try_from(topic).unwrap(), vec![fill; 4000]),
            set_at_ms: fill as u64,
        }
    }

    /// Writes go through the journal and fill it (so the tables are made
    /// durable and it starts again); the last ones are only in the journal
    /// when the process dies. Reopened, the store holds exactly what was
    /// written.
    #[test]
    fn reopening_replays_the_journal_after_checkpoints() {
        let dir = std::env::temp_dir().join(format!("mqtt-redb-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.redb");
        let mut expected = BTreeMap::new();
        let store = RedbStore::open(&path).unwrap();
        // About 3 journals' worth: 6,000 records of 4 KB.
        for i in 0..6_000u32 {
            let topic = format!("t/{}", i % 500);
            let change = if i % 7 == 3 {
                expected.remove(&topic);
                Change::Retain(topic.as_str().into(), None)
            } else {
                let r = retained(&topic, i as u8);
                expected.insert(topic.clone(), r.clone());
                Change::Retain(topic.as_str().into(), Some(r))
            };
            store.write(&[change]).unwrap();
        }
        store.sync().unwrap();
        // What a killed process leaves: the files as they are now, without
        // an orderly close (the tables' last durable commit is older; the
        // rest is only in the journal).
        let copy = dir.join("copy.redb");
        std::fs::copy(&path, &copy).unwrap();
        std::fs::copy(
            dir.join("store.redb-journal"),
            dir.join("copy.redb-journal"),
        )
        .unwrap();
        drop(store);
        let store = RedbStore::open(&copy).unwrap();
        let loaded = store.load().unwrap();
        let got: BTreeMap<String, StoredRetained> = loaded
            .retained
            .into_iter()
            .map(|r| (r.publish.topic().to_string(), r))
            .collect();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "reloaded retained messages differ");
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
