//! A write-ahead journal: an append-only file of checksummed records,
//! each one transaction's table operations, made durable with one
//! `fdatasync`.
//!
//! A file store writes each transaction to its tables without waiting for
//! the disk and appends it here; the append's `fdatasync` is the commit.
//! Now and then the tables are made durable themselves (a checkpoint) and
//! the journal starts again empty. After a crash the tables hold the state
//! of the last checkpoint, and replaying the journal's records over them
//! brings back every commit since. Replay is safe however much of the
//! journal the tables already hold, because every operation sets a key's
//! value outright (put, delete, delete a range): applying a suffix of the
//! history again leaves each key as its last operation left it.
//!
//! The file is written full of zeros once, and records overwrite it from
//! the start: an `fdatasync` of an overwrite has no file size or block
//! allocation to record, and costs about half that of an append on ext4.
//! Emptying the journal starts a new epoch (a random number), written in
//! the file's header; records carry their epoch, so what earlier epochs
//! left further on in the file is never read as current.
//!
//! Layout: a header (8 bytes of magic, the epoch as u64 LE), then records:
//! payload length (u32 LE), CRC-32 of the payload (u32 LE), payload (the
//! epoch as u64 LE, then the operations). Replay reads records from the
//! start while they are whole, pass their checksum and carry the current
//! epoch. A record is written only after the one before it, so after a
//! crash a bad record can only be the last of the epoch, from a write the
//! crash interrupted: it was never acknowledged (its sync had not
//! returned), and replay stops there.

use super::{StoreError, codec::Table};
use std::{
    fs::{File, OpenOptions},
    io::Read,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

/// Identifies a journal file (and its layout).
const MAGIC: &[u8; 8] = b"MQTTJRN1";
/// The header: magic and epoch.
const HEADER: u64 = 16;
/// The size the file is written to, zeros, before records overwrite it.
pub(crate) const CAPACITY: u64 = 8 << 20;

/// The largest record read back (a transaction's operations); anything
/// longer is taken as damage.
const MAX_RECORD: u32 = 1 << 30;

/// One table operation as journalled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum JournalOp {
    /// Sets a key's value.
    Put(Table, Vec<u8>, Vec<u8>),
    /// Removes a key.
    Delete(Table, Vec<u8>),
    /// Removes the keys in `start..end`.
    DeleteRange(Table, Vec<u8>, Vec<u8>),
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Engine(format!("{}: {e}", path.display()))
}

/// The journal file.
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    /// The current epoch: records of others are not replayed.
    epoch: u64,
    /// Where the next record goes.
    end: u64,
    /// The file's size, all of it written (zeros where no record is).
    capacity: u64,
}

impl Journal {
    /// Opens (creating) the journal at `path` and returns it with the
    /// records of its current epoch, in order, up to the first damaged
    /// one. Call [`reset`](Journal::reset) once they are durable elsewhere,
    /// before appending.
    pub(crate) fn open(path: &Path) -> Result<(Journal, Vec<Vec<JournalOp>>), StoreError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io(path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| io(path, e))?;
        // Empty, or cut short or all zeros before its header was written
        // (a crash while it was first made): nothing was journalled yet.
        let fresh = bytes.iter().take(HEADER as usize).all(|&b| b == 0)
            || (bytes.len() < HEADER as usize && MAGIC.starts_with(&bytes));
        let (epoch, records) = if fresh {
            (0, Vec::new())
        } else {
            let header = bytes
                .get(..HEADER as usize)
                .filter(|h| h.starts_with(MAGIC))
                .ok_or_else(|| StoreError::Corrupt(format!("{}: not a journal", path.display())))?;
            let mut epoch = [0; 8];
            epoch.copy_from_slice(&header[8..16]);
            let epoch = u64::from_le_bytes(epoch);
            (epoch, read_records(&bytes[HEADER as usize..], epoch)?.0)
        };
        let journal = Journal {
            path: path.to_path_buf(),
            file,
            epoch,
            end: HEADER,
            capacity: bytes.len() as u64,
        };
        Ok((journal, records))
    }

    /// Bytes of records in the current epoch.
    pub(crate) fn len(&self) -> u64 {
        self.end - HEADER
    }

    /// Whether a record of this payload length fits in the file.
    pub(crate) fn fits(&self, payload: usize) -> bool {
        self.end + 16 + payload as u64 <= self.capacity
    }

    /// Appends one record (on disk after the next sync of the file).
    pub(crate) fn append(&mut self, ops: &[u8]) -> Result<(), StoreError> {
        if !self.fits(ops.len()) {
            // Larger than the whole file: make room (rare; a checkpoint
            // empties the journal first when it is merely full).
            self.grow(self.end + 16 + ops.len() as u64)?;
        }
        let len = u32::try_from(8 + ops.len())
            .ok()
            .filter(|&l| l <= MAX_RECORD)
            .ok_or_else(|| StoreError::Engine("transaction too large to journal".into()))?;
        let mut record = Vec::with_capacity(16 + ops.len());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&[0; 4]);
        record.extend_from_slice(&self.epoch.to_le_bytes());
        record.extend_from_slice(ops);
        let crc = crc32(&record[8..]);
        record[4..8].copy_from_slice(&crc.to_le_bytes());
        self.file
            .write_all_at(&record, self.end)
            .map_err(|e| io(&self.path, e))?;
        self.end += record.len() as u64;
        Ok(())
    }

    /// A second handle on the file, to sync it from another thread: a
    /// sync through it makes every record appended before it durable.
    pub(crate) fn handle(&self) -> Result<File, StoreError> {
        self.file.try_clone().map_err(|e| io(&self.path, e))
    }

    /// Empties the journal, once everything in it is durable elsewhere:
    /// a new epoch starts, and the file is made full size if it is not.
    pub(crate) fn reset(&mut self) -> Result<(), StoreError> {
        self.grow(CAPACITY)?;
        self.epoch = new_epoch(self.epoch)?;
        let mut header = [0; HEADER as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..].copy_from_slice(&self.epoch.to_le_bytes());
        self.file
            .write_all_at(&header, 0)
            .map_err(|e| io(&self.path, e))?;
        self.file.sync_all().map_err(|e| io(&self.path, e))?;
        self.end = HEADER;
        Ok(())
    }

    /// Writes zeros up to `size` bytes, if the file is shorter.
    fn grow(&mut self, size: u64) -> Result<(), StoreError> {
        const CHUNK: usize = 1 << 20;
        let zeros = vec![0; CHUNK];
        while self.capacity < size {
            let n = (size - self.capacity).min(CHUNK as u64) as usize;
            self.file
                .write_all_at(&zeros[..n], self.capacity)
                .map_err(|e| io(&self.path, e))?;
            self.capacity += n as u64;
        }
        self.file.sync_all().map_err(|e| io(&self.path, e))
    }
}

