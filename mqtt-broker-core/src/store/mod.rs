//! Storage for what must outlive the broker process: persistent sessions
//! (subscriptions, expiry, the QoS 1 and 2 messages owed to them and the
//! QoS 2 identifiers awaiting release) and retained messages.
//!
//! The broker describes every change as a [`Change`]; a [`Store`] applies
//! a batch of them as one transaction. The broker's group commit gathers
//! the changes of every connection while the previous transaction is being
//! written, and holds each connection's acknowledgements (PUBACK, PUBREC,
//! PUBREL, PUBCOMP, SUBACK, CONNACK) until the transaction holding its
//! changes is on disk: many clients' messages share one `fsync`.
//!
//! Two stores come with the crate: [`MemoryStore`] (kept in the process:
//! survives a [`Broker`](crate::Broker) restart within it, for tests and
//! embedding) and [`RedbStore`] (a crash-safe file).

pub(crate) mod codec;
pub(crate) mod journal;
mod memory;
mod redb_store;

pub use memory::MemoryStore;
pub use redb_store::RedbStore;

use crate::subscriptions::Subscriber;
use mqtt_codec::{PacketId, Publish, TopicFilter};
use std::sync::Arc;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed (disk full, I/O error, corrupt file).
    #[error("storage: {0}")]
    Engine(String),
    /// A stored record could not be read back.
    #[error("stored record unreadable: {0}")]
    Corrupt(String),
}

/// Where a message owed to a session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageState {
    /// Not sent yet (or a QoS 1 message sent and not acknowledged: after a
    /// restart it is sent again, as at-least-once allows).
    Queued,
    /// A QoS 2 message sent under this packet identifier, not yet
    /// acknowledged: after a restart it is resent with the same one.
    Sent(PacketId),
    /// A QoS 2 message the client acknowledged (PUBREC): after a restart
    /// only its PUBREL is sent again.
    Received(PacketId),
}

/// A message owed to a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// The message as it goes to this session (its QoS, RETAIN and
    /// Subscription Identifiers already set).
    pub publish: Publish,
    /// Where its delivery stands.
    pub state: MessageState,
    /// When it was routed, in milliseconds since the Unix epoch (Message
    /// Expiry counts from here).
    pub routed_at_ms: u64,
}

/// A persistent session, without its messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredSession {
    /// Session Expiry Interval in seconds (`u32::MAX`: never).
    pub expiry: u32,
    /// When it ends, in seconds since the Unix epoch, if it was offline;
    /// `None` while connected (after a restart its expiry counts from then).
    pub expires_at: Option<u64>,
    /// Its subscriptions.
    pub subscriptions: Vec<(TopicFilter, Subscriber)>,
    /// The user who made it (`None`: anonymous).
    pub owner: Option<Arc<str>>,
}

/// A retained message as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRetained {
    /// The message.
    pub publish: Publish,
    /// When it was set, in milliseconds since the Unix epoch.
    pub set_at_ms: u64,
}

/// One change to what is stored. Changes are applied in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Creates or replaces a session (its messages stay).
    Session(Arc<str>, StoredSession),
    /// Removes a session with its messages and QoS 2 identifiers.
    RemoveSession(Arc<str>),
    /// Stores a message owed to a session under a number unique in the
    /// store (increasing in routing order).
    Message(Arc<str>, u64, StoredMessage),
    /// Moves a stored message on; ignored when it is no longer stored.
    MessageState(Arc<str>, u64, MessageState),
    /// Forgets a message: delivered, expired or refused.
    RemoveMessage(Arc<str>, u64),
    /// A QoS 2 message from the session's client was received under this
    /// identifier and awaits its PUBREL.
    AwaitRelease(Arc<str>, PacketId),
    /// The client released that identifier.
    Released(Arc<str>, PacketId),
    /// Sets (`Some`) or clears (`None`) a topic's retained message.
    Retain(Arc<str>, Option<StoredRetained>),
}

/// One stored session with what it is owed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadedSession {
    /// The session.
    pub session: StoredSession,
    /// Its messages by number, in increasing order.
    pub messages: Vec<(u64, StoredMessage)>,
    /// QoS 2 identifiers from its client awaiting release.
    pub awaiting_release: Vec<PacketId>,
}

/// Everything stored, as read at start-up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Sessions by client identifier.
    pub sessions: Vec<(Arc<str>, LoadedSession)>,
    /// Retained messages.
    pub retained: Vec<StoredRetained>,
}

/// A place to keep sessions and retained messages.
///
/// Implementations apply each batch atomically: after a crash the store
/// holds some prefix of the batches written, each whole or not at all,
/// and at least every batch written before a [`sync`](Store::sync) that
/// returned.
pub trait Store: Send + Sync + 'static {
    /// Everything stored.
    fn load(&self) -> Result<Loaded, StoreError>;

    /// Applies `changes` in order as one transaction, not necessarily
    /// durable yet. Called for one batch at a time, in order.
    fn write(&self, changes: &[Change]) -> Result<(), StoreError>;

    /// Returns once every batch whose [`write`](Store::write) returned
    /// before this call survives a crash of the process and of the machine.
    /// May be called while another batch is being written, and by two
    /// threads at once.
    fn sync(&self) -> Result<(), StoreError>;
}

/// When acknowledgements wait for the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every acknowledgement (PUBACK, PUBREC, PUBCOMP, SUBACK, CONNACK) is
    /// sent only once the changes behind it are durable: a message the
    /// broker acknowledged is never lost, even to a crash or power loss.
    /// Many clients' changes share one commit.
    Always,
    /// Changes are written as they come but made durable only this often;
    /// acknowledgements do not wait. Faster; a crash of the machine (power
    /// loss) loses what was acknowledged since the last sync (up to this
    /// interval), and a crash of the process alone only the changes
    /// acknowledged and not yet handed to the store (a moment's worth).
    Periodic(std::time::Duration),
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
