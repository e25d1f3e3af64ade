//! The broker runtime: listeners, connection tasks, the timer for wills and
//! session expiry, and graceful shutdown.

use crate::{
    hooks::Hooks,
    persist::{Persister, Ticket},
    state::State,
    store::{Durability, Store, StoreError},
};
use mqtt_session::ServerOptions;
use mqtt_transport_tcp::{
    Connection, ConnectionInfo, Listener as TcpListener, ServerTls, TransportError,
};
use mqtt_transport_ws::{WsServerOptions, peek_request_head};
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::{
    sync::{Notify, watch},
    task::JoinSet,
};
use tracing::{debug, info, warn};

/// Longest wait between sweeps of wills, sessions and retained messages.
const SWEEP_PERIOD: Duration = Duration::from_secs(60);

/// Broker-wide settings.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// What each connection announces and enforces (Receive Maximum,
    /// Maximum Packet Size, Topic Alias Maximum, Maximum QoS, Retain
    /// Available, connect timeout, messages queued in the session).
    pub session: ServerOptions,
    /// Messages routed to one session and not yet taken by it (or waiting
    /// while it is offline). Past this, new messages for that session are
    /// dropped and counted: a slow subscriber cannot grow memory without
    /// limit. QoS 0 messages are never kept for offline sessions.
    pub mailbox_limit: usize,
    /// Longest Session Expiry Interval granted, in seconds (also what a
    /// 3.1.1 Clean Session 0 session gets). `u32::MAX` keeps them for ever.
    pub max_session_expiry: u32,
    /// Longest Keep Alive allowed: MQTT 5 clients asking for more (or for
    /// none) get this as Server Keep Alive.
    pub max_keep_alive: Option<u16>,
    /// WebSocket settings (path, subprotocols, Origin allow-list).
    pub ws: WsServerOptions,
    /// How long shutdown waits for connections to close.
    pub shutdown_timeout: Duration,
    /// Limits on what clients may use; `None` fields are unlimited.
    pub limits: Limits,
    /// How often the counters are published under `$SYS/broker/`
    /// (retained); `None` publishes none.
    pub sys_interval: Option<Duration>,
    /// A folder of files (web pages, scripts) served over plain HTTP on
    /// the WebSocket listeners, beside the MQTT endpoint: `/` serves its
    /// `index.html`. `None` serves only `/status` and `/metrics` (and the
    /// status page at `/`).
    pub web_root: Option<PathBuf>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            session: ServerOptions::default(),
            mailbox_limit: 10_000,
            max_session_expiry: u32::MAX,
            max_keep_alive: None,
            ws: WsServerOptions::default(),
            shutdown_timeout: Duration::from_secs(5),
            web_root: None,
            limits: Limits::default(),
            sys_interval: Some(Duration::from_secs(10)),
        }
    }
}

/// Limits that keep one client, or many, from taking the broker down. All
/// are off by default; set them for the clients you expect.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// Most client connections at once: MQTT 5 clients past it get CONNACK
    /// 0x89 Server busy (3.1.1: return code 3). Sockets beyond it (and a
    /// margin for handshakes) are closed as soon as they are accepted.
    pub max_connections: Option<usize>,
    /// Most connections from one IP address: CONNACK 0x97 Quota exceeded.
    pub max_connections_per_ip: Option<usize>,
    /// Most subscriptions a session holds: SUBACK 0x97 Quota exceeded
    /// (3.1.1: 0x80) for filters past it.
    pub max_subscriptions: Option<usize>,
    /// Most levels in a topic name or filter: a longer topic's PUBLISH is
    /// refused (MQTT 5 PUBACK / PUBREC 0x90 Topic Name invalid) and a
    /// longer filter's subscription too (0x8F Topic Filter invalid).
    pub max_topic_levels: Option<usize>,
    /// Longest topic name or filter, in bytes; as `max_topic_levels`.
    pub max_topic_length: Option<usize>,
    /// PUBLISH packets one client may send per second, with bursts of as
    /// many: a faster client is slowed down (its input is read later), not
    /// cut off and not dropped.
    pub max_publish_rate: Option<u32>,
    /// Shortest Keep Alive: MQTT 5 clients asking for less (but not for
    /// none) get this as Server Keep Alive.
    pub min_keep_alive: Option<u16>,
}

/// Descriptors [`Broker::listen`] makes room for when
/// [`Limits::max_connections`] is not set (within the open-file limit):
/// about 512 KiB of kernel memory.
pub const RESERVED_DESCRIPTORS: usize = 65_536;

