//! The handle applications hold, the incoming message stream and
//! connection events.

use crate::{Error, Message};
use futures::{Stream, StreamExt};
use mqtt_codec::{
    Auth, ConnAck, Disconnect, DisconnectReason, ProtocolVersion, PubAckReason, Publish, QoS,
    SubAck, SubscribeProperties, Subscription, TopicFilter, UnsubAck, UnsubscribeProperties,
};
use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot, watch};

/// Where the client's connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening the transport or waiting for CONNACK.
    Connecting,
    /// Connected: CONNACK accepted the connection.
    Connected,
    /// The connection is lost; waiting before the next attempt.
    Disconnected,
    /// The client is closed and will not connect again.
    Closed,
}

/// A change in the connection, from [`Client::events`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// The server accepted the connection. Its CONNACK says whether the
    /// session was resumed (`session_present`), and in MQTT 5 what the
    /// server allows and any identifier it assigned.
    Connected(Box<ConnAck>),
    /// The connection is lost (or could not be made), and why.
    Disconnected(Arc<Error>),
    /// The next attempt starts after `delay`.
    Reconnecting {
        /// Attempts since the last successful connection (1 for the first).
        attempt: u32,
        /// How long until it starts.
        delay: Duration,
    },
    /// The server had lost the session: the subscriptions it had granted
    /// were made again, with this answer.
    Restored(SubAck),
    /// An AUTH packet arrived (MQTT 5 enhanced authentication): answer
    /// with [`Client::auth`].
    Auth(Auth),
    /// The client is closed.
    Closed,
}

/// Receives [`ConnectionEvent`]s.
#[derive(Debug)]
pub struct ConnectionEvents(broadcast::Receiver<ConnectionEvent>);

impl ConnectionEvents {
    /// The next event; `None` once the client is closed and every event was
    /// read. Events missed by a receiver that fell more than 64 behind are
    /// skipped.
    pub async fn recv(&mut self) -> Option<ConnectionEvent> {
        loop {
            match self.0.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// Incoming messages: a [`Stream`] of PUBLISH packets (topic aliases
/// resolved, each QoS 2 message once), ending when the client closes.
///
/// The stream is bounded ([`ClientBuilder::incoming_capacity`](crate::ClientBuilder::incoming_capacity)):
/// while it is full, the client stops reading from the network.
#[derive(Debug)]
pub struct Messages(pub(crate) futures::channel::mpsc::Receiver<Publish>);

impl Messages {
    /// The next message; `None` once the client is closed.
    pub async fn recv(&mut self) -> Option<Publish> {
        self.0.next().await
    }
}

impl Stream for Messages {
    type Item = Publish;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Publish>> {
        Pin::new(&mut self.0).poll_next(cx)
    }
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, Error>>;
/// A publish's answer: the error is boxed so that the channel, one per
/// message in flight, stays small.
pub(crate) type PublishReply = oneshot::Sender<Result<PubAckReason, Box<Error>>>;

/// A route: messages matching `filters` go to `sender` instead of the main
/// stream.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) filters: Vec<TopicFilter>,
    pub(crate) sender: futures::channel::mpsc::Sender<Publish>,
}

#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        publish: Publish,
        reply: Option<PublishReply>,
        permit: OwnedSemaphorePermit,
    },
    Subscribe {
        subscriptions: Vec<Subscription>,
        properties: SubscribeProperties,
        route: Option<Route>,
        reply: Reply<SubAck>,
    },
    Unsubscribe {
        filters: Vec<TopicFilter>,
        properties: UnsubscribeProperties,
        reply: Reply<UnsubAck>,
    },
    Auth(Auth),
    Disconnect {
        disconnect: Disconnect,
        done: oneshot::Sender<()>,
    },
}

#[derive(Debug)]
pub(crate) struct Shared {
    /// Unbounded as a channel, bounded in use: every PUBLISH holds a permit
    /// of `permits` (the queue's limit), and every other command is sent
    /// by a caller awaiting its answer.
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) state: watch::Receiver<ConnectionState>,
    pub(crate) connack: watch::Receiver<Option<Box<ConnAck>>>,
    pub(crate) events: broadcast::Sender<ConnectionEvent>,
    /// Subscribed when the client started, for the first `events()` call:
    /// it sees the events of the first connection attempt too (e.g. an
    /// AUTH from the server), however late it is called.
    pub(crate) first_events: std::sync::Mutex<Option<broadcast::Receiver<ConnectionEvent>>>,
    pub(crate) version: ProtocolVersion,
    pub(crate) client_id: String,
    pub(crate) incoming_capacity: usize,
    pub(crate) queue_limit: usize,
}

