//! Packet identifier allocation.

use core::hash::{BuildHasherDefault, Hasher};
use mqtt_codec::PacketId;

/// Hashes packet identifiers: one multiplication spreads identifiers
/// handed out in sequence over the table. Tables keyed by it hold only
/// identifiers this side handed out, so a peer cannot crowd them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u16(&mut self, n: u16) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A table keyed by packet identifier.
pub(crate) type IdMap<V> = hashbrown::HashMap<u16, V, BuildHasherDefault<IdHasher>>;

/// Hands out packet identifiers for one direction of a session, never one
/// that is still in use (PUBLISH at QoS 1 and 2, SUBSCRIBE and UNSUBSCRIBE
/// share the space). Identifiers are handed out in increasing order,
/// wrapping from 65535 to 1, skipping those in use.
#[derive(Clone, Debug, Default)]
pub struct PacketIds {
    last: u16,
    in_use: hashbrown::HashSet<u16, BuildHasherDefault<IdHasher>>,
}

impl PacketIds {
    /// An allocator with nothing in use.
    pub fn new() -> PacketIds {
        PacketIds::default()
    }

    /// A free identifier, now in use; `None` when all 65,535 are in use.
    pub fn allocate(&mut self) -> Option<PacketId> {
        if self.in_use.len() >= usize::from(u16::MAX) {
            return None;
        }
        let mut candidate = PacketId::new(self.last).map_or(PacketId::MIN, PacketId::next);
        while self.in_use.contains(&candidate.get()) {
            candidate = candidate.next();
        }
        self.in_use.insert(candidate.get());
        self.last = candidate.get();
        Some(candidate)
    }

    /// Marks `id` as in use (when restoring stored session state); `false`
    /// if it already was.
    pub fn reserve(&mut self, id: PacketId) -> bool {
        self.in_use.insert(id.get())
    }

    /// Frees `id`; `false` if it was not in use.
    pub fn release(&mut self, id: PacketId) -> bool {
        self.in_use.remove(&id.get())
    }

    /// Whether `id` is in use.
    pub fn is_in_use(&self, id: PacketId) -> bool {
        self.in_use.contains(&id.get())
    }

    /// How many identifiers are in use.
    pub fn in_use(&self) -> usize {
        self.in_use.len()
    }

    /// Gives back memory beyond what the identifiers in use need.
    pub fn shrink_to_fit(&mut self) {
        self.in_use.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_skips_ids_in_use() {
        let mut ids = PacketIds::new();
        assert_eq!(ids.allocate().map(PacketId::get), Some(1));
        assert_eq!(ids.allocate().map(PacketId::get), Some(2));
        assert!(ids.release(PacketId::MIN));
        ids.last = u16::MAX - 1;
        assert_eq!(ids.allocate().map(PacketId::get), Some(u16::MAX));
        // 1 is free again, 2 is still in use.
        assert_eq!(ids.allocate().map(PacketId::get), Some(1));
        assert_eq!(ids.allocate().map(PacketId::get), Some(3));
    }

    #[test]
    fn exhausts_at_65535() {
        let mut ids = PacketIds::new();
        for _ in 0..u16::MAX {
            assert!(ids.allocate().is_some());
        }
        assert_eq!(ids.allocate(), None);
        assert!(ids.release(PacketId::new(777).expect("non-zero")));
        assert_eq!(ids.allocate().map(PacketId::get), Some(777));
    }
}
