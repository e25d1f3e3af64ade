//! The byte layout of stored records, shared by every file-backed store.
//!
//! Every value starts with a format version byte. Messages are kept as
//! MQTT 5 PUBLISH packets (the richest form, from which any version is
//! sent). Keys that belong to a session start with its client identifier
//! and a zero byte (which MQTT strings never contain, [MQTT-1.5.4-2]), so
//! one session's records sort together.

use super::{MessageState, StoreError, StoredMessage, StoredRetained, StoredSession};
use crate::subscriptions::Subscriber;
use bytes::{Buf, BufMut, BytesMut};
use mqtt_codec::{
    Decoder, Encode, Packet, PacketId, ProtocolVersion, Publish, QoS, RetainHandling,
    SubscriptionOptions, TopicFilter,
};
use std::num::NonZeroU32;

const FORMAT: u8 = 1;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// The key of a session's record numbered `n` (big-endian, so numbers sort).
pub(crate) fn session_key(client_id: &str, n: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(client_id.len() + 1 + n.len());
    k.extend_from_slice(client_id.as_bytes());
    k.push(0);
    k.extend_from_slice(n);
    k
}

/// The range of keys of one session's records.
pub(crate) fn session_range(client_id: &str) -> (Vec<u8>, Vec<u8>) {
    let mut start = client_id.as_bytes().to_vec();
    start.push(0);
    let mut end = client_id.as_bytes().to_vec();
    end.push(1);
    (start, end)
}

/// Splits a session record key into the client id and the number's bytes.
pub(crate) fn split_key(key: &[u8]) -> Result<(&str, &[u8]), StoreError> {
    let zero = key
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| corrupt("key"))?;
    let id = std::str::from_utf8(&key[..zero]).map_err(|_| corrupt("key"))?;
    Ok((id, &key[zero + 1..]))
}

fn put_publish(out: &mut BytesMut, p: &Publish) -> Result<(), StoreError> {
    p.encode(ProtocolVersion::V5, out)
        .map(drop)
        .map_err(|e| StoreError::Engine(format!("message not encodable: {e}")))
}

fn get_publish(rest: &[u8]) -> Result<Publish, StoreError> {
    let mut buf = BytesMut::from(rest);
    let mut decoder = Decoder::client(ProtocolVersion::V5);
    decoder.set_max_packet_size(u32::MAX);
    match decoder.decode(&mut buf) {
        Ok(Some(Packet::Publish(p))) => Ok(p),
        Ok(_) => Err(corrupt("message is not a PUBLISH")),
        Err(e) => Err(StoreError::Corrupt(format!("message: {e}"))),
    }
}

pub(crate) fn encode_message(m: &StoredMessage) -> Result<Vec<u8>, StoreError> {
    let mut out = BytesMut::with_capacity(16 + m.publish.payload().len() + 64);
    out.put_u8(FORMAT);
    let (state, id) = match m.state {
        MessageState::Queued => (0, 0),
        MessageState::Sent(id) => (1, id.get()),
        MessageState::Received(id) => (2, id.get()),
    };
    out.put_u8(state);
    out.put_u16(id);
    out.put_u64(m.routed_at_ms);
    put_publish(&mut out, &m.publish)?;
    Ok(out.to_vec())
}

pub(crate) fn decode_message(mut v: &[u8]) -> Result<StoredMessage, StoreError> {
    if v.remaining() < 12 || v.get_u8() != FORMAT {
        return Err(corrupt("message header"));
    }
    let state = v.get_u8();
    let id = PacketId::new(v.get_u16());
    let routed_at_ms = v.get_u64();
    let state = match (state, id) {
        (0, _) => MessageState::Queued,
        (1, Some(id)) => MessageState::Sent(id),
        (2, Some(id)) => MessageState::Received(id),
        _ => return Err(corrupt("message state")),
    };
    Ok(StoredMessage {
        publish: get_publish(v)?,
        state,
        routed_at_ms,
    })
}

