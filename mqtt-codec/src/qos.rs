//! Quality of service levels and packet identifiers.

use core::num::NonZeroU16;

/// Quality of service of a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum QoS {
    /// QoS 0: at most once, no acknowledgement.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: at least once, acknowledged by PUBACK.
    AtLeastOnce = 1,
    /// QoS 2: exactly once, PUBREC / PUBREL / PUBCOMP.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a two-bit value; `None` for the forbidden value 3.
    #[inline]
    pub const fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// A packet identifier: never zero ([MQTT-2.3.1-1]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// The smallest identifier, 1.
    pub const MIN: PacketId = PacketId(NonZeroU16::MIN);

    /// A packet identifier, or `None` for zero.
    #[inline]
    pub const fn new(id: u16) -> Option<PacketId> {
        match NonZeroU16::new(id) {
            Some(v) => Some(PacketId(v)),
            None => None,
        }
    }

    /// The identifier's value.
    #[inline]
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// The next identifier, wrapping from 65535 to 1.
    #[inline]
    pub const fn next(self) -> PacketId {
        match NonZeroU16::new(self.0.get().wrapping_add(1)) {
            Some(v) => PacketId(v),
            None => PacketId::MIN,
        }
    }
}

impl From<PacketId> for u16 {
    fn from(id: PacketId) -> u16 {
        id.get()
    }
}

impl core::fmt::Display for PacketId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}
