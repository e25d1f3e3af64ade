//! One client connection: a task that drives a `ServerSession` between the
//! socket and the shared broker state.

use crate::{
    broker::Shared,
    hooks::{AuthState, AuthStep, ClientInfo},
    mailbox::{Mailbox, Queued},
    persist::Ticket,
    retained::expire_owned,
    state::{Control, ControlSlot, Live, PendingWill, expiry_deadline, outgoing_copy},
    store::{Change, MessageState},
    subscriptions::Subscriber,
};
use bytes::{Buf, Bytes, BytesMut};
use mqtt_codec::{
    Auth, AuthReason, ConnAck, Connect, ConnectReason, DisconnectReason, Encode, Packet, Publish,
    QosPid, RetainHandling, SubAck, SubAckReason, Subscribe, TopicFilter, UnsubAck, UnsubAckReason,
    Unsubscribe,
};
use mqtt_session::{ConnectionError, DeliverError, RequestId, ServerEvent, ServerSession};
use mqtt_transport_tcp::Connection;
use std::{
    collections::VecDeque,
    io::IoSlice,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::oneshot,
};
use tracing::{debug, info, warn};

/// Bytes of encoded packets kept ready to write; past this the session
/// keeps the rest (bounded by its own queue).
const WRITE_HIGH: usize = 64 * 1024;
/// Room made in the read buffer before each read while data flows.
const READ_CHUNK: usize = 16 * 1024;
/// Buffers larger than this are released while the connection is idle.
const IDLE_BUFFER: usize = 4 * 1024;
/// Read size of an idle connection.
const IDLE_READ: usize = 64;
/// Read size of a parked connection (see [`park`]).
const PARK_READ: usize = 16;
/// Messages moved from the mailbox to the session at a time.
const MAILBOX_BATCH: usize = 256;
/// Most messages a publisher's burst holds before it is routed.
const BURST: usize = 64;
/// A turn that queues more packets than this is a burst: the connection
/// keeps its grown buffers for [`KEEP_BUFFERS`] after it, rather than give
/// them back when idle and grow them again for the next burst.
const BURST_CHUNKS: usize = 16;
/// How long buffers grown by a burst are kept once the connection is idle.
const KEEP_BUFFERS: Duration = Duration::from_millis(100);
/// How long a closed connection waits for the peer to close its side.
const LINGER: Duration = Duration::from_millis(500);
/// How long an ending connection may take to write its last packets.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a takeover waits for the old connection's session state.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);

/// The store number behind a request handle, if the message is stored.
fn stored_seq(request: RequestId) -> Option<u64> {
    let raw = request.raw();
    (raw != 0 && request != RequestId::UNTRACKED).then_some(raw)
}

/// Encoded packets waiting for the socket: headers and small packets
/// encoded one after another into one buffer, PUBLISH payloads as the
/// received `Bytes` (never copied). A vectored write interleaves them.
struct OutQueue {
    chunks: VecDeque<Chunk>,
    /// The bytes of every [`Chunk::Inline`], in order.
    inline: BytesMut,
    len: usize,
    /// Everything was written but the flush did not finish (its future
    /// was dropped): the next write flushes.
    unflushed: bool,
    /// Bytes written so far: positions in the connection's output.
    written: u64,
    /// The bytes before this position wait for at most the tickets in
    /// `holds`; those after it are not yet known to be writable.
    required_to: u64,
    /// From each position on, the bytes wait for this store batch
    /// (positions and tickets ascending): an acknowledgement goes out once
    /// the batch holding what it promises is durable, without waiting for
    /// batches that later messages went into.
    holds: VecDeque<(u64, Ticket)>,
}

/// A piece of what is queued.
enum Chunk {
    /// The next this many bytes of [`OutQueue::inline`].
    Inline(usize),
    /// A payload.
    Shared(Bytes),
}

/// Slices handed to one vectored write.
const MAX_SLICES: usize = 1024;

impl OutQueue {
    fn new() -> OutQueue {
        OutQueue {
            chunks: VecDeque::new(),
            inline: BytesMut::new(),
            len: 0,
            unflushed: false,
            written: 0,
            required_to: 0,
            holds: VecDeque::new(),
        }
    }

    /// Where the bytes queued so far end.
    fn end(&self) -> u64 {
        self.written + self.len as u64
    }

    /// The bytes queued since the last call wait for `ticket` (the
    /// connection's latest, which covers every change they depend on);
    /// until this is called for them they are not written.
    fn require(&mut self, ticket: Ticket) {
        let end = self.end();
        if end == self.required_to {
            return;
        }
        if ticket > self.holds.back().map_or(0, |h| h.1) {
            self.holds.push_back((self.required_to, ticket));
        }
        self.required_to = end;
    }

    /// The store committed batches up to `committed`: what waited for them
    /// may go out.
    fn release(&mut self, committed: Ticket) {
        while self.holds.front().is_some_and(|h| h.1 <= committed) {
            self.holds.pop_front();
        }
    }

    /// The store batch the next bytes wait for, if any do.
    fn blocked_on(&self) -> Option<Ticket> {
        self.holds.front().map(|h| h.1)
    }

    /// Bytes that may be written now.
    fn writable(&self) -> usize {
        let limit = self.holds.front().map_or(self.required_to, |h| h.0);
        limit.min(self.required_to).saturating_sub(self.written) as usize
    }

    /// Something may be written or flushed now.
    fn can_write(&self) -> bool {
        self.writable() > 0 || self.unflushed
    }

    fn push(&mut self, packet: Packet, version: mqtt_codec::ProtocolVersion) {
        let before = self.inline.len();
        let result = match packet {
            Packet::Publish(p) if !p.payload().is_empty() => {
                p.encode_header(version, &mut self.inline).map(|_| {
                    self.add_inline(self.inline.len() - before);
                    self.len += p.payload().len();
                    self.chunks.push_back(Chunk::Shared(p.into_payload_bytes()));
                })
            }
            other => other
                .encode(version, &mut self.inline)
                .map(|_| self.add_inline(self.inline.len() - before)),
        };
        if let Err(e) = result {
            // The session only produces packets that fit; log and skip.
            warn!(error = %e, "packet not encodable; skipped");
            self.inline.truncate(before);
        }
    }

    fn add_inline(&mut self, n: usize) {
        self.len += n;
        match self.chunks.back_mut() {
            // The bytes follow the last chunk's in `inline`: one slice.
            Some(Chunk::Inline(m)) => *m += n,
            _ => self.chunks.push_back(Chunk::Inline(n)),
        }
    }

    /// Nothing to write or flush.
    fn is_empty(&self) -> bool {
        self.len == 0 && !self.unflushed
    }

    /// One vectored write of what may be written (see
    /// [`writable`](OutQueue::writable)); once all of that is written, a
    /// flush (which may be dropped part way and is then taken up by the
    /// next call).
    async fn write<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> std::io::Result<usize> {
        let writable = self.writable();
        if writable == 0 {
            if self.unflushed {
                w.flush().await?;
                self.unflushed = false;
            }
            return Ok(0);
        }
        let n = {
            // (On the heap: the connection's future stays small.)
            let mut at = 0;
            let mut room = writable;
            let slices: Vec<IoSlice<'_>> = self
                .chunks
                .iter()
                .take(MAX_SLICES)
                .map_while(|chunk| {
                    let bytes = match chunk {
                        Chunk::Inline(m) => {
                            let s = &self.inline[at..at + m];
                            at += m;
                            s
                        }
                        Chunk::Shared(b) => b,
                    };
                    let take = bytes.len().min(room);
                    room -= take;
                    (take > 0).then(|| IoSlice::new(&bytes[..take]))
                })
                .collect();
            w.write_vectored(&slices).await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        self.len -= n;
        self.written += n as u64;
        let mut left = n;
        while left > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let (len, done) = match front {
                Chunk::Inline(m) => {
                    let k = left.min(*m);
                    self.inline.advance(k);
                    *m -= k;
                    (k, *m == 0)
                }
                Chunk::Shared(b) => {
                    let k = left.min(b.len());
                    b.advance(k);
                    (k, b.is_empty())
                }
            };
            left -= len;
            if done {
                self.chunks.pop_front();
            }
        }
        if self.chunks.is_empty() {
            self.inline.clear();
        }
        if n == writable {
            // A WebSocket connection sends what was written as a frame.
            self.unflushed = true;
            w.flush().await?;
            self.unflushed = false;
        }
        Ok(n)
    }
}

