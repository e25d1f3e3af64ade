//! Outgoing QoS 1 and 2 flows, the same for clients and servers.

use crate::{PacketIds, RequestId, SendQuota, ids::IdMap};
use alloc::collections::VecDeque;
use mqtt_codec::{Packet, PacketId, PubAckReason, PubRel, PubRelReason, Publish, QoS, QosPid};

/// Where an outgoing QoS 1 or 2 message stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlightState {
    /// QoS 1, sent, waiting for PUBACK.
    Qos1Sent(Publish),
    /// QoS 2, sent, waiting for PUBREC.
    Qos2Sent(Publish),
    /// QoS 2, PUBREC received and PUBREL sent, waiting for PUBCOMP.
    Released,
}

/// One message in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flight {
    /// The application's handle for it.
    pub request: RequestId,
    /// Send order, for resending in the original order.
    pub seq: u64,
    /// Its state.
    pub state: FlightState,
}

/// What [`Outgoing::fill`] produced.
#[derive(Debug)]
pub(crate) enum Fill {
    /// A packet to transmit.
    Send(Packet),
    /// A message refused before sending.
    Refused(RequestId),
    /// A QoS 0 message handed to the transmit queue (its whole delivery).
    SentAtMostOnce(RequestId),
    /// A QoS 2 message got its packet identifier (reported before its
    /// [`Fill::Send`]).
    Assigned(RequestId, PacketId),
}

/// How an outgoing QoS 1 or 2 message ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// PUBACK or PUBCOMP with success (or the peer's non-error code, e.g.
    /// 0x10 No matching subscribers).
    Delivered(PubAckReason),
    /// PUBACK or PUBREC with a failure code.
    Refused(PubAckReason),
    /// PUBCOMP with 0x92 Packet Identifier not found.
    NotFound,
    /// Not sent: the peer's limits (Maximum QoS, Retain Available, Maximum
    /// Packet Size) exclude it.
    Dropped,
}

/// An acknowledgement that does not fit any message in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{packet} for packet identifier {id}, which is not waiting for it")]
pub struct UnexpectedAck {
    /// The packet that arrived.
    pub packet: &'static str,
    /// Its packet identifier.
    pub id: u16,
}

/// The outgoing half of a session: messages waiting to be sent, messages in
/// flight (in send order), the packet identifiers they hold, and the quota.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    pub(crate) ids: PacketIds,
    pub(crate) quota: SendQuota,
    pub(crate) inflight: IdMap<Flight>,
    /// Packet ids whose PUBLISH or PUBREL must be (re)sent, in send order.
    resend: VecDeque<u16>,
    pub(crate) pending: VecDeque<(RequestId, Publish)>,
    pending_limit: usize,
    next_seq: u64,
}

impl Outgoing {
    pub(crate) fn new(pending_limit: usize) -> Outgoing {
        Outgoing {
            ids: PacketIds::new(),
            quota: SendQuota::default(),
            inflight: IdMap::default(),
            resend: VecDeque::new(),
            pending: VecDeque::new(),
            pending_limit,
            next_seq: 0,
        }
    }

    /// Queues a message; `Err` gives it back when the queue is full.
    pub(crate) fn enqueue(&mut self, request: RequestId, publish: Publish) -> Result<(), Publish> {
        if self.pending.len() >= self.pending_limit {
            return Err(publish);
        }
        self.pending.push_back((request, publish));
        Ok(())
    }

    /// Gives back the memory of empty queues.
    pub(crate) fn shrink_buffers(&mut self) {
        if self.pending.is_empty() {
            self.pending.shrink_to_fit();
        }
        if self.resend.is_empty() {
            self.resend.shrink_to_fit();
        }
        if self.inflight.is_empty() {
            self.inflight.shrink_to_fit();
            self.ids.shrink_to_fit();
        }
    }

    /// Messages waiting for quota or a packet identifier.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// How many more messages the queue takes.
    pub(crate) fn space(&self) -> usize {
        self.pending_limit.saturating_sub(self.pending.len())
    }