/// A random epoch other than `old`. Random, not counted: bytes of an
/// earlier epoch's records (message payloads among them, chosen by
/// clients) cannot be made to pass for a record of the next epoch.
fn new_epoch(old: u64) -> Result<u64, StoreError> {
    loop {
        let mut bytes = [0; 8];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Engine(format!("no randomness for the journal: {e}")))?;
        let epoch = u64::from_le_bytes(bytes);
        if epoch != old {
            return Ok(epoch);
        }
    }
}

/// Encodes one transaction's operations as a record payload.
pub(crate) fn encode(ops: &[JournalOp]) -> Vec<u8> {
    fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    }
    let mut out = Vec::new();
    for op in ops {
        match op {
            JournalOp::Put(t, k, v) => {
                out.extend_from_slice(&[1, table_byte(*t)]);
                bytes(&mut out, k);
                bytes(&mut out, v);
            }
            JournalOp::Delete(t, k) => {
                out.extend_from_slice(&[2, table_byte(*t)]);
                bytes(&mut out, k);
            }
            JournalOp::DeleteRange(t, start, end) => {
                out.extend_from_slice(&[3, table_byte(*t)]);
                bytes(&mut out, start);
                bytes(&mut out, end);
            }
        }
    }
    out
}

fn table_byte(t: Table) -> u8 {
    match t {
        Table::Sessions => 0,
        Table::Messages => 1,
        Table::Awaiting => 2,
        Table::Retained => 3,
    }
}

fn table_from(b: u8) -> Option<Table> {
    Some(match b {
        0 => Table::Sessions,
        1 => Table::Messages,
        2 => Table::Awaiting,
        3 => Table::Retained,
        _ => return None,
    })
}

fn corrupt() -> StoreError {
    StoreError::Corrupt("journal record".into())
}

/// Decodes a record payload. A payload that passed its checksum and does
/// not decode is an error (not a torn write): the file is not ours.
fn decode(mut p: &[u8]) -> Result<Vec<JournalOp>, StoreError> {
    fn take<'a>(p: &mut &'a [u8], n: usize) -> Result<&'a [u8], StoreError> {
        if p.len() < n {
            return Err(corrupt());
        }
        let (head, rest) = p.split_at(n);
        *p = rest;
        Ok(head)
    }
    fn bytes(p: &mut &[u8]) -> Result<Vec<u8>, StoreError> {
        let len = take(p, 4)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        Ok(take(p, len)?.to_vec())
    }
    let mut ops = Vec::new();
    while !p.is_empty() {
        let head = take(&mut p, 2)?;
        let table = table_from(head[1]).ok_or_else(corrupt)?;
        ops.push(match head[0] {
            1 => JournalOp::Put(table, bytes(&mut p)?, bytes(&mut p)?),
            2 => JournalOp::Delete(table, bytes(&mut p)?),
            3 => JournalOp::DeleteRange(table, bytes(&mut p)?, bytes(&mut p)?),
            _ => return Err(corrupt()),
        });
    }
    Ok(ops)
}

