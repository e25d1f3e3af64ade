//! The event loop: one task that owns the session and the connection and
//! moves bytes, commands, messages and timers between them.
//!
//! It is a hand-written future rather than a `select!` loop so that it can
//! read, write, take commands and hand over messages on one connection
//! without splitting it or cancelling anything half done.

use crate::{
    ClientBuilder, ConnectionEvent, ConnectionState, Error, Messages, Reconnect,
    backoff::Rng,
    client::{Command, PublishReply, Reply, Route, Shared},
};
use bytes::{Buf, BytesMut};
use futures::Sink;
use mqtt_codec::{ConnAck, ConnectReason, Disconnect, Publish, SubAck, UnsubAck};
use mqtt_session::{ClientSession, ConnectionError, Event, Outcome, PublishError, RequestId};
use mqtt_transport_tcp::{Connection, Scheme, ServerAddr, TransportError};
use mqtt_transport_ws::WsConnectOptions;
use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};
use tokio::{
    io::AsyncWrite,
    sync::{Semaphore, broadcast, mpsc, oneshot, watch},
    time::{Instant, Sleep},
};
use tracing::{debug, info, trace, warn};

/// Bytes read per read call.
const READ_CHUNK: usize = 64 * 1024;
/// Unhandled bytes kept while the application is not taking messages; past
/// this the client stops reading and TCP flow control holds the server.
const PAUSED_READ_LIMIT: usize = 64 * 1024;
/// Packets encoded per write while the socket takes them.
const WRITE_PACKETS: usize = 32;
/// Rounds of work before the task yields to others.
const BUDGET: usize = 32;

type Opening = Pin<Box<dyn Future<Output = Result<Connection, Error>> + Send>>;

enum Link {
    /// No connection; the next attempt starts at `retry_at` (now if `None`).
    Waiting,
    /// Opening the transport.
    Opening(Opening),
    /// Connected at the transport level (CONNECT sent or CONNACK received).
    Up(Connection),
    /// The session ended the connection: write what is left, then close.
    Closing(Connection),
    /// The client is closed.
    Finished,
}

/// A publish the session holds. Its queue permit was forgotten when it was
/// taken in and is given back to `Driver::permits` when it completes, so
/// that each entry stays small.
struct PendingPublish {
    reply: Option<PublishReply>,
}

pub(crate) struct Driver {
    session: ClientSession,
    epoch: Instant,
    addr: ServerAddr,
    ws: WsConnectOptions,
    reconnect: Reconnect,
    attempt: u32,
    rng: Rng,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_open: bool,
    link: Link,
    retry_at: Option<Instant>,
    read_buf: BytesMut,
    /// Bytes read while the application was not taking messages.
    undecoded: bool,
    write_buf: BytesMut,
    flushed: bool,
    /// By request (foldhash: the handles are the session's own counter).
    publishes: HashMap<RequestId, PendingPublish, foldhash::fast::RandomState>,
    permits: Arc<Semaphore>,
    subscribes: HashMap<RequestId, Reply<SubAck>>,
    unsubscribes: HashMap<RequestId, Reply<UnsubAck>>,
    main: futures::channel::mpsc::Sender<Publish>,
    routes: Vec<Route>,
    inbox: VecDeque<Publish>,
    timer: Pin<Box<Sleep>>,
    state: watch::Sender<ConnectionState>,
    connack: watch::Sender<Option<Box<ConnAck>>>,
    events: broadcast::Sender<ConnectionEvent>,
    first: Option<oneshot::Sender<Result<(), Error>>>,
    /// Why the session ended the current connection.
    down: Option<ConnectionError>,
    /// Disconnect was asked for (or every handle dropped): finish once the
    /// connection is closed.
    stop: bool,
    stopped: Vec<oneshot::Sender<()>>,
    /// Limit for writing what is left when closing.
    close_by: Option<Instant>,
}