    /// Moves messages to the wire while quota and identifiers allow: first
    /// those to resend after a reconnect, in their original order, then new
    /// ones. `accept` may refuse a new message (e.g. too large for the
    /// peer); it is then reported as [`Fill::Refused`] instead of sent. QoS 0
    /// messages need no quota or identifier and are reported as sent.
    /// Stops after `max_sends` packets (one at a time keeps a burst's
    /// messages in one place until they are encoded).
    pub(crate) fn fill(
        &mut self,
        max_sends: usize,
        mut out: impl FnMut(Fill),
        mut accept: impl FnMut(&Publish) -> bool,
    ) {
        let mut sends = 0;
        let mut out = |f: Fill| {
            if let Fill::Send(_) = &f {
                sends += 1;
            }
            out(f);
            sends >= max_sends
        };
        while let Some(&id) = self.resend.front() {
            let Some(flight) = self.inflight.get(&id) else {
                self.resend.pop_front();
                continue;
            };
            // Every flow in flight holds one unit of quota, a QoS 2 flow until
            // PUBCOMP: the server is still processing it, so a resumed
            // connection never has more in flight than the Receive Maximum.
            if !self.quota.try_take() {
                return;
            }
            let packet = match &flight.state {
                FlightState::Released => PubRel::new(packet_id(id)).into(),
                FlightState::Qos1Sent(p) | FlightState::Qos2Sent(p) => {
                    let mut p = p.clone();
                    p.dup = true;
                    p.into()
                }
            };
            self.resend.pop_front();
            if out(Fill::Send(packet)) {
                return;
            }
        }
        while let Some((_, publish)) = self.pending.front() {
            if !accept(publish) {
                if let Some((request, _)) = self.pending.pop_front() {
                    out(Fill::Refused(request));
                }
                continue;
            }
            if publish.qos() == QoS::AtMostOnce {
                if let Some((request, mut publish)) = self.pending.pop_front() {
                    publish.dup = false;
                    out(Fill::SentAtMostOnce(request));
                    if out(Fill::Send(publish.into())) {
                        return;
                    }
                }
                continue;
            }
            if self.quota.available() == 0 {
                return;
            }
            let Some(id) = self.ids.allocate() else {
                return;
            };
            let Some((request, mut publish)) = self.pending.pop_front() else {
                return;
            };
            self.quota.try_take();
            publish.dup = false;
            publish.qos_pid = QosPid::new(publish.qos(), id);
            let state = match publish.qos() {
                QoS::ExactlyOnce => FlightState::Qos2Sent(publish.clone()),
                _ => FlightState::Qos1Sent(publish.clone()),
            };
            self.inflight.insert(
                id.get(),
                Flight {
                    request,
                    seq: self.next_seq,
                    state,
                },
            );
            self.next_seq += 1;
            if publish.qos() == QoS::ExactlyOnce {
                out(Fill::Assigned(request, id));
            }
            if out(Fill::Send(publish.into())) {
                return;
            }
        }
    }

    fn finish(&mut self, id: u16) -> Option<Flight> {
        let flight = self.inflight.remove(&id)?;
        self.ids.release(packet_id(id));
        self.quota.give_back();
        Some(flight)
    }

    /// PUBACK: ends a QoS 1 flow.
    pub(crate) fn on_puback(
        &mut self,
        id: PacketId,
        reason: PubAckReason,
    ) -> Result<(RequestId, Outcome), UnexpectedAck> {
        match self.inflight.get(&id.get()).map(|f| &f.state) {
            Some(FlightState::Qos1Sent(_)) => {}
            _ => {
                return Err(UnexpectedAck {
                    packet: "PUBACK",
                    id: id.get(),
                });
            }
        }
        let flight = self.finish(id.get()).ok_or(UnexpectedAck {
            packet: "PUBACK",
            id: id.get(),
        })?;
        let outcome = if reason.is_error() {
            Outcome::Refused(reason)
        } else {
            Outcome::Delivered(reason)
        };
        Ok((flight.request, outcome))
    }

    /// PUBREC: a failure code ends the QoS 2 flow; success moves it on and
    /// returns the PUBREL to send (with the flow's request). A PUBREC
    /// repeated for a flow already waiting for PUBCOMP is answered with
    /// PUBREL again.
    pub(crate) fn on_pubrec(
        &mut self,
        id: PacketId,
        reason: PubAckReason,
    ) -> Result<PubRecResult, UnexpectedAck> {
        let unexpected = UnexpectedAck {
            packet: "PUBREC",
            id: id.get(),
        };
        let flight = self.inflight.get_mut(&id.get()).ok_or(unexpected)?;
        match flight.state {
            FlightState::Qos2Sent(_) if reason.is_error() => {
                let flight = self.finish(id.get()).ok_or(unexpected)?;
                Ok(Err((flight.request, Outcome::Refused(reason))))
            }
            FlightState::Qos2Sent(_) | FlightState::Released => {
                flight.state = FlightState::Released;
                Ok(Ok((flight.request, PubRel::new(id))))
            }
            FlightState::Qos1Sent(_) => Err(unexpected),
        }
    }