/// A handle on a running client: cheap to clone, usable from many tasks.
///
/// The client runs in a background task; it disconnects and stops when
/// [`disconnect`](Self::disconnect) is called or when every handle is dropped.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
}

/// Completes when a message's flow does: once written for QoS 0, at PUBACK
/// for QoS 1, at PUBCOMP for QoS 2, with the server's reason code (MQTT 5;
/// `Success` in 3.1.1). Dropping it does not cancel the message.
#[derive(Debug)]
pub struct Delivery(oneshot::Receiver<Result<PubAckReason, Box<Error>>>);

impl Future for Delivery {
    type Output = Result<PubAckReason, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Box::new(Error::Closed))).map_err(|e| *e))
    }
}

async fn answer<T>(rx: oneshot::Receiver<Result<T, Error>>) -> Result<T, Error> {
    rx.await.unwrap_or(Err(Error::Closed))
}

impl Client {
    /// Publishes and waits until the flow completes (see [`Delivery`]).
    /// Waits first for room when the queue is full.
    pub async fn publish(&self, message: impl Into<Message>) -> Result<PubAckReason, Error> {
        self.enqueue(message).await?.await
    }

    /// Queues a message, waiting for room when the queue is full; the
    /// returned [`Delivery`] completes with the flow. Many messages can be
    /// in flight at once this way.
    pub async fn enqueue(&self, message: impl Into<Message>) -> Result<Delivery, Error> {
        let permit = self
            .shared
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        self.send_publish(message.into().into_publish(), permit)
            .await
    }

    /// Queues a message, or fails at once with [`Error::QueueFull`] when the
    /// queue is full.
    pub fn try_enqueue(&self, message: impl Into<Message>) -> Result<Delivery, Error> {
        let publish = message.into().into_publish();
        let Ok(permit) = self.shared.permits.clone().try_acquire_owned() else {
            return Err(Error::QueueFull(Box::new(publish)));
        };
        let (tx, rx) = oneshot::channel();
        let command = Command::Publish {
            publish,
            reply: Some(tx),
            permit,
        };
        match self.shared.commands.send(command) {
            Ok(()) => Ok(Delivery(rx)),
            Err(_) => Err(Error::Closed),
        }
    }

    async fn send_publish(
        &self,
        publish: Publish,
        permit: OwnedSemaphorePermit,
    ) -> Result<Delivery, Error> {
        let (tx, rx) = oneshot::channel();
        let command = Command::Publish {
            publish,
            reply: Some(tx),
            permit,
        };
        self.shared
            .commands
            .send(command)
            .map_err(|_| Error::Closed)?;
        Ok(Delivery(rx))
    }

    /// Subscribes to one filter at `qos`; returns the server's answer.
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<SubAck, Error> {
        let filter = TopicFilter::try_from(filter)?;
        self.subscribe_with(vec![Subscription::new(filter, qos)], Default::default())
            .await
    }

    /// Subscribes with full options (No Local, Retain As Published, Retain
    /// Handling) and MQTT 5 properties (Subscription Identifier, User
    /// Properties); returns the SUBACK, one reason code per filter in order.
    pub async fn subscribe_with(
        &self,
        subscriptions: Vec<Subscription>,
        properties: SubscribeProperties,
    ) -> Result<SubAck, Error> {
        self.subscribe_routed(subscriptions, properties, None).await
    }

    /// Subscribes and returns a stream of just the messages matching these
    /// filters (they no longer go to the main [`Messages`] stream). Dropping
    /// the stream sends later matches back to the main stream; it does not
    /// unsubscribe.
    pub async fn subscribe_stream(
        &self,
        subscriptions: Vec<Subscription>,
        properties: SubscribeProperties,
    ) -> Result<(SubAck, Messages), Error> {
        let (sender, receiver) =
            futures::channel::mpsc::channel(self.shared.incoming_capacity.saturating_sub(1));
        let route = Route {
            filters: subscriptions.iter().map(|s| s.filter.clone()).collect(),
            sender,
        };
        let suback = self
            .subscribe_routed(subscriptions, properties, Some(route))
            .await?;
        Ok((suback, Messages(receiver)))
    }

