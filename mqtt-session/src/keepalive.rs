//! Keep-alive timing.

use crate::Instant;
use core::time::Duration;

/// The client side of keep-alive: send PINGREQ when nothing was sent for
/// the interval ([MQTT-3.1.2-20]), and declare the connection lost when no
/// packet at all arrives within `response_timeout` of a PINGREQ.
#[derive(Clone, Debug)]
pub(crate) struct ClientKeepAlive {
    pub(crate) interval: Option<Duration>,
    pub(crate) response_timeout: Duration,
    pub(crate) last_sent: Instant,
    pub(crate) ping_sent: Option<Instant>,
}

/// What the keep-alive timer wants now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeepAliveAction {
    Nothing,
    SendPing,
    Lost,
}

impl ClientKeepAlive {
    pub(crate) fn new(
        interval: Option<Duration>,
        response_timeout: Duration,
        now: Instant,
    ) -> ClientKeepAlive {
        ClientKeepAlive {
            interval,
            response_timeout,
            last_sent: now,
            ping_sent: None,
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match (self.ping_sent, self.interval) {
            (Some(sent), _) => Some(sent + self.response_timeout),
            (None, Some(i)) => Some(self.last_sent + i),
            (None, None) => None,
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) -> KeepAliveAction {
        match (self.ping_sent, self.interval) {
            (Some(sent), _) if now >= sent + self.response_timeout => KeepAliveAction::Lost,
            (None, Some(i)) if now >= self.last_sent + i => KeepAliveAction::SendPing,
            _ => KeepAliveAction::Nothing,
        }
    }

    pub(crate) fn on_sent(&mut self, now: Instant, ping: bool) {
        self.last_sent = now;
        if ping && self.ping_sent.is_none() {
            self.ping_sent = Some(now);
        }
    }

    /// Any packet from the peer shows the connection is alive.
    pub(crate) fn on_received(&mut self) {
        self.ping_sent = None;
    }
}