impl Limits {
    /// Descriptors a broker with these limits may hold at once: every
    /// connection [`Limits::max_connections`] allows with a margin (for
    /// connections refused at the limit, listeners and files), or
    /// [`RESERVED_DESCRIPTORS`] when connections are not limited.
    ///
    /// [`Broker::listen`] makes this much room in the descriptor table; an
    /// application that passes it to
    /// [`mqtt_transport_tcp::reserve_descriptors`] before starting its
    /// runtime spares a worker thread the wait the growth costs.
    ///
    /// ```
    /// use mqtt_broker_core::{Limits, RESERVED_DESCRIPTORS};
    ///
    /// assert_eq!(Limits::default().descriptors(), RESERVED_DESCRIPTORS);
    /// let limits = Limits { max_connections: Some(1_000), ..Limits::default() };
    /// assert!(limits.descriptors() > 1_000);
    /// ```
    pub fn descriptors(&self) -> usize {
        match self.max_connections {
            Some(max) => max.saturating_add((max / 10).max(64) + 64),
            None => RESERVED_DESCRIPTORS,
        }
    }
}

/// A listener kind and address.
#[derive(Clone, Debug)]
pub enum ListenerConfig {
    /// MQTT over TCP.
    Tcp(SocketAddr),
    /// MQTT over TLS.
    Tls(SocketAddr, ServerTls),
    /// MQTT over WebSocket; other HTTP requests get the status page,
    /// `/metrics` and the files of [`BrokerConfig::web_root`].
    Ws(SocketAddr),
    /// MQTT over secure WebSocket.
    Wss(SocketAddr, ServerTls),
}

impl ListenerConfig {
    fn name(&self) -> &'static str {
        match self {
            ListenerConfig::Tcp(_) => "mqtt",
            ListenerConfig::Tls(..) => "mqtts",
            ListenerConfig::Ws(_) => "ws",
            ListenerConfig::Wss(..) => "wss",
        }
    }
}

/// Counters, readable while the broker runs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Open connections.
    pub connections: AtomicUsize,
    /// PUBLISH packets received from clients.
    pub messages_received: AtomicU64,
    /// PUBLISH packets sent to clients.
    pub messages_sent: AtomicU64,
    /// Bytes read from clients.
    pub bytes_received: AtomicU64,
    /// Bytes written to clients.
    pub bytes_sent: AtomicU64,
    /// Messages not delivered because a client's queue was full.
    pub messages_dropped: AtomicU64,
    /// Connections refused for a limit ([`Limits`]).
    pub connections_refused: AtomicU64,
}

pub(crate) struct Shared {
    pub(crate) config: BrokerConfig,
    /// `config.session`, shared by every connection's session.
    pub(crate) session_options: Arc<mqtt_session::ServerOptions>,
    pub(crate) hooks: Arc<dyn Hooks>,
    state: Mutex<State>,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) next_conn_id: AtomicU64,
    pub(crate) stats: Stats,
    sweeper: Notify,
    pub(crate) started: Instant,
    /// The store's group commit, when there is a store.
    pub(crate) persist: Option<Arc<Persister>>,
    store_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Sockets accepted and not yet closed, in all.
    sockets: AtomicUsize,
    /// Slow authentication hooks running at once (password hashing).
    pub(crate) auth_slots: tokio::sync::Semaphore,
    /// Sockets accepted and not yet closed, per peer address.
    per_ip: Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One accepted socket, counted while it lives.
pub(crate) struct SocketSlot {
    shared: Arc<Shared>,
    ip: std::net::IpAddr,
}

