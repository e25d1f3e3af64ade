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
/// skipping those in use, and wrap to 1 within a range kept at least twice
/// the number in use (so up to 65535): a bit per identifier of that range
/// records which are in use, a few bytes for a session with a few messages
/// in flight.
#[derive(Clone, Debug, Default)]
pub struct PacketIds {
    last: u16,
    count: u32,
    /// Bit `i % 64` of word `i / 64`: identifier `i` is in use (bit 0 of
    /// word 0, identifier 0, never is).
    words: alloc::vec::Vec<u64>,
}

/// Identifiers a range starts with.
const FIRST_RANGE_WORDS: usize = 2;
/// Words covering every identifier.
const ALL_WORDS: usize = 1 << 10;

impl PacketIds {
    /// An allocator with nothing in use.
    pub fn new() -> PacketIds {
        PacketIds::default()
    }

    /// The identifiers handed out lie in `1..end`.
    fn end(&self) -> u32 {
        (self.words.len() * 64) as u32
    }

    fn grow_to(&mut self, words: usize) {
        if self.words.len() < words {
            self.words.resize(words.min(ALL_WORDS), 0);
        }
    }

    fn is_set(&self, id: u16) -> bool {
        self.words
            .get(usize::from(id / 64))
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// A free identifier, now in use; `None` when all 65,535 are in use.
    pub fn allocate(&mut self) -> Option<PacketId> {
        if self.count >= u32::from(u16::MAX) {
            return None;
        }
        // Keep the range at least twice what is in use: free identifiers
        // are then found within a word or two.
        if (self.count + 1) * 2 > self.end() {
            let words = (self.words.len() * 2).max(FIRST_RANGE_WORDS);
            self.grow_to(words);
        }
        let end = self.end();
        let mut at = u32::from(self.last) + 1;
        loop {
            if at >= end {
                at = 1;
            }
            let word = self.words[(at / 64) as usize];
            // The free bits of this word at or after `at`.
            let free = !word & (u64::MAX << (at % 64));
            if free != 0 {
                let id = (at & !63) + free.trailing_zeros();
                if id < end {
                    let id = id as u16;
                    self.words[usize::from(id / 64)] |= 1 << (id % 64);
                    self.count += 1;
                    self.last = id;
                    return PacketId::new(id);
                }
            }
            at = (at & !63) + 64;
        }
    }

    /// Marks `id` as in use (when restoring stored session state); `false`
    /// if it already was.
    pub fn reserve(&mut self, id: PacketId) -> bool {
        let id = id.get();
        if self.is_set(id) {
            return false;
        }
        self.grow_to(usize::from(id / 64) + 1);
        self.words[usize::from(id / 64)] |= 1 << (id % 64);
        self.count += 1;
        true
    }

    /// Frees `id`; `false` if it was not in use.
    pub fn release(&mut self, id: PacketId) -> bool {
        let id = id.get();
        if !self.is_set(id) {
            return false;
        }
        self.words[usize::from(id / 64)] &= !(1 << (id % 64));
        self.count -= 1;
        true
    }

    /// Whether `id` is in use.
    pub fn is_in_use(&self, id: PacketId) -> bool {
        self.is_set(id.get())
    }

    /// How many identifiers are in use.
    pub fn in_use(&self) -> usize {
        self.count as usize
    }

    /// Gives back memory beyond what the identifiers in use need.
    pub fn shrink_to_fit(&mut self) {
        if self.count == 0 {
            self.words = alloc::vec::Vec::new();
            self.last = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hands_out_in_order_and_skips_ids_in_use() {
        let mut ids = PacketIds::new();
        assert_eq!(ids.allocate().map(PacketId::get), Some(1));
        assert_eq!(ids.allocate().map(PacketId::get), Some(2));
        assert!(ids.release(PacketId::MIN));
        assert!(!ids.release(PacketId::MIN));
        assert!(ids.reserve(PacketId::new(3).expect("non-zero")));
        assert!(!ids.reserve(PacketId::new(3).expect("non-zero")));
        assert_eq!(ids.allocate().map(PacketId::get), Some(4));
        // The range wraps to 1 (free again), then skips 2, 3 and 4.
        ids.last = (ids.end() - 1) as u16;
        assert_eq!(ids.allocate().map(PacketId::get), Some(1));
        assert_eq!(ids.allocate().map(PacketId::get), Some(5));
    }

    #[test]
    fn a_reserved_high_id_is_respected() {
        let mut ids = PacketIds::new();
        assert!(ids.reserve(PacketId::new(u16::MAX).expect("non-zero")));
        assert!(ids.is_in_use(PacketId::new(u16::MAX).expect("non-zero")));
        assert_eq!(ids.allocate().map(PacketId::get), Some(1));
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

    proptest! {
        /// Against a set of the identifiers in use: never one handed out
        /// twice, `None` only when all are taken, the count right.
        #[test]
        fn never_hands_out_an_id_in_use(
            ops in proptest::collection::vec((0..4u8, 1..=u16::MAX), 1..400),
        ) {
            let mut ids = PacketIds::new();
            let mut model = std::collections::BTreeSet::new();
            for (op, raw) in ops {
                let id = PacketId::new(raw).expect("non-zero");
                match op {
                    0 | 1 => {
                        let got = ids.allocate().expect("free ids remain");
                        prop_assert!(model.insert(got.get()), "{} handed out twice", got.get());
                    }
                    2 => prop_assert_eq!(ids.reserve(id), model.insert(raw)),
                    _ => {
                        // Release one in use (the nearest at or after `raw`), or `raw`.
                        let victim = model.range(raw..).next().copied().unwrap_or(raw);
                        let id = PacketId::new(victim).expect("non-zero");
                        prop_assert_eq!(ids.release(id), model.remove(&victim));
                    }
                }
                prop_assert_eq!(ids.in_use(), model.len());
                prop_assert!(ids.end() <= 65536);
            }
            for &id in &model {
                prop_assert!(ids.is_in_use(PacketId::new(id).expect("non-zero")));
            }
        }
    }
}