/// The state byte and identifier of an encoded message, rewritten in place.
pub(crate) fn set_message_state(v: &mut [u8], state: MessageState) {
    if v.len() < 4 {
        return;
    }
    let (s, id) = match state {
        MessageState::Queued => (0, 0),
        MessageState::Sent(id) => (1, id.get()),
        MessageState::Received(id) => (2, id.get()),
    };
    v[1] = s;
    v[2..4].copy_from_slice(&id.to_be_bytes());
}

fn options_byte(o: &SubscriptionOptions) -> u8 {
    let rh = match o.retain_handling {
        RetainHandling::SendAtSubscribe => 0,
        RetainHandling::SendAtSubscribeIfNew => 1,
        RetainHandling::DoNotSend => 2,
    };
    o.qos as u8 | u8::from(o.no_local) << 2 | u8::from(o.retain_as_published) << 3 | rh << 4
}

fn options_from(b: u8) -> Result<SubscriptionOptions, StoreError> {
    let qos = match b & 3 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        _ => return Err(corrupt("subscription QoS")),
    };
    let retain_handling = match (b >> 4) & 3 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendAtSubscribeIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(corrupt("retain handling")),
    };
    let mut o = SubscriptionOptions::qos(qos);
    o.no_local = b & 4 != 0;
    o.retain_as_published = b & 8 != 0;
    o.retain_handling = retain_handling;
    Ok(o)
}

pub(crate) fn encode_session(s: &StoredSession) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(16 + s.subscriptions.len() * 32);
    out.put_u8(FORMAT);
    out.put_u32(s.expiry);
    out.put_u64(s.expires_at.map_or(0, |t| t.max(1)));
    out.put_u32(s.subscriptions.len() as u32);
    for (filter, sub) in &s.subscriptions {
        let f = filter.as_str().as_bytes();
        out.put_u16(f.len() as u16);
        out.put_slice(f);
        out.put_u8(options_byte(&sub.options));
        out.put_u32(sub.identifier.map_or(0, NonZeroU32::get));
    }
    match &s.owner {
        Some(owner) => {
            out.put_u8(1);
            out.put_u16(owner.len() as u16);
            out.put_slice(owner.as_bytes());
        }
        None => out.put_u8(0),
    }
    out.to_vec()
}

pub(crate) fn decode_session(mut v: &[u8]) -> Result<StoredSession, StoreError> {
    if v.remaining() < 17 || v.get_u8() != FORMAT {
        return Err(corrupt("session header"));
    }
    let expiry = v.get_u32();
    let expires_at = Some(v.get_u64()).filter(|&t| t != 0);
    let n = v.get_u32() as usize;
    let mut subscriptions = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        if v.remaining() < 2 {
            return Err(corrupt("subscription"));
        }
        let len = v.get_u16() as usize;
        if v.remaining() < len + 5 {
            return Err(corrupt("subscription"));
        }
        let filter = std::str::from_utf8(&v[..len]).map_err(|_| corrupt("filter"))?;
        let filter = TopicFilter::try_from(filter).map_err(|_| corrupt("filter"))?;
        v.advance(len);
        let options = options_from(v.get_u8())?;
        let identifier = NonZeroU32::new(v.get_u32());
        subscriptions.push((
            filter,
            Subscriber {
                options,
                identifier,
            },
        ));
    }
    let owner = match v.first() {
        Some(1) if v.remaining() >= 3 => {
            v.advance(1);
            let len = v.get_u16() as usize;
            if v.remaining() < len {
                return Err(corrupt("owner"));
            }
            let owner = std::str::from_utf8(&v[..len]).map_err(|_| corrupt("owner"))?;
            Some(owner.into())
        }
        Some(0) | None => None,
        _ => return Err(corrupt("owner")),
    };
    Ok(StoredSession {
        expiry,
        expires_at,
        subscriptions,
        owner,
    })
}

pub(crate) fn encode_retained(r: &StoredRetained) -> Result<Vec<u8>, StoreError> {
    let mut out = BytesMut::with_capacity(16 + r.publish.payload().len() + 64);
    out.put_u8(FORMAT);
    out.put_u64(r.set_at_ms);
    put_publish(&mut out, &r.publish)?;
    Ok(out.to_vec())
}