impl SocketSlot {
    /// Counts a socket from `ip`; `None` when even the margin past
    /// [`Limits::max_connections`] is used up (the socket is then closed
    /// unanswered).
    fn take(shared: &Arc<Shared>, ip: std::net::IpAddr) -> Option<SocketSlot> {
        let n = shared.sockets.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = SocketSlot {
            shared: shared.clone(),
            ip,
        };
        if let Some(max) = shared.config.limits.max_connections
            && n > max + (max / 10).max(64)
        {
            shared
                .stats
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *shared
            .per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(ip)
            .or_default() += 1;
        Some(slot)
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.shared.sockets.fetch_sub(1, Ordering::Relaxed);
        let mut per_ip = self.shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let std::collections::hash_map::Entry::Occupied(mut e) = per_ip.entry(self.ip) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

impl Shared {
    /// Connections open from `ip`.
    pub(crate) fn connections_from(&self, ip: std::net::IpAddr) -> usize {
        self.per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&ip)
            .copied()
            .unwrap_or(0)
    }
}

/// The shared state, locked. Changes journaled under the lock go to the
/// store's group commit as one batch when it is released (or at
/// [`commit`](StateGuard::commit), which says what to wait for).
pub(crate) struct StateGuard<'a> {
    state: MutexGuard<'a, State>,
    persist: Option<&'a Persister>,
}

impl StateGuard<'_> {
    /// Hands what was journaled to the group commit; the ticket that
    /// acknowledgements of these changes wait for.
    pub(crate) fn commit(&mut self) -> Ticket {
        match self.persist {
            Some(p) if !self.state.journal.is_empty() => {
                p.record(std::mem::take(&mut self.state.journal))
            }
            _ => 0,
        }
    }
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        self.commit();
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // A broker dropped without `shutdown`: the store's writer commits
        // what is pending and ends, closing the store.
        if let Some(p) = &self.persist {
            p.stop();
        }
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> StateGuard<'_> {
        // State stays consistent between statements; a panic elsewhere
        // while holding the lock must not stop every other connection.
        StateGuard {
            state: self.state.lock().unwrap_or_else(|e| e.into_inner()),
            persist: self.persist.as_deref(),
        }
    }

    pub(crate) fn wake_sweeper(&self) {
        self.sweeper.notify_one();
    }
}

/// A running broker: serves any mix of listeners and shuts down gracefully.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use mqtt_broker_core::{AllowAll, Broker, BrokerConfig, ListenerConfig};
/// use std::sync::Arc;
///
/// let broker = Broker::new(BrokerConfig::default(), Arc::new(AllowAll));
/// broker.listen(ListenerConfig::Tcp("127.0.0.1:1883".parse()?)).await?;
/// broker.listen(ListenerConfig::Ws("127.0.0.1:8080".parse()?)).await?;
/// tokio::signal::ctrl_c().await?;
/// broker.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Broker {
    shared: Arc<Shared>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

impl Broker {
    /// A broker with `config` and policy `hooks` (use
    /// [`AllowAll`](crate::AllowAll) for none). Must be called within a
    /// tokio runtime: it starts the timer task for wills and session expiry.
    pub fn new(config: BrokerConfig, hooks: Arc<dyn Hooks>) -> Broker {
        let state = State::new(config.mailbox_limit);
        Broker::start(config, hooks, state, None, None)
    }

    /// A broker that keeps persistent sessions (subscriptions, expiry,
    /// the QoS 1 and 2 messages owed to them, QoS 2 identifiers awaiting
    /// release) and retained messages in `store`, and starts from what it
    /// holds. With [`Durability::Always`], every acknowledgement waits for
    /// the changes behind it to be durable (many clients share each
    /// commit): an acknowledged message is never lost to a crash. Pending
    /// Wills are not stored. Must be called within a tokio runtime.
    pub fn with_store(
        config: BrokerConfig,
        hooks: Arc<dyn Hooks>,
        store: Arc<dyn Store>,
        durability: Durability,
    ) -> Result<Broker, StoreError> {
        let loaded = store.load()?;
        let mut state = State::new(config.mailbox_limit);
        let (sessions, retained) = (loaded.sessions.len(), loaded.retained.len());
        state.restore(loaded, Instant::now());
        state.storing = true;
        info!(sessions, retained, "restored from the store");
        let (persist, thread) = Persister::start(store, durability)
            .map_err(|e| StoreError::Engine(format!("cannot start the store's thread: {e}")))?;
        Ok(Broker::start(
            config,
            hooks,
            state,
            Some(persist),
            Some(thread),
        ))
    }

