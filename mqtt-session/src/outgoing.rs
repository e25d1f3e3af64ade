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
    /// PUBCOMP with 0x92 Packet Identifier not found, outside recovery
    /// (in recovery, after a reconnection, it means the receiver had
    /// completed the flow: [`Delivered`](Outcome::Delivered)).
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
    /// Made when first needed, given back when empty (see
    /// [`shrink_buffers`](Outgoing::shrink_buffers)): an idle session
    /// keeps a pointer's worth.
    queues: Option<alloc::boxed::Box<Queues>>,
    pub(crate) quota: SendQuota,
    pending_limit: usize,
    next_seq: u64,
    /// Flights numbered below this were in flight when the session last
    /// resumed: their PUBREL was sent again in recovery.
    recovered_below: u64,
}

/// Messages waiting and in flight, and the packet identifiers they hold.
#[derive(Clone, Debug, Default)]
pub(crate) struct Queues {
    pub(crate) ids: PacketIds,
    pub(crate) inflight: IdMap<Flight>,
    /// Packet ids whose PUBLISH or PUBREL must be (re)sent, in send order.
    resend: VecDeque<u16>,
    pub(crate) pending: VecDeque<(RequestId, Publish)>,
}

impl Outgoing {
    pub(crate) fn new(pending_limit: usize) -> Outgoing {
        Outgoing {
            queues: None,
            quota: SendQuota::default(),
            pending_limit,
            next_seq: 0,
            recovered_below: 0,
        }
    }

    /// The queues, made if there are none.
    pub(crate) fn queues(&mut self) -> &mut Queues {
        self.queues.get_or_insert_default()
    }

    /// The packet identifiers in use.
    pub(crate) fn ids(&mut self) -> &mut PacketIds {
        &mut self.queues().ids
    }

