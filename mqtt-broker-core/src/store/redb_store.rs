//! The crash-safe store: one file, through redb.

use super::{
    Change, Loaded, Store, StoreError,
    codec::{self, Table, Writer},
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;

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
/// (redb: copy-on-write B-trees, checksummed commits). A durable commit
/// returns once it is on disk; a crash at any moment leaves the file at
/// the last commit that returned.
pub struct RedbStore {
    db: Database,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens the store at `path`, creating it if missing.
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStore, StoreError> {
        let db = Database::create(path.as_ref())
            .map_err(|e| StoreError::Engine(format!("{}: {e}", path.as_ref().display())))?;
        // Create the tables, so that a first load finds them.
        let w = db.begin_write().map_err(engine)?;
        for t in [SESSIONS, MESSAGES, AWAITING, RETAINED] {
            w.open_table(t).map_err(engine)?;
        }
        w.commit().map_err(engine)?;
        Ok(RedbStore { db })
    }
}

struct Txn<'a>(&'a redb::WriteTransaction);

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

    fn commit(&self, changes: &[Change], durable: bool) -> Result<(), StoreError> {
        let mut w = self.db.begin_write().map_err(engine)?;
        w.set_durability(if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        })
        .map_err(engine)?;
        codec::apply(&mut Txn(&w), changes)?;
        w.commit().map_err(engine)
    }
}
