//! Send quota: the peer's Receive Maximum (MQTT 5 section 4.9).

/// How many more QoS 1 and 2 PUBLISHes may be sent before an acknowledgement
/// comes back. It starts at the peer's Receive Maximum (65,535 when the peer
/// announced none, and for MQTT 3.1.1), falls by one per QoS 1 or 2 PUBLISH
/// sent and rises by one per PUBACK, PUBCOMP or failed PUBREC, never above
/// where it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendQuota {
    max: u16,
    available: u16,
}

impl Default for SendQuota {
    fn default() -> Self {
        SendQuota::new(u16::MAX)
    }
}

impl SendQuota {
    /// A full quota of `max` (a Receive Maximum is never zero; zero is read as 1).
    pub fn new(max: u16) -> SendQuota {
        let max = max.max(1);
        SendQuota {
            max,
            available: max,
        }
    }

    /// The Receive Maximum the quota started from.
    pub fn max(&self) -> u16 {
        self.max
    }

    /// How many more may be sent now.
    pub fn available(&self) -> u16 {
        self.available
    }

    /// How many are in flight against the quota.
    pub fn in_flight(&self) -> u16 {
        self.max - self.available
    }

    /// Takes one unit; `false` (and nothing taken) when none is left.
    pub fn try_take(&mut self) -> bool {
        if self.available == 0 {
            return false;
        }
        self.available -= 1;
        true
    }

    /// Gives one unit back, never above the maximum.
    pub fn give_back(&mut self) {
        self.available = self.available.saturating_add(1).min(self.max);
    }
}