pub(crate) fn decode_retained(mut v: &[u8]) -> Result<StoredRetained, StoreError> {
    if v.remaining() < 9 || v.get_u8() != FORMAT {
        return Err(corrupt("retained header"));
    }
    let set_at_ms = v.get_u64();
    Ok(StoredRetained {
        publish: get_publish(v)?,
        set_at_ms,
    })
}

/// The tables of a key-value store, as [`apply`] and [`load`] use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Table {
    /// Client id → session.
    Sessions,
    /// Client id, 0, number (u64 BE) → message.
    Messages,
    /// Client id, 0, packet id (u16 BE) → nothing.
    Awaiting,
    /// Topic → retained message.
    Retained,
}

/// A write transaction over the tables.
pub(crate) trait Writer {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<(), StoreError>;
    /// Deletes the keys in `start..end`.
    fn delete_range(&mut self, table: Table, start: &[u8], end: &[u8]) -> Result<(), StoreError>;
}

/// One table operation, its value already encoded.
enum Op {
    Put(Table, Vec<u8>, Vec<u8>),
    Delete(Table, Vec<u8>),
    DeleteRange(Table, Vec<u8>, Vec<u8>),
    SetState(Vec<u8>, super::MessageState),
}

/// Applies `changes` in order through `w`. Everything is encoded first, so
/// a change that cannot be encoded fails the batch before anything is
/// written.
pub(crate) fn apply(w: &mut impl Writer, changes: &[super::Change]) -> Result<(), StoreError> {
    use super::Change;
    let mut ops = Vec::with_capacity(changes.len());
    for change in changes {
        match change {
            Change::Session(id, s) => ops.push(Op::Put(
                Table::Sessions,
                id.as_bytes().to_vec(),
                encode_session(s),
            )),
            Change::RemoveSession(id) => {
                ops.push(Op::Delete(Table::Sessions, id.as_bytes().to_vec()));
                let (start, end) = session_range(id);
                ops.push(Op::DeleteRange(Table::Messages, start.clone(), end.clone()));
                ops.push(Op::DeleteRange(Table::Awaiting, start, end));
            }
            Change::Message(id, n, m) => ops.push(Op::Put(
                Table::Messages,
                session_key(id, &n.to_be_bytes()),
                encode_message(m)?,
            )),
            Change::MessageState(id, n, state) => {
                ops.push(Op::SetState(session_key(id, &n.to_be_bytes()), *state))
            }
            Change::RemoveMessage(id, n) => ops.push(Op::Delete(
                Table::Messages,
                session_key(id, &n.to_be_bytes()),
            )),
            Change::AwaitRelease(id, pid) => ops.push(Op::Put(
                Table::Awaiting,
                session_key(id, &pid.get().to_be_bytes()),
                Vec::new(),
            )),
            Change::Released(id, pid) => ops.push(Op::Delete(
                Table::Awaiting,
                session_key(id, &pid.get().to_be_bytes()),
            )),
            Change::Retain(topic, Some(r)) => ops.push(Op::Put(
                Table::Retained,
                topic.as_bytes().to_vec(),
                encode_retained(r)?,
            )),
            Change::Retain(topic, None) => {
                ops.push(Op::Delete(Table::Retained, topic.as_bytes().to_vec()))
            }
        }
    }
    for op in ops {
        match op {
            Op::Put(t, k, v) => w.put(t, &k, &v)?,
            Op::Delete(t, k) => w.delete(t, &k)?,
            Op::DeleteRange(t, start, end) => w.delete_range(t, &start, &end)?,
            Op::SetState(k, state) => {
                if let Some(mut v) = w.get(Table::Messages, &k)? {
                    set_message_state(&mut v, state);
                    w.put(Table::Messages, &k, &v)?;
                }
            }
        }
    }
    Ok(())
}