    /// PUBCOMP: ends a QoS 2 flow.
    pub(crate) fn on_pubcomp(
        &mut self,
        id: PacketId,
        reason: PubRelReason,
    ) -> Result<(RequestId, Outcome), UnexpectedAck> {
        match self.inflight.get(&id.get()).map(|f| &f.state) {
            Some(FlightState::Released) => {}
            _ => {
                return Err(UnexpectedAck {
                    packet: "PUBCOMP",
                    id: id.get(),
                });
            }
        }
        let flight = self.finish(id.get()).ok_or(UnexpectedAck {
            packet: "PUBCOMP",
            id: id.get(),
        })?;
        let outcome = match reason {
            PubRelReason::PacketIdentifierNotFound => Outcome::NotFound,
            _ => Outcome::Delivered(PubAckReason::Success),
        };
        Ok((flight.request, outcome))
    }

    /// A new network connection that resumes the session: the quota starts
    /// again from the peer's Receive Maximum and every message in flight is
    /// sent again, in its original order ([MQTT-4.4.0-1]).
    pub(crate) fn resume(&mut self, receive_maximum: u16) {
        self.quota = SendQuota::new(receive_maximum);
        let mut order: alloc::vec::Vec<(u64, u16)> =
            self.inflight.iter().map(|(&id, f)| (f.seq, id)).collect();
        order.sort_unstable();
        self.resend = order.into_iter().map(|(_, id)| id).collect();
    }

    /// A new network connection on which the peer kept no session: messages
    /// in flight are sent again as new messages, ahead of those waiting.
    /// QoS 2 flows that had reached PUBREL are taken as delivered.
    pub(crate) fn restart(&mut self, receive_maximum: u16) -> alloc::vec::Vec<RequestId> {
        self.quota = SendQuota::new(receive_maximum);
        self.resend.clear();
        let mut flights: alloc::vec::Vec<Flight> =
            core::mem::take(&mut self.inflight).into_values().collect();
        flights.sort_unstable_by_key(|f| f.seq);
        self.ids = PacketIds::new();
        let mut released = alloc::vec::Vec::new();
        for flight in flights.into_iter().rev() {
            match flight.state {
                FlightState::Qos1Sent(p) | FlightState::Qos2Sent(p) => {
                    self.pending.push_front((flight.request, p));
                }
                FlightState::Released => released.push(flight.request),
            }
        }
        released.reverse();
        released
    }
}

/// Messages in flight (in send order) and waiting, each with its request.
pub(crate) type Snapshot = (
    alloc::vec::Vec<(PacketId, RequestId, FlightState)>,
    alloc::vec::Vec<(RequestId, Publish)>,
);

/// A successful PUBREC's request and the PUBREL to send, or the request a
/// failed PUBREC ended.
pub(crate) type PubRecResult = Result<(RequestId, PubRel), (RequestId, Outcome)>;

impl Outgoing {
    /// Messages in flight in send order, and messages waiting, each with
    /// its request.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut flights: alloc::vec::Vec<(u64, PacketId, RequestId, FlightState)> = self
            .inflight
            .iter()
            .map(|(&id, f)| (f.seq, packet_id(id), f.request, f.state.clone()))
            .collect();
        flights.sort_unstable_by_key(|(seq, ..)| *seq);
        (
            flights
                .into_iter()
                .map(|(_, id, request, state)| (id, request, state))
                .collect(),
            self.pending.iter().cloned().collect(),
        )
    }

    /// Takes over stored messages under their requests: those in flight
    /// keep their ids and order.
    pub(crate) fn restore(
        &mut self,
        inflight: alloc::vec::Vec<(PacketId, RequestId, FlightState)>,
        queued: alloc::vec::Vec<(RequestId, Publish)>,
    ) {
        for (id, request, state) in inflight {
            if self.ids.reserve(id) {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.inflight.insert(
                    id.get(),
                    Flight {
                        request,
                        seq,
                        state,
                    },
                );
            }
        }
        // Stored messages are older than any queued since: they go first.
        for entry in queued.into_iter().rev() {
            self.pending.push_front(entry);
        }
    }
}

fn packet_id(id: u16) -> PacketId {
    // Keys of `inflight` and `resend` come from PacketId values, never 0.
    PacketId::new(id).unwrap_or(PacketId::MIN)
}