/// What the connection knows once CONNECT was accepted.
struct Accepted {
    client: ClientInfo,
    mailbox: Arc<Mailbox>,
    /// (Boxed: most clients have none.)
    will: Option<Box<(Publish, u32)>>,
    expiry: u32,
}

pub(crate) struct Conn {
    shared: Arc<Shared>,
    id: u64,
    info: Arc<mqtt_transport_tcp::ConnectionInfo>,
    session: ServerSession,
    epoch: Instant,
    accepted: Option<Accepted>,
    connect: Option<Arc<Connect>>,
    /// Authentication's state until the client is accepted (and while it
    /// re-authenticates).
    auth: Option<Box<AuthState>>,
    /// The store's latest batch holding this connection's changes: what
    /// the session produced since (acknowledgements) waits for it.
    wait_for: Ticket,
    /// The publish rate limit's bucket.
    rate: RateLimit,
    /// Now, as of this turn of the connection's loop.
    clock: Instant,
    control: Arc<ControlSlot>,
    /// The session state was handed to a newer connection (takeover).
    handed_over: bool,
    /// The newer connection resumes the session (Clean Start 0).
    session_continues: bool,
    /// Will suppressed (normal DISCONNECT) or already handled.
    will_done: bool,
    /// The session ended (the connection is closing), and why (boxed:
    /// kept for the log).
    ended: Option<Box<ConnectionError>>,
    /// Messages on their way through the connection while it is busy
    /// (none while it is idle).
    work: Option<Box<Work>>,
    /// The last burst found a subscriber's mailbox filling up: route one
    /// message at a time.
    pressure: bool,
    /// Copies routed since the loop last looked (how widely this
    /// publisher's messages fan out).
    routed_copies: usize,
    /// A subscriber's mailbox this publisher filled past its high-water
    /// mark: reading pauses until it drains (or is found stuck), so that
    /// acknowledged messages are not dropped for a merely slow subscriber.
    congested: Option<Arc<Mailbox>>,
}

impl Conn {
    /// The session's time: the connection's clock, read once per turn of
    /// its loop (not once per packet).
    fn now(&self) -> mqtt_session::Instant {
        mqtt_session::Instant::from_duration(self.clock.saturating_duration_since(self.epoch))
    }

    fn to_instant(&self, t: mqtt_session::Instant) -> Instant {
        self.epoch + t.since_origin()
    }

    /// Authentication's state, made when first needed.
    fn auth_state(&mut self) -> &mut AuthState {
        self.auth.get_or_insert_default()
    }

    /// The last store batch committed (every one, without a store; none
    /// once the store failed: nothing more is acknowledged).
    fn committed(&self) -> Ticket {
        match &self.shared.persist {
            None => Ticket::MAX,
            Some(p) => {
                // The batch first, then the flag: a failure marks every
                // batch committed (to wake the waiting connections) after
                // setting the flag, so a batch seen committed by a failure
                // is always seen with the flag.
                let committed = p.committed();
                if p.has_failed() { 0 } else { committed }
            }
        }
    }

    /// Marks what `out` holds as waiting for this connection's changes so
    /// far, and releases what the store has committed.
    fn hold(&self, out: &mut OutQueue) {
        out.require(self.wait_for);
        out.release(self.committed());
    }
}

/// What a connection's loop keeps between turns besides the [`Conn`]:
/// its socket, read buffer and timer.
struct Link {
    /// The socket, read and written through [`Half`]s.
    io: std::sync::Mutex<Connection>,
    /// Bytes read and not yet handled (empty, without memory, while idle).
    rbuf: BytesMut,
    /// How much the next read asks for.
    read_size: usize,
    /// The peer has not closed its side.
    read_open: bool,
    /// The connection's one timer, moved to each deadline in turn (on the
    /// heap, with the rest of the connection, not in its task's future).
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// Counts the socket against the connection limits while it lives.
    _slot: Option<crate::broker::SocketSlot>,
}

/// How a run of the connection's busy loop ended.
enum Turn {
    /// Nothing to do but wait for the peer, a message, a control or the
    /// keep-alive deadline: the connection parks.
    Idle,
    /// The connection is over.
    Closed,
}

/// Serves one established connection until it closes.
///
/// The task's own future stays small: the connection's state is on the
/// heap, the busy loop (with its many waits) is a boxed future that exists
/// only while there is work, and an idle connection waits in [`park`],
/// which holds a timer and little else.
pub(crate) fn serve(
    shared: Arc<Shared>,
    conn: Connection,
    slot: Option<crate::broker::SocketSlot>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
    let info = conn.shared_info();
    let epoch = Instant::now();
    let session = ServerSession::new(shared.session_options.clone(), mqtt_session::Instant::ZERO);
    let c = Conn {
        shared: shared.clone(),
        id,
        info,
        session,
        epoch,
        accepted: None,
        connect: None,
        auth: None,
        wait_for: 0,
        rate: RateLimit::default(),
        clock: epoch,
        control: Arc::default(),
        handed_over: false,
        session_continues: false,
        will_done: false,
        ended: None,
        work: None,
        pressure: false,
        routed_copies: 0,
        congested: None,
    };
    shared.stats.connections.fetch_add(1, Ordering::Relaxed);
    debug!(peer = %c.info.peer_addr, kind = ?c.info.kind, "connection opened");
    let l = Link {
        io: std::sync::Mutex::new(conn),
        // Small at first: the CONNECT packet, kept until the client is
        // accepted, shares its read buffer's memory.
        rbuf: BytesMut::with_capacity(512),
        read_size: 512,
        read_open: true,
        timer: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
        _slot: slot,
    };
    // One allocation for both. (The future captures the box alone: what a
    // future captures stays in it for its whole life.)
    let mut both = Box::new((c, l));
    async move {
        while let Turn::Idle = Box::pin(run(&mut both)).await {
            park(&mut both).await;
        }
        Box::pin(close(&mut both)).await;
    }
}