/// Builds what was stored from every table's entries in key order.
/// Records of sessions that are gone (left by a partial removal) are
/// skipped.
pub(crate) fn load(
    sessions: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>>,
    messages: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>>,
    awaiting: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>>,
    retained: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>>,
) -> Result<super::Loaded, StoreError> {
    use super::{Loaded, LoadedSession};
    use std::collections::BTreeMap;
    let mut by_id: BTreeMap<String, LoadedSession> = BTreeMap::new();
    for entry in sessions {
        let (k, v) = entry?;
        let id = String::from_utf8(k).map_err(|_| corrupt("session key"))?;
        by_id.insert(
            id,
            LoadedSession {
                session: decode_session(&v)?,
                ..Default::default()
            },
        );
    }
    for entry in messages {
        let (k, v) = entry?;
        let (id, n) = split_key(&k)?;
        let n: [u8; 8] = n.try_into().map_err(|_| corrupt("message key"))?;
        if let Some(s) = by_id.get_mut(id) {
            s.messages
                .push((u64::from_be_bytes(n), decode_message(&v)?));
        }
    }
    for entry in awaiting {
        let (k, _) = entry?;
        let (id, n) = split_key(&k)?;
        let n: [u8; 2] = n.try_into().map_err(|_| corrupt("packet id key"))?;
        if let (Some(s), Some(pid)) = (by_id.get_mut(id), PacketId::new(u16::from_be_bytes(n))) {
            s.awaiting_release.push(pid);
        }
    }
    let retained = retained
        .map(|e| e.and_then(|(_, v)| decode_retained(&v)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Loaded {
        sessions: by_id.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        retained,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mqtt_codec::{QosPid, TopicName};

    fn publish() -> Publish {
        let mut p = Publish::new(TopicName::try_from("a/b").unwrap(), &b"payload"[..]);
        p.qos_pid = QosPid::new(QoS::ExactlyOnce, PacketId::MIN);
        p.properties_mut().message_expiry_interval = Some(30);
        p.properties_mut()
            .subscription_identifiers
            .push(NonZeroU32::new(7).unwrap());
        p
    }

    #[test]
    fn records_read_back_as_written() {
        let m = StoredMessage {
            publish: publish(),
            state: MessageState::Sent(PacketId::new(9).unwrap()),
            routed_at_ms: 1_764_000_000_000,
        };
        let mut bytes = encode_message(&m).unwrap();
        assert_eq!(decode_message(&bytes).unwrap(), m);
        set_message_state(
            &mut bytes,
            MessageState::Received(PacketId::new(9).unwrap()),
        );
        assert_eq!(
            decode_message(&bytes).unwrap().state,
            MessageState::Received(PacketId::new(9).unwrap())
        );

        let mut o = SubscriptionOptions::qos(QoS::AtLeastOnce);
        o.no_local = true;
        o.retain_handling = RetainHandling::DoNotSend;
        let s = StoredSession {
            expiry: 3600,
            expires_at: Some(1_764_000_000),
            subscriptions: vec![(
                TopicFilter::try_from("$share/g/x/#").unwrap(),
                Subscriber {
                    options: o,
                    identifier: NonZeroU32::new(3),
                },
            )],
            owner: Some("ann".into()),
        };
        assert_eq!(decode_session(&encode_session(&s)).unwrap(), s);

        let r = StoredRetained {
            publish: publish(),
            set_at_ms: 5,
        };
        assert_eq!(decode_retained(&encode_retained(&r).unwrap()).unwrap(), r);
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let m = encode_message(&StoredMessage {
            publish: publish(),
            state: MessageState::Queued,
            routed_at_ms: 1,
        })
        .unwrap();
        for n in 0..m.len() {
            let _ = decode_message(&m[..n]);
        }
        let s = encode_session(&StoredSession::default());
        for n in 0..s.len() {
            let _ = decode_session(&s[..n]);
        }
        assert!(decode_message(&[9, 9, 9]).is_err());
        assert!(split_key(b"no-zero").is_err());
        assert_eq!(split_key(b"c\x00\x01").unwrap(), ("c", &b"\x01"[..]));
    }
}