    /// Messages in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.queues.as_ref().map_or(0, |q| q.inflight.len())
    }

    /// Queues a message; `Err` gives it back when the queue is full.
    pub(crate) fn enqueue(&mut self, request: RequestId, publish: Publish) -> Result<(), Publish> {
        if self.pending_len() >= self.pending_limit {
            return Err(publish);
        }
        self.queues().pending.push_back((request, publish));
        Ok(())
    }

    /// Gives back the memory of empty queues: all of it when nothing is
    /// waiting or in flight and no packet identifier is in use.
    pub(crate) fn shrink_buffers(&mut self) {
        let Some(q) = self.queues.as_mut() else {
            return;
        };
        if q.pending.is_empty()
            && q.resend.is_empty()
            && q.inflight.is_empty()
            && q.ids.in_use() == 0
        {
            self.queues = None;
            return;
        }
        if q.pending.is_empty() {
            q.pending.shrink_to_fit();
        }
        if q.resend.is_empty() {
            q.resend.shrink_to_fit();
        }
        if q.inflight.is_empty() {
            q.inflight.shrink_to_fit();
            q.ids.shrink_to_fit();
        }
    }

    /// Messages waiting for quota or a packet identifier.
    pub(crate) fn pending_len(&self) -> usize {
        self.queues.as_ref().map_or(0, |q| q.pending.len())
    }

    /// How many more messages the queue takes.
    pub(crate) fn space(&self) -> usize {
        self.pending_limit.saturating_sub(self.pending_len())
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
        let Some(q) = self.queues.as_mut() else {
            return;
        };
        let mut sends = 0;
        let mut out = |f: Fill| {
            if let Fill::Send(_) = &f {
                sends += 1;
            }
            out(f);
            sends >= max_sends
        };
        while let Some(&id) = q.resend.front() {
            let Some(flight) = q.inflight.get(&id) else {
                q.resend.pop_front();
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
            q.resend.pop_front();
            if out(Fill::Send(packet)) {
                return;
            }
        }
        while let Some((_, publish)) = q.pending.front() {
            if !accept(publish) {
                if let Some((request, _)) = q.pending.pop_front() {
                    out(Fill::Refused(request));
                }
                continue;
            }
            if publish.qos() == QoS::AtMostOnce {
                if let Some((request, mut publish)) = q.pending.pop_front() {
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
            let Some(id) = q.ids.allocate() else {
                return;
            };
            let Some((request, mut publish)) = q.pending.pop_front() else {
                return;
            };
            self.quota.try_take();
            publish.dup = false;
            publish.qos_pid = QosPid::new(publish.qos(), id);
            let state = match publish.qos() {
                QoS::ExactlyOnce => FlightState::Qos2Sent(publish.clone()),
                _ => FlightState::Qos1Sent(publish.clone()),
            };
            q.inflight.insert(
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
        let q = self.queues.as_mut()?;
        let flight = q.inflight.remove(&id)?;
        q.ids.release(packet_id(id));
        self.quota.give_back();
        Some(flight)
    }

    /// The flight holding `id`, if any.
    fn flight(&self, id: u16) -> Option<&Flight> {
        self.queues.as_ref()?.inflight.get(&id)
    }

    /// PUBACK: ends a QoS 1 flow.
    pub(crate) fn on_puback(
        &mut self,
        id: PacketId,
        reason: PubAckReason,
    ) -> Result<(RequestId, Outcome), UnexpectedAck> {
        match self.flight(id.get()).map(|f| &f.state) {
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
        let flight = self
            .queues
            .as_mut()
            .and_then(|q| q.inflight.get_mut(&id.get()))
            .ok_or(unexpected)?;
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
        match self.flight(id.get()).map(|f| &f.state) {
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
        // 0x92 "is not an error during recovery": the PUBREL was sent
        // again after a reconnection, and the receiver, which owned the
        // message since its PUBREC, had completed it before the connection
        // dropped (the first PUBCOMP was lost).
        let outcome = match reason {
            PubRelReason::PacketIdentifierNotFound if flight.seq >= self.recovered_below => {
                Outcome::NotFound
            }
            _ => Outcome::Delivered(PubAckReason::Success),
        };
        Ok((flight.request, outcome))
    }

    /// A new network connection that resumes the session: the quota starts
    /// again from the peer's Receive Maximum and every message in flight is
    /// sent again, in its original order ([MQTT-4.4.0-1]).
    pub(crate) fn resume(&mut self, receive_maximum: u16) {
        self.quota = SendQuota::new(receive_maximum);
        self.recovered_below = self.next_seq;
        let Some(q) = self.queues.as_mut() else {
            return;
        };
        let mut order: alloc::vec::Vec<(u64, u16)> =
            q.inflight.iter().map(|(&id, f)| (f.seq, id)).collect();
        order.sort_unstable();
        q.resend = order.into_iter().map(|(_, id)| id).collect();
    }

    /// A new network connection on which the peer kept no session: messages
    /// in flight are sent again as new messages, ahead of those waiting.
    /// QoS 2 flows that had reached PUBREL are taken as delivered.
    pub(crate) fn restart(&mut self, receive_maximum: u16) -> alloc::vec::Vec<RequestId> {
        self.quota = SendQuota::new(receive_maximum);
        let Some(q) = self.queues.as_mut() else {
            return alloc::vec::Vec::new();
        };
        q.resend.clear();
        let mut flights: alloc::vec::Vec<Flight> =
            core::mem::take(&mut q.inflight).into_values().collect();
        flights.sort_unstable_by_key(|f| f.seq);
        q.ids = PacketIds::new();
        let mut released = alloc::vec::Vec::new();
        for flight in flights.into_iter().rev() {
            match flight.state {
                FlightState::Qos1Sent(p) | FlightState::Qos2Sent(p) => {
                    q.pending.push_front((flight.request, p));
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
        let Some(q) = self.queues.as_ref() else {
            return (alloc::vec::Vec::new(), alloc::vec::Vec::new());
        };
        let mut flights: alloc::vec::Vec<(u64, PacketId, RequestId, FlightState)> = q
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
            q.pending.iter().cloned().collect(),
        )
    }

    /// Takes over stored messages under their requests: those in flight
    /// keep their ids and order.
    pub(crate) fn restore(
        &mut self,
        inflight: alloc::vec::Vec<(PacketId, RequestId, FlightState)>,
        queued: alloc::vec::Vec<(RequestId, Publish)>,
    ) {
        if inflight.is_empty() && queued.is_empty() {
            return;
        }
        let q = self.queues.get_or_insert_default();
        for (id, request, state) in inflight {
            if q.ids.reserve(id) {
                let seq = self.next_seq;
                self.next_seq += 1;
                q.inflight.insert(
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
            q.pending.push_front(entry);
        }
    }
}

fn packet_id(id: u16) -> PacketId {
    // Keys of `inflight` and `resend` come from PacketId values, never 0.
    PacketId::new(id).unwrap_or(PacketId::MIN)
}