/// The connection's loop while it has work: returns once it is idle (see
/// [`Turn::Idle`]) or over.
async fn run((c, l): &mut (Conn, Link)) -> Turn {
    let peer = c.info.peer_addr;
    let shared = c.shared.clone();
    let control = c.control.clone();
    // What waits for the socket: nothing once the connection is idle.
    let mut out = OutQueue::new();
    // Buffers grown by a burst are kept until then (the connection does
    // not park meanwhile).
    let mut keep_buffers_until: Option<Instant> = None;
    // When an ending connection started closing.
    let mut closing_since: Option<Instant> = None;
    let mut commits = shared.persist.as_ref().map(|p| p.watch());
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        if *shutdown.borrow() && !c.session.is_closed() {
            // Shutting down already when this connection started or woke,
            // or when it became a live session after the broker kicked
            // every live one (it was waiting for a takeover, say).
            c.session.disconnect(DisconnectReason::ServerShuttingDown);
        }
        c.clock = Instant::now();
        c.handle_events().await;
        if c.congested
            .as_ref()
            .is_some_and(|m| !m.is_congested() || m.is_stuck(c.clock))
        {
            c.congested = None;
        }
        // Handle buffered packets one at a time, pausing (with the rest left
        // in the buffer) as soon as a subscriber this publisher feeds falls
        // behind.
        let now = c.now();
        let mut handled = 0;
        c.routed_copies = 0;
        while c.congested.is_none() && !c.session.is_closed() && !c.rate.is_paused() {
            match c.session.handle_one(now, &mut l.rbuf) {
                Ok(true) => {
                    c.handle_events().await;
                    handled += 1;
                    if handled % BURST == 0 {
                        // What is ready (acknowledgements) goes out now if
                        // the socket takes it at once: the client sends more
                        // while the rest of the buffer is handled. Not when
                        // the messages fan out widely: the deliveries are
                        // then most of the work, and bigger bursts do it
                        // more cheaply.
                        c.route_burst();
                        let wide = std::mem::take(&mut c.routed_copies) > BURST;
                        fill_out(c, &mut out);
                        c.handle_events().await;
                        if !wide && !write_now(c, &mut out, &mut Half(&l.io), &mut l.read_open) {
                            break;
                        }
                    }
                }
                Ok(false) => break,
                Err(e) => {
                    debug!(%peer, error = %e, "closing the connection");
                    break;
                }
            }
        }
        c.handle_events().await;
        c.route_burst();
        c.fill_from_mailbox();
        fill_out(c, &mut out);
        if out.chunks.len() > BURST_CHUNKS {
            keep_buffers_until = Some(c.clock + KEEP_BUFFERS);
        }
        // What sending produced (a QoS 2 message's packet id) is recorded
        // before the output is held below: the PUBLISH waits for it.
        c.handle_events().await;
        if (c.session.is_closed() || !l.read_open) && out.is_empty() {
            return Turn::Closed;
        }
        // What stays in the buffer is at most one incomplete packet (within
        // the maximum packet size): the session takes every complete one.
        // Idle connections give their buffers back; busy ones read big.
        if keep_buffers_until.is_none() {
            if l.rbuf.is_empty() && l.rbuf.capacity() > IDLE_BUFFER {
                l.rbuf = BytesMut::new();
            }
            if out.is_empty() && out.inline.capacity() > IDLE_BUFFER {
                out.inline = BytesMut::new();
            }
        }
        // Nothing coming in fast, nothing going out, nothing in flight: the
        // connection is idle; it keeps only what it needs to wait (once a
        // burst's buffers have been kept a moment, in case another comes).
        let idle = l.rbuf.is_empty()
            && out.is_empty()
            && l.read_size < READ_CHUNK
            && c.session.in_flight() == 0;
        if keep_buffers_until.is_some_and(|t| c.clock >= t) {
            keep_buffers_until = None;
        }
        if idle && keep_buffers_until.is_none() {
            l.rbuf = BytesMut::new();
            // A small read to start with (a PINGREQ is 2 bytes); reads
            // grow again as data flows.
            l.read_size = IDLE_READ;
            out = OutQueue::new();
            c.session.shrink_buffers();
            // (Routed before anything is written: empty here.)
            debug_assert!(
                c.work
                    .as_ref()
                    .is_none_or(|w| w.burst.is_empty() && w.awaiting.is_empty())
            );
            c.work = None;
            // Only an accepted session parks: broker shutdown reaches it
            // through its control slot (see `Broker::shutdown`).
            if c.accepted.is_some()
                && c.ended.is_none()
                && !c.handed_over
                && l.read_open
                && !c.session.is_closed()
                && c.congested.is_none()
                && !c.rate.is_paused()
                && !*shutdown.borrow()
            {
                return Turn::Idle;
            }
        }
        l.rbuf.reserve(l.read_size);
        let deadline = c.session.poll_timeout().map(|t| c.to_instant(t));
        let congested = c.congested.clone();
        let throttled = if c.rate.is_paused() {
            c.rate.paused(Instant::now())
        } else {
            None
        };
        let mailbox = c
            .accepted
            .as_ref()
            .filter(|_| c.ended.is_none() && !c.handed_over)
            .map(|a| a.mailbox.clone());
        // A connection that is ending gets CLOSE_TIMEOUT to take its last bytes.
        if c.ended.is_some() && closing_since.is_none() {
            closing_since = Some(Instant::now());
        }
        let close_by = closing_since.map(|t| t + CLOSE_TIMEOUT);
        if close_by.is_some_and(|t| Instant::now() >= t) {
            debug!(%peer, "peer did not take the last bytes in time");
            return Turn::Closed;
        }
        // Acknowledgements go out once the store has what they promise.
        c.hold(&mut out);
        let blocked_on = out.blocked_on();
        if let Some(p) = &shared.persist
            && p.has_failed()
            && !out.is_empty()
        {
            warn!(%peer, "the store failed: closing without acknowledging");
            c.session.connection_lost();
            l.read_open = false;
            out = OutQueue::new();
            continue;
        }
        let recheck = congested
            .as_ref()
            .map(|_| Instant::now() + Duration::from_millis(100));
        let shrink_at = keep_buffers_until.filter(|_| idle);
        let wake_at = [deadline, close_by, throttled, recheck, shrink_at]
            .into_iter()
            .flatten()
            .min();
        let (mut rd, mut wr) = (Half(&l.io), Half(&l.io));
        let Link {
            rbuf,
            read_size,
            read_open,
            timer,
            ..
        } = l;
        tokio::select! {
            biased;
            _ = wait_commit(commits.as_mut(), blocked_on.unwrap_or(0)), if blocked_on.is_some() => {}
            ctl = control.recv() => on_control(c, ctl),
            changed = shutdown.changed(), if !*shutdown.borrow() => {
                if changed.is_ok() {
                    c.session.disconnect(DisconnectReason::ServerShuttingDown);
                }
            }
            r = out.write(&mut wr), if out.can_write() => {
                wrote(r, c, &mut out, read_open);
            }
            r = rd.read_buf(rbuf), if *read_open && c.ended.is_none() && !c.session.is_closed() && out.len < WRITE_HIGH && congested.is_none() && throttled.is_none() => {
                on_read(c, r, read_size, read_open);
            }
            _ = wait_mailbox(mailbox.as_deref()), if mailbox.is_some() => {}
            _ = wait_space(congested.as_deref()), if congested.is_some() => {}
            // One timer for the keep-alive or CONNECT deadline, the close
            // timeout and the rate limit's pause (each checked on waking).
            _ = wait_until(timer, wake_at), if wake_at.is_some() => {
                // (A `shrink_at` that passed is seen at the top of the loop.)
                c.clock = Instant::now();
                if deadline.is_some_and(|d| c.clock >= d) {
                    let now = c.now();
                    c.session.handle_timeout(now);
                }
            }
        }
    }
}

/// Waits, holding little, until an idle connection has something to do:
/// bytes from the peer (read into the small idle buffer), a message in its
/// mailbox (taken by [`run`]), a control, or the session's deadline.
fn park(t: &mut (Conn, Link)) -> impl std::future::Future<Output = ()> + '_ {
    let (c, l) = t;
    let deadline = c.session.poll_timeout().map(|t| c.to_instant(t));
    if let Some(d) = deadline {
        set_timer(&mut l.timer, d);
    }
    let timed = deadline.is_some();
    // The first bytes that come are read here, in the task's future: an
    // idle connection holds no read buffer.
    let mut first = [0u8; PARK_READ];
    // (Nothing else kept across polls but what the connection holds: this
    // future sits in every idle connection's task.)
    std::future::poll_fn(move |cx| {
        let (c, l) = &mut *t;
        if let Some(ctl) = c.control.poll_recv(cx) {
            on_control(c, ctl);
            return std::task::Poll::Ready(());
        }
        let Some(a) = c.accepted.as_ref() else {
            return std::task::Poll::Ready(());
        };
        if a.mailbox.notify.poll_wait(cx).is_ready() {
            return std::task::Poll::Ready(());
        }
        let mut buf = tokio::io::ReadBuf::new(&mut first);
        if let std::task::Poll::Ready(r) =
            tokio::io::AsyncRead::poll_read(std::pin::Pin::new(&mut Half(&l.io)), cx, &mut buf)
        {
            let r = r.map(|()| {
                l.rbuf.extend_from_slice(buf.filled());
                buf.filled().len()
            });
            on_read(c, r, &mut l.read_size, &mut l.read_open);
            return std::task::Poll::Ready(());
        }
        if timed && l.timer.as_mut().poll(cx).is_ready() {
            c.clock = Instant::now();
            let now = c.now();
            c.session.handle_timeout(now);
            return std::task::Poll::Ready(());
        }
        std::task::Poll::Pending
    })
}

/// Acts on a control another task sent this connection.
fn on_control(c: &mut Conn, ctl: Control) {
    let Control::Kick {
        reason,
        handover,
        continues,
    } = ctl;
    if let Some(tx) = handover {
        let _ = tx.send(c.session.session_state());
        c.handed_over = true;
        c.session_continues = continues;
    }
    c.session.disconnect(reason);
}

