//! Packet identifier allocation.

use alloc::collections::BTreeSet;
use mqtt_codec::PacketId;

/// Hands out packet identifiers for one direction of a session, never one
/// that is still in use (PUBLISH at QoS 1 and 2, SUBSCRIBE and UNSUBSCRIBE
/// share the space). Identifiers are handed out in increasing order,
/// wrapping from 65535 to 1, skipping those in use.
#[derive(Clone, Debug, Default)]
pub struct PacketIds {
    last: u16,
    in_use: BTreeSet<u16>,
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