/// How long a closing connection may take to take the last bytes.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) fn spawn(
    b: ClientBuilder,
    first: Option<oneshot::Sender<Result<(), Error>>>,
) -> (crate::Client, Messages) {
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (main, incoming) = futures::channel::mpsc::channel(b.incoming_capacity.saturating_sub(1));
    let (state_tx, state_rx) = watch::channel(ConnectionState::Connecting);
    let (connack_tx, connack_rx) = watch::channel(None);
    let (events, first_events) = broadcast::channel(64);
    let (addr, ws) = b.transport();
    let mut session_options = b.session.clone();
    // The permits bound what is queued; the session never refuses for room.
    session_options.max_queued = b.queue_limit;
    let shared = Arc::new(Shared {
        commands: commands_tx,
        permits: Arc::new(Semaphore::new(b.queue_limit)),
        state: state_rx,
        connack: connack_rx,
        events: events.clone(),
        first_events: std::sync::Mutex::new(Some(first_events)),
        version: b.session.version,
        client_id: b.session.client_id.as_str().into(),
        incoming_capacity: b.incoming_capacity,
        queue_limit: b.queue_limit,
    });
    let epoch = Instant::now();
    let driver = Driver {
        session: ClientSession::new(session_options),
        epoch,
        addr,
        ws,
        reconnect: b.reconnect.clone(),
        attempt: 0,
        rng: Rng::new(),
        commands,
        commands_open: true,
        link: Link::Waiting,
        retry_at: None,
        read_buf: BytesMut::new(),
        undecoded: false,
        write_buf: BytesMut::new(),
        flushed: true,
        publishes: HashMap::default(),
        permits: shared.permits.clone(),
        subscribes: HashMap::new(),
        unsubscribes: HashMap::new(),
        main,
        routes: Vec::new(),
        inbox: VecDeque::new(),
        timer: Box::pin(tokio::time::sleep_until(epoch)),
        state: state_tx,
        connack: connack_tx,
        events,
        first,
        close_by: None,
        down: None,
        stop: false,
        stopped: Vec::new(),
    };
    tokio::spawn(driver);
    (crate::Client { shared }, Messages(incoming))
}

fn open(addr: ServerAddr, ws: WsConnectOptions) -> Opening {
    Box::pin(async move {
        match addr.scheme {
            Scheme::Ws | Scheme::Wss => Ok(mqtt_transport_ws::connect(&addr, &ws).await?),
            Scheme::Mqtt | Scheme::Mqtts => {
                Ok(mqtt_transport_tcp::connect(&addr, ClientBuilder::tcp_options(&ws)).await?)
            }
        }
    })
}

/// Refusals that another attempt with the same CONNECT cannot fix.
fn permanent(reason: ConnectReason) -> bool {
    matches!(
        reason,
        ConnectReason::UnsupportedProtocolVersion
            | ConnectReason::ClientIdentifierNotValid
            | ConnectReason::BadUserNameOrPassword
            | ConnectReason::NotAuthorized
            | ConnectReason::Banned
            | ConnectReason::BadAuthenticationMethod
    )
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().run(cx)
    }
}

impl Driver {
    fn now(&self) -> mqtt_session::Instant {
        mqtt_session::Instant::from_duration(Instant::now().saturating_duration_since(self.epoch))
    }

    fn run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..BUDGET {
            let mut progress = self.poll_commands(cx);
            progress |= self.poll_link(cx);
            progress |= self.deliver(cx);
            // Checked every round: a busy connection still sends PINGREQ.
            progress |= self.poll_timer(cx);
            if matches!(self.link, Link::Finished) {
                self.finish();
                return Poll::Ready(());
            }
            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Handles what is due; returns whether anything was.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = match self.link {
            Link::Waiting => self.retry_at,
            Link::Up(_) => self
                .session
                .poll_timeout()
                .map(|t| self.epoch + t.since_origin()),
            Link::Closing(_) => self.close_by,
            _ => None,
        };
        let Some(deadline) = deadline else {
            return false;
        };
        if deadline > Instant::now() {
            self.timer.as_mut().reset(deadline);
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
        }
        match self.link {
            Link::Waiting => self.retry_at = None,
            Link::Closing(_) => {
                debug!("the peer did not take the last bytes in time");
                self.write_buf.clear();
                self.flushed = true;
            }
            _ => {
                let now = self.now();
                self.session.handle_timeout(now);
                self.drain_events();
            }
        }
        true
    }