/// Accounts for a read from the peer.
fn on_read(c: &mut Conn, r: std::io::Result<usize>, read_size: &mut usize, read_open: &mut bool) {
    match r {
        Ok(0) | Err(_) => {
            c.session.connection_lost();
            *read_open = false;
        }
        Ok(n) => {
            c.shared
                .stats
                .bytes_received
                .fetch_add(n as u64, Ordering::Relaxed);
            // Big reads while data flows, small ones when it trickles.
            *read_size = if n >= 512 { READ_CHUNK } else { 1024 };
        }
    }
}

/// Ends the connection: shuts the socket down, lingers for the peer to
/// close its side, and settles the session with the broker.
async fn close((c, l): &mut (Conn, Link)) {
    let _ = tokio::time::timeout(LINGER, Half(&l.io).shutdown()).await;
    // Lingering close: let the peer finish (a WebSocket peer answers our
    // Close frame) instead of resetting it with unread data, for a moment.
    if l.read_open {
        let drain = async {
            // On the heap: an array here would sit in every connection's
            // task for its whole life.
            let mut sink = vec![0u8; 4096];
            while let Ok(n) = Half(&l.io).read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
    c.control.close();
    c.handle_events().await;
    c.route_burst();
    c.finish();
    c.shared.stats.connections.fetch_sub(1, Ordering::Relaxed);
    debug!(peer = %c.info.peer_addr, "connection closed");
}

/// One side's access to the connection's socket: the loop waits to read
/// and to write at once, each wait through its own `Half`, and polls them
/// one at a time (so the lock is never contended; it makes the halves
/// shareable without an allocation of their own).
struct Half<'a>(&'a std::sync::Mutex<Connection>);

impl Half<'_> {
    fn with<R>(
        &self,
        f: impl FnOnce(std::pin::Pin<&mut Connection>) -> std::task::Poll<std::io::Result<R>>,
    ) -> std::task::Poll<std::io::Result<R>> {
        match self.0.try_lock() {
            Ok(mut io) => f(std::pin::Pin::new(&mut io)),
            Err(std::sync::TryLockError::Poisoned(p)) => f(std::pin::Pin::new(&mut p.into_inner())),
            Err(std::sync::TryLockError::WouldBlock) => {
                std::task::Poll::Ready(Err(std::io::Error::other("socket in use")))
            }
        }
    }
}

impl tokio::io::AsyncRead for Half<'_> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.with(|io| io.poll_read(cx, buf))
    }
}

impl AsyncWrite for Half<'_> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.with(|io| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.with(|io| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.0.try_lock().map_or(true, |io| io.is_write_vectored())
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.with(|io| io.poll_flush(cx))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.with(|io| io.poll_shutdown(cx))
    }
}

/// Moves what the session has to send into `out`, up to its high-water mark.
fn fill_out(c: &mut Conn, out: &mut OutQueue) {
    let version = c.session.version();
    let now = c.now();
    while out.len < WRITE_HIGH {
        let Some(p) = c.session.poll_transmit(now) else {
            break;
        };
        if let Packet::Publish(_) = &p {
            c.shared.stats.messages_sent.fetch_add(1, Ordering::Relaxed);
        }
        out.push(p, version);
    }
}

/// Writes what is queued if the store allows it and the socket takes it
/// at once (a write that would wait is left to the loop). Returns `false`
/// when the write failed and the connection is over.
fn write_now<W: AsyncWrite + Unpin>(
    c: &mut Conn,
    out: &mut OutQueue,
    wr: &mut W,
    read_open: &mut bool,
) -> bool {
    c.hold(out);
    if !out.can_write() {
        return true;
    }
    match futures_util::FutureExt::now_or_never(out.write(wr)) {
        Some(r) => wrote(r, c, out, read_open),
        None => true,
    }
}

/// Accounts for a write; a failed one ends the connection. Returns
/// whether it succeeded.
fn wrote(
    r: std::io::Result<usize>,
    c: &mut Conn,
    out: &mut OutQueue,
    read_open: &mut bool,
) -> bool {
    match r {
        Ok(n) => {
            c.shared
                .stats
                .bytes_sent
                .fetch_add(n as u64, Ordering::Relaxed);
            true
        }
        Err(e) => {
            debug!(peer = %c.info.peer_addr, error = %e, "write failed");
            c.session.connection_lost();
            *read_open = false;
            *out = OutQueue::new();
            false
        }
    }
}

/// Messages on their way through a busy connection.
#[derive(Default)]
struct Work {
    /// Taken from the mailbox, on their way into the session.
    batch: VecDeque<Queued>,
    /// Messages received and not yet routed (see [`Conn::route_burst`]).
    burst: Vec<Publish>,
    /// QoS 2 identifiers received and not yet stored as awaiting PUBREL.
    awaiting: Vec<mqtt_codec::PacketId>,
}

/// The connection's [`Work`], made if there is none.
fn work(w: &mut Option<Box<Work>>) -> &mut Work {
    w.get_or_insert_default()
}

/// A token bucket for [`Limits::max_publish_rate`](crate::Limits):
/// `rate` tokens a second, at most `rate` saved up. Made at the first
/// PUBLISH when a rate is set (nothing is kept without one).
#[derive(Debug, Default)]
struct RateLimit(Option<Box<Bucket>>);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// Reading pauses until then.
    paused_until: Option<Instant>,
}

impl RateLimit {
    /// Takes a token for one PUBLISH; when none is left, pauses the
    /// connection's input until one will be.
    fn take(&mut self, limits: &crate::Limits, now: Instant) {
        let Some(rate) = limits.max_publish_rate.filter(|&r| r > 0).map(f64::from) else {
            return;
        };
        let b = self.0.get_or_insert_with(|| {
            Box::new(Bucket {
                tokens: rate,
                last: now,
                paused_until: None,
            })
        });
        b.tokens =
            (b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate).min(rate);
        b.last = now;
        b.tokens -= 1.0;
        if b.tokens < 0.0 {
            b.paused_until = Some(now + Duration::from_secs_f64(-b.tokens / rate));
        }
    }

    /// Whether a pause may be on (without reading the clock).
    fn is_paused(&mut self) -> bool {
        let Some(b) = self.0.as_mut() else {
            return false;
        };
        match b.paused_until {
            None => false,
            Some(t) => {
                if t <= Instant::now() {
                    b.paused_until = None;
                    false
                } else {
                    true
                }
            }
        }
    }

    /// While paused: until when.
    fn paused(&mut self, now: Instant) -> Option<Instant> {
        let b = self.0.as_mut()?;
        match b.paused_until {
            Some(t) if t > now => Some(t),
            _ => {
                b.paused_until = None;
                None
            }
        }
    }
}