    fn start(
        config: BrokerConfig,
        hooks: Arc<dyn Hooks>,
        state: State,
        persist: Option<Arc<Persister>>,
        store_thread: Option<std::thread::JoinHandle<()>>,
    ) -> Broker {
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            session_options: Arc::new(config.session.clone()),
            config,
            hooks,
            shutdown,
            next_conn_id: AtomicU64::new(1),
            stats: Stats::default(),
            sweeper: Notify::new(),
            started: Instant::now(),
            persist,
            store_thread: Mutex::new(store_thread),
            sockets: AtomicUsize::new(0),
            auth_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            per_ip: Mutex::new(std::collections::HashMap::new()),
        });
        let broker = Broker {
            shared: shared.clone(),
            tasks: Arc::new(Mutex::new(JoinSet::new())),
        };
        if let Some(every) = shared.config.sys_interval {
            tokio::spawn(crate::sys::run(Arc::downgrade(&shared), every));
        }
        let weak = Arc::downgrade(&shared);
        tokio::spawn(async move {
            loop {
                let Some(shared) = weak.upgrade() else { return };
                // At least once a minute, to purge expired retained messages.
                let now = Instant::now();
                let next = {
                    let mut state = shared.lock();
                    let next = state
                        .sweep(now)
                        .map_or(now + SWEEP_PERIOD, |t| t.min(now + SWEEP_PERIOD));
                    state.sweep_at = Some(next);
                    next
                };
                let sleep = next.saturating_duration_since(Instant::now());
                let mut shutdown = shared.shutdown.subscribe();
                let wake = async {
                    tokio::select! {
                        _ = shared.sweeper.notified() => {}
                        _ = tokio::time::sleep(sleep) => {}
                        _ = shutdown.changed() => {}
                    }
                };
                wake.await;
                if *shared.shutdown.borrow() {
                    return;
                }
                drop(shared);
            }
        });
        broker
    }

    #[cfg(test)]
    pub(crate) fn shared_for_tests(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Sessions held, online or not.
    pub fn sessions(&self) -> usize {
        self.shared.lock().sessions.len()
    }

    /// Retained messages held.
    pub fn retained(&self) -> usize {
        self.shared.lock().retained.len()
    }

    /// Subscriptions held.
    pub fn subscriptions(&self) -> usize {
        self.shared.lock().tree.len()
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        // Reap finished tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Binds a listener and serves it until shutdown; returns the bound
    /// address (with the port chosen for port 0).
    ///
    /// Makes room in the process's descriptor table for every connection
    /// the limits allow ([`Limits::descriptors`]) first, within the
    /// open-file limit: see [`mqtt_transport_tcp::reserve_descriptors`].
    pub async fn listen(&self, listener: ListenerConfig) -> Result<SocketAddr, TransportError> {
        let name = listener.name();
        match mqtt_transport_tcp::reserve_descriptors(self.shared.config.limits.descriptors()) {
            Ok(n) => debug!(descriptors = n, "descriptor table reserved"),
            Err(e) => debug!(error = %e, "descriptor table not reserved"),
        }
        let (addr, tls, ws) = match listener {
            ListenerConfig::Tcp(a) => (a, None, false),
            ListenerConfig::Tls(a, t) => (a, Some(t), false),
            ListenerConfig::Ws(a) => (a, None, true),
            ListenerConfig::Wss(a, t) => (a, Some(t), true),
        };
        // A plain WebSocket listener takes raw TCP so that it can peek at
        // the HTTP request (status page or upgrade); the others go through
        // the transport's listener (TLS handshake in the connection's task).
        let acceptor = if ws && tls.is_none() {
            Acceptor::Http(mqtt_transport_tcp::bind_tcp(addr).await?)
        } else {
            Acceptor::Mqtt(TcpListener::bind(addr, tls).await?)
        };
        let local = acceptor.local_addr()?;
        info!(listener = name, addr = %local, "listening");
        let broker = self.clone();
        let mut shutdown = self.shared.shutdown.subscribe();
        self.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    r = acceptor.accept() => r,
                    _ = shutdown.changed() => return,
                };
                let accepted = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // E.g. out of file descriptors: back off, keep serving.
                        warn!(listener = name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let shared = broker.shared.clone();
                let Some(slot) = SocketSlot::take(&shared, accepted.peer().ip()) else {
                    drop(accepted);
                    continue;
                };
                // TLS and WebSocket handshakes get the CONNECT timeout too.
                let limit = shared
                    .config
                    .session
                    .connect_timeout
                    .unwrap_or(Duration::from_secs(10));
                // Boxed, with its timer, before the task is made: the
                // handshake's state (the accepted socket included) is freed
                // once done instead of sizing every connection's task, which
                // holds the connection's small future alone.
                let start = Box::pin(async move {
                    match tokio::time::timeout(limit, establish(&shared, accepted, ws)).await {
                        Ok(Some(conn)) => Some(crate::connection::serve(shared, conn, Some(slot))),
                        _ => None,
                    }
                });
                broker.spawn(async move {
                    if let Some(serve) = start.await {
                        serve.await;
                    }
                });
            }
        });
        Ok(local)
    }

    /// Serves a connection established elsewhere (any transport, e.g. one
    /// an application's own HTTP server upgraded).
    pub fn serve(&self, connection: Connection) {
        let shared = self.shared.clone();
        self.spawn(crate::connection::serve(shared, connection, None));
    }

    /// Stops accepting, sends MQTT 5 clients DISCONNECT 0x8B (Server
    /// shutting down), and waits (up to the configured timeout) for every
    /// connection to close.
    pub async fn shutdown(&self) {
        info!("shutting down");
        let _ = self.shared.shutdown.send(true);
        // Busy connections see the flag; idle ones wait on their control
        // slot alone (every idle connection has an accepted session).
        for record in self.shared.lock().sessions.values() {
            if let Some(live) = &record.live {
                let _ = live.control.send(crate::state::Control::Kick {
                    reason: mqtt_codec::DisconnectReason::ServerShuttingDown,
                    handover: None,
                    continues: false,
                });
            }
        }
        let deadline = tokio::time::Instant::now() + self.shared.config.shutdown_timeout;
        loop {
            let next = {
                let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
                while tasks.try_join_next().is_some() {}
                if tasks.is_empty() {
                    break;
                }
                tasks.len()
            };
            if tokio::time::Instant::now() >= deadline {
                warn!(remaining = next, "shutdown timeout; dropping connections");
                self.tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .abort_all();
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // What the connections left (sessions stored as they closed) is
        // committed before returning.
        if let Some(p) = &self.shared.persist {
            p.stop();
            let thread = self
                .shared
                .store_thread
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(t) = thread {
                let _ = tokio::task::spawn_blocking(move || t.join()).await;
            }
        }
        info!("stopped");
    }
}

/// Where a listener's connections come from.
enum Acceptor {
    /// Plain TCP carrying HTTP: WebSocket upgrades or the status page.
    Http(tokio::net::TcpListener),
    /// TCP or TLS for MQTT, or TLS carrying WebSocket.
    Mqtt(TcpListener),
}

/// A connection just accepted, before any handshake.
enum Accepted {
    Http(tokio::net::TcpStream, SocketAddr),
    Mqtt(mqtt_transport_tcp::Incoming),
}

impl Accepted {
    fn peer(&self) -> SocketAddr {
        match self {
            Accepted::Http(_, peer) => *peer,
            Accepted::Mqtt(i) => i.peer_addr(),
        }
    }
}

impl Acceptor {
    fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        match self {
            Acceptor::Http(l) => Ok(l.local_addr()?),
            Acceptor::Mqtt(l) => l.local_addr(),
        }
    }

    async fn accept(&self) -> Result<Accepted, TransportError> {
        match self {
            Acceptor::Http(l) => {
                let (stream, peer) = l.accept().await?;
                Ok(Accepted::Http(stream, peer))
            }
            Acceptor::Mqtt(l) => Ok(Accepted::Mqtt(l.accept().await?)),
        }
    }
}

