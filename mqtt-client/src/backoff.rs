//! Randomness for reconnection jitter and generated client identifiers.

use mqtt_codec::MqttStr;
use std::hash::{BuildHasher, Hasher, RandomState};

/// A small non-cryptographic generator (xorshift64*) seeded from the
/// process's hash randomness: enough to spread reconnections apart.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new() -> Rng {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        Rng(h.finish() | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..1`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `mqtt` and 16 hex digits: 20 alphanumeric characters, which every
/// server accepts ([MQTT-3.1.3-5]: 1 to 23 of `0-9a-zA-Z`).
pub(crate) fn random_client_id() -> MqttStr {
    let id = format!("mqtt{:016x}", Rng::new().next_u64());
    MqttStr::try_from(id.as_str()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Reconnect;
    use std::time::Duration;

    #[test]
    fn delays_grow_to_the_cap_and_jitter_only_shortens() {
        let r = Reconnect::default();
        assert_eq!(r.delay(0, 0.0), Duration::from_millis(100));
        assert_eq!(r.delay(3, 0.0), Duration::from_millis(800));
        assert_eq!(r.delay(30, 0.0), Duration::from_secs(30));
        assert_eq!(r.delay(0, 1.0), Duration::from_millis(50));
        let mut rng = Rng::new();
        for _ in 0..1000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            let d = r.delay(2, u);
            assert!(d > Duration::from_millis(200) && d <= Duration::from_millis(400));
        }
    }

    #[test]
    fn generated_ids_are_valid_for_3_1_1() {
        let id = random_client_id();
        assert_eq!(id.len(), 20);
        assert!(id.as_str().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(id, random_client_id());
    }
}