/// Waits until the store's batch `ticket` is committed.
async fn wait_commit(commits: Option<&mut tokio::sync::watch::Receiver<u64>>, ticket: Ticket) {
    match commits {
        Some(rx) => {
            while *rx.borrow_and_update() < ticket {
                if rx.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        }
        None => std::future::pending().await,
    }
}

async fn wait_mailbox(mailbox: Option<&Mailbox>) {
    match mailbox {
        Some(m) => m.notify.wait().await,
        None => std::future::pending().await,
    }
}

/// Waits until a congested mailbox has room (or a while, to look again
/// whether it is stuck).
async fn wait_space(mailbox: Option<&Mailbox>) {
    let Some(m) = mailbox else {
        return std::future::pending().await;
    };
    let notified = m.space.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    if !m.is_congested() {
        return;
    }
    // The connection's one timer also wakes it (every 100 ms while
    // congested) to look again whether the mailbox is stuck.
    notified.await;
}

/// Waits until `deadline` on the connection's timer (forever without one).
async fn wait_until(timer: &mut std::pin::Pin<Box<tokio::time::Sleep>>, deadline: Option<Instant>) {
    match deadline {
        Some(d) => {
            set_timer(timer, d);
            timer.as_mut().await
        }
        None => std::future::pending().await,
    }
}

/// Moves the connection's timer to `deadline`.
fn set_timer(timer: &mut std::pin::Pin<Box<tokio::time::Sleep>>, deadline: Instant) {
    if timer.deadline() != deadline.into() {
        timer.as_mut().reset(deadline.into());
    }
}

impl Conn {
    /// Whether a topic name or filter keeps to the length and level limits.
    fn topic_within_limits(&self, topic: &str) -> bool {
        let l = &self.shared.config.limits;
        l.max_topic_length.is_none_or(|m| topic.len() <= m)
            && l.max_topic_levels
                .is_none_or(|m| topic.split('/').count() <= m)
    }

    /// Stores a stored message's new state; acknowledgements that follow
    /// wait for it.
    fn store_state(&mut self, request: RequestId, state: MessageState) {
        if let (Some(seq), Some(a)) = (stored_seq(request), &self.accepted) {
            let change = Change::MessageState(a.client.client_id.clone(), seq, state);
            let t = self.record(change);
            self.wait_for = self.wait_for.max(t);
        }
    }

    /// Forgets a stored message (delivered, expired or refused); nothing
    /// waits for it: at worst it is sent again after a crash.
    fn forget(&self, seq: u64) {
        if let Some(a) = &self.accepted {
            self.record(Change::RemoveMessage(a.client.client_id.clone(), seq));
        }
    }

    /// Journals a change of this connection's own. Under the state lock,
    /// like every other change: a publisher still routing a message holds
    /// that lock until the message's record is journaled, so a change to
    /// the record can never reach the store before the record.
    fn record(&self, change: Change) -> Ticket {
        if self.shared.persist.is_none() {
            return 0;
        }
        let mut state = self.shared.lock();
        state.record(change);
        state.commit()
    }

    async fn handle_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            if !matches!(event, ServerEvent::Message(_)) {
                self.route_burst();
            }
            match event {
                // Boxed: the connect path (authentication, takeover) is
                // large and runs once; inline it would sit in every idle
                // connection's task.
                ServerEvent::Connect(connect) => Box::pin(self.on_connect(connect)).await,
                ServerEvent::Auth(auth) => Box::pin(self.on_auth(auth)).await,
                ServerEvent::Message(p) => self.on_message(p),
                ServerEvent::Subscribe(s) => self.on_subscribe(s),
                ServerEvent::Unsubscribe(u) => self.on_unsubscribe(u),
                ServerEvent::Assigned { request, packet_id } => {
                    self.store_state(request, MessageState::Sent(packet_id))
                }
                ServerEvent::Received { request, packet_id } => {
                    self.store_state(request, MessageState::Received(packet_id))
                }
                ServerEvent::Released { packet_id } => {
                    if let Some(a) = &self.accepted
                        && a.expiry > 0
                    {
                        let change = Change::Released(a.client.client_id.clone(), packet_id);
                        let t = self.record(change);
                        self.wait_for = self.wait_for.max(t);
                    }
                }
                ServerEvent::Delivered { request, .. } => {
                    if let Some(seq) = stored_seq(request) {
                        self.forget(seq);
                    }
                }
                ServerEvent::Disconnected(e) => {
                    if matches!(
                        e,
                        ConnectionError::ClosedByPeer(DisconnectReason::NormalDisconnection)
                    ) {
                        // [MQTT-3.14.4-3], [MQTT-3.1.2-10]: no Will.
                        self.will_done = true;
                    }
                    if self.ended.is_none() {
                        self.ended = Some(Box::new(e));
                    }
                }
            }
        }
    }

    async fn on_connect(&mut self, connect: Box<Connect>) {
        let limits = &self.shared.config.limits;
        let over = if limits
            .max_connections
            .is_some_and(|m| self.shared.stats.connections.load(Ordering::Relaxed) > m)
        {
            Some(ConnectReason::ServerBusy)
        } else if limits
            .max_connections_per_ip
            .is_some_and(|m| self.shared.connections_from(self.info.peer_addr.ip()) > m)
        {
            Some(ConnectReason::QuotaExceeded)
        } else {
            None
        };
        if let Some(reason) = over {
            info!(peer = %self.info.peer_addr, ?reason, "connection refused: over a limit");
            self.shared
                .stats
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            self.connect = Some(Arc::from(connect));
            self.session.refuse(reason);
            return;
        }
        let connect: Arc<Connect> = Arc::from(connect);
        let info = self.info.clone();
        let c = connect.clone();
        let step = self
            .authenticate(move |hooks, state| hooks.authenticate(&c, &info, state))
            .await;
        self.connect = Some(connect);
        self.auth_step(step).await;
    }

    /// Runs an authentication hook: on the connection's task, or, for
    /// hooks that do slow work (password hashing), on a blocking thread,
    /// a few at a time, so that a burst of logins cannot stall every
    /// connection.
    async fn authenticate(
        &mut self,
        call: impl FnOnce(&dyn crate::Hooks, &mut AuthState) -> AuthStep + Send + 'static,
    ) -> AuthStep {
        let hooks = self.shared.hooks.clone();
        if !hooks.slow_authentication() {
            return call(&*hooks, self.auth_state());
        }
        let Ok(_permit) = self.shared.auth_slots.acquire().await else {
            return AuthStep::Refuse(ConnectReason::ServerUnavailable);
        };
        let mut state: Box<AuthState> = std::mem::take(self.auth.get_or_insert_default());
        match tokio::task::spawn_blocking(move || {
            let step = call(&*hooks, &mut state);
            (step, state)
        })
        .await
        {
            Ok((step, state)) => {
                self.auth = Some(state);
                step
            }
            Err(_) => AuthStep::Refuse(ConnectReason::UnspecifiedError),
        }
    }

    async fn on_auth(&mut self, auth: Auth) {
        let Some(connect) = self.connect.clone() else {
            return;
        };
        if self.accepted.is_some() {
            // Re-authentication is not offered.
            self.session.disconnect(DisconnectReason::ProtocolError);
            return;
        }
        let step = self
            .authenticate(move |hooks, state| hooks.authenticate_continue(&connect, &auth, state))
            .await;
        self.auth_step(step).await;
    }

    async fn auth_step(&mut self, step: AuthStep) {
        match step {
            AuthStep::Accept => self.accept().await,
            AuthStep::Continue(mut auth) => {
                auth.reason = AuthReason::ContinueAuthentication;
                self.session.auth(auth);
            }
            AuthStep::Refuse(reason) => {
                info!(peer = %self.info.peer_addr, ?reason, "connection refused");
                self.session.refuse(reason);
            }
        }
    }

    async fn accept(&mut self) {
        // Not kept past this: an idle connection holds only what it needs.
        let Some(connect) = self.connect.take() else {
            return;
        };
        let config = &self.shared.config;
        let v5 = connect.version.is_v5();
        // [MQTT-3.2.2-12], [MQTT-3.2.2-13]
        if let Some(w) = &connect.will {
            if w.qos > config.session.maximum_qos {
                self.session.refuse(ConnectReason::QoSNotSupported);
                return;
            }
            if w.retain && !config.session.retain_available {
                self.session.refuse(ConnectReason::RetainNotSupported);
                return;
            }
        }
        let mut connack = ConnAck::new(ConnectReason::Success);
        // [MQTT-3.1.3-6], [MQTT-3.1.3-7], [MQTT-3.2.2-16]: assign an id.
        let client_id: Arc<str> = if connect.client_id.is_empty() {
            if !v5 && !connect.clean_start {
                // 3.1.1 [MQTT-3.1.3-8]: an empty id needs Clean Session 1.
                self.session.refuse(ConnectReason::ClientIdentifierNotValid);
                return;
            }
            let id = format!("auto-{:016x}", rand_u64(self.id));
            if v5 {
                connack.properties.assigned_client_identifier =
                    mqtt_codec::MqttStr::try_from(id.as_str()).ok();
            }
            id.into()
        } else {
            connect.client_id.as_str().into()
        };
        let username = self
            .auth
            .as_mut()
            .and_then(|a| a.identity.take())
            .or_else(|| {
                connect
                    .username
                    .as_ref()
                    .map(|u| Arc::<str>::from(u.as_str()))
            });
        let client = ClientInfo {
            client_id: client_id.clone(),
            username: username.clone(),
            version: connect.version,
            connection: self.info.clone(),
        };
        // A session belongs to the user who made it: another user reusing
        // its client id neither takes it over nor reads what it is owed.
        let owner = self
            .shared
            .lock()
            .sessions
            .get(&client_id)
            .map(|r| r.owner.clone());
        if let Some(owner) = owner
            && owner != username
        {
            info!(client_id = %client_id, user = ?username, "client id in use by another user: connection refused");
            self.session.refuse(ConnectReason::NotAuthorized);
            return;
        }
        // The Will must be a message this client may publish: checked now,
        // with the id it got, since it is published when the client cannot
        // be asked.
        if let Some(w) = &connect.will {
            let mut p = Publish::new(w.topic.clone(), w.payload.clone());
            p.qos_pid = QosPid::new(w.qos, mqtt_codec::PacketId::MIN);
            p.retain = w.retain;
            if !self.shared.hooks.authorize_publish(&client, &p) {
                info!(client_id = %client_id, topic = w.topic.as_str(), "will not authorized: connection refused");
                self.session.refuse(ConnectReason::NotAuthorized);
                return;
            }
        }
        // Session Expiry: MQTT 5 property (capped); 3.1.1 Clean Session 0 keeps it for ever.
        let expiry = if v5 {
            connect
                .properties
                .session_expiry_interval
                .unwrap_or(0)
                .min(config.max_session_expiry)
        } else if connect.clean_start {
            0
        } else {
            config.max_session_expiry
        };
        if v5 && connect.properties.session_expiry_interval.unwrap_or(0) > config.max_session_expiry
        {
            connack.properties.session_expiry_interval = Some(expiry);
        }
        // Server Keep Alive: cap the client's.
        if let Some(cap) = config.max_keep_alive
            && v5
            && (connect.keep_alive == 0 || connect.keep_alive > cap)
        {
            connack.properties.server_keep_alive = Some(cap);
        }
        if let Some(min) = config.limits.min_keep_alive
            && v5
            && connect.keep_alive != 0
            && connect.keep_alive < min
        {
            connack.properties.server_keep_alive = Some(min);
        }
        // [MQTT-4.12.0-5]: a CONNACK after enhanced authentication names
        // the method (and carries the mechanism's last data, if any).
        if v5 && connect.properties.authentication_method.is_some() {
            connack.properties.authentication_method =
                connect.properties.authentication_method.clone();
            connack.properties.authentication_data =
                self.auth.as_mut().and_then(|a| a.connack_data.take());
        }
        if v5 {
            let p = &mut connack.properties;
            p.wildcard_subscription_available = Some(true);
            p.subscription_identifier_available = Some(true);
            p.shared_subscription_available = Some(true);
        }
        // [MQTT-3.1.4-3]: take over a connection with the same client id.
        let (old, control) = {
            let mut state = self.shared.lock();
            let old = state
                .sessions
                .get_mut(&client_id)
                .and_then(|r| r.live.take());
            (old, self.control.clone())
        };
        let mut handed: Option<mqtt_session::SessionState> = None;
        if let Some(old) = old {
            info!(client_id = %client_id, "session taken over");
            let (tx, rx) = oneshot::channel();
            if old
                .control
                .send(Control::Kick {
                    reason: DisconnectReason::SessionTakenOver,
                    handover: Some(tx),
                    continues: !connect.clean_start,
                })
                .is_ok()
            {
                handed = tokio::time::timeout(TAKEOVER_TIMEOUT, rx)
                    .await
                    .ok()
                    .and_then(Result::ok);
            }
        }
        let now = Instant::now();
        let (mailbox, resume) = {
            let mut state = self.shared.lock();
            // [MQTT-3.1.3-9]: a pending Will is not published on resume.
            let pending_will = state.wills.remove(&client_id);
            let kept = state.open_session(&client_id, connect.clean_start);
            if let Some(w) = pending_will
                && !kept
            {
                // The old session ended: its Will goes out now ([MQTT-3.1.2-8]).
                state.publish_will(w, now);
            }
            let Some(record) = state.sessions.get_mut(&client_id) else {
                return;
            };
            let stored = record.stored.take().map(|s| *s);
            // Another connection for this id may have got in during the
            // takeover wait: it is taken over in turn.
            if let Some(prev) = record.live.replace(Live {
                id: self.id,
                control,
            }) {
                let _ = prev.control.send(Control::Kick {
                    reason: DisconnectReason::SessionTakenOver,
                    handover: None,
                    continues: false,
                });
            }
            let was_stored = record.expiry > 0;
            record.expiry = expiry;
            record.expires_at = None;
            record.owner = client.username.clone();
            // A resumed session's subscriptions are authorized again: rights
            // may have been withdrawn since they were made (a reloaded ACL,
            // a restart).
            let withdrawn: Vec<TopicFilter> = record
                .subscriptions
                .keys()
                .filter(|f| !self.shared.hooks.authorize_subscribe(&client, f))
                .cloned()
                .collect();
            for filter in &withdrawn {
                record.subscriptions.remove(filter);
            }
            let mailbox = record.mailbox.clone();
            for filter in &withdrawn {
                info!(client_id = %client_id, filter = filter.as_str(), "subscription no longer authorized: removed");
                state.tree.unsubscribe(filter, &client_id);
            }
            // [MQTT-3.1.2-4..6], [MQTT-3.2.2-2], [MQTT-3.2.2-3]
            let resume = if kept {
                Some(handed.or(stored).unwrap_or_default())
            } else {
                None
            };
            // The CONNACK waits for the session to be stored (or, when it
            // no longer outlives this connection, for it to be gone).
            if expiry > 0 {
                state.save_session(&client_id, now);
            } else if was_stored {
                state.record(Change::RemoveSession(client_id.clone()));
            }
            self.wait_for = self.wait_for.max(state.commit());
            (mailbox, resume)
        };
        self.auth = None;
        let will = connect.will.as_ref().map(|w| {
            let mut p = Publish::new(w.topic.clone(), w.payload.clone());
            p.qos_pid = mqtt_codec::QosPid::new(w.qos, mqtt_codec::PacketId::MIN);
            p.retain = w.retain;
            let wp = &w.properties;
            let pp = p.properties_mut();
            pp.payload_format_indicator = wp.payload_format_indicator;
            pp.message_expiry_interval = wp.message_expiry_interval;
            pp.content_type = wp.content_type.clone();
            pp.response_topic = wp.response_topic.clone();
            pp.correlation_data = wp.correlation_data.clone();
            // [MQTT-3.1.3-10]: user properties in order.
            pp.user_properties = wp.user_properties.clone();
            Box::new((p, wp.will_delay_interval.unwrap_or(0)))
        });
        info!(client_id = %client_id, peer = %self.info.peer_addr, version = ?connect.version, session_present = resume.is_some(), "client connected");
        self.accepted = Some(Accepted {
            client,
            mailbox,
            will,
            expiry,
        });
        let now = self.now();
        self.session.accept(now, connack, resume);
    }

    fn on_message(&mut self, publish: Publish) {
        let Some(a) = &self.accepted else { return };
        self.shared
            .stats
            .messages_received
            .fetch_add(1, Ordering::Relaxed);
        let hooks = &self.shared.hooks;
        if self.shared.config.limits.max_publish_rate.is_some() {
            self.rate.take(&self.shared.config.limits, Instant::now());
        }
        if !self.topic_within_limits(publish.topic()) {
            debug!(client_id = %a.client.client_id, "topic over the length or level limit; dropped");
            if let Some(id) = publish.packet_id() {
                self.session
                    .refuse_message(id, mqtt_codec::PubAckReason::TopicNameInvalid);
            }
            return;
        }
        let authorized = hooks.authorize_publish(&a.client, &publish);
        // MQTT 5: a refused message's PUBACK / PUBREC says 0x87 (and a
        // refused QoS 2 flow ends there); 3.1.1: acknowledged and dropped.
        let refused = !authorized
            && publish.packet_id().is_some_and(|id| {
                self.session
                    .refuse_message(id, mqtt_codec::PubAckReason::NotAuthorized)
            });
        // A persistent session's QoS 2 identifiers awaiting PUBREL are
        // stored in the same batch as the copies routed, so that after a
        // crash a resent message is neither lost nor routed twice.
        let awaiting = match publish.qos_pid {
            QosPid::ExactlyOnce(id) if a.expiry > 0 && !refused => Some(id),
            _ => None,
        };
        let publish = if authorized {
            hooks.on_message(&a.client, publish)
        } else {
            debug!(client_id = %a.client.client_id, topic = publish.topic(), "publish not authorized; dropped");
            None
        };
        if publish.is_none() && awaiting.is_none() {
            return;
        }
        let w = work(&mut self.work);
        if let Some(id) = awaiting {
            w.awaiting.push(id);
        }
        if let Some(publish) = publish {
            w.burst.push(publish);
        }
        let held = w.burst.len() + w.awaiting.len();
        if held >= self.burst_max() {
            self.route_burst();
        }
    }

    /// How many messages a publisher's burst holds before it is routed:
    /// one while a subscriber it feeds is filling up (see
    /// [`Routed::pressure`](crate::state::Routed)), else up to [`BURST`]
    /// and a sixteenth of a mailbox, so that no mailbox goes far past its
    /// high-water mark before its publishers pause for it.
    fn burst_max(&self) -> usize {
        if self.pressure {
            1
        } else {
            (self.shared.config.mailbox_limit / 16).clamp(1, BURST)
        }
    }

    /// Routes the messages received since the last call, under one lock
    /// (with the QoS 2 identifiers now awaiting PUBREL, in the same batch
    /// of the store). Runs before anything else the client sent is handled,
    /// and before anything is written: the client's packets take effect in
    /// their order, and acknowledgements wait for the store.
    fn route_burst(&mut self) {
        let Some(w) = self
            .work
            .as_mut()
            .filter(|w| !w.burst.is_empty() || !w.awaiting.is_empty())
        else {
            return;
        };
        let Some(a) = &self.accepted else {
            w.burst.clear();
            w.awaiting.clear();
            return;
        };
        let now = self.clock;
        let mut state = self.shared.lock();
        for id in w.awaiting.drain(..) {
            state.record(Change::AwaitRelease(a.client.client_id.clone(), id));
        }
        for p in w.burst.iter().filter(|p| p.retain) {
            state.set_retained(p.clone(), now);
        }
        let routed = state.route_burst(Some(&a.client.client_id), &w.burst, now);
        let ticket = state.commit();
        drop(state);
        w.burst.clear();
        self.pressure = routed.pressure;
        self.routed_copies += routed.copies;
        if routed.dropped > 0 {
            self.shared
                .stats
                .messages_dropped
                .fetch_add(routed.dropped, Ordering::Relaxed);
        }
        if self.congested.is_none() && routed.congested.is_some() {
            tracing::trace!(client_id = %a.client.client_id, "a subscriber is behind: pausing this publisher");
            self.congested = routed.congested;
        }
        self.wait_for = self.wait_for.max(ticket);
    }

    fn on_subscribe(&mut self, s: Subscribe) {
        let Some(a) = &self.accepted else { return };
        let v5 = a.client.version.is_v5();
        let max_qos = self.shared.config.session.maximum_qos;
        let identifier = s.properties.subscription_identifier;
        let now = Instant::now();
        let mut reasons = Vec::with_capacity(s.subscriptions.len());
        let mut retained: Vec<Publish> = Vec::new();
        let ticket = {
            let mut state = self.shared.lock();
            for sub in &s.subscriptions {
                let filter = &sub.filter;
                if filter.is_shared() && sub.options.no_local {
                    // [MQTT-3.8.3-4]: No Local on a shared subscription.
                    reasons.push(SubAckReason::TopicFilterInvalid);
                    continue;
                }
                if !self.topic_within_limits(filter.as_str()) {
                    reasons.push(SubAckReason::TopicFilterInvalid);
                    continue;
                }
                if let Some(max) = self.shared.config.limits.max_subscriptions
                    && state.sessions.get(&a.client.client_id).is_some_and(|r| {
                        r.subscriptions.len() >= max && !r.subscriptions.contains_key(filter)
                    })
                {
                    reasons.push(SubAckReason::QuotaExceeded);
                    continue;
                }
                if !self.shared.hooks.authorize_subscribe(&a.client, filter) {
                    reasons.push(SubAckReason::NotAuthorized);
                    continue;
                }
                let mut options = sub.options;
                options.qos = options.qos.min(max_qos);
                let subscriber = Subscriber {
                    options,
                    identifier,
                };
                // The session map's own key: every subscription of a session
                // holds the same `Arc`, so routing merges them by pointer.
                let key = state
                    .sessions
                    .get_key_value(&a.client.client_id)
                    .map_or_else(|| a.client.client_id.clone(), |(k, _)| k.clone());
                let existed = state.tree.subscribe(filter, key, subscriber);
                if let Some(record) = state.sessions.get_mut(&a.client.client_id) {
                    record.subscriptions.insert(filter.clone(), subscriber);
                }
                reasons.push(SubAckReason::granted(options.qos));
                // [MQTT-3.3.1-9..11], [MQTT-3.8.4-4]; none for shared subscriptions.
                let send = !filter.is_shared()
                    && match options.retain_handling {
                        RetainHandling::SendAtSubscribe => true,
                        RetainHandling::SendAtSubscribeIfNew => !existed,
                        RetainHandling::DoNotSend => false,
                    };
                if send {
                    for p in state.retained.matching(filter, now) {
                        let topic_ok = TopicFilter::try_from(p.topic())
                            .map(|t| self.shared.hooks.authorize_subscribe(&a.client, &t))
                            .unwrap_or(false);
                        if topic_ok {
                            // Retained messages sent on subscribing keep RETAIN 1.
                            retained.push(outgoing_copy(
                                &p,
                                options.qos,
                                true,
                                identifier.into_iter().collect(),
                            ));
                        }
                    }
                }
            }
            // The SUBACK waits for a persistent session's subscriptions to be stored.
            state.save_session(&a.client.client_id, now);
            state.commit()
        };
        let reasons = if v5 {
            reasons
        } else {
            reasons
                .into_iter()
                .map(|r| {
                    if r.granted_qos().is_some() {
                        r
                    } else {
                        SubAckReason::UnspecifiedError
                    }
                })
                .collect()
        };
        // [MQTT-3.8.4-1], [MQTT-3.8.4-6], [MQTT-3.9.3-1]
        self.session.suback(SubAck {
            packet_id: s.packet_id,
            reasons,
            properties: Default::default(),
        });
        for p in retained {
            a.mailbox.push(p, now, 0, true);
        }
        self.wait_for = self.wait_for.max(ticket);
    }

    fn on_unsubscribe(&mut self, u: Unsubscribe) {
        let Some(a) = &self.accepted else { return };
        let mut reasons = Vec::with_capacity(u.filters.len());
        let ticket = {
            let mut state = self.shared.lock();
            for filter in &u.filters {
                let removed = state.tree.unsubscribe(filter, &a.client.client_id);
                if let Some(record) = state.sessions.get_mut(&a.client.client_id) {
                    record.subscriptions.remove(filter);
                }
                reasons.push(if removed {
                    UnsubAckReason::Success
                } else {
                    UnsubAckReason::NoSubscriptionExisted
                });
            }
            state.save_session(&a.client.client_id, Instant::now());
            state.commit()
        };
        // [MQTT-3.10.4-4], [MQTT-3.11.3-1]
        self.session.unsuback(UnsubAck {
            packet_id: u.packet_id,
            reasons,
            properties: Default::default(),
        });
        self.wait_for = self.wait_for.max(ticket);
    }

    /// Moves routed messages into the session, as far as its queue takes
    /// them; counts down Message Expiry and drops expired ones.
    fn fill_from_mailbox(&mut self) {
        let Some(a) = &self.accepted else { return };
        // Once the connection is ending (or its state was handed over) the
        // mailbox belongs to whoever holds the session next.
        if self.session.is_closed() || self.handed_over || self.ended.is_some() {
            return;
        }
        let now = self.clock;
        // The batch's memory stays with the busy connection between calls
        // (and changes places with the mailbox's); no `Work` is made for
        // a look at an empty mailbox.
        let mut batch = self
            .work
            .as_mut()
            .map(|w| std::mem::take(&mut w.batch))
            .unwrap_or_default();
        'fill: loop {
            batch.clear();
            // Only what the session's queue takes: what it refuses goes
            // back to the mailbox, one message at a time.
            let space = self.session.queue_space().min(MAILBOX_BATCH);
            if space == 0 {
                break;
            }
            a.mailbox.take(space, &mut batch);
            if batch.is_empty() {
                break;
            }
            let mut delivered = false;
            while let Some(Queued { publish, at, seq }) = batch.pop_front() {
                let interval = publish.properties().message_expiry_interval;
                let Some(p) = expire_owned(publish, at, now) else {
                    if seq != 0 {
                        self.forget(seq);
                    }
                    continue;
                };
                // Only stored messages are followed to their end.
                let request = if seq != 0 {
                    RequestId::from_raw(seq)
                } else {
                    RequestId::UNTRACKED
                };
                match self.session.deliver_as(p, request) {
                    Ok(()) => delivered = true,
                    Err(DeliverError::QueueFull(mut publish)) => {
                        // Back as it was routed: its expiry counts from
                        // `at` again.
                        if publish.properties().message_expiry_interval != interval {
                            publish.properties_mut().message_expiry_interval = interval;
                        }
                        let q = Queued { publish, at, seq };
                        a.mailbox
                            .put_back(std::iter::once(q).chain(batch.drain(..)));
                        if delivered {
                            a.mailbox.made_progress(now);
                        }
                        break 'fill;
                    }
                    Err(e) => {
                        debug!(client_id = %a.client.client_id, error = %e, "message not delivered");
                        if seq != 0 {
                            self.forget(seq);
                        }
                    }
                }
            }
            a.mailbox.made_progress(now);
        }
        if batch.capacity() > 0 {
            work(&mut self.work).batch = batch;
        }
    }

    /// The connection is over: store or end the session, handle the Will.
    fn finish(&mut self) {
        let Some(a) = self.accepted.take() else {
            return;
        };
        let now = Instant::now();
        let reason = self.ended.take();
        info!(client_id = %a.client.client_id, reason = ?reason, "client disconnected");
        let mut state = self.shared.lock();
        // A new deadline for the sweeper (session expiry, will delay).
        let mut deadline: Option<Instant> = None;
        // Ours unless a newer connection took it over. A takeover that was
        // asked for after this connection stopped listening (its `live`
        // taken, the request never answered) still leaves it ours: the newer
        // connection finds the stored state once this one is gone.
        let ours = state
            .sessions
            .get(&a.client.client_id)
            .is_some_and(|r| match &r.live {
                Some(l) => l.id == self.id,
                None => !self.handed_over,
            });
        let expiry = self
            .session
            .disconnect_session_expiry()
            .map_or(a.expiry, |e| e.min(self.shared.config.max_session_expiry));
        if ours {
            if expiry == 0 {
                state.remove_session(&a.client.client_id);
            } else if let Some(record) = state.sessions.get_mut(&a.client.client_id) {
                record.live = None;
                record.expiry = expiry;
                record.expires_at = expiry_deadline(expiry, now);
                deadline = record.expires_at;
                record.stored = Some(Box::new(self.session.session_state()));
                // What was routed but not handed to the session stays in the mailbox.
                state.save_session(&a.client.client_id, now);
            }
        }
        // Wills: not after a normal DISCONNECT; after Will Delay, or when
        // the session ends if sooner ([MQTT-3.1.2-8]); not at all when a new
        // connection resumes the session in time ([MQTT-3.1.3-9]).
        if let Some((publish, delay)) = a.will.filter(|_| !self.will_done).map(|w| *w) {
            let will = PendingWill {
                publish,
                publisher: a.client.client_id.clone(),
                at: now + Duration::from_secs(u64::from(delay.min(expiry))),
            };
            let now_or_never = if self.handed_over {
                Some(delay == 0 || !self.session_continues)
            } else if delay == 0 || expiry == 0 || !ours {
                Some(true)
            } else {
                None
            };
            match now_or_never {
                Some(true) => state.publish_will(will, now),
                Some(false) => {}
                None => {
                    deadline = deadline.into_iter().chain([will.at]).min();
                    state.wills.insert(a.client.client_id.clone(), will);
                }
            }
        }
        // The sweeper looks at every session: it is woken only for a
        // deadline before its next run, not once per connection that ends.
        let wake = deadline.is_some_and(|d| state.schedule_sweep(d));
        drop(state);
        if wake {
            self.shared.wake_sweeper();
        }
    }
}