    fn poll_commands(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while self.commands_open && !matches!(self.link, Link::Finished) {
            match self.commands.poll_recv(cx) {
                Poll::Ready(Some(c)) => {
                    self.command(c);
                    progress = true;
                }
                Poll::Ready(None) => {
                    debug!("every client handle dropped: disconnecting");
                    self.commands_open = false;
                    self.begin_stop(Disconnect::new(
                        mqtt_codec::DisconnectReason::NormalDisconnection,
                    ));
                    progress = true;
                }
                Poll::Pending => break,
            }
        }
        if progress {
            self.drain_events();
        }
        progress
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Publish {
                publish,
                reply,
                permit,
            } => {
                if self.stop {
                    reply.map(|r| r.send(Err(Box::new(Error::Closed))));
                    return;
                }
                match self.session.publish(publish) {
                    Ok(request) => {
                        permit.forget();
                        self.publishes.insert(request, PendingPublish { reply });
                    }
                    Err(PublishError::QueueFull(p)) => {
                        reply.map(|r| r.send(Err(Box::new(Error::QueueFull(Box::new(p))))));
                    }
                    Err(e) => {
                        reply.map(|r| r.send(Err(Box::new(e.into()))));
                    }
                }
            }
            Command::Subscribe {
                subscriptions,
                properties,
                route,
                reply,
            } => {
                if self.stop {
                    let _ = reply.send(Err(Error::Closed));
                    return;
                }
                match self.session.subscribe(subscriptions, properties) {
                    Ok(request) => {
                        self.routes.extend(route);
                        self.subscribes.insert(request, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::Unsubscribe {
                filters,
                properties,
                reply,
            } => {
                if self.stop {
                    let _ = reply.send(Err(Error::Closed));
                    return;
                }
                match self.session.unsubscribe(filters, properties) {
                    Ok(request) => {
                        self.unsubscribes.insert(request, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::Auth(auth) => self.session.auth(auth),
            Command::Disconnect { disconnect, done } => {
                self.stopped.push(done);
                self.begin_stop(disconnect);
            }
        }
    }

    fn begin_stop(&mut self, disconnect: Disconnect) {
        if self.stop {
            return;
        }
        self.stop = true;
        match self.link {
            Link::Up(_) if self.session.state() == mqtt_session::ConnectionState::Connected => {
                info!("disconnecting");
                self.session.disconnect(disconnect);
            }
            Link::Up(_) => {
                // CONNACK not there yet: close without DISCONNECT.
                self.session.connection_lost(self.now());
                self.drain_events();
                self.set_link_closing();
            }
            Link::Closing(_) | Link::Finished => {}
            Link::Waiting | Link::Opening(_) => self.link = Link::Finished,
        }
    }

    fn set_link_closing(&mut self) {
        if let Link::Up(conn) = std::mem::replace(&mut self.link, Link::Waiting) {
            self.link = Link::Closing(conn);
            self.close_by = Some(Instant::now() + CLOSE_TIMEOUT);
        }
    }

    fn poll_link(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.link {
            Link::Waiting => {
                if self.stop || self.retry_at.is_some_and(|t| t > Instant::now()) {
                    return false;
                }
                debug!(addr = %self.addr, "connecting");
                let _ = self.state.send(ConnectionState::Connecting);
                self.link = Link::Opening(open(self.addr.clone(), self.ws.clone()));
                true
            }
            Link::Opening(fut) => match fut.as_mut().poll(cx) {
                Poll::Ready(Ok(conn)) => {
                    debug!(addr = %self.addr, "transport open; sending CONNECT");
                    self.read_buf.clear();
                    self.write_buf.clear();
                    self.flushed = true;
                    self.undecoded = false;
                    let now = self.now();
                    self.session.connect(now);
                    self.link = Link::Up(conn);
                    true
                }
                Poll::Ready(Err(e)) => {
                    self.link_down(e);
                    true
                }
                Poll::Pending => false,
            },
            Link::Up(_) => self.poll_up(cx),
            Link::Closing(conn) => {
                match poll_write_all(conn, cx, &mut self.write_buf, &mut self.flushed) {
                    Poll::Pending => return false,
                    Poll::Ready(Ok(())) => {
                        // Best effort: the peer may already be gone.
                        let _ = Pin::new(conn).poll_shutdown(cx);
                    }
                    Poll::Ready(Err(_)) => {}
                }
                let error = self.down.take().map_or(Error::Closed, Error::Connection);
                self.link_down(error);
                true
            }
            Link::Finished => false,
        }
    }

    fn poll_up(&mut self, cx: &mut Context<'_>) -> bool {
        let Link::Up(conn) = &mut self.link else {
            return false;
        };
        let mut progress = false;
        // Read, unless the application is behind and enough is buffered.
        let mut failure = None;
        for _ in 0..4 {
            if !self.inbox.is_empty() && self.read_buf.len() >= PAUSED_READ_LIMIT {
                break;
            }
            if self.read_buf.capacity() - self.read_buf.len() < 4096 {
                self.read_buf.reserve(READ_CHUNK);
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut *conn), cx, &mut self.read_buf) {
                Poll::Ready(Ok(0)) => {
                    failure = Some(io::Error::from(io::ErrorKind::UnexpectedEof));
                    break;
                }
                Poll::Ready(Ok(n)) => {
                    trace!(bytes = n, "read");
                    progress = true;
                    self.undecoded = true;
                }
                Poll::Ready(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                Poll::Pending => break,
            }
        }
        if self.undecoded {
            if self.inbox.is_empty() {
                self.decode();
            } else {
                self.session.note_bytes_received();
            }
        }
        if failure.is_none() {
            let now = self.now();
            if let Link::Up(conn) = &mut self.link {
                // With acknowledgements to wait for, a few packets per
                // write: the server starts on the first while the rest are
                // encoded (a window's worth in one write leaves each side
                // waiting for the other in turn). Without (QoS 0 only), one
                // write.
                loop {
                    let mut more = self.session.encode_transmits_up_to(
                        now,
                        &mut self.write_buf,
                        WRITE_PACKETS,
                    ) == WRITE_PACKETS;
                    if more && self.session.in_flight() == 0 {
                        self.session.encode_transmits(now, &mut self.write_buf);
                        more = false;
                    }
                    match poll_write_all(conn, cx, &mut self.write_buf, &mut self.flushed) {
                        Poll::Ready(Err(e)) => {
                            failure = Some(e);
                            break;
                        }
                        Poll::Ready(Ok(())) if more => {}
                        Poll::Ready(Ok(())) | Poll::Pending => break,
                    }
                }
                // What the session produced while writing (QoS 0 sent).
                self.drain_events();
            }
        }
        if let Some(e) = failure {
            debug!(error = %e, "transport closed");
            // What arrived before the end is taken in first, even with the
            // application behind: it may be the server's DISCONNECT.
            if self.undecoded {
                self.decode();
            }
            // When the session had ended the connection (a refusal in
            // CONNACK, say, or the server's DISCONNECT), that is the
            // reason, not the closed socket.
            let ended = self.down.take();
            let now = self.now();
            self.session.connection_lost(now);
            self.drain_events();
            self.down = None;
            self.link_down(
                ended.map_or(Error::Transport(TransportError::Io(e)), Error::Connection),
            );
            return true;
        }
        if self.session.state() == mqtt_session::ConnectionState::Disconnected {
            // The session ended the connection (error, timeout, DISCONNECT).
            self.set_link_closing();
            return true;
        }
        progress
    }

    fn decode(&mut self) {
        self.undecoded = false;
        let now = self.now();
        if let Err(e) = self.session.handle_bytes(now, &mut self.read_buf) {
            warn!(error = %e, "closing the connection");
        }
        self.drain_events();
    }

    /// The connection is gone (or could not be made): report it, then wait
    /// to reconnect or finish.
    fn link_down(&mut self, error: Error) {
        self.link = Link::Waiting;
        self.down = None;
        self.read_buf = BytesMut::new();
        self.write_buf = BytesMut::new();
        let _ = self.state.send(ConnectionState::Disconnected);
        let refused = error.connect_reason().is_some_and(permanent);
        if let Some(first) = self.first.take() {
            warn!(addr = %self.addr, %error, "first connection failed");
            let _ = first.send(Err(error));
            self.link = Link::Finished;
            return;
        }
        if self.stop {
            self.link = Link::Finished;
            return;
        }
        warn!(addr = %self.addr, %error, "connection lost");
        let _ = self
            .events
            .send(ConnectionEvent::Disconnected(Arc::new(error)));
        if refused || !self.reconnect.enabled {
            self.link = Link::Finished;
            return;
        }
        let delay = self.reconnect.delay(self.attempt, self.rng.unit());
        self.attempt = self.attempt.saturating_add(1);
        self.retry_at = Some(Instant::now() + delay);
        info!(attempt = self.attempt, ?delay, "reconnecting");
        let _ = self.events.send(ConnectionEvent::Reconnecting {
            attempt: self.attempt,
            delay,
        });
    }

    fn drain_events(&mut self) {
        // Queue permits are given back at once (each release takes the
        // semaphore's lock).
        let mut freed = 0;
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Message(p) => self.inbox.push_back(p),
                Event::Published { request, outcome } => {
                    if let Some(p) = self.publishes.remove(&request) {
                        freed += 1;
                        let result = match outcome {
                            Outcome::Delivered(r) => Ok(r),
                            Outcome::Refused(r) => Err(Box::new(Error::Refused(r))),
                            Outcome::NotFound => Err(Box::new(Error::NotFound)),
                            Outcome::Dropped => Err(Box::new(Error::Dropped)),
                        };
                        p.reply.map(|r| r.send(result));
                    }
                }
                Event::Subscribed { request, suback } => {
                    if let Some(r) = self.subscribes.remove(&request) {
                        let _ = r.send(Ok(suback));
                    }
                }
                Event::Unsubscribed { request, unsuback } => {
                    if let Some(r) = self.unsubscribes.remove(&request) {
                        let _ = r.send(Ok(unsuback));
                    }
                }
                Event::Connected(connack) => {
                    info!(
                        addr = %self.addr,
                        session_present = connack.session_present,
                        "connected"
                    );
                    self.attempt = 0;
                    let connack = Box::new(connack);
                    let _ = self.connack.send(Some(connack.clone()));
                    let _ = self.state.send(ConnectionState::Connected);
                    if let Some(first) = self.first.take() {
                        let _ = first.send(Ok(()));
                    }
                    let _ = self.events.send(ConnectionEvent::Connected(connack));
                }
                Event::Restored { suback } => {
                    if suback.reasons.iter().any(|r| r.granted_qos().is_none()) {
                        warn!(reasons = ?suback.reasons, "some subscriptions were not restored");
                    } else {
                        info!(count = suback.reasons.len(), "subscriptions restored");
                    }
                    let _ = self.events.send(ConnectionEvent::Restored(suback));
                }
                Event::Auth(auth) => {
                    let _ = self.events.send(ConnectionEvent::Auth(auth));
                }
                Event::Disconnected(e) => self.down = Some(e),
            }
        }
        if freed > 0 {
            self.permits.add_permits(freed);
        }
    }

    /// Hands received messages to the application, as far as it takes them.
    fn deliver(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while let Some(p) = self.inbox.front() {
            let route = self
                .routes
                .iter()
                .position(|r| r.filters.iter().any(|f| f.matches(p.topic())));
            let sender = match route {
                Some(i) => &mut self.routes[i].sender,
                None => &mut self.main,
            };
            match sender.poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    if let Some(p) = self.inbox.pop_front() {
                        let _ = Pin::new(sender).start_send(p);
                    }
                    progress = true;
                }
                Poll::Ready(Err(_)) => {
                    match route {
                        // That stream was dropped: later matches go to the main one.
                        Some(i) => {
                            self.routes.swap_remove(i);
                        }
                        // Nobody reads messages any more.
                        None => {
                            self.inbox.pop_front();
                        }
                    }
                    progress = true;
                }
                Poll::Pending => break,
            }
        }
        if progress && self.inbox.is_empty() && self.undecoded && matches!(self.link, Link::Up(_)) {
            self.decode();
        }
        progress
    }

    fn finish(&mut self) {
        let _ = self.state.send(ConnectionState::Closed);
        let _ = self.events.send(ConnectionEvent::Closed);
        // Messages already received still reach a stream with room.
        while let Some(p) = self.inbox.pop_front() {
            if self.main.try_send(p).is_err() {
                break;
            }
        }
        for (_, p) in self.publishes.drain() {
            self.permits.add_permits(1);
            p.reply.map(|r| r.send(Err(Box::new(Error::Closed))));
        }
        for (_, r) in self.subscribes.drain() {
            let _ = r.send(Err(Error::Closed));
        }
        for (_, r) in self.unsubscribes.drain() {
            let _ = r.send(Err(Error::Closed));
        }
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(Error::Closed));
        }
        for done in self.stopped.drain(..) {
            let _ = done.send(());
        }
        self.commands.close();
        info!(addr = %self.addr, "client closed");
    }
}

/// Writes all of `buf` and flushes; `Ready(Ok)` once both are done.
fn poll_write_all(
    conn: &mut Connection,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
    flushed: &mut bool,
) -> Poll<io::Result<()>> {
    while !buf.is_empty() {
        match Pin::new(&mut *conn).poll_write(cx, buf) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                *flushed = false;
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
    if !*flushed {
        match Pin::new(&mut *conn).poll_flush(cx) {
            Poll::Ready(Ok(())) => *flushed = true,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Ready(Ok(()))
}