/// Runs a connection's handshakes (TLS, WebSocket upgrade), on its own task.
async fn establish(shared: &Arc<Shared>, accepted: Accepted, ws: bool) -> Option<Connection> {
    let incoming = match accepted {
        Accepted::Http(stream, peer) => return ws_or_status(shared, stream, peer).await,
        Accepted::Mqtt(i) => i,
    };
    let peer = incoming.peer_addr();
    let conn = match incoming.establish().await {
        Ok(c) => c,
        Err(e) => {
            debug!(%peer, error = %e, "handshake failed");
            return None;
        }
    };
    if !ws {
        return Some(conn);
    }
    match mqtt_transport_ws::accept(conn, &shared.config.ws).await {
        Ok(c) => Some(c),
        Err(e) => {
            debug!(%peer, error = %e, "WebSocket upgrade refused");
            None
        }
    }
}

/// A plain WebSocket listener's connection: an upgrade request becomes an
/// MQTT connection; any other HTTP request is answered by [`crate::http`].
async fn ws_or_status(
    shared: &Arc<Shared>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) -> Option<Connection> {
    let options = &shared.config.ws;
    let _ = stream.set_nodelay(true);
    let head = match peek_request_head(&stream, 16 * 1024, options.handshake_timeout).await {
        Ok(Some(h)) => h,
        Ok(None) => return None,
        Err(e) => {
            debug!(%peer, error = %e, "bad HTTP request");
            return None;
        }
    };
    let local = stream.local_addr().ok()?;
    if head.is_websocket_upgrade() {
        let conn = Connection::new(stream, ConnectionInfo::tcp(peer, local));
        return match mqtt_transport_ws::accept(conn, options).await {
            Ok(c) => Some(c),
            Err(e) => {
                debug!(%peer, error = %e, "WebSocket upgrade refused");
                None
            }
        };
    }
    crate::http::respond(shared, stream, &head).await;
    None
}