/// A random-enough 64-bit number for assigned client ids.
fn rand_u64(seed: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(seed);
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod size_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every idle connection holds its task's future and its state: both
    /// stay small (handshakes and the busy loop are boxed while they run,
    /// buffers and queues exist only while there is work).
    #[tokio::test]
    async fn a_connection_task_stays_small() {
        let broker = crate::Broker::new(Default::default(), Arc::new(crate::AllowAll));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        let s = tokio::net::TcpStream::connect(a).await.unwrap();
        let conn = Connection::new(s, mqtt_transport_tcp::ConnectionInfo::tcp(a, a));
        let task = serve(broker.shared_for_tests(), conn, None);
        let size = std::mem::size_of_val(&task);
        // The task's whole future: it sits in every idle connection.
        assert!(size <= 64, "the connection future grew to {size} B");
        // What an idle connection keeps on the heap besides.
        let state = std::mem::size_of::<(Conn, Link)>();
        assert!(state <= 600, "the connection's state grew to {state} B");
    }
}

#[cfg(test)]
mod out_queue_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::{
        pin::Pin,
        task::{Context, Poll},
    };

    /// Takes every byte; its first flush is pending.
    #[derive(Default)]
    struct SlowFlush {
        written: Vec<u8>,
        flushes: usize,
        flushed: usize,
    }

    impl AsyncWrite for SlowFlush {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.written.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            self.flushes += 1;
            if self.flushes == 1 {
                Poll::Pending
            } else {
                self.flushed = self.written.len();
                Poll::Ready(Ok(()))
            }
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A write given up during its flush (as the loop's early write does)
    /// leaves the queue owing a flush, which the next write makes: a
    /// WebSocket frame or TLS record is never left unsent.
    #[tokio::test]
    async fn a_flush_given_up_is_made_by_the_next_write() {
        let mut out = OutQueue::new();
        out.push(Packet::PingResp, mqtt_codec::ProtocolVersion::V3_1_1);
        out.require(0);
        let mut w = SlowFlush::default();
        let first = futures_util::FutureExt::now_or_never(out.write(&mut w));
        assert!(first.is_none(), "the flush is pending");
        assert_eq!(w.written, [0xD0, 0]);
        assert!(!out.is_empty(), "a flush is owed");
        assert_eq!(out.write(&mut w).await.unwrap(), 0);
        assert_eq!(w.flushed, 2);
        assert!(out.is_empty());
    }

    /// Each acknowledgement waits for the store batch its message went
    /// into, not for later batches: with batch 2 still being written, what
    /// batch 1 made durable goes out, and is flushed (a WebSocket frame),
    /// while the rest waits.
    #[tokio::test]
    async fn acknowledgements_wait_only_for_their_own_batch() {
        use mqtt_codec::{PacketId, PubAck};
        let v = mqtt_codec::ProtocolVersion::V3_1_1;
        let ack = |id| Packet::PubAck(PubAck::new(PacketId::new(id).unwrap()));
        let mut out = OutQueue::new();
        // (Past its first flush: flushes complete.)
        let mut w = SlowFlush {
            flushes: 1,
            ..SlowFlush::default()
        };
        out.push(ack(1), v);
        assert!(!out.can_write(), "not known to be writable before require");
        out.require(1);
        out.push(ack(2), v);
        out.push(ack(3), v);
        out.require(2);
        out.release(0);
        assert!(!out.can_write());
        assert_eq!(out.blocked_on(), Some(1));
        out.release(1);
        assert_eq!(out.blocked_on(), Some(2));
        assert_eq!(out.write(&mut w).await.unwrap(), 4);
        assert_eq!(w.written, [0x40, 2, 0, 1]);
        assert_eq!(w.flushed, 4, "what may go out is flushed");
        assert!(!out.can_write() && !out.is_empty());
        // A later packet with no newer change waits behind batch 2 too.
        out.push(ack(4), v);
        out.require(2);
        out.release(2);
        assert_eq!(out.blocked_on(), None);
        assert_eq!(out.write(&mut w).await.unwrap(), 12);
        assert!(out.is_empty());
        assert_eq!(w.written.len(), 16);
    }
}
