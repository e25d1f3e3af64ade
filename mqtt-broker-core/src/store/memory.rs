//! A store kept in the process's memory.

use super::{
    Change, Loaded, Store, StoreError,
    codec::{self, Table, Writer},
};
use std::{collections::BTreeMap, sync::Mutex};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// Keeps what a [`RedbStore`](super::RedbStore) keeps, in memory, in the
/// same byte layout: a broker restarted in the same process with the same
/// `MemoryStore` finds its sessions, queued messages and retained messages
/// again. Nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<[Map; 4]>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

fn index(t: Table) -> usize {
    match t {
        Table::Sessions => 0,
        Table::Messages => 1,
        Table::Awaiting => 2,
        Table::Retained => 3,
    }
}

impl Writer for [Map; 4] {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self[index(table)].get(key).cloned())
    }

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self[index(table)].insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<(), StoreError> {
        self[index(table)].remove(key);
        Ok(())
    }

    fn delete_range(&mut self, table: Table, start: &[u8], end: &[u8]) -> Result<(), StoreError> {
        let map = &mut self[index(table)];
        let keys: Vec<Vec<u8>> = map
            .range(start.to_vec()..end.to_vec())
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            map.remove(&k);
        }
        Ok(())
    }
}

impl Store for MemoryStore {
    fn load(&self) -> Result<Loaded, StoreError> {
        let t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let entries = |m: &Map| {
            m.iter()
                .map(|(k, v)| Ok((k.clone(), v.clone())))
                .collect::<Vec<_>>()
                .into_iter()
        };
        codec::load(
            entries(&t[0]),
            entries(&t[1]),
            entries(&t[2]),
            entries(&t[3]),
        )
    }

    fn write(&self, changes: &[Change]) -> Result<(), StoreError> {
        // Only encoding can fail, and `apply` encodes before it writes.
        let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        codec::apply(&mut *t, changes)
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
