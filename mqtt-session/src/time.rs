//! Time, as the caller supplies it.

use core::{ops::Add, time::Duration};

/// A point in time on a monotonic clock the caller owns.
///
/// The session never reads a clock: every call that depends on time takes
/// the current `Instant`. Build one from whatever the platform offers, e.g.
/// `Instant::from_duration(start.elapsed())` with `std::time::Instant`, a
/// tick counter on a microcontroller, or simulated time in a test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `since_origin` after the clock's origin.
    pub const fn from_duration(since_origin: Duration) -> Instant {
        Instant(since_origin)
    }

    /// The instant `ms` milliseconds after the clock's origin.
    pub const fn from_millis(ms: u64) -> Instant {
        Instant(Duration::from_millis(ms))
    }

    /// Time since the clock's origin.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates at the largest representable instant.
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.checked_add(d).unwrap_or(Duration::MAX))
    }
}