    async fn subscribe_routed(
        &self,
        subscriptions: Vec<Subscription>,
        properties: SubscribeProperties,
        route: Option<Route>,
    ) -> Result<SubAck, Error> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Subscribe {
            subscriptions,
            properties,
            route,
            reply,
        })
        .await?;
        answer(rx).await
    }

    /// Unsubscribes from filters; returns the UNSUBACK.
    pub async fn unsubscribe(&self, filters: &[&str]) -> Result<UnsubAck, Error> {
        let filters = filters
            .iter()
            .map(|f| TopicFilter::try_from(*f))
            .collect::<Result<Vec<_>, _>>()?;
        self.unsubscribe_with(filters, Default::default()).await
    }

    /// Unsubscribes with MQTT 5 properties.
    pub async fn unsubscribe_with(
        &self,
        filters: Vec<TopicFilter>,
        properties: UnsubscribeProperties,
    ) -> Result<UnsubAck, Error> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Unsubscribe {
            filters,
            properties,
            reply,
        })
        .await?;
        answer(rx).await
    }

    /// Sends an AUTH packet (MQTT 5 enhanced authentication).
    pub async fn auth(&self, auth: Auth) -> Result<(), Error> {
        self.command(Command::Auth(auth)).await
    }

    /// Disconnects normally (the server discards the Will) and closes the
    /// client; waits until the DISCONNECT is written. Messages still in
    /// flight fail with [`Error::Closed`]; await their [`Delivery`] first.
    pub async fn disconnect(&self) -> Result<(), Error> {
        self.disconnect_with(Disconnect::new(DisconnectReason::NormalDisconnection))
            .await
    }

    /// Disconnects with an MQTT 5 reason and properties (e.g. 0x04 to have
    /// the server publish the Will, or a new Session Expiry Interval).
    pub async fn disconnect_with(&self, disconnect: Disconnect) -> Result<(), Error> {
        let (done, rx) = oneshot::channel();
        self.command(Command::Disconnect { disconnect, done })
            .await?;
        let _ = rx.await;
        Ok(())
    }

    async fn command(&self, command: Command) -> Result<(), Error> {
        self.shared
            .commands
            .send(command)
            .map_err(|_| Error::Closed)
    }

    /// The connection state now.
    pub fn state(&self) -> ConnectionState {
        *self.shared.state.borrow()
    }

    /// Waits until the client is connected; fails once it is closed.
    pub async fn wait_connected(&self) -> Result<(), Error> {
        let mut state = self.shared.state.clone();
        let s = state
            .wait_for(|s| matches!(s, ConnectionState::Connected | ConnectionState::Closed))
            .await
            .map_err(|_| Error::Closed)?;
        match *s {
            ConnectionState::Connected => Ok(()),
            _ => Err(Error::Closed),
        }
    }

    /// The CONNACK of the current (or last) connection.
    pub fn connack(&self) -> Option<ConnAck> {
        self.shared.connack.borrow().as_deref().cloned()
    }

    /// Connection events: the first call gets every event since the
    /// client started (up to the last 64), later calls those from then on.
    pub fn events(&self) -> ConnectionEvents {
        let first = self
            .shared
            .first_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        ConnectionEvents(first.unwrap_or_else(|| self.shared.events.subscribe()))
    }

    /// The protocol version.
    pub fn version(&self) -> ProtocolVersion {
        self.shared.version
    }

    /// The client identifier (the one the server assigned, once connected,
    /// if it was left empty).
    pub fn client_id(&self) -> String {
        self.connack()
            .and_then(|c| c.properties.assigned_client_identifier)
            .map_or_else(|| self.shared.client_id.clone(), |id| id.as_str().into())
    }

    /// Messages queued or in flight.
    pub fn pending(&self) -> usize {
        self.shared.queue_limit - self.shared.permits.available_permits()
    }
}
