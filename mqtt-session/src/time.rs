//! Time, as the caller supplies it.

use core::{ops::Add, time::Duration};

/// A point in time on a monotonic clock the caller owns.
///
/// The session never reads a clock: every call that depends on time takes
/// the current `Instant`. Build one from whatever the platform offers, e.g.
/// `Instant::from_duration(start.elapsed())` with `std::time::Instant`, a
/// tick counter on a microcontroller, or simulated time in a test.
///
/// Nanoseconds in a `u64` (8 bytes, where a `Duration` takes 16): about
/// 584 years from the origin, past which instants saturate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(0);

    /// The instant `since_origin` after the clock's origin.
    pub const fn from_duration(since_origin: Duration) -> Instant {
        let nanos = since_origin.as_nanos();
        Instant(if nanos > u64::MAX as u128 {
            u64::MAX
        } else {
            nanos as u64
        })
    }

    /// The instant `ms` milliseconds after the clock's origin.
    pub const fn from_millis(ms: u64) -> Instant {
        Instant(ms.saturating_mul(1_000_000))
    }

    /// Time since the clock's origin.
    pub const fn since_origin(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates at the largest representable instant.
    fn add(self, d: Duration) -> Instant {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(d))
    }
}