/// The records of `epoch` in `bytes`, up to the first one cut short,
/// failing its checksum or of another epoch, and the length of those
/// whole records.
pub(crate) fn read_records(
    mut bytes: &[u8],
    epoch: u64,
) -> Result<(Vec<Vec<JournalOp>>, usize), StoreError> {
    let mut records = Vec::new();
    let mut valid = 0;
    while bytes.len() >= 8 {
        let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let Some(payload) = bytes
            .get(8..8 + len as usize)
            .filter(|_| (8..=MAX_RECORD).contains(&len))
        else {
            break;
        };
        if crc32(payload) != crc || payload[..8] != epoch.to_le_bytes() {
            break;
        }
        records.push(decode(&payload[8..])?);
        bytes = &bytes[8 + len as usize..];
        valid += 8 + len as usize;
    }
    Ok((records, valid))
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it).
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    fn op() -> impl Strategy<Value = JournalOp> {
        let table = prop_oneof![
            Just(Table::Sessions),
            Just(Table::Messages),
            Just(Table::Awaiting),
            Just(Table::Retained)
        ];
        let b = || proptest::collection::vec(any::<u8>(), 0..40);
        prop_oneof![
            (table.clone(), b(), b()).prop_map(|(t, k, v)| JournalOp::Put(t, k, v)),
            (table.clone(), b()).prop_map(|(t, k)| JournalOp::Delete(t, k)),
            (table, b(), b()).prop_map(|(t, s, e)| JournalOp::DeleteRange(t, s, e)),
        ]
    }

    fn file_of(records: &[Vec<JournalOp>], epoch: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            let mut p = epoch.to_le_bytes().to_vec();
            p.extend_from_slice(&encode(r));
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(&crc32(&p).to_le_bytes());
            out.extend_from_slice(&p);
        }
        out
    }

    proptest! {
        /// Records read back as written; a file cut anywhere reads back as
        /// the whole records before the cut; a flipped byte never yields
        /// a record that was not written (only a prefix of them); records
        /// of an earlier epoch after the current ones are not read.
        #[test]
        fn records_round_trip_and_torn_tails_are_dropped(
            records in proptest::collection::vec(proptest::collection::vec(op(), 0..5), 0..6),
            stale in proptest::collection::vec(proptest::collection::vec(op(), 0..5), 0..3),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let file = file_of(&records, 7);
            prop_assert_eq!(read_records(&file, 7).unwrap(), (records.clone(), file.len()));
            let mut with_stale = file.clone();
            with_stale.extend_from_slice(&file_of(&stale, 6));
            prop_assert_eq!(read_records(&with_stale, 7).unwrap(), (records.clone(), file.len()));
            if !file.is_empty() {
                let at = cut.index(file.len());
                let (read, valid) = read_records(&file[..at], 7).unwrap();
                prop_assert!(read.len() <= records.len());
                prop_assert_eq!(&read[..], &records[..read.len()]);
                prop_assert_eq!(file_of(&read, 7).len(), valid);
                prop_assert!(valid <= at);

                let mut damaged = file.clone();
                damaged[flip.index(file.len())] ^= 0x5A;
                if let Ok((read, _)) = read_records(&damaged, 7) {
                    prop_assert_eq!(&read[..], &records[..read.len()]);
                }
            }
        }
    }

    #[test]
    fn records_survive_reopening_and_reset_starts_an_epoch() {
        let path = std::env::temp_dir().join(format!("mqtt-journal-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let a = vec![JournalOp::Put(
            Table::Messages,
            b"k".to_vec(),
            b"v".to_vec(),
        )];
        let b = vec![
            JournalOp::Delete(Table::Retained, b"t".to_vec()),
            JournalOp::DeleteRange(Table::Awaiting, b"a".to_vec(), b"b".to_vec()),
        ];
        {
            let (mut j, records) = Journal::open(&path).unwrap();
            assert!(records.is_empty());
            j.reset().unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), CAPACITY);
            j.append(&encode(&a)).unwrap();
            j.append(&encode(&b)).unwrap();
            j.handle().unwrap().sync_data().unwrap();
        }
        let (mut j, records) = Journal::open(&path).unwrap();
        assert_eq!(records, vec![a.clone(), b.clone()]);
        // A new epoch: the old records are still in the file, not read.
        j.reset().unwrap();
        j.append(&encode(&b)).unwrap();
        drop(j);
        let (mut j, records) = Journal::open(&path).unwrap();
        assert_eq!(records, vec![b]);
        // A record larger than the file grows it.
        j.reset().unwrap();
        let big = vec![JournalOp::Put(
            Table::Retained,
            b"t".to_vec(),
            vec![1; CAPACITY as usize],
        )];
        j.append(&encode(&big)).unwrap();
        drop(j);
        assert_eq!(Journal::open(&path).unwrap().1, vec![big]);
        std::fs::write(&path, b"something else").unwrap();
        assert!(Journal::open(&path).is_err());
        // A journal whose making was interrupted (zeros, no header yet).
        std::fs::write(&path, vec![0; 4096]).unwrap();
        let (mut j, records) = Journal::open(&path).unwrap();
        assert!(records.is_empty());
        j.reset().unwrap();
        j.append(&encode(&a)).unwrap();
        drop(j);
        assert_eq!(Journal::open(&path).unwrap().1, vec![a.clone()]);
        std::fs::remove_file(&path).unwrap();
    }
}
